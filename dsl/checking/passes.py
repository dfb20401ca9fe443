"""Semantic checks: from parsed files to the checked model (``dsl.model.PolicySet``).

The checks are a named, ordered list of small passes over the files. A pass reads the
AST and a shared table of declarations, and returns diagnostics; none mutates the AST.
``build`` runs them and, when nothing is wrong, resolves every name into the model.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ..diagnostics import Diagnostic, Related, did_you_mean, has_errors, make, sort_diagnostics
from ..model import (
    BUILTIN_FIELDS,
    FieldInfo,
    FieldKind,
    LadderInfo,
    PolicyInfo,
    PolicySet,
    RuleInfo,
    ValueKind,
    effect_of,
    field_kind_of,
    local_instant,
    step_info,
    when_instant,
)
from ..syntax import ast as A

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def policy_name_of(file: A.File) -> str:
    """The policy's name: its header's, else the file's stem (P214 when not a name)."""
    if file.header is not None:
        return file.header.name.name
    return PurePath(file.path).name.removesuffix(".policy")


def rule_id(rule: A.Rule) -> str:
    """A rule's local id: its name, or ``L<line>`` of its first token."""
    if rule.name is not None:
        return rule.name.name
    line = rule.anchor.line if rule.anchor else 0
    return f"L{line}"


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError on odd keys, IsADirectoryError …
        return None


@attrs.define
class _Table:
    """Declarations of the whole set, gathered by the first pass."""

    files: list[A.File]
    test_files: list[A.File] = attrs.field(factory=list)             # only read for P401
    policy_of: dict[str, str] = attrs.field(factory=dict)           # file path -> policy name
    policies: dict[str, A.File] = attrs.field(factory=dict)         # name -> file
    sets: dict[str, A.SetDecl] = attrs.field(factory=dict)
    ladders: dict[str, A.LadderDecl] = attrs.field(factory=dict)
    fields: dict[tuple[str, ...], A.FieldDecl] = attrs.field(factory=dict)
    rules: dict[str, dict[str, A.Rule]] = attrs.field(factory=dict)  # policy -> local id -> rule
    zones: dict[str, ZoneInfo] = attrs.field(factory=dict)          # policy -> zone
    _rules: dict[int, list[A.Rule]] = attrs.field(factory=dict, init=False)  # id(file) -> its rules
    _exprs: dict[int, list[A.Expr]] = attrs.field(factory=dict, init=False)  # id(file) -> _file_exprs

    def rules_of(self, file: A.File) -> list[A.Rule]:
        """The file's rules, in order (gathered once: several passes read them)."""
        found = self._rules.get(id(file))
        if found is None:
            found = self._rules[id(file)] = [s for s in file.statements if isinstance(s, A.Rule)]
        return found

    def exprs_of(self, file: A.File) -> list[A.Expr]:
        """``_file_exprs(file)``, gathered once (several passes read them)."""
        found = self._exprs.get(id(file))
        if found is None:
            found = self._exprs[id(file)] = list(_file_exprs(file))
        return found

    def resolve_rule(self, policy: str, ref: str) -> tuple[str, A.Rule] | None:
        if "." in ref:
            pol, _, local = ref.partition(".")
            rule = self.rules.get(pol, {}).get(local)
            return (f"{pol}.{local}", rule) if rule else None
        rule = self.rules.get(policy, {}).get(ref)
        return (f"{policy}.{ref}", rule) if rule else None

    def unparsed(self, kind: str) -> set[str]:
        """What the statements left out for a syntax error declare (sets and ladders by
        name, rules by qualified id): not reported as unknown, since their P100 says it all."""
        return {f"{self.policy_of[f.path]}.{u.name}" if kind == "rule" else u.name
                for f in self.files for u in f.unparsed if u.kind == kind}


# ---------------------------------------------------------------- passes


def pass_declarations(t: _Table) -> Iterator[Diagnostic]:
    """Policy names (P214, P204), header clauses (P104), sets, ladders, fields (P204)."""
    for f in t.files:
        yield from _declare_policy(t, f)
    for f in t.files:
        for s in f.statements:
            if isinstance(s, A.SetDecl):
                yield from _declare(t.sets, s.name, s, "set")
            elif isinstance(s, A.LadderDecl):
                yield from _declare(t.ladders, s.name, s, "ladder")
            elif isinstance(s, A.FieldDecl):
                yield from _declare_field(t, s)


