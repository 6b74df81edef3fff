"""The journal's constants and the rules that are arithmetic: one home for each (docs/format.md).

Strategy: every number the format states, and every rule that is a formula over
offsets and sizes (where an entry goes, when a journal is full, how many
clusters a list of entries needs, where the first byte other than 0xFF is),
lives here once, named as the .ksy names the fields it bounds. The reader, the
writer, the leftovers rule and the CLI import them; none restates them. The
byte layout itself is the .ksy's (``formats/qcow2_journal.ksy``); the type
codes come from its generated enum.
"""

from __future__ import annotations

from collections.abc import Iterable

from qjournal.generated.qcow2_journal import Qcow2Journal

EntryType = Qcow2Journal.EntryType
"""Entry types of the .ksy enum ``entry_type``: ``end`` (1), ``hash`` (2), ``none`` (0xFF) (D4).

One type for ``entry_type`` everywhere (a :class:`~qjournal.entries.HashEntry`, a
:class:`~qjournal.entries.RawEntry`, a dump's END and NONE records): the .ksy's
own, an ``EntryType`` member for an assigned type and the ``int`` itself for an
unassigned one (0x00, 0x03-0xFE), as the generated parser's ``entry_type`` gives
it. In JSON it is :func:`entry_type_json`: the enum's name, or the number."""

TYPE_END = int(EntryType.end)
"""``type_code`` of an END, which closes a cluster (D4), as a plain integer (the .ksy compares integers)."""
TYPE_HASH = int(EntryType.hash)
"""``type_code`` of a HASH entry (D4, D8)."""
TYPE_NONE = int(EntryType.none)
"""``type_code`` of NONE, an unwritten byte: replay stops there (D4, D7)."""

LEN_CLUSTER = 4096
"""Journal cluster size, fixed by the spec whatever the image's cluster size (D1)."""
RESET_BYTE = 0xFF
"""Every byte of a reset area (D2); also the type and size byte of a NONE entry."""
LEN_HEADER = 2
"""Entry header: the ``len_entry`` byte and the ``type_code`` byte (D3)."""
MIN_LEN_ENTRY = LEN_HEADER
"""Smallest valid ``len_entry``: a header with an empty body (D3)."""
MAX_LEN_REGULAR = 254
"""Largest ``len_entry`` of a regular entry (every type but END and NONE, D3)."""
MAX_LEN_END = 255
"""Largest ``len_entry`` of an END: the D6 erratum case (an END 255 bytes before the boundary)."""
MAX_LEN_BODY = MAX_LEN_REGULAR - LEN_HEADER
"""Largest body of a regular entry (252 bytes)."""
LEN_HASH_SECTORS = 16
"""``physical_sector`` and ``first_logical_sector``, u64 big-endian each, after the digest (D8)."""
MIN_LEN_HASH_BODY = LEN_HASH_SECTORS + 1
"""A HASH body holds at least a one-byte digest (D8)."""
MIN_LEN_HASH = LEN_HEADER + MIN_LEN_HASH_BODY
"""Smallest ``len_entry`` of a HASH entry (19)."""
LEN_HASH_OVERHEAD = LEN_HEADER + LEN_HASH_SECTORS
"""Bytes of a HASH entry that are not its digest: ``len_entry = len(digest) + 18``."""
MAX_LEN_DIGEST = MAX_LEN_BODY - LEN_HASH_SECTORS
"""Longest digest a HASH entry can carry (236 bytes)."""
LEN_SHA256_DIGEST = 32
"""The default digest length (SHA-256): a 50-byte (0x32) HASH entry (D8, D10)."""
LEN_SHA256_ENTRY = LEN_SHA256_DIGEST + LEN_HASH_OVERHEAD
"""``len_entry`` of a HASH entry with a SHA-256 digest: 50 bytes (D8)."""
MAX_SECTOR = 2**64 - 1
"""Sectors are unsigned 64-bit (D8)."""
ROOM = LEN_CLUSTER - LEN_HEADER
"""A regular entry of ``len_entry`` s at cluster offset o fits when o + s <= ROOM: the END's header must follow (D6)."""

