"""`tests for POLICY, …`: the policies a test file is decided against (spec section 7).

A test file that begins with `tests for a, b` is decided against policies `a` and `b`
alone: the other policies' rules are left out, and an `allow` of `a` that overrides a
rule of a policy left out has nothing to lift. Sets, ladders and the declared fields
belong to the whole set and stay (a rule of `a` may use a set declared beside `b`).
Without `tests for`, a test file is decided against the whole set.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..model import PolicySet
from ..syntax import ast as A

__all__ = ["file_scope", "restrict"]


def file_scope(f: A.File, known: Iterable[str]) -> frozenset[str] | None:
    """The policies ``f`` is decided against: None for the whole set (no `tests for`),
    else the names it lists that ``known`` holds (an unknown name is a P505 of its own)."""
    if f.tests_for is None:
        return None
    names = set(known)
    return frozenset(p.name for p in f.tests_for.policies if p.name in names)


def restrict(model: PolicySet, scope: frozenset[str] | None) -> PolicySet:
    """``model`` with only the rules and policies of ``scope`` (``model`` itself for None)."""
    if scope is None:
        return model
    from ..checking.passes import _compared_types  # the model's own reading, recomputed for the rules kept

    rules = tuple(r for r in model.rules if r.policy in scope)
    kept = {r.qid for r in rules}
    rules = tuple(r if all(t in kept for t in r.overrides)
                  else attrs.evolve(r, overrides=tuple(t for t in r.overrides if t in kept)) for r in rules)
    policies = tuple(p for p in model.policies if p.name in scope)
    files = {p.file for p in policies}
    return attrs.evolve(model, policies=policies, rules=rules, compared_types=_compared_types(list(rules)),
                        files=tuple(f for f in model.files if f.path in files),
                        by_qid={r.qid: r for r in rules})
