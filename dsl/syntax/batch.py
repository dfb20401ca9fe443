"""``parse_all``: the files of a policy set parsed one by one, or, for a large set, by two
processes at once.

Parsing is Python-bound (Lark's LALR run, token by token), so a large set is parsed faster
by a second process: this one and a forked child take files from the two ends of the list
(a shared claim counter under a lock), the child pickles each result into an unlinked
temporary file, and this one reads them as they come, between its own parses. The results are the
ones ``parse`` gives here, in the order given: a result is an AST and its diagnostics,
deterministic in the text, and a pickle holds the same objects (tests/test_parse_batch.py
compares them, spans included). A file the child claimed but did not deliver (it died,
was killed, ran out of disk, or could not pickle it: a listing nested some 200 levels deep
in a test) is parsed here, so nothing is lost; an exception in a parse surfaces here as it
would in a serial run, and the child writes nothing to stderr. Neither process waits
forever on the other: the claim lock is taken with a timeout, and given up when the other
process is gone (killed while holding it); the child stops when this process is gone. On
an exception here (KeyboardInterrupt) the child is killed (SIGKILL: it has nothing to clean
up, and runs no handler of this process's inherited for SIGTERM) and reaped.

The child is forked only where it is safe and pays off: on Linux, with at least two CPUs
available, no other thread running in this process, native ones included (a fork copies
the locks other threads hold), and a set of several files with ``MIN_CHARS`` characters or
more (a fork costs some 10 ms; writing and reading a file's pickle cost about a sixth of
parsing it, each node pickled as a call with its fields: ``dsl.syntax.ast._compact_pickle``).
Where the child cannot start (a daemonic process may have none; a fork, a lock or the
temporary file can fail) the set is parsed here.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import struct
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..diagnostics import Diagnostic
from ..forking import can_fork, hold_signals
from ..gcpause import no_gc
from . import ast as A
from .driver import lark
from .parse import parse

Job = tuple[str, str, bool | None]
"""A file to parse: its name, its text, and ``parse``'s ``test_file``."""

Result = tuple[A.File, list[Diagnostic]]

MIN_CHARS = 1_000_000
"""The size of a set (characters in all) from which a second process parses part of it."""

_HEADER = struct.Struct("<qq")  # a record: the job's index, the pickle's length


def parse_all(jobs: Sequence[Job], *, processes: int | None = None,
              pickled: list[bytes | None] | None = None) -> list[Result]:
    """``parse(text, name, test_file=…)`` of every job, in order. ``processes``: 1 parses
    here only, 2 parses with a second process whatever the size (for tests), None decides
    (``MIN_CHARS``, and where it is safe). ``pickled`` (as long as ``jobs``) gets the
    pickle of each result, for ``cache`` to keep as it is, where two processes parse:
    the second process delivers its results so, and this one pickles its own as it goes,
    between its parses, so that the two share that work too (after the parse, it held up
    a first load of 100,000 rules by 0.25 s)."""
    if processes is None:
        processes = 2 if _worth_forking(jobs) else 1
    if processes < 2 or len(jobs) < 2 or not can_fork():
        return [_parse(job) for job in jobs]
    return _with_child(jobs, pickled)


def _parse(job: Job) -> Result:
    name, text, test_file = job
    return parse(text, name, test_file=test_file)


def _parse_and_pickle(jobs: Sequence[Job], i: int, pickled: list[bytes | None] | None) -> Result:
    """``jobs[i]`` parsed here, its result pickled into ``pickled[i]`` (as the second
    process pickles its own) where pickles are asked for and it can be pickled (a listing
    nested some hundreds of levels deep in a test cannot)."""
    result = _parse(jobs[i])
    if pickled is not None:
        try:
            with no_gc():  # a collection meanwhile would walk every AST parsed so far
                pickled[i] = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except (RecursionError, pickle.PicklingError):
            pass
    return result


