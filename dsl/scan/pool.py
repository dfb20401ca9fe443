"""The worker processes of a scan (``--jobs N``) and the order of its results: each worker
loads the policy set once from its source text, checks that its ``policy_hash`` is the
parent's, and decides what it is sent: a part of a Parquet input (``source.Part``), which
it reads itself, or a batch the scan read (CSV, JSON lines). The results come back, and
are written, in input order; at most ``DEPTH`` tasks per worker are in flight, so memory
stays flat."""

from __future__ import annotations

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

from ..checking.loader import UsageError
from ..checking.passes import build
from ..evaluate.policies import Policies
from ..syntax import parse
from .decide import Job, decide_batch
from .report import Tally
from .source import Part, PartReader

__all__ = ["DEPTH", "MEASURE", "START_AFTER", "WORTH", "Result", "Unit", "Workers", "batch_records", "decide_part",
           "decide_unit", "in_order", "load_sources", "worth_starting"]

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

_POLICIES: Policies | None = None
_READER: PartReader | None = None


def load_sources(sources: Mapping[str, str]) -> Policies:
    """The policy set of these policy files (name to text), checked as ``dsl.load`` does."""
    files = [parse(text, name)[0] for name, text in sources.items()]
    model, _diags = build(files, dict(sources))
    if model is None:
        raise RuntimeError("the policy set has errors in the worker")
    return Policies(model)


def _end_with_parent() -> None:
    """Ends this worker when the scan's process is gone: killed (``kill -9``), it cannot
    stop its workers, which would otherwise wait for work forever."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)


def _start(sources: dict[str, str], expected_hash: str) -> None:
    global _POLICIES, _READER
    threading.Thread(target=_end_with_parent, name="end-with-parent", daemon=True).start()
    policies = load_sources(sources)
    if policies.policy_hash != expected_hash:
        raise RuntimeError(f"the worker's policy set is {policies.policy_hash}, not {expected_hash}")
    _POLICIES, _READER = policies, PartReader()


def _ready() -> None:
    """Nothing: a task that makes the pool start a worker."""


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


def _work(job: Job, unit: Unit, batch_size: int) -> Result:
    assert _POLICIES is not None and _READER is not None
    return decide_unit(_POLICIES, job, unit, batch_size, _READER)


class Workers:
    """A pool of worker processes for one policy set; it may serve several scans (close it
    at the end, or use it as a context manager)."""

    def __init__(self, sources: Mapping[str, str], policy_hash: str, jobs: int):
        self.jobs = jobs
        self.policy_hash = policy_hash
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(dict(sources), policy_hash))
        for _ in range(jobs):  # start every worker now: it loads the policy set while the scan goes on
            self._pool.submit(_ready)

    def submit(self, job: Job, unit: Unit, batch_size: int) -> Future[Result]:
        """A worker decides ``unit`` (``decide_unit``)."""
        return self._pool.submit(_work, job, unit, batch_size)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_records(batch: Any) -> int:
    """The records of a batch (an Arrow batch, or a list of JSON records)."""
    return len(batch) if isinstance(batch, list) else int(batch.num_rows)


def _records(unit: Unit) -> int:
    return unit.records if isinstance(unit, Part) else batch_records(unit[1])


def _result(item: Future[Result] | Result) -> Result:
    return item.result() if isinstance(item, Future) else item


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
    before any worker is started) is decided by ``local``. With ``start``, the workers are
    started when ``worth_starting`` says so (``total``: the records of all the units)."""
    pending: deque[Future[Result] | Result] = deque()
    spent, done, first = 0.0, 0, 0  # ``first``: the records of the first unit
    try:
        for unit in units:
            if (workers is None and start is not None
                    and worth_starting(spent, done - first, None if total is None else total - done)):
                workers = start()
            busy = DEPTH * workers.jobs if workers is not None else 0
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
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    except BrokenProcessPool as e:
        raise UsageError(f"--jobs: a worker process failed: {e}") from None
    finally:
        for f in pending:
            if isinstance(f, Future):
                f.cancel()
