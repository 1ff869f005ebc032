"""The asyncio edge: ``serve(settings)`` runs the gateway until SIGTERM.

Nothing outside this package imports asyncio or socket. ``serve`` is imported lazily so that
the CLI's account commands do not pay for the event loop's imports.
"""

from __future__ import annotations

from radiusgw.server.settings import Settings

__all__ = ["Settings", "serve"]


def serve(settings: Settings) -> int:
    """Run the gateway in the foreground; the exit code (0 after a clean SIGTERM drain).

    SIGHUP, SIGTERM and SIGINT are held from the first moment (``radiusgw.server.signals``):
    one that comes while the gateway starts is acted on once it can be, never fatal.
    """
    from radiusgw.server import signals

    with signals.deferred():
        from radiusgw.server.app import serve as run

        return run(settings)
