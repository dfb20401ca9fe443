"""dsl.evaluate.semantics: the one statement of value predicates, windows, effects, penalties and
how applying rules combine; and the property tests that tie the z3 encoding (the only
other statement) to it."""

from __future__ import annotations

import datetime as dt
import itertools
import typing
from zoneinfo import ZoneInfo

import pytest
import z3
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import at_least

from dsl import model
from dsl.analysis import formula as FM
from dsl.analysis.solver import Engine
from dsl.checking.passes import build
from dsl.evaluate import outcome
from dsl.evaluate import semantics as S
from dsl.evaluate import values as V
from dsl.evaluate.outcome import PenaltyChoice
from dsl.evaluate.policies import Policies
from dsl.evaluate.reference import holds
from dsl.model import StepInfo
from dsl.syntax import ast as A
from dsl.syntax import parse

UTC = ZoneInfo("UTC")
D = dt.datetime


def load_text(text: str) -> Policies:
    ps, diags = build([parse(text, "p.policy")[0]], {})
    assert ps is not None, [d.message for d in diags]
    return Policies(ps)


# --------------------------------------------------------------------------- values

scalars = st.one_of(
    st.integers(-3, 3).map(lambda n: A.Num(n)), st.sampled_from([A.Num(1.5), A.Num(-0.5)]),
    st.sampled_from(["a", "b", "2021-10-15", ""]).map(A.Str),
    st.booleans().map(A.Bool),
    st.sampled_from([A.Date(dt.date(2021, 10, 15)), A.DateTime(D(2021, 10, 15, 8, 0))]),
)
values = st.one_of(
    st.none(), st.integers(-3, 3), st.sampled_from([1.5, -0.5, 1.0, float("nan"), float("inf")]),
    st.sampled_from(["a", "b", "", "2021-10-15", "2021-10-15T08:00", "2021-10-15T00:00:00Z", "x"]),
    st.booleans(), st.just(dt.date(2021, 10, 15)), st.just([1, "a"]), st.just({"a": 1}),
)


def same_kind(value: object, lit: A.Scalar) -> bool:
    """Spec section 4, as written: a value compares with a literal of its own kind."""
    if isinstance(lit, A.Str):
        return isinstance(value, str)
    if isinstance(lit, A.Bool):
        return isinstance(value, bool)
    if isinstance(lit, A.Num):
        return S.V.is_number(value)
    return S.V.value_instant(value, UTC) is not None


@given(value=values, items=st.lists(scalars, max_size=4), negated=st.booleans())
def test_membership_is_equality_with_an_item_of_the_values_kind(value, items, negated) -> None:  # type: ignore[no-untyped-def]
    """The hash-set form that ``membership_test`` builds says what the spec says in terms
    of ``compare(==)``: in when equal to an item; not in when some item is of the value's
    kind and none is equal, or the list is empty; both false on absent and non-scalar."""
    if value is None or not S.V.is_scalar(value):
        expected = False
    else:
        comparable = [lit for lit in items if same_kind(value, lit)]
        found = any(S.compare(value, "==", lit, UTC) for lit in comparable)
        expected = (not items or (bool(comparable) and not found)) if negated else found
    assert S.in_list(value, items, negated, UTC) is expected


@given(value=values, op=st.sampled_from(sorted(S.OPERATORS)), lit=scalars)
def test_compare_only_within_a_kind(value, op, lit) -> None:  # type: ignore[no-untyped-def]
    got = S.compare(value, op, lit, UTC)
    assert isinstance(got, bool)
    if value is None or not same_kind(value, lit):
        assert not got
    if isinstance(lit, (A.Str, A.Bool)) and op not in S.EQUALITY_OPS:
        assert not got


def test_tables() -> None:
    assert S.EFFECTS == ("allow", "flag", "block")
    assert [S.EFFECT_RANK[e] for e in S.EFFECTS] == [0, 1, 2]
    assert set(S.OPERATORS) == {"==", "!=", "<", "<=", ">", ">="}


