"""The store boundary (radiusgw.store.backend): a backend opened by URL scheme from a registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiusgw.domain import AccountRow
from radiusgw.errors import StoreError
from radiusgw.store import backend
from radiusgw.store.backend import open_backend, scheme_of
from radiusgw.store.postgres.backend import PostgresBackend
from radiusgw.store.sqlite_backend import SqliteBackend


@pytest.mark.parametrize(
    ("given", "scheme"),
    [
        ("gw.db", "sqlite"),
        ("/var/lib/radiusgw/gw.db", "sqlite"),
        ("sqlite:gw.db", "sqlite"),
        ("sqlite:///var/lib/gw.db", "sqlite"),
        ("postgresql://gw@db.example:5432/radiusgw", "postgresql"),
        ("postgres://gw@db.example/radiusgw", "postgresql"),
        ("C:gw.db", "sqlite"),  # one letter before the colon: a drive, not a scheme
    ],
)
def test_the_scheme_picks_the_backend(given: str, scheme: str) -> None:
    assert scheme_of(given) == scheme


@pytest.mark.parametrize("form", ["{path}", "sqlite:{path}", "sqlite://{path}"])
def test_a_path_or_sqlite_url_opens_the_sqlite_file(tmp_path: Path, form: str) -> None:
    db = tmp_path / "gw.db"
    store = open_backend(form.format(path=db), tmp_path / "gw.key")
    try:
        assert isinstance(store, SqliteBackend)
        store.add_account("acme.example", AccountRow("bob", "pw"), max_accounts=None)
        assert store.get_account("acme.example", "bob") is not None
        assert store.live_sessions() == [] and store.lns_states() == []
    finally:
        store.close()
    assert db.exists()


def test_every_backend_is_opened_by_its_url(database: str, backend: str, tmp_path: Path) -> None:
    store = open_backend(database, tmp_path / "gw.key")
    try:
        assert isinstance(store, PostgresBackend if backend == "postgres" else SqliteBackend)
        store.add_account("acme.example", AccountRow("bob", "pw"), max_accounts=None)
        assert store.get_account("acme.example", "bob") is not None
        assert store.live_sessions() == [] and store.lns_states() == []
        assert store.record_lns_health("acme.example", 0, "192.0.2.1", 1701, "up", "", 5.0)
        assert not store.record_lns_health("acme.example", 0, "192.0.2.1", 1701, "up", "", 6.0)
        [state] = store.lns_states()
        assert (state.checked_at, state.changed_at) == (6.0, 5.0)
        ids = store.spool_accounting_many([("Acme.example", b"p1", "198.51.100.7", 1.0)] * 2)
        assert store.spool_counts() == {"acme.example": 2}
        assert [e.id for e in store.spooled("acme.example", 10)] == ids
        assert store.unspool(ids) == 2 and store.spool_counts() == {}
    finally:
        store.close()


@pytest.mark.postgres
def test_a_database_without_the_schema_is_refused_in_one_sentence(
    postgres_empty_url: str, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="has no radiusgw schema yet; run radiusgw db migrate"):
        open_backend(postgres_empty_url, tmp_path / "gw.key")


def test_read_only_opens_nothing_until_asked_and_needs_no_key(
    database: str, tmp_path: Path
) -> None:
    open_backend(database, tmp_path / "gw.key").close()
    (tmp_path / "gw.key").unlink()
    store = open_backend(database, tmp_path / "gw.key", read_only=True)
    try:  # the commands that read sessions never needed the password key
        assert store.live_sessions() == []
        assert store.usage("acme.example", "2025-03").sessions == 0
        assert store.quarantined() == [] and store.upstream_rows() == []
    finally:
        store.close()


def test_a_url_whose_backend_is_not_installed_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As an installation without the PostgreSQL module (or its opener) would answer.
    monkeypatch.setitem(backend._OPENERS, "postgresql", "radiusgw.store.no_such_backend:open")
    with pytest.raises(StoreError, match="the postgresql backend is not available"):
        open_backend("postgresql://gw@127.0.0.1:1/radiusgw", "unused.key")


def test_an_unknown_scheme_is_one_sentence_naming_the_known_ones() -> None:
    with pytest.raises(StoreError, match=r"unknown scheme 'mysql' \(postgresql, sqlite\)"):
        open_backend("mysql://gw@127.0.0.1/radiusgw", "unused.key")
