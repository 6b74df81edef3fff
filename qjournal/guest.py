"""The guest view of a disk image: what the guest reads, and where each byte comes from, in blocks of any size.

Strategy. One reader for every command that looks at what a guest sees
(analyze, index, verify, dedup). It stands on :mod:`qjournal.image`, which
maps guest clusters to the file: a qcow2 image's active L1 table and one L2
table at a time (decoded in bulk, with masks learned from the generated
parser), or a raw file. Two views, both lazy and in guest order:

- :meth:`GuestReader.spans`: the guest disk as maximal :class:`Span` runs, each
  of one :class:`Status` from one source: DATA (bytes stored uncompressed,
  contiguous in the file from ``ofs_host``), ZERO (reads as zeros by the
  image's own metadata: a zero cluster, plain or preallocated, a zero
  subcluster, a hole of a sparse raw file), COMPRESSED (one guest cluster,
  whose compressed bytes are at ``ofs_host``), UNALLOCATED (not stored in this
  image: it reads from the backing file, or as zeros). Extended L2 entries
  are read by subcluster (32 per cluster); a raw file's holes are found with
  ``SEEK_DATA``/``SEEK_HOLE`` and never read. A huge unallocated or zero range
  is one span: memory does not grow with the disk.
- :meth:`GuestReader.blocks`: the disk cut into blocks of B bytes (a power of
  two, 512 B to 2 MiB, below or above the cluster size) at guest offsets that
  are multiples of B, delivered in :class:`Blocks` batches of about
  :data:`LEN_BATCH` bytes so that the per-block cost in Python stays small:
  per batch one status byte per block (the OR of the statuses of the spans
  it overlaps: a block of several kinds has several bits), one host offset
  per block (where the block's B bytes lie contiguously in the file, for a
  block that is wholly DATA, else -1), and, when asked, the guest's bytes in
  one buffer: DATA read with one positioned read per span piece, COMPRESSED
  decompressed (zlib with the standard library, zstd through
  ``compression.zstd`` or the ``backports.zstd`` package), ZERO and
  UNALLOCATED as zeros (bytes the image does not store read as zeros: the
  backing file is never read). Runs of whole blocks of skipped statuses
  (by default UNALLOCATED) are left out, so an empty 1 TiB disk yields no
  batch. :meth:`Blocks.refine` cuts a batch into smaller blocks over the
  same buffer: one read serves every block size. With ``once`` (blocks up to
  the cluster size), a data cluster that several guest clusters map whole
  (refcount > 1: a deduplicated image, or a crafted one) is read at its first
  use in guest order only, its blocks weighted by its number of uses
  (:attr:`Blocks.weights`), the later uses left out of the batches as
  unallocated runs are: what is read is bounded by the file, not by what its
  tables claim (D31).

What the reader leaves out is said, never silently dropped: :attr:`GuestReader.not_read`
names the backing file and the internal snapshots (their own L1 tables are
not walked). The last block of a disk whose size is not a multiple of B
reads as zeros past the disk's end (docs/format.md D27).

Threads: a reader's iterators (:meth:`~GuestReader.spans`,
:meth:`~GuestReader.blocks`) belong to one thread (the tables are parsed
through one stream); a :class:`Blocks` batch, once yielded, is independent of
the reader and may be handed to other threads, and :meth:`~GuestReader.fill`
(its bytes) and :meth:`~GuestReader.cluster` are safe from any thread: batches
taken without their data are read where they are hashed, on every core, as
:mod:`qjournal.analysis` and :mod:`qjournal.index` do.
"""

from __future__ import annotations

import bisect
import enum
import errno
import importlib
import os
import zlib
from array import array
from collections.abc import Iterator
from typing import Any, NamedTuple

import kaitaistruct

from qjournal.errors import CorruptImageError, JournalArgumentError, JournalIOError
from qjournal.generated.qcow2 import Qcow2
from qjournal.image import DEFAULT_BLOCK_SIZE, Image, Kind, Qcow2Image, check_block_size, open_image

