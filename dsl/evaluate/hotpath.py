"""The compiled evaluator's hot path, as Python source generated for one plan and compiled
once (``compile()``): ``decide(listing, at, prior_violations)`` and the loop of
``decide_many`` (``dsl.evaluate.compiled`` plans; this module writes the code that runs it).

One function per entry point, with every step that depends on the plan's shape chosen at
generation: no call per step, no closure per rule for the rules considered always (the
residual rules: their conditions are written out as one Python expression each, within a
bound on their size), the candidates of the listing's category (whose category conjunct
was already tested when the category's candidates were planned) and of its field values
decided through their planned closures, each with its window on instant keys.

Safety: no text of a policy ever enters the source. Every literal, predicate, key, reader
and helper is passed in the namespace under a name the generator makes (``_c0``, ``_c1``,
…, or a fixed helper name); the source holds only those names, Python keywords and
operators, local names, and the rule indexes (ints the planner numbered). What each atom
means is ``dsl.evaluate.semantics``'s, as for the closures (the same predicates are bound).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import attrs

from ..model import list_items
from ..syntax import ast as A
from ..text import PhraseMatcher
from . import semantics as S
from . import values as V
from .outcome import Decision, DecisionError, InputError

__all__ = ["Decide", "DecideBatch", "HotPath", "InlineRule", "Step", "generate", "group_contains"]

Source = tuple[str, ...] | None
Listing = dict[str, Any]
Step = tuple[float, float, int, Any, int]
"""A candidate rule as the loop reads it: its window as instant keys (``lo <= key < hi``),
its timezone's place, the condition still to test (a closure over the decision's ``_Ctx``,
or None when nothing is left to test) and its index."""
Matchers = Mapping[Source, tuple[PhraseMatcher, Callable[[Listing], tuple[str, ...]]]]


class Decide(Protocol):
    """``decide(listing, at=None, prior_violations=0)``."""

    def __call__(self, listing: Any, at: Any = None, prior_violations: Any = 0) -> Decision: ...


class DecideBatch(Protocol):
    """``batch(listings, ats, times, priors, prior, times_of)``: ``ats`` (``priors``) is one
    value per listing, or None when ``times`` (``prior``) is the batch's."""

    def __call__(self, listings: Any, ats: Sequence[Any] | None, times: Any, priors: Sequence[Any] | None,
                 prior: int, times_of: Callable[[Any], Any]) -> list[Decision | DecisionError]: ...


@attrs.frozen
class InlineRule:
    """A rule considered for every listing, to be written out: its index, window and zone
    (as in ``Step``), and its condition with the timezone its dates are read in."""

    index: int
    lo: float
    hi: float
    zone: int
    condition: A.Expr
    tz: ZoneInfo
    step: Step
    """The same rule for the loop, when its condition is beyond the bounds."""


@attrs.frozen
class HotPath:
    """What the generated code reads, besides the rules: each is a value or a function of
    ``dsl.evaluate.compiled``'s plan."""

    matchers: Matchers
    ctx: Callable[..., Any]
    """``_Ctx(listing, cat, matchers)``: the working state the closures read."""
    validate: Callable[[Listing], None] | None
    plain_keys: tuple[str, ...] | None
    """The warned fields when each is one key where a plain string fits (absent or a
    string: no warning); else None, and ``scan`` is called."""
    scan: Callable[[Listing], tuple[str, ...]] | None
    category_plan: Callable[[Any], tuple[Any, Sequence[Step]]] | None
    """A category value's path and candidates (memoised in ``category_memo``); None when
    the set has no category atom."""
    category_memo: Mapping[str, tuple[Any, Sequence[Step]]]
    more: Callable[[Listing, Sequence[Step]], Sequence[Step]] | None
    """The candidates with those filed under the listing's field values added."""
    residual: tuple[InlineRule, ...]
    """The rules considered for every listing, in order: written out within the bounds,
    the others decided through their closures."""
    conclude: Callable[[list[int], int, tuple[str, ...], Any], Decision]
    nothing: Callable[[tuple[str, ...], Any], Decision]
    at_memo: Mapping[str, Any]
    """The times of the ``at`` strings seen, read before ``text_times`` is called."""
    text_times: Callable[[str], Any]
    times_of: Callable[[Any], Any]
    now: Callable[[], Any]


def group_contains(items: Sequence[A.Expr]) -> tuple[dict[tuple[str, ...], list[str]], list[A.Expr]]:
    """The ``contains`` atoms of an ``or`` that share their source with another, grouped
    by source (one test each: the predicates are pure, so the order of an ``or`` does not
    matter), and the other items."""
    by_source: dict[tuple[str, ...], list[str]] = {}
    for i in items:
        if isinstance(i, A.Contains):
            by_source.setdefault(i.path.parts, []).append(i.needle.value)
    fused = {src: by_source[src] for src in sorted(by_source) if len(by_source[src]) > 1}
    rest = [i for i in items if not (isinstance(i, A.Contains) and i.path.parts in fused)]
    return fused, rest


