"""The benchmark: its decoders read what the reader reads, and a tiny run works.

No timing is asserted here: the figures are the benchmark's to print. What is
asserted is that every decoder it times gives the reader's answer (a fast wrong
decoder would make every ratio meaningless) and that a short run of the
command produces a sane table and JSON. Without the optional construct (the
``bench`` extra) its decoder's test skips and the run has no construct row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import load_script

import qjournal
from qjournal.format import LEN_CLUSTER

VECTORS = Path(__file__).resolve().parent / "vectors"
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


bench = load_script(BENCH)


def reader_tuples(data: bytes) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for e in qjournal.read(data):
        if isinstance(e, qjournal.HashEntry):
            out.append((e.digest, e.physical_sector, e.first_logical_sector, e.ofs))
        else:
            out.append((e.entry_type, e.body, e.ofs))
    return out


def decoders() -> list[Any]:
    found = [bench.replay_public, bench.replay_generated, bench.replay_struct,
             bench.replay_public_with(qjournal.stream.PureClusterStream)]
    if bench.compiled_stream() is not None:
        found.append(bench.replay_public_with(bench.compiled_stream()))
    return found


def construct_decoder() -> object:
    pytest.importorskip("construct", reason="construct (the bench extra) is not installed")
    return bench.make_replay_construct()


def clean_vectors() -> list[Path]:
    """Golden vectors the reader replays to the end without corruption."""
    out = []
    for path in sorted(VECTORS.glob("*.bin")):
        expected = json.loads(path.with_suffix(".json").read_text())
        if not expected.get("error"):
            out.append(path)
    return out


@pytest.mark.parametrize("path", clean_vectors(), ids=lambda p: p.stem)
def test_every_decoder_replays_the_golden_vectors_as_the_reader_does(path: Path) -> None:
    data = path.read_bytes()
    want = reader_tuples(data)
    for decode in decoders():
        assert list(decode(data)) == want, decode.__name__


@pytest.mark.parametrize("path", clean_vectors(), ids=lambda p: p.stem)
def test_the_construct_decoder_replays_the_golden_vectors_as_the_reader_does(path: Path) -> None:
    decode = construct_decoder()
    data = path.read_bytes()
    assert list(decode(data)) == reader_tuples(data)  # type: ignore[operator]


@pytest.mark.parametrize("name", ["corrupt_no_end", "corrupt_hash_too_short", "corrupt_end_misaligned",
                                  "corrupt_size_one", "corrupt_regular_too_long", "corrupt_crosses_boundary"])
def test_the_hand_written_decoder_checks_the_same_rules(name: str) -> None:
    """The ceiling it sets is that of a decoder doing the reader's job, validation included."""
    data = (VECTORS / f"{name}.bin").read_bytes()
    with pytest.raises(qjournal.CorruptJournalError):
        list(qjournal.read(data))
    with pytest.raises(bench.DecodeError):
        list(bench.replay_struct(data))


