"""The signals the gateway takes (SIGHUP, SIGTERM, SIGINT), and when it takes them.

The default action of each one ends a process at once: SIGHUP with exit 129 and no log line,
SIGTERM without a drain. A process that is still starting (reading the realm files, opening the
store, replaying a journal after a crash) has no handler yet. So:

- ``serve`` blocks the three before it does anything else (``deferred``); forked workers inherit
  the blocked mask. A signal that comes meanwhile waits, pending, in the kernel.
- Whoever acts on them installs its handlers first and then unblocks them (``deliver``): the
  supervisor's loop, or a worker's event loop. A pending SIGHUP then arrives as a reload, a
  pending SIGTERM as a drain and exit 0.
- A worker that starts draining blocks them again (``hold``): its event loop removes its
  handlers when it closes, and a late SIGHUP must not end the process then either.
- A worker under a supervisor ignores SIGHUP: the supervisor reloads and hands the set on.

``pthread_sigmask`` acts on the calling thread, and the kernel hands a signal sent to the process
to any thread that does not block it: a thread with the default action would end the process.
So every thread the server starts blocks the three for good (``batches.name_os_thread``), and
only the event loop's thread ever takes them, when it has handlers for them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

HANDLED = frozenset({signal.SIGHUP, signal.SIGTERM, signal.SIGINT})


@contextmanager
def deferred() -> Iterator[None]:
    """Block ``HANDLED`` for the life of ``serve``; then drop what is pending and give back the
    caller's mask and handlers (a test may run ``serve`` in its own process)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    handlers = {sig: signal.getsignal(sig) for sig in HANDLED}
    try:
        yield
    finally:
        hold()
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what was pending goes to SIG_IGN
        for sig, handler in handlers.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def deliver() -> None:
    """Unblock ``HANDLED``, once the handlers that act on them are in place."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)


def hold() -> None:
    """Block ``HANDLED``: they stay pending until ``deliver`` (or are dropped at exit)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
