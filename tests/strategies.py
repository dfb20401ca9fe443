"""Hypothesis strategies for the policy language: names, literals, expressions, rules,
whole policy files (as ASTs and as text) and listings.

Everything here is small and shrinks well, and the vocabulary is deliberately tiny (a few
categories, phrases, platforms, countries, field names) so that generated listings often
hit generated rules. The generated ASTs carry no spans; compare them with parsed ones by
plain equality (spans are left out of it).

Typical uses (pytest puts ``tests/`` on ``sys.path``, so ``from strategies import …`` works
under both ``pytest`` and ``python -m pytest``; ``tests.strategies`` only under the latter)::

    from strategies import policy_files, policy_texts, listings

    @given(policy_files(), st.lists(listings(), max_size=5))
    def test_compiled_agrees_with_reference(file, batch): ...

Well-formedness of ``policy_files()``: every set and ladder referenced is declared (in the
same file), set and ladder names are distinct, rule names are unique, ladders are in
non-decreasing severity, penalties sit on block rules only, every allow overrides one or
more block/flag rules of the same file and nothing else has ``overrides``, literals fit
the field they are compared with, and windows are not empty. With ``schema=True`` the file
declares every field its rules read, with matching types. So ``dsl.check`` reports no
error for such a file (warnings, such as P300 or P301, are possible).

Hypothesis does not sample uniformly: it favours choices whose continuations it has not
explored, so ``one_of(none(), s)`` mostly yields ``s``. Where a rate matters (optional
clauses, the shape of a condition) the value is drawn first and a coin tossed after it
(``_sometimes``). With these rates about a third of (file, listing) pairs have a rule that
applies at 2021-10-20, and a sixth are blocked.

Strategies: ``names``, ``texts``, ``literals``, ``regexes``, ``whens``, ``atoms``,
``exprs``, ``actions``, ``steps``, ``ladders``, ``windows``, ``rules``, ``headers``,
``policy_files``, ``policy_texts``, ``assertions_and_tests``, ``files_of_tests``,
``listing_texts``, ``category_values``, ``listings``; ``default_set_decls()`` declares
the sets that ``exprs()`` refers to by default.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from dsl.model import step_info
from dsl.syntax import RESERVED
from dsl.syntax import ast as A
from dsl.syntax.format import format_file


def at_least(n: int) -> int:
    """``n`` examples, or the Hypothesis profile's number where that is more: for a test
    that asks for more than the quick default, so that the ``thorough`` profile (2,000)
    still searches it further."""
    return max(n, settings.default.max_examples)


# ---------------------------------------------------------------- vocabulary

CATEGORY_SEGMENTS = ("Electronics", "Blockchain Miners", "Blockchain Miner Accessories",
                     "Software", "Graphics Cards", "Knives", "Swords")
"""Category segments the listings and rules share."""

CATEGORY_PATTERNS = ("Blockchain Miners", "Electronics > Blockchain Miners",
                     "Blockchain Miner Accessories", "Software", "Graphics Cards", "Knives",
                     "Knives > Swords", "blockchain  miners")
"""Patterns for ``category 'X'``: single segments, runs of two, odd spacing and case."""

CATEGORY_PATHS = ("Electronics > Blockchain Miners > ASIC", "Electronics > Graphics Cards",
                  "Blockchain Miner Accessories", "Software > Mining", "Knives > Swords",
                  "Home > Knives", "ELECTRONICS>BLOCKCHAIN MINERS", "Ｓｏｆｔｗａｒｅ")
"""Listing category paths (as strings; lists are made by splitting on ``>``)."""

PHRASES = ("bitcoin", "ether", "mining rig", "比特币", "li-ion", "miner's kit", "rhino\u2019s horn", "ivory",
           "งาช้าง", " eth ")
"""Phrases for ``mentions`` and ``contains``; the listings' text is built from them."""

PLATFORMS = ("taobao", "xianyu", "aliexpress", "lazada")
COUNTRIES = ("CN", "US", "DE")
SELLERS = ("S-100", "S-200", "S-300")
SKUS = ("CM-1234", "CM-0001", "cm-1234", "XX-9", "CM-12345", "2021-10-15", "2021-10-20T08:00")
TIMEZONES = ("UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York")

REGEXES = (r"^CM-[0-9]{4}$", r"bitcoin|ether", r"(?i)antminer s[0-9]+", r"https?://x\.io/a",
           r"[A-Z]{2}-\d+", r"比特币", r"^\s*$", r"mining\s+rig", r"\bS19\b", r"o{2,}",
           r"a/b", r".", r"(S19|L7)j? pro", r"ab(c|)d")
