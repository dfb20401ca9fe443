"""Finding and reading policy files: paths → parsed files, with problems as diagnostics.

A *policy set* is every ``*.policy`` file under the paths given (directories searched
recursively, in sorted order); ``*_test.policy`` files hold tests and are kept apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ..diagnostics import Diagnostic, make
from ..syntax import ast as A
from ..syntax.cache import parse_cached
from .config import Config, discover

if TYPE_CHECKING:
    from ..syntax.batch import Job

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Policy files larger than this are refused with P003: a policy that large is generated,
and should be split (parsing speed is about 1 MB/s)."""


class UsageError(ValueError):
    """A path that does not exist, or a directory without policies: the command cannot run."""


@attrs.frozen
class Loaded:
    policy_files: tuple[A.File, ...]
    test_files: tuple[A.File, ...]
    sources: dict[str, str]
    diagnostics: tuple[Diagnostic, ...]


def is_test_file(path: str | Path) -> bool:
    return str(path).endswith("_test.policy")


@attrs.frozen
class Found:
    """The policy files under the paths given, and P001 for every place that could not be
    looked into (an unreadable directory, a ``*.policy`` link to nothing): rules are never
    left out quietly."""

    files: tuple[Path, ...]
    problems: tuple[Diagnostic, ...]

    def kept(self, config: Config, named: Iterable[str | Path]) -> Found:
        """The files and the problems of the places that ``config``'s ``exclude`` keeps
        (``Config.kept``): an excluded folder that cannot be listed, or an excluded link to
        nothing, is no problem of the set's."""
        named = list(named)
        files = config.kept(self.files, named)
        where = config.kept([Path(p.file) for p in self.problems if p.file is not None], named)
        problems = tuple(p for p in self.problems if p.file is None or Path(p.file) in where)
        return Found(tuple(files), problems)


def find_policy_files(paths: Sequence[str | Path]) -> Found:
    """Every policy file under ``paths``, sorted and without repeats. A file named
    explicitly is taken whatever its extension. Raises UsageError for a missing path or a
    directory with no policy file (and nothing unreadable)."""
    found: dict[str, Path] = {}
    problems: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            inside, trouble = _walk(p)
            if not inside and not trouble:
                raise UsageError(f"no *.policy files under '{raw}'")
            for q in inside:
                found.setdefault(os.path.normpath(q), q)
            problems.extend(trouble)
        elif p.exists():
            found.setdefault(os.path.normpath(p), p)
        else:
            raise UsageError(f"no such file or directory: '{raw}'")
    return Found(tuple(found[k] for k in sorted(found)), tuple(problems))


def _walk(top: Path) -> tuple[list[Path], list[Diagnostic]]:
    """The ``*.policy`` files under ``top`` (links to directories are not followed), and
    P001 for each directory that cannot be listed and each ``*.policy`` entry that is not a
    readable file."""
    files: list[Path] = []
    problems: list[Diagnostic] = []

    def unlistable(e: OSError) -> None:
        name = str(e.filename) if e.filename is not None else str(top)
        problems.append(make("P001",
                             f"cannot list the directory: {e.strerror or e}; the policy files in it are not read",
                             A.Span(name, 1, 1, 1, 2),
                             hint="make the directory readable, or move it out of the policy tree"))

    for directory, _dirs, names in os.walk(top, onerror=unlistable):
        for name in names:
            if not name.endswith(".policy"):
                continue
            path = Path(directory, name)
            if path.is_file():
                files.append(path)
            elif path.is_symlink() and not path.exists():
                target = os.readlink(path)
                problems.append(make("P001",
                                     f"cannot read the file: the link points to '{target}', which does not exist",
                                     A.Span(str(path), 1, 1, 1, 2), hint="fix the link, or remove it"))
            else:
                problems.append(make("P001", "cannot read the file: it is not a regular file",
                                     A.Span(str(path), 1, 1, 1, 2)))
    return files, problems


def read_source(path: Path) -> tuple[str | None, Diagnostic | None]:
    """The file's text, or a diagnostic saying why it cannot be read (P001 unreadable,
    P002 not UTF-8 with the place of the first bad byte, P003 too large)."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // (1024 * 1024)
            return None, make("P003",
                              f"the file is too large to be a policy ({size / 1e6:.1f} MB; the limit is {limit} MiB)",
                              A.Span(name, 1, 1, 1, 2), hint="split the policy into several files")
        data = path.read_bytes()
    except OSError as e:
        return None, make("P001", f"cannot read the file: {e.strerror or e}", A.Span(name, 1, 1, 1, 2))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = len(data[data.rfind(b"\n", 0, e.start) + 1:e.start].decode("utf-8", "replace")) + 1
        return None, make("P002", f"the file is not UTF-8: byte 0x{data[e.start]:02x} cannot be decoded",
                          A.Span(name, line, col, line, col + 1), hint="save the file as UTF-8")
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark is not part of the policy
    return text, None


def load_paths(paths: Iterable[str | Path], config: Config | None = None, *, cache: bool = True) -> Loaded:
    """Read and parse every policy and test file under ``paths``, less those that the
    configuration's ``exclude`` leaves out (``config``, else the one found from the first
    path; see ``dsl.checking.config``)."""
    paths = list(paths)
    found = find_policy_files(paths).kept(config if config is not None else discover(paths), paths)
    problems: list[Diagnostic] = list(found.problems)
    jobs: list[Job] = []
    for path in found.files:
        text, problem = read_source(path)
        if problem is not None:
            problems.append(problem)
            continue
        assert text is not None
        jobs.append((str(path), text, is_test_file(path)))
    # a file read again unchanged is not parsed again (``dsl.syntax.cache``), and a large set
    # is parsed by two processes at once (``dsl.syntax.batch``): the same results
    results = parse_cached(jobs, keep=cache)
    return loaded_from([(name, text, *result) for (name, text, _), result in zip(jobs, results, strict=True)],
                       problems)


def parse_source(name: str, text: str) -> tuple[A.File, list[Diagnostic]]:
    """One file's text parsed as ``load_paths`` parses a file it has read: a test file or
    a policy file by its name."""
    from ..syntax.parse import parse  # (with Lark, which a set read from the parse cache never needs)

    return parse(text, name, test_file=is_test_file(name))


Parsed = tuple[str, str, A.File, Sequence[Diagnostic]]
"""A file read and parsed: its name, its text, its AST and its syntax diagnostics."""


def loaded_from(parsed: Iterable[Parsed], problems: Iterable[Diagnostic] = ()) -> Loaded:
    """What ``load_paths`` gives, from files already read and parsed (``parse_source``):
    an editor's buffers, whose text is not the file's on disk. ``problems`` are the
    findings about files that could not be read."""
    policy_files: list[A.File] = []
    test_files: list[A.File] = []
    sources: dict[str, str] = {}
    diags: list[Diagnostic] = list(problems)
    for name, text, file, found in parsed:
        sources[name] = text
        diags.extend(found)
        (test_files if is_test_file(name) else policy_files).append(file)
    return Loaded(tuple(policy_files), tuple(test_files), sources, tuple(diags))
