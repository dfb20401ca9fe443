"""Code lenses: run a test or an assertion where it is written and show whether it
passed; decide the listings of the `samples.jsonl` beside a policy and show, on each rule,
on how many of them it applies (as Regal's "Evaluate" lens does for Rego).

Tests run through ``dsl.testing.run_tests`` and their report is `policy test`'s text;
samples are read and decided as `policy eval` reads and decides records
(``dsl.scan.records``), at the instant an envelope gives, else now."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs
from lsprotocol import types as T

from ..checking.loader import Loaded
from ..checking.passes import policy_name_of, rule_id
from ..diagnostics import ERROR
from ..syntax import ast as A
from .project import Snapshot

RUN_TEST = "policy.runTest"
DECIDE_SAMPLES = "policy.decideSamples"
SAMPLES = "samples.jsonl"
_MARK = {"pass": "✓ passed", "fail": "✗ failed", "undecided": "? undecided", "error": "✗ cannot run"}


class Lenses:
    """The lenses of the documents, and the outcome of the last run of each."""

    def __init__(self) -> None:
        # (file, the statement's text) -> the last run's outcome in words: it follows the
        # statement when lines are added above it, and is gone once the statement is edited
        self.outcomes: dict[tuple[str, str], str] = {}
        self.samples: dict[tuple[str, str], str] = {}    # (file, rule id) -> the last decision of the samples

    def lenses(self, snap: Snapshot, file: str, encoding: str) -> list[T.CodeLens]:
        parsed = snap.files.get(file)
        if parsed is None:
            return []
        text = snap.lines(file, encoding)
        out = []
        samples = (Path(file).parent / SAMPLES).is_file()
        policy = policy_name_of(parsed)
        for s in parsed.statements:
            if isinstance(s, (A.TestCase, A.Assertion)) and s.span is not None:
                kind = "test" if isinstance(s, A.TestCase) else "assertion"
                last = self.outcomes.get((file, _text_of(snap, file, s)))
                title = f"▶ run {kind}" + (f" · {last}" if last else "")
                out.append(T.CodeLens(text.range(s.span), T.Command(title, RUN_TEST, arguments=[file, s.span.line])))
            elif isinstance(s, A.Rule) and samples and s.anchor is not None:
                qid = f"{policy}.{rule_id(s)}"
                last = self.samples.get((file, qid))
                title = f"▶ decide {SAMPLES}" + (f" · {last}" if last else "")
                out.append(T.CodeLens(text.range(s.anchor), T.Command(title, DECIDE_SAMPLES, arguments=[file, qid])))
        return out

    def run_test(self, snap: Snapshot, file: str, line: int) -> dict[str, Any]:
        """Run the test or assertion that starts on ``line`` of ``file``: its outcome and
        `policy test`'s report of it."""
        found = _statement_at(snap, file, line)
        if found is None:
            return {"outcome": "error", "report": f"no test or assertion starts on line {line}"}
        test_file, statement = found
        outcome, report = _run(snap, test_file, statement)
        self.outcomes[(file, _text_of(snap, file, statement))] = _MARK.get(outcome, outcome)
        return {"outcome": outcome, "report": report}

    def decide_samples(self, snap: Snapshot, file: str, qid: str) -> dict[str, Any]:
        """Decide every listing of the policy's `samples.jsonl`: which the rule ``qid``
        applies to, which it was overridden on, and each decision's effect."""
        result = decide_samples(snap, Path(file).parent / SAMPLES, qid)
        if "error" not in result:
            n = len(result["decisions"])
            self.samples[(file, qid)] = f"applies to {len(result['applied'])} of {n}"
        return result


def _text_of(snap: Snapshot, file: str, statement: A.TestCase | A.Assertion) -> str:
    """The statement's source text, as the snapshot holds it."""
    assert statement.span is not None
    return (snap.text(file) or "")[statement.span.start:statement.span.end]


