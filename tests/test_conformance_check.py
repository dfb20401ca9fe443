"""The conformance corpus's `check/` cases, run in place with `policy check PATH --format
json`: the errors and warnings reported must be exactly those listed (file, code, line, and
the column and severity where given); info findings are compared only where listed;
suppressed findings are not compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conformance import CORPUS, check_cases, expected_findings

from dsl.cli import main

SKIP: dict[str, str] = {}
"""Cases that cannot pass yet, each with its reason. Empty: every case passes; keep it so."""


def _name(case: Path) -> str:
    return case.stem if case.is_file() else case.name


def _findings(case: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["check", str(case), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return [f for f in json.loads(result.output) if not f.get("suppressed")]


def _file(finding: dict[str, Any]) -> Path:
    return Path(finding["file"]).resolve()


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/conformance is not beside the repository")
@pytest.mark.parametrize("case", check_cases(), ids=_name)
def test_check_case(case: Path) -> None:
    if _name(case) in SKIP:
        pytest.skip(SKIP[_name(case)])
    expected, _nothing = expected_findings(case)
    listed_info = {e.code for e in expected}
    got = [f for f in _findings(case) if f["severity"] in ("error", "warning") or f["code"] in listed_info]
    got_keys = sorted((str(_file(f)), f["code"], f["line"]) for f in got)
    want_keys = sorted((str(e.file), e.code, e.line) for e in expected)
    assert got_keys == want_keys, "\n".join(
        f"{f['code']} {f['file']}:{f['line']}:{f['column']} {f['severity']} {f['message']}" for f in got)
    for e in expected:
        match = [f for f in got if _file(f) == e.file and f["code"] == e.code and f["line"] == e.line]
        if e.column is not None:
            assert any(f["column"] == e.column for f in match), e
        if e.severity is not None:
            assert any(f["severity"] == e.severity for f in match), e
