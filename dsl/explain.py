"""Explanations: why a listing got its decision, in the policy author's words.

The reference evaluator records a ``Trace``: for every rule, whether its selector matched,
whether it applied, the conditions that held (for a rule that applied) or the first one
that failed (for one that did not), and the overrides; plus every penalty proposal.
``render`` turns a decision and its trace into text for people:

    block at 2021-10-19T16:00:00Z (prior violations: 1)

    Applied:
      miners (block)
        - in force from 2021-10-08 00:00 Asia/Shanghai
        - scope: platform in ['taobao', 'xianyu'] (platform is 'taobao')
        - category 'Blockchain Miners' (category is 'Electronics > Blockchain Miners')
    Did not apply:
      miners-late: not yet in force; it applies from 2021-10-15 00:00 Asia/Shanghai
    …

Conditions are printed with ``dsl.format.format_expr``, as the formatter writes them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import attrs

from . import ast as A
from . import runtime as R
from .format import format_literal

if TYPE_CHECKING:
    from .decision import Decision
    from .model import PolicySet, RuleInfo

__all__ = ["Proposal", "RuleTrace", "Trace", "render", "expr_text"]


@attrs.frozen
class Proposal:
    """A penalty proposal: a remaining block rule's step ``step`` of ``of``."""

    rule: str
    ladder: str | None
    step: int
    of: int
    actions: tuple[str, ...]
    severity: tuple[tuple[int, int], ...]


@attrs.frozen
class RuleTrace:
    """How one rule fared. ``held``: for a rule that applied, the conditions that held;
    ``failed``: for one that did not, the first condition that failed (window, scope,
    selector, ``if``, ``unless``, in that order). ``selected``: the rule concerns the
    listing, so an explanation details it: its selector holds (or is absent), or the
    selector is ``A and B …`` and its first condition ``A`` holds (so that ``block
    category 'Drones' and not seller.country == 'CN'`` is explained for every drone)."""

    qid: str
    name: str
    effect: str
    selected: bool
    applied: bool
    held: tuple[str, ...] = ()
    failed: str | None = None
    overridden_by: tuple[str, ...] = ()

    def overridden(self, by: tuple[str, ...]) -> RuleTrace:
        return attrs.evolve(self, overridden_by=by)


@attrs.frozen
class Trace:
    rules: tuple[RuleTrace, ...]
    proposals: tuple[Proposal, ...]
    prior: int
    single_policy: bool


# --------------------------------------------------------------------------- conditions in words


def expr_text(expr: A.Expr) -> str:
    """A condition as the author would write it."""
    from .format import format_expr

    return str(format_expr(expr))


def _paths_read(e: A.Expr) -> list[tuple[str, ...]]:
    """The field paths a condition reads, in order, each once (loops, no recursion)."""
    found: dict[tuple[str, ...], None] = {}
    stack: list[Any] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, (A.And, A.Or)):
            stack.extend(reversed(node.items))
        elif isinstance(node, A.Not):
            stack.append(node.operand)
        elif isinstance(node, (A.Category, A.CategoryIn)):
            found[("category",)] = None
        elif getattr(node, "path", None) is not None:
            found[node.path.parts] = None
    return list(found)


def _value_words(value: Any) -> str:
    if value is None:
        return "is absent"
    if isinstance(value, str):
        return "is " + R.show_text(value)
    if isinstance(value, bool):
        return "is true" if value else "is false"
    if R.is_number(value):
        text = R.describe(value).removeprefix("the number ")
        return f"is {text}" if len(text) <= 40 else "is " + R.describe(value)
    if isinstance(value, list) and len(value) <= 5 and all(isinstance(v, str) and len(v) <= 40 for v in value):
        return "is [" + ", ".join(repr(v) for v in value) + "]"
    return "is " + R.describe(value)


def _values_note(e: A.Expr, listing: Mapping[str, Any]) -> str:
    paths = _paths_read(e)
    if not paths:
        return ""
    shown = [f"{R.dotted(p)} {_value_words(R.read_path(listing, p))}" for p in paths[:3]]
    return " (" + "; ".join(shown) + ")"


