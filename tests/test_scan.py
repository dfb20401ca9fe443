"""`policy scan` (issue 12 items 1, 2, 5): every format in and out, nested and dotted fields,
order with 1 and 2 jobs and small and large batches, the property "exact, whatever the
engine" (row for row the decision `decide` gives), bad records, the exit-2 cases and the
report."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_pushdown as drawn  # its policy sets and catalogues
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import at_least

import dsl
from dsl.api import scan_paths
from dsl.checking.loader import UsageError
from dsl.diagnostics import PolicyError
from dsl.evaluate.outcome import InputError, format_instant
from dsl.scan import Workers, scan
from dsl.scan.convert import csv_cell

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "tests" / "scan_policies"
SOURCES = {str(p): p.read_text(encoding="utf-8") for p in sorted(POLICIES.glob("*.policy"))}
P = dsl.load(POLICIES)
COLUMNS = ["id", "effect", "rules", "overridden", "penalty", "warnings", "error", "at", "policy_hash"]


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    with Workers(SOURCES, P.policy_hash, 2) as pool:
        yield pool


# ------------------------------------------------------------------ writing catalogues

def _strip(value: Any) -> Any:
    """A row as a listing: NULL fields absent."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    return value


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(_strip(r), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and value and csv_cell(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    flat = [_flat(r) for r in rows]
    names = list(dict.fromkeys(k for r in flat for k in r))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for r in flat:
            w.writerow([_cell(r.get(n)) for n in names])


def write_parquet(rows: list[dict[str, Any]], path: Path, schema: pa.Schema | None = None) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}


def read_output(path: Path) -> list[dict[str, Any]]:
    """The output rows, with rules, overridden, penalty and warnings as values."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in COLUMNS:
            if r[k] == "":
                r[k] = None
            elif k in ("rules", "overridden", "penalty", "warnings"):
                r[k] = json.loads(r[k])
    return rows


def expected(listing: dict[str, Any], *, at: Any, prior: Any = 0, id_text: bool = False) -> dict[str, Any]:
    """The row `decide` gives for this listing."""
    ident = listing.get("id")
    if id_text and ident is not None and not isinstance(ident, str):
        ident = json.dumps(ident)
    try:
        if at is None:
            raise InputError("no instant")
        d = P.decide(listing, at=at, prior_violations=prior)
    except InputError as e:
        return {"id": ident, "effect": None, "rules": None, "overridden": None, "penalty": None, "warnings": None,
                "error": e.message, "at": None, "policy_hash": P.policy_hash}
    return {"id": ident, "effect": d.effect, "rules": list(d.rules), "overridden": list(d.overridden),
            "penalty": d.penalty.to_dict() if d.penalty else None, "warnings": list(d.warnings), "error": None,
            "at": format_instant(d.at), "policy_hash": P.policy_hash}


# ------------------------------------------------------------------ the property

CATEGORIES = ["Gadgets", "Electronics > Gadgets", "Numismatics", "Toys", "", None]
TITLES = ["gold coin", "a Mining  Rig for sale", "coins", "lamp", "x" * 5000, "", None]
ATS = ["2021-10-08", "2021-10-07T23:59:59", "2021-10-07T23:00:00Z", "2021-10-31T23:59:59.999999",
       "2021-11-01T00:00:00+00:00", "2021-10-15T00:00:00+01:00", "2021-10-14 23:00", "not a date", None,
       "2021/10/20", "2021-10-9 "]  # (ten bytes DuckDB reads as a date, and decide does not: an error)


@st.composite
def catalogues(draw: st.DrawFn) -> list[dict[str, Any]]:
    price_text = draw(st.booleans())  # the whole column ill-typed (a Parquet column has one type)
    n = draw(st.integers(0, 12))
    rows = []
    for i in range(n):
        price = draw(st.none() | st.integers(-10, 10**6).map(float) | st.sampled_from([100.0, 100.5, 1e300]))
        rows.append({
            "id": i * 7 + 1,
            "category": draw(st.sampled_from(CATEGORIES)),
            "title": draw(st.sampled_from(TITLES)),
            "price": (str(price) if price_text and price is not None else price),
            "seller": draw(st.none() | st.fixed_dictionaries({
                "id": st.sampled_from(["s1", "s2", "s3"]), "country": st.sampled_from(["GB", "FR", None])})),
            "item": draw(st.none() | st.fixed_dictionaries({"made": st.sampled_from(["1970-01-01", "1990-05-05"])})),
            "listed_at": draw(st.sampled_from(ATS)),
            "prior": draw(st.none() | st.integers(-1, 4)),
        })
    return rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=catalogues(), fmt=st.sampled_from(["parquet", "jsonl", "csv"]),
       out=st.sampled_from(["parquet", "jsonl", "csv"]), jobs=st.sampled_from([1, 2]),
       pushdown=st.booleans(), batch=st.sampled_from([3, 1000]), at_field=st.booleans())
def test_exact_whatever_the_engine(tmp_path_factory: pytest.TempPathFactory, workers: Workers,
                                   rows: list[dict[str, Any]], fmt: str, out: str, jobs: int, pushdown: bool,
                                   batch: int, at_field: bool) -> None:
    d = tmp_path_factory.mktemp("scan")
    if fmt == "parquet" and not rows:
        return  # an empty Parquet file needs a schema, which rows give
    WRITERS[fmt](rows, d / f"in.{fmt}")
    result = scan(P, SOURCES, [str(d / f"in.{fmt}")], str(d / f"out.{out}"),
                  at=None if at_field else "2021-10-20", at_field="listed_at" if at_field else None,
                  prior_field="prior", jobs=jobs, use_pushdown=pushdown, batch_size=batch,
                  workers=workers if jobs == 2 else None)
    got = read_output(d / f"out.{out}")
    want = []
    for r in rows:
        listing = _strip(r)
        at = listing.get("listed_at") if at_field else "2021-10-20"
        want.append(expected(listing, at=at, prior=listing.get("prior", 0), id_text=out != "jsonl"))
    if at_field:
        for w, r in zip(want, rows, strict=True):
            if r["listed_at"] is None:
                w["error"] = "listed_at: no instant to decide at (the field is missing or null)"
    assert got == want
    assert result.records == len(rows)
    assert result.exit_code == (1 if any(w["error"] for w in want) else 0)


CATEGORY_SET = """policy cats
  timezone 'Asia/Shanghai'

ladder steps = remove listing
  then close account

rule gadgets: from 2021-10-08 block category 'Gadgets'
  penalty steps
rule toys: until 2021-10-15 flag category in ['Toys', 'numismatics']
rule lifted: allow category 'Electronics > Gadgets'
  overrides gadgets
rule taobao-coins: block category 'Numismatics' and platform == 'taobao'
rule taobao-lamps: block category 'Lamps' and platform in ['taobao', 'xianyu']
"""


SETTLED_ROWS = [{"id": i, "category": c, "title": "lamp", "price": 10.0, "seller": {"id": f"s{i % 2}", "country": None},
                 "item": None, "listed_at": "2021-10-14", "prior": i % 3}
                for i, c in enumerate(["Gadgets", "Toys", "gadgets ", "Electronics > Gadgets", "Numismatics", "Lamps",
                                       None, "TOYS", "Ｇａｄｇｅｔｓ", "Gad\u200bgets"] * 2)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=catalogues(), fmt=st.sampled_from(["parquet", "csv"]), out=st.sampled_from(["parquet", "jsonl", "csv"]),
       at_field=st.booleans(), prior=st.booleans(), platform=st.booleans())
@example(rows=SETTLED_ROWS, fmt="parquet", out="parquet", at_field=True, prior=False, platform=True)
@example(rows=SETTLED_ROWS, fmt="csv", out="csv", at_field=False, prior=True, platform=False)
@example(rows=SETTLED_ROWS, fmt="parquet", out="jsonl", at_field=False, prior=False, platform=False)
def test_the_records_the_category_lookup_settles(tmp_path_factory: pytest.TempPathFactory,
                                                  rows: list[dict[str, Any]], fmt: str, out: str, at_field: bool,
                                                  prior: bool, platform: bool) -> None:
    """Rules that are a category and nothing else: the records on which one of them alone
    applies get its outcome without being decided in Python; row for row and in the
    report, the scan is the same as without the pushdown, and as ``decide``."""
    d = tmp_path_factory.mktemp("settle")
    (d / "cats.policy").write_text(CATEGORY_SET, encoding="utf-8")
    policies = dsl.load(d / "cats.policy")
    dates = ["2021-10-07", "2021-10-08", "2021-10-14", "2021-10-15", "2021-10-20", "2021-10-07T23:00:00Z"]
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        r["listed_at"] = dates[i % len(dates)] if r["listed_at"] is not None else None
        if platform:
            r["platform"] = ["taobao", "ebay"][i % 2]
    if not rows:
        return
    WRITERS[fmt](rows, d / f"in.{fmt}")
    options: dict[str, Any] = dict(at=None if at_field else "2021-10-14", at_field="listed_at" if at_field else None,
                                   prior_field="prior" if prior else None, jobs=1)
    results = [scan(policies, {}, [str(d / f"in.{fmt}")], str(d / f"out{push}.{out}"), use_pushdown=push, **options)
               for push in (True, False)]
    got = read_output(d / f"outTrue.{out}")
    assert got == read_output(d / f"outFalse.{out}")
    assert results[0].report == results[1].report
    if fmt == "csv":
        return  # the rows read back from CSV cells: the comparison without the pushdown above
    for row, r in zip(got, rows, strict=True):
        listing = _strip(r)
        at = listing.get("listed_at") if at_field else "2021-10-14"
        if at is None or row["error"] is not None:
            continue
        decision = policies.decide(listing, at, listing.get("prior", 0) if prior else 0)
        assert (row["effect"], row["rules"], row["penalty"]) == (
            decision.effect, list(decision.rules), decision.penalty.to_dict() if decision.penalty else None)


# ------------------------------------------------------------------ formats, fields, order

def test_nested_parquet_structs_dates_and_timestamps(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.string()), ("category", pa.string()), ("price", pa.decimal128(10, 2)),
                        ("seller", pa.struct([("id", pa.string()), ("country", pa.string())])),
                        ("item", pa.struct([("made", pa.date32())])), ("tags", pa.list_(pa.string())),
                        ("listed", pa.timestamp("us")), ("listed_utc", pa.timestamp("us", tz="UTC"))])
    rows = [{"id": "a", "category": "Gadgets", "price": 150, "seller": {"id": "s1", "country": "GB"},
             "item": {"made": dt.date(1970, 1, 1)}, "tags": ["x", None], "listed": dt.datetime(2021, 10, 20, 8),
             "listed_utc": dt.datetime(2021, 10, 20, 8, tzinfo=dt.UTC)},
            {"id": "b", "category": "Gadgets", "price": 150, "seller": {"id": "s2", "country": None},
             "item": None, "tags": None, "listed": dt.datetime(2021, 10, 7, 23, 59), "listed_utc": None}]
    write_parquet(rows, tmp_path / "in.parquet", schema)
    for field in ("listed", "listed_utc"):
        scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.jsonl"), at_field=field, jobs=1)
        got = read_output(tmp_path / "out.jsonl")
        assert got[0]["effect"] == "allow" and got[0]["overridden"] == ["shop.gadgets"]  # the museum exception
        assert got[0]["at"] == ("2021-10-20T08:00:00" if field == "listed" else "2021-10-20T08:00:00Z")
    assert got[1]["error"] == "listed_utc: no instant to decide at (the field is missing or null)"
    scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "out.jsonl"), at_field="listed", jobs=1)
    got = read_output(tmp_path / "out.jsonl")
    assert got[1]["effect"] == "allow" and got[1]["at"] == "2021-10-07T23:59:00"  # before the window opens


def test_a_scan_reads_only_the_columns_a_decision_may_read(tmp_path: Path) -> None:
    """The input's columns that no rule, declared field or option reads are never read
    (``semantics.fields_read``): the queries name the others, and each record gets
    ``decide``'s decision on its whole listing, with and without the pushdown, in Parquet
    and in CSV (a dotted column ``a.b`` is field ``a``)."""
    from dsl.scan.source import open_source

    rows = [{"id": str(i), "category": ["Gadgets", "Toys", None][i % 3], "price": [150.0, 50.0, None][i % 3],
             "title": ["gold coin", None][i % 2], "seller": {"id": f"s{i % 2}", "country": ["GB", "FR"][i % 2]},
             "listed_at": "2021-10-20", "unused": {"deep": [i, i + 1]}, "remark": "x" * (i % 4)}
            for i in range(30)]
    write_parquet(rows, tmp_path / "in.parquet")
    write_csv(rows, tmp_path / "in.csv")
    fields = dsl.evaluate.semantics.fields_read(P.policy_set) | {"id", "listed_at"}
    assert "unused" not in fields and "remark" not in fields
    for name in ("in.parquet", "in.csv"):
        source = open_source([str(tmp_path / name)], batch_size=10, at_field=("listed_at",), predicate=None,
                             fields=fields)
        assert source.plain_sql is None or ("unused" not in source.plain_sql and '"price"' in source.plain_sql)
        first = next(source.batches)
        assert "remark" not in first.schema.names and not any(n.startswith("unused") for n in first.schema.names)
        source.batches.close()
        for pushdown in (True, False):
            scan(P, SOURCES, [str(tmp_path / name)], str(tmp_path / "out.jsonl"), at_field="listed_at", jobs=1,
                 use_pushdown=pushdown)
            got = read_output(tmp_path / "out.jsonl")
            assert got == [expected(r, at=r["listed_at"]) for r in rows], (name, pushdown)


def test_dotted_csv_columns_are_nested(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        'id,category,price,seller.id,seller.country,item.made,title\n'
        '1,Gadgets,150,s1,GB,1970-01-01,"a ""coin"", mining rig"\n'
        '2,Gadgets,"""150""",s1,FR,,\n', encoding="utf-8")
    scan(P, SOURCES, [str(tmp_path / "in.csv")], str(tmp_path / "out.csv"), at="2021-10-20", jobs=1)
    got = read_output(tmp_path / "out.csv")
    assert got[0]["id"] == "1" and got[0]["effect"] == "block"
    assert got[0]["rules"] == ["other.rigs", "shop.coins", "shop.museum"]
    assert got[0]["overridden"] == ["shop.gadgets"]
    assert got[1]["effect"] == "allow" and got[1]["warnings"]  # "150" in quotes is text: a warning


def test_several_files_and_globs_keep_order(tmp_path: Path, workers: Workers) -> None:
    rows = [{"id": i, "category": "Gadgets", "price": float(i % 300)} for i in range(2500)]
    write_jsonl(rows[:1000], tmp_path / "a1.jsonl")
    write_jsonl(rows[1000:], tmp_path / "a2.jsonl")
    for jobs, batch in ((1, 7), (2, 7), (2, 100_000)):
        scan(P, SOURCES, [str(tmp_path / "a*.jsonl")], str(tmp_path / "out.parquet"), at="2021-10-20",
             batch_size=batch, jobs=jobs, workers=workers if jobs == 2 else None)
        got = read_output(tmp_path / "out.parquet")
        assert [g["id"] for g in got] == [str(i) for i in range(2500)]
        assert [g["effect"] for g in got] == [expected(r, at="2021-10-20")["effect"] for r in rows]


def _lake(root: Path) -> list[dict[str, Any]]:
    """A table as Spark writes one (part files, a partition directory, ``_SUCCESS``, hidden files,
    a ``_temporary`` directory) with a README beside it; the records the scan reads, in order.
    The partition directory ``price=500`` names a value its file does not hold."""
    rows = [{"id": f"r{i}", "category": "Gadgets", "price": float(i * 60)} for i in range(6)]
    (root / "price=500").mkdir(parents=True)
    (root / "_temporary" / "0").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[:2]), root / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[2:4]), root / "part-00001.parquet")
    gone = [{k: v for k, v in r.items() if k != "price"} for r in rows[4:]]
    pq.write_table(pa.Table.from_pylist(gone), root / "price=500" / "part-00002.parquet")
    pq.write_table(pa.Table.from_pylist([{"id": "unfinished"}]), root / "_temporary" / "0" / "part-00009.parquet")
    for name in ("_SUCCESS", ".hidden.parquet", "README"):  # (not a checksum: Hadoop would check it)
        (root / name).write_text("not a table\n", encoding="utf-8")
    return rows[:4] + gone


def test_a_directory_is_read_as_spark_reads_a_table(tmp_path: Path) -> None:
    """A directory given as an input is its Parquet, JSON lines and CSV files at any depth,
    in path order, leaving out what Spark leaves out (names starting with ``_`` or ``.``);
    a record holds its file's own columns, not a partition's value from its path (as Spark
    reads a file it is given), and the scan says so."""
    rows = _lake(tmp_path / "lake")
    result = scan_paths(POLICIES, [str(tmp_path / "lake")], str(tmp_path / "out.jsonl"), at="2021-10-20", jobs=1)
    assert read_output(tmp_path / "out.jsonl") == [expected(r, at="2021-10-20") for r in rows]
    assert [r["effect"] for r in rows[4:] for r in [expected(r, at="2021-10-20")]] == ["allow", "allow"]
    assert len(result.notes) == 1 and "'price=500' is named as a Hive partition" in result.notes[0]
    (tmp_path / "empty" / "_x").mkdir(parents=True)
    (tmp_path / "empty" / "_x" / "a.parquet").write_bytes(b"")
    with pytest.raises(UsageError, match="'.*empty': a directory with no Parquet, JSON lines or CSV file under it"):
        scan_paths(POLICIES, [str(tmp_path / "empty")], str(tmp_path / "out.jsonl"), at="2021-10-20")
    # a folder that cannot be listed (as root, permissions do not stop it: os.walk is told so)
    import dsl.scan.source as source_module

    def unlistable(top: str, onerror: Any) -> Iterator[Any]:
        onerror(PermissionError(13, "Permission denied", os.path.join(top, "sub")))
        yield from ()

    with pytest.MonkeyPatch.context() as m:
        m.setattr(source_module.os, "walk", unlistable)
        with pytest.raises(UsageError, match="^--input '.*lake/sub': cannot be read: Permission denied$"):
            source_module.expand_inputs([str(tmp_path / "lake")])
    # CSV in a partition directory: its own columns too
    (tmp_path / "csv" / "price=500").mkdir(parents=True)
    (tmp_path / "csv" / "price=500" / "a.csv").write_text("id,category\nx,Gadgets\n", encoding="utf-8")
    scan_paths(POLICIES, [str(tmp_path / "csv")], str(tmp_path / "out.jsonl"), at="2021-10-20", jobs=1)
    assert [r["effect"] for r in read_output(tmp_path / "out.jsonl")] == ["allow"]


def test_json_lines_sent_to_workers_unread_keep_their_numbers(tmp_path: Path, workers: Workers) -> None:
    """JSON lines reach the workers as lines (``records.Lines``), read there: blank lines,
    bad lines, files that are one JSON value and the batches' edges keep each record's
    place, its error's line number and file, and the report's record numbers."""
    good = '{"id": "%s", "category": "Gadgets", "price": 150}'
    (tmp_path / "a.jsonl").write_bytes("\n".join([
        good % "a1", "", '{"id": broken', good % "a2", "   ", good % "a3", "\t", good % "a4",
        good % "a5", "[1, 2]", good % "a6"]).encode() + b"\n\xff\xfe\n" + (good % "a7").encode())
    (tmp_path / "b.jsonl").write_text('[{"id": "b1", "category": "Gadgets", "price": 150}, {"id": "b2"}]',
                                      encoding="utf-8")
    (tmp_path / "c.jsonl").write_text("\r\n".join(["", good % "c1", "nope", good % "c2"]), encoding="utf-8")
    inputs = [str(tmp_path / f"{n}.jsonl") for n in "abc"]
    outputs = []
    for jobs, batch in ((1, 100_000), (1, 2), (2, 2), (2, 3)):
        result = scan(P, SOURCES, inputs, str(tmp_path / "out.jsonl"), at="2021-10-20", batch_size=batch, jobs=jobs,
                      workers=workers if jobs == 2 else None)
        outputs.append((read_output(tmp_path / "out.jsonl"), result.report))
    assert all(o == outputs[0] for o in outputs)
    got, report = outputs[0]
    assert [g["id"] for g in got] == ["a1", None, "a2", "a3", "a4", "a5", None, "a6", None, "a7", "b1", "b2",
                                      "c1", None, "c2"]
    errors = [g["error"] for g in got if g["error"]]
    assert [e.split(": not", 1)[0] for e in errors] == [
        f"{tmp_path / 'a.jsonl'}: line 3", "a listing must be a JSON object, got a list of 2 items",
        f"{tmp_path / 'a.jsonl'}: line 12", f"{tmp_path / 'c.jsonl'}: line 3"]
    assert [e["record"] for e in report["errors"]["first"]] == [2, 7, 9, 14]
    # with --at-field, a bad line keeps its own message (the other records have no such field)
    scan(P, SOURCES, inputs, str(tmp_path / "out.jsonl"), at_field="when", batch_size=2, jobs=1)
    assert [g["error"] for g in read_output(tmp_path / "out.jsonl") if "no instant" not in g["error"]] == [
        errors[0], errors[2], errors[3]]


def test_json_lines_rows_are_written_as_json_line_writes_them() -> None:
    """The rows that repeat but for their id are written from a kept tail: the same bytes
    as ``records.json_line`` of the whole row, whatever the id or the texts hold."""
    from dsl.scan.records import json_line
    from dsl.scan.schema import COLUMNS, rows_to_output

    h = P.policy_hash
    rows: list[Any] = [
        ("a", "allow", (), (), None, (), None, "2021-10-20T00:00:00", h),
        (None, "allow", (), (), None, (), None, "2021-10-20T00:00:00", h),
        ("\ud800", "allow", (), (), None, (), None, "2021-10-20T00:00:00", h),  # a lone surrogate: escaped
        ("é\u2028", "flag", ("shop.coins",), (), None, ("warning \ud800",), None, "2021-10-20T00:00:00", h),
        (1.5, "allow", (), (), None, (), None, "2021-10-20T00:00:00", h),
        (2**70, "allow", (), (), None, (), None, "t", h),
        ("lists", "allow", [], [], None, [], None, "t", h),  # (not a key of the kept tails)
        ("b", "block", ("shop.gadgets",), (), {"rule": "shop.gadgets", "ladder": "escalate", "step": 1,
                                                "actions": ("remove listing",)}, (), None, "t", h),
        ("c", None, None, None, None, None, "line 3: not valid JSON", None, h)]
    want = b"".join(json_line(dict(zip(COLUMNS, [list(v) if isinstance(v, tuple) else v for v in r], strict=True)))
                    for r in rows).decode("utf-8")
    assert rows_to_output(rows * 2, "jsonl") == want * 2


def test_json_lines_read_as_eval_reads_them(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a", "category": "Gadgets", "price": 150}\n'
        '{"id": "b", broken\n'
        '\n'
        '{"listing": {"id": "c", "category": "Gadgets", "price": 150}, "at": "2021-10-01", "prior_violations": 2}\n'
        '{"id": "d", "category": "Gadgets", "price": 150, "prior": -1}\n'
        '[1, 2]\n', encoding="utf-8")
    result = scan(P, SOURCES, [str(tmp_path / "in.jsonl")], str(tmp_path / "out.jsonl"), at="2021-10-20",
                  prior_field="prior", jobs=1)
    got = read_output(tmp_path / "out.jsonl")
    assert [g["effect"] for g in got] == ["block", None, "allow", None, None]
    assert got[1]["error"].startswith("line 2: not valid JSON")
    assert got[2]["id"] == "c" and got[2]["at"] == "2021-10-01T00:00:00"  # the envelope's at, as eval reads it
    assert got[3]["error"].startswith("prior_violations: expected a whole number >= 0")
    assert got[4]["error"].startswith("a listing must be a JSON object")
    assert result.exit_code == 1 and result.errors == 3


# ------------------------------------------------------------------ usage errors: exit 2, nothing written

def test_usage_errors(tmp_path: Path) -> None:
    write_parquet([{"id": "a", "price": 1.0}], tmp_path / "in.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"old")
    cases = [
        (dict(inputs=[str(tmp_path / "missing.parquet")]), "no such file"),
        (dict(inputs=[str(tmp_path / "nothing*.csv")]), "no file matches"),
        (dict(inputs=[str(tmp_path / "bad.parquet")]), "cannot be read"),
        (dict(at_field="listed_at", at=None), "--at-field 'listed_at': the input has no such column"),
        (dict(at_field="listed..at", at=None), "--at-field 'listed..at': not a field path"),
        (dict(inputs=[str(tmp_path / "missing.parquet")], at_field="listed..at", at=None), "not a field path"),
        (dict(out=str(tmp_path / "no-dir" / "out.parquet")), "cannot be written"),
        (dict(out=str(tmp_path / "out.txt")), "cannot tell its format"),
        (dict(engine="oracle"), "unknown engine"),
        (dict(at="soon"), "--at: "),
    ]
    for change, message in cases:
        kw: dict[str, Any] = {"inputs": [str(tmp_path / "in.parquet")], "out": str(out), "at": "2021-10-20", "jobs": 1}
        kw.update(change)
        with pytest.raises(UsageError, match=message.replace("(", r"\(")):
            scan_paths(POLICIES, kw.pop("inputs"), kw.pop("out"), **kw)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    # the inputs are read while the policy set loads: a set with errors is still told first
    (tmp_path / "broken.policy").write_text("policy broken\nrule r: block nonsense ==\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        scan_paths(tmp_path / "broken.policy", [str(tmp_path / "missing.parquet")], str(out), at="2021-10-20")
    # test files alone are no policy set (its empty set allowed every record)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t_test.policy").write_text('test "x"\n  given {price: 6}\n  at 2025-01-01\n  expect block\n',
                                                      encoding="utf-8")
    with pytest.raises(UsageError, match="no policy files under .*, only test files"):
        scan_paths(tmp_path / "tests", [str(tmp_path / "in.parquet")], str(out), at="2021-10-20")
    assert out.read_bytes() == b"old"


def test_more_usage_errors(tmp_path: Path) -> None:
    """Found by review: each stopped the scan with a traceback, or went on with the wrong
    records, before."""
    write_parquet([{"id": "a", "price": 1.0, "seller": {"id": "s"}}], tmp_path / "in.parquet")
    write_parquet([{"id": "b", "price": "1.0"}], tmp_path / "text-price.parquet")
    out = tmp_path / "out.jsonl"
    (tmp_path / "report-dir").mkdir()
    cases = [
        # files whose column types differ: every price would be read as text
        (dict(inputs=[str(tmp_path / "in.parquet"), str(tmp_path / "text-price.parquet")]),
         "column 'price' is double there, but string read with the other files"),
        (dict(prior_field="prior"), "--prior-field 'prior': the input has no such column"),
        (dict(id_field="sku"), "--id-field 'sku': the input has no such column"),
        (dict(at_field="seller.listed", at=None), "--at-field 'seller.listed': the input has no such column"),
        (dict(at_field="price.day", at=None), "--at-field 'price.day': the input has no such column"),
        (dict(report=str(tmp_path / "report-dir")), "cannot be written: Is a directory"),
        (dict(report=str(out)), "the same file as --out"),
        (dict(report=str(tmp_path / "in.parquet")), "one of the inputs, which the scan would replace"),
        (dict(out=str(tmp_path / "in.parquet")), "one of the inputs, which the scan would replace"),
        (dict(report=str(POLICIES / "shop.policy")), "a file of the policy set, which the scan would replace"),
        (dict(report="/dev/null"), "cannot be written: not a regular file"),
        (dict(report=str(ROOT / "policies" / "alibaba" / "crypto-2021_test.policy")),
         "a policy, test or configuration file"),
    ]
    for change, message in cases:
        kw: dict[str, Any] = {"inputs": [str(tmp_path / "in.parquet")], "out": str(out), "at": "2021-10-20", "jobs": 1}
        kw.update(change)
        with pytest.raises(UsageError, match=message.replace("(", r"\(")):
            scan_paths(POLICIES, kw.pop("inputs"), kw.pop("out"), **kw)
        assert not out.exists()
    assert pq.read_table(tmp_path / "in.parquet").num_rows == 1
    # CSV files with no header at all (empty, blank lines) have no records, and so no field to check
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blank.csv").write_bytes(b"\xef\xbb\xbf\n\n")
    (tmp_path / "mixed.csv").write_bytes(b"\r\n\n")  # (DuckDB's reader refuses this one)
    for name in ("empty.csv", "blank.csv", "mixed.csv"):
        for change in (dict(prior_field="prior", at="2021-10-20"), dict(at_field="listed.at", id_field="sku")):
            result = scan_paths(POLICIES, [str(tmp_path / name)], str(out), **change)  # type: ignore[arg-type]
            assert result.records == 0 and result.exit_code == 0 and read_output(out) == []
    (tmp_path / "header.csv").write_text("id,category\n", encoding="utf-8")
    with pytest.raises(UsageError, match="--prior-field 'prior': the input has no such column"):
        scan_paths(POLICIES, [str(tmp_path / "header.csv")], str(out), prior_field="prior", at="2021-10-20")
    # the default id may be missing: its ids are null
    write_parquet([{"sku": "a", "price": 1.0}], tmp_path / "no-id.parquet")
    scan_paths(POLICIES, [str(tmp_path / "no-id.parquet")], str(out), at="2021-10-20")
    assert [r["id"] for r in read_output(out)] == [None]


def test_parquet_files_whose_types_differ(tmp_path: Path) -> None:
    """Read together, files take one type per column: where it reads a file's values
    otherwise (a boolean or a large integer as a double), the scan stops; widening an
    integer, adding a struct field, or a column no decision reads, is fine."""
    pq.write_table(pa.table({"id": ["a"], "verified": [True], "price": pa.array([9007199254740993]), "junk": ["x"],
                             "seller": [{"id": 1}]}), tmp_path / "u1.parquet")
    pq.write_table(pa.table({"id": ["b"], "verified": pa.array([1]), "price": [1.5], "junk": pa.array([1]),
                             "seller": [{"id": 2.5}]}), tmp_path / "u2.parquet")
    pq.write_table(pa.table({"id": ["c"], "price": pa.array([5], pa.int32()), "seller": [{"id": 3, "x": "y"}]}),
                   tmp_path / "u3.parquet")
    pq.write_table(pa.table({"id": ["d"], "price": pa.array([6], pa.int64()), "seller": [{"id": 4}]}),
                   tmp_path / "u4.parquet")
    (tmp_path / "p.policy").write_text("policy p\nrule v: flag price == 5 and seller.id > 1\n", encoding="utf-8")
    out = str(tmp_path / "out.jsonl")
    with pytest.raises(UsageError, match="column 'price' is int64 there, but double"):
        scan_paths(tmp_path / "p.policy", [str(tmp_path / "u1.parquet"), str(tmp_path / "u2.parquet")], out,
                   at="2021-10-20")
    result = scan_paths(tmp_path / "p.policy", [str(tmp_path / "u3.parquet"), str(tmp_path / "u4.parquet")], out,
                        at="2021-10-20")
    assert result.records == 2 and [r["effect"] for r in read_output(Path(out))] == ["flag", "allow"]
    # decimals that DuckDB widens without a change: an int at scale 0, the same float else
    import decimal

    pq.write_table(pa.table({"id": ["e"], "price": pa.array([decimal.Decimal("5")], pa.decimal128(10, 0)),
                             "seller": [{"id": decimal.Decimal("1.25")}]},
                            schema=pa.schema([("id", pa.string()), ("price", pa.decimal128(10, 0)),
                                              ("seller", pa.struct([("id", pa.decimal128(10, 2))]))])),
                   tmp_path / "u5.parquet")
    pq.write_table(pa.table({"id": ["f"], "price": pa.array([5], pa.uint64()),
                             "seller": [{"id": decimal.Decimal("2.5")}]},
                            schema=pa.schema([("id", pa.string()), ("price", pa.uint64()),
                                              ("seller", pa.struct([("id", pa.decimal128(20, 2))]))])),
                   tmp_path / "u6.parquet")
    result = scan_paths(tmp_path / "p.policy", [str(tmp_path / "u5.parquet"), str(tmp_path / "u6.parquet")], out,
                        at="2021-10-20")
    assert [r["effect"] for r in read_output(Path(out))] == ["flag", "flag"]


def test_dates_beyond_python_s_years_are_read_as_their_text(tmp_path: Path) -> None:
    """A Parquet date or time Python cannot hold (the year 10000) is its text, in that
    record alone: the scan goes on (it stopped with a traceback), as ``decide`` on the
    listing with that text would."""
    days = pa.array([2932897, 18920, -719163], pa.date32())
    stamps = pa.array([-62135596800001, 0, 1], pa.timestamp("ms"))
    pq.write_table(pa.table({"id": ["x", "y", "z"], "category": ["Gadgets"] * 3, "price": [150.0] * 3,
                             "listed_on": days, "seller": pa.array([{"since": s} for s in (0, -62135596800001, 1)],
                                                                   pa.struct([("since", pa.timestamp("ms"))]))}),
                   tmp_path / "in.parquet")
    out = tmp_path / "out.jsonl"
    scan_paths(POLICIES, [str(tmp_path / "in.parquet")], str(out), at_field="listed_on", jobs=1)
    got = read_output(out)
    assert [r["error"] is not None for r in got] == [True, False, True]
    assert "'10000-01-01'" in got[0]["error"] and "'0000-12-31'" in got[2]["error"]
    from dsl.scan.convert import column_values

    assert column_values(days) == ["10000-01-01", "2021-10-20", "0000-12-31"]
    assert column_values(stamps)[1:] == ["1970-01-01T00:00:00", "1970-01-01T00:00:00.001000"]


def test_a_map_s_keys_are_text_as_the_types_table_gives_their_values(tmp_path: Path) -> None:
    """A map's key of another type than text is the text of its value in the listing (a
    BLOB decoded, a TIMESTAMP in ISO form), or that value's JSON: it was Python's ``str``
    (``b'k'``, ``True``, a space in a date-time), so ``v.k == 'v'`` never held."""
    from dsl.scan.convert import column_values

    def keys(key_type: pa.DataType, key: Any) -> list[str]:
        (got,) = column_values(pa.array([[(key, "v")]], pa.map_(key_type, pa.string())))
        return list(got)

    assert keys(pa.binary(), b"k") == ["k"]
    assert keys(pa.bool_(), True) == ["true"]
    assert keys(pa.int64(), 12) == ["12"]
    assert keys(pa.float64(), 1.5) == ["1.5"]
    assert keys(pa.timestamp("us"), dt.datetime(2021, 10, 20, 8)) == ["2021-10-20T08:00:00"]
    assert keys(pa.timestamp("us", tz="UTC"), dt.datetime(2021, 10, 20, 8, tzinfo=dt.UTC)) == ["2021-10-20T08:00:00Z"]
    assert keys(pa.date32(), dt.date(2021, 10, 20)) == ["2021-10-20"]
    (tmp_path / "p.policy").write_text("policy mb\nrule byk: block v.k == 'v'\n", encoding="utf-8")
    pq.write_table(pa.table({"id": ["1"], "v": pa.array([[(b"k", "v")]], pa.map_(pa.binary(), pa.string()))}),
                   tmp_path / "m.parquet")
    out = tmp_path / "out.jsonl"
    scan_paths([str(tmp_path / "p.policy")], [str(tmp_path / "m.parquet")], str(out), at="2021-10-10", jobs=1)
    assert [r["effect"] for r in read_output(out)] == ["block"]


def test_an_envelope_s_at_and_prior_fields_are_its_listing_s(tmp_path: Path) -> None:
    """``--at-field`` and ``--prior-field`` name fields of the listing, in an envelope too;
    the envelope's own ``at`` and ``prior_violations`` override them (as for ``--at``)."""
    (tmp_path / "p.policy").write_text("policy q\n  timezone 'UTC'\nladder steps = remove listing\n"
                                       "  then close account\nrule coin: block title mentions 'bitcoin'\n"
                                       "  penalty steps\n", encoding="utf-8")
    listing = {"title": "bitcoin", "listed_on": "2021-10-20", "p": 1}
    records = [{"listing": {"id": "a", **listing}}, {"id": "b", **listing},
               {"listing": {"id": "c", "title": "bitcoin", "p": 1}, "at": "2021-10-21"},
               {"listing": {"id": "d", **listing}, "prior_violations": 0}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    scan_paths(tmp_path / "p.policy", [str(tmp_path / "in.jsonl")], str(out), at_field="listed_on", prior_field="p")
    got = read_output(out)
    assert [(r["id"], r["error"], r["penalty"]["step"]) for r in got] == [
        ("a", None, 2), ("b", None, 2), ("c", None, 2), ("d", None, 1)]
    assert [r["at"] for r in got] == ["2021-10-20T00:00:00"] * 2 + ["2021-10-21T00:00:00"] + ["2021-10-20T00:00:00"]


def test_columns_that_differ_only_in_case_are_a_usage_error(tmp_path: Path) -> None:
    """DuckDB reads ``Title`` beside ``title`` as ``Title_1``: the listing would lack it."""
    pq.write_table(pa.table({"id": ["a"], "title": ["lamp"], "Title": ["bitcoin"]}), tmp_path / "in.parquet")
    (tmp_path / "in.csv").write_text("id,title,Title\na,lamp,bitcoin\n", encoding="utf-8")
    (tmp_path / "bom.csv").write_bytes("\ufeffid,title, Title\na,lamp,bitcoin\n".encode())  # DuckDB trims names
    for name in ("in.parquet", "in.csv", "bom.csv"):
        with pytest.raises(UsageError, match="the columns 'title' and 'Title' differ only in case"):
            scan_paths(POLICIES, [str(tmp_path / name)], str(tmp_path / "out.jsonl"), at="2021-10-20")
    # across files (DuckDB makes them one column), and in a struct
    pq.write_table(pa.table({"id": ["b"], "Price": [1.0]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"id": ["c"], "price": [2.0]}), tmp_path / "p2.parquet")
    pq.write_table(pa.table({"id": ["d"], "seller": [{"id": "s", "ID": "t"}]}), tmp_path / "s.parquet")
    pq.write_table(pa.table({"id": ["e"], "tags": pa.array([[{"name": "x", "Name": "y"}]], pa.list_(
        pa.struct([("name", pa.string()), ("Name", pa.string())])))}), tmp_path / "l.parquet")
    for names, message in ((["p1.parquet", "p2.parquet"], "the columns 'Price' \\(in '.*p1.parquet'\\) and 'price'"),
                           (["s.parquet"], "the columns 'seller.id' and 'seller.ID'"),
                           (["l.parquet"], "the columns 'tags.name' and 'tags.Name'")):
        with pytest.raises(UsageError, match=message):
            scan_paths(POLICIES, [str(tmp_path / n) for n in names], str(tmp_path / "out.jsonl"), at="2021-10-20")
    # a column of that shape beside another is not one
    pq.write_table(pa.table({"id": ["a"], "title": ["lamp"], "title_1": ["x"]}), tmp_path / "ok.parquet")
    assert scan_paths(POLICIES, [str(tmp_path / "ok.parquet")], str(tmp_path / "out.jsonl"),
                      at="2021-10-20").records == 1


_CSV_TEXT = st.text(st.sampled_from(list('ab ,"\n\r\t\'{}[]:-1.é中\u3000\\')), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(st.one_of(drawn._CELLS, _CSV_TEXT), min_size=3, max_size=3), min_size=1, max_size=8),
       names=st.sampled_from([["id", "title", "seller.id"], ["id", " title", "price"], ["a", "b", "c"]]),
       bad=st.lists(st.integers(0, 8), max_size=3))