def _worth_forking(jobs: Sequence[Job]) -> bool:
    return len(jobs) >= 2 and sum(len(text) for _, text, _ in jobs) >= MIN_CHARS and _cpus() >= 2


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _with_child(jobs: Sequence[Job], pickled: list[bytes | None] | None) -> list[Result]:
    import multiprocessing  # here: only a large set needs them (the start-up of a CLI run)
    import tempfile

    lark()  # built once, here: the child inherits it
    results: list[Result | None] = [None] * len(jobs)
    try:
        out = tempfile.TemporaryFile()
    except OSError:  # no writable temporary directory
        return [_parse(job) for job in jobs]
    with out:
        try:
            ctx = multiprocessing.get_context("fork")
            lock = ctx.Lock()
            ends = ctx.RawArray("q", [0, len(jobs)])  # the next job from the front; one past the last from the back
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())  # (as it is: for the child to restore)
            child = ctx.Process(target=_child, args=(jobs, lock, ends, out, mask), daemon=True)
            blocked = _start(child)
        except (AssertionError, OSError):  # a daemonic process may not have children; a lock, a fork can fail
            return [_parse(job) for job in jobs]
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a signal held meanwhile is handled here
            records = _Records(out.fileno(), results, pickled)
            while True:
                records.read()  # what the child has delivered so far, between this one's parses
                if not _acquire(lock, child.is_alive):
                    break  # the child died holding the lock: what is left is parsed below
                try:
                    i = ends[0]
                    if i >= ends[1]:
                        break
                    ends[0] = i + 1
                finally:
                    lock.release()
                results[i] = _parse_and_pickle(jobs, i, pickled)
            while child.is_alive():  # its last files: read each as it comes
                records.read()
                child.join(0.005)
            records.read()
        finally:
            if child.is_alive():  # an exception here (KeyboardInterrupt), or the lock lost: the child stops too
                child.kill()
            child.join()
    for i, found in enumerate(results):
        if found is None:  # claimed by the child, not delivered
            results[i] = _parse(jobs[i])
    return results  # type: ignore[return-value]  # every slot is filled above


def _start(child: Any) -> Any:
    """Start ``child`` with every signal held (``forking.hold_signals``): a ^C that reaches
    the whole process group stops this process only, never the child's start-up with a
    traceback of its own, and is handled here once the child is known (the caller
    restores the mask returned, in the block that stops the child). The mask is restored
    here when the fork fails."""
    blocked = hold_signals()
    try:
        child.start()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    return blocked


class _Records:
    """The child's results as it writes them (its index, its length, the pickle), each
    complete record read into its slot. Read with ``os.pread``: the child writes through
    the same open file, whose offset this process must not move."""

    def __init__(self, fd: int, results: list[Result | None], pickled: list[bytes | None] | None):
        self.fd = fd
        self.results = results
        self.pickled = pickled
        self.at = 0

    def read(self) -> None:
        while True:
            head = os.pread(self.fd, _HEADER.size, self.at)
            if len(head) < _HEADER.size:
                return
            i, size = _HEADER.unpack(head)
            data = os.pread(self.fd, size, self.at + _HEADER.size)
            if len(data) < size:
                return  # not all written yet (or cut short by the child's end: that file is parsed again)
            if not 0 <= i < len(self.results) or self.results[i] is not None:
                raise AssertionError(f"record {i} of the parse's second process is not one it was to write")
            self.at += _HEADER.size + size
            with no_gc():  # as parse does: a collection meanwhile would walk every AST read so far
                # a parse's spans come with their file's lines, once (``Span.within``)
                self.results[i] = pickle.loads(data)
            if self.pickled is not None:
                self.pickled[i] = data


def _acquire(lock: Any, other_alive: Callable[[], bool]) -> bool:
    """``lock`` taken, or False once the other process is gone without it being free (a
    process killed while holding it never releases it)."""
    while not lock.acquire(timeout=_PATIENCE):
        if not other_alive():
            return bool(lock.acquire(block=False))
    return True


_PATIENCE = 0.5  # seconds between looks at whether the process holding the lock is still there


def _child(jobs: Sequence[Job], lock: Any, ends: Any, out: IO[bytes], mask: Any) -> None:
    """The forked process: jobs from the back of the list, each result pickled into ``out``
    (its index, its length, the pickle) until the two ends meet or the parent is gone. A
    file it cannot parse or pickle is left to the parent, which parses what was not
    delivered (and so raises a parse's exception as a serial run would); nothing is
    written to stderr (``multiprocessing`` would print a traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops it
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # every signal was held for the fork (a ^C then is dropped)
    try:  # a signal here must not reach the parent's event loop through its wake-up fd
        signal.set_wakeup_fd(-1)
    except ValueError:  # pragma: no cover - not the main thread
        pass
    gc.disable()  # a collection would walk (and so copy) the whole heap inherited from the parent
    parent = os.getppid()

    def parent_alive() -> bool:
        return os.getppid() == parent

    try:
        while parent_alive():
            if not _acquire(lock, parent_alive):
                return
            try:
                i = ends[1] - 1
                if i < ends[0]:
                    return
                ends[1] = i
            finally:
                lock.release()
            try:
                data = pickle.dumps(_parse(jobs[i]), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - left to the parent (RecursionError: a deep listing's pickle)
                continue
            out.write(_HEADER.pack(i, len(data)))
            out.write(data)
            out.flush()  # each result whole in the file as soon as it is ready
    except BaseException:  # noqa: BLE001 - a write failed (no space): the parent parses what is left
        return
