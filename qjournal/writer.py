"""The append path: open a journal for append, place entries (D6), commit them, erase leftovers.

Strategy. :class:`JournalWriter` is the mirror of the reader: it writes what the
reader reads, in the .ksy's vocabulary (:mod:`qjournal.entries` encodes, the
rules of :mod:`qjournal.format` place). Bytes outside the area are never
touched: a file is written through :meth:`Area.write`, which refuses to leave
the area, and an in-memory journal through a memoryview of exactly the area.
Making journals (create, reset) is :mod:`qjournal.making`; packing them,
:mod:`qjournal.packing`.

Crash safety (docs/format.md D19-D22). Every append is a batch, committed all
or nothing, in three steps separated by barriers (fsync; a flush when
``durable=False``; nothing for an in-memory area, whose only crash is its own
process's, written in the same order):

0. the *anchor*: the first byte of the batch that is not 0xFF, alone (the size
   byte at the tail; when the batch opens with an END of size 255, whose size
   byte is 0xFF, the size byte at the start of the next cluster);
1. every other byte of the batch (entries, and the header of any END it needs)
   except the *commit byte*, the type byte at ``ofs_tail + 1``, which stays 0xFF;
2. the commit byte.

Until step 2 lands the batch starts with a NONE type byte, so replay stops
before it and sees none of it. The one assumption: a single-byte write is
atomic; of the bytes written since the last barrier, any subset may be lost.
Because the anchor lands first, an interrupted append always leaves it, and
:mod:`qjournal.leftovers` can tell its leftovers from data that is not the
writer's. Opening for append erases proven leftovers (:func:`erase`: only 0xFF
is written, the anchor last, so the erase is itself crash-safe) and refuses
anything else with :class:`ForeignDataError`, writing nothing, unless
``erase_foreign_data=True``.

One writer at a time: opening a file for writing takes an exclusive,
non-blocking ``flock`` for the writer's lifetime; a second writer gets
:class:`JournalLockedError`. Readers take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import struct
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from qjournal import leftovers
from qjournal.area import CHUNK, Area, Source
from qjournal.cluster import parse_cluster
from qjournal.entries import (
    Entry,
    HashEntry,
    RawEntry,
    check_body,
    check_digest,
    check_sector,
    check_type_code,
    decode,
    encode,
    encode_hash,
)
from qjournal.errors import ForeignDataError, JournalArgumentError, JournalFullError, JournalIOError, JournalLockedError
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HASH_OVERHEAD,
    LEN_HEADER,
    MAX_LEN_DIGEST,
    MAX_SECTOR,
    RESET_BYTE,
    ROOM,
    TYPE_END,
    TYPE_HASH,
    clusters_for,
    first_not_reset,
    is_full,
    last_not_reset,
    max_len_entry,
    place,
    type_name,
)
from qjournal.reader import JournalReader, JournalState, Problem, unassigned_problem
from qjournal.wording import count

__all__ = [
    "JournalWriter",
    "erase",
    "lock",
    "open_for_append",
    # kept here for callers of 0.1 (see __getattr__): check_entry, create, reset, pack, PackReport,
    # live_entries, num_clusters_needed
]

_FF = bytes((RESET_BYTE,))
_FF_CHUNK = _FF * CHUNK
_PAST_TAIL_KINDS = frozenset({"torn_write", "dirty_tail"})
"""The anomalies that are bytes past the tail: judged and erased, or refused, when a journal is opened."""
_new = tuple.__new__


# -- the pieces the append path and the makers of journals share ----------------------------------------


def lock(fd: int | None, name: str) -> int | None:
    """Take a writer's exclusive, non-blocking advisory lock on the file ``fd``; return ``fd`` (None in memory)."""
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLockedError(
                "another writer holds this journal's file (an exclusive lock): a journal has one writer at a time",
                source=name,
            ) from None
        except OSError as exc:
            raise JournalIOError(f"cannot lock the file for writing: {exc.strerror or exc}", source=name) from None
    return fd


