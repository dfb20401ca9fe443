"""The configuration of `policy check` (spec section 6): ``[tool.policy]`` in a
``pyproject.toml``, or the same keys at the top level of a ``policy.toml``.

    [tool.policy]
    severity = { P301 = "error", P304 = "off" }
    exclude = ["tests/golden"]
    per-file = { "legacy/**" = { P400 = "off" } }

Configuration changes how findings are reported, never which checks run. Reading it gives
data and P600 diagnostics (a bad entry is left out; the rest still applies)."""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..diagnostics import CODES, Diagnostic, did_you_mean, is_fixed, is_severity, make
from ..span import Span
from .tomlpos import KeyPath, Place, line_column, locate

OFF = "off"
SEVERITIES = ("error", "warning", "info", OFF)
KEYS = ("severity", "exclude", "per-file")

CONFIG_FILE = "policy.toml"
PYPROJECT = "pyproject.toml"

Severities = tuple[tuple[str, str], ...]


@attrs.frozen
class Config:
    """A configuration read from ``path`` (None when there is none). ``name`` is how
    findings name the file; ``text`` its content (for excerpts)."""

    path: Path | None = None
    name: str = ""
    text: str = ""
    severity: Severities = ()
    exclude: tuple[str, ...] = ()
    per_file: tuple[tuple[str, Severities], ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def root(self) -> Path | None:
        """The folder that ``exclude`` and ``per-file`` globs are relative to."""
        return self.path.resolve().parent if self.path else None

    def excludes(self, path: str | Path, below: str | Path | None = None) -> bool:
        """Whether ``path``, found inside the folder ``below`` (a path named on the command
        line), is left out: an ``exclude`` glob matches it or a folder between ``below``
        and it. What is named on the command line is never left out."""
        if not self.exclude or self.root is None:
            return False
        parts = _relative_parts(path, self.root)
        if parts is None:
            return False
        floor = _relative_parts(below, self.root) if below is not None else None
        first = len(floor) if floor is not None and parts[:len(floor)] == floor else 0
        return any(_glob_matches(g, parts, first) for g in self.exclude)

    def kept(self, files: Iterable[Path], named: Iterable[str | Path]) -> list[Path]:
        """``files``, found under the ``named`` paths, less those that ``exclude`` leaves
        out. A file is left out when every named folder that holds it leaves it out."""
        if not self.exclude:
            return list(files)
        folders = [Path(os.path.abspath(n)) for n in named]
        out = []
        for f in files:
            here = Path(os.path.abspath(f))
            holders = [n for n in folders if n == here or n in here.parents]
            if not holders or any(n == here or not self.excludes(here, below=n) for n in holders):
                out.append(f)
        return out

    def severity_for(self, code: str, file: str | None) -> str | None:
        """The configured severity (or ``off``) of ``code`` in ``file``; None for the
        code's own. A matching ``per-file`` entry wins (the last one that sets the code),
        then ``severity``."""
        if file is not None and self.per_file and self.root is not None:
            parts = _relative_parts(file, self.root)
            if parts is not None:
                for glob, table in reversed(self.per_file):
                    level = dict(table).get(code)
                    if level is not None and _glob_matches(glob, parts, 0):
                        return level
        return dict(self.severity).get(code)

    def apply(self, diags: Iterable[Diagnostic]) -> list[Diagnostic]:
        """``diags`` with the configured severities: ``off`` drops a finding."""
        out = []
        for d in diags:
            level = self.severity_for(d.code, d.file)
            if level == OFF:
                continue
            out.append(attrs.evolve(d, severity=level) if is_severity(level) and level != d.severity else d)
        return out

    def errors(self) -> list[Diagnostic]:
        """The configuration's own findings that are errors as it sets them (a P600 at
        ``error``): it is broken, and its ``exclude`` may not apply; no set is loaded from
        it, no file formatted."""
        return [d for d in self.apply(self.diagnostics) if d.severity == "error"]


NO_CONFIG = Config()


# ------------------------------------------------------------------ finding it


def find_config(start: str | Path) -> Path | None:
    """The nearest ``policy.toml``, or ``pyproject.toml`` with a ``[tool.policy]`` table,
    in the folder of ``start`` or above it (``policy.toml`` first within a folder)."""
    here = Path(start).resolve()
    folder = here if here.is_dir() else here.parent
    for d in (folder, *folder.parents):
        if (d / CONFIG_FILE).is_file():
            return d / CONFIG_FILE
        if (d / PYPROJECT).is_file() and _has_policy_table(d / PYPROJECT):
            return d / PYPROJECT
    return None


def _has_policy_table(path: Path) -> bool:
    """Whether a ``pyproject.toml`` configures policy; one that cannot be read or is not
    UTF-8 may, and is taken as ours (``read_config`` says what is wrong with it: P600),
    never passed over for a configuration further up."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True
    try:
        tool = tomllib.loads(text.removeprefix("\ufeff")).get("tool")
    except tomllib.TOMLDecodeError:  # broken: ours if it seems to have the table
        return re.search(r"^\s*\[\s*tool\s*\.\s*policy\b|^\s*tool\s*\.\s*policy\b", text, re.M) is not None
    return isinstance(tool, dict) and "policy" in tool


def discover(paths: Iterable[str | Path]) -> Config:
    """The configuration for a command given ``paths``: searched from the first."""
    first = next(iter(paths), None)
    found = find_config(first if first is not None else ".")
    return read_config(found, found=True) if found is not None else NO_CONFIG


def display_name(path: Path) -> str:
    """How findings name a configuration file: relative to the working folder when it is
    inside it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


# ------------------------------------------------------------------ reading it


def read_config(path: str | Path, name: str | None = None, *, found: bool = False) -> Config:
    """Read and validate a configuration file; problems become P600 diagnostics.
    Raises OSError when the file cannot be read, but for a file ``found`` (by
    ``discover``, not named): a P600 then."""
    path = Path(path)
    name = name if name is not None else display_name(path)
    if found:
        try:
            data = path.read_bytes()
        except OSError as e:  # found, not named (``--config`` raises): its rules would silently not apply
            return Config(path, name, "", diagnostics=(make(
                "P600", f"the configuration cannot be read: {e.strerror or e}", Span(name, 1, 1, 1, 2),
                hint="make it readable, or remove it"),))
    else:
        data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return Config(path, name, "", diagnostics=(make(
            "P600", "the configuration is not UTF-8", Span(name, line, 1, line, 2),
            hint="save the file as UTF-8"),))
    if text.startswith("\ufeff"):  # a byte order mark (an editor's), as a policy file may start with: a space
        text = " " + text[1:]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return Config(path, name, text, diagnostics=(_syntax_error(e, name, text),))
    reader = _Reader(name, text)
    if path.name == PYPROJECT:
        section: Any = doc.get("tool", {}).get("policy", {})
        where: KeyPath = ("tool", "policy")
        if not isinstance(section, dict):
            reader.problem(where, "'tool.policy' must be a table", 'write it as [tool.policy]')
            section = {}
    else:
        section, where = doc, ()
    return reader.read(path, section, where)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _syntax_error(e: tomllib.TOMLDecodeError, name: str, text: str) -> Diagnostic:
    message = str(e)
    m = _TOML_POSITION.search(message)
    if m:
        line, column = int(m[1]), int(m[2])
        message = message[:m.start()]
    else:  # "at end of document"
        line, column = line_column(text, len(text))
        message = re.sub(r"\s*\(at end of document\)\s*$", "", message)
    return make("P600", f"the configuration is not valid TOML: {message[:1].lower()}{message[1:]}",
                Span(name, line, column, line, column + 1),
                hint="see https://toml.io for the syntax")


@attrs.frozen
class _Problem:
    start: int
    end: int
    message: str
    hint: str | None


class _Reader:
    """Validates the keys of one configuration table, collecting problems. The text is
    scanned for positions only when there is a problem to point at."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self.problems: list[_Problem] = []

    @functools.cached_property
    def places(self) -> Mapping[KeyPath, Place]:
        return locate(self.text)

    def place(self, path: KeyPath) -> Place:
        while path and path not in self.places:
            path = path[:-1]
        return self.places.get(path, Place(0, 0, 0, 0))

    def problem(self, path: KeyPath, message: str, hint: str | None = None, *, value: bool = False,
                entry: bool = False) -> None:
        """A problem with the key at ``path`` (its value with ``value``, key and value with
        ``entry``)."""
        p = self.place(path)
        start = p.value_start if value else p.key_start
        end = p.key_end if not (value or entry) else p.value_end
        self.problems.append(_Problem(start, max(end, start + 1), message, hint))

    def read(self, path: Path, section: dict[str, Any], where: KeyPath) -> Config:
        for key in section:
            if key not in KEYS:
                guess = did_you_mean(key, KEYS)
                self.problem(where + (key,), f"unknown configuration key '{key}'",
                             f"did you mean '{guess}'?" if guess else f"the keys are {', '.join(KEYS)}")
        severity = self.severities(section.get("severity", {}), where + ("severity",))
        exclude = self.globs(section.get("exclude", []), where + ("exclude",))
        per_file = self.per_file(section.get("per-file", {}), where + ("per-file",))
        return Config(path, self.name, self.text, severity, exclude, per_file, self.diagnostics())

    def severities(self, table: Any, at: KeyPath) -> Severities:
        if not isinstance(table, dict):
            self.problem(at, f"'{at[-1]}' must be a table of codes and severities",
                         f'for example {at[-1]} = {{ P301 = "error", P304 = "off" }}', entry=True)
            return ()
        out = []
        for code, level in table.items():
            if self.severity_ok(code, level, at + (code,)):
                out.append((code, level))
        return tuple(out)

    def severity_ok(self, code: str, level: Any, at: KeyPath) -> bool:
        if code not in CODES:
            hint = (f"codes are written in capitals: {code.upper()}" if code.upper() in CODES
                    else "docs/checks.md lists every code")
            self.problem(at, f"unknown code '{code}'", hint)
            return False
        if not isinstance(level, str) or level not in SEVERITIES:
            shown = f"'{level}'" if isinstance(level, str) else repr(level)
            guess = _severity_guess(level) if isinstance(level, str) else None
            self.problem(at, f"unknown severity {shown} for {code}",
                         f"did you mean '{guess}'?" if guess else f"use one of {', '.join(SEVERITIES)}",
                         value=True)
            return False
        if is_fixed(code) and level != "error":
            self.problem(at, f"{code} is an error that cannot be lowered or turned off",
                         "the errors of P0xx, P1xx and P2xx stop the policy set from loading: fix what they report",
                         entry=True)
            return False
        return True

    def globs(self, value: Any, at: KeyPath) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.problem(at, "'exclude' must be a list of globs", 'for example exclude = ["tests/golden"]',
                         entry=True)
            return ()
        out = []
        for i, glob in enumerate(value):
            if not isinstance(glob, str):
                self.problem(at + (i,), f"{glob!r} is not a glob", "write a path pattern such as \"tests/**\"",
                             value=True)
            elif self.glob_ok(glob, at + (i,), value=True):
                out.append(glob)
        return tuple(out)

    def glob_ok(self, glob: str, at: KeyPath, *, value: bool = False) -> bool:
        try:
            read_glob(glob)
        except GlobError as e:
            self.problem(at, str(e), "write a path pattern such as \"tests/**\" (docs/checks.md: Configuration)",
                         value=value)
            return False
        return True

    def per_file(self, value: Any, at: KeyPath) -> tuple[tuple[str, Severities], ...]:
        if not isinstance(value, dict):
            self.problem(at, "'per-file' must be a table of globs",
                         'for example per-file = { "legacy/**" = { P400 = "off" } }', entry=True)
            return ()
        return tuple((glob, self.severities(table, at + (glob,))) for glob, table in value.items()
                     if self.glob_ok(glob, at + (glob,)))

    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """One P600 per line: several problems on one line (in one inline table) make one
        finding that names them all."""
        by_line: dict[int, list[_Problem]] = {}
        for p in sorted(self.problems, key=lambda p: p.start):
            by_line.setdefault(line_column(self.text, p.start)[0], []).append(p)
        out = []
        for problems in by_line.values():
            first = problems[0]
            line, column = line_column(self.text, first.start)
            end_line, end_column = line_column(self.text, first.end)
            hints = [p.hint for p in problems if p.hint]
            out.append(make("P600", "; ".join(p.message for p in problems),
                            Span(self.name, line, column, end_line, end_column, first.start, first.end),
                            hint="; ".join(hints) or None))
        return tuple(out)


def _severity_guess(level: str) -> str | None:
    """The severity meant by ``level``: one it abbreviates (``warn``), or a close one."""
    word = level.strip().lower()
    return next((s for s in SEVERITIES if word and s.startswith(word)), None) or did_you_mean(word, SEVERITIES)


# ------------------------------------------------------------------ globs


def _relative_parts(path: str | Path, root: Path) -> tuple[str, ...] | None:
    try:
        return Path(os.path.abspath(path)).relative_to(root).parts
    except ValueError:
        try:
            return Path(path).resolve().relative_to(root).parts
        except ValueError:
            return None


class GlobError(ValueError):
    """A glob that cannot match as written (its message says why)."""


@attrs.frozen
class Glob:
    """A glob read: ``anchored`` when it is a path from the configuration's folder (it
    holds a ``/`` other than a trailing one: ``/drafts``, ``./drafts`` and ``a/b`` are,
    ``drafts`` and ``drafts/`` match a name at any depth), and its pattern."""

    anchored: bool
    pattern: re.Pattern[str]


def _glob_matches(glob: str, parts: tuple[str, ...], first: int) -> bool:
    """Whether ``glob`` matches the path ``parts`` or one of its folders, looking only at
    those deeper than ``first`` parts."""
    try:
        g = read_glob(glob)
    except GlobError:  # reported when the configuration was read (P600), and left out
        return False
    if not g.anchored:
        return any(g.pattern.fullmatch(parts[n]) for n in range(first, len(parts)))
    return any(g.pattern.fullmatch("/".join(parts[:n])) for n in range(first + 1, len(parts) + 1))


@functools.cache
def read_glob(glob: str) -> Glob:
    """A glob of ``exclude`` or ``per-file``, as docs/checks.md describes them: matched
    against paths relative to the configuration's folder; ``*`` and ``?`` stay within a
    name, ``**`` spans folders, ``[abc]`` is a class (``[!abc]`` its complement); a leading
    ``/`` or ``./`` anchors it at the configuration's folder (as in ``.gitignore``), and
    so does a ``/`` inside it. Raises GlobError for one that cannot match as written (a
    class whose range runs backwards, a ``.`` or ``..`` that is not a leading ``./``)."""
    body = glob.removeprefix("./") if glob.startswith("./") else glob
    anchored = body is not glob or "/" in glob.rstrip("/")
    body = body.strip("/")
    if not body:
        raise GlobError(f"{glob!r} names no path")
    if any(part in (".", "..") for part in body.split("/")):
        raise GlobError(f"'{glob}' holds '.' or '..': globs match paths inside the configuration's folder, "
                        "which have neither")
    try:
        return Glob(anchored, re.compile(_translate(body)))
    except re.error as e:
        raise GlobError(f"'{glob}' is not a glob: {e.msg}") from None


def _translate(glob: str) -> str:
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2:]:
            end = glob.index("]", i + 2)
            out.append(_translate_class(glob[i + 1:end]))
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def _translate_class(body: str) -> str:
    """A class's body (``!`` first: the complement) as a regular expression's class:
    each character as itself, but ``-`` between two, a range."""
    negated = body[:1] in ("!", "^")
    body = body[1:] if negated else body
    out = [re.escape(c) if c != "-" or i in (0, len(body) - 1) else "-" for i, c in enumerate(body)]
    return "[" + ("^" if negated else "") + "".join(out) + "]"
