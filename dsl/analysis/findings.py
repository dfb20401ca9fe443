"""The consistency findings P300–P304 (and P399), spec section 6.

Definitions, each decided exactly (or reported as P399):

* P300 (at the rule): no listing, ``at`` and ``prior_violations`` make the rule apply
  without an applying allow overriding it. The message says why: an empty window, a
  contradictory condition, the policy's scope, or the allows that always override it. A
  rule with P300 gets no other finding.
* P302 (at the name inside ``overrides``): the allow and the rule it names never apply
  together.
* P303 (at the allow, with a witness): somewhere the allow applies and lifts a rule it
  names, yet the decision still blocks or flags (another rule, which it does not lift,
  still applies and is not lifted by any allow).
* P301 (at the rule): a block or flag rule R is redundant when, wherever R applies and is
  not overridden, the other rules (without R) still give an effect at least as strong, and,
  when R has a penalty, a penalty at least as severe as the step R proposes, for every
  ``prior_violations``. Rules are examined from the last (by file, line, column) to the
  first, each against the rules not already found redundant, so that of two identical
  rules only the later is reported and every reported rule can be deleted together
  without changing any decision's effect or penalty severity.
* P304 (at the later rule, the other as related location, with a witness): two block rules
  with different ladders (an inline ``penalty STEP`` is a ladder of its own) both apply,
  neither overridden, to one listing. One finding per pair of ladders, at the first place
  where they meet: of the pairs of their rules that apply together, the one whose later
  rule comes first by position (then the earlier rule).

Every witness is replayed through ``dsl.evaluate.reference.decide_reference`` on the whole set before
it is reported; a witness that fails is a bug (``AnalysisError``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from ..diagnostics import Diagnostic, Related, make
from ..evaluate.outcome import Decision
from ..evaluate.reference import decide_reference
from ..evaluate.semantics import EFFECT_RANK, Consequence, consequence, overriders_of
from ..model import PolicySet, RuleInfo
from ..syntax import ast as A
from ..syntax.format import format_expr
from . import formula as FM
from .answers import Answer, Witness
from .concrete import Reader
from .guess import guess
from .index import Index
from .selectors import SelectorIndex
from .solver import AnalysisError, AnalysisStats, Budget, Engine
from .witness import clean_witness

Others = Callable[[str], bool]
"""The rules a question is about, as a membership test (P301: the rules that may cover one)."""


def _pos(rule: RuleInfo) -> tuple[str, int, int]:
    a = rule.anchor
    return (a.file, a.line, a.column) if a is not None else ("", 0, 0)


def _ladder_id(rule: RuleInfo) -> Any:
    assert rule.penalty is not None
    return rule.penalty.name if rule.penalty.name is not None else ("inline", rule.qid)


def _ladder_words(rule: RuleInfo) -> str:
    assert rule.penalty is not None
    if rule.penalty.name is not None:
        return f"ladder '{rule.penalty.name}'"
    return f"its own penalty ({' and '.join(rule.penalty.steps[0].actions)})"


class Analysis:
    """One run of the checks on a policy set. ``indexed`` (the default) prunes with the
    signature index (``index.Index``: pairs that cannot apply together), reads concrete
    listings through the selector index (``selectors.SelectorIndex``: rules that may apply
    on a listing) and tries a guessed sample (``guess.guess``) before asking the solver
    for one; without it every pair is asked about and every rule is read on every listing
    (the oracle of ``tests/test_analysis_index.py``). Both give the same findings."""

    def __init__(self, ps: PolicySet, timeout_ms: int, stats: AnalysisStats, budget: Budget | None = None,
                 indexed: bool = True):
        self.ps = ps
        self.stats = stats
        self.budget = budget
        self.engine = Engine(ps, timeout_ms=timeout_ms, stats=stats, budget=budget)
        self.indexed = indexed
        self.index = Index(list(ps.rules)) if indexed else None
        self.selectors = SelectorIndex(ps.rules) if indexed else None
        self.rules = sorted(ps.rules, key=_pos)
        self._rank = {r.qid: i for i, r in enumerate(self.rules)}  # position order
        self._on: dict[int, tuple[Witness, set[str]]] = {}  # witness -> the selector index's candidates
        self._live: tuple[int, list[RuleInfo]] | None = None
        self.never: set[str] = set()  # P300: never applies without being overridden
        self.unmatched: set[str] = set()  # never applies at all (a subset of `never`)
        self.samples: dict[str, Witness] = {}
        self.diags: list[Diagnostic] = []
        self._undecided: set[Any] = set()
        self._cut: dict[Any, tuple[Any, str, str]] = {}  # P399s of the budget, made at the end
        self._readers: dict[int, tuple[Witness, Reader]] = {}
        self._values: dict[str, list[Any]] | None = None
        self._consequences = {r.qid: consequence(r) for r in ps.rules}

    # ------------------------------------------------------------------ helpers

    def undecided(self, span: Any, what: str, answer: Answer) -> None:
        key = (span, answer.reason)
        if key in self._undecided:
            return  # one finding per place and reason: the other questions there fail alike
        self._undecided.add(key)
        if answer.cut:
            self._cut[key] = (span, what, answer.reason or "")
            return
        self.diags.append(make("P399", f"could not decide {what}: {answer.reason}", span))

    def out_of_time(self, span: Any, what: str) -> bool:
        """Whether the budget is used up; if so the question about ``what`` is left (P399)
        without the concrete work that would come before it."""
        if self.budget is None or not self.budget.spent():
            return False
        self.budget.left += 1
        self.undecided(span, what, Answer("undecided", reason=self.budget.before(), cut=True))
        return True

    def budget_findings(self) -> list[Diagnostic]:
        """The P399s of the questions the budget left, each with the budget's figures as
        ``data``; the first (by position) also says them in a note."""
        if self.budget is None or not self._cut:
            return []
        figures = self.budget.to_dict()
        note = (f"the analysis asked {figures['questions_asked']} questions in {figures['seconds_used']:.2f} s "
                f"({figures['questions_answered']} answered); {figures['questions_left']} were left; "
                "raise --analysis-budget to answer them")
        places = sorted(self._cut.values(), key=lambda c: _span_key(c[0]))
        return [make("P399", f"could not decide {what}: {reason}", span, notes=(note,) if i == 0 else (),
                     data={"analysis_budget": figures})
                for i, (span, what, reason) in enumerate(places)]

    def replay(self, w: Witness, about: Iterable[str]) -> Decision:
        """The reference evaluator's decision on the witness, over the rules the claim is
        about and every allow that overrides one of them: no other rule can change whether
        these apply or are overridden, so the claim holds on the whole set exactly when it
        holds here (the tests replay on whole sets too)."""
        self.stats.replays += 1
        keep = self.engine.with_overriders(about)
        if len(keep) == len(self.ps.rules):
            sub = self.ps
        else:
            rules = tuple(r for r in self.ps.rules if r.qid in keep)
            # without files and policies: the sub-set's policy_hash (which formats every
            # file) is then cheap, and nothing a claim looks at depends on them
            sub = attrs.evolve(self.ps, rules=rules, by_qid={r.qid: r for r in rules}, files=(), policies=())
        return decide_reference(sub, w.listing, w.at, w.prior_violations)

    def live(self) -> list[RuleInfo]:
        """The rules without P300, in position order (kept until ``never`` grows)."""
        if self._live is None or self._live[0] != len(self.never):
            self._live = (len(self.never), [r for r in self.rules if r.qid not in self.never])
        return self._live[1]

    def compatible(self, a: str, b: str) -> bool:
        """False only when the two rules certainly never apply together (the index)."""
        return self.index is None or self.index.compatible(a, b)

    # ------------------------------------------------------------------ P300

    def p300(self) -> None:
        eng = self.engine
        for rule in self.rules:
            if rule.start is not None and rule.end is not None and rule.start >= rule.end:
                self.never.add(rule.qid)
                self.unmatched.add(rule.qid)
                self.diags.append(make(
                    "P300", f"rule '{rule.qid}' can never apply: its window is empty "
                    f"(from {_when_text(rule, 'from', rule.start)} until {_when_text(rule, 'until', rule.end)})",
                    rule.anchor,
                    hint="the window is `from <= at < until`; swap or correct the dates"))
                continue
            if self.out_of_time(rule.anchor, f"whether rule '{rule.qid}' can apply"):
                continue
            guessed = self._guessed(rule)
            if guessed is not None:
                self.samples[rule.qid] = guessed
                continue
            answer = eng.solve(eng.remaining(rule.qid), clean=False)
            if answer.status == "sat":
                assert answer.witness is not None
                self.samples[rule.qid] = answer.witness
                continue
            if answer.status == "undecided":
                self.undecided(rule.anchor, f"whether rule '{rule.qid}' can apply", answer)
                continue
            self.never.add(rule.qid)
            message, overridden = self._why_never(rule)
            if not overridden:
                self.unmatched.add(rule.qid)
            self.diags.append(make("P300", message, rule.anchor))

    def _guessed(self, rule: RuleInfo) -> Witness | None:
        """The rule's guessed sample (``guess.guess``) when the evaluator confirms that the
        rule applies there without an allow lifting it (indexed runs only)."""
        if not self.indexed:
            return None
        w = guess(rule)
        if w is None or not self.engine.confirms(self.engine.remaining(rule.qid), w):
            return None
        self.stats.concrete_hits += 1
        return w

    def _why_never(self, rule: RuleInfo) -> tuple[str, bool]:
        """The message, and whether the rule applies somewhere (always overridden)."""
        eng = self.engine
        head = f"rule '{rule.qid}' can never apply"
        overriders = eng.overriders.get(rule.qid, [])
        if overriders:
            alone = eng.solve(FM.Applies(rule.qid), clean=False)
            if alone.status == "sat":
                names = ", ".join(f"'{q}'" for q in overriders)
                return f"{head}: wherever it applies, {names} overrides it", True
            if alone.status == "undecided":
                return f"{head}: no listing makes it apply without an allow ({', '.join(overriders)}) lifting it", True
        parts = self._condition_parts(rule)
        body = [i for i, p in enumerate(parts) if p.origin != "scope"]
        core = eng.unsat_core([parts[i].formula for i in body])
        if core is not None:
            return f"{head}: its condition is contradictory: {_clash([parts[body[i]] for i in core])}", False
        if rule.scope is not None:
            core = eng.unsat_core([p.formula for p in parts])
            if core is not None:
                scope = [parts[i] for i in core if parts[i].origin == "scope"]
                own = [parts[i] for i in core if parts[i].origin != "scope"]
                if not own:
                    return f"{head}: its policy's scope is contradictory: {_clash(scope)}", False
                return (f"{head}: its policy's scope excludes every listing it selects: "
                        f"{_listed(scope)} (the scope) against {_listed(own)}"), False
            return f"{head}: its condition and its policy's scope are contradictory", False
        return f"{head}: its condition is contradictory", False

    def _condition_parts(self, rule: RuleInfo) -> list[_Part]:
        """The conjuncts of the rule's condition (scope, selector, ``if``, ``unless``), in
        source order, negations pushed through ``and``/``or`` so that each part is as small
        as a conjunction allows. Each is shown as written (set names kept) and encoded as
        resolved."""
        node = self.ps.rule(rule.qid).node
        shown_scope = self._written_scope(rule)
        out: list[_Part] = []
        clauses = [("scope", rule.scope, shown_scope), ("selector", rule.selector, node.selector if node else None),
                   ("if", rule.if_, node.if_ if node else None), ("unless", rule.unless, node.unless if node else None)]
        for origin, resolved, written in clauses:
            if resolved is None:
                continue
            shown_clause = written if written is not None else resolved
            for e, shown, negated in _conjuncts(resolved, shown_clause, origin == "unless"):
                formula = FM.holds_expr(A.Not(e) if negated else e, rule.tz)
                out.append(_Part(_show_part(shown, negated, origin), origin, formula))
        return out

    def _written_scope(self, rule: RuleInfo) -> A.Expr | None:
        file = next((p.file for p in self.ps.policies if p.name == rule.policy), None)
        for f in self.ps.files:
            if f.path == file and f.header is not None:
                for c in f.header.clauses:
                    if c.kind == "scope":
                        assert not isinstance(c.value, A.Str), "the grammar gives `scope` an expression"
                        return c.value
        return None

    # ------------------------------------------------------------------ P302 / P303

    def p302_p303(self) -> None:
        eng = self.engine
        for allow in self.live():
            if allow.effect != "allow":
                continue
            node_refs = allow.node.overrides if allow.node is not None else ()
            lifted = []
            for i, target in enumerate(allow.overrides):
                if target in self.unmatched:
                    continue
                span = node_refs[i].span if i < len(node_refs) and node_refs[i].span else allow.anchor
                compatible = self.compatible(allow.qid, target)
                self.stats.count_pairs("P302", 1, 0 if compatible else 1)
                what = f"whether '{allow.qid}' and '{target}' can apply together"
                if not compatible:
                    answer = Answer("unsat")
                elif self.out_of_time(span, what):
                    lifted.append(target)
                    continue
                else:
                    together = FM.all_of(FM.Applies(allow.qid), FM.Applies(target))
                    joined = self._joined_sample(together, [allow.qid, target])
                    answer = Answer("sat", joined) if joined is not None else eng.solve(together, clean=False)
                if answer.status == "unsat":
                    name = target.split('.', 1)[1] if target.startswith(allow.policy + '.') else target
                    self.diags.append(make(
                        "P302", f"`overrides {name}` "
                        f"has no effect: '{allow.qid}' and '{target}' never apply together", span,
                        hint="widen the allow, or remove the name from `overrides`"))
                elif answer.status == "undecided":
                    self.undecided(span, what, answer)
                    lifted.append(target)
                else:
                    lifted.append(target)
            if lifted:
                self._p303(allow, lifted)

    def _p303(self, allow: RuleInfo, lifted: list[str]) -> None:
        """P303, naming the other rule deterministically: the smallest qualified id among
        the rules that still block or flag somewhere the allow lifts a rule it names (and,
        of the rules it names, the smallest that it lifts there), whatever model the solver
        happens to find."""
        eng = self.engine
        others = [r.qid for r in self.live()
                  if r.effect in ("block", "flag") and r.qid not in allow.overrides]
        candidates = others if self.index is None else self.index.neighbours(allow.qid, others)
        self.stats.count_pairs("P303", len(others), len(others) - len(candidates))
        if not candidates:
            return
        what = f"whether '{allow.qid}' is fully effective"
        if self.out_of_time(allow.anchor, what):
            return
        lifts = FM.all_of(FM.Applies(allow.qid), FM.any_of(*[FM.Applies(t) for t in lifted]))
        ordered = sorted(candidates)
        # where the smallest candidate still applies on the joined samples of the allow, the
        # smallest rule it names and that candidate, that is the answer without the solver
        w = self._joined_sample(FM.all_of(lifts, eng.remaining(ordered[0])), [allow.qid, min(lifted), ordered[0]])
        if w is None:
            answer = eng.solve(FM.all_of(lifts, FM.any_of(*[eng.remaining(c) for c in candidates])), clean=False)
            if answer.status == "undecided":
                self.undecided(allow.anchor, what, answer)
                return
            if answer.status == "unsat":
                return
            assert answer.witness is not None
            w = answer.witness
        still, w = self._smallest(ordered, w, lambda c: FM.all_of(lifts, eng.remaining(c)), remaining=True)
        target, w = self._smallest(sorted(lifted), w,
                                   lambda t: FM.all_of(FM.Applies(allow.qid), FM.Applies(t), eng.remaining(still)))
        w = clean_witness(eng, FM.all_of(FM.Applies(allow.qid), FM.Applies(target), eng.remaining(still)), w)
        d = self.replay(w, [allow.qid, target, still])
        if (allow.qid not in d.rules or target not in d.overridden or still not in d.rules
                or still in d.overridden or d.effect not in ("block", "flag")):
            raise AnalysisError(f"P303 witness for '{allow.qid}' does not replay: {w.to_dict()!r} gave {d.to_dict()!r}")
        verb = "blocks" if self.ps.rule(still).effect == "block" else "flags"
        still_anchor = self.ps.rule(still).anchor
        self.diags.append(make(
            "P303", f"'{allow.qid}' is partly ineffective: where it lifts '{target}', "
            f"'{still}' still {verb} the listing", allow.anchor,
            related=(Related(still_anchor, f"'{still}' still applies here"),) if still_anchor is not None else (),
            hint=f"add '{still}' to `overrides` if the exception should lift it too",
            witness=w.to_dict()))

    def _smallest(self, qids: list[str], w: Witness, question: Any, remaining: bool = False) -> tuple[str, Witness]:
        """The first of ``qids`` (sorted) for which ``question(q)`` holds somewhere, and a
        witness: those that hold on ``w`` bound the search, and only the ones before them
        are asked about (a question the solver cannot decide is passed over)."""
        applying = self.applying(w, set(qids).__contains__)
        holding = self._remaining(applying) if remaining else applying
        on_w = [q for q in qids if q in holding]
        assert on_w, "the witness makes some rule of the question hold"
        for q in qids:
            if q >= on_w[0]:
                break
            if self.budget is not None and self.budget.spent():
                break
            answer = self.engine.solve(question(q), clean=False)
            if answer.status == "sat":
                assert answer.witness is not None
                return q, answer.witness
        return on_w[0], w

    # ------------------------------------------------------------------ P301

    def p301(self) -> None:
        removed: set[str] = set()
        live = self.live()
        for rule in sorted(live, key=_pos, reverse=True):
            if rule.effect not in ("block", "flag"):
                continue
            if self.out_of_time(rule.anchor, f"whether rule '{rule.qid}' is redundant"):
                continue
            # ordered: the question is whether the others cover this rule, so a pair of
            # rules is asked about once from each side. Considered: every other rule left;
            # pruned: those that no listing of the question made it read (the selector
            # index) or that the signature index rules out
            pool = len(live) - len(removed) - 1
            read: set[str] = set()
            others = self._others_for(rule.qid, removed, read)
            self._p301_rule(rule, others, removed)
            self.stats.count_pairs("P301", pool, pool - len(read) if self.indexed else 0)

    def _p301_rule(self, rule: RuleInfo, others: Others, removed: set[str]) -> None:
        """Whether ``rule`` is redundant against ``others``; if so, P301 and it joins ``removed``."""
        sample = self.samples.get(rule.qid)
        priors = range(len(rule.penalty.steps)) if rule.penalty is not None else [0]
        if sample is not None and self._uncovered(rule, others, sample, priors):
            self.stats.concrete_hits += 1
            return
        answer = self._redundancy(rule, others, sample)
        if answer.status == "sat":
            return
        if answer.status == "undecided":
            self.undecided(rule.anchor, f"whether rule '{rule.qid}' is redundant", answer)
            return
        removed.add(rule.qid)
        cover = self._coverers(rule, others, sample)
        by = (f" ({', '.join(repr(c) for c in cover)} {'covers' if len(cover) == 1 else 'cover'} it)"
              if cover else "")
        what = "an effect at least as strong"
        if rule.penalty is not None:
            what += " and a penalty at least as severe"
        self.diags.append(make(
            "P301", f"rule '{rule.qid}' is redundant: wherever it applies, the other rules already give "
            f"{what}{by}", rule.anchor,
            hint="remove it, or narrow the rules that cover it"))

    def _others_for(self, qid: str, removed: set[str], read: set[str]) -> Others:
        """The rules that may cover ``qid`` in P301: live, not already found redundant, and
        not certainly apart from it (the index), as a membership test; those it admits are
        added to ``read``."""
        never = self.never
        compatible = self.compatible

        def member(q: str) -> bool:
            if q != qid and q not in removed and q not in never and compatible(qid, q):
                read.add(q)
                return True
            return False
        return member

    def _redundancy(self, rule: RuleInfo, others: Others, sample: Witness | None) -> Answer:
        """Whether some input makes the rule apply uncovered by ``others``, asking the
        solver about a growing subset of the other rules: coverage only grows with more
        rules, so "unsat" for a subset is final, and a model that the whole set covers
        brings the rules that cover it into the next question."""
        subset: list[str] = []
        seen: set[str] = set()

        def grow(w: Witness) -> int:
            added = 0
            for q in self._covering(rule, others, w):
                if q not in seen:
                    seen.add(q)
                    subset.append(q)
                    added += 1
            return added

        if sample is not None:
            grow(sample)
        while True:
            answer = self.engine.solve(self._not_covered(rule, subset), clean=False)
            if answer.status != "sat":
                return answer
            w = answer.witness
            assert w is not None
            if self._uncovered(rule, others, w, [w.prior_violations]):
                return answer
            if not grow(w):
                raise AnalysisError(f"redundancy of '{rule.qid}': a model covered by the whole set brings no new rule")

    def applying(self, w: Witness, member: Others) -> set[str]:
        """The rules for which ``member`` holds (and the allows that override one of them)
        that apply on ``w``; only the selector index's candidates for ``w`` are read."""
        applies = self._reader(w).applies
        rule = self.ps.rule
        return {q for q in self._candidates(w)
                if (member(q) or any(member(t) for t in rule(q).overrides)) and applies(q)}

    def _candidates(self, w: Witness) -> Iterable[str]:
        """The rules that may apply on ``w`` (all of them without the index), kept while
        ``w`` is asked about."""
        if self.selectors is None:
            return self.ps.by_qid.keys()
        found = self._on.get(id(w))
        if found is None or found[0] is not w:
            if len(self._on) > 4096:
                self._on.clear()
            found = self._on[id(w)] = (w, self.selectors.candidates(w.listing))
        return found[1]

    def _reader(self, w: Witness) -> Reader:
        """The concrete reading of ``w``, kept while ``w`` is asked about (a rule's sample
        is read once for its own P301 question, its growing subsets and its message)."""
        found = self._readers.get(id(w))
        if found is None or found[0] is not w:
            if len(self._readers) > 4096:
                self._readers.clear()
            found = self._readers[id(w)] = (w, self.engine.concrete.reader(w.listing, w.at))
        return found[1]

    def _remaining(self, applying: set[str]) -> set[str]:
        """The rules of ``applying`` that no allow of ``applying`` overrides (the override
        rule as ``semantics.combine`` states it)."""
        cons: list[Consequence] = [self._consequences[q] for q in applying]
        return applying - overriders_of(cons).keys()

    def _uncovered(self, rule: RuleInfo, others: Others, w: Witness, priors: Iterable[int]) -> bool:
        """Concretely: the rule remains on ``w`` and the other rules do not cover it, at one
        of ``priors``."""
        remaining = self._remaining(self.applying(w, lambda q: q == rule.qid or others(q)))
        if rule.qid not in remaining:
            return False
        need = EFFECT_RANK[rule.effect]
        live = self._in_order(q for q in remaining if others(q))
        if not any(EFFECT_RANK[self.ps.rule(q).effect] >= need for q in live):
            return True
        if rule.penalty is None:
            return False
        for prior in priors:
            mine = FM.proposal_severity(self.ps, rule.qid, prior)
            if not any(self.ps.rule(q).effect == "block" and self.ps.rule(q).penalty is not None
                       and FM.proposal_severity(self.ps, q, prior) >= mine for q in live):
                return True
        return False

    def _covering(self, rule: RuleInfo, others: Others, w: Witness) -> list[str]:
        """The other rules that remain on ``w`` with an effect at least as strong, in
        position order."""
        need = EFFECT_RANK[rule.effect]
        remaining = self._remaining(self.applying(w, others))
        return self._in_order(q for q in remaining if others(q) and EFFECT_RANK[self.ps.rule(q).effect] >= need)

    def _in_order(self, qids: Iterable[str]) -> list[str]:
        return sorted(qids, key=self._rank.__getitem__)

    def _not_covered(self, rule: RuleInfo, others: list[str]) -> FM.F:
        eng = self.engine
        need = EFFECT_RANK[rule.effect]
        strong = [q for q in others if EFFECT_RANK[self.ps.rule(q).effect] >= need]
        eff_ok = FM.any_of(*[eng.remaining(q) for q in strong])
        covered = eff_ok
        if rule.penalty is not None:
            penal = [q for q in others if self.ps.rule(q).effect == "block" and self.ps.rule(q).penalty is not None]
            pen_ok = FM.any_of(*[FM.all_of(eng.remaining(q), FM.RankGe(q, rule.qid)) for q in penal])
            covered = FM.all_of(eff_ok, pen_ok)
        if covered == FM.FALSE:
            return eng.remaining(rule.qid)
        return FM.all_of(eng.remaining(rule.qid), FM.Not(covered))

    def _coverers(self, rule: RuleInfo, others: Others, sample: Witness | None) -> list[str]:
        """A few rules that cover the redundant rule on its own sample (for the message)."""
        return self._covering(rule, others, sample)[:3] if sample is not None else []

    # ------------------------------------------------------------------ P304

    def p304(self) -> None:
        """One finding per pair of ladders whose rules apply together somewhere (an inline
        penalty is a ladder of its own): at the first place where they meet, the pair of
        rules whose later rule comes first by position (then the earlier one)."""
        by_ladder: dict[Any, list[RuleInfo]] = {}
        for r in self.live():
            if r.effect == "block" and r.penalty is not None:
                by_ladder.setdefault(_ladder_id(r), []).append(r)
        ladders = list(by_ladder.values())  # each in position order; ladders by first rule
        for i, xs in enumerate(ladders):
            for ys in ladders[i + 1:]:
                self._ladders_meet(xs, ys)

    def _ladders_meet(self, xs: list[RuleInfo], ys: list[RuleInfo]) -> None:
        """P304 for two ladders' rules, at the first pair (by ``_rule_pairs``) that applies
        together; the undecided questions on the way are reported only when no pair
        is found."""
        eng = self.engine
        undecided: list[tuple[Any, str, Answer]] = []
        for later, earlier in _rule_pairs(xs, ys):
            compatible = self.compatible(earlier.qid, later.qid)
            self.stats.count_pairs("P304", 1, 0 if compatible else 1)
            if not compatible:
                continue
            what = f"whether '{earlier.qid}' and '{later.qid}' apply together"
            if self.out_of_time(later.anchor, what):
                return
            f = FM.all_of(eng.remaining(earlier.qid), eng.remaining(later.qid))
            w = self._merged_sample(f, earlier, later)
            if w is None:
                answer = eng.solve(f)
                if answer.status == "undecided":
                    undecided.append((later.anchor, what, answer))
                    continue
                if answer.status == "unsat":
                    continue
                w = answer.witness
            assert w is not None
            self._report_p304(later, earlier, w, len(xs) + len(ys))
            return
        for span, what, answer in undecided:
            self.undecided(span, what, answer)

    def _report_p304(self, later: RuleInfo, earlier: RuleInfo, w: Witness, rules: int) -> None:
        d = self.replay(w, [earlier.qid, later.qid])
        if earlier.qid not in d.rules or later.qid not in d.rules:
            raise AnalysisError(f"P304 witness for '{earlier.qid}' and '{later.qid}' does not replay: "
                                f"{w.to_dict()!r} gave {d.to_dict()!r}")
        winner = d.penalty.rule if d.penalty is not None else None
        notes = [f"on the witness, '{winner}' sets the penalty"] if winner else []
        if rules > 2:
            notes.append(f"one finding for the two ladders ({rules} rules): this is where they first meet; "
                         "other rules of theirs may meet elsewhere too")
        self.diags.append(make(
            "P304", f"'{later.qid}' ({_ladder_words(later)}) and '{earlier.qid}' ({_ladder_words(earlier)}) "
            f"apply together; the more severe step wins", later.anchor,
            notes=tuple(notes),
            related=(Related(earlier.anchor, f"'{earlier.qid}' applies here too"),) if earlier.anchor else (),
            witness=w.to_dict()))

    def _merged_sample(self, f: FM.F, a: RuleInfo, b: RuleInfo) -> Witness | None:
        """A witness built from the two rules' own samples, without the solver: the two
        listings joined (where both hold a different plain value, each of the two or a
        value that another rule's sample holds there), at either sample's ``at``; each
        candidate is checked concretely."""
        sa, sb = self.samples.get(a.qid), self.samples.get(b.qid)
        if sa is None or sb is None:
            return None
        for merged in _merges(sa.listing, sb.listing, self._sample_values()):
            for at in dict.fromkeys((sa.at, sb.at)):
                w = Witness(merged, at, 0)
                if self.engine.confirms(f, w):
                    self.stats.concrete_hits += 1
                    return clean_witness(self.engine, f, w)
        return None

    def _joined_sample(self, f: FM.F, qids: list[str]) -> Witness | None:
        """A witness of ``f`` joined from the samples of ``qids`` (indexed runs only), as
        ``_merged_sample`` joins two: the first join of each listing with the next that
        ``_merges`` offers (the first ``MERGE_TRIES`` in all), at each sample's ``at``."""
        samples = [self.samples.get(q) for q in qids]
        if not self.indexed or any(s is None for s in samples):
            return None
        listings = [s.listing for s in samples if s is not None]
        joined = [listings[0]]
        for nxt in listings[1:]:
            joined = list(itertools.islice(
                (m for x in joined for m in _merges(x, nxt, self._sample_values())), MERGE_TRIES))
        for listing in joined:
            for at in dict.fromkeys(s.at for s in samples if s is not None):
                w = Witness(listing, at, 0)
                if self.engine.confirms(f, w):
                    self.stats.concrete_hits += 1
                    return w
        return None

    def _sample_values(self) -> dict[str, list[Any]]:
        """For each top-level key, the plain values the samples hold there (first seen first)."""
        if self._values is None:
            values: dict[str, dict[Any, None]] = {}
            for w in self.samples.values():
                for k, v in w.listing.items():
                    if _plain(v):
                        values.setdefault(k, {})[(type(v), v)] = None
            self._values = {k: [v for _, v in vs] for k, vs in values.items()}
        return self._values


