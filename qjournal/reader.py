"""Reading a journal: replay (D7), the live view (D9), its state, and a full check (D5, D18).

Strategy: the byte layout is the generated parser's (``Qcow2Journal.Cluster``,
from the .ksy), run by :mod:`qjournal.cluster` over one 4096-byte cluster at a
time, so memory does not grow with the area. This module walks the clusters in
order for replay and rebases each corruption to its area offset; the check
engine (every problem, the state, worker processes for large areas) is
:mod:`qjournal.checking`, whose result types this module re-exports. Reading
never writes and takes no lock.

Speed: replay touches no instance of the parsed objects in its hot loop, builds
each entry without its class's Python-level constructor, and empties each
cluster's list of entries once they are yielded, which breaks the entry-cluster
reference cycles (``_parent``) so that reference counting frees them at once
instead of the cyclic garbage collector later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from qjournal.area import Area, Source
from qjournal.checking import (
    ANOMALY_KINDS,
    CheckReport,
    JournalState,
    Problem,
    check_area,
    dirty_tail_problem,
    torn_write_problem,
    unassigned_problem,
)
from qjournal.cluster import parse_cluster, start_hint, valid_prefix
from qjournal.entries import Entry, HashEntry, RawEntry, decode
from qjournal.errors import CorruptJournalError
from qjournal.format import LEN_CLUSTER, TYPE_END, TYPE_HASH, type_name

if TYPE_CHECKING:
    from qjournal.live import LiveIndex

__all__ = [
    "ANOMALY_KINDS",
    "CheckReport",
    "JournalReader",
    "JournalState",
    "Problem",
    "dirty_tail_problem",
    "parse_cluster",
    "read",
    "torn_write_problem",
    "type_name",
    "unassigned_problem",
]

_new = tuple.__new__  # an entry without its class's Python-level __new__ (the hot loop)

class JournalReader:
    """A journal opened for reading: bytes, a path or a binary file, at an offset (D1).

    ``replay()`` streams the entries; ``state()`` and ``check()`` walk the whole
    area. Use as a context manager to close a file it opened (a reader that is
    not closed closes it when it is collected).
    """

    def __init__(self, source: Source, offset: int = 0, length: int | None = None) -> None:
        self.area = Area(source, offset, length)

    @classmethod
    def over(cls, area: Area) -> JournalReader:
        """A reader over an area that is already open (a writer's own): no second open, nothing to close."""
        reader = cls.__new__(cls)
        reader.area = area
        return reader

    # -- the area ---------------------------------------------------------
    @property
    def name(self) -> str:
        """The source's name, for messages."""
        return self.area.name

    @property
    def len_area(self) -> int:
        """Area length in bytes."""
        return self.area.len_area

    @property
    def num_clusters(self) -> int:
        """Number of journal clusters in the area."""
        return self.area.num_clusters

    def close(self) -> None:
        """Close the file if the reader opened it."""
        self.area.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _corrupt(self, exc: CorruptJournalError, base: int, hint: str | None = None) -> CorruptJournalError:
        return CorruptJournalError(
            exc.code, exc.reason, base + (exc.offset or 0), area_offset=self.area.area_offset, source=self.name, hint=hint
        )

    # -- replay -----------------------------------------------------------
    def replay(self, progress: Callable[[int], None] | None = None) -> Iterator[Entry]:
        """Yield the replayed entries in order (D7), each with its offset in the area.

        Entries before a corruption are yielded; then :class:`CorruptJournalError`
        is raised at the offending byte (docs/format.md D17). ``progress``, if
        given, is called with the area bytes replayed so far, before each cluster.
        """
        area = self.area
        first = b""  # the first entry's header, as read at the start
        for index in range(area.num_clusters):
            ofs = index * LEN_CLUSTER
            if progress is not None:
                progress(ofs)
            buf = area.read_cluster(index)
            if not index:
                first = buf[:2]
            try:
                cluster = parse_cluster(buf)
            except CorruptJournalError as exc:
                stop = exc.offset or 0
                for e in valid_prefix(buf, stop):
                    yield decode(e, ofs)
                    ofs += e.len_entry
                raise self._corrupt(exc, index * LEN_CLUSTER, start_hint(index, buf, stop)) from None
            # The hot loop: no instance, no enum, no call per entry but the tuple's (decode, inlined).
            entries = cluster.entries
            last = entries.pop()  # the END or NONE that ends the cluster
            for e in entries:
                if e.type_code == TYPE_HASH:
                    yield _new(HashEntry, (e.digest, e.physical_sector, e.first_logical_sector, ofs))
                else:
                    yield _new(RawEntry, (e.type_code, e.body, ofs))
                ofs += e.len_entry
            entries.clear()  # frees the entries now (they and the cluster refer to each other)
            if last.type_code != TYPE_END:
                if index:  # read in more than one step: not across a reset (Area.check_unchanged)
                    area.check_unchanged(first)
                return
        if area.num_clusters > 1:
            area.check_unchanged(first)

    __iter__ = replay

    # -- the live view (D9) -----------------------------------------------
    def live(
        self,
        *,
        memory_limit: int | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> LiveIndex:
        """The live HASH entries (D9): a read-only mapping digest -> :class:`HashEntry`, the last one wins,
        iterated in the order of the last occurrences (:class:`qjournal.live.LiveIndex`).

        Replays the journal once (a corruption raises :class:`CorruptJournalError`
        as replay does) and keeps only each live digest's offset; the entries are
        read back from this reader's source, which must stay open while the index
        is used. Past ``memory_limit`` bytes (default
        :data:`qjournal.live.DEFAULT_MEMORY_LIMIT`) the index spills to an SQLite
        file in ``spill_dir``, deleted when the index is closed
        (``with reader.live() as live: ...``).
        """
        from qjournal.live import DEFAULT_MEMORY_LIMIT, LiveIndex  # noqa: PLC0415 - live imports this module

        limit = DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit
        return LiveIndex(self, memory_limit=limit, spill_dir=spill_dir, progress=progress)

    # -- the whole area ---------------------------------------------------
    def check(
        self, progress: Callable[[int], None] | None = None, *, jobs: int | None = None, max_problems: int | None = None,
        give_up_after: int | None = None,
    ) -> CheckReport:
        """Validate the whole area against docs/format.md; report every problem.

        After a corrupt cluster the check goes on with the next one, as if the
        corrupt one were closed, so one report lists every problem found. The
        ``state`` of the report is None when any corruption was found.
        ``progress``, if given, is called with the number of area bytes examined
        so far, after each cluster and each chunk of the tail scan (for a progress bar);
        with worker processes, after each range of clusters.

        ``jobs``: worker processes for a large area (default: the number of
        cores this process may use; 1: none). An area of at least
        :data:`qjournal.parallel.PARALLEL_MIN_BYTES` that is a regular file
        opened by path is split into ranges of clusters, each checked by a
        worker, and the results merged in order: the report is the serial
        check's, problem for problem. Buffers and caller file objects are
        always checked in this process, and so is every area when this process
        runs other threads (workers are forked: :func:`qjournal.parallel.can_fork`).

        ``max_problems``: the report keeps the first N problems and counts the
        rest, so memory does not grow with them (default: it keeps every one);
        the first corruption and the tail's anomalies are always kept. A check
        of an area that does not start like a journal stops after its first
        ``give_up_after`` problems (default
        :data:`qjournal.checking.NOT_A_JOURNAL_PROBLEMS`; the report's
        ``stopped_at`` says where).
        """
        return check_area(self.area, progress, jobs=jobs, max_problems=max_problems, give_up_after=give_up_after)

    def state(self, *, jobs: int | None = None, progress: Callable[[int], None] | None = None) -> JournalState:
        """The journal's state (tail, free bytes, full, counts, anomalies): :meth:`check`'s, worker processes and all.

        Raises :class:`CorruptJournalError` at the first corruption (the check
        stops there), with the hint when the area does not start like a journal.
        """
        report = check_area(self.area, progress, jobs=jobs, stop_at_corruption=True)
        if report.state is None:
            error = report.first_corruption(area_offset=self.area.area_offset, source=self.name)
            assert error is not None  # no state: a corruption was found
            raise error
        return report.state


def read(source: Source, offset: int = 0, length: int | None = None) -> JournalReader:
    """Open a journal for reading: ``with qjournal.read("j.bin") as j: for e in j: ...``."""
    return JournalReader(source, offset, length)
