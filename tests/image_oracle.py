"""What an image's index and mapping must be, from QEMU's answers and the image's bytes alone.

The tests of qjournal.image, qjournal.index and qjournal.verify compare the
library with this module, which never calls the library's mapping: the kind
and host offset of every guest cluster come from ``qemu-img map --output=json``
(tests/qemu_images.py), the digests from hashlib over the file's bytes at the
offsets the map gives. ``INDEX_IMAGES`` are the images made for these tests
(repeated clusters in known numbers, zero data and zero flags, compressed
clusters, a backing chain, an internal snapshot, cluster sizes 4 KiB, 64 KiB
and 2 MiB, versions 2 and 3); the tests also run over the supported images of
``qemu_images.TEST_IMAGES``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import qemu_images as qi
from helpers import known
from qemu_images import Compress, ImageSpec, KiB, MiB, Snapshot, Write, Zero

UNSUPPORTED = {
    "luks_c4k": "encryption",
    "data_file_raw_c4k": "external_data_file",
    "data_file_c64k": "external_data_file",
}
"""The images of qemu_images.TEST_IMAGES that qjournal.image refuses, and the feature it names."""

SUBCLUSTERED = ("extended_l2_c64k", "extended_l2_c16k", "extended_l2_eof_c64k")
"""The images of qemu_images.TEST_IMAGES with extended L2 entries: opened, read by subcluster (qjournal.guest);
their partly allocated clusters are refused by the cluster-level walks of qjournal.image."""


def _repeats(unit: int, base: int = 0) -> tuple[Write, ...]:
    """Clusters of one pattern each, repeated 1, 2, 3, 5 and 9 times, from guest offset ``base``."""
    out, pos = [], base
    for pattern, times in ((0x11, 1), (0x22, 2), (0x33, 3), (0x44, 5), (0x55, 9)):
        out.append(Write(pos, times * unit, pattern))
        pos += (times + 1) * unit
    return tuple(out)


_BACKING_BASE = ImageSpec("idx_base", cluster_size=64 * KiB, size=1 * MiB,
                          steps=(Write(0, 128 * KiB, 0xA1), Write(512 * KiB, 64 * KiB, 0xA3)))

INDEX_IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("idx_v3_c4k", cluster_size=4 * KiB, size=1 * MiB,
              steps=(*_repeats(4 * KiB),
                     Write(200 * KiB, 4 * KiB, 0x00),        # a data cluster whose bytes are zeros
                     Zero(208 * KiB, 4 * KiB),               # a zero cluster (the flag)
                     Write(256 * KiB + 512, 1 * KiB, 0x66),  # part of a cluster: QEMU fills the rest with zeros
                     Write(1 * MiB - 4 * KiB, 4 * KiB, 0x11)),   # the last cluster repeats the first
              doc="version 3, 4 KiB clusters: clusters shared by 1, 2, 3, 5 and 9, zero data, a zero flag"),
    ImageSpec("idx_v2_c64k", cluster_size=64 * KiB, compat="0.10", size=4 * MiB,
              steps=(*_repeats(64 * KiB), Write(3 * MiB, 64 * KiB, 0x00), Write(3 * MiB + 192 * KiB, 64 * KiB, 0x33)),
              doc="version 2, 64 KiB clusters"),
    ImageSpec("idx_v3_c2m", cluster_size=2 * MiB, size=12 * MiB,
              steps=(Write(0, 2 * MiB, 0x11), Write(4 * MiB, 4 * MiB, 0x22), Zero(8 * MiB, 2 * MiB),
                     Write(10 * MiB + 4 * KiB, 4 * KiB, 0x33)),
              doc="2 MiB clusters: a duplicate, a zero cluster, a cluster QEMU completes with zeros"),
    ImageSpec("idx_compressed", cluster_size=64 * KiB, size=1 * MiB,
              steps=(Write(0, 256 * KiB, 0x77), Write(512 * KiB, 64 * KiB, 0x78), Compress(),
                     Write(64 * KiB, 64 * KiB, 0x78), Write(768 * KiB, 128 * KiB, 0x79)),
              doc="compressed clusters, then data clusters written after (one with a compressed cluster's content)"),
    _BACKING_BASE,
    ImageSpec("idx_top", cluster_size=64 * KiB, size=1 * MiB, backing=_BACKING_BASE,
              steps=(Write(64 * KiB, 64 * KiB, 0xA1), Zero(0, 64 * KiB), Write(192 * KiB, 128 * KiB, 0xA2)),
              doc="on a backing file: only the overlay's own clusters count"),
    ImageSpec("idx_snapshot", cluster_size=64 * KiB, size=1 * MiB,
              steps=(Write(0, 128 * KiB, 0xB1), Snapshot("s1"), Write(0, 64 * KiB, 0xB2), Write(256 * KiB, 64 * KiB, 0xB1)),
              doc="an internal snapshot: the active disk's cluster 0 was copied on write"),
)


@dataclass
class Unit:
    """One guest cluster as QEMU's map describes it in this image alone."""

    ofs_guest: int
    kind: str  # data / zero / compressed / unallocated
    ofs_host: int | None


