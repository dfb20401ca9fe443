"""CI integration: the pre-commit hooks (.pre-commit-hooks.yaml) and the composite GitHub
Action (action.yml).

The hooks are run for real: pre-commit installs this checkout (its files as they are now,
committed into a scratch repository) into an environment of its own, with the package's
dependencies from the package index, then runs on a sample repository. That needs the
index; without it the test fails and says so (``POLICY_NO_NETWORK=1`` skips it on purpose,
with that reason). The action as a whole runs only on GitHub: its structure is checked,
every `policy` command line in it is parsed with the CLI's own options, and the scripts of
its check, test and diff steps are run with bash in a sample repository.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from dsl import format_source
from dsl.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOOK_IDS = ["policy-check", "policy-fmt", "policy-test"]


def manifest() -> list[dict[str, Any]]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert isinstance(hooks, list)
    return hooks


def parses(argv: list[str]) -> None:
    """``policy ARGV`` is accepted by the CLI's own options (nothing is run)."""
    assert argv and argv[0] == "policy", argv
    command = main.get_command(click.Context(main), argv[1])
    assert command is not None, f"`{shlex.join(argv)}`: policy has no command {argv[1]!r}"
    try:
        command.make_context(argv[1], argv[2:])
    except click.ClickException as e:
        pytest.fail(f"`{shlex.join(argv)}` does not parse: {e.format_message()}")


# --------------------------------------------------------------------------- pre-commit


def test_hooks_manifest() -> None:
    hooks = {h["id"]: h for h in manifest()}
    assert list(hooks) == HOOK_IDS
    for hook_id, hook in hooks.items():
        assert hook["language"] == "python", hook_id
        assert re.search(hook["files"], "policies/shop.policy"), hook_id
        assert not re.search(hook["files"], "policies/shop.policy.orig"), hook_id
        parses(shlex.split(hook["entry"]) + ["policies/"])
    # The set is checked and tested whole; fmt rewrites the files it is given, in place.
    assert hooks["policy-check"]["pass_filenames"] is False
    assert hooks["policy-test"]["pass_filenames"] is False
    assert hooks["policy-fmt"].get("pass_filenames", True) is True
    assert "--check" not in hooks["policy-fmt"]["entry"] and "--diff" not in hooks["policy-fmt"]["entry"]


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def snapshot(dest: Path) -> str:
    """This checkout's files as they are (tracked and untracked, not ignored) committed in a
    new repository at ``dest``; its commit."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git("init", "-q", cwd=dest)
    git("add", ".", cwd=dest)
    git("commit", "-q", "-m", "snapshot", cwd=dest)
    return git("rev-parse", "HEAD", cwd=dest).strip()


SHOP = """policy shop
ladder escalate = remove listing then close account
rule ivory: block mentions 'ivory' penalty escalate
"""
SHOP_TEST = """test 'ivory is blocked' given {title: 'ivory comb'} at 2024-01-01
  expect block by ivory penalty escalate step 1
