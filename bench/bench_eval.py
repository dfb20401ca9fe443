"""`policy eval` against a hand-written script, both run as subprocesses (issue 13, item 2).

Workload: the peers' one (../shared/bench/workload.py): N rules (N-1 blocking one category
from a date, one in five also restricted to platforms, and one keyword rule on the title),
the policy written as text the way compare.py writes it. The input is JSON lines, one
envelope ``{"listing": {…}, "at": "<the listing's date>"}`` per record (the workload's
listings, repeated to the number asked for).

The baseline, measured in the same run on the same input: a hand-written script that reads
the same JSON lines, applies the same rules (a dict from category to rules, a substring
test for the keywords) and writes one JSON line per record, byte for byte the line `policy
eval` writes (checked: the two outputs must be identical). It is timed twice: with the
standard library's json, and with orjson (what `policy eval` reads and writes with).

Printed: wall and CPU seconds of each (best of --repeat), the ratios of `policy eval` to each
baseline (the target: within 2x), the start-up of `policy eval` alone (an empty input: the
interpreter, the imports, loading the policy), the peak memory of `policy eval` at two input
sizes (flat: streaming), and the load average.

usage: python bench/bench_eval.py [--rules N] [--records M] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT.parent / "shared" / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(WORKLOAD))

import workload  # noqa: E402

import dsl  # noqa: E402

HAND_WRITTEN = r'''
import sys

def main():
    spec_path, input_path, library = sys.argv[1:4]
    if library == "orjson":
        import orjson
        loads, dumps = orjson.loads, orjson.dumps
    else:
        import json
        loads = json.loads
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        dumps = lambda obj: encode(obj).encode("utf-8")
    with open(spec_path, "rb") as f:
        spec = loads(f.read())
    by_category = {}
    for since, qid, category, platforms in spec["category_rules"]:
        by_category.setdefault(category, []).append((since, qid, None if platforms is None else frozenset(platforms)))
    keyword_rules = [(since, qid, tuple(keywords)) for since, qid, keywords in spec["keyword_rules"]]
    policy_hash = spec["policy_hash"]
    get = by_category.get
    out = sys.stdout.buffer
    write = out.write
    with open(input_path, "rb") as f:
        for raw in f:
            record = loads(raw)
            listing, at = record["listing"], record["at"]
            ids = [qid for since, qid, platforms in get(listing["category"], ())
                   if at >= since and (platforms is None or listing["platform"] in platforms)]
            title = listing["title"]
            for since, qid, keywords in keyword_rules:
                if at >= since and any(k in title for k in keywords):
                    ids.append(qid)
            ids.sort()
            write(dumps({"effect": "block" if ids else "allow", "rules": ids, "overridden": [], "penalty": None,
                         "messages": [], "citations": [], "warnings": [], "at": at + "T00:00:00",
                         "policy_hash": policy_hash}) + b"\n")
    out.flush()

main()
'''


def policy_source(policy: Any) -> str:
    """The workload as a compliance author writes it (as ../shared/bench/compare.py does)."""
    lines = ["policy bench"]
    for r in policy.rules:
        cond = []
        if r.category is not None:
            cond.append(f"category '{r.category}'")
        if r.platforms is not None:
            cond.append("platform in [" + ", ".join(f"'{p}'" for p in r.platforms) + "]")
        if r.keywords is not None:
            cond.append("(" + " or ".join(f"title contains '{k}'" for k in r.keywords) + ")")
        lines.append(f"rule {r.id}: from {r.since} block " + " and ".join(cond))
    return "\n".join(lines) + "\n"


def prepare(work: Path, n_rules: int, n_records: int) -> None:
    policy = workload.make_policy(n_rules)
    (work / "policies").mkdir()
    (work / "policies" / "bench.policy").write_text(policy_source(policy))
    policy_hash = dsl.load(work / "policies").policy_hash
    spec = {"policy_hash": policy_hash,
            "category_rules": [[r.since, f"bench.{r.id}", r.category, r.platforms] for r in policy.category_rules],
            "keyword_rules": [[r.since, f"bench.{r.id}", r.keywords] for r in policy.keyword_rules]}
    (work / "rules.json").write_text(json.dumps(spec))
    (work / "hand_written.py").write_text(HAND_WRITTEN)
    listings = workload.make_listings(policy)
    with open(work / "input.jsonl", "w") as f:
        for i in range(n_records):
            listing = listings[i % len(listings)]
            f.write(json.dumps({"listing": listing, "at": listing["listed_on"]}, separators=(",", ":")) + "\n")
    (work / "empty.jsonl").write_text("")


def run(cmd: list[str], out: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one subprocess."""
    with open(out, "wb") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{cmd[:4]} exited {code}")
    return wall, usage.ru_utime + usage.ru_stime


