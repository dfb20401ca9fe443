"""The compiled evaluator: it agrees with the reference evaluator exactly (differential
tests on generated policy sets and listings), does not depend on rule or file order,
reads `at` in each policy's timezone (daylight-saving changes at midnight included),
and turns bad input into clear per-record errors or warnings."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import threading
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import at_least, listings, policy_files

import dsl
from dsl.checking.passes import build
from dsl.evaluate.compiled import CompiledPolicySet
from dsl.evaluate.outcome import Decision, DecisionError, InputError
from dsl.evaluate.policies import Policies
from dsl.evaluate.reference import decide_reference
from dsl.fingerprint import policy_hash
from dsl.syntax import ast as A
from dsl.syntax import parse

UTC = dt.UTC


def load_text(*texts: str) -> Policies:
    """A policy set from source texts (file i is named by its header, else `p<i>`)."""
    files = [parse(text, f"p{i}.policy")[0] for i, text in enumerate(texts)]
    ps, diags = build(files, {})
    assert ps is not None, [d.message for d in diags]
    return Policies(ps)


def both(policies: Policies, listing: Any, at: Any = None, prior: Any = 0) -> Decision:
    """The compiled decision, after checking that the reference gives the same."""
    compiled = policies.decide(listing, at=at, prior_violations=prior)
    reference = policies.decide_reference(listing, at=at, prior_violations=prior)
    assert compiled == reference
    return compiled


# ---------------------------------------------------------------- differential


_DAYS = st.dates(dt.date(2019, 12, 20), dt.date(2022, 3, 5))
ats = st.one_of(
    _DAYS.map(dt.date.isoformat),
    st.builds(lambda d, h, m: f"{d.isoformat()}T{h:02d}:{m:02d}", _DAYS, st.integers(0, 23),
              st.sampled_from([0, 30, 59])),
    st.builds(lambda d, h, z: f"{d.isoformat()}T{h:02d}:00:00{z}", _DAYS, st.integers(0, 23),
              st.sampled_from(["Z", "+08:00", "-05:00", "+05:30"])),
    st.builds(lambda d, h: dt.datetime(d.year, d.month, d.day, h, tzinfo=UTC), _DAYS, st.integers(0, 23)),
    _DAYS,
)


@st.composite
def policy_sets(draw: st.DrawFn) -> Any:
    files = draw(st.lists(policy_files(schema=False, max_rules=5), min_size=1, max_size=3))
    names = [f.header.name.name for f in files if f.header is not None]
    if len(set(names)) != len(names):
        files = files[:1]
    ps, _ = build(list(files), {})
    if ps is None:  # two files declared a set or ladder of the same name (P204)
        ps, _ = build(list(files[:1]), {})
    assert ps is not None, "policy_files() promises files without errors"
    return ps, files


# Drawing policy files dominates the cost of these tests, so each generated set is tried
# on many listings and instants.
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(policy_sets(), st.lists(listings(), min_size=1, max_size=12), st.lists(ats, min_size=1, max_size=3),
       st.integers(0, 5))
def test_compiled_agrees_with_reference(generated: Any, batch: list[dict[str, Any]], instants: list[Any],
                                        prior: int) -> None:
    ps, _files = generated
    compiled = CompiledPolicySet(ps)
    for at in instants:
        decisions = [compiled.decide(listing, at, prior) for listing in batch]
        for listing, decision in zip(batch, decisions, strict=True):
            reference = decide_reference(ps, listing, at, prior)
            assert decision == reference, (listing, decision.to_dict(), reference.to_dict())
            assert decision.to_dict() == reference.to_dict()
        assert compiled.decide_many(batch, at, prior) == decisions
    # one `at` and one prior per listing: decision by decision what `decide` gives
    each_at = [instants[i % len(instants)] for i in range(len(batch))]
    each_prior = [(prior + i) % 6 for i in range(len(batch))]
    assert compiled.decide_many(batch, each_at, tuple(each_prior)) == [
        compiled.decide(listing, a, p) for listing, a, p in zip(batch, each_at, each_prior, strict=True)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_sets(), st.lists(listings(), min_size=1, max_size=4), ats, st.randoms(use_true_random=False))
def test_decisions_do_not_depend_on_rule_or_file_order(generated: Any, batch: list[dict[str, Any]], at: Any,
                                                        rnd: random.Random) -> None:
    ps, files = generated
    kept = [f for f in files if any(r.policy == (f.header.name.name if f.header else "") for r in ps.rules)]
    shuffled = []
    for f in kept:
        statements = list(f.statements)
        rnd.shuffle(statements)
        shuffled.append(attrs.evolve(f, statements=tuple(statements)))
    rnd.shuffle(shuffled)
    other, _ = build(shuffled, {})
    assert other is not None
    one, two = CompiledPolicySet(ps), CompiledPolicySet(other)
    for listing in batch:
        a, b = one.decide(listing, at).to_dict(), two.decide(listing, at).to_dict()
        a.pop("policy_hash"), b.pop("policy_hash")
        assert a == b


def test_file_order_does_not_change_the_hash_or_decisions() -> None:
    a = "policy a\nrule r: block category 'X'\nrule s: flag price > 3\n"
    b = "policy b\ntimezone \"Asia/Shanghai\"\nrule r: from 2021-10-08 block mentions 'coin'\n"
    fa, fb = parse(a, "a.policy")[0], parse(b, "b.policy")[0]
    one, _ = build([fa, fb], {})
    two, _ = build([fb, fa], {})
    assert one is not None and two is not None
    assert policy_hash(one) == policy_hash(two)
    listing = {"category": "X", "title": "coin", "price": 5}
    assert Policies(one).decide(listing, "2021-10-09") == Policies(two).decide(listing, "2021-10-09")


# ---------------------------------------------------------------- indexes


def test_indexes_do_not_lose_rules() -> None:
    policies = load_text("""
