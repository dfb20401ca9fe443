"""An independent check of a proved assertion: attack it with listings that Hypothesis
builds from the policy set's own vocabulary, aimed at the assertion's expression.

Generation is derandomized with a fixed number of examples, so a run in CI is
reproducible. A counterexample found here after the analysis proved the assertion means
that the analysis (or an evaluator) is wrong: that is an internal error, never a result.

Listings are a random background of fields (categories, phrases, literal values of the
policies, required schema fields always present) overlaid with a fragment aimed at making
the expression true: for ``A and B`` fragments for both, for ``A or B`` for one, and
through ``not`` a fragment aimed at making the operand false. Values for comparisons are
picked among the vocabulary's by asking the reference evaluator which satisfy the atom.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ..evaluate import values as R
from ..evaluate.reference import holds
from ..model import FieldInfo
from ..syntax import ast as A
from .claims import Claim
from .shrink import Counterexample
from .vocab import TEXT_FIELDS, Vocabulary

__all__ = ["attack", "counterexamples"]

UTC = dt.UTC
FILLER = ("used", "item", "Pro", "2021", "kit", "mini", "case")
OTHER_SEGMENTS = ("Electronics", "Other", "Computers")
_ABSENT = object()
_EPOCH_LOW = dt.datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH_HIGH = dt.datetime(2040, 1, 1, tzinfo=UTC)

Fragment = dict[tuple[str, ...], Any]


def attack(claim: Claim, vocab: Vocabulary, *, examples: int = 200) -> Counterexample | None:
    """A listing, instant and prior count that breaks ``claim`` among ``examples``
    generated ones, or None."""
    found: list[Counterexample] = []

    class _Found(Exception):
        pass

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(counterexamples(claim, vocab))
    def run(cx: Counterexample) -> None:
        if claim.broken_by(cx):
            found.append(cx)
            raise _Found

    try:
        run()
    except _Found:
        pass
    return found[0] if found else None


def counterexamples(claim: Claim, vocab: Vocabulary) -> st.SearchStrategy[Counterexample]:
    """Candidate counterexamples to ``claim``: listings aimed at its expression, instants
    in its window, prior counts up to one past the longest ladder."""
    gen = _Generator(vocab, claim.tz, claim.ps.schema)
    return st.builds(Counterexample, gen.listings(claim.expr), instants(claim, vocab),
                     st.integers(0, vocab.max_steps + 1))


def instants(claim: Claim, vocab: Vocabulary) -> st.SearchStrategy[dt.datetime]:
    """Instants in the claim's window: its bounds and the rules' bounds (a second and a
    day either side), or anywhere in it."""
    low = claim.start or _EPOCH_LOW
    high = (claim.end - dt.timedelta(seconds=1)) if claim.end else _EPOCH_HIGH
    picks = set()
    for b in (*vocab.instants, claim.start):
        if b is None:
            continue
        for d in (0, -1, 1, -86400, 86400):
            moved = b + dt.timedelta(seconds=d)
            if low <= moved <= high:
                picks.add(moved)
    anywhere = st.datetimes(min_value=low.replace(tzinfo=None), max_value=max(low, high).replace(tzinfo=None),
                            timezones=st.just(UTC))
    if picks:
        return st.one_of(st.sampled_from(sorted(picks)), anywhere)
    return anywhere


class _Generator:
    def __init__(self, vocab: Vocabulary, tz: Any, schema: Mapping[tuple[str, ...], FieldInfo]):
        self.vocab = vocab
        self.tz = tz
        self.schema = schema

    # -- whole listings ------------------------------------------------------
    def listings(self, expr: A.Expr) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(_overlay, self.background(), self.fragment(expr, True))

    def background(self) -> st.SearchStrategy[Fragment]:
        fields: dict[tuple[str, ...], st.SearchStrategy[Any]] = {("category",): self.category()}
        for path in (*TEXT_FIELDS, *self.vocab.text_paths):
            if path:
                fields[path] = self.text(path)
        for path in self.vocab.values:
            fields.setdefault(path, self.value(path))
        for path in self.schema:
            fields.setdefault(path, self.value(path))
        required = {p for p, info in self.schema.items() if info.required}
        return st.fixed_dictionaries(
            {p: fields[p] for p in sorted(fields) if p in required},
            optional={p: fields[p] for p in sorted(fields) if p not in required})

    # -- values --------------------------------------------------------------
    def values(self, path: tuple[str, ...]) -> list[Any]:
        """The vocabulary's values for ``path`` that `decide` accepts there."""
        vals = list(self.vocab.values.get(path, ()))
        info = self.schema.get(path)
        if info is not None:
            vals = [v for v in vals if R.schema_problem(info, v) is None]
            if not vals:
                vals = [v for v in _typed_defaults(info) if R.schema_problem(info, v) is None]
        return vals or ["x", 1, True]

    def value(self, path: tuple[str, ...]) -> st.SearchStrategy[Any]:
        info = self.schema.get(path)
        if info is not None and info.kind in ("text", "list_text") and not self.vocab.values.get(path):
            return self.text(path)
        if info is not None and info.kind == "category":
            return self.category()
        return st.sampled_from(self.values(path))

    def category(self, must: str | None = None) -> st.SearchStrategy[Any]:
        pool = list(self.vocab.segments) + list(OTHER_SEGMENTS)
        around = st.lists(st.sampled_from(pool), max_size=2)

        def build(parts: tuple[list[str], list[str], bool]) -> Any:
            before, after, as_list = parts
            segs = before + ([must] if must else []) + after
            return segs if as_list else " > ".join(segs)

        if must is None:
            some = st.lists(st.sampled_from(pool), min_size=1, max_size=3)
            return st.tuples(some, st.just([]), st.booleans()).map(build)
        return st.tuples(around, around, st.booleans()).map(build)

    def text(self, path: tuple[str, ...], containing: str | None = None, plain: bool = False) -> st.SearchStrategy[Any]:
        if containing is not None:
            text = st.tuples(st.sampled_from(("", "used ", "New ", "(")), st.just(containing),
                             st.sampled_from(("", " kit", "'s", ")", " 2021"))).map("".join)
        elif plain:
            text = st.lists(st.sampled_from(FILLER), min_size=1, max_size=3).map(" ".join)
        else:
            pool = list(self.vocab.phrases) + list(FILLER)
            text = st.lists(st.sampled_from(pool), min_size=1, max_size=4).map(" ".join)
        info = self.schema.get(path)
        if path == ("tags",) or (info is not None and info.kind == "list_text"):
            return st.lists(text, min_size=1, max_size=2)
        return text

    # -- fragments aimed at an expression ---------------------------------------
    def fragment(self, expr: A.Expr, want: bool) -> st.SearchStrategy[Fragment]:
        """Fields meant to make ``expr`` come out ``want``."""
        if isinstance(expr, A.Not):
            return self.fragment(expr.operand, not want)
        if isinstance(expr, (A.And, A.Or)):
            every = (isinstance(expr, A.And) and want) or (isinstance(expr, A.Or) and not want)
            parts = [self.fragment(e, want) for e in expr.items]
            if every:
                return st.tuples(*parts).map(_merge)
            return st.one_of(*parts)
        return self.atom(expr, want)

    def atom(self, atom: Any, want: bool) -> st.SearchStrategy[Fragment]:
        frag = self._atom(atom, want)
        if want:
            return frag
        return frag.map(lambda f: {k: _Weak(v) for k, v in f.items()})

    def _atom(self, atom: Any, want: bool) -> st.SearchStrategy[Fragment]:
        if isinstance(atom, (A.Category, A.CategoryIn)):
            return self._category_atom(atom, want)
        if isinstance(atom, (A.Mentions, A.MentionsAny, A.Contains)):
            return self._text_atom(atom, want)
        if isinstance(atom, A.Matches):
            path = atom.path.parts
            if want:
                return _regex_text(atom.regex).map(lambda v: {path: v})
            return st.one_of(st.just({path: _ABSENT}), self.text(path, plain=True).map(lambda v: {path: v}))
        if isinstance(atom, (A.Compare, A.In, A.Exists)):
            path = atom.path.parts
            candidates = [*self.values(path), _ABSENT]
            chosen = [v for v in candidates if self._holds(atom, path, v) == want] or candidates
            return st.sampled_from(chosen).map(lambda v: {path: v})
        return st.just({})  # a constant, or nothing a listing can change

    def _category_atom(self, atom: A.Category | A.CategoryIn, want: bool) -> st.SearchStrategy[Fragment]:
        if isinstance(atom, A.Category):
            patterns = [atom.pattern.value]
        else:
            patterns = [i.value for i in _listed(atom.items) if isinstance(i, A.Str)]
        if want and patterns:
            return st.one_of(*[self.category(must=p) for p in patterns]).map(lambda v: {("category",): v})
        return st.one_of(st.just({("category",): _ABSENT}), self.category().map(lambda v: {("category",): v}))

    def _text_atom(self, atom: A.Mentions | A.MentionsAny | A.Contains, want: bool) -> st.SearchStrategy[Fragment]:
        if isinstance(atom, A.Mentions):
            needles = [atom.phrase.value]
        elif isinstance(atom, A.Contains):
            needles = [atom.needle.value]
        else:
            needles = [str(i.value) for i in _listed(atom.items)]
        paths = [atom.path.parts] if atom.path else list(TEXT_FIELDS)
        if want and needles:
            return st.one_of(*[st.tuples(st.just(p), self.text(p, containing=n)).map(_single)
                               for p in paths for n in needles])
        # one value (or none) per path: the tuple is as long as ``paths``
        return st.tuples(*[st.one_of(st.just(_ABSENT), self.text(p, plain=True)) for p in paths]).map(
            lambda vs: dict(zip(paths, vs, strict=True)))

    def _holds(self, atom: A.Expr, path: tuple[str, ...], value: Any) -> bool:
        return bool(holds(atom, _overlay({}, {path: value}), self.tz))


