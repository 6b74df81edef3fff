"""The journal's metadata entry (D30): what a journal of an image's blocks describes, as its first entry.

Strategy. One home for the entry both ways. :class:`JournalMetadata` holds
what a reader needs to check the journal's HASH entries without being told:
the block size and the hash algorithm they were made with, and the image's
identity (its format, virtual size and cluster size: what makes a sector
number name the same bytes; a file name is not identity, see D30).
:meth:`JournalMetadata.entry` encodes it as a :class:`~qjournal.entries.RawEntry`
of the unassigned type :data:`TYPE_METADATA` (D4 keeps such entries: replay
yields them, a writer may append them), and :func:`decode` reads one back.
It counts only as the journal's first entry (area offset 0): :func:`first_of`
replays one entry to find it. :func:`begin_journal` is the one place a journal
of an image's blocks (``index``, ``dedup``) is sized and begun: room for the
metadata entry and the HASH entries, the metadata entry first.
The .ksy keeps every unassigned entry's payload raw (``body``); D30 says why it
has no typed view of this one.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from qjournal.area import Source
from qjournal.entries import Entry, RawEntry
from qjournal.format import LEN_HEADER, MAX_LEN_BODY, clusters_for, tail_after

if TYPE_CHECKING:
    from qjournal.image import Image
    from qjournal.making import Destination
    from qjournal.reader import JournalReader
    from qjournal.writer import JournalWriter

__all__ = [
    "MAGIC", "TYPE_METADATA", "VERSION", "JournalMetadata", "MetadataError", "begin_journal", "decode", "first_entry", "first_of",
    "is_metadata",
]

TYPE_METADATA = 0x71
"""The entry's type code: an unassigned type (D4), ``q`` in ASCII. The RFC assigns 0x01, 0x02 and 0xFF."""
MAGIC = b"qjmd"
"""The body's first four bytes: another writer's entry of type 0x71 is not taken for qjournal's metadata."""
VERSION = 1
"""The layout version this module writes; it reads every version (a later one only appends fields)."""

_FIXED = struct.Struct(">4sBIQI")  # magic, version, block_size, len_virtual_disk, cluster_size
_FORMATS = ("qcow2", "raw")


class MetadataError(ValueError):
    """An entry of type 0x71 with the magic whose body breaks D30's layout: what is wrong, in words."""


