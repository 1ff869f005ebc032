"""``radiusgw.server.signals``: SIGHUP and SIGTERM wait while the gateway starts, never fatal."""

from __future__ import annotations

import os
import signal

from radiusgw.server import signals


def test_a_signal_held_by_deferred_is_delivered_once_the_handler_is_in_place() -> None:
    seen: list[int] = []
    previous = signal.getsignal(signal.SIGHUP)
    with signals.deferred():
        os.kill(os.getpid(), signal.SIGHUP)  # the default action would end this process
        assert signal.SIGHUP in signal.sigpending()
        signal.signal(signal.SIGHUP, lambda sig, _frame: seen.append(sig))
        signals.deliver()
        assert seen == [signal.SIGHUP]
    assert signal.getsignal(signal.SIGHUP) == previous


def test_what_is_still_pending_when_serve_ends_is_dropped_and_the_mask_restored() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    previous = signal.getsignal(signal.SIGHUP)
    with signals.deferred():
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a closed event loop leaves it
        os.kill(os.getpid(), signal.SIGHUP)
    assert signal.SIGHUP not in signal.sigpending()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert signal.getsignal(signal.SIGHUP) == previous