def _single(path_value: tuple[tuple[str, ...], Any]) -> Fragment:
    return {path_value[0]: path_value[1]}


def _listed(items: A.ListExpr) -> tuple[A.Scalar, ...]:
    """The items of a list in a claim (whose set references ``Claim.of`` has resolved)."""
    assert isinstance(items, A.ListLit), "a claim's set references are resolved to lists"
    return items.items


def _typed_defaults(info: FieldInfo) -> list[Any]:
    defaults: dict[str, list[Any]] = {
        "text": ["x"], "number": [0, 1, 100], "bool": [True, False], "date": ["2021-01-01"],
        "one_of": list(info.values), "list_text": [["x"]], "category": ["Other"]}
    return defaults.get(info.kind, ["x"])


def _merge(frags: tuple[Fragment, ...]) -> Fragment:
    """Fragments of a conjunction together. A field that one part needs (to make an atom
    true) is not taken away by a part that only avoids something (an atom made false)."""
    out: Fragment = {}
    for f in frags:
        for path, value in f.items():
            if path in out and isinstance(out[path], _Weak) is False and isinstance(value, _Weak):
                continue
            out[path] = value
    return out


class _Weak:
    """A field value chosen to make an atom false: it gives way to one that makes an atom true."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"_Weak({self.value!r})"


def _overlay(background: Fragment, aimed: Fragment) -> dict[str, Any]:
    """A listing from fields by path; ``aimed`` wins, and _ABSENT removes a field."""
    merged = dict(background)
    merged.update(aimed)
    listing: dict[str, Any] = {}
    for path in sorted(merged, key=len):
        value = merged[path]
        if isinstance(value, _Weak):
            value = value.value
        node = listing
        for part in path[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        if value is _ABSENT:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return listing


def _regex_text(regex: A.Regex) -> st.SearchStrategy[str]:
    flags = re.IGNORECASE if regex.ignore_case else 0
    try:
        compiled = re.compile(regex.pattern, flags)
        return st.from_regex(compiled, fullmatch=False).filter(lambda s: len(s) < 200)
    except (re.error, ValueError, TypeError, NotImplementedError):
        return st.sampled_from(FILLER)
