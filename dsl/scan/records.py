"""Records, as ``policy eval`` and ``policy scan`` both read and decide them.

``read_json_records`` reads a JSON stream as a stream: one JSON object, a JSON array of
records, or JSON lines (one record a line), without holding more than one record (and, for
one value spread over several lines, that value) in memory. A line that is not UTF-8 or not
JSON is a ``Bad`` record of its own: the others are still read.

``decide_record`` is the one place a record meets the evaluator: a ``Bad`` record, an
``at`` or ``prior_violations`` that cannot be read, or a listing that ``decide`` rejects
raise ``InputError``, which both commands turn into an error in that record's place.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ..evaluate.outcome import Decision, InputError
from ..evaluate.policies import Policies

__all__ = ["Bad", "decide_record", "is_envelope", "open_envelope", "read_json_records"]

ENVELOPE_KEYS = frozenset({"listing", "at", "prior_violations"})

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


def decide_record(policies: Policies, record: Any, at: Any, prior: Any) -> Decision:
    """The decision on one record read from the input (``at`` None: no instant to decide
    at); raises InputError for a record that cannot be decided."""
    if isinstance(record, Bad):
        raise InputError(record.message)
    if at is None:
        raise InputError("no instant to decide at")
    return policies.decide(record, at=at, prior_violations=prior)


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


def _lines(stream: Iterable[bytes] | Iterable[str]) -> Iterator[bytes]:
    """The input's lines as bytes, split as ``bytes.splitlines`` splits (``\\n``, ``\\r\\n``,
    ``\\r``), without the byte order mark, read a chunk at a time: a line (a file
    iterated), or a block of whole lines (``eval_stream``'s reading of what is available;
    a line break is never cut between two chunks)."""
    first = True
    for chunk in stream:
        raw = chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk
        if first:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte order mark is not part of the input
            first = False
        yield from raw.splitlines() or [b""]


def read_json_records(stream: Iterable[bytes] | Iterable[str]) -> Iterator[Any]:
    """The records of the input, each a parsed JSON value or a ``Bad`` for a line that is
    not UTF-8 or not JSON. When the whole input is one JSON value in UTF-8, that value is
    the record (or, for an array, its elements are the records); otherwise each non-blank
    line is one record. The lines are held only until that is known: as soon as the lines
    read so far cannot begin one JSON value, or end one with more text after it."""
    lines = _lines(stream)
    held: list[bytes] = []
    whole = _one_value(lines, held)
    if whole is not _NOT_ONE:
        if isinstance(whole, list):
            yield from whole
        elif whole is not _EMPTY:
            yield whole
        return
    rest = itertools.chain(iter(held), lines)  # (the held lines let go once read: the list's iterator drops it)
    del held
    yield from _line_records(rest)


_NOT_ONE = object()
_EMPTY = object()


def _one_value(lines: Iterator[bytes], held: list[bytes]) -> Any:
    """The input as one JSON value, ``_EMPTY`` for a blank input, or ``_NOT_ONE`` (the
    lines read are left in ``held``). The lines held are parsed after 1, 2, 4, 8, …
    non-blank lines (so a value spread over many lines costs a few parses, not one per
    line): a parse that ends in the middle of a value asks for more lines; any other
    failure, or a value followed by more text, means one record a line."""
    nonblank, next_check = 0, 1
    value: Any = _NOT_ONE
    for raw in lines:
        held.append(raw)
        if not raw.strip():
            continue
        if value is not _NOT_ONE:
            return _NOT_ONE  # a value, and more text after it
        nonblank += 1
        if nonblank < next_check:
            continue
        next_check *= 2
        value = _parse_held(held, final=False)
        if value is _NOT_ONE:
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


def _line_records(lines: Iterable[bytes]) -> Iterator[Any]:
    """Each line's record. A line is read by orjson (several times faster) but where its
    reading might differ from ``json.loads``'s (``_LONG_NUMBER``) or it fails (not UTF-8,
    not JSON, lone surrogates, NaN, numbers beyond a double, deep nesting): then it goes
    the standard library's way, which gives the value or the error message."""
    fast, translate, digits, long_number = orjson.loads, bytes.translate, _DIGITS_AS_ZERO, _LONG_NUMBER
    for number, raw in enumerate(lines, 1):
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
