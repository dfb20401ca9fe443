"""Tests for dsl.checking.render: text (golden files), JSON, SARIF 2.1.0, GitHub workflow commands.

Regenerate the golden files with ``UPDATE_GOLDEN=1 python -m pytest tests/test_render.py``
and review the diff."""

from __future__ import annotations

import io
import json
import os
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.checking.render import (
    MAX_LINE_WIDTH,
    render,
    render_github,
    render_json,
    render_sarif,
    render_text,
    use_color,
)
from dsl.diagnostics import Related, make
from dsl.syntax.ast import Span

GOLDEN = Path(__file__).parent / "golden" / "render"
SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sarif-schema-2.1.0.json"
SGR = re.compile(r"\x1b\[[0-9;]*m")

CRYPTO = "policies/alibaba/crypto-2021.policy"
CRYPTO_TEXT = (
    "policy alibaba-crypto-2021\n"
    "  timezone \"Asia/Shanghai\"\n"
    "\n"
    "set coins = ['bitcoin', '比特币', 'ether']\n"
    "\n"
    "ladder escalate = remove listing then close account\n"
    "\n"
    "rule b: block category 'Miners' penalty escalte\n"
    "\trule c:\tblock mentions any ['矿机', 'ASIC'] penalty escalte\n"
    "rule d: from 2021-10-08\n"
    "        block category 'Miners'\n"
)
OTHER = "policies/other.policy"
OTHER_TEXT = "policy other\n\nrule a: block category 'Miners' penalty strict\n"
SOURCES = {CRYPTO: CRYPTO_TEXT, OTHER: OTHER_TEXT}
WITNESS = {"listing": {"category": "Miners", "title": "矿机 S19"},
           "at": "2021-10-20T00:00:00+08:00", "prior_violations": 0}


def sample() -> list:
    """Diagnostics built by hand over CRYPTO_TEXT: a hint, a tab and CJK text before the
    span, notes (one over two lines), a related location in another file and one in a
    file we have no text for, a witness, a span over two lines, no span at all, and a file
    missing from the sources."""
    return [
        make("P201", "unknown ladder 'escalte'", Span(CRYPTO, 8, 41, 8, 48),
             hint="did you mean 'escalate'?"),
        make("P201", "unknown ladder 'escalte'", Span(CRYPTO, 9, 52, 9, 59),
             hint="did you mean 'escalate'?",
             notes=["ladders are declared with 'ladder NAME = ...'",
                    "declared ladders:\nescalate"]),
        make("P304", "rules 'c' and 'a' apply together with different ladders",
             Span(CRYPTO, 9, 2, 9, 8),
             related=[Related(Span(OTHER, 3, 1, 3, 7), "the other rule"),
                      Related(Span("policies/gone.policy", 12, 1, 12, 5), "a third rule")],
             witness=WITNESS),
        make("P300", "rule 'd' can never apply", Span(CRYPTO, 10, 1, 11, 32),
             notes=["its window is empty"]),
        make("P504", "test file without policies", None,
             hint="put the test beside the policies it tests"),
        make("P400", "rule has no name", Span("policies/missing.policy", 4, 1, 4, 6)),
    ]


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run with UPDATE_GOLDEN=1 and review it")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs; run with UPDATE_GOLDEN=1 and review the diff"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def text_above(source_line: str, caret_line: str, mark: str = "^") -> str:
    """The part of a rendered source line that stands above the marks of the line below
    it, measured in terminal columns."""
    start = caret_line.index(mark)
    end = caret_line.rindex(mark) + 1
    out, col = [], 0
    for ch in source_line:
        if start <= col < end:
            out.append(ch)
        col += display_width(ch)
    return "".join(out)


# ------------------------------------------------------------------ text


def test_text_golden() -> None:
    check_golden("sample.txt", render_text(sample(), SOURCES))


def test_text_golden_color() -> None:
    check_golden("sample_color.txt", render_text(sample()[:3], SOURCES, color=True))


def test_text_golden_controls_and_long_lines() -> None:
    text = ("rule x: block title 'a\x00b' penalty p\x1b[2J\n"
            "rule y: block title '\u202eevil' penalty q\r\n"
            "rule z: block " + "category 'x' or " * 30 + "title 'zz' penalty bad\n"
            "rule w: block " + "category 'x' or " * 30 + "title 'zz'\n")
    file = "policies/odd\x07.policy"
    long_col = text.split("\n")[2].index("bad") + 1
    diags = [
        make("P100", "unexpected character '\x00'\nexpected a string", Span(file, 1, 23, 1, 24)),
        make("P201", "unknown ladder 'p\x1b[2J'", Span(file, 1, 34, 1, 39)),
        make("P201", "unknown ladder 'q'", Span(file, 2, 35, 2, 36)),
        make("P201", "unknown ladder 'bad'", Span(file, 3, long_col, 3, long_col + 3)),
        make("P400", "rule has no name", Span(file, 4, 6, 4, 7)),
    ]
    out = render_text(diags, {file: text})
    check_golden("controls.txt", out)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", out)
    assert all(display_width(line) <= MAX_LINE_WIDTH + 20 for line in out.splitlines())


