"""`policy lsp` end to end: a real client (pytest-lsp) drives the server over standard input
and output. One server for the module: two workspace folders, a small policy set with a
test file and samples, and a generated set whose analysis is slow.

The tests share the server but not what an earlier test did with it: each opens the
documents it needs (an open document is opened again, at a newer version: the server takes
its text) and waits for what it needs, so that they pass alone, in any order, and split
between processes (pytest-xdist ``--dist load``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_analysis import generated_policies  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHOP = """policy shop
  timezone 'Europe/London'

set coins = ['bitcoin', 'litecoin']
ladder escalate = warn seller then remove listing
field seller.country: one of ['CN', 'GB']

rule coins: from 2024-01-01 block mentions any coins
  penalty escalate
rule uk-ok: allow seller.country == 'GB' overrides coins
"""

TESTS = """test 'coins are blocked' given {title: 'bitcoin', seller: {country: 'CN'}} at 2024-02-01
  expect block by coins
test 'wrong on purpose' given {title: 'tea', seller: {country: 'CN'}} at 2024-02-01 expect block
"""

SAMPLES = [{"listing": {"title": "bitcoin miner", "seller": {"country": "CN"}}, "at": "2024-02-01"},
           {"listing": {"title": "green tea", "seller": {"country": "CN"}}, "at": "2024-02-01"},
           {"listing": {"title": "bitcoin", "seller": {"country": "GB"}}, "at": "2024-02-01"}]

WORKSPACE: dict[str, Path] = {}
REGISTERED: list[str] = []
CLIENT: list[LanguageClient] = []
INITIALIZED: list[T.InitializeResult] = []
VERSIONS = itertools.count(1)
"""The version of every text sent: newer than any sent before to the module's server,
whichever tests ran before."""


@pytest_lsp.fixture(scope="module",
                    config=ClientServerConfig(server_command=[sys.executable, "-m", "dsl", "lsp"]))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    shop = tmp_path_factory.mktemp("shop")
    (shop / "shop.policy").write_text(SHOP, encoding="utf-8")
    (shop / "shop_test.policy").write_text(TESTS, encoding="utf-8")
    (shop / "policy.toml").write_text('severity = { P400 = "off" }\n', encoding="utf-8")
    (shop / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SAMPLES), encoding="utf-8")
    slow = tmp_path_factory.mktemp("slow")
    for name, text in generated_policies(300).items():
        (slow / name).write_text(text, encoding="utf-8")
    WORKSPACE.update(shop=shop, slow=slow)
    CLIENT.append(lsp_client)

    @lsp_client.feature(T.WORKSPACE_CODE_LENS_REFRESH)
    def refresh(params: None) -> None:  # the lenses are asked for again by the tests
        return None

    @lsp_client.feature(T.CLIENT_REGISTER_CAPABILITY)
    def register(params: T.RegistrationParams) -> None:
        REGISTERED.extend(r.method for r in params.registrations)

    INITIALIZED.append(await lsp_client.initialize_session(T.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        workspace_folders=[T.WorkspaceFolder(p.as_uri(), p.name) for p in (shop, slow)],
        initialization_options={"analysisDelay": 0.2})))
    yield
    await lsp_client.shutdown_session()


def uri(folder: str, name: str) -> str:
    return (WORKSPACE[folder] / name).as_uri()


def open_doc(client: LanguageClient, doc: str, text: str) -> None:
    """Open ``doc`` holding ``text``, at a new version. An earlier test may have opened it
    in the module's server: opened again, the server holds ``text`` (pygls replaces the
    document). The diagnostics of ``doc`` received so far are dropped, so that a wait sees
    only those published since."""
    client.diagnostics.pop(doc, None)
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(doc, "policy", next(VERSIONS), text)))


def did_change(client: LanguageClient, doc: str, text: str) -> None:
    """The whole new text of an open document, at a new version."""
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(version=next(VERSIONS), uri=doc),
        [T.TextDocumentContentChangeWholeDocument(text)]))


def change(client: LanguageClient, doc: str, text: str) -> None:
    """``did_change``, the diagnostics of ``doc`` received so far dropped (as ``open_doc``)."""
    client.diagnostics.pop(doc, None)
    did_change(client, doc, text)


async def until(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Wait until ``check()`` is truthy; its value. The timeout is generous: the suite
    runs in parallel (./run-tests), and on a loaded machine the server's analysis worker
    takes seconds to start; on a timeout, the server's last log messages say why."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            last = [m.message for c in CLIENT for m in c.log_messages[-12:]]
            raise AssertionError("timed out; the server's last log messages:\n" + "\n".join(last))
        await asyncio.sleep(0.02)


def codes(client: LanguageClient, doc: str) -> list[str] | None:
    found = client.diagnostics.get(doc)
    return None if found is None else [str(d.code) for d in found]


def logged(client: LanguageClient, words: str, since: int = 0) -> bool:
    """Whether the server logged a message containing ``words`` (among its messages from
    the ``since``-th on)."""
    return any(words in m.message for m in client.log_messages[since:])


def analysed(client: LanguageClient, root: Path, since: int) -> bool:
    """Whether an analysis of the set at ``root`` started among the server's log messages
    from the ``since``-th on, and is done (one that started before may end after it)."""
    messages = [m.message for m in client.log_messages[since:]]
    started = [i for i, m in enumerate(messages) if m.startswith(f"analysis of {root} started")]
    return bool(started) and any(m.startswith(f"analysis of {root} done in ") for m in messages[started[0]:])


async def open_shop(client: LanguageClient) -> str:
    """Open the shop set's policy and test file with their texts (those on disk) and wait
    until the policy's check is published: no findings. The policy's URI."""
    doc = uri("shop", "shop.policy")
    open_doc(client, doc, SHOP)
    open_doc(client, uri("shop", "shop_test.policy"), TESTS)
    assert await until(lambda: codes(client, doc) == [])
    return doc


def position(text: str, word: str, nth: int = 0) -> T.Position:
    at = -1
    for _ in range(nth + 1):
        at = text.index(word, at + 1)
    line = text.count("\n", 0, at)
    return T.Position(line, at - (text.rfind("\n", 0, at) + 1))


async def test_open_edit_with_errors_fix(client: LanguageClient) -> None:
    doc = await open_shop(client)
    broken = SHOP.replace("any coins", "any coinz")
    change(client, doc, broken)
    await until(lambda: codes(client, doc) == ["P200"])
    d = client.diagnostics[doc][0]
    assert d.message == "unknown set 'coinz'\ndid you mean 'coins'?"
    assert d.range.start == position(broken, "coinz")
    assert d.code_description is not None and "P200" in d.code_description.href
    fixes = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(doc), d.range, T.CodeActionContext([d])))
    assert fixes is not None
    edits = [a.edit.changes[doc][0] for a in fixes if isinstance(a, T.CodeAction) and a.edit and a.edit.changes]
    assert [(e.new_text, e.range) for e in edits] == [("coins", d.range)]
    change(client, doc, SHOP)
    assert await until(lambda: codes(client, doc) == [])


async def test_the_analysis_after_a_pause_with_configuration_and_suppression(client: LanguageClient) -> None:
    doc = await open_shop(client)
    never = SHOP + "block title exists and not title exists\n"  # P300, and P400 (off in policy.toml)
    change(client, doc, never)
    await until(lambda: codes(client, doc) == ["P300"])  # the analysis's, after the pause
    seen = len(client.log_messages)  # (the analysis that found P300 may log its end after this)
    change(client, doc, never.replace("title exists\n", "title exists  # policy: ignore[P300]\n"))
    await until(lambda: codes(client, doc) == [])  # the check of the new text, published first
    await until(lambda: analysed(client, WORKSPACE["shop"], seen))  # then the analysis of that text
    assert codes(client, doc) == []
    change(client, doc, SHOP)
    assert await until(lambda: codes(client, doc) == [])


async def test_a_file_created_on_disk_joins_the_set(client: LanguageClient) -> None:
    await until(lambda: REGISTERED)  # the server asks for it once initialized
    assert REGISTERED == [T.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    doc = await open_shop(client)
    uses = SHOP + "rule more: block mentions any extra\n"
    change(client, doc, uses)
    await until(lambda: codes(client, doc) == ["P200"])
    extra = WORKSPACE["shop"] / "extra.policy"
    try:
        extra.write_text("policy extra\nset extra = ['x']\n", encoding="utf-8")
        client.workspace_did_change_watched_files(T.DidChangeWatchedFilesParams(
            [T.FileEvent(uri("shop", "extra.policy"), T.FileChangeType.Created)]))
        await until(lambda: codes(client, doc) == [])
    finally:  # the file gone, the set is the others' again
        extra.unlink(missing_ok=True)
        client.workspace_did_change_watched_files(T.DidChangeWatchedFilesParams(
            [T.FileEvent(uri("shop", "extra.policy"), T.FileChangeType.Deleted)]))
    await until(lambda: codes(client, doc) == ["P200"])  # `extra` unknown again
    change(client, doc, SHOP)
    assert await until(lambda: codes(client, doc) == [])


async def test_a_folder_added_or_removed_checks_the_open_documents_again(client: LanguageClient,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    more = tmp_path_factory.mktemp("more")
    (more / "words.policy").write_text("policy words\nset extra = ['x']\n", encoding="utf-8")
    doc = (more / "uses.policy").as_uri()
    open_doc(client, doc, "policy uses\nrule r: block mentions any extra\n")
    await until(lambda: codes(client, doc) == ["P200"])  # checked alone: `extra` is another file's
    client.workspace_did_change_workspace_folders(T.DidChangeWorkspaceFoldersParams(
        T.WorkspaceFoldersChangeEvent(added=[T.WorkspaceFolder(more.as_uri(), "more")], removed=[])))
    await until(lambda: codes(client, doc) == [])  # now checked with its folder
    client.workspace_did_change_workspace_folders(T.DidChangeWorkspaceFoldersParams(
        T.WorkspaceFoldersChangeEvent(added=[], removed=[T.WorkspaceFolder(more.as_uri(), "more")])))
    await until(lambda: codes(client, doc) == ["P200"])  # the folder gone (its worker stopped): alone again
    client.text_document_did_close(T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(doc)))


async def test_hover_on_rule_set_field_and_code(client: LanguageClient) -> None:
    doc = await open_shop(client)

    async def hover(word: str, nth: int = 0) -> str:
        found = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(doc),
                                                                     position(SHOP, word, nth)))
        assert found is not None and isinstance(found.contents, T.MarkupContent)
        return found.contents.value

    text = await hover("coins:")
    assert "**block** rule `shop.coins`" in text
    assert "in force from 2024-01-01 00:00 Europe/London" in text
    assert "mentions any coins" in text and "1. warn seller" in text and "2. remove listing" in text
    assert "['bitcoin', 'litecoin']" in await hover("coins\n")
    assert "one of ['CN', 'GB']" in await hover("country ==")
    assert "1. warn seller" in await hover("escalate\n")


async def test_definition_and_references(client: LanguageClient) -> None:
    doc = await open_shop(client)
    found = await client.text_document_definition_async(T.DefinitionParams(
        T.TextDocumentIdentifier(doc), position(SHOP, "escalate", 1)))
    assert isinstance(found, list) and [(loc.uri, loc.range.start) for loc in found] == [
        (doc, position(SHOP, "escalate"))]
    refs = await client.text_document_references_async(T.ReferenceParams(
        text_document=T.TextDocumentIdentifier(doc), position=position(SHOP, "coins:"),
        context=T.ReferenceContext(include_declaration=False)))
    assert refs is not None
    assert sorted((r.uri.rpartition("/")[2], r.range.start.line) for r in refs) == [
        ("shop.policy", 9), ("shop_test.policy", 1)]


async def test_format_the_document(client: LanguageClient) -> None:
    doc = uri("shop", "messy.policy")
    messy = "policy messy\nrule   r :   block   category 'X'\n"
    open_doc(client, doc, messy)
    try:
        edits = await client.text_document_formatting_async(T.DocumentFormattingParams(
            T.TextDocumentIdentifier(doc), T.FormattingOptions(2, True)))
        assert edits is not None and [e.new_text for e in edits] == ["policy messy\n\nrule r: block category 'X'\n"]
    finally:  # not saved: closed, it leaves the shop set
        client.text_document_did_close(T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(doc)))


async def test_the_server_takes_the_whole_text_at_each_change(client: LanguageClient) -> None:
    """pygls applies a change's range in Python's lines (a form feed or U+2028 ends one)
    and not the protocol's: an edit below such a character landed a line off, and
    formatting then swapped two rules' conditions. The server asks for the whole text."""
    assert INITIALIZED[0].capabilities.text_document_sync is not None
    sync = INITIALIZED[0].capabilities.text_document_sync
    assert getattr(sync, "change", sync) == T.TextDocumentSyncKind.Full
    doc = uri("shop", "paged.policy")
    text = "policy p\n# see page\fbreak \u2028 here\nrule r: block mentions 'x'\nrule q: block mentions 'y'\n"
    open_doc(client, doc, text)
    try:
        did_change(client, doc, text.replace("'y'", "'z'"))
        edits = await client.text_document_formatting_async(T.DocumentFormattingParams(
            T.TextDocumentIdentifier(doc), T.FormattingOptions(2, True)))
        assert edits is not None
        assert [e.new_text for e in edits] == ["policy p\n\n# see page\fbreak \u2028 here\nrule r: block mentions 'x'\n"
                                               "rule q: block mentions 'z'\n"]
    finally:
        client.text_document_did_close(T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(doc)))


