"""Deduplication analysis of disk images at any block sizes, across images: what ``qjournal analyze`` reports.

Definitions (the docs and ``--help`` say the same). The guest disk of each
image is cut into blocks of B bytes at guest offsets that are multiples of B.
A block *counts* when the image itself stores at least one byte of it (a
data, compressed or zero cluster or subcluster of its own; for a raw image,
every block). Its content is the guest view of the image alone (bytes the
image does not store read as zeros; past the disk's end too, D27). A block
is *zero* when all its bytes are zero. The digest is SHA-256 of its B bytes.
``num_distinct`` counts the distinct digests of non-zero blocks; a digest
referenced once is *unique* (``zdb -S``'s word), ``num_duplicate`` = non-zero
blocks - ``num_distinct``.

Strategy. One read pass per image (:class:`qjournal.guest.GuestReader`
batches of the largest block size asked; each smaller size is a
:meth:`~qjournal.guest.Blocks.refine` of the same buffer), the hashing of
every block size of a batch on a pool of threads (hashlib releases the GIL
for blocks of 2 KiB and more), results taken back in guest order by the
caller's thread, which counts them: per block size a dict digest -> one int
packing the digest's references and the set of images that hold it. Past
``memory_limit`` the dicts spill to an SQLite database in a temporary folder,
as :class:`qjournal.live.LiveIndex` does: each full dict is appended to a
table, and at the end SQLite sorts the rows by digest so that one ordered
pass merges them (sequential work on disk). ``list_duplicates`` adds a table
of every non-zero block's (digest, image, offset), grouped at the end.
Nothing is written to the images; the database is deleted on close.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from qjournal.errors import JournalArgumentError
from qjournal.guest import STORED, Blocks, GuestReader, NotRead, Status
from qjournal.hashing import block_digests, map_batches
from qjournal.image import Image, check_block_size
from qjournal.parallel import resolve_jobs
from qjournal.spill import Spill
from qjournal.wording import histogram_label

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "BYTES_PER_DIGEST",
    "DEFAULT_MEMORY_LIMIT",
    "Analysis",
    "BlockSizeFigures",
    "Duplicate",
    "HistogramRow",
    "ImageFigures",
    "analyze",
]

DEFAULT_MEMORY_LIMIT = 256 << 20
"""Bytes the digest counts of all block sizes may take before they spill to disk (about 1.5 million digests)."""
BYTES_PER_DIGEST = 170
"""What one distinct SHA-256 digest costs in memory (the digest, its packed count, the dict's slot), measured."""
SQLITE_CACHE_KIB = 64 << 10
"""SQLite's page cache once spilled: 64 MiB at most, and no more than half the memory limit (its sorter takes as much)."""

_DATA_OR_COMPRESSED = int(Status.DATA | Status.COMPRESSED)
_STORED = int(STORED)


@dataclass(frozen=True)
class HistogramRow:
    """One ``zdb -S`` bucket: the digests referenced ``refcount`` times (``1``, ``2``, ``3-4``, ``5-8``...)."""

    refcount: str
    num_distinct: int
    """Distinct digests in the bucket (zdb's "allocated blocks")."""
    len_distinct: int
    num_referenced: int
    """Blocks that reference them (zdb's "referenced blocks")."""
    len_referenced: int


@dataclass(frozen=True)
class ImageFigures:
    """One image's blocks at one block size."""

    path: str
    num_blocks: int
    num_zero: int
    num_distinct: int
    """Distinct digests of its non-zero blocks, within this image."""
    len_exclusive: int
    """B x its non-zero blocks whose digest appears in no other image given."""
    len_shared: int
    """B x its other non-zero blocks."""


@dataclass(frozen=True)
class BlockSizeFigures:
    """The analysis at one block size, over all images."""

    block_size: int
    num_blocks: int
    num_zero: int
    num_distinct: int
    num_duplicate: int
    len_saved: int
    dedup_ratio: float
    histogram: list[HistogramRow]
    images: list[ImageFigures]

    @property
    def num_nonzero(self) -> int:
        """Blocks that count and are not zero."""
        return self.num_blocks - self.num_zero


@dataclass(frozen=True)
class Duplicate:
    """A digest referenced more than once at one block size, and the blocks that share it, in (image, offset) order."""

    block_size: int
    digest: bytes
    blocks: list[tuple[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one JSON line of ``--list-duplicates``)."""
        return {"block_size": self.block_size, "digest": self.digest.hex(), "num_refs": len(self.blocks),
                "len_referenced": len(self.blocks) * self.block_size,
                "blocks": [{"path": p, "offset": o} for p, o in self.blocks]}


@dataclass
class Analysis:
    """What :func:`analyze` found: per block size, the figures; per image, what was not read. A context manager:
    :meth:`duplicates` reads the spilled list until :meth:`close`."""

    block_sizes: list[BlockSizeFigures]
    not_read: dict[str, NotRead]
    _store: _Store | None = field(default=None, repr=False)
    dirty: tuple[str, ...] = ()
    """The images whose qcow2 dirty bit is set: read as they are, their refcounts not trusted (D29)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``qjournal analyze --output json``: ``block_sizes`` (each with its histogram and images),
        and ``not_read``, what each image leaves out (its backing file, its internal snapshots)."""
        return {
            "block_sizes": [asdict(b) for b in self.block_sizes],
            "not_read": [{"path": p, "backing_file": n.backing_file, "num_snapshots": n.num_snapshots,
                          "snapshot_names": list(n.snapshot_names), "is_dirty": p in self.dirty}
                         for p, n in self.not_read.items()],
        }

    def best(self) -> BlockSizeFigures:
        """The block size that saves most bytes (the smallest of equals)."""
        return max(self.block_sizes, key=lambda b: (b.len_saved, -b.block_size))

    def duplicates(self, block_size: int) -> Iterator[Duplicate]:
        """Every digest referenced more than once at ``block_size``, most bytes first (needs ``list_duplicates``)."""
        if self._store is None or not self._store.listing:
            raise JournalArgumentError("the duplicates were not listed: analyze(..., list_duplicates=True)")
        return self._store.duplicates(block_size)

    def close(self) -> None:
        """Delete the on-disk tables, if any."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Analysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Store:
    """Per block size: digest -> (references, images), in a dict, spilled to SQLite past the limit; the listed blocks."""

    def __init__(self, sizes: Sequence[int], paths: Sequence[str], *, limit: int, listing: bool,
                 spill_dir: str | os.PathLike[str] | None) -> None:
        self.sizes, self.paths, self.listing = list(sizes), list(paths), listing
        self.one_ref = 1 << len(paths)  # the packed int: references << num_images | the images' bit set
        self.mem: dict[int, dict[bytes, int]] = {b: {} for b in sizes}
        self.limit = max(1, limit // BYTES_PER_DIGEST // len(sizes))
        self.cache_kib = max(1024, min(SQLITE_CACHE_KIB, limit // 2048))
        self.spilled: set[int] = set()
        self._spill = Spill("the analysis's counts", ", ".join(paths), spill_dir, self.cache_kib)
        self._db: sqlite3.Connection | None = None

    def db(self) -> sqlite3.Connection:
        if self._db is None:
            schema = []
            for b in self.sizes:
                schema.append(f"CREATE TABLE occ_{b} (digest BLOB NOT NULL, refs INTEGER NOT NULL, images BLOB NOT NULL)")
                schema.append(f"CREATE TABLE loc_{b} (digest BLOB NOT NULL, image INTEGER NOT NULL, ofs INTEGER NOT NULL)")
            db = self._spill.open(*schema)
            self._db = db
        return self._db

    def add(self, size: int, image: int, digests: list[bytes], offsets: list[int] | None,
            weights: dict[int, int] | None = None) -> None:
        """Count ``digests`` (non-zero blocks of image number ``image``; ``weights``: digest number -> how many blocks it
        stands for, where not 1, D31); list them with their guest offsets."""
        mem = self.mem[size]
        get, inc, bit = mem.get, self.one_ref, 1 << image
        for d in digests:
            v = get(d)
            mem[d] = inc | bit if v is None else (v + inc) | bit
        for k, w in (weights or {}).items():
            mem[digests[k]] += inc * (w - 1)
        if offsets is not None:
            with self._spill.errors():
                self.db().executemany(f"INSERT INTO loc_{size} VALUES (?, {image}, ?)", zip(digests, offsets, strict=True))
        if len(mem) > self.limit:
            self._flush(size)

    def _flush(self, size: int) -> None:
        mem, n, nbytes = self.mem[size], len(self.paths), -(-len(self.paths) // 8)
        mask = self.one_ref - 1
        with self._spill.errors():
            self.db().executemany(f"INSERT INTO occ_{size} VALUES (?, ?, ?)",
                                  ((d, v >> n, (v & mask).to_bytes(nbytes, "little")) for d, v in mem.items()))
        mem.clear()
        self.spilled.add(size)

    def records(self, size: int) -> Iterator[tuple[int, int]]:
        """(references, images' bit set) of every distinct digest at ``size``: from the dict, or merged from the sorted table."""
        n = len(self.paths)
        if size not in self.spilled:
            mask = self.one_ref - 1
            for v in self.mem[size].values():
                yield v >> n, v & mask
            return
        self._flush(size)
        cur: bytes | None = None
        refs = images = 0
        for digest, r, m in self.db().execute(f"SELECT digest, refs, images FROM occ_{size} ORDER BY digest"):
            if digest != cur:
                if cur is not None:
                    yield refs, images
                cur, refs, images = digest, 0, 0
            refs += r
            images |= int.from_bytes(m, "little")
        if cur is not None:
            yield refs, images

    def duplicates(self, size: int) -> Iterator[Duplicate]:
        db = self.db()
        db.execute(f"CREATE TEMP TABLE IF NOT EXISTS dup_{size} AS "
                   f"SELECT digest, count(*) AS n FROM loc_{size} GROUP BY digest HAVING n > 1")
        cur: bytes | None = None
        blocks: list[tuple[str, int]] = []
        rows = db.execute(f"SELECT l.digest, l.image, l.ofs FROM loc_{size} l JOIN dup_{size} d ON l.digest = d.digest "
                          f"ORDER BY d.n DESC, l.digest, l.image, l.ofs")
        for digest, image, ofs in rows:
            if digest != cur:
                if cur is not None:
                    yield Duplicate(size, cur, blocks)
                cur, blocks = digest, []
            blocks.append((self.paths[image], ofs))
        if cur is not None:
            yield Duplicate(size, cur, blocks)

    def close(self) -> None:
        if self._db is not None:
            self._spill.close()
            self._db = None


_Counted = tuple[int, int, list[bytes], list[int] | None, dict[int, int] | None]
"""Per block size: blocks that count, zero blocks, digests of the non-zero ones, their guest offsets if listing, and
digest number -> how many blocks it stands for where not 1 (D31; the two counts are weighted already)."""


def _hash_batch(fill: Callable[[Blocks], Blocks], batch: Blocks, *, sizes: Sequence[int], listing: bool) -> list[_Counted]:
    """Per block size, see :data:`_Counted`."""
    if batch.needs_read:  # else every block is zero or unallocated: nothing to read (a zero-cluster terabyte)
        batch = fill(batch)
    view = batch.data if batch.data is not None else memoryview(bytearray())
    buf = view.obj  # the batch's bytearray: startswith compares in C
    assert isinstance(buf, bytearray)
    out: list[_Counted] = []
    for size in sizes:
        b = batch if size == batch.block_size else batch.refine(size)
        zeros = bytes(size)
        is_zero = buf.startswith
        status, w = b.status, b.weights
        counted = [i for i in range(b.num_blocks) if status[i] & _STORED]
        nonzero = [i for i in counted if status[i] & _DATA_OR_COMPRESSED and not is_zero(zeros, i * size)]
        digests = block_digests(view, [i * size for i in nonzero], size)
        offsets = [b.ofs_guest + i * size for i in nonzero] if listing else None
        if w is None:
            out.append((len(counted), len(counted) - len(nonzero), digests, offsets, None))
            continue
        weights = {k: w[i] for k, i in enumerate(nonzero) if i in w}
        num, num_nonzero = (sum(w.get(i, 1) for i in x) for x in (counted, nonzero))
        out.append((num, num - num_nonzero, digests, offsets, weights))
    return out


def analyze(
    images: Sequence[str | os.PathLike[str] | Image],
    *,
    block_sizes: Sequence[int] | None = None,
    list_duplicates: bool = False,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    spill_dir: str | os.PathLike[str] | None = None,
) -> Analysis:
    """Analyse ``images`` (paths, opened by :func:`qjournal.image.open_image`, or open images) at ``block_sizes``.

    Block sizes: powers of two from 512 B to 2 MiB (default: the first
    image's cluster size, or a raw image's block size). One read pass per
    image hashes every block size, on ``jobs`` threads (default: one per
    core). ``progress(n)``: guest bytes walked so far over all images. With
    ``list_duplicates``, :meth:`Analysis.duplicates` lists the blocks of each
    shared digest (use the result as a context manager). Memory: the digest
    counts spill to a temporary SQLite database past ``memory_limit`` bytes
    (in ``spill_dir``, default the system's temporary folder).
    """
    if not images:
        raise JournalArgumentError("analyze needs at least one image")
    workers = resolve_jobs(jobs, "hashing threads")
    readers: list[GuestReader] = []
    store: _Store | None = None
    try:
        for img in images:
            readers.append(GuestReader(img))
            readers[-1].image.check_mapping()  # a mapping qemu-img check refuses is not read (D29): work bounded by the file
        sizes = sorted({check_block_size(b) for b in block_sizes} if block_sizes else {readers[0].cluster_size})
        paths = [r.name for r in readers]
        store = _Store(sizes, paths, limit=memory_limit, listing=list_duplicates, spill_dir=spill_dir)
        counts = {b: [[0, 0, 0] for _ in readers] for b in sizes}  # per image: blocks, zero, non-zero
        done = 0
        for k, reader in enumerate(readers):
            _pass(reader, k, sizes, store, counts, workers=workers, listing=list_duplicates, progress=progress, base=done)
            done += reader.len_virtual_disk
        figures = [_figures(b, store, counts[b], paths) for b in sizes]
        return Analysis(figures, {r.name: r.not_read for r in readers}, store if list_duplicates else None,
                        tuple(r.name for r in readers if r.image.is_dirty))
    except BaseException:
        if store is not None:
            store.close()
        raise
    finally:
        if store is not None and not list_duplicates:
            store.close()
        for r in readers:
            r.close()


def _pass(reader: GuestReader, image: int, sizes: list[int], store: _Store, counts: dict[int, list[list[int]]], *,
          workers: int, listing: bool, progress: Callable[[int], None] | None, base: int) -> None:
    """One read of ``reader``'s disk: every block size hashed on every core, counted here in guest order."""
    hash_batch = functools.partial(_hash_batch, reader.fill, sizes=sizes, listing=listing)
    # a data cluster several guest clusters use is read once (D31); not when every block is listed
    for end, results in map_batches(reader, sizes[-1], hash_batch, jobs=workers, once=not listing):
        for size, (n, zero, digests, offsets, weights) in zip(sizes, results, strict=True):
            row = counts[size][image]
            row[0] += n
            row[1] += zero
            row[2] += n - zero
            store.add(size, image, digests, offsets, weights)
        if progress is not None:
            progress(base + min(end, reader.len_virtual_disk))
    if progress is not None:
        progress(base + reader.len_virtual_disk)


def _figures(size: int, store: _Store, counts: list[list[int]], paths: list[str]) -> BlockSizeFigures:
    """The figures at one block size, from the merged digest counts."""
    n_images = len(paths)
    rows: dict[int, list[int]] = {}  # bucket -> [distinct, referenced]
    distinct = [0] * n_images
    exclusive = [0] * n_images
    num_distinct = 0
    for refs, images in store.records(size):
        num_distinct += 1
        row = rows.setdefault((refs - 1).bit_length(), [0, 0])
        row[0] += 1
        row[1] += refs
        if images & (images - 1) == 0:  # one image holds every reference
            k = images.bit_length() - 1
            distinct[k] += 1
            exclusive[k] += refs
        else:
            for k in range(n_images):
                if images >> k & 1:
                    distinct[k] += 1
    num_blocks = sum(c[0] for c in counts)
    num_zero = sum(c[1] for c in counts)
    nonzero = num_blocks - num_zero
    histogram = []
    for k in range(max(rows) + 1 if rows else 0):
        d, r = rows.get(k, (0, 0))
        histogram.append(HistogramRow(histogram_label(1 << k if k else 1), d, d * size, r, r * size))
    return BlockSizeFigures(
        block_size=size, num_blocks=num_blocks, num_zero=num_zero, num_distinct=num_distinct,
        num_duplicate=nonzero - num_distinct, len_saved=(nonzero - num_distinct) * size,
        dedup_ratio=nonzero / num_distinct if num_distinct else 1.0, histogram=histogram,
        images=[ImageFigures(path=paths[k], num_blocks=c[0], num_zero=c[1], num_distinct=distinct[k],
                             len_exclusive=exclusive[k] * size, len_shared=(c[2] - exclusive[k]) * size)
                for k, c in enumerate(counts)],
    )
