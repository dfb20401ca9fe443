"""The docs say what is true: every diagnostic code has its section in docs/checks.md, the
README's links work, and every command the docs show runs.

Every line of a ```sh block in README.md and docs/*.md that runs `policy …`,
`.venv/bin/policy …` or `./quickstart` is run, in a copy of the example policies (so that
`policy fmt policies/` rewrites nothing of the checkout). Output the docs show is marked
with an HTML comment just before its block:

    <!-- docs-test: output -->                  the output of the last command or snippet
    <!-- docs-test: output of `CMD`, line N --> line N of the output of CMD, run here

and compared with `…` as a wildcard (within a line; a line that is only `…` stands for
any number of lines). A ```json block is compared as JSON: a string `"…"` stands for any
value, a list `["…"]` for any list, and `…` inside a string for any characters. The
Python snippets of a page run in order in one namespace, in the same copy, with the few
names a snippet leaves to the reader (`listing`, `listings`, `text`, …) defined.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dsl.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(<!-- docs-test: (?P<marker>[^\n]*?) -->\n)?```(?P<lang>\S*)\n(?P<body>.*?)^```\n",
                   re.S | re.M)
OUTPUT_OF = re.compile(r"output of `(?P<cmd>[^`]+)`(?:, line (?P<line>\d+))?$")
RUNS = ("policy ", ".venv/bin/policy ", "./quickstart")

# Lines of ```sh blocks that are not run, each with the reason.
NOT_RUN = {
    "python3 -m venv .venv":
        "installing: the tests run in an installed environment (tests/test_wheel.py builds and installs the wheel)",
    ". .venv/bin/activate": "installing (see above)",
    "pip install -e .": "installing (see above)",
    "./run-tests": "runs the whole test suite, of which this test is part",
    "cd editors/vscode": "building the VS Code extension needs Node.js, npm and the network; "
                         "tests/test_editors.py checks the extension's files instead",
    "npm install": "building the VS Code extension (see above)",
    "npx @vscode/vsce package": "building the VS Code extension (see above)",
    "code --install-extension": "installing into VS Code",
}


def test_every_code_has_a_docs_section() -> None:
    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (P\d{3}) — ", text, re.M))
    assert headings == set(CODES)


def test_readme_links_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in link:
            assert (ROOT / link).exists(), link


# --------------------------------------------------------------------------- helpers


def blocks(page: Path) -> list[tuple[str, str, str | None, int]]:
    """The fenced blocks of a page: (language, body, marker, line)."""
    text = page.read_text(encoding="utf-8")
    return [(m["lang"], m["body"], m["marker"], text.count("\n", 0, m.start("lang")) + 1)
            for m in FENCE.finditer(text)]


def commands(body: str) -> list[str]:
    """The command lines of a ```sh block (comments after `#` dropped, unless quoted)."""
    found = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = shlex.split(line, comments=True)
        line = shlex.join(parts) if ">" not in line else line.split("  #")[0].strip()
        found.append(line)
    return found


def wildcard(expected: str) -> re.Pattern[str]:
    """A pattern for shown text: `…` matches within a line; a line of only `…`, any lines."""
    out = []
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "…":
            out.append(r"(?:[^\n]*\n)*?")
        else:
            out.append(r"[^\n]*?".join(re.escape(p) for p in line.split("…")) + r"\n")
    return re.compile("".join(out))


def assert_text(expected: str, actual: str, where: str) -> None:
    actual = actual.rstrip("\n") + "\n"
    assert wildcard(expected).fullmatch(actual), f"{where}: shown\n{expected}\nbut it prints\n{actual}"


def json_matches(expected: Any, actual: Any) -> bool:
    if expected == "…" or expected == ["…"] and isinstance(actual, list):
        return True
    if isinstance(expected, str) and "…" in expected:
        pattern = ".*".join(map(re.escape, expected.split("…")))
        return isinstance(actual, str) and re.fullmatch(pattern, actual, re.S) is not None
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(json_matches(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(json_matches(e, a) for e, a in zip(expected, actual, strict=True)))
    return bool(expected == actual and type(expected) is type(actual))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the documented commands read: the example policies, the project's
    configuration and ./quickstart, with a .venv whose `policy` is this environment's and
    whose `python -m pip` does nothing (the package is installed already; reinstalling it
    from the copy would repoint the shared editable install)."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "policies", root / "policies")
    for name in ("pyproject.toml", "quickstart"):
        shutil.copy2(ROOT / name, root / name)
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "policy").symlink_to(BIN / "policy")
    python = venv / "python"
    python.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return root


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def documented() -> list[Any]:
    cases = []
    for page in PAGES:
        if any(lang in ("sh", "python") or marker for lang, _, marker, _ in blocks(page)):
            cases.append(pytest.param(page, id=str(page.relative_to(ROOT))))
    return cases


