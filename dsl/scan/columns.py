"""The columnar side of a scan: reading one field of every record of an Arrow batch without
building the records, and the output columns of a batch as Arrow arrays.

The records the pushdown rules out never become Python objects: their output row is the
plain allow, the same for every record but for ``id`` and ``at``, and those two are read
from their columns here (``at`` once per distinct value: a catalogue's dates repeat).
A field is read from a column only where the column holds exactly what ``read_path`` would
find in the listing ``convert.batch_listings`` builds; otherwise (a path through a map or a
list, a dotted CSV column that another one nests into) ``path_column`` says so and the
caller reads the listings.

Every value the scan passes to a pyarrow compute function is an array or a scalar of a
stated type, never a plain Python value (``pa.scalar(1, pa.int32())``, not ``1``):
pyarrow infers a plain value's type at each call, and each inference tries to import
``dateutil``, some 40 µs a call where it is not installed (as in a plain install of this
package). Such scalars are made where they are used: building the first one imports
pandas where it is installed, which an import of the scan modules must not do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..evaluate import values as V
from ..evaluate.outcome import InputError, format_instant
from .convert import column_values, csv_cell
from .schema import arrow_schema, id_text, json_or_none

__all__ = ["MEMO_LIMIT", "Distinct", "constant", "decided_arrays", "id_texts", "is_text", "path_column", "placed",
           "plain_at_texts", "plain_table"]


def path_column(data: pa.RecordBatch, path: tuple[str, ...], *, csv: bool) -> pa.Array | None:
    """The value at ``path`` of each record of ``data`` as one array (null where the
    field is absent), whose values ``convert.column_values`` reads as the listing holds
    them; None when no single column holds it."""
    names = data.schema.names
    if csv:
        dotted = ".".join(path)
        if any(n != dotted and (n.startswith(dotted + ".") or dotted.startswith(n + ".")) for n in names):
            return None
        return data.column(names.index(dotted)) if dotted in names else pa.nulls(data.num_rows)
    if path[0] not in names or names.count(path[0]) > 1:
        return pa.nulls(data.num_rows) if path[0] not in names else None
    column = data.column(names.index(path[0]))
    for part in path[1:]:
        t = column.type
        if not pa.types.is_struct(t):
            return None if pa.types.is_map(t) else pa.nulls(data.num_rows)
        found = [i for i in range(t.num_fields) if t.field(i).name == part]
        if len(found) != 1:
            return None if found else pa.nulls(data.num_rows)
        column = pc.struct_field(column, found)  # null where the struct is null
    return column


def per_distinct(column: pa.Array, read: Callable[[Any], Any], out_type: pa.DataType, *, csv: bool) -> pa.Array:
    """``read`` applied to each value of ``column`` as the listing holds it (None for
    null), computed once per distinct value where the column can be dictionary-encoded."""
    try:
        encoded = column.dictionary_encode()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([read(v) if v is not None else None for v in column_values(column, csv=csv)], out_type)
    texts = pa.array([read(v) if v is not None else None for v in column_values(encoded.dictionary, csv=csv)],
                     out_type)
    return texts.take(encoded.indices)


def is_text(t: pa.DataType) -> bool:
    """Whether a column of type ``t`` holds text (read as it is, or as a CSV cell)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view"


MEMO_LIMIT = 1 << 16
"""How many values a memo of readings kept from batch to batch holds (``Distinct``, and
``decide``'s formatted instants): once full it starts again, empty. Starting again costs
time only; every value is then read again, never left unread."""


class Distinct:
    """A function of a text computed once per distinct text (a catalogue's categories and
    dates repeat from batch to batch): the texts seen so far are an Arrow value set, and a
    column is mapped through it with one hash lookup a value. The memo is replaced whole,
    never changed in place, so scans in several threads of a process may share it; it holds
    at most about ``MEMO_LIMIT`` texts."""

    def __init__(self, read: Callable[[str], Any], out_type: pa.DataType):
        self.read, self.out_type = read, out_type
        self.memo: tuple[list[str], list[Any], pa.Array, pa.Array] | None = None
        """The texts seen, their readings, and both as Arrow arrays (in the same order);
        None until the first column (no Arrow array is built at import: pyarrow's first
        one imports pandas where it is installed)."""

    def of(self, column: pa.Array) -> pa.Array:
        """``read`` of each value of ``column`` (null where it is null)."""
        if self.memo is None:
            self.memo = ([], [], pa.array([], pa.string()), pa.array([], self.out_type))
        known, values, known_array, values_array = self.memo
        texts = column.cast(pa.string())
        places = pc.index_in(texts, value_set=known_array)
        missing = pc.and_(pc.is_null(places), pc.is_valid(texts))
        if pc.any(missing).as_py():
            if len(known) >= MEMO_LIMIT:  # start again: every text of this column is then new
                known, values, missing = [], [], pc.is_valid(texts)
            new = pc.unique(texts.filter(missing)).to_pylist()
            known, values = known + new, values + [self.read(t) for t in new]
            known_array, values_array = pa.array(known, pa.string()), pa.array(values, self.out_type)
            self.memo = (known, values, known_array, values_array)
            places = pc.index_in(texts, value_set=known_array)
        return values_array.take(places)


