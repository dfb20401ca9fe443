"""The VS Code extension in editors/vscode/: its JSON files are valid and agree with each
other, the TextMate grammar's keywords are the grammar's (grammar/policy.lark), the file is
what gen_grammar.py writes, and the client starts `policy lsp`. No npm install: nothing
here needs Node.js, except the syntax check of extension.js when `node` is on the PATH."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dsl.syntax.driver import keywords

ROOT = Path(__file__).resolve().parents[1]
VSCODE = ROOT / "editors" / "vscode"


def load(name: str) -> Any:
    return json.loads((VSCODE / name).read_text(encoding="utf-8"))


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_grammar", VSCODE / "gen_grammar.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tm_keywords(grammar: dict[str, Any]) -> dict[str, set[str]]:
    """Scope to the words of the grammar's keyword patterns."""
    out = {}
    for pattern in grammar["repository"]["keyword"]["patterns"]:
        m = re.search(r"\(\?:([a-z|]+)\)", pattern["match"])
        assert m, pattern
        out[pattern["name"]] = set(m[1].split("|"))
    return out


def test_package_json() -> None:
    package = load("package.json")
    (language,) = package["contributes"]["languages"]
    assert language["id"] == "policy" and language["extensions"] == [".policy"]
    assert (VSCODE / language["configuration"]).is_file()
    (grammar,) = package["contributes"]["grammars"]
    assert grammar["language"] == "policy"
    assert grammar["scopeName"] == load(grammar["path"])["scopeName"] == "source.policy"
    assert (VSCODE / package["main"]).is_file()
    assert "vscode-languageclient" in package["dependencies"]
    assert "onLanguage:policy" in package["activationEvents"]
    setting = package["contributes"]["configuration"]["properties"]["policy.server.command"]
    assert setting["default"] == ["policy", "lsp"]


def test_language_configuration() -> None:
    conf = load("language-configuration.json")
    assert conf["comments"] == {"lineComment": "#"}
    assert {tuple(b) for b in conf["brackets"]} == {("[", "]"), ("(", ")"), ("{", "}")}
    closing = {p["open"]: p["close"] for p in conf["autoClosingPairs"]}
    assert closing == {"[": "]", "(": ")", "{": "}", "'": "'", '"': '"', "`": "`"}


def test_textmate_keywords_are_the_grammars() -> None:
    """Every keyword of grammar/policy.lark, read two ways (the generator's own reading of
    the file, and the parser's), is highlighted, in exactly one group."""
    groups = tm_keywords(load("syntaxes/policy.tmLanguage.json"))
    words = [w for ws in groups.values() for w in ws]
    assert len(words) == len(set(words)), "a keyword in two groups"
    assert set(words) == set(keywords().values()) == generator().keywords()


def test_textmate_grammar_is_generated() -> None:
    gen = generator()
    wanted = gen.text(gen.keywords())
    assert (VSCODE / "syntaxes" / "policy.tmLanguage.json").read_text(encoding="utf-8") == wanted, \
        "syntaxes/policy.tmLanguage.json is out of date: run python editors/vscode/gen_grammar.py"


def test_generator_refuses_a_group_word_the_grammar_lacks() -> None:
    gen = generator()
    with pytest.raises(SystemExit, match="'block'"):
        gen.grouped(set(keywords().values()) - {"block"})


def scopes(grammar: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """The grammar's simple patterns (Oniguruma's syntax here is also Python's)."""
    repo = grammar["repository"]
    flat = [repo["comment"], *repo["string"]["patterns"], repo["quoted-name"], *repo["keyword"]["patterns"],
            repo["number"], repo["operator"]]
    return [(p["name"], re.compile(p["match"])) for p in flat]


def scope_of(grammar: dict[str, Any], line: str, word: str) -> str | None:
    """The scope of the first match that covers ``word``'s first occurrence in ``line``."""
    start = line.index(word)
    for name, pattern in scopes(grammar):
        for m in pattern.finditer(line):
            if m.start() <= start and start + len(word) <= m.end():
                return name
    return None


def test_highlighting_reads_words_whole() -> None:
    grammar = load("syntaxes/policy.tmLanguage.json")
    line = "rule r: block title contains 'flag' penalty close-account  # block"
    assert scope_of(grammar, line, "block") == "keyword.control.effect.policy"
    assert scope_of(grammar, line, "contains") == "keyword.operator.word.policy"
    assert scope_of(grammar, line, "'flag'") == "string.quoted.single.policy"
    assert scope_of(grammar, line, "close-account") is None  # a name, though `close` is a keyword
    assert scope_of(grammar, "rule r: flag blocks > 2", "blocks") is None
    assert scope_of(grammar, "rule r: flag `rule` exists", "`rule`") == "variable.other.quoted.policy"
    assert scope_of(grammar, "rule r: from 2021-10-08 block", "2021-10-08") == "constant.numeric.policy"
    regex = re.compile(grammar["repository"]["regex"]["match"])
    assert regex.search("rule r: flag title matches /a#b\\/c/i")[2] == "/a#b\\/c/i"  # type: ignore[index]
    declaration = re.compile(grammar["repository"]["declaration"]["match"])
    assert declaration.search("ladder escalate = warn seller")[2] == "escalate"  # type: ignore[index]


def test_extension_starts_the_server() -> None:
    source = (VSCODE / "extension.js").read_text(encoding="utf-8")
    assert 'require("vscode-languageclient/node")' in source
    assert 'get("server.command", ["policy", "lsp"])' in source
    # The settings the server reads as initializationOptions (dsl/lsp/server.py).
    for option in ("analysisDelay", "analysisBudget"):
        assert f'{option}: settings.get("{option}"' in source, option
        assert f"policy.{option}" in load("package.json")["contributes"]["configuration"]["properties"], option
    assert "TransportKind.stdio" in source


def test_extension_js_is_valid_javascript() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on the PATH: extension.js is not syntax-checked (test_extension_starts_the_server "
                    "still reads it)")
    done = subprocess.run([node, "--check", str(VSCODE / "extension.js")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_server_command_exists() -> None:
    """The command the extension and the Neovim and Helix snippets start."""
    import click

    from dsl.cli import main

    command = main.get_command(click.Context(main), "lsp")
    assert command is not None, "policy has no lsp command"
    command.make_context("lsp", [])