# --------------------------------------------------------------------------- the pages


@pytest.mark.parametrize("page", documented())
def test_documented_commands_and_snippets_run(page: Path, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sandbox)
    namespace: dict[str, Any] = snippet_names(sandbox)
    last = ""
    for lang, body, marker, line in blocks(page):
        where = f"{page.name}:{line}"
        if marker:
            assert_shown(marker, lang, body, last, sandbox, where)
        if lang == "sh":
            for command in commands(body):
                if any(command.startswith(k) for k in NOT_RUN):
                    continue
                assert command.startswith(RUNS), f"{where}: a command this test does not know: {command}"
                done = run(command, sandbox)
                assert done.returncode == 0, f"{where}: {command}\n{done.stdout}\n{done.stderr}"
                last = done.stdout
        elif lang == "python" and runnable(body):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, where, "exec"), namespace)  # noqa: S102 - our own docs
            last = out.getvalue()


def assert_shown(marker: str, lang: str, body: str, last: str, sandbox: Path, where: str) -> None:
    if marker != "output":
        m = OUTPUT_OF.fullmatch(marker)
        assert m, f"{where}: unknown marker {marker!r}"
        done = run(m["cmd"], sandbox)
        last = done.stdout
        if m["line"]:
            last = last.splitlines()[int(m["line"]) - 1]
    if lang == "json":
        actual = json.loads(last)
        assert json_matches(json.loads(body), actual), f"{where}: shown\n{body}\nbut it prints\n{last}"
    else:
        assert_text(body, last, where)


def runnable(body: str) -> bool:
    """A snippet that is a signature list (`-> …`) is reference, not code."""
    return "->" not in body


def snippet_names(sandbox: Path) -> dict[str, Any]:
    """The names a snippet leaves to the reader."""
    listing = {"platform": "xianyu", "category": "Blockchain Miners", "title": "二手比特币矿机 9成新"}
    lines = (sandbox / "policies" / "samples" / "listings.jsonl").read_text(encoding="utf-8").splitlines()

    class Seller:
        violations = 1

    return {
        "__name__": "docs",
        "listing": listing,
        "listings": [json.loads(x)["listing"] for x in lines],
        "text": (sandbox / "policies" / "alibaba" / "crypto-2021.policy").read_text(encoding="utf-8"),
        "event_time": "2021-10-20T00:00:00+08:00",
        "run_started_at": "2021-11-01",
        "seller": Seller(),
        "store": lambda *a: None,
        "log": type("Log", (), {"warning": staticmethod(lambda *a: None)})(),
    }


def test_every_sh_line_is_run_or_has_a_reason() -> None:
    for page in PAGES:
        for lang, body, _, line in blocks(page):
            if lang != "sh":
                continue
            for command in commands(body):
                assert command.startswith(RUNS) or any(command.startswith(k) for k in NOT_RUN), \
                    f"{page.name}:{line}: {command}"


# --------------------------------------------------------------------------- shown elsewhere


