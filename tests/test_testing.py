"""`policy test`: test-file checks (P500–P504, P101), examples, assertions (with a
stand-in analysis), coverage, and the command's text, JSON and JUnit output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_testing_support import CRYPTO, FakeResult, search_prover, write_tree

import dsl
from dsl.api import compile_paths
from dsl.cli import main
from dsl.testing import InternalError, Prover, check_test_files, run_tests
from dsl.testing import run as run_command

# ---------------------------------------------------------------- helpers


def codes(tmp: Path, files: dict[str, str]) -> list[tuple[str, int, int]]:
    write_tree(tmp, files)
    model, loaded, _ = compile_paths([tmp])
    return [(d.code, d.span.line, d.span.column) for d in check_test_files(model, loaded)]


def run(tmp: Path, tests: str, policies: dict[str, str] | None = None, prover: Prover | None = None) -> Any:
    write_tree(tmp, {**(policies or {"crypto.policy": CRYPTO}), "crypto_test.policy": tests})
    model, loaded, diags = compile_paths([tmp])
    assert model is not None, diags
    assert not [d for d in check_test_files(model, loaded) if d.severity == "error"]
    return run_tests(model, loaded, attack_examples=50, prover=prover)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["test", *args])


# ---------------------------------------------------------------- checks


def test_p500_unknown_rule_in_by(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {category: 'Blockchain Miners'} at 2021-10-09
          expect block by crypto.miner, minerz, crypto.miners
    """})
    assert found == [("P500", 2, 19), ("P500", 2, 33)]


def test_p500_hint_suggests_the_rule(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {} at 2021-10-09 expect block by minerz
    """})
    model, loaded, _ = compile_paths([tmp_path])
    (d,) = check_test_files(model, loaded)
    assert d.code == "P500" and "miners" in (d.hint or "")


def test_p501_local_id_in_several_policies(tmp_path: Path) -> None:
    found = codes(tmp_path, {
        "a.policy": "rule miners: block category 'Blockchain Miners'\n",
        "b.policy": "rule miners: flag category 'Blockchain Miners'\n",
        "ab_test.policy": """
            test "ambiguous" given {} at 2021-10-09 expect block by miners
            test "qualified" given {} at 2021-10-09 expect block by a.miners, b.miners
        """,
    })
    assert found == [("P501", 1, 57)]


def test_p502_unknown_ladder(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {} at 2021-10-20
          expect block penalty escalat step 1
        test "inline" given {} at 2021-10-20 expect block penalty step 1
    """})
    assert found == [("P502", 2, 24)]


def test_p503_duplicate_keys(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {title: 'a', seller: {id: 1, id: 2}, title: 'b'} at 2021-10-20 expect allow
    """})
    assert sorted(found) == [("P503", 1, 49), ("P503", 1, 60)]


def test_p503_given_must_fit_the_schema(tmp_path: Path) -> None:
    schema = """
        field price: number required
        field platform: one of ['taobao', 'xianyu']
        rule cheap: flag price < 10
    """
    found = codes(tmp_path, {"shop.policy": schema, "shop_test.policy": """
        test "text price" given {price: 'abc'} at 2021-10-20 expect allow
        test "missing" given {platform: 'taobao'} at 2021-10-20 expect allow
        test "not one of" given {price: 1, platform: 'tmall'} at 2021-10-20 expect flag
        test "fine" given {price: 1, platform: 'taobao'} at 2021-10-20 expect flag
    """})
    assert found == [("P503", 1, 33), ("P503", 2, 22), ("P503", 3, 46)]


def test_no_schema_means_any_values(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "ill-typed on purpose" given {category: 42, title: ['a', 1], price: 'abc'} at 2021-10-20 expect allow
    """})
    assert found == []


def test_p504_test_file_without_policies(tmp_path: Path) -> None:
    write_tree(tmp_path, {"lonely_test.policy": """
        # nothing to test against
        test "t" given {} at 2021-10-20 expect allow
    """})
    model, loaded, _ = compile_paths([tmp_path / "lonely_test.policy"])
    found = [(d.code, d.span.line) for d in check_test_files(model, loaded)]
    assert found == [("P504", 2)]


