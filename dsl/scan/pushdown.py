"""The pushdown: a DuckDB SQL predicate that narrows a scan to the records which could get
anything but a plain allow (issue 12 item 3; docs/scan.md, "Pushdown").

``sql_predicate`` reads the checked model and the input's column types and returns a
boolean expression that is TRUE for every record whose decision could have a rule (an
applying allow included), a warning or an input error. Records where it is FALSE are
written as the plain allow without entering Python, so the predicate must be *sound*: it
may let through records that end up a plain allow (that only costs time), never hold back
one that does not. Where it cannot reason exactly it says TRUE.

How: every condition is read twice, as ``may`` (an over-approximation: TRUE wherever the
condition could hold) and ``must`` (an under-approximation: TRUE only where it surely
holds), so that ``not e`` over-approximates as ``NOT must(e)``. Every atom's SQL is made
NULL-free with COALESCE, so the three-valued logic of SQL never turns a TRUE into a NULL.
A rule contributes ``window AND may(condition)`` (its condition includes the file's
scope and ``not unless``); the input warnings (a present value that fits none of the kinds
the set compares the field with) and the input errors (the schema, an unreadable ``at``
or ``prior_violations``) contribute their own over-approximations.

What a column's value becomes in Python decides the semantics, so the predicate assumes
only this of the scan's reading of a row: a SQL NULL is an absent field; VARCHAR is text;
the integer types are ints; FLOAT and DOUBLE are floats (NaN and infinities included);
BOOLEAN is a bool; VARCHAR[] a list whose NULL elements are None; STRUCT a dict; a
top-level column's name is its key. Every other type (DATE, TIMESTAMP, DECIMAL, JSON,
MAP, other lists, dotted column names that the reader may or may not nest) is *unknown*:
any atom on it may hold wherever it is not NULL, and none surely holds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import attrs

from ..evaluate import semantics as S
from ..evaluate import values as V
from ..evaluate.outcome import InputError
from ..model import FieldInfo, PolicySet, RuleInfo, local_instant
from ..regex_syntax import required_texts
from ..syntax import ast as A
from ..text import normalize_needle, normalize_phrase, pattern_segments

__all__ = ["sql_predicate"]

TRUE, FALSE = "TRUE", "FALSE"

_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                       "USMALLINT", "UINTEGER", "UBIGINT"})
"""Integer types whose values compare exactly with a HUGEINT (UHUGEINT is left unknown)."""
_FLOATS = frozenset({"FLOAT", "DOUBLE"})
_HUGE = 2 ** 126
_NON_ASCII = r"'[^\x00-\x7f]'"
_TEXT_KINDS = frozenset({"text", "textlike", "category"})


class GiveUp(Exception):
    """No narrowing is possible: ``sql_predicate`` returns None."""


def category_keys_of(rule: RuleInfo) -> frozenset[str] | None:
    """The keys of the rule's first category conjunct (``semantics.category_keys``: one of
    them must be a segment of the listing's category path for the rule to hold), None
    when its condition has none. With ``lookup``, ``sql_predicate`` leaves the rules that
    have keys to ``dsl.scan.lookup``."""
    for conjunct in A.conjuncts(rule.condition):
        keys = S.category_keys(conjunct)
        if keys is not None:
            return keys
    return None


# --------------------------------------------------------------------------- SQL text


def ident(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    _check_text(name)
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A string as a SQL string literal (DuckDB reads backslashes literally)."""
    _check_text(text)
    return "'" + text.replace("'", "''") + "'"


def _check_text(text: str) -> None:
    """Policy and column text that SQL cannot carry (NUL, lone surrogates) ends the
    pushdown rather than risk a different reading."""
    if "\x00" in text:
        raise GiveUp
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise GiveUp from None


def _and(parts: Iterable[str]) -> str:
    return _join(parts, "AND", TRUE, FALSE)


def _or(parts: Iterable[str]) -> str:
    return _join(parts, "OR", FALSE, TRUE)


def _join(parts: Iterable[str], op: str, unit: str, zero: str) -> str:
    """``parts`` joined by ``op``, whose identity is ``unit`` and absorbing value ``zero``
    (repeated parts dropped)."""
    items = [p for p in dict.fromkeys(parts) if p != unit]
    if zero in items:
        return zero
    if not items:
        return unit
    return items[0] if len(items) == 1 else "(" + f" {op} ".join(items) + ")"


def _not(part: str) -> str:
    if part == TRUE:
        return FALSE
    if part == FALSE:
        return TRUE
    return f"(NOT {part})"


def _sure(sql: str) -> str:
    """A test whose NULL (an absent field) means false."""
    return sql if sql in (TRUE, FALSE) or sql.endswith(" IS NOT NULL)") else f"COALESCE({sql}, FALSE)"


# --------------------------------------------------------------------------- column types


@attrs.frozen
class ColType:
    """A DuckDB type as the pushdown reads it: ``kind`` is text, int, float, bool,
    text_list, struct (with ``fields``), date or unknown."""

    kind: str
    fields: tuple[tuple[str, ColType], ...] = ()


