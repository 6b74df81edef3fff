"""The command line's argument types and the option groups several commands share.

Strategy: a value is checked where argparse reads it, by the library's own check (so the command line
and the Python API refuse the same values with the same words), and reported as argparse reports a
bad value: one line naming the option, exit 1.
"""

from __future__ import annotations

import argparse
import re
import string
from collections.abc import Callable
from typing import Any

from qjournal.errors import JournalArgumentError

_SIZE_RE = re.compile(r"^\s*(0x[0-9a-f]+|\d+)\s*(?:([kmgtpe])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}


# -- types ---------------------------------------------------------------------


def parse_size(text: str) -> int:
    """A byte count: decimal or 0x hex, with an optional binary suffix (64K, 1M, 2GiB)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: expected bytes as a number with an optional suffix K, M, G, T (e.g. 4096, 64K, 1M)"
        )
    number, unit = m.group(1), (m.group(2) or "").lower()
    return int(number, 16 if number.lower().startswith("0x") else 10) * _SIZE_UNITS[unit]


def _checked(check: Callable[..., Any], *args: Any) -> Any:
    """Run one of the library's argument checks for argparse: its message, as argparse reports a bad value."""
    try:
        return check(*args)
    except JournalArgumentError as exc:
        raise argparse.ArgumentTypeError(exc.message(cli=True)) from None


def _integer(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {what} {text!r}") from None


def area_length(text: str) -> int:
    """--length, --size: a non-zero multiple of 4096 (the library's rule, D1)."""
    from qjournal.making import len_area_of  # noqa: PLC0415 - the library's rule, imported when a value is read

    n = parse_size(text)
    _checked(len_area_of, None, n)
    return n


def num_clusters(text: str) -> int:
    """--clusters: at least 1 (the library's rule, D1)."""
    from qjournal.making import len_area_of  # noqa: PLC0415

    n = _integer(text, "number")
    _checked(len_area_of, n, None)
    return n


def sector(text: str) -> int:
    """--physical, --logical: 0 to 2**64-1 (the library's rule, D8)."""
    from qjournal.entries import check_sector  # noqa: PLC0415

    return _checked(check_sector, "sector", _integer(text, "sector number"))  # type: ignore[no-any-return]


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut with an ellipsis when longer than ``limit``."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _hex(text: str) -> bytes:
    """Bytes written in hex, two digits a byte, nothing else (no spaces: a shell's word splitting hides them)."""
    bad = next((i for i, c in enumerate(text) if c not in string.hexdigits), None)
    if bad is not None:
        what = "whitespace" if text[bad].isspace() else repr(text[bad])
        raise argparse.ArgumentTypeError(f"not a hex string: {_shown(text)} has {what} at character {bad + 1}")
    if len(text) % 2:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is {len(text)} hex digits, an odd number: a byte is two digits (one got lost?)"
        )
    return bytes.fromhex(text)


def digest(text: str) -> bytes:
    """--hash: a digest in hex, 1 to 236 bytes (the library's rule, D8)."""
    from qjournal.entries import check_digest  # noqa: PLC0415

    return _checked(check_digest, _hex(text))  # type: ignore[no-any-return]


def digest_prefix(text: str) -> str:
    """get's DIGEST: a whole digest in hex, or its first hex digits (any number of them), in lower case."""
    from qjournal.format import MAX_LEN_DIGEST  # noqa: PLC0415

    bad = next((i for i, c in enumerate(text) if c not in string.hexdigits), None)
    if bad is not None or not text:
        what = "nothing" if not text else "whitespace" if text[bad or 0].isspace() else repr(text[bad or 0])
        raise argparse.ArgumentTypeError(f"not a hex string: {_shown(text)} has {what} at character {(bad or 0) + 1}")
    if len(text) > 2 * MAX_LEN_DIGEST:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is {len(text)} hex digits: a digest is at most {MAX_LEN_DIGEST} bytes (D8)")
    return text.lower()


def digest_size(text: str) -> int:
    """--digest-size: a digest length in bytes that a HASH entry can hold, 1 to 236 (D8)."""
    from qjournal.entries import check_digest  # noqa: PLC0415

    n = _integer(text, "digest size")
    _checked(check_digest, bytes(n))
    return n


def body(text: str) -> bytes:
    """--body: hex, at most 252 bytes (the library's rule, D3)."""
    from qjournal.entries import check_body  # noqa: PLC0415

    return _checked(check_body, _hex(text))  # type: ignore[no-any-return]


def num_jobs(text: str) -> int:
    """--jobs: 1 to MAX_JOBS (the library's rule)."""
    from qjournal.parallel import MAX_JOBS  # noqa: PLC0415 - imported by the commands that take --jobs

    n = _integer(text, "number")
    if not 1 <= n <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"{text!r}: from 1 to {MAX_JOBS} (1: no other thread or process)")
    return n


