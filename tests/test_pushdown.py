"""The scan's pushdown (dsl/scan/pushdown.py): the SQL of each kind of atom, and soundness.

Soundness is a property test: Hypothesis draws small policy sets (tests/strategies.py)
and catalogues with typed columns (nested structs, missing and null values, ill-typed
columns, NaN and infinities, huge numbers, lists with null elements, non-ASCII and
zero-width text, dates at window edges), loads them into DuckDB, and evaluates the
predicate on every row: wherever it is FALSE, ``decide`` on the row as the scan reads it
(Arrow to Python) must give the plain allow, with no rule, no warning and no error.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import (
    CATEGORY_PATHS,
    CATEGORY_SEGMENTS,
    COUNTRIES,
    PLATFORMS,
    REGEXES,
    SKUS,
    TEXT_FIELDS,
    at_least,
    listing_texts,
    policy_files,
)

from dsl.checking.passes import build
from dsl.evaluate.compiled import CompiledPolicySet
from dsl.evaluate.outcome import InputError
from dsl.model import PolicySet
from dsl.scan.columns import plain_at_texts
from dsl.scan.convert import batch_listings
from dsl.scan.lookup import Lookup
from dsl.scan.pushdown import literal, parse_type, sql_predicate
from dsl.syntax import parse

duckdb = pytest.importorskip("duckdb", reason="duckdb is the scan's engine (pip install duckdb)")
pa = pytest.importorskip("pyarrow", reason="pyarrow carries the scan's batches (pip install pyarrow)")


def policy_set(*texts: str) -> PolicySet:
    files = [parse(text, f"p{i}.policy")[0] for i, text in enumerate(texts)]
    ps, diags = build(files, {})
    assert ps is not None, [d.message for d in diags]
    return ps


_DATABASE: list[Any] = []


def _cursor() -> Any:
    """A new connection to one in-memory database of the test run's: opening a database
    costs DuckDB some 40 ms, a cursor on an open one 3 ms, and the property tests ask
    thousands of times. A cursor's registered tables are its own."""
    if not _DATABASE:
        _DATABASE.append(duckdb.connect())
    return _DATABASE[0].cursor()


@pytest.fixture(scope="module", autouse=True)
def _close_database() -> Iterator[None]:
    """The shared database closed with the module: its threads would otherwise live on
    into the forks of the worker's later tests (a scan never forks with one open)."""
    yield
    while _DATABASE:
        _DATABASE.pop().close()


def rows_where(table: Any, predicate: str | None) -> list[bool]:
    """The predicate's value on each row of an Arrow table (None: every row TRUE)."""
    if predicate is None:
        return [True] * table.num_rows
    with _cursor() as con:
        con.register("t", table)
        got = con.sql(f"SELECT {predicate} AS p FROM t").fetchall()  # noqa: S608 - our own SQL
    values = [row[0] for row in got]
    assert all(v is not None for v in values), "the predicate must never be NULL"
    return values


def describe(table: Any) -> dict[str, str]:
    with _cursor() as con:
        con.register("t", table)
        return {name: kind for name, kind, *_ in con.sql("DESCRIBE t").fetchall()}


def predicate_for(ps: PolicySet, table: Any, **kw: Any) -> str | None:
    return sql_predicate(ps, at=kw.get("at"), at_field=kw.get("at_field"), columns=describe(table),
                         prior_field=kw.get("prior_field"), csv=kw.get("csv", False), coarse=kw.get("coarse", False),
                         lookup=kw.get("lookup", False), at_checked=kw.get("at_checked", False))


def narrowed(text: str, rows: list[dict[str, Any]], at: str | None = "2021-10-20", **kw: Any) -> list[bool]:
    table = pa.Table.from_pylist(rows)
    return rows_where(table, predicate_for(policy_set(text), table, at=at, **kw))


# ---------------------------------------------------------------- SQL text and types


def test_literals_and_identifiers_are_quoted() -> None:
    assert literal("it's") == "'it''s'"
    text = 'rule r: block platform == "a\'); DROP TABLE t; --"\n'
    ps = policy_set(text)
    pred = sql_predicate(ps, at=None, at_field=None, columns={"platform": "VARCHAR"})
    assert pred is not None and "DROP" in pred
    table = pa.Table.from_pylist([{"platform": "a'); DROP TABLE t; --"}, {"platform": "b"}])
    assert rows_where(table, pred) == [True, False]


def test_weird_column_names_are_quoted() -> None:
    ps = policy_set('rule r: block `from` == "x"\n')
    table = pa.Table.from_pylist([{"from": "x", 'a"b': 1}, {"from": "y", 'a"b': 2}])
    assert rows_where(table, predicate_for(ps, table)) == [True, False]


def test_types_are_read() -> None:
    assert parse_type("VARCHAR").kind == "text"
    assert parse_type("BIGINT").kind == "int"
    assert parse_type("DOUBLE").kind == "float"
    assert parse_type("VARCHAR[]").kind == "text_list"
    assert parse_type("BIGINT[]").kind == "unknown"
    assert parse_type("DECIMAL(5,2)").kind == "unknown"
    struct = parse_type('STRUCT("from" INTEGER, "a b" VARCHAR, "Q""x" STRUCT(y DOUBLE[]), z BOOLEAN)')
    assert [(n, t.kind) for n, t in struct.fields] == [("from", "int"), ("a b", "text"), ('Q"x', "struct"),
                                                       ("z", "bool")]


