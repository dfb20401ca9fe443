"""The consistency analysis (P300–P304, P399) and the assertion prover: the conformance
cases, the encoding piece by piece (phrases, word boundaries, categories, absent and
ill-typed fields, windows in time zones, regular expressions), and replayed witnesses.

Hypothesis soundness tests on generated policy sets are in ``test_analysis_properties.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dsl.analysis import analyze, prove_assertion, stats
from dsl.checking.frontend import compile_paths
from dsl.checking.passes import build, resolve_sets
from dsl.diagnostics import Diagnostic
from dsl.evaluate.reference import decide_reference, holds
from dsl.model import PolicySet, when_instant
from dsl.syntax import ast as A
from dsl.syntax import parse
from dsl.testing.scope import file_scope, restrict

CHECK_DIR = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "check"
TESTS_DIR = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "tests"
UTC = ZoneInfo("UTC")


def model(*texts: str) -> PolicySet:
    """A checked policy set from policy texts (file i is ``p<i>.policy``)."""
    files, sources = [], {}
    for i, text in enumerate(texts):
        path = f"p{i}.policy"
        f, diags = parse(text, path)
        assert not diags, diags
        files.append(f)
        sources[path] = text
    ps, diags = build(files, sources)
    assert ps is not None, [d.message for d in diags]
    return ps


def found(*texts: str) -> list[Diagnostic]:
    return analyze(model(*texts))


def keys(diags: list[Diagnostic], *codes: str) -> list[tuple[str, int]]:
    return sorted((d.code, d.span.line) for d in diags if d.span and (not codes or d.code in codes))


def replay(ps: PolicySet, witness: dict[str, Any]) -> Any:
    return decide_reference(ps, witness["listing"], witness["at"], witness["prior_violations"])


def prove(ps: PolicySet, quantifier: str, effect: str, expr_text: str, *, tz: str = "UTC",
          start: str | None = None, end: str | None = None) -> Any:
    """prove_assertion on an expression written in the language (set references resolved)."""
    f, diags = parse(f"assert \"x\" {'from ' + start if start else ''} {'until ' + end if end else ''} "
                     f"{quantifier} {effect} {expr_text}", "x_test.policy", test_file=True)
    assert not diags, diags
    a = f.statements[0]
    assert isinstance(a, A.Assertion)
    zone = ZoneInfo(tz)
    expr = resolve_sets(a.expr, ps.sets)
    result = prove_assertion(ps, quantifier=quantifier, effect=effect, expr=expr, tz=zone,
                             start=when_instant(a.from_, zone), end=when_instant(a.until, zone))
    if result.outcome == "fail":
        cx = result.counterexample
        d = replay(ps, cx)
        assert holds(expr, cx["listing"], zone)
        assert (d.effect == effect) == (quantifier == "never"), (cx, d.to_dict())
    return result


# ------------------------------------------------------------------ conformance cases

_EXPECT = re.compile(r"#\s*expect:\s*(.*)$")


def _expectations(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _EXPECT.search(line)
        if m and m.group(1).strip() != "nothing":
            code, _, where = m.group(1).strip().partition(" at ")
            out.append((code, int(where.split(":")[0])))
    return out


CASES = sorted(p for p in CHECK_DIR.glob("*.policy") if "09" <= p.name[:2] <= "16") if CHECK_DIR.exists() else []


@pytest.mark.skipif(not CASES, reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_conformance_check_case(case: Path) -> None:
    text = case.read_text(encoding="utf-8")
    f, parse_diags = parse(text, str(case))
    ps, diags = build([f], {str(case): text})
    diags = list(parse_diags) + list(diags)
    if ps is not None:
        diags += analyze(ps)
    expected = _expectations(case)
    listed = {code for code, _ in expected}
    got = sorted((d.code, d.span.line) for d in diags
                 if d.span and (d.severity in ("error", "warning") or d.code in listed))
    assert got == sorted(expected), [(d.code, d.span.line, d.message) for d in diags]
    for d in diags:
        if d.witness is not None:
            assert ps is not None
            replay(ps, d.witness)


def test_redundant_case_names_narrow_and_not_distinct() -> None:
    ps = model((CHECK_DIR / "10-redundant.policy").read_text(encoding="utf-8")) if CHECK_DIR.exists() else model(
        "policy redundant\nladder l = remove listing then close account\n"
        "rule broad: block category 'Blockchain Miners' penalty l\n"
        "rule narrow: from 2022-01-01 block category 'Blockchain Miners' and price > 5 penalty remove listing\n"
        "rule distinct: from 2022-01-01 block category 'Blockchain Miners' and price > 5 penalty close account\n")
    redundant = [d.message for d in analyze(ps) if d.code == "P301"]
    assert len(redundant) == 1 and "'redundant.narrow'" in redundant[0]


def _test_file_cases() -> list[tuple[str, str, str]]:
    """(suite/test file, assertion name, expected outcome) for every assertion of the
    corpus's tests/ suites (one folder each)."""
    if not TESTS_DIR.exists():
        return []
    out = []
    for path in sorted(TESTS_DIR.glob("*/*_test.policy")):
        want = None
        for line in path.read_text(encoding="utf-8").splitlines():
            m = _EXPECT.search(line)
            if m:
                want = m.group(1).split()[0]
            elif line.startswith("assert ") and want is not None:
                out.append((f"{path.parent.name}/{path.name}", line.split('"')[1], want))
                want = None
            elif line.startswith("test "):
                want = None
    return out