def _declare_policy(t: _Table, f: A.File) -> Iterator[Diagnostic]:
    """A file's policy name (P214, P204) and its header's clauses (P204, P104). A header
    left out for its syntax error yields nothing but its P100 (spec section 6): its file
    has a name no policy can have (``<PATH>``), so that neither the name the header may
    have declared nor the file's stem clashes with another policy's (P204, P203)."""
    if f.header is None and any(u.kind == "policy" for u in f.unparsed):
        t.policy_of[f.path] = name = f"<{f.path}>"
        t.zones.setdefault(name, ZoneInfo("UTC"))
        return
    name = policy_name_of(f)
    if f.header is None and not NAME_RE.match(name):
        yield make("P214", f"the file has no `policy` header and its name '{name}' is not a valid policy name",
                   A.Span(f.path, 1, 1, 1, 2),
                   hint="add a header such as `policy crypto-2021` at the top of the file, or rename the file")
    if name in t.policies:
        other = t.policies[name]
        span = f.header.name.span if f.header else A.Span(f.path, 1, 1, 1, 2)
        yield make("P204", f"a policy named '{name}' is already defined in {other.path}", span,
                   hint="policy names are unique in a policy set: rename one of them")
    else:
        t.policies[name] = f
    t.policy_of[f.path] = name
    zones: list[ZoneInfo] = []
    if f.header is not None:
        yield from _header_clauses(f.header, zones)
    t.zones.setdefault(name, zones[-1] if zones else ZoneInfo("UTC"))


def _header_clauses(header: A.Header, zones: list[ZoneInfo]) -> Iterator[Diagnostic]:
    """A header's clauses: each at most once but `authority` (P204), a known timezone
    (P104); the zone of a valid `timezone` clause is appended to ``zones``."""
    seen: set[str] = set()
    for c in header.clauses:
        if c.kind != "authority" and c.kind in seen:
            yield make("P204", f"`{c.kind}` is given twice in the policy header", c.span,
                       hint="keep one; only `authority` may be repeated")
            continue
        seen.add(c.kind)
        if c.kind == "timezone":
            assert isinstance(c.value, A.Str), "the grammar gives `timezone` a string"
            z = _zone(c.value.value)
            if z is None:
                yield make("P104", f"unknown timezone '{c.value.value}'", c.value.span,
                           hint=_timezone_hint(c.value.value))
            else:
                zones.append(z)


def _declare_field(t: _Table, s: A.FieldDecl) -> Iterator[Diagnostic]:
    key = s.path.parts
    if key in BUILTIN_FIELDS:
        yield make("P204", f"'{s.path}' is a built-in field and is always declared", s.path.span,
                   hint="remove this declaration")
    elif key in t.fields:
        first = t.fields[key].path.span
        yield make("P204", f"the field '{s.path}' is already declared", s.path.span,
                   related=[Related(first, "first declared here")] if first else ())
    else:
        t.fields[key] = s


def _declare(table: dict[str, Any], ref: A.Ref, decl: Any, kind: str) -> Iterator[Diagnostic]:
    if ref.name in table:
        first = table[ref.name]
        yield make("P204", f"a {kind} named '{ref.name}' is already defined", ref.span,
                   hint=f"{kind} names are unique across the policy set: rename one",
                   related=[Related(first.name.span, "first defined here")] if first.name.span else ())
    else:
        table[ref.name] = decl


def pass_rules(t: _Table) -> Iterator[Diagnostic]:
    """Rule ids (P203, P400), effects and clauses (P209, P211, P213)."""
    for f in t.files:
        policy = t.policy_of[f.path]
        ids = t.rules.setdefault(policy, {})
        for r in t.rules_of(f):
            rid = rule_id(r)
            if r.name is None:
                yield make("P400", f"this rule has no name; its id is {policy}.{rid}, which changes when lines move",
                           r.anchor,
                           hint=f"name it: `rule some-name: {r.effect} …` so that audit logs cite a stable id")
            if rid in ids:
                first = ids[rid]
                yield make("P203", f"the rule id '{rid}' is already used in policy '{policy}'", r.anchor,
                           hint="give the rule another name",
                           related=[Related(first.anchor, "first used here")] if first.anchor else ())
            else:
                ids[rid] = r
            if r.penalty is not None and r.effect != "block":
                yield make("P211", f"`penalty` is allowed on block rules only; this is a {r.effect} rule",
                           r.penalty.span, hint="remove the penalty, or make the rule `block`")
            if r.effect == "allow" and not r.overrides:
                yield make("P209", "an `allow` rule must name the rules it lifts with `overrides`", r.anchor,
                           hint="add `overrides RULE` naming the block or flag rules this exception lifts")
            if r.effect != "allow" and r.overrides:
                yield make("P213", f"`overrides` belongs to allow rules; this is a {r.effect} rule",
                           r.overrides[0].span, hint="remove `overrides`, or make this rule an `allow` exception")