# ---------------------------------------------------------------- atoms


def test_equality_and_membership_on_text() -> None:
    rows = [{"platform": "taobao"}, {"platform": "ebay"}, {"platform": None}, {"platform": "Taobao"}]
    assert narrowed("rule r: block platform == 'taobao'\n", rows) == [True, False, False, False]
    assert narrowed("rule r: block platform != 'taobao'\n", rows) == [False, True, False, True]
    assert narrowed("rule r: block platform in ['taobao', 'ebay']\n", rows) == [True, True, False, False]
    assert narrowed("rule r: block platform not in ['taobao']\n", rows) == [False, True, False, True]
    # `not` over an exact atom is exact: an absent field makes the atom false, so `not` true
    assert narrowed("rule r: block not platform == 'taobao'\n", rows) == [False, True, True, True]


def test_numbers_compare_exactly_by_column_type() -> None:
    ints = [{"price": 5}, {"price": 20}, {"price": None}, {"price": 2**53 + 1}]
    assert narrowed("rule r: block price > 19.99\n", ints) == [False, True, False, True]
    assert narrowed("rule r: block price <= 5.5\n", ints) == [True, False, False, False]
    assert narrowed("rule r: block price == 9007199254740993\n", ints) == [False, False, False, True]
    assert narrowed("rule r: block price in [5, 20.5]\n", ints) == [True, False, False, False]
    floats = [{"price": 5.0}, {"price": 20.0}, {"price": math.nan}, {"price": math.inf}, {"price": None}]
    # NaN and infinities are ill-typed (a warning): TRUE; finite values compare by value
    assert narrowed("rule r: block price > 19.99\n", floats) == [False, True, True, True, False]
    assert narrowed("rule r: block price == 5\n", floats) == [True, False, True, True, False]


def test_a_number_compared_with_text_is_a_warning_so_every_present_value_counts() -> None:
    rows = [{"price": "100"}, {"price": None}]
    assert narrowed("rule r: block price > 10\n", rows) == [True, False]
    # a field also read as text is ill-typed for none of its strings
    assert narrowed("rule r: block price > 10\nrule s: flag price contains 'zzz'\n", rows) == [False, False]


def test_booleans_and_exists() -> None:
    rows = [{"verified": True, "sku": "A"}, {"verified": False, "sku": None}, {"verified": None, "sku": "B"}]
    assert narrowed("rule r: block verified == true\n", rows) == [True, False, False]
    assert narrowed("rule r: block sku exists\n", rows) == [True, False, True]
    assert narrowed("rule r: block not sku exists\n", rows) == [False, True, False]


def test_absent_columns_and_paths_through_scalars() -> None:
    rows = [{"seller": "S-100", "x": 1}, {"seller": None, "x": 2}]
    assert narrowed("rule r: block seller.country == 'CN'\n", rows) == [False, False]
    assert narrowed("rule r: block missing exists\n", rows) == [False, False]


def test_struct_fields_are_read() -> None:
    rows = [{"seller": {"country": "CN", "from": "x"}}, {"seller": {"country": "US", "from": None}},
            {"seller": None}]
    assert narrowed("rule r: block seller.country == 'CN'\n", rows) == [True, False, False]
    assert narrowed("rule r: block seller.`from` exists\n", rows) == [True, False, False]
    assert narrowed("rule r: block seller exists\n", rows) == [True, True, False]


def test_category_words_on_ascii_paths_and_true_on_others() -> None:
    rows = [{"category": "Electronics > Blockchain   Miners > ASIC"}, {"category": "Home > Knives"},
            {"category": "Electronics > Blockchain\u200bMiners"}, {"category": "ＢＬＯＣＫＣＨＡＩＮ MINERS"},
            {"category": None}]
    assert narrowed("rule r: block category 'Blockchain Miners'\n", rows) == [True, False, True, True, False]
    lists = [{"category": ["Electronics", "Blockchain Miners"]}, {"category": ["Home", None]},
             {"category": ["Home", "Knives"]}]
    # a null element makes the category ill-typed: a warning
    assert narrowed("rule r: block category in ['Blockchain Miners', 'Software']\n", lists) == [True, True, False]


def test_mentions_and_contains_on_ascii_text_only() -> None:
    rows = [{"title": "Used BITCOIN miner", "tags": ["x"]}, {"title": "cable", "tags": ["Ether wallet"]},
            {"title": "bit\u200bcoin", "tags": []}, {"title": "cable", "tags": ["x", None]},
            {"title": "Ethernet", "tags": None}]
    # tags with a null element is ill-typed text: a warning; "ethernet" contains the word
    assert narrowed("rule r: block mentions any ['bitcoin', 'ether']\n", rows) == [True, True, True, True, True]
    assert narrowed("rule r: block title contains 'bitcoin'\n", rows) == [True, False, True, False, False]
    assert narrowed("rule r: block title mentions '比特币'\n", rows) == [False, False, True, False, False]


