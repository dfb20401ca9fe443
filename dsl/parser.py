"""Text → Lark tree → AST, with syntax diagnostics (P100, P101, P103).

The whole file is parsed at once. When that fails, the file is cut into statements (every
statement starts with a keyword) and each is parsed on its own, so that one bad statement
yields its P100 and nothing else, and every other statement is still read and checked.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
from importlib import resources
from pathlib import Path as FsPath
from typing import Any, Iterator

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.grammar import Rule
from lark.lark import PostLex
from lark.lexer import BasicLexer, ContextualLexer
from lark.parsers.lalr_analysis import Shift

from . import ast as A
from . import hints
from .diagnostics import Diagnostic, did_you_mean, make
from .gcpause import no_gc

MAX_NUMBER_DIGITS = 300
"""How many digits a number may have before its decimal point (durations, points and
steps too). Longer ones get a P100: beyond it a decimal is no longer a finite float, and
Python refuses to read integers of over 4,300 digits."""

MAX_DEPTH = 100
"""How deeply expressions may nest. Deeper input gets a P100 instead of exhausting the
Python stack in later stages."""

RESERVED = frozenset(
    """policy set ladder field rule from until block flag allow if unless penalty overrides
    because message and or not category mentions any contains matches in exists true false
    then test given expect assert always never""".split()
)
"""Words reserved everywhere: as a field or a name they must be written in backquotes.
Other words of the grammar (title, seller, listing, …) are keywords only where the parser
can take them."""


def _grammar_text() -> str:
    packaged = resources.files("dsl").joinpath("_grammar/policy.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    # A source checkout or an editable install: the grammar lives at the repository root.
    return (FsPath(__file__).resolve().parent.parent / "grammar" / "policy.lark").read_text(encoding="utf-8")


class WholeWords(PostLex):
    """Words are read whole (spec section 1). With the contextual lexer, a parser state
    that takes only keywords would read `blocks` as `block` + `s`. NAME, accepted in every
    state, reads a word to its end, and Lark's lexer turns a NAME whose text is a keyword
    of that state into that keyword: `block` stays `block`, `blocks` is a name and so a
    syntax error where an effect is expected. Pass an instance as ``postlex`` to Lark."""

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


_lock = threading.Lock()
_comments: list[Token] = []
_parser: Lark | None = None
_tables: "_Tables | None" = None


def _get_parser() -> Lark:
    global _parser, _tables
    if _parser is None:
        _parser = Lark(
            _grammar_text(),
            parser="lalr",
            start=["start", "single"],
            # Positions come from the tokens (_Node), not from Lark's meta.
            propagate_positions=False,
            maybe_placeholders=False,
            lexer_callbacks={"COMMENT": _comments.append},
            postlex=WholeWords(),
            # The LALR tables are cached in the temp directory, keyed by the grammar's
            # hash and Lark's version: a CLI run starts 0.1 s sooner (pre-commit hooks).
            cache=True,
        )
        # Reductions build _Nodes instead of lark Trees (see _node_builders), and text
        # that parses goes through _lalr_loop. The LALR tables, the contextual lexer's
        # patterns and the syntax errors stay Lark's own. Both reach into Lark's parser
        # objects (1.2 and 1.3 have the same); tests/test_parser.py compares the result
        # with lark Trees, so a Lark that differs is noticed.
        _parser.parser.parser.parser.callbacks = _node_builders(_parser.rules)
        lexer = _contextual_lexer(_parser)
        if isinstance(lexer, ContextualLexer) and all(type(x) is BasicLexer for x in lexer.lexers.values()):
            try:
                _tables = _Tables(_parser, lexer)
            except AttributeError:  # pragma: no cover - another Lark: its own loop is used
                _tables = None
    return _parser


def _contextual_lexer(parser: Lark) -> Any:
    """The contextual lexer, inside the connector that a ``postlex`` puts around it."""
    lexer = parser.parser.lexer
    return getattr(lexer, "lexer", lexer)


def _run(parser: Lark, text: str, start: str) -> Any:
    """``parser.parse(text, start=start)``, sooner. ``_lalr_loop`` drives Lark's tables
    and per-state lexers without Lark's per-token layers (a generator, a parser-state
    object, the scanner, the line counter and Token's constructor: two thirds of the
    parsing time). It knows only how to succeed: at the first token the tables do not
    take, or a character no terminal matches, Lark's own parser reads the text again
    and raises its error, with its expected tokens and interactive state."""
    mark = len(_comments)
    if _tables is not None:
        try:
            return _lalr_loop(_tables, text, start)
        except (KeyError, _Fallback):
            del _comments[mark:]  # the comments the first attempt saw
    return parser.parse(text, start=start)


class _Fallback(Exception):
    """The text does not lex: let Lark say why."""


class _Scanners(dict[int, tuple[Any, ...]]):
    """For each parser state, what ``_lalr_loop`` reads of its lexer: the patterns' match
    methods, the terminals it skips, those that may hold a line break, and the token
    callbacks (comments, keywords that NAME's pattern also matches). Filled on first
    use, as Lark compiles its lexers: a CLI run needs few of them."""

    def __init__(self, lexers: dict[int, Any]):
        super().__init__()
        self.lexers = lexers

    def __missing__(self, state: int) -> tuple[Any, ...]:
        lexer = self.lexers[state]
        matchers = [mre.match for mre in lexer.scanner._mres]  # .scanner builds .callback too
        found = self[state] = (matchers, lexer.ignore_types, lexer.newline_types, lexer.callback)
        return found


class _Tables:
    """Lark's LALR tables as ``_lalr_loop`` reads them: for each state and symbol, the
    state to shift to (an int) or the reduction to make (the rule's length, its name and
    its node builder), so that no Rule is hashed while parsing."""

    def __init__(self, parser: Lark, lexer: ContextualLexer):
        lalr = parser.parser.parser.parser
        table = lalr.parse_table
        self.start_states: dict[str, int] = table.start_states
        self.end_states: dict[str, int] = table.end_states
        self.actions: dict[int, dict[str, Any]] = {
            state: {symbol: arg if action is Shift else (len(arg.expansion), arg.origin.name, lalr.callbacks[arg])
                    for symbol, (action, arg) in actions.items()}
            for state, actions in table.states.items()}
        self.scanners = _Scanners(lexer.lexers)


_new_str = str.__new__


def _lalr_loop(tables: _Tables, text: str, start: str) -> Any:
    actions, scanners = tables.actions, tables.scanners
    end_state = tables.end_states[start]
    state = tables.start_states[start]
    state_stack = [state]
    value_stack: list[Any] = []
    pos, end, line, line_start = 0, len(text), 1, 0
    while True:
        # The next token, as Lark's contextual lexer reads it in this parser state.
        matchers, ignore_types, newline_types, token_callbacks = scanners[state]
        token = None
        while pos < end:
            for match in matchers:
                m = match(text, pos)
                if m:
                    break
            else:
                raise _Fallback
            value, type_ = m.group(0), m.lastgroup
            token_line, column = line, pos - line_start + 1
            if type_ in newline_types:
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = pos + value.rindex("\n") + 1
            token_pos, pos = pos, pos + len(value)
            ignored = type_ in ignore_types
            if ignored and type_ not in token_callbacks:
                continue
            t = _new_str(Token, value)  # Token(…) in one step: its __new__ takes two more calls
            t.type, t.value, t.start_pos, t.line, t.column = type_, value, token_pos, token_line, column
            t.end_line, t.end_column, t.end_pos = line, pos - line_start + 1, pos
            if type_ in token_callbacks:
                t = token_callbacks[type_](t)
            if not ignored:
                if not isinstance(t, Token):
                    raise _Fallback
                token = t
                break
        token_type = "$END" if token is None else token.type
        # Shift it, after every reduction it completes.
        while True:
            action = actions[state][token_type]
            if action.__class__ is int:
                if token is None:
                    raise _Fallback  # pragma: no cover - LALR tables do not shift the end
                state = action
                state_stack.append(state)
                value_stack.append(token)
                break
            size, name, build = action
            if size:
                values = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                values = []
            value_stack.append(build(values))
            state = actions[state_stack[-1]][name]
            state_stack.append(state)
            if token is None and state == end_state:
                return value_stack[-1]


# ---------------------------------------------------------------- the parse tree


class _Node:
    """A node of the parse tree: what lark.Tree with ``propagate_positions`` would hold, for
    a third of the cost (building Trees and their Meta took half of the parsing time).

    ``children`` are shaped as Lark shapes a Tree's: anonymous tokens ("set", "(", …)
    left out, rules named ``_x`` spliced into their parent, a ``?rule`` with one child
    replaced by that child. ``start`` and ``end`` are the node's first and last tokens
    (None for a node without any); ``outer_start`` and ``outer_end`` those of the text it
    stands for, which is wider for an expression in parentheses: Lark's "container"
    positions, from which a parent's span is taken."""

    __slots__ = ("data", "children", "start", "end", "outer_start", "outer_end")

    def __init__(self, data: str, children: list[Any], start: Token | None, end: Token | None):
        self.data = data
        self.children = children
        self.start = self.outer_start = start
        self.end = self.outer_end = end

    def __repr__(self) -> str:
        return f"_Node({self.data!r}, {self.children!r})"


def _node_builders(rules: list[Rule]) -> dict[Rule, Any]:
    """The LALR parser's reduction callbacks: one builder of _Nodes per grammar rule,
    called with the values of the rule's symbols (tokens and _Nodes)."""
    builders = {}
    for rule in rules:
        keep = [(i, not sym.is_term and sym.name.startswith("_"))
                for i, sym in enumerate(rule.expansion)
                if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out)]  # type: ignore[attr-defined]
        data = rule.alias or rule.options.template_source or rule.origin.name
        expand1 = bool(rule.options.expand1 and not rule.alias)
        builders[rule] = _node_builder(str(data), keep, len(rule.expansion), expand1)
    return builders