def qemu_clusters(image: qi.Image, cluster_size: int, size: int) -> list[Unit]:
    """Every guest cluster of ``image`` (its own clusters only), from ``qemu-img map``."""
    out = []
    for u in qi.map_units(image.map(), cluster_size, size):
        if u["depth"] > 0 or not u.get("present", u["data"] or u["zero"]):
            out.append(Unit(u["start"], "unallocated", None))
        elif u["zero"]:
            out.append(Unit(u["start"], "zero", u.get("offset")))
        elif u["data"] and "offset" in u:
            out.append(Unit(u["start"], "data", u["offset"]))
        else:  # data without an offset: compressed (these images are not encrypted)
            out.append(Unit(u["start"], "compressed", None))
    return out


def zdb_rows(refs: Counter[bytes]) -> dict[str, int]:
    """Digests by how many clusters share them, in ``zdb -S``'s rows 1, 2, 3-4, 5-8..., up to the last non-empty row."""
    def row(n: int) -> int:
        k = 0
        while (1 << k) < n:
            k += 1
        return k
    counts = Counter(row(n) for n in refs.values())
    labels = ["1", "2"] + [f"{(1 << (k - 1)) + 1}-{1 << k}" for k in range(2, 64)]
    return {labels[k]: counts.get(k, 0) for k in range(max(counts) + 1)} if counts else {}


