"""Completion: the keywords the grammar takes at the cursor (Lark's interactive parser,
fed the statement before it: ``driver.accepts_before``), and where it takes a name or a
string, the names and values that fit there: sets after `in` and `any`, ladders after
`penalty`, rules after `overrides` and `by`, policies after `tests for`, declared fields
where a field is read, the values of a `one of` field after `==`, `!=` or `in [`, and
timezone names after `timezone`."""

from __future__ import annotations

import functools
import re
import zoneinfo

from lsprotocol import types as T

from ..syntax.driver import accepts_before, lark, tokens
from ..syntax.recovery import statement_start
from .navigation import FIELD, LADDER, POLICY, RULE, SET, index_of
from .project import Snapshot

_WORD_BEFORE = re.compile(r"[A-Za-z0-9_.`-]*$")
STATEMENT_WORDS = ("rule", "set", "ladder", "field", "block", "flag", "allow", "from", "until", "test", "assert")
_KIND = T.CompletionItemKind


@functools.cache
def keyword_of() -> dict[str, str]:
    """The grammar's terminals that are words, by terminal name: BLOCK → block."""
    return {t.name: t.pattern.value for t in lark().terminals
            if t.pattern.type == "str" and t.pattern.value.isalpha()}


@functools.cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def complete(snap: Snapshot, text: str, offset: int) -> list[T.CompletionItem]:
    """The completions at ``offset`` of ``text`` (the buffer of a file of ``snap``)."""
    line_start = text.rfind("\n", 0, offset) + 1
    quoted = _open_quote(text, line_start, offset)
    word = _WORD_BEFORE.search(text, line_start, offset)
    start = quoted if quoted is not None else offset - len(word.group() if word else "")
    begin = statement_start(text, start)
    chunk = text[begin:start]
    accepted = accepts_before(chunk, len(chunk))
    before = [str(t.value) for t in tokens(chunk)][-8:]
    items: list[T.CompletionItem] = []
    if quoted is None:
        words = {keyword_of()[t] for t in accepted if t in keyword_of()}
        if "$END" in accepted:
            words.update(STATEMENT_WORDS)
        items += [T.CompletionItem(w, kind=_KIND.Keyword) for w in sorted(words)]
        if "NAME" in accepted:
            items += _names(snap, before)
    if "STRING" in accepted:
        items += _strings(snap, before, text[quoted] if quoted is not None else "'")
    return items


def _open_quote(text: str, start: int, end: int) -> int | None:
    """Where the string that is open at ``end`` starts (``start`` is its line's start), if
    one is: quotes are read as the lexer reads them, with escapes and comments."""
    opened: int | None = None
    i = start
    while i < end:
        ch = text[i]
        if opened is not None:
            if ch == "\\":
                i += 1
            elif ch == text[opened]:
                opened = None
        elif ch in "'\"":
            opened = i
        elif ch == "#":
            return None
        i += 1
    return opened


def _names(snap: Snapshot, before: list[str]) -> list[T.CompletionItem]:
    index = index_of(snap)

    def declared(kind: str) -> list[str]:
        return sorted({k for (kd, k), occs in index.by_key.items() if kd == kind and any(o.declares for o in occs)})

    last = before[-1] if before else ""
    context = _list_context(before)
    if last == "penalty":
        return _items(declared(LADDER), _KIND.Enum, "ladder")
    if context in ("overrides", "by"):
        rules = declared(RULE)
        return _items(sorted({q.partition(".")[2] for q in rules} | set(rules)), _KIND.Function, "rule")
    if context == "for":
        return _items(declared(POLICY), _KIND.Module, "policy")
    if last in ("in", "any"):
        return _items(declared(SET), _KIND.Variable, "set")
    if last in ("rule", "set", "ladder", "field", "policy", "restrict"):
        return []
    fields = set(declared(FIELD)) | {"title", "description", "tags"}
    return _items(sorted(fields), _KIND.Field, "field")


def _list_context(before: list[str]) -> str | None:
    """The keyword that a list of names at the cursor follows: `overrides a, b`, `by a, b`,
    `tests for a, b`."""
    i = len(before) - 1
    while i >= 1 and before[i] == ",":
        i -= 2
    return before[i] if i >= 0 and before[i] in ("overrides", "by", "for") else None


def _items(names: list[str], kind: T.CompletionItemKind, what: str) -> list[T.CompletionItem]:
    return [T.CompletionItem(n, kind=kind, detail=what) for n in names]


def _strings(snap: Snapshot, before: list[str], quote: str) -> list[T.CompletionItem]:
    if before[-1:] == ["timezone"]:
        return [T.CompletionItem(f"{quote}{z}{quote}", kind=_KIND.Value, detail="timezone", filter_text=f"{quote}{z}")
                for z in _zones()]
    path = _compared_path(before)
    if path is None:
        return []
    decls = index_of(snap).declarations(FIELD, path)
    if not decls or decls[0].node.type.kind != "one_of":
        return []
    return [T.CompletionItem(f"{quote}{v.value}{quote}", kind=_KIND.EnumMember, detail=f"one of {path}",
                             filter_text=f"{quote}{v.value}") for v in decls[0].node.type.values]


def _compared_path(before: list[str]) -> str | None:
    """The field that a string at the cursor is compared with: `PATH ==`, `PATH != `,
    `PATH in [ …,`."""
    i = len(before) - 1
    if before[i:] and before[i] in ("==", "!="):
        i -= 1
    else:
        while i >= 0 and before[i] not in ("[",):
            i -= 1
        if i < 1 or before[i - 1] != "in":
            return None
        i -= 2
        if i >= 0 and before[i] == "not":
            i -= 1
    parts: list[str] = []
    while i >= 0 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*|`[^`]+`", before[i]):
        parts.insert(0, before[i].strip("`"))
        if i >= 1 and before[i - 1] == ".":
            i -= 2
        else:
            break
    return ".".join(parts) or None
