"""The ``qjournal`` command line: inspect, check, create and edit journals.

Modelled on ``qemu-img info/check`` (human output by default, ``--output json``
for machines, check's exit codes) and on Kaitai's ``ksdump`` (dump the parsed
structure). A journal is addressed by a path plus optional ``--offset`` and
``--length`` in bytes, so an area inside a larger file (an image) works too.

Exit codes: 0 success (check: clean), 1 usage, I/O or refused operation (get: a digest with no live entry),
2 corrupt journal, 3 (check only) clean but with anomalies, 130 interrupted.
Every error is one line on stderr, ``qjournal: FILE: offset ...: reason``;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shlex
import string
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TextIO

from qjournal import hexview, stream
from qjournal.dumping import Marker, Run, format_item, format_items, runs, walk_clusters
from qjournal.entries import (
    Entry,
    HashEntry,
    RawEntry,
    check_body,
    check_digest,
    check_entry,
    check_sector,
    check_type_code,
    entry_from_dict,
)
from qjournal.errors import CorruptJournalError, JournalArgumentError, JournalError, JournalFullError, JournalIOError, spell
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HASH_OVERHEAD,
    LEN_SHA256_DIGEST,
    max_len_entry,
    num_fit,
    type_name,
)
from qjournal.image import DEFAULT_BLOCK_SIZE, Image, open_image
from qjournal.index import index as index_image
from qjournal.making import create, len_area_of, reset
from qjournal.packing import pack
from qjournal.reader import CheckReport, JournalReader, JournalState, Problem
from qjournal.verify import verify as verify_image
from qjournal.wording import count
from qjournal.writer import open_for_append

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CORRUPT = 2
EXIT_ANOMALIES = 3
EXIT_INTERRUPTED = 130

LEN_SHA256_ENTRY = LEN_SHA256_DIGEST + LEN_HASH_OVERHEAD
"""A SHA-256 HASH entry: 50 bytes (D8)."""

LIVE_BATCH = 1024
"""Live entries formatted at a time by ``dump --live``."""

PROGRESS_MIN_CLUSTERS = 64
"""A progress bar is shown only for areas of more clusters than this (and only on a terminal)."""

EXIT_MEANINGS = {
    EXIT_OK: "success",
    EXIT_ERROR: "usage error, I/O error, or an operation refused",
    EXIT_CORRUPT: "the journal is corrupt",
    EXIT_ANOMALIES: "no corruption, but anomalies",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
"""What each exit code means; each command's help lists the codes it can return, in its own words."""

DOCS = (
    "The format and its numbered rules (D1, D2, ...): docs/format.md in the source, "
    "or the file qjournal.format_reference_path() names in an installed package."
)


def _exit_codes(*lines: tuple[int, str]) -> str:
    """A command's exit-code table: the codes it can return and what they mean for it."""
    rows = [f"  {code:<4} {text}" for code, text in lines]
    return "exit codes:\n" + "\n".join(rows) + f"\n  {EXIT_INTERRUPTED:<4} {EXIT_MEANINGS[EXIT_INTERRUPTED]}\n"


_SIZE_RE = re.compile(r"^\s*(0x[0-9a-f]+|\d+)\s*(?:([kmgtpe])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}


class UsageError(Exception):
    """A bad command line: reported on one line, exit 1."""


# -- arguments -----------------------------------------------------------------


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


def _area_length(text: str) -> int:
    """--length, --size: a non-zero multiple of 4096 (the library's rule, D1)."""
    n = parse_size(text)
    _checked(len_area_of, None, n)
    return n


def _num_clusters(text: str) -> int:
    """--clusters: at least 1 (the library's rule, D1)."""
    n = _integer(text, "number")
    _checked(len_area_of, n, None)
    return n


def _sector(text: str) -> int:
    """--physical, --logical: 0 to 2**64-1 (the library's rule, D8)."""
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


def _digest(text: str) -> bytes:
    """--hash: a digest in hex, 1 to 236 bytes (the library's rule, D8)."""
    return _checked(check_digest, _hex(text))  # type: ignore[no-any-return]


def _digest_size(text: str) -> int:
    """--digest-size: a digest length in bytes that a HASH entry can hold, 1 to 236 (D8)."""
    n = _integer(text, "digest size")
    _checked(check_digest, bytes(n))
    return n


def _body(text: str) -> bytes:
    """--body: hex, at most 252 bytes (the library's rule, D3)."""
    return _checked(check_body, _hex(text))  # type: ignore[no-any-return]


def _num_jobs(text: str) -> int:
    """--jobs: at least 1."""
    n = _integer(text, "number")
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 (1: no other thread or process)")
    return n


def _type_code(text: str) -> int:
    """--type: an unassigned type code (the library's rule, D4)."""
    return _checked(check_type_code, _integer(text, "type code"))  # type: ignore[no-any-return]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and exit 1 (2 means corrupt here)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout (exit-code table, examples); descriptions go through :func:`_wrap`."""


def _wrap(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, 78) for p in paragraphs)


def _add_common(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """--debug, before or after the command: one flag, one destination (a subcommand's leaves the top's alone)."""
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS, help="show a traceback on errors")


def _add_area(p: argparse.ArgumentParser, path_help: str = "journal file (or an image holding the area)") -> None:
    p.add_argument("path", metavar="PATH", help=path_help)
    p.add_argument(
        "--offset", type=parse_size, default=0, metavar="BYTES",
        help="where the area starts in the file (default 0; suffixes K, M, G accepted)",
    )
    p.add_argument(
        "--length", type=_area_length, default=None, metavar="BYTES",
        help="area length, a multiple of 4096 (default: to the end of the file; a write into an area inside "
        "a larger file needs it)",
    )


def _add_jobs(p: argparse.ArgumentParser, what: str = "check") -> None:
    p.add_argument(
        "--jobs", type=_num_jobs, default=None, metavar="N",
        help=f"worker processes for the {what} of a large area (8 MiB or more; default: one per usable core; "
        "1: none); the result is the same for any N",
    )


