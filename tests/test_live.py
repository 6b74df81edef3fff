"""The live view (D9) in bounded memory, the streamed batch append, and pack on top of them (issue 13).

``LiveIndex`` must be the live entries of the replay (D9, written out in the
test), whether it stays in memory or spills to SQLite, built from a reader or
from an area and its entries; ``JournalWriter.append_stream`` must write what
``append_many`` writes, in the same order, barriers included; and pack must
write the same bytes however its index was kept.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
from helpers import known

import qjournal
from qjournal import CorruptJournalError, Entry, HashEntry, JournalArgumentError, JournalFullError, JournalIOError, JournalState, RawEntry
from qjournal.live import LiveIndex

VECTORS = Path(__file__).resolve().parent / "vectors"


def journal_with_repeats(seed: int, num_clusters: int = 8, n: int = 600) -> bytes:
    """HASH entries over a small set of digests (many superseded), some raw entries, digests of every length."""
    rng = random.Random(seed)
    buf = bytearray()
    digests = [rng.randbytes(rng.choice([1, 20, 32, 32, 64, 236])) for _ in range(max(1, n // 4))]
    with qjournal.create(buf, num_clusters) as w:
        for i in range(n):
            try:
                if rng.random() < 0.1:
                    w.append_raw(rng.choice([0x00, 0x03, 0xFE]), rng.randbytes(rng.randrange(0, 60)))
                else:
                    w.append_hash(rng.choice(digests), rng.randrange(2**64), i)
            except qjournal.JournalFullError:
                break
    return bytes(buf)


def expected(data: bytes) -> list[HashEntry]:
    """D9 written out here, apart from the package: the last HASH entry per digest, in the order of those."""
    live: dict[bytes, HashEntry] = {}
    for e in qjournal.read(data):
        if isinstance(e, HashEntry):
            live.pop(e.digest, None)
            live[e.digest] = e
    return list(live.values())


@pytest.mark.parametrize("limit", [None, 1, 1000, 10**9], ids=["default", "spill-at-once", "spill-later", "memory"])
@pytest.mark.parametrize("seed", range(4))
def test_the_index_is_live_entries_of_the_replay(seed: int, limit: int | None, tmp_path: Path) -> None:
    data = journal_with_repeats(seed)
    want = expected(data)
    path = tmp_path / "j.bin"
    path.write_bytes(data)
    for source in (data, path):
        with qjournal.read(source) as r, r.live(memory_limit=limit, spill_dir=tmp_path) as live:
            assert live.is_spilled == (limit in (1, 1000) and len(want) * 150 > limit)
            assert list(live.values()) == want
            assert list(live) == [e.digest for e in want]
            assert list(live.items()) == [(e.digest, e) for e in want]
            assert len(live) == live.num_live == len(want)
            entries = list(qjournal.read(data))
            assert live.num_entries == len(entries)
            assert live.num_hash == sum(type(e) is HashEntry for e in entries)
            assert live.num_raw == sum(type(e) is RawEntry for e in entries)
            assert live.num_superseded == live.num_hash - len(want)
            for e in want[::7]:
                assert live[e.digest] == e and e.digest in live and live.ofs(e.digest) == e.ofs
                assert live[bytearray(e.digest)] == e and live.get(memoryview(e.digest)) == e  # type: ignore[index,call-overload]  # any bytes-like, on purpose
            assert list(live.len_entries()) == [e.len_entry for e in want]
            for missing in (b"\x00" * 33, b"", "text", 5, None):
                assert missing not in live
                with pytest.raises(KeyError):
                    live[missing]  # type: ignore[index]
                assert live.get(missing) is None  # type: ignore[arg-type]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("qjournal-live-")], "the spilled index was deleted"


@pytest.mark.parametrize("vector", sorted(VECTORS.glob("*.bin")), ids=lambda p: p.name)
def test_golden_vectors(vector: Path) -> None:
    data = vector.read_bytes()
    try:
        want = expected(data)
    except qjournal.JournalError as exc:
        with pytest.raises(type(exc)):
            with qjournal.read(data) as r:
                r.live(memory_limit=1)
        return
    for limit in (1, None):
        with qjournal.read(data) as r, r.live(memory_limit=limit) as live:
            assert list(live.values()) == want


def test_a_corrupt_journal_raises_as_replay_does_and_leaves_nothing(tmp_path: Path) -> None:
    data = bytearray(journal_with_repeats(1))
    data[4096 * 3] = 0x00
    with qjournal.read(bytes(data)) as r:
        with pytest.raises(CorruptJournalError) as replay_error:
            list(r.replay())
        with pytest.raises(CorruptJournalError) as live_error:
            r.live(memory_limit=1, spill_dir=tmp_path)
    assert str(live_error.value) == str(replay_error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_journal_changed_under_its_index_is_refused(tmp_path: Path) -> None:
    data = journal_with_repeats(2)
    path = tmp_path / "j.bin"
    path.write_bytes(data)
    with qjournal.read(path) as r, r.live() as live:
        e = next(iter(live.values()))
        with open(path, "r+b") as f:
            f.seek(known(e.ofs) + 2)
            f.write(bytes([e.digest[0] ^ 1]))
        live._window = b""  # the index's read-ahead window held the old bytes
        with pytest.raises(JournalIOError, match="changed since its live index was built"):
            live[e.digest]


def test_a_closed_spilled_index_says_so(tmp_path: Path) -> None:
    with qjournal.read(journal_with_repeats(0)) as r:
        live = r.live(memory_limit=1, spill_dir=tmp_path)
        assert live.is_spilled and "on disk" in repr(live)
        live.close()
        live.close()
        with pytest.raises(JournalIOError, match="closed"):
            list(live)


# -- append_stream: append_many's bytes and order -----------------------------------------------------------


def recorded(start: bytes, batch: list[Entry], method: str) -> tuple[list[tuple[object, ...]], bytes, tuple[object, JournalState]]:
    buf = bytearray(start)
    log: list[tuple[object, ...]] = []
    with qjournal.open_for_append(buf) as w:
        real_write, real_barrier = w._write, w._barrier

        def write(pos: int, data: bytes) -> None:
            log.append(("write", pos, bytes(data)))
            real_write(pos, data)

        def barrier() -> None:
            log.append(("barrier",))
            real_barrier()

        w._write = write  # type: ignore[method-assign]  # a spy on this one writer
        w._barrier = barrier  # (an attribute: no method to replace)
        try:
            result: object = getattr(w, method)(batch)
        except qjournal.JournalError as exc:
            result = type(exc)
        state = w.state()
    return log, bytes(buf), (result if not isinstance(result, list) else len(result), state)


def starts() -> list[bytes]:
    """Journals whose tails sit where a batch opens with an entry, an END of size 2..254 and the END of size 255."""
    out = []
    for fill in (0, 50, 4096 - 256 - 2, 4096 - 255, 4096 - 60, 4096 * 2 + 100):
        buf = bytearray()
        with qjournal.create(buf, 12) as w:
            while w.ofs_tail < fill:
                room = fill - w.ofs_tail
                w.append_raw(0x03, b"\x00" * max(0, min(252, room - 2 if room >= 2 else 0)))
        out.append(bytes(buf))
    return out


@pytest.mark.parametrize("start", starts(), ids=lambda b: f"tail-{qjournal.read(b).state().ofs_tail:#x}")
@pytest.mark.parametrize("seed", range(3))
def test_append_stream_writes_what_append_many_writes_in_the_same_order(start: bytes, seed: int) -> None:
    rng = random.Random(seed)
    for size in (1, 2, 81, 82, 120):
        batch = [HashEntry(rng.randbytes(rng.choice([32, 236, 1])), rng.randrange(2**64), i) if rng.random() < 0.8
                 else RawEntry(rng.choice([0, 3, 0xFE]), rng.randbytes(rng.randrange(253)))
                 for i in range(size)]
        many = recorded(start, batch, "append_many")
        stream = recorded(start, batch, "append_stream")
        if many[2][0] is JournalFullError:  # refused before any write; the stream erases what it wrote
            assert stream[2][0] is JournalFullError and stream[1] == many[1] == start
            continue
        assert stream[2][0] == many[2][0] == size
        # (a batch of one that fits at the tail of an in-memory journal takes the fast path: one write, not _write's)
        assert stream[0] == many[0] or (size == 1 and many[0] == []), "the same writes and barriers, in the same order"
        assert stream[1] == many[1]
        assert stream[2][1] == many[2][1]  # the writer's state after the batch


@pytest.mark.parametrize("bad", ["argument", "full"])
def test_append_stream_that_fails_part_way_leaves_the_journal_as_it_was(bad: str) -> None:
    start = starts()[1]
    batch: list[Entry] = [HashEntry(bytes([i % 256]) * 32, i, i) for i in range(300)]
    if bad == "argument":
        batch[250] = HashEntry(b"", 1, 1)
    else:
        batch *= 4  # 1200 entries of 50 bytes do not fit in 12 clusters
    buf = bytearray(start)
    with qjournal.open_for_append(buf) as w:
        with pytest.raises(JournalArgumentError if bad == "argument" else JournalFullError, match=r"entry \d+ of the batch"):
            w.append_stream(iter(batch))
        assert w.ofs_tail == qjournal.read(start).state().ofs_tail
    assert bytes(buf) == start
    with qjournal.open_for_append(buf) as w:  # and it takes an append as before
        w.append_stream([HashEntry(b"\x01" * 32, 1, 2)])
    assert len(list(qjournal.read(bytes(buf)))) == len(list(qjournal.read(start))) + 1


def test_append_stream_of_nothing_writes_nothing() -> None:
    start = starts()[1]
    buf = bytearray(start)
    with qjournal.open_for_append(buf) as w:
        assert w.append_stream(iter([])) == 0
    assert bytes(buf) == start


# -- pack: the same bytes, in memory or spilled ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_pack_writes_the_same_bytes_whatever_its_index(seed: int, tmp_path: Path) -> None:
    data = journal_with_repeats(seed, num_clusters=16, n=1500)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    want = bytearray()
    live = expected(data)
    with qjournal.create(want, qjournal.read(data).num_clusters) as w:
        w.append_many(live)  # pack as it was: the live entries as one append_many
    outs = []
    for i, kw in enumerate(({}, {"memory_limit": 1}, {"memory_limit": 3000, "spill_dir": tmp_path})):
        out = tmp_path / f"out{i}.bin"
        report = qjournal.pack(src, out, **kw)  # type: ignore[arg-type]
        outs.append(out.read_bytes())
        assert report.num_live == len(live)
    mem_target = bytearray()
    qjournal.pack(data, mem_target)
    assert outs == [bytes(want)] * 3 and bytes(mem_target) == bytes(want)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("qjournal-live-")]


def test_pack_from_a_bytearray_into_itself_grown() -> None:
    """The in-memory path closes its reader before the target is made: the same bytearray can grow."""
    data = bytearray(journal_with_repeats(3))
    n = len(data)
    report = qjournal.pack(data, data, target_offset=n)
    assert report.num_live == len(expected(bytes(data[:n])))
    assert list(qjournal.read(bytes(data), offset=n)) == [e._replace(ofs=x.ofs) for e, x in
                                                         zip(expected(bytes(data[:n])), qjournal.read(bytes(data), offset=n), strict=True)]


def test_built_from_an_area_and_its_entries(tmp_path: Path) -> None:
    """``LiveIndex(area, entries)``: the entries a replay yields, read back from the area; a reader gives both."""
    data = journal_with_repeats(5)
    with qjournal.read(data) as r, LiveIndex(r.area, r.replay()) as live:
        assert list(live.values()) == expected(data)
    with qjournal.read(data) as r, LiveIndex(r) as live:
        assert list(live.values()) == expected(data)
    with qjournal.read(data) as r:
        with pytest.raises(JournalArgumentError, match="the replay's"):
            LiveIndex(r.area, r.replay(), progress=print)
        with pytest.raises(JournalArgumentError, match="an area and its entries"):
            LiveIndex(r.area)


def test_deprecated_live_entries_is_the_index() -> None:
    data = journal_with_repeats(6)
    with pytest.warns(DeprecationWarning, match="live_entries is deprecated"):
        assert qjournal.live_entries(qjournal.read(data)) == expected(data)


def test_live_index_is_exported() -> None:
    assert qjournal.LiveIndex is LiveIndex
    assert isinstance(qjournal.read(b"\xff" * 4096).live(), LiveIndex)
    assert os.path.basename(qjournal.live.__file__) == "live.py"


def test_decode_hash_is_encode_hash_mirrored_and_agrees_with_the_parser() -> None:
    """The one hand decoder of a HASH payload (entries.decode_hash): what the generated parser reads, byte for byte."""
    from qjournal.entries import decode_hash, encode_hash

    data = journal_with_repeats(7)
    hashes = [e for e in qjournal.read(data) if isinstance(e, HashEntry)]
    assert hashes
    for e in hashes:
        assert e.ofs is not None
        assert decode_hash(data, e.ofs, e.ofs) == e  # at its offset in the area, as the parser read it
        assert decode_hash(encode_hash(e.digest, e.physical_sector, e.first_logical_sector), 0, 7) == e._replace(ofs=7)
    good = encode_hash(b"\x05" * 32, 2**64 - 1, 0)
    assert decode_hash(good[:-1], 0, 0) is None  # cut short
    assert decode_hash(bytes([good[0], 0x03]) + good[2:], 0, 0) is None  # not a HASH type byte
    assert decode_hash(bytes([18, 0x02]) + good[2:], 0, 0) is None  # a size below a HASH entry's 19
    assert decode_hash(good, len(good) - 1, 0) is None  # no header there


def test_verify_checks_the_live_entries_a_batch_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """verify goes through the live index in batches (its memory bounded): any batch size gives the same report."""
    import qjournal.verifying as verify_mod

    rnd = random.Random(12)
    blocks = [rnd.randbytes(4096) for _ in range(9)]
    path = tmp_path / "disk.raw"
    path.write_bytes(b"".join(blocks + blocks[:3]))
    journal = tmp_path / "j.qjournal"
    qjournal.indexing.index(path, journal, block_size=4096)
    with qjournal.open_for_append(journal) as w:  # supersede two entries: one still true, one that lies now
        w.append_hash(hashlib.sha256(blocks[4]).digest(), 4 * 8, 4 * 8)
        w.append_hash(hashlib.sha256(blocks[5]).digest(), 6 * 8, 5 * 8)
    data = bytearray(path.read_bytes())
    data[2 * 4096] ^= 1  # a changed cluster
    path.write_bytes(data)
    want = verify_mod.verify(journal, path, block_size=4096)
    assert want.num_checked == 9 and {m.code for m in want.mismatches} == {"data_changed", "logical_elsewhere"}
    for batch in (1, 2, 4):
        monkeypatch.setattr(verify_mod, "BATCH", batch)
        assert verify_mod.verify(journal, path, block_size=4096) == want
