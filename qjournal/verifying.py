"""Verifying a journal against its image: does every live HASH entry still tell the truth? (D9, D25)

Strategy. Learn the live entries (the last HASH entry per digest, D9) from
the journal's :class:`~qjournal.live.LiveIndex` (bounded in memory: it spills
to disk when large), and check them a batch of :data:`BATCH` at a time. For each entry, check what the image says of its fields
(D25, D27): the block (the cluster, unless a smaller block size is given) at
``physical_sector * 512`` must lie in the file on a block boundary and still
hash to ``digest``, with the algorithm the digest's length names;
``first_logical_sector`` must be a block boundary of the guest disk whose
block maps, through the image's L1 and L2 tables (the guest view of
:mod:`qjournal.guest`; a raw image: to itself), wholly to that same host
range. The mapping is looked up in the caller's thread; the clusters are read and hashed on every core by
:func:`qjournal.hashing.hash_ranges`. Every problem is reported, with the
entry's offset and digest, as a stable code (:data:`VERIFY_PROBLEMS`) and a
sentence; nothing is ever written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from qjournal.area import Source, describe
from qjournal.codes import family
from qjournal.entries import HashEntry
from qjournal.errors import CorruptImageError, JournalArgumentError, deprecated_name, spell
from qjournal.format import MIN_LEN_HASH
from qjournal.guest import GuestReader, NotRead, Status
from qjournal.hashing import DEFAULT_HASH, LEN_RUN, check_hash_name, hash_name_for, hash_ranges, map_batches
from qjournal.image import DEFAULT_BLOCK_SIZE, LEN_SECTOR, Image, check_block_size, open_image
from qjournal.indexing import hash_batch
from qjournal.live import LiveIndex
from qjournal.metadata import JournalMetadata, first_of
from qjournal.reader import read

__all__ = ["VERIFY_PROBLEMS", "AllBlocks", "Mismatch", "UnknownBlock", "VerifyReport", "live_hash_entries", "scan_all_blocks",
           "verify"]

VERIFY_PROBLEMS: dict[str, str] = family("verify")
"""Every problem verify reports, by stable code, in the order they are checked for one entry (a view of
:data:`qjournal.codes.CODES`)."""
_ORDER = {code: i for i, code in enumerate(VERIFY_PROBLEMS)}
MAX_LISTED = 20
"""Blocks, and entries, ``verify --all`` lists of each finding (it counts them all)."""
BATCH = 1 << 16
"""Live entries checked at a time: what verify holds of the journal is this many entries and the live index
(:class:`~qjournal.live.LiveIndex`, which spills to disk when large), whatever the journal's size."""


