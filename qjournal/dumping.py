"""What ``qjournal dump`` prints: the replayed entries, formatted a run of clusters at a time, on every core.

Strategy: replay visits the clusters in order and stops after the first that
is not closed by an END, or at the first corrupt one (D7); each cluster is
parsed once by the generated parser and its entries formatted into one text:
lines for a person, JSON lines, or the comma-joined objects of a JSON array.
Clusters are independent (D5: no entry spans two), so a large area that is a
regular file is cut into runs of :data:`RUN_CLUSTERS` clusters that forked
worker processes format (:func:`qjournal.parallel.run_ranges`, the twin of
the check's ranges in :mod:`qjournal.checking`), each opening the file itself;
the parent takes the runs in order and stops, the workers with it, at the run
where replay ends; when a writer committed a batch while the runs were read
(:func:`qjournal.parallel.tail_moved`), that run and the next are read again in
this process, so the text never holds part of a batch (the runs printed before
it hold only clusters closed before the batch). The text is the serial one byte for byte: the same function
formats a run in a worker and in this process. Each worker is at most one run
ahead (its pipe holds it back), so memory does not grow with the area; a
worker that fails hands its run, and the rest, back to this process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from qjournal.area import Area
from qjournal.cluster import parse_cluster, start_hint, valid_prefix
from qjournal.entries import Entry, HashEntry, RawEntry, json_join, json_join_parsed
from qjournal.errors import CorruptJournalError
from qjournal.format import LEN_CLUSTER, RESET_BYTE, TYPE_END, TYPE_HASH, TYPE_NONE, EntryType, entry_type_json, type_name
from qjournal.parallel import Seen, plan, run_ranges, tail_moved

__all__ = ["OUTPUTS", "RUN_CLUSTERS", "Marker", "Run", "Walked", "cluster_items", "format_item", "format_items", "runs",
           "walk_clusters"]

OUTPUTS = ("human", "jsonl", "json")
"""The text forms of a run: one line per item, one JSON object per line, JSON objects joined by ``,\\n``."""

RUN_CLUSTERS = 16
"""Clusters a worker formats at a time: 64 KiB of area, some 220 KiB of JSON lines of SHA-256 entries. Measured
here (64 MiB journal, two workers): runs of 256 clusters (3.5 MiB of text each) cost the parent and the kernel
three times the system time of runs of 16 (0.6 s against 0.2 s), the buffers no longer fitting the caches;
below 16 the cost per run (a pickle, a pipe read) starts to show."""


class Marker(NamedTuple):
    """An END or the NONE where replay stopped, shown by ``dump --all``."""

    entry_type: EntryType
    """``EntryType.end`` or ``EntryType.none``: the .ksy's ``entry_type``, as for every entry (JSON: its name)."""
    len_entry: int
    ofs: int

    @property
    def is_torn(self) -> bool:
        """A NONE whose size byte is not 0xFF: an interrupted write (D14)."""
        return self.entry_type is EntryType.none and self.len_entry != RESET_BYTE

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``qjournal append`` skips these records."""
        d: dict[str, Any] = {"ofs": self.ofs, "entry_type": entry_type_json(self.entry_type), "len_entry": self.len_entry}
        if self.entry_type is EntryType.none:
            d["is_torn"] = self.is_torn
        return d


class Walked(NamedTuple):
    """One cluster replay visits: its bytes, the parsed cluster (None when corrupt), its well-formed entries."""

    cluster_index: int
    buf: bytes
    cluster: Any
    entries: list[Any]
    error: CorruptJournalError | None


def walk_clusters(
    area: Area, progress: Callable[[int], None] | None = None, start: int = 0, stop: int | None = None,
) -> Iterator[Walked]:
    """Each cluster replay visits (D7) from cluster ``start`` (before ``stop``), parsed once.

    In a corrupt cluster, ``error`` is the corruption (with its area offset and,
    when the area does not start like a journal, its hint), ``entries`` the
    well-formed entries before it, and the walk ends there.
    """
    for index in range(start, area.num_clusters if stop is None else stop):
        base = index * LEN_CLUSTER
        buf = area.read_cluster(index)
        try:
            cluster = parse_cluster(buf)
        except CorruptJournalError as exc:
            at = exc.offset or 0
            error = CorruptJournalError(
                exc.code, exc.reason, base + at, area_offset=area.area_offset, source=area.name,
                hint=start_hint(index, buf, at),
            )
            yield Walked(index, buf, None, valid_prefix(buf, at), error)
            return
        if progress is not None:
            progress(base + LEN_CLUSTER)
        closed = cluster.is_closed  # before the caller may empty the entries (see format_run)
        yield Walked(index, buf, cluster, cluster.entries, None)
        if not closed:
            return


_new = tuple.__new__  # an entry without its class's Python-level __new__ (the hot loop, as replay's)


def cluster_items(entries: list[Any], base: int, markers: bool) -> list[Entry | Marker]:
    """The entries of a parsed cluster, with their area offsets; END/NONE too if ``markers``.

    :func:`qjournal.entries.decode` inlined, as replay's hot loop has it: no call per entry.
    """
    items: list[Entry | Marker] = []
    append = items.append
    ofs = base
    for e in entries:
        code = e.type_code  # the type byte as an int (entry_type is its enum view, slower)
        if code == TYPE_HASH:
            append(_new(HashEntry, (e.digest, e.physical_sector, e.first_logical_sector, ofs)))
        elif code in (TYPE_END, TYPE_NONE):
            if markers:
                append(Marker(EntryType(code), e.len_entry, ofs))
        else:
            append(_new(RawEntry, (code, e.body, ofs)))
        ofs += e.len_entry
    return items


def format_item(item: Entry | Marker) -> str:
    """One human line: offset, type, size, then the payload."""
    if isinstance(item, HashEntry):
        rest = (
            f"digest={item.digest.hex()} physical_sector={item.physical_sector} "
            f"first_logical_sector={item.first_logical_sector}"
        )
        name = "hash"
    elif isinstance(item, RawEntry):
        rest = f"body={item.body.hex()}" if item.body else "body=(empty)"
        name = type_name(item.entry_type)
    elif item.entry_type is EntryType.end:
        name, rest = "end", f"closes the cluster; replay goes on at {item.ofs + item.len_entry:#x}"
    else:
        name = "none"
        rest = "replay stops here"
        if item.is_torn:
            rest = f"torn write (size byte {item.len_entry:#04x} under type NONE); replay stops here"
    return f"{item.ofs:#010x}  {name:<4}  {item.len_entry:3}  {rest}"


def format_items(items: list[Entry | Marker], output: str) -> str:
    """``items`` as one text in the form ``output`` names (:data:`OUTPUTS`), with no newline after the last."""
    if output == "human":
        return "\n".join(map(format_item, items))
    return json_join(items, "\n" if output == "jsonl" else ",\n")  # the schema formatted directly: the encoder's bytes


class Run(NamedTuple):
    """A run of clusters formatted: its text, how many items it holds, the corruption that ended replay in it."""

    data: bytes
    """The text, UTF-8 encoded (by the worker that formatted it: the parent writes it as it comes)."""
    num_items: int
    error: CorruptJournalError | None
    is_last: bool
    """Replay ended in this run: no later run is printed."""
    tail: Seen | None = None
    """The open cluster where replay ended, as this run read it (:func:`qjournal.parallel.tail_moved`)."""

    @property
    def text(self) -> str:
        """The text, decoded."""
        return self.data.decode()


def format_run(area: Area, start: int, stop: int, output: str, *, markers: bool = False,
               progress: Callable[[int], None] | None = None) -> Run:
    """Clusters ``start`` to ``stop`` of replay formatted; ``markers``: END and NONE too (not in a corrupt cluster).

    JSON without markers is formatted straight from the parsed entries
    (:func:`qjournal.entries.json_join_parsed`, the same bytes), the hot path
    of ``dump --output jsonl``; everything else from the entries built.
    """
    items: list[Entry | Marker] = []
    texts: list[str] = []  # the JSON of the clusters before the items, when formatted straight
    num_texts = 0
    direct = output != "human" and not markers
    sep = "\n" if output == "jsonl" else ",\n"
    error = None
    is_last = stop >= area.num_clusters
    tail: Seen | None = None
    for walked in walk_clusters(area, progress, start, stop):
        base = walked.cluster_index * LEN_CLUSTER
        if direct and walked.error is None:
            text, n = json_join_parsed(walked.entries, base, sep)
            if n:
                texts.append(text)
                num_texts += n
        else:  # in a corrupt cluster only the valid entries before the corruption are shown
            items += cluster_items(walked.entries, base, markers and walked.error is None)
        error = walked.error
        if error is not None or not walked.cluster.is_closed:
            is_last = True
            if error is None:
                tail = (walked.cluster_index, walked.buf)
        if walked.entries and error is None:  # entries and cluster refer to each other: free them now (as replay does)
            last = walked.entries[-1]
            walked.entries.clear()
            last._parent = None
    if items:
        texts.append(format_items(items, output))
    return Run(sep.join(texts).encode() if direct else texts[0].encode() if texts else b"", num_texts + len(items), error,
               is_last, tail)


def runs(area: Area, output: str, *, markers: bool = False, progress: Callable[[int], None] | None = None,
         jobs: int | None = None) -> Iterator[Run]:
    """The replay of ``area`` formatted, run by run, up to the run where replay ends (that one included).

    ``jobs``: worker processes for an area of at least
    :data:`qjournal.parallel.PARALLEL_MIN_BYTES` that is a regular file opened
    by path (default: one per usable core; 1: none); the runs are the same.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
    bounds = [(lo, min(area.num_clusters, lo + RUN_CLUSTERS)) for lo in range(0, area.num_clusters, RUN_CLUSTERS)]

    def work(a: Area, start: int, stop: int, p: Callable[[int], None] | None) -> Run:
        return format_run(a, start, stop, output, markers=markers, progress=p)

    workers = plan(area, jobs)
    done = 0
    with contextlib.closing(run_ranges(area, work, bounds, workers, progress)) as formatted:
        for run in formatted:
            if run.is_last and workers is not None and tail_moved(area, run.tail):
                break  # a batch was committed while the runs were read: this run and the next ones again, here
            yield run
            if run.is_last:
                return
            done += 1
    for lo, hi in bounds[done:]:
        run = work(area, lo, hi, progress)
        yield run
        if run.is_last:
            return
