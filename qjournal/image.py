"""Disk images opened for reading: where each guest cluster's data lies in the file (qcow2 or raw).

Strategy. One job: map the guest disk to the image file's bytes, and read those bytes.

- qcow2 (the file starts with ``QFI\\xfb``): every rule of the format is the
  generated parser's (:mod:`qjournal.generated.qcow2`, from
  ``formats/qcow2.ksy``). Opening parses the header and its extensions. One
  L1 -> L2 walk (:meth:`Qcow2Image._l2_tables`) serves the whole disk and a
  single lookup alike: the part of the active L1 table asked for, each entry
  parsed by the generated ``L1Entry``, then each L2 table's used part in one
  positioned read, decoded in bulk (64-bit words, :mod:`struct`) with the
  masks :class:`qjournal.qcow2bits.L2Layout` learns from the generated
  ``L2Entry``; an entry the masks do not settle (a rule broken, reserved
  bits) is parsed by ``L2Entry`` itself, whose error names the rule. This
  module adds no rule of its own: it refuses, before any table is read, what
  it cannot map honestly (``UNSUPPORTED_FEATURES`` of :mod:`qjournal.errors`),
  naming the header field's offset as the parser reads it, and turns the
  parser's failures into errors that name the file and the byte offset.
  Extended L2 entries are mapped by subcluster (:mod:`qjournal.guest`); the
  cluster-level views here refuse a partly allocated cluster.
- raw (no qcow2 magic, or ``format="raw"``): the file is the guest disk, seen in
  blocks of ``block_size`` bytes; host offset = guest offset.
- data: ``os.pread`` on a descriptor opened read-only, safe from any thread, in
  runs as large as the caller asks. Nothing here ever writes.

Only an image's own clusters count: an unallocated cluster of an image with a
backing file is ``unallocated`` here, never read from the backing file. Only
the active L1 table counts: internal snapshots keep their own tables, which
are not walked.

The vocabulary is the .ksy's: ``cluster_size``, ``len_virtual_disk``,
``ofs_guest``; ``ofs_host`` is its ``ofs_host_cluster`` (or, for a compressed
cluster, ``ofs_compressed_data``).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from io import BytesIO
from typing import Any, BinaryIO, NamedTuple

import kaitaistruct
from kaitaistruct import KaitaiStream

from qjournal.area import check_openable, holds_journal_cluster
from qjournal.errors import CorruptImageError, JournalArgumentError, JournalIOError, UnsupportedImageError
from qjournal.format import LEN_CLUSTER as LEN_JOURNAL_CLUSTER
from qjournal.generated.qcow2 import Qcow2
from qjournal.magic import LEN_SNIFF, LUKS, OTHER_FORMATS, QCOW, identify
from qjournal.qcow2bits import L2Layout, field_offsets
from qjournal.qcow2refs import HostUse
from qjournal.qemulock import lock_for_reading
from qjournal.wording import count as count_of

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DIRTY_NOTE",
    "LEN_SECTOR",
    "Extent",
    "GuestCluster",
    "Image",
    "Kind",
    "Qcow2Image",
    "RawImage",
    "check_block_size",
    "open_image",
]

LEN_SECTOR = 512
"""The unit of ``physical_sector`` and ``first_logical_sector`` (D8, D25)."""
DEFAULT_BLOCK_SIZE = 65536
"""Block size of a raw image unless told otherwise (QEMU's default qcow2 cluster size)."""
MIN_CLUSTER_SIZE = 512
MAX_CLUSTER_SIZE = 2 << 20
"""Cluster sizes formats/qcow2.ksy accepts (cluster_bits 9 to 21), and the block sizes of a raw image."""

DIRTY_NOTE = ("the dirty bit is set (lazy refcounts, not closed cleanly): its L1 and L2 tables were read as they are; "
              "its refcounts are not trusted (D29); 'qemu-img check -r all' brings them up to date")
"""What every image command says of an image whose dirty bit is set."""

QCOW2_MAGIC = b"QFI\xfb"
"""The header's ``magic`` (formats/qcow2.ksy)."""

_ZERO_ENTRY = bytes(8)
"""An L1 entry of zero bits: no L2 table (a run of them is skipped in one step by the walk)."""

_L1_RULES = {
    "/types/l1_entry/seq/1": "its reserved bits 56-62 must be zero",
    "/types/l1_entry/seq/3": "its L2 table offset must be cluster-aligned",
    "/types/l1_entry/seq/4": "its reserved bits 0-8 must be zero",
}
"""What each ``valid`` of formats/qcow2.ksy's ``l1_entry`` asks, by its path there (a test holds the two together)."""



class Kind(enum.StrEnum):
    """What a guest cluster is, in this image alone."""

    DATA = "data"
    """Stored uncompressed in a host cluster (the .ksy's ``cluster_type::normal``; every block of a raw image)."""
    ZERO = "zero"
    """Reads as zeros by its L2 entry (``zero_plain``, or ``zero_allocated`` with a preallocated host cluster)."""
    COMPRESSED = "compressed"
    """Stored compressed, at a byte offset inside shared host sectors (``compressed``)."""
    UNALLOCATED = "unallocated"
    """No storage in this image: it reads from the backing file, or as zeros (``unallocated``)."""


class GuestCluster(NamedTuple):
    """One guest cluster and where its data is.

    ``ofs_host`` is the host cluster's offset for DATA and for a preallocated
    ZERO cluster, the compressed data's offset for COMPRESSED, else None;
    ``len_host`` the bytes there (the cluster size; ``len_compressed_data``; the
    last block of a raw image may be shorter), else 0.
    """

    ofs_guest: int
    kind: Kind
    ofs_host: int | None
    len_host: int


class Extent(NamedTuple):
    """Consecutive guest clusters of one kind whose host clusters, if any, are consecutive too (as ``qemu-img map`` shows them).

    ``length`` is in guest bytes (the last extent ends at ``len_virtual_disk``);
    ``ofs_host`` is where the host range starts (None for COMPRESSED, UNALLOCATED
    and plain ZERO extents) and ``len_host`` its length: whole host clusters,
    for the last guest cluster too, which the virtual disk may end inside
    (a raw image's last block is what the file holds).
    """

    ofs_guest: int
    length: int
    kind: Kind
    ofs_host: int | None
    len_host: int


class _Run(NamedTuple):
    """``num`` guest clusters from number ``idx``, of one kind; ``ofs_host`` steps by the cluster size.

    ``sub``: for one cluster of an image with extended L2 entries whose
    subclusters are not all of one state, its (``alloc_bitmap``,
    ``zero_bitmap``); ``kind`` is then DATA if any subcluster is allocated, else ZERO.
    """

    idx: int
    num: int
    kind: Kind
    ofs_host: int | None
    len_host: int
    sub: tuple[int, int] | None = None


def check_block_size(block_size: object) -> int:
    """A raw image's block size: a power of two from 512 bytes to 2 MiB, as qcow2 cluster sizes are."""
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or not MIN_CLUSTER_SIZE <= block_size <= MAX_CLUSTER_SIZE
        or block_size & (block_size - 1)
    ):
        raise JournalArgumentError(
            f"${{block_size}} must be a power of two from {MIN_CLUSTER_SIZE} bytes to {MAX_CLUSTER_SIZE} (2 MiB), "
            f"as a qcow2 cluster size is, not {block_size!r}"
        )
    return block_size


