"""The leftovers rule (qjournal.leftovers): what one interrupted append leaves past the tail, and nothing else.

Two independent readings are held to each other and to the writer:

- :func:`qjournal.leftovers.explain`, the library's dynamic programme;
- :func:`test_fuzz.model_leftovers`, a search written in the test from the text of docs/format.md.

Every crash leftover of the writer (its anchor, then any subset of the batch's other bytes, the commit
byte 0xFF) must be accepted by both; random foreign bytes past a tail whose own byte is still 0xFF
must be refused by both, and an open for append must then leave every byte as it was.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import examples, known
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_fuzz import model_leftovers

import qjournal
from qjournal import ForeignDataError, HashEntry, RawEntry, leftovers

CLUSTER = 4096
SETTINGS = settings(
    max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def verdict(area: bytes, tail: int) -> leftovers.Verdict:
    """The library's verdict on the bytes past ``tail`` of ``area``."""
    found = leftovers.survey([(tail, area[tail:])])
    assert found.ofs_last is not None, "nothing past the tail"
    return leftovers.explain(tail, len(area), found.ofs_last, lambda i: area[i * CLUSTER : (i + 1) * CLUSTER])


def entries(rng: random.Random, n: int) -> list[qjournal.Entry]:
    out: list[qjournal.Entry] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            out.append(HashEntry(rng.randbytes(32), rng.randrange(2**64), rng.randrange(2**64)))
        elif r < 0.75:
            out.append(HashEntry(rng.randbytes(rng.randint(1, 236)), rng.randrange(2**40), 7))
        elif r < 0.9:
            out.append(RawEntry(rng.choice([0x00, 0x03, 0x42, 0xFE]), rng.randbytes(rng.randint(0, 252))))
        else:  # sizes that meet the boundary edge cases (END of 2..255)
            out.append(RawEntry(0x03, b"\xff" * rng.choice([0, 1, 2, 250, 251, 252])))
    return out


def journal(rng: random.Random, num_clusters: int, prefill: int) -> bytearray:
    buf = bytearray()
    with qjournal.create(buf, num_clusters) as w:
        for e in entries(rng, prefill):
            try:
                w.append(e)
            except qjournal.JournalFullError:
                break
    return buf


def tail_of(area: bytes | bytearray) -> int:
    with qjournal.read(bytes(area)) as r:
        return r.state().ofs_tail


# -- every crash leftover of the writer is a leftover ---------------------------------------------


@SETTINGS
@given(seed=st.integers(0, 2**32), num_clusters=st.integers(1, 4), prefill=st.integers(0, 120),
       batch=st.integers(1, 120), keep=st.floats(0, 1))
def test_every_crash_leftover_of_the_writer_is_accepted(seed: int, num_clusters: int, prefill: int, batch: int,
                                                          keep: float) -> None:
    rng = random.Random(seed)
    base = journal(rng, num_clusters, prefill)
    tail = tail_of(base)
    after = bytearray(base)
    with qjournal.open_for_append(after) as w:
        try:
            w.append_many(entries(rng, batch))
        except qjournal.JournalFullError:
            assume(False)
    changed = [i for i in range(tail, len(base)) if after[i] != base[i]]
    anchor, commit = changed[0], tail + 1
    crash = bytearray(base)
    for i in changed:
        if i == anchor or (i != commit and rng.random() < keep):
            crash[i] = after[i]
    v = verdict(bytes(crash), tail)
    assert v.is_leftover, v.reason
    assert v.anchor == anchor
    assert model_leftovers(crash, tail)
    with qjournal.open_for_append(crash) as w:  # erased, and the journal is as before the batch
        assert w.ofs_tail == tail
    assert crash == base


def test_the_writer_anchors_on_the_next_cluster_after_an_end_of_255() -> None:
    """A tail 255 bytes before the boundary and a 254-byte entry: the END's size byte is 0xFF, the anchor is 0xFE."""
    base = bytearray()
    with qjournal.create(base, 2) as w:
        w.append_many([RawEntry(0x03, b"\x00" * 252)] * 15 + [RawEntry(0x03, b"\x00" * 29)])
        tail = w.ofs_tail
    assert tail == CLUSTER - 255
    after = bytearray(base)
    with qjournal.open_for_append(after) as w:
        w.append_raw(0x07, b"\x11" * 252)
    crash = bytearray(base)
    crash[CLUSTER] = after[CLUSTER]  # the anchor alone
    v = verdict(bytes(crash), tail)
    assert v.is_leftover and v.anchor == CLUSTER and model_leftovers(crash, tail)
    wrong = bytearray(crash)
    wrong[CLUSTER] = 0xFD  # an entry of 253 bytes would have fitted before the boundary: no END, no such anchor
    assert not verdict(bytes(wrong), tail).is_leftover and not model_leftovers(wrong, tail)


