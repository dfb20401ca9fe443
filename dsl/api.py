"""The Python interface: ``load``, ``check``, ``format_source`` (spec section 8), and the
commands as calls that return their output and exit status as data (``format_paths``,
``check_report``, ``eval_paths``; `policy test` is ``dsl.testing.run``): ``dsl.cli`` only
parses arguments and prints."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import attrs

from .atomic import write_atomically
from .checking.config import NO_CONFIG, Config, discover, read_config
from .checking.frontend import PathLike, as_paths, compile_loaded, compile_paths
from .checking.loader import (
    Loaded,
    UsageError,
    find_policy_files,
    is_test_file,
    load_paths,
    parse_source,
    read_source,
)
from .checking.render import render
from .checking.suppress import apply_suppressions
from .diagnostics import ERROR, WARNING, Diagnostic, PolicyError, has_errors, sort_diagnostics
from .model import PolicySet
from .output import CommandResult, Lines
from .syntax.format import format_file
from .syntax.format import format_source as _format_source

if TYPE_CHECKING:  # Policies pulls in the evaluators; load imports it only when used
    from .eval_stream import EvalRun
    from .evaluate.policies import Policies
    from .scan import ScanResult
    from .versions import Diff

__all__ = ["ANALYSIS_BUDGET", "CheckReport", "check", "check_loaded", "check_paths", "check_report", "compile_paths",
           "diff", "eval_paths", "format_paths", "format_source", "load", "scan_command", "scan_paths", "set_errors"]

def load(paths: PathLike | Iterable[PathLike]) -> Policies:
    """Load a policy set for deciding: ``dsl.load("policies/").decide(listing, at=…)``.
    Raises ``dsl.PolicyError`` (with ``.diagnostics``) when the set has errors; warnings
    do not stop loading. Raises ``dsl.UsageError`` for a missing path, or paths without
    policy files (test files only among them)."""
    from .evaluate.policies import Policies  # here, not at the top: `policy check` never needs the evaluators

    model, _loaded, diags = compile_paths(paths, policies=True)
    if model is None:
        raise PolicyError(diags)
    return Policies(model)


ANALYSIS_BUDGET = 60.0
"""Seconds the consistency analysis of ``check`` may take in all, by default."""


def _check_budget(seconds: float | None) -> float | None:
    """``seconds`` when it can bound the analysis's time: a finite number, 0 or more, or
    None (no bound). Raises ``dsl.UsageError`` else (nan and infinity too: a solver's
    timeout is a whole number of milliseconds)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
        raise UsageError(f"analysis budget {seconds!r}: expected a finite number of seconds, 0 or more (or None)")
    return seconds


def check(paths: PathLike | Iterable[PathLike], *, analysis: bool = True,
          config: PathLike | None = None, analysis_budget: float | None = ANALYSIS_BUDGET) -> list[Diagnostic]:
    """Every finding of ``policy check``: syntax, names, types and, when the set has no
    errors, the consistency analysis (P3xx). The configuration (``config``, else the
    nearest ``policy.toml`` or ``pyproject.toml`` with ``[tool.policy]``) sets severities
    and drops findings turned ``off``; findings that a ``# policy: ignore[…]`` comment
    suppresses stay in the list with ``suppressed_by`` set. Raises ``dsl.UsageError``
    when ``config`` cannot be read. ``analysis_budget`` bounds the analysis's time in
    seconds (None: no bound; else a finite number, 0 or more, or ``dsl.UsageError``); the
    questions it leaves are P399 findings."""
    return check_paths(paths, analysis=analysis, config=config, analysis_budget=analysis_budget)[0]


def check_paths(paths: PathLike | Iterable[PathLike], *, analysis: bool = True,
                config: PathLike | None = None,
                analysis_budget: float | None = ANALYSIS_BUDGET) -> tuple[list[Diagnostic], dict[str, str]]:
    """``check``, and the sources read (for rendering excerpts; the configuration file's
    too)."""
    _check_budget(analysis_budget)
    cfg = _config(as_paths(paths), config)
    loaded = load_paths(as_paths(paths), cfg)
    diags = check_loaded(loaded, cfg, analysis=analysis, analysis_budget=analysis_budget)
    sources = dict(loaded.sources)
    if cfg.path is not None:
        sources[cfg.name] = cfg.text
    return diags, sources


