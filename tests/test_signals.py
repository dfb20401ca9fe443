"""``dsl.signals``: the first ^C or SIGTERM stops a command, and neither a later one nor one
during a cleanup (``held``) interrupts the cleanup halfway."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from dsl.signals import HELD, held, stop_on_signals


def _from_another_thread(signum: int) -> None:
    """``signum`` sent to this process by another thread, as the kernel may hand a signal
    to any thread that does not block it; waits until Python has seen it."""
    sender = threading.Thread(target=os.kill, args=(os.getpid(), signum))
    sender.start()
    sender.join()
    time.sleep(0.05)  # the main thread runs Python handlers between its bytecodes


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    """Python's own handlers (the suite's process may have others by now: Spark sets one
    for ^C), and the test's process gets its handlers back."""
    before = {signum: signal.getsignal(signum) for signum in HELD}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def _terminated(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)  # as ``stop_on_signals``'s SIGTERM handler


def test_a_signal_waits_for_the_end_of_the_block_then_reaches_its_handler() -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with held():
            _from_another_thread(signal.SIGINT)
            steps.append("after the ^C")
            time.sleep(0.01)
            steps.append("the block's end")
    assert steps == ["after the ^C", "the block's end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_held_and_delivered_once() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    ended = False
    with pytest.raises(SystemExit) as exited:
        with held():
            _from_another_thread(signal.SIGTERM)
            _from_another_thread(signal.SIGTERM)
            ended = True
    assert ended and exited.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is _terminated


def test_nothing_held_no_signal_delivered() -> None:
    with held():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with held():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        _from_another_thread(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_off_the_main_thread_the_block_runs_as_it_is() -> None:
    seen: list[object] = []

    def block() -> None:
        with held():
            seen.append(signal.getsignal(signal.SIGINT))

    worker = threading.Thread(target=block)
    worker.start()
    worker.join()
    assert seen == [signal.default_int_handler]


@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)])
def test_every_signal_stops_the_command_but_not_a_cleanup(signum: int, raised: type[BaseException]) -> None:
    """What ``cli.run`` sets: ^C and SIGTERM raise, the second too (a first one whose
    exception was lost, raised in a finaliser, must not leave the command unstoppable);
    during a cleanup (``held``) they wait for its end."""
    stop_on_signals()
    for _ in range(2):
        with pytest.raises(raised) as stopped:
            _from_another_thread(signum)
        if raised is SystemExit:
            assert stopped.value.args == (143,)
    steps = []
    with pytest.raises(raised):
        with held():
            _from_another_thread(signum)
            steps.append("the cleanup's end")
    assert steps == ["the cleanup's end"]


def test_a_signal_the_process_ignores_stays_ignored() -> None:
    """A command started with ^C or SIGTERM ignored (a shell's background job, ``nohup``)
    is not made to stop on it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop_on_signals()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    _from_another_thread(signal.SIGTERM)