@dataclass(frozen=True)
class JournalMetadata:
    """What a journal describes (D30): its HASH entries' block size and hash, and the image's identity."""

    block_size: int
    """Bytes each HASH entry's digest covers (a power of two, 512 to 2 MiB)."""
    hash_name: str
    """The :mod:`hashlib` name of the digests' algorithm (``sha256``)."""
    image_format: str
    """``qcow2`` or ``raw``."""
    len_virtual_disk: int
    """The image's virtual size in bytes."""
    cluster_size: int
    """The qcow2 image's cluster size; 0 for a raw image, which has no clusters of its own."""
    version: int = VERSION

    @classmethod
    def of_image(cls, image: Image, block_size: int, hash_name: str) -> JournalMetadata:
        """The metadata of a journal of ``image``'s blocks of ``block_size``, hashed with ``hash_name``."""
        return cls(block_size, hash_name, image.format, image.len_virtual_disk,
                   image.cluster_size if image.format == "qcow2" else 0)

    def entry(self) -> RawEntry:
        """The entry (type :data:`TYPE_METADATA`), its body laid out as D30 says."""
        fmt, name = self.image_format.encode("ascii"), self.hash_name.encode("ascii")
        body = (_FIXED.pack(MAGIC, VERSION, self.block_size, self.len_virtual_disk, self.cluster_size)
                + bytes((len(fmt),)) + fmt + bytes((len(name),)) + name)
        assert len(body) <= MAX_LEN_BODY
        return RawEntry(TYPE_METADATA, body)

    @property
    def len_entry(self) -> int:
        """The entry's size, header included."""
        return LEN_HEADER + len(self.entry().body)

    def describe(self) -> str:
        """One line: ``sha256 digests of 64 KiB blocks of a qcow2 image of 1048576 bytes, 65536-byte clusters``."""
        what = (f"a qcow2 image of {self.len_virtual_disk} bytes, {self.cluster_size}-byte clusters"
                if self.image_format == "qcow2" else f"a raw image of {self.len_virtual_disk} bytes")
        return f"{self.hash_name} digests of {self.block_size}-byte blocks of {what}"

    def identity_of(self, image: Image) -> list[tuple[str, object, object]]:
        """Where ``image`` differs from the recorded identity: (field, recorded, the image's), in D30's order."""
        now = JournalMetadata.of_image(image, self.block_size, self.hash_name)
        return [(k, getattr(self, k), getattr(now, k)) for k in ("image_format", "cluster_size", "len_virtual_disk")
                if getattr(self, k) != getattr(now, k)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return asdict(self)


def decode(entry: Entry) -> JournalMetadata | None:
    """The metadata an entry holds, or None when it is no metadata entry (another type, or no magic).

    Raises :class:`MetadataError` for a body with the magic that breaks D30's layout.
    """
    if not isinstance(entry, RawEntry) or entry.type_code != TYPE_METADATA or entry.body[:len(MAGIC)] != MAGIC:
        return None
    body = bytes(entry.body)
    if len(body) < _FIXED.size + 2:
        raise MetadataError(f"its body is {len(body)} bytes, fewer than the {_FIXED.size + 2} of D30's fixed fields")
    _, version, block_size, len_virtual_disk, cluster_size = _FIXED.unpack_from(body)
    if version < 1:
        raise MetadataError(f"version {version}: versions start at 1")
    pos = _FIXED.size
    fields = []
    for name in ("image_format", "hash_name"):
        n = body[pos] if pos < len(body) else -1
        if n < 0 or pos + 1 + n > len(body):
            raise MetadataError(f"its {name} runs past the end of the body ({len(body)} bytes)")
        try:
            fields.append(body[pos + 1:pos + 1 + n].decode("ascii"))
        except UnicodeDecodeError:
            raise MetadataError(f"its {name} is not ASCII") from None
        pos += 1 + n
    image_format, hash_name = fields
    if block_size < 512 or block_size & (block_size - 1):
        raise MetadataError(f"block_size {block_size} is not a power of two of at least 512")
    if image_format not in _FORMATS:
        raise MetadataError(f"image_format {image_format!r} is neither qcow2 nor raw")
    if (image_format == "raw") != (cluster_size == 0):
        raise MetadataError(f"cluster_size {cluster_size} for a {image_format} image (0 exactly for raw)")
    return JournalMetadata(block_size, hash_name, image_format, len_virtual_disk, cluster_size, version)


def is_metadata(ofs: int, type_code: int, body: bytes | memoryview) -> bool:
    """True for a well-formed metadata entry at area offset 0, the only place it counts (D30)."""
    if ofs or type_code != TYPE_METADATA:
        return False
    try:
        return decode(RawEntry(type_code, bytes(body))) is not None
    except MetadataError:
        return False


def first_of(journal: Source | JournalReader, offset: int = 0,
             length: int | None = None) -> tuple[JournalMetadata | None, str | None]:
    """The journal's metadata (its first entry, D30), or None; and why a first entry of type 0x71 was not taken.

    ``journal`` is a source (the area at ``offset``, ``length`` bytes) or an open reader. Replays one entry; a
    corrupt journal raises the reader's error.
    """
    from qjournal.reader import JournalReader, read  # noqa: PLC0415 - the reader imports the check engine, which imports this module

    if isinstance(journal, JournalReader):
        first = next(iter(journal.replay()), None)
    else:
        with read(journal, offset, length) as reader:
            first = next(iter(reader.replay()), None)
    if first is None:
        return None, None
    try:
        return decode(first), None
    except MetadataError as exc:
        return None, f"its first entry has the type and magic of qjournal's metadata entry but {exc} (D30): not taken"


def first_entry(reader: JournalReader) -> RawEntry | None:
    """The journal's metadata entry as it is (its bytes, whatever its version), when its first entry is one (D30)."""
    first = next(iter(reader.replay()), None)
    if isinstance(first, RawEntry) and first.ofs is not None and is_metadata(first.ofs, first.type_code, first.body):
        return first
    return None


def begin_journal(make: Callable[[int], Destination], metadata: JournalMetadata, num_entries: int,
                  len_entry: int) -> tuple[Destination, JournalWriter]:
    """Size and begin a journal of an image's blocks: ``make(num_clusters)`` gives the destination, sized for the
    metadata entry and ``num_entries`` HASH entries of ``len_entry`` bytes; the metadata entry is appended first.

    The destination and its open writer; on an error the destination is abandoned.
    """
    num_clusters = clusters_for(tail_after(itertools.chain((metadata.len_entry,), itertools.repeat(len_entry, num_entries))))
    dest = make(num_clusters)
    try:
        writer = dest.make()
    except BaseException:
        dest.abandon()
        raise
    try:
        writer.append(metadata.entry())
    except BaseException:
        writer.close()
        dest.discard()
        raise
    return dest, writer
