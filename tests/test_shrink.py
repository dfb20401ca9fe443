"""The counterexample shrinker: the result still fails, is never larger in any component,
is deterministic, and is small for the usual shapes of counterexample."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_testing_support import CONFORMANCE_TESTS

from dsl.api import compile_paths
from dsl.evaluate.policies import Policies
from dsl.syntax import ast as A
from dsl.testing.attack import counterexamples
from dsl.testing.claims import Claim
from dsl.testing.shrink import Counterexample, _ddmin, listing_size, number_cost, shrink, size
from dsl.testing.vocab import Vocabulary
from dsl.text import normalize_text

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = dt.datetime(2021, 10, 9, 13, 27, 45, 123000, tzinfo=UTC)


def cx(listing: dict[str, Any], at: dt.datetime = AT, prior: int = 0) -> Counterexample:
    return Counterexample(listing, at, prior)


def mentions_bitcoin(c: Counterexample) -> bool:
    def walk(v: Any) -> bool:
        if isinstance(v, str):
            return "bitcoin" in normalize_text(v)
        if isinstance(v, dict):
            return any(walk(x) for x in v.values())
        if isinstance(v, list):
            return any(walk(x) for x in v)
        return False

    return walk(c.listing)


# ---------------------------------------------------------------- examples


def test_fields_go_and_strings_shrink_to_the_phrase() -> None:
    big = cx({"title": "Used Antminer S19 for Bitcoin mining, 95 TH/s", "price": 1999.99,
              "seller": {"id": "S-100", "country": "CN"}, "tags": ["asic", "miner"]}, prior=5)
    small = shrink(big, mentions_bitcoin, phrases=["bitcoin", "mining"])
    assert small.listing == {"title": "bitcoin"}
    assert small.prior_violations == 0
    assert small.at == dt.datetime(2021, 10, 9, tzinfo=UTC)  # midnight (UTC here)


def test_a_list_of_one_item_becomes_the_item() -> None:
    small = shrink(cx({"title": ["Antminer", "Bitcoin miner"]}), mentions_bitcoin, phrases=["bitcoin"])
    assert small.listing == {"title": "bitcoin"}


def test_at_moves_to_the_anchor_or_to_midnight_in_the_timezone() -> None:
    start = dt.datetime(2021, 10, 7, 16, tzinfo=UTC)  # 2021-10-08 00:00 in Shanghai
    after_start = shrink(cx({}), lambda c: c.at >= start, tz=SHANGHAI, anchor=start)
    assert after_start.at == start
    late = dt.datetime(2021, 10, 9, 5, 30, tzinfo=UTC)
    after_late = shrink(cx({}), lambda c: c.at >= late, tz=SHANGHAI, anchor=start)
    assert after_late.at == dt.datetime(2021, 10, 9, 16, tzinfo=UTC)  # midnight 10 October in Shanghai


def test_an_instant_a_microsecond_from_another_is_another_far_in_the_future() -> None:
    """The memo of what was asked keyed ``at`` by its float timestamp, which after the year
    2514 cannot tell microseconds apart: midnight was taken for the microsecond before it,
    already known to fail, and the shrunk counterexample broke nothing."""
    last = dt.datetime(2599, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert last.timestamp() == (last + dt.timedelta(microseconds=1)).timestamp()  # why
    small = shrink(cx({"title": "x"}, last), lambda c: c.at == last)
    assert small.at == last


def test_prior_violations_go_down_as_far_as_they_can() -> None:
    assert shrink(cx({}, prior=37), lambda c: c.prior_violations >= 3).prior_violations == 3
    assert shrink(cx({}, prior=37), lambda c: True).prior_violations == 0


def test_numbers_round() -> None:
    assert shrink(cx({"price": 1234.5678}), lambda c: c.listing.get("price", 0) > 1000).listing == {"price": 2000}
    assert shrink(cx({"price": 19.99}), lambda c: "price" in c.listing).listing == {"price": 0}
    small = shrink(cx({"price": 19.99}), lambda c: 19 < c.listing.get("price", 0) < 20)
    assert small.listing == {"price": 19.9}
    assert number_cost(2000) < number_cost(1234) < number_cost(1234.5)
    assert number_cost(20) < number_cost(20.0) < number_cost(19.99)


def test_category_paths_lose_segments() -> None:
    def miners(c: Counterexample) -> bool:
        cat = c.listing.get("category")
        segs = [s.strip() for s in (cat.split(">") if isinstance(cat, str) else cat or [])]
        return "Blockchain Miners" in segs

    for category in ("Electronics > Blockchain Miners > ASIC > S19",
                     ["Electronics", "Blockchain Miners", "ASIC"]):
        small = shrink(cx({"category": category, "title": "x"}), miners)
        assert small.listing == {"category": "Blockchain Miners"}


def test_a_candidate_that_passes_is_returned_unchanged() -> None:
    c = cx({"title": "x"}, prior=3)
    assert shrink(c, lambda _c: False) is c


def test_the_budget_bounds_the_checks() -> None:
    calls = 0

    def fails(c: Counterexample) -> bool:
        nonlocal calls
        calls += 1
        return mentions_bitcoin(c)

    shrink(cx({f"f{i}": f"word {i} bitcoin" for i in range(30)}), fails, max_checks=25)
    assert calls <= 25


def test_ddmin_finds_a_one_minimal_subset() -> None:
    assert _ddmin(list(range(10)), lambda s: {3, 7} <= set(s)) == [3, 7]
    assert _ddmin(list(range(10)), lambda s: True) == []
    assert _ddmin([1], lambda s: 1 in s) == [1]


# ---------------------------------------------------------------- properties

json_scalars = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6),
                         st.floats(-1e6, 1e6, allow_nan=False), st.booleans(), st.none())
listings = st.dictionaries(st.sampled_from(["title", "description", "price", "seller", "tags", "x"]),
                           st.recursive(json_scalars, lambda inner: st.one_of(
                               st.lists(inner, max_size=3),
                               st.dictionaries(st.sampled_from(["id", "country", "y"]), inner, max_size=3)),
                               max_leaves=6),
                           max_size=5)
instants = st.datetimes(dt.datetime(2015, 1, 1), dt.datetime(2030, 1, 1), timezones=st.just(UTC))


@given(listings, st.text(max_size=8), instants, st.integers(0, 20))
def test_shrinking_keeps_the_failure_and_never_grows(listing: dict[str, Any], noise: str, at: dt.datetime,
                                                    prior: int) -> None:
    listing = {**listing, "title": f"{noise} Bitcoin {noise}"}
    original = cx(listing, at, prior)
    small = shrink(original, mentions_bitcoin, phrases=["bitcoin"], tz=SHANGHAI)
    assert mentions_bitcoin(small)
    assert size(small, SHANGHAI).within(size(original, SHANGHAI))
    assert listing_size(small.listing) <= len("bitcoin") + 1
    assert shrink(original, mentions_bitcoin, phrases=["bitcoin"], tz=SHANGHAI) == small  # deterministic


@given(listings, instants, st.integers(0, 20))
def test_shrinking_a_numeric_condition(listing: dict[str, Any], at: dt.datetime, prior: int) -> None:
    def fails(c: Counterexample) -> bool:
        price = c.listing.get("price")
        is_number = isinstance(price, (int, float)) and not isinstance(price, bool)
        return is_number and price > 100 and c.prior_violations >= 2

    listing = {**listing, "price": 1234.5678}
    original = cx(listing, at, max(prior, 2))
    small = shrink(original, fails)
    assert fails(small)
    assert size(small).within(size(original))
    assert set(small.listing) == {"price"} and small.prior_violations == 2


# ---------------------------------------------------------------- real claims


def _claims() -> list[Claim]:
    model, loaded, _ = compile_paths([CONFORMANCE_TESTS])
    assert model is not None
    policies = Policies(model)
    out = []
    for s in loaded.test_files[0].statements:
        if isinstance(s, A.Assertion) and s.name.value in ("graphics cards stay on sale, naive",
                                                           "a claim without its window fails"):
            out.append(Claim.of(model, policies, s, SHANGHAI))
    return out


CLAIMS = _claims() if CONFORMANCE_TESTS.exists() else []


@pytest.mark.skipif(not CLAIMS, reason="../shared/conformance is not beside the repository")
@given(st.data())
def test_shrunk_counterexamples_of_real_claims_still_break_them(data: st.DataObject) -> None:
    claim = data.draw(st.sampled_from(CLAIMS))
    vocab = Vocabulary.of(claim.ps, [claim.expr], [claim.start, claim.end])
    original = data.draw(counterexamples(claim, vocab))
    assume(claim.broken_by(original))
    anchor = claim.start or vocab.instants[0]
    small = shrink(original, claim.broken_by, phrases=vocab.strings(), tz=SHANGHAI, anchor=anchor)
    assert claim.broken_by(small)
    assert size(small, SHANGHAI, anchor).within(size(original, SHANGHAI, anchor))
    assert listing_size(small.listing) <= listing_size(original.listing)
    local = small.at.astimezone(SHANGHAI)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert small.prior_violations == 0
