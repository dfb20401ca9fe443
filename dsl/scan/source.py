"""Reading a scan's input (docs/scan.md, "Formats"): Parquet and CSV through DuckDB, as a
stream of Arrow record batches in input order; JSON lines through the project's own reader
(``dsl.scan.records``, the one ``policy eval`` uses), as batches of records.

JSON lines are not read by DuckDB on purpose: its JSON reader gives every record of a file
one schema (a field that is a number in one record and text in another becomes text in
both) and drops or fails on a broken line, where a scan must decide each record as
``policy eval`` would and give a broken line an error of its own.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import attrs
import duckdb
import pyarrow as pa
import pyarrow.parquet

from ..checking.loader import UsageError
from .pushdown import ColType, parse_type
from .records import Lines, read_json_units
from .schema import DECIDE_COLUMN

__all__ = ["FORMATS", "Batch", "CsvUnread", "Opening", "Part", "PartReader", "Source", "check_field", "check_int96",
           "check_names", "check_types", "csv_header", "csv_table", "first_line", "expand_inputs", "format_of",
           "kept_columns", "open_source", "parquet_leaves", "partition_note"]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl"}
"""The formats, by file extension (of the input files, and of ``--out``)."""

Predicate = Callable[[dict[str, str], str], str | None]
"""Given the input's columns (name to DuckDB type) and its format (parquet or csv), the
pushdown's SQL predicate or None."""


def format_of(path: str, what: str) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"{what} '{path}': cannot tell its format from its extension (one of {known})")
    return fmt


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expand_inputs(patterns: Sequence[str], option: str = "--input") -> list[str]:
    """The input files, in the order named: each pattern is a glob (as a shell reads it),
    a file (whose name may hold glob characters the glob does not match: ``[1].parquet``),
    or a directory (``_directory_files``: what Spark and Hive write a table as). A pattern
    that names nothing is a usage error (naming ``option``, the option the patterns were
    given to)."""
    files: list[str] = []
    for pattern in patterns:
        # the directories a glob matches (data/** matches data/) hold the inputs, they are not inputs
        found = sorted(f for f in glob.glob(pattern, recursive=True) if not os.path.isdir(f)) \
            if glob.has_magic(pattern) else []
        if not found and os.path.isfile(pattern):
            found = [pattern]
        elif not found and os.path.isdir(pattern):
            found = _directory_files(pattern, option)
            if not found:
                raise UsageError(f"{option} '{pattern}': a directory with no Parquet, JSON lines or CSV file under it "
                                 f"(by extension: {', '.join(sorted(FORMATS))})")
        if not found:
            missing = "no file matches" if glob.has_magic(pattern) else "no such file"
            raise UsageError(f"{option} '{pattern}': {missing}")
        files.extend(found)
    return files


_PARTITION = re.compile(r"([^=]+)=[^=]*")


def partition_note(files: Sequence[str], option: str = "--input") -> str | None:
    """A note for input files in a directory named as a Hive partition (``country=FR``, as
    Spark's ``partitionBy`` writes a table): a record holds its file's own columns, as
    Spark reads a file it is given, and as ``decide`` would read the record; the values in
    the path are not fields (DuckDB is told not to add them: ``hive_partitioning = false``)."""
    for name in files:
        for part in Path(name).parent.parts:
            found = _PARTITION.fullmatch(part)
            if found:
                return (f"{option} '{name}': its directory '{part}' is named as a Hive partition, but a record holds "
                        f"only its file's own columns: '{found.group(1)}' is not read from the path")
    return None


def _directory_files(folder: str, option: str) -> list[str]:
    """The files under ``folder`` (at any depth) whose extension names a format, sorted by
    path (so ``part-00000`` before ``part-00001``), as Spark reads a directory: a file or
    directory whose name starts with ``_`` or ``.`` is left out (``_SUCCESS``, the
    ``.crc`` checksums, ``_temporary``), and so is any other file (a ``README``). A
    directory that cannot be read is a usage error."""
    found: list[str] = []

    def refuse(e: OSError) -> None:
        raise UsageError(f"{option} '{e.filename}': cannot be read: {e.strerror}")

    for top, dirs, names in os.walk(folder, onerror=refuse):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found.extend(os.path.join(top, n) for n in names
                     if not n.startswith(("_", ".")) and Path(n).suffix.lower() in FORMATS)
    return sorted(found)


PART_BATCHES = 16
"""The most batches in one part of a split input (``Source.parts``)."""