def test_caret_under_span_after_tab_and_cjk() -> None:
    lines = render_text(sample()[1:2], SOURCES).splitlines()
    source = next(line for line in lines if line.startswith("9 |"))
    carets = lines[lines.index(source) + 1]
    assert "\t" not in source
    assert text_above(source, carets) == "escalte"


def test_related_location_is_underlined_and_labelled() -> None:
    lines = render_text(sample()[2:3], SOURCES).splitlines()
    source = next(line for line in lines if line.lstrip().startswith("3 |"))
    marks = lines[lines.index(source) + 1]
    assert text_above(source, marks, "-") == "rule a"
    assert marks.endswith("------ the other rule")
    assert any(line.strip() == "::: policies/gone.policy:12:1: a third rule" for line in lines)


def test_span_over_several_lines_marks_to_end_of_first_line() -> None:
    lines = render_text(sample()[3:4], SOURCES).splitlines()
    source = next(line for line in lines if line.lstrip().startswith("10 |"))
    assert text_above(source, lines[lines.index(source) + 1]) == "rule d: from 2021-10-08"


def test_headline_only_without_span_and_no_excerpt_without_source() -> None:
    out = render_text(sample()[4:], SOURCES)
    assert out == (
        "error[P504]: test file without policies\n"
        "  = hint: put the test beside the policies it tests\n"
        "\n"
        "warning[P400]: rule has no name\n"
        " --> policies/missing.policy:4:1\n"
        "\n"
        "1 error, 1 warning\n"
    )


def test_summary_counts_and_plurals() -> None:
    span = Span(OTHER, 3, 1, 3, 7)
    infos = [make("P304", "x", span), make("P303", "y", span)]
    errors = [make("P201", "z", span)] * 2
    assert render_text(infos, {}).endswith("\n\n2 infos\n")
    assert render_text(errors + infos[:1], {}).endswith("\n\n2 errors, 1 info\n")
    assert render_text([make("P300", "w", span)], {}).endswith("\n\n1 warning\n")


def test_empty_list_renders_nothing() -> None:
    assert render_text([], SOURCES) == ""
    assert render_github([]) == ""
    assert render_json([]) == "[]\n"


def test_color_only_when_asked() -> None:
    plain = render_text(sample(), SOURCES)
    colored = render_text(sample(), SOURCES, color=True)
    assert "\x1b" not in plain
    assert "\x1b[1;31merror\x1b[0m" in colored
    assert "\x1b[1;33mwarning\x1b[0m" in colored
    assert "\x1b[1;36minfo\x1b[0m" in colored
    assert "\x1b[1m[P201]\x1b[0m" in colored
    assert SGR.sub("", colored) == plain


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab =' 比特币矿\t\x00\x1bé", max_size=40), st.data())
def test_caret_always_under_the_span(line: str, data: st.DataObject) -> None:
    col = data.draw(st.integers(1, len(line) + 1))
    end = data.draw(st.integers(col, len(line) + 1))
    diag = make("P100", "m", Span("f.policy", 2, col, 2, end))
    out = render_text([diag], {"f.policy": "first\n" + line + "\nlast"})
    assert not re.search(r"[\x00\x1b\t]", out)
    lines = out.splitlines()
    source = next(x for x in lines if x.startswith("2 |"))
    carets = lines[lines.index(source) + 1]
    assert carets.count("^") >= 1
    shown = source[4:].ljust(len(carets))  # the renderer drops trailing spaces
    if col > len(line) or end == col:  # an empty span: one caret where it starts
        return
    spanned = line[col - 1:end - 1]
    above = text_above(source[:4] + shown, carets)
    if "\t" in spanned:
        assert above.replace(" ", "") == spanned.replace("\t", "").replace(" ", "") \
            .replace("\x00", "\\x00").replace("\x1b", "\\x1b")
    else:
        assert above == spanned.replace("\x00", "\\x00").replace("\x1b", "\\x1b")


# ------------------------------------------------------------------ use_color


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_color(FakeStream(True))
    assert not use_color(FakeStream(False))
    assert not use_color(object())
    closed = FakeStream(True)
    closed.isatty = lambda: (_ for _ in ()).throw(ValueError("closed"))  # type: ignore
    assert not use_color(closed)
    monkeypatch.setenv("TERM", "dumb")
    assert not use_color(FakeStream(True))
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "")
    assert not use_color(FakeStream(True))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(FakeStream(True))


