"""`policy diff` (spec section 8, docs/diff.md): what changes for merchants when a policy
set changes, proved with the analysis's encoding, with witnesses and catalogue counts.

    import dsl
    d = dsl.diff("main:policies/", "policies/")     # paths, REV:PATH, or checked sets
    d.equivalent, d.changes, d.rules, d.undecided, d.exit_code()

``dsl.diff`` is the function ``dsl.api.diff``; this package is ``dsl.versions`` (a
package named ``diff`` would replace that function once imported). Its names are
imported when first used: ``import dsl`` does not bring z3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import DEFAULT_BUDGET, Change, Diff, Example, RuleChange, Undecided, compare
    from .kinds import KINDS, ascii_name, parse_kinds, shown
    from .report import FORMATS, render
    from .run import diff_paths
    from .sources import Version, read_version

__all__ = ["DEFAULT_BUDGET", "FORMATS", "KINDS", "Change", "Diff", "Example", "RuleChange", "Undecided", "Version",
           "ascii_name", "compare", "diff_paths", "parse_kinds", "read_version", "render", "shown"]

_HOME = {"DEFAULT_BUDGET": "core", "Change": "core", "Diff": "core", "Example": "core",
         "RuleChange": "core", "Undecided": "core", "compare": "core", "KINDS": "kinds",
         "ascii_name": "kinds", "parse_kinds": "kinds", "shown": "kinds", "FORMATS": "report", "render": "report",
         "diff_paths": "run", "Version": "sources", "read_version": "sources"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
