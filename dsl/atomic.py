"""Replacing a file's content so that it is never lost: a reader, a crash or a full disk
sees either the old content or the new, whole.

The new text goes to a temporary file in the same directory (a rename is atomic only within
one file system), is flushed to the disk, takes the old file's mode, and is renamed over the
original. Every writer of user files goes through ``replace_with`` (``write_atomically`` for
text: ``policy fmt``, reports; the scan's outputs after their writers close).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["new_file_mode", "replace_with", "temporary_beside", "write_atomically"]


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


def temporary_beside(path: str | Path) -> str:
    """A new empty file in the directory of ``path`` (where a rename onto it is atomic),
    named after it and hidden: the place to write what ``replace_with`` then moves."""
    fd, temp = _beside(Path(os.path.realpath(path)))
    os.close(fd)
    return temp


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
