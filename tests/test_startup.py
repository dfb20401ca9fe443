"""Start-up: `import dsl.cli` and `policy check --no-analysis` import none of the heavy
libraries that only other commands need (z3 for the analysis, Hypothesis, DuckDB and
pyarrow for scan, pygls for the language server), nor the test runner. Each runs in a
fresh interpreter, so that what other tests imported does not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("z3", "hypothesis", "duckdb", "pyarrow", "pygls", "pyspark")


def modules_after(code: str) -> set[str]:
    """The modules loaded once ``code`` has run in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_cli_imports_no_heavy_library() -> None:
    loaded = modules_after("import dsl.cli")
    assert [m for m in HEAVY if m in loaded] == []
    assert "dsl.testing.runner" not in loaded and "dsl.evaluate.compiled" not in loaded


def test_check_without_analysis_imports_no_heavy_library() -> None:
    code = ("import dsl.cli\n"
            "try:\n"
            "    dsl.cli.main(['check', '--no-analysis', 'policies/'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code")
    loaded = modules_after(code)
    assert [m for m in HEAVY if m in loaded] == []
    assert "dsl.testing.runner" not in loaded and "dsl.analysis" not in loaded
    assert "dsl.testing.checks" in loaded, "the test files under policies/ were checked"


def test_policy_test_imports_no_hypothesis() -> None:
    """The attack on assertions draws from a seeded random source, not through Hypothesis."""
    code = ("import dsl.cli\n"
            "try:\n"
            "    dsl.cli.main(['test', 'policies/alibaba'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code")
    loaded = modules_after(code)
    assert "hypothesis" not in loaded and "dsl.testing.attack" in loaded


def test_a_set_read_from_the_parse_cache_imports_no_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lark comes with the first parse: `import dsl.cli` does not import it, and a second
    `policy check` of the same files reads their parses from the cache (``dsl.syntax.cache``)
    without it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("POLICY_DSL_CACHE", raising=False)
    assert "lark" not in modules_after("import dsl.cli")
    code = ("import dsl.cli\n"
            "try:\n"
            "    dsl.cli.main(['check', '--no-analysis', 'policies/'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code")
    assert "lark" in modules_after(code)  # parsed, and kept
    assert "lark" not in modules_after(code)