def _add_output(p: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    p.add_argument("--output", choices=choices, default="human", help="output format (default: human)")


def _command(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str, description: tuple[str, ...], *,
    codes: str, examples: str = "",
) -> _Parser:
    """One subcommand, run by ``func``: its one-line help, description, examples, own exit codes, and --debug."""
    epilog = (f"examples:\n{examples}\n" if examples else "") + codes
    parser: _Parser = sub.add_parser(
        name, help=help, description=_wrap(*description), formatter_class=_Formatter, epilog=epilog
    )
    _add_common(parser)
    parser.set_defaults(func=func)
    return parser


_READ_CODES = _exit_codes(
    (EXIT_OK, "success"),
    (EXIT_ERROR, "usage or I/O error (a missing file, a bad offset or length)"),
    (EXIT_CORRUPT, "the journal is corrupt: the error names the rule and the byte offset"),
)
_WRITE_CODES = _exit_codes(
    (EXIT_OK, "success"),
    (EXIT_ERROR, "usage or I/O error, or refused with nothing written (journal full, locked, not reset, "
                 "bytes that are not the journal's, no --yes)"),
    (EXIT_CORRUPT, "the journal is corrupt (nothing written)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command; ``parser.commands`` maps each name to its own parser."""
    parser = _Parser(
        prog="qjournal",
        formatter_class=_Formatter,
        description=_wrap("Inspect, check, create and edit QCOW2 deduplication metadata journals."),
        epilog="Run 'qjournal COMMAND --help' for a command's options and its exit codes.\n\n"
        + _exit_codes(
            (EXIT_OK, "success (check: no problem found)"),
            (EXIT_ERROR, "usage or I/O error, or an operation refused with nothing written"),
            (EXIT_CORRUPT, "the journal is corrupt"),
            (EXIT_ANOMALIES, "check only: no corruption, but anomalies"),
        )
        + "\n" + textwrap.fill(DOCS, 78) + "\n",
    )
    _add_common(parser, top=True)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}, {stream.implementation()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _command(
        sub, "info", cmd_info, "area size, clusters used, tail, room for the next entry, entry counts, anomalies",
        ("Show where a journal stands: area size, clusters used of total, the tail, the free bytes and how "
         "large the next entry may be, entry counts by type, the live digests and the HASH entries they "
         "superseded (a second pass over the area, through the live view), and anomalies (like "
         "'qemu-img info').",),
        codes=_READ_CODES,
    )
    _add_area(p)
    _add_output(p, ("human", "json"))
    _add_jobs(p)

    p = _command(
        sub, "dump", cmd_dump, "the replayed entries, one per line (or JSON, or an annotated hex view)",
        ("Print the entries replay yields, in order, one per line: offset, type, size, and for HASH the "
         "digest and both sectors. --output jsonl writes one JSON object per entry, the schema "
         "'qjournal append' reads, so 'qjournal dump A --output jsonl | qjournal append B' copies A's "
         "entries into B. Offsets are area offsets (add --offset for the file position).",),
        codes=_READ_CODES,
    )
    _add_area(p)
    _add_output(p, ("human", "json", "jsonl"))
    p.add_argument("--all", action="store_true", help="also show the END entries and the NONE where replay stopped")
    p.add_argument(
        "--live", action="store_true",
        help="only the live HASH entries: the last one per digest, in the order of those last entries",
    )
    _add_jobs(p, "formatting")
    p.add_argument(
        "--hex", action="store_true",
        help="annotated hex view of each replayed cluster, every byte labelled by its field "
        "(the clusters after the tail are summarised)",
    )

    p = _command(
        sub, "get", cmd_get, "the live entry of a digest: the last HASH entry with it",
        ("Print the live HASH entry of each DIGEST: the last entry with that digest that replay yields, "
         "the one a lookup uses. The line is dump's (with --output json, dump's JSON object, one per "
         "line). A digest with no entry is named on stderr and the exit code is 1.",),
        codes=_exit_codes(
            (EXIT_OK, "every digest has a live entry"),
            (EXIT_ERROR, "a digest has no live entry, or a usage or I/O error"),
            (EXIT_CORRUPT, "the journal is corrupt: the error names the rule and the byte offset"),
        ),
        examples="  qjournal get j.bin $(printf data | sha256sum | cut -c1-64)\n"
        "  qjournal get j.bin DIGEST --output json",
    )
    _add_area(p)
    p.add_argument("digests", nargs="+", type=_digest, metavar="DIGEST", help="a digest in hex, as dump prints it")
    _add_output(p, ("human", "json"))

    p = _command(
        sub, "check", cmd_check, "validate the whole area; exit 0 clean, 2 corrupt, 3 anomalies",
        ("Validate the whole area against the format and print every problem with its offset (like "
         "'qemu-img check'): corruption (what replay cannot go past) and anomalies (what a crash or a stray "
         "write leaves: a torn write, a dirty tail, entries of unassigned types, dirty END padding).",),
        codes=_exit_codes(
            (EXIT_OK, "no problem found"),
            (EXIT_ERROR, "usage or I/O error"),
            (EXIT_CORRUPT, "at least one corruption (with --strict, an anomaly too)"),
            (EXIT_ANOMALIES, "no corruption, but anomalies"),
        ),
    )
    _add_area(p)
    _add_output(p, ("human", "json"))
    _add_jobs(p)
    p.add_argument("--strict", action="store_true", help="count anomalies as corruption (exit 2)")

    _add_write_commands(sub)
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser


def _add_write_commands(sub: Any) -> None:
    """create, append, pack, reset."""
    p = _command(
        sub, "create", cmd_create, "format a new journal (an area of 0xFF bytes)",
        ("Create a journal: an area every byte of which is 0xFF. A new file gets --clusters N clusters of "
         "4096 bytes (or --size bytes). With --offset (and --length, --clusters or --size) the area is "
         "formatted inside an existing file, say an image, and no byte outside it is touched; a file that "
         "ends exactly at --offset is extended by the area. A new file is written whole or not at all.",
         "An area holding any byte other than 0xFF (a journal, or other data) is refused unless --force, "
         "which resets it; without a size, --force resets only an area that holds a journal and nothing "
         "else.",),
        codes=_exit_codes((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, or refused with nothing written")),
        examples="  qjournal create j.bin --clusters 16\n  qjournal create image.qcow2 --offset 1M --length 64K",
    )
    p.add_argument("path", metavar="PATH", help="journal file to create, or the existing file to format an area in")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--clusters", type=_num_clusters, metavar="N", help="number of 4096-byte clusters")
    size.add_argument("--size", type=_area_length, metavar="BYTES", help="area size in bytes, a multiple of 4096 (64K, 1M...)")
    p.add_argument("--offset", type=parse_size, default=0, metavar="BYTES", help="where the area starts in the file (default 0)")
    p.add_argument(
        "--length", type=_area_length, default=None, metavar="BYTES",
        help="area length inside an existing file (default: --clusters/--size, else to the end of the file)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an area that is not reset (its bytes become 0xFF)")

    p = _command(
        sub, "append", cmd_append, "append one entry, or JSON lines from stdin (as dump --output jsonl writes)",
        ("Append one HASH entry (--hash, --physical, --logical) or one entry of an unassigned type "
         "(--type, --body). With no entry option, read JSON lines from stdin (or --from FILE), one entry "
         "per line, the schema 'qjournal dump --output jsonl' writes: every line is checked first, a bad "
         "one is reported as 'line N: ...' and nothing is written; then all the entries are appended as "
         "one atomic batch, which is refused whole if it does not fit. Blank lines, and the END and NONE "
         "records of 'dump --all', are skipped.",
         "A journal normally records one hash algorithm: a digest whose length differs from the journal's "
         "last HASH entry is written with a warning; --digest-size N refuses any other length.",
         "Opening a journal for append validates the whole area, then erases what an interrupted append "
         "left after its tail, and nothing else: other bytes there (data after the journal, an offset one "
         "cluster off) are refused, nothing written, unless --erase-foreign-data. A corrupt journal is "
         "refused. An area inside a larger file needs --length with --offset.",
         "What durability costs: every append is made durable before the command returns, in three fsyncs "
         "(its first byte, the rest, the commit byte), whatever its size. Each 'qjournal append' also "
         "validates the whole journal. So append many entries as one batch: 10,000 entries in one batch "
         "take a few hundredths of a second; 10,000 separate appends take seconds of fsyncs alone (in "
         "Python, 'durable=False' flushes instead, safe against a crash of the process but not of the "
         "machine).",),
        codes=_WRITE_CODES,
        examples="  qjournal append j.bin --hash $(printf data | sha256sum | cut -c1-64) --physical 2048 --logical 0\n"
        "  qjournal dump a.bin --output jsonl | qjournal append b.bin",
    )
    _add_area(p)
    p.add_argument("--hash", dest="digest", type=_digest, metavar="HEX", help="digest of a HASH entry, in hex (no spaces)")
    p.add_argument("--physical", type=_sector, metavar="N", help="physical_sector of the HASH entry")
    p.add_argument("--logical", type=_sector, metavar="N", help="first_logical_sector of the HASH entry")
    p.add_argument(
        "--type", dest="entry_type", type=_type_code, metavar="CODE", help="type code of an unassigned-type entry (0x00, 0x03-0xfe)"
    )
    p.add_argument("--body", type=_body, metavar="HEX", help="body of the unassigned-type entry, in hex (default empty)")
    p.add_argument("--from", dest="from_file", metavar="FILE", help="read the JSON lines from FILE instead of stdin ('-': stdin)")
    p.add_argument(
        "--digest-size", type=_digest_size, metavar="N",
        help="refuse a HASH entry whose digest is not N bytes (32 for SHA-256)",
    )
    p.add_argument(
        "--erase-foreign-data", action="store_true",
        help="erase bytes past the tail that are not what an interrupted append leaves (refused by default: "
        "they may be another file's data; look at them with 'qjournal check' first)",
    )
    _add_jobs(p)

    p = _command(
        sub, "pack", cmd_pack, "copy only the live HASH entries of SOURCE into a fresh journal TARGET",
        ("Pack a journal: replay SOURCE, keep the last HASH entry per digest (in the order of their last "
         "occurrence), drop entries of unassigned types, and write them as one batch into a fresh journal "
         "TARGET, made as by 'qjournal create' (a new file gets as many clusters as SOURCE unless "
         "--clusters). Nothing is written when they do not fit. SOURCE is never written.",),
        codes=_WRITE_CODES,
        examples="  qjournal pack full.qjournal bigger.qjournal --clusters 64\n"
        "  qjournal pack image.qcow2 packed.qjournal --source-offset 1M --source-length 64K",
    )
    p.add_argument("path", metavar="SOURCE", help="the journal to pack (read only)")
    p.add_argument("dst", metavar="TARGET", help="the new journal (a new file, or an existing file to format an area in)")
    p.add_argument("--source-offset", "--offset", dest="offset", type=parse_size, default=0, metavar="BYTES",
                   help="where SOURCE's area starts in its file (default 0)")
    p.add_argument("--source-length", "--length", dest="length", type=_area_length, default=None, metavar="BYTES",
                   help="SOURCE's area length (default: to the end of the file)")
    p.add_argument("--target-offset", "--dst-offset", dest="dst_offset", type=parse_size, default=0, metavar="BYTES",
                   help="where TARGET's area starts in its file (default 0)")
    p.add_argument("--target-length", "--dst-length", dest="dst_length", type=_area_length, default=None, metavar="BYTES",
                   help="TARGET's area length")
    p.add_argument("--clusters", type=_num_clusters, metavar="N", help="TARGET's number of clusters (default: SOURCE's, for a new file)")
    p.add_argument("--force", action="store_true", help="overwrite a TARGET area that is not reset")

    p = _command(
        sub, "reset", cmd_reset, "erase a journal: every byte of the area back to 0xFF (needs --yes)",
        ("Reset a journal: write 0xFF over the whole area, leaving an empty journal. Every entry is lost, "
         "so the command refuses to run without --yes, and says which bytes it would erase. A corrupt area "
         "can be reset too, given its --length; no byte outside the area is touched.",),
        codes=_exit_codes((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, or refused with nothing written (no --yes)")),
    )
    _add_area(p)
    p.add_argument("--yes", action="store_true", help="yes, discard every entry of the area")

    _add_image_commands(sub)


def _add_image(p: argparse.ArgumentParser) -> None:
    """How an image is read: --format, --block-size (raw images), --jobs."""
    p.add_argument("--format", choices=("qcow2", "raw"), default=None,
                   help="read the image as this format (default: qcow2 when it starts with the qcow2 magic, else raw)")
    p.add_argument("--block-size", type=parse_size, default=None, metavar="BYTES",
                   help="a raw image's block size, a power of two from 512 to 2M (default 64K; a qcow2 image uses its own clusters)")
    p.add_argument("--jobs", type=_num_jobs, default=None, metavar="N", help="hashing threads (default: one per core)")


def _add_image_commands(sub: Any) -> None:
    """index, verify: the journal and the image it describes."""
    p = _command(
        sub, "index", cmd_index, "build the journal of an image's data clusters, and its dedup summary",
        ("Build the journal the deduplication series would have recorded for IMAGE: walk the guest clusters "
         "in guest order; for every allocated, uncompressed data cluster read its bytes; a cluster of zeros "
         "is counted and not journaled; otherwise its SHA-256, and the first cluster with a digest becomes "
         "a HASH entry (physical sector = host offset / 512, first logical sector = guest offset / 512); later "
         "clusters with the same digest are duplicates. Compressed clusters are counted, not journaled. A raw "
         "image (no qcow2 magic) is indexed in blocks of --block-size, physical = logical. Only the image's "
         "own clusters count (not a backing file's); with internal snapshots, the active one.",
         "JOURNAL is made sized to hold the entries, once the whole image is hashed (refused if it exists, "
         "unless --force), and written in atomic batches. The summary is like 'zdb -S': clusters allocated, "
         "zero, compressed, unique, duplicate, the bytes a deduplication would save, the dedup ratio, and "
         "how many digests are shared by 1, 2, 3-4, 5-8... clusters. Encrypted images, an external data "
         "file and extended L2 entries are refused.",),
        codes=_exit_codes((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, an image it cannot map, or refused")),
        examples="  qjournal index disk.qcow2 disk.qjournal\n  qjournal index disk.raw disk.qjournal --block-size 4K --output json",
    )
    p.add_argument("image", metavar="IMAGE", help="the disk image: qcow2 (versions 2 and 3) or raw")
    p.add_argument("path", metavar="JOURNAL", help="the journal to make")
    _add_image(p)
    p.add_argument("--force", action="store_true", help="replace an existing journal (an area that holds a journal and nothing else)")
    _add_output(p, ("human", "json"))

    p = _command(
        sub, "verify", cmd_verify, "check every live HASH entry of a journal against its image",
        ("For each live HASH entry of JOURNAL (the last entry per digest), read the cluster at its physical "
         "sector in IMAGE (the image's cluster size, or --block-size for a raw image), check its hash against "
         "the digest (the algorithm by the digest's length: 20 bytes SHA-1, 32 SHA-256, 64 SHA-512, or "
         "--hash NAME), and, for qcow2, that the first logical sector maps through L1/L2 to that host cluster. "
         "Each problem is printed with the entry's offset, its code and what is wrong: the data changed, a "
         "sector past the end of the image, a guest sector unallocated or mapped elsewhere, not aligned.",),
        codes=_exit_codes(
            (EXIT_OK, "every live entry matches the image"),
            (EXIT_ERROR, "usage or I/O error, or an image it cannot map"),
            (EXIT_CORRUPT, "a problem: an entry that does not match, or a corrupt journal"),
        ),
        examples="  qjournal verify disk.qjournal disk.qcow2",
    )
    _add_area(p, "the journal (or an image holding its area)")
    p.add_argument("image", metavar="IMAGE", help="the disk image the journal describes")
    _add_image(p)
    p.add_argument("--hash", dest="hash_name", metavar="NAME", default=None,
                   help="the hash algorithm of every digest (a hashlib name: sha1, sha256, sha512...)")
    _add_output(p, ("human", "json"))


def _version() -> str:
    try:
        return importlib.metadata.version("qjournal")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


# -- output helpers ------------------------------------------------------------


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(message: str) -> None:
    try:
        sys.stderr.write(f"qjournal: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _err_journal(exc: JournalError, suffix: str = "") -> None:
    """A library error on stderr, options spelt as on the command line; its hint on a line of its own."""
    _err(exc.message(cli=True) + suffix)
    hint = exc.hint_text(cli=True)
    if hint:
        _err(f"hint: {hint}")


def _human_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _at(ofs: int, area_offset: int) -> str:
    text = f"offset {ofs:#x} ({ofs})"
    if area_offset:
        text += f" of the area, file offset {area_offset + ofs:#x}"
    return text


_ENCODER = json.JSONEncoder(separators=(", ", ": "))


def _json_line(obj: Any) -> str:
    return _ENCODER.encode(obj)


class _Progress:
    """A tqdm bar on stderr for large areas, only when stderr is a terminal."""

    def __init__(self, len_area: int, what: str, *, min_len: int = PROGRESS_MIN_CLUSTERS * LEN_CLUSTER) -> None:
        self.bar: Any = None
        if len_area > min_len and _isatty(sys.stderr):
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

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _open(args: argparse.Namespace) -> JournalReader:
    return JournalReader(args.path, args.offset, args.length)


def _problem_dict(p: Problem, area_offset: int) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "ofs": p.ofs,
        "file_ofs": area_offset + p.ofs,
        "is_corruption": p.is_corruption,
        "reason": p.reason,
    }


def _state_dict(state: JournalState, area_offset: int) -> dict[str, Any]:
    return {
        "len_area": state.len_area,
        "num_clusters": state.num_clusters,
        "num_clusters_used": state.num_clusters_used,
        "ofs_tail": state.ofs_tail,
        "len_free": state.len_free,
        "is_full": state.is_full,
        "num_entries": state.num_entries,
        "entries_by_type": dict(state.entries_by_type),
        "anomalies": [_problem_dict(p, area_offset) for p in state.anomalies],
    }


# -- info ----------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    """qjournal info: the journal's state."""
    with _open(args) as reader, _Progress(reader.len_area, "info") as progress:
        report = reader.check(progress, jobs=args.jobs)
        area_offset = reader.area.area_offset
        if report.state is None:
            first = next(p for p in report.problems if p.is_corruption)
            raise CorruptJournalError(first.kind, first.reason, first.ofs, area_offset=area_offset, source=reader.name)
        with reader.live() as live:
            num_live, num_superseded = live.num_live, live.num_superseded
    state = report.state
    room = max_len_entry(state.ofs_tail, state.len_area)
    sha256 = num_fit(state.ofs_tail, state.len_area, LEN_SHA256_ENTRY)
    if args.output == "json":
        doc = {
            "filename": reader.name, "area_offset": area_offset, **_state_dict(state, area_offset),
            "max_len_entry": room, "num_sha256_entries_fit": sha256,
            "num_live": num_live, "num_superseded": num_superseded,
        }
        _out(json.dumps(doc, indent=2))
        return EXIT_OK
    by_type = ", ".join(
        f"{name}: {count}" for name, count in sorted(state.entries_by_type.items(), key=lambda kv: (kv[0] != "hash", kv[0]))
    )
    _out(f"file: {reader.name}")
    _out(f"area offset: {area_offset} ({area_offset:#x})")
    _out(f"area size: {_human_size(state.len_area)} ({state.len_area} bytes)")
    _out(f"clusters used: {state.num_clusters_used} of {state.num_clusters} ({LEN_CLUSTER} bytes each)")
    _out(f"tail: {state.ofs_tail:#x} ({state.ofs_tail})")
    _out(f"free: {_human_size(state.len_free)} ({state.len_free} bytes)")
    if room:
        _out(
            f"room: the next entry can be up to {room} bytes; {sha256} more SHA-256 "
            f"{'entry fits' if sha256 == 1 else 'entries fit'} (50 bytes each, with the END each cluster needs)"
        )
    else:
        _out("room: none: no entry fits (an entry needs its size plus the 2 bytes of the END after it)")
    _out(f"full: {'yes' if state.is_full else 'no'}")
    _out(f"entries: {state.num_entries}" + (f" ({by_type})" if by_type else ""))
    _out(
        f"live: {count(num_live, 'digest')} with a live HASH entry; "
        f"{count(num_superseded, 'HASH entry', 'HASH entries')} superseded by a later one with the same digest"
    )
    if not state.anomalies:
        _out("anomalies: none")
    else:
        _out(f"anomalies: {len(state.anomalies)}")
        for p in state.anomalies:
            _out(f"    {_at(p.ofs, area_offset)}: {p.kind}: {p.reason}")
    return EXIT_OK


# -- dump ----------------------------------------------------------------------


def cmd_dump(args: argparse.Namespace) -> int:
    """qjournal dump: the replayed entries, as lines, JSON, JSON lines or a hex view."""
    if args.hex and args.output != "human":
        raise UsageError(f"--hex is a human view; it does not combine with --output {args.output} (see 'qjournal dump --help')")
    if args.live and (args.hex or args.all):
        raise UsageError("--live shows the live HASH entries only; it does not combine with --hex or --all (see 'qjournal dump --help')")
    with _open(args) as reader, _Progress(reader.len_area, "dump") as progress:
        if args.hex:
            return _dump_hex(reader, progress)
        area_offset = reader.area.area_offset
        error: CorruptJournalError | None = None
        if args.output == "json":
            head = {"filename": reader.name, "area_offset": area_offset, "len_area": reader.len_area, "num_clusters": reader.num_clusters}
            _out(_json_line(head)[:-1] + ', "entries": [')
        first = True
        shown = 0
        for run in _dump_runs(reader, args, progress):
            error = run.error
            if not run.num_items:
                continue
            shown += run.num_items
            if args.output == "json":
                sys.stdout.write(("" if first else ",\n") + run.text)
                first = False
            else:
                _out(run.text)
        if args.output == "json":
            tail = "\n]" if not first else "]"
            if error is not None:
                tail += ', "error": ' + _json_line(
                    {"rule": error.rule, "ofs": error.offset, "file_ofs": error.file_offset, "reason": error.reason}
                )
            _out(tail + "}")
    if error is not None:
        raise error
    if not shown and args.output == "human":  # machine formats stay empty; a person is told why there is nothing
        _err(f"{reader.name}: no entries: the journal is empty")
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    """qjournal get: the live entry of each digest (D9), as dump prints it."""
    missing: list[bytes] = []
    with _open(args) as reader, _Progress(reader.len_area, "get") as progress:
        with reader.live(progress=progress if progress.bar is not None else None) as live:
            for digest in args.digests:
                entry = live.get(digest)
                if entry is None:
                    missing.append(digest)
                elif args.output == "json":
                    _out(_json_line(entry.to_dict()))
                else:
                    _out(format_item(entry))
        name = reader.name
    for digest in missing:
        _err(f"{name}: no live entry with digest {digest.hex()} (no HASH entry replay yields has it)")
    return EXIT_ERROR if missing else EXIT_OK


def _dump_runs(reader: JournalReader, args: argparse.Namespace, progress: _Progress) -> Iterator[Run]:
    """What dump prints: replay formatted a run of clusters at a time, or, with --live, the live entries."""
    if not args.live:
        yield from runs(reader.area, args.output, markers=args.all, progress=progress, jobs=args.jobs)
        return
    with reader.live(progress=progress if progress.bar is not None else None) as live:
        batch: list[Entry | Marker] = []
        for e in live.values():
            batch.append(e)
            if len(batch) == LIVE_BATCH:
                yield Run(format_items(batch, args.output), len(batch), None, False)
                batch = []
        yield Run(format_items(batch, args.output), len(batch), None, True)


def _dump_hex(reader: JournalReader, progress: _Progress) -> int:
    area_offset = reader.area.area_offset
    _out(
        f"journal {reader.name}: area at file offset {area_offset:#x}, {reader.len_area} bytes, "
        f"{count(reader.num_clusters, 'cluster')} of {LEN_CLUSTER} bytes"
    )
    for line in hexview.legend_lines():
        _out(line)
    last = -1
    for walked in walk_clusters(reader.area, progress):
        base = walked.cluster_index * LEN_CLUSTER
        view = hexview.cluster_view(walked.buf, base, walked.error, walked.cluster, walked.entries)
        _out()
        _out(hexview.cluster_header(walked.cluster_index, base, view))
        for line in hexview.render_spans(view.spans, walked.buf, base):
            _out(line)
        if walked.error is not None:
            raise walked.error
        last = walked.cluster_index
    summary = hexview.rest_summary(reader.area, last + 1)
    if summary:
        _out()
        _out(summary)
    return EXIT_OK


# -- check ---------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """qjournal check: every problem with its offset; exit 0, 2 or 3."""
    area_offset = args.offset
    try:
        reader = _open(args)
    except CorruptJournalError as exc:
        if exc.rule != "area_length":
            raise
        name = exc.source or args.path
        report = CheckReport((Problem(exc.rule, exc.offset or 0, exc.reason, True),), None, exc.hint)
        return _report_check(report, name, area_offset, args)
    with reader, _Progress(reader.len_area, "check") as progress:
        report = reader.check(progress, jobs=args.jobs)
    return _report_check(report, reader.name, reader.area.area_offset, args)


def _report_check(report: CheckReport, name: str, area_offset: int, args: argparse.Namespace) -> int:
    corrupt = report.is_corrupt or (args.strict and report.has_anomalies)
    code = EXIT_CORRUPT if corrupt else EXIT_ANOMALIES if report.has_anomalies else EXIT_OK
    status = {EXIT_OK: "clean", EXIT_CORRUPT: "corrupt", EXIT_ANOMALIES: "anomalies"}[code]
    if args.output == "json":
        doc = {
            "filename": name,
            "area_offset": area_offset,
            "strict": args.strict,
            "status": status,
            "exit_code": code,
            "num_corruptions": sum(p.is_corruption for p in report.problems),
            "num_anomalies": sum(not p.is_corruption for p in report.problems),
            "problems": [_problem_dict(p, area_offset) for p in report.problems],
            "state": None if report.state is None else _state_dict(report.state, area_offset),
            "hint": None if report.hint is None else spell(report.hint, cli=True),
        }
        _out(json.dumps(doc, indent=2))
        return code
    for p in report.problems:
        what = "corruption" if p.is_corruption else "anomaly, an error under --strict" if args.strict else "anomaly"
        _out(f"{name}: {_at(p.ofs, area_offset)}: {what} [{p.kind}]: {p.reason}")
    n_bad = sum(p.is_corruption for p in report.problems)
    n_odd = len(report.problems) - n_bad
    if code == EXIT_OK:
        s = report.state
        assert s is not None
        _out(
            f"{name}: no problems found; {count(s.num_entries, 'entry', 'entries')}, {s.num_clusters_used} of "
            f"{count(s.num_clusters, 'cluster')} used, tail at {s.ofs_tail:#x}, {s.len_free} bytes free."
        )
    elif code == EXIT_ANOMALIES:
        _out(
            f"{name}: {count(n_odd, 'anomaly', 'anomalies')}, no corruption: the journal replays, "
            "but a check reports them (--strict fails them)."
        )
    elif not n_bad:
        _out(
            f"{name}: {count(n_odd, 'anomaly', 'anomalies')}, no corruption; "
            "--strict counts anomalies as corruption: the check fails."
        )
    else:
        _out(
            f"{name}: {count(n_bad, 'corruption')}, {count(n_odd, 'anomaly', 'anomalies')}: the journal is corrupt."
        )
    if report.hint is not None:
        _out(f"{name}: hint: {spell(report.hint, cli=True)}")
    return code


# -- create --------------------------------------------------------------------


def cmd_create(args: argparse.Namespace) -> int:
    """qjournal create: a reset area in a new file or inside an existing one."""
    num_clusters = args.clusters if args.size is None else args.size // LEN_CLUSTER
    w = create(args.path, num_clusters, offset=args.offset, length=args.length, force=args.force)
    with w:
        area_offset, len_area, n = w.area.area_offset, w.len_area, w.num_clusters
    _out(
        f"{args.path}: created an empty journal of {count(n, 'cluster')} "
        f"({len_area} bytes) at offset {area_offset:#x}"
    )
    return EXIT_OK


# -- append --------------------------------------------------------------------


def cmd_append(args: argparse.Namespace) -> int:
    """qjournal append: one entry from the options, or a batch of JSON lines."""
    hash_opts = [args.digest, args.physical, args.logical]
    raw_opts = [args.entry_type, args.body]
    lines: list[int] | None = None  # the input line of each entry of a batch
    if any(o is not None for o in hash_opts):
        if any(o is None for o in hash_opts):
            raise UsageError("a HASH entry needs --hash, --physical and --logical (see 'qjournal append --help')")
        if any(o is not None for o in raw_opts) or args.from_file is not None:
            raise UsageError("--hash does not combine with --type, --body or --from (see 'qjournal append --help')")
        entries: list[Entry] = [HashEntry(args.digest, args.physical, args.logical)]
        check_entry(entries[0])
    elif any(o is not None for o in raw_opts):
        if args.entry_type is None:
            raise UsageError("--body needs --type (see 'qjournal append --help')")
        if args.from_file is not None:
            raise UsageError("--type does not combine with --from (see 'qjournal append --help')")
        entries = [RawEntry(args.entry_type, args.body or b"")]
        check_entry(entries[0])
    else:
        entries, lines = _read_batch(args.from_file)
    _check_digest_sizes(entries, lines, args.digest_size, args.from_file)
    with open_for_append(
        args.path, args.offset, args.length, erase_foreign_data=args.erase_foreign_data, jobs=args.jobs,
    ) as w:
        if args.digest_size is None:
            _warn_digest_sizes(args.path, entries, lines, w.last_hash())
        try:
            placed = w.append_many(entries)
        except JournalFullError as exc:
            raise _full_in_words(exc, lines, len(entries)) from None
        tail = w.ofs_tail
    if len(placed) == 1:
        e = placed[0]
        _out(f"{args.path}: appended a {_kind(e)} entry of {e.len_entry} bytes at {e.ofs:#x}; tail at {tail:#x}")
    elif placed:
        _out(
            f"{args.path}: appended {len(placed)} entries at {placed[0].ofs or 0:#x}-{placed[-1].ofs or 0:#x}; "
            f"tail at {tail:#x}"
        )
    else:
        _out(f"{args.path}: nothing to append; tail at {tail:#x}")
    return EXIT_OK


def _where(index: int, lines: list[int] | None, count_of: int) -> str:
    """Where entry ``index`` (from 0) of a batch came from, in the user's words: its input line, counted from 1."""
    return f"line {lines[index]}" if lines is not None else f"entry {index + 1} of {count_of}"


def _check_digest_sizes(entries: list[Entry], lines: list[int] | None, size: int | None, name: str | None) -> None:
    """--digest-size N: refuse, before anything is opened, a HASH entry whose digest is another length."""
    if size is None:
        return
    for i, e in enumerate(entries):
        if isinstance(e, HashEntry) and len(e.digest) != size:
            where = f"{_where(i, lines, len(entries))}: " if lines is not None else ""
            raise JournalArgumentError(
                f"{where}the digest is {count(len(e.digest), 'byte')}, not the {size} that --digest-size asks for; "
                "nothing was written",
                source=name if lines is not None else None,
            )


def _warn_digest_sizes(path: str, entries: list[Entry], lines: list[int] | None, last: HashEntry | None) -> None:
    """A journal normally records one hash algorithm: warn of a digest whose length differs from the journal's last."""
    first = next((e for e in entries if isinstance(e, HashEntry)), None)
    ref = last if last is not None else first
    if ref is None:
        return
    odd = [(i, e) for i, e in enumerate(entries) if isinstance(e, HashEntry) and len(e.digest) != len(ref.digest)]
    if not odd:
        return
    i, e = odd[0]
    against = f"the journal's last HASH entry (at {ref.ofs:#x}) has" if last is not None else "the batch's first has"
    more = f" ({len(odd)} entries of the batch differ)" if len(odd) > 1 else ""
    where = f"{_where(i, lines, len(entries))}: " if lines is not None else ""
    _err(
        f"warning: {path}: {where}a digest of {count(len(e.digest), 'byte')}, where {against} "
        f"{count(len(ref.digest), 'byte')}{more}: a journal normally records one hash algorithm "
        "(written anyway; --digest-size N refuses any other length)"
    )


def _full_in_words(exc: JournalFullError, lines: list[int] | None, num: int) -> JournalFullError:
    """The writer's refusal of a batch entry, placed as the user counts: the input line, from 1."""
    if lines is None or exc.entry_index is None:
        return exc
    return JournalFullError(
        f"{_where(exc.entry_index, lines, num)}: " + exc.reason, exc.offset, len_entry=exc.len_entry,
        max_len_entry=exc.max_len_entry, entry_index=exc.entry_index, num_clusters=exc.num_clusters,
        area_offset=exc.area_offset, source=exc.source, hint=exc.hint,
    )


def _kind(e: Entry) -> str:
    return "hash" if isinstance(e, HashEntry) else f"type {type_name(e.type_code)}"


_MARKER_TYPES = ("end", "none")


def _read_batch(from_file: str | None) -> tuple[list[Entry], list[int]]:
    """Every entry of the JSON lines input, each checked, and its line number; a bad line raises ``line N: ...``."""
    if from_file is None or from_file == "-":
        stream, name = sys.stdin.buffer, "<stdin>"
        if _isatty(sys.stdin):
            sys.stderr.write("qjournal: reading JSON lines from the terminal (end with Ctrl-D)\n")
    else:
        try:
            stream = open(from_file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=from_file) from None
        name = from_file
    entries: list[Entry] = []
    numbers: list[int] = []
    try:
        for number, raw in enumerate(stream, 1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                d = _json_object(line)
                if isinstance(d, dict) and d.get("entry_type") in _MARKER_TYPES:
                    continue  # an END or NONE record of dump --all: the writer places its own
                entry = entry_from_dict(d)
                check_entry(entry)
            except UnicodeDecodeError as exc:
                raise JournalArgumentError(
                    f"line {number}: not UTF-8 text ({exc.reason} at byte {exc.start}); nothing was written", source=name
                ) from None
            except RecursionError:
                raise JournalArgumentError(
                    f"line {number}: JSON nested too deeply to be an entry; nothing was written", source=name
                ) from None
            except (ValueError, JournalError) as exc:  # JSONDecodeError is a ValueError
                reason = exc.reason if isinstance(exc, JournalError) else str(exc)
                raise JournalArgumentError(f"line {number}: {reason}; nothing was written", source=name) from None
            entries.append(entry)
            numbers.append(number)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return entries, numbers


_JSONL = "append reads JSON lines, one entry per line, as 'qjournal dump --output jsonl' writes them"


def _json_object(line: str) -> Any:
    """One line of JSON; a line that is not a whole JSON value says what append reads instead."""
    try:
        return json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        if line.lstrip().startswith("{") and '"entries": [' in line:
            raise ValueError(f"this is the start of 'qjournal dump --output json', a single document: {_JSONL}") from None
        raise ValueError(f"not a JSON value ({exc.msg} at column {exc.colno}): {_JSONL}") from None


# -- pack ----------------------------------------------------------------------


def cmd_pack(args: argparse.Namespace) -> int:
    """qjournal pack: the live entries of SRC into a fresh DST."""
    with _Progress(_area_length_of(args), "pack") as progress:
        report = pack(
            args.path, args.dst, args.clusters,
            source_offset=args.offset, source_length=args.length,
            offset=args.dst_offset, length=args.dst_length, force=args.force,
            progress=progress if progress.bar is not None else None,
        )
    s = report.state
    _out(
        f"{args.path}: {count(report.num_entries_read, 'entry', 'entries')} read ({report.num_hash_read} hash), "
        f"{report.num_live} live written, {report.num_entries_read - report.num_live} dropped "
        f"({report.num_raw_dropped} of unassigned types)"
    )
    _out(
        f"{args.dst}: {s.num_clusters_used} of {count(s.num_clusters, 'cluster')} used, tail at {s.ofs_tail:#x}, "
        f"{s.len_free} bytes free"
    )
    return EXIT_OK


def _area_length_of(args: argparse.Namespace) -> int:
    """The length of the area the arguments address, for a progress bar (0 when it cannot be told yet)."""
    if args.length is not None:
        return int(args.length)
    try:
        return max(0, os.stat(args.path).st_size - int(args.offset))
    except (OSError, ValueError):
        return 0


# -- reset ---------------------------------------------------------------------


def cmd_reset(args: argparse.Namespace) -> int:
    """qjournal reset: every byte of the area to 0xFF, only with --yes."""
    if not args.yes:
        with _open(args) as reader:  # missing file, directory, bad window: said before --yes is asked for
            area_offset, len_area = reader.area.area_offset, reader.len_area
        raise UsageError(f"{args.path}: refusing to reset without --yes: every byte of {_span(area_offset, len_area)} would become 0xFF")
    done = reset(args.path, args.offset, args.length)
    _out(f"{args.path}: reset: {_span(done.area_offset, done.len_area)} is all 0xFF (an empty journal)")
    return EXIT_OK


def _span(area_offset: int, len_area: int) -> str:
    return f"the area of {len_area} bytes at file offsets {area_offset:#x}-{area_offset + len_area - 1:#x}"


# -- index, verify -------------------------------------------------------------


def _open_image_of(args: argparse.Namespace) -> Image:
    return open_image(args.image, format=args.format, block_size=args.block_size or DEFAULT_BLOCK_SIZE)


def cmd_index(args: argparse.Namespace) -> int:
    """qjournal index: one HASH entry per distinct data cluster of IMAGE, in a new JOURNAL, and the summary."""
    with _open_image_of(args) as img, _Progress(img.len_virtual_disk, "index", min_len=0) as progress:
        report = index_image(
            img, args.path, block_size=args.block_size or DEFAULT_BLOCK_SIZE, force=args.force,
            progress=progress if progress.bar is not None else None, jobs=args.jobs,
        )
    if args.output == "json":
        _out(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK
    size = _human_size(report.block_size)
    _out(
        f"{report.image}: {report.format}, {report.num_guest_clusters} guest clusters of {size} "
        f"({_human_size(report.len_virtual_disk)} virtual disk)"
    )
    rows = (
        ("allocated", report.num_allocated), ("unallocated", report.num_unallocated), ("zero", report.num_zero),
        ("compressed", report.num_compressed), ("unique", report.num_unique), ("duplicate", report.num_duplicate),
    )
    for label, n in rows:
        _out(f"  {label + ':':<13}{n:>12}  ({_human_size(n * report.block_size)})")
    _out(
        f"  a deduplication would save {_human_size(report.len_saved)} ({report.len_saved} bytes); "
        f"dedup ratio {report.dedup_ratio:.2f}"
    )
    if report.histogram:
        _out("  digests by the number of data clusters that share them:")
        _out(f"  {'clusters':>10}  {'digests':>10}")
        for label, n in report.histogram.items():
            _out(f"  {label:>10}  {n:>10}")
    _out(
        f"{report.journal}: {count(report.num_entries, 'HASH entry', 'HASH entries')} written, "
        f"in {count(report.num_clusters, 'cluster')}"
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """qjournal verify: every live HASH entry of JOURNAL against IMAGE; exit 2 on any problem."""
    with _open_image_of(args) as img:
        report = verify_image(
            args.path, img, block_size=args.block_size, hash_name=args.hash_name,
            journal_offset=args.offset, journal_length=args.length, jobs=args.jobs,
        )
    code = EXIT_OK if report.is_clean else EXIT_CORRUPT
    if args.output == "json":
        _out(json.dumps(report.to_dict(cli=True), indent=2))
        return code
    for m in report.mismatches:
        _out(f"{report.journal}: {m.message(cli=True)}")
    if report.is_clean:
        _out(
            f"{report.journal}: {count(report.num_checked, 'live HASH entry', 'live HASH entries')} checked "
            f"against {report.image}: every one matches"
        )
    else:
        _out(
            f"{report.journal}: {count(report.num_checked, 'live HASH entry', 'live HASH entries')} checked "
            f"against {report.image}: {report.num_mismatched} with problems "
            f"({count(len(report.mismatches), 'problem')})"
        )
    return code


# -- main ----------------------------------------------------------------------


def _silence_stdout() -> None:
    """After EPIPE on stdout: point it at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # said by the command's own parser, so that the error points to its help
            command = parser.commands.get(args.command) if args.command else None  # type: ignore[attr-defined]
            (command or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command is None:
            sys.stderr.write(parser.format_usage())
            _err("a COMMAND is required (see 'qjournal --help')")
            return EXIT_ERROR
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except BaseException as exc:
        return _report_failure(exc, debug=bool(getattr(args, "debug", False)), args=args)


def _pack_command(args: argparse.Namespace, exc: JournalFullError) -> str:
    """The exact command that packs the journal ``args`` address into a new file twice its size."""
    stem, _ = os.path.splitext(os.path.basename(args.path))
    target = os.path.join(os.path.dirname(args.path), f"{stem}-packed.qjournal")
    area = ""
    if args.offset or args.length is not None:
        area = f" --source-offset {args.offset}" + (f" --source-length {args.length}" if args.length is not None else "")
    return f"qjournal pack {shlex.quote(args.path)} {shlex.quote(target)}{area} --clusters {2 * exc.num_clusters}"


def _report_failure(exc: BaseException, *, debug: bool, args: argparse.Namespace | None = None) -> int:
    """The one error handler: say what failed on stderr (the traceback too with --debug); the exit code."""
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()  # the reader (head, less) went away: stop quietly
        return EXIT_OK
    if debug and not isinstance(exc, UsageError):
        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        _err("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError):
        _err(str(exc))
        return EXIT_ERROR
    if isinstance(exc, CorruptJournalError):
        _err_journal(exc, f" [{exc.rule}]")
        return EXIT_CORRUPT
    if isinstance(exc, JournalFullError) and args is not None and exc.num_clusters and args.command == "append":
        _err(exc.message(cli=True))
        _err(f"hint: to go on, pack the journal into a larger one (its live entries, in a fresh file): {_pack_command(args, exc)}")
        return EXIT_ERROR
    if isinstance(exc, JournalError):
        _err_journal(exc)
        return EXIT_ERROR
    if isinstance(exc, OSError):
        _err(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else f"{exc.strerror or exc}")
        return EXIT_ERROR
    if isinstance(exc, Exception):  # a bug: still one line, unless --debug
        _err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_ERROR
    raise exc  # SystemExit and the like: not ours to report
