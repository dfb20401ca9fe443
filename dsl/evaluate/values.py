"""Listing values (spec sections 4 and 5): what a field holds and how it reads.

Absent values, the kinds of value (number, text, bool, date, category, text-like), dates
read as instants in a policy's timezone, ``at`` and ``prior_violations``, input warnings
for ill-typed fields, and validation against a declared schema. The predicates built on
these readings (comparison, membership, windows) and how applying rules combine into a
decision are in ``dsl.evaluate.semantics``, which both evaluators and the analysis call.

Listing data is untrusted: nothing here recurses over it (a listing nested a thousand
levels deep is read with loops), nothing prints it whole (``describe`` shows a short,
bounded summary), and nothing caches it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, assert_never
from zoneinfo import ZoneInfo

import attrs

from ..model import FieldInfo, PolicySet, ValueKind, local_instant
from ..text import category_segments
from .outcome import InputError

__all__ = [
    "ParsedAt", "read_path", "path_reader", "is_number", "is_scalar", "parse_iso", "value_instant",
    "instant_in", "parse_at", "check_prior", "check_listing", "text_pieces",
    "listing_pieces", "fits", "input_warnings", "validate_schema", "describe", "dotted",
    "KIND_WORDS",
]

UTC = dt.UTC
TEXT_SOURCES: tuple[tuple[str, ...], ...] = (("title",), ("description",), ("tags",))
"""The fields whose text ``mentions`` without a path reads, as separate pieces."""


def dotted(path: Iterable[str]) -> str:
    """A field path as written: ``seller.country``."""
    return ".".join(path)


# --------------------------------------------------------------------------- reading fields


def read_path(listing: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at ``parts``, or None when the field is absent: its key is missing, its
    value is null, or the path runs through something that is not an object."""
    value: Any = listing
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
        if value is None:
            return None
    return value


