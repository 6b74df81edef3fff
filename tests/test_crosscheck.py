"""Writer and reader agree: what the writer appends, the generated reader replays.

The writer is judged three ways: against :class:`Model`, a second reading of
docs/format.md D3, D6 and D8 written here from the text alone (it never calls
the writer's code); against the reader built on the Kaitai-generated parser
(replay, check, state); and against the .ksy's own top-level instances
(``ofs_tail``, ``is_full``, ``is_torn``, ``has_dirty_tail``), which the reader
does not use. The other way round, every golden vector the reader accepts is
written again by the writer and must come out byte for byte.

Property tests run a short default; ``QJOURNAL_HYPOTHESIS_EXAMPLES`` (see
tests/conftest.py) sets a long run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import tempfile
from pathlib import Path

import pytest
from format_doc import section
from helpers import examples, rcheck, replay, rstate
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import qjournal
from qjournal import Entry, HashEntry, JournalFullError, JournalReader, RawEntry
from qjournal.generated.qcow2_journal import Qcow2Journal

CLUSTER = 4096
END, HASH, NONE = 0x01, 0x02, 0xFF
UNASSIGNED = [t for t in range(256) if t not in (END, HASH, NONE)]
VECTORS = Path(__file__).resolve().parent / "vectors"


# -- the model: D3, D6, D8 from the text --------------------------------------
def encode(e: HashEntry | RawEntry) -> bytes:
    """An entry's bytes, D3 and D8: size (2 + n), type, payload."""
    if isinstance(e, HashEntry):
        payload = e.digest + e.physical_sector.to_bytes(8, "big") + e.first_logical_sector.to_bytes(8, "big")
        return bytes([2 + len(payload), HASH]) + payload
    return bytes([2 + len(e.body), e.entry_type]) + e.body


class Model:
    """Where D6 puts each entry, and the bytes a writer must leave (a reset area, then the entries)."""

    def __init__(self, num_clusters: int) -> None:
        self.num_clusters = num_clusters
        self.data = bytearray(b"\xff" * (CLUSTER * num_clusters))
        self.cluster = 0  # the cluster the next entry goes to
        self.used = 0  # bytes used in it

    def copy(self) -> Model:
        m = Model.__new__(Model)
        m.__dict__.update(self.__dict__, data=bytearray(self.data))
        return m

    @property
    def tail(self) -> int:
        return self.cluster * CLUSTER + self.used

    @property
    def is_full(self) -> bool:
        """No room for the smallest entry (2 bytes) and an END header after it, in the last cluster."""
        return self.cluster == self.num_clusters - 1 and self.used + 2 + 2 > CLUSTER

    def place(self, raw: bytes) -> int | None:
        """Put an entry's bytes where D6 says; its offset, or None (nothing changed) when full."""
        if self.used + len(raw) + 2 > CLUSTER:  # it and an END header must fit
            if self.cluster + 1 == self.num_clusters:
                return None
            at = self.tail
            self.data[at : at + 2] = bytes([CLUSTER - self.used, END])  # only the header; padding stays 0xFF
            self.cluster += 1
            self.used = 0
        at = self.tail
        self.data[at : at + len(raw)] = raw
        self.used += len(raw)
        return at

    def place_batch(self, raws: list[bytes]) -> list[int] | None:
        """A batch all or nothing: the offsets, or None (nothing changed) when it does not fit whole."""
        trial = self.copy()
        offsets = [trial.place(r) for r in raws]
        if None in offsets:
            return None
        self.__dict__.update(trial.__dict__)
        return offsets  # type: ignore[return-value]


def live(entries: list[Entry]) -> list[HashEntry]:
    """D9 from the text: the last HASH entry per digest, in the order of those last occurrences."""
    hashes = {i: e for i, e in enumerate(entries) if isinstance(e, HashEntry)}
    last = {e.digest: i for i, e in hashes.items()}
    return [hashes[i] for i in sorted(last.values())]