def parse_type(text: str) -> ColType:
    """A DuckDB type string (as DESCRIBE writes it) read into a ``ColType``."""
    t = text.strip()
    if t.upper() in _INTEGERS:
        return ColType("int")
    if t.upper() in _FLOATS:
        return ColType("float")
    simple = {"VARCHAR": "text", "BOOLEAN": "bool", "DATE": "date"}.get(t.upper())
    if simple is not None:
        return ColType(simple)
    if t.endswith("[]"):
        return ColType("text_list" if t[:-2].strip().upper() == "VARCHAR" else "unknown")
    if t.upper().startswith("STRUCT(") and t.endswith(")"):
        return _parse_struct(t[len("STRUCT("):-1])
    return ColType("unknown")


def _parse_struct(body: str) -> ColType:
    fields: list[tuple[str, ColType]] = []
    for part in _split_top(body):
        name, rest = _field_name(part.strip())
        fields.append((name, parse_type(rest)))
    names = [n.lower() for n, _ in fields]
    if len(set(names)) != len(names):  # DuckDB matches names ignoring case: do not guess
        return ColType("unknown")
    return ColType("struct", tuple(fields))


def _split_top(body: str) -> list[str]:
    """``body`` split at the commas outside parentheses and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(body):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p for p in parts if p.strip()]


def _field_name(part: str) -> tuple[str, str]:
    """A struct field's name (quoted or bare) and the rest of its declaration."""
    if not part.startswith('"'):
        name, _, rest = part.partition(" ")
        return name, rest
    i = 1
    out: list[str] = []
    while i < len(part):
        if part[i] == '"':
            if part[i + 1:i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out), part[i + 1:]
        out.append(part[i])
        i += 1
    raise GiveUp


# --------------------------------------------------------------------------- fields


@attrs.frozen
class Field:
    """A field path resolved against the columns: ``sql`` reads its value (None when it
    is absent, or unknown without one expression that reads it); ``kind`` as in
    ``ColType`` plus ``absent``."""

    kind: str
    sql: str | None = None
    guard: str | None = None
    """A CSV cell: the SQL test under which the cell is read as the column reads it: its
    text, or absent where NULL (elsewhere a present cell may be JSON: a number, a list …,
    so anything is possible)."""

    def present(self) -> str:
        """TRUE where the field may be present (exactly, unless the kind is unknown
        without an expression)."""
        if self.kind == "absent":
            return FALSE
        if self.sql is None:
            return TRUE
        return f"({self.sql} IS NOT NULL)"


ABSENT = Field("absent")


class Columns:
    """The input's top-level columns and their types, resolving field paths."""

    def __init__(self, columns: Mapping[str, str], *, csv: bool = False):
        self.csv = csv
        lowered = [name.lower() for name in columns]
        if len(set(lowered)) != len(lowered):  # DuckDB binds names ignoring case
            raise GiveUp
        self.types = {name: parse_type(kind) for name, kind in columns.items()}
        self.dotted = tuple(name for name in columns if "." in name)

    def resolve(self, path: Sequence[str]) -> Field:
        """The field at ``path``: through the struct columns; absent where the path is
        missing or runs through a scalar; unknown where a dotted column name could be
        read as this path or one of its parents."""
        name = V.dotted(path)
        if any(d == name or d.startswith(name + ".") or name.startswith(d + ".") for d in self.dotted):
            return Field("unknown")
        col = self.types.get(path[0])
        if col is None:
            return ABSENT
        sql = ident(path[0])
        for part in path[1:]:
            if col.kind == "unknown":
                return Field("unknown", sql)
            if col.kind != "struct":
                return ABSENT  # the path runs through something that is not an object
            found = dict(col.fields).get(part)
            if found is None:
                return ABSENT
            sql, col = f"struct_extract({sql}, {literal(part)})", found
        if self.csv and col.kind == "text":
            return Field("text", sql, _csv_text(sql))
        return Field(col.kind, sql)


def _csv_text(sql: str) -> str:
    """Where a CSV cell is surely read as the column reads it (``convert.csv_cell``): NULL
    (DuckDB's empty cell: absent for both), or a text that starts with an ASCII letter (so
    no white space to strip and no JSON number, list, object or string) and not with
    ``true``, ``false`` or ``null``."""
    return _sure(f"{sql} IS NULL OR (regexp_matches({sql}, '^[A-Za-z]') "
                 f"AND NOT regexp_matches({sql}, '^(true|false|null)'))")


def guarded(fields: Sequence[Field], reading: Reading) -> Reading:
    """A reading made on CSV cells as text, widened to where some cell may be JSON."""
    guards = [f.guard for f in fields if f.guard is not None]
    if not guards:
        return reading
    unsure = _or(_not(f.guard) for f in fields if f.guard is not None)
    return Reading(_or([_and([*guards, reading.may]), unsure]), _and([*guards, reading.must]))


# --------------------------------------------------------------------------- numbers


