"""The server: pygls's ``LanguageServer`` with the policy language's features, each a
thin handler that asks the module doing the job (see ``dsl.lsp``).

Client options (``initializationOptions``): ``analysisDelay``, the pause in seconds
before the consistency analysis runs (default 0.5), and ``analysisBudget``, its budget in
seconds (default: `policy check`'s)."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..api import ANALYSIS_BUDGET
from . import actions, completion, hover, navigation
from .diagnostics import Checker, path_of
from .lenses import DECIDE_SAMPLES, RUN_TEST, Lenses, samples_message
from .positions import UTF16
from .project import Project, Snapshot


class PolicyServer(LanguageServer):
    """The server and what it holds: the project, the checker, the lenses."""

    def __init__(self) -> None:
        # the whole text at each change: pygls applies a change's range in Python's lines
        # (``str.splitlines``: a form feed or U+2028 ends one), not the protocol's, and
        # changes the range it hands on; an edit below such a character landed on another line
        super().__init__("policy", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Full)
        self.project = Project()
        self.lens = Lenses()
        self.checker = Checker(self.project, self._publish, self.log, encoding=self.encoding)
        self._published: dict[str, list[T.Diagnostic]] = {}
        self.foreign: set[str] = set()
        """The documents open that are not policy files: neither of the language ``policy``
        nor named ``*.policy`` (a client that sends every document it opens); they are not
        checked."""

    def encoding(self) -> str:
        kind = self.workspace.position_encoding if self.protocol.workspace is not None else None
        value = getattr(kind, "value", kind)
        return str(value) if value else UTF16

    def log(self, message: str) -> None:
        self.window_log_message(T.LogMessageParams(T.MessageType.Info, message))

    def warn(self, message: str) -> None:
        self.window_show_message(T.ShowMessageParams(T.MessageType.Warning, message))

    def _publish(self, uri: str, diagnostics: list[T.Diagnostic], edited: bool) -> None:
        if not edited and self._published.get(uri) == diagnostics:
            return
        self._published[uri] = diagnostics
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, diagnostics))

    def at(self, uri: str, pos: T.Position) -> tuple[Snapshot, str, int, int]:
        """The snapshot of a document's set, its path, and a position as the front end
        counts it (line and column from 1, in code points)."""
        path = path_of(uri)
        snap = self.project.snapshot(path)
        text = snap.lines(path, self.encoding())
        offset = text.offset(pos)
        line = pos.line + 1 if pos.line < len(text.starts) else len(text.starts)
        return snap, path, line, offset - text.starts[line - 1] + 1


def seconds(options: Any, key: str, default: float, warn: Callable[[str], None]) -> float:
    """The number of seconds ``options[key]`` gives; ``default`` when it is absent, or
    when it is no finite number >= 0 (said through ``warn``: the server starts all the
    same). JSON's 1e400 reads as infinity: no timeout the solver can take."""
    value = options.get(key, default) if isinstance(options, dict) else default
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    warn(f"initializationOptions.{key}: expected a finite number of seconds >= 0, got {value!r}; using {default}")
    return default


def build_server() -> PolicyServer:
    server = PolicyServer()
    _documents(server)
    _buffers(server)
    _navigation(server)
    _editing(server)
    _lenses(server)
    return server


