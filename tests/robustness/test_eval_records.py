"""`policy eval` isolates every bad record (issue 10, item 3): a line that is not UTF-8,
broken JSON, NaN, deep nesting or huge values costs that record an error line and nothing
else; every output line is strict JSON; the exit status says whether a record failed."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

import dsl
from dsl.cli import main
from dsl.eval_stream import run_eval

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SAMPLES = [line.encode("utf-8")
           for line in (POLICIES / "samples" / "listings.jsonl").read_text(encoding="utf-8").splitlines()
           if line.strip()]
MINER = b'{"category": "Blockchain Miners", "platform": "taobao", "title": "Antminer S19"}'


@pytest.fixture(scope="module")
def policies() -> dsl.Policies:
    return dsl.load(POLICIES)


def _strict(line: str) -> dict[str, Any]:
    """Parse an output line as strict JSON (no NaN or Infinity)."""
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


def _run(policies: dsl.Policies, data: bytes, **kwargs: Any) -> tuple[list[dict[str, Any]], bool]:
    kwargs.setdefault("at", "2021-10-20")
    result = run_eval(policies, io.BytesIO(data), **kwargs)
    lines = list(result)
    assert all("\n" not in line for line in lines)
    return [_strict(line) for line in lines], result.had_errors


# Each bad record is one line that cannot be decided, whatever the records around it.
BAD_LINES = {
    "latin-1": b'{"title": "caf\xe9 bitcoin", "platform": "taobao"}',
    "lone byte": b"\xff",
    "overlong": b'{"title": "\xc0\xaf"}',
    "surrogate": b'{"title": "\xed\xa0\x80"}',
    "broken json": b'{"title": "bitcoin", ',
    "not an object": b"[1, 2]",
    "a string": b'"S-100"',
    "deep": b"[" * 100_000,
    "long number": b'{"price": ' + b"9" * 5000 + b"}",
    "bad envelope": b'{"listing": {"title": "x"}, "prior_violations": -1}',
    "bad at": b'{"listing": {"title": "x"}, "at": "next tuesday"}',
}
# Odd but readable: a decision or an input error (policies/schema.policy wants finite prices),
# never an exception.
ODD_LINES = {
    "nan": b'{"price": NaN, "category": 42, "platform": "taobao"}',
    "infinity": b'{"price": Infinity, "title": "bitcoin", "platform": "ebay"}',
    "huge float": b'{"price": 1e400, "title": "ivory", "platform": "ebay"}',
    "nested": b'{"title": "bitcoin", "platform": "taobao", "n": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}",
    "long title": b'{"title": "' + b"bitcoin miner " * 20_000 + b'", "platform": "taobao"}',
    "escaped surrogate": b'{"title": "\\ud800 bitcoin", "platform": "taobao"}',
    "nul": b'{"title": "bit\\u0000coin", "platform": "taobao"}',
    "empty": b'{"platform": "etsy"}',
}
DECIDED = {"nested", "long title", "escaped surrogate", "nul", "empty"}


def test_one_bad_byte_costs_one_record(policies: dsl.Policies) -> None:
    data = b"\n".join([MINER, BAD_LINES["latin-1"], MINER]) + b"\n"
    out, failed = _run(policies, data)
    assert failed and len(out) == 3
    assert out[0] == out[2] and out[0]["effect"] == "block"
    assert out[1]["error"]["record"] == 2 and "not UTF-8" in out[1]["error"]["message"]
    assert "byte 15" in out[1]["error"]["message"]


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_each_bad_record_is_isolated(policies: dsl.Policies, name: str) -> None:
    out, failed = _run(policies, b"\n".join([MINER, BAD_LINES[name], MINER]))
    assert failed and len(out) == 3
    assert out[1] == {"error": {"record": 2, "message": out[1]["error"]["message"]}}
    assert out[0] == out[2] and "error" not in out[0]


@pytest.mark.parametrize("name", sorted(ODD_LINES))
def test_odd_records_are_decided(policies: dsl.Policies, name: str) -> None:
    out, failed = _run(policies, b"\n".join([MINER, ODD_LINES[name], MINER]), explain=True)
    assert len(out) == 3 and ("effect" in out[1] if name in DECIDED else out[1].keys() <= {"effect", "error"}), out[1]
    assert out[0] == out[2] and "effect" in out[0]


def test_a_byte_order_mark_is_ignored(policies: dsl.Policies) -> None:
    out, failed = _run(policies, b"\xef\xbb\xbf" + MINER)
    assert not failed and out[0]["effect"] == "block"


def test_a_unicode_line_separator_inside_a_string_does_not_split_the_record(policies: dsl.Policies) -> None:
    record = '{"title": "bitcoin\u2028miner", "platform": "taobao"}'.encode("utf-8")
    out, failed = _run(policies, record + b"\n" + MINER)
    assert not failed and len(out) == 2


def test_the_command_reads_bytes(tmp_path: Path) -> None:
    data = b"\n".join([MINER, b"\xff\xfe", MINER])
    result = CliRunner().invoke(main, ["eval", str(POLICIES), "--input", "-", "--at", "2021-10-20"], input=data)
    assert result.exit_code == 1, result.output
    lines = [_strict(line) for line in result.stdout.splitlines()]
    assert [("error" in d) for d in lines] == [False, True, False]
    (tmp_path / "in.jsonl").write_bytes(data)
    again = CliRunner().invoke(main, ["eval", str(POLICIES), "--input", str(tmp_path / "in.jsonl"),
                                      "--at", "2021-10-20"])
    assert again.stdout == result.stdout


def _decide_alone(policies: dsl.Policies, line: bytes) -> dict[str, Any]:
    """The line's output when it is the only record (after a line that is not JSON, so
    that the input is read a line at a time even when the line alone is one JSON array)."""
    out, _ = _run(policies, b"{\n" + line)
    assert len(out) == 2
    return _without_line_number(out[1])


def _without_line_number(out: dict[str, Any]) -> dict[str, Any]:
    if "error" not in out:
        return out
    return {"error": {"record": 0, "message": re.sub(r"^line \d+: ", "", out["error"]["message"])}}


_SMALL = {k: v for k, v in {**BAD_LINES, **ODD_LINES}.items() if len(v) < 10_000}  # the big ones: above
_bad_or_odd = st.sampled_from(sorted(_SMALL)).map(_SMALL.__getitem__)
_good = st.sampled_from(SAMPLES)
_garbage = st.binary(min_size=1, max_size=40).filter(  # one line, not blank, not a leading byte order mark
    lambda b: b.strip() and b"\n" not in b and b"\r" not in b and not b.startswith(b"\xef\xbb\xbf"))


@settings(print_blob=False)
@given(st.lists(st.one_of(_good, _bad_or_odd, _garbage), min_size=2, max_size=8))
@example([MINER, BAD_LINES["deep"], BAD_LINES["latin-1"], ODD_LINES["long title"]])
def test_records_do_not_affect_each_other(policies: dsl.Policies, lines: list[bytes]) -> None:
    lines = [ln for ln in lines if ln.strip()]
    data = b"\n".join(lines)
    try:
        json.loads(data)
        return  # the whole input is one JSON value: read as one record, not as lines
    except ValueError:
        pass
    out, failed = _run(policies, data)
    assert len(out) == len(lines)
    assert failed == any("error" in d for d in out)
    for number, (line, decided) in enumerate(zip(lines, out, strict=True), 1):
        if "error" in decided:
            assert decided["error"]["record"] == number
        assert _without_line_number(decided) == _decide_alone(policies, line), (number, len(line))
