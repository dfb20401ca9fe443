"""Shrinking counterexamples: the smallest readable listing that still breaks a claim.

A counterexample is a listing, an instant ``at`` and a number of ``prior_violations``.
``shrink`` simplifies it step by step — dropping fields and list items, cutting strings
down to the phrases that matter, dropping category segments, rounding numbers, moving
``at`` to a round instant and lowering ``prior_violations`` — and keeps a step only when
the caller's predicate confirms that the smaller candidate still breaks the claim. The
predicate is where the evaluator is consulted; this module knows nothing about policies.

The search is deterministic (keys in sorted order, no randomness) and monotone: every
step it keeps makes one component of ``size`` strictly smaller and leaves the others as
they were, so the result is never larger than the input in any component.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ..evaluate.outcome import format_instant
from ..model import local_instant
from ..text import normalize_text

__all__ = ["Counterexample", "Size", "shrink", "size", "listing_size", "number_cost", "at_cost"]

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen
class Counterexample:
    """A listing, an aware instant and the seller's earlier violations."""

    listing: dict[str, Any]
    at: dt.datetime
    prior_violations: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``at`` in UTC, as decisions report it (``outcome.format_instant``)."""
        return {"listing": self.listing, "at": format_instant(self.at), "prior_violations": self.prior_violations}


@attrs.frozen(order=True)
class Size:
    """How big a counterexample is, component by component (each compared on its own)."""

    listing: int
    prior_violations: int
    at: tuple[int, int]

    @property
    def total(self) -> int:
        return self.listing + self.prior_violations + self.at[0]

    def within(self, other: Size) -> bool:
        """No component larger than ``other``'s."""
        return self.listing <= other.listing and self.prior_violations <= other.prior_violations and self.at <= other.at


# --------------------------------------------------------------------------- size


def listing_size(value: Any) -> int:
    """Fields and list items count one each, strings their length, numbers their digits."""
    if isinstance(value, dict):
        return sum(1 + listing_size(v) for v in value.values())
    if isinstance(value, list):
        return sum(1 + listing_size(v) for v in value)
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float)):
        return number_cost(value)
    return 1


def number_cost(x: int | float) -> int:
    """One, plus the significant digits (and the sign): 2000 costs 2, 1234 costs 5,
    19.99 costs 5, 20 costs 2 and 20.0 costs 3, so rounder numbers are smaller."""
    text = repr(abs(x))
    if "e" in text or "inf" in text or "nan" in text:
        return len(text) + 1
    digits = text.replace(".", "").lstrip("0")
    if "." not in text:
        digits = digits.rstrip("0")
    return 1 + len(digits) + (1 if x < 0 else 0)


def at_cost(at: dt.datetime, tz: dt.tzinfo, anchor: dt.datetime | None) -> tuple[int, int]:
    """How round an instant is in ``tz`` (0 midnight, 1 on the hour, 2 on the minute, 3 on
    the second, 4 finer), then how many whole days it lies from ``anchor``."""
    local = at.astimezone(tz)
    if local.microsecond:
        level = 4
    elif local.second:
        level = 3
    elif local.minute:
        level = 2
    elif local.hour:
        level = 1
    else:
        level = 0
    days = abs((at - anchor).total_seconds()) // 86400 if anchor is not None else 0
    return level, int(days)


def size(cx: Counterexample, tz: dt.tzinfo = UTC, anchor: dt.datetime | None = None) -> Size:
    """The size of a counterexample, with ``at`` measured as ``shrink`` measures it."""
    return Size(listing_size(cx.listing), cx.prior_violations, at_cost(cx.at, tz, anchor))


# --------------------------------------------------------------------------- the search


class _Budget(Exception):
    """The predicate has been asked as often as allowed; keep what we have."""


