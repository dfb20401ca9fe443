"""Soundness of the analysis on generated policy sets (``tests/strategies.py``): every
witness replays through the reference evaluator on the whole set, and random listings
never contradict a finding (nor find what the analysis missed), and the findings do not
depend on the order of files or rules."""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import exprs, listings, policy_files, policy_texts

from dsl.analysis import analyze, prove_assertion
from dsl.checking.passes import build, resolve_sets
from dsl.diagnostics import Diagnostic
from dsl.evaluate.outcome import InputError
from dsl.evaluate.reference import decide_reference, holds
from dsl.model import PolicySet
from dsl.syntax import ast as A
from dsl.syntax import parse
from dsl.syntax.format import format_file

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                         HealthCheck.data_too_large])


def checked(text: str, path: str = "gen.policy") -> PolicySet | None:
    f, diags = parse(text, path)
    if diags:
        return None
    ps, _ = build([f], {path: text})
    return ps


def qids_in(ps: PolicySet, d: Diagnostic) -> list[str]:
    """The rule ids a finding's message names, in order."""
    return [t for t in d.message.split("'") if t in ps.by_qid]


def instants(ps: PolicySet) -> list[str]:
    """`at` values near every window bound, with and without an offset."""
    out = ["2025-01-01T00:00:00Z", "2021-10-08", "2021-10-08T12:00", "2015-06-23T12:00:00Z"]
    for r in ps.rules:
        for b in (r.start, r.end):
            if b is not None:
                for s in (-1, 0, 3600):
                    out.append((b + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ"))
                    out.append((b.astimezone(r.tz) + dt.timedelta(seconds=s)).replace(tzinfo=None).isoformat())
    return out


def ladder_of(ps: PolicySet, q: str) -> Any:
    p = ps.rule(q).penalty
    assert p is not None
    return p.name if p.name is not None else ("inline", q)


def severity(ps: PolicySet, d: Any) -> Any:
    if d.penalty is None:
        return None
    return ps.rule(d.penalty.rule).penalty.steps[d.penalty.step - 1].severity


@SETTINGS
@given(policy_texts(schema=None))
def test_every_witness_replays_on_the_whole_set(text: str) -> None:
    ps = checked(text)
    if ps is None:
        return
    for d in analyze(ps, timeout_ms=5000):
        if d.witness is None:
            continue
        w = d.witness
        assert w["at"] and isinstance(w["prior_violations"], int)
        assert not any(ord(c) < 32 for c in repr(w["listing"]))  # readable: no control characters
        dec = decide_reference(ps, w["listing"], w["at"], w["prior_violations"])
        names = qids_in(ps, d)
        if d.code == "P303":
            allow = names[0]
            assert allow in dec.rules and dec.effect in ("block", "flag")
            assert any(t in dec.overridden for t in ps.rule(allow).overrides)
        elif d.code == "P304":
            a, b = names[0], names[1]
            assert a in dec.rules and b in dec.rules and ladder_of(ps, a) != ladder_of(ps, b)


@SETTINGS
@given(policy_texts(schema=None), st.lists(listings(), min_size=25, max_size=25), st.randoms(use_true_random=False))
def test_random_listings_never_contradict_the_findings(text: str, batch: list[dict[str, Any]], rnd: Any) -> None:
    ps = checked(text)
    if ps is None:
        return
    found = analyze(ps, timeout_ms=5000)
    by = collections.defaultdict(list)
    for d in found:
        by[d.code].append(d)
    undecided = bool(by["P399"])
    never = {qids_in(ps, d)[0] for d in by["P300"]}
    useless = {tuple(qids_in(ps, d)[:2]) for d in by["P302"]}
    partly = {qids_in(ps, d)[0] for d in by["P303"]}
    competing = {ladder_pair(ps, d) for d in by["P304"]}
    redundant = {qids_in(ps, d)[0] for d in by["P301"]}
    kept = tuple(r for r in ps.rules if r.qid not in redundant)
    without = attrs.evolve(ps, rules=kept, by_qid={r.qid: r for r in kept})
    at_values = instants(ps)
    for listing in batch:
        at, prior = rnd.choice(at_values), rnd.randrange(4)
        try:
            d = decide_reference(ps, listing, at, prior)
        except InputError:
            continue
        applied = set(d.rules) | set(d.overridden)
        # P300: a rule that remains (or an allow that applies) somewhere was never reported
        assert not (set(d.rules) & never), (set(d.rules) & never, listing, at)
        # P302: never both applying
        for allow, target in useless:
            assert not (allow in applied and target in applied), (allow, target, listing, at)
        # P303: an allow that lifts a rule while the effect stays block/flag was reported
        _check_lifts_reported(ps, d, partly, undecided, listing, at)
        # P304: two remaining laddered rules with different ladders: their ladders were reported
        _check_ladders_reported(ps, d, competing, undecided, listing, at)
        # P301: deleting every redundant rule changes no effect and no penalty's severity
        if not undecided:
            d2 = decide_reference(without, listing, at, prior)
            assert d2.effect == d.effect and severity(ps, d2) == severity(ps, d), (redundant, listing, at, prior)


def _check_lifts_reported(ps: PolicySet, d: Any, partly: set[str], undecided: bool, listing: Any, at: Any) -> None:
    """An allow in ``d`` that lifts a rule while the effect stays block/flag is among the P303 findings."""
    for q in d.rules:
        r = ps.rule(q)
        if r.effect == "allow" and any(t in d.overridden for t in r.overrides) and d.effect != "allow":
            assert q in partly or undecided, (q, listing, at)


def ladder_pair(ps: PolicySet, d: Diagnostic) -> frozenset[Any]:
    """The two ladders of a P304 finding (one finding per pair of ladders)."""
    a, b = qids_in(ps, d)[:2]
    return frozenset((ladder_of(ps, a), ladder_of(ps, b)))


def _check_ladders_reported(ps: PolicySet, d: Any, competing: set[frozenset[Any]], undecided: bool, listing: Any,
                            at: Any) -> None:
    """Two laddered block rules in ``d`` with different ladders: the pair of their ladders
    is among the P304 findings."""
    laddered = [q for q in d.rules if ps.rule(q).effect == "block" and ps.rule(q).penalty is not None]
    for i, a in enumerate(laddered):
        for b in laddered[i + 1:]:
            if ladder_of(ps, a) != ladder_of(ps, b):
                pair = frozenset((ladder_of(ps, a), ladder_of(ps, b)))
                assert pair in competing or undecided, (a, b, listing, at)


def _two_files(one: str, two: str) -> tuple[list[A.File], dict[str, str]] | None:
    """Two generated texts parsed as a.policy and b.policy, with their sources; None when
    either has a syntax error."""
    names = ("a.policy", "b.policy")
    parsed = []
    for name, text in zip(names, (one, two), strict=True):
        f, diags = parse(text, name)
        if diags:
            return None
        parsed.append(f)
    return parsed, dict(zip(names, (one, two), strict=True))


def _findings_by_rule(ps: PolicySet, diags: list[Diagnostic]) -> set[Any]:
    """What the findings say, independent of positions: P300 and P303 by rule, P302 by
    (allow, rule), P304 by pair of ladders."""
    out: set[Any] = set()
    for d in diags:
        names = qids_in(ps, d)
        if d.code in ("P300", "P303"):
            out.add((d.code, names[0]))
        elif d.code == "P302":
            out.add((d.code, names[0], names[1]))
        elif d.code == "P304":
            out.add((d.code, ladder_pair(ps, d)))
    return out


@SETTINGS
@given(policy_files(schema=None), st.randoms(use_true_random=False))
def test_findings_do_not_depend_on_rule_order(f: A.File, rnd: Any) -> None:
    decls = [s for s in f.statements if not isinstance(s, A.Rule)]
    rules = [s for s in f.statements if isinstance(s, A.Rule)]
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    results = []
    for order in (rules, shuffled):
        text = format_file(attrs.evolve(f, statements=tuple(decls + order)))
        ps = checked(text, f.path)
        if ps is None:
            return
        results.append((ps, analyze(ps, timeout_ms=5000)))
    (ps1, d1), (ps2, d2) = results
    if any(d.code == "P399" for d in d1 + d2):
        return
    assert _findings_by_rule(ps1, d1) == _findings_by_rule(ps2, d2)
    # P301 depends on positions (the later of two identical rules); its count may differ
    # with the order, but each order's choice is sound (test above).


@SETTINGS
@given(policy_texts(), policy_texts())
def test_findings_do_not_depend_on_file_order(one: str, two: str) -> None:
    two_files = _two_files(one, two)
    if two_files is None:
        return
    parsed, sources = two_files
    ps1, e1 = build(parsed, sources)
    ps2, e2 = build(list(reversed(parsed)), sources)
    if ps1 is None or ps2 is None:
        return
    d1, d2 = analyze(ps1, timeout_ms=5000), analyze(ps2, timeout_ms=5000)
    if any(d.code == "P399" for d in d1 + d2):
        return  # a solver timeout depends on the machine's load, not on the order
    # The same findings at the same places. (The example in a P303/P304 message, and the
    # rules a P301 message names, come from a solver model: z3 may pick another one when
    # it has already built other terms in the same process.) The rules and parts that
    # P300 and P303 messages name do not: the messages are the same.
    assert [(d.code, d.span) for d in d1] == [(d.code, d.span) for d in d2]
    assert _findings_by_rule(ps1, d1) == _findings_by_rule(ps2, d2)
    named = ("P300", "P303")
    assert [d.message for d in d1 if d.code in named] == [d.message for d in d2 if d.code in named]


@SETTINGS
@given(policy_texts(), exprs(2, sets={}), st.sampled_from(["always", "never"]),
       st.sampled_from(["allow", "flag", "block"]), st.lists(listings(), min_size=15, max_size=15),
       st.randoms(use_true_random=False))
def test_assertions_are_proved_exactly(text: str, expr: A.Expr, quantifier: str, effect: str,
                                       batch: list[dict[str, Any]], rnd: Any) -> None:
    ps = checked(text)
    if ps is None:
        return
    tz = ps.policies[0].tz
    expr = resolve_sets(expr, ps.sets)
    result = prove_assertion(ps, quantifier=quantifier, effect=effect, expr=expr, tz=tz, start=None, end=None,
                             timeout_ms=5000)
    if result.outcome == "fail":
        cx = result.counterexample
        assert cx["at"].endswith("Z")
        assert holds(expr, cx["listing"], tz)
        d = decide_reference(ps, cx["listing"], cx["at"], cx["prior_violations"])
        assert (d.effect == effect) == (quantifier == "never")
    elif result.outcome == "pass":
        at_values = [a for a in instants(ps) if a.endswith("Z")]
        for listing in batch:
            try:
                d = decide_reference(ps, listing, rnd.choice(at_values), rnd.randrange(3))
            except InputError:
                continue
            if holds(expr, listing, tz):
                assert (d.effect == effect) == (quantifier == "always"), (listing, d.to_dict())


@SETTINGS
@given(policy_texts(), st.lists(listings(), min_size=10, max_size=10), st.randoms(use_true_random=False))
def test_shared_readings_agree_with_rule_applies(text: str, batch: list[dict[str, Any]], rnd: Any) -> None:
    """The analysis's concrete reading (windows and conjuncts shared between rules, a false
    conjunct settling every rule that requires it) is ``rule_applies``, whatever the order
    in which rules are asked about."""
    from dsl.analysis.concrete import Applicability
    from dsl.evaluate import values as RT
    from dsl.evaluate.reference import rule_applies

    ps = checked(text)
    if ps is None:
        return
    concrete = Applicability(ps)
    at_values = instants(ps)
    for listing in batch:
        at = rnd.choice(at_values)
        when = RT.parse_at(at)
        reader = concrete.reader(listing, at)
        rules = list(ps.rules)
        rnd.shuffle(rules)
        for r in rules:
            try:
                want: Any = rule_applies(r, listing, when)
            except InputError as e:
                want = type(e)
            try:
                got: Any = reader.applies(r.qid)
            except InputError as e:
                got = type(e)
            assert got == want, (r.qid, listing, at)


@SETTINGS
@given(policy_texts(), policy_texts())
def test_index_classes_agree_with_signatures(one: str, two: str) -> None:
    """The index's classes (signatures projected onto what can conflict in the set) prune
    exactly the pairs that the signatures themselves rule out."""
    from dsl.analysis.index import Index, compatible, signature

    two_files = _two_files(one, two)
    if two_files is None:
        return
    ps, _ = build(*two_files)
    if ps is None:
        return
    index = Index(list(ps.rules))
    for a in ps.rules:
        for b in ps.rules:
            assert index.compatible(a.qid, b.qid) == compatible(signature(a), signature(b)), (a.qid, b.qid)
