"""The fast tail search (qjournal.tail): it agrees with a full replay, or falls back to one.

Every layout is compared with :meth:`JournalReader.state` (or :meth:`check` for a
corrupt area) over the same bytes. Healthy journals of every shape must be found
without falling back, in about log2(N) reads; adversarial layouts (holes of
0xFF clusters, dirty clusters after the tail, torn writes, corruption) must give
the full replay's tail, found or fallen back to.
"""

from __future__ import annotations

import io
import math
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qjournal import CorruptJournalError, JournalReader
from qjournal.area import Area
from qjournal.tail import WINDOW, Tail, find_tail

C = 4096
END, HASH, NONE = 0x01, 0x02, 0xFF
EMPTY = b"\xff" * C


def hash_entry(i: int) -> bytes:
    digest = struct.pack(">Q", i) * 4
    return bytes([50, HASH]) + digest + struct.pack(">QQ", 8 * i, 16 * i)


def entries(count: int, start: int = 0) -> bytes:
    return b"".join(hash_entry(start + i) for i in range(count))


def closed(count: int = 81, start: int = 0, extra: bytes = b"") -> bytes:
    """A closed cluster: ``count`` HASH entries (and ``extra`` bytes of entries), then an END."""
    body = entries(count, start) + extra
    size = C - len(body)
    assert 2 <= size <= 255
    return body + bytes([size, END]) + b"\xff" * (size - 2)


def open_(count: int, start: int = 0, tail: bytes = b"") -> bytes:
    """An open cluster: ``count`` HASH entries, then NONE (``tail`` bytes written over the 0xFF)."""
    body = entries(count, start) + tail
    return body + b"\xff" * (C - len(body))


def journal(num_clusters: int, used_closed: int, open_entries: int | None) -> bytes:
    """``used_closed`` closed clusters, then an open one with ``open_entries`` entries (None: none), then 0xFF."""
    out = [closed(start=81 * i) for i in range(used_closed)]
    if open_entries is not None and used_closed < num_clusters:
        out.append(open_(open_entries, start=81 * used_closed))
    data = b"".join(out)
    return data + EMPTY * (num_clusters - len(out))


def full_tail(data: bytes, offset: int = 0) -> int:
    with JournalReader(data, offset) as reader:
        return reader.state().ofs_tail


def search(data: bytes, offset: int = 0) -> Tail:
    area = Area(data, offset)
    try:
        return find_tail(area)
    finally:
        area.close()


def bound(num_clusters: int) -> int:
    """Clusters a healthy search may read: the probes, and the window parsed back."""
    return math.ceil(math.log2(num_clusters + 1)) + WINDOW - 1


# -- healthy journals: found, not fallen back to -----------------------------------------