class Image:
    """A disk image opened for reading (see :func:`open_image`); a context manager that closes the file.

    ``guest_clusters``, ``extents`` and ``map`` parse through one stream: call
    them from one thread. ``read`` and ``readinto`` are positioned reads, safe
    from any thread.
    """

    format: str
    """``"qcow2"`` or ``"raw"``."""
    cluster_size: int
    """Bytes per guest cluster (a raw image: the block size)."""
    len_virtual_disk: int
    """The guest disk's size in bytes (a raw image: the file's)."""
    is_dirty: bool = False
    """The qcow2 dirty bit (lazy refcounts, not cleanly closed): the mapping holds, the refcounts may not (D29)."""

    def __init__(self, name: str, file: BinaryIO, len_file: int) -> None:
        self.name = name
        """The file's name, for messages."""
        self.len_file = len_file
        """The image file's size in bytes."""
        self._file: BinaryIO | None = file
        self._fd = file.fileno()

    @property
    def num_guest_clusters(self) -> int:
        """Guest clusters of the virtual disk (the last may be partial)."""
        return -(-self.len_virtual_disk // self.cluster_size)

    def _runs(self, first: int = 0, stop: int | None = None) -> Iterator[_Run]:
        raise NotImplementedError

    def _whole(self, run: _Run) -> _Run:
        """``run``, unless it is a partly allocated cluster (extended L2 entries), which a cluster cannot describe."""
        if run.sub is not None:
            raise UnsupportedImageError(
                "extended_l2",
                f"the guest cluster at {run.idx * self.cluster_size:#x} is partly allocated (extended L2 entries: "
                f"allocation bitmap {run.sub[0]:#010x}, zero bitmap {run.sub[1]:#010x}); it is read by subcluster "
                f"(qjournal.guest), not as one cluster",
                source=self.name,
            )
        return run

    def guest_clusters(self) -> Iterator[GuestCluster]:
        """Every guest cluster, in guest order, with its mapping (a partly allocated cluster is refused)."""
        cs = self.cluster_size
        for run in map(self._whole, self._runs()):
            host, kind, len_host = run.ofs_host, run.kind, run.len_host
            for k in range(run.num):
                yield GuestCluster((run.idx + k) * cs, kind, None if host is None else host + k * cs, len_host)

    def extents(self) -> Iterator[Extent]:
        """The guest disk in guest order as maximal :class:`Extent` runs (a huge unallocated range is one item)."""
        cs, end = self.cluster_size, self.len_virtual_disk
        cur: list[Any] | None = None  # [ofs_guest, length, kind, ofs_host, len_host]
        for run in map(self._whole, self._runs()):
            start = run.idx * cs
            length = min(run.num * cs, end - start)
            host = run.ofs_host if run.kind is not Kind.COMPRESSED else None
            len_host = 0 if host is None else run.len_host + (run.num - 1) * cs
            if cur is not None and cur[2] is run.kind and (
                (host is None and cur[3] is None) or (host is not None and cur[3] is not None and cur[3] + cur[4] == host)
            ):
                cur[1] += length
                cur[4] += len_host
                continue
            if cur is not None:
                yield Extent(*cur)
            cur = [start, length, run.kind, host, len_host]
        if cur is not None:
            yield Extent(*cur)

    def map(self, ofs_guest: int) -> GuestCluster:
        """The guest cluster holding guest offset ``ofs_guest`` (0 <= ofs_guest < len_virtual_disk)."""
        raise NotImplementedError

    def check_mapping(self) -> int:
        """Refuse a mapping ``qemu-img check`` would refuse (D29): one walk of the tables, no data read (raw: nothing to
        check). The number of data clusters (wholly or partly allocated; a raw image: its blocks)."""
        return self.num_guest_clusters

    def _check_guest_offset(self, ofs_guest: object) -> int:
        if isinstance(ofs_guest, bool) or not isinstance(ofs_guest, int) or not 0 <= ofs_guest < self.len_virtual_disk:
            raise JournalArgumentError(
                f"guest offset {ofs_guest!r} is outside the virtual disk (0 to {self.len_virtual_disk - 1})", source=self.name
            )
        return ofs_guest

    def readinto(self, ofs: int, buf: memoryview) -> int:
        """Fill ``buf`` from file offset ``ofs``; the bytes read, fewer than ``len(buf)`` only at the end of the file."""
        got = 0
        n = len(buf)
        while got < n:
            try:
                k = os.preadv(self._fd, [buf[got:]], ofs + got)
            except OSError as exc:
                raise JournalIOError(f"cannot read: {exc.strerror or exc}", ofs + got, source=self.name) from None
            if k == 0:
                break
            got += k
        return got

    def read(self, ofs: int, n: int) -> bytes:
        """Exactly ``n`` bytes at file offset ``ofs``; refused past the end of the file."""
        if ofs < 0 or n < 0:
            raise JournalArgumentError(f"cannot read {n} bytes at offset {ofs}", source=self.name)
        buf = bytearray(n)
        got = self.readinto(ofs, memoryview(buf))
        if got != n:
            raise JournalIOError(
                f"short read: {got} of {n} bytes at {ofs:#x}: the file ends at {self.len_file:#x}", ofs + got, source=self.name
            )
        return bytes(buf)

    def fileno(self) -> int:
        """The read-only descriptor of the image file."""
        return self._fd

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.cluster_size}-byte clusters, {self.len_virtual_disk} bytes>"


