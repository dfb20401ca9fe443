"""`policy eval` as a function: input forms, envelopes, per-record errors, explanations."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from conformance import CORPUS
from hypothesis import given
from hypothesis import strategies as st

import dsl
from dsl.eval_stream import run_eval

CRYPTO = CORPUS / "decisions" / "alibaba-crypto"
pytestmark = pytest.mark.skipif(not CRYPTO.exists(), reason="../shared/conformance is not beside the repository")

MINER = {"category": "Blockchain Miners", "platform": "taobao"}


@pytest.fixture(scope="module")
def policies() -> dsl.Policies:
    return dsl.load([CRYPTO])


def run(policies: dsl.Policies, text: str, **kwargs: Any) -> tuple[list[dict[str, Any]], bool]:
    kwargs.setdefault("at", "2021-10-20")
    result = run_eval(policies, io.StringIO(text), **kwargs)
    lines = list(result)
    for line in lines:
        assert "\n" not in line  # one line per record
    return [json.loads(line) for line in lines], result.had_errors


def test_one_object(policies: dsl.Policies) -> None:
    out, failed = run(policies, json.dumps(MINER, indent=2))
    assert not failed and len(out) == 1
    assert out[0]["rules"] == ["alibaba-crypto-2021.miners", "alibaba-crypto-2021.miners-late"]
    assert out[0]["at"] == "2021-10-20T00:00:00"  # a local `at` is reported as given
    assert set(out[0]) == {"effect", "rules", "overridden", "penalty", "messages", "citations", "warnings", "at",
                           "policy_hash"}


def test_array_and_json_lines_agree(policies: dsl.Policies) -> None:
    records = [MINER, {"title": "Ethernet cable", "platform": "taobao"},
               {"title": "二手 Bitcoin 矿机", "platform": "xianyu"}]
    as_array, failed_a = run(policies, json.dumps(records, ensure_ascii=False))
    as_lines, failed_l = run(policies, "\n".join(json.dumps(r) for r in records) + "\n\n")
    assert not failed_a and not failed_l
    assert as_array == as_lines
    assert [d["effect"] for d in as_array] == ["block", "allow", "block"]


def test_envelopes_override_the_command_line(policies: dsl.Policies) -> None:
    lines = [
        json.dumps({"listing": MINER}),
        json.dumps({"listing": MINER, "at": "2021-10-09", "prior_violations": None}),
        json.dumps({"listing": MINER, "prior_violations": 2}),
        json.dumps({"listing": MINER, "at": "2021-10-07T16:00:00Z"}),
        json.dumps({"listing": MINER, "note": "not an envelope: a listing with a field named listing"}),
    ]
    out, failed = run(policies, "\n".join(lines), prior=1)
    assert not failed
    assert out[0]["penalty"]["step"] == 2
    assert out[1]["rules"] == ["alibaba-crypto-2021.miners"] and out[1]["at"] == "2021-10-09T00:00:00"
    assert out[3]["at"] == "2021-10-07T16:00:00Z"
    assert out[2]["penalty"]["step"] == 3
    assert out[3]["rules"] == ["alibaba-crypto-2021.miners"]
    assert out[4]["effect"] == "allow"


def test_bad_records_yield_errors_in_place(policies: dsl.Policies) -> None:
    deep = '{"title": "bitcoin", "platform": "taobao", "n": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}"
    lines = [
        json.dumps(MINER),
        "{not json",
        "[1, 2]",
        json.dumps({"listing": MINER, "at": "next tuesday"}),
        json.dumps({"listing": MINER, "prior_violations": -1}),
        json.dumps({"listing": "S-100"}),
        '{"price": NaN, "category": 42, "platform": "taobao"}',
        deep,
        '{"title": "' + "bitcoin " * 150_000 + '", "platform": "taobao"}',
        "[" * 100_000,
        json.dumps(MINER),
    ]
    out, failed = run(policies, "\n".join(lines))
    assert failed
    assert len(out) == len(lines)
    errors = {i + 1: d["error"] for i, d in enumerate(out) if "error" in d}
    assert sorted(errors) == [2, 3, 4, 5, 6, 10]
    for n, error in errors.items():
        assert error["record"] == n and error["message"]
    assert "not valid JSON" in errors[2]["message"]
    assert "JSON object" in errors[3]["message"]
    assert "next tuesday" in errors[4]["message"]
    assert "prior_violations" in errors[5]["message"]
    assert "nested" in errors[10]["message"]
    assert out[6]["warnings"] and out[6]["warnings"][0].startswith("category:")
    assert out[7]["rules"] == ["alibaba-crypto-2021.coins"]
    assert out[8]["rules"] == ["alibaba-crypto-2021.coins"]
    assert out[0] == out[10]


def test_bad_command_line_at_fails_only_the_records_that_need_it(policies: dsl.Policies) -> None:
    lines = [json.dumps(MINER), json.dumps({"listing": MINER, "at": "2021-10-09"})]
    out, failed = run(policies, "\n".join(lines), at="soon")
    assert failed
    assert "--at" in out[0]["error"]["message"] and "soon" in out[0]["error"]["message"]
    assert out[1]["effect"] == "block"


def test_empty_input(policies: dsl.Policies) -> None:
    assert run(policies, "") == ([], False)
    assert run(policies, "[]") == ([], False)


def test_explain_adds_a_string(policies: dsl.Policies) -> None:
    out, failed = run(policies, json.dumps(MINER), at="2021-10-12", explain=True)
    assert not failed
    text = out[0]["explanation"]
    assert "miners-late (block): not yet in force; it applies from 2021-10-15 00:00 Asia/Shanghai" in text
    assert out[0]["effect"] == "block"


def test_now_is_one_instant_for_the_run(policies: dsl.Policies) -> None:
    out, _ = run(policies, "\n".join(json.dumps(MINER) for _ in range(20)), at=None)
    assert len({d["at"] for d in out}) == 1


def test_output_is_compact_and_keeps_unicode(policies: dsl.Policies, tmp_path: Path) -> None:
    policy = tmp_path / "m.policy"
    policy.write_text("policy m\nrule r: flag mentions '比特币' message \"请审核: 比特币\"\n", encoding="utf-8")
    result = run_eval(dsl.load([policy]), io.StringIO('{"title": "比特币"}'), at="2022-01-01")
    [line] = list(result)
    assert "请审核: 比特币" in line and '","' in line and ": " not in line.replace("请审核: ", "")


def test_why_not_adds_the_full_reason_for_one_rule(policies: dsl.Policies) -> None:
    listing = {"category": "Garden", "title": "Bitcoin", "platform": "amazon"}
    out, failed = run(policies, json.dumps(listing), why_not="alibaba-crypto-2021.coins")
    assert not failed
    explanation = out[0]["explanation"]  # --why-not implies --explain
    assert "Why not coins (block): it did not apply: 1 condition failed." in explanation
    assert explanation == policies.explain(listing, at="2021-10-20", why_not="coins")


def test_why_not_on_the_command_line() -> None:
    from click.testing import CliRunner

    from dsl.cli import main

    listing = json.dumps({"category": "Garden", "title": "Bitcoin", "platform": "amazon"})
    result = CliRunner().invoke(main, ["eval", str(CRYPTO), "--input", "-", "--at", "2021-10-20",
                                       "--why-not", "coins"], input=listing)
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["at"] == "2021-10-20T00:00:00"
    assert "  - holds: mentions any cryptocurrencies (found 'bitcoin'" in decision["explanation"]
    result = CliRunner().invoke(main, ["eval", str(CRYPTO), "--input", "-", "--why-not", "coin"], input=listing)
    assert result.exit_code == 2
    assert "--why-not: no rule 'coin' in the policy set; did you mean 'coins'?" in result.output


# ---------------------------------------------------------------- how it is read and written


class _Flushed(io.BytesIO):
    """An output that remembers what had been flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = b""

    def flush(self) -> None:
        self.flushed = self.getvalue()


