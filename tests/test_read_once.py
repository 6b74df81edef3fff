"""A host cluster that many guest clusters use is read and hashed once (D31), and an L2 table used twice is refused.

The image: one 64 KiB data cluster under every L2 entry of a 64 MiB disk, its
refcount set to the number of uses, so that ``qemu-img check`` finds it
consistent (a deduplicated image taken to the extreme, or a "zip bomb" that
counts its references). The figures must be those of reading every use: the
same as for ``qemu-img convert``'s plain copy, which stores every cluster, and
as ``analyze --list-duplicates``, which reads every use; the bytes read are
one cluster's.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_image_edges import _OFS, _u64, mapped, needs_qemu, qemu_img, run

from qjournal.guest import GuestReader, Status
from qjournal.image import open_image

__all__ = ["mapped"]  # the fixture, used below

CS = 64 << 10
NUM = 1024
"""Guest clusters, all of them the same host cluster."""
_COPIED = 1 << 63


def _cluster() -> bytes:
    """16 blocks of 4 KiB: 10 distinct, 2 repeats of them, 4 of zeros."""
    blocks = [os.urandom(4096) for _ in range(10)]
    return b"".join([*blocks, blocks[0], blocks[1], *[bytes(4096)] * 4])


def _set_refcount(b: bytearray, host: int, refcount: int) -> None:
    """The 16-bit refcount of the host cluster at ``host`` (the first refcount block covers it)."""
    block = _u64(b, _u64(b, 48)) & _OFS
    struct.pack_into(">H", b, block + 2 * (host // CS), refcount)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the image whose every guest cluster is one host cluster, qemu-img convert's plain copy of it)."""
    d = tmp_path_factory.mktemp("once")
    src = d / "one.raw"
    with open(src, "wb") as f:
        f.write(_cluster())
        f.truncate(NUM * CS)
    path = d / "shared.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", "-o", f"cluster_size={CS}", src, path)
    b = bytearray(path.read_bytes())
    l2 = _u64(b, _u64(b, 40)) & _OFS
    host = _u64(b, l2) & _OFS
    b[l2 : l2 + 8 * NUM] = struct.pack(">Q", host) * NUM  # every entry, COPIED clear: the cluster is shared
    _set_refcount(b, host, NUM)
    path.write_bytes(bytes(b))
    check = subprocess.run(["qemu-img", "check", str(path)], check=False, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr  # QEMU finds it consistent
    plain = d / "plain.qcow2"
    qemu_img("convert", "-O", "qcow2", path, plain)
    return path, plain


def _json(*args: str | Path) -> Any:
    proc = run(*args, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    return json.JSONDecoder().raw_decode(proc.stdout)[0]  # the report (--list-duplicates adds a line per shared digest)


@needs_qemu
def test_the_reader_reads_a_shared_cluster_at_its_first_use_only(shared: tuple[Path, Path]) -> None:
    path, _ = shared
    with open_image(path) as img, GuestReader(img) as reader:
        firsts = reader.first_uses()
        assert list(firsts.values()) == [(0, NUM)]
        for size in (512, 4096, CS):
            for len_batch in (size, 3 * CS, 4 << 20):  # batches never cut a cluster, whatever their length
                total = read = 0
                batches = list(reader.blocks(size, once=True, len_batch=len_batch))
                assert len(batches) == 1  # a batch holds two clusters at least; the later uses are left out
                for batch in batches:
                    assert batch.ofs_guest % CS == 0
                    total += sum(batch.weight(i) for i in range(batch.num_blocks))
                    read += sum(s.length for s in batch.spans if s.status is Status.DATA)
                    if batch.ofs_guest == 0:
                        assert batch.weight(0) == NUM and batch.data is not None and bytes(batch.block(0)) != bytes(size)
                assert total == NUM * CS // size  # every use counted once
                assert read == CS  # and one cluster read
        plain = [b.weights for b in reader.blocks(4096)]
        assert plain == [None] * len(plain)  # without once: every use read


@needs_qemu
def test_index_reads_one_cluster_and_counts_every_use(shared: tuple[Path, Path], tmp_path: Path) -> None:
    path, plain = shared
    once = _json("index", path, tmp_path / "a.qjournal")
    copy = _json("index", plain, tmp_path / "b.qjournal")
    assert once["len_read"] == CS and copy["len_read"] == NUM * CS
    assert (once["num_unique"], once["num_shared"], once["num_duplicate"]) == (1, NUM - 1, 0)
    assert (copy["num_unique"], copy["num_shared"], copy["num_duplicate"]) == (1, 0, NUM - 1)
    assert once["histogram"] == copy["histogram"]
    small = _json("index", path, tmp_path / "c.qjournal", "--block-size", "4K")
    assert small["len_read"] == CS and small["num_zero"] == 4 * NUM
    assert (small["num_unique"], small["num_duplicate"], small["num_shared"]) == (10, 2, 12 * (NUM - 1))
    report = _json("verify", tmp_path / "a.qjournal", path, "--all")
    scan = report["all_blocks"]
    assert (scan["num_hashed"], scan["len_read"], scan["is_clean"]) == (NUM, CS, True)


@needs_qemu
def test_analyze_of_a_shared_cluster_agrees_with_reading_every_use(shared: tuple[Path, Path]) -> None:
    path, plain = shared
    sizes = ("--block-size", "512,4K,64K")
    once = _json("analyze", path, *sizes)
    listed = _json("analyze", path, *sizes, "--list-duplicates")  # reads every use
    copy = _json("analyze", plain, *sizes)

    def figures(report: Any) -> list[Any]:
        keys = ("block_size", "num_blocks", "num_zero", "num_distinct", "num_duplicate", "len_saved", "histogram")
        return [{k: f[k] for k in keys} for f in report["block_sizes"]]

    assert figures(once) == figures(listed) == figures(copy)
    at_4k = next(f for f in once["block_sizes"] if f["block_size"] == 4096)
    assert (at_4k["num_blocks"], at_4k["num_zero"], at_4k["num_distinct"]) == (16 * NUM, 4 * NUM, 10)


@needs_qemu
def test_an_l2_table_used_twice_is_refused_whatever_its_refcount(mapped: tuple[Path, bytearray, int, int],
                                                                  tmp_path: Path) -> None:
    _, b, ofs_l1, ofs_l2 = mapped
    struct.pack_into(">I", b, 36, 4)  # l1_size
    struct.pack_into(">Q", b, 24, 4 << 29)  # 2 GiB: four L1 entries
    entry = (_u64(b, ofs_l1) & ~_COPIED).to_bytes(8, "big")
    b[ofs_l1 : ofs_l1 + 32] = entry * 4
    _set_refcount(b, ofs_l2, 4)  # the refcount allows four uses: refused all the same (D31)
    img = tmp_path / "bad.qcow2"
    img.write_bytes(bytes(b))
    for args in (("index", img, tmp_path / "j.qjournal"), ("analyze", img)):
        proc = run(*args)
        assert proc.returncode == 1, proc.stdout
        assert f"the L1 entry at {ofs_l1 + 8:#x} uses the L2 table at host cluster {ofs_l2:#x} again" in proc.stderr
        assert "internal error" not in proc.stderr
    assert not (tmp_path / "j.qjournal").exists()
    proc = run("index", img, tmp_path / "j.qjournal", "--output", "json")
    assert json.loads(proc.stdout or proc.stderr)["error"]["code"] == "shared_l2_table"


@needs_qemu
def test_a_disk_of_half_a_terabyte_that_is_one_cluster_reads_that_cluster_once(tmp_path: Path) -> None:
    """The issue's "zip bomb" with refcounts that claim it (qemu-img check clean): 262,144 L2 entries of one 2 MiB
    cluster, a 12 MiB file naming 512 GiB. Hashing every use would read 512 GiB; index reads 2 MiB."""
    path = tmp_path / "bomb.qcow2"
    cs, n = 2 << 20, (2 << 20) // 8
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"cluster_size={cs},refcount_bits=32", path, "512G")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", "-c", "write -P 0x33 1M 1M", str(path)],
                   check=True, capture_output=True)
    b = bytearray(path.read_bytes())
    l2 = _u64(b, _u64(b, 40)) & _OFS
    host = _u64(b, l2) & _OFS
    b[l2 : l2 + 8 * n] = struct.pack(">Q", host) * n
    struct.pack_into(">I", b, (_u64(b, _u64(b, 48)) & _OFS) + 4 * (host // cs), n)  # 32-bit refcounts
    path.write_bytes(bytes(b))
    assert subprocess.run(["qemu-img", "check", str(path)], check=False, capture_output=True).returncode == 0
    report = _json("index", path, tmp_path / "j.qjournal")
    assert (report["len_read"], report["num_unique"], report["num_shared"]) == (cs, 1, n - 1)
    at_512 = _json("analyze", path, "--block-size", "512")["block_sizes"][0]
    assert (at_512["num_blocks"], at_512["num_distinct"]) == (n * cs // 512, 2)