def test_the_corpus_has_assertions() -> None:
    """The parametrised test below must not run out of cases unseen (it once did, when
    the corpus moved its suites into folders)."""
    if TESTS_DIR.exists():
        assert len(_test_file_cases()) >= 6


@pytest.mark.skipif(not TESTS_DIR.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("name,title,want", _test_file_cases(), ids=lambda v: str(v)[:40])
def test_conformance_assertions(name: str, title: str, want: str) -> None:
    """The assertions of the conformance test files pass or fail as their comments say,
    decided against the policies the file is scoped to (`tests for`), or the whole suite."""
    test_path = TESTS_DIR / name
    model, loaded, _ = compile_paths([test_path.parent])
    assert model is not None
    (tf,) = [f for f in loaded.test_files if f.path == str(test_path)]
    ps = restrict(model, file_scope(tf, [p.name for p in model.policies]))
    (a,) = [s for s in tf.statements if isinstance(s, A.Assertion) and s.name.value == title]
    (tz,) = {p.tz for p in ps.policies}
    expr = resolve_sets(a.expr, dict(ps.sets))
    result = prove_assertion(ps, quantifier=a.quantifier, effect=a.effect, expr=expr, tz=tz,
                             start=when_instant(a.from_, tz), end=when_instant(a.until, tz))
    assert result.outcome == want, result
    if result.outcome == "fail":
        d = replay(ps, result.counterexample)
        assert (d.effect == a.effect) == (a.quantifier == "never")


# ------------------------------------------------------------------ text


def test_phrase_implication_makes_the_longer_phrase_redundant() -> None:
    diags = found("policy p\nrule carved: block mentions 'carved ivory'\nrule ivory: block mentions 'ivory'\n")
    assert keys(diags) == [("P301", 2)]


def test_whoever_mentions_carved_ivory_mentions_ivory() -> None:
    ps = model("policy p\nrule ivory: block mentions 'ivory'\n")
    assert prove(ps, "always", "block", "mentions 'carved ivory'").outcome == "pass"
    assert prove(ps, "always", "block", "mentions 'ivory carving'").outcome == "pass"
    assert prove(ps, "always", "block", "mentions 'ivorycoast'").outcome == "fail"


def test_word_boundaries() -> None:
    ps = model("policy p\nrule ivory: block title mentions 'ivory'\n")
    # 'ivorycoast' does not mention 'ivory', but contains it
    r = prove(ps, "always", "block", "title contains 'ivory'")
    assert r.outcome == "fail"
    title = r.counterexample["listing"]["title"]
    assert "ivory" in title.lower()
    assert prove(ps, "never", "block", "title == 'ivorycoast'").outcome == "pass"
    assert prove(ps, "always", "block", "title == 'Ivory Coast'").outcome == "pass"
    assert prove(ps, "always", "block", "title == 'IVORY'").outcome == "pass"
    # a phrase never spans two pieces of text
    ps2 = model("policy p\nrule r: block mentions 'carved ivory'\n")
    split = "title == 'carved' and description == 'ivory' and not tags exists"
    assert prove(ps2, "never", "block", split).outcome == "pass"


def test_mentions_and_contains_contradictions() -> None:
    diags = found("policy p\n"
                  "rule a: block title mentions 'ivory' and not title contains 'ivory'\n"
                  "rule b: block title contains 'ivory' and not title mentions 'ivory'\n"
                  "rule c: block title contains 'mining  rig' and not title contains 'mining'\n"
                  "rule d: block title mentions 'mining rig' and not title contains 'mining rig'\n"
                  "rule e: block title contains 'xmining  rigx' and not title mentions 'mining rig'\n"
                  "rule f: block title mentions 'mining rig' and not title contains ' mining rig'\n"
                  "rule g: block title mentions 'rhino\u2019s horn' and not title contains \"rhino's\thorn\"\n")
    # d, g: white space collapses and apostrophes fold in `contains` as in `mentions`, so
    # whoever mentions the phrase contains it; e: the needle's ends are word characters, so
    # the phrase inside it has no boundary; f: a needle keeps its white space at the ends
    assert keys(diags, "P300") == [("P300", 2), ("P300", 4), ("P300", 5), ("P300", 8)]


def test_normalisation_sees_through_evasions() -> None:
    """The analysis reads text as the evaluators do (spec section 4): ignorables removed,
    apostrophes and dashes folded, white space collapsed in `contains` too."""
    ps = model("policy p\nrule coins: block mentions 'bitcoin'\nrule horn: block mentions \"rhino's horn\"\n"
               "rule straws: block title contains 'plastic straw'\n")
    for title in ("Bit\\u{200b}coin miner", "bit\\u{ad}coin", "Rhino\\u{2019}s horn", "Rhino\\u{2bc}s horn",
                  "RHINO\\u{ff07}S\\u{3000} HORN", "Bitcoin\\u{2bc}s", "Plastic \\t straws", "象牙bitcoin摆件"):
        assert prove(ps, "always", "block", f"title == '{title}'").outcome == "pass", title
    for title in ("bitcoins", "bit coin", "rhino\\u{2033}s horn", "plastic-straw"):
        assert prove(ps, "never", "block", f"title == '{title}' and not description exists and not tags exists"
                     ).outcome == "pass", title
    # a counterexample is a raw text that the evaluators read as claimed (checked in prove)
    r = prove(ps, "never", "block", "title contains 'coin'")
    assert r.outcome == "fail"
    r = prove(ps, "always", "block", "title contains '\\u{2010}straw'")
    assert r.outcome == "fail"
    # the analysis knows that the folded and the typographic phrase are one phrase
    assert keys(found("policy p\n"
                      "rule a: block title mentions 'li\\u{2013}ion' and not title contains 'li-ion'\n"
                      "rule b: block title mentions 'e\\u{200b}ther' and not title mentions 'ether'\n"
                      "rule c: block title contains 'a \\u{ad} b' and not title contains 'a b'\n"),
                "P300") == [("P300", 2), ("P300", 3), ("P300", 4)]


def test_spaceless_scripts_need_no_boundary() -> None:
    ps = model("policy p\nrule coin: block mentions '比特币'\n")
    assert prove(ps, "always", "block", "title == '二手比特币矿机'").outcome == "pass"
    ps = model("policy p\nrule coin: block mentions 'bitcoin'\n")
    assert prove(ps, "always", "block", "title == '二手bitcoin矿机'").outcome == "pass"
    plural = "title == 'bitcoins' and not description exists and not tags exists"
    assert prove(ps, "never", "block", plural).outcome == "pass"


# ------------------------------------------------------------------ categories


def test_category_runs() -> None:
    diags = found("policy p\nrule slime-toys: block category 'Toys > Slime'\nrule slime: block category 'Slime'\n"
                  "rule nothing: block category 'Toys > Slime' and not category 'Slime'\n"
                  "rule other: block category 'Slime > Toys' and not category 'Toys > Slime'\n")
    assert keys(diags, "P300") == [("P300", 4)]
    assert keys(diags, "P301") == [("P301", 2), ("P301", 5)]


def test_two_categories_co_occur_in_one_path() -> None:
    ps = model("policy p\nladder soft = warn seller then remove listing\n"
               "ladder hard = remove listing then close account\n"
               "rule knives: block category 'Knives' penalty soft\nrule swords: block category 'Swords' penalty hard\n")
    (d,) = [d for d in analyze(ps) if d.code == "P304"]
    assert d.span.line == 5 and d.related and d.related[0].span.line == 4
    cat = d.witness["listing"]["category"]
    assert "Knives" in cat and "Swords" in cat
    dec = replay(ps, d.witness)
    assert {"p.knives", "p.swords"} <= set(dec.rules)



def test_ladders_overlap_where_the_samples_disagree_on_a_value() -> None:
    """The two rules' own samples may hold different platforms; the joined witness takes
    one both scopes admit (here only 'tmall'), and a price that both conditions accept."""
    ps = model("policy a\n  scope platform in ['taobao', 'tmall']\nladder soft = warn seller then remove listing\n"
               "rule x: block category 'Knives' and price > 10 penalty soft\n",
               "policy b\n  scope platform in ['tmall', 'lazada']\n"
               "rule y: block category 'Swords' and price > 500 penalty remove listing and deduct 2 points\n")
    diags = analyze(ps)
    p304 = [d for d in diags if d.code == "P304"]
    assert [(d.span.file, d.span.line) for d in p304] == [("p1.policy", 3)]
    (d,) = p304
    assert d.witness["listing"]["platform"] == "tmall" and d.witness["listing"]["price"] > 500
    assert {"a.x", "b.y"} <= set(replay(ps, d.witness).rules)


def test_joined_samples_try_each_value_where_they_disagree() -> None:
    from dsl.analysis.findings import _merges

    x = {"platform": "taobao", "price": 11, "category": "Knives"}
    y = {"platform": "lazada", "price": 501, "category": "Swords"}
    pool = {"platform": ["taobao", "tmall", "lazada"], "price": [11]}
    got = list(_merges(x, y, pool))
    assert got[0] == {"category": "Knives > Swords", "platform": "taobao", "price": 11}
    assert {"category": "Knives > Swords", "platform": "tmall", "price": 501} in got
    assert len(got) == len({repr(sorted(g.items())) for g in got}) == 3 * 2
    assert list(_merges({"a": 1}, {"b": 2}, pool)) == [{"a": 1, "b": 2}]
    assert list(_merges({"a": {"b": 1}}, {"a": {"b": 2}}, pool)) == []  # nested values are not chosen between

# ------------------------------------------------------------------ absent and ill-typed fields


def test_absent_fields_make_every_atom_false() -> None:
    diags = found("policy p\n"
                  "rule a: block seller.country != 'CN' and not seller.country exists\n"
                  "rule b: block not seller.country == 'CN' and not seller.country exists\n"
                  "rule c: block seller.country not in ['CN'] and not seller.country exists\n"
                  "rule d: block seller.country exists and seller exists and not seller.country == 'CN' "
                  "and not seller.country != 'CN'\n"
                  "rule e: block seller.country exists and not seller exists\n")
    assert keys(diags, "P300") == [("P300", 2), ("P300", 4), ("P300", 6)]


def test_ill_typed_values_make_atoms_false() -> None:
    ps = model("policy p\nrule r: block price exists and not price > 5 and not price <= 5\n")
    assert not [d for d in analyze(ps) if d.code == "P300"]
    r = prove(ps, "never", "block", "price exists")
    assert r.outcome == "fail"
    price = r.counterexample["listing"]["price"]
    assert isinstance(price, bool) or not isinstance(price, (int, float))


def test_numbers_compare_exactly() -> None:
    diags = found("policy p\nrule a: block price > 0.1 and price < 0.2\n"
                  "rule b: block price > 10 and price < 11 and price != 10.5\n"
                  "rule c: block price >= 3 and price <= 3 and price != 3\n")
    assert keys(diags, "P300") == [("P300", 4)]


def test_lists_and_strings() -> None:
    ps = model("policy p\nrule r: block note == 'x'\n")
    r = prove(ps, "never", "block", "note mentions 'x'")  # a string 'x' is both
    assert r.outcome == "fail" and r.counterexample["listing"]["note"] == "x"
    assert prove(ps, "always", "block", "note mentions 'x'").outcome == "fail"  # ['x'] is not == 'x'
    diags = found("policy p\nrule r: block note mentions 'x' and not note contains 'x'\n"
                  "rule s: block note mentions 'x' and note mentions 'y' and not note == 'x y'\n")
    assert keys(diags, "P300") == [("P300", 2)]


# ------------------------------------------------------------------ windows and time zones


def test_windows_read_in_the_policy_timezone() -> None:
    diags = found('policy p\n  timezone "Asia/Shanghai"\n'
                  "rule ban: until 2021-10-08 block category 'X'\n"
                  "rule ok: from 2021-10-08 allow category 'X' overrides ban\n")
    assert keys(diags) == [("P302", 4)]
    ps = model('policy p\n  timezone "Asia/Shanghai"\nrule ban: from 2021-10-08 block category \'X\'\n')
    r = prove(ps, "always", "block", "category 'X'", start="2021-10-07T16:00:00Z")
    assert r.outcome == "pass"
    r = prove(ps, "always", "block", "category 'X'", start="2021-10-07T15:59:59Z")
    assert r.outcome == "fail" and r.counterexample["at"] == "2021-10-07T15:59:59Z"


def test_naive_at_is_read_in_each_policy_timezone() -> None:
    # As instants the windows are disjoint (before 16:00Z, from 20:00Z), but a date-time
    # without an offset, 2021-10-07T22:00, is in both: before midnight in Shanghai and
    # after 20:00 in UTC.
    ps = model('policy east\n  timezone "Asia/Shanghai"\n'
               "rule a: until 2021-10-08 block category 'K' penalty remove listing\n",
               "policy west\nrule b: from 2021-10-07T20:00 block category 'K' penalty close account\n")
    (d,) = [d for d in analyze(ps) if d.code == "P304"]
    assert not d.witness["at"].endswith("Z")
    dec = replay(ps, d.witness)
    assert {"east.a", "west.b"} <= set(dec.rules)


def test_dates_in_listings() -> None:
    ps = model('policy p\n  timezone "Asia/Shanghai"\nrule r: block listed_on < 2021-10-08\n')
    assert prove(ps, "always", "block", "listed_on < 2021-10-07", tz="Asia/Shanghai").outcome == "pass"
    r = prove(ps, "always", "block", "listed_on < 2021-10-09", tz="Asia/Shanghai")
    assert r.outcome == "fail"
    diags = found("policy p\nrule a: block listed_on >= 2021-10-08 and listed_on < 2021-10-08T00:00:00+00:00\n"
                  "rule b: block listed_on > 2021-10-08T23:59:59.999999Z and listed_on < 2021-10-09\n")
    assert keys(diags, "P300") == [("P300", 2), ("P300", 3)]


def test_a_string_that_reads_as_a_naive_date_is_that_string() -> None:
    # Compared with ==, '2021-10-15' is a string like any other: a field read in at most
    # one timezone is modelled as an aware instant, and the literal, a naive reading, was
    # then impossible (the assertion below "passed", and the override was read as a
    # contradiction)
    for literal in ("'2021-10-15'", "'2021-10-15T00:00'"):
        ps = model(f"policy p\nrule d: flag listed == {literal}\n")
        r = prove(ps, "always", "block", f"listed == {literal}")
        assert r.outcome == "fail" and r.counterexample["listing"] == {"listed": literal.strip("'")}
        assert prove(ps, "always", "flag", f"listed == {literal}").outcome == "pass"
    ps = model("policy p\nrule d: flag listed >= 2021-10-15\n")
    assert prove(ps, "always", "flag", "listed == '2021-10-15T00:00'").outcome == "pass"
    assert prove(ps, "never", "flag", "listed in ['2021-10-14', '2021-10-14T23:59']").outcome == "pass"
    diags = found("policy r\nrule a: block listed == '2021-10-15'\n"
                  "rule b: allow listed == '2021-10-15' overrides a\n")
    (p300,) = [d for d in diags if d.code == "P300"]
    assert "overrides it" in p300.message and "contradictory" not in p300.message


def test_dates_the_solver_cannot_stand_for_are_undecided_not_proved() -> None:
    """The solver's dates stop a day short of the calendar's ends (so that each reads in
    every timezone), and read a date as its midnight: near the ends, or on a day whose
    midnight a clock change skips, what it proves may be false. Each of these was proved
    (a false P300, an assertion passed, a crash replaying a model)."""
    ps = model('policy p\n  timezone "America/New_York"\nrule live: block if expires > 2021-10-15\n')
    r = prove(ps, "always", "block", "expires == '9999-12-31T23:59:59'", tz="America/New_York")
    assert r.outcome == "undecided" and "near the ends of the calendar" in r.reason
    # not a date there (10000-01-01 in UTC): the evaluator allows it
    assert decide_reference(ps, {"expires": "9999-12-31T23:59:59"}, "2021-10-20T00:00:00Z", 0).effect == "allow"
    diags = found("policy a\nrule r1: block if (x == '0001-01-01' or x == 'zz') and x == 0001-01-01\n"
                  "rule r2: block if (y == '9999-12-31T12:00' or y == 'zz') and y > 9999-12-31\n")
    assert keys(diags, "P300", "P399") == [("P399", 2), ("P399", 3)]
    ps = model('policy b\n  timezone "Asia/Shanghai"\nrule r1: flag if x == \'0001-01-01\'\n'
               "rule r2: block if x not in [2021-10-15]\n")
    assert [d.code for d in analyze(ps) if d.code in ("P300", "P399")] in ([], ["P399"])  # no crash
    assert prove(ps, "always", "block", "x == '0001-01-01'", tz="Asia/Shanghai").outcome == "undecided"
    # America/Toronto, 1919-03-31: the clock jumped from 23:30 to 00:30, the day starts at 04:30Z
    ps = model('policy a\n  timezone "America/Toronto"\n'
               "rule r1: block if (d == '1919-03-31' or d == 'zz') and d == 1919-03-31T04:30Z\n")
    (d,) = [d for d in analyze(ps) if d.code in ("P300", "P399")]
    assert d.code == "P399" and "midnight a clock change skips" in d.message
    assert decide_reference(ps, {"d": "1919-03-31"}, "2020-01-01T00:00:00Z", 0).rules == ("a.r1",)
    assert prove(ps, "never", "block", "d == '1919-03-31'", tz="America/Toronto").outcome == "undecided"
    # a window near the end
    diags = found("policy w\nrule r: from 9999-12-31 block category 'X'\n")
    assert [d.code for d in diags if d.code in ("P300", "P399")] in ([], ["P399"])


# ------------------------------------------------------------------ regular expressions


def test_regex_translation() -> None:
    diags = found("policy p\n"
                  r"rule a: block sku matches /^CM-\d{4}$/ and sku == 'CM-12345'" "\n"
                  r"rule b: block sku matches /CM-\d{4}/ and sku == 'CM-12345'" "\n"
                  r"rule c: block sku matches /\bS19\b/ and not sku matches /S19/" "\n"
                  r"rule d: block sku matches /^cm-/i and not sku matches /^CM-/" "\n"
                  r"rule e: block sku matches /^CM-/ and not sku matches /^cm-/i" "\n"
                  r"rule f: block sku matches /colou?r|[[:digit:]]{2,3}x/ and not sku matches /colour|\d{3}x/" "\n"
                  r"rule g: block sku matches /a.b/ and not sku matches /a[^\n]b/" "\n")
    assert keys(diags, "P300", "P399") == [("P300", 2), ("P300", 4), ("P300", 6), ("P300", 8)]


def test_characters_beyond_what_z3_strings_hold_are_undecided_not_impossible() -> None:
    # z3's strings hold code points up to U+2FFFF: a class of characters all beyond it had
    # no representative, so a pattern that needs one seemed never to match (a false P300)
    diags = found("policy p\n"
                  r"rule a: block title matches /\x{30000}/" "\n"
                  r"rule b: block title matches /[\x{30000}-\x{10FFFF}]/" "\n"
                  r"rule c: block title matches /a.b/ and not title matches /a[\x{0}-\x{2FFFF}]b/" "\n"
                  r"rule d: block title matches /\x{2FFFF}/" "\n"
                  r"rule e: block title matches /x/ and not title matches /x/" "\n")
    assert keys(diags, "P300", "P399") == [("P300", 6), ("P399", 2), ("P399", 3), ("P399", 4)]
    assert all("beyond U+2FFFF" in d.message for d in diags if d.code == "P399")
    ps = model("policy p\n" r"rule a: flag title matches /\x{30000}/" "\n")
    assert decide_reference(ps, {"title": "\U00030000"}, "2021-01-01T00:00:00Z", 0).effect == "flag"
    assert prove(ps, "never", "flag", "title contains 'x'").outcome != "pass"  # not proved on a false ground


def test_unsupported_regex_is_undecided_not_guessed() -> None:
    diags = found("policy p\nrule a: block sku matches /(?s)a.b/ and not sku matches /(?s)a.b/\n")
    # the two atoms are the same, so the contradiction is propositional: still exact
    assert keys(diags, "P300", "P399") == [("P300", 2)]
    diags = found("policy p\nrule a: block sku matches /(?s)a.b/ and sku == 'xyz'\n")
    assert keys(diags, "P300", "P399") == [("P300", 2)]  # the literal is tested with RE2 itself
    diags = found("policy p\nrule a: block sku matches /(?s)a.b/ and not sku matches /a/\n")
    assert keys(diags, "P300", "P399") == [("P399", 2)]


def test_matches_and_mentions_on_one_field() -> None:
    ps = model("policy p\nrule r: block title matches /^[a-z ]+$/ and title mentions 'bitcoin'\n")
    assert not [d for d in analyze(ps) if d.code in ("P300", "P399")]
    # raw upper case, normalised lower case: a real listing ("BITCOIN") exists, the
    # analysis cannot build it and says so rather than claiming P300
    ps = model("policy p\nrule r: block title matches /^BITCOIN$/ and title mentions 'bitcoin'\n")
    assert keys(analyze(ps), "P300", "P399") == [("P399", 2)]


# ------------------------------------------------------------------ overrides, ladders, schema


def test_p303_witness_replays_and_names_the_rule() -> None:
    ps = model("policy p\nrule ban: block category 'M'\nrule review: flag category 'M' and price > 5000\n"
               "rule licensed: allow category 'M' and seller in ['S-1'] overrides ban\n")
    (d,) = [d for d in analyze(ps) if d.code == "P303"]
    assert "'p.review' still flags" in d.message and d.span.line == 4
    dec = replay(ps, d.witness)
    assert dec.effect == "flag" and "p.ban" in dec.overridden
    assert d.witness["at"].endswith("Z") and d.witness["prior_violations"] == 0


def test_always_overridden() -> None:
    diags = found("policy p\nrule ban: block category 'M'\nrule ok: allow category 'M' overrides ban\n"
                  "rule other: block category 'M' and price > 5\n")
    assert keys(diags) == [("P300", 2), ("P303", 3)]
    assert "overrides it" in [d.message for d in diags if d.code == "P300"][0]


def test_identical_rules_only_the_later_is_redundant() -> None:
    diags = found("policy p\nrule a: block category 'M'\nrule b: block category 'M'\nrule c: block category 'M'\n")
    assert keys(diags) == [("P301", 3), ("P301", 4)]


def test_flag_is_covered_by_block_but_not_the_reverse() -> None:
    diags = found("policy p\nrule f: flag category 'M'\nrule b: block category 'M'\n")
    assert keys(diags) == [("P301", 2)]


def test_penalty_severity_for_every_prior() -> None:
    # broad proposes remove listing, then close account; narrow's deduct 6 points is more
    # severe than the first step: not redundant. With the ladder escalating past it at
    # prior 0 it would be.
    diags = found("policy p\nladder l = remove listing then close account\n"
                  "rule broad: block category 'M' penalty l\n"
                  "rule narrow: block category 'M' penalty deduct 6 points\n")
    assert keys(diags, "P301") == []
    diags = found("policy p\nladder l = close account then close account\n"
                  "rule broad: block category 'M' penalty l\n"
                  "rule narrow: block category 'M' penalty deduct 6 points\n")
    assert keys(diags, "P301") == [("P301", 4)]


def test_same_ladder_is_no_p304_but_inline_penalties_are_ladders_of_their_own() -> None:
    diags = found("policy p\nladder l = remove listing\nrule a: block category 'M' penalty l\n"
                  "rule b: block mentions 'x' penalty l\n")
    assert keys(diags, "P304") == []
    diags = found("policy p\nrule a: block category 'M' penalty remove listing\n"
                  "rule b: block mentions 'x' penalty remove listing\n")
    assert keys(diags, "P304") == [("P304", 3)]


def test_schema_fields_in_witnesses() -> None:
    ps = model("policy p\nfield platform: one of ['taobao', 'lazada'] required\nfield price: number\n"
               "rule ban: block category 'M'\nrule review: flag category 'M' and price > 10\n"
               "rule ok: allow category 'M' and platform == 'lazada' overrides ban\n")
    (d,) = [d for d in analyze(ps) if d.code == "P303"]
    assert d.witness["listing"]["platform"] == "lazada"
    replay(ps, d.witness)
    r = prove(ps, "never", "block", "price exists")
    assert r.outcome == "fail" and r.counterexample["listing"]["platform"] in ("taobao", "lazada")


def test_scope_excludes() -> None:
    diags = found("policy p\n  scope platform == 'taobao'\nrule r: block category 'M' and platform == 'lazada'\n")
    assert keys(diags) == [("P300", 3)]
    assert "scope" in diags[0].message


def test_stats_are_counted() -> None:
    # both samples are guessed and confirmed without the solver; that b is redundant
    # takes a solver call
    found("policy p\nrule a: block category 'M'\nrule b: block category 'M' and platform == 'x'\n")
    s = stats()
    assert s.solver_calls >= 1 and s.concrete_hits >= 2 and s.seconds > 0


def test_example_policies_are_analysed_quickly() -> None:
    root = Path(__file__).resolve().parents[1] / "policies"
    if not root.exists():
        pytest.skip("no example policies")
    from dsl.api import compile_paths

    ps, _, diags = compile_paths([root])
    if ps is None:
        pytest.skip("the example policies have errors")
    for d in analyze(ps):
        if d.witness is not None:
            replay(ps, d.witness)


# ------------------------------------------------------------------ the pieces, against their oracles


@pytest.mark.parametrize("pattern,icase", [
    (r"CM-\d{4}", False), (r"^cm-\d+$", True), (r"a|b$", False), (r"[^a-z]x", True), (r"(?i)k", False),
    (r"colou?r", False), (r"[[:upper:]]{2,3}", False), (r"x.y", False), (r"^$", False), (r"(ab)*c", False),
    (r"\bS19\b", False), (r"\bab", True), (r"x\b", False), (r"\b-x", False), (r"^\bab\b$", False),
    (r"a\b|\bb", False), (r"(?:a|-)+?\s", False), (r"[\w-]{2}$", False),
])
def test_regex_translation_agrees_with_re2(pattern: str, icase: bool) -> None:
    import random

    import z3

    from dsl import regex_syntax as RS
    from dsl import text
    from dsl.analysis import regex as RX

    alphabet = "abcSkKxy19-0 \n\u212a\u017fM"
    lang = RX.search_regex(RS.parse(pattern, icase), z3.Star(z3.Union(*[z3.Re(c) for c in alphabet])))
    compiled = text.compile_regex(pattern, icase)
    rnd = random.Random(pattern)
    for _ in range(150):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 7)))
        solver = z3.Solver()
        x = z3.String("x")
        solver.add(x == z3.StringVal(s), z3.InRe(x, lang))
        assert (solver.check() == z3.sat) == text.regex_search(compiled, s), (pattern, s)