class _Trickle:
    """A binary input handing out ``size`` bytes a read, checking at each read that every
    line written so far was flushed (a reader at the other end of a pipe sees it)."""

    def __init__(self, data: bytes, size: int, out: _Flushed):
        self.data, self.size, self.out, self.reads = data, size, out, 0

    def read1(self, n: int = -1) -> bytes:
        assert self.out.flushed == self.out.getvalue()
        self.reads += 1
        chunk, self.data = self.data[:min(n, self.size)], self.data[min(n, self.size):]
        return chunk

    def __iter__(self) -> Any:  # what read_records would read without write_to
        return iter(io.BytesIO(self.data))


MIXED = b"".join([
    b"\xef\xbb\xbf" + json.dumps(MINER).encode() + b"\r\n",
    b'{"listing": {"title": "bitcoin"}, "at": "2021-10-09"}\r',
    b"\n\n   \n",
    b'{"price": 123456789012345678901234567890, "title": "\\ud800 bitcoin"}\n',
    b'{"price": NaN}\n{"price": 1e400}\n{"price": -9223372036854775809}\n',
    b'{"title": "caf\xc3\xa9"}\n{"title": "\xff"}\n{"title": \n',
    b'"not a listing"\n[[[]]]\n',
    b'{"category": "Blockchain Miners", "platform": "taobao", "a": {"a": {"a": 1}}}',  # no line end
])


