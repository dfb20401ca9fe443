"""The SMT model of what ``decide`` is given: a listing, ``at`` and ``prior_violations``.

Every field path that some atom reads (and every prefix of one, and every declared field)
is a tagged union: ``kind`` is ABSENT (missing, null, or under something that is not an
object), STR (a string), LIST (a list: its strings are the pieces of text; other elements
are ignored by every atom), NUM (a finite int or float), BOOL, or OBJ (any other value: an
object, a list compared with ``==``…). Each atom is false on the kinds it cannot read, which
is exactly the evaluator's rule for absent and ill-typed values.

Per kind, the payload:

* STR: ``sel``, which of the raw string literals the set compares the field with it equals
  (0: none of them); ``isdate`` whether it reads as an ISO date, and then the instant
  (``dt``, microseconds) or, for a date or date-time without an offset, the wall-clock
  reading (``dnaive``, ``dl``) that each rule reads in its own timezone.
* STR and LIST: ``s[pred]``, whether some piece satisfies a text predicate
  (``dsl.analysis.textpreds``), and ``has_piece``.
* NUM: ``num`` (a Real: numbers compare exactly, as Python compares int and float).
* BOOL: ``boolv``.

The category path is modelled by one Boolean per pattern (``cat``), related by the
implications "the pattern j contains the pattern i as a contiguous run": a path can hold
any set of patterns closed under them (join the patterns with a segment that is in no
pattern), so this is exact, and `Toys > Slime` and `Slime` co-occur.

``at`` is an aware instant (``at_t``) or, when rules of several timezones are in question,
possibly a naive reading (``at_naive``, ``at_l``) that each rule reads in its own timezone.
``prior`` is an Int >= 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import z3

from .. import text as T
from ..evaluate import values as RT
from ..model import PolicySet, RuleInfo, local_instant
from ..syntax import ast as A
from . import timeline as TL
from .textpreds import Pred, PredTable, holds_on, regex_reason

ABSENT, STR, LIST, NUM, BOOL, OBJ = range(6)
KIND_NAMES = ("absent", "text", "list", "number", "bool", "object")
POOLED: tuple[tuple[str, ...], ...] = (("title",), ("description",), ("tags",))


def num_value(v: int | float) -> Fraction:
    return Fraction(v)


def z3_num(q: Fraction) -> z3.ArithRef:
    return z3.RealVal(f"{q.numerator}/{q.denominator}")


# --------------------------------------------------------------------------- atoms


@attrs.frozen
class AtomInfo:
    """An atom's encoding and what it touches."""

    expr: z3.BoolRef = attrs.field(eq=False)
    fields: frozenset[tuple[str, ...]]
    preds: frozenset[tuple[tuple[str, ...], Pred]]
    cats: frozenset[tuple[str, ...]]
    date_zones: frozenset[tuple[tuple[str, ...], str]]
    unsupported: tuple[str, ...] = ()
    seq: int = attrs.field(default=0, eq=False)  # creation order: a stable order for constraints


def literal_instant_us(lit: A.Date | A.DateTime, tz: ZoneInfo) -> int | None:
    inst = RT.instant_in(lit.value, tz)
    return None if inst is None else TL.to_us(inst)


def atom_nodes(expr: A.Expr) -> Iterator[A.Expr]:
    """The atoms of an expression (set references already resolved)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (A.And, A.Or)):
            stack.extend(node.items)
        elif isinstance(node, A.Not):
            stack.append(node.operand)
        else:
            yield node


def _items(items: A.ListExpr) -> tuple[A.Scalar, ...]:
    if not isinstance(items, A.ListLit):
        raise TypeError("set references must be resolved (use the checked model's expressions)")
    return items.items


def _strs(items: A.ListExpr) -> list[A.Str]:
    return [i for i in _items(items) if isinstance(i, A.Str)]


def _patterns(node: A.Category | A.CategoryIn) -> list[A.Str]:
    return [node.pattern] if isinstance(node, A.Category) else _strs(node.items)


@attrs.define
class _Touched:
    """What an atom's encoding touches, gathered while it is built (``AtomInfo``)."""

    fields: set[tuple[str, ...]] = attrs.Factory(set)
    preds: set[tuple[tuple[str, ...], Pred]] = attrs.Factory(set)
    cats: set[tuple[str, ...]] = attrs.Factory(set)
    zones: set[tuple[tuple[str, ...], str]] = attrs.Factory(set)
    unsupported: list[str] = attrs.Factory(list)


