"""What a worker counts: every answer, and every datagram dropped, by reason.

Plain integer slots, incremented on the hot path; the server logs them periodically and at exit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Counters:
    access_requests: int = 0
    access_accepts: int = 0
    access_rejects: int = 0
    accounting_requests: int = 0
    accounting_responses: int = 0
    status_server: int = 0
    duplicates: int = 0  # answered again from the duplicate cache (RFC 5080 §2.2.2)
    dropped_malformed: int = 0  # not a valid RADIUS packet (RFC 2865 §3)
    dropped_unknown_client: int = 0  # source address not registered (第1条 クライアント)
    dropped_bad_authenticator: int = 0  # Message-Authenticator or accounting authenticator
    dropped_missing_message_authenticator: int = 0  # required by the client's registration
    dropped_unexpected_code: int = 0  # a code this port does not serve
    dropped_in_progress: int = 0  # copy of a request still being processed
    dropped_rate_limited: int = 0  # above the NAS's rate_limit (第14条2)
    dropped_overload: int = 0  # accounting while the store is too far behind (NAS retries)
    dropped_store_error: int = 0  # the account store failed: no answer, the NAS retries
    dropped_oversized_answer: int = 0  # the answer with every Proxy-State passes 4096 octets
    # A session limit the store could not check (down, or past the deadline): the realm's
    # on_store_down decided (issue 15.6).
    admitted_store_down: int = 0
    rejected_store_down: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
