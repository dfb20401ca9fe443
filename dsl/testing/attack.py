"""An independent check of a proved assertion: attack it with listings built from the
policy set's own vocabulary, aimed at the assertion's expression.

Listings are a random background of fields (categories, phrases, literal values of the
policies, required schema fields always present) overlaid with a fragment aimed at making
the expression true: for ``A and B`` fragments for both, for ``A or B`` for one, and
through ``not`` a fragment aimed at making the operand false. Values for comparisons are
picked among the vocabulary's by asking the reference evaluator which satisfy the atom.

The generator is written once, as draws from a ``random.Random``, and driven two ways:

- ``attack``: a ``random.Random`` seeded with a constant, so every run tries the same
  candidates (reproducible in CI) and costs nothing beyond building them; candidates
  already tried are not tried again;
- ``counterexamples``: a Hypothesis strategy over the same generator
  (``st.randoms(use_true_random=False)``), for property tests that search longer (the
  ``thorough`` profile) and shrink what they find.

A counterexample found after the analysis proved the assertion means that the analysis
(or an evaluator) is wrong: that is an internal error, never a result.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..evaluate import values as R
from ..evaluate.reference import holds
from ..model import FieldInfo
from ..syntax import ast as A
from .claims import Claim
from .shrink import Counterexample
from .vocab import TEXT_FIELDS, Vocabulary

if TYPE_CHECKING:
    from hypothesis import strategies as st

__all__ = ["attack", "candidates", "counterexamples", "SEED"]

UTC = dt.UTC
SEED = 20211008
"""The attack's fixed seed: the same candidates on every run."""
FILLER = ("used", "item", "Pro", "2021", "kit", "mini", "case")
OTHER_SEGMENTS = ("Electronics", "Other", "Computers")
REGEX_POOL = 32
"""Texts drawn once per regular expression (by Hypothesis's ``from_regex``) to pick from."""
_ABSENT = object()
_EPOCH_LOW = dt.datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH_HIGH = dt.datetime(2040, 1, 1, tzinfo=UTC)
_TRIES_PER_EXAMPLE = 4
"""How many candidates the attack may build per distinct one it asks for (repeats are skipped)."""

Fragment = dict[tuple[str, ...], Any]
Draw = Callable[[random.Random], Any]
"""Something to draw: given the random source, one value."""


def attack(claim: Claim, vocab: Vocabulary, *, examples: int = 200, seed: int = SEED) -> Counterexample | None:
    """A listing, instant and prior count that breaks ``claim`` among ``examples``
    distinct candidates drawn with ``seed``, or None."""
    return next((cx for cx in _distinct(claim, vocab, examples, seed) if claim.broken_by(cx)), None)


def candidates(claim: Claim, vocab: Vocabulary, examples: int, seed: int = SEED) -> list[Counterexample]:
    """Up to ``examples`` distinct candidate counterexamples, the same for the same seed
    (fewer when the vocabulary has fewer to offer)."""
    return list(_distinct(claim, vocab, examples, seed))


def _distinct(claim: Claim, vocab: Vocabulary, examples: int, seed: int) -> Iterator[Counterexample]:
    """The candidates one by one (the attack stops at the first that breaks the claim)."""
    draw = _counterexample(claim, vocab, _regex_texts)
    rnd = random.Random(seed)
    seen: set[str] = set()
    for _ in range(examples * _TRIES_PER_EXAMPLE):
        if len(seen) >= examples:
            return
        cx = draw(rnd)
        key = json.dumps([cx.listing, cx.at.isoformat(), cx.prior_violations], sort_keys=True, default=repr)
        if key not in seen:
            seen.add(key)
            yield cx


