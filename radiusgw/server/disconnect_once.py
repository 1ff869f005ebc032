"""An operator's Disconnect-Request (RFC 5176), sent now and waited for: the path that
``radiusgw session disconnect`` and the API's ``POST .../sessions/{id}/disconnect`` share.

The sessions come from the store (``Backend.live_sessions``); each goes to its NAS's registered
``coa_port`` with the NAS's secret, found in the realm files as the server's quota disconnects
find them (``Worker._disconnect_realm``), through the same ``DisconnectSender`` and client. A
session whose NAS is not registered, or has no ``coa_port``, is reported as refused, not sent.
The answer (ACK, NAK with its Error-Cause, or none within ``wait`` seconds) is returned per
session as ``Answer``. Runs on whatever event loop calls it (the CLI's ``asyncio.run``, the
API's own loop), never on a worker's.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from radiusgw.config.model import Registry
from radiusgw.domain import SessionRow
from radiusgw.dynauth import DisconnectClient, Outcome, Result, error_cause_name
from radiusgw.errors import RadiusGwError
from radiusgw.server.disconnect import DisconnectSender

WAIT = 10.0  # seconds for an answer: the client retransmits after 1, 2, 4 s (RFC 5080 §2.2.1)
REASON = "operator"


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of one session's Disconnect-Request."""

    session: SessionRow
    outcome: str  # "ack", "nak", "no-answer", or "refused" (nothing was sent)
    error_cause: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "acct_session_id": self.session.acct_session_id,
            "user": self.session.username,
            "realm": self.session.realm,
            "nas_address": self.session.nas_address,
            "outcome": self.outcome,
            "error_cause": self.error_cause,
            "error_cause_name": error_cause_name(self.error_cause),
            "detail": self.detail,
        }


async def disconnect(
    sessions: Sequence[SessionRow], registry: Registry, log: Any, *, wait: float = WAIT
) -> list[Answer]:
    """Ask each session's NAS to end it; the answers, in the order of ``sessions``."""
    answers: dict[int, Answer] = {}
    sent: dict[tuple[str, str], int] = {}  # (NAS, Acct-Session-Id) -> index in sessions
    done = asyncio.Event()

    def finished(result: Result) -> None:
        target = result.target
        index = sent.pop((_host(target.nas_address), target.acct_session_id), None)
        if index is None:
            return
        if result.outcome is Outcome.ABANDONED:
            outcome, detail = "no-answer", result.detail or f"no answer within {wait:g} s"
        else:
            outcome, detail = result.outcome.value, ""
        answers[index] = Answer(sessions[index], outcome, result.error_cause, detail)
        if len(answers) == len(sessions):
            done.set()

    sender = DisconnectSender(log, client=DisconnectClient(max_age=wait), on_result=finished)
    sender.start()
    try:
        for index, row in enumerate(sessions):
            nas = registry.nas.get(row.nas_address)
            if nas is None or not nas.coa_port:
                why = "not a registered NAS" if nas is None else "no coa_port registered"
                answers[index] = Answer(row, "refused", None, f"its NAS {row.nas_address}: {why}")
                continue
            sent[(_host(row.nas_address), row.acct_session_id)] = index
            try:
                made = sender.disconnect_session(
                    row, coa_port=nas.coa_port, secret=nas.secret, reason=REASON
                )
            except RadiusGwError as exc:
                answers[index] = Answer(row, "refused", None, str(exc))
                continue
            if not made:  # the same session twice in ``sessions``
                answers[index] = Answer(row, "refused", None, "asked already")
        if len(answers) < len(sessions):
            await done.wait()
    finally:
        await sender.close()
    return [answers[i] for i in range(len(sessions))]


def _host(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
