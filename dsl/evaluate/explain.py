"""Explanations: why a listing got its decision, in the policy author's words.

Asked of the policy set (``Policies.explain(listing, at=…)``, or ``explain_decision`` for
a decision already made), not of the decision, which is plain data. ``build_trace`` walks
the rules beside the reference evaluator (its ``holds`` and ``in_force``) and records a
``Trace``: for every rule, whether it applied, the conditions that held (for a rule that
applied) or the first one that failed (for one that did not), and the overrides; plus
every penalty proposal (``dsl.evaluate.semantics.combine``). ``render`` turns a decision and its
trace into text for people:

    block: the listing is blocked at 2021-10-12T00:00:00 (local time in each policy's
    timezone); 1 rule applied.

    Applied:
      miners (block)
        - in force from 2021-10-08 00:00 Asia/Shanghai (at is 2021-10-12 00:00 there)
        - scope: platform in ['taobao', 'xianyu'] (platform is 'taobao')
        - category 'Blockchain Miners' (category is 'Electronics > Blockchain Miners')
    Did not apply (rules that share a category or a text match with the listing):
      miners-late (block): not yet in force; it applies from 2021-10-15 00:00
      Asia/Shanghai (at is 2021-10-12 00:00 there)
    …

Only the rules that applied or were overridden, and those that did not apply but share a
category or a text match with the listing, are detailed; the others are named. Asked
about one rule (``why_not``), it gives every condition of that rule, held or not.

Conditions are printed with ``dsl.syntax.format.format_expr``, as the formatter writes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from ..diagnostics import did_you_mean
from ..model import Effect, PolicySet, RuleInfo
from ..syntax import ast as A
from ..syntax.format import format_expr, format_literal
from ..text import PhraseMatcher, mentions, normalize_phrase
from . import semantics as S
from . import values as V
from .outcome import Decision, InputError, Proposal, format_instant
from .reference import Mentioned, decide_reference, holds, in_force

__all__ = ["Proposal", "RuleTrace", "Trace", "render", "expr_text", "resolve_rule", "explain",
           "explain_decision", "build_trace", "phrase_lookup", "collect_phrases", "shares_topic",
           "rule_trace", "Mentioned", "in_force_words"]

Source = S.Source


@attrs.frozen
class RuleTrace:
    """How one rule fared: ``parts`` holds every condition in words with whether it went
    the rule's way (window, scope, selector, ``if`` conjunct by conjunct, ``unless``, in
    that order); ``held`` are those that did (for a rule that applied), ``failed`` the
    first that did not (for one that did not)."""

    qid: str
    name: str
    effect: Effect
    applied: bool
    parts: tuple[tuple[bool, str], ...] = ()
    overridden_by: tuple[str, ...] = ()

    @property
    def held(self) -> tuple[str, ...]:
        return tuple(words for ok, words in self.parts if ok)

    @property
    def failed(self) -> str | None:
        return next((words for ok, words in self.parts if not ok), None)

    def overridden(self, by: tuple[str, ...]) -> RuleTrace:
        return attrs.evolve(self, overridden_by=by)


@attrs.frozen
class Trace:
    """What an explanation says: ``rules`` in detail (those that applied or were
    overridden, and those that did not apply but share a category or a text match with
    the listing), ``others`` by id (every other rule), the penalty proposals, and
    ``why_not``, the rule asked about, in detail."""

    rules: tuple[RuleTrace, ...]
    proposals: tuple[Proposal, ...]
    prior: int
    single_policy: bool
    others: tuple[str, ...] = ()
    why_not: RuleTrace | None = None


def resolve_rule(ps: PolicySet, name: str) -> str:
    """The qualified id of the rule that ``why_not`` names: a qualified id, or a rule's
    own name when one policy of the set has a rule of that name. Anything else is an
    InputError (field ``why_not``) that says what to write instead."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"why_not: expected a rule id, got {V.describe(name)}", field="why_not")
    name = name.strip()
    if any(r.qid == name for r in ps.rules):
        return name
    local = [r.qid for r in ps.rules if r.name == name]
    if len(local) == 1:
        return local[0]
    if local:
        raise InputError(f"why_not: {V.show_text(name)} names a rule in several policies ({', '.join(local)}); "
                         "give the qualified id", field="why_not")
    guess = did_you_mean(name, [r.qid for r in ps.rules] + [r.name for r in ps.rules])
    hint = f"; did you mean {guess!r}?" if guess else " (`policy check` lists the rules' ids)"
    raise InputError(f"why_not: no rule {V.show_text(name)} in the policy set{hint}", field="why_not")


