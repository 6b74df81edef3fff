"""Writing a journal: create (D1, D2), append (D6), reset (D2) and pack (D9).

The writer writes what the reader reads: the same field names as the .ksy, the
type codes and limits of :mod:`qjournal.format`, the entries of
:mod:`qjournal.entries`. Bytes outside the area are never touched: a file is
written through :meth:`Area.write`, which refuses to leave the area, and an
in-memory journal through a memoryview of exactly the area (so a write cannot
land outside it either; the bytearray cannot be resized while the writer is open).

Crash safety. Every append is a batch, committed all or nothing, in three steps
separated by barriers (fsync; a flush when ``durable=False``):

0. the *anchor*: the first byte of the batch that is not 0xFF, alone (the size
   byte at the tail; when the batch opens with an END of size 255, whose size
   byte is 0xFF, the size byte at the start of the next cluster);
1. every other byte of the batch (entries, and the header of any END it needs)
   except the *commit byte*, the type byte at ``ofs_tail + 1``, which stays 0xFF;
2. the commit byte.

Until step 2 lands the batch starts with a NONE type byte, so replay stops
before it and sees none of it. The one assumption: a single-byte write is
atomic; of the bytes written since the last barrier, any subset may be lost.
Because the anchor lands before anything else, bytes past the tail can be told
apart: an interrupted append leaves its anchor; data that is not the writer's
does not (:mod:`qjournal.leftovers` decides exactly). Opening for append
erases proven leftovers (only 0xFF is ever written there, the anchor last, so
the erase is itself crash-safe) and refuses anything else with
:class:`ForeignDataError`, writing nothing, unless ``erase_foreign_data=True``.
An in-memory area (a bytearray) has no crash to survive apart from its own
process: a batch is written there in the same order, the barriers being no-ops.

One writer at a time: opening a file for writing takes an exclusive,
non-blocking ``flock`` for the writer's lifetime; a second writer gets
:class:`JournalLockedError`. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import tempfile
import warnings
from collections import Counter
from typing import Callable, Iterable, NamedTuple, Sequence

from qjournal import leftovers
from qjournal.area import CHUNK, Area, Source, check_path, describe, write_all
from qjournal.entries import Entry, HashEntry, RawEntry
from qjournal.errors import (
    CorruptJournalError,
    ForeignDataError,
    JournalArgumentError,
    JournalFullError,
    JournalIOError,
    JournalLockedError,
)
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HASH_SECTORS,
    LEN_HEADER,
    MAX_LEN_BODY,
    MAX_LEN_DIGEST,
    MAX_LEN_REGULAR,
    MAX_SECTOR,
    MIN_LEN_ENTRY,
    RESET_BYTE,
    EntryType,
    first_not_reset,
    fits,
    last_not_reset,
)
from qjournal.reader import JournalReader, JournalState, Problem, type_name

__all__ = [
    "JournalWriter",
    "PackReport",
    "check_entry",
    "create",
    "live_entries",
    "num_clusters_needed",
    "open_for_append",
    "pack",
    "reset",
]

_END = int(EntryType.end)
_HASH = int(EntryType.hash)
_NONE = int(EntryType.none)
_HASH_HEADER = LEN_HEADER + LEN_HASH_SECTORS  # len_entry = len(digest) + 18
_HASH_PACK = [None] * _HASH_HEADER + [
    struct.Struct(f">BB{n - _HASH_HEADER}sQQ").pack for n in range(_HASH_HEADER, MAX_LEN_REGULAR + 1)
]
"""``_HASH_PACK[len_entry](len_entry, type, digest, physical_sector, first_logical_sector)``: a whole HASH entry."""
_ROOM = LEN_CLUSTER - LEN_HEADER  # fits(o, s) is o + s <= _ROOM
_tuple_new = tuple.__new__
_FF = bytes([RESET_BYTE])
_FF_CHUNK = _FF * CHUNK
_WIPED_KINDS = frozenset({"torn_write", "dirty_tail"})


def _unassigned_problem(ofs: int, entry_type: int, len_entry: int) -> Problem:
    """The anomaly the reader's check reports for an entry of an unassigned type (D4)."""
    return Problem("unassigned_type", ofs, f"entry of unassigned type {entry_type:#04x}, size {len_entry} (D4)", False)


# -- argument checks: each names the argument and why ------------------------
def _digest(digest: object) -> bytes:
    if type(digest) is not bytes:
        if not isinstance(digest, (bytes, bytearray, memoryview)):
            raise JournalArgumentError(f"digest must be bytes, not {type(digest).__name__}")
        digest = bytes(digest)
    n = len(digest)  # type: ignore[arg-type]
    if not 0 < n <= MAX_LEN_DIGEST:
        if n == 0:
            raise JournalArgumentError("digest is empty: a HASH entry needs a digest of at least 1 byte (D8)")
        raise JournalArgumentError(
            f"digest of {n} bytes is too long: at most {MAX_LEN_DIGEST} bytes fit in a HASH entry "
            f"(a regular entry is at most 254 bytes, 18 of them header and sectors) (D3, D8)"
        )
    return digest  # type: ignore[return-value]


def _sector(name: str, value: object) -> int:
    if type(value) is int and 0 <= value <= MAX_SECTOR:  # type: ignore[operator]
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, int):
        raise JournalArgumentError(f"{name} must be an integer, not {value!r}")
    if not 0 <= value <= MAX_SECTOR:
        raise JournalArgumentError(f"{name} {value} is out of range: a sector is an unsigned 64-bit integer, 0 to 2**64-1")
    return int(value)