def test_matches_may_hold_wherever_there_is_text_that_every_match_holds() -> None:
    rows = [{"sku": "CM-1234", "tags": ["a", "S19 pro"]}, {"sku": None, "tags": None}, {"sku": "XX-9", "tags": ["S19"]},
            {"sku": "cm-1234", "tags": []}]
    assert narrowed("rule r: block sku matches /^CM-[0-9]{4}$/\n", rows) == [True, False, False, False]
    assert narrowed("rule r: block sku matches /^cm-[0-9]{4}$/i\n", rows) == [True, False, False, True]
    assert narrowed("rule r: block sku matches /[A-Z]+/\n", rows) == [True, False, True, True]  # no text required
    assert narrowed("rule r: block tags matches /(S19|L7)j? pro/\n", rows) == [True, False, False, False]
    # case-insensitive: found lower-cased in ASCII text; text that is not ASCII may hold it (the Kelvin sign is k)
    rows = [{"title": "ANTMINER S19"}, {"title": "antminer"}, {"title": "\u212aey"}, {"title": "kex"}]
    assert narrowed("rule r: block title matches /antminer s[0-9]+/i\n", rows) == [True, False, True, False]
    assert narrowed("rule r: block title matches /key/i\n", rows) == [False, False, True, False]


def test_windows_against_a_constant_at() -> None:
    rows = [{"platform": "taobao"}]
    text = "rule r: from 2021-10-08 block platform == 'taobao'\n"
    assert narrowed(text, rows, at="2021-10-07") == [False]
    assert narrowed(text, rows, at="2021-10-08") == [True]
    ps = policy_set(text)
    assert sql_predicate(ps, at="2021-10-07", at_field=None, columns={"platform": "VARCHAR"}) == "FALSE"
    assert sql_predicate(ps, at="not a date", at_field=None, columns={"platform": "VARCHAR"}) is None


def test_windows_against_an_at_field() -> None:
    text = ("policy p timezone 'Asia/Shanghai'\n"
            "rule r: from 2021-10-08T12:00 until 2021-10-20 block platform == 'taobao'\n")
    days = ["2021-10-08", "2021-10-09", "2021-10-19", "2021-10-20", "2021-10-09T00:00", "2021-02-30",
            " 2021-10-09", "0000-01-01", None]
    rows = [{"platform": "taobao", "listed_on": d} for d in days]
    got = narrowed(text, rows, at=None, at_field="listed_on")
    assert got == [False, True, True, False, True, True, True, True, True]
    # as the scan reads them: ten bytes DuckDB casts are read as that date, whether or not
    # ``decide`` can read them (where it cannot, the scan decides the record anyway)
    odd = ["2021-10-09", "2021/10/09", "2021-10-9 ", "2021-10-07", "2021/10/07", " 2021-10-9", "2021-10-09T00:00"]
    rows = [{"platform": "taobao", "listed_on": d} for d in odd]
    assert narrowed(text, rows, at=None, at_field="listed_on") == [True, True, True, False, True, True, True]
    checked = narrowed(text, rows, at=None, at_field="listed_on", at_checked=True)
    assert checked == [True, True, True, False, False, True, True]
    dated = [{"platform": "taobao", "listed_on": dt.date(2021, 10, d)} for d in (8, 9, 20)]
    assert narrowed(text, dated, at=None, at_field="listed_on") == [False, True, False]


def test_dates_at_the_ends_of_the_calendar_are_decided() -> None:
    """0001-01-01 in a timezone east of UTC begins before the first instant there is: decide
    gives an error, so the record is kept (and 9999-12-31, whose end is as near the edge)."""
    text = "policy p timezone 'Asia/Tokyo'\nrule r: from 2021-10-08 block title contains 'coin'\n"
    days = ["0001-01-01", "0001-01-02", "9999-12-31", "2021-01-01"]
    for values in (days, [dt.date.fromisoformat(d) for d in days]):
        rows = [{"title": "x", "listed_on": d} for d in values]
        assert narrowed(text, rows, at=None, at_field="listed_on") == [True, False, True, False]
    with pytest.raises(InputError, match="out of range"):
        CompiledPolicySet(policy_set(text)).decide({"title": "x"}, "0001-01-01")


def test_schema_errors_and_prior() -> None:
    text = "field price: number required\nfield platform: one of ['taobao']\nrule r: block price > 1000\n"
    rows = [{"price": 5, "platform": "taobao", "prior": 0}, {"price": None, "platform": "taobao", "prior": 0},
            {"price": 5, "platform": "ebay", "prior": 0}, {"price": 5, "platform": "taobao", "prior": -1}]
    assert narrowed(text, rows, prior_field="prior") == [False, True, True, True]


def test_no_narrowing_when_a_rule_has_no_selector() -> None:
    ps = policy_set("rule r: flag\n")
    assert sql_predicate(ps, at=None, at_field=None, columns={"title": "VARCHAR"}) is None


def test_unknown_types_count_wherever_present() -> None:
    ps = policy_set("rule r: block price > 10\n")
    assert sql_predicate(ps, at=None, at_field=None, columns={"price": "DECIMAL(9,2)"}) == '("price" IS NOT NULL)'
    # a dotted column name may be read as a nested field: price would be an object
    assert sql_predicate(ps, at=None, at_field=None, columns={"price.x": "BIGINT"}) is None
    assert sql_predicate(ps, at=None, at_field=None, columns={"cost.x": "BIGINT"}) == "FALSE"
    assert sql_predicate(ps, at=None, at_field=None, columns={"price": "BIGINT", "PRICE": "BIGINT"}) is None


# ---------------------------------------------------------------- soundness


def _column(values: list[Any], kind: Any) -> Any:
    return pa.array(values, type=kind)