# --------------------------------------------------------------------------- conditions in words


def expr_text(expr: A.Expr) -> str:
    """A condition as the author would write it."""
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
        return "is " + V.show_text(value)
    if isinstance(value, bool):
        return "is true" if value else "is false"
    if V.is_number(value):
        text = V.describe(value).removeprefix("the number ")
        return f"is {text}" if len(text) <= 40 else "is " + V.describe(value)
    if isinstance(value, list) and len(value) <= 5 and all(isinstance(v, str) and len(v) <= 40 for v in value):
        return "is [" + ", ".join(repr(v) for v in value) + "]"
    return "is " + V.describe(value)


def _values_note(e: A.Expr, listing: Mapping[str, Any]) -> str:
    paths = _paths_read(e)
    if not paths:
        return ""
    shown = [f"{V.dotted(p)} {_value_words(V.read_path(listing, p))}" for p in paths[:3]]
    return " (" + "; ".join(shown) + ")"


def _found_phrases(resolved: A.Expr, listing: Mapping[str, Any], mentioned: Mentioned | None) -> list[str]:
    """For a ``mentions`` atom: the phrases that the listing's text mentions (through
    ``mentioned``, the decision's one-pass matcher, when given)."""
    if isinstance(resolved, A.Mentions):
        phrases = [resolved.phrase.value]
    elif isinstance(resolved, A.MentionsAny) and isinstance(resolved.items, A.ListLit):
        phrases = [i.value for i in resolved.items.items if isinstance(i, A.Str)]
    else:
        return []
    source = resolved.path.parts if resolved.path is not None else None
    if mentioned is not None:
        return [p for p in phrases if mentioned(source, normalize_phrase(p))]
    pieces = S.source_pieces(listing, source)
    return [p for p in phrases if mentions(pieces, normalize_phrase(p))]


def _note(authored: A.Expr, resolved: A.Expr, listing: Mapping[str, Any], mentioned: Mentioned | None) -> str:
    """The values behind a condition: the phrases found for ``mentions``, else the fields
    it reads."""
    if isinstance(authored, (A.Mentions, A.MentionsAny)):
        found = _found_phrases(resolved, listing, mentioned)
        where = "the title, description or tags" if authored.path is None else V.dotted(authored.path.parts)
        return (f" (found {', '.join(format_literal(A.Str(p)) for p in found[:5])} in {where})" if found
                else f" (not found in {where})")
    return _values_note(authored, listing)


def _held_words(authored: A.Expr, resolved: A.Expr, listing: Mapping[str, Any],
                evaluate: Callable[[A.Expr], bool] | None, mentioned: Mentioned | None) -> str:
    """A condition that held, in words; for ``A or B …``, which alternatives held."""
    text = expr_text(authored)
    if (evaluate is not None and isinstance(authored, A.Or) and isinstance(resolved, A.Or)
            and len(authored.items) == len(resolved.items)):
        held = [expr_text(w) + _note(w, r, listing, mentioned)
                for w, r in zip(authored.items, resolved.items, strict=True) if evaluate(r)]
        if held:
            return f"{text}, by: " + "; ".join(held)
    return text + _note(authored, resolved, listing, mentioned)


