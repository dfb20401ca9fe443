"""The driver: the Lark object, built once per process, and the runs of it.

Lark parses with LALR(1) and builds the parse tree as it reduces (``transformer=``, see
``tree``). A whole file's tokens are read by ``scanner`` and fed to Lark's parser; a text
it cannot read, or that does not parse, goes through Lark's contextual lexer, whose errors
are worded (``errors``). Comments reach the file's list through ``lexer_callbacks`` (the
fast path calls the same); the list of the parse under way is held in a context variable,
so that parses in several threads do not mix their comments. Everything here is Lark's
public API.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark import __version__ as lark_version
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lark import PostLex

from ..atomic import remove_stale, write_atomically
from .cachedir import cache_folder, file_stamp, own_file_or_none
from .grammar import grammar_text
from .scanner import scanner
from .tree import Node, Shapes, TreeBuilder, learn_shapes, lex_error_offset

_comments: contextvars.ContextVar[list[Token] | None] = contextvars.ContextVar("policy_comments", default=None)


def _keep_comment(token: Token) -> Token:
    sink = _comments.get()
    if sink is not None:
        sink.append(token)
    return token


_CALLBACKS = {"COMMENT": _keep_comment}
"""Lark's ``lexer_callbacks``, for its lexer and the fast path's (``scanner``)."""


class WholeWords(PostLex):
    """Words are read whole (spec section 1). With the contextual lexer, a parser state
    that takes only keywords would read `blocks` as `block` + `s`. NAME, accepted in every
    state (Lark's ``always_accept``), reads a word to its end, and Lark's lexer turns a
    NAME whose text is a keyword of that state into that keyword: `block` stays `block`,
    `blocks` is a name and so a syntax error where an effect is expected. Pass an
    instance as ``postlex`` to Lark."""

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


_OPTIONS: dict[str, Any] = {"parser": "lalr", "start": ["start", "single"], "maybe_placeholders": False}


@functools.cache
def lark() -> Lark:
    """The parser, built once per process. Positions come from the tokens (``tree.Node``),
    not from Lark's meta, and the tree is shaped by ``TreeBuilder`` during the reductions.
    Lark checks the grammar's and its own version's hash inside its cache file, and
    rebuilds the file when they differ (a CLI run starts 0.1 s sooner with it)."""
    text = grammar_text()
    folder = cache_folder()
    key = hashlib.sha256((text + lark_version).encode("utf-8")).hexdigest()[:16]
    # Lark loads its cache file, a pickle, itself: only one of this user's (``cachedir``)
    tables = own_file_or_none(folder / f"lark-{key}.cache") if folder else None
    # the shapes depend on the code that learns and uses them too
    here = Path(__file__).resolve().parent
    shapes_key = hashlib.sha256(f"{key}\0{file_stamp(here / 'tree.py')}\0{file_stamp(__file__)}".encode()).hexdigest()
    # (os.path.exists: False, not an error, in a folder that cannot be searched)
    new = folder is not None and not all(os.path.exists(folder / name)
                                         for name in (f"lark-{key}.cache", f"shapes-{shapes_key[:16]}.json"))
    parser = Lark(text, keep_all_tokens=True, transformer=TreeBuilder(_shapes(text, folder, shapes_key[:16])),
                  postlex=WholeWords(), lexer_callbacks=_CALLBACKS,
                  cache=str(tables) if tables is not None else False, **_OPTIONS)
    if tables is not None:
        _used(tables)
    if folder is not None and new:  # another grammar, Lark or code: the files of the old ones may be left
        remove_unused(folder)
    return parser


UNUSED = 30 * 24 * 3600
"""Seconds after their last use that the Lark tables and shapes of another grammar (or
Lark, or version of this code) are removed from the cache directory, when new ones are
written. Not at once: two installed versions may share the directory."""

_OURS = re.compile(r"(lark-[0-9a-f]{16}\.cache|shapes-[0-9a-f]{16}\.json)")


def _used(path: Path) -> None:
    """Mark a file of the cache directory as used now (its time of change: Lark reads its
    tables without changing it)."""
    try:
        os.utime(path)
    except OSError:  # pragma: no cover - gone meanwhile, or a read-only cache: it is kept anyway
        pass


def remove_unused(folder: Path) -> list[str]:
    """Remove the Lark tables and shapes files of ``folder`` (named as this module names
    them, regular files of this user's) not used for ``UNUSED`` seconds
    (``atomic.remove_stale``; its lock guards nothing here: no process locks these
    files, and a reader that finds one gone builds it again); their paths."""
    return remove_stale(str(folder), _OURS, UNUSED, os.unlink, directory=False)


def _shapes(text: str, folder: Path | None, key: str) -> Shapes:
    """The shapes of the tree (``tree.learn_shapes``), from the rules of Lark's default
    compilation of the grammar, kept as JSON beside Lark's cache with a SHA-256 of them:
    a file damaged (a name changed, ``null``) is learnt again, never used (it made every
    parse fail, or read ``[`` as a date, and the parse cache kept those parses)."""
    saved = own_file_or_none(folder / f"shapes-{key}.json") if folder else None
    if saved is not None:
        try:
            found = _checked_shapes(json.loads(saved.read_text("utf-8")))
            if found is not None:
                _used(saved)
                return found
        except (OSError, ValueError):
            pass
    shapes = learn_shapes(Lark(text, **_OPTIONS).rules)
    if saved is not None:
        try:
            write_atomically(saved, json.dumps({"sha256": _shapes_digest(shapes), "shapes": shapes}))
        except OSError:  # pragma: no cover - a read-only cache: learn again next time
            pass
    return shapes


def _shapes_digest(shapes: object) -> str:
    return hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()


def _checked_shapes(doc: object) -> Shapes | None:
    """The shapes a file holds, where they are what ``_shapes`` wrote: a digest that
    matches, each rule's dropped token types (text) and whether it inlines a lone child."""
    if not (isinstance(doc, dict) and isinstance(doc.get("shapes"), dict)
            and doc.get("sha256") == _shapes_digest(doc["shapes"])):
        return None
    out: Shapes = {}
    for name, shape in doc["shapes"].items():
        if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[0], list)
                and all(isinstance(t, str) for t in shape[0]) and isinstance(shape[1], bool)):
            return None
        out[name] = (list(shape[0]), shape[1])
    return out


def run(text: str, start: str, comments: list[Token], *, fast: bool = True) -> Node:
    """The parse tree of ``text`` from rule ``start``; its comments are added to
    ``comments`` (those before the error too). Raises Lark's UnexpectedInput (with its
    interactive parser) when the text does not parse. The text is read by the fast path
    (``scanner``) where it can be, unless ``fast`` is False, and else by Lark's lexer."""
    reset = _comments.set(comments)
    parser = lark()
    builder: Any = parser.options.transformer  # (Lark types it as a Transformer: it is ours)
    found, before = scanner(parser) if fast else None, len(comments)
    try:
        tree = None if found is None else found.feed(text, start, _CALLBACKS)
        if tree is None:  # not read by the fast path: Lark's lexer reads it, and words an error
            del comments[before:]
            builder.forget()
            tree = parser.parse(text, start=start)
    finally:
        _comments.reset(reset)
        builder.forget()
    # Lark's stubs say a lark.Tree; with transformer= the parse returns what TreeBuilder built
    assert isinstance(tree, Node), "TreeBuilder builds the tree"
    return tree


@functools.cache
def keywords() -> dict[str, str]:
    """The grammar's keywords, terminal name to word (``RULE`` → ``rule``): the terminals
    that are a literal word, read off the Lark object."""
    return {t.name: t.pattern.value for t in lark().terminals
            if t.pattern.type == "str" and t.pattern.value.isalpha()}


def accepts_before(chunk: str, pos: int) -> frozenset[str]:
    """The terminals the parser takes at offset ``pos`` of ``chunk`` (a statement): Lark's
    interactive parser, fed the text before it."""
    reset = _comments.set(None)
    try:
        interactive = lark().parse_interactive(chunk[:pos], start="single")
        interactive.exhaust_lexer()
        return frozenset(interactive.accepts())  # type: ignore[no-untyped-call]  # lark leaves accepts() unannotated
    except UnexpectedInput:
        return frozenset()
    finally:
        _comments.reset(reset)


def tokens(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """The tokens of ``text[start:end]`` as Lark's lexer reads them with every terminal of
    the grammar at once (spaces and comments left out), positions in ``text``. A
    character no terminal matches (an unclosed string, a stray symbol) is a token of type
    ``"?"``, and lexing goes on after it.

    No token but white space spans a line break, so the text is lexed in pieces of whole
    lines (``_PIECE`` characters or so): after a stray character only the rest of its
    piece is lexed again, and a file full of them costs linear time, not quadratic."""
    end = len(text) if end is None else end
    found: list[Token] = []
    reset = _comments.set(None)
    try:
        pos = start
        while pos < end:
            cut = text.find("\n", min(pos + _PIECE, end))
            stop = end if cut < 0 or cut >= end else cut + 1
            while pos < stop:
                pos = _lex_piece(text, pos, stop, found)
    finally:
        _comments.reset(reset)
    return found


_PIECE = 4096


def _lex_piece(text: str, pos: int, stop: int, found: list[Token]) -> int:
    """Lex ``text[pos:stop]`` into ``found`` up to its end, or up to and including a
    character no terminal matches; the offset where lexing is to go on."""
    try:
        for t in lark().lex(text[pos:stop]):
            at = (t.start_pos or 0) + pos
            found.append(Token(t.type, t.value, at, end_pos=at + len(t.value)))
        return stop
    except UnexpectedCharacters as e:
        at = pos + lex_error_offset(e)
        found.append(Token("?", text[at], at, end_pos=at + 1))
        at += 1
        starts = _token_start()
        while at < stop and starts.match(text, at) is None:  # a run of stray characters, without Lark
            found.append(Token("?", text[at], at, end_pos=at + 1))
            at += 1
        return at


@functools.cache
def _token_start() -> re.Pattern[str]:
    """Matches where some terminal of the grammar matches: where none does, Lark's lexer
    stops too, so a stray character is known without running it."""
    return re.compile("|".join(f"(?{''.join(t.pattern.flags)}:{t.pattern.to_regexp()})" if t.pattern.flags
                               else f"(?:{t.pattern.to_regexp()})" for t in lark().terminals))