def test_built_journal_is_filled_as_d6_says() -> None:
    data = bytes(bench.build_journal(16 * LEN_CLUSTER))
    state = qjournal.read(data).state()
    # 81 SHA-256 entries (50 bytes) fit per cluster: 81 * 50 + 50 + 2 > 4096.
    goal = int(16 * LEN_CLUSTER * bench.FILL)
    clusters, rest = divmod(goal, LEN_CLUSTER)
    expected = clusters * 81 + -(-rest // 50)
    assert state.num_entries == expected and state.is_clean
    assert state.ofs_tail >= goal > state.ofs_tail - 50
    full = bench.build_journal(2 * LEN_CLUSTER, fill=1.0)  # full for SHA-256 entries
    assert qjournal.read(bytes(full)).state().num_entries == 2 * 81
    with qjournal.open_for_append(full) as w, pytest.raises(qjournal.JournalFullError):
        w.append(bench.hash_entries(1)[0])


def test_minimal_packer_writes_the_writers_bytes() -> None:
    entries = bench.hash_entries(300)
    buf = bytearray(b"\xff" * 4 * LEN_CLUSTER)
    packer = bench.MinimalPacker(buf)
    offsets = [packer.append_hash(e.digest, e.physical_sector, e.first_logical_sector) for e in entries]
    mem = bytearray()
    with qjournal.create(mem, 4) as w:
        placed = [w.append(e).ofs for e in entries]
    assert bytes(buf) == bytes(mem) and offsets == placed


def test_checksum_tells_decoders_apart() -> None:
    data = (VECTORS / "multi_cluster.bin").read_bytes()
    good = list(bench.replay_struct(data))
    bad = good[:-1] + [good[-1][:1] + (good[-1][1] + 1,) + good[-1][2:]]
    assert bench.checksum(good) == bench.checksum(bench.replay_public(data))
    assert bench.checksum(good) != bench.checksum(bad)


@pytest.mark.parametrize("text,value", [("64K", 65536), ("1M", 1 << 20), ("16MiB", 16 << 20), ("8192", 8192)])
def test_parse_size(text: str, value: int) -> None:
    assert bench.parse_size(text) == value


@pytest.mark.parametrize("text", ["0", "100", "1.5M", "-4K", "abc"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(Exception):
        bench.parse_size(text)


def test_smoke_run_prints_the_table_and_sane_json(tmp_path: Path) -> None:
    """A tiny run end to end (two small areas, one run per figure): every part, every row, sane figures."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "64K,128K", "--repeat", "1", "--sync-count", "5",
         "--budget", "5", "--pack-size", "256K", "--json", str(out), "--quiet"],
        check=False, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(qjournal.__file__).resolve().parents[1])},  # the qjournal under test
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    text = proc.stdout
    for heading in ("== replay", "== append, in memory", "== append to a file, no fsync", "== append to a file, with fsync",
                    "== open for append, full", "== memory", "== command line (python -m qjournal, a fresh process)",
                    "== JSON lines (formatting only)", "== check, worker processes", "== pack, memory",
                    "== start-up (a fresh process)", "== targets"):
        assert heading in text, heading
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    replay = [r for r in rows if r["group"] == "replay"]
    names = {r["name"] for r in replay}
    assert {bench.PUBLIC_PURE, "generated parser, stock stream", "hand-written struct decoder"} <= names
    compiled = bench.compiled_stream() is not None
    assert (bench.PUBLIC_COMPILED in names) == compiled
    assert (bench.CONSTRUCT in names) == (bench.make_replay_construct() is not None)
    for area in ("64 KiB", "128 KiB"):
        counts = {r["count"] for r in replay if r["area"] == area}
        len_area = 64 * 1024 if area == "64 KiB" else 128 * 1024
        assert counts == {qjournal.read(bytes(bench.build_journal(len_area))).state().num_entries}
        hand = next(r for r in replay if r["area"] == area and r["name"].startswith("hand"))
        assert hand["ratio"] == pytest.approx(1.0)
    for r in rows:
        assert r["seconds"] > 0 and r["runs"] >= 1
        if r["group"] != "memory":
            assert r["rate"] > 0
    full = {r["name"]: r for r in rows if r["group"] == "open for append, full"}
    opened = full["validation by replay"]
    assert opened["seconds"] > 0 and opened["extra"]["ms"] > 0
    memory = next(r for r in rows if r["group"] == "memory")
    assert 0 <= memory["rate"] < 64
    cli_rows = {r["name"]: r for r in rows if r["group"].startswith("command line")}
    assert set(cli_rows) == {"qjournal check", "qjournal dump --output jsonl"}
    n128 = qjournal.read(bytes(bench.build_journal(128 * 1024))).state().num_entries
    assert all(r["count"] == n128 and r["area"] == "128 KiB" for r in cli_rows.values())
    json_rows = [r for r in rows if r["group"] == "JSON lines (formatting only)"]
    assert len(json_rows) == 2 and json_rows[-1]["ratio"] == pytest.approx(1.0)
    jobs_rows = [r for r in rows if r["group"] == "check, worker processes"]
    assert len(jobs_rows) == 2 and "load_before" in jobs_rows[0]["extra"]
    pack = next(r for r in rows if r["group"] == "pack, memory")
    assert pack["area"] == "256 KiB" and 0 < pack["rate"] < 512 and pack["count"] > 0
    kinds = {t["target"] for t in doc["targets"]}
    # 4 ratio targets (replay with the pure stream, append, JSON lines, workers) and the compiled stream's replay, memory,
    # 2 of start-up, dump over check, pack; and where construct is installed, one against it per public API row
    with_construct = bench.CONSTRUCT in names
    assert len(kinds) == 9 + compiled + with_construct * (1 + compiled), kinds
    startup = {r["name"]: r for r in rows if r["group"] == bench.STARTUP_GROUP}
    assert set(startup) == {"qjournal --version", "qjournal info, one cluster", "python -c pass (same venv)"}
    assert startup["python -c pass (same venv)"]["ratio"] == pytest.approx(1.0)
    ratio = next(t for t in doc["targets"] if t["target"].startswith("dump --output jsonl <="))
    want = cli_rows["qjournal dump --output jsonl"]["seconds"] / cli_rows["qjournal check"]["seconds"]
    assert ratio["value"] == pytest.approx(want, abs=0.01)
    assert doc["environment"]["python"].startswith("3.")


def test_peak_rss_sees_a_real_allocation_and_not_the_parents() -> None:
    """The memory figure can fail: it rises with an allocation, and a child does not inherit its parent's peak."""
    code = (f"import sys; sys.path.insert(0, {str(BENCH.parent)!r}); "
            "from bench import peak_rss_kib; a = peak_rss_kib(); x = bytearray(96 << 20); "
            "x[::4096] = b'\\x01' * len(x[::4096]); print(a, peak_rss_kib())")
    hog = bytearray(256 << 20)  # this process's peak is now above 256 MiB
    hog[::4096] = b"\x01" * len(hog[::4096])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, proc.stdout.split())
    assert after - before >= 90 * 1024
    assert before < 200 * 1024, "the child's baseline inherited the parent's peak"
