"""A ``Diff`` as text (for people), JSON (for tools) or Markdown (a summary a CI job posts
on a pull request)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..evaluate.outcome import Decision
from .core import Diff, Example
from .kinds import shown

__all__ = ["FORMATS", "code", "render"]

FORMATS = ("text", "json", "markdown")


def render(d: Diff, fmt: str) -> str:
    """The whole report, ending with a newline."""
    if fmt == "json":
        return json.dumps(d.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "markdown":
        return "\n".join(_markdown(d)) + "\n"
    return "\n".join(_text(d)) + "\n"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _penalty(d: Decision) -> str:
    if d.penalty is None:
        return "none"
    where = f"{d.penalty.ladder}, step {d.penalty.step}" if d.penalty.ladder else "inline"
    return f"{' and '.join(d.penalty.actions)} ({where}, {d.penalty.rule})"


def _rows(d: Decision) -> list[tuple[str, str]]:
    return [("effect", d.effect), ("rules", ", ".join(d.rules) or "-"),
            ("overridden", ", ".join(d.overridden) or "-"), ("penalty", _penalty(d) if d.effect == "block" else "-")]


def _summary(d: Diff) -> str:
    if d.equivalent:
        return "equivalent: no listing, instant or prior count gets another effect or penalty (proved)"
    n = len(d.changes)
    head = f"{n} kind{'s' if n != 1 else ''} of change" if n else "no change proved"
    if d.undecided:
        head += f"; {len(d.undecided)} question{'s' if len(d.undecided) != 1 else ''} undecided (P399)"
    return head


# --------------------------------------------------------------------------- text


def _example_lines(ex: Example, indent: str = "  ") -> list[str]:
    lines = [f"{indent}listing {_compact(ex.listing)}",
             f"{indent}at {ex.at}, prior violations {ex.prior_violations}"]
    old, new = _rows(ex.old), _rows(ex.new)
    width = max(len("OLD"), *(len(v) for _, v in old))
    lines.append(f"{indent}{'':<11} {'OLD':<{width}}   NEW")
    for (name, a), (_, b) in zip(old, new, strict=True):
        mark = "  " if a == b else "* "
        lines.append(f"{indent[:-2]}{mark}{name:<11} {a:<{width}}   {b}")
    return lines


def _text(d: Diff) -> list[str]:
    lines = [f"policy diff: {d.old} -> {d.new}", _summary(d)]
    for c in d.changes:
        lines += ["", f"{shown(c.kind)}:", *_example_lines(c.example, "    ")]
    shown_examples = {id(c.example): shown(c.kind) for c in d.changes}
    if d.rules:
        lines += ["", "rules:"]
        for r in d.rules:
            lines.append(f"  {r.rule} ({r.status}): {_alters(r.alters)}")
            if r.example is not None:
                if id(r.example) in shown_examples:
                    lines.append(f"      {shown(r.example.kind)}, on the witness above")
                else:
                    lines += [f"      {shown(r.example.kind)}:", *_example_lines(r.example, "        ")]
    if d.catalogue is not None:
        lines += ["", *d.catalogue.text_lines()]
    for u in d.undecided:
        lines += ["", f"P399 {u.diagnostic().message}"]
    return lines


def _alters(alters: str) -> str:
    return {"yes": "alters decisions", "no": "no decision changes (proved)",
            "undecided": "undecided (P399)"}[alters]


# --------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_MARKUP = re.compile(r"([\\`*_\[\]<>#~])")


def plain(text: str) -> str:
    """``text`` as plain Markdown text on one line: the characters Markdown would read as
    markup (emphasis, links, code, HTML, headings) escaped, so that a witness's ``_`` or
    ``*`` shows as typed."""
    return _cell(_MARKUP.sub(r"\\\1", text))


def code(text: str, cell: bool = True) -> str:
    """``text`` as a Markdown code span: fenced by one backtick more than its longest
    run of them, padded when it starts or ends with one; in a table ``cell``, its pipes
    escaped (GitHub reads ``\\|`` as a pipe inside a code span in a table)."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    body = _cell(text) if cell else text.replace("\n", " ")
    return f"{fence}{pad}{body}{pad}{fence}"


def _md_decision(d: Decision) -> str:
    text = f"**{d.effect}**"
    if d.effect == "block" and d.penalty is not None:
        text += f" ({' and '.join(d.penalty.actions)})"
    return text


def _markdown(d: Diff) -> list[str]:
    verdict = "✅" if d.equivalent else "⚠️"
    lines = [f"### Policy diff: {code(d.old, cell=False)} → {code(d.new, cell=False)}", "", f"{verdict} {_summary(d)}."]
    if d.changes:
        lines += ["", "| change | example listing | at | prior | old | new |", "|---|---|---|---|---|---|"]
        for c in d.changes:
            ex = c.example
            lines.append(f"| {shown(c.kind)} | {code(_compact(ex.listing))} | {ex.at} | {ex.prior_violations} "
                         f"| {_md_decision(ex.old)} | {_md_decision(ex.new)} |")
    if d.rules:
        lines += ["", "| rule | status | decisions |", "|---|---|---|"]
        for r in d.rules:
            what = _alters(r.alters)
            if r.example is not None:
                what += f": {shown(r.example.kind)}"
            lines.append(f"| {code(r.rule)} | {r.status} | {what} |")
    if d.catalogue is not None:
        lines += ["", *d.catalogue.markdown_lines()]
    for u in d.undecided:
        lines += ["", f"> **P399** {plain(u.diagnostic().message)}"]
    return lines
