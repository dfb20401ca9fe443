"""``policy eval``: decide the listings of a JSON stream, one decision per output line.

The input is one JSON object, a JSON array of records, or JSON lines (one record a line).
A record is a listing, or an envelope ``{"listing": {…}, "at": …, "prior_violations": …}``
(no other keys) whose ``at`` and ``prior_violations`` override the command line's. Each
record yields one line of compact JSON, in input order: the decision (spec section 5,
plus ``"explanation"`` with ``--explain``; with ``--why-not RULE`` the explanation ends with
the full reason for that rule), or ``{"error": {"record": N, "message": …}}``
for a record that cannot be decided (N counts records from 1). The command's exit status
is 1 when any record failed (``EvalRun.had_errors``).

How the input is read: as bytes (a text stream is accepted too). When the whole input is
one JSON value in UTF-8, that value is the record (or, for an array, its elements are the
records); otherwise each non-blank line is one record, and a line that is not UTF-8 or not
JSON is an error record of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from .checking.loader import UsageError
from .evaluate import values as V
from .evaluate.outcome import DecisionError, InputError
from .evaluate.policies import Policies

__all__ = ["run_eval", "check_at", "EvalRun", "read_records"]

_ENVELOPE_KEYS = frozenset({"listing", "at", "prior_violations"})
_DEEP_LIMIT = 5000
"""How deeply input JSON may nest (Python's parser recurses; a listing nested 1,000
levels deep is read by raising the interpreter's limit to this while parsing)."""


class _Bad:
    """A record that could not be read (its message)."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        pass
    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(old, _DEEP_LIMIT))
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"the JSON is nested more than about {_DEEP_LIMIT} levels deep") from None
    finally:
        sys.setrecursionlimit(old)


def read_records(stream: IO[bytes] | IO[str]) -> Iterator[Any]:
    """The records of the input, each a parsed JSON value or a ``_Bad`` for a line that
    is not UTF-8 or not JSON. The input is read as bytes and decoded line by line, so that
    one bad byte costs one record, not the batch."""
    data = stream.read()
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte order mark is not part of the input
    if not data.strip():
        return
    try:
        whole = _loads(data.decode("utf-8"))
    except ValueError:  # not one JSON value (or not UTF-8 somewhere): one record a line
        pass
    else:
        if isinstance(whole, list):
            yield from whole
        else:
            yield whole
        return
    for number, raw in enumerate(data.splitlines(), 1):
        if raw.strip():
            yield _read_line(number, raw)


def _read_line(number: int, raw: bytes) -> Any:
    """One line of JSON Lines input: its value, or a ``_Bad`` saying why it has none."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return _Bad(f"line {number}: not UTF-8: byte {e.start + 1} of the line (0x{raw[e.start]:02x}) "
                    "cannot be decoded")
    try:
        return _loads(line)
    except ValueError as e:
        return _Bad(f"line {number}: not valid JSON: {e}")


def check_at(at: str | None) -> None:
    """Raise ``UsageError`` when the command line's ``at`` cannot be read (before anything
    is loaded or decided)."""
    if at is None:
        return
    try:
        V.parse_at(at)
    except InputError as e:
        raise UsageError(f"--at: {e}") from None


def _is_envelope(record: Any) -> bool:
    return isinstance(record, dict) and "listing" in record and record.keys() <= _ENVELOPE_KEYS


class EvalRun:
    """The output lines of ``policy eval``, produced as they are iterated; afterwards
    ``had_errors`` tells whether some record could not be decided (exit status 1)."""

    def __init__(self, policies: Policies, input_stream: IO[bytes] | IO[str], *, at: Any = None, prior: Any = 0,
                 explain: bool = False, why_not: str | None = None):
        self.policies = policies
        self.input_stream = input_stream
        self.explain = explain or why_not is not None
        self.why_not = why_not
        self.had_errors = False
        self._prior = prior
        # The command line's `at` is read once (`now` is one instant for the whole run); a
        # bad one fails exactly the records that rely on it.
        self._at: V.ParsedAt | None = None
        self._at_error: str | None = None
        try:
            self._at = V.parse_at(at)
        except InputError as e:
            self._at_error = "--at: " + e.message.removeprefix("at: ")

    @property
    def exit_code(self) -> int:
        """The command's exit status, once the lines are read: 1 when a record failed."""
        return 1 if self.had_errors else 0

    def __iter__(self) -> Iterator[str]:
        for number, record in enumerate(read_records(self.input_stream), 1):
            try:
                yield self._decide(record)
            except InputError as e:
                self.had_errors = True
                yield _dumps(DecisionError(number, e.message, e.field).to_dict())

    def _decide(self, record: Any) -> str:
        if isinstance(record, _Bad):
            raise InputError(record.message)
        at: Any = self._at
        prior = self._prior
        listing = record
        if _is_envelope(record):
            listing = record["listing"]
            if record.get("at") is not None:
                at = record["at"]
            if record.get("prior_violations") is not None:
                prior = record["prior_violations"]
        if at is None:
            raise InputError(self._at_error or "no instant to decide at")
        decision = self.policies.decide(listing, at=at, prior_violations=prior)
        out = decision.to_dict()
        if self.explain:
            out["explanation"] = self.policies.explain_decision(decision, listing, prior, self.why_not)
        return _dumps(out)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def run_eval(policies: Policies, input_stream: IO[bytes] | IO[str], *, at: Any = None, prior: Any = 0,
             explain: bool = False, why_not: str | None = None) -> EvalRun:
    """Decide every record of ``input_stream``: iterate the result for the output lines
    (one per record, in input order), then read ``.had_errors`` for the exit status.
    ``why_not`` (a rule id; implies ``explain``) adds that rule's full reason to each
    explanation; resolve it first with ``Policies.resolve_rule`` to fail early."""
    return EvalRun(policies, input_stream, at=at, prior=prior, explain=explain, why_not=why_not)