def test_p101_window_without_offset_needs_a_shared_timezone(tmp_path: Path) -> None:
    found = codes(tmp_path, {
        "a.policy": 'policy a timezone "Asia/Shanghai" rule r: block category \'X\'\n',
        "b.policy": 'policy b timezone "Europe/London" rule r: block category \'Y\'\n',
        "ab_test.policy": """
            assert "naive" from 2021-10-08 until 2021-10-09T12:00 always block category 'X'
            assert "offsets" from 2021-10-08T00:00:00+08:00 always block category 'X'
            assert "expr date" never block listed < 2021-01-01
        """,
    })
    assert found == [("P101", 1, 21), ("P101", 1, 38), ("P101", 3, 41)]


def test_no_p101_with_one_timezone(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        assert "naive" from 2021-10-08 always block category 'Blockchain Miners'
    """})
    assert found == []


def test_assertion_expressions_are_checked_like_conditions(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        assert "sets" never block mentions any coinz
        assert "regex" never block title matches /(?<=a)b/
        assert "category ==" never block category == 'X'
    """})
    assert [c for c, _, _ in found] == ["P200", "P102", "P208"]


def test_check_reports_test_file_findings(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {} at 2021-10-20 expect block by nope
    """})
    assert "P500" in [d.code for d in dsl.check([tmp_path], analysis=False)]


# ---------------------------------------------------------------- examples


EXAMPLES = """
test "by local and qualified ids" given {category: 'Blockchain Miners', platform: 'taobao'} at 2021-10-09
  expect block by miners, crypto.miners no penalty
test "a ladder step" given {category: 'Blockchain Miners', platform: 'xianyu'} at 2021-10-20 prior 1
  expect block penalty escalate step 2
test "the ladder stops at its last step" given {category: 'Blockchain Miners', platform: 'xianyu'} at 2021-10-20 prior 9
  expect block penalty escalate step 3
test "an inline penalty" given {title: 'Bitcoin', platform: 'taobao'} at 2021-10-09
  expect block by coins penalty step 1
test "a flag" given {title: 'mining guide', platform: 'taobao'} at 2021-10-09 expect flag by review
test "the allow lifts the flag" given {title: 'mining lamp', category: 'Museum', platform: 'taobao'} at 2021-10-09
  expect allow no penalty
test "a date without offset is read in the policy's timezone" given {category: 'Blockchain Miners', platform: 'taobao'}
  at 2021-10-07T23:59:59 expect allow
test "and with an offset as an instant" given {category: 'Blockchain Miners', platform: 'taobao'}
  at 2021-10-07T16:00:00Z expect block
"""


def test_examples_that_hold_pass(tmp_path: Path) -> None:
    report = run(tmp_path, EXAMPLES)
    assert [(r.name, r.outcome) for r in report.results if r.outcome != "pass"] == []
    assert report.passed == 8


@pytest.mark.parametrize(("expect", "problem"), [
    ("expect allow", "effect is block, not allow"),
    ("expect block by review", "crypto.review is not among the rules that decided"),
    ("expect block penalty escalate step 1", "the penalty is escalate step 2"),
    ("expect block no penalty", "a penalty was proposed: escalate step 2"),
    ("expect block penalty step 2",
     "the penalty is escalate step 2 (remove listing, deduct 6 points), not inline step 2"),
])
def test_examples_that_do_not_hold_fail(tmp_path: Path, expect: str, problem: str) -> None:
    report = run(tmp_path, "test \"t\" given {category: 'Blockchain Miners', platform: 'xianyu'} at 2021-10-20 prior 1 "
                           + expect)
    (r,) = report.results
    assert r.outcome == "fail"
    assert any(p.startswith(problem) for p in r.problems), r.problems
    assert r.actual is not None and r.actual["effect"] == "block"
    assert r.explanation and "miners-late" in r.explanation


def test_an_overridden_rule_is_not_among_the_rules(tmp_path: Path) -> None:
    report = run(tmp_path, "test \"t\" given {title: 'mining', category: 'Museum', platform: 'taobao'} at 2021-10-09 "
                           "expect allow by review")
    (r,) = report.results
    assert r.outcome == "fail" and "overridden" in r.problems[0]


def test_coverage_counts_applied_and_overridden_rules(tmp_path: Path) -> None:
    report = run(tmp_path, "test \"t\" given {title: 'mining', category: 'Museum', platform: 'taobao'} at 2021-10-09 "
                           "expect allow")
    assert set(report.coverage.covered) == {"crypto.museum", "crypto.review"}
    assert set(report.coverage.uncovered) == {"crypto.coins", "crypto.miners", "crypto.miners-late"}
    assert report.coverage.percent == pytest.approx(40.0)


# ---------------------------------------------------------------- assertions


ASSERTIONS = """
assert "holds" from 2021-10-08 always block category 'Blockchain Miners' and platform == 'taobao'
assert "needs its window" always block category 'Blockchain Miners' and platform == 'taobao'
"""


def test_a_failing_assertion_has_a_small_replaying_counterexample(tmp_path: Path) -> None:
    report = run(tmp_path, ASSERTIONS, prover=search_prover())
    ok, bad = report.results
    assert ok.outcome == "pass" and bad.outcome == "fail"
    cx = bad.counterexample
    assert cx is not None
    assert cx["listing"] == {"category": "Blockchain Miners", "platform": "taobao"}
    assert cx["prior_violations"] == 0
    assert cx["at"] == "2021-10-06T16:00:00Z"  # midnight in Shanghai, the day before the ban
    decision = dsl.load([tmp_path]).decide(cx["listing"], at=cx["at"], prior_violations=cx["prior_violations"])
    assert decision.effect != "block"


def test_undecided_fails_the_run(tmp_path: Path) -> None:
    undecided = lambda ps, **kw: FakeResult("undecided", reason="matches and mentions on one field")  # noqa: E731
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": ASSERTIONS})
    result = run_command([tmp_path], prover=undecided)
    assert result.exit_code == 1
    assert "UNDECIDED" in result.text and "matches and mentions on one field" in result.text
    assert result.text.splitlines()[-1] == "0 passed, 2 failed"
    # where the analysis gives up, a generated counterexample still decides the question
    out = json.loads(run_command([tmp_path], fmt="json", prover=undecided).text)
    assert [r["outcome"] for r in out] == ["undecided", "fail"]
    assert "a generated listing refutes it" in out[1]["problems"][-1]
    assert out[1]["counterexample"]["listing"] == {"category": "Blockchain Miners", "platform": "taobao"}


def test_a_proof_that_the_attack_refutes_is_an_internal_error(tmp_path: Path) -> None:
    with pytest.raises(InternalError, match="needs its window.*Blockchain Miners"):
        run(tmp_path, ASSERTIONS, prover=lambda ps, **kw: FakeResult("pass"))


def test_a_counterexample_that_does_not_replay_is_an_internal_error(tmp_path: Path) -> None:
    bogus = {"listing": {"category": "Blockchain Miners", "platform": "taobao"}, "at": "2021-10-20T00:00:00Z",
             "prior_violations": 0}
    with pytest.raises(InternalError, match="does not break it"):
        run(tmp_path, ASSERTIONS, prover=lambda ps, **kw: FakeResult("fail", bogus))


def test_a_counterexample_far_in_the_future_still_breaks_the_assertion_once_shrunk(tmp_path: Path) -> None:
    """Shrinking took 2600-01-01 for the microsecond before it (their float timestamps
    are one): the report showed a counterexample whose decision was allow."""
    report = run(tmp_path, """
        assert "last microsecond"
          from 2599-12-31T23:59:59.999999Z never block mentions 'x'
    """, policies={"p.policy": "policy p\nrule old: until 2600-01-01 block mentions 'x'\n"})
    (result,) = report.results
    assert result.outcome == "fail" and result.counterexample is not None
    assert result.counterexample["at"] == "2599-12-31T23:59:59.999999Z" and result.actual["effect"] == "block"


def test_a_counterexample_shrunk_to_one_that_does_not_break_the_claim_is_an_internal_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dsl.testing.runner as runner
    from dsl.testing.shrink import Counterexample

    def wrong(cx: Counterexample, fails: Any, **kw: Any) -> Counterexample:
        return Counterexample({}, cx.at, 0)  # a listing no rule applies to

    monkeypatch.setattr(runner, "shrink", wrong)
    with pytest.raises(InternalError, match="was shrunk to one that does not break it"):
        run(tmp_path, ASSERTIONS, prover=search_prover())


def test_the_assertion_is_handed_to_the_analysis_resolved(tmp_path: Path) -> None:
    from dsl.syntax import ast as A

    seen: list[dict[str, Any]] = []

    def prove(ps: Any, **kw: Any) -> FakeResult:
        seen.append(kw)
        return FakeResult("pass")

    run(tmp_path, "assert \"coins\" from 2021-10-08 until 2021-10-09T12:00 "
                  "always block mentions any coins and platform == 'taobao'", prover=prove)
    (kw,) = seen
    assert kw["quantifier"] == "always" and kw["effect"] == "block"
    assert str(kw["tz"]) == "Asia/Shanghai"
    assert kw["start"].isoformat() == "2021-10-07T16:00:00+00:00"
    assert kw["end"].isoformat() == "2021-10-09T04:00:00+00:00"
    assert not any(isinstance(getattr(n, "items", None), A.Ref) for n in A.walk(kw["expr"]))


# ---------------------------------------------------------------- the command


def test_text_output_and_exit_status(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": EXAMPLES})
    result = invoke(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS") == 8
    assert result.output.splitlines()[-1] == "8 passed, 0 failed"


def test_text_output_of_a_failure(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "wrong" given {category: 'Blockchain Miners', platform: 'xianyu'} at 2021-10-20 prior 1
          expect flag by review penalty escalate step 1
    """})
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert "FAIL" in out and 'test "wrong"' in out
    assert "expected" in out and "actual" in out
    assert "effect     flag" in out.replace("  block", "")  # the side-by-side rows
    assert "explanation of the actual decision" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_json_output(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": EXAMPLES + ASSERTIONS + """
test "wrong" given {} at 2021-10-20 expect block
"""})
    result = run_command([tmp_path], fmt="json", prover=search_prover())
    assert result.exit_code == 1
    results = json.loads(result.text)
    kinds_and_outcomes = [(r["kind"], r["outcome"]) for r in results]
    assert kinds_and_outcomes[-3:] == [("assert", "pass"), ("assert", "fail"), ("test", "fail")]
    for r in results:
        assert {"name", "kind", "outcome", "file", "line"} <= set(r)
    cx = results[-2]["counterexample"]
    assert set(cx) == {"listing", "at", "prior_violations"}
    wrong = results[-1]
    assert wrong["expected"] == {"effect": "block"} and wrong["actual"]["effect"] == "allow"


def test_junit_output(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": EXAMPLES + """
test "wrong \u0001 <&>" given {} at 2021-10-20 expect block
"""})
    result = invoke(str(tmp_path), "--format", "junit", "--coverage")
    assert result.exit_code == 1
    root = ET.fromstring(result.output.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(tmp_path / "crypto_test.policy"), "coverage"]
    cases = suites[0].findall("testcase")
    assert len(cases) == 9 and suites[0].get("tests") == "9" and suites[0].get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["wrong \\u0001 <&>"]
    assert root.get("tests") == "10" and root.get("failures") == "1"


def test_diagnostics_stop_the_run(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {} at 2021-10-20 expect block by nope
    """})
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    assert "P500" in result.output and "unknown rule 'nope'" in result.output
    assert "passed" not in result.output
    as_json = json.loads(invoke(str(tmp_path), "--format", "json").output)
    assert [d["code"] for d in as_json] == ["P500"]
    junit = ET.fromstring(invoke(str(tmp_path), "--format", "junit").output.encode())
    assert junit.find("testsuite/testcase/error") is not None


