"""`at` (spec section 5): what a decision reports, that it replays, and the daylight-saving
rules wherever a local time is read (windows, `at`, date literals, listing dates, test
`at`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import dsl
from dsl.checking.passes import build
from dsl.cli import main
from dsl.evaluate.outcome import format_instant
from dsl.evaluate.policies import Policies
from dsl.model import local_instant
from dsl.syntax import parse

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")


def load_text(*texts: str) -> Policies:
    files = [parse(text, f"p{i}.policy")[0] for i, text in enumerate(texts)]
    ps, diags = build(files, {})
    assert ps is not None, [d.message for d in diags]
    return Policies(ps)


def decisions(policies: Policies, listing: Any, at: Any) -> list[dict[str, Any]]:
    """The decision of every evaluator (compiled, batch, reference), as dictionaries."""
    [batch] = policies.decide_many([listing], at=at)
    assert isinstance(batch, dsl.Decision)
    return [d.to_dict() for d in (policies.decide(listing, at=at), batch, policies.decide_reference(listing, at=at))]


# ---------------------------------------------------------------- what is reported


@pytest.mark.parametrize("given_at, reported", [
    ("2024-07-20", "2024-07-20T00:00:00"),
    ("2024-07-19T23:59:59", "2024-07-19T23:59:59"),
    ("2024-07-19T23:59", "2024-07-19T23:59:00"),
    ("2024-07-19 23:59:59.25", "2024-07-19T23:59:59.250000"),
    ("2024-07-20T00:00:00-04:00", "2024-07-20T04:00:00Z"),
    ("2024-07-20T04:00:00.000001Z", "2024-07-20T04:00:00.000001Z"),
    (dt.date(2024, 7, 20), "2024-07-20T00:00:00"),
    (dt.datetime(2024, 7, 20, 8, 30), "2024-07-20T08:30:00"),
    (dt.datetime(2024, 7, 20, 8, 30, tzinfo=ZoneInfo("Europe/Paris")), "2024-07-20T06:30:00Z"),
])
def test_reported_at(given_at: Any, reported: str) -> None:
    policies = load_text('policy p\ntimezone "America/New_York"\nrule r: from 2024-07-20 block category \'X\'\n')
    for d in decisions(policies, {"category": "X"}, given_at):
        assert d["at"] == reported


def test_default_at_is_now_in_utc_and_replays() -> None:
    policies = load_text("policy p\nrule r: block category 'X'\n")
    d = policies.decide({"category": "X"})
    assert d.at.tzinfo is not None and d.to_dict()["at"].endswith("Z")
    again = policies.decide({"category": "X"}, at=d.to_dict()["at"])
    assert again.at == d.at  # fractions of a second are kept, so the instant is the same


def test_a_local_at_is_reported_as_given_whatever_the_timezones() -> None:
    """The decision of issue 9: a naive `at` used to be reported as read in the first
    policy's timezone, which another policy's window then contradicted."""
    policies = load_text(
        'policy east\ntimezone "Asia/Shanghai"\nrule r: from 2021-10-20 block category \'X\'\n',
        'policy west\ntimezone "America/New_York"\nrule r: from 2021-10-20 flag category \'X\'\n')
    d = policies.decide({"category": "X"}, at="2021-10-20")
    assert d.rules == ("east.r", "west.r") and d.to_dict()["at"] == "2021-10-20T00:00:00"
    text = policies.explain({"category": "X"}, at="2021-10-20")
    assert "blocked at 2021-10-20T00:00:00 (local time in each policy's timezone)" in text
    assert "in force from 2021-10-20 00:00 America/New_York (at is 2021-10-20 00:00 there)" in text
    assert "in force from 2021-10-20 00:00 Asia/Shanghai (at is 2021-10-20 00:00 there)" in text
    # The same instant given with an offset reads differently in each zone, and says so.
    text = policies.explain({"category": "X"}, at="2021-10-19T16:00:00Z")
    assert "blocked at 2021-10-19T16:00:00Z; 1 rule applied" in text
    assert "west.r (flag): not yet in force; it applies from 2021-10-20 00:00 America/New_York " \
           "(at is 2021-10-19 12:00 there)" in text


# ---------------------------------------------------------------- replay

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Shanghai",
         "America/Havana"]

REPLAY_SET = [
    f'policy p{i}\ntimezone "{zone}"\n'
    f"rule spring: from 2021-03-14T02:30 flag category 'X'\n"
    f"rule autumn: from 2021-11-07T01:30 until 2021-11-08 block category 'X'\n"
    f"rule day: from 2021-10-03 until 2021-10-04 flag category 'X'\n"
    f"rule dated: flag listed >= 2021-04-04T02:30\n"
    for i, zone in enumerate(ZONES)
]

# Instants near the daylight-saving changes of 2021 in these zones, and anywhere in 2021.
_CHANGES = [dt.datetime(2021, 3, 14, 7, tzinfo=UTC), dt.datetime(2021, 11, 7, 6, tzinfo=UTC),
            dt.datetime(2021, 3, 28, 1, tzinfo=UTC), dt.datetime(2021, 10, 31, 1, tzinfo=UTC),
            dt.datetime(2021, 4, 3, 15, tzinfo=UTC), dt.datetime(2021, 10, 2, 15, tzinfo=UTC),
            dt.datetime(2021, 4, 4, 3, tzinfo=UTC), dt.datetime(2021, 9, 5, 4, tzinfo=UTC)]
_instants = st.one_of(
    st.builds(lambda base, minutes, seconds: base + dt.timedelta(minutes=minutes, seconds=seconds),
              st.sampled_from(_CHANGES), st.integers(-24 * 60, 24 * 60), st.sampled_from([0, 0, 59, 30.5])),
    st.datetimes(min_value=dt.datetime(2021, 1, 1), max_value=dt.datetime(2022, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)),
)


def _as_given(instant: dt.datetime, form: str) -> Any:
    """An `at` as a caller might give it: naive (local text, a date, a naive datetime) or
    with an offset (text with Z or +hh:mm, an aware datetime)."""
    local = instant.astimezone(NEW_YORK)
    if form == "naive text":
        return local.replace(tzinfo=None).isoformat()
    if form == "date text":
        return local.date().isoformat()
    if form == "naive datetime":
        return local.replace(tzinfo=None)
    if form == "date":
        return local.date()
    if form == "offset text":
        return local.isoformat()
    return instant


@given(_instants, st.sampled_from(["naive text", "date text", "naive datetime", "date", "offset text", "aware"]),
       st.sampled_from([{"category": "X"}, {"category": "X", "listed": "2021-04-04T02:30"},
                        {"listed": "2021-04-04"}, {"listed": "2021-04-04T03:00:00+10:00"}]))
def test_deciding_again_at_the_reported_at_gives_the_same_decision(instant: dt.datetime, form: str,
                                                                  listing: dict[str, Any]) -> None:
    policies = _replay_policies()
    first = decisions(policies, listing, _as_given(instant, form))
    assert first[0] == first[1] == first[2]
    reported = first[0]["at"]
    assert reported.endswith("Z") == (form in ("offset text", "aware"))
    again = decisions(policies, listing, reported)
    assert again == first
    # The reported `at` is the form the spec gives: YYYY-MM-DDTHH:MM:SS[.ffffff][Z].
    assert format_instant(policies.decide(listing, at=reported).at) == reported


_POLICIES: list[Policies] = []


def _replay_policies() -> Policies:
    if not _POLICIES:
        _POLICIES.append(load_text(*REPLAY_SET))
    return _POLICIES[0]


# ---------------------------------------------------------------- a tzinfo that gives no offset


class _Offset(dt.tzinfo):
    """A caller's tzinfo whose ``utcoffset`` gives ``offset``, or raises it."""

    def __init__(self, offset: Any):
        self.offset = offset

    def utcoffset(self, _: dt.datetime | None) -> Any:
        if isinstance(self.offset, Exception):
            raise self.offset
        return self.offset

    def dst(self, _: dt.datetime | None) -> None:
        return None


