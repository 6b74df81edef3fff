"""Reading a journal: replay (D7), its state, and a full check (D5, D18).

Strategy: the byte layout is the generated parser's (``Qcow2Journal.Cluster``,
from the .ksy), run by :mod:`qjournal.cluster` over one 4096-byte cluster at a
time, so memory does not grow with the area. This module walks the clusters in
order, rebases each corruption to its area offset, and gathers the anomalies
the .ksy exposes (torn write, dirty tail, unassigned types, dirty END padding).
Reading never writes and takes no lock.

Speed: replay touches no instance of the parsed objects in its hot loop, builds
each entry without its class's Python-level constructor, and empties each
cluster's list of entries once they are yielded, which breaks the entry-cluster
reference cycles (``_parent``) so that reference counting frees them at once
instead of the cyclic garbage collector later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from qjournal.area import Area, Source
from qjournal.cluster import parse_cluster, start_hint, valid_prefix
from qjournal.entries import Entry, HashEntry, RawEntry, decode
from qjournal.errors import CorruptJournalError, JournalError, spell
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HEADER,
    LEN_SHA256_ENTRY,
    TYPE_END,
    TYPE_HASH,
    TYPE_NONE,
    first_not_reset,
    is_full,
    max_len_entry,
    num_fit,
    type_name,
)
from qjournal.parallel import PARALLEL_MIN_BYTES, can_fork, ordered_map, resolve_jobs

if TYPE_CHECKING:
    from qjournal.live import LiveIndex

__all__ = [
    "ANOMALY_KINDS",
    "CheckReport",
    "JournalReader",
    "JournalState",
    "Problem",
    "parse_cluster",
    "read",
    "type_name",
    "unassigned_problem",
]

_new = tuple.__new__  # an entry without its class's Python-level __new__ (the hot loop)

ANOMALY_KINDS: dict[str, str] = {
    "torn_write": "a size byte other than 0xFF under a NONE type: an interrupted write (D5)",
    "dirty_tail": "a byte other than 0xFF after the point where replay ends (D5)",
    "unassigned_type": "an entry of a type the spec does not assign (D4)",
    "dirty_padding": "a byte other than 0xFF in an END's padding, which the writer never writes (D6)",
}
"""Every anomaly: it parses and replays, but a check reports it (and ``--strict`` fails it) (docs/format.md D18)."""


class Problem(NamedTuple):
    """One finding of a check: a corruption (``kind`` one of CORRUPTION_RULES) or an anomaly (of ANOMALY_KINDS)."""

    kind: str
    ofs: int
    reason: str
    is_corruption: bool

    def to_dict(self, area_offset: int = 0) -> dict[str, Any]:
        """A JSON-ready dict; ``file_ofs`` is ``ofs`` plus ``area_offset``, where the area starts in its file."""
        return {
            "kind": self.kind,
            "ofs": self.ofs,
            "file_ofs": area_offset + self.ofs,
            "is_corruption": self.is_corruption,
            "reason": self.reason,
        }


def unassigned_problem(ofs: int, type_code: int, len_entry: int) -> Problem:
    """The anomaly of an entry of an unassigned type at ``ofs`` (D4), as a check reports it."""
    return Problem("unassigned_type", ofs, f"entry of unassigned type {type_code:#04x}, size {len_entry} (D4)", False)


def torn_write_problem(ofs: int, len_entry: int) -> Problem:
    """The anomaly of a NONE whose size byte is not 0xFF where replay stops: an interrupted write (D14)."""
    return Problem(
        "torn_write", ofs,
        f"size byte {len_entry:#04x} under type NONE: an entry write was interrupted before its type byte; replay stops here (D5)",
        False,
    )


def dirty_tail_problem(ofs: int) -> Problem:
    """The anomaly of the first byte other than 0xFF past the point where replay ends (D5, docs/format.md D14)."""
    return Problem("dirty_tail", ofs, "byte other than 0xFF after the point where replay ends (D5)", False)


@dataclass(frozen=True)
class JournalState:
    """Where a journal stands after replay.

    ``ofs_tail`` is the offset of the NONE where replay stopped (``len_area`` when
    every cluster is closed); ``len_free`` the bytes from there to the end of the
    area; ``num_clusters_used`` the clusters replay visited that hold an entry or
    an END (the tail cluster counts once it holds one).
    """

    len_area: int
    num_clusters: int
    num_clusters_used: int
    ofs_tail: int
    len_free: int
    is_full: bool
    num_entries: int
    entries_by_type: dict[str, int]
    anomalies: tuple[Problem, ...] = field(default=())

    @property
    def is_clean(self) -> bool:
        """True when replay met no anomaly."""
        return not self.anomalies

    @property
    def max_len_entry(self) -> int:
        """The largest ``len_entry`` the next append can take (0 when the journal is full) (D6)."""
        return max_len_entry(self.ofs_tail, self.len_area)

    def num_fit(self, len_entry: int = LEN_SHA256_ENTRY) -> int:
        """How many more entries of ``len_entry`` bytes fit (default: SHA-256 HASH entries, 50 bytes) (D6)."""
        return num_fit(self.ofs_tail, self.len_area, len_entry)

    def to_dict(self, area_offset: int = 0) -> dict[str, Any]:
        """A JSON-ready dict of every field, the anomalies as :meth:`Problem.to_dict` (``area_offset``: see there)."""
        return {
            "len_area": self.len_area,
            "num_clusters": self.num_clusters,
            "num_clusters_used": self.num_clusters_used,
            "ofs_tail": self.ofs_tail,
            "len_free": self.len_free,
            "is_full": self.is_full,
            "num_entries": self.num_entries,
            "entries_by_type": dict(self.entries_by_type),
            "anomalies": [p.to_dict(area_offset) for p in self.anomalies],
        }


@dataclass(frozen=True)
class CheckReport:
    """Everything a check found. ``state`` is None when the area is corrupt.

    ``hint`` is set when the area does not start like a journal (a corruption in
    cluster 0 with no well-formed HASH entry before it): a wrong offset or
    length is then likelier than a corrupt journal.
    """

    problems: tuple[Problem, ...]
    state: JournalState | None
    hint: str | None = None

    @property
    def is_corrupt(self) -> bool:
        """True when at least one problem is corruption."""
        return any(p.is_corruption for p in self.problems)

    @property
    def has_anomalies(self) -> bool:
        """True when at least one problem is an anomaly."""
        return any(not p.is_corruption for p in self.problems)

    @property
    def num_corruptions(self) -> int:
        """How many problems are corruption."""
        return sum(p.is_corruption for p in self.problems)

    @property
    def num_anomalies(self) -> int:
        """How many problems are anomalies."""
        return len(self.problems) - self.num_corruptions

    @classmethod
    def of_error(cls, exc: CorruptJournalError) -> CheckReport:
        """The report of an area that cannot even be opened as one (``area_length``): that corruption, its hint."""
        return cls((Problem(exc.rule, exc.offset or 0, exc.reason, True),), None, exc.hint)

    def first_corruption(self, *, area_offset: int = 0, source: str | None = None) -> CorruptJournalError | None:
        """The first corruption as the error replay raises (with the hint), or None when there is none."""
        first = next((p for p in self.problems if p.is_corruption), None)
        if first is None:
            return None
        return CorruptJournalError(first.kind, first.reason, first.ofs, area_offset=area_offset, source=source, hint=self.hint)

    def to_dict(self, area_offset: int = 0, *, cli: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: the counts, every problem, the state (None when corrupt), the hint (options spelt
        for ``cli`` or not); ``area_offset``: see :meth:`Problem.to_dict`."""
        return {
            "num_corruptions": self.num_corruptions,
            "num_anomalies": self.num_anomalies,
            "problems": [p.to_dict(area_offset) for p in self.problems],
            "state": None if self.state is None else self.state.to_dict(area_offset),
            "hint": None if self.hint is None else spell(self.hint, cli=cli),
        }


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
            exc.rule, exc.reason, base + (exc.offset or 0), area_offset=self.area.area_offset, source=self.name, hint=hint
        )

    # -- replay -----------------------------------------------------------
    def replay(self, progress: Callable[[int], None] | None = None) -> Iterator[Entry]:
        """Yield the replayed entries in order (D7), each with its offset in the area.

        Entries before a corruption are yielded; then :class:`CorruptJournalError`
        is raised at the offending byte (docs/format.md D17). ``progress``, if
        given, is called with the area bytes replayed so far, before each cluster.
        """
        area = self.area
        for index in range(area.num_clusters):
            ofs = index * LEN_CLUSTER
            if progress is not None:
                progress(ofs)
            buf = area.read_cluster(index)
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
                return

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
    def check(self, progress: Callable[[int], None] | None = None, *, jobs: int | None = None) -> CheckReport:
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
        """
        n = resolve_jobs(jobs)
        if n > 1 and self.len_area >= PARALLEL_MIN_BYTES and can_fork():
            spec = self.area.regular_file()
            if spec is not None:
                report = self._check_parallel(spec, n, progress)
                if report is not None:
                    return report
        found = _check_clusters(self.area, 0, self.area.num_clusters, progress)
        if progress is not None:
            progress(self.len_area)
        return self._report(found.problems, found.codes, found.clusters_used, found.ofs_tail, found.hint)

    def _check_parallel(self, spec: tuple[str, int, int], jobs: int, progress: Callable[[int], None] | None) -> CheckReport | None:
        """The check by ranges of clusters in worker processes, merged in order; None: do it serially."""
        num = self.area.num_clusters
        size = max(MIN_RANGE_CLUSTERS, -(-num // (jobs * RANGES_PER_JOB)))
        ranges = [((spec, self.area.area_offset, self.len_area, lo, min(num, lo + size), lo > 0),) for lo in range(0, num, size)]
        problems: list[Problem] = []
        codes: dict[int, int] = {}
        used = 0
        hint: str | None = None
        ofs_tail: int | None = None
        pending = False  # replay ended in an earlier range, its tail clean to that range's end: look on
        results = ordered_map(_check_range_worker, ranges, jobs)
        try:
            for ((*_, hi, _want),), r in zip(ranges, results, strict=False):
                if pending:
                    if r.first_dirty is not None:
                        problems.append(dirty_tail_problem(r.first_dirty))
                        break
                else:
                    problems += r.problems
                    for code, k in r.codes.items():
                        codes[code] = codes.get(code, 0) + k
                    used += r.clusters_used
                    hint = hint or r.hint
                    if r.ofs_tail is not None:
                        ofs_tail = r.ofs_tail
                        if not r.tail_pending:
                            break
                        pending = True
                if progress is not None:
                    progress(hi * LEN_CLUSTER)
        except (_WorkerCannotOpen, JournalError, OSError):
            return None  # the serial check gives the answer, or the error, the serial way
        except Exception:  # a pool that could not start (no fork, a daemonic process), pickling
            return None
        finally:
            results.close()
        if progress is not None:
            progress(self.len_area)
        return self._report(problems, codes, used, ofs_tail, hint)

    def _report(self, problems: list[Problem], codes: dict[int, int], clusters_used: int, ofs_tail: int | None,
                hint: str | None) -> CheckReport:
        if any(p.is_corruption for p in problems):
            return CheckReport(tuple(problems), None, hint)
        tail = self.len_area if ofs_tail is None else ofs_tail
        counts = {type_name(code): n for code, n in codes.items()}
        state = JournalState(
            len_area=self.len_area,
            num_clusters=self.area.num_clusters,
            num_clusters_used=clusters_used,
            ofs_tail=tail,
            len_free=self.len_area - tail,
            is_full=is_full(tail, self.len_area),
            num_entries=sum(counts.values()),
            entries_by_type=counts,
            anomalies=tuple(problems),
        )
        return CheckReport(tuple(problems), state)

    def state(self, *, jobs: int | None = None, progress: Callable[[int], None] | None = None) -> JournalState:
        """The journal's state (tail, free bytes, full, counts, anomalies): :meth:`check`'s, worker processes and all.

        Raises :class:`CorruptJournalError` at the first corruption, with the
        hint when the area does not start like a journal.
        """
        report = self.check(progress, jobs=jobs)
        if report.state is None:
            error = report.first_corruption(area_offset=self.area.area_offset, source=self.name)
            assert error is not None  # no state: a corruption was found
            raise error
        return report.state


MIN_RANGE_CLUSTERS = 256
"""The smallest range of clusters a worker checks (1 MiB)."""
RANGES_PER_JOB = 4
"""Ranges per worker: the work is balanced when replay ends early, and the merge can stop early."""


class _Found(NamedTuple):
    """What a check found in a range of clusters, in the order it found it."""

    problems: list[Problem]
    codes: dict[int, int]
    """Regular entries per type code."""
    clusters_used: int
    ofs_tail: int | None
    """Where replay ends, when it ends in this range (None: every cluster of the range is closed or corrupt)."""
    hint: str | None
    tail_pending: bool = False
    """Replay ended here with a clean tail up to the range's end: the bytes after the range are still to scan."""
    first_dirty: int | None = None
    """The range's first byte other than 0xFF (asked of a worker's range after the first)."""


