"""``no_gc``: the collector paused, and a large pause's objects filed as old at its end."""

from __future__ import annotations

import gc
import subprocess
import sys

from dsl.gcpause import BULK, no_gc


def test_pause_and_resume() -> None:
    assert gc.isenabled()
    with no_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_bulk_pause_leaves_no_collection_due() -> None:
    with no_gc():
        kept = [[i] for i in range(BULK * 2)]
        assert gc.get_count()[0] >= BULK
    assert gc.get_count()[0] < BULK  # no collection waits for the next allocation
    assert gc.get_freeze_count() == 0
    assert gc.is_tracked(kept[0]) and len(kept) == BULK * 2


def test_cycles_built_in_a_pause_are_still_collected() -> None:
    with no_gc():
        junk = [[i] for i in range(BULK * 2)]
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle, junk
    gc.collect()
    assert gc.garbage == []
    assert not any(type(o) is list and len(o) == 1 and o[0] is o for o in gc.get_objects())


_FROZEN_STAY_FROZEN = """
import gc
from dsl.gcpause import BULK, no_gc

gc.freeze()
frozen = gc.get_freeze_count()
with no_gc():
    kept = [[i] for i in range(BULK * 2)]
assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
assert len(kept) == BULK * 2
"""


def test_the_process_s_frozen_objects_stay_frozen() -> None:
    """In a process of its own: in the test run's, a thread another test left (py4j's,
    after a Spark session) may free frozen objects meanwhile."""
    done = subprocess.run([sys.executable, "-c", _FROZEN_STAY_FROZEN], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        with no_gc():
            kept = [[i] for i in range(BULK * 2)]
        assert not gc.isenabled() and len(kept) == BULK * 2
    finally:
        gc.enable()
