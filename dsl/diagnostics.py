"""Diagnostics are data: a stable code, a severity, a span, a message, and optional notes,
hint, related locations and witness. Rendering lives in ``dsl.checking.render``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal, TypeGuard

import attrs

from .span import Span

Severity = Literal["error", "warning", "info"]
"""How serious a finding is. The configuration may raise or lower a code's severity, or
turn it off (then there is no diagnostic at all)."""

ERROR: Final = "error"
WARNING: Final = "warning"
INFO: Final = "info"

SEVERITY_RANK: dict[Severity, int] = {ERROR: 0, WARNING: 1, INFO: 2}


def is_severity(word: object) -> TypeGuard[Severity]:
    """Whether ``word`` is a severity (a configuration's value may be any string)."""
    return word in SEVERITY_RANK


@attrs.frozen
class Related:
    """A second location that a finding refers to (for example the other rule of P304)."""

    span: Span
    message: str


@attrs.frozen
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    hint: str | None = None
    notes: tuple[str, ...] = ()
    related: tuple[Related, ...] = ()
    witness: dict[str, Any] | None = attrs.field(default=None, eq=False)
    suppressed_by: Span | None = None
    """The ``# policy: ignore[…]`` comment that suppresses this finding, if one does: a
    suppressed finding stays in JSON and SARIF output, marked, and counts for nothing else."""
    data: dict[str, Any] | None = attrs.field(default=None, eq=False)
    """Figures for machines, written as ``data`` in JSON (the analysis budget's P399s
    carry ``{"analysis_budget": {...}}``)."""

    @property
    def file(self) -> str | None:
        return self.span.file if self.span else None

    @property
    def suppressed(self) -> bool:
        return self.suppressed_by is not None

    def sort_key(self) -> tuple[Any, ...]:
        s = self.span
        pos = (s.file, s.line, s.column) if s else ("", 0, 0)
        return (*pos, SEVERITY_RANK.get(self.severity, 9), self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (spec section 8): code, severity, file, line, column, end_line,
        end_column, message, plus hint, notes, related and witness where present."""
        s = self.span
        d: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity,
            "file": s.file if s else None,
            "line": s.line if s else None,
            "column": s.column if s else None,
            "end_line": s.end_line if s else None,
            "end_column": s.end_column if s else None,
            "message": self.message,
        }
        if self.hint:
            d["hint"] = self.hint
        if self.notes:
            d["notes"] = list(self.notes)
        if self.related:
            d["related"] = [
                {"file": r.span.file, "line": r.span.line, "column": r.span.column,
                 "end_line": r.span.end_line, "end_column": r.span.end_column,
                 "message": r.message}
                for r in self.related
            ]
        if self.witness is not None:
            d["witness"] = self.witness
        if self.data is not None:
            d["data"] = self.data
        if self.suppressed_by is not None:
            d["suppressed"] = True
        return d


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by position, then severity and code; exact duplicates removed."""
    seen: set[Diagnostic] = set()
    out = []
    for d in sorted(diags, key=Diagnostic.sort_key):
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    """Whether an error is among ``diags`` (suppressed findings count for nothing)."""
    return any(d.severity == ERROR and d.suppressed_by is None for d in diags)


class PolicyError(ValueError):
    """Raised by ``dsl.load`` when a policy set has errors; ``.diagnostics`` holds every
    finding (errors first in position order)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sort_diagnostics(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == ERROR]
        first = errors[0] if errors else (self.diagnostics[0] if self.diagnostics else None)
        if first is None:
            text = "policy set has errors"
        else:
            loc = f"{first.span.file}:{first.span.line}:{first.span.column}: " if first.span else ""
            text = f"{loc}{first.code} {first.message}"
            if len(errors) > 1:
                text += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        super().__init__(text)


CODES: dict[str, tuple[Severity, str]] = {
    "P001": (ERROR, "cannot read file"),
    "P002": (ERROR, "file is not UTF-8"),
    "P003": (ERROR, "file too large"),
    "P100": (ERROR, "syntax error"),
    "P101": (ERROR, "invalid date"),
    "P102": (ERROR, "invalid regular expression"),
    "P103": (ERROR, "invalid duration"),
    "P104": (ERROR, "invalid timezone"),
    "P200": (ERROR, "unknown set"),
    "P201": (ERROR, "unknown ladder"),
    "P202": (ERROR, "unknown overridden rule"),
    "P203": (ERROR, "duplicate rule id"),
    "P204": (ERROR, "duplicate name"),
    "P205": (ERROR, "unknown field"),
    "P206": (ERROR, "type mismatch"),
    "P207": (ERROR, "value outside 'one of'"),
    "P208": (ERROR, "'==' on category"),
    "P209": (ERROR, "allow without overrides"),
    "P210": (ERROR, "overrides names an allow"),
    "P211": (ERROR, "penalty on a non-block rule"),
    "P212": (ERROR, "ladder steps out of order"),
    "P213": (ERROR, "overrides on a block or flag rule"),
    "P214": (ERROR, "file name is not a valid policy name"),
    "P215": (WARNING, "override of another policy's rule"),
    "P300": (WARNING, "rule can never apply"),
    "P301": (WARNING, "redundant rule"),
    "P302": (WARNING, "override has no effect"),
    "P303": (INFO, "allow is partly ineffective"),
    "P304": (INFO, "ladders compete"),
    "P399": (INFO, "undecided"),
    "P400": (WARNING, "rule has no name"),
    "P401": (WARNING, "unused set or ladder"),
    "P500": (ERROR, "unknown rule in test"),
    "P501": (ERROR, "ambiguous rule in test"),
    "P502": (ERROR, "unknown ladder in test"),
    "P503": (ERROR, "given value of the wrong shape"),
    "P504": (ERROR, "test file without policies"),
    "P505": (ERROR, "unknown policy in `tests for`"),
    "P600": (ERROR, "bad configuration"),
    "P601": (WARNING, "suppression that suppresses nothing"),
}
"""Every diagnostic code: its severity and a short title (docs/checks.md has a section each)."""

LOADING = ("P0", "P1", "P2")
"""The stages before a set loads: reading, syntax, names and types."""


def is_fixed(code: str) -> bool:
    """Whether ``code`` is an error that stops a policy set from loading: a P0xx, P1xx or
    P2xx code whose severity is ``error`` (P215, a P2xx warning, is not one). Configuration
    cannot lower it or turn it off, and no comment suppresses it (spec section 6)."""
    return code.startswith(LOADING) and code in CODES and CODES[code][0] == ERROR


DOCS_URL: Final = "https://policy-dsl.github.io/policy-dsl/"
"""Where the documentation site is published: mkdocs.yml's ``site_url`` (tests/test_site.py
holds the two equal)."""


def docs_url(code: str) -> str:
    """The page of the documentation site on ``code`` (the site generates one page per
    section of docs/checks.md: tools/checks_pages.py); the ``helpUri`` of SARIF results
    and the link in hover text."""
    return f"{DOCS_URL}checks/{code}/"


def make(code: str, message: str, span: Span | None, *, hint: str | None = None,
         notes: Iterable[str] = (), related: Iterable[Related] = (),
         witness: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> Diagnostic:
    """Build a diagnostic with the code's own severity."""
    return Diagnostic(code, CODES[code][0], message, span, hint, tuple(notes), tuple(related), witness, data=data)


MAX_SUGGESTION_LENGTH = 100
"""Words longer than this get no "did you mean": names are short, and the edit distance
costs the product of the two lengths (a 1 MB misspelled word took 14 s against every name)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate by edit distance, when it is close enough to be a likely typo."""
    if len(name) > MAX_SUGGESTION_LENGTH:
        return None
    limit = max(1, min(3, len(name) // 3))
    word = name.lower()
    best, best_d = None, limit + 1
    for c in sorted(set(candidates)):
        other = c.lower()
        if abs(len(other) - len(word)) > limit:
            continue  # the distance is at least the difference in length
        d = _edit_distance(word, other, limit)
        if d < best_d:
            best, best_d = c, d
    return best


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of two neighbours counts as one edit),
    or ``limit + 1`` as soon as it is sure to exceed ``limit``."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        if min(d[i]) > limit and (i < 2 or min(d[i - 1]) > limit):
            return limit + 1  # every later row stays above: two rows back is the swap's reach
    return min(d[len(a)][len(b)], limit + 1)