@pytest.mark.parametrize("pattern", [r"\pL", r"(?s).", r"(?=x)", r"a^b", r"\b.", r"\bx*", r"\B"])
def test_unsupported_patterns_give_a_reason(pattern: str) -> None:
    from dsl import regex_syntax as RS

    assert RS.check_supported(pattern, False)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Shanghai", "UTC", "Australia/Lord_Howe"])
def test_local_preimage_is_exact(zone: str) -> None:
    import random

    from dsl.analysis import timeline as TL

    tz = ZoneInfo(zone)
    rnd = random.Random(zone)
    hour = 3600 * TL.US_PER_S
    for _ in range(12):
        month = rnd.choice([3, 4, 10, 11])
        base = TL.to_us(dt.datetime(2021, month, rnd.randint(1, 28), tzinfo=dt.UTC))
        a = base + rnd.randint(-3, 3) * hour + rnd.choice([0, 1, 1800 * TL.US_PER_S])
        b = None if rnd.random() < 0.2 else a + rnd.choice([1, hour, 10 * TL.DAY_US])
        pre = TL.local_preimage(zone, a, b)
        for _ in range(200):
            local = a + rnd.randint(-30, 30) * hour // 2 + rnd.choice([0, 0, 1, -1])
            inst = TL.instant_of_local(local, tz)
            want = a <= inst and (b is None or inst < b)
            got = any((lo is None or lo <= local) and (hi is None or local < hi) for lo, hi in pre)
            assert got == want, (zone, a, b, local)


