"""The worker processes of a scan (``--jobs N``) and the order of its results: each worker
has the policy set (forked from the scan's process once it has loaded it, or spawned to
load it from its source text), checks with every task that its ``policy_hash`` is the
scan's, and decides what it is sent: a part of a Parquet input (``source.Part``), which it
reads itself, or a batch the scan read (CSV, JSON lines). The results come back (Arrow
pieces through a file: ``Spooled``), and are written, in input order; at most ``DEPTH``
tasks per worker are in flight, so memory stays flat."""

from __future__ import annotations

import atexit
import gc
import itertools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeAlias

import attrs
import pyarrow as pa

from ..atomic import held_folder
from ..checking.loader import UsageError
from ..checking.passes import build
from ..diagnostics import PolicyError, has_errors
from ..evaluate.policies import Policies
from ..signals import held
from ..syntax.cache import parse_cached
from .columns import constant
from .decide import Job, decide_batch
from .records import Lines
from .report import Tally
from .schema import COLUMNS
from .source import Part, PartReader

__all__ = ["DEPTH", "MEASURE", "START_AFTER", "WORTH", "CannotStart", "Result", "Sent", "Spooled", "Unit", "Workers",
           "batch_records", "decide_part", "decide_unit", "in_order", "load_sources", "worth_starting"]

DEPTH = 2
"""Tasks in flight per worker."""

WORTH = 2.0
"""Seconds of deciding (in one process) left that make it worth starting worker processes:
a forked worker is ready in milliseconds, but a spawned one decides nothing for its first
second or so (Python, DuckDB and pyarrow imported, the policy set loaded, the evaluator
warmed up); the parts are read by one DuckDB thread each, where the one stream spreads
DuckDB's work over the cores (the better for a scan the pushdown narrows, mostly
DuckDB's work); and a scan's end waits for its workers."""

MEASURE = 0.04
"""Seconds of deciding the scan's process measures (after its first unit, which warms the
evaluator up) before it estimates the time left: one batch's time alone is at the mercy
of the machine's load, but each unit measured delays the workers (on the benchmark's
policy no pushdown narrows, 0.04 s is one batch, and the worker starts 0.08 s sooner than
with 0.1 s; a scan the pushdown narrows measures a few batches of some milliseconds)."""

FORKED_READY = 1.0
"""Seconds a pool waits at most for its forked workers to be ready (they are in a few
milliseconds); past that, the scan goes on alone until they are."""

START_AFTER = 0.25
"""Seconds the scan's own process decides an input of unknown size (CSV, JSON lines)
before it starts its worker processes: a small input is decided before any starts."""

SPOOL_PREFIX = "policy-scan-"
"""The names of the pools' directories (``held_folder``) in the system's temporary directory."""

_HASH = COLUMNS[-1]
"""The output column ``policy_hash``, which workers do not send (``_without_hash``)."""

_POLICIES: Policies | None = None
_READER: PartReader | None = None
_STOP: Any = None
"""The pool's ``multiprocessing.Event``: set, this worker's tasks stop at their next batch."""


def load_sources(sources: Mapping[str, str]) -> Policies:
    """The policy set of these policy files (name to text), checked as ``dsl.load`` does.
    Raises ``dsl.PolicyError`` when a file does not parse or the set has errors (a file
    that parses only in part is never a smaller rule set)."""
    files, diags = [], []
    # (a file may hold rules and tests, whatever its name: ``parse``'s test_file=None)
    for file, found in parse_cached([(name, text, None) for name, text in sources.items()]):
        files.append(file)
        diags.extend(found)
    model, checked = build(files, dict(sources))
    if model is None or has_errors(diags):
        raise PolicyError([*diags, *checked])
    return Policies(model)


Origin = Mapping[str, str] | Policies
"""Where workers load the policy set from: the policy files' texts (name to text), which
a spawned worker parses, or the set itself, which a forked worker inherits."""


