"""The generated hot path (``dsl.evaluate.hotpath``): no policy text ever enters its
source, conditions beyond its bounds keep their closures, and every shape of plan decides
as the reference evaluator does."""

from __future__ import annotations

from typing import Any

from dsl.checking.passes import build
from dsl.evaluate.compiled import CompiledPolicySet
from dsl.evaluate.policies import Policies
from dsl.syntax import parse

AT = ["2021-06-01", "2021-10-20T12:00:00Z", "2022-01-01"]


def load(*texts: str) -> Policies:
    files = [parse(text, f"p{i}.policy")[0] for i, text in enumerate(texts)]
    ps, diags = build(files, {})
    assert ps is not None, [d.message for d in diags]
    return Policies(ps)


def agree(policies: Policies, listings: list[dict[str, Any]]) -> None:
    for at in AT:
        for prior in (0, 2):
            one = [policies.decide(listing, at=at, prior_violations=prior) for listing in listings]
            assert one == [policies.decide_reference(listing, at=at, prior_violations=prior) for listing in listings]
            assert policies.decide_many(listings, at=at, prior_violations=prior) == one
        assert policies.decide_many(listings, at=[at] * len(listings), prior_violations=(1,) * len(listings)) == [
            policies.decide(listing, at=at, prior_violations=1) for listing in listings]


# Text that would change the program if it were pasted into the source.
NASTY = ['x"); __import__("os").system("exit 3") #', "'''", "{0}{body}", "\\\\", "a\\nb"]


def test_no_policy_text_enters_the_source() -> None:
    rules = []
    for n, text in enumerate(NASTY):
        quoted = text.replace("\\", "\\\\").replace("'", "\\'")
        field = "`" + text.replace("`", "") + "`"
        rules.append(f"rule r{n}: block {field} == '{quoted}' or title contains '{quoted}'"
                     f" or category '{quoted}' or {field} in ['{quoted}', 'z'] or description mentions '{quoted}'")
    policies = load("policy nasty\n" + "\n".join(rules) + "\n")
    source = CompiledPolicySet(policies.policy_set).source
    for text in NASTY:
        assert text not in source
    for word in ("import", "os", "system", "exit", "'"):
        assert word not in source.replace("isdisjoint", "")
    listings: list[dict[str, Any]] = [{}, {"title": NASTY[0]}, {"category": NASTY[1]}, {"description": NASTY[2]}]
    listings += [{NASTY[0].replace("`", ""): NASTY[0]}, {"title": 3, "category": ["a"]}]
    agree(policies, listings)
    assert policies.decide({"title": "x" + NASTY[0].upper()}, at=AT[0]).rules == ("nasty.r0",)


def test_a_condition_beyond_the_bounds_keeps_its_closure() -> None:
    deep = "price > 1"
    for n in range(30):  # nested deeper than what is written out
        deep = f"(({deep}) or price == {n + 100})"
    wide = " or ".join(f"title contains 'w{n}'" for n in range(60)) + " or " + " or ".join(
        f"price == {n}" for n in range(60))  # more atoms than what is written out
    policies = load(f"policy big\nrule deep: block {deep}\nrule wide: flag {wide}\nrule small: flag price < 0\n")
    compiled = CompiledPolicySet(policies.policy_set)
    assert "for lo, hi, zone, cond, i in _c" in compiled.source  # the loop over the closures left
    assert compiled.source.count("applying = [1]") == 2  # `small` written out (in decide and the batch loop)
    agree(policies, [{}, {"price": 2}, {"price": 105}, {"price": 30}, {"title": "W59"}, {"price": -1}])


def test_many_residual_rules_and_every_index() -> None:
    rules = [f"rule t{n}: from 2021-{1 + n % 12:02d}-01 flag title contains 'k{n}'" for n in range(300)]
    rules += ["rule c: block category 'A/B' and platform in ['x']", "rule c2: block category 'A' if price > 2",
              "rule f: flag platform == 'y' and price > 3", "rule e: flag seller exists",
              "rule m: block title matches /^z+$/i", "rule n: flag not (title mentions 'hi there')",
              "rule q: flag " + " or ".join(f"title contains 'q{n}'" for n in range(15)),  # more than written out
              "rule r: flag (title contains 'R1' or title contains ' r2 ') and price < 5",
              "rule s: flag attrs.note contains 'Zz' or attrs.note contains 'yy'"]
    policies = load("policy many\n" + "\n".join(rules) + "\n")
    listings: list[dict[str, Any]] = [
        {}, {"title": "k1 k299 hi there"}, {"category": "A/B", "platform": "x", "price": 3},
        {"category": "A", "price": 1}, {"category": "a > b", "platform": "x"}, {"platform": "y", "price": 4},
        {"seller": "s", "title": "ZZZ"}, {"title": ["k7", 3]}, "not a listing",  # type: ignore[list-item]
        {"title": "Q14"}, {"title": ["a", "q3 r1"], "price": 1}, {"title": "Ｑ１ a\t r2  b"},
        {"attrs": {"note": "ZZ top"}}, {"attrs": {"note": ["x", "YY"]}}, {"title": "R2", "price": 1},
    ]
    for at in AT:
        for listing in listings:
            try:
                one = policies.decide(listing, at=at, prior_violations=1)
            except ValueError as e:
                assert policies.decide_many([listing], at=at)[0].message == str(e)  # type: ignore[union-attr]
                continue
            assert one == policies.decide_reference(listing, at=at, prior_violations=1)


def test_a_sources_matcher_runs_once_for_the_written_rules_and_the_closures(monkeypatch: Any) -> None:
    from dsl.text import PhraseMatcher

    wide = " or ".join(f"price == {n}" for n in range(60))  # beyond the bounds: left to its closure
    policies = load("policy m\nrule a: block category 'Knives' and mentions 'foo'\nrule b: flag mentions 'bar'\n"
                    f"rule c: flag mentions 'baz' and ({wide})\n")
    runs: list[int] = []
    find = PhraseMatcher.find_in_pieces
    monkeypatch.setattr(PhraseMatcher, "find_in_pieces", lambda self, pieces: runs.append(1) or find(self, pieces))
    assert "for lo, hi, zone, cond, i in _c" in CompiledPolicySet(policies.policy_set).source
    for listing in ({"category": "Knives", "title": "foo bar baz", "price": 7}, {"title": "bar baz", "price": 3},
                    {"category": "Knives", "title": "nothing"}, {"price": 1}):
        runs.clear()
        decision = policies.decide(listing, at="2022-01-01")
        assert len(runs) == 1
        assert decision == policies.decide_reference(listing, at="2022-01-01")
    assert policies.decide({"category": "Knives", "title": "foo bar baz", "price": 7}).rules == ("m.a", "m.b", "m.c")