def _int_bound(op: str, value: float | int) -> tuple[str, int] | bool:
    """``int_column op value`` as a comparison with a whole number (exact for any int),
    or a constant (True: every present int holds; False: none does)."""
    if isinstance(value, float) and not value.is_integer():
        if op in ("==", "!="):
            return op == "!="
        value = {"<": math.ceil, ">=": math.ceil, "<=": math.floor, ">": math.floor}[op](value)
    whole = int(value)
    if abs(whole) < _HUGE:
        return op, whole
    if op in ("==", "!="):
        return op == "!="
    return (op in ("<", "<=")) == (whole > 0)  # beyond every column's range


def _sql_op(op: str) -> str:
    return {"==": "=", "!=": "<>"}.get(op, op)


def _int_compare(sql: str, op: str, value: float | int) -> str:
    bound = _int_bound(op, value)
    if isinstance(bound, bool):
        return _sure(f"({sql} IS NOT NULL)") if bound else FALSE
    sql_op, number = _sql_op(bound[0]), bound[1]
    return _sure(f"{sql} {sql_op} CAST('{number}' AS HUGEINT)")


def _double(value: float | int) -> str | None:
    """A number as an exact DOUBLE literal, or None when a double cannot hold it."""
    as_float = float(value) if abs(value) < 2 ** 1000 else math.inf
    if not math.isfinite(as_float) or (isinstance(value, int) and int(as_float) != value):
        return None
    return f"CAST('{as_float!r}' AS DOUBLE)"


def _float_of(sql: str) -> str:
    return f"CAST({sql} AS DOUBLE)"


def _float_compare(sql: str, op: str, value: float | int) -> str | None:
    number = _double(value)
    if number is None:
        return None
    x = _float_of(sql)
    return _sure(f"isfinite({x}) AND {x} {_sql_op(op)} {number}")


# --------------------------------------------------------------------------- atoms


@attrs.frozen
class Reading:
    """An atom's two readings: ``may`` (TRUE wherever it could hold) and ``must`` (TRUE
    only where it surely holds)."""

    may: str
    must: str


NOTHING = Reading(FALSE, FALSE)


def _exact(sql: str) -> Reading:
    return Reading(sql, sql)


def _unknown(field: Field) -> Reading:
    return Reading(_sure(field.present()) if field.sql else field.present(), FALSE)


def compare_reading(field: Field, op: str, lit: A.Scalar) -> Reading:
    """``PATH op LITERAL`` (``semantics.compare_test``)."""
    if field.kind == "absent":
        return NOTHING
    if field.kind in ("unknown", "date") or isinstance(lit, (A.Date, A.DateTime)):
        return _unknown(field)
    assert field.sql is not None
    if isinstance(lit, A.Str):
        if op not in ("==", "!=") or field.kind != "text":
            return NOTHING
        return _exact(_sure(f"{field.sql} {_sql_op(op)} {literal(lit.value)}"))
    if isinstance(lit, A.Bool):
        if op not in ("==", "!=") or field.kind != "bool":
            return NOTHING
        return _exact(_sure(f"{field.sql} {_sql_op(op)} {TRUE if lit.value else FALSE}"))
    return _number_reading(field, op, lit)


def _number_reading(field: Field, op: str, lit: A.Scalar) -> Reading:
    assert isinstance(lit, A.Num) and field.sql is not None
    if field.kind == "int":
        return _exact(_int_compare(field.sql, op, lit.value))
    if field.kind == "float":
        found = _float_compare(field.sql, op, lit.value)
        return _exact(found) if found is not None else _unknown(field)
    return NOTHING  # text, bool, a list or an object is not a number


def membership_reading(field: Field, items: Sequence[A.Scalar], negated: bool) -> Reading:
    """``PATH in LIST`` / ``not in`` (``semantics.membership_test``)."""
    if field.kind in ("absent", "struct", "text_list"):
        return NOTHING  # absent, or not a scalar
    if field.kind in ("unknown", "date") or any(isinstance(i, (A.Date, A.DateTime)) for i in items):
        return _unknown(field)
    assert field.sql is not None
    if negated and not items:
        return _exact(_present_scalar(field))
    if field.kind == "text":
        return _exact(_in_sql(field.sql, [literal(i.value) for i in items if isinstance(i, A.Str)], negated))
    if field.kind == "bool":
        return _exact(_in_sql(field.sql, [TRUE if i.value else FALSE for i in items if isinstance(i, A.Bool)], negated))
    return _numbers_in(field, [i.value for i in items if isinstance(i, A.Num)], negated)


def _present_scalar(field: Field) -> str:
    assert field.sql is not None
    if field.kind == "float":
        return _sure(f"isfinite({_float_of(field.sql)})")
    return _sure(f"{field.sql} IS NOT NULL")


def _in_sql(sql: str, values: list[str], negated: bool) -> str:
    """Membership of a value of the list's kind; with ``not in``, a list without items of
    the value's kind holds for none (a type mismatch, ``membership_test``)."""
    if not values:
        return FALSE
    return _sure(f"{sql} {'NOT IN' if negated else 'IN'} ({', '.join(sorted(set(values)))})")


