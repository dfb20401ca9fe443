"""The `policy` command: a thin click layer, one function per subcommand. This is the only
module that knows about terminals and exit codes (0 clean, 1 findings, 2 usage)."""

from __future__ import annotations

import difflib
import sys
from typing import Any, NoReturn

import click

from . import __version__
from .diagnostics import ERROR, WARNING, Diagnostic, PolicyError
from .loader import UsageError

FORMATS = ["text", "json", "sarif", "github"]


def _usage(message: str) -> NoReturn:
    click.echo(f"policy: error: {message}", err=True)
    sys.exit(2)


def _render(diags: list[Diagnostic], fmt: str, sources: dict[str, str]) -> None:
    from .render import render, use_color

    out = render(diags, fmt, sources, color=use_color(sys.stdout) if fmt == "text" else False,
                 tool_version=__version__)
    click.echo(out, nl=False)


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
    from .api import ANALYSIS_BUDGET, check_paths

    targets = list(paths) or ["."]
    try:
        diags, sources = check_paths(targets, analysis=not no_analysis, config=config,
                                     analysis_budget=ANALYSIS_BUDGET if budget is None else budget)
    except UsageError as e:
        _usage(str(e))
    _render(diags, fmt, sources)
    shown = [d for d in diags if not d.suppressed]
    if fmt == "text" and not shown:
        click.echo("no problems found")
    failing = {ERROR, WARNING} if strict else {ERROR}
    sys.exit(1 if any(d.severity in failing for d in shown) else 0)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print what would change.")
def fmt(paths: tuple[str, ...], check_only: bool, show_diff: bool) -> None:
    """Rewrite policy files in the canonical layout (comments kept)."""
    from .atomic import write_atomically
    from .config import discover
    from .format import format_file
    from .loader import find_policy_files, is_test_file, read_source
    from .syntax import parse
    from .render import render

    if check_only and show_diff:
        _usage("--check and --diff cannot be used together")
    named = list(paths) or ["."]
    try:
        found = find_policy_files(named)
    except UsageError as e:
        _usage(str(e))
    status = 0
    if found.problems:
        click.echo(render(list(found.problems), "text", {}), nl=False, err=True)
        status = 1
    # The configuration's `exclude` leaves out for fmt what it leaves out of the set.
    for path in discover(named).kept(found.files, named):
        text, problem = read_source(path)
        if problem is not None or text is None:
            click.echo(render([problem] if problem else [], "text", {}), nl=False, err=True)
            status = 1
            continue
        parsed, diags = parse(text, str(path), test_file=is_test_file(path))
        errors = [d for d in diags if d.severity == ERROR]
        if errors:
            click.echo(render(errors, "text", {str(path): text}), nl=False, err=True)
            click.echo(f"{path}: not formatted: fix the syntax errors first", err=True)
            status = 1
            continue
        formatted = format_file(parsed)
        if formatted == text:
            continue
        if check_only:
            click.echo(f"would reformat {path}")
            status = 1
        elif show_diff:
            diff = difflib.unified_diff(text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                                        f"{path}", f"{path} (formatted)")
            click.echo("".join(diff), nl=False)
            status = 1
        else:
            try:
                write_atomically(path, formatted)
            except OSError as e:
                click.echo(f"policy: cannot write {path}: {e.strerror or e}; the file is unchanged", err=True)
                status = 1
                continue
            click.echo(f"reformatted {path}")
    sys.exit(status)


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
    from .api import load
    from .decision import InputError
    from .eval_cmd import run_eval
    from .runtime import parse_at

    if at is not None:
        try:
            parse_at(at)
        except InputError as e:
            _usage(f"--at: {e}")
    try:
        policies = load(list(paths))
    except UsageError as e:
        _usage(str(e))
    except PolicyError as e:
        from .render import render

        click.echo(render(e.diagnostics, "text", {}), nl=False, err=True)
        click.echo("policy: the policy set has errors; run `policy check` for details", err=True)
        sys.exit(1)
    if why_not is not None:
        try:
            why_not = policies.resolve_rule(why_not)
        except InputError as e:
            _usage("--why-not: " + e.message.removeprefix("why_not: "))
    result = run_eval(policies, input_, at=at, prior=prior, explain=explain, why_not=why_not)
    for line in result:
        click.echo(line)
    sys.exit(1 if result.had_errors else 0)


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
    from .testing import run_cli

    try:
        status = run_cli(list(paths) or ["."], coverage=coverage or min_coverage is not None,
                         min_coverage=min_coverage, fmt=fmt, echo=click.echo, run=run)
    except UsageError as e:
        _usage(str(e))
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
