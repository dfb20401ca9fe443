"""The built wheel, installed into a fresh virtualenv, finds its grammar and runs
`policy check` (an editable install proves nothing about packaging)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("policy_dsl-*.whl")
    return whl


def test_wheel_ships_the_grammar(wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "dsl/_grammar/policy.lark" in names
    assert "dsl/syntax/parse.py" in names


def test_installed_wheel_runs_policy_check(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True)
    # Dependencies come from the test environment's site-packages, appended after the
    # fresh environment's own, so the wheel's `dsl` is the one imported.
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "ok.policy").write_text("policy ok\nrule r: block category 'Blockchain Miners'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    probe = "import dsl, dsl.syntax as s; print(dsl.__file__); print(s.grammar_text()[:20])"
    where = subprocess.run([str(py), "-c", probe], cwd=work, env=env, check=True, capture_output=True, text=True).stdout
    assert str(env_dir) in where.splitlines()[0]
    proc = subprocess.run([str(env_dir / "bin" / "policy"), "check", "--no-analysis", "."],
                          cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no problems found" in proc.stdout