"""RE2-valid patterns; two contain ``/`` to exercise its escape. Most spell out texts that
every match holds (``regex_syntax.required_texts``), which ``listing_texts`` holds at times,
whole or in part."""

TEXT_FIELDS: tuple[tuple[str, ...] | None, ...] = (None, ("title",), ("description",), ("tags",),
                                                     ("message",))
"""Paths for mentions/contains/matches; None is the listing's text (title, description,
tags). ``message`` is a reserved word, so it prints as a backquoted field."""

FIELDS: dict[tuple[str, ...], str] = {
    ("platform",): "platform",
    ("seller",): "seller",
    ("seller", "country"): "country",
    ("seller", "from"): "country",
    ("sku",): "sku",
    ("price",): "number",
    ("stock",): "number",
    ("listed_on",): "date",
    ("verified",): "bool",
    ("certificate",): "any",
}
"""Fields that comparisons, ``in`` and ``exists`` read, with the kind of their values.
``seller`` is a string in some listings and an object (``seller.country``) in others."""

SCHEMA_TYPES: dict[tuple[str, ...], A.TypeRef] = {
    ("platform",): A.TypeRef("one_of", tuple(A.Str(p) for p in PLATFORMS)),
    ("seller", "country"): A.TypeRef("text"),
    ("seller", "from"): A.TypeRef("text"),
    ("sku",): A.TypeRef("text"),
    ("price",): A.TypeRef("number"),
    ("stock",): A.TypeRef("number"),
    ("listed_on",): A.TypeRef("date"),
    ("verified",): A.TypeRef("bool"),
    ("certificate",): A.TypeRef("text"),
    ("message",): A.TypeRef("text"),
}
"""The field declarations of ``policy_files(schema=True)``; ``seller`` itself is left out
(a schema cannot make it both a string and an object), so such files never read it."""

SET_KINDS = ("category", "phrase", "platform", "country", "seller", "number")
"""What a set holds: category patterns, phrases, platforms, countries, sellers, numbers."""

DEFAULT_SETS: dict[str, str] = {"mining-cats": "category", "coins": "phrase",
                                "platforms": "platform", "countries": "country",
                                "sellers": "seller", "prices": "number"}
"""Set names ``exprs()`` refers to when given no ``sets``; ``default_set_decls()`` declares
them."""

PLAIN_NAMES = ("miners", "coins", "guides", "a", "b", "r1", "escalate", "ban-2021", "_x", "Rule_2")
CONTEXTUAL_WORDS = ("title", "authority", "version", "timezone", "scope", "warn", "seller",
                    "remove", "listing", "deduct", "points", "point", "restrict", "for",
                    "suspend", "account", "close", "text", "number", "bool", "date", "one",
                    "of", "list", "required", "step", "no", "at", "prior", "by", "null")
"""Words that are keywords only in some places: valid names that stress the lexer."""
ODD_NAMES = ("two words", "größe", "名前", "x y-z", "9lives")
"""Names that need backquotes although they are not keywords."""

_EFFECT_ORDER = ("block", "flag", "allow")


# ---------------------------------------------------------------- names and literals


@functools.cache
def names(*, weird: bool = False) -> st.SearchStrategy[str]:
    """Names for policies, sets, ladders and rules. Plain ``[a-z][a-z0-9_-]*`` words (never
    reserved) by default; with ``weird=True`` also contextual keywords (``title``,
    ``close``, ``step``…), reserved words and names that need backquotes (``two words``,
    ``名前``). Never contains ``.`` or a backquote."""
    plain = st.one_of(
        st.sampled_from(PLAIN_NAMES),
        st.from_regex(r"[a-z][a-z0-9_-]{0,7}", fullmatch=True).filter(lambda s: s not in RESERVED),
    )
    if not weird:
        return plain
    return st.one_of(plain, st.sampled_from(CONTEXTUAL_WORDS), st.sampled_from(sorted(RESERVED)),
                     st.sampled_from(ODD_NAMES))


@functools.cache
def texts(max_size: int = 24) -> st.SearchStrategy[str]:
    """Free text for titles, authorities, ``because`` and ``message``: letters, both quote
    characters, backslash, newline, tab, other control characters, Han, full-width letters,
    combining marks, emoji, line separators and a bidi override."""
    alphabet = st.one_of(
        st.sampled_from("ab Z0'\"\\\n\t\x00\x7f\r比特币Ａｂ\u0301é😀\u2028\u202e#`"),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    )
    return st.text(alphabet, max_size=max_size)


@functools.cache
def strs(values: tuple[str, ...]) -> st.SearchStrategy[A.Str]:
    """Str literals drawn from ``values`` (a tuple: the strategy is cached)."""
    return st.sampled_from(values).map(A.Str)