def test_bad_csv_rows_among_drawn_ones(tmp_path_factory: pytest.TempPathFactory, cells: list[list[str]],
                                      names: list[str], bad: list[int]) -> None:
    """A file with rows of the wrong width among drawn ones (quotes, line breaks, commas,
    JSON-like and non-ASCII cells): ``csv_source`` gives each bad row a ``Bad`` record in
    its place and every other row the listing DuckDB gives it in the file without the bad
    rows; or, where its two readings disagree, a usage error, never another listing."""
    from dsl.scan.convert import batch_listings
    from dsl.scan.csv_rows import csv_source
    from dsl.scan.records import Bad
    from dsl.scan.source import open_source

    folder = tmp_path_factory.mktemp("csv")
    rows: list[list[str] | None] = list(cells)
    for k in sorted(bad, reverse=True):
        rows.insert(min(k, len(rows)), None)
    with open(folder / "clean.csv", "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([names, *cells])
    with open(folder / "bad.csv", "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([names, *(r if r is not None else ["x", "y", "z", "extra"] for r in rows)])
    clean = iter([x for b in open_source([str(folder / "clean.csv")], batch_size=100, at_field=None,
                                         predicate=None).batches for x in batch_listings(b, csv=True)])
    try:
        ours = [x for b in csv_source([str(folder / "bad.csv")], 100).batches for x in b]
    except UsageError as e:
        assert "reads the file's rows otherwise" in str(e)
        return
    assert [isinstance(x, Bad) for x in ours] == [r is None for r in rows]
    assert [x for x in ours if not isinstance(x, Bad)] == list(clean)


def test_duckdb_s_csv_sniffer_drops_no_row(tmp_path: Path) -> None:
    """DuckDB's sniffer took the rows before a ragged one for a preamble (and skipped them
    without a word), and a line starting with ``#`` for a comment."""
    (tmp_path / "ragged.csv").write_text("id,title\n1,gold coin\n2,lamp\n3,a,b\n", encoding="utf-8")
    (tmp_path / "hash.csv").write_text("id,title\n1,x\n#2,gold coin\n3,y\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    scan_paths(POLICIES, [str(tmp_path / "ragged.csv")], str(out), at="2021-10-20")
    assert [(r["id"], r["error"]) for r in read_output(out)] == [
        (1, None), (2, None), (None, "line 4: 3 cells, where the header has 2")]
    scan_paths(POLICIES, [str(tmp_path / "hash.csv")], str(out), at="2021-10-20")
    assert [r["id"] for r in read_output(out)] == [1, "#2", 3]


def test_csv_headers_the_second_reading_refuses_rather_than_misread(tmp_path: Path) -> None:
    """Read again for its bad rows, a CSV file whose header is not UTF-8, or names a column
    twice (case aside), is a usage error (DuckDB's forgiving reading took its header from
    a row, or renamed a column): never listings of the wrong columns."""
    (tmp_path / "latin.csv").write_bytes(b"id,title,not\xe9\n1,xa,q\n2,xb,r\n3,x\n")
    (tmp_path / "case.csv").write_text("id,Title,title\n1,foo,x\n2,a\n", encoding="utf-8")
    (tmp_path / "blank.csv").write_text("\nid,Title,title\n1,x,coin\n", encoding="utf-8")  # blank lines first
    for name, message in (("latin.csv", "its header is not UTF-8"), ("case.csv", "names a column twice"),
                          ("blank.csv", "differ only in case")):
        with pytest.raises(UsageError, match=message):
            scan_paths(POLICIES, [str(tmp_path / name)], str(tmp_path / "out.jsonl"), at="2021-10-20")
    # an empty header name (pandas' index column, a trailing comma): DuckDB names it itself
    (tmp_path / "pandas.csv").write_text(",id,title,category,price\n0,1,coin a,Gadgets,200\n1,2,b\n"
                                         "2,3,coin c,Gadgets,50\n", encoding="utf-8")
    scan_paths(POLICIES, [str(tmp_path / "pandas.csv")], str(tmp_path / "out.jsonl"), at="2021-10-20")
    assert [r["id"] for r in read_output(tmp_path / "out.jsonl")] == [1, None, 3]


def test_blank_lines_before_a_csv_header_and_globs_over_folders(tmp_path: Path) -> None:
    """Blank lines before the header are skipped (not read as the header, the header then
    as a record); a glob's folders (data/** matches data/) are not inputs; a bad line of
    an input of several files names its file."""
    (tmp_path / "data" / "k=1").mkdir(parents=True)
    (tmp_path / "data" / "k=1" / "a.csv").write_text("\n\nid,title\n1,gold coin\n2,lamp\n3,a,b\n", encoding="utf-8")
    (tmp_path / "data" / "k=1" / "b.csv").write_text("\n\nid,title\n4,x\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    scan_paths(POLICIES, [str(tmp_path / "data" / "**")], str(out), at="2021-10-20")
    got = read_output(out)
    assert [r["id"] for r in got] == [1, 2, None, 4]
    assert got[2]["error"] == f"{tmp_path / 'data' / 'k=1' / 'a.csv'}: line 6: 3 cells, where the header has 2"


def test_bad_csv_rows_get_an_error_of_their_own(tmp_path: Path) -> None:
    """A CSV row with the wrong number of cells, or bytes that are not UTF-8, stops
    DuckDB's reading, early (its sniffing) or late (past the rows it samples): the input is
    read again by Python's csv module, each bad row gets an error, the others their
    decisions, in order."""
    rows = [{"id": f"r{i}", "category": "Gadgets", "price": 150.0 if i % 2 else 12.0} for i in range(6)]
    write_csv(rows, tmp_path / "good.csv")
    lines = (tmp_path / "good.csv").read_bytes().splitlines(keepends=True)
    bad = [lines[0], lines[1], b"x1,Gadgets\r\n", lines[2], b"x2,Gadgets,150,extra\r\n", lines[3],
           b"x3,Gadg\xffets,150\r\n", *lines[4:]]  # (csv.writer ends its lines with CRLF)
    (tmp_path / "early.csv").write_bytes(b"".join(bad))
    late = [lines[0]] + [f"p{i},Toys,1\r\n".encode() for i in range(25_000)] + [b"x4,Toys\r\n"] + lines[1:]
    (tmp_path / "late.csv").write_bytes(b"".join(late))
    for name, errors in (("early.csv", {1: "line 3: 2 cells, where the header has 3",
                                        3: "line 5: 4 cells, where the header has 3", 5: "line 7: not UTF-8"}),
                         ("late.csv", {25_000: "line 25002: 2 cells, where the header has 3"})):
        for jobs in (1, 2):
            out = tmp_path / "out.parquet"
            result = scan_paths(POLICIES, [str(tmp_path / name)], str(out), at="2021-10-20", jobs=jobs, batch_size=7)
            got = read_output(out)
            assert result.exit_code == 1 and {i: r["error"] for i, r in enumerate(got) if r["error"]} == errors
            decided = [r for i, r in enumerate(got) if i not in errors][-6:]
            assert decided == [expected(r, at="2021-10-20", id_text=True) for r in rows]
    with pytest.raises(UsageError, match="--at-field 'listed': the input has no such column"):  # read again, still
        scan_paths(POLICIES, [str(tmp_path / "early.csv")], str(tmp_path / "out.parquet"), at_field="listed")


def test_csv_files_read_again_share_one_database_closed_when_the_reading_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``csv_source`` opens one DuckDB database for all its files (opening one takes some
    40 ms), their columns and their records, each file's rejected rows its own; and closes
    it when its batches end, are closed (read or not), or fail, or when it fails itself."""
    import duckdb

    from dsl.scan.csv_rows import csv_source
    from dsl.scan.records import Bad

    opened: list[duckdb.DuckDBPyConnection] = []
    connect = duckdb.connect

    def counted(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    def closed(con: duckdb.DuckDBPyConnection) -> bool:
        try:
            con.execute("SELECT 1")
        except duckdb.Error:
            return True
        return False

    monkeypatch.setattr(duckdb, "connect", counted)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("id,title\n1,gold coin\n2,lamp\n3,a,b\n", encoding="utf-8")
    b.write_text("id,title\n4\n5,x\n6,y,z\n", encoding="utf-8")
    source = csv_source([str(a), str(b)], 2)
    assert len(opened) == 1 and not closed(opened[0])
    got = [x.message if isinstance(x, Bad) else x["id"] for batch in source.batches for x in batch]
    assert got == [1, 2, f"{a}: line 4: 3 cells, where the header has 2",
                   f"{b}: line 2: 1 cell, where the header has 2", 5, f"{b}: line 4: 3 cells, where the header has 2"]
    assert len(opened) == 1 and closed(opened[0])
    for read in (0, 1):  # batches closed before they end, read or not
        opened.clear()
        source = csv_source([str(a), str(b)], 2)
        for _ in range(read):
            next(source.batches)
        source.batches.close()
        assert len(opened) == 1 and closed(opened[0])
    opened.clear()
    source = csv_source([str(a), str(b)], 2)
    b.unlink()  # gone while the batches are read
    with pytest.raises(UsageError, match="cannot be read"):
        list(source.batches)
    assert len(opened) == 1 and closed(opened[0])
    opened.clear()
    (tmp_path / "latin.csv").write_bytes(b"id,title,not\xe9\n1,xa,q\n3,x\n")
    with pytest.raises(UsageError, match="its header is not UTF-8"):
        csv_source([str(a), str(tmp_path / "latin.csv")], 2)
    assert len(opened) == 1 and closed(opened[0])


def test_a_page_duckdb_cannot_read_mid_stream_is_a_usage_error(tmp_path: Path) -> None:
    """A damaged page in a Parquet file's second row group is found while the stream is
    read, after the first batches were decided (pyarrow's reader raises DuckDB's error as
    an OSError): exit 2, naming the file, no traceback, no output."""
    n = 60_000
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(n)], "category": ["Gadgets"] * n,
                             "title": [f"title number {i} " * 3 for i in range(n)]}), tmp_path / "c.parquet",
                   row_group_size=30_000, compression="snappy")
    data = bytearray((tmp_path / "c.parquet").read_bytes())
    for k in range(int(len(data) * 0.8), int(len(data) * 0.8) + 64):  # in the second row group's titles
        data[k] ^= 0x5A
    (tmp_path / "in.parquet").write_bytes(bytes(data))
    (tmp_path / "c.parquet").unlink()
    done = subprocess.run([sys.executable, "-m", "dsl", "scan", str(POLICIES), "--input", "in.parquet", "--out",
                           "out.parquet", "--at", "2021-10-20", "--jobs", "1"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert "cannot be read:" in done.stderr and "in.parquet" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_file_names_with_glob_characters(tmp_path: Path) -> None:
    """A pattern is a glob, as a shell reads it; a file whose name holds glob characters
    is read once, literally (DuckDB would expand its name again); a glob without an
    extension takes its files' format."""
    write_parquet([{"id": "q?"}], tmp_path / "q?.parquet")
    write_parquet([{"id": "qa"}], tmp_path / "qa.parquet")
    write_parquet([{"id": "[1]"}], tmp_path / "[1].parquet")
    write_parquet([{"id": "1"}], tmp_path / "1.parquet")
    out = tmp_path / "out.jsonl"

    def ids(*patterns: str) -> list[Any]:
        scan_paths(POLICIES, [str(tmp_path / p) for p in patterns], str(out), at="2021-10-20", jobs=1)
        return [r["id"] for r in read_output(out)]

    assert ids("q?.parquet") == ["q?", "qa"]
    assert ids("q*") == ["q?", "qa"]
    assert ids("[[]1].parquet") == ["[1]"]
    assert ids("[1].parquet") == ["1"]  # the glob matches a file: the glob it is
    (tmp_path / "1.parquet").unlink()
    assert ids("[1].parquet") == ["[1]"]  # no file matches it: the file of that name


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_a_lone_surrogate_is_written_as_its_escape(tmp_path: Path, fmt: str) -> None:
    """JSON may hold a lone surrogate (``\\ud800``), which UTF-8 cannot: it is written
    as that escape, in the id and in the report's sellers, as ``eval`` writes it."""
    (tmp_path / "in.jsonl").write_text('{"id": "\\ud800", "category": "Gadgets", "price": 150, '
                                       '"seller": {"id": "s\\udc80"}}\n{"id": "ok"}\n', encoding="utf-8")
    out = tmp_path / f"out.{fmt}"
    result = scan_paths(POLICIES, [str(tmp_path / "in.jsonl")], str(out), at="2021-10-20",
                        report=str(tmp_path / "r.json"))
    assert result.records == 2
    got = read_output(out)
    assert [r["id"] for r in got] == (["\ud800", "ok"] if fmt == "jsonl" else ["\\ud800", "ok"])
    assert "s\\udc80" in (tmp_path / "r.json").read_text(encoding="utf-8")


def test_an_id_json_cannot_write_as_a_number_is_its_text(tmp_path: Path) -> None:
    """``1e400`` reads as infinity, which JSON has no number for: the JSON lines output
    writes the id as its text, as Parquet and CSV do, and stays valid JSON."""
    (tmp_path / "in.jsonl").write_text('{"id": 1e400}\n{"id": -1e400}\n{"id": 5}\n', encoding="utf-8")
    for fmt in ("jsonl", "csv"):
        scan_paths(POLICIES, [str(tmp_path / "in.jsonl")], str(tmp_path / f"out.{fmt}"), at="2021-10-20")
        got = [r["id"] for r in read_output(tmp_path / f"out.{fmt}")]
        assert got == (["Infinity", "-Infinity", 5] if fmt == "jsonl" else ["Infinity", "-Infinity", "5"])


def test_cli_exit_statuses(tmp_path: Path) -> None:
    write_jsonl([{"id": "a", "category": "Gadgets", "price": 150}], tmp_path / "in.jsonl")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dsl", "scan", str(POLICIES), *args], capture_output=True,
                              text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})

    ok = run("--input", "in.jsonl", "--out", "out.csv", "--at", "2021-10-20", "--jobs", "1", "--report", "r.json")
    assert ok.returncode == 0, ok.stderr
    assert "shop.gadgets" in ok.stderr and "1 records" in ok.stderr  # the table, on standard error
    for engine in ("duckdb", "spark"):  # the output checked before Spark starts
        unwritable = run("--input", "in.jsonl", "--out", "no-dir/out.csv", "--engine", engine, "--at", "2021-10-20")
        assert unwritable.returncode == 2 and "cannot be written" in unwritable.stderr, unwritable.stderr
        assert "Traceback" not in unwritable.stderr
    missing = run("--input", "nope.parquet", "--out", "o.parquet")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_an_output_the_disk_cannot_hold_is_a_usage_error(tmp_path: Path, fmt: str) -> None:
    """A write that fails in the middle of a scan (here the file size limit, as a full disk
    would) is exit status 2 and a message naming ``--out``, whether the output is written by
    its thread (Parquet, CSV) or not (JSON lines); no output is left under either name."""
    rows = [{"id": f"L{i:06d}", "category": "Gadgets", "title": "x" * 200, "price": float(i)} for i in range(20_000)]
    write_parquet(rows, tmp_path / "in.parquet")
    code = ("import resource, sys; from dsl.cli import run; "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY)); "
            f"sys.argv = ['policy', 'scan', {str(POLICIES)!r}, '--input', 'in.parquet', '--out', 'out.{fmt}', "
            "'--at', '2021-10-20', '--jobs', '1']; run()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert f"--out '{tmp_path / ('out.' + fmt)}': cannot be written" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_scan_command_gives_the_cli_output_as_data(tmp_path: Path) -> None:
    from dsl.api import scan_command

    write_jsonl([{"id": "a", "category": "Gadgets", "price": 150}], tmp_path / "in.jsonl")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.policy").write_text("policy x\nrule r: block nope ==\n", encoding="utf-8")
    bad = scan_command(tmp_path / "bad", [str(tmp_path / "in.jsonl")], str(tmp_path / "out.csv"), at="2021-10-20",
                       jobs=1)
    assert bad.exit_code == 1 and all(line.err for line in bad.lines)
    assert bad.text.endswith("policy: the policy set has errors; run `policy check` for details\n")
    assert not (tmp_path / "out.csv").exists()
    ok = scan_command(POLICIES, [str(tmp_path / "in.jsonl")], str(tmp_path / "out.csv"), at="2021-10-20", jobs=1)
    assert ok.exit_code == 0 and all(line.err for line in ok.lines)
    assert "shop.gadgets" in ok.text and "1 records in " in ok.text and ok.text.endswith(f"-> {tmp_path / 'out.csv'}\n")


# ------------------------------------------------------------------ the report

def test_report(tmp_path: Path) -> None:
    rows = [{"id": "a", "category": "Gadgets", "price": 150, "seller": {"id": "s1"}, "prior": 1},
            {"id": "b", "category": "Gadgets", "price": 150, "seller": {"id": "s1"}},
            {"id": "c", "title": "mining rig", "seller": {"id": "s2"}},
            {"id": "d", "title": "gold coin"},
            {"id": "e", "category": "Gadgets", "price": 150, "prior": -3}]
    write_jsonl(rows, tmp_path / "in.jsonl")
    result = scan(P, SOURCES, [str(tmp_path / "in.jsonl")], str(tmp_path / "out.jsonl"), at="2021-10-20",
                  prior_field="prior", report=str(tmp_path / "report.json"), jobs=1)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["records"] == 5 and result.report["records"] == 5
    assert report["effects"] == {"block": 3, "flag": 1}
    assert report["policies"] == {"shop": 3, "other": 1}
    assert report["rules"] == {"shop.gadgets": 2, "other.rigs": 1, "shop.coins": 1}
    assert report["penalty_steps"] == {"escalate step 1": 1, "escalate step 2": 1, "other.rigs step 1": 1}
    assert report["errors"]["count"] == 1 and report["errors"]["first"][0]["record"] == 5
    assert report["top_blocked_sellers"] == [{"seller": "s1", "blocked": 2}, {"seller": "s2", "blocked": 1}]


# ------------------------------------------------------------------ eval streams (item 6)

def _old_read_records(data: bytes) -> list[Any]:
    """policy eval's reader before it streamed (the whole input read first): the oracle."""
    from dsl.scan.records import Bad, loads

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return []
    try:
        whole = loads(data.decode("utf-8"))
    except ValueError:
        pass
    else:
        return list(whole) if isinstance(whole, list) else [whole]
    out: list[Any] = []
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            out.append(Bad(f"line {number}: not UTF-8: byte {e.start + 1} of the line (0x{raw[e.start]:02x}) "
                           "cannot be decoded"))
            continue
        try:
            out.append(loads(line))
        except ValueError as e:
            out.append(Bad(f"line {number}: not valid JSON: {e}"))
    return out


def _comparable(records: list[Any]) -> list[Any]:
    from dsl.scan.records import Bad

    return [("bad", r.message) if isinstance(r, Bad) else r for r in records]


PIECES = [b'{"a": 1}', b'[1, 2]', b'{', b'"a": [', b'1,', b']', b'}', b'', b'  ', b'{"b": "\xff"}', b'x', b'[',
          b'"text"', b'null', b'\r', b'{"c": 1} {"d": 2}', b'\xef\xbb\xbf{"e": 1}']


@settings(max_examples=at_least(200), deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=8), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_the_streaming_reader_reads_as_the_whole_input_reader(pieces: list[bytes], sep: bytes) -> None:
    import io

    from dsl.scan.records import read_json_records

    data = sep.join(pieces)
    assert _comparable(list(read_json_records(io.BytesIO(data)))) == _comparable(_old_read_records(data))


def test_eval_writes_a_decision_before_reading_the_next_line() -> None:
    from dsl.eval_stream import run_eval

    read: list[int] = []

    class Lines:
        def __iter__(self) -> Iterator[bytes]:
            for i in range(3):
                read.append(i)
                yield json.dumps({"id": i, "category": "Gadgets", "price": 150}).encode() + b"\n"

        def read(self) -> bytes:
            raise AssertionError("the whole input is read at once")

    out = iter(run_eval(P, Lines(), at="2021-10-20"))  # type: ignore[arg-type]
    next(out)
    assert read == [0, 1]  # two lines to know that the input is not one JSON value
    next(out)
    assert read == [0, 1]
    next(out)
    assert read == [0, 1, 2]  # then one line read for each decision


# ------------------------------------------------------------------ the Spark engine (item 4)
# One local Spark session for each process of the run: ``spark_session`` (tests/conftest.py).


def _spark_scan(inputs: list[Path], out: Path, **kw: Any) -> Any:
    from dsl.scan.spark_engine import scan_spark

    return scan_spark(P, SOURCES, [str(i) for i in inputs], str(out), **kw)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=catalogues(), fmt=st.sampled_from(["parquet", "jsonl", "csv"]),
       out=st.sampled_from(["parquet", "jsonl", "csv"]), pushdown=st.booleans(), batch=st.sampled_from([3, 1000]),
       at_field=st.booleans())