def _quick_bounds(values: list[Any]) -> tuple[Any, Any]:
    """The outer first and last tokens of a node with these children: read off the first
    and last child where both have one (the common case), else searched for."""
    first, last = values[0], values[-1]
    start = first.outer_start if first.__class__ is _Node else first
    end = last.outer_end if last.__class__ is _Node else last
    if start is None or end is None:
        return _outer_bounds(values)
    return start, end


def _node_builder(data: str, keep: list[tuple[int, bool]], size: int, expand1: bool) -> Any:
    # One call per reduction (150,000 for 10,000 rules): the common shapes get their own
    # small function.
    if size == 0:
        return lambda values: _Node(data, [], None, None)
    splices = any(splice for _, splice in keep)
    kept = [i for i, _ in keep]
    if expand1 and kept == [0] and size == 1:
        return _first  # `?a: b`: b stands for itself, on the same text
    if not splices and not expand1:
        if len(kept) == size:
            return lambda values: _Node(data, values, *_quick_bounds(values))
        if len(kept) == 1:
            only = kept[0]
            return lambda values: _Node(data, [values[only]], *_quick_bounds(values))
        return lambda values: _Node(data, [values[i] for i in kept], *_quick_bounds(values))

    def build_any(values: list[Any]) -> Any:
        start, end = _outer_bounds(values)
        children: list[Any] = []
        for i, splice in keep:
            if splice:
                if children:
                    children += values[i].children
                else:  # `_x*` is left-recursive: extend its list rather than copy it
                    children = values[i].children
            else:
                children.append(values[i])
        if expand1 and len(children) == 1:
            only = children[0]
            if only.__class__ is _Node and start is not None:
                if only.start is None:
                    only.start, only.end = start, end
                only.outer_start, only.outer_end = start, end
            return only
        return _Node(data, children, start, end)

    return build_any


def _first(values: list[Any]) -> Any:
    return values[0]


def _outer_bounds(values: list[Any]) -> tuple[Token | None, Token | None]:
    """The first and last tokens of the text that ``values`` stand for."""
    start = end = None
    for v in values:
        start = v.outer_start if v.__class__ is _Node else v
        if start is not None:
            break
    if start is not None:
        for v in reversed(values):
            end = v.outer_end if v.__class__ is _Node else v
            if end is not None:
                break
    return start, end


# ---------------------------------------------------------------- public entry point


def parse(text: str, path: str = "<string>", *, test_file: bool | None = None) -> tuple[A.File, list[Diagnostic]]:
    """Parse one file. Returns the AST (statements with syntax errors left out) and the
    diagnostics. ``test_file`` says whether tests (True) or rules (False) belong here;
    None accepts both."""
    if text.startswith("\ufeff"):
        text = " " + text[1:]  # a byte order mark is not part of the policy; offsets stay put
    with _lock, no_gc():
        parser = _get_parser()
        diags: list[Diagnostic] = []
        try:
            items, comments = _parse_file(parser, text, path, diags)
        except UnexpectedInput:
            items, comments = _parse_statements(parser, text, path, diags)
    unparsed = tuple(i for i in items if isinstance(i, A.Unparsed))
    items = [i for i in items if not isinstance(i, A.Unparsed)] if unparsed else items
    tests_for, items = _tests_for(items, diags, test_file)
    header, statements = _arrange(items, path, diags, test_file)
    comment_nodes = tuple(
        A.Comment(c.value, span=_token_span(path, c, (1, 1, 0))) for c in comments
    )
    file = A.File(path, header, tuple(statements), comment_nodes,
                  span=A.Span(path, 1, 1, text.count("\n") + 1, 1, 0, len(text)), tests_for=tests_for,
                  unparsed=unparsed)
    return file, diags


