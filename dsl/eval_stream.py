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
text stream is accepted too), in blocks of whole lines, each line decoded on its own.
When the whole input is one JSON value in UTF-8, that value is the record (or, for an
array, its elements are the records); otherwise each non-blank line is one record, and a
line that is not UTF-8 or not JSON is an error record of its own. The records of each
block are decided together, in one call of the evaluator's ``decide_many``
(``records.decide_records``: the decisions ``decide`` gives one by one, errors in their
records' places), and written before the next block is read: memory stays flat for JSON
lines, whatever their number.

How it is written (``EvalRun.write_to``, what the command line uses): UTF-8 bytes, the JSON
written by orjson (the standard library's when orjson refuses a string: a lone surrogate),
buffered and flushed each time the input must be read again, so that a reader at the other
end of a pipe sees each decision as soon as its record's line was in, without a write per
line on a file. The line of the decision shared by every listing to which nothing applies
at one ``at`` is written once and reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from .checking.loader import UsageError
from .evaluate import values as V
from .evaluate.outcome import Decision, DecisionError, InputError
from .evaluate.policies import Policies
from .scan.records import (
    NO_AT,
    decide_records,
    json_line,
    open_envelope,
    read_json_batches,
    read_json_records,
    whole_line_blocks,
)

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
        raise UsageError("--at: " + e.message.removeprefix("at: ")) from None


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
        self._shared: dict[int, tuple[Decision, bytes]] = {}
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
        """The output lines, as text without the line end (the input read as ``write_to``
        reads it)."""
        for line in self.lines(self.input_stream):
            yield line[:-1].decode("utf-8")

    def write_to(self, out: IO[bytes]) -> None:
        """Write every output line to ``out`` (UTF-8, each ending in a line feed), flushed
        whenever the input must be read again."""
        write = out.write
        for lines in self._chunk_lines(_lines_flushing(self.input_stream, out.flush)):
            write(b"".join(lines))
        out.flush()

    def lines(self, source: Iterable[bytes] | IO[bytes] | IO[str]) -> Iterator[bytes]:
        """The output lines of the records read from ``source``, as UTF-8 bytes ending in a
        line feed."""
        for lines in self._chunk_lines(source):
            yield from lines

    def _chunk_lines(self, source: Iterable[bytes] | IO[bytes] | IO[str]) -> Iterator[list[bytes]]:
        """The output lines of the records of each chunk of the input read from
        ``source``: they are decided together (``decide_records``), before the next chunk
        is read."""
        number = 0
        no_at = NO_AT if self._at_error is None else self._at_error
        policies, at, prior, shared = self.policies, self._at, self._prior, self._shared
        for records in read_json_batches(source):
            results = decide_records(policies, records, at, prior, number + 1, no_at)
            first, number = number + 1, number + len(records)
            if self.explain:
                yield list(self._explained(records, results, first))
                continue
            lines: list[bytes] = []
            append = lines.append
            for result in results:
                if isinstance(result, DecisionError):
                    self.had_errors = True
                    append(json_line(result.to_dict()))
                elif result.rules or result.warnings:
                    append(json_line(result.to_dict()))
                else:
                    kept = shared.get(id(result))
                    append(kept[1] if kept is not None and kept[0] is result else self._shared_line(result))
            yield lines

    def _explained(self, records: list[Any], results: list[Decision | DecisionError], first: int) -> Iterator[bytes]:
        """The lines of ``--explain``: each decision with its explanation (the records
        numbered from ``first``)."""
        for number, (record, result) in enumerate(zip(records, results, strict=True), first):
            if not isinstance(result, DecisionError):
                listing, _, prior = open_envelope(record, self._at, self._prior)
                out = result.to_dict()
                try:
                    out["explanation"] = self.policies.explain_decision(result, listing, prior, self.why_not)
                except InputError as e:
                    result = DecisionError(number, e.message, e.field)
                else:
                    yield json_line(out)
                    continue
            self.had_errors = True
            yield json_line(result.to_dict())

    def _shared_line(self, decision: Decision) -> bytes:
        """The line of a decision on which nothing applied and nothing was warned, kept
        (``_decide`` looks it up): the evaluator shares that decision for one ``at``, so
        its line is kept by the decision's identity (with the decision, so that its id
        stays its own; a few hundred at most)."""
        if len(self._shared) >= _SHARED_MAX:
            self._shared.clear()
        line = json_line(decision.to_dict())
        self._shared[id(decision)] = (decision, line)
        return line


_SHARED_MAX = 1024


def _lines_flushing(stream: IO[bytes] | IO[str], flush: Callable[[], None]) -> Iterable[bytes] | IO[str]:
    """The input as ``read_records`` reads it, in blocks of what is available (``read1``),
    each cut after its last line feed (``records.whole_line_blocks``), with ``flush``
    called before each block is read: the output is flushed whenever the input may have
    to be waited for. A stream without ``read1`` (text) is read as it is."""
    read1 = getattr(stream, "read1", None)
    if read1 is None:
        return stream

    def read(size: int) -> bytes:
        try:
            return read1(size)  # type: ignore[no-any-return]
        except OSError as e:  # (a standard input opened for writing only, …): the input, not the output
            raise UsageError(f"--input: cannot be read: {e.strerror or e}") from None

    return whole_line_blocks(read, flush)


def run_eval(policies: Policies, input_stream: IO[bytes] | IO[str], *, at: Any = None, prior: Any = 0,
             explain: bool = False, why_not: str | None = None) -> EvalRun:
    """Decide every record of ``input_stream``: iterate the result for the output lines
    (one per record, in input order), then read ``.had_errors`` for the exit status.
    ``why_not`` (a rule id; implies ``explain``) adds that rule's full reason to each
    explanation; resolve it first with ``Policies.resolve_rule`` to fail early."""
    return EvalRun(policies, input_stream, at=at, prior=prior, explain=explain, why_not=why_not)