def _end_with_parent(spool: str) -> None:
    """Ends this worker when the scan's process is gone: killed (``kill -9``), it cannot
    stop its workers, which would otherwise wait for work forever, nor remove their
    results' directory (``spool``)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        shutil.rmtree(spool, ignore_errors=True)
        os._exit(1)


def _start(origin: Origin, spool: str, stop: Any) -> None:
    global _POLICIES, _READER, _STOP
    # ^C reaches the whole process group: the scan's process handles it and stops its workers
    # (a worker interrupted would print a traceback of its own); it was blocked for the fork
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not ``cli.run``'s: a worker has nothing to clean up
    threading.Thread(target=_end_with_parent, args=(spool,), name="end-with-parent", daemon=True).start()
    # as ``cli.run`` does: the exit does not walk the heap (the scan waits for it; 0.2 s measured)
    atexit.register(gc.freeze)
    _POLICIES = origin if isinstance(origin, Policies) else load_sources(origin)
    _READER = PartReader()
    _STOP = stop


def _ready() -> int:
    """This worker's process id: a task that makes the pool start a worker, done once the
    worker has loaded the policy set."""
    return os.getpid()


Unit = Part | tuple[int, Any]
"""What is decided at a time: a part of a Parquet input, or a batch with the number of
records before it."""

Result = tuple[list[Any], Tally]
"""The outputs of a unit's batches (``decide_batch``), and their tally."""

Sent: TypeAlias = "Spooled | Result"
"""A result as a worker sends it back (``Workers.result`` reads it)."""


def decide_part(policies: Policies, job: Job, part: Part, batch_size: int, reader: PartReader,
                between: Callable[[int], None] | None = None) -> Result:
    """The outputs of a part's batches, and their tally (``between``: called after each
    batch with its records)."""
    pieces: list[Any] = []
    tally = Tally()
    offset = part.offset
    for batch in reader.read(part, batch_size):
        piece, counted = decide_batch(policies, job, batch, offset)
        pieces.append(piece)
        tally.merge(counted)
        offset += batch.num_rows
        if between is not None:
            between(batch.num_rows)
    return pieces, tally


def decide_unit(policies: Policies, job: Job, unit: Unit, batch_size: int, reader: PartReader,
                between: Callable[[int], None] | None = None) -> Result:
    """The outputs of a unit (a part, or a batch with the number of records before it);
    ``between``: called after each batch of a part."""
    if isinstance(unit, Part):
        return decide_part(policies, job, unit, batch_size, reader, between)
    offset, batch = unit
    piece, tally = decide_batch(policies, job, batch, offset)
    return [piece], tally


def _work(expected_hash: str, job: Job, unit: Unit, batch_size: int, spool: str) -> Sent:
    assert _POLICIES is not None and _READER is not None
    if _POLICIES.policy_hash != expected_hash:
        raise UsageError(f"--jobs: a worker's policy set is {_POLICIES.policy_hash}, not the scan's {expected_hash}"
                         " (did a policy file change while the scan started?)")
    _stopped(0)
    pieces, tally = decide_unit(_POLICIES, job, unit, batch_size, _READER, _stopped)
    return _spooled([_without_hash(piece) for piece in pieces], tally, spool)


class _Stopped(Exception):
    """A task given up: the scan stops (``Workers.close(stop=True)``)."""


def _stopped(records: int) -> None:
    """Between a task's batches (``records``: the batch's): raises ``_Stopped`` once the
    scan stops."""
    if _STOP is not None and _STOP.is_set():
        raise _Stopped


_SPOOLED = itertools.count()


@attrs.frozen
class Spooled:
    """A worker's result in a file of its pool's directory, sent as the file's path: Arrow
    pieces as an Arrow IPC stream (the tally pickled in its schema's metadata), other
    pieces (the lines of JSON lines) pickled with the tally. A part's pieces are
    megabytes, which through the pool's pipe would come in 64 KB chunks, each waiting for
    the scan's process to let its result thread run (a worker sat idle a tenth of its time
    so); and a worker killed while it writes a message of megabytes into the pipe (by the
    system, out of memory) leaves half of it there, which the pool's thread that reads
    them waits for the rest of forever: the scan hung. A message of a path is written at
    once (under the pipe's ``PIPE_BUF``), whole or not at all."""

    path: str
    arrow: bool

    def read(self) -> Result:
        """The pieces and their tally (the file removed)."""
        try:
            if not self.arrow:
                with open(self.path, "rb") as file:
                    pieces, tally = pickle.load(file)
                    return pieces, tally
            with pa.OSFile(self.path) as file:
                stream = pa.ipc.open_stream(file)
                tally = pickle.loads(stream.schema.metadata[_TALLY])
                return [piece.replace_schema_metadata(None) for piece in stream], tally
        finally:
            os.unlink(self.path)


