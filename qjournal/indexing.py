"""Indexing an image: one HASH entry per distinct data block, written to a new journal (D8, D25, D27).

Strategy. Walk the image's guest view in guest order, in blocks of the block
size (the cluster size unless told; any power of two from 512 bytes up to
it: a block inside a data cluster is contiguous in the file), through
:class:`qjournal.guest.GuestReader`, whose batches are hashed on a pool of
threads or forked processes (:func:`qjournal.hashing.map_batches`) and taken back in guest order. The first
data block with a digest becomes a HASH entry (``physical_sector`` = host
offset / 512, ``first_logical_sector`` = guest offset / 512, D25); later
ones are duplicates, or *shared* when they are a later use of a host cluster
the image maps more than once (refcount > 1: already deduplicated, nothing
to save), which is read and hashed once and counted for all its uses (D31):
the work is bounded by the file, not by what its tables claim. What index knows of each digest stays in bounded memory (a
:class:`~qjournal.dedup_map.DigestMap`, spilling to SQLite; the entries spooled
to a temporary file). All-zero blocks are counted, not journaled. Compressed clusters
are decompressed and hashed for the statistics, not journaled (their host
bytes are not the guest's); so are the blocks of a partly allocated cluster
(extended L2 entries). Nothing is written until the whole image is hashed:
then the journal is made as :func:`qjournal.create` makes one, sized exactly
to hold the entries (:func:`qjournal.format.tail_after`,
:func:`~qjournal.format.clusters_for`), and the entries are appended as one
atomic batch (D20), streamed. The report counts every block once, like ``zdb -S``.
"""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from qjournal.area import Source, describe, is_same_file
from qjournal.dedup_map import DigestMap
from qjournal.entries import encode_hash
from qjournal.errors import JournalArgumentError, JournalFullError, JournalIOError
from qjournal.format import LEN_CLUSTER, LEN_HASH_OVERHEAD, LEN_SHA256_DIGEST
from qjournal.guest import STORED, Blocks, GuestReader, NotRead, Status
from qjournal.hashing import DEFAULT_HASH, block_digests, map_batches
from qjournal.image import DEFAULT_BLOCK_SIZE, LEN_SECTOR, Image, Kind, Qcow2Image, check_block_size, open_image
from qjournal.making import Destination, check_target
from qjournal.metadata import JournalMetadata, begin_journal
from qjournal.parallel import resolve_jobs
from qjournal.wording import histogram_label

__all__ = ["DEFAULT_MEMORY_LIMIT", "IndexReport", "histogram_label", "index"]

_LEN_ENTRY = LEN_HASH_OVERHEAD + LEN_SHA256_DIGEST  # every entry index writes: 50 bytes (D8)
DEFAULT_MEMORY_LIMIT = 64 << 20
"""Bytes of digests index keeps in memory before the rest spills to SQLite (in ``spill_dir``, default TMPDIR)."""