__all__ = [
    "LEN_BATCH",
    "STORED",
    "Blocks",
    "GuestReader",
    "NotRead",
    "Span",
    "Status",
    "open_guest",
]

LEN_BATCH = 4 << 20
"""Guest bytes per :class:`Blocks` batch by default (at least one block): a few positioned reads, one buffer."""


class Status(enum.IntFlag):
    """Where a guest range's bytes come from, in this image alone; a block of several kinds has several bits."""

    DATA = 1
    """Stored uncompressed in the image file (a data cluster or allocated subcluster; raw: a range with data)."""
    ZERO = 2
    """Reads as zeros by the image's own metadata (a zero cluster, plain or preallocated, or subcluster; raw: a hole)."""
    COMPRESSED = 4
    """Stored compressed (the bytes given are decompressed)."""
    UNALLOCATED = 8
    """Not stored in this image: read from the backing file, or as zeros (given as zeros here)."""


STORED = Status.DATA | Status.ZERO | Status.COMPRESSED
"""The statuses of bytes the image itself stores: a block counts (analysis) when its status has one of them."""

_OF_KIND = {Kind.DATA: Status.DATA, Kind.ZERO: Status.ZERO, Kind.COMPRESSED: Status.COMPRESSED, Kind.UNALLOCATED: Status.UNALLOCATED}
_DATA, _ZERO, _COMPRESSED, _UNALLOCATED = (int(s) for s in (Status.DATA, Status.ZERO, Status.COMPRESSED, Status.UNALLOCATED))


class Span(NamedTuple):
    """A guest range of one status from one source.

    ``ofs_host``: for DATA, the file offset of ``ofs_guest``'s byte (the
    ``length`` bytes are contiguous there); for COMPRESSED, the offset of the
    cluster's compressed data (``ofs_compressed_data``), ``len_host`` its
    length (``len_compressed_data``), the span lying inside that one guest
    cluster; else None and 0.
    """

    ofs_guest: int
    length: int
    status: Status
    ofs_host: int | None
    len_host: int

    @property
    def end(self) -> int:
        """The guest offset just past the span."""
        return self.ofs_guest + self.length


