"""The canonical text of actions and durations (``warn seller``, ``restrict selling for
7d``): what a decision reports and what the formatter writes.

It belongs to the syntax stage, below the model: the formatter writes it and the model's
``step_info`` reports it, so both import it from here."""

from __future__ import annotations

from . import ast as A


def canonical_duration(hours: int) -> str:
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def canonical_action(a: A.Action) -> str:
    if a.kind == "warn":
        return "warn seller"
    if a.kind == "remove":
        return "remove listing"
    if a.kind == "deduct":
        return f"deduct {a.points} points"
    if a.kind == "restrict":
        assert a.duration is not None
        return f"restrict {a.function} for {canonical_duration(a.duration.hours)}"
    if a.kind == "suspend":
        assert a.duration is not None
        return f"suspend account for {canonical_duration(a.duration.hours)}"
    return "close account"