def pass_references(t: _Table) -> Iterator[Diagnostic]:
    """Ladders (P201), overridden rules (P202, P210), sets (P200)."""
    for f in t.files:
        policy = t.policy_of[f.path]
        for r in t.rules_of(f):
            if r.penalty is not None or r.overrides:  # (most rules name neither)
                yield from _rule_references(t, policy, r)
        for expr in t.exprs_of(f):
            for ref in _set_refs(expr):
                if ref.name not in t.sets and ref.name not in t.unparsed("set"):
                    yield _unknown("P200", "set", ref, t.sets)


def _rule_references(t: _Table, policy: str, r: A.Rule) -> Iterator[Diagnostic]:
    """A rule's ladder (P201) and, for an allow, the rules it overrides."""
    if isinstance(r.penalty, A.PenaltyLadder):
        ref = r.penalty.ladder
        if ref.name not in t.ladders and ref.name not in t.unparsed("ladder"):
            yield _unknown("P201", "ladder", ref, t.ladders)
    if r.effect == "allow":
        for ref in r.overrides:
            yield from _check_override(t, policy, ref)


def _set_refs(expr: A.Expr) -> tuple[A.Ref, ...]:
    """The set references of an expression (``category in S``, ``mentions any S``,
    ``PATH in S``), in order."""
    if type(expr) in _SETLESS_ATOMS:  # most expressions are one atom, most of those a category
        return ()
    return tuple(node.items for node in _nodes(expr)
                 if isinstance(node, (A.CategoryIn, A.MentionsAny, A.In)) and isinstance(node.items, A.Ref))


_SETLESS_ATOMS = frozenset({A.Const, A.Category, A.Mentions, A.Contains, A.Matches, A.Compare, A.Exists})
"""The atoms that cannot name a set (by exact type)."""


def _nodes(expr: A.Expr) -> Iterable[A.Expr]:
    """``A.walk(expr)``; a single atom without a walk (most expressions are one)."""
    return A.walk(expr) if isinstance(expr, (A.And, A.Or, A.Not)) else (expr,)


def _check_override(t: _Table, policy: str, ref: A.Ref) -> Iterator[Diagnostic]:
    """One name in an allow's ``overrides``: a plain name names a rule of the allow's own
    policy (P202 otherwise), a qualified id any rule; a rule of another policy gets P215."""
    found = t.resolve_rule(policy, ref.name)
    if found is None:
        qid = ref.name if "." in ref.name else f"{policy}.{ref.name}"
        unread = qid.partition(".")[0] in t.unparsed("policy") and qid.partition(".")[0] not in t.policies
        if qid not in t.unparsed("rule") and not unread:  # (a rule of a policy whose header did not parse)
            yield _unknown_override(t, policy, ref)
    elif found[1].effect == "allow":
        yield make("P210", f"'{ref.name}' is an allow rule; an allow cannot be overridden", ref.span,
                   hint="name the block or flag rules that this exception lifts")
    elif not found[0].startswith(policy + "."):
        other = found[0].partition(".")[0]
        yield make("P215", f"this allow of policy '{policy}' lifts '{found[0]}', a rule of policy '{other}': "
                   "one team's file lifts another team's ban", ref.span,
                   hint=f"make sure the owners of '{other}' agree, or ask them to write the exception in their policy")


def _unknown_override(t: _Table, policy: str, ref: A.Ref) -> Diagnostic:
    """P202 for a name in ``overrides`` that names no rule; the hint gives the qualified id
    when the plain name is a rule of exactly one other policy."""
    if "." in ref.name:
        known = [f"{p}.{r}" for p, rules in t.rules.items() for r in rules]
        return _unknown("P202", "rule", ref, known)
    elsewhere = sorted(f"{p}.{ref.name}" for p, rules in t.rules.items() if p != policy and ref.name in rules)
    message = f"unknown rule '{ref.name}' in policy '{policy}'"
    if len(elsewhere) == 1:
        return make("P202", message, ref.span,
                    hint=f"did you mean `{elsewhere[0]}`? A plain name in `overrides` names a rule of the allow's "
                    "own policy; name a rule of another policy by its qualified id")
    if elsewhere:
        return make("P202", message, ref.span,
                    hint=f"a plain name in `overrides` names a rule of the allow's own policy; policies "
                    f"{', '.join(q.partition('.')[0] for q in elsewhere)} each have a rule '{ref.name}': "
                    "write the qualified id of the one you mean")
    return _unknown("P202", "rule", ref, t.rules.get(policy, {}), extra=f" in policy '{policy}'")