# ------------------------------------------------------------------ render()


def test_render_dispatches() -> None:
    ds = sample()
    assert render(ds, "text", SOURCES) == render_text(ds, SOURCES)
    assert render(ds, "text", SOURCES, color=True) == render_text(ds, SOURCES, color=True)
    assert render(ds, "json", SOURCES) == render_json(ds)
    assert render(ds, "sarif", SOURCES, tool_version="9.9") == \
        render_sarif(ds, SOURCES, tool_version="9.9")
    assert render(ds, "github", SOURCES) == render_github(ds)
    with pytest.raises(ValueError, match="unknown output format"):
        render(ds, "xml", SOURCES)


# ------------------------------------------------------------------ JSON


def test_json_round_trip() -> None:
    ds = sample()
    out = render_json(ds)
    assert out.endswith("\n")
    assert json.loads(out) == [d.to_dict() for d in ds]
    assert "矿机" in out  # non-ASCII kept as it is
    assert out.startswith('[\n  {\n    "code": "P201"')
    first = json.loads(out)[0]
    for key in ("code", "severity", "file", "line", "column", "end_line", "end_column",
                "message"):
        assert key in first
    assert json.loads(render_json(list(reversed(ds)))) == [d.to_dict() for d in reversed(ds)]


def test_json_of_a_file_name_that_is_not_utf8_is_utf8() -> None:
    name = os.fsdecode(b"\xff\xfe.policy")  # as Python reads it: lone surrogates
    out = render_json([make("P400", f"in {name}", Span(name, 1, 1, 1, 2))])
    assert "\\udcff\\udcfe.policy" in out and out.encode("utf-8")  # escaped, so the text is UTF-8
    [d] = json.loads(out)
    assert d["file"] == name and os.fsencode(d["file"]) == b"\xff\xfe.policy"


# ------------------------------------------------------------------ SARIF


def sarif_validators() -> list:
    if not SARIF_SCHEMA.exists():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SARIF_SCHEMA} (it lives in the shared "
                    "folder beside the repository)")
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    declared = jsonschema.validators.validator_for(schema)  # the schema says draft-04
    return [declared(schema), jsonschema.Draft7Validator(schema)]


def test_sarif_is_valid_against_the_official_schema() -> None:
    validators = sarif_validators()
    for diags in (sample(), []):
        log = json.loads(render_sarif(diags, SOURCES, tool_version="0.1.0"))
        for validator in validators:
            errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
            assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_sarif_content() -> None:
    ds = sample()
    log = json.loads(render_sarif(ds, SOURCES, tool_version="1.2.3"))
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "policy" and driver["version"] == "1.2.3"
    assert run["columnKind"] == "unicodeCodePoints"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["P201", "P300", "P304", "P400", "P504"]
    by_id = {r["id"]: r for r in rules}
    assert by_id["P201"]["name"] == "UnknownLadder"
    assert by_id["P201"]["shortDescription"]["text"] == "unknown ladder"
    assert by_id["P304"]["defaultConfiguration"]["level"] == "note"
    assert by_id["P300"]["defaultConfiguration"]["level"] == "warning"
    results = run["results"]
    assert len(results) == len(ds)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    first = results[0]
    assert first["level"] == "error"
    assert first["message"]["text"] == "unknown ladder 'escalte'\nhint: did you mean 'escalate'?"
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": CRYPTO, "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 8, "startColumn": 41, "endLine": 8, "endColumn": 48,
                             "snippet": {"text": "escalte"}}
    p304 = results[2]
    assert p304["level"] == "note"
    assert p304["properties"]["witness"] == WITNESS
    related = p304["relatedLocations"]
    assert [r["id"] for r in related] == [0, 1]
    assert related[0]["message"]["text"] == "the other rule"
    assert related[0]["physicalLocation"]["artifactLocation"]["uri"] == OTHER
    assert related[0]["physicalLocation"]["region"]["snippet"]["text"] == "rule a"
    assert "snippet" not in related[1]["physicalLocation"]["region"]
    p300 = results[3]["locations"][0]["physicalLocation"]["region"]
    assert p300["snippet"]["text"] == "rule d: from 2021-10-08\n        block category 'Miners'"
    assert "locations" not in results[4]  # no span
    assert results[4]["level"] == "error"