# --------------------------------------------------------------------------- conditions


class _TooLarge(Exception):
    """A condition beyond the bounds of what is written out (it keeps its closure)."""


class _Names:
    """The generated code's namespace: each value bound once under a fresh name."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"_c{len(self.ns)}"
        self.ns[name] = value
        return name


_MAX_DEPTH = 20
_MAX_ATOMS = 48
_MAX_INLINE_RULES = 256
_MAX_WRITTEN_NEEDLES = 12


class _Writer:
    """Writes a condition as one Python expression over the locals ``listing``, ``get``
    (``listing.get``) and ``cat``, and per-listing memo locals: ``n<k>`` a source's text
    as ``contains`` reads it, ``f<k>`` the phrases its ``mentions`` matcher found (each
    None until first read, with ``:=``)."""

    def __init__(self, names: _Names, matchers: Matchers, read: Mapping[str, str]):
        self.names = names
        self.matchers = matchers
        self.read = read
        """The local already holding a key's value (the warned fields, read first)."""
        self.needles: dict[Source, str] = {}
        self.found: dict[Source, str] = {}
        self.finders: dict[Source, str] = {}
        """The bound name of each source's matcher run (one per source, whatever its atoms)."""
        self.atoms = 0

    def memo_locals(self) -> list[str]:
        return [*self.needles.values(), *self.found.values()]

    def rule(self, e: A.Expr, tz: ZoneInfo) -> str:
        """The expression, or _TooLarge."""
        self.atoms = 0
        return self.expr(e, tz, 0)

    def expr(self, e: A.Expr, tz: ZoneInfo, depth: int) -> str:
        if depth > _MAX_DEPTH:
            raise _TooLarge
        if isinstance(e, A.Const):
            return "True" if e.value else "False"
        if isinstance(e, A.And):
            return "(" + " and ".join(self.expr(i, tz, depth + 1) for i in e.items) + ")"
        if isinstance(e, A.Or):
            fused, rest = group_contains(e.items)
            parts = [self._contains(src, needles) for src, needles in fused.items()]
            return "(" + " or ".join(parts + [self.expr(i, tz, depth + 1) for i in rest]) + ")"
        if isinstance(e, A.Not):
            return "(not " + self.expr(e.operand, tz, depth + 1) + ")"
        self.atoms += 1
        if self.atoms > _MAX_ATOMS:
            raise _TooLarge
        return self.atom(e, tz)

    def atom(self, e: A.Expr, tz: ZoneInfo) -> str:
        bind = self.names.bind
        if isinstance(e, (A.Category, A.CategoryIn)):
            return f"{bind(S.category_test(S.atom_texts(e)))}(cat)"
        if isinstance(e, (A.Mentions, A.MentionsAny)):
            return self._mentions(e)
        if isinstance(e, A.Contains):
            return self._contains(e.path.parts, [e.needle.value])
        if isinstance(e, A.Matches):
            test = S.matches_test(e.regex.pattern, e.regex.ignore_case)
            return f"{bind(test)}({bind(S.pieces_reader(e.path.parts))}(listing))"
        if isinstance(e, A.Compare):
            return f"{bind(S.compare_test(S.as_op(e.op), e.value, tz))}({self._read(e.path.parts)})"
        if isinstance(e, A.In):
            return f"{bind(S.membership_test(list_items(e.items), e.negated, tz))}({self._read(e.path.parts)})"
        if isinstance(e, A.Exists):
            return f"({self._read(e.path.parts)} is not None)"
        raise TypeError(f"not a condition: {type(e).__name__}")

    def _read(self, parts: tuple[str, ...]) -> str:
        if len(parts) == 1:
            return self.read.get(parts[0]) or f"get({self.names.bind(parts[0])})"
        return f"{self.names.bind(V.path_reader(parts))}(listing)"

    def _contains(self, source: tuple[str, ...], needles: Sequence[str]) -> str:
        """``contains`` atoms on one source, ``or``-ed: the source's text read once per
        decision into its memo local. For a field of one key, the local holds the string
        normalised when the field is a string (each needle then one ``in``, written out)
        and the pieces otherwise; for a longer path, always the pieces."""
        local = self.needles.get(source)
        if local is None:
            local = self.needles[source] = f"n{len(self.needles)}"
        test = self.names.bind(S.contains_normalized_test(needles))
        text = f"({local} if {local} is not None else ({local} := {self._needle_text(source)}))"
        if len(source) != 1:
            return f"{test}({text})"
        norms = dict.fromkeys(S.needle_piece(n) for n in needles)  # what the test compares, in order
        if len(norms) > _MAX_WRITTEN_NEEDLES:
            return f"({test}((x,)) if type(x := {text}) is str else {test}(x))"
        written = " or ".join(f"{self.names.bind(n)} in x" for n in norms)
        return f"(({written}) if type(x := {text}) is str else {test}(x))"

    def _needle_text(self, source: tuple[str, ...]) -> str:
        """A source's text as ``contains`` reads it (``semantics.needle_pieces`` of its
        pieces); for a field of one key holding a string, that string normalised (not in
        a tuple: see ``_contains``)."""
        read = self.names.bind(_needle_reader(source))
        if len(source) != 1:
            return f"{read}(listing)"
        value = self._read(source)
        norm = self.names.bind(S.needle_piece)
        return f"({norm}(v) if type(v := {value}) is str else {read}(listing))"

    def _mentions(self, e: A.Mentions | A.MentionsAny) -> str:
        source: Source = e.path.parts if e.path is not None else None
        wanted = S.mention_phrases(S.atom_texts(e))
        if not wanted:
            return "False"
        local = self.found.get(source)
        if local is None:
            local = self.found[source] = f"f{len(self.found)}"
            matcher, pieces = self.matchers[source]
            self.finders[source] = self.names.bind(lambda listing: matcher.find_in_pieces(pieces(listing)))
        found = f"({local} if {local} is not None else ({local} := {self.finders[source]}(listing)))"
        return f"(not {found}.isdisjoint({self.names.bind(wanted)}))"