def test_effects_and_operators_are_literal_types() -> None:
    """Effects and operators are Literal types: the model's Effect and the leaf outcome
    module's copy name the same three effects, those of ``EFFECTS``; ``Op`` names the six
    operators of ``OPERATORS``. ``effect_of`` and ``as_op`` turn the syntax tree's strings
    into them and refuse anything else."""
    assert typing.get_args(model.Effect) == typing.get_args(outcome.Effect) == S.EFFECTS
    assert S.OPS == typing.get_args(S.Op) == tuple(S.OPERATORS)
    assert S.EQUALITY_OPS <= set(S.OPS)
    assert [model.effect_of(e) for e in S.EFFECTS] == list(S.EFFECTS)
    assert [S.as_op(op) for op in S.OPS] == list(S.OPS)
    with pytest.raises(ValueError, match="not an effect"):
        model.effect_of("deny")
    with pytest.raises(ValueError, match="not a comparison operator"):
        S.as_op("=")


def test_kinds_are_literal_types() -> None:
    """A declared field's kind (``model.FieldKind``) and the kinds of value a set reads a
    field as (``model.ValueKind``, each with its words in input warnings)."""
    assert [model.field_kind_of(k) for k in typing.get_args(model.FieldKind)] == list(typing.get_args(model.FieldKind))
    assert {f.kind for f in model.BUILTIN_FIELDS.values()} <= set(typing.get_args(model.FieldKind))
    assert set(typing.get_args(model.ValueKind)) == set(V.KIND_WORDS)
    with pytest.raises(ValueError, match="not a field type"):
        model.field_kind_of("string")


def test_windows() -> None:
    start, end = D(2021, 1, 1, tzinfo=dt.UTC), D(2021, 2, 1, tzinfo=dt.UTC)
    assert S.window_side(start, end, start) == S.IN_FORCE and S.in_window(start, end, start)
    assert S.window_side(start, end, end) == S.AFTER and not S.in_window(start, end, end)
    assert S.window_side(start, None, start - dt.timedelta(microseconds=1)) == S.BEFORE
    assert S.in_window(None, None, start)