def unlock(fd: int | None) -> None:
    """Release a lock taken by :func:`lock`."""
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def barrier_of(area: Area, durable: bool) -> Callable[[], None]:
    """The barrier between the steps of a commit: fsync when ``durable``, else a flush (docs/format.md D19)."""

    def sync() -> None:
        try:
            area.sync()
        except OSError as exc:
            raise JournalIOError(f"cannot sync: {exc.strerror or exc}", source=area.name) from exc

    def flush() -> None:
        try:
            area.flush()
        except OSError as exc:
            raise JournalIOError(f"cannot flush: {exc.strerror or exc}", source=area.name) from exc

    return sync if durable else flush


def erase(area: Area, start: int, end: int, barrier: Callable[[], None]) -> None:
    """Write 0xFF over every byte other than 0xFF in ``[start, end)``, in three barriers (docs/format.md D22).

    First the type byte at ``start + 1``: ``start`` is where replay stops (the
    tail, or 0 for a reset), so from then on replay stops there. Then every other
    such byte but the first (the anchor), then the first. A crash at any point
    leaves bytes that are still provably leftovers: a subset of them, anchor included.
    """
    if start + 1 < end and area.read(start + 1, 1) != _FF:
        area.write(start + 1, _FF)
        barrier()
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
            area.write(pos + lo, _FF_CHUNK[: hi - lo])
            wrote = True
    if wrote:
        barrier()
    if anchor is not None:
        area.write(anchor, _FF)
        barrier()


def _memory(source: object) -> bytearray | None:
    """The bytearray of an in-memory journal, else None."""
    return source if isinstance(source, bytearray) else None


# -- the writer ----------------------------------------------------------------------------------------


