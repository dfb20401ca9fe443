"""Whether this process may fork a child that goes on in Python (no exec), as the parse of a
large set does (``dsl.syntax.batch``) and the scan's workers (``dsl.scan.pool``): a fork
copies the process with only the calling thread, so a lock another thread held at that
moment stays held in the child forever. ``Meanwhile``: one function computed by a forked
child while this process goes on (a large set's ``policy_hash`` while it is planned)."""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

__all__ = ["Meanwhile", "can_fork", "hold_signals", "os_threads"]


def can_fork(*, native_threads: bool = False) -> bool:
    """On Linux (macOS's system libraries are not safe in a forked child; Windows has no
    fork), while no other Python thread runs; with ``native_threads`` false, no native
    thread either (a query engine's pool, say, which ``threading`` does not count). The
    scan's workers allow native ones: those left when it forks are the idle pools that
    pyarrow and NumPy start when imported (jemalloc's, OpenBLAS's), which prepare
    themselves for a fork, the scan having closed its own DuckDB query first. Not where
    SIGCHLD is ignored (as some services set it): the kernel then reaps each child as it
    ends, and a wait for it (``multiprocessing``'s) never learns that it has."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        return False  # children are reaped by the kernel at once: none could be waited for (a pool's hung)
    return native_threads or os_threads() == 1


def os_threads() -> int:
    """The threads of this process, those of native libraries too; 0 when unknown."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Meanwhile:
    """``fn(*args)`` computed by a forked child while this process goes on, its result
    pickled back through a pipe::

        with Meanwhile(digest, ps) as later:
            ...                              # this process's own work
            value = later.result()           # the child's, or None

    ``result()`` is None where the child could not start (``can_fork`` says no, a fork or
    a pipe failed), raised, or did not deliver (killed): the caller computes it itself,
    so nothing is lost. The child ignores ^C (this process handles it), runs no handler
    or buffer flush of this one's when it ends (``os._exit``), writes nothing to stderr,
    and collects no garbage (a collection would walk, and so copy, the inherited heap).
    Leaving the ``with`` block kills the child if it still runs (an exception here, a
    result not asked for) and reaps it."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self.pid: int | None = None
        self.fd = -1
        if not can_fork():
            return
        try:
            read, write = os.pipe()
        except OSError:
            return
        blocked = hold_signals()
        try:
            pid = os.fork()
        except BaseException as e:  # a fork refused (OSError); a handler that raised in another thread's stead
            os.close(read)
            os.close(write)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            if isinstance(e, OSError):
                return
            raise
        if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
            _run_child(read, write, blocked, fn, args)
        self.pid, self.fd = pid, read
        try:
            try:
                os.close(write)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a signal held meanwhile is handled here
        except BaseException:  # its handler raised (^C): the child is not left behind
            self.__exit__(None, None, None)
            raise

    def result(self) -> Any:
        """The child's result, waiting for it; None where there is none (see the class)."""
        if self.pid is None:
            return None
        chunks = []
        try:
            while chunk := os.read(self.fd, 1 << 16):
                chunks.append(chunk)
        except OSError:
            chunks = []
        status = _reap(self.pid)
        self.pid = None
        os.close(self.fd)
        if not chunks or (status is not None and (not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0)):
            return None
        try:  # (a child reaped by another, its status unknown: its pickle, if whole)
            return pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 - cut short: computed by the caller
            return None

    def __enter__(self) -> Meanwhile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:  # pragma: no cover - gone already
                pass
            _reap(self.pid)
            os.close(self.fd)
            self.pid = None


def hold_signals() -> Any:
    """Hold (block) every signal in this thread, for a fork; the mask to restore. A ^C
    that comes during the fork then reaches neither the child's start (its handlers are
    this process's) nor this process before it knows the child's pid: restored, the
    signal is handled, and an exception its handler raises can stop the child. (A fork
    is only made with no other thread running: ``can_fork``.)"""
    return signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def _reap(pid: int) -> int | None:
    """The wait status of the child ``pid``, waited for; None where another has reaped it
    (SIGCHLD ignored, as some services set it: the kernel reaps children then)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _run_child(read: int, write: int, blocked: Any, fn: Callable[..., Any],
               args: tuple[Any, ...]) -> NoReturn:  # pragma: no cover - runs in the child
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        try:  # a signal here must not reach the parent's event loop through its wake-up fd
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        gc.disable()
        os.close(read)
        data = memoryview(pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(write, data):]
        code = 0
    except BaseException:  # noqa: BLE001, S110 - nothing delivered: the parent computes it itself
        pass
    finally:
        os._exit(code)