@functools.cache
def numbers() -> st.SearchStrategy[A.Num]:
    """Ints (small, negative, beyond 2**53) and finite floats (19.99, tiny, huge)."""
    return st.one_of(
        st.integers(-5, 10_000),
        st.sampled_from([0, 1000, 5000, 2**53 + 1, -(10**15), 10**21]),
        st.sampled_from([19.99, 0.5, -3.25, 5000.0, 1e-07, 1.5e20, 0.1 + 0.2]),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    ).map(A.Num)


@functools.cache
def dates() -> st.SearchStrategy[dt.date]:
    """Dates from 2021-06-01 to 2022-01-31: windows, literals and listings' dates share
    them, so that an ``at`` in autumn 2021 (the running example) falls on both sides."""
    return st.dates(dt.date(2021, 6, 1), dt.date(2022, 1, 31))


_OFFSETS = (None, dt.UTC, dt.timezone(dt.timedelta(hours=8)),
            dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=5, minutes=30)))


@functools.cache
def whens() -> st.SearchStrategy[A.When]:
    """Dates and date-times (naive, Z, +08:00, -05:00, +05:30; seconds sometimes)."""
    def dt_of(d: dt.date, h: int, m: int, s: int, tz: Any) -> A.DateTime:
        return A.DateTime(dt.datetime(d.year, d.month, d.day, h, m, s, tzinfo=tz))

    return st.one_of(
        dates().map(A.Date),
        st.builds(dt_of, dates(), st.integers(0, 23), st.sampled_from([0, 30, 59]),
                  st.sampled_from([0, 0, 7]), st.sampled_from(_OFFSETS)),
    )


@functools.cache
def literals(kind: str | None = None) -> st.SearchStrategy[A.Scalar]:
    """Scalar literals. ``kind`` (a value of FIELDS or SET_KINDS: platform, country,
    seller, sku, number, date, bool, category, phrase, any) picks the vocabulary; None
    gives every literal type, free text included."""
    by_kind: dict[str, st.SearchStrategy[Any]] = {
        "platform": strs(PLATFORMS),
        "country": strs(COUNTRIES),
        "seller": strs(SELLERS),
        "sku": strs(SKUS),
        "number": numbers(),
        "date": whens(),
        "bool": st.booleans().map(A.Bool),
        "category": strs(CATEGORY_PATTERNS),
        "phrase": strs(PHRASES),
    }
    if kind is not None and kind != "any":
        return by_kind[kind]  # type: ignore[no-any-return]
    return st.one_of(*by_kind.values(), texts().map(A.Str))


@functools.cache
def regexes() -> st.SearchStrategy[A.Regex]:
    return st.builds(A.Regex, st.sampled_from(REGEXES), st.booleans())


# ---------------------------------------------------------------- expressions


def _paths(options: Sequence[tuple[str, ...] | None]) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(options)).map(lambda p: None if p is None else A.Path(p))


def _list_of(kind: str, sets: Mapping[str, str]) -> st.SearchStrategy[A.ListExpr]:
    lit = st.lists(literals(kind), min_size=1, max_size=3).map(lambda xs: A.ListLit(tuple(xs)))
    refs = sorted(n for n, k in sets.items() if k == kind)
    if refs:
        return st.one_of(lit, st.sampled_from(refs).map(A.Ref))
    return lit


def atoms(*, sets: Mapping[str, str] | None = None,
          fields: Mapping[tuple[str, ...], str] | None = None) -> st.SearchStrategy[A.Expr]:
    """Every atom kind: Category, CategoryIn (a list or a set), Mentions, MentionsAny,
    Contains, Matches, Compare (numbers, strings, dates, date-times, booleans; never on
    ``category``), In and ``not in``, Exists, Const. ``sets`` maps set names to what they
    hold (SET_KINDS; default DEFAULT_SETS), ``fields`` the readable fields (default FIELDS)."""
    return _atoms(*_freeze(sets, fields))


_Frozen = tuple[tuple[tuple[str, str], ...], tuple[tuple[tuple[str, ...], str], ...]]


def _freeze(sets: Mapping[str, str] | None, fields: Mapping[tuple[str, ...], str] | None) -> _Frozen:
    """Hashable forms of ``sets`` and ``fields``, so that strategies are built once per
    vocabulary (building them afresh on every draw is what makes Hypothesis slow)."""
    sets = DEFAULT_SETS if sets is None else sets
    fields = FIELDS if fields is None else fields
    return tuple(sorted(sets.items())), tuple(sorted(fields.items()))


