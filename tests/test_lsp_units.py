"""The language server's pieces without a client: the front end's entry points for texts
in memory, and the lsp modules' functions (tests/test_lsp.py drives the server itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import api
from dsl.checking.config import discover
from dsl.checking.loader import load_paths, loaded_from, parse_source

POLICY = """policy shop
set words = ['bitcoin']
rule coins: block mentions any words
"""


def _loaded(texts: dict[str, str]):  # type: ignore[no-untyped-def]
    return loaded_from((name, text, *parse_source(name, text)) for name, text in texts.items())


def test_check_loaded_gives_what_check_gives_for_the_same_files(tmp_path: Path) -> None:
    (tmp_path / "shop.policy").write_text(POLICY.replace("words\n", "wrds\n"), encoding="utf-8")
    (tmp_path / "shop_test.policy").write_text(
        "test 'x' given {title: 'bitcoin'} at 2024-01-01 expect block by coins\n", encoding="utf-8")
    on_disk = api.check([tmp_path], analysis=False)
    loaded = load_paths([tmp_path])
    in_memory = api.check_loaded(_loaded(dict(loaded.sources)), discover([tmp_path]), analysis=False)
    assert in_memory == on_disk
    assert "P200" in [d.code for d in on_disk]


def test_a_buffer_replaces_the_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "shop.policy"
    path.write_text(POLICY, encoding="utf-8")
    assert api.check([tmp_path], analysis=False) == []
    broken = POLICY.replace("any words", "any wrds")
    diags = api.check_loaded(_loaded({str(path): broken}), analysis=False)
    assert [(d.code, d.hint) for d in diags] == [("P200", "did you mean 'words'?")]


def test_statement_start_finds_the_statement_under_the_cursor() -> None:
    from dsl.syntax.recovery import statement_start

    text = "policy p\nset s = ['a']\nrule r: from 2021-01-01 block category 'X'\n  if seller.country in s\nrule q: "
    at = text.index("seller")
    assert text[statement_start(text, at):at] == "rule r: from 2021-01-01 block category 'X'\n  if "
    assert text[statement_start(text, len(text)):] == "rule q: "
    assert statement_start("  ", 2) == 0
    long = "rule a: block true\n" + "# filler\n" * 2000 + "rule b: block category 'X'\n  if "
    assert long[statement_start(long, len(long)):].startswith("rule b:")


def test_in_force_words_say_the_window_in_the_policy_timezone() -> None:
    from dsl.evaluate.explain import in_force_words

    model, _, _ = api.compile_paths([Path(__file__).parents[1] / "policies" / "alibaba"])
    assert model is not None
    rule = model.rule("alibaba-crypto-2021.miners")
    assert in_force_words(rule) == "in force from 2021-10-08 00:00 Asia/Shanghai"


# ---------------------------------------------------------------- the lsp modules, without a client

SHOP = """policy shop
  timezone 'Europe/London'

set coins = ['bitcoin', 'litecoin']
ladder escalate = warn seller then remove listing
field seller.country: one of ['CN', 'GB']
field price: number

