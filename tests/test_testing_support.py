"""Helpers for the `policy test` tests (no tests here).

``search_prover`` stands in for ``dsl.analysis.prove_assertion`` where a test needs an
analysis with a known behaviour: it *searches* (the Hypothesis attack with many examples)
and so can refute but never really prove. A stand-in is passed to the runner
(``run_tests(…, prover=)``, ``dsl.testing.run(…, prover=)``); without one the runner uses
the real analysis."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_SUITES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "tests"
CONFORMANCE_TESTS = CONFORMANCE_SUITES / "crypto-2021"
"""The corpus's crypto-2021 suite, which the shrinking and replay tests use."""

@attrs.frozen
class FakeResult:
    outcome: str
    counterexample: dict[str, Any] | None = None
    reason: str | None = None


def search_prover(examples: int = 600) -> Callable[..., FakeResult]:
    """A prover that searches: fail with the first counterexample the attack finds."""

    def prove_assertion(ps: Any, *, quantifier: str, effect: str, expr: Any, tz: Any, start: Any, end: Any,
                        timeout_ms: int) -> FakeResult:
        from dsl.evaluate.policies import Policies
        from dsl.testing.attack import attack
        from dsl.testing.claims import Claim
        from dsl.testing.vocab import Vocabulary

        claim = Claim(ps, Policies(ps), quantifier, effect, expr, tz, start, end)
        found = attack(claim, Vocabulary.of(ps, [expr], [start, end]), examples=examples)
        return FakeResult("pass") if found is None else FakeResult("fail", found.to_dict())

    return prove_assertion


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (name -> text, dedented) under ``root``; returns ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


CRYPTO = """
policy crypto
  timezone "Asia/Shanghai"
  scope platform in ['taobao', 'xianyu']

set coins = ['bitcoin', 'ether']

ladder escalate = remove listing then remove listing and deduct 6 points then close account

rule miners:      from 2021-10-08 block category 'Blockchain Miners'
rule miners-late: from 2021-10-15 block category 'Blockchain Miners' penalty escalate
rule coins:       from 2021-10-08 block mentions any coins penalty remove listing and deduct 2 points
rule review:      flag mentions 'mining'
rule museum:      allow category 'Museum' overrides review
"""
"""A small policy set used across the tests: a ladder, an inline penalty, a flag and an allow."""
