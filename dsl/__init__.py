"""The policy language for marketplace compliance: load, check, decide, explain.

    import dsl
    policies = dsl.load("policies/")            # raises dsl.PolicyError with .diagnostics
    decision = policies.decide(listing, at="2021-10-20", prior_violations=1)
    decision.effect, decision.rules, decision.penalty, decision.to_dict()
    print(policies.explain(listing, at="2021-10-20", prior_violations=1))
    changes = dsl.diff("main:policies/", "policies/")   # what a change does to decisions
"""

from .api import check, compile_paths, diff, format_source, load
from .checking.loader import UsageError
from .diagnostics import Diagnostic, PolicyError
from .evaluate.outcome import Decision, DecisionError, InputError

__version__ = "0.1.0"

__all__ = ["load", "check", "diff", "format_source", "compile_paths", "Diagnostic", "PolicyError", "UsageError",
           "Decision", "DecisionError", "InputError", "__version__"]


def __getattr__(name: str) -> object:
    if name == "Policies":
        from .evaluate.policies import Policies

        return Policies
    raise AttributeError(name)