def _register_literal(f: Field, lit: A.Scalar) -> None:
    """Note a literal compared with the field: its kind is used, a text is one of the
    field's literals, a number one of its numbers."""
    if isinstance(lit, A.Str):
        f.text_used = True
        f.literal_index(lit.value)
    elif isinstance(lit, A.Num):
        f.num_used = True
        if num_value(lit.value) not in f.num_literals:
            f.num_literals.append(num_value(lit.value))
    elif isinstance(lit, A.Bool):
        f.bool_used = True
    else:
        f.date_used = True


def _date_dependent(node: A.Expr) -> bool:
    if isinstance(node, A.Compare):
        return isinstance(node.value, (A.Date, A.DateTime))
    if isinstance(node, A.In):
        return any(isinstance(i, (A.Date, A.DateTime)) for i in _items(node.items))
    return False


def _naive_date(text: str) -> bool:
    parsed = RT.parse_iso(text)
    return parsed is not None and not (isinstance(parsed, dt.datetime) and parsed.tzinfo is not None)


EDGE_US = 2 * 24 * 3600 * 10**6
"""How near the ends of the solver's calendar (``timeline.MIN_US``, ``MAX_US``, a day
inside Python's) a date is treated as out of its reach."""

NEAR_THE_ENDS = ("a date near the ends of the calendar (the years 1 and 9999) is compared here, where the "
                 "solver's dates stop a day short so that every one reads in every timezone")
MIDNIGHT_SKIPPED = ("a date without a time is compared here whose midnight a clock change skips in one of the "
                    "policies' timezones: the day starts at the change, which the solver's reading of a date "
                    "as its midnight misses")


def edge_reason(value: dt.date | dt.datetime, zones: Iterable[ZoneInfo]) -> str | None:
    """Why the solver may not stand for ``value`` (a date a policy names) exactly, or None:
    near the ends of its calendar, or a date-only value whose day starts later than its
    midnight in one of ``zones`` (``model.local_instant``: the first instant of the day)."""
    naive = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    us = TL.naive_to_us(naive.replace(tzinfo=None))
    if not TL.MIN_US + EDGE_US <= us <= TL.MAX_US - EDGE_US:
        return NEAR_THE_ENDS
    if not isinstance(value, dt.datetime):
        for tz in zones:
            if local_instant(value, tz) != naive.replace(tzinfo=tz, fold=0).astimezone(dt.UTC):
                return MIDNIGHT_SKIPPED
    return None


def atom_key(node: A.Expr, tz: ZoneInfo) -> tuple[Any, str | None]:
    return (node, str(tz.key) if _date_dependent(node) else None)


# --------------------------------------------------------------------------- fields


class Field:
    """The z3 variables of one field path."""

    def __init__(self, path: tuple[str, ...]):
        self.path = path
        name = ".".join(path)
        self.kind = z3.Int(f"kind[{name}]")
        self.sel = z3.Int(f"sel[{name}]")
        self.num = z3.Real(f"num[{name}]")
        self.boolv = z3.Bool(f"bool[{name}]")
        self.isdate = z3.Bool(f"isdate[{name}]")
        self.dt = z3.Int(f"dt[{name}]")
        self.dnaive = z3.Bool(f"dnaive[{name}]")
        self.dl = z3.Int(f"dl[{name}]")
        self.has_piece = z3.Bool(f"haspiece[{name}]")
        self.literals: list[str] = []  # raw strings compared with == / in; sel = index + 1
        self.num_literals: list[Fraction] = []
        self.one_of: tuple[str, ...] | None = None
        self.s: dict[Pred, z3.BoolRef] = {}
        self.text_used = False
        self.date_used = False
        self.num_used = False
        self.bool_used = False

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def literal_index(self, value: str) -> int:
        if value not in self.literals:
            self.literals.append(value)
        return self.literals.index(value) + 1

    def naive_literal(self) -> bool:
        """Whether one of the strings compared with the field reads as a date or
        date-time without an offset: chosen, the field holds that wall-clock reading
        (``dnaive``), whatever the timezones the field is read in."""
        return any(_naive_date(lit) for lit in self.literals)

    def pred(self, p: Pred) -> z3.BoolRef:
        if p not in self.s:
            self.s[p] = z3.Bool(f"s[{self.name}]{p.kind}:{p.text!r}{'/i' if p.icase else ''}")
        return self.s[p]


