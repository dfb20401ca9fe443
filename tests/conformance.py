"""Reading the shared conformance corpus in place (../shared/conformance).

A `check/` case is a file `NN-name.policy` or a folder `NN-name/` (several files, perhaps a
`policy.toml`). Its `# expect:` lines read `CODE at LINE`, `CODE at LINE:COLUMN` or
`CODE at FILE:LINE` (another file of the case), optionally followed by a severity."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "conformance"

_EXPECT = re.compile(r"#\s*expect:\s*(.*)$")
_FINDING = re.compile(
    r"^(?P<code>P\d{3}) at (?:(?P<file>[^\s:]*[^\s:\d][^\s:]*):)?(?P<line>\d+)(?::(?P<column>\d+))?"
    r"(?:\s+(?P<severity>error|warning|info))?$")


@attrs.frozen
class Expected:
    """One finding a check case expects."""

    file: Path
    code: str
    line: int
    column: int | None = None
    severity: str | None = None


def check_cases() -> list[Path]:
    """Every check case: `*.policy` files and case folders, by name."""
    folder = CORPUS / "check"
    return sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix == ".policy") if folder.is_dir() else []


def case_files(case: Path) -> list[Path]:
    """The files of a case that may carry `# expect:` lines."""
    return sorted(p for p in case.iterdir() if p.is_file()) if case.is_dir() else [case]


def expected_findings(case: Path) -> tuple[list[Expected], bool]:
    """The `# expect:` findings of a check case, and whether it says `nothing`."""
    found: list[Expected] = []
    nothing = False
    for path in case_files(case):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = _EXPECT.search(line)
            if not m:
                continue
            body = m.group(1).strip()
            if body == "nothing":
                nothing = True
                continue
            f = _FINDING.match(body)
            assert f, f"{path.name}: cannot read expectation {body!r}"
            target = path.parent / f["file"] if f["file"] else path
            found.append(Expected(target.resolve(), f["code"], int(f["line"]),
                                  int(f["column"]) if f["column"] else None, f["severity"]))
    return found, nothing