def max_problems(text: str) -> int:
    """--max-problems: at least 1."""
    n = _integer(text, "number")
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1")
    return n


def type_code(text: str) -> int:
    """--type: an unassigned type code (the library's rule, D4)."""
    from qjournal.entries import check_type_code  # noqa: PLC0415

    return _checked(check_type_code, _integer(text, "type code"))  # type: ignore[no-any-return]


# -- option groups ---------------------------------------------------------------


def add_area(p: argparse.ArgumentParser, path_help: str = "journal file (or an image holding the area)",
             metavar: str = "PATH") -> None:
    """PATH (JOURNAL in an image command), --offset, --length: a journal's area (:func:`qjournal.cli.console.open_reader`
    opens it)."""
    p.add_argument("path", metavar=metavar, help=path_help)
    p.add_argument(
        "--offset", type=parse_size, default=0, metavar="BYTES",
        help="where the area starts in the file (default 0; suffixes K, M, G accepted)",
    )
    p.add_argument(
        "--length", type=area_length, default=None, metavar="BYTES",
        help="area length, a multiple of 4096 (default: to the end of the file; a write into an area inside "
        "a larger file needs it)",
    )


def add_unaligned(p: argparse.ArgumentParser) -> None:
    """--unaligned-offset: a write command's leave to write at an offset off the 512-byte grid."""
    p.add_argument(
        "--unaligned-offset", action="store_true",
        help="write at an offset that is not a multiple of 512, or that cuts the cluster grid of a journal just "
        "below it (refused otherwise: an offset one entry off is a slip, not an area)",
    )


def add_jobs(p: argparse.ArgumentParser, what: str = "check") -> None:
    """--jobs for the parallel check (or formatting) of a large area: processes."""
    from qjournal.parallel import MAX_JOBS  # noqa: PLC0415

    p.add_argument(
        "--jobs", type=num_jobs, default=None, metavar="N",
        help=f"processes (forked workers, not threads) for the {what} of a large area (8 MiB or more; default: one "
        f"per usable core; 1: none; at most {MAX_JOBS}); the result is the same for any N",
    )


def add_output(p: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    """--output, default human."""
    p.add_argument("--output", choices=choices, default="human", help="output format (default: human)")


def add_image(p: argparse.ArgumentParser) -> None:
    """How an image is read: --format, --block-size (raw images), --jobs."""
    from qjournal.parallel import MAX_JOBS  # noqa: PLC0415

    p.add_argument("--format", choices=("qcow2", "raw"), default=None,
                   help="read the image as this format (default: qcow2 when it starts with the qcow2 magic, else raw)")
    p.add_argument("--block-size", type=parse_size, default=None, metavar="BYTES",
                   help="the block size, a power of two from 512 to 2M: a raw image's blocks (default 64K); for a qcow2 image "
                   "at most its cluster size (default: the cluster size)")
    p.add_argument("--jobs", type=num_jobs, default=None, metavar="N",
                   help=f"workers hashing the image: threads, or forked processes for blocks under 64 KiB (index; threads "
                   f"contend for Python's lock there) (default: one per usable core; at most {MAX_JOBS})")
