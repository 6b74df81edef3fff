"""The append path: open a journal for append, plan a batch (D6), commit it (D20), erase leftovers (D22).

Strategy. :class:`JournalWriter` is the mirror of the reader: it writes what the
reader reads, in the .ksy's vocabulary (:mod:`qjournal.entries` encodes, the
rules of :mod:`qjournal.format` place). Bytes outside the area are never
touched: a file is written through :meth:`Area.write`, which refuses to leave
the area, and an in-memory journal through a memoryview of exactly the area.
The file primitives (lock, barrier, erase, the D24 rule) are
:mod:`qjournal.durable`'s; making journals (create, reset) is
:mod:`qjournal.making`; packing them, :mod:`qjournal.packing`.

One commit path, as msgpack funnels every ``pack*`` through one ``_pack``: every
append (``append_hash``, ``append_raw``, ``append``, ``append_many``,
``append_stream``) encodes its entries and hands their bytes to
:meth:`JournalWriter._append`, which plans them with :class:`_Plan` (what bytes
go where, D6) and writes them with :meth:`JournalWriter._commit` (D20). The one
fast path, a single entry in memory that fits at the tail, is its front door for
single appends (:meth:`JournalWriter._append_one`).

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
writer's. Opening for append erases proven leftovers (:func:`~qjournal.durable.erase`:
only 0xFF is written, the anchor last, so the erase is itself crash-safe) and refuses
anything else with :class:`ForeignDataError`, writing nothing, unless
``erase_foreign_data=True``.

Interrupted in the process (an exception of any kind between any two writes,
``KeyboardInterrupt`` included), the writer is never wrong: from its first
write until the tail moves, it holds the bytes past the tail for unclean
(``_clean`` is False); the tail, the census and ``_clean`` move together, in one
assignment, once the commit byte is durable. An append that fails erases what
it wrote at once when it can; else the next append erases everything past the
tail first (a batch whose commit byte had landed included: it was never
acknowledged), so the journal holds the interrupted batch whole or not at all.

One writer at a time: opening a file for writing takes an exclusive,
non-blocking ``flock`` for the writer's lifetime; a second writer gets
:class:`JournalLockedError`. Readers take no lock.
"""

from __future__ import annotations

import importlib
import os
import struct
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from qjournal import leftovers
from qjournal.area import Area, Source
from qjournal.cluster import parse_cluster
from qjournal.durable import barrier_of, check_whole_rest, erase, lock, unlock
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
    LEN_HEADER,
    MAX_LEN_DIGEST,
    MAX_LEN_REGULAR,
    MAX_SECTOR,
    MIN_LEN_ENTRY,
    MIN_LEN_HASH,
    RESET_BYTE,
    TYPE_END,
    TYPE_HASH,
    TYPE_NONE,
    clusters_for,
    first_not_reset,
    is_full,
    max_len_entry,
    place,
    type_name,
)
from qjournal.reader import JournalReader, JournalState, Problem, unassigned_problem
from qjournal.wording import count

__all__ = ["JournalWriter", "open_for_append"]

_PAST_TAIL_KINDS = frozenset({"torn_write", "dirty_tail"})
"""The anomalies that are bytes past the tail: judged and erased, or refused, when a journal is opened."""
_new = tuple.__new__


def _memory(source: object) -> bytearray | None:
    """The bytearray of an in-memory journal, else None."""
    return source if isinstance(source, bytearray) else None


