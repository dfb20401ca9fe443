"""The scan's worker processes and parts (dsl/scan/pool.py, dsl/scan/source.py): a Parquet
input split into parts that the processes read themselves, a pool of the scan's own started
at once or when the work is worth it, the output the one ``--jobs 1`` gives row for row
(records, errors, report) whatever the formats, files and batch size, and a worker that
fails is a usage error."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import dsl
from dsl.checking.loader import UsageError
from dsl.forking import can_fork
from dsl.scan import Workers, pool, run
from dsl.scan import source as source_module
from dsl.scan.schema import DECIDE_COLUMN
from dsl.scan.source import Source, open_source

POLICIES = Path(__file__).resolve().parent / "scan_policies"
SOURCES = {str(p): p.read_text(encoding="utf-8") for p in sorted(POLICIES.glob("*.policy"))}
P = dsl.load(POLICIES)
CATEGORIES = ["Gadgets", "Toys", "Numismatics", "Electronics > Gadgets", None]
ATS = ["2021-10-20", "2021-10-07", None, "not a date"]


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": str(i), "category": CATEGORIES[i % 5], "title": "gold coin" if i % 7 else None,
             "price": float(i % 300), "listed": ATS[i % 4]} for i in range(start, start + n)]


def _read(path: Path) -> list[Any]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return path.read_text(encoding="utf-8").splitlines()


def _scan(tmp_path: Path, inputs: list[Path], out: str, **options: Any) -> tuple[list[Any], dict[str, Any]]:
    target, report = tmp_path / out, tmp_path / "report.json"
    run.scan(P, SOURCES, [str(i) for i in inputs], str(target), at_field="listed", report=str(report), **options)
    return _read(target), json.loads(report.read_text(encoding="utf-8"))


def _same_as_one_job(tmp_path: Path, inputs: list[Path], **options: Any) -> None:
    for out in ("out.parquet", "out.jsonl", "out.csv"):
        one, one_report = _scan(tmp_path, inputs, out, **{**options, "jobs": 1})
        many, many_report = _scan(tmp_path, inputs, out, **options)
        assert many == one
        one_report.pop("seconds"), many_report.pop("seconds")
        assert many_report == one_report


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan starts its workers at once, whatever the size of its input."""
    monkeypatch.setattr(pool, "worth_starting", lambda spent, measured, remaining: True)