@dataclass
class Expected:
    """What index must find: the entries (digest, physical_sector, first_logical_sector) in order, and the counts."""

    entries: list[tuple[bytes, int, int]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    refs: Counter[bytes] = field(default_factory=Counter)
    len_read: int = 0

    @property
    def histogram(self) -> dict[str, int]:
        return zdb_rows(self.refs)


def expected_index(units: list[Unit], data: bytes, cluster_size: int, *, raw: bool = False,
                   guest: bytes | None = None) -> Expected:
    """The index of an image whose clusters are ``units`` and whose file holds ``data``: SHA-256 over the
    bytes at each data cluster's host offset (a whole cluster; a raw image's last block as the file has it),
    and over a compressed cluster's guest bytes (``guest``: what its guest reads, qemu-img convert's), which
    count in the statistics (unique, duplicate) but have no entry. A data cluster whose digest is known at
    the same host offset (refcount > 1) is "shared", not a duplicate."""
    exp = Expected()
    hosts: dict[bytes, set[int]] = {}
    for u in units:
        if u.kind in ("unallocated", "zero"):
            exp.counts[u.kind] += 1
            if u.kind == "zero" and u.ofs_host is not None:
                exp.counts["allocated"] += 1
            continue
        exp.counts["allocated"] += 1
        if u.kind in ("compressed", "partial"):
            assert guest is not None, "a compressed or partial block is hashed from the guest's bytes: pass guest="
            exp.counts[u.kind] += 1
            block = guest[u.ofs_guest:u.ofs_guest + cluster_size]
        else:
            block = data[known(u.ofs_host):known(u.ofs_host) + cluster_size]
            assert raw or len(block) == cluster_size, f"host cluster {u.ofs_host:#x} past the end of the file"
        exp.len_read += cluster_size if not raw else len(block)
        if block.count(0) == len(block):
            exp.counts["zero"] += 1
            continue
        digest = hashlib.sha256(block).digest()
        if u.kind == "data":
            host = known(u.ofs_host)
            if digest not in hosts:
                hosts[digest] = {host}
                exp.entries.append((digest, host // 512, u.ofs_guest // 512))
            elif host in hosts[digest]:
                exp.counts["shared"] += 1
                exp.refs[digest] += 1
                continue
            else:
                hosts[digest].add(host)
        exp.counts["unique" if exp.refs[digest] == 0 else "duplicate"] += 1
        exp.refs[digest] += 1
    return exp


def raw_units(size: int, block_size: int) -> list[Unit]:
    """A raw image's blocks: host offset = guest offset."""
    return [Unit(ofs, "data", ofs) for ofs in range(0, size, block_size)]


def file_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


# ---------------------------------------------------------------------------
# The guest view (qjournal.guest) and the analysis (qjournal.analysis): what each image stores, from
# ``qemu-img map``, and what its guest reads of it alone, from ``qemu-img convert -O raw``.

def _four_k(base: int, patterns: tuple[int, ...]) -> tuple[Write, ...]:
    """4 KiB writes of the given patterns, one after the other from ``base``."""
    return tuple(Write(base + i * 4 * KiB, 4 * KiB, p) for i, p in enumerate(patterns))


_SHARED = (Write(0, 128 * KiB, 0x44), Write(256 * KiB, 4 * KiB, 0x11))

GUEST_IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("g_repeats_c64k", cluster_size=64 * KiB, size=2 * MiB,
              steps=(*_four_k(0, (0x11, 0x22, 0x11, 0x33, 0x11, 0x22)),   # 4 KiB repeats inside one cluster
                     Write(64 * KiB, 64 * KiB, 0x11),                      # a cluster made of one 4 KiB block, 16 times
                     Write(192 * KiB, 64 * KiB, 0x00),                     # a data cluster of zeros
                     Zero(320 * KiB, 128 * KiB),                           # zero clusters
                     Write(512 * KiB, 128 * KiB, 0x33), Write(768 * KiB, 64 * KiB, 0x33),   # whole clusters repeated
                     *_four_k(1 * MiB + 60 * KiB, (0x55, 0x55)),           # a repeat across a cluster boundary
                     Write(2 * MiB - 4 * KiB, 4 * KiB, 0x22)),             # the last cluster, mostly zeros
              doc="64 KiB clusters with 4 KiB-granular repeats, zero data, zero clusters"),
    ImageSpec("g_zlib_c64k", cluster_size=64 * KiB, size=1 * MiB,
              steps=(Write(0, 192 * KiB, 0x44), Write(256 * KiB, 4 * KiB, 0x11), Compress(),
                     Write(512 * KiB, 64 * KiB, 0x44), Zero(64 * KiB, 64 * KiB)),
              doc="deflate-compressed clusters, a data cluster equal to one of them, a compressed cluster zeroed"),
    ImageSpec("g_zstd_c64k", cluster_size=64 * KiB, size=1 * MiB, options=(("compression_type", "zstd"),),
              steps=(Write(0, 128 * KiB, 0x44), Write(192 * KiB, 8 * KiB, 0x22), Compress()),
              doc="zstd-compressed clusters sharing content with the other images"),
    ImageSpec("g_ext_l2_c64k", cluster_size=64 * KiB, size=1 * MiB, options=(("extended_l2", "on"),),
              steps=(Write(0, 2 * KiB, 0x47), Write(4 * KiB, 4 * KiB, 0x11), Zero(8 * KiB, 2 * KiB),
                     Write(64 * KiB, 64 * KiB, 0x44), Zero(192 * KiB, 64 * KiB), Write(300 * KiB, 6 * KiB, 0x11)),
              doc="extended L2 entries: partly allocated clusters (2 KiB subclusters), zero subclusters, a whole cluster"),
    ImageSpec("g_shared_c64k", cluster_size=64 * KiB, size=1 * MiB, steps=_SHARED,
              doc="content shared with g_zlib_c64k and g_zstd_c64k"),
    ImageSpec("g_shared_c4k", cluster_size=4 * KiB, size=1 * MiB, steps=(*_SHARED, Write(512 * KiB, 16 * KiB, 0x11)),
              doc="the same content in 4 KiB clusters, and 4 KiB repeats"),
    ImageSpec("g_snap_backing", cluster_size=64 * KiB, size=1 * MiB, backing=_BACKING_BASE,
              steps=(Write(64 * KiB, 64 * KiB, 0xA1), Snapshot("before"), Write(320 * KiB, 4 * KiB, 0x11)),
              doc="a backing file and an internal snapshot, neither read"),
)
"""Images for qjournal.guest and qjournal.analysis."""


def own_ranges(image: qi.Image) -> list[tuple[int, int, str, int | None]]:
    """(start, length, status, host offset) of ``qemu-img map``: status data / zero / compressed / unallocated,
    of the image alone (a range from a backing file is unallocated here)."""
    out: list[tuple[int, int, str, int | None]] = []
    for r in image.map():
        if r["depth"] > 0 or not r.get("present", r["data"] or r["zero"]):
            out.append((r["start"], r["length"], "unallocated", None))
        elif r["data"] and "offset" in r:  # stored (QEMU also says "zero" where the file holds zeros or a hole)
            out.append((r["start"], r["length"], "data", r["offset"]))
        elif r["zero"]:
            out.append((r["start"], r["length"], "zero", r.get("offset")))  # a preallocated zero cluster keeps its host cluster
        else:
            out.append((r["start"], r["length"], "compressed", None))
    return out


def own_guest_bytes(image: qi.Image) -> bytes:
    """What the guest reads of the image alone: ``qemu-img convert -O raw``'s bytes where the image stores the
    range itself, zeros where it stores nothing."""
    disk = bytearray(image.guest_bytes())
    for start, length, status, _ in own_ranges(image):
        if status == "unallocated":
            disk[start:start + length] = bytes(length)
    return bytes(disk)


def block_units(image: qi.Image, unit: int) -> list[Unit]:
    """Every block of ``unit`` bytes of the image alone, from ``qemu-img map``: data (wholly stored, contiguous),
    zero (with its host offset when a whole zero cluster keeps a preallocated one: "allocated"), unallocated,
    compressed, or "partial" (stored in part: subclusters of several states)."""
    cs = image.spec.cluster_size
    ranges = own_ranges(image)
    end = ranges[-1][0] + ranges[-1][1]
    out = []
    for ofs in range(0, end, unit):
        inside = [r for r in ranges if r[0] < ofs + unit and ofs < r[0] + r[1]]
        kinds = {r[2] for r in inside}
        if kinds == {"data"} and all(known(r[3]) + ofs - r[0] == known(inside[0][3]) + ofs - inside[0][0] for r in inside):
            out.append(Unit(ofs, "data", known(inside[0][3]) + ofs - inside[0][0]))
        elif len(kinds) == 1 and kinds != {"data"}:
            kind = kinds.pop()
            r = inside[0]
            whole = r[0] <= ofs // cs * cs and ofs // cs * cs + cs <= r[0] + r[1]
            host = r[3] + ofs - r[0] if kind == "zero" and r[3] is not None and whole else None
            out.append(Unit(ofs, kind, host))
        elif "compressed" in kinds:
            out.append(Unit(ofs, "compressed", None))
        elif kinds <= {"zero", "unallocated"}:
            out.append(Unit(ofs, "zero", None))
        else:
            out.append(Unit(ofs, "partial", None))
    return out
