"""The parser table: every command of ``qjournal``, in the order its help lists them, and the parser built from it.

Strategy: a command is a :class:`~qjournal.cli.base.Command` defined in its own module; :data:`COMMANDS`
names each once and :func:`build_parser` adds them all the same way (one-line help, description,
examples, the command's own exit codes, --debug). To add a command: write its module (the run
function, a function adding its arguments, and a ``Command``), then add one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from qjournal.cli import analyze, append, dedup, images, read, write
from qjournal.cli.base import (
    EXIT_ANOMALIES,
    EXIT_CORRUPT,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MEANINGS,
    EXIT_OK,
    Command,
    ExitCodes,
    UsageError,
)

COMMANDS: tuple[Command, ...] = (
    read.INFO,
    read.DUMP,
    read.GET,
    read.CHECK,
    write.CREATE,
    append.APPEND,
    write.PACK,
    write.RESET,
    images.INDEX,
    images.VERIFY,
    analyze.ANALYZE,
    dedup.DEDUP,
)
"""Every command, one line each, in the order 'qjournal --help' lists them."""

TOP_CODES: ExitCodes = (
    (EXIT_OK, "success (check: no problem found)"),
    (EXIT_ERROR, "usage or I/O error, or an operation refused with nothing written"),
    (EXIT_CORRUPT, "the journal is corrupt"),
    (EXIT_ANOMALIES, "check only: no corruption, but anomalies"),
)

DOCS = (
    "The format and its numbered rules (D1, D2, ...): docs/format.md in the source, "
    "or the file qjournal.format_reference_path() names in an installed package."
)


def exit_codes(rows: ExitCodes) -> str:
    """A command's exit-code table: the codes it can return and what they mean for it, then 130."""
    lines = [f"  {code:<4} {text}" for code, text in (*rows, (EXIT_INTERRUPTED, EXIT_MEANINGS[EXIT_INTERRUPTED]))]
    return "exit codes:\n" + "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and exit 1 (2 means corrupt here)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout (exit-code table, examples); descriptions go through :func:`_wrap`."""


def _wrap(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, 78) for p in paragraphs)


def _add_debug(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """--debug, before or after the command: one flag, one destination (a subcommand's leaves the top's alone)."""
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS, help="show a traceback on errors")


def _add_command(sub: Any, command: Command, *, whole: bool) -> None:
    """One subcommand: its one-line help, description, examples, own exit codes, --debug, its arguments (if ``whole``)."""
    epilog = (f"examples:\n{command.examples}\n" if command.examples else "") + exit_codes(command.codes)
    parser: _Parser = sub.add_parser(
        command.name, help=command.help, description=_wrap(*command.description), formatter_class=_Formatter, epilog=epilog
    )
    _add_debug(parser)
    parser.set_defaults(func=command.run)
    if whole:
        command.arguments(parser)


class _Version(argparse.Action):
    """--version: the version and the stream implementation, looked up only when asked for (start-up stays short)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit", **kw)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> NoReturn:
        from qjournal import stream  # noqa: PLC0415

        sys.stdout.write(f"{parser.prog} {_version()}, {stream.implementation()}\n")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of every command; ``parser.commands`` maps each name to its own parser.

    Given the command line ``argv``, only the command it names gets its arguments (each command's
    arguments import what their help needs): the others are there for 'qjournal --help' and for
    argparse to name, which costs nothing.
    """
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    parser = _Parser(
        prog="qjournal",
        formatter_class=_Formatter,
        description=_wrap("Inspect, check, create and edit QCOW2 deduplication metadata journals."),
        epilog="Run 'qjournal COMMAND --help' for a command's options and its exit codes.\n\n"
        + exit_codes(TOP_CODES)
        + "\n" + textwrap.fill(DOCS, 78) + "\n",
    )
    _add_debug(parser, top=True)
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        _add_command(sub, command, whole=wanted is None or wanted == command.name)
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser


def _version() -> str:
    import importlib.metadata  # noqa: PLC0415 - only for --version

    try:
        return importlib.metadata.version("qjournal")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"