_TEXTS = st.one_of(listing_texts(), st.sampled_from(["", " ", "ETHER", "bitcoin", "Bit\u200bcoin", "ｂｉｔｃｏｉｎ"]))
_CATEGORIES = st.sampled_from(CATEGORY_PATHS + CATEGORY_SEGMENTS + (
    "Electronics>Blockchain\u00adMiners", "", "  software ", "SOFTWARE", "Blockchain\tMiners", "blockchain\u3000miners",
    "Electronics ＞ Blockchain Miners", "Ｋｎｉｖｅｓ", "KNİVES", "Kni\u200bves", "Knives >", "> Swords", " > ",
    "Software > Software", "Graphics  Cards > Knives", "\u212aNIVES", "Softwar\u0435", '"Software"', '["Software"]'))
_NUMBERS = st.one_of(st.integers(-10, 10_000), st.sampled_from([0, 10, 5000, 5001, 2**53 + 1, -(10**15)]))
_FLOATS = st.one_of(st.floats(-1e4, 1e6), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 19.99, 5000.0,
                                                           float(2**53 + 2), 1.5e20]))
_DAYS = st.dates(dt.date(2021, 5, 25), dt.date(2022, 2, 10))
_ISO = st.one_of(_DAYS.map(dt.date.isoformat), _DAYS.map(lambda d: d.isoformat() + "T08:00:00Z"),
                 _DAYS.map(lambda d: d.isoformat() + "T23:30"), st.sampled_from(["2021-02-30", "yesterday", "",
                                                                                   "2021-2-3", "0000-01-01"]),
                 # ten bytes that DuckDB casts to a date and ``decide`` cannot read (``at_checked``)
                 st.sampled_from(["2021/10/20", "2021-10-2 ", " 2021-10-2", "2021-1-2T3", "02021-10-2"]))


def _nullable(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s, s, s)


# Each field is a column of one of these (Arrow type, values) shapes, or no column at all.
_SHAPES: Mapping[str, list[tuple[Any, st.SearchStrategy[Any]]]] = {
    "category": [(pa.string(), _CATEGORIES), (pa.list_(pa.string()), st.lists(_nullable(_CATEGORIES), max_size=3)),
                 (pa.int64(), _NUMBERS)],
    "title": [(pa.string(), _TEXTS), (pa.int64(), _NUMBERS)],
    "description": [(pa.string(), _TEXTS)],
    "tags": [(pa.list_(pa.string()), st.lists(_nullable(_TEXTS), max_size=3)), (pa.string(), _TEXTS)],
    "message": [(pa.string(), _TEXTS), (pa.float64(), _FLOATS)],
    "platform": [(pa.string(), st.sampled_from([*PLATFORMS, "Taobao", "ebay"])), (pa.int64(), _NUMBERS),
                 (pa.list_(pa.string()), st.lists(st.sampled_from(PLATFORMS), max_size=2)),
                 (pa.bool_(), st.booleans())],
    "seller": [(pa.struct([("country", pa.string()), ("from", pa.string()), ("id", pa.string())]),
                st.fixed_dictionaries({"country": _nullable(st.sampled_from(COUNTRIES)),
                                       "from": _nullable(st.sampled_from(COUNTRIES)), "id": st.just("S-100")})),
               (pa.struct([("country", pa.int64())]), st.fixed_dictionaries({"country": _nullable(_NUMBERS)})),
               (pa.string(), st.sampled_from(["S-100", "S-200"]))],
    "sku": [(pa.string(), st.sampled_from(SKUS)), (pa.int64(), _NUMBERS)],
    "price": [(pa.int64(), _NUMBERS), (pa.float64(), _FLOATS), (pa.string(), st.sampled_from(["abc", "100", "5000"])),
              (pa.bool_(), st.booleans())],
    "stock": [(pa.int64(), _NUMBERS), (pa.float64(), _FLOATS)],
    "listed_on": [(pa.string(), _ISO), (pa.date32(), _DAYS), (pa.int64(), _NUMBERS)],
    "verified": [(pa.bool_(), st.booleans()), (pa.string(), st.sampled_from(["true", "yes"])), (pa.int64(), _NUMBERS)],
    "certificate": [(pa.string(), st.sampled_from(["C-1", "CE-2021"])), (pa.float64(), _FLOATS)],
    "prior": [(pa.int64(), st.integers(-2, 4)), (pa.float64(), st.sampled_from([0.0, 1.0, 1.5, -1.0, math.nan]))],
}


@st.composite
def catalogues(draw: st.DrawFn) -> Any:
    """An Arrow table: each field a column of a drawn shape (or, half the time, missing;
    the well-typed shape is listed first and drawn most), each value sometimes null; 1 to
    8 rows."""
    size = draw(st.integers(1, 8))
    columns: dict[str, Any] = {}
    for name, shapes in _SHAPES.items():
        choice = draw(st.integers(-len(shapes), 2 * len(shapes)))
        if choice >= len(shapes):
            continue  # no such column
        kind, values = shapes[max(choice, 0)]
        columns[name] = _column(draw(st.lists(_nullable(values), min_size=size, max_size=size)), kind)
    if not columns:
        columns["id"] = _column(list(range(size)), pa.int64())
    return pa.table(columns)


@st.composite
def policy_sets(draw: st.DrawFn) -> PolicySet:
    files = draw(st.lists(policy_files(schema=None, max_rules=5), min_size=1, max_size=2))
    names = [f.header.name.name for f in files if f.header is not None]
    if len(set(names)) != len(names) or any(f.header is None for f in files):
        files = files[:1]
    ps, _ = build(list(files), {})
    if ps is None:
        ps, _ = build(list(files[:1]), {})
    assert ps is not None
    return ps


