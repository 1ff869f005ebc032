"""What an Access-Request needs from the store, asked off the loop and bounded by a deadline.

Two kinds of request wait on the store (issue 15.6: nothing blocks the event loop on the
database, and the node keeps answering when the database is slow or gone):

- an account the cache does not hold (``AccountLookup``): read on the ``account-lookup``
  thread, then decided by ``Engine.looked_up``. A store that fails or misses the deadline
  drops the request, as a failing store always did: the NAS retries, or fails over to its
  other server (another node of the fleet). Accounts already cached keep authenticating.
- a session slot (``Admission``, 第14条2): decided in the store on the ``admission`` thread,
  after this worker's acknowledged accounting is applied (``AccountingPipeline.after_applied``).
  A store that fails or misses the deadline leaves the answer to the realm's
  ``on_store_down``: "admit" (the default) sends the accept unchecked, "reject" refuses
  (``Engine.store_down``). Either is logged (``store-error``) and counted.

A failed login of a realm with ``lockout_after`` (issue 17.4) is recorded on the
``failed-logins`` thread, fire and forget: the reject has gone already, and nothing waits for
the store. The store counts it and decides the lock (``Backend.record_failures``); an account it
locks is logged here, once, as ``account-locked``, and reaches every worker's cache through the
change log. A store that fails loses those counts (logged as ``failed-logins-not-recorded``).

``store_deadline`` (``Settings``, ``serve --store-deadline``; 2 s by default, under a NAS's
usual 3-5 s retransmission timer) bounds how long a request waits for either. An admission the
store decides after its deadline may leave a reservation behind; it expires as every
reservation does (``Tuning.reservation_ttl``). At most ``Tuning.max_lookups`` look-ups wait at
once: beyond, a request for an account not cached is dropped at once instead of queueing behind
a stalled database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pyrad.dictionary import Dictionary

from radiusgw.config.model import Mode, Realm, Registry
from radiusgw.domain import AdmissionResult, FailedLogin, Lockout
from radiusgw.engine import AccountLookup, Admission, Engine
from radiusgw.engine.cache import CachedAccount, load
from radiusgw.errors import StoreError
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.server.batches import BatchThread
from radiusgw.server.deadlines import Deadlines
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.server.settings import DEFAULT_TUNING, Tuning
from radiusgw.store.backend import Backend

Looked = CachedAccount | StoreError | None


def authenticating_realms(registry: Registry) -> list[Realm]:
    """The realms whose accounts the gateway checks: group, and VPDN with authenticate."""
    return [
        realm
        for realm in registry.realms.values()
        if realm.mode is Mode.GROUP or (realm.mode is Mode.VPDN and realm.authenticate)
    ]


def read_realm(
    store: Backend, realm: Realm, limit: int, dictionary: Dictionary | None = None
) -> list[tuple[str, CachedAccount]]:
    """The preload's work: up to ``limit`` accounts of ``realm`` as the cache keeps them; a row
    that cannot be sent is left to a look-up (which reports it)."""
    out: list[tuple[str, CachedAccount]] = []
    for account in store.list_accounts(realm.name)[:limit]:
        try:
            value = load(account, realm.name, account.username, realm.reply, dictionary)
        except StoreError:
            continue
        if value is not None:
            out.append((account.username, value))
    return out


def read_accounts(
    store: Backend, batch: list[AccountLookup], dictionary: Dictionary | None = None
) -> list[Looked]:
    """The look-up thread's work: each account as the cache keeps it, or why it cannot be had.

    A store that fails fails the rest of the batch with it (one failed round trip, not one
    per request, while the database is down); a row that cannot be sent fails its request only.
    """
    out: list[Looked] = []
    for n, lookup in enumerate(batch):
        realm = lookup.realm.name
        try:
            account = store.get_account(realm, lookup.local)
        except StoreError as exc:
            out.extend([exc] * (len(batch) - n))
            break
        try:
            out.append(load(account, realm, lookup.local, lookup.realm.reply, dictionary))
        except StoreError as exc:
            out.append(exc)
    return out


class StoreDecisions:
    """A worker's account look-ups and admissions; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        open_store: Callable[[], Backend],
        accounting: AccountingPipeline,
        send: Callable[[bytes, Any], None],
        loop: asyncio.AbstractEventLoop,
        log: Any,
        *,
        deadline: float,
        dictionary: Dictionary | None = None,
        tuning: Tuning = DEFAULT_TUNING,
    ) -> None:
        """``dictionary``: the worker's, for the accounts' reply attributes by name;
        ``tuning``: how many look-ups may wait, how many accounts the preload puts at once."""
        self._engine = engine
        self._max_lookups = tuning.max_lookups
        self._preload_chunk = tuning.preload_chunk
        self._dictionary = dictionary
        self._accounting = accounting
        self._send = send
        self._log = log
        self._lookups: Deadlines[AccountLookup] = Deadlines(deadline)
        self._admissions: Deadlines[Admission] = Deadlines(deadline)
        self.lookup_thread: BatchThread[Backend, AccountLookup] = BatchThread(
            "account-lookup",
            open_store,
            lambda store, batch: read_accounts(store, batch, dictionary),
            loop,
            self._read,
            self._read_failed,
        )
        self.failures: BatchThread[Backend, FailedLogin] = BatchThread(
            "failed-logins",
            open_store,
            lambda store, batch: store.record_failures(batch),
            loop,
            self._locked,
            self._failures_lost,
        )
        engine.failed_login = self.failures.submit
        self.admission: BatchThread[Backend, Admission] = BatchThread(
            "admission",
            open_store,
            lambda store, batch: store.admit([p.request for p in batch], time.time()),
            loop,
            self._admitted,
            self._admission_failed,
        )

    def start(self) -> None:
        self.lookup_thread.start()
        self.admission.start()
        self.failures.start()

    def stop(self) -> None:
        self.lookup_thread.stop()
        self.admission.stop()
        self.failures.stop()

    @property
    def outstanding(self) -> int:
        return len(self._lookups) + len(self._admissions)

    async def wait_idle(self) -> None:
        while self.outstanding:
            await asyncio.sleep(0.01)

    # -- what the engine deferred -----------------------------------------------------------

    def finish(self, result: bytes | Admission | None, address: Any) -> None:
        """Send an answer, or take an admission on."""
        if isinstance(result, bytes):
            self._send(result, address)
        elif result is not None:  # None: dropped, or a reject too long to send (counted)
            self.admit(result)

    def lookup(self, pending: AccountLookup) -> None:
        if len(self._lookups) >= self._max_lookups:
            error = StoreError(f"{self._max_lookups} account look-ups are waiting for the store")
            self._engine.looked_up(pending, error, time.time())
            return
        self._lookups.start(pending, time.monotonic())
        self.lookup_thread.submit(pending)

    def admit(self, pending: Admission) -> None:
        """Decide ``pending`` after the accounting this worker acknowledged is applied."""
        self._admissions.start(pending, time.monotonic())
        self._accounting.after_applied(lambda: self._submit(pending))

    def _submit(self, pending: Admission) -> None:
        if self._admissions.waiting(pending):  # not decided at its deadline meanwhile
            self.admission.submit(pending)

    def expire(self) -> None:
        """Decide without the store what waited past the deadline (called periodically)."""
        now = time.monotonic()
        late = f"the store did not answer within {self._lookups.timeout:g} s"
        for lookup in self._lookups.expired(now):
            self._engine.looked_up(lookup, StoreError(late), time.time())
        for pending in self._admissions.expired(now):
            self._fallback(pending, late)

    async def preload(
        self, realms: list[Realm], limit: int, open_store: Callable[[], Backend]
    ) -> None:
        """Fill the cache with up to ``limit`` accounts of ``realms``, read on a thread of its
        own and put in chunks between turns of the loop; logged ``accounts-preloaded``."""
        cache = self._engine.accounts
        started = time.monotonic()
        loaded = 0
        thread = ResourceThread("account-preload", open_store)
        try:
            for realm in realms:
                if loaded >= limit:
                    break
                seq = cache.last_seq
                entries = await thread.call(read_realm, realm, limit - loaded, self._dictionary)
                chunk = self._preload_chunk
                for i in range(0, len(entries), chunk):
                    loaded += cache.put_many(realm.name, entries[i : i + chunk], seq)
                    await asyncio.sleep(0)
        except Exception as exc:  # the store's trouble: look-ups read what is missing
            self._log.warning("accounts-preload-failed", loaded=loaded, error=str(exc))
        finally:
            await thread.close()
        self._log.info(
            "accounts-preloaded", accounts=loaded, seconds=round(time.monotonic() - started, 3)
        )

    async def run_expiry(self) -> None:
        interval = max(0.05, self._lookups.timeout / 8)
        while True:
            await asyncio.sleep(interval)
            self.expire()

    # -- the threads' answers, on the loop --------------------------------------------------

    def _read(self, batch: list[AccountLookup], accounts: list[Looked]) -> None:
        engine = self._engine
        now = time.time()
        for lookup, account in zip(batch, accounts, strict=True):
            if self._lookups.finish(lookup):
                self.finish(engine.looked_up(lookup, account, now), lookup.address)

    def _read_failed(self, batch: list[AccountLookup], exc: BaseException) -> None:
        error = exc if isinstance(exc, StoreError) else StoreError(str(exc))
        self._read(batch, [error] * len(batch))

    def _admitted(self, batch: list[Admission], results: list[AdmissionResult]) -> None:
        for pending, result in zip(batch, results, strict=True):
            if not self._admissions.finish(pending):
                continue  # decided at its deadline; a slot it reserved expires by itself
            answer = self._engine.admitted(pending, result)
            if isinstance(answer, Admission):  # its LNS filled up meanwhile: try the next one
                self.admit(answer)
            elif answer is not None:  # None: a reject too long to send (counted)
                self._send(answer, pending.address)

    def _admission_failed(self, batch: list[Admission], exc: BaseException) -> None:
        for pending in batch:
            if self._admissions.finish(pending):
                self._fallback(pending, str(exc))

    def _locked(self, batch: list[FailedLogin], locked: list[Lockout]) -> None:
        for lock in locked:
            self._log.info(
                "account-locked",
                realm=lock.realm,
                user=lock.username,
                locked_until=lock.locked_until,
            )

    def _failures_lost(self, batch: list[FailedLogin], exc: BaseException) -> None:
        self._log.warning("failed-logins-not-recorded", logins=len(batch), error=str(exc))

    def _fallback(self, pending: Admission, error: str) -> None:
        answer = self._engine.store_down(pending, error, time.time())
        if answer is not None:
            self._send(answer, pending.address)