class _Search:
    def __init__(self, fails: Callable[[Counterexample], bool], max_checks: int):
        self.fails = fails
        self.left = max_checks
        self.cache: dict[str, bool] = {}

    def check(self, cx: Counterexample) -> bool:
        # the instant exactly, as a time since the epoch: a float timestamp keeps no
        # microseconds after the year 2514, so an 'at' a microsecond on was taken for one
        # already asked, and the shrunk counterexample could break nothing
        key = repr((_freeze(cx.listing), cx.at - _EPOCH, cx.prior_violations))
        if key in self.cache:
            return self.cache[key]
        if self.left <= 0:
            raise _Budget
        self.left -= 1
        ok = bool(self.fails(cx))
        self.cache[key] = ok
        return ok


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("[", *(_freeze(x) for x in v))
    return (type(v).__name__, v)


def shrink(cx: Counterexample, fails: Callable[[Counterexample], bool], *,
           phrases: Iterable[str] = (), tz: dt.tzinfo | str = UTC, anchor: dt.datetime | None = None,
           max_checks: int = 3000) -> Counterexample:
    """The smallest variant of ``cx`` found for which ``fails`` still holds.

    ``fails`` must hold for ``cx`` itself (else ``cx`` is returned as it is). ``phrases``
    are the strings the claim and the policies care about (phrases, needles, category
    segments, literal values): a string is first tried as each phrase it mentions.
    ``tz`` is where midnight is; ``anchor`` the instant ``at`` is moved towards (the
    claim's window start, or the policies' first date): ``at`` ends as round as it can be,
    then as near the anchor. At most ``max_checks`` calls of ``fails`` are made."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    search = _Search(fails, max_checks)
    try:
        if not search.check(cx):
            return cx
    except _Budget:
        return cx
    state = _State(cx, search, sorted(set(p for p in phrases if p), key=lambda p: (len(p), p)), zone, anchor)
    try:
        state.run()
    except _Budget:
        pass
    return state.cx


class _State:
    def __init__(self, cx: Counterexample, search: _Search, phrases: list[str], tz: dt.tzinfo,
                 anchor: dt.datetime | None):
        self.cx = cx
        self.search = search
        self.phrases = phrases
        self.norm_phrases = [(p, normalize_text(p)) for p in phrases]
        self.tz = tz
        self.anchor = anchor

    def run(self) -> None:
        progress = True
        while progress:
            progress = False
            for step in (self.shrink_prior, self.shrink_fields, self.shrink_values, self.shrink_at):
                progress |= step()

    # -- prior_violations -----------------------------------------------------
    def shrink_prior(self) -> bool:
        n = self.cx.prior_violations
        for candidate in _lower_ints(n):
            if self.search.check(attrs.evolve(self.cx, prior_violations=candidate)):
                self.cx = attrs.evolve(self.cx, prior_violations=candidate)
                return True
        return False

    # -- at ----------------------------------------------------------------------
    def shrink_at(self) -> bool:
        moved = False
        while True:
            cost = at_cost(self.cx.at, self.tz, self.anchor)
            for candidate in self.round_instants(self.cx.at):
                if at_cost(candidate, self.tz, self.anchor) >= cost:
                    continue
                if self.search.check(attrs.evolve(self.cx, at=candidate)):
                    self.cx = attrs.evolve(self.cx, at=candidate)
                    moved = True
                    break
            else:
                return moved

    def round_instants(self, at: dt.datetime) -> Iterator[dt.datetime]:
        """Rounder instants, roundest and nearest the anchor first: the anchor (the
        window's start, else the policies' first date), local midnights around it and
        on the way from it to ``at``, then ``at`` cut to its midnight, hour, minute."""
        local = at.astimezone(self.tz)
        if self.anchor is not None:
            yield self.anchor
            day = self.anchor.astimezone(self.tz).date()
            for k in (0, -1, 1):
                yield _local(day + dt.timedelta(days=k), self.tz)
            gap = (local.date() - day).days
            step = 1
            while step < abs(gap):
                yield _local(day + dt.timedelta(days=step if gap > 0 else -step), self.tz)
                step *= 2
        yield _local(local.date(), self.tz)
        yield _local(local.date() + dt.timedelta(days=1), self.tz)
        for unit in ("hour", "minute", "second"):
            cut = local.replace(microsecond=0)
            if unit in ("hour", "minute"):
                cut = cut.replace(second=0)
            if unit == "hour":
                cut = cut.replace(minute=0)
            yield cut.astimezone(UTC)

    # -- fields and list items -------------------------------------------------
    def shrink_fields(self) -> bool:
        """Drop whole fields and list items (delta debugging at every level)."""
        progress = False
        for path in list(_containers(self.cx.listing)):
            container = _get(self.cx.listing, path)
            if container is None:
                continue
            keys = sorted(container) if isinstance(container, dict) else list(range(len(container)))
            if not keys:
                continue

            def test(kept: Sequence[Any], path: tuple[Any, ...] = path, container: Any = container) -> bool:
                if isinstance(container, dict):
                    new: Any = {k: container[k] for k in container if k in set(kept)}
                else:
                    new = [container[i] for i in kept]
                return self.search.check(attrs.evolve(self.cx, listing=_set(self.cx.listing, path, new)))

            kept = _ddmin(keys, test)
            if len(kept) < len(keys):
                if isinstance(container, dict):
                    new: Any = {k: container[k] for k in container if k in set(kept)}
                else:
                    new = [container[i] for i in kept]
                self.cx = attrs.evolve(self.cx, listing=_set(self.cx.listing, path, new))
                progress = True
        return progress

    # -- leaf values ----------------------------------------------------------
    def shrink_values(self) -> bool:
        progress = False
        for path in list(_leaves(self.cx.listing)):
            value = _get(self.cx.listing, path)
            cost = listing_size(value)
            for candidate in self.value_candidates(path, value):
                if listing_size(candidate) >= cost:
                    continue
                trial = attrs.evolve(self.cx, listing=_set(self.cx.listing, path, candidate))
                if self.search.check(trial):
                    self.cx = trial
                    value, cost = candidate, listing_size(candidate)
                    progress = True
                    if isinstance(candidate, (str, int, float)) and candidate != "":
                        continue  # a shorter string may still shrink further
        return progress

    def value_candidates(self, path: tuple[Any, ...], value: Any) -> Iterator[Any]:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            yield from _rounder_numbers(value)
            return
        if isinstance(value, str):
            if path and path[0] == "category" and ">" in value:
                yield from self.category_candidates(value)
            yield from self.string_candidates(value)
            return
        if isinstance(value, list) and path == ("category",) and all(isinstance(v, str) for v in value):
            yield " > ".join(value)  # ['A', 'B'] reads as 'A > B', and one segment as 'A'
        elif isinstance(value, list) and len(value) == 1 and not isinstance(value[0], (list, dict)):
            yield value[0]  # ['mining'] reads as 'mining' (text matching treats them alike)

    def category_candidates(self, value: str) -> Iterator[str]:
        segments = [s.strip() for s in value.split(">")]
        for n in range(1, len(segments)):
            for i in range(len(segments) - n + 1):
                yield " > ".join(segments[i:i + n])
        yield " > ".join(s for s in segments if s)

    def string_candidates(self, s: str) -> Iterator[str]:
        yield ""
        norm = normalize_text(s)
        for phrase, norm_phrase in self.norm_phrases:
            if norm_phrase and norm_phrase in norm and len(phrase) < len(s):
                yield phrase
        yield from _iso_shorter(s)
        words = s.split()
        yield from _word_runs(words)
        if " ".join(words) != s:
            yield " ".join(words)
        yield from _pieces(s)


def _word_runs(words: list[str]) -> Iterator[str]:
    """Shorter strings made of a string's words."""
    if 1 < len(words) <= 12:
        # every run of words, shortest first
        for n in range(1, len(words)):
            for i in range(len(words) - n + 1):
                yield " ".join(words[i:i + n])
    elif len(words) > 12:
        # too many runs to try them all: single words, halves, then each word left out
        yield from words
        half = len(words) // 2
        yield " ".join(words[:half])
        yield " ".join(words[half:])
        for i in range(len(words)):
            yield " ".join(words[:i] + words[i + 1:])