# -- agreement ---------------------------------------------------------------
def agree(area: bytes | bytearray, writer: qjournal.JournalWriter, placed: list[Entry], model: Model | None = None) -> None:
    """Reader, .ksy and model agree with the writer on the area's bytes."""
    area = bytes(area)
    with JournalReader(area) as reader:
        assert list(reader.replay()) == placed
        report = reader.check()
    assert {p.code for p in report.problems} <= {"unassigned_type"}, report.problems
    state = writer.state()
    assert report.state == state
    assert (state.ofs_tail, state.is_full, state.len_free) == (writer.ofs_tail, writer.is_full, writer.len_free)
    assert state.num_entries == len(placed)
    ksy = Qcow2Journal.from_bytes(area)
    assert (ksy.ofs_tail, ksy.is_full, ksy.num_clusters) == (state.ofs_tail, state.is_full, state.num_clusters)
    assert not ksy.is_torn and not ksy.has_dirty_tail
    if model is not None:
        assert area == bytes(model.data)
        assert (state.ofs_tail, state.is_full) == (model.tail, model.is_full)


# -- strategies ----------------------------------------------------------------
SECTOR = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63, 2**64 - 2, 2**64 - 1]))


@st.composite
def entries(draw: st.DrawFn, digests: list[bytes] | None = None) -> HashEntry | RawEntry:
    """A HASH entry (digest of 1 to 236 bytes) or a raw entry of an unassigned type (body of 0 to 252)."""
    if draw(st.integers(0, 3)):
        if digests is not None:
            digest = draw(st.sampled_from(digests))
        else:
            n = draw(st.one_of(st.integers(1, 236), st.sampled_from([1, 32, 236])))
            digest = random.Random(draw(st.integers(0, 2**16))).randbytes(n)
        return HashEntry(digest, draw(SECTOR), draw(SECTOR))
    n = draw(st.one_of(st.integers(0, 252), st.sampled_from([0, 252])))
    return RawEntry(draw(st.sampled_from(UNASSIGNED)), random.Random(draw(st.integers(0, 2**16))).randbytes(n))


def sized_lists(elements: st.SearchStrategy, max_size: int) -> st.SearchStrategy:
    """Lists whose length is drawn uniformly (plain ``st.lists`` stays short, and rarely fills a cluster)."""
    return st.integers(0, max_size).flatmap(lambda n: st.lists(elements, min_size=n, max_size=n))


NUM_CLUSTERS = st.one_of(st.integers(1, 3), st.integers(1, 64))
GUARD = b"\xa5guard\x00" * 9  # bytes around an embedded area: never touched


