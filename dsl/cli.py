"""The `policy` command: a thin click layer, one function per subcommand. It parses the
arguments, prints what the api returns and exits with the status the api computed
(0 clean, 1 findings); only usage errors (2) are its own. The loops over files, the exit
statuses and the limits live in ``dsl.api`` and ``dsl.testing``."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from . import __version__, api
from .checking.loader import UsageError
from .checking.render import render, use_color
from .diagnostics import Diagnostic, PolicyError
from .output import CommandResult

FORMATS = ["text", "json", "sarif", "github"]


def _usage(message: str) -> NoReturn:
    click.echo(f"policy: error: {message}", err=True)
    sys.exit(2)


def _render(diags: list[Diagnostic], fmt: str, sources: dict[str, str]) -> None:
    out = render(diags, fmt, sources, color=use_color(sys.stdout) if fmt == "text" else False,
                 tool_version=__version__)
    click.echo(out, nl=False)


def _finish(result: CommandResult) -> NoReturn:
    for line in result.lines:
        click.echo(line.text, nl=line.nl, err=line.err)
    sys.exit(result.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policy")
def main() -> None:
    """Policies for marketplace compliance: check them, format them, decide listings, test."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="How findings are written.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--no-analysis", is_flag=True, help="Skip the consistency analysis (P3xx).")
@click.option("--config", "config", type=click.Path(path_type=str, dir_okay=False), default=None,
              help="The configuration file (default: the nearest policy.toml, or pyproject.toml "
                   "with [tool.policy], from the first path up).")
@click.option("--analysis-budget", "budget", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Time the consistency analysis may take in all; the questions left "
                                      "when it is used up are reported as P399.  [default: 60]")
def check(paths: tuple[str, ...], fmt: str, strict: bool, no_analysis: bool, config: str | None,
          budget: float | None) -> None:
    """Check policy files: syntax, names, types, and consistency."""
    try:
        report = api.check_report(list(paths) or ["."], analysis=not no_analysis, config=config,
                                  analysis_budget=api.ANALYSIS_BUDGET if budget is None else budget,
                                  strict=strict)
    except UsageError as e:
        _usage(str(e))
    _render(list(report.diagnostics), fmt, report.sources)
    if fmt == "text" and not report.shown:
        click.echo("no problems found")
    sys.exit(report.exit_code)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print what would change.")
def fmt(paths: tuple[str, ...], check_only: bool, show_diff: bool) -> None:
    """Rewrite policy files in the canonical layout (comments kept)."""
    if check_only and show_diff:
        _usage("--check and --diff cannot be used together")
    try:
        result = api.format_paths(list(paths) or ["."], "check" if check_only else "diff" if show_diff else "write")
    except UsageError as e:
        _usage(str(e))
    _finish(result)


@main.command(name="eval")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--input", "input_", required=True, type=click.File("rb"),
              help="Listings: a JSON object, a JSON array, or JSON lines; - for standard input.")
@click.option("--at", default=None, help="The instant to decide at (default: now); a date or date-time.")
@click.option("--prior", default=0, type=click.IntRange(min=0), show_default=True,
              help="Earlier violations of the seller.")
@click.option("--explain", is_flag=True, help="Add an explanation to every decision.")
@click.option("--why-not", "why_not", metavar="RULE", default=None,
              help="Explain in full why RULE did or did not apply (implies --explain): a qualified id, "
                   "or a rule's name when only one policy has a rule of that name.")
def eval_(paths: tuple[str, ...], input_: Any, at: str | None, prior: int, explain: bool,
          why_not: str | None) -> None:
    """Decide listings: one decision per line, in input order."""
    try:
        result = api.eval_paths(list(paths), input_, at=at, prior=prior, explain=explain, why_not=why_not)
    except UsageError as e:
        _usage(str(e))
    except PolicyError as e:
        click.echo(render(e.diagnostics, "text", {}), nl=False, err=True)
        click.echo("policy: the policy set has errors; run `policy check` for details", err=True)
        sys.exit(1)
    for line in result:
        click.echo(line)
    sys.exit(result.exit_code)


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--coverage", is_flag=True, help="Report the rules that no example made apply.")
@click.option("--min-coverage", type=click.FloatRange(0, 100), default=None,
              help="Fail when fewer than PCT percent of the rules are covered.")
@click.option("--run", "run", metavar="PATTERN", default=None,
              help="Run only the tests and assertions whose name contains PATTERN.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
def test_(paths: tuple[str, ...], coverage: bool, min_coverage: float | None, run: str | None, fmt: str) -> None:
    """Run the examples and assertions of *_test.policy files."""
    from . import testing  # here, not at the top: the runner brings the evaluators, which `policy check` never needs

    try:
        result = testing.run(list(paths) or ["."], coverage=coverage or min_coverage is not None,
                             min_coverage=min_coverage, fmt=fmt, run=run)
    except UsageError as e:
        _usage(str(e))
    _finish(result)


if __name__ == "__main__":  # pragma: no cover
    main()
