"""The reader API: sources, areas inside larger files, errors, and that a read never writes."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import as_hash

import qjournal
from qjournal import CorruptJournalError, Entry, HashEntry, JournalArgumentError, JournalIOError, RawEntry

VECTORS = Path(__file__).resolve().parent / "vectors"
D10 = (VECTORS / "d10_example.bin").read_bytes()
MULTI = (VECTORS / "multi_cluster.bin").read_bytes()


def test_sources_agree(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(MULTI)
    want = list(qjournal.read(MULTI))
    assert len(want) == 84
    assert list(qjournal.read(bytearray(MULTI))) == want
    assert list(qjournal.read(memoryview(MULTI))) == want
    assert list(qjournal.read(path)) == want
    assert list(qjournal.read(str(path))) == want
    with open(path, "rb") as f:
        assert list(qjournal.read(f)) == want
        assert not f.closed, "a caller's file object stays open"
    assert list(qjournal.read(io.BytesIO(MULTI))) == want


def test_area_inside_a_larger_file(tmp_path: Path) -> None:
    guard = b"\x00qcow2 header\x00" * 300
    path = tmp_path / "image.qcow2"
    path.write_bytes(guard + MULTI + guard)
    with qjournal.read(path, offset=len(guard), length=len(MULTI)) as j:
        got = list(j)
        state = j.state()
    assert got == list(qjournal.read(MULTI))
    assert state.ofs_tail == 4096 + 150 and state.len_area == len(MULTI)
    # without a length the area runs to the end of the file: the trailing guard makes it invalid
    with pytest.raises(CorruptJournalError) as info:
        qjournal.read(path, offset=len(guard))
    assert info.value.code == "area_length"


def test_errors_name_the_file_offset_of_an_embedded_area() -> None:
    bad = bytearray(D10)
    bad[0x32:0x34] = b"\x01\x02"
    data = b"\xaa" * 8192 + bytes(bad)
    with pytest.raises(CorruptJournalError) as info:
        list(qjournal.read(data, offset=8192))
    e = info.value
    assert (e.code, e.offset, e.file_offset) == ("size_too_small", 0x32, 8192 + 0x32)
    assert "0x32" in str(e) and "0x2032" in str(e)


def test_entries_are_typed() -> None:
    data = (VECTORS / "unassigned_types.bin").read_bytes()
    got = list(qjournal.read(data))
    assert [type(e).__name__ for e in got] == ["RawEntry", "RawEntry", "HashEntry", "RawEntry"]
    assert [e.entry_type for e in got] == [0x00, 0x03, qjournal.EntryType.hash, 0xFE]
    assert [e.ofs for e in got] == [0, 2, 7, 57]
    raw = got[1]
    assert isinstance(raw, RawEntry) and raw.body == b"\x01\x02\x03" and raw.len_entry == 5
    h = as_hash(got[2])
    assert (h.len_entry, h.len_body, h.physical_sector, h.first_logical_sector) == (50, 48, 7, 8)


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"offset": -1}, JournalArgumentError, "offset must be a non-negative integer"),
        ({"offset": 1.5}, JournalArgumentError, "offset must be"),
        ({"length": -4096}, JournalArgumentError, "length must be"),
        ({"offset": 5000}, JournalIOError, "past the end of the file"),
        ({"length": 8192}, JournalIOError, r"shorter than offset \+ length"),
        ({"length": 0}, CorruptJournalError, "not a non-zero multiple of 4096"),
        ({"offset": 1}, CorruptJournalError, "4095 bytes"),
    ],
)
def test_bad_windows(kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        qjournal.read(D10, **kwargs)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(JournalIOError, match="no such file"):
        qjournal.read(tmp_path / "missing.bin")
    with pytest.raises(JournalIOError, match="is a directory"):
        qjournal.read(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(JournalIOError, match="not a regular file"):
        qjournal.read(fifo)
    with pytest.raises(JournalArgumentError, match="cannot open a journal from int"):
        qjournal.read(42)  # type: ignore[arg-type]


def test_all_errors_are_journal_errors() -> None:
    for cls in (CorruptJournalError, JournalArgumentError, JournalIOError, qjournal.JournalFullError, qjournal.JournalLockedError):
        assert issubclass(cls, qjournal.JournalError)
    assert issubclass(JournalArgumentError, ValueError) and issubclass(JournalIOError, OSError)


def test_a_read_never_writes(tmp_path: Path) -> None:
    for name in ("d10_example", "torn_write", "dirty_tail", "corrupt_no_end"):
        path = tmp_path / f"{name}.bin"
        data = (VECTORS / f"{name}.bin").read_bytes()
        path.write_bytes(data)
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        before = path.stat().st_mtime_ns
        with qjournal.read(path) as j:
            try:
                list(j)
                j.state()
            except CorruptJournalError:
                pass
            j.check()
        assert path.read_bytes() == data
        assert path.stat().st_mtime_ns == before


def test_replay_streams_cluster_by_cluster() -> None:
    """Replay reads one cluster at a time: entries come before a later cluster is read."""
    reads: list[int] = []

    class Spy(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            reads.append(self.tell())
            return super().read(n)

    it = iter(qjournal.read(Spy(MULTI)))
    next(it)
    assert set(reads) == {0}, "the first entry needs only the first cluster (and the open's look at the file's magic)"
    list(it)
    assert set(reads) == {0, 4096} and reads[-2:] == [4096, 0]  # at the tail, the first header again (not across a reset)


def test_corrupt_cluster_yields_its_good_prefix() -> None:
    bad = bytearray(MULTI)
    bad[4096 + 100 : 4096 + 102] = b"\x00\x00"
    got: list[Entry] = []
    with pytest.raises(CorruptJournalError) as info:
        for e in qjournal.read(bytes(bad)):
            got.append(e)
    assert len(got) == 81 + 2 and info.value.offset == 4096 + 100
    assert "never reset" in str(info.value)


def test_check_goes_on_after_a_corrupt_cluster() -> None:
    bad = bytearray(b"\xff" * 3 * 4096)
    bad[0:2] = b"\x00\x00"
    bad[4096:4098] = b"\x05\x01"  # END of size 5 at 0: misaligned
    report = qjournal.read(bytes(bad)).check()
    assert [(p.code, p.ofs) for p in report.problems] == [("size_too_small", 0), ("end_misaligned", 4096)]
    assert report.is_corrupt and report.state is None


def test_full_by_a_small_remainder() -> None:
    """A tail in the last cluster with fewer than 4 bytes left is full (no entry fits before an END)."""
    data = bytearray(b"\xff" * 4096)
    pos = 0
    for size in [254] * 16 + [29]:  # 4093
        data[pos : pos + 2] = bytes([size, 0x03])
        pos += size
    assert pos == 4093
    state = qjournal.read(bytes(data)).state()
    assert (state.ofs_tail, state.len_free, state.is_full) == (4093, 3, True)
    data2 = bytearray(b"\xff" * 4096)
    pos = 0
    for size in [254] * 16 + [28]:  # 4092: a 2-byte entry still fits
        data2[pos : pos + 2] = bytes([size, 0x03])
        pos += size
    assert qjournal.read(bytes(data2)).state().is_full is False


def test_the_package_ships_its_ksy_and_format_reference() -> None:
    """What a user opens in the Web IDE, and the reference every "D5" in a message points to."""
    journal = qjournal.ksy_path()
    assert journal.name == "qcow2_journal.ksy" and journal.read_text().startswith("meta:\n  id: qcow2_journal")
    assert qjournal.ksy_path("qcow2").is_file()
    with pytest.raises(FileNotFoundError, match="it ships: qcow2, qcow2_journal"):
        qjournal.ksy_path("vmdk")
    ref = qjournal.format_reference_path()
    assert ref.name == "format.md" and "### D10 Worked example" in ref.read_text()


# -- the library's JSON (the CLI prints it, it does not build it) -----------------------------------------------------


def test_a_state_and_a_report_as_json(tmp_path: Path) -> None:
    import json

    from qjournal.format import LEN_SHA256_ENTRY, max_len_entry, num_fit
    from qjournal.reader import Problem

    data = bytearray(MULTI)
    data[-1] = 0x00  # a dirty tail: an anomaly
    path = tmp_path / "image.bin"
    path.write_bytes(b"\0" * 8192 + bytes(data))
    with qjournal.read(path, offset=8192) as j:
        report = j.check()
        state = j.state()
    assert report.state == state and state.anomalies and report.num_anomalies == len(state.anomalies)
    d = state.to_dict(8192)
    assert json.loads(json.dumps(d)) == d
    assert d["anomalies"] == [p.to_dict(8192) for p in state.anomalies]
    assert all(a["file_ofs"] == a["ofs"] + 8192 for a in d["anomalies"])
    assert {k: v for k, v in d.items() if k != "anomalies"} == {
        k: getattr(state, k) for k in ("len_area", "num_clusters", "num_clusters_used", "ofs_tail", "len_free", "is_full",
                                       "num_entries", "entries_by_type", "num_anomalies")
    }
    r = report.to_dict(8192)
    assert r == {"num_corruptions": 0, "num_anomalies": len(state.anomalies), "problems": d["anomalies"], "state": d,
                 "hint": None, "num_not_kept": 0, "stopped_at": None}
    assert state.max_len_entry == max_len_entry(state.ofs_tail, state.len_area)
    assert state.num_fit() == num_fit(state.ofs_tail, state.len_area, 50) and LEN_SHA256_ENTRY == 50
    assert HashEntry(bytes(32), 0, 0).len_entry == LEN_SHA256_ENTRY
    assert Problem("dirty_tail", 3, "r", False).to_dict() == {
        "code": "dirty_tail", "kind": "dirty_tail", "ofs": 3, "file_ofs": 3, "is_corruption": False, "reason": "r"}


def test_state_raises_the_first_corruption_with_the_hint_check_gives() -> None:
    zeros = bytes(8192)  # not a journal at all: a wrong offset is likelier than a corrupt journal
    report = qjournal.read(zeros).check()
    assert report.state is None and report.hint is not None and report.num_corruptions >= 1
    assert report.to_dict()["state"] is None
    assert report.to_dict()["hint"] == qjournal.errors.spell(report.hint) and "offset=" in report.to_dict()["hint"]
    assert "--offset" in report.to_dict(cli=True)["hint"]
    with pytest.raises(CorruptJournalError) as caught:
        qjournal.read(zeros).state()
    first = next(p for p in report.problems if p.is_corruption)
    assert (caught.value.code, caught.value.offset, caught.value.hint) == (first.code, first.ofs, report.hint)
