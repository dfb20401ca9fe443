"""The package's modules compiled to bytecode before a benchmark times a process start.

An installed package has its bytecode: ``pip install`` writes it for a regular install,
and Python writes it on the first import from an editable one (``./quickstart``). Where
``PYTHONDONTWRITEBYTECODE`` is set (some sandboxes and CI images set it), an editable
install has none, and every process compiles the package's hundred modules from source
again: 0.08 s of each start measured on two cores. Benchmarks that time whole processes
(``policy scan``, ``policy check``) call ``compiled()`` first and print what it says.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path


def compiled() -> str:
    """Writes the missing bytecode of the ``dsl`` package beside its sources (what an
    install or a first import writes); says what was done, for the benchmark's output."""
    import dsl

    folder = Path(dsl.__file__).resolve().parent
    ok = compileall.compile_dir(str(folder), quiet=2)
    state = "compiled" if ok else "could not all be compiled (timed as they are)"
    note = ("; PYTHONDONTWRITEBYTECODE is set here, so Python would not write it itself"
            if "PYTHONDONTWRITEBYTECODE" in os.environ else "")
    return f"the dsl package's bytecode {state} in {folder}/__pycache__, as an install has it{note}"
