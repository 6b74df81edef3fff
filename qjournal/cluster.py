"""One journal cluster through the generated parser: parse it, and name what is wrong with it.

Strategy: the .ksy's ``cluster`` type holds every rule of D3-D5 and D8 as a
``valid`` key; this module runs the generated ``Qcow2Journal.Cluster`` over one
4096-byte cluster (a :class:`~qjournal.stream.ClusterStream`), and when the
parser rejects an entry, turns the Kaitai error into a
:class:`~qjournal.errors.CorruptJournalError` with the rule's stable code
(:func:`classify`, which looks at the entry's two header bytes and its room to
the boundary, nothing else). :func:`valid_prefix` gives the well-formed entries
before a corruption, for replay (D17) and the CLI alike.
"""

from __future__ import annotations

from kaitaistruct import KaitaiStructError

from qjournal.area import ADDRESS_HINT
from qjournal.errors import CorruptJournalError
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HEADER,
    MAX_LEN_END,
    MAX_LEN_REGULAR,
    MIN_LEN_ENTRY,
    MIN_LEN_HASH_BODY,
    RESET_BYTE,
    TYPE_END,
    TYPE_HASH,
    type_name,
)
from qjournal.generated.qcow2_journal import Qcow2Journal
from qjournal.magic import Magic, identify
from qjournal.stream import ClusterStream

Cluster = Qcow2Journal.Cluster
Entry = Qcow2Journal.Entry


def classify(buf: bytes, ofs: int) -> tuple[str, str]:
    """Name the corruption rule that the entry at ``ofs`` of cluster ``buf`` breaks (docs/format.md D13).

    Called only after the generated parser rejected that entry.
    """
    len_entry = buf[ofs] if ofs < len(buf) else RESET_BYTE
    code = buf[ofs + 1] if ofs + 1 < len(buf) else RESET_BYTE
    room = LEN_CLUSTER - ofs
    name = type_name(code)
    if len_entry < MIN_LEN_ENTRY:
        hint = ""
        if len_entry == 0 and code == 0:
            hint = "; bytes of 0x00 where 0xFF was expected: this area was never reset (D2)"
        return "size_too_small", f"entry size {len_entry} under type {name}: a size is at least 2 (D3){hint}"
    if code == TYPE_END:
        ff = " (size byte 0xFF is valid only for an END 255 bytes before the boundary, D6)" if len_entry == MAX_LEN_END else ""
        return "end_misaligned", (
            f"END of size {len_entry} ends at {ofs + len_entry} of its cluster, not at the boundary "
            f"{LEN_CLUSTER}: its size must be {room} (D5){ff}"
        )
    if len_entry > MAX_LEN_REGULAR:
        return "regular_too_long", (
            f"{name} entry of size {len_entry}: a regular entry is at most 254 bytes; "
            f"size byte 0xFF belongs to NONE (D3, D12)"
        )
    if len_entry > room:
        return "crosses_boundary", f"{name} entry of size {len_entry} crosses the cluster boundary ({room} bytes left) (D5)"
    if len_entry == room:
        return "no_end", f"{name} entry of size {len_entry} ends on the cluster boundary with no END (D5)"
    if len_entry == room - 1:
        return "no_room_for_header", (
            f"{name} entry of size {len_entry} leaves 1 byte before the boundary, "
            f"fewer than 2 for the next entry's header (D5)"
        )
    if code == TYPE_HASH and len_entry - LEN_HEADER < MIN_LEN_HASH_BODY:
        return "hash_too_short", (
            f"HASH entry of size {len_entry}: its payload of {len_entry - LEN_HEADER} bytes "
            f"is shorter than 17 (a digest of at least 1 byte and two 8-byte sectors) (D8)"
        )
    raise AssertionError(f"the parser rejected an entry no rule rejects: {buf[ofs:ofs + 2].hex()} at {ofs}")


def parse_cluster(buf: bytes) -> Qcow2Journal.Cluster:
    """Parse one 4096-byte cluster with the generated parser; raise :class:`CorruptJournalError` on corruption.

    The error carries the offset *in the cluster*; callers rebase it to the area.
    """
    if type(buf) is not bytes:  # fields must come out as bytes, not slices of a bytearray
        buf = bytes(buf)
    try:
        return Cluster(ClusterStream(buf))
    except KaitaiStructError as exc:
        io = getattr(exc, "io", None)
        pos = io.pos() if io is not None else 0
        # len_entry is checked after 1 byte of the entry, type_code after 2.
        ofs = pos - 1 if (exc.src_path or "").endswith("/seq/0") else pos - LEN_HEADER
        rule, reason = classify(buf, ofs)
        raise CorruptJournalError(rule, reason, ofs) from None


def valid_prefix(buf: bytes, stop: int) -> list[Qcow2Journal.Entry]:
    """The well-formed entries of cluster ``buf`` before the corruption the parser found at ``stop`` (D17)."""
    io = ClusterStream(bytes(buf))
    entries = []
    while io.pos() < stop:
        entries.append(Entry(io))
    return entries


def start_hint(index: int, buf: bytes, stop: int) -> str | None:
    """The hint for a corruption at ``stop`` of cluster ``index``: an area that does not start like a journal.

    That is a corruption in cluster 0 with no well-formed HASH entry before it
    (docs/format.md D24): a wrong offset or length is then likelier than damage.
    """
    if index != 0 or any(e.type_code == TYPE_HASH for e in valid_prefix(buf, stop)):
        return None
    return ADDRESS_HINT


def image_at_start(head: bytes) -> Magic | None:
    """The disk-image format a file starting with ``head`` (up to a cluster of it) is, or None for a journal.

    A file is taken for an image when it starts with an image's magic
    (:func:`qjournal.magic.identify`) and its first cluster is not a
    well-formed journal cluster: any bytes can begin a journal (a first entry
    of an unassigned type), but no image's header reads as one.
    """
    found = identify(head)
    if found is None:
        return None
    try:
        parse_cluster(bytes(head[:LEN_CLUSTER]).ljust(LEN_CLUSTER, bytes((RESET_BYTE,))))
    except CorruptJournalError:
        return found
    return None
