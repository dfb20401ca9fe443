"""The conformance corpus's `decisions/` cases, run in place through BOTH evaluators.

Each suite is a policy set and a `decisions.jsonl` of cases. `effect`, `rules`,
`overridden` and `penalty` are compared exactly; where the case gives `"warnings": N`, the
decision must carry exactly N input warnings; where it gives `"at"`, the decision's `at`
must be that string.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conformance import CORPUS

import dsl

DECISIONS = CORPUS / "decisions"

SKIP: dict[str, str] = {}
"""Cases ("suite/case name") that cannot pass yet, each with its reason. Empty: every case
passes; keep it that way."""


def _cases() -> list[Any]:
    out = []
    if not DECISIONS.exists():
        return out
    for suite in sorted(p for p in DECISIONS.iterdir() if p.is_dir()):
        lines = (suite / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
        for line in lines:
            if line.strip():
                case = json.loads(line)
                out.append(pytest.param(suite, case, id=f"{suite.name}/{case['name']}"))
    return out


_LOADED: dict[Path, dsl.Policies] = {}


def _policies(suite: Path) -> dsl.Policies:
    if suite not in _LOADED:
        _LOADED[suite] = dsl.load([suite])
    return _LOADED[suite]


@pytest.mark.skipif(not DECISIONS.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("evaluator", ["compiled", "reference"])
@pytest.mark.parametrize("suite, case", _cases())
def test_decision_case(suite: Path, case: dict[str, Any], evaluator: str) -> None:
    key = f"{suite.name}/{case['name']}"
    if key in SKIP:
        pytest.skip(SKIP[key])
    policies = _policies(suite)
    decide = policies.decide if evaluator == "compiled" else policies.decide_reference
    decision = decide(case["listing"], at=case["at"], prior_violations=case.get("prior_violations", 0))
    got = decision.to_dict()
    expect = case["expect"]
    for key_ in ("effect", "rules", "overridden", "penalty"):
        assert got[key_] == expect[key_], f"{key_}: got {got[key_]!r}, expected {expect[key_]!r}"
    if "warnings" in expect:
        assert len(got["warnings"]) == expect["warnings"], got["warnings"]
    if "at" in expect:
        assert got["at"] == expect["at"]


@pytest.mark.skipif(not DECISIONS.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("suite", sorted(p for p in DECISIONS.iterdir() if p.is_dir()) if DECISIONS.exists() else [],
                         ids=lambda p: p.name)
def test_suite_as_batch(suite: Path) -> None:
    """decide_many gives, case by case, the decision that decide gives (and the
    reference's, whole decisions compared)."""
    policies = _policies(suite)
    lines = (suite / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    for case in cases:
        at, prior = case["at"], case.get("prior_violations", 0)
        [batch] = policies.decide_many([case["listing"]], at=at, prior_violations=prior)
        one = policies.decide(case["listing"], at=at, prior_violations=prior)
        ref = policies.decide_reference(case["listing"], at=at, prior_violations=prior)
        assert batch == one == ref
        assert one.to_dict() == ref.to_dict()
        assert isinstance(policies.explain_decision(one, case["listing"], prior), str)