def counterexamples(claim: Claim, vocab: Vocabulary) -> st.SearchStrategy[Counterexample]:
    """Candidate counterexamples to ``claim`` as a Hypothesis strategy: the attack's
    generator, drawing from Hypothesis's random source."""
    from hypothesis import strategies as st  # here, not at the top: only property tests draw through Hypothesis

    randoms = st.randoms(use_true_random=False)
    keys = list(dict.fromkeys(k for e in (claim.expr, *(r.condition for r in claim.ps.rules)) for k in _regexes(e)))
    if not keys:
        return randoms.map(_counterexample(claim, vocab, lambda *key: FILLER))
    # the texts for `matches` come from Hypothesis too (a few per regular expression and example)
    pools = st.tuples(*[st.lists(_regex_strategy(*key), min_size=1, max_size=4) for key in keys])

    def draw(pair: tuple[random.Random, tuple[list[str], ...]]) -> Counterexample:
        r, texts = pair
        found = dict(zip(keys, map(tuple, texts), strict=True))
        return _counterexample(claim, vocab, lambda *key: found.get(key, FILLER))(r)

    return st.tuples(randoms, pools).map(draw)


RegexTexts = Callable[[str, bool], tuple[str, ...]]
"""Texts in which a regular expression (its pattern, and whether case is ignored) finds a match."""


def _regexes(expr: A.Expr) -> list[tuple[str, bool]]:
    """The distinct regular expressions of ``matches`` atoms in ``expr``, in written order."""
    keys = (node.regex for node in A.walk(expr) if isinstance(node, A.Matches))
    return list(dict.fromkeys((rx.pattern, rx.ignore_case) for rx in keys))


def _counterexample(claim: Claim, vocab: Vocabulary,
                    regex_texts: RegexTexts) -> Callable[[random.Random], Counterexample]:
    """Listings aimed at the claim's expression (and half of the time at a rule's condition
    too), instants in its window, prior counts up to one past the longest ladder."""
    gen = _Generator(vocab, claim.tz, claim.ps.schema, regex_texts)
    background = gen.background()
    aimed = gen.fragment(claim.expr, True)
    rule = _rule_fragments(claim, vocab, regex_texts)
    instant = instants(claim, vocab)
    top = vocab.max_steps + 1

    def draw(r: random.Random) -> Counterexample:
        fields = background(r)
        wanted = aimed(r)
        if rule is not None and r.random() < 0.5:
            wanted = _merge((rule(r), wanted))  # the claim's fields first, the rule's where it only avoids
        return Counterexample(_overlay(fields, wanted), instant(r), r.randint(0, top))

    return draw


def _rule_fragments(claim: Claim, vocab: Vocabulary, regex_texts: RegexTexts) -> Draw | None:
    """Fields aimed at making one rule's condition true: a rule with the claimed effect
    for ``never`` (what would break it), any rule for ``always``. A rule's fragment is
    built the first time the rule is drawn."""
    rules = [r for r in claim.ps.rules if claim.quantifier == "always" or r.effect == claim.effect]
    if not rules:
        return None
    built: dict[int, Draw] = {}

    def draw(r: random.Random) -> Fragment:
        i = r.randrange(len(rules))
        if i not in built:
            info = rules[i]
            built[i] = _Generator(vocab, info.tz, claim.ps.schema, regex_texts).fragment(info.condition, True)
        frag: Fragment = built[i](r)
        return frag

    return draw


def instants(claim: Claim, vocab: Vocabulary) -> Draw:
    """Instants in the claim's window: its bounds and the rules' bounds (a second and a
    day either side), or anywhere in it."""
    low = claim.start or _EPOCH_LOW
    high = max(low, (claim.end - dt.timedelta(seconds=1)) if claim.end else _EPOCH_HIGH)
    picks: set[dt.datetime] = set()
    for b in (*vocab.instants, claim.start):
        if b is None:
            continue
        for d in (0, -1, 1, -86400, 86400):
            moved = b + dt.timedelta(seconds=d)
            if low <= moved <= high:
                picks.add(moved)
    span = (high - low) // dt.timedelta(microseconds=1)

    def anywhere(r: random.Random) -> dt.datetime:
        return low + dt.timedelta(microseconds=r.randint(0, span))

    if not picks:
        return anywhere
    chosen = tuple(sorted(picks))
    return lambda r: r.choice(chosen) if r.random() < 0.75 else anywhere(r)