# -- properties ----------------------------------------------------------------
@settings(max_examples=examples(120), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(num_clusters=NUM_CLUSTERS, items=sized_lists(entries(), 150), embedded=st.booleans())
def test_appends_replay_exactly(num_clusters: int, items: list[Entry], embedded: bool) -> None:
    """One append at a time: D6 placement, full refusals that change nothing, replay, state, .ksy."""
    guard = GUARD if embedded else b""
    buf = bytearray(guard + b"\xff" * (num_clusters * CLUSTER) + guard)
    model = Model(num_clusters)
    placed = []
    with qjournal.create(buf, num_clusters, offset=len(guard), unaligned_offset=True) as w:
        for e in items:
            tail = model.tail
            at = model.place(encode(e))
            if at is None:
                event("an entry refused: journal full")
                before = bytes(buf)
                with pytest.raises(JournalFullError):
                    w.append(e)
                assert buf == before
            else:
                if at != tail:
                    event(f"an END closed a cluster (size {'255' if at - tail == 255 else '2-254'})")
                got = w.append(e)
                assert got == e._replace(ofs=at)
                placed.append(got)
        area = buf[len(guard) : len(buf) - len(guard)]
        agree(area, w, placed, model)
    assert buf[: len(guard)] == guard and buf[len(buf) - len(guard) :] == guard


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(num_clusters=NUM_CLUSTERS, batches=sized_lists(sized_lists(entries(), 40), 12))
def test_batches_all_or_nothing(num_clusters: int, batches: list[list[Entry]]) -> None:
    """append_many: a batch fits whole at the D6 offsets, or is refused whole with nothing written."""
    buf = bytearray(b"\xff" * (num_clusters * CLUSTER))
    model = Model(num_clusters)
    placed = []
    with qjournal.create(buf) as w:
        for batch in batches:
            offsets = model.place_batch([encode(e) for e in batch])
            if offsets is None:
                event("a batch refused whole: journal full")
                before = bytes(buf)
                with pytest.raises(JournalFullError):
                    w.append_many(batch)
                assert buf == before
            else:
                got = w.append_many(batch)
                assert got == [e._replace(ofs=o) for e, o in zip(batch, offsets, strict=True)]
                placed += got
        agree(buf, w, placed, model)


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    num_clusters=st.integers(1, 8),
    items=sized_lists(entries(), 120),
    cuts=sized_lists(st.integers(0, 120), 6),
)
def test_sessions_equal_one_session(num_clusters: int, items: list[Entry], cuts: list[int]) -> None:
    """Close, reopen, append, in several sessions: the same bytes and state as one session."""
    one = bytearray(b"\xff" * (num_clusters * CLUSTER))
    with qjournal.create(one) as w:
        for e in items:
            with contextlib.suppress(JournalFullError):
                w.append(e)
        want = w.state()
    event(f"sessions: {len(set(c for c in cuts if c <= len(items)) - {0, len(items)}) + 1}")
    many = bytearray(b"\xff" * (num_clusters * CLUSTER))
    bounds = sorted({0, len(items), *(c for c in cuts if c <= len(items))})
    qjournal.create(many).close()
    for lo, hi in itertools.pairwise(bounds):
        with qjournal.open_for_append(many) as w:
            for e in items[lo:hi]:
                with contextlib.suppress(JournalFullError):
                    w.append(e)
            got = w.state()
    assert many == one
    if len(bounds) > 1:
        assert got == want


@settings(max_examples=examples(20), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    num_clusters=st.integers(1, 4),
    items=sized_lists(entries(), 60),
    cuts=sized_lists(st.integers(0, 60), 4),
)
def test_sessions_in_a_file_equal_one_session(num_clusters: int, items: list[Entry], cuts: list[int]) -> None:
    """The same through a real file: lock, reopen, validate, append, close."""
    one = bytearray()
    with qjournal.create(one, num_clusters) as w:
        for e in items:
            with contextlib.suppress(JournalFullError):
                w.append(e)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "j.qjournal")
        qjournal.create(path, num_clusters, durable=False).close()
        bounds = sorted({0, len(items), *(c for c in cuts if c <= len(items))})
        for lo, hi in itertools.pairwise(bounds):
            with qjournal.open_for_append(path, durable=False) as w:
                for e in items[lo:hi]:
                    with contextlib.suppress(JournalFullError):
                        w.append(e)
        assert Path(path).read_bytes() == one


DIGESTS = [bytes([i]) * n for i, n in enumerate([1, 20, 32, 32, 64, 236])]


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(num_clusters=st.integers(1, 6), items=sized_lists(entries(DIGESTS), 200))
def test_pack_keeps_the_last_entry_per_digest(num_clusters: int, items: list[Entry]) -> None:
    """D9: only live HASH entries, last one per digest wins, in the order of last occurrence."""
    src = bytearray()
    with qjournal.create(src, num_clusters) as w:
        appended = []
        for e in items:
            with contextlib.suppress(JournalFullError):
                appended.append(w.append(e))
    dst = bytearray()
    report = qjournal.pack(bytes(src), dst)
    want = live(appended)
    event(f"pack dropped {'some' if len(want) < len(appended) else 'no'} entries")
    model = Model(num_clusters)
    placed = [e._replace(ofs=model.place(encode(e))) for e in want]
    assert len(dst) == len(src)
    assert replay(dst) == placed
    assert bytes(dst) == bytes(model.data)
    assert (report.num_entries_read, report.num_live) == (len(appended), len(want))
    assert report.num_raw_dropped == sum(isinstance(e, RawEntry) for e in appended)
    assert report.state == rstate(dst)


