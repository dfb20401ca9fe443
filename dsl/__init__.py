"""The policy language for marketplace compliance: load, check, decide, explain.

    import dsl
    policies = dsl.load("policies/")            # raises dsl.PolicyError with .diagnostics
    decision = policies.decide(listing, at="2021-10-20", prior_violations=1)
    decision.effect, decision.rules, decision.penalty, decision.to_dict(), decision.explain()
"""

from .api import check, compile_paths, format_source, load
from .diagnostics import Diagnostic, PolicyError
from .loader import UsageError

__version__ = "0.1.0"

__all__ = ["load", "check", "format_source", "compile_paths", "Diagnostic", "PolicyError", "UsageError",
           "__version__"]


def __getattr__(name: str) -> object:
    # Decision and friends live with the evaluator; import them only when asked for.
    if name in ("Decision", "InputError", "DecisionError"):
        from . import decision

        return getattr(decision, name)
    if name == "Policies":
        from .engine import Policies

        return Policies
    raise AttributeError(name)
