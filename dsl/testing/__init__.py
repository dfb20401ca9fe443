"""`policy test`: examples and assertions about a policy set (spec section 7).

- ``check_test_files(model, loaded)``: the findings about test files (P500–P505, P204, P101).
- ``run_tests(model, loaded)``: run every example and assertion; a ``Report``.
- ``run(paths, …)``: what the `policy test` command does; its output and exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..checking.frontend import compile_paths
from ..checking.render import render
from ..diagnostics import ERROR, Diagnostic, sort_diagnostics
from ..output import CommandResult, Lines
from .checks import check_test_files

if TYPE_CHECKING:
    from .runner import InternalError, Prover, Report, Result, run_tests

__all__ = ["check_test_files", "run_tests", "run", "Prover", "Report", "Result", "InternalError"]

_RUNNER = frozenset({"run_tests", "Prover", "Report", "Result", "InternalError"})
"""Names read from ``runner`` on first use: `policy check` reads test files with
``check_test_files`` alone, without the runner's evaluators, shrinker and report writers."""


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(paths: Sequence[Any], *, coverage: bool = False, min_coverage: float | None = None,
        fmt: str = "text", run: str | None = None, prover: Prover | None = None,
        attack: int | None = None) -> CommandResult:
    """Load the policies and tests under ``paths``, run the tests (those whose name
    contains ``run``, when given) and write the results in ``fmt`` (text, json or junit).
    The exit status is 0 when every test and assertion passes (and coverage reaches
    ``min_coverage``), 1 otherwise. Errors in the policies or the test files are written
    like `policy check` writes them, and give 1. ``prover`` decides the assertions (by
    default ``dsl.analysis.prove_assertion``); ``attack`` is the number of generated
    listings each assertion is attacked with (0: none; default ``runner.ATTACK_EXAMPLES``).
    Raises ``dsl.UsageError`` for a path that does not exist."""
    from . import report as R
    from .runner import ATTACK_EXAMPLES, run_tests

    out = Lines()
    echo = out.write
    model, loaded, diags = compile_paths(list(paths))
    errors = [d for d in diags if d.severity == ERROR]
    errors += [d for d in check_test_files(model, loaded) if d.severity == ERROR]
    errors = sort_diagnostics(errors)
    coverage = coverage or min_coverage is not None
    if errors or model is None:
        _write_diagnostics(errors, fmt, loaded.sources, out)
        return out.result(1)
    if not loaded.test_files and fmt == "text":
        echo("no test files (*_test.policy) among the paths given")
    result = run_tests(model, loaded, run=run, prover=prover,
                       attack_examples=ATTACK_EXAMPLES if attack is None else attack)
    unmatched = run is not None and not result.results  # a filter that runs nothing must not pass
    if unmatched:
        echo(f"no test or assertion has a name that contains {run!r}", err=True)
    locations = _rule_locations(model)
    if fmt == "json":
        echo(R.render_json(result), nl=False)
        if coverage:
            for line in R.coverage_lines(result.coverage, locations, min_coverage):
                echo(line, err=True)
    elif fmt == "junit":
        echo(R.render_junit(result, coverage=coverage, min_coverage=min_coverage, rule_locations=locations), nl=False)
    else:
        echo(R.render_text(result, coverage=coverage, min_coverage=min_coverage, rule_locations=locations), nl=False)
    below = min_coverage is not None and result.coverage.percent < min_coverage
    return out.result(0 if result.failed == 0 and not below and not unmatched else 1)


def _write_diagnostics(errors: list[Diagnostic], fmt: str, sources: dict[str, str], out: Lines) -> None:
    from . import report as R

    if fmt == "json":
        out.write(render(errors, "json", sources), nl=False)
    elif fmt == "junit":
        out.write(R.render_junit(R.empty_report(), coverage=False, min_coverage=None, rule_locations={},
                                 diagnostics_text=render(errors, "text", sources)), nl=False)
    else:
        out.write(render(errors, "text", sources), nl=False)


def _rule_locations(model: Any) -> dict[str, str]:
    out = {}
    for r in model.rules:
        if r.anchor is not None:
            out[r.qid] = f"{r.anchor.file}:{r.anchor.line}"
    return out
