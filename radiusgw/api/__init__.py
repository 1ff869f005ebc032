"""The HTTP management API (issue 18.4): ``tokens`` (who may call), ``app`` (the routes, an ASGI
application), and ``radiusgw.server.api_thread`` runs it in the serving process."""