def test_policy_errors_stop_the_run(tmp_path: Path) -> None:
    write_tree(tmp_path, {"bad.policy": "rule r: block category 'X' penalty nope\n",
                          "bad_test.policy": 'test "t" given {} at 2021-10-20 expect allow\n'})
    result = invoke(str(tmp_path))
    assert result.exit_code == 1 and "P201" in result.output


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nowhere"))
    assert result.exit_code == 2


def test_an_empty_test_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": "# nothing yet\n"})
    result = invoke(str(tmp_path))
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "0 passed, 0 failed"


def test_no_test_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO})
    result = invoke(str(tmp_path))
    assert result.exit_code == 0
    assert "no test files" in result.output and result.output.splitlines()[-1] == "0 passed, 0 failed"


def test_coverage_and_its_minimum(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "t" given {title: 'mining', category: 'Museum', platform: 'taobao'} at 2021-10-09 expect allow
    """})
    result = invoke(str(tmp_path), "--coverage")
    assert result.exit_code == 0
    assert "coverage: 2/5 rules applied in some example (40.0%)" in result.output
    assert "not covered: crypto.coins" in result.output
    assert result.output.splitlines()[-1] == "1 passed, 0 failed"
    below = invoke(str(tmp_path), "--min-coverage", "50")
    assert below.exit_code == 1 and "below the minimum of 50%" in below.output
    assert invoke(str(tmp_path), "--min-coverage", "40").exit_code == 0


# ---------------------------------------------------------------- `tests for`, names, --run, time

OTHER = """
policy other
rule everything: block
rule museum-too: allow category 'Museum' overrides crypto.review
"""
"""A policy that blocks every listing: beside CRYPTO it changes every unscoped result."""


def test_tests_for_decides_against_the_policies_named(tmp_path: Path) -> None:
    tests = """
        tests for crypto
        test "nothing outside the ban" given {title: 'a lamp', platform: 'taobao'} at 2021-10-09 expect allow
        test "a rig" given {category: 'Blockchain Miners', platform: 'taobao'} at 2021-10-09 expect block by miners
        assert "lamps stay" never block title mentions 'lamp' and not category 'Blockchain Miners'
          and not mentions any coins
    """
    report = run(tmp_path, tests, {"crypto.policy": CRYPTO, "other.policy": OTHER})
    assert [r.outcome for r in report.results] == ["pass", "pass", "pass"]
    # `miners` resolves among crypto's rules; without the scope `other` blocks the lamp
    report = run(tmp_path, tests.replace("tests for crypto", ""), {"crypto.policy": CRYPTO, "other.policy": OTHER})
    assert [r.outcome for r in report.results] == ["fail", "pass", "fail"]
    assert report.results[2].actual["rules"] == ["other.everything"]


def test_an_allow_whose_target_is_left_out_lifts_nothing(tmp_path: Path) -> None:
    report = run(tmp_path, """
        tests for other
        test "museum" given {category: 'Museum', title: 'mining lamp'} at 2021-10-09 expect block by everything
    """, {"crypto.policy": CRYPTO, "other.policy": OTHER})
    (r,) = report.results
    assert r.outcome == "pass" and r.actual["overridden"] == []
    assert r.actual["rules"] == ["other.everything", "other.museum-too"]


def test_p505_unknown_policy_in_tests_for(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        tests for crypto, cryptp
        test "t" given {} at 2021-10-09 expect allow
    """})
    assert found == [("P505", 1, 19)]
    model, loaded, _ = compile_paths([tmp_path])
    (d,) = check_test_files(model, loaded)
    assert d.hint == "did you mean 'crypto'?" and d.severity == "error"
    assert invoke(str(tmp_path)).exit_code == 1


