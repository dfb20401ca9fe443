"""The worker processes of a scan (``--jobs N``) and the order of its results: each worker
loads the policy set once (from its source text, or from the policy files themselves when
started before the scan's process has read them), checks with every task that its
``policy_hash`` is the scan's, and decides what it is sent: a part of a Parquet input (``source.Part``), which
it reads itself, or a batch the scan read (CSV, JSON lines). The results come back, and
are written, in input order; at most ``DEPTH`` tasks per worker are in flight, so memory
stays flat."""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import attrs
import pyarrow as pa

from ..checking.loader import UsageError, read_paths
from ..checking.passes import build
from ..diagnostics import PolicyError, has_errors
from ..evaluate.policies import Policies
from ..syntax import parse
from .columns import constant
from .decide import Job, decide_batch
from .report import Tally
from .schema import COLUMNS
from .source import Part, PartReader

__all__ = ["DEPTH", "MEASURE", "START_AFTER", "WORTH", "PolicyPaths", "Result", "Unit", "Workers", "batch_records",
           "decide_part", "decide_unit", "in_order", "load_sources", "start_workers", "worth_starting"]

DEPTH = 2
"""Tasks in flight per worker."""

WORTH = 2.0
"""Seconds of deciding (in one process) left that make it worth starting worker processes:
a worker decides nothing for its first second or so (Python, DuckDB and pyarrow imported,
the policy set loaded, the evaluator warmed up), and a scan's end waits for its workers."""

MEASURE = 0.1
"""Seconds of deciding the scan's process measures (after its first unit) before it
estimates the time left: one batch's time alone is at the mercy of the machine's load."""

START_AFTER = 0.25
"""Seconds the scan's own process decides an input of unknown size (CSV, JSON lines)
before it starts its worker processes: a small input is decided before any starts."""

_HASH = COLUMNS[-1]
"""The output column ``policy_hash``, which workers do not send (``_without_hash``)."""

_POLICIES: Policies | None = None
_READER: PartReader | None = None


def load_sources(sources: Mapping[str, str]) -> Policies:
    """The policy set of these policy files (name to text), checked as ``dsl.load`` does.
    Raises ``dsl.PolicyError`` when a file does not parse or the set has errors (a file
    that parses only in part is never a smaller rule set)."""
    files, diags = [], []
    for name, text in sources.items():
        file, found = parse(text, name)
        files.append(file)
        diags.extend(found)
    model, checked = build(files, dict(sources))
    if model is None or has_errors(diags):
        raise PolicyError([*diags, *checked])
    return Policies(model)


@attrs.frozen
class PolicyPaths:
    """The policy files under ``paths``, which each worker reads and parses itself (its
    policy files, as ``dsl.checking.loader.load_paths`` finds them, test files left out):
    so workers can start before the scan's process has loaded the set."""

    paths: tuple[str, ...]

    def sources(self) -> dict[str, str]:
        jobs, problems = read_paths(self.paths)
        if problems:
            raise RuntimeError(f"the worker cannot read the policy files: {problems[0].message}")
        return {name: text for name, text, test_file in jobs if not test_file}


Origin = Mapping[str, str] | PolicyPaths
"""Where workers load the policy set from: the policy files' texts (name to text), or
their paths."""


def _end_with_parent() -> None:
    """Ends this worker when the scan's process is gone: killed (``kill -9``), it cannot
    stop its workers, which would otherwise wait for work forever."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)


def _start(origin: Origin) -> None:
    global _POLICIES, _READER
    threading.Thread(target=_end_with_parent, name="end-with-parent", daemon=True).start()
    # as ``cli.run`` does: the exit does not walk the heap (the scan waits for it; 0.2 s measured)
    atexit.register(gc.freeze)
    _POLICIES = load_sources(origin.sources() if isinstance(origin, PolicyPaths) else origin)
    _READER = PartReader()


def _ready() -> int:
    """This worker's process id: a task that makes the pool start a worker, done once the
    worker has loaded the policy set."""
    return os.getpid()


Unit = Part | tuple[int, Any]
"""What is decided at a time: a part of a Parquet input, or a batch with the number of
records before it."""

Result = tuple[list[Any], Tally]
"""The outputs of a unit's batches (``decide_batch``), and their tally."""


def decide_part(policies: Policies, job: Job, part: Part, batch_size: int, reader: PartReader) -> Result:
    """The outputs of a part's batches, and their tally."""
    pieces: list[Any] = []
    tally = Tally()
    offset = part.offset
    for batch in reader.read(part, batch_size):
        piece, counted = decide_batch(policies, job, batch, offset)
        pieces.append(piece)
        tally.merge(counted)
        offset += batch.num_rows
    return pieces, tally


def decide_unit(policies: Policies, job: Job, unit: Unit, batch_size: int, reader: PartReader) -> Result:
    """The outputs of a unit (a part, or a batch with the number of records before it)."""
    if isinstance(unit, Part):
        return decide_part(policies, job, unit, batch_size, reader)
    offset, batch = unit
    piece, tally = decide_batch(policies, job, batch, offset)
    return [piece], tally


