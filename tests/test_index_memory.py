"""index in bounded memory: what it knows of each digest spills to SQLite, and the answer does not change.

The same image is indexed with the default memory limit and with one so small
that the digest map spills at every batch: the report and the journal's bytes
must be the same. A deduplicated image (``qjournal dedup``'s target, whose
host clusters are shared) checks the *shared* count against its source's
duplicates. The entries index spools reach the journal through
``JournalWriter.append_encoded``, whose checks are tested here too.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi

import qjournal
from qjournal import dedup_map, indexing
from qjournal.entries import encode_hash
from qjournal.errors import JournalArgumentError
from qjournal.writer import JournalWriter


def repeats_raw(path: Path, *, num_blocks: int, block: int, seed: int) -> Path:
    """A raw image of ``num_blocks`` random blocks, about a third of them copies of earlier ones, some of zeros."""
    rnd = random.Random(seed)
    blocks: list[bytes] = []
    with open(path, "wb") as f:
        for _ in range(num_blocks):
            r = rnd.random()
            data = rnd.choice(blocks) if blocks and r < 0.35 else bytes(block) if r < 0.4 else rnd.randbytes(block)
            blocks.append(data)
            f.write(data)
    return path


def report_of(report: qjournal.IndexReport) -> dict[str, Any]:
    return report.to_dict() | {"journal": None}


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a digest map spilled (its size then)."""
    calls: list[int] = []
    real = dedup_map.DigestMap._flush

    def spy(self: dedup_map.DigestMap) -> None:
        calls.append(len(self.mapping))
        real(self)

    monkeypatch.setattr(dedup_map.DigestMap, "_flush", spy)
    return calls


@pytest.mark.parametrize("block", [512, 4096])
def test_a_spilled_index_writes_the_same_journal_and_report(tmp_path: Path, flushes: list[int], block: int) -> None:
    image = repeats_raw(tmp_path / "disk.raw", num_blocks=(12 << 20) // block, block=block, seed=block)  # 3 batches
    alone = indexing.index(image, tmp_path / "memory.qjournal", block_size=block)
    assert flushes == []
    spilled = indexing.index(image, tmp_path / "spilled.qjournal", block_size=block, memory_limit=1, spill_dir=tmp_path)
    assert len(flushes) >= 2, "the map spilled after each batch, and was read back from SQLite"
    assert report_of(spilled) == report_of(alone)
    assert alone.num_duplicate > 500 and alone.num_zero > 50
    assert (tmp_path / "spilled.qjournal").read_bytes() == (tmp_path / "memory.qjournal").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw", "memory.qjournal", "spilled.qjournal"]


def test_references_past_the_values_field_are_counted_beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = repeats_raw(tmp_path / "disk.raw", num_blocks=2000, block=512, seed=3)
    alone = indexing.index(image, tmp_path / "a.qjournal", block_size=512)
    assert max(int(k.split("-")[-1]) for k in alone.histogram) >= 8, "some digest has many references"
    monkeypatch.setattr(indexing, "_REFS", 3)  # the field saturates at 3 references
    narrow = indexing.index(image, tmp_path / "b.qjournal", block_size=512, memory_limit=1)
    assert report_of(narrow) == report_of(alone)
    assert (tmp_path / "a.qjournal").read_bytes() == (tmp_path / "b.qjournal").read_bytes()


def test_a_deduplicated_image_has_shared_clusters_where_its_source_had_duplicates(tmp_path: Path,
                                                                                   flushes: list[int]) -> None:
    qi.require_qemu()
    raw = repeats_raw(tmp_path / "src.raw", num_blocks=200, block=65536, seed=9)
    source = tmp_path / "src.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(source)], check=True)
    target = tmp_path / "dedup.qcow2"
    qjournal.dedup(source, target)
    before = indexing.index(source, tmp_path / "src.qjournal")
    after = indexing.index(target, tmp_path / "t1.qjournal")
    spilled = indexing.index(target, tmp_path / "t2.qjournal", memory_limit=1)
    assert flushes
    assert report_of(spilled) == report_of(after)
    assert (tmp_path / "t1.qjournal").read_bytes() == (tmp_path / "t2.qjournal").read_bytes()
    assert before.num_duplicate > 30 and before.num_shared == 0
    assert (after.num_shared, after.num_duplicate, after.num_unique) == (before.num_duplicate, 0, before.num_unique)
    assert after.histogram == before.histogram and after.len_saved == 0


def test_append_encoded_takes_entries_as_bytes_and_refuses_what_is_not_one() -> None:
    good = [encode_hash(bytes([i]) * 32, i, 2 * i) for i in range(200)]
    one, other = bytearray(b"\xff" * 4096 * 4), bytearray(b"\xff" * 4096 * 4)
    with JournalWriter(one) as w, JournalWriter(other) as v:
        assert w.append_encoded(iter(good)) == 200
        for i in range(200):
            v.append_hash(bytes([i]) * 32, i, 2 * i)
    assert one == other
    bad = {
        "size byte not its length": bytes([49]) + good[0][1:],
        "an END": bytes([4, 0x01, 0, 0]),
        "a NONE": bytes([4, 0xFF, 0, 0]),
        "a HASH of 18 bytes": bytes([18, 0x02]) + bytes(16),
        "one byte": b"\x01",
        "255 bytes": bytes([255]) + bytes(254),
    }
    for why, data in bad.items():
        area = bytearray(b"\xff" * 4096 * 2)
        with JournalWriter(area) as w:
            with pytest.raises(JournalArgumentError, match="entry 3 of the batch") as info:
                w.append_encoded([good[0], good[1], data])
            assert "is not one entry a writer appends" in str(info.value), why
        assert area == bytearray(b"\xff" * 4096 * 2), why
