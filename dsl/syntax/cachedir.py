"""The user's cache directory of the policy language: Lark's compiled tables (``driver``)
and the parses kept (``cache``). Both are pickles, which run code when loaded, so the
directory is used only where no other user can have put a file in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..atomic import is_own

__all__ = ["cache_folder", "file_stamp", "own_file_or_none", "private_folder"]


def cache_folder() -> Path | None:
    """``$XDG_CACHE_HOME/policy-dsl`` (an absolute ``XDG_CACHE_HOME``, as the XDG
    specification has it), else ``~/.cache/policy-dsl``; made if need be. Lark's own
    default, a shared temporary directory, would load a pickle that another user could
    have put there. None (no cache) when it cannot be made or is not private
    (``private_folder``)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no HOME, and a user the system does not know (a container's)
            return None
    if not _safe_parent(base):
        return None
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        return None
    return private_folder(Path(base) / "policy-dsl")


def private_folder(folder: Path) -> Path | None:
    """``folder``, made if need be (mode 0700), if it is a directory of this user's that
    no other user may write into (a group's or others' write permission, which a umask
    may have given a directory made before, is taken away) and that this user may read,
    write and search (what it lacks of that is given back: a directory of mode 0600 could
    be neither read nor written through); else None. A symbolic link is refused: it
    could lead anywhere."""
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return None
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o022 or mode & 0o700 != 0o700:
            os.chmod(folder, (mode & ~0o022) | 0o700)
    except OSError:
        return None
    return folder


def _safe_parent(base: str) -> bool:
    """Whether the cache may be made in ``base``: the nearest directory of ``base`` and its
    parents that exists is this user's own, or has the sticky bit (as /tmp: no one may
    replace another user's entry). Not another user's home: ``sudo`` keeping HOME would
    otherwise make root's directories there, which would then turn the user's own cache
    off (and a root-owned ``~/.cache`` troubles other tools)."""
    path = Path(base)
    while True:
        try:
            st = os.stat(path)
            break
        except FileNotFoundError:
            if path.parent == path:
                return False
            path = path.parent
        except OSError:
            return False
    return st.st_uid == os.geteuid() or bool(st.st_mode & stat.S_ISVTX)


def own_file_or_none(path: Path) -> Path | None:
    """``path`` where it is missing or a regular file of this user's (not a link), to be
    read or written; else None, after trying to remove it (the directory is this user's,
    so what another user put there is a leftover of a time it was not private)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError:
        return None
    if is_own(st):
        return path
    try:
        os.unlink(path)
    except OSError:
        return None
    return path


def file_stamp(path: str | os.PathLike[str]) -> str:
    """A file's size, inode and times of change: a copy that keeps the time of the last
    edit (``cp -p``, tar, rsync) gets a new inode and a new ``ctime``, which no tool sets."""
    st = os.stat(path)
    return f"{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
