"""Hostile policy text (issue 10): the example policies and the conformance corpus, mangled,
go through `check`, `load`, `decide` and `fmt`. Nothing may raise but the project's own
errors (`PolicyError` from `dsl.load`, `InputError` from `decide`); `load` fails exactly
when `check` reports an error in a policy file; whatever parses formats to a text that
reads back the same and formats to itself, and `policy fmt` then finds nothing to do.
`HYPOTHESIS_PROFILE=thorough` searches far longer."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conformance import CORPUS
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_format import assert_round_trip

import dsl
from dsl.cli import main
from dsl.diagnostics import ERROR
from dsl.evaluate.outcome import InputError
from dsl.syntax import parse

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
LISTINGS = [json.loads(line)
            for line in (POLICIES / "samples" / "listings.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]

# Small examples by default (the whole suite stays quick); the thorough profile searches more.
EXAMPLES = max(20, settings.default.max_examples // 2) if settings.default.max_examples > 50 else 20


def _policy_sets() -> list[dict[str, str]]:
    """Every policy set to mangle, as {relative path: text}: each folder of policies/ with
    the shared schema, and each case of the conformance corpus (files with their folder's
    other files, policy.toml included)."""
    def read(folder: Path, pattern: str = "*") -> dict[str, str]:
        return {str(p.relative_to(folder)): p.read_text(encoding="utf-8")
                for p in sorted(folder.glob(pattern)) if p.is_file() and p.suffix in (".policy", ".toml")}

    sets = [{**read(d), "schema.policy": (POLICIES / "schema.policy").read_text(encoding="utf-8")}
            for d in sorted(POLICIES.iterdir()) if d.is_dir() and any(d.glob("*.policy"))]
    if CORPUS.exists():
        for case in sorted((CORPUS / "check").iterdir()):
            sets.append(read(case) if case.is_dir() else {case.name: case.read_text(encoding="utf-8")})
        for group in ("decisions", "tests"):
            sets.extend(read(d) for d in sorted((CORPUS / group).iterdir()) if d.is_dir())
    return [s for s in sets if any(name.endswith(".policy") for name in s)]


SETS = _policy_sets()

HOSTILE = [
    "9" * 5000, "1" * 400 + "." + "5" * 400, "1e999999", "-0", "99999999999999999999d", "2021-02-30",
    "9999-12-31T23:59:59+14:00", "0000-01-01", "(" * 300, ")" * 300, "[" * 300, "not " * 300, "x" * 20_000,
    "mentions " + "'bitcoin' " * 200, "/(a+)+$/", "/[/", "/(?<=x)y/", "/\\p{Han}+/i", "'", '"', "`", "#", "\\",
    "'\\u{110000}'", "'\\u{d800}'", "\x00", "\ufeff", "\r", "\r\n", "\u2028", "\t", "\u00a0", "\u200b", "ſ", "İ", "ﬁ",
    "rule", "rule r:", "block", "allow", "flag", "overrides", "penalty", "ladder", "set", "field", "policy", "then",
    "from", "until", "timezone 'Mars/Olympus'", "scope", "in", "any", "all", "of", "category", "exists", "test",
    "given", "expect", "assert", "always", "never", "tests for", ":", ",", ".", "..", "{", "}", "==", "<=", "!=",
    "# policy: ignore[P301]", "[tool.policy]", "exclude = ['**']", "severity = { P301 = 'off' }", "= [", "\"\"\"",
]


@st.composite
def mangled_sets(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """A policy set with one of its files mangled: a few cuts, copies, swaps and insertions
    of hostile snippets."""
    files = dict(draw(st.sampled_from(SETS)))
    target = draw(st.sampled_from(sorted(files)))
    text = files[target]
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 80)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "insert", "replace", "truncate", "swap lines"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(HOSTILE)) + text[i:]
        elif op == "replace":
            text = text[:i] + draw(st.text(min_size=1, max_size=3)) + text[j:]
        elif op == "truncate":
            text = text[:i]
        else:
            lines = text.split("\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    files[target] = text
    return files, target


def _write(files: dict[str, str], folder: Path) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_sets())
def test_check_load_and_decide_raise_nothing_but_their_own(case: tuple[dict[str, str], str]) -> None:
    files, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(files, folder)
        findings = dsl.check(folder, analysis=False)
        policy_errors = [d for d in findings if d.severity == ERROR and (d.file or "").endswith(".policy")
                         and not d.file.endswith("_test.policy") and not d.code.startswith("P5")]
        try:
            policies = dsl.load(folder)
        except dsl.PolicyError as e:
            event("load: PolicyError")
            assert e.diagnostics and any(d.severity == ERROR for d in findings)
            return
        event("load: decided")
        assert not policy_errors, [(d.code, d.message) for d in policy_errors]
        for listing in LISTINGS[:4]:
            record = listing.get("listing", listing)
            try:
                policies.decide(record, at=listing.get("at", "2021-10-20"), prior_violations=1).to_dict()
            except InputError:
                pass  # the mangled schema may no longer accept the listing: the project's own error


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_sets())
def test_whatever_parses_formats_stably(case: tuple[dict[str, str], str]) -> None:
    files, target = case
    if not target.endswith(".policy"):
        return
    text = files[target]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # not a text a file can hold (a lone surrogate): P002 when read
    _, diags = parse(text, target, test_file=target.endswith("_test.policy"))
    if any(d.severity == ERROR for d in diags):
        event("syntax errors")
        if not target.endswith("_test.policy"):
            with pytest.raises(dsl.PolicyError):
                dsl.format_source(text)
        return
    event("parses")
    assert_round_trip(text, target)


@settings(max_examples=max(5, EXAMPLES // 4), suppress_health_check=[HealthCheck.too_slow])
@given(mangled_sets())
def test_fmt_then_fmt_check_finds_nothing_to_do(case: tuple[dict[str, str], str]) -> None:
    files, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(files, folder)
        before = {p: p.read_bytes() for p in folder.rglob("*.policy")}
        first = CliRunner().invoke(main, ["fmt", str(folder)])
        assert first.exit_code in (0, 1) and isinstance(first.exception, (SystemExit, type(None))), first.output
        for path, old in before.items():
            new = path.read_bytes()
            assert new == old or f"reformatted {path}" in first.stdout  # only what fmt says it changed
        again = CliRunner().invoke(main, ["fmt", "--check", str(folder)])
        assert "would reformat" not in again.stdout, again.stdout