# -- every size at every boundary ---------------------------------------------
def fill_to(w: qjournal.JournalWriter, model: Model, ofs: int) -> None:
    """Append raw entries until the tail is at ``ofs`` of the first cluster."""
    while (rem := ofs - w.ofs_tail) > 0:
        size = min(254, rem)
        if rem - size == 1:
            size -= 1
        e = w.append_raw(0x03, b"\x5a" * (size - 2))
        assert e.ofs == model.place(encode(e))


@pytest.mark.parametrize("len_entry", range(2, 255))
def test_every_size_at_the_boundary(len_entry: int) -> None:
    """Each size 2-254 at the last offsets where it fits, and the first where it does not (D6).

    With a next cluster the writer closes the cluster with an END of size
    4096 - o; in the last cluster it refuses with JournalFullError, changing nothing.
    """
    boundary = CLUSTER - 2 - len_entry  # the last offset where it fits
    body = bytes(range(len_entry - 2))
    for ofs in {boundary - 1, boundary, boundary + 1, boundary + 2, CLUSTER - 2}:
        if not 0 <= ofs <= CLUSTER - 2 or ofs == 1:
            continue
        for num_clusters in (1, 2):
            buf = bytearray(b"\xff" * (num_clusters * CLUSTER))
            model = Model(num_clusters)
            with qjournal.create(buf) as w:
                fill_to(w, model, ofs)
                placed = replay(bytes(buf))
                at = model.place(bytes([len_entry, 0x07]) + body)
                if at is None:
                    assert ofs > boundary and num_clusters == 1
                    before = bytes(buf)
                    with pytest.raises(JournalFullError) as info:
                        w.append_raw(0x07, body)
                    assert buf == before and info.value.offset == ofs
                    assert "nothing was written" in str(info.value)
                else:
                    e = w.append_raw(0x07, body)
                    assert e.ofs == at == (ofs if ofs <= boundary else CLUSTER)
                    if ofs > boundary:
                        assert buf[ofs : ofs + 2] == bytes([CLUSTER - ofs, END])
                    placed.append(e)
                agree(buf, w, placed, model)


def test_end_of_size_255() -> None:
    """The D6 erratum built on purpose: 254 bytes meet exactly 255 free, an END with size byte 0xFF."""
    buf = bytearray(2 * CLUSTER)
    with qjournal.create(buf, length=len(buf), force=True) as w:
        model = Model(2)
        fill_to(w, model, CLUSTER - 255)
        e = w.append_hash(b"\x11" * 236, 2**64 - 1, 0)
        assert e.len_entry == 254 and e.ofs == CLUSTER
        assert buf[CLUSTER - 255 : CLUSTER - 253] == b"\xff\x01"  # size 255 under END: not NONE
        assert buf[CLUSTER - 253 : CLUSTER] == b"\xff" * 253  # its padding is never written
        placed = replay(bytes(buf))
        assert placed[-1] == e
        model.place(encode(e))
        agree(buf, w, placed, model)
    one = bytearray()
    with qjournal.create(one, 1) as w:
        fill_to(w, Model(1), CLUSTER - 255)
        before = bytes(one)
        with pytest.raises(JournalFullError):
            w.append_hash(b"\x11" * 236, 1, 2)
        assert one == before and not w.is_full
        assert w.append_hash(b"\x11" * 235, 1, 2).ofs == CLUSTER - 255  # 253 bytes still fit