class _Plan:
    """Where the bytes of a batch go (D6): its entries one after the other from the tail, an END before one that does not fit.

    :meth:`runs` takes the encoded entries and yields the batch's runs,
    (area offset, bytes), one per cluster it writes in, as it goes: a stream is
    planned while it is written, a batch known whole before. The first run
    starts at the tail and its byte 1 is the commit byte. ``ofs`` collects each
    entry's offset; once the runs are exhausted, ``pos`` is the new tail and
    ``num_hash`` and ``raw_log`` (offset, type code, size of each raw entry) the
    census of the batch. An entry that does not fit raises ``full(len_entry,
    index, pos)``.
    """

    __slots__ = ("full", "len_area", "num_hash", "ofs", "pos", "raw_log")

    def __init__(self, tail: int, len_area: int, full: Callable[[int, int, int], JournalFullError]) -> None:
        self.pos = tail
        self.len_area = len_area
        self.full = full
        self.ofs: list[int] = []
        self.num_hash = 0
        self.raw_log: list[tuple[int, int, int]] = []

    def runs(self, datas: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
        """The batch's runs, cluster by cluster, as the entries ``datas`` (each an entry's bytes) are placed."""
        pos = start = self.pos
        len_area = self.len_area
        ofs, raw_log = self.ofs, self.raw_log
        num_hash = 0
        buf = bytearray()
        for i, data in enumerate(datas):
            n = len(data)
            at = place(pos, n)
            if at >= len_area:
                raise self.full(n, i, pos)
            if at != pos:
                buf += bytes((at - pos, TYPE_END))  # the END that closes pos's cluster (D6)
                yield start, bytes(buf)
                buf = bytearray()
                start = at
            buf += data
            ofs.append(at)
            if data[1] == TYPE_HASH:
                num_hash += 1
            else:
                raw_log.append((at, data[1], n))
            pos = at + n
        if buf:
            yield start, bytes(buf)
        self.pos, self.num_hash = pos, num_hash


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
    0.1's, deprecated (a DeprecationWarning) and ignored: the tail is always found by replay
    (the binary search that ``validate=False`` used could, after a crash, place
    an append where replay never reaches it; docs/format.md D23).

    ``jobs``: worker processes for the validation of a large area, as
    :meth:`JournalReader.check` takes them (default: the usable cores; 1: none).

    An ``offset`` that is not a multiple of 512, or that cuts the cluster grid
    of a journal found just below it, is refused (a slip, likelier than an area
    there) unless ``unaligned_offset=True``.
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
        unaligned_offset: bool = False,
    ) -> None:
        if not validate:
            warnings.warn(
                "validate=False is ignored: an open for append always finds the tail by replay "
                "(the tail search could lose an acknowledged append after a crash)",
                DeprecationWarning,
                stacklevel=2,
            )
        self._setup(Area(source, offset, length, writable=True, unaligned_offset=unaligned_offset), _memory(source), durable)
        try:
            self._lock_fd = lock(self.area.fileno(), self.name)
            state = JournalReader.over(self.area).state(jobs=jobs)  # raises the reader's CorruptJournalError
            self._ofs_tail = state.ofs_tail
            self._start_census(state.entries_by_type, state.anomalies)
            if any(p.code in _PAST_TAIL_KINDS for p in state.anomalies):  # bytes other than 0xFF past the tail
                self._clear_past_tail(erase_foreign_data)
            self._clean, self._fast = True, self._fast_at(self._ofs_tail)
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
        writer._clean, writer._fast = True, writer._fast_at(0)
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
        self._ofs_tail = 0
        self._clean = False  # every byte past the tail is 0xFF (D20's precondition): False until proven, or while writing
        self._fast = False  # the fast path may run: in memory, open, clean, the tail inside the area

    def _fast_at(self, tail: int) -> bool:
        """Whether the in-memory fast path may append at ``tail`` (the writer clean and open)."""
        return self._view is not None and tail < self._len_area and not self._closed

    def _start_census(self, counts: dict[str, int], anomalies: Iterable[Problem]) -> None:
        """Count from a census: what the journal held when opened, before any append.

        ``_raw_log`` holds (ofs, type_code, len_entry) of each raw entry appended;
        only its first ``_num_raw`` are committed (it may end with an interrupted batch's).
        """
        self._raw_log: list[tuple[int, int, int]] = []
        base = [p for p in anomalies if p.code not in _PAST_TAIL_KINDS]
        self._base_counts, self._base_anomalies, self._num_hash, self._num_raw = dict(counts), base, 0, 0

    def _clear_past_tail(self, erase_foreign_data: bool) -> None:
        """Erase what an interrupted append left past the tail; refuse, writing nothing, anything else."""
        area, tail = self.area, self._ofs_tail
        found = leftovers.survey(area.chunks(tail))
        if found.is_clean:
            return
        assert found.ofs_first is not None and found.ofs_last is not None
        if area.area_offset:  # at offset 0 the area is the file, and D21 alone decides
            check_whole_rest(area, lambda why: JournalArgumentError(
                f"the area was given an offset ({area.area_offset:#x}) but no length, so it runs to the end of the "
                f"file ({area.len_file} bytes), and {why}: they may be data after the journal, not its own, so "
                f"nothing was written; give the area's length (${{length}})",
                found.ofs_first,
                area_offset=area.area_offset,
                source=self.name,
            ), tail)
        verdict = leftovers.explain(tail, self._len_area, found.ofs_last, area.read_cluster)
        if not verdict.is_leftover and not erase_foreign_data:
            what = (
                f"{count(found.num_bytes, 'byte')} other than 0xFF past the tail at {tail:#x} "
                f"({found.ofs_first:#x} to {found.ofs_last:#x}, in {count(found.num_clusters, 'cluster')})"
            )
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
        raw_log = self._raw_log[: self._num_raw]
        counts = Counter(self._base_counts)
        if self._num_hash:
            counts[type_name(TYPE_HASH)] += self._num_hash
        for _, code, _ in raw_log:
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
            anomalies=tuple(self._base_anomalies + [unassigned_problem(*r) for r in raw_log]),
        )

    # -- appending: every entry point encodes, then hands the bytes to _append -------------------------------
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
        entry: HashEntry = _new(HashEntry, (digest, physical_sector, first_logical_sector, self._append_one(data)))
        return entry

    def append_raw(self, type_code: int, body: bytes = b"") -> RawEntry:
        """Append one entry of an unassigned type (0x00, 0x03-0xFE) with a raw ``body`` (D4)."""
        t = check_type_code(type_code)
        body = check_body(body)
        entry: RawEntry = _new(RawEntry, (t, body, self._append_one(bytes((len(body) + LEN_HEADER, t)) + body)))
        return entry

    def append(self, entry: Entry) -> Entry:
        """Append a :class:`HashEntry` or :class:`RawEntry` (its ``ofs`` is ignored); return it placed."""
        if isinstance(entry, HashEntry):
            return self.append_hash(entry.digest, entry.physical_sector, entry.first_logical_sector)
        if isinstance(entry, RawEntry):
            return self.append_raw(entry.type_code, entry.body)
        raise JournalArgumentError(f"an entry to append must be a HashEntry or a RawEntry, not {type(entry).__name__}")

    def append_many(self, entries: Iterable[Entry]) -> list[Entry]:
        """Append a batch all or nothing; return the entries placed, in order.

        Every entry is checked first; a batch that does not fit whole raises
        :class:`JournalFullError` and writes nothing.
        """
        self._check_open()
        batch = entries if isinstance(entries, (list, tuple)) else list(entries)
        datas = []
        checked = []
        for i, entry in enumerate(batch):
            try:
                data, e = encode(entry)
            except JournalArgumentError as exc:
                raise JournalArgumentError(f"entry {i + 1} of the batch of {len(batch)}: {exc.reason}") from None
            datas.append(data)
            checked.append(e)
        if not datas:
            return []
        ofs = self._append(datas, len(datas))
        return [_new(type(e), (*e[:-1], at)) for e, at in zip(checked, ofs, strict=True)]  # e._replace(ofs=at)

    def append_stream(self, entries: Iterable[Entry]) -> int:
        """Append entries as one atomic batch without holding them all in memory; return how many.

        The bytes written, and their order, are :meth:`append_many`'s (the same
        planner and committer): the anchor alone, a barrier, every other byte but
        the commit byte (one write per cluster the batch writes in, as they are
        encoded), a barrier, the commit byte. Until then replay sees none of the
        batch. What differs is when a bad entry or a full journal is found:
        part-way, so the bytes already written (never committed) are erased
        again, crash-safely (D22), before :class:`JournalArgumentError` or
        :class:`JournalFullError` is raised; the journal is then as it was.
        :func:`qjournal.pack` uses it with entries it has fitted beforehand.
        """
        self._check_open()
        return len(self._append(_encoded(entries), 0))

    def append_encoded(self, datas: Iterable[bytes]) -> int:
        """Append entries given as their bytes, as one atomic batch streamed as :meth:`append_stream` does; return how
        many.

        For producers that encode their own entries (:func:`qjournal.entries.encode_hash`; index spools them so):
        each is checked to be one entry a writer may append (D3, D4, D8): its size byte is its length, 2 to 254, its
        type neither END nor NONE, a HASH entry at least 19 bytes. A refusal names the entry's place in the batch.
        """
        self._check_open()
        return len(self._append(_checked(datas), 0))

    # -- the one commit path --------------------------------------------------------------------------
    def _append_one(self, data: bytes) -> int:
        """Append one entry's bytes as a batch of one (:meth:`_append`); return its offset.

        The fast path: in memory, with nothing to erase, an entry that fits at the
        tail (D6) goes in one write, all or nothing; the tail and the census move
        in the next step, and an interruption in between leaves the writer
        unclean, so that the next append erases the entry first (D22).
        """
        pos = self._ofs_tail
        n = len(data)
        if self._fast and place(pos, n) == pos:
            self._clean = self._fast = False
            self._view[pos : pos + n] = data  # type: ignore[index]
            if data[1] == TYPE_HASH:
                self._ofs_tail, self._num_hash, self._clean, self._fast = pos + n, self._num_hash + 1, True, True
            else:
                del self._raw_log[self._num_raw :]
                self._raw_log.append((pos, data[1], n))
                self._ofs_tail, self._num_raw, self._clean, self._fast = pos + n, self._num_raw + 1, True, True
            return pos
        return self._append((data,), 1)[0]

    def _append(self, datas: Sequence[bytes] | Iterator[bytes], num: int) -> list[int]:
        """Append the entries ``datas`` (each an entry's bytes) as one batch; return their offsets.

        ``num`` is the batch's length, known whole (planned before a byte is
        written, so that a batch that does not fit writes nothing), or 0 for a
        stream (planned as it is written). The plan (:class:`_Plan`, D6), the
        erase of what an interrupted append left (D22), the commit
        (:meth:`_commit`, D20), then the tail, the census and ``_clean`` move in
        one assignment.
        """
        self._check_open()
        plan = _Plan(self._ofs_tail, self._len_area, lambda n, i, pos: self._full(n, i, num, pos))
        runs = plan.runs(datas)
        if num:
            runs = iter(list(runs))
        if not self._clean:  # what an interrupted append left past the tail goes first (D22)
            self._wipe(self._len_area)
        self._commit(runs)
        if not plan.ofs:
            return plan.ofs
        # the commit byte is written: replay reads the batch, whatever the barrier after it says
        raw_log = self._raw_log
        del raw_log[self._num_raw :]
        raw_log += plan.raw_log
        self._ofs_tail, self._num_hash, self._num_raw, self._clean, self._fast = (
            plan.pos, self._num_hash + plan.num_hash, len(raw_log), True, self._fast_at(plan.pos)
        )
        try:
            self._barrier()
        except JournalIOError as exc:
            raise JournalIOError(
                f"{exc.reason}, after the commit byte of the batch ({count(len(plan.ofs), 'entry', 'entries')}) was "
                f"written: the batch is committed (replay reads it) but not known to be durable (a crash of the "
                f"machine may still lose it); do not append it again, which would duplicate it",
                source=self.name,
                hint="check the file system (full, or failing?), then 'qjournal check' the journal",
            ) from exc
        return plan.ofs

    def _commit(self, runs: Iterator[tuple[int, bytes]]) -> None:
        """Write a batch (D20): its anchor, barrier, the rest but the commit byte, barrier, the commit byte.

        The last barrier is the caller's, once the tail has moved (the batch is
        committed from the commit byte on, durable or not).

        ``runs`` are the plan's, (area offset, bytes) in order; the first starts
        at the tail and its byte 1 is the commit byte (the type byte of the first
        entry or END). The anchor is the batch's first byte that is not 0xFF: the
        first run's size byte, or, when the first run is an END of size 255 (size
        byte 0xFF), the size byte that opens the second run. From the anchor on
        the bytes past the tail are unclean; an exception erases them at once if
        it can, else the next append does (D22).
        """
        tail = self._ofs_tail
        first = next(runs, None)
        if first is None:
            return
        if self._view is None:
            self._check_tail(len(first[1]))
        write, barrier = self._write, self._barrier
        end = tail  # the bytes written lie before it
        self._clean = self._fast = False
        try:
            pos, data = first
            at, anchored = pos, data  # the run that opens with the anchor
            if data[0] == RESET_BYTE:  # an END of size 255 at the tail: its size byte is 0xFF already
                at, anchored = next(runs)
            end = at + len(anchored)
            write(at, anchored[:1])
            barrier()
            if len(data) > 2:
                write(pos + 2, data[2:])
            if anchored is not data:
                write(at + 1, anchored[1:])
            for at, data_run in runs:
                end = at + len(data_run)
                write(at, data_run)
            barrier()
            write(tail + 1, data[1:2])
        except BaseException:
            self._wipe(end, quietly=True)
            raise

    def _check_tail(self, n: int) -> None:
        """Refuse to commit when the ``n`` bytes at the tail are no longer 0xFF: someone else wrote there (one read).

        The lock excludes writers that take it through this file's name; a
        writer through another door (a loop device over the file, a program
        that takes no lock) does not see it. Its bytes are never erased: this
        writer closes, having written nothing.
        """
        tail = self._ofs_tail
        fd = self.area.fileno()
        try:
            now = os.pread(fd, n, self.area.area_offset + tail) if fd is not None else self.area.read(tail, n)
        except OSError as exc:
            raise JournalIOError(f"cannot read the tail: {exc.strerror or exc}", tail, area_offset=self.area.area_offset,
                                 source=self.name) from exc
        if len(now) != n or now.count(RESET_BYTE) == n:
            return  # all 0xFF; or the file shrank, which the first write says (Area.write)
        self._release()
        raise JournalLockedError(
            "the bytes at the tail are no longer 0xFF: another writer appended to this journal meanwhile, through "
            "a door its lock does not close (a loop device over the file, or a program that takes no lock); nothing "
            "of this batch was written, and this writer is closed",
            tail + first_not_reset(now),
            area_offset=self.area.area_offset,
            source=self.name,
            hint="one writer at a time: stop the other writer, then 'qjournal check' the journal and append again",
        )

    def _wipe(self, end: int, *, quietly: bool = False) -> None:
        """Erase what a failed or interrupted append of this writer left past the tail (D22), up to ``end``.

        ``quietly``: an append failing already; if the erase fails too, the bytes
        stay unclean and the next append erases them first (its error is the one
        raised then).
        """
        try:
            erase(self.area, self._ofs_tail, end, self._barrier)
        except Exception:
            if quietly:
                return
            raise
        self._clean, self._fast = True, self._fast_at(self._ofs_tail)

    def _write(self, pos: int, data: bytes) -> None:
        """Write into the area, which refuses to write outside itself: every write of a commit but the fast path's."""
        self.area.write(pos, data)

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
        """Reset the journal (D2): every byte of the area back to 0xFF, the first entry's type byte first.

        From the start the writer counts the journal as empty and unclean, so that
        the next append, should the reset be interrupted, finishes it first.
        """
        self._check_open()
        end = self._ofs_tail if self._clean else self._len_area
        self._ofs_tail, self._clean, self._fast, self._base_counts, self._base_anomalies, self._num_hash, self._num_raw = (
            0, False, False, {}, [], 0, 0
        )
        erase(self.area, 0, end, self._barrier)
        self._clean, self._fast = True, self._fast_at(0)

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
        except JournalIOError as exc:
            raise JournalIOError(
                f"{exc.reason}, at close: every batch appended was committed (replay reads it) but may not be "
                f"durable (a crash of the machine may still lose it); do not append them again, which would "
                f"duplicate them",
                source=self.name,
                hint="check the file system (full, or failing?), then 'qjournal check' the journal",
            ) from exc
        finally:
            self._release()

    def _release(self) -> None:
        self._closed, self._fast = True, False
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
    "num_clusters_needed": "qjournal.packing",
    "live_entries": "qjournal.packing",
}
"""Names that 0.1 had in this module, and where they live now: ``qjournal.writer.NAME`` finds them, with a
DeprecationWarning, for one release more (``erase`` and ``lock``, now :mod:`qjournal.durable`'s, are still
imported here)."""


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"qjournal.writer.{name} is deprecated: use {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _checked(datas: Iterable[bytes]) -> Iterator[bytes]:
    """Entries given as bytes, each checked to be one a writer may append (see :meth:`JournalWriter.append_encoded`)."""
    for i, data in enumerate(datas):
        n = len(data)
        if not (MIN_LEN_ENTRY <= n <= MAX_LEN_REGULAR and data[0] == n and data[1] != TYPE_END and data[1] != TYPE_NONE
                and (data[1] != TYPE_HASH or n >= MIN_LEN_HASH)):
            raise JournalArgumentError(f"entry {i + 1} of the batch: {bytes(data[:2]).hex()}... ({n} bytes) is not one "
                                       "entry a writer appends (D3, D4, D8)")
        yield data


def _encoded(entries: Iterable[Entry]) -> Iterator[bytes]:
    """The bytes of each entry of a stream, checked as it comes; a refusal names the entry's place in the batch."""
    for i, entry in enumerate(entries):
        if type(entry) is HashEntry and type(entry[0]) is bytes and 0 < len(entry[0]) <= MAX_LEN_DIGEST \
                and type(entry[1]) is int and type(entry[2]) is int and 0 <= entry[1] <= MAX_SECTOR \
                and 0 <= entry[2] <= MAX_SECTOR:
            yield encode_hash(entry[0], entry[1], entry[2])  # a HashEntry of plain, valid values: no call per field
            continue
        try:
            data, _ = encode(entry)
        except JournalArgumentError as exc:
            raise JournalArgumentError(f"entry {i + 1} of the batch: {exc.reason}") from None
        yield data