async def test_a_test_lens_runs_the_test(client: LanguageClient) -> None:
    await open_shop(client)
    doc = uri("shop", "shop_test.policy")
    lenses = await client.text_document_code_lens_async(T.CodeLensParams(T.TextDocumentIdentifier(doc)))
    assert lenses is not None and [lens.command.title for lens in lenses if lens.command] == ["▶ run test"] * 2
    results = []
    for lens in lenses:
        assert lens.command is not None
        results.append(await client.workspace_execute_command_async(T.ExecuteCommandParams(
            lens.command.command, lens.command.arguments)))
    assert [r["outcome"] for r in results] == ["pass", "fail"], results
    assert "wrong on purpose" in results[1]["report"]
    lenses = await client.text_document_code_lens_async(T.CodeLensParams(T.TextDocumentIdentifier(doc)))
    assert lenses is not None
    assert [lens.command.title for lens in lenses if lens.command] == ["▶ run test · ✓ passed",
                                                                      "▶ run test · ✗ failed"]
    change(client, doc, "# a line added above\n" + TESTS)  # the outcomes follow their tests
    lenses = await client.text_document_code_lens_async(T.CodeLensParams(T.TextDocumentIdentifier(doc)))
    assert lenses is not None
    assert [lens.command.title for lens in lenses if lens.command] == ["▶ run test · ✓ passed",
                                                                      "▶ run test · ✗ failed"]


