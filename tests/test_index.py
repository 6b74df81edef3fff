"""qjournal.index against QEMU and the bytes: one HASH entry per distinct data cluster, counted like ``zdb -S``.

For every image QEMU made (tests/qemu_images.py TEST_IMAGES that qjournal.image
supports, and image_oracle.INDEX_IMAGES), what index writes and reports is
compared with what ``qemu-img map`` and the file's bytes say (image_oracle):
every entry's digest is the SHA-256 of the whole host cluster at its
physical sector, its sectors are the map's offsets / 512, entries come in
guest order, one per digest; the counts of unallocated, zero, compressed,
unique and duplicate clusters are the map's and the bytes'; allocated clusters
are ``qemu-img check``'s. Raw images: QEMU's own raw conversions, and files
made here. Then the journal's life: sized exactly, written in atomic
batches, never over existing bytes without ``force``, never over the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import image_oracle as oracle
import pytest
import qemu_images as qi
from helpers import as_hash, known

import qjournal
from qjournal.entries import HashEntry
from qjournal.errors import CorruptImageError, JournalArgumentError, JournalFullError, UnsupportedImageError
from qjournal.format import LEN_CLUSTER, clusters_for, tail_after
from qjournal.indexing import IndexReport, index
from qjournal.metadata import JournalMetadata, first_of
from qjournal.writer import JournalWriter

SUPPORTED = [s.name for s in qi.TEST_IMAGES if s.name not in oracle.UNSUPPORTED and s.name not in oracle.SUBCLUSTERED]
OWN = [s.name for s in oracle.INDEX_IMAGES]
SPECS = {s.name: s for s in (*qi.TEST_IMAGES, *oracle.INDEX_IMAGES)}
REPORT_KEYS = {"block_size", "num_allocated", "num_zero", "num_compressed", "num_unique", "num_duplicate", "len_saved",
               "dedup_ratio", "histogram"}


@pytest.fixture(scope="module")
def images(qemu_test_images: dict[str, qi.Image], index_images: dict[str, qi.Image]) -> dict[str, qi.Image]:
    return {**qemu_test_images, **index_images}


def entries_of(journal: Path) -> list[tuple[bytes, int, int]]:
    with qjournal.read(journal) as r:
        return [(e.digest, e.physical_sector, e.first_logical_sector) for e in r.replay() if isinstance(e, HashEntry)]


def assert_report_is(report: IndexReport, exp: oracle.Expected, cluster_size: int, num_clusters: int) -> None:
    got = {k: getattr(report, f"num_{k}") for k in ("allocated", "unallocated", "zero", "compressed", "unique", "duplicate", "shared")}
    assert got == {k: exp.counts.get(k, 0) for k in got}
    partition = ("unallocated", "zero", "unique", "duplicate", "shared")  # compressed blocks are among unique, duplicate, zero
    assert sum(got[k] for k in partition) == report.num_guest_clusters == num_clusters
    assert report.block_size == cluster_size
    assert report.histogram == exp.histogram
    assert report.len_saved == exp.counts["duplicate"] * cluster_size
    data = exp.counts["unique"] + exp.counts["duplicate"]
    assert report.dedup_ratio == (data / exp.counts["unique"] if exp.counts["unique"] else 1.0)
    assert report.len_read == exp.len_read
    assert report.num_entries == len(exp.entries)


def assert_journal_is_exact(journal: Path, report: IndexReport, num_entries: int) -> None:
    """Sized exactly for the metadata entry (D30) and the HASH entries (D6), no anomaly."""
    meta = JournalMetadata(**report.metadata)
    want = clusters_for(tail_after([meta.len_entry] + [50] * num_entries))
    assert report.num_clusters == want and journal.stat().st_size == want * LEN_CLUSTER
    check = qjournal.read(journal).check()
    assert check.problems == () and known(check.state).entries_by_type == ({"hash": num_entries, "0x71": 1} if num_entries
                                                                    else {"0x71": 1})
    assert first_of(journal) == (meta, None)


@pytest.mark.parametrize("name", SUPPORTED + OWN)
def test_index_agrees_with_qemu_img_map_and_the_bytes(name: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    image = images[name]
    info = image.info()
    cs, size = info["cluster-size"], info["virtual-size"]
    journal = tmp_path / "index.qjournal"
    report = index(image.path, journal)
    exp = oracle.expected_index(oracle.qemu_clusters(image, cs, size), image.path.read_bytes(), cs,
                                guest=oracle.own_guest_bytes(image))
    assert entries_of(journal) == exp.entries
    assert_report_is(report, exp, cs, -(-size // cs))
    assert report.num_allocated == image.check()["allocated-clusters"]
    assert (report.format, report.len_virtual_disk, report.image, report.journal) == ("qcow2", size, str(image.path), str(journal))
    assert_journal_is_exact(journal, report, len(exp.entries))
    data = image.path.read_bytes()
    for digest, physical, _ in exp.entries:  # the bytes at every entry's physical sector hash to its digest
        assert hashlib.sha256(data[physical * 512:physical * 512 + cs]).digest() == digest


@pytest.mark.parametrize("name, block_size", [
    ("extended_l2_c64k", 2048), ("extended_l2_c64k", 65536), ("extended_l2_c16k", 512), ("extended_l2_c16k", 4096),
    ("idx_v3_c2m", 65536), ("idx_compressed", 4096), ("idx_v2_c64k", 512), ("idx_snapshot", 16384)])
def test_index_in_blocks_below_the_cluster_size(name: str, block_size: int, images: dict[str, qi.Image], tmp_path: Path) -> None:
    """--block-size B <= the cluster size: a block inside a data cluster is contiguous in the file, so it is journaled
    at its own host offset; extended L2 images by subcluster; a block of several states is counted, not journaled."""
    image = images[name]
    journal = tmp_path / "j.qjournal"
    report = index(image.path, journal, block_size=block_size)
    units = oracle.block_units(image, block_size)
    exp = oracle.expected_index(units, image.path.read_bytes(), block_size, guest=oracle.own_guest_bytes(image))
    assert entries_of(journal) == exp.entries
    assert_report_is(report, exp, block_size, len(units))
    assert report.num_partial == exp.counts["partial"] and report.num_entries == len(exp.entries)
    if name.startswith("extended") and block_size > 4096:
        assert report.num_partial


def test_the_images_hold_every_case_index_counts(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """INDEX_IMAGES give index something to find of every kind: the test above is not vacuous."""
    total: Counter[str] = Counter()
    rows: set[str] = set()
    for name in OWN:
        report = index(images[name].path, tmp_path / f"{name}.qjournal")
        total.update({k: getattr(report, f"num_{k}") for k in ("unallocated", "zero", "compressed", "unique", "duplicate")})
        rows |= {row for row, n in report.histogram.items() if n}
    assert all(total[k] for k in ("unallocated", "zero", "compressed", "unique", "duplicate")), total
    assert {"1", "2", "3-4", "5-8", "9-16"} <= rows


def test_the_histogram_counts_what_the_guest_wrote(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """zdb -S rows from the guest data QEMU holds (qemu-img convert), cluster by cluster, independently of the map."""
    image = images["idx_v3_c4k"]
    report = index(image.path, tmp_path / "j.qjournal")
    guest = image.guest_bytes()
    cs = SPECS["idx_v3_c4k"].cluster_size
    refs = Counter(guest[i:i + cs] for i in range(0, len(guest), cs) if guest[i:i + cs].count(0) != cs)
    assert report.histogram == oracle.zdb_rows(refs)
    assert list(report.histogram) == ["1", "2", "3-4", "5-8", "9-16"] and all(report.histogram.values())
    assert report.num_duplicate == sum(refs.values()) - len(refs)
    assert report.len_saved == report.num_duplicate * cs and report.dedup_ratio == sum(refs.values()) / len(refs)


@pytest.mark.parametrize("name", ["idx_v3_c4k", "idx_v2_c64k", "idx_v3_c2m", "idx_snapshot", "v3_c64k"])
def test_the_raw_conversion_indexes_to_the_same_digests_at_the_same_guest_sectors(name: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    """qemu-img convert -O raw of an image without backing file or compressed clusters: the same entries by digest and
    logical sector, each now at physical = logical."""
    image = images[name]
    cs = SPECS[name].cluster_size
    raw = tmp_path / "guest.raw"
    raw.write_bytes(image.guest_bytes())
    qcow2 = index(image.path, tmp_path / "qcow2.qjournal")
    report = index(raw, tmp_path / "raw.qjournal", block_size=cs)
    assert report.format == "raw" and report.block_size == cs
    from_raw = entries_of(tmp_path / "raw.qjournal")
    assert [(d, g) for d, _, g in from_raw] == [(d, g) for d, _, g in entries_of(tmp_path / "qcow2.qjournal")]
    assert all(p == g for _, p, g in from_raw)
    assert (report.num_unique, report.num_duplicate) == (qcow2.num_unique, qcow2.num_duplicate)
    assert report.num_zero == qcow2.num_zero + qcow2.num_unallocated


def random_disk(block_size: int, seed: int) -> bytes:
    """Blocks drawn from a few random patterns (so that some repeat), zero blocks, and a partial block at the end."""
    rnd = random.Random(seed)
    patterns = [rnd.randbytes(block_size) for _ in range(5)] + [bytes(block_size)]
    blocks = [rnd.choice(patterns) if rnd.random() < 0.6 else rnd.randbytes(block_size) for _ in range(40)]
    return b"".join(blocks) + rnd.randbytes(block_size // 3 + 1)


@pytest.mark.parametrize("block_size", [512, 4096, 65536])
def test_a_raw_image_is_indexed_in_blocks_as_its_bytes_say(block_size: int, tmp_path: Path) -> None:
    data = random_disk(block_size, block_size)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    report = index(path, tmp_path / "j.qjournal", block_size=block_size)
    exp = oracle.expected_index(oracle.raw_units(len(data), block_size), data, block_size, raw=True)
    assert entries_of(tmp_path / "j.qjournal") == exp.entries
    assert_report_is(report, exp, block_size, -(-len(data) // block_size))
    assert exp.counts["duplicate"] and exp.counts["zero"] and report.len_read == len(data)


def test_the_journal_is_one_atomic_batch_written_as_the_writer_writes_entries(images: dict[str, qi.Image], tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Index streams every entry into one batch (D20: a reader sees none or all of them); the bytes are what
    appending the same entries one by one through the writer gives."""
    streams: list[int] = []
    real = JournalWriter.append_encoded

    def spy(self: JournalWriter, entries: Iterable[bytes]) -> int:
        n = real(self, entries)
        streams.append(n)
        return n

    monkeypatch.setattr(JournalWriter, "append_encoded", spy)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(random.Random(7).randbytes(200 * 4096))  # 200 entries: an END closes each of 2 clusters
    report = index(raw, tmp_path / "j.qjournal", block_size=4096)
    assert streams == [report.num_unique] == [200] and report.num_clusters == 3
    monkeypatch.undo()
    first, *entries = qjournal.read(str(tmp_path / "j.qjournal")).replay()
    with qjournal.create(str(tmp_path / "k.qjournal"), num_clusters=report.num_clusters) as w:
        w.append(first)  # the metadata entry (D30), appended before the batch
        for e in map(as_hash, entries):
            w.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
    assert (tmp_path / "j.qjournal").read_bytes() == (tmp_path / "k.qjournal").read_bytes()