def _numbers_in(field: Field, numbers: list[float | int], negated: bool) -> Reading:
    assert field.sql is not None
    if not numbers:
        return NOTHING  # a number against a list without numbers: never equal, not comparable
    if field.kind == "int":
        wholes = {int(n) for n in numbers if isinstance(n, int) or n.is_integer()}
        if any(abs(w) >= _HUGE for w in wholes):
            return _unknown(field)
        values = [f"CAST('{w}' AS HUGEINT)" for w in sorted(wholes)]
        if not values:
            return _exact(_sure(f"{field.sql} IS NOT NULL") if negated else FALSE)
        return _exact(_in_sql(field.sql, values, negated))
    doubles = [_double(n) for n in numbers]
    if any(d is None for d in doubles):
        return _unknown(field)
    x = _float_of(field.sql)
    found = _in_sql(x, [d for d in doubles if d is not None], negated)
    return _exact(_and([_sure(f"isfinite({x})"), found]))


# --------------------------------------------------------------------------- text atoms


def _haystack(field: Field) -> tuple[str | None, str | None]:
    """A field's text as one SQL string (its pieces joined by spaces) and a test that it
    may be present when the field's kind is unknown; (None, None) when the field offers
    no text (absent, a number, a bool, an object)."""
    if field.kind == "text":
        return field.sql, None
    if field.kind == "text_list":
        return f"array_to_string({field.sql}, ' ')", None
    if field.kind in ("unknown", "date"):
        return None, _sure(field.present()) if field.sql else field.present()
    return None, None


def _tokens_reading(haystacks: Sequence[str], unknown: Sequence[str],
                    alternatives: Sequence[tuple[str, ...]], gates: set[str] | None) -> Reading:
    """``may`` for a text atom that holds only where one of the ``alternatives`` (each a
    tuple of normalised words) has every word in the normalised text: on text that is
    pure ASCII, normalisation is lower-casing and white space collapsing, so each word
    occurs in ``lower(text)`` (a word that is not ASCII cannot); on other text, TRUE.
    With ``gates`` (a set), the text is assumed ASCII and the test that it is not is
    added to the set instead."""
    if not haystacks:
        return Reading(_or(unknown), FALSE)
    text = haystacks[0] if len(haystacks) == 1 else f"concat_ws(' ', {', '.join(haystacks)})"
    lowered = f"lower({text})"
    options = []
    for words in alternatives:
        if any(not w.isascii() for w in words):
            continue
        options.append(_and(f"contains({lowered}, {literal(w)})" for w in words) if words else f"({text} IS NOT NULL)")
    some = _or(options)
    gate = _ascii_gate(text)
    if gates is not None:
        gates.add(gate)
        return Reading(_or([*unknown, _sure(some)]), FALSE)
    return Reading(_or([*unknown, gate, _sure(some)]), FALSE)


def _ascii_gate(text: str) -> str:
    """TRUE where ``text`` holds a character that is not ASCII (where the word tests do
    not reach): where its bytes (``strlen``) outnumber its characters (``length``, code
    points of DuckDB's UTF-8 text), which a regular expression on every row told at 0.07 s
    of DuckDB's CPU more per million records; a text joined from several (``concat_ws``,
    ``array_to_string``) is tested by the regular expression, so as to be joined once."""
    if text.startswith(("concat_ws(", "array_to_string(")):
        return _sure(f"regexp_matches({text}, {_NON_ASCII})")
    return _sure(f"strlen({text}) <> length({text})")


def _text_atom(e: A.Expr, columns: Columns) -> tuple[list[Field], list[tuple[str, ...]]] | None:
    """The fields a category or text atom reads and its alternatives of words (as the
    readings above take them); None for another atom."""
    if isinstance(e, (A.Category, A.CategoryIn)):
        patterns = [e.pattern.value] if isinstance(e, A.Category) else _texts(e.items)
        return [columns.resolve(("category",))], [tuple(w for s in segs for w in s.split())
                                                   for p in patterns if (segs := pattern_segments(p))]
    if isinstance(e, (A.Mentions, A.MentionsAny)):
        phrases = [e.phrase.value] if isinstance(e, A.Mentions) else _texts(e.items)
        paths = V.TEXT_SOURCES if e.path is None else (e.path.parts,)
        return [columns.resolve(p) for p in paths], [tuple(p.split()) for t in phrases if (p := normalize_phrase(t))]
    if isinstance(e, A.Contains):
        return [columns.resolve(e.path.parts)], [tuple(normalize_needle(e.needle.value).split())]
    return None


def required_words(condition: A.Expr, columns: Columns) -> tuple[str, set[str]] | None:
    """For a condition one of whose conjuncts is a category or text atom on plain text
    columns, or an ``or`` of such atoms that all read the same text: the text it reads (as
    SQL) and words one of which occurs, case aside, in that text wherever the conjunct may
    hold on ASCII text (the first word of each alternative of each atom; alternatives with
    a word that is not ASCII never hold there). None otherwise."""
    for conjunct in A.conjuncts(condition):
        atoms = conjunct.items if isinstance(conjunct, A.Or) else (conjunct,)
        found = [_atom_words(atom, columns) for atom in atoms]
        texts = {f[0] for f in found if f is not None}
        if None in found or len(texts) != 1:
            continue
        return texts.pop(), {w for f in found if f is not None for w in f[1]}
    return None