# ------------------------------------------------------------------ findings that explain themselves


def _message(diags: list[Diagnostic], code: str, line: int) -> str:
    (d,) = [d for d in diags if d.code == code and d.span.line == line]
    return d.message


def test_p300_names_the_atoms_that_clash_as_written() -> None:
    diags = found("policy p\nset coins = ['bitcoin']\n"
                  "rule two: block category 'M' and price > 10 and price < 5\n"
                  "rule three: block price > 10 and mentions 'x' and price < 5 and price < 3\n"
                  "rule sets: block mentions any coins unless mentions 'bitcoin' or price > 3\n"
                  "rule nested: block not (price <= 10 or category 'M') and (price < 5 or category 'M')\n")
    assert _message(diags, "P300", 3).endswith(
        "its condition is contradictory: `price > 10` and `price < 5` cannot both hold")
    # a minimal clash, the earliest written one where there are several
    assert _message(diags, "P300", 4).endswith("`price > 10` and `price < 5` cannot both hold")
    assert _message(diags, "P300", 5).endswith("`mentions any coins` and `unless mentions 'bitcoin'` cannot both hold")
    assert _message(diags, "P300", 6).endswith(
        "`not price <= 10`, `not category 'M'` and `price < 5 or category 'M'` cannot all hold")


def test_p300_names_the_scope_part_that_excludes_the_rule() -> None:
    diags = found("policy p\n  scope platform == 'taobao' and mentions 'x'\n"
                  "rule r: block category 'M' and platform == 'lazada'\n"
                  "rule s: block category 'M' and price > 3 and price < 1\n")
    assert _message(diags, "P300", 3).endswith(
        "its policy's scope excludes every listing it selects: `platform == 'taobao'` (the scope) against "
        "`platform == 'lazada'`")
    assert _message(diags, "P300", 4).endswith(
        "its condition is contradictory: `price > 3` and `price < 1` cannot both hold")