@functools.cache
def _atoms(frozen_sets: tuple[tuple[str, str], ...],
           frozen_fields: tuple[tuple[tuple[str, ...], str], ...]) -> st.SearchStrategy[A.Expr]:
    sets = dict(frozen_sets)
    fields = dict(frozen_fields)
    text_paths = _paths(TEXT_FIELDS)
    field_text = _paths([p for p in TEXT_FIELDS if p is not None])
    strategies: list[st.SearchStrategy[Any]] = [
        strs(CATEGORY_PATTERNS).map(A.Category),
        _list_of("category", sets).map(A.CategoryIn),
        st.builds(A.Mentions, text_paths, strs(PHRASES)),
        st.builds(A.MentionsAny, text_paths, _list_of("phrase", sets)),
        st.builds(A.Contains, field_text, strs(PHRASES)),
        st.builds(A.Matches, field_text, regexes()),
        st.booleans().map(A.Const),
        st.sampled_from(sorted(fields)).map(lambda p: A.Exists(A.Path(p))),
    ]
    ordered = [p for p, k in fields.items() if k in ("number", "date")]
    equal = [p for p, k in fields.items() if k not in ("any",)]
    listable = [p for p, k in fields.items() if k in SET_KINDS]
    ordering_ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    equality_ops = st.sampled_from(["==", "!="])
    if ordered:
        strategies.append(st.one_of([st.builds(A.Compare, st.just(A.Path(p)), ordering_ops, literals(fields[p]))
                                     for p in sorted(ordered)]))
    if equal:
        strategies.append(st.one_of([st.builds(A.Compare, st.just(A.Path(p)), equality_ops, literals(fields[p]))
                                     for p in sorted(equal)]))
    if listable:
        strategies.append(st.one_of([st.builds(A.In, st.just(A.Path(p)), _list_of(fields[p], sets), st.booleans())
                                     for p in sorted(listable)]))
    return st.one_of(*strategies)


def _flat(node: type, items: list[A.Expr]) -> A.Expr:
    out: list[A.Expr] = []
    for i in items:
        out.extend(i.items if isinstance(i, node) else (i,))  # type: ignore[attr-defined]
    return node(tuple(out))  # type: ignore[no-any-return]


def exprs(max_depth: int = 3, *, sets: Mapping[str, str] | None = None,
          fields: Mapping[tuple[str, ...], str] | None = None) -> st.SearchStrategy[A.Expr]:
    """Conditions: atoms combined with Not, and n-ary, flat And/Or (an And never holds an
    And directly, as the parser builds them), nested at most ``max_depth`` deep. ``sets``
    and ``fields`` as for ``atoms()``."""
    return _exprs(max_depth, *_freeze(sets, fields))


@functools.cache
def _exprs(max_depth: int, frozen_sets: tuple[tuple[str, str], ...],
           frozen_fields: tuple[tuple[tuple[str, ...], str], ...]) -> st.SearchStrategy[A.Expr]:
    base = _atoms(frozen_sets, frozen_fields)
    if max_depth <= 0:
        return base
    return _compound(max_depth, frozen_sets, frozen_fields)


@st.composite
def _compound(draw: st.DrawFn, max_depth: int, frozen_sets: tuple[tuple[str, str], ...],
              frozen_fields: tuple[tuple[tuple[str, ...], str], ...]) -> A.Expr:
    # An atom is drawn first and the shape chosen after (see _sometimes): half of the
    # conditions are single atoms, which keeps them satisfiable; the shape shrinks to one.
    first = draw(_atoms(frozen_sets, frozen_fields))
    shape = draw(st.integers(0, 5))
    if shape <= 2:
        return first
    sub = _exprs(max_depth - 1, frozen_sets, frozen_fields)
    if shape == 3:
        return A.Not(draw(st.one_of(st.just(first), sub)))
    items = [first, *draw(st.lists(sub, min_size=1, max_size=2))]
    return _flat(A.And if shape == 4 else A.Or, items)


def default_set_decls() -> list[A.SetDecl]:
    """Declarations of DEFAULT_SETS, so that ``exprs()`` refer to declared sets."""
    values = {"category": ("Blockchain Miners", "Software"), "phrase": ("bitcoin", "ether", "比特币"),
              "platform": ("taobao", "xianyu"), "country": ("CN",), "seller": ("S-100",)}
    decls = []
    for name, kind in DEFAULT_SETS.items():
        items: tuple[A.Scalar, ...] = ((A.Num(10), A.Num(5000)) if kind == "number"
                                       else tuple(A.Str(v) for v in values[kind]))
        decls.append(A.SetDecl(A.Ref(name), items))
    return decls


# ---------------------------------------------------------------- penalties


