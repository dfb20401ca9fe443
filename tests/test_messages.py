"""Messages an author can act on (dsl.syntax.hints): for each mistake in tests/golden/messages,
`policy check` reports one finding, with a hint, and its text output matches the golden
file NAME.txt beside NAME.policy.

Regenerate the golden files with ``UPDATE_GOLDEN=1 python -m pytest tests/test_messages.py``
and review the diff."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import at_least

from dsl.cli import main
from dsl.syntax import parse
from dsl.syntax.hints import date_hint, duration_hint, iso_dates, suggest_timezone, timezone_hint

GOLDEN = Path(__file__).parent / "golden" / "messages"
CASES = sorted(p.name for p in GOLDEN.glob("*.policy"))


def check_in(tmp_path: Path, name: str, *args: str) -> str:
    """`policy check --no-analysis NAME` run in a folder holding only that file, so that
    no configuration above it and no other file changes what is reported."""
    shutil.copy(GOLDEN / name, tmp_path / name)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(main, ["check", "--no-analysis", *args, name])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 1, result.output
    return result.output


@pytest.mark.parametrize("name", CASES)
def test_message_golden(tmp_path: Path, name: str) -> None:
    actual = check_in(tmp_path, name)
    golden = GOLDEN / (name.removesuffix(".policy") + ".txt")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(actual, encoding="utf-8", newline="\n")
        return
    if not golden.exists():
        pytest.fail(f"golden file {golden} is missing; run with UPDATE_GOLDEN=1 and review it")
    assert actual == golden.read_text(encoding="utf-8"), \
        f"{golden.name} differs; run with UPDATE_GOLDEN=1 and review the diff"


@pytest.mark.parametrize("name", CASES)
def test_one_finding_with_a_hint(tmp_path: Path, name: str) -> None:
    (finding,) = json.loads(check_in(tmp_path, name, "--format", "json"))
    assert finding["code"] in ("P100", "P101", "P103", "P104")
    assert finding.get("hint")


def test_every_case_has_its_golden() -> None:
    assert len(CASES) >= 15
    texts = {p.name.removesuffix(".txt") for p in GOLDEN.glob("*.txt")}
    assert texts == {c.removesuffix(".policy") for c in CASES}


# ---------------------------------------------------------------- the pieces


def test_iso_dates() -> None:
    assert iso_dates("20/07/2024") == ["2024-07-20"]
    assert iso_dates("2024/7/20") == ["2024-07-20"]
    assert iso_dates("07-20-2024") == ["2024-07-20"]
    assert iso_dates("07/08/2024") == ["2024-08-07", "2024-07-08"]
    assert iso_dates("08/08/2024") == ["2024-08-08"]
    assert iso_dates("31/02/2024") == []
    assert iso_dates("20/07/24") == []  # a two-digit year is not guessed


def test_date_and_duration_hints() -> None:
    assert date_hint("20.07.2024") == "write dates as YYYY-MM-DD: 2024-07-20"
    assert date_hint("2021-2-3") == "write dates as YYYY-MM-DD: 2021-02-03"
    assert date_hint("2024-07-20") is None  # well written: not the problem
    assert date_hint("2024-02-30") is None
    assert date_hint("20.07.2024T9:30") == "write dates as YYYY-MM-DD: 2024-07-20T09:30"
    assert duration_hint("7days").startswith("write `7d`:")
    assert duration_hint("1month").startswith("write `30d` (a month is written 30d):")
    assert duration_hint("3hours").startswith("write `3h`:")
    assert duration_hint("0days") is None
    assert duration_hint("30x") is None


def test_timezone_suggestions() -> None:
    assert suggest_timezone("America/NewYork") == "America/New_York"
    assert suggest_timezone("america/new york") == "America/New_York"
    assert suggest_timezone("Europe/Bruxelles") == "Europe/Brussels"
    assert suggest_timezone("Asia/Shangai") == "Asia/Shanghai"
    assert suggest_timezone("Brussels") == "Europe/Brussels"
    assert suggest_timezone("Nowhere/Qqqqqqq") is None
    assert "IANA name such as" in timezone_hint("Nowhere/Qqqqqqq")


def hint_of(text: str, test_file: bool = False) -> tuple[str, str | None, int, int]:
    _, diags = parse(text, "t.policy", test_file=test_file)
    (d,) = diags
    return d.message, d.hint, d.span.line, d.span.column


def test_near_keywords() -> None:
    msg, hint, _, col = hint_of("policy p\nrule r: block categry 'X'\n")
    assert hint == "did you mean `category`? write `category 'X' …`" and col == 15
    _, hint, _, _ = hint_of("policy p\nrule r: block title mention 'x'\n")
    assert hint == "did you mean `mentions`?"
    _, hint, _, _ = hint_of("test 'x' given {a: 1} at 2024-07-20 expect blocking\n", test_file=True)
    assert hint == "did you mean `block`?"


def test_apostrophes_and_quotes() -> None:
    msg, hint, _, col = hint_of("policy p\nrule r: block because 'the seller's notice'\n")
    assert "ends at the apostrophe of `seller's`" in msg and col == 34
    assert hint is not None and hint.endswith('double quotes: "the seller\'s notice"')
    # a double quote inside: escaping is the way
    _, hint, _, _ = hint_of("policy p\nrule r: block because 'a \"b\" c's d'\n")
    assert hint is not None and hint.endswith("escape it: 'a \"b\" c\\'s d'")
    # the string before is in double quotes: its apostrophe is not the problem
    _, hint, _, _ = hint_of("policy p\nrule r: block mentions \"it's\" or title == 'x'y'\n")
    assert hint is not None and hint.endswith('"x\'y"')
    # a typographic apostrophe inside typographic quotes stays, straight quotes around it
    _, hint, _, _ = hint_of("policy p\nrule r: block mentions any [\u2018Kaspersky\u2019s\u2019, 'x']\n")
    assert hint is not None and "'Kaspersky\u2019s'" in hint


def test_dates_and_times() -> None:
    _, hint, _, _ = hint_of("test 'x' given {a: 1} at '2024-07-20T10:00' expect block\n", test_file=True)
    assert hint == "write date-times as YYYY-MM-DDTHH:MM without quotes: 2024-07-20T10:00"
    _, hint, _, _ = hint_of("test 'x' given {a: 1} at 2024-07-20 9:00 expect block\n", test_file=True)
    assert hint == "write `2024-07-20T09:00`: a `T` joins the date and the time"
    _, hint, line, col = hint_of("policy p\nrule r: from 2024-07-20 10:00 block\n")
    assert hint == "write `2024-07-20T10:00`: a `T` joins the date and the time" and (line, col) == (2, 14)


def test_missing_colon_keeps_the_rest_of_the_file() -> None:
    f, diags = parse("policy p\nrule r from 2024-01-01 block category 'X'\nrule s: flag category 'Y'\n", "t.policy")
    assert [(d.code, d.span.line, d.span.column) for d in diags] == [("P100", 2, 7)]
    assert diags[0].hint == "write `rule r: from …`"
    assert [s.name.name for s in f.statements] == ["s"]  # type: ignore[union-attr]


@settings(max_examples=at_least(200), deadline=None)
@given(st.lists(st.sampled_from(
    ["rule", "r", ":", " ", "\n", "from", "until", "at", "for", "7", "days", "2024-07-20", "10:00",
     "20/07/2024", "'", '"', "\u2018", "\u2019", "\u201c", "\u201d", "s", "block", "blocked",
     "mention", "any", "[", "]", "'x'", "category", "test", "given", "{a: 1}", "expect",
     "penalty", "suspend", "account", "#"]), max_size=20), st.booleans())
def test_hints_never_crash(words: list[str], test_file: bool) -> None:
    _, diags = parse("".join(words), "t.policy", test_file=test_file)
    for d in diags:
        assert d.span is not None and d.span.column >= 1 and d.span.end_column > d.span.column