def test_p300_message_does_not_change_with_unrelated_rules() -> None:
    rule = "rule r: block price > 10 and price < 5 and mentions 'a' and price < 3 and mentions 'b'\n"
    alone = _message(found("policy p\n" + rule), "P300", 2)
    crowd = "".join(f"rule x{i}: flag price > {i} and price < {i + 7} and mentions 'a'\n" for i in range(12))
    assert _message(found("policy p\n" + rule + crowd), "P300", 2) == alone
    assert _message(found("policy p\n" + crowd.splitlines()[-1] + "\n" + rule), "P300", 3) == alone


def test_p303_names_the_smallest_rule_that_still_blocks() -> None:
    rules = ["rule zz: flag category 'K' and price > 100",
             "rule mm: flag category 'K' and price < 5",
             "rule bb: block category 'K' and mentions 'rare'",
             "rule ban: block category 'K'",
             "rule ok: allow category 'K' and seller in ['S-1'] overrides ban"]
    messages = set()
    for order in (rules, rules[::-1], rules[1:] + rules[:1]):
        ps = model("policy p\n" + "\n".join(order) + "\n")
        (d,) = [d for d in analyze(ps) if d.code == "P303"]
        messages.add(d.message)
        dec = replay(ps, d.witness)
        assert "p.bb" in dec.rules and "p.ban" in dec.overridden
    assert messages == {"'p.ok' is partly ineffective: where it lifts 'p.ban', 'p.bb' still blocks the listing"}