def _rule_pairs(xs: list[RuleInfo], ys: list[RuleInfo]) -> Iterator[tuple[RuleInfo, RuleInfo]]:
    """Each pair of a rule of ``xs`` and one of ``ys`` (both in position order) as
    ``(later, earlier)``, ordered by the later rule's position, then the earlier one's."""
    both = sorted([(_pos(r), 0, i) for i, r in enumerate(xs)] + [(_pos(r), 1, i) for i, r in enumerate(ys)])
    sides = (xs, ys)
    for _, side, i in both:
        later = sides[side][i]
        for earlier in sides[1 - side]:
            if (_pos(earlier), 1 - side) >= (_pos(later), side):
                break
            yield later, earlier


@attrs.frozen
class _Part:
    """A conjunct of a rule's condition: as shown in a message, the clause it comes from
    (scope, selector, if, unless), and the question that it holds."""

    shown: str
    origin: str
    formula: FM.F = attrs.field(eq=False)


def _conjuncts(e: A.Expr, shown: A.Expr, negated: bool) -> Iterator[tuple[A.Expr, A.Expr, bool]]:
    """The conjuncts of ``e`` (negated when ``negated``), with the matching written nodes
    (``shown`` has the shape of ``e``, set names where ``e`` has their lists)."""
    if type(shown) is not type(e):
        shown = e
    if (isinstance(e, A.And) and not negated) or (isinstance(e, A.Or) and negated):
        assert isinstance(shown, (A.And, A.Or))
        # resolve_sets keeps the shape: as many items written as resolved
        for item, written in zip(e.items, shown.items, strict=True):
            yield from _conjuncts(item, written, negated)
    elif isinstance(e, A.Not):
        assert isinstance(shown, A.Not)
        yield from _conjuncts(e.operand, shown.operand, not negated)
    else:
        yield e, shown, negated


