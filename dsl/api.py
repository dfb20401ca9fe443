"""The Python interface: ``load``, ``check``, ``format_source`` (spec section 8)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .checks import build
from .config import Config, discover, read_config
from .diagnostics import Diagnostic, PolicyError, has_errors, sort_diagnostics
from .loader import Loaded, UsageError, load_paths
from .model import PolicySet

if TYPE_CHECKING:  # the engine pulls in the evaluators; import it only when used
    from .engine import Policies

PathLike = str | Path


def _paths(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(paths, (str, Path)):
        return [paths]
    return list(paths)


def compile_paths(paths: PathLike | Iterable[PathLike], *,
                  config: Config | None = None) -> tuple[PolicySet | None, Loaded, list[Diagnostic]]:
    """Read, parse and check the policy files under ``paths`` (less those the
    configuration excludes: ``config``, else the one found from the first path). Returns
    the checked model (None when there are errors), what was loaded, and the front end's
    diagnostics."""
    loaded = load_paths(_paths(paths), config)
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


ANALYSIS_BUDGET = 60.0
"""Seconds the consistency analysis of ``check`` may take in all, by default."""


def check(paths: PathLike | Iterable[PathLike], *, analysis: bool = True,
          config: PathLike | None = None, analysis_budget: float | None = ANALYSIS_BUDGET) -> list[Diagnostic]:
    """Every finding of ``policy check``: syntax, names, types and, when the set has no
    errors, the consistency analysis (P3xx). The configuration (``config``, else the
    nearest ``policy.toml`` or ``pyproject.toml`` with ``[tool.policy]``) sets severities
    and drops findings turned ``off``; findings that a ``# policy: ignore[…]`` comment
    suppresses stay in the list with ``suppressed_by`` set. Raises ``dsl.UsageError``
    when ``config`` cannot be read. ``analysis_budget`` bounds the analysis's time in
    seconds (None: no bound); the questions it leaves are P399 findings."""
    return check_paths(paths, analysis=analysis, config=config, analysis_budget=analysis_budget)[0]


def check_paths(paths: PathLike | Iterable[PathLike], *, analysis: bool = True,
                config: PathLike | None = None,
                analysis_budget: float | None = ANALYSIS_BUDGET) -> tuple[list[Diagnostic], dict[str, str]]:
    """``check``, and the sources read (for rendering excerpts; the configuration file's
    too)."""
    cfg = _config(_paths(paths), config)
    model, loaded, diags = compile_paths(paths, config=cfg)
    analysed = analysis and model is not None
    if analysis and model is not None:
        from .analysis import analyze

        diags.extend(analyze(model, budget_seconds=analysis_budget))
    if model is not None or not has_errors(diags):
        diags.extend(_check_tests(model, loaded))
    sources = dict(loaded.sources)
    if cfg.path is not None:
        sources[cfg.name] = cfg.text
    return sort_diagnostics(_settle(diags, loaded, cfg, model is not None, analysed)), sources


def _config(paths: list[PathLike], given: PathLike | None) -> Config:
    if given is None:
        return discover(paths)
    try:
        return read_config(given, str(given))
    except OSError as e:
        raise UsageError(f"cannot read the configuration '{given}': {e.strerror or e}") from e


def _settle(diags: list[Diagnostic], loaded: Loaded, cfg: Config, complete: bool,
            analysed: bool) -> list[Diagnostic]:
    """Configuration and suppression, after every check (spec section 6): comments mark
    the findings they suppress, then configured severities apply. A comment's code is
    only called unused (P601) where the checks that report it ran on the whole set."""
    from .suppress import apply_suppressions

    def judged(code: str) -> bool:
        return complete and (analysed or not code.startswith("P3"))

    marked = apply_suppressions(diags, [*loaded.policy_files, *loaded.test_files], loaded.sources,
                                judged=judged)
    return cfg.apply([*marked, *cfg.diagnostics])


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
