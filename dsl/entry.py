"""The `policy` command's entry point (the console script; ``python -m dsl``): the command
line is imported here, so that a ^C while Python imports it (a few tenths of a second)
ends the command as a ^C later does, "Aborted!" and exit status 1 (``cli.run``), not with
a traceback. ``import dsl`` imports nothing else (``dsl.__init__``), so this runs first."""

from __future__ import annotations

import sys


def run() -> None:
    try:
        from .cli import run as command
    except KeyboardInterrupt:
        sys.stderr.write("Aborted!\n")  # as click tells an interrupt
        sys.exit(1)
    command()