class RawImage(Image):
    """A raw image: the file is the guest disk, in blocks of ``block_size`` bytes (the last may be shorter)."""

    format = "raw"

    def __init__(self, name: str, file: BinaryIO, len_file: int, block_size: int) -> None:
        super().__init__(name, file, len_file)
        self.cluster_size = check_block_size(block_size)
        self.len_virtual_disk = len_file

    def _runs(self, first: int = 0, stop: int | None = None) -> Iterator[_Run]:
        full, rest = divmod(self.len_file, self.cluster_size)
        stop = self.num_guest_clusters if stop is None else stop
        if min(full, stop) > first:
            yield _Run(first, min(full, stop) - first, Kind.DATA, first * self.cluster_size, self.cluster_size)
        if rest and first <= full < stop:
            yield _Run(full, 1, Kind.DATA, full * self.cluster_size, rest)

    def map(self, ofs_guest: int) -> GuestCluster:
        start = self._check_guest_offset(ofs_guest) // self.cluster_size * self.cluster_size
        return GuestCluster(start, Kind.DATA, start, min(self.cluster_size, self.len_file - start))


_KINDS = {
    Qcow2.ClusterType.normal: Kind.DATA,
    Qcow2.ClusterType.zero_plain: Kind.ZERO,
    Qcow2.ClusterType.zero_allocated: Kind.ZERO,
    Qcow2.ClusterType.compressed: Kind.COMPRESSED,
    Qcow2.ClusterType.unallocated: Kind.UNALLOCATED,
}

