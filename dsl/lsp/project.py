"""Which files a document is checked with, and their parses.

A document inside a workspace folder is checked with the files that `policy check FOLDER`
reads: every ``*.policy`` file under the folder, less those the configuration excludes
(``dsl.checking.config``), with the editor's buffers in place of the files on disk. A
document outside every folder, or one the configuration excludes, is checked alone, as
`policy check FILE` checks it. Parses are kept while a file's text stays the same, so an
edit reparses only the file edited."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..checking.config import Config, discover
from ..checking.frontend import compile_loaded
from ..checking.loader import (
    Found,
    Loaded,
    Parsed,
    UsageError,
    find_policy_files,
    loaded_from,
    parse_source,
    read_source,
)
from ..diagnostics import Diagnostic
from ..model import PolicySet
from ..syntax import ast as A
from .incremental import reparse
from .positions import Text


class Snapshot:
    """One policy set as the editor holds it at one moment: its files (read and parsed),
    its configuration, and what is computed from them on demand (the checked model; the
    other modules' indexes, in ``memo``)."""

    def __init__(self, root: str, config: Config, parsed: list[Parsed], problems: list[Diagnostic]):
        self.root = root
        self.config = config
        self.parsed = parsed
        self.loaded: Loaded = loaded_from(parsed, problems)
        self.files: dict[str, A.File] = {name: file for name, _text, file, _diags in parsed}
        self.memo: dict[str, Any] = {}
        self._lock = threading.RLock()

    @functools.cached_property
    def compiled(self) -> tuple[PolicySet | None, list[Diagnostic]]:
        """``compile_loaded`` of the set: its checked model and the front end's findings."""
        return compile_loaded(self.loaded)

    @property
    def model(self) -> PolicySet | None:
        """The checked model; None while the set has errors."""
        return self.compiled[0]

    def text(self, name: str) -> str | None:
        return self.loaded.sources.get(name)

    def lines(self, name: str, encoding: str) -> Text:
        """The text of ``name`` for converting positions (made once per snapshot)."""
        found: Text = self.remember(f"lines:{encoding}:{name}", lambda: Text(self.text(name) or "", encoding))
        return found

    def remember(self, key: str, make: Any) -> Any:
        """``memo[key]``, made once by ``make()``."""
        with self._lock:
            if key not in self.memo:
                self.memo[key] = make()
            return self.memo[key]


class Project:
    """The workspace folders, the editor's buffers, and what was read and parsed."""

    def __init__(self) -> None:
        self.folders: list[str] = []
        self.buffers: dict[str, str] = {}
        self._parsed: dict[str, Parsed] = {}
        self._disk: dict[str, tuple[tuple[int, int], str | None, Diagnostic | None]] = {}
        self._found: dict[str, Found | None] = {}
        self._snapshots: dict[str, tuple[int, list[str], Snapshot]] = {}
        self._configs: dict[str, tuple[int, Config]] = {}
        self._generation = 0
        self._lock = threading.RLock()

    # ------------------------------------------------------------ changes

    def set_folders(self, folders: Iterable[str]) -> None:
        with self._lock:
            self.folders = sorted({os.path.abspath(f) for f in folders}, key=len, reverse=True)
            self.files_changed()

    def set_buffer(self, path: str, text: str | None) -> None:
        """The editor's text of ``path`` (None: closed, the file on disk counts again)."""
        with self._lock:
            if text is None:
                self.buffers.pop(path, None)
            else:
                self.buffers[path] = text
            self._generation += 1

    def files_changed(self) -> None:
        """Files were created, deleted or saved: look again at what the folders hold."""
        with self._lock:
            self._found.clear()
            self._generation += 1

    def knows(self, path: str) -> bool:
        """Whether ``path`` is among the files found in the folders (or in none)."""
        folder = self.folder_of(path)
        if folder is None or folder not in self._found:
            return True
        found = self._found[folder]
        return found is not None and any(os.path.abspath(f) == path for f in found.files)

    @property
    def generation(self) -> int:
        return self._generation

    # ------------------------------------------------------------ sets

    def folder_of(self, path: str) -> str | None:
        return next((f for f in self.folders if path == f or path.startswith(f.rstrip(os.sep) + os.sep)), None)

    def snapshot(self, path: str) -> Snapshot:
        """The policy set that ``path`` is checked with, as the editor holds it now (a
        workspace folder's path: the folder's set)."""
        with self._lock:
            root, config, names = self._members(path)
            held = self._snapshots.get(root)
            if held is not None and held[0] == self._generation and held[1] == names:
                return held[2]
            generation = self._generation
            parsed, problems = self._read(names)
            found = self._found.get(root) if root in self.folders else None
            if found is not None:  # what `policy check FOLDER` reports too: a link to nothing, a folder not readable
                problems = [*found.kept(config, [root]).problems, *problems]
            snap = Snapshot(root, config, parsed, problems)
            self._snapshots[root] = (generation, names, snap)
            return snap

    def snapshots(self) -> list[Snapshot]:
        """The sets checked so far, as last built (for workspace symbols)."""
        with self._lock:
            return [s for _g, _n, s in self._snapshots.values()]

    def _members(self, path: str) -> tuple[str, Config, list[str]]:
        folder = self.folder_of(path)
        if folder is not None:
            config = self._config(folder)
            found = self._found_in(folder)
            names = [os.path.abspath(f) for f in config.kept(found.files, [folder])] if found else []
            names += [b for b in self.buffers if b.endswith(".policy") and self.folder_of(b) == folder
                      and not os.path.exists(b) and not config.excludes(b, below=folder)]  # not saved yet
            if path in names or path == folder:
                return folder, config, sorted(set(names))
        return path, self._config(path), [path]

    def _config(self, root: str) -> Config:
        """The configuration of a set, looked for again when a file or buffer has changed
        (every request asks for its snapshot: most find the set as it was)."""
        held = self._configs.get(root)
        if held is None or held[0] != self._generation:
            held = self._configs[root] = (self._generation, discover([root]))
        return held[1]

    def _found_in(self, folder: str) -> Found | None:
        if folder not in self._found:
            try:
                self._found[folder] = find_policy_files([folder])
            except UsageError:
                self._found[folder] = None
        return self._found[folder]

    def _read(self, names: list[str]) -> tuple[list[Parsed], list[Diagnostic]]:
        parsed: list[Parsed] = []
        problems: list[Diagnostic] = []
        for name in names:
            text = self.buffers.get(name)
            if text is None:
                text, problem = self._disk_text(name)
                if problem is not None:
                    problems.append(problem)
                if text is None:
                    continue
            parsed.append(self._parse(name, text))
        return parsed, problems

    def _disk_text(self, name: str) -> tuple[str | None, Diagnostic | None]:
        try:
            st = os.stat(name)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, -1)
        held = self._disk.get(name)
        if held is None or held[0] != stamp:
            held = (stamp, *read_source(Path(name)))
            self._disk[name] = held
        return held[1], held[2]

    def _parse(self, name: str, text: str) -> Parsed:
        held = self._parsed.get(name)
        if held is None:
            held = self._parsed[name] = (name, text, *parse_source(name, text))
        elif held[1] != text:
            held = self._parsed[name] = reparse(held, text)
        return held
