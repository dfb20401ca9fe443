"""`policy scan --engine spark` (local mode) beside the DuckDB engine (issue 12 item 4,
"report its time beside DuckDB's; no target on two cores").

The catalogue is bench_scan.py's (the peers' workload shape, ../shared/bench/workload.py,
cached in --cache), 200,000 listings by default. Each command is timed end to end as a
user runs it (Spark's start-up included, and reported apart: a scan of 10 listings), and
the outputs are compared row for row. Prints the load average before and after.

    python bench/bench_scan_spark.py [--listings 200000] [--rules 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=200_000, help="catalogue size")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "policy-bench-scan")
    args = parser.parse_args()
    print(f"load before: {bench_scan.loadavg()}  cores: {os.cpu_count()}")
    policy = bench_scan.workload.make_policy(args.rules)
    n = args.listings
    parquet, _ = bench_scan.catalogue(policy, args.cache, n, args.rules, 10)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "workload.policy").write_text(bench_scan.policy_text(policy), encoding="utf-8")
        pq.write_table(pq.read_table(parquet).slice(0, 10), d / "tiny.parquet")
        base = ["scan", str(d / "workload.policy"), "--at-field", bench_scan.AT_FIELD]
        print(f"catalogue: {n:,} listings, {args.rules} rules")
        times = {}
        engines = (("duckdb, jobs 2", ["--jobs", "2"]), ("spark local[2]", ["--engine", "spark", "--jobs", "2"]))
        for label, extra in engines:
            out = d / f"{label.split(',')[0].split()[0]}.parquet"
            seconds, peak = bench_scan.run([*base, "--input", str(parquet), "--out", str(out), *extra])
            times[label] = seconds
            print(f"{label:<16} {seconds:7.2f} s  {n / seconds:10,.0f} listings/s  (peak RSS {peak / 2**20:,.0f} MB)")
        start, _ = bench_scan.run([*base, "--input", str(d / "tiny.parquet"), "--out", str(d / "tiny-out.parquet"),
                                   "--engine", "spark", "--jobs", "2"])
        same = pq.read_table(d / "duckdb.parquet").to_pylist() == pq.read_table(d / "spark.parquet").to_pylist()
        ratio = times["spark local[2]"] / times["duckdb, jobs 2"]
        print(f"spark / duckdb: {ratio:.2f}x; Spark's start-up and a 10-listing scan: {start:.2f} s; "
              f"outputs {'identical' if same else 'DIFFER'}")
    print(f"load after: {bench_scan.loadavg()}")


if __name__ == "__main__":
    main()
