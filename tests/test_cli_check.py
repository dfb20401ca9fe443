"""`policy check` through click's CliRunner, and once end to end through the installed
command; bad paths and bad files get a message and an exit status, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsl.cli import main

CLEAN = "policy clean\nrule r: block category 'Blockchain Miners'\n"
UNNAMED = "policy unnamed\nblock category 'Blockchain Miners'\n"
BROKEN = "policy broken\nrule r: blok category 'X'\nrule s: block penalty escalte\n"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "clean.policy").write_text(CLEAN)
    return tmp_path


def test_clean(tree: Path) -> None:
    code, out, _ = run("check", str(tree))
    assert code == 0 and "no problems found" in out


def test_errors_exit_1_with_excerpt_and_caret(tmp_path: Path) -> None:
    (tmp_path / "broken.policy").write_text(BROKEN)
    code, out, _ = run("check", str(tmp_path))
    assert code == 1
    assert "error[P100]" in out and "^" in out and "rule r: blok" in out
    assert "error[P201]" in out and "did you mean" not in out.split("P201")[1].split("\n")[0]


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    (tmp_path / "unnamed.policy").write_text(UNNAMED)
    assert run("check", "--no-analysis", str(tmp_path))[0] == 0
    assert run("check", "--no-analysis", "--strict", str(tmp_path))[0] == 1


def test_json_format(tmp_path: Path) -> None:
    (tmp_path / "broken.policy").write_text(BROKEN)
    code, out, _ = run("check", "--format", "json", str(tmp_path))
    data = json.loads(out)
    assert code == 1 and {d["code"] for d in data} == {"P100", "P201"}
    for d in data:
        assert {"code", "severity", "file", "line", "column", "end_line", "end_column", "message"} <= d.keys()


def test_sarif_and_github_formats(tmp_path: Path) -> None:
    (tmp_path / "broken.policy").write_text(BROKEN)
    code, out, _ = run("check", "--format", "sarif", str(tmp_path))
    assert code == 1 and json.loads(out)["version"] == "2.1.0"
    code, out, _ = run("check", "--format", "github", str(tmp_path))
    assert code == 1 and out.startswith("::error file=")


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path / "nope"))
    assert code == 2 and "no such file" in err


def test_directory_without_policies(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path))
    assert code == 2 and "no *.policy files" in err


def test_bad_flag_is_a_usage_error(tree: Path) -> None:
    assert run("check", "--format", "xml", str(tree))[0] == 2


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.policy").write_bytes(b"policy p\nrule r: block category 'Caf\xe9'\n")
    code, out, _ = run("check", str(tmp_path))
    assert code == 1 and "P002" in out and ":2:" in out


def test_nul_byte(tmp_path: Path) -> None:
    (tmp_path / "nul.policy").write_bytes(b"policy p\nrule r: block\x00 category 'x'\n")
    code, out, _ = run("check", str(tmp_path))
    assert code == 1 and "P100" in out and "U+0000" in out and "\x00" not in out


def test_huge_file(tmp_path: Path) -> None:
    (tmp_path / "huge.policy").write_text("policy huge\n" + "# padding\n" * 1_100_000)
    code, out, _ = run("check", str(tmp_path))
    assert code == 1 and "P003" in out


def test_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "secret.policy"
    p.write_text(CLEAN)
    p.chmod(0)
    try:
        if p.open("rb"):  # root can read anything: nothing to test then
            pytest.skip("running as root: files cannot be made unreadable")
    except PermissionError:
        code, out, _ = run("check", str(tmp_path))
        assert code == 1 and "P001" in out
    finally:
        p.chmod(0o644)


def test_empty_file_is_clean(tmp_path: Path) -> None:
    (tmp_path / "empty.policy").write_text("")
    assert run("check", str(tmp_path))[0] == 0


def test_deep_parentheses(tmp_path: Path) -> None:
    (tmp_path / "deep.policy").write_text("policy deep\nrule r: block " + "(" * 1000 + "x exists" + ")" * 1000 + "\n")
    code, out, _ = run("check", str(tmp_path))
    assert code == 1 and "P100" in out


def test_test_files_are_not_part_of_the_set(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(CLEAN)
    (tmp_path / "p_test.policy").write_text(
        "test 'x' given {category: 'Blockchain Miners'} at 2022-01-01 expect block\n")
    code, out, _ = run("check", str(tmp_path))
    assert code == 0, out


def test_analysis_budget(tmp_path: Path) -> None:
    import time

    rules = "".join(f"rule r{i}: block price > {i} and price < {i + 50} and mentions 'w{i % 5}' "
                    f"penalty {'warn seller' if i % 2 else 'remove listing'}\n" for i in range(40))
    (tmp_path / "heavy.policy").write_text(
        "policy heavy\nrule dead: from 2021-10-08 until 2021-10-01 block category 'X'\n" + rules)
    t0 = time.perf_counter()
    code, out, _ = run("check", "--analysis-budget", "0.05", "--format", "json", str(tmp_path))
    assert time.perf_counter() - t0 < 10
    data = json.loads(out)
    assert code == 0 and isinstance(data, list)  # still the spec's array of findings
    cut = [d for d in data if d["code"] == "P399"]
    assert cut and all(d["data"]["analysis_budget"]["budget_seconds"] == 0.05 for d in cut)
    assert ({"questions_asked", "questions_answered", "questions_left", "seconds_used"}
            <= cut[0]["data"]["analysis_budget"].keys())
    assert any(d["code"] == "P300" and d["line"] == 2 for d in data)
    code, _, err = run("check", "--analysis-budget", "0", str(tmp_path))
    assert code == 2 and "--analysis-budget" in err


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_a_file_name_that_is_not_utf8_in_json_and_sarif(tmp_path: Path, fmt: str) -> None:
    (tmp_path / b"\xff\xfe.policy".decode("utf-8", "surrogateescape")).write_text(UNNAMED)
    proc = subprocess.run([sys.executable, "-m", "dsl", "check", ".", "--format", fmt], capture_output=True,
                          cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == b""
    data = json.loads(proc.stdout.decode("utf-8"))  # the output is UTF-8
    if fmt == "json":
        assert [d["file"].encode("utf-8", "surrogateescape") for d in data] == [b"\xff\xfe.policy"]
    else:
        [result] = data["runs"][0]["results"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "%FF%FE.policy"


@pytest.mark.parametrize("budget", ["nan", "inf", "1e400"])
def test_an_analysis_budget_that_is_no_finite_number_is_a_usage_error(tmp_path: Path, budget: str) -> None:
    """float() reads these, FloatRange let them through, and the solver's timeout raised
    ValueError (nan) or OverflowError (inf) as a traceback."""
    (tmp_path / "p.policy").write_text(CLEAN)
    result = CliRunner().invoke(main, ["check", "--analysis-budget", budget, str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert "--analysis-budget" in result.output and "finite" in result.output
    import dsl

    with pytest.raises(dsl.UsageError, match="analysis budget"):
        dsl.check(tmp_path, analysis_budget=float(budget))


def test_installed_command_end_to_end(tree: Path) -> None:
    exe = Path(sys.executable).parent / "policy"
    assert exe.exists(), "the package's console script is not installed beside the interpreter"
    proc = subprocess.run([str(exe), "check", str(tree)], capture_output=True, text=True)
    assert proc.returncode == 0 and "no problems found" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "dsl", "check", str(tree / "nope")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_a_ladder_with_a_syntax_error_that_a_rule_names_is_reported_not_a_traceback(tmp_path: Path) -> None:
    """The ladder is dropped by the parser's recovery, and its name is not reported unknown
    (a syntax error was found): the model must not be built from what is left."""
    (tmp_path / "p.policy").write_text("policy p\nladder esc = warn then remove listing\n"
                                       "rule r: block price > 1 penalty esc\n")
    code, out, _ = run("check", "--no-analysis", str(tmp_path))
    assert code == 1 and "error[P1" in out
