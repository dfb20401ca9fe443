"""`policy scan` benchmark (issue 12, "Performance"): a generated catalogue with the peers'
workload shape (../shared/bench/workload.py: 1,000 rules, ~10% of listings blocked) as
Parquet, 1,000,000 listings by default, generated once and cached (``--cache``).

Printed in one run, each baseline measured in the same run on the same files:
- a hand-written DuckDB SQL query that computes the same decisions (effect and the ids of
  the applying rules) and writes them as Parquet;
- scan (DuckDB, --jobs 1 and 2 and the default, pushdown on and off), each with its ratio to the SQL
  (target: within 3x) and its block count checked against the SQL's; each line (and the
  SQL) the best of three runs, the lines run in turn. The policy file is the same in every
  run, so its parse comes from the parse cache (``dsl.syntax.cache``) but in the first; the
  line "no parse cache" runs with ``POLICY_DSL_CACHE=off``, as a scan of a set never read
  before;
- `policy eval` on the same records as JSON lines: timed on the first --eval-limit
  records (100,000) and scaled to the catalogue (its start-up, an eval of one record,
  counted once), with the ratio to the best scan (target: scan 10x faster);
- --jobs 2 against --jobs 1 (the best of three runs each, alternating) with a policy no
  pushdown can narrow (the workload plus a rule `title matches /…/` in force on every date,
  which never matches: every record reaches the evaluator and the decisions stay the SQL's;
  target 1.7x), beside the most two cores could give (``jobs_speedup``: from --jobs 1's
  CPU seconds and the scan's start on one core);
- with --memory, a 10,000,000-listing catalogue scanned with the default jobs: the peak
  resident memory of the scan's processes together (sampled from /proc) and of the
  largest one (getrusage of the children) (target: under 1 GB);
- with --spark, the same scan with --engine spark (local mode), beside DuckDB's;
- the machine's load average before and after.

Run ``python bench/bench_scan.py`` (about two minutes on two quiet cores, plus the first
generation of the catalogue); ``--listings 200000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent / "shared" / "bench"))

import workload  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))

from bytecode import compiled  # noqa: E402

AT_FIELD = "listed_on"
REPEAT = 3
"""Runs of each side of the --jobs speedup (alternating; the best of each is compared)."""
CHUNK = 100_000
UNNARROWABLE = "\nrule every_title: from 2000-01-01 block title matches /[0-9]{40}/\n"
"""A rule in force on every listing's date that may hold wherever a title exists: the
pushdown keeps every record (it does not restate regular expressions in SQL, and this one
spells out no text that every match holds)."""


def policy_text(policy: Any) -> str:
    """The workload's rules in the policy language: a rule's ``since`` is the start of its
    window, read against each listing's ``listed_on`` (``--at-field``)."""
    lines = ["policy workload", "  timezone 'UTC'", ""]
    for r in policy.rules:
        cond = []
        if r.category is not None:
            cond.append(f"category '{r.category}'")  # one segment: the workload's equality
        if r.platforms is not None:
            cond.append("platform in [" + ", ".join(f"'{p}'" for p in r.platforms) + "]")
        if r.keywords is not None:
            cond.append("(" + " or ".join(f"title contains '{k}'" for k in r.keywords) + ")")
        lines.append(f"rule {r.id.lower()}: from {r.since} block {' and '.join(cond)}")
    return "\n".join(lines) + "\n"


def write_catalogue(policy: Any, n: int, parquet: Path, jsonl: Path | None, jsonl_limit: int) -> None:
    """The listings as Parquet (all of them) and as JSON lines envelopes for `policy eval`
    (the first ``jsonl_limit``), generated in chunks so that memory stays small; written
    under temporary names and renamed, so that the cache never holds half a file."""
    writer = None
    written = 0
    part = parquet.with_suffix(".parquet.part")
    text_part = jsonl.with_suffix(".jsonl.part") if jsonl is not None else None
    out = open(text_part, "w", encoding="utf-8") if text_part is not None else None
    try:
        for k, start in enumerate(range(0, n, CHUNK)):
            rows = workload.make_listings(policy, min(CHUNK, n - start), seed=7 + k)
            for i, row in enumerate(rows):
                row["id"] = f"L{start + i:08d}"
            table = pa.Table.from_pylist(rows)
            writer = writer or pq.ParquetWriter(part, table.schema)
            writer.write_table(table)
            if out is not None:
                for row in rows[:max(jsonl_limit - written, 0)]:
                    out.write(json.dumps({"listing": row, "at": row[AT_FIELD]}) + "\n")
            written += len(rows)
    finally:
        if out is not None:
            out.close()
    assert writer is not None
    writer.close()
    os.replace(part, parquet)
    if jsonl is not None and text_part is not None:
        os.replace(text_part, jsonl)


