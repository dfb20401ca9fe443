"""The house's type and lint checks, run by the test suite so that CI enforces them:
`mypy --strict` on the package and `ruff check` (with the complexity rule) on the whole
tree. Their configuration is in pyproject.toml ([tool.mypy], [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy", "dsl")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "--no-cache", "dsl", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr
