"""CSV read by Python's ``csv`` module, for an input DuckDB's reader stopped on (a row
with the wrong number of cells, bytes that are not UTF-8: ``source.CsvUnread``): each good
row the listing DuckDB's reading gives, each bad row a record in error of its own, so that
the scan goes on, as it does past a broken JSON line (docs/scan.md, "Formats")."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pyarrow as pa

from ..checking.loader import UsageError
from .convert import batch_listings
from .records import Bad
from .source import Source

__all__ = ["csv_source"]


def csv_source(files: Sequence[str], batch_size: int, option: str = "--input") -> Source:
    """CSV files read by Python's ``csv`` module, for an input DuckDB stopped on
    (``CsvUnread``): the same dialect (a header line, ``,``, ``"`` doubled), each row the
    listing DuckDB's reading gives (``convert.batch_listings`` of its cells as text), and
    a row whose cells do not match its header, or whose bytes are not UTF-8, a ``Bad``
    record of its own: the scan goes on. No pushdown, no parts (batches of listings, as
    JSON lines are read)."""
    columns = {name: "VARCHAR" for f in files for name in _csv_header(f, option)}
    return Source("csv", columns, None, False, _csv_batches(files, batch_size, option))


def _csv_header(name: str, option: str) -> list[str]:
    """The names of a CSV file's header, as DuckDB trims them (none for an empty file)."""
    try:
        with open(name, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
            return [h.strip() for h in next(csv.reader(stream), [])]
    except OSError as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e.strerror or e}") from None
    except csv.Error as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e}") from None


def _csv_batches(files: Sequence[str], batch_size: int, option: str) -> Generator[list[Any], None, None]:
    batch: list[Any] = []
    for name in files:
        for record in _csv_records(name, batch_size, option):
            batch.append(record)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _csv_records(name: str, batch_size: int, option: str) -> Iterator[Any]:
    csv.field_size_limit(2**31 - 1)  # a cell as long as DuckDB's reading would take
    try:
        with open(name, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
            rows = csv.reader(stream)
            header = next(rows, None)
            if header is None:
                return
            names = [h.strip() for h in header]  # as _csv_header reads them
            if any(not _utf8(n) for n in names) or len({n.lower() for n in names}) != len(names):
                raise UsageError(f"{option} '{name}': cannot be read: its header is not UTF-8, or names a column twice")
            pending: list[Any] = []
            line = rows.line_num
            for row in rows:
                start, line = line + 1, rows.line_num
                if not row:
                    continue  # a blank line
                if len(row) != len(names):
                    pending.append(Bad(f"line {start}: {len(row)} cells, where the header has {len(names)}"))
                elif not all(_utf8(cell) for cell in row):
                    pending.append(Bad(f"line {start}: not UTF-8"))
                else:
                    pending.append(row)
                if len(pending) >= batch_size:
                    yield from _as_listings(pending, names)
                    pending = []
            yield from _as_listings(pending, names)
    except OSError as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e.strerror or e}") from None
    except csv.Error as e:
        raise UsageError(f"{option} '{name}': cannot be read: {e}") from None


def _utf8(text: str) -> bool:
    """Whether a cell read with ``surrogateescape`` was UTF-8 (no escaped byte in it)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _as_listings(pending: list[Any], names: list[str]) -> Iterator[Any]:
    """The rows (lists of cells) as listings, the ``Bad`` records among them as they are."""
    good = [r for r in pending if not isinstance(r, Bad)]
    made = iter(batch_listings(pa.RecordBatch.from_arrays(
        [pa.array([r[k] for r in good], pa.string()) for k in range(len(names))], names=names), csv=True)
        if good else [])
    for record in pending:
        yield record if isinstance(record, Bad) else next(made)