def check_loaded(loaded: Loaded, cfg: Config = NO_CONFIG, *, analysis: bool = True,
                 analysis_budget: float | None = ANALYSIS_BUDGET,
                 compiled: tuple[PolicySet | None, list[Diagnostic]] | None = None) -> list[Diagnostic]:
    """``check`` of files already read and parsed (``load_paths``, or
    ``checking.loader.loaded_from`` for an editor's buffers) under the configuration
    ``cfg``: the same checks, configuration and suppressions, sorted. ``compiled``:
    ``compile_loaded(loaded)`` where the caller has it already (it is not changed)."""
    _check_budget(analysis_budget)
    model, found = compiled if compiled is not None else compile_loaded(loaded)
    diags = list(found)
    analysed = analysis and model is not None
    if analysis and model is not None:
        from .analysis import analyze  # here, not at the top: the analysis brings z3

        diags.extend(analyze(model, budget_seconds=analysis_budget))
    if model is not None or not has_errors(diags):
        diags.extend(_check_tests(model, loaded))
    return sort_diagnostics(_settle(diags, loaded, cfg, model is not None, analysed))


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
    only called unused (P601) where the checks that report it ran on the whole set
    (``judged``) and, for the analysis's codes, answered in its statement (no P399 there:
    ``apply_suppressions`` sees to that)."""

    def judged(code: str) -> bool:
        return complete and (analysed or not code.startswith("P3"))

    marked = apply_suppressions(diags, [*loaded.policy_files, *loaded.test_files], loaded.sources,
                                judged=judged)
    return cfg.apply([*marked, *cfg.diagnostics])


def _check_tests(model: PolicySet | None, loaded: Loaded) -> list[Diagnostic]:
    if not loaded.test_files:
        return []
    # here, not at the top: the test runner brings the evaluators and the report writers,
    # which `import dsl` and a check without test files do not need
    from .testing import check_test_files

    return list(check_test_files(model, loaded))


def format_source(text: str) -> str:
    """The canonical layout of a policy text; raises PolicyError on syntax errors."""
    return _format_source(text)


# ---------------------------------------------------------------- the commands


@attrs.frozen
class CheckReport:
    """What `policy check` found: the ``diagnostics`` (suppressed ones included, marked),
    the ``sources`` read (for excerpts) and the exit status."""

    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, str]
    exit_code: int

    @property
    def shown(self) -> list[Diagnostic]:
        """The findings to show: those no comment suppresses."""
        return [d for d in self.diagnostics if not d.suppressed]


def check_report(paths: PathLike | Iterable[PathLike], *, analysis: bool = True, config: PathLike | None = None,
                 analysis_budget: float | None = ANALYSIS_BUDGET, strict: bool = False) -> CheckReport:
    """`policy check`: ``check_paths``, and the exit status: 1 when a finding shown is an
    error (or a warning, when ``strict``), else 0. Raises ``dsl.UsageError`` for a missing
    path or an unreadable configuration."""
    diags, sources = check_paths(paths, analysis=analysis, config=config, analysis_budget=analysis_budget)
    failing = {ERROR, WARNING} if strict else {ERROR}
    status = 1 if any(d.severity in failing for d in diags if not d.suppressed) else 0
    return CheckReport(tuple(diags), sources, status)


FormatMode = Literal["write", "check", "diff"]


def format_paths(paths: PathLike | Iterable[PathLike], mode: FormatMode = "write") -> CommandResult:
    """`policy fmt`: every policy and test file under ``paths`` (less what the
    configuration's ``exclude`` leaves out of the set) in the canonical layout. ``write``
    rewrites the files that change (atomically; "reformatted PATH"); ``check`` names them
    ("would reformat PATH"); ``diff`` prints a unified diff of each. The exit status is 1
    when a file could not be read, parsed or written, or (``check``, ``diff``) is not
    formatted, else 0. Raises ``dsl.UsageError`` for a missing path."""
    named = as_paths(paths)
    found = find_policy_files(named)
    out = Lines()
    status = 0
    # The configuration's `exclude` leaves out for fmt what it leaves out of the set.
    cfg = discover(named)
    broken = cfg.errors()
    if broken:  # (its exclusions may not apply: the files it leaves out would be rewritten)
        out.write(render(broken, "text", {cfg.name: cfg.text}), nl=False, err=True)
        out.write("policy: the configuration has errors; no file was formatted", err=True)
        return out.result(1)
    found = found.kept(cfg, named)
    if found.problems:
        out.write(render(list(found.problems), "text", {}), nl=False, err=True)
        status = 1
    for path in found.files:
        status = max(status, _format_one(path, mode, out))
    return out.result(status)


def _unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff that ``patch`` and ``git apply`` take: lines end at ``\n`` only (as
    the lexer's do; ``str.splitlines`` also ends one at a form feed, U+0085 or U+2028), and
    a last line without one is followed by ``\\ No newline at end of file``."""
    import difflib  # here, not at the top: only `policy fmt --diff` needs it

    def ended(text: str) -> list[str]:  # each with its \n, the last maybe without
        *whole, last = text.split("\n")
        return [line + "\n" for line in whole] + ([last] if last else [])

    out = []
    for line in difflib.unified_diff(ended(old), ended(new), old_name, new_name):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a file saved again: its inode, size and time of change (None: gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _format_one(path: Path, mode: FormatMode, out: Lines) -> int:
    """Format one file as ``format_paths`` does; its exit status."""
    read = _stamp(path)
    text, problem = read_source(path)
    if problem is not None or text is None:
        out.write(render([problem] if problem else [], "text", {}), nl=False, err=True)
        return 1
    parsed, diags = parse_source(str(path), text)
    errors = [d for d in diags if d.severity == ERROR]
    if errors:
        out.write(render(errors, "text", {str(path): text}), nl=False, err=True)
        out.write(f"{path}: not formatted: fix the syntax errors first", err=True)
        return 1
    formatted = format_file(parsed)
    if formatted == text:
        return 0
    if mode == "check":
        out.write(f"would reformat {path}")
        return 1
    if mode == "diff":
        out.write(_unified_diff(text, formatted, f"{path}", f"{path} (formatted)"), nl=False)
        return 1
    if _stamp(path) != read:  # saved by an editor meanwhile: its edit would be lost
        out.write(f"policy: {path} changed while it was being formatted; it is left as it is (run fmt again)",
                  err=True)
        return 1
    try:
        write_atomically(path, formatted)
    except OSError as e:
        out.write(f"policy: cannot write {path}: {e.strerror or e}; the file is unchanged", err=True)
        return 1
    out.write(f"reformatted {path}")
    return 0


def eval_paths(paths: PathLike | Iterable[PathLike], input_stream: IO[bytes] | IO[str], *, at: str | None = None,
               prior: Any = 0, explain: bool = False, why_not: str | None = None) -> EvalRun:
    """`policy eval`: load the policies under ``paths`` and decide the records of
    ``input_stream`` (see ``dsl.eval_stream``): iterate the result for the output lines, then
    read its ``exit_code``. Raises ``dsl.UsageError`` for an ``at`` that cannot be read, a
    missing path or a ``why_not`` that names no rule (in that order), and
    ``dsl.PolicyError`` when the set has errors."""
    # here, not at the top: the evaluators, which `policy check` never needs
    from .eval_stream import check_at, run_eval
    from .evaluate.outcome import InputError

    check_at(at)
    policies = load(paths)
    if why_not is not None:
        try:
            why_not = policies.resolve_rule(why_not)
        except InputError as e:
            raise UsageError("--why-not: " + e.message.removeprefix("why_not: ")) from None
    return run_eval(policies, input_stream, at=at, prior=prior, explain=explain, why_not=why_not)


def scan_paths(paths: PathLike | Iterable[PathLike], inputs: Iterable[str], out: str, *, engine: str = "duckdb",
               **options: Any) -> ScanResult:
    """`policy scan`: load the policies under ``paths`` and decide every record of
    ``inputs`` into ``out`` (``dsl.scan.scan`` takes the ``options``: ``at``, ``at_field``,
    ``prior_field``, ``id_field``, ``seller_field``, ``jobs``, ``use_pushdown``,
    ``batch_size``, ``report``, ``progress``, ``workers``). Raises ``dsl.UsageError`` for
    what stops a scan (``engine="spark"`` without pyspark or Java, an input that cannot be read, a
    missing ``--at-field`` column, an output that cannot be written) and
    ``dsl.PolicyError`` when the set has errors."""
    # here, not at the top: DuckDB, pyarrow and the evaluators, which `policy check` never needs
    from .evaluate.policies import Policies
    from .scan.run import open_inputs, scan

    if engine not in ("duckdb", "spark"):
        raise UsageError(f"--engine {engine}: unknown engine (duckdb or spark)")
    inputs = list(inputs)
    # DuckDB reads the inputs' schema meanwhile (without the GIL: some 30 ms of the start)
    opening = open_inputs(inputs, options.get("at_field")) if engine == "duckdb" else None
    try:
        model, loaded, diags = compile_paths(as_paths(paths), policies=True)
        if model is None:
            raise PolicyError(diags)
        policies = Policies(model)
        sources = {name: text for name, text in loaded.sources.items() if not is_test_file(name)}
        if engine == "spark":
            from .scan.spark_engine import scan_spark  # pyspark only when asked for

            return scan_spark(policies, sources, inputs, out, **options)
        return scan(policies, sources, inputs, out, opening=opening, **options)
    finally:
        if opening is not None:
            opening.close()


def set_errors(diags: Iterable[Diagnostic]) -> CommandResult:
    """What `policy eval` and `policy scan` write for a policy set with errors: the
    diagnostics and a line that sends to `policy check`, on standard error; exit status 1."""
    lines = Lines()
    lines.write(render(list(diags), "text", {}), nl=False, err=True)
    lines.write("policy: the policy set has errors; run `policy check` for details", err=True)
    return lines.result(1)


def scan_command(paths: PathLike | Iterable[PathLike], inputs: Iterable[str], out: str, *, engine: str = "duckdb",
                 **options: Any) -> CommandResult:
    """`policy scan` as the command line runs it: ``scan_paths``, then the report's table
    and a closing line on standard error (exit status 0, or 1 when a record is in error);
    a set with errors is its diagnostics and exit status 1. Raises ``dsl.UsageError`` as
    ``scan_paths`` does."""
    from .scan import render_table  # here, not at the top: DuckDB and pyarrow

    try:
        result = scan_paths(paths, inputs, out, engine=engine, **options)
    except PolicyError as e:
        return set_errors(e.diagnostics)
    lines = Lines()
    for note in result.notes:
        lines.write(f"policy: warning: {note}", err=True)
    for line in render_table(result.report):
        lines.write(line, err=True)
    lines.write(f"{result.records:,} records in {result.seconds:.1f} s -> {out}", err=True)
    return lines.result(result.exit_code)


def diff(old: PathLike | Policies | PolicySet, new: PathLike | Policies | PolicySet, *,
         catalogue: Iterable[str] = (), at: str | None = None, id_field: str = "id",
         analysis_budget: float | None = ANALYSIS_BUDGET) -> Diff:
    """`policy diff`: what changes between two versions of a policy set (docs/diff.md).
    ``old`` and ``new`` are each a path (``str`` or ``os.PathLike``), ``REV:PATH`` read
    from git (``"main:policies/"``), what ``dsl.load`` returns (``Policies``), or a checked
    ``PolicySet`` (``Policies.policy_set``); another type is a ``TypeError``. Returns a
    ``dsl.versions.Diff``: ``equivalent`` (proved), each kind of change with a witness
    replayed through both versions, each rule added, removed or changed with a witness or
    a proof, the questions left undecided (P399), and with
    ``catalogue`` files the listings whose decision changes, decided at ``at`` (default
    now). ``analysis_budget`` bounds the solver's time in seconds (None: no bound; else a
    finite number, 0 or more). Raises ``dsl.UsageError`` (a bad argument, a path that names
    nothing) and ``dsl.PolicyError`` (a version with errors)."""
    # here, not at the top: the solver, which `import dsl` does not need
    from .versions.run import diff_paths

    _check_budget(analysis_budget)
    return diff_paths(old, new, catalogue=catalogue, at=at, id_field=id_field, analysis_budget=analysis_budget)