_TALLY = b"policy-scan-tally"
"""The key of a spooled Arrow stream's schema metadata that holds its tally."""


def _spooled(pieces: list[Any], tally: Tally, spool: str) -> Sent:
    """``pieces`` and ``tally`` in a file under ``spool`` (``Spooled``); as they are where
    the file cannot be written (a full disk: the pipe still works)."""
    arrow = bool(pieces) and all(isinstance(piece, pa.RecordBatch) for piece in pieces)
    path = os.path.join(spool, f"{os.getpid()}-{next(_SPOOLED)}")
    try:
        if arrow:
            schema = pieces[0].schema.with_metadata({_TALLY: pickle.dumps(tally, protocol=pickle.HIGHEST_PROTOCOL)})
            with pa.OSFile(path, "wb") as file, pa.ipc.new_stream(file, schema) as stream:
                for piece in pieces:
                    stream.write_batch(piece)
        else:
            with open(path, "wb") as file:
                pickle.dump((pieces, tally), file, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:
        if os.path.exists(path):
            os.unlink(path)
        return pieces, tally
    return Spooled(path, arrow)


def _without_hash(piece: Any) -> Any:
    """An Arrow piece without its ``policy_hash`` column as a worker sends it: the same
    text on every row, about half of a part's bytes, which the scan's process puts back
    (``_with_hash``) rather than read back."""
    return piece.drop_columns([_HASH]) if isinstance(piece, pa.RecordBatch) else piece


def _with_hash(piece: Any, policy_hash: str) -> Any:
    if not isinstance(piece, pa.RecordBatch):
        return piece
    return piece.append_column(_HASH, constant(policy_hash, pa.string(), piece.num_rows))


class CannotStart(UsageError):
    """The system refused a worker process (``fork`` or ``spawn`` failed: the limit of
    processes, memory); the pool is stopped and its directory removed."""


class Workers:
    """A pool of worker processes for one policy set, loaded from ``origin``: forked from
    this process when it is the set itself (ask ``dsl.forking.can_fork`` first, native
    threads allowed; ready at once), spawned from the files' texts otherwise (each parses
    them: about a second). It may serve several scans (close it at the end, or use it as a
    context manager). Each task is checked against ``policy_hash``: the set the pool's
    scans decide with (None until it is known: ``expect``)."""

    def __init__(self, origin: Origin, policy_hash: str | None, jobs: int):
        self.jobs = jobs
        self.policy_hash = policy_hash
        forked = isinstance(origin, Policies)
        if not isinstance(origin, Policies):
            origin = dict(origin)
        context = multiprocessing.get_context("fork" if forked else "spawn")
        self._spool, self._hold = held_folder(SPOOL_PREFIX)
        self._stop: Any = None
        self._pool: ProcessPoolExecutor | None = None
        self._ready: list[Future[int]] = []
        self._started = False  # every worker asked for
        self._processes: set[multiprocessing.process.BaseProcess] = set()
        before = set(multiprocessing.active_children())
        try:
            self._stop = context.Event()
            # the workers are born with SIGINT blocked (``_start`` ignores it, then unblocks): a ^C
            # meanwhile stops this process only, which then stops them (below)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                self._pool = ProcessPoolExecutor(max_workers=jobs, initializer=_start,
                                                 initargs=(origin, self._spool, self._stop),
                                                 mp_context=context)
                with warnings.catch_warnings():
                    # Python 3.12 and later warn of a fork with threads: the native ones above (``can_fork``)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    # start every worker now: it loads the policy set while the scan goes on
                    self._ready = [self._pool.submit(_ready) for _ in range(jobs)]
            finally:
                # the pool's processes (ProcessPoolExecutor keeps them private): close may have to stop them
                self._processes = set(multiprocessing.active_children()) - before
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self._started = True
            if forked:  # ready in milliseconds: the unit in hand can go to one (a worker stuck is never waited for)
                wait(self._ready, timeout=FORKED_READY)
        except BaseException as e:
            self.close()
            if isinstance(e, OSError):
                raise CannotStart(f"cannot start a worker process: {e}") from None
            raise

    def ready(self) -> int:
        """How many workers have loaded the policy set so far (at most ``jobs``). Raises
        what stopped one from loading it (``BrokenProcessPool``)."""
        done = [f for f in self._ready if f.done()]
        for f in done:
            f.result()
        return len(done)

    def expect(self, policy_hash: str) -> None:
        """The set's ``policy_hash``, once the scan's process has loaded it."""
        self.policy_hash = policy_hash

    def submit(self, job: Job, unit: Unit, batch_size: int) -> Future[Sent]:
        """A worker decides ``unit`` (``decide_unit``); its Arrow pieces come back
        ``Spooled`` (``result`` reads them)."""
        assert self.policy_hash is not None, "Workers.expect first"
        assert self._pool is not None, "a pool that started"
        return self._pool.submit(_work, self.policy_hash, job, unit, batch_size, self._spool)

    def result(self, done: Future[Sent]) -> Result:
        """A task's result as ``decide_unit`` gives it."""
        assert self.policy_hash is not None
        sent = done.result()
        if isinstance(sent, Spooled):
            try:
                pieces, tally = sent.read()
            except OSError as e:  # the file gone (a cleaner of the temporary directory?) or unreadable
                raise UsageError(f"--jobs: cannot read a worker's results: {e}") from None
        else:
            pieces, tally = sent
        return [_with_hash(piece, self.policy_hash) for piece in pieces], tally

    def close(self, *, stop: bool = False) -> None:
        """Waits for the workers to end. With ``stop`` (the scan stops: ^C, an error), they
        give up their tasks at their next batch; while one may still be loading the policy
        set (a small scan ended before it had anything to do), or the pool did not start
        whole, they are all killed instead (all: a worker killed alone may hold the lock of
        the queue the others read their work from). The results not read are removed."""
        # a second ^C or SIGTERM waits for the end of this (a tenth of a second): interrupted
        # halfway, the pool's shutdown would leave its workers waiting for work forever, and
        # this process waiting for them at its exit
        with held():
            if stop and self._stop is not None:
                self._stop.set()
            if not self._started or not all(f.done() for f in self._ready):
                for process in self._processes:
                    process.kill()
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            for process in self._processes:
                process.join()
            shutil.rmtree(self._spool, ignore_errors=True)
            if self._hold is not None:
                os.close(self._hold)
                self._hold = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_records(batch: Any) -> int:
    """The records of a batch (an Arrow batch, a list of JSON records, or JSON lines)."""
    if isinstance(batch, Lines):
        return batch.records
    return len(batch) if isinstance(batch, list) else int(batch.num_rows)