@functools.cache
def actions(*, weird_names: bool = False) -> st.SearchStrategy[A.Action]:
    durations = st.sampled_from([12, 24, 36, 168, 336, 720]).map(A.Duration)
    functions = names(weird=True) if weird_names else st.sampled_from(["listing", "selling", "promotion"])
    return st.one_of(
        st.just(A.Action("warn")),
        st.just(A.Action("remove")),
        st.integers(1, 12).map(lambda n: A.Action("deduct", points=n)),
        st.builds(lambda f, d: A.Action("restrict", function=f, duration=d), functions, durations),
        durations.map(lambda d: A.Action("suspend", duration=d)),
        st.just(A.Action("close")),
    )


@functools.cache
def steps(*, weird_names: bool = False) -> st.SearchStrategy[A.Step]:
    """A penalty step of one to three actions."""
    return st.lists(actions(weird_names=weird_names), min_size=1, max_size=3).map(lambda a: A.Step(tuple(a)))


def ladders(name: str = "escalate", *, weird_names: bool = False) -> st.SearchStrategy[A.LadderDecl]:
    """A ladder of one to four steps in non-decreasing severity (P212 never fires)."""
    return st.lists(steps(weird_names=weird_names), min_size=1, max_size=4).map(
        lambda ss: A.LadderDecl(A.Ref(name), tuple(sorted(ss, key=lambda s: step_info(s).severity))))


# ---------------------------------------------------------------- rules


@st.composite
def windows(draw: st.DrawFn) -> tuple[A.When | None, A.When | None]:
    """(from, until), either may be None; when both are present, until is at least two
    days after from, whatever the offsets and the timezone."""
    kind = draw(st.sampled_from(["none", "none", "from", "until", "both"]))
    first = draw(whens())
    if kind == "none":
        return None, None
    if kind == "from":
        return first, None
    if kind == "until":
        return None, first
    later = draw(st.integers(2, 90))
    day = (first.value if isinstance(first, A.Date) else first.value.date()) + dt.timedelta(days=later)
    second = draw(st.one_of(st.just(A.Date(day)), whens().map(lambda w: _move_to(w, day))))
    return first, second


def _move_to(w: A.When, day: dt.date) -> A.When:
    if isinstance(w, A.Date):
        return A.Date(day)
    return A.DateTime(w.value.replace(year=day.year, month=day.month, day=day.day))


def _sometimes(draw: st.DrawFn, strategy: st.SearchStrategy[Any], k: int, n: int) -> Any:
    """A value of ``strategy`` k times in n, else None (which is what it shrinks to).

    The value is drawn before the coin is tossed: Hypothesis prefers choices whose
    continuations it has not explored yet, so ``one_of(none(), s)`` yields far more ``s``
    than one time in two, but a coin tossed after the draw stays fair."""
    value = draw(strategy)
    return value if draw(st.integers(0, n - 1)) >= n - k else None


@st.composite
def rules(draw: st.DrawFn, name: str | None | bool = True, *, effect: str | None = None,
          sets: Mapping[str, str] | None = None, ladder_names: Sequence[str] = (),
          overridable: Sequence[str] = (), fields: Mapping[tuple[str, ...], str] | None = None,
          max_depth: int = 2, weird_names: bool = False) -> A.Rule:
    """One rule. ``name``: a string to use, True to draw one, False for an unnamed rule,
    None to draw either. ``effect`` is drawn (``allow`` only when ``overridable`` names
    block/flag rules) unless given. A block rule may get a penalty: one of ``ladder_names``
    or an inline step. An allow overrides one or more of ``overridable``."""
    if name is True or (name is None and draw(st.booleans())):
        rule_name: A.Ref | None = A.Ref(draw(names(weird=weird_names)))
    elif isinstance(name, str):
        rule_name = A.Ref(name)
    else:
        rule_name = None
    if effect is None:
        effect = draw(st.sampled_from(_EFFECT_ORDER if overridable else _EFFECT_ORDER[:2]))
    from_, until = draw(windows())
    cond = exprs(max_depth, sets=sets, fields=fields)
    small = exprs(min(max_depth, 1), sets=sets, fields=fields)
    # few clauses, so that rules often apply
    selector = _sometimes(draw, cond, 3, 4)
    if_ = _sometimes(draw, small, 1, 4)
    unless = _sometimes(draw, small, 1, 4)
    penalty: A.Penalty | None = None
    if effect == "block" and draw(st.integers(0, 1)):
        options: list[st.SearchStrategy[Any]] = [steps(weird_names=weird_names).map(A.PenaltyStep)]
        if ladder_names:
            options.append(st.sampled_from(list(ladder_names)).map(lambda n: A.PenaltyLadder(A.Ref(n))))
        penalty = draw(st.one_of(*options))
    overrides: tuple[A.Ref, ...] = ()
    if effect == "allow":
        if not overridable:
            raise ValueError("an allow rule needs overridable rule names")
        chosen = draw(st.lists(st.sampled_from(list(overridable)), min_size=1, max_size=2, unique=True))
        overrides = tuple(A.Ref(n) for n in chosen)
    because = _sometimes(draw, texts().map(A.Str), 1, 3)
    message = _sometimes(draw, texts().map(A.Str), 1, 3)
    return A.Rule(rule_name, effect, from_, until, selector, if_, unless, penalty, overrides, because, message)


