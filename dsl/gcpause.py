"""Pausing the cyclic garbage collector around bulk construction."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_gc"]


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing, checking and planning a policy set
    allocate millions of small objects that live on, and collections triggered meanwhile
    cost more than half of the time (measured: 10,000 rules parsed in 2.2 s with it, 1.0 s
    without; planning them 0.4-0.6 s slower in a process with a large heap). Nothing
    built there makes cycles that need collecting. Reference counting still frees
    everything else as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