def _work(expected_hash: str, job: Job, unit: Unit, batch_size: int) -> Result:
    assert _POLICIES is not None and _READER is not None
    if _POLICIES.policy_hash != expected_hash:
        raise UsageError(f"--jobs: a worker's policy set is {_POLICIES.policy_hash}, not the scan's {expected_hash}"
                         " (did a policy file change while the scan started?)")
    pieces, tally = decide_unit(_POLICIES, job, unit, batch_size, _READER)
    return [_without_hash(piece) for piece in pieces], tally


def _without_hash(piece: Any) -> Any:
    """An Arrow piece without its ``policy_hash`` column as a worker sends it: the same
    text on every row, about half of a part's bytes, which the scan's process puts back
    (``_with_hash``) rather than read through the pipe."""
    return piece.drop_columns([_HASH]) if isinstance(piece, pa.RecordBatch) else piece


def _with_hash(piece: Any, policy_hash: str) -> Any:
    if not isinstance(piece, pa.RecordBatch):
        return piece
    return piece.append_column(_HASH, constant(policy_hash, pa.string(), piece.num_rows))


class Workers:
    """A pool of worker processes for one policy set, loaded from ``origin``; it may serve
    several scans (close it at the end, or use it as a context manager). Each task is
    checked against ``policy_hash``: the set the pool's scans decide with (None until it is
    known: ``expect``)."""

    def __init__(self, origin: Origin, policy_hash: str | None, jobs: int):
        self.jobs = jobs
        self.policy_hash = policy_hash
        if not isinstance(origin, PolicyPaths):
            origin = dict(origin)
        before = set(multiprocessing.active_children())
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(origin,))
        # start every worker now: it loads the policy set while the scan goes on
        self._ready = [self._pool.submit(_ready) for _ in range(jobs)]
        # the pool's processes (ProcessPoolExecutor keeps them private): close may have to stop them
        self._processes = set(multiprocessing.active_children()) - before

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

    def submit(self, job: Job, unit: Unit, batch_size: int) -> Future[Result]:
        """A worker decides ``unit`` (``decide_unit``)."""
        assert self.policy_hash is not None, "Workers.expect first"
        return self._pool.submit(_work, self.policy_hash, job, unit, batch_size)

    def close(self) -> None:
        """Waits for the workers to end; while one may still be loading the policy set (a
        small scan ended before it had anything to do), they are all stopped instead of
        waited for (all: a worker killed alone may hold the lock of the queue the others
        read their work from)."""
        if not all(f.done() for f in self._ready):
            for process in self._processes:
                process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_workers(paths: Iterable[str | os.PathLike[str]], jobs: int | None) -> Workers | None:
    """With ``jobs`` (more than 1) asked for, its workers less the scan's own process,
    started now from the policy files under ``paths``: each loads the set while the
    scan's process does, so that they are ready (a worker needs about a second to start)
    when the scan has measured that they are worth it (``worth_starting``) and stopped
    at its end if not. None otherwise: the scan then starts its workers only once they
    are worth it."""
    if jobs is None or jobs < 2:
        return None
    return Workers(PolicyPaths(tuple(os.fspath(p) for p in paths)), None, jobs - 1)


def batch_records(batch: Any) -> int:
    """The records of a batch (an Arrow batch, or a list of JSON records)."""
    return len(batch) if isinstance(batch, list) else int(batch.num_rows)


def _records(unit: Unit) -> int:
    return unit.records if isinstance(unit, Part) else batch_records(unit[1])


def _result(item: Future[Result] | Result, workers: Workers | None) -> Result:
    if not isinstance(item, Future):
        return item
    assert workers is not None and workers.policy_hash is not None
    pieces, tally = item.result()
    return [_with_hash(piece, workers.policy_hash) for piece in pieces], tally


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
             local: Callable[[Unit], Result] | None, start: Callable[[], Workers] | None = None,
             total: int | None = None) -> Iterator[Result]:
    """Each unit's result, in order. ``workers`` decide units; with ``local``, the calling
    process decides too: a unit that comes while every worker has ``DEPTH`` in flight (or
    before any worker is started and has loaded the policy set) is decided by ``local``. With ``start``, the workers are
    started when ``worth_starting`` says so (``total``: the records of all the units)."""
    pending: deque[Future[Result] | Result] = deque()
    spent, done, first = 0.0, 0, 0  # ``first``: the records of the first unit
    try:
        for unit in units:
            if (workers is None and start is not None
                    and worth_starting(spent, done - first, None if total is None else total - done)):
                workers = start()
            # the workers that can take a unit now: with ``local``, those that have loaded the set
            # (a unit sent to one still starting would wait for it, while this process decides)
            busy = DEPTH * (workers.jobs if local is None else workers.ready()) if workers is not None else 0
            in_flight = sum(1 for p in pending if isinstance(p, Future) and not p.done())
            if workers is not None and (local is None or in_flight < busy):
                pending.append(workers.submit(job, unit, batch_size))
            else:
                assert local is not None
                began = time.perf_counter()
                pending.append(local(unit))
                if done:
                    spent += time.perf_counter() - began
            first = first or _records(unit)
            done += _records(unit)
            while pending and (not isinstance(pending[0], Future) or pending[0].done()
                               or len(pending) >= busy + 2 * DEPTH):
                yield _result(pending.popleft(), workers)
        while pending:
            yield _result(pending.popleft(), workers)
    except BrokenProcessPool as e:
        raise UsageError(f"--jobs: a worker process failed: {e}") from None
    finally:
        for f in pending:
            if isinstance(f, Future):
                f.cancel()