def _parse_file(parser: Lark, text: str, path: str, diags: list[Diagnostic]) -> tuple[list[Any], list[Token]]:
    """The whole file in one parse. The parse tree is dropped on return, before the
    collector runs again (while alive, a collection would walk all of it)."""
    _comments.clear()
    tree = _run(parser, text, "start")
    comments = list(_comments)
    # Only parentheses make expressions nest: without many, no statement is too deep.
    low = _Lowering(path, diags, text=text)
    items = []
    for child in tree.children:
        item = low.item(child)
        if item is not None:
            items.append(item)
    return items, comments


def _tests_for(items: list[Any], diags: list[Diagnostic], test_file: bool | None) -> tuple[A.TestsFor | None, list[Any]]:
    """The file's `tests for`, taken out of ``items``: it belongs in a test file, first."""
    found: A.TestsFor | None = None
    rest: list[Any] = []
    for i, item in enumerate(items):
        if not isinstance(item, A.TestsFor):
            rest.append(item)
        elif test_file is False:
            diags.append(make("P100", "`tests for` belongs in a test file: it scopes the tests of a *_test.policy file",
                              item.span, hint="move it to the top of the test file whose tests it scopes"))
        elif found is not None or i > 0:
            diags.append(make("P100", "`tests for` must be the first statement of a test file, and come once",
                              item.span, hint="name every policy in one line at the top: `tests for a, b`"))
        else:
            found = item
    return found, rest


def _arrange(items: list[Any], path: str, diags: list[Diagnostic], test_file: bool | None) -> tuple[A.Header | None, list[A.Statement]]:
    header: A.Header | None = None
    statements: list[A.Statement] = []
    for i, item in enumerate(items):
        if isinstance(item, A.Header):
            if header is not None or i > 0:
                where = "a second `policy` header" if header is not None else "the `policy` header"
                diags.append(make("P100", f"{where} must come first: a file holds at most one policy, and its header comes before every other statement",
                                  item.span, hint="move the header to the top of the file, or split the file"))
                continue
            header = item
            continue
        if test_file is True and not isinstance(item, (A.TestCase, A.Assertion)):
            diags.append(make("P100", "a test file (*_test.policy) holds only `test` and `assert` statements",
                              getattr(item, "anchor", item.span), hint="move declarations and rules to a policy file beside it"))
            continue
        if test_file is False and isinstance(item, (A.TestCase, A.Assertion)):
            kind = "test" if isinstance(item, A.TestCase) else "assert"
            diags.append(make("P100", f"`{kind}` belongs in a test file: name the file *_test.policy",
                              item.span, hint="move tests and assertions to a file such as crypto_test.policy"))
            continue
        statements.append(item)
    if test_file is True and header is not None:
        diags.append(make("P100", "a test file (*_test.policy) has no `policy` header", header.span,
                          hint="remove the header: tests run against the policies beside the file"))
        header = None
    return header, statements


# ---------------------------------------------------------------- recovery


