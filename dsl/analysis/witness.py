"""From a solver model to a listing an author would recognise.

``Realiser`` builds the concrete listing, ``at`` and ``prior_violations`` from a model:
every field the question reads gets a value of the kind the model chose; text is made of
the policy's own phrases and needles (``textpreds.realise_piece``); a category path of its
own patterns, joined by a neutral segment where needed. ``clean_witness`` then simplifies
it, keeping it a witness: a nicer ``at`` inside the windows, ``prior_violations`` 0 where
possible, fields that do not matter dropped, round numbers. Every step is checked with the
reference evaluator's functions (``formula.evaluate``).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from fractions import Fraction
from typing import Any

import z3

from .. import text as TX
from ..evaluate import values as RT
from . import formula as FM
from . import timeline as TL
from .answers import Solving, Unrealisable, Witness
from .strings import StringMode
from .textpreds import Pred, realise_piece
from .world import ABSENT, BOOL, LIST, NUM, OBJ, STR, Field

FILLER_SEGMENTS = ("Other", "Misc", "General", "Various", "Other 2")


def _int(model: z3.ModelRef, e: z3.ExprRef) -> int:
    value: int = model.eval(e, model_completion=True).as_long()  # z3 has no stubs
    return value


def _bool(model: z3.ModelRef, e: z3.ExprRef) -> bool:
    value: bool = z3.is_true(model.eval(e, model_completion=True))  # z3 has no stubs
    return value


def _fraction(model: z3.ModelRef, e: z3.ExprRef) -> Fraction:
    v = model.eval(e, model_completion=True)
    return Fraction(v.numerator_as_long(), v.denominator_as_long())


def number_value(q: Fraction) -> int | float:
    if q.denominator == 1:
        return int(q.numerator)
    return float(q)


class Realiser:
    def __init__(self, engine: Solving, model: z3.ModelRef, fields: set[tuple[str, ...]],
                 preds: dict[tuple[str, ...], set[Pred]], cats: set[tuple[str, ...]],
                 strings: StringMode | None, date_fields: AbstractSet[tuple[str, ...]] = frozenset()):
        self.date_fields = date_fields
        self.engine = engine
        self.world = engine.world
        self.model = model
        self.fields = fields
        self.preds = preds
        self.cats = cats
        self.strings = strings

    def witness(self) -> Witness:
        m = self.model
        values: dict[tuple[str, ...], Any] = {}
        for path in sorted(self.fields, key=lambda p: (len(p), p)):
            if path == ("category",):
                continue
            fld = self.world.fields[path]
            kind = _int(m, fld.kind)
            if kind == ABSENT:
                continue
            if len(path) > 1 and not isinstance(values.get(path[:-1]), dict):
                raise Unrealisable(f"'{fld.name}' is present under a value that is not an object")
            values[path] = self._value(fld, kind)
        listing: dict[str, Any] = {}
        for path in sorted(values, key=lambda p: (len(p), p)):
            parent = listing
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = values[path]
        category = self._category()
        if category is not None:
            listing["category"] = category
        if _bool(m, self.world.at_naive):
            at = TL.iso_naive(_int(m, self.world.at_l))
        else:
            at = TL.iso_utc(_int(m, self.world.at_t))
        return Witness(listing, at, _int(m, self.world.prior))

    # ------------------------------------------------------------------ values

    def _value(self, fld: Field, kind: int) -> Any:
        m = self.model
        if kind == OBJ:
            return {}
        if kind == NUM:
            q = _fraction(m, fld.num)
            v = number_value(q)
            if isinstance(v, float) and (Fraction(v) != q or not math.isfinite(v)):
                raise Unrealisable(f"the solver chose a number for '{fld.name}' that no float can hold", expected=True)
            return v
        if kind == BOOL:
            return _bool(m, fld.boolv)
        if kind == STR:
            return self._string(fld)
        if kind == LIST:
            return self._list(fld)
        raise Unrealisable(f"unknown kind {kind}")

    def _true_preds(self, fld: Field) -> tuple[set[Pred], list[Pred]]:
        qp = sorted(self.preds.get(fld.path, ()))
        return {p for p in qp if _bool(self.model, fld.pred(p))}, qp

    def _string(self, fld: Field) -> str:
        m = self.model
        if self.strings is not None and fld.path in self.strings.raw:
            pieces = self.strings.pieces(m, fld.path)
            return pieces[0] if pieces else ""
        sel = _int(m, fld.sel)
        if sel > 0:
            return fld.literals[sel - 1]
        if _bool(m, fld.isdate) and (fld.path in self.date_fields or not self.preds.get(fld.path)):
            return self._date_text(fld)
        true, qp = self._true_preds(fld)
        raw = realise_piece(sorted(true), qp, self.world.table, avoid=fld.literals)
        if raw is None:
            raise Unrealisable(f"no text for '{fld.name}' satisfies exactly "
                                f"{', '.join(p.describe() for p in sorted(true)) or 'nothing'}", expected=True)
        if raw == "" and not qp and not fld.literals:
            raw = "text"
        if RT.parse_iso(raw) is not None:
            raise Unrealisable(f"the text chosen for '{fld.name}' reads as a date", expected=True)
        return raw

    def _date_text(self, fld: Field) -> str:
        m = self.model
        if _bool(m, fld.dnaive):
            us = _int(m, fld.dl)
            options = [TL.iso_naive(us), TL.naive_from_us(us).isoformat()]
        else:
            us = _int(m, fld.dt)
            options = [TL.iso_utc(us), TL.from_us(us).isoformat()]
        for text in options:
            if text not in fld.literals:
                return text
        raise Unrealisable(f"no spelling of the date for '{fld.name}' differs from the literals", expected=True)

    def _list(self, fld: Field) -> list[str]:
        m = self.model
        if self.strings is not None and fld.path in self.strings.raw:
            return self.strings.pieces(m, fld.path)
        true, qp = self._true_preds(fld)
        table = self.world.table
        plain_true = [p for p in true if not p.trivial]
        maximal = [p for p in plain_true
                   if not any(o != p and p in table.implied.get(o, ()) and o not in table.implied.get(p, ())
                              for o in plain_true)]
        pieces: list[str] = []
        seen: set[Pred] = set()
        for p in sorted(maximal, key=lambda p: (-len(p.text), p.text)):
            if p in seen:
                continue
            closure = [p] + [i for i in true if i in table.implied.get(p, ())]
            seen.update(closure)
            raw = realise_piece(closure, qp, table)
            if raw is None:
                raise Unrealisable(f"no text for '{fld.name}' satisfies exactly {p.describe()}", expected=True)
            pieces.append(raw)
        if not pieces and _bool(m, fld.has_piece):
            raw = realise_piece([], qp, table)
            if raw is None:
                raise Unrealisable(f"no text for '{fld.name}' satisfies nothing", expected=True)
            pieces.append(raw)
        return pieces

    def _category(self) -> str | None:
        true = [segs for segs in sorted(self.cats) if _bool(self.model, self.world.cats[segs])]
        required = ("category",) in self.engine.ps.schema and self.engine.ps.schema[("category",)].required
        if not true and not required:
            return None
        maximal = [s for s in true if not any(o != s and TX.category_matches(o, s) for o in true)]
        spelled = self.world.segment_spelling
        norm_all = {seg for segs in self.cats for seg in segs}
        filler = next(f for f in FILLER_SEGMENTS if TX.normalize_phrase(f) not in norm_all)
        want = set(true)
        for joined in (True, False):
            path: list[str] = []
            for segs in maximal:
                if path and not joined:
                    path.append(TX.normalize_phrase(filler))
                path.extend(segs)
            if not path:
                path = [TX.normalize_phrase(filler)]
            got = {segs for segs in self.cats if TX.category_matches(tuple(path), segs)}
            if got == want:
                return " > ".join(spelled.get(seg, filler if seg == TX.normalize_phrase(filler) else seg)
                                  for seg in path)
        raise Unrealisable("no category path holds exactly the patterns the solver chose")


# --------------------------------------------------------------------------- cleaning


def _bounds(engine: Solving, f: FM.F) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for q in FM.rules_of(f):
        r = engine.rule(q)
        if r.start is not None:
            starts.append(TL.to_us(r.start))
        if r.end is not None:
            ends.append(TL.to_us(r.end))
    stack = [f]
    while stack:
        g = stack.pop()
        if isinstance(g, FM.AtIn):
            if g.lo is not None:
                starts.append(g.lo)
            if g.hi is not None:
                ends.append(g.hi)
        elif isinstance(g, (FM.And, FM.Or)):
            stack.extend(g.items)
        elif isinstance(g, FM.Not):
            stack.append(g.item)
    return starts, ends


def _nice_instants(engine: Solving, f: FM.F, current: str) -> list[str]:
    """Instants an author recognises, inside the windows where possible: the first UTC
    midnight after a start, a start itself, the last whole second or midnight before an
    end, and the current ``at`` rounded to the day, hour, minute and second."""
    starts, ends = _bounds(engine, f)
    out: list[int] = []
    day = TL.DAY_US
    for s in sorted(set(starts), reverse=True):
        out.append(-(-s // day) * day)
        out.append(s)
        out.append(-(-s // day) * day + day)
    for e in sorted(set(ends)):
        out.append((e - 1) // day * day)
        out.append((e - 1) // TL.US_PER_S * TL.US_PER_S)
        out.append((e - 1) // day * day - day)
    if not starts and not ends:
        out.append(TL.to_us(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    if current.endswith("Z"):
        now = TL.to_us(dt.datetime.fromisoformat(current[:-1] + "+00:00"))
        for unit in (day, 3600 * TL.US_PER_S, 60 * TL.US_PER_S, TL.US_PER_S):
            out.append(now // unit * unit)
    return [TL.iso_utc(x) for x in dict.fromkeys(out)]


def _round_candidates(v: int | float, literals: Iterable[Fraction]) -> list[int | float]:
    cands: set[Fraction] = {Fraction(0), Fraction(1), Fraction(10), Fraction(100), Fraction(1000), Fraction(10000)}
    q = Fraction(v)
    cands.add(Fraction(round(q)))
    cands.add(Fraction(math.floor(q)))
    cands.add(Fraction(math.ceil(q)))
    for lit in literals:
        for d in (0, 1, -1, 10, -10, 100, -100):
            cands.add(lit + d)
        cands.add(lit * 2)
        cands.add(Fraction(math.floor(lit)) + 1)
        cands.add(Fraction(math.ceil(lit)) - 1)
        for scale in (1, 10, 100):
            cands.add(Fraction(round(lit * scale + Fraction(1, 2)), scale))
            cands.add(Fraction(round(lit * scale - Fraction(1, 2)), scale))

    def niceness(x: Fraction) -> tuple[int, int, Fraction]:
        s = str(float(x)) if x.denominator != 1 else str(x.numerator)
        if x.denominator != 1:
            digits = len(s.rstrip("0").replace("-", "").replace(".", ""))
        else:
            digits = len(str(abs(x.numerator)).rstrip("0"))
        return (x.denominator != 1, digits, abs(x))

    out = []
    for x in sorted(cands, key=niceness):
        out.append(number_value(x) if x.denominator == 1 or Fraction(float(x)) == x else float(x))
    return out


def _paths(listing: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in listing.items():
        out.append(prefix + (k,))
        if isinstance(v, dict):
            out.extend(_paths(v, prefix + (k,)))
    return out


def _get(listing: dict[str, Any], path: tuple[str, ...]) -> Any:
    v: Any = listing
    for p in path:
        v = v[p]
    return v


def _with(listing: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(listing)
    parent = out
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def _reshaped(listing: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Candidate rewrites of the built-in text fields into their usual shapes."""
    for key in ("title", "description"):
        value = listing.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            for sep in (" ", ", "):
                yield {**listing, key: sep.join(value)}
    tags = listing.get("tags")
    if isinstance(tags, str):
        yield {**listing, "tags": [tags]}
    if "title" not in listing:
        for key in ("description", "tags"):
            value = listing.get(key)
            if isinstance(value, str):
                rest = {k: v for k, v in listing.items() if k != key}
                yield {**rest, "title": value}
            elif isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
                rest = {k: v for k, v in listing.items() if k != key}
                yield {**rest, "title": value[0]}