class NotRead(NamedTuple):
    """What the reader leaves out, for every report to say: the backing file and the internal snapshots."""

    backing_file: str | None
    """The backing file's name as the image records it, or None: unallocated ranges would read from it."""
    num_snapshots: int
    """Internal snapshots (their own tables are not walked)."""
    snapshot_names: tuple[str, ...]
    """Their names, in the snapshot table's order (empty if the table cannot be read)."""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: ``backing_file``, ``num_snapshots``, ``snapshot_names``."""
        return {"backing_file": self.backing_file, "num_snapshots": self.num_snapshots,
                "snapshot_names": list(self.snapshot_names)}

    def describe(self) -> str | None:
        """One line for reports, or None when nothing was left out."""
        parts = []
        if self.backing_file is not None:
            parts.append(f"the backing file {self.backing_file!r}")
        if self.num_snapshots:
            names = ", ".join(repr(n) for n in self.snapshot_names) or "names unreadable"
            parts.append(f"{self.num_snapshots} internal snapshot{'s' * (self.num_snapshots != 1)} ({names})")
        return " and ".join(parts) or None


class Blocks:
    """A batch of consecutive guest blocks of ``block_size`` bytes from ``ofs_guest`` (see :meth:`GuestReader.blocks`).

    ``status[i]`` is block i's :class:`Status` as an int (OR of the kinds it
    overlaps); ``ofs_host[i]`` the file offset of its bytes when it is wholly
    DATA and contiguous in the file, else -1; ``data`` the guest's bytes of
    all blocks (``num_blocks * block_size``; zeros where the image stores
    zeros or nothing, and past the disk's end), or None when not asked for.
    ``spans`` are the pieces of :class:`Span` the batch was made from.
    """

    __slots__ = ("block_size", "data", "len_virtual_disk", "num_blocks", "ofs_guest", "ofs_host", "spans", "status", "weights")

    def __init__(self, ofs_guest: int, block_size: int, num_blocks: int, spans: list[Span], data: memoryview | None, *,
                 len_virtual_disk: int, weights: dict[int, int] | None = None) -> None:
        self.ofs_guest = ofs_guest
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.spans = spans
        self.data = data
        self.len_virtual_disk = len_virtual_disk
        self.weights = weights
        """None, or (``blocks(..., once=True)``, D31) block index -> how many guest blocks it stands for, where not 1:
        the blocks of a data cluster that several guest clusters use, at its first use, stand for every use (the
        later uses are left out of the batches, as unallocated runs are)."""
        self.status, self.ofs_host = _layout(spans, ofs_guest, num_blocks, block_size, len_virtual_disk)

    def weight(self, i: int) -> int:
        """How many guest blocks block i stands for: 1, or see :attr:`weights`."""
        return 1 if self.weights is None else self.weights.get(i, 1)

    def __len__(self) -> int:
        return self.num_blocks

    def offsets(self) -> range:
        """The guest offsets of the blocks."""
        return range(self.ofs_guest, self.ofs_guest + self.num_blocks * self.block_size, self.block_size)

    def block(self, i: int) -> memoryview:
        """Block i's bytes (needs ``data``)."""
        if self.data is None:
            raise JournalArgumentError("this batch was read without its data (blocks(..., data=False))")
        return self.data[i * self.block_size : (i + 1) * self.block_size]

    @property
    def needs_read(self) -> bool:
        """True when some bytes of the batch are stored (DATA or COMPRESSED): else every block reads as zeros."""
        return any(s.status is Status.DATA or s.status is Status.COMPRESSED for s in self.spans)

    def with_data(self, data: memoryview) -> Blocks:
        """This batch with its bytes (see :meth:`GuestReader.fill`): the same blocks, statuses and host offsets."""
        new = Blocks.__new__(Blocks)
        for name in Blocks.__slots__:
            setattr(new, name, getattr(self, name))
        new.data = data
        return new

    def refine(self, block_size: int) -> Blocks:
        """The same guest range in blocks of ``block_size`` (a power of two dividing this one), sharing ``data``.

        A block wholly past the disk's end (the last block of a larger size may reach past it) is not one.
        """
        check_block_size(block_size)
        if self.block_size % block_size:
            raise JournalArgumentError(f"a batch of {self.block_size}-byte blocks cannot be cut in {block_size}-byte blocks")
        n = min(self.num_blocks * (self.block_size // block_size), -(-(self.len_virtual_disk - self.ofs_guest) // block_size))
        data = None if self.data is None else self.data[: n * block_size]  # no block wholly past the disk's end
        f = self.block_size // block_size
        weights = None if self.weights is None else {
            i * f + k: w for i, w in self.weights.items() for k in range(f) if i * f + k < n}
        return Blocks(self.ofs_guest, block_size, n, self.spans, data, len_virtual_disk=self.len_virtual_disk,
                      weights=weights)

    def __repr__(self) -> str:
        return f"<Blocks {self.num_blocks} x {self.block_size} B at {self.ofs_guest:#x}>"


def _layout(spans: list[Span], w0: int, n: int, size: int, len_disk: int) -> tuple[bytearray, array[int]]:
    """Per block: the OR of the statuses of the spans it overlaps; the host offset of a block wholly in one DATA span."""
    status = bytearray(n)
    hosts = array("q", [-1]) * n
    for s in spans:
        code = int(s.status)
        end = s.end if s.end < len_disk else w0 + n * size  # the last span runs to the last block's end (D27)
        i0, i1 = (s.ofs_guest - w0) // size, -(-(end - w0) // size)  # blocks touched: [i0, i1)
        lo = i0 if (s.ofs_guest - w0) % size == 0 else i0 + 1
        hi = i1 if (end - w0) % size == 0 else i1 - 1  # blocks wholly inside: [lo, hi)
        if lo < hi:
            status[lo:hi] = bytes((code,)) * (hi - lo)
            if code == _DATA and s.ofs_host is not None:
                h = s.ofs_host + (w0 + lo * size - s.ofs_guest)
                hosts[lo:hi] = array("q", range(h, h + (hi - lo) * size, size))
        for i in {i0, i1 - 1}:
            if not lo <= i < hi:
                status[i] |= code
    return status, hosts


def _cut(s: Span, lo: int, hi: int) -> Span:
    """The part [lo, hi) of a DATA span."""
    assert s.ofs_host is not None
    return Span(lo, hi - lo, s.status, s.ofs_host + lo - s.ofs_guest, hi - lo)


def _zstd() -> Any:
    """The zstd module: ``compression.zstd`` (Python 3.14+), else the ``backports.zstd`` package."""
    why = ""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            why = str(exc)
    raise JournalIOError(f"cannot decompress zstd clusters ({why}): install the backports.zstd package (a qjournal "
                         f"dependency on Python before 3.14): pip install backports.zstd")


class _Sharing(NamedTuple):
    """The data clusters several guest clusters use (D31), in three arrays side by side."""

    keys: array[int]
    """Their host cluster numbers, sorted."""
    first: array[int]
    """The guest cluster of each one's first whole use (-1: none)."""
    uses: array[int]
    """Each one's number of whole uses."""


class GuestReader:
    """The guest view of one image (see the module doc); a context manager (closing the image if it opened it).

    ``image`` is an open :class:`~qjournal.image.Image` (left open on close)
    or a path, opened by :func:`qjournal.image.open_image` (``format``,
    ``block_size``: the raw image's blocks; ``force_share``: QEMU's locks).
    """

    def __init__(self, image: Image | str | os.PathLike[str], *, format: str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE, force_share: bool = False) -> None:
        self._owned = not isinstance(image, Image)
        self.image: Image = image if isinstance(image, Image) else open_image(
            image, format=format, block_size=block_size, force_share=force_share)
        img = self.image
        self.name = img.name
        """The image's file name, for messages."""
        self.format = img.format
        """``"qcow2"`` or ``"raw"``."""
        self.cluster_size = img.cluster_size
        """The qcow2 cluster size, or the raw image's block size: the default block size of an analysis."""
        self.len_virtual_disk = img.len_virtual_disk
        """The guest disk's size in bytes."""
        self.len_subcluster = img.len_subcluster if isinstance(img, Qcow2Image) else 1
        """The unit a status can change at: the subcluster (extended L2), the cluster, or 1 byte (raw, holes)."""
        self._cached: tuple[int, bytes] | None = None  # one tuple, replaced whole: safe to share between threads
        self._zstd = isinstance(img, Qcow2Image) and img.header.compression == Qcow2.CompressionType.zstd
        self.not_read = self._not_read()
        """What this reader leaves out: :class:`NotRead`."""
        self._shared: _Sharing | None = None
        self._shared_known = False  # _shared looked for (see _sharing)

    def _not_read(self) -> NotRead:
        img = self.image
        if not isinstance(img, Qcow2Image):
            return NotRead(None, 0, ())
        num = int(img.header.num_snapshots)
        names: tuple[str, ...] = ()
        if num:
            try:
                names = tuple(str(s.name) for s in img.qcow2.snapshots)
            except (kaitaistruct.KaitaiStructError, EOFError, UnicodeDecodeError, ValueError):
                names = ()  # a broken snapshot table: counted, its names unknown (it is not read anyway)
        return NotRead(img.backing_file_name, num, names)

    # -- spans ---------------------------------------------------------------------------------------
    def spans(self, start: int = 0, stop: int | None = None) -> Iterator[Span]:
        """The guest range [start, stop) (default: the whole disk) as maximal spans of one status and source, in order."""
        stop = self.len_virtual_disk if stop is None else min(stop, self.len_virtual_disk)
        if not 0 <= start <= stop:
            raise JournalArgumentError(f"guest range {start:#x}-{stop:#x} is not inside the disk (0-{self.len_virtual_disk:#x})",
                                       source=self.name)
        if start == stop:
            return
        pieces = self._qcow2_spans(start, stop) if isinstance(self.image, Qcow2Image) else self._raw_spans(start, stop)
        cur: Span | None = None
        for piece in pieces:
            s = piece
            if s.ofs_guest < start or s.end > stop:  # clip to [start, stop)
                lo, hi = max(s.ofs_guest, start), min(s.end, stop)
                if lo >= hi:
                    continue
                host = None if s.ofs_host is None else s.ofs_host + (lo - s.ofs_guest) * (s.status is Status.DATA)
                s = Span(lo, hi - lo, s.status, host, hi - lo if s.status is Status.DATA else s.len_host)
            if (cur is not None and cur.status is s.status and s.status is not Status.COMPRESSED
                    and (s.ofs_host is None or (cur.ofs_host is not None and cur.ofs_host + cur.length == s.ofs_host))):
                cur = Span(cur.ofs_guest, cur.length + s.length, cur.status, cur.ofs_host, cur.len_host + s.len_host)
                continue
            if cur is not None:
                yield cur
            cur = s
        if cur is not None:
            yield cur

    def _qcow2_spans(self, start: int, stop: int) -> Iterator[Span]:
        img = self.image
        assert isinstance(img, Qcow2Image)
        cs, sub = img.cluster_size, self.len_subcluster
        for run in img._runs(start // cs, -(-stop // cs)):
            ofs = run.idx * cs
            if run.sub is not None:  # a partly allocated cluster: subcluster by subcluster
                alloc, zero = run.sub
                for i in range(32):
                    if alloc >> i & 1:
                        assert run.ofs_host is not None
                        yield Span(ofs + i * sub, sub, Status.DATA, run.ofs_host + i * sub, sub)
                    else:
                        yield Span(ofs + i * sub, sub, Status.ZERO if zero >> i & 1 else Status.UNALLOCATED, None, 0)
                continue
            status = _OF_KIND[run.kind]
            if status is Status.DATA:
                yield Span(ofs, run.num * cs, status, run.ofs_host, run.num * cs)
            elif status is Status.COMPRESSED:
                yield Span(ofs, cs, status, run.ofs_host, run.len_host)
            else:
                yield Span(ofs, run.num * cs, status, None, 0)

    def _raw_spans(self, start: int, stop: int) -> Iterator[Span]:
        """A raw file's data and holes (``SEEK_DATA``/``SEEK_HOLE``; all data where the file system cannot tell)."""
        fd, pos = self.image.fileno(), start
        while pos < stop:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data past pos: a hole to the end
                    yield Span(pos, stop - pos, Status.ZERO, None, 0)
                    return
                yield Span(pos, stop - pos, Status.DATA, pos, stop - pos)  # no hole detection here
                return
            data = min(data, stop)
            if data > pos:
                yield Span(pos, data - pos, Status.ZERO, None, 0)
            if data >= stop:
                return
            try:
                hole = min(os.lseek(fd, data, os.SEEK_HOLE), stop)
            except OSError:
                hole = stop
            yield Span(data, hole - data, Status.DATA, data, hole - data)
            pos = hole

    # -- bytes ---------------------------------------------------------------------------------------
    def cluster(self, span: Span) -> bytes:
        """The decompressed bytes of the guest cluster of a COMPRESSED span (the last one is cached); safe from any thread."""
        img = self.image
        assert isinstance(img, Qcow2Image) and span.status is Status.COMPRESSED and span.ofs_host is not None
        cached = self._cached
        if cached is not None and cached[0] == span.ofs_host:
            return cached[1]
        cs, ofs = img.cluster_size, span.ofs_host
        raw = bytearray(span.len_host)
        got = img.readinto(ofs, memoryview(raw))  # the last sector may end with the file
        del raw[got:]
        where = f"the compressed cluster of guest offset {span.ofs_guest // cs * cs:#x} ({span.len_host} bytes at {ofs:#x})"
        if self._zstd:
            zstd = _zstd()
            try:
                d = zstd.ZstdDecompressor()
                out = bytes(d.decompress(bytes(raw), max_length=cs + 1))
                ok = len(out) == cs and d.eof
            except zstd.ZstdError as exc:
                raise CorruptImageError("compressed", f"{where} is not zstd data: {exc}", ofs, source=self.name) from None
        else:
            try:
                out = zlib.decompressobj(-15).decompress(bytes(raw), cs)  # raw deflate; QEMU needs a whole cluster, not the stream's end
                ok = len(out) == cs
            except zlib.error as exc:
                raise CorruptImageError("compressed", f"{where} is not deflate data: {exc}", ofs, source=self.name) from None
        if not ok:
            raise CorruptImageError("compressed", f"{where} decompresses to {len(out)} bytes, not one {cs}-byte cluster",
                                    ofs, source=self.name)
        self._cached = (ofs, out)
        return out

    def _fill(self, view: memoryview, w0: int, spans: list[Span]) -> None:
        """Write the guest's bytes of ``spans`` into ``view`` (which holds guest offsets from ``w0`` and is zeroed)."""
        img, cs = self.image, self.cluster_size
        for s in spans:
            i = s.ofs_guest - w0
            if s.status is Status.DATA:
                assert s.ofs_host is not None
                got = img.readinto(s.ofs_host, view[i : i + s.length])
                if got != s.length:  # named by the first (sub)cluster that the file does not hold whole
                    unit = self.len_subcluster
                    short = (s.ofs_guest + got) // unit * unit - s.ofs_guest if unit > 1 else got
                    what = "data cluster" if unit == cs else "data subcluster" if unit > 1 else "data"
                    raise CorruptImageError(
                        "truncated",
                        f"the {what} of guest offset {s.ofs_guest + short:#x} lies at host offset {s.ofs_host + short:#x}, "
                        f"past the end of the file ({img.len_file} bytes)",
                        s.ofs_host + short, source=self.name,
                    )
            elif s.status is Status.COMPRESSED:
                k = s.ofs_guest % cs
                view[i : i + s.length] = self.cluster(s)[k : k + s.length]

    def fill(self, batch: Blocks) -> Blocks:
        """``batch`` (from ``blocks(..., data=False)``) with its bytes read: safe from any thread, so that the reads of
        a batch can run where it is hashed (positioned reads; compressed clusters decompressed there)."""
        if batch.data is not None:
            return batch
        view = memoryview(bytearray(batch.num_blocks * batch.block_size))
        self._fill(view, batch.ofs_guest, batch.spans)
        return batch.with_data(view)

    def read(self, ofs_guest: int, length: int) -> bytes:
        """The guest's bytes at [ofs_guest, ofs_guest + length) of this image alone (zeros where it stores none)."""
        if ofs_guest < 0 or length < 0 or ofs_guest + length > self.len_virtual_disk:
            raise JournalArgumentError(f"guest range of {length} bytes at {ofs_guest:#x} is not inside the disk "
                                       f"({self.len_virtual_disk} bytes)", source=self.name)
        buf = bytearray(length)
        self._fill(memoryview(buf), ofs_guest, list(self.spans(ofs_guest, ofs_guest + length)))
        return bytes(buf)

    # -- blocks --------------------------------------------------------------------------------------
    def first_uses(self) -> dict[int, tuple[int, int]]:
        """Each data cluster that several guest clusters map whole (D31) -> (the first of them, how many): read once.

        One walk of the tables (no data read), made once and only when the
        mapping check found a data cluster used more than once (a deduplicated
        image, a crafted one); else empty. Kept in three arrays, 24 bytes per
        such cluster; this dict is made from them for the caller.
        """
        sharing = self._sharing()
        if sharing is None:
            return {}
        keys, first, uses = sharing
        return {keys[i]: (first[i], uses[i]) for i in range(len(keys)) if uses[i]}

    def reads_once(self, block_size: int) -> bool:
        """True when ``blocks(block_size, once=True)`` reads a shared data cluster once (D31): blocks up to the
        cluster size, and a data cluster used whole by several guest clusters."""
        return block_size <= self.cluster_size and self._sharing() is not None

    def _sharing(self) -> _Sharing | None:
        """The shared data clusters (sorted host cluster numbers), the guest cluster of each one's first whole use, and
        its number of whole uses; None when no data cluster is used whole more than once."""
        if self._shared_known:
            return self._shared
        img = self.image
        self._shared_known = True
        if isinstance(img, Qcow2Image):
            if img.shared_clusters is None:
                img.check_mapping()  # sets shared_clusters
            if img.shared_clusters:
                keys = array("q", sorted(img.shared_clusters))
                first, uses = array("q", [-1]) * len(keys), array("q", [0]) * len(keys)
                for s in self.spans():
                    for g, i in self._whole_shared(s, keys):
                        if uses[i] == 0:
                            first[i] = g
                        uses[i] += 1
                if max(uses) > 1:
                    self._shared = _Sharing(keys, first, uses)
        return self._shared

    def _whole_shared(self, s: Span, keys: array[int]) -> Iterator[tuple[int, int]]:
        """(guest cluster, index in ``keys``) of each guest cluster that DATA span ``s`` maps whole to a cluster of
        ``keys`` (sorted host cluster numbers)."""
        if s.status is not Status.DATA or s.ofs_host is None:
            return
        cs = self.cluster_size
        g0, g1 = -(-s.ofs_guest // cs), s.end // cs
        if g0 >= g1:
            return
        h0 = s.ofs_host + g0 * cs - s.ofs_guest
        if h0 % cs:  # not on host clusters (cannot happen for whole clusters): nothing shared whole
            return
        h0 //= cs
        for i in range(bisect.bisect_left(keys, h0), bisect.bisect_left(keys, h0 + g1 - g0)):
            yield g0 + keys[i] - h0, i

    def _later_uses(self, spans: Iterator[Span], sharing: _Sharing) -> Iterator[tuple[Span, bool]]:
        """``spans`` as (piece, later): the guest clusters that map a shared data cluster after its first use (D31)
        cut out as pieces of their own with ``later`` True (consecutive ones as one piece), the rest as they are."""
        keys, first, cs = sharing.keys, sharing.first, self.cluster_size
        run: Span | None = None  # later uses not yet given, guest-contiguous
        for s in spans:
            pos = s.ofs_guest
            for g, i in self._whole_shared(s, keys):
                if first[i] == g:
                    continue
                if g * cs > pos:
                    if run is not None:
                        yield run, True
                        run = None
                    yield _cut(s, pos, g * cs), False
                if run is not None and run.end == g * cs:
                    run = run._replace(length=run.length + cs)
                else:
                    if run is not None:
                        yield run, True
                    run = Span(g * cs, cs, Status.DATA, None, 0)
                pos = (g + 1) * cs
            if pos < s.end:
                if run is not None:
                    yield run, True
                    run = None
                yield (s if pos == s.ofs_guest else _cut(s, pos, s.end)), False
        if run is not None:
            yield run, True

    def _weigh(self, pieces: list[Span], w0: int, n: int, size: int, sharing: _Sharing) -> dict[int, int]:
        """A batch's weights (see :attr:`Blocks.weights`): the blocks of a shared data cluster's first use."""
        keys, first, uses, cs = sharing.keys, sharing.first, sharing.uses, self.cluster_size
        weights: dict[int, int] = {}
        per = cs // size
        for s in pieces:
            for g, i in self._whole_shared(s, keys):
                if first[i] == g:  # (the later uses are not in the batch)
                    b0 = (g * cs - w0) // size
                    weights.update(dict.fromkeys(range(max(b0, 0), min(b0 + per, n)), uses[i]))
        return weights

    def stored_spans(self, start: int = 0, stop: int | None = None, *, once: bool = False) -> Iterator[tuple[Span, bool]]:
        """:meth:`spans` as (span, left_out): with ``once`` (and a shared data cluster), a later use of a data
        cluster that several guest clusters use is a piece of its own, left out (D31); else every span, False."""
        spans = self.spans(start, stop)
        sharing = self._sharing() if once else None
        if sharing is not None:
            return self._later_uses(spans, sharing)
        return ((s, False) for s in spans)

    def blocks(self, block_size: int, *, start: int = 0, stop: int | None = None, data: bool = True,
               skip: Status = Status.UNALLOCATED, len_batch: int = LEN_BATCH, once: bool = False) -> Iterator[Blocks]:
        """The blocks of ``block_size`` bytes of guest range [start, stop), in :class:`Blocks` batches, in guest order.

        ``start`` is a multiple of ``block_size``; ``stop`` (default: the
        disk's end) too, or the disk's end. Runs of whole blocks whose status
        is within ``skip`` are left out (a block's status always says what
        it is: check it). ``data``: read the bytes (else only statuses and
        host offsets, with no read of the file). ``len_batch``: guest bytes
        per batch (at least one block).
        """
        size = check_block_size(block_size)
        disk = self.len_virtual_disk
        stop = disk if stop is None else stop
        if start % size or not 0 <= start <= stop <= disk or (stop % size and stop != disk):
            raise JournalArgumentError(f"blocks of {size} bytes from {start:#x} to {stop:#x}: both ends must be multiples "
                                       f"of the block size (or the disk's end, {disk:#x})", source=self.name)
        per_batch = max(1, len_batch // size)
        skipped = int(skip)
        first: int | None = None  # the current batch's first block
        pieces: list[Span] = []
        once = once and self.reads_once(size)
        sharing = self._sharing() if once else None
        align = self.cluster_size if once else size  # with once, no cluster lies across two batches
        if once:
            per_batch = max(per_batch, 2 * self.cluster_size // size)

        def batch(end_block: int) -> Blocks:
            assert first is not None
            n = end_block - first
            view = memoryview(bytearray(n * size)) if data else None
            if view is not None:
                self._fill(view, first * size, pieces)
            return Blocks(first * size, size, n, list(pieces), view, len_virtual_disk=disk,
                          weights=None if sharing is None else self._weigh(pieces, first * size, n, size, sharing))

        for s, left_out in self.stored_spans(start, stop, once=once):
            lo, end = s.ofs_guest, s.end
            if left_out or int(s.status) & ~skipped == 0:  # (a later use is whole clusters: whole blocks)
                whole_lo = -(-lo // size)
                whole_hi = -(-end // size) if end == disk else end // size
                if whole_lo < whole_hi:  # whole blocks to leave out: end the batch before them, start after
                    if first is not None:
                        if lo < whole_lo * size:
                            pieces.append(s._replace(length=whole_lo * size - lo))
                        yield batch(whole_lo)
                        first, pieces = None, []
                    if whole_hi * size < end:
                        first, pieces = whole_hi, [s._replace(ofs_guest=whole_hi * size, length=end - whole_hi * size)]
                    continue
            while lo < end:
                if first is None:
                    first = lo // size
                limit = (first + per_batch) * size // align * align
                hi = min(end, limit)
                if lo == s.ofs_guest and hi == end:
                    pieces.append(s)
                else:
                    host = s.ofs_host if s.status is not Status.DATA or s.ofs_host is None else s.ofs_host + lo - s.ofs_guest
                    pieces.append(Span(lo, hi - lo, s.status, host, hi - lo if s.status is Status.DATA else s.len_host))
                lo = hi
                if hi == limit:
                    yield batch(limit // size)
                    first, pieces = None, []
        if first is not None and pieces:
            yield batch(-(-pieces[-1].end // size))

    # -- closing -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the image if this reader opened it."""
        if self._owned:
            self.image.close()

    def __enter__(self) -> GuestReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GuestReader {self.name}: {self.format}, {self.len_virtual_disk} bytes>"


def open_guest(path: str | os.PathLike[str], *, format: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> GuestReader:
    """Open an image's guest view: :class:`GuestReader` over :func:`qjournal.image.open_image` (closed with the reader)."""
    return GuestReader(path, format=format, block_size=block_size)