policy idx
rule by-cat:    block category 'Electronics > Blockchain Miners'
rule cat-in:    block category in ['Knives', 'Swords > Katana', '']
rule by-field:  flag platform == 'taobao' and price > 10
rule by-in:     flag stock in [0, 1, true]
rule residual:  flag not platform == 'xianyu'
rule neg:       flag platform not in ['taobao']
rule never:     block category in ['', ' > ']
""")
    summary = policies.plan_summary()
    assert summary["category_index"] == 2 and summary["field_index"] == 2 and summary["residual"] == 2
    cases = [
        {"category": "Home > Electronics > Blockchain Miners > ASIC"},
        {"category": ["electronics", "BLOCKCHAIN MINERS"]},
        {"category": "Blockchain Miners"},
        {"category": "Swords > Katana > Knives > Swords > Katana"},
        {"category": "Katana"},
        {"platform": "taobao", "price": 11},
        {"platform": "taobao", "price": 10},
        {"platform": ["taobao"], "price": 11},
        {"stock": 0}, {"stock": 1.0}, {"stock": True}, {"stock": False}, {"stock": "0"}, {"stock": math.nan},
        {"platform": "xianyu"}, {"platform": 3}, {},
    ]
    for listing in cases:
        both(policies, listing, "2022-01-01")
    assert both(policies, {"stock": True}, "2022-01-01").rules == ("idx.by-in", "idx.residual")
    assert both(policies, {"stock": 1.0, "platform": "xianyu"}, "2022-01-01").rules == ("idx.by-in", "idx.neg")
    assert both(policies, {"platform": "amazon"}, "2022-01-01").rules == ("idx.neg", "idx.residual")


def test_a_rule_found_by_several_indexes_applies_once() -> None:
    # each rule is filed in one place, so the candidates of the category and of every
    # field index are joined without removing repeats: none comes twice
    policies = load_text("""