# -- foreign bytes are never taken for leftovers -------------------------------------------------


@SETTINGS
@given(seed=st.integers(0, 2**32), num_clusters=st.integers(1, 4), prefill=st.integers(0, 120),
       where=st.integers(1, 4 * CLUSTER), junk=st.binary(min_size=1, max_size=3 * CLUSTER))
def test_foreign_bytes_past_a_clean_tail_are_never_erased(tmp_path_factory: pytest.TempPathFactory, *, seed: int,
                                                            num_clusters: int, prefill: int, where: int,
                                                            junk: bytes) -> None:
    """Random bytes anywhere past the tail, the NONE header at the tail left 0xFF 0xFF: refused, every byte kept."""
    rng = random.Random(seed)
    area = journal(rng, num_clusters, prefill)
    tail = tail_of(area)
    assume(tail + 2 < len(area) and tail % CLUSTER != CLUSTER - 255)  # (the one tail whose anchor lies elsewhere)
    start = tail + 2 + where % (len(area) - tail - 2)
    junk = junk[: len(area) - start]
    assume(junk.strip(b"\xff"))
    area[start : start + len(junk)] = junk
    assert not verdict(bytes(area), tail).is_leftover
    assert not model_leftovers(area, tail)
    guard_before, guard_after = rng.randbytes(rng.randint(0, 1000)), rng.randbytes(rng.randint(0, 1000))
    path = tmp_path_factory.mktemp("foreign") / "image"
    whole = guard_before + bytes(area) + guard_after
    path.write_bytes(whole)
    with pytest.raises(ForeignDataError) as info:
        qjournal.open_for_append(path, len(guard_before), len(area), unaligned_offset=True)
    assert path.read_bytes() == whole, "a refused open wrote"
    assert info.value.ofs_tail == tail and known(info.value.offset) >= start
    with qjournal.open_for_append(path, len(guard_before), len(area), erase_foreign_data=True, unaligned_offset=True) as w:
        assert w.ofs_tail == tail
    got = path.read_bytes()
    assert got[: len(guard_before)] == guard_before and got[len(guard_before) + len(area) :] == guard_after
    assert got[len(guard_before) + tail : len(guard_before) + len(area)] == b"\xff" * (len(area) - tail)


@SETTINGS
@given(seed=st.integers(0, 2**32), num_clusters=st.integers(1, 3), prefill=st.integers(0, 80),
       junk=st.binary(min_size=1, max_size=600))
def test_bytes_at_the_tail_get_the_verdict_of_the_model(seed: int, num_clusters: int, prefill: int, junk: bytes) -> None:
    """Bytes from the tail on (its own byte included): both readings agree, and a refusal writes nothing."""
    rng = random.Random(seed)
    area = journal(rng, num_clusters, prefill)
    tail = tail_of(area)
    assume(tail < len(area))
    junk = junk[: len(area) - tail]
    area[tail : tail + len(junk)] = junk
    area[tail + 1] = 0xFF  # the tail stays the tail: its type byte is NONE
    try:
        assert tail_of(area) == tail
    except qjournal.CorruptJournalError:
        assume(False)
    assume(area[tail:].strip(b"\xff"))
    expected = model_leftovers(area, tail)
    assert verdict(bytes(area), tail).is_leftover == expected
    buf = bytearray(area)
    if expected:
        with qjournal.open_for_append(buf):
            pass
        assert buf[tail:] == b"\xff" * (len(buf) - tail) and buf[:tail] == area[:tail]
    else:
        with pytest.raises(ForeignDataError):
            qjournal.open_for_append(buf)
        assert buf == area


# -- the rule's edges, one by one -----------------------------------------------------------------


def _area(num_clusters: int, *pieces: tuple[int, bytes]) -> bytes:
    a = bytearray(b"\xff" * (num_clusters * CLUSTER))
    for pos, data in pieces:
        a[pos : pos + len(data)] = data
    return bytes(a)


_FILL = [(254 * i, bytes([254, 3])) for i in range(1, 15)]
"""Entries of 254 bytes from 254 to 3810 (their payloads never landed)."""


