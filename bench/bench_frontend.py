"""Front-end benchmark: parse and check a generated 10,000-rule policy set; the whole
`dsl.load` of it, stage by stage; time `policy check policies/ --no-analysis` end to end
(start-up included).

Targets (issue #2): 10,000 rules parsed and checked in under 2 s; `policy check
policies/ --no-analysis` under 0.5 s wall time. Issue #3 wants the whole `dsl.load` of
10,000 rules under 2 s too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen import policy_text  # noqa: E402

from dsl.checking.loader import load_paths  # noqa: E402
from dsl.checking.passes import build  # noqa: E402
from dsl.evaluate.policies import Policies  # noqa: E402
from dsl.fingerprint import policy_hash  # noqa: E402
from dsl.syntax import parse  # noqa: E402


def parse_and_check(text: str) -> float:
    t0 = time.perf_counter()
    file, diags = parse(text, "generated.policy")
    assert not [d for d in diags if d.severity == "error"], diags[:3]
    model, diags = build([file], {"generated.policy": text})
    assert model is not None, diags[:3]
    return time.perf_counter() - t0


def load_stages(text: str) -> dict[str, float]:
    """``dsl.load`` of the text as a file on disk, timed stage by stage."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "generated.policy").write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        loaded = load_paths([tmp])
        t1 = time.perf_counter()
        model, _ = build(list(loaded.policy_files), loaded.sources)
        t2 = time.perf_counter()
        assert model is not None
        policy_hash(model)
        t3 = time.perf_counter()
        Policies(model)
        t4 = time.perf_counter()
    return {"read+parse": t1 - t0, "check": t2 - t1, "policy_hash": t3 - t2, "plan": t4 - t3, "total": t4 - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 2000 if args.quick else 10_000
    text = policy_text(n)
    parse("policy warm\nrule a: block category 'x'\n")  # build the parser once, as a CLI run does
    runs = [parse_and_check(text) for _ in range(1 if args.quick else 3)]
    best = min(runs)
    print(f"parse+check {n} rules ({len(text) / 1e6:.2f} MB): best {best:.3f} s, median {statistics.median(runs):.3f} s"
          f" -> {n / best:,.0f} rules/s  (target: 10,000 rules < 2 s)")

    loads = [load_stages(text) for _ in range(1 if args.quick else 3)]
    fastest = min(loads, key=lambda d: d["total"])
    stages = ", ".join(f"{k} {v:.3f}" for k, v in fastest.items() if k != "total")
    print(f"dsl.load {n} rules: best {fastest['total']:.3f} s ({stages}),"
          f" median {statistics.median(d['total'] for d in loads):.3f} s  (target: < 2 s)")

    exe = shutil.which("policy") or str(Path(sys.executable).parent / "policy")
    times = []
    for _ in range(3 if args.quick else 7):
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "check", str(ROOT / "policies"), "--no-analysis"], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
    baseline = []
    for _ in range(3 if args.quick else 7):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
        baseline.append(time.perf_counter() - t0)
    print(f"policy check policies/ --no-analysis: median {statistics.median(times):.3f} s, best {min(times):.3f} s"
          f" (exit {proc.returncode}; bare python start-up {statistics.median(baseline):.3f} s; target < 0.5 s)")


if __name__ == "__main__":
    main()
