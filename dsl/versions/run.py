"""`policy diff OLD NEW` from paths: both versions read (``sources``), compared
(``compare``), and with ``catalogue`` files a real catalogue decided by both
(``catalogue``). ``dsl.diff`` (the function) and the command line call ``diff_paths``."""

from __future__ import annotations

import os
from collections.abc import Iterable

import attrs

from ..evaluate.policies import Policies
from ..model import PolicySet
from ..scan.run import new_job
from .catalogue import count_catalogue
from .core import DEFAULT_BUDGET, Diff, Replay, compare
from .sources import Version, read_version

__all__ = ["diff_paths"]

Side = str | os.PathLike[str] | Policies | PolicySet
"""A version: a path, ``REV:PATH``, what ``dsl.load`` returns, or a checked set."""


def _version(side: Side, what: str) -> Version:
    if isinstance(side, Policies):
        return Version(what, side.policy_set)
    if isinstance(side, PolicySet):
        return Version(what, side)
    if not isinstance(side, str | os.PathLike):
        raise TypeError(f"{what}: expected a path, 'REV:PATH', the Policies dsl.load returns or a checked "
                        f"PolicySet, not {type(side).__name__}")
    return read_version(side, what=what)


def diff_paths(old: Side, new: Side, *, catalogue: Iterable[str] = (), at: str | None = None,
               id_field: str = "id", analysis_budget: float | None = DEFAULT_BUDGET) -> Diff:
    """Compare two versions of a policy set: each a path, ``REV:PATH`` read from git,
    the ``Policies`` that ``dsl.load`` returns, or a checked ``PolicySet``. With
    ``catalogue`` files (Parquet, CSV, JSON lines), also count the listings whose
    decision changes, deciding each at ``at`` (default: now; a JSON envelope's own ``at``
    wins) and naming them by ``id_field``. Raises ``dsl.UsageError`` (a path or revision
    that names nothing, an unreadable catalogue, a bad ``at``), ``dsl.PolicyError`` (a
    version with errors; its ``.diagnostics``) and ``TypeError`` (a version of another
    type)."""
    files = list(catalogue)
    # --at and --id-field read and checked as `policy scan` reads them (now: read once);
    # the job's output format and seller field are not used
    job = (new_job("jsonl", at=at, at_field=None, prior_field=None, id_field=id_field, seller_field="seller.id")
           if files else None)
    o, n = _version(old, "OLD"), _version(new, "NEW")
    d = compare(o.model, n.model, old_label=o.label, new_label=n.label, budget=analysis_budget)
    if job is None or job.at is None:
        return d
    watched = [r.rule for r in d.rules if r.status != "reworded"]
    counts = count_catalogue(Replay(o.model, n.model), files, watched, at=job.at, id_field=job.id_field)
    return attrs.evolve(d, catalogue=counts)
