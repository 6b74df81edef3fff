"""Indexing an image: one HASH entry per distinct data cluster, written to a new journal (D8, D25).

Strategy. Walk the image's guest disk in guest order (:meth:`Image.extents`,
the generated qcow2 parser underneath); hand every run of data clusters to
:func:`qjournal.hashing.hash_ranges`, which reads and hashes them on every
core in large positioned reads; take the digests back in guest order. The
first cluster with a digest becomes a HASH entry (``physical_sector`` = host
offset / 512, ``first_logical_sector`` = guest offset / 512, D25); later ones
are duplicates; all-zero clusters are counted, not journaled, and so are
compressed clusters, whose byte offset inside shared sectors no sector can
name. Nothing is written until the whole image is hashed: then the journal is
made as :func:`qjournal.create` makes one, sized exactly to hold the entries
(:func:`qjournal.format.tail_after`, :func:`~qjournal.format.clusters_for`), and
the entries are appended in atomic batches (D20). The report counts every guest
cluster once, like ``zdb -S``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from qjournal.area import Source, describe
from qjournal.entries import HashEntry
from qjournal.errors import CorruptImageError, JournalArgumentError, JournalFullError
from qjournal.format import LEN_CLUSTER, LEN_HASH_OVERHEAD, LEN_SHA256_DIGEST, clusters_for, tail_after
from qjournal.hashing import DEFAULT_HASH, LEN_RUN, ZERO, hash_ranges
from qjournal.image import DEFAULT_BLOCK_SIZE, LEN_SECTOR, Image, Kind, open_image
from qjournal.making import Destination, create
from qjournal.writer import JournalWriter

__all__ = ["BATCH", "IndexReport", "histogram_label", "index"]

BATCH = 4096
"""HASH entries per atomic append (D20): about 200 KiB, three barriers each."""

_LEN_ENTRY = LEN_HASH_OVERHEAD + LEN_SHA256_DIGEST  # every entry index writes: 50 bytes (D8)


def histogram_label(num_refs: int) -> str:
    """The ``zdb -S`` row a digest shared by ``num_refs`` clusters falls in: ``1``, ``2``, ``3-4``, ``5-8``, ``9-16``..."""
    k = (num_refs - 1).bit_length()
    return str(num_refs) if k <= 1 else f"{(1 << (k - 1)) + 1}-{1 << k}"


@dataclass(frozen=True)
class IndexReport:
    """What :func:`index` found and wrote.

    Every guest cluster is counted once, in exactly one of ``num_unallocated``,
    ``num_zero``, ``num_compressed``, ``num_unique`` and ``num_duplicate``:
    ``num_zero`` holds the clusters that read as zeros by their L2 entry and
    the data clusters whose bytes are all zero; ``num_unique`` the data
    clusters whose digest was new (one HASH entry each), ``num_duplicate`` the
    later ones. ``num_allocated`` counts the clusters with storage in the image
    (what ``qemu-img check`` calls allocated): data clusters, compressed ones,
    and zero clusters that keep a preallocated host cluster.
    """

    image: str
    journal: str
    format: str
    """``"qcow2"`` or ``"raw"``."""
    block_size: int
    """The cluster size used: the qcow2 image's own, or a raw image's block size."""
    len_virtual_disk: int
    num_guest_clusters: int
    num_allocated: int
    num_unallocated: int
    num_zero: int
    num_compressed: int
    num_unique: int
    num_duplicate: int
    len_read: int
    """Bytes read and hashed."""
    num_clusters: int
    """Journal clusters of the area written (4096 bytes each)."""
    histogram: dict[str, int] = field(default_factory=dict)
    """Digests by how many data clusters share them, in rows ``1``, ``2``, ``3-4``, ``5-8``... (``zdb -S``'s)."""
    hash_name: str = DEFAULT_HASH

    @property
    def num_entries(self) -> int:
        """HASH entries written: one per unique digest."""
        return self.num_unique

    @property
    def len_saved(self) -> int:
        """Bytes a deduplication would save: every duplicate cluster stored once, with its first."""
        return self.num_duplicate * self.block_size

    @property
    def dedup_ratio(self) -> float:
        """Data clusters per unique digest (``zdb -S``'s dedup ratio); 1.0 when there is no data."""
        return (self.num_unique + self.num_duplicate) / self.num_unique if self.num_unique else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every field, and ``len_saved``, ``dedup_ratio``, ``num_entries``."""
        d = asdict(self)
        d.update(len_saved=self.len_saved, dedup_ratio=self.dedup_ratio, num_entries=self.num_entries)
        return d


class _Census:
    """The counts the walk keeps as it plans the reads."""

    def __init__(self) -> None:
        self.num_allocated = self.num_unallocated = self.num_zero = self.num_compressed = 0
        self.len_read = 0


def _tasks(image: Image, census: _Census) -> Iterator[tuple[list[tuple[int, int, int]], list[tuple[int, int]]]]:
    """The reads of the data clusters, in guest order, about LEN_RUN bytes per task; counts the other clusters.

    A task's tag is ``[(ofs_guest, ofs_host, num_blocks), ...]``, one per host range.
    """
    cs = image.cluster_size
    tags: list[tuple[int, int, int]] = []
    ranges: list[tuple[int, int]] = []
    size = 0
    step = max(cs, LEN_RUN // cs * cs)
    for ext in image.extents():
        n = -(-ext.length // cs)
        if ext.kind is not Kind.DATA:
            if ext.kind is Kind.UNALLOCATED:
                census.num_unallocated += n
            elif ext.kind is Kind.COMPRESSED:
                census.num_compressed += n
                census.num_allocated += n
            else:
                census.num_zero += n
                census.num_allocated += n if ext.ofs_host is not None else 0
            continue
        assert ext.ofs_host is not None
        census.num_allocated += n
        if ext.ofs_host + ext.len_host > image.len_file:
            last = max(ext.ofs_guest, ext.ofs_guest + (image.len_file - ext.ofs_host) // cs * cs)
            raise CorruptImageError(
                "truncated",
                f"the data cluster of guest offset {last:#x} lies at host offset "
                f"{ext.ofs_host + (last - ext.ofs_guest):#x}, past the end of the file ({image.len_file} bytes)",
                ext.ofs_host + (last - ext.ofs_guest), source=image.name,
            )
        for pos in range(0, ext.len_host, step):
            length = min(step, ext.len_host - pos)
            tags.append((ext.ofs_guest + pos, ext.ofs_host + pos, -(-length // cs)))
            ranges.append((ext.ofs_host + pos, length))
            census.len_read += length
            size += length
            if size >= LEN_RUN:
                yield tags, ranges
                tags, ranges, size = [], [], 0
    if ranges:
        yield tags, ranges


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


def _is_the_image(target: Source, image: Image) -> bool:
    if not isinstance(target, (str, os.PathLike)):
        return False
    try:
        a, b = os.stat(target), os.fstat(image.fileno())
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def index(
    image: str | os.PathLike[str] | Image,
    journal: Source,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    jobs: int | None = None,
    journal_offset: int = 0,
    durable: bool = True,
) -> IndexReport:
    """Index ``image`` into a new journal ``journal``: one SHA-256 HASH entry per distinct data cluster (D8, D25).

    ``image`` is a path (opened by :func:`qjournal.image.open_image`: qcow2, or raw
    in blocks of ``block_size``) or an open :class:`Image`. A qcow2 image is
    indexed in its own clusters: a ``block_size`` other than the default and
    the image's cluster size is refused. The journal is made by
    :func:`qjournal.create` at ``journal_offset``, sized exactly for the entries,
    once the whole image is hashed; a target that already holds bytes there is
    refused unless ``force``, and then it is made as ``create(..., force=True)``
    and :func:`qjournal.pack` make an existing area: it must hold a journal and
    nothing but 0xFF past its tail (D24), keeps its size, and is refused
    before anything is written when the entries do not fit. The image itself
    is never written and is refused as the journal. ``progress(n)`` is called
    with the guest bytes walked so far (up to ``len_virtual_disk``); ``jobs``
    hashing threads (default: one per core).
    """
    owned = not isinstance(image, Image)
    img = open_image(image, block_size=block_size) if not isinstance(image, Image) else image
    try:
        if block_size not in (DEFAULT_BLOCK_SIZE, img.cluster_size):
            raise JournalArgumentError(
                f"the {img.format} image is indexed in its own {img.cluster_size}-byte clusters: "
                f"${{block_size}} {block_size} applies to a raw image when it is opened",
                source=img.name,
            )
        if _is_the_image(journal, img):
            raise JournalArgumentError("the journal is the image itself: index never writes the image", source=img.name)
        dest = None
        if _holds_bytes(journal, journal_offset):
            if not force:
                raise JournalArgumentError(
                    f"the journal already exists (it holds bytes at offset {journal_offset:#x}): index makes a new "
                    f"journal and does not replace one without ${{force}}",
                    source=describe(journal),
                )
            dest = Destination(journal, num_clusters=None, offset=journal_offset, length=None, force=True, durable=durable,
                               refusal=_refusal(journal))
        try:
            report, first = _scan(img, jobs, progress)
            num_clusters = clusters_for(tail_after(itertools.repeat(_LEN_ENTRY, len(first))))
            writer = _make(journal, dest, num_clusters=num_clusters, offset=journal_offset, durable=durable, num_entries=len(first))
        except BaseException:
            if dest is not None:
                dest.abandon()
            raise
        with writer:
            items = iter(first.items())
            while batch := [HashEntry(d, p, g) for d, (p, g) in itertools.islice(items, BATCH)]:
                writer.append_many(batch)
            return IndexReport(image=img.name, journal=writer.name, num_clusters=writer.num_clusters, **report)
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


def _make(
    journal: Source, dest: Destination | None, *, num_clusters: int, offset: int, durable: bool, num_entries: int
) -> JournalWriter:
    """The journal's writer: a new area of ``num_clusters``, or the existing area ``dest`` if the entries fit in it."""
    if dest is None:
        return create(journal, num_clusters, offset=offset, durable=durable)
    if num_clusters * LEN_CLUSTER > dest.len_area:
        raise JournalFullError(
            f"journal full: the {num_entries} entries of the index need {num_clusters} clusters and the existing "
            f"journal has {dest.len_area // LEN_CLUSTER} (it keeps its size); nothing was written: remove it, and "
            f"index makes a journal of the exact size",
            source=dest.name,
        )
    return dest.make()


def _scan(image: Image, jobs: int | None, progress: Callable[[int], None] | None) -> tuple[dict[str, Any], dict[bytes, tuple[int, int]]]:
    """Hash every data cluster in guest order: the report's counts and, per new digest, its (physical, logical) sectors."""
    census = _Census()
    first: dict[bytes, tuple[int, int]] = {}  # digest -> (physical_sector, first_logical_sector), in order of first sight
    refs: dict[bytes, int] = {}  # digests seen more than once -> how many clusters share them
    num_zero_data = num_duplicate = 0
    cs = image.cluster_size
    results = hash_ranges(image, _tasks(image, census), len_block=cs, jobs=jobs, detect_zero=True)
    with contextlib.closing(results):  # on an error too, the pool stops before the image is closed
        for tags, digests in results:
            i = 0
            for ofs_guest, ofs_host, num_blocks in tags:
                for k in range(num_blocks):
                    digest = digests[i + k]
                    if digest == ZERO:
                        num_zero_data += 1
                    elif digest not in first:
                        first[digest] = ((ofs_host + k * cs) // LEN_SECTOR, (ofs_guest + k * cs) // LEN_SECTOR)
                    else:
                        refs[digest] = refs.get(digest, 1) + 1
                        num_duplicate += 1
                i += num_blocks
            if progress is not None:
                last = tags[-1]
                progress(min(last[0] + last[2] * cs, image.len_virtual_disk))
    if progress is not None:
        progress(image.len_virtual_disk)
    rows: dict[int, int] = {}
    if len(first) > len(refs):
        rows[0] = len(first) - len(refs)
    for n in refs.values():
        k = (n - 1).bit_length()
        rows[k] = rows.get(k, 0) + 1
    histogram = {histogram_label(1 << k if k else 1): rows.get(k, 0) for k in range(max(rows) + 1)} if rows else {}
    report = {
        "format": image.format,
        "block_size": cs,
        "len_virtual_disk": image.len_virtual_disk,
        "num_guest_clusters": image.num_guest_clusters,
        "num_allocated": census.num_allocated,
        "num_unallocated": census.num_unallocated,
        "num_zero": census.num_zero + num_zero_data,
        "num_compressed": census.num_compressed,
        "num_unique": len(first),
        "num_duplicate": num_duplicate,
        "len_read": census.len_read,
        "histogram": histogram,
    }
    return report, first
