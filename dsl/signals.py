"""^C and SIGTERM. Either stops a command as an exception does (``stop_on_signals``, which
the `policy` command sets), so that it cleans up; ``held`` holds them back while a cleanup
runs: a second ^C, or a second SIGTERM from an impatient scheduler, that interrupted the
scan's stop of its worker processes or the removal of its temporary output halfway would
leave processes waiting for each other forever, or a file behind. ``held`` works for a
caller of the Python API too (in its main thread)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

__all__ = ["HELD", "held", "stop_on_signals"]

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


def stop_on_signals() -> None:
    """Sets SIGTERM's handler in this process (its main thread): SIGTERM ends the command
    with ``SystemExit`` and the status a shell gives a process the signal ended (128 + 15),
    as ^C does with Python's own ``KeyboardInterrupt``, so that what it leaves is cleaned up
    (a scan's temporary output, its workers and their directory). Each signal does, the
    second too: the cleanups a second one must not cut short run ``held``, and a first one
    lost (its exception raised where Python only prints it, as in a finaliser) must not
    leave the command unstoppable. A signal the process was started with ignored (``nohup``,
    a shell's background job ignores ^C) stays ignored."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)