_AT = st.one_of(st.none(), _DAYS.map(dt.date.isoformat), _DAYS.map(lambda d: d.isoformat() + "T16:00:00Z"),
                _DAYS.map(lambda d: d.isoformat() + "T00:00"))


def _plain_allow(compiled: CompiledPolicySet, listing: dict[str, Any], at: Any, prior: Any) -> tuple[bool, Any]:
    try:
        decision = compiled.decide(listing, at, prior)
    except InputError as e:
        return False, f"error: {e.message}"
    ok = decision.effect == "allow" and not decision.rules and not decision.warnings and not decision.overridden
    return ok, decision.to_dict()


def _check_sound(ps: PolicySet, table: Any, at: Any, at_field: str | None, prior_field: str | None,
                 csv: bool = False, coarse: bool = False, lookup: bool = False, at_checked: bool = False) -> int:
    """Rows as the scan reads them (``dsl.scan.convert``); the number the predicate drops
    (with ``lookup``: the SQL without the keyed rules OR what ``Lookup.classify`` keeps, as ``decide``
    has it; with ``at_checked``: OR the records whose ``at`` cannot be read, as ``decide`` finds them)."""
    pred = predicate_for(ps, table, at=at, at_field=at_field, prior_field=prior_field, csv=csv, coarse=coarse,
                         lookup=lookup, at_checked=at_checked)
    flags = rows_where(table, pred)
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if at_checked and at_field is not None and pred is not None and batch is not None:
        ats = plain_at_texts(batch, (at_field,), csv=csv, listings=lambda: batch_listings(batch, csv=csv))
        flags = [f or a is None for f, a in zip(flags, ats.to_pylist(), strict=True)]
    settled: list[Any] = [None] * len(flags)
    found = Lookup(ps, at, (at_field,) if at_field else None, prior_field is None)
    if lookup and pred is not None and batch is not None:
        mask, settling = found.classify(batch, csv=csv)
        settled = [None if f else k for f, k in zip(flags, settling.to_pylist(), strict=True)] if settling else settled
        flags = [f or m for f, m in zip(flags, mask.to_pylist(), strict=True)]
    compiled = CompiledPolicySet(ps)
    dropped = 0
    rows = batch_listings(batch, csv=csv) if batch is not None else []
    for row, keep, settle in zip(rows, flags, settled, strict=True):
        if keep:
            continue
        dropped += 1
        when = row.get(at_field) if at_field is not None else (at or "2021-10-20T00:00:00Z")
        prior = row.get(prior_field, 0) if prior_field is not None else 0
        assert when is not None, "a missing at is an error: the predicate must keep the row"
        if settle is None:
            ok, got = _plain_allow(compiled, row, when, prior)
            assert ok, (pred, row, at, got)
            continue
        decision = compiled.decide(row, when, prior)  # settled: its one keyed rule's outcome alone
        outcome = found.keyed[settle].outcome
        assert (decision.effect, decision.rules, decision.overridden, decision.penalty, decision.warnings) == (
            outcome.effect, outcome.rules, outcome.overridden, outcome.penalty, ()), (pred, row, at, decision)
    return dropped


SOUND = settings(max_examples=at_least(250), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])


@SOUND
@given(policy_sets(), catalogues(), _AT)
def test_pushdown_is_sound_with_a_constant_at(ps: PolicySet, table: Any, at: str | None) -> None:
    # `at` None stands for "now" in the scan; the check decides at a fixed instant, and the
    # predicate (which then keeps every window) must hold for any instant
    _check_sound(ps, table, at, None, "prior" if "prior" in table.column_names else None)


@st.composite
def _matches_cases(draw: st.DrawFn) -> tuple[PolicySet, Any]:
    """A rule of one ``matches`` (the drawn policies' rules hold one among many atoms), and
    a column of its field whose texts the pattern matches in at times (Python's reading of
    it draws them; RE2's decides), or not, or that is not text."""
    pattern, ignore_case = draw(st.sampled_from(REGEXES)), draw(st.booleans())
    name = draw(st.sampled_from([p[0] for p in TEXT_FIELDS if p is not None]))
    condition = f"{'not ' if draw(st.booleans()) else ''}{name.replace('message', '`message`')} matches " \
                f"/{pattern.replace('/', chr(92) + '/')}/{'i' if ignore_case else ''}"
    texts = _nullable(st.one_of(st.from_regex(pattern), st.from_regex(pattern).map(str.swapcase), _TEXTS,
                                st.from_regex(pattern).map(lambda t: t.replace("k", "\u212a").replace("s", "\u017f"))))
    size = draw(st.integers(1, 8))
    kind, values = draw(st.sampled_from([(pa.string(), texts), (pa.list_(pa.string()), st.lists(texts, max_size=3)),
                                         (pa.int64(), _NUMBERS)]))
    column = _column(draw(st.lists(values, min_size=size, max_size=size)), kind)
    return policy_set(f"rule r: block {condition}\n"), pa.table({name: column})


@SOUND
@given(_matches_cases())
def test_the_pushdown_of_matches_is_sound(case: tuple[PolicySet, Any]) -> None:
    _check_sound(*case, "2021-10-20", None, None)