@pytest.mark.parametrize("size", [1, 3, 64, 1 << 16])
def test_write_to_writes_the_lines_and_flushes_before_each_read(policies: dsl.Policies, size: int) -> None:
    expected = "".join(line + "\n" for line in run_eval(policies, io.BytesIO(MIXED), at="2021-10-20"))
    out = _Flushed()
    source = _Trickle(MIXED, size, out)
    result = run_eval(policies, source, at="2021-10-20")  # type: ignore[arg-type]
    result.write_to(out)
    assert out.getvalue().decode("utf-8") == expected and out.flushed == out.getvalue()
    assert result.had_errors and source.reads >= len(MIXED) // size
    assert len(expected.splitlines()) == 12


def test_a_record_per_read_is_answered_before_the_next_read(policies: dsl.Policies) -> None:
    lines = [json.dumps(MINER).encode() + b"\n"] * 4

    class OneLine(_Trickle):
        def read1(self, n: int = -1) -> bytes:
            # every record read so far is answered, but the first: whether the input is one
            # JSON value or JSON lines is known at the second line
            assert self.out.flushed.count(b"\n") == (self.reads if self.reads >= 2 else 0)
            self.reads += 1
            return lines[self.reads - 1] if self.reads <= len(lines) else b""

    out = _Flushed()
    run_eval(policies, OneLine(b"", 0, out), at="2021-10-20").write_to(out)  # type: ignore[arg-type]
    assert out.getvalue().count(b"\n") == 4


def test_records_read_by_orjson_are_what_json_reads() -> None:
    from dsl.scan.records import read_json_records

    cases = [b'{"a": 1, "a": 2}', b"-0", b"-0.0", b"1e400", b"123456789012345678901234567890", b"18446744073709551616",
             b"-9223372036854775809", b"9007199254740993", b'"\\ud800"', b'"\\ud83d\\ude00"', b"NaN", b"-Infinity",
             b'"\\u0000"', b"1.7976931348623157e308", b"5e-324", b"0.1", b'"x1234567890123456789y"']
    for case in cases:
        got = list(read_json_records([b"0\n", case + b"\n"]))[1]
        want = json.loads(case)
        assert json.dumps(got) == json.dumps(want) and type(got) is type(want), case
    deep = list(read_json_records([b"0\n", b"[" * 2000 + b"]" * 2000 + b"\n"]))[1]  # beyond orjson's depth
    for _ in range(1999):
        deep = deep[0]
    assert deep == []


def test_a_lone_surrogate_is_written_escaped() -> None:
    from dsl.scan.records import json_line

    line = json_line({"message": "a \ud800 b", "other": "é"})
    assert line.endswith(b"\n") and json.loads(line.decode("utf-8")) == {"message": "a \ud800 b", "other": "é"}
    assert json_line({"message": "é\u2028"}) == json.dumps({"message": "é\u2028"}, ensure_ascii=False,
                                                           separators=(",", ":")).encode("utf-8") + b"\n"
    # an integer beyond 64 bits (orjson refuses it) and a float's exponent, read back as they were
    assert json_line({"id": 2**70}) == b'{"id":1180591620717411303424}\n'
    assert json.loads(json_line({"at": (1e16, 1e-7, 0.1)})) == {"at": [1e16, 1e-7, 0.1]}


def test_each_line_is_its_decision_whatever_is_shared(policies: dsl.Policies) -> None:
    records = [{"listing": listing, "at": at} for at in ("2021-10-09", "2021-10-20", "2021-10-09")
               for listing in ({}, {"title": "x"}, MINER, {"category": 3}, {"title": "bitcoin"})]
    lines = list(run_eval(policies, io.StringIO("\n".join(json.dumps(r) for r in records))))
    for record, line in zip(records, lines, strict=True):
        decision = policies.decide(record["listing"], at=record["at"])
        assert line == json.dumps(decision.to_dict(), ensure_ascii=False, separators=(",", ":"))


def test_a_number_beyond_python_s_digit_limit_is_a_bad_line_in_plain_words() -> None:
    from dsl.scan.records import Bad, read_json_records

    line = ('{"price": ' + "1" * 5000 + "}\n").encode()
    bad = list(read_json_records([b"0\n", line]))[1]
    assert isinstance(bad, Bad) and bad.message == "line 2: not valid JSON: a number of more than 4300 digits"


