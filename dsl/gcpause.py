"""Pausing the cyclic garbage collector around bulk construction."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_gc"]

BULK = 10_000
"""Net container allocations in a pause from which ``no_gc`` files what was built as old
(an ordinary collection's first threshold is 700)."""


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing, checking and planning a policy set
    allocate millions of small objects that live on, and collections triggered meanwhile
    cost more than half of the time (measured: 10,000 rules parsed in 2.2 s with it, 1.0 s
    without; planning them 0.4-0.6 s slower in a process with a large heap). Nothing
    built there makes cycles that need collecting. Reference counting still frees
    everything else as usual.

    The allocations still count towards the next collection: after a pause that built
    ``BULK`` objects or more, the first allocation would start a collection that walks
    every one of them (measured: 0.06 s after checking 100,000 rules, 0.37 s when it was
    the middle generation's turn). So such a pause ends by filing the objects that are
    alive as old, without walking them (``gc.freeze`` then ``gc.unfreeze``: two list
    splices, and the count starts afresh); only the full collections, which are rare,
    walk them. Not done when the process has frozen objects of its own (``unfreeze``
    would release them)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_count()[0] >= BULK and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