def _found_phrases(resolved: A.Expr, listing: Mapping[str, Any]) -> list[str]:
    """For a ``mentions`` atom: the phrases that the listing's text mentions."""
    from .text import mentions, normalize_phrase

    if isinstance(resolved, A.Mentions):
        phrases = [resolved.phrase.value]
    elif isinstance(resolved, A.MentionsAny) and isinstance(resolved.items, A.ListLit):
        phrases = [i.value for i in resolved.items.items if isinstance(i, A.Str)]
    else:
        return []
    if resolved.path is None:
        pieces = R.listing_pieces(listing)
    else:
        pieces = R.text_pieces(R.read_path(listing, resolved.path.parts))
    return [p for p in phrases if mentions(pieces, normalize_phrase(p))]


def _note(authored: A.Expr, resolved: A.Expr, listing: Mapping[str, Any]) -> str:
    """The values behind a condition: the phrases found for ``mentions``, else the fields
    it reads."""
    if isinstance(authored, (A.Mentions, A.MentionsAny)):
        found = _found_phrases(resolved, listing)
        where = "the title, description or tags" if authored.path is None else R.dotted(authored.path.parts)
        return (f" (found {', '.join(format_literal(A.Str(p)) for p in found[:5])} in {where})" if found
                else f" (not found in {where})")
    return _values_note(authored, listing)


def _held_words(authored: A.Expr, resolved: A.Expr, listing: Mapping[str, Any],
                evaluate: Callable[[A.Expr], bool] | None) -> str:
    """A condition that held, in words; for ``A or B …``, which alternatives held."""
    text = expr_text(authored)
    if (evaluate is not None and isinstance(authored, A.Or) and isinstance(resolved, A.Or)
            and len(authored.items) == len(resolved.items)):
        held = [expr_text(w) + _note(w, r, listing) for w, r in zip(authored.items, resolved.items) if evaluate(r)]
        if held:
            return f"{text}, by: " + "; ".join(held)
    return text + _note(authored, resolved, listing)


def part_words(label: str, authored: A.Expr, listing: Mapping[str, Any], ok: bool,
               resolved: A.Expr | None = None, evaluate: Callable[[A.Expr], bool] | None = None) -> str:
    """One condition of a rule in words: ``label`` is scope, selector, if or unless; ``ok``
    says whether it went the rule's way (for ``unless``: whether its condition did NOT
    hold). ``resolved`` is the same condition with set names replaced by their lists;
    ``evaluate`` tells whether a resolved condition holds (to say which alternatives of
    an ``or`` held)."""
    resolved = resolved if resolved is not None else authored
    text = expr_text(authored)
    if label == "unless":
        if ok:
            return f"unless {text}: it does not hold{_note(authored, resolved, listing)}"
        return f"the exception holds: unless {_held_words(authored, resolved, listing, evaluate)}"
    if ok:
        return ("scope: " if label == "scope" else "") + _held_words(authored, resolved, listing, evaluate)
    note = _note(authored, resolved, listing)
    if label == "scope":
        return f"outside the policy's scope: {text} does not hold{note}"
    return f"{text} does not hold{note}"


def _local(instant: dt.datetime, tz: Any) -> str:
    local = instant.astimezone(tz)
    text = f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
    if local.second or local.microsecond:
        text += f":{local.second:02d}"
    return f"{text} {tz.key}"


def window_words(rule: RuleInfo, instant: dt.datetime) -> str | None:
    """The rule's window in words, as a failure when ``instant`` is outside it; None for
    a rule without a window."""
    start, end = rule.start, rule.end
    if start is None and end is None:
        return None
    if start is not None and instant < start:
        return f"not yet in force; it applies from {_local(start, rule.tz)}"
    if end is not None and instant >= end:
        return f"no longer in force; it applied until {_local(end, rule.tz)}"
    parts = []
    if start is not None:
        parts.append(f"from {_local(start, rule.tz)}")
    if end is not None:
        parts.append(f"until {_local(end, rule.tz)}")
    return "in force " + " ".join(parts)


