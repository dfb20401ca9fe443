"""The language server's pieces without a client: the front end's entry points for texts
in memory, and the lsp modules' functions (tests/test_lsp.py drives the server itself)."""

from __future__ import annotations

from pathlib import Path

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