def _raw_type(entry_type: object) -> int:
    if isinstance(entry_type, bool) or not isinstance(entry_type, int):
        raise JournalArgumentError(f"entry_type must be an integer type code, not {entry_type!r}")
    t = int(entry_type)
    if t == _END:
        raise JournalArgumentError("entry_type 0x01 (END) cannot be appended: the writer writes an END itself when an entry does not fit (D6)")
    if t == _NONE:
        raise JournalArgumentError("entry_type 0xff (NONE) cannot be appended: it marks the unwritten bytes of a reset area (D4)")
    if t == _HASH:
        raise JournalArgumentError("entry_type 0x02 (HASH) is appended with append_hash: its payload has a layout (D8)")
    if not 0 <= t <= 0xFF:
        raise JournalArgumentError(f"entry_type {t} is out of range: a type code is one byte, 0 to 255")
    return t


def _body(body: object) -> bytes:
    if type(body) is not bytes:
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise JournalArgumentError(f"body must be bytes, not {type(body).__name__}")
        body = bytes(body)
    if len(body) > MAX_LEN_BODY:  # type: ignore[arg-type]
        raise JournalArgumentError(
            f"body of {len(body)} bytes is too long: at most {MAX_LEN_BODY} (a regular entry is at most 254 bytes) (D3)"  # type: ignore[arg-type]
        )
    return body  # type: ignore[return-value]


def _encode(entry: object) -> tuple[bytes, Entry]:
    """The bytes of one entry (header included) and the entry, normalised, as the writer returns it."""
    if isinstance(entry, HashEntry):
        digest = _digest(entry.digest)
        ps = _sector("physical_sector", entry.physical_sector)
        fls = _sector("first_logical_sector", entry.first_logical_sector)
        len_entry = len(digest) + _HASH_HEADER
        data = _HASH_PACK[len_entry](len_entry, _HASH, digest, ps, fls)
        return data, _tuple_new(HashEntry, (digest, ps, fls, None))
    if isinstance(entry, RawEntry):
        t = _raw_type(entry.entry_type)
        body = _body(entry.body)
        return bytes((len(body) + LEN_HEADER, t)) + body, RawEntry(t, body)
    raise JournalArgumentError(f"an entry to append must be a HashEntry or a RawEntry, not {type(entry).__name__}")


def check_entry(entry: Entry) -> Entry:
    """Check an entry against the writer's rules (D3, D4, D8) without writing it.

    Returns the entry as the writer would append it (no ``ofs``); raises
    :class:`JournalArgumentError` naming the field and the rule otherwise.
    """
    return _encode(entry)[1]


def _len_area(num_clusters: object, length: object) -> int | None:
    """The area length asked for by ``num_clusters`` and/or ``length`` (None: neither given)."""
    n = None
    if num_clusters is not None:
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
            raise JournalArgumentError(f"num_clusters must be an integer >= 1, not {num_clusters!r} (D1)")
        n = num_clusters * LEN_CLUSTER
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1 or length % LEN_CLUSTER:
            raise JournalArgumentError(f"length must be a non-zero multiple of {LEN_CLUSTER}, not {length!r} (D1)")
        if n is not None and n != length:
            raise JournalArgumentError(f"num_clusters {num_clusters} ({n} bytes) and length {length} disagree")
        n = length
    return n


