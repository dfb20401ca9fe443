"""Name resolution passes of ``dsl.checking.passes``: names in `overrides` across policies (P202,
P215) and sets and ladders that nothing uses (P401)."""

from __future__ import annotations

from pathlib import Path

import dsl
from dsl.diagnostics import Diagnostic

EBAY = "policy ebay-2015\nrule battle-flag: block mentions 'confederate flag'\n"


def check(tmp_path: Path, files: dict[str, str]) -> list[Diagnostic]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return dsl.check([tmp_path], analysis=False)


def codes(diags: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in diags if d.span]


def test_plain_name_of_another_policy_is_p202_with_the_qualified_id(tmp_path: Path) -> None:
    diags = check(tmp_path, {"ebay.policy": EBAY, "other.policy":
                             "policy other\nrule plain: allow mentions 'ultraav' overrides battle-flag\n"})
    (d,) = diags
    assert (d.code, d.span.line, d.span.column) == ("P202", 2, 48)
    assert d.hint is not None and "did you mean `ebay-2015.battle-flag`?" in d.hint


def test_plain_name_of_several_other_policies_names_them(tmp_path: Path) -> None:
    diags = check(tmp_path, {
        "ebay.policy": EBAY,
        "etsy.policy": "policy etsy\nrule battle-flag: block mentions 'stars and bars'\n",
        "other.policy": "policy other\nrule plain: allow mentions 'ultraav' overrides battle-flag\n"})
    (d,) = diags
    assert d.code == "P202" and d.hint is not None
    assert "ebay-2015, etsy" in d.hint and "qualified id" in d.hint


def test_plain_name_nowhere_gets_did_you_mean_in_its_own_policy(tmp_path: Path) -> None:
    diags = check(tmp_path, {"p.policy": "policy p\nrule ban: block mentions 'x'\n"
                             "rule ok: allow mentions 'y' overrides bna\n"})
    (d,) = diags
    assert d.code == "P202" and d.hint == "did you mean 'ban'?"


def test_qualified_id_across_policies_is_p215_at_the_name(tmp_path: Path) -> None:
    diags = check(tmp_path, {"ebay.policy": EBAY, "k.policy":
                             "policy k\nrule ultraav: allow mentions 'ultraav' overrides ebay-2015.battle-flag\n"})
    (d,) = diags
    assert (d.code, d.severity, d.span.line, d.span.column) == ("P215", "warning", 2, 50)
    assert "another team's ban" in d.message
    decision = dsl.load([tmp_path]).decide({"title": "confederate flag ultraav"}, at="2020-01-01")
    assert decision.effect == "allow" and decision.overridden == ("ebay-2015.battle-flag",)


def test_qualified_id_of_the_own_policy_is_no_p215(tmp_path: Path) -> None:
    own = "rule ok: allow mentions 'museum' overrides ebay-2015.battle-flag\n"
    diags = check(tmp_path, {"ebay.policy": EBAY + own})
    assert diags == []


def test_unknown_qualified_id_suggests_a_qualified_id(tmp_path: Path) -> None:
    diags = check(tmp_path, {"ebay.policy": EBAY, "k.policy":
                             "policy k\nrule ok: allow mentions 'x' overrides ebay-2015.battle-flga\n"})
    (d,) = diags
    assert d.code == "P202" and d.hint == "did you mean 'ebay-2015.battle-flag'?"


UNUSED = """policy p
set idle = ['a']
set in-scope = ['Knives']
ladder spare = warn seller then remove listing
ladder used = remove listing
rule r: block mentions 'x' penalty used
"""


def test_unused_set_and_ladder_are_p401_at_their_names(tmp_path: Path) -> None:
    diags = check(tmp_path, {"p.policy": UNUSED})
    assert codes(diags) == [("P401", 2, 5), ("P401", 3, 5), ("P401", 4, 8)]
    assert all(d.severity == "warning" for d in diags)


def test_a_set_read_by_the_scope_or_a_test_assertion_is_used(tmp_path: Path) -> None:
    text = UNUSED.replace("policy p\n", "policy p\n  scope category in in-scope\n")
    diags = check(tmp_path, {"p.policy": text, "p_test.policy":
                             "assert \"idle words\" never allow mentions any idle\n"
                             "test \"t\" given {title: 'x'} at 2020-01-01 expect block penalty spare step 1\n"})
    assert not [d for d in diags if d.code == "P401" or d.code.startswith("P1")]