_HEADER_RULES: dict[str, tuple[type[CorruptImageError] | type[UnsupportedImageError], str, str, str]] = {
    "/types/header/seq/1": (UnsupportedImageError, "version", "version", "qcow2 version {actual}: only versions 2 and 3 exist"),
    "/types/header/seq/3": (CorruptImageError, "header", "len_backing_file", "backing file name of {actual} bytes: at most 1023"),
    "/types/header/seq/4": (
        UnsupportedImageError, "cluster_size", "cluster_bits", "cluster_bits {actual}: clusters are 512 bytes to 2 MiB (9 to 21)"),
    "/types/header/seq/8": (CorruptImageError, "header", "ofs_l1_table", "the L1 table offset {actual:#x} is not cluster-aligned"),
    "/types/header/seq/9": (
        CorruptImageError, "header", "ofs_refcount_table", "the refcount table offset {actual:#x} is not cluster-aligned"),
    "/types/header/seq/12": (
        CorruptImageError, "header", "ofs_snapshots", "the snapshot table offset {actual:#x} is not cluster-aligned"),
    "/types/header/seq/6": (UnsupportedImageError, "encryption", "crypt_method",
                            "encrypted (crypt_method {actual} (unknown)): its clusters hold ciphertext, "
                            "whose hashes say nothing of the guest's data"),
    **dict.fromkeys(("/types/incompatible_features/seq/0", "/types/incompatible_features/seq/1"), (
        UnsupportedImageError, "unknown_incompatible_feature", "incompatible_features",
        "an incompatible feature bit that formats/qcow2.ksy does not know (bits 5-63) is set: the image would be misread")),
    "/types/incompatible_features/seq/2": (
        UnsupportedImageError, "extended_l2", "incompatible_features",
        "extended L2 entries with clusters under 16 KiB, which the spec forbids"),
    "/types/header/seq/16": (CorruptImageError, "header", "refcount_order", "refcount_order {actual}: at most 6"),
    "/types/header/seq/17": (
        CorruptImageError, "header", "len_header", "header_length {actual} breaks its rule (at least 104, a multiple of 8)"),
    "/types/header/seq/18": (
        CorruptImageError, "header", "compression_type", "compression_type {actual} disagrees with the compression type feature bit"),
}
"""The header rules of formats/qcow2.ksy (by the path its validation error names): which refusal, the field, and why."""