def _records(unit: Unit) -> int:
    return unit.records if isinstance(unit, Part) else batch_records(unit[1])


def worth_starting(spent: float, measured: int, remaining: int | None) -> bool:
    """Whether worker processes are worth starting, the scan's process having spent
    ``spent`` seconds deciding ``measured`` records (its first unit left out: it warms the
    evaluator up, its time says little of the rest), with ``remaining`` records left (None:
    unknown): once it has measured for ``MEASURE`` seconds, when the rest would take it
    ``WORTH`` seconds or more."""
    if remaining is None:
        return spent >= START_AFTER
    return spent >= MEASURE and spent / measured * remaining >= WORTH


def in_order(job: Job, units: Iterable[Unit], batch_size: int, *, workers: Workers | None,
             local: Callable[[Unit, Callable[[int], None] | None], Result] | None,
             start: Callable[[], Workers | None] | None = None, total: int | None = None,
             at_once: Callable[[Unit], bool] | None = None) -> Iterator[Result]:
    """Each unit's result, in order. ``workers`` decide units; with ``local``, the calling
    process decides too: a unit the workers do not take (``_Order.takes``: every worker has
    ``DEPTH`` in flight, none has loaded the policy set yet, or the end is near) is decided
    by ``local``, which tops the workers up between the batches of a part (so that a worker
    does not wait idle while this process decides a large part). With ``start``, the
    workers are started when ``worth_starting`` says so (``total``: the records of all the
    units), or before the first unit is handed out where ``at_once`` says so of it; once,
    since ``start`` returns None where they cannot be (``local`` decides the rest)."""
    order = _Order(job, iter(units), batch_size, workers, local, total)
    try:
        while (unit := order.next_unit()) is not None:
            if order.workers is None and start is not None and (
                    order.done == 0 and at_once is not None and at_once(unit) or order.worth_starting()):
                order.workers = start()
                start = None
            if order.takes(unit):
                order.send(unit)
            else:
                order.decide_here(unit)
            yield from order.results(wait=False)
        yield from order.results(wait=True)
    except BrokenProcessPool as e:
        raise UsageError(f"--jobs: a worker process failed: {e}") from None
    finally:
        for f in order.pending:
            if isinstance(f, Future):
                f.cancel()


