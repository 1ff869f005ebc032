"""One sans-I/O RADIUS client, for every request the gateway itself sends.

- ``core``: ``RadiusClient``, the shared machinery (Identifiers, one timer heap, the outbox and
  events of ``radiusgw.machine``, the answer path, counters);
- ``answers``: is a datagram the authentic answer to our request (RFC 2865 §3, RFC 3579 §3.2,
  RFC 5176 §3)?
- ``ids``: Identifiers per source socket and destination.

Its jobs: ``radiusgw.proxy.client`` (forwarding to the customer's servers) and
``radiusgw.dynauth`` (Disconnect-Requests to a NAS).
"""
