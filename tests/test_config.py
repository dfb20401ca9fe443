"""Configuration (`[tool.policy]`, `policy.toml`, `--config`) and suppression comments
(`# policy: ignore[…]`): spec section 6, P600 and P601."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import dsl
from dsl.checking.config import discover, find_config, read_config
from dsl.checking.tomlpos import line_column, locate
from dsl.cli import main

IVORY = ("policy ivory\n"
         "rule all-ivory: block mentions 'ivory'\n"
         "rule carved: block mentions 'carved ivory'\n")
"""`carved` is redundant (P301, a warning)."""


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout + r.stderr


def findings(*args: str) -> list[dict]:
    code, out = run("check", *args, "--format", "json")
    assert code in (0, 1), out
    return json.loads(out)


def keys(found: list[dict]) -> list[tuple[str, str, int, bool]]:
    return sorted((Path(f["file"]).name, f["code"], f["line"], bool(f.get("suppressed"))) for f in found)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# ------------------------------------------------------------------ positions in TOML


def test_locate_finds_keys_in_headers_inline_tables_dotted_keys_and_arrays() -> None:
    text = ('[tool.policy]\n'
            'severity = { P301 = "error", "P400" = \'off\' }  # a comment\n'
            'exclude = [\n  "a",  # why\n  "b\\"c",\n]\n'
            'per-file."x/**" = { P400 = "off" }\n'
            '[tool.policy.per-file."y"]\nP300 = """off"""\n')
    tomllib.loads(text)
    places = locate(text)

    def at(*path: object) -> tuple[int, int]:
        return line_column(text, places[tuple(path)].key_start)

    assert at("tool", "policy", "severity", "P301") == (2, 14)
    assert at("tool", "policy", "severity", "P400") == (2, 30)
    assert at("tool", "policy", "exclude", 1) == (5, 3)
    assert at("tool", "policy", "per-file", "x/**", "P400") == (7, 21)
    assert at("tool", "policy", "per-file", "y", "P300") == (9, 1)
    p = places[("tool", "policy", "severity", "P400")]
    assert text[p.value_start:p.value_end] == "'off'"


# ------------------------------------------------------------------ reading and P600


def p600(tmp_path: Path, toml: str, name: str = "policy.toml") -> list[tuple[int, int, str, str | None]]:
    (tmp_path / name).write_text(toml, encoding="utf-8")
    cfg = read_config(tmp_path / name)
    assert all(d.code == "P600" and d.severity == "error" for d in cfg.diagnostics)
    return [(d.span.line, d.span.column, d.message, d.hint) for d in cfg.diagnostics]


def test_a_good_configuration_reads_without_findings(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(
        'severity = { P301 = "error", P304 = "off", P100 = "error" }\nexclude = ["legacy"]\n'
        '[per-file."old/*.policy"]\nP400 = "off"\n')
    cfg = read_config(tmp_path / "policy.toml")
    assert cfg.diagnostics == ()
    assert dict(cfg.severity) == {"P301": "error", "P304": "off", "P100": "error"}
    assert cfg.exclude == ("legacy",)
    assert cfg.per_file == (("old/*.policy", (("P400", "off"),)),)


def test_a_configuration_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    # as a policy file may (an editor's); tomllib refuses one: it was a P600 "invalid TOML"
    (tmp_path / "policy.toml").write_text('\ufeffseverity = { P301 = "error" }\nexclud = ["x"]\n', encoding="utf-8")
    cfg = read_config(tmp_path / "policy.toml")
    assert dict(cfg.severity) == {"P301": "error"}
    [unknown] = cfg.diagnostics
    assert unknown.span is not None and (unknown.span.line, unknown.span.column) == (2, 1)
    (tmp_path / "pyproject.toml").write_text('\ufeff[tool.policy]\nseverity = { P304 = "off" }\n', encoding="utf-8")
    (tmp_path / "policy.toml").unlink()
    found = discover([tmp_path])
    assert found.path is not None and found.path.name == "pyproject.toml" and dict(found.severity) == {"P304": "off"}


def test_unknown_key_with_a_suggestion(tmp_path: Path) -> None:
    [(line, col, message, hint)] = p600(tmp_path, '\nexclud = ["x"]\n')
    assert (line, col) == (2, 1) and "unknown configuration key 'exclud'" in message
    assert hint == "did you mean 'exclude'?"


def test_unknown_code_and_severity_point_at_the_entry(tmp_path: Path) -> None:
    found = p600(tmp_path, 'severity = { P301 = "warn" }\n[per-file."a"]\np400 = "off"\n')
    assert found[0][:2] == (1, 21) and "unknown severity 'warn' for P301" in found[0][2]
    assert found[0][3] == "did you mean 'warning'?"
    assert found[1][:2] == (3, 1) and "unknown code 'p400'" in found[1][2]
    assert found[1][3] == "codes are written in capitals: P400"


def test_errors_that_stop_loading_cannot_be_lowered(tmp_path: Path) -> None:
    [(line, col, message, _)] = p600(tmp_path, '[tool.policy]\nseverity.P203 = "warning"\n', "pyproject.toml")
    assert (line, col) == (2, 1) and "P203 is an error that cannot be lowered or turned off" in message


def test_several_problems_on_one_line_are_one_p600(tmp_path: Path) -> None:
    [(line, col, message, _)] = p600(tmp_path, 'severity = { P100 = "off", P999 = "warning" }\n')
    assert (line, col) == (1, 14)
    assert "P100" in message and "unknown code 'P999'" in message


def test_wrong_shapes(tmp_path: Path) -> None:
    found = p600(tmp_path, 'severity = "error"\nexclude = ["ok", 3]\nper-file = { "a" = 1 }\n')
    assert [(line, col) for line, col, _, _ in found] == [(1, 1), (2, 18), (3, 14)]


def test_toml_syntax_error_is_p600_at_its_place(tmp_path: Path) -> None:
    [(line, col, message, _)] = p600(tmp_path, 'exclude = ["a"]\nseverity = { P301 = }\n')
    assert (line, col) == (2, 21) and message.startswith("the configuration is not valid TOML")


def test_a_bad_entry_is_left_out_and_the_rest_applies(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY, "policy.toml": 'severity = { P301 = "error", P999 = "off" }\n'})
    found = findings(str(tmp_path))
    assert keys(found) == [("ivory.policy", "P301", 3, False), ("policy.toml", "P600", 1, False)]
    assert {f["code"]: f["severity"] for f in found}["P301"] == "error"


# ------------------------------------------------------------------ finding the configuration


def test_search_goes_up_from_the_first_path_and_prefers_policy_toml(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.policy]\n", "a/b/x.policy": IVORY,
                     "a/pyproject.toml": "[project]\nname = 'x'\n"})
    assert find_config(tmp_path / "a" / "b") == tmp_path / "pyproject.toml"  # a/'s has no [tool.policy]
    assert find_config(tmp_path / "a" / "b" / "x.policy") == tmp_path / "pyproject.toml"
    (tmp_path / "policy.toml").write_text("")
    assert find_config(tmp_path / "a") == tmp_path / "policy.toml"


def test_no_configuration(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY})
    assert discover([tmp_path]).path is None
    assert keys(findings(str(tmp_path))) == [("ivory.policy", "P301", 3, False)]


def test_config_option_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"p/ivory.policy": IVORY, "elsewhere.toml": 'severity = { P301 = "off" }\n',
                     "p/policy.toml": 'severity = { P301 = "error" }\n'})
    code, out = run("check", str(tmp_path / "p"), "--config", str(tmp_path / "elsewhere.toml"))
    assert code == 0 and "no problems found" in out
    code, out = run("check", str(tmp_path / "p"), "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "Traceback" not in out


def test_p600_names_the_toml_file_in_every_format(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": "policy ivory\nrule r: block mentions 'jade'\n",
                     "policy.toml": 'severity = { P100 = "off" }\n'})
    [f] = findings(str(tmp_path))
    assert f["code"] == "P600" and Path(f["file"]) == (tmp_path / "policy.toml").resolve()
    code, out = run("check", str(tmp_path))
    assert code == 1 and 'severity = { P100 = "off" }' in out and "^^^" in out


# ------------------------------------------------------------------ severities


def test_severity_changes_reporting_and_exit_status_only(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY + "block mentions 'jade'\n",
                     "policy.toml": 'severity = { P301 = "error", P400 = "off" }\n'})
    found = findings(str(tmp_path))
    assert [(f["code"], f["severity"]) for f in found] == [("P301", "error")]
    assert run("check", str(tmp_path))[0] == 1
    (tmp_path / "policy.toml").write_text('severity = { P301 = "info", P400 = "off" }\n')
    assert run("check", str(tmp_path), "--strict")[0] == 0


def test_per_file_wins_over_severity(tmp_path: Path) -> None:
    write(tmp_path, {"new/ivory.policy": IVORY, "old/legacy.policy": IVORY.replace("ivory\n", "legacy\n", 1),
                     "policy.toml": 'severity = { P301 = "error" }\nper-file = { "old/**" = { P301 = "off" } }\n'})
    assert keys(findings(str(tmp_path))) == [("ivory.policy", "P301", 3, False)]


# ------------------------------------------------------------------ exclude


def test_exclude_leaves_files_out_of_check_test_and_eval(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": "policy ivory\nrule r: block mentions 'ivory'\n",
                     "fixtures/broken.policy": "policy broken\nrule r: blok\n",
                     "policy.toml": 'exclude = ["fixtures"]\n'})
    assert findings(str(tmp_path)) == []
    assert dsl.load(tmp_path).decide({"title": "ivory"}, at="2024-01-01").effect == "block"
    listing = tmp_path / "l.json"
    listing.write_text('{"title": "ivory"}')
    code, out = run("eval", str(tmp_path), "--input", str(listing), "--at", "2024-01-01")
    assert code == 0 and '"block"' in out


def test_what_cannot_be_read_in_an_excluded_folder_is_no_problem(tmp_path: Path) -> None:
    from dsl.checking.config import read_config
    from dsl.checking.loader import Found, find_policy_files
    from dsl.diagnostics import make
    from dsl.span import Span

    write(tmp_path, {"ivory.policy": "policy ivory\n\nrule r: block mentions 'ivory'\n",
                     "policy.toml": 'exclude = ["drafts"]\n'})
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "old.policy").symlink_to("/nonexistent")
    assert findings(str(tmp_path)) == []
    assert dsl.load(tmp_path).decide({"title": "ivory"}, at="2024-01-01").effect == "block"
    assert run("fmt", "--check", str(tmp_path)) == (0, "")
    # named on the command line, the folder is read, and its link reported
    assert [f["code"] for f in findings(str(tmp_path / "drafts"))] == ["P001"]
    # a folder that cannot be listed (root reads any: the finding is made here)
    cfg = read_config(tmp_path / "policy.toml")
    unlisted = make("P001", "cannot list the directory", Span(str(tmp_path / "drafts" / "deep"), 1, 1, 1, 2))
    elsewhere = make("P001", "cannot list the directory", Span(str(tmp_path / "kept"), 1, 1, 1, 2))
    found = Found(find_policy_files([tmp_path]).files, (unlisted, elsewhere)).kept(cfg, [tmp_path])
    assert found.problems == (elsewhere,) and [f.name for f in found.files] == ["ivory.policy"]


def test_what_is_named_is_never_excluded(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY, "fixtures/more/broken.policy": "policy broken\nrule r: blok\n",
                     "policy.toml": 'exclude = ["fixtures", "ivory.policy"]\n'})
    named_dir = findings(str(tmp_path / "fixtures"), "--no-analysis")
    assert [f["code"] for f in named_dir] == ["P100"]
    named_file = findings(str(tmp_path / "ivory.policy"))
    assert [f["code"] for f in named_file] == ["P301"]


def test_exclude_globs() -> None:
    from dsl.checking.config import Config

    root = Path("/r")
    cfg = Config(root / "policy.toml", exclude=("tests/golden", "**/*_draft.policy", "scratch"))
    assert cfg.excludes("/r/tests/golden/a.policy")
    assert not cfg.excludes("/r/tests/other/a.policy")
    assert cfg.excludes("/r/x/y/z_draft.policy")
    assert cfg.excludes("/r/deep/scratch/a.policy")  # a name without '/' matches at any depth
    assert not cfg.excludes("/elsewhere/scratch/a.policy")
    assert not cfg.excludes("/r/tests/golden/a.policy", below="/r/tests/golden")


def test_a_leading_slash_or_dot_slash_anchors_a_glob_at_the_configurations_folder() -> None:
    from dsl.checking.config import Config

    for glob in ("/drafts", "./drafts", "/drafts/"):
        cfg = Config(Path("/r/policy.toml"), exclude=(glob,))
        assert cfg.excludes("/r/drafts/d.policy") and not cfg.excludes("/r/team/drafts/d.policy"), glob
    for glob in ("drafts", "drafts/"):
        assert Config(Path("/r/policy.toml"), exclude=(glob,)).excludes("/r/team/drafts/d.policy"), glob
    cfg = Config(Path("/r/policy.toml"), exclude=("[!a-c]x", "[-]y"))
    assert cfg.excludes("/r/dx/a.policy") and not cfg.excludes("/r/ax/a.policy") and cfg.excludes("/r/-y")


def test_leading_slash_exclude_in_a_project(tmp_path: Path) -> None:
    write(tmp_path, {"drafts/d.policy": "policy d1\nrule r: block mentions 'a'\n",
                     "team/drafts/d.policy": "policy d2\nrule r: blok\n",
                     "policy.toml": 'exclude = ["./drafts", "/team/drafts/"]\n'})
    write(tmp_path, {"team/k.policy": "policy k\nrule r: block mentions 'c'\n"})
    assert findings(str(tmp_path)) == []
    write(tmp_path, {"policy.toml": 'exclude = ["/drafts"]\n'})
    assert [(Path(f["file"]).parent.name, f["code"]) for f in findings(str(tmp_path))] == [("drafts", "P100")]


@pytest.mark.parametrize("toml", ['exclude = ["[z-a]"]\n', 'per-file = { "x/[z-a]" = { P400 = "off" } }\n',
                                  'exclude = ["../x"]\n', 'exclude = ["a/./b"]\n'])
def test_a_glob_that_cannot_match_is_p600_at_the_glob(tmp_path: Path, toml: str) -> None:
    write(tmp_path, {"a.policy": "policy a\n\nrule r: block mentions 'x'\n", "policy.toml": toml})
    [p600] = findings(str(tmp_path))
    assert p600["code"] == "P600" and p600["line"] == 1 and p600["column"] == toml.index('"') + 1
    assert "[z-a]" not in toml or "bad character range" in p600["message"]
    assert run("fmt", "--check", str(tmp_path))[0] == 1
    listing = tmp_path / "l.json"
    listing.write_text('{"title": "x"}')
    code, out = run("eval", str(tmp_path), "--input", str(listing), "--at", "2024-01-01")
    assert code == 1 and "P600" in out
    with pytest.raises(dsl.PolicyError):
        dsl.load(tmp_path)


def test_the_projects_own_configuration_leaves_tests_out() -> None:
    root = Path(__file__).resolve().parents[1]
    cfg = read_config(root / "pyproject.toml")
    assert cfg.diagnostics == () and cfg.excludes(root / "tests" / "golden" / "format" / "x.policy")
    assert not cfg.excludes(root / "policies" / "alibaba" / "crypto-2021.policy")


# ------------------------------------------------------------------ suppression comments


def test_trailing_comment_on_any_line_of_a_statement(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": "policy ivory\nrule all-ivory: block mentions 'ivory'\n"
                                     "rule carved: block mentions 'carved ivory'\n"
                                     "  unless mentions 'jade'  # policy: ignore[P301]\n"})
    found = findings(str(tmp_path))
    assert keys(found) == [("ivory.policy", "P301", 3, True)]
    assert run("check", str(tmp_path), "--strict")[0] == 0
    assert "no problems found" in run("check", str(tmp_path))[1]


def test_the_directive_in_another_case_is_said_to_suppress_nothing(tmp_path: Path) -> None:
    """`# Policy: Ignore[P301]` looks like a suppression and is none: its finding stayed,
    and nothing said why."""
    write(tmp_path, {"ivory.policy": "policy ivory\nrule all-ivory: block mentions 'ivory'\n"
                                     "rule carved: block mentions 'carved ivory'  # Policy: IGNORE[P301]\n"})
    found = findings(str(tmp_path))
    assert keys(found) == [("ivory.policy", "P301", 3, False), ("ivory.policy", "P601", 3, False)]
    [p601] = [f for f in found if f["code"] == "P601"]
    assert "lower case" in p601["message"] and p601["column"] == 45


def test_each_comment_covers_its_own_statement_among_many(tmp_path: Path) -> None:
    rules = "".join(f"rule carved{i}: block mentions 'carved ivory {i}'" + ("  # policy: ignore[P301]" if i % 2 else "")
                    + "\n" for i in range(6))
    write(tmp_path, {"ivory.policy": "policy ivory\nrule all-ivory: block mentions 'ivory'\n" + rules})
    found = findings(str(tmp_path))
    assert [(line, suppressed) for _, code, line, suppressed in keys(found) if code == "P301"] == [
        (3 + i, bool(i % 2)) for i in range(6)]
    assert not [f for f in found if f["code"] == "P601"]


def test_a_trailing_comment_covers_every_statement_on_its_line_before_and_after_fmt(tmp_path: Path) -> None:
    text = ("policy p\nrule a: block mentions 'ivory'\n"
            "rule b: block mentions 'carved ivory' rule c: block mentions 'old ivory'  # policy: ignore[P301]\n")
    write(tmp_path, {"p.policy": text})
    found = findings(str(tmp_path))
    assert keys(found) == [("p.policy", "P301", 3, True), ("p.policy", "P301", 3, True)]
    formatted = dsl.format_source(text)
    assert formatted.count("# policy: ignore[P301]") == 2  # a copy at the end of each statement's line
    write(tmp_path, {"p.policy": formatted})
    assert keys(findings(str(tmp_path))) == [("p.policy", "P301", 4, True), ("p.policy", "P301", 5, True)]
    assert dsl.format_source(formatted) == formatted
    # a prose comment stays once, after the last statement of its line
    assert dsl.format_source(text.replace("policy: ignore[P301]", "old stock")).count("# old stock") == 1


def test_comment_alone_covers_the_next_line_only(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": "policy ivory\nrule all-ivory: block mentions 'ivory'\n"
                                     "# policy: ignore[P301, P304]\n"
                                     "rule carved: block mentions 'carved ivory'\n"
                                     "# policy: ignore[P301]\n\n"
                                     "rule old: block mentions 'old ivory'\n"})
    found = findings(str(tmp_path))
    assert keys(found) == [("ivory.policy", "P301", 4, True), ("ivory.policy", "P301", 7, False),
                           ("ivory.policy", "P601", 3, False), ("ivory.policy", "P601", 5, False)]
    p601 = sorted((f["line"], f["column"], f["message"]) for f in found if f["code"] == "P601")
    assert p601[0][:2] == (3, 24) and "P304" in p601[0][2]  # at the code in the comment
    assert p601[1][:2] == (5, 18) and "covers no statement" in p601[1][2]
    assert {f["severity"] for f in found if f["code"] == "P601"} == {"warning"}


def test_codes_that_cannot_be_suppressed(tmp_path: Path) -> None:
    write(tmp_path, {"x.policy": "policy x\nrule r: block penalty escalte  # policy: ignore[P201, P12, P999]\n"})
    found = findings(str(tmp_path), "--no-analysis")
    assert [(f["code"], f["column"], bool(f.get("suppressed"))) for f in found] == [
        ("P201", 23, False), ("P601", 49, False), ("P601", 55, False), ("P601", 60, False)]
    messages = [f["message"] for f in found if f["code"] == "P601"]
    assert "P201 cannot be suppressed" in messages[0] and "'P12' is not a diagnostic code" in messages[1]


EBAY = "policy ebay-2015\nrule battle-flag: block mentions 'confederate flag'\n"
KASPERSKY = "policy us-kaspersky\nrule ultraav: allow mentions 'ultraav' overrides ebay-2015.battle-flag\n"
"""An allow of one policy lifting another's rule: P215, a warning of P2xx."""