def _documents(server: PolicyServer) -> None:
    @server.feature(T.INITIALIZE)
    def initialize(ls: PolicyServer, params: T.InitializeParams) -> None:
        ls.checker.delay = seconds(params.initialization_options, "analysisDelay", ls.checker.delay, ls.warn)
        ls.checker.budget = seconds(params.initialization_options, "analysisBudget", ANALYSIS_BUDGET, ls.warn)

    @server.feature(T.INITIALIZED)
    def initialized(ls: PolicyServer, params: T.InitializedParams) -> None:
        folders = [path_of(f.uri) for f in ls.workspace.folders.values()]
        if not folders and ls.workspace.root_path:
            folders = [ls.workspace.root_path]
        ls.project.set_folders(folders)
        for folder in ls.project.folders:
            ls.checker.warm_up(folder)
        _watch(ls)

    @server.feature(T.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(ls: PolicyServer, params: T.DidChangeWorkspaceFoldersParams) -> None:
        before = set(ls.project.folders)
        ls.project.set_folders(path_of(f.uri) for f in ls.workspace.folders.values())
        for folder in before - set(ls.project.folders):  # its findings cleared, its analysis worker stopped
            ls.checker.forget(folder)
        for folder in set(ls.project.folders) - before:
            ls.checker.warm_up(folder)
        for path in ls.project.buffers:  # a document may now be checked with a folder, or alone
            ls.checker.changed(path)


def _buffers(server: PolicyServer) -> None:
    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PolicyServer, params: T.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        if doc.language_id != LANGUAGE and not path_of(doc.uri).endswith(".policy"):
            ls.foreign.add(doc.uri)
        else:
            _changed(ls, doc.uri, opened=True)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PolicyServer, params: T.DidChangeTextDocumentParams) -> None:
        _changed(ls, params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PolicyServer, params: T.DidSaveTextDocumentParams) -> None:
        _changed(ls, params.text_document.uri, opened=True)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PolicyServer, params: T.DidCloseTextDocumentParams) -> None:
        _closed(ls, params.text_document.uri)

    @server.feature(T.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: PolicyServer, params: T.DidChangeWatchedFilesParams) -> None:
        ls.project.files_changed()
        for path in ls.project.buffers:
            ls.checker.changed(path)

    @server.feature(T.SHUTDOWN)
    def shutdown(ls: PolicyServer, params: None) -> None:
        ls.checker.stop()


WATCHED = ("**/*.policy", "**/policy.toml", "**/pyproject.toml")

LANGUAGE = "policy"
"""The language id of policy files (the VS Code extension's)."""


def _watch(ls: PolicyServer) -> None:
    """Ask the client to say when policy files and configurations change on disk (files
    created, deleted, changed by another program), where it can."""
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps is not None else None
    if watched is None or not watched.dynamic_registration:
        return
    options = T.DidChangeWatchedFilesRegistrationOptions([T.FileSystemWatcher(glob) for glob in WATCHED])
    ls.client_register_capability(T.RegistrationParams(
        [T.Registration("policy-watched-files", T.WORKSPACE_DID_CHANGE_WATCHED_FILES, options)]))


def _closed(ls: PolicyServer, uri: str) -> None:
    if uri in ls.foreign:
        ls.foreign.discard(uri)
        return
    path = path_of(uri)
    ls.project.set_buffer(path, None)
    ls.checker.changed(path)


def _changed(ls: PolicyServer, uri: str, *, opened: bool = False) -> None:
    if uri in ls.foreign:  # not a policy file: not checked
        return
    path = path_of(uri)
    if opened and os.path.exists(path) and not ls.project.knows(path):
        ls.project.files_changed()  # a file new to its folder: look again at what the folder holds
    ls.project.set_buffer(path, ls.workspace.get_text_document(uri).source)
    ls.checker.changed(path)


def _navigation(server: PolicyServer) -> None:
    @server.feature(T.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: PolicyServer, params: T.HoverParams) -> T.Hover | None:
        snap, path, line, column = ls.at(params.text_document.uri, params.position)
        return hover.hover(snap, path, line, column, ls.encoding())

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: PolicyServer, params: T.DefinitionParams) -> list[T.Location]:
        snap, path, line, column = ls.at(params.text_document.uri, params.position)
        return navigation.definition(snap, path, line, column, ls.encoding())

    @server.feature(T.TEXT_DOCUMENT_REFERENCES)
    def references(ls: PolicyServer, params: T.ReferenceParams) -> list[T.Location]:
        snap, path, line, column = ls.at(params.text_document.uri, params.position)
        return navigation.references(snap, path, line, column, ls.encoding(), params.context.include_declaration)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: PolicyServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol]:
        path = path_of(params.text_document.uri)
        return navigation.document_symbols(ls.project.snapshot(path), path, ls.encoding())

    @server.feature(T.WORKSPACE_SYMBOL)
    def workspace_symbols(ls: PolicyServer, params: T.WorkspaceSymbolParams) -> list[T.WorkspaceSymbol]:
        return navigation.workspace_symbols(ls.project.snapshots(), params.query, ls.encoding())