def _unknown(code: str, kind: str, ref: A.Ref, known: Iterable[str], extra: str = "") -> Diagnostic:
    guess = did_you_mean(ref.name, known)
    return make(code, f"unknown {kind} '{ref.name}'{extra}", ref.span,
                hint=f"did you mean '{guess}'?" if guess else None)


def pass_types(t: _Table) -> Iterator[Diagnostic]:
    """Regular expressions (P102), fields and literal types (P205–P208)."""
    schema = dict(BUILTIN_FIELDS)
    schema.update({k: _field_info(d) for k, d in t.fields.items()})
    declared = bool(t.fields)
    for f in t.files:
        for expr in t.exprs_of(f):
            for node in _nodes(expr):
                if type(node) not in _UNCHECKED_ATOMS:
                    yield from check_atom(node, schema, declared, t.sets)


def _field_info(d: A.FieldDecl) -> FieldInfo:
    return FieldInfo(d.path.parts, field_kind_of(d.type.kind), tuple(v.value for v in d.type.values), d.required)


_LIT_KIND: dict[type, ValueKind] = {A.Str: "text", A.Num: "number", A.Bool: "bool", A.Date: "date", A.DateTime: "date"}
_FITS: dict[FieldKind, set[ValueKind]] = {
    "text": {"text"}, "one_of": {"text"}, "number": {"number"}, "bool": {"bool"},
    "date": {"date"}, "category": set(), "list_text": set(),
}
_KIND_WORDS = {"text": "text", "one_of": "one of a list", "number": "a number", "bool": "a boolean",
               "date": "a date", "category": "a category", "list_text": "a list of text"}


def check_atom(node: Any, schema: dict[tuple[str, ...], FieldInfo], declared: bool,
                sets: dict[str, A.SetDecl]) -> Iterator[Diagnostic]:
    """The checks of one expression node: its regular expression (P102), its field and
    the types of its literals (P205–P208). Shared with the test files' assertions."""
    if isinstance(node, A.Matches):
        yield from _check_regex(node.regex)
    if isinstance(node, A.Compare):
        found = list(_check_operator(node))
        if found:
            yield from found
            return
    if not isinstance(node, _FIELD_ATOMS):
        return
    path: A.Path | None = node.path
    if path is None:
        return
    info = schema.get(path.parts)
    if info is None:
        if declared:
            yield _unknown_field(path, schema)
        return
    if isinstance(node, (A.Compare, A.In)):
        yield from _check_literals(node, path, info, sets)
    elif not isinstance(node, A.Exists) and info.kind not in ("text", "one_of", "list_text"):
        yield make("P206", f"'{path}' is {_KIND_WORDS[info.kind]}; `{_atom_word(node)}` reads text", path.span)


_FIELD_ATOMS = (A.Compare, A.In, A.Mentions, A.MentionsAny, A.Contains, A.Matches, A.Exists)
"""The atoms that read a field (``mentions`` without a path reads the listing's text)."""

_UNCHECKED_ATOMS = frozenset({A.Const, A.Category, A.CategoryIn, A.And, A.Or, A.Not})
"""The nodes ``check_atom`` finds nothing in (by exact type): no field, no regular
expression, no comparison."""


def _check_regex(regex: A.Regex) -> Iterator[Diagnostic]:
    """A ``matches`` regular expression that RE2 cannot compile (P102)."""
    from ..text import compile_regex

    try:
        compile_regex(regex.pattern, regex.ignore_case)
    except ValueError as e:
        yield make("P102", f"invalid regular expression: {e}", regex.span,
                   hint="RE2 syntax: no backreferences or lookaround, so that matching takes linear time")


def _check_operator(node: A.Compare) -> Iterator[Diagnostic]:
    """A comparison of the category path as a whole (P208), an order operator on a
    literal that is neither a number nor a date (P206)."""
    if node.path.parts == ("category",):
        yield make("P208",
                   f"`category {node.op} …` compares the category path as a whole; categories match by segments",
                   node.span, hint="write `category 'X'` (X anywhere in the path) or `category in ['X', 'Y']`")
        return
    kind = _LIT_KIND[type(node.value)]
    if node.op in ("<", "<=", ">", ">=") and kind not in ("number", "date"):
        yield make("P206", f"`{node.op}` compares numbers with numbers and dates with dates, "
                   f"not {_KIND_WORDS.get(kind, 'this value')}",
                   node.value.span, hint="compare with a number such as 10 or a date such as 2021-10-15")