def test_p215_a_warning_is_configured_and_suppressed_as_any_warning(tmp_path: Path) -> None:
    write(tmp_path, {"ebay.policy": EBAY, "kaspersky.policy": KASPERSKY})
    assert keys(findings(str(tmp_path), "--no-analysis")) == [("kaspersky.policy", "P215", 2, False)]
    write(tmp_path, {"kaspersky.policy": KASPERSKY.rstrip("\n") + "  # policy: ignore[P215]\n"})
    assert keys(findings(str(tmp_path), "--no-analysis")) == [("kaspersky.policy", "P215", 2, True)]
    write(tmp_path, {"kaspersky.policy": KASPERSKY, "policy.toml": 'severity = { P215 = "off" }\n'})
    assert findings(str(tmp_path), "--no-analysis") == []
    write(tmp_path, {"policy.toml": 'severity = { P215 = "warning", P214 = "warning" }\n'})
    [p600, p215] = sorted(findings(str(tmp_path), "--no-analysis"), key=lambda f: f["code"], reverse=True)
    assert p600["code"] == "P600" and "P214 is an error" in p600["message"] and "P215" not in p600["message"]
    assert p215["code"] == "P215"
    # which codes are fixed follows from their severity, not their number
    from dsl.diagnostics import CODES, is_fixed

    assert not is_fixed("P215") and is_fixed("P214") and is_fixed("P001") and not is_fixed("P600")
    assert {c for c in CODES if is_fixed(c)} == {c for c, (level, _) in CODES.items()
                                                  if c[:2] in ("P0", "P1", "P2") and level == "error"}