def _editing(server: PolicyServer) -> None:
    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[" ", "'", '"', ","]))
    def complete(ls: PolicyServer, params: T.CompletionParams) -> T.CompletionList:
        snap, path, _line, _column = ls.at(params.text_document.uri, params.position)
        text = snap.lines(path, ls.encoding())
        return T.CompletionList(False, completion.complete(snap, text.text, text.offset(params.position)))

    @server.feature(T.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: PolicyServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
        path = path_of(params.text_document.uri)
        return actions.format_document(path, ls.project.snapshot(path).lines(path, ls.encoding()))

    @server.feature(T.TEXT_DOCUMENT_RANGE_FORMATTING)
    def range_formatting(ls: PolicyServer, params: T.DocumentRangeFormattingParams) -> list[T.TextEdit] | None:
        path = path_of(params.text_document.uri)
        return actions.format_range(path, ls.project.snapshot(path).lines(path, ls.encoding()), params.range)

    @server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                    T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
    def code_action(ls: PolicyServer, params: T.CodeActionParams) -> list[T.CodeAction]:
        path = path_of(params.text_document.uri)
        snap = ls.project.snapshot(path)
        return actions.code_actions(params.text_document.uri, snap.lines(path, ls.encoding()), snap.files.get(path),
                                    list(params.context.diagnostics))


def _lenses(server: PolicyServer) -> None:
    @server.feature(T.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: PolicyServer, params: T.CodeLensParams) -> list[T.CodeLens]:
        path = path_of(params.text_document.uri)
        return ls.lens.lenses(ls.project.snapshot(path), path, ls.encoding())

    @server.command(RUN_TEST)
    async def run_test(ls: PolicyServer, *args: Any) -> dict[str, Any]:
        found = _arguments(args, RUN_TEST, "a file and a line")
        if isinstance(found, dict):
            return found
        path, line = found
        snap = ls.project.snapshot(path)
        result = await asyncio.to_thread(ls.lens.run_test, snap, path, line)
        kind = T.MessageType.Info if result["outcome"] == "pass" else T.MessageType.Warning
        ls.window_show_message(T.ShowMessageParams(kind, str(result["report"]).strip()))
        _refresh_lenses(ls)
        return result

    @server.command(DECIDE_SAMPLES)
    async def decide_samples(ls: PolicyServer, *args: Any) -> dict[str, Any]:
        found = _arguments(args, DECIDE_SAMPLES, "a file and a rule's id")
        if isinstance(found, dict):
            return found
        path, qid = found
        snap = ls.project.snapshot(path)
        result = await asyncio.to_thread(ls.lens.decide_samples, snap, path, qid)
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Info, samples_message(result)))
        _refresh_lenses(ls)
        return result


def _arguments(args: tuple[Any, ...], command: str, wanted: str) -> tuple[str, Any] | dict[str, Any]:
    """A command's two arguments as its code lens gives them (pygls may pass them as one
    list): a file's path (text) and a line (a whole number, for ``RUN_TEST``) or a rule's
    id (text); where they are not, the error the command answers with (not a traceback)."""
    if len(args) == 1 and isinstance(args[0], list):
        args = tuple(args[0])
    if len(args) == 2 and isinstance(args[0], str):
        second = args[1]
        if command == RUN_TEST and isinstance(second, int) and not isinstance(second, bool):
            return args[0], second
        if command == DECIDE_SAMPLES and isinstance(second, str):
            return args[0], second
    return {"outcome": "error", "error": f"{command} takes {wanted}, not {list(args)!r}"}


def _refresh_lenses(ls: PolicyServer) -> None:
    caps = ls.client_capabilities.workspace
    if caps is not None and caps.code_lens is not None and caps.code_lens.refresh_support:
        ls.workspace_code_lens_refresh(None)
