"""Writing qcow2 version 3 images: the qcow2 reader's mirror, in formats/qcow2.ksy's names.

Strategy. The generated parser (:mod:`qjournal.generated.qcow2`) reads every
byte this module writes; the tests read each image back through it and
compare every field, entry and refcount with what was meant. The writer lays
an image out in one fixed order, decided before a byte is written
(:class:`Layout`): the header cluster (header, header extensions, end marker,
backing file name), the L1 table, the refcount table, the refcount blocks,
the L2 tables, then the data clusters. Every metadata cluster has refcount 1;
a data cluster's refcount is the number of L2 entries that point to it, which
the caller gives. Each rule has one home here:

- alignment: every structure starts on a cluster boundary (:class:`Layout`,
  :func:`check_aligned`);
- COPIED (bit 63 of an L1 or L2 entry): set exactly when the refcount of what
  the entry points to is 1 (:func:`is_copied`): QEMU copies on write a cluster
  whose entry lacks it, and writes in place one whose entry has it;
- the refcount width: ``refcount_order`` 4, 16-bit refcounts (:data:`REFCOUNT_ORDER`,
  :data:`MAX_REFCOUNT`): a caller must not share a cluster more often;
- the zero flag: the standard descriptor's ``reads_as_zeros`` bit with no host
  cluster (:data:`L2_ENTRY_ZERO`), which only version 3 has.

Writes are positioned (``os.pwrite``) on a descriptor the caller owns; which
file that is, and how it comes into place, is the caller's business.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.generated.qcow2 import Qcow2
from qjournal.image import MAX_CLUSTER_SIZE, MIN_CLUSTER_SIZE, QCOW2_MAGIC

__all__ = [
    "FLAG_COPIED",
    "L2_ENTRY_UNALLOCATED",
    "L2_ENTRY_ZERO",
    "LEN_HEADER",
    "MAX_REFCOUNT",
    "REFCOUNT_ORDER",
    "VERSION",
    "Layout",
    "Qcow2Writer",
    "check_aligned",
    "header_cluster",
    "is_copied",
    "l1_entry",
    "l2_entry",
]

VERSION = 3
"""The header's ``version``: 3 (QEMU's compat 1.1), the first with the zero flag."""
LEN_HEADER = 104
"""The header's ``len_header``: the version 3 fields up to ``refcount_order`` and ``len_header`` (no
``compression_type``: the image has no compressed cluster)."""
REFCOUNT_ORDER = 4
"""The header's ``refcount_order``: refcounts of 1 << 4 = 16 bits, QEMU's default."""
REFCOUNT_BITS = 1 << REFCOUNT_ORDER
MAX_REFCOUNT = (1 << REFCOUNT_BITS) - 1
"""The largest refcount a 16-bit refcount block entry holds: a cluster shared more often needs a second copy."""
LEN_ENTRY = 8
"""Bytes of an L1, L2 (not extended) and refcount table entry."""
FLAG_COPIED = 1 << 63
"""``is_copied`` of an L1 or L2 entry (bit 63)."""
FLAG_READS_AS_ZEROS = 1
"""``reads_as_zeros`` of a standard cluster descriptor (bit 0)."""
L2_ENTRY_ZERO = FLAG_READS_AS_ZEROS
"""An L2 entry that reads as zeros with no host cluster (the .ksy's ``cluster_type::zero_plain``)."""
L2_ENTRY_UNALLOCATED = 0
"""An L2 entry with no storage: the cluster reads from the backing file, or as zeros (``cluster_type::unallocated``)."""
_OFS_MASK = ((1 << 56) - 1) & ~((1 << 9) - 1)
"""Bits 9-55: the host offset field of an L1 entry and of a standard cluster descriptor."""
_ZEROS = memoryview(bytes(1 << 20))
_EXT_END = Qcow2.HeaderExtensionType.end.value
_EXT_BACKING_FILE_FORMAT = Qcow2.HeaderExtensionType.backing_file_format.value
_HEADER = struct.Struct(">4sIQIIQIIQQIIQQQQII")
"""The version 3 header up to ``len_header`` (formats/qcow2.ksy ``header`` seq, bytes 0-103)."""
_EXTENSION = struct.Struct(">II")
"""A header extension's ``extension_type`` and ``len_data``."""
MAX_LEN_BACKING_FILE = 1023
"""The longest backing file name QEMU accepts (the .ksy's ``len_backing_file`` rule)."""


def is_copied(refcount: int) -> bool:
    """The COPIED rule: an L1 or L2 entry has bit 63 set exactly when what it points to has refcount 1."""
    return refcount == 1


def check_aligned(ofs: int, cluster_size: int, what: str) -> int:
    """``ofs`` if it is a non-zero multiple of ``cluster_size`` below 2^56 (the offset fields' bits 9-55), else an error."""
    if ofs <= 0 or ofs % cluster_size or ofs & ~_OFS_MASK:
        raise JournalArgumentError(f"{what} at {ofs:#x}: not a cluster-aligned offset of a qcow2 image ({cluster_size}-byte clusters)")
    return ofs


def l1_entry(ofs_l2_table: int, refcount: int = 1) -> int:
    """The L1 entry pointing at the L2 table at ``ofs_l2_table`` (``is_copied`` by the table's refcount)."""
    return ofs_l2_table | (FLAG_COPIED if is_copied(refcount) else 0)


def l2_entry(ofs_host_cluster: int, refcount: int) -> int:
    """The L2 entry of a standard cluster stored at ``ofs_host_cluster`` (``is_copied`` by its refcount)."""
    if not 1 <= refcount <= MAX_REFCOUNT:
        raise JournalArgumentError(
            f"refcount {refcount} of the cluster at {ofs_host_cluster:#x}: 1 to {MAX_REFCOUNT} with refcount_order 4")
    return ofs_host_cluster | (FLAG_COPIED if is_copied(refcount) else 0)


def _clusters(n_bytes: int, cluster_size: int) -> int:
    return -(-n_bytes // cluster_size)


@dataclass(frozen=True)
class Layout:
    """Where every structure of an image goes: header, L1, refcount table and blocks, L2 tables, data clusters.

    Offsets are the header's names (``ofs_l1_table``, ``ofs_refcount_table``);
    ``ofs_l2_tables`` and ``ofs_data`` are where the L2 tables and the data
    clusters start, one cluster each, in the order the caller numbers them.
    """

    cluster_size: int
    len_virtual_disk: int
    num_l2_tables: int
    num_data_clusters: int

    def __post_init__(self) -> None:
        cs = self.cluster_size
        if not MIN_CLUSTER_SIZE <= cs <= MAX_CLUSTER_SIZE or cs & (cs - 1):
            raise JournalArgumentError(f"cluster size {cs}: a power of two from {MIN_CLUSTER_SIZE} bytes to {MAX_CLUSTER_SIZE} (2 MiB)")
        if self.len_virtual_disk < 0 or self.num_l2_tables < 0 or self.num_data_clusters < 0:
            raise JournalArgumentError(f"a negative size in {self!r}")
        if self.num_l2_tables > self.num_l1_entries:
            raise JournalArgumentError(f"{self.num_l2_tables} L2 tables for {self.num_l1_entries} L1 entries")

    @property
    def cluster_bits(self) -> int:
        return self.cluster_size.bit_length() - 1

    @property
    def num_l2_entries(self) -> int:
        """Entries of one L2 table (one cluster of 8-byte entries)."""
        return self.cluster_size // LEN_ENTRY

    @property
    def num_guest_clusters(self) -> int:
        return _clusters(self.len_virtual_disk, self.cluster_size)

    @property
    def num_l1_entries(self) -> int:
        """The header's ``num_l1_entries``: enough L2 tables' worth for the whole guest disk."""
        return _clusters(self.num_guest_clusters, self.num_l2_entries)

    @property
    def num_refcount_block_entries(self) -> int:
        return self.cluster_size * 8 // REFCOUNT_BITS

    @property
    def ofs_l1_table(self) -> int:
        """The cluster after the header's; 0 for an empty disk, whose L1 table has no entry (as QEMU writes it)."""
        return self.cluster_size if self.num_l1_entries else 0

    @property
    def num_l1_clusters(self) -> int:
        """Clusters of the L1 table."""
        return _clusters(LEN_ENTRY * self.num_l1_entries, self.cluster_size)

    @property
    def _num_before_refcounts(self) -> int:
        return 1 + self.num_l1_clusters

    @functools.cached_property
    def _num_refcounted(self) -> tuple[int, int]:
        """(refcount table clusters, refcount blocks): the smallest that cover every cluster, themselves included."""
        fixed = self._num_before_refcounts + self.num_l2_tables + self.num_data_clusters
        table = blocks = 0
        while True:
            new_blocks = _clusters(fixed + table + blocks, self.num_refcount_block_entries)
            new_table = max(1, _clusters(LEN_ENTRY * new_blocks, self.cluster_size))
            if (new_table, new_blocks) == (table, blocks):
                return table, blocks
            table, blocks = new_table, new_blocks

    @property
    def ofs_refcount_table(self) -> int:
        return self._num_before_refcounts * self.cluster_size

    @property
    def num_refcount_table_clusters(self) -> int:
        return self._num_refcounted[0]

    @property
    def num_refcount_blocks(self) -> int:
        return self._num_refcounted[1]

    @property
    def ofs_refcount_blocks(self) -> int:
        return self.ofs_refcount_table + self.num_refcount_table_clusters * self.cluster_size

    @property
    def ofs_l2_tables(self) -> int:
        return self.ofs_refcount_blocks + self.num_refcount_blocks * self.cluster_size

    @property
    def ofs_data(self) -> int:
        return self.ofs_l2_tables + self.num_l2_tables * self.cluster_size

    @property
    def num_metadata_clusters(self) -> int:
        """Clusters before the data: header, L1, refcount table and blocks, L2 tables (each refcount 1)."""
        return self.ofs_data // self.cluster_size

    @property
    def num_clusters(self) -> int:
        """Every cluster of the file."""
        return self.num_metadata_clusters + self.num_data_clusters

    @property
    def len_file(self) -> int:
        """The image file's size: every cluster whole."""
        return self.num_clusters * self.cluster_size

    def ofs_l2_table(self, k: int) -> int:
        """Where L2 table number ``k`` (0-based, in the caller's order) goes."""
        if not 0 <= k < self.num_l2_tables:
            raise JournalArgumentError(f"L2 table {k} of {self.num_l2_tables}")
        return self.ofs_l2_tables + k * self.cluster_size

    def ofs_data_cluster(self, i: int) -> int:
        """Where data cluster number ``i`` (0-based, in the caller's order) goes."""
        if not 0 <= i < self.num_data_clusters:
            raise JournalArgumentError(f"data cluster {i} of {self.num_data_clusters}")
        return self.ofs_data + i * self.cluster_size


def header_cluster(layout: Layout, backing_file_name: str | None = None, backing_format: str | None = None) -> bytes:
    """The first cluster: the header, the backing file format extension if any, the end marker, the backing file name."""
    cs = layout.cluster_size
    extensions = b""
    if backing_format is not None:
        if backing_file_name is None:
            raise JournalArgumentError("a backing file format without a backing file name")
        data = backing_format.encode()
        extensions += _EXTENSION.pack(_EXT_BACKING_FILE_FORMAT, len(data)) + data + bytes(-len(data) % 8)
    extensions += _EXTENSION.pack(_EXT_END, 0)
    name = b"" if backing_file_name is None else os.fsencode(backing_file_name)
    if backing_file_name is not None and not 1 <= len(name) <= MAX_LEN_BACKING_FILE:
        raise JournalArgumentError(f"backing file name of {len(name)} bytes: 1 to {MAX_LEN_BACKING_FILE}")
    ofs_backing_file = LEN_HEADER + len(extensions) if name else 0
    if LEN_HEADER + len(extensions) + len(name) > cs:
        raise JournalArgumentError(
            f"the header, its extensions and the backing file name take {LEN_HEADER + len(extensions) + len(name)} bytes: "
            f"more than one {cs}-byte cluster; choose a larger cluster size"
        )
    header = _HEADER.pack(
        QCOW2_MAGIC, VERSION, ofs_backing_file, len(name), layout.cluster_bits, layout.len_virtual_disk,
        0,  # crypt_method: none
        layout.num_l1_entries, layout.ofs_l1_table, layout.ofs_refcount_table, layout.num_refcount_table_clusters,
        0, 0,  # num_snapshots, ofs_snapshots
        0, 0, 0,  # incompatible, compatible, autoclear features
        REFCOUNT_ORDER, LEN_HEADER,
    )
    assert len(header) == LEN_HEADER
    out = header + extensions + name
    return out + bytes(cs - len(out))


def _be64(values: Sequence[int] | array[int]) -> bytes:
    """8-byte big-endian entries."""
    a = values if isinstance(values, array) and values.typecode == "Q" else array("Q", values)
    if sys.byteorder == "little":
        a = array("Q", a)
        a.byteswap()
    return a.tobytes()


class Qcow2Writer:
    """Writes the structures of one :class:`Layout` into a file descriptor the caller owns, by positioned writes."""

    def __init__(self, fd: int, layout: Layout, name: str) -> None:
        self.fd = fd
        self.layout = layout
        self.name = name
        """The file's name, for messages."""

    def pwrite(self, data: bytes | bytearray | memoryview, ofs: int) -> None:
        """Write all of ``data`` at ``ofs``."""
        view = memoryview(data)
        done = 0
        while done < len(view):
            try:
                n = os.pwrite(self.fd, view[done:], ofs + done)
            except OSError as exc:
                raise JournalIOError(f"cannot write: {exc.strerror or exc}", ofs + done, source=self.name) from None
            done += n

    def write_header(self, backing_file_name: str | None = None, backing_format: str | None = None) -> None:
        """The header cluster (cluster 0)."""
        self.pwrite(header_cluster(self.layout, backing_file_name, backing_format), 0)

    def write_l1_table(self, l2_tables: Sequence[int]) -> None:
        """The L1 table: ``l2_tables[i]`` is the number of the L2 table of L1 entry ``i``, or -1 for none."""
        lay = self.layout
        if len(l2_tables) != lay.num_l1_entries:
            raise JournalArgumentError(f"{len(l2_tables)} L1 entries given for {lay.num_l1_entries}")
        entries = array("Q", (0 if k < 0 else l1_entry(lay.ofs_l2_table(k)) for k in l2_tables))
        raw = _be64(entries)
        if lay.num_l1_clusters:
            self.pwrite(raw + bytes(lay.num_l1_clusters * lay.cluster_size - len(raw)), lay.ofs_l1_table)

    def write_l2_table(self, k: int, entries: Sequence[int] | array[int]) -> None:
        """L2 table ``k``: its entries (made by :func:`l2_entry`, or :data:`L2_ENTRY_ZERO`, :data:`L2_ENTRY_UNALLOCATED`)."""
        lay = self.layout
        if len(entries) > lay.num_l2_entries:
            raise JournalArgumentError(f"{len(entries)} entries for an L2 table of {lay.num_l2_entries}")
        raw = _be64(entries)
        self.pwrite(raw + bytes(lay.cluster_size - len(raw)), lay.ofs_l2_table(k))

    def write_data(self, i: int, data: bytes | bytearray | memoryview) -> None:
        """Data clusters ``i`` onwards: ``data`` is a whole number of clusters."""
        lay = self.layout
        n = len(data) // lay.cluster_size
        if len(data) % lay.cluster_size or (n and i + n > lay.num_data_clusters):
            raise JournalArgumentError(f"{len(data)} bytes of data at data cluster {i}: whole clusters of {lay.num_data_clusters}")
        if n:
            self.pwrite(data, lay.ofs_data_cluster(i))

    def write_data_at(self, i: int, ofs_in: int, data: bytes | bytearray | memoryview) -> None:
        """``data`` into data clusters ``i`` onwards, ``ofs_in`` bytes in."""
        lay = self.layout
        if ofs_in < 0 or (data and lay.ofs_data_cluster(i) + ofs_in + len(data) > lay.len_file):
            raise JournalArgumentError(f"{len(data)} bytes at {ofs_in} of data cluster {i}: past the image's data clusters")
        if data:
            self.pwrite(data, lay.ofs_data_cluster(i) + ofs_in)

    def write_zeros(self, i: int, ofs_in: int, length: int) -> None:
        """``length`` zero bytes into data clusters ``i`` onwards, ``ofs_in`` bytes in (no hole in a data cluster)."""
        done = 0
        while done < length:
            n = min(length - done, len(_ZEROS))
            self.write_data_at(i, ofs_in + done, _ZEROS[:n])
            done += n

    def start_writeback(self, i: int, n: int) -> None:
        """Start writing data clusters ``i`` to ``i + n`` to the disk now, without waiting (the final fsync then has
        less left to wait for): ``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages, where the system has it."""
        lay = self.layout
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(self.fd, lay.ofs_data_cluster(i), n * lay.cluster_size, os.POSIX_FADV_DONTNEED)

    def copy_data(self, i: int, ofs_in: int, fd_src: int, ofs_src: int, length: int) -> None:
        """``length`` bytes of file ``fd_src`` at ``ofs_src`` into data clusters ``i`` onwards, ``ofs_in`` bytes in.

        By ``copy_file_range`` (no copy through this process; a reflink where
        the file system can), else by positioned reads and writes.
        """
        lay = self.layout
        if ofs_in < 0 or length < 0 or (length and lay.ofs_data_cluster(i) + ofs_in + length > lay.len_file):
            raise JournalArgumentError(f"{length} bytes at {ofs_in} of data cluster {i}: past the image's data clusters")
        ofs = lay.ofs_data_cluster(i) + ofs_in if length else 0
        done = 0
        while done < length:
            try:
                n = os.copy_file_range(fd_src, self.fd, length - done, ofs_src + done, ofs + done)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ETXTBSY):
                    raise JournalIOError(f"cannot copy into the image: {exc.strerror or exc}", ofs + done, source=self.name) from None
                n = 0
            if n == 0:  # not supported here, or the source ended: read and write
                chunk = os.pread(fd_src, min(length - done, 8 << 20), ofs_src + done)
                if not chunk:
                    raise JournalIOError(f"the source file ends at {ofs_src + done:#x}, inside what is copied", source=self.name)
                self.pwrite(chunk, ofs + done)
                n = len(chunk)
            done += n

    def write_refcounts(self, data_refcounts: Sequence[int] | memoryview) -> None:
        """The refcount table and blocks: 1 for every metadata cluster, ``data_refcounts[i]`` for data cluster ``i``."""
        lay = self.layout
        if len(data_refcounts) != lay.num_data_clusters:
            raise JournalArgumentError(f"{len(data_refcounts)} refcounts for {lay.num_data_clusters} data clusters")
        cs, per_block = lay.cluster_size, lay.num_refcount_block_entries
        num_meta, total = lay.num_metadata_clusters, lay.num_clusters
        table = [lay.ofs_refcount_blocks + b * cs for b in range(lay.num_refcount_blocks)]
        raw = _be64(table)
        self.pwrite(raw + bytes(lay.num_refcount_table_clusters * cs - len(raw)), lay.ofs_refcount_table)
        for b in range(lay.num_refcount_blocks):
            first, end = b * per_block, min((b + 1) * per_block, total)
            block = array("H")
            if first < num_meta:
                block.extend(array("H", [1]) * (min(end, num_meta) - first))
            lo, hi = max(first, num_meta) - num_meta, end - num_meta
            if hi > lo:
                part = array("H", data_refcounts[lo:hi])
                if any(not 1 <= r <= MAX_REFCOUNT for r in part):
                    raise JournalArgumentError(f"a data cluster from {lo} to {hi - 1} has no refcount from 1 to {MAX_REFCOUNT}")
                block.extend(part)
            if sys.byteorder == "little":
                block.byteswap()
            raw = block.tobytes()
            self.pwrite(raw + bytes(cs - len(raw)), lay.ofs_refcount_blocks + b * cs)
