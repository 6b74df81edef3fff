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


_REGISTRY: dict[Family, dict[str, str]] = {
    # A journal breaks a rule: replay cannot go past it (D18). The order is the vectors' order.
    "corruption": {
        "area_length": "the area length is not a non-zero multiple of 4096 (D1)",
        "size_too_small": "an entry size byte of 0 or 1 (D3, D11)",
        "regular_too_long": "a regular entry larger than 254 bytes, i.e. size byte 0xFF under a regular type (D3, D12)",
        "crosses_boundary": "a regular entry crossing the cluster boundary (D5)",
        "no_end": "a cluster whose last entry ends on the boundary with no END (D5)",
        "no_room_for_header": "fewer than 2 bytes left for the next entry's header (D5)",
        "end_misaligned": "an END that does not end exactly at the cluster boundary, size byte 0xFF included (D5, D6)",
        "hash_too_short": "a HASH entry whose payload is shorter than 17 bytes (D8)",
    },
    # It parses and replays, but a check reports it (and a strict check fails it) (D18).
    "anomaly": {
        "torn_write": "a size byte other than 0xFF under a NONE type: an interrupted write (D14)",
        "dirty_tail": "a byte other than 0xFF after the point where replay ends (D14)",
        "unassigned_type": "an entry of a type the spec does not assign (D4)",
        "dirty_padding": "a byte other than 0xFF in an END's padding, which the writer never writes (D15)",
    },
    # An image whose clusters cannot be mapped honestly: refused before any cluster is read (D27).
    "unsupported": {
        "encryption": "encrypted clusters (crypt_method other than none): they hold ciphertext, not the guest's data (D27)",
        "external_data_file": "an external data file: the clusters' data is in another file (D27)",
        "extended_l2": "extended L2 entries: a cluster may be allocated one subcluster at a time (D27)",
        "corrupt_bit": "the corrupt bit: QEMU found the image's metadata inconsistent (D27, D29)",
        "unknown_incompatible_feature": "an incompatible feature bit that formats/qcow2.ksy does not know (D27)",
        "version": "a qcow2 version other than 2 or 3 (D27)",
        "cluster_size": "clusters outside 512 bytes to 2 MiB (D27)",
        "other_format": "a disk image of another format, whose blocks are not where its guest sees them (D26, D27)",
        "journal_file": "a journal given where a disk image is expected (its first cluster is a journal cluster) (D27)",
    },
    # An image that breaks a rule of the qcow2 format where it was read (D27: read as QEMU reads it).
    "image_corruption": {
        "header": "the qcow2 header breaks a rule that formats/qcow2.ksy checks (D27)",
        "truncated": "a header, table or cluster runs past the end of the file (D27)",
        "l1_entry": (
            "an L1 table entry breaks a rule that formats/qcow2.ksy checks (reserved bits set, an unaligned L2 table offset) (D27, D29)"
        ),
        "l2_entry": "an L2 table entry breaks a rule that formats/qcow2.ksy checks (an unaligned or out-of-range offset) (D27)",
        "zero_in_v2": "the zero flag of an L2 entry in a version 2 image, which has no zero clusters (QEMU calls it corruption) (D27)",
        "compressed": "a compressed cluster whose data does not decompress to exactly one cluster (D27)",
        "overlap": "a data cluster on the image's metadata (header, L1, L2 or refcount tables), or a table on a data cluster (D29)",
        "refcount": "a host cluster the active tables use more often than its refcount allows (D29)",
        "shared_l2_table": "an L2 table used by two entries of the active L1 table, which QEMU never writes (D31)",
    },
    # QEMU's image locks (D27: the guest view is read consistently, as qemu-img reads it).
    "image_lock": {
        "in_use": "another process (a running QEMU, qemu-img or qemu-io) holds the image open for writing or resizing (D29)",
    },
    # Verify: each way a live HASH entry fails to hold for its image (D25), in the order they are checked.
    "verify": {
        "digest_length": "the digest's length names no hash algorithm, or not the one given (D25)",
        "physical_unaligned": "physical_sector * 512 is not a multiple of the cluster size (D25)",
        "physical_past_end": "the cluster at physical_sector * 512 does not lie inside the image file (D25)",
        "data_changed": "the cluster at physical_sector * 512 no longer hashes to the digest (D25)",
        "logical_unaligned": "first_logical_sector * 512 is not a multiple of the cluster size (D25)",
        "logical_past_end": "first_logical_sector * 512 is past the end of the virtual disk (D25)",
        "logical_unreadable":
            "the L1 or L2 entry that maps first_logical_sector cannot be read (it breaks a rule of the format) (D25, D27)",
        "logical_not_data":
            "the guest cluster at first_logical_sector is no data cluster of this image (unallocated, zero or compressed) (D25)",
        "logical_elsewhere": "the guest cluster at first_logical_sector maps to another host cluster than physical_sector's (D25)",
    },
    # A source dedup cannot turn into a target without losing something (D28), beside the image refusals.
    "dedup": {
        "snapshots": "internal snapshots: the target holds the active disk only (D28)",
        "bitmaps": "persistent dirty bitmaps: the target cannot keep them (drop_bitmaps=True, --drop-bitmaps, drops them) (D28)",
        "partly_unallocated": "a target cluster that would mix bytes of the backing file with the image's own (D28)",
    },
}
"""The registry as written: each family's codes, each with its meaning and, last, the rules it comes from."""


def _parse(fam: Family, code: str, text: str) -> Code:
    meaning, _, cited = text.rpartition(" (")
    return Code(code, fam, meaning, tuple(int(r.removeprefix("D")) for r in cited.rstrip(")").split(", ")))


_ALL: tuple[Code, ...] = tuple(_parse(fam, code, text) for fam, codes in _REGISTRY.items() for code, text in codes.items())

CODES: dict[str, Code] = {c.code: c for c in _ALL}
"""Every code, by its name: a code names one problem whatever class reports it."""
assert len(CODES) == len(_ALL), "a code is defined twice"


def described(code: str) -> str:
    """The code's meaning with the rules it comes from: ``"... (D3, D11)"``."""
    return _REGISTRY[CODES[code].family][code]


def family(*families: Family) -> dict[str, str]:
    """The codes of ``families``, in registry order, each to :func:`described` (the old per-family dicts)."""
    return {c.code: described(c.code) for c in _ALL if c.family in families}
