"""Records, as ``policy eval`` and ``policy scan`` both read and decide them.

``read_json_records`` reads a JSON stream as a stream: one JSON object, a JSON array of
records, or JSON lines (one record a line), without holding more than the records of one
chunk of the input (and, for one value spread over several lines, that value) in memory.
A line that is not UTF-8 or not JSON is a ``Bad`` record of its own: the others are still
read. ``read_json_batches`` gives the same records a chunk at a time. ``json_line`` is
the line both write for a decision.

``decide_record`` and ``decide_records`` (a batch, in one call of the evaluator's
``decide_many``) are where a record meets the evaluator: a ``Bad`` record, a record with
no instant to decide at (``undecidable``), an ``at`` or ``prior_violations`` that cannot be
read, or a listing that ``decide`` rejects is an error in that record's place.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from ..evaluate.outcome import Decision, DecisionError, InputError
from ..evaluate.policies import Policies

__all__ = ["ARRAY_BATCH", "NO_AT", "Bad", "Lines", "decide_record", "decide_records", "is_envelope", "json_line",
           "open_envelope", "read_json_batches", "read_json_records", "read_json_units", "undecidable",
           "whole_line_blocks"]

ENVELOPE_KEYS = frozenset({"listing", "at", "prior_violations"})

BLOCK = 1 << 16
"""The bytes read at a time from a binary stream (``whole_line_blocks``)."""

ARRAY_BATCH = 1024
"""The records of an input that is one JSON array, given at a time by ``read_json_batches``
(the array is in memory; the decisions on it need not all be)."""

_DEEP_LIMIT = 5000
"""How deeply input JSON may nest (Python's parser recurses; a listing nested 1,000
levels deep is read by raising the interpreter's limit to this while parsing)."""


class Bad:
    """A record that could not be read (its message)."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def is_envelope(record: Any) -> bool:
    """Whether a JSON record is an envelope ``{"listing": {…}, "at": …,
    "prior_violations": …}`` (no other keys), whose ``at`` and ``prior_violations``
    override the command line's."""
    return isinstance(record, dict) and "listing" in record and record.keys() <= ENVELOPE_KEYS


def open_envelope(record: Any, at: Any, prior: Any) -> tuple[Any, Any, Any]:
    """The listing, ``at`` and ``prior_violations`` of a record: an envelope's own ``at``
    and ``prior_violations`` (when not null) override the ``at`` and ``prior`` given."""
    if not is_envelope(record):
        return record, at, prior
    own_at, own_prior = record.get("at"), record.get("prior_violations")
    return record["listing"], at if own_at is None else own_at, prior if own_prior is None else own_prior


NO_AT = "no instant to decide at"
"""The error of a record decided with no ``at``: none given, none in its envelope."""


def undecidable(record: Any, at: Any, no_at: str = NO_AT) -> str | None:
    """Why a record read from the input cannot be decided before it reaches the
    evaluator (a ``Bad`` record's message; ``no_at`` when ``at`` is None), or None."""
    if isinstance(record, Bad):
        return record.message
    if at is None:
        return no_at
    return None


def decide_record(policies: Policies, record: Any, at: Any, prior: Any) -> Decision:
    """The decision on one record read from the input (``at`` None: no instant to decide
    at); raises InputError for a record that cannot be decided."""
    problem = undecidable(record, at)
    if problem is not None:
        raise InputError(problem)
    return policies.decide(record, at=at, prior_violations=prior)


def decide_records(policies: Policies, records: list[Any], at: Any, prior: Any, first: int = 1,
                   no_at: str = NO_AT) -> list[Decision | DecisionError]:
    """The decisions on ``records`` read from the input, each opened as ``open_envelope``
    opens it with ``at`` and ``prior``, in order: the one ``decide_record`` gives, or a
    ``DecisionError`` (numbered from ``first``) in the place of a record that cannot be
    decided, with the message ``decide_record`` would raise (``no_at`` for a record with
    no instant). The records that can be are decided in one call of ``decide_many``
    (some 1.4 µs a record less than one call each)."""
    listings: list[Any] = []
    ats: list[Any] = []
    priors: list[Any] = []
    failed: dict[int, str] = {}
    for j, record in enumerate(records):
        listing, record_at, record_prior = open_envelope(record, at, prior)
        problem = undecidable(listing, record_at, no_at)
        if problem is not None:
            failed[j] = problem
            continue
        listings.append(listing)
        ats.append(record_at)
        priors.append(record_prior)
    decided = policies.decide_many(listings, at=ats, prior_violations=priors)
    if not failed and all(type(d) is not DecisionError for d in decided):
        return decided
    out: list[Decision | DecisionError] = []
    results = iter(decided)
    for j in range(len(records)):
        problem = failed.get(j)
        if problem is not None:
            out.append(DecisionError(first + j, problem))
            continue
        result = next(results)
        out.append(DecisionError(first + j, result.message, result.field) if type(result) is DecisionError
                   else result)
    return out


def json_line(obj: Any) -> bytes:
    """One output line: compact JSON, not ASCII-escaped (as ``json.dumps(obj,
    ensure_ascii=False, separators=(",", ":"))`` writes it, but for a float's exponent:
    orjson writes ``1e-7`` where json writes ``1e-07``), by orjson, and a line feed. A
    value orjson refuses (a lone surrogate, not Unicode text; an integer beyond 64 bits) is
    written by the standard library instead, ASCII-escaped, which keeps the line valid
    UTF-8 (``\\udXXX``)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError
        return (json.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8")


def loads(text: str) -> Any:
    """``json.loads``, for JSON nested up to about ``_DEEP_LIMIT`` levels."""
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


def _chunks(stream: Iterable[bytes] | Iterable[str]) -> Iterator[list[bytes]]:
    """The input's lines as bytes, a chunk of the input at a time: a line (a file
    iterated), or a block of whole lines (``eval_stream``'s reading of what is available;
    a line break is never cut between two chunks). Split as ``bytes.splitlines`` splits
    (``\\n``, ``\\r\\n``, ``\\r``), without the byte order mark."""
    first = True
    for chunk in stream:
        raw = chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk
        if first:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte order mark is not part of the input
            first = False
        yield raw.splitlines() or [b""]


def whole_line_blocks(read1: Callable[[int], bytes], before: Callable[[], None] = lambda: None) -> Iterator[bytes]:
    """The blocks ``read1`` gives (``BLOCK`` bytes at most), each up to and with its last
    line feed; the rest of a block (the start of a line) goes before the next one, and the
    input's last line, without a line feed, comes alone at the end. A line break is never
    cut in two (a ``\\r\\n`` stays whole), so splitting each chunk as ``bytes.splitlines``
    does gives the input's lines. ``before`` is called before each read (``policy eval``
    flushes its output there)."""
    pending: list[bytes] = []  # the start of a line spread over several blocks
    while True:
        before()
        block = read1(BLOCK)
        if not block:
            break
        end = block.rfind(b"\n") + 1
        if not end:
            pending.append(block)
            continue
        if pending:
            pending.append(block[:end])
            yield b"".join(pending)
            pending.clear()
        else:
            yield block if end == len(block) else block[:end]
        if end < len(block):
            pending.append(block[end:])
    if pending:
        yield b"".join(pending)


def read_json_records(stream: Iterable[bytes] | Iterable[str]) -> Iterator[Any]:
    """The records of the input, each a parsed JSON value or a ``Bad`` for a line that is
    not UTF-8 or not JSON. When the whole input is one JSON value in UTF-8, that value is
    the record (or, for an array, its elements are the records); otherwise each non-blank
    line is one record. The lines are held only until that is known: as soon as the lines
    read so far cannot begin one JSON value, or end one with more text after it."""
    return itertools.chain.from_iterable(read_json_batches(stream))


def read_json_batches(stream: Iterable[bytes] | Iterable[str]) -> Iterator[list[Any]]:
    """The records of ``read_json_records``, in lists, none empty: for JSON lines, the
    records of each chunk of the input (the first list: those of every chunk read to learn
    that the input is not one JSON value), so that a record is decided as soon as the
    chunk that holds it is read; for one array, its records ``ARRAY_BATCH`` at a time. A
    stream with ``read1`` (a binary file) is read a block at a time (``whole_line_blocks``),
    anything else as it iterates."""
    for unit in read_json_units(stream):
        records = unit.read() if isinstance(unit, Lines) else unit
        if records:
            yield records


def read_json_units(stream: Iterable[bytes] | Iterable[str]) -> Iterator[list[Any] | Lines]:
    """``read_json_batches``, but for JSON lines, each chunk's lines as they are
    (``Lines``), read when the caller asks for their records: those of one JSON value are
    lists (not empty), the lines' chunks may hold no record (blank lines)."""
    read1 = getattr(stream, "read1", None)
    chunks = _chunks(stream if read1 is None else whole_line_blocks(read1))
    held: list[bytes] = []
    whole = _one_value(chunks, held)
    if whole is not _NOT_ONE:
        if isinstance(whole, list):
            for start in range(0, len(whole), ARRAY_BATCH):
                yield whole[start:start + ARRAY_BATCH]
        elif whole is not _EMPTY:
            yield [whole]
        return
    number = len(held)
    yield Lines(held, 1)
    del held
    for lines in chunks:
        yield Lines(lines, number + 1)
        number += len(lines)