def _needle_reader(source: tuple[str, ...]) -> Callable[[Listing], tuple[str, ...]]:
    """A source's text as ``contains`` reads it (``semantics.needle_pieces``)."""
    pieces = S.pieces_reader(source)
    needle_pieces = S.needle_pieces
    return lambda listing: needle_pieces(pieces(listing))


# --------------------------------------------------------------------------- the body


def _window(rule: InlineRule, names: _Names) -> str:
    key = f"k{rule.zone}"
    lo = None if rule.lo == float("-inf") else names.bind(rule.lo)
    hi = None if rule.hi == float("inf") else names.bind(rule.hi)
    if lo is not None and hi is not None:
        return f"{lo} <= {key} < {hi}"
    if lo is not None:
        return f"{lo} <= {key}"
    return f"{key} < {hi}" if hi is not None else ""


_APPLY = ["    if applying is None:", "        applying = [{i}]", "    else:", "        applying.append({i})"]


def _inline_rules(hot: HotPath, names: _Names, writer: _Writer) -> tuple[list[str], list[Step]]:
    """The lines of the residual rules written out, and the ones left to their closures
    (beyond the bounds)."""
    lines: list[str] = []
    left: list[Step] = []
    for rule in hot.residual:
        try:
            if len(lines) >= 5 * _MAX_INLINE_RULES:
                raise _TooLarge
            cond = writer.rule(rule.condition, rule.tz)
        except _TooLarge:
            left.append(rule.step)
            continue
        window = _window(rule, names)
        test = f"{window} and {cond}" if window else cond
        lines.append(f"if {test}:")
        lines.extend(line.format(i=int(rule.index)) for line in _APPLY)
    return lines, left


_LOOP = [
    "for lo, hi, zone, cond, i in {seq}:",
    "    if lo <= keys[zone] < hi and (cond is None or cond(ctx if ctx is not None else "
    "(ctx := _Ctx(listing, cat, _matchers)))):",
    "        if applying is None:",
    "            applying = [i]",
    "        else:",
    "            applying.append(i)",
]


def _warnings(hot: HotPath, names: _Names) -> tuple[list[str], dict[str, str]]:
    """The lines that set ``warnings``, and the locals they leave holding a key's value
    (``w<k>``: the plain keys, read once for the scan and for the conditions; the listing
    is not changed while it is decided)."""
    if hot.plain_keys is None or not hot.plain_keys:
        return ["warnings = _scan(listing)" if hot.scan is not None else "warnings = ()"], {}
    read = {key: f"w{n}" for n, key in enumerate(hot.plain_keys)}
    lines = [f"{local} = get({names.bind(key)})" for key, local in read.items()]
    tests = " or ".join(f"(type({local}) is not str and {local} is not None)" for local in read.values())
    return lines + [f"warnings = _scan(listing) if {tests} else ()"], read


def _candidates(hot: HotPath, read: Mapping[str, str]) -> list[str]:
    if hot.category_plan is None:
        lines = ["cat = None", "cands = ()"]
    else:
        lines = [f"raw = {read.get('category') or 'get(_CATEGORY)'}",
                 "plan = _memo(raw) if type(raw) is str else None",
                 "if plan is None:",
                 "    plan = _category_plan(raw)",
                 "cat, cands = plan"]
    if hot.more is not None:
        lines.append("cands = _more(listing, cands)")
    return lines