def test_exact_with_spark(tmp_path_factory: pytest.TempPathFactory, spark_session: Any, rows: list[dict[str, Any]],
                          fmt: str, out: str, pushdown: bool, batch: int, at_field: bool) -> None:
    d = tmp_path_factory.mktemp("spark")
    if fmt != "jsonl" and not rows:
        return  # an empty Parquet or CSV file has no columns
    WRITERS[fmt](rows, d / f"in.{fmt}")
    options = dict(at=None if at_field else "2021-10-20", at_field="listed_at" if at_field else None,
                   prior_field="prior", use_pushdown=pushdown, batch_size=batch)
    result = _spark_scan([d / f"in.{fmt}"], d / f"out.{out}", **options)
    want = []
    for r in rows:
        listing = _strip(r)
        want.append(expected(listing, at=listing.get("listed_at") if at_field else "2021-10-20",
                             prior=listing.get("prior", 0), id_text=out != "jsonl"))
        if at_field and r["listed_at"] is None:
            want[-1]["error"] = "listed_at: no instant to decide at (the field is missing or null)"
    assert read_output(d / f"out.{out}") == want
    duck = scan(P, SOURCES, [str(d / f"in.{fmt}")], str(d / f"duck.{out}"), jobs=1, **options)  # type: ignore[arg-type]
    assert result.report == duck.report and result.exit_code == duck.exit_code