SAMPLED = 200_000
"""Records of an input from which ``Source.kept_share`` samples (DuckDB's system sample
takes whole vectors of 2,048 records: a small input's 1% could be none)."""

SAMPLE_SEED = 20211015
"""The seed of that sample: the same input gives the same estimate, and so the same
choice of how its parts are read, run after run."""

MAX_SPLIT_FILES = 64
"""The most Parquet files an input may have to be split into parts: each part's query
reads every file's schema (``union_by_name``)."""

_VIRTUAL = ("file_index", "file_row_number")
"""DuckDB's columns that name a Parquet row's file and place in it; a column of the
input with one of these names, in any case (DuckDB's names are not case-sensitive),
hides it (then the input is not split)."""


@attrs.frozen
class Part:
    """The records ``start`` to ``stop`` (stop excluded) of the input's file ``index``
    (``offset``: the records before them in the whole input), read by ``sql``, the
    input's query, with the filter on DuckDB's ``file_index`` and ``file_row_number``
    (which skips the other files' and row groups' data). Small and picklable: a worker
    process reads its parts itself."""

    sql: str
    index: int
    start: int
    stop: int
    offset: int
    file: str | None = None
    """The file's name, for a message about it that DuckDB's does not name."""

    @property
    def records(self) -> int:
        return self.stop - self.start


Batch: TypeAlias = pa.RecordBatch | list[Any] | Lines
"""A batch of an input: an Arrow batch (Parquet, CSV), the records of JSON values, or
JSON lines not read yet."""