@dataclass(frozen=True)
class IndexReport:
    """What :func:`index` found and wrote, in blocks of ``block_size`` bytes.

    Every block of the guest disk is counted once, in exactly one of
    ``num_unallocated`` (the image stores none of it), ``num_zero`` (it
    reads as zeros: zero clusters, and stored blocks whose bytes are all
    zero), ``num_unique`` (its digest was new: the summary's *distinct*; ``zdb -S``'s unique, a digest referenced
    once, is the histogram's row ``1``), ``num_duplicate`` (its digest
    was known, at another host offset: a deduplication would save it) and
    ``num_shared`` (its digest was known at this same host offset: the image
    already shares it, refcount > 1). Of the non-zero blocks,
    ``num_compressed`` were decompressed and ``num_partial`` are partly
    allocated (extended L2 subclusters): hashed for the statistics, not
    journaled; ``num_entries`` HASH entries were written, one per digest of
    a data block. ``num_allocated`` counts the blocks with storage in the
    image (``qemu-img check``'s allocated clusters, at the cluster size):
    data, compressed, and zero blocks that keep a preallocated host cluster.
    """

    image: str
    journal: str
    format: str
    """``"qcow2"`` or ``"raw"``."""
    block_size: int
    """The block size: the qcow2 image's cluster size unless told, a raw image's block size."""
    len_virtual_disk: int
    num_guest_clusters: int
    """Blocks of ``block_size`` of the guest disk (the name is the cluster-size one: at the cluster size, its clusters)."""
    num_allocated: int
    num_unallocated: int
    num_zero: int
    num_compressed: int
    num_unique: int
    num_duplicate: int
    len_read: int
    """Guest bytes read and hashed."""
    num_clusters: int
    """Journal clusters of the area written (4096 bytes each)."""
    histogram: dict[str, int] = field(default_factory=dict)
    """Digests by how many blocks reference them, in rows ``1``, ``2``, ``3-4``, ``5-8``... (``zdb -S``'s)."""
    hash_name: str = DEFAULT_HASH
    num_shared: int = 0
    num_partial: int = 0
    num_entries: int = 0
    """HASH entries written: one per digest of a data block."""
    not_read: dict[str, Any] = field(default_factory=lambda: NotRead(None, 0, ()).to_dict())
    """What was not read (:meth:`qjournal.guest.NotRead.to_dict`): the backing file's name, the internal snapshots."""
    is_dirty: bool = False
    """The qcow2 dirty bit was set: its refcounts were not trusted (D29)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The journal's first entry, what it describes (D30): :meth:`qjournal.metadata.JournalMetadata.to_dict`."""
    len_short: int = 0
    """Bytes a raw image's last block lacks (its file ends inside it), else 0: that block is counted once, in
    ``short_row``, and :meth:`len_of` counts its bytes as the file holds them."""
    short_row: str | None = None
    """The row (``zero``, ``unique``, ``duplicate``) a raw image's short last block is counted in, or None."""

    def len_of(self, row: str) -> int:
        """The bytes of a row of blocks (``zero``, ``unique``, ``allocated``...): its blocks times the block size, less
        what a raw image's short last block lacks when it is one of them."""
        n = getattr(self, f"num_{row}")
        short = self.len_short if row == self.short_row or (self.short_row and row in ("allocated", "guest_clusters")) else 0
        return int(n) * self.block_size - short

    @property
    def num_referenced(self) -> int:
        """Non-zero blocks (``zdb -S``'s referenced): unique, duplicate and shared."""
        return self.num_unique + self.num_duplicate + self.num_shared

    @property
    def len_saved(self) -> int:
        """Bytes a deduplication would save: every duplicate block stored once, with its first (shared ones already are)."""
        return self.len_of("duplicate")

    @property
    def dedup_ratio(self) -> float:
        """Non-zero blocks per distinct storage a deduplication would leave: (unique + duplicate) / unique; 1.0 with no data."""
        return (self.num_unique + self.num_duplicate) / self.num_unique if self.num_unique else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every field, and ``len_saved``, ``dedup_ratio``, ``num_referenced``."""
        d = asdict(self)
        d.update(len_saved=self.len_saved, dedup_ratio=self.dedup_ratio, num_referenced=self.num_referenced)
        return d


_DATA, _COMPRESSED = int(Status.DATA), int(Status.COMPRESSED)
_STORED = int(STORED)


class _Hashed(NamedTuple):
    """What a worker sends back for a batch: counts, and a row per block with a non-zero digest."""

    num_zero: int
    """Blocks that read as zeros: zero clusters, and stored blocks whose bytes are all zero."""
    num_compressed: int
    num_partial: int
    len_read: int
    """Guest bytes of stored blocks read (a raw file's short last block counted as it is)."""
    rows: list[tuple[bytes, int, int]]
    """(digest, host offset or -1 when the block is not journaled, guest offset), in guest order."""
    weights: dict[int, int]
    """Row number -> how many blocks the row stands for, where not 1: a data cluster several guest clusters use,
    read and hashed at its first use only (D31); the counts above are weighted already."""


def _hash_batch(fill: Callable[[Blocks], Blocks], batch: Blocks, *, raw: bool) -> _Hashed:
    """Hash a batch's stored blocks: see :class:`_Hashed` (zero blocks are found with one memcmp and not hashed)."""
    if batch.needs_read:  # else every block is zero or unallocated: nothing to read
        batch = fill(batch)
    view = batch.data if batch.data is not None else memoryview(bytearray())
    buf, size, disk = view.obj, batch.block_size, batch.len_virtual_disk
    assert isinstance(buf, bytearray)
    zeros = bytes(size)
    num_zero = num_compressed = num_partial = len_read = 0
    hosts: list[int] = []
    offsets: list[int] = []
    starts: list[int] = []
    tail: tuple[int, int, int] | None = None  # a raw image's last, shorter block: hashed as the file holds it (D25)
    status, ofs_host, weights = batch.status, batch.ofs_host, batch.weights
    row_weights: dict[int, int] = {}
    for i, ofs in enumerate(batch.offsets()):
        st = status[i]
        if not st & _STORED:
            continue  # counted as the rest, with the runs the reader leaves out
        w = 1 if weights is None else weights.get(i, 1)  # > 1: the first use of a shared data cluster (D31)
        host = ofs if raw else ofs_host[i]
        if raw or (st == _DATA and host >= 0):
            pass
        elif st & _COMPRESSED:
            num_compressed += 1
            host = -1
        elif st & _DATA:
            num_partial += 1
            host = -1
        else:
            num_zero += 1
            continue
        n = min(size, disk - ofs) if raw else size
        len_read += n
        if buf.startswith(zeros[:n], i * size):
            num_zero += w
        elif n < size:
            tail = (i * size, host, ofs)
        else:
            if w != 1:
                row_weights[len(starts)] = w
            starts.append(i * size)
            hosts.append(host)
            offsets.append(ofs)
    digests = block_digests(view, starts, size)
    rows = list(zip(digests, hosts, offsets, strict=True))
    if tail is not None:
        rows.append((block_digests(view, [tail[0]], disk - tail[2])[0], tail[1], tail[2]))
    return _Hashed(num_zero, num_compressed, num_partial, len_read, rows, row_weights)


def _holds_bytes(target: Source, offset: int) -> bool:
    """True when ``target`` holds bytes at ``offset``: a journal there would replace them (an empty file holds none)."""
    if isinstance(target, (str, os.PathLike)):
        try:
            st = os.stat(target)
        except (OSError, ValueError):  # missing (a dangling link too: create makes its target), or a bad path
            return False
        return not (stat.S_ISREG(st.st_mode) and st.st_size <= offset)
    if isinstance(target, (bytes, bytearray, memoryview)):
        return len(target) > offset
    try:
        return bool(os.fstat(target.fileno()).st_size > offset)
    except (AttributeError, OSError, ValueError):
        return True


def index(
    image: str | os.PathLike[str] | Image,
    journal: Source,
    *,
    block_size: int | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    jobs: int | None = None,
    journal_offset: int = 0,
    durable: bool = True,
    unaligned_offset: bool = False,
    force_share: bool = False,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    spill_dir: str | os.PathLike[str] | None = None,
) -> IndexReport:
    """Index ``image`` into a new journal ``journal``: one SHA-256 HASH entry per distinct data block (D8, D25, D27).

    ``image`` is a path (opened by :func:`qjournal.image.open_image`: qcow2, or raw
    in blocks of ``block_size``) or an open :class:`Image`. ``block_size``: a
    power of two from 512 bytes up to a qcow2 image's cluster size (default:
    the cluster size; a raw image's own block size); a larger one is refused,
    since a block of several clusters has no host offset of its own. The journal is made by
    :func:`qjournal.create` at ``journal_offset``, sized exactly for the entries,
    once the whole image is hashed; a target that already holds bytes there is
    refused unless ``force``, and then it is made as ``create(..., force=True)``
    and :func:`qjournal.pack` make an existing area: it must hold a journal and
    nothing but 0xFF past its tail (D24), keeps its size, and is refused
    before anything is written when the entries do not fit. The image itself
    is never written and is refused as the journal. ``progress(n)`` is called
    with the guest bytes walked so far (up to ``len_virtual_disk``); ``jobs``
    hashing threads (default: one per core). A ``journal_offset`` off the
    512-byte grid is refused unless ``unaligned_offset=True`` (see
    :func:`qjournal.create`). A new journal file appears under its name only
    once complete; a journal path that cannot be written (a missing directory,
    /dev/null) is refused before the image is read. An image a running QEMU
    writes is refused unless ``force_share`` (D29). Memory: what index knows
    of each digest spills to a temporary SQLite database past ``memory_limit``
    bytes (in ``spill_dir``, default the system's temporary folder).
    """
    owned = not isinstance(image, Image)
    img = open_image(image, block_size=block_size or DEFAULT_BLOCK_SIZE, force_share=force_share) if not isinstance(image, Image) else image
    try:
        size = img.cluster_size if block_size is None else check_block_size(block_size)
        if img.format == "qcow2" and size > img.cluster_size:
            raise JournalArgumentError(
                f"a block of {size} bytes is larger than the image's {img.cluster_size}-byte clusters: it has no host "
                f"offset of its own to journal; ${{block_size}} is at most the cluster size (qjournal analyze "
                f"reports any block size)",
                source=img.name,
            )
        if isinstance(journal, (str, os.PathLike)) and is_same_file(journal, img.fileno()):
            raise JournalArgumentError("the journal is the image itself: index never writes the image", source=img.name)
        if isinstance(journal, (str, os.PathLike)):  # what can be refused is refused before the first byte is hashed
            _check_journal_path(journal)
        dest = None
        if _holds_bytes(journal, journal_offset):
            if not force:
                raise JournalArgumentError(
                    f"the journal already exists (it holds bytes at offset {journal_offset:#x}): index makes a new "
                    f"journal and does not replace one without ${{force}}",
                    source=describe(journal),
                )
            dest = Destination(journal, num_clusters=None, offset=journal_offset, length=None, force=True, durable=durable,
                               refusal=_refusal(journal), unaligned_offset=unaligned_offset)
        meta = JournalMetadata.of_image(img, size, DEFAULT_HASH)  # the journal's first entry (D30)
        seen: _Seen | None = None
        try:
            report, seen = _scan(img, size, jobs, progress, memory_limit=memory_limit, spill_dir=spill_dir)
            num_entries = seen.num_entries
            dest, writer = begin_journal(
                lambda n: _make(journal, dest, num_clusters=n, offset=journal_offset, durable=durable,
                                num_entries=num_entries, unaligned_offset=unaligned_offset),
                meta, num_entries, _LEN_ENTRY,
            )
        except BaseException:
            if seen is not None:
                seen.close()
            if dest is not None:
                dest.abandon()
            raise
        try:
            with writer:
                writer.append_encoded(seen.entries())  # one batch (D20), streamed from the spool
                dest.publish()  # a new journal file is named only now, complete
                return IndexReport(image=img.name, journal=writer.name, num_clusters=writer.num_clusters,
                                   metadata=meta.to_dict(), **report, **_short_block(img, size, seen.short_first))
        finally:
            seen.close()
            dest.discard()
    finally:
        if owned:
            img.close()


def _refusal(journal: Source) -> Callable[[str], JournalArgumentError]:
    """Index's words for a target it may not replace (D24, checked once, by :func:`qjournal.durable.check_whole_rest`)."""
    return lambda why: JournalArgumentError(
        f"refusing to replace it with ${{force}}: {why}; index replaces only a journal with nothing but 0xFF past "
        f"its tail, so that a wrong path never costs a file's data; nothing was written",
        source=describe(journal),
    )


def _check_journal_path(journal: str | os.PathLike[str]) -> None:
    """Refuse a journal path that cannot be written (a missing directory, /dev/null, no room for a cluster)."""
    name = describe(journal)
    if check_target(journal, name) is not None:
        return
    folder = os.path.dirname(os.path.abspath(journal))
    if not os.access(folder, os.W_OK):
        raise JournalIOError(f"cannot create a file in {folder}: permission denied; nothing was read", source=name)
    try:
        st = os.statvfs(folder)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < LEN_CLUSTER:
        raise JournalIOError(
            f"the file system of {folder} has {st.f_bavail * st.f_frsize} bytes free, less than one journal cluster; "
            "nothing was read",
            source=name,
        )


def _make(
    journal: Source, dest: Destination | None, *, num_clusters: int, offset: int, durable: bool, num_entries: int,
    unaligned_offset: bool,
) -> Destination:
    """Where the journal goes: a new area of ``num_clusters`` (a new file named once complete), or ``dest`` if the entries fit."""
    if dest is None:
        return Destination(journal, num_clusters=num_clusters, offset=offset, length=None, force=False, durable=durable,
                           what="index", publish_later=True, unaligned_offset=unaligned_offset)
    if num_clusters * LEN_CLUSTER > dest.len_area:
        raise JournalFullError(
            f"journal full: the {num_entries} entries of the index need {num_clusters} clusters and the existing "
            f"journal has {dest.len_area // LEN_CLUSTER} (it keeps its size); nothing was written: remove it, and "
            f"index makes a journal of the exact size",
            source=dest.name,
        )
    return dest


class _Seen:
    """Every digest index met, in bounded memory: its references, and its journal entry if it has one.

    A :class:`~qjournal.dedup_map.DigestMap` value per digest, ``entry << 32 |
    references`` (``entry``: the number of its HASH entry from 1, 0 for none;
    references past 2**32 - 1 go on in a dict of their own), spilling to SQLite
    past ``memory_limit``; the entries, in order of first sight, spooled to a
    temporary file (encoded: 50 bytes each). A host cluster the image maps
    more than once (refcount > 1) is read at its first use only, and its later
    uses counted there as *shared* (the reader's weights, D31).
    """

    def __init__(self, memory_limit: int, spill_dir: str | os.PathLike[str] | None, source: str) -> None:
        self.map = DigestMap(memory_limit=memory_limit, spill_dir=spill_dir, source=source)
        self.more: dict[bytes, int] = {}
        self.spool = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115 - closed by close()
        self.num_entries = 0
        self.short_first: bool | None = None
        """A raw image's short last block: True when it was its digest's first block, False if not, None: not hashed."""

    def entries(self) -> Iterator[bytes]:
        """The HASH entries' bytes, in order of first sight."""
        f = self.spool
        f.flush()
        f.seek(0)
        while raw := f.read(_LEN_ENTRY * 4096):
            yield from (raw[i : i + _LEN_ENTRY] for i in range(0, len(raw), _LEN_ENTRY))

    def references(self) -> Iterator[int]:
        """How many non-zero blocks reference each digest."""
        more = self.more
        for digest, value in self.map.items():
            yield (value & _REFS) + more.get(digest, 0)

    def close(self) -> None:
        self.map.close()
        self.spool.close()


_REFS = (1 << 32) - 1
"""The references in a :class:`_Seen` value (its low 32 bits)."""


def _scan(image: Image, size: int, jobs: int | None, progress: Callable[[int], None] | None, *,
          memory_limit: int, spill_dir: str | os.PathLike[str] | None) -> tuple[dict[str, Any], _Seen]:
    """Hash every block in guest order: the report's counts and what was seen (the entries, in order of first sight)."""
    workers = resolve_jobs(jobs, "hashing threads")
    raw = image.format == "raw"
    counts = dict.fromkeys(("unallocated", "zero", "unique", "duplicate", "shared", "compressed", "partial", "allocated"), 0)
    len_read = 0
    allocated = _allocated_blocks(image, size)
    seen = _Seen(memory_limit, spill_dir, image.name)
    spool_write, more = seen.spool.write, seen.more
    rest = image.len_virtual_disk % size
    short_ofs = image.len_virtual_disk - rest if raw and rest else -1  # a raw file's short last block (D27)

    def take(end: int, hashed: _Hashed) -> None:
        nonlocal len_read
        counts["zero"] += hashed.num_zero
        counts["compressed"] += hashed.num_compressed
        counts["partial"] += hashed.num_partial
        len_read += hashed.len_read
        unique = duplicate = shared = 0
        dmap = seen.map
        known = dmap.prefetch([row[0] for row in hashed.rows]) if dmap.is_spilled else {}
        mem, full, num_entries, weights = dmap.mapping, _REFS, seen.num_entries, hashed.weights
        for k, (digest, host, ofs) in enumerate(hashed.rows):
            value = mem.get(digest)
            if value is None:
                value = known.get(digest, 0)
            if value & full == full:  # 2**32 - 1 references: the rest are counted beside
                more[digest] = more.get(digest, 0) + 1
                value -= 1
            if host >= 0 and value < full:  # no entry yet: the value's high bits are 0
                spool_write(encode_hash(digest, host // LEN_SECTOR, ofs // LEN_SECTOR))  # index's own: checked
                num_entries += 1
                value |= num_entries << 32
            if value & full:
                duplicate += 1
            else:
                unique += 1
            if ofs == short_ofs:
                seen.short_first = not value & full
            value += 1
            if weights and (w := weights.get(k, 1)) > 1:  # a host cluster w guest clusters use, read at the first (D31):
                shared += w - 1  # the later uses are shared, not duplicates, and reference the digest too
                room = min(w - 1, full - (value & full))
                if room < w - 1:
                    more[digest] = more.get(digest, 0) + w - 1 - room
                value += room
            mem[digest] = value
        seen.num_entries = num_entries
        dmap.spill_if_full()
        counts["unique"] += unique
        counts["duplicate"] += duplicate
        counts["shared"] += shared
        if progress is not None:
            progress(min(end, image.len_virtual_disk))

    try:
        not_read = _walk(image, size, raw, workers, take)
        if progress is not None:
            progress(image.len_virtual_disk)
        rows: dict[int, int] = {}
        for n in seen.references():
            k = (n - 1).bit_length()
            rows[k] = rows.get(k, 0) + 1
    except BaseException:
        seen.close()
        raise
    num_blocks = -(-image.len_virtual_disk // size)
    histogram = {histogram_label(1 << k if k else 1): rows.get(k, 0) for k in range(max(rows) + 1)} if rows else {}
    report = {
        "format": image.format,
        "block_size": size,
        "len_virtual_disk": image.len_virtual_disk,
        "num_guest_clusters": num_blocks,
        "num_allocated": allocated,
        "num_unallocated": num_blocks - sum(counts[k] for k in ("zero", "unique", "duplicate", "shared")),
        "num_zero": counts["zero"],
        "num_compressed": counts["compressed"],
        "num_unique": counts["unique"],
        "num_duplicate": counts["duplicate"],
        "num_shared": counts["shared"],
        "num_partial": counts["partial"],
        "num_entries": seen.num_entries,
        "len_read": len_read,
        "histogram": histogram,
        "not_read": not_read,
        "is_dirty": image.is_dirty,
    }
    return report, seen


def _walk(image: Image, size: int, raw: bool, workers: int, take: Callable[[int, _Hashed], None]) -> dict[str, object]:
    """Every batch of the guest disk hashed on ``workers`` and given to ``take`` in guest order; what was not read."""
    with GuestReader(image) as reader:
        # runs of unallocated blocks are left out (an empty 1 TiB disk is no batch): counted below as the rest
        for end, hashed in map_batches(reader, size, functools.partial(_hash_batch, reader.fill, raw=raw), jobs=workers,
                                       once=True):
            take(end, hashed)
        return reader.not_read.to_dict()


def _short_block(image: Image, size: int, short_first: bool | None) -> dict[str, Any]:
    """A raw image whose file ends inside its last block: the bytes that block lacks, and the row it was counted in
    (zero, or unique when it is its digest's first block, else duplicate: a raw block shares no host offset).
    ``short_first``: what the walk saw of that block (None: it was not hashed, its bytes being zeros)."""
    rest = image.len_virtual_disk % size
    if image.format != "raw" or not rest:
        return {}
    row = "zero" if short_first is None else "unique" if short_first else "duplicate"
    return {"len_short": size - rest, "short_row": row}


def _allocated_blocks(image: Image, size: int) -> int:
    """Blocks with storage in the image, as ``qemu-img check`` counts allocated clusters: data (a block with one allocated
    subcluster, too), compressed, and zero with a preallocated host cluster."""
    if image.format == "raw":
        return -(-image.len_virtual_disk // size)
    total, per_cluster = 0, image.cluster_size // size
    runs = image.checked_runs() if isinstance(image, Qcow2Image) else image._runs()
    for run in runs:  # the mapping checked on the way (D29): no cluster is read before it is
        if run.sub is not None:  # a partly allocated cluster: the blocks holding an allocated subcluster
            alloc, bits = run.sub[0], max(1, size * 32 // image.cluster_size)
            blocks_per_bit = max(1, image.cluster_size // 32 // size)
            total += sum(blocks_per_bit for j in range(0, 32, bits) if alloc >> j & ((1 << bits) - 1))
        elif run.kind is Kind.DATA or run.kind is Kind.COMPRESSED or (run.kind is Kind.ZERO and run.ofs_host is not None):
            total += run.num * per_cluster
    return total



hash_batch = _hash_batch
"""What index makes of a batch of blocks, for verify --all to read an image as index does (one home for which
blocks are journaled): the counts, and a row (digest, host offset or -1 when not journaled, guest offset) per block
with a non-zero digest."""