def catalogue(policy: Any, cache: Path, n: int, rules: int, eval_limit: int) -> tuple[Path, Path]:
    """The cached catalogue of ``n`` listings (generated on first use) and its JSON lines
    slice."""
    cache.mkdir(parents=True, exist_ok=True)
    parquet = cache / f"workload-{rules}r-{n}.parquet"
    jsonl = cache / f"workload-{rules}r-{n}-first{eval_limit}.jsonl"
    if not parquet.exists() or not jsonl.exists():
        started = time.perf_counter()
        write_catalogue(policy, n, parquet, jsonl, min(eval_limit, n))
        print(f"generated {parquet} in {time.perf_counter() - started:.1f} s")
    return parquet, jsonl


def sql_decisions(policy: Any, parquet: Path, out: Path) -> float:
    """The hand-written query: effect and applying rule ids per listing, written as Parquet."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE TABLE rules (id VARCHAR, since VARCHAR, category VARCHAR, platforms VARCHAR[])")
    con.executemany("INSERT INTO rules VALUES (?, ?, ?, ?)",
                    [(r.id.lower(), r.since, r.category, list(r.platforms) if r.platforms else None)
                     for r in policy.rules if r.category is not None])
    (kw_rule,) = policy.keyword_rules
    words = " OR ".join(f"contains(l.title, '{k}')" for k in kw_rule.keywords)
    src = f"read_parquet('{parquet}')"
    sql = f"""
    COPY (
      WITH hits AS (
        SELECT l.id, r.id AS rid FROM {src} l JOIN rules r
          ON l.category = r.category AND l.listed_on >= r.since
             AND (r.platforms IS NULL OR list_contains(r.platforms, l.platform))
        UNION ALL
        SELECT l.id, '{kw_rule.id.lower()}' FROM {src} l WHERE l.listed_on >= '{kw_rule.since}' AND ({words})
      )
      SELECT l.id, CASE WHEN count(h.rid) > 0 THEN 'block' ELSE 'allow' END AS effect,
             list(h.rid ORDER BY h.rid) FILTER (WHERE h.rid IS NOT NULL) AS rules
      FROM {src} l LEFT JOIN hits h ON l.id = h.id GROUP BY l.id
    ) TO '{out}' (FORMAT parquet)"""
    started = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - started


def _tree_rss(root: int) -> int:
    """The resident memory (bytes) of a process and its descendants, from /proc."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            kids = " ".join(p.read_text() for p in Path(f"/proc/{pid}/task").glob("*/children"))
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        todo.extend(int(k) for k in kids.split())
    return total