def authored_parts(ps: PolicySet, rule: RuleInfo) -> dict[str, A.Expr | None]:
    """The rule's scope, selector, ``if`` and ``unless`` as written (set names kept), for
    printing; the resolved ones where the written form is not at hand."""
    out: dict[str, A.Expr | None] = {"scope": rule.scope, "selector": rule.selector,
                                     "if": rule.if_, "unless": rule.unless}
    node = rule.node
    if node is not None:
        out.update(selector=node.selector, **{"if": node.if_}, unless=node.unless)
    policy = next((p for p in ps.policies if p.name == rule.policy), None)
    if policy is not None:
        for f in ps.files:
            if f.path == policy.file and f.header is not None:
                for clause in f.header.clauses:
                    if clause.kind == "scope" and not isinstance(clause.value, A.Str):
                        out["scope"] = clause.value
    return out


# --------------------------------------------------------------------------- rendering


def render(decision: Decision, trace: Trace | None) -> str:
    """The explanation of a decision as text."""
    return "\n".join(_lines(decision, trace)) + "\n"


def _lines(decision: Decision, trace: Trace | None) -> Iterator[str]:
    from .decision import format_instant

    prior = f" (prior violations: {trace.prior})" if trace is not None and trace.prior else ""
    verdict = {"block": "blocked", "flag": "flagged for review", "allow": "allowed"}[decision.effect]
    if decision.rules:
        n = len(decision.rules)
        reason = f"{n} rule{'s' if n != 1 else ''} applied"
    else:
        reason = "no rule applied" if not decision.overridden else "every rule that applied was overridden"
    yield f"{decision.effect}: the listing is {verdict} at {format_instant(decision.at)}{prior}; {reason}."
    if trace is None:
        yield f"Rules: {', '.join(decision.rules) or 'none'}"
        return

    def name(qid: str) -> str:
        return qid.split(".", 1)[1] if trace.single_policy and "." in qid else qid

    applied = [r for r in trace.rules if r.applied and not r.overridden_by]
    overridden = [r for r in trace.rules if r.overridden_by]
    missed = [r for r in trace.rules if r.selected and not r.applied]
    unselected = [r for r in trace.rules if not r.selected and not r.applied]
    if applied:
        yield ""
        yield "Applied:"
        for r in sorted(applied, key=lambda r: r.qid):
            yield f"  {name(r.qid)} ({r.effect})"
            for words in r.held:
                yield f"    - {words}"
            if not r.held:
                yield "    - applies to every listing"
    if overridden:
        yield ""
        yield "Overridden:"
        for r in overridden:
            by = ", ".join(name(q) for q in r.overridden_by)
            yield f"  {name(r.qid)} ({r.effect}) applied, but is lifted by the exception {by}"
    if missed:
        yield ""
        yield "Did not apply:"
        for r in missed:
            yield f"  {name(r.qid)} ({r.effect}): {r.failed or 'its conditions do not hold'}"
    if decision.penalty is not None:
        p = decision.penalty
        chosen = next((q for q in trace.proposals if q.rule == p.rule), None)
        ladder = f"step {p.step} of {chosen.of} of ladder {p.ladder}" if p.ladder and chosen else (
            f"step {p.step} of ladder {p.ladder}" if p.ladder else "its penalty")
        yield ""
        yield f"Penalty: {', '.join(p.actions)} ({ladder} of {name(p.rule)}; prior violations: {trace.prior})"
        for q in trace.proposals:
            if q.rule == p.rule:
                continue
            why = ("less severe" if chosen is None or q.severity < chosen.severity
                   else f"as severe; {name(p.rule)} comes first by rule id")
            where = f"step {q.step} of ladder {q.ladder}" if q.ladder else "its penalty"
            yield f"  also proposed: {', '.join(q.actions)} ({where} of {name(q.rule)}): {why}"
    if unselected:
        n = len(unselected)
        yield ""
        yield (f"{n} other rule{'s' if n != 1 else ''} did not match this listing "
               f"(selector does not hold): {_few(name(r.qid) for r in unselected)}")
    if decision.warnings:
        yield ""
        yield "Input warnings:"
        for w in decision.warnings:
            yield f"  - {w}"
    if decision.messages:
        yield ""
        yield "Messages:"
        for m in decision.messages:
            yield f"  - {m}"


def _few(names: Iterator[str], limit: int = 8) -> str:
    items = list(names)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … ({len(items) - limit} more)"
