"""qjournal.verify: clean on the index's own journal, and each problem reported exactly where it is.

The journals checked are the ones qjournal.index writes for images QEMU made;
problems are provoked by QEMU (the guest rewrites a cluster, with and without a
snapshot holding the old one; the guest zeroes one), by damaging one byte of
an image in place, and by appending entries that break one field each to a
copy of the journal. The expected problems follow from the map of the image
(``qemu-img map``) and from the bytes, never from verify's own mapping.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import image_oracle as oracle
import pytest
import qemu_images as qi
from helpers import as_hash, known

import qjournal
from qjournal.errors import CorruptJournalError, JournalArgumentError
from qjournal.indexing import index
from qjournal.verifying import VERIFY_PROBLEMS, VerifyReport, live_hash_entries, verify

SUPPORTED = [s.name for s in qi.TEST_IMAGES if s.name not in oracle.UNSUPPORTED]
OWN = [s.name for s in oracle.INDEX_IMAGES]
SPECS = {s.name: s for s in (*qi.TEST_IMAGES, *oracle.INDEX_IMAGES)}


@pytest.fixture(scope="module")
def images(qemu_test_images: dict[str, qi.Image], index_images: dict[str, qi.Image]) -> dict[str, qi.Image]:
    return {**qemu_test_images, **index_images}


def copy_image(image: qi.Image, directory: Path) -> qi.Image:
    """A copy of the image and its backing files, to change."""
    directory.mkdir(parents=True, exist_ok=True)
    for link in image.chain():
        shutil.copy(link.path, directory / link.path.name)
    return qi.Image(directory / image.path.name, image.spec)


def indexed(image: qi.Image, tmp_path: Path) -> tuple[qi.Image, Path, list[qjournal.HashEntry]]:
    """A copy of the image, its index, and the index's entries (with their offsets)."""
    copy = copy_image(image, tmp_path / "image")
    journal = tmp_path / "index.qjournal"
    index(copy.path, journal)
    with qjournal.read(journal) as r:
        return copy, journal, [e for e in r.replay() if isinstance(e, qjournal.HashEntry)]


