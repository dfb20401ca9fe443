"""The category lookup: the part of the pushdown that is applied to the Arrow batches, not
written as SQL (docs/scan.md, "Pushdown").

A rule with a ``category`` conjunct holds only on a listing whose category path holds one
of the conjunct's keys (``semantics.category_keys``: the first segment of each pattern).
As SQL that is one test per rule: hundreds of rules make a predicate that costs DuckDB
more than deciding the records it rules out. Here it is a lookup: each distinct value of a
batch's ``category`` column is read as the listing holds it (``convert.csv_cell`` for a CSV
cell) and normalised by the evaluator's own ``text.category_segments``, so nothing about
normalisation is restated, and its segments are looked up in a table of keys to rules.
Each distinct value thus gets the rules that may hold on it, and the hull of their windows
(against ``--at``, or as dates against ``--at-field``, as ``pushdown.window_on_dates``
reads them); a record may get one of these rules only where its category may and its
date is in that hull (or cannot be read as a plain date).

``pushdown.sql_predicate(..., lookup=True)`` leaves these rules out of the SQL, and
``decide`` ORs the pushdown's column with the records ``Lookup.classify`` keeps: together
they hold for every record which could get anything but a plain allow, but for the records
the lookup settles (those get their one rule's outcome, not decided in Python). The warnings on an ill-typed
``category`` stay in the SQL (they do not depend on the rules that hold).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from ..evaluate import semantics as S
from ..model import PolicySet, RuleInfo
from ..syntax import ast as A
from ..text import category_segments
from .columns import Distinct, constant, is_text, path_column
from .convert import csv_cell
from .pushdown import (
    FALSE,
    PLAIN_DATE_TEXT,
    PLAIN_DATES,
    TRUE,
    Columns,
    GiveUp,
    Windows,
    category_keys_of,
    first_date_from,
)

__all__ = ["Lookup", "lookup_for"]

_EPOCH = dt.date(1970, 1, 1)
_FIRST, _LAST = PLAIN_DATES
_ISO_DATE = re.compile(PLAIN_DATE_TEXT)


def _days(d: dt.date) -> int:
    return (d - _EPOCH).days


def _plain_date(value: Any) -> int | None:
    """A record's ``at`` read as a plain date (days since 1970), None where ``decide`` may
    read it otherwise (``pushdown.at_column``: exactly ``YYYY-MM-DD``, in range)."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        d = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return _days(d) if _FIRST <= d <= _LAST else None


def _plain_at_date(raw: str, *, csv: bool) -> int | None:
    return _plain_date(csv_cell(raw) if csv else raw)


@attrs.frozen
class Keyed:
    """A rule the lookup answers for: its window as days since 1970 (``--at-field``; None
    on a side: unbounded) and, when its condition is one category conjunct and nothing
    else, that conjunct's test on a category path and the rule's outcome alone (the
    records on which it alone applies are settled without deciding them in Python)."""

    window: tuple[int | None, int | None]
    test: Callable[[tuple[str, ...] | None], bool] | None
    outcome: S.Outcome | None
    equal: tuple[tuple[str, ...], frozenset[str]] | None = None
    """A second conjunct ``PATH == 'text'`` or ``PATH in ['text', …]``: its path and texts
    (``semantics.compare_test``, ``membership_test``: a text value equal to one of them);
    a record settles only where a text column holds that path and its value is one of them."""