def test_no_unused_verdict_where_the_checks_did_not_run(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY.replace("'carved ivory'\n", "'carved ivory'  # policy: ignore[P301]\n")})
    assert keys(findings(str(tmp_path), "--no-analysis")) == []
    write(tmp_path, {"other.policy": "policy other\nrule r: block category 'X' penalty nope\n"})
    assert [f["code"] for f in findings(str(tmp_path))] == ["P201"]


def test_no_unused_verdict_where_the_analysis_left_the_question_undecided(tmp_path: Path) -> None:
    # `matches` on the raw title and `mentions` on its normalised text: whether `word` is
    # redundant is undecided (P399), so its P301 suppression is not called unused
    write(tmp_path, {"p.policy": "policy p\nrule regex-word: block title matches /bitcoin/i\n"
                                 "rule word: flag title mentions 'bitcoin'  # policy: ignore[P301]\n"})
    assert [(d.code, d.span.line) for d in dsl.check(tmp_path)] == [("P399", 3)]
    # the budget used up before any question: every question is left, none judged
    write(tmp_path, {"p.policy": IVORY.replace("'carved ivory'\n", "'carved ivory'  # policy: ignore[P301, P300]\n")})
    found = dsl.check(tmp_path, analysis_budget=0)
    assert {d.code for d in found} == {"P399"} and 3 in {d.span.line for d in found}
    # a P399 in another statement leaves this one judged
    write(tmp_path, {"p.policy": "policy p\nrule regex-word: block title matches /bitcoin/i\n"
                                 "rule word: flag title mentions 'bitcoin'\n"
                                 "rule jade: block mentions 'jade'  # policy: ignore[P300]\n"})
    assert [(d.code, d.span.line) for d in dsl.check(tmp_path)] == [("P399", 3), ("P601", 4)]