rule coins: block mentions any coins penalty escalate  # policy: ignore[P300]
rule uk-ok: allow seller.country == 'GB' overrides coins
"""


def _snapshot(tmp_path: Path, text: str = SHOP, name: str = "shop.policy"):  # type: ignore[no-untyped-def]
    from dsl.lsp.project import Project

    (tmp_path / name).write_text(text, encoding="utf-8")
    project = Project()
    project.set_folders([str(tmp_path)])
    return project, project.snapshot(str(tmp_path / name)), str(tmp_path / name)


def _labels(text: str, tmp_path: Path, cursor: str = "|") -> list[str]:
    from dsl.lsp.completion import complete

    project, _snap, path = _snapshot(tmp_path)
    at = text.index(cursor)
    text = text.replace(cursor, "")
    project.set_buffer(path, text)
    return [i.label for i in complete(project.snapshot(path), text, at)]


def test_completion_offers_keywords_the_grammar_takes(tmp_path: Path) -> None:
    assert _labels(SHOP + "rule r: |", tmp_path) == ["allow", "block", "flag", "from", "until"]
    labels = _labels(SHOP + "rule r: block title exists |", tmp_path)
    assert {"and", "or", "if", "unless", "penalty", "because", "rule", "set"} <= set(labels)


def test_completion_offers_the_names_that_fit(tmp_path: Path) -> None:
    assert "escalate" in _labels(SHOP + "rule r: block title exists penalty |", tmp_path)
    assert "coins" in _labels(SHOP + "rule r: block mentions any |", tmp_path)
    assert {"seller.country", "price", "title"} <= set(_labels(SHOP + "rule r: block |", tmp_path))
    assert "coins" in _labels(SHOP + "rule r: allow title exists overrides uk-ok, |", tmp_path)
    assert {"'CN'", "'GB'"} <= set(_labels(SHOP + "rule r: block seller.country == |", tmp_path))
    assert {"'CN'", "'GB'"} <= set(_labels(SHOP + "rule r: block seller.country in ['CN', |", tmp_path))
    assert "'Europe/Paris'" in _labels(SHOP.replace("'Europe/London'", "|"), tmp_path)
    assert "\"Asia/Tokyo\"" in _labels(SHOP.replace("'Europe/London'", '"As|'), tmp_path)


def test_hover_on_a_code_in_a_suppression_comment(tmp_path: Path) -> None:
    from dsl.lsp.hover import hover

    _project, snap, path = _snapshot(tmp_path)
    line = SHOP.splitlines().index(next(x for x in SHOP.splitlines() if "ignore[P300]" in x)) + 1
    column = SHOP.splitlines()[line - 1].index("P300") + 2
    found = hover(snap, path, line, column, "utf-16")
    assert found is not None and "**P300** — rule can never apply (warning)" in str(found.contents)
    assert "checks/P300" in str(found.contents)


def test_hover_on_fields(tmp_path: Path) -> None:
    from dsl.lsp.hover import hover

    text = SHOP + "rule r: block title exists and price > 3\n"
    _project, snap, path = _snapshot(tmp_path, text)
    line = text.count("\n", 0, text.index("price >")) + 1
    assert "field price: number" in str(hover(snap, path, line, 32, "utf-16").contents)  # type: ignore[union-attr]
    assert "text (built in)" in str(hover(snap, path, line, 16, "utf-16").contents)  # type: ignore[union-attr]


def _fixes(text: str, tmp_path: Path, diag_code: str):  # type: ignore[no-untyped-def]
    from dsl.lsp.actions import code_actions
    from dsl.lsp.diagnostics import by_file, uri_of

    _project, snap, path = _snapshot(tmp_path, text)
    diags = by_file(api.check_loaded(snap.loaded, snap.config, analysis=False), snap, "utf-16")[uri_of(path)]
    chosen = [d for d in diags if d.code == diag_code]
    assert chosen, diags
    return code_actions(uri_of(path), snap.lines(path, "utf-16"), snap.files.get(path), chosen)


def test_quick_fix_puts_a_keyword_used_as_a_field_in_backquotes(tmp_path: Path) -> None:
    fixes = _fixes(SHOP + "rule r: block given == 'x'\n", tmp_path, "P100")
    assert [(a.title, a.edit.changes.popitem()[1][0].new_text) for a in fixes] == [  # type: ignore[union-attr]
        ("Write `given` in backquotes", "`given`")]


def test_quick_fix_for_a_finding_whose_range_the_editor_emptied(tmp_path: Path) -> None:
    """The user deleted the unknown name: the editor shrinks the finding to an empty range
    and still asks for its fixes (it was an IndexError, a traceback in the client)."""
    import attrs
    from lsprotocol import types as T

    from dsl.lsp.actions import code_actions
    from dsl.lsp.diagnostics import by_file, uri_of

    text = "policy p\nset s = ['a']\nrule r: block mentions any ss\n"
    _project, snap, path = _snapshot(tmp_path, text)
    (d,) = [d for d in by_file(api.check_loaded(snap.loaded, snap.config, analysis=False), snap, "utf-16")[uri_of(path)]
            if d.code == "P200"]
    empty = attrs.evolve(d, range=T.Range(d.range.start, d.range.start))
    fixes = code_actions(uri_of(path), snap.lines(path, "utf-16"), snap.files.get(path), [empty])
    assert [a.edit.changes.popitem()[1][0].new_text for a in fixes if a.title.startswith("Change")] == ["s"]  # type: ignore[union-attr]


def test_commands_with_arguments_not_their_lens_s_answer_an_error() -> None:
    from dsl.lsp.lenses import DECIDE_SAMPLES, RUN_TEST
    from dsl.lsp.server import _arguments

    assert _arguments(("a.policy", 3), RUN_TEST, "") == ("a.policy", 3)
    assert _arguments((["a.policy", 3],), RUN_TEST, "") == ("a.policy", 3)
    assert _arguments(("a.policy", "p.r"), DECIDE_SAMPLES, "") == ("a.policy", "p.r")
    for bad in ((), ("a.policy",), ("a.policy", "abc"), ("a.policy", True), (3, 4), ("a", 1, 2)):
        answer = _arguments(bad, RUN_TEST, "a file and a line")
        assert isinstance(answer, dict) and answer["outcome"] == "error" and RUN_TEST in answer["error"]
    assert isinstance(_arguments(("a.policy", 3), DECIDE_SAMPLES, ""), dict)


def test_quick_fix_suppresses_a_warning_at_the_end_of_its_line(tmp_path: Path) -> None:
    fixes = _fixes(SHOP + "block title exists\n", tmp_path, "P400")
    edits = [a.edit.changes.popitem()[1][0] for a in fixes]  # type: ignore[union-attr]
    assert [e.new_text for e in edits] == ["  # policy: ignore[P400]"]
    assert edits[0].range.start.line == SHOP.count("\n")
    second = "# policy: ignore[P300]\nblock title exists  # policy: ignore[P301]"
    fixes = _fixes(SHOP.replace("# policy: ignore[P300]", second), tmp_path, "P400")
    assert [a.edit.changes.popitem()[1][0].new_text for a in fixes] == [", P400"]  # type: ignore[union-attr]


def test_range_formatting_formats_the_statements_touched(tmp_path: Path) -> None:
    from lsprotocol import types as T

    from dsl.lsp.actions import format_range
    from dsl.lsp.positions import Text

    text = "policy p\n\nrule   a :  block   title exists\nrule   b :  block   title exists\n"
    edits = format_range("p.policy", Text(text), T.Range(T.Position(2, 0), T.Position(2, 3)))
    assert edits is not None and [(e.range.start.line, e.range.end.line, e.new_text) for e in edits] == [
        (2, 3, "rule a: block title exists\n")]


def test_workspace_symbols_and_outline(tmp_path: Path) -> None:
    from dsl.lsp.navigation import document_symbols, workspace_symbols

    _project, snap, path = _snapshot(tmp_path)
    assert [s.name for s in document_symbols(snap, path, "utf-16")] == [
        "shop", "coins", "escalate", "seller.country", "price", "coins", "uk-ok"]
    assert [s.name for s in workspace_symbols([snap], "coin", "utf-16")] == ["coins", "shop.coins"]


def test_positions_count_utf16_units() -> None:
    from lsprotocol import types as T

    from dsl.lsp.positions import Text
    from dsl.span import Span

    text = Text("rule 😀: block title mentions '比特币'\n")
    span = Span("x", 1, 31, 1, 34)
    assert text.range(span) == T.Range(T.Position(0, 31), T.Position(0, 34))
    assert text.offset(T.Position(0, 31)) == 30
    assert Text(text.text, "utf-32").range(span).start.character == 30
    assert Text(text.text, "utf-8").range(span).start.character == 33


def test_positions_go_both_ways_on_the_front_ends_lines() -> None:
    """Every offset of a text with CRLF, a lone CR, tabs, astral characters and a last line
    without a break: its position and back, and a parse's span at it, on the same line."""
    from dsl.lsp.positions import Text
    from dsl.span import Lines, Span

    source = "policy p\r\nrule 😀:\tblock\r title 'é😀'\n\n\n😀😀 x"
    for encoding in ("utf-16", "utf-8", "utf-32"):
        text = Text(source, encoding)
        lines = Lines("x", source)
        for offset in range(len(source) + 1):
            pos = text.at_offset(offset)
            assert text.offset(pos) == offset, (encoding, offset)
            span = Span.within(lines, offset, offset)
            assert pos.line == span.line - 1 == source.count("\n", 0, offset)
            assert text.range(span).start == pos
            assert text.span_offsets(span) == (offset, offset)


