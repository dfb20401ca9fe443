"""``policy_hash``: the fingerprint of a checked policy set.

It digests the canonical text of the policies (``format.format_file`` without comments),
so it lives above both the model and the formatter; neither imports the other (the
canonical text of actions and durations, which both use, is ``dsl.syntax.canonical``).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from typing import TypeVar

import attrs

from .forking import Meanwhile
from .gcpause import no_gc
from .model import PolicySet
from .syntax import ast as A
from .syntax.format import format_file, format_statement

__all__ = ["hash_while", "policy_hash"]

T = TypeVar("T")

_computed: dict[int, str] = {}
"""The hash of each live policy set, by ``id``: a set is immutable, and an entry is
dropped when its set is collected (so an ``id`` reused later starts afresh)."""


def policy_hash(ps: PolicySet) -> str:
    """sha256 of the canonically formatted policies (comments left out), in order of
    policy name: it changes exactly when the meaning may have. Statements are hashed in a
    canonical order (sorted by their formatted text; an unnamed rule with its id), since
    moving a named rule or a set within a file changes no decision. Computed on first use
    (`policy check` never needs it), then remembered for the set's lifetime."""
    key = id(ps)
    found = _computed.get(key)
    if found is None:
        with no_gc():  # a collection meanwhile would walk the whole set's AST
            found = _digest(ps)
        _remember(ps, found)
    return found


def _remember(ps: PolicySet, found: str) -> str:
    key = id(ps)
    if _computed.setdefault(key, found) is found:
        weakref.finalize(ps, _computed.pop, key, None)
    return _computed[key]


MEANWHILE_RULES = 20_000
"""From how many rules ``hash_while`` has a forked child compute the hash (some 2.7 µs a
rule) while this process works: a fork and its copied pages cost a few milliseconds."""


def hash_while(ps: PolicySet, work: Callable[[], T]) -> tuple[str, T]:
    """``policy_hash(ps)`` and ``work()``. For a large set not hashed yet, where forking is
    safe (``forking.Meanwhile``), a forked child computes the hash while this process
    does the work: planning a set of 100,000 rules (0.37 s) hides its hash (0.27 s)."""
    if id(ps) in _computed or len(ps.rules) < MEANWHILE_RULES:
        return policy_hash(ps), work()
    with Meanwhile(_digest, ps) as later:
        done = work()
        found = later.result()
    if not isinstance(found, str):  # no child, or none delivered: computed here
        return policy_hash(ps), done
    return _remember(ps, found), done


def _digest(ps: PolicySet) -> str:
    by_name = {p.name: p.file for p in ps.policies}
    files = {f.path: f for f in ps.files}
    h = hashlib.sha256()
    for name in sorted(by_name):
        f = files[by_name[name]]
        h.update(name.encode() + b"\0" + format_file(attrs.evolve(f, statements=()), comments=False).encode())
        h.update("".join(["\0" + text for text in sorted(_hashed(s) for s in f.statements)]).encode("utf-8"))
    return "sha256:" + h.hexdigest()


def _hashed(s: A.Statement) -> str:
    """A statement's text as hashed: its canonical text, an unnamed rule's with its line."""
    text = format_statement(s)
    if isinstance(s, A.Rule) and s.name is None:
        return f"L{s.anchor.line if s.anchor else 0}\0{text}"
    return text