@pytest.mark.parametrize("offset, words", [
    (dt.timedelta(hours=30), "ValueError: 'offset must be a timedelta strictly between"),
    (5, "TypeError: \"tzinfo.utcoffset() must return None or timedelta, not 'int'\""),
    (RuntimeError("boom " * 100), "RuntimeError: 'boom boom"),
], ids=["30 hours", "an int", "it raises"])
def test_an_at_whose_timezone_gives_no_valid_offset_is_an_input_error(offset: Any, words: str) -> None:
    """An aware ``at`` whose tzinfo's ``utcoffset`` raises, or returns what is no offset,
    is an input error (bounded) for every evaluator, and in a batch that listing's error
    alone."""
    policies = _replay_policies()
    at = dt.datetime(2021, 10, 15, tzinfo=_Offset(offset))
    for decide in (policies.decide, policies.decide_reference, policies.explain):
        with pytest.raises(dsl.InputError) as info:
            decide({"category": "X"}, at=at)
        assert info.value.field == "at" and len(info.value.message) < 200
        assert info.value.message.startswith(f"at: its timezone gives no valid offset: {words}")
    first, bad = policies.decide_many([{"category": "X"}] * 2, at=["2021-10-15", at])
    assert first == policies.decide({"category": "X"}, at="2021-10-15")
    assert isinstance(bad, dsl.DecisionError) and (bad.record, bad.field) == (2, "at")
    assert bad.message == info.value.message