_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
    |(?P<bq>`[^`\n]+`)
    |(?P<regex>/(?:\\.|[^\\/\n])*/i?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_-]*)
    |(?P<num>-?[0-9][A-Za-z0-9_.:+\-]*)
    |(?P<punct>==|!=|<=|>=|[<>=\[\](){},.:])
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)

_ALWAYS_STARTS = {"policy", "set", "ladder", "field", "rule", "test", "assert"}
_EFFECTS = {"block", "flag", "allow"}


def _split_statements(text: str) -> Iterator[tuple[int, int, list[str]]]:
    """Cut a file into statements: (start offset, end offset, the statement's words).

    A statement starts at `policy`, `set`, `ladder`, `field`, `rule`, `test`, `assert`,
    and at `from`, `until`, `block`, `flag`, `allow` unless they continue a rule head
    (`rule r: from D until D block`), an assertion (`assert "x" from D always block`) or
    an expectation (`expect block`)."""
    toks: list[tuple[str, str, int]] = []  # (kind, value, offset), comments and space dropped
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        toks.append((kind, m.group(), m.start()))
    starts: list[int] = []
    for i, (kind, value, _) in enumerate(toks):
        if kind != "word":
            continue
        prev = toks[i - 1] if i >= 1 else ("", "", 0)
        prev2 = toks[i - 2] if i >= 2 else ("", "", 0)
        if prev[1] == ".":
            continue  # a field name inside a path (`seller.from`): reported, not split
        if value in _ALWAYS_STARTS:
            starts.append(i)
        elif value == "tests":
            if i + 1 < len(toks) and toks[i + 1][1] == "for":
                starts.append(i)  # `tests for …`; elsewhere `tests` is a name
        elif value in ("from", "until"):
            # A window opens a rule head (`rule r: until D`) or an assertion's; `until`
            # also closes one (`from D until D`).
            head = prev[1] == ":" or (prev[0] == "string" and prev2[1] == "assert") or _after_rule_name(prev, prev2)
            if not (head or (value == "until" and prev[0] == "num" and prev2[1] == "from")):
                starts.append(i)
        elif value in _EFFECTS:
            continued = (
                prev[1] in (":", "always", "never", "expect")
                or (prev[0] == "num" and prev2[1] in ("from", "until", "at", "prior"))
                or _after_rule_name(prev, prev2)
            )
            if not continued:
                starts.append(i)
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    for n, i in enumerate(starts):
        if i >= len(toks):
            break
        start = toks[i][2]
        end = toks[starts[n + 1]][2] if n + 1 < len(starts) else len(text)
        yield start, end, [t[1] for t in toks[i:starts[n + 1] if n + 1 < len(starts) else len(toks)]]


def _after_rule_name(prev: tuple[str, str, int], prev2: tuple[str, str, int]) -> bool:
    """`rule r block …`: the `:` is missing, and the statement goes on (one P100, at the
    spot, rather than a P100 and a rule without a name)."""
    return prev2[1] == "rule" and prev[0] in ("word", "bq")


def _parse_statements(parser: Lark, text: str, path: str, diags: list[Diagnostic]) -> tuple[list[Any], list[Token]]:
    items: list[Any] = []
    comments: list[Token] = []
    chunks = list(_split_statements(text))
    broken_until = 0  # chunks before this index are the rest of a statement already reported
    for n, (start, end, _words) in enumerate(chunks):
        if n < broken_until:
            continue
        chunk = text[start:end]
        line0 = text.count("\n", 0, start) + 1
        col0 = start - (text.rfind("\n", 0, start) + 1) + 1
        offset = (line0, col0, start)
        _comments.clear()
        try:
            tree = _run(parser, chunk, "single")
        except UnexpectedInput as e:
            following = None
            if n + 1 < len(chunks):
                nstart = chunks[n + 1][0]
                nline = text.count("\n", 0, nstart) + 1
                ncol = nstart - (text.rfind("\n", 0, nstart) + 1) + 1
                following = (chunks[n + 1][2][0], nline, ncol)
            diags.append(_syntax_error(e, chunk, path, offset, following))
            comments.extend(_shift_token(c, offset) for c in _comments)
            ended_early = isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END")
            broken_until = _broken_statement_end(text, chunks, n, ended_early)
            declared = _declared_by_words(_words)
            if declared is not None:
                items.append(declared)
            continue
        comments.extend(_shift_token(c, offset) for c in _comments)
        low = _Lowering(path, diags, offset, text=chunk)
        item = low.item(tree.children[0])
        if item is not None:
            items.append(item)
    return items, comments


_CONTINUATIONS = {"from", "until"} | _EFFECTS
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|`[^`\n]+`")


def _declared_by_words(words: list[str]) -> A.Unparsed | None:
    """The rule, set or ladder that a statement which does not parse declares, read off
    its first two words (`rule NAME`, `set NAME`, `ladder NAME`)."""
    if len(words) >= 2 and words[0] in ("rule", "set", "ladder") and _NAME_RE.fullmatch(words[1]):
        name = words[1][1:-1] if words[1].startswith("`") else words[1]
        return A.Unparsed(words[0], name)
    return None


def _broken_statement_end(text: str, chunks: list[tuple[int, int, list[str]]], n: int, ended_early: bool) -> int:
    """The index of the first chunk after the broken chunk ``n`` that is not the rest of
    its statement. A statement with a syntax error yields nothing but its P100 (spec
    section 6), but the cutting guessed its end from words that the error may have
    shifted: `rule r block x` (no `:`) or `rule r: frm D block x` are cut before `block`,
    and the rest would read as an unnamed rule (a false P400). A following chunk that
    starts with `from`, `until` or an effect belongs to the broken statement when it
    starts on the line where the statement stops, when the statement stopped short (the
    parser wanted more), or when the statement is a `rule` or `assert` that has not yet
    reached its effect."""
    start, _, words = chunks[n]
    k = n + 1
    while k < len(chunks) and chunks[k][2][0] in _CONTINUATIONS:
        nstart = chunks[k][0]
        line_start = max(start, text.rfind("\n", 0, nstart) + 1)
        same_line = text[line_start:nstart].strip() != ""
        head_only = words[0] in ("rule", "assert") and not _EFFECTS & set(words)
        if not (same_line or head_only or (ended_early and k == n + 1)):
            break
        words = words + chunks[k][2]
        k += 1
    return k


def _shift_token(tok: Token, offset: tuple[int, int, int]) -> Token:
    line0, col0, pos0 = offset
    line = tok.line + line0 - 1
    col = tok.column + (col0 - 1 if tok.line == 1 else 0)
    return Token(tok.type, tok.value, (tok.start_pos or 0) + pos0, line, col)


# ---------------------------------------------------------------- friendly syntax errors

_TERMINAL_WORDS = {
    "NAME": "a name",
    "BQNAME": "a name",
    "STRING": "a string such as 'Blockchain Miners'",
    "NUMLIKE": "a number or a date such as 2021-10-15",
    "REGEX": "a regular expression such as /^CM-[0-9]+$/",
    "CMP": "a comparison (==, !=, <, <=, >, >=)",
    "EFFECT": "an effect (block, flag or allow)",
    "LSQB": "'['", "RSQB": "']'", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'",
    "COMMA": "','", "COLON": "':'", "DOT": "'.'", "EQUAL": "'='",
    "$END": "the end of the file",
}
_STATEMENT_STARTS = {"RULE", "FROM", "UNTIL", "EFFECT", "SET", "LADDER", "FIELD", "POLICY", "TEST", "ASSERT", "TESTS"}


_KEYWORD_GROUPS = {"EFFECT": {"BLOCK", "FLAG", "ALLOW"}}
"""Keywords that are described together: where all three effects are expected, the
message says "an effect (block, flag or allow)"."""


def _describe_expected(expected: set[str]) -> list[str]:
    words: list[str] = []
    exp = set(expected)
    for group, members in _KEYWORD_GROUPS.items():
        if members <= exp:
            exp = (exp - members) | {group}
    if _STATEMENT_STARTS & exp and len(_STATEMENT_STARTS & exp) >= 4:
        words.append("a new statement (a rule such as `block category 'X'`, or `rule`, `set`, `ladder`, `field`)")
        exp -= _STATEMENT_STARTS
    if {"CATEGORY", "MENTIONS", "NAME"} <= exp:
        words.append("a condition such as `category 'X'`, `mentions 'phrase'` or `price > 10`")
        exp -= {"CATEGORY", "MENTIONS", "NAME", "BQNAME", "NOT", "LPAR", "TRUE", "FALSE"}
    for t in sorted(exp):
        if t in _TERMINAL_WORDS:
            w = _TERMINAL_WORDS[t]
        elif t.isupper() and t.isalpha():
            w = f"`{t.lower()}`"
        else:
            continue
        if w not in words:
            words.append(w)
    return words


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    v = tok.value
    if tok.type in ("NAME", "BQNAME"):
        return f"the name '{v}'"
    if tok.type == "STRING":
        return f"the string {v}"
    if tok.type == "NUMLIKE":
        return f"'{v}'"
    return f"`{v}`"


def _syntax_error(e: UnexpectedInput, chunk: str, path: str, offset: tuple[int, int, int],
                  following: tuple[str, int, int] | None = None) -> Diagnostic:
    """A P100 that says what was found and what was expected, in words. ``following`` is
    the first word of the next statement (and its position), which is what the author
    sees after a statement that ended too early."""
    line0, col0, pos0 = offset
    hint = None
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END" and following is not None:
            word, fline, fcol = following
            line, col, length = fline - line0 + 1, fcol - (col0 - 1 if fline == line0 else 0), len(word)
            found = f"`{word}`"
        elif tok.type == "$END":
            line, col, length = _end_position(chunk)
            found = "the end of the file"
        else:
            line, col, length = tok.line, tok.column, max(1, len(tok.value))
            found = _describe_token(tok)
        expected = _describe_expected(_accepted(e))
        msg = f"found {found} where {_join_or(expected)} was expected" if expected else f"unexpected {found}"
        before = chunk[:tok.start_pos].split()[-1:] if tok.type != "$END" else []
        if before in (["assert"], ["test"]) and _accepted(e) == {"STRING"}:
            kind = "assertion" if before == ["assert"] else "test"
            msg = f"found {found} where the name of the {kind} was expected, in quotes"
            hint = (f'write `assert "what the policy promises" {tok.value} …`: results and reports cite the name'
                    if kind == "assertion" else 'write `test "what it shows" given {…} at … expect …`')
        if tok.type == "NAME" and hint is None:
            acc = _accepted(e)
            keywords = [t.lower() for t in acc if t.isalpha() and t.isupper() and t not in _TERMINAL_WORDS]
            guess = did_you_mean(tok.value, keywords)
            glued = max((k for k in keywords if tok.value.startswith(k)), key=len, default=None)
            if guess:
                hint = f"did you mean `{guess}`?"
            elif glued:
                hint = (f"did you mean `{glued} {tok.value[len(glued):]}`? A word is read whole: "
                        f"put a space after `{glued}`")
            elif tok.value in RESERVED:
                hint = f"`{tok.value}` is a keyword"
    elif isinstance(e, UnexpectedCharacters):
        line, col, length = e.line, e.column, 1
        ch = chunk[e.pos_in_stream] if 0 <= e.pos_in_stream < len(chunk) else "?"
        msg = f"unexpected character {_describe_char(ch)}"
        if ch in "'\"":
            msg = "this string is not closed before the end of the line"
            hint = f"close it with {ch}; a string cannot span lines (write \\n for a line break)"
        elif ch == "/":
            msg = "this regular expression is not closed before the end of the line"
            hint = "close it with /; write \\/ for a slash inside it"
        elif ch == "`":
            msg = "this backquoted name is not closed"
    elif isinstance(e, UnexpectedEOF):
        line, col, length = _end_position(chunk)
        msg = "the statement is not finished at the end of the file"
    else:  # pragma: no cover - Lark raises only the three above
        line, col, length = 1, 1, 1
        msg = str(e)
    advice = hints.advise(_error_site(e, chunk))
    if advice is not None:  # a mistake dsl.hints knows: its words and spot
        msg, hint = advice.message, advice.hint
        line, col, length = advice.position(chunk)
    aline = line + line0 - 1
    acol = col + (col0 - 1 if line == 1 else 0)
    span = A.Span(path, aline, acol, aline, acol + length, pos0, pos0)
    return make("P100", msg, span, hint=hint)


def _error_site(e: UnexpectedInput, chunk: str) -> hints.ErrorSite:
    accepted = frozenset(_accepted(e)) if isinstance(e, UnexpectedToken) else frozenset()
    return hints.ErrorSite(chunk, e, accepted, lambda pos: _accepts_before(chunk, pos),
                           lambda terminals: _join_or(_describe_expected(set(terminals))))


def _accepts_before(chunk: str, pos: int) -> frozenset[str]:
    """The terminals the parser takes at offset ``pos`` of ``chunk``: Lark's interactive
    parser, fed the text before it."""
    mark = len(_comments)
    try:
        interactive = _get_parser().parse_interactive(chunk[:pos], start="single")
        interactive.exhaust_lexer()
        return frozenset(interactive.accepts())
    except UnexpectedInput:
        return frozenset()
    finally:
        del _comments[mark:]  # the comments it read again


def _accepted(e: UnexpectedToken) -> set[str]:
    """The terminals the parser would really take here. LALR's table lists every token
    that may follow a merged state (`expect` after a date in a rule window, say); the
    interactive parser tells the ones that lead somewhere."""
    try:
        acc = set(e.interactive_parser.accepts())
        if acc:
            return acc
    except Exception:  # noqa: BLE001 - fall back to the table's view
        pass
    return set(e.expected)


def _describe_char(ch: str) -> str:
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}' (U+{ord(ch):04X})"
    return f"U+{ord(ch):04X}"