def _check_clusters(area: Area, start: int, stop: int, progress: Callable[[int], None] | None = None) -> _Found:
    """Check clusters ``start`` to ``stop - 1`` (D5, D18): their problems, and the tail when replay ends among them.

    The tail scan past an open cluster runs to the range's end (``stop``).
    Each cluster's entries are freed before the next is parsed (the
    entry-cluster reference cycles broken, so the cyclic collector has
    nothing to do).
    """
    problems: list[Problem] = []
    codes: dict[int, int] = {}
    clusters_used = 0
    hint: str | None = None
    end = stop * LEN_CLUSTER
    for index, buf in enumerate(area.clusters(start, stop), start):
        base = index * LEN_CLUSTER
        if progress is not None and index:
            progress(base)
        try:
            cluster = parse_cluster(buf)
        except CorruptJournalError as exc:
            problems.append(Problem(exc.rule, base + (exc.offset or 0) or base, exc.reason, True))
            if index == 0:
                hint = start_hint(index, buf, exc.offset or 0)
            clusters_used += 1
            continue
        ofs = base
        entries = cluster.entries
        for e in entries:
            code = e.type_code
            if code == TYPE_NONE:
                break
            if code == TYPE_END:
                if e.has_dirty_padding:
                    first = ofs + LEN_HEADER + first_not_reset(e.body)
                    problems.append(Problem("dirty_padding", first, "END padding holds a byte other than 0xFF (D6)", False))
            else:
                codes[code] = codes.get(code, 0) + 1
                if code != TYPE_HASH:  # every other regular type is unassigned (D4)
                    problems.append(unassigned_problem(ofs, code, e.len_entry))
            ofs += e.len_entry
        closed = cluster.is_closed
        if cluster.num_regular or closed:
            clusters_used += 1
        if not closed:
            term = cluster.terminator
            torn = term.is_torn
            dirty_tail = cluster.has_dirty_tail
            tail = cluster.tail
        last = entries[-1]
        entries.clear()  # the entries and the cluster refer to each other: free them now, not in the collector
        last._parent = None
        if not closed:
            if torn:
                problems.append(torn_write_problem(ofs, term.len_entry))
            if dirty_tail:
                problems.append(dirty_tail_problem(ofs + LEN_HEADER + first_not_reset(tail)))
                return _Found(problems, codes, clusters_used, ofs, hint)
            dirty = area.first_not_reset((index + 1) * LEN_CLUSTER, progress, end)
            if dirty is not None:
                problems.append(dirty_tail_problem(dirty))
                return _Found(problems, codes, clusters_used, ofs, hint)
            return _Found(problems, codes, clusters_used, ofs, hint, tail_pending=True)
    return _Found(problems, codes, clusters_used, None, hint)


