"""The consistency analysis in a process of its own, so that an edit can stop it.

The analysis asks z3, which cannot be interrupted from another thread of the same
process; a process can be killed. The worker waits for a job (the set's texts, its
configuration file, the analysis budget), runs ``dsl.api.check_loaded`` with the analysis
on them, as `policy check` would, and sends back every finding. One worker is started in
advance, so that a job does not wait for Python to start; a cancelled job's worker is
killed and another started.

This module imports neither pygls nor lsprotocol: the worker process does not need them.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from typing import Any

import attrs

from ..diagnostics import Diagnostic


@attrs.frozen
class Job:
    """What the analysis of one set needs: the texts of its files by name, the path of its
    configuration file (None: none), the analysis budget in seconds, and the findings of
    reading the set's files (P0xx: a file that is not among ``sources``)."""

    sources: dict[str, str]
    config: str | None
    budget: float | None
    unread: tuple[Diagnostic, ...] = ()


def run_job(job: Job) -> list[Diagnostic]:
    """Every finding of `policy check` on the job's texts, the analysis included."""
    from ..api import check_loaded
    from ..checking.config import NO_CONFIG, read_config
    from ..checking.loader import loaded_from, parse_source

    config = read_config(job.config) if job.config is not None else NO_CONFIG
    loaded = loaded_from(((name, text, *parse_source(name, text)) for name, text in job.sources.items()), job.unread)
    return check_loaded(loaded, config, analysis=True, analysis_budget=job.budget)


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    """The worker process: one job at a time until the pipe closes."""
    import dsl.analysis  # noqa: F401 - z3 loaded before the first job, while the editor waits for nothing

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", run_job(job)))
        except Exception as e:  # noqa: BLE001 - reported to the server, which logs it
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Cancelled(Exception):
    """The job was cancelled: its worker was killed."""


class Worker:
    """A worker process and the pipe to it; ``run`` blocks (call it in a thread),
    ``cancel`` kills the process so that ``run`` raises ``Cancelled``."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # not fork: the server runs threads
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._busy = False

    def start(self) -> None:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._spawn()

    def _spawn(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs,), daemon=True, name="policy-lsp-analysis")
        process.start()
        theirs.close()
        self._process, self._conn = process, ours

    def run(self, job: Job) -> list[Diagnostic]:
        """The findings of ``job``; raises ``Cancelled`` when ``cancel`` is called meanwhile,
        RuntimeError when the worker fails."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._spawn()
            conn = self._conn
            assert conn is not None
            self._busy = True
        try:
            conn.send(job)
            status, result = conn.recv()
        except (EOFError, OSError):
            raise Cancelled() from None
        finally:
            with self._lock:
                self._busy = False
        if status != "ok":
            raise RuntimeError(result)
        found: list[Diagnostic] = result
        return found

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def cancel(self) -> bool:
        """Kill the worker if it is running a job, and start another; whether it was."""
        with self._lock:
            if not self._busy or self._process is None:
                return False
            self._process.kill()
            self._process.join()
            if self._conn is not None:
                self._conn.close()
            self._spawn()
            return True

    def stop(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.kill()
                self._process.join()
                self._process = None
