"""Reading the shared conformance corpus in place (../shared/conformance)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "conformance"

_EXPECT = re.compile(r"#\s*expect:\s*(.*)$")
_FINDING = re.compile(r"^(P\d{3}) at (\d+)(?::(\d+))?$")


def check_cases() -> list[Path]:
    return sorted((CORPUS / "check").glob("*.policy"))


def expected_findings(path: Path) -> tuple[list[tuple[str, int, int | None]], bool]:
    """The `# expect:` findings of a check case: (code, line, column or None), and
    whether the case says `nothing`."""
    found: list[tuple[str, int, int | None]] = []
    nothing = False
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
        found.append((f.group(1), int(f.group(2)), int(f.group(3)) if f.group(3) else None))
    return found, nothing
