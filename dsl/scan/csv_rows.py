"""A CSV input DuckDB's reader stopped on (a row with the wrong number of cells, bytes that
are not UTF-8: ``source.CsvUnread``), read again so that each bad row is a record in error
of its own and the scan goes on, as it does past a broken JSON line (docs/scan.md,
"Formats").

Each file is read twice, side by side, as streams:
- by DuckDB, as the scan reads CSV (``source.csv_table``) but skipping the rows it cannot
  read (``ignore_errors``) and noting them (``store_rejects``): the good rows, with the
  cells DuckDB's reading gives them (so a good row is the listing it is in a file without
  bad rows);
- by Python's ``csv`` module, which only tells where the records are and which are bad:
  a row whose cells do not match its header (a trailing empty cell aside, which DuckDB
  drops), or whose bytes are not UTF-8.

The good rows go, in order, to the places Python's reading finds good. Where the two
readings do not agree (the same number of good rows, the same bad records: DuckDB numbers
records as Python's reader counts them, the header and blank lines included), the file is
a usage error, as before this reading: a disagreement never becomes a wrong listing."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from ..checking.loader import UsageError
from .convert import batch_listings
from .records import Bad
from .source import Source, check_names, csv_header, csv_table, first_line

__all__ = ["csv_source"]

_REJECTS = "rejects_table = 'policy_scan_rejects', rejects_scan = 'policy_scan_rejected_scans'"


def csv_source(files: Sequence[str], batch_size: int, option: str = "--input") -> Source:
    """The CSV files as batches of listings and ``Bad`` records, in input order (no
    pushdown, no parts: they are read as JSON lines are). One DuckDB database reads them
    all (opening one takes some 40 ms, a cursor on it next to nothing), its columns and
    then its records; the batches close it when they end, are closed, or fail (or, never
    read, when they are dropped)."""
    con = duckdb.connect()
    try:
        owns = {name: _columns(con, name, option) for name in files}
        columns = {column: "VARCHAR" for own in owns.values() for column in own}
        check_names(files, "csv", columns, option)  # (a name twice, case aside: DuckDB renamed the second)
        for name, own in owns.items():
            header = _header(name, option)
            # DuckDB read its header otherwise (from a row)? It names an empty name itself
            if len(own) < len(header) or any(h not in ("", o) for h, o in zip(header, own, strict=False)):
                raise _disagree(name, option)
        batches = _batches(con, files, list(columns), batch_size, option)
        next(batches)  # (started: from now on its ``close``, or its end, closes the database)
    except BaseException:
        con.close()
        raise
    return Source("csv", columns, None, False, batches)


def _header(name: str, option: str) -> list[str]:
    """The file's header (``source.csv_header``); a usage error where it is not UTF-8."""
    try:
        names = csv_header(name)
    except (OSError, csv.Error) as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e}") from None
    if not all(_utf8(n) for n in names):
        raise UsageError(f"{option} '{name}': cannot be read: its header is not UTF-8")
    return names


