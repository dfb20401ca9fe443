"""dsl/syntax uses Lark's public API only, keeps comments per parse, and learns the tree's
shapes from the grammar (issue 11, item 4)."""

from __future__ import annotations

import ast
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.syntax import driver, parse
from dsl.syntax.tree import learn_shapes

_SYNTAX = Path(__file__).resolve().parents[1] / "dsl" / "syntax"


def test_only_lark_public_modules_and_attributes() -> None:
    """No import of Lark's parser or lexer internals, no private attribute read."""
    for source in sorted(_SYNTAX.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lark"):
                assert node.module in ("lark", "lark.exceptions", "lark.lark"), (source.name, node.module)
            if isinstance(node, ast.Attribute):
                name = node.attr
                assert not (name.startswith("_") and not name.startswith("__")), (source.name, name)


def test_comments_of_parses_in_threads_stay_apart() -> None:
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        text = "".join(f"# c{n}-{i}\nrule r{i}: block category 'x' # t{n}-{i}\n" for i in range(200))
        f, diags = parse(text, f"{n}.policy")
        assert diags == []
        results[n] = [c.text for c in f.comments]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        assert results[n] == [x for i in range(200) for x in (f"# c{n}-{i}", f"# t{n}-{i}")]


def test_a_name_that_keeps_and_drops_a_token_type_is_refused() -> None:
    class Sym:
        def __init__(self, name: str, filter_out: bool):
            self.name, self.filter_out, self.is_term = name, filter_out, True

    class Options:
        expand1 = False
        template_source = None

    class Rule:
        def __init__(self, filter_out: bool):
            self.alias, self.options, self.expansion = None, Options(), [Sym("TRUE", filter_out)]
            self.origin = type("O", (), {"name": "atom"})()

    assert learn_shapes([Rule(True)]) == {"atom": (["TRUE"], False)}
    with pytest.raises(ValueError, match="both keeps and drops"):
        learn_shapes([Rule(True), Rule(False)])


def test_a_broken_shapes_file_is_learnt_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = driver.grammar_text()
    folder = driver.cache_folder()
    assert folder is not None and folder.is_relative_to(tmp_path)
    first = driver._shapes(text, folder, "k")
    (saved,) = folder.glob("shapes-k.json")
    saved.write_text("{not json", encoding="utf-8")
    assert driver._shapes(text, folder, "k") == first
    assert driver._shapes(text, None, "k") == first
    # JSON still, but not what was written (each made every parse fail with a traceback, or
    # read '[' as a date): learnt again, and written anew
    good = saved.read_text(encoding="utf-8")
    doc = json.loads(good)
    renamed = json.dumps({**doc, "shapes": {k: [[t.replace("LSQB", "LSYB") for t in v[0]], v[1]]
                                            for k, v in doc["shapes"].items()}})
    for damaged in ("null", "[]", "{}", '{"start": [[], false]}', renamed,
                    json.dumps({"sha256": doc["sha256"], "shapes": {"start": [[], False]}})):
        saved.write_text(damaged, encoding="utf-8")
        assert driver._shapes(text, folder, "k") == first
        assert saved.read_text(encoding="utf-8") == good
    doc["shapes"]["start"] = [[1], False]
    doc["sha256"] = driver._shapes_digest(doc["shapes"])
    assert driver._checked_shapes(doc) is None  # a digest that fits, contents of another kind


def test_the_lexer_tokens_go_on_after_a_character_no_terminal_matches() -> None:
    toks = driver.tokens("rule r: block title == 'open\nset é = [1]")
    assert [(t.type, t.value) for t in toks][:6] == [("RULE", "rule"), ("NAME", "r"), ("COLON", ":"),
                                                    ("BLOCK", "block"), ("TITLE", "title"), ("CMP", "==")]
    assert ("?", "'") in [(t.type, t.value) for t in toks] and ("?", "é") in [(t.type, t.value) for t in toks]
    assert all(toks[i].start_pos < toks[i + 1].start_pos for i in range(len(toks) - 1))


def test_keywords_are_the_literal_words_of_the_grammar() -> None:
    from dsl.syntax.driver import keywords
    words = keywords()
    assert words["RULE"] == "rule" and words["TITLE"] == "title"
    assert "COMMA" not in words and "CMP" not in words and "NAME" not in words


def test_a_name_hint_names_only_keywords() -> None:
    from dsl.syntax.hints import name_hint
    assert name_hint("blok", {"BLOCK", "FLAG", "ALLOW"}) == "did you mean `block`?"
    assert name_hint("comm", {"COMMA", "CMP"}) is None  # punctuation is not a word to suggest
    assert name_hint("blockcategory", {"BLOCK"}) is not None and "put a space after `block`" in str(
        name_hint("blockcategory", {"BLOCK"}))


def _tokens_by_restarting(text: str) -> list[tuple[str, str, int]]:
    """The oracle: lex the whole rest again after every stray character."""
    from lark.exceptions import UnexpectedCharacters

    from dsl.syntax.driver import lark
    from dsl.syntax.tree import lex_error_offset
    found, pos = [], 0
    while pos < len(text):
        try:
            for t in lark().lex(text[pos:]):
                found.append((t.type, t.value, (t.start_pos or 0) + pos))
            break
        except UnexpectedCharacters as e:
            at = pos + lex_error_offset(e)
            found.append(("?", text[at], at))
            pos = at + 1
    return found


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["rule", " r", ":", " block", " category", " 'X'", "'", "\n", "中文", "é", "§",
                                 "$", " 7 days", "/re/", "`f`", "# c\n", "  ", "==", "mentions"]), max_size=30),
       st.sampled_from([4096, 1, 7]))
