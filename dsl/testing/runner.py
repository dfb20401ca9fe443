"""Running test files: examples through `decide`, assertions through the analysis.

An example passes when the decision has the expected effect, every rule named in `by`
among its `rules`, and the penalty stated. An assertion passes when the analysis proves
it; a failure carries a counterexample that has been replayed through `decide` and
shrunk; an assertion the analysis cannot decide is `undecided`, which fails the run.
Every proved assertion is also attacked with generated listings (``dsl.testing.attack``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal
from zoneinfo import ZoneInfo

import attrs

from ..checking.loader import Loaded
from ..evaluate.outcome import format_instant
from ..model import PolicySet, to_jsonable
from ..syntax import ast as A
from ..syntax.format import format_expr
from .checks import Names
from .claims import Claim, input_errors
from .scope import file_scope, restrict
from .shrink import Counterexample, shrink
from .vocab import Vocabulary

__all__ = ["Result", "Report", "InternalError", "Prover", "Outcome", "Kind", "run_tests"]

DEFAULT_TIMEOUT_MS = 20_000
ATTACK_EXAMPLES = 200
"""Candidate counterexamples the attack tries on each assertion (``policy test --attack N``)."""

Outcome = Literal["pass", "fail", "undecided"]
"""How a test or assertion came out; undecided (an assertion the analysis cannot decide) fails the run."""

Kind = Literal["test", "assert"]
"""What was run: an example (``test``) or an assertion (``assert``)."""

Prover = Callable[..., Any]
"""What decides an assertion: ``dsl.analysis.prove_assertion``'s signature (the policy
set, then ``quantifier``, ``effect``, ``expr``, ``tz``, ``start``, ``end``, ``timeout_ms``
by keyword), returning an object with ``outcome`` ("pass", "fail" or "undecided"),
``counterexample`` and ``reason``."""


class InternalError(RuntimeError):
    """The analysis and the evaluators disagree: a bug in the tool, not in the policies."""


@attrs.frozen
class Result:
    """The outcome of one test or assertion. ``outcome`` is pass, fail or undecided.

    A failed test has ``expected`` (effect, by, penalty as written) and ``actual`` (the
    decision's dictionary) and ``problems`` (what differs); a failed assertion has its
    shrunk ``counterexample`` and the ``decision`` for it; an undecided one its
    ``reason``."""

    name: str
    kind: Kind
    outcome: Outcome
    file: str
    line: int
    column: int = 1
    problems: tuple[str, ...] = ()
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None
    explanation: str | None = None
    counterexample: dict[str, Any] | None = None
    reason: str | None = None
    applied: tuple[str, ...] = ()
    claim: str | None = None
    timezone: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


@attrs.frozen
class Coverage:
    covered: tuple[str, ...]
    uncovered: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.covered) + len(self.uncovered)

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * len(self.covered) / self.total


@attrs.frozen
class Report:
    results: tuple[Result, ...]
    coverage: Coverage

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def run_tests(model: PolicySet, loaded: Loaded, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
              attack_examples: int = ATTACK_EXAMPLES, kinds: tuple[Kind, ...] = ("test", "assert"),
              run: str | None = None, prover: Prover | None = None) -> Report:
    """Run every test and assertion of ``loaded.test_files`` against ``model`` (checked
    first with ``check_test_files``: references must resolve), each file against the
    policies its `tests for` names, or the whole set. ``kinds`` limits the run to
    examples ("test") or assertions ("assert"); ``run`` to those whose name contains it;
    ``attack_examples`` is the number of generated listings each proved assertion is
    attacked with (0: no attack). Each result carries its time in ``seconds``. ``prover``
    decides the assertions (default: ``dsl.analysis.prove_assertion``)."""
    decide_assertion = prover if prover is not None else _default_prover()
    known = tuple(p.name for p in model.policies)
    runners: dict[frozenset[str] | None, _Runner] = {}
    results: list[Result] = []
    for f in sorted(loaded.test_files, key=lambda f: f.path):
        scope = file_scope(f, known)
        for s in f.statements:
            if not isinstance(s, (A.TestCase, A.Assertion)) or (run is not None and run not in s.name.value):
                continue
            if ("test" if isinstance(s, A.TestCase) else "assert") not in kinds:
                continue
            if scope not in runners:
                runners[scope] = _Runner.of(model, loaded, scope, timeout_ms, attack_examples, decide_assertion)
            runner = runners[scope]
            started = time.perf_counter()
            result = runner.example(s, f.path) if isinstance(s, A.TestCase) else runner.assertion(s, f.path)
            results.append(attrs.evolve(result, seconds=time.perf_counter() - started))
    applied = {q for r in results for q in r.applied}
    every = [r.qid for r in model.rules]
    coverage = Coverage(tuple(q for q in every if q in applied), tuple(q for q in every if q not in applied))
    return Report(tuple(results), coverage)


def _default_prover() -> Prover:
    # imported here, not at the top: the analysis brings z3, which only assertions need
    from ..analysis import prove_assertion

    return prove_assertion


def expected_dict(e: A.Expect, names: Names) -> dict[str, Any]:
    out: dict[str, Any] = {"effect": e.effect}
    if e.by:
        out["by"] = [_qualify(r.name, names) for r in e.by]
    if e.penalty is not None:
        if e.penalty.none:
            out["penalty"] = None
        else:
            out["penalty"] = {"ladder": e.penalty.ladder.name if e.penalty.ladder else None, "step": e.penalty.step}
    return out


def _qualify(name: str, names: Names) -> str:
    found = names.resolve(name)
    return found[0] if len(found) == 1 else name


def _span_of(node: Any, path: str) -> tuple[int, int]:
    s = getattr(node, "span", None)
    return (s.line, s.column) if s else (1, 1)


class _Runner:
    @classmethod
    def of(cls, model: PolicySet, loaded: Loaded, scope: frozenset[str] | None, timeout_ms: int,
           attack_examples: int, prover: Prover) -> _Runner:
        """A runner against the policies of ``scope`` (None: the whole set)."""
        from ..evaluate.policies import (
            Policies,  # here, not at the top: `policy check` reads test files without the evaluators
        )

        ps = restrict(model, scope)
        return cls(ps, Policies(ps), Names.of(model, loaded, scope), timeout_ms, attack_examples, prover)

    def __init__(self, ps: PolicySet, policies: Any, names: Names, timeout_ms: int, attack_examples: int,
                 prover: Prover):
        self.ps = ps
        self.policies = policies
        self.names = names
        self.timeout_ms = timeout_ms
        self.attack_examples = attack_examples
        self.prover = prover
        shared = names.shared_timezone or "UTC"
        self.tz = ZoneInfo(shared)
        self.attacked: dict[tuple[Any, ...], Counterexample | None] = {}
        """What the attack found for each distinct claim (nodes compare without their spans)."""

    # -- examples --------------------------------------------------------------
    def example(self, t: A.TestCase, path: str) -> Result:
        line, column = _span_of(t, path)
        listing = to_jsonable(t.given)
        at = to_jsonable(t.at)  # ISO text, read by `decide` as it reads any `at`
        prior = t.prior or 0
        expected = expected_dict(t.expect, self.names)
        base = Result(name=t.name.value, kind="test", outcome="pass", file=path, line=line, column=column,
                      expected=expected)
        try:
            decision = self.policies.decide(listing, at=at, prior_violations=prior)
        except input_errors() as e:
            return attrs.evolve(base, outcome="fail", problems=(f"decide refused the listing: {e}",))
        actual = decision.to_dict()
        applied = tuple(actual.get("rules", ())) + tuple(actual.get("overridden", ()))
        problems = tuple(_compare(expected, actual))
        explanation = _explain(self.policies, decision, listing, prior) if problems else None
        return attrs.evolve(base, outcome="fail" if problems else "pass", problems=problems, actual=actual,
                            explanation=explanation, applied=applied)

    # -- assertions -------------------------------------------------------------
    def assertion(self, a: A.Assertion, path: str) -> Result:
        line, column = _span_of(a, path)
        claim = Claim.of(self.ps, self.policies, a, self.tz)
        base = Result(name=a.name.value, kind="assert", outcome="pass", file=path, line=line, column=column,
                      claim=_claim_text(a), timezone=str(self.tz.key))
        result = self.prover(self.ps, quantifier=a.quantifier, effect=a.effect, expr=claim.expr, tz=self.tz,
                                 start=claim.start, end=claim.end, timeout_ms=self.timeout_ms)
        outcome = getattr(result, "outcome", None)
        vocab = Vocabulary.of(self.ps, [claim.expr], [claim.start, claim.end])
        if outcome == "pass":
            found = self.attack(claim, vocab)
            if found is not None:
                raise InternalError(
                    f"{path}:{line}: the analysis proved '{a.name.value}', but this counterexample breaks it: "
                    f"{_cx_text(found)}")
            return base
        if outcome == "fail":
            raw = getattr(result, "counterexample", None)
            if raw is None:
                raise InternalError(f"{path}:{line}: the analysis refuted '{a.name.value}' without a counterexample")
            cx = claim.counterexample(raw)
            if not claim.broken_by(cx):
                raise InternalError(
                    f"{path}:{line}: the analysis's counterexample to '{a.name.value}' does not break it "
                    f"when replayed through decide: {_cx_text(cx)}")
            return self.refuted(base, a, claim, vocab, cx)
        reason = getattr(result, "reason", None) or "the analysis could not decide this assertion"
        # A concrete counterexample decides the question after all: look for one.
        found = self.attack(claim, vocab)
        if found is not None:
            note = f"the analysis could not decide this assertion ({reason}); a generated listing refutes it"
            return self.refuted(base, a, claim, vocab, found, note)
        return attrs.evolve(base, outcome="undecided", reason=str(reason))

    def attack(self, claim: Claim, vocab: Vocabulary) -> Counterexample | None:
        """A generated counterexample to ``claim``, or None; a claim stated again in the
        same scope is attacked once."""
        if self.attack_examples <= 0:
            return None
        key = (claim.quantifier, claim.effect, claim.expr, claim.start, claim.end)
        if key not in self.attacked:
            self.attacked[key] = attack(claim, vocab, self.attack_examples)
        return self.attacked[key]

    def refuted(self, base: Result, a: A.Assertion, claim: Claim, vocab: Vocabulary, cx: Counterexample,
                note: str | None = None) -> Result:
        """A failed assertion: ``cx`` (which breaks the claim) shrunk, and its decision."""
        anchor = claim.start or (vocab.instants[0] if vocab.instants else None)
        small = shrink(cx, claim.broken_by, phrases=vocab.strings(), tz=self.tz, anchor=anchor)
        if not claim.broken_by(small):
            raise InternalError(
                f"{base.file}:{base.line}: the counterexample to '{a.name.value}' was shrunk to one that does not "
                f"break it: {_cx_text(small)} (from {_cx_text(cx)})")
        decision = claim.decide(small)
        problems = (_broken_text(a, decision.to_dict()),) + ((note,) if note else ())
        return attrs.evolve(base, outcome="fail", counterexample=small.to_dict(), actual=decision.to_dict(),
                            explanation=_explain(self.policies, decision, small.listing, small.prior_violations),
                            problems=problems)


def attack(claim: Claim, vocab: Vocabulary, examples: int) -> Counterexample | None:
    from .attack import attack as run_attack  # here, not at the top: only assertions need it

    return run_attack(claim, vocab, examples=examples)


def _compare(expected: dict[str, Any], actual: dict[str, Any]) -> Iterable[str]:
    if actual.get("effect") != expected["effect"]:
        yield f"effect is {actual.get('effect')}, not {expected['effect']}"
    rules = set(actual.get("rules", ()))
    for q in expected.get("by", ()):
        if q not in rules:
            where = " (it was overridden)" if q in actual.get("overridden", ()) else ""
            yield f"{q} is not among the rules that decided{where}"
    if "penalty" in expected:
        want, got = expected["penalty"], actual.get("penalty")
        if want is None and got is not None:
            yield f"a penalty was proposed: {_penalty_text(got)}"
        elif want is not None and got is None:
            yield "no penalty was proposed"
        elif want is not None and got is not None:
            if want["ladder"] != got.get("ladder") or want["step"] != got.get("step"):
                yield f"the penalty is {_penalty_text(got)}, not {_penalty_text(want)}"


def _penalty_text(p: dict[str, Any] | None) -> str:
    if p is None:
        return "none"
    ladder = p.get("ladder")
    head = f"{ladder} step {p.get('step')}" if ladder else f"inline step {p.get('step')}"
    actions = p.get("actions")
    return head + (f" ({', '.join(actions)})" if actions else "")


def _explain(policies: Any, decision: Any, listing: Any, prior: Any) -> str | None:
    explain = getattr(policies, "explain_decision", None)
    if explain is None:
        return None
    try:
        text = explain(decision, listing, prior)
    except Exception as e:  # noqa: BLE001 - an explanation must not hide the failure itself
        return f"(no explanation: {e})"
    return text if isinstance(text, str) else str(text)


def _claim_text(a: A.Assertion) -> str:
    try:
        expr = format_expr(a.expr)
    except Exception:  # noqa: BLE001 - the formatter is only for display
        expr = "…"
    window = ""
    if a.from_ is not None:
        window += f"from {_when(a.from_)} "
    if a.until is not None:
        window += f"until {_when(a.until)} "
    return f"{window}{a.quantifier} {a.effect} {expr}"


def _when(w: A.When) -> str:
    return w.value.isoformat()


def _broken_text(a: A.Assertion, actual: dict[str, Any]) -> str:
    if a.quantifier == "always":
        return f"the listing satisfies the condition, and the effect is {actual.get('effect')}, not {a.effect}"
    return f"the listing satisfies the condition, and the effect is {a.effect}"


def _cx_text(cx: Counterexample) -> str:
    return json.dumps(cx.to_dict(), ensure_ascii=False, sort_keys=True)


def format_at(at: dt.datetime) -> str:
    return format_instant(at)
