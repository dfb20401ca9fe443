"""``policy eval``: decide the listings of a JSON stream, one decision per output line.

The input is one JSON object, a JSON array of records, or JSON lines (one record a line).
A record is a listing, or an envelope ``{"listing": {…}, "at": …, "prior_violations": …}``
(no other keys) whose ``at`` and ``prior_violations`` override the command line's. Each
record yields one line of compact JSON, in input order: the decision (spec section 5,
plus ``"explanation"`` with ``--explain``; with ``--why-not RULE`` the explanation ends with
the full reason for that rule), or ``{"error": {"record": N, "message": …}}``
for a record that cannot be decided (N counts records from 1). The command's exit status
is 1 when any record failed (``EvalRun.had_errors``).

How the input is read (``dsl.scan.records``, which ``policy scan`` shares): as bytes (a
text stream is accepted too), a line at a time. When the whole input is one JSON value in
UTF-8, that value is the record (or, for an array, its elements are the records);
otherwise each non-blank line is one record, and a line that is not UTF-8 or not JSON is an
error record of its own. Records are decided and written as they are read: memory stays
flat for JSON lines, whatever their number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from .checking.loader import UsageError
from .evaluate import values as V
from .evaluate.outcome import DecisionError, InputError
from .evaluate.policies import Policies
from .scan.records import Bad, decide_record, open_envelope, read_json_records

__all__ = ["run_eval", "check_at", "EvalRun", "read_records"]

read_records = read_json_records
"""The records of a JSON stream, read as a stream (``dsl.scan.records``, shared with
``policy scan``)."""


def check_at(at: str | None) -> None:
    """Raise ``UsageError`` when the command line's ``at`` cannot be read (before anything
    is loaded or decided)."""
    if at is None:
        return
    try:
        V.parse_at(at)
    except InputError as e:
        raise UsageError(f"--at: {e}") from None


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
        listing, at, prior = open_envelope(record, self._at, self._prior)
        if at is None and self._at_error is not None and not isinstance(record, Bad):
            raise InputError(self._at_error)
        decision = decide_record(self.policies, listing, at, prior)
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