class Mismatch(NamedTuple):
    """One problem of one live HASH entry: ``ofs`` is the entry's area offset, ``code`` a code of :data:`VERIFY_PROBLEMS`
    (``problem``, its old name, is deprecated: one release)."""

    ofs: int
    digest: bytes
    code: str
    reason: str
    physical_sector: int
    first_logical_sector: int

    @property
    def problem(self) -> str:
        """Deprecated name of ``code``."""
        deprecated_name("problem", self)
        return self.code

    def message(self, *, cli: bool = False) -> str:
        """One line: the entry's offset, the code, the sentence (options spelt for ``cli`` or not, as errors are)."""
        return f"entry at offset {self.ofs:#x} ({self.ofs}): [{self.code}] {spell(self.reason, cli=cli)}"

    def to_dict(self, *, cli: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the digest as lowercase hex, the reason's options spelt for ``cli`` or not)."""
        return {
            "ofs": self.ofs,
            "digest": self.digest.hex(),
            "code": self.code,
            "problem": self.code,  # the old key, for one release
            "reason": spell(self.reason, cli=cli),
            "physical_sector": self.physical_sector,
            "first_logical_sector": self.first_logical_sector,
        }


class UnknownBlock(NamedTuple):
    """A data block whose digest no live entry has: changed since the index, or written since."""

    ofs_guest: int
    ofs_host: int
    digest: bytes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the digest as lowercase hex)."""
        return {"ofs_guest": self.ofs_guest, "ofs_host": self.ofs_host, "digest": self.digest.hex()}


@dataclass(frozen=True)
class AllBlocks:
    """What ``verify --all`` found: every block index would journal (stored uncompressed, not all zero) hashed, and
    its digest looked up among the live entries; the first :data:`MAX_LISTED` of each finding kept, all counted."""

    hash_name: str
    num_hashed: int
    """Data blocks hashed and looked up (every use of a host cluster several guest clusters use counted, though it is
    read at its first use only, D31)."""
    len_read: int
    """Bytes read and hashed."""
    num_zero: int
    """Stored blocks that read as zeros: index journals none, nothing to look up."""
    num_not_journaled: int
    """Compressed blocks and blocks of partly allocated clusters: index journals none, not looked up."""
    num_unknown: int
    """Hashed blocks whose digest no live entry has."""
    unknown: tuple[UnknownBlock, ...]
    num_unmatched: int
    """Live entries whose digest no block of the image has any more."""
    unmatched: tuple[HashEntry, ...]

    @property
    def is_clean(self) -> bool:
        """True when every hashed block's digest is known and every live entry's digest was found."""
        return not self.num_unknown and not self.num_unmatched

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the counts, and the listed blocks and entries as dicts."""
        d = {k: getattr(self, k) for k in ("hash_name", "num_hashed", "len_read", "num_zero", "num_not_journaled",
                                           "num_unknown", "num_unmatched")}
        d.update(unknown=[b.to_dict() for b in self.unknown], unmatched=[e.to_dict() for e in self.unmatched],
                 is_clean=self.is_clean)
        return d


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` checked and found.

    ``num_checked`` live entries were checked; ``num_mismatched`` of them have
    at least one problem; ``mismatches`` holds every problem (an entry may have
    several), in the journal's order of the live entries. A mismatch's
    ``reason`` names options as ``${name}``, as an error's does: its
    ``message(cli=...)`` spells them.
    """

    journal: str
    image: str
    format: str
    block_size: int
    """The cluster size the entries are checked against (the qcow2 image's own, or a raw image's block size)."""
    num_checked: int
    num_mismatched: int
    mismatches: tuple[Mismatch, ...]
    len_read: int
    """Bytes read and hashed."""
    not_read: dict[str, Any] = field(default_factory=lambda: NotRead(None, 0, ()).to_dict())
    """What was not read (:meth:`qjournal.guest.NotRead.to_dict`): the backing file's name, the internal snapshots."""
    is_dirty: bool = False
    """The qcow2 dirty bit was set (D29)."""
    num_blocks_read: int = 0
    """Blocks of ``block_size`` read and hashed: one per checked entry whose block lies in the file."""
    num_data_blocks: int | None = None
    """Blocks of ``block_size`` the image stores as data (None when its tables cannot all be read): those past
    ``num_blocks_read`` (duplicates of journaled ones, or data written since the index) were not checked."""
    metadata: dict[str, Any] | None = None
    """The journal's metadata entry (D30, :meth:`qjournal.metadata.JournalMetadata.to_dict`), or None: it has none."""
    notes: tuple[str, ...] = ()
    """What the reader should know and that is no entry's problem: an image resized since the index, a first entry
    that looks like the metadata entry and is not one."""
    scan: AllBlocks | None = None
    """With ``all_blocks``: every data block of the image hashed and looked up in the journal."""

    @property
    def likely_cause(self) -> str | None:
        """When every checked entry has a problem: what is likelier than every block having changed, else None."""
        if not self.num_checked or self.num_mismatched < self.num_checked:
            return None
        n = self.num_checked
        if self.metadata is None:
            return (f"every one of the {n} entries checked fails, and the journal has no metadata entry (D30) to say "
                    f"what it was made of: it was probably made at another block size than {self.block_size} (give the "
                    f"one index was given with ${{block_size}}), or of another image")
        return (f"every one of the {n} entries checked fails, though the image has the format, cluster size and block "
                f"size the journal's metadata entry records: the image was probably rewritten since the index (a "
                f"qemu-img convert, a restore), or it is another image of the same shape")

    @property
    def is_clean(self) -> bool:
        """True when every live entry checked out (and, with ``all_blocks``, every data block's digest is known)."""
        return not self.mismatches and (self.scan is None or self.scan.is_clean)

    def to_dict(self, *, cli: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: every field, ``mismatches`` as a list of dicts, and ``is_clean``."""
        return {
            "journal": self.journal,
            "image": self.image,
            "format": self.format,
            "block_size": self.block_size,
            "num_checked": self.num_checked,
            "num_mismatched": self.num_mismatched,
            "mismatches": [m.to_dict(cli=cli) for m in self.mismatches],
            "len_read": self.len_read,
            "not_read": self.not_read,
            "is_dirty": self.is_dirty,
            "num_blocks_read": self.num_blocks_read,
            "num_data_blocks": self.num_data_blocks,
            "likely_cause": None if self.likely_cause is None else spell(self.likely_cause, cli=cli),
            "metadata": self.metadata,
            "notes": list(self.notes),
            "all_blocks": None if self.scan is None else self.scan.to_dict(),
            "is_clean": self.is_clean,
        }


def live_hash_entries(journal: Source, offset: int = 0, length: int | None = None) -> list[HashEntry]:
    """The live HASH entries of a journal (D9), each with its ``ofs``: the last per digest, in the order of those.

    A list, in memory: :func:`verify` itself goes through the journal's
    :class:`~qjournal.live.LiveIndex` a batch at a time. A corrupt journal
    raises the reader's :class:`CorruptJournalError`.
    """
    with read(journal, offset, length) as reader, LiveIndex(reader.area, reader.replay()) as live:
        return list(live.values())


def verify(
    journal: Source,
    image: str | os.PathLike[str] | Image,
    *,
    block_size: int | None = None,
    hash_name: str | None = None,
    journal_offset: int = 0,
    journal_length: int | None = None,
    jobs: int | None = None,
    force_share: bool = False,
    all_blocks: bool = False,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check every live HASH entry of ``journal`` against ``image`` (D9, D25); report each problem found.

    ``image`` is a path (:func:`qjournal.image.open_image`) or an open
    :class:`Image`. A journal that starts with the metadata entry (D30) says
    its block size, hash algorithm and image: they are used, a ``block_size``
    or ``hash_name`` that contradicts them is refused, and so is an image of
    another format or cluster size (another virtual size is a note). Without
    it, entries name blocks of ``block_size`` bytes: for a qcow2
    image, its cluster size unless told (a power of two up to it; larger is
    refused), for a raw image its block size (default 65536). The algorithm is the one the digest's
    length names (20 bytes SHA-1, 32 SHA-256, 64 SHA-512) unless ``hash_name``
    gives one (any :mod:`hashlib` name) for every entry. The journal is the area
    at ``journal_offset`` (``journal_length`` bytes, or the rest of the file).
    ``jobs`` hashing threads (default: one per core). An image a running QEMU writes is refused unless ``force_share``
    (D29). ``all_blocks`` also hashes every data block of the image, as index does, and reports the blocks whose
    digest no live entry has and the live entries no block has (:class:`AllBlocks`); ``progress(n)`` is then called
    with the guest bytes walked so far.
    """
    meta, why_not = first_of(journal, journal_offset, journal_length)
    notes = [why_not] if why_not else []
    if meta is not None:
        if block_size is not None and block_size != meta.block_size:
            raise JournalArgumentError(
                f"the journal's metadata entry (D30) says its entries name blocks of {meta.block_size} bytes: "
                f"${{block_size}} {block_size} contradicts it; leave ${{block_size}} out",
                source=describe(journal),
            )
        if hash_name is not None and check_hash_name(hash_name) != meta.hash_name:
            raise JournalArgumentError(
                f"the journal's metadata entry (D30) says its digests are {meta.hash_name}: ${{hash_name}} {hash_name} "
                f"contradicts it; leave ${{hash_name}} out",
                source=describe(journal),
            )
        block_size, hash_name = meta.block_size, meta.hash_name
    name = check_hash_name(hash_name) if hash_name is not None else None
    owned = not isinstance(image, Image)
    img = open_image(image, block_size=block_size or DEFAULT_BLOCK_SIZE, force_share=force_share) if not isinstance(image, Image) else image
    try:
        if meta is not None:
            notes += _identity_notes(meta, img, journal)
        size = img.cluster_size if block_size is None else check_block_size(block_size)
        if (img.format == "raw" and size != img.cluster_size) or size > img.cluster_size:
            why = ("is larger (a block of several clusters has no host offset of its own)" if img.format == "qcow2"
                   else "is not the block size it was opened with")
            raise JournalArgumentError(
                f"the {img.format} image's clusters are {img.cluster_size} bytes: ${{block_size}} {block_size} {why}",
                source=img.name,
            )
        num_data: int | None = None
        try:
            num_data = img.check_mapping() * (img.cluster_size // size)  # a mapping qemu-img check refuses: refused (D29)
        except CorruptImageError as exc:
            if exc.code not in ("l1_entry", "l2_entry"):  # an unreadable entry is reported for the entries it maps
                raise
        view = GuestReader(img)  # the guest blocks' mapping (one L1 -> L2 walk; extended L2 by subcluster)
        mismatches: list[Mismatch] = []
        num_checked = num_mismatched = len_read = num_read = 0
        scan: AllBlocks | None = None
        with read(journal, journal_offset, journal_length) as reader, LiveIndex(reader.area, reader.replay()) as live:
            values = iter(live.values())
            while batch := list(itertools.islice(values, BATCH)):
                found, n, k = _check_batch(img, view, size, batch, name, jobs=jobs)
                num_read += k
                num_checked += len(batch)
                num_mismatched += len(found)
                len_read += n
                mismatches += (m for i in sorted(found) for m in sorted(found[i], key=lambda m: _ORDER[m.code]))
            if all_blocks:
                scan = scan_all_blocks(img, size, live, reader.len_area, name, jobs=jobs, progress=progress)
        return VerifyReport(
            journal=describe(journal),
            image=img.name,
            format=img.format,
            block_size=size,
            num_checked=num_checked,
            num_mismatched=num_mismatched,
            mismatches=tuple(mismatches),
            len_read=len_read,
            not_read=view.not_read.to_dict(),
            num_blocks_read=num_read,
            num_data_blocks=num_data,
            is_dirty=img.is_dirty,
            metadata=None if meta is None else meta.to_dict(),
            notes=tuple(notes),
            scan=scan,
        )
    finally:
        if owned:
            img.close()


def _identity_notes(meta: JournalMetadata, img: Image, journal: Source) -> list[str]:
    """Refuse an image of another format or cluster size than the journal's metadata records (every entry would fail);
    another virtual size is a note (a resize keeps the clusters)."""
    differ = meta.identity_of(img)
    hard = [(k, was, now) for k, was, now in differ if k != "len_virtual_disk"]
    if hard:
        what = "; ".join(f"{k} {was} (this image: {now})" for k, was, now in hard)
        raise JournalArgumentError(
            f"{img.name} is not the image this journal describes: its metadata entry (D30) records {what}, so every "
            f"entry would fail; give the image the journal was made of ({meta.describe()})",
            source=describe(journal),
        )
    return [f"the image's virtual size is {now} bytes, the journal's metadata entry (D30) records {was}: resized since "
            f"the index? (entries past the end are reported as logical_past_end)" for _, was, now in differ]


def _check_batch(
    img: Image, view: GuestReader, size: int, entries: list[HashEntry], name: str | None, *, jobs: int | None
) -> tuple[dict[int, list[Mismatch]], int, int]:
    """Check a batch of live entries: their problems by index in the batch, the bytes and the blocks read and hashed."""
    found: dict[int, list[Mismatch]] = {}
    len_read = num_read = 0
    by_hash: dict[str, list[tuple[int, int, int]]] = {}  # algorithm -> (entry index, ofs_host, length) to hash
    for i, e in enumerate(entries):
        problems = _check_fields(img, view, size, e, name)
        for code, reason in problems:
            found.setdefault(i, []).append(_mismatch(e, code, reason))
        if not any(code.startswith(("physical_", "digest_")) for code, _ in problems):
            algo = name or hash_name_for(len(e.digest))
            assert algo is not None
            ofs = e.physical_sector * LEN_SECTOR
            by_hash.setdefault(algo, []).append((i, ofs, min(size, img.len_file - ofs)))
    for algo, reads in by_hash.items():
        results = hash_ranges(img, _tasks(reads), len_block=size, hash_name=algo, jobs=jobs)
        with contextlib.closing(results):  # on an error too, the pool stops before the image is closed
            for tags, digests in results:
                for (i, ofs, length), digest in zip(tags, digests, strict=True):
                    len_read += length
                    num_read += 1
                    e = entries[i]
                    if digest != e.digest:
                        found.setdefault(i, []).append(_mismatch(
                            e, "data_changed",
                            f"the {length}-byte cluster at host offset {ofs:#x} hashes ({algo}) to {digest.hex()}, "
                            f"not to the entry's digest",
                        ))
    return found, len_read, num_read


def _mismatch(e: HashEntry, code: str, reason: str) -> Mismatch:
    assert e.ofs is not None
    return Mismatch(e.ofs, e.digest, code, reason, e.physical_sector, e.first_logical_sector)


def _tasks(reads: list[tuple[int, int, int]]) -> Iterator[tuple[list[tuple[int, int, int]], list[tuple[int, int]]]]:
    """The reads in tasks of about LEN_RUN bytes: tag = the reads, ranges = (ofs, length) of each."""
    tags: list[tuple[int, int, int]] = []
    size = 0
    for r in reads:
        tags.append(r)
        size += r[2]
        if size >= LEN_RUN:
            yield tags, [(ofs, length) for _, ofs, length in tags]
            tags, size = [], 0
    if tags:
        yield tags, [(ofs, length) for _, ofs, length in tags]


def _check_fields(img: Image, reader: GuestReader, cs: int, e: HashEntry, hash_name: str | None) -> list[tuple[str, str]]:
    """Every problem of an entry that the image's mapping shows, before any data is read: (code, sentence).

    ``cs``: the block size the entries name (the cluster size unless told); the guest block's mapping is
    :meth:`GuestReader.spans`' (one L1 -> L2 walk; extended L2 entries by subcluster).
    """
    out: list[tuple[str, str]] = []
    n = len(e.digest)
    if hash_name is None and hash_name_for(n) is None:
        out.append(("digest_length", f"a digest of {n} bytes names no hash algorithm (SHA-1 20, SHA-256 32, SHA-512 64): "
                                     f"give it with ${{hash_name}}"))
    elif hash_name is not None and _digest_size(hash_name) != n:
        out.append(("digest_length", f"a digest of {n} bytes, but {hash_name} digests are {_digest_size(hash_name)} bytes"))
    ofs = e.physical_sector * LEN_SECTOR
    unit = ("cluster size" if cs == img.cluster_size else "block size (${block_size})") if img.format == "qcow2" else (
        "block size (${block_size})")
    if ofs % cs:
        out.append(("physical_unaligned", f"physical_sector {e.physical_sector} is host offset {ofs:#x}, not a multiple of "
                                          f"the {unit} {cs}"))
    elif ofs >= img.len_file or (img.format == "qcow2" and ofs + cs > img.len_file):
        out.append(("physical_past_end", f"the {cs}-byte cluster at host offset {ofs:#x} (physical_sector "
                                         f"{e.physical_sector}) is past the end of the file ({img.len_file} bytes)"))
    guest = e.first_logical_sector * LEN_SECTOR
    if guest % cs:
        out.append(("logical_unaligned", f"first_logical_sector {e.first_logical_sector} is guest offset {guest:#x}, not a "
                                         f"multiple of the {unit} {cs}"))
        return out
    if guest >= img.len_virtual_disk:
        out.append(("logical_past_end", f"first_logical_sector {e.first_logical_sector} is guest offset {guest:#x}, past the "
                                        f"end of the virtual disk ({img.len_virtual_disk} bytes)"))
        return out
    if img.format == "raw":  # host offset = guest offset
        host: int | None = guest
        status = Status.DATA
    else:
        try:
            spans = list(reader.spans(guest, min(guest + cs, img.len_virtual_disk)))
        except CorruptImageError as exc:
            out.append(("logical_unreadable", f"the mapping of guest offset {guest:#x} cannot be read: {exc.message()}"))
            return out
        status = spans[0].status if len(spans) == 1 else Status(0)
        for span in spans:
            status |= span.status
        host = spans[0].ofs_host if len(spans) == 1 else None
    if status is not Status.DATA:
        what = {
            Status.UNALLOCATED: "unallocated in this image (a backing file's clusters are not its own)",
            Status.ZERO: "a zero cluster",
            Status.COMPRESSED: "a compressed cluster",
        }.get(status, "partly allocated (subclusters of several states)")
        out.append(("logical_not_data", f"guest offset {guest:#x} (first_logical_sector {e.first_logical_sector}) is {what}"))
    elif host != ofs:
        out.append(("logical_elsewhere", f"guest offset {guest:#x} (first_logical_sector {e.first_logical_sector}) maps to "
                                         f"host offset {host:#x}, not to {ofs:#x} (physical_sector {e.physical_sector})"))
    return out


def _digest_size(hash_name: str) -> int:
    return int(hashlib.new(hash_name).digest_size)


def scan_all_blocks(img: Image, size: int, live: LiveIndex, len_area: int, hash_name: str | None, *,
                    jobs: int | None = None, progress: Callable[[int], None] | None = None) -> AllBlocks:
    """Hash every block of ``size`` bytes that index would journal and look its digest up in ``live`` (verify --all).

    The blocks are read and hashed as index reads them (:func:`qjournal.indexing.hash_batch`, through
    :func:`qjournal.hashing.map_batches`: on every core, taken back in guest order); what is kept is bounded: the
    counts, :data:`MAX_LISTED` of each finding, and one bit per possible entry offset of the journal (an entry takes
    at least 19 bytes) for the entries a block matched.
    """
    algo = hash_name or DEFAULT_HASH
    if algo != DEFAULT_HASH:
        raise JournalArgumentError(
            f"--all hashes the image's blocks as index does, with {DEFAULT_HASH}; this journal's digests are {algo}",
            source=img.name,
        )
    raw = img.format == "raw"
    matched = bytearray(len_area // MIN_LEN_HASH // 8 + 1)
    unknown: list[UnknownBlock] = []
    num_hashed = num_zero = num_not_journaled = num_unknown = len_read = 0
    with GuestReader(img) as reader:
        for end, hashed in map_batches(reader, size, functools.partial(hash_batch, reader.fill, raw=raw), jobs=jobs,
                                       once=True):  # a host cluster several guest clusters use: read once (D31)
            num_zero += hashed.num_zero
            len_read += hashed.len_read
            weights = hashed.weights
            for k, (digest, host, ofs) in enumerate(hashed.rows):
                if host < 0:  # compressed, or in a partly allocated cluster: index journals none
                    num_not_journaled += 1
                    continue
                w = weights.get(k, 1) if weights else 1
                num_hashed += w
                at = live.ofs(digest)
                if at is None:
                    num_unknown += w
                    if len(unknown) < MAX_LISTED:
                        unknown.append(UnknownBlock(ofs, host, digest))
                else:
                    matched[at // MIN_LEN_HASH >> 3] |= 1 << (at // MIN_LEN_HASH & 7)
            if progress is not None:
                progress(min(end, img.len_virtual_disk))
    if progress is not None:
        progress(img.len_virtual_disk)
    unmatched: list[HashEntry] = []
    num_unmatched = 0
    for e in live.values():
        assert e.ofs is not None
        if not matched[e.ofs // MIN_LEN_HASH >> 3] >> (e.ofs // MIN_LEN_HASH & 7) & 1:
            num_unmatched += 1
            if len(unmatched) < MAX_LISTED:
                unmatched.append(e)
    return AllBlocks(algo, num_hashed, len_read, num_zero, num_not_journaled, num_unknown, tuple(unknown),
                     num_unmatched, tuple(unmatched))
