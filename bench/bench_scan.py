"""`policy scan` benchmark (issue 12): a generated catalogue with the peers' workload shape
(../shared/bench/workload.py: 1,000 rules, ~10% of listings blocked) as Parquet.

Figures printed (every run measures its baselines in the same run, on the same files):
- scan (DuckDB, --jobs 1 and 2, pushdown on and off) against a hand-written DuckDB SQL query
  that computes the same decisions (effect and the ids of the applying rules) and writes
  them as Parquet: the issue's target is scan within 3x of it;
- scan against `policy eval` on the same records as JSON lines (target: 10x faster); eval
  runs on at most --eval-limit records and its rate is extrapolated;
- --jobs 2 against --jobs 1 with --no-pushdown (every record reaches the evaluator;
  target 1.7x);
- peak memory: the largest resident set of any one process of the scan (workers included);
- the machine's load (/proc/loadavg) before and after.

The block counts of scan and of the SQL query are compared (they must agree).

Run ``python bench/bench_scan.py`` (200,000 listings); ``--listings 1000000`` or
``--listings 10000000`` for the issue's sizes (minutes to tens of minutes on two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent / "shared" / "bench"))

import workload  # noqa: E402

AT_FIELD = "listed_on"
CHUNK = 100_000


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


def write_catalogue(policy: Any, n: int, parquet: Path, jsonl: Path, jsonl_limit: int) -> None:
    """The listings as Parquet (all of them) and as JSON lines envelopes for `policy eval`
    (the first ``jsonl_limit``), generated in chunks so that memory stays small."""
    writer = None
    written = 0
    with open(jsonl, "w", encoding="utf-8") as out:
        for k, start in enumerate(range(0, n, CHUNK)):
            rows = workload.make_listings(policy, min(CHUNK, n - start), seed=7 + k)
            for i, row in enumerate(rows):
                row["id"] = f"L{start + i:08d}"
            table = pa.Table.from_pylist(rows)
            writer = writer or pq.ParquetWriter(parquet, table.schema)
            writer.write_table(table)
            for row in rows[:max(jsonl_limit - written, 0)]:
                out.write(json.dumps({"listing": row, "at": row[AT_FIELD]}) + "\n")
            written += len(rows)
    assert writer is not None
    writer.close()


def sql_decisions(policy: Any, parquet: Path, out: Path) -> float:
    """The hand-written query: effect and applying rule ids per listing, written as Parquet."""
    con = duckdb.connect()
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


def run(args: list[str], stdout: Any = subprocess.DEVNULL) -> tuple[float, int]:
    """Seconds and exit status of a `policy` command."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dsl", *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"policy {' '.join(args)} failed:\n{done.stderr}")
    return seconds, done.returncode


def blocked(path: Path) -> int:
    con = duckdb.connect()
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE effect = 'block'").fetchall()[0][0])


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=200_000, help="catalogue size (1000000, 10000000)")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--eval-limit", type=int, default=100_000, help="records `policy eval` decides")
    args = parser.parse_args()
    print(f"load before: {loadavg()}  cores: {os.cpu_count()}")
    policy = workload.make_policy(args.rules)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "workload.policy").write_text(policy_text(policy), encoding="utf-8")
        started = time.perf_counter()
        write_catalogue(policy, args.listings, d / "catalogue.parquet", d / "catalogue.jsonl",
                        min(args.eval_limit, args.listings))
        size = (d / "catalogue.parquet").stat().st_size / 1e6
        print(f"catalogue: {args.listings:,} listings, {args.rules} rules, written in "
              f"{time.perf_counter() - started:.1f} s ({size:.1f} MB Parquet)")
        n = args.listings
        sql_s = sql_decisions(policy, d / "catalogue.parquet", d / "sql.parquet")
        print(f"hand-written DuckDB SQL: {sql_s:7.2f} s  {n / sql_s:12,.0f} listings/s")
        base = [str(d / "workload.policy"), "--input", str(d / "catalogue.parquet"), "--at-field", AT_FIELD]
        times: dict[str, float] = {}
        for label, extra in (("jobs 1", ["--jobs", "1"]), ("jobs 2", ["--jobs", "2"]),
                             ("jobs 1, no pushdown", ["--jobs", "1", "--no-pushdown"]),
                             ("jobs 2, no pushdown", ["--jobs", "2", "--no-pushdown"])):
            out = d / "scan.parquet"
            seconds, _ = run(["scan", *base, "--out", str(out), *extra])
            times[label] = seconds
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            agree = "agrees" if blocked(out) == blocked(d / "sql.parquet") else "DISAGREES"
            print(f"scan {label:<20} {seconds:7.2f} s  {n / seconds:12,.0f} listings/s  "
                  f"{seconds / sql_s:5.1f}x SQL  (block count {agree} with SQL; peak RSS so far {peak:,.0f} MB)")
        m = min(args.eval_limit, n)
        ev, _ = run(["eval", str(d / "workload.policy"), "--input", str(d / "catalogue.jsonl")])
        print(f"policy eval on {m:,} JSON lines: {ev:7.2f} s  {m / ev:12,.0f} listings/s")
        best = min(times.values())
        print(f"scan (best) vs eval, per listing: {(ev / m) / (best / n):5.1f}x faster")
        sj, _ = run(["scan", str(d / "workload.policy"), "--input", str(d / "catalogue.jsonl"), "--out",
                     str(d / "scan-json.parquet"), "--jobs", "2"])
        print(f"scan --jobs 2 on the same {m:,} JSON lines: {sj:7.2f} s  {m / sj:12,.0f} listings/s "
              f"({ev / sj:.1f}x eval)")
        print(f"--jobs 2 vs --jobs 1, no pushdown: {times['jobs 1, no pushdown'] / times['jobs 2, no pushdown']:.2f}x")
    print(f"peak RSS of any one process: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MB")
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()
