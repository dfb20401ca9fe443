"""Whether this process may fork a child that goes on in Python (no exec), as the parse of a
large set does (``dsl.syntax.batch``) and the scan's workers (``dsl.scan.pool``): a fork
copies the process with only the calling thread, so a lock another thread held at that
moment stays held in the child forever."""

from __future__ import annotations

import sys
import threading

__all__ = ["can_fork", "os_threads"]


def can_fork(*, native_threads: bool = False) -> bool:
    """On Linux (macOS's system libraries are not safe in a forked child; Windows has no
    fork), while no other Python thread runs; with ``native_threads`` false, no native
    thread either (a query engine's pool, say, which ``threading`` does not count). The
    scan's workers allow native ones: those left when it forks are the idle pools that
    pyarrow and NumPy start when imported (jemalloc's, OpenBLAS's), which prepare
    themselves for a fork, the scan having closed its own DuckDB query first."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    return native_threads or os_threads() == 1


def os_threads() -> int:
    """The threads of this process, those of native libraries too; 0 when unknown."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
