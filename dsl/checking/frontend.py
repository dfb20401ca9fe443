"""The front end as one call: read, parse and check the files under some paths, giving the
checked model (``dsl.model.PolicySet``), what was loaded and the diagnostics. Everything
that starts from paths builds on it: ``dsl.api`` (load, check, the commands) and
``dsl.testing`` (the `policy test` run)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..diagnostics import Diagnostic, has_errors, sort_diagnostics
from ..model import PolicySet
from .config import Config, discover
from .loader import Loaded, UsageError, load_paths
from .passes import build

__all__ = ["PathLike", "as_paths", "compile_loaded", "compile_paths"]

PathLike = str | Path


def as_paths(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    """``paths`` as a list: one path, or an iterable of them."""
    if isinstance(paths, (str, Path)):
        return [paths]
    return list(paths)


def compile_paths(paths: PathLike | Iterable[PathLike], *, config: Config | None = None,
                  cache: bool = True, policies: bool = False) -> tuple[PolicySet | None, Loaded, list[Diagnostic]]:
    """Read, parse and check the policy files under ``paths`` (less those the
    configuration excludes: ``config``, else the one found from the first path). Returns
    the checked model (None when there are errors), what was loaded, and the front end's
    diagnostics. ``cache``: whether the parses are kept in (and read from) the parse
    cache (``dsl.syntax.cache``); a temporary copy's are not worth keeping. ``policies``:
    a set to decide with, so that paths holding test files and no policy file, or whose
    policy files the configuration all excludes, are a ``UsageError``, as a directory
    without policy files is (its empty set allows everything; ``policy check`` and
    ``policy test`` report such test files as P504)."""
    paths = as_paths(paths)
    cfg = config if config is not None else discover(paths)
    loaded = load_paths(paths, cfg, cache=cache)
    unread = any(d.code.startswith("P0") for d in loaded.diagnostics)  # a policy file, maybe: said as it is
    if policies and not loaded.policy_files and not unread:
        named = ", ".join(f"'{p}'" for p in paths)
        if loaded.test_files:
            raise UsageError(f"no policy files under {named}, only test files (*_test.policy)")
        raise UsageError(f"no policy files under {named}" + (f": the configuration ({cfg.name}) excludes every one"
                                                            if cfg.name else ""))
    model, diags = compile_loaded(loaded)
    broken = cfg.errors()
    if broken:  # a configuration that is broken (P600) may leave out files, or keep them: no set
        return None, loaded, sort_diagnostics([*diags, *broken])
    return model, loaded, diags


def compile_loaded(loaded: Loaded) -> tuple[PolicySet | None, list[Diagnostic]]:
    """Check files already read and parsed (``load_paths``, or ``loader.loaded_from`` for
    an editor's buffers): the checked model (None when there are errors) and every
    diagnostic of the front end, the reading's included."""
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
    return model, sort_diagnostics(diags)
