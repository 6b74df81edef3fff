"""The write commands that make or remake a whole area: create, pack, reset (append has its own module).

Strategy: each is one call into the library (:func:`qjournal.making.create`, :func:`qjournal.packing.pack`,
:func:`qjournal.making.reset`), which proves what it overwrites and writes a new file whole or not at
all; the command checks its own options first (reset's --yes) and prints one summary line or two.
"""

from __future__ import annotations

import argparse
import os

from qjournal.cli.append import summary
from qjournal.cli.arguments import add_area, add_unaligned, area_length, num_clusters, parse_size
from qjournal.cli.base import EXIT_CORRUPT, EXIT_ERROR, EXIT_OK, Command, ExitCodes, UsageError
from qjournal.cli.console import Progress, open_reader, shown
from qjournal.wording import count

NOT_CLUSTERS = (EXIT_CORRUPT, "the area is not a whole number of 4096-byte clusters (nothing written)")
"""Exit 2 of a command that formats an area: the window PATH, --offset and --length give breaks D1."""


# -- create --------------------------------------------------------------------


def cmd_create(args: argparse.Namespace) -> int:
    """qjournal create: a reset area in a new file or inside an existing one."""
    from qjournal.format import LEN_CLUSTER  # noqa: PLC0415 - the library is imported by the command that runs
    from qjournal.making import create  # noqa: PLC0415

    n = args.clusters if args.size is None else args.size // LEN_CLUSTER
    w = create(args.path, n, offset=args.offset, length=args.length, force=args.force,
               unaligned_offset=args.unaligned_offset)
    with w:
        area_offset, len_area, n = w.area.area_offset, w.len_area, w.num_clusters
    summary(f"the journal was created in {args.path}",
            f"{shown(args.path)}: created an empty journal of {count(n, 'cluster')} ({len_area} bytes) at offset {area_offset:#x}")
    return EXIT_OK


def _create_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", help="journal file to create, or the existing file to format an area in")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--clusters", type=num_clusters, metavar="N", help="number of 4096-byte clusters")
    size.add_argument("--size", type=area_length, metavar="BYTES", help="area size in bytes, a multiple of 4096 (64K, 1M...)")
    p.add_argument("--offset", type=parse_size, default=0, metavar="BYTES", help="where the area starts in the file (default 0)")
    p.add_argument(
        "--length", type=area_length, default=None, metavar="BYTES",
        help="area length inside an existing file (default: --clusters/--size, else to the end of the file)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an area that is not reset (its bytes become 0xFF)")
    add_unaligned(p)


