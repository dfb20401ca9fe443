"""`policy test` on the conformance corpus's tests/ case (read in place) and on the example
policy suites under policies/: outcomes as the `# expect:` comments say, counterexamples
that replay through `decide` and break their assertion, full coverage of the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_testing_support import CONFORMANCE_SUITES, CONFORMANCE_TESTS, ROOT, search_prover

import dsl
from dsl.api import compile_paths
from dsl.cli import main
from dsl.evaluate.reference import holds
from dsl.syntax import ast as A
from dsl.testing import check_test_files, run_tests
from dsl.testing import run as run_command
from dsl.testing.claims import parse_instant, resolve_sets

SKIP: dict[str, str] = {}
"""Suites of the corpus's tests/ that cannot pass yet, each with its reason."""


def conformance_suites() -> list[Path]:
    return sorted(p for p in CONFORMANCE_SUITES.iterdir() if p.is_dir()) if CONFORMANCE_SUITES.is_dir() else []


def _skip(suite: Path) -> None:
    if suite.name in SKIP:
        pytest.skip(SKIP[suite.name])

_EXPECT = re.compile(r"^\s*#\s*expect:\s*(pass|fail)\b")
_STATEMENT = re.compile(r"^\s*(test|assert)\s")


def expectations(path: Path) -> dict[int, str]:
    """Line of each test or assert -> the outcome its `# expect:` comment gives."""
    found: dict[int, str] = {}
    pending = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _EXPECT.match(line)
        if m:
            pending = m.group(1)
        elif _STATEMENT.match(line) and pending is not None:
            found[number] = pending
            pending = None
    return found


def case_test_files(suite: Path) -> list[Path]:
    return sorted(suite.glob("*_test.policy"))


def replay_breaks(paths: list[Path], assertion: A.Assertion, cx: dict[str, Any]) -> bool:
    """Whether the counterexample, replayed through `decide`, breaks the assertion: the
    instant lies in the window, the listing satisfies the expression and the effect is
    not (always) / is (never) the one claimed."""
    policies = dsl.load(paths)
    ps = policies.policy_set
    (tz,) = {p.tz for p in ps.policies}
    at = parse_instant(cx["at"], tz)
    from dsl.model import when_instant

    start, end = when_instant(assertion.from_, tz), when_instant(assertion.until, tz)
    if (start is not None and at < start) or (end is not None and at >= end):
        return False
    if not holds(resolve_sets(assertion.expr, ps.sets), cx["listing"], tz):
        return False
    effect = policies.decide(cx["listing"], at=cx["at"], prior_violations=cx["prior_violations"]).effect
    return effect != assertion.effect if assertion.quantifier == "always" else effect == assertion.effect


def statements(path: Path) -> dict[int, Any]:
    from dsl.syntax import parse

    file, _ = parse(path.read_text(encoding="utf-8"), str(path), test_file=True)
    return {s.span.line: s for s in file.statements}


def check_case(suite: Path, results: list[dict[str, Any]]) -> None:
    for test_file in case_test_files(suite):
        want = expectations(test_file)
        stmts = statements(test_file)
        got = {r["line"]: r for r in results if Path(r["file"]) == test_file}
        assert sorted(got) == sorted(want), "every test and assert is reported"
        for line, outcome in want.items():
            r = got[line]
            assert r["outcome"] == outcome, (r["name"], r)
            if r["kind"] == "assert" and r["outcome"] == "fail":
                assert replay_breaks([suite], stmts[line], r["counterexample"]), r


@pytest.mark.parametrize("suite", conformance_suites(), ids=lambda p: p.name)
def test_conformance_examples(suite: Path) -> None:
    """The examples' outcomes (these need no analysis)."""
    _skip(suite)
    model, loaded, _ = compile_paths([suite])
    assert model is not None and not check_test_files(model, loaded)
    report = run_tests(model, loaded)
    for test_file in case_test_files(suite):
        want = expectations(test_file)
        for r in report.results:
            if r.kind == "test" and Path(r.file) == test_file:
                assert r.outcome == want[r.line], r


@pytest.mark.parametrize("suite", conformance_suites(), ids=lambda p: p.name)
def test_conformance_case(suite: Path) -> None:
    """Every test and assert as its `# expect:` comment says, through the command's JSON;
    every printed counterexample replays and breaks its assertion."""
    _skip(suite)
    result = CliRunner().invoke(main, ["test", str(suite), "--format", "json"])
    assert result.exit_code == 1, result.output  # each suite holds expected failures
    check_case(suite, json.loads(result.output))


@pytest.mark.skipif(not CONFORMANCE_TESTS.exists(), reason="../shared/conformance is not beside the repository")
def test_conformance_case_with_a_searching_stand_in() -> None:
    """The same, with a stand-in analysis that searches instead of proving: the runner,
    the replay and the shrinker, whatever the state of the analysis."""
    result = run_command([CONFORMANCE_TESTS], fmt="json", prover=search_prover(examples=300))
    assert result.exit_code == 1, result.text
    results = json.loads(result.text)
    check_case(CONFORMANCE_TESTS, results)
    naive = next(r for r in results if r["name"] == "a claim without its window fails")
    assert naive["counterexample"]["listing"] == {"category": "Blockchain Miners", "platform": "taobao"}


# ---------------------------------------------------------------- policies/


def suites() -> list[Path]:
    return sorted({p.parent for p in (ROOT / "policies").rglob("*_test.policy")})


@pytest.mark.parametrize("suite", [*suites(), ROOT / "policies"], ids=lambda p: p.name)
def test_policy_suite_examples_pass_with_full_coverage(suite: Path) -> None:
    model, loaded, diags = compile_paths([suite])
    assert model is not None, [str(d) for d in diags]
    assert [d for d in check_test_files(model, loaded) if d.severity == "error"] == []
    report = run_tests(model, loaded, kinds=("test",))
    failed = [(r.file, r.line, r.name, r.problems) for r in report.results if not r.passed]
    assert failed == []
    assert report.coverage.uncovered == (), "every rule applies in some example"


@pytest.mark.parametrize("suite", suites(), ids=lambda p: p.name)
def test_policy_suite_passes(suite: Path) -> None:
    result = CliRunner().invoke(main, ["test", str(suite), "--min-coverage", "100"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"\d+ passed, 0 failed", result.output.splitlines()[-1])