def test_a_large_area_filled_to_full() -> None:
    """64 clusters filled with random entries until even the smallest is refused."""
    rng = random.Random(64)
    buf = bytearray()
    model = Model(64)
    placed = []
    with qjournal.create(buf, 64) as w:
        while not w.is_full:
            if rng.random() < 0.8:
                e: HashEntry | RawEntry = HashEntry(rng.randbytes(rng.choice([1, 20, 32, 64, 236])), rng.getrandbits(64), rng.getrandbits(64))
            else:
                e = RawEntry(rng.choice(UNASSIGNED), rng.randbytes(rng.randrange(0, 253)))
            at = model.place(encode(e))
            if at is None:
                with pytest.raises(JournalFullError):
                    w.append(e)
            else:
                placed.append(w.append(e))
                assert placed[-1].ofs == at
        assert model.is_full and w.state().is_full
        with pytest.raises(JournalFullError):
            w.append_raw(0x00)
        agree(buf, w, placed, model)


# -- the other way: golden vectors written again -------------------------------
def built_vectors() -> dict[str, bytes]:
    """Vectors this test builds with the model, so the identity test never runs on zero inputs."""
    out = {}
    m = Model(1)
    m.place(encode(HashEntry(bytes(range(32)), 0x10, 0x20)))
    out["built:d10"] = bytes(m.data)
    m = Model(2)
    while m.tail < CLUSTER - 255 - 254:
        m.place(encode(RawEntry(0x03, b"\x00" * 252)))
    m.place(encode(RawEntry(0x04, b"\x01" * (CLUSTER - 255 - m.tail - 2))))
    m.place(encode(HashEntry(b"\x02" * 236, 3, 4)))
    out["built:end_255"] = bytes(m.data)
    m = Model(4)
    rng = random.Random(3)
    for _ in range(180):
        m.place(encode(HashEntry(rng.randbytes(rng.randrange(1, 237)), rng.getrandbits(64), rng.getrandbits(64))))
    out["built:multi_cluster"] = bytes(m.data)
    return out


def golden(name: str) -> bytes:
    return (VECTORS / f"{name}.bin").read_bytes() if not name.startswith("built:") else built_vectors()[name]


GOLDEN = sorted(p.stem for p in VECTORS.glob("*.bin")) + sorted(built_vectors())


def closed_last_cluster(data: bytes) -> bool:
    """True when an END closes the area's last cluster: replay ends after it (D7)."""
    ksy = Qcow2Journal.from_bytes(data)
    return len(ksy.clusters) == ksy.num_clusters and ksy.clusters[-1].is_closed


def test_golden_vectors_are_found() -> None:
    assert len(GOLDEN) >= 3 + 5, GOLDEN