def test_by_resolves_among_the_scoped_policies(tmp_path: Path) -> None:
    files = {"crypto.policy": CRYPTO, "other.policy": OTHER + "rule review: flag\n"}
    unscoped = 'test "t" given {} at 2021-10-09 expect block by review, museum-too\n'
    # unscoped: `review` is in two policies (P501); scoped to crypto: `museum-too` is unknown (P500)
    assert [c for c, *_ in codes(tmp_path, {**files, "crypto_test.policy": unscoped})] == ["P501"]
    scoped = "tests for crypto\n" + unscoped
    assert [c for c, *_ in codes(tmp_path, {**files, "crypto_test.policy": scoped})] == ["P500"]


def test_a_rule_of_a_policy_outside_tests_for_is_said_to_be_so(tmp_path: Path) -> None:
    """It was P500 "unknown rule 'other.everything'" with "did you mean" a rule in scope:
    the rule exists; its policy is not in `tests for`."""
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "other.policy": OTHER, "crypto_test.policy": """
        tests for crypto
        test "q" given {} at 2021-10-09 expect block by other.everything
        test "l" given {} at 2021-10-09 expect block by museum-too
        test "u" given {} at 2021-10-09 expect block by minerz
    """})
    model, loaded, _ = compile_paths([tmp_path])
    qualified, local, unknown = check_test_files(model, loaded)
    assert [d.code for d in (qualified, local, unknown)] == ["P500"] * 3
    assert qualified.message == "rule 'other.everything' belongs to policy other, outside this file's `tests for`"
    assert qualified.hint == "add other to `tests for` (`tests for crypto, other`)"
    assert local.message == "rule 'museum-too' belongs to policy other, outside this file's `tests for`"
    assert unknown.message == "unknown rule 'minerz'" and unknown.hint == "did you mean 'miners'?"
    # a local id that policies left out share: either may be meant
    write_tree(tmp_path, {"third.policy": "policy third\nrule everything: flag\n",
                          "crypto_test.policy": 'tests for crypto\ntest "e" given {} at 2021-10-09 expect block by '
                                                'everything\n'})
    model, loaded, _ = compile_paths([tmp_path])
    (d,) = check_test_files(model, loaded)
    assert d.code == "P500" and d.message == (
        "rules named 'everything' belong to policies other, third, outside this file's `tests for`")
    assert d.hint == ("add the policy you mean to `tests for`, and name the rule as `policy.rule` "
                      "(such as `other.everything`)")


