"""The conformance corpus's `check/` cases, run in place: the errors and warnings reported
must be exactly those listed; info findings are compared only where listed."""

from __future__ import annotations

from pathlib import Path

import pytest

import dsl
from conformance import CORPUS, check_cases, expected_findings

SKIP: dict[str, str] = {}
"""Cases that cannot pass yet, each with its reason. This list should shrink."""


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("case", check_cases(), ids=lambda p: p.stem)
def test_check_case(case: Path) -> None:
    if case.stem in SKIP:
        pytest.skip(SKIP[case.stem])
    expected, _nothing = expected_findings(case)
    diags = dsl.check([case])
    listed_info = {code for code, _, _ in expected}
    got = [
        d for d in diags
        if d.severity in ("error", "warning") or d.code in listed_info
    ]
    got_keys = sorted((d.code, d.span.line if d.span else 0) for d in got)
    want_keys = sorted((code, line) for code, line, _ in expected)
    assert got_keys == want_keys, "\n".join(f"{d.code} {d.span.line if d.span else '-'}:{d.span.column if d.span else '-'} {d.message}" for d in got)
    for code, line, column in expected:
        if column is not None:
            assert any(d.code == code and d.span and d.span.line == line and d.span.column == column for d in got), (code, line, column)
