"""The policy language for marketplace compliance: load, check, decide, explain.

    import dsl
    policies = dsl.load("policies/")            # raises dsl.PolicyError with .diagnostics
    decision = policies.decide(listing, at="2021-10-20", prior_violations=1)
    decision.effect, decision.rules, decision.penalty, decision.to_dict()
    print(policies.explain(listing, at="2021-10-20", prior_violations=1))
    changes = dsl.diff("main:policies/", "policies/")   # what a change does to decisions

The names are imported when first used (``__getattr__``): ``import dsl`` itself imports
nothing else, so that the `policy` command's entry point (``dsl.entry``) runs before the
rest is imported and can end a ^C during those imports quietly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import check, compile_paths, diff, format_source, load
    from .checking.loader import UsageError
    from .diagnostics import Diagnostic, PolicyError
    from .evaluate.outcome import Decision, DecisionError, InputError
    from .evaluate.policies import Policies

__version__ = "0.1.0"

__all__ = ["load", "check", "diff", "format_source", "compile_paths", "Diagnostic", "PolicyError", "UsageError",
           "Decision", "DecisionError", "InputError", "Policies", "__version__"]

_HOME = {"load": "api", "check": "api", "diff": "api", "format_source": "api", "compile_paths": "api",
         "UsageError": "checking.loader", "Diagnostic": "diagnostics", "PolicyError": "diagnostics",
         "Decision": "evaluate.outcome", "DecisionError": "evaluate.outcome", "InputError": "evaluate.outcome",
         "Policies": "evaluate.policies"}
"""The module of each public name."""


def __getattr__(name: str) -> object:
    """A public name, imported from its module; or a submodule (``dsl.api``), imported, as
    ``import dsl`` made them all attributes when it imported them at once."""
    home = _HOME.get(name)
    if home is not None:
        value = getattr(importlib.import_module(f".{home}", __name__), name)
        globals()[name] = value  # (once: the next use finds it here)
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)  # (the import makes it an attribute too)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'dsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