def part_words(label: str, authored: A.Expr, listing: Mapping[str, Any], ok: bool,
               resolved: A.Expr | None = None, evaluate: Callable[[A.Expr], bool] | None = None,
               mentioned: Mentioned | None = None) -> str:
    """One condition of a rule in words: ``label`` is scope, selector, if or unless; ``ok``
    says whether it went the rule's way (for ``unless``: whether its condition did NOT
    hold). ``resolved`` is the same condition with set names replaced by their lists;
    ``evaluate`` tells whether a resolved condition holds (to say which alternatives of
    an ``or`` held); ``mentioned`` answers ``mentions`` for the phrases found."""
    resolved = resolved if resolved is not None else authored
    text = expr_text(authored)
    if label == "unless":
        if ok:
            return f"unless {text}: it does not hold{_note(authored, resolved, listing, mentioned)}"
        return f"the exception holds: unless {_held_words(authored, resolved, listing, evaluate, mentioned)}"
    if ok:
        return ("scope: " if label == "scope" else "") + _held_words(authored, resolved, listing, evaluate, mentioned)
    note = _note(authored, resolved, listing, mentioned)
    if label == "scope":
        return f"outside the policy's scope: {text} does not hold{note}"
    return f"{text} does not hold{note}"


def _clock(t: dt.datetime) -> str:
    """A date and time of day as the explanation writes it: seconds and microseconds only
    when they are not zero."""
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}"
    if t.second or t.microsecond:
        text += f":{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}"
    return text


def _clock_in(instant: dt.datetime, tz: Any) -> str | None:
    """``instant``'s local time in ``tz`` (``_clock``), or None when that local time falls
    outside the calendar (years 1 to 9999: an ``at`` of 9999-12-31T23:59:59Z east of UTC,
    of 0001-01-01T00:00:00Z west of it), which ``decide`` accepts."""
    try:
        return _clock(instant.astimezone(tz))
    except (OverflowError, ValueError):
        return None


def _beyond(instant: dt.datetime, tz: Any) -> str:
    """An instant whose local time in ``tz`` is outside the calendar, in UTC, saying so."""
    side = "after the year 9999" if instant.year > 5000 else "before the year 1"
    return f"{_clock(instant.astimezone(dt.UTC))} UTC, {side} in {tz.key}"


def _local(instant: dt.datetime, tz: Any) -> str:
    clock = _clock_in(instant, tz)
    return f"{clock} {tz.key}" if clock is not None else _beyond(instant, tz)


def window_words(rule: RuleInfo, instant: dt.datetime) -> str | None:
    """The rule's window in words, with ``at`` as the local time in the rule's timezone
    (so that a window and the decision's ``at`` read in the same clock; in UTC, saying
    so, when that local time is outside the calendar); a failure when ``instant`` is
    outside the window. None for a rule without a window."""
    start, end = rule.start, rule.end
    if start is None and end is None:
        return None
    now = _clock_in(instant, rule.tz)
    there = f" (at is {now} there)" if now is not None else f" (at is {_beyond(instant, rule.tz)})"
    side = S.window_side(start, end, instant)
    if side == S.BEFORE and start is not None:
        return f"not yet in force; it applies from {_local(start, rule.tz)}{there}"
    if side == S.AFTER and end is not None:
        return f"no longer in force; it applied until {_local(end, rule.tz)}{there}"
    parts = []
    if start is not None:
        parts.append(f"from {_local(start, rule.tz)}")
    if end is not None:
        parts.append(f"until {_local(end, rule.tz)}")
    return "in force " + " ".join(parts) + there


def in_force_words(rule: RuleInfo) -> str | None:
    """The rule's window in words, as ``window_words`` says it without an ``at``: "in
    force from 2021-10-08 00:00 Asia/Shanghai"; None for a rule without a window."""
    parts = [f"{word} {_local(bound, rule.tz)}" for word, bound in (("from", rule.start), ("until", rule.end))
             if bound is not None]
    return "in force " + " ".join(parts) if parts else None


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


# --------------------------------------------------------------------------- traces


def phrase_lookup(matchers: Mapping[Source, PhraseMatcher], listing: Mapping[str, Any]) -> Mentioned:
    """``mentions`` for one listing through one matcher per text source: the first question
    about a source runs its matcher once over the listing's text (one pass, whatever the
    number of phrases); later questions are set lookups. A phrase the matcher was not
    built with is searched for on its own."""
    found: dict[Source, set[str]] = {}

    def mentioned(source: Source, norm_phrase: str) -> bool:
        matcher = matchers.get(source)
        if matcher is None or norm_phrase not in matcher.phrases:
            return mentions(S.source_pieces(listing, source), norm_phrase)
        hits = found.get(source)
        if hits is None:
            hits = found[source] = matcher.find_in_pieces(S.source_pieces(listing, source))
        return norm_phrase in hits
    return mentioned


