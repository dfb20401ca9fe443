"""Diagnostics as the author types.

Each change of a buffer checks its set again at once: syntax, names and types
(``dsl.api.check_loaded`` without the analysis, the configuration and suppression comments
applied), and the findings of every file of the set are published. Changes that come while
a check runs are taken together by the next one. When the set has no errors and the text
has not changed for ``delay`` seconds, the consistency analysis runs in a worker process
(``worker``) within the analysis budget, and its findings replace the set's; a change of
any buffer meanwhile kills it (the sets the change did not touch are analysed again after
the next pause)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from lsprotocol import types as T
from pygls import uris

from ..api import ANALYSIS_BUDGET, check_loaded
from ..diagnostics import ERROR, INFO, WARNING, Diagnostic, docs_url
from .positions import Text
from .project import Project, Snapshot
from .worker import Cancelled, Job, Worker

SEVERITY = {ERROR: T.DiagnosticSeverity.Error, WARNING: T.DiagnosticSeverity.Warning,
            INFO: T.DiagnosticSeverity.Information}

Publish = Callable[[str, list[T.Diagnostic], bool], None]
"""Publish a file's findings; ``True``: even when they are those published last (the file
was edited: the editor hears of every version)."""


def uri_of(path: str) -> str:
    """The URI of a file's path; a document that is no file (``untitled:…``) keeps its URI
    as its name (``path_of``)."""
    if not os.path.isabs(path) and uris.uri_scheme(path) not in (None, "", "file"):
        return path
    return uris.from_fs_path(path) or Path(path).as_uri()


def path_of(uri: str) -> str:
    return uris.to_fs_path(uri) or uri


def to_lsp(d: Diagnostic, text_of: Callable[[str], Text], file_of: Callable[[str], str] = str) -> T.Diagnostic:
    """A finding in the protocol's terms: its hint on a line after the message (as `policy
    check` prints it), its code linked to its documentation, the hint kept in ``data``
    for the quick fixes. ``text_of`` gives a file's text by the name findings use,
    ``file_of`` its path."""
    assert d.span is not None
    message = d.message + "".join(f"\n{line}" for line in (*([d.hint] if d.hint else []), *d.notes))
    related = [T.DiagnosticRelatedInformation(T.Location(uri_of(file_of(r.span.file)),
                                                         text_of(r.span.file).range(r.span)), r.message)
               for r in d.related]
    return T.Diagnostic(text_of(d.span.file).range(d.span), message, severity=SEVERITY.get(d.severity), code=d.code,
                        code_description=T.CodeDescription(docs_url(d.code)), source="policy",
                        related_information=related or None, data={"hint": d.hint} if d.hint else None)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def by_file(diags: Iterable[Diagnostic], snap: Snapshot, encoding: str) -> dict[str, list[T.Diagnostic]]:
    """The findings shown (those no comment suppresses), by file URI, every file of the
    set included (an empty list clears what was shown). The configuration file's findings
    (P600) go to that file."""
    texts = dict(snap.loaded.sources)
    paths: dict[str, str] = {}
    if snap.config.path is not None:
        texts[snap.config.name] = snap.config.text
        paths[snap.config.name] = str(snap.config.path.resolve())
    cache: dict[str, Text] = {}

    def text_of(name: str) -> Text:
        if name not in cache:
            cache[name] = Text(texts[name] if name in texts else _read(name), encoding)
        return cache[name]

    out: dict[str, list[T.Diagnostic]] = {uri_of(name): [] for name in snap.loaded.sources}
    for d in diags:
        if d.span is not None and not d.suppressed:
            out.setdefault(uri_of(paths.get(d.span.file, d.span.file)), []).append(
                to_lsp(d, text_of, lambda name: paths.get(name, name)))
    return out


class Checker:
    """Checks the sets of the buffers that change and publishes what it finds."""

    def __init__(self, project: Project, publish: Publish, log: Callable[[str], None], *,
                 encoding: Callable[[], str], delay: float = 0.5, budget: float | None = ANALYSIS_BUDGET):
        self.project = project
        self.publish = publish
        self.log = log
        self.encoding = encoding
        self.delay = delay
        self.budget = budget
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._shown: dict[str, set[str]] = {}        # set root -> URIs with findings shown
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._workers: dict[str, Worker] = {}
        self._turn: dict[str, int] = {}              # set root -> number of the latest check
        self._analysed: dict[str, Snapshot] = {}     # set root -> the snapshot its analysis is for
        self._stopped: set[str] = set()              # roots whose analysis an edit stopped, to start again

    def changed(self, path: str) -> None:
        """A buffer changed (or opened): check its set again, and stop its analysis."""
        self._dirty.add(path)
        for root in self._turn:
            self._turn[root] += 1  # an analysis under way reports for an old text: its findings are dropped
        for root in list(self._timers):
            self._timers.pop(root).cancel()
            self._stopped.add(root)
        for root, worker in self._workers.items():
            if worker.cancel():
                self.log(f"analysis of {root} cancelled: the text changed")
                self._stopped.add(root)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await asyncio.sleep(0)  # the changes already received are applied first
        try:
            await self._check_dirty()
        except Exception as e:  # noqa: BLE001 - a bug must not stop the checks of later edits silently
            self.log(f"the check failed: {type(e).__name__}: {e}")
            raise

    async def _check_dirty(self) -> None:
        while self._dirty:
            paths, self._dirty = self._dirty, set()
            done: set[str] = set()
            todo = sorted(paths)
            for n, path in enumerate(todo):
                snap = await asyncio.to_thread(self.project.snapshot, path)
                self._left_folder(path, snap, todo)
                if snap.root in done:
                    continue
                if not self._open(snap.root):
                    self.forget(snap.root)
                    continue
                if snap.root != path and path in self._shown:
                    self.forget(path)  # checked alone before, with its folder now
                done.add(snap.root)
                diags = await asyncio.to_thread(self.check_now, snap)
                if self._dirty:
                    self._dirty.update(todo[n:])  # a newer text: check again with it, the rest of this batch too
                    break
                self._show(snap, diags, {uri_of(p) for p in paths})
                self._stopped.discard(snap.root)
                if snap.model is not None:  # as `policy check` runs it: the set compiles (whatever the severities)
                    self._schedule(snap)
        for root in self._stopped:  # the sets no edit touched: their analysis again after the pause
            if root in self._analysed and self._open(root):
                self._schedule(self._analysed[root])
        self._stopped.clear()

    def _left_folder(self, path: str, snap: Snapshot, todo: list[str]) -> None:
        """A file of a workspace folder whose set is not the folder's (closed unsaved, or
        deleted, while open): the folder's set is checked again (``todo``), without it."""
        folder = self.project.folder_of(path)
        if folder is not None and snap.root != folder and folder not in todo:
            todo.append(folder)

    def check_now(self, snap: Snapshot) -> list[Diagnostic]:
        """Syntax, names and types of a set, configuration and suppressions applied."""
        return check_loaded(snap.loaded, snap.config, analysis=False, compiled=snap.compiled)

    def _show(self, snap: Snapshot, diags: list[Diagnostic], edited: set[str] | None = None) -> None:
        found = by_file(diags, snap, self.encoding())
        before = self._shown.get(snap.root, set())
        for uri in before - found.keys():
            self.publish(uri, [], False)
        for uri, items in found.items():
            self.publish(uri, items, uri in (edited or ()))
        self._shown[snap.root] = {uri for uri, items in found.items() if items}

    def _open(self, root: str) -> bool:
        """Whether a set is a folder's or an open document's (a file checked alone that
        was closed is neither)."""
        return root in self.project.folders or root in self.project.buffers

    def forget(self, root: str) -> None:
        """A file checked alone was closed, or a folder left the workspace: clear its
        findings, stop its analysis worker."""
        for uri in {uri_of(root), *self._shown.pop(root, set())}:
            self.publish(uri, [], False)
        self._turn.pop(root, None)
        self._analysed.pop(root, None)
        worker = self._workers.pop(root, None)
        if worker is not None:
            worker.stop()

    def _schedule(self, snap: Snapshot) -> None:
        turn = self._turn[snap.root] = self._turn.get(snap.root, 0) + 1
        self._analysed[snap.root] = snap
        loop = asyncio.get_running_loop()
        self._timers[snap.root] = loop.call_later(self.delay, lambda: loop.create_task(self._analyse(snap, turn)))

    async def _analyse(self, snap: Snapshot, turn: int) -> None:
        self._timers.pop(snap.root, None)
        if not self._open(snap.root):
            return
        worker = self._workers.get(snap.root)
        if worker is None:
            worker = self._workers[snap.root] = Worker()
        config = str(snap.config.path) if snap.config.path is not None else None
        unread = tuple(d for d in snap.loaded.diagnostics if d.code.startswith("P0"))
        job = Job(dict(snap.loaded.sources), config, self.budget, unread)
        started = time.perf_counter()
        self.log(f"analysis of {snap.root} started ({len(job.sources)} files)")
        try:
            diags = await asyncio.to_thread(worker.run, job)
        except Cancelled:
            return
        except RuntimeError as e:
            self.log(f"analysis of {snap.root} failed: {e}")
            return
        if self._turn.get(snap.root) != turn or self._dirty:
            return  # the text changed meanwhile
        self._show(snap, diags)
        self.log(f"analysis of {snap.root} done in {time.perf_counter() - started:.1f} s: "
                 f"{sum(d.code.startswith('P3') for d in diags)} findings")

    def warm_up(self, root: str) -> None:
        """Start the analysis worker of ``root`` ahead of its first job."""
        if root not in self._workers:
            self._workers[root] = Worker()
            self._workers[root].start()

    def stop(self) -> None:
        for worker in self._workers.values():
            worker.stop()