def _unknown_field(path: A.Path, schema: dict[tuple[str, ...], FieldInfo]) -> Diagnostic:
    """P205: a field that a policy set declaring its fields does not declare."""
    guess = did_you_mean(str(path), [".".join(k) for k in schema])
    return make("P205", f"unknown field '{path}': the policy set declares its fields, and this is not one of them",
                path.span, hint=f"did you mean '{guess}'?" if guess else f"declare it: `field {path}: text`")


def _check_literals(node: A.Compare | A.In, path: A.Path, info: FieldInfo,
                    sets: dict[str, A.SetDecl]) -> Iterator[Diagnostic]:
    """The literals a comparison or an ``in`` holds against the field's kind (P206, P207)."""
    literals: list[A.Scalar]
    if isinstance(node, A.Compare):
        literals = [node.value]
    elif isinstance(node.items, A.Ref):
        decl = sets.get(node.items.name)
        literals = list(decl.items) if decl else []
    else:
        literals = list(node.items.items)
    if info.kind in ("list_text", "category"):
        yield make("P206",
                   f"'{path}' is {_KIND_WORDS[info.kind]}; it cannot be compared with `{getattr(node, 'op', 'in')}`",
                   path.span, hint=("use `mentions` or `contains` on a list of text" if info.kind == "list_text"
                                    else "use `category 'X'`"))
        return
    for lit in literals:
        kind = _LIT_KIND[type(lit)]
        if kind not in _FITS[info.kind]:
            yield make("P206",
                       f"'{path}' is {_KIND_WORDS[info.kind]}, but {_show(lit)} is {_KIND_WORDS.get(kind, kind)}",
                       lit.span or node.span, hint=f"compare '{path}' with {_KIND_WORDS[info.kind]}")
        elif info.kind == "one_of" and isinstance(lit, A.Str) and lit.value not in info.values:
            guess = did_you_mean(lit.value, info.values)
            values = ", ".join(repr(v) for v in info.values)
            yield make("P207", f"{_show(lit)} is not one of the values of '{path}' ({values})",
                       lit.span or node.span, hint=f"did you mean '{guess}'?" if guess else None)


def _atom_word(node: Any) -> str:
    words = {A.Mentions: "mentions", A.MentionsAny: "mentions any", A.Contains: "contains", A.Matches: "matches"}
    return words[type(node)]


def _show(lit: Any) -> str:
    if isinstance(lit, A.Str):
        return repr(lit.value)
    if isinstance(lit, (A.Date, A.DateTime)):
        return lit.value.isoformat()
    if isinstance(lit, A.Bool):
        return "true" if lit.value else "false"
    return str(getattr(lit, "value", lit))


def pass_ladders(t: _Table) -> Iterator[Diagnostic]:
    """Ladder steps in non-decreasing severity (P212)."""
    for ladder in t.ladders.values():
        infos = [step_info(s) for s in ladder.steps]
        # each step after the first (infos and steps have one entry per step), with the step before it
        for before, (after, step) in zip(infos, zip(infos[1:], ladder.steps[1:], strict=True), strict=False):
            if after.severity < before.severity:
                yield make("P212", f"in ladder '{ladder.name.name}', the step '{' and '.join(after.actions)}' is "
                           f"less severe than the step before it ('{' and '.join(before.actions)}')",
                           step.span, hint="order the steps from the mildest to the most severe")
                break


def pass_unused(t: _Table) -> Iterator[Diagnostic]:
    """Sets and ladders that nothing uses (P401, at the name): no rule, scope or test file
    assertion reads the set, no rule or test `expect` names the ladder. Not reported for
    sets while some set reference names no set (P200), nor for ladders while some ladder
    reference names no ladder (P201): that reference may be the unused name misspelt."""
    sets: set[str] = set()
    ladders: set[str] = set()
    for f in (*t.files, *t.test_files):
        for expr in (*t.exprs_of(f), *(s.expr for s in f.statements if isinstance(s, A.Assertion))):
            for ref in _set_refs(expr):
                sets.add(ref.name)
        ladders.update(_ladder_names(f))
    for name, decl in t.sets.items():
        if name not in sets and sets <= t.sets.keys():
            yield make("P401", f"the set '{name}' is not used: no rule reads it", decl.name.span,
                       hint=f"remove it, or use it in a rule (`mentions any {name}`, `category in {name}`, "
                       f"`FIELD in {name}`)")
    for name, ladder in t.ladders.items():
        if name not in ladders and ladders <= t.ladders.keys():
            yield make("P401", f"the ladder '{name}' is not used: no rule has `penalty {name}`", ladder.name.span,
                       hint=f"remove it, or give a block rule `penalty {name}`")


