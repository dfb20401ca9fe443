"""The user's cache directory of the policy language: Lark's compiled tables (``driver``)
and the parses kept (``cache``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_folder"]


def cache_folder() -> Path | None:
    """The user's cache directory, where Lark keeps its compiled tables (and ``cache``
    the parses). Lark's own default, a shared temporary directory, would load a pickle that
    another user could have put there. None (no cache) when the directory cannot be made."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "policy-dsl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