def _atom_words(atom: A.Expr, columns: Columns) -> tuple[str, set[str]] | None:
    """``required_words`` of one category or text atom."""
    found = _text_atom(atom, columns)
    if found is None:
        return None
    fields, alternatives = found
    if any(f.kind not in ("text", "text_list", "absent") or f.guard is not None for f in fields):
        return None
    haystacks, _ = _text_sources(fields)
    usable = [a for a in alternatives if all(w.isascii() for w in a)]
    if not haystacks or any(not a for a in usable):
        return None
    text = haystacks[0] if len(haystacks) == 1 else f"concat_ws(' ', {', '.join(haystacks)})"
    return text, {a[0] for a in usable}


def prefilter(text: str, words: set[str]) -> str:
    """FALSE without words; else one RE2 pass that finds whether one of ``words`` occurs in ``text``, ignoring
    ASCII case (the text is ASCII where it is used)."""
    if not words:
        return FALSE
    pattern = "|".join("".join(c if c.isalnum() and c.isascii() else "\\" + c for c in w) for w in sorted(words))
    return _sure(f"regexp_matches({text}, {literal('(?i)(?:' + pattern + ')')})")


def _text_sources(fields: Sequence[Field]) -> tuple[list[str], list[str]]:
    haystacks, unknown = [], []
    for f in fields:
        text, maybe = _haystack(f)
        if text is not None:
            haystacks.append(text)
        if maybe is not None:
            unknown.append(maybe)
    return haystacks, unknown


def text_reading(fields: Sequence[Field], alternatives: Sequence[tuple[str, ...]],
                 gates: set[str] | None = None) -> Reading:
    """``mentions``/``contains`` on these fields' text (over-approximated by words)."""
    if not alternatives:
        return NOTHING
    haystacks, unknown = _text_sources(fields)
    return _tokens_reading(haystacks, unknown, alternatives, gates)


def matches_reading(field: Field, regex: A.Regex, gates: set[str] | None = None) -> Reading:
    """``matches``: an RE2 search on the raw text is not restated in SQL; it may hold
    wherever the field offers text holding one of the texts every match holds
    (``regex_syntax.required_texts``: a text piece of a list holds it, so the list's
    pieces joined do; a case-insensitive pattern's, in the text lower-cased where it is
    pure ASCII, as ``mentions`` reads words), or any text where the pattern has none."""
    haystacks, unknown = _text_sources([field])
    required = required_texts(regex.pattern, regex.ignore_case)
    if required is None:
        return Reading(_or([*unknown, *(_sure(f"{h} IS NOT NULL") for h in haystacks)]), FALSE)
    texts = sorted(required.texts)
    if required.folded:
        return _tokens_reading(haystacks, unknown, [(t,) for t in texts], gates)
    return Reading(_or([*unknown, *(_sure(_or(f"contains({h}, {literal(t)})" for t in texts)) for h in haystacks)]),
                   FALSE)


def category_reading(field: Field, patterns: Sequence[str], gates: set[str] | None = None) -> Reading:
    """``category 'P'``: the pattern's segments occur in the path, so each of their words
    occurs in the normalised category text."""
    alternatives = [tuple(w for s in segs for w in s.split()) for p in patterns if (segs := pattern_segments(p))]
    if not alternatives or field.kind not in ("text", "text_list", "unknown", "date"):
        return NOTHING
    return text_reading([field], alternatives, gates)


# --------------------------------------------------------------------------- conditions


class Reader:
    """Reads conditions into their ``may``/``must`` SQL over resolved columns."""

    def __init__(self, columns: Columns, gates: set[str] | None = None):
        self.columns = columns
        self.gates = gates
        """With a set: text atoms assume ASCII text and collect the tests that it is not."""

    def may(self, e: A.Expr) -> str:
        return self.read(e).may

    def read(self, e: A.Expr) -> Reading:
        if isinstance(e, A.Const):
            return _exact(TRUE if e.value else FALSE)
        if isinstance(e, (A.And, A.Or)):
            parts = [self.read(i) for i in e.items]
            join = _and if isinstance(e, A.And) else _or
            return Reading(join(p.may for p in parts), join(p.must for p in parts))
        if isinstance(e, A.Not):
            inner = self.read(e.operand)
            return Reading(_not(inner.must), _not(inner.may))
        return self.atom(e)

    def atom(self, e: A.Expr) -> Reading:
        used: list[Field] = []

        def get(path: Sequence[str]) -> Field:
            used.append(self.columns.resolve(path))
            return used[-1]
        return guarded(used, self._atom(e, get))

    def _atom(self, e: A.Expr, get: Callable[[Sequence[str]], Field]) -> Reading:
        if isinstance(e, (A.Category, A.CategoryIn)):
            patterns = [e.pattern.value] if isinstance(e, A.Category) else _texts(e.items)
            return category_reading(get(("category",)), patterns, self.gates)
        if isinstance(e, (A.Mentions, A.MentionsAny)):
            phrases = [e.phrase.value] if isinstance(e, A.Mentions) else _texts(e.items)
            sources = [get(p) for p in V.TEXT_SOURCES] if e.path is None else [get(e.path.parts)]
            return text_reading(sources, [tuple(p.split()) for t in phrases if (p := normalize_phrase(t))], self.gates)
        if isinstance(e, A.Contains):
            return text_reading([get(e.path.parts)], [tuple(normalize_needle(e.needle.value).split())], self.gates)
        if isinstance(e, A.Matches):
            return matches_reading(get(e.path.parts), e.regex, self.gates)
        if isinstance(e, A.Compare):
            return compare_reading(get(e.path.parts), e.op, e.value)
        if isinstance(e, A.In):
            return membership_reading(get(e.path.parts), _items(e.items), e.negated)
        if isinstance(e, A.Exists):
            field = get(e.path.parts)
            return Reading(_sure(field.present()) if field.sql else field.present(),
                           _sure(field.present()) if field.sql and field.kind != "unknown" else FALSE)
        raise GiveUp