# ---------------------------------------------------------------- files


@st.composite
def headers(draw: st.DrawFn, name: str | None = None, *, sets: Mapping[str, str] | None = None,
            fields: Mapping[tuple[str, ...], str] | None = None) -> A.Header:
    """A ``policy`` header; clauses in the formatter's canonical order (title,
    authority…, version, timezone, scope), each optional, so that it survives a
    format/parse round trip unchanged."""
    clauses: list[A.Clause] = []
    if draw(st.booleans()):
        clauses.append(A.Clause("title", A.Str(draw(texts()))))
    for a in draw(st.lists(texts(), max_size=2)):
        clauses.append(A.Clause("authority", A.Str(a)))
    if draw(st.booleans()):
        clauses.append(A.Clause("version", A.Str(draw(st.sampled_from(["1", "2021-10", "v0.2"])))))
    if draw(st.booleans()):
        clauses.append(A.Clause("timezone", A.Str(draw(st.sampled_from(TIMEZONES)))))
    if draw(st.integers(0, 3)) == 0:
        scope = draw(st.one_of(
            st.lists(strs(PLATFORMS), min_size=1, max_size=3, unique=True).map(
                lambda ps: A.In(A.Path(("platform",)), A.ListLit(tuple(ps)))),
            exprs(1, sets=sets, fields=fields)))
        clauses.append(A.Clause("scope", scope))
    policy = name if name is not None else draw(names())
    return A.Header(A.Ref(policy), tuple(clauses))


@st.composite
def policy_files(draw: st.DrawFn, *, schema: bool | None = False, mixed_order: bool = False,
                 max_rules: int = 6, weird_names: bool = False, max_depth: int = 2) -> A.File:
    """A well-formed policy file (see the module docstring): a header, zero to three sets,
    zero to two ladders, field declarations when ``schema`` (None: sometimes), and one to
    ``max_rules`` rules with unique names, allows overriding block/flag rules of the file.
    Statements come sets, ladders, fields, rules unless ``mixed_order`` shuffles them.
    ``weird_names`` draws names that need backquotes or are contextual keywords."""
    if schema is None:
        schema = draw(st.booleans())
    fields = {p: k for p, k in FIELDS.items() if not (schema and p == ("seller",))}
    set_kinds = draw(st.lists(st.sampled_from(SET_KINDS), max_size=3))
    n_ladders = draw(st.integers(0, 2))
    decl_names = draw(st.lists(names(weird=weird_names), min_size=len(set_kinds) + n_ladders,
                               max_size=len(set_kinds) + n_ladders, unique=True))
    sets = dict(zip(decl_names[: len(set_kinds)], set_kinds, strict=True))
    ladder_names = decl_names[len(set_kinds):]

    set_decls = []
    for set_name, kind in sets.items():
        items = draw(st.lists(literals(kind), min_size=1, max_size=4, unique_by=_literal_key))
        set_decls.append(A.SetDecl(A.Ref(set_name), tuple(items)))
    ladder_decls = [draw(ladders(n, weird_names=weird_names)) for n in ladder_names]
    # a quarter of the fields required: an absent one is an input error
    field_decls = [A.FieldDecl(A.Path(p), t, required=draw(st.sampled_from([False, False, False, True])))
                   for p, t in SCHEMA_TYPES.items()] if schema else []

    n_rules = draw(st.integers(1, max_rules))
    rule_names = draw(st.lists(names(weird=weird_names), min_size=n_rules, max_size=n_rules, unique=True))
    effects = draw(st.lists(st.sampled_from(_EFFECT_ORDER), min_size=n_rules, max_size=n_rules))
    if all(e == "allow" for e in effects):
        effects[0] = "block"
    overridable = [n for n, e in zip(rule_names, effects, strict=True) if e != "allow"]
    rule_list = [
        draw(rules(n, effect=e, sets=sets, ladder_names=ladder_names, fields=fields,
                   overridable=overridable if e == "allow" else (), max_depth=max_depth,
                   weird_names=weird_names))
        for n, e in zip(rule_names, effects, strict=True)
    ]
    statements: list[A.Statement] = [*set_decls, *ladder_decls, *field_decls, *rule_list]
    if mixed_order:
        statements = list(draw(st.permutations(statements)))
    header = draw(headers(sets=sets, fields=fields))
    return A.File(f"{header.name.name}.policy", header, tuple(statements))


