"""The consistency analysis (P300–P304, P399) and the assertion prover of ``policy test``.

Both ask an SMT solver (z3) exact questions about a checked policy set: the encoding of a
listing, ``at`` and ``prior_violations`` is in ``dsl.analysis.world`` (with
``textpreds``, ``strings`` and ``regex`` for text, and ``timeline`` for instants); every
"sat" answer becomes a concrete listing that the reference evaluator confirms before it is
used; what the encoding cannot decide exactly is reported as undecided (P399), never
guessed. ``docs/analysis.md`` explains the encoding and its limits.

Public interface::

    analyze(ps, timeout_ms=10000, budget_seconds=None) -> list[Diagnostic]
    prove_assertion(ps, quantifier=, effect=, expr=, tz=, start=, end=) -> AssertionResult
    stats() -> AnalysisStats      # of the last call in this thread
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

from ..diagnostics import Diagnostic, sort_diagnostics
from ..model import PolicySet
from ..syntax import ast as A
from .assertions import AssertionResult, prove
from .findings import run
from .solver import AnalysisError, AnalysisStats, Budget

__all__ = ["AnalysisError", "AnalysisStats", "AssertionResult", "analyze", "prove_assertion", "stats"]

_last = threading.local()


def stats() -> AnalysisStats:
    """The counters of the last ``analyze`` or ``prove_assertion`` call in this thread."""
    found = getattr(_last, "stats", None)
    return found if found is not None else AnalysisStats()


def analyze(ps: PolicySet, *, timeout_ms: int = 10000, budget_seconds: float | None = None) -> list[Diagnostic]:
    """The consistency findings P300–P304 and P399 of a policy set without errors, sorted
    by position. ``timeout_ms`` bounds each solver call (a call that runs out gives P399);
    ``budget_seconds``, when given, bounds the whole run: no solver call outlasts it, and
    the questions left when it is used up are P399 findings whose ``data`` holds the
    budget's figures (``analysis_budget``: questions asked, answered, left, seconds used).
    Findings proved before then are reported as usual."""
    s = AnalysisStats()
    _last.stats = s
    budget = Budget(budget_seconds) if budget_seconds is not None else None
    return sort_diagnostics(run(ps, timeout_ms, s, budget))


def prove_assertion(ps: PolicySet, *, quantifier: str, effect: str, expr: A.Expr, tz: ZoneInfo,
                    start: dt.datetime | None, end: dt.datetime | None, timeout_ms: int = 10000) -> AssertionResult:
    """Decide ``assert [from start] [until end] always|never EFFECT EXPR``.

    ``always``: for every listing satisfying EXPR (which must be resolved like a rule
    condition: set references replaced by their lists), every instant ``at`` with
    ``start <= at < end`` and every ``prior_violations``, the decision's effect is EFFECT;
    ``never``: it is not. Date literals in EXPR are read in ``tz``. ``at`` ranges over
    instants (a counterexample's ``at`` has an offset)."""
    s = AnalysisStats()
    _last.stats = s
    t0 = time.perf_counter()
    try:
        return prove(ps, quantifier=quantifier, effect=effect, expr=expr, tz=tz, start=start, end=end,
                     timeout_ms=timeout_ms, stats=s)
    finally:
        s.seconds += time.perf_counter() - t0