def test_tokens_agree_with_relexing_the_rest_after_each_stray_character(pieces: list[str], piece: int) -> None:
    from dsl.syntax.driver import tokens
    text = "".join(pieces)
    default, driver._PIECE = driver._PIECE, piece  # small pieces: many cuts at line ends
    try:
        assert [(str(t.type), str(t.value), t.start_pos) for t in tokens(text)] == _tokens_by_restarting(text)
    finally:
        driver._PIECE = default


def test_a_long_run_of_stray_characters_lexes_in_linear_time() -> None:
    from dsl.syntax.driver import tokens
    text = "中文" * 50_000 + "\nrule r: block category 'X'\n"
    toks = tokens(text)
    assert len(toks) == 100_000 + 6 and toks[-1].value == "'X'"


def _age(path: Path, days: float) -> None:
    then = time.time() - days * 24 * 3600
    os.utime(path, (then, then), follow_symlinks=False)


def test_the_tables_and_shapes_of_other_grammars_go_once_unused(tmp_path: Path) -> None:
    stale = [tmp_path / "lark-0123456789abcdef.cache", tmp_path / "shapes-0123456789abcdef.json"]
    recent, other = tmp_path / "lark-fedcba9876543210.cache", tmp_path / "notes-0123456789abcdef.json"
    for path in (*stale, recent, other):
        path.write_bytes(b"x")
    link = tmp_path / "lark-aaaaaaaaaaaaaaaa.cache"
    link.symlink_to(other)
    for path in (*stale, other, link):
        _age(path, 31)
    _age(recent, 29)  # used within the month: another installed version's, maybe
    assert sorted(driver.remove_unused(tmp_path)) == sorted(map(str, stale))
    assert recent.exists() and other.exists() and link.is_symlink()


def test_new_tables_sweep_the_unused_ones_and_tables_read_are_marked_used(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = driver.cache_folder()
    assert folder is not None
    stale = folder / "lark-0123456789abcdef.cache"
    stale.write_bytes(b"x")
    _age(stale, 31)
    driver.lark.__wrapped__()  # this grammar's tables are new here: the stale ones go
    assert not stale.exists()
    (tables,) = folder.glob("lark-*.cache")
    _age(tables, 40)
    driver.lark.__wrapped__()  # read from the cache, and marked used
    assert time.time() - tables.stat().st_mtime < 600
    assert tables.exists()


def test_a_cache_folder_that_cannot_be_searched_leaves_the_parser_working(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of this user's without the right to search it (mode 0600, which root
    ignores: the refusal is simulated) raised PermissionError from the check of which
    tables are new, and every parse failed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = driver.cache_folder()
    assert folder is not None
    stat_of = os.stat

    def refused(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).startswith(str(folder) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return stat_of(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", refused)
    parser = driver.lark.__wrapped__()
    assert parser.parse("policy p\nrule r: block category 'A'\n", start="start") is not None
