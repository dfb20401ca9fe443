"""Asking the solver: assemble a question's constraints, solve, turn a model into a
concrete listing, and confirm it with the reference evaluator.

The contract of ``Engine.solve``: "unsat" only when the over-approximating encoding is
unsatisfiable (so it is true of every real listing); "sat" only with a concrete witness
that ``formula.evaluate`` confirms; otherwise "undecided" with the reason. A witness that
the encoding promised but the evaluator refutes, where the encoding claims to be exact,
is a bug and raises ``AnalysisError``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import z3

from ..evaluate import values as V
from ..evaluate.outcome import InputError
from ..model import PolicySet, RuleInfo
from ..syntax import ast as A
from . import formula as FM
from .answers import Answer, Unrealisable, Witness
from .concrete import Applicability
from .strings import StringMode
from .textpreds import Pred
from .witness import Realiser, clean_witness
from .world import NEAR_THE_ENDS, NUM, AtomInfo, Field, World, edge_reason


class AnalysisError(RuntimeError):
    """The analysis and the evaluator disagree where the analysis claims to be exact: a bug
    in the tool, never a property of the policies."""


@attrs.define
class AnalysisStats:
    """Counters for the benchmark and ``policy check --stats``."""

    solver_calls: int = 0
    sat: int = 0
    unsat: int = 0
    undecided: int = 0
    pairs_considered: int = 0  # (rule, other rule) questions put to the index, over all checks
    pairs_pruned: int = 0  # of those, answered "never together" by the index alone
    pairs_by_check: dict[str, list[int]] = attrs.field(factory=dict)  # check -> [considered, pruned]
    concrete_hits: int = 0
    replays: int = 0
    seconds: float = 0.0
    solver_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def count_pairs(self, check: str, considered: int, pruned: int) -> None:
        self.pairs_considered += considered
        self.pairs_pruned += pruned
        found = self.pairs_by_check.setdefault(check, [0, 0])
        found[0] += considered
        found[1] += pruned


@attrs.define
class Budget:
    """The time budget of a whole analysis run (``policy check --analysis-budget``).

    Every solver call's timeout is the smaller of the per-question timeout and the time
    left, so the run ends about ``seconds`` after it started. A question asked once the
    budget is used up is not put to the solver: it is undecided (P399) with the reason
    ``before()``; one the solver was answering when the time ran out gets ``during()``.
    ``asked`` counts the questions put to the solver, ``answered`` those that got a
    definite answer, ``left`` those not asked."""

    seconds: float = attrs.field()
    started: float = attrs.field(factory=time.perf_counter)
    asked: int = 0
    answered: int = 0
    left: int = 0

    @seconds.validator
    def _finite(self, _attribute: Any, value: float) -> None:
        # the API refuses such a budget (api.check_budget); this guards the solver's
        # timeout, whole milliseconds, which nan and infinity are not
        if not math.isfinite(value):
            raise ValueError(f"analysis budget {value!r}: expected a finite number of seconds")

    def remaining(self) -> float:
        return self.started + self.seconds - time.perf_counter()

    def spent(self) -> bool:
        return self.remaining() < 0.001  # a solver timeout is whole milliseconds

    def before(self) -> str:
        return f"analysis budget of {self.seconds:g} s used up before this question was asked"

    def during(self) -> str:
        return f"analysis budget of {self.seconds:g} s used up while this question was asked"

    def to_dict(self) -> dict[str, Any]:
        """The figures reported with the budget's P399 findings."""
        return {"budget_seconds": self.seconds, "questions_asked": self.asked, "questions_answered": self.answered,
                "questions_left": self.left, "seconds_used": round(time.perf_counter() - self.started, 3)}


@attrs.frozen
class RuleEnc:
    window: z3.BoolRef = attrs.field(eq=False)
    cond: z3.BoolRef = attrs.field(eq=False)
    atoms: frozenset[AtomInfo]


