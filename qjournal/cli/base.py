"""What every command shares: the exit codes, a usage error, and :class:`Command`, one entry of the parser table.

Strategy: a command is data (its name, the function that runs it, its help, its exit codes, a function
that adds its arguments) so that :mod:`qjournal.cli.parser` builds every subcommand the same way and a
new command is one module defining a :class:`Command` plus one line in the table there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CORRUPT = 2
EXIT_ANOMALIES = 3
EXIT_INTERRUPTED = 130

EXIT_MEANINGS = {
    EXIT_OK: "success",
    EXIT_ERROR: "usage error, I/O error, or an operation refused",
    EXIT_CORRUPT: "the journal is corrupt",
    EXIT_ANOMALIES: "no corruption, but anomalies",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
"""What each exit code means; each command's help lists the codes it can return, in its own words."""

ExitCodes = tuple[tuple[int, str], ...]
"""A command's exit-code table: (code, what it means for this command), without 130, which every command can return."""

Run = Callable[[argparse.Namespace], int]
"""A command's body: the parsed arguments in, the exit code out; errors are raised, :func:`qjournal.cli.main` says them."""


class UsageError(Exception):
    """A bad command line: reported on one line, exit 1."""


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """For a command that takes none but --debug."""


class Command:
    """One subcommand: what :func:`qjournal.cli.parser.build_parser` needs to add it, and what runs it.

    A plain class, not a dataclass: the command line starts without importing :mod:`dataclasses`.
    """

    def __init__(  # noqa: PLR0917 - the command modules give the table's fields in order, as they did the dataclass's
        self, name: str, run: Run, help: str, description: tuple[str, ...], codes: ExitCodes,
        arguments: Callable[[argparse.ArgumentParser], None] = no_arguments, examples: str = "",
    ) -> None:
        self.name = name
        self.run = run
        self.help = help
        """The one line 'qjournal --help' shows."""
        self.description = description
        """Paragraphs of 'qjournal NAME --help', each wrapped to 78 columns."""
        self.codes = codes
        """Only the codes this command can return (130, interrupted, is added to every table)."""
        self.arguments = arguments
        """Adds the command's positional arguments and options (--debug is added for every command)."""
        self.examples = examples
        """Lines of example command lines, each indented by two spaces, shown before the exit codes."""

    def __repr__(self) -> str:
        return f"Command({self.name!r})"
