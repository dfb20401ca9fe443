"""dsl/scan/columns.py: a field read from its column is what ``read_path`` finds in the
listing ``batch_listings`` builds (Parquet-like columns and CSV cells), and a batch's output
built from columns is, row for row, the output built from decided rows."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dsl.evaluate import values as V
from dsl.scan import columns as C
from dsl.scan.columns import Distinct, constant, id_texts, path_column, placed, plain_at_texts
from dsl.scan.convert import batch_listings, column_values
from dsl.scan.schema import id_text

SELLER = pa.struct([("id", pa.string()), ("meta", pa.struct([("seen", pa.date32())]))])
TYPED = pa.record_batch({
    "id": pa.array([1, None, 3, 4], pa.int64()),
    "code": pa.array(["a", None, "c", "d"]),
    "seller": pa.array([{"id": "s1", "meta": {"seen": dt.date(2021, 10, 20)}}, None,
                        {"id": None, "meta": None}, {"id": "s4", "meta": {"seen": None}}], SELLER),
    "tags": pa.array([["x"], None, [], ["y", None]], pa.list_(pa.string())),
    "attrs": pa.array([[("k", "v")], None, [], [("k", "w")]], pa.map_(pa.string(), pa.string())),
    "when": pa.array([dt.datetime(2021, 10, 20, 8), None, dt.datetime(2021, 1, 1), dt.datetime(2022, 2, 2)],
                     pa.timestamp("us")),
})
CSV = pa.record_batch({
    "id": pa.array(["12", "x", "", '"12"']),
    "seller.id": pa.array(["s1", None, "[1]", "s4"]),
    "seller": pa.array(["text", None, None, None]),
    "listed_on": pa.array(["2021-10-20", "not a date", "", " 2021-10-20"]),
})
TYPED_PATHS = [("id",), ("code",), ("seller",), ("seller", "id"), ("seller", "meta", "seen"), ("seller", "nope"),
               ("tags",), ("tags", "x"), ("attrs", "k"), ("when",), ("missing",), ("code", "deeper")]
CSV_PATHS = [("id",), ("seller", "id"), ("seller",), ("listed_on",), ("missing",)]


def _cases() -> list[tuple[pa.RecordBatch, bool, tuple[str, ...]]]:
    return [(TYPED, False, p) for p in TYPED_PATHS] + [(CSV, True, p) for p in CSV_PATHS]


@pytest.mark.parametrize(("batch", "csv", "path"), _cases())
def test_a_column_holds_what_the_listing_holds(batch: pa.RecordBatch, csv: bool, path: tuple[str, ...]) -> None:
    listings = batch_listings(batch, csv=csv)
    want = [V.read_path(x, path) for x in listings]
    column = path_column(batch, path, csv=csv)
    if column is not None:  # None: no single column holds it (the caller reads the listings)
        assert column_values(column, csv=csv) == want
    ids = id_texts(batch, path, csv=csv, listings=lambda: listings)
    assert ids.to_pylist() == [id_text(v) if v is not None else None for v in want]


def test_paths_no_column_holds_are_read_from_the_listings() -> None:
    assert path_column(TYPED, ("attrs", "k"), csv=False) is None  # through a map
    assert path_column(CSV, ("seller", "id"), csv=True) is None  # `seller` and `seller.id` both
    assert path_column(CSV, ("seller",), csv=True) is None


def test_plain_allow_at_is_read_once_per_value_and_null_where_unreadable() -> None:
    listings = batch_listings(CSV, csv=True)
    got = plain_at_texts(CSV, ("listed_on",), csv=True, listings=lambda: listings).to_pylist()
    assert got == ["2021-10-20T00:00:00", None, None, "2021-10-20T00:00:00"]
    typed = plain_at_texts(TYPED, ("seller", "meta", "seen"), csv=False, listings=lambda: [])
    assert typed.to_pylist() == ["2021-10-20T00:00:00", None, None, None]


def test_distinct_values_keep_their_reading_when_the_memo_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the memo is full it starts again; the texts it knew that come back in the same
    column are read again, not left null (for the category lookup a null is "no keyed rule
    may hold": a listing of a blocked category would get a plain allow)."""
    monkeypatch.setattr(C, "MEMO_LIMIT", 2)
    seen: list[str] = []
    memo = Distinct(lambda t: seen.append(t) or t.upper(), pa.string())
    assert memo.of(pa.array(["a", "b", None])).to_pylist() == ["A", "B", None]
    assert memo.of(pa.array(["a", "c", "b", None])).to_pylist() == ["A", "C", "B", None]
    assert memo.of(pa.array(["c"])).to_pylist() == ["C"]
    assert seen == ["a", "b", "a", "c", "b"]


def test_plain_allow_ats_are_the_same_when_the_memo_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    listings = batch_listings(CSV, csv=True)
    want = plain_at_texts(CSV, ("listed_on",), csv=True, listings=lambda: listings).to_pylist()
    monkeypatch.setattr(C, "MEMO_LIMIT", 1)
    for _ in range(3):
        assert plain_at_texts(CSV, ("listed_on",), csv=True, listings=lambda: listings).to_pylist() == want


