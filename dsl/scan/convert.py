"""From the rows of a catalogue to listings, the dicts ``decide`` takes: what a JSON listing
would carry for the same data (docs/scan.md, "Types").

Arrow columns (from Parquet, or from CSV read as text) are converted column by column:

- a struct is a dict, a list (or fixed-size or large list) a list, a map a dict of its keys
  as text (each key converted as a value of its type is, then its JSON where that is not
  text: ``true``, ``12``);
- NULL is absent: a field that is NULL is left out of its dict (a NULL inside a list stays
  ``None``, as a JSON ``null`` would);
- a TIMESTAMP without a time zone is local time as given (``2021-10-20T08:00:00``, like a
  JSON string without an offset), a TIMESTAMP WITH TIME ZONE an instant in UTC
  (``2021-10-20T08:00:00Z``), a DATE ``2021-10-20``, a TIME ``08:00:00``;
- a DECIMAL is a number (an int when its scale is 0, else a float); a BLOB is text (UTF-8,
  a bad byte replaced); any other value is what pyarrow gives (int, float, bool, str).

A CSV cell (always read as text) holds JSON when it is JSON: ``12`` is a number, ``true`` a
boolean, ``["a","b"]`` a list, ``"12"`` (with the quotes) the text 12, ``null`` and the empty
cell are absent; anything else is text as written. A dotted column name (``seller.id``) is
a path: the cell goes into nested dicts.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from ..evaluate.outcome import format_instant

__all__ = ["batch_listings", "column_values", "csv_cell", "nest_dotted"]

Convert = Callable[[Any], Any]


def _instant(v: dt.datetime) -> str:
    return format_instant(v)


def _date(v: dt.date) -> str:
    return v.isoformat()


def _decimal(v: decimal.Decimal) -> int | float:
    exponent = v.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(v)
    return float(v)


def _blob(v: bytes) -> str:
    return v.decode("utf-8", "replace")


def _scalar(t: pa.DataType) -> Convert | None:
    """The converter of one value of type ``t``, None when pyarrow's value is the listing's."""
    if pa.types.is_timestamp(t):
        return _instant
    if pa.types.is_date(t):
        return _date
    if pa.types.is_time(t):
        return lambda v: v.isoformat()
    if pa.types.is_decimal(t):
        return _decimal
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _blob
    if pa.types.is_duration(t) or t == pa.month_day_nano_interval():
        return str
    return None


def converter(t: pa.DataType) -> Convert | None:
    """The converter of a non-null value of type ``t`` (None: keep it as it is)."""
    if pa.types.is_struct(t):
        fields = [(t.field(i).name, converter(t.field(i).type)) for i in range(t.num_fields)]
        return lambda v: _struct(v, fields)
    if pa.types.is_map(t):
        item, key = converter(t.item_type), _key_text(converter(t.key_type))
        return lambda v: {key(k): (item(x) if item is not None and x is not None else x) for k, x in v}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = converter(t.value_type)
        if inner is None:
            return None
        return lambda v: [inner(x) if x is not None else None for x in v]
    return _scalar(t)


def _key_text(conv: Convert | None) -> Convert:
    """A map's key as the text an object's key is: the key's value as a listing holds it
    (``conv``: a BLOB decoded, a TIMESTAMP as its ISO text), that value's JSON where it
    is not text (``true``, ``12``)."""
    def text(k: Any) -> str:
        v = conv(k) if conv is not None else k
        return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    return text


def _struct(value: dict[str, Any], fields: Sequence[tuple[str, Convert | None]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, conv in fields:
        v = value.get(name)
        if v is not None:
            out[name] = conv(v) if conv is not None else v
    return out


def column_values(array: pa.Array | pa.ChunkedArray, *, csv: bool = False) -> list[Any]:
    """The values of one column as a listing holds them (None for NULL); ``csv``: a text
    column's cells are read as ``csv_cell`` reads them (a column of another type, which
    DuckDB's reading of CSV as text never gives, would be read as it is)."""
    csv = csv and (pa.types.is_string(array.type) or pa.types.is_large_string(array.type))
    conv = None if csv else converter(array.type)
    try:
        values: list[Any] = array.to_pylist()
    except OverflowError:  # a date or time beyond Python's years 1 to 9999, somewhere in the column
        return [_beyond(array, i, conv) for i in range(len(array))]
    if csv:
        return [csv_cell(v) if v is not None else None for v in values]
    if conv is None:
        return values
    return [conv(v) if v is not None else None for v in values]


def _beyond(array: pa.Array | pa.ChunkedArray, i: int, conv: Convert | None) -> Any:
    """Value ``i`` of the column; where it holds a date or time Python cannot (the year
    10000), its dates and times are all Arrow's text of them (``10000-01-01``)."""
    try:
        v = array[i].as_py()
    except OverflowError:
        texts = _times_as_text(array.type)
        v, conv = array.slice(i, 1).cast(texts).to_pylist()[0], converter(texts)
    return conv(v) if conv is not None and v is not None else v


def _times_as_text(t: pa.DataType) -> pa.DataType:
    """``t`` with every date, time and timestamp in it (at any depth) as text."""
    if pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(t.field(k).name, _times_as_text(t.field(k).type)) for k in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(_times_as_text(t.key_type), _times_as_text(t.item_type))
    if pa.types.is_large_list(t):
        return pa.large_list(_times_as_text(t.value_type))
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(_times_as_text(t.value_type))
    return t


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON: the cell is text


def csv_cell(text: str) -> Any:
    """A CSV cell as a listing holds it: JSON when it is JSON (not ``null``), else the text;
    the empty cell is None (absent)."""
    stripped = text.strip()
    if not stripped:
        return None
    first = stripped[0]
    if first in '-0123456789[{"tfn':
        try:
            value = json.loads(stripped, parse_constant=_no_constant)
        except ValueError:
            return text
        return value
    return text


def nest_dotted(names: Sequence[str]) -> list[tuple[str, ...]]:
    """The path of each column name: ``seller.id`` is ``("seller", "id")``."""
    return [tuple(name.split(".")) for name in names]


def batch_listings(batch: pa.RecordBatch, *, csv: bool = False) -> list[dict[str, Any]]:
    """The listings of one record batch, in order."""
    names = batch.schema.names
    columns = [column_values(batch.column(i), csv=csv) for i in range(batch.num_columns)]
    if csv and any("." in n for n in names):
        return _nested_rows(nest_dotted(names), columns, batch.num_rows)
    if columns and not any(None in column for column in columns):  # (no field absent: every key stays)
        return list(map(dict, map(zip, itertools.repeat(names), zip(*columns, strict=True))))
    rows: list[dict[str, Any]] = []
    append = rows.append
    for values in zip(*columns, strict=True) if columns else ((),) * batch.num_rows:
        append({k: v for k, v in zip(names, values, strict=True) if v is not None})
    return rows


def _nested_rows(paths: Sequence[tuple[str, ...]], columns: Sequence[list[Any]], n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {}
        for path, column in zip(paths, columns, strict=True):
            v = column[i]
            if v is not None:
                _put(row, path, v)
        rows.append(row)
    return rows


def _put(row: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = row
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
