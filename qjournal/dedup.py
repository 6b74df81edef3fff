"""Deduplicating an image: a new qcow2 v3 image in which every distinct non-zero cluster is stored once.

Strategy. Two passes over the source's guest view (:mod:`qjournal.dedup_source`),
then the metadata, then one atomic commit:

1. Scan. The guest disk is cut into windows of whole target clusters; threads
   read each window's DATA pieces and hash (SHA-256) every target cluster that
   holds any of them, in guest order. The caller's thread gives each new
   digest the next host data cluster (so data clusters lie in guest order of
   first occurrence), counts its references, and spools one code per guest
   cluster to a temporary file: the data cluster's number, :data:`ZERO` or
   :data:`UNALLOCATED`. The digest map (digest -> data cluster) lives in a
   dict up to ``memory_limit`` and then spills to SQLite, as
   :class:`qjournal.live.LiveIndex` does; the refcounts live in a file-backed
   array. A cluster referenced :data:`~qjournal.qcow2_writer.MAX_REFCOUNT`
   times gets a second copy (16-bit refcounts).
2. Layout: :class:`qjournal.qcow2_writer.Layout` from the counts.
3. Copy. A second walk reads the windows that hold a cluster's first
   occurrence and writes those clusters, on the threads, to their places.
4. Metadata from the spool: L2 tables (COPIED exactly when a refcount is 1),
   refcounts, L1, header last.
5. Commit: the target was written into an unnamed temporary file (``O_TMPFILE``)
   in TARGET's directory (else a named one, removed on any error); it is
   fsynced, linked under its name (never replacing a file that appeared
   meanwhile), and the directory fsynced. The journal (one HASH entry per
   distinct data cluster, what ``qjournal index TARGET`` writes) is made by
   :func:`qjournal.create` under a temporary name and linked into place the
   same way.

The source is opened read-only and never written. Zero clusters: a target
cluster that reads as zeros is a zero cluster (the v3 zero flag); without a
backing file an L2 table that would map no data is left out (its clusters
read as zeros all the same). Unallocated stays unallocated; with a backing
file a target cluster mixing unallocated bytes with others cannot be written
(its unallocated bytes would need the backing file's) and is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import mmap
import os
import struct
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from qjournal.dedup_map import DigestMap
from qjournal.dedup_source import ImageSource, Piece, Source, UnsupportedSourceError, open_source
from qjournal.entries import HashEntry
from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.format import LEN_HASH_OVERHEAD, LEN_SHA256_DIGEST, clusters_for, tail_after
from qjournal.image import LEN_SECTOR, Kind, check_block_size
from qjournal.index import BATCH
from qjournal.live import DEFAULT_MEMORY_LIMIT
from qjournal.making import create, link_into_place, sync_dir
from qjournal.parallel import resolve_jobs
from qjournal.qcow2_writer import (
    L2_ENTRY_UNALLOCATED,
    L2_ENTRY_ZERO,
    MAX_REFCOUNT,
    Layout,
    Qcow2Writer,
    header_cluster,
    l2_entry,
)

__all__ = ["UNALLOCATED", "ZERO", "DedupReport", "dedup"]

UNALLOCATED = -1
"""The spool's code of a target cluster with no storage."""
ZERO = -2
"""The spool's code of a target cluster that reads as zeros."""
LEN_WINDOW = 4 << 20
"""Guest bytes one thread reads and hashes at a time (whole target clusters; at least one)."""
_ENTRY = struct.Struct("=32sQQ")
"""A spooled journal entry: digest, data cluster number, guest offset."""
_LEN_JOURNAL_ENTRY = LEN_HASH_OVERHEAD + LEN_SHA256_DIGEST
_F_DATA, _F_ZERO, _F_UNALLOCATED = 1, 2, 4


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


# -- windows of the guest disk ---------------------------------------------------------------------------


class _Window:
    """Whole target clusters from ``ofs_guest``: the DATA parts to read and, per cluster, the kinds it holds."""

    __slots__ = ("flags", "length", "ofs_guest", "parts", "runs")

    def __init__(self, ofs_guest: int, length: int, num: int) -> None:
        self.ofs_guest = ofs_guest
        self.length = length
        self.parts: list[tuple[int, Piece, int, int]] = []  # (offset in the window, piece, start in piece, length)
        self.flags = bytearray(num)
        self.runs: list[tuple[int, int, int]] = []  # the copy's: (first cluster in the window, clusters, first data cluster)


