"""The check of a whole area (D5, D18): every corruption and anomaly, with its offset, and the state.

Strategy: the twin of :mod:`qjournal.dumping`. Each cluster is parsed by the
generated parser (:mod:`qjournal.cluster`) and its findings gathered (the
anomalies the .ksy exposes: torn write, dirty tail, unassigned types, dirty END
padding); after a corrupt cluster the check goes on with the next one, so one
report lists every problem. A large area that is a regular file is cut into
ranges of clusters that worker processes check (:func:`qjournal.parallel.run_ranges`,
the gate, the same-file step and the fallback written once there); the parent
merges the ranges in order into the serial check's report, problem for problem:
the same function checks a range in a worker and in this process. Each
cluster's entries are freed before the next is parsed, so memory does not grow
with the area.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from qjournal.area import Area
from qjournal.cluster import parse_cluster, start_hint
from qjournal.codes import family
from qjournal.errors import CorruptJournalError, JournalArgumentError, deprecated_name, spell
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HEADER,
    LEN_SHA256_ENTRY,
    RESET_BYTE,
    TYPE_END,
    TYPE_HASH,
    TYPE_NONE,
    first_not_reset,
    is_full,
    max_len_entry,
    num_fit,
    type_name,
)
from qjournal.metadata import is_metadata
from qjournal.parallel import Seen, plan, run_ranges, tail_moved

__all__ = [
    "ANOMALY_KINDS",
    "DEFAULT_MAX_PROBLEMS",
    "MIN_RANGE_CLUSTERS",
    "NOT_A_JOURNAL_PROBLEMS",
    "RANGES_PER_JOB",
    "CheckReport",
    "JournalState",
    "Problem",
    "check_area",
    "dirty_tail_problem",
    "torn_write_problem",
    "unassigned_problem",
]

ANOMALY_KINDS: dict[str, str] = family("anomaly")
"""Every anomaly: it parses and replays, but a check reports it (and ``--strict`` fails it) (docs/format.md D18; a view
of :data:`qjournal.codes.CODES`)."""


class Problem(NamedTuple):
    """One finding of a check: a corruption (``code`` one of CORRUPTION_RULES) or an anomaly (of ANOMALY_KINDS).

    ``kind``, the old name of ``code``, is deprecated (one release)."""

    code: str
    ofs: int
    reason: str
    is_corruption: bool

    @property
    def kind(self) -> str:
        """Deprecated name of ``code``."""
        deprecated_name("kind", self)
        return self.code

    def to_dict(self, area_offset: int = 0) -> dict[str, Any]:
        """A JSON-ready dict (``kind``: ``code`` under its old key, for one release); ``file_ofs`` is ``ofs`` plus
        ``area_offset``, where the area starts in its file."""
        return {
            "code": self.code,
            "kind": self.code,  # the old key, for one release
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
        f"size byte {len_entry:#04x} under type NONE: an entry write was interrupted before its type byte; replay stops here (D14)",
        False,
    )


def dirty_tail_problem(ofs: int) -> Problem:
    """The anomaly of the first byte other than 0xFF past the point where replay ends (D5, docs/format.md D14)."""
    return Problem("dirty_tail", ofs, "byte other than 0xFF after the point where replay ends (D14)", False)


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
    num_more_anomalies: int = 0
    """Anomalies found past the check's ``max_problems`` and not kept (:func:`check_area`)."""

    @property
    def is_clean(self) -> bool:
        """True when replay met no anomaly."""
        return not self.anomalies

    @property
    def num_anomalies(self) -> int:
        """How many anomalies replay met, those kept in ``anomalies`` and those past the check's cap."""
        return len(self.anomalies) + self.num_more_anomalies

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
            "num_anomalies": self.num_anomalies,
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
    num_more_corruptions: int = 0
    """Corruptions found past ``max_problems`` (:func:`check_area`): counted, not kept."""
    num_more_anomalies: int = 0
    """Anomalies found past ``max_problems``: counted, not kept."""
    stopped_at: int | None = None
    """Where the check stopped early (an area offset): the area does not look like a journal (or, when asked, at
    the first corruption); None when it checked the whole area."""

    @property
    def is_corrupt(self) -> bool:
        """True when at least one problem is corruption."""
        return self.num_corruptions > 0

    @property
    def has_anomalies(self) -> bool:
        """True when at least one problem is an anomaly."""
        return self.num_anomalies > 0

    @property
    def num_corruptions(self) -> int:
        """How many problems are corruption (kept or not)."""
        return sum(p.is_corruption for p in self.problems) + self.num_more_corruptions

    @property
    def num_anomalies(self) -> int:
        """How many problems are anomalies (kept or not)."""
        return sum(not p.is_corruption for p in self.problems) + self.num_more_anomalies

    @property
    def num_not_kept(self) -> int:
        """How many problems were counted but not kept in ``problems``."""
        return self.num_more_corruptions + self.num_more_anomalies

    @classmethod
    def of_error(cls, exc: CorruptJournalError) -> CheckReport:
        """The report of an area that cannot even be opened as one (``area_length``): that corruption, its hint."""
        return cls((Problem(exc.code, exc.offset or 0, exc.reason, True),), None, exc.hint)

    def first_corruption(self, *, area_offset: int = 0, source: str | None = None) -> CorruptJournalError | None:
        """The first corruption as the error replay raises (with the hint), or None when there is none."""
        first = next((p for p in self.problems if p.is_corruption), None)
        if first is None:
            return None
        return CorruptJournalError(first.code, first.reason, first.ofs, area_offset=area_offset, source=source, hint=self.hint)

    def to_dict(self, area_offset: int = 0, *, cli: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: the counts, every problem, the state (None when corrupt), the hint (options spelt
        for ``cli`` or not); ``area_offset``: see :meth:`Problem.to_dict`."""
        return {
            "num_corruptions": self.num_corruptions,
            "num_anomalies": self.num_anomalies,
            "problems": [p.to_dict(area_offset) for p in self.problems],
            "num_not_kept": self.num_not_kept,
            "stopped_at": None if self.stopped_at is None else area_offset + self.stopped_at,
            "state": None if self.state is None else self.state.to_dict(area_offset),
            "hint": None if self.hint is None else spell(self.hint, cli=cli),
        }


_RESET_CLUSTER = bytes((RESET_BYTE,)) * LEN_CLUSTER

MIN_RANGE_CLUSTERS = 256
"""The smallest range of clusters a worker checks (1 MiB)."""
RANGES_PER_JOB = 4
"""Ranges per worker: the work is balanced when replay ends early, and the merge can stop early."""

DEFAULT_MAX_PROBLEMS = 100
"""Problems ``qjournal check`` lists by default (its ``--max-problems``, :func:`check_area`'s ``max_problems``);
past it, it counts them."""
NOT_A_JOURNAL_PROBLEMS = 5
"""By default, a check of an area that does not start like a journal stops after this many problems."""
_END_KINDS = ("torn_write", "dirty_tail")
"""Where replay ends (one of each at most): always kept, whatever the cap (a writer acts on them)."""


class _Limits(NamedTuple):
    keep: int
    """Problems kept; the rest are counted."""
    stop_after: int
    """Problems after which a check of an area that does not start like a journal stops."""
    stop_at_corruption: bool
    """Stop at the first corruption (a state needs no more)."""


class _Kept:
    """The problems of a check in order, the first ``keep`` of them kept and the rest counted.

    The first corruption and the anomalies where replay ends are kept past the
    cap: a state's error names the first, a writer acts on the others.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.problems: list[Problem] = []
        self.more_corruptions = 0
        self.more_anomalies = 0
        self.corrupt = False

    def add(self, p: Problem) -> None:
        if len(self.problems) < self.keep or p.code in _END_KINDS or (p.is_corruption and not self.corrupt):
            self.problems.append(p)
        elif p.is_corruption:
            self.more_corruptions += 1
        else:
            self.more_anomalies += 1
        self.corrupt = self.corrupt or p.is_corruption

    def add_found(self, found: _Found) -> None:
        for p in found.problems:
            self.add(p)
        self.more_corruptions += found.more_corruptions
        self.more_anomalies += found.more_anomalies
        self.corrupt = self.corrupt or found.more_corruptions > 0

    @property
    def total(self) -> int:
        return len(self.problems) + self.more_corruptions + self.more_anomalies


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
    tail: Seen | None = None
    """The cluster where replay ends, as this range read it (:func:`qjournal.parallel.tail_moved`)."""
    more_corruptions: int = 0
    """Corruptions past the cap, counted (:class:`_Kept`)."""
    more_anomalies: int = 0
    """Anomalies past the cap, counted."""
    stopped_at: int | None = None
    """The check stopped early here (an area offset): the area does not start like a journal, or at a corruption."""


def _check_clusters(area: Area, start: int, stop: int, progress: Callable[[int], None] | None, limits: _Limits) -> _Found:
    """Check clusters ``start`` to ``stop - 1`` (D5, D18): their problems, and the tail when replay ends among them.

    The tail scan past an open cluster runs to the range's end (``stop``).
    Each cluster's entries are freed before the next is parsed (the
    entry-cluster reference cycles broken, so the cyclic collector has
    nothing to do). ``limits``: what is kept, and when to stop early.
    """
    kept = _Kept(limits.keep)
    add = kept.add
    codes: dict[int, int] = {}
    clusters_used = 0
    hint: str | None = None
    end = stop * LEN_CLUSTER

    def found(ofs_tail: int | None, **kw: Any) -> _Found:
        return _Found(kept.problems, codes, clusters_used, ofs_tail, hint, more_corruptions=kept.more_corruptions,
                      more_anomalies=kept.more_anomalies, **kw)

    for index, buf in enumerate(area.clusters(start, stop), start):
        base = index * LEN_CLUSTER
        if progress is not None and index:
            progress(base)
        try:
            cluster = parse_cluster(buf)
        except CorruptJournalError as exc:
            add(Problem(exc.code, base + (exc.offset or 0) or base, exc.reason, True))
            if index == 0:
                hint = start_hint(index, buf, exc.offset or 0)
            clusters_used += 1
            if limits.stop_at_corruption or (hint is not None and kept.total >= limits.stop_after):
                return found(None, stopped_at=base + LEN_CLUSTER)
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
                    add(Problem("dirty_padding", first, "END padding holds a byte other than 0xFF (D15)", False))
            else:
                codes[code] = codes.get(code, 0) + 1
                if code != TYPE_HASH and not is_metadata(ofs, code, e.body):  # every other regular type is unassigned
                    add(unassigned_problem(ofs, code, e.len_entry))  # (D4), but for qjournal's metadata entry (D30)
            ofs += e.len_entry
        closed = cluster.is_closed
        if cluster.num_regular or closed:
            clusters_used += 1
        if closed and hint is not None and kept.total >= limits.stop_after:
            entries.clear()
            return found(None, stopped_at=base + LEN_CLUSTER)
        if not closed:
            term = cluster.terminator
            torn = term.is_torn
            dirty_tail = cluster.has_dirty_tail
            tail = cluster.tail
        last = entries[-1]
        entries.clear()  # the entries and the cluster refer to each other: free them now, not in the collector
        last._parent = None
        if not closed:
            seen = (index, buf)
            if torn:
                add(torn_write_problem(ofs, term.len_entry))
            if dirty_tail:
                add(dirty_tail_problem(ofs + LEN_HEADER + first_not_reset(tail)))
                return found(ofs, tail=seen)
            dirty = area.first_not_reset((index + 1) * LEN_CLUSTER, progress, end)
            if dirty is not None:
                add(dirty_tail_problem(dirty))
                return found(ofs, tail=seen)
            return found(ofs, tail_pending=True, tail=seen)
    return found(None)


def check_area(area: Area, progress: Callable[[int], None] | None = None, *, jobs: int | None = None,
               max_problems: int | None = None, give_up_after: int | None = None,
               stop_at_corruption: bool = False) -> CheckReport:
    """The check of ``area`` (:meth:`qjournal.reader.JournalReader.check` documents it): its report.

    ``max_problems``: the problems kept (default: every one), the rest counted
    (the report's ``num_more_corruptions``, ``num_more_anomalies``), so memory
    does not grow with the problems (``qjournal check`` keeps
    :data:`DEFAULT_MAX_PROBLEMS`); an area that does not start like a journal
    (the report's ``hint``) is checked no further than its first
    ``give_up_after`` problems (default :data:`NOT_A_JOURNAL_PROBLEMS`): the
    report's ``stopped_at`` says where it stopped. ``stop_at_corruption``:
    stop at the first corruption (what a state needs).

    With workers (:func:`qjournal.parallel.plan`), ranges of at least
    :data:`MIN_RANGE_CLUSTERS` clusters, :data:`RANGES_PER_JOB` per worker;
    without, one range, the whole area. When a writer committed while the
    workers read (:func:`qjournal.parallel.tail_moved`), the area is checked
    again in this process: the report shows the journal before a batch or
    after it, never part of one.
    """
    for name, value in (("max_problems", max_problems), ("give_up_after", give_up_after)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise JournalArgumentError(f"{name} must be an integer >= 1, not {value!r}")
    limits = _Limits(max_problems or sys.maxsize, give_up_after or NOT_A_JOURNAL_PROBLEMS, stop_at_corruption)
    workers = plan(area, jobs)
    num = area.num_clusters
    size = num if workers is None else max(MIN_RANGE_CLUSTERS, -(-num // (workers.num_workers * RANGES_PER_JOB)))
    bounds = [(lo, min(num, lo + size)) for lo in range(0, num, size)]
    kept = _Kept(limits.keep)
    codes: dict[int, int] = {}
    used = 0
    hint: str | None = None
    ofs_tail: int | None = None
    stopped_at: int | None = None
    pending = False  # replay ended in an earlier range, its tail clean to that range's end: look on
    first = area.read(0, 2)  # the first entry's header: a reset meanwhile changes it (Area.check_unchanged)
    seen: Seen | None = None  # the cluster where replay ends, as the range that found it read it

    def work(a: Area, start: int, stop: int, p: Callable[[int], None] | None) -> _Found:
        return _check_range(a, start, stop, p, limits)

    with contextlib.closing(run_ranges(area, work, bounds, workers, progress)) as ranges:
        for r in ranges:
            if pending:
                if r.first_dirty is not None:
                    kept.add(dirty_tail_problem(r.first_dirty))
                    break
                continue
            kept.add_found(r)
            for code, k in r.codes.items():
                codes[code] = codes.get(code, 0) + k
            used += r.clusters_used
            hint = hint or r.hint
            if r.stopped_at is not None or (stop_at_corruption and kept.corrupt):
                stopped_at = r.stopped_at
                break
            if r.ofs_tail is not None:
                ofs_tail, seen = r.ofs_tail, r.tail
                if not r.tail_pending:
                    break
                pending = True
            if hint is not None and workers is not None:
                # not a journal: where the serial check gives up depends on every problem before it, which the
                # later ranges did not know; such a check stops within a few clusters, so it is done again here
                return check_area(area, progress, jobs=1, max_problems=max_problems, give_up_after=give_up_after,
                                  stop_at_corruption=stop_at_corruption)
    if workers is not None and tail_moved(area, seen):  # a batch was committed while the ranges were read
        return check_area(area, progress, jobs=1, max_problems=max_problems, give_up_after=give_up_after,
                          stop_at_corruption=stop_at_corruption)
    area.check_unchanged(first)
    if progress is not None:
        progress(area.len_area if stopped_at is None else stopped_at)
    if kept.corrupt:
        return CheckReport(tuple(kept.problems), None, hint, kept.more_corruptions, kept.more_anomalies, stopped_at)
    tail = area.len_area if ofs_tail is None else ofs_tail
    counts = {type_name(code): n for code, n in codes.items()}
    state = JournalState(
        len_area=area.len_area,
        num_clusters=area.num_clusters,
        num_clusters_used=used,
        ofs_tail=tail,
        len_free=area.len_area - tail,
        is_full=is_full(tail, area.len_area),
        num_entries=sum(counts.values()),
        entries_by_type=counts,
        anomalies=tuple(kept.problems),
        num_more_anomalies=kept.more_anomalies,
    )
    return CheckReport(tuple(kept.problems), state, None, 0, kept.more_anomalies)


def _check_range(area: Area, start: int, stop: int, progress: Callable[[int], None] | None, limits: _Limits) -> _Found:
    """Clusters ``start`` to ``stop - 1`` checked, in a worker or in this process (the same answer either way).

    A range after the first also says where its first byte other than 0xFF is,
    for the merge to use when replay ended in an earlier range.
    """
    if not start:
        return _check_clusters(area, start, stop, progress, limits)
    first_dirty = area.first_not_reset(start * LEN_CLUSTER, None, stop * LEN_CLUSTER)
    if first_dirty is None:  # all 0xFF: replay ends at the range's start, nothing to report
        return _Found([], {}, 0, start * LEN_CLUSTER, None, tail_pending=True, tail=(start, _RESET_CLUSTER))
    return _check_clusters(area, start, stop, progress, limits)._replace(first_dirty=first_dirty)