# -- drawing: the few combinators the generator needs ---------------------------


def _just(value: Any) -> Draw:
    return lambda r: value


def _pick(values: Sequence[Any]) -> Draw:
    items = tuple(values)
    return lambda r: r.choice(items)


def _one_of(*draws: Draw) -> Draw:
    if len(draws) == 1:
        return draws[0]
    return lambda r: r.choice(draws)(r)


def _lists(item: Draw, low: int, high: int) -> Draw:
    return lambda r: [item(r) for _ in range(r.randint(low, high))]


def _tuple(*draws: Draw) -> Draw:
    return lambda r: tuple(d(r) for d in draws)


def _mapped(draw: Draw, f: Callable[[Any], Any]) -> Draw:
    return lambda r: f(draw(r))


class _Generator:
    def __init__(self, vocab: Vocabulary, tz: Any, schema: Mapping[tuple[str, ...], FieldInfo],
                 regex_texts: RegexTexts):
        self.vocab = vocab
        self.tz = tz
        self.schema = schema
        self.regex_texts = regex_texts

    # -- whole listings ------------------------------------------------------
    def background(self) -> Draw:
        fields: dict[tuple[str, ...], Draw] = {("category",): self.category()}
        for path in (*TEXT_FIELDS, *self.vocab.text_paths):
            if path:
                fields[path] = self.text(path)
        for path in self.vocab.values:
            fields.setdefault(path, self.value(path))
        for path in self.schema:
            fields.setdefault(path, self.value(path))
        required = {p for p, info in self.schema.items() if info.required}
        always = tuple((p, fields[p]) for p in sorted(fields) if p in required)
        maybe = tuple((p, fields[p]) for p in sorted(fields) if p not in required)

        def draw(r: random.Random) -> Fragment:
            out = {p: d(r) for p, d in always}
            out.update((p, d(r)) for p, d in maybe if r.random() < 0.5)
            return out

        return draw

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

    def value(self, path: tuple[str, ...]) -> Draw:
        info = self.schema.get(path)
        if info is not None and info.kind in ("text", "list_text") and not self.vocab.values.get(path):
            return self.text(path)
        if info is not None and info.kind == "category":
            return self.category()
        return _pick(self.values(path))

    def category(self, must: str | None = None) -> Draw:
        pool = tuple(self.vocab.segments) + OTHER_SEGMENTS
        middle = [must] if must else []

        def draw(r: random.Random) -> Any:
            if must is None:
                segs = [r.choice(pool) for _ in range(r.randint(1, 3))]
            else:
                before = [r.choice(pool) for _ in range(r.randint(0, 2))]
                segs = before + middle + [r.choice(pool) for _ in range(r.randint(0, 2))]
            return segs if r.random() < 0.5 else " > ".join(segs)

        return draw

    def text(self, path: tuple[str, ...], containing: str | None = None, plain: bool = False) -> Draw:
        text: Draw
        if containing is not None:
            text = _mapped(_tuple(_pick(("", "used ", "New ", "(")), _just(containing),
                                  _pick(("", " kit", "'s", ")", " 2021"))), "".join)
        elif plain:
            text = _mapped(_lists(_pick(FILLER), 1, 3), " ".join)
        else:
            text = _mapped(_lists(_pick(tuple(self.vocab.phrases) + FILLER), 1, 4), " ".join)
        info = self.schema.get(path)
        if path == ("tags",) or (info is not None and info.kind == "list_text"):
            return _lists(text, 1, 2)
        return text

    # -- fragments aimed at an expression ---------------------------------------
    def fragment(self, expr: A.Expr, want: bool) -> Draw:
        """Fields meant to make ``expr`` come out ``want``."""
        if isinstance(expr, A.Not):
            return self.fragment(expr.operand, not want)
        if isinstance(expr, (A.And, A.Or)):
            every = (isinstance(expr, A.And) and want) or (isinstance(expr, A.Or) and not want)
            parts = [self.fragment(e, want) for e in expr.items]
            if every:
                return _mapped(_tuple(*parts), _merge)
            return _one_of(*parts)
        return self.atom(expr, want)

    def atom(self, atom: Any, want: bool) -> Draw:
        frag = self._atom(atom, want)
        if want:
            return frag
        return _mapped(frag, lambda f: {k: _Weak(v) for k, v in f.items()})

    def _atom(self, atom: Any, want: bool) -> Draw:
        if isinstance(atom, (A.Category, A.CategoryIn)):
            return self._category_atom(atom, want)
        if isinstance(atom, (A.Mentions, A.MentionsAny, A.Contains)):
            return self._text_atom(atom, want)
        if isinstance(atom, A.Matches):
            path = atom.path.parts
            if want:
                texts = self.regex_texts(atom.regex.pattern, atom.regex.ignore_case) or FILLER
                return _mapped(_pick(texts), lambda v: {path: v})
            return _one_of(_just({path: _ABSENT}), _mapped(self.text(path, plain=True), lambda v: {path: v}))
        if isinstance(atom, (A.Compare, A.In, A.Exists)):
            path = atom.path.parts
            candidates = [*self.values(path), _ABSENT]
            chosen = [v for v in candidates if self._holds(atom, path, v) == want] or candidates
            return _mapped(_pick(chosen), lambda v: {path: v})
        return _just({})  # a constant, or nothing a listing can change

    def _category_atom(self, atom: A.Category | A.CategoryIn, want: bool) -> Draw:
        if isinstance(atom, A.Category):
            patterns = [atom.pattern.value]
        else:
            patterns = [i.value for i in _listed(atom.items) if isinstance(i, A.Str)]
        if want and patterns:
            return _mapped(_one_of(*[self.category(must=p) for p in patterns]), lambda v: {("category",): v})
        return _one_of(_just({("category",): _ABSENT}), _mapped(self.category(), lambda v: {("category",): v}))

    def _text_atom(self, atom: A.Mentions | A.MentionsAny | A.Contains, want: bool) -> Draw:
        if isinstance(atom, A.Mentions):
            needles = [atom.phrase.value]
        elif isinstance(atom, A.Contains):
            needles = [atom.needle.value]
        else:
            needles = [str(i.value) for i in _listed(atom.items)]
        paths = [atom.path.parts] if atom.path else list(TEXT_FIELDS)
        if want and needles:
            return _one_of(*[_mapped(self.text(p, containing=n), functools.partial(_single, p))
                             for p in paths for n in needles])
        # one value (or none) per path: the tuple is as long as ``paths``
        absent_or_plain = [_one_of(_just(_ABSENT), self.text(p, plain=True)) for p in paths]
        return _mapped(_tuple(*absent_or_plain), lambda vs: dict(zip(paths, vs, strict=True)))

    def _holds(self, atom: A.Expr, path: tuple[str, ...], value: Any) -> bool:
        return bool(holds(atom, _overlay({}, {path: value}), self.tz))


def _single(path: tuple[str, ...], value: Any) -> Fragment:
    return {path: value}


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


def _regex_strategy(pattern: str, ignore_case: bool) -> st.SearchStrategy[str]:
    """Texts in which the regular expression finds a match (or filler words, for one
    Hypothesis cannot generate from)."""
    from hypothesis import strategies as st

    try:
        compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        return st.from_regex(compiled, fullmatch=False).filter(lambda s: len(s) < 200)
    except (re.error, ValueError, TypeError, NotImplementedError):
        return st.sampled_from(FILLER)


@functools.lru_cache(maxsize=256)
def _regex_texts(pattern: str, ignore_case: bool) -> tuple[str, ...]:
    """``REGEX_POOL`` texts for the attack, drawn once by ``_regex_strategy``
    (derandomized, so always the same). Only a claim with ``matches`` pays for it."""
    from hypothesis import HealthCheck, Phase, given, settings

    found: list[str] = []

    @settings(max_examples=REGEX_POOL, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(_regex_strategy(pattern, ignore_case))
    def collect(text: str) -> None:
        found.append(text)

    collect()
    return tuple(dict.fromkeys(found)) or FILLER
