"""The Spark engine of ``policy scan`` (``--engine spark``) and ``dsl.scan.spark``, the same
scan as a Spark job (docs/scan.md, "The Spark engine").

The records are decided on the executors by ``mapInArrow`` with the batch decider the
DuckDB engine uses (``dsl.scan.decide``): each executor's Python worker loads the policy
set once from the policy files' text, shipped with the job, and checks its
``policy_hash``. The pushdown is ``dsl.scan.pushdown``'s predicate rendered in Spark SQL
(``dsl.scan.spark_sql``), a column that marks the records to decide: the others get their
plain allow on the executor from their id and ``at`` alone, as with DuckDB.

Input order: each input file is read on its own (Parquet and CSV by Spark's readers, JSON
lines whole with ``binaryFile`` and the project's own reader) with three keys: the file's
place in the inputs, the start of the split within the file, and a monotonically
increasing row id. The output is sorted by them, coalesced to one part, and that part is
renamed over ``--out``. Each decided run of rows sends its tally to the driver through an
accumulator, keyed by its first row's keys (a task that runs twice is counted once), and
the driver merges the tallies in key order, so the report is the DuckDB engine's.

pyspark is imported when a function here runs, not when the module is imported.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pyarrow as pa

from ..atomic import replace_with
from ..checking.frontend import PathLike, compile_paths
from ..checking.loader import UsageError, is_test_file
from ..diagnostics import PolicyError
from ..evaluate.policies import Policies
from .convert import batch_listings
from .decide import Job, decide_batch
from .output import Writer, unwritable
from .pool import load_sources
from .records import Bad, read_json_records
from .report import Tally
from .run import BATCH_SIZE, ScanResult, finish, new_job, read_fields, scan_job, sql_predicate
from .schema import DECIDE_COLUMN
from .source import (
    check_field,
    check_int96,
    check_names,
    check_types,
    expand_inputs,
    format_of,
    kept_columns,
    parquet_leaves,
    partition_note,
)
from .spark_sql import Untranslatable, to_spark

if TYPE_CHECKING:
    from pyspark.accumulators import Accumulator
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = ["KEYS", "SPARK_SQL_LIMIT", "duckdb_types", "narrowing", "scan_spark", "session", "spark",
           "spark_predicate"]

FILE, BLOCK, ROW = "__policy_scan_file", "__policy_scan_block", "__policy_scan_row"
KEYS = (FILE, BLOCK, ROW)
"""The columns that keep the input order: the file's place, the split's start, the row."""

BAD = "__policy_scan_bad"
"""A CSV input's column of the rows whose number of cells is not the header's: the row's
text (Spark's ``columnNameOfCorruptRecord``), null for a good row. Its name is this, with
``_`` added while a file's header has it (``Task.bad``)."""

_PENALTY = "struct<rule:string,ladder:string,step:bigint,actions:array<string>>"

Unit = tuple[tuple[int, int, int], Tally]
"""A run of rows decided together: its first row's keys, and its tally (record numbers
counted from 1 within the run)."""


@attrs.frozen
class Task:
    """What each executor decides with (pickled into the job)."""

    sources: dict[str, str]
    policy_hash: str
    job: Job
    batch_size: int = BATCH_SIZE
    keyed: bool = True
    names: tuple[str, ...] = ()
    """The input's column names: the frame goes to ``mapInArrow`` with its columns renamed
    (pyspark's ``mapInArrow`` cannot pass a column whose name has a dot)."""
    headers: tuple[tuple[str, int], ...] = ()
    """A CSV input's files by place: each one's name (as given) and the cells of its header."""
    bad: str = BAD
    """The name of ``BAD``'s column."""


# ------------------------------------------------------------------ on the executors

_LOADED: dict[str, Policies] = {}
"""The policy sets an executor's Python worker has loaded, by hash."""


def _policies(task: Task) -> Policies:
    found = _LOADED.get(task.policy_hash)
    if found is None:
        found = load_sources(task.sources)
        if found.policy_hash != task.policy_hash:
            raise RuntimeError(f"policy scan: the executor's policy set is {found.policy_hash}, "
                               f"not the driver's {task.policy_hash}")
        _LOADED[task.policy_hash] = found
    return found


def _output(piece: pa.RecordBatch | str, keys: Sequence[list[int]] | None) -> pa.RecordBatch:
    """A decided batch as the Arrow batch ``mapInArrow`` returns (JSON lines: one text
    column ``value``, each row a line as ``policy eval`` writes it), with the keys."""
    if isinstance(piece, str):
        arrays: list[pa.Array] = [pa.array(piece.split("\n")[:-1], pa.string())]
        names = ["value"]
    else:
        arrays, names = list(piece.columns), list(piece.schema.names)
    if keys is not None:
        arrays += [pa.array(k, pa.int64()) for k in keys]
        names += list(KEYS)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _runs(batch: pa.RecordBatch) -> Iterator[tuple[pa.RecordBatch, list[list[int]]]]:
    """The batch cut where the file or the split changes (the rows of one split are in
    input order), each piece without its keys, and its keys."""
    keys = [batch.column(batch.schema.names.index(k)).to_pylist() for k in KEYS]
    data = batch.drop_columns(list(KEYS))
    start = 0
    for i in range(1, batch.num_rows + 1):
        if i == batch.num_rows or (keys[0][i], keys[1][i]) != (keys[0][start], keys[1][start]):
            yield data.slice(start, i - start), [k[start:i] for k in keys]
            start = i


def decide_arrow(task: Task, units: Accumulator[list[Unit]] | None,
                 batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function for Parquet, CSV and a data team's DataFrame."""
    policies = _policies(task)
    done: list[Unit] = []
    for renamed in batches:
        if not renamed.num_rows:
            continue
        batch = pa.RecordBatch.from_arrays(renamed.columns, names=list(task.names))
        if not task.keyed:
            yield _output(decide_batch(policies, task.job, batch, 0)[0], None)
            continue
        for data, keys in _runs(batch):
            piece, tally = decide_batch(policies, task.job, _with_bad_rows(task, data, keys[0][0]), 0)
            done.append(((keys[0][0], keys[1][0], keys[2][0]), tally))
            yield _output(piece, keys)
    if units is not None:
        units.add(done)


def _with_bad_rows(task: Task, data: pa.RecordBatch, place: int) -> pa.RecordBatch | list[Any]:
    """A run of a CSV file's rows as the decider takes it: the rows without ``BAD``'s
    column, or, where some row has a number of cells other than the header's (as the
    DuckDB engine reads it, a trailing empty cell aside), its listings with each such row
    a record in error (``Bad``)."""
    names = data.schema.names
    if task.bad not in names:
        return data
    texts = data.column(names.index(task.bad))
    data = data.drop_columns([task.bad])
    if texts.null_count == len(texts):  # no bad row
        return data
    name, width = task.headers[place]
    problems = [None if text is None else _cells_problem(text, width) for text in texts.to_pylist()]
    if not any(problems):
        return data
    listings = batch_listings(data.drop_columns([DECIDE_COLUMN]) if DECIDE_COLUMN in names else data, csv=True)
    where = f"{name}: " if len(task.headers) > 1 else ""
    return [listing if problem is None else Bad(f"{where}{problem}")
            for listing, problem in zip(listings, problems, strict=True)]


def _cells_problem(text: str, width: int) -> str | None:
    """What is wrong with a row Spark's reader found malformed (``text``, as it read it),
    in the words of the DuckDB engine (``csv_rows``), which also names the row's line;
    None for a row of one cell more than its header whose last cell is empty."""
    csv.field_size_limit(2**31 - 1)  # a cell as long as DuckDB reads (the module's default: 131,072 characters)
    row = next(csv.reader(io.StringIO(text)), [])
    if len(row) == width + 1 and row[-1] == "":
        return None
    return f"{len(row)} cell{'s' if len(row) != 1 else ''}, where the header has {width}"


def _chunks(records: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    chunk: list[Any] = []
    seq = 0
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield seq, chunk
            seq, chunk = seq + len(chunk), []
    if chunk:
        yield seq, chunk


def decide_json(task: Task, units: Accumulator[list[Unit]] | None,
                batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function for JSON lines: each row a whole file (``binaryFile``),
    read as ``policy eval`` reads it."""
    policies = _policies(task)
    done: list[Unit] = []
    for batch in batches:
        files = batch.column(batch.schema.names.index(FILE)).to_pylist()
        contents = batch.column(batch.schema.names.index("content"))
        for i, place in enumerate(files):
            records = read_json_records(io.BytesIO(contents[i].as_py() or b""))
            for seq, chunk in _chunks(records, task.batch_size):
                piece, tally = decide_batch(policies, task.job, chunk, 0)
                done.append(((place, 0, seq), tally))
                yield _output(piece, [[place] * len(chunk), [0] * len(chunk), list(range(seq, seq + len(chunk)))])
    if units is not None:
        units.add(done)


# ------------------------------------------------------------------ on the driver


def session(jobs: int | None = None) -> SparkSession:
    """The active Spark session, or a new one: under ``spark-submit`` as it configures
    it; otherwise local, with ``jobs`` cores (default: all), the UI off, and the Python
    workers run by this interpreter. Raises ``UsageError`` when pyspark or Java is
    missing, or Spark does not start."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError("--engine spark: pyspark is not installed (pip install 'policy-dsl[spark]')") from None
    _quiet()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if submitted:  # under spark-submit: its master and configuration
        builder = SparkSession.builder.appName("policy scan")
    else:
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise UsageError("--engine spark: Java is not installed (no `java` on PATH, no JAVA_HOME): "
                             "Spark needs Java 17 or later")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        cores = jobs or os.cpu_count() or 1
        builder = (SparkSession.builder.appName("policy scan").master(f"local[{cores}]")
                   .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", str(2 * cores))
                   .config("spark.ui.showConsoleProgress", "true" if sys.stderr.isatty() else "false"))
    try:
        started = builder.getOrCreate()
    except Exception as e:  # noqa: BLE001 - a JVM that does not start, whatever the reason
        raise UsageError(f"--engine spark: Spark did not start: {spark_message(e)}") from None
    # FATAL: Spark logs a whole-stage code generation that grows too big for a JVM method (a
    # predicate of a thousand rules) as an ERROR with a long trace, then runs it interpreted
    started.sparkContext.setLogLevel("ERROR" if submitted else "FATAL")
    return started


def _quiet() -> None:
    """pyspark 4 logs each error of a query to standard error (``PySparkLogger``: its
    message, then the JVM's stack trace as JSON) before it raises it; the scan tells the
    error itself, in one line (``spark_message``)."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pyspark before 4: no such log
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


def spark_message(e: BaseException) -> str:
    """The useful line of a Spark error: a Python worker's exception, else the first line."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    raised = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception"))]
    if "Traceback" in str(e) and raised:
        return raised[-1][:400]
    return lines[0][:400]


def _duckdb_type(t: DataType) -> str:
    """A Spark type as the pushdown reads DuckDB's (``pushdown.parse_type``): the types
    whose values the scan reads as it reads DuckDB's; any other is unknown to it."""
    from pyspark.sql import types as T

    simple = [(T.LongType, "BIGINT"), (T.IntegerType, "INTEGER"), (T.ShortType, "SMALLINT"),
              (T.ByteType, "TINYINT"), (T.DoubleType, "DOUBLE"), (T.FloatType, "FLOAT"),
              (T.BooleanType, "BOOLEAN"), (T.DateType, "DATE")]
    if type(t) is T.StringType and t == T.StringType():  # not CHAR, VARCHAR or another collation
        return "VARCHAR"
    for kind, name in simple:
        if type(t) is kind:
            return name
    if isinstance(t, T.ArrayType):
        return "VARCHAR[]" if _duckdb_type(t.elementType) == "VARCHAR" else "UNKNOWN"
    if isinstance(t, T.StructType):
        fields = ", ".join('"' + f.name.replace('"', '""') + '" ' + _duckdb_type(f.dataType) for f in t.fields)
        return f"STRUCT({fields})"
    return "UNKNOWN"


def duckdb_types(schema: StructType) -> dict[str, str]:
    """The top-level columns of a Spark schema, each with its type as DuckDB would name it."""
    return {f.name: _duckdb_type(f.dataType) for f in schema.fields}


SPARK_SQL_LIMIT = 20_000
"""The longest predicate (characters of DuckDB SQL) that the Spark engine uses. Spark
interprets a predicate too big for its code generation: with the peers' workload of
1,000 rules (350,000 characters) about 90 µs a row, so that on 200,000 listings the scan
took 150 s with it and 10 s deciding every record (the same predicate evaluated by DuckDB
on each batch on the executors: 40 s, planned once a batch). Beyond this, the coarse
predicate; beyond this again, no narrowing."""


def spark_predicate(policies: Policies, job: Job, columns: Mapping[str, str], *,
                    limit: int | None = None) -> str | None:
    """The pushdown's predicate over ``columns`` in Spark SQL, None for no narrowing: the
    exact predicate, or where it is longer than ``limit`` characters of DuckDB SQL, the
    coarse one (as ``policy scan`` with DuckDB tries them), or where that is too long as
    well, none."""
    for coarse in (False, True):
        where = sql_predicate(policies, job, columns, coarse=coarse)
        if where is None:
            return None
        if limit is None or len(where) <= limit:
            try:
                return to_spark(where)
            except Untranslatable:
                return None
    return None


def narrowing(policies: Policies, job: Job, columns: Mapping[str, str]) -> str | None:
    """The Spark engine's pushdown: ``spark_predicate`` unless the predicate is longer than
    ``SPARK_SQL_LIMIT`` (None: every record is decided)."""
    return spark_predicate(policies, job, columns, limit=SPARK_SQL_LIMIT)


def _output_schema(out_format: str, keyed: bool) -> str:
    if out_format == "jsonl":
        columns = [("value", "string")]
    else:
        listed = "array<string>" if out_format == "parquet" else "string"
        columns = [("id", "string"), ("effect", "string"), ("rules", listed), ("overridden", listed),
                   ("penalty", _PENALTY if out_format == "parquet" else "string"), ("warnings", listed),
                   ("error", "string"), ("at", "string"), ("policy_hash", "string")]
    if keyed:
        columns += [(k, "bigint") for k in KEYS]
    return ", ".join(f"`{name}` {kind}" for name, kind in columns)


def decide_frame(frame: DataFrame, policies: Policies, task: Task, units: Accumulator[list[Unit]] | None, *,
                 narrow: bool) -> DataFrame:
    """The decisions on ``frame``'s rows (``task.keyed``: with the keys, which ``frame``
    carries), narrowed by the pushdown when ``narrow``."""
    out = _output_schema(task.job.out_format, task.keyed)
    if task.job.envelopes:
        return frame.mapInArrow(functools.partial(decide_json, task, units), out)
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    data = StructType([f for f in frame.schema.fields if f.name not in (*KEYS, task.bad)])
    columns = duckdb_types(data)
    if task.job.at_field is not None:
        check_field("--at-field", task.job.at_field, columns, "csv" if task.job.csv else "parquet")
    where = narrowing(policies, task.job, columns) if narrow else None
    if where is not None:
        bad = f" OR `{task.bad}` IS NOT NULL" if task.bad in frame.columns else ""  # (a bad row: its error)
        frame = frame.withColumn(DECIDE_COLUMN, F.expr(f"(({where}) IS NOT FALSE){bad}"))
    task = attrs.evolve(task, names=tuple(frame.columns))
    safe = frame.toDF(*(f"c{i}" for i in range(len(frame.columns))))
    return safe.mapInArrow(functools.partial(decide_arrow, task, units), out)


def read_inputs(spark: SparkSession, fmt: str, files: Sequence[str], shown: Sequence[str] | None = None,
                fields: frozenset[str] | None = None) -> tuple[DataFrame, tuple[tuple[str, int], ...], str]:
    """The input files as one DataFrame (by column name), with the keys; a CSV input's
    files' names (``shown``, else as in ``files``) and header widths (``Task.headers``);
    and the name of its ``BAD`` column. Of a Parquet or CSV file, only the columns of
    ``fields`` are read (``source.kept_columns``; None: all)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    options: dict[str, bool | str] = {"header": True, "inferSchema": False, "multiLine": True, "quote": '"',
                                      "escape": '"', "mode": "PERMISSIVE"}
    schemas = [spark.read.options(**options).csv(_literal(f)).schema for f in files] if fmt == "csv" else []
    bad = BAD
    while any(bad in schema.names for schema in schemas):
        bad += "_"
    if fmt != "jsonl":
        check_names(shown or files, fmt, None, "--input")
    frames = []
    for place, found in enumerate(files):
        name = _literal(found)
        if fmt == "jsonl":
            frame = spark.read.format("binaryFile").load(name).select("content", F.lit(0).cast("bigint").alias(BLOCK))
        elif fmt == "csv":  # every cell as text, read by convert.csv_cell (as DuckDB's reading)
            header = schemas[place]
            if header.fields:
                # a row of more or fewer cells than the header is kept whole in ``bad`` (Spark would fill the
                # missing cells with nulls and drop the extra ones): the decider gives it an error
                schema = StructType([*header.fields, StructField(bad, StringType())])
                frame = spark.read.options(**options, columnNameOfCorruptRecord=bad).schema(schema).csv(name)
            else:  # an empty file (Spark refuses a query of the corrupt record's column alone)
                frame = spark.read.options(**options).csv(name)
            kept = kept_columns(header.names, fields, csv=True)
            frame = _project(frame, kept if kept is None or not header.fields else [*kept, bad])
        else:
            frame = _parquet(spark, name)
            kept = kept_columns(frame.columns, fields, csv=False)
            _check_readable(found, (shown or files)[place], kept)
            check_int96(found, kept, "--input", (shown or files)[place])
            frame = _project(frame, kept)
        frames.append(frame.withColumn(FILE, F.lit(place).cast("bigint")))
    union = functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    if fmt == "parquet" and len(frames) > 1:
        check_types(((name, _arrow_schema(frame.schema, union.schema, own=True))
                     for name, frame in zip(shown or files, frames, strict=True)),
                    _arrow_schema(union.schema, union.schema, own=False), "--input")
    headers = tuple(((shown or files)[place], len(schema.fields)) for place, schema in enumerate(schemas))
    return union.withColumn(ROW, F.monotonically_increasing_id()), headers, bad


def _arrow_schema(schema: StructType, joined: StructType, *, own: bool) -> pa.Schema:
    """The data columns of ``schema`` (a file's, or ``joined``, the files' together) as
    Arrow types, for ``source.check_types``; of a file's (``own``), only those whose type
    is not the joined one. A type pyspark cannot convert is a type of its own (binary in a
    file, large binary joined), which another type always changes."""
    from pyspark.sql.pandas.types import to_arrow_type

    fields = []
    for field in schema.fields:
        if field.name in KEYS or own and field.name in joined.names and joined[field.name].dataType == field.dataType:
            continue  # (a file's column of the joined type itself: nothing is changed)
        try:
            kind = to_arrow_type(field.dataType)
        except Exception:  # noqa: BLE001 - pyspark's error for a type Arrow does not have
            kind = pa.binary() if own else pa.large_binary()
        fields.append(pa.field(field.name, kind))
    return pa.schema(fields)


_INFERRING = {"spark.sql.legacy.parquet.nanosAsLong": "true", "spark.sql.timeType.enabled": "true"}
"""Spark's settings while it reads a Parquet file's schema: without them it refuses a file
with a timestamp in nanoseconds (``PARQUET_TYPE_ILLEGAL``) or a TIME column
(``UNSUPPORTED_TIME_TYPE``), even where the scan reads no such column."""


def _parquet(spark: SparkSession, name: str) -> DataFrame:
    """A Parquet file as a DataFrame, its schema read with ``_INFERRING`` (the session's
    own settings put back after)."""
    before = {key: spark.conf.get(key, None) for key in _INFERRING}
    try:
        for key, value in _INFERRING.items():
            spark.conf.set(key, value)
        return spark.read.parquet(name)
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _check_readable(name: str, shown: str, kept: Sequence[str] | None) -> None:
    """A usage error where a column the scan reads holds a timestamp in nanoseconds: Spark
    reads none (``_INFERRING`` reads it as a whole number, which is not what the file
    means), where DuckDB reads it as a TIMESTAMP."""
    for path, physical, logical in parquet_leaves(name, kept):
        if physical == "INT64" and logical.get("Type") == "Timestamp" and logical.get("timeUnit") == "nanoseconds":
            raise UsageError(f"--input '{shown}': column '{path}' is a timestamp in nanoseconds, which Spark cannot "
                             "read; scan with --engine duckdb, or write the column in microseconds")


def _project(frame: DataFrame, kept: Sequence[str] | None) -> DataFrame:
    """``frame``'s columns ``kept`` (None: all), and the start of each row's split: read
    from the file's metadata column itself (``metadataColumn``), which a column of the
    input named ``_metadata`` does not hide."""
    from pyspark.sql import functions as F

    if hasattr(frame, "metadataColumn"):  # pyspark 4
        block = frame.metadataColumn("_metadata").getField("file_block_start")
    elif any(c.lower() == "_metadata" for c in frame.columns):
        raise UsageError("--input: a column named '_metadata' hides Spark's file metadata before pyspark 4; "
                         "rename it, or scan with --engine duckdb")
    else:
        block = F.col("_metadata.file_block_start")
    columns = [F.col("`" + c.replace("`", "``") + "`") for c in (frame.columns if kept is None else kept)]
    return frame.select(*columns, block.alias(BLOCK))


def _literal(name: str) -> str:
    """A file's name as Spark reads it literally: Hadoop expands the glob characters in
    every path it is given (the files are found already), so each is escaped with a
    backslash (``q?.parquet``: ``q\\?.parquet``)."""
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", name)


def _merge(units: Iterable[Unit]) -> Tally:
    """The tallies of the runs, once each, in input order: error record numbers counted
    from the first record of all."""
    once: dict[tuple[int, int, int], Tally] = {}
    for key, tally in units:
        once.setdefault(key, tally)
    total, offset = Tally(), 0
    for key in sorted(once):
        part = once[key]
        part.first_errors = [(offset + n, m) for n, m in part.first_errors]
        total.merge(part)
        offset += part.records
    return total


def _units_accumulator(spark: SparkSession) -> Accumulator[list[Unit]]:
    from pyspark.accumulators import AccumulatorParam

    class Units(AccumulatorParam[list[Unit]]):
        def zero(self, value: list[Unit]) -> list[Unit]:
            return []

        def addInPlace(self, value1: list[Unit], value2: list[Unit]) -> list[Unit]:
            value1.extend(value2)
            return value1

    return spark.sparkContext.accumulator([], Units())


def _write(frame: DataFrame, out_format: str, out: str) -> None:
    """Write ``frame`` (one partition) with Spark's writer into a directory beside ``out``,
    then rename its one part file over ``out``."""
    final = Path(os.path.realpath(out))
    try:
        temp = tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".spark")
    except OSError as e:
        raise unwritable("--out", out, e) from None
    try:
        target = os.path.join(temp, "parts")
        writer = frame.write.mode("overwrite")
        if out_format == "parquet":
            writer.parquet(target)
        elif out_format == "csv":
            writer.options(header=True, quote='"', escape='"', ignoreLeadingWhiteSpace=False,
                           ignoreTrailingWhiteSpace=False, lineSep="\n").csv(target)
        else:
            writer.text(target)
        parts = sorted(p for p in os.listdir(target) if p.startswith("part-"))
        if len(parts) != 1:
            raise UsageError(f"--out '{out}': Spark wrote {len(parts)} part files, not one")
        replace_with(os.path.join(target, parts[0]), final)
    except OSError as e:
        raise unwritable("--out", out, e) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _input_format(files: Sequence[str]) -> str:
    fmts = {format_of(f, "--input") for f in files}
    if len(fmts) > 1:
        raise UsageError(f"--input: the files are of several formats ({', '.join(sorted(fmts))}); scan one at a time")
    return fmts.pop()


def scan_spark(policies: Policies, sources: Mapping[str, str], inputs: Sequence[str], out: str, *,
               at: str | None = None, at_field: str | None = None, prior_field: str | None = None,
               id_field: str = "id", seller_field: str = "seller.id", jobs: int | None = None,
               use_pushdown: bool = True, batch_size: int = BATCH_SIZE, report: str | None = None,
               **_ignored: Any) -> ScanResult:
    """``dsl.scan.scan`` as a Spark job (``--engine spark``): the same output and report.
    ``jobs`` is the number of local cores when this starts the session; ``progress`` and
    ``workers`` are ignored (Spark shows its own progress on a terminal)."""
    started = time.perf_counter()
    job = scan_job(sources, inputs, out, report, at=at, at_field=at_field, prior_field=prior_field,
                   id_field=id_field, seller_field=seller_field)
    given = expand_inputs(inputs)
    files = [os.path.abspath(f) for f in given]
    fmt = _input_format(files)
    job = attrs.evolve(job, csv=fmt == "csv", envelopes=fmt == "jsonl")
    spark = session(jobs)
    tally = _run(spark, policies, Task(dict(sources), policies.policy_hash, job, batch_size), files, out,
                 narrow=use_pushdown, shown=given)
    return finish(tally, started, report, [note for note in (partition_note(given),) if note is not None])


def _run(spark: SparkSession, policies: Policies, task: Task, files: Sequence[str], out: str, *,
         narrow: bool, shown: Sequence[str] | None = None) -> Tally:
    from pyspark import StorageLevel

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(task.batch_size))
    units = _units_accumulator(spark)
    fmt = "jsonl" if task.job.envelopes else "csv" if task.job.csv else "parquet"
    try:
        frame, headers, bad = read_inputs(spark, fmt, files, shown, read_fields(policies, task.job))
        decided = decide_frame(frame, policies, attrs.evolve(task, headers=headers, bad=bad), units, narrow=narrow)
        decided = decided.persist(StorageLevel.DISK_ONLY)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - Spark's errors: an input it cannot read
        raise UsageError(f"--input: cannot be read by Spark: {spark_message(e)}") from None
    try:
        count = decided.count()  # the decisions, on the executors; the tallies come back
        tally = _merge(units.value)
        if tally.records != count:
            raise RuntimeError(f"policy scan: {tally.records} records tallied, {count} decided")
        if count:
            _write(decided.orderBy(*KEYS).drop(*KEYS).coalesce(1), task.job.out_format, out)
        else:
            Writer(out, task.job.out_format).commit()
    except (UsageError, RuntimeError):
        raise
    except Exception as e:  # noqa: BLE001 - a failed Spark job: its reason, without a traceback
        raise UsageError(f"--engine spark: the scan failed: {spark_message(e)}") from None
    finally:
        decided.unpersist()
    return tally


# ------------------------------------------------------------------ the Python API


def _sources(policies: Mapping[str, str] | PathLike | Iterable[PathLike]) -> dict[str, str]:
    if isinstance(policies, Mapping):
        return dict(policies)
    model, loaded, diags = compile_paths(policies, policies=True)
    if model is None:
        raise PolicyError(diags)
    return {name: text for name, text in loaded.sources.items() if not is_test_file(name)}


def spark(dataframe: DataFrame, policies: Mapping[str, str] | PathLike | Iterable[PathLike], *,
          at: str | None = None, at_field: str | None = None, prior_field: str | None = None,
          id_field: str = "id", pushdown: bool = True) -> DataFrame:
    """The decision on each row of ``dataframe`` as a DataFrame with the columns of
    ``policy scan``'s Parquet output (``id``, ``effect``, ``rules``, ``overridden``,
    ``penalty`` a struct, ``warnings``, ``error``, ``at``, ``policy_hash``): one row per
    input row, in the same partitions and in the same order within each. ``policies`` is
    a path (or paths) to the policy files, or their texts by file name. Lazy, as any
    DataFrame: nothing runs until an action. Raises ``dsl.PolicyError`` for a set with
    errors and ``dsl.UsageError`` for an ``at`` that cannot be read or an ``at_field``
    that the DataFrame lacks."""
    texts = _sources(policies)
    loaded = load_sources(texts)
    job = new_job("parquet", at=at, at_field=at_field, prior_field=prior_field, id_field=id_field,
                  seller_field="seller.id", options=False)
    return decide_frame(dataframe, loaded, Task(texts, loaded.policy_hash, job, keyed=False), None, narrow=pushdown)