ASSIGNED_TYPES = frozenset(int(t) for t in EntryType)
"""Type codes the spec assigns; every other code is unassigned (D4)."""
APPENDABLE_TYPES = frozenset(range(256)) - {TYPE_END, TYPE_NONE}
"""Types a caller may append: HASH and the unassigned ones; END and NONE are the writer's (D6)."""


def entry_type_json(entry_type: EntryType | int) -> str | int:
    """``entry_type`` as every JSON record writes it: ``"hash"``, ``"end"``, ``"none"``, or an unassigned type's number."""
    return str(entry_type.name) if isinstance(entry_type, EntryType) else int(entry_type)


def type_name(type_code: int) -> str:
    """The .ksy enum name of a type code (``end``, ``hash``, ``none``), else ``0xNN`` (an unassigned type)."""
    try:
        return str(EntryType(type_code).name)
    except ValueError:
        return f"{type_code:#04x}"


def place(ofs_tail: int, len_entry: int) -> int:
    """Where an entry of ``len_entry`` bytes goes when the tail is at ``ofs_tail`` (D6).

    The tail itself when the entry fits there; otherwise the start of the next
    cluster, after an END of size ``LEN_CLUSTER - ofs_tail % LEN_CLUSTER`` at the
    tail. The journal is full for this entry when the result is not below the
    area's length (there is no next cluster).
    """
    o = ofs_tail % LEN_CLUSTER
    return ofs_tail if o + len_entry <= ROOM else ofs_tail - o + LEN_CLUSTER


def tail_after(len_entries: Iterable[int], ofs_tail: int = 0) -> int:
    """Where the tail is after appending entries of these sizes from ``ofs_tail``, the area unbounded (D6)."""
    for s in len_entries:
        ofs_tail = place(ofs_tail, s) + s
    return ofs_tail


def clusters_for(ofs_tail: int) -> int:
    """The fewest clusters (at least 1) of an area that holds a journal whose tail is at ``ofs_tail``."""
    return max(1, -(-ofs_tail // LEN_CLUSTER))


def is_full(ofs_tail: int, len_area: int) -> bool:
    """True when no entry, not even one of 2 bytes, can be appended (docs/format.md D16).

    Every cluster is closed (the tail is the area's length), or the tail is in
    the last cluster with fewer than 4 bytes left.
    """
    return place(ofs_tail, MIN_LEN_ENTRY) >= len_area


_RESET = bytes((RESET_BYTE,))


def first_not_reset(data: bytes) -> int:
    """Index of the first byte of ``data`` other than 0xFF (D2), or ``len(data)`` when every byte is 0xFF."""
    return len(data) - len(data.lstrip(_RESET))


def last_not_reset(data: bytes) -> int:
    """Index of the last byte of ``data`` other than 0xFF (D2), or -1 when every byte is 0xFF."""
    return len(data.rstrip(_RESET)) - 1


def max_len_entry(ofs_tail: int, len_area: int) -> int:
    """The largest ``len_entry`` an append can take when the tail is at ``ofs_tail`` (0 when the journal is full).

    254 while a cluster follows the tail's (an entry that does not fit opens
    it); in the last cluster, the room left before the END header that must
    follow an entry (D6).
    """
    if ofs_tail >= len_area:
        return 0
    if ofs_tail - ofs_tail % LEN_CLUSTER + LEN_CLUSTER < len_area:
        return MAX_LEN_REGULAR
    room = ROOM - ofs_tail % LEN_CLUSTER
    return min(MAX_LEN_REGULAR, room) if room >= MIN_LEN_ENTRY else 0


def num_fit(ofs_tail: int, len_area: int, len_entry: int) -> int:
    """How many more entries of ``len_entry`` bytes fit when the tail is at ``ofs_tail`` (D6)."""
    if ofs_tail >= len_area:
        return 0
    o = ofs_tail % LEN_CLUSTER
    later = (len_area - (ofs_tail - o + LEN_CLUSTER)) // LEN_CLUSTER  # whole clusters after the tail's
    return max(0, ROOM - o) // len_entry + later * (ROOM // len_entry)