instants = st.datetimes(min_value=D(1, 1, 2), max_value=D(9999, 12, 30),
                        timezones=st.sampled_from([dt.UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata")]))


@given(start=st.none() | instants, end=st.none() | instants, at=instants)
def test_window_keys_agree_with_window_side(start, end, at) -> None:  # type: ignore[no-untyped-def]
    lo, hi = S.window_keys(start, end)
    assert (lo <= S.instant_key(at) < hi) == (S.window_side(start, end, at) == S.IN_FORCE)


text_pieces = st.lists(st.text(alphabet="aAßẞ \t\u200bﬁfi-–", max_size=8), max_size=3)


@given(needles=st.lists(st.text(alphabet="aAßẞ \u200bﬁfi-–", max_size=4), max_size=3), pieces=text_pieces)
def test_contains_on_normalized_pieces_agrees(needles: list[str], pieces: list[str]) -> None:
    normalized = S.needle_pieces(pieces)
    assert S.contains_normalized_test(needles)(normalized) == any(S.contains_test(n)(pieces) for n in needles)


def test_categories_and_text() -> None:
    path = ("electronics", "blockchain miners")
    assert S.category_test(["Blockchain Miners"])(path)
    assert not S.category_test(["Blockchain Miner"])(path) and not S.category_test([""])(path)
    assert not S.category_test(["Electronics"])(None)
    assert S.mention_phrases(["Bitcoin", "", " "]) == frozenset({"bitcoin"})
    assert S.contains_test("S19")(("Antminer s19 pro",)) and not S.contains_test("S19")(())
    assert S.matches_test("^a+$", False)(("b", "aaa"))


# --------------------------------------------------------------------------- penalties and combine


def steps(*severities: int) -> tuple[StepInfo, ...]:
    return tuple(StepInfo((f"deduct {s} points",), ((2, s),)) for s in severities)


def test_penalty_step_is_the_next_then_the_last() -> None:
    assert [S.penalty_step(prior, 3) for prior in range(5)] == [1, 2, 3, 3, 3]
    assert S.step_at(steps(1, 2, 3), 7).severity == ((2, 3),)


def test_combine_overrides_effect_penalty_messages() -> None:
    rules = [
        S.Consequence("p.b", "block", ladder="l", steps=steps(5, 9), message="m1", citations=("c",)),
        S.Consequence("p.a", "block", ladder="l", steps=steps(9, 9), message="m1", citations=("c", "d")),
        S.Consequence("p.f", "flag", message="m2"),
        S.Consequence("p.x", "allow", overrides=("p.f", "p.gone")),
    ]
    out = S.combine(rules, prior=1)
    assert out.effect == "block"
    assert out.rules == ("p.a", "p.b", "p.x") and out.overridden == ("p.f",)
    assert out.overridden_by == {"p.f": ("p.x",)}
    # equally severe: the smaller rule id wins
    assert out.penalty == PenaltyChoice("p.a", "l", 2, ("deduct 9 points",))
    assert [p.rule for p in out.proposals] == ["p.a", "p.b"]
    assert out.messages == ("m1",) and out.citations == ("c", "d")
    assert S.combine([], 0).effect == "allow" and S.combine([], 0).penalty is None


@given(st.permutations(range(4)), st.integers(0, 4))
def test_combine_ignores_the_order_of_the_rules(order, prior) -> None:  # type: ignore[no-untyped-def]
    rules = [S.Consequence("p.a", "flag"), S.Consequence("p.b", "block", ladder=None, steps=steps(3)),
             S.Consequence("p.c", "block", ladder="l", steps=steps(1, 3, 5)), S.Consequence("p.d", "allow")]
    assert S.combine([rules[i] for i in order], prior) == S.combine(rules, prior)


# --------------------------------------------------------------------------- the z3 encoding


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


atom_literals = st.one_of(st.integers(-2, 2).map(str), st.sampled_from(["0.5", "'a'", "'b'", "true", "false",
                                                                          "2021-10-15"]))
atoms = st.one_of(
    st.tuples(st.sampled_from(sorted(S.OPERATORS)), atom_literals).map(lambda t: f"v {t[0]} {t[1]}"),
    st.tuples(st.booleans(), st.lists(atom_literals, max_size=3)).map(
        lambda t: f"v {'not in' if t[0] else 'in'} [{', '.join(t[1])}]"),
)
pinned_values = st.one_of(st.integers(-2, 2), st.sampled_from([0.5, "a", "b", "c", True, False]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(atom=atoms, value=pinned_values)
def test_the_z3_encoding_of_an_atom_agrees_with_semantics(atom: str, value: object) -> None:
    """With the field pinned to a value (``v == VALUE``, which z3 reads too), the solver
    finds the atom satisfiable exactly when ``semantics`` says the value satisfies it."""
    ps, _ = build([parse(f"policy p\nrule r: flag {atom}\n", "p.policy")[0]], {})
    assume(ps is not None)  # the checks refuse e.g. `v < 'a'` (P2xx)
    assert ps is not None
    rule = ps.rules[0]
    expected = holds(rule.condition, {"v": value}, rule.tz)
    pin = f"v == {_literal(value)}"
    pinned = parse(f"policy p\nrule r: flag {pin}\n", "pin.policy")[0]
    pin_ps, _ = build([pinned], {})
    assert pin_ps is not None
    question = FM.all_of(FM.holds_expr(rule.condition, rule.tz), FM.holds_expr(pin_ps.rules[0].condition, rule.tz))
    answer = Engine(ps, [(pin_ps.rules[0].condition, rule.tz)]).solve(question)
    if answer.status == "undecided":
        return
    assert (answer.status == "sat") is expected, (atom, value, answer)
    if answer.witness is not None:
        assert holds(rule.condition, answer.witness.listing, rule.tz)


def test_the_z3_penalty_rank_agrees_with_semantics() -> None:
    """``Engine.rank`` restates the penalty step and the severity order in z3: at every
    ``prior``, rank(x) >= rank(r) exactly when the step x proposes is at least as severe as
    the one r proposes (``semantics.step_at``)."""
    ladders = {"a": "warn seller then deduct 6 points then close account",
               "b": "deduct 6 points then remove listing and deduct 6 points",
               "c": "restrict listing for 30d"}
    text = "policy p\n" + "".join(f"ladder {n} = {t}\n" for n, t in ladders.items()) + "".join(
        f"rule {n}: block price > 1\n  penalty {n}\n" for n in ladders)
    ps = load_text(text).policy_set
    engine = Engine(ps)
    for x, r in itertools.permutations(ps.rules, 2):
        for prior in range(5):
            z3_says = z3.simplify(z3.substitute(engine.rank(x.qid) >= engine.rank(r.qid),
                                                (engine.world.prior, z3.IntVal(prior))))
            mine, theirs = S.step_at(x.penalty.steps, prior), S.step_at(r.penalty.steps, prior)  # type: ignore[union-attr]
            assert z3.is_true(z3_says) is (mine.severity >= theirs.severity), (x.qid, r.qid, prior)
            assert (FM.proposal_severity(ps, x.qid, prior) >= FM.proposal_severity(ps, r.qid, prior)) is \
                (mine.severity >= theirs.severity)


def test_outcome_is_a_leaf_and_a_decision_is_plain_data() -> None:
    """dsl.evaluate.outcome imports nothing else of dsl; a Decision holds only its data fields."""
    import ast
    from pathlib import Path

    import attrs

    import dsl.evaluate.outcome
    from dsl.evaluate.outcome import Decision

    tree = ast.parse(Path(dsl.evaluate.outcome.__file__).read_text(encoding="utf-8"))
    relative = [n for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("dsl"))]
    assert relative == []
    assert [f.name for f in attrs.fields(Decision)] == [
        "effect", "rules", "overridden", "penalty", "messages", "citations", "warnings", "at", "policy_hash"]
    assert not hasattr(Decision, "explain")


@settings(max_examples=at_least(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_a_decision_reads_only_the_fields_read(data: st.DataObject, schema: bool) -> None:
    """``fields_read``: a listing cut down to those top-level fields gets the same decision
    (effect, rules, penalty, warnings) or the same error as the whole listing, the fields
    the policy set does not read carrying anything (``policy scan`` reads no other column)."""
    from strategies import listings, policy_files

    file = data.draw(policy_files(schema=True if schema else None))
    ps, diags = build([file], {})
    assume(ps is not None)
    assert ps is not None
    policies = Policies(ps)
    read = S.fields_read(ps)
    listing = data.draw(listings())
    listing.update(data.draw(st.dictionaries(st.sampled_from(["zz", "note", "extra", "sku", "price"]),
                                             st.one_of(st.none(), st.integers(), st.text(max_size=3),
                                                       st.lists(st.integers(), max_size=2)), max_size=3)))
    cut = {k: v for k, v in listing.items() if k in read}
    at = data.draw(st.sampled_from(["2021-10-20", "2021-10-07T23:00:00Z", "2022-03-01"]))

    def outcome_of(x: dict[str, typing.Any]) -> typing.Any:
        try:
            d = policies.decide(x, at=at, prior_violations=1)
        except outcome.InputError as e:
            return ("error", e.message)
        return (d.effect, d.rules, d.overridden, d.penalty, d.warnings)

    assert outcome_of(cut) == outcome_of(listing)


def test_fields_read_names_every_kind_of_atom() -> None:
    from dsl.syntax import parse

    text = ("policy p\n  timezone 'UTC'\n  scope platform in ['taobao']\n\n"
            "rule a: block category 'X' and mentions 'coin' unless seller.verified exists\n"
            "rule b: flag sku matches /^CM/ or item.origin == 'CN' or notes contains 'ivory'\n")
    file, diags = parse(text, "p.policy")
    assert diags == []
    ps, found = build([file], {"p.policy": text})
    assert ps is not None, found
    assert S.fields_read(ps) == {"platform", "category", "title", "description", "tags", "seller", "sku", "item",
                                 "notes"}