def path_reader(parts: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """``read_path`` with the path bound (a one-part path is one ``dict.get``)."""
    if len(parts) == 1:
        key = parts[0]
        return lambda listing: listing.get(key)
    return functools.partial(_read_from, parts)


def _read_from(parts: tuple[str, ...], listing: Mapping[str, Any]) -> Any:
    return read_path(listing, parts)


def is_number(value: Any) -> bool:
    """A number in the language's sense: an int or float, not a bool, and finite."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def is_scalar(value: Any) -> bool:
    """Text, a bool, a finite number, or a date object: a value ``in``/``not in`` can test."""
    return isinstance(value, (str, bool, dt.date)) or is_number(value)


# --------------------------------------------------------------------------- dates

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"([Zz]|[+-]\d{2}:\d{2})?)?"
)


def parse_iso(text: str) -> dt.datetime | dt.date | None:
    """An ISO 8601 date (``2021-10-15``) or date-time (``2021-10-15T08:00``,
    ``…T08:00:00.5+08:00``, ``…Z``; a space may stand for ``T``) as a date, a naive
    datetime or an aware datetime; None when ``text`` is not one. Digits are ASCII only."""
    if len(text) > 40 or not text.isascii():
        return None
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    try:
        if hour is None:
            return dt.date(int(year), int(month), int(day))
        micro = int((fraction or "0").ljust(6, "0")[:6])
        tz: dt.tzinfo | None = None
        if offset is not None:
            if offset in ("Z", "z"):
                tz = UTC
            else:
                sign = -1 if offset[0] == "-" else 1
                oh, om = int(offset[1:3]), int(offset[4:6])
                if om >= 60:
                    return None
                tz = dt.timezone(sign * dt.timedelta(hours=oh, minutes=om))
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute),
                           int(second or 0), micro, tzinfo=tz)
    except ValueError:  # month 13, 30 February, offset of 24 hours or more …
        return None


def instant_in(value: dt.datetime | dt.date, tz: ZoneInfo) -> dt.datetime | None:
    """A date, naive or aware datetime as an aware UTC instant (``model.local_instant``,
    where the daylight-saving rules are stated once): a date is the first instant of its
    day in ``tz``, a naive datetime local time in ``tz``. None when out of range, or when
    an aware datetime's tzinfo (a caller's code) gives no offset it can be read with."""
    try:
        return local_instant(value, tz)
    except Exception:  # noqa: BLE001 - out of range (OverflowError, ValueError), or a caller's tzinfo's own error
        return None


def value_instant(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """A listing value read as a date for comparison with a date literal: an ISO date or
    date-time string (or, from Python, a date or datetime object) as an aware UTC
    instant; None when the value is not a date."""
    if isinstance(value, str):
        parsed = parse_iso(value)
        if parsed is None:
            return None
        return instant_in(parsed, tz)
    if isinstance(value, dt.date):
        return instant_in(value, tz)
    return None


def is_date_value(value: Any) -> bool:
    """Whether a listing value reads as a date (in any timezone)."""
    if isinstance(value, str):
        return parse_iso(value) is not None
    return isinstance(value, dt.date)


# --------------------------------------------------------------------------- at, prior


@attrs.frozen
class ParsedAt:
    """The instant to decide at (spec section 5). ``instant`` is set when ``at`` was given
    with an offset (or as an aware datetime, or defaulted to now); otherwise ``local``
    holds the local reading as given, a date or a naive date-time, read in each policy's
    own timezone (``in_tz``)."""

    instant: dt.datetime | None
    local: dt.datetime | dt.date | None = None

    def in_tz(self, tz: ZoneInfo) -> dt.datetime:
        """The instant, for a rule of a policy whose timezone is ``tz`` (aware, UTC): a
        local date is the first instant of that day there, a local date-time that time
        there (``model.local_instant`` states the daylight-saving rules)."""
        if self.instant is not None:
            return self.instant
        assert self.local is not None
        found = instant_in(self.local, tz)
        if found is None:
            raise InputError(f"at: {self.local.isoformat()} is out of range in timezone {tz.key}", field="at")
        return found

    @property
    def reported(self) -> dt.datetime:
        """The ``at`` a decision reports, so that deciding again at it gives the same
        decision: the instant (aware, UTC) when ``at`` had an offset or was the default;
        otherwise the local reading as given, a naive datetime (a date as its midnight)."""
        if self.instant is not None:
            return self.instant
        local = self.local
        assert local is not None
        if isinstance(local, dt.datetime):
            return local
        return dt.datetime(local.year, local.month, local.day)


def parse_at(at: Any) -> ParsedAt:
    """Read ``decide``'s ``at``: None for now; an aware datetime, or an ISO string with an
    offset (``Z``, ``+08:00``), for that instant; a naive datetime, a date, or an ISO
    string without an offset for local time in each policy's timezone. Anything else is
    an InputError."""
    if at is None:
        return ParsedAt(dt.datetime.now(UTC))
    if isinstance(at, ParsedAt):
        return at
    value: Any = at
    if isinstance(at, str):
        value = parse_iso(at.strip())
        if value is None:
            raise InputError(
                f"at: cannot read {describe(at)} as a date or date-time "
                "(expected e.g. 2021-10-15, 2021-10-15T08:00 or 2021-10-15T08:00:00+08:00)",
                field="at")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or _offset(value) is None:
            return ParsedAt(None, value.replace(tzinfo=None, fold=0))
        try:
            return ParsedAt(value.astimezone(UTC))
        except (OverflowError, ValueError):
            raise InputError(f"at: {value.isoformat()} is out of range", field="at") from None
    if isinstance(value, dt.date):
        return ParsedAt(None, dt.date(value.year, value.month, value.day))
    raise InputError(f"at: expected a date or date-time, got {describe(at)}", field="at")


def _offset(at: dt.datetime) -> dt.timedelta | None:
    """An aware ``at``'s offset from UTC, from its tzinfo's own code: a tzinfo whose
    ``utcoffset`` raises, or returns no timedelta within a day, gives no instant
    (InputError)."""
    try:
        return at.utcoffset()
    except Exception as e:  # whatever the code of a tzinfo of the caller's raises
        raise InputError(f"at: its timezone gives no valid offset: {type(e).__name__}: {show_text(str(e), 100)}",
                         field="at") from None


def check_prior(prior: Any) -> int:
    """``prior_violations`` as an int: a whole number >= 0 (a float with no fraction is
    accepted; bools, text and negative numbers are input errors)."""
    if (isinstance(prior, bool) or not is_number(prior) or prior < 0
            or (isinstance(prior, float) and not prior.is_integer())):
        # the value as given, bounded (a number bare: "got -1", "got 1.5", "got -1e+300")
        got = describe(prior).removeprefix("the number ")
        raise InputError(f"prior_violations: expected a whole number >= 0, got {got}", field="prior_violations")
    return int(prior)


def check_listing(listing: Any) -> None:
    """A listing must be an object (a dict)."""
    if not isinstance(listing, dict):
        raise InputError(f"a listing must be a JSON object, got {describe(listing)}")


# --------------------------------------------------------------------------- text


def text_pieces(value: Any) -> tuple[str, ...]:
    """The text a field offers to ``mentions``/``contains``/``matches``: a string is one
    piece; a list gives its string elements (others are ignored, with a warning from
    ``input_warnings``); anything else gives nothing."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def listing_pieces(listing: Mapping[str, Any]) -> tuple[str, ...]:
    """The listing's text for ``mentions`` without a path: title, description and each
    tag, as separate pieces (read like ``title mentions …`` and so on)."""
    title, description, tags = listing.get("title"), listing.get("description"), listing.get("tags")
    if type(title) is str and type(description) is str and type(tags) is list:  # the usual shape
        for t in tags:  # a loop: a generator under all() costs more than the few tags
            if type(t) is not str:
                break
        else:
            return (title, description, *tags)
    pieces: list[str] = []
    for value in (title, description, tags):
        if isinstance(value, str):
            pieces.append(value)
        elif isinstance(value, list):
            pieces.extend(v for v in value if isinstance(v, str))
    return tuple(pieces)