def test_distinct_values_shared_by_scans_in_several_threads() -> None:
    """Another scan's batch read in the middle of this one's (as a thread may be): each
    gets its own readings, and the memo stays whole."""
    inner: list[Any] = []

    def read(text: str) -> str:
        if text == "a":
            inner.append(memo.of(pa.array(["z"])).to_pylist())
        return text.upper()

    memo = Distinct(read, pa.string())
    assert memo.of(pa.array(["a", "b"])).to_pylist() == ["A", "B"] and inner == [["Z"]]
    assert memo.of(pa.array(["z", "a", "b"])).to_pylist() == ["Z", "A", "B"]


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")
def test_importing_the_scan_modules_does_not_import_pandas() -> None:
    """No Arrow array is built at import: pyarrow's first one imports pandas (a tenth of a
    second) wherever pandas is installed."""
    code = "import sys, dsl.scan.decide; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False"


def test_placed_restores_input_order() -> None:
    """The decided records' values in their places, in order; the others take the table's
    row their ``rows`` gives (whatever ``rows`` holds at a decided record's place)."""
    decide = pa.array([False, True, False, False, True])
    decided = [pa.array(["d1", "d2"]), pa.array([[1], []], pa.list_(pa.int64()))]
    table = [pa.array(["plain", "keyed"]), pa.array([[], [7]], pa.list_(pa.int64()))]
    rows = pa.array([1, None, 0, 1, 0], pa.int32())
    texts, lists = placed(decide, rows, table, decided)
    assert texts.to_pylist() == ["keyed", "d1", "plain", "keyed", "d2"]
    assert lists.to_pylist() == [[7], [1], [], [7], []]
    assert placed(pa.array([False, False]), pa.array([0, 0], pa.int32()), table, [a.slice(0, 0) for a in decided])[
        0].to_pylist() == ["plain", "plain"]


def test_constants_grow_and_keep_their_value() -> None:
    small: Any = constant([], pa.list_(pa.string()), 3)
    big = constant([], pa.list_(pa.string()), 10_000)
    assert small.to_pylist() == [[]] * 3 and big.to_pylist() == [[]] * 10_000
    assert constant("allow", pa.string(), 0).to_pylist() == []


def test_a_predicate_longer_than_the_limit_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    import dsl
    from dsl.scan import run, source
    from dsl.scan.schema import DECIDE_COLUMN

    policies_dir = Path(__file__).resolve().parent / "scan_policies"
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(policies_dir.glob("*.policy"))}
    policies = dsl.load(policies_dir)
    rows = [{"id": str(i), "category": c, "title": "lamp"} for i, c in enumerate(["Gadgets", "Toys", "Numismatics"])]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    queries: list[str] = []
    real = source._arrow_batches

    def spy(con: Any, sql: str, batch_size: int) -> Any:
        queries.append(sql)
        return real(con, sql, batch_size)

    monkeypatch.setattr(source, "_arrow_batches", spy)
    outputs = []
    for limit in (run.PUSHDOWN_LIMIT, 0):
        monkeypatch.setattr(run, "PUSHDOWN_LIMIT", limit)
        out = tmp_path / f"out{limit}.parquet"
        run.scan(policies, sources, [str(tmp_path / "in.parquet")], str(out), at="2021-10-20", jobs=1)
        outputs.append(pq.read_table(out).to_pylist())
    assert DECIDE_COLUMN in queries[0] and DECIDE_COLUMN not in queries[1]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("jobs", [2, 3])
