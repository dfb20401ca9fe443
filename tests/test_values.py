"""Listing values as the evaluators read them (dsl.evaluate.values)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dsl.evaluate import values as R
from dsl.evaluate.outcome import InputError
from dsl.model import BUILTIN_FIELDS, FieldInfo

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
SANTIAGO = ZoneInfo("America/Santiago")


# ---------------------------------------------------------------- reading fields


def test_read_path_absent_cases() -> None:
    listing = {"seller": "S-100", "price": None, "a": {"b": {"c": 0}}, "flag": False, "empty": ""}
    assert R.read_path(listing, ("missing",)) is None
    assert R.read_path(listing, ("price",)) is None  # null is absent
    assert R.read_path(listing, ("seller", "country")) is None  # runs through a string
    assert R.read_path(listing, ("a", "b", "c")) == 0  # falsy values are present
    assert R.read_path(listing, ("flag",)) is False
    assert R.read_path(listing, ("empty",)) == ""
    assert R.read_path({"a": [{"b": 1}]}, ("a", "b")) is None  # lists are not objects


def test_read_path_deep_listing_does_not_recurse() -> None:
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    node["x"] = 1
    assert R.read_path(deep, ("a",) * 5000 + ("x",)) == 1
    assert R.read_path(deep, ("a",) * 6000) is None


@pytest.mark.parametrize("value, expected", [
    (1, True), (-3, True), (19.99, True), (0.0, True), (2**70, True),
    (True, False), (False, False), (math.nan, False), (math.inf, False), (-math.inf, False),
    ("1", False), (None, False), ([1], False),
])
def test_is_number(value: object, expected: bool) -> None:
    assert R.is_number(value) is expected


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize("text, expected", [
    ("2021-10-15", dt.date(2021, 10, 15)),
    ("2021-10-15T08:00", dt.datetime(2021, 10, 15, 8, 0)),
    ("2021-10-15 08:00:30", dt.datetime(2021, 10, 15, 8, 0, 30)),
    ("2021-10-15T08:00:00.5", dt.datetime(2021, 10, 15, 8, 0, 0, 500000)),
    ("2021-10-15T08:00:00.123456789Z", dt.datetime(2021, 10, 15, 8, 0, 0, 123456, tzinfo=UTC)),
    ("2021-10-15T08:00:00+08:00", dt.datetime(2021, 10, 15, 0, 0, tzinfo=UTC)),
    ("2021-10-15T08:00-05:30", dt.datetime(2021, 10, 15, 13, 30, tzinfo=UTC)),
])
def test_parse_iso_accepts(text: str, expected: object) -> None:
    got = R.parse_iso(text)
    assert got == expected
    if isinstance(expected, dt.datetime):
        assert (got.tzinfo is None) == (expected.tzinfo is None)  # type: ignore[union-attr]


@pytest.mark.parametrize("text", [
    "", "yesterday", "2021-2-3", "2021-02-30", "2021-13-01", "20211015", "2021-10-15Z",
    "2021-10-15T25:00", "2021-10-15T08:00+8", "2021-W41-1", "２０２１-10-15", "2021-10-15T08:00:00+24:00",
    "x" * 10_000,
])
def test_parse_iso_rejects(text: str) -> None:
    assert R.parse_iso(text) is None


def test_value_instant_reads_dates_in_the_policy_timezone() -> None:
    assert R.value_instant("2021-10-15", SHANGHAI) == dt.datetime(2021, 10, 14, 16, tzinfo=UTC)
    assert R.value_instant("2021-10-15T08:00", SHANGHAI) == dt.datetime(2021, 10, 15, 0, tzinfo=UTC)
    assert R.value_instant("2021-10-15T08:00Z", SHANGHAI) == dt.datetime(2021, 10, 15, 8, tzinfo=UTC)
    assert R.value_instant(dt.date(2021, 10, 15), SHANGHAI) == dt.datetime(2021, 10, 14, 16, tzinfo=UTC)
    assert R.value_instant(20211015, SHANGHAI) is None
    assert R.value_instant("0001-01-01", SHANGHAI) is None  # before the first representable instant


def test_skipped_midnight_is_the_first_instant_of_the_day() -> None:
    # Santiago moved its clocks from 00:00 to 01:00 on 2022-09-11.
    first = R.value_instant("2022-09-11", SANTIAGO)
    assert first == dt.datetime(2022, 9, 11, 4, tzinfo=UTC)
    assert first.astimezone(SANTIAGO).hour == 1  # type: ignore[union-attr]
    assert R.value_instant("2022-09-10T23:59:59", SANTIAGO) == first - dt.timedelta(seconds=1)  # type: ignore[operator]


# ---------------------------------------------------------------- at and prior


def test_parse_at_forms() -> None:
    now = R.parse_at(None)
    assert now.instant is not None and now.instant.tzinfo is not None
    aware = R.parse_at("2021-10-07T16:00:00Z")
    assert aware.instant == dt.datetime(2021, 10, 7, 16, tzinfo=UTC)
    assert aware.in_tz(SHANGHAI) == aware.instant
    naive = R.parse_at("2021-10-08")
    assert naive.instant is None
    assert naive.in_tz(SHANGHAI) == dt.datetime(2021, 10, 7, 16, tzinfo=UTC)
    assert naive.in_tz(ZoneInfo("UTC")) == dt.datetime(2021, 10, 8, tzinfo=UTC)
    assert R.parse_at(dt.date(2021, 10, 8)) == naive
    midnight = R.parse_at(dt.datetime(2021, 10, 8))  # a date-time: the same instants, reported alike
    assert midnight.in_tz(SHANGHAI) == naive.in_tz(SHANGHAI) and midnight.reported == naive.reported
    assert naive.reported == dt.datetime(2021, 10, 8) and naive.reported.tzinfo is None
    assert aware.reported == aware.instant
    berlin = dt.datetime(2021, 10, 8, 2, tzinfo=ZoneInfo("Europe/Berlin"))
    assert R.parse_at(berlin).instant == dt.datetime(2021, 10, 8, 0, tzinfo=UTC)
    assert R.parse_at(" 2021-10-08 ") == naive


@pytest.mark.parametrize("bad", ["tomorrow", "", "2021-02-30", 20211008, 1.5, True, [], {"at": 1}])
def test_parse_at_rejects(bad: object) -> None:
    with pytest.raises(InputError) as info:
        R.parse_at(bad)
    assert info.value.field == "at"
    assert "at:" in str(info.value)


def test_at_out_of_range_in_a_timezone() -> None:
    at = R.parse_at("0001-01-01")
    with pytest.raises(InputError):
        at.in_tz(SHANGHAI)


@pytest.mark.parametrize("good, expected", [(0, 0), (3, 3), (2.0, 2), (10**6, 10**6)])
def test_check_prior_accepts(good: object, expected: int) -> None:
    assert R.check_prior(good) == expected


@pytest.mark.parametrize("bad", [-1, 1.5, True, False, "1", None, math.nan, math.inf, [1]])
def test_check_prior_rejects(bad: object) -> None:
    with pytest.raises(InputError) as info:
        R.check_prior(bad)
    assert info.value.field == "prior_violations"


@pytest.mark.parametrize("bad, shown", [
    (-1, "got -1"), (-1.0, "got -1.0"), (1.5, "got 1.5"), (-1e300, "got -1e+300"),
    (-10**400, "got a negative number of about 400 digits"),
    (-10**5000, "got a negative number of about 5000 digits"),  # str() of it raises ValueError
], ids=["-1", "-1.0", "1.5", "-1e300", "-10**400", "-10**5000"])
def test_check_prior_shows_the_value_as_given_and_bounded(bad: object, shown: str) -> None:
    with pytest.raises(InputError) as info:
        R.check_prior(bad)
    assert info.value.message == f"prior_violations: expected a whole number >= 0, {shown}"


def test_check_listing() -> None:
    R.check_listing({})
    for bad in ([], "x", 3, None, ({"a": 1},)):
        with pytest.raises(InputError, match="must be a JSON object"):
            R.check_listing(bad)


# ---------------------------------------------------------------- text pieces


def test_text_pieces() -> None:
    assert R.text_pieces("a") == ("a",)
    assert R.text_pieces(["a", 1, None, "b", ["c"]]) == ("a", "b")
    assert R.text_pieces(3) == ()
    assert R.text_pieces({"a": "b"}) == ()
    assert R.listing_pieces({"title": "t", "description": ["d1", "d2"], "tags": ["x", 2]}) == ("t", "d1", "d2", "x")
    assert R.listing_pieces({"title": 7, "tags": "solo"}) == ("solo",)


# ---------------------------------------------------------------- kinds and warnings


@pytest.mark.parametrize("value, kind, expected", [
    ("abc", "text", True), (["abc"], "text", False), (3, "text", False),
    (3, "number", True), ("3", "number", False), (math.nan, "number", False), (True, "number", False),
    (True, "bool", True), (1, "bool", False),
    ("2021-10-15", "date", True), ("yesterday", "date", False), (dt.date(2021, 1, 1), "date", True),
    ("A > B", "category", True), (["A", "B"], "category", True), (42, "category", False),
    (["A", 7], "category", False),
    ("t", "textlike", True), (["a", "b"], "textlike", True), ([], "textlike", True), (["a", 1], "textlike", False),
    ({"a": 1}, "textlike", False),
])
def test_fits(value: object, kind: str, expected: bool) -> None:
    assert R.fits(value, kind) is expected


def test_one_warning_per_field() -> None:
    fields = [(("category",), frozenset({"category"})), (("price",), frozenset({"number", "text"})),
              (("title",), frozenset({"textlike"})), (("when",), frozenset({"date"}))]
    listing = {"category": 42, "price": ["1"], "title": ["ok", 3], "when": "yesterday"}
    warnings = R.input_warnings(listing, fields)
    assert len(warnings) == 4
    assert warnings[0].startswith("category: expected a category path")
    assert warnings[1].startswith("price: expected a number or text, got a list of 1 item")
    assert R.input_warnings({"price": "12", "when": "2021-01-01", "category": ["A"]}, fields) == ()
    assert R.input_warnings({}, fields) == ()  # absent fields are not ill-typed


def test_warning_bounds_huge_values() -> None:
    [warning] = R.input_warnings({"price": "x" * 1_000_000}, [(("price",), frozenset({"number"}))])
    assert len(warning) < 200 and "1000000 characters" in warning


# ---------------------------------------------------------------- schema


SCHEMA = dict(BUILTIN_FIELDS)
SCHEMA.update({
    ("price",): FieldInfo(("price",), "number", required=True),
    ("platform",): FieldInfo(("platform",), "one_of", ("taobao", "xianyu")),
    ("seller", "country"): FieldInfo(("seller", "country"), "text"),
    ("listed_on",): FieldInfo(("listed_on",), "date"),
    ("verified",): FieldInfo(("verified",), "bool"),
})


def test_schema_accepts_good_listings() -> None:
    R.validate_schema({"price": 3, "platform": "taobao", "seller": {"country": "CN"}, "listed_on": "2021-01-01",
                       "verified": True, "tags": ["a"], "category": ["A", "B"], "extra": {"anything": []}}, SCHEMA)
    R.validate_schema({"price": 1.5}, SCHEMA)
    R.validate_schema({"title": 3}, {})  # no schema: nothing is validated


@pytest.mark.parametrize("listing, field, words", [
    ({}, "price", "required but absent"),
    ({"price": None}, "price", "required but absent"),
    ({"price": "3"}, "price", "expected a finite number"),
    ({"price": math.nan}, "price", "expected a finite number"),
    ({"price": 1, "platform": "amazon"}, "platform", "expected one of 'taobao', 'xianyu'"),
    ({"price": 1, "seller": {"country": 86}}, "seller.country", "expected text"),
    ({"price": 1, "listed_on": "soon"}, "listed_on", "ISO date"),
    ({"price": 1, "verified": "yes"}, "verified", "true or false"),
    ({"price": 1, "title": ["a"]}, "title", "expected text"),
    ({"price": 1, "tags": "a"}, "tags", "list of text"),
    ({"price": 1, "category": 42}, "category", "category path"),
])
def test_schema_rejects(listing: dict, field: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        R.validate_schema(listing, SCHEMA)
    assert info.value.field == field
    assert words in str(info.value)


def test_schema_reports_every_problem() -> None:
    with pytest.raises(InputError) as info:
        R.validate_schema({"platform": 1, "verified": 0}, SCHEMA)
    assert len(info.value.problems) == 3
    assert info.value.field == "platform"


# ---------------------------------------------------------------- describe


def test_describe_never_prints_containers() -> None:
    deep: list = []
    node = deep
    for _ in range(10_000):
        node.append([])
        node = node[0]
    assert R.describe(deep) == "a list of 1 item"
    assert R.describe({"a": 1}) == "an object"
    assert R.describe(math.inf) == "the non-finite number inf"
    assert R.describe("x" * 1000).endswith("(1000 characters)")
    assert R.describe(None) == "null"
    assert R.describe(10**5000) == "a number of about 5000 digits"  # repr would refuse it


def test_a_listing_date_whose_tzinfo_gives_no_offset_is_no_date(tmp_path: Path) -> None:
    """A datetime from Python whose tzinfo raises (or gives no timedelta) is read as no date,
    as one out of range is, by every evaluator: decide raised the tzinfo's own error."""
    import datetime as dt

    import dsl

    class Broken(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            raise RuntimeError("no offset")

    class Number(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            return 5  # type: ignore[return-value]

    (tmp_path / "p.policy").write_text("policy p\nrule r: flag listed_on >= 2021-01-01\n")
    p = dsl.load(tmp_path)
    for tz in (Broken(), Number()):
        listing = {"listed_on": dt.datetime(2022, 1, 1, tzinfo=tz)}
        assert p.decide(listing, at="2022-06-01").effect == "allow"
        assert p.decide_reference(listing, at="2022-06-01").effect == "allow"
        assert p.decide_many([listing], at="2022-06-01")[0].effect == "allow"
    assert p.decide({"listed_on": dt.datetime(2022, 1, 1, tzinfo=dt.UTC)}, at="2022-06-01").effect == "flag"