# --------------------------------------------------------------------------- kinds, warnings

KIND_WORDS = {
    "text": "text", "number": "a number", "bool": "true or false", "date": "a date",
    "category": "a category path (text or a list of text)",
    "textlike": "text or a list of text",
}


def fits(value: Any, kind: ValueKind) -> bool:
    """Whether a present value is of ``kind``: text, number, bool, date (an ISO date or
    date-time string), category (a string or a list of strings) or textlike (a string,
    or a list whose elements are all strings)."""
    if kind == "text":
        return isinstance(value, str)
    if kind == "number":
        return is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "date":
        return is_date_value(value)
    if kind == "category":
        return category_segments(value) is not None
    if kind == "textlike":
        if isinstance(value, str):
            return True
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    assert_never(kind)


def warning_for(path: tuple[str, ...], value: Any, kinds: frozenset[ValueKind]) -> str | None:
    """The input warning for a field, or None when its value fits one of ``kinds``."""
    if value is None or not kinds:
        return None
    for kind in kinds:
        if fits(value, kind):
            return None
    wanted = " or ".join(KIND_WORDS.get(k, k) for k in sorted(kinds))
    return f"{dotted(path)}: expected {wanted}, got {describe(value)}; the conditions on it are false"


def warned_fields(ps: PolicySet) -> tuple[tuple[tuple[str, ...], frozenset[ValueKind]], ...]:
    """The fields that can earn a warning and the kinds the set compares each with, in
    the order warnings are reported (by dotted path)."""
    return tuple(sorted(((p, k) for p, k in ps.compared_types.items() if k), key=lambda pk: dotted(pk[0])))


def input_warnings(listing: Mapping[str, Any],
                   fields: Iterable[tuple[tuple[str, ...], frozenset[ValueKind]]]) -> tuple[str, ...]:
    """One warning per field whose present value fits none of the kinds the set compares
    it with (whichever rules were evaluated), in the order of ``fields``."""
    found = []
    for path, kinds in fields:
        message = warning_for(path, read_path(listing, path), kinds)
        if message is not None:
            found.append(message)
    return tuple(found)


# --------------------------------------------------------------------------- schema


def schema_problem(info: FieldInfo, value: Any) -> str | None:
    """Why a value does not fit its declared field, or None."""
    name = dotted(info.path)
    if value is None:
        return f"{name}: the field is required but absent" if info.required else None
    kind = info.kind
    ok = {
        "text": isinstance(value, str),
        "number": is_number(value),
        "bool": isinstance(value, bool),
        "date": is_date_value(value),
        "category": category_segments(value) is not None,
        "one_of": isinstance(value, str) and value in info.values,
        "list_text": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }.get(kind, True)
    if ok:
        return None
    if kind == "one_of":
        allowed = ", ".join(repr(v) for v in info.values)
        return f"{name}: expected one of {allowed}, got {describe(value)}"
    words = {"text": "text", "number": "a finite number", "bool": "true or false",
             "date": "an ISO date or date-time", "category": "a category path (text or a list of text)",
             "list_text": "a list of text"}
    return f"{name}: expected {words.get(kind, kind)}, got {describe(value)}"


def validate_schema(listing: Mapping[str, Any], schema: Mapping[tuple[str, ...], FieldInfo]) -> None:
    """Check a listing against the declared fields (when the set declares any): every
    problem is reported in one InputError, fields in order of their dotted path."""
    if not schema:
        return
    problems: list[str] = []
    first: str | None = None
    for path in sorted(schema, key=dotted):
        problem = schema_problem(schema[path], read_path(listing, path))
        if problem is not None:
            problems.append(problem)
            first = first or dotted(path)
    if problems:
        head = "the listing does not fit the declared fields: " if len(problems) > 1 else ""
        raise InputError(head + "; ".join(problems), field=first, problems=tuple(problems))


# --------------------------------------------------------------------------- describing values

_SHOW = 60


def describe(value: Any) -> str:
    """A short description of an untrusted value for messages: its kind and, for
    scalars, a bounded excerpt. Containers are never printed (they may be huge or
    nested thousands of levels deep)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return f"the non-finite number {value!r}"
        if isinstance(value, int) and value.bit_length() > 160:  # repr may refuse huge ints
            sign = "negative " if value < 0 else ""
            return f"a {sign}number of about {int(value.bit_length() * 0.30103)} digits"
        text = repr(value)
        return f"the number {text if len(text) <= _SHOW else text[:_SHOW] + '…'}"
    if isinstance(value, str):
        return f"the text {show_text(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return f"a value of type {type(value).__name__}"


def show_text(value: str, limit: int = _SHOW) -> str:
    """A string quoted for messages, cut to ``limit`` characters."""
    if len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value)} characters)"
    return repr(value)
