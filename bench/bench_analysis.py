"""Analysis benchmark: the consistency analysis (P300–P304) on the example policies and on
a generated 1,000-rule set (100 categories, overlapping rules, a few exceptions and
ladders). Prints time, solver calls, pairs considered and pruned (in total and per check),
and the findings.

Then the scaling (issue #13): bench/gen.py's rules, which do not interact (one category
each), at 100 / 1,000 / 3,000 / 10,000 rules, and the overlapping set above, each in a
fresh process: time to compile, time of the analysis, peak RSS of the process. The
baseline, measured in the same run, is the unindexed analysis
(``findings.run(indexed=False)``: every pair asked about, every rule read on every
listing, every sample from the solver), on the sizes up to ``--baseline-up-to``; the
findings (code, file, line) of both must be the same. The load average is printed.

Targets (issue #4): example policies < 2 s; 1,000 rules < 30 s. Issue #13: 3,000 disjoint
rules under 3 s and 300 MB; 10,000 under 10 s; the 1,000 overlapping rules under 5 s.
Before issue #13 (policy check, quiet): 0.62 s / 3.8 s / 32.2 s and 79 / 150 / 843 MB at
100 / 1,000 / 3,000 disjoint rules; 7.7 s on the 1,000 overlapping rules.

    .venv/bin/python bench/bench_analysis.py [--rules 1000] [--seed 4] [--sizes 100,1000,3000,10000]
        [--baseline-up-to 1000]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsl.analysis import analyze, stats  # noqa: E402
from dsl.analysis.findings import run as run_findings  # noqa: E402
from dsl.analysis.solver import AnalysisStats  # noqa: E402
from dsl.api import compile_paths  # noqa: E402

PLATFORMS = ["taobao", "xianyu", "aliexpress", "lazada", "tmall", "1688"]
ZONES = ["Asia/Shanghai", "UTC", "Europe/London", "America/New_York"]
KEYWORDS = [["bitcoin", "ether"], ["mining rig", "asic miner"], ["knife", "dagger"],
            ["ivory", "carved ivory"], ["replica gun", "airsoft"], ["vape", "e-cigarette"]]


def generated_policies(n_rules: int, *, seed: int = 4, policies: int = 10, categories: int = 100) -> dict[str, str]:
    """``policies`` files of about ``n_rules / policies`` rules each. Each policy covers two
    or three platforms (overlapping with other policies) and has its own timezone; most
    rules block one of ``categories`` categories (some only in one department, some only
    with keywords or above a price, some flag), a few are allows for licensed sellers, and
    laddered rules mostly share one ladder."""
    rnd = random.Random(seed)
    depts = max(1, categories // 10)
    cats = [(f"Dept {d}", f"Cat {d}-{c}") for d in range(depts) for c in range(categories // depts)]
    per = n_rules // policies
    files: dict[str, str] = {}
    for k in range(policies):
        plats = rnd.sample(PLATFORMS, rnd.choice([2, 3]))
        lines = [
            f"policy gen-{k:02d}",
            f'  title "Generated policy {k}"',
            f'  timezone "{ZONES[k % len(ZONES)]}"',
            "  scope platform in [" + ", ".join(f"'{p}'" for p in plats) + "]",
        ]
        if k == 0:
            lines += ["ladder escalate = remove listing then remove listing and deduct 6 points "
                      "then restrict listing for 30d then close account",
                      "ladder strict = remove listing and deduct 12 points then close account"]
        ladder = "strict" if k == policies - 1 else "escalate"
        names: list[str] = []
        for i in range(per):
            name = f"r{i}"
            dept, cat = rnd.choice(cats)
            when = f"from 2021-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d} " if rnd.random() < 0.7 else ""
            roll = rnd.random()
            penalty = f" penalty {ladder}" if rnd.random() < 0.12 else ""
            if roll < 0.03 and names:
                target = rnd.choice(names)
                lines.append(f"rule {name}: allow category '{cat}' and seller in ['S-{rnd.randrange(100)}'] "
                             f"overrides {target}")
                continue
            rule = f"rule {name}: {when}" + _blocking_rule(rnd, roll, dept, cat, penalty)
            lines.append(rule)
            names.append(name)
        files[f"gen-{k:02d}.policy"] = "\n".join(lines) + "\n"
    return files


def _blocking_rule(rnd: random.Random, roll: float, dept: str, cat: str, penalty: str) -> str:
    """The effect and condition of a generated rule that is not an allow (``roll`` >= 0.03
    picks its form; ``rnd`` is drawn from as the form needs)."""
    if roll < 0.55:
        return f"block category '{cat}'{penalty}"
    if roll < 0.70:
        kw = ", ".join(f"'{w}'" for w in rnd.choice(KEYWORDS))
        return f"block category '{cat}' and mentions any [{kw}]{penalty}"
    if roll < 0.82:
        return f"flag category '{cat}' and price > {rnd.choice([100, 500, 1000, 5000])}"
    if roll < 0.92:
        return f"block category '{dept} > {cat}' and price > {rnd.choice([10, 50])}{penalty}"
    if roll < 0.97:
        kw = ", ".join(f"'{w}'" for w in rnd.choice(KEYWORDS))
        return f"block mentions any [{kw}]"
    if roll < 0.99:
        return f"block category '{cat}' and price > 20{penalty}"
    return f"block category '{cat}' penalty remove listing and deduct 2 points"


def run(label: str, paths: list[str]) -> None:
    ps, _, diags = compile_paths(paths)
    if ps is None:
        print(f"{label}: the set has errors:", *[d.message for d in diags[:5]], sep="\n  ")
        return
    start = time.perf_counter()
    found = analyze(ps)
    elapsed = time.perf_counter() - start
    s = stats()
    codes = collections.Counter(d.code for d in found)
    print(f"{label}: {len(ps.rules)} rules, {elapsed:.2f} s")
    print(f"  solver calls {s.solver_calls} (sat {s.sat}, unsat {s.unsat}, undecided {s.undecided}), "
          f"solver time {s.solver_seconds:.2f} s")
    # (rule, other rule) questions put to the index, summed over the checks; P301 asks
    # whether the others cover each rule, so it counts an unordered pair from both sides
    by = ", ".join(f"{check} {c}/{p}" for check, (c, p) in sorted(s.pairs_by_check.items()))
    print(f"  pairs considered {s.pairs_considered}, pruned {s.pairs_pruned} "
          f"(summed over checks, P301 ordered: {by or 'none'})")
    print(f"  settled by concrete samples {s.concrete_hits}, witnesses replayed {s.replays}")
    print("  findings: " + (", ".join(f"{c} x{n}" for c, n in sorted(codes.items())) or "none"))


def measure_one(kind: str, n_rules: int, seed: int, indexed: bool) -> dict[str, Any]:
    """One set analysed in this process: seconds to compile and to analyse, peak RSS, the
    findings as (code, file, line) and by code."""
    if kind == "disjoint":
        sys.path.insert(0, str(ROOT / "bench"))
        from gen import policy_text

        files = {"generated.policy": policy_text(n_rules)}
    else:
        files = generated_policies(n_rules, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        ps, _, diags = compile_paths([tmp])
        t1 = time.perf_counter()
        if ps is None:
            raise SystemExit(f"{kind} {n_rules}: the set has errors: {[d.message for d in diags[:3]]}")
        found = analyze(ps) if indexed else run_findings(ps, 10000, AnalysisStats(), None, indexed=False)
        t2 = time.perf_counter()
    places = sorted((d.code, Path(d.span.file).name if d.span else "", d.span.line if d.span else 0) for d in found)
    rss_mb = peak_rss_mb()
    codes = dict(collections.Counter(d.code for d in found))
    return {"compile": t1 - t0, "analysis": t2 - t1, "rss_mb": rss_mb, "places": places, "codes": codes}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: ``ru_maxrss`` would count the parent's
    peak from before the fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(kind: str, n_rules: int, seed: int, indexed: bool) -> dict[str, Any]:
    """``measure_one`` in a fresh process (its own peak RSS)."""
    cmd = [sys.executable, __file__, "--one", kind, str(n_rules), "--seed", str(seed)]
    if not indexed:
        cmd.append("--unindexed")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def scaling(sizes: list[int], seed: int, baseline_up_to: int, overlapping: int) -> None:
    print(f"\nscaling (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}); "
          "baseline: the unindexed analysis, same run")
    cases = [("disjoint", n) for n in sizes] + [("overlapping", overlapping)]
    for kind, n in cases:
        new = _in_child(kind, n, seed, True)
        line = (f"  {kind:11} {n:6} rules: compile {new['compile']:.2f} s, analysis {new['analysis']:.2f} s, "
                f"peak RSS {new['rss_mb']:.0f} MB; findings {new['codes'] or 'none'}")
        if n <= baseline_up_to:
            old = _in_child(kind, n, seed, False)
            same = "same findings" if old["places"] == new["places"] else "FINDINGS DIFFER"
            ratio = old["analysis"] / max(new["analysis"], 1e-9)
            line += (f"\n  {'':11} {'':6}        unindexed: analysis {old['analysis']:.2f} s, "
                     f"peak RSS {old['rss_mb']:.0f} MB ({ratio:.1f}x slower; {same})")
        print(line, flush=True)
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--sizes", default="100,1000,3000,10000", help="disjoint set sizes for the scaling")
    ap.add_argument("--baseline-up-to", type=int, default=1000, help="largest size the baseline is measured at")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "RULES"), help=argparse.SUPPRESS)
    ap.add_argument("--unindexed", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]), args.seed, not args.unindexed)))
        return
    run("example policies (policies/)", [str(ROOT / "policies")])
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in generated_policies(args.rules, seed=args.seed).items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        run(f"generated set (seed {args.seed})", [tmp])
    scaling([int(n) for n in args.sizes.split(",") if n], args.seed, args.baseline_up_to, args.rules)


if __name__ == "__main__":
    main()