def _items(items: A.ListExpr) -> tuple[A.Scalar, ...]:
    if not isinstance(items, A.ListLit):
        raise GiveUp
    return items.items


def _texts(items: A.ListExpr) -> list[str]:
    return [i.value for i in _items(items) if isinstance(i, A.Str)]


# --------------------------------------------------------------------------- warnings, errors


def unfit(field: Field, kinds: frozenset[str]) -> str:
    """TRUE where the field is present and may fit none of ``kinds`` (``values.fits``;
    the schema's ``list_text`` and ``one_of`` are read as there)."""
    if field.kind == "absent" or not kinds:
        return FALSE
    sql = field.sql
    if sql is None or field.kind in ("unknown", "date", "struct"):
        return field.present() if sql is None else _sure(field.present())
    rule = _UNFIT.get(field.kind)
    return _sure(rule(sql, kinds)) if rule is not None else _sure(field.present())


def _unfit_text(sql: str, kinds: frozenset[str]) -> str:
    return FALSE if kinds & _TEXT_KINDS else f"{sql} IS NOT NULL"


def _unfit_int(sql: str, kinds: frozenset[str]) -> str:
    return FALSE if "number" in kinds else f"{sql} IS NOT NULL"


def _unfit_float(sql: str, kinds: frozenset[str]) -> str:
    return f"NOT isfinite({_float_of(sql)})" if "number" in kinds else f"{sql} IS NOT NULL"


def _unfit_bool(sql: str, kinds: frozenset[str]) -> str:
    return FALSE if "bool" in kinds else f"{sql} IS NOT NULL"


def _unfit_list(sql: str, kinds: frozenset[str]) -> str:
    if kinds & {"textlike", "category", "list_text"}:
        return f"list_aggregate({sql}, 'count') < len({sql})"  # a NULL element is not text
    return f"{sql} IS NOT NULL"


_UNFIT: Mapping[str, Callable[[str, frozenset[str]], str]] = {
    "text": _unfit_text, "int": _unfit_int, "float": _unfit_float, "bool": _unfit_bool,
    "text_list": _unfit_list,
}


def schema_error(field: Field, info: FieldInfo) -> str:
    """TRUE where the declared field may be in error: required and absent, or of the
    wrong type (``values.schema_problem``)."""
    missing = _not(field.present()) if info.required else FALSE
    if info.required and field.kind != "absent" and field.sql is None:
        missing = TRUE
    if info.kind == "one_of" and field.kind == "text":
        assert field.sql is not None
        allowed = ", ".join(literal(v) for v in sorted(set(info.values)))
        wrong = _sure(f"{field.sql} NOT IN ({allowed})") if allowed else _sure(field.present())
    elif info.kind == "list_text" and field.kind == "text":
        wrong = _sure(field.present())
    else:
        wrong = unfit(field, frozenset({"category" if info.kind == "category" else info.kind}))
    return _or([missing, wrong])


# --------------------------------------------------------------------------- windows


PLAIN_DATES = (dt.date(1, 1, 2), dt.date(9999, 12, 30))
"""The first and the last date ``at_column`` reads as a plain date (the calendar's first
and last are left to the evaluator); ``dsl.scan.lookup`` reads its dates by the same rule."""
PLAIN_DATE_TEXT = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
"""The text of a plain date, exactly (an RE2 and a Python regular expression alike)."""


@attrs.frozen
class AtColumn:
    """``--at-field`` read as a date: ``ok`` holds where the value is a plain ISO date in
    range (so ``decide`` reads it as that local date), ``date`` is its DATE."""

    ok: str
    date: str


