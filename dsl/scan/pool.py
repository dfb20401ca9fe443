"""The worker processes of a scan (``--jobs N``): each loads the policy set once from its
source text, checks that its ``policy_hash`` is the parent's, and decides the batches it is
sent. Batches go out in input order, at most ``DEPTH`` per worker at a time (so memory stays
flat), and come back in the same order."""

from __future__ import annotations

import multiprocessing
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

__all__ = ["DEPTH", "Workers", "load_sources"]

DEPTH = 2
"""Batches in flight per worker."""

_POLICIES: Policies | None = None


def load_sources(sources: Mapping[str, str]) -> Policies:
    """The policy set of these policy files (name to text), checked as ``dsl.load`` does."""
    files = [parse(text, name)[0] for name, text in sources.items()]
    model, _diags = build(files, dict(sources))
    if model is None:
        raise RuntimeError("the policy set has errors in the worker")
    return Policies(model)


def _start(sources: dict[str, str], expected_hash: str) -> None:
    global _POLICIES
    policies = load_sources(sources)
    if policies.policy_hash != expected_hash:
        raise RuntimeError(f"the worker's policy set is {policies.policy_hash}, not {expected_hash}")
    _POLICIES = policies


def _ready() -> None:
    """Nothing: a task that makes the pool start a worker."""


def _work(job: Job, batch: Any, offset: int) -> tuple[Any, Tally]:
    assert _POLICIES is not None
    return decide_batch(_POLICIES, job, batch, offset)


Local = Callable[[Any, int], tuple[Any, Tally]]
"""Decides a batch (given the number of records before it) in the calling process."""


def _result(item: Future[tuple[Any, Tally]] | tuple[Any, Tally]) -> tuple[Any, Tally]:
    return item.result() if isinstance(item, Future) else item


class Workers:
    """A pool of worker processes for one policy set; it may serve several scans (close it
    at the end, or use it as a context manager)."""

    def __init__(self, sources: Mapping[str, str], policy_hash: str, jobs: int):
        self.jobs = jobs
        self.policy_hash = policy_hash
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(dict(sources), policy_hash))
        for _ in range(jobs):  # start every worker now: loading the policy set overlaps the reader's start
            self._pool.submit(_ready)

    def map(self, job: Job, batches: Iterable[tuple[int, Any]],
            local: Local | None = None) -> Iterator[tuple[Any, Tally]]:
        """Each batch's result, in order (``batches`` gives each batch with the number of
        records before it). With ``local``, the calling process decides too: a batch that
        comes while every worker has ``DEPTH`` batches in flight is decided by ``local``
        (so a scan with N jobs starts N - 1 workers)."""
        pending: deque[Future[tuple[Any, Tally]] | tuple[Any, Tally]] = deque()
        busy = DEPTH * self.jobs
        try:
            for offset, batch in batches:
                in_flight = sum(1 for p in pending if isinstance(p, Future) and not p.done())
                if local is not None and in_flight >= busy:
                    pending.append(local(batch, offset))
                else:
                    pending.append(self._pool.submit(_work, job, batch, offset))
                if len(pending) >= busy + DEPTH:
                    yield _result(pending.popleft())
            while pending:
                yield _result(pending.popleft())
        except BrokenProcessPool as e:
            raise UsageError(f"--jobs: a worker process failed: {e}") from None
        finally:
            for f in pending:
                if isinstance(f, Future):
                    f.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
