"""``radiusgw.server.signals``: SIGHUP and SIGTERM wait while the gateway starts, never fatal."""

from __future__ import annotations

import signal
import threading

from radiusgw.server import signals
from radiusgw.server.batches import named_executor


def hup_the_main_thread() -> None:
    # To the thread, not the process: the kernel would hand a process-wide signal to any
    # thread of the test runner that does not block it, with the default action.
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGHUP)


def test_a_signal_held_by_deferred_is_delivered_once_the_handler_is_in_place() -> None:
    seen: list[int] = []
    previous = signal.getsignal(signal.SIGHUP)
    with signals.deferred():
        hup_the_main_thread()  # the default action would end this process
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
        hup_the_main_thread()
    assert signal.SIGHUP not in signal.sigpending()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert signal.getsignal(signal.SIGHUP) == previous


def test_a_thread_the_server_starts_never_takes_a_signal() -> None:
    executor = named_executor("signal-test")
    try:
        mask = executor.submit(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [])).result()
    finally:
        executor.shutdown()
    assert mask >= signals.HANDLED
