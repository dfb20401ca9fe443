"""Instants as whole microseconds, and the exact local-time preimage of an instant range.

The analysis counts time in whole microseconds since 1970-01-01T00:00:00Z (``us``): every
value the evaluator can be given (``at``, an ISO date-time in a listing) has microsecond
resolution, and window bounds and date literals are instants of that resolution, so integer
arithmetic on microseconds is exact.

A date-time *without* an offset (a naive ``at``, or a listing's date field such as
``"2021-10-08"``) is read in each rule's policy timezone (``dsl.evaluate.values.instant_in``: fold 0,
so a local time that a daylight-saving change skips reads with the offset before the
change). So one naive value means different instants for rules of different timezones.
The analysis models such a value by its local wall-clock reading ``L`` (microseconds since
1970-01-01T00:00 local, no offset) and needs, for a timezone ``Z`` and an instant range
``[a, b)``, the exact set ``{L : a <= instant_Z(L) < b}``. ``local_preimage`` computes it
as a union of intervals, by finding the local-time pieces on which the offset is constant
near ``a`` and ``b`` (away from the ends the answer cannot depend on the offset, which is
always less than a day).
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_NAIVE = dt.datetime(1970, 1, 1)
US_PER_S = 1_000_000
DAY_US = 86_400 * US_PER_S
INF = None  # an open end of an interval

MIN_US = (dt.datetime(1, 1, 2, tzinfo=UTC) - EPOCH) // dt.timedelta(microseconds=1)
MAX_US = (dt.datetime(9999, 12, 30, tzinfo=UTC) - EPOCH) // dt.timedelta(microseconds=1)
"""The range of instants a Python datetime can hold (a day of margin at each end, so that
any offset can be applied)."""

Interval = tuple[int | None, int | None]
"""``[lo, hi)`` in microseconds; None is an open end."""


def to_us(instant: dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch (exact)."""
    return (instant - EPOCH) // dt.timedelta(microseconds=1)


def naive_to_us(local: dt.datetime) -> int:
    """A naive datetime (a wall-clock reading) as microseconds since 1970-01-01T00:00."""
    return (local - EPOCH_NAIVE) // dt.timedelta(microseconds=1)


def from_us(us: int) -> dt.datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + dt.timedelta(microseconds=us)


def naive_from_us(us: int) -> dt.datetime:
    return EPOCH_NAIVE + dt.timedelta(microseconds=us)


def iso_utc(us: int) -> str:
    """An instant as ISO 8601 in UTC with ``Z`` (fractions only when there are some)."""
    d = from_us(us)
    text = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        text += f".{d.microsecond:06d}"
    return text + "Z"


def iso_naive(us: int) -> str:
    """A wall-clock reading as an ISO date-time without an offset (a date at midnight)."""
    d = naive_from_us(us)
    if (d.hour, d.minute, d.second, d.microsecond) == (0, 0, 0, 0):
        return d.date().isoformat()
    text = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        text += f".{d.microsecond:06d}"
    return text


def instant_of_local(local_us: int, tz: ZoneInfo) -> int | None:
    """``dsl.evaluate.values.instant_in`` on a naive reading: the instant in microseconds, or None
    when out of range."""
    if not MIN_US <= local_us <= MAX_US:
        return None
    naive = naive_from_us(local_us)
    try:
        return to_us(naive.replace(tzinfo=tz, fold=0).astimezone(UTC))
    except (OverflowError, ValueError):
        return None


_ONE_US = dt.timedelta(microseconds=1)


def _offset_us(local_us: int, tz: ZoneInfo) -> int | None:
    """``local_us - instant_of_local(local_us, tz)``: the offset (fold 0), read directly."""
    if not MIN_US <= local_us <= MAX_US:
        return None
    try:
        offset = naive_from_us(local_us).replace(tzinfo=tz, fold=0).utcoffset()
    except (OverflowError, ValueError):
        return None
    return None if offset is None else offset // _ONE_US


@functools.lru_cache(maxsize=1 << 18)
def _grid_offset_us(local_us: int, tz: ZoneInfo) -> int | None:
    """``_offset_us`` at a sampling point: the windows of a set lie close together, and
    their samples, taken on one grid, are shared."""
    return _offset_us(local_us, tz)