def _literal_key(lit: A.Scalar) -> Any:
    return (type(lit).__name__, repr(lit.value))


def policy_texts(**kwargs: Any) -> st.SearchStrategy[str]:
    """The canonical text of ``policy_files(**kwargs)``."""
    return policy_files(**kwargs).map(format_file)


# ---------------------------------------------------------------- test files


@st.composite
def assertions_and_tests(draw: st.DrawFn, rule_ids: Sequence[str] = ("p.miners", "coins"),
                    ladder_names: Sequence[str] = ("escalate",)) -> A.TestCase | A.Assertion:
    """A ``test`` (given object with nested objects, arrays and nulls; at; prior; expect
    with ``by`` and a penalty form) or an ``assert``. For formatter and parser tests: the
    names need not exist."""
    if draw(st.booleans()):
        w_from, w_until = draw(windows())
        return A.Assertion(A.Str(draw(texts())), draw(st.sampled_from(["always", "never"])),
                           draw(st.sampled_from(_EFFECT_ORDER)), draw(exprs(2)), w_from, w_until)
    given = draw(_objects(2))
    penalty = draw(st.one_of(
        st.none(), st.just(A.ExpectPenalty(none=True)),
        st.integers(1, 4).map(lambda n: A.ExpectPenalty(None, n)),
        st.builds(lambda ladder, n: A.ExpectPenalty(A.Ref(ladder), n), st.sampled_from(list(ladder_names)),
                  st.integers(1, 4)),
    ))
    by = tuple(A.Ref(r) for r in draw(st.lists(st.sampled_from(list(rule_ids)), max_size=2, unique=True)))
    expect = A.Expect(draw(st.sampled_from(_EFFECT_ORDER)), by, penalty)
    return A.TestCase(A.Str(draw(texts())), given, draw(whens()), expect, draw(st.none() | st.integers(0, 5)))


def _objects(depth: int) -> st.SearchStrategy[A.ObjectLit]:
    keys = st.one_of(st.sampled_from(["category", "title", "platform", "price", "seller", "a b", "from", "名"]),
                     texts(6))
    scalar = st.one_of(literals(), st.just(A.Null()))
    value: st.SearchStrategy[Any] = scalar
    if depth > 0:
        value = st.one_of(scalar, _objects(depth - 1),
                          st.lists(scalar, max_size=3).map(lambda xs: A.ArrayLit(tuple(xs))))
    return st.lists(st.tuples(keys, value), max_size=4, unique_by=lambda kv: kv[0]).map(
        lambda items: A.ObjectLit(tuple(items)))


@st.composite
def files_of_tests(draw: st.DrawFn, max_size: int = 4) -> A.File:
    """A ``*_test.policy`` file: no header, sometimes ``tests for …``, one to ``max_size``
    tests and asserts."""
    scope = draw(st.none() | st.lists(names(weird=True), min_size=1, max_size=3))
    tests_for = A.TestsFor(tuple(A.Ref(n) for n in scope)) if scope is not None else None
    stmts = draw(st.lists(assertions_and_tests(), min_size=1, max_size=max_size))
    return A.File("generated_test.policy", None, tuple(stmts), tests_for=tests_for)


# ---------------------------------------------------------------- listings

_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"}


@functools.cache
def _variants(phrase: str) -> st.SearchStrategy[str]:
    """A phrase as merchants write it: as is, upper case, full-width, with a combining
    mark, possessive, glued to a word character (``ethernet``), inside Han or Thai text,
    and as merchants hide it: a zero-width space, joiner or soft hyphen inside it, other
    apostrophes (U+2019, U+02BC, U+FF07), dashes and a minus for its hyphen, runs of white
    space for its spaces."""
    middle = len(phrase) // 2
    return st.sampled_from([
        phrase,
        phrase.upper(),
        phrase.title(),
        "".join(_FULLWIDTH.get(c, c) for c in phrase),
        phrase + "\u0301",
        phrase + "'s",
        phrase + "net",
        "二手" + phrase + "出售",
        "象牙" + phrase + "摆件",
        "ขาย" + phrase,
        phrase.replace(" ", "  \t"),
        phrase.replace(" ", "\u3000 "),
        phrase[:middle] + "\u200b" + phrase[middle:],
        phrase[:middle] + "\u00ad" + phrase[middle:],
        phrase[:middle] + "\u200d" + phrase[middle:] + "\ufe0f",
        phrase.replace("'", "\u2019").replace("\u2019", "\u02bc"),
        phrase.replace("\u2019", "'").replace("'", "\uff07"),
        phrase.replace("-", "\u2010"),
        phrase.replace("-", "\u2013").replace(" ", "\u2212"),
        phrase + "\u2019s",
    ])


