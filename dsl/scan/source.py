"""Reading a scan's input (docs/scan.md, "Formats"): Parquet and CSV through DuckDB, as a
stream of Arrow record batches in input order; JSON lines through the project's own reader
(``dsl.scan.records``, the one ``policy eval`` uses), as batches of records.

JSON lines are not read by DuckDB on purpose: its JSON reader gives every record of a file
one schema (a field that is a number in one record and text in another becomes text in
both) and drops or fails on a broken line, where a scan must decide each record as
``policy eval`` would and give a broken line an error of its own.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import duckdb
import pyarrow as pa

from ..checking.loader import UsageError
from .records import read_json_records
from .schema import DECIDE_COLUMN

__all__ = ["FORMATS", "Source", "format_of", "open_source"]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl"}
"""The formats, by file extension (of the input files, and of ``--out``)."""

Predicate = Callable[[dict[str, str]], str | None]
"""Given the input's columns (name to DuckDB type), the pushdown's SQL predicate or None."""


def format_of(path: str, what: str) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"{what} '{path}': cannot tell its format from its extension (one of {known})")
    return fmt


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _expand(patterns: Sequence[str]) -> list[str]:
    """The input files: each pattern is a file or a glob; one that names nothing is a
    usage error."""
    files: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(glob.glob(pattern, recursive=True))
            if not found:
                raise UsageError(f"--input '{pattern}': no file matches")
            files.extend(found)
        elif not os.path.isfile(pattern):
            raise UsageError(f"--input '{pattern}': no such file")
        else:
            files.append(pattern)
    return files


@attrs.define
class Source:
    """An open input: its format, its columns (name to DuckDB type; empty for JSON lines),
    its number of records when it is known cheaply, and its batches."""

    fmt: str
    columns: dict[str, str]
    total: int | None
    narrowed: bool
    """The batches carry the pushdown's column (``schema.DECIDE_COLUMN``)."""
    batches: Iterator[pa.RecordBatch | list[Any]]


def open_source(patterns: Sequence[str], *, batch_size: int, at_field: tuple[str, ...] | None,
                predicate: Predicate | None) -> Source:
    """Open the inputs (all of one format). Raises ``UsageError`` for a file that cannot be
    found or read, and for an ``at_field`` that no column holds (Parquet and CSV)."""
    files = _expand(patterns)
    fmts = {format_of(f, "--input") for f in files}
    if len(fmts) > 1:
        raise UsageError(f"--input: the files are of several formats ({', '.join(sorted(fmts))}); scan one at a time")
    fmt = fmts.pop()
    if fmt == "jsonl":
        return Source(fmt, {}, None, False, _json_batches(files, batch_size))
    return _duckdb_source(fmt, files, batch_size=batch_size, at_field=at_field, predicate=predicate)


def _json_batches(files: Sequence[str], batch_size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for name in files:
        try:
            with open(name, "rb") as stream:
                for record in read_json_records(stream):
                    batch.append(record)
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
        except OSError as e:
            raise UsageError(f"--input '{name}': cannot be read: {e.strerror or e}") from None
    if batch:
        yield batch


def _table_sql(fmt: str, files: Sequence[str]) -> str:
    listed = "[" + ", ".join(_quote(f) for f in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({listed}, union_by_name = true)"
    # every cell as text, read by convert.csv_cell: a record's types do not depend on the others'
    return (f"read_csv({listed}, header = true, all_varchar = true, union_by_name = true, "
            "delim = ',', quote = '\"', escape = '\"')")


def _check_at_field(at_field: tuple[str, ...] | None, columns: dict[str, str], fmt: str) -> None:
    if at_field is None:
        return
    dotted = ".".join(at_field)
    if fmt == "csv":
        found = any(c == dotted or c.startswith(dotted + ".") or dotted.startswith(c + ".") for c in columns)
    else:
        found = at_field[0] in columns and (len(at_field) == 1 or columns[at_field[0]].startswith("STRUCT"))
    if not found:
        shown = ", ".join(list(columns)[:20])
        raise UsageError(f"--at-field '{dotted}': the input has no such column (its columns: {shown})")


def _duckdb_source(fmt: str, files: Sequence[str], *, batch_size: int, at_field: tuple[str, ...] | None,
                   predicate: Predicate | None) -> Source:
    con = duckdb.connect()
    table = _table_sql(fmt, files)
    try:
        columns = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
        _check_at_field(at_field, columns, fmt)
        total = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]) if fmt == "parquet" else None
    except duckdb.Error as e:
        con.close()
        raise UsageError(f"--input: cannot be read: {_first_line(e)}") from None
    except UsageError:
        con.close()
        raise
    where = predicate(columns) if predicate is not None else None
    select = "*" if where is None else f'*, (({where}) IS NOT FALSE) AS "{DECIDE_COLUMN}"'
    batches = _arrow_batches(con, f"SELECT {select} FROM {table}", batch_size)
    return Source(fmt, columns, total, where is not None, batches)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _arrow_batches(con: duckdb.DuckDBPyConnection, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    try:
        try:
            reader: pa.RecordBatchReader = con.sql(sql).to_arrow_reader(batch_size)
            for batch in reader:
                if batch.num_rows:
                    yield batch
        except duckdb.Error as e:
            raise UsageError(f"--input: cannot be read: {_first_line(e)}") from None
    finally:
        con.close()
