"""`policy diff` benchmark (issue 14): the example policies against an edited copy, and
two generated 1,000-rule sets (bench/gen.py) that differ in ten rules. Prints the time of
the diff, the time of compiling both versions (the baseline, measured in the same run),
their ratio, the solver calls, and the load average.

Targets: policies/ against an edited copy < 3 s; 1,000 rules differing in ten < 10 s.

    .venv/bin/python bench/bench_diff.py [--rules 1000] [--changed 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen import policy_text  # noqa: E402

from dsl.api import compile_paths  # noqa: E402
from dsl.versions import compare  # noqa: E402


def _edited_generated(text: str, changed: int) -> str:
    """Change ``changed`` rules spread over the set: a start moved by a day, a platform
    list narrowed, a penalty added (in turn)."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("rule r")]
    step = max(1, len(rules) // changed)
    for n, i in enumerate(rules[::step][:changed]):
        line = lines[i]
        if n % 3 == 0:
            line = re.sub(r"from 2021-(\d\d)-(\d\d)", lambda m: f"from 2021-{m[1]}-{int(m[2]) + 1:02d}", line)
        elif n % 3 == 1:
            line += " and title mentions 'refurbished'" if " if " in line else " if platform == 'taobao'"
        else:
            line += " penalty escalate" if "penalty" not in line else ""
        lines[i] = line
    return "\n".join(lines) + "\n"


def _measure(old: Path, new: Path) -> tuple[float, float, int, str]:
    t0 = time.perf_counter()
    a, _, da = compile_paths([old])
    b, _, db = compile_paths([new])
    load = time.perf_counter() - t0
    assert a is not None and b is not None, (da, db)
    t1 = time.perf_counter()
    d = compare(a, b)
    seconds = time.perf_counter() - t1
    verdict = "equivalent" if d.equivalent else f"{len(d.changes)} kinds, {len(d.rules)} rules, {len(d.undecided)} P399"
    return load, seconds, d.questions, verdict


def _report(name: str, load: float, seconds: float, calls: int, verdict: str, target: float) -> None:
    print(f"{name:<34} diff {seconds:6.2f} s (target < {target:g} s)  compile both {load:5.2f} s  "
          f"ratio {seconds / load:5.2f}x  solver calls {calls:4d}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "old", Path(tmp) / "new"
        shutil.copytree(ROOT / "policies", old)
        shutil.copytree(ROOT / "policies", new)
        crypto = new / "alibaba" / "crypto-2021.policy"
        crypto.write_text(crypto.read_text(encoding="utf-8").replace("from 2021-10-15", "from 2021-10-16"),
                          encoding="utf-8")
        _report("policies/ (a window moved a day)", *_measure(old, new), target=3)
        gen_old, gen_new = Path(tmp) / "gen-old", Path(tmp) / "gen-new"
        gen_old.mkdir()
        gen_new.mkdir()
        text = policy_text(args.rules)
        (gen_old / "generated.policy").write_text(text, encoding="utf-8")
        (gen_new / "generated.policy").write_text(_edited_generated(text, args.changed), encoding="utf-8")
        _report(f"{args.rules} rules, {args.changed} changed", *_measure(gen_old, gen_new), target=10)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