def test_spark_keeps_input_order_across_files_and_splits(tmp_path: Path, spark_session: Any) -> None:
    rows = [{"id": f"r{i}", "category": "Gadgets" if i % 3 else "Toys", "price": float(i % 300),
             "title": "a mining rig" if i % 7 == 0 else "lamp", "seller": {"id": f"s{i % 5}"},
             "listed_at": ["2021-10-20", "2021-10-07", "2021-13-01", "2021-10-31T23:59:59"][i % 4],
             "prior": -1 if i % 101 == 0 else i % 3} for i in range(3000)]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:2000]), tmp_path / "in" / "a.parquet", row_group_size=100)
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "title"} for r in rows[2000:]]),
                   tmp_path / "in" / "b.parquet", row_group_size=100)
    spark_session.conf.set("spark.sql.files.maxPartitionBytes", "4096")  # many splits of each file
    try:
        got = _spark_scan([tmp_path / "in" / "*.parquet"], tmp_path / "out.parquet", at_field="listed_at",
                          prior_field="prior", batch_size=64, report=str(tmp_path / "report.json"))
    finally:
        spark_session.conf.unset("spark.sql.files.maxPartitionBytes")
    duck = scan(P, SOURCES, [str(tmp_path / "in" / "*.parquet")], str(tmp_path / "duck.parquet"), at_field="listed_at",
                prior_field="prior", jobs=1)
    assert read_output(tmp_path / "out.parquet") == read_output(tmp_path / "duck.parquet")
    assert [r["id"] for r in read_output(tmp_path / "out.parquet")] == [r["id"] for r in rows]
    assert got.report == duck.report and got.errors > 10  # the first errors' record numbers too
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["records"] == 3000