@pytest.mark.parametrize("num_clusters", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_every_tail_position_is_found_without_falling_back(num_clusters: int) -> None:
    for used in range(num_clusters + 1):
        for open_entries in (None, 0, 1, 40, 80):
            if used == num_clusters and open_entries is not None:
                continue
            data = journal(num_clusters, used, open_entries)
            tail = search(data)
            assert tail.ofs_tail == full_tail(data), (used, open_entries)
            assert tail.fallback is None, (used, open_entries, tail.fallback)
            assert 1 <= tail.clusters_read <= bound(num_clusters), (used, open_entries, tail)


def test_empty_journal() -> None:
    for n in (1, 2, 1000):
        assert search(EMPTY * n) == Tail(0, tail_reads(n), None)


def tail_reads(n: int) -> int:
    """Clusters an all-0xFF area of n clusters takes: the probes down to cluster 0."""
    return len({mid for mid in _probes(n, lambda i: False)})


def _probes(n: int, used) -> list[int]:
    lo, hi, seen = 0, n, []
    while lo < hi:
        mid = (lo + hi) // 2
        seen.append(mid)
        if used(mid):
            lo = mid + 1
        else:
            hi = mid
    return seen


def test_one_cluster_area() -> None:
    for data in (EMPTY, open_(1), open_(80), closed(),
                 open_(81) + b"",                         # NONE at 4050
                 closed(81, extra=b"")):
        assert search(data).ofs_tail == full_tail(data)
        assert search(data).fallback is None
    # NONE 3 bytes before the boundary: the tail is there (and the journal is full)
    three_left = entries(81) + bytes([43, 0x03]) + b"\xa5" * 41 + b"\xff" * 3
    assert len(three_left) == C
    assert search(three_left) == Tail(4093, 1, None) and full_tail(three_left) == 4093


def test_full_journal_every_cluster_closed() -> None:
    for n in (1, 2, 5, 64):
        data = journal(n, n, None)
        tail = search(data)
        assert tail == (n * C, tail.clusters_read, None)
        assert full_tail(data) == n * C
        assert tail.clusters_read <= bound(n)


def test_end_of_size_2_and_255_close_clusters() -> None:
    # 81 entries + a 44-byte entry leave 2 bytes: END of size 2; 76 + 41 leave 255 (D6)
    end_2 = closed(81, extra=bytes([44, 0x03]) + b"\xa5" * 42)
    end_255 = closed(76, extra=bytes([41, 0x03]) + b"\xa5" * 39)
    assert end_2[4094:4096] == bytes([2, END]) and end_255[3841:3843] == bytes([255, END])
    data = end_2 + end_255 + open_(3) + EMPTY
    assert search(data) == (2 * C + 150, search(data).clusters_read, None)


def test_area_inside_a_larger_file() -> None:
    data = journal(9, 5, 7)
    image = b"\x00" * 12345 + data + b"\x00" * 999
    area = Area(io.BytesIO(image), 12345, len(data))
    assert find_tail(area) == search(data)
    assert find_tail(area).ofs_tail == full_tail(data)


# -- a 256 MiB area, without 256 MiB in memory ----------------------------------------------


class SyntheticJournal(io.RawIOBase):
    """A read-only file of ``num_clusters`` clusters made on demand: ``used`` closed, one
    open with ``open_entries``, the rest 0xFF. Counts the bytes read."""

    def __init__(self, num_clusters: int, used: int, open_entries: int) -> None:
        self.num_clusters, self.used, self.open_entries = num_clusters, used, open_entries
        self.pos = 0
        self.bytes_read = 0
        self._closed = closed()
        self._open = open_(open_entries)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = {0: pos, 1: self.pos + pos, 2: self.num_clusters * C + pos}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def cluster(self, index: int) -> bytes:
        if index < self.used:
            return self._closed
        return self._open if index == self.used else EMPTY

    def readinto(self, b) -> int:
        end = min(self.pos + len(b), self.num_clusters * C)
        out = bytearray()
        pos = self.pos
        while pos < end:
            index, within = divmod(pos, C)
            chunk = self.cluster(index)[within : within + end - pos]
            out += chunk
            pos += len(chunk)
        b[: len(out)] = out
        self.pos = end
        self.bytes_read += len(out)
        return len(out)


@pytest.mark.parametrize("used", [0, 1, 30000, 58981, 65534, 65535])
def test_256_mib_area_takes_at_most_20_clusters(used: int) -> None:
    n = (256 << 20) // C
    f = SyntheticJournal(n, used, 17)
    area = Area(f)
    tail = find_tail(area)
    assert tail.ofs_tail == used * C + 17 * 50
    assert tail.fallback is None
    assert tail.clusters_read <= 20
    assert f.bytes_read <= tail.clusters_read * C


def test_256_mib_full_area() -> None:
    n = (256 << 20) // C
    f = SyntheticJournal(n, n, 0)
    tail = find_tail(Area(f))
    assert tail == (n * C, tail.clusters_read, None) and tail.clusters_read <= 20


# -- adversarial layouts: the full replay's tail, found or fallen back to -------------------


def torn_batch(clusters: int) -> bytes:
    """What an atomic batch interrupted by a crash leaves when it wrote into ``clusters``
    clusters: every byte but its commit byte (the type byte of its first entry, still
    0xFF), so replay stops at a torn NONE in the first of them (D5)."""
    first = entries(20) + bytes([50]) + b"\xff" + hash_entry(20)[2:] + entries(60, 21)  # torn at 1000
    first += bytes([C - len(first), END]) + b"\xff" * (C - len(first) - 2)
    middle = [closed(start=100 * i) for i in range(clusters - 2)]
    return b"".join([closed(), first, *middle, open_(7)])


def layouts_met() -> dict[str, bytes]:
    """Layouts whose anomaly lies where the search reads: it must fall back (or agree)."""
    c, o, e = closed, open_, EMPTY
    garbage = bytes((i * 37 + 11) % 256 for i in range(C))
    return {
        # holes of 0xFF clusters the probes or the window meet
        "hole_probed": c() + c() + c() + c() + e + c() + o(3) + e,  # the search stops at it
        "hole_at_start_in_window": e + c() + e + e,
        "hole_in_window": c() * 9 + e + c() + o(2) + e * 4,  # probes 8, 12, 10, 11: not 9
        "hole_just_before_open": c() + e + o(4) + e,
        "hole_just_before_closed": c() + c() + e + c() + e + e + e,
        # dirty clusters after the tail, in the window
        "dirty_closed_after_gap": c() + o(3) + e + e + c() + e + e + e,
        "dirty_open_after_gap": c() + o(3) + e + e + o(9) + e + e + e,
        "dirty_right_after_open": c() + o(3) + c() + e + e + e + e + e,
        "dirty_right_after_closed": c() + c() + e + o(3) + e + e + e + e,
        "dirty_garbage_after_gap": c() + o(3) + e + e + garbage + e + e + e,
        "dirty_header_only": c() + o(1) + e + e + e + (b"\x32\x02" + e[2:]) + e + e,
        "dirty_tail_in_tail_cluster": c() + o(3, tail=b"\xff\xff\x00") + e + e,
        "dirty_byte_mid_empty_cluster": c() + c() + e[:100] + b"\x00" + e[101:] + e,
        "dirty_after_full_tail": c() + o(81) + c() + e,
        # interrupted writes
        "torn_write_in_tail": c() + o(3, tail=bytes([50])) + e + e,
        "torn_write_at_cluster_start": c() + c() + o(0, tail=bytes([50])) + e,
        "torn_batch_2_clusters": torn_batch(2) + e + e,
        "torn_batch_3_clusters": torn_batch(3) + e * 5,
        "torn_batch_4_clusters": torn_batch(4) + e * 10,
        "open_cluster_in_window": c() + c() + c() + o(10) + c() + o(2) + e + e,
        # corruption where the search reads
        "garbage_used": garbage * 5,
        "corrupt_tail_cluster": c() + c() + bytes([1]) + o(2)[1:] + e,
        "corrupt_after_closed": c() + c() + b"\xff\x02" + e[2:] + e,
    }


def layouts_unseen() -> dict[str, bytes]:
    """Dirty tails made of used clusters the search never reads (the module doc's limit)."""
    c, o, e = closed, open_, EMPTY
    return {
        "hole_not_probed": c() + e + c() + c() + c() + c() + o(1) + e,
        "hole_at_start_not_probed": e + c() + c() + c() + o(5) + e + e + e,
        "open_cluster_before_window": c() + o(10) + c() + c() + c() + c() + o(2) + e,
        "torn_batch_5_clusters": torn_batch(5) + e * 3,
        "stray_clusters_after_hole": c() + e + c() + c() + c() + c() + e + e,
    }


def check_against_full(data: bytes) -> Tail | None:
    """The search agrees with the full check, falls back to it, or (only with a dirty
    tail it cannot see) differs; a corruption it meets is refused with the same error."""
    with JournalReader(data) as reader:
        report = reader.check()
    n = len(data) // C
    try:
        tail = search(data)
    except CorruptJournalError as exc:
        assert report.state is None, "the search refused an area the full check accepts"
        first = next(p for p in report.problems if p.is_corruption)
        assert (exc.rule, exc.offset) == (first.kind, first.ofs)
        return None
    if tail.fallback is not None:
        assert report.state is not None and tail.ofs_tail == report.state.ofs_tail
        assert tail.clusters_read > n
        return tail
    assert tail.clusters_read <= bound(n) + WINDOW
    kinds = {p.kind for p in report.problems}
    if report.state is None or tail.ofs_tail != report.state.ofs_tail:
        assert "dirty_tail" in kinds or report.state is None, (tail, report)
    if not kinds & {"dirty_tail", "torn_write"} and report.state is not None:
        assert tail.ofs_tail == report.state.ofs_tail
    return tail


@pytest.mark.parametrize("name", list(layouts_met()))
def test_anomaly_the_search_meets_gives_the_full_replays_tail(name: str) -> None:
    data = layouts_met()[name]
    tail = check_against_full(data)
    with JournalReader(data) as reader:
        report = reader.check()
    if report.state is not None:
        assert tail is not None and tail.ofs_tail == report.state.ofs_tail


def test_anomalies_the_search_meets_make_it_fall_back() -> None:
    """The checks catch these, not the luck of agreeing: each one falls back."""
    met = layouts_met()
    for name in ["hole_at_start_in_window", "hole_in_window", "hole_just_before_open",
                 "dirty_closed_after_gap", "dirty_open_after_gap", "dirty_right_after_open",
                 "dirty_garbage_after_gap", "dirty_tail_in_tail_cluster", "dirty_after_full_tail",
                 "torn_write_in_tail", "torn_write_at_cluster_start", "torn_batch_2_clusters",
                 "torn_batch_3_clusters", "torn_batch_4_clusters", "open_cluster_in_window"]:
        tail = search(met[name])
        assert tail.fallback is not None, name


@pytest.mark.parametrize("name", list(layouts_unseen()))
def test_the_limit_is_a_dirty_tail_the_search_does_not_read(name: str) -> None:
    """Beyond the search (module doc): it answers after the stray clusters, and the full
    check reports those clusters as a dirty tail, never as a healthy journal."""
    data = layouts_unseen()[name]
    with JournalReader(data) as reader:
        report = reader.check()
    assert report.state is not None and "dirty_tail" in {p.kind for p in report.problems}
    tail = search(data)
    assert tail.fallback is None and tail.ofs_tail > report.state.ofs_tail
    check_against_full(data)


def test_corrupt_cluster_the_search_parses_is_refused_like_the_full_check() -> None:
    bad = bytearray(open_(5))
    bad[50 * 2] = 1  # size byte 1 in the third entry
    data = closed() + closed() + bytes(bad) + EMPTY
    with pytest.raises(CorruptJournalError) as info:
        search(data)
    with pytest.raises(CorruptJournalError) as full:
        full_tail(data)
    assert (info.value.rule, info.value.offset) == (full.value.rule, full.value.offset) == ("size_too_small", 2 * C + 100)


def test_corruption_in_a_cluster_the_search_never_reads_is_not_seen() -> None:
    """validate=False trades the check of the clusters it does not read for speed (module doc)."""
    bad = bytearray(closed())
    bad[0] = 0
    data = bytes(bad) + journal(63, 40, 3)
    with pytest.raises(CorruptJournalError):
        full_tail(data)
    tail = search(data)
    assert tail.ofs_tail == 41 * C + 150 and tail.fallback is None


KINDS = ["closed", "open", "empty", "torn", "garbage", "dirty_empty"]


def cluster_of(kind: str, i: int) -> bytes:
    if kind == "closed":
        return closed(start=100 * i)
    if kind == "open":
        return open_(i % 80, start=100 * i)
    if kind == "torn":
        return open_(i % 80, start=100 * i, tail=bytes([50]))
    if kind == "garbage":
        return bytes((i * 131 + j * 7) % 256 for j in range(C))
    if kind == "dirty_empty":
        return EMPTY[: i % C] + b"\x00" + EMPTY[i % C + 1 :]
    return EMPTY


@settings(max_examples=int(os.environ.get("QJOURNAL_TAIL_EXAMPLES", "150")), deadline=None)
@given(
    prefix=st.integers(0, 40),
    rest=st.lists(st.sampled_from(KINDS), max_size=12),
    empties=st.integers(0, 40),
)
def test_random_layouts_keep_the_guarantee(prefix: int, rest: list[str], empties: int) -> None:
    """Closed clusters, then any mix of cluster kinds, then empty ones."""
    kinds = ["closed"] * prefix + rest + ["empty"] * empties
    if not kinds:
        return
    data = b"".join(cluster_of(k, i) for i, k in enumerate(kinds))
    check_against_full(data)


def test_search_reads_only() -> None:
    data = bytearray(layouts_met()["torn_write_in_tail"])
    before = bytes(data)
    search(bytes(data))
    find_tail(Area(data))
    assert data == before
