"""The Python interface: ``load``, ``check``, ``format_source`` (spec section 8)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .checks import build
from .diagnostics import Diagnostic, PolicyError, has_errors, sort_diagnostics
from .loader import Loaded, load_paths
from .model import PolicySet

if TYPE_CHECKING:  # the engine pulls in the evaluators; import it only when used
    from .engine import Policies

PathLike = str | Path


def _paths(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(paths, (str, Path)):
        return [paths]
    return list(paths)


def compile_paths(paths: PathLike | Iterable[PathLike]) -> tuple[PolicySet | None, Loaded, list[Diagnostic]]:
    """Read, parse and check the policy files under ``paths``. Returns the checked model
    (None when there are errors), what was loaded, and the front end's diagnostics."""
    loaded = load_paths(_paths(paths))
    diags = list(loaded.diagnostics)
    model = None
    syntax_errors = any(d.code.startswith("P1") for d in diags)
    if not has_errors(diags):
        model, found = build(list(loaded.policy_files), loaded.sources, test_files=loaded.test_files)
        diags.extend(found)
    else:
        # Still report what the checks find in the files that parsed, without a model.
        _, found = build(list(loaded.policy_files), loaded.sources, test_files=loaded.test_files,
                         syntax_errors=syntax_errors)
        diags.extend(found)
        model = None
    return model, loaded, sort_diagnostics(diags)


def load(paths: PathLike | Iterable[PathLike]) -> "Policies":
    """Load a policy set for deciding: ``dsl.load("policies/").decide(listing, at=…)``.
    Raises ``dsl.PolicyError`` (with ``.diagnostics``) when the set has errors; warnings
    do not stop loading. Raises ``dsl.UsageError`` for a missing path."""
    from .engine import Policies

    model, _loaded, diags = compile_paths(paths)
    if model is None:
        raise PolicyError(diags)
    return Policies(model)


def check(paths: PathLike | Iterable[PathLike], *, analysis: bool = True) -> list[Diagnostic]:
    """Every finding of ``policy check``: syntax, names, types and, when the set has no
    errors, the consistency analysis (P3xx)."""
    return check_paths(paths, analysis=analysis)[0]


def check_paths(paths: PathLike | Iterable[PathLike], *, analysis: bool = True) -> tuple[list[Diagnostic], dict[str, str]]:
    """``check``, and the sources read (for rendering excerpts)."""
    model, loaded, diags = compile_paths(paths)
    if analysis and model is not None:
        from .analysis import analyze

        diags.extend(analyze(model))
    if model is not None or not has_errors(diags):
        diags.extend(_check_tests(model, loaded))
    return sort_diagnostics(diags), dict(loaded.sources)


def _check_tests(model: PolicySet | None, loaded: Loaded) -> list[Diagnostic]:
    if not loaded.test_files:
        return []
    try:
        from .testing import check_test_files
    except ImportError:
        return []
    return list(check_test_files(model, loaded))


def format_source(text: str) -> str:
    """The canonical layout of a policy text; raises PolicyError on syntax errors."""
    from .format import format_source as fmt

    return fmt(text)
