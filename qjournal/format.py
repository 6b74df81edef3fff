"""The journal's constants and entry types: one vocabulary for reader and writer.

The entry type codes come from the .ksy (``Qcow2Journal.EntryType``, generated);
the numbers below are the ones the spec and FORMAT-DECISIONS.md state, named as
the .ksy names the fields they bound.
"""

from __future__ import annotations

from qjournal.generated.qcow2_journal import Qcow2Journal

EntryType = Qcow2Journal.EntryType
"""Entry types of the .ksy enum ``entry_type``: ``end`` (1), ``hash`` (2), ``none`` (0xFF)."""

LEN_CLUSTER = 4096
"""Journal cluster size, fixed by the spec whatever the image's cluster size (D1)."""
RESET_BYTE = 0xFF
"""Every byte of a reset area (D2); also the type and size byte of a NONE entry."""
LEN_HEADER = 2
"""Entry header: the ``len_entry`` byte and the ``entry_type`` byte (D3)."""
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
MAX_LEN_DIGEST = MAX_LEN_BODY - LEN_HASH_SECTORS
"""Longest digest a HASH entry can carry (236 bytes)."""
LEN_SHA256_DIGEST = 32
"""The default digest length (SHA-256): a 50-byte (0x32) HASH entry (D8, D10)."""
MAX_SECTOR = 2**64 - 1
"""Sectors are unsigned 64-bit."""

ASSIGNED_TYPES = frozenset(int(t) for t in EntryType)
"""Type codes the spec assigns; every other code is unassigned (D4)."""
APPENDABLE_TYPES = frozenset(range(256)) - {int(EntryType.end), int(EntryType.none)}
"""Types a caller may append: HASH and the unassigned ones; END and NONE are the writer's (D6)."""


def fits(ofs_in_cluster: int, len_entry: int) -> bool:
    """True when an entry of ``len_entry`` bytes fits at ``ofs_in_cluster`` (D6).

    It must leave room for the two header bytes of the END that closes the cluster.
    """
    return ofs_in_cluster + len_entry + LEN_HEADER <= LEN_CLUSTER


_RESET = bytes((RESET_BYTE,))


def first_not_reset(data: bytes) -> int:
    """Index of the first byte of ``data`` other than 0xFF (D2), or ``len(data)`` when every byte is 0xFF."""
    return len(data) - len(data.lstrip(_RESET))


def last_not_reset(data: bytes) -> int:
    """Index of the last byte of ``data`` other than 0xFF (D2), or -1 when every byte is 0xFF."""
    return len(data.rstrip(_RESET)) - 1