def _end_position(chunk: str) -> tuple[int, int, int]:
    stripped = chunk.rstrip()
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col, 1


def _join_or(words: list[str]) -> str:
    if len(words) > 6:
        words = words[:6] + ["…"]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


# ---------------------------------------------------------------- lowering


def _token_span(path: str, tok: Token, offset: tuple[int, int, int]) -> A.Span:
    line0, col0, pos0 = offset
    line = (tok.line or 1)
    end_line = tok.end_line or line
    col = (tok.column or 1) + (col0 - 1 if line == 1 else 0)
    end_col = (tok.end_column or col) + (col0 - 1 if end_line == 1 else 0)
    return A.Span(path, line + line0 - 1, col, end_line + line0 - 1, end_col,
                  (tok.start_pos or 0) + pos0, (tok.end_pos or 0) + pos0)


class _Skip(Exception):
    """A statement that cannot be lowered (already reported)."""


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$")
_INT_RE = re.compile(r"^-?\d+$")
_LEADING_DIGITS_RE = re.compile(r"-?(\d*)")
_FLOAT_RE = re.compile(r"^-?\d+\.\d+$")
_EXPONENT_RE = re.compile(r"^-?\d+(?:\.\d+)?[eE][+-]?\d{1,3}$")


def _exponent_hint(v: str) -> str:
    """The number written out, when it is short enough to be worth suggesting."""
    try:
        plain = format(decimal.Decimal(v), "f")
    except decimal.InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        plain = ""
    if plain and len(plain) <= 30:
        return f"write it out: {plain}"
    return "write the number out in digits, with at most one '.'"

_DURATION_RE = re.compile(r"^(\d+)([dwh])$")
_ESCAPE_RE = re.compile(r"\\(u\{([0-9A-Fa-f]{1,6})\}|.)")