def _columns(con: duckdb.DuckDBPyConnection, name: str, option: str) -> list[str]:
    """A file's columns as DuckDB names them (it trims them, names an empty one)."""
    try:
        return [str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {_forgiving(name)}").fetchall()]
    except duckdb.Error as e:
        raise UsageError(f"{option} '{name}': cannot be read: {first_line(e)}") from None


def _batches(con: duckdb.DuckDBPyConnection, files: Sequence[str], names: list[str], batch_size: int,
             option: str) -> Generator[list[Any], None, None]:
    """The batches, after a first empty one (``csv_source`` takes it); ``con`` closed at
    their end, or when they are closed or fail. Each file is read on a cursor of ``con`` of
    its own: a cursor has its own temporary tables, so the rejects table holds that file's
    rows alone (on ``con`` itself, each file's reading would add its rows to those before)."""
    try:
        yield []
        batch: list[Any] = []
        for name in files:
            with con.cursor() as cursor:
                for record in _records(cursor, name, names, batch_size, option):
                    if len(files) > 1 and isinstance(record, Bad):
                        record = Bad(f"{name}: {record.message}")
                    batch.append(record)
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
        if batch:
            yield batch
    finally:
        con.close()


def _records(con: duckdb.DuckDBPyConnection, name: str, names: list[str], batch_size: int,
             option: str) -> Iterator[Any]:
    """The file's records: DuckDB's listings where Python's reading finds a good row, a
    ``Bad`` record where it finds a bad one; a usage error where they disagree."""
    try:
        good = _listings(con, name, names, batch_size)
        bad: set[int] = set()
        for number, line, problem in _rows(name, option):
            if problem is not None:
                bad.add(number)
                yield Bad(f"line {line}: {problem}")
                continue
            listing = next(good, None)
            if listing is None:
                raise _disagree(name, option)
            yield listing
        if next(good, None) is not None or bad != _rejected(con):
            raise _disagree(name, option)
    except duckdb.Error as e:
        raise UsageError(f"{option} '{name}': cannot be read: {first_line(e)}") from None


def _listings(con: duckdb.DuckDBPyConnection, name: str, names: list[str], batch_size: int) -> Iterator[Any]:
    """The rows DuckDB reads (skipping and noting those it cannot), as listings with the
    input's columns in the order DuckDB gives the files read together (a column the file
    lacks: absent)."""
    for batch in con.sql(f"SELECT * FROM {_forgiving(name)}").to_arrow_reader(batch_size):  # noqa: S608
        present = batch.schema.names
        arrays = [batch.column(present.index(n)) if n in present else pa.nulls(batch.num_rows, pa.string())
                  for n in names]
        yield from batch_listings(pa.RecordBatch.from_arrays(arrays, names=names), csv=True)


def _forgiving(name: str) -> str:
    """DuckDB's table of the file, as the scan reads it, the rows it cannot read skipped
    and noted (``_rejected``)."""
    return csv_table([name], union=False, more=f", ignore_errors = true, store_rejects = true, {_REJECTS}")


def _rejected(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The records DuckDB could not read, by number (its header is record 1)."""
    return {int(r[0]) for r in con.execute("SELECT DISTINCT line FROM policy_scan_rejects").fetchall()}


def _rows(name: str, option: str) -> Iterator[tuple[int, int, str | None]]:
    """Each record after the header as Python's ``csv`` module reads it: its number (the
    header and the blank lines before it count; a blank line counts, and is a record only
    in a file of one column), the line it starts on, and what is wrong with it (None: a
    good row)."""
    csv.field_size_limit(2**31 - 1)  # a cell as long as DuckDB reads (the module's default: 131,072 characters)
    try:
        with open(name, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
            rows = csv.reader(stream)  # (not strict: where it reads otherwise than DuckDB, the two disagree)
            number, width = _after_header(rows)
            if not width:
                return
            line = rows.line_num
            for row in rows:
                number, start, line = number + 1, line + 1, rows.line_num
                if not row:
                    if width > 1:
                        continue
                    row = [""]
                if len(row) != width and not (len(row) == width + 1 and row[-1] == ""):
                    yield number, start, f"{len(row)} cell{'s' if len(row) != 1 else ''}, where the header has {width}"
                elif not all(_utf8(cell) for cell in row):
                    yield number, start, "not UTF-8"
                else:
                    yield number, start, None
    except OSError as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e.strerror or e}") from None
    except csv.Error as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e}") from None


def _after_header(rows: Any) -> tuple[int, int]:
    """Read up to the header (the blank lines before it, which DuckDB skips: ``source.
    csv_table``): the records read, counting those lines, and the header's width (0: none)."""
    number = 0
    for header in rows:
        number += 1
        if header:
            return number, len(header)
    return number, 0


def _utf8(text: str) -> bool:
    """Whether a cell read with ``surrogateescape`` was UTF-8 (no escaped byte in it)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _disagree(name: str, option: str) -> UsageError:
    return UsageError(f"{option} '{name}': cannot be read: DuckDB's reader stops on some row, and Python's csv "
                      "module reads the file's rows otherwise; mend the file's bad rows")