def _pieces(tz: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """Local-time pieces ``(start, end, offset)`` covering ``[lo, hi)`` on which the offset
    (fold 0) is constant. Offsets are sampled at every multiple of 10 minutes and each change
    located to the microsecond by bisection (no timezone changes its offset twice within 10
    minutes)."""
    step = 600 * US_PER_S
    pieces: list[tuple[int, int, int]] = []
    start = lo
    off = _offset_us(lo, tz)
    t = lo
    while t < hi:
        nxt = min((t // step + 1) * step, hi)
        off_n = _grid_offset_us(nxt, tz) if nxt < hi else off
        if off_n != off:
            a, b = t, nxt  # offset at a == off, at b != off: find the first change
            while b - a > 1:
                m = (a + b) // 2
                if _offset_us(m, tz) == off:
                    a = m
                else:
                    b = m
            if off is not None:
                pieces.append((start, b, off))
            start, off = b, _offset_us(b, tz)
        t = nxt
    if off is not None and start < hi:
        pieces.append((start, hi, off))
    return pieces


def _clip(iv: Interval, lo: int, hi: int) -> Interval | None:
    a = lo if iv[0] is None else max(iv[0], lo)
    b = hi if iv[1] is None else min(iv[1], hi)
    return (a, b) if a < b else None


def merge(intervals: list[Interval]) -> tuple[Interval, ...]:
    """Sorted, disjoint, non-adjacent intervals covering the same set."""
    def lo_key(iv: Interval) -> float:
        return float("-inf") if iv[0] is None else iv[0]

    out: list[Interval] = []
    for iv in sorted(intervals, key=lo_key):
        if iv[0] is not None and iv[1] is not None and iv[0] >= iv[1]:
            continue
        if out:
            last = out[-1]
            if last[1] is None or (iv[0] is not None and iv[0] <= last[1]) or iv[0] is None:
                end = None if (last[1] is None or iv[1] is None) else max(last[1], iv[1])
                out[-1] = (last[0], end)
                continue
        out.append(iv)
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def local_preimage(tz_key: str, a: int | None, b: int | None) -> tuple[Interval, ...]:
    """The exact set of local readings ``L`` (microseconds) with ``a <= instant(L) < b`` in
    timezone ``tz_key`` (None: unbounded), as sorted disjoint intervals."""
    tz = ZoneInfo(tz_key)
    margin = 3 * DAY_US
    # Far from both ends, the offset (always under a day) cannot move L across them.
    lo_all = MIN_US if a is None else max(MIN_US, a - margin)
    hi_all = MAX_US if b is None else min(MAX_US, b + margin)
    if lo_all >= hi_all:
        return ()
    exact_zones: list[tuple[int, int]] = []
    if a is not None:
        exact_zones.append((max(MIN_US, a - margin), min(MAX_US, a + margin)))
    if b is not None:
        exact_zones.append((max(MIN_US, b - margin), min(MAX_US, b + margin)))
    exact_zones = [z for z in exact_zones if z[0] < z[1]]
    zones_merged = [_bounded(z) for z in merge([(lo, hi) for lo, hi in exact_zones])]
    # inside the exact zones: piece by piece
    result = _preimage_in_zones(tz, zones_merged, a, b)
    # between the exact zones (and beyond a missing end): all L qualify
    free_lo = MIN_US if a is None else a + margin
    free_hi = MAX_US if b is None else b - margin
    if free_lo < free_hi:
        result.extend(_gaps(free_lo, free_hi, zones_merged))
    merged = list(merge(result))
    # the extreme ends of the datetime range stand for "unbounded"
    if merged and a is None and merged[0][0] == MIN_US:
        merged[0] = (None, merged[0][1])
    if merged and b is None and merged[-1][1] == MAX_US:
        merged[-1] = (merged[-1][0], None)
    return tuple(merged)


def _bounded(iv: Interval) -> tuple[int, int]:
    lo, hi = iv
    assert lo is not None and hi is not None, "merged from bounded intervals"
    return lo, hi


def _preimage_in_zones(tz: ZoneInfo, zones: list[tuple[int, int]], a: int | None,
                       b: int | None) -> list[Interval]:
    """``local_preimage`` within ``zones``, piece by piece of constant offset."""
    result: list[Interval] = []
    for lo, hi in zones:
        for p_lo, p_hi, off in _pieces(tz, lo, hi):
            # instant = L - off; a <= L - off < b  <=>  a + off <= L < b + off
            want: Interval = (None if a is None else a + off, None if b is None else b + off)
            clipped = _clip(want, p_lo, p_hi)
            if clipped is not None:
                result.append(clipped)
    return result


def _gaps(free_lo: int, free_hi: int, zones: list[tuple[int, int]]) -> list[Interval]:
    """``[free_lo, free_hi)`` less the ``zones``."""
    gaps: list[tuple[int, int]] = [(free_lo, free_hi)]
    for lo, hi in zones:
        new = []
        for g_lo, g_hi in gaps:
            if hi <= g_lo or lo >= g_hi:
                new.append((g_lo, g_hi))
                continue
            if g_lo < lo:
                new.append((g_lo, lo))
            if hi < g_hi:
                new.append((hi, g_hi))
        gaps = new
    return list(gaps)


def op_interval(op: str, value: int) -> tuple[Interval, ...]:
    """``{t : t op value}`` as intervals of whole microseconds."""
    if op == "<":
        return ((None, value),)
    if op == "<=":
        return ((None, value + 1),)
    if op == ">":
        return ((value + 1, None),)
    if op == ">=":
        return ((value, None),)
    if op == "==":
        return ((value, value + 1),)
    if op == "!=":
        return ((None, value), (value + 1, None))
    raise ValueError(op)


def is_fixed_offset(tz_key: str, lo: int, hi: int) -> bool:
    """Whether the zone keeps one offset over ``[lo, hi)`` (then a naive reading and an
    aware instant are interchangeable for rules of that zone alone)."""
    return len(_pieces(ZoneInfo(tz_key), lo, hi)) <= 1
