"""Deduplicating an image: a new qcow2 v3 image in which every distinct non-zero cluster is stored once.

Strategy. Two passes over the source's guest view (:class:`qjournal.guest.GuestReader`,
through :class:`qjournal.dedup_source.SourceImage`: data, zero, compressed
clusters decompressed, extended-L2 subclusters, raw holes), then the
metadata, then one atomic commit:

1. Scan. The reader gives the guest disk in batches of target clusters (its
   own cluster size or any other); threads hash (SHA-256) every cluster that
   holds bytes of the image's own, in guest order. The caller's thread gives
   each new digest the next host data cluster (so data clusters lie in guest
   order of first occurrence), counts its references, and spools one code
   per guest cluster to a temporary file: the data cluster's number,
   :data:`ZERO` or :data:`UNALLOCATED`. The digest map (digest -> data
   cluster, :class:`qjournal.dedup_map.DigestMap`) lives in a dict up to
   ``memory_limit`` and then spills to SQLite, as :class:`qjournal.live.LiveIndex`
   does; the refcounts live in a file-backed array. A content referenced
   :data:`~qjournal.qcow2_writer.MAX_REFCOUNT` times gets a second copy
   (16-bit refcounts).
2. Layout: :class:`qjournal.qcow2_writer.Layout` from the counts.
3. Copy. The spool names each cluster's first occurrence (its code is then
   the next number): those guest ranges are read again and written, on the
   threads, to their places.
4. Metadata from the spool: L2 tables (COPIED exactly when a refcount is 1),
   refcounts, L1, the header last.
5. Commit: the target was written into an unnamed temporary file (``O_TMPFILE``)
   in TARGET's directory (else a named one, removed on any error); it is
   fsynced, linked under its name (never replacing a file that appeared
   meanwhile), and the directory fsynced. The journal (one HASH entry per
   distinct data cluster, what ``qjournal index TARGET`` writes) is made by
   :func:`qjournal.create` under a temporary name and linked into place the
   same way, after the target.

The source is opened read-only and never written. Zero clusters: a target
cluster that reads as zeros is a zero cluster (the v3 zero flag); without a
backing file an L2 table that would map no data is left out (its clusters
read as zeros all the same, docs/format.md D28). Unallocated stays
unallocated; with a backing file a target cluster mixing unallocated bytes
with others cannot be written (its unallocated bytes would need the backing
file's) and is refused.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, TypeVar

from qjournal.area import is_same_file
from qjournal.dedup_map import DigestMap
from qjournal.dedup_source import SourceImage, UnsupportedSourceError
from qjournal.durable import NewFile, sync_dir
from qjournal.entries import HashEntry
from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.format import LEN_HASH_OVERHEAD, LEN_SHA256_DIGEST
from qjournal.guest import LEN_BATCH, Blocks, Span, Status
from qjournal.hashing import DEFAULT_HASH
from qjournal.image import DEFAULT_BLOCK_SIZE, LEN_SECTOR, check_block_size
from qjournal.making import Destination
from qjournal.metadata import JournalMetadata, begin_journal
from qjournal.parallel import ordered_threads, resolve_jobs
from qjournal.qcow2_writer import (
    L2_ENTRY_UNALLOCATED,
    L2_ENTRY_ZERO,
    MAX_REFCOUNT,
    Layout,
    Qcow2Writer,
    header_cluster,
    l2_entry,
)
from qjournal.writer import JournalWriter

__all__ = ["UNALLOCATED", "ZERO", "DedupReport", "dedup"]

UNALLOCATED = -1
"""The spool's code of a target cluster with no storage."""
ZERO = -2
"""The spool's code of a target cluster that reads as zeros."""
_SPOOL_READ = 4096
"""Spooled journal entries read at a time."""
LEN_WINDOW = 4 << 20
"""Guest bytes one copy task reads and writes at most (whole target clusters; at least one)."""
DEFAULT_MEMORY_LIMIT = 32 << 20
"""Bytes the digest map may take in memory before it spills to SQLite: about 220,000 distinct clusters. With
SQLite's cache, the threads' buffers and Python itself, a dedup of 1,048,576 distinct clusters peaks at about
105 to 130 MiB (benchmarks/bench_dedup.py)."""
_ENTRY = struct.Struct("=32sQQ")
"""A spooled journal entry: digest, data cluster number, guest offset."""
_LEN_JOURNAL_ENTRY = LEN_HASH_OVERHEAD + LEN_SHA256_DIGEST
_ZERO, _UNALLOCATED = int(Status.ZERO), int(Status.UNALLOCATED)
_STORED_BYTES = int(Status.DATA | Status.COMPRESSED)
"""A block with any of these holds bytes of the image's own, which may not be zeros: it is hashed."""
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DedupReport:
    """What :func:`dedup` wrote, in the analysis vocabulary; every guest cluster counted once.

    ``num_guest_clusters`` = ``num_unallocated`` + ``num_zero`` + ``num_data``;
    of the ``num_data`` clusters (non-zero contents), ``num_distinct`` have
    distinct contents; ``num_stored`` host data clusters hold them (more than
    ``num_distinct`` only when a content is shared more than 65,535 times);
    ``num_duplicate`` = ``num_data`` - ``num_stored`` guest clusters use a
    stored cluster that an earlier one brought; ``num_shared`` guest clusters
    point at a cluster that another one also uses.
    """

    source: str
    target: str
    journal: str | None
    format: str
    """The source's format: ``"qcow2"`` or ``"raw"``."""
    cluster_size: int
    """The target's cluster size (the clusters counted)."""
    source_cluster_size: int
    len_virtual_disk: int
    num_guest_clusters: int
    num_unallocated: int
    num_zero: int
    num_data: int
    num_distinct: int
    num_stored: int
    num_duplicate: int
    num_shared: int
    len_source: int
    """The source file's size in bytes."""
    len_target: int
    """The target file's size in bytes."""
    len_copy: int
    """What a plain copy storing every non-zero cluster once per guest cluster takes (``qemu-img convert -O qcow2``
    of an image without backing file), in this layout."""
    backing_file_name: str | None = None
    backing_format: str | None = None
    dropped_bitmaps: tuple[str, ...] = field(default_factory=tuple)

    @property
    def len_saved(self) -> int:
        """Bytes a plain copy would store and the target does not: the duplicates (``num_duplicate`` x cluster size)."""
        return self.num_duplicate * self.cluster_size

    @property
    def dedup_ratio(self) -> float:
        """Non-zero guest clusters per stored cluster (``zdb -S``'s ratio); 1.0 when there are none."""
        return self.num_data / self.num_stored if self.num_stored else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every field, and ``len_saved``, ``dedup_ratio``."""
        d = asdict(self)
        d.update(dropped_bitmaps=list(self.dropped_bitmaps), len_saved=self.len_saved, dedup_ratio=self.dedup_ratio)
        return d


# -- the scan ---------------------------------------------------------------------------------------------------


class _Scan:
    """Pass 1's results: the spool of codes, the refcounts, the spooled journal entries, the counts."""

    def __init__(self, num_guest_clusters: int, spill_dir: str | None, memory_limit: int) -> None:
        self.codes: BinaryIO = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115 - closed by close()
        self.entries: BinaryIO = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115
        self._counts_file: BinaryIO = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115
        self._counts_file.truncate(2 * max(1, num_guest_clusters))
        self._mmap = mmap.mmap(self._counts_file.fileno(), 2 * max(1, num_guest_clusters))
        self.refcounts = memoryview(self._mmap).cast("H")
        self.map = DigestMap(memory_limit=memory_limit, spill_dir=spill_dir)
        self.num_stored = self.num_distinct = self.num_zero = self.num_unallocated = self.num_data = 0

    def close(self) -> None:
        self.refcounts.release()
        self._mmap.close()
        for f in (self.codes, self.entries, self._counts_file):
            f.close()
        self.map.close()


