"""Reading the two versions that `policy diff` compares: a path, or ``REV:PATH`` read
from git (``origin/main:policies/``), as ``git show`` reads it (a PATH relative to the
repository's top, or to the current directory when it starts with ``./``).

A git version is copied into a temporary directory where it lies in the repository
(a folder's tree listed by ``git ls-tree`` and its files read by one ``git cat-file
--batch``; ``git cat-file`` for one file), with that revision's configuration files in
the folders above it (their ``exclude``), and compiled from there like any path; its
findings name ``REV:path``. The directory is removed once the set is compiled (the
checked model holds everything a diff needs).

Not ``git archive``: it applies the attributes of the tree and of ``.git/info/attributes``,
so a file marked ``export-ignore`` was left out (a changed rule in it: "equivalent
(proved)") and ``eol``/``text`` rewrote line ends, where ``git show`` reads the blobs as
they are.
"""

from __future__ import annotations

import io
import os
import posixpath
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

import attrs

from ..checking.config import CONFIG_FILE, NO_CONFIG, PYPROJECT, Config, find_config, read_config
from ..checking.frontend import compile_paths
from ..checking.loader import UsageError
from ..diagnostics import Diagnostic, PolicyError
from ..model import PolicySet
from ..span import Span

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
        return Version(text, _compile(text, what, text))
    rev, colon, path = _split_revision(text)
    if not colon or not rev:
        raise UsageError(f"{what} '{text}': no such file or directory (nor REV:PATH)")
    with tempfile.TemporaryDirectory(prefix="policy-diff-") as tmp:
        top = Path(tmp) / "tree"
        target = _from_git(rev, path, top, text, what)
        return Version(text, _compile(str(target), what, text, _revision_config(target, top), (f"{top}/", f"{rev}:")))


def _split_revision(text: str) -> tuple[str, str, str]:
    """``REV:PATH`` split as git splits it: at the first colon outside braces, so that
    ``HEAD^{/fix: note}:policies`` and ``main@{2025-01-01 10:00:00}:policies`` keep their
    revision whole (as ``str.partition``, with ``""`` for no colon)."""
    depth = 0
    for i, c in enumerate(text):
        if c == "{":
            depth += 1
        elif c == "}" and depth:
            depth -= 1
        elif c == ":" and not depth:
            return text[:i], ":", text[i + 1:]
    return text, "", ""


def _compile(path: str, what: str, spec: str, config: Config | None = None,
             rename: tuple[str, str] | None = None) -> PolicySet:
    """The checked set; a copy's file names told as ``rename`` says (``/tmp/…/tree/``
    as ``REV:``) in its diagnostics and messages. A copy's parses are not kept in the
    parse cache: its temporary directory's name never comes again."""
    try:
        model, _loaded, diags = compile_paths([path], config=config, cache=rename is None, policies=True)
    except UsageError as e:
        message = str(e).replace(*rename) if rename else str(e)
        raise UsageError(f"{what} '{spec}': {message}") from None
    if model is None:
        raise PolicyError([_renamed(d, rename) for d in diags] if rename else diags)
    return model


def _renamed(d: Diagnostic, rename: tuple[str, str]) -> Diagnostic:
    def place(s: Span) -> Span:
        return s.replace(file=rename[1] + s.file[len(rename[0]):]) if s.file.startswith(rename[0]) else s

    def span(s: Span | None) -> Span | None:
        return None if s is None else place(s)

    def text(t: str) -> str:
        return t.replace(*rename)

    return attrs.evolve(d, message=text(d.message), hint=d.hint and text(d.hint), notes=tuple(map(text, d.notes)),
                        span=span(d.span), suppressed_by=span(d.suppressed_by),
                        related=tuple(attrs.evolve(r, span=place(r.span), message=text(r.message)) for r in d.related))


def _git(args: list[str], spec: str, what: str, cwd: str | None = None, lead: str = "",
         stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], input=stdin, capture_output=True, check=False, cwd=cwd)
    except OSError as e:
        raise UsageError(f"{what} '{spec}': cannot run git: {e.strerror or e}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{what} '{spec}': {lead}git: {message[0] if message else 'failed'}")
    return done.stdout