class Engine:
    """One policy set's encodings, shared by all the questions asked about it."""

    def __init__(self, ps: PolicySet, extra: Iterable[tuple[A.Expr, ZoneInfo]] = (), *,
                 timeout_ms: int = 10000, stats: AnalysisStats | None = None, budget: Budget | None = None):
        self.ps = ps
        self.timeout_ms = timeout_ms
        self.budget = budget
        self.stats = stats or AnalysisStats()
        self.world = World(ps, extra)
        self._enc: dict[str, RuleEnc] = {}
        self.overriders: dict[str, list[str]] = defaultdict(list)
        for r in ps.rules:
            if r.effect == "allow":
                for target in r.overrides:
                    self.overriders[target].append(r.qid)
        self._holds_cache: dict[Any, tuple[z3.BoolRef, frozenset[AtomInfo]]] = {}
        self._z3_cache: dict[FM.F, z3.BoolRef] = {}
        self.concrete = Applicability(ps)
        self._remaining: dict[str, FM.F] = {}

    # ------------------------------------------------------------------ encodings

    def rule(self, qid: str) -> RuleInfo:
        return self.ps.rule(qid)

    def enc(self, qid: str) -> RuleEnc:
        found = self._enc.get(qid)
        if found is None:
            rule = self.ps.rule(qid)
            atoms: set[AtomInfo] = set()
            cond = self.world.expr(rule.condition, rule.tz, atoms)
            found = self._enc[qid] = RuleEnc(self.world.window(rule), cond, frozenset(atoms))
        return found

    def _holds(self, h: FM.Holds) -> tuple[z3.BoolRef, frozenset[AtomInfo]]:
        key = (h.expr, h.tz_key)
        if key not in self._holds_cache:
            atoms: set[AtomInfo] = set()
            e = self.world.expr(h.expr, h.tz, atoms)
            self._holds_cache[key] = (e, frozenset(atoms))
        return self._holds_cache[key]

    def to_z3(self, f: FM.F) -> z3.BoolRef:
        found = self._z3_cache.get(f)
        if found is None:
            found = self._to_z3(f)
            if isinstance(f, (FM.Applies, FM.Not, FM.Holds)) or (isinstance(f, FM.And) and len(f.items) <= 8):
                self._z3_cache[f] = found
        return found

    def _to_z3(self, f: FM.F) -> z3.BoolRef:
        if isinstance(f, FM.Const):
            return z3.BoolVal(f.value)
        if isinstance(f, FM.Applies):
            e = self.enc(f.qid)
            return z3.And(e.window, e.cond)
        if isinstance(f, FM.Holds):
            return self._holds(f)[0]
        if isinstance(f, FM.AtIn):
            return z3.And(z3.Not(self.world.at_naive), World.instant_in(self.world.at_t, [(f.lo, f.hi)]))
        if isinstance(f, FM.RankGe):
            return self.rank(f.x) >= self.rank(f.r)
        if isinstance(f, FM.PriorIn):
            low = self.world.prior >= f.lo
            return low if f.hi is None else z3.And(low, self.world.prior < f.hi)
        if isinstance(f, FM.And):
            return z3.And(*[self.to_z3(i) for i in f.items])
        if isinstance(f, FM.Or):
            return z3.Or(*[self.to_z3(i) for i in f.items])
        if isinstance(f, FM.Not):
            return z3.Not(self.to_z3(f.item))
        raise TypeError(type(f).__name__)

    def rank(self, qid: str) -> z3.ArithRef:
        """The severity rank of the step the rule proposes at ``prior``."""
        ranks = self._ranks()
        rule = self.ps.rule(qid)
        assert rule.penalty is not None
        steps = rule.penalty.steps
        expr: z3.ArithRef = z3.IntVal(ranks[steps[-1].severity])
        for i in range(len(steps) - 2, -1, -1):
            expr = z3.If(self.world.prior == i, ranks[steps[i].severity], expr)
        return expr

    def _ranks(self) -> dict[Any, int]:
        if not hasattr(self, "_rank_table"):
            keys = sorted({s.severity for r in self.ps.rules if r.penalty for s in r.penalty.steps})
            self._rank_table = {k: i for i, k in enumerate(keys)}
        return self._rank_table

    # ------------------------------------------------------------------ overrides

    def remaining(self, qid: str) -> FM.F:
        """The rule applies and no applying allow overrides it."""
        found = self._remaining.get(qid)
        if found is None:
            found = self._remaining[qid] = FM.all_of(
                FM.Applies(qid), *[FM.Not(FM.Applies(a)) for a in self.overriders.get(qid, ())])
        return found

    def with_overriders(self, qids: Iterable[str]) -> set[str]:
        """``qids`` and every allow that overrides one of them."""
        keep = set(qids)
        for q in list(keep):
            keep.update(self.overriders.get(q, ()))
        return keep

    def overridden(self, qid: str) -> FM.F:
        return FM.any_of(*[FM.Applies(a) for a in self.overriders.get(qid, ())])

    # ------------------------------------------------------------------ solving

    def solve(self, f: FM.F, *, aware_at: bool = False, clean: bool = True) -> Answer:
        """Decide whether some listing, ``at`` and ``prior_violations`` make ``f`` true."""
        budget = self.budget
        if budget is not None:
            if budget.spent():
                budget.left += 1
                self.stats.undecided += 1
                return Answer("undecided", reason=budget.before(), cut=True)
            budget.asked += 1
        start = time.perf_counter()
        try:
            answer = self._solve(f, aware_at=aware_at, clean=clean)
        finally:
            self.stats.solver_seconds += time.perf_counter() - start
        if budget is not None and answer.status != "undecided":
            budget.answered += 1
        return answer

    def _gave_up(self, solver: z3.Solver) -> Answer:
        """The answer when the solver answered "unknown": the budget ran out, or z3 gave up."""
        self.stats.undecided += 1
        if self.budget is not None and self.budget.spent():
            return Answer("undecided", reason=self.budget.during(), cut=True)
        return Answer("undecided", reason=f"the solver gave up ({solver.reason_unknown()})")

    def _question(self, f: FM.F, aware_at: bool) -> _Question:
        """The constraints that every question about ``f`` needs besides ``f`` itself: the
        fields, text predicates and categories its atoms read, and the time model."""
        w = self.world
        qids = FM.rules_of(f)
        atoms: set[AtomInfo] = set()
        for q in qids:
            atoms |= self.enc(q).atoms
        for h in FM.holds_of(f):
            atoms |= self._holds(h)[1]
        r = _reads(atoms, w.required_fields())
        cons = self._read_constraints(r)
        cons.extend(self._time_constraints(qids, r, aware_at))
        for path in sorted(r.fields):
            fld = w.fields[path]
            if r.preds.get(path) and r.zones.get(path):
                r.reasons.append(f"'{fld.name}' is read both as text and as a date")
        regex_fields = {path: (w.fields[path], r.preds[path]) for path in sorted(r.preds)
                        if any(p.kind == "regex" for p in r.preds[path])}
        strings = StringMode(regex_fields) if regex_fields else None
        if strings is not None:
            cons.extend(strings.constraints)
            r.reasons.extend(strings.approximate)
        partial = sorted({w.edges[p] for p in r.fields if p in w.edges}
                         | {NEAR_THE_ENDS for q in qids if _window_near_the_ends(self.rule(q))})
        r.reasons.extend(partial)
        return _Question(cons, r.fields, r.preds, r.cats, r.zones, r.reasons, strings, partial)

    def _read_constraints(self, r: _Reads) -> list[z3.BoolRef]:
        """Well-formedness of the fields read, the text predicates' facts, the implications
        between predicates and between category patterns."""
        w = self.world
        cons: list[z3.BoolRef] = list(w.base())
        for path in sorted(r.fields):
            cons.extend(w.field_constraints(w.fields[path]))
        for path, ps_ in sorted(r.preds.items()):
            fld = w.fields[path]
            for p in sorted(ps_):
                cons.extend(w.pred_constraints(fld, p))
            cons.extend(w.implications(fld, ps_))
        cons.extend(w.cat_implications(r.cats))
        return cons

    def _time_constraints(self, qids: set[str], r: _Reads, aware_at: bool) -> list[z3.BoolRef]:
        """Naive readings only matter across timezones: ``at`` and the date fields are
        aware instants where one timezone (or none) reads them, but for a field compared
        with a string that is a naive date (``listed == '2021-10-15'``): that string is
        the naive reading itself (``Field.naive_literal``)."""
        w = self.world
        cons: list[z3.BoolRef] = []
        rule_zones = {self.rule(q).timezone for q in qids
                      if self.rule(q).start is not None or self.rule(q).end is not None}
        if aware_at or len(rule_zones) <= 1:
            cons.append(z3.Not(w.at_naive))
        for path in sorted(r.fields):
            if len(r.zones.get(path, ())) <= 1 and not w.fields[path].naive_literal():
                cons.append(z3.Not(w.fields[path].dnaive))
        return cons

    def _solve(self, f: FM.F, *, aware_at: bool, clean: bool) -> Answer:
        q = self._question(f, aware_at)
        strings = q.strings
        solver = _new_solver(strings is not None)
        solver.add(*q.constraints)
        solver.add(self.to_z3(f))
        self.stats.solver_calls += 1
        result = self._check(solver, watch=strings is not None)
        if result == z3.unsat and q.partial:  # the values the solver leaves out may answer it
            self.stats.undecided += 1
            return Answer("undecided", reason="; ".join(q.partial))
        if result == z3.unsat:
            self.stats.unsat += 1
            return Answer("unsat")
        if result == z3.unknown:
            return self._gave_up(solver)
        refined_reasons = list(q.reasons)
        if strings is not None and strings.refinements:
            solver.add(*strings.refinements)
            self.stats.solver_calls += 1
            second = self._check(solver)
            if second == z3.unknown:
                return self._gave_up(solver)
            if second != z3.sat:
                self.stats.undecided += 1
                return Answer("undecided", reason="; ".join(dict.fromkeys(strings.reasons)))
            refined_reasons.extend(strings.reasons)
        return self._realise(f, solver, q, refined_reasons, clean)

    def _realise(self, f: FM.F, solver: z3.Solver, q: _Question, refined_reasons: list[str],
                 clean: bool) -> Answer:
        """The answer to a "sat": the solver's model as a listing, replayed through the
        evaluator (undecided when it does not hold and the encoding was approximate)."""
        model = self._polish_numbers(solver, solver.model(), q.fields, q.strings is not None)
        realiser = Realiser(self, model, q.fields, q.preds, q.cats, q.strings, {p for p in q.zones if q.zones[p]})
        try:
            witness = realiser.witness()
        except Unrealisable as e:
            if refined_reasons or e.expected:
                self.stats.undecided += 1
                return Answer("undecided", reason="; ".join(dict.fromkeys(refined_reasons + [str(e)])))
            raise AnalysisError(f"cannot build a listing from the solver's model: {e}") from None
        if not self.confirms(f, witness):
            if refined_reasons:
                self.stats.undecided += 1
                return Answer("undecided", reason="; ".join(dict.fromkeys(refined_reasons)))
            raise AnalysisError(
                f"the solver's model does not hold when replayed through the evaluator: {witness.to_dict()!r}")
        self.stats.sat += 1
        if clean:
            witness = clean_witness(self, f, witness)
        return Answer("sat", witness)

    def _polish_numbers(self, solver: z3.Solver, model: z3.ModelRef, fields: set[tuple[str, ...]],
                        strings: bool) -> z3.ModelRef:
        """Numbers a listing can hold: where the model chose a fraction, look for a whole
        number, else a short decimal, that keeps the constraints satisfied (a JSON number
        is an int or a float, and a fraction such as 1/3 is neither)."""
        polish: z3.Solver | None = None
        for path in sorted(fields):
            fld = self.world.fields[path]
            if model.eval(fld.kind, model_completion=True).as_long() != NUM:
                continue
            v = model.eval(fld.num, model_completion=True)
            q = Fraction(v.numerator_as_long(), v.denominator_as_long())
            if q.denominator == 1:
                continue
            candidates = [Fraction(math.floor(q)), Fraction(math.ceil(q))]
            candidates += [Fraction(round(float(q), d)) for d in range(1, 18)]
            candidates.append(Fraction(float(q)))
            # a fresh solver and assumptions: push/pop after a check can make z3 rebuild
            # its string state from scratch, without a timeout
            if polish is None:
                polish = _new_solver(strings)
                polish.add(*solver.assertions())
            for i, cand in enumerate(dict.fromkeys(candidates)):
                eq = fld.num == z3.RealVal(f"{cand.numerator}/{cand.denominator}")
                flag = z3.Bool(f"polish[{fld.name}][{i}]")
                polish.add(z3.Implies(flag, eq))
                self.stats.solver_calls += 1
                if self._check(polish, flag, watch=strings) == z3.sat:
                    model = polish.model()
                    polish.add(eq)
                    break
        return model

    def _check(self, solver: z3.Solver, *assumptions: z3.BoolRef, watch: bool = True) -> z3.CheckSatResult:
        """``solver.check()``, under a watchdog when ``watch`` (questions with strings): z3
        honours its ``timeout`` in most places, but its string solver can run long between
        checks of the clock, so a timer interrupts the context a little after the timeout
        (the answer is then "unknown", which the caller reports as undecided). Without
        strings the timer (a thread per call) would cost more than most checks. The
        timeout is the per-question one, or the time left in the budget if that is less
        (none left: "unknown" without asking)."""
        timeout_ms = self.timeout_ms
        grace = timeout_ms / 1000 * 0.5 + 1
        if self.budget is not None:
            timeout_ms = min(timeout_ms, int(self.budget.remaining() * 1000))
            if timeout_ms <= 0:
                return z3.unknown
            if timeout_ms < self.timeout_ms:
                grace = 0.1  # the budget's end is firm
        solver.set("timeout", timeout_ms)
        if not watch:
            return solver.check(*assumptions)
        timer = threading.Timer(timeout_ms / 1000 + grace, solver.ctx.interrupt)
        timer.daemon = True
        timer.start()
        try:
            return solver.check(*assumptions)
        finally:
            timer.cancel()

    def unsat_core(self, parts: list[FM.F]) -> list[int] | None:
        """A minimal set of ``parts`` that cannot all hold (their indices, ascending), or
        None when they can, or the solver cannot tell. Each part is tracked by an
        assumption literal on one solver; starting from all of them, each part is dropped,
        from the last to the first, when the others still cannot hold. So every part
        reported is needed, an earlier clash is preferred to a later one, and the answer
        depends only on what the parts mean and their order, not on which core z3 finds
        (which can change with an unrelated edit elsewhere in the set). Counts as one
        question of the budget."""
        budget = self.budget
        if budget is not None:
            if budget.spent():
                budget.left += 1
                return None
            budget.asked += 1
        start = time.perf_counter()
        try:
            q = self._question(FM.all_of(*parts), False)
            solver = _new_solver(q.strings is not None)
            solver.add(*q.constraints)
            tracks = [z3.Bool(f"core[{i}]") for i in range(len(parts))]
            for track, part in zip(tracks, parts, strict=True):
                solver.add(z3.Implies(track, self.to_z3(part)))

            def unsat(members: list[int]) -> bool | None:
                self.stats.solver_calls += 1
                result = self._check(solver, *[tracks[i] for i in members], watch=q.strings is not None)
                return None if result == z3.unknown else result == z3.unsat

            if not unsat(list(range(len(parts)))):
                return None
            core = list(range(len(parts)))
            for i in reversed(range(len(parts))):
                trial = [j for j in core if j != i]
                found = unsat(trial) if trial else False
                if found is None:
                    return None
                if found:
                    core = trial
            if budget is not None:
                budget.answered += 1
            return core
        finally:
            self.stats.solver_seconds += time.perf_counter() - start

    def confirms(self, f: FM.F, witness: Witness) -> bool:
        try:
            V.validate_schema(witness.listing, self.ps.schema)
            return FM.evaluate(f, self.ps, witness.listing, witness.at, witness.prior_violations, self.concrete)
        except InputError:
            return False