def clean_witness(engine: Solving, f: FM.F, w: Witness, budget: int = 100) -> Witness:
    """A simpler witness that still makes ``f`` true (each step checked)."""
    c = _Cleaner(engine, f, budget)
    for step in (c.nicer_at, c.no_prior, c.drop_fields, c.shorter_category, c.usual_shapes, c.shorter_lists,
                 c.round_numbers):
        w = step(w)
    return w


class _Cleaner:
    """The steps of ``clean_witness``; together they try at most ``budget`` candidates
    (the step that drops ``prior_violations`` always gets its one try)."""

    def __init__(self, engine: Solving, f: FM.F, budget: int):
        self.engine = engine
        self.f = f
        self.budget = budget
        self.tries = 0

    def ok(self, c: Witness) -> bool:
        self.tries += 1
        return self.engine.confirms(self.f, c)

    @property
    def spent(self) -> bool:
        return self.tries >= self.budget

    def nicer_at(self, w: Witness) -> Witness:
        """A recognisable instant inside the windows."""
        for at in _nice_instants(self.engine, self.f, w.at):
            if self.spent:
                break
            cand = Witness(w.listing, at, w.prior_violations)
            if self.ok(cand):
                return cand
        return w

    def no_prior(self, w: Witness) -> Witness:
        if w.prior_violations != 0 and self.ok(Witness(w.listing, w.at, 0)):
            return Witness(w.listing, w.at, 0)
        return w

    def drop_fields(self, w: Witness) -> Witness:
        """Drop the fields that do not matter (deepest first)."""
        for path in sorted(_paths(w.listing), key=len, reverse=True):
            if self.spent:
                break
            try:
                cand_listing = _with(w.listing, path, None, delete=True)
            except KeyError:
                continue
            cand = Witness(cand_listing, w.at, w.prior_violations)
            if self.ok(cand):
                w = cand
        return w

    def shorter_category(self, w: Witness) -> Witness:
        """A shorter category path: drop the segments that do not matter."""
        category = w.listing.get("category")
        if not isinstance(category, str):
            return w
        segments = [seg.strip() for seg in category.split(">")]
        i = 0
        while i < len(segments) and len(segments) > 1 and not self.spent:
            trial = segments[:i] + segments[i + 1:]
            cand = Witness({**w.listing, "category": " > ".join(trial)}, w.at, w.prior_violations)
            if self.ok(cand):
                w, segments = cand, trial
            else:
                i += 1
        return w

    def usual_shapes(self, w: Witness) -> Witness:
        """The shapes authors write: text in a title, tags as a list."""
        for cand_listing in _reshaped(w.listing):
            if self.spent:
                break
            cand = Witness(cand_listing, w.at, w.prior_violations)
            if self.ok(cand):
                w = cand
        return w

    def shorter_lists(self, w: Witness) -> Witness:
        for path in _paths(w.listing):
            value = _get(w.listing, path)
            if isinstance(value, list) and len(value) > 1:
                w = self._shorter_list(w, path, value)
        return w

    def _shorter_list(self, w: Witness, path: tuple[str, ...], value: list[Any]) -> Witness:
        i = 0
        while i < len(value) and not self.spent:
            trial = value[:i] + value[i + 1:]
            cand = Witness(_with(w.listing, path, trial), w.at, w.prior_violations)
            if self.ok(cand):
                w, value = cand, trial
            else:
                i += 1
        return w

    def round_numbers(self, w: Witness) -> Witness:
        for path in _paths(w.listing):
            value = _get(w.listing, path)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            w = self._rounder(w, path, value)
        return w

    def _rounder(self, w: Witness, path: tuple[str, ...], value: int | float) -> Witness:
        fld = self.engine.world.fields.get(path)
        lits = fld.num_literals if fld is not None else []
        for cand_value in _round_candidates(value, lits):
            if self.spent or cand_value == value:
                break
            cand = Witness(_with(w.listing, path, cand_value), w.at, w.prior_violations)
            if self.ok(cand):
                return cand
        return w