class World:
    """The variables, the atom encodings and the constraint groups of one analysis."""

    def __init__(self, ps: PolicySet, extra: Iterable[tuple[A.Expr, ZoneInfo]] = ()):
        self.ps = ps
        self.fields: dict[tuple[str, ...], Field] = {}
        self.cats: dict[tuple[str, ...], z3.BoolRef] = {}
        self.segment_spelling: dict[str, str] = {}
        self.at_t = z3.Int("at")
        self.at_naive = z3.Bool("at_naive")
        self.at_l = z3.Int("at_local")
        self.prior = z3.Int("prior")
        self._atoms: dict[tuple[Any, str | None], AtomInfo] = {}
        self._field_cache: dict[tuple[str, ...], list[z3.BoolRef]] = {}
        self._pred_cache: dict[tuple[tuple[str, ...], Pred], list[z3.BoolRef]] = {}
        self._pending: list[tuple[A.Expr, ZoneInfo]] = []
        # Register every atom first: base constraints need every literal of a field.
        sources: list[tuple[A.Expr, ZoneInfo]] = [(r.condition, r.tz) for r in ps.rules]
        sources.extend(extra)
        self.zones = sorted({tz for _, tz in sources} | {ZoneInfo(p.timezone) for p in ps.policies}, key=str)
        self.edges: dict[tuple[str, ...], str] = {}
        """Fields compared with a date the solver may not stand for exactly (``edge_reason``):
        a question that reads one is not proved (the solver's "unsat" is P399)."""
        for path, info in ps.schema.items():
            if path == ("category",):
                continue  # the category path is modelled by the `cat` variables
            f = self.field(path)
            if info.kind == "one_of":
                f.one_of = info.values
                for v in info.values:
                    f.literal_index(v)
        preds: set[Pred] = set()
        for expr, tz in sources:
            for node in atom_nodes(expr):
                self._register(node, tz, preds)
        self.table = PredTable.build(preds)
        self._cat_implied = self._implied_patterns()
        for expr, tz in sources:
            for node in atom_nodes(expr):
                self.atom(node, tz)

    # ------------------------------------------------------------------ registry

    def field(self, path: tuple[str, ...]) -> Field:
        f = self.fields.get(path)
        if f is None:
            f = self.fields[path] = Field(path)
            for i in range(1, len(path)):
                self.field(path[:i])
        return f

    def _register(self, node: A.Expr, tz: ZoneInfo, preds: set[Pred]) -> None:
        if isinstance(node, (A.Category, A.CategoryIn)):
            self._register_patterns(node)
        elif isinstance(node, (A.Mentions, A.MentionsAny, A.Contains, A.Matches)):
            for path, pred in self._preds_of(node):
                f = self.field(path)
                f.text_used = True
                f.pred(pred)
                preds.add(pred)
        elif isinstance(node, (A.Compare, A.In)):
            f = self.field(node.path.parts)
            for lit in (node.value,) if isinstance(node, A.Compare) else _items(node.items):
                _register_literal(f, lit)
        elif isinstance(node, A.Exists):
            self.field(node.path.parts)

    def _register_patterns(self, node: A.Category | A.CategoryIn) -> None:
        for lit in _patterns(node):
            segs = T.pattern_segments(lit.value)
            raw = [s.strip() for s in lit.value.split(">") if s.strip()]
            for norm, orig in zip(segs, raw if len(raw) == len(segs) else segs, strict=True):
                self.segment_spelling.setdefault(norm, " ".join(orig.split()))
            if segs:
                self.cats.setdefault(segs, z3.Bool(f"cat{list(segs)!r}"))

    def _preds_of(self, node: A.Expr) -> list[tuple[tuple[str, ...], Pred]]:
        out: list[tuple[tuple[str, ...], Pred]] = []
        if isinstance(node, (A.Mentions, A.MentionsAny)):
            phrases = [node.phrase] if isinstance(node, A.Mentions) else _strs(node.items)
            paths = POOLED if node.path is None else (node.path.parts,)
            for lit in phrases:
                text = T.normalize_phrase(lit.value)
                if not text:
                    continue
                out.extend((p, Pred("mention", text)) for p in paths)
        elif isinstance(node, A.Contains):
            out.append((node.path.parts, Pred("contains", T.normalize_needle(node.needle.value))))
        elif isinstance(node, A.Matches):
            out.append((node.path.parts, Pred("regex", node.regex.pattern, node.regex.ignore_case)))
        return out

    # ------------------------------------------------------------------ atoms

    def atom(self, node: A.Expr, tz: ZoneInfo) -> AtomInfo:
        key = atom_key(node, tz)
        found = self._atoms.get(key)
        if found is None:
            found = self._atoms[key] = self._encode_atom(node, tz)
        return found

    def expr(self, e: A.Expr, tz: ZoneInfo, atoms: set[AtomInfo] | None = None) -> z3.BoolRef:
        """A condition as a z3 formula; the atoms it uses are added to ``atoms``."""
        if isinstance(e, A.And):
            return z3.And(*[self.expr(i, tz, atoms) for i in e.items]) if e.items else z3.BoolVal(True)
        if isinstance(e, A.Or):
            return z3.Or(*[self.expr(i, tz, atoms) for i in e.items]) if e.items else z3.BoolVal(False)
        if isinstance(e, A.Not):
            return z3.Not(self.expr(e.operand, tz, atoms))
        info = self.atom(e, tz)
        if atoms is not None:
            atoms.add(info)
        return info.expr

    def _encode_atom(self, node: A.Expr, tz: ZoneInfo) -> AtomInfo:
        touched = _Touched()
        e = self._encode(node, tz, touched)
        return AtomInfo(e, frozenset(touched.fields), frozenset(touched.preds), frozenset(touched.cats),
                        frozenset(touched.zones), tuple(touched.unsupported), len(self._atoms))

    def _encode(self, node: A.Expr, tz: ZoneInfo, touched: _Touched) -> z3.BoolRef:
        if isinstance(node, A.Const):
            return z3.BoolVal(node.value)
        if isinstance(node, (A.Category, A.CategoryIn)):
            return self._encode_patterns(node, touched)
        if isinstance(node, (A.Mentions, A.MentionsAny, A.Contains, A.Matches)):
            return self._encode_text(node, touched)
        if isinstance(node, (A.Compare, A.In, A.Exists)):
            f = self.field(node.path.parts)
            touched.fields.add(f.path)
            if isinstance(node, A.Compare):
                return self._compare(f, node.op, node.value, tz, touched.zones)
            if isinstance(node, A.In):
                return self._in(f, _items(node.items), node.negated, tz, touched.zones)
            return f.kind != ABSENT
        raise TypeError(f"not an atom: {type(node).__name__}")

    def _encode_patterns(self, node: A.Category | A.CategoryIn, touched: _Touched) -> z3.BoolRef:
        terms = []
        for lit in _patterns(node):
            segs = T.pattern_segments(lit.value)
            if segs:
                touched.cats.add(segs)
                terms.append(self.cats[segs])
        if len(terms) == 1:
            return terms[0]  # the same formula; z3.Or of one term costs as much as the rest
        return z3.Or(*terms) if terms else z3.BoolVal(False)

    def _encode_text(self, node: A.Mentions | A.MentionsAny | A.Contains | A.Matches,
                     touched: _Touched) -> z3.BoolRef:
        terms = []
        for path, pred in self._preds_of(node):
            f = self.field(path)
            touched.fields.add(path)
            touched.preds.add((path, pred))
            if pred.kind == "regex":
                reason = regex_reason(pred.text, pred.icase)
                if reason is not None:
                    touched.unsupported.append(
                        f"`matches /{pred.text}/` uses {reason}, which the analysis does not translate")
            terms.append(f.pred(pred))
        return z3.Or(*terms) if terms else z3.BoolVal(False)

    def _eq(self, f: Field, lit: A.Scalar, tz: ZoneInfo, zones: set[tuple[tuple[str, ...], str]]) -> z3.BoolRef:
        """The value equals the literal (and is of its kind)."""
        if isinstance(lit, A.Str):
            return z3.And(f.kind == STR, f.sel == f.literal_index(lit.value))
        if isinstance(lit, A.Bool):
            return z3.And(f.kind == BOOL, f.boolv == lit.value)
        if isinstance(lit, A.Num):
            return z3.And(f.kind == NUM, f.num == z3_num(num_value(lit.value)))
        return self._date_cmp(f, "==", lit, tz, zones)

    def _date_cmp(self, f: Field, op: str, lit: A.Date | A.DateTime, tz: ZoneInfo,
                  zones: set[tuple[tuple[str, ...], str]]) -> z3.BoolRef:
        if edge_reason(lit.value, ()) is not None:
            self.edges.setdefault(f.path, NEAR_THE_ENDS)
        inst = literal_instant_us(lit, tz)
        if inst is None:
            return z3.BoolVal(False)
        zones.add((f.path, str(tz.key)))
        aware = self.instant_in(f.dt, TL.op_interval(op, inst))
        local: list[TL.Interval] = []
        for lo, hi in TL.op_interval(op, inst):
            local.extend(TL.local_preimage(str(tz.key), lo, hi))
        naive = self.instant_in(f.dl, TL.merge(local))
        return z3.And(f.kind == STR, f.isdate, z3.If(f.dnaive, naive, aware))

    @staticmethod
    def instant_in(var: z3.ArithRef, intervals: Iterable[TL.Interval]) -> z3.BoolRef:
        terms = []
        for lo, hi in intervals:
            parts = []
            if lo is not None:
                parts.append(var >= lo)
            if hi is not None:
                parts.append(var < hi)
            terms.append(z3.And(*parts) if parts else z3.BoolVal(True))
        return z3.Or(*terms) if terms else z3.BoolVal(False)

    def _compare(self, f: Field, op: str, lit: A.Scalar, tz: ZoneInfo,
                 zones: set[tuple[tuple[str, ...], str]]) -> z3.BoolRef:
        if isinstance(lit, (A.Date, A.DateTime)):
            return self._date_cmp(f, op, lit, tz, zones)
        if isinstance(lit, A.Num):
            q = z3_num(num_value(lit.value))
            rel = {"==": f.num == q, "!=": f.num != q, "<": f.num < q, "<=": f.num <= q,
                   ">": f.num > q, ">=": f.num >= q}[op]
            return z3.And(f.kind == NUM, rel)
        if op not in ("==", "!="):
            return z3.BoolVal(False)
        eq = self._eq(f, lit, tz, zones)
        if op == "==":
            return eq
        kind = STR if isinstance(lit, A.Str) else BOOL
        return z3.And(f.kind == kind, z3.Not(eq))

    def _in(self, f: Field, items: tuple[A.Scalar, ...], negated: bool, tz: ZoneInfo,
            zones: set[tuple[tuple[str, ...], str]]) -> z3.BoolRef:
        scalar = z3.Or(f.kind == STR, f.kind == NUM, f.kind == BOOL)
        eqs = [self._eq(f, lit, tz, zones) for lit in items]
        found = z3.Or(*eqs) if eqs else z3.BoolVal(False)
        if not negated:
            return found
        if not items:
            return scalar
        has = {k: any(isinstance(i, k) for i in items) for k in (A.Str, A.Num, A.Bool)}
        has_date = any(isinstance(i, (A.Date, A.DateTime)) for i in items)
        comparable = []
        if has[A.Str] or has_date:
            comparable.append(z3.And(f.kind == STR, z3.BoolVal(True) if has[A.Str] else f.isdate))
        if has[A.Num]:
            comparable.append(f.kind == NUM)
        if has[A.Bool]:
            comparable.append(f.kind == BOOL)
        return z3.And(z3.Or(*comparable) if comparable else z3.BoolVal(False), z3.Not(found))

    # ------------------------------------------------------------------ windows

    def window(self, rule: RuleInfo) -> z3.BoolRef:
        """``start <= at < end`` for an aware ``at``; for a naive one, its reading in the
        rule's timezone."""
        if rule.start is None and rule.end is None:
            return z3.BoolVal(True)
        lo = None if rule.start is None else TL.to_us(rule.start)
        hi = None if rule.end is None else TL.to_us(rule.end)
        aware = self.instant_in(self.at_t, [(lo, hi)]) if (lo is None or hi is None or lo < hi) else z3.BoolVal(False)
        if lo is not None and hi is not None and lo >= hi:
            return z3.BoolVal(False)
        naive = self.instant_in(self.at_l, TL.local_preimage(rule.timezone, lo, hi))
        return z3.If(self.at_naive, naive, aware)

    # ------------------------------------------------------------------ constraint groups

    def base(self) -> list[z3.BoolRef]:
        return [self.prior >= 0]

    def field_constraints(self, f: Field) -> list[z3.BoolRef]:
        """Well-formedness of one field: its kind, the prefix objects, the schema."""
        found = self._field_cache.get(f.path)
        if found is None:
            found = self._field_cache[f.path] = self._field_constraints(f)
        return found

    def _field_constraints(self, f: Field) -> list[z3.BoolRef]:
        out = [f.kind >= ABSENT, f.kind <= OBJ]
        if len(f.path) > 1:
            parent = self.fields[f.path[:-1]]
            out.append(z3.Implies(f.kind != ABSENT, parent.kind == OBJ))
        out.append(z3.Implies(f.isdate, f.kind == STR))
        out.append(f.sel >= 0)
        out.append(f.sel <= len(f.literals))
        out.append(z3.Implies(f.kind == STR, f.has_piece))
        out.append(z3.Implies(z3.And(f.kind != STR, f.kind != LIST), z3.Not(f.has_piece)))
        out.extend(self._literal_constraints(f))
        info = self.ps.schema.get(f.path)
        if info is not None:
            allowed = {"text": [STR], "number": [NUM], "bool": [BOOL], "date": [STR], "category": [STR, LIST],
                       "one_of": [STR], "list_text": [LIST]}.get(info.kind)
            if allowed is not None:
                ok = z3.Or(*[f.kind == k for k in allowed])
                if info.kind == "date":
                    ok = z3.And(ok, f.isdate)
                if info.kind == "one_of":
                    ok = z3.And(ok, f.sel >= 1)
                out.append(ok if info.required else z3.Or(f.kind == ABSENT, ok))
            elif info.required:
                out.append(f.kind != ABSENT)
        return out

    def _literal_constraints(self, f: Field) -> Iterator[z3.BoolRef]:
        """A literal fixes everything about the string; a date the solver cannot stand
        for exactly is noted (``edges``)."""
        for i, lit in enumerate(f.literals, start=1):
            chosen = z3.And(f.kind == STR, f.sel == i)
            parsed = RT.parse_iso(lit)
            edge = None if parsed is None else edge_reason(parsed, self.zones)
            if edge is not None:
                self.edges.setdefault(f.path, edge)
            if parsed is None:
                yield z3.Implies(chosen, z3.Not(f.isdate))
            elif isinstance(parsed, dt.datetime) and parsed.tzinfo is not None:
                yield z3.Implies(chosen, z3.And(f.isdate, z3.Not(f.dnaive), f.dt == TL.to_us(parsed)))
            else:
                naive = (parsed if isinstance(parsed, dt.datetime)
                         else dt.datetime(parsed.year, parsed.month, parsed.day))
                yield z3.Implies(chosen, z3.And(f.isdate, f.dnaive, f.dl == TL.naive_to_us(naive)))

    def pred_constraints(self, f: Field, p: Pred) -> list[z3.BoolRef]:
        key = (f.path, p)
        found = self._pred_cache.get(key)
        if found is None:
            found = self._pred_cache[key] = self._pred_constraints(f, p)
        return found

    def _pred_constraints(self, f: Field, p: Pred) -> list[z3.BoolRef]:
        s = f.pred(p)
        out = [z3.Implies(s, f.has_piece)]
        if p.trivial:
            out.append(s == f.has_piece)
        for i, lit in enumerate(f.literals, start=1):
            out.append(z3.Implies(z3.And(f.kind == STR, f.sel == i), s == holds_on(p, lit)))
        return out

    def implications(self, f: Field, preds: set[Pred]) -> Iterator[z3.BoolRef]:
        for j in sorted(preds):
            for i in sorted(self.table.implied.get(j, ())):
                if i in preds:
                    yield z3.Implies(f.pred(j), f.pred(i))

    def cat_implications(self, cats: set[tuple[str, ...]]) -> Iterator[z3.BoolRef]:
        for j in sorted(cats):
            for i in self._cat_implied.get(j, ()):
                if i in cats:
                    yield z3.Implies(self.cats[j], self.cats[i])

    def _implied_patterns(self) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
        """For each pattern, the other patterns that occur in it as a contiguous run."""
        out: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for j in self.cats:
            found = []
            for a in range(len(j)):
                for b in range(a + 1, len(j) + 1):
                    run = j[a:b]
                    if run != j and run in self.cats and run not in found:
                        found.append(run)
            out[j] = found
        return out

    def required_fields(self) -> list[Field]:
        return [self.fields[p] for p, info in self.ps.schema.items() if info.required]

    def all_atoms(self) -> Mapping[tuple[Any, str | None], AtomInfo]:
        return self._atoms
