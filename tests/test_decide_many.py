"""`decide_many(listings, at=…, prior_violations=…)` with one value for the batch or one per
listing (a list or tuple as long as the batch): each decision is the one `decide` gives with
that listing's values, and reports its own `at` (spec section 5)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import dsl
from dsl.checking.passes import build
from dsl.evaluate.compiled import CompiledPolicySet
from dsl.evaluate.outcome import Decision, DecisionError, InputError
from dsl.evaluate.policies import Policies
from dsl.syntax import parse

NEW_YORK = """
policy ny
timezone "America/New_York"
rule late: from 2024-07-20 block category 'X'
ladder escalate = remove listing then restrict listing for 7d then close account
rule coins: block title mentions 'coin' penalty escalate
"""
SHANGHAI = """
policy sh
timezone "Asia/Shanghai"
rule early: from 2024-07-20 until 2024-07-21 flag category 'X'
"""


def load_text(*texts: str) -> Policies:
    parsed = [parse(text, f"p{i}.policy") for i, text in enumerate(texts)]
    assert not [d.message for _, diags in parsed for d in diags]
    ps, diags = build([f for f, _ in parsed], {})
    assert ps is not None, [d.message for d in diags]
    return Policies(ps)


@pytest.fixture(scope="module")
def policies() -> Policies:
    return load_text(NEW_YORK, SHANGHAI)


LISTINGS: list[dict[str, Any]] = [
    {"category": "X"},
    {"category": "X", "title": "coin"},
    {"category": "X"},
    {"title": "coin"},
    {"category": "X"},
    {"category": "X", "title": "coin"},
    {"category": "X"},
]
# naive and offset `at`s mixed, strings, dates and datetimes; a repeat; the Shanghai rule's
# window is in force at some and not others, the New York one starts at some
ATS: list[Any] = [
    "2024-07-20",                                   # local: midnight in each zone
    "2024-07-20T03:59:59Z",                         # before midnight in New York
    "2024-07-20T04:00:00Z",                         # midnight in New York, noon in Shanghai
    dt.date(2024, 7, 19),
    dt.datetime(2024, 7, 21, 8, 30),                # naive
    dt.datetime(2024, 7, 20, 12, tzinfo=ZoneInfo("Europe/Paris")),
    "2024-07-20",                                   # repeated
]
PRIORS = [0, 1, 0, 2, 0, 5, 0]


def test_per_listing_values_give_what_decide_gives(policies: Policies) -> None:
    for at, prior in [(ATS, PRIORS), (tuple(ATS), tuple(PRIORS)), (ATS, 1), ("2024-07-20", PRIORS)]:
        results = policies.decide_many(LISTINGS, at=at, prior_violations=prior)
        assert len(results) == len(LISTINGS)
        for i, (listing, result) in enumerate(zip(LISTINGS, results, strict=True)):
            a = at if isinstance(at, str) else at[i]
            p = prior if isinstance(prior, int) else prior[i]
            assert result == policies.decide(listing, at=a, prior_violations=p)
            assert result == policies.decide_reference(listing, at=a, prior_violations=p)
            assert isinstance(result, Decision)
            assert result.to_dict() == policies.decide(listing, at=a, prior_violations=p).to_dict()
    # a generator of listings is read once
    assert policies.decide_many(iter(LISTINGS), at=ATS, prior_violations=PRIORS) == \
        policies.decide_many(LISTINGS, at=ATS, prior_violations=PRIORS)


def test_each_decision_reports_its_own_at(policies: Policies) -> None:
    results = policies.decide_many(LISTINGS, at=ATS)
    reported = [r.to_dict()["at"] for r in results if isinstance(r, Decision)]
    assert reported == ["2024-07-20T00:00:00", "2024-07-20T03:59:59Z", "2024-07-20T04:00:00Z",
                        "2024-07-19T00:00:00", "2024-07-21T08:30:00", "2024-07-20T10:00:00Z",
                        "2024-07-20T00:00:00"]
    # a local 2024-07-20 is midnight in each zone (both rules in force); at 03:59:59Z New
    # York's rule has not started (it is 23:59:59 there) while Shanghai's window is open
    # (11:59:59 there); a local 2024-07-19 is before both
    assert [r.rules for r in results if isinstance(r, Decision)][:4] == [
        ("ny.late", "sh.early"), ("ny.coins", "sh.early"), ("ny.late", "sh.early"), ("ny.coins",)]


def test_a_string_is_one_value_never_a_sequence(policies: Policies) -> None:
    at = "2024-07-20"
    batch = [{"category": "X"}] * len(at)  # as many listings as the string has characters
    results = policies.decide_many(batch, at=at)
    assert all(r == policies.decide(batch[0], at=at) for r in results)


@pytest.mark.parametrize("name", ["at", "prior_violations"])
def test_a_list_of_another_length_is_an_input_error(policies: Policies, name: str) -> None:
    for values in ([0, 0], (0,) * 9, []):
        if name == "at":
            values = type(values)("2024-07-20" for _ in values)
        with pytest.raises(InputError) as info:
            policies.decide_many(LISTINGS, **{name: values})
        assert info.value.field == name
        assert f"{len(values)} values for a batch of {len(LISTINGS)} listings" in info.value.message
    assert policies.decide_many([], **{name: []}) == []
    with pytest.raises(InputError) as info:
        policies.decide_many(LISTINGS[:1], **{name: [0, 0] if name != "at" else ["2024-07-20"] * 2})
    assert f"{name}: 2 values for a batch of 1 listing (" in info.value.message
    with pytest.raises(InputError) as info:
        policies.decide_many(LISTINGS[:2], **{name: [0] if name != "at" else ["2024-07-20"]})
    assert f"{name}: 1 value for a batch of 2 listings (" in info.value.message


def test_a_bad_per_listing_value_is_that_records_error(policies: Policies) -> None:
    at: list[Any] = ["2024-07-20", "tomorrow", "2024-07-20", 17, "2024-07-20"]
    prior: list[Any] = [0, 0, -1, 0, 0]
    batch: list[Any] = [{}, {}, {}, {}, "not a listing"]
    results = policies.decide_many(batch, at=at, prior_violations=prior)
    assert isinstance(results[0], Decision)
    for n in (2, 3, 4, 5):
        error = results[n - 1]
        assert isinstance(error, DecisionError) and error.record == n
        with pytest.raises(InputError) as info:
            policies.decide(batch[n - 1], at=at[n - 1], prior_violations=prior[n - 1])
        assert error.message == info.value.message  # `at`, then prior, then the listing
    assert results[1].field == "at" and results[2].field == "prior_violations"  # type: ignore[union-attr]


def test_a_huge_negative_per_listing_prior_is_that_records_error(policies: Policies) -> None:
    """A prior of -10**5000 (whose str() raises ValueError) is an input error of its
    record, said in a bounded message; the others are decided."""
    results = policies.decide_many([{}] * 3, at="2024-07-20", prior_violations=[0, -10**5000, -1e300])
    assert isinstance(results[0], Decision)
    assert [(r.record, r.message) for r in results[1:] if isinstance(r, DecisionError)] == [
        (2, "prior_violations: expected a whole number >= 0, got a negative number of about 5000 digits"),
        (3, "prior_violations: expected a whole number >= 0, got -1e+300")]


@pytest.mark.parametrize("batch, words", [
    (None, "got null"), (5, "got the number 5"), ("abc", "got the text 'abc'"),
    (b"ab", "got a value of type bytes"),
    ({"category": "X"}, "got an object (one listing, not a batch: call decide for it, or pass [listing])"),
], ids=["None", "int", "str", "bytes", "dict"])
def test_what_is_no_batch_is_an_input_error_before_deciding(policies: Policies, batch: Any, words: str) -> None:
    """None, a number, text or bytes (whose characters are no listings), or a mapping (one
    listing, whose keys are no listings) raise InputError (field ``listings``) before
    anything is decided, with one value or one per listing."""
    for at in ("2024-07-20", ["2024-07-20"] * 3):
        with pytest.raises(InputError) as info:
            policies.decide_many(batch, at=at)
        assert info.value.field == "listings"
        assert info.value.message == f"listings: expected a list or another iterable of listings, {words}"


def test_any_iterable_of_listings_is_a_batch(policies: Policies) -> None:
    expected = policies.decide_many(LISTINGS, at=ATS, prior_violations=PRIORS)
    assert policies.decide_many(tuple(LISTINGS), at=ATS, prior_violations=PRIORS) == expected
    assert policies.decide_many((x for x in LISTINGS), at=ATS, prior_violations=PRIORS) == expected
    assert policies.decide_many(iter(LISTINGS), at="2024-07-20") == policies.decide_many(LISTINGS, at="2024-07-20")
    assert policies.decide_many({0: LISTINGS[0]}.values(), at="2024-07-20") == \
        policies.decide_many(LISTINGS[:1], at="2024-07-20")


def test_none_means_now_read_once_for_the_batch(policies: Policies) -> None:
    before = dt.datetime.now(dt.UTC)
    results = policies.decide_many([{}] * 3, at=[None, "2024-07-20", None])
    after = dt.datetime.now(dt.UTC)
    first, middle, last = (r.at for r in results if isinstance(r, Decision))
    assert first is last and before <= first <= after
    assert middle == dt.datetime(2024, 7, 20)


def test_the_at_memo_is_bounded_and_changes_nothing() -> None:
    policies = load_text(NEW_YORK, SHANGHAI)
    compiled = CompiledPolicySet(policies.policy_set)
    for _ in range(2):
        for at in ATS:
            assert compiled.decide({"category": "X"}, at) == policies.decide_reference({"category": "X"}, at=at)
    assert set(compiled._at_memo) == {at for at in ATS if isinstance(at, str)}
    for n in range(3000):  # bounded
        compiled.decide({}, f"2021-01-01T00:00:{n % 60:02d}.{n:06d}")
        assert len(compiled._at_memo) <= 1024
    for _ in range(2):  # an unreadable `at` raises every time (errors are not memoised)
        with pytest.raises(InputError, match="at"):
            compiled.decide({}, "tomorrow")


def test_long_at_strings_are_decided_but_not_memoised() -> None:
    """The memo is bounded in count; an `at` string padded with white space (readable) is
    read each time, so that distinct long strings cannot make it hold much memory."""
    import tracemalloc

    policies = load_text(NEW_YORK, SHANGHAI)
    compiled = CompiledPolicySet(policies.policy_set)
    def padded(n: int) -> str:
        return " " * (100_000 + n) + "2024-07-20"

    assert compiled.decide({"category": "X"}, padded(0)) == compiled.decide({"category": "X"}, "2024-07-20")
    tracemalloc.start()
    try:
        for n in range(30):
            compiled.decide({}, padded(n))
        compiled.decide_many([{}] * 30, [padded(n) for n in range(30, 60)])
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained < 1_000_000, retained
    assert all(len(at) <= 64 for at in compiled._at_memo)


def test_the_reference_reads_at_in_each_zone_first_as_decide_does(tmp_path: Path) -> None:
    """``at`` out of range in a policy's zone, with a bad prior or listing too: the same
    InputError from the reference (the oracle) as from ``decide`` (it checked the prior and
    the listing first, and gave their message)."""
    from dsl.evaluate.reference import decide_reference

    (tmp_path / "a.policy").write_text('policy a\n  timezone "Asia/Shanghai"\nrule r: block category \'X\'\n',
                                       encoding="utf-8")
    policies = dsl.load(tmp_path)
    for listing, prior in ((["not an object"], 0), ({"category": "X"}, -1)):
        with pytest.raises(InputError) as compiled:
            policies.decide(listing, at="0001-01-01", prior_violations=prior)
        with pytest.raises(InputError) as reference:
            decide_reference(policies.policy_set, listing, "0001-01-01", prior)
        assert (reference.value.message, reference.value.field) == (compiled.value.message, compiled.value.field)
        assert compiled.value.field == "at"