@pytest.fixture
def waited(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan waits for its workers to be ready (forked or spawned: the suite's process
    may run other libraries' threads by now, py4j's after the Spark tests, and then they
    are spawned), so that they decide some of even a small input. Not a timing: the scan
    would decide alone until then."""
    ready = Workers.ready

    def wait_for_all(self: Workers) -> int:
        while ready(self) < self.jobs:
            time.sleep(0.05)
        return self.jobs

    monkeypatch.setattr(Workers, "ready", wait_for_all)


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("pushdown", [True, False])
def test_own_pool_reads_parts_of_parquet_files(tmp_path: Path, eager: None, jobs: int, pushdown: bool) -> None:
    pq.write_table(pa.Table.from_pylist(_rows(150)), tmp_path / "a.parquet", row_group_size=40)
    pq.write_table(pa.Table.from_pylist([{**r, "extra": 1} for r in _rows(90, 150)]), tmp_path / "b.parquet")
    pq.write_table(pa.Table.from_pylist(_rows(5, 240)), tmp_path / "c.parquet")
    inputs = [tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"]
    _same_as_one_job(tmp_path, inputs, jobs=jobs, batch_size=4, use_pushdown=pushdown)
    got, _ = _scan(tmp_path, inputs, "out.parquet", jobs=jobs, batch_size=4, use_pushdown=pushdown)
    assert [r["id"] for r in got] == [str(i) for i in range(245)]


def test_own_pool_with_csv_and_json_lines(tmp_path: Path, eager: None) -> None:
    rows = _rows(120)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                                               for r in rows) + "{broken\n", encoding="utf-8")
    pa_csv.write_csv(pa.Table.from_pylist(rows), tmp_path / "in.csv")
    for name in ("in.jsonl", "in.csv"):
        _same_as_one_job(tmp_path, [tmp_path / name], jobs=2, batch_size=5)


@pytest.mark.parametrize("name", ["file_row_number", "File_Index", "FILE_ROW_NUMBER"])
def test_a_column_named_as_duckdbs_row_number_is_read_whole(tmp_path: Path, eager: None, name: str) -> None:
    # DuckDB's names are not case-sensitive: File_Index hides file_index too
    pq.write_table(pa.Table.from_pylist([{**r, name: 7} for r in _rows(60)]), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pylist(_rows(20, 60)), tmp_path / "b.parquet")
    inputs = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    source = open_source([str(i) for i in inputs], batch_size=4, at_field=None, predicate=None)
    assert not source.splittable and source.total == 80
    _same_as_one_job(tmp_path, inputs, jobs=2, batch_size=4)
    with Workers(SOURCES, P.policy_hash, 2) as workers:
        got, _ = _scan(tmp_path, inputs, "out.parquet", batch_size=4, workers=workers)
    assert [r["id"] for r in got] == [str(i) for i in range(80)]


def _awkward_files(tmp_path: Path) -> list[Path]:
    """Row groups of odd sizes, an empty file, a file of another schema (with a column
    named as DuckDB's ``filename``) whose records alone have errors, files named twice."""
    valid = [{**r, "listed": "2021-10-20"} for r in _rows(53)]
    pq.write_table(pa.Table.from_pylist(valid), tmp_path / "a.parquet", row_group_size=7)
    pq.write_table(pa.Table.from_pylist([], schema=pa.Table.from_pylist(valid).schema), tmp_path / "empty.parquet")
    other = [{**{k: v for k, v in r.items() if k != "title"}, "filename": "mine"} for r in _rows(41, 53)]
    pq.write_table(pa.Table.from_pylist(other), tmp_path / "b.parquet", row_group_size=11)
    return [tmp_path / n for n in ("a.parquet", "empty.parquet", "b.parquet", "a.parquet", "empty.parquet")]


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("pushdown", [True, False])
def test_awkward_parquet_files(tmp_path: Path, eager: None, jobs: int, pushdown: bool) -> None:
    inputs = _awkward_files(tmp_path)
    _same_as_one_job(tmp_path, inputs, jobs=jobs, batch_size=3, use_pushdown=pushdown)
    got, report = _scan(tmp_path, inputs, "out.parquet", jobs=jobs, batch_size=3, use_pushdown=pushdown)
    assert len(got) == 53 + 41 + 53
    assert report["errors"]["first"][0]["record"] == 55  # numbered in the whole input: b.parquet's second


@pytest.mark.parametrize("after", [1, 4, 9])
def test_workers_started_late_go_on_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    asked: list[int] = []

    def worth_starting(spent: float, measured: int, remaining: int | None) -> bool:
        asked.append(measured)
        return len(asked) > after

    monkeypatch.setattr(pool, "worth_starting", worth_starting)
    _same_as_one_job(tmp_path, _awkward_files(tmp_path), jobs=2, batch_size=3)


def test_hive_partitioned_glob(tmp_path: Path, eager: None) -> None:
    for key, n in ((1, 30), (2, 25)):
        (tmp_path / "cat" / f"k={key}").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(_rows(n, key * 100)), tmp_path / "cat" / f"k={key}" / "x.parquet",
                       row_group_size=6)
    _same_as_one_job(tmp_path, [tmp_path / "cat" / "**" / "*.parquet"], jobs=2, batch_size=4)


def test_parts_cover_the_input_in_order_and_grow(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(_rows(1000)), tmp_path / "a.parquet", row_group_size=64)
    pq.write_table(pa.Table.from_pylist(_rows(3, 1000)), tmp_path / "b.parquet")
    source = open_source([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], batch_size=10, at_field=None,
                         predicate=None)
    parts = list(source.parts(2, 10))
    assert source.counts == (1000, 3) and source.total == 1003
    assert [(p.index, p.start) for p in parts][:3] == [(0, 0), (0, 20), (0, 60)]  # 20, 40, 80: growing
    assert max(p.records for p in parts) <= 16 * 10
    assert parts[-1].index == 1 and (parts[-1].start, parts[-1].stop) == (0, 3)
    offset = 0
    for p in parts:
        assert p.offset == offset and p.records > 0
        offset += p.records
    assert offset == 1003
    later = list(source.parts(2, 10, after=995))
    assert [(p.index, p.start, p.stop, p.offset) for p in later] == [(0, 995, 1000, 995), (1, 0, 3, 1000)]


def test_stream_batches_are_decided_whole_only_where_the_pushdown_rules_out_most() -> None:
    """``run._sized``: a stream batch whose pushdown column rules out most of its records
    stays whole; one that keeps half or more, or has no such column, goes in slices of the
    batch size, and so does the first one when the scan measures (``first``); JSON lines
    batches (lists) pass as they are. The records and their order are kept."""
    def batch(kept: int, n: int = 10, column: bool = True) -> pa.RecordBatch:
        data: dict[str, list[Any]] = {"id": [f"r{i}" for i in range(n)]}
        if column:
            data[DECIDE_COLUMN] = [i < kept for i in range(n)]
        return pa.RecordBatch.from_pydict(data)

    def sizes(batches: list[Any], first: bool = False) -> list[int]:
        return [len(b) for b in run._sized(batches, 4, first=first)]

    assert sizes([batch(2), batch(5), batch(0, column=False), batch(9, n=3)]) == [10, 4, 4, 2, 4, 4, 2, 3]
    assert sizes([batch(2), batch(2)], first=True) == [4, 4, 2, 10]
    records = [{"id": "a"}] * 9
    assert sizes([records]) == [9]
    sliced = [b for b in run._sized([batch(7)], 4) if isinstance(b, pa.RecordBatch)]
    assert [r for b in sliced for r in b.column("id").to_pylist()] == [f"r{i}" for i in range(10)]


def test_when_workers_are_worth_starting() -> None:
    assert not pool.worth_starting(0.1, 10_000, 100_000)  # 1 s left
    assert pool.worth_starting(0.1, 10_000, 300_000)  # 3 s left
    assert not pool.worth_starting(0.01, 1000, 300_000)  # not measured long enough yet
    assert not pool.worth_starting(0.0, 0, 10_000)
    assert not pool.worth_starting(0.1, 1000, None) and pool.worth_starting(pool.START_AFTER, 1000, None)


def test_a_killed_worker_is_a_usage_error(tmp_path: Path, eager: None) -> None:
    pq.write_table(pa.Table.from_pylist(_rows(3000)), tmp_path / "in.parquet", row_group_size=100)
    killed: list[int] = []

    def progress(done: int, total: int | None) -> None:
        for process in [] if killed else multiprocessing.active_children():
            os.kill(process.pid, signal.SIGKILL)
            killed.append(process.pid)

    with pytest.raises(UsageError, match="worker process failed"):
        run.scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.parquet"), at="2021-10-20",
                 jobs=2, batch_size=10, progress=progress)
    assert killed and os.listdir(tmp_path) == ["in.parquet"] and not multiprocessing.active_children()