def test_sample_table_is_what_eval_prints(sandbox: Path) -> None:
    """getting-started.md's table of the sample decisions, with --at as ./quickstart runs it."""
    quickstart = (ROOT / "quickstart").read_text(encoding="utf-8")
    eval_line = next(x for x in quickstart.splitlines() if x.startswith(".venv/bin/policy eval"))
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    assert eval_line.removeprefix(".venv/bin/") + " --explain" in page
    done = run(eval_line, sandbox)
    assert done.returncode == 0, done.stderr
    decisions = [json.loads(x) for x in done.stdout.splitlines()]
    records = [json.loads(x) for x in (sandbox / "policies/samples/listings.jsonl").read_text().splitlines()]
    at = shlex.split(eval_line)[shlex.split(eval_line).index("--at") + 1]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")]
            for line in page.splitlines() if re.match(r"\| [a-z]{2}-\d{4} \|", line)]
    assert [r[0] for r in rows] == [r["listing"]["id"] for r in records]
    table = zip(rows, records, decisions, strict=True)  # one decision per record, one row per record
    for (rid, shown_at, prior, effect, rules, penalty), record, decision in table:
        assert shown_at == record.get("at", f"{at} (`--at`)"), rid
        assert int(prior) == record.get("prior_violations", 0), rid
        assert effect == decision["effect"], rid
        local = sorted(q.split(".", 1)[1] for q in decision["rules"])
        lifted = sorted(q.split(".", 1)[1] for q in decision["overridden"])
        named = re.findall(r"`([^`]+)`", rules.split("(")[0])
        assert named == local, rid
        assert sorted(re.findall(r"`([^`]+)` overridden", rules)) == lifted, rid
        if decision["penalty"]:
            p = decision["penalty"]
            assert penalty.startswith(f"`{p['ladder']}` step {p['step']}: {' and '.join(p['actions'])}"), rid
        else:
            assert not penalty.startswith("`"), rid


def test_service_transcript(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """embedding.md's `curl` transcript needs the service running; instead the service's
    code, as the page shows it, is called in-process with the same request."""
    monkeypatch.chdir(sandbox)
    page = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    service = next(b for lang, b, _, _ in blocks(ROOT / "docs" / "embedding.md") if lang == "python" and "def app" in b)
    m = re.search(r"^\$ curl -s localhost:8080(?P<path>/\S+) -d '(?P<body>[^']*)'\n(?P<out>.*?)\n```", page,
                  re.M | re.S)
    assert m, "the transcript"
    namespace: dict[str, Any] = {"__name__": "docs"}
    exec(compile(service, "embedding.md", "exec"), namespace)  # noqa: S102 - our own docs
    data = m["body"].encode()
    environ = {"PATH_INFO": m["path"], "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)}
    statuses = []
    body = b"".join(namespace["app"](environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["200 OK"]
    assert_text(m["out"], body.decode(), "embedding.md: curl")


def test_cross_policy_override_as_language_md_shows(sandbox: Path, tmp_path: Path) -> None:
    page = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    example = re.search(r"```policy\n(  )?(policy museum-loans\n.*?)```", page, re.S)
    assert example
    root = tmp_path / "set"
    shutil.copytree(sandbox / "policies", root)
    text = re.sub(r"^  ", "", example[2], flags=re.M)
    (root / "museum.policy").write_text(text, encoding="utf-8")
    done = run(f"policy check {shlex.quote(str(root))}", sandbox)
    shown = re.search(r"`(warning\[P215\]: .*?)`", page, re.S)
    assert shown
    assert " ".join(shown[1].split()) in done.stdout
    (root / "museum.policy").write_text(text.replace("overrides ebay-confederate-flag-2015.", "overrides "),
                                        encoding="utf-8")
    done = run(f"policy check {shlex.quote(str(root))}", sandbox)
    assert "error[P202]" in done.stdout
    assert ("policies amazon-confederate-flag-2015, ebay-confederate-flag-2015, etsy-confederate-flag-2015 "
            "each have a rule 'battle-flag': write the qualified id of the one you mean") in done.stdout


def test_compound_words_as_language_md_says(tmp_path: Path) -> None:
    import dsl

    page = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    assert "does not mention 'strohhalme'" in page
    assert "rule straws-de: flag title contains 'strohhalm'" in page
    (tmp_path / "straws.policy").write_text(
        "policy straws\nrule m: flag title mentions 'strohhalme'\nrule straws-de: flag title contains 'strohhalm'\n",
        encoding="utf-8")
    ps = dsl.load(str(tmp_path))
    for title in ("Plastikstrohhalme", "Strohhalm", "Trinkstrohhalm-Set"):
        assert list(ps.decide({"title": title}, at="2024-01-01").rules) == ["straws.straws-de"], title
    assert list(ps.decide({"title": "Strohhalme"}, at="2024-01-01").rules) == ["straws.m", "straws.straws-de"]