class Qcow2Image(Image):
    """A qcow2 image (versions 2 and 3) through the generated parser: ``qcow2`` is its ``Qcow2`` root."""

    format = "qcow2"

    def __init__(self, name: str, file: BinaryIO, len_file: int) -> None:
        super().__init__(name, file, len_file)
        try:
            self.qcow2: Any = Qcow2(KaitaiStream(file))
        except kaitaistruct.ValidationFailedError as exc:
            rule = _HEADER_RULES.get(exc.src_path)
            if rule is None:
                raise CorruptImageError(
                    "header", f"the qcow2 header breaks the rule {exc.src_path} of formats/qcow2.ksy", exc.io.pos(), source=name
                ) from None
            cls, code, field, text = rule
            actual = getattr(exc, "actual", None)
            raise cls(code, "unsupported qcow2 image: " * (cls is UnsupportedImageError) + text.format(actual=actual),
                      self._field_offset(field), source=name) from None
        except EOFError:
            raise CorruptImageError(
                "truncated", f"the file ({len_file} bytes) ends inside the qcow2 header or its extensions", len_file, source=name
            ) from None
        h = self.qcow2.header
        self.header: Any = h
        """The generated ``Header``: ``version``, ``cluster_bits``, ``num_l1_entries``..."""
        self.cluster_size = int(h.cluster_size)
        self.len_virtual_disk = int(h.len_virtual_disk)
        self.version = int(h.version)
        """2 or 3."""
        self.backing_file_name: str | None = self._backing_file_name()
        """The backing file's name, or None (bytes that are not UTF-8 shown escaped); its clusters are never read."""
        self.is_dirty = bool(h.is_dirty)
        self.has_extended_l2 = bool(h.has_extended_l2)
        """True when L2 entries have subclusters (32 per cluster): :meth:`guest_clusters` and :meth:`map` refuse a
        partly allocated cluster, which :mod:`qjournal.guest` reads by subcluster."""
        self.len_subcluster = self.cluster_size // 32 if self.has_extended_l2 else self.cluster_size
        """The unit of allocation: a 32nd of a cluster with extended L2 entries, else the cluster."""
        self.shared_clusters: dict[int, int] | None = None
        """The data clusters (host offset // cluster size) the active tables use more than once (refcount > 1, as a
        deduplicated image has) -> their number of uses, once :meth:`checked_runs` has walked them all; None before."""
        self._refuse_unsupported()
        self._check_l1_table()
        self._layout = L2Layout(self.qcow2)

    @property
    def extensions(self) -> list[Any]:
        """The generated header extensions (none when the area is empty, as when a v2 backing file name follows the header)."""
        return list(getattr(self.qcow2.header_extension_area, "extensions", None) or [])

    def _backing_file_name(self) -> str | None:
        """The backing file's name as the header records it; bytes that are not UTF-8 escaped (QEMU opens such images)."""
        try:
            return self.qcow2.backing_file_name  # type: ignore[no-any-return]
        except UnicodeDecodeError:
            h = self.header
            return os.pread(self._fd, int(h.len_backing_file), int(h.ofs_backing_file)).decode("utf-8", "backslashreplace")
        except EOFError:
            raise CorruptImageError(
                "truncated", f"the backing file name ({int(self.header.len_backing_file)} bytes at "
                f"{int(self.header.ofs_backing_file):#x}) runs past the end of the file ({self.len_file} bytes)",
                int(self.header.ofs_backing_file), source=self.name,
            ) from None

    def _check_l1_table(self) -> None:
        """Refuse an L1 table that cannot be where the header says, before a byte of it is read or allocated."""
        h = self.header
        ofs, num = int(h.ofs_l1_table), int(h.num_l1_entries)
        if not num:
            return
        where = self._field_offset("ofs_l1_table")
        if ofs < self.cluster_size:
            raise CorruptImageError(
                "header", f"the L1 table offset {ofs:#x} is inside the header's cluster (QEMU calls it corruption)",
                where, source=self.name,
            )
        if ofs + 8 * num > self.len_file:
            raise CorruptImageError(
                "truncated",
                f"the L1 table ({count_of(num, 'entry', 'entries')}, {8 * num} bytes at {ofs:#x}) runs past the end of the file "
                f"({self.len_file} bytes)",
                where, source=self.name,
            )

    def _field_offset(self, field: str) -> int:
        """Where the header field ``field`` starts, as the generated parser reads this file's header."""
        where, stopped = field_offsets(os.pread(self._fd, 4096, 0))
        ofs = where.get(field, stopped)
        return 0 if ofs is None else ofs

    def _refuse_unsupported(self) -> None:
        """Refuse, before any table is read, the features under which clusters cannot be mapped honestly."""
        h, name = self.header, self.name
        crypt = h.crypt_method
        if crypt != Qcow2.CryptMethod.none:
            what = crypt.name if isinstance(crypt, Qcow2.CryptMethod) else f"{int(crypt)} (unknown)"
            raise UnsupportedImageError(
                "encryption",
                f"unsupported qcow2 image: encrypted (crypt_method {what}): its clusters hold ciphertext, "
                f"whose hashes say nothing of the guest's data",
                self._field_offset("crypt_method"), source=name,
            )
        extensions = self.extensions
        if h.has_external_data_file or any(e.extension_type == Qcow2.HeaderExtensionType.external_data_file for e in extensions):
            raise UnsupportedImageError(
                "external_data_file",
                "unsupported qcow2 image: an external data file holds its clusters (incompatible feature bit 2), "
                "so host offsets are not offsets in this file",
                self._field_offset("incompatible_features"), source=name,
            )
        if h.is_corrupt:
            raise UnsupportedImageError(
                "corrupt_bit",
                "unsupported qcow2 image: the corrupt bit is set (incompatible feature bit 1): QEMU found its metadata "
                "inconsistent, so its mapping cannot be trusted; 'qemu-img check -r' repairs it",
                self._field_offset("incompatible_features"), source=name,
            )

    # -- walking the active tables ---------------------------------------------------------------
    def _pread_table(self, ofs: int, n: int, what: str) -> bytes:
        buf = bytearray(n if ofs + n <= self.len_file else 0)  # never more than the file holds, whatever a table claims
        if ofs + n > self.len_file or self.readinto(ofs, memoryview(buf)) != n:
            raise CorruptImageError(
                "truncated",
                f"{what} ({n} bytes at {ofs:#x}) runs past the end of the file ({self.len_file} bytes)",
                ofs, source=self.name,
            )
        return bytes(buf)

    def _entry_error(self, exc: Exception, table: str, ofs_entry: int, idx: int) -> CorruptImageError:
        """A parse failure of one L1 or L2 entry, as an error naming the entry's offset and the guest clusters it maps."""
        cs, n2 = self.cluster_size, int(self.header.num_l2_entries)
        first = idx * n2 * cs if table == "l1_entry" else idx * cs
        span = f"guest offsets {first:#x}-{first + n2 * cs - 1:#x}" if table == "l1_entry" else f"guest offset {first:#x}"
        if isinstance(exc, kaitaistruct.ValidationFailedError):
            why = f"breaks the rule {exc.src_path} of formats/qcow2.ksy"
            if table == "l1_entry":
                why += f" ({_L1_RULES.get(exc.src_path, 'a rule of the qcow2 specification')})"
            else:
                why += " (its host offset must be cluster-aligned, a compressed offset in range" + (
                    "; an allocated subcluster needs a host cluster and is not also a zero one)" if self.has_extended_l2 else ")")
        else:
            why = "cannot be read"
        name = f"L1 entry {idx}" if table == "l1_entry" else "L2 entry"
        return CorruptImageError(table, f"the {name} of {span} {why}", ofs_entry, source=self.name)

    def _l2_tables(self, first: int, stop: int, uses: HostUse | None = None) -> Iterator[tuple[int, int, bytes | None, int]]:
        """The one L1 -> L2 walk: guest clusters ``first`` to ``stop`` as ``(idx, count, l2_raw, ofs_raw)`` per L2 table.

        ``l2_raw`` holds the entries of guest clusters ``idx`` to ``idx + count``
        (one read of the part of the table they use), read at file offset
        ``ofs_raw``; it is None where the L1 entry has no L2 table, or where the
        L1 table ends before the cluster (then ``count`` runs to ``stop``).
        Each L1 entry is parsed by the generated ``L1Entry``; ``uses``, if given, is told of each L2 table.
        """
        h, root = self.header, self.qcow2
        n2 = int(h.num_l2_entries)
        if first >= stop:
            return
        i_first, i_stop = first // n2, -(-stop // n2)
        ofs_l1 = int(h.ofs_l1_table)
        in_table = max(0, min(i_stop, int(h.num_l1_entries)) - i_first)
        l1_raw = self._pread_table(ofs_l1 + 8 * i_first, 8 * in_table, f"the L1 table's first {i_first + in_table} entries")
        l1_stream = KaitaiStream(BytesIO(l1_raw))
        i = i_first
        while i < i_stop:
            idx = max(first, i * n2)
            k = i - i_first
            if k >= in_table:  # past the L1 table: unallocated (QEMU reads zeros or the backing file)
                yield idx, stop - idx, None, 0
                return
            if l1_raw[8 * k : 8 * k + 8] == _ZERO_ENTRY:  # no L2 table (the parser reads ofs_l2_table 0): the whole run
                rest = l1_raw[8 * k :]
                i_next = min(i + (len(rest) - len(rest.lstrip(b"\0"))) // 8, i_stop)
                yield idx, min(i_next * n2, stop) - idx, None, 0
                i = i_next
                continue
            count = min((i + 1) * n2, stop) - idx
            try:
                l1_stream.seek(8 * k)
                l1e = Qcow2.L1Entry(l1_stream, root, root)
                ofs_l2 = int(l1e.ofs_l2_table)
            except (kaitaistruct.KaitaiStructError, EOFError) as exc:
                raise self._entry_error(exc, "l1_entry", ofs_l1 + 8 * i, i) from None
            if not ofs_l2:
                yield idx, count, None, 0
            else:
                if uses is not None:
                    uses.table(ofs_l2, n2 * self._layout.len_entry, ofs_l1 + 8 * i)
                ofs_raw = ofs_l2 + (idx - i * n2) * self._layout.len_entry
                what = f"the L2 table of guest offsets {idx * self.cluster_size:#x} on"
                yield idx, count, self._pread_table(ofs_raw, count * self._layout.len_entry, what), ofs_raw
            i += 1

    def _runs(self, first: int = 0, stop: int | None = None, uses: HostUse | None = None) -> Iterator[_Run]:
        """Guest clusters ``first`` to ``stop`` as runs: consecutive entries of one kind whose host clusters follow each other.

        With extended L2 entries, a cluster whose subclusters are not all of one
        state is a run of its own, with ``sub`` = its (alloc, zero) bitmaps.
        ``uses`` (a :class:`qjournal.qcow2refs.HostUse`), if given, is told of
        every L2 table and host cluster the runs use, and refuses a mapping
        ``qemu-img check`` would refuse (D29).
        """
        stop = self.num_guest_clusters if stop is None else stop
        layout, cs, v2 = self._layout, self.cluster_size, self.version < 3
        ext = layout.extended
        for idx, count, raw, ofs_raw in self._l2_tables(first, stop, uses):
            if raw is None:
                yield _Run(idx, count, Kind.UNALLOCATED, None, 0)
                continue
            words = layout.words(raw)
            step = 2 if ext else 1
            start = num = 0
            kind: Kind | None = None
            host: int | None = None
            len_host = 0
            sub: tuple[int, int] | None = None
            nxt = nxt_bitmap = -1  # the words that would continue the run
            for j in range(count):
                word = words[step * j]
                bitmap = words[step * j + 1] if ext else 0
                if word == nxt and bitmap == nxt_bitmap:
                    num += 1
                    if host is not None:
                        nxt += cs
                    continue
                if kind is not None:
                    yield _Run(start, num, kind, host, len_host, sub)
                fast = layout.decode(word, bitmap)
                if fast is None:
                    kind, host, len_host, sub = self._parse_entry(raw, j, ofs_raw, idx + j)
                else:
                    kind, host, len_host, sub = Kind(fast[0]), *fast[1:]
                if v2 and kind is Kind.ZERO:
                    raise self._zero_in_v2(ofs_raw + layout.len_entry * j, idx + j)
                start, num = idx + j, 1
                if kind is Kind.COMPRESSED or sub is not None:
                    nxt = nxt_bitmap = -1
                else:
                    nxt, nxt_bitmap = word + (cs if host is not None else 0), bitmap
            if kind is not None:
                yield _Run(start, num, kind, host, len_host, sub)

    def check_mapping(self) -> int:
        return sum(run.num for run in self.checked_runs() if run.kind is Kind.DATA)

    def checked_runs(self) -> Iterator[_Run]:
        """Every run of the disk (:meth:`_runs`), the mapping checked as it goes by :class:`qjournal.qcow2refs.HostUse` (D29).

        Once every run was given, :attr:`shared_clusters` holds the data clusters the active tables use more than once.
        """
        uses = HostUse(self)
        for run in self._runs(uses=uses):
            if run.ofs_host is not None and run.kind is not Kind.COMPRESSED:
                uses.data(run.ofs_host, run.num, run.idx * self.cluster_size)
            yield run
        self.shared_clusters = uses.shared()

    def _parse_entry(self, raw: bytes, j: int, ofs_raw: int, idx: int) -> tuple[Kind, int | None, int, tuple[int, int] | None]:
        """Entry ``j`` of ``raw`` through the generated ``L2Entry``: its rule's error, or what the fast decode would not say."""
        stream = KaitaiStream(BytesIO(raw))
        stream.seek(self._layout.len_entry * j)
        try:
            e = Qcow2.L2Entry(stream, self.qcow2, self.qcow2)
            kind = _KINDS[e.cluster_type]
            if kind is Kind.COMPRESSED:
                return kind, int(e.ofs_compressed_data), int(e.len_compressed_data), None
            host = int(e.ofs_host_cluster)
        except (kaitaistruct.KaitaiStructError, EOFError) as exc:
            raise self._entry_error(exc, "l2_entry", ofs_raw + self._layout.len_entry * j, idx) from None
        return kind, host or None, self.cluster_size if host else 0, None

    def _zero_in_v2(self, ofs_entry: int, idx: int) -> CorruptImageError:
        return CorruptImageError(
            "zero_in_v2",
            f"the L2 entry of guest offset {idx * self.cluster_size:#x} has the zero flag, which a version 2 image "
            f"does not have (QEMU calls it corruption)",
            ofs_entry, source=self.name,
        )

    def map(self, ofs_guest: int) -> GuestCluster:
        """The guest cluster at ``ofs_guest``: the walk of :meth:`_runs` over that one cluster (one L1 and one L2 entry)."""
        idx = self._check_guest_offset(ofs_guest) // self.cluster_size
        run = self._whole(next(self._runs(idx, idx + 1)))
        return GuestCluster(idx * self.cluster_size, run.kind, run.ofs_host, run.len_host)


def open_image(
    path: str | os.PathLike[str], *, format: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE, force_share: bool = False,
) -> Image:
    """Open a disk image for reading: qcow2 when it starts with the qcow2 magic, else raw in blocks of ``block_size``.

    ``format`` (``"qcow2"`` or ``"raw"``) forces one: ``"raw"`` reads any file
    as raw, a qcow2 image too. Refused, with a :class:`UnsupportedImageError`
    naming the feature and the header's byte offset: encryption (a LUKS volume
    too), an external data file, the corrupt bit, unknown incompatible
    features, and (unless ``format="raw"``) QEMU's original qcow format and
    files that start like another image format whose blocks are not where its
    guest sees them (VMDK, VHD, VHDX, VDI, QED, Parallels), and a journal (a
    file whose first 4096 bytes are a journal cluster with HASH entries, as
    index writes one: arguments given in the wrong order). ``block_size``
    applies to raw images only.

    QEMU's image locks are honoured as ``qemu-img`` honours them
    (:func:`qjournal.qemulock.lock_for_reading`): an image another process
    holds open for writing or resizing is refused with an
    :class:`qjournal.qemulock.ImageInUseError`, unless ``force_share`` (``qemu-img -U``);
    while the image is open, a QEMU cannot start writing it.
    """
    if format not in (None, "qcow2", "raw"):
        raise JournalArgumentError(f'format must be "qcow2", "raw" or None (from the file), not {format!r}')
    name = os.fsdecode(path) if isinstance(path, (str, os.PathLike)) else repr(path)
    if not isinstance(path, (str, os.PathLike)):
        raise JournalArgumentError(f"an image is opened from a path, not {type(path).__name__}")
    check_openable(path, name, "a disk image")
    if format == "raw":
        check_block_size(block_size)
    try:
        file = open(path, "rb")  # noqa: SIM115 - the image owns it
    except OSError as exc:
        raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=name) from None
    try:
        lock_for_reading(file.fileno(), path=name, force_share=force_share)
        try:
            len_file = file.seek(0, os.SEEK_END)
            file.seek(0)
            head = os.pread(file.fileno(), LEN_SNIFF, 0)
        except OSError as exc:
            raise JournalIOError(f"cannot read: {exc.strerror or exc}", 0, source=name) from None
        if format == "qcow2" or (format is None and head.startswith(QCOW2_MAGIC)):
            if not head.startswith(QCOW2_MAGIC):
                raise CorruptImageError("header", f"not a qcow2 image: it does not start with the magic {QCOW2_MAGIC!r}", 0,
                                        source=name)
            if identify(head, (QCOW,)) is not None:
                raise UnsupportedImageError(
                    "version",
                    f"unsupported image: {QCOW.what}; convert it to qcow2 first (qemu-img convert -f qcow -O qcow2 IMAGE NEW.qcow2)",
                    4, source=name,
                )
            return Qcow2Image(name, file, len_file)
        if format is None:
            luks = identify(head, (LUKS,))
            if luks is not None:
                raise UnsupportedImageError(
                    "encryption",
                    f"unsupported image: {luks.what} (magic {luks.magic!r}): its blocks hold ciphertext, whose hashes say "
                    f"nothing of the guest's data (as with LUKS inside qcow2); index the opened volume "
                    f"(/dev/mapper/NAME) instead, or read the file as it is (${{format_raw}})",
                    luks.ofs, source=name,
                )
            other = identify(head, OTHER_FORMATS)
            if other is not None:
                raise UnsupportedImageError(
                    "other_format",
                    f"unsupported image: it starts like {other.what} (magic {other.magic!r}), whose blocks are not where "
                    f"its guest sees them; convert it (qemu-img convert -O qcow2), or read the file as it is "
                    f"(${{format_raw}})",
                    other.ofs, source=name,
                )
            if len_file >= LEN_JOURNAL_CLUSTER and holds_journal_cluster(os.pread(file.fileno(), LEN_JOURNAL_CLUSTER, 0)):
                raise UnsupportedImageError(  # a swapped pair of arguments, most likely
                    "journal_file",
                    "not a disk image: it starts with a journal cluster (HASH entries, as qjournal index writes them); "
                    "an image command reads the disk a journal describes, so give the image (index IMAGE JOURNAL, "
                    "verify JOURNAL IMAGE), or read the file as it is (${format_raw})",
                    0, source=name,
                )
        return RawImage(name, file, len_file, block_size)
    except BaseException:
        file.close()
        raise
