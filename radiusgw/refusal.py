"""The one shape of a refused Access-Request: what the NAS is told, and what only the log says.

Every refusal the core decides is a ``Refusal``: the router's (no realm, an unknown realm or one
the asker may not use, an ended contract), an authentication method's (carried by its
``Verdict``), VPDN's (every LNS full or down), the engine's own (a traffic quota, a session
limit, a store that cannot check one, account protection) and the proxy edge's (the customer's
servers unavailable). The engine turns each into an Access-Reject in one place
(``Engine._reject``):

- ``reason`` goes into the Reply-Message (RFC 2865 §5.18) and the log, and names the reject's
  class in the metrics (``radiusgw.server.metrics.REASON_CLASSES``), so its text never changes;
- ``detail`` goes to the log only: what the NAS may not learn, such as why a realm it may not
  use is answered as unknown (tenant isolation, issue 14.18);
- ``realm`` is the realm the request named, when the refusal came before one was routed (the
  router's); otherwise the engine knows the realm.

A fixed refusal is a module constant next to the code that decides it, built once: a reject
allocates no ``Refusal``. Only those that carry the request's realm (the router's) or the
store's words (a session limit) are built per request.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    realm: str | None = None
    detail: str | None = None
