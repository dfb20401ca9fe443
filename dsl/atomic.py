"""Replacing a file's content so that it is never lost: a reader, a crash or a full disk
sees either the old content or the new, whole.

The new text goes to a temporary file in the same directory (a rename is atomic only within
one file system), is flushed to the disk, takes the old file's mode, and is renamed over the
original. Every writer of user files goes through ``replace_with`` (``write_atomically`` for
text: ``policy fmt``, reports; the scan's outputs after their writers close).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if sys.platform != "win32":
    import fcntl

__all__ = ["ABANDONED", "Temporary", "check_writable", "held_folder", "is_own", "new_file_mode", "open_own",
           "remove_abandoned", "remove_stale", "replace_with", "write_atomically"]


def write_atomically(path: str | Path, text: str) -> None:
    """Replace the content of ``path`` with ``text`` (UTF-8), atomically.

    Raises ``OSError`` (the file left as it was) when the file cannot be written: it is
    read-only, its directory is, or the disk or the file size limit is reached. A symbolic
    link is followed: the file it points to is replaced, the link stays.
    """
    target = Path(os.path.realpath(path))
    _mode_of(target)  # a file its user may not write: refused before anything is written
    fd, temp = _beside(target)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
    except BaseException:
        _remove(temp)
        raise
    replace_with(temp, target)


def check_writable(path: str | Path) -> None:
    """Raises the ``OSError`` that ``write_atomically(path, …)`` would meet before writing
    (a directory there, a file its user may not write, a directory that is missing or read-
    only), or that it should (a device or a pipe, which the rename would replace), so that
    a command can refuse an output before its work rather than after."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    if os.path.exists(path) and not target.is_file():  # a device, a pipe (/dev/stdout): a rename would replace it
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    _mode_of(target)
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(target.parent))
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target.parent))


class Temporary:
    """A new empty file in the directory of ``path`` (where a rename onto it is atomic),
    named after it and hidden (``name``): the place to write what ``replace_with`` then
    moves. It is held (an exclusive ``flock`` on a descriptor kept open) until
    ``release``, so that a later writer of the same file can tell it from one a killed
    writer left behind (``remove_abandoned``)."""

    def __init__(self, path: str | Path):
        fd, self.name = _beside(Path(os.path.realpath(path)))
        self._fd: int | None = fd
        if sys.platform != "win32":
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a file system without locks: it is then never taken for abandoned
                pass

    def release(self) -> None:
        """Let go of the file (once it is renamed or removed)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


ABANDONED = 10.0
"""Seconds since a temporary file last changed from which, held by no process, it counts
as abandoned (a writer takes its hold the moment it makes the file)."""


def remove_abandoned(path: str | Path) -> list[str]:
    """Remove the temporary files of ``path`` (``Temporary``) that a writer killed before
    it ended left behind (``kill -9``, a crash, a machine stopped): those no process holds
    and that have not changed for ``ABANDONED`` seconds. Returns their names. Where files
    cannot be locked (not POSIX, some network file systems), none is removed."""
    if sys.platform == "win32":
        return []
    target = Path(os.path.realpath(path))
    ours = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}\.tmp")  # as ``_beside`` names them
    return remove_stale(str(target.parent), ours, ABANDONED, os.unlink, directory=False)


def remove_stale(folder: str, ours: re.Pattern[str], age: float, remove: Callable[[str], None], *,
                 directory: bool) -> list[str]:
    """``remove`` each entry of ``folder`` named as ``ours`` makes them (a file, or with
    ``directory`` a directory) that this user owns (``open_own``), that has not changed for
    ``age`` seconds and that no process holds (the ``flock`` taken here then keeps a new
    holder off until it is removed). Returns their paths. The abandoned temporary files
    and pool directories here, the parser's unused tables (``syntax.driver``)."""
    try:
        names = [n for n in os.listdir(folder) if ours.fullmatch(n)]
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(folder, name)
        opened = open_own(path, directory=directory)
        if opened is None:
            continue  # gone meanwhile, or not ours
        fd, st = opened
        try:
            if time.time() - st.st_mtime < age:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: held, its writer is at work
            remove(path)
            removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def open_own(path: str | os.PathLike[str], *, directory: bool = False) -> tuple[int, os.stat_result] | None:
    """``path`` opened to read, and its status, where it is a regular file (with
    ``directory``: a directory) of this user's; else None, nothing left open. A symbolic
    link is not followed, and a FIFO is not waited on (the open does not block): what
    another user may have put in a directory is never read or trusted. The caller closes
    the descriptor."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not is_own(st, directory=directory):
        os.close(fd)
        return None
    return fd, st


def is_own(st: os.stat_result, *, directory: bool = False) -> bool:
    """Whether a status (``lstat``'s: a link is not followed) is of a regular file (with
    ``directory``: a directory) of this user's."""
    kind = stat.S_ISDIR if directory else stat.S_ISREG
    return kind(st.st_mode) and st.st_uid == os.geteuid()


def _beside(target: Path) -> tuple[int, str]:
    return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")


def replace_with(temp: str | Path, path: str | Path) -> None:
    """Give the finished file ``temp`` (written in the directory of ``path``) the final
    name: flushed to the disk, with the mode of the file it replaces (or of a new file),
    renamed over ``path``, the rename made durable. Every writer of user files ends here:
    ``write_atomically``, the scan's outputs, Spark's part file.

    Raises ``OSError`` with ``temp`` removed and ``path`` as it was."""
    target = Path(os.path.realpath(path))
    try:
        mode = _mode_of(target)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        _remove(str(temp))
        raise
    _sync_directory(target.parent)


def _mode_of(target: Path) -> int:
    """The permission bits the new content keeps. A file its user may not write is not
    replaced behind their back (a rename would succeed in a writable directory)."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return new_file_mode()
    if not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))
    return stat.S_IMODE(st.st_mode)


def new_file_mode() -> int:
    """The permission bits of a new file, as ``open`` would give it (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove(temp: str) -> None:
    try:
        os.unlink(temp)
    except OSError:
        pass


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every system lets a directory be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def held_folder(prefix: str) -> tuple[str, int | None]:
    """A new directory of the system's temporary directory (``tempfile.mkdtemp``), and a
    descriptor of it that holds it (a ``flock``, which forked children share) until it is
    closed (None where it cannot be held). The directories of the same ``prefix`` that no
    process holds any more and that have not changed for ``ABANDONED`` seconds are removed
    first: those of a process that could not clean up (killed with `kill -9`)."""
    folder = tempfile.gettempdir()
    if sys.platform == "win32":  # pragma: no cover - no flock
        return tempfile.mkdtemp(prefix=prefix), None
    ours = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")  # as ``tempfile.mkdtemp`` names them, no other
    remove_stale(folder, ours, ABANDONED, functools.partial(shutil.rmtree, ignore_errors=True), directory=True)
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # gone meanwhile
        return path, None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # not lockable here (some network file systems)
        os.close(fd)
        return path, None
    return path, fd