@SOUND
@given(policy_sets(), catalogues(), _AT, st.booleans())
def test_the_coarse_pushdown_is_sound(ps: PolicySet, table: Any, at: str | None, by_field: bool) -> None:
    if by_field:
        if "listed_on" not in table.column_names:
            table = table.append_column("listed_on", pa.array(["2021-10-20"] * table.num_rows, type=pa.string()))
        _check_sound(ps, table, None, "listed_on", None, coarse=True)
    else:
        _check_sound(ps, table, at, None, "prior" if "prior" in table.column_names else None, coarse=True)


@SOUND
@given(policy_sets(), catalogues(), st.booleans())
def test_pushdown_is_sound_with_an_at_field(ps: PolicySet, table: Any, at_checked: bool) -> None:
    """``at_checked``: as the scan asks for it, the records whose ``at`` cannot be read
    decided whatever the predicate says, and a plain date read by its length."""
    if "listed_on" not in table.column_names:
        table = table.append_column("listed_on", pa.array(["2021-10-20"] * table.num_rows, type=pa.string()))
    _check_sound(ps, table, None, "listed_on", None, at_checked=at_checked)


@SOUND
@given(policy_sets(), catalogues(), _AT, st.booleans(), st.booleans())
def test_the_pushdown_with_the_category_lookup_is_sound(ps: PolicySet, table: Any, at: str | None, by_field: bool,
                                                         coarse: bool) -> None:
    """The rules with a category conjunct left out of the SQL, and answered for by
    ``dsl.scan.lookup`` (odd case, white space, full-width and zero-width text, lists)."""
    if by_field:
        if "listed_on" not in table.column_names:
            table = table.append_column("listed_on", pa.array(["2021-10-20"] * table.num_rows, type=pa.string()))
        _check_sound(ps, table, None, "listed_on", None, coarse=coarse, lookup=True, at_checked=True)
    else:
        _check_sound(ps, table, at, None, "prior" if "prior" in table.column_names else None, coarse=coarse,
                     lookup=True)


_PATTERNS = ("Blockchain Miners", "Electronics > Blockchain Miners", "Software", "knives", "Knives > Swords",
             "ＳＯＦＴＷＡＲＥ", "blockchain  miners", "Graphics Cards")
_WINDOWS = ("", "from 2021-06-01 ", "until 2021-12-01 ", "from 2021-08-15T12:00 until 2021-11-07 ",
            "from 2021-10-20 ", "from 2021-10-21T00:00:00Z ")


@st.composite
def category_policy_sets(draw: st.DrawFn) -> PolicySet:
    """Sets whose rules are mostly a category and nothing else (the rules the lookup
    settles), in several timezones, with windows, penalties, allows that override, and
    now and then a rule with one more condition."""
    tz = draw(st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"]))
    rules: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        effect = draw(st.sampled_from(["block", "block", "flag", "allow"] if i else ["block", "flag"]))
        patterns = draw(st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=2))
        cond = (f"category '{patterns[0]}'" if len(patterns) == 1
                else "category in [" + ", ".join(f"'{p}'" for p in patterns) + "]")
        extra = draw(st.sampled_from(["", "", "", " and platform == 'taobao'", " and platform in ['ebay', 'Taobao']",
                                      " and seller.country == 'CN'", " and platform != 'taobao'"]))
        rules.append(f"rule r{i}: {draw(st.sampled_from(_WINDOWS))}{effect} {cond}{extra}")
        if effect == "block" and draw(st.booleans()):
            rules.append("  penalty steps")
        if effect == "allow":
            rules.append("  overrides r0")
    ladder = ["ladder steps = remove listing", "  then close account", ""] if "  penalty steps" in rules else []
    return policy_set("\n".join(["policy cats", f"  timezone '{tz}'", "", *ladder, *rules]) + "\n")


@st.composite
def category_catalogues(draw: st.DrawFn) -> Any:
    """Categories (odd case, white space, full-width and zero-width text), dates as text or
    DATE (some unreadable), and now and then a platform and a prior."""
    size = draw(st.integers(1, 8))

    def column(values: st.SearchStrategy[Any], kind: Any) -> Any:
        return _column(draw(st.lists(_nullable(values), min_size=size, max_size=size)), kind)

    columns = {"category": column(_CATEGORIES, pa.string()),
               "listed_on": column(_ISO, pa.string()) if draw(st.booleans()) else column(_DAYS, pa.date32())}
    if draw(st.booleans()):
        columns["platform"] = column(st.sampled_from(["taobao", "ebay", "Taobao", "taobao "]), pa.string())
    if draw(st.booleans()):
        columns["seller"] = _column(draw(st.lists(_nullable(st.fixed_dictionaries(
            {"country": _nullable(st.sampled_from(["CN", "cn", "HK"]))})), min_size=size, max_size=size)),
            pa.struct([("country", pa.string())]))
    if draw(st.booleans()):
        columns["prior"] = column(st.integers(-1, 3), pa.int64())
    return pa.table(columns)


@SOUND
@given(category_policy_sets(), st.one_of(catalogues(), category_catalogues()), _AT, st.booleans())
def test_the_records_the_lookup_settles_get_their_rule_s_decision(ps: PolicySet, table: Any, at: str | None,
                                                                  by_field: bool) -> None:
    if by_field:
        if "listed_on" not in table.column_names:
            table = table.append_column("listed_on", pa.array(["2021-10-20"] * table.num_rows, type=pa.string()))
        _check_sound(ps, table, None, "listed_on", None, lookup=True, at_checked=True)
    else:
        _check_sound(ps, table, at, None, "prior" if "prior" in table.column_names else None, lookup=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_sets(), st.lists(st.from_type(type(None)).flatmap(lambda _: _json_listing()), min_size=1, max_size=6))
