"""``parse_cached``: ``parse_all`` with the results kept in the user's cache directory, so
that a policy file read again unchanged is not parsed again (a catalogue scan, `policy
check` in a pre-commit hook, `policy decide` called by a script: each run loads the same
set). A parse costs about 0.13 s for 1,000 rules, reading its pickle about 0.01 s.

A result is kept under a digest of what it is a function of: the file's name (its spans
and diagnostics hold it), whether it is read as a test file, its text, and the code that
parses (``code_key``: the grammar, Python's version, and the size, inode and times of
change of every module of ``dsl`` and of Lark's ``__init__``, so that an edited checkout
never reads a result its old code made). The results are the ones ``parse_all`` gives, pickled as ``batch.py``'s
child pickles them (tests/test_parse_cache.py compares both on every policy of the
repository and the conformance corpus).

The cache is a private directory of the user's (``cachedir``, beside Lark's tables:
never a shared temporary directory, from which a pickle another user had put there would
be loaded), and an entry is read only if it is a regular file of this user's. A file is
written under a temporary name and renamed, so that a reader sees it whole or not at all;
it starts with a SHA-256 of its name and its pickle (``_seal``), checked before the pickle
is read, so that an entry damaged where it still unpickles (a byte changed: a phrase read
otherwise), or one under another's name, is never taken for the file's parse. One that
cannot be read (a disk error, a file cut short, a digest that differs) is parsed again, one that
cannot be written is not kept, and the parse's result is the same either way. The
directory holds at most ``MAX_BYTES``: past it, the files least recently read go.
``POLICY_DSL_CACHE=off`` turns the cache off (the parse is then ``parse_all``'s).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib.util
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import ABANDONED, open_own, remove_stale
from ..gcpause import no_gc
from . import ast as A
from .cachedir import cache_folder, file_stamp, private_folder
from .grammar import grammar_text

if TYPE_CHECKING:
    from .batch import Job, Result

__all__ = ["MAX_BYTES", "code_key", "folder", "parse_cached"]

MAX_BYTES = 256 * 2**20
"""The size of the cache directory's files past which the least recently read go."""

_unlooked: int | None = None
"""The bytes this process has written since it last looked at the directory's size (None:
it has not yet). It looks at its first write, then after each sixteenth of ``MAX_BYTES``
written: a look lists the whole directory."""

_KEPT = 0.75
"""The share of ``MAX_BYTES`` the directory keeps when it is trimmed."""


def parse_all(jobs: Sequence[Job], *, pickled: list[bytes | None] | None = None) -> list[Result]:
    """``batch.parse_all``, imported when a file is to be parsed: Lark comes with it, and a
    set read wholly from the cache never needs it (a CLI run starts some 50 ms sooner)."""
    from .batch import parse_all

    return parse_all(jobs, pickled=pickled)


def parse_cached(jobs: Sequence[Job], *, keep: bool = True) -> list[Result]:
    """``parse_all(jobs)``, each result read from the cache where it holds one. Without
    ``keep`` (files in a temporary directory, whose names no later run gives again: `policy
    diff`'s copy of a revision) the cache is left alone."""
    where = folder() if keep else None
    if where is None:
        return parse_all(jobs)
    results: list[Result | None] = []
    names = [where / _key(job) for job in jobs]
    for name in names:
        results.append(_read(name))
    missing = [i for i, result in enumerate(results) if result is None]
    if missing:
        pickled: list[bytes | None] = [None] * len(missing)  # the second process's, when it parses some
        parsed = parse_all([jobs[i] for i in missing], pickled=pickled)
        for i, result, data in zip(missing, parsed, pickled, strict=True):
            results[i] = result
            _write(names[i], result, data)
    return [result for result in results if result is not None]


