"""Reading the two versions that `policy diff` compares: a path, or ``REV:PATH`` read
from git (``origin/main:policies/``), as ``git show`` reads it (a PATH relative to the
repository's top, or to the current directory when it starts with ``./``).

A git version is copied into a temporary directory (``git archive`` for a folder, ``git
cat-file`` for one file) and compiled from there like any path; the directory is removed
once the set is compiled (the checked model holds everything a diff needs).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import attrs

from ..checking.frontend import compile_paths
from ..checking.loader import UsageError
from ..diagnostics import PolicyError
from ..model import PolicySet

__all__ = ["Version", "read_version"]


@attrs.frozen
class Version:
    """One side of a diff: as the user named it, and the checked set."""

    label: str
    model: PolicySet = attrs.field(eq=False, repr=False)


def read_version(spec: str | os.PathLike[str], *, what: str = "OLD") -> Version:
    """The checked set that ``spec`` names. Raises ``UsageError`` for a path that names
    nothing, a revision or path git does not know (git's message), and ``PolicyError``
    when the set has errors."""
    text = os.fspath(spec)
    if os.path.exists(text):
        return Version(text, _compile(text, text))
    rev, colon, path = text.partition(":")
    if not colon or not rev:
        raise UsageError(f"{what} '{text}': no such file or directory (nor REV:PATH)")
    with tempfile.TemporaryDirectory(prefix="policy-diff-") as tmp:
        target = _from_git(rev, path, Path(tmp), text, what)
        return Version(text, _compile(str(target), text))


def _compile(path: str, label: str) -> PolicySet:
    model, _loaded, diags = compile_paths([path])
    if model is None:
        raise PolicyError(diags)
    return model


def _git(args: list[str], spec: str, what: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], capture_output=True, check=False)
    except OSError as e:
        raise UsageError(f"{what} '{spec}': cannot run git: {e.strerror or e}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{what} '{spec}': git: {message[0] if message else 'failed'}")
    return done.stdout


def _from_git(rev: str, path: str, tmp: Path, spec: str, what: str) -> Path:
    """Copy ``rev:path`` into ``tmp``; the path of the copy."""
    obj = f"{rev}:{path}"
    kind = _git(["cat-file", "-t", obj], spec, what).decode().strip()
    name = PurePosixPath(path.rstrip("/")).name or "tree"
    if kind == "blob":
        target = tmp / name
        target.write_bytes(_git(["cat-file", "blob", obj], spec, what))
        return target
    if kind != "tree":
        raise UsageError(f"{what} '{spec}': git names a {kind}, not a file or a folder")
    target = tmp / name
    target.mkdir()
    archive = _git(["archive", "--format=tar", obj], spec, what)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        try:
            tar.extractall(target, filter="data")
        except tarfile.FilterError as e:  # a link out of the folder: what it names is not in this revision
            raise UsageError(f"{what} '{spec}': cannot read it from git: {e}") from None
    return target
