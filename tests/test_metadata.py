"""The journal's metadata entry (docs/format.md D30): written first by index and dedup, read by verify, info,
check and pack, through the command line in a subprocess, on images qemu-img and qemu-io make.

The expected bytes are built here from D30's table with struct, never by qjournal.metadata.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import qemu_images as qi
from test_cli import run

import qjournal
from qjournal.entries import HashEntry, RawEntry
from qjournal.metadata import TYPE_METADATA, JournalMetadata, MetadataError, decode, first_of, is_metadata

pytestmark = pytest.mark.skipif(qi.missing_qemu() is not None, reason=str(qi.missing_qemu()))


def qcow2(path: Path, size: str = "1M", cluster_size: int = 4096, *writes: str) -> Path:
    """A qcow2 image qemu-img makes, written by qemu-io (``write -P pattern offset length`` commands)."""
    qi.run_qemu(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={cluster_size}", str(path), size])
    if writes:
        qi.run_qemu(["qemu-io", "-f", "qcow2", *(a for w in writes for a in ("-c", w)), str(path)])
    return path


def layout(block_size: int, len_virtual_disk: int, cluster_size: int, image_format: str, hash_name: str = "sha256") -> bytes:
    """The entry's bytes as D30's table lays them out."""
    fmt, name = image_format.encode(), hash_name.encode()
    body = b"qjmd" + bytes([1]) + struct.pack(">IQI", block_size, len_virtual_disk, cluster_size)
    body += bytes([len(fmt)]) + fmt + bytes([len(name)]) + name
    return bytes([2 + len(body), 0x71]) + body


def test_index_writes_the_layout_of_d30_first(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 8k", "write -P 2 64k 4k")
    journal = tmp_path / "d.qjournal"
    assert run("index", str(image), str(journal)).returncode == 0
    data = journal.read_bytes()
    want = layout(4096, 1 << 20, 4096, "qcow2")
    assert len(want) == 36 and data[: len(want)] == want
    entries = qjournal.read(journal).__enter__().replay()
    first, *rest = list(entries)
    assert isinstance(first, RawEntry) and first.type_code == TYPE_METADATA and first.ofs == 0
    assert rest and all(isinstance(e, HashEntry) for e in rest)
    doc = json.loads(run("index", str(image), str(tmp_path / "j2"), "--output", "json").out)
    assert doc["metadata"] == {"block_size": 4096, "hash_name": "sha256", "image_format": "qcow2",
                               "len_virtual_disk": 1 << 20, "cluster_size": 4096, "version": 1}


def test_a_raw_journal_needs_no_block_size_and_refuses_another(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"".join(bytes([i + 1]) * 4096 for i in range(8)) + b"\x09" * 1000)
    journal = tmp_path / "d.qjournal"
    assert run("index", str(raw), str(journal), "--block-size", "4K").returncode == 0
    assert journal.read_bytes()[:34] == layout(4096, 8 * 4096 + 1000, 0, "raw")
    ok = run("verify", str(journal), str(raw))
    assert ok.returncode == 0, ok.out + ok.err
    assert f"{journal}: made of sha256 digests of 4096-byte blocks of a raw image of 33768 bytes (its metadata entry)" in ok.out
    assert "9 live HASH entries checked" in ok.out and "every one matches" in ok.out
    refused = run("verify", str(journal), str(raw), "--block-size", "64K")
    assert refused.returncode == 1 and refused.out == ""
    assert refused.err == (f"qjournal: {journal}: the journal's metadata entry (D30) says its entries name blocks of 4096 "
                           f"bytes: --block-size 65536 contradicts it; leave --block-size out\n")
    assert run("verify", str(journal), str(raw), "--block-size", "4K").returncode == 0  # the same: no contradiction
    hashed = run("verify", str(journal), str(raw), "--hash", "sha1")
    assert hashed.returncode == 1 and "says its digests are sha256: --hash-name sha1 contradicts it; leave --hash-name out" in hashed.err


def test_verify_refuses_an_image_of_another_cluster_size_or_format(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 8k")
    journal = tmp_path / "d.qjournal"
    run("index", str(image), str(journal))
    other = qcow2(tmp_path / "o.qcow2", "1M", 65536, "write -P 1 0 8k")
    refused = run("verify", str(journal), str(other))
    assert refused.returncode == 1 and refused.out == ""
    assert refused.err == (
        f"qjournal: {journal}: {other} is not the image this journal describes: its metadata entry (D30) records "
        f"cluster_size 4096 (this image: 65536), so every entry would fail; give the image the journal was made of "
        f"(sha256 digests of 4096-byte blocks of a qcow2 image of 1048576 bytes, 4096-byte clusters)\n")
    raw = tmp_path / "d.raw"
    raw.write_bytes(bytes(1 << 20))
    as_raw = run("verify", str(journal), str(raw))
    assert as_raw.returncode == 1
    assert "records image_format qcow2 (this image: raw); cluster_size 4096 (this image: 0)" in as_raw.err


def test_verify_notes_a_resized_image_and_goes_on(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 8k", "write -P 3 16k 4k")
    journal = tmp_path / "d.qjournal"
    run("index", str(image), str(journal))
    qi.run_qemu(["qemu-img", "resize", "-q", str(image), "2M"])
    proc = run("verify", str(journal), str(image))
    assert proc.returncode == 0, proc.out
    assert (f"{journal}: note: the image's virtual size is 2097152 bytes, the journal's metadata entry (D30) records "
            f"1048576: resized since the index? (entries past the end are reported as logical_past_end)") in proc.out.splitlines()
    doc = json.loads(run("verify", str(journal), str(image), "--output", "json").out)
    assert doc["is_clean"] and len(doc["notes"]) == 1 and doc["metadata"]["len_virtual_disk"] == 1 << 20


def test_info_and_check_name_it_and_do_not_count_it_as_an_anomaly(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 8k")
    journal = tmp_path / "d.qjournal"
    run("index", str(image), str(journal))
    line = ("metadata: sha256 digests of 4096-byte blocks of a qcow2 image of 1048576 bytes, 4096-byte clusters (the first "
            "entry, type 0x71: qjournal's metadata entry, D30; an unassigned type to the spec, not an anomaly)")
    info = run("info", str(journal))
    assert info.returncode == 0 and line in info.out.splitlines()
    assert "entries: 2 (hash: 1, 0x71: 1)" in info.out and "anomalies: none" in info.out
    check = run("check", str(journal), "--strict")
    assert check.returncode == 0 and check.out.splitlines()[1] == f"{journal}: {line}"
    doc = json.loads(run("check", str(journal), "--output", "json").out)
    assert doc["status"] == "clean" and doc["metadata"]["block_size"] == 4096 and doc["metadata_note"] is None
    assert json.loads(run("info", str(journal), "--output", "json").out)["metadata"]["cluster_size"] == 4096


def test_an_entry_of_the_type_elsewhere_or_without_the_layout_stays_an_anomaly(tmp_path: Path) -> None:
    meta = JournalMetadata(4096, "sha256", "qcow2", 1 << 20, 4096)
    elsewhere = tmp_path / "elsewhere.qjournal"
    with qjournal.create(elsewhere, 1) as w:
        w.append_hash(b"\x01" * 32, 8, 0)
        w.append(meta.entry())
        assert [p.code for p in w.state().anomalies] == ["unassigned_type"]
    check = run("check", str(elsewhere))
    assert check.returncode == 3 and "anomaly [unassigned_type]: entry of unassigned type 0x71, size 36 (D4)" in check.out
    assert "metadata" not in run("info", str(elsewhere)).out  # no metadata entry: nothing said of one
    broken = tmp_path / "broken.qjournal"
    with qjournal.create(broken, 1) as w:
        w.append(RawEntry(0x71, meta.entry().body[:20]))  # the magic, but cut short
        assert [p.code for p in w.state().anomalies] == ["unassigned_type"]
    info = run("info", str(broken))
    assert ("metadata: none: its first entry has the type and magic of qjournal's metadata entry but its body is 20 "
            "bytes, fewer than the 23 of D30's fixed fields (D30): not taken") in info.out.splitlines()
    assert run("check", str(broken)).returncode == 3
    with qjournal.create(tmp_path / "first.qjournal", 1) as w:
        w.append(meta.entry())
        assert w.state().anomalies == ()


@pytest.mark.parametrize(("body", "why"), [
    (b"qjmd\x00" + bytes(18), "version 0: versions start at 1"),
    (b"qjmd\x01" + struct.pack(">IQI", 1000, 1, 0) + b"\x03raw\x06sha256", "block_size 1000 is not a power of two"),
    (b"qjmd\x01" + struct.pack(">IQI", 4096, 1, 0) + b"\x03vhd\x06sha256", "image_format 'vhd' is neither qcow2 nor raw"),
    (b"qjmd\x01" + struct.pack(">IQI", 4096, 1, 512) + b"\x03raw\x06sha256", "cluster_size 512 for a raw image"),
    (b"qjmd\x01" + struct.pack(">IQI", 4096, 1, 0) + b"\x03raw\x09sha256", "its hash_name runs past the end"),
])
def test_a_body_with_the_magic_that_breaks_the_layout_is_named(body: bytes, why: str) -> None:
    with pytest.raises(MetadataError) as info:
        decode(RawEntry(0x71, body))
    assert str(info.value).startswith(why)
    assert not is_metadata(0, 0x71, body)


def test_a_later_version_is_read_for_the_fields_it_shares() -> None:
    body = JournalMetadata(512, "sha512", "raw", 7, 0).entry().body
    later = body[:4] + b"\x02" + body[5:] + b"more fields"
    assert decode(RawEntry(0x71, later)) == JournalMetadata(512, "sha512", "raw", 7, 0, version=2)
    assert decode(RawEntry(0x72, body)) is None and decode(RawEntry(0x71, b"QJMD" + body[4:])) is None
    assert is_metadata(0, 0x71, body) and not is_metadata(36, 0x71, body)


def test_verify_says_what_is_likelier_when_every_entry_fails(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 4k", "write -P 2 8k 4k")
    journal = tmp_path / "d.qjournal"
    run("index", str(image), str(journal))
    qi.run_qemu(["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 4k", "-c", "write -P 8 8k 4k", str(image)])
    proc = run("verify", str(journal), str(image))
    assert proc.returncode == 2
    assert proc.out.splitlines()[-1] == (
        f"{journal}: hint: every one of the 2 entries checked fails, though the image has the format, cluster size and "
        f"block size the journal's metadata entry records: the image was probably rewritten since the index (a qemu-img "
        f"convert, a restore), or it is another image of the same shape")
    bare = tmp_path / "bare.qjournal"
    with qjournal.read(journal) as r, qjournal.create(bare, 1) as w:
        w.append_many([e for e in r.replay() if isinstance(e, HashEntry)])
    proc = run("verify", str(bare), str(image))
    assert proc.returncode == 2 and proc.out.splitlines()[-1] == (
        f"{bare}: hint: every one of the 2 entries checked fails, and the journal has no metadata entry (D30) to say what "
        f"it was made of: it was probably made at another block size than 4096 (give the one index was given with "
        f"--block-size), or of another image")


def test_pack_keeps_it_first(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 4k", "write -P 2 8k 4k")
    journal = tmp_path / "d.qjournal"
    run("index", str(image), str(journal))
    with qjournal.open_for_append(journal) as w:  # a superseded entry and a raw one, which pack drops
        first = next(e for e in qjournal.read(journal).__enter__().replay() if isinstance(e, HashEntry))
        w.append_many([HashEntry(first.digest, first.physical_sector, first.first_logical_sector), RawEntry(0x05, b"x")])
    packed = tmp_path / "p.qjournal"
    proc = run("pack", str(journal), str(packed))
    assert proc.returncode == 0
    assert f"{journal}: 5 entries read (3 hash), 2 live written after the metadata entry, 2 dropped (1 of unassigned types)" in proc.out
    assert packed.read_bytes()[:36] == journal.read_bytes()[:36]
    assert first_of(packed) == first_of(journal) and first_of(packed)[0] is not None
    assert run("verify", str(packed), str(image)).returncode == 0


def test_dedup_writes_the_targets_metadata_first(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "d.qcow2", "1M", 4096, "write -P 1 0 16k")
    target = tmp_path / "t.qcow2"
    assert run("dedup", str(image), str(target)).returncode == 0
    journal = Path(f"{target}.qjournal")
    assert journal.read_bytes()[:36] == layout(4096, 1 << 20, 4096, "qcow2")
    assert first_of(journal) == (JournalMetadata(4096, "sha256", "qcow2", 1 << 20, 4096), None)
    proc = run("verify", str(journal), str(target))
    assert proc.returncode == 0 and "every one matches" in proc.out