class _WorkerCannotOpen(Exception):
    """A worker could not open the parent's file as the same file: the parent checks serially."""


RangeJob = tuple[tuple[str, int, int], int, int, int, int, bool]
"""A worker's job: (the file's path, st_dev, st_ino), area offset, area length, first cluster, stop, want first_dirty."""


def _check_range_worker(job: RangeJob) -> _Found:
    """In a worker process: open the file by path, make sure it is the parent's, check a range of clusters."""
    spec, area_offset, len_area, start, stop, want_first_dirty = job
    path = spec[0]
    try:
        area = Area(path, area_offset, len_area)
    except JournalError as exc:
        raise _WorkerCannotOpen(str(exc)) from None
    try:
        if area.regular_file() != spec:
            raise _WorkerCannotOpen(f"{path} is no longer the file the check opened")
        if not want_first_dirty:
            return _check_clusters(area, start, stop)
        first_dirty = area.first_not_reset(start * LEN_CLUSTER, None, stop * LEN_CLUSTER)
        if first_dirty is None:  # all 0xFF: replay ends at the range's start, nothing to report
            return _Found([], {}, 0, start * LEN_CLUSTER, None, tail_pending=True)
        return _check_clusters(area, start, stop)._replace(first_dirty=first_dirty)
    finally:
        area.close()


def read(source: Source, offset: int = 0, length: int | None = None) -> JournalReader:
    """Open a journal for reading: ``with qjournal.read("j.bin") as j: for e in j: ...``."""
    return JournalReader(source, offset, length)