def test_an_interrupted_scan_leaves_nothing(tmp_path: Path, eager: None) -> None:
    pq.write_table(pa.Table.from_pylist(_rows(3000)), tmp_path / "in.parquet", row_group_size=100)

    def progress(done: int, total: int | None) -> None:
        if done > 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.parquet"), at="2021-10-20",
                 jobs=2, batch_size=10, progress=progress)
    assert os.listdir(tmp_path) == ["in.parquet"] and not multiprocessing.active_children()


KILLED_PARENT = """
import os, signal, sys
from dsl.scan import Workers
from tests.test_scan_pool import P, SOURCES
workers = Workers(SOURCES, P.policy_hash, 2)
workers.submit(None, None, 0).exception()  # a worker has started (the task fails)
print(workers._spool, " ".join(str(p) for p in workers._pool._processes), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_workers_end_when_the_scans_process_is_killed() -> None:
    """... and remove their results' directory, which the killed process cannot."""
    done = subprocess.run([sys.executable, "-c", KILLED_PARENT], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)
    spool, *pids = done.stdout.split() or [""]
    assert pids, done.stderr
    for _ in range(600):  # not a timing: at most a minute for the workers to see it
        if not any(Path(f"/proc/{p}").exists() and "Z" not in _state(int(p)) for p in pids):
            assert not os.path.exists(spool)
            return
        time.sleep(0.1)
    raise AssertionError(f"workers {pids} still run")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_a_failing_worker_is_a_usage_error(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(_rows(30)), tmp_path / "in.parquet")
    broken = {"broken.policy": "policy broken\nrule r: block when\n"}  # a worker cannot load it
    with (Workers(broken, P.policy_hash, 1) as workers, pytest.raises(UsageError, match="worker process failed")):
        run.scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.parquet"), at="2021-10-20",
                 workers=workers)
    assert not (tmp_path / "out.parquet").exists()