def test_config_off_drops_and_info_counts_nothing(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY.replace("'carved ivory'\n", "'carved ivory'  # policy: ignore[P301]\n"),
                     "policy.toml": 'severity = { P301 = "off" }\n'})
    assert findings(str(tmp_path)) == []  # turned off by configuration: not in the output at all


def test_api_keeps_suppressed_findings_marked(tmp_path: Path) -> None:
    write(tmp_path, {"ivory.policy": IVORY.replace("'carved ivory'\n", "'carved ivory'  # policy: ignore[P301]\n")})
    [d] = dsl.check(tmp_path)
    assert d.code == "P301" and d.suppressed and d.suppressed_by is not None
    assert d.suppressed_by.line == 3 and d.to_dict()["suppressed"] is True


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_suppressed_findings_are_not_shown(tmp_path: Path, fmt: str) -> None:
    write(tmp_path, {"ivory.policy": IVORY.replace("'carved ivory'\n", "'carved ivory'  # policy: ignore[P301]\n")})
    code, out = run("check", str(tmp_path), "--format", fmt, "--strict")
    assert code == 0 and "P301" not in out


def test_a_configuration_found_that_cannot_be_read_is_p600_and_no_set_loads(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Its exclusions would silently not apply (an unreadable pyproject.toml was passed
    over, an unreadable policy.toml was a PermissionError traceback): a P600, and
    ``load`` (eval, scan, test) refuses the set, as for any configuration that is broken."""
    (tmp_path / "legacy").mkdir()
    (tmp_path / "p.policy").write_text("policy p\nrule r: block mentions 'bitcoin'\n", encoding="utf-8")
    (tmp_path / "legacy" / "old.policy").write_text("policy old\nrule e: block mentions 'cheap'\n", encoding="utf-8")
    real_bytes, real_text = Path.read_bytes, Path.read_text

    def refused(self: Path, *args: object, **kwargs: object) -> object:
        if self.name in ("policy.toml", "pyproject.toml"):
            raise PermissionError(13, "Permission denied", str(self))
        return (real_text if kwargs or args else real_bytes)(self, *args, **kwargs)  # type: ignore[arg-type]

    for name, text in (("policy.toml", 'exclude = ["legacy"]\n'),
                       ("pyproject.toml", '[tool.policy]\nexclude = ["legacy"]\n')):
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert dsl.load(tmp_path).policy_set.rules[0].qid == "p.r"  # readable: legacy/ left out
        with monkeypatch.context() as m:
            m.setattr(Path, "read_bytes", refused)
            m.setattr(Path, "read_text", refused)
            (p600,) = [d for d in dsl.check([tmp_path], analysis=False) if d.code == "P600"]
            assert p600.message == "the configuration cannot be read: Permission denied" and p600.severity == "error"
            with pytest.raises(dsl.PolicyError) as refusal:
                dsl.load(tmp_path)
            assert [d.code for d in refusal.value.diagnostics] == ["P600"]
        (tmp_path / name).unlink()
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.policy]\nexclude = ["l\xffegacy"]\n')  # not UTF-8: ours, a P600
    with pytest.raises(dsl.PolicyError) as refusal:
        dsl.load(tmp_path)
    assert [d.message for d in refusal.value.diagnostics] == ["the configuration is not UTF-8"]
