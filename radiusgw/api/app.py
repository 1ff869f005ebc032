"""The management API's routes (issue 18.4): a Starlette application over the store.

Starlette on uvicorn: maintained, small (no ORM or validation layer we would not use), typed,
plain ASGI (so httpx tests it in-process with no socket), and uvicorn's ``Server`` runs on a
loop of our choosing with its signal handlers off, in a thread of the serving process
(``radiusgw.server.api_thread``). aiohttp would bring its own server and client stack for the
same work.

Rules:
- Every route under ``/api/v1`` needs ``Authorization: Bearer TOKEN`` (``radiusgw.api.tokens``):
  none or an unknown one is 401; a contract's token reaching another contract's realm, an
  unknown realm, or an operator-only route (``/status/*`` is filtered instead, ``/reload`` is
  refused) is 403, and nothing changes. Errors are JSON ``{"error": "one sentence"}``.
- The store is called through ``Backend`` objects of the API's own, one per thread of a small
  pool: never on the API's event loop, never on a worker's.
- Every change (POST, PATCH, DELETE) is written to the audit log: one ``api-change`` line with
  the token's name, the method, the path, the realm, the user and the status.
- A password is never returned, nor logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from radiusgw.api.tokens import Token, find
from radiusgw.config import load_registry
from radiusgw.config.model import Mode, Realm, Registry
from radiusgw.domain import AccountRow
from radiusgw.errors import AccountLimitError, ConfigError, RadiusGwError
from radiusgw.server.batches import name_os_thread
from radiusgw.server.disconnect_once import disconnect
from radiusgw.sessions import month_bounds
from radiusgw.store.authlog import RESULTS
from radiusgw.store.backend import Backend, open_backend

T = TypeVar("T")
STORE_THREADS = 4


class ApiError(HTTPException):
    pass


class Api:
    """The application and what it needs; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        db: str,
        key_path: Path,
        realms: Path,
        tokens: tuple[Token, ...],
        log: Any,
        node: str | None = None,
        reload: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.key_path = key_path
        self.realms_dir = realms
        self.tokens = tokens
        self.log = log
        self.node = node
        self.reload_server = reload
        self.registry: Registry = load_registry(realms)
        self._local = threading.local()
        self._opened: list[Backend] = []
        self._executor = ThreadPoolExecutor(
            STORE_THREADS, "api-store", initializer=name_os_thread, initargs=("api-store",)
        )
        routes = [
            Route("/realms/{realm}/accounts", self.accounts, methods=["GET", "POST"]),
            Route(
                "/realms/{realm}/accounts/{username}",
                self.account,
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route("/realms/{realm}/sessions", self.sessions, methods=["GET"]),
            Route(
                "/realms/{realm}/sessions/{acct_session_id}/disconnect",
                self.disconnect,
                methods=["POST"],
            ),
            Route("/realms/{realm}/usage", self.usage, methods=["GET"]),
            Route("/realms/{realm}/authlog", self.authlog, methods=["GET"]),
            Route("/status/lns", self.lns_status, methods=["GET"]),
            Route("/status/upstreams", self.upstream_status, methods=["GET"]),
            Route("/reload", self.reload, methods=["POST"]),
        ]
        self.app = Starlette(
            routes=[
                Mount("/api/v1", routes=routes),
                Route("/openapi.json", self.openapi, methods=["GET"]),
            ],
            exception_handlers={HTTPException: _http_error, Exception: self._internal},
        )

    def close(self) -> None:
        self._executor.submit(lambda: None).result()
        self._executor.shutdown(wait=True)
        for store in self._opened:
            with contextlib.suppress(Exception):  # its thread has ended: close what it left
                store.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _store(self) -> Backend:
        store: Backend | None = getattr(self._local, "store", None)
        if store is None:
            store = open_backend(self.db, self.key_path, node=self.node)
            self._local.store = store
            self._opened.append(store)
        return store

    async def _call(self, operation: Callable[[Backend], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: operation(self._store()))

    def _token(self, request: Request) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        token = find(self.tokens, presented.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise ApiError(401, "a valid bearer token is required")
        return token

    def _realm(self, request: Request) -> tuple[Token, Realm]:
        token = self._token(request)
        name = request.path_params["realm"].lower()
        realm = self.registry.realms.get(name)
        if token.contract is not None and (realm is None or realm.contract_id != token.contract):
            raise ApiError(403, f"token {token.name!r} may not use realm {name!r}")
        if realm is None:
            raise ApiError(404, f"realm {name!r} is not defined in the realm files")
        return token, realm

    def _audit(self, request: Request, token: Token, status: int, **what: Any) -> None:
        self.log.info(
            "api-change",
            token=token.name,
            method=request.method,
            path=request.url.path,
            status=status,
            **what,
        )

    async def _internal(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, RadiusGwError):
            return _error(400, str(exc))
        self.log.error("api-error", path=request.url.path, error=repr(exc))
        return _error(500, "the request failed inside the gateway; its log says why")

    # -- accounts ---------------------------------------------------------------------------

    async def accounts(self, request: Request) -> Response:
        token, realm = self._realm(request)
        if request.method == "GET":
            rows = await self._call(lambda s: s.list_accounts(realm.name))
            return JSONResponse([_account(a) for a in rows])
        _keeps_accounts(realm)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if kind == "text/csv":
            from radiusgw.cli import _csv_rows  # the CLI's CSV rules, one statement of them

            try:
                text = body.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ApiError(400, "the CSV body is not UTF-8 text") from None

            def do_import(s: Backend) -> int:
                rows = list(_csv_rows(Path("the CSV body"), io.StringIO(text, newline="")))
                return s.import_accounts(realm.name, rows, max_accounts=realm.max_accounts)

            imported = await self._store_change(request, token, realm, None, do_import)
            self._audit(request, token, 201, realm=realm.name, imported=imported)
            return JSONResponse({"imported": imported}, status_code=201)
        data = _json_object(body)
        row = _account_row(data)
        await self._store_change(
            request,
            token,
            realm,
            row.username,
            lambda s: s.add_account(realm.name, row, max_accounts=realm.max_accounts),
        )
        self._audit(request, token, 201, realm=realm.name, user=row.username)
        account = await self._call(lambda s: s.get_account(realm.name, row.username))
        return JSONResponse(_account(account), status_code=201)

    async def account(self, request: Request) -> Response:
        token, realm = self._realm(request)
        user = request.path_params["username"]
        if request.method == "GET":
            found = await self._call(lambda s: s.get_account(realm.name, user))
            if found is None:
                raise ApiError(404, f"there is no account {user!r} in realm {realm.name!r}")
            return JSONResponse(_account(found))
        if request.method == "DELETE":
            await self._store_change(
                request, token, realm, user, lambda s: s.remove_account(realm.name, user)
            )
            self._audit(request, token, 204, realm=realm.name, user=user)
            return Response(status_code=204)
        data = _json_object(await request.body())
        unknown = set(data) - {"enabled", "password", "unlock"}
        if unknown or not data:
            raise ApiError(
                400,
                "PATCH takes {'enabled': true|false}, {'password': '...'} and/or {'unlock': true}",
            )
        enabled, password = data.get("enabled"), data.get("password")
        unlock = data.get("unlock")
        if enabled is not None and not isinstance(enabled, bool):
            raise ApiError(400, "enabled must be true or false")
        if password is not None and (not isinstance(password, str) or not password):
            raise ApiError(400, "password must be a non-empty string")
        if unlock is not None and unlock is not True:
            raise ApiError(400, "unlock must be true (a lock is set by failed logins only)")

        def change(s: Backend) -> None:
            if password is not None:
                s.set_password(realm.name, user, password)
            if enabled is not None:
                s.set_enabled(realm.name, user, enabled)
            if unlock:  # `account unlock`: the lock lifted, the failures counted forgotten
                s.unlock_account(realm.name, user)

        await self._store_change(request, token, realm, user, change)
        self._audit(request, token, 200, realm=realm.name, user=user, changed=sorted(data))
        found = await self._call(lambda s: s.get_account(realm.name, user))
        return JSONResponse(_account(found))

    async def _store_change(
        self,
        request: Request,
        token: Token,
        realm: Realm,
        user: str | None,
        operation: Callable[[Backend], T],
    ) -> T:
        try:
            return await self._call(operation)
        except RadiusGwError as exc:  # the store's refusal, or a CSV body it cannot read
            message = str(exc)
            status = 409 if isinstance(exc, AccountLimitError) or "exists" in message else 400
            if message.startswith("there is no account"):
                status = 404
            self._audit(request, token, status, realm=realm.name, user=user, error=message)
            raise ApiError(status, message) from None

    # -- sessions, usage, the auth log ----------------------------------------------------

    async def sessions(self, request: Request) -> Response:
        _, realm = self._realm(request)
        rows = await self._call(lambda s: s.live_sessions(realm.name))
        return JSONResponse([_session(r) for r in rows])

    async def disconnect(self, request: Request) -> Response:
        token, realm = self._realm(request)
        session_id = request.path_params["acct_session_id"]
        rows = [
            r
            for r in await self._call(lambda s: s.live_sessions(realm.name))
            if r.acct_session_id == session_id
        ]
        if not rows:
            raise ApiError(404, f"no live session {session_id!r} in realm {realm.name!r}")
        answers = await disconnect(rows, self.registry, self.log)
        shown = [a.as_dict() for a in answers]
        self._audit(
            request,
            token,
            200,
            realm=realm.name,
            user=rows[0].username,
            outcome=[a.outcome for a in answers],
        )
        return JSONResponse(shown[0] if len(shown) == 1 else shown)

    async def usage(self, request: Request) -> Response:
        _, realm = self._realm(request)
        month = request.query_params.get("month", "")
        try:
            month_bounds(month)
        except ValueError:
            raise ApiError(400, f"month {month!r} is not YYYY-MM") from None
        row = await self._call(lambda s: s.usage(realm.name, month))
        return JSONResponse(
            {
                "realm": row.realm,
                "month": row.month,
                "sessions": row.sessions,
                "session_time_seconds": row.session_time_seconds,
                "input_octets": row.input_octets,
                "output_octets": row.output_octets,
            }
        )

    async def authlog(self, request: Request) -> Response:
        from radiusgw.cli import authlog_fields, parse_time

        _, realm = self._realm(request)
        q = request.query_params
        times: dict[str, float | None] = {}
        for key in ("since", "until"):
            value = q.get(key) or None
            try:
                times[key] = None if value is None else parse_time(value)
            except ValueError:
                raise ApiError(
                    400, f"{key} {value!r} is neither ISO 8601 nor unix seconds"
                ) from None
        result = q.get("result") or None
        if result is not None and result not in RESULTS:
            raise ApiError(400, f"result must be one of {', '.join(RESULTS)}")
        rows = await self._call(
            lambda s: s.auth_log(
                realm.name,
                user=q.get("user") or None,
                since=times["since"],
                until=times["until"],
                result=result,
            )
        )
        return JSONResponse([authlog_fields(r) for r in rows])

    # -- status and reload -------------------------------------------------------------------

    def _visible(self, token: Token, realm: str) -> bool:
        if token.contract is None:
            return True
        found = self.registry.realms.get(realm)
        return found is not None and found.contract_id == token.contract

    async def lns_status(self, request: Request) -> Response:
        token = self._token(request)
        states = await self._call(lambda s: s.lns_states())
        return JSONResponse(
            [
                {
                    "realm": s.realm,
                    "address": s.address,
                    "port": s.port,
                    "status": s.status,
                    "detail": s.detail,
                    "checked_at": s.checked_at,
                    "changed_at": s.changed_at,
                }
                for s in states
                if self._visible(token, s.realm)
            ]
        )

    async def upstream_status(self, request: Request) -> Response:
        token = self._token(request)
        rows = await self._call(lambda s: s.upstream_rows())
        return JSONResponse(
            [
                {
                    "realm": r.realm,
                    "address": r.address,
                    "port": r.port,
                    "kind": r.kind,
                    "state": r.state,
                    "since": r.since,
                    "worker": r.worker,
                    "outstanding": r.outstanding,
                    "sent": r.sent,
                    "answered": r.answered,
                    "unanswered": r.unanswered,
                }
                for r in rows
                if self._visible(token, r.realm)
            ]
        )

    async def reload(self, request: Request) -> Response:
        token = self._token(request)
        if token.contract is not None:
            raise ApiError(403, f"token {token.name!r} may not reload the gateway")
        try:
            registry = load_registry(self.realms_dir)
        except ConfigError as exc:
            self._audit(request, token, 400, problems=exc.problems)
            return JSONResponse(
                {"error": "the realm files are invalid; the gateway keeps its set",
                 "problems": exc.problems},
                status_code=400,
            )  # fmt: skip
        self.registry = registry
        if self.reload_server is not None:
            self.reload_server()
        self._audit(request, token, 202)
        return JSONResponse({"reload": "requested"}, status_code=202)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)


# -- helpers ---------------------------------------------------------------------------------


def _error(status: int, sentence: str) -> JSONResponse:
    return JSONResponse({"error": sentence}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    response = _error(exc.status_code, str(exc.detail))
    if headers:
        response.headers.update(headers)
    return response


def _keeps_accounts(realm: Realm) -> None:
    if realm.mode is Mode.PROXY or (realm.mode is Mode.VPDN and not realm.authenticate):
        raise ApiError(409, f"realm {realm.name!r} keeps no accounts in the gateway")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


_ROW_KEYS = {"username", "password", "framed_ip", "session_timeout", "idle_timeout"}


def _account_row(data: dict[str, Any]) -> AccountRow:
    unknown = set(data) - _ROW_KEYS
    if unknown:
        raise ApiError(
            400, f"unknown key {sorted(unknown)[0]!r}; keys: {', '.join(sorted(_ROW_KEYS))}"
        )
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not username:
        raise ApiError(400, "username must be a non-empty string")
    if not isinstance(password, str) or not password:
        raise ApiError(400, "password must be a non-empty string")
    for key in ("session_timeout", "idle_timeout"):
        if data.get(key) is not None and not isinstance(data[key], int):
            raise ApiError(400, f"{key} must be a whole number of seconds")
    framed = data.get("framed_ip")
    if framed is not None and not isinstance(framed, str):
        raise ApiError(400, "framed_ip must be a string")
    return AccountRow(
        username=username,
        password=password,
        framed_ip=framed,
        session_timeout=data.get("session_timeout"),
        idle_timeout=data.get("idle_timeout"),
    )


def _account(a: Any) -> dict[str, Any]:
    return {
        "username": a.username,
        "realm": a.realm,
        "enabled": a.enabled,
        "framed_ip": a.framed_ip,
        "session_timeout": a.session_timeout,
        "idle_timeout": a.idle_timeout,
        "locked_until": a.locked_until,
    }


def _session(s: Any) -> dict[str, Any]:
    return {
        "user": s.username,
        "realm": s.realm,
        "acct_session_id": s.acct_session_id,
        "nas_address": s.nas_address,
        "nas_ip_address": s.nas_ip_address,
        "nas_identifier": s.nas_identifier,
        "lns": s.lns,
        "framed_ip": s.framed_ip,
        "start": s.start,
        "last_update": s.last_update,
        "session_time": s.session_time,
        "input_octets": s.input_octets,
        "output_octets": s.output_octets,
    }


def _op(summary: str, body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "security": [{"bearer": []}]}
    if body:
        op["requestBody"] = {"description": body}
    return op


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "radiusgw management API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/api/v1/realms/{realm}/accounts": {
            "get": _op("List the realm's accounts (never a password)."),
            "post": _op(
                "Add one account, or import a CSV (all or nothing).",
                "JSON {username, password, framed_ip?, session_timeout?, idle_timeout?}; or "
                "Content-Type: text/csv with the header username,password[,framed_ip,...]",
            ),
        },
        "/api/v1/realms/{realm}/accounts/{username}": {
            "get": _op("One account."),
            "patch": _op(
                "Enable, disable, reset the password, or lift a lockout.",
                "JSON {enabled?, password?, unlock?: true}",
            ),
            "delete": _op("Remove the account."),
        },
        "/api/v1/realms/{realm}/sessions": {"get": _op("Live sessions.")},
        "/api/v1/realms/{realm}/sessions/{acct_session_id}/disconnect": {
            "post": _op("Send a Disconnect-Request (RFC 5176) to the session's NAS; its answer.")
        },
        "/api/v1/realms/{realm}/usage": {"get": _op("Usage of a month: ?month=YYYY-MM.")},
        "/api/v1/realms/{realm}/authlog": {
            "get": _op("Authentication log: ?since=&until=&user=&result=.")
        },
        "/api/v1/status/lns": {"get": _op("LNS health as the probes saw it.")},
        "/api/v1/status/upstreams": {"get": _op("Proxy upstream servers' state.")},
        "/api/v1/reload": {"post": _op("Re-read the realm files (SIGHUP); operator tokens.")},
    },
}