def test_pushdown_is_sound_on_json_read_by_duckdb(ps: PolicySet, listings: list[dict[str, Any]]) -> None:
    """Listings as JSON lines, with the column types DuckDB infers (JSON for mixed ones)."""
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "c.jsonl")
        path.write_text("".join(json.dumps(x) + "\n" for x in listings), encoding="utf-8")
        with _cursor() as con:
            table = con.sql(f"SELECT * FROM read_json_auto('{path}')").to_arrow_table()  # noqa: S608
    _check_sound(ps, table, "2021-10-20", None, None)


def _json_listing() -> st.SearchStrategy[dict[str, Any]]:
    from strategies import listings

    return listings().filter(lambda x: bool(x))


_CELLS = st.one_of(_TEXTS, _ISO, st.sampled_from(
    ["12", "-3", "5000.5", "true", "false", "null", "", " ", "taobao", "Taobao", '"taobao"', '["taobao"]',
     '{"country": "CN"}', "\u3000 12", " true", "trueish", "nullable", "NaN", "CN", "CM-1234", "1e2", "[1, 2]"]))


@st.composite
def csv_catalogues(draw: st.DrawFn) -> Any:
    """CSV as the scan reads it: every column text, each cell JSON when it is JSON."""
    size = draw(st.integers(1, 8))
    names = draw(st.lists(st.sampled_from([*_SHAPES, "seller.country"]), min_size=1, max_size=8, unique=True))
    return pa.table({n: _column(draw(st.lists(_nullable(_CELLS), min_size=size, max_size=size)), pa.string())
                     for n in names})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policy_sets(), csv_catalogues(), st.booleans())
def test_pushdown_is_sound_on_csv_cells(ps: PolicySet, table: Any, by_field: bool) -> None:
    if by_field and "listed_on" in table.column_names:
        _check_sound(ps, table, None, "listed_on", "prior" if "prior" in table.column_names else None, csv=True)
    else:
        _check_sound(ps, table, "2021-10-20", None, "prior" if "prior" in table.column_names else None, csv=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policy_sets(), csv_catalogues(), st.booleans())
def test_the_category_lookup_is_sound_on_csv_cells(ps: PolicySet, table: Any, by_field: bool) -> None:
    if by_field and "listed_on" in table.column_names:
        _check_sound(ps, table, None, "listed_on", "prior" if "prior" in table.column_names else None, csv=True,
                     lookup=True, at_checked=True)
    else:
        _check_sound(ps, table, "2021-10-20", None, "prior" if "prior" in table.column_names else None, csv=True,
                     lookup=True)


def test_the_category_lookup_reads_categories_as_the_evaluator_does() -> None:
    """Case, white space, full-width forms and ignorables are the evaluator's own
    normalisation (``text.category_segments``); the windows are read as dates."""
    ps = policy_set("policy p\n  timezone 'UTC'\n\n"
                    "rule r: from 2021-06-01 until 2021-09-01 block category 'Blockchain Miners'\n")
    cats = ["blockchain miners", " BLOCKCHAIN  MINERS ", "Electronics>Blockchain\u00adMiners",
            "ｂｌｏｃｋｃｈａｉｎ miners", "Blockchain Miner", "Software", None] + ["Blockchain Miners"] * 3
    dates = ["2021-07-01"] * 7 + ["2021-05-31", "2021-09-01", "2021-02-30"]
    batch = pa.RecordBatch.from_pydict({"category": cats, "listed_on": dates})
    compiled = CompiledPolicySet(ps)

    def expected(at: str | None) -> list[bool]:
        """Where the one rule applies, or the record is in error (kept, to get it)."""
        out = []
        for cat, date in zip(cats, dates, strict=True):
            try:
                out.append(bool(compiled.decide({"category": cat} if cat else {}, at or date).rules))
            except InputError:
                out.append(True)
        return out

    def kept(at: str | None, at_field: tuple[str, ...] | None) -> tuple[list[bool], list[bool]]:
        """Decided in Python, and settled (the rule is the whole condition: it settles)."""
        mask, settled = Lookup(ps, at, at_field, True).classify(batch, csv=False)
        flags = settled.to_pylist() if settled is not None else [None] * 10
        return mask.to_pylist(), [k is not None for k in flags]

    assert expected(None) == [True, True, False, True, False, False, False, False, False, True]
    assert kept(None, ("listed_on",)) == ([False] * 9 + [True], expected(None)[:9] + [False])
    assert kept("2021-10-20", None) == ([False] * 10, [False] * 10) and expected("2021-10-20") == [False] * 10
    assert kept("2021-07-20", None) == ([False] * 10, expected("2021-07-20"))
    unsettled = Lookup(ps, None, ("listed_on",), True)
    unsettled.keyed = [attrs.evolve(k, outcome=None) for k in unsettled.keyed]  # as a rule with more conditions
    assert unsettled.classify(batch, csv=False)[0].to_pylist() == expected(None)


