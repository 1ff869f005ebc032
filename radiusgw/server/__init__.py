"""The asyncio edge: ``serve(settings)`` runs the gateway until SIGTERM.

Nothing outside this package imports asyncio or socket. ``serve`` is imported lazily so that
the CLI's account commands do not pay for the event loop's imports.
"""

from __future__ import annotations

from radiusgw.server.settings import Settings

__all__ = ["Settings", "serve"]


def serve(settings: Settings) -> int:
    """Run the gateway in the foreground; the exit code (0 after a clean SIGTERM drain)."""
    from radiusgw.server.app import serve as run

    return run(settings)
