"""The analysis's indexes change how fast it answers, never what it answers: the indexed
run (signature index, selector index, guessed samples) gives the same findings (code,
file, line) as the unindexed one that asks about every pair and reads every rule on every
listing (``findings.run(..., indexed=False)``), on generated policy sets
(``tests/strategies.py``) and on the benchmarks' sets (``bench/gen.py``,
``bench/bench_analysis.py``). And the selector index over-approximates: a rule that
applies on a listing is always among its candidates."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import listings, policy_texts

from dsl.analysis.findings import run
from dsl.analysis.guess import guess
from dsl.analysis.selectors import SelectorIndex
from dsl.analysis.solver import AnalysisStats, Engine
from dsl.api import compile_paths
from dsl.checking.passes import build
from dsl.diagnostics import Diagnostic
from dsl.evaluate import values as RT
from dsl.evaluate.outcome import InputError
from dsl.evaluate.reference import rule_applies
from dsl.model import PolicySet
from dsl.syntax import parse

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                         HealthCheck.data_too_large])


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checked(*texts: str) -> PolicySet | None:
    parsed, sources = [], {}
    for i, text in enumerate(texts):
        path = f"f{i}.policy"
        f, diags = parse(text, path)
        if diags:
            return None
        parsed.append(f)
        sources[path] = text
    ps, _ = build(parsed, sources)
    return ps


def places(diags: list[Diagnostic]) -> list[tuple[str, str, int]]:
    return sorted((d.code, d.span.file if d.span else "", d.span.line if d.span else 0) for d in diags)


def both(ps: PolicySet) -> tuple[list[Diagnostic], list[Diagnostic]]:
    return (run(ps, 5000, AnalysisStats(), None, indexed=True),
            run(ps, 5000, AnalysisStats(), None, indexed=False))


@SETTINGS
@given(policy_texts(schema=None), policy_texts(schema=None))
def test_indexed_findings_are_the_unindexed_ones(one: str, two: str) -> None:
    ps = checked(one, two)
    if ps is None:
        return
    indexed, naive = both(ps)
    if any(d.code == "P399" for d in indexed + naive):
        return  # a solver timeout depends on the load and on what z3 was asked before
    assert places(indexed) == places(naive)


def _compiled(files: dict[str, str]) -> PolicySet:
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        ps, _, diags = compile_paths([tmp])
    assert ps is not None, [d.message for d in diags]
    return ps


def test_the_benchmarks_sets_give_the_same_findings_indexed() -> None:
    gen = _bench("gen")
    sets = [{"g.policy": gen.policy_text(120)},
            _bench("bench_analysis").generated_policies(150, seed=4),
            _bench("bench_analysis").generated_policies(120, seed=11)]
    for files in sets:
        indexed, naive = both(_compiled(files))
        assert places(indexed) == places(naive)


def test_one_p304_per_pair_of_ladders() -> None:
    """Twenty rules on two ladders that all meet: one finding, at the first place where
    the ladders meet (the later rule that comes first, then the earlier one)."""
    lines = ["policy p", "ladder soft = warn seller then remove listing",
             "ladder hard = remove listing then close account"]
    for i in range(10):
        lines.append(f"rule s{i}: block category 'S{i}' penalty soft")
        lines.append(f"rule h{i}: block category 'H{i}' penalty hard")
    ps = _compiled({"p.policy": "\n".join(lines) + "\n"})
    p304 = [d for d in run(ps, 5000, AnalysisStats()) if d.code == "P304"]
    assert len(p304) == 1
    (d,) = p304
    assert d.span is not None and d.span.line == 5  # h0, meeting s0 at line 4
    assert d.related and d.related[0].span is not None and d.related[0].span.line == 4
    assert any("one finding for the two ladders (20 rules)" in n for n in d.notes)


@SETTINGS
@given(policy_texts(), st.lists(listings(), min_size=10, max_size=10))
def test_selector_candidates_hold_every_rule_that_applies(text: str, batch: list[dict[str, Any]]) -> None:
    ps = checked(text)
    if ps is None:
        return
    index = SelectorIndex(ps.rules)
    when = RT.parse_at("2025-01-01T00:00:00Z")
    for listing in batch:
        candidates = index.candidates(listing)
        for r in ps.rules:
            try:
                applies = rule_applies(r, listing, when)
            except InputError:
                continue
            assert not applies or r.qid in candidates, (r.qid, listing)


def test_a_guess_is_kept_only_when_the_evaluator_confirms_it() -> None:
    ps = _compiled({"p.policy": "policy p\nrule a: from 2021-10-08 block category 'K > L' and price > 10 "
                                "and platform in ['x', 'y'] and mentions any ['blade', 'sword']\n"
                                "rule b: block price > 10 and price < 5\n"})
    engine = Engine(ps)
    w = guess(ps.rule("p.a"))
    assert w is not None and w.listing == {"category": "K > L", "price": 11, "platform": "x", "title": "blade"}
    assert engine.confirms(engine.remaining("p.a"), w)
    wb = guess(ps.rule("p.b"))
    assert wb is not None and not engine.confirms(engine.remaining("p.b"), wb)


def test_selector_candidates_by_field_value() -> None:
    """Rules without a category are filed under the value a field must equal, as ``==``
    reads it: a bool is not a number, 1 equals 1.0, and a rule that requires nothing
    indexable is a candidate everywhere."""
    ps = _compiled({"p.policy": "policy p\nrule t: block platform in ['taobao', 'tmall']\n"
                                "rule n: block stock == 1\nrule b: block verified == true\n"
                                "rule c: block category 'K' and platform == 'x'\nrule other: block price > 3\n"})
    index = SelectorIndex(ps.rules)
    assert index.candidates({"platform": "tmall"}) == {"p.t", "p.other"}
    assert index.candidates({"stock": 1.0, "verified": 1}) == {"p.n", "p.other"}
    assert index.candidates({"stock": True, "verified": True}) == {"p.b", "p.other"}
    assert index.candidates({"category": "A > K", "platform": "y"}) == {"p.c", "p.other"}


def test_selector_candidates_by_phrase() -> None:
    """Rules that require neither a category nor a value but a phrase are filed under the
    text they read and their phrases, found as ``mentions`` finds them."""
    ps = _compiled({"p.policy": "policy p\nrule coin: block mentions any ['bitcoin', 'ether']\n"
                                "rule knife: flag title mentions 'knife'\nrule other: block price > 3\n"})
    index = SelectorIndex(ps.rules)
    assert index.candidates({"title": "ETHER wallet"}) == {"p.coin", "p.other"}
    assert index.candidates({"title": "Ethernet cable", "tags": ["knife"]}) == {"p.other"}
    assert index.candidates({"title": "A  Knife", "description": "bit\u200bcoin"}) == {"p.coin", "p.knife", "p.other"}


def test_selectors_file_categories_by_the_compiled_evaluators_rule() -> None:
    """The selector index and the compiled evaluator file a rule by one rule
    (``semantics.category_keys``): the first segment of each pattern; an empty pattern
    files it nowhere."""
    from dsl.evaluate import semantics as S
    from dsl.syntax import ast as A

    ps = _compiled({"p.policy": "policy p\nrule r: block category in ['A > B', 'C > D'] and price > 1\n"
                                "rule e: block category ' > '\n"})
    (r_cat,) = [c for c in A.conjuncts(ps.rule("p.r").condition) if S.category_keys(c) is not None]
    assert S.category_keys(r_cat) == {"a", "c"}  # normalised as a listing's category
    index = SelectorIndex(ps.rules)
    assert index.candidates({"category": "X > C"}) == {"p.r"}
    assert index.candidates({"category": "B > D"}) == set()