@functools.cache
def listing_texts() -> st.SearchStrategy[str]:
    """Listing text built from PHRASES (in variants), filler words, punctuation and a bit
    of arbitrary unicode."""
    phrase = st.sampled_from(PHRASES).flatmap(_variants)
    piece = st.one_of(
        phrase,
        phrase,
        st.sampled_from(["Antminer S19", "wallet", "(ETH)", "cable", "GPU", "全新", "–", "!", "Li-ion battery",
                         "\u200b", "\u00ad", "\u2019", "\u02bc", "\uff07", "\u2015", "\u2212", "  ", "象牙",
                         "ขาย", "ﬁne", "㎏", "CM-2041", "CM-", "https://x.io/a", "AB-12", "S19j pro", "L7 pro",
                         "S19 pr", "abd", "abcd", "a/b", "oo"]),
        st.text(max_size=4),
    )
    return st.lists(piece, max_size=4).map(" ".join)


def category_values(*, wrong_types: bool = True) -> st.SearchStrategy[Any]:
    """A listing's category: a ``>``-joined string or a list of segments (odd case and
    spacing included); with ``wrong_types`` sometimes a number or an object."""
    path = st.sampled_from(CATEGORY_PATHS + CATEGORY_SEGMENTS)
    options = [path, path.map(lambda p: [s.strip() for s in p.split(">")]), path.map(lambda p: p.replace(" > ", ">"))]
    if wrong_types:
        options.append(st.sampled_from([42, {"name": "Software"}, ["Software", 7]]))
    return st.one_of(*options)


def listings(*, wrong_types: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """JSON-like listings with the fields the generated policies read (any may be missing
    or null): category, title, description, tags, platform, seller (a string, or an object
    with country and `from`), sku, price, stock, listed_on (ISO dates and date-times),
    verified, certificate, message. With ``wrong_types`` (the default) a field sometimes
    holds a value of the wrong type (a numeric string for price, a list for platform, an
    invalid date…)."""
    def maybe_wrong(good: st.SearchStrategy[Any], *bad: Any) -> st.SearchStrategy[Any]:
        if not wrong_types:
            return good
        return st.one_of(good, good, good, good, good, st.sampled_from([*bad, None]))

    seller_obj = st.fixed_dictionaries({}, optional={
        "country": maybe_wrong(st.sampled_from(COUNTRIES), 86, ["CN"]),
        "from": maybe_wrong(st.sampled_from(COUNTRIES), True),
        "id": st.sampled_from(SELLERS),
    })
    seller = seller_obj if not wrong_types else st.one_of(seller_obj, st.sampled_from(SELLERS), st.just(None))
    iso = st.one_of(
        dates().map(dt.date.isoformat),
        st.builds(lambda d, h, tz: dt.datetime(d.year, d.month, d.day, h, tzinfo=tz).isoformat(),
                  dates(), st.integers(0, 23), st.sampled_from(_OFFSETS)),
        dates().map(lambda d: d.isoformat() + "T08:00:00Z"),
    )
    number = st.one_of(st.integers(-10, 10_000), st.sampled_from([0, 10, 5000, 5001, 2**53 + 1, 10**21]),
                       st.floats(-1e4, 1e6, allow_nan=False, allow_infinity=False))
    core = {
        "category": category_values(wrong_types=wrong_types),
        "title": maybe_wrong(listing_texts(), 7, ["bitcoin"]),
        "description": maybe_wrong(listing_texts(), {"text": "bitcoin"}),
        "platform": maybe_wrong(st.sampled_from(PLATFORMS), "Taobao", ["taobao"], 1),
        "seller": seller,
        "price": maybe_wrong(number, "abc", "100", True),
    }
    extra = {
        "tags": maybe_wrong(st.lists(listing_texts(), max_size=3), "bitcoin", [1, "ether"]),
        "sku": maybe_wrong(st.sampled_from(SKUS), 1234),
        "stock": maybe_wrong(number, "many"),
        "listed_on": maybe_wrong(iso, "2021-02-30", "yesterday", 20211008),
        "verified": maybe_wrong(st.booleans(), "true", 1),
        "certificate": maybe_wrong(st.sampled_from(["C-1", "CE-2021"]), {}),
        "message": maybe_wrong(listing_texts(), 3),
    }
    # the core fields are present three times in four, the others half the time; an
    # absent field shrinks away first
    drawn = st.fixed_dictionaries({k: st.one_of(st.just(_ABSENT), v, v, v) for k, v in core.items()},
                                  optional=extra)
    return drawn.map(lambda d: {k: v for k, v in d.items() if v is not _ABSENT})


_ABSENT = object()
