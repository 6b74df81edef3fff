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

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from qjournal.area import Area, Source
from qjournal.cluster import parse_cluster, start_hint, valid_prefix
from qjournal.entries import Entry, HashEntry, RawEntry, decode
from qjournal.errors import CorruptJournalError
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HEADER,
    TYPE_END,
    TYPE_HASH,
    TYPE_NONE,
    first_not_reset,
    is_full,
    type_name,
)

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

    # -- the whole area ---------------------------------------------------
    def check(self, progress: Callable[[int], None] | None = None) -> CheckReport:
        """Validate the whole area against docs/format.md; report every problem.

        After a corrupt cluster the check goes on with the next one, as if the
        corrupt one were closed, so one report lists every problem found. The
        ``state`` of the report is None when any corruption was found.
        ``progress``, if given, is called with the number of area bytes examined
        so far, after each cluster and each chunk of the tail scan (for a progress bar).
        """
        problems: list[Problem] = []
        hint: str | None = None
        codes: Counter[int] = Counter()
        num_clusters = self.area.num_clusters
        ofs_tail = self.len_area
        clusters_used = 0
        for index in range(num_clusters):
            base = index * LEN_CLUSTER
            if progress is not None and index:
                progress(base)
            buf = self.area.read_cluster(index)
            try:
                cluster = parse_cluster(buf)
            except CorruptJournalError as exc:
                e = self._corrupt(exc, base)
                problems.append(Problem(e.rule, e.offset or base, e.reason, True))
                if index == 0:
                    hint = start_hint(index, buf, exc.offset or 0)
                clusters_used += 1
                continue
            ofs = base
            for e in cluster.entries:
                code = e.type_code
                if code == TYPE_NONE:
                    break
                if code == TYPE_END:
                    if e.has_dirty_padding:
                        first = ofs + LEN_HEADER + first_not_reset(e.body)
                        problems.append(Problem("dirty_padding", first, "END padding holds a byte other than 0xFF (D6)", False))
                else:
                    codes[code] += 1
                    if code != TYPE_HASH:  # every other regular type is unassigned (D4)
                        problems.append(unassigned_problem(ofs, code, e.len_entry))
                ofs += e.len_entry
            if cluster.num_regular or cluster.is_closed:
                clusters_used += 1
            if not cluster.is_closed:
                ofs_tail = ofs
                term = cluster.terminator
                if term.is_torn:
                    problems.append(torn_write_problem(ofs, term.len_entry))
                if cluster.has_dirty_tail:
                    problems.append(dirty_tail_problem(ofs + LEN_HEADER + first_not_reset(cluster.tail)))
                else:
                    dirty = self.area.first_not_reset((index + 1) * LEN_CLUSTER, progress)
                    if dirty is not None:
                        problems.append(dirty_tail_problem(dirty))
                break
        if progress is not None:
            progress(self.len_area)
        if any(p.is_corruption for p in problems):
            return CheckReport(tuple(problems), None, hint)
        counts = {type_name(code): n for code, n in codes.items()}
        state = JournalState(
            len_area=self.len_area,
            num_clusters=num_clusters,
            num_clusters_used=clusters_used,
            ofs_tail=ofs_tail,
            len_free=self.len_area - ofs_tail,
            is_full=is_full(ofs_tail, self.len_area),
            num_entries=sum(counts.values()),
            entries_by_type=counts,
            anomalies=tuple(problems),
        )
        return CheckReport(tuple(problems), state)

    def state(self) -> JournalState:
        """The journal's state (tail, free bytes, full, counts, anomalies).

        Raises :class:`CorruptJournalError` at the first corruption.
        """
        report = self.check()
        if report.state is None:
            first = next(p for p in report.problems if p.is_corruption)
            raise CorruptJournalError(
                first.kind, first.reason, first.ofs, area_offset=self.area.area_offset, source=self.name, hint=report.hint
            )
        return report.state


def read(source: Source, offset: int = 0, length: int | None = None) -> JournalReader:
    """Open a journal for reading: ``with qjournal.read("j.bin") as j: for e in j: ...``."""
    return JournalReader(source, offset, length)
