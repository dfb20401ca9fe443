"""^C and SIGTERM while a command cleans up. The first stops the command (``stop_once``,
which the `policy` command installs); the next ones wait: a second ^C, or a second SIGTERM
from an impatient scheduler, that interrupted the cleanup halfway (the scan's stop of its
worker processes, the removal of its temporary output) would leave processes waiting for
each other forever, or a file behind. ``held`` holds them back for a block, for a caller of
the Python API too."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

__all__ = ["HELD", "held", "stop_once"]

HELD = (signal.SIGINT, signal.SIGTERM)
"""The signals ``held`` holds back: ^C, and ``kill``'s (which ``cli.run`` turns into an
exit)."""


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Runs its block with the Python handlers of ``HELD`` replaced by one that notes the
    signal, then, the block done, delivers each signal noted to the handler it had. Python
    runs a handler in the main thread whichever thread the kernel gave the signal to, so
    blocking a signal in this thread (``pthread_sigmask``) would not hold it back. A signal
    ignored stays ignored. Off the main thread (an embedding service's), where handlers
    cannot be set, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum: int, frame: Any) -> None:
        if signum not in noted:
            noted.append(signum)

    handlers = {signum: signal.getsignal(signum) for signum in HELD}
    holding = [signum for signum, handler in handlers.items() if handler not in (signal.SIG_IGN, None)]
    for signum in holding:
        signal.signal(signum, note)
    try:
        yield
    finally:
        for signum in holding:
            signal.signal(signum, handlers[signum])
        for number in noted:
            signal.raise_signal(number)


def stop_once() -> None:
    """Sets the handlers of ``HELD`` in this process (its main thread): the first signal
    ends the command as an exception does, ^C with ``KeyboardInterrupt``, SIGTERM with
    ``SystemExit`` and the status a shell gives a process the signal ended (128 + 15), so
    that what it leaves is cleaned up (a scan's temporary output, its workers and their
    directory); every later one is ignored, the command being on its way out."""
    for signum in HELD:
        signal.signal(signum, _stop)


def _stop(signum: int, frame: Any) -> NoReturn:
    # ignored by the system from now on, to the last moment of the interpreter's exit, which
    # gives a signal with a handler of Python's its default action back
    for held_signum in HELD:
        signal.signal(held_signum, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)
