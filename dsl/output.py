"""What a command writes, as data: the api runs a command (``dsl.api.format_paths``,
``dsl.testing.run``) and returns its lines and exit status; the command line (``dsl.cli``)
only prints them and exits."""

from __future__ import annotations

import attrs

__all__ = ["CommandResult", "Line", "Lines"]


@attrs.frozen
class Line:
    """One piece of output: ``text``, then a newline when ``nl``; to standard error when
    ``err``."""

    text: str
    err: bool = False
    nl: bool = True


@attrs.frozen
class CommandResult:
    """The output of a command, in order, and its exit status (0 clean, 1 findings)."""

    lines: tuple[Line, ...]
    exit_code: int

    @property
    def text(self) -> str:
        """Everything written, standard output and error interleaved as written."""
        return "".join(line.text + ("\n" if line.nl else "") for line in self.lines)


class Lines:
    """Collects the lines of a command as it runs (``write`` takes ``click.echo``'s
    arguments)."""

    def __init__(self) -> None:
        self.lines: list[Line] = []

    def write(self, text: str = "", nl: bool = True, err: bool = False) -> None:
        self.lines.append(Line(text, err, nl))

    def result(self, exit_code: int) -> CommandResult:
        return CommandResult(tuple(self.lines), exit_code)
