"""The writer: create, append, refusals, atomic batches, crash safety, the lock, reset, pack.

Crash safety is tested with :class:`crash_sim.RecordingFile`, a file in memory
that logs every write and every barrier (its flush): from the log,
:func:`crash_sim.crash_images` builds what a disk could hold after a crash at
any point (every write issued before it, the last one torn at a sector
boundary, or any subset of the sector pieces written since the last barrier; a
single byte is written whole or not at all), and the reader must replay each
image to a prefix of what was appended.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from crash_sim import Barrier, Event, RecordingFile, Write, crash_images
from helpers import examples, hash_bytes, rcheck, replay, rstate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qjournal
from qjournal import (
    CorruptJournalError,
    Entry,
    HashEntry,
    JournalArgumentError,
    JournalFullError,
    JournalIOError,
    JournalLockedError,
    RawEntry,
)

CLUSTER = 4096
VECTORS = Path(__file__).resolve().parent / "vectors"
D10 = (VECTORS / "d10_example.bin").read_bytes()
TORN = (VECTORS / "torn_write.bin").read_bytes()
DIGEST = bytes(range(32))


def reset_area(num_clusters: int) -> bytearray:
    return bytearray(b"\xff" * (num_clusters * CLUSTER))


# -- create ------------------------------------------------------------------
def test_create_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.qjournal"
    with qjournal.create(path, 3) as w:
        assert path.read_bytes() == b"\xff" * (3 * CLUSTER)
        assert (w.len_area, w.num_clusters, w.ofs_tail, w.len_free, w.is_full) == (3 * CLUSTER, 3, 0, 3 * CLUSTER, False)
        assert w.state() == rstate(path)
        e = w.append_hash(DIGEST, 0x10, 0x20)
    assert path.read_bytes()[:0x33] == hash_bytes(DIGEST, 0x10, 0x20) + b"\xff"
    assert replay(path) == [e]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_clusters": 0}, "num_clusters must be an integer >= 1"),
        ({"num_clusters": -2}, "num_clusters must be an integer >= 1"),
        ({"num_clusters": True}, "num_clusters must be an integer >= 1"),
        ({"num_clusters": 1.5}, "num_clusters must be an integer >= 1"),
        ({"length": 5000}, "length must be a non-zero multiple of 4096"),
        ({"length": 0}, "length must be a non-zero multiple of 4096"),
        ({"num_clusters": 2, "length": 4096}, "disagree"),
        ({}, "num_clusters (or length) is needed"),
        ({"num_clusters": 1, "offset": 512}, "a new journal file starts at 0"),
        ({"num_clusters": 1, "offset": -1}, "offset must be a non-negative integer"),
    ],
)
def test_create_refuses_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = tmp_path / "j.qjournal"
    with pytest.raises(JournalArgumentError) as info:
        qjournal.create(path, **kwargs)
    assert message in str(info.value)
    assert not path.exists()


def test_create_in_an_area_of_an_existing_file(tmp_path: Path) -> None:
    """An area at an offset: refused while it holds data, reset with force, the rest untouched."""
    head, tail = b"\x00head" * 100, b"tail\x00" * 77
    path = tmp_path / "image"
    path.write_bytes(head + D10 + D10 + tail)
    with pytest.raises(JournalArgumentError) as info:
        qjournal.create(path, 2, offset=len(head), unaligned_offset=True)
    assert info.value.offset == 0 and info.value.file_offset == len(head)
    assert "not reset" in str(info.value) and "force=True" in str(info.value)
    assert path.read_bytes() == head + D10 + D10 + tail
    with qjournal.create(path, offset=len(head), length=2 * CLUSTER, force=True, unaligned_offset=True) as w:
        assert w.state().num_entries == 0
        w.append_hash(DIGEST, 0x10, 0x20)
    assert path.read_bytes() == head + D10 + b"\xff" * CLUSTER + tail
    # an area that is already reset is taken as it is: nothing is written
    with qjournal.create(path, offset=len(head) + CLUSTER, length=CLUSTER, unaligned_offset=True) as w:
        assert w.ofs_tail == 0


def test_create_grows_a_file_or_bytearray_that_ends_at_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(b"header")
    with qjournal.create(path, 2, offset=6, unaligned_offset=True) as w:
        w.append_raw(0x03, b"abc")
    assert path.read_bytes() == b"header" + b"\x05\x03abc" + b"\xff" * (2 * CLUSTER - 5)
    buf = bytearray(b"xy")
    with qjournal.create(buf, 1, offset=2, unaligned_offset=True) as w:
        w.append_raw(0x00)
    assert buf == b"xy\x02\x00" + b"\xff" * (CLUSTER - 2)


def test_create_refuses_a_file_too_short(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(b"\xff" * 5000)
    with pytest.raises(JournalIOError, match="shorter than offset"):
        qjournal.create(path, 2)
    with pytest.raises(JournalIOError, match="is a directory"):
        qjournal.create(tmp_path, 1)
    assert path.read_bytes() == b"\xff" * 5000


def test_create_an_in_memory_journal() -> None:
    buf = bytearray()
    with qjournal.create(buf, 2) as w:
        assert buf == reset_area(2)
        w.append_hash(DIGEST, 0x10, 0x20)
    assert buf[:CLUSTER] == D10
    with pytest.raises(JournalArgumentError, match="not reset"):
        qjournal.create(buf)
    with pytest.raises(JournalArgumentError, match="must be a bytearray"):
        qjournal.create(bytes(CLUSTER), force=True)
    zeros = bytearray(CLUSTER)
    with pytest.raises(JournalArgumentError, match="holds no journal") as info:
        qjournal.create(zeros, force=True)  # no size: the area would be the whole buffer, which is no journal
    assert "give the area's length (length=)" in str(info.value) and zeros == bytes(CLUSTER)
    with qjournal.create(zeros, length=CLUSTER, force=True):
        pass
    assert zeros == reset_area(1)


# -- append and its refusals ----------------------------------------------------
def test_append_writes_the_documented_bytes() -> None:
    buf = reset_area(1)
    with qjournal.create(buf) as w:
        a = w.append_hash(b"\xab", 2**64 - 1, 0)
        b = w.append_raw(0x00)
        c = w.append_raw(0xFE, b"\x01" * 252)
        d = w.append(HashEntry(bytearray(b"\xcd" * 236), 7, 2**63, ofs=999))  # type: ignore[arg-type]  # any bytes-like, on purpose
        e = w.append(RawEntry(0x03, memoryview(b"xyz")))  # type: ignore[arg-type]  # any bytes-like, on purpose
    want = hash_bytes(b"\xab", 2**64 - 1, 0) + b"\x02\x00" + b"\xfe\xfe" + b"\x01" * 252
    want += hash_bytes(b"\xcd" * 236, 7, 2**63) + b"\x05\x03xyz"
    assert buf[: len(want)] == want and buf[len(want) :] == b"\xff" * (CLUSTER - len(want))
    assert [x.ofs for x in (a, b, c, d, e)] == [0, 19, 21, 275, 529]
    assert d == HashEntry(b"\xcd" * 236, 7, 2**63, 275) and type(d.digest) is bytes
    assert e == RawEntry(3, b"xyz", 529)
    assert replay(buf) == [a, b, c, d, e]


BAD_APPENDS = [
    ("append_hash", (b"", 1, 2), "digest is empty"),
    ("append_hash", (b"\x00" * 237, 1, 2), "digest of 237 bytes is too long: at most 236"),
    ("append_hash", ("text", 1, 2), "digest must be bytes, not str"),
    ("append_hash", (DIGEST, -1, 2), "physical_sector -1 is out of range"),
    ("append_hash", (DIGEST, 2**64, 2), "physical_sector 18446744073709551616 is out of range"),
    ("append_hash", (DIGEST, 1, 2**64), "first_logical_sector 18446744073709551616 is out of range"),
    ("append_hash", (DIGEST, 1.0, 2), "physical_sector must be an integer"),
    ("append_hash", (DIGEST, 1, True), "first_logical_sector must be an integer"),
    ("append_hash", (DIGEST, 1, "2"), "first_logical_sector must be an integer"),
    ("append_raw", (0x01, b""), "0x01 (END) cannot be appended"),
    ("append_raw", (0xFF, b""), "0xff (NONE) cannot be appended"),
    ("append_raw", (0x02, b"\x00" * 20), "appended with append_hash"),
    ("append_raw", (256, b""), "entry_type 256 is out of range"),
    ("append_raw", (-1, b""), "entry_type -1 is out of range"),
    ("append_raw", ("3", b""), "entry_type must be an integer"),
    ("append_raw", (0x03, b"\x00" * 253), "body of 253 bytes is too long: at most 252"),
    ("append_raw", (0x03, "text"), "body must be bytes"),
    ("append", (("not", "an", "entry"),), "must be a HashEntry or a RawEntry"),
    ("append", (RawEntry(0x01, b""),), "END"),
    ("append_many", ([HashEntry(DIGEST, 1, 2), RawEntry(0xFF, b"")],), "entry 2 of the batch of 2: entry_type 0xff (NONE)"),
    ("append_many", ([HashEntry(b"", 1, 2)],), "entry 1 of the batch of 1: digest is empty"),
]


@pytest.mark.parametrize("method, args, message", BAD_APPENDS, ids=[m for _, _, m in BAD_APPENDS])
def test_bad_arguments_are_refused_before_anything_is_written(method: str, args: tuple[Any, ...], message: str) -> None:
    buf = bytearray(D10) + reset_area(1)
    with qjournal.open_for_append(buf) as w:
        state = w.state()
        with pytest.raises(JournalArgumentError) as info:
            getattr(w, method)(*args)
        assert message in str(info.value)
        assert w.state() == state
    assert buf == D10 + reset_area(1)


def test_a_full_journal_refuses_and_changes_nothing() -> None:
    buf = reset_area(1)
    with qjournal.create(buf) as w:
        while w.ofs_tail + 254 + 2 <= CLUSTER:
            w.append_raw(0x03, b"\x00" * 252)
        tail = w.ofs_tail  # 16 * 254 = 4064: 32 bytes left
        for size in (31, 254):
            before = bytes(buf)
            with pytest.raises(JournalFullError) as info:
                w.append_raw(0x03, b"\x00" * (size - 2))
            assert buf == before and w.ofs_tail == tail and not w.is_full
            assert info.value.offset == tail and f"an entry of {size} bytes" in str(info.value)
            with pytest.raises(JournalFullError):
                w.append_many([RawEntry(0x03, b""), RawEntry(0x03, b"\x00" * (size - 2))])
            assert buf == before
        w.append_raw(0x03, b"\x00" * 28)  # 30 bytes: 4094, the last that fit
        assert w.ofs_tail == CLUSTER - 2 and w.is_full and w.state().is_full
        with pytest.raises(JournalFullError):
            w.append_raw(0x00)


@pytest.mark.parametrize("ofs_tail, full", [(4092, False), (4093, True), (4094, True)])
def test_is_full_means_not_even_a_two_byte_entry_fits(ofs_tail: int, full: bool) -> None:
    buf = reset_area(1)
    with qjournal.create(buf) as w:
        while w.ofs_tail < ofs_tail:
            w.append_raw(0x03, b"\x00" * (min(254, ofs_tail - w.ofs_tail) - 2))
        assert w.ofs_tail == ofs_tail and w.is_full is full
        assert rstate(bytes(buf)).is_full is full


def test_a_journal_whose_clusters_are_all_closed_is_full() -> None:
    data = (VECTORS / "full.bin").read_bytes()
    buf = bytearray(data)
    with qjournal.open_for_append(buf) as w:
        assert (w.ofs_tail, w.len_free, w.is_full) == (len(data), 0, True)
        assert w.state() == rstate(data)
        with pytest.raises(JournalFullError):
            w.append_raw(0x03)
        with pytest.raises(JournalFullError):
            w.append_hash(DIGEST, 1, 2)
    assert buf == data


# -- batches ---------------------------------------------------------------------
def test_append_many_equals_single_appends_and_returns_the_offsets() -> None:
    rng = random.Random(5)
    items: list[Entry] = [HashEntry(rng.randbytes(rng.randrange(1, 237)), i, 2 * i) for i in range(60)]
    items += [RawEntry(rng.choice([0, 3, 0x80]), rng.randbytes(rng.randrange(0, 253))) for _ in range(20)]
    rng.shuffle(items)
    one, many = reset_area(4), reset_area(4)
    with qjournal.create(one) as w:
        singles = [w.append(e) for e in items]
    with qjournal.create(many) as w:
        assert w.append_many([]) == []
        batch = w.append_many(items[:30]) + w.append_many(iter(items[30:]))
        assert w.state() == rstate(bytes(many))
    assert batch == singles and one == many


def test_a_batch_that_does_not_fit_whole_is_refused_whole() -> None:
    buf = reset_area(2)
    with qjournal.create(buf) as w:
        w.append_many([RawEntry(0x03, b"\x00" * 252)] * 16)
        before, tail = bytes(buf), w.ofs_tail
        batch = [RawEntry(0x03, b"\x00" * 252)] * 17  # fills cluster 1, one too many
        with pytest.raises(JournalFullError) as info:
            w.append_many(batch)
        assert "entry 17 of the batch of 17" in str(info.value) and info.value.entry_index == 16
        assert buf == before and w.ofs_tail == tail
        placed = w.append_many(batch[:16])
        assert placed[0].ofs == CLUSTER and buf[tail : tail + 2] == bytes([CLUSTER - tail, 0x01])


# -- crash safety ----------------------------------------------------------------
BARRIER = Barrier("flush")  # a file object has no fsync: RecordingFile's flush is the barrier


def crashes(base: bytes, events: list[Event], seed: int) -> Iterator[bytes]:
    """Every crash image of ``events`` over ``base`` (crash_sim's three models), a flush being the barrier."""
    return (c.image for c in crash_images(base, events, barriers=frozenset({"flush"}), seed=seed))


def check_image(img: bytes, before: Sequence[Entry], after: Sequence[Entry]) -> None:
    """A crash image replays to ``before`` or ``after``; reopening erases the rest and appends fine."""
    with qjournal.read(img) as r:
        assert list(r.replay()) in (before, after)
        assert not r.check().is_corrupt
    buf = bytearray(img)
    with qjournal.open_for_append(buf) as w:
        got = replay(bytes(buf))
        assert got in (before, after)
        assert {p.code for p in rcheck(bytes(buf)).problems} <= {"unassigned_type"}
        e = w.append_raw(0x42, b"after the crash")
    assert replay(bytes(buf)) == got + [e]


@pytest.mark.parametrize("durable", [True, False])
def test_a_single_append_writes_its_type_byte_last(durable: bool) -> None:
    f = RecordingFile(D10 + reset_area(1))
    with qjournal.open_for_append(f.file, durable=durable) as w:
        f.log.clear()
        w.append_hash(DIGEST, 0x10, 0x20)
        ops = list(f.log)
    entry = hash_bytes(DIGEST, 0x10, 0x20)
    assert ops == [
        Write(0x32, b"\x32"), BARRIER,  # the anchor (the size byte at the tail), alone, made durable first
        Write(0x34, entry[2:]), BARRIER,  # the rest of the entry, the commit byte left 0xFF
        Write(0x33, b"\x02"), BARRIER,  # the commit byte, alone, then a barrier
    ]


def test_an_append_that_closes_a_cluster_commits_with_the_ends_type_byte() -> None:
    data = bytearray(reset_area(2))
    with qjournal.create(data) as w:
        while w.ofs_tail + 254 + 2 <= CLUSTER:
            w.append_raw(0x03, b"\x00" * 252)
        tail = w.ofs_tail
    f = RecordingFile(bytes(data))
    with qjournal.open_for_append(f.file) as w:
        f.log.clear()
        e = w.append_raw(0x03, b"\x00" * 252)
        ops = list(f.log)
    assert e.ofs == CLUSTER
    entry = bytes([254, 0x03]) + b"\x00" * 252
    assert ops == [
        Write(tail, bytes([CLUSTER - tail])), BARRIER,  # the anchor: the END's size byte
        Write(CLUSTER, entry), BARRIER,  # the entry in the next cluster (the END is only its header)
        Write(tail + 1, b"\x01"), BARRIER,  # the commit byte: the END's type byte
    ]


def test_a_batch_that_opens_with_an_end_of_255_anchors_on_the_next_cluster() -> None:
    """An END of size 255 has the size byte 0xFF: the first byte the batch changes is the next entry's size byte."""
    data = bytearray(reset_area(2))
    with qjournal.create(data) as w:
        w.append_many([RawEntry(0x03, b"\x00" * 252)] * 15 + [RawEntry(0x03, b"\x00" * 29)])
        assert w.ofs_tail == CLUSTER - 255
    f = RecordingFile(bytes(data))
    with qjournal.open_for_append(f.file) as w:
        f.log.clear()
        e = w.append_raw(0x04, b"\x11" * 252)  # 254 bytes: does not fit in 255 with an END after it
        ops = list(f.log)
    assert e.ofs == CLUSTER
    entry = bytes([254, 0x04]) + b"\x11" * 252
    assert ops == [
        Write(CLUSTER, bytes([254])), BARRIER,  # the anchor: the entry's size byte, at the next cluster
        Write(CLUSTER + 1, entry[1:]), BARRIER,  # the END's header is 0xFF 0xFF before the commit: nothing to write
        Write(CLUSTER - 255 + 1, b"\x01"), BARRIER,
    ]
    assert replay(bytes(f.data))[-1] == e and f.data[CLUSTER - 255 : CLUSTER - 253] == b"\xff\x01"


@settings(max_examples=examples(30), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    prefill=st.integers(0, 140),
    sizes=st.lists(st.integers(19, 254), min_size=1, max_size=30),
    seed=st.integers(0, 2**32),
)
def test_a_crash_during_a_batch_replays_all_or_none_of_it(prefill: int, sizes: list[int], seed: int) -> None:
    rng = random.Random(seed)
    base = bytearray()
    with qjournal.create(base, 3) as w:
        before = [w.append_hash(rng.randbytes(32), i, i) for i in range(prefill)]
    batch = [HashEntry(rng.randbytes(s - 18), rng.getrandbits(64), i) for i, s in enumerate(sizes)]
    f = RecordingFile(bytes(base))
    with qjournal.open_for_append(f.file) as w:
        f.log.clear()
        try:
            after = before + w.append_many(batch)
        except JournalFullError:
            assert f.log == [] and f.data == base
            return
    for img in crashes(bytes(base), f.log, rng.randrange(2**32)):
        check_image(img, before, after)


def test_a_crash_during_single_appends_replays_a_prefix() -> None:
    rng = random.Random(11)
    f = RecordingFile(bytes(reset_area(4)))
    appended: list[Entry] = []
    with qjournal.open_for_append(f.file) as w:
        f.log.clear()
        for i in range(100):
            if i % 7 == 3:
                appended.append(w.append_raw(0x03, rng.randbytes(rng.randrange(0, 253))))
            else:
                appended.append(w.append_hash(rng.randbytes(rng.randrange(1, 237)), i, i))
    prefixes = [appended[:n] for n in range(len(appended) + 1)]
    for img in crashes(bytes(reset_area(4)), f.log, 11):
        with qjournal.read(img) as r:
            assert list(r.replay()) in prefixes


def test_the_wipe_on_open_is_crash_safe_and_comes_before_any_new_write() -> None:
    """A torn write and the dirty tail after it are erased (0xFF only, the anchor last) before anything new is written."""
    f = RecordingFile(TORN)
    with qjournal.open_for_append(f.file) as w:
        opened = list(f.log)
        e = w.append_hash(b"\x99" * 32, 5, 6)
    assert all(op == BARRIER or (isinstance(op, Write) and set(op.data) == {0xFF}) for op in opened), "the wipe writes only 0xFF"
    assert opened[-2:] == [Write(0x32, b"\xff"), BARRIER], "the anchor (the torn size byte) is erased last"
    assert f.data[:0x32] == D10[:0x32] and f.data[0x32:0x64] == hash_bytes(b"\x99" * 32, 5, 6)
    assert f.data[0x64:] == b"\xff" * (len(TORN) - 0x64)
    want = replay(D10)
    for img in crashes(TORN, opened, 2):
        assert replay(img) == want
        with qjournal.open_for_append(bytearray(img)) as again:  # what a crash in the wipe leaves is still leftovers
            assert again.ofs_tail == 0x32
    assert replay(bytes(f.data)) == want + [e]


@pytest.mark.parametrize(
    "where, garbage",
    [
        (3000, b"\x05\x03garbage!"),  # a stray entry in the tail's cluster, the tail byte still 0xFF
        (CLUSTER, b"\x07\x02" + b"\x00" * (CLUSTER - 2)),  # a second cluster of other data
    ],
    ids=["stray entry", "cluster of data"],
)
def test_foreign_bytes_past_the_tail_are_refused_and_left_alone(where: int, garbage: bytes) -> None:
    dirty = bytearray(D10 + reset_area(1))
    dirty[where : where + len(garbage)] = garbage
    f = RecordingFile(bytes(dirty))
    with pytest.raises(qjournal.ForeignDataError) as info:
        qjournal.open_for_append(f.file)
    assert f.log == [] and f.data == dirty
    err = info.value
    assert (err.offset, err.ofs_tail) == (where, 0x32) and err.num_bytes == len(garbage) - garbage.count(0xFF)
    assert "nothing was written" in str(err) and "erase_foreign_data=True" in str(err)
    assert "the byte at the tail (0x32) is 0xff" in str(err).lower()
    with qjournal.open_for_append(f.file, erase_foreign_data=True) as w:  # the opt-in, for the user who has looked
        e = w.append_hash(b"\x99" * 32, 5, 6)
    assert replay(bytes(f.data)) == replay(D10) + [e]
    assert f.data[0x64:] == b"\xff" * (len(dirty) - 0x64)


class FailingFile(RecordingFile):
    """A RecordingFile whose write number ``fail_at`` (counted from arming) fails, then works again."""

    fail_at = -1

    def write(self, b: Any) -> int:
        self.fail_at -= 1
        if self.fail_at == 0:
            super().write(bytes(b)[: len(b) // 2])  # half of it lands
            raise OSError(5, "Input/output error")
        return super().write(b)


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_failed_write_is_erased_before_the_next_append(fail_at: int) -> None:
    """An I/O error mid-batch: the batch is not committed, and its leftovers never become entries."""
    f = FailingFile(D10 + reset_area(1))
    with qjournal.open_for_append(f.file) as w:
        f.fail_at = fail_at
        batch = [RawEntry(0x03, b"\x01" * 100), RawEntry(0x03, b"\x02" * 200)] * 15  # two runs, three writes
        with pytest.raises(JournalIOError, match="Input/output error"):
            w.append_many(batch)
        assert w.ofs_tail == 0x32 and w.state().num_entries == 1
        assert replay(bytes(f.data)) == replay(D10)
        e = w.append_raw(0x04, b"short")
    assert replay(bytes(f.data)) == replay(D10) + [e]
    assert e.ofs is not None
    assert bytes(f.data[e.ofs + e.len_entry :]) == b"\xff" * (len(f.data) - e.ofs - e.len_entry)


def test_a_read_only_open_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "torn.qjournal"
    path.write_bytes(TORN)
    mtime = path.stat().st_mtime_ns
    with qjournal.read(path) as r:
        list(r.replay())
        assert {p.code for p in r.check().problems} == {"torn_write", "dirty_tail"}
    assert path.read_bytes() == TORN and path.stat().st_mtime_ns == mtime
    with qjournal.open_for_append(path) as w:
        assert w.state().anomalies == ()
    assert path.read_bytes() == D10


def test_open_without_validation_finds_the_same_tail_and_state() -> None:
    a, b = bytearray(TORN), bytearray(TORN)
    with pytest.warns(DeprecationWarning, match="validate=False is ignored"):
        wb = qjournal.open_for_append(b, validate=False)
    with qjournal.open_for_append(a) as wa, wb:
        assert wa.ofs_tail == wb.ofs_tail == 0x32
        assert a == b == D10
        for w in (wa, wb):
            w.append_raw(0x03, b"one")
        assert wa.state() == wb.state() == rstate(bytes(a))
        wb.append_raw(0x03, b"two")
        assert wb.state() == rstate(bytes(b))


def test_a_corrupt_journal_is_refused_with_the_readers_error(tmp_path: Path) -> None:
    for name in ("corrupt_size_one", "corrupt_end_misaligned", "corrupt_never_reset"):
        data = (VECTORS / f"{name}.bin").read_bytes()
        want = json.loads((VECTORS / f"{name}.json").read_text())["error"]
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        for validate in (True, False):
            with pytest.raises(CorruptJournalError) as info, contextlib.ExitStack() as stack:
                if not validate:  # accepted, ignored, and said so
                    stack.enter_context(pytest.warns(DeprecationWarning, match="validate=False is ignored"))
                qjournal.open_for_append(path, validate=validate)
            assert (info.value.code, info.value.offset) == (want["rule"], want["offset"])
            assert str(path) in str(info.value)
        assert path.read_bytes() == data
    # the lock was released on the way out: a reset now works, given the length (a corrupt area is no journal:
    # without a length the reset would erase the whole file on the word of its bytes alone)
    path = tmp_path / "corrupt_size_one.bin"
    with pytest.raises(JournalArgumentError, match="holds no journal"):
        qjournal.reset(path)
    assert path.read_bytes() == (VECTORS / "corrupt_size_one.bin").read_bytes()
    qjournal.reset(path, length=CLUSTER)
    assert path.read_bytes() == reset_area(1)


# -- the lock ------------------------------------------------------------------------
def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "j.qjournal"
    with qjournal.create(path, 2) as w:
        w.append_hash(DIGEST, 1, 2)
        for attempt in (
            lambda: qjournal.open_for_append(path),
            lambda: qjournal.create(path, force=True),
            lambda: qjournal.reset(path),
            lambda: qjournal.pack(D10, path, force=True),
        ):
            with pytest.raises(JournalLockedError) as info:
                attempt()
            assert str(path) in str(info.value)
        assert len(replay(path)) == 1  # readers need no lock
        run = subprocess.run(
            [sys.executable, "-c", "import sys, qjournal\ntry:\n qjournal.open_for_append(sys.argv[1])\n"
             "except qjournal.JournalLockedError as e:\n print(e); sys.exit(3)", str(path)],
            check=False, capture_output=True, text=True, timeout=60,
        )
        assert run.returncode == 3 and str(path) in run.stdout, run.stderr
    with qjournal.open_for_append(path) as w:  # released on close
        assert w.state().num_entries == 1


def test_a_callers_file_stays_open_and_is_unlocked_on_close(tmp_path: Path) -> None:
    path = tmp_path / "j.qjournal"
    path.write_bytes(D10)
    with open(path, "r+b") as f:
        with qjournal.open_for_append(f) as w:
            w.append_raw(0x03)
            with pytest.raises(JournalLockedError):
                qjournal.open_for_append(path)
        assert not f.closed
        with qjournal.open_for_append(path):
            pass


def test_a_closed_writer_refuses_to_write() -> None:
    for buf in (bytearray(D10), RecordingFile(D10).file):
        w = qjournal.open_for_append(buf)
        w.close()
        w.close()
        for call in (lambda: w.append_hash(DIGEST, 1, 2), lambda: w.append_raw(3), lambda: w.append_many([RawEntry(3, b"")]),
                     w.state, w.reset, w.flush, w.sync):
            with pytest.raises(JournalArgumentError, match="closed"):
                call()
    assert isinstance(buf, RecordingFile) and bytes(buf.data) == D10
    buf = bytearray(D10)
    with qjournal.open_for_append(buf):
        pass
    buf.extend(b"\x00")  # the writer let go of the bytearray
    grow = bytearray()
    with qjournal.create(grow, 1):
        with pytest.raises(JournalArgumentError, match="cannot grow the bytearray"):
            qjournal.create(grow, 1, offset=CLUSTER)


def test_flush_and_sync_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "j.qjournal"
    with qjournal.create(path, 1, durable=False) as w:
        e = w.append_hash(DIGEST, 0x10, 0x20)
        w.flush()
        assert replay(path) == [e]
        w.sync()
    assert path.read_bytes() == D10


# -- writes stay in the area ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["file", "memory"])
def test_every_operation_stays_inside_an_embedded_area(tmp_path: Path, kind: str) -> None:
    head, tail = bytes(range(256)) * 3 + b"\x00", b"\x00" + bytes(range(255, -1, -1)) * 2
    path = tmp_path / "image"
    path.write_bytes(head + b"\x5a" * (3 * CLUSTER) + tail)
    buf = bytearray(path.read_bytes())
    target = path if kind == "file" else buf
    where: dict[str, Any] = {"offset": len(head), "length": 3 * CLUSTER}

    def guards_intact() -> None:
        data = path.read_bytes() if kind == "file" else bytes(buf)
        assert data[: len(head)] == head and data[len(head) + 3 * CLUSTER :] == tail

    def area() -> bytes:
        data = path.read_bytes() if kind == "file" else bytes(buf)
        return data[len(head) : len(head) + 3 * CLUSTER]

    with qjournal.create(target, force=True, durable=False, unaligned_offset=True, **where) as w:
        guards_intact()
        for i in range(3 * 16):
            w.append_hash(bytes([i]) * 236, i, i)  # 16 per cluster: fills every cluster
            guards_intact()
        with pytest.raises(JournalFullError):
            w.append_many([RawEntry(3, b"\x00" * 252)] * 5)
        while not w.is_full:
            try:
                w.append_raw(0x03, b"\x00" * 10)
            except JournalFullError:
                w.append_raw(0x03)
        guards_intact()
        with pytest.raises(JournalArgumentError, match="would leave the area"):
            w._write(3 * CLUSTER - 1, b"\x00\x00")  # the bound itself
        w.reset()
        guards_intact()
        w.append_many([HashEntry(bytes([i]) * 32, i, i) for i in range(100)])
        w.area.write(w.ofs_tail, b"\x20\xff\x00")  # a torn write, past the tail
        w.area.write(3 * CLUSTER - 1, b"\x00")  # and a stray byte at the very end
    guards_intact()
    before = area()
    with pytest.raises(qjournal.ForeignDataError) as info:  # the stray byte is no append's: nothing is written
        qjournal.open_for_append(target, durable=False, unaligned_offset=True, **where)
    assert info.value.ofs_last == 3 * CLUSTER - 1 and info.value.num_bytes == 3 and info.value.num_clusters == 2
    assert area() == before
    guards_intact()
    with qjournal.open_for_append(target, durable=False, erase_foreign_data=True, unaligned_offset=True, **where) as w:
        assert w.state().anomalies == ()
        guards_intact()
    assert area()[-1] == 0xFF
    report = qjournal.pack((VECTORS / "multi_cluster.bin").read_bytes(), target, force=True, durable=False,
                           target_offset=where["offset"], target_length=where["length"], unaligned_offset=True)
    assert report.num_live == 84 and len(replay(target, **where)) == 84
    guards_intact()
    qjournal.reset(target, unaligned_offset=True, **where)
    guards_intact()
    assert area() == reset_area(3)


# -- reset and pack ----------------------------------------------------------------------
def test_reset_erases_the_first_type_byte_first() -> None:
    f = RecordingFile(bytes((VECTORS / "multi_cluster.bin").read_bytes()))
    with qjournal.open_for_append(f.file) as w:
        f.log.clear()
        w.reset()
        assert (w.ofs_tail, w.state().num_entries) == (0, 0)
        ops = list(f.log)
        e = w.append_raw(0x03, b"again")
    assert ops[:2] == [Write(1, b"\xff"), BARRIER]
    multi = (VECTORS / "multi_cluster.bin").read_bytes()
    for img in crashes(multi, ops, 1):
        assert replay(img) in ([], replay(multi))
    assert replay(bytes(f.data)) == [e]


def test_reset_a_corrupt_area() -> None:
    data = bytearray((VECTORS / "corrupt_crosses_boundary.bin").read_bytes())
    with pytest.raises(JournalArgumentError, match="holds no journal"):
        qjournal.reset(data)
    assert data == (VECTORS / "corrupt_crosses_boundary.bin").read_bytes()
    qjournal.reset(data, length=len(data))
    assert data == reset_area(len(data) // CLUSTER)
    with pytest.raises(CorruptJournalError):
        qjournal.reset(bytearray(5000))


def test_pack_with_repeated_digests_and_raw_entries(tmp_path: Path) -> None:
    src = tmp_path / "src.qjournal"
    with qjournal.create(src, 2) as w:
        a1 = w.append_hash(b"A" * 32, 1, 1)
        b1 = w.append_hash(b"B" * 20, 2, 2)
        w.append_raw(0x03, b"raw")
        a2 = w.append_hash(b"A" * 32, 3, 3)
        c1 = w.append_hash(b"C" * 236, 4, 4)
        b2 = w.append_hash(b"B" * 20, 5, 5)
        w.append_hash(b"A", 6, 6)  # another digest: a prefix is not the same digest
    dst = tmp_path / "dst.qjournal"
    report = qjournal.pack(src, dst)
    live = [(e.digest, e.physical_sector, e.first_logical_sector) if isinstance(e, HashEntry) else e for e in replay(dst)]
    assert live == [(b"A" * 32, 3, 3), (b"C" * 236, 4, 4), (b"B" * 20, 5, 5), (b"A", 6, 6)]
    assert (report.num_entries_read, report.num_hash_read, report.num_live, report.num_raw_dropped) == (7, 6, 4, 1)
    assert report.state == rstate(dst) and report.state.num_clusters == 2
    with pytest.warns(DeprecationWarning):
        assert qjournal.live_entries([a1, b1, a2, c1, b2]) == [a2, c1, b2]
    assert qjournal.num_clusters_needed([RawEntry(3, b"\x00" * 252)] * 17) == 2


def test_pack_refuses_what_does_not_fit_before_writing(tmp_path: Path) -> None:
    src = bytearray()
    with qjournal.create(src, 3) as w:
        for i in range(200):
            w.append_hash(i.to_bytes(2, "big") * 16, i, i)
    assert qjournal.num_clusters_needed(replay(src)) == 3
    dst = tmp_path / "small.qjournal"
    with pytest.raises(JournalFullError, match="need 3 clusters, the target area has 2"):
        qjournal.pack(src, dst, 2)
    assert not dst.exists()
    garbage = bytearray(b"\x00" * (2 * CLUSTER))
    with pytest.raises(JournalFullError):
        qjournal.pack(src, garbage, target_length=2 * CLUSTER, force=True)
    assert garbage == bytes(2 * CLUSTER)
    with pytest.raises(JournalArgumentError, match="holds no journal"):
        qjournal.pack(src, garbage, force=True)  # no size given: the whole buffer, which holds no journal
    assert garbage == bytes(2 * CLUSTER)
    with pytest.raises(CorruptJournalError):
        qjournal.pack(garbage, tmp_path / "x.qjournal")
    assert not (tmp_path / "x.qjournal").exists()


def test_pack_into_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(D10 + D10 + reset_area(1))
    with pytest.raises(JournalArgumentError, match="overlaps the source"):
        qjournal.pack(path, path, source_length=CLUSTER, target_offset=0, target_length=CLUSTER, force=True)
    with pytest.raises(JournalArgumentError, match="overlaps the source"):
        qjournal.pack(path, path, source_offset=CLUSTER, source_length=2 * CLUSTER, target_offset=2 * CLUSTER)
    assert path.read_bytes() == D10 + D10 + reset_area(1)
    report = qjournal.pack(path, path, source_length=CLUSTER, target_offset=2 * CLUSTER, target_length=CLUSTER)
    assert report.num_live == 1 and path.read_bytes() == D10 * 3
    with pytest.warns(DeprecationWarning, match="offset= is deprecated: use target_offset="):
        qjournal.pack(path, path, source_length=CLUSTER, offset=2 * CLUSTER, target_length=CLUSTER, force=True)
    assert path.read_bytes() == D10 * 3


def test_entries_from_json_lines_round_trip() -> None:
    """The JSON-lines schema of ``dump`` goes back in through ``entry_from_dict``."""
    buf = bytearray(D10) + (VECTORS / "unassigned_types.bin").read_bytes()
    lines = [json.dumps(e.to_dict()) for e in replay(buf, 0, CLUSTER) + replay(buf, CLUSTER)]
    out = bytearray()
    with qjournal.create(out, 1) as w:
        w.append_many([qjournal.entry_from_dict(json.loads(line)) for line in lines])
    assert [e.to_dict() | {"ofs": None} for e in replay(out)] == [json.loads(line) | {"ofs": None} for line in lines]