"""


def write_canonical(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_source(text), encoding="utf-8")


def pre_commit(sample: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=sample, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)


def hook_status(output: str) -> dict[str, str]:
    """``policy check......Passed`` lines: hook name to Passed, Failed or Skipped."""
    return {m[1]: m[2] for m in re.finditer(r"^(policy \w+)\.+\(?[^\n]*?(Passed|Failed|Skipped)$", output, re.M)}


NETWORK_WORDS = ("Could not find a version", "No matching distribution", "Connection", "Network is unreachable",
                 "Temporary failure in name resolution", "Max retries exceeded")


def install(sample: Path, home: Path) -> None:
    if os.environ.get("POLICY_NO_NETWORK") == "1":
        pytest.skip("POLICY_NO_NETWORK=1: pre-commit needs the package index to install the hooks' environment")
    done = pre_commit(sample, home, "install-hooks")
    if done.returncode != 0:
        log = (home / "pre-commit.log").read_text(encoding="utf-8") if (home / "pre-commit.log").exists() else ""
        offline = any(w in done.stdout + done.stderr + log for w in NETWORK_WORDS)
        reason = ("it looks like the package index cannot be reached: this test needs it "
                  "(POLICY_NO_NETWORK=1 skips it on purpose)\n" if offline else "")
        pytest.fail(f"pre-commit could not install the hooks' environment: {reason}"
                    f"{done.stdout}\n{done.stderr}\n{log[-4000:]}")


def test_hooks_on_a_sample_repository(tmp_path: Path) -> None:
    hooks_repo, sample, home = tmp_path / "hooks", tmp_path / "sample", tmp_path / "cache"
    hooks_repo.mkdir()
    sample.mkdir()
    rev = snapshot(hooks_repo)
    config = {"repos": [{"repo": str(hooks_repo), "rev": rev, "hooks": [{"id": i} for i in HOOK_IDS]}]}
    (sample / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    write_canonical(sample / "policies" / "shop.policy", SHOP)
    write_canonical(sample / "policies" / "shop_test.policy", SHOP_TEST)
    git("init", "-q", cwd=sample)
    git("add", ".", cwd=sample)
    install(sample, home)

    clean = pre_commit(sample, home, "run", "--all-files")
    assert clean.returncode == 0, f"a clean sample repository fails:\n{clean.stdout}\n{clean.stderr}"
    assert hook_status(clean.stdout) == dict.fromkeys(["policy check", "policy fmt", "policy test"], "Passed"), \
        clean.stdout

    # A file out of layout, and a test that now expects the wrong effect: fmt rewrites the
    # file and fails, test fails, check (the set is fine) passes.
    messy = "policy   other\nrule  ivory-flag : flag mentions 'ivory carving'\n"
    (sample / "policies" / "other.policy").write_text(messy, encoding="utf-8")
    (sample / "policies" / "shop_test.policy").write_text(
        format_source(SHOP_TEST.replace("expect block by ivory penalty escalate step 1", "expect allow")),
        encoding="utf-8")
    git("add", ".", cwd=sample)
    second = pre_commit(sample, home, "run", "--all-files")
    status = hook_status(second.stdout)
    assert second.returncode == 1, second.stdout
    assert status == {"policy check": "Passed", "policy fmt": "Failed", "policy test": "Failed"}, second.stdout
    assert "files were modified by this hook" in second.stdout
    assert (sample / "policies" / "other.policy").read_text(encoding="utf-8") == format_source(messy)
    assert "ivory is blocked" in second.stdout

    # An error in the set: check fails and shows the finding.
    (sample / "policies" / "shop.policy").write_text(format_source(SHOP.replace("penalty escalate",
                                                                                "penalty escalte")),
                                                     encoding="utf-8")
    git("add", ".", cwd=sample)
    third = pre_commit(sample, home, "run", "--all-files")
    assert third.returncode == 1
    assert hook_status(third.stdout)["policy check"] == "Failed", third.stdout
    assert "error[P201]" in third.stdout and "did you mean 'escalate'?" in third.stdout, third.stdout


# --------------------------------------------------------------------------- the action


def action() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_action_structure() -> None:
    data = action()
    assert data["name"] and data["description"]
    assert data["runs"]["using"] == "composite"
    assert {"paths", "python-version", "diff-base"} <= set(data["inputs"])
    for name, spec in data["inputs"].items():
        assert spec.get("description"), name
        assert "default" in spec or spec.get("required"), name
    steps = data["runs"]["steps"]
    for step in steps:
        assert step.get("name"), step
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step.get("shell") == "bash", f"{step['name']}: a composite step with run needs shell"
            # Inputs reach scripts through env, never pasted into the script's text.
            assert "${{" not in step["run"], f"{step['name']}: an expression inside run"
    used = {name for step in steps for name in re.findall(r"inputs\.([\w-]+)", yaml.safe_dump(step))}
    assert used <= set(data["inputs"]), used - set(data["inputs"])
    runs = " ".join(step.get("run", "") for step in steps)
    assert "--format github" in runs and "--format junit" in runs and "--format markdown" in runs
    diff = next(step for step in steps if "policy diff" in step.get("run", ""))
    assert "github.event_name == 'pull_request'" in diff["if"]


SAMPLE_ENV = {"POLICY_PATHS": "policies/ more/", "JUNIT_FILE": "policy-tests.xml", "BASE": "origin/main",
              "OLD": "origin/main:./policies/", "DIFF_PATH": "policies/", "FAIL_ON": "block→allow",
              "OUT": "/tmp/out.md"}


def command_lines(script: str) -> list[str]:
    """The `policy …` commands of a shell script, up to a redirection or a shell operator."""
    found = []
    for line in script.splitlines():
        if line.strip().startswith(("#", "echo ")):
            continue
        for m in re.finditer(r"(?:^|[\s!])(policy\s[^;|&>]*)", line.strip()):
            found.append(m[1].strip())
    return found


def expand(command: str, env: dict[str, str], script: str) -> list[str]:
    used = set(re.findall(r"\$\{?(\w+)", command))
    missing = used - set(SAMPLE_ENV)
    assert not missing, f"{command}: variables this test has no sample for: {missing}"
    assigned = set(re.findall(r"(?:^|[\s)])(\w+)=", script, re.M))
    undefined = used - set(env) - assigned
    assert not undefined, f"{command}: neither in the step's env nor set by its script: {undefined}"
    return shlex.split(re.sub(r"\$\{?(\w+)\}?", lambda m: SAMPLE_ENV[m[1]], command))


def test_action_commands_parse() -> None:
    seen = set()
    for step in action()["runs"]["steps"]:
        env = {k: str(v) for k, v in (step.get("env") or {}).items()}
        for command in command_lines(step.get("run", "")):
            argv = expand(command, env, step["run"])
            seen.add(argv[1])
            if argv[1:] == ["diff", "--help"]:
                continue  # the guard: asks whether the command exists
            if argv[1] == "diff" and "diff" not in main.commands:
                # policy diff is being built (issue 14): the step runs it only when it exists.
                assert "if ! policy diff --help" in step["run"], "an unguarded policy diff"
                continue
            parses(argv)
    assert {"check", "test", "diff"} <= seen


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A step's script as GitHub runs a ``shell: bash`` step, with ``env``."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          env={**os.environ, "PATH": path, **env}, capture_output=True, text=True, timeout=600,
                          check=False)


def test_action_scripts_run(tmp_path: Path) -> None:
    """The check, test and diff steps' scripts, run with bash in a sample repository whose
    working tree adds a rule to its last commit."""
    steps = {step.get("id"): step for step in action()["runs"]["steps"]}
    repo = tmp_path / "repo"
    write_canonical(repo / "policies" / "shop.policy", SHOP)
    write_canonical(repo / "policies" / "shop_test.policy", SHOP_TEST)
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "base", cwd=repo)
    write_canonical(repo / "policies" / "shop.policy", SHOP + "rule combs: flag title contains 'comb'\n")
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    github = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}

    check = run_step(steps["check"], repo, {"POLICY_PATHS": "", "STRICT": "true"})
    assert check.returncode == 0, check.stdout + check.stderr
    test = run_step(steps["test"], repo, {"POLICY_PATHS": "policies/", "JUNIT_FILE": "tests.xml"})
    assert test.returncode == 0, test.stdout + test.stderr
    assert "<testsuite" in (repo / "tests.xml").read_text(encoding="utf-8")

    diff_env = {"BASE": "HEAD", "BASE_REF": "main", "DIFF_PATH": ".", "FAIL_ON": "", "OUT": str(tmp_path / "d.md"),
                **github}
    diff = run_step(steps["diff"], repo, diff_env)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    if "diff" not in main.commands:
        assert "has no diff command" in diff.stdout
        return
    assert "combs" in summary.read_text(encoding="utf-8")
    assert outputs.read_text(encoding="utf-8") == f"file={tmp_path / 'd.md'}\n"
    # A kind named in diff-fail-on fails the step; changes of other kinds do not.
    failing = run_step(steps["diff"], repo, {**diff_env, "DIFF_PATH": "policies/", "FAIL_ON": "allow→flag"})
    assert failing.returncode == 1, failing.stdout + failing.stderr
    passing = run_step(steps["diff"], repo, {**diff_env, "FAIL_ON": "block→allow"})
    assert passing.returncode == 0, passing.stdout + passing.stderr