def test_csv_cells_that_may_be_json_are_kept() -> None:
    rows = [{"platform": "taobao"}, {"platform": '"taobao"'}, {"platform": "12"}, {"platform": "ebay"},
            {"platform": "true"}, {"platform": ""}]
    table = pa.Table.from_pylist(rows)
    ps = policy_set("rule r: block platform == 'taobao'\n")
    assert rows_where(table, predicate_for(ps, table, csv=True)) == [True, True, True, False, True, True]


def test_an_empty_csv_cell_of_a_required_field_is_kept() -> None:
    """DuckDB reads an empty cell as NULL and ``convert.csv_cell`` as absent: a required
    field there is an input error, which the cell's guard (read as text?) must not hide."""
    ps = policy_set("field platform: one of ['taobao'] required\nrule r: block category 'x'\n")
    table = pa.table({"platform": pa.array([None, "taobao", "ebay", " ", '"taobao"'], pa.string())})
    assert rows_where(table, predicate_for(ps, table, csv=True)) == [True, False, True, True, True]


def test_an_or_of_text_atoms_on_one_text_goes_behind_a_prefilter() -> None:
    """``title contains 'a' or title contains 'b'`` needs one of its words: one RE2 pass,
    then the atoms themselves; an ``or`` over two texts does not."""
    ps = policy_set("rule k: from 2021-06-01 block (title contains 'bitcoin' or title contains 'Ether' "
                    "or title mentions 'monero coin')\n")
    rows = [{"title": t, "listed_on": d} for t in ("a Bitcoin", "ethernet", "monero", "monero  COIN", "lamp",
                                                    "ｂｉｔｃｏｉｎ", "bit\u200bcoin", None)
            for d in ("2021-05-31", "2021-06-01")]
    table = pa.Table.from_pylist(rows)
    pred = predicate_for(ps, table, at_field="listed_on")
    assert pred is not None and "(?i)(?:bitcoin|ether|monero)" in pred
    compiled = CompiledPolicySet(ps)
    exact = [bool(compiled.decide({k: v for k, v in r.items() if v is not None}, r["listed_on"]).rules)
             for r in rows]
    kept = rows_where(table, pred)
    assert all(k for k, e in zip(kept, exact, strict=True) if e)
    assert kept == [e or (r["title"] is not None and not r["title"].isascii() and r["listed_on"] == "2021-06-01")
                    for r, e in zip(rows, exact, strict=True)]
    two = policy_set("rule k: block (title contains 'bitcoin' or description contains 'ether')\n")
    assert "(?i)(?:" not in (predicate_for(two, pa.Table.from_pylist([{"title": "x", "description": "y"}])) or "")


def test_many_rules_behind_prefilters_narrow_exactly() -> None:
    """Rules that need a word go behind one RE2 prefilter per text and per chunk of rules;
    rows with other text are read without it."""
    text = "".join(f"rule c{i}: from 2021-0{1 + i % 9}-01 block category 'Cat-{i:03d}' and platform == 'taobao'\n"
                   for i in range(70)) + "rule k: block title contains 'bit.coin' or title mentions 'ether'\n"
    ps = policy_set(text)
    rows = [{"category": f"Home > cat-{i:03d}", "platform": p, "title": t, "listed_on": d}
            for i in (0, 5, 33, 69, 70) for p in ("taobao", "ebay")
            for t in ("bit.coin", "bitxcoin", "Ether", "cable", "ｅｔｈｅｒ")
            for d in ("2021-01-15", "2021-06-15")]
    rows.append({"category": "Home > ｃａｔ-005", "platform": "taobao", "title": "x", "listed_on": "2021-06-15"})
    table = pa.Table.from_pylist(rows)
    pred = predicate_for(ps, table, at_field="listed_on")
    assert pred is not None and "CASE WHEN" in pred
    compiled = CompiledPolicySet(ps)
    exact = [bool(compiled.decide(r, r["listed_on"]).rules) for r in rows]
    assert rows_where(table, pred) == exact
    # the coarse predicate: one RE2 pass over the rules' words; rows with non-ASCII text kept
    coarse = predicate_for(ps, table, at_field="listed_on", coarse=True)
    assert coarse is not None and len(coarse) < len(pred) / 3
    kept = rows_where(table, coarse)
    assert all(k for k, e in zip(kept, exact, strict=True) if e)
    def needs_a_word(r: dict[str, str]) -> bool:  # a rule's word in the text, or text the words cannot read
        ruled = r["category"].startswith("Home > cat-") and r["category"] != "Home > cat-070"
        return ruled or "bit.coin" in r["title"] or "ether" in r["title"].lower() or not r["title"].isascii()
    assert kept == [needs_a_word(r) or not r["category"].isascii() for r in rows]


def test_a_window_bound_whose_local_date_is_before_the_year_1() -> None:
    """0001-01-01T01:30Z is in range, its date in New York is not (the year 0): the
    pushdown's window stopped the scan with an OverflowError; the first date whose first
    instant is that late is 0001-01-01 there, and after 9999 there is none."""
    from zoneinfo import ZoneInfo

    from dsl.scan.pushdown import first_date_from

    assert first_date_from(dt.datetime(1, 1, 1, 1, 30, tzinfo=dt.UTC), ZoneInfo("America/New_York")) == dt.date(1, 1, 1)
    assert first_date_from(dt.datetime(9999, 12, 31, 20, tzinfo=dt.UTC), ZoneInfo("Asia/Shanghai")) is None
    assert first_date_from(dt.datetime(2021, 10, 15, tzinfo=dt.UTC), ZoneInfo("Asia/Shanghai")) == dt.date(2021, 10, 16)