def _scan(source: SourceImage, cs: int, jobs: int, scan: _Scan, progress: Callable[[int], None] | None) -> None:
    """Pass 1: every target cluster's code, in guest order, to the spool; digests mapped, references counted."""
    has_backing = source.backing_file_name is not None
    zeros = bytes(cs)
    sha256 = hashlib.sha256
    disk = source.len_virtual_disk

    local = threading.local()

    def hasher(batch: Blocks) -> Callable[[], list[bytes | None]]:
        reads = source.filler(batch.ofs_guest, batch.spans)  # compressed clusters decoded here, in the reader's thread

        def work() -> list[bytes | None]:
            if getattr(local, "buf", None) is None:  # one buffer per thread, reused: memory stays flat
                local.buf = bytearray(max(LEN_BATCH, cs))
            buf = local.buf
            data = memoryview(buf)[: len(batch) * cs]
            reads(data)
            return [
                None if not st & _STORED_BYTES else b"" if buf.startswith(zeros, i * cs) else sha256(data[i * cs : (i + 1) * cs]).digest()
                for i, st in enumerate(batch.status)
            ]
        return work

    def items() -> Iterator[tuple[Blocks, Callable[[], list[bytes | None] | None]]]:
        for batch in source.reader.blocks(cs, data=False):
            yield batch, hasher(batch) if any(st & _STORED_BYTES for st in batch.status) else _nothing

    refcounts, dmap, write_entry, pack = scan.refcounts, scan.map, scan.entries.write, _ENTRY.pack
    done = 0  # target clusters spooled so far
    for batch, digests in ordered_threads(jobs, items(), name="qjournal-dedup"):
        first = batch.ofs_guest // cs
        _spool_unallocated(scan, first - done)  # whole unallocated clusters the reader left out
        codes = array("q")
        statuses = batch.status
        if digests is None:
            if statuses.count(_ZERO) == len(statuses):
                codes = array("q", [ZERO]) * len(statuses)
            else:
                codes.extend(_code_without_data(st, has_backing, source, batch.ofs_guest + i * cs) for i, st in enumerate(statuses))
        else:
            known = dmap.prefetch([d for d in digests if d])
            for i, d in enumerate(digests):
                st = statuses[i]
                if d is None:
                    codes.append(_code_without_data(st, has_backing, source, batch.ofs_guest + i * cs))
                    continue
                if has_backing and st & _UNALLOCATED:
                    raise _mixed(source, batch.ofs_guest + i * cs)
                if not d:
                    codes.append(ZERO)
                    continue
                idx = known.get(d)
                if idx is None:
                    idx = dmap.get(d)
                if idx is None or refcounts[idx] == MAX_REFCOUNT:
                    if idx is None:
                        write_entry(pack(d, scan.num_stored, batch.ofs_guest + i * cs))
                        scan.num_distinct += 1
                    idx = scan.num_stored
                    scan.num_stored += 1
                    dmap.put(d, idx)
                    known[d] = idx
                refcounts[idx] += 1
                codes.append(idx)
            scan.num_data += len(codes) - codes.count(ZERO) - codes.count(UNALLOCATED)
        scan.num_zero += codes.count(ZERO)
        scan.num_unallocated += codes.count(UNALLOCATED)
        codes.tofile(scan.codes)
        done = first + len(codes)
        if progress is not None:
            progress(min(done * cs, disk))
    _spool_unallocated(scan, -(-disk // cs) - done)
    if progress is not None:
        progress(disk)


def _nothing() -> None:
    """The work of a batch that holds no bytes of the image's own."""


def _spool_unallocated(scan: _Scan, n: int) -> None:
    scan.num_unallocated += n
    for k in range(0, n, 1 << 20):
        (array("q", [UNALLOCATED]) * min(1 << 20, n - k)).tofile(scan.codes)


def _code_without_data(status: int, has_backing: bool, source: SourceImage, ofs_guest: int) -> int:
    """A cluster with no stored bytes: unallocated when nothing of it is stored, else zero (refused: partly so over a backing file)."""
    if status == _UNALLOCATED:
        return UNALLOCATED
    if has_backing and status & _UNALLOCATED:
        raise _mixed(source, ofs_guest)
    return ZERO


def _mixed(source: SourceImage, ofs_guest: int) -> UnsupportedSourceError:
    return UnsupportedSourceError(
        "partly_unallocated",
        f"the target cluster at guest offset {ofs_guest:#x} would hold bytes the source leaves unallocated (they read "
        f"from its backing file) next to bytes it stores: no cluster of the target can say that; keep the source's "
        f"cluster size ({source.cluster_size}) or a smaller one",
        source=source.name,
    )


def _read_codes(f: BinaryIO, n: int) -> array[int]:
    a = array("q")
    a.frombytes(f.read(8 * n))
    if len(a) != n:
        raise JournalIOError(f"the spool of cluster codes ended early ({len(a)} of {n})")
    return a


# -- copy, metadata, commit --------------------------------------------------------------------------------------


def _copy(source: SourceImage, writer: Qcow2Writer, scan: _Scan, jobs: int, progress: Callable[[int], None] | None, *,
          durable: bool) -> None:
    """Pass 2: every data cluster, read at its first occurrence (where its code is the next number), written on the threads."""
    cs = writer.layout.cluster_size
    disk = source.len_virtual_disk
    per_run = max(1, LEN_WINDOW // cs)
    f = scan.codes
    f.seek(0)
    total = -(-disk // cs)
    state = {"next": 0}

    def runs() -> Iterator[tuple[int, int, int]]:
        """(first guest cluster, clusters, first data cluster) of consecutive first occurrences."""
        nxt = 0
        run: list[int] | None = None  # [first guest cluster, count, first data cluster]
        for pos in range(0, total, 1 << 16):
            codes = _read_codes(f, min(1 << 16, total - pos))
            if max(codes) < nxt:  # no first occurrence here (codes only grow by one at a first occurrence)
                continue
            for i, code in enumerate(codes):
                if code != nxt:
                    continue
                g = pos + i
                if run is not None and run[0] + run[1] == g and run[1] < per_run:
                    run[1] += 1
                else:
                    if run is not None:
                        yield run[0], run[1], run[2]
                    run = [g, 1, nxt]
                nxt += 1
        if run is not None:
            yield run[0], run[1], run[2]
        state["next"] = nxt

    fd_src = source.fileno()

    def copier(ofs: int, n: int, idx: int, spans: list[Span]) -> Callable[[], None]:
        decoded = source.decoded(ofs, spans)  # in the reader's thread

        def work() -> None:
            for s in spans:  # every byte written, zeros too: a hole in a data cluster would show in qemu-img map
                if s.status is Status.DATA:
                    assert s.ofs_host is not None
                    writer.copy_data(idx, s.ofs_guest - ofs, fd_src, s.ofs_host, s.length)
                elif s.status is not Status.COMPRESSED:
                    writer.write_zeros(idx, s.ofs_guest - ofs, s.length)
            for i, raw in decoded:
                writer.write_data_at(idx, i, raw)
            tail = ofs + n * cs - disk  # the last cluster past the disk's end
            if tail > 0:
                writer.write_zeros(idx, n * cs - tail, tail)
            if durable:
                writer.start_writeback(idx, n)
        return work

    def items() -> Iterator[tuple[int, Callable[[], None]]]:
        for g, n, idx in runs():
            ofs = g * cs
            end = min(ofs + n * cs, disk)
            yield end, copier(ofs, n, idx, list(source.reader.spans(ofs, end)))

    for end, _ in ordered_threads(jobs, items(), name="qjournal-dedup"):
        if progress is not None:
            progress(disk + end)
    if progress is not None:
        progress(2 * disk)
    if state["next"] != scan.num_stored:
        raise JournalIOError(f"the second walk of the source found {state['next']} of its {scan.num_stored} data clusters: "
                             f"did the source change while it was read?", source=source.name)


def _l2_spans(scan: _Scan, lay: Layout, has_backing: bool) -> Iterator[tuple[int, array[int], bool, bool]]:
    """Per L1 entry: (index, its codes, whether it needs an L2 table, whether it maps data)."""
    f = scan.codes
    f.seek(0)
    n2, total = lay.num_l2_entries, lay.num_guest_clusters
    for i in range(lay.num_l1_entries):
        chunk = _read_codes(f, min(n2, total - i * n2))
        has_data = max(chunk) >= 0
        yield i, chunk, has_data or (has_backing and ZERO in chunk), has_data


def _write_metadata(writer: Qcow2Writer, scan: _Scan, source: SourceImage) -> None:
    """L2 tables, refcounts, L1 table, and the header last."""
    lay = writer.layout
    has_backing = source.backing_file_name is not None
    refcounts, ofs_data = scan.refcounts, lay.ofs_data
    l1 = array("q", [-1]) * lay.num_l1_entries
    k = 0
    for i, chunk, needed, _ in _l2_spans(scan, lay, has_backing):
        if not needed:
            continue
        writer.write_l2_table(k, array("Q", (
            l2_entry(ofs_data + c * lay.cluster_size, refcounts[c]) if c >= 0 else L2_ENTRY_ZERO if c == ZERO else L2_ENTRY_UNALLOCATED
            for c in chunk
        )))
        l1[i] = k
        k += 1
    writer.write_refcounts(refcounts[: scan.num_stored])
    writer.write_l1_table(l1)
    writer.write_header(source.backing_file_name, source.backing_format)


def _write_journal(path: str, scan: _Scan, lay: Layout, durable: bool) -> tuple[Destination, JournalWriter]:
    """The target's journal, what ``qjournal index TARGET`` writes, in a new file not yet named (index's way,
    :class:`~qjournal.making.Destination` with ``publish_later``): the destination and its open writer."""
    # Its batches need no barriers of their own: the journal has no name yet, and it is fsynced once, whole,
    # before it gets one (the bytes are index's all the same, its first entry the metadata of D30 included).
    dest, writer = begin_journal(
        lambda n: Destination(path, num_clusters=n, offset=0, length=None, force=False, durable=False, what="dedup",
                              publish_later=True),
        JournalMetadata(lay.cluster_size, DEFAULT_HASH, "qcow2", lay.len_virtual_disk, lay.cluster_size),
        scan.num_distinct, _LEN_JOURNAL_ENTRY,
    )
    try:
        f = scan.entries
        f.flush()
        f.seek(0)
        writer.append_stream(  # one batch (D20), streamed from the spool as index streams its own
            HashEntry(d, lay.ofs_data_cluster(idx) // LEN_SECTOR, ofs_guest // LEN_SECTOR)
            for raw in iter(lambda: f.read(_ENTRY.size * _SPOOL_READ), b"")
            for d, idx, ofs_guest in _ENTRY.iter_unpack(raw)
        )
        if durable and dest.new_file is not None:
            os.fsync(dest.new_file.file.fileno())
    except BaseException:
        writer.close()
        dest.discard()
        raise
    return dest, writer


def _check_new(path: str, source: SourceImage, what: str) -> None:
    """Refuse a ``path`` that is the source (through links: device and inode) or exists."""
    if is_same_file(path, source.fileno()):
        raise JournalArgumentError(f"the {what} is the source image itself: dedup never writes its source", source=path)
    if os.path.lexists(path):
        raise JournalArgumentError(
            f"the {what} exists: dedup writes a new file and never replaces one; remove it or choose another name", source=path)


def dedup(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    cluster_size: int | None = None,
    journal: str | os.PathLike[str] | bool = True,
    drop_bitmaps: bool = False,
    force_share: bool = False,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    spill_dir: str | None = None,
    durable: bool = True,
) -> DedupReport:
    """Write ``target``, a qcow2 v3 image of ``source``'s guest disk in which every distinct non-zero cluster is stored once.

    ``source`` (qcow2 or raw) is read only. ``cluster_size``: the target's
    (default: the source's; 64 KiB for raw). ``journal``: True writes
    ``TARGET.qjournal``, a path writes there, False none. ``drop_bitmaps``
    lets a source with persistent bitmaps through (the target has none).
    A source that another process (a running QEMU) holds open for writing is
    refused, as the image commands refuse it (:func:`qjournal.qemulock.lock_for_reading`),
    unless ``force_share``.
    ``progress(n)`` gets the bytes walked, up to twice the virtual disk (the
    scan, then the copy). The digest map takes about ``memory_limit`` bytes,
    then spills to SQLite in ``spill_dir`` (default: the system's temporary
    folder). Refused, with nothing written: a target or journal that exists
    or is the source, snapshots, bitmaps (unless ``drop_bitmaps``), and what
    :func:`qjournal.image.open_image` refuses.
    """
    target = os.fspath(target)
    journal_path = None if journal is False else target + ".qjournal" if journal is True else os.fspath(journal)
    if cluster_size is not None:
        check_block_size(cluster_size)
    workers = resolve_jobs(jobs, "threads")
    src = SourceImage(source, block_size=cluster_size or DEFAULT_BLOCK_SIZE, force_share=force_share)  # QEMU's locks
    try:
        _check_new(target, src, "target")
        if journal_path is not None:
            _check_new(journal_path, src, "journal")
            if os.path.abspath(journal_path) == os.path.abspath(target):
                raise JournalArgumentError("the journal and the target are one path", source=target)
        src.refuse_snapshots()
        if not drop_bitmaps:
            src.refuse_bitmaps()
        cs = cluster_size or src.cluster_size
        header_cluster(Layout(cs, src.len_virtual_disk, 0, 0), src.backing_file_name, src.backing_format)  # before any work
        return _dedup(src, target, journal_path, cs=cs, workers=workers, progress=progress, memory_limit=memory_limit,
                      spill_dir=spill_dir, durable=durable, drop_bitmaps=drop_bitmaps)
    finally:
        src.close()


def _dedup(
    src: SourceImage, target: str, journal_path: str | None, *, cs: int, workers: int, progress: Callable[[int], None] | None,
    memory_limit: int, spill_dir: str | None, durable: bool, drop_bitmaps: bool,
) -> DedupReport:
    num_guest = -(-src.len_virtual_disk // cs)
    staged = NewFile(target, target)
    try:
        scan = _Scan(num_guest, spill_dir, memory_limit)
    except BaseException:
        staged.file.close()
        staged.discard()
        raise
    journal: tuple[Destination, JournalWriter] | None = None
    try:
        _scan(src, cs, workers, scan, progress)
        has_backing = src.backing_file_name is not None
        probe = Layout(cs, src.len_virtual_disk, 0, 0)
        num_l2 = num_l2_data = 0
        for _, _, needed, has_data in _l2_spans(scan, probe, has_backing):
            num_l2 += needed
            num_l2_data += has_data
        lay = Layout(cs, src.len_virtual_disk, num_l2, scan.num_stored)
        writer = Qcow2Writer(staged.file.fileno(), lay, target)
        _copy(src, writer, scan, workers, progress, durable=durable)
        _write_metadata(writer, scan, src)
        if journal_path is not None:
            journal = _write_journal(journal_path, scan, lay, durable)
        if durable:
            os.fsync(staged.file.fileno())
        staged.link(durable=False)  # the directory is synced below, once for both names
        if journal is not None:
            journal[0].publish()  # named once the target is; the folder is synced below
        if durable:
            sync_dir(target)
            if journal_path is not None:
                sync_dir(journal_path)
        return DedupReport(
            source=src.name, target=target, journal=journal_path, format=src.format, cluster_size=cs,
            source_cluster_size=src.cluster_size, len_virtual_disk=src.len_virtual_disk, num_guest_clusters=num_guest,
            num_unallocated=scan.num_unallocated, num_zero=scan.num_zero, num_data=scan.num_data,
            num_distinct=scan.num_distinct, num_stored=scan.num_stored, num_duplicate=scan.num_data - scan.num_stored,
            num_shared=_num_shared(scan), len_source=src.len_file, len_target=lay.len_file,
            len_copy=Layout(cs, src.len_virtual_disk, num_l2_data, scan.num_data).len_file,
            backing_file_name=src.backing_file_name, backing_format=src.backing_format,
            dropped_bitmaps=src.bitmap_names if drop_bitmaps else (),
        )
    finally:
        if journal is not None:
            journal[1].close()
            journal[0].discard()
        staged.file.close()
        staged.discard()
        scan.close()


def _num_shared(scan: _Scan) -> int:
    """Guest clusters pointing at a cluster another one also uses: the references of clusters with refcount >= 2."""
    total = 0
    refs = scan.refcounts
    step = 1 << 20
    for i in range(0, scan.num_stored, step):
        part = array("H", refs[i : min(i + step, scan.num_stored)])
        total += sum(part) - part.count(1)
    return total
