"""`policy test` benchmark: the wall time of `policy test policies/` end to end (a
subprocess, start-up included), against the same run without the attack (`--attack 0`)
and a bare Python start-up; then the attack alone, in process, on every assertion of
policies/: the seeded generator `policy test` uses against the same generator driven by
Hypothesis (as it was before issue 13: 200 examples each, derandomized).

Target (issue 13): `policy test policies/` under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsl.api import compile_paths  # noqa: E402
from dsl.evaluate.policies import Policies  # noqa: E402
from dsl.syntax import ast as A  # noqa: E402
from dsl.testing.attack import attack, counterexamples  # noqa: E402
from dsl.testing.claims import Claim  # noqa: E402
from dsl.testing.scope import file_scope, restrict  # noqa: E402
from dsl.testing.vocab import Vocabulary  # noqa: E402

POLICIES = ROOT / "policies"


def wall(argv: list[str], runs: int) -> tuple[float, float, int]:
    """Median and best wall time of a command, and its exit status."""
    times = []
    code = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        code = subprocess.run(argv, capture_output=True, check=False).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), code


def claims() -> list[tuple[Claim, Vocabulary]]:
    model, loaded, _ = compile_paths([POLICIES])
    assert model is not None
    known = tuple(p.name for p in model.policies)
    out = []
    for f in loaded.test_files:
        ps = restrict(model, file_scope(f, known))
        policies = Policies(ps)
        for s in f.statements:
            if isinstance(s, A.Assertion):
                claim = Claim.of(ps, policies, s, ps.policies[0].tz)
                out.append((claim, Vocabulary.of(ps, [claim.expr], [claim.start, claim.end])))
    return out


def hypothesis_attack(claim: Claim, vocab: Vocabulary, examples: int) -> None:
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(counterexamples(claim, vocab))
    def run(cx: Any) -> None:
        assert not claim.broken_by(cx)

    run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--examples", type=int, default=200)
    args = ap.parse_args()
    runs = 3 if args.quick else 7
    exe = shutil.which("policy") or str(Path(sys.executable).parent / "policy")
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    test, best, code = wall([exe, "test", str(POLICIES)], runs)
    bare, _, code0 = wall([exe, "test", str(POLICIES), "--attack", "0"], runs)
    python, _, _ = wall([sys.executable, "-c", "pass"], runs)
    print(f"policy test policies/: median {test:.3f} s, best {best:.3f} s (exit {code}); "
          f"--attack 0: {bare:.3f} s (exit {code0}); bare python start-up {python:.3f} s  (target < 2 s)")

    found = claims()
    t0 = time.perf_counter()
    for claim, vocab in found:
        assert attack(claim, vocab, examples=args.examples) is None
    seeded = time.perf_counter() - t0
    t0 = time.perf_counter()
    for claim, vocab in found:
        hypothesis_attack(claim, vocab, args.examples)
    driven = time.perf_counter() - t0
    print(f"attack on {len(found)} assertions x {args.examples} listings: seeded {seeded:.3f} s, "
          f"Hypothesis-driven {driven:.3f} s ({driven / seeded:.1f}x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
