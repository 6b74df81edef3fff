"""Host clusters the active tables use: a mapping ``qemu-img check`` would refuse is refused before any data is read.

Strategy. One walk of the active L1 and L2 tables (the one the index already
makes to count allocated clusters) marks every host cluster it meets in
bitmaps of one bit per host cluster of the file (bounded by the file: 32 MiB
for a 1 TiB file of 4 KiB clusters): the metadata (the header's cluster, the
L1 table, the refcount table and its blocks, each L2 table), the data (the
host cluster of every data cluster, and of every preallocated zero cluster),
and the L2 tables again on their own. A data cluster on metadata, metadata on
a data cluster, or a host cluster past the end of the file is a corrupt
image. A data cluster met a second time is looked up in the refcount table:
the active tables may use it no more often than its refcount allows
(refcount > 1 is how QEMU shares a cluster), so a "zip bomb" whose every L2
entry points at one data cluster is refused at its second use. An L2 table
used twice by the active L1 table is refused whatever its refcount (D31):
QEMU never writes that, and it would let a file of a few clusters name a
guest disk of any size. What remains is bounded by the file: each L2 entry
walked lies in it, and a data cluster used more than once is read and hashed
once (:meth:`qjournal.guest.GuestReader.blocks`' ``once``). With the dirty bit
set (D29) refcounts may lag behind: a refcount of 0 counts as 1 there.
Compressed clusters share host clusters by design and are not counted;
internal snapshots' tables are not walked.

The refcount table entries and blocks are read with the generated parser's
types (``RefcountTableEntry``, ``RefcountBlock``), looked up only for a host
cluster used again; the table's entries are scanned in bulk for the blocks'
offsets (bits 9-63, as ``ofs_refcount_block`` reads them).
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import TYPE_CHECKING

import kaitaistruct
from kaitaistruct import KaitaiStream

from qjournal.errors import CorruptImageError
from qjournal.generated.qcow2 import Qcow2

if TYPE_CHECKING:
    from qjournal.image import Qcow2Image

__all__ = ["HostUse"]

_OFS_MASK = (1 << 64) - (1 << 9)
"""Bits 9-63 of a refcount table entry: ``ofs_refcount_block`` (formats/qcow2.ksy)."""


def _test_and_set(bm: bytearray, a: int, b: int) -> int:
    """Set bits [a, b) of ``bm``; return the first of them that was already set, or -1."""
    first = -1
    i = a
    while i < b and i % 8:  # the leading bits
        if bm[i >> 3] >> (i & 7) & 1 and first < 0:
            first = i
        bm[i >> 3] |= 1 << (i & 7)
        i += 1
    j = b - b % 8
    if j > i:  # whole bytes
        lo, hi = i >> 3, j >> 3
        if first < 0 and bm.count(0, lo, hi) != hi - lo:
            k = next(k for k in range(lo, hi) if bm[k])
            first = 8 * k + ((bm[k] & -bm[k]).bit_length() - 1)
        bm[lo:hi] = b"\xff" * (hi - lo)
        i = j
    while i < b:  # the trailing bits
        if bm[i >> 3] >> (i & 7) & 1 and first < 0:
            first = i
        bm[i >> 3] |= 1 << (i & 7)
        i += 1
    return first


def _any_set(bm: bytearray, a: int, b: int) -> int:
    """The first set bit of [a, b) of ``bm``, or -1."""
    for i in range(a, min(b, a + (-a % 8))):
        if bm[i >> 3] >> (i & 7) & 1:
            return i
    lo, hi = -(-a // 8), b // 8
    if hi > lo and bm.count(0, lo, hi) != hi - lo:
        k = next(k for k in range(lo, hi) if bm[k])
        return 8 * k + ((bm[k] & -bm[k]).bit_length() - 1)
    for i in range(max(a, 8 * hi), b):
        if bm[i >> 3] >> (i & 7) & 1:
            return i
    return -1


class HostUse:
    """The host clusters the active tables of ``img`` use so far (see the module doc); :meth:`table` and :meth:`data` add to them."""

    def __init__(self, img: Qcow2Image) -> None:
        self.img = img
        self.cs = img.cluster_size
        self.num = -(-img.len_file // self.cs)
        self._meta = bytearray(-(-self.num // 8))
        self._data = bytearray(-(-self.num // 8))
        self._l2 = bytearray(-(-self.num // 8))  # the L2 tables, also in _meta
        self._uses: dict[int, int] = {}  # data cluster used more than once -> uses so far
        self._refcounts: dict[int, int] = {}  # ... -> its refcount
        self._blocks: dict[int, list[int] | bytes] = {}  # refcount block offset -> its refcounts (the last few)
        h = img.header
        self._mark_meta(0, self.cs, "the header")
        self._mark_meta(int(h.ofs_l1_table), 8 * int(h.num_l1_entries), "the L1 table")
        ofs_rt, len_rt = int(h.ofs_refcount_table), int(h.num_refcount_table_clusters) * self.cs
        self._mark_meta(ofs_rt, len_rt, "the refcount table")
        raw = img._pread_table(ofs_rt, len_rt, "the refcount table")  # a short file is a truncated image
        self._rt = raw
        for k, (word,) in enumerate(struct.iter_unpack(">Q", raw)):
            if word & _OFS_MASK:
                self._mark_meta(word & _OFS_MASK, self.cs, f"the refcount block of refcount table entry {k}")

    def _corrupt(self, code: str, ofs: int, why: str) -> CorruptImageError:
        return CorruptImageError(code, why + " (qemu-img check refuses it too)", ofs, source=self.img.name)

    def _range(self, ofs: int, length: int, what: str) -> tuple[int, int]:
        a, b = ofs // self.cs, -(-(ofs + length) // self.cs)
        if b > self.num:
            raise self._corrupt("truncated", ofs, f"{what} ({length} bytes at {ofs:#x}) runs past the end of the file "
                                                  f"({self.img.len_file} bytes)")
        return a, b

    def _mark_meta(self, ofs: int, length: int, what: str) -> None:
        if not length:
            return
        a, b = self._range(ofs, length, what)
        if (k := _test_and_set(self._meta, a, b)) >= 0:
            raise self._corrupt("overlap", k * self.cs, f"{what} overlaps other metadata at host cluster {k * self.cs:#x}")

    def table(self, ofs_l2: int, len_l2: int, where: int) -> None:
        """An L2 table at ``ofs_l2`` (the L1 entry at ``where`` points at it): refused on data or other metadata, or used twice."""
        a, b = self._range(ofs_l2, len_l2, f"the L2 table of the L1 entry at {where:#x}")
        if (k := _any_set(self._data, a, b)) >= 0:
            raise self._corrupt("overlap", where, f"the L1 entry at {where:#x} points at an L2 table at {ofs_l2:#x}, a data "
                                                  f"cluster of the guest disk")
        if (k := _test_and_set(self._l2, a, b)) >= 0:  # whatever its refcount says (D31)
            raise CorruptImageError(
                "shared_l2_table",
                f"the L1 entry at {where:#x} uses the L2 table at host cluster {k * self.cs:#x} again: one L1 table never "
                f"holds an L2 table twice (QEMU shares L2 tables between the active table and snapshots, never inside "
                f"one table), and walking it would repeat the same guest range (refused whatever its refcount says)",
                where, source=self.img.name,
            )
        self._mark_meta(ofs_l2, len_l2, f"the L2 table of the L1 entry at {where:#x}")

    def data(self, ofs_host: int, num: int, ofs_guest: int) -> None:
        """``num`` host clusters from ``ofs_host``, mapped from guest offset ``ofs_guest`` on: refused on metadata, or used
        more often than their refcount."""
        a, b = self._range(ofs_host, num * self.cs, f"the data clusters of guest offset {ofs_guest:#x} on")
        if (k := _any_set(self._meta, a, b)) >= 0:
            raise self._corrupt("overlap", k * self.cs, f"the guest cluster at {ofs_guest + (k - a) * self.cs:#x} is mapped "
                                                        f"to host cluster {k * self.cs:#x}, which holds the image's metadata")
        k = _any_set(self._data, a, b)
        while k >= 0:  # each host cluster used before: counted against its refcount
            self._again(k, k * self.cs, f"the guest cluster at {ofs_guest + (k - a) * self.cs:#x}", "data cluster")
            k = _any_set(self._data, k + 1, b) if k + 1 < b else -1
        _test_and_set(self._data, a, b)

    def _again(self, k: int, where: int, who: str, what: str) -> None:
        """Host cluster ``k`` used once more: refused past its refcount."""
        uses = self._uses.get(k, 1) + 1
        refcount = self._refcounts.get(k)
        if refcount is None:  # looked up once per shared cluster, however many uses follow
            refcount = self._refcounts[k] = self.refcount(k)
        if self.img.is_dirty:
            refcount = max(refcount, 1)
        if uses > refcount:
            raise self._corrupt(
                "refcount", where,
                f"{who} uses the {what} at host cluster {k * self.cs:#x} again ({uses} uses so far), but its "
                f"refcount is {refcount}: the image maps one host cluster to more places than it counts",
            )
        self._uses[k] = uses

    def shared(self) -> dict[int, int]:
        """The data clusters (numbers: offset // cluster size) used more than once so far -> their uses (the walk's own
        dict, not a copy: one entry per shared cluster is kept once)."""
        return self._uses

    def refcount(self, k: int) -> int:
        """The refcount of host cluster ``k`` (0 where the refcount table has no block for it)."""
        root, h = self.img.qcow2, self.img.header
        per_block = int(h.num_refcount_block_entries)
        i, j = divmod(k, per_block)
        if 8 * i + 8 > len(self._rt):
            return 0
        try:
            entry = Qcow2.RefcountTableEntry(KaitaiStream(BytesIO(self._rt[8 * i : 8 * i + 8])), root, root)
            ofs = int(entry.ofs_refcount_block)
            if not ofs:
                return 0
            block = self._blocks.get(ofs)
            if block is None:
                raw = self.img._pread_table(ofs, self.cs, f"the refcount block of refcount table entry {i}")
                parsed = Qcow2.RefcountBlock(KaitaiStream(BytesIO(raw)), root, root)
                bits = int(h.refcount_bits)
                block = list(parsed.refcounts) if bits >= 8 else bytes(parsed.packed_refcounts)
                if len(self._blocks) >= 16:
                    self._blocks.pop(next(iter(self._blocks)))
                self._blocks[ofs] = block
        except (kaitaistruct.KaitaiStructError, EOFError) as exc:
            raise self._corrupt("truncated", int(h.ofs_refcount_table) + 8 * i,
                                f"the refcount of host cluster {k * self.cs:#x} cannot be read: {exc}") from None
        if isinstance(block, list):
            return int(block[j])
        bits = int(h.refcount_bits)  # packed, lowest bits first within a byte (as QEMU reads them)
        return block[j * bits // 8] >> (j * bits % 8) & ((1 << bits) - 1)
