"""The pushdown's predicate in Spark SQL (docs/scan.md, "The Spark engine").

``dsl.scan.pushdown`` writes a DuckDB SQL predicate from a small, closed set of constructs
(quoted column names, string literals, ``struct_extract``, ``regexp_matches``, ``lower``,
``contains``, casts, ``COALESCE``, ``CASE``, ``IN`` …). ``to_spark`` renders the same
predicate in Spark SQL, construct by construct, each with the same value on every row:

- ``"name"`` is ```name```; ``'text'`` is a Spark literal with backslashes escaped;
- ``struct_extract(x, 'f')`` is ``x.`f```; ``regexp_matches(x, p)`` is ``x RLIKE p`` (a
  search, as RE2's; the patterns the pushdown writes mean the same in Java's regex:
  character classes, ``^``, alternatives of escaped ASCII words under ``(?i)``, which is
  ASCII case folding in Java, and the text is ASCII where the pushdown uses it);
  ``regexp_full_match(x, p)`` is ``x RLIKE '^(?:p)\\z'``;
- ``isfinite(x)`` is ``NOT isnan(x) AND abs(x) <> Infinity`` (NULL for NULL);
  ``array_to_string(x, s)`` is ``array_join(x, s)`` (both skip NULL elements);
  ``list_aggregate(x, 'count')`` counts the elements that are not NULL, ``len(x)`` is
  ``array_size(x)`` (NULL for NULL), ``strlen(x)`` (a text's bytes) is ``octet_length(x)``
  (UTF-8 bytes, as DuckDB's) and ``length(x)`` (its characters) ``char_length(x)`` (code
  points, as DuckDB's: the two differ exactly where a character is not ASCII, in the
  valid UTF-8 that Spark's readers and writers hold); ``floor(x)`` of a DOUBLE stays a DOUBLE (Spark's
  own is a BIGINT, an overflow error beyond 2^63 in ANSI mode);
- ``HUGEINT`` is ``DECIMAL(38,0)`` (it holds every bound the pushdown writes, below 2^126,
  and compares exactly with every integer type); the other constructs are Spark's own.

Anything else raises ``Untranslatable``: the Spark scan then decides every record (no
narrowing), which is always sound.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Untranslatable", "to_spark"]


class Untranslatable(Exception):
    """The predicate uses a construct this module does not render."""


_TOKEN = re.compile(r"""\s+|'(?:[^']|'')*'|"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_]*|[0-9]+|<>|<=|>=|[=<>(),]""")

_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN", "ELSE",
                       "END", "BETWEEN", "DATE", "AS", "DOUBLE"})
_SAME = frozenset({"COALESCE", "lower", "contains", "concat_ws", "try_cast", "CAST"})
_TYPES = {"DOUBLE": "DOUBLE", "DATE": "DATE", "HUGEINT": "DECIMAL(38,0)"}


def _tokens(sql: str) -> list[str]:
    out, pos = [], 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:
            raise Untranslatable(f"unexpected {sql[pos:pos + 20]!r}")
        if not m.group().isspace():
            out.append(m.group())
        pos = m.end()
    return out


def _string(token: str) -> str:
    """A DuckDB string literal's text."""
    return token[1:-1].replace("''", "'")


