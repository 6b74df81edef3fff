"""The analyze command: how much a deduplication of one or more images would save, at one or more block sizes.

Strategy: the images are opened here (IMAGE..., --format) and handed to :func:`qjournal.analysis.analyze`,
which reads each once and hashes every block size; this module prints its figures as a ``zdb -S``-style
table per block size, or its ``to_dict()`` as JSON; ``--list-duplicates`` adds the blocks of every shared
digest (lines of text, or JSON lines after the analysis object's line). Nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qjournal.cli.arguments import add_output, num_jobs, parse_size
from qjournal.cli.base import EXIT_ERROR, EXIT_OK, Command
from qjournal.cli.console import Progress, human_size, out, shown
from qjournal.cli.images import add_force_share
from qjournal.errors import JournalArgumentError
from qjournal.wording import count, json_document, json_line

if TYPE_CHECKING:  # the library is imported by the command that runs, not by the command line's start-up
    from qjournal.analysis import Analysis
    from qjournal.image import Image

DEFINITIONS = (
    "Definitions. The guest disk of each image is cut into blocks of B bytes at guest offsets that are multiples "
    "of B. A block counts when the image itself stores at least one byte of it (a data, compressed or zero cluster "
    "or subcluster of its own; for a raw image, every block). Its content is the guest view of the image alone "
    "(compressed clusters decompressed; bytes the image does not store, and bytes past the disk's end, read as "
    "zeros). A block is zero when all its bytes are zero. The digest is SHA-256 of the B bytes. distinct: distinct "
    "digests of non-zero blocks over all images; duplicate: non-zero blocks - distinct; saved: duplicate x B; "
    "ratio: non-zero blocks / distinct; unique (zdb's word): a digest referenced once. Per image: exclusive, the "
    "bytes of its non-zero blocks whose digest no other image given holds; shared, the rest."
)


def block_sizes(text: str) -> list[int]:
    """--block-size: SIZE[,SIZE...], each a power of two from 512 to 2M."""
    from qjournal.image import check_block_size  # noqa: PLC0415

    sizes = []
    for part in text.split(","):
        size = parse_size(part.strip())
        try:
            sizes.append(check_block_size(size))
        except JournalArgumentError as exc:  # the library's check, said as argparse says a bad value
            raise argparse.ArgumentTypeError(f"{part.strip()}: a block size is a power of two from 512 to 2M") from exc
    return sizes


def cmd_analyze(args: argparse.Namespace) -> int:
    """qjournal analyze: the dedup figures of IMAGE... at each block size; nothing is written."""
    from qjournal.analysis import analyze  # noqa: PLC0415
    from qjournal.image import DEFAULT_BLOCK_SIZE, open_image  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        images: list[Image] = [stack.enter_context(open_image(p, format=args.format, block_size=DEFAULT_BLOCK_SIZE,
                                                                      force_share=args.force_share))
                               for p in args.images]
        total = sum(img.len_virtual_disk for img in images)
        with Progress(total, "analyze", min_len=0) as progress:
            analysis = stack.enter_context(analyze(
                images, block_sizes=args.block_size, list_duplicates=args.list_duplicates, jobs=args.jobs,
                progress=progress.callback))
        if args.output == "json":
            if not args.list_duplicates:
                out(json_document(analysis.to_dict()))
                return EXIT_OK
            out(json_line(analysis.to_dict()))
            for b in analysis.block_sizes:
                for d in analysis.duplicates(b.block_size):
                    out(json_line(d.to_dict()))
            return EXIT_OK
        for line in render(analysis):
            out(line)
        if args.list_duplicates:
            for b in analysis.block_sizes:
                out(f"duplicates at {human_size(b.block_size)}, most bytes first:")
                for d in analysis.duplicates(b.block_size):
                    where = ", ".join(f"{p}@{o:#x}" for p, o in d.blocks)
                    out(f"  {d.digest.hex()[:16]}  {count(len(d.blocks), 'block')}  {human_size(len(d.blocks) * d.block_size)}: {where}")
    return EXIT_OK


def render(analysis: Analysis) -> Iterator[str]:
    """The text report: per block size a ``zdb -S``-style table and the images; the totals; the best size; what was not read."""
    for b in analysis.block_sizes:
        yield (f"block size {human_size(b.block_size)}: {count(b.num_blocks, 'block')} stored ({b.num_zero} zero, "
               f"{b.num_nonzero} non-zero), {b.num_distinct} distinct digests")
        yield f"  {'bucket':>8}  {'allocated':^23}  {'referenced':^23}".rstrip()
        yield f"  {'refcnt':>8}  {'blocks':>10} {'size':>12}  {'blocks':>10} {'size':>12}"
        yield f"  {'------':>8}  {'------':>10} {'----':>12}  {'------':>10} {'----':>12}"
        for r in b.histogram:
            yield (f"  {r.refcount:>8}  {r.num_distinct:>10} {human_size(r.len_distinct):>12}  "
                   f"{r.num_referenced:>10} {human_size(r.len_referenced):>12}")
        yield (f"  {'Total':>8}  {b.num_distinct:>10} {human_size(b.num_distinct * b.block_size):>12}  "
               f"{b.num_nonzero:>10} {human_size(b.num_nonzero * b.block_size):>12}")
        yield (f"  (the rows partition the non-zero blocks: their referenced blocks add up to {b.num_nonzero}, "
               f"their allocated blocks to the {b.num_distinct} distinct digests; row 1 holds the unique ones)")
        for i in b.images:
            yield (f"  {i.path}: {count(i.num_blocks, 'block')}, {i.num_zero} zero, {i.num_distinct} distinct, "
                   f"{human_size(i.len_exclusive)} exclusive, {human_size(i.len_shared)} shared")
    for b in analysis.block_sizes:
        yield f"at {human_size(b.block_size)}: {human_size(b.len_saved)} saved, ratio {b.dedup_ratio:.2f}"
    best = analysis.best()
    yield f"most saved at {human_size(best.block_size)}: {human_size(best.len_saved)} ({best.len_saved} bytes)"
    left = [f"{p}: {n.describe()}" for p, n in analysis.not_read.items() if n.describe()]
    yield "not read: " + ("; ".join(left) if left else "nothing (no backing file, no internal snapshot)")
    if analysis.dirty:
        from qjournal.image import DIRTY_NOTE  # noqa: PLC0415

        for p in analysis.dirty:
            yield f"{shown(p)}: {DIRTY_NOTE}"


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", metavar="IMAGE", nargs="+", help="disk images: qcow2 (versions 2 and 3) or raw")
    p.add_argument("--block-size", type=block_sizes, default=None, metavar="SIZE[,SIZE...]",
                   help="block sizes, powers of two from 512 to 2M, e.g. 4K,16K,64K (default: the first image's "
                   "cluster size; 64K for a raw image); all are hashed in one read of each image")
    p.add_argument("--format", choices=("qcow2", "raw"), default=None,
                   help="read every image as this format (default: qcow2 when it starts with the qcow2 magic, else raw)")
    p.add_argument("--list-duplicates", action="store_true",
                   help="also list, for each digest referenced more than once, the blocks (image, guest offset) that share "
                   "it, most bytes first (JSON lines with --output json)")
    p.add_argument("--jobs", type=num_jobs, default=None, metavar="N", help="hashing workers: threads, or forked processes for blocks under 64 KiB (default: one per core)")
    add_force_share(p)
    add_output(p, ("human", "json"))


ANALYZE = Command(
    "analyze", cmd_analyze, "how much a deduplication of images would save, at each block size (writes nothing)",
    ("Read every block the images store, at every block size asked, in one pass per image, and report what a "
     "deduplication would save: a table like 'zdb -S' per block size (digests by how many blocks reference "
     "them), per image what it shares with the others, the block size that saves most, and what was not read "
     "(backing files, internal snapshots). Compressed clusters are decompressed; extended L2 images are read by "
     "subcluster; a sparse raw file's holes are zeros, never read. Nothing is written.",
     DEFINITIONS),
    ((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, or an image it cannot read")),
    _arguments,
    examples="  qjournal analyze disk.qcow2 --block-size 4K,16K,64K\n"
             "  qjournal analyze a.qcow2 b.qcow2 --output json --list-duplicates",
)