def pass_dates(t: _Table) -> Iterator[Diagnostic]:
    """Dates a rule names that its policy's timezone cannot read as an instant (P101):
    `until 0001-01-01` in Asia/Shanghai is before the year 1 in UTC, `9999-12-31T23:00` in
    New York after 9999. Python's calendar, and so the evaluator's, holds neither: a window
    bound stopped the load with a traceback, and a comparison never held, unsaid."""
    readable: dict[tuple[type, dt.date, ZoneInfo], bool] = {}
    for f in t.files:
        zone = t.zones.get(t.policy_of[f.path], ZoneInfo("UTC"))
        for r in t.rules_of(f):
            for w in (r.from_, r.until):
                if w is not None:
                    yield from _out_of_range(w, zone, readable)
        for expr in t.exprs_of(f):
            for node in _nodes(expr):
                for lit in _dates_of(node, t):
                    yield from _out_of_range(lit, zone, readable)


def _dates_of(node: A.Expr, t: _Table) -> Iterator[A.Date | A.DateTime]:
    """The date literals an atom compares with (a set's items, where it names one)."""
    if isinstance(node, A.Compare):
        if isinstance(node.value, (A.Date, A.DateTime)):
            yield node.value
    elif isinstance(node, A.In):
        items = node.items
        if isinstance(items, A.Ref):
            decl = t.sets.get(items.name)
            found: tuple[A.Scalar, ...] = decl.items if decl is not None else ()
        else:
            found = items.items
        yield from (i for i in found if isinstance(i, (A.Date, A.DateTime)))


def _out_of_range(lit: A.Date | A.DateTime, zone: ZoneInfo,
                  readable: dict[tuple[type, dt.date, ZoneInfo], bool]) -> Iterator[Diagnostic]:
    key = (type(lit.value), lit.value, zone)
    ok = readable.get(key)
    if ok is None:
        try:
            local_instant(lit.value, zone)
            ok = True
        except (OverflowError, ValueError):
            ok = False
        readable[key] = ok
    if not ok:
        aware = isinstance(lit.value, dt.datetime) and lit.value.tzinfo is not None
        where = "" if aware else f" in timezone {zone.key}"
        yield make("P101", f"{lit.value.isoformat()} is out of range{where}: as an instant it falls before the "
                           "year 1 or after 9999", lit.span,
                   hint="a date between 0001-01-02 and 9999-12-30 reads in every timezone")


PASSES: list[tuple[str, Callable[[_Table], Iterator[Diagnostic]]]] = [
    ("declarations", pass_declarations),
    ("rules", pass_rules),
    ("references", pass_references),
    ("types", pass_types),
    ("dates", pass_dates),
    ("ladders", pass_ladders),
    ("unused", pass_unused),
]
"""The semantic passes, in order. Each reads the AST and the table and yields findings.
``unused`` (P401) is left out when the set has a syntax error (P1xx): the statement that
did not parse may be the one that uses the name."""


# ---------------------------------------------------------------- walking


def _ladder_names(f: A.File) -> Iterator[str]:
    """The ladders a file names: rules' ``penalty LADDER`` and test cases' expected ladders."""
    for s in f.statements:
        if isinstance(s, A.Rule) and isinstance(s.penalty, A.PenaltyLadder):
            yield s.penalty.ladder.name
        elif isinstance(s, A.TestCase) and s.expect.penalty is not None and s.expect.penalty.ladder is not None:
            yield s.expect.penalty.ladder.name


def _file_exprs(f: A.File) -> Iterator[A.Expr]:
    if f.header is not None:
        for c in f.header.clauses:
            if c.kind == "scope":
                yield _scope_expr(c)
    for s in f.statements:
        if isinstance(s, A.Rule):
            if s.selector is not None:
                yield s.selector
            if s.if_ is not None:
                yield s.if_
            if s.unless is not None:
                yield s.unless


# ---------------------------------------------------------------- building the model


