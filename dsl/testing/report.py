"""Writing test results: text for people, JSON (spec section 8), JUnit XML for CI."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from .runner import Coverage, Outcome, Report, Result

__all__ = ["render_text", "render_json", "render_junit", "coverage_lines", "summary_line"]

_LABEL: dict[Outcome, str] = {"pass": "PASS", "fail": "FAIL", "undecided": "UNDECIDED"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _safe(text: str) -> str:
    """Merchant-written text with control and bidi characters escaped, for a terminal."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def summary_line(report: Report) -> str:
    return f"{report.passed} passed, {report.failed} failed"


def coverage_lines(cov: Coverage, rule_locations: dict[str, str], min_coverage: float | None) -> list[str]:
    lines = [f"coverage: {len(cov.covered)}/{cov.total} rules applied in some example ({cov.percent:.1f}%)"]
    for q in cov.uncovered:
        where = rule_locations.get(q)
        lines.append(f"  not covered: {q}" + (f" ({where})" if where else ""))
    if min_coverage is not None and cov.percent < min_coverage:
        lines.append(f"coverage {cov.percent:.1f}% is below the minimum of {min_coverage:g}%")
    return lines


def render_text(report: Report, *, coverage: bool, min_coverage: float | None,
                rule_locations: dict[str, str]) -> str:
    out: list[str] = []
    for r in report.results:
        name = _safe(json.dumps(r.name, ensure_ascii=False))
        out.append(f"{_LABEL[r.outcome]:<9} {r.file}:{r.line}  {r.kind} {name}  ({_seconds(r.seconds)})")
        if r.outcome != "pass":
            out.extend(("    " + line).rstrip() for line in _details(r))
    if coverage:
        out.append("")
        out.extend(coverage_lines(report.coverage, rule_locations, min_coverage))
    undecided = sum(r.outcome == "undecided" for r in report.results)
    if undecided:
        out.append(f"({undecided} undecided, counted as failed)")
    out.append(summary_line(report))
    return "\n".join(out) + "\n"


def _seconds(seconds: float) -> str:
    if seconds < 0.001:
        return "<1 ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _details(r: Result) -> list[str]:
    if r.outcome == "undecided":
        return [f"claim: {_safe(r.claim or '')}", f"undecided: {_safe(r.reason or '')}",
                "an assertion the analysis cannot decide fails the run; narrow it, or state it as examples"]
    if r.kind == "assert":
        return _assert_details(r)
    return _test_details(r)


def _test_details(r: Result) -> list[str]:
    lines = [f"- {_safe(p)}" for p in r.problems]
    if r.actual is None:
        return lines
    exp, act = r.expected or {}, r.actual
    rows = [("effect", exp.get("effect", ""), act.get("effect", ""))]
    rows.append(("rules", ("includes " + ", ".join(exp["by"])) if exp.get("by") else "(any)",
                 ", ".join(act.get("rules", ())) or "(none)"))
    if act.get("overridden"):
        rows.append(("overridden", "", ", ".join(act["overridden"])))
    wtext = _expected_penalty(exp["penalty"]) if "penalty" in exp else "(any)"
    rows.append(("penalty", wtext, _penalty(act.get("penalty"))))
    width = max(len(str(row[1])) for row in rows)
    width = max(width, len("expected"))
    lines.append(f"{'':<10} {'expected':<{width}}   actual")
    for label, want_text, got_text in rows:
        lines.append(f"{label:<10} {_safe(str(want_text)):<{width}}   {_safe(str(got_text))}")
    if r.explanation:
        lines.append("explanation of the actual decision:")
        lines.extend(("  " + _safe(line)).rstrip() for line in r.explanation.splitlines())
    return lines


def _expected_penalty(want: dict[str, Any] | None) -> str:
    if want is None:
        return "none"
    return f"{want['ladder']} step {want['step']}" if want["ladder"] else f"inline step {want['step']}"


def _penalty(p: dict[str, Any] | None) -> str:
    if p is None:
        return "none"
    head = f"{p.get('ladder')} step {p.get('step')}" if p.get("ladder") else f"inline step {p.get('step')}"
    actions = p.get("actions") or ()
    return head + (f" ({', '.join(actions)})" if actions else "") + (f" from {p['rule']}" if p.get("rule") else "")


