"""The health of one upstream destination (a customer server's auth or acct port), sans-I/O.

States and the rules between them (the idea of FreeRADIUS's alive/zombie/dead home servers, with
the timers of ``UpstreamServer``):

- ALIVE: used. The first try (request, retransmission or probe) left unanswered for
  ``response_window`` makes it SUSPECT.
- SUSPECT: still used when no ALIVE server is left in the pool, and probed at once and then every
  ``response_window`` (RFC 5997 Status-Server, or a real request, per ``status_check``). Any
  verified answer makes it ALIVE again. After ``retries`` more unanswered tries it is DEAD. Only
  tries sent once it was suspect count: a burst of requests that were all in flight when it
  stopped answering is one piece of evidence, not many, so a loaded server is not declared dead
  faster than an idle one (about ``retries`` windows in both cases: 2 s with the defaults, well
  inside a NAS's 3-5 s retransmission).
- DEAD: not used. Probed every ``revive_interval``; ``REVIVE_ANSWERS`` consecutive verified
  answers make it ALIVE (an unanswered probe starts the count again). With ``status_check =
  "none"`` it is simply ALIVE again after ``revive_interval`` (a real request then tests it).
  ``retries = 0`` goes from ALIVE straight to DEAD on the first unanswered try.

Status-Server that is never answered (Windows NPS, for one, does not implement RFC 5997) must not
keep a working server dead. Until a server has answered one Status-Server, an unanswered
Status-Server probe is followed by a real-request probe; when that request is answered and the
next Status-Server is not, the server is deaf to Status-Server: it is probed with real requests
from then on, and that one unanswered Status-Server does not count against its health.

Every transition returns a ``StateChange`` (for the log and operators); the client schedules the
probes from ``probe_due``. Addresses and ports only: no secret reaches an event or a status line.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from radiusgw.config.model import UpstreamServer

REVIVE_ANSWERS: Final = 3  # consecutive good probe answers that bring a DEAD server back
# Upper bounds (seconds) of the round-trip buckets the metrics export (issue 18.1): a LAN server
# answers in a millisecond or two, one across the country in tens, one that struggles in seconds.
RTT_BUCKETS: Final[tuple[float, ...]] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class Kind(StrEnum):
    AUTH = "auth"  # Access-Request to auth_port (RFC 2865)
    ACCT = "acct"  # Accounting-Request to acct_port (RFC 2866)


class ServerState(StrEnum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


class ProbeKind(StrEnum):
    STATUS_SERVER = "status-server"  # RFC 5997
    REQUEST = "request"  # Access-Request / Accounting-Request for the probe user


@dataclass(frozen=True, slots=True)
class StateChange:
    """One upstream changed state: log it (``reason`` is one sentence)."""

    address: str
    port: int
    kind: Kind
    old: ServerState
    new: ServerState
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """A snapshot of one upstream for operators (``radiusgw proxy status``, metrics)."""

    address: str
    port: int
    kind: Kind
    state: ServerState
    since: float
    outstanding: int
    sent: int
    answered: int
    unanswered: int
    last_answer: float | None
    probe: ProbeKind | None  # how it is probed, None with status_check = "none"
    realm: str = ""  # the realm whose pool it is in (``UpstreamClient.status``)


class Upstream:
    """Health and load of one destination; identity-hashed (one object per destination)."""

    __slots__ = (
        "_good",
        "_last_probe",
        "_misses",
        "_probe_sent_at",
        "_request_probes",
        "_ss_answered",
        "_suspect_since",
        "address",
        "answered_count",
        "failover_count",
        "kind",
        "last_answer",
        "outstanding",
        "probe_due",
        "probe_in_flight",
        "retransmitted_count",
        "rtt_counts",
        "rtt_sum",
        "sent_count",
        "server",
        "since",
        "state",
        "unanswered_count",
    )

    def __init__(self, server: UpstreamServer, kind: Kind, now: float) -> None:
        self.server = server
        self.kind = kind
        port = server.auth_port if kind is Kind.AUTH else server.acct_port
        self.address = (server.address, port)
        self.state = ServerState.ALIVE  # optimistic until it fails to answer
        self.since = now
        self.outstanding = 0  # requests waiting for an answer (load-balance metric)
        self.probe_due: float | None = None  # when the next probe (or blind revive) is due
        self.probe_in_flight = False
        self.sent_count = self.answered_count = self.unanswered_count = 0
        # Counted by the client (retransmissions, requests moved away from it) and by
        # ``answered`` (round trips per RTT_BUCKETS bound, the last slot above them all).
        self.retransmitted_count = self.failover_count = 0
        self.rtt_counts = [0] * (len(RTT_BUCKETS) + 1)
        self.rtt_sum = 0.0
        self.last_answer: float | None = None
        self._misses = 0  # unanswered tries sent while suspect
        self._suspect_since = now
        self._good = 0  # consecutive answered probes while dead
        self._probe_sent_at = now
        self._ss_answered = False  # has it ever answered a Status-Server?
        self._last_probe: tuple[ProbeKind, bool] | None = None  # (kind, answered)
        self._request_probes = server.status_check == "request"

    # -- real requests -------------------------------------------------------------------

    def answered(self, now: float, rtt: float = 0.0) -> StateChange | None:
        """A verified answer to a forwarded request, ``rtt`` seconds after its try was sent."""
        self.answered_count += 1
        self.rtt_counts[bisect_left(RTT_BUCKETS, rtt)] += 1
        self.rtt_sum += rtt
        self.last_answer = now
        if self.state is ServerState.SUSPECT:
            return self._move(ServerState.ALIVE, now, "answered a request")
        return None  # a DEAD server comes back through probes only

    def missed(self, sent_at: float, now: float) -> StateChange | None:
        """A try sent at ``sent_at`` (request or retransmission) got no answer in the window."""
        self.unanswered_count += 1
        return self._miss(sent_at, now, "request")

    # -- probes --------------------------------------------------------------------------

    def next_probe(self) -> ProbeKind:
        """How to probe now (see the module docstring on servers that ignore Status-Server)."""
        if self._request_probes:
            return ProbeKind.REQUEST
        if not self._ss_answered and self._last_probe == (ProbeKind.STATUS_SERVER, False):
            return ProbeKind.REQUEST  # down, or deaf to Status-Server? a request tells
        return ProbeKind.STATUS_SERVER

    def probe_sent(self, now: float) -> None:
        self.sent_count += 1
        self.probe_in_flight = True
        self.probe_due = None
        self._probe_sent_at = now

    def probe_answered(self, kind: ProbeKind, now: float) -> StateChange | None:
        self.probe_in_flight = False
        self.answered_count += 1
        self.last_answer = now
        if kind is ProbeKind.STATUS_SERVER:
            self._ss_answered = True
        self._last_probe = (kind, True)
        state = self.state
        if state is ServerState.SUSPECT:
            return self._move(ServerState.ALIVE, now, f"answered a {kind} probe")
        if state is ServerState.DEAD:
            self._good += 1
            if self._good >= REVIVE_ANSWERS:
                return self._move(ServerState.ALIVE, now, f"answered {self._good} probes in a row")
            self._schedule_revive_probe(now)
        return None

    def probe_missed(self, kind: ProbeKind, sent_at: float, now: float) -> StateChange | None:
        self.probe_in_flight = False
        self.unanswered_count += 1
        deaf = (
            kind is ProbeKind.STATUS_SERVER
            and not self._ss_answered
            and self._last_probe == (ProbeKind.REQUEST, True)
        )
        self._last_probe = (kind, False)
        state = self.state
        if deaf:
            # It answered a request a moment ago and ignores Status-Server: a fact about the
            # server's software, not its health. Probe it with requests from now on.
            self._request_probes = True
            if state is not ServerState.ALIVE:
                self.probe_due = now
            return None
        if state is ServerState.DEAD:
            self._good = 0
            self._schedule_revive_probe(now)
            return None
        if state is ServerState.ALIVE:
            return None  # revived by a real answer meanwhile; one lost probe proves nothing
        change = self._miss(sent_at, now, f"{kind} probe")
        if self.state is ServerState.SUSPECT:
            self.probe_due = now  # the window was the spacing: probe again at once
        return change

    def revive_unchecked(self, now: float) -> StateChange | None:
        """``status_check = "none"``: ``revive_interval`` passed; try it with real requests."""
        if self.state is not ServerState.DEAD:
            return None
        return self._move(
            ServerState.ALIVE, now, "revive_interval passed (status_check = none: not probed)"
        )

    def status(self) -> UpstreamStatus:
        probe = None if self.server.status_check == "none" else self.next_probe()
        return UpstreamStatus(
            address=self.address[0],
            port=self.address[1],
            kind=self.kind,
            state=self.state,
            since=self.since,
            outstanding=self.outstanding,
            sent=self.sent_count,
            answered=self.answered_count,
            unanswered=self.unanswered_count,
            last_answer=self.last_answer,
            probe=probe,
        )

    # -- transitions ---------------------------------------------------------------------

    def _miss(self, sent_at: float, now: float, what: str) -> StateChange | None:
        server = self.server
        window = server.response_window
        if self.state is ServerState.ALIVE:
            if server.retries == 0:
                return self._move(ServerState.DEAD, now, f"no answer to a {what} in {window:g} s")
            return self._move(ServerState.SUSPECT, now, f"no answer to a {what} in {window:g} s")
        if self.state is ServerState.SUSPECT and sent_at >= self._suspect_since:
            self._misses += 1
            if self._misses >= server.retries:
                return self._move(
                    ServerState.DEAD,
                    now,
                    f"no answer to {self._misses} more tries in {window:g} s each while suspect",
                )
        return None

    def _schedule_revive_probe(self, now: float) -> None:
        # One probe per revive_interval, however fast the answers: a flapping server must stay
        # up for about REVIVE_ANSWERS intervals before it carries traffic again.
        self.probe_due = max(now, self._probe_sent_at + self.server.revive_interval)

    def _move(self, new: ServerState, now: float, reason: str) -> StateChange:
        old = self.state
        self.state = new
        self.since = now
        self._misses = 0
        self._good = 0
        checked = self.server.status_check != "none"
        if new is ServerState.ALIVE:
            self.probe_due = None
        elif new is ServerState.SUSPECT:
            self._suspect_since = now
            self.probe_due = now if checked else None
        else:
            self.probe_due = now + self.server.revive_interval
        return StateChange(self.address[0], self.address[1], self.kind, old, new, reason, now)