def test_a_file_that_parses_in_part_is_never_a_smaller_rule_set() -> None:
    """``load_sources`` (workers, Spark executors, ``dsl.scan.spark``): a syntax error is
    the set's error, as in ``dsl.load``, not a set without the rule it spoils."""
    text = "policy p\nrule good: block category 'Toys'\nrule bad: block when\n"
    with pytest.raises(dsl.PolicyError) as raised:
        pool.load_sources({"p.policy": text})
    assert [d.code for d in raised.value.diagnostics] == ["P100"]


def test_a_worker_with_another_policy_set_is_a_usage_error(tmp_path: Path) -> None:
    """Each task is checked against the scan's own set: a pool loaded from other files (or
    from files that changed while the scan started) decides nothing."""
    pq.write_table(pa.Table.from_pylist(_rows(30)), tmp_path / "in.parquet")
    other = {"other.policy": "policy other\nrule r: block category 'Toys'\n"}
    with (Workers(other, None, 1) as workers, pytest.raises(UsageError, match="policy set is .*not the scan's")):
        run.scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.parquet"), at="2021-10-20",
                 workers=workers)
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
@pytest.mark.parametrize("forkable", [True, False])
def test_workers_forked_or_spawned_decide_as_one_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waited: None,
                                                     fmt: str, forkable: bool) -> None:
    """The scan's workers are forked from its process, which has the set loaded and the
    evaluator warm, when they are worth it (here after the first unit), for a split
    Parquet input (its stream closed first) or JSON lines (read without DuckDB); spawned
    for CSV (whose DuckDB stream goes on) or where no fork is safe (another thread runs)."""
    rows = _rows(300)
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    elif fmt == "csv":
        pa_csv.write_csv(pa.Table.from_pylist(rows), tmp_path / "in.csv")
    else:
        (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    # (the suite's process may run other libraries' threads by now, py4j's after the Spark tests)
    monkeypatch.setattr(run, "can_fork", lambda native_threads: forkable)
    made: list[bool] = []
    new = Workers.__init__

    def made_by(self: Workers, origin: Any, *a: Any) -> None:
        made.append(isinstance(origin, dsl.Policies))
        new(self, origin, *a)

    monkeypatch.setattr(Workers, "__init__", made_by)
    monkeypatch.setattr(pool, "worth_starting", lambda spent, measured, remaining: spent > 0)  # after two units
    sent = []
    submit = Workers.submit
    monkeypatch.setattr(Workers, "submit", lambda self, *a: sent.append(a) or submit(self, *a))
    _same_as_one_job(tmp_path, [tmp_path / f"in.{fmt}"], jobs=2, batch_size=16)
    assert sent  # the workers decided some
    assert made == [forkable and fmt != "csv"] * 3  # one pool per output format
    assert not multiprocessing.active_children()


def test_the_outputs_writer_thread_ends_before_the_workers_are_forked(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A Parquet or CSV output is written by a thread of its own, which the scan ends
    before it forks its workers (a fork keeps only the calling thread), and which a write
    after the fork starts again: the same rows as one job."""
    pq.write_table(pa.Table.from_pylist(_rows(300)), tmp_path / "in.parquet")
    seen: list[list[str]] = []
    real = run.can_fork

    def watched(*, native_threads: bool) -> bool:
        seen.append([t.name for t in threading.enumerate()])
        return real(native_threads=native_threads)

    monkeypatch.setattr(run, "can_fork", watched)
    monkeypatch.setattr(pool, "worth_starting", lambda spent, measured, remaining: spent > 0)
    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=2, batch_size=16)
    assert len(seen) == 3  # one scan per output format
    assert not any("policy-scan-writer" in names for names in seen)
    assert "policy-scan-writer" not in [t.name for t in threading.enumerate()]  # ended with the scan


def test_a_workers_results_come_through_the_pipe_when_no_file_can_be_written(tmp_path: Path, eager: None,
                                                                            waited: None,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker sends its Arrow pieces as a file (``Spooled``); where the file cannot be
    written (a full disk, here a directory gone), through the pool's pipe: the same rows."""
    pq.write_table(pa.Table.from_pylist(_rows(300)), tmp_path / "in.parquet")
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def gone(prefix: str) -> str:
        made.append(mkdtemp(prefix=prefix, dir=tmp_path))
        os.rmdir(made[-1])
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", gone)
    came: list[type] = []
    result = Workers.result
    monkeypatch.setattr(Workers, "result", lambda self, done: came.append(type(done.result()[0])) or result(self, done))
    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=2, batch_size=16)
    assert made and not any(os.path.exists(m) for m in made)
    assert came and set(came) == {list}  # through the pipe, every one


def test_a_workers_results_gone_are_a_usage_error(tmp_path: Path, eager: None, waited: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's results file removed before the scan reads it (a cleaner of the
    temporary directory): a usage error, the output left as it was."""
    pq.write_table(pa.Table.from_pylist(_rows(300)), tmp_path / "in.parquet")
    read = pool.Spooled.read

    def gone(self: pool.Spooled) -> list[pa.RecordBatch]:
        os.unlink(self.path)
        return read(self)

    monkeypatch.setattr(pool.Spooled, "read", gone)
    with pytest.raises(UsageError, match="cannot read a worker's results"):
        run.scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.parquet"), at="2021-10-20",
                 jobs=2, batch_size=10)
    assert os.listdir(tmp_path) == ["in.parquet"] and not multiprocessing.active_children()


@pytest.mark.parametrize("sampled", [False, True])
def test_the_share_the_pushdown_keeps_is_the_whole_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          sampled: bool) -> None:
    """``Source.kept_share``: a catalogue sorted so that its first records are all kept
    (the first batches alone would say the pushdown narrows nothing) is measured over the
    whole input, exactly or on a sample spread over it."""
    monkeypatch.setattr(source_module, "SAMPLED", 0 if sampled else 10**9)
    n = 600_000  # (a sample of 1% takes whole vectors of 2,048 records: enough of them)
    titles = pa.concat_arrays([pa.array(["gold coin"] * 2000), pa.nulls(n - 2000, pa.string())])
    table = pa.table({"id": pa.array(range(n)).cast(pa.string()), "category": pa.array(["Hats"] * n),
                      "title": titles, "price": pa.array([1.0] * n), "listed": pa.array(["2021-10-20"] * n)})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=50_000)
    job = run.new_job("parquet", at="2021-10-20", at_field=None, prior_field=None, id_field="id",
                      seller_field="seller.id")
    source = open_source([str(tmp_path / "in.parquet")], batch_size=100, at_field=None,
                         predicate=lambda columns, _: run.sql_predicate(P, job, columns))
    first = next(source.batches)
    assert pa.compute.all(first.column(DECIDE_COLUMN)).as_py()  # the first records: all kept
    share = source.kept_share()
    assert share < 0.05 and (sampled or share == pytest.approx(2000 / n))
    source.batches.close()


def test_a_sample_of_no_record_measures_the_share_on_all_of_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's 1% sample takes whole vectors of 2,048 records: 3,000 records give none,
    and the share is then measured on all of them (it was 0, "narrowed", before)."""
    monkeypatch.setattr(source_module, "SAMPLED", 0)
    n = 3000
    table = pa.table({"id": pa.array(range(n)).cast(pa.string()), "category": pa.array(["Hats"] * n),
                      "title": pa.array(["gold coin"] * 1500 + [None] * 1500, pa.string()),
                      "price": pa.array([1.0] * n), "listed": pa.array(["2021-10-20"] * n)})
    pq.write_table(table, tmp_path / "in.parquet")
    job = run.new_job("parquet", at="2021-10-20", at_field=None, prior_field=None, id_field="id",
                      seller_field="seller.id")
    source = open_source([str(tmp_path / "in.parquet")], batch_size=100, at_field=None,
                         predicate=lambda columns, _: run.sql_predicate(P, job, columns))
    assert source.share_all_sql is not None
    assert source.kept_share() == pytest.approx(0.5)
    source.batches.close()


def test_a_pushdown_that_rules_out_nothing_is_not_read_with_the_parts(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the pushdown's column has kept nearly every record read so far, the parts
    are read without it (``run.NARROWS``): every record is decided in Python, the same."""
    pq.write_table(pa.Table.from_pylist(_rows(3000)), tmp_path / "in.parquet", row_group_size=100)
    seen: list[bool] = []
    parts = Source.parts

    def watched(self: Source, *a: Any, narrowed: bool = True, **k: Any) -> Any:
        seen.append(narrowed)
        return parts(self, *a, narrowed=narrowed, **k)

    monkeypatch.setattr(Source, "parts", watched)
    calls = iter([False, True])  # workers worth it after the first unit
    monkeypatch.setattr(pool, "worth_starting", lambda spent, measured, remaining: next(calls, True))
    monkeypatch.setattr(run, "NARROWS", 1.0)  # whatever it rules out, too little
    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=2, batch_size=10)
    assert seen and not any(seen)
    seen.clear()
    monkeypatch.setattr(run, "NARROWS", 0.0)
    calls = iter([False, True])
    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=2, batch_size=10)
    assert seen and all(seen)


@pytest.mark.parametrize("pushdown", [True, False])
def test_a_large_input_the_pushdown_does_not_narrow_starts_its_workers_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waited: None, pushdown: bool) -> None:
    """``run.AT_ONCE``: where every record is decided in Python and workers can be forked,
    they start before the scan decides anything (nothing measured; the stream's first
    slice read, the rest in parts); where they cannot be (the suite's process may run
    other libraries' threads by now), the scan measures first. The output is one job's
    either way."""
    pq.write_table(pa.Table.from_pylist(_rows(3000)), tmp_path / "in.parquet", row_group_size=100)
    monkeypatch.setattr(run, "AT_ONCE", 1000)
    monkeypatch.setattr(run, "NARROWS", 1.0)  # whatever the pushdown rules out, too little
    measured: list[float] = []
    monkeypatch.setattr(pool, "worth_starting", lambda spent, measured_, remaining: measured.append(spent) or False)
    parts: list[tuple[int, bool]] = []
    real_parts = Source.parts

    def watched(self: Source, processes: int, batch_size: int, after: int = 0, **k: Any) -> Any:
        parts.append((after, k.get("narrowed", True)))
        return real_parts(self, processes, batch_size, after, **k)

    monkeypatch.setattr(Source, "parts", watched)
    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=2, batch_size=10, use_pushdown=pushdown)
    if can_fork(native_threads=True):
        assert not measured and parts and all(p == (10, False) for p in parts)
    else:
        assert measured


def test_a_narrowed_or_small_input_measures_before_starting_workers(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``run.AT_ONCE`` records, or where the pushdown narrows, the scan measures
    first (``pool.worth_starting``)."""
    pq.write_table(pa.Table.from_pylist(_rows(3000)), tmp_path / "in.parquet", row_group_size=100)
    asked: list[float] = []
    monkeypatch.setattr(pool, "worth_starting", lambda spent, measured, remaining: asked.append(spent) or False)
    monkeypatch.setattr(run, "AT_ONCE", 10_000)
    _scan(tmp_path, [tmp_path / "in.parquet"], "out.parquet", jobs=2, batch_size=10, use_pushdown=False)
    assert asked
    asked.clear()
    monkeypatch.setattr(run, "AT_ONCE", 1000)
    monkeypatch.setattr(run, "NARROWS", 0.0)  # whatever it rules out, enough
    _scan(tmp_path, [tmp_path / "in.parquet"], "out.parquet", jobs=2, batch_size=10)
    assert asked


def test_workers_not_worth_it_are_not_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small input is decided by the scan's process alone, no worker started."""
    pq.write_table(pa.Table.from_pylist(_rows(50)), tmp_path / "in.parquet")
    made: list[Any] = []
    monkeypatch.setattr(Workers, "__init__", lambda *a: made.append(a))
    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=2, batch_size=16)
    assert not made


def test_a_pool_still_loading_is_stopped_not_waited_for() -> None:
    """A pool closed before its (spawned) workers have loaded the set does not wait for
    them (it stops them), and leaves no process behind."""
    started = Workers(SOURCES, P.policy_hash, 2)
    started.close()
    assert not multiprocessing.active_children()


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own ^C handler for the test (the suite's process may have another by now:
    Spark sets one), the one before given back after."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_second_interrupt_waits_for_the_pools_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     python_sigint: None) -> None:
    """A ^C during ``close`` (the first one stopped the scan), which the kernel may hand
    to any thread, waits for the workers to end and their directory to go, then
    interrupts: halfway, the pool's shutdown left its workers waiting forever."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    workers = Workers(P, P.policy_hash, 2)
    assert workers._pool is not None
    shutdown = workers._pool.shutdown
    # a thread started before the stop (the writer's, DuckDB's), whose signal mask is its own
    go = threading.Event()
    sender = threading.Thread(target=lambda: go.wait() and os.kill(os.getpid(), signal.SIGINT))
    sender.start()

    def interrupted_shutdown(**kwargs: Any) -> None:
        go.set()
        sender.join()
        time.sleep(0.05)  # the main thread would run the handler here
        shutdown(**kwargs)

    monkeypatch.setattr(workers._pool, "shutdown", interrupted_shutdown)
    with pytest.raises(KeyboardInterrupt):
        workers.close(stop=True)
    assert not multiprocessing.active_children() and not list(tmp_path.iterdir())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(("load", "jobs"), [(0.1, 4), (1.2, 4), (2.6, 2), (3.6, 1), (9.0, 1)])
def test_the_default_jobs_leave_busy_cores_alone(monkeypatch: pytest.MonkeyPatch, load: float, jobs: int) -> None:
    monkeypatch.setattr(run.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(run, "cgroup_cpus", lambda: None)
    assert run.default_jobs() == jobs


def test_the_default_jobs_keep_to_the_cgroup_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a container limited to 1.5 CPUs on a 4-core machine: two processes at most."""
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(run, "cgroup_cpus", lambda: 1.5)
    assert run.default_jobs() == 2
    monkeypatch.setattr(run, "cgroup_cpus", lambda: 0.5)
    assert run.default_jobs() == 1


@pytest.mark.parametrize(("load", "jobs"), [(10.0, 2), (60.0, 2), (63.4, 2), (63.6, 1), (80.0, 1)])
def test_the_default_jobs_count_the_machines_idle_cores(monkeypatch: pytest.MonkeyPatch, load: float,
                                                         jobs: int) -> None:
    """A container allowed 1.5 CPUs (or two cores) on a 64-core machine: the load average is
    the machine's, so a load of 60 leaves cores idle for both processes."""
    monkeypatch.setattr(run.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(run, "cgroup_cpus", lambda: 1.5)
    assert run.default_jobs() == jobs
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: {5, 6}, raising=False)
    monkeypatch.setattr(run, "cgroup_cpus", lambda: None)
    assert run.default_jobs() == jobs


def _cgroups(tmp_path: Path, own: str, files: dict[str, str]) -> tuple[str, str]:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "self").write_text(own)
    return str(tmp_path), str(tmp_path / "self")


def test_the_cgroup_quota_is_the_tightest_on_the_path(tmp_path: Path) -> None:
    # cgroup v2: the limit on a parent holds for its children; "max" is no limit
    root, own = _cgroups(tmp_path, "0::/kubepods/pod1/c1\n", {
        "cpu.max": "max 100000\n", "kubepods/cpu.max": "400000 100000\n",
        "kubepods/pod1/cpu.max": "150000 100000\n", "kubepods/pod1/c1/cpu.max": "max 100000\n"})
    assert run.cgroup_cpus(root, own) == 1.5


def test_the_cgroup_v1_quota_and_no_quota(tmp_path: Path) -> None:
    root, own = _cgroups(tmp_path / "v1", "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert run.cgroup_cpus(root, own) == 2.0
    root, own = _cgroups(tmp_path / "none", "0::/\n", {"cpu.max": "max 100000\n"})
    assert run.cgroup_cpus(root, own) is None
    assert run.cgroup_cpus(str(tmp_path / "missing"), str(tmp_path / "missing" / "self")) is None
    root, own = _cgroups(tmp_path / "bad", "0::/\n", {"cpu.max": "a lot\n"})
    assert run.cgroup_cpus(root, own) is None


def test_a_part_is_read_with_its_files_name() -> None:
    """A worker reads its parts itself: an error DuckDB's message does not name a file in
    (a damaged page: 'dictionary offset out of range') still names the part's file."""
    source = Source("parquet", {}, 30, False, iter(()), "SELECT 1", "SELECT 1", (10, 20),
                    files=("a.parquet", "b.parquet"))
    assert [(p.index, p.file) for p in source.parts(1, 10)] == [(0, "a.parquet"), (1, "b.parquet")]
    failing = source_module.Part("SELECT error('dictionary offset out of range') AS x FROM"
                                 " (SELECT 1 AS file_index, range AS file_row_number FROM range(3))", 1, 0, 3, 10,
                                 "b.parquet")
    reader = source_module.PartReader()
    try:
        with pytest.raises(UsageError, match="--input 'b.parquet': cannot be read: .*dictionary offset"):
            list(reader.read(failing, 10))
    finally:
        reader.close()


def _refused_fork(*args: Any) -> int:
    raise BlockingIOError(11, "Resource temporarily unavailable")


def _refuse_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system refuses new processes, forked or spawned (the scan's workers are spawned
    where the suite's process runs other libraries' threads: py4j's after the Spark tests)."""
    monkeypatch.setattr(os, "fork", _refused_fork)
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", _refused_fork)


def test_workers_the_system_refuses_leave_the_scan_to_its_own_process(tmp_path: Path, eager: None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork refused (the limit of processes, memory): the scan goes on in its own
    process, with the same output, and says so; no process or directory is left."""
    pq.write_table(pa.Table.from_pylist(_rows(300)), tmp_path / "in.parquet", row_group_size=40)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(300)), encoding="utf-8")
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    for fmt in ("parquet", "jsonl"):
        one, _ = _scan(tmp_path, [tmp_path / f"in.{fmt}"], "one.jsonl", jobs=1, batch_size=16)
        with monkeypatch.context() as refused:
            _refuse_processes(refused)
            result = run.scan(P, SOURCES, [str(tmp_path / f"in.{fmt}")], str(tmp_path / "many.jsonl"),
                              at_field="listed", jobs=2, batch_size=16)
        assert _read(tmp_path / "many.jsonl") == one
        assert result.notes == ("--jobs 2: cannot start a worker process: [Errno 11] Resource temporarily unavailable;"
                                " the scan went on in its own process alone",)
        assert not list(spool.iterdir()) and not multiprocessing.active_children()


def test_a_pool_the_system_refuses_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """... for a caller of the Python API that starts its own pool."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "fork", _refused_fork)
    with pytest.raises(pool.CannotStart, match="cannot start a worker process: .*Resource temporarily unavailable"):
        Workers(P, P.policy_hash, 2)
    assert not list(tmp_path.iterdir()) and not multiprocessing.active_children()


def test_the_command_warns_of_workers_refused(tmp_path: Path, eager: None, monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(pa.Table.from_pylist(_rows(300)), tmp_path / "in.parquet", row_group_size=40)
    _refuse_processes(monkeypatch)
    done = dsl.api.scan_command([POLICIES], [str(tmp_path / "in.parquet")], str(tmp_path / "out.jsonl"),
                                at="2021-10-20", jobs=2, batch_size=16)
    assert done.exit_code == 0
    assert done.text.startswith("policy: warning: --jobs 2: cannot start a worker process: [Errno 11]"), done.text


def test_workers_ignore_an_interrupt_and_the_scan_stops_them(tmp_path: Path, eager: None) -> None:
    """A ^C reaches the whole process group: a worker ignores it (it would print a
    traceback of its own) and goes on; the scan's process, which handles it, stops its
    workers, each at its next batch."""
    pq.write_table(pa.Table.from_pylist(_rows(3000)), tmp_path / "in.parquet", row_group_size=100)
    told: list[int] = []

    def interrupt_workers(done: int, total: int | None) -> None:
        for process in [] if told else multiprocessing.active_children():
            os.kill(process.pid, signal.SIGINT)
            told.append(process.pid)

    _same_as_one_job(tmp_path, [tmp_path / "in.parquet"], jobs=3, batch_size=10, progress=interrupt_workers)
    assert told and not multiprocessing.active_children()
    job = run.new_job("jsonl", at="2021-10-20", at_field=None, prior_field=None, id_field="id",
                      seller_field="seller.id")
    with Workers(P, P.policy_hash, 1) as workers:
        workers._stop.set()  # as ``close(stop=True)`` does first
        with pytest.raises(pool._Stopped):
            workers.submit(job, (0, _rows(5)), 10).result()


def test_a_pools_directory_left_behind_is_removed_by_the_next_pool(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool's directory is held (``flock``) while the pool lives; one no process holds
    that has not changed for ``ABANDONED`` seconds (its scan was interrupted twice at once,
    or killed with its workers) is removed when the next pool starts."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = time.time() - 60
    abandoned, fresh = tmp_path / f"{pool.SPOOL_PREFIX}abandon1", tmp_path / f"{pool.SPOOL_PREFIX}fresh_12"
    users = tmp_path / f"{pool.SPOOL_PREFIX}results"  # a user's own directory, not one a pool made
    for folder in (abandoned, fresh, users):
        folder.mkdir()
        (folder / "1-0").write_bytes(b"results")
    os.utime(abandoned, (old, old))
    os.utime(users, (old, old))
    with Workers(P, P.policy_hash, 1) as first:
        held = Path(first._spool)
        os.utime(held, (old, old))
        with Workers(P, P.policy_hash, 1) as second:
            assert not abandoned.exists() and fresh.exists() and held.exists()
            assert Path(second._spool).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, users.name]