@given(st.lists(st.sampled_from([b"a", b"{}", b" ", b"\n", b"\r", b"\r\n", b"\xc3\xa9"]), max_size=40),
       st.lists(st.integers(1, 7), min_size=1, max_size=10))
def test_whole_lines_cut_blocks_after_a_line_feed_and_keep_every_line(pieces: list[bytes], sizes: list[int]) -> None:
    from dsl.scan.records import whole_line_blocks

    data = b"".join(pieces)
    left, turn = [data], itertools.cycle(sizes)

    def read1(n: int) -> bytes:
        chunk = left[0][:min(n, next(turn))]
        left[0] = left[0][len(chunk):]
        return chunk

    chunks = list(whole_line_blocks(read1))
    assert b"".join(chunks) == data
    assert all(c.endswith(b"\n") for c in chunks[:-1]) and all(c for c in chunks)
    assert [line for c in chunks for line in c.splitlines()] == data.splitlines()


_RECORD_LINES = [json.dumps(MINER).encode(), b'{"title": "bitcoin"}', b'{"category": 3}', b"{}", b"", b"  ",
                 b'{"listing": {"title": "bitcoin"}, "at": "2021-10-09"}', b'{"listing": {}, "at": null}',
                 b'{"listing": ' + json.dumps(MINER).encode() + b', "prior_violations": 2}',
                 b'{"listing": {}, "prior_violations": -1}', b'{"listing": {}, "at": "yesterday"}',
                 b'{"listing": {}, "at": 5}', b'{"listing": {}, "prior_violations": "x"}',
                 b'{"title": "\xff"}', b'{"title": ', b'"not a listing"', b"[[[]]]", b"[1,", b"]"]


@given(st.lists(st.sampled_from(_RECORD_LINES), max_size=30), st.lists(st.integers(1, 90), min_size=1, max_size=8),
       st.sampled_from(["2021-10-20", "2021-13-45"]))
def test_records_decided_a_chunk_at_a_time_are_decided_as_one_by_one(policies: dsl.Policies, picked: list[bytes],
                                                                      sizes: list[int], at: str) -> None:
    """Each chunk's records are decided in one batch (``decide_records``): every line is
    the one deciding its record alone gives, errors numbered by record, however the input
    comes in chunks; the records are those of the whole input read at once. A bad `--at`
    fails the records without an `at` of their own."""
    from dsl.evaluate.outcome import DecisionError, InputError
    from dsl.scan.records import Bad, json_line, open_envelope, read_json_records

    data = b"\n".join(picked)
    whole = list(read_json_records([data]))
    good_at = at != "2021-13-45"
    expected = []
    for number, record in enumerate(whole, 1):
        listing, record_at, prior = open_envelope(record, at if good_at else None, 0)
        try:
            if isinstance(listing, Bad):
                raise InputError(listing.message)
            if record_at is None:
                raise InputError("--at: cannot read the text '2021-13-45' as a date or date-time (expected e.g. "
                                 "2021-10-15, 2021-10-15T08:00 or 2021-10-15T08:00:00+08:00)")
            expected.append(json_line(policies.decide(listing, at=record_at, prior_violations=prior).to_dict()))
        except InputError as e:
            expected.append(json_line(DecisionError(number, e.message).to_dict()))
    out = _Flushed()
    left, turn = [data], itertools.cycle(sizes)

    class Pieces(_Trickle):
        def read1(self, n: int = -1) -> bytes:
            chunk = left[0][:min(n, next(turn))]
            left[0] = left[0][len(chunk):]
            return chunk

    result = run_eval(policies, Pieces(b"", 0, out), at=at)  # type: ignore[arg-type]
    result.write_to(out)
    assert out.getvalue() == b"".join(expected)
    assert result.had_errors == any(b'"error"' in line for line in expected)


def test_an_array_is_decided_a_batch_at_a_time(policies: dsl.Policies, monkeypatch: pytest.MonkeyPatch) -> None:
    """One JSON array: its records are decided ``ARRAY_BATCH`` at a time, numbered across
    the batches."""
    from dsl.scan import records

    items = [MINER, {"listing": {}, "prior_violations": -1}, {}, "x", {"listing": MINER, "at": "2021-10-09"}]
    expected, _ = run(policies, "\n".join(json.dumps(item) for item in items))
    monkeypatch.setattr(records, "ARRAY_BATCH", 2)
    assert [len(batch) for batch in records.read_json_batches([json.dumps(items).encode()])] == [2, 2, 1]
    decisions, had_errors = run(policies, json.dumps(items))
    assert decisions == expected and had_errors
    assert [d["error"]["record"] for d in decisions if "error" in d] == [2, 4]
