"""The dedup command: a deduplicated qcow2 copy of an image, and its journal.

Strategy: the arguments go to :func:`qjournal.deduplicating.dedup`, which refuses
before writing anything what it cannot copy whole (snapshots, bitmaps,
encryption, an external data file, a target that exists or is the source, an
image QEMU writes) and commits the target and its journal atomically; the
command prints the library's report, as lines or as its ``to_dict()`` in JSON.
The progress bar spans both passes (twice the virtual disk).
"""

from __future__ import annotations

import argparse

from qjournal.cli.arguments import add_output, num_jobs, parse_size
from qjournal.cli.base import EXIT_ERROR, EXIT_OK, Command
from qjournal.cli.console import Progress, human_size, out
from qjournal.wording import count, json_document


def cmd_dedup(args: argparse.Namespace) -> int:
    """qjournal dedup: write TARGET, SOURCE's disk with every distinct non-zero cluster stored once, and its journal."""
    from qjournal.deduplicating import dedup  # noqa: PLC0415
    from qjournal.image import open_image  # noqa: PLC0415

    with open_image(args.source, force_share=args.force_share) as img:  # the size for the bar; the library opens it again, read-only
        total = 2 * img.len_virtual_disk
    journal: str | bool = False if args.no_journal else args.journal or True
    with Progress(total, "dedup", min_len=0) as progress:
        r = dedup(
            args.source, args.target, cluster_size=args.cluster_size, journal=journal, drop_bitmaps=args.drop_bitmaps,
            force_share=args.force_share, jobs=args.jobs, progress=progress.callback,
        )
    if args.output == "json":
        out(json_document(r.to_dict()))
        return EXIT_OK
    cs = human_size(r.cluster_size)
    out(f"{r.source}: {r.format}, {count(r.num_guest_clusters, 'guest cluster')} of {cs} "
        f"({human_size(r.len_virtual_disk)} virtual disk)"
        + ("" if r.cluster_size == r.source_cluster_size else f"; its own clusters are {human_size(r.source_cluster_size)}"))
    groups = (  # the first group adds up to the guest clusters; the others are set apart, not part of that total
        ("every guest cluster counted once, in one of:", (
            ("unallocated", r.num_unallocated, "left unallocated"),
            ("zero", r.num_zero, "zero clusters, not stored"),
            ("data", r.num_data, "non-zero"),
            ("total", r.num_guest_clusters, "guest clusters"),
        )),
        ("the data clusters, once more:", (
            ("distinct", r.num_distinct, "the first with its contents"),
            ("duplicate", r.num_duplicate, "guest clusters sharing a cluster an earlier one brought"),
        )),
        ("in the target:", (
            ("stored", r.num_stored, "host data clusters written" + (
                " (a content shared more than 65535 times has more than one)" if r.num_stored != r.num_distinct else "")),
            ("shared", r.num_shared, "guest clusters pointing at a cluster another one also uses"),
        )),
    )
    for title, rows in groups:
        out(f"  {title}")
        for label, n, what in rows:
            out(f"    {label + ':':<13}{n:>12}  ({human_size(n * r.cluster_size)}) {what}")
    out(f"  source {human_size(r.len_source)}; target {human_size(r.len_target)}; a plain copy "
        f"(qemu-img convert -O qcow2) about {human_size(r.len_copy)}")
    saved = human_size(r.len_saved)
    exact = "" if saved.endswith("bytes") else f" ({r.len_saved} bytes)"
    out(f"  saved {saved}{exact} against a plain copy; dedup ratio {r.dedup_ratio:.2f}")
    if r.backing_file_name is not None:
        out(f"  backing file kept: {r.backing_file_name}" + (f" ({r.backing_format})" if r.backing_format else ""))
    if r.dropped_bitmaps:
        out(f"  persistent bitmaps dropped: {', '.join(r.dropped_bitmaps)} (an incremental backup based on them needs a full one)")
    out(f"{r.target}: written" + (f"; its journal {r.journal}: {r.num_distinct} HASH entries" if r.journal else "; no journal"))
    return EXIT_OK


def _dedup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="the image to deduplicate: qcow2 (versions 2 and 3) or raw; only read")
    p.add_argument("target", metavar="TARGET", help="the new qcow2 image (must not exist)")
    p.add_argument("--cluster-size", type=parse_size, default=None, metavar="SIZE",
                   help="the target's cluster size, a power of two from 512 to 2M (default: the source's; 64K for raw)")
    j = p.add_mutually_exclusive_group()
    j.add_argument("--journal", metavar="PATH", default=None, help="where the target's journal goes (default: TARGET.qjournal)")
    j.add_argument("--no-journal", action="store_true", help="write no journal")
    p.add_argument("--drop-bitmaps", action="store_true",
                   help="deduplicate an image with persistent dirty bitmaps, writing the target without them")
    p.add_argument("-U", "--force-share", action="store_true",
                   help="read an image another process holds open for writing (as qemu-img -U): the copy may match no state of the disk")
    p.add_argument("--jobs", type=num_jobs, default=None, metavar="N", help="hashing and copying threads (default: one per core)")
    add_output(p, ("human", "json"))


DEDUP = Command(
    "dedup", cmd_dedup, "write a deduplicated qcow2 copy of an image: every distinct non-zero cluster stored once",
    ("Read SOURCE (never written) and write TARGET, a new qcow2 version 3 image with the same virtual disk, "
     "in which every distinct non-zero cluster is stored once and every guest cluster with that content "
     "points to it (its refcount counts them; COPIED is set only where the refcount is 1, so that QEMU "
     "copies a shared cluster on write). Guest clusters that read as zeros become zero clusters; what "
     "SOURCE leaves unallocated stays unallocated; a backing file is kept (name and format). Compressed "
     "clusters are stored decompressed; extended-L2 images are read by subcluster.",
     "Refused, with nothing written: internal snapshots (extract one with 'qemu-img convert -l'), "
     "persistent bitmaps (unless --drop-bitmaps), encryption, an external data file, a TARGET that exists "
     "or is SOURCE, an image a running QEMU writes (unless -U). TARGET is written beside its name and "
     "appears only when complete; so does its journal (one HASH entry per distinct data cluster, what "
     "'qjournal index TARGET' writes). QEMU reads and writes TARGET; after a guest write into a shared "
     "cluster 'qemu-img check' reports OFLAG_COPIED errors that 'qemu-img check -r all' repairs: use TARGET "
     "as a read-only base under an overlay. 'qemu-img convert' undoes the sharing.",),
    ((EXIT_OK, "success"), (EXIT_ERROR, "usage or I/O error, an image it cannot read, or refused with nothing written")),
    _dedup_arguments,
    examples=("  qjournal dedup disk.qcow2 disk-dedup.qcow2\n"
              "  qjournal dedup disk.qcow2 small.qcow2 --cluster-size 4K --output json\n"
              "  qemu-img create -f qcow2 -b disk-dedup.qcow2 -F qcow2 overlay.qcow2"),
)