def collect_phrases(ps: PolicySet) -> dict[Source, frozenset[str]]:
    """The normalised ``mentions`` phrases of every rule, by text source."""
    out: dict[Source, set[str]] = {}
    for rule in ps.rules:
        for node in A.walk(rule.condition):
            if isinstance(node, (A.Mentions, A.MentionsAny)):
                source = node.path.parts if node.path is not None else None
                out.setdefault(source, set()).update(S.mention_phrases(S.atom_texts(node)))
    return {source: frozenset(phrases) for source, phrases in out.items()}


_TOPICAL = (A.Category, A.CategoryIn, A.Mentions, A.MentionsAny, A.Contains, A.Matches)


def shares_topic(rule: RuleInfo, listing: Mapping[str, Any], mentioned: Mentioned | None = None) -> bool:
    """Whether a rule concerns the listing, for an explanation: some category or text
    condition (``category``, ``mentions``, ``contains``, ``matches``) of its selector or
    ``if`` holds for the listing, whatever the rest of the rule says. The policy's scope
    does not count: it is shared by every rule of the policy (a policy scoped to
    Electronics would otherwise detail all its rules on every electronics listing)."""
    for part in (rule.selector, rule.if_):
        if part is None:
            continue
        for node in A.walk(part):
            if isinstance(node, _TOPICAL) and holds(node, listing, rule.tz, mentioned):
                return True
    return False


def rule_trace(ps: PolicySet, rule: RuleInfo, listing: Mapping[str, Any], at: V.ParsedAt, applied: bool,
               mentioned: Mentioned | None = None) -> RuleTrace:
    """How one rule fared, every condition in words with whether it went the rule's way:
    the window, then scope, selector, ``if`` (conjunct by conjunct) and ``unless``."""
    tz = rule.tz
    parts: list[tuple[bool, str]] = []
    window_text = window_words(rule, at.in_tz(tz))
    if window_text is not None:
        parts.append((in_force(rule, at), window_text))
    authored = authored_parts(ps, rule)

    def evaluate(e: A.Expr) -> bool:
        return holds(e, listing, tz, mentioned)
    for label, expr, want in (("scope", rule.scope, True), ("selector", rule.selector, True),
                              ("if", rule.if_, True), ("unless", rule.unless, False)):
        if expr is None:
            continue
        written = authored[label] or expr
        conjuncts: tuple[A.Expr, ...] = (expr,)
        shown: tuple[A.Expr, ...] = (written,)
        if want and isinstance(expr, A.And) and isinstance(written, A.And) and len(expr.items) == len(written.items):
            conjuncts, shown = expr.items, written.items
        for conjunct, words_of in zip(conjuncts, shown, strict=True):  # equal lengths: checked above
            ok = evaluate(conjunct) == want
            parts.append((ok, part_words(label, words_of, listing, ok, conjunct, evaluate, mentioned)))
    return RuleTrace(rule.qid, rule.name, rule.effect, applied, tuple(parts))


def build_trace(ps: PolicySet, decision: Decision, listing: Mapping[str, Any], at: V.ParsedAt, prior: int,
                mentioned: Mentioned | None = None, why_not: str | None = None) -> Trace:
    """The trace of a decision (of either evaluator) for ``explain``: every rule that
    applied or was overridden, and every other rule that shares a category or a text
    match with the listing (``shares_topic``), in detail; the rest by id only. With
    ``why_not`` (a qualified id), that rule in detail too, as ``Trace.why_not``."""
    by_qid = {rule.qid: rule for rule in ps.rules}
    applied = set(decision.rules) | set(decision.overridden)
    outcome = S.combine([S.consequence(by_qid[q]) for q in sorted(applied) if q in by_qid], prior)
    detailed: list[RuleTrace] = []
    others: list[str] = []
    for rule in ps.rules:
        if rule.qid in applied or shares_topic(rule, listing, mentioned):
            trace = rule_trace(ps, rule, listing, at, rule.qid in applied, mentioned)
            if rule.qid in outcome.overridden_by:
                trace = trace.overridden(outcome.overridden_by[rule.qid])
            detailed.append(trace)
        else:
            others.append(rule.qid)
    asked = None
    if why_not is not None:
        asked = next((t for t in detailed if t.qid == why_not), None)
        if asked is None:
            asked = rule_trace(ps, by_qid[why_not], listing, at, why_not in applied, mentioned)
    return Trace(tuple(detailed), outcome.proposals, prior, len(ps.policies) == 1, tuple(others), asked)


