"""What the commands print and how: stdout lines, one-line errors on stderr, file names, sizes, the progress bar.

Strategy: every byte the CLI writes goes through these helpers, so that a command module says what to
print, never how; an error line always starts ``qjournal: `` and a library error's hint gets a line of
its own; a file name goes through :func:`shown` wherever it is printed (an error line is escaped whole).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from qjournal.errors import Error

if TYPE_CHECKING:  # the reader is imported by the commands that read, not by the command line's start-up
    from qjournal.reader import JournalReader

PROGRESS_MIN_CLUSTERS = 64
"""A progress bar is shown only for areas of more clusters than this (and only on a terminal)."""

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", "'": "\\'"}


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8 (the file system's surrogate escape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(name: str) -> str:
    """A file name as the CLI prints it: as it is when every character is printable, else quoted with escapes.

    A newline, a terminal escape or a byte that is not UTF-8 in a name is
    shown as ``\\n``, ``\\x1b``, ``\\xff`` inside single quotes, so that no
    name can forge a line of output (``'x\\nj.bin: no problems found'``) or
    drive the terminal; the quotes tell such a name from a plain one.
    """
    if name.isprintable():
        return name
    return "'" + "".join(map(_escape_char, name)) + "'"


def _printable(message: str) -> str:
    """An error message made one printable line: what a name embedded in it may hold, escaped (see :func:`shown`)."""
    if message.isprintable():
        return message
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in message)


def out(line: str = "") -> None:
    """One line on stdout."""
    sys.stdout.write(line + "\n")


def out_bytes(*parts: bytes) -> None:
    """Bytes on stdout, already UTF-8 (dump's runs, encoded by the workers that formatted them): written to the
    binary layer under ``sys.stdout`` when it has one (no decoding and encoding again), else decoded."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        for part in parts:
            sys.stdout.write(part.decode())
        return
    sys.stdout.flush()  # what was written as text goes first
    for part in parts:
        buffer.write(part)


def err(message: str) -> None:
    """One line on stderr, ``qjournal: MESSAGE``; a stderr that is gone is not an error of ours."""
    try:
        sys.stderr.write(f"qjournal: {_printable(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def err_journal(exc: Error, suffix: str = "") -> None:
    """A library error on stderr, options spelt as on the command line; its hint on a line of its own."""
    err(exc.message(cli=True) + suffix)
    hint = exc.hint_text(cli=True)
    if hint:
        err(f"hint: {hint}")


def human_size(n: int) -> str:
    """``n`` bytes in the largest binary unit it reaches: 4 KiB, 1.5 MiB, 100 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def isatty(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal; a closed or odd stream is not."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A tqdm bar on stderr for large areas, only when stderr is a terminal."""

    def __init__(self, len_area: int, what: str, *, min_len: int | None = None) -> None:
        """A bar for ``len_area`` bytes when they are more than ``min_len`` (default :data:`PROGRESS_MIN_CLUSTERS` clusters)."""
        self.bar: Any = None
        if min_len is None:
            from qjournal.format import LEN_CLUSTER  # noqa: PLC0415

            min_len = PROGRESS_MIN_CLUSTERS * LEN_CLUSTER
        if len_area > min_len and isatty(sys.stderr):
            from tqdm import tqdm  # noqa: PLC0415 - only when a bar is shown: the CLI starts faster without it

            # No monitor thread: with a second thread running, a check stays in this process (qjournal.parallel).
            tqdm.monitor_interval = 0
            self.bar = tqdm(
                total=len_area, desc=what, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, leave=False, dynamic_ncols=True,
            )

    def __call__(self, done: int) -> None:
        if self.bar is not None and done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    @property
    def callback(self) -> Progress | None:
        """This bar as a library ``progress`` argument: None when no bar is shown (the library then skips the calls)."""
        return self if self.bar is not None else None


def open_reader(args: argparse.Namespace) -> JournalReader:
    """The journal the command line addresses: PATH, --offset, --length."""
    from qjournal.reader import JournalReader  # noqa: PLC0415

    return JournalReader(args.path, args.offset, args.length)


@contextlib.contextmanager
def debug_log(on: bool) -> Iterator[None]:
    """With ``--debug``: the package's DEBUG log on stderr while the command runs (why a parallel run fell back)."""
    if not on:
        yield
        return
    import logging  # noqa: PLC0415 - only with --debug

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("qjournal: debug: %(message)s"))
    logger = logging.getLogger("qjournal")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