def test_policy_check_does_not_import_pygls() -> None:
    import subprocess
    import sys

    code = ("import sys, dsl.cli\nfrom click.testing import CliRunner\n"
            "CliRunner().invoke(dsl.cli.main, ['check', '--no-analysis', 'policies'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'dsl') and 'lsp' in m))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[1])
    assert done.stdout.strip() == "[]"


def test_policy_lsp_listens_on_tcp() -> None:
    import json
    import socket
    import subprocess
    import sys
    import time

    def start() -> tuple[subprocess.Popen[bytes], socket.socket] | None:
        """A server on a port that was free a moment ago, and a connection to it; None
        where another process took the port meanwhile (the server then exits, status 2)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "dsl", "lsp", "--tcp", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while server.poll() is None:
            try:
                return server, socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                assert time.monotonic() < deadline, "the server does not listen"
                time.sleep(0.1)
        assert server.returncode == 2, server.returncode  # (cannot listen: a usage error)
        return None

    for _ in range(5):
        if (started := start()) is not None:
            break
    assert started is not None, "no free port five times in a row"
    server, conn = started
    try:
        with conn:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                               "params": {"processId": None, "rootUri": None, "capabilities": {}}}).encode()
            conn.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            received = b""
            while b"capabilities" not in received or not received.rstrip().endswith(b"}"):
                chunk = conn.recv(65536)
                assert chunk, received
                received += chunk
        answer = json.loads(received.partition(b"\r\n\r\n")[2])
        assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "policy"
        assert answer["result"]["capabilities"]["hoverProvider"]
    finally:
        server.kill()
        server.wait()


def _same_parse(a, b) -> bool:  # type: ignore[no-untyped-def]
    """The same parse, spans included."""
    import attrs

    return bool(a[0] == b[0] and a[1] == b[1] and attrs.asdict(a[2]) == attrs.asdict(b[2]) and a[3] == b[3])


def test_incremental_reparse_gives_the_whole_parse() -> None:
    """Random edits of the example policies and tests (450; 12,000 were tried once): parsing from the edited statement
    gives what parsing the whole text gives, spans, comments and diagnostics included."""
    import random

    from dsl.lsp.incremental import reparse

    rnd = random.Random(15)
    root = Path(__file__).parents[1] / "policies"
    files = sorted(root.rglob("*.policy"))
    pieces = ["rule x: block title exists\n", "policy p\n", "tests for a\n", " and ", "'", "# c\n", "\n", ":", "r",
              "from 2021-01-01 ", "block ", "set s = ['a']\n", "`", "test 't' given {} at 2021-01-01 expect allow\n"]
    incremental = 0
    for _ in range(150):
        path = rnd.choice(files)
        text = path.read_text(encoding="utf-8")
        old = (str(path), text, *parse_source(str(path), text))
        for _step in range(3):
            at = rnd.randrange(len(text) + 1)
            if rnd.random() < 0.5:
                new = text[:at] + rnd.choice(pieces) + text[at:]
            else:
                new = text[:at] + text[at + rnd.randrange(1, 30):]
            got = reparse(old, new)
            assert _same_parse(got, (str(path), new, *parse_source(str(path), new))), (path, at, new[at - 40:at + 40])
            incremental += got[2].statements[:1] == old[2].statements[:1]
            old, text = got, new
    assert incremental > 150  # most edits kept the statements before them


def test_a_buffer_not_yet_saved_joins_its_folders_set(tmp_path: Path) -> None:
    project, _snap, path = _snapshot(tmp_path)
    new = str(tmp_path / "more.policy")
    project.set_buffer(new, "policy more\nrule m: block mentions any coins\n")
    assert sorted(project.snapshot(path).files) == sorted(project.snapshot(new).files) == sorted([path, new])
    assert api.check_loaded(project.snapshot(new).loaded, analysis=False) == []  # `coins` is shop.policy's set
    excluded = tmp_path / "policy.toml"
    excluded.write_text('exclude = ["more.policy"]\n', encoding="utf-8")
    project.files_changed()
    assert sorted(project.snapshot(path).files) == [path]
    assert sorted(project.snapshot(new).files) == [new]  # an excluded file is checked alone


def test_every_request_answers_anywhere_in_the_example_policies() -> None:
    """Completion, hover, definition, references and the quick fixes at every 31st
    character of the example policies and tests, and of a broken copy: an answer (maybe
    empty), never an exception."""
    from dsl.lsp.actions import code_actions, format_document
    from dsl.lsp.completion import complete
    from dsl.lsp.diagnostics import by_file, uri_of
    from dsl.lsp.hover import hover
    from dsl.lsp.navigation import definition, document_symbols, references
    from dsl.lsp.project import Project

    root = Path(__file__).parents[1] / "policies"
    project = Project()
    project.set_folders([str(root)])
    for path in sorted(str(p) for p in root.rglob("*.policy")):
        text = Path(path).read_text(encoding="utf-8")
        for version in (text, text.replace("rule", "rul", 1).replace("'", "", 1)):
            project.set_buffer(path, version)
            snap = project.snapshot(path)
            lines = snap.lines(path, "utf-16")
            for offset in range(0, len(version), 31):
                pos = lines.at_offset(offset)
                line, column = pos.line + 1, offset - lines.starts[pos.line] + 1
                complete(snap, version, offset)
                hover(snap, path, line, column, "utf-16")
                definition(snap, path, line, column, "utf-16")
                references(snap, path, line, column, "utf-16", True)
            document_symbols(snap, path, "utf-16")
            format_document(path, lines)
            shown = by_file(api.check_loaded(snap.loaded, snap.config, analysis=False), snap, "utf-16")
            code_actions(uri_of(path), lines, snap.files.get(path), shown.get(uri_of(path), []))
        project.set_buffer(path, None)


def test_a_change_during_a_check_does_not_drop_the_other_documents_waiting(tmp_path: Path) -> None:
    """Documents opened together are checked in one batch; a change that comes while the
    batch is checked must not lose the documents of the batch not yet checked."""
    import asyncio

    from dsl.lsp.diagnostics import Checker, uri_of
    from dsl.lsp.project import Project

    paths = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.policy").write_text(f"policy {name}\nrule r: block title exists\n", "utf-8")
        paths.append(str(tmp_path / name / f"{name}.policy"))
    project = Project()
    project.set_folders([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c")])
    published: set[str] = set()

    async def main() -> None:
        checker = Checker(project, lambda uri, _d, _e: published.add(uri), lambda _m: None,
                          encoding=lambda: "utf-16", delay=60)
        first = checker.check_now
        once = [paths[2]]

        def check_now(snap):  # type: ignore[no-untyped-def]
            if snap.root.endswith("a") and once:
                checker.changed(once.pop())  # c changes while a is checked
            return first(snap)

        checker.check_now = check_now  # type: ignore[method-assign]
        checker.changed(paths[0])
        checker.changed(paths[1])
        while checker._task is not None and not checker._task.done():
            await asyncio.sleep(0.01)
        for timer in checker._timers.values():
            timer.cancel()

    asyncio.run(main())
    assert published == {uri_of(p) for p in paths}


def test_a_document_without_a_file_keeps_its_uri(tmp_path: Path) -> None:
    """An editor's untitled buffer (``untitled:Untitled-1``, which the VS Code extension
    sends) gets its findings and locations under its own URI, not as a file named so."""
    from dsl.lsp.diagnostics import by_file, path_of, uri_of
    from dsl.lsp.project import Project

    uri = "untitled:Untitled-1"
    assert uri_of(path_of(uri)) == uri
    assert uri_of(path_of((tmp_path / "a b.policy").as_uri())) == (tmp_path / "a b.policy").as_uri()
    project = Project()
    project.set_folders([str(tmp_path)])
    project.set_buffer(path_of(uri), "policy u\nrule r: block mentions any nope\n")
    snap = project.snapshot(path_of(uri))
    found = by_file(api.check_loaded(snap.loaded, snap.config, analysis=False), snap, "utf-16")
    assert [d.code for d in found[uri]] == ["P200"]


def test_closing_a_file_checked_alone_stops_its_analysis_worker(tmp_path: Path) -> None:
    """A file outside every folder is checked alone, with an analysis process of its own:
    closing it clears its findings and ends that process (none is left per file closed)."""
    import asyncio

    from dsl.lsp.diagnostics import Checker, uri_of
    from dsl.lsp.project import Project

    (tmp_path / "ws").mkdir()
    lone = tmp_path / "lone.policy"
    lone.write_text(POLICY, encoding="utf-8")
    project = Project()
    project.set_folders([str(tmp_path / "ws")])
    published: list[tuple[str, int]] = []
    logged: list[str] = []

    async def settle(checker: Checker, words: str) -> None:
        for _ in range(3000):
            if (not words or any(words in m for m in logged)) and (checker._task is None or checker._task.done()):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(logged)

    async def main() -> list[object]:
        checker = Checker(project, lambda uri, d, _e: published.append((uri, len(d))), logged.append,
                          encoding=lambda: "utf-16", delay=0)

        async def edit(text: str | None) -> None:
            logged.clear()
            project.set_buffer(str(lone), text)
            checker.changed(str(lone))
            await asyncio.sleep(0.3)
            await settle(checker, " done in " if text is not None else "")

        await edit(POLICY.replace("any words", "any words and title exists"))
        workers = list(checker._workers.values())
        assert [w.pid is not None for w in workers] == [True]
        process = workers[0]._process
        await edit(None)
        closed = [process is not None and process.is_alive(), list(checker._workers)]
        await edit(POLICY)
        assert list(checker._workers) == [str(lone)]
        project.set_folders([str(tmp_path)])  # a folder now holds it: the worker of the file alone goes
        await edit(POLICY)
        moved = list(checker._workers)
        checker.stop()
        return [*closed, moved]

    assert asyncio.run(main()) == [False, [], [str(tmp_path)]]
    assert (uri_of(str(lone)), 0) in published


def test_closing_an_unsaved_file_of_a_folder_checks_the_folder_again(tmp_path: Path) -> None:
    """An unsaved buffer of a folder is checked with the folder's files; closed, the folder
    is checked again without it (the findings it had hidden were never shown again)."""
    import asyncio

    from dsl.lsp.diagnostics import Checker, uri_of
    from dsl.lsp.project import Project

    (tmp_path / "b.policy").write_text("policy b\nrule r: block mentions any s\n", encoding="utf-8")
    new = str(tmp_path / "new.policy")  # never saved
    project = Project()
    project.set_folders([str(tmp_path)])
    shown: dict[str, list[str]] = {}

    async def main() -> list[list[str]]:
        checker = Checker(project, lambda uri, d, _e: shown.__setitem__(uri, [str(x.code) for x in d]),
                          lambda _m: None, encoding=lambda: "utf-16", delay=60)
        seen = []
        for text in ("policy n\nset s = ['x']\n", None):
            project.set_buffer(new, text)
            checker.changed(new)
            await asyncio.sleep(0.05)
            while checker._task is not None and not checker._task.done():
                await asyncio.sleep(0.01)
            seen.append(list(shown.get(uri_of(str(tmp_path / "b.policy")), [])))
        checker.stop()
        return seen

    assert asyncio.run(main()) == [[], ["P200"]]


def test_a_warning_raised_to_an_error_by_configuration_does_not_stop_the_analysis(tmp_path: Path) -> None:
    """As `policy check` (docs/checks.md: configuration never changes which checks run),
    the editor runs the analysis where the set compiles, whatever the severities: with
    P400 raised to an error, the analysis (its P301) never ran in the editor."""
    import asyncio

    from dsl.lsp.diagnostics import Checker, uri_of
    from dsl.lsp.project import Project

    (tmp_path / "policy.toml").write_text('severity = { P400 = "error" }\n', encoding="utf-8")
    path = tmp_path / "s.policy"
    text = ("policy s\nrule all: block mentions 'ivory'\nrule narrow: block mentions 'old ivory'\n"
            "from 2021-01-01 block mentions 'jade'\n")
    path.write_text(text, encoding="utf-8")
    project = Project()
    project.set_folders([str(tmp_path)])
    shown: dict[str, list[object]] = {}
    logged: list[str] = []

    async def main() -> None:
        checker = Checker(project, lambda uri, d, _e: shown.__setitem__(uri, list(d)), logged.append,
                          encoding=lambda: "utf-16", delay=0)
        project.set_buffer(str(path), text)
        checker.changed(str(path))
        for _ in range(3000):
            await asyncio.sleep(0.01)
            if any(" done in " in m for m in logged) and (checker._task is None or checker._task.done()):
                break
        checker.stop()

    asyncio.run(main())
    codes = sorted(str(d.code) for d in shown[uri_of(str(path))])  # type: ignore[attr-defined]
    assert codes == ["P301", "P400"], (codes, logged)
    assert [d.severity for d in shown[uri_of(str(path))] if d.code == "P400"] == [1]  # type: ignore[attr-defined]


def test_policy_lsp_on_a_port_in_use_says_so() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "dsl", "lsp", "--tcp", str(port)], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"policy: error: cannot listen on 127.0.0.1:{port}: "), done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_initialization_option_is_said_and_its_default_kept() -> None:
    """A client option that is no number of seconds does not stop the server starting
    (``initialize`` failed with a ValueError): a warning names it, the default holds."""
    from dsl.lsp.server import seconds

    said: list[str] = []
    assert seconds({"analysisDelay": 0.2}, "analysisDelay", 0.5, said.append) == 0.2
    assert seconds(None, "analysisDelay", 0.5, said.append) == 0.5
    assert seconds({}, "analysisBudget", 60.0, said.append) == 60.0
    assert said == []
    for bad in ("fast", None, -1, True, [1], float("nan"), float("inf")):  # JSON's 1e400 is inf
        assert seconds({"analysisDelay": bad}, "analysisDelay", 0.5, said.append) == 0.5
    assert len(said) == 7 and said[0] == (
        "initializationOptions.analysisDelay: expected a finite number of seconds >= 0, got 'fast'; using 0.5")


def test_an_edit_of_one_set_does_not_lose_the_analysis_of_another(tmp_path: Path) -> None:
    """An edit stops every analysis waiting or running; the sets the edit did not touch
    are analysed again after the pause (a file opened just after another left the first
    without its analysis until it was edited)."""
    import asyncio

    from dsl.lsp.diagnostics import Checker
    from dsl.lsp.project import Project

    paths = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.policy").write_text(POLICY, encoding="utf-8")
        paths.append(str(tmp_path / f"{name}.policy"))
    project = Project()
    logged: list[str] = []

    async def main() -> None:
        checker = Checker(project, lambda _u, _d, _e: None, logged.append, encoding=lambda: "utf-16", delay=0.3)
        for path in paths:
            project.set_buffer(path, POLICY)
            checker.changed(path)
            while checker._task is not None and not checker._task.done():
                await asyncio.sleep(0.01)  # a's check is done and its analysis waits for the pause
        for _ in range(3000):
            if sum(" done in " in m for m in logged) == 2:
                break
            await asyncio.sleep(0.01)
        checker.stop()

    asyncio.run(main())
    assert sorted(m.split(" done in ")[0] for m in logged if " done in " in m) == [f"analysis of {p}" for p in paths]


def test_running_a_test_of_a_set_with_errors_names_the_first_error(tmp_path: Path) -> None:
    from dsl.lsp.lenses import Lenses

    (tmp_path / "shop_test.policy").write_text(
        "test 'x' given {title: 'bitcoin'} at 2024-01-01 expect block by coins\n", encoding="utf-8")
    project, snap, path = _snapshot(tmp_path, SHOP.replace("any coins", "any coinz"))
    test_file = str(tmp_path / "shop_test.policy")
    ran = Lenses().run_test(project.snapshot(test_file), test_file, 1)
    assert ran["outcome"] == "error"
    assert ran["report"].startswith("the policy set has errors: fix them first\n")
    assert "P200" in ran["report"] and "coinz" in ran["report"]
    assert snap.model is None and [d.code for d in snap.compiled[1]] == ["P200"]


def test_running_a_test_runs_that_test_alone(tmp_path: Path) -> None:
    from dsl.lsp.lenses import Lenses

    (tmp_path / "shop_test.policy").write_text(
        "test 'x' given {title: 'bitcoin'} at 2024-01-01 expect block by coins\n"
        "test 'x2' given {title: 'bitcoin'} at 2024-01-01 expect allow\n", encoding="utf-8")
    project, _snap, _path = _snapshot(tmp_path)
    test_file = str(tmp_path / "shop_test.policy")
    lenses = Lenses()
    first = lenses.run_test(project.snapshot(test_file), test_file, 1)
    assert first["outcome"] == "pass" and "x2" not in first["report"]
    second = lenses.run_test(project.snapshot(test_file), test_file, 2)
    assert second["outcome"] == "fail" and "x2" in second["report"]


def test_a_link_to_nothing_in_a_folder_is_reported_as_policy_check_reports_it(tmp_path: Path) -> None:
    from dsl.lsp.diagnostics import Checker

    (tmp_path / "gone.policy").symlink_to(tmp_path / "nowhere.policy")
    project, snap, _path = _snapshot(tmp_path)
    on_disk = [(d.code, d.file) for d in api.check([tmp_path], analysis=False)]
    assert ("P001", str(tmp_path / "gone.policy")) in on_disk
    in_editor = Checker(project, lambda *_: None, lambda _: None, encoding=lambda: "utf-16").check_now(snap)
    assert [(d.code, d.file) for d in in_editor] == on_disk


def test_a_link_to_nothing_in_an_excluded_folder_is_no_problem_in_the_editor(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('exclude = ["drafts"]\n', encoding="utf-8")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "gone.policy").symlink_to(tmp_path / "nowhere.policy")
    _project, snap, _path = _snapshot(tmp_path)
    assert not [d for d in snap.loaded.diagnostics if d.code == "P001"]
    assert not [d for d in api.check([tmp_path], analysis=False) if d.code == "P001"]


def test_the_analysis_job_reports_the_files_it_could_not_read(tmp_path: Path) -> None:
    from dsl.lsp.worker import Job, run_job

    (tmp_path / "gone.policy").symlink_to(tmp_path / "nowhere.policy")
    _project, snap, _path = _snapshot(tmp_path)
    unread = tuple(d for d in snap.loaded.diagnostics if d.code.startswith("P0"))
    found = run_job(Job(dict(snap.loaded.sources), None, 5.0, unread))
    assert [d for d in found if d.code.startswith("P0")] == list(unread) and len(unread) == 1


def test_a_request_on_an_unchanged_set_does_not_look_for_its_configuration_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dsl.lsp.project as P

    project, snap, path = _snapshot(tmp_path)
    looked: list[object] = []
    real = P.discover
    monkeypatch.setattr(P, "discover", lambda paths: looked.append(paths) or real(paths))
    assert project.snapshot(path) is snap and project.snapshot(path) is snap and looked == []
    (tmp_path / "policy.toml").write_text("[severity]\nP304 = 'off'\n", encoding="utf-8")
    project.files_changed()
    assert project.snapshot(path).config.path == tmp_path / "policy.toml" and len(looked) == 1


def test_the_samples_message_names_the_first_records_only() -> None:
    """A samples file of thousands of listings: the sentence names the first ``SHOWN``
    records of each list and how many more; the command's result keeps every one."""
    from dsl.lsp.lenses import SHOWN, samples_message

    n = 1000
    result = {"rule": "p.r", "samples": "samples.jsonl", "applied": list(range(1, n + 1)), "overridden": [3],
              "decisions": ["block"] * n}
    text = samples_message(result)
    assert text.startswith(f"p.r applies to {n} of the {n} listings of samples.jsonl (records 1, 2, 3,")
    assert f", {SHOWN} … and {n - SHOWN} more)" in text and "; overridden on records 3." in text
    assert text.endswith(f"{SHOWN}: block … and {n - SHOWN} more") and len(text) < 1000
    small = samples_message({**result, "applied": [1], "decisions": ["block", "allow"]})
    assert small.endswith("(records 1); overridden on records 3. Decisions: 1: block, 2: allow")