def test_p303_names_the_smallest_lifted_rule() -> None:
    ps = model("policy p\nrule zz: block category 'K'\nrule aa: block category 'K' and price > 5\n"
               "rule review: flag category 'K' and mentions 'x'\n"
               "rule ok: allow category 'K' and seller in ['S-1'] overrides zz, aa\n")
    (d,) = [d for d in analyze(ps) if d.code == "P303"]
    assert "where it lifts 'p.aa', 'p.review' still flags" in d.message
    assert "p.aa" in replay(ps, d.witness).overridden


def test_p302_beside_p300_when_the_rule_is_always_overridden_by_another_allow() -> None:
    # `ban` applies only where `museum` lifts it (P300). `swords` names it too but never
    # meets it: that name is dead text whatever becomes of `museum`, so it gets P302
    # (docs/analysis.md). `knives` meets it, so its name is not reported.
    diags = found("policy p\nrule ban: block category 'K'\n"
                  "rule museum: allow category 'K' overrides ban\n"
                  "rule swords: allow category 'S' and not category 'K' overrides ban\n"
                  "rule knives: allow category 'K' and price > 5 overrides ban\n")
    assert keys(diags) == [("P300", 2), ("P302", 4)]
    assert "overrides it" in _message(diags, "P300", 2)


# ------------------------------------------------------------------ the analysis budget


