"""The impact report of a scan (``--report``): counts by effect, policy, rule and penalty
step, the records in error with the first few messages, and the sellers with most blocked
listings. Each batch is tallied where it is decided (``Tally``) and the tallies are merged
in input order (``Tally.merge``), so the report is the same whatever the number of jobs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..evaluate.outcome import Decision, PenaltyChoice

__all__ = ["FIRST_ERRORS", "TOP_SELLERS", "Tally", "render_table", "seller_key"]

FIRST_ERRORS = 10
"""How many error messages the report keeps (the first ones, in input order)."""
TOP_SELLERS = 10
"""How many sellers the report names (those with most blocked listings)."""


class Tally:
    """The counts of some records' decisions."""

    def __init__(self) -> None:
        self.records = 0
        self.errors = 0
        self.first_errors: list[tuple[int, str]] = []
        self.effects: Counter[str] = Counter()
        self.rule_sets: Counter[tuple[str, ...]] = Counter()
        """Records by the rules that applied to them (a catalogue's decisions repeat: one
        count per record here, the counts by rule and by policy at the end)."""
        self.steps: Counter[str] = Counter()
        self.blocked_sellers: Counter[str] = Counter()

    def error(self, record: int, message: str) -> None:
        self.records += 1
        self.errors += 1
        if len(self.first_errors) < FIRST_ERRORS:
            self.first_errors.append((record, message))

    def plain_allow(self, count: int = 1) -> None:
        """``count`` records that got a plain allow (no rule, warning or error)."""
        if count:
            self.records += count
            self.effects["allow"] += count

    def decision(self, d: Decision, seller: Any) -> None:
        self.records += 1
        self.effects[d.effect] += 1
        if d.rules:
            self.rule_sets[d.rules] += 1
        if d.penalty is not None:
            self.steps[_step(d.penalty)] += 1
        if d.effect == "block":
            self.blocked_sellers[seller_key(seller)] += 1

    def decided(self, effects: Sequence[str | None], rule_sets: Sequence[tuple[str, ...] | None],
                penalties: Iterable[PenaltyChoice], blocked_sellers: Mapping[str, int]) -> None:
        """Records decided, a column at a time (``decision`` for each, but counted in
        bulk): their effects and rule sets (None for a record in error, counted by
        ``error``), the penalties given and the blocked records by seller (``seller_key``)."""
        counts = Counter(e for e in effects if e is not None)
        self.records += counts.total()
        self.effects.update(counts)
        self.rule_sets.update(r for r in rule_sets if r)
        self.steps.update(_step(p) for p in penalties)
        self.blocked_sellers.update(blocked_sellers)

    def repeated(self, effect: str, rules: tuple[str, ...], penalty: PenaltyChoice | None, count: int) -> None:
        """``count`` records decided alike (their blocked sellers counted apart)."""
        self.records += count
        self.effects[effect] += count
        if rules:
            self.rule_sets[rules] += count
        if penalty is not None:
            self.steps[_step(penalty)] += count

    def merge(self, other: Tally) -> None:
        """Add the counts of ``other``, the tally of later records."""
        self.records += other.records
        self.errors += other.errors
        room = FIRST_ERRORS - len(self.first_errors)
        self.first_errors.extend(other.first_errors[:max(room, 0)])
        self.effects.update(other.effects)
        self.rule_sets.update(other.rule_sets)
        self.steps.update(other.steps)
        self.blocked_sellers.update(other.blocked_sellers)

    @property
    def rules(self) -> Counter[str]:
        """Records by rule that applied."""
        counts: Counter[str] = Counter()
        for rules, n in self.rule_sets.items():
            for q in rules:
                counts[q] += n
        return counts

    @property
    def policies(self) -> Counter[str]:
        """Records by policy some rule of which applied (once per record)."""
        counts: Counter[str] = Counter()
        for rules, n in self.rule_sets.items():
            for name in {q.partition(".")[0] for q in rules}:
                counts[name] += n
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON: every count sorted by count (highest first), then by name."""
        return {
            "records": self.records,
            "effects": _sorted(self.effects),
            "policies": _sorted(self.policies),
            "rules": _sorted(self.rules),
            "penalty_steps": _sorted(self.steps),
            "errors": {"count": self.errors,
                       "first": [{"record": n, "message": m} for n, m in self.first_errors]},
            "top_blocked_sellers": [{"seller": s, "blocked": n}
                                    for s, n in _ranked(self.blocked_sellers)[:TOP_SELLERS]],
        }


def _step(p: PenaltyChoice) -> str:
    """A penalty's step as the report counts it."""
    return f"{p.ladder or p.rule} step {p.step}"


def seller_key(seller: Any) -> str:
    """A seller as the report names it (text as it is, another value as its JSON)."""
    if seller is None:
        return "(no seller)"
    return seller if isinstance(seller, str) else json.dumps(seller, ensure_ascii=False)


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return dict(_ranked(counts))


def render_table(report: dict[str, Any], *, top: int = 10) -> list[str]:
    """The report as the lines of a small table, for the end of a scan."""
    lines = [f"{report['records']:,} records, {report['errors']['count']:,} in error"]
    sections = [("effect", report["effects"]), ("policy", report["policies"]), ("rule", report["rules"]),
                ("penalty step", report["penalty_steps"]),
                ("seller (blocked)", {s["seller"]: s["blocked"] for s in report["top_blocked_sellers"]})]
    for title, counts in sections:
        if not counts:
            continue
        shown = list(counts.items())[:top]
        width = max(len(title), *(len(k) for k, _ in shown))
        lines.append("")
        lines.append(f"{title:<{width}}  {'records':>10}")
        lines.extend(f"{k:<{width}}  {v:>10,}" for k, v in shown)
        if len(counts) > top:
            lines.append(f"… and {len(counts) - top} more")
    for e in report["errors"]["first"]:
        lines.append(f"record {e['record']}: {e['message']}")
    return lines