def test_spark_reads_a_directory_as_duckdb_does(tmp_path: Path, spark_session: Any) -> None:
    rows = _lake(tmp_path / "lake")
    got = _spark_scan([tmp_path / "lake"], tmp_path / "out.jsonl", at="2021-10-20")
    assert read_output(tmp_path / "out.jsonl") == [expected(r, at="2021-10-20") for r in rows]
    assert len(got.notes) == 1 and "'price=500' is named as a Hive partition" in got.notes[0]


def test_spark_predicate_is_the_duckdb_predicate(tmp_path: Path, spark_session: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from dsl.scan import spark_engine
    from dsl.scan.decide import Job
    from dsl.scan.pushdown import sql_predicate
    from dsl.scan.spark_engine import duckdb_types, narrowing, spark_predicate
    from dsl.scan.spark_sql import to_spark

    rows = [{"id": str(i), "category": c, "title": t, "price": p, "tags": g, "seller": s, "listed_at": a, "prior": n}
            for i, (c, t, p, g, s, a, n) in enumerate([
                ("Gadgets", "a Mining  Rig", 150.0, ["x", None], {"id": "s1"}, "2021-10-20", 0),
                ("Électronique", "pièce d'or", float("nan"), None, None, "2021-10-07", -1),
                (None, "COIN", float("inf"), [], {"id": None}, "2021-10-14T23:00:00", 2),
                ("toys", None, 1e300, ["a"], {"id": "s2"}, "0000-01-01", None),
                ("GADGETS", "it's a \\ coin", 100.5, None, None, None, 3)])]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    frame = spark_session.read.parquet(str(tmp_path / "in.parquet"))
    for at, at_field in (("2021-10-20", None), (None, "listed_at")):
        job = Job("parquet", at, ("listed_at",) if at_field else None, ("prior",), ("id",), ("seller", "id"))
        columns = duckdb_types(frame.schema)
        duck_sql = sql_predicate(P.policy_set, at=at, at_field=at_field, columns=columns, prior_field="prior",
                                 lookup=True, at_checked=True)
        spark_sql = spark_predicate(P, job, columns)
        assert duck_sql is not None and spark_sql is not None
        con = duckdb.connect()
        want = [r[0] for r in con.execute(f"SELECT ({duck_sql}) FROM read_parquet('{tmp_path / 'in.parquet'}')")
                .fetchall()]
        got = [r[0] for r in frame.selectExpr(f"({spark_sql})").collect()]
        assert got == want
        assert narrowing(P, job, columns) == spark_sql
        coarse_sql = sql_predicate(P.policy_set, at=at, at_field=at_field, columns=columns, prior_field="prior",
                                   coarse=True, lookup=True, at_checked=True)
        assert coarse_sql is not None
        with monkeypatch.context() as m:  # the exact predicate too big for Spark: the coarse one, as with DuckDB
            m.setattr(spark_engine, "SPARK_SQL_LIMIT", len(duck_sql) - 1)
            assert narrowing(P, job, columns) == (to_spark(coarse_sql) if len(coarse_sql) < len(duck_sql) else None)
            m.setattr(spark_engine, "SPARK_SQL_LIMIT", min(len(duck_sql), len(coarse_sql)) - 1)
            assert narrowing(P, job, columns) is None  # both too big: every record decided


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), by_field=st.booleans(), as_csv=st.booleans(), coarse=st.booleans(), at_checked=st.booleans())
def test_spark_predicate_on_drawn_sets_and_catalogues(tmp_path_factory: pytest.TempPathFactory, spark_session: Any,
                                                      data: st.DataObject, by_field: bool, as_csv: bool,
                                                      coarse: bool, at_checked: bool) -> None:
    """The Spark rendering of the pushdown (exact or coarse) has DuckDB's value on every
    row, for the policy sets and typed (or CSV) catalogues that tests/test_pushdown.py draws."""
    import duckdb

    from dsl.scan.pushdown import sql_predicate
    from dsl.scan.spark_engine import duckdb_types
    from dsl.scan.spark_sql import to_spark

    ps, table = data.draw(drawn.policy_sets()), data.draw(drawn.csv_catalogues() if as_csv else drawn.catalogues())
    path = tmp_path_factory.mktemp("drawn") / "t.parquet"
    pq.write_table(table, path)
    frame = spark_session.read.parquet(str(path))
    at_field = "listed_on" if by_field and "listed_on" in table.column_names else None
    where = sql_predicate(ps, at=None if at_field else data.draw(drawn._AT), at_field=at_field,
                          columns=duckdb_types(frame.schema),
                          prior_field="prior" if "prior" in table.column_names else None, csv=as_csv, coarse=coarse,
                          at_checked=at_checked)
    if where is None:
        return
    want = [r[0] for r in duckdb.connect().execute(f"SELECT ({where}) FROM read_parquet('{path}')").fetchall()]
    assert [r[0] for r in frame.selectExpr(f"(({to_spark(where)}) IS NOT FALSE)").collect()] == want, where


