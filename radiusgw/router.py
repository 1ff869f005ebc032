"""user@realm -> realm, and who may ask for it (tenant isolation, 第2条, 第9条).

The realm is the text after the last '@', matched case-insensitively (docs/operations.md). Then:
- a customer's client may ask only for the realms of its own contract, and not for VPDN realms
  (those are answered to carriers' access servers only, 第2条);
- a carrier's access server may ask only for VPDN realms of its own carrier type;
- a contract past its ``ends`` date gets Access-Reject for all its realms (第9条).

A realm the asker may not use is refused exactly as one that does not exist, ``unknown realm``:
the reject's text must not tell a NAS which other realms exist, nor of which kind or carrier
(tenant isolation; issue 14.18). Why it may not is the refusal's ``detail``, for the log only
(``radiusgw.refusal``).

Sans-I/O: ``now`` comes in as unix time; an end date means the end of that day, local time.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from radiusgw.config.model import Mode, Nas, Realm, Registry
from radiusgw.refusal import Refusal

__all__ = ["CONTRACT_ENDED", "NO_REALM", "UNKNOWN_REALM", "Refusal", "Router", "realm_name"]

NO_REALM: Final = Refusal("no realm in user name")
# The reasons of the refusals built per request: they name the realm asked for.
UNKNOWN_REALM: Final = "unknown realm"
CONTRACT_ENDED: Final = "contract ended"


def realm_name(username: str) -> str | None:
    """The text after the last '@', lower-cased; None when there is none."""
    at = username.rfind("@")
    if at < 0 or at == len(username) - 1:
        return None
    return username[at + 1 :].lower()


def _end_of_day(day: dt.date) -> float:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()


class Router:
    __slots__ = ("_ends_at", "_realms")

    def __init__(self, registry: Registry) -> None:
        self._realms = registry.realms
        self._ends_at = {
            c.id: _end_of_day(c.ends) for c in registry.contracts.values() if c.ends is not None
        }

    def route(self, nas: Nas, username: str, now: float) -> Realm | Refusal:
        name = realm_name(username)
        if name is None:
            return NO_REALM
        realm = self._realms.get(name)
        if realm is None:
            return Refusal(UNKNOWN_REALM, name)
        if nas.carrier is not None:
            if realm.mode is not Mode.VPDN:
                return Refusal(
                    UNKNOWN_REALM, name, f"a {realm.mode.value} realm, asked by a carrier"
                )
            if realm.carrier is not nas.carrier:
                return Refusal(
                    UNKNOWN_REALM,
                    name,
                    f"a VPDN realm of carrier type {realm.carrier}, asked by carrier type "
                    f"{nas.carrier}",
                )
        elif realm.contract_id != nas.contract_id:
            return Refusal(UNKNOWN_REALM, name, "a realm of another contract")
        elif realm.mode is Mode.VPDN:
            return Refusal(
                UNKNOWN_REALM, name, "a VPDN realm: answered to carrier access servers only"
            )
        ends_at = self._ends_at.get(realm.contract_id)
        if ends_at is not None and now >= ends_at:
            return Refusal(CONTRACT_ENDED, name)
        return realm