def test_sarif_uris() -> None:
    files = ["/abs/dir/a b.policy", "C:\\work\\p\\x.policy", "dir\\sub\\y.policy",
             "c:d.policy", "政策/z.policy", os.fsdecode(b"\xff\xfe.policy"), os.fsdecode(b"/abs/\xff.policy"),
             "\ud800.policy"]
    ds = [make("P400", "m", Span(f, 1, 1, 1, 2)) for f in files]
    log = json.loads(render_sarif(ds, {}, tool_version="0"))
    locs = [r["locations"][0]["physicalLocation"]["artifactLocation"]
            for r in log["runs"][0]["results"]]
    assert locs[0] == {"uri": "file:///abs/dir/a%20b.policy"}
    assert locs[1] == {"uri": "file:///C:/work/p/x.policy"}
    assert locs[2] == {"uri": "dir/sub/y.policy", "uriBaseId": "%SRCROOT%"}
    assert locs[3] == {"uri": "c%3Ad.policy", "uriBaseId": "%SRCROOT%"}
    assert locs[4]["uri"] == "%E6%94%BF%E7%AD%96/z.policy"
    assert locs[5] == {"uri": "%FF%FE.policy", "uriBaseId": "%SRCROOT%"}  # the bytes of a name not UTF-8
    assert locs[6] == {"uri": "file:///abs/%FF.policy"}
    assert locs[7]["uri"] == "%ED%A0%80.policy"  # a lone surrogate given through the API
    uri_chars = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
    assert all(uri_chars.match(loc["uri"]) for loc in locs)


# ------------------------------------------------------------------ GitHub


def test_github_commands() -> None:
    lines = render_github(sample()).splitlines()
    assert lines[0] == (
        f"::error file={CRYPTO},line=8,col=41,endLine=8,endColumn=48,"
        "title=P201 unknown ladder::unknown ladder 'escalte'%0Ahint: did you mean 'escalate'?"
    )
    assert lines[1].endswith("%0Anote: declared ladders:%0Aescalate")
    assert lines[2].startswith(f"::notice file={CRYPTO},line=9,col=2,endLine=9,endColumn=8,"
                               "title=P304 ladders compete::")
    assert f"%0Arelated: {OTHER}:3:1: the other rule" in lines[2]
    # a span over several lines carries no columns (the runner rejects them)
    assert lines[3].startswith(f"::warning file={CRYPTO},line=10,endLine=11,"
                               "title=P300 rule can never apply::")
    assert lines[4] == ("::error title=P504 test file without policies::test file without "
                        "policies%0Ahint: put the test beside the policies it tests")
    assert len(lines) == len(sample())


def test_github_escaping() -> None:
    diag = make("P100", "100% wrong:\r\nfound ',' here\x00", Span("dir/a,b:c%.policy", 2, 3, 2, 4),
                hint="use ':' or ','")
    (line,) = render_github([diag]).splitlines()
    assert line == (
        "::error file=dir/a%2Cb%3Ac%25.policy,line=2,col=3,endLine=2,endColumn=4,"
        "title=P100 syntax error::100%25 wrong:%0D%0Afound ',' here\\x00%0Ahint: use ':' or ','"
    )
    title = make("P207", "m", None)
    assert "title=P207 value outside 'one of'::" in render_github([title])
    windows = make("P400", "m", Span("dir\\x.policy", 1, 1, 1, 2))
    assert "file=dir/x.policy," in render_github([windows])


# ------------------------------------------------------------------ suppressed findings


def suppressed_sample() -> list:
    """A finding that a ``# policy: ignore[…]`` comment suppresses, beside one it does not."""
    import attrs

    kept = make("P400", "rule has no name", Span(CRYPTO, 8, 1, 8, 6))
    hidden = attrs.evolve(make("P301", "rule 'b' is redundant", Span(CRYPTO, 9, 1, 9, 7)),
                          suppressed_by=Span(CRYPTO, 9, 60, 9, 82))
    return [kept, hidden]


def test_suppressed_findings_are_marked_in_json_and_sarif_and_left_out_elsewhere() -> None:
    ds = suppressed_sample()
    assert [d.get("suppressed") for d in json.loads(render_json(ds))] == [None, True]
    log = json.loads(render_sarif(ds, SOURCES, tool_version="0.1.0"))
    results = log["runs"][0]["results"]
    assert "suppressions" not in results[0]
    (suppression,) = results[1]["suppressions"]
    assert suppression["kind"] == "inSource"
    assert suppression["location"]["physicalLocation"]["region"]["startLine"] == 9
    for validator in sarif_validators():
        errors = list(validator.iter_errors(log))
        assert not errors, [e.message for e in errors]
    text = render_text(ds, SOURCES)
    assert "P301" not in text and text.rstrip().endswith("1 warning")
    assert "P301" not in render_github(ds)
    assert render_text(ds[1:], SOURCES) == "" and render_github(ds[1:]) == ""