def explain_decision(ps: PolicySet, decision: Decision, listing: Mapping[str, Any], prior_violations: Any = 0,
                     why_not: str | None = None,
                     matchers: Mapping[Source, PhraseMatcher] | None = None) -> str:
    """The explanation of ``decision``, made on ``listing`` with ``prior_violations`` (its
    ``at`` is the decision's own: deciding again at it gives the same decision).
    ``why_not`` names a rule (see ``resolve_rule``) whose every condition is then given;
    ``matchers`` are the phrase matchers of the evaluator that decided (one pass over the
    text per source), else they are built from the set's phrases."""
    qid = resolve_rule(ps, why_not) if why_not is not None else None
    if matchers is None:
        matchers = {source: PhraseMatcher(phrases) for source, phrases in collect_phrases(ps).items()}
    trace = build_trace(ps, decision, listing, V.parse_at(decision.at), V.check_prior(prior_violations),
                        phrase_lookup(matchers, listing), qid)
    return render(decision, trace)


def explain(ps: PolicySet, listing: Any, at: Any = None, prior_violations: Any = 0, why_not: str | None = None,
            decide: Callable[..., Decision] | None = None) -> str:
    """Why ``listing`` gets its decision at ``at``, as text: the decision by ``decide``
    (``decide(listing, at, prior_violations)``; the reference evaluator by default), then
    ``explain_decision``. Raises InputError for input that cannot be decided on and for a
    ``why_not`` that names no rule, or rules of several policies."""
    if decide is None:
        def decide(listing: Any, at: Any, prior: Any) -> Decision:
            return decide_reference(ps, listing, at, prior)
    decision = decide(listing, at, prior_violations)
    return explain_decision(ps, decision, listing, prior_violations, why_not)


# --------------------------------------------------------------------------- rendering


def render(decision: Decision, trace: Trace | None) -> str:
    """The explanation of a decision as text."""
    return "\n".join(_lines(decision, trace)) + "\n"


def at_words(at: dt.datetime) -> str:
    """A decision's ``at`` as reported, with what it means."""
    if at.tzinfo is None:
        return f"{format_instant(at)} (local time in each policy's timezone)"
    return format_instant(at)


_VERDICT: Mapping[Effect, str] = {"block": "blocked", "flag": "flagged for review", "allow": "allowed"}


def _lines(decision: Decision, trace: Trace | None) -> Iterator[str]:
    """The headline, then (with a trace) each section that has something to say: the
    rules that applied, were overridden or did not apply, the penalty, the other rules,
    the rule asked about, input warnings and messages."""
    yield _headline(decision, trace)
    if trace is None:
        yield f"Rules: {', '.join(decision.rules) or 'none'}"
        return

    def name(qid: str) -> str:
        return qid.split(".", 1)[1] if trace.single_policy and "." in qid else qid

    sections = (
        _applied_lines(trace, name), _overridden_lines(trace, name), _missed_lines(trace, name),
        _penalty_lines(decision, trace, name), _others_lines(trace, name),
        _why_not_lines(trace.why_not, name) if trace.why_not is not None else (),
        _listed("Input warnings:", decision.warnings), _listed("Messages:", decision.messages),
    )
    for lines in sections:
        yield from _section(lines)


def _headline(decision: Decision, trace: Trace | None) -> str:
    prior = f" (prior violations: {trace.prior})" if trace is not None and trace.prior else ""
    if decision.rules:
        n = len(decision.rules)
        reason = f"{n} rule{'s' if n != 1 else ''} applied"
    else:
        reason = "no rule applied" if not decision.overridden else "every rule that applied was overridden"
    verdict = _VERDICT[decision.effect]
    return f"{decision.effect}: the listing is {verdict} at {at_words(decision.at)}{prior}; {reason}."