@pytest.mark.parametrize(
    "what, area, tail, ok",
    [
        ("a torn entry: the size byte alone", _area(1, (0, b"\x32")), 0, True),
        ("a torn entry with its payload", _area(1, (0, b"\x32\xff" + b"\x00" * 48)), 0, True),
        ("payload that ran past the entry's size", _area(1, (0, b"\x05\xff\x00\x00\x00\x00")), 0, False),
        ("a lone byte past a tail whose byte is 0xFF", _area(1, (600, b"\x05")), 0, False),
        ("a size byte of 0xFF at the tail, not 255 before a boundary", _area(1, (0, b"\xff\xff\x07")), 0, False),
        ("an END where the next entry would have fitted",
         _area(2, (0, b"\xfe"), *_FILL, (3810, b"\x5a\x03"), (3900, b"\xc4\x01"), (CLUSTER, b"\x32\x03")), 0, False),
        ("an END where the next entry did not fit",
         _area(2, (0, b"\xfe"), *_FILL, (3810, b"\x5a\x03"), (3900, b"\xc4\x01"), (CLUSTER, b"\xc8\x03")), 0, True),
        ("an END in the last cluster (the writer never writes one)",
         _area(1, (0, b"\xfe"), *_FILL, (3810, b"\x5a\x03"), (3900, b"\xc4\x01")), 0, False),
        ("dirty END padding",
         _area(2, (0, b"\xfe"), *_FILL, (3810, b"\x5a\x03"), (3900, b"\xc4\x01\x00"), (CLUSTER, b"\xc8\x03")), 0, False),
        ("a HASH entry shorter than 19 bytes", _area(1, (0, b"\x05\xff\x00\x00\x00"), (5, b"\x05\x02")), 0, False),
        ("a second journal after the first",
         _area(2, (0, b"\x32\x02" + b"\x01" * 48), (CLUSTER, b"\x32\x02" + b"\x02" * 48)), 0x32, False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_edges_of_the_rule(what: str, area: bytes, tail: int, ok: bool) -> None:
    if tail and not ok:
        assert tail_of(area) == tail
    past = area[tail:]
    if not past.strip(b"\xff"):
        assert ok
        return
    assert verdict(area, tail).is_leftover is ok, what
    assert model_leftovers(area, tail) is ok, what


def test_survey_counts_bytes_and_clusters_across_chunks() -> None:
    area = _area(4, (100, b"\x01\x02"), (CLUSTER + 5, b"\x03"), (3 * CLUSTER + CLUSTER - 1, b"\x04"))
    whole = leftovers.survey([(50, area[50:])])
    chunked = leftovers.survey([(50 + i, area[50 + i : 50 + i + 1000]) for i in range(0, len(area) - 50, 1000)])
    assert whole == chunked == leftovers.Survey(100, 4 * CLUSTER - 1, 4, 3)
    straddling = _area(2, (CLUSTER - 10, b"\x01" * 20))  # one cluster's bytes in two chunks: counted once
    halves = leftovers.survey([(0, straddling[: CLUSTER - 5]), (CLUSTER - 5, straddling[CLUSTER - 5 : CLUSTER + 3]),
                               (CLUSTER + 3, straddling[CLUSTER + 3 :])])
    assert halves == leftovers.Survey(CLUSTER - 10, CLUSTER + 9, 20, 2)
    assert leftovers.survey([(0, b"\xff" * 10)]).is_clean


def test_a_refusal_names_what_and_where(tmp_path: Path) -> None:
    """The error: the file, the first foreign byte (area and file offset), how many bytes and clusters, the fix."""
    area = bytearray(_area(4))
    area[0:50] = bytes([50, 2]) + bytes(48)
    area[2 * CLUSTER + 7 : 2 * CLUSTER + 9] = b"\x00\x00"
    area[3 * CLUSTER] = 0x10
    path = tmp_path / "image"
    path.write_bytes(b"\x00" * 512 + bytes(area))
    with pytest.raises(ForeignDataError) as info:
        qjournal.open_for_append(path, 512, len(area))
    err = info.value
    assert (err.offset, err.file_offset, err.ofs_last, err.num_bytes, err.num_clusters) == (
        2 * CLUSTER + 7, 512 + 2 * CLUSTER + 7, 3 * CLUSTER, 3, 2)
    text = str(err)
    assert str(path) in text and "3 bytes other than 0xFF past the tail at 0x32" in text and "in 2 clusters" in text
    assert "nothing was written" in text and "erase_foreign_data=True" in text and "qjournal check" in text
    assert "--erase-foreign-data" in err.message(cli=True)