# A child's peak memory counts its parent's at the fork (Linux keeps the high-water mark
# across exec): a small process starts the command, so that the bench's own does not count.
PEAK = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1], 'wb')); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mb(cmd: list[str], out: Path) -> float:
    """The peak resident memory of ``cmd`` (MB)."""
    found = subprocess.run([sys.executable, "-c", PEAK, str(out), *cmd], capture_output=True, text=True, check=True)
    return int(found.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        prepare(work, args.rules, args.records)
        inp = str(work / "input.jsonl")
        py = sys.executable
        commands = {
            "hand-written (json)": [py, str(work / "hand_written.py"), str(work / "rules.json"), inp, "json"],
            "hand-written (orjson)": [py, str(work / "hand_written.py"), str(work / "rules.json"), inp, "orjson"],
            "policy eval": [py, "-m", "dsl", "eval", str(work / "policies"), "--input", inp],
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):  # interleaved, so that a burst of load hits all of them alike
            for name, cmd in commands.items():
                wall, cpu = run(cmd, work / f"{name[:6]}.out")
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], wall), min(old[1], cpu))
        outputs = {(work / f"{name[:6]}.out").read_bytes() for name in commands}
        if len(outputs) != 1:
            raise SystemExit("the outputs differ: the baseline does not write what `policy eval` writes")
        eval_cmd = [py, "-m", "dsl", "eval", str(work / "policies"), "--input"]
        startup = min(run(eval_cmd + [str(work / "empty.jsonl")], work / "empty.out") for _ in range(args.repeat))
        small = work / "small.jsonl"
        small.write_bytes(b"".join((work / "input.jsonl").read_bytes().splitlines(keepends=True)[:args.records // 10]))
        peaks = (peak_mb(eval_cmd + [str(small)], work / "small.out"), peak_mb(eval_cmd + [inp], work / "peak.out"))
        report(args, best, startup, peaks)


def report(args: Any, best: dict[str, tuple[float, float]], startup: tuple[float, float],
           peaks: tuple[float, float]) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# bench_eval: N={args.rules:,} rules, {args.records:,} records (JSON lines, one `at` each), "
          f"best of {args.repeat}; load average {load}")
    ours = best["policy eval"]
    for name, (wall, cpu) in best.items():
        ratio = ("" if name == "policy eval"
                 else f"   policy eval = {ours[0] / wall:.2f}x wall, {ours[1] / cpu:.2f}x CPU")
        print(f"  {name:<22} {wall:6.2f} s wall {cpu:6.2f} s CPU{ratio}")
    print(f"  policy eval start-up (empty input: interpreter, imports, loading the policy): "
          f"{startup[0]:.2f} s wall, {startup[1]:.2f} s CPU")
    per_record = (ours[1] - startup[1]) / args.records * 1e6
    print(f"  policy eval per record, start-up excluded: {per_record:.1f} µs CPU")
    print(f"  policy eval peak memory: {peaks[0]:.0f} MB at {args.records // 10:,} records, "
          f"{peaks[1]:.0f} MB at {args.records:,} (streaming: flat)")


if __name__ == "__main__":
    main()