def test_a_naive_date_is_read_in_the_scoped_policies_timezone(tmp_path: Path) -> None:
    files = {"crypto.policy": CRYPTO, "other.policy": 'policy other\n  timezone "Europe/Paris"\nrule r: flag\n'}
    claim = 'assert "a" from 2021-10-08 never allow category \'Blockchain Miners\' and platform == \'taobao\'\n'
    assert [c for c, *_ in codes(tmp_path, {**files, "crypto_test.policy": claim})] == ["P101"]
    assert codes(tmp_path, {**files, "crypto_test.policy": "tests for crypto\n" + claim}) == []


def test_names_are_unique_in_a_file(tmp_path: Path) -> None:
    found = codes(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": """
        test "same" given {} at 2021-10-09 expect allow
        assert "same" never block category 'Museum'
        test "other" given {} at 2021-10-09 expect allow
    """, "more_test.policy": 'test "same" given {} at 2021-10-09 expect allow\n'})
    assert found == [("P204", 2, 8)]  # at the later one; another file may reuse the name
    model, loaded, _ = compile_paths([tmp_path])
    (d,) = check_test_files(model, loaded)
    assert d.related[0].span.line == 1 and d.severity == "error"


def test_run_selects_by_name(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": EXAMPLES})
    model, loaded, _ = compile_paths([tmp_path])
    everything = run_tests(model, loaded, kinds=("test",))
    some = run_tests(model, loaded, kinds=("test",), run="ladder")
    assert [r.name for r in some.results] == ["a ladder step", "the ladder stops at its last step"]
    assert len(everything.results) == 8
    result = invoke(str(tmp_path), "--run", "ladder", "--format", "json")
    assert result.exit_code == 0 and [r["name"] for r in json.loads(result.output)] == [r.name for r in some.results]
    none = invoke(str(tmp_path), "--run", "no such name")
    assert none.exit_code == 1 and "no test or assertion has a name that contains 'no such name'" in none.output


def test_each_result_reports_its_time(tmp_path: Path) -> None:
    write_tree(tmp_path, {"crypto.policy": CRYPTO, "crypto_test.policy": EXAMPLES})
    text = invoke(str(tmp_path)).output.splitlines()
    assert all(line.endswith(" ms)") or line.endswith(" s)") for line in text if line.startswith("PASS"))
    results = json.loads(invoke(str(tmp_path), "--format", "json").output)
    assert all(isinstance(r["time"], float) and r["time"] >= 0 for r in results)
    root = ET.fromstring(invoke(str(tmp_path), "--format", "junit").output.encode("utf-8"))
    assert all(float(c.get("time")) >= 0 for c in root.iter("testcase"))


def test_a_policy_added_beside_scoped_example_suites_breaks_none_of_them(tmp_path: Path) -> None:
    """policies/: every suite is scoped, so a new blocking policy beside them changes no
    result (the new policy's own rules are merely not covered)."""
    import shutil

    root = Path(__file__).resolve().parents[1] / "policies"
    shutil.copytree(root, tmp_path / "policies")
    write_tree(tmp_path / "policies", {"newcomer/ban-all.policy": "policy newcomer\nrule all: block\n"})
    model, loaded, diags = compile_paths([tmp_path / "policies"])
    assert model is not None, diags
    assert [d for d in check_test_files(model, loaded) if d.severity == "error"] == []
    report = run_tests(model, loaded, kinds=("test",))
    assert report.results and [r.name for r in report.results if not r.passed] == []
    assert report.coverage.uncovered == ("newcomer.all",)