async def test_a_rule_lens_decides_the_samples(client: LanguageClient) -> None:
    doc = await open_shop(client)
    lenses = await client.text_document_code_lens_async(T.CodeLensParams(T.TextDocumentIdentifier(doc)))
    assert lenses is not None and lenses[0].command is not None
    result = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        lenses[0].command.command, lenses[0].command.arguments))
    assert "error" not in result, result
    assert (result["applied"], result["overridden"], result["decisions"]) == ([1], [3], ["block", "allow", "allow"])


async def test_a_slow_analysis_is_cancelled_by_an_edit(client: LanguageClient) -> None:
    doc = uri("slow", "gen-00.policy")
    text = (WORKSPACE["slow"] / "gen-00.policy").read_text(encoding="utf-8")
    slow = WORKSPACE["slow"]
    seen = len(client.log_messages)
    open_doc(client, doc, text)
    await until(lambda: logged(client, f"analysis of {slow} started", seen))
    change(client, doc, text + "\nrule broken: block category\n")
    await until(lambda: logged(client, f"analysis of {slow} cancelled: the text changed", seen))
    await until(lambda: "P100" in (codes(client, doc) or []))
    await asyncio.sleep(0.5)
    assert not logged(client, f"analysis of {slow} done in ", seen)  # other sets' analyses start again


async def test_a_document_that_is_not_a_policy_file_is_not_checked(client: LanguageClient,
                                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """A client that sends every document it opens: a plain text file is neither checked
    nor reported; a `.policy` file opened under another language id still is."""
    folder = tmp_path_factory.mktemp("mixed")
    notes, rules = (folder / "notes.txt").as_uri(), (folder / "r.policy").as_uri()
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(notes, "plaintext", 1, "shopping list: eggs, milk\n")))
    did_change(client, notes, "still not a policy\n")
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(rules, "plaintext", 1, "policy r\nrule a: block mentions any nope\n")))
    assert await until(lambda: codes(client, rules) == ["P200"])
    assert codes(client, notes) is None
    for doc in (notes, rules):
        client.text_document_did_close(T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(doc)))