def without_metadata(journal: Path) -> Path:
    """A copy of the journal without its metadata entry (D30): a journal as index wrote before it had one."""
    bare = journal.with_suffix(".bare")
    with qjournal.read(journal) as r:
        entries = [e for e in r.replay() if isinstance(e, qjournal.HashEntry)]
    with qjournal.create(bare, journal.stat().st_size // 4096) as w:
        w.append_many(entries)
    return bare


def problems(report: VerifyReport) -> list[tuple[int, str]]:
    return [(m.ofs, m.code) for m in report.mismatches]


def append(journal: Path, *entries: qjournal.HashEntry) -> list[int]:
    """Append entries to the journal (growing it by a cluster first); their offsets."""
    data = journal.read_bytes()
    grown = journal.with_suffix(".grown")
    with qjournal.read(data) as r:
        old = list(r.replay())
    with qjournal.create(grown, len(data) // 4096 + 1) as w:
        w.append_many(old)
        placed = w.append_many(list(entries))
    os.replace(grown, journal)
    return [known(e.ofs) for e in placed]


def units_of(image: qi.Image) -> list[oracle.Unit]:
    spec = image.spec
    return oracle.qemu_clusters(image, spec.cluster_size, spec.size)


@pytest.mark.parametrize("name", SUPPORTED + OWN)
def test_verify_is_clean_on_the_index_of_every_image(name: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    journal = tmp_path / "j.qjournal"
    made = index(images[name].path, journal)
    report = verify(journal, images[name].path)
    assert (report.num_checked, report.num_mismatched, report.mismatches) == (made.num_entries, 0, ())
    assert report.is_clean and report.len_read == made.num_entries * made.block_size
    assert (report.format, report.block_size) == ("qcow2", made.block_size)


@pytest.mark.parametrize("name", ["idx_v3_c4k", "idx_v2_c64k", "idx_v3_c2m", "idx_snapshot", "v3_c512"])
def test_one_damaged_cluster_is_exactly_the_entry_reported(name: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, entries = indexed(images[name], tmp_path)
    victim = entries[len(entries) // 2]
    cs = image.spec.cluster_size
    data = bytearray(image.path.read_bytes())
    ofs = victim.physical_sector * 512
    data[ofs + cs // 3] ^= 0x01
    image.path.write_bytes(data)
    report = verify(journal, image.path)
    assert problems(report) == [(victim.ofs, "data_changed")] and report.num_mismatched == 1
    (m,) = report.mismatches
    actual = hashlib.sha256(data[ofs:ofs + cs]).hexdigest()
    assert (m.digest, m.physical_sector, m.first_logical_sector) == (victim.digest, victim.physical_sector,
                                                                     victim.first_logical_sector)
    assert m.reason == f"the {cs}-byte cluster at host offset {ofs:#x} hashes (sha256) to {actual}, not to the entry's digest"
    assert m.message() == f"entry at offset {victim.ofs:#x} ({victim.ofs}): [data_changed] {m.reason}"


def test_a_damaged_duplicate_is_not_the_entrys_cluster(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """The journal names the first cluster of each digest: a later copy changing is no problem of the entry."""
    image, journal, entries = indexed(images["idx_v3_c4k"], tmp_path)
    data = bytearray(image.path.read_bytes())
    firsts = {e.physical_sector * 512 for e in entries}
    units = [u for u in units_of(image) if u.kind == "data"]
    cs = image.spec.cluster_size
    dup = next(u for u in units if u.ofs_host not in firsts and data[known(u.ofs_host):known(u.ofs_host) + cs].count(0) != cs)
    data[known(dup.ofs_host)] ^= 0xFF
    image.path.write_bytes(data)
    assert verify(journal, image.path).is_clean


def qemu_io(image: qi.Image, *commands: str) -> None:
    qi.run_qemu(["qemu-io", "-f", "qcow2", *[a for c in commands for a in ("-c", c)], str(image.path)], cwd=image.directory)


def test_a_guest_rewrite_changes_the_data_in_place(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, entries = indexed(images["idx_v2_c64k"], tmp_path)
    victim = entries[1]
    qemu_io(image, f"write -P 0xee {victim.first_logical_sector * 512} 4096")
    host = next(u.ofs_host for u in units_of(image) if u.ofs_guest == victim.first_logical_sector * 512)
    assert host == victim.physical_sector * 512, "QEMU moved the cluster: this test wants it rewritten in place"
    assert problems(verify(journal, image.path)) == [(victim.ofs, "data_changed")]


def test_a_rewrite_after_a_snapshot_moves_the_guest_cluster(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """Copy on write: the snapshot keeps the old cluster (its data still matches), the guest's cluster is elsewhere."""
    image, journal, entries = indexed(images["idx_v3_c4k"], tmp_path)
    victim = entries[2]
    qi.run_qemu(["qemu-img", "snapshot", "-c", "before", str(image.path)], cwd=image.directory)
    qemu_io(image, f"write -P 0xee {victim.first_logical_sector * 512} 4096")
    host = next(u.ofs_host for u in units_of(image) if u.ofs_guest == victim.first_logical_sector * 512)
    report = verify(journal, image.path)
    assert problems(report) == [(victim.ofs, "logical_elsewhere")]
    assert report.mismatches[0].reason == (
        f"guest offset {victim.first_logical_sector * 512:#x} (first_logical_sector {victim.first_logical_sector}) maps to "
        f"host offset {host:#x}, not to {victim.physical_sector * 512:#x} (physical_sector {victim.physical_sector})")


def test_a_zeroed_guest_cluster_is_no_data_cluster(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, entries = indexed(images["idx_v3_c4k"], tmp_path)
    victim = entries[0]
    qemu_io(image, f"write -z {victim.first_logical_sector * 512} 4096")
    unit = next(u for u in units_of(image) if u.ofs_guest == victim.first_logical_sector * 512)
    assert unit.kind == "zero"
    ofs = victim.physical_sector * 512
    changed = hashlib.sha256(image.path.read_bytes()[ofs:ofs + 4096]).digest() != victim.digest  # QEMU 7.2 keeps the bytes
    assert problems(verify(journal, image.path)) == [(victim.ofs, "data_changed")] * changed + [(victim.ofs, "logical_not_data")]


def test_each_field_of_an_entry_is_checked(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """One appended entry per problem kind; each is reported alone, or with the problem it cannot avoid."""
    image, journal, entries = indexed(images["idx_compressed"], tmp_path)
    journal = without_metadata(journal)  # the digest's length names the algorithm: no metadata entry says it (D30)
    cs = image.spec.cluster_size
    units = units_of(image)
    data_units = [u for u in units if u.kind == "data"]
    good = entries[0]
    other = next(u for u in data_units if u.ofs_host != good.physical_sector * 512)
    unallocated = next(u for u in units if u.kind == "unallocated")
    compressed = next(u for u in units if u.kind == "compressed")
    end = -(-image.path.stat().st_size // cs) * cs
    rnd = random.Random(7)
    fresh = iter([rnd.randbytes(32) for _ in range(20)])
    d, p, g = good.digest, good.physical_sector, good.first_logical_sector
    cases = {
        "physical_past_end": (qjournal.HashEntry(next(fresh), end // 512, g), ["physical_past_end", "logical_elsewhere"]),
        "physical_unaligned": (qjournal.HashEntry(next(fresh), p + 1, g), ["physical_unaligned", "logical_elsewhere"]),
        "data_changed": (qjournal.HashEntry(next(fresh), p, g), ["data_changed"]),
        "logical_unaligned": (qjournal.HashEntry(d, p, g + 1), ["logical_unaligned"]),
        "logical_past_end": (qjournal.HashEntry(next(fresh), p, image.spec.size // 512), ["data_changed", "logical_past_end"]),
        "logical_unallocated": (qjournal.HashEntry(next(fresh), p, unallocated.ofs_guest // 512), ["data_changed", "logical_not_data"]),
        "logical_compressed": (qjournal.HashEntry(next(fresh), p, compressed.ofs_guest // 512), ["data_changed", "logical_not_data"]),
        "logical_elsewhere": (qjournal.HashEntry(next(fresh), p, other.ofs_guest // 512), ["data_changed", "logical_elsewhere"]),
        "digest_length": (qjournal.HashEntry(b"\x01" * 16, p, g), ["digest_length"]),
    }
    offsets = append(journal, *(entry for entry, _ in cases.values()))
    report = verify(journal, image.path)
    want = [(ofs, code) for ofs, (_, codes) in zip(offsets, cases.values(), strict=True) for code in codes]
    assert problems(report) == want, (offsets, problems(report))
    assert report.num_mismatched == len(cases) and report.num_checked == len(entries) - 1 + len(cases)
    reasons = {(m.ofs, m.code): m.reason for m in report.mismatches}
    at = dict(zip(cases, offsets, strict=True))
    assert reasons[at["logical_unallocated"], "logical_not_data"] == (
        f"guest offset {unallocated.ofs_guest:#x} (first_logical_sector {unallocated.ofs_guest // 512}) is unallocated in "
        f"this image (a backing file's clusters are not its own)")
    assert reasons[at["logical_compressed"], "logical_not_data"].endswith("is a compressed cluster")
    assert reasons[at["digest_length"], "digest_length"] == (
        "a digest of 16 bytes names no hash algorithm (SHA-1 20, SHA-256 32, SHA-512 64): give it with ${hash_name}")
    m = next(m for m in report.mismatches if m.code == "digest_length")
    assert m.message().endswith("give it with hash_name=") and m.message(cli=True).endswith("give it with --hash-name")
    assert reasons[at["physical_past_end"], "physical_past_end"] == (
        f"the {cs}-byte cluster at host offset {end:#x} (physical_sector {end // 512}) is past the end of the file "
        f"({image.path.stat().st_size} bytes)")
    assert reasons[at["logical_unaligned"], "logical_unaligned"] == (
        f"first_logical_sector {g + 1} is guest offset {(g + 1) * 512:#x}, not a multiple of the cluster size {cs}")
    assert {code for _, code in want} | {"logical_unreadable"} == set(VERIFY_PROBLEMS)


def test_an_unreadable_mapping_is_reported_for_its_entry(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, entries = indexed(images["idx_v3_c4k"], tmp_path)
    victim = entries[0]
    data = bytearray(image.path.read_bytes())
    l1 = int.from_bytes(data[40:48], "big")
    l2 = int.from_bytes(data[l1:l1 + 8], "big") & 0x00FF_FFFF_FFFF_FE00
    pos = l2 + 8 * (victim.first_logical_sector * 512 // image.spec.cluster_size)
    data[pos + 6] |= 0x02  # host offset + 512: not cluster-aligned
    image.path.write_bytes(data)
    report = verify(journal, image.path)
    assert problems(report) == [(victim.ofs, "logical_unreadable")]
    assert report.mismatches[0].reason.startswith(
        f"the mapping of guest offset {victim.first_logical_sector * 512:#x} cannot be read: {image.path}: offset {pos:#x}")


def test_only_live_entries_are_checked(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """D9: the last entry per digest replaces the earlier ones."""
    image, journal, entries = indexed(images["idx_v3_c4k"], tmp_path)
    e = entries[0]
    bad = qjournal.HashEntry(e.digest, e.physical_sector + 8, e.first_logical_sector)
    append(journal, bad, qjournal.HashEntry(e.digest, e.physical_sector, e.first_logical_sector))
    assert verify(journal, image.path).is_clean
    (ofs,) = append(journal, bad)
    assert {o for o, _ in problems(verify(journal, image.path))} == {ofs}
    assert [x.ofs for x in live_hash_entries(journal)].count(ofs) == 1


@pytest.mark.parametrize("algo", ["sha1", "sha512"])
def test_the_digest_length_names_the_algorithm(algo: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, _journal, entries = indexed(images["idx_v2_c64k"], tmp_path)
    data = image.path.read_bytes()
    cs = image.spec.cluster_size
    other = tmp_path / f"{algo}.qjournal"
    rehashed = [qjournal.HashEntry(hashlib.new(algo, data[e.physical_sector * 512:e.physical_sector * 512 + cs]).digest(),
                                   e.physical_sector, e.first_logical_sector) for e in entries]
    with qjournal.create(other, 4) as w:
        w.append_many(rehashed)
    assert verify(other, image.path).is_clean
    assert verify(other, image.path, hash_name=algo.upper()).is_clean
    report = verify(other, image.path, hash_name="sha256")
    assert {p for _, p in problems(report)} == {"digest_length"} and report.num_mismatched == len(entries)
    assert report.mismatches[0].reason == f"a digest of {len(rehashed[0].digest)} bytes, but sha256 digests are 32 bytes"


def test_a_hash_name_of_the_same_length_checks_the_data(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, entries = indexed(images["idx_v2_c64k"], tmp_path)
    with pytest.raises(JournalArgumentError) as refused:  # the metadata entry says sha256 (D30)
        verify(journal, image.path, hash_name="blake2s")
    assert str(refused.value) == (f"{journal}: the journal's metadata entry (D30) says its digests are sha256: "
                                  f"hash_name= blake2s contradicts it; leave hash_name= out")
    journal = without_metadata(journal)
    report = verify(journal, image.path, hash_name="blake2s")  # 32 bytes, another function
    assert [p for _, p in problems(report)] == ["data_changed"] * len(entries)
    for bad in ("md6", "shake_128", 3):
        with pytest.raises(JournalArgumentError) as info:
            verify(journal, image.path, hash_name=bad)  # type: ignore[arg-type]
        assert str(info.value) in (f"hash_name= {bad!r} is not a hash algorithm hashlib offers",
                                   f"hash_name= {bad!r} has no fixed digest length")


def test_a_raw_image_is_checked_in_its_blocks(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    rnd = random.Random(11)
    blocks = [rnd.randbytes(4096) for _ in range(6)]
    path.write_bytes(b"".join(blocks + blocks[:2] + [bytes(4096)]) + rnd.randbytes(1000))
    journal = tmp_path / "j.qjournal"
    made = index(path, journal, block_size=4096)
    assert verify(journal, path, block_size=4096).is_clean and made.num_unique == 7
    assert verify(journal, path).is_clean  # the metadata entry says the block size (D30)
    journal = without_metadata(journal)
    report = verify(journal, path)  # 65536-byte blocks: the journal's 4 KiB blocks do not line up
    assert report.block_size == 65536
    with qjournal.read(journal) as r:
        entries = list(r.replay())
    aligned = [e for e in entries if as_hash(e).physical_sector * 512 % 65536 == 0]
    assert {(m.ofs, m.code) for m in report.mismatches} == (
        {(e.ofs, "physical_unaligned") for e in entries if e not in aligned}
        | {(e.ofs, "logical_unaligned") for e in entries if e not in aligned}
        | {(e.ofs, "data_changed") for e in aligned})
    m = next(m for m in report.mismatches if m.code == "physical_unaligned")
    assert m.message().endswith("not a multiple of the block size (block_size=) 65536")
    assert m.message(cli=True).endswith("not a multiple of the block size (--block-size) 65536")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # the last, partial block: hashed as the file holds it
    path.write_bytes(data)
    last = as_hash(entries[-1])
    assert last.physical_sector * 512 == 9 * 4096
    assert problems(verify(journal, path, block_size=4096)) == [(last.ofs, "data_changed")]


def test_a_qcow2_image_is_checked_in_the_blocks_it_was_indexed_in(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """The cluster size unless told; a smaller block size checks an index made at it; a larger one is refused."""
    path = images["idx_v2_c64k"].path
    journal = tmp_path / "j.qjournal"
    index(path, journal)
    assert verify(journal, path, block_size=65536).is_clean
    small = tmp_path / "small.qjournal"
    made = index(path, small, block_size=4096)
    report = verify(small, path, block_size=4096)
    assert report.is_clean and report.block_size == 4096 and report.num_checked == made.num_entries
    assert verify(small, path).block_size == 4096  # the metadata entry says the block size (D30)
    bare = without_metadata(small)
    assert not verify(bare, path).is_clean  # 4 KiB blocks checked as 64 KiB clusters do not line up
    with pytest.raises(JournalArgumentError) as refused:
        verify(small, path, block_size=65536)
    assert str(refused.value) == (f"{small}: the journal's metadata entry (D30) says its entries name blocks of 4096 "
                                  f"bytes: block_size= 65536 contradicts it; leave block_size= out")
    journal = without_metadata(journal)
    with pytest.raises(JournalArgumentError) as info:
        verify(journal, images["idx_v3_c4k"].path, block_size=65536)
    assert str(info.value) == (f"{images['idx_v3_c4k'].path}: the qcow2 image's clusters are 4096 bytes: block_size= 65536 "
                               f"is larger (a block of several clusters has no host offset of its own)")


def test_an_embedded_journal_area(images: dict[str, qi.Image], tmp_path: Path) -> None:
    host = tmp_path / "host.bin"
    host.write_bytes(b"\x00" * 8192)
    made = index(images["idx_top"].path, host, journal_offset=8192)
    assert host.read_bytes()[:8192] == b"\x00" * 8192
    report = verify(host, images["idx_top"].path, journal_offset=8192, journal_length=made.num_clusters * 4096)
    assert report.is_clean and report.num_checked == made.num_entries


def test_the_report_is_json(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, entries = indexed(images["idx_v3_c4k"], tmp_path)
    journal = without_metadata(journal)
    append(journal, qjournal.HashEntry(b"\x02" * 16, entries[0].physical_sector, entries[0].first_logical_sector))
    d = verify(journal, image.path).to_dict(cli=True)
    assert {"num_checked", "num_mismatched", "mismatches"} <= set(d) and json.loads(json.dumps(d)) == d
    (m,) = d["mismatches"]
    assert set(m) == {"ofs", "digest", "code", "problem", "reason", "physical_sector", "first_logical_sector"}
    assert m["digest"] == "02" * 16 and m["reason"].endswith("--hash-name") and d["is_clean"] is False


def test_verify_only_reads(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image, journal, _ = indexed(images["idx_snapshot"], tmp_path)
    for p in (image.path, journal):
        os.utime(p, ns=(10**9, 10**9))
    before = (image.path.read_bytes(), journal.read_bytes())
    verify(journal, image.path)
    assert (image.path.read_bytes(), journal.read_bytes()) == before
    assert image.path.stat().st_mtime_ns == journal.stat().st_mtime_ns == 10**9


def test_a_corrupt_journal_is_the_readers_error(images: dict[str, qi.Image], tmp_path: Path) -> None:
    _, journal, _ = indexed(images["idx_v3_c4k"], tmp_path)
    data = bytearray(journal.read_bytes())
    data[0] = 0
    journal.write_bytes(data)
    with pytest.raises(CorruptJournalError) as info:
        verify(journal, images["idx_v3_c4k"].path)
    assert info.value.code == "size_too_small" and info.value.offset == 0