class JournalWriter:
    """A journal opened for appending: bytes (a bytearray), a path or a binary file, at an offset (D1).

    ``JournalWriter(source, offset, length)`` opens an existing journal: it takes
    the lock, validates the whole area with the reader (a corrupt one is refused
    with the reader's :class:`CorruptJournalError`), finds the tail, and erases
    what an interrupted append left past it. Bytes past the tail that are not
    such leftovers are refused with :class:`ForeignDataError` before anything is
    written, unless ``erase_foreign_data=True``. An area inside a larger file
    (``offset`` not 0) addressed without ``length`` runs to the end of the file:
    it is refused when it holds anything but 0xFF past the tail.
    :func:`qjournal.create` makes a new journal. Use as a context manager: it
    syncs, unlocks and closes on exit.

    ``durable=False`` keeps the write order but flushes instead of fsyncing:
    safe against a crash of the process, not of the machine. ``validate`` is
    accepted for compatibility and ignored: the tail is always found by replay
    (the binary search that ``validate=False`` used could, after a crash, place
    an append where replay never reaches it; docs/format.md D23).

    ``jobs``: worker processes for the validation of a large area, as
    :meth:`JournalReader.check` takes them (default: the usable cores; 1: none).
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
        jobs: int | None = None,
    ) -> None:
        if not validate:
            warnings.warn(
                "validate=False is ignored: an open for append always finds the tail by replay "
                "(the tail search could lose an acknowledged append after a crash)",
                DeprecationWarning,
                stacklevel=2,
            )
        self._setup(Area(source, offset, length, writable=True), _memory(source), durable)
        try:
            self._lock_fd = lock(self.area.fileno(), self.name)
            state = JournalReader.over(self.area).state(jobs=jobs)  # raises the reader's CorruptJournalError
            self._ofs_tail = state.ofs_tail
            self._start_census(state.entries_by_type, state.anomalies)
            if any(p.kind in _PAST_TAIL_KINDS for p in state.anomalies):  # bytes other than 0xFF past the tail
                self._clear_past_tail(erase_foreign_data)
            self._tail_moved()
        except BaseException:
            self._release()
            raise

    @classmethod
    def on_reset_area(
        cls, area: Area, *, memory: bytearray | None, durable: bool, lock_fd: int | None, owned: Any = None
    ) -> JournalWriter:
        """A writer over an area that is all 0xFF (just created or reset), already locked: tail 0, no entries.

        ``owned`` is a file object the writer closes with itself.
        """
        writer = cls.__new__(cls)
        writer._setup(area, memory, durable, owned)
        writer._lock_fd = lock_fd
        writer._start_census({}, ())
        writer._tail_moved()
        return writer

    _lock_fd: int | None

    def _setup(self, area: Area, memory: bytearray | None, durable: bool, owned: Any = None) -> None:
        self.area = area
        self._len_area = area.len_area
        self._durable = durable
        self._owned = owned
        self._lock_fd = None
        self._closed = False
        # in memory, a window of exactly the area: a write through it cannot land outside the area
        self._view = None if memory is None else memoryview(memory)[area.area_offset : area.area_offset + area.len_area]
        self._barrier = barrier_of(area, durable)
        self._needs_wipe = False  # a write failed before its commit byte: erase past the tail first
        self._ofs_tail = 0
        self._fast_room = -1

    def _tail_moved(self) -> None:
        """Keep append_hash's in-memory fast path on a tail that is open and inside the area."""
        self._fast_room = ROOM if self._view is not None and self._ofs_tail < self._len_area and not self._closed else -1

    def _start_census(self, counts: dict[str, int], anomalies: Iterable[Problem]) -> None:
        """Count from a census: what the journal held when opened, before any append."""
        self._base_counts = dict(counts)
        self._base_anomalies = [p for p in anomalies if p.kind not in _PAST_TAIL_KINDS]
        self._num_hash = 0
        self._raw_log: list[tuple[int, int, int]] = []  # (ofs, type_code, len_entry) of each raw entry appended

    def _clear_past_tail(self, erase_foreign_data: bool) -> None:
        """Erase what an interrupted append left past the tail; refuse, writing nothing, anything else."""
        area, tail = self.area, self._ofs_tail
        found = leftovers.survey(area.chunks(tail))
        if found.is_clean:
            return
        assert found.ofs_first is not None and found.ofs_last is not None
        what = (
            f"{count(found.num_bytes, 'byte')} other than 0xFF past the tail at {tail:#x} "
            f"({found.ofs_first:#x} to {found.ofs_last:#x}, in {count(found.num_clusters, 'cluster')})"
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
        erase(area, tail, self._len_area, self._barrier)

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
        """True when no entry, not even a 2-byte one, can be appended (docs/format.md D16)."""
        return is_full(self._ofs_tail, self._len_area)

    def state(self) -> JournalState:
        """The journal's state, equal to ``JournalReader(...).check().state``, without re-reading the area."""
        self._check_open()
        tail = self._ofs_tail
        counts = Counter(self._base_counts)
        if self._num_hash:
            counts[type_name(TYPE_HASH)] += self._num_hash
        for _, code, _ in self._raw_log:
            counts[type_name(code)] += 1
        return JournalState(
            len_area=self._len_area,
            num_clusters=self.num_clusters,
            num_clusters_used=clusters_for(tail) if tail else 0,
            ofs_tail=tail,
            len_free=self._len_area - tail,
            is_full=self.is_full,
            num_entries=sum(counts.values()),
            entries_by_type=dict(counts),
            anomalies=tuple(self._base_anomalies + [unassigned_problem(*r) for r in self._raw_log]),
        )

    # -- appending -----------------------------------------------------------
    def append_hash(self, digest: bytes, physical_sector: int, first_logical_sector: int) -> HashEntry:
        """Append one HASH entry (D8); return it with its offset ``ofs`` in the area."""
        if type(digest) is not bytes or not 0 < len(digest) <= MAX_LEN_DIGEST:
            digest = check_digest(digest)
        if type(physical_sector) is not int or type(first_logical_sector) is not int:
            physical_sector = check_sector("physical_sector", physical_sector)
            first_logical_sector = check_sector("first_logical_sector", first_logical_sector)
        try:
            data = encode_hash(digest, physical_sector, first_logical_sector)
        except struct.error:  # a sector out of range: say which
            check_sector("physical_sector", physical_sector)
            check_sector("first_logical_sector", first_logical_sector)
            raise
        pos = self._ofs_tail
        len_entry = len(digest) + LEN_HASH_OVERHEAD
        # The in-memory fast path of _append_one: the entry fits at the tail (format.place would return
        # pos), and the tail is open and inside the area (_fast_room is -1 otherwise, on a file too).
        if pos % LEN_CLUSTER + len_entry <= self._fast_room:
            self._view[pos : pos + len_entry] = data  # type: ignore[index]
            self._ofs_tail = pos + len_entry
        else:
            pos = self._append_one(data)
        self._num_hash += 1
        entry: HashEntry = _new(HashEntry, (digest, physical_sector, first_logical_sector, pos))
        return entry

    def append_raw(self, type_code: int, body: bytes = b"") -> RawEntry:
        """Append one entry of an unassigned type (0x00, 0x03-0xFE) with a raw ``body`` (D4)."""
        t = check_type_code(type_code)
        body = check_body(body)
        len_entry = len(body) + LEN_HEADER
        ofs = self._append_one(bytes((len_entry, t)) + body)
        self._raw_log.append((ofs, t, len_entry))
        entry: RawEntry = _new(RawEntry, (t, body, ofs))
        return entry

    def append(self, entry: Entry) -> Entry:
        """Append a :class:`HashEntry` or :class:`RawEntry` (its ``ofs`` is ignored); return it placed."""
        if isinstance(entry, HashEntry):
            return self.append_hash(entry.digest, entry.physical_sector, entry.first_logical_sector)
        if isinstance(entry, RawEntry):
            return self.append_raw(entry.type_code, entry.body)
        raise JournalArgumentError(f"an entry to append must be a HashEntry or a RawEntry, not {type(entry).__name__}")

    def _append_one(self, data: bytes) -> int:
        """Write one encoded entry as a batch of one; return its offset."""
        self._check_open()
        pos = self._ofs_tail
        at = place(pos, len(data))
        if at >= self._len_area:
            raise self._full(len(data))
        if at == pos:
            self._commit([(pos, data)])
        else:
            self._commit([(pos, bytes((at - pos, TYPE_END))), (at, data)])
        self._ofs_tail = at + len(data)
        self._tail_moved()
        return at

    def append_many(self, entries: Iterable[Entry]) -> list[Entry]:
        """Append a batch all or nothing; return the entries placed, in order.

        Every entry is checked first; a batch that does not fit whole raises
        :class:`JournalFullError` and writes nothing.
        """
        self._check_open()
        batch = entries if isinstance(entries, (list, tuple)) else list(entries)
        encoded = []
        for i, entry in enumerate(batch):
            try:
                encoded.append(encode(entry))
            except JournalArgumentError as exc:
                raise JournalArgumentError(f"entry {i + 1} of the batch of {len(batch)}: {exc.reason}") from None
        if not encoded:
            return []
        runs: list[tuple[int, bytes]] = []  # (area offset, bytes): one run per cluster the batch writes in
        out: list[Entry] = []
        pos = start = self._ofs_tail
        len_area = self._len_area
        buf = bytearray()
        for i, (data, entry) in enumerate(encoded):
            at = place(pos, len(data))
            if at != pos:
                if at >= len_area:
                    raise self._full(len(data), i, len(encoded), pos)
                buf += bytes((at - pos, TYPE_END))  # the END that closes pos's cluster (D6)
                runs.append((start, bytes(buf)))
                buf = bytearray()
                pos = start = at
            elif at >= len_area:
                raise self._full(len(data), i, len(encoded), pos)
            buf += data
            out.append(_new(type(entry), (*entry[:-1], pos)))  # entry._replace(ofs=pos), without its cost
            pos += len(data)
        runs.append((start, bytes(buf)))
        self._commit(runs)
        self._ofs_tail = pos
        self._tail_moved()
        num_hash = 0
        for e in out:
            if type(e) is HashEntry:
                num_hash += 1
            else:
                self._raw_log.append((e.ofs, e.type_code, e.len_entry))  # type: ignore[arg-type]
        self._num_hash += num_hash
        return out

    def append_stream(self, entries: Iterable[Entry]) -> int:
        """Append entries as one atomic batch without holding them all in memory; return how many.

        The bytes written, and their order, are :meth:`append_many`'s: the
        anchor alone, a barrier, every other byte but the commit byte (one
        write per cluster the batch writes in, as they are encoded), a barrier,
        the commit byte. Until then replay sees none of the batch. What differs
        is when a bad entry or a full journal is found: part-way, so the bytes
        already written (never committed) are erased again, crash-safely (D22),
        before :class:`JournalArgumentError` or :class:`JournalFullError` is
        raised; the journal is then as it was. :func:`qjournal.pack` uses it
        with entries it has fitted beforehand.
        """
        self._check_open()
        if self._needs_wipe:
            erase(self.area, self._ofs_tail, self._len_area, self._barrier)
            self._needs_wipe = False
        start = pos = self._ofs_tail
        len_area = self._len_area
        write = self._write
        state: dict[str, Any] = {"first": None, "commit": None}  # the pending first run, the commit byte
        num_hash = 0
        raw_log: list[tuple[int, int, int]] = []

        def emit(at: int, data: bytes) -> None:
            """Write one run (a cluster's part of the batch), keeping the commit-byte order of _commit."""
            if state["commit"] is None:  # nothing written yet
                if state["first"] is None:
                    state["first"] = (at, data)
                    if data[0] == RESET_BYTE:  # an END of size 255 at the tail: the anchor opens the next run
                        return
                f_at, first = state["first"]
                self._needs_wipe = True
                anchor_at, anchor = (f_at, first) if first[0] != RESET_BYTE else (at, data)
                write(anchor_at, anchor[:1])
                self._barrier()
                state["commit"] = first[1:2]
                if len(first) > 2:
                    write(f_at + 2, first[2:])
                if anchor is data and data is not first:
                    write(at + 1, data[1:])
                return
            write(at, data)

        buf = bytearray()
        buf_at = pos
        count = 0
        try:
            for i, entry in enumerate(entries):
                if type(entry) is HashEntry and type(entry[0]) is bytes and 0 < len(entry[0]) <= MAX_LEN_DIGEST \
                        and type(entry[1]) is int and type(entry[2]) is int and 0 <= entry[1] <= MAX_SECTOR \
                        and 0 <= entry[2] <= MAX_SECTOR:
                    data = encode_hash(entry[0], entry[1], entry[2])
                    code = TYPE_HASH
                else:
                    try:
                        data, checked = encode(entry)
                    except JournalArgumentError as exc:
                        raise JournalArgumentError(f"entry {i + 1} of the batch: {exc.reason}") from None
                    code = checked.type_code
                at = place(pos, len(data))
                if at >= len_area:
                    raise self._full(len(data), i, 0, pos)
                if at != pos:
                    buf += bytes((at - pos, TYPE_END))  # the END that closes pos's cluster (D6)
                    emit(buf_at, bytes(buf))
                    buf = bytearray()
                    buf_at = pos = at
                buf += data
                if code == TYPE_HASH:
                    num_hash += 1
                else:
                    raw_log.append((pos, code, len(data)))
                pos += len(data)
                count += 1
            if not count:
                return 0
            emit(buf_at, bytes(buf))
            if state["commit"] is None:  # a batch of one END of size 255 and nothing after it cannot happen
                raise AssertionError("a batch that never wrote its anchor")
            self._barrier()
            write(start + 1, state["commit"])
            self._barrier()
        except BaseException:
            if self._needs_wipe:  # bytes past the tail, never committed: erase them again
                erase(self.area, start, min(len_area, max(pos, buf_at) + LEN_CLUSTER), self._barrier)
                self._needs_wipe = False
            raise
        self._needs_wipe = False
        self._ofs_tail = pos
        self._tail_moved()
        self._num_hash += num_hash
        self._raw_log += raw_log
        return count

    def _write(self, pos: int, data: bytes) -> None:
        """Write into the area: through the memoryview in memory, else through :meth:`Area.write`."""
        if self._view is None:
            self.area.write(pos, data)
            return
        if pos < 0 or pos + len(data) > self._len_area:  # as Area.write refuses
            raise JournalArgumentError(
                f"write of {len(data)} bytes at {pos:#x} would leave the area ({self._len_area} bytes)",
                pos,
                area_offset=self.area.area_offset,
                source=self.name,
            )
        self._view[pos : pos + len(data)] = data

    def _commit(self, runs: Sequence[tuple[int, bytes]]) -> None:
        """Write a batch: its anchor, barrier, the rest but the commit byte, barrier, the commit byte, barrier.

        ``runs`` are (area offset, bytes) in order; the first starts at the tail
        and its byte 1 is the commit byte (the type byte of the first entry or
        END). The anchor is the batch's first byte that is not 0xFF: the first
        run's size byte, or, when the first run is an END of size 255 (size
        byte 0xFF), the size byte that opens the second run.
        """
        if self._needs_wipe:
            erase(self.area, self._ofs_tail, self._len_area, self._barrier)
            self._needs_wipe = False
        write = self._write
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
        """The refusal of an entry that does not fit (D6): why, and what still fits.

        ``index`` is the entry's place in its batch (from 0), ``count`` the batch's
        length (0: a stream, whose length is not known).
        """
        pos = self._ofs_tail if pos is None else pos
        room = max(0, LEN_CLUSTER - pos % LEN_CLUSTER) if pos < self._len_area else 0
        fits_now = max_len_entry(pos, self._len_area)
        batch = index is not None and count != 1
        of = f" of {count}" if count else ""
        what = f"entry {(index or 0) + 1} of the batch{of} ({len_entry} bytes)" if batch else f"an entry of {len_entry} bytes"
        why = (
            f"{room} bytes are left in the last cluster and an entry needs its size plus the 2 bytes of the END after it, "
            + (f"so at most {fits_now} fit here" if fits_now else "so none fits")
            if room
            else "every cluster is used"
        )
        reason = (
            f"journal full: no room for {what} at offset {pos:#x}: {why}, and no cluster follows (D6); "
            + ("nothing of the batch was committed (what was written of it is erased)" if batch and not count
               else f"nothing {'of the batch ' if batch else ''}was written")
        )
        return JournalFullError(
            reason, pos, len_entry=len_entry, max_len_entry=fits_now, entry_index=index, num_clusters=self.num_clusters,
            area_offset=self.area.area_offset, source=self.name,
            hint="to go on, pack the journal into a larger one: its live entries, in a fresh area",
        )

    def last_hash(self) -> HashEntry | None:
        """The journal's last HASH entry (in replay order), or None: found from the tail back, cluster by cluster.

        Clusters parse on their own (D5), so only the clusters from the tail's
        back to the last one holding a HASH entry are read.
        """
        self._check_open()
        index = min(self._ofs_tail, self._len_area - 1) // LEN_CLUSTER
        while index >= 0:
            base = index * LEN_CLUSTER
            last = None
            o = 0
            for e in parse_cluster(self.area.read_cluster(index)).entries:
                if base + o >= self._ofs_tail:
                    break
                if e.type_code == TYPE_HASH:
                    last = decode(e, base + o)
                o += e.len_entry
            if last is not None:
                assert isinstance(last, HashEntry)
                return last
            index -= 1
        return None

    # -- reset, flush, close ---------------------------------------------------
    def reset(self) -> None:
        """Reset the journal (D2): every byte of the area back to 0xFF, the first entry's type byte first."""
        self._check_open()
        erase(self.area, 0, self._len_area if self._needs_wipe else self._ofs_tail, self._barrier)
        self._needs_wipe = False
        self._ofs_tail = 0
        self._tail_moved()
        self._start_census({}, ())

    def flush(self) -> None:
        """Hand buffered writes to the operating system (nothing to do in memory)."""
        self._check_open()
        barrier_of(self.area, False)()

    def sync(self) -> None:
        """Make every write durable: flush, then fsync a real file."""
        self._check_open()
        barrier_of(self.area, True)()

    def _check_open(self) -> None:
        if self._closed:
            raise JournalArgumentError("the journal writer is closed", source=self.name)

    def close(self) -> None:
        """Sync, release the lock and close what the writer opened (a caller's file stays open)."""
        if self._closed:
            return
        try:
            if self._view is None:
                barrier_of(self.area, True)()
        finally:
            self._release()

    def _release(self) -> None:
        self._closed = True
        self._tail_moved()
        if self._view is not None:
            self._view.release()
            self._view = None
        unlock(self._lock_fd)
        self._lock_fd = None
        self.area.close()
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"ofs_tail={self._ofs_tail:#x}"
        return f"<JournalWriter {self.name} {self.num_clusters} clusters {state}>"


open_for_append = JournalWriter
"""Open an existing journal for appending: ``with qjournal.open_for_append("j.bin") as w: ...``.

The same as :class:`JournalWriter` (``validate`` is ignored; ``erase_foreign_data``
erases bytes past the tail that are not crash leftovers instead of refusing).
"""


_MOVED = {
    "check_entry": "qjournal.entries",
    "create": "qjournal.making",
    "reset": "qjournal.making",
    "pack": "qjournal.packing",
    "PackReport": "qjournal.packing",
    "live_entries": "qjournal.packing",
    "num_clusters_needed": "qjournal.packing",
}
"""Names that 0.1 had in this module, and where they live now; ``qjournal.writer.NAME`` still finds them."""


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
