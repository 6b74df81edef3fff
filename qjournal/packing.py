"""Packing a journal (D9): its live HASH entries, and nothing else, into a fresh area.

Strategy: replay the source once, keep the metadata entry (D30) first, if the
source starts with one, then the last HASH entry per digest in the
order of those last occurrences (the log-store view of D9: a
:class:`qjournal.live.LiveIndex`, which holds offsets, not entries, and spills
to disk when large), plan the target's size with
:func:`qjournal.format.tail_after`, refuse before anything is written when the
entries do not fit, then make the target as :func:`qjournal.create` does and
append the live entries as one atomic batch, streamed
(:meth:`qjournal.JournalWriter.append_stream`), so memory does not grow with
the journal. The source's writer lock is held from before its replay to the
end, so no append can land in it unseen (and be lost by ``pack J J2 && mv J2
J``); a new target file is named only once its entries are committed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import warnings
from collections.abc import Callable, Iterable
from typing import NamedTuple

from qjournal.area import Source, identity
from qjournal.durable import lock, unlock
from qjournal.entries import Entry, HashEntry, RawEntry, encode
from qjournal.errors import JournalArgumentError, JournalFullError
from qjournal.format import LEN_CLUSTER, clusters_for, tail_after
from qjournal.live import DEFAULT_MEMORY_LIMIT, LiveIndex, last_occurrences
from qjournal.making import Destination
from qjournal.metadata import first_entry
from qjournal.reader import JournalReader, JournalState

__all__ = ["PackReport", "live_entries", "num_clusters_needed", "pack"]


class PackReport(NamedTuple):
    """What :func:`pack` read and wrote."""

    num_entries_read: int
    """Entries replayed from the source, every type."""
    num_hash_read: int
    """HASH entries among them."""
    num_live: int
    """Live HASH entries written to the target: the last one per digest."""
    num_raw_dropped: int
    """Entries of unassigned types, not written again (D9 keeps only live HASH entries), but for the metadata entry
    (D30), which stays the journal's first."""
    state: JournalState
    """The target's state after the pack."""
    num_metadata_kept: int = 0
    """1 when the source's first entry is its metadata entry (D30), written again first; else 0."""


def live_entries(entries: Iterable[Entry]) -> list[HashEntry]:
    """The live HASH entries (D9): the last one per digest, in the order of their last occurrence.

    Deprecated: use :meth:`qjournal.JournalReader.live` (a :class:`~qjournal.live.LiveIndex`,
    bounded in memory). Raw entries of unassigned types are dropped.
    """
    warnings.warn(
        "qjournal.live_entries is deprecated: use JournalReader.live() (qjournal.LiveIndex), whose memory is bounded",
        DeprecationWarning,
        stacklevel=2,
    )
    kept = [e for e in entries if isinstance(e, HashEntry)]
    return [kept[i] for i in last_occurrences((e.digest, i) for i, e in enumerate(kept)).values()]


def num_clusters_needed(entries: Iterable[Entry]) -> int:
    """The fewest clusters (at least 1) that hold these entries, appended in order to a reset area (D6)."""
    return clusters_for(tail_after(encode(e)[1].len_entry for e in entries))


def _ends_at(target: object, offset: int) -> bool:
    """True when ``target`` ends at ``offset`` (a path that does not exist ends at 0): create would grow it."""
    if isinstance(target, bytearray):
        return len(target) == offset
    if isinstance(target, (str, os.PathLike)):
        try:
            st = os.stat(target)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path, which Destination refuses
            return offset == 0
        return stat.S_ISREG(st.st_mode) and st.st_size == offset
    return False