def folder() -> Path | None:
    """The cache's directory, made if need be; None when the cache is off or the
    directory cannot be made."""
    if os.environ.get("POLICY_DSL_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    base = cache_folder()
    return None if base is None else private_folder(base / "parsed")


@functools.cache
def code_key() -> str:
    """A digest of the code a parse's result depends on: the grammar's text, Python's
    version, and the ``cachedir.file_stamp`` of every module of ``dsl`` (the package's version among
    them) and of Lark's ``__init__`` (its version: read without importing Lark). An
    installed package's modules never change; a checkout's do when they are edited."""
    return _code_digest(Path(__file__).resolve().parents[1])


def _code_digest(package: Path) -> str:
    digest = hashlib.sha256(grammar_text().encode())
    lark = importlib.util.find_spec("lark")
    if lark is not None and lark.origin is not None:
        digest.update(f"\0{lark.origin}\0{file_stamp(lark.origin)}".encode())
    digest.update(f"\0{sys.implementation.cache_tag}\0{sys.version}".encode())
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(root, name)
            digest.update(f"\0{os.path.relpath(path, package)}\0{file_stamp(path)}".encode())
    return digest.hexdigest()


def _key(job: Job) -> str:
    """The digest a job's result is kept under: each part with its length before it, a
    file name that is not UTF-8 (Python's ``surrogateescape``) and a text with a lone
    surrogate (the Python API's) encoded as they are."""
    name, text, test_file = job
    digest = hashlib.sha256(code_key().encode())
    for part in (name, str(test_file), text):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    return digest.hexdigest()


def _seal(key: str, data: bytes | memoryview) -> bytes:
    """The digest an entry starts with: SHA-256 of its name (the job's key) and its pickle,
    so that a damaged entry, or one under another's name, is never read as a parse."""
    digest = hashlib.sha256(key.encode("ascii") + b"\0")
    digest.update(data)
    return digest.digest()


_SEAL = 32
"""The length of ``_seal``'s digest."""


def _read(path: Path) -> Result | None:
    opened = open_own(path)  # only a regular file of this user's: a pickle is code
    if opened is None:
        return None
    try:
        with os.fdopen(opened[0], "rb") as kept:
            entry = kept.read()
        data = memoryview(entry)[_SEAL:]
        if len(entry) < _SEAL or not hmac.compare_digest(entry[:_SEAL], _seal(path.name, data)):
            return None  # damaged (a byte changed, cut short), or another entry's: parsed again, written anew
        with no_gc():  # as a parse: a collection would walk every AST read so far
            result = pickle.loads(data)
    except Exception:  # noqa: BLE001 - a file cut short or damaged: parsed again, and written anew
        return None
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], A.File)):
        return None  # not what ``_write`` writes
    try:
        os.utime(path)  # recently read: the last to go when the directory is trimmed
    except OSError:
        pass
    return result


def _write(path: Path, result: Result, data: bytes | None = None) -> None:
    """Keep ``result`` under ``path``; ``data``: its pickle, where it has one already."""
    if data is None:
        try:
            with no_gc():  # a collection meanwhile would walk every AST of the set (0.5 s of 100,000 rules)
                data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except (RecursionError, pickle.PicklingError):  # a listing nested some hundreds of levels deep
            return
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_seal(path.name, data))
            out.write(data)
        os.replace(temp, path)
    except BaseException as e:  # a full disk, a read-only directory (not kept); ^C (raised again)
        try:
            os.unlink(temp)
        except OSError:
            pass
        if not isinstance(e, OSError):
            raise
        return
    global _unlooked
    if _unlooked is None or _unlooked + len(data) >= MAX_BYTES // 16:
        _unlooked = 0
        _trim(path.parent)
    else:
        _unlooked += len(data)


_TEMPORARY = re.compile(r"\.[^/]*\.tmp")
"""How ``_write`` names an entry being written (``mkstemp``'s ``.XXXXXXXX.tmp``)."""


def _trim(where: Path) -> None:
    """Remove the temporary files of writes abandoned (a process killed mid-write: nothing
    else would remove them, and they are never read; ``atomic.ABANDONED``: a write takes
    milliseconds, and one that loses its file so only fails to be kept), then the files least recently read
    while the directory holds more than ``MAX_BYTES`` (down to ``_KEPT`` of it)."""
    remove_stale(str(where), _TEMPORARY, ABANDONED, os.unlink, directory=False)
    try:
        entries = [(st.st_mtime, st.st_size, e.path) for e in os.scandir(where)
                   if e.is_file(follow_symlinks=False) and (st := e.stat(follow_symlinks=False))]
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    if total <= MAX_BYTES:
        return
    for _, size, path in sorted(entries):
        if total <= MAX_BYTES * _KEPT:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        total -= size
