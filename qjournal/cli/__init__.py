"""The ``qjournal`` command line: inspect, check, create and edit journals.

Modelled on ``qemu-img info/check`` (human output by default, ``--output json``
for machines, check's exit codes) and on Kaitai's ``ksdump`` (dump the parsed
structure). A journal is addressed by a path plus optional ``--offset`` and
``--length`` in bytes, so an area inside a larger file (a raw container, a partition) works too.

Exit codes: 0 success (check: clean), 1 usage, I/O or refused operation (get: a digest with no live entry),
2 corrupt journal, 3 (check only) clean but with anomalies, 130 interrupted; each command's help lists
the ones it can return. Every error is one line on stderr, ``qjournal: FILE: offset ...: reason`` (with
``--output json``, also one JSON object on stdout: :func:`_json_failure`);
``--debug`` adds the traceback, and the package's DEBUG log (why a parallel run fell back to one process).

Layout: :mod:`~qjournal.cli.base` (exit codes, :class:`~qjournal.cli.base.Command`),
:mod:`~qjournal.cli.arguments` (argument types, shared options), :mod:`~qjournal.cli.console` (what is
printed and how), :mod:`~qjournal.cli.parser` (the table of commands), and one module per family of
commands: :mod:`~qjournal.cli.read` (info, dump, get, check), :mod:`~qjournal.cli.write` (create,
pack, reset), :mod:`~qjournal.cli.append`, :mod:`~qjournal.cli.images` (index, verify). This module
runs one command and is the one error handler.

Adding a command: a new module ``qjournal/cli/NAME.py`` defining ``cmd_NAME(args) -> int`` (raise
errors, do not print them), a function adding its arguments (the shared ones are in
:mod:`~qjournal.cli.arguments`), and ``NAME = Command(...)`` with its help, description, the exit
codes it can return and examples; then one line, ``NAME.NAME,``, in :data:`qjournal.cli.parser.COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys

from qjournal.cli.arguments import parse_size
from qjournal.cli.base import EXIT_CORRUPT, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from qjournal.cli.console import PROGRESS_MIN_CLUSTERS, debug_log, err, err_journal
from qjournal.cli.parser import build_parser
from qjournal.errors import CorruptJournalError, Error, JournalFullError, NotAJournalError, UnsupportedImageError

__all__ = ["PROGRESS_MIN_CLUSTERS", "build_parser", "main", "parse_size"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | None = None
    try:
        parser = build_parser(argv)
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # said by the command's own parser, so that the error points to its help
            command = parser.commands.get(args.command) if args.command else None  # type: ignore[attr-defined]
            (command or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command is None:
            sys.stderr.write(parser.format_usage())
            err("a COMMAND is required (see 'qjournal --help')")
            return EXIT_ERROR
        with debug_log(bool(getattr(args, "debug", False))):
            code: int = args.func(args)
        sys.stdout.flush()
        return code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except BaseException as exc:
        code = _report_failure(exc, debug=bool(getattr(args, "debug", False)), args=args)
        if args is not None and code in (EXIT_ERROR, EXIT_CORRUPT) and getattr(args, "output", None) == "json" \
                and not isinstance(exc, UsageError) and not getattr(args, "json_done", False):
            _json_failure(exc, code, args)
        return code


def _json_failure(exc: BaseException, code: int, args: argparse.Namespace) -> None:
    """With ``--output json``, a failure is one JSON object on stdout too (for ``| jq``), as well as its line on stderr.

    Not a usage error: a command line argparse refuses is said on stderr only, whatever it asked for.

    ``{"filename", "exit_code", "error": {"code", "message", and for a library error "ofs", "file_ofs",
    "reason", "hint" (and "rule" for a corruption)}}``; ``code`` is the error's stable code (qjournal.codes)
    when it has one, else the kind of error (``not_a_journal``, ``journal_full``, ``io``, ``usage``, ``internal``...).
    """
    from qjournal.wording import json_document  # noqa: PLC0415 - json only when a JSON failure is printed

    error: dict[str, object]
    if isinstance(exc, Error):
        kind = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type(exc).__name__.removesuffix("Error")).lower()
        error = {"code": getattr(exc, "code", kind), "message": exc.message(cli=True), **exc.to_dict(cli=True),
                 "hint": exc.hint_text(cli=True)}
    elif isinstance(exc, OSError):
        error = {"code": "io", "message": f"{exc.filename}: {exc.strerror or exc}" if exc.filename else f"{exc.strerror or exc}"}
    else:
        error = {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}
    try:
        name = (exc.source if isinstance(exc, Error) else None) or getattr(args, "path", None)
        sys.stdout.write(json_document({"filename": name, "exit_code": code, "error": error}) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After EPIPE on stdout: point it at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _pack_command(args: argparse.Namespace, exc: JournalFullError) -> str:
    """The exact command that packs the journal ``args`` address into a new file twice its size."""
    stem, _ = os.path.splitext(os.path.basename(args.path))
    target = os.path.join(os.path.dirname(args.path), f"{stem}-packed.qjournal")
    area = ""
    if args.offset or args.length is not None:
        area = f" --source-offset {args.offset}" + (f" --source-length {args.length}" if args.length is not None else "")
    return f"qjournal pack {shlex.quote(args.path)} {shlex.quote(target)}{area} --clusters {2 * exc.num_clusters}"


def _meant(args: argparse.Namespace | None, exc: Error) -> str | None:
    """The command line a user who gave an image where a journal goes, or a journal where an image goes, probably
    meant (the two arguments swapped)."""
    if args is None or args.command not in ("verify", "index"):
        return None
    image, path = getattr(args, "image", None), getattr(args, "path", None)
    if image is None or path is None:
        return None
    swapped = (isinstance(exc, NotAJournalError) and exc.source == path) or (
        isinstance(exc, UnsupportedImageError) and exc.code == "journal_file" and exc.source == image)
    if not swapped:
        return None
    first, second = (image, path) if args.command == "verify" else (path, image)
    return f"qjournal {args.command} {shlex.quote(first)} {shlex.quote(second)}"


def _report_failure(exc: BaseException, *, debug: bool, args: argparse.Namespace | None = None) -> int:
    """The one error handler: say what failed on stderr (the traceback too with --debug); the exit code."""
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()  # the reader (head, less) went away: stop quietly
        return EXIT_OK
    if debug and not isinstance(exc, UsageError):
        import traceback  # noqa: PLC0415 - only with --debug

        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        err("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError):
        err(str(exc))
        return EXIT_ERROR
    if isinstance(exc, CorruptJournalError):
        err_journal(exc, f" [{exc.code}]")
        return EXIT_CORRUPT
    if isinstance(exc, JournalFullError) and args is not None and exc.num_clusters and args.command == "append":
        err(exc.message(cli=True))
        err(f"hint: to go on, pack the journal into a larger one (its live entries, in a fresh file): {_pack_command(args, exc)}")
        return EXIT_ERROR
    if isinstance(exc, Error):  # a journal's or an image's
        err_journal(exc)
        meant = _meant(args, exc)
        if meant:
            err(f"did you mean: {meant}?")
        return EXIT_ERROR
    if isinstance(exc, OSError):
        err(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else f"{exc.strerror or exc}")
        return EXIT_ERROR
    if isinstance(exc, Exception):  # a bug: still one line, unless --debug
        err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_ERROR
    raise exc  # SystemExit and the like: not ours to report