@attrs.define
class Source:
    """An open input: its format, its columns (name to DuckDB type; empty for JSON lines and
    for CSV files none of which has a header), its number of records when it is known
    cheaply, and its batches."""

    fmt: str
    columns: dict[str, str]
    total: int | None
    narrowed: bool
    """The batches carry the pushdown's column (``schema.DECIDE_COLUMN``)."""
    batches: Generator[Batch, None, None]
    """The whole input in one stream (``close`` it to stop: a CSV input read again holds a
    DuckDB database from the start, ``csv_rows.csv_source``; the others start when read)."""
    sql: str | None = None
    """The query that reads a part (``parts``); None when the input cannot be split."""
    plain_sql: str | None = None
    """The query that reads a part without the pushdown's column (``parts``)."""
    counts: tuple[int, ...] = ()
    """The records of each input file (Parquet)."""
    share_sql: str | None = None
    """The query of ``kept_share``."""
    share_all_sql: str | None = None
    """The query of ``kept_share`` over every record, where its sample holds none."""
    files: tuple[str, ...] = ()
    """The input files, in the order of ``Part.index``."""
    _share: float | None = attrs.field(default=None, init=False)

    def kept_share(self) -> float:
        """The share of the input's records the pushdown's column keeps (1 without one),
        estimated by DuckDB on a sample of about 1% of them spread over the whole input
        (40 to 60 ms on 1,000,000 records), or on all of them below ``SAMPLED`` or where the
        sample holds none (it takes whole vectors of 2,048 records: a few hundred thousand
        records may give none): the first records alone could all be one category's, in a
        catalogue sorted by it. Measured once; 0 where it cannot be (the column is then
        kept)."""
        if self._share is None:
            self._share = 1.0
            if self.narrowed and self.share_sql is not None:
                try:
                    with duckdb.connect() as con:
                        found = con.execute(self.share_sql).fetchall()[0][0]
                        if found is None and self.share_all_sql is not None:  # a sample of no record
                            found = con.execute(self.share_all_sql).fetchall()[0][0]
                    self._share = 0.0 if found is None else float(found)  # (no record: kept)
                except duckdb.Error:
                    self._share = 0.0
        return self._share

    @property
    def splittable(self) -> bool:
        return self.sql is not None

    def parts(self, processes: int, batch_size: int, after: int = 0, *, narrowed: bool = True) -> Iterator[Part]:
        """The input's records from the ``after``-th on, in consecutive parts for
        ``processes`` processes to read and decide each on its own: the first parts small
        (a worker just started soon has something done), then growing, up to
        ``PART_BATCHES`` batches and half a process's share of what remains (so that the
        last parts, small, end together; each part's query costs some milliseconds).
        ``narrowed``: read with the pushdown's column (if any), else without."""
        assert self.sql is not None and self.plain_sql is not None
        sql = self.sql if narrowed else self.plain_sql
        smallest = 2 * batch_size  # a part's query costs some milliseconds, whatever its size
        largest = max(smallest, PART_BATCHES * batch_size)
        remaining, size, offset = sum(self.counts) - after, smallest, 0
        for index, count in enumerate(self.counts):
            start = min(count, max(0, after - offset))
            offset += start
            while start < count:
                stop = min(count, start + max(smallest, min(size, largest, remaining // (2 * processes))))
                yield Part(sql, index, start, stop, offset, self.files[index] if index < len(self.files) else None)
                offset += stop - start
                remaining -= stop - start
                start, size = stop, 2 * size


def open_source(patterns: Sequence[str], *, batch_size: int, at_field: tuple[str, ...] | None,
                predicate: Predicate | None, option: str = "--input", stream_batch: int | None = None,
                opening: Opening | None = None, fields: frozenset[str] | None = None) -> Source:
    """Open the inputs (all of one format), their stream in batches of ``batch_size``
    records (JSON lines) or ``stream_batch`` (Parquet, CSV; default ``batch_size``).
    Raises ``UsageError`` for a file that cannot be found or read (also while its batches
    are read), and for an ``at_field`` that no column holds (Parquet and CSV).
    ``option`` is the command-line option the patterns were given to, which the messages
    about the files name. ``opening``: the same patterns, ``at_field`` and ``option``
    already being inspected (``Opening``). ``fields``: the only top-level fields the
    batches need (Parquet and CSV; a CSV column ``a.b`` is field ``a``; None: all)."""
    found = opening.result() if opening is not None else _inspect(patterns, at_field, option)
    if found.fmt == "jsonl":
        return Source(found.fmt, {}, None, False, _json_batches(found.files, batch_size, option))
    if found.con is None:  # CSV files none of which has a header
        return Source(found.fmt, {}, 0, False, _no_batches())
    return _duckdb_source(found, batch_size=stream_batch or batch_size, predicate=predicate, option=option,
                          fields=fields)


@attrs.define
class _Inspected:
    """The first half of opening an input: its files and format; for Parquet and CSV,
    DuckDB's connection (which the stream then reads through), the input's table
    expression and columns, and its record counts (by file; None: it cannot be split)."""

    fmt: str
    files: list[str]
    con: duckdb.DuckDBPyConnection | None = None
    table: str = ""
    columns: dict[str, str] = attrs.Factory(dict)
    counts: tuple[int, ...] | None = None
    total: int | None = None


def _inspect(patterns: Sequence[str], at_field: tuple[str, ...] | None, option: str) -> _Inspected:
    files = expand_inputs(patterns, option)
    fmts = {format_of(f, option) for f in files}
    if len(fmts) > 1:
        raise UsageError(f"{option}: the files are of several formats ({', '.join(sorted(fmts))}); scan one at a time")
    fmt = fmts.pop()
    if fmt == "jsonl":
        return _Inspected(fmt, files)
    if fmt == "csv" and all(_headerless(f) for f in files):
        # no header: no columns and no records (DuckDB is not asked: it would name a column
        # of its own, ``column0``, and it refuses some files of blank lines, as ``\r\n\n``)
        return _Inspected(fmt, files, total=0)
    table = _table_sql(fmt, files, option)
    con = duckdb.connect()  # (each connect makes a database: some 15 ms; the stream reads through this one)
    try:
        columns = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
        check_names(files, fmt, columns, option)
        if at_field is not None:
            check_field("--at-field", at_field, columns, fmt)
        counts = _file_counts(con, table, files, columns) if fmt == "parquet" else None
        if fmt == "parquet" and counts is None:
            total: int | None = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        else:
            total = sum(counts) if counts is not None else None
    except duckdb.Error as e:
        con.close()
        raise cannot_read(option, e, files, fmt) from None
    except BaseException:
        con.close()
        raise
    return _Inspected(fmt, files, con, table, columns, counts, total)


def _check_types(con: duckdb.DuckDBPyConnection, files: Sequence[str], table: str, read: str,
                 option: str) -> None:
    """``check_types`` on DuckDB's reading: each file's own schema, and the columns the
    scan reads (``read``: the projection) of the files read together (``union_by_name``)."""
    joined = con.sql(f"SELECT {read} FROM {table} LIMIT 0").arrow().schema  # noqa: S608 - our own SQL
    check_types(((name, con.sql(f"SELECT * FROM read_parquet({_quote(_literal(name))}, hive_partitioning = false) "
                                "LIMIT 0").arrow().schema) for name in files), joined, option)  # noqa: S608


def check_types(own: Iterable[tuple[str, pa.Schema]], joined: pa.Schema, option: str) -> None:
    """Parquet files read together have one type per column, with either engine (DuckDB's
    ``union_by_name``, Spark's ``unionByName``): where that type (``joined``) reads a
    file's values otherwise than the file's own type (``own``: each file's name and its
    schema as the engine reads it alone), as a number or a date as text, a text as a
    number, a boolean or an integer as a double, a decimal as a double (not an integer as
    a wider one or a whole decimal, a decimal as a wider one, a float as a double, or a
    struct with more fields), a decision on the value read is not the one ``decide``
    gives that record: a usage error, naming the column and the file (scan the files
    whose types differ one at a time). Only the columns of ``joined`` are compared."""
    for name, schema in own:
        for field in schema:
            index = joined.get_field_index(field.name)
            if index >= 0 and _changed(field.type, joined.field(index).type):
                raise UsageError(
                    f"{option} '{name}': column '{field.name}' is {field.type} there, but {joined.field(index).type} "
                    "read with the other files, which changes its values; scan the files whose types differ one at a "
                    "time")


def _changed(own: pa.DataType, joined: pa.DataType) -> bool:
    """Whether reading a value of type ``own`` as type ``joined`` may change it."""
    if own == joined or pa.types.is_null(own):
        return False
    if pa.types.is_integer(own) and (pa.types.is_integer(joined) or pa.types.is_decimal(joined) and joined.scale == 0):
        return False  # DuckDB widens to an integer (or a whole decimal: an int in the listing) that holds both
    if pa.types.is_decimal(own) and pa.types.is_decimal(joined):  # an int at scale 0, else a float
        whole = (own.scale == 0) != (joined.scale == 0)
        return bool(whole or joined.precision - joined.scale < own.precision - own.scale)
    if pa.types.is_floating(own) and pa.types.is_floating(joined):
        return bool(own.bit_width > joined.bit_width)
    if (pa.types.is_string(own) or pa.types.is_large_string(own)) and (
            pa.types.is_string(joined) or pa.types.is_large_string(joined)):
        return False
    if pa.types.is_struct(own) and pa.types.is_struct(joined):
        return any(joined.get_field_index(f.name) < 0 or _changed(f.type, joined.field(f.name).type) for f in own)
    lists = (pa.types.is_list, pa.types.is_large_list)
    if any(a(own) for a in lists) and any(b(joined) for b in lists):
        return _changed(own.value_type, joined.value_type)
    if pa.types.is_map(own) and pa.types.is_map(joined):
        return _changed(own.key_type, joined.key_type) or _changed(own.item_type, joined.item_type)
    return True


class Opening:
    """``open_source``'s first half (the files found, their format, and DuckDB's
    connection, schema and record counts) done in a thread of its own while the caller
    loads the policy set: DuckDB does this work without holding the GIL (some 30 ms of a
    scan's start, mostly creating DuckDB's database). Pass it to ``open_source`` with the
    same patterns, ``at_field`` and ``option``; it raises what the first half raised. A
    scan forks its workers later: by then the thread has ended (``result`` joins it)."""

    def __init__(self, patterns: Sequence[str], *, at_field: tuple[str, ...] | None, option: str = "--input"):
        self._found: _Inspected | None = None
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, args=(list(patterns), at_field, option),
                                        name="policy-scan-open", daemon=True)
        self._thread.start()

    def _run(self, patterns: list[str], at_field: tuple[str, ...] | None, option: str) -> None:
        try:
            self._found = _inspect(patterns, at_field, option)
        except BaseException as e:  # noqa: BLE001 - raised again by ``result``, in the caller's thread
            self._error = e

    def result(self) -> _Inspected:
        """What the first half found (its connection now the caller's)."""
        self._thread.join()
        self._taken = True
        if self._error is not None:
            raise self._error
        assert self._found is not None
        return self._found

    def close(self) -> None:
        """The connection closed where ``result`` was never asked for (the policy set did
        not load, the options were wrong)."""
        self._thread.join()
        if not self._taken and self._found is not None and self._found.con is not None:
            self._found.con.close()


def _no_batches() -> Generator[list[Any], None, None]:
    yield from ()


def _json_batches(files: Sequence[str], batch_size: int, option: str) -> Generator[list[Any] | Lines, None, None]:
    """The records of JSON inputs, in batches of about ``batch_size``: JSON lines as
    ``Lines`` (the lines of one file, read where the batch is decided), the records of a
    file that is one JSON value as lists."""
    held: list[Any] = []  # records of files that are one JSON value
    for name in files:
        named = name if len(files) > 1 else None  # (which file's line: named where there are several)
        try:
            with open(name, "rb") as stream:
                lines: list[bytes] = []
                first = 1
                for unit in read_json_units(stream):
                    if isinstance(unit, list):
                        held.extend(unit)
                        if len(held) >= batch_size:
                            yield held
                            held = []
                        continue
                    if held:
                        yield held
                        held = []
                    if not lines:
                        first = unit.first
                    lines.extend(unit.lines)
                    start = 0
                    while len(lines) - start >= batch_size:
                        yield from _some(Lines(lines[start:start + batch_size], first + start, named))
                        start += batch_size
                    lines, first = lines[start:], first + start
                yield from _some(Lines(lines, first, named))
        except OSError as e:
            raise UsageError(f"{option} '{name}': cannot be read: {e.strerror or e}") from None
    if held:
        yield held


def _some(lines: Lines) -> Iterator[Lines]:
    """``lines``, unless they hold no record (blank lines only)."""
    if lines.records:
        yield lines


def _literal(name: str) -> str:
    """A file's name as DuckDB reads it literally: DuckDB expands the glob characters
    ``*``, ``?`` and ``[`` in every name it is given (the files are found already), so
    each is written as a class that holds only it (``q?.parquet``: ``q[?].parquet``)."""
    return re.sub(r"[*?\[]", lambda m: f"[{m.group()}]", name)


_CSV_OPTIONS = ("header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', skip = 0, "
               "comment = '', strict_mode = true, hive_partitioning = false")
"""How DuckDB reads CSV: every cell as text, read by ``convert.csv_cell`` (a record's types
do not depend on the others'), and nothing left to its sniffer that could drop a row
silently (it would skip leading rows it takes for a preamble, and lines starting with a
character it takes for a comment)."""


def csv_table(files: Sequence[str], *, union: bool = True, option: str = "--input", more: str = "") -> str:
    """DuckDB's table expression of these CSV files (``_CSV_OPTIONS``, then ``more``), the
    blank lines before their header skipped (``skip = 0`` would read the first, blank, as
    the header)."""
    listed = "[" + ", ".join(_quote(_literal(f)) for f in files) + "]"
    skip = {_blank_lines(f) for f in files}
    if len(skip) > 1:
        raise UsageError(f"{option}: the CSV files start with different numbers of blank lines; remove them")
    options = _CSV_OPTIONS.replace("skip = 0", f"skip = {skip.pop() if skip else 0}")
    return f"read_csv({listed}, {options}{', union_by_name = true' if union else ''}{more})"


_HEAD = 65536
"""The bytes of a CSV file looked at before DuckDB reads it (``_head``)."""


def _head(name: str) -> tuple[bytes, bool]:
    """A CSV file's first ``_HEAD`` bytes, its byte order mark left out, and whether they
    are all of it; nothing where it cannot be read (DuckDB tells why)."""
    try:
        with open(name, "rb") as stream:
            head = stream.read(_HEAD + 1)
    except OSError:
        return b"", False
    return head[:_HEAD].removeprefix(b"\xef\xbb\xbf"), len(head) <= _HEAD


def _blank_lines(name: str) -> int:
    """The blank lines a file starts with (among its first 64 KiB)."""
    blank = 0
    for line in _head(name)[0].splitlines():  # (\n, \r\n and \r end a line)
        if line:
            break
        blank += 1
    return blank


def _headerless(name: str) -> bool:
    """Whether a CSV file has no header: it is empty, or blank lines only (DuckDB then
    names a column of its own, ``column0``)."""
    head, whole = _head(name)
    return whole and not head.strip(b"\r\n")


def _table_sql(fmt: str, files: Sequence[str], option: str) -> str:
    if fmt == "parquet":
        listed = "[" + ", ".join(_quote(_literal(f)) for f in files) + "]"
        return f"read_parquet({listed}, union_by_name = true, hive_partitioning = false)"
    return csv_table(files, option=option)


_RENAMED = re.compile(r"(.+)_[0-9]+")


def check_names(files: Sequence[str], fmt: str, columns: dict[str, str] | None, option: str) -> None:
    """Column names (and struct fields) that differ only in case are a usage error, with
    either engine: DuckDB and Spark match names ignoring case, so two such names become
    one column across files (``Title`` in one, ``title`` in another), and within a file
    DuckDB reads the second as ``Title_1`` (Spark refuses the file): either way a listing
    would lack the field its file names. Read off the files' own names (their Parquet
    schema, their CSV header as DuckDB trims it). ``columns``: DuckDB's columns of the
    input, where one file is looked at only if it has a struct or a column ``NAME_<n>``
    beside a column ``name``; None: every file is."""
    if columns is not None and len(files) == 1:
        lowered = {c.lower() for c in columns}
        renamed = any((m := _RENAMED.fullmatch(c)) and m.group(1).lower() in lowered for c in columns)
        if not renamed and not any("STRUCT(" in t.upper() for t in columns.values()):
            return
    spelled: dict[str, tuple[str, str]] = {}
    for name in files:
        mine: dict[str, str] = {}
        for column in _own_names(name, fmt):
            if not column:
                continue  # (DuckDB names an empty one itself)
            if column.lower() in mine:  # twice in one file (the same, or but for case)
                raise UsageError(f"{option} '{name}': the columns '{mine[column.lower()]}' and '{column}' differ only "
                                 "in case, or not at all (it names a column twice), which DuckDB and Spark do not "
                                 "tell apart; rename one")
            mine[column.lower()] = column
            there = spelled.setdefault(column.lower(), (column, name))
            if there[0] != column:
                raise UsageError(f"{option} '{name}': the columns '{there[0]}' (in '{there[1]}') and '{column}' "
                                 "differ only in case, which DuckDB and Spark do not tell apart; rename one")


def _own_names(name: str, fmt: str) -> list[str]:
    """A file's column names (and a Parquet file's struct fields, as dotted paths), as the
    file spells them; none where it cannot be read (DuckDB's error, if any, is told)."""
    try:
        return _paths(pa.parquet.read_schema(name)) if fmt == "parquet" else csv_header(name)
    except (OSError, csv.Error, pa.ArrowException):
        return []


def parquet_leaves(name: str, tops: Iterable[str] | None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The leaf columns of a Parquet file's schema under the top-level columns ``tops``
    (None: all), each as its dotted path, its physical type (``INT64``, ``INT96`` …) and
    its logical type's JSON (``{"Type": "Timestamp", "timeUnit": "nanoseconds", …}``);
    none where the file cannot be read (its reader tells why)."""
    try:
        schema = pa.parquet.read_metadata(name).schema
    except (OSError, pa.ArrowException):
        return
    wanted = None if tops is None else list(tops)
    for i in range(len(schema)):
        column = schema.column(i)
        if wanted is None or any(column.path == t or column.path.startswith(t + ".") for t in wanted):
            yield column.path, str(column.physical_type), json.loads(column.logical_type.to_json())


def check_int96(name: str, tops: Iterable[str] | None, option: str, shown: str | None = None) -> None:
    """A usage error where a column the scan reads (under ``tops``, None: any) of the
    Parquet file ``name`` (``shown``: as the user named it) holds an INT96 timestamp, with
    either engine. By convention (Spark, Hive, Impala; pyarrow writes it so) an INT96 is an
    instant in UTC, which Spark reads; DuckDB reads it as a local time (a TIMESTAMP, read in
    each policy's timezone) and cannot be told otherwise, so the engines would decide the
    record differently."""
    for path, physical, _ in parquet_leaves(name, tops):
        if physical == "INT96":
            raise UsageError(f"{option} '{shown or name}': column '{path}' is an INT96 timestamp, which DuckDB reads "
                             "as a local time and Spark as an instant in UTC; write it as a Parquet TIMESTAMP "
                             "(pyarrow's default; Spark's spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS) "
                             "to scan it")


def csv_header(name: str) -> list[str]:
    """A CSV file's header as Python's csv module reads it past the blank lines before it,
    its names trimmed as DuckDB trims them (a byte that is not UTF-8 kept as a lone
    surrogate: ``surrogateescape``). Raises ``OSError`` or ``csv.Error``."""
    with open(name, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
        return [h.strip() for h in next((row for row in csv.reader(stream) if row), [])]


def _paths(fields: Any, prefix: str = "") -> list[str]:
    """The dotted paths of the fields, and of the fields of structs in them (in lists too)."""
    found = []
    for field in fields:
        found.append(prefix + field.name)
        kind = field.type
        while pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            kind = kind.value_type
        if pa.types.is_struct(kind):
            found += _paths(kind, prefix + field.name + ".")
    return found


def check_field(option: str, path: tuple[str, ...], columns: dict[str, str], fmt: str) -> None:
    """A usage error where no record of the input can hold the field at ``path`` (named by
    ``option``): in Parquet, no column, or a path through a struct without that field or
    through a column that is not a struct; in CSV, no column named by the path or a part
    of it (a cell may hold a JSON object). An input with no columns (CSV files none of
    which has a header) has no records, and so none that lacks the field."""
    if not columns:
        return
    dotted = ".".join(path)
    if fmt == "csv":
        found = any(c == dotted or c.startswith(dotted + ".") or dotted.startswith(c + ".") for c in columns)
    else:
        found = path[0] in columns and _holds(parse_type(columns[path[0]]), path[1:])
    if not found:
        shown = ", ".join(list(columns)[:20])
        raise UsageError(f"{option} '{dotted}': the input has no such column (its columns: {shown})")


def _holds(kind: ColType, rest: tuple[str, ...]) -> bool:
    """Whether a value of type ``kind`` may hold the path ``rest`` (a type the pushdown
    does not read, ``unknown``, may)."""
    for part in rest:
        if kind.kind == "unknown":
            return True
        found = dict(kind.fields).get(part) if kind.kind == "struct" else None
        if found is None:
            return False
        kind = found
    return True


def _duckdb_source(found: _Inspected, *, batch_size: int, predicate: Predicate | None, option: str,
                   fields: frozenset[str] | None) -> Source:
    con, table, columns, counts, total = found.con, found.table, found.columns, found.counts, found.total
    assert con is not None
    try:
        where = predicate(columns, found.fmt) if predicate is not None else None
    except BaseException:
        con.close()
        raise
    read = _projection(columns, fields, csv=found.fmt == "csv")
    if found.fmt == "parquet":
        kept = kept_columns(columns, fields, csv=False)
        if any("TIMESTAMP" in columns[c].upper() for c in (columns if kept is None else kept)):
            try:
                for name in found.files:  # (DuckDB reads an INT96 as a TIMESTAMP)
                    check_int96(name, kept, option)
            except BaseException:
                con.close()
                raise
    if found.fmt == "parquet" and len(found.files) > 1:
        try:
            _check_types(con, found.files, table, read, option)
        except duckdb.Error as e:
            con.close()
            raise cannot_read(option, e, found.files) from None
        except BaseException:
            con.close()
            raise
    select = read if where is None else f'{read}, (({where}) IS NOT FALSE) AS "{DECIDE_COLUMN}"'
    sql, plain = f"SELECT {select} FROM {table}", f"SELECT {read} FROM {table}"
    sample = f" USING SAMPLE 1 PERCENT (system, {SAMPLE_SEED})" if (total or 0) >= SAMPLED else ""
    share, share_all = (None, None) if where is None else (
        f"SELECT avg(CASE WHEN ({where}) IS NOT FALSE THEN 1 ELSE 0 END) FROM (SELECT * FROM {table}{s})"
        for s in (sample, ""))
    return Source(found.fmt, columns, total, where is not None,
                  _read(_arrow_batches(con, sql, batch_size), option, found.files, found.fmt),
                  sql if counts is not None else None, plain if counts is not None else None, counts or (), share,
                  share_all if sample else None, tuple(found.files))


def kept_columns(columns: Iterable[str], fields: frozenset[str] | None, *, csv: bool) -> list[str] | None:
    """The columns a scan reads, of an input's (or a file's) ``columns``: those of
    ``fields`` (a CSV column ``a.b`` belongs to field ``a``), in the input's order; None
    for all of them (``fields`` None). Either engine reads no other: on the peers'
    workload two of eight, which cost DuckDB 0.04 s of CPU and the listings built in
    Python 12% of their time a million records; and a column Spark cannot read (a
    timestamp in nanoseconds) stops no scan that does not read it."""
    if fields is None:
        return None
    return [c for c in columns if (c.split(".")[0] if csv else c) in fields]


def _projection(columns: dict[str, str], fields: frozenset[str] | None, *, csv: bool) -> str:
    """``kept_columns`` as DuckDB's select list; ``*`` for all of them, or where none is left."""
    kept = kept_columns(columns, fields, csv=csv)
    if not kept or len(kept) == len(columns) or any("\x00" in c for c in kept):
        return "*"
    return ", ".join('"' + c.replace('"', '""') + '"' for c in kept)


def _file_counts(con: duckdb.DuckDBPyConnection, table: str, files: Sequence[str],
                 columns: dict[str, str]) -> tuple[int, ...] | None:
    """The records of each Parquet file, None when the input cannot be split into parts:
    too many files, or a column that hides one of DuckDB's columns the parts are read by."""
    if len(files) > MAX_SPLIT_FILES or set(_VIRTUAL) & {c.lower() for c in columns}:
        return None
    try:
        found = dict(con.execute(f"SELECT file_index, count(*) FROM {table} GROUP BY file_index").fetchall())
    except duckdb.BinderException:  # a DuckDB without the column file_index
        return None
    if not set(found) <= set(range(len(files))):  # not DuckDB's file_index: the parts would miss records
        return None
    return tuple(int(found.get(i, 0)) for i in range(len(files)))


def first_line(e: Exception) -> str:
    """The first line of an error's message (DuckDB's go on with its search space and fixes)."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


_FILE_IN_MESSAGE = re.compile(r'^\s*file = (.+)$|file "([^"]+)"', re.MULTILINE)


class CsvUnread(UsageError):
    """DuckDB stopped on a CSV input (a row with the wrong number of cells, bytes that
    are not UTF-8, a file it cannot sniff): ``scan`` reads it again with ``csv_source``,
    where each such row is a bad record of its own. Elsewhere it is the usage error it
    says."""

    def __init__(self, message: str, files: Sequence[str]):
        super().__init__(message)
        self.files = list(files)


def cannot_read(option: str, e: Exception, files: Sequence[str], fmt: str = "parquet") -> UsageError:
    """The usage error of an input DuckDB could not read: its message's first line, and
    the file, as DuckDB's message names it (or the only file)."""
    first = first_line(e)
    named = _FILE_IN_MESSAGE.search(str(e))
    name = (named.group(1) or named.group(2)).strip() if named else files[0] if len(files) == 1 else None
    said = f"{option} '{name}': cannot be read: {first}" if name is not None and name not in first else (
        f"{option}: cannot be read: {first}")
    if fmt == "csv" and not isinstance(e, (FileNotFoundError, PermissionError)):
        return CsvUnread(said, files)
    return UsageError(said)


def _arrow_batches(con: duckdb.DuckDBPyConnection, sql: str,
                   batch_size: int) -> Generator[pa.RecordBatch, None, None]:
    """The batches of ``sql`` through ``con``, which they close at their end (DuckDB's
    errors raised as they come: ``_read`` turns them into usage errors). A stream never
    read leaves ``con`` to the garbage collector, which closes it."""
    with con:
        yield from _batches(con, sql, batch_size)


def _batches(con: duckdb.DuckDBPyConnection, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    reader: pa.RecordBatchReader = con.sql(sql).to_arrow_reader(batch_size)
    for batch in reader:
        if batch.num_rows:
            yield batch


def _read(batches: Iterator[pa.RecordBatch], option: str, files: Sequence[str] = (),
          fmt: str = "parquet") -> Generator[pa.RecordBatch, None, None]:
    """``batches``; an error of DuckDB's while they are read (pyarrow's reader raises it
    as an ``OSError`` or an Arrow error: a damaged page, a CSV row with too many cells)
    becomes a usage error naming ``option`` and the file (``CsvUnread`` for CSV)."""
    try:
        yield from batches
    except (duckdb.Error, pa.ArrowException, OSError) as e:
        raise cannot_read(option, e, files, fmt) from None


def _query_batches(con: duckdb.DuckDBPyConnection, sql: str, batch_size: int,
                   files: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
    return _read(_batches(con, sql, batch_size), "--input", files)


class PartReader:
    """Reads parts (``Source.parts``) through one DuckDB connection of one thread (the
    processes of a scan are its parallelism), opened at the first part."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def read(self, part: Part, batch_size: int) -> Iterator[pa.RecordBatch]:
        """The part's batches, in input order."""
        if self._con is None:
            self._con = duckdb.connect(config={"threads": 1})
        where = (f" WHERE file_index = {part.index} AND file_row_number >= {part.start}"
                 f" AND file_row_number < {part.stop}")
        return _query_batches(self._con, part.sql + where, batch_size, () if part.file is None else (part.file,))

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
