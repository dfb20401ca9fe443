"""Checks on test files (``*_test.policy``): P500–P504, and P101 for assertion dates.

They need only the names the policy set declares, so they run even when the set itself
has errors (the names are then read from the parsed files rather than the model).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from ..checking.loader import Loaded
from ..checking.passes import policy_name_of, rule_id
from ..diagnostics import Diagnostic, Related, did_you_mean, make
from ..model import FieldInfo, PolicySet
from ..syntax import ast as A
from .scope import file_scope

__all__ = ["Names", "check_test_files", "declared_policies", "naive_dates"]


@attrs.frozen
class Names:
    """What test files may refer to: rule ids by local name, ladders, timezones, schema."""

    qids: frozenset[str]
    by_local: Mapping[str, tuple[str, ...]]       # local id -> qualified ids (sorted)
    ladders: frozenset[str]
    timezones: frozenset[str]                     # one per policy
    schema: Mapping[tuple[str, ...], FieldInfo]   # empty when the set declares no field
    sets: Mapping[str, tuple[A.Scalar, ...]] = attrs.field(factory=dict)

    @classmethod
    def of(cls, model: PolicySet | None, loaded: Loaded, scope: frozenset[str] | None = None) -> Names:
        """The names of the whole set, or with ``scope`` (a test file's `tests for`) the
        rules and timezones of those policies only (sets, ladders and fields are the set's)."""
        if model is not None:
            qids = [r.qid for r in model.rules if scope is None or r.policy in scope]
            ladders = set(model.ladders)
            zones = {p.timezone for p in model.policies if scope is None or p.name in scope}
            schema: Mapping[tuple[str, ...], FieldInfo] = model.schema
            sets: dict[str, tuple[A.Scalar, ...]] = dict(model.sets)
        else:
            qids, ladders, zones, sets = _names_in_files(loaded, scope)
            schema = {}
        by_local: dict[str, list[str]] = defaultdict(list)
        for q in sorted(set(qids)):
            by_local[q.partition(".")[2]].append(q)
        return cls(frozenset(qids), {k: tuple(v) for k, v in by_local.items()}, frozenset(ladders),
                   frozenset(zones), schema, sets)

    def resolve(self, name: str) -> list[str]:
        """The qualified ids a `by` reference may mean: one when it resolves, none when
        unknown, several when a local id is ambiguous."""
        if name in self.qids:
            return [name]
        if "." in name:
            return []
        return list(self.by_local.get(name, ()))

    @property
    def shared_timezone(self) -> str | None:
        """The timezone all policies share (UTC for an empty set), or None."""
        if not self.timezones:
            return "UTC"
        return next(iter(self.timezones)) if len(self.timezones) == 1 else None


def _names_in_files(loaded: Loaded, scope: frozenset[str] | None
                    ) -> tuple[list[str], set[str], set[str], dict[str, tuple[A.Scalar, ...]]]:
    """Rule ids, ladders, timezones and sets read from the policy files themselves (when
    the set did not build): what ``Names.of`` gathers from a model."""
    qids: list[str] = []
    ladders: set[str] = set()
    zones: set[str] = set()
    sets: dict[str, tuple[A.Scalar, ...]] = {}
    for f in loaded.policy_files:
        policy = policy_name_of(f)
        inside = scope is None or policy in scope
        if inside:
            zones.add(_timezone_of(f))
        for s in f.statements:
            if isinstance(s, A.Rule) and inside:
                qids.append(f"{policy}.{rule_id(s)}")
            elif isinstance(s, A.LadderDecl):
                ladders.add(s.name.name)
            elif isinstance(s, A.SetDecl):
                sets.setdefault(s.name.name, s.items)
    return qids, ladders, zones, sets


def _timezone_of(f: A.File) -> str:
    """The timezone a policy file's header declares (the last one written), or UTC."""
    tz = "UTC"
    for c in f.header.clauses if f.header else ():
        if c.kind == "timezone" and isinstance(c.value, A.Str):
            tz = c.value.value
    return tz


def check_test_files(model: PolicySet | None, loaded: Loaded) -> list[Diagnostic]:
    """Findings about the test files of ``loaded`` against the policy set: unknown (P500)
    or ambiguous (P501) rules in `by`, unknown ladders in `expect` (P502), `given` values
    of the wrong shape (P503), test files without policies (P504), unknown policies in
    `tests for` (P505), a test or assertion name used twice in a file (P204), and assertion
    dates without an offset where the policies do not share a timezone (P101). A file
    with `tests for` is checked against those policies only."""
    known = declared_policies(model, loaded)
    diags: list[Diagnostic] = []
    for f in loaded.test_files:
        if not loaded.policy_files:
            first = (f.tests_for.span if f.tests_for else None) or (f.statements[0].span if f.statements else None)
            span = first or A.Span(f.path, 1, 1, 1, 2)
            diags.append(make("P504", "this test file has no policies beside it: no policy file was loaded",
                              A.Span(span.file, span.line, span.column, span.line, span.column + 1),
                              hint="run `policy test` on the directory that holds the policies and their tests"))
        else:
            diags.extend(_unknown_policies(f, known))
        diags.extend(_duplicate_names(f))
        scope = file_scope(f, known)
        names = Names.of(model, loaded, scope)
        # a rule out of scope is told as such, not as unknown (with a guess in scope)
        outside = _OutOfScope(Names.of(model, loaded), f) if scope is not None else None
        for s in f.statements:
            if isinstance(s, A.TestCase):
                diags.extend(_check_test(s, names, bool(loaded.policy_files), outside))
            elif isinstance(s, A.Assertion):
                diags.extend(_check_assertion(s, names))
    return diags


def declared_policies(model: PolicySet | None, loaded: Loaded) -> tuple[str, ...]:
    """The names of the policies of the set (read from the files when there is no model)."""
    if model is not None:
        return tuple(p.name for p in model.policies)
    return tuple(sorted({policy_name_of(f) for f in loaded.policy_files}))


def _unknown_policies(f: A.File, known: tuple[str, ...]) -> Iterator[Diagnostic]:
    for ref in f.tests_for.policies if f.tests_for else ():
        if ref.name not in known:
            guess = did_you_mean(ref.name, known)
            yield make("P505", f"unknown policy '{ref.name}' in `tests for`", ref.span,
                       hint=f"did you mean '{guess}'?" if guess else
                       f"name a policy of the set: {', '.join(known[:5])}{', …' if len(known) > 5 else ''}")


def _duplicate_names(f: A.File) -> Iterator[Diagnostic]:
    """Results, reports and `--run` cite a test by its name: one name, one test a file."""
    seen: dict[str, A.Str] = {}
    for s in f.statements:
        if not isinstance(s, (A.TestCase, A.Assertion)):
            continue
        first = seen.setdefault(s.name.value, s.name)
        if first is not s.name:
            yield make("P204", f"the name '{s.name.value}' is already used by a test or assertion of this file",
                       s.name.span, hint="give each test and assertion of a file its own name",
                       related=[Related(first.span, "first used here")] if first.span else ())


@attrs.frozen
class _OutOfScope:
    """The whole set's names, for a file with `tests for`: a `by` that names a rule of a
    policy the file leaves out is told so (P500), with the `tests for` that would hold it."""

    names: Names
    file: A.File

    def unknown(self, ref: A.Ref) -> Diagnostic | None:
        found = self.names.resolve(ref.name)
        if not found:
            return None
        policies = sorted({q.partition(".")[0] for q in found})
        listed = [p.name for p in self.file.tests_for.policies] if self.file.tests_for else []
        whose = f"policy {policies[0]}" if len(policies) == 1 else f"policies {', '.join(policies)}"
        if len(found) == 1:
            what = f"rule '{ref.name}' belongs to {whose}"
        else:
            what = f"rules named '{ref.name}' belong to {whose}"
        if len(policies) == 1:
            hint = f"add {policies[0]} to `tests for` (`tests for {', '.join([*listed, policies[0]])}`)"
        else:
            hint = f"add the policy you mean to `tests for`, and name the rule as `policy.rule` (such as `{found[0]}`)"
        return make("P500", f"{what}, outside this file's `tests for`", ref.span, hint=hint)


def _check_test(t: A.TestCase, names: Names, have_policies: bool,
                outside: _OutOfScope | None = None) -> Iterator[Diagnostic]:
    if have_policies:
        for ref in t.expect.by:
            found = names.resolve(ref.name)
            if not found:
                out_of_scope = outside.unknown(ref) if outside is not None else None
                if out_of_scope is not None:
                    yield out_of_scope
                    continue
                guess = did_you_mean(ref.name, [*names.qids, *names.by_local])
                yield make("P500", f"unknown rule '{ref.name}'", ref.span,
                           hint=f"did you mean '{guess}'?" if guess else
                           "name a rule as `policy.rule`, or by its local id where only one policy has it")
            elif len(found) > 1:
                yield make("P501", f"'{ref.name}' names rules in several policies: {', '.join(found)}", ref.span,
                           hint=f"qualify it, for example `{found[0]}`")
        pen = t.expect.penalty
        if pen is not None and pen.ladder is not None and pen.ladder.name not in names.ladders:
            guess = did_you_mean(pen.ladder.name, names.ladders)
            yield make("P502", f"unknown ladder '{pen.ladder.name}'", pen.ladder.span,
                       hint=f"did you mean '{guess}'?" if guess else
                       "for an inline `penalty STEP` write `penalty step N`")
    yield from _duplicate_keys(t.given)
    if names.schema:
        yield from _fits_schema(t.given, names.schema)


def _duplicate_keys(obj: A.ObjectLit) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for key, value in obj.items:
        if key in seen:
            yield make("P503", f"the key '{key}' is given twice in this object", value.span or obj.span,
                       hint="a listing holds each field once: remove one of them")
        seen.add(key)
    for _key, value in obj.items:
        yield from _nested_duplicates(value)


def _nested_duplicates(value: A.Value) -> Iterator[Diagnostic]:
    if isinstance(value, A.ObjectLit):
        yield from _duplicate_keys(value)
    elif isinstance(value, A.ArrayLit):
        for v in value.items:
            yield from _nested_duplicates(v)


def _fits_schema(given: A.ObjectLit, schema: Mapping[tuple[str, ...], FieldInfo]) -> Iterator[Diagnostic]:
    """A `given` that `decide` would refuse as an input error (a declared field of the
    wrong type, or a required one absent), judged exactly as `decide` judges it."""
    from ..evaluate import values as R
    from ..model import to_jsonable

    listing = to_jsonable(given)
    for path in sorted(schema, key=R.dotted):
        problem = R.schema_problem(schema[path], R.read_path(listing, path))
        if problem is not None:
            node = _node_at(given, path)
            yield make("P503", f"this listing does not fit the declared fields: {problem}",
                       (node.span if node is not None else None) or given.span,
                       hint=f"see the policy set's `field {R.dotted(path)}: …` declaration")


def _node_at(obj: A.ObjectLit, path: tuple[str, ...]) -> A.Value | None:
    node: A.Value | None = obj
    for part in path:
        if not isinstance(node, A.ObjectLit):
            return None
        node = next((v for k, v in reversed(node.items) if k == part), None)
    return node


def naive_dates(a: A.Assertion, sets: Mapping[str, tuple[A.Scalar, ...]] | None = None) -> Iterator[A.When]:
    """The date literals of an assertion written without an offset: its window bounds and
    the dates its expression compares fields with (through ``sets`` for set references)."""
    for w in (a.from_, a.until):
        if w is not None and _naive(w):
            yield w
    for node in A.walk(a.expr):
        lits: list[Any] = []
        if isinstance(node, A.Compare):
            lits = [node.value]
        elif isinstance(node, A.In) and isinstance(node.items, A.ListLit):
            lits = list(node.items.items)
        elif isinstance(node, A.In) and isinstance(node.items, A.Ref) and sets is not None and node.items.name in sets:
            # found at the set reference in the assertion, where the reading is ambiguous
            lits = [attrs.evolve(lit, span=node.items.span) for lit in sets[node.items.name]]
        for lit in lits:
            if isinstance(lit, (A.Date, A.DateTime)) and _naive(lit):
                yield lit


def _naive(w: A.When) -> bool:
    return isinstance(w, A.Date) or w.value.tzinfo is None


def _check_assertion(a: A.Assertion, names: Names) -> Iterator[Diagnostic]:
    yield from _check_expr(a.expr, names)
    if names.shared_timezone is not None:
        return
    zones = ", ".join(sorted(names.timezones))
    for w in naive_dates(a, names.sets):
        text = w.value.isoformat()
        yield make("P101", f"'{text}' has no offset, and the policies do not share one timezone ({zones})", w.span,
                   hint="write the instant with an offset: " + _offset_examples(w, names.timezones))


def _offset_examples(w: A.When, zones: Iterable[str]) -> str:
    """The literal with each policy's offset at that time: 2021-10-08T00:00:00+08:00 for
    Asia/Shanghai, and so on."""
    from zoneinfo import ZoneInfo

    from ..model import when_value

    local = when_value(w)
    assert local is not None
    out = []
    for name in sorted(zones):
        try:
            aware = local.replace(tzinfo=ZoneInfo(name), fold=0)
        except Exception:  # noqa: BLE001 - an unknown zone is reported elsewhere (P104)
            continue
        out.append(f"{aware.isoformat()} in {name}")
    return ", ".join(out[:3]) or local.isoformat() + "Z"


def _check_expr(expr: A.Expr, names: Names) -> Iterator[Diagnostic]:
    """The checks a rule condition gets: sets (P200), regular expressions (P102), fields
    and literal types (P205–P208, through the rule checks' own atom check)."""
    from ..checking.passes import check_atom  # the rule checks' atom pass, shared on purpose
    from ..model import BUILTIN_FIELDS

    schema = dict(BUILTIN_FIELDS)
    schema.update(names.schema)
    decls = {n: A.SetDecl(A.Ref(n), items) for n, items in names.sets.items()}
    for node in A.walk(expr):
        items = getattr(node, "items", None)
        if isinstance(node, (A.CategoryIn, A.MentionsAny, A.In)) and isinstance(items, A.Ref):
            if items.name not in names.sets:
                guess = did_you_mean(items.name, names.sets)
                yield make("P200", f"unknown set '{items.name}'", items.span,
                           hint=f"did you mean '{guess}'?" if guess else None)
                continue
        yield from check_atom(node, schema, bool(names.schema), decls)