class _Lowering:
    def __init__(self, path: str, diags: list[Diagnostic], offset: tuple[int, int, int] = (1, 1, 0),
                 text: str = ""):
        self.path = path
        self.diags = diags
        self.offset = offset
        self.whole_file = offset == (1, 1, 0)  # positions need no shifting
        self.text = text  # what the tokens' positions index
        # Only parentheses make expressions nest: without many, no statement is too deep.
        self.check_depth = text.count("(") > MAX_DEPTH

    # spans -------------------------------------------------------------
    def span(self, node: _Node | Token) -> A.Span | None:
        if node.__class__ is not _Node:
            if self.whole_file:  # a lexed token has every position set
                return A.Span(self.path, node.line, node.column, node.end_line, node.end_column,  # type: ignore[arg-type]
                              node.start_pos, node.end_pos)
            return _token_span(self.path, node, self.offset)  # type: ignore[arg-type]
        first, last = node.start, node.end
        if first is None or last is None:
            return None
        if self.whole_file:
            return A.Span(self.path, first.line, first.column, last.end_line, last.end_column,
                          first.start_pos, last.end_pos)
        line0, col0, pos0 = self.offset
        col = first.column + (col0 - 1 if first.line == 1 else 0)
        end_col = last.end_column + (col0 - 1 if last.end_line == 1 else 0)
        return A.Span(self.path, first.line + line0 - 1, col, last.end_line + line0 - 1, end_col,
                      first.start_pos + pos0, last.end_pos + pos0)

    def join(self, a: A.Span | None, b: A.Span | None) -> A.Span | None:
        if a is None or b is None:
            return a or b
        return A.Span(a.file, a.line, a.column, b.end_line, b.end_column, a.start, b.end)

    def error(self, code: str, message: str, node: _Node | Token | A.Span | None, hint: str | None = None) -> None:
        span = node if isinstance(node, A.Span) or node is None else self.span(node)
        self.diags.append(make(code, message, span, hint=hint))

    # statements ----------------------------------------------------------
    def item(self, tree: _Node) -> Any:
        if self.check_depth and _too_deep(self.text, tree):
            self.error("P100", f"this statement nests expressions more than {MAX_DEPTH} levels deep",
                       tree, hint="split the condition into simpler rules or use a set")
            return _declared_by_tree(tree)
        mark = len(self.diags)
        try:
            item = getattr(self, "s_" + tree.data)(tree)
        except _Skip:
            item = None
        found = self.diags[mark:]
        syntax = [d for d in found if d.code == "P100"]
        if syntax:
            # A statement with a syntax error yields nothing but its P100 (spec section 6):
            # the checks never see it, and its other findings are dropped.
            first = min(syntax, key=lambda d: (d.span.start, d.span.line, d.span.column) if d.span else (0, 0, 0))
            self.diags[mark:] = [first]
            return _declared_by_tree(tree)
        return item

    def s_header(self, t: _Node) -> A.Header:
        name = self.name(t.children[0])
        clauses = []
        for c in t.children[1:]:
            kw, val = c.children
            kind = kw.value
            value = self.expr(val) if kind == "scope" else self.string(val)
            clauses.append(A.Clause(kind, value, span=self.span(c)))
        # Clauses may come in any order; the AST holds them in canonical order (authorities
        # as written), as it does a rule's clauses.
        clauses.sort(key=lambda c: _HEADER_ORDER[c.kind])
        return A.Header(name, tuple(clauses), span=self.span(t))

    def s_set_decl(self, t: _Node) -> A.SetDecl:
        name = self.name(t.children[0])
        items = tuple(self.literal(c) for c in t.children[1:])
        return A.SetDecl(name, items, span=self.span(t))

    def s_ladder_decl(self, t: _Node) -> A.LadderDecl:
        name = self.name(t.children[0])
        steps = tuple(self.step(c) for c in t.children[1:])
        return A.LadderDecl(name, steps, span=self.span(t))

    def s_field_decl(self, t: _Node) -> A.FieldDecl:
        path = self.path_(t.children[0])
        ty = self.type_(t.children[1])
        required = len(t.children) > 2
        return A.FieldDecl(path, ty, required, span=self.span(t))

    def type_(self, t: _Node) -> A.TypeRef:
        kind = t.data[2:]
        values = tuple(self.string(c) for c in t.children) if kind == "one_of" else ()
        return A.TypeRef(kind, values, span=self.span(t))

    def s_rule(self, t: _Node) -> A.Rule:
        kids = list(t.children)
        name = None
        head = None
        if isinstance(kids[0], _Node) and kids[0].data == "rule_head":
            rh = kids.pop(0)
            name = self.name(rh.children[1])
            head = self.span(rh)
        from_ = until = None
        if isinstance(kids[0], _Node) and kids[0].data == "window":
            from_, until = self.window(kids.pop(0))
        effect_tok = kids.pop(0)
        if head is None:
            first = t.children[0]
            head = self.span(first.children[0] if isinstance(first, _Node) else first)
        selector = None
        if kids and isinstance(kids[0], _Node) and kids[0].data not in ("clause", "penalty_ladder", "penalty_step", "overrides"):
            selector = self.expr(kids.pop(0))
        fields: dict[str, Any] = {}
        for c in kids:
            key, value = self.rule_clause(c)
            if key in fields:
                self.error("P100", f"`{_CLAUSE_WORD[key]}` is given twice in this rule", c,
                           hint="combine the two with `and`" if key in ("if_", "unless") else "keep one of them")
                continue
            fields[key] = value
        return A.Rule(name, effect_tok.value, from_, until, selector, span=self.span(t), head=head, **fields)

    def rule_clause(self, c: _Node) -> tuple[str, Any]:
        if c.data == "clause":
            kw, val = c.children
            kind = kw.value
            if kind in ("if", "unless"):
                return ("if_" if kind == "if" else "unless"), self.expr(val)
            return kind, self.string(val)
        if c.data == "penalty_ladder":
            return "penalty", A.PenaltyLadder(self.name(c.children[1]), span=self.span(c))
        if c.data == "penalty_step":
            return "penalty", A.PenaltyStep(self.step(c.children[1]), span=self.span(c))
        if c.data == "overrides":
            return "overrides", tuple(self.ref(r) for r in c.children[1:])
        raise AssertionError(c.data)  # pragma: no cover

    def window(self, t: _Node) -> tuple[A.When | None, A.When | None]:
        from_ = until = None
        kids = t.children
        for i in range(0, len(kids), 2):
            kw, when = kids[i], kids[i + 1]
            w = self.when(when)
            if kw.value == "from":
                from_ = w
            else:
                until = w
        return from_, until

    def s_test_case(self, t: _Node) -> A.TestCase:
        kids = list(t.children)
        name = self.string(kids.pop(0))
        given = self.object_(kids.pop(0))
        at = prior = None
        if kids and isinstance(kids[0], _Node) and kids[0].data == "test_at":
            at = self.when(kids.pop(0).children[0])
        if kids and isinstance(kids[0], _Node) and kids[0].data == "test_prior":
            tok = kids.pop(0).children[0]
            prior = self.whole(tok, "`prior` takes a whole number of earlier violations, such as 1")
        effect = kids.pop(0)
        by: tuple[A.Ref, ...] = ()
        penalty = None
        for c in kids:
            if c.data == "expect_by":
                by = tuple(self.ref(r) for r in c.children)
            elif c.data == "expect_ladder":
                penalty = A.ExpectPenalty(self.name(c.children[1]), self.whole(c.children[2], "a step is a whole number from 1"), span=self.span(c))
            elif c.data == "expect_step":
                penalty = A.ExpectPenalty(None, self.whole(c.children[1], "a step is a whole number from 1"), span=self.span(c))
            elif c.data == "expect_none":
                penalty = A.ExpectPenalty(none=True, span=self.span(c))
        expect_span = self.join(self.span(effect), self.span(kids[-1]) if kids else None)
        expect = A.Expect(effect.value, by, penalty, span=expect_span)
        span = self.span(t)
        if at is None:
            self.error("P100", "a test needs `at`: the instant at which the listing is decided", span,
                       hint="add `at 2021-10-20` after `given {…}` so that the test does not change with the clock")
            raise _Skip
        return A.TestCase(name, given, at, expect, prior, span=span)

    def s_tests_for(self, t: _Node) -> A.TestsFor:
        return A.TestsFor(tuple(self.name(c) for c in t.children), span=self.span(t))

    def s_assertion(self, t: _Node) -> A.Assertion:
        kids = list(t.children)
        name = self.string(kids.pop(0))
        from_ = until = None
        if isinstance(kids[0], _Node) and kids[0].data == "window":
            from_, until = self.window(kids.pop(0))
        quant, effect, expr = kids
        return A.Assertion(name, quant.value, effect.value, self.expr(expr), from_, until, span=self.span(t))

    # penalties -------------------------------------------------------------
    def step(self, t: _Node) -> A.Step:
        return A.Step(tuple(self.action(a) for a in t.children), span=self.span(t))

    def action(self, t: _Node) -> A.Action:
        kind = t.data
        span = self.span(t)
        if kind == "deduct":
            points = self.whole(t.children[0], "points are a positive whole number, such as `deduct 6 points`", positive=True)
            return A.Action("deduct", points=points, span=span)
        if kind == "restrict":
            fn = self.name(t.children[0]).name
            return A.Action("restrict", function=fn, duration=self.duration(t.children[1]), span=span)
        if kind == "suspend":
            return A.Action("suspend", duration=self.duration(t.children[0]), span=span)
        return A.Action(kind, span=span)

    def number_too_long(self, tok: Token) -> bool:
        """A P100 for a number (or a token that starts like one) with more than
        MAX_NUMBER_DIGITS digits before its decimal point."""
        digits = len(_LEADING_DIGITS_RE.match(tok.value).group(1))  # type: ignore[union-attr]
        if digits <= MAX_NUMBER_DIGITS:
            return False
        self.error("P100", f"this number is too long: it has {digits} digits, and a number has at most "
                   f"{MAX_NUMBER_DIGITS} before its decimal point", tok,
                   hint="no price, count or duration needs more; check what was pasted here")
        return True

    def duration(self, tok: Token) -> A.Duration:
        if self.number_too_long(tok):
            return A.Duration(24, span=self.span(tok))
        m = _DURATION_RE.match(tok.value)
        if not m or int(m.group(1)) == 0:
            self.error("P103", f"'{tok.value}' is not a valid duration", tok,
                       hint=hints.duration_hint(tok.value) or "write a positive whole number of hours, days or weeks: 12h, 30d, 2w")
            return A.Duration(24, span=self.span(tok))
        n, unit = int(m.group(1)), m.group(2)
        return A.Duration(n * {"h": 1, "d": 24, "w": 168}[unit], span=self.span(tok))

    def whole(self, tok: Token, message: str, positive: bool = False) -> int:
        if self.number_too_long(tok):
            return 1
        if _INT_RE.match(tok.value) and not tok.value.startswith("-") and (not positive or int(tok.value) > 0):
            return int(tok.value)
        self.error("P100", f"'{tok.value}' is not a whole number here: {message}", tok)
        return 1

    # names -----------------------------------------------------------------
    def name(self, t: _Node) -> A.Ref:
        tok = t.children[0]
        return A.Ref(self.name_text(tok), span=self.span(tok))

    def name_text(self, tok: Token) -> str:
        if tok.type == "BQNAME":
            return tok.value[1:-1]
        if tok.value in RESERVED:
            self.error("P100", f"`{tok.value}` is a keyword and cannot be used as a name here", tok,
                       hint=f"write it in backquotes to use it as a name: \u0060{tok.value}\u0060")
        return str(tok.value)

    def ref(self, t: _Node) -> A.Ref:
        parts = [self.name_text(c.children[0]) for c in t.children]
        return A.Ref(".".join(parts), span=self.span(t))

    def path_(self, t: _Node) -> A.Path:
        parts = tuple(self.name_text(c.children[0]) for c in t.children)
        return A.Path(parts, span=self.span(t))

    # literals ----------------------------------------------------------------
    def string(self, t: _Node | Token) -> A.Str:
        tok = t.children[0] if isinstance(t, _Node) else t
        return A.Str(self.unescape(tok), span=self.span(tok))

    def unescape(self, tok: Token) -> str:
        body = tok.value[1:-1]
        if "\\" not in body:
            return str(body)

        def repl(m: re.Match[str]) -> str:
            e = m.group(1)
            if m.group(2):
                cp = int(m.group(2), 16)
                if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                    self.error("P100", f"\\u{{{m.group(2)}}} is not a Unicode character", tok)
                    return ""
                return chr(cp)
            simple = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
            if e in simple:
                return simple[e]
            self.error("P100", f"unknown escape \\{e} in a string", tok,
                       hint="the escapes are \\\\ \\' \\\" \\n \\t and \\u{hex}")
            return e

        return _ESCAPE_RE.sub(repl, body)

    def literal(self, t: _Node) -> A.Scalar:
        tok = t.children[0] if isinstance(t, _Node) and t.data == "literal" else t
        if isinstance(tok, _Node):  # string
            return self.string(tok)
        if tok.type == "TRUE":
            return A.Bool(True, span=self.span(tok))
        if tok.type == "FALSE":
            return A.Bool(False, span=self.span(tok))
        return self.numlike(tok)

    def numlike(self, tok: Token) -> A.Scalar:
        v = tok.value
        span = self.span(tok)
        if self.number_too_long(tok):
            return A.Num(0, span=span)
        if _INT_RE.match(v):
            return A.Num(int(v), span=span)
        if _FLOAT_RE.match(v):
            return A.Num(float(v), span=span)
        if _EXPONENT_RE.match(v):
            self.error("P100", f"'{v}' is not a valid number: numbers are written without an exponent", tok,
                       hint=_exponent_hint(v))
            return A.Num(0, span=span)
        if _DURATION_RE.match(v) or re.match(r"^\d+[A-Za-z]+$", v):
            if _DURATION_RE.match(v) and not v.startswith("0"):
                self.error("P103", f"a duration such as '{v}' is only used in penalties", tok,
                           hint="compare numbers or dates here")
            else:
                self.error("P103", f"'{v}' is not a valid duration", tok,
                           hint="a duration is a positive whole number of hours, days or weeks: 12h, 30d, 2w")
            return A.Num(0, span=span)
        return self.when(tok)

    def when(self, t: _Node | Token) -> A.When:
        tok = t.children[0] if isinstance(t, _Node) else t
        v = tok.value
        span = self.span(tok)
        if self.number_too_long(tok):
            return A.Date(dt.date(2000, 1, 1), span=span)
        try:
            if _DATE_RE.match(v):
                return A.Date(dt.date.fromisoformat(v), span=span)
            m = _DATETIME_RE.match(v)
            if m:
                value = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                return A.DateTime(value, span=span)
        except ValueError:
            pass
        self.error("P101", f"'{v}' is not a valid date", tok,
                   hint=hints.date_hint(v) or "write a date as 2021-10-15, or a date-time as 2021-10-15T08:00 or 2021-10-15T08:00:00+08:00")
        return A.Date(dt.date(2000, 1, 1), span=span)

    def list_(self, t: _Node) -> A.ListExpr:
        if t.data == "set_ref":
            return self.name(t.children[0])
        return A.ListLit(tuple(self.literal(c) for c in t.children), span=self.span(t))

    def object_(self, t: _Node) -> A.ObjectLit:
        items = []
        for pair in t.children:
            key_node, value = pair.children
            if key_node.data == "name":
                tok = key_node.children[0]
                key = tok.value[1:-1] if tok.type == "BQNAME" else str(tok.value)
            else:
                key = self.string(key_node).value
            items.append((key, self.value(value)))
        return A.ObjectLit(tuple(items), span=self.span(t))

    def value(self, t: _Node | Token) -> A.Value:
        if isinstance(t, _Node):
            if t.data == "object":
                return self.object_(t)
            if t.data == "array":
                return A.ArrayLit(tuple(self.value(c) for c in t.children), span=self.span(t))
            if t.data == "null":
                return A.Null(span=self.span(t))
            return self.literal(t)
        return self.literal(t)

    # expressions -------------------------------------------------------------
    def expr(self, t: _Node | Token) -> A.Expr:
        d = t.data if isinstance(t, _Node) else None
        k = t.children if isinstance(t, _Node) else []
        if d in ("or_", "and_") and len(k) == 1:
            return self.expr(k[0])  # every atom sits in an or_ of one and_ of one
        span = self.span(t)
        if d in ("or_", "and_"):
            node_type = A.Or if d == "or_" else A.And
            items: list[A.Expr] = []
            for c in k:
                sub = self.expr(c)
                # (a and b) and c is a and b and c: one canonical shape for the formatter
                items.extend(sub.items if isinstance(sub, node_type) else (sub,))
            return node_type(tuple(items), span=span)
        if d == "negation":
            if len(k) - 1 > MAX_DEPTH:
                # `not not … x` is one flat Lark node, so the depth check cannot see it.
                self.error("P100", f"this condition stacks more than {MAX_DEPTH} `not`", t,
                           hint="`not not x` is x: remove the pairs")
                raise _Skip
            inner = self.expr(k[-1])
            for tok in reversed(k[:-1]):
                inner = A.Not(inner, span=self.join(self.span(tok), span))
            return inner
        if d == "true":
            return A.Const(True, span=span)
        if d == "false":
            return A.Const(False, span=span)
        if d == "category":
            return A.Category(self.string(k[1]), span=span)
        if d == "category_in":
            return A.CategoryIn(self.list_(k[1]), span=span)
        if d == "category_not_in":
            return A.Not(A.CategoryIn(self.list_(k[2]), span=span), span=span)
        if d == "category_compare":
            return A.Compare(A.Path(("category",), span=self.span(k[0])), k[1].value, self.literal(k[2]), span=span)
        if d in ("mentions", "mentions_any"):
            if isinstance(k[0], _Node):
                path: A.Path | None = self.path_(k[0])
                rest = k[2:]
            else:
                path = None
                rest = k[1:]
            if d == "mentions":
                return A.Mentions(path, self.string(rest[0]), span=span)
            return A.MentionsAny(path, self.list_(rest[0]), span=span)
        if d == "contains":
            return A.Contains(self.path_(k[0]), self.string(k[1]), span=span)
        if d == "matches":
            return A.Matches(self.path_(k[0]), self.regex(k[1]), span=span)
        if d == "compare":
            return A.Compare(self.path_(k[0]), k[1].value, self.literal(k[2]), span=span)
        if d == "in_":
            return A.In(self.path_(k[0]), self.list_(k[1]), False, span=span)
        if d == "not_in":
            return A.In(self.path_(k[0]), self.list_(k[2]), True, span=span)
        if d == "exists":
            return A.Exists(self.path_(k[0]), span=span)
        raise AssertionError(f"unexpected expression node {d}")  # pragma: no cover

    def regex(self, tok: Token) -> A.Regex:
        v = tok.value
        ignore_case = v.endswith("i")
        body = v[1:-2] if ignore_case else v[1:-1]
        return A.Regex(body.replace("\\/", "/"), ignore_case, span=self.span(tok))