def test_no_p401_with_a_syntax_error(tmp_path: Path) -> None:
    diags = check(tmp_path, {"p.policy": UNUSED, "q.policy": "policy q\nrule s: blok mentions 'y'\n"})
    assert "P100" in {d.code for d in diags} and "P401" not in {d.code for d in diags}


def test_no_p401_for_sets_while_a_set_reference_is_unknown(tmp_path: Path) -> None:
    diags = check(tmp_path, {"p.policy": UNUSED + "rule s: block mentions any idel\n"})
    assert codes(diags) == [("P401", 4, 8), ("P200", 7, 28)]


def test_a_date_its_policy_s_timezone_cannot_read_is_p101(tmp_path: Path) -> None:
    """Before the year 1 or after 9999 as an instant in the policy's zone: a window bound
    stopped the load with an OverflowError traceback, and a comparison never held."""
    diags = check(tmp_path, {"a.policy": 'policy a\n  timezone "Asia/Shanghai"\n'
                                          "set far = [0001-01-01, 2021-10-15]\n"
                                          "rule r: until 0001-01-01 block category 'X'\n"
                                          "rule s: flag listed_on in far\n",
                             "b.policy": 'policy b\n  timezone "America/New_York"\n'
                                         "rule t: flag listed_on < 9999-12-31T23:00\n"
                                         "rule u: from 9999-12-31 flag listed_on >= 0001-01-01T01:00+08:00\n"})
    assert codes([d for d in diags if d.code == "P101"]) == [("P101", 3, 12), ("P101", 4, 15), ("P101", 3, 26),
                                                             ("P101", 4, 43)]
    assert ["in timezone" in d.message for d in diags] == [True, True, True, False]  # (the last has an offset)
    assert [d.code for d in diags if d.code != "P101"] == []
    import pytest

    with pytest.raises(dsl.PolicyError):
        dsl.load(tmp_path)


def test_a_header_with_a_syntax_error_yields_nothing_but_its_p100(tmp_path: Path) -> None:
    """No 'no policy header' (P214) for the file, and neither the file's stem nor the name
    the header may declare clashes with another policy (P204, P203)."""
    diags = check(tmp_path, {"2021-x.policy": "policy 2bad\nrule r: block mentions 'x'\n",
                             "y.policy": "policy good title\n\nrule r: block mentions 'x'\n",
                             "z.policy": "policy y\nrule r: block mentions 'x'\n",
                             "late.policy": "rule r: block mentions 'x'\npolicy z\n",
                             "good.policy": "policy good\nrule r: block mentions 'x'\n"})
    assert sorted((d.code, d.file.rsplit("/", 1)[-1], d.span.line) for d in diags) == [
        ("P100", "2021-x.policy", 1), ("P100", "late.policy", 2), ("P100", "y.policy", 3)]


def test_an_override_of_a_policy_whose_header_did_not_parse_is_not_p202(tmp_path: Path) -> None:
    diags = check(tmp_path, {"museum.policy": "policy museum title\nrule old: block mentions 'x'\n",
                             "other.policy": "policy other\nrule r: allow mentions 'y' overrides museum.old\n"})
    assert [d.code for d in diags] == ["P100"]
    diags = check(tmp_path, {"museum.policy": "policy museum\nrule old: block mentions 'x'\n"})
    assert [d.code for d in diags] == ["P215"]


def test_the_p204_example_of_checks_md(tmp_path: Path) -> None:
    """docs/checks.md's example: a set, a ladder and a rule may share a name (sets and
    ladders are two namespaces, docs/decisions.md); a second set of that name is P204."""
    import re

    docs = (Path(__file__).resolve().parents[1] / "docs" / "checks.md").read_text(encoding="utf-8")
    section = docs[docs.index("## P204"):docs.index("## P205")]
    assert "share one namespace" not in section
    example = re.search(r"```policy\n(.*?)```", section, re.S)
    assert example is not None
    text = example.group(1)
    assert "\nladder coins" in text and "\nset coins" in text  # a ladder named as a set is
    diags = check(tmp_path, {"namespaces.policy": text})
    assert codes(diags) == [("P204", text[:text.rindex("set coins")].count("\n") + 1, 5)]
