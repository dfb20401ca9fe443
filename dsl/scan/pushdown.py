"""The pushdown: a DuckDB SQL predicate that narrows a scan to the records which could get
anything but a plain allow (issue 12 item 3).

This is the interface's stub: it never narrows. ``dsl.scan`` calls ``sql_predicate`` once
per scan, unless ``--no-pushdown``, and writes the rows where the predicate is FALSE as the
plain allow row without deciding them in Python.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import PolicySet

__all__ = ["sql_predicate"]


def sql_predicate(ps: PolicySet, *, at: str | None, at_field: str | None, columns: Mapping[str, str]) -> str | None:
    """A DuckDB SQL boolean expression over the input's columns that is TRUE for every
    record which could get anything but a plain allow with no warnings and no error, or
    None for no narrowing. ``columns`` maps each top-level column name to its DuckDB type
    (as DESCRIBE gives it); ``at`` is the command line's instant, ``at_field`` the path of
    the column holding each record's instant (one of the two is set)."""
    return None