def _share_found(writer: _Writer, names: _Names, *, into_ctx: bool) -> list[str]:
    """The lines that share what a source's matcher found between the written rules'
    locals (``f<k>``) and the closures' ``_Ctx``, so that it runs at most once per
    decision: from the ``_Ctx`` the candidates' loop made, into the locals (before the
    written rules), or from the locals into the ``_Ctx`` (before the loop of the rules left
    to their closures; made only when something was found)."""
    lines: list[str] = []
    for source, local in writer.found.items():
        key = names.bind(source)
        if into_ctx:
            made = "(ctx if ctx is not None else (ctx := _Ctx(listing, cat, _matchers)))"
            lines += [f"if {local} is not None:", f"    {made}.found[{key}] = {local}"]
        else:
            lines.append(f"{local} = ctx.found.get({key})")
    return lines if into_ctx or not lines else ["if ctx is not None:", *_indent(lines, 1)]


def _body(hot: HotPath, names: _Names) -> list[str]:
    """The decision of ``listing`` at ``times`` for ``prior`` as ``result`` (or InputError)."""
    warnings, read = _warnings(hot, names)
    writer = _Writer(names, hot.matchers, read)
    inline, left = _inline_rules(hot, names, writer)
    lines = ["if type(listing) is not dict:", "    _check_listing(listing)"]
    if hot.validate is not None:
        lines.append("_validate(listing)")
    lines.append("get = listing.get")
    lines.extend(warnings)
    lines.extend(_candidates(hot, read))
    lines += ["keys = times[0]", "applying = None", "ctx = None"]
    lines.extend(f"k{z} = keys[{int(z)}]" for z in sorted({r.zone for r in hot.residual})
                 if any(f"k{z} " in line for line in inline))
    memo = writer.memo_locals()
    if memo:
        lines.append(" = ".join(memo) + " = None")
    if hot.category_plan is not None or hot.more is not None:
        lines.extend(line.format(seq="cands") for line in _LOOP)
        if inline:
            lines.extend(_share_found(writer, names, into_ctx=False))
    lines.extend(inline)
    if left:
        lines.extend(_share_found(writer, names, into_ctx=True))
        lines.extend(line.format(seq=names.bind(tuple(left))) for line in _LOOP)
    lines += ["if applying is None:",
              "    result = times[2] if not warnings else _nothing(warnings, times)",
              "else:",
              "    result = _conclude(applying, prior, warnings, times)"]
    return lines


def _indent(lines: list[str], depth: int) -> list[str]:
    pad = "    " * depth
    return [pad + line for line in lines]


_DECIDE = """\
def decide(listing, at=None, prior_violations=0):
    if type(at) is str:
        times = _at_memo(at)
        if times is None:
            times = _text_times(at)
    elif at is None:
        times = _now()
    else:
        times = _times_of(at)
    if type(prior_violations) is int and prior_violations >= 0:
        prior = prior_violations
    else:
        prior = _check_prior(prior_violations)
{body}
    return result
"""

_BATCH = """\
def batch(listings, ats, times, priors, prior, times_of):
    out = []
    append = out.append
    for number, listing in enumerate(listings):
        try:
            if ats is not None:
                a = ats[number]
                if type(a) is str:
                    times = _at_memo(a)
                    if times is None:
                        times = _text_times(a)
                else:
                    times = times_of(a)
            if priors is not None:
                prior = priors[number]
                if type(prior) is not int or prior < 0:
                    prior = _check_prior(prior)
{body}
            append(result)
        except _InputError as e:
            append(_DecisionError(number + 1, e.message, e.field))
    return out
"""


def generate(hot: HotPath) -> tuple[Decide, DecideBatch, str]:
    """The two functions, and their source (for tests and for reading)."""
    names = _Names()
    body = _body(hot, names)
    source = (_DECIDE.format(body="\n".join(_indent(body, 1))) + "\n"
              + _BATCH.format(body="\n".join(_indent(body, 3))))
    namespace: dict[str, Any] = dict(names.ns)
    namespace.update(
        _matchers=hot.matchers, _Ctx=hot.ctx, _validate=hot.validate, _scan=hot.scan,
        _memo=hot.category_memo.get, _category_plan=hot.category_plan, _CATEGORY="category", _more=hot.more,
        _conclude=hot.conclude, _nothing=hot.nothing, _at_memo=hot.at_memo.get, _text_times=hot.text_times,
        _times_of=hot.times_of, _now=hot.now, _check_prior=V.check_prior, _check_listing=V.check_listing,
        _InputError=InputError, _DecisionError=DecisionError,
        __builtins__={"type": type, "str": str, "int": int, "dict": dict, "enumerate": enumerate})
    exec(compile(source, "<dsl.evaluate.hotpath>", "exec"), namespace)
    return namespace["decide"], namespace["batch"], source
