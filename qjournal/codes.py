"""Every stable code qjournal reports, with its meaning and the rule of docs/format.md it comes from.

Strategy: one table, :data:`CODES`, is the registry. A problem of any kind
(a corruption of a journal, an anomaly a check reports, an image qjournal
refuses or finds corrupt, an image another process holds, a verify mismatch,
a source dedup refuses) carries one of these codes as its ``code``; the family
says which class reports it. The per-family dicts the package exported before
(``CORRUPTION_RULES``, ``ANOMALY_KINDS``, ``UNSUPPORTED_FEATURES``,
``IMAGE_CORRUPTION_RULES``, ``IMAGE_LOCK_CODES``, ``VERIFY_PROBLEMS``) are
views of it (:func:`family`), built once at import. docs/format.md section 9
maps each code to its rule; a test holds the two to each other and every
"Dnn" cited in the package to a rule of docs/format.md.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["CODES", "Code", "Family", "described", "family"]

Family = Literal["corruption", "anomaly", "unsupported", "image_corruption", "image_lock", "verify", "dedup"]


class Code(NamedTuple):
    """One stable code: its ``family`` (which class reports it), what it means, the rules (D-numbers) it comes from."""

    code: str
    family: Family
    meaning: str
    rules: tuple[int, ...]


def _c(code: str, fam: Family, meaning: str, *rules: int) -> Code:
    return Code(code, fam, meaning, rules)


_ALL: tuple[Code, ...] = (
    # A journal breaks a rule: replay cannot go past it (D18). The order is the vectors' order.
    _c("area_length", "corruption", "the area length is not a non-zero multiple of 4096", 1),
    _c("size_too_small", "corruption", "an entry size byte of 0 or 1", 3, 11),
    _c("regular_too_long", "corruption", "a regular entry larger than 254 bytes, i.e. size byte 0xFF under a regular type", 3, 12),
    _c("crosses_boundary", "corruption", "a regular entry crossing the cluster boundary", 5),
    _c("no_end", "corruption", "a cluster whose last entry ends on the boundary with no END", 5),
    _c("no_room_for_header", "corruption", "fewer than 2 bytes left for the next entry's header", 5),
    _c("end_misaligned", "corruption", "an END that does not end exactly at the cluster boundary, size byte 0xFF included", 5, 6),
    _c("hash_too_short", "corruption", "a HASH entry whose payload is shorter than 17 bytes", 8),
    # It parses and replays, but a check reports it (and a strict check fails it) (D18).
    _c("torn_write", "anomaly", "a size byte other than 0xFF under a NONE type: an interrupted write", 14),
    _c("dirty_tail", "anomaly", "a byte other than 0xFF after the point where replay ends", 14),
    _c("unassigned_type", "anomaly", "an entry of a type the spec does not assign", 4),
    _c("dirty_padding", "anomaly", "a byte other than 0xFF in an END's padding, which the writer never writes", 15),
    # An image whose clusters cannot be mapped honestly: refused before any cluster is read (D27).
    _c("encryption", "unsupported", "encrypted clusters (crypt_method other than none): they hold ciphertext, not the guest's data", 27),
    _c("external_data_file", "unsupported", "an external data file: the clusters' data is in another file", 27),
    _c("extended_l2", "unsupported", "extended L2 entries: a cluster may be allocated one subcluster at a time", 27),
    _c("corrupt_bit", "unsupported", "the corrupt bit: QEMU found the image's metadata inconsistent", 27),
    _c("unknown_incompatible_feature", "unsupported", "an incompatible feature bit that formats/qcow2.ksy does not know", 27),
    _c("version", "unsupported", "a qcow2 version other than 2 or 3", 27),
    _c("cluster_size", "unsupported", "clusters outside 512 bytes to 2 MiB", 27),
    _c("other_format", "unsupported", "a disk image of another format, whose blocks are not where its guest sees them", 26, 27),
    # An image that breaks a rule of the qcow2 format where it was read (D27: read as QEMU reads it).
    _c("header", "image_corruption", "the qcow2 header breaks a rule that formats/qcow2.ksy checks", 27),
    _c("truncated", "image_corruption", "a header, table or cluster runs past the end of the file", 27),
    _c("l1_entry", "image_corruption", "an L1 table entry breaks a rule that formats/qcow2.ksy checks (an unaligned L2 table offset)", 27),
    _c("l2_entry", "image_corruption",
       "an L2 table entry breaks a rule that formats/qcow2.ksy checks (an unaligned or out-of-range offset)", 27),
    _c("zero_in_v2", "image_corruption",
       "the zero flag of an L2 entry in a version 2 image, which has no zero clusters (QEMU calls it corruption)", 27),
    _c("compressed", "image_corruption", "a compressed cluster whose data does not decompress to exactly one cluster", 27),
    # QEMU's image locks (D27: the guest view is read consistently, as qemu-img reads it).
    _c("in_use", "image_lock",
       "another process (a running QEMU, qemu-img or qemu-io) holds the image open for writing or resizing", 27),
    # Verify: each way a live HASH entry fails to hold for its image (D25), in the order they are checked.
    _c("digest_length", "verify", "the digest's length names no hash algorithm, or not the one given", 25),
    _c("physical_unaligned", "verify", "physical_sector * 512 is not a multiple of the cluster size", 25),
    _c("physical_past_end", "verify", "the cluster at physical_sector * 512 does not lie inside the image file", 25),
    _c("data_changed", "verify", "the cluster at physical_sector * 512 no longer hashes to the digest", 25),
    _c("logical_unaligned", "verify", "first_logical_sector * 512 is not a multiple of the cluster size", 25),
    _c("logical_past_end", "verify", "first_logical_sector * 512 is past the end of the virtual disk", 25),
    _c("logical_unreadable", "verify",
       "the L1 or L2 entry that maps first_logical_sector cannot be read (it breaks a rule of the format)", 25, 27),
    _c("logical_not_data", "verify",
       "the guest cluster at first_logical_sector is no data cluster of this image (unallocated, zero or compressed)", 25),
    _c("logical_elsewhere", "verify", "the guest cluster at first_logical_sector maps to another host cluster than physical_sector's", 25),
    # A source dedup cannot turn into a target without losing something (D28), beside the image refusals.
    _c("snapshots", "dedup", "internal snapshots: the target holds the active disk only", 28),
    _c("bitmaps", "dedup",
       "persistent dirty bitmaps: the target cannot keep them (drop_bitmaps=True, --drop-bitmaps, drops them)", 28),
    _c("partly_unallocated", "dedup", "a target cluster that would mix bytes of the backing file with the image's own", 28),
)

CODES: dict[str, Code] = {c.code: c for c in _ALL}
"""Every code, by its name: a code names one problem whatever class reports it."""
assert len(CODES) == len(_ALL), "a code is defined twice"


def described(code: str) -> str:
    """The code's meaning with the rules it comes from: ``"... (D3, D11)"``."""
    c = CODES[code]
    return f"{c.meaning} ({', '.join(f'D{n}' for n in c.rules)})"


def family(*families: Family) -> dict[str, str]:
    """The codes of ``families``, in registry order, each to :func:`described` (the old per-family dicts)."""
    return {c.code: described(c.code) for c in _ALL if c.family in families}