def _overlapping(n: int) -> str:
    lines = ["policy heavy", "ladder soft = warn seller then remove listing",
             "ladder hard = remove listing then close account",
             "rule dead: from 2021-10-08 until 2021-10-01 block category 'X'"]
    lines += [f"rule r{i:02}: block price > {i} and price < {i + 50} and mentions 'w{i % 5}' "
              f"penalty {'soft' if i % 2 else 'hard'}" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_a_tiny_budget_ends_the_run_quickly_and_keeps_what_was_proved() -> None:
    import time

    ps = model(_overlapping(40))
    t0 = time.perf_counter()
    diags = analyze(ps, budget_seconds=0.05)
    assert time.perf_counter() - t0 < 5
    cut = [d for d in diags if d.code == "P399"]
    assert cut and all("analysis budget of 0.05 s used up" in d.message for d in cut)
    figures = cut[0].data["analysis_budget"]
    assert set(figures) == {"budget_seconds", "questions_asked", "questions_answered", "questions_left", "seconds_used"}
    assert figures["budget_seconds"] == 0.05 and figures["questions_left"] > 0
    assert all(d.data == cut[0].data for d in cut)
    assert len([d for d in cut if d.notes]) == 1 and "raise --analysis-budget" in cut[0].notes[0]
    assert ("P300", 4) in keys(diags)  # the empty window needs no question


def test_questions_answered_before_the_budget_runs_out_are_reported() -> None:
    from dsl.analysis.findings import run
    from dsl.analysis.solver import AnalysisStats, Budget

    class AfterQuestions(Budget):
        """Used up once ``limit`` questions were asked (a clock that does not depend on the machine)."""

        limit = 6

        def remaining(self) -> float:
            return 0.0 if self.asked >= self.limit else 10.0

    ps = model("policy p\nrule a: block price > 10 and price < 5\nrule b: block category 'M'\n"
               "rule c: block category 'M'\n" + "".join(f"rule x{i}: flag price > {i}\n" for i in range(10)))
    budget = AfterQuestions(1.0)
    diags = run(ps, 10000, AnalysisStats(), budget)
    assert ("P300", 2) in keys(diags)
    assert "`price > 10` and `price < 5`" in _message(diags, "P300", 2)
    cut = [d for d in diags if d.code == "P399"]
    assert cut and budget.asked == 6 and budget.left > 0
    seconds_used = cut[0].data["analysis_budget"]["seconds_used"]
    assert cut[0].data == {"analysis_budget": budget.to_dict() | {"seconds_used": seconds_used}}
    full = analyze(ps)
    assert not [d for d in full if d.code == "P399"]
    assert {(d.code, d.span.line) for d in diags if d.code != "P399"} <= {(d.code, d.span.line) for d in full}


def test_no_budget_no_budget_findings() -> None:
    diags = analyze(model(_overlapping(6)), budget_seconds=600)
    assert not [d for d in diags if d.code == "P399" or d.data is not None]
