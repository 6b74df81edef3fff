"""Disk images by their magic: no journal is written inside one, and a journal command given one says what it is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import as_hash

import qjournal
from qjournal.cluster import image_at_start
from qjournal.errors import NotAJournalError
from qjournal.magic import LEN_SNIFF, MAGICS, QCOW, QCOW2, Magic, identify

QEMU = shutil.which("qemu-img") is not None or bool(os.environ.get("CI"))


def head_of(magic_ofs: int, magic: bytes, version: int | None = None) -> bytes:
    head = bytearray(LEN_SNIFF)
    head[magic_ofs : magic_ofs + len(magic)] = magic
    if version is not None:
        head[4:8] = version.to_bytes(4, "big")
    return bytes(head)


@pytest.mark.parametrize("m", [m for m in MAGICS if m not in (QCOW, QCOW2)], ids=lambda m: m.what)
def test_each_magic_is_identified_at_its_offset(m: Magic) -> None:
    assert identify(head_of(m.ofs, m.magic)) == m
    assert identify(head_of(m.ofs + 1, m.magic)) is None


@pytest.mark.parametrize(("version", "expected"), [(1, QCOW), (2, QCOW2), (3, QCOW2), (0, None), (4, None), (0x4A000000, None)])
def test_qcow_by_version(version: int, expected: object) -> None:
    assert identify(head_of(0, b"QFI\xfb", version)) == expected


def test_journal_bytes_are_no_image() -> None:
    buf = bytearray(b"\xff" * 8192)
    qjournal.create(buf).append_hash(b"\x01" * 32, 1, 2)
    assert identify(bytes(buf[:LEN_SNIFF])) is None


def test_a_journal_that_starts_like_an_image_is_a_journal() -> None:
    """Any bytes can begin a journal (an entry of an unassigned type): the magic alone does not make an image."""
    buf = bytearray(b"\xff" * 8192)
    w = qjournal.create(buf)
    w.append_raw(0x46, b"I\xfb\x00\x00\x00\x03" + bytes(73))
    w.close()
    assert bytes(buf[:8]) == b"QFI\xfb\x00\x00\x00\x03" and identify(bytes(buf[:LEN_SNIFF])) == QCOW2
    assert image_at_start(bytes(buf[:4096])) is None
    with qjournal.open_for_append(buf) as w:
        w.append_hash(b"\x03" * 32, 5, 6)
    assert [type(e).__name__ for e in qjournal.read(bytes(buf)).replay()] == ["RawEntry", "HashEntry"]


def fake_qcow2(path: Path, size: int = 1 << 16) -> bytes:
    """A file that starts like a qcow2 v3 header and holds a journal at 32 KiB (a forensic case: reading it is fine)."""
    data = bytearray(b"\xff" * size)
    data[:104] = bytes(104)
    data[:8] = b"QFI\xfb\x00\x00\x00\x03"
    data[20:24] = (16).to_bytes(4, "big")  # cluster_bits
    journal = bytearray(b"\xff" * 8192)
    qjournal.create(journal).append_hash(b"\x02" * 32, 3, 4)
    data[32768 : 32768 + 8192] = journal
    path.write_bytes(bytes(data))
    return bytes(data)


def test_reading_an_image_at_its_start_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "disk.qcow2"
    fake_qcow2(path)
    with pytest.raises(NotAJournalError) as err:
        qjournal.read(path).state()
    assert err.value.format == "qcow2"
    assert str(err.value).startswith(f"{path}: a qcow2 image (it starts with the magic b'QFI\\xfb' at byte 0), not a journal")
    # a journal inside the file is still read, where it is
    with qjournal.read(path, offset=32768, length=8192) as j:
        assert [as_hash(e).physical_sector for e in j.replay()] == [3]


@pytest.mark.parametrize("how", ["create", "append", "reset"])
def test_no_write_inside_an_image_anywhere(tmp_path: Path, how: str) -> None:
    path = tmp_path / "disk.qcow2"
    before = fake_qcow2(path)
    with pytest.raises(NotAJournalError) as err:
        if how == "create":
            qjournal.create(path, offset=len(before) - 8192, length=8192, force=True)
        elif how == "append":
            qjournal.open_for_append(path, offset=32768, length=8192)
        else:
            qjournal.reset(path, offset=32768, length=8192)
    assert "a journal is never written inside an image" in str(err.value)
    assert path.read_bytes() == before


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qjournal", *args], capture_output=True, text=True, check=False)


@pytest.mark.skipif(not QEMU, reason="qemu-img (Debian qemu-utils) is not installed")
def test_cli_refuses_a_journal_area_at_the_end_of_a_real_qcow2(tmp_path: Path) -> None:
    """The data-loss case: an area past the end of a qcow2 is where QEMU allocates its next clusters."""
    disk = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    before = disk.read_bytes()
    proc = run("create", str(disk), "--offset", str(len(before)), "--clusters", "64")
    assert proc.returncode == 1, proc.stderr
    assert "d.qcow2: a qcow2 image" in proc.stderr and "a journal is never written inside an image" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert disk.read_bytes() == before
    proc = run("info", str(disk))
    assert proc.returncode == 1 and "d.qcow2: a qcow2 image" in proc.stderr and "not a journal" in proc.stderr


def _indexed_disk(tmp_path: Path) -> tuple[Path, Path]:
    """A 1 MiB qcow2 image with one data cluster, and the journal index made of it."""
    disk, journal = tmp_path / "disk.qcow2", tmp_path / "disk.qjournal"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 64k", str(disk)], check=True, capture_output=True)
    assert run("index", str(disk), str(journal)).returncode == 0
    return disk, journal


@pytest.mark.skipif(not QEMU, reason="qemu-img (Debian qemu-utils) is not installed")
def test_verify_with_swapped_arguments_says_what_was_meant(tmp_path: Path) -> None:
    disk, journal = _indexed_disk(tmp_path)
    proc = run("verify", str(disk), str(journal))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"qjournal: {disk}: a qcow2 image (it starts with the magic b'QFI\\xfb' at byte 0), not a journal",
        "qjournal: hint: give the journal file (qjournal index IMAGE JOURNAL writes one beside the image), or the offset of a journal "
        "inside this file",
        f"qjournal: did you mean: qjournal verify {journal} {disk}?",
    ]
    assert run("verify", str(journal), str(disk)).returncode == 0



@pytest.mark.skipif(not QEMU, reason="qemu-img (Debian qemu-utils) is not installed")
def test_a_journal_given_as_the_image_is_refused_and_the_order_meant_said(tmp_path: Path) -> None:
    disk, journal = _indexed_disk(tmp_path)
    before = disk.read_bytes(), journal.read_bytes()
    refusal = (f"qjournal: {journal}: offset 0x0 (0): not a disk image: it starts with a journal cluster (HASH entries, "
               f"as qjournal index writes them); an image command reads the disk a journal describes, so give the image "
               f"(index IMAGE JOURNAL, verify JOURNAL IMAGE), or read the file as it is (--format raw)")
    proc = run("index", str(journal), str(disk))  # swapped: the journal where the image goes
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [refusal, f"qjournal: did you mean: qjournal index {disk} {journal}?"]
    for args in (["analyze", str(journal)], ["dedup", str(journal), str(tmp_path / "t.qcow2")]):
        proc = run(*args)
        assert proc.returncode == 1 and proc.stderr.splitlines() == [refusal], proc.stderr
    assert (disk.read_bytes(), journal.read_bytes()) == before and not (tmp_path / "t.qcow2").exists()
    assert run("analyze", str(journal), "--format", "raw").returncode == 0  # read as the bytes it holds, when asked
    with pytest.raises(qjournal.UnsupportedImageError) as caught:
        qjournal.analyze([str(journal)])
    assert caught.value.code == "journal_file"