def build(files: list[A.File], sources: dict[str, str] | None = None, *, test_files: Iterable[A.File] = (),
          syntax_errors: bool = False) -> tuple[PolicySet | None, list[Diagnostic]]:
    """Check parsed policy files (not test files) and build the model. Returns
    ``(None, diagnostics)`` when there are errors. ``test_files`` are only read for the
    names they use (P401); ``syntax_errors`` says that reading the files found P1xx errors
    (then P401 is not reported, and no model is built: a name whose declaration did not
    parse is not reported unknown)."""
    from ..gcpause import no_gc

    files = sorted(files, key=lambda f: f.path)
    diags: list[Diagnostic] = []
    with no_gc():  # the table too: a collection while it is built would walk every AST
        table = _Table(files, list(test_files))
        for name, run in PASSES:
            if name == "unused" and (syntax_errors or any(d.code.startswith("P1") for d in diags)):
                continue
            diags.extend(run(table))
        diags = sort_diagnostics(diags)
        if has_errors(diags) or syntax_errors:  # (what did not parse may be named, unreported)
            return None, diags
        return _model(table, sources or {}), diags


def _model(t: _Table, sources: dict[str, str]) -> PolicySet:
    sets = {name: d.items for name, d in t.sets.items()}
    ladders = {name: LadderInfo(name, tuple(step_info(s) for s in d.steps), d.span) for name, d in t.ladders.items()}
    policies: list[PolicyInfo] = []
    rules: list[RuleInfo] = []
    instants: _Instants = {}
    for f in t.files:
        name = t.policy_of[f.path]
        zone = t.zones[name]
        clauses = {c.kind: c for c in (f.header.clauses if f.header else ())}
        authorities = tuple(c.value.value for c in (f.header.clauses if f.header else ())
                            if c.kind == "authority" and isinstance(c.value, A.Str))
        scope = resolve_sets(_scope_expr(clauses["scope"]), sets) if "scope" in clauses else None
        timezone = _clause_text(clauses, "timezone")
        zone_key = str(zone.key)
        policies.append(PolicyInfo(
            name, f.path, "UTC" if timezone is None else timezone, _clause_text(clauses, "title"),
            _clause_text(clauses, "version"), authorities, scope, zone))
        for r in t.rules_of(f):
            rules.append(_rule_info(r, name, zone, scope, authorities, sets, ladders, t, instants, zone_key))
    rules.sort(key=lambda r: r.qid)
    policies.sort(key=lambda p: p.name)
    schema = {}
    if t.fields:
        schema = dict(BUILTIN_FIELDS)
        schema.update({k: _field_info(d) for k, d in t.fields.items()})
    return PolicySet(
        tuple(policies), tuple(rules), sets, ladders, schema, _compared_types(rules),
        tuple(t.files), sources, {r.qid: r for r in rules},
    )


def _rule_info(r: A.Rule, policy: str, zone: ZoneInfo, scope: A.Expr | None, authorities: tuple[str, ...],
               sets: dict[str, tuple[A.Scalar, ...]], ladders: dict[str, LadderInfo], t: _Table,
               instants: _Instants, timezone: str) -> RuleInfo:
    # (written for speed: it runs once per rule of the set; most rules have a selector only)
    selector, if_, unless = r.selector, r.if_, r.unless
    if selector is not None:
        selector = resolve_sets(selector, sets)
    if if_ is not None:
        if_ = resolve_sets(if_, sets)
    if unless is not None:
        unless = resolve_sets(unless, sets)
    condition = _condition(scope, selector, if_, unless)
    penalty = None
    if r.penalty is not None:
        if isinstance(r.penalty, A.PenaltyLadder):
            penalty = ladders[r.penalty.ladder.name]
        else:
            penalty = LadderInfo(None, (step_info(r.penalty.step),), r.penalty.span)
    overrides = []
    for ref in r.overrides:
        found = t.resolve_rule(policy, ref.name)
        assert found is not None
        overrides.append(found[0])
    name = rule_id(r)
    return RuleInfo(
        qid=f"{policy}.{name}", policy=policy, name=name, effect=effect_of(r.effect),
        start=None if r.from_ is None else _instant(r.from_, zone, instants),
        end=None if r.until is None else _instant(r.until, zone, instants),
        scope=scope, selector=selector, if_=if_, unless=unless, condition=condition, penalty=penalty,
        overrides=tuple(overrides), because=r.because.value if r.because else None,
        message=r.message.value if r.message else None, authorities=authorities,
        timezone=timezone, tz=zone, anchor=r.anchor, node=r,
    )