class Lines:
    """JSON lines not read yet: the lines (bytes, without their line breaks), the number
    of the first, and the file they come from, which a bad line's message names (None: not
    named). ``records`` counts the records they hold (the lines that are not blank),
    ``read`` reads them (``Bad`` for a line that is not UTF-8 or not JSON). A scan sends
    them to a worker process as they are, one text to pickle: the records they hold
    cost more to pickle than to read."""

    __slots__ = ("_records", "first", "lines", "name")

    def __init__(self, lines: list[bytes], first: int, name: str | None = None, records: int | None = None):
        self.lines, self.first, self.name, self._records = lines, first, name, records

    @property
    def records(self) -> int:
        if self._records is None:
            self._records = sum(map(bool, map(bytes.strip, self.lines)))  # (as ``_line_records`` skips a line)
        return self._records

    def read(self) -> list[Any]:
        records = list(_line_records(self.lines, self.first))
        if self.name is not None:
            records = [Bad(f"{self.name}: {r.message}") if type(r) is Bad else r for r in records]
        return records

    def __reduce__(self) -> tuple[Any, ...]:
        return _joined_lines, (b"\n".join(self.lines), self.first, self.name, self.records)


def _joined_lines(data: bytes, first: int, name: str | None, records: int) -> Lines:
    """``Lines`` unpickled: its lines joined by line feeds (no line holds a line break)."""
    return Lines(data.split(b"\n"), first, name, records)