_HEADER_ORDER = {"title": 0, "authority": 1, "version": 2, "timezone": 3, "scope": 4}

_CLAUSE_WORD = {"if_": "if", "unless": "unless", "penalty": "penalty", "overrides": "overrides",
                "because": "because", "message": "message"}


def _declared_by_tree(tree: _Node) -> A.Unparsed | None:
    """The rule, set or ladder that a statement left out for a syntax error declares."""
    kinds = {"rule": "rule", "set_decl": "set", "ladder_decl": "ladder"}
    if tree.data not in kinds or not tree.children:
        return None
    first = tree.children[0]
    if tree.data == "rule":
        if not (isinstance(first, _Node) and first.data == "rule_head"):
            return None
        first = first.children[1]
    tok = first.children[0]
    name = tok.value[1:-1] if tok.type == "BQNAME" else str(tok.value)
    return A.Unparsed(kinds[tree.data], name)


def _too_deep(text: str, tree: _Node) -> bool:
    """Whether the statement opens more than MAX_DEPTH parentheses at once, counted on its
    tokens (so parentheses in strings, regular expressions and comments do not count)."""
    if tree.start is None or tree.end is None:
        return False  # pragma: no cover - a statement has tokens
    depth = 0
    for m in _TOKEN_RE.finditer(text, tree.start.start_pos, tree.end.end_pos):
        if m.lastgroup == "punct":
            if m.group() == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    return True
            elif m.group() == ")":
                depth -= 1
    return False