def _from_git(rev: str, path: str, top: Path, spec: str, what: str) -> Path:
    """Copy ``rev:path`` to where it lies in the repository, under ``top``, with the
    configuration files of ``rev`` in the folders above it (``policy check``'s
    ``exclude`` reads them); the path of the copy."""
    obj = f"{rev}:{path}"
    lead = "no such file or directory, and as REV:PATH "
    kind = _git(["cat-file", "-t", obj], spec, what, lead=lead).decode().strip()
    prefix = _git(["rev-parse", "--show-prefix"], spec, what).decode()
    relative = path.startswith(("./", "../")) or path in (".", "..")  # to the current folder, as git reads it
    at = PurePosixPath(posixpath.normpath(prefix.strip() + path if relative else path or "."))
    target = top.joinpath(*at.parts) if str(at) != "." else top
    if kind not in ("blob", "tree"):
        raise UsageError(f"{what} '{spec}': git names a {kind}, not a file or a folder")
    oid = _git(["rev-parse", "--verify", "--end-of-options", obj], spec, what).decode().strip()
    _configs(rev, at, top, spec, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "blob":
        target.write_bytes(_git(["cat-file", "blob", oid], spec, what))
        return target
    target.mkdir(exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(_tree_as_tar(oid, spec, what))) as tar:
        try:
            tar.extractall(target, filter="data")
        except tarfile.FilterError as e:  # a link out of the folder: what it names is not in this revision
            raise UsageError(f"{what} '{spec}': cannot read it from git: {e}") from None
    return target


def _tree_as_tar(oid: str, spec: str, what: str) -> bytes:
    """The tree ``oid`` as a tar archive of its folders, files and links as they are stored
    (no attribute applies), with the modes ``git archive`` gives them: extracted through
    tarfile's ``data`` filter, links out of the folder are refused and modes set as they
    were when the copy was ``git archive``'s. A submodule is an empty folder, as there."""
    # --full-tree: below the top, ls-tree would list only what is under the current folder
    listed = _git(["ls-tree", "-r", "-t", "-z", "--full-tree", oid], spec, what).split(b"\0")
    entries: list[tuple[str, str, str, str]] = []  # mode, type, object, path
    for line in filter(None, listed):
        head, _, path = line.partition(b"\t")
        mode, kind, entry_oid = head.decode().split(" ")
        entries.append((mode, kind, entry_oid, os.fsdecode(path)))
    blobs = _blobs([e[2] for e in entries if e[1] == "blob"], spec, what)
    now = int(time.time())
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for mode, kind, entry_oid, name in entries:
            info = tarfile.TarInfo(name)
            info.mtime = now
            data = None
            if kind != "blob":  # a tree, or a submodule's commit
                info.type, info.mode = tarfile.DIRTYPE, 0o775
            elif mode == "120000":
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, os.fsdecode(blobs[entry_oid])
            else:
                data = blobs[entry_oid]
                info.size, info.mode = len(data), 0o775 if mode == "100755" else 0o664
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return out.getvalue()


def _blobs(oids: list[str], spec: str, what: str) -> dict[str, bytes]:
    """The contents of the blobs ``oids``, read by one ``git cat-file --batch``."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    out = _git(["cat-file", "--batch"], spec, what, stdin="".join(f"{o}\n" for o in wanted).encode())
    at, found = 0, dict[str, bytes]()
    for oid in wanted:
        end = out.find(b"\n", at)
        header = out[at:end].decode("utf-8", "replace").split(" ") if end >= 0 else []
        if len(header) != 3 or header[1] != "blob":  # ("OID missing")
            raise UsageError(f"{what} '{spec}': git: cannot read {' '.join(header) or oid}")
        size = int(header[2])
        found[oid] = out[end + 1:end + 1 + size]
        at = end + 1 + size + 1  # the content, then a line feed
    return found


def _configs(rev: str, at: PurePosixPath, top: Path, spec: str, what: str) -> None:
    """The configuration files of ``rev`` in the folders from the top down to ``at``."""
    folders = [PurePosixPath(".")] + [PurePosixPath(*at.parts[:i]) for i in range(1, len(at.parts) + 1)]
    names = [str(f / n) if str(f) != "." else n for f in folders for n in (CONFIG_FILE, PYPROJECT)]
    listed = _git(["ls-tree", "--full-tree", "--name-only", "-z", rev, "--", *names], spec, what)
    for name in filter(None, listed.decode("utf-8", "replace").split("\0")):
        if name in names:
            copy = top.joinpath(*PurePosixPath(name).parts)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(_git(["cat-file", "blob", f"{rev}:{name}"], spec, what))


def _revision_config(target: Path, top: Path) -> Config:
    """The configuration ``policy check`` would find for ``target`` in the revision: none
    when the nearest file lies above the repository (outside the copy)."""
    found = find_config(target)
    if found is None or top.resolve() not in found.resolve().parents:
        return NO_CONFIG
    return read_config(found)