@pytest.mark.parametrize("name", GOLDEN)
def test_vectors_written_again_or_refused(name: str) -> None:
    """Every vector: written again byte for byte, or refused for append as the reader refuses it.

    A vector the reader accepts with no anomaly but unassigned types is
    replayed and written again into a fresh area of the same size: the same
    bytes. The writer never closes the last cluster (D6: a cluster is closed
    only when an entry does not fit, and then there is no next cluster), so for
    a vector whose last cluster is closed the expected bytes are the vector's
    with that END's two header bytes reset to 0xFF. A corrupt vector is refused
    by open-for-append with the reader's rule and offset, and left as it was;
    any other anomaly is what :func:`test_vectors_with_anomalies_open_for_append` covers.
    """
    data = golden(name)
    try:
        with JournalReader(data) as reader:
            report = reader.check()
    except qjournal.CorruptJournalError as exc:  # refused at open (the area length)
        refused(data, exc.code, exc.offset)
        return
    if report.is_corrupt:
        first = next(p for p in report.problems if p.is_corruption)
        refused(data, first.code, first.ofs)
        return
    if {p.code for p in report.problems} - {"unassigned_type"}:
        test_vectors_with_anomalies_open_for_append(name)
        return
    replayed = replay(data)
    expected = bytearray(data)
    if closed_last_cluster(data):
        last = Qcow2Journal.from_bytes(data).clusters[-1]
        ofs_end = len(data) - CLUSTER + sum(e.len_entry for e in last.entries[:-1])
        expected[ofs_end : ofs_end + 2] = b"\xff\xff"
    buf = bytearray()
    with qjournal.create(buf, len(data) // CLUSTER) as w:
        written = [w.append(e) for e in replayed]
        state = w.state()
    assert written == replayed  # at the same offsets
    assert bytes(buf) == bytes(expected)
    if not closed_last_cluster(data):
        assert state == report.state
    batch = bytearray()  # and as one atomic batch
    with qjournal.create(batch, len(data) // CLUSTER) as w:
        assert w.append_many(replayed) == replayed
    assert batch == buf


def refused(data: bytes, rule: str, ofs: int | None) -> None:
    buf = bytearray(data)
    for validate in (True, False):  # validate=False is ignored (with a warning): the same full check
        with pytest.raises(qjournal.CorruptJournalError) as info, contextlib.ExitStack() as stack:
            if not validate:
                stack.enter_context(pytest.warns(DeprecationWarning, match="validate=False is ignored"))
            qjournal.open_for_append(buf, validate=validate)
        assert (info.value.code, info.value.offset) == (rule, ofs)
        assert buf == data


ANOMALOUS = [n for n in GOLDEN if n.startswith(("torn", "dirty"))]


FOREIGN_PAST_THE_TAIL = {"dirty_tail"}
"""Vectors whose bytes past the tail no interrupted append leaves (a stray byte, the tail's own byte 0xFF)."""


@pytest.mark.parametrize("name", ANOMALOUS)
def test_vectors_with_anomalies_open_for_append(name: str) -> None:
    """A torn write (and the tail after it) is erased on open for append; dirty END padding, before the tail,
    stays; a stray byte past a tail whose own byte is 0xFF is no append's leftover: refused, erased only on request."""
    data = golden(name)
    with JournalReader(data) as reader:
        before = reader.check().state
        replayed = list(reader.replay())
    assert before is not None and before.anomalies
    buf = bytearray(data)
    erase = name in FOREIGN_PAST_THE_TAIL
    if erase:
        with pytest.raises(qjournal.ForeignDataError) as info:
            qjournal.open_for_append(buf)
        assert info.value.ofs_tail == before.ofs_tail and bytes(buf) == data
    with qjournal.open_for_append(buf, erase_foreign_data=erase) as w:
        tail = w.ofs_tail
        assert tail == before.ofs_tail
        assert buf[:tail] == data[:tail]  # nothing before the tail changes
        assert buf[tail:] == b"\xff" * (len(buf) - tail)
        after = rcheck(bytes(buf)).state
        assert w.state() == after
        assert {p.code for p in after.anomalies} == {p.code for p in before.anomalies} - {"torn_write", "dirty_tail"}
        assert replay(bytes(buf)) == replayed
        e = w.append_hash(b"\x42" * 32, 1, 2)
    assert replay(bytes(buf)) == replayed + [e]


def test_the_d10_example_is_the_documented_hex() -> None:
    """The writer's bytes for D10's entry are the hex printed in docs/format.md."""
    d10 = section("D10")
    rows = re.findall(r"^ {4}([0-9a-f]{4}): ([0-9a-f ]+?)\s*$", d10, re.M)
    assert rows, "no hex rows found under ## D10"
    shown = bytes.fromhex("".join(hexes for _, hexes in rows))
    assert [int(ofs, 16) for ofs, _ in rows] == list(range(0, len(shown), 16))
    fill = re.search(r"^\s*\.\.\.\s+(ff) to offset ([0-9a-f]+)\s*$", d10, re.M)
    assert fill, "no '... ff to offset' line under ## D10"
    expected = shown + bytes.fromhex(fill.group(1)) * (int(fill.group(2), 16) + 1 - len(shown))
    buf = bytearray()
    with qjournal.create(buf, 1) as w:
        e = w.append_hash(bytes(range(0x20)), 0x10, 0x20)
    assert bytes(buf) == expected
    assert (e.ofs, e.len_entry) == (0, 0x32)
    assert replay(buf) == [e]
    assert rstate(buf).ofs_tail == 0x32  # "then meets NONE at offset 0x32"