def _plain_at(value: Any) -> str | None:
    """The ``at`` a plain allow of a record whose ``at`` field holds ``value`` reports,
    None when it cannot be read (not memoised: ``plain_at_texts`` reads a value once)."""
    try:
        return format_instant(V.parse_at(value).reported)
    except InputError:
        return None


def plain_at_texts(data: pa.RecordBatch, at_field: tuple[str, ...], *, csv: bool,
                   listings: Callable[[], Sequence[Any]]) -> pa.Array:
    """The ``at`` a plain allow of each record reports (read from ``at_field``), null
    where it cannot be read (such a record is decided, to get its error). ``listings``
    gives the records' listings, for a path that no single column holds. A text column's
    value is read once per scan (``Distinct``), any other column's once per batch, a value
    read from the listings (a rare path) each time."""
    column = path_column(data, at_field, csv=csv)
    if column is None:
        values = [V.read_path(x, at_field) if isinstance(x, dict) else None for x in listings()]
        return pa.array([_plain_at(v) if v is not None else None for v in values], pa.string())
    if is_text(column.type):
        return _PLAIN_AT_TEXTS[csv].of(column)
    return per_distinct(column, _plain_at, pa.string(), csv=csv)


def _plain_at_of_text(text: str, *, csv: bool) -> str | None:
    value = csv_cell(text) if csv else text
    return _plain_at(value) if value is not None else None


_PLAIN_AT_TEXTS = {csv: Distinct(functools.partial(_plain_at_of_text, csv=csv), pa.string()) for csv in (False, True)}
"""The ``at`` of a plain allow, by the text of its ``at`` field (a catalogue's dates repeat
from batch to batch)."""


def id_texts(data: pa.RecordBatch, id_field: tuple[str, ...], *, csv: bool,
             listings: Callable[[], Sequence[Any]]) -> pa.Array:
    """Each record's ``id`` as the Parquet and CSV outputs write it (text as it is, any
    other value as its JSON)."""
    column = path_column(data, id_field, csv=csv)
    if column is None:
        values = [V.read_path(x, id_field) if isinstance(x, dict) else None for x in listings()]
        return pa.array([id_text(v) if v is not None else None for v in values], pa.string())
    if not csv and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column.cast(pa.string())
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    values = column_values(column, csv=csv)
    return pa.array([id_text(v) if v is not None else None for v in values], pa.string())


_CONSTANTS: dict[tuple[Any, pa.DataType], pa.Array] = {}


def constant(value: Any, of: pa.DataType, n: int) -> pa.Array:
    """``n`` times ``value``: a slice of an array kept for the next batches (pyarrow's
    ``repeat`` takes milliseconds a batch for a text)."""
    key = (value if not isinstance(value, list) else tuple(value), of)
    kept = _CONSTANTS.get(key)
    if kept is None or len(kept) < n:
        if len(_CONSTANTS) > 64:
            _CONSTANTS.clear()
        kept = _CONSTANTS[key] = pa.array([value] * max(n, 2 * len(kept) if kept is not None else n), of)
    return kept.slice(0, n)


_PLAIN: dict[tuple[str, str], list[pa.Array]] = {}


def plain_table(out_format: str, policy_hash: str) -> list[pa.Array]:
    """The output columns after ``id`` of one plain allow (its ``at`` null), made once."""
    found = _PLAIN.get((out_format, policy_hash))
    if found is None:
        if len(_PLAIN) > 8:
            _PLAIN.clear()
        found = _PLAIN[(out_format, policy_hash)] = decided_arrays(
            out_format, [["allow"], [()], [()], [None], [()], [None], [None]], policy_hash)
    return found


def decided_arrays(out_format: str, columns: Sequence[list[Any]], policy_hash: str) -> list[pa.Array]:
    """The output columns after ``id`` of decided records, from the Python values of
    effect, rules, overridden, penalty, warnings, error and at (``schema.Row`` without
    the first and the last)."""
    schema = arrow_schema(out_format)
    effect, rules, overridden, penalty, warnings, error, at = columns
    if out_format != "parquet":
        rules, overridden, penalty, warnings = ([json_or_none(v) for v in c]
                                                for c in (rules, overridden, penalty, warnings))
    typed = zip((effect, rules, overridden, penalty, warnings, error, at), schema.names[1:8], strict=True)
    arrays = [pa.array(values, schema.field(name).type) for values, name in typed]
    return [*arrays, constant(policy_hash, pa.string(), len(effect))]


def placed(decide: pa.Array, rows: pa.Array, table: Sequence[pa.Array], decided: Sequence[pa.Array]) -> list[pa.Array]:
    """Columns in input order, each of one take: where ``decide`` holds, the record's
    value is the next of the ``decided`` column's (in order); elsewhere, that of the row of
    the ``table`` column (a few rows: the plain allow, the keyed rules' outcomes) that
    ``rows`` gives it."""
    k = len(table[0])
    after = pa.scalar(k - 1, pa.int64())
    index = pc.if_else(decide, pc.add(pc.cumulative_sum(decide.cast(pa.int64())), after), rows.cast(pa.int64()))
    return [pa.concat_arrays([t, d]).take(index) for t, d in zip(table, decided, strict=True)]