@attrs.frozen
class _Question:
    """What ``Engine._question`` assembles for one question."""

    constraints: list[z3.BoolRef] = attrs.field(eq=False)
    fields: set[tuple[str, ...]]
    preds: dict[tuple[str, ...], set[Pred]]
    cats: set[tuple[str, ...]]
    zones: dict[tuple[str, ...], set[str]]
    reasons: list[str]
    strings: StringMode | None = attrs.field(eq=False)
    partial: list[str] = attrs.Factory(list)
    """Why the solver's values leave out some that may answer the question (its "unsat"
    is then undecided): a date near the ends of the calendar, say."""


@attrs.frozen
class _Reads:
    """What a question's atoms read: the fields (with every prefix), the text predicates
    of each field, the category patterns, the timezones in which each field's date literals
    are read, and why parts of them are not translated."""

    fields: set[tuple[str, ...]]
    preds: dict[tuple[str, ...], set[Pred]]
    cats: set[tuple[str, ...]]
    zones: dict[tuple[str, ...], set[str]]
    reasons: list[str]


def _window_near_the_ends(rule: RuleInfo) -> bool:
    return any(when is not None and edge_reason(when, ()) is not None for when in (rule.start, rule.end))


def _reads(atoms: set[AtomInfo], required: list[Field]) -> _Reads:
    """Gather what ``atoms`` read, the ``required`` fields too."""
    fields: set[tuple[str, ...]] = set()
    preds: dict[tuple[str, ...], set[Pred]] = defaultdict(set)
    cats: set[tuple[str, ...]] = set()
    zones: dict[tuple[str, ...], set[str]] = defaultdict(set)
    reasons: list[str] = []
    for a in sorted(atoms, key=_atom_order):
        fields |= a.fields
        for path, p in a.preds:
            preds[path].add(p)
        cats |= a.cats
        for path, z in a.date_zones:
            zones[path].add(z)
        reasons.extend(a.unsupported)
    for fld in required:
        fields.add(fld.path)
    closure = set()
    for path in sorted(fields):
        for i in range(1, len(path) + 1):
            closure.add(path[:i])
    return _Reads(closure, preds, cats, zones, reasons)


def _new_solver(strings: bool) -> z3.Solver:
    """A solver for one question. Without strings, z3's SMT core itself (``SimpleSolver``):
    the questions are small, and the preprocessing tactics that ``z3.Solver()`` runs first
    cost several times more than solving them (both decide these questions exactly). With
    strings, ``z3.Solver()``, whose string solving the limits in docs/analysis.md describe."""
    return z3.Solver() if strings else z3.SimpleSolver()


def _atom_order(a: AtomInfo) -> int:
    """A stable order of atoms (z3's search, and so its models and its running time,
    depend on the order constraints are added; Python's set order varies between runs)."""
    return a.seq
