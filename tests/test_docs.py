"""Every diagnostic code has its section in docs/checks.md, and the README's links work."""

from __future__ import annotations

import re
from pathlib import Path

from dsl.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[1]


def test_every_code_has_a_docs_section() -> None:
    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (P\d{3}) — ", text, re.M))
    assert headings == set(CODES)


def test_readme_links_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in link:
            assert (ROOT / link).exists(), link
