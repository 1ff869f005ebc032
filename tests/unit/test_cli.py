"""The ``radiusgw`` command line (radiusgw.cli): check, account management, serve's settings.

The tests of what an account command does to the store take ``cli_database`` and run once per
backend (tests/unit/conftest.py): SQLite's file, and a PostgreSQL URL given to ``--db`` or
``RADIUSGW_DB``. The ones about the input, the flags or a file take an SQLite path (``db``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import radiusgw.server
from radiusgw import cli as cli_module
from radiusgw.cli import cli
from radiusgw.domain import Account
from radiusgw.server.settings import Settings
from radiusgw.store.backend import open_backend

REPO = Path(__file__).resolve().parents[2]

GROUP_CONTRACT = """\
[contract]
id = "acme"
name = "ACME Corporation"

[[client]]
address = "198.51.100.7"
secret = "s3cret"

[[realm]]
name = "acme.example"
mode = "group"
max_accounts = {max_accounts}
"""

PROXY_CONTRACT = """\
[contract]
id = "globex"
name = "Globex"

[[client]]
address = "198.51.100.9"
secret = "other"

[[realm]]
name = "globex.example"
mode = "proxy"
[[realm.server]]
address = "203.0.113.20"
secret = "upstream-secret"
"""

VPDN_CONTRACT = """\
[contract]
id = "{id}"
name = "{id}"