class _Order:
    """``in_order``'s units handed out, to the workers or to ``local``, and their results
    in order."""

    def __init__(self, job: Job, units: Iterator[Unit], batch_size: int, workers: Workers | None,
                 local: Callable[[Unit, Callable[[int], None] | None], Result] | None, total: int | None):
        self.job, self.units, self.batch_size, self.workers, self.local, self.total = (
            job, units, batch_size, workers, local, total)
        self.pending: deque[Future[Sent] | list[Result]] = deque()  # a list: a unit decided here (its result)
        self.sent: dict[Future[Sent], int] = {}  # the records of each unit sent, until its result is read
        self.ahead: Unit | None = None  # a unit taken from ``units`` that the workers did not take
        self.spent = 0.0  # seconds ``local`` has decided, its first unit left out
        self.done = self.first = 0  # the records handed out; those of the first unit
        self.here = 0  # the records of the unit ``local`` decides not decided yet

    def worth_starting(self) -> bool:
        remaining = None if self.total is None else self.total - self.done
        return worth_starting(self.spent, self.done - self.first, remaining)

    def next_unit(self) -> Unit | None:
        if self.ahead is not None:
            unit, self.ahead = self.ahead, None
            return unit
        return next(self.units, None)

    def takes(self, unit: Unit) -> bool:
        """Whether the workers take ``unit`` now: all of them without ``local``; with it,
        while one that has loaded the set (a unit sent to one still starting would wait
        for it, while this process decides) has fewer than ``DEPTH`` in flight, and near
        the end only while they would hold no more records than this process has left to
        decide (it decides the rest rather than wait for a worker's last units)."""
        if self.workers is None or self.local is None:
            return self.workers is not None
        held = [records for f, records in self.sent.items() if not f.done()]
        if len(held) >= DEPTH * self.workers.ready():
            return False
        size = _records(unit)  # (what this process would have left else: ``here`` and the rest)
        return self.total is None or sum(held) + size <= self.here + self.total - self.done - size

    def send(self, unit: Unit) -> None:
        assert self.workers is not None
        future = self.workers.submit(self.job, unit, self.batch_size)
        self.pending.append(future)
        self.sent[future] = _records(unit)
        self._handed(unit)

    def decide_here(self, unit: Unit) -> None:
        assert self.local is not None
        result: list[Result] = []
        self.pending.append(result)
        measured = self.done > 0  # (the first unit warms the evaluator up)
        self._handed(unit)
        self.here = _records(unit)
        began = time.perf_counter()
        result.append(self.local(unit, self.top_up if self.workers is not None else None))
        if measured:
            self.spent += time.perf_counter() - began
        self.here = 0

    def top_up(self, decided: int) -> None:
        """Between the batches of a unit decided here (``decided``: the batch's records)."""
        self.here -= decided
        while (unit := self.next_unit()) is not None:
            if not self.takes(unit):
                self.ahead = unit
                return
            self.send(unit)

    def _handed(self, unit: Unit) -> None:
        self.first = self.first or _records(unit)
        self.done += _records(unit)

    def results(self, *, wait: bool) -> Iterator[Result]:
        """The results ready at the head of the order; with ``wait``, all of them (and so,
        too, while more are in flight than memory should hold)."""
        limit = 2 * DEPTH + (DEPTH * self.workers.jobs if self.workers is not None else 0)
        while self.pending and (wait or isinstance(self.pending[0], list) or self.pending[0].done()
                                or len(self.pending) >= limit):
            item = self.pending.popleft()
            if isinstance(item, list):
                yield item[0]
            else:
                assert self.workers is not None
                self.sent.pop(item, None)
                yield self.workers.result(item)
