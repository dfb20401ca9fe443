"""``policy scan`` as one call: read the inputs, decide every record (in this process with
one job, in worker processes with more), write the output and tally the report."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from ..atomic import check_writable, write_atomically
from ..checking.config import CONFIG_FILE
from ..checking.loader import UsageError
from ..evaluate import values as V
from ..evaluate.outcome import InputError, format_instant
from ..evaluate.policies import Policies
from ..evaluate.semantics import fields_read
from ..forking import can_fork
from ..signals import held
from . import pushdown
from .csv_rows import csv_source
from .decide import Job, decide_batch
from .output import Writer, unwritable
from .pool import CannotStart, Result, Unit, Workers, batch_records, decide_unit, in_order
from .report import Tally
from .schema import DECIDE_COLUMN, utf8_text
from .source import (
    Batch,
    CsvUnread,
    Opening,
    PartReader,
    Source,
    check_field,
    expand_inputs,
    format_of,
    open_source,
    partition_note,
)

__all__ = ["BATCH_SIZE", "ScanResult", "check_apart", "check_output", "open_inputs", "read_fields", "scan", "scan_job"]

BATCH_SIZE = 8192
"""Records per batch, by default (of the parts, of JSON lines; see ``STREAM_BATCHES``)."""

STREAM_BATCHES = 4
"""The input's one stream (Parquet, CSV: DuckDB's Arrow batches) is read in batches this
many times ``batch_size``. Where the pushdown rules out most records, a batch's fixed
cost (some sixty Arrow calls, about 2 ms) outweighs its records' (docs/scan.md,
"Performance"), and it is decided whole; elsewhere in slices of ``batch_size``
(``_sized``), and so is the first one of a scan with more jobs, as its parts, while it
measures whether workers are worth starting."""

PUSHDOWN_LIMIT = 100_000
"""The longest pushdown predicate (characters of SQL) the scan hands DuckDB. A longer one
(hundreds of rules) costs DuckDB more to plan and evaluate than deciding in Python the
records it rules out (docs/scan.md, "Performance"): then the coarse predicate is tried
(``pushdown.rules_clause``), and where that is too long too, none. The output is the same
whichever."""

NARROWS = 0.05
"""The share of the input's records (``Source.kept_share``: a sample of the whole input)
that the pushdown's column must rule out for the parts of a split input to be read with
it: DuckDB evaluates the predicate in about a twentieth of the time Python decides a record
(0.3 against 6 µs on the benchmark's 1,000 rules), so one that rules out less costs more
than it saves; one that rules out nothing (a rule on the title's text in force on every
date) is pure cost. The output is the same either way."""

AT_ONCE = 200_000
"""The records from which a scan the pushdown does not narrow, with more than one job,
starts its workers at once rather than after measuring (``_at_once``): at 2 µs a record
or more, a second process saves time from some 100,000 records on."""

Progress = Callable[[int, int | None], None]
"""Told the records done and the total (None when unknown) after each batch."""


@attrs.frozen
class ScanResult:
    records: int
    errors: int
    seconds: float
    report: dict[str, Any]
    notes: tuple[str, ...] = ()
    """What the user should know of how the scan ran (workers that could not start)."""

    @property
    def exit_code(self) -> int:
        """As ``policy eval``: 1 when some record could not be decided."""
        return 1 if self.errors else 0


def _path(text: str | None, option: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    parts = tuple(text.split("."))
    if not all(parts):
        raise UsageError(f"{option} '{text}': not a field path (names joined by dots)")
    return parts


def _instant(at: str | None, at_field: str | None) -> str | None:
    """The instant every record is decided at: ``--at`` as given, or now (read once)."""
    if at is not None and at_field is not None:
        raise UsageError("--at and --at-field: give one or the other")
    if at_field is not None:
        return None
    if at is None:
        return format_instant(V.parse_at(None).reported)
    try:
        V.parse_at(at)
    except InputError as e:
        raise UsageError("--at: " + e.message.removeprefix("at: ")) from None
    return at


def new_job(out_format: str, *, at: str | None, at_field: str | None, prior_field: str | None, id_field: str,
            seller_field: str, options: bool = True) -> Job:
    """The scan's ``Job`` from its options as given, each checked (``options``: named as
    on the command line, ``--at-field``; else as the Python API's arguments, ``at_field``)."""
    def name(option: str) -> str:
        return "--" + option.replace("_", "-") if options else option

    return Job(out_format, _instant(at, at_field), _path(at_field, name("at_field")),
               _path(prior_field, name("prior_field")), _path(id_field, name("id_field")) or ("id",),
               _path(seller_field, name("seller_field")) or ("seller", "id"))


def scan(policies: Policies, sources: Mapping[str, str], inputs: Sequence[str], out: str, *,
         at: str | None = None, at_field: str | None = None, prior_field: str | None = None,
         id_field: str = "id", seller_field: str = "seller.id", jobs: int | None = None,
         use_pushdown: bool = True, batch_size: int = BATCH_SIZE, report: str | None = None,
         progress: Progress | None = None, workers: Workers | None = None,
         opening: Opening | None = None) -> ScanResult:
    """Decide every record of ``inputs`` and write one row each to ``out`` (docs/scan.md).
    ``sources`` are the policy files' texts (for worker processes that cannot be forked);
    ``workers``, a pool to reuse (its number of jobs wins); ``opening``, the inputs
    already being inspected (``open_inputs``). Raises ``UsageError`` for what stops a scan
    before or while it runs: the output is then left as it was."""
    began = time.perf_counter()
    job = scan_job(sources, inputs, out, report, at=at, at_field=at_field, prior_field=prior_field,
                   id_field=id_field, seller_field=seller_field)
    notes = [note for note in (partition_note(expand_inputs(inputs)),) if note is not None]

    def predicate(columns: dict[str, str], fmt: str) -> str | None:
        reading = attrs.evolve(job, csv=fmt == "csv")
        for coarse in (False, True):  # the exact predicate, or where it is too long, the coarse one
            found = sql_predicate(policies, reading, columns, coarse=coarse)
            if found is None or len(found) <= PUSHDOWN_LIMIT:
                return found
        return None

    fields = read_fields(policies, job)
    try:
        source = open_source(inputs, batch_size=batch_size, stream_batch=STREAM_BATCHES * batch_size,
                             at_field=job.at_field, predicate=predicate if use_pushdown else None, opening=opening,
                             fields=fields)
        job = attrs.evolve(job, csv=source.fmt == "csv", envelopes=source.fmt == "jsonl")
        _check_fields(job, source, id_given=id_field != "id")
        tally = _decide_all(policies, sources, job, source, out, jobs, workers, batch_size, progress, notes)
    except CsvUnread as e:  # DuckDB stopped on a row: read again, each bad row an error of its own
        job = attrs.evolve(job, csv=True, envelopes=False)
        source = csv_source(e.files, batch_size)
        try:
            if job.at_field is not None:
                check_field("--at-field", job.at_field, source.columns, "csv")
            _check_fields(job, source, id_given=id_field != "id")
            tally = _decide_all(policies, sources, job, source, out, jobs, workers, batch_size, progress, notes)
        finally:  # (its database is open from the start: closed now, not when the error is dropped)
            source.batches.close()
    return finish(tally, began, report, notes)


def read_fields(policies: Policies, job: Job) -> frozenset[str]:
    """The top-level fields a scan reads of a Parquet or CSV input, with either engine:
    those a decision may read (``semantics.fields_read``), and the job's own (the id,
    ``at``, the prior, the seller). No other column is read."""
    return fields_read(policies.policy_set) | {path[0] for path in (job.id_field, job.at_field, job.prior_field,
                                                                    job.seller_field) if path}


def scan_job(sources: Mapping[str, str], inputs: Sequence[str], out: str, report: str | None, *, at: str | None,
             at_field: str | None, prior_field: str | None, id_field: str, seller_field: str) -> Job:
    """A scan's ``Job`` from its options (``new_job``, its format ``--out``'s), once the
    outputs are known to be writable and apart from what the scan reads: what every engine
    checks before it reads a record (``UsageError`` else)."""
    job = new_job(format_of(out, "--out"), at=at, at_field=at_field, prior_field=prior_field, id_field=id_field,
                  seller_field=seller_field)
    check_output(out, "--out")
    if report is not None:
        check_output(report, "--report", out)
    check_apart(sources, inputs, out, report)
    return job


def _decide_all(policies: Policies, sources: Mapping[str, str], job: Job, source: Source, out: str,
                jobs: int | None, workers: Workers | None, batch_size: int, progress: Progress | None,
                notes: list[str]) -> Tally:
    """Every record of ``source`` decided and written to ``out`` (whole, or not at all);
    what the user should know of how (workers that could not start) added to ``notes``."""
    if workers is not None:  # each task is checked against the set this scan decides with
        workers.expect(policies.policy_hash)
    writer = Writer(out, job.out_format)
    tally = Tally()
    try:
        for pieces, part in _results(policies, sources, job, source, jobs, workers, batch_size, writer.pause, notes):
            for piece in pieces:
                writer.write(piece)
            tally.merge(part)
            if progress is not None:
                progress(tally.records, source.total)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return tally


def _check_fields(job: Job, source: Source, *, id_given: bool) -> None:
    """``--prior-field`` and a ``--id-field`` other than the default (whose column a
    catalogue may lack: its ids are then null) must name a field the input's columns may
    hold; a record of JSON lines may hold a field the others do not."""
    if source.fmt == "jsonl":
        return
    for option, path in (("--prior-field", job.prior_field), ("--id-field", job.id_field if id_given else None)):
        if path is not None:
            check_field(option, path, source.columns, source.fmt)


def open_inputs(inputs: Sequence[str], at_field: str | None) -> Opening | None:
    """The inputs inspected in a thread (``source.Opening``) while the caller loads the
    policy set, for ``scan(..., opening=...)`` with the same ``inputs`` and ``at_field``;
    None where ``at_field`` is not a path (``scan`` says so, as it would without)."""
    try:
        path = _path(at_field, "--at-field")
    except UsageError:
        return None
    return Opening(inputs, at_field=path)


def sql_predicate(policies: Policies, job: Job, columns: Mapping[str, str], *, coarse: bool = False) -> str | None:
    """The pushdown's predicate (DuckDB SQL) for ``job``'s records over ``columns``
    (``pushdown.sql_predicate``), the rules with a category conjunct left to the lookup
    that ``decide`` ORs with it (``dsl.scan.lookup``), and the records whose ``at`` cannot
    be read to ``decide``, which decides them whatever the predicate says
    (``decide._to_decide``)."""
    return pushdown.sql_predicate(policies.policy_set, at=job.at, at_field=job.at_name or None, columns=columns,
                                  prior_field=".".join(job.prior_field) if job.prior_field else None, csv=job.csv,
                                  coarse=coarse, lookup=True, at_checked=True)


def default_jobs() -> int:
    """The processes a scan decides with when not told (``--jobs``): its own and one more
    for each core of the machine that its load average leaves idle, up to the number of
    cores the scan may run on (its CPU affinity, and its cgroup's CPU quota:
    ``cgroup_cpus``) (a worker on a busy core only takes time from the scan's own
    process). The load average counts the whole machine's processes, so the idle cores are
    the machine's (``os.cpu_count``), not the scan's share of them: in a container allowed
    2 of 64 cores, a load of 60 leaves room for both."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpus()
    if quota is not None:
        cores = max(1, min(cores, math.ceil(quota)))
    try:
        load = os.getloadavg()[0]
    except OSError:  # not known on this system
        return cores
    idle = max(os.cpu_count() or cores, cores) - round(load)
    return max(1, min(cores, idle + 1))


def cgroup_cpus(root: str = "/sys/fs/cgroup", own: str = "/proc/self/cgroup") -> float | None:
    """The CPUs this process may use by the CPU quota of its cgroup (a container's
    limit: cgroup v2's ``cpu.max``, v1's ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``),
    the tightest along its path up to the root of the hierarchy; None where there is no
    quota or it cannot be read (the machine's cores count)."""
    try:
        with open(own, encoding="ascii", errors="replace") as lines:
            entries = [line.rstrip("\n").split(":", 2) for line in lines]
    except OSError:
        return None
    found: list[float] = []
    for entry in entries:
        if len(entry) != 3:
            continue
        _, controllers, path = entry
        if controllers == "":  # v2: one hierarchy
            found += _quotas(Path(root), path, _v2_quota)
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's hierarchy
            found += _quotas(Path(root) / controllers, path, _v1_quota)
    return min(found) if found else None


def _quotas(mount: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """The quotas set on the cgroup at ``path`` under ``mount`` and on its ancestors (in
    a container, ``path`` is often ``/``: its own limit is at the mount's root)."""
    found = []
    parts = [p for p in path.split("/") if p]
    for n in range(len(parts), -1, -1):
        quota = read(mount.joinpath(*parts[:n]))
        if quota is not None:
            found.append(quota)
    return found


def _v2_quota(directory: Path) -> float | None:
    try:
        words = (directory / "cpu.max").read_text(encoding="ascii").split()
        return int(words[0]) / int(words[1]) if words[0] != "max" and int(words[1]) > 0 else None
    except (OSError, ValueError, IndexError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((directory / "cpu.cfs_period_us").read_text(encoding="ascii"))
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _numbered(batches: Iterable[Batch]) -> Iterator[tuple[int, Batch]]:
    offset = 0
    for batch in batches:
        yield offset, batch
        offset += batch_records(batch)


def _results(policies: Policies, sources: Mapping[str, str], job: Job, source: Source, jobs: int | None,
             workers: Workers | None, batch_size: int, before_fork: Callable[[], None],
             notes: list[str]) -> Iterator[tuple[list[Any], Tally]]:
    """The outputs of the input's records (a few batches' at a time), and their tally, in
    input order (docs/scan.md, "Jobs"). ``before_fork`` ends this process's other threads
    (the output's writer) before workers are started."""
    processes = workers.jobs if workers is not None else jobs or default_jobs()
    if workers is None and processes <= 1:
        for offset, batch in _numbered(_sized(source.batches, batch_size)):
            piece, tally = decide_batch(policies, job, batch, offset)
            yield [piece], tally
        return
    reader = PartReader()
    switch = _Switch()

    def local(unit: Unit, between: Callable[[int], None] | None) -> Result:
        return decide_unit(policies, job, unit, batch_size, reader, between)

    def start() -> Workers | None:  # the scan's process decides too, beside processes - 1 workers
        switch.started = True
        if source.splittable:  # the rest in parts; before the fork, the stream's DuckDB threads end
            source.batches.close()
            switch.narrowed = source.kept_share() <= 1 - NARROWS
        before_fork()
        try:
            switch.workers.append(_start_workers(policies, sources, source, processes - 1))
        except CannotStart as e:  # the system refused a process: this one decides the rest alone
            notes.append(f"--jobs {processes}: {e}; the scan went on in its own process alone")
            return None
        return switch.workers[0]

    stop = False
    try:
        units = _units(source, processes, batch_size, parts_now=workers is not None, switch=switch)
        yield from in_order(job, units, batch_size, workers=workers, local=None if workers is not None else local,
                            start=None if workers is not None else start, total=source.total,
                            at_once=lambda unit: _at_once(source, processes, unit, before_fork))
    except BaseException:  # ^C, an error, the output's end: the workers this scan started stop soon
        stop = True
        raise
    finally:
        with held():  # (a second ^C or SIGTERM waits for the stop: ``dsl.signals``)
            reader.close()
            for pool in switch.workers:
                pool.close(stop=stop)


def _at_once(source: Source, processes: int, first: Unit, before_fork: Callable[[], None]) -> bool:
    """Whether the workers start before any record is decided (``first``: the first unit,
    a slice of the stream's first batch): for a splittable input of ``AT_ONCE`` records or
    more that the pushdown does not narrow (``NARROWS``: in the first unit, then in the
    sample of the whole input, ``Source.kept_share``, which a narrowed input does not pay
    for), where workers can be forked (ready in milliseconds). Every record is then decided
    in Python, at some microseconds each, so the workers are worth it without measuring,
    and each record the scan's process would decide alone before starting them (its first
    units, the measure) would be time the other cores sit idle. ``before_fork`` is called
    first (it ends this process's other threads, which ``can_fork`` counts)."""
    if processes < 2 or not source.splittable or source.total is None or source.total < AT_ONCE:
        return False
    batch = first[1] if isinstance(first, tuple) else None
    if not isinstance(batch, pa.RecordBatch) or _kept(batch) < (1 - NARROWS) * batch.num_rows:
        return False
    if source.kept_share() <= 1 - NARROWS:
        return False
    before_fork()
    return can_fork(native_threads=True)


@attrs.define
class _Switch:
    """When and how a scan goes on in parts: the workers started (once they are worth it),
    and whether the parts are read with the pushdown's column."""

    workers: list[Workers] = attrs.Factory(list)
    started: bool = False
    """Whether the scan has tried to start its workers (it goes on in parts, if only in its own process)."""
    narrowed: bool = True


def _units(source: Source, processes: int, batch_size: int, *, parts_now: bool, switch: _Switch) -> Iterator[Unit]:
    """The input's batches from its one stream until workers decide too (``parts_now``, or
    once ``switch`` holds them); from then on, where the input can be split, its parts
    (which the workers read themselves)."""
    if parts_now and source.splittable:
        yield from source.parts(processes, batch_size)
        return
    for offset, batch in _numbered(_sized(source.batches, batch_size, first=True)):
        yield offset, batch
        if switch.started and source.splittable:  # (``start`` has closed the stream)
            after = offset + batch_records(batch)
            yield from source.parts(processes, batch_size, after, narrowed=switch.narrowed)
            return


def _sized(batches: Iterable[Batch], size: int, *, first: bool = False) -> Iterator[Batch]:
    """The stream's batches as the scan decides them (``STREAM_BATCHES``): whole where the
    pushdown's column rules out most records, else in slices of ``size`` records (a large
    batch's listings, built at once, outgrow the processor's caches: 0.15 s more on a
    million records decided in Python); with ``first``, the first one in slices too."""
    for i, batch in enumerate(batches):
        if isinstance(batch, pa.RecordBatch) and batch.num_rows > size and (first and i == 0 or _mostly_kept(batch)):
            yield from (batch.slice(k, size) for k in range(0, batch.num_rows, size))
        else:
            yield batch


def _mostly_kept(batch: pa.RecordBatch) -> bool:
    """No pushdown column, or one that keeps half the batch's records or more."""
    return 2 * _kept(batch) >= int(batch.num_rows)


def _kept(batch: pa.RecordBatch) -> int:
    """The records of ``batch`` its pushdown column keeps (all, without one)."""
    names = batch.schema.names
    if DECIDE_COLUMN not in names:
        return int(batch.num_rows)
    kept: int = pc.sum(batch.column(names.index(DECIDE_COLUMN))).as_py() or 0
    return kept


def _start_workers(policies: Policies, sources: Mapping[str, str], source: Source, jobs: int) -> Workers:
    """``jobs`` workers for the rest of ``source``: forked from this process, which has
    the set loaded and the evaluator warmed up, where no other thread runs at the fork
    (``dsl.forking.can_fork``, native threads allowed) and no DuckDB query of the scan's
    own does (the stream of a splittable input closed, since the workers go on with its
    parts; JSON lines are read without DuckDB); spawned from the policy files' texts
    otherwise (each loads the set again: about a second)."""
    if can_fork(native_threads=True) and (source.splittable or source.fmt == "jsonl"):
        return Workers(policies, policies.policy_hash, jobs)
    return Workers(sources, policies.policy_hash, jobs)


def check_apart(sources: Mapping[str, str], inputs: Sequence[str], out: str, report: str | None) -> None:
    """Neither ``--out`` nor ``--report`` may be a file the scan reads: an input, or a
    file of the policy set (the scan would replace it)."""
    read = {os.path.realpath(f): "one of the inputs" for f in expand_inputs(inputs)}
    read.update((os.path.realpath(f), "a file of the policy set") for f in sources)
    for option, path in (("--out", out), ("--report", report)):
        if path is None:
            continue
        what = read.get(os.path.realpath(path))
        policy_like = path.endswith(".policy") or os.path.basename(path) == CONFIG_FILE
        if what is None and policy_like and os.path.isfile(path):  # of another set, or a test file of this one
            what = "a policy, test or configuration file"
        if what is not None:
            raise UsageError(f"{option} '{path}': {what}, which the scan would replace")


def check_output(path: str, option: str, out: str | None = None) -> None:
    """Refuse, before the scan, an output (``--report``) that could not be written after
    it (``out``, the scan's output, then already replaced), or that would be ``out``."""
    if out is not None and os.path.realpath(path) == os.path.realpath(out):
        raise UsageError(f"{option} '{path}': the same file as --out")
    try:
        check_writable(path)
    except OSError as e:
        raise unwritable(option, path, e) from None


def finish(tally: Tally, started: float, report: str | None, notes: Sequence[str] = ()) -> ScanResult:
    """The scan's result from its tally (``started``: ``time.perf_counter()`` at its
    start), written to ``report`` when given."""
    result = ScanResult(tally.records, tally.errors, time.perf_counter() - started, tally.to_dict(), tuple(notes))
    if report is not None:
        _write_report(report, result)
    return result


def _write_report(path: str, result: ScanResult) -> None:
    body = {**result.report, "seconds": round(result.seconds, 3)}
    try:
        write_atomically(path, utf8_text(json.dumps(body, ensure_ascii=False, indent=2)) + "\n")
    except OSError as e:
        raise unwritable("--report", path, e) from None
