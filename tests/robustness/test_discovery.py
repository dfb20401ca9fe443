"""No policy file is left out quietly (issue 10, item 2): a directory that cannot be
listed, or a `*.policy` entry that cannot be read, is P001 at its path; `dsl.load` raises."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dsl
from dsl.checking.loader import find_policy_files
from dsl.cli import main

CLEAN = "policy p\nrule r: block category 'Blockchain Miners'\n"


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "p.policy").write_text(CLEAN)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "q.policy").write_text(CLEAN.replace("policy p", "policy q"))
    return tmp_path


def _unlistable(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Make ``directory`` fail to list as mode 000 does (tests run as root, which chmod
    cannot stop)."""
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.path.abspath(path) == str(directory.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def _check_json(path: Path) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(main, ["check", str(path), "--format", "json", "--no-analysis"])
    return result.exit_code, json.loads(result.stdout)


def _p001(findings: list[dict[str, Any]]) -> dict[str, str]:
    return {f["file"]: f["message"] for f in findings if f["code"] == "P001"}


def test_dangling_link(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "sub" / "gone.policy").symlink_to("nowhere.policy")
    code, findings = _check_json(root)
    assert code == 1
    assert "nowhere.policy" in _p001(findings)[str(root / "sub" / "gone.policy")]
    with pytest.raises(dsl.PolicyError) as e:
        dsl.load(root)
    assert [d.code for d in e.value.diagnostics] == ["P001"]


def test_unlistable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    _unlistable(monkeypatch, root / "sub")
    code, findings = _check_json(root)
    assert code == 1
    [(where, message)] = _p001(findings).items()
    assert where == str(root / "sub") and "Permission denied" in message
    with pytest.raises(dsl.PolicyError):
        dsl.load(root)


def test_an_unlistable_top_directory_is_p001_not_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    _unlistable(monkeypatch, root)
    found = find_policy_files([root])
    assert found.files == () and [d.code for d in found.problems] == ["P001"]


def test_a_directory_with_only_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "gone.policy").symlink_to("nowhere.policy")
    assert [d.code for d in find_policy_files([tmp_path]).problems] == ["P001"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_is_not_read(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.mkfifo(root / "pipe.policy")
    found = find_policy_files([root])
    assert [d.message for d in found.problems] == ["cannot read the file: it is not a regular file"]
    assert [p.name for p in found.files] == ["p.policy", "q.policy"]


def test_links_to_directories_are_not_followed_and_other_files_are_ignored(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "loop").symlink_to(root)
    (root / "notes.txt").write_text("not a policy")
    (root / "gone.txt").symlink_to("nowhere")
    found = find_policy_files([root])
    assert [p.name for p in found.files] == ["p.policy", "q.policy"] and found.problems == ()


def test_fmt_reports_the_problem_and_formats_the_rest(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "p.policy").write_text(CLEAN.replace("rule r: ", "rule r:    "))
    (root / "gone.policy").symlink_to("nowhere.policy")
    result = CliRunner().invoke(main, ["fmt", str(root)])
    assert result.exit_code == 1
    assert "P001" in result.stderr and "gone.policy" in result.stderr
    assert "rule r: block" in (root / "p.policy").read_text()