def _windows(source: Source, cluster_size: int) -> Iterator[_Window]:
    """The guest disk as windows of whole target clusters (the last cluster may end past the disk: zeros there)."""
    cs = cluster_size
    step = max(cs, LEN_WINDOW // cs * cs)
    end = source.len_virtual_disk
    pieces = source.pieces()
    piece: Piece | None = next(pieces, None)
    for ofs in range(0, end, step):
        w_end = min(ofs + step, end)
        num = -(-(w_end - ofs) // cs)
        win = _Window(ofs, num * cs, num)
        flags = win.flags
        while piece is not None and piece.ofs_guest < w_end:
            a = max(piece.ofs_guest, ofs)
            b = min(piece.ofs_guest + piece.length, w_end)
            bit = _F_DATA if piece.kind is Kind.DATA else _F_ZERO if piece.kind is Kind.ZERO else _F_UNALLOCATED
            if piece.kind is Kind.DATA:
                win.parts.append((a - ofs, piece, a - piece.ofs_guest, b - a))
            first, last = (a - ofs) // cs, (b - 1 - ofs) // cs
            if first == last or (a - ofs) % cs or ((b - ofs) % cs and b != w_end):  # clusters it covers in part: OR
                for c in range(first, last + 1):
                    flags[c] |= bit
            else:  # whole clusters, each covered by this piece alone (pieces do not overlap)
                flags[first : last + 1] = bytes((bit,)) * (last + 1 - first)
            if piece.ofs_guest + piece.length <= w_end:
                piece = next(pieces, None)
            else:
                break
        yield win


def _fill(source: Source, win: _Window) -> bytearray:
    """The window's guest bytes: its DATA parts read, zeros elsewhere."""
    buf = bytearray(win.length)
    view = memoryview(buf)
    for at, piece, start, length in win.parts:
        source.read_piece(piece, start, view[at : at + length])
    return buf


def _pipeline(jobs: int, work: Callable[[_Window], Any], windows: Iterator[_Window]) -> Iterator[tuple[_Window, Any]]:
    """``(window, work(window))`` in order, ``work`` running on ``jobs`` threads for windows with DATA (else None)."""
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="qjournal-dedup")
    pending: deque[tuple[_Window, Future[Any] | None]] = deque()
    try:
        for win in windows:
            pending.append((win, pool.submit(work, win) if win.parts else None))
            while len(pending) > 2 * jobs:
                w, fut = pending.popleft()
                yield w, None if fut is None else fut.result()
        while pending:
            w, fut = pending.popleft()
            yield w, None if fut is None else fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def _scan(source: Source, cs: int, jobs: int, scan: _Scan, progress: Callable[[int], None] | None) -> None:
    has_backing = source.backing_file_name is not None
    zeros = bytes(cs)
    sha256 = hashlib.sha256

    def work(win: _Window) -> list[bytes | None]:
        buf = _fill(source, win)
        view = memoryview(buf)
        return [
            None if not f & _F_DATA else b"" if buf.startswith(zeros, c * cs) else sha256(view[c * cs : (c + 1) * cs]).digest()
            for c, f in enumerate(win.flags)
        ]

    refcounts, dmap, write_entry = scan.refcounts, scan.map, scan.entries.write
    pack = _ENTRY.pack
    for win, digests in _pipeline(jobs, work, _windows(source, cs)):
        codes = array("q")
        if digests is None:  # no DATA: zero and unallocated clusters only
            for c, f in enumerate(win.flags):
                codes.append(_code_without_data(f, has_backing, source, win.ofs_guest + c * cs))
        else:
            known = dmap.prefetch([d for d in digests if d])
            for c, (f, d) in enumerate(zip(win.flags, digests, strict=True)):
                if d is None:
                    codes.append(_code_without_data(f, has_backing, source, win.ofs_guest + c * cs))
                    continue
                if has_backing and f & _F_UNALLOCATED:
                    raise _mixed(source, win.ofs_guest + c * cs)
                if not d:
                    codes.append(ZERO)
                    continue
                idx = known.get(d)
                if idx is None:
                    idx = dmap.get(d)
                if idx is None or refcounts[idx] == MAX_REFCOUNT:
                    if idx is None:
                        write_entry(pack(d, scan.num_stored, win.ofs_guest + c * cs))
                        scan.num_distinct += 1
                    idx = scan.num_stored
                    scan.num_stored += 1
                    dmap.put(d, idx)
                    known[d] = idx
                refcounts[idx] += 1
                codes.append(idx)
        scan.num_data += sum(1 for x in codes if x >= 0)
        scan.num_zero += codes.count(ZERO)
        scan.num_unallocated += codes.count(UNALLOCATED)
        codes.tofile(scan.codes)
        if progress is not None:
            progress(min(win.ofs_guest + win.length, source.len_virtual_disk))


def _code_without_data(flags: int, has_backing: bool, source: Source, ofs_guest: int) -> int:
    """A cluster with no DATA: unallocated when nothing of it is stored, else zero (refused: partly unallocated over a backing file)."""
    if flags == _F_UNALLOCATED:
        return UNALLOCATED
    if has_backing and flags & _F_UNALLOCATED:
        raise _mixed(source, ofs_guest)
    return ZERO


def _mixed(source: Source, ofs_guest: int) -> UnsupportedSourceError:
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


def _copy(source: Source, writer: Qcow2Writer, scan: _Scan, jobs: int, progress: Callable[[int], None] | None) -> None:
    """Write every data cluster, read at its first occurrence in guest order (a cluster's code is then the next number)."""
    cs = writer.layout.cluster_size
    f = scan.codes
    f.seek(0)
    state = {"next": 0}

    def annotated() -> Iterator[_Window]:
        for win in _windows(source, cs):
            codes = _read_codes(f, len(win.flags))
            nxt = state["next"]
            for c, code in enumerate(codes):
                if code == nxt:
                    if win.runs and win.runs[-1][0] + win.runs[-1][1] == c:
                        first, n, idx = win.runs[-1]
                        win.runs[-1] = (first, n + 1, idx)
                    else:
                        win.runs.append((c, 1, nxt))
                    nxt += 1
            state["next"] = nxt
            if not win.runs:
                win.parts = []  # nothing to read
            yield win

    def work(win: _Window) -> None:
        view = memoryview(_fill(source, win))
        for first, n, idx in win.runs:
            writer.write_data(idx, view[first * cs : (first + n) * cs])

    for win, _ in _pipeline(jobs, work, annotated()):
        if progress is not None:
            progress(source.len_virtual_disk + min(win.ofs_guest + win.length, source.len_virtual_disk))
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


def _write_metadata(writer: Qcow2Writer, scan: _Scan, source: Source) -> None:
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


class _Staged:
    """A new file being written beside ``path``: unnamed (``O_TMPFILE``) where the file system allows, else named and removed on error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self.tmp: str | None = None
        try:
            self.fd = os.open(self.folder, os.O_TMPFILE | os.O_RDWR, 0o666)
        except (AttributeError, OSError):
            try:
                self.fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=self.folder)
            except OSError as exc:
                raise JournalIOError(f"cannot create a file beside it: {exc.strerror or exc}", source=path) from None

    def commit(self, durable: bool) -> None:
        """fsync, then give the file its name (refused if one appeared meanwhile)."""
        try:
            if durable:
                os.fsync(self.fd)
            if self.tmp is None:  # linkat(AT_SYMLINK_FOLLOW), which os.link uses only given a directory descriptor
                folder = os.open(self.folder, os.O_RDONLY)
                try:
                    os.link(f"/proc/self/fd/{self.fd}", os.path.basename(self.path), dst_dir_fd=folder, follow_symlinks=True)
                finally:
                    os.close(folder)
            else:
                link_into_place(self.tmp, self.path, self.path)
                self.tmp = None
        except FileExistsError:
            raise JournalIOError("the file appeared while dedup wrote it; nothing was replaced", source=self.path) from None
        except OSError as exc:
            raise JournalIOError(f"cannot give the new file its name: {exc.strerror or exc}", source=self.path) from None

    def close(self) -> None:
        """Close; a named temporary file still there is removed."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.tmp = None


def _write_journal(path: str, scan: _Scan, lay: Layout, durable: bool) -> str:
    """The target's journal under a temporary name beside ``path``: what ``qjournal index TARGET`` writes. Its name."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    num_clusters = clusters_for(tail_after(itertools.repeat(_LEN_JOURNAL_ENTRY, scan.num_distinct)))
    f = scan.entries
    f.flush()
    f.seek(0)
    with create(tmp, num_clusters, durable=durable) as writer:
        try:
            while raw := f.read(_ENTRY.size * BATCH):
                writer.append_many([
                    HashEntry(d, lay.ofs_data_cluster(idx) // LEN_SECTOR, ofs_guest // LEN_SECTOR)
                    for d, idx, ofs_guest in _ENTRY.iter_unpack(raw)
                ])
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return tmp


def refuse_if_open_for_writing(source: Source) -> None:
    """Hook: refuse a source that a running QEMU holds open for writing, as the image commands refuse it.

    The check is the image commands' shared one, ``qjournal.qemulock``: called
    here when that module is there (it is being written alongside this one).
    """
    try:
        qemulock = importlib.import_module("qjournal.qemulock")
    except ModuleNotFoundError:
        return
    check = getattr(qemulock, "refuse_if_open_for_writing", None)
    if check is not None:
        check(source.name)


def _same_file(path: str, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_new(path: str, source: ImageSource, what: str) -> None:
    """Refuse a ``path`` that is the source (through links: device and inode) or exists."""
    if _same_file(path, source.image.fileno()):
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
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT // 2,
    spill_dir: str | None = None,
    durable: bool = True,
) -> DedupReport:
    """Write ``target``, a qcow2 v3 image of ``source``'s guest disk in which every distinct non-zero cluster is stored once.

    ``source`` (qcow2 or raw) is read only. ``cluster_size``: the target's
    (default: the source's; 64 KiB for raw). ``journal``: True writes
    ``TARGET.qjournal``, a path writes there, False none. ``drop_bitmaps``
    lets a source with persistent bitmaps through (the target has none).
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
    src = open_source(source, block_size=cluster_size or 65536)
    try:
        _check_new(target, src, "target")
        if journal_path is not None:
            _check_new(journal_path, src, "journal")
            if os.path.abspath(journal_path) == os.path.abspath(target):
                raise JournalArgumentError("the journal and the target are one path", source=target)
        src.refuse_snapshots()
        if not drop_bitmaps:
            src.refuse_bitmaps()
        refuse_if_open_for_writing(src)
        cs = cluster_size or src.cluster_size
        header_cluster(Layout(cs, src.len_virtual_disk, 0, 0), src.backing_file_name, src.backing_format)  # before any work
        return _dedup(src, target, journal_path, cs=cs, workers=workers, progress=progress, memory_limit=memory_limit,
                      spill_dir=spill_dir, durable=durable, drop_bitmaps=drop_bitmaps)
    finally:
        src.close()


def _dedup(
    src: ImageSource, target: str, journal_path: str | None, *, cs: int, workers: int, progress: Callable[[int], None] | None,
    memory_limit: int, spill_dir: str | None, durable: bool, drop_bitmaps: bool,
) -> DedupReport:
    num_guest = -(-src.len_virtual_disk // cs)
    staged = _Staged(target)
    scan = _Scan(num_guest, spill_dir, memory_limit)
    tmp_journal = None
    try:
        _scan(src, cs, workers, scan, progress)
        has_backing = src.backing_file_name is not None
        probe = Layout(cs, src.len_virtual_disk, 0, 0)
        num_l2 = num_l2_data = 0
        for _, _, needed, has_data in _l2_spans(scan, probe, has_backing):
            num_l2 += needed
            num_l2_data += has_data
        lay = Layout(cs, src.len_virtual_disk, num_l2, scan.num_stored)
        writer = Qcow2Writer(staged.fd, lay, target)
        _copy(src, writer, scan, workers, progress)
        _write_metadata(writer, scan, src)
        if journal_path is not None:
            tmp_journal = _write_journal(journal_path, scan, lay, durable)
        staged.commit(durable)
        if tmp_journal is not None:
            assert journal_path is not None
            link_into_place(tmp_journal, journal_path, journal_path)
            tmp_journal = None
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
        if tmp_journal is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_journal)
        staged.close()
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