[[realm]]
name = "{realm}"
mode = "vpdn"
carrier = "D"
authenticate = {authenticate}
[[realm.lns]]
address = "192.0.2.10"
secret = "tunnel-secret"
"""

CARRIERS = """\
[[carrier]]
type = "D"
address = "203.0.113.1"
secret = "lac-secret"
"""


@pytest.fixture
def realms(tmp_path: Path) -> Path:
    directory = tmp_path / "realms"
    directory.mkdir()
    (directory / "acme.toml").write_text(GROUP_CONTRACT.format(max_accounts=3))
    return directory


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gw.db"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def add(
    realms: Path, db: str | Path, user: str, *extra: str, realm: str = "acme.example"
) -> Result:
    return run(
        "account",
        "add",
        realm,
        user,
        "--password",
        f"pw-{user}",
        "--db",
        db,
        "--realms",
        realms,
        *extra,
    )


def stored(db: str | Path, user: str, realm: str = "acme.example") -> Account | None:
    """The account as the store holds it, opened with the key the CLI uses."""
    with open_backend(db, Settings(db=str(db)).key_path) as store:
        return store.get_account(realm, user)


def assert_one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


# -- check -------------------------------------------------------------------------------------


def test_check_of_valid_files_exits_0_and_counts_them(realms: Path) -> None:
    (realms / "carriers.toml").write_text(CARRIERS)
    result = run("check", "--realms", realms)
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 files valid: 1 contract, 1 realm, 1 carrier\n"


def test_check_of_invalid_files_exits_1_with_one_line_per_problem(realms: Path) -> None:
    (realms / "acme.toml").write_text(GROUP_CONTRACT.format(max_accounts=3) + 'colour = "red"\n')
    (realms / "bad.toml").write_text("this is = = not toml\n")
    result = run("check", "--realms", realms)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) >= 2
    assert any("acme.toml" in line and "colour" in line for line in lines)
    assert any("bad.toml" in line for line in lines)


def test_check_of_a_missing_directory_exits_1(tmp_path: Path) -> None:
    result = run("check", "--realms", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.stdout


# -- account add -------------------------------------------------------------------------------


def test_add_stores_the_account(realms: Path, cli_database: str) -> None:
    db = cli_database
    result = add(realms, db, "bob", "--framed-ip", "192.0.2.5", "--session-timeout", "3600")
    assert result.exit_code == 0, result.output
    assert result.stdout == "added account 'bob' to realm 'acme.example' (1 of 3 accounts)\n"
    assert "pw-bob" not in result.output
    account = stored(db, "bob")
    assert account is not None
    assert (account.password, account.framed_ip, account.session_timeout) == (
        "pw-bob",
        "192.0.2.5",
        3600,
    )


def test_add_matches_the_realm_case_insensitively(realms: Path, db: Path) -> None:
    result = add(realms, db, "bob", realm="ACME.Example")
    assert result.exit_code == 0, result.output
    assert stored(db, "bob") is not None


def test_add_beyond_max_accounts_names_the_limit(realms: Path, cli_database: str) -> None:
    db = cli_database
    for user in ("a", "b", "c"):
        assert add(realms, db, user).exit_code == 0
    message = assert_one_line_error(add(realms, db, "d"))
    assert message == (
        "error: realm 'acme.example' allows 3 accounts (max_accounts, 第7条); it has 3"
    )


def test_add_to_an_unknown_realm_is_refused(realms: Path, db: Path) -> None:
    message = assert_one_line_error(add(realms, db, "bob", realm="nope.example"))
    assert "realm 'nope.example' is not defined" in message
    assert not db.exists()


def test_add_to_a_proxy_realm_is_refused(realms: Path, db: Path) -> None:
    (realms / "globex.toml").write_text(PROXY_CONTRACT)
    message = assert_one_line_error(add(realms, db, "bob", realm="globex.example"))
    assert "is a proxy realm" in message


def test_add_to_a_vpdn_realm_needs_authenticate(realms: Path, db: Path) -> None:
    (realms / "carriers.toml").write_text(CARRIERS)
    (realms / "open.toml").write_text(
        VPDN_CONTRACT.format(id="open", realm="vpn.open.example", authenticate="false")
    )
    (realms / "auth.toml").write_text(
        VPDN_CONTRACT.format(id="auth", realm="vpn.auth.example", authenticate="true")
    )
    message = assert_one_line_error(add(realms, db, "bob", realm="vpn.open.example"))
    assert "authenticate = false" in message
    result = add(realms, db, "bob", realm="vpn.auth.example")
    assert result.exit_code == 0, result.output


def test_duplicate_add_is_one_line_error(realms: Path, cli_database: str) -> None:
    db = cli_database
    assert add(realms, db, "bob").exit_code == 0
    message = assert_one_line_error(add(realms, db, "bob"))
    assert message == "error: account 'bob' already exists in realm 'acme.example'"


def test_bad_framed_ip_is_one_line_error(realms: Path, db: Path) -> None:
    message = assert_one_line_error(add(realms, db, "bob", "--framed-ip", "10.0.0.999"))
    assert "not an IPv4 address" in message


def test_missing_password_is_a_usage_error(realms: Path, db: Path) -> None:
    result = run("account", "add", "acme.example", "bob", "--db", db, "--realms", realms)
    message = assert_one_line_error(result, code=2)
    assert "--password" in message
    assert "radiusgw account add --help" in message


def stored_password(db: str | Path, user: str) -> str:
    account = stored(db, user)
    assert account is not None
    return account.password


def add_from_stdin(realms: Path, db: str | Path, user: str, stdin: str, *extra: str) -> Result:
    args = ["account", "add", "acme.example", user, "--db", db, "--realms", realms, *extra]
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


def test_password_stdin_reads_one_line_without_its_line_ending(
    realms: Path, cli_database: str
) -> None:
    db = cli_database
    result = add_from_stdin(realms, db, "bob", " two words \r\nnext line\n", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert stored_password(db, "bob") == " two words "
    assert "two words" not in result.output


def test_a_password_piped_in_without_an_option_is_read_the_same_way(realms: Path, db: Path) -> None:
    result = add_from_stdin(realms, db, "bob", "piped-pw")
    assert result.exit_code == 0, result.output
    assert stored_password(db, "bob") == "piped-pw"


def test_a_terminal_is_asked_for_the_password_twice_without_echo(
    realms: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "_is_terminal", lambda stream: True)
    result = add_from_stdin(realms, db, "bob", "typed-pw\ntyped-pw\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    assert "typed-pw" not in result.output
    assert stored_password(db, "bob") == "typed-pw"


def test_password_and_password_stdin_together_is_a_usage_error(realms: Path, db: Path) -> None:
    result = add_from_stdin(realms, db, "bob", "pw\n", "--password", "pw", "--password-stdin")
    assert "not both" in assert_one_line_error(result, code=2)
    assert not db.exists()


def test_an_empty_line_on_stdin_is_no_password(realms: Path, db: Path) -> None:
    result = add_from_stdin(realms, db, "bob", "\n", "--password-stdin")
    assert "no password" in assert_one_line_error(result, code=2)
    assert not db.exists()


def test_invalid_realm_files_print_their_problems(realms: Path, db: Path) -> None:
    (realms / "acme.toml").write_text(GROUP_CONTRACT.format(max_accounts='"many"'))
    result = add(realms, db, "bob")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "acme.toml" in result.stderr and "max_accounts" in result.stderr
    assert not db.exists()


def test_a_custom_key_file_is_used_and_required(
    realms: Path, cli_database: str, tmp_path: Path
) -> None:
    db = cli_database
    key = tmp_path / "secret.key"
    assert add(realms, db, "bob", "--key-file", str(key)).exit_code == 0
    assert key.exists() and not Settings(db=db).key_path.exists()
    listed = run("account", "list", "acme.example", "--db", db, "--key-file", key)
    assert listed.stdout.startswith("bob\t")
    message = assert_one_line_error(run("account", "list", "acme.example", "--db", db))
    assert "is missing" in message


# -- account list / disable / enable / remove --------------------------------------------------


def test_list_shows_state_and_framed_ip_but_never_the_password(
    realms: Path, cli_database: str
) -> None:
    db = cli_database
    add(realms, db, "bob", "--framed-ip", "192.0.2.5")
    add(realms, db, "alice")
    result = run("account", "list", "acme.example", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == "alice\tenabled\t-\nbob\tenabled\t192.0.2.5\n"
    assert "pw-" not in result.output


def test_list_escapes_what_would_drive_the_terminal(realms: Path, cli_database: str) -> None:
    db = cli_database
    # A C1 CSI (U+009B), a right-to-left override and a backslash; C0 controls are refused on
    # add, but a database written by something else may hold them too.
    assert add(realms, db, "eve\u009b2J\u202e\\x").exit_code == 0
    result = run("account", "list", "acme.example", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == "eve\\x9b2J\\u202e\\\\x\tenabled\t-\n"


def test_list_of_an_empty_realm_prints_nothing_on_stdout(realms: Path, cli_database: str) -> None:
    db = cli_database
    add(realms, db, "bob")
    result = run("account", "list", "other.example", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no accounts" in result.stderr


def test_list_of_a_missing_database_does_not_create_it(db: Path) -> None:
    message = assert_one_line_error(run("account", "list", "acme.example", "--db", db))
    assert "does not exist" in message
    assert not db.exists()


def test_disable_enable_remove(realms: Path, cli_database: str) -> None:
    db = cli_database
    add(realms, db, "bob")
    result = run("account", "disable", "acme.example", "bob", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == "disabled account 'bob' in realm 'acme.example'\n"
    assert run("account", "list", "acme.example", "--db", db).stdout == "bob\tdisabled\t-\n"

    assert run("account", "enable", "acme.example", "bob", "--db", db).exit_code == 0
    assert run("account", "list", "acme.example", "--db", db).stdout == "bob\tenabled\t-\n"

    result = run("account", "remove", "acme.example", "bob", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == "removed account 'bob' from realm 'acme.example'\n"
    assert run("account", "list", "acme.example", "--db", db).stdout == ""


@pytest.mark.parametrize("command", ["disable", "enable", "remove"])
def test_changing_an_unknown_account_is_one_line_error(
    realms: Path, cli_database: str, command: str
) -> None:
    db = cli_database
    add(realms, db, "bob")
    message = assert_one_line_error(run("account", command, "acme.example", "ghost", "--db", db))
    assert message == "error: there is no account 'ghost' in realm 'acme.example'"


# -- account import ----------------------------------------------------------------------------


def import_csv(realms: Path, db: str | Path, tmp_path: Path, text: str) -> Result:
    path = tmp_path / "accounts.csv"
    path.write_text(text, encoding="utf-8")
    return run("account", "import", "acme.example", path, "--db", db, "--realms", realms)


def listed(db: str | Path) -> str:
    return run("account", "list", "acme.example", "--db", db).stdout


def test_import_without_framed_ip(realms: Path, db: Path, tmp_path: Path) -> None:
    result = import_csv(realms, db, tmp_path, "username,password\nalice,pa\nbob,pb\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 2 accounts into realm 'acme.example'\n"
    assert listed(db) == "alice\tenabled\t-\nbob\tenabled\t-\n"
    account = stored(db, "bob")
    assert account is not None and account.password == "pb"


def test_import_with_framed_ip_and_timeouts(
    realms: Path, cli_database: str, tmp_path: Path
) -> None:
    db = cli_database
    text = (
        "\ufeffusername,password,framed_ip,session_timeout,idle_timeout\r\n"  # Excel's BOM, CRLF
        'alice,"p,a",10.0.0.1,3600,\r\n'
        "bob,pb,,,600\r\n"
    )
    result = import_csv(realms, db, tmp_path, text)
    assert result.exit_code == 0, result.output
    assert listed(db) == "alice\tenabled\t10.0.0.1\nbob\tenabled\t-\n"
    alice, bob = stored(db, "alice"), stored(db, "bob")
    assert alice is not None and (alice.password, alice.session_timeout) == ("p,a", 3600)
    assert bob is not None and (bob.idle_timeout, bob.session_timeout) == (600, None)


def test_import_with_a_bad_row_imports_nothing_and_names_the_line(
    realms: Path, cli_database: str, tmp_path: Path
) -> None:
    db = cli_database
    text = "username,password,framed_ip\nalice,pa,10.0.0.1\n\nbob,pb,10.0.0.300\n"
    message = assert_one_line_error(import_csv(realms, db, tmp_path, text))
    assert "accounts.csv: line 4: framed_ip '10.0.0.300'" in message
    assert "nothing was imported" in message
    assert listed(db) == ""


def test_import_of_a_duplicate_names_both_lines(realms: Path, db: Path, tmp_path: Path) -> None:
    text = "username,password\nalice,pa\nbob,pb\nalice,again\n"
    message = assert_one_line_error(import_csv(realms, db, tmp_path, text))
    assert "line 4: account 'alice' appears twice in the input (first at line 2)" in message


def test_import_with_an_unknown_column_is_refused(realms: Path, db: Path, tmp_path: Path) -> None:
    message = assert_one_line_error(
        import_csv(realms, db, tmp_path, "username,password,shoe_size\nbob,pb,42\n")
    )
    assert "line 1: unknown column 'shoe_size'" in message
    assert not db.exists()  # the header is checked before the database is opened


def test_import_without_a_password_column_is_refused(
    realms: Path, db: Path, tmp_path: Path
) -> None:
    message = assert_one_line_error(import_csv(realms, db, tmp_path, "username\nbob\n"))
    assert "lacks password" in message


def test_import_with_a_short_row_is_refused(realms: Path, db: Path, tmp_path: Path) -> None:
    text = "username,password,framed_ip\nalice,pa,10.0.0.1\nbob,pb\n"
    message = assert_one_line_error(import_csv(realms, db, tmp_path, text))
    assert "line 3: 2 fields where the header has 3" in message
    assert listed(db) == ""


def test_import_with_a_bad_timeout_is_refused(realms: Path, db: Path, tmp_path: Path) -> None:
    text = "username,password,idle_timeout\nalice,pa,soon\n"
    message = assert_one_line_error(import_csv(realms, db, tmp_path, text))
    assert "line 2: idle_timeout 'soon' is not a whole number" in message


def test_import_beyond_max_accounts_names_the_limit(
    realms: Path, cli_database: str, tmp_path: Path
) -> None:
    db = cli_database
    add(realms, db, "existing")
    text = "username,password\na,1\nb,2\nc,3\n"
    message = assert_one_line_error(import_csv(realms, db, tmp_path, text))
    assert "line 4: realm 'acme.example' allows 3 accounts (max_accounts, 第7条)" in message
    assert listed(db) == "existing\tenabled\t-\n"


def test_import_of_an_empty_file_is_refused(realms: Path, db: Path, tmp_path: Path) -> None:
    message = assert_one_line_error(import_csv(realms, db, tmp_path, ""))
    assert "is empty" in message


def test_import_of_a_missing_file_is_a_usage_error(realms: Path, db: Path, tmp_path: Path) -> None:
    result = run(
        "account", "import", "acme.example", tmp_path / "no.csv", "--db", db, "--realms", realms
    )
    assert "does not exist" in assert_one_line_error(result, code=2)


def test_import_draws_progress_only_on_a_terminal(
    realms: Path, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "username,password\n" + "".join(f"u{i},p{i}\n" for i in range(3))
    result = import_csv(realms, db, tmp_path, text)
    assert result.exit_code == 0 and "importing" not in result.stderr
    monkeypatch.setattr(cli_module, "_is_terminal", lambda stream: True)
    db2 = tmp_path / "other.db"
    result = import_csv(realms, db2, tmp_path, text)
    assert result.exit_code == 0, result.output
    assert "importing" in result.stderr
    assert "importing" not in result.stdout


# -- serve -------------------------------------------------------------------------------------


def test_serve_builds_settings_from_flags_and_returns_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[Settings] = []

    def fake_serve(settings: Settings) -> int:
        seen.append(settings)
        return 3

    monkeypatch.setattr(radiusgw.server, "serve", fake_serve)
    result = run("serve")
    assert result.exit_code == 3, result.output
    assert seen[-1] == Settings()

    result = run(
        *("serve", "--realms", tmp_path, "--db", tmp_path / "x.db", "--listen", "::1"),
        *("--auth-port", "11812", "--acct-port", "11813", "--workers", "4"),
        *("--key-file", tmp_path / "k", "--access-log", "--log-level", "DEBUG"),
    )
    assert result.exit_code == 3, result.output
    assert seen[-1] == Settings(
        realms=tmp_path,
        db=str(tmp_path / "x.db"),
        key_file=tmp_path / "k",
        listen="::1",
        auth_port=11812,
        acct_port=11813,
        workers=4,
        access_log=True,
        log_level="debug",
    )


@pytest.mark.parametrize(
    "flags",
    [("--workers", "0"), ("--auth-port", "70000"), ("--listen", "example.com")],
)
def test_serve_refuses_bad_flags_as_usage_errors(
    monkeypatch: pytest.MonkeyPatch, flags: tuple[str, str]
) -> None:
    monkeypatch.setattr(radiusgw.server, "serve", lambda settings: pytest.fail("started"))
    message = assert_one_line_error(run("serve", *flags), code=2)
    assert flags[0] in message


# -- the real command --------------------------------------------------------------------------


def test_python_m_radiusgw_reports_an_operator_error_without_traceback(
    realms: Path, db: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "radiusgw", "account", "add", "nope.example", "bob"]
    command += ["--password", "hunter2", "--db", str(db), "--realms", str(realms)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: realm 'nope.example' is not defined")
    assert "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr


def test_python_m_radiusgw_takes_the_password_from_a_pipe_not_the_command_line(
    realms: Path, db: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "radiusgw", "account", "add", "acme.example", "bob"]
    command += ["--password-stdin", "--db", str(db), "--realms", str(realms)]
    proc = subprocess.run(
        command, input="hunter2\n", capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert stored_password(db, "bob") == "hunter2"


def test_add_with_exist_ok_leaves_an_existing_account_unchanged(
    realms: Path, cli_database: str
) -> None:
    db = cli_database
    assert add(realms, db, "alice").exit_code == 0
    again = run(
        "account",
        "add",
        "acme.example",
        "alice",
        "--password",
        "changed",
        "--db",
        db,
        "--realms",
        realms,
        "--exist-ok",
    )
    assert again.exit_code == 0, again.output
    assert "left as it is" in again.output
    account = stored(db, "alice")
    assert account is not None and account.password != "changed"


# -- RADIUSGW_DB -------------------------------------------------------------------------------


def test_serve_takes_the_database_from_radiusgw_db_when_db_is_absent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(radiusgw.server, "serve", lambda settings: seen.append(settings) or 0)
    monkeypatch.setenv("RADIUSGW_DB", str(tmp_path / "env.db"))
    assert run("serve").exit_code == 0
    assert seen[-1].db == str(tmp_path / "env.db")
    assert run("serve", "--db", tmp_path / "flag.db").exit_code == 0
    assert seen[-1].db == str(tmp_path / "flag.db")  # the flag wins
    monkeypatch.delenv("RADIUSGW_DB")
    assert run("serve").exit_code == 0
    assert seen[-1].db == Settings().db  # neither: ./radiusgw.db as before


def test_account_commands_take_the_database_from_radiusgw_db(
    monkeypatch: pytest.MonkeyPatch, realms: Path, cli_database: str
) -> None:
    db = cli_database
    monkeypatch.setenv("RADIUSGW_DB", db)
    added = run("account", "add", "acme.example", "bob", "--password", "pw", "--realms", realms)
    assert added.exit_code == 0, added.output
    listed = run("account", "list", "acme.example")
    assert listed.exit_code == 0, listed.output
    assert "bob" in listed.stdout
    disabled = run("account", "disable", "acme.example", "bob")
    assert disabled.exit_code == 0, disabled.output
    account = stored(db, "bob")
    assert account is not None and not account.enabled
