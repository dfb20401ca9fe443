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
``decide`` ORs the pushdown's column with ``Lookup.mask``: together they hold for every
record which could get anything but a plain allow. The warnings on an ill-typed
``category`` stay in the SQL (they do not depend on the rules that hold).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..model import PolicySet, RuleInfo
from ..text import category_segments
from .columns import Distinct, is_text, path_column
from .convert import csv_cell
from .pushdown import FALSE, TRUE, Columns, GiveUp, Windows, category_keys_of, first_date_from

__all__ = ["Lookup", "lookup_for"]

_EPOCH = dt.date(1970, 1, 1)
_FIRST, _LAST = dt.date(1, 1, 2), dt.date(9999, 12, 30)
"""The dates ``pushdown.at_column`` reads as plain dates (the calendar's first and last are
left to the evaluator)."""
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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


class Lookup:
    """The keyed rules of a policy set, for one ``at`` (``--at``) or per record's date
    (``--at-field``)."""

    def __init__(self, ps: PolicySet, at: str | None, at_field: tuple[str, ...] | None):
        self.at_field = at_field
        self.by_key: dict[str, list[tuple[int | None, int | None]]] = {}
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
                self.by_key.setdefault(key, []).append(window)
        entry = pa.struct([("hit", pa.bool_()), ("low", pa.int32()), ("high", pa.int32())])
        self.categories = {csv: Distinct(functools.partial(self._info, csv=csv), entry) for csv in (False, True)}
        self.dates = {csv: Distinct(functools.partial(_plain_at_date, csv=csv), pa.int32()) for csv in (False, True)}

    def _info(self, raw: str, *, csv: bool) -> dict[str, Any]:
        """The entry of a category column's value (a CSV cell read as ``csv_cell``): whether
        some keyed rule may hold on it, and the hull of their windows as days since 1970
        (null: unbounded on that side)."""
        segments = category_segments(csv_cell(raw) if csv else raw)
        windows = [w for s in set(segments or ()) for w in self.by_key.get(s, ())]
        if not windows:
            return {"hit": False, "low": None, "high": None}
        lows, highs = [w[0] for w in windows], [w[1] for w in windows]
        return {"hit": True, "low": None if None in lows else min(x for x in lows if x is not None),
                "high": None if None in highs else max(x for x in highs if x is not None)}

    def mask(self, data: pa.RecordBatch, *, csv: bool) -> pa.Array:
        """TRUE for each record of ``data`` on which a keyed rule may hold (never null)."""
        n = data.num_rows
        column = path_column(data, ("category",), csv=csv)
        if column is None or not (is_text(column.type) or pa.types.is_null(column.type)):
            return _constant(True, n)  # read from the listings, or not text: not narrowed here
        if pa.types.is_null(column.type) or not self.by_key:
            return _constant(False, n)  # no category, or no keyed rule in force
        entries = self.categories[csv].of(column)
        hit = pc.fill_null(pc.struct_field(entries, "hit"), False)
        if self.at_field is None:
            return hit
        days = self._at_days(data, csv=csv)
        if days is None:
            return hit
        low, high = pc.struct_field(entries, "low"), pc.struct_field(entries, "high")
        outside = pc.or_(pc.fill_null(pc.less(days, low), False), pc.fill_null(pc.greater_equal(days, high), False))
        return pc.and_(hit, pc.invert(outside))

    def _at_days(self, data: pa.RecordBatch, *, csv: bool) -> pa.Array | None:
        """Each record's ``at`` as days since 1970 where it is a plain date, else null
        (None: no single column holds it)."""
        assert self.at_field is not None
        column = path_column(data, self.at_field, csv=csv)
        if column is None:
            return None
        if pa.types.is_date32(column.type):
            days = column.cast(pa.int32())
            in_range = pc.and_(pc.greater_equal(days, _days(_FIRST)), pc.less_equal(days, _days(_LAST)))
            return pc.if_else(in_range, days, pa.scalar(None, pa.int32()))
        if not is_text(column.type):
            return pa.nulls(len(column), pa.int32())
        return self.dates[csv].of(column)


def _fixed_windows(ps: PolicySet, at: str | None) -> Callable[[RuleInfo], str]:
    """Each rule's window against ``--at`` as the SQL reads it (TRUE, FALSE); every rule
    possibly in force where the instant cannot be read."""
    try:
        return Windows(ps, at, None, Columns({})).of
    except GiveUp:
        return lambda rule: TRUE


def _constant(value: bool, n: int) -> pa.Array:
    return pc.fill_null(pa.nulls(n, pa.bool_()), value)


_LOOKUPS: dict[tuple[str, str | None, tuple[str, ...] | None], Lookup] = {}


def lookup_for(ps: PolicySet, policy_hash: str, at: str | None, at_field: tuple[str, ...] | None) -> Lookup | None:
    """The lookup of a policy set (kept for the next batches), None when it has no keyed
    rule."""
    key = (policy_hash, at, at_field)
    found = _LOOKUPS.get(key)
    if found is None:
        if len(_LOOKUPS) > 8:
            _LOOKUPS.clear()
        found = _LOOKUPS[key] = Lookup(ps, at, at_field)
    return found if found.any else None