def at_column(field: Field, *, checked: bool = False) -> AtColumn:
    """Where the pushdown can compare a record's ``at``: a DATE column, or VARCHAR holding
    exactly ``YYYY-MM-DD``. Anything else (date-times, a DST-sensitive local time,
    other types) is left to the evaluator, and so are the first and the last date of the
    calendar: 0001-01-01 in a timezone east of UTC begins before the first instant there
    is (``decide`` gives an error), and 9999-12-31 is as near the other end.

    ``checked``: the caller decides every record whose ``at`` ``decide`` cannot read at
    all (the scan does: ``columns.plain_at_texts``). Then a text of ten bytes that DuckDB
    casts to a date stands for that date: where ``decide`` reads a text of ten bytes as a
    date or a date-time, the text is exactly ``YYYY-MM-DD`` (its date-times are longer,
    its digits ASCII), and a text it cannot read (``2021/10/20``, ``2021-10-2 ``) is
    decided anyway. The length is a byte count, where the exact pattern is a regular
    expression on every row: 0.1 s of DuckDB's CPU per million records."""
    in_range = f"BETWEEN DATE '{PLAIN_DATES[0].isoformat()}' AND DATE '{PLAIN_DATES[1].isoformat()}'"
    if field.kind == "date" and field.sql is not None:
        return AtColumn(_sure(f"{field.sql} {in_range}"), field.sql)
    if field.kind == "text" and field.sql is not None:
        date = f"try_cast({field.sql} AS DATE)"
        shape = f"strlen({field.sql}) = 10" if checked else f"regexp_full_match({field.sql}, '{PLAIN_DATE_TEXT}')"
        return AtColumn(_sure(f"{shape} AND {date} {in_range}"), date)
    raise GiveUp


def first_date_from(instant: dt.datetime, tz: ZoneInfo) -> dt.date | None:
    """The first date whose first instant in ``tz`` is ``instant`` or later (None: no
    such date in range)."""
    try:
        day = instant.astimezone(tz).date()
    except OverflowError:  # its local date is before the year 1 (or after 9999) in ``tz``
        day = dt.date.min if instant.year < 5000 else dt.date.max
    for offset in (-1, 0, 1, 2):
        try:
            candidate = day + dt.timedelta(days=offset)
            if local_instant(candidate, tz) >= instant:
                return candidate
        except (OverflowError, ValueError):
            continue
    return None


def window_on_dates(rule: RuleInfo, at: AtColumn) -> str:
    """The rule's window against each record's date: a local date ``d`` is in force when
    ``start <= first instant of d < end``, and that instant grows with ``d``."""
    parts = []
    if rule.start is not None:
        low = first_date_from(rule.start, rule.tz)
        parts.append(FALSE if low is None else f"{at.date} >= DATE '{low.isoformat()}'")
    if rule.end is not None:
        high = first_date_from(rule.end, rule.tz)
        parts.append(TRUE if high is None else f"{at.date} < DATE '{high.isoformat()}'")
    return _and(parts)


class Windows:
    """Each rule's window against ``at``: a constant, each record's date, or (``at``
    defaulting to now) every rule possibly in force."""

    def __init__(self, ps: PolicySet, at: str | None, at_field: str | None, columns: Columns, *,
                 at_checked: bool = False):
        self.at_column: AtColumn | None = None
        self.parsed: V.ParsedAt | None = None
        if at_field is not None:
            self.at_column = at_column(columns.resolve(tuple(at_field.split("."))), checked=at_checked)
        elif at is not None:
            try:
                self.parsed = V.parse_at(at)
                for rule in ps.rules:
                    self.parsed.in_tz(rule.tz)
            except InputError:
                raise GiveUp from None

    def error(self) -> str:
        """TRUE where the record's ``at`` may not be read (or not as a plain date)."""
        return FALSE if self.at_column is None else _not(self.at_column.ok)

    def of(self, rule: RuleInfo) -> str:
        if rule.start is None and rule.end is None:
            return TRUE
        if self.at_column is not None:
            return window_on_dates(rule, self.at_column)
        if self.parsed is not None:
            instant = self.parsed.in_tz(rule.tz)
            inside = (rule.start is None or rule.start <= instant) and (rule.end is None or instant < rule.end)
            return TRUE if inside else FALSE
        return TRUE


# --------------------------------------------------------------------------- the predicate


def prior_error(field: Field) -> str:
    """TRUE where ``prior_violations`` may be unreadable: present and not a whole number
    >= 0 (the scan reads an absent prior as 0)."""
    if field.kind == "int" and field.sql is not None:
        return _sure(f"{field.sql} < 0")
    if field.kind == "float" and field.sql is not None:
        x = _float_of(field.sql)
        return _sure(f"NOT isfinite({x}) OR {x} < 0 OR {x} <> floor({x})")
    if field.kind == "absent":
        return FALSE
    return field.present()


def _clauses(ps: PolicySet, columns: Columns, windows: Windows, prior_field: str | None,
             coarse: bool = False, lookup: bool = False) -> list[str]:
    clauses = [windows.error()]
    if prior_field is not None:
        clauses.append(prior_error(columns.resolve(tuple(prior_field.split(".")))))
    for path, info in sorted(ps.schema.items()):
        field = columns.resolve(path)
        clauses.append(guarded([field], _exact(schema_error(field, info))).may)
    for path, kinds in V.warned_fields(ps):
        field = columns.resolve(path)
        clauses.append(guarded([field], _exact(unfit(field, kinds))).may)
    clauses.append(rules_clause(ps, columns, windows, coarse=coarse, lookup=lookup))
    return clauses