policy once
rule cat-and-field: block category 'Knives' and platform == 'taobao'
rule field-a:       flag platform in ['taobao', 'xianyu'] and stock == 1
rule field-b:       flag stock in [1, 2] and stock == 1.0
rule field-c:       flag seller == 's' and platform == 'taobao'
rule residual:      flag stock > 0
""")
    listing = {"category": "Knives", "platform": "taobao", "stock": 1, "seller": "s"}
    decision = both(policies, listing, "2022-01-01")
    assert decision.rules == ("once.cat-and-field", "once.field-a", "once.field-b", "once.field-c",
                              "once.residual")


def test_many_rules_with_one_matching() -> None:
    rules = "\n".join(f"rule r{i}: from 2021-01-{1 + i % 28:02d} block category 'Cat {i}'" for i in range(300))
    policies = load_text("policy many\n" + rules + "\nrule kw: flag mentions any ['bitcoin', 'ether']\n")
    d = both(policies, {"category": "Home > Cat 17", "title": "Ether wallet"}, "2021-06-01")
    assert d.rules == ("many.kw", "many.r17") and d.effect == "block"
    assert both(policies, {"category": "Home > Cat 17x"}, "2021-06-01").effect == "allow"


# ---------------------------------------------------------------- timezones


@pytest.mark.parametrize("zone, day", [
    ("America/Santiago", "2022-09-11"),   # 00:00 -> 01:00
    ("Asia/Beirut", "2022-03-27"),        # 00:00 -> 01:00
    ("America/Havana", "2022-03-13"),     # 00:00 -> 01:00
])
def test_daylight_saving_change_at_midnight(zone: str, day: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    d = dt.date.fromisoformat(day)
    before = dt.datetime(d.year, d.month, d.day, tzinfo=tz) - dt.timedelta(days=1)
    assert (dt.datetime(d.year, d.month, d.day, 2, tzinfo=tz).utcoffset() != before.utcoffset()), "no change that day"
    first = dt.datetime(d.year, d.month, d.day, 1, tzinfo=tz).astimezone(UTC)  # 01:00 is the day's first instant
    policies = load_text(f'policy dst\ntimezone "{zone}"\nrule r: from {day} block category \'X\'\n'
                         f"rule u: until {day} flag category 'X'\n")
    listing = {"category": "X"}
    assert both(policies, listing, first).rules == ("dst.r",)
    assert both(policies, listing, first - dt.timedelta(seconds=1)).rules == ("dst.u",)
    assert both(policies, listing, day).rules == ("dst.r",)  # a date for at: first instant of that day
    assert both(policies, listing, day).to_dict()["at"] == f"{day}T00:00:00"  # reported as given
    assert both(policies, listing, both(policies, listing, day).to_dict()["at"]).rules == ("dst.r",)  # and replays
    prev = (d - dt.timedelta(days=1)).isoformat()
    assert both(policies, listing, f"{prev}T23:59:59").rules == ("dst.u",)
    # A date field compared with a date literal reads the same way.
    dated = load_text(f'policy dst\ntimezone "{zone}"\nrule r: flag listed_on >= {day}\n')
    assert both(dated, {"listed_on": day}, "2023-01-01").rules == ("dst.r",)
    assert both(dated, {"listed_on": f"{prev}T23:59:59"}, "2023-01-01").rules == ()
    assert both(dated, {"listed_on": first.isoformat()}, "2023-01-01").rules == ("dst.r",)


def test_naive_at_is_read_in_each_policy_timezone() -> None:
    policies = load_text(
        'policy east\ntimezone "Asia/Shanghai"\nrule r: from 2021-10-08 block category \'X\'\n',
        'policy west\ntimezone "America/New_York"\nrule r: from 2021-10-08 flag category \'X\'\n')
    listing = {"category": "X"}
    d = both(policies, listing, "2021-10-08")
    assert d.rules == ("east.r", "west.r")
    assert d.to_dict()["at"] == "2021-10-08T00:00:00"  # as given: local time in each policy's timezone
    assert both(policies, listing, d.to_dict()["at"]).rules == d.rules
    assert both(policies, listing, "2021-10-08T00:00:00Z").rules == ("east.r",)
    assert both(policies, listing, "2021-10-07T23:59").rules == ()
    assert both(policies, listing, dt.datetime(2021, 10, 8, 4, tzinfo=UTC)).rules == ("east.r", "west.r")


def test_at_defaults_to_now_once_per_batch() -> None:
    policies = load_text("policy p\nrule r: block category 'X'\n")
    before = dt.datetime.now(UTC).replace(microsecond=0)
    decisions = policies.decide_many([{"category": "X"}] * 50)
    assert len({d.at for d in decisions if isinstance(d, Decision)}) == 1
    assert decisions[0].at >= before  # type: ignore[union-attr]


# ---------------------------------------------------------------- bad input


BAD_POLICY = """
policy shop
rule plat:   flag platform == 'taobao'
set coins = ['bitcoin', 'ether']
rule cat:    block category 'Blockchain Miners'
rule coins:  block mentions any coins
rule price:  flag price > 1000
rule title:  flag title == 'Antminer'
rule sku:    flag sku matches /^CM-[0-9]{4}$/
"""


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


def test_bad_records_get_clear_errors_or_warnings_and_the_batch_goes_on() -> None:
    policies = load_text(BAD_POLICY)
    batch: list[Any] = [
        ["not", "an", "object"],                                     # 1: error
        {"title": "bitcoin " + "x" * 1_000_000},                     # 2: 1 MB title
        {"category": "Blockchain Miners", "nested": _deep(1000)},    # 3: nesting 1,000 deep
        {"price": math.nan},                                         # 4: warning
        {"price": math.inf, "title": "ok"},                          # 5: warning
        {"category": 42},                                            # 6: warning
        {"title": ["Antminer", "ether"], "platform": ["taobao"]},    # 7: lists where text is expected
        "just a string",                                             # 8: error
        {"sku": ["CM-1234"], "price": 2000},                         # 9: fine
        {"category": 10**5000, "price": 10**5000},                   # 10: huge numbers
    ]
    results = policies.decide_many(batch, at="2022-01-01")
    assert len(results) == len(batch)
    err1, big, deep, nan, inf, cat42, listy, err8, ok, huge = results
    assert isinstance(huge, Decision) and huge.rules == ("shop.price",) and "5000 digits" in huge.warnings[0]
    assert isinstance(err1, DecisionError) and err1.record == 1 and "JSON object" in err1.message
    assert err1.to_dict() == {"error": {"record": 1, "message": err1.message}}
    assert isinstance(err8, DecisionError) and err8.record == 8
    assert isinstance(big, Decision) and big.rules == ("shop.coins",)
    assert isinstance(deep, Decision) and deep.rules == ("shop.cat",)
    assert isinstance(nan, Decision) and nan.effect == "allow" and len(nan.warnings) == 1
    assert "price" in nan.warnings[0] and "non-finite" in nan.warnings[0]
    assert isinstance(inf, Decision) and len(inf.warnings) == 1
    assert isinstance(cat42, Decision) and cat42.warnings[0].startswith("category:")
    # mentions reads a list's elements (title is also read by mentions, so a list of text
    # fits it); == never compares a list: one warning, for platform.
    assert isinstance(listy, Decision) and listy.rules == ("shop.coins",)
    assert len(listy.warnings) == 1 and listy.warnings[0].startswith("platform: expected text, got a list")
    assert isinstance(ok, Decision) and ok.rules == ("shop.price", "shop.sku")
    for record, result in zip(batch, results, strict=True):
        if isinstance(result, Decision):
            assert result == policies.decide_reference(record, at="2022-01-01")
            json.dumps(result.to_dict())
            assert isinstance(policies.explain_decision(result, record), str)


def test_bad_at_and_prior_are_input_errors() -> None:
    policies = load_text(BAD_POLICY)
    for bad_at in ("yesterday", "2021-02-30", 1633651200, ["2021-10-08"]):
        with pytest.raises(InputError, match="at"):
            policies.decide({}, at=bad_at)
        with pytest.raises(InputError):
            policies.decide_many([{}, {}], at=bad_at)  # a list of one `at` for two listings too
        with pytest.raises(InputError):
            policies.decide_reference({}, at=bad_at)
    for bad_prior in (-1, 1.5, True, "2", None):
        with pytest.raises(InputError, match="prior_violations"):
            policies.decide({}, prior_violations=bad_prior)
        with pytest.raises(InputError, match="prior_violations"):
            policies.decide_reference({}, prior_violations=bad_prior)
    assert isinstance(policies.decide({}, prior_violations=2.0), Decision)


def test_schema_violations_are_input_errors() -> None:
    policies = load_text("""