_NOT_ONE = object()
_EMPTY = object()


def _one_value(chunks: Iterator[list[bytes]], held: list[bytes]) -> Any:
    """The input as one JSON value, ``_EMPTY`` for a blank input, or ``_NOT_ONE`` (the
    lines of the chunks read are left in ``held``). The lines held are parsed after 1, 2, 4, 8, …
    non-blank lines (so a value spread over many lines costs a few parses, not one per
    line): a parse that ends in the middle of a value asks for more lines; any other
    failure, or a value followed by more text, means one record a line."""
    nonblank, next_check = 0, 1
    value: Any = _NOT_ONE
    for lines in chunks:
        for k, raw in enumerate(lines):
            held.append(raw)
            if not raw.strip():
                continue
            if value is not _NOT_ONE:  # a value, and more text after it
                held.extend(lines[k + 1:])
                return _NOT_ONE
            nonblank += 1
            if nonblank < next_check:
                continue
            next_check *= 2
            value = _parse_held(held, final=False)
            if value is _NOT_ONE:
                held.extend(lines[k + 1:])
                return _NOT_ONE
            if value is _PENDING:
                value = _NOT_ONE
    if nonblank == 0:
        return _EMPTY
    if value is _NOT_ONE:
        value = _parse_held(held, final=True)
    return _NOT_ONE if value is _PENDING else value


_PENDING = object()


def _parse_held(held: list[bytes], *, final: bool) -> Any:
    """The lines held as one JSON value; ``_PENDING`` when the text ends in the middle of
    one (and more lines may follow), ``_NOT_ONE`` when no more text can make it one."""
    try:
        text = b"\n".join(held).decode("utf-8")
    except UnicodeDecodeError:
        return _NOT_ONE
    try:
        return loads(text)
    except json.JSONDecodeError as e:
        ran_out = e.pos >= len(text.rstrip())
        return _PENDING if ran_out and not final else _NOT_ONE
    except ValueError:  # nested too deeply so far
        return _NOT_ONE if final else _PENDING


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
"""19 digits in a row (found as 19 zeros once every digit is a zero: several times faster
than a regular expression): a number orjson might read otherwise than json (it reads an
integer beyond 64 bits as a float)."""


def _line_records(lines: Iterable[bytes], first: int) -> Iterator[Any]:
    """Each line's record (the lines numbered from ``first``, for the messages). A line is
    read by orjson (several times faster) but where its reading might differ from
    ``json.loads``'s (``_LONG_NUMBER``) or it fails (not UTF-8, not JSON, lone surrogates,
    NaN, numbers beyond a double, deep nesting): then it goes the standard library's way,
    which gives the value or the error message."""
    fast, translate, digits, long_number = orjson.loads, bytes.translate, _DIGITS_AS_ZERO, _LONG_NUMBER
    for number, raw in enumerate(lines, first):
        if long_number not in translate(raw, digits):
            try:
                value = fast(raw)
            except orjson.JSONDecodeError:
                pass
            else:
                yield value
                continue
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield Bad(f"line {number}: not UTF-8: byte {e.start + 1} of the line (0x{raw[e.start]:02x}) "
                      "cannot be decoded")
            continue
        try:
            yield loads(line)
        except ValueError as e:
            yield Bad(f"line {number}: not valid JSON: {_reason(e)}")


def _reason(e: ValueError) -> str:
    """Why a line is not read: the parser's words, but for Python's limit on the digits
    of an integer, whose message advises a Python call."""
    if "integer string conversion" in str(e):
        return f"a number of more than {sys.get_int_max_str_digits()} digits"
    return str(e)