# ---------------------------------------------------------------- daylight saving, everywhere


def test_one_statement_of_the_rules() -> None:
    # A time that does not occur reads with the offset before the change.
    assert local_instant(dt.datetime(2021, 3, 14, 2, 30), NEW_YORK) == dt.datetime(2021, 3, 14, 7, 30, tzinfo=UTC)
    # A time that occurs twice is the earlier instant.
    assert local_instant(dt.datetime(2021, 11, 7, 1, 30), NEW_YORK) == dt.datetime(2021, 11, 7, 5, 30, tzinfo=UTC)
    # A date is the first instant of its day: midnight, or the change that skipped it ...
    havana = ZoneInfo("America/Havana")
    assert local_instant(dt.date(2021, 3, 14), havana) == dt.datetime(2021, 3, 14, 5, tzinfo=UTC)
    # ... even where the change began before midnight (Toronto, 1919: 23:30 -> 00:30), where
    # midnight read with the offset before the change would be half an hour later.
    toronto = ZoneInfo("America/Toronto")
    first = local_instant(dt.date(1919, 3, 31), toronto)
    assert first == dt.datetime(1919, 3, 31, 4, 30, tzinfo=UTC)
    assert first.astimezone(toronto).date() == dt.date(1919, 3, 31)
    assert (first - dt.timedelta(microseconds=1)).astimezone(toronto).date() == dt.date(1919, 3, 30)


GAP_SET = ('policy ny\ntimezone "America/New_York"\n'
           "rule spring: from 2021-03-14T02:30 flag category 'X'\n"
           "rule autumn: from 2021-11-07T01:30 block category 'Y'\n"
           "rule dated: flag listed >= 2021-03-14T02:30\n")


@pytest.mark.parametrize("at, listing, rules", [
    # windows and `at`, gap: 02:30 on 14 March 2021 is 07:30Z
    ("2021-03-14T07:30:00Z", {"category": "X"}, ["ny.spring"]),
    ("2021-03-14T07:29:59Z", {"category": "X"}, []),
    ("2021-03-14T02:30", {"category": "X"}, ["ny.spring"]),
    ("2021-03-14T02:29:59", {"category": "X"}, []),
    # 03:00 local exists (EDT, 07:00Z): the wall clock reads later than 02:30, but the instant
    # is before 02:30 read with the offset before the change (07:30Z = 03:30 EDT)
    ("2021-03-14T03:00", {"category": "X"}, []),
    ("2021-03-14T03:30", {"category": "X"}, ["ny.spring"]),
    # overlap: 01:30 on 7 November 2021 is the earlier instant, 05:30Z
    ("2021-11-07T05:30:00Z", {"category": "Y"}, ["ny.autumn"]),
    ("2021-11-07T05:29:59Z", {"category": "Y"}, []),
    ("2021-11-07T01:30", {"category": "Y"}, ["ny.autumn"]),
    # listing date values read in the policy's timezone by the same rules
    ("2022-01-01", {"listed": "2021-03-14T02:30"}, ["ny.dated"]),
    ("2022-01-01", {"listed": "2021-03-14T02:29:59"}, []),
    ("2022-01-01", {"listed": "2021-03-14T07:30:00Z"}, ["ny.dated"]),
    ("2022-01-01", {"listed": "2021-03-14T07:29:59Z"}, []),
])
def test_gap_and_overlap_in_windows_at_and_listing_dates(at: str, listing: dict[str, Any], rules: list[str]) -> None:
    policies = load_text(GAP_SET)
    for d in decisions(policies, listing, at):
        assert d["rules"] == rules


def test_gap_and_overlap_in_test_files(tmp_path: Path) -> None:
    (tmp_path / "ny.policy").write_text(GAP_SET)
    (tmp_path / "ny_test.policy").write_text(
        'test "the gap time reads the offset before the change"\n'
        "  given {category: 'X'}\n  at 2021-03-14T02:30\n  expect flag by ny.spring\n"
        'test "a second before it"\n'
        "  given {category: 'X'}\n  at 2021-03-14T02:29:59\n  expect allow\n"
        'test "the repeated time is the earlier instant"\n'
        "  given {category: 'Y'}\n  at 2021-11-07T05:30:00Z\n  expect block by ny.autumn\n")
    result = CliRunner().invoke(main, ["test", str(tmp_path), "--format", "json"])
    outcomes = {r["name"]: r["outcome"] for r in json.loads(result.output)}
    assert outcomes == dict.fromkeys(outcomes, "pass") and len(outcomes) == 3, result.output