policy typed
field price: number required
field platform: one of ['taobao', 'xianyu']
rule r: flag price > 10 and platform == 'taobao'
""")
    assert both(policies, {"price": 11, "platform": "taobao"}, "2022-01-01").rules == ("typed.r",)
    for listing, field in [({}, "price"), ({"price": "11"}, "price"), ({"price": 1, "platform": "amazon"}, "platform"),
                           ({"price": 1, "title": 3}, "title"), ({"price": math.nan}, "price")]:
        for decide in (policies.decide, policies.decide_reference):
            with pytest.raises(InputError) as info:
                decide(listing, at="2022-01-01")
            assert info.value.field == field
    results = policies.decide_many([{}, {"price": 1}], at="2022-01-01")
    assert isinstance(results[0], DecisionError) and "price" in results[0].message
    assert isinstance(results[1], Decision)


# ---------------------------------------------------------------- threads


def test_shared_across_threads() -> None:
    east = ('policy east\ntimezone "Asia/Shanghai"\n'
            "rule late: from 2021-10-15 block category 'Blockchain Miners' penalty remove listing\n")
    policies = load_text(BAD_POLICY, east)
    rnd = random.Random(5)
    pool = [{"category": rnd.choice(["Blockchain Miners", "Software", 7]),
             "title": rnd.choice(["bitcoin", "ether", "x"]),
             "price": rnd.choice([10, 2000, "abc"])} for _ in range(200)]
    expected = [policies.decide_reference(x, at="2021-10-20", prior_violations=1) for x in pool]
    failures: list[str] = []

    def work() -> None:
        for listing, want in zip(pool, expected, strict=True):
            if policies.decide(listing, at="2021-10-20", prior_violations=1) != want:
                failures.append(repr(listing))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_policies_api() -> None:
    policies = load_text(BAD_POLICY)
    assert policies.rules == ("shop.cat", "shop.coins", "shop.plat", "shop.price", "shop.sku", "shop.title")
    assert policies.policy_hash.startswith("sha256:")
    assert policies.policy_set.rules[0].qid == "shop.cat"
    assert "shop" in repr(policies)
    text = policies.explain({"category": "Blockchain Miners"}, at="2022-01-01")
    assert "cat (block)" in text
    assert isinstance(A, object)
    assert dsl.Policies is Policies


# ---------------------------------------------------------------- one pass over all pieces


_PIECE_PARTS = st.sampled_from(
    list("ab ETher\t\n\x00'-_比特币\u0301\u3000ＡßΣς\u200b\u00ad\u2019\u02bc\uff07\u2010\u2015\u2212ก")
    + ["mining rig", "ether", "bitcoin"])


@settings(max_examples=at_least(300), deadline=None)
@given(st.lists(st.lists(_PIECE_PARTS, max_size=8).map("".join), max_size=4),
       st.lists(st.sampled_from(["ether", "mining rig", "比特币", "'s", "-", "a b", "ß", "\u0301", "r b",
                                 "r\u2019s", "a\u200bb", "\u2013"]), min_size=1))
def test_joined_pieces_find_what_each_piece_finds(pieces: list[str], phrases: list[str]) -> None:
    from dsl.text import PhraseMatcher, normalize_phrase, normalize_text

    matcher = PhraseMatcher(frozenset(normalize_phrase(p) for p in phrases))
    each = {p for piece in pieces for p in matcher.find(normalize_text(piece))}
    assert matcher.find_in_pieces(pieces) == each


def test_phrases_with_nul_fall_back_to_one_piece_at_a_time() -> None:
    policies = load_text("policy nul\nrule r: flag mentions 'a\\u{0}b'\n")
    assert both(policies, {"title": "a", "description": "b"}, "2022-01-01").rules == ()
    assert both(policies, {"title": "x a\x00b"}, "2022-01-01").rules == ("nul.r",)


def test_rules_share_the_condition_of_a_repeated_value_atom() -> None:
    """Planning compiles ``platform in [...]`` once for every rule that has it (spans
    aside); an atom with a number keeps its own (1 and 1.0 are equal atoms)."""
    from zoneinfo import ZoneInfo

    from dsl.evaluate.compiled import _Planner

    planner = _Planner()
    tz = ZoneInfo("UTC")

    def platform_in(at: int) -> A.In:
        return A.In(A.Path(("platform",)), A.ListLit((A.Str("taobao"), A.Str("tmall"))), False,
                    span=A.Span("p", 1, at, 1, at + 5, at, at + 5))

    assert planner.compile(platform_in(1), tz) is planner.compile(platform_in(40), tz)
    one, other = (A.Compare(A.Path(("n",)), "==", A.Num(v)) for v in (1, 1.0))
    assert planner.compile(one, tz) is not planner.compile(other, tz)