def spark_literal(text: str) -> str:
    """A string as a Spark SQL literal (Spark reads backslash escapes in literals)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _render_token(token: str) -> str:
    if token.startswith("'"):
        return spark_literal(_string(token))
    if token.startswith('"'):
        return "`" + token[1:-1].replace('""', '"').replace("`", "``") + "`"
    if token[0].isalpha() or token[0] == "_":
        if token.upper() not in _KEYWORDS and token not in _TYPES:
            raise Untranslatable(f"unknown word {token}")
        return _TYPES.get(token, token)
    return token


class _Parser:
    """Renders the token stream; a function call's arguments are rendered first, then the
    call is rewritten from them."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def expression(self, stop: frozenset[str]) -> str:
        """Tokens up to (not including) one of ``stop`` at this depth."""
        parts: list[str] = []
        while self.pos < len(self.tokens) and self.tokens[self.pos] not in stop:
            parts.append(self.item())
        return " ".join(parts)

    def item(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        following = self.tokens[self.pos] if self.pos < len(self.tokens) else ""
        if token == "(":
            inner = self.expression(frozenset({")"}))
            self._expect(")")
            return f"({inner})"
        if following == "(" and (token[0].isalpha() or token[0] == "_") and token.upper() not in _KEYWORDS:
            self.pos += 1
            return self.call(token, self.arguments())
        return _render_token(token)

    def arguments(self) -> list[str]:
        args: list[str] = []
        while True:
            args.append(self.expression(frozenset({",", ")"})))
            token = self.tokens[self.pos] if self.pos < len(self.tokens) else ""
            self.pos += 1
            if token == ")":
                return args
            if token != ",":
                raise Untranslatable("unbalanced parentheses")

    def _expect(self, token: str) -> None:
        if self.pos >= len(self.tokens) or self.tokens[self.pos] != token:
            raise Untranslatable(f"expected {token}")
        self.pos += 1

    def call(self, name: str, args: list[str]) -> str:
        if name in _SAME:
            return f"{name}({', '.join(args)})"
        rewrite = _CALLS.get(name)
        if rewrite is None:
            raise Untranslatable(f"unknown function {name}")
        return rewrite(args)


def _literal_arg(arg: str) -> str:
    """The text of a Spark literal argument (as ``spark_literal`` wrote it)."""
    if not (arg.startswith("'") and arg.endswith("'")):
        raise Untranslatable("expected a literal")
    body, out, i = arg[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


def _field(args: list[str]) -> str:
    base, name = args
    return f"{base}.`{_literal_arg(name).replace('`', '``')}`"


def _two(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise Untranslatable("expected two arguments")
    return args[0], args[1]


def _one(args: list[str]) -> str:
    if len(args) != 1:
        raise Untranslatable("expected one argument")
    return args[0]


def _full_match(args: list[str]) -> str:
    value, pattern = _two(args)
    return f"({value} RLIKE {spark_literal('^(?:' + _literal_arg(pattern) + ')' + chr(92) + 'z')})"


def _floor(args: list[str]) -> str:
    """DuckDB's ``floor`` of a DOUBLE is a DOUBLE; Spark's is a BIGINT, which overflows (an
    error in ANSI mode) beyond 2^63: at 2^52 and beyond every double is whole."""
    x = _one(args)
    return f"(CASE WHEN abs({x}) >= CAST('4503599627370496' AS DOUBLE) THEN {x} ELSE CAST(floor({x}) AS DOUBLE) END)"


def _count(args: list[str]) -> str:
    value, what = _two(args)
    if _literal_arg(what) != "count":
        raise Untranslatable("list_aggregate other than count")
    return f"array_size(filter({value}, policy_scan_x -> policy_scan_x IS NOT NULL))"


_CALLS: dict[str, Callable[[list[str]], str]] = {
    "struct_extract": lambda a: _field(list(_two(a))),
    "regexp_matches": lambda a: "({} RLIKE {})".format(*_two(a)),
    "regexp_full_match": _full_match,
    "isfinite": lambda a: "(NOT isnan({0}) AND abs({0}) <> CAST('Infinity' AS DOUBLE))".format(_one(a)),
    "array_to_string": lambda a: "array_join({}, {})".format(*_two(a)),
    "list_aggregate": _count,
    "floor": _floor,
    "len": lambda a: f"array_size({_one(a)})",
    "strlen": lambda a: f"octet_length({_one(a)})",
    "length": lambda a: f"char_length({_one(a)})",
}


def to_spark(sql: str) -> str:
    """The DuckDB predicate ``sql`` (as ``pushdown.sql_predicate`` writes it) in Spark SQL;
    raises ``Untranslatable`` for a construct outside the set above."""
    parser = _Parser(_tokens(sql))
    out = parser.expression(frozenset())
    if parser.pos != len(parser.tokens):
        raise Untranslatable("unbalanced parentheses")
    return out