def _assert_details(r: Result) -> list[str]:
    lines = [f"claim: {_safe(r.claim or '')}"]
    lines.extend(f"- {_safe(p)}" for p in r.problems)
    cx = r.counterexample or {}
    lines.append("counterexample (shrunk; replayed through decide):")
    lines.append(f"  listing: {_safe(json.dumps(cx.get('listing'), ensure_ascii=False, sort_keys=True, default=str))}")
    at = cx.get("at")
    local = _local_text(at, r.timezone)
    lines.append(f"  at: {at}" + (f"  ({local})" if local else ""))
    lines.append(f"  prior_violations: {cx.get('prior_violations')}")
    act = r.actual or {}
    lines.append(f"decision: {act.get('effect')}; rules: {', '.join(act.get('rules', ())) or '(none)'}; "
                 f"penalty: {_penalty(act.get('penalty'))}")
    if r.explanation:
        lines.append("explanation:")
        lines.extend(("  " + _safe(line)).rstrip() for line in r.explanation.splitlines())
    return lines


def _local_text(at: Any, tz: str | None) -> str | None:
    if not at or not tz or tz == "UTC":
        return None
    import datetime as dt
    from zoneinfo import ZoneInfo

    try:
        instant = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        local = instant.astimezone(ZoneInfo(tz))
    except (ValueError, KeyError):
        return None
    midnight = (local.hour, local.minute, local.second) == (0, 0, 0)
    shown = local.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S")
    return f"{shown} {tz}"


def result_dict(r: Result) -> dict[str, Any]:
    d: dict[str, Any] = {"name": r.name, "kind": r.kind, "outcome": r.outcome, "file": r.file,
                         "line": r.line, "column": r.column, "time": round(r.seconds, 6)}
    if r.outcome == "fail" and r.kind == "assert":
        d["counterexample"] = r.counterexample
        d["decision"] = r.actual
    if r.outcome == "fail" and r.kind == "test":
        d["expected"] = r.expected
        d["actual"] = r.actual
    if r.problems and r.outcome != "pass":
        d["problems"] = list(r.problems)
    if r.outcome == "undecided":
        d["reason"] = r.reason
    return d


def render_json(report: Report) -> str:
    return json.dumps([result_dict(r) for r in report.results], ensure_ascii=False, indent=2, default=str) + "\n"


# --------------------------------------------------------------------------- JUnit

_XML_BAD = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text that XML 1.0 can hold: characters it forbids are written as \\uXXXX."""
    return _XML_BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def render_junit(report: Report, *, coverage: bool, min_coverage: float | None,
                 rule_locations: dict[str, str], diagnostics_text: str | None = None) -> str:
    """JUnit XML: one testsuite per test file, one testcase per test or assertion, a
    failure element for each one that failed or was undecided; the coverage check (with
    --min-coverage) is a testcase of its own."""
    root = ET.Element("testsuites", name="policy test")
    by_file: dict[str, list[Result]] = {}
    for r in report.results:
        by_file.setdefault(r.file, []).append(r)
    total = failures = 0
    for file, results in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=_xml(file), tests=str(len(results)),
                              failures=str(sum(not r.passed for r in results)), errors="0", skipped="0",
                              time=f"{sum(r.seconds for r in results):.3f}")
        for r in results:
            case = ET.SubElement(suite, "testcase", name=_xml(r.name), classname=_xml(_classname(file)),
                                 file=_xml(file), line=str(r.line), time=f"{r.seconds:.3f}")
            if not r.passed:
                message = r.reason if r.outcome == "undecided" else "; ".join(r.problems) or r.outcome
                failure = ET.SubElement(case, "failure", message=_xml(f"{r.outcome}: {message}"), type=r.outcome)
                failure.text = _xml("\n".join(_details(r)))
        total += len(results)
        failures += sum(not r.passed for r in results)
    if coverage:
        cov = report.coverage
        lines = coverage_lines(cov, rule_locations, min_coverage)
        ok = min_coverage is None or cov.percent >= min_coverage
        suite = ET.SubElement(root, "testsuite", name="coverage", tests="1", failures="0" if ok else "1",
                              errors="0", skipped="0", time="0")
        case = ET.SubElement(suite, "testcase", name="rule coverage", classname="coverage", time="0")
        ET.SubElement(case, "system-out").text = _xml("\n".join(lines))
        if not ok:
            ET.SubElement(case, "failure", message=_xml(lines[-1]), type="coverage").text = _xml("\n".join(lines))
        total += 1
        failures += 0 if ok else 1
    if diagnostics_text is not None:
        suite = ET.SubElement(root, "testsuite", name="policy check", tests="1", failures="0", errors="1",
                              skipped="0", time="0")
        case = ET.SubElement(suite, "testcase", name="the policies and their tests check cleanly",
                             classname="check", time="0")
        error = ET.SubElement(case, "error", message="the policy set or its test files have errors",
                              type="diagnostics")
        error.text = _xml(diagnostics_text)
        total += 1
    root.set("time", f"{sum(r.seconds for r in report.results):.3f}")
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "1" if diagnostics_text is not None else "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _classname(file: str) -> str:
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".policy")


def empty_report() -> Report:
    return Report((), Coverage((), ()))