def _statement_at(snap: Snapshot, file: str, line: int) -> tuple[A.File, A.TestCase | A.Assertion] | None:
    parsed = snap.files.get(file)
    for s in parsed.statements if parsed is not None else ():
        if isinstance(s, (A.TestCase, A.Assertion)) and s.span is not None and s.span.line == line:
            return parsed, s  # type: ignore[return-value]  # parsed is not None inside the loop
    return None


def _run(snap: Snapshot, test_file: A.File, statement: A.TestCase | A.Assertion) -> tuple[str, str]:
    from ..checking.render import render
    from ..testing import check_test_files, run_tests
    from ..testing.report import render_text

    model = snap.model
    loaded = Loaded(snap.loaded.policy_files, (test_file,), snap.loaded.sources, ())
    if model is None:
        return "error", _set_errors(snap)
    errors = [d for d in check_test_files(model, loaded) if d.severity == ERROR]
    if errors:
        return "error", render(errors, "text", snap.loaded.sources)
    # the file with this statement alone: its `tests for` kept, no other test run (a name
    # filter would run every test whose name contains this one's)
    alone = Loaded(loaded.policy_files, (attrs.evolve(test_file, statements=(statement,)),), loaded.sources, ())
    report = run_tests(model, alone)
    if not report.results:
        return "error", "the test did not run"
    return report.results[0].outcome, render_text(report, coverage=False, min_coverage=None, rule_locations={})


def _set_errors(snap: Snapshot) -> str:
    """Why a set cannot be run: its first error, as `policy check` writes it."""
    from ..checking.render import render

    errors = [d for d in snap.compiled[1] if d.severity == ERROR]
    return "the policy set has errors: fix them first\n" + render(errors[:1], "text", snap.loaded.sources)


def decide_samples(snap: Snapshot, samples: Path, qid: str) -> dict[str, Any]:
    from ..evaluate.outcome import InputError
    from ..evaluate.policies import Policies
    from ..scan.records import decide_record, open_envelope, read_json_records

    model = snap.model
    if model is None:
        return {"error": _set_errors(snap)}
    if qid not in model.by_qid:
        return {"error": f"no rule {qid} in the policy set"}
    policies = Policies(model)
    now = dt.datetime.now(dt.UTC)
    applied, overridden, decisions = [], [], []
    try:
        with samples.open("rb") as stream:
            for n, record in enumerate(read_json_records(stream), 1):
                listing, at, prior = open_envelope(record, now, 0)
                try:
                    decision = decide_record(policies, listing, at, prior)
                except InputError as e:
                    decisions.append(f"error: {e.message}")
                    continue
                decisions.append(decision.effect)
                if qid in decision.rules:
                    applied.append(n)
                if qid in decision.overridden:
                    overridden.append(n)
    except OSError as e:
        return {"error": f"cannot read {samples}: {e.strerror or e}"}
    return {"rule": qid, "samples": str(samples), "applied": applied, "overridden": overridden,
            "decisions": decisions}


SHOWN = 20
"""Records a sentence of ``samples_message`` names at most, per list (a file of thousands
of samples makes a message no editor shows whole)."""


def _first(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" … and {more} more" if more > 0 else "")


def samples_message(result: dict[str, Any]) -> str:
    """The outcome of deciding the samples, in a sentence (each list cut at ``SHOWN``; the
    command's result keeps them whole)."""
    if "error" in result:
        return str(result["error"])
    n = len(result["decisions"])
    text = f"{result['rule']} applies to {len(result['applied'])} of the {n} listings of {result['samples']}"
    if result["applied"]:
        text += " (records " + _first([str(i) for i in result["applied"]]) + ")"
    if result["overridden"]:
        text += "; overridden on records " + _first([str(i) for i in result["overridden"]])
    return text + ". Decisions: " + _first([f"{i}: {e}" for i, e in enumerate(result["decisions"], 1)])