class Lookup:
    """The keyed rules of a policy set, for one ``at`` (``--at``) or per record's date
    (``--at-field``); ``prior_fixed``: every record's prior is 0 (no ``--prior-field``),
    so a penalty's step is known."""

    def __init__(self, ps: PolicySet, at: str | None, at_field: tuple[str, ...] | None, prior_fixed: bool = False):
        self.at_field = at_field
        self.by_key: dict[str, list[int]] = {}
        self.keyed: list[Keyed] = []
        fixed = _fixed_windows(ps, at) if at_field is None else None
        self.any = False
        for rule in ps.rules:
            keys = category_keys_of(rule)
            if keys is None:
                continue
            self.any = True
            if fixed is not None:
                if fixed(rule) == FALSE:
                    continue
                window: tuple[int | None, int | None] = (None, None)
            else:
                low = first_date_from(rule.start, rule.tz) if rule.start is not None else None
                if rule.start is not None and low is None:
                    continue  # never in force on a date in range
                high = first_date_from(rule.end, rule.tz) if rule.end is not None else None
                window = (_days(low) if low else None, _days(high) if high else None)
            for key in keys:
                self.by_key.setdefault(key, []).append(len(self.keyed))
            keyed = _keyed(rule, window, prior_fixed)
            if fixed is not None and fixed(rule) == "unknown":
                keyed = attrs.evolve(keyed, outcome=None)  # possibly in force: kept, not settled
            self.keyed.append(keyed)
        self.equalities: list[tuple[tuple[str, ...], pa.Array, pa.Array, pa.Array]] = []
        """For each path of a keyed rule's text equality: those rules (their places in
        ``keyed``), the texts any of them accepts, and each (rule, text) pair a rule
        accepts as one number: its place times the number of texts plus the text's
        (``_equalities``: numbers are compared faster than joined texts)."""
        for path in sorted({k.equal[0] for k in self.keyed if k.equal is not None}):
            slots = [i for i, k in enumerate(self.keyed) if k.equal is not None and k.equal[0] == path]
            accepted = {i: sorted(self.keyed[i].equal[1]) for i in slots}  # type: ignore[index]
            texts = sorted({t for ts in accepted.values() for t in ts})
            place = {t: j for j, t in enumerate(texts)}
            pairs = [i * len(texts) + place[t] for i in slots for t in accepted[i]]
            self.equalities.append((path, pa.array(slots, pa.int32()), pa.array(texts, pa.string()),
                                    pa.array(pairs, pa.int64())))
        self.tables: dict[tuple[str, str], Any] = {}
        """The output columns of the keyed rules' outcomes, by format and policy hash (``decide``)."""
        entry = pa.struct([("hit", pa.bool_()), ("low", pa.int32()), ("high", pa.int32()), ("settle", pa.int32())])
        self.categories = {csv: Distinct(functools.partial(self._info, csv=csv), entry) for csv in (False, True)}
        self.dates = {csv: Distinct(functools.partial(_plain_at_date, csv=csv), pa.int32()) for csv in (False, True)}

    def _info(self, raw: str, *, csv: bool) -> dict[str, Any]:
        """The entry of a category column's value (a CSV cell read as ``csv_cell``):
        ``hit``, some keyed rule may hold on it, and the hull of their windows (``low``,
        ``high``: days since 1970, null when unbounded on that side); or ``settle``, one
        keyed rule only may hold on it, a settling one, and it holds (its window in
        ``low``, ``high``)."""
        segments = category_segments(csv_cell(raw) if csv else raw)
        candidates = sorted({k for s in set(segments or ()) for k in self.by_key.get(s, ())})
        if len(candidates) == 1 and self.keyed[candidates[0]].test is not None:
            keyed = self.keyed[candidates[0]]
            assert keyed.test is not None
            if not keyed.test(segments):
                return {"hit": False, "low": None, "high": None, "settle": None}  # no keyed rule holds
            if keyed.outcome is not None:
                return {"hit": False, "low": keyed.window[0], "high": keyed.window[1], "settle": candidates[0]}
        if not candidates:
            return {"hit": False, "low": None, "high": None, "settle": None}
        lows = [self.keyed[k].window[0] for k in candidates]
        highs = [self.keyed[k].window[1] for k in candidates]
        return {"hit": True, "low": None if None in lows else min(x for x in lows if x is not None),
                "high": None if None in highs else max(x for x in highs if x is not None), "settle": None}

    def classify(self, data: pa.RecordBatch, *, csv: bool) -> tuple[pa.Array, pa.Array | None]:
        """For each record of ``data``: TRUE where a keyed rule may hold on it, unless it
        is settled (never null); and the keyed rule (its place in ``keyed``) that alone
        applies to it, where the record is settled (null elsewhere; None: none is)."""
        n = data.num_rows
        column = path_column(data, ("category",), csv=csv)
        if column is None or not (is_text(column.type) or pa.types.is_null(column.type)):
            return constant(True, pa.bool_(), n), None  # read from the listings, or not text: not narrowed here
        if pa.types.is_null(column.type) or not self.by_key:
            return constant(False, pa.bool_(), n), None  # no category, or no keyed rule in force
        entries = self.categories[csv].of(column)
        hit = pc.fill_null(pc.struct_field(entries, "hit"), False)
        settle = pc.struct_field(entries, "settle")
        if self.at_field is None:
            return self._equalities(data, hit, settle, csv=csv)
        days = self._at_days(data, csv=csv)
        if days is None:  # unreadable dates: decided (settling needs the date)
            return pc.or_(hit, pc.is_valid(settle)), None
        low, high = pc.struct_field(entries, "low"), pc.struct_field(entries, "high")
        outside = pc.or_(pc.fill_null(pc.less(days, low), False), pc.fill_null(pc.greater_equal(days, high), False))
        inside = pc.invert(outside)
        unread = pc.is_null(days)
        settling = pc.is_valid(settle)
        keep = pc.or_(pc.and_(hit, inside), pc.and_(settling, unread))
        settled = pc.if_else(pc.and_(pc.and_(settling, pc.invert(unread)), inside), settle,
                             pa.scalar(None, pa.int32()))
        return self._equalities(data, keep, settled, csv=csv)

    def _equalities(self, data: pa.RecordBatch, keep: pa.Array, settled: pa.Array, *,
                    csv: bool) -> tuple[pa.Array, pa.Array | None]:
        """``keep`` and ``settled`` where the settled records' rules have a text equality:
        where it holds the record stays settled, where it does not the rule does not apply
        (and no other keyed rule may: a plain allow), where it cannot be read here (a CSV
        cell, a column that is not text, a path no single column holds) it is decided."""
        n = len(settled)
        if settled.null_count == n:
            return keep, None
        for path, slots, texts_accepted, pairs in self.equalities:
            mine = pc.fill_null(pc.is_in(settled, value_set=slots), False)
            if not pc.any(mine).as_py():
                continue
            column = None if csv else path_column(data, path, csv=False)
            if column is None or not (is_text(column.type) or pa.types.is_null(column.type)):
                keep, settled = pc.or_(keep, mine), pc.if_else(mine, pa.scalar(None, pa.int32()), settled)
                continue
            texts = column.cast(pa.string()) if is_text(column.type) else pa.nulls(n, pa.string())
            text = pc.index_in(texts, value_set=texts_accepted)  # null: a text no rule accepts, or none
            pair = pc.add(pc.multiply(settled.cast(pa.int64()), pa.scalar(len(texts_accepted), pa.int64())), text)
            holds = pc.fill_null(pc.is_in(pair, value_set=pairs), False)
            settled = pc.if_else(pc.and_(mine, pc.invert(holds)), pa.scalar(None, pa.int32()), settled)
        return keep, settled if settled.null_count < n else None

    def _at_days(self, data: pa.RecordBatch, *, csv: bool) -> pa.Array | None:
        """Each record's ``at`` as days since 1970 where it is a plain date, else null
        (None: no single column holds it)."""
        assert self.at_field is not None
        column = path_column(data, self.at_field, csv=csv)
        if column is None:
            return None
        if pa.types.is_date32(column.type):
            days = column.cast(pa.int32())
            in_range = pc.and_(pc.greater_equal(days, pa.scalar(_days(_FIRST), pa.int32())),
                               pc.less_equal(days, pa.scalar(_days(_LAST), pa.int32())))
            return pc.if_else(in_range, days, pa.scalar(None, pa.int32()))
        if not is_text(column.type):
            return pa.nulls(len(column), pa.int32())
        return self.dates[csv].of(column)


