"""``RealmSet`` (radiusgw.server.realm_set): read once, named by a digest, framed for a pipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiusgw.errors import ConfigError
from radiusgw.server.realm_set import FrameReader, RealmSet, frame

CONTRACT = """\
[contract]
id = "acme"
name = "ACME"

[[client]]
address = "192.0.2.1"
secret_file = "acme.secret"

[[realm]]
name = "acme.example"
mode = "group"
max_accounts = 10
"""


@pytest.fixture
def realms(tmp_path: Path) -> Path:
    directory = tmp_path / "realms"
    directory.mkdir()
    (directory / "acme.toml").write_text(CONTRACT)
    (directory / "acme.secret").write_text("one\n")
    return directory


def test_the_same_files_give_the_same_digest(realms: Path) -> None:
    first, second = RealmSet.load(realms), RealmSet.load(realms)
    assert first.digest == second.digest
    assert len(first.digest) == 16 and int(first.digest, 16) >= 0


def test_a_changed_secret_file_changes_the_digest(realms: Path) -> None:
    before = RealmSet.load(realms)
    (realms / "acme.secret").write_text("two\n")
    after = RealmSet.load(realms)
    assert after.digest != before.digest
    assert after.registry.nas["192.0.2.1"].secret == b"two"


def test_the_summary_names_the_set_but_never_a_secret(realms: Path) -> None:
    summary = RealmSet.load(realms).summary()
    assert summary == {
        "digest": RealmSet.load(realms).digest,
        "contracts": 1,
        "realms": 1,
        "nas": 1,
    }
    assert "one" not in repr(summary)


def test_an_invalid_set_raises_its_problems(realms: Path) -> None:
    (realms / "acme.secret").write_text("")
    with pytest.raises(ConfigError) as caught:
        RealmSet.load(realms)
    assert any("acme.toml" in p and "secret" in p for p in caught.value.problems)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_frames_come_out_whole_however_the_pipe_cuts_them(realms: Path, chunk: int) -> None:
    one = RealmSet.load(realms)
    (realms / "acme.secret").write_text("two\n")
    two = RealmSet.load(realms)
    data = frame(one) + frame(two)
    reader = FrameReader()
    out: list[RealmSet] = []
    for start in range(0, len(data), chunk):
        out += reader.feed(data[start : start + chunk])
    assert out == [one, two]
    assert reader.feed(b"") == []


def test_every_kind_of_registration_crosses_the_pipe_equal() -> None:
    """The repository's examples hold one of each class of ``radiusgw.config.model`` (a group,
    a proxy realm with its servers, a VPDN realm with its LNS, a carrier); compiled, those are
    pickled by their constructors (``_reduce``), so each must come back equal and whole."""
    examples = RealmSet.load(Path(__file__).resolve().parents[3] / "realms")
    registry = examples.registry
    kinds = {type(o).__name__ for o in (*registry.contracts.values(), *registry.nas.values())}
    kinds |= {type(r.servers[0]).__name__ for r in registry.realms.values() if r.servers}
    kinds |= {type(r.lns[0]).__name__ for r in registry.realms.values() if r.lns}
    kinds |= {type(c).__name__ for c in registry.carriers}
    kinds |= {type(c.clients[0]).__name__ for c in registry.contracts.values() if c.clients}
    assert kinds == {"Contract", "Nas", "UpstreamServer", "Lns", "Carrier", "Client"}
    (back,) = FrameReader().feed(frame(examples))
    assert back == examples and back is not examples
    assert back.registry.realms == registry.realms and back.digest == examples.digest