CREATE = Command(
    "create", cmd_create, "format a new journal (an area of 0xFF bytes)",
    ("Create a journal: an area every byte of which is 0xFF. A new file gets --clusters N clusters of "
     "4096 bytes (or --size bytes). With --offset (and --length, --clusters or --size) the area is "
     "formatted inside an existing file, say an image, and no byte outside it is touched; a file that "
     "ends exactly at --offset is extended by the area. A new file is written whole or not at all.",
     "An area holding any byte other than 0xFF (a journal, or other data) is refused unless --force, "
     "which resets it; without a size, --force resets only an area that holds a journal and nothing "
     "else.",),
    ((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, or refused with nothing written"), NOT_CLUSTERS),
    _create_arguments,
    examples="  qjournal create j.bin --clusters 16\n  qjournal create image.qcow2 --offset 1M --length 64K",
)


# -- pack ----------------------------------------------------------------------


def cmd_pack(args: argparse.Namespace) -> int:
    """qjournal pack: the live entries of SRC into a fresh DST."""
    from qjournal.packing import pack  # noqa: PLC0415

    with Progress(_area_length_of(args), "pack") as progress:
        report = pack(
            args.path, args.dst, args.clusters,
            source_offset=args.offset, source_length=args.length,
            target_offset=args.dst_offset, target_length=args.dst_length, force=args.force,
            progress=progress.callback, unaligned_offset=args.unaligned_offset,
        )
    s = report.state
    summary(
        f"{args.dst} was packed",
        f"{shown(args.path)}: {count(report.num_entries_read, 'entry', 'entries')} read ({report.num_hash_read} hash), "
        f"{report.num_live} live written{' after the metadata entry' if report.num_metadata_kept else ''}, "
        f"{report.num_entries_read - report.num_live - report.num_metadata_kept} dropped "
        f"({report.num_raw_dropped} of unassigned types)",
        f"{shown(args.dst)}: {s.num_clusters_used} of {count(s.num_clusters, 'cluster')} used, tail at {s.ofs_tail:#x}, "
        f"{s.len_free} bytes free",
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


def _pack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="SOURCE", help="the journal to pack (read only)")
    p.add_argument("dst", metavar="TARGET", help="the new journal (a new file, or an existing file to format an area in)")
    p.add_argument("--source-offset", "--offset", dest="offset", type=parse_size, default=0, metavar="BYTES",
                   help="where SOURCE's area starts in its file (default 0)")
    p.add_argument("--source-length", "--length", dest="length", type=area_length, default=None, metavar="BYTES",
                   help="SOURCE's area length (default: to the end of the file)")
    p.add_argument("--target-offset", "--dst-offset", dest="dst_offset", type=parse_size, default=0, metavar="BYTES",
                   help="where TARGET's area starts in its file (default 0)")
    p.add_argument("--target-length", "--dst-length", dest="dst_length", type=area_length, default=None, metavar="BYTES",
                   help="TARGET's area length")
    p.add_argument("--clusters", type=num_clusters, metavar="N", help="TARGET's number of clusters (default: SOURCE's, for a new file)")
    p.add_argument("--force", action="store_true", help="overwrite a TARGET area that is not reset")
    add_unaligned(p)


PACK_CODES: ExitCodes = (
    (EXIT_OK, "success"),
    (EXIT_ERROR, "usage or I/O error, or refused with nothing written (the live entries do not fit, "
                 "TARGET not reset)"),
    (EXIT_CORRUPT, "SOURCE is corrupt, or TARGET's area is not a whole number of 4096-byte clusters (nothing written)"),
)

PACK = Command(
    "pack", cmd_pack, "copy only the live HASH entries of SOURCE into a fresh journal TARGET",
    ("Pack a journal: replay SOURCE, keep the last HASH entry per digest (in the order of their last "
     "occurrence), drop entries of unassigned types, and write them as one batch into a fresh journal "
     "TARGET, made as by 'qjournal create' (a new file gets as many clusters as SOURCE unless "
     "--clusters). Nothing is written when they do not fit. SOURCE is never written.",),
    PACK_CODES, _pack_arguments,
    examples="  qjournal pack full.qjournal bigger.qjournal --clusters 64\n"
    "  qjournal pack image.qcow2 packed.qjournal --source-offset 1M --source-length 64K",
)


# -- reset ---------------------------------------------------------------------


def cmd_reset(args: argparse.Namespace) -> int:
    """qjournal reset: every byte of the area to 0xFF, only with --yes."""
    if not args.yes:
        with open_reader(args) as reader:  # missing file, directory, bad window: said before --yes is asked for
            area_offset, len_area = reader.area.area_offset, reader.len_area
        raise UsageError(
            f"{shown(args.path)}: refusing to reset without --yes: every byte of {_span(area_offset, len_area)} would become 0xFF"
        )
    from qjournal.making import reset  # noqa: PLC0415

    done = reset(args.path, args.offset, args.length, unaligned_offset=args.unaligned_offset)
    summary(f"{args.path} was reset", f"{shown(args.path)}: reset: {_span(done.area_offset, done.len_area)} is all 0xFF (an empty journal)")
    return EXIT_OK


def _span(area_offset: int, len_area: int) -> str:
    return f"the area of {len_area} bytes at file offsets {area_offset:#x}-{area_offset + len_area - 1:#x}"


def _reset_arguments(p: argparse.ArgumentParser) -> None:
    add_area(p)
    add_unaligned(p)
    p.add_argument("--yes", action="store_true", help="yes, discard every entry of the area")


RESET = Command(
    "reset", cmd_reset, "erase a journal: every byte of the area back to 0xFF (needs --yes)",
    ("Reset a journal: write 0xFF over the whole area, leaving an empty journal. Every entry is lost, "
     "so the command refuses to run without --yes, and says which bytes it would erase. A corrupt area "
     "can be reset too, given its --length; no byte outside the area is touched.",),
    ((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, or refused with nothing written (no --yes)"), NOT_CLUSTERS),
    _reset_arguments,
)