def _pieces(s: str) -> Iterator[str]:
    """Pieces of a string, shortest first: every trimmed substring of a short one, the
    prefixes and suffixes of a long one."""
    if len(s) <= 40:
        for n in range(1, len(s)):
            for i in range(len(s) - n + 1):
                piece = s[i:i + n]
                if piece.strip() == piece:
                    yield piece
    else:
        for n in range(1, len(s)):
            yield s[:n]
            yield s[len(s) - n:]

def _local(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The first instant of ``day`` in ``tz``, as policy dates are read."""
    return local_instant(day, tz)  # type: ignore[arg-type]


def _lower_ints(n: int) -> Iterator[int]:
    """0, then halfway down, …, then n - 1: the smallest that still works is found first."""
    if n <= 0:
        return
    seen = set()
    candidates = [0]
    k = n // 2
    while k > 0:
        candidates.append(n - k)
        k //= 2
    for c in candidates:
        if c < n and c not in seen:
            seen.add(c)
            yield c


def _rounder_numbers(x: int | float) -> Iterator[int | float]:
    if isinstance(x, float) and not math.isfinite(x):
        return
    yield 0
    yield 1
    yield -1
    whole = math.trunc(x)
    yield whole
    yield math.floor(x)
    yield math.ceil(x)
    magnitude = abs(x)
    if magnitude >= 1:
        digits = len(str(int(magnitude)))
        for keep in range(1, digits + 1):
            step = 10 ** (digits - keep)
            for r in (math.floor(x / step) * step, math.ceil(x / step) * step):
                yield int(r)
    for places in range(1, 6):
        r = round(x, places)
        if r != x:
            yield r
            yield math.floor(x * 10 ** places) / 10 ** places
            yield math.ceil(x * 10 ** places) / 10 ** places


def _iso_shorter(s: str) -> Iterator[str]:
    """A date-time string cut to the date, or its seconds and offset left out."""
    if len(s) > 10 and s[4:5] == "-" and s[7:8] == "-":
        try:
            dt.date.fromisoformat(s[:10])
        except ValueError:
            return
        yield s[:10]
        if len(s) > 16:
            yield s[:16]


# --------------------------------------------------------------------------- JSON paths


def _containers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths to every object and list, outermost first, keys in sorted order."""
    if isinstance(value, dict):
        yield path
        for k in sorted(value):
            yield from _containers(value[k], path + (k,))
    elif isinstance(value, list):
        yield path
        for i, v in enumerate(value):
            yield from _containers(v, path + (i,))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths to every value worth simplifying: scalars, and lists (which may become a string)."""
    if isinstance(value, dict):
        for k in sorted(value):
            yield from _leaves(value[k], path + (k,))
    elif isinstance(value, list):
        yield path  # a list of one item may become that item
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path``, or None where the path no longer leads anywhere."""
    for p in path:
        if isinstance(value, dict) and p in value:
            value = value[p]
        elif isinstance(value, list) and isinstance(p, int) and p < len(value):
            value = value[p]
        else:
            return None
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path`` (the input is never changed)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        out[head] = _set(value[head], rest, new)
        return out
    out_list = list(value)
    out_list[head] = _set(value[head], rest, new)
    return out_list


def _ddmin(items: list[Any], test: Callable[[Sequence[Any]], bool]) -> list[Any]:
    """Zeller's delta debugging: a 1-minimal sublist of ``items`` for which ``test``
    holds (``test(items)`` is assumed to hold). Tries dropping everything first."""
    if test([]):
        return []
    n = 2
    while len(items) >= 2:
        chunk = math.ceil(len(items) / n)
        subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        reduced = False
        for i, sub in enumerate(subsets):
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            if len(subsets) > 2 and test(sub):
                items, n, reduced = sub, 2, True
                break
            if test(complement):
                items, n, reduced = complement, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), n * 2)
    if len(items) == 1 and test([]):
        return []
    return items