def pack(
    source: Source,
    target: Source,
    num_clusters: int | None = None,
    *,
    source_offset: int = 0,
    source_length: int | None = None,
    target_offset: int | None = None,
    target_length: int | None = None,
    force: bool = False,
    durable: bool = True,
    progress: Callable[[int], None] | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    spill_dir: str | os.PathLike[str] | None = None,
    offset: int | None = None,
    length: int | None = None,
    unaligned_offset: bool = False,
) -> PackReport:
    """Pack a journal (D9): write only its live HASH entries into a fresh area.

    The source area is ``source`` at ``source_offset`` (``source_length`` bytes,
    else to its end); the target area is ``target`` at ``target_offset``
    (``target_length`` bytes, or ``num_clusters`` clusters; for a new file,
    by default as many as the source's). The source is replayed (a corruption
    before its tail is refused with the reader's error); the last entry per
    digest wins, in the order of the last occurrences; entries of unassigned
    types are dropped, but for a first entry that is the journal's metadata entry (D30), which stays first.
    The target is made as by :func:`qjournal.create` and the
    live entries are appended as one atomic batch. When they do not fit,
    :class:`JournalFullError` is raised before the target is created or
    changed. The target area may not overlap the source area. ``progress``, if
    given, is called with the source bytes replayed so far. ``offset`` and
    ``length`` are the names 0.1 gave ``target_offset`` and ``target_length``
    (deprecated: a DeprecationWarning). A ``target_offset`` off the 512-byte grid
    is refused unless ``unaligned_offset=True`` (see :func:`qjournal.create`).
    The source's file is locked as a writer locks it while it is read: pack
    beside an append is refused (:class:`JournalLockedError`), never a copy
    missing what was acknowledged meanwhile. A new target file appears under its
    name only once complete.

    Memory: a source file is read through a :class:`qjournal.live.LiveIndex`
    (the offset of each digest's last entry, never the entries), which spills
    to an SQLite file in ``spill_dir`` (default: the system's temporary folder)
    once its live digests pass ``memory_limit`` bytes; the entries are read back
    from the source as they are written, one cluster's worth at a time. An
    in-memory source keeps its live entries in memory, as it holds the journal
    there already.
    """
    ofs_target = _one_of("target_offset", target_offset, "offset", offset, 0) or 0
    len_target = _one_of("target_length", target_length, "length", length, None)
    # The live entries through a live index (D9): digest -> offset of its last entry, on disk when large; the
    # entries are read back from the source while they are written, so memory does not grow with the journal.
    with contextlib.ExitStack() as opened:
        reader = opened.enter_context(JournalReader(source, source_offset, source_length))
        src_lock = lock(reader.area.fileno(), reader.name)
        opened.callback(unlock, src_lock)
        live = opened.enter_context(
            LiveIndex(reader.area, reader.replay(progress), memory_limit=memory_limit, spill_dir=spill_dir)
        )
        src_range = (reader.area.area_offset, reader.area.area_offset + reader.len_area)
        src_clusters, src_id = reader.num_clusters, identity(source, reader.area)
        meta = first_entry(reader)  # the metadata entry (D30) stays the journal's first, as it is
        kept = () if meta is None else (RawEntry(meta.type_code, meta.body),)
        counts = (live.num_entries, live.num_hash, len(live), live.num_raw - len(kept))
        entries: Iterable[Entry] = itertools.chain(kept, live.values())
        len_entries: Iterable[int] = itertools.chain((e.len_entry for e in kept), live.len_entries())
        if isinstance(source, (bytes, bytearray, memoryview)):
            # In memory the journal is there whole already: its live entries are taken out and the reader closed
            # before the target is made (it may be the same bytearray, grown).
            entries = list(entries)
            len_entries = [e.len_entry for e in entries]  # the metadata entry's too
            opened.close()
        dest = _destination(target, num_clusters=num_clusters, src_clusters=src_clusters, offset=ofs_target,
                            length=len_target, force=force, durable=durable, src_id=src_id, src_range=src_range,
                            len_entries=len_entries, num_live=counts[2], unaligned_offset=unaligned_offset)
        try:
            with dest.make() as writer:
                writer.append_stream(entries)
                dest.publish()
                return PackReport(*counts, writer.state(), len(kept))
        finally:
            dest.discard()


def _one_of(name: str, value: int | None, old_name: str, old: int | None, default: int | None) -> int | None:
    """A keyword given by its name or by the name 0.1 gave it (deprecated), not both."""
    if value is not None and old is not None:
        raise JournalArgumentError(f"pack got {name}= and {old_name}= (its old name): give one")
    if old is not None:
        warnings.warn(f"pack's {old_name}= is deprecated: use {name}=", DeprecationWarning, stacklevel=3)
    return value if value is not None else old if old is not None else default


def _destination(target: Source, *, num_clusters: int | None, src_clusters: int, offset: int, length: int | None,
                 force: bool, durable: bool, src_id: tuple[object, ...] | None, src_range: tuple[int, int],
                 len_entries: Iterable[int], num_live: int, unaligned_offset: bool) -> Destination:
    """The target, resolved and checked, nothing written: not overlapping the source, large enough for the live entries."""
    if num_clusters is None and length is None and _ends_at(target, offset):
        num_clusters = src_clusters
    dest = Destination(
        target, num_clusters=num_clusters, offset=offset, length=length, force=force, durable=durable, what="pack",
        unaligned_offset=unaligned_offset, publish_later=True, held=src_id,
    )
    try:
        dest_id = dest.identity()
        if src_id is not None and dest_id is not None and dest_id[:-1] == src_id[:-1]:
            # one file (a loop device resolved to its backing file): compare where the areas lie in it
            shift_src, shift_dest = int(src_id[-1]), int(dest_id[-1])  # type: ignore[call-overload]
            lo, hi = dest.offset + shift_dest, dest.offset + dest.len_area + shift_dest
            src_range = (src_range[0] + shift_src, src_range[1] + shift_src)
            if lo < src_range[1] and src_range[0] < hi:
                raise JournalArgumentError(
                    f"the target area [{lo:#x}, {hi:#x}) overlaps the source area [{src_range[0]:#x}, {src_range[1]:#x}): "
                    f"pack writes into a fresh area",
                    source=dest.name,
                )
        needed = clusters_for(tail_after(len_entries))
        if needed * LEN_CLUSTER > dest.len_area:
            raise JournalFullError(
                f"journal full: the {num_live} live entries need {needed} clusters, the target area has "
                f"{dest.len_area // LEN_CLUSTER}; nothing was written",
                source=dest.name,
                num_clusters=dest.len_area // LEN_CLUSTER,
                hint=f"give the target at least {needed} clusters (${{num_clusters}})",
            )
    except BaseException:
        dest.abandon()
        raise
    return dest
