"""The one rule for a peer's address as a socket reports it.

A dual-stack (IPv6) socket reports an IPv4 sender as an IPv4-mapped IPv6 address,
``::ffff:192.0.2.1`` (RFC 4291 §2.5.5.2); registrations and upstream servers name IPv4
addresses plainly. Both the NAS look-up (``radiusgw.engine``) and the matching of an upstream
answer to its request (``radiusgw.client.ids``) compare the plain form.
"""

from __future__ import annotations

from typing import Final

_MAPPED: Final = "::ffff:"


def unmapped(host: str) -> str:
    """``host`` with an IPv4-mapped IPv6 prefix taken off; any other address as it is."""
    if host.startswith(_MAPPED) and "." in host:
        return host[len(_MAPPED) :]
    return host
