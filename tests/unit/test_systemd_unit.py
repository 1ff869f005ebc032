"""Issue 18.2: contrib/radiusgw.service is a unit systemd accepts, with reload by SIGHUP."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "radiusgw.service"


def test_the_unit_reloads_by_sighup_and_is_hardened() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["Type"] in ("simple", "notify")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    assert "radiusgw serve" in service["ExecStart"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"]
    assert service["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    # The applier's 10 levels above the loops (Tuning.applier_priority), without CAP_SYS_NICE.
    assert service["LimitNICE"] == "-10"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_finds_nothing_wrong(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this installation's.
    script = Path(sys.executable).with_name("radiusgw")
    if not script.exists():
        pytest.skip("the radiusgw console script is not installed")
    unit = tmp_path / "radiusgw.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/radiusgw", str(script)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "radiusgw" in line]
    assert ours == [], ours
