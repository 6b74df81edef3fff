"""Images a user meets: one held by a running QEMU, dirty ones, other formats, and hostile qcow2 headers, through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from test_qemulock import qemu_io_holding

import qjournal

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-img") is None and not os.environ.get("CI"), reason="qemu-img (Debian qemu-utils) is not installed"
)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qjournal", *map(str, args)], check=False, capture_output=True, text=True,
                          timeout=120)


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


def qemu_io(path: Path, *cmds: str) -> None:
    args = ["qemu-io", "-f", "qcow2"]
    for c in cmds:
        args += ["-c", c]
    subprocess.run([*args, str(path)], check=True, capture_output=True)


def patched(src: Path, dst: Path, *fields: tuple[str, int, int]) -> Path:
    """A copy of ``src`` with big-endian fields (struct format, offset, value) written into it."""
    b = bytearray(src.read_bytes())
    for fmt, ofs, value in fields:
        struct.pack_into(fmt, b, ofs, value)
    dst.write_bytes(bytes(b))
    return dst


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", path, "4M")
    qemu_io(path, "write -P 0x11 0 64k", "write -P 0x22 64k 64k", "write -P 0x11 128k 64k")
    return path


# -- QEMU's image locks ---------------------------------------------------------


@needs_qemu
@pytest.mark.skipif(shutil.which("qemu-io") is None and not os.environ.get("CI"), reason="qemu-io is not installed")
def test_every_image_command_refuses_an_image_qemu_writes_and_reads_it_with_force_share(disk: Path, tmp_path: Path) -> None:
    journal = tmp_path / "disk.qjournal"
    assert run("index", disk, journal).returncode == 0
    os.rename(journal, tmp_path / "kept.qjournal")
    with qemu_io_holding(disk, read_only=False):
        args: tuple[str | Path, ...]
        for args in (("index", disk, journal), ("verify", tmp_path / "kept.qjournal", disk), ("analyze", disk)):
            proc = run(*args)
            assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
            assert f"qjournal: {disk}: another process holds the image open for write and resize (QEMU's lock on byte 101)" \
                in proc.stderr, proc.stderr
            assert "--force-share (-U)" in proc.stderr
            assert "Traceback" not in proc.stderr
        assert not journal.exists()  # refused before anything was made
        for args in (("index", "-U", disk, journal), ("verify", "--force-share", tmp_path / "kept.qjournal", disk),
                     ("analyze", "-U", disk)):
            proc = run(*args)
            assert proc.returncode == 0, (args, proc.stderr)
    with qemu_io_holding(disk, read_only=True):  # a reader does not block a reader
        assert run("verify", tmp_path / "kept.qjournal", disk).returncode == 0


# -- what was not read, and the dirty bit -----------------------------------------


@needs_qemu
def test_index_and_verify_say_what_they_did_not_read(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "4M")
    top = tmp_path / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", base.name, "-F", "qcow2", top)
    qemu_io(top, "write -P 0x33 0 64k")
    qemu_img("snapshot", "-c", "before", top)
    qemu_img("snapshot", "-c", "after", top)
    journal = tmp_path / "top.qjournal"
    proc = run("index", top, journal)
    assert proc.returncode == 0, proc.stderr
    assert "  not read: the backing file 'base.qcow2' and 2 internal snapshots ('before', 'after')\n" in proc.stdout
    proc = run("verify", journal, top, "--output", "json")
    d = json.loads(proc.stdout)
    assert d["not_read"] == {"backing_file": "base.qcow2", "num_snapshots": 2, "snapshot_names": ["before", "after"]}
    assert d["is_dirty"] is False
    proc = run("verify", journal, top)
    assert f"{top}: not read: the backing file 'base.qcow2' and 2 internal snapshots ('before', 'after')\n" in proc.stdout
    journal.unlink()
    d = json.loads(run("index", top, journal, "--output", "json").stdout)
    assert d["not_read"]["backing_file"] == "base.qcow2" and d["not_read"]["num_snapshots"] == 2


@needs_qemu
def test_a_plain_image_says_nothing_was_left_out(disk: Path, tmp_path: Path) -> None:
    proc = run("index", disk, tmp_path / "j")
    assert "  not read: nothing (no backing file, no internal snapshot)\n" in proc.stdout
    assert "dirty" not in proc.stdout


@needs_qemu
def test_a_dirty_image_is_read_and_said_dirty(disk: Path, tmp_path: Path) -> None:
    dirty = patched(disk, tmp_path / "dirty.qcow2", (">Q", 72, 1))  # incompatible_features: the dirty bit
    assert "dirty bit" not in run("index", disk, tmp_path / "clean.qjournal").stdout
    proc = run("index", dirty, tmp_path / "j")
    assert proc.returncode == 0, proc.stderr
    assert "the dirty bit is set (lazy refcounts, not closed cleanly)" in proc.stdout
    assert "2 HASH entries written" in proc.stdout
    assert json.loads(run("verify", tmp_path / "j", dirty, "--output", "json").stdout)["is_dirty"] is True
    assert "the dirty bit is set" in run("analyze", dirty).stdout
    assert json.loads(run("analyze", dirty, "--output", "json").stdout)["not_read"][0]["is_dirty"] is True


@needs_qemu
def test_a_corrupt_bit_is_refused(disk: Path, tmp_path: Path) -> None:
    bad = patched(disk, tmp_path / "corrupt.qcow2", (">Q", 72, 2))
    proc = run("index", bad, tmp_path / "j")
    assert proc.returncode == 1 and "the corrupt bit is set" in proc.stderr


# -- other formats ---------------------------------------------------------------


def test_a_qcow_v1_image_is_named_and_a_conversion_suggested(tmp_path: Path) -> None:
    v1 = tmp_path / "old.qcow"
    v1.write_bytes(b"QFI\xfb" + struct.pack(">I", 1) + bytes(4088))
    proc = run("index", v1, tmp_path / "j")
    assert proc.returncode == 1
    assert "an image of QEMU's original qcow format (version 1), not qcow2" in proc.stderr
    assert "qemu-img convert -f qcow -O qcow2 IMAGE NEW.qcow2" in proc.stderr
    assert "only versions 2 and 3 exist" not in proc.stderr


def test_a_raw_luks_container_is_refused_as_luks_in_qcow2_is(tmp_path: Path) -> None:
    luks = tmp_path / "secret.img"
    luks.write_bytes(b"LUKS\xba\xbe\x00\x01" + bytes(65536))
    for args in (("index", luks, tmp_path / "j"), ("analyze", luks)):
        proc = run(*args)
        assert proc.returncode == 1, proc.stdout
        assert "a LUKS encrypted volume" in proc.stderr and "ciphertext" in proc.stderr
    assert run("analyze", "--format", "raw", luks).returncode == 0  # read as it is when asked


# -- hostile qcow2 headers -------------------------------------------------------------


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    path = tmp_path / "v2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", path, "1M")
    return path


@needs_qemu
def test_a_v2_backing_file_name_right_after_the_header(v2: Path, tmp_path: Path) -> None:
    b = bytearray(v2.read_bytes())
    b[72:82] = b"base.qcow2"
    struct.pack_into(">QI", b, 8, 72, 10)
    img = tmp_path / "early.qcow2"
    img.write_bytes(bytes(b))
    qemu_img("create", "-q", "-f", "qcow2", tmp_path / "base.qcow2", "1M")
    subprocess.run(["qemu-img", "check", str(img)], check=True, capture_output=True)  # QEMU opens it
    proc = run("index", img, tmp_path / "j")
    assert proc.returncode == 0, proc.stderr
    assert "not read: the backing file 'base.qcow2'" in proc.stdout
    assert run("verify", tmp_path / "j", img).returncode == 0


@needs_qemu
def test_a_non_utf8_backing_file_name_is_shown_escaped(v2: Path, tmp_path: Path) -> None:
    b = bytearray(v2.read_bytes())
    b[72:78] = b"\xffab\xfe.q"
    struct.pack_into(">QI", b, 8, 72, 6)
    img = tmp_path / "name.qcow2"
    img.write_bytes(bytes(b))
    proc = run("index", img, tmp_path / "j")
    assert proc.returncode == 0, proc.stderr
    assert "not read: the backing file '\\\\xffab\\\\xfe.q'" in proc.stdout


@needs_qemu
def test_header_length_of_a_whole_cluster(tmp_path: Path) -> None:
    img = tmp_path / "hl.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "1M")
    patched(img, img, (">I", 100, 4096))
    subprocess.run(["qemu-img", "check", str(img)], check=True, capture_output=True)
    proc = run("index", img, tmp_path / "j")
    assert proc.returncode == 0, proc.stderr


@needs_qemu
@pytest.mark.parametrize(("fmt", "ofs", "value", "words"), [
    (">Q", 40, 1 << 63, "the L1 table (1 entry, 8 bytes at 0x8000000000000000) runs past the end of the file"),
    (">Q", 40, 0, "the L1 table offset 0x0 is inside the header's cluster"),
    (">Q", 40, 1 << 30, "the L1 table (1 entry, 8 bytes at 0x40000000) runs past the end of the file"),
    (">I", 36, 1 << 30, "the L1 table (1073741824 entries, 8589934592 bytes at 0x30000) runs past the end of the file"),
])
def test_an_l1_table_that_cannot_be_there_is_refused_naming_the_field(
    tmp_path: Path, fmt: str, ofs: int, value: int, words: str
) -> None:
    good = tmp_path / "good.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", good, "1M")
    img = patched(good, tmp_path / "bad.qcow2", (fmt, ofs, value))
    qemu_img("create", "-q", "-f", "qcow2", good, "1M")
    journal = tmp_path / "j"
    assert run("index", good, journal).returncode == 0
    for args in (("index", img, tmp_path / "new"), ("verify", journal, img), ("analyze", img)):
        proc = run(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert f"qjournal: {img}: offset 0x28 (40): {words}" in proc.stderr, proc.stderr
        assert "internal error" not in proc.stderr


# -- a mapping qemu-img check refuses --------------------------------------------------------


def _u64(b: bytes | bytearray, ofs: int) -> int:
    return int(struct.unpack_from(">Q", b, ofs)[0])


_OFS = 0x00FF_FFFF_FFFF_FE00


@pytest.fixture
def mapped(tmp_path: Path) -> tuple[Path, bytearray, int, int]:
    """A 64 KiB-cluster image with three data clusters: (path, bytes, its L1 table's offset, its L2 table's offset)."""
    path = tmp_path / "mapped.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", path, "4M")
    qemu_io(path, "write -P 0x11 0 64k", "write -P 0x22 64k 64k", "write -P 0x33 128k 64k")
    b = bytearray(path.read_bytes())
    ofs_l1 = _u64(b, 40)
    return path, b, ofs_l1, _u64(b, ofs_l1) & _OFS


def _refused(tmp_path: Path, b: bytearray, words: str, *, qemu_check: bool = True) -> None:
    img = tmp_path / "bad.qcow2"
    img.write_bytes(bytes(b))
    if qemu_check:  # QEMU refuses it too
        assert subprocess.run(["qemu-img", "check", str(img)], check=False, capture_output=True).returncode != 0
    proc = run("index", img, tmp_path / "j.qjournal")
    assert proc.returncode == 1, proc.stdout
    assert words in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr
    assert not (tmp_path / "j.qjournal").exists()


@needs_qemu
@pytest.mark.parametrize("target", ["l1", "l2", "refcount_table", "refcount_block"])
def test_a_data_cluster_on_the_images_metadata_is_refused(mapped: tuple[Path, bytearray, int, int], tmp_path: Path,
                                                          target: str) -> None:
    _, b, ofs_l1, ofs_l2 = mapped
    host = {"l1": ofs_l1, "l2": ofs_l2, "refcount_table": _u64(b, 48), "refcount_block": _u64(b, _u64(b, 48)) & _OFS}[target]
    struct.pack_into(">Q", b, ofs_l2 + 8, (1 << 63) | host)
    _refused(tmp_path, b, f"the guest cluster at 0x10000 is mapped to host cluster {host:#x}, which holds the image's metadata")


@needs_qemu
def test_one_l2_table_under_every_l1_entry_is_refused(mapped: tuple[Path, bytearray, int, int], tmp_path: Path) -> None:
    _, b, ofs_l1, _ = mapped
    struct.pack_into(">I", b, 36, 4)
    struct.pack_into(">Q", b, 24, 4 << 29)
    b[ofs_l1 : ofs_l1 + 32] = bytes(b[ofs_l1 : ofs_l1 + 8]) * 4
    _refused(tmp_path, b, "the L1 entry at")
    assert "uses the L2 table at host cluster" in run("index", tmp_path / "bad.qcow2", tmp_path / "k").stderr


@needs_qemu
def test_one_host_cluster_mapped_64_times_is_refused(mapped: tuple[Path, bytearray, int, int], tmp_path: Path) -> None:
    _, b, _, ofs_l2 = mapped
    first = b[ofs_l2 : ofs_l2 + 8]
    b[ofs_l2 : ofs_l2 + 8 * 64] = bytes(first) * 64  # the whole 4 MiB disk maps one host cluster
    _refused(tmp_path, b, "the guest cluster at 0x10000 uses the data cluster at host cluster")
    assert "but its refcount is 1" in run("index", tmp_path / "bad.qcow2", tmp_path / "k").stderr


@needs_qemu
def test_a_zip_bomb_is_refused_before_its_work_begins(mapped: tuple[Path, bytearray, int, int], tmp_path: Path) -> None:
    """4,096 L1 entries -> one L2 table -> 8,192 entries of one data cluster: 2 TiB to hash from a file of 384 KiB."""
    path, b, ofs_l1, ofs_l2 = mapped
    assert run("index", path, tmp_path / "good.qjournal").returncode == 0
    first = bytes(b[ofs_l2 : ofs_l2 + 8])
    b[ofs_l2 : ofs_l2 + 65536] = first * 8192
    l1 = bytes(b[ofs_l1 : ofs_l1 + 8])
    b[ofs_l1 : ofs_l1 + 8 * 4096] = l1 * 4096
    struct.pack_into(">Q", b, 24, 4096 * 8192 * 65536)  # size
    struct.pack_into(">I", b, 36, 4096)  # l1_size
    # (qemu-img check takes minutes over this one: it counts every reference)
    _refused(tmp_path, b, "but its refcount is 1: the image maps one host cluster to more places than it counts",
             qemu_check=False)
    for args in (("analyze", tmp_path / "bad.qcow2"), ("verify", tmp_path / "good.qjournal", tmp_path / "bad.qcow2")):
        proc = run(*args)
        assert proc.returncode == 1 and "its refcount is 1" in proc.stderr, proc.stderr


def test_the_host_cluster_bitmaps_agree_with_a_set() -> None:
    import random

    from qjournal.qcow2refs import _any_set, _test_and_set

    rng = random.Random(7)
    for _ in range(300):
        n = rng.randrange(1, 200)
        bm, model = bytearray(-(-n // 8)), set[int]()
        for _ in range(10):
            a = rng.randrange(n)
            b = rng.randrange(a + 1, n + 1)
            hits = sorted(model & set(range(a, b)))
            assert _any_set(bm, a, b) == (hits[0] if hits else -1)
            assert _test_and_set(bm, a, b) == (hits[0] if hits else -1)
            model |= set(range(a, b))
            assert {i for i in range(n) if bm[i >> 3] >> (i & 7) & 1} == model


@needs_qemu
def test_verify_says_what_it_read_and_what_it_did_not(disk: Path, tmp_path: Path) -> None:
    journal = tmp_path / "disk.qjournal"
    assert run("index", disk, journal).returncode == 0
    proc = run("verify", journal, disk)
    assert proc.returncode == 0, proc.stderr
    assert f"{journal}: 2 live HASH entries checked against {disk}: every one matches\n" in proc.stdout
    assert (f"{journal}: 2 blocks of 64 KiB read and hashed, one per live entry, of the 3 data blocks the image stores; "
            f"not checked: the other 1 (duplicates of journaled blocks, or data written since the index; --all hashes "
            f"them all)\n") in proc.stdout
    d = json.loads(run("verify", journal, disk, "--output", "json").stdout)
    assert (d["num_checked"], d["num_blocks_read"], d["num_data_blocks"]) == (2, 2, 3)


@needs_qemu
def test_index_text_rows_say_what_adds_up_and_leave_empty_histogram_rows_out(tmp_path: Path) -> None:
    img = tmp_path / "one.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "64k")
    qemu_io(img, "write -P 0x11 0 64k")
    proc = run("index", img, tmp_path / "j")
    assert f"{img}: qcow2, 1 block of 64 KiB (64 KiB virtual disk)\n" in proc.stdout
    assert "    total:                  1  (64 KiB)\n  besides, not part of the total:\n" in proc.stdout
    big = tmp_path / "many.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", big, "9M")
    qemu_io(big, "write -P 0x11 0 9M")  # 18,432 blocks of one digest: the row 16385-32768 is 11 characters
    lines = run("index", big, tmp_path / "k").stdout.splitlines()
    at = lines.index("  digests by the number of blocks that share them:")
    assert lines[at + 1 : at + 3] == ["       blocks     digests", "  16385-32768           1"]
    assert lines[at + 3].startswith("  not read:")  # the 14 empty rows before it are left out


def test_verify_at_the_wrong_block_size_says_what_is_likelier(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"".join(bytes([k]) * 4096 for k in range(1, 33)))
    journal = tmp_path / "disk.qjournal"
    assert run("index", raw, journal, "--block-size", "4K").returncode == 0
    assert "hint" not in run("verify", journal, raw, "--block-size", "4K").stdout
    assert run("verify", journal, raw).returncode == 0  # the metadata entry (D30) says 4 KiB
    bare = tmp_path / "bare.qjournal"  # a journal without it: verify is told, or says what is likelier
    with qjournal.read(journal) as r, qjournal.create(bare, 2) as w:
        w.append_many([e for e in r.replay() if isinstance(e, qjournal.HashEntry)])
    journal = bare
    proc = run("verify", journal, raw)
    assert proc.returncode == 2
    assert (f"{journal}: hint: every one of the 32 entries checked fails, and the journal has no metadata entry (D30) to "
            f"say what it was made of: it was probably made at another block size than 65536 (give the one index was "
            f"given with --block-size), or of another image\n") in proc.stdout
    assert "block size" in json.loads(run("verify", journal, raw, "--output", "json").stdout)["likely_cause"]


# -- reserved bits of an L1 entry ---------------------------------------------------


@needs_qemu
def test_reserved_l1_bits_are_a_corrupt_image_for_every_command(tmp_path: Path) -> None:
    """An L1 entry with a reserved bit set (here bit 56, of entry 3: guest offsets 6-8 MiB) is what ``qemu-img check``
    counts as corruption ("ERROR found L1 entry with reserved bits set", exit code 2). index and analyze refuse the
    image in one line naming the entry's offset and index, and index makes no journal; verify reports the entry
    that maps a cluster under it (before the fix, index journalled the image and verify called it clean)."""
    path = tmp_path / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "8M")
    qemu_io(path, "write -P 0x11 0 8k", "write -P 0x22 6M 8k")
    assert run("index", path, tmp_path / "before.qjournal").returncode == 0
    data = path.read_bytes()
    ofs_l1 = struct.unpack_from(">Q", data, 40)[0]
    entry = struct.unpack_from(">Q", data, ofs_l1 + 3 * 8)[0]
    assert entry & ((1 << 56) - 1) and not entry & (0x7F << 56 | 0x1FF), f"L1 entry 3 is {entry:#x}"
    patched(path, path, (">Q", ofs_l1 + 3 * 8, entry | 1 << 56))
    check = subprocess.run(["qemu-img", "check", str(path)], check=False, capture_output=True, text=True)
    assert check.returncode == 2 and f"ERROR found L1 entry with reserved bits set: {entry | 1 << 56:x}" in check.stderr, check
    where = ofs_l1 + 3 * 8
    said = (f"qjournal: {path}: offset {where:#x} ({where}): the L1 entry 3 of guest offsets 0x600000-0x7fffff breaks the rule "
            f"/types/l1_entry/seq/1 of formats/qcow2.ksy (its reserved bits 56-62 must be zero)")
    for args in (("index", path, tmp_path / "after.qjournal"), ("analyze", path)):
        proc = run(*args)
        assert (proc.returncode, proc.stdout, proc.stderr.splitlines()) == (1, "", [said]), (args, proc)
    assert not (tmp_path / "after.qjournal").exists()
    proc = run("verify", tmp_path / "before.qjournal", path)
    assert proc.returncode == 2, proc
    assert "[logical_unreadable] the mapping of guest offset 0x600000 cannot be read: " + said.removeprefix("qjournal: ") in proc.stdout
