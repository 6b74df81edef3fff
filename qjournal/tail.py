"""Finding the tail without replaying the whole area (issue 6).

A writer fills clusters in order (D6) and a reset area is all 0xFF (D2), so a
journal with no dirty tail is: closed clusters, then at most one open cluster
(the tail), then empty clusters, which start with the two bytes FF FF. A binary
search over the clusters' first two bytes finds the last used cluster in about
log2(N) two-byte reads; parsing it, the clusters just before it and the empty
one after it gives the tail: 20 clusters touched for a 256 MiB area (65536
clusters) instead of all of them.

The search trusts that layout only as far as it checks it. It falls back to a
full validation (:meth:`JournalReader.state`, which replays everything and
raises the reader's :class:`CorruptJournalError` on a corrupt area) when
anything it reads disagrees with it:

- a probed cluster before the last used one does not start with a regular
  entry (replay would stop there);
- a cluster it parses is corrupt;
- one of the ``WINDOW - 1`` clusters before the last used one is not closed (a
  hole of 0xFF clusters, a cluster with no END, or the torn write of an
  interrupted batch, followed by used clusters);
- the tail cluster holds a torn write, or a byte other than 0xFF after its NONE.

Guarantee: on an area whose bytes after the point where replay stops are all
0xFF (no dirty tail: what the writer leaves, since it erases past the tail on
every open), the search returns replay's tail and does not fall back. On other
areas it returns replay's tail, found or fallen back to, unless the dirty tail
is made of used clusters that all escape its reads: the search then sees a
tail after them. This is the case of an atomic batch interrupted by a crash
when it had written into more than ``WINDOW`` clusters (its torn first cluster
is then before the window), or of stray clusters past a hole the probes
missed. Only a full replay tells those apart from a healthy journal, which is
why ``validate=True`` (the writer's default) never uses the search.
"""

from __future__ import annotations

from typing import NamedTuple

from qjournal.area import Area
from qjournal.errors import CorruptJournalError
from qjournal.format import LEN_CLUSTER, LEN_HEADER, MAX_LEN_REGULAR, MIN_LEN_ENTRY, RESET_BYTE, EntryType
from qjournal.reader import JournalReader, parse_cluster

WINDOW = 4
"""Clusters parsed back from the last used one: it, and ``WINDOW - 1`` before it that must be closed."""

_EMPTY = bytes((RESET_BYTE, RESET_BYTE))
_END = int(EntryType.end)
_NONE = int(EntryType.none)


class Tail(NamedTuple):
    """Where the next entry goes, and what it took to find out.

    ``ofs_tail`` is the area offset of the NONE where replay stops (the area
    length when every cluster is closed), as :attr:`JournalState.ofs_tail`.
    ``clusters_read`` counts the clusters any byte was read from (the whole
    area when the search fell back). ``fallback`` says why the search fell back
    to a full validation, or is None when it did not.
    """

    ofs_tail: int
    clusters_read: int
    fallback: str | None = None


class _Inconsistent(Exception):
    """What the search read does not fit a journal filled in order."""


def find_tail(area: Area) -> Tail:
    """The tail of the journal in ``area``, by binary search over the clusters' first bytes.

    Agrees with a full replay, or falls back to one (see the module doc); a
    corrupt area raises the reader's :class:`CorruptJournalError`, as
    :meth:`JournalReader.state` does. Reads only; writes nothing.
    """
    search = _Search(area)
    try:
        return Tail(search.run(), len(search.touched))
    except (_Inconsistent, CorruptJournalError) as exc:
        reason = str(exc) if isinstance(exc, _Inconsistent) else f"corruption met: {exc.rule} at {exc.offset}"
        reader = JournalReader.__new__(JournalReader)  # a reader over this very area: no second open
        reader.area = area
        state = reader.state()
        return Tail(state.ofs_tail, len(search.touched) + area.num_clusters, reason)


class _Search:
    """One tail search over an area; ``touched`` collects the clusters read."""

    def __init__(self, area: Area) -> None:
        self.area = area
        self.touched: set[int] = set()
        self.headers: dict[int, bytes] = {}

    def header(self, index: int) -> bytes:
        """The first two bytes of cluster ``index``."""
        self.touched.add(index)
        head = self.area.read(index * LEN_CLUSTER, LEN_HEADER)
        self.headers[index] = head
        return head

    def cluster(self, index: int):
        """Cluster ``index`` parsed; a corruption is rebased to the area offset."""
        self.touched.add(index)
        base = index * LEN_CLUSTER
        try:
            return parse_cluster(self.area.read_cluster(index))
        except CorruptJournalError as exc:
            raise CorruptJournalError(exc.rule, exc.reason, base + (exc.offset or 0)) from None

    def run(self) -> int:
        n = self.area.num_clusters
        # Clusters [0, lo) start with an entry, [hi, n) with FF FF, as far as probed.
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if self.header(mid) != _EMPTY:
                lo = mid + 1
            else:
                hi = mid
        used = lo  # clusters before the first empty one
        for index, head in self.headers.items():
            if index < used - 1 and not _starts_regular(head):
                raise _Inconsistent(f"cluster {index} is before the last used one but does not start with a regular entry")
        if used == 0:
            return self.open_tail(0, empty=True)
        last = self.cluster(used - 1)
        for index in range(used - 2, max(used - 1 - WINDOW, -1), -1):
            if not self.cluster(index).is_closed:
                raise _Inconsistent(f"cluster {index} is not closed, yet cluster {used - 1} is used")
        if not last.is_closed:
            return self.open_tail(used - 1, parsed=last)
        if used == n:
            return self.area.len_area  # every cluster closed: the journal is full
        return self.open_tail(used, empty=True)

    def open_tail(self, index: int, *, empty: bool = False, parsed=None) -> int:
        """The tail in cluster ``index``, which must be open and clean (empty if ``empty``)."""
        cluster = parsed if parsed is not None else self.cluster(index)
        if cluster.is_closed:
            raise _Inconsistent(f"cluster {index} starts with FF FF but is closed")
        if cluster.is_torn:
            raise _Inconsistent(f"cluster {index} ends in a torn write")
        if cluster.has_dirty_tail:
            raise _Inconsistent(f"cluster {index} has a byte other than 0xFF after its NONE")
        if empty and cluster.ofs_tail != 0:  # pragma: no cover - FF FF at offset 0 is a NONE there
            raise _Inconsistent(f"cluster {index} starts with FF FF but holds entries")
        return index * LEN_CLUSTER + cluster.ofs_tail


def _starts_regular(head: bytes) -> bool:
    """True when two header bytes can open a cluster that replay goes past.

    A cluster replay goes past is closed, so it holds at least one regular entry
    (an END at offset 0 would need size 4096): a size 2..254 under a type that
    is neither END nor NONE.
    """
    size, code = head[0], head[1]
    return MIN_LEN_ENTRY <= size <= MAX_LEN_REGULAR and code != _END and code != _NONE