# -- the writer --------------------------------------------------------------
class JournalWriter:
    """A journal opened for appending: bytes (a bytearray), a path or a binary file, at an offset (D1).

    ``JournalWriter(source, offset, length)`` opens an existing journal: it takes
    the lock, validates the whole area with the reader (a corrupt one is refused
    with the reader's :class:`CorruptJournalError`), finds the tail, and erases
    what an interrupted append left past it. Bytes past the tail that are not
    such leftovers are refused with :class:`ForeignDataError` before anything is
    written, unless ``erase_foreign_data=True``. An area inside a larger file
    (``offset`` not 0) addressed without ``length`` runs to the end of the file:
    it is refused when it holds anything but 0xFF past the tail. :func:`create`
    makes a new journal. Use as a context manager: it syncs, unlocks and closes
    on exit.

    ``durable=False`` keeps the write order but flushes instead of fsyncing:
    safe against a crash of the process, not of the machine. ``validate`` is
    accepted for compatibility and ignored: the tail is always found by replay
    (the binary search that ``validate=False`` used could, after a crash, place
    an append where replay never reaches it).
    """

    def __init__(
        self,
        source: Source,
        offset: int = 0,
        length: int | None = None,
        *,
        validate: bool = True,
        durable: bool = True,
        erase_foreign_data: bool = False,
    ) -> None:
        if not validate:
            warnings.warn(
                "validate=False is ignored: an open for append always finds the tail by replay "
                "(the tail search could lose an acknowledged append after a crash)",
                DeprecationWarning,
                stacklevel=3 if type(self) is JournalWriter else 2,
            )
        self._attach(Area(source, offset, length, writable=True), _memory(source), durable)
        try:
            self._lock()
            self._open_existing(erase_foreign_data)
        except BaseException:
            self._release()
            raise

    # -- setting up ---------------------------------------------------------
    def _attach(self, area: Area, memory: bytearray | None, durable: bool, owned: object = None) -> None:
        """Set up over ``area``; ``memory`` is the bytearray under an in-memory area."""
        self.area = area
        self._len_area = area.len_area
        self._in_memory = memory is not None
        self._durable = durable
        self._owned = owned
        self._lock_fd: int | None = None
        self._closed = False
        self._view: memoryview | None = None
        if memory is not None:
            # a window of exactly the area: a write through it cannot land outside the area
            self._view = memoryview(memory)[area.area_offset : area.area_offset + area.len_area]
            self._write = self._write_view
        else:
            self._write = area.write
        self._barrier: Callable[[], None] = self._sync_area if durable else self._flush_area
        self._needs_wipe = False
        self._ofs_tail = 0
        self._fast_room = _ROOM if memory is not None else -1
        self._new_census()

    def _tail_moved(self) -> None:
        """Keep the in-memory fast path of append_hash off a tail at the end of the area."""
        self._fast_room = _ROOM if self._in_memory and self._ofs_tail < self._len_area and not self._closed else -1

    def _new_census(self, counts: dict[str, int] | None = None, anomalies: Iterable[Problem] = ()) -> None:
        """Start counting from a census (``None``: unknown, taken by :meth:`state` when asked)."""
        self._base_counts = counts
        self._base_anomalies = [p for p in anomalies if p.kind not in _WIPED_KINDS]
        self._num_hash = 0
        self._raw_counts: Counter[int] = Counter()
        self._raw_log: list[tuple[int, int, int]] = []  # (ofs, entry_type, len_entry) of raw entries appended

    def _lock(self) -> None:
        fd = self.area.fileno()
        if fd is not None:
            _flock(fd, self.name)
            self._lock_fd = fd

    def _open_existing(self, erase_foreign_data: bool) -> None:
        state = _reader_on(self.area).state()  # raises the reader's CorruptJournalError
        self._ofs_tail = state.ofs_tail
        self._new_census(dict(state.entries_by_type), state.anomalies)
        if any(p.kind in _WIPED_KINDS for p in state.anomalies):  # bytes other than 0xFF past the tail
            self._clear_past_tail(erase_foreign_data)
        self._tail_moved()

    def _clear_past_tail(self, erase_foreign_data: bool) -> None:
        """Erase what an interrupted append left past the tail; refuse, writing nothing, anything else."""
        area, tail = self.area, self._ofs_tail
        found = leftovers.survey(area.chunks(tail))
        if found.is_clean:
            return
        assert found.ofs_first is not None and found.ofs_last is not None
        what = (
            f"{_count(found.num_bytes, 'byte')} other than 0xFF past the tail at {tail:#x} "
            f"({found.ofs_first:#x} to {found.ofs_last:#x}, in {_count(found.num_clusters, 'cluster')})"
        )
        if not area.length_given and area.area_offset:
            raise JournalArgumentError(
                f"the area was given an offset ({area.area_offset:#x}) but no length, so it runs to the end of the "
                f"file ({area.len_file} bytes), and it holds {what}: they may be data after the journal, not its "
                f"own, so nothing was written; give the area's length (${{length}})",
                found.ofs_first,
                area_offset=area.area_offset,
                source=self.name,
            )
        verdict = leftovers.explain(tail, self._len_area, found.ofs_last, area.read_cluster)
        if not verdict.is_leftover and not erase_foreign_data:
            raise ForeignDataError(
                f"{what} are not what an interrupted append leaves: {verdict.reason}. They may be another "
                f"file's data (an area addressed with a wrong offset or length?), so nothing was written. "
                f"Check the offset and length ('qjournal check' shows the journal and what lies past its tail); "
                f"if these bytes really are this journal's own, ${{erase_foreign_data}} erases them",
                found.ofs_first,
                ofs_tail=tail,
                ofs_last=found.ofs_last,
                num_bytes=found.num_bytes,
                num_clusters=found.num_clusters,
                area_offset=area.area_offset,
                source=self.name,
            )
        self._erase(tail, self._len_area)

    # -- the area ------------------------------------------------------------
    @property
    def name(self) -> str:
        """The target's name, for messages."""
        return self.area.name

    @property
    def len_area(self) -> int:
        """Area length in bytes."""
        return self._len_area

    @property
    def num_clusters(self) -> int:
        """Number of journal clusters in the area."""
        return self._len_area // LEN_CLUSTER

    @property
    def ofs_tail(self) -> int:
        """Offset of the NONE where replay stops: where the next entry goes if it fits (D6)."""
        return self._ofs_tail

    @property
    def len_free(self) -> int:
        """Bytes from the tail to the end of the area."""
        return self._len_area - self._ofs_tail

    @property
    def is_full(self) -> bool:
        """True when no entry, not even a 2-byte one, can be appended (D6)."""
        tail = self._ofs_tail
        return tail >= self._len_area or (
            tail >= self._len_area - LEN_CLUSTER and not fits(tail % LEN_CLUSTER, MIN_LEN_ENTRY)
        )

    def state(self) -> JournalState:
        """The journal's state, equal to ``JournalReader(...).check().state``, without re-reading the area."""
        self._check_open()
        if self._base_counts is None:
            self._take_census()
        assert self._base_counts is not None
        tail = self._ofs_tail
        counts = Counter(self._base_counts)
        if self._num_hash:
            counts[type_name(_HASH)] += self._num_hash
        for t, n in self._raw_counts.items():
            counts[type_name(t)] += n
        anomalies = self._base_anomalies + [_unassigned_problem(*r) for r in self._raw_log]
        return JournalState(
            len_area=self._len_area,
            num_clusters=self.num_clusters,
            num_clusters_used=-(-tail // LEN_CLUSTER),
            ofs_tail=tail,
            len_free=self._len_area - tail,
            is_full=self.is_full,
            num_entries=sum(counts.values()),
            entries_by_type=dict(counts),
            anomalies=tuple(anomalies),
        )

    def _take_census(self) -> None:
        state = _reader_on(self.area).state()
        self._new_census(dict(state.entries_by_type), state.anomalies)

    # -- appending -----------------------------------------------------------
    def append_hash(self, digest: bytes, physical_sector: int, first_logical_sector: int) -> HashEntry:
        """Append one HASH entry (D8); return it with its offset ``ofs`` in the area."""
        if type(digest) is not bytes or not 0 < (len_digest := len(digest)) <= MAX_LEN_DIGEST:
            digest = _digest(digest)
            len_digest = len(digest)
        if type(physical_sector) is not int or type(first_logical_sector) is not int:
            physical_sector = _sector("physical_sector", physical_sector)
            first_logical_sector = _sector("first_logical_sector", first_logical_sector)
        len_entry = len_digest + _HASH_HEADER
        try:
            data = _HASH_PACK[len_entry](len_entry, _HASH, digest, physical_sector, first_logical_sector)
        except struct.error:  # a sector out of range: say which
            _sector("physical_sector", physical_sector)
            _sector("first_logical_sector", first_logical_sector)
            raise
        pos = self._ofs_tail
        # The fast path of _append_one, in memory only: fits(pos % LEN_CLUSTER, len_entry),
        # and the tail is not at the end of the area (_fast_room is -1 otherwise).
        if pos % LEN_CLUSTER + len_entry <= self._fast_room:
            self._view[pos : pos + len_entry] = data  # type: ignore[index]
            self._ofs_tail = pos + len_entry
        else:
            pos = self._append_one(data)
        self._num_hash += 1
        return _tuple_new(HashEntry, (digest, physical_sector, first_logical_sector, pos))

    def append_raw(self, entry_type: int, body: bytes = b"") -> RawEntry:
        """Append one entry of an unassigned type (0x00, 0x03-0xFE) with a raw ``body`` (D4)."""
        t = _raw_type(entry_type)
        body = _body(body)
        len_entry = len(body) + LEN_HEADER
        ofs = self._append_one(bytes((len_entry, t)) + body)
        self._raw_counts[t] += 1
        self._raw_log.append((ofs, t, len_entry))
        return RawEntry(t, body, ofs)

    def append(self, entry: Entry) -> Entry:
        """Append a :class:`HashEntry` or :class:`RawEntry` (its ``ofs`` is ignored); return it placed."""
        if isinstance(entry, HashEntry):
            return self.append_hash(entry.digest, entry.physical_sector, entry.first_logical_sector)
        if isinstance(entry, RawEntry):
            return self.append_raw(entry.entry_type, entry.body)
        raise JournalArgumentError(f"an entry to append must be a HashEntry or a RawEntry, not {type(entry).__name__}")

    def _append_one(self, data: bytes) -> int:
        """Write one encoded entry as a batch of one; return its offset."""
        pos = self._ofs_tail
        o = pos % LEN_CLUSTER
        if pos < self._len_area and fits(o, len(data)):
            if self._in_memory:
                self._write(pos, data)
            else:
                self._commit([(pos, data)])
            self._ofs_tail = pos + len(data)
            return pos
        at = pos - o + LEN_CLUSTER
        if at >= self._len_area:
            self._check_open()
            raise self._full(len(data))
        self._commit([(pos, bytes((LEN_CLUSTER - o, _END))), (at, data)])
        self._ofs_tail = at + len(data)
        return at

    def append_many(self, entries: Iterable[Entry]) -> list[Entry]:
        """Append a batch all or nothing; return the entries placed, in order.

        Every entry is checked first; a batch that does not fit whole raises
        :class:`JournalFullError` and writes nothing.
        """
        self._check_open()
        encoded = []
        for i, entry in enumerate(entries):
            try:
                encoded.append(_encode(entry))
            except JournalArgumentError as exc:
                raise JournalArgumentError(f"entries[{i}]: {exc.reason}") from None
        if not encoded:
            return []
        runs: list[tuple[int, bytes]] = []
        out: list[Entry] = []
        pos = start = self._ofs_tail
        len_area = self._len_area
        buf = bytearray()
        for i, (data, entry) in enumerate(encoded):
            o = pos % LEN_CLUSTER
            if pos >= len_area or o + len(data) > _ROOM:  # not fits(o, len(data)), inlined
                at = pos - o + LEN_CLUSTER
                if at >= len_area:
                    raise self._full(len(data), i, len(encoded), pos)
                buf += bytes((LEN_CLUSTER - o, _END))
                runs.append((start, bytes(buf)))
                buf = bytearray()
                pos = start = at
            buf += data
            out.append(_tuple_new(type(entry), entry[:-1] + (pos,)))  # entry._replace(ofs=pos), without its cost
            pos += len(data)
        runs.append((start, bytes(buf)))
        self._commit(runs)
        self._ofs_tail = pos
        num_hash = 0
        for e in out:
            if type(e) is HashEntry:
                num_hash += 1
            else:
                self._raw_counts[e.entry_type] += 1
                self._raw_log.append((e.ofs, e.entry_type, e.len_entry))  # type: ignore[arg-type]
        self._num_hash += num_hash
        return out

    def _commit(self, runs: Sequence[tuple[int, bytes]]) -> None:
        """Write a batch: its anchor, barrier, the rest but the commit byte, barrier, the commit byte, barrier.

        ``runs`` are (area offset, bytes) in order; the first starts at the tail
        and its byte 1 is the commit byte (the type byte of the first entry or
        END). The anchor is the batch's first byte that is not 0xFF: the first
        run's size byte, or, when the first run is an END of size 255 (size
        byte 0xFF), the size byte that opens the second run.
        """
        write = self._write
        if self._closed:
            self._check_open()
        if self._needs_wipe:
            self._erase(self._ofs_tail, self._len_area)
        # In memory the barriers cost nothing (there is no file), but the order still matters: an exception
        # between two writes must leave what the leftovers rule accepts.
        pos, first = runs[0]
        self._needs_wipe = True  # until the commit byte is durable, a failure leaves bytes past the tail
        anchored = 0 if first[0] != RESET_BYTE else 1  # the run that opens with the anchor
        at, data = runs[anchored]
        write(at, data[:1])
        self._barrier()
        if len(first) > 2:
            write(pos + 2, first[2:])
        for i in range(1, len(runs)):
            p, data = runs[i]
            if i == anchored:
                write(p + 1, data[1:])
            else:
                write(p, data)
        self._barrier()
        write(pos + 1, first[1:2])
        self._barrier()
        self._needs_wipe = False

    def _full(self, len_entry: int, index: int | None = None, count: int = 1, pos: int | None = None) -> JournalFullError:
        pos = self._ofs_tail if pos is None else pos
        room = max(0, LEN_CLUSTER - pos % LEN_CLUSTER) if pos < self._len_area else 0
        what = f"an entry of {len_entry} bytes" if index is None else f"entries[{index}] ({len_entry} bytes) of a batch of {count}"
        reason = (
            f"journal full: no room for {what} at offset {pos:#x}: {room} bytes left in the last cluster, "
            f"{len_entry} + 2 needed for it and the END that closes the cluster (D6); nothing was written"
        )
        return JournalFullError(reason, pos, area_offset=self.area.area_offset, source=self.name)

    # -- reset, erase, flush, close ------------------------------------------
    def reset(self) -> None:
        """Reset the journal (D2): every byte of the area back to 0xFF, the first entry's type byte first."""
        self._check_open()
        self._erase(0, self._len_area if self._needs_wipe else self._ofs_tail)
        self._ofs_tail = 0
        self._tail_moved()
        self._new_census({})

    def _erase(self, start: int, end: int) -> None:
        """Write 0xFF over every byte other than 0xFF in ``[start, end)``, in three barriers.

        First the type byte at ``start + 1``: ``start`` is where replay stops
        (the tail, or 0 for a reset), so from then on replay stops there. Then
        every other such byte but the first (the anchor, see
        :mod:`qjournal.leftovers`), then the first. A crash at any point leaves
        bytes that are still provably leftovers: a subset of them, anchor included.
        """
        area = self.area
        if start + 1 < end and area.read(start + 1, 1) != _FF:
            self._write(start + 1, _FF)
            self._barrier()
        anchor = None
        wrote = False
        for pos, chunk in area.chunks(start, end):
            lo = first_not_reset(chunk)
            if lo == len(chunk):
                continue
            hi = last_not_reset(chunk) + 1
            if anchor is None:
                anchor = pos + lo
                lo += 1
            if lo < hi:
                self._write(pos + lo, _FF_CHUNK[: hi - lo])
                wrote = True
        if wrote:
            self._barrier()
        if anchor is not None:
            self._write(anchor, _FF)
            self._barrier()
        self._needs_wipe = False

    def _sync_area(self) -> None:
        try:
            self.area.sync()
        except OSError as exc:
            raise JournalIOError(f"cannot sync: {exc.strerror or exc}", source=self.name) from exc

    def _flush_area(self) -> None:
        try:
            self.area.flush()
        except OSError as exc:
            raise JournalIOError(f"cannot flush: {exc.strerror or exc}", source=self.name) from exc

    def flush(self) -> None:
        """Hand buffered writes to the operating system (nothing to do in memory)."""
        self._check_open()
        self._flush_area()

    def sync(self) -> None:
        """Make every write durable: flush, then fsync a real file."""
        self._check_open()
        self._sync_area()

    def _write_closed(self, pos: int, data: bytes) -> None:
        self._check_open()

    def _write_view(self, pos: int, data: bytes) -> None:
        """Write into the in-memory area; refuses to leave it, as :meth:`Area.write` does."""
        if pos < 0 or pos + len(data) > self._len_area:
            raise JournalArgumentError(
                f"write of {len(data)} bytes at {pos:#x} would leave the area ({self._len_area} bytes)",
                pos,
                area_offset=self.area.area_offset,
                source=self.name,
            )
        self._view[pos : pos + len(data)] = data  # type: ignore[index]

    def _check_open(self) -> None:
        if self._closed:
            raise JournalArgumentError("the journal writer is closed", source=self.name)

    def close(self) -> None:
        """Sync, release the lock and close what the writer opened (a caller's file stays open)."""
        if self._closed:
            return
        try:
            if not self._in_memory:
                self._sync_area()
        finally:
            self._release()

    def _release(self) -> None:
        self._closed = True
        self._tail_moved()
        self._write = self._write_closed
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            except OSError:
                pass
            self._lock_fd = None
        self.area.close()
        if self._owned is not None:
            self._owned.close()  # type: ignore[attr-defined]
            self._owned = None

    def __enter__(self) -> "JournalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"ofs_tail={self._ofs_tail:#x}"
        return f"<JournalWriter {self.name} {self.num_clusters} clusters {state}>"


def _count(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun, singular or plural: "1 byte", "3 bytes"."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _memory(source: object) -> bytearray | None:
    """The bytearray of an in-memory journal, else None."""
    return source if isinstance(source, bytearray) else None


def _flock(fd: int, name: str) -> None:
    """Take the exclusive, non-blocking advisory lock of a writer on ``fd``."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalLockedError(
            "another writer holds this journal's file (an exclusive lock): a journal has one writer at a time",
            source=name,
        ) from None
    except OSError as exc:
        raise JournalIOError(f"cannot lock the file for writing: {exc.strerror or exc}", source=name) from None


def _reader_on(area: Area) -> JournalReader:
    """A reader over the writer's own area (no second open, the lock stays ours)."""
    reader = JournalReader.__new__(JournalReader)
    reader.area = area
    return reader


# -- module functions ----------------------------------------------------------
def open_for_append(
    source: Source,
    offset: int = 0,
    length: int | None = None,
    *,
    validate: bool = True,
    durable: bool = True,
    erase_foreign_data: bool = False,
) -> JournalWriter:
    """Open an existing journal for appending: ``with qjournal.open_for_append("j.bin") as w: ...``.

    See :class:`JournalWriter` (``validate`` is ignored; ``erase_foreign_data``
    erases bytes past the tail that are not crash leftovers instead of refusing).
    """
    return JournalWriter(
        source, offset, length, validate=validate, durable=durable, erase_foreign_data=erase_foreign_data
    )


def create(
    target: Source,
    num_clusters: int | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    force: bool = False,
    durable: bool = True,
) -> JournalWriter:
    """Create a journal (D1, D2) and return a writer on it, at its empty tail.

    ``target`` is a path, a bytearray or a binary file. A path that does not
    exist is created with ``num_clusters`` clusters, whole or not at all (a
    temporary file beside it, linked into place once written; through a
    dangling symbolic link, at the link's target). An existing file or
    bytearray exactly ``offset`` bytes long is extended by the area; otherwise
    the area (``offset``, and ``length`` or ``num_clusters``, else the rest of the
    file) must lie inside it, and is refused if it holds a byte other than
    0xFF unless ``force=True``, which resets it. With ``force=True`` and no size
    the area runs to the end of the file: it is reset only when it holds a
    journal and nothing but 0xFF past its tail. Bytes outside the area are never
    touched.
    """
    return _Target(target, num_clusters, offset, length, force, durable).make()


class _Target:
    """Where :func:`create` (and :func:`pack`) will write: resolved, checked and locked, nothing written yet."""

    def __init__(
        self, target: Source, num_clusters: int | None, offset: int, length: int | None, force: bool, durable: bool
    ) -> None:
        self.target = target
        self.path = target  # where a new file goes: a dangling symbolic link's target
        self.name = describe(target)
        self.offset = offset
        self.force = force
        self.durable = durable
        self.writer: JournalWriter | None = None  # an existing area, opened and locked
        self.file = None  # a file being extended, opened and locked
        self.grow = ""  # "", "new", "file" or "memory"
        self.len_file = offset  # where the bytes written start: the end of a file being grown, 0 for a new one
        len_area = _len_area(num_clusters, length)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise JournalArgumentError(f"offset must be a non-negative integer, not {offset!r}", source=self.name)
        if isinstance(target, (str, os.PathLike)):
            check_path(target, self.name)
            try:
                st = os.stat(target)
            except FileNotFoundError:
                st = None
            except OSError as exc:
                raise JournalIOError(f"cannot stat: {exc.strerror or exc}", source=self.name) from None
            if st is None:
                if os.path.islink(target):
                    self.path = os.path.realpath(target)
                if len_area is None:
                    raise JournalArgumentError("num_clusters (or length) is needed to create a new journal file", source=self.name)
                if offset:
                    raise JournalArgumentError(f"offset {offset:#x} for a new file: a new journal file starts at 0", source=self.name)
                self.grow = "new"
            elif stat.S_ISREG(st.st_mode) and st.st_size == offset and len_area is not None:
                self._open_end_of_file()
        elif isinstance(target, bytearray) and len(target) == offset and len_area is not None:
            self.grow = "memory"
        if self.grow:
            assert len_area is not None
            self.len_area = len_area
            self._check_room()
            return
        writer = JournalWriter.__new__(JournalWriter)
        writer._attach(Area(target, offset, len_area, writable=True), _memory(target), durable)
        self.writer = writer
        try:
            writer._lock()
            area = writer.area
            implicit = "" if area.length_given or not offset else (
                f"; the area was given an offset but no length, so it runs to the end of the file "
                f"({area.len_file} bytes): give the area's length (${{length}})"
            )
            if force and not area.length_given:
                _check_whole_rest(area, "create with ${force}")
            if not force:
                dirty = _first_dirty(area)
                if dirty is not None:
                    byte = area.read(dirty, 1)[0]
                    raise JournalArgumentError(
                        f"the area is not reset: byte {byte:#04x} where 0xFF was expected; it may hold a journal "
                        f"or other data, and create does not overwrite it without ${{force}} (D2){implicit}",
                        dirty,
                        area_offset=offset,
                        source=self.name,
                    )
        except BaseException:
            self.abandon()
            raise
        self.len_area = writer.len_area

    def _check_room(self) -> None:
        """Refuse, before writing anything, an area the file system (or memory) cannot hold."""
        if self.grow == "memory":
            return  # make() turns MemoryError into a JournalArgumentError
        try:
            # the file system that will hold the bytes: the directory of the real file, links followed
            st = os.statvfs(os.path.dirname(os.path.realpath(self.path)))  # type: ignore[arg-type]
        except (OSError, AttributeError):
            return
        free = st.f_bavail * st.f_frsize
        needed = self.offset + self.len_area - self.len_file
        if needed > free:
            self.abandon()
            raise JournalIOError(
                f"the area needs {needed} more bytes and the file system has {free} bytes free; nothing written",
                source=self.name,
            )

    def _open_end_of_file(self) -> None:
        """Open and lock a file that ends at the offset: the area grows it, only bytes past its end are written."""
        try:
            f = open(self.target, "r+b", buffering=0)  # type: ignore[arg-type]  # noqa: SIM115
        except OSError as exc:
            raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=self.name) from None
        try:
            _flock(f.fileno(), self.name)
            if os.fstat(f.fileno()).st_size != self.offset:
                raise JournalIOError(f"the file changed size: it no longer ends at offset {self.offset:#x}", source=self.name)
        except BaseException:
            f.close()
            raise
        self.file = f
        self.grow = "file"

    def identity(self) -> object:
        """See :func:`_identity`; None for a file that does not exist yet."""
        if self.writer is not None:
            return _identity(self.target, self.writer.area)
        if self.file is not None:
            st = os.fstat(self.file.fileno())
            return ("file", st.st_dev, st.st_ino)
        return ("mem", id(self.target)) if self.grow == "memory" else None

    def abandon(self) -> None:
        """Give up before writing: unlock and close."""
        if self.writer is not None:
            self.writer._release()
        if self.file is not None:
            self.file.close()

    def make(self) -> JournalWriter:
        """Write the reset area and return a writer on it."""
        if self.writer is not None:
            writer = self.writer
            try:
                if self.force:
                    writer._erase(0, writer._len_area)
            except BaseException:
                self.abandon()
                raise
            return writer
        if self.grow == "memory":
            try:
                self.target.extend(_FF * self.len_area)  # type: ignore[union-attr]
            except (MemoryError, OverflowError):
                raise JournalArgumentError(
                    f"an in-memory area of {self.len_area} bytes does not fit in memory; nothing written", source=self.name
                ) from None
            except BufferError:
                raise JournalArgumentError(
                    "cannot grow the bytearray: it is in use (a memoryview, or an open writer, holds it)", source=self.name
                ) from None
            writer = JournalWriter.__new__(JournalWriter)
            writer._attach(Area(self.target, self.offset, self.len_area, writable=True), self.target, self.durable)  # type: ignore[arg-type]
            return writer
        return self._write_file()

    def _write_file(self) -> JournalWriter:
        """Write the reset area: a new file all or nothing (a temporary file linked into place), or an extension."""
        new = self.grow == "new"
        f = self.file
        tmp = None
        if new:
            folder = os.path.dirname(os.path.abspath(self.path))  # type: ignore[arg-type]
            try:
                fd, tmp = tempfile.mkstemp(prefix=".qjournal-", suffix=".tmp", dir=folder)
            except OSError as exc:
                raise JournalIOError(f"cannot create: {exc.strerror or exc}", source=self.name) from None
            f = os.fdopen(fd, "r+b", buffering=0)
        assert f is not None
        try:
            if new:
                _flock(f.fileno(), self.name)
            try:
                f.seek(self.len_file)
                end = self.offset + self.len_area
                for pos in range(self.len_file, end, CHUNK):
                    write_all(f, _FF_CHUNK[: min(CHUNK, end - pos)])
                if self.durable:
                    os.fsync(f.fileno())
            except OSError as exc:
                raise JournalIOError(f"cannot write the reset area: {exc.strerror or exc}; nothing was left behind", source=self.name) from None
            if tmp is not None:
                _link_into_place(tmp, self.path, self.name)  # type: ignore[arg-type]
                tmp = None
                if self.durable:
                    _sync_dir(self.path)  # type: ignore[arg-type]
            writer = JournalWriter.__new__(JournalWriter)
            writer._attach(Area(f, self.offset, self.len_area, writable=True), None, self.durable, owned=f)
            writer.area.name = self.name
            writer._lock_fd = f.fileno()
            return writer
        except BaseException:
            f.close()
            if tmp is not None:
                _unlink(tmp)
            elif not new:
                _truncate(self.target, self.len_file)  # type: ignore[arg-type]
            raise


def _link_into_place(tmp: str, target: str | os.PathLike, name: str) -> None:
    """Give the finished temporary file its name, never replacing a file that appeared meanwhile."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise JournalIOError("the file appeared while the journal was being created; nothing written", source=name) from None
    except OSError:  # a file system without hard links: rename, after checking (a narrow race, documented)
        if os.path.lexists(target):
            raise JournalIOError("the file appeared while the journal was being created; nothing written", source=name) from None
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise JournalIOError(f"cannot create: {exc.strerror or exc}", source=name) from None
        return
    _unlink(tmp)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _truncate(path: str | os.PathLike, size: int) -> None:
    """Undo a failed extension of an existing file (it ended at ``size``)."""
    try:
        os.truncate(path, size)
    except OSError:
        pass


def _sync_dir(path: str | os.PathLike) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _first_dirty(area: Area, start: int = 0) -> int | None:
    """Offset of the first byte other than 0xFF in the area from ``start``, or None."""
    for pos, chunk in area.chunks(start):
        first = first_not_reset(chunk)
        if first < len(chunk):
            return pos + first
    return None


def reset(target: Source, offset: int = 0, length: int | None = None, *, durable: bool = True) -> None:
    """Reset an existing area (D2): every byte back to 0xFF. A corrupt area can be reset too.

    An area addressed without ``length`` runs to the end of the file: it is reset
    only when it holds a journal and nothing but 0xFF past its tail (else
    refused, nothing written: give ``length``). Crash-safe:
    the type byte of the first entry goes first, so from then on the area
    replays as empty; the first byte other than 0xFF goes last, so a crash in
    between leaves leftovers that the next open for append proves and erases.
    """
    writer = JournalWriter.__new__(JournalWriter)
    writer._attach(Area(target, offset, length, writable=True), _memory(target), durable)
    try:
        writer._lock()
        if not writer.area.length_given:
            _check_whole_rest(writer.area, "reset")
        writer._erase(0, writer._len_area)
        writer.close()
    finally:
        writer._release()


def _check_whole_rest(area: Area, what: str) -> None:
    """Refuse to erase an area addressed without a length unless it holds a journal and only 0xFF past its tail.

    Without a length the area runs to the end of the file: a forgotten offset or
    length must not cost the data that follows a journal, or that was never one.
    """
    why = None
    try:
        tail = _reader_on(area).state().ofs_tail
    except CorruptJournalError as exc:
        why = f"it does not hold a journal ({exc.rule} at {exc.offset or 0:#x} of the area)"
    else:
        dirty = _first_dirty(area, tail)
        if dirty is not None:
            why = f"past the journal's tail at {tail:#x} it holds bytes other than 0xFF (the first at {dirty:#x})"
    if why is not None:
        span = "the whole file" if not area.area_offset else f"every byte from offset {area.area_offset:#x} to the end of the file"
        raise JournalArgumentError(
            f"{what} without a length would erase {span} ({area.len_area} bytes), and {why}: they may be another "
            f"file's data, so nothing was written; give the area's length (${{length}}) to erase exactly that area",
            source=area.name,
        )


# -- pack (D9) ---------------------------------------------------------------
class PackReport(NamedTuple):
    """What :func:`pack` read and wrote."""

    num_entries_read: int
    """Entries replayed from the source, every type."""
    num_hash_read: int
    """HASH entries among them."""
    num_live: int
    """Live HASH entries written to the target: the last one per digest."""
    num_raw_dropped: int
    """Entries of unassigned types, not written again (D9 keeps only live HASH entries)."""
    state: JournalState
    """The target's state after the pack."""


def live_entries(entries: Iterable[Entry]) -> list[HashEntry]:
    """The live HASH entries (D9): the last one per digest, in the order of their last occurrence.

    Raw entries of unassigned types are dropped.
    """
    live: dict[bytes, HashEntry] = {}
    for e in entries:
        if isinstance(e, HashEntry):
            live.pop(e.digest, None)
            live[e.digest] = e
    return list(live.values())


def _tail_after(len_entries: Iterable[int]) -> int:
    """Where the tail is after appending entries of these sizes to an empty, unbounded area (D6)."""
    pos = 0
    for s in len_entries:
        o = pos % LEN_CLUSTER
        if not fits(o, s):
            pos += LEN_CLUSTER - o
        pos += s
    return pos


def num_clusters_needed(entries: Iterable[Entry]) -> int:
    """The fewest clusters (at least 1) that hold these entries, appended in order to a reset area (D6)."""
    tail = _tail_after(_encode(e)[1].len_entry for e in entries)
    return max(1, -(-tail // LEN_CLUSTER))


def pack(
    source: Source,
    target: Source,
    num_clusters: int | None = None,
    *,
    source_offset: int = 0,
    source_length: int | None = None,
    offset: int = 0,
    length: int | None = None,
    force: bool = False,
    durable: bool = True,
) -> PackReport:
    """Pack a journal (D9): write only its live HASH entries into a fresh area.

    The source is replayed (a corruption before its tail is refused with the
    reader's error); the last entry per digest wins, in the order of the last
    occurrences; entries of unassigned types are dropped. The target is made as
    by :func:`create` (``num_clusters`` defaults to the source's when the target
    is a new file) and the live entries are appended as one atomic batch. When
    they do not fit, :class:`JournalFullError` is raised before the target is
    created or changed. The target area may not overlap the source area.
    """
    with JournalReader(source, source_offset, source_length) as reader:
        read = list(reader.replay())
        src_clusters = reader.num_clusters
        src_range = (reader.area.area_offset, reader.area.area_offset + reader.len_area)
        src_id = _identity(source, reader.area)
    live = live_entries(read)
    num_hash = sum(isinstance(e, HashEntry) for e in read)
    if num_clusters is None and length is None and _is_empty_at(target, offset):
        num_clusters = src_clusters
    tail = _tail_after(e.len_entry for e in live)

    dest = _Target(target, num_clusters, offset, length, force, durable)
    try:
        if src_id is not None and dest.identity() == src_id:
            lo, hi = dest.offset, dest.offset + dest.len_area
            if lo < src_range[1] and src_range[0] < hi:
                raise JournalArgumentError(
                    f"the target area [{lo:#x}, {hi:#x}) overlaps the source area [{src_range[0]:#x}, {src_range[1]:#x}): "
                    f"pack writes into a fresh area",
                    source=dest.name,
                )
        needed = max(1, -(-tail // LEN_CLUSTER))
        if needed * LEN_CLUSTER > dest.len_area:
            raise JournalFullError(
                f"journal full: the {len(live)} live entries need {needed} clusters, the target area has "
                f"{dest.len_area // LEN_CLUSTER}; nothing was written",
                source=dest.name,
            )
    except BaseException:
        dest.abandon()
        raise
    with dest.make() as writer:
        writer.append_many(live)
        state = writer.state()
    return PackReport(len(read), num_hash, len(live), len(read) - num_hash, state)


def _is_empty_at(target: object, offset: int) -> bool:
    """True when ``target`` ends at ``offset`` (a path that does not exist ends at 0): create would grow it."""
    if isinstance(target, bytearray):
        return len(target) == offset
    if isinstance(target, (str, os.PathLike)):
        try:
            st = os.stat(target)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path, which _Target refuses
            return offset == 0
        return stat.S_ISREG(st.st_mode) and st.st_size == offset
    return False


def _identity(source: object, area: Area) -> object:
    """Something equal for two handles on the same file or buffer (None when unknown)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return ("mem", id(source))
    fd = area.fileno()
    if fd is None:
        return ("obj", id(source))
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return ("file", st.st_dev, st.st_ino)
