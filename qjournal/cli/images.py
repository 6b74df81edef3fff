"""The image commands: index (an image's data clusters into a new journal) and verify (a journal against its image).

Strategy: the image is opened once here, by :func:`open_image_of` from IMAGE, --format and --block-size
(:func:`add_image` adds them), and handed to the library, which maps it or refuses it before any
cluster is read; the command prints the library's report, as lines or as its ``to_dict()`` in JSON.
A new image command follows the same pattern: a module like this one whose :class:`Command` takes
``add_image`` among its arguments and opens the image with ``open_image_of``, and whose usage line
names its arguments JOURNAL and IMAGE, as index's and verify's do.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from qjournal.cli.arguments import add_area, add_image, add_output
from qjournal.cli.base import EXIT_CORRUPT, EXIT_ERROR, EXIT_OK, Command
from qjournal.cli.console import Progress, human_size, out, shown
from qjournal.wording import count, json_document

if TYPE_CHECKING:  # the library is imported by the command that runs, not by the command line's start-up
    from qjournal.image import Image
    from qjournal.verifying import AllBlocks


def open_image_of(args: argparse.Namespace) -> Image:
    """The image the command line names: IMAGE, --format, --block-size."""
    from qjournal.image import DEFAULT_BLOCK_SIZE, open_image  # noqa: PLC0415

    return open_image(args.image, format=args.format, block_size=args.block_size or DEFAULT_BLOCK_SIZE,
                      force_share=args.force_share)


def add_force_share(p: argparse.ArgumentParser) -> None:
    """-U/--force-share: read an image another process holds open for writing, as qemu-img -U does."""
    p.add_argument("-U", "--force-share", action="store_true",
                   help="read the image even if another process (a running QEMU) holds it open for writing, as qemu-img -U "
                   "does: the answer may match no state of the disk")


# -- index ---------------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    """qjournal index: one HASH entry per distinct data cluster of IMAGE, in a new JOURNAL, and the summary."""
    from qjournal.indexing import index as index_image  # noqa: PLC0415

    with open_image_of(args) as img, Progress(img.len_virtual_disk, "index", min_len=0) as progress:
        report = index_image(
            img, args.path, block_size=args.block_size, force=args.force, progress=progress.callback, jobs=args.jobs,
        )
    if args.output == "json":
        out(json_document(report.to_dict()))
        return EXIT_OK
    size = human_size(report.block_size)
    out(
        f"{shown(report.image)}: {report.format}, {count(report.num_guest_clusters, 'block')} of {size} "
        f"({human_size(report.len_virtual_disk)} virtual disk)"
    )
    partition = (
        ("unallocated", "unallocated", ""), ("zero", "zero", ""),
        ("distinct", "unique", "  non-zero, the first block with its digest: one HASH entry each"),
        ("duplicate", "duplicate", "  its digest seen before, at another host offset: a deduplication saves it"),
        ("shared", "shared", "  its digest seen before, at this host offset (refcount > 1): nothing to save"),
    )
    out("  every block counted once, in one of:")
    for label, row, note in partition:
        out(f"    {label + ':':<13}{getattr(report, f'num_{row}'):>12}  ({human_size(report.len_of(row))}){note}")
    out(f"    {'total:':<13}{report.num_guest_clusters:>12}  ({human_size(report.len_of('guest_clusters'))})")
    out("  besides, not part of the total:")
    besides = (
        ("allocated", "  blocks with storage in the image (qemu-img check's allocated clusters)"),
        ("compressed", "  of the distinct, duplicate and shared: decompressed and hashed, not journaled"),
        ("partial", "  of the distinct, duplicate and shared: in partly allocated clusters, hashed, not journaled"),
    )
    for row, note in besides:
        out(f"    {row + ':':<13}{getattr(report, f'num_{row}'):>12}  ({human_size(report.len_of(row))}){note}")
    out(
        f"  referenced {report.num_referenced} non-zero blocks; a deduplication would save {human_size(report.len_saved)} "
        f"({report.len_saved} bytes); dedup ratio {report.dedup_ratio:.2f}"
    )
    shares = [(label, n) for label, n in report.histogram.items() if n]  # the rows no digest falls in are left out
    if shares:
        width = max(10, *(len(label) for label, _ in shares))
        out("  digests by the number of blocks that share them:")
        out(f"  {'blocks':>{width}}  {'digests':>10}")
        for label, n in shares:
            out(f"  {label:>{width}}  {n:>10}")
    for line in skipped_lines(report.not_read, report.is_dirty):
        out(f"  {line}")
    out(
        f"{shown(report.journal)}: {count(report.num_entries, 'HASH entry', 'HASH entries')} written, "
        f"in {count(report.num_clusters, 'cluster')}"
    )
    return EXIT_OK


def skipped_lines(not_read: dict[str, Any], is_dirty: bool) -> list[str]:
    """What a report did not read, and the dirty bit, in words (the same in every image command)."""
    from qjournal.guest import NotRead  # noqa: PLC0415
    from qjournal.image import DIRTY_NOTE  # noqa: PLC0415

    left = NotRead(not_read["backing_file"], not_read["num_snapshots"], tuple(not_read["snapshot_names"])).describe()
    lines = ["not read: " + (left or "nothing (no backing file, no internal snapshot)")]
    if is_dirty:
        lines.append(DIRTY_NOTE)
    return lines


def _index_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="the disk image: qcow2 (versions 2 and 3) or raw")
    p.add_argument("path", metavar="JOURNAL", help="the journal to make")
    add_image(p)
    add_force_share(p)
    p.add_argument("--force", action="store_true", help="replace an existing journal (an area that holds a journal and nothing else)")
    add_output(p, ("human", "json"))


INDEX = Command(
    "index", cmd_index, "build the journal of an image's data clusters, and its dedup summary",
    ("Build the journal the deduplication series would have recorded for IMAGE: walk the guest disk in "
     "guest order, in blocks of --block-size (a qcow2 image's cluster size unless told; any power of two "
     "from 512 up to it: a block inside a data cluster is contiguous in the file; larger is refused); for "
     "every block stored uncompressed read its bytes; a block of zeros is counted and not journaled; "
     "otherwise its SHA-256, and the first block with a digest becomes a HASH entry (physical sector = "
     "host offset / 512, first logical sector = guest offset / 512); later blocks with the same digest "
     "are duplicates, or shared when stored at the same host offset (refcount > 1: already deduplicated, "
     "read and hashed once, at its first use). Compressed clusters, and blocks of partly allocated "
     "clusters (extended L2 entries), are hashed for the statistics, not journaled. A raw image (no qcow2 magic) is indexed in blocks of "
     "--block-size, physical = logical. Only the image's own clusters count (not a backing file's); with "
     "internal snapshots, the active one.",
     "JOURNAL is made sized to hold the entries, once the whole image is hashed (refused if it exists, "
     "unless --force), its first entry the metadata entry (the block size, the hash and the image's format, "
     "cluster size and virtual size, which verify reads), and written in atomic batches. The summary is like 'zdb -S': every "
     "block counted once as unallocated, zero, distinct (the first block with its digest), duplicate or "
     "shared, with their total; besides, the blocks allocated, compressed and partial; the bytes a "
     "deduplication would save (a raw image's short last block counted as the bytes it holds), the dedup "
     "ratio, and how many digests are shared by 1, 2, 3-4, 5-8... blocks (1: zdb's unique). Encrypted images "
     "and an external data file are refused. 'qjournal analyze' reports any block size, across images, "
     "without a journal.",),
    ((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, an image it cannot map, or refused")),
    _index_arguments,
    examples="  qjournal index disk.qcow2 disk.qjournal\n  qjournal index disk.qcow2 disk.qjournal --block-size 4K\n"
             "  qjournal index disk.raw disk.qjournal --block-size 4K --output json",
)


# -- verify --------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    """qjournal verify: every live HASH entry of JOURNAL against IMAGE; exit 2 on any problem."""
    from qjournal.errors import spell  # noqa: PLC0415
    from qjournal.image import DEFAULT_BLOCK_SIZE, open_image  # noqa: PLC0415
    from qjournal.metadata import first_of  # noqa: PLC0415
    from qjournal.verifying import verify as verify_image  # noqa: PLC0415

    meta, _ = first_of(args.path, args.offset, args.length)  # a raw image is opened in the blocks the journal names (D30)
    block_size = args.block_size or (meta.block_size if meta is not None else DEFAULT_BLOCK_SIZE)
    with open_image(args.image, format=args.format, block_size=block_size, force_share=args.force_share) as img, \
            Progress(img.len_virtual_disk if args.all else 0, "verify --all", min_len=0) as progress:
        report = verify_image(
            args.path, img, block_size=args.block_size, hash_name=args.hash_name,
            journal_offset=args.offset, journal_length=args.length, jobs=args.jobs, all_blocks=args.all,
            progress=progress.callback,
        )
    code = EXIT_OK if report.is_clean else EXIT_CORRUPT
    if args.output == "json":
        out(json_document(report.to_dict(cli=True)))
        return code
    journal, image = shown(report.journal), shown(report.image)
    for m in report.mismatches:
        out(f"{journal}: {m.message(cli=True)}")
    if report.metadata is not None:
        from qjournal.metadata import JournalMetadata  # noqa: PLC0415

        out(f"{journal}: made of {JournalMetadata(**report.metadata).describe()} (its metadata entry)")
    for note in report.notes:
        out(f"{journal}: note: {note}")
    for line in skipped_lines(report.not_read, report.is_dirty):
        out(f"{image}: {line}")
    size = human_size(report.block_size)
    read = f"{count(report.num_blocks_read, 'block')} of {size} read and hashed, one per live entry"
    if report.num_data_blocks is None:
        out(f"{journal}: {read}; the image's other data blocks were not checked")
    elif report.scan is None:
        rest = max(0, report.num_data_blocks - report.num_blocks_read)
        out(f"{journal}: {read}, of the {count(report.num_data_blocks, 'data block')} the image stores; "
            f"not checked: the other {rest} (duplicates of journaled blocks, or data written since the index; "
            f"--all hashes them all)")
    else:
        out(f"{journal}: {read}")
    if report.scan is not None:
        _print_scan(report.scan, journal, size)
    checked = count(report.num_checked, "live HASH entry", "live HASH entries")
    if not report.mismatches:
        out(f"{journal}: {checked} checked against {image}: every one matches")
    else:
        out(
            f"{journal}: {checked} checked against {image}: {report.num_mismatched} with problems "
            f"({count(len(report.mismatches), 'problem')})"
        )
    if report.likely_cause is not None:
        out(f"{journal}: hint: {spell(report.likely_cause, cli=True)}")
    return code


def _print_scan(scan: AllBlocks, journal: str, size: str) -> None:
    """What verify --all found, in lines."""
    out(f"{journal}: --all: {count(scan.num_hashed, 'data block')} of {size} read and hashed ({scan.hash_name}); not "
        f"looked up: {scan.num_zero} that read as zeros, {scan.num_not_journaled} compressed or partly allocated "
        f"(index journals none of them)")
    for b in scan.unknown:
        out(f"{journal}: --all: block at guest offset {b.ofs_guest:#x} (host {b.ofs_host:#x}) hashes to {b.digest.hex()}, "
            f"which no live entry has (changed since the index, or new)")
    if scan.num_unknown > len(scan.unknown):
        out(f"{journal}: --all: ... and {scan.num_unknown - len(scan.unknown)} more such blocks")
    for e in scan.unmatched:
        assert e.ofs is not None
        out(f"{journal}: --all: entry at offset {e.ofs:#x} ({e.ofs}): no block of the image hashes to its digest "
            f"{e.digest.hex()}")
    if scan.num_unmatched > len(scan.unmatched):
        out(f"{journal}: --all: ... and {scan.num_unmatched - len(scan.unmatched)} more such entries")
    out(f"{journal}: --all: {count(scan.num_unknown, 'block')} whose digest the journal does not know, "
        f"{count(scan.num_unmatched, 'live entry', 'live entries')} that no block matches any more")


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    add_area(p, "the journal (or an image holding its area)", metavar="JOURNAL")
    p.add_argument("image", metavar="IMAGE", help="the disk image the journal describes")
    add_image(p)
    add_force_share(p)
    p.add_argument("--hash-name", "--hash", dest="hash_name", metavar="NAME", default=None,
                   help="the hash algorithm of every digest (a hashlib name: sha1, sha256, sha512...), for a journal "
                   "without a metadata entry (one with it says its own)")
    p.add_argument("--all", action="store_true",
                   help="also hash every data block of the image, as index does, and report the blocks whose digest "
                   "the journal does not know (changed since the index, or new) and the entries no block matches")
    add_output(p, ("human", "json"))


VERIFY = Command(
    "verify", cmd_verify, "check every live HASH entry of a journal against its image",
    ("For each live HASH entry of JOURNAL (the last entry per digest), read the block at its physical "
     "sector in IMAGE, check its hash against the digest, and, for qcow2, that the first logical sector "
     "maps through L1/L2 to that host cluster. A journal index or dedup wrote starts with a metadata entry "
     "(an entry of the unassigned type 0x71, this project's convention) that says the block size, the hash "
     "algorithm and the image (format, cluster size, virtual size): they are used, a --block-size or "
     "--hash-name that contradicts them is refused, and so "
     "is an image of another format or cluster size. Without it, blocks are the image's clusters unless "
     "--block-size gives the smaller block size the journal was made in (a raw image's --block-size), and "
     "the algorithm is the one the digest's length names (20 bytes SHA-1, 32 SHA-256, 64 SHA-512) unless "
     "--hash-name names it.",
     "Each problem is printed with the entry's offset, its code and what is wrong: the data changed, a "
     "sector past the end of the image, a guest sector unallocated or mapped elsewhere, not aligned. The "
     "summary says what was read: one block per live entry; the image's other data blocks (duplicates of "
     "journaled ones, or data written since the index) are not read unless --all, which hashes every data "
     "block as index does and reports the blocks whose digest no live entry has and the live entries no "
     "block matches any more (a progress bar on a terminal). When every entry fails, a hint says what is "
     "likelier.",),
    (
        (EXIT_OK, "every live entry matches the image (with --all: and every data block's digest is known)"),
        (EXIT_ERROR, "usage or I/O error, an image it cannot map, or an image the metadata entry does not describe"),
        (EXIT_CORRUPT, "a problem: an entry that does not match, a block --all does not find, or a corrupt journal"),
    ),
    _verify_arguments,
    examples="  qjournal verify disk.qjournal disk.qcow2\n  qjournal verify disk.qjournal disk.qcow2 --all\n"
             "  qjournal verify disk.qjournal disk.raw --output json",
)