@pytest.mark.parametrize("jobs", [1, 3])
def test_any_number_of_threads_writes_the_same_journal(jobs: int, images: dict[str, qi.Image], tmp_path: Path) -> None:
    image = images["idx_v2_c64k"].path
    index(image, tmp_path / "default.qjournal")
    index(image, tmp_path / "jobs.qjournal", jobs=jobs)
    assert (tmp_path / "default.qjournal").read_bytes() == (tmp_path / "jobs.qjournal").read_bytes()
    with pytest.raises(JournalArgumentError) as info:
        index(image, tmp_path / "zero.qjournal", jobs=0)
    assert str(info.value) == "jobs must be an integer >= 1 (hashing threads), not 0"
    assert not (tmp_path / "zero.qjournal").exists()


def test_progress_counts_the_guest_bytes_walked(images: dict[str, qi.Image], tmp_path: Path) -> None:
    seen: list[int] = []
    report = index(images["idx_v3_c4k"].path, tmp_path / "j.qjournal", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == report.len_virtual_disk and len(seen) >= 2


def test_an_error_midway_stops_the_threads_and_writes_nothing(images: dict[str, qi.Image], tmp_path: Path) -> None:
    def stop(done: int) -> None:
        raise RuntimeError(f"stopped at {done}")

    with pytest.raises(RuntimeError, match="stopped at"):
        index(images["idx_v3_c2m"].path, tmp_path / "j.qjournal", progress=stop)
    assert not [t for t in threading.enumerate() if t.name.startswith("qjournal-hash")]
    assert not (tmp_path / "j.qjournal").exists()


def test_the_report_is_json(images: dict[str, qi.Image], tmp_path: Path) -> None:
    report = index(images["idx_snapshot"].path, tmp_path / "j.qjournal")
    d = report.to_dict()
    assert set(d) >= REPORT_KEYS and json.loads(json.dumps(d)) == d
    assert d["len_saved"] == report.len_saved and d["dedup_ratio"] == report.dedup_ratio


def test_an_in_memory_journal(images: dict[str, qi.Image], tmp_path: Path) -> None:
    buf = bytearray()
    report = index(images["idx_top"].path, buf)
    index(images["idx_top"].path, tmp_path / "j.qjournal")
    assert bytes(buf) == (tmp_path / "j.qjournal").read_bytes() and report.journal == "<bytes>"


# -- what index never does ---------------------------------------------------------------------------------


def test_an_existing_journal_is_not_replaced_without_force(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image = images["idx_v3_c4k"].path
    journal = tmp_path / "j.qjournal"
    journal.write_bytes(b"\xff" * LEN_CLUSTER)
    with pytest.raises(JournalArgumentError) as info:
        index(image, journal)
    assert str(info.value) == (f"{journal}: the journal already exists (it holds bytes at offset 0x0): index makes a new "
                               f"journal and does not replace one without force=True")
    assert info.value.message(cli=True).endswith("without --force")
    assert journal.read_bytes() == b"\xff" * LEN_CLUSTER
    empty = tmp_path / "empty.qjournal"
    empty.write_bytes(b"")
    report = index(image, empty)  # an empty file holds nothing to lose
    assert empty.stat().st_size == report.num_clusters * LEN_CLUSTER


def test_force_replaces_a_journal_in_its_own_area(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """D24: the existing journal (nothing but 0xFF past its tail) is reset and refilled; it keeps its size."""
    image = images["idx_v3_c4k"].path
    journal = tmp_path / "j.qjournal"
    with qjournal.create(journal, 40) as w:
        w.append_hash(b"\x01" * 32, 1, 2)
    report = index(image, journal, force=True)
    assert journal.stat().st_size == 40 * LEN_CLUSTER and report.num_clusters == 40
    index(image, tmp_path / "fresh.qjournal")
    assert entries_of(journal) == entries_of(tmp_path / "fresh.qjournal")
    assert qjournal.read(journal).check().problems == ()


def test_force_refuses_a_journal_too_small_before_writing(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(random.Random(5).randbytes(300 * 512))  # 300 distinct blocks: 4 journal clusters
    journal = tmp_path / "j.qjournal"
    with qjournal.create(journal, 1) as w:
        w.append_hash(b"\x01" * 32, 1, 2)
    before = journal.read_bytes()
    with pytest.raises(JournalFullError) as info:
        index(image, journal, force=True, block_size=512)
    n = index(image, tmp_path / "fresh.qjournal", block_size=512).num_unique
    need = clusters_for(tail_after([50] * n))
    assert str(info.value) == (f"{journal}: journal full: the {n} entries of the index need {need} clusters and the existing "
                               f"journal has 1 (it keeps its size); nothing was written: remove it, and index makes a "
                               f"journal of the exact size")
    assert journal.read_bytes() == before


def test_force_refuses_a_file_that_holds_no_journal(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """Without a length, a file that is no journal may be someone's data: refused, nothing written (D24)."""
    image = images["idx_v3_c4k"].path
    other = tmp_path / "photo.jpg"
    other.write_bytes(random.Random(3).randbytes(3 * LEN_CLUSTER))
    before = other.read_bytes()
    with pytest.raises(JournalArgumentError) as info:
        index(image, other, force=True)
    rule = qjournal.read(other).check().problems[0]
    assert str(info.value) == (f"{other}: refusing to replace it with force=True: it holds no journal ({rule.code} at "
                               f"{rule.ofs:#x}); index replaces only a journal with nothing but 0xFF past its tail, so that "
                               f"a wrong path never costs a file's data; nothing was written")
    assert other.read_bytes() == before
    with qjournal.create(other, 3, force=True) as w:  # a journal, then someone's bytes past its tail
        w.append_hash(b"\x01" * 32, 1, 2)
    with open(other, "r+b") as f:
        f.seek(5000)
        f.write(b"data")
    before = other.read_bytes()
    with pytest.raises(JournalArgumentError) as info:
        index(image, other, force=True)
    assert "past its journal's tail at 0x32 it holds bytes other than 0xFF (the first at 0x1388)" in str(info.value)
    assert other.read_bytes() == before


def test_the_image_is_never_the_journal_nor_written(images: dict[str, qi.Image], tmp_path: Path) -> None:
    path = tmp_path / "disk.qcow2"
    shutil.copy(images["idx_v3_c4k"].path, path)
    os.utime(path, ns=(10**9, 10**9))
    before = path.read_bytes()
    for force in (False, True):
        with pytest.raises(JournalArgumentError) as info:
            index(path, path, force=force)
        assert str(info.value) == f"{path}: the journal is the image itself: index never writes the image"
    index(path, tmp_path / "j.qjournal")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == 10**9


@pytest.mark.parametrize("name", list(oracle.UNSUPPORTED))
def test_an_unsupported_image_is_refused_before_a_journal_is_made(name: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImageError) as info:
        index(images[name].path, tmp_path / "j.qjournal")
    assert info.value.code == oracle.UNSUPPORTED[name] and "\n" not in str(info.value)
    assert not (tmp_path / "j.qjournal").exists()


def test_a_block_size_larger_than_the_clusters_is_refused(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """A block of several clusters has no host offset of its own: refused, never silently ignored; smaller ones are honoured."""
    image = images["idx_v3_c4k"].path
    with pytest.raises(JournalArgumentError) as info:
        index(image, tmp_path / "j.qjournal", block_size=65536)
    assert str(info.value) == (f"{image}: a block of 65536 bytes is larger than the image's 4096-byte clusters: it has no "
                               f"host offset of its own to journal; block_size= is at most the cluster size (qjournal "
                               f"analyze reports any block size)")
    assert not (tmp_path / "j.qjournal").exists()
    assert index(images["idx_v2_c64k"].path, tmp_path / "j.qjournal", block_size=4096).block_size == 4096
    assert index(image, tmp_path / "k.qjournal").block_size == 4096  # default: the cluster size


def test_a_data_cluster_past_the_end_of_the_file_is_reported(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """A truncated image: the last data cluster's host offset lies past the end; nothing is written."""
    data = images["idx_v2_c64k"].path.read_bytes()
    path = tmp_path / "cut.qcow2"
    with qjournal.image.open_image(images["idx_v2_c64k"].path) as img:
        last = max((g for g in img.guest_clusters() if g.kind is qjournal.Kind.DATA), key=lambda g: known(g.ofs_host))
    host = known(last.ofs_host)
    path.write_bytes(data[:host + 100])
    with pytest.raises(CorruptImageError) as info:
        index(path, tmp_path / "j.qjournal")
    assert (info.value.code, str(info.value)) == ("truncated", (
        f"{path}: offset {host:#x} ({host}): the data cluster of guest offset {last.ofs_guest:#x} lies "
        f"at host offset {host:#x}, past the end of the file ({host + 100} bytes)"))
    assert not (tmp_path / "j.qjournal").exists()


def test_a_zero_flag_in_a_version_2_image_stops_the_index(images: dict[str, qi.Image], tmp_path: Path) -> None:
    path = tmp_path / "v2.qcow2"
    data = bytearray(images["idx_v2_c64k"].path.read_bytes())
    l2 = struct.unpack_from(">Q", data, struct.unpack_from(">Q", data, 40)[0])[0] & 0x00FF_FFFF_FFFF_FE00
    data[l2 + 7] |= 1
    path.write_bytes(data)
    with pytest.raises(CorruptImageError) as info:
        index(path, tmp_path / "j.qjournal")
    assert info.value.code == "zero_in_v2" and info.value.offset == l2
    assert not (tmp_path / "j.qjournal").exists()


def test_a_cluster_already_shared_is_counted_once(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """Two guest clusters mapped to one host cluster (refcount > 1, as a deduplicated image has; made here by copying an
    L2 entry): the second is "shared", not a duplicate, and saves nothing."""
    src = images["idx_v2_c64k"]
    path = tmp_path / "dedup.qcow2"
    data = bytearray(src.path.read_bytes())
    l2 = struct.unpack_from(">Q", data, struct.unpack_from(">Q", data, 40)[0])[0] & 0x00FF_FFFF_FFFF_FE00
    before = index(src.path, tmp_path / "before.qjournal")
    assert data[l2 + 8 * 30 : l2 + 8 * 31] == bytes(8)
    data[l2 + 8 * 30 : l2 + 8 * 31] = data[l2 : l2 + 8]  # guest cluster 30 (unallocated) now maps to cluster 0's host cluster
    host = struct.unpack_from(">Q", data, l2)[0] & 0x00FF_FFFF_FFFF_FE00
    block = struct.unpack_from(">Q", data, struct.unpack_from(">Q", data, 48)[0])[0] & ~0x1FF  # the first refcount block
    struct.pack_into(">H", data, block + 2 * (host >> 16), 2)  # refcount 2 (16-bit refcounts of 64 KiB clusters)
    for k in (0, 30):  # and COPIED (bit 63) clear, as a shared cluster's entries have it
        data[l2 + 8 * k] &= 0x7F
    path.write_bytes(data)
    assert qi.run_qemu(["qemu-img", "check", str(path)], check=False).returncode == 0
    qemu = qi.run_qemu(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x11 1920k 64k", str(path)], check=False)
    assert "read 65536/65536 bytes" in qemu.stdout, qemu  # QEMU reads cluster 0's data there
    after = index(path, tmp_path / "after.qjournal")
    assert (after.num_shared, after.num_duplicate, after.num_unique) == (1, before.num_duplicate, before.num_unique)
    assert after.len_saved == before.len_saved and after.num_referenced == before.num_referenced + 1
    assert after.num_unallocated == before.num_unallocated - 1 and after.histogram != before.histogram
    assert entries_of(tmp_path / "after.qjournal") == entries_of(tmp_path / "before.qjournal")


def test_an_empty_terabyte_disk_is_counted_without_a_walk_of_its_blocks(tmp_path: Path) -> None:
    """Unallocated runs are counted, not visited: 268 million 4 KiB blocks, no batch, an empty journal."""
    qi.require_qemu()
    path = tmp_path / "empty.qcow2"
    qi.run_qemu(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", str(path), "1T"])
    report = index(path, tmp_path / "j.qjournal")
    assert report.num_guest_clusters == report.num_unallocated == (1 << 40) // 4096
    assert report.num_entries == report.num_allocated == report.len_read == 0
