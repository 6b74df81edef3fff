"""What the generated qcow2 parser reads, learned from the parser itself: header field offsets and L2 entry masks.

Strategy. :mod:`qjournal.image` needs two facts about the layout that the
generated parser (``formats/qcow2.ksy``) knows but does not export: where a
header field starts (to name it in a refusal) and which bits of an L2 entry
mean what (to decode a whole table at once instead of one ``L2Entry`` object
per entry). Neither is written here: :func:`field_offsets` watches the parser
read a header (a field starts where its first read began), and
:class:`L2Layout` parses one-bit words with the parser and keeps what each bit
did. Change the .ksy and both follow; a test checks the bulk decode against
the parser's entries on real images and on random words.
"""

from __future__ import annotations

import contextlib
import struct
from io import BytesIO
from typing import Any

import kaitaistruct
from kaitaistruct import KaitaiStream

from qjournal.generated.qcow2 import Qcow2

__all__ = ["L2Layout", "field_offsets"]


class _MarkingStream(KaitaiStream):  # type: ignore[misc] # kaitaistruct is untyped
    """A stream that notes where each field of the header the generated parser reads starts (see :func:`_field_offsets`)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(BytesIO(data))
        self.mark: int | None = None
        self.where: dict[str, int] = {}

    def _note(self) -> None:
        if self.mark is None:
            self.mark = self.pos()

    def read_u1(self) -> int:
        self._note()
        return int(super().read_u1())

    def read_u4be(self) -> int:
        self._note()
        return int(super().read_u4be())

    def read_u8be(self) -> int:
        self._note()
        return int(super().read_u8be())

    def read_bits_int_be(self, n: int) -> int:
        self._note()
        return int(super().read_bits_int_be(n))

    def read_bytes(self, n: int) -> bytes:
        self._note()
        return bytes(super().read_bytes(n))


class _MarkedHeader(Qcow2.Header):
    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        io = self.__dict__.get("_io")
        if isinstance(io, _MarkingStream) and not name.startswith("_") and io.mark is not None:
            io.where[name] = io.mark
            io.mark = None


def field_offsets(head: bytes) -> tuple[dict[str, int], int | None]:
    """Where each header field starts, as the generated parser reads ``head``; and where the field it stopped in starts.

    The offsets come from the parser's own reads (a field is where its first
    read began), so no header layout is written twice.
    """
    io = _MarkingStream(head)
    with contextlib.suppress(kaitaistruct.KaitaiStructError, EOFError, ValueError):
        _MarkedHeader(io, None, None)
    return io.where, io.mark


class L2Layout:
    """The bits of an L2 entry as the generated parser reads them, learned from it, to decode whole tables at once.

    The generated ``L2Entry`` type parses each entry of a table correctly but
    slowly (a Python object per entry); a table of 8192 entries is instead
    read as big-endian 64-bit words (:mod:`struct`) and decoded with masks.
    The masks are not written here: they are learned by parsing one-bit words
    with the generated parser (``cluster_type``, ``ofs_host_cluster``,
    ``ofs_compressed_data``, ``len_compressed_data``, ``alloc_bitmap`` and
    ``zero_bitmap``: the .ksy's names), so the .ksy stays the one definition
    of the layout. A bit whose one-bit word the parser refuses (an unaligned
    host offset, an offset bit past bit 55) sends its entry to the generated
    parser, which raises the rule's error; so does an entry whose subcluster
    bitmaps break their rule.
    """

    def __init__(self, root: Any) -> None:
        h = root.header
        self.extended = bool(h.has_extended_l2)
        self.len_entry = int(h.cluster_size) // int(h.num_l2_entries)
        self._root = root

        def parse(word: int, bitmap: int = 0) -> Any:
            raw = word.to_bytes(8, "big") + (bitmap.to_bytes(8, "big") if self.extended else b"")
            return Qcow2.L2Entry(KaitaiStream(BytesIO(raw)), root, root)

        host = zero = compressed = refused = 0
        for k in range(64):
            try:
                e = parse(1 << k)
                kind, ofs = e.cluster_type, int(e.ofs_host_cluster)
            except (kaitaistruct.KaitaiStructError, EOFError):
                refused |= 1 << k
                continue
            if kind == Qcow2.ClusterType.compressed:
                compressed |= 1 << k
            elif ofs == 1 << k:
                host |= 1 << k
            elif ofs:
                raise AssertionError(f"L2 entry bit {k} gives host offset {ofs:#x}: not a layout of bit fields")
            elif kind == Qcow2.ClusterType.zero_plain:
                zero |= 1 << k
        if compressed & (compressed - 1) or not compressed or not host:
            raise AssertionError("the generated L2 entry has no single compressed bit, or no host offset bits")
        self.compressed, self.host, self.zero, self.refused = compressed, host, zero, refused
        c_ofs = c_count = c_refused = 0
        for k in range(64):
            if (1 << k) & compressed:
                continue
            try:
                e = parse(compressed | 1 << k)
                ofs, length = int(e.ofs_compressed_data), int(e.len_compressed_data)
            except (kaitaistruct.KaitaiStructError, EOFError):
                c_refused |= 1 << k
                continue
            if ofs == 1 << k:
                c_ofs |= 1 << k
            elif length != 512:
                c_count |= 1 << k
        self.c_ofs, self.c_refused = c_ofs, c_refused
        self.c_shift = (c_count & -c_count).bit_length() - 1
        self.c_count = c_count >> self.c_shift
        self.alloc_shift = self.zero_shift = 0
        if self.extended:
            for k in range(64):
                e = parse(host & -host, 1 << k)
                if int(e.alloc_bitmap) == 1:
                    self.alloc_shift = k
                if int(e.zero_bitmap) == 1:
                    self.zero_shift = k

    def words(self, raw: bytes) -> tuple[int, ...]:
        """The table's 64-bit words, in order (two per entry with extended L2 entries)."""
        return struct.unpack(f">{len(raw) // 8}Q", raw)

    def decode(self, word: int, bitmap: int) -> tuple[str, int | None, int, tuple[int, int] | None] | None:
        """(kind, ofs_host, len_host, (alloc, zero) of a partly allocated cluster or None), or None: ask the parser.

        ``kind`` is ``"data"``, ``"zero"``, ``"compressed"`` or ``"unallocated"`` (the values of :class:`qjournal.image.Kind`).
        """
        if word & self.compressed:
            if word & self.c_refused or bitmap:  # bitmaps are reserved (0) for compressed clusters: the parser judges
                return None
            ofs = word & self.c_ofs
            return "compressed", ofs, (((word >> self.c_shift) & self.c_count) + 1) * 512 - ofs % 512, None
        if word & self.refused:
            return None
        host = word & self.host
        if not self.extended:
            kind = "zero" if word & self.zero else "data" if host else "unallocated"
            return kind, host or None, host and self._root.header.cluster_size, None
        alloc = (bitmap >> self.alloc_shift) & 0xFFFFFFFF
        zero = (bitmap >> self.zero_shift) & 0xFFFFFFFF
        if alloc & zero or (alloc and not host):
            return None
        cs = int(self._root.header.cluster_size)
        if alloc == 0xFFFFFFFF:
            return "data", host, cs, None
        if zero == 0xFFFFFFFF:
            return "zero", host or None, cs if host else 0, None
        if not alloc and not zero:
            return "unallocated", None, 0, None
        return "data" if alloc else "zero", host or None, cs if host else 0, (alloc, zero)