def _show_part(shown: A.Expr, negated: bool, origin: str) -> str:
    if origin == "unless":
        return f"unless {format_expr(shown if negated else A.Not(shown))}"
    return format_expr(A.Not(shown) if negated else shown)


def _listed(parts: list[_Part]) -> str:
    names = [f"`{p.shown}`" for p in parts]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _clash(parts: list[_Part]) -> str:
    if len(parts) == 1:
        return f"{_listed(parts)} never holds"
    return f"{_listed(parts)} cannot {'both' if len(parts) == 2 else 'all'} hold"


def _span_key(span: Any) -> tuple[str, int, int]:
    return (span.file, span.line, span.column) if span is not None else ("", 0, 0)


MERGE_TRIES = 32


def _plain(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool))


def _merges(x: dict[str, Any], y: dict[str, Any], pool: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Candidate joins of two listings: ``_merge`` if it succeeds; otherwise, where the two
    hold different plain values at the top level, combinations of the two values and the
    pool's values there (at most ``MERGE_TRIES``)."""
    merged = _merge(x, y)
    if merged is not None:
        yield merged
        return
    conflicts = [k for k in y if k in x and _merge({k: x[k]}, {k: y[k]}) is None]
    if not all(_plain(x[k]) and _plain(y[k]) for k in conflicts):
        return
    base = _merge({k: v for k, v in x.items() if k not in conflicts},
                  {k: v for k, v in y.items() if k not in conflicts})
    if base is None:
        return
    options = []
    for k in conflicts:
        seen: dict[Any, Any] = {}
        for v in (x[k], y[k], *pool.get(k, ())):
            seen.setdefault((type(v), v), v)
        options.append(list(seen.values()))
    for combo in itertools.islice(itertools.product(*options), MERGE_TRIES):
        yield {**base, **dict(zip(conflicts, combo, strict=True))}  # one option list per conflict


def _merge(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any] | None:
    out = dict(x)
    for k, v in y.items():
        if k not in out:
            out[k] = v
            continue
        u = out[k]
        if u == v:
            continue
        if k == "category" and isinstance(u, str) and isinstance(v, str):
            out[k] = f"{u} > {v}"
        elif isinstance(u, dict) and isinstance(v, dict):
            inner = _merge(u, v)
            if inner is None:
                return None
            out[k] = inner
        elif isinstance(u, list) and isinstance(v, list):
            out[k] = u + [i for i in v if i not in u]
        elif k in ("title", "description") and isinstance(u, str) and isinstance(v, str):
            out[k] = f"{u}, {v}"
        else:
            return None
    return out


def _when_text(rule: RuleInfo, bound: str, instant: dt.datetime) -> str:
    """A window bound (``from`` or ``until``) as the author wrote it."""
    node = None if rule.node is None else rule.node.from_ if bound == "from" else rule.node.until
    if node is not None:
        return node.value.isoformat()
    return instant.astimezone(rule.tz).isoformat()


def run(ps: PolicySet, timeout_ms: int, stats: AnalysisStats, budget: Budget | None = None,
        indexed: bool = True) -> list[Diagnostic]:
    """The findings (unsorted). ``indexed=False`` asks about every pair and reads every rule
    on every listing: the oracle that the indexed run must agree with."""
    start = time.perf_counter()
    a = Analysis(ps, timeout_ms, stats, budget, indexed)
    a.p300()
    a.p302_p303()
    a.p301()
    a.p304()
    stats.seconds += time.perf_counter() - start
    return a.diags + a.budget_findings()
