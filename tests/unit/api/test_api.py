"""The management API (issue 18.4) with httpx against the ASGI app on a real SQLite store:
bearer tokens, contract scoping (403, and nothing changes), account operations, the audit log,
the auth log, status filtering, reload, and the tokens file's checks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from radiusgw.api.app import Api
from radiusgw.api.tokens import TokenFileError, load_tokens
from radiusgw.domain import AuthLogRow, FailedLogin
from radiusgw.store.backend import open_backend
from tests.integration.gateway import ACME, GLOBEX, write_realms
from tests.unit.engine.helpers import ListLog
from tests.unit.store.test_authlog import write

OPERATOR = "operator-token-0123456789"
ACME_TOKEN = "acme-portal-token-0123456789"
TOKENS = f"""
[[token]]
name = "noc"
token = "{OPERATOR}"

[[token]]
name = "acme-portal"
token = "{ACME_TOKEN}"
contract = "acme"
"""


def tokens_file(tmp_path: Path, text: str = TOKENS, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


class Setup:
    def __init__(self, api: Api, log: ListLog, db: Path, reloads: list[int]) -> None:
        self.api, self.log, self.db, self.reloads = api, log, db, reloads

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.api.app),
            base_url="http://gw/api/v1",
            headers=headers,
        )

    def changes(self) -> list[dict[str, object]]:
        return [e for e in self.log.events if e["event"] == "api-change"]


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    realms = write_realms(tmp_path / "realms", acme=ACME, globex=GLOBEX)
    db = tmp_path / "gw.db"
    log = ListLog()
    reloads: list[int] = []
    api = Api(
        db=str(db),
        key_path=Path(f"{db}.key"),
        realms=realms,
        tokens=load_tokens(tokens_file(tmp_path)),
        log=log,
        reload=lambda: reloads.append(1),
    )
    yield Setup(api, log, db, reloads)
    api.close()


async def test_no_token_or_a_wrong_one_is_401_in_json(setup: Setup) -> None:
    for token in (None, "not-a-token-at-all-0000"):
        async with setup.client(token) as c:
            r = await c.get("/realms/acme.example/accounts")
        assert r.status_code == 401
        assert r.json() == {"error": "a valid bearer token is required"}


async def test_a_contract_token_sees_and_changes_only_its_own_realms(setup: Setup) -> None:
    async with setup.client(ACME_TOKEN) as c:
        added = await c.post(
            "/realms/acme.example/accounts", json={"username": "bob", "password": "builder"}
        )
        assert added.status_code == 201 and added.json()["username"] == "bob"
        for method, path in [
            ("GET", "/realms/globex.example/accounts"),
            ("POST", "/realms/globex.example/accounts"),
            ("DELETE", "/realms/globex.example/accounts/bob"),
            ("GET", "/realms/globex.example/sessions"),
            ("GET", "/realms/unknown.example/authlog"),
            ("POST", "/reload"),
        ]:
            r = await c.request(method, path, json={"username": "x", "password": "y"})
            assert r.status_code == 403, (method, path)
            assert "error" in r.json()
    async with setup.client(OPERATOR) as c:
        assert (await c.get("/realms/globex.example/accounts")).json() == []
        r = await c.post(
            "/realms/globex.example/accounts", json={"username": "g", "password": "pw"}
        )
        assert r.status_code == 201
        assert (await c.get("/realms/unknown.example/accounts")).status_code == 404
    assert [(e["token"], e["realm"], e["user"]) for e in setup.changes()] == [
        ("acme-portal", "acme.example", "bob"),
        ("noc", "globex.example", "g"),
    ]


async def test_accounts_disable_reset_password_remove_and_import(setup: Setup) -> None:
    async with setup.client(OPERATOR) as c:
        base = "/realms/acme.example/accounts"
        r = await c.post(base, json={"username": "al", "password": "one", "framed_ip": "10.0.0.9"})
        assert r.status_code == 201
        assert (await c.post(base, json={"username": "al", "password": "x"})).status_code == 409
        r = await c.patch(f"{base}/al", json={"enabled": False, "password": "two"})
        assert r.status_code == 200 and r.json()["enabled"] is False
        assert "password" not in r.json()
        csv_body = "username,password,framed_ip\ncarol,c1,\ndave,d1,10.0.0.7\n"
        r = await c.post(base, content=csv_body, headers={"Content-Type": "text/csv"})
        assert r.status_code == 201 and r.json() == {"imported": 2}
        bad = await c.post(base, content="user,pw\n", headers={"Content-Type": "text/csv"})
        assert bad.status_code == 400 and "unknown column" in bad.json()["error"]
        listed = (await c.get(base)).json()
        assert [(a["username"], a["enabled"]) for a in listed] == [
            ("al", False),
            ("carol", True),
            ("dave", True),
        ]
        assert (await c.delete(f"{base}/carol")).status_code == 204
        assert (await c.get(f"{base}/carol")).status_code == 404
        assert (await c.delete(f"{base}/carol")).status_code == 404
        assert (await c.patch(f"{base}/al", json={"colour": 1})).status_code == 400
    store = open_backend(setup.db, Path(f"{setup.db}.key"))
    try:
        account = store.get_account("acme.example", "al")
        assert account is not None and account.password == "two" and not account.enabled
    finally:
        store.close()
    assert [e["status"] for e in setup.changes()] == [201, 409, 200, 201, 400, 204, 404]


async def test_unlock_lifts_a_lockout_for_its_own_contract_only(setup: Setup) -> None:
    base = "/realms/acme.example/accounts"
    async with setup.client(OPERATOR) as c:
        assert (await c.post(base, json={"username": "eve", "password": "pw"})).status_code == 201
    store = open_backend(setup.db, Path(f"{setup.db}.key"))
    try:  # three wrong passwords within the window, as the workers report them
        failed = [FailedLogin("acme.example", "eve", 1e10 + i, 3, 60.0, 300.0) for i in range(3)]
        assert store.record_failures(failed) != []
    finally:
        store.close()
    async with setup.client(OPERATOR) as c:
        assert (await c.get(f"{base}/eve")).json()["locked_until"] == 1e10 + 302
    async with setup.client(ACME_TOKEN) as c:
        other = await c.patch("/realms/globex.example/accounts/eve", json={"unlock": True})
        assert other.status_code == 403
        assert (await c.patch(f"{base}/eve", json={"unlock": False})).status_code == 400
        assert (await c.patch(f"{base}/nobody", json={"unlock": True})).status_code == 404
        r = await c.patch(f"{base}/eve", json={"unlock": True})
        assert r.status_code == 200 and r.json()["locked_until"] is None
    store = open_backend(setup.db, Path(f"{setup.db}.key"))
    try:
        account = store.get_account("acme.example", "eve")
        assert account is not None and account.locked_until is None and account.enabled
    finally:
        store.close()
    assert [(e["token"], e["status"], e.get("changed")) for e in setup.changes()][1:] == [
        ("acme-portal", 404, None),
        ("acme-portal", 200, ["unlock"]),
    ]


async def test_authlog_usage_status_and_reload(setup: Setup) -> None:
    store = open_backend(setup.db, Path(f"{setup.db}.key"))
    try:
        write(
            store,
            [
                AuthLogRow(
                    100.0,
                    "gw",
                    0,
                    "127.0.0.1",
                    "acme.example",
                    "a@acme.example",
                    "pap",
                    "accept",
                    "",
                    "10.0.0.5",
                    None,
                    None,
                ),
                AuthLogRow(
                    200.0,
                    "gw",
                    1,
                    "127.0.0.1",
                    "acme.example",
                    "b@acme.example",
                    "chap",
                    "reject",
                    "no",
                    None,
                    None,
                    None,
                ),
            ],
        )
        store.record_lns_health("globex.example", 0, "192.0.2.1", 1701, "up", "", 5.0)
    finally:
        store.close()
    async with setup.client(ACME_TOKEN) as c:
        rows = (await c.get("/realms/acme.example/authlog", params={"result": "reject"})).json()
        assert [(r["user"], r["worker"], r["method"]) for r in rows] == [
            ("b@acme.example", 1, "chap")
        ]
        rows = (await c.get("/realms/acme.example/authlog", params={"until": "150"})).json()
        assert [r["time"] for r in rows] == ["1970-01-01T00:01:40.000+00:00"]
        bad = await c.get("/realms/acme.example/authlog", params={"since": "soon"})
        assert bad.status_code == 400
        usage = (await c.get("/realms/acme.example/usage", params={"month": "2025-03"})).json()
        assert usage["sessions"] == 0
        assert (await c.get("/realms/acme.example/usage")).status_code == 400
        assert (await c.get("/status/lns")).json() == []  # globex's LNS is not acme's
    async with setup.client(OPERATOR) as c:
        assert [s["realm"] for s in (await c.get("/status/lns")).json()] == ["globex.example"]
        assert (await c.get("/status/upstreams")).json() == []
        r = await c.post("/reload")
        assert r.status_code == 202 and setup.reloads == [1]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=setup.api.app), base_url="http://gw"
    ) as c:
        spec = (await c.get("/openapi.json")).json()
    assert "/api/v1/realms/{realm}/sessions/{acct_session_id}/disconnect" in spec["paths"]


def test_a_tokens_file_others_may_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="chmod 600"):
        load_tokens(tokens_file(tmp_path, mode=0o644))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[token]]\nname = "a"\ntoken = "short"\n', "at least 16"),
        ('[[token]]\nname = "a"\ntoken = "0123456789abcdef"\nrole = "x"\n', "unknown key 'role'"),
        ('[[token]]\nname = "a"\ntoken = "0123456789abcdef"\n' * 2, "used twice"),
        ("", "no [[token]]"),
        ("[[token]\n", "not valid TOML"),
    ],
)
def test_a_bad_tokens_file_is_one_sentence(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match=message.replace("[", r"\[")):
        load_tokens(tokens_file(tmp_path, text))


def test_a_token_is_never_shown_in_its_repr(tmp_path: Path) -> None:
    assert OPERATOR not in repr(load_tokens(tokens_file(tmp_path)))
