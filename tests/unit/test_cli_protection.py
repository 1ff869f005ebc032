"""The operator names of issue 17.4-17.5: ``account add --calling-station-id/--reply``, the CSV
columns ``calling_station_id`` and ``reply``, ``account unlock``, ``--dictionary DIR`` and
``check`` refusing an unknown reply attribute."""

from __future__ import annotations

from pathlib import Path

from radiusgw.domain import FailedLogin
from radiusgw.store import open_store
from tests.unit.test_cli import (  # the fixtures too: the same realm files and database
    add,
    assert_one_line_error,
    db,
    import_csv,
    realms,
    run,
)

__all__ = ["db", "realms"]


def stored(db: Path, user: str):  # type: ignore[no-untyped-def]
    with open_store(db, Path(f"{db}.key")) as store:
        return store.get_account("acme.example", user)


def test_add_keeps_calling_station_ids_and_reply_attributes(realms: Path, db: Path) -> None:
    result = add(
        realms,
        db,
        "alice",
        "--calling-station-id",
        "00-11-22-AA-BB-CC",
        "--calling-station-id",
        "0312345678",
        "--reply",
        "Framed-Route=192.0.2.0/24 0.0.0.0 1",
        "--reply",
        "Cisco-AVPair=ip:addr-pool=a",
    )
    assert result.exit_code == 0, result.output
    account = stored(db, "alice")
    assert account.calling_station_ids == ("00-11-22-aa-bb-cc", "0312345678")
    assert account.reply == (
        ("Framed-Route", "192.0.2.0/24 0.0.0.0 1"),
        ("Cisco-AVPair", "ip:addr-pool=a"),
    )


def test_add_with_an_unknown_or_bad_reply_attribute_names_account_and_attribute(
    realms: Path, db: Path
) -> None:
    line = assert_one_line_error(add(realms, db, "bob", "--reply", "Filter-Idd=x"))
    assert line == "error: account 'bob': attribute 'Filter-Idd' is not in the dictionary"
    line = assert_one_line_error(add(realms, db, "bob", "--reply", "Session-Timeout=soon"))
    assert "account 'bob'" in line and "'Session-Timeout'" in line and "integer" in line
    assert not db.exists() or stored(db, "bob") is None


def test_add_reads_names_from_an_operator_dictionary(
    realms: Path, db: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "dicts"
    extra.mkdir()
    (extra / "dictionary").write_text(
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Level 1 integer\nEND-VENDOR Acme\n"
    )
    assert_one_line_error(add(realms, db, "carol", "--reply", "Acme-Level=3"))
    result = add(realms, db, "carol", "--reply", "Acme-Level=3", "--dictionary", extra)
    assert result.exit_code == 0, result.output


def test_import_reads_calling_station_id_and_reply_columns(
    realms: Path, db: Path, tmp_path: Path
) -> None:
    text = (
        "username,password,calling_station_id,reply\n"
        'alice,pw,00-11-22-AA-BB-CC,"Filter-Id=gold;Framed-Route=192.0.2.0/24 0.0.0.0 1"\n'
        "bob,pw,,\n"
    )
    result = import_csv(realms, db, tmp_path, text)
    assert result.exit_code == 0, result.output
    alice = stored(db, "alice")
    assert alice.calling_station_ids == ("00-11-22-aa-bb-cc",)
    assert alice.reply == (("Filter-Id", "gold"), ("Framed-Route", "192.0.2.0/24 0.0.0.0 1"))
    assert (stored(db, "bob").calling_station_ids, stored(db, "bob").reply) == ((), ())


def test_import_with_an_unknown_reply_attribute_names_the_line_and_imports_nothing(
    realms: Path, db: Path, tmp_path: Path
) -> None:
    text = "username,password,reply\nalice,pw,Filter-Id=gold\nbob,pw,No-Such=1\n"
    line = assert_one_line_error(import_csv(realms, db, tmp_path, text))
    assert "line 3: account 'bob': attribute 'No-Such' is not in the dictionary" in line
    assert "nothing was imported" in line


def test_unlock_clears_a_lock_and_an_unknown_account_is_one_line_error(
    realms: Path, db: Path
) -> None:
    assert add(realms, db, "alice").exit_code == 0
    with open_store(db, Path(f"{db}.key")) as store:
        store.record_failures([FailedLogin("acme.example", "alice", 1e9, 1, 60.0, 1e9)])
    assert stored(db, "alice").locked_until is not None
    result = run("account", "unlock", "acme.example", "alice", "--db", db)
    assert result.exit_code == 0 and result.stdout == (
        "unlocked account 'alice' in realm 'acme.example'\n"
    )
    assert stored(db, "alice").locked_until is None
    line = assert_one_line_error(run("account", "unlock", "acme.example", "nobody", "--db", db))
    assert "no account 'nobody'" in line


def test_check_refuses_an_unknown_reply_attribute_naming_file_and_key(realms: Path) -> None:
    path = realms / "acme.toml"
    path.write_text(path.read_text() + '[realm.reply]\n"Filter-Id" = "a"\n"Cisco-AVPairs" = "x"\n')
    result = run("check", "--realms", realms)
    assert result.exit_code == 1
    assert result.stdout == (
        f"{path}: realm[0].reply.Cisco-AVPairs: realm 'acme.example': attribute "
        "'Cisco-AVPairs' is not in the dictionary\n"
    )