def test_own_pool_the_scan_process_decides_too_in_order(tmp_path: Path, jobs: int) -> None:
    """With a pool of its own, the scan decides some batches itself beside jobs - 1
    workers; the output is the one --jobs 1 gives, row for row."""
    import pyarrow.parquet as pq

    import dsl
    from dsl.scan import run

    policies_dir = Path(__file__).resolve().parent / "scan_policies"
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(policies_dir.glob("*.policy"))}
    policies = dsl.load(policies_dir)
    categories = ["Gadgets", "Toys", "Numismatics", "Electronics > Gadgets", None]
    rows = [{"id": str(i), "category": categories[i % 5], "title": "gold coin" if i % 7 else None,
             "price": float(i)} for i in range(300)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    outputs = []
    for n in (1, jobs):
        out = tmp_path / f"out{n}.parquet"
        run.scan(policies, sources, [str(tmp_path / "in.parquet")], str(out), at="2021-10-20", jobs=n, batch_size=7)
        outputs.append(pq.read_table(out).to_pylist())
    assert outputs[0] == outputs[1]
    assert [r["id"] for r in outputs[1]] == [str(i) for i in range(300)]


class _Counted:
    """A meta path finder that refuses ``dateutil`` and counts the attempts (what an
    install without it sees; a failed import is not remembered, so each one is tried again)."""

    def __init__(self) -> None:
        self.tries = 0

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "dateutil" or name.startswith("dateutil."):
            self.tries += 1
            raise ModuleNotFoundError(name)
        return None


def test_the_scan_passes_compute_functions_typed_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow infers the type of a plain Python value passed to a compute function at each
    call, and each inference tries to import ``dateutil``: some 40 µs a call where it is not
    installed. A scan's batches (the lookup settling records by category, with a text
    equality, ``at`` from a date column, the output placed in input order) try it never."""
    import pyarrow.parquet as pq

    import dsl
    from dsl.scan import run

    text = ("policy t\n  timezone 'UTC'\n\nrule a: from 2021-01-01 block category 'X' and platform in ['p']\n"
            "rule b: from 2021-06-01 block category 'Y'\n")
    (tmp_path / "t.policy").write_text(text, encoding="utf-8")
    rows = [{"id": str(i), "category": ["X", "Y", "Z"][i % 3], "platform": ["p", "q"][i % 2],
             "listed": dt.date(2021, 1 + i % 12, 1)} for i in range(3000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    policies = dsl.load(tmp_path / "t.policy")
    for name in [m for m in sys.modules if m == "dateutil" or m.startswith("dateutil.")]:
        monkeypatch.delitem(sys.modules, name)
    finder = _Counted()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    result = run.scan(policies, {str(tmp_path / "t.policy"): text}, [str(tmp_path / "in.parquet")],
                      str(tmp_path / "out.parquet"), at_field="listed", jobs=1, batch_size=500)
    assert finder.tries == 0
    decided = pq.read_table(tmp_path / "out.parquet").to_pylist()
    expected = [policies.decide({k: v for k, v in r.items() if k != "listed"}, at=r["listed"].isoformat()).effect
                for r in rows]
    assert [r["effect"] for r in decided] == expected and "block" in expected
    assert result.records == 3000


@pytest.mark.parametrize("csv", [False, True])
def test_blocked_sellers_counted_by_column_as_by_listing(csv: bool) -> None:
    """The report's sellers of some records, counted by Arrow per distinct value, are the
    ones read from each record's listing (text, numbers, NaN, nulls; a struct seller,
    which Arrow does not count, value by value)."""
    from collections import Counter

    from dsl.scan.decide import Job, _sellers
    from dsl.scan.report import seller_key

    columns: list[pa.Array] = [pa.array(["s1", None, "s2", "s1", None]), pa.array([3.0, float("nan"), None, 3.0, 1.5])]
    if not csv:
        columns.append(pa.array([{"k": 1}, None, {"k": 1}, {"k": 2}, None]))
    for column in columns:
        if csv and not pa.types.is_string(column.type):
            column = pa.array([None if v is None else str(v) for v in column.to_pylist()])
        data = pa.record_batch({"id": pa.array(["a", "b", "c", "d", "e"]), "seller": column})
        job = Job("parquet", "2021-10-20", None, None, ("id",), ("seller",), csv=csv)
        places = pa.array([0, 1, 3, 4], pa.int64())
        listings = batch_listings(data, csv=csv)
        by_listing = Counter(seller_key(V.read_path(listings[i], ("seller",))) for i in places.to_pylist())
        assert _sellers(job, data, functools.partial(list, listings), places) == by_listing


def test_a_batch_the_sql_keeps_whole_is_decided_without_the_lookup(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the pushdown's SQL column keeps every record of a batch (a policy no pushdown
    narrows), the category lookup has nothing to add: it is not consulted, and each record
    gets ``decide``'s decision."""
    import dsl
    from dsl.scan import decide as D
    from dsl.scan.run import new_job
    from dsl.scan.schema import DECIDE_COLUMN

    (tmp_path / "t.policy").write_text("policy t\n  timezone 'UTC'\n\nrule a: from 2021-01-01 block category 'X'\n"
                                       "rule b: block title matches /z+/\n", encoding="utf-8")
    policies = dsl.load(tmp_path / "t.policy")
    rows = [{"id": str(i), "category": ["X", "Y"][i % 2], "title": ["zz", "a", None][i % 3], "listed": "2021-10-20"}
            for i in range(12)]
    batch = pa.RecordBatch.from_pylist(rows).append_column(DECIDE_COLUMN, pa.array([True] * 12))
    job = new_job("parquet", at=None, at_field="listed", prior_field=None, id_field="id", seller_field="seller.id")

    def no_lookup(*args: Any) -> None:
        raise AssertionError("the lookup was consulted")

    monkeypatch.setattr(D, "lookup_for", no_lookup)
    piece, tally = D.decide_batch(policies, job, batch, 0)
    expected = [policies.decide({k: v for k, v in r.items() if k != "listed"}, at=r["listed"]).effect for r in rows]
    assert piece.column("effect").to_pylist() == expected and tally.records == 12