def test_spark_float_prior_beyond_a_long(tmp_path: Path, spark_session: Any) -> None:
    """A DOUBLE prior of 1e19 or 1e300 is a whole number >= 0. The pushdown's test that a prior
    is whole (``x <> floor(x)``) must not fail in Spark, whose ``floor`` is a BIGINT that
    overflows in ANSI mode: the scan decides these records as the DuckDB engine does."""
    rows = [{"id": str(i), "category": "Gadgets", "price": 150.0, "title": "coin", "prior": p}
            for i, p in enumerate([1e19, 1e300, 1.5, -1.0, 2.0, None, float("inf")])]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    options: dict[str, Any] = dict(at="2021-10-20", prior_field="prior")
    _spark_scan([tmp_path / "in.parquet"], tmp_path / "out.jsonl", **options)
    scan(P, SOURCES, [str(tmp_path / "in.parquet")], str(tmp_path / "duck.jsonl"), jobs=1, **options)
    got = read_output(tmp_path / "out.jsonl")
    assert got == read_output(tmp_path / "duck.jsonl")
    assert [r["error"] is None for r in got] == [True, True, False, False, True, True, False]


def test_spark_gives_a_csv_row_of_other_cells_its_error(tmp_path: Path, spark_session: Any) -> None:
    """A CSV row with fewer or more cells than its header is a record in error, as with
    DuckDB (Spark's reader would fill the missing cells with nulls and drop the extra ones,
    and the row would be decided as another listing), whether or not the pushdown would
    rule it out; a trailing empty cell is dropped, as DuckDB drops it. Spark cannot name
    the row's line: the message is DuckDB's without it."""
    (tmp_path / "a.csv").write_text('id,category,title\n1,Toys,lamp\n2,Electronics\n3,Toys,a rig,extra\n'
                                    '4,Electronics,"an antminer\nS9",\n5,"Toys",x\n', encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,category\n6\n7,Toys\n", encoding="utf-8")
    for inputs, pushdown in (([tmp_path / "a.csv"], True), ([tmp_path / "a.csv"], False),
                             ([tmp_path / "a.csv", tmp_path / "b.csv"], True)):
        got = _spark_scan(inputs, tmp_path / "spark.jsonl", at="2021-10-20", use_pushdown=pushdown)
        duck = scan(P, SOURCES, [str(i) for i in inputs], str(tmp_path / "duck.jsonl"), at="2021-10-20", jobs=1)
        want = read_output(tmp_path / "duck.jsonl")
        for row in want:
            if row["error"] is not None:
                row["error"] = re.sub(r"line \d+: ", "", row["error"])
        assert read_output(tmp_path / "spark.jsonl") == want
        errors = [r["error"] for r in want if r["error"]]
        prefix = f"{tmp_path / 'a.csv'}: " if len(inputs) > 1 else ""
        assert errors[:2] == [f"{prefix}2 cells, where the header has 3", f"{prefix}4 cells, where the header has 3"]
        assert len(errors) == (3 if len(inputs) > 1 else 2)
        assert got.exit_code == duck.exit_code == 1
    # an empty file beside; a header that has the bad rows' column's name; a bad row with a cell
    # longer than the csv module's default limit
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    (tmp_path / "c.csv").write_text(f"id,__policy_scan_bad\n8,x\n9,{'y' * 200_000},z\n", encoding="utf-8")
    inputs = [tmp_path / "empty.csv", tmp_path / "c.csv"]
    _spark_scan(inputs, tmp_path / "spark.jsonl", at="2021-10-20")
    scan(P, SOURCES, [str(i) for i in inputs], str(tmp_path / "duck.jsonl"), at="2021-10-20", jobs=1)
    want = [{**r, "error": r["error"] and re.sub(r"line \d+: ", "", r["error"])}
            for r in read_output(tmp_path / "duck.jsonl")]
    assert [r["error"] for r in want] == [None, f"{tmp_path / 'c.csv'}: 3 cells, where the header has 2"]
    assert read_output(tmp_path / "spark.jsonl") == want


def test_spark_reads_file_names_with_glob_characters_as_named(tmp_path: Path, spark_session: Any) -> None:
    """Hadoop expands glob characters in every path: each file found is passed escaped."""
    for name in ("q?", "qa", "[1]"):
        write_jsonl([{"id": name}], tmp_path / f"{name}.jsonl")
        write_parquet([{"id": name}], tmp_path / f"{name}.parquet")
    for fmt in ("jsonl", "parquet"):
        _spark_scan([tmp_path / f"q?.{fmt}", tmp_path / f"[1].{fmt}"], tmp_path / "out.jsonl", at="2021-10-20")
        assert [r["id"] for r in read_output(tmp_path / "out.jsonl")] == ["q?", "qa", "[1]"]


def test_spark_reads_only_the_columns_a_decision_reads(tmp_path: Path, spark_session: Any) -> None:
    """Spark reads a Parquet file's schema whole, and refused a timestamp in nanoseconds or
    a TIME column that no rule reads; a column named ``_metadata`` hid Spark's own (where
    the split's start comes from). Now only the columns the scan reads are read, as with
    DuckDB, and a rule that reads a timestamp in nanoseconds is a usage error with Spark."""
    stamps = pa.array([1633852800 * 10**9, 0, None], pa.timestamp("ns"))
    pq.write_table(pa.table({"id": ["a", "b", "c"], "title": ["bitcoin", "lamp", None], "_metadata": ["x", None, "y"],
                             "seen": stamps, "open": pa.array([28800 * 10**6, None, 0], pa.time64("us"))}),
                   tmp_path / "in.parquet")
    (tmp_path / "p.policy").write_text("policy q\nrule coin: block title mentions 'bitcoin'\n"
                                       "rule md: flag _metadata == 'y'\n", encoding="utf-8")
    for engine in ("duckdb", "spark"):
        scan_paths(tmp_path / "p.policy", [str(tmp_path / "in.parquet")], str(tmp_path / f"{engine}.jsonl"),
                   engine=engine, at="2021-10-20", jobs=1)
    got = read_output(tmp_path / "spark.jsonl")
    assert got == read_output(tmp_path / "duckdb.jsonl")
    assert [r["effect"] for r in got] == ["block", "allow", "flag"]
    (tmp_path / "p.policy").write_text("policy q\nrule s: flag seen >= 2021-10-10\n", encoding="utf-8")
    with pytest.raises(UsageError, match="column 'seen' is a timestamp in nanoseconds, which Spark cannot read"):
        scan_paths(tmp_path / "p.policy", [str(tmp_path / "in.parquet")], str(tmp_path / "spark.jsonl"),
                   engine="spark", at="2021-10-20")


def test_spark_refuses_the_files_duckdb_refuses(tmp_path: Path, spark_session: Any,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    """Spark's ``unionByName`` matches names ignoring case (``Title`` and ``title``, a
    struct's ``Country`` and ``country``) and gives a column read from several files one
    type (an int64 as a double, a decimal or text, a text as an int64): the scan decided on
    other values than the files hold, or failed with Spark's stack trace. The files DuckDB's
    reading refuses are refused with Spark too, the same usage error (exit 2)."""
    (tmp_path / "p.policy").write_text("policy m\nrule coin: block title mentions 'bitcoin'\n"
                                       "rule kp: block seller.country == 'KP'\nrule big: flag price > 100\n",
                                       encoding="utf-8")
    pairs = {"case": ({"id": ["a"], "title": ["bitcoin"]}, {"id": ["b"], "Title": ["bitcoin"]}),
             "nest": ({"id": ["a"], "seller": [{"country": "CN"}]}, {"id": ["b"], "seller": [{"Country": "KP"}]}),
             "double": ({"id": ["a"], "price": [9007199254740993]}, {"id": ["b"], "price": [1.5]}),
             "text": ({"id": ["a"], "price": [500]}, {"id": ["b"], "price": ["abc"]}),
             "decimal": ({"id": ["a"], "price": [500]}, {"id": ["b"], "price": pa.array([1], pa.decimal128(5, 2))}),
             "wider": ({"id": ["a"], "price": pa.array([500], pa.int32())}, {"id": ["b"], "price": [7]})}
    for case, (a, b) in pairs.items():
        inputs = [str(tmp_path / f"{case}-{x}.parquet") for x in "ab"]
        pq.write_table(pa.table(a), inputs[0])
        pq.write_table(pa.table(b), inputs[1])
        message = "differ only in case" if case in ("case", "nest") else "column 'price' is .* with the other files"
        for engine in ("duckdb", "spark"):
            out = tmp_path / f"{case}-{engine}.jsonl"
            if case == "wider":
                scan_paths(tmp_path / "p.policy", inputs, str(out), engine=engine, at="2021-10-20", jobs=1)
                continue
            with pytest.raises(UsageError, match=message):
                scan_paths(tmp_path / "p.policy", inputs, str(out), engine=engine, at="2021-10-20", jobs=1)
            assert not out.exists()
    got = read_output(tmp_path / "wider-spark.jsonl")
    assert got == read_output(tmp_path / "wider-duckdb.jsonl") and [r["effect"] for r in got] == ["flag", "allow"]
    assert "at org.apache" not in capfd.readouterr().err  # (no stack trace of Spark's)


def test_int96_timestamps_are_refused_by_both_engines(tmp_path: Path, spark_session: Any) -> None:
    """An INT96 timestamp (pyarrow's ``use_deprecated_int96_timestamps``, Spark's and Hive's
    old default) is by convention an instant in UTC: Spark read it so, DuckDB as a local
    time read in the policy's timezone, and the two engines decided the record differently.
    DuckDB cannot be told otherwise: a column the scan reads that holds one (in a struct
    too) is a usage error with either engine; one no rule reads is fine."""
    stamps = [dt.datetime(2021, 10, 10, 8), dt.datetime(2021, 10, 10, 0)]
    pq.write_table(pa.table({"id": ["a", "b"], "title": ["bitcoin", "lamp"], "seen": stamps,
                             "meta": [{"since": s} for s in stamps]}), tmp_path / "in.parquet",
                   use_deprecated_int96_timestamps=True)
    out = {engine: str(tmp_path / f"{engine}.jsonl") for engine in ("duckdb", "spark")}
    for rule, column in (("flag seen >= 2021-10-10T08:00", "seen"),
                         ("flag meta.since >= 2021-10-10", "meta.since")):
        (tmp_path / "p.policy").write_text(f"policy t\n  timezone 'Asia/Shanghai'\nrule r: {rule}\n", encoding="utf-8")
        for engine in out:
            with pytest.raises(UsageError, match=f"column '{column}' is an INT96 timestamp"):
                scan_paths(tmp_path / "p.policy", [str(tmp_path / "in.parquet")], out[engine], engine=engine,
                           at="2021-10-20", jobs=1)
    (tmp_path / "p.policy").write_text("policy t\nrule coin: block title mentions 'bitcoin'\n", encoding="utf-8")
    for engine in out:
        scan_paths(tmp_path / "p.policy", [str(tmp_path / "in.parquet")], out[engine], engine=engine, at="2021-10-20",
                   jobs=1)
    assert read_output(Path(out["spark"])) == read_output(Path(out["duckdb"]))
    assert [r["effect"] for r in read_output(Path(out["duckdb"]))] == ["block", "allow"]


def test_spark_cli_end_to_end(tmp_path: Path, spark_session: Any) -> None:
    from click.testing import CliRunner

    from dsl.cli import main

    (tmp_path / "in.csv").write_text(
        'id,category,price,seller.id,title,listed_at,prior\n'
        '1,Gadgets,150,s1,"a ""coin"", mining rig",2021-10-20,0\n'
        '2,Gadgets,"""150""",s1,,2021-10-20,\n'
        '3,Toys,12,s2,lamp,not a date,1\n'
        '4,Gadgets,150,s3,"line\nbreak",2021-10-07,-2\n', encoding="utf-8")
    runner = CliRunner()
    for out in ("out.parquet", "out.jsonl", "out.csv"):
        args = ["scan", str(POLICIES), "--input", str(tmp_path / "in.csv"), "--at-field", "listed_at",
                "--prior-field", "prior", "--report", str(tmp_path / "r.json")]
        spark = runner.invoke(main, [*args, "--out", str(tmp_path / out), "--engine", "spark"])
        duck = runner.invoke(main, [*args, "--out", str(tmp_path / f"duck-{out}"), "--jobs", "1"])
        assert spark.exit_code == duck.exit_code == 1, spark.output
        assert read_output(tmp_path / out) == read_output(tmp_path / f"duck-{out}")
    if (tmp_path / "out.jsonl").read_bytes() != (tmp_path / "duck-out.jsonl").read_bytes():
        raise AssertionError("JSON lines differ byte for byte")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_spark_python_api(spark_session: Any) -> None:
    import dsl.scan

    rows = [{"id": "a", "category": "Gadgets", "price": 150.0, "seller": {"id": "s1"}},
            {"id": "b", "category": "Toys", "price": 12.0, "seller": {"id": "s2"}},
            {"id": "c", "category": "Gadgets", "price": None, "seller": None}]
    frame = spark_session.createDataFrame(rows, "id string, category string, price double, seller struct<id:string>")
    for policies in (POLICIES, SOURCES):
        got = [r.asDict(recursive=True) for r in dsl.scan.spark(frame, policies, at="2021-10-20").collect()]
        assert got == [expected(_strip(r), at="2021-10-20") for r in rows]
    with pytest.raises(UsageError, match="--at-field|at_field"):
        dsl.scan.spark(frame, POLICIES, at_field="listed_at")


def test_spark_without_java_names_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT))
    write_jsonl([{"id": "a"}], tmp_path / "in.jsonl")
    run = subprocess.run([sys.executable, "-m", "dsl", "scan", str(POLICIES), "--input", "in.jsonl", "--out",
                          "out.csv", "--engine", "spark", "--at", "2021-10-20"], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert run.returncode == 2 and "Java is not installed" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out.csv").exists()
