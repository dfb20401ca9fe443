"""The output of a scan: its columns, and one batch of rows in the form each output format
takes (docs/scan.md, "Columns").

Parquet keeps the structure: ``rules``, ``overridden`` and ``warnings`` are lists of text,
``penalty`` a struct (``rule``, ``ladder``, ``step``, ``actions``). CSV carries those four as
JSON text. JSON lines are written as ``policy eval`` writes a decision (compact JSON, the
same serialiser: ``records.json_line``): one object per row with the columns in order.
``id`` is text in Parquet and CSV (a text id as it is, any other value as its JSON), the
value itself in JSON lines. A row in error has only ``id``, ``error`` and ``policy_hash``;
its other columns are null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa

from .records import json_line

__all__ = ["COLUMNS", "DECIDE_COLUMN", "Row", "arrow_schema", "id_text", "json_or_none", "rows_to_output",
           "utf8_text"]

COLUMNS = ("id", "effect", "rules", "overridden", "penalty", "warnings", "error", "at", "policy_hash")

DECIDE_COLUMN = "__policy_scan_decide"
"""The column the reader adds when the pushdown narrows the scan: false for a record that
gets a plain allow without being decided."""

Row = tuple[Any, str | None, Any, Any, Any, Any, str | None, str | None, str]
"""One output row: id, effect, rules, overridden, penalty (as ``PenaltyChoice.to_dict``),
warnings, error, at, policy_hash."""

_TEXTS = pa.list_(pa.string())
PENALTY = pa.struct([("rule", pa.string()), ("ladder", pa.string()), ("step", pa.int64()), ("actions", _TEXTS)])


def arrow_schema(out_format: str) -> pa.Schema:
    """The output's Arrow schema for ``parquet`` or ``csv``."""
    structured = out_format == "parquet"
    listed = _TEXTS if structured else pa.string()
    return pa.schema([("id", pa.string()), ("effect", pa.string()), ("rules", listed), ("overridden", listed),
                      ("penalty", PENALTY if structured else pa.string()), ("warnings", listed),
                      ("error", pa.string()), ("at", pa.string()), ("policy_hash", pa.string())])


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def json_or_none(value: Any) -> str | None:
    """A list (or tuple) or object as JSON text, as the CSV output carries it."""
    if value is None:
        return None
    return _dumps(list(value) if isinstance(value, tuple) else value)


def id_text(value: Any) -> str | None:
    """An id as the Parquet and CSV outputs write it: text as it is, another value as its
    JSON (``utf8_text``: a lone surrogate as its escape)."""
    if value is None:
        return None
    return utf8_text(value if isinstance(value, str) else _dumps(value))


def utf8_text(text: str) -> str:
    """``text`` as UTF-8 can hold it: where it holds a lone surrogate (which a JSON input
    may, as ``\\ud800``, and UTF-8 cannot), each written as that escape, as the JSON
    outputs write it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def rows_to_output(rows: list[Row], out_format: str) -> pa.RecordBatch | str:
    """The rows as the writer of ``out_format`` takes them: an Arrow batch for Parquet and
    CSV, the text of the lines for JSON lines."""
    if out_format == "jsonl":
        return b"".join(_lines(rows)).decode("utf-8")
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    ids = [id_text(v) for v in cols[0]]
    if out_format == "parquet":
        arrays = [ids, *cols[1:]]  # (pyarrow reads a tuple as a list)
    else:
        arrays = [ids, cols[1], *([json_or_none(v) for v in cols[i]] for i in (2, 3, 4, 5)), *cols[6:]]
    schema = arrow_schema(out_format)
    return pa.RecordBatch.from_arrays([pa.array(list(a), type=f.type) for a, f in zip(arrays, schema, strict=True)],
                                      schema=schema)


_TAILS: dict[tuple[Any, ...], bytes] = {}
"""The JSON line of a row after its id (``,"effect":…}`` and the line feed), by the rest of
the row: a catalogue's rows repeat but for the id (a plain allow at each date). At most
``_TAILS_MAX`` entries; emptied when full (a scan in several threads may share it: an
entry is set whole)."""

_TAILS_MAX = 4096


def _lines(rows: list[Row]) -> Iterator[bytes]:
    """Each row's JSON line (``records.json_line`` of ``_row_object``): a row with a text
    id (or none), no penalty and no error is its id's JSON and the rest's, kept
    (``_TAILS``); the same bytes."""
    tails = _TAILS
    if len(tails) >= _TAILS_MAX:
        tails.clear()
    dumps = orjson.dumps
    for row in rows:
        ident = row[0]
        if row[4] is None and row[6] is None and (ident is None or type(ident) is str):
            key = row[1:]
            try:
                tail = tails.get(key)  # (a row of lists, not tuples, is not a key: TypeError)
                if tail is None:
                    tail = tails[key] = b"," + dumps(dict(zip(_AFTER_ID, key, strict=True)),
                                                     option=orjson.OPT_APPEND_NEWLINE)[1:]
                yield b'{"id":' + dumps(ident) + tail
                continue
            except TypeError:  # orjson.JSONEncodeError too: a lone surrogate (json_line escapes the whole line)
                pass
        yield json_line(_row_object(row))


_AFTER_ID = COLUMNS[1:]


def _row_object(row: Row) -> dict[str, Any]:
    """A row as its JSON line's object (a tuple is a JSON array)."""
    out = dict(zip(COLUMNS, row, strict=True))
    if isinstance(row[0], float) and not math.isfinite(row[0]):  # JSON has no Infinity (an id of 1e400)
        out["id"] = id_text(row[0])
    return out