def _section(lines: Iterable[str]) -> Iterator[str]:
    """A section's lines after a blank line; nothing for a section with no lines."""
    first = True
    for line in lines:
        if first:
            yield ""
            first = False
        yield line


def _listed(title: str, items: tuple[str, ...]) -> Iterator[str]:
    if items:
        yield title
        for item in items:
            yield f"  - {item}"


Namer = Callable[[str], str]
"""A rule's id as the explanation writes it (without the policy when there is one)."""


def _applied_lines(trace: Trace, name: Namer) -> Iterator[str]:
    applied = [r for r in trace.rules if r.applied and not r.overridden_by]
    if not applied:
        return
    yield "Applied:"
    for r in sorted(applied, key=lambda r: r.qid):
        yield f"  {name(r.qid)} ({r.effect})"
        for words in r.held:
            yield f"    - {words}"
        if not r.held:
            yield "    - applies to every listing"


def _overridden_lines(trace: Trace, name: Namer) -> Iterator[str]:
    overridden = [r for r in trace.rules if r.overridden_by]
    if overridden:
        yield "Overridden:"
    for r in overridden:
        by = ", ".join(name(q) for q in r.overridden_by)
        yield f"  {name(r.qid)} ({r.effect}) applied, but is lifted by the exception {by}"


def _missed_lines(trace: Trace, name: Namer) -> Iterator[str]:
    missed = [r for r in trace.rules if not r.applied]
    if missed:
        yield "Did not apply (rules that share a category or a text match with the listing):"
    for r in missed:
        yield f"  {name(r.qid)} ({r.effect}): {r.failed or 'its conditions do not hold'}"


def _penalty_lines(decision: Decision, trace: Trace, name: Namer) -> Iterator[str]:
    """The penalty chosen, then every other proposal and why it lost."""
    p = decision.penalty
    if p is None:
        return
    chosen = next((q for q in trace.proposals if q.rule == p.rule), None)
    ladder = f"step {p.step} of {chosen.of} of ladder {p.ladder}" if p.ladder and chosen else (
        f"step {p.step} of ladder {p.ladder}" if p.ladder else "its penalty")
    yield f"Penalty: {', '.join(p.actions)} ({ladder} of {name(p.rule)}; prior violations: {trace.prior})"
    for q in trace.proposals:
        if q.rule == p.rule:
            continue
        why = ("less severe" if chosen is None or q.severity < chosen.severity
               else f"as severe; {name(p.rule)} comes first by rule id")
        where = f"step {q.step} of ladder {q.ladder}" if q.ladder else "its penalty"
        yield f"  also proposed: {', '.join(q.actions)} ({where} of {name(q.rule)}): {why}"


def _others_lines(trace: Trace, name: Namer) -> Iterator[str]:
    if trace.others:
        n = len(trace.others)
        yield (f"{n} other rule{'s' if n != 1 else ''} share{'s' if n == 1 else ''} no category or text "
               f"with this listing: {_few(name(q) for q in trace.others)} (ask about one with "
               "explain(why_not=RULE), or policy eval --why-not RULE)")


def _why_not_lines(r: RuleTrace, name: Callable[[str], str]) -> Iterator[str]:
    """The full reason for one rule: the outcome, then every condition, held or not."""
    if r.overridden_by:
        outcome = f"it applied, but is lifted by the exception {', '.join(name(q) for q in r.overridden_by)}"
    elif r.applied:
        outcome = "it applied"
    else:
        failing = sum(1 for ok, _ in r.parts if not ok)
        outcome = f"it did not apply: {failing} condition{'s' if failing != 1 else ''} failed"
    yield f"Why not {name(r.qid)} ({r.effect}): {outcome}."
    if not r.parts:
        yield "  - it has no conditions: it applies to every listing"
    for ok, words in r.parts:
        yield f"  - {'holds' if ok else 'fails'}: {words}"


def _few(names: Iterator[str], limit: int = 8) -> str:
    items = list(names)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … ({len(items) - limit} more)"