def _keyed(rule: RuleInfo, window: tuple[int | None, int | None], prior_fixed: bool) -> Keyed:
    """A keyed rule; its category test and outcome when its condition is that one
    conjunct, or that and one text equality (the outcome only where it does not depend on
    the prior)."""
    conjuncts = A.conjuncts(rule.condition)
    categories = [c for c in conjuncts if isinstance(c, (A.Category, A.CategoryIn))]
    others = [c for c in conjuncts if not isinstance(c, (A.Category, A.CategoryIn))]
    equal = _text_equality(others[0]) if len(others) == 1 else None
    if len(categories) != 1 or (others and equal is None):
        return Keyed(window, None, None)
    test = S.category_test(S.atom_texts(categories[0]))
    consequence = S.consequence(rule)
    outcome = S.combine([consequence], 0) if prior_fixed or not consequence.steps else None
    return Keyed(window, test, outcome, equal)


def _text_equality(e: A.Expr) -> tuple[tuple[str, ...], frozenset[str]] | None:
    """``PATH == 'text'`` or ``PATH in ['text', …]`` (``semantics.equality_keys``, texts
    only): its path and texts."""
    found = S.equality_keys(e)
    if found is None or not found[1] or any(kind != "text" for kind, _ in found[1]):
        return None
    return found[0], frozenset(text for _, text in found[1])


def _fixed_windows(ps: PolicySet, at: str | None) -> Callable[[RuleInfo], str]:
    """Each rule's window against ``--at`` as the SQL reads it: FALSE, TRUE (in force),
    or ``unknown`` where no instant is read (``at`` None, or one that cannot be read: the
    rule is possibly in force, and does not settle)."""
    try:
        windows = Windows(ps, at, None, Columns({}))
    except GiveUp:
        windows = None
    if at is None or windows is None:
        return lambda rule: TRUE if rule.start is None and rule.end is None else "unknown"
    return windows.of


_LOOKUPS: dict[tuple[str, str | None, tuple[str, ...] | None, bool], Lookup] = {}


def lookup_for(ps: PolicySet, policy_hash: str, at: str | None, at_field: tuple[str, ...] | None,
               prior_fixed: bool) -> Lookup | None:
    """The lookup of a policy set (kept for the next batches), None when it has no keyed
    rule."""
    key = (policy_hash, at, at_field, prior_fixed)
    found = _LOOKUPS.get(key)
    if found is None:
        if len(_LOOKUPS) > 8:
            _LOOKUPS.clear()
        found = _LOOKUPS[key] = Lookup(ps, at, at_field, prior_fixed)
    return found if found.any else None