def run(args: list[str], stdout: Any = subprocess.DEVNULL, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Seconds of a `policy` command, and the peak resident memory of its processes
    together (sampled every 0.1 s); ``env``: variables set for it. ``LAST_CPU`` holds
    the CPU seconds (user and system) its processes took, its workers included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dsl", *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, **(env or {})})
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"policy {' '.join(args)} failed:\n{err}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, peak[0]


LAST_CPU = [0.0]
"""The CPU seconds of the last ``run`` (its processes, reaped workers included)."""


def blocked(path: Path) -> int:
    con = duckdb.connect()
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE effect = 'block'").fetchall()[0][0])


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def scans(d: Path, parquet: Path, sql_s: float, sql_blocked: int, n: int) -> dict[str, float]:
    """Each scan line: the best of ``REPEAT`` runs, the lines taken in turn (so that a
    burst of the machine's load falls on all of them), against the SQL's best."""
    base = [str(d / "workload.policy"), "--input", str(parquet), "--at-field", AT_FIELD]
    lines = (("jobs 1", ["--jobs", "1"]), ("jobs 2", ["--jobs", "2"]), ("default jobs", []),
             ("default, no parse cache", []),
             ("jobs 1, no pushdown", ["--jobs", "1", "--no-pushdown"]),
             ("jobs 2, no pushdown", ["--jobs", "2", "--no-pushdown"]))
    off = {"POLICY_DSL_CACHE": "off"}
    runs: dict[str, list[float]] = {label: [] for label, _ in lines}
    peaks: dict[str, int] = {label: 0 for label, _ in lines}
    agree: dict[str, bool] = {label: True for label, _ in lines}
    for _ in range(REPEAT):
        for label, extra in lines:
            out = d / "scan.parquet"
            seconds, peak = run(["scan", *base, "--out", str(out), *extra], env=off if "cache" in label else None)
            runs[label].append(seconds)
            peaks[label] = max(peaks[label], peak)
            agree[label] = agree[label] and blocked(out) == sql_blocked
    times: dict[str, float] = {}
    for label, _ in lines:
        seconds = times[label] = min(runs[label])
        each = " ".join(f"{t:.2f}" for t in runs[label])
        print(f"scan {label:<20} {seconds:7.2f} s  {n / seconds:10,.0f} listings/s  {seconds / sql_s:5.2f}x SQL  "
              f"(best of {each}; block count {'agrees' if agree[label] else 'DISAGREES'} with SQL;"
              f" peak RSS {peaks[label] / 2**20:,.0f} MB)")
    return times


def _first_records(d: Path, parquet: Path) -> Path:
    """The catalogue's first 1,000 records as a Parquet file of their own (a scan of it: the
    scan's start, what does not grow with the catalogue)."""
    small = d / "first-1000.parquet"
    if not small.exists():
        pq.write_table(pq.ParquetFile(parquet).read_row_group(0).slice(0, 1000), small)
    return small


def eval_vs_scan(d: Path, jsonl: Path, parquet: Path, n: int, best: float) -> None:
    """`policy eval` on the first records, scaled to the catalogue: its start-up (an eval of
    one record, measured apart) once, and the rest per record (eval streams: its cost per
    record does not grow with the input)."""
    with open(jsonl, encoding="utf-8") as lines:
        first = next(lines)
        m = 1 + sum(1 for _ in lines)
    (d / "one.jsonl").write_text(first, encoding="utf-8")
    start = min(run(["eval", str(d / "workload.policy"), "--input", str(d / "one.jsonl")])[0] for _ in range(3))
    ev, _ = run(["eval", str(d / "workload.policy"), "--input", str(jsonl)])
    scaled = start + (ev - start) * n / m
    print(f"policy eval on the first {m:,} records as JSON lines: {ev:7.2f} s  (one record: {start:.2f} s); "
          f"scaled to {n:,}: {start:.2f} + {ev - start:.2f} x {n / m:g} = {scaled:7.1f} s")
    print(f"best scan vs policy eval (scaled): {scaled / best:5.1f}x faster (target 10x)")
    small = _first_records(d, parquet)
    start = min(run(["scan", str(d / "workload.policy"), "--input", str(small), "--at-field", AT_FIELD,
                     "--out", str(d / "scan-small.parquet")])[0] for _ in range(3))
    print(f"  10x would be {scaled / 10:.2f} s for the whole scan; its start alone (a scan of 1,000 records,"
          f" best of 3) takes {start:.2f} s")


def jobs_speedup(d: Path, parquet: Path, sql_blocked: int, n: int) -> None:
    """--jobs 2 against --jobs 1 on a policy no pushdown narrows, and the most two cores
    could give: --jobs 1 already spends CPU on the second core (DuckDB's reading threads,
    the output's writer thread), and the scan's start (Python, DuckDB and pyarrow
    imported, the set loaded, the query planned: a scan of the first 1,000 records)
    runs on one core before any worker can start. With no cost at all for parting the
    work, --jobs 2 would take the start plus half of the rest of --jobs 1's CPU seconds."""
    (d / "unnarrowable.policy").write_text((d / "workload.policy").read_text() + UNNARROWABLE, encoding="utf-8")
    base = [str(d / "unnarrowable.policy"), "--input", str(parquet), "--at-field", AT_FIELD, "--out",
            str(d / "scan-un.parquet")]
    small = _first_records(d, parquet)
    ones, twos, cpus, starts = [], [], [], []
    for _ in range(REPEAT):  # alternating, so that a burst of load falls on both
        ones.append(run(["scan", *base, "--jobs", "1"])[0])
        cpus.append(LAST_CPU[0])
        twos.append(run(["scan", *base, "--jobs", "2"])[0])
        starts.append(run(["scan", str(d / "unnarrowable.policy"), "--input", str(small), "--at-field", AT_FIELD,
                           "--out", str(d / "scan-small.parquet"), "--jobs", "1"])[0])
    agree = "agrees" if blocked(d / "scan-un.parquet") == sql_blocked else "DISAGREES"
    one, two = min(ones), min(twos)
    cpu, start = cpus[ones.index(one)], min(starts)
    floor = start + (cpu - start) / 2
    print(f"a policy no pushdown narrows: jobs 1 {one:7.2f} s, jobs 2 {two:7.2f} s (best of {REPEAT} each, "
          f"alternating: {_times(ones)} / {_times(twos)}): {one / two:.2f}x "
          f"(target 1.7x; block count {agree} with SQL)")
    print(f"  the most two cores could give: jobs 1 took {cpu:.2f} CPU s in {one:.2f} s; its start (a scan of "
          f"1,000 records) {start:.2f} s on one core; jobs 2 at best {start:.2f} + ({cpu:.2f} - {start:.2f}) / 2 = "
          f"{floor:.2f} s: {one / floor:.2f}x")


def _times(seconds: list[float]) -> str:
    return " ".join(f"{s:.2f}" for s in seconds)


def memory(d: Path, policy: Any, cache: Path, rules: int) -> None:
    n = 10_000_000
    parquet = cache / f"workload-{rules}r-{n}.parquet"
    if not parquet.exists():
        started = time.perf_counter()
        write_catalogue(policy, n, parquet, None, 0)
        print(f"generated {parquet} in {time.perf_counter() - started:.1f} s")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    seconds, peak = run(["scan", str(d / "workload.policy"), "--input", str(parquet), "--at-field", AT_FIELD,
                         "--out", str(d / "scan-10m.parquet")])
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    shown = f"{largest / 1024:,.0f} MB" if largest > before else f"at most {before / 1024:,.0f} MB"
    print(f"10,000,000 listings, default jobs: {seconds:7.1f} s, peak RSS of the scan's processes together "
          f"{peak / 2**20:,.0f} MB, of the largest one {shown} (target: under 1 GB)")


def spark(d: Path, parquet: Path, n: int, duckdb_best: float) -> None:
    try:
        seconds, _ = run(["scan", str(d / "workload.policy"), "--input", str(parquet), "--at-field", AT_FIELD,
                          "--out", str(d / "scan-spark.parquet"), "--engine", "spark"])
    except SystemExit as e:
        print(f"spark: not measured: {str(e).strip().splitlines()[-1]}")
        return
    print(f"scan --engine spark (local): {seconds:7.2f} s  {n / seconds:10,.0f} listings/s  "
          f"({seconds / duckdb_best:.2f}x the best DuckDB scan)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--eval-limit", type=int, default=100_000, help="records `policy eval` decides")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "policy-bench-scan",
                        help="where the generated catalogues are kept between runs")
    parser.add_argument("--memory", action="store_true", help="also scan 10,000,000 listings for peak memory")
    parser.add_argument("--spark", action="store_true", help="also run the scan with --engine spark")
    args = parser.parse_args()
    print(f"load before: {loadavg()}  cores: {os.cpu_count()}")
    print(compiled())
    policy = workload.make_policy(args.rules)
    n = args.listings
    parquet, jsonl = catalogue(policy, args.cache, n, args.rules, args.eval_limit)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "workload.policy").write_text(policy_text(policy), encoding="utf-8")
        print(f"catalogue: {n:,} listings, {args.rules} rules ({parquet.stat().st_size / 1e6:.1f} MB Parquet)")
        sql_runs = [sql_decisions(policy, parquet, d / "sql.parquet") for _ in range(REPEAT)]
        sql_s = min(sql_runs)
        sql_blocked = blocked(d / "sql.parquet")
        print(f"hand-written DuckDB SQL: {sql_s:7.2f} s  {n / sql_s:10,.0f} listings/s  ({sql_blocked:,} blocked;"
              f" best of {' '.join(f'{t:.2f}' for t in sql_runs)})")
        times = scans(d, parquet, sql_s, sql_blocked, n)
        eval_vs_scan(d, jsonl, parquet, n, min(times.values()))
        jobs_speedup(d, parquet, sql_blocked, n)
        if args.spark:
            spark(d, parquet, n, min(times.values()))
        if args.memory:
            memory(d, policy, args.cache, args.rules)
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()
