"""The `policy` command: a thin click layer, one function per subcommand. It parses the
arguments, prints what the api returns and exits with the status the api computed
(0 clean, 1 findings); only usage errors (2) are its own. The loops over files, the exit
statuses and the limits live in ``dsl.api`` and ``dsl.testing``."""

from __future__ import annotations

import errno
import gc
import io
import math
import os
import sys
import time
from typing import Any, NoReturn

import click

from . import __version__, api
from .checking.loader import UsageError
from .checking.render import render, use_color
from .diagnostics import Diagnostic, PolicyError
from .output import CommandResult
from .signals import stop_on_signals

FORMATS = ["text", "json", "sarif", "github"]


class _Seconds(click.FloatRange):
    """``--analysis-budget``: a number of seconds above 0 and finite (nan and infinity,
    which float() reads, are no timeout the solver can take)."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{seconds} is not a finite number of seconds", param, ctx)
        return seconds


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
@click.option("--analysis-budget", "budget", type=_Seconds(), default=None,
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


class _Input(click.File):
    """A file to read, ``-`` for standard input: a closed standard input (``<&-``), which
    click cannot open, is a bad value of the option rather than a traceback."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "-" and sys.stdin is None:
            self.fail("standard input is closed: give a file, or send the listings to it", param, ctx)
        return super().convert(value, param, ctx)


@main.command(name="eval")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--input", "input_", required=True, type=_Input("rb"),
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
        _finish(api.set_errors(e.diagnostics))
    out = _buffered_stdout()
    try:
        result.write_to(out)  # buffered, flushed whenever input is awaited
    except UsageError as e:  # the input failed while read
        out.flush()
        _usage(str(e))
    sys.exit(result.exit_code)


def _buffered_stdout() -> Any:
    """The standard output's bytes, buffered: where Python leaves them unbuffered
    (``PYTHONUNBUFFERED``, ``python -u``: many container images set it), ``sys.stdout``
    becomes a buffered stream of the same descriptor, which leaves it open. `policy eval`
    flushes whenever it waits for input, so a reader at the other end of a pipe still sees
    each decision at once (without a buffer each line was a system call of its own); and
    as ``sys.stdout`` it is flushed when the command ends however it ends (^C, SIGTERM),
    and a write that fails is told as any other (``_output_failed``)."""
    out: Any = sys.stdout.buffer
    if not isinstance(out, io.RawIOBase):
        return out
    try:
        buffered = open(out.fileno(), "wb", closefd=False)  # noqa: SIM115 - the descriptor stays the process's
    except (OSError, ValueError):  # (no descriptor: a replaced stream)
        return out
    sys.stdout = io.TextIOWrapper(buffered, encoding=sys.stdout.encoding, errors=sys.stdout.errors)
    return buffered


@main.command(name="scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--input", "inputs", required=True, multiple=True, metavar="FILE",
              help="The catalogue: Parquet, JSON lines or CSV files (by extension), directories of them, or "
                   "globs; repeatable.")
@click.option("--out", required=True, metavar="FILE", help="The decisions: .parquet, .jsonl or .csv.")
@click.option("--at", default=None, help="The instant to decide every record at (default: now).")
@click.option("--at-field", default=None, metavar="PATH", help="Read each record's instant from this field.")
@click.option("--prior-field", default=None, metavar="PATH",
              help="Read each seller's prior violations from this field.")
@click.option("--id-field", default="id", show_default=True, metavar="PATH", help="The field copied to the id column.")
@click.option("--seller-field", default="seller.id", show_default=True, metavar="PATH",
              help="The seller, for the report's most blocked sellers.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that decide, at most (default: one, and one more for each idle core).")
@click.option("--no-pushdown", is_flag=True, help="Decide every record in Python (no SQL narrowing).")
@click.option("--report", default=None, metavar="FILE", help="Write the impact report (JSON) here.")
def scan_(paths: tuple[str, ...], inputs: tuple[str, ...], out: str, at: str | None, at_field: str | None,
          prior_field: str | None, id_field: str, seller_field: str, engine: str, jobs: int | None,
          no_pushdown: bool, report: str | None) -> None:
    """Decide a whole catalogue: one output row per record, in input order."""
    bar = _Progress() if sys.stderr.isatty() else None
    try:
        result = api.scan_command(list(paths), inputs, out, engine=engine, at=at, at_field=at_field,
                                  prior_field=prior_field, id_field=id_field, seller_field=seller_field, jobs=jobs,
                                  use_pushdown=not no_pushdown, report=report, progress=bar)
    except UsageError as e:
        if bar is not None:
            bar.clear()
        _usage(str(e))
    if bar is not None:
        bar.clear()
    _finish(result)