def rules_clause(ps: PolicySet, columns: Columns, windows: Windows, *, coarse: bool = False,
                 lookup: bool = False) -> str:
    """Where some rule may apply. Read twice: assuming the text that text atoms read is
    ASCII (the cheap word tests), for the rows where it is; and with those atoms TRUE on
    other text, for the rest. So DuckDB evaluates the second reading only on rows with
    non-ASCII text. A rule's condition comes before its window, which is evaluated only
    where the condition may hold.

    ``coarse``: the rules that need one of some words in a text are read as that need
    alone (one RE2 pass per text over all their words, their other conditions and windows
    left to the evaluator), and rows with non-ASCII text are all kept. Coarser, so more
    rows reach Python, but the predicate's size no longer grows with those rules: at a
    thousand rules the exact one costs DuckDB more per row than the evaluator does.

    ``lookup``: the rules with a category conjunct (``category_keys_of``) are left out,
    for ``dsl.scan.lookup`` to answer for."""
    in_force = [(rule, w) for rule in ps.rules
                if (w := windows.of(rule)) != FALSE and not (lookup and category_keys_of(rule) is not None)]
    gates: set[str] = set()
    fast_reader = Reader(columns, gates)
    groups: dict[str, list[tuple[set[str], str]]] = {}
    needs: dict[str, set[str]] = {}  # coarse: the words needed in each text
    loose: list[str] = []
    for rule, w in in_force:
        needed = required_words(rule.condition, columns)
        if needed is not None and coarse:
            needs.setdefault(needed[0], set()).update(needed[1])
            continue
        term = _and([fast_reader.may(rule.condition), w])
        if needed is None:
            loose.append(term)
        else:
            groups.setdefault(needed[0], []).append((needed[1], term))
    if coarse:
        gates.update(_ascii_gate(text) for text in needs)
        return _or([*sorted(gates), *loose, *sorted(prefilter(text, words) for text, words in needs.items())])
    fast = _or([*loose, *(_indexed(text, entries) for text, entries in sorted(groups.items()))])
    if not gates:
        return fast
    reader = Reader(columns)
    slow = _or(_and([reader.may(rule.condition), w]) for rule, w in in_force)
    other = _or(sorted(gates))
    return f"(CASE WHEN {other} THEN {slow} ELSE {fast} END)"


_CHUNK = 32


def _indexed(text: str, entries: list[tuple[set[str], str]]) -> str:
    """The rules that need one of their words in ``text``, behind prefilters: one for the
    whole group, then one per chunk of rules, so that a rule's own test runs only on the
    rows that hold one of its chunk's words."""
    entries = sorted(entries, key=lambda e: sorted(e[0]))
    chunks = [entries[i:i + _CHUNK] for i in range(0, len(entries), _CHUNK)]
    inner = [_when(prefilter(text, {w for words, _ in c for w in words}), _or(t for _, t in c)) for c in chunks]
    if len(inner) == 1:
        return inner[0]
    return _when(prefilter(text, {w for words, _ in entries for w in words}), _or(inner))


def _when(test: str, then: str) -> str:
    """``test AND then``, with ``then`` evaluated only on the rows where ``test`` holds
    (DuckDB evaluates both sides of AND in a projection, but a CASE lazily)."""
    if test == FALSE or then == FALSE:
        return FALSE
    if test == TRUE:
        return then
    return f"(CASE WHEN {test} THEN {then} ELSE FALSE END)"


def sql_predicate(ps: PolicySet, *, at: str | None, at_field: str | None, columns: Mapping[str, str],
                  prior_field: str | None = None, csv: bool = False, coarse: bool = False,
                  lookup: bool = False, at_checked: bool = False) -> str | None:
    """A DuckDB SQL boolean expression over the input's columns that is TRUE for every
    record which could get anything but a plain allow with no warnings and no error, or
    None for no narrowing. ``columns`` maps each top-level column name to its DuckDB type
    (as DESCRIBE gives it); ``at`` is the command line's instant, ``at_field`` the path of
    the column holding each record's instant (at most one of the two is set; neither:
    now), ``prior_field`` the path of the column holding ``prior_violations`` (absent
    or NULL: 0); ``csv`` says the columns are CSV cells read as text, each holding JSON
    when it is JSON (``convert.csv_cell``); ``coarse`` reads the rules that need a word
    as that need alone (``rules_clause``); ``lookup`` leaves out the rules with a category
    conjunct: then the predicate holds only together with ``dsl.scan.lookup.Lookup.classify``
    (their OR with the records it keeps), which answers for those rules; ``at_checked``
    leaves out the records whose ``at_field`` ``decide`` cannot read at all: then the
    predicate holds only together with the test that finds them (the scan's
    ``columns.plain_at_texts``, null there), and tests the rest more cheaply (``at_column``).

    The expression is never NULL. The rows where it is FALSE (with ``lookup``: and the
    lookup's mask is FALSE; with ``at_checked``: and their ``at`` can be read) would be
    decided as ``allow`` with no rules, no warnings and no error."""
    try:
        cols = Columns(columns, csv=csv)
        windows = Windows(ps, at, at_field, cols, at_checked=at_checked)
        found = _or(_clauses(ps, cols, windows, prior_field, coarse, lookup))
    except GiveUp:
        return None
    return None if found == TRUE else found