def _condition(scope: A.Expr | None, selector: A.Expr | None, if_: A.Expr | None,
               unless: A.Expr | None) -> A.Expr:
    """A rule's condition: the conjunction of its scope, selector, ``if`` and ``not unless``,
    their conjunctions flattened (``Const(True)`` when there is nothing to test)."""
    if scope is None and if_ is None and unless is None and selector is not None and type(selector) is not A.And:
        return selector  # (most rules)
    parts: list[A.Expr] = []
    for e in (scope, selector, if_):
        if e is not None:
            parts.extend(e.items if isinstance(e, A.And) else (e,))
    if unless is not None:
        parts.append(A.Not(unless, span=unless.span))
    return A.Const(True) if not parts else parts[0] if len(parts) == 1 else A.And(tuple(parts))


_Instants = dict[tuple[type, dt.date, ZoneInfo], dt.datetime | None]
"""Window bounds already read as instants: by the literal's type and value, and the zone."""


def _instant(w: A.When | None, zone: ZoneInfo, memo: _Instants) -> dt.datetime | None:
    """``when_instant``, remembered: rules share a few hundred dates, and converting one
    into an instant is most of what building a rule's info costs."""
    if w is None:
        return None
    key = (type(w.value), w.value, zone)
    if key not in memo:
        memo[key] = when_instant(w, zone)
    return memo[key]


def _scope_expr(clause: A.Clause) -> A.Expr:
    assert not isinstance(clause.value, A.Str), "the grammar gives `scope` an expression"
    return clause.value


def _clause_text(clauses: dict[str, A.Clause], kind: str) -> str | None:
    """The text of the header clause ``kind`` (title, version, timezone); None without one."""
    clause = clauses.get(kind)
    if clause is None:
        return None
    assert isinstance(clause.value, A.Str), f"the grammar gives `{kind}` a string"
    return clause.value.value


def resolve_sets(expr: A.Expr, sets: dict[str, tuple[A.Scalar, ...]]) -> A.Expr:
    """The expression with every set reference replaced by the set's literal list (the
    expression itself when it names no set: the AST is immutable)."""
    if type(expr) in _SETLESS_ATOMS:
        return expr
    if isinstance(expr, (A.And, A.Or)):
        items = tuple(resolve_sets(e, sets) for e in expr.items)
        if all(new is old for new, old in zip(items, expr.items, strict=True)):
            return expr
        return attrs.evolve(expr, items=items)
    if isinstance(expr, A.Not):
        operand = resolve_sets(expr.operand, sets)
        return expr if operand is expr.operand else attrs.evolve(expr, operand=operand)
    if isinstance(expr, (A.CategoryIn, A.MentionsAny, A.In)) and isinstance(expr.items, A.Ref):
        return attrs.evolve(expr, items=A.ListLit(sets[expr.items.name], span=expr.items.span))
    return expr


def _compared_types(rules: list[RuleInfo]) -> dict[tuple[str, ...], frozenset[ValueKind]]:
    """For each field path some atom reads, the kinds of value the set reads it as:
    text, number, date, bool (from == != < … and in), textlike (str or list of str, from
    mentions, contains, matches) and category."""
    found: dict[tuple[str, ...], set[ValueKind]] = defaultdict(set)
    category = False  # whether ("category",) is in ``found`` (most conditions are one category atom)
    for r in rules:
        kind = type(r.condition)
        if category and (kind is A.Category or kind is A.CategoryIn):
            continue
        for node in _nodes(r.condition):
            kind = type(node)
            if kind is A.Category or kind is A.CategoryIn:
                found[("category",)].add("category")
                category = True
            elif isinstance(node, (A.Mentions, A.MentionsAny)) and node.path is None:
                for p in (("title",), ("description",), ("tags",)):
                    found[p].add("textlike")
            elif isinstance(node, (A.Mentions, A.MentionsAny, A.Contains, A.Matches)):
                assert node.path is not None
                found[node.path.parts].add("textlike")
            elif isinstance(node, A.Compare):
                found[node.path.parts].add(_LIT_KIND[type(node.value)])
            elif isinstance(node, A.In):
                assert isinstance(node.items, A.ListLit)
                found[node.path.parts].update(_LIT_KIND[type(i)] for i in node.items.items)
    return {k: frozenset(v) for k, v in found.items()}


def _timezone_hint(name: str) -> str:
    from ..syntax.hints import timezone_hint  # (with Lark: only a set with an unknown timezone needs it)

    return timezone_hint(name)