class _Progress:
    """A one-line progress report on standard error: records done, records a second, and
    the time left when the total is known."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.shown < 0.2:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        line = f"{done:,}" + (f"/{total:,}" if total else "") + f" records, {rate:,.0f}/s"
        if total and rate > 0:
            line += f", {max(total - done, 0) / rate:,.0f} s left"
        click.echo("\r" + line + "\x1b[K", nl=False, err=True)

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", nl=False, err=True)


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--coverage", is_flag=True, help="Report the rules that no example made apply.")
@click.option("--min-coverage", type=click.FloatRange(0, 100), default=None,
              help="Fail when fewer than PCT percent of the rules are covered.")
@click.option("--run", "run", metavar="PATTERN", default=None,
              help="Run only the tests and assertions whose name contains PATTERN.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--attack", "attack", type=click.IntRange(min=0), default=200, show_default=True, metavar="N",
              help="Generated listings each assertion is attacked with, besides the analysis (0: none).")
def test_(paths: tuple[str, ...], coverage: bool, min_coverage: float | None, run: str | None, fmt: str,
          attack: int) -> None:
    """Run the examples and assertions of *_test.policy files."""
    from . import testing  # here, not at the top: the runner brings the evaluators, which `policy check` never needs

    try:
        result = testing.run(list(paths) or ["."], coverage=coverage or min_coverage is not None,
                             min_coverage=min_coverage, fmt=fmt, run=run, attack=attack)
    except UsageError as e:
        _usage(str(e))
    _finish(result)


@main.command(name="diff")
@click.argument("versions", nargs=-1, metavar="OLD NEW")
@click.option("--catalogue", "catalogue", multiple=True, metavar="FILE",
              help="Also decide this catalogue (Parquet, CSV, JSON lines; directories, globs) with both versions "
                   "and count the changes; files after the first may follow it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--fail-on", "fail_on", metavar="KIND,...", default=None,
              help="Exit 1 only for changes of these kinds (block→allow or block-allow, penalty-lighter, ...).")
@click.option("--analysis-budget", "budget", type=_Seconds(), default=None,
              metavar="SECONDS", help="Time the solver may take in all; what it leaves is P399.  [default: 60]")
@click.option("--at", default=None, help="The instant to decide the catalogue at (default: now).")
@click.option("--id-field", default="id", show_default=True, metavar="PATH",
              help="The catalogue field that names a listing in the examples.")
def diff_(versions: tuple[str, ...], catalogue: tuple[str, ...], fmt: str, fail_on: str | None,
          budget: float | None, at: str | None, id_field: str) -> None:
    """Compare two versions of a policy set: which listings get another decision."""
    from .versions import parse_kinds
    from .versions import render as render_diff  # here, not at the top: the solver

    if len(versions) < 2 or (len(versions) > 2 and not catalogue):
        _usage("policy diff takes two versions, OLD and NEW (paths, or REV:PATH)")
    kinds = None
    if fail_on is not None:
        try:
            kinds = parse_kinds(fail_on)
        except ValueError as e:
            _usage(f"--fail-on: {e}")
    try:
        result = api.diff(versions[0], versions[1], catalogue=[*catalogue, *versions[2:]], at=at, id_field=id_field,
                          analysis_budget=api.ANALYSIS_BUDGET if budget is None else budget)
    except UsageError as e:
        _usage(str(e))
    except PolicyError as e:
        click.echo(render(e.diagnostics, "text", {}), nl=False, err=True)
        _usage("a version has errors; run `policy check` on it for details")
    click.echo(render_diff(result, fmt), nl=False)
    sys.exit(result.exit_code(kinds))


@main.command(name="lsp")
@click.option("--tcp", "port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Listen on 127.0.0.1:PORT instead of standard input and output (for debugging).")
def lsp_(port: int | None) -> None:
    """Run the language server (editors start it; docs/editors.md)."""
    from .lsp import serve  # here, not at the top: pygls, which no other command needs

    try:
        serve(port)
    except OSError as e:
        if port is None:
            raise
        _usage(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}")


def run() -> None:
    """The `policy` command as its own process runs it (the console script, ``python -m
    dsl``): ``main``, then the heap frozen (``gc.freeze``), so that the interpreter's exit
    does not walk everything the command built with its last collections (0.1 s of a
    1.6 s catalogue scan). Tests call ``main`` in their own process, which goes on."""
    if sys.stdout is None:  # started with its standard output closed (``>&-``)
        _usage("standard output is closed: nothing can be written")
    stop_on_signals()  # ^C and SIGTERM end the command as exceptions; its cleanups hold them back
    try:
        main()
    except OSError as e:
        if not _output_failed_with(e):
            raise
        _output_failed(e)
    except RuntimeError as e:
        if str(e) != _INTERRUPTED:
            raise
        click.echo("Aborted!", err=True)  # as click tells an interrupt: the scan's files are cleaned up by now
        sys.exit(1)
    finally:
        gc.freeze()


_INTERRUPTED = "Query interrupted"
"""What DuckDB raises (a plain RuntimeError, having taken the signal itself) when ^C
stops one of its queries in this thread (the scan's sample of its input, say)."""


def _output_failed_with(e: OSError) -> bool:
    """Whether ``e`` is a write to the standard output or error that failed: a full disk
    or a file size limit (``>/dev/full``; only writes fail so, and the commands' own files
    are usage errors of theirs), or a descriptor that cannot be written where one of the
    two cannot (reading a closed input fails so too, and stays an error)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    streams = (sys.stdout, sys.stderr)
    if e.errno == errno.EIO and any(s is not None and s.isatty() for s in streams):
        return True  # a terminal hung up
    return e.errno in (errno.EBADF, errno.EIO) and not all(_writable(s) for s in streams)


def _writable(stream: Any) -> bool:
    try:
        import fcntl  # (not on Windows)
    except ImportError:  # pragma: no cover - Windows: no way to tell
        return True
    try:
        mode = fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) & os.O_ACCMODE
    except (OSError, ValueError, AttributeError):
        return False
    return mode in (os.O_WRONLY, os.O_RDWR)


def _output_failed(e: OSError) -> NoReturn:
    """A write to the standard output (or error) failed: a usage error (exit status 2),
    without a traceback; what is left unflushed goes nowhere (the interpreter's exit would
    try to write it again), and so does the message where standard error is the stream
    that failed."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError, AttributeError):  # no descriptor to replace
                pass
    try:
        click.echo(f"policy: error: cannot write the output: {e.strerror or e}", err=True)
    except (OSError, ValueError):
        pass
    sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    run()
