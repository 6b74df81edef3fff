"""qjournal.analysis: every figure of the JSON against figures computed here from QEMU's answers alone.

The oracle: ``qemu-img map --output=json`` says which guest ranges each image
stores, ``qemu-img convert -O raw`` what its guest reads (image_oracle.own_*);
the blocks, zero blocks, digests, histogram, per-image and cross-image
figures are computed from those bytes with hashlib and a Counter, never
from the library. Block sizes below, at and above the cluster sizes; images
sharing content; a sparse raw file; the spilled counts equal the in-memory ones.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import image_oracle as oracle
import pytest
import qemu_images as qi
from test_cli import SUBPROCESS_ENV

from qjournal.analysis import analyze
from qjournal.errors import JournalArgumentError

NAMES = [s.name for s in oracle.GUEST_IMAGES]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, qi.Image]:
    qi.require_qemu()
    return qi.build_all(oracle.GUEST_IMAGES, tmp_path_factory.mktemp("analyze-images"))


@pytest.fixture(scope="module")
def sparse_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sparse raw disk sharing a 4 KiB block (0x11) and a 64 KiB cluster's content (0x44) with the qcow2 images."""
    path = tmp_path_factory.mktemp("raw") / "sparse.raw"
    with open(path, "wb") as f:
        f.truncate(3 << 20)
        f.seek(64 << 10)
        f.write(b"\x44" * (64 << 10) + b"\x11" * 4096)
        f.seek((2 << 20) + 4096)
        f.write(b"\x11" * 4096 + b"\x00" * 4096 + b"\x47" * 1000)
    return path


@pytest.fixture(scope="module")
def views(images: dict[str, qi.Image], sparse_raw: Path) -> dict[str, tuple[bytes, list[tuple[int, int]]]]:
    """path -> (the guest's bytes of the image alone, [(start, length) of what it stores])."""
    out = {}
    for _name, image in images.items():
        stored = [(s, n) for s, n, status, _ in oracle.own_ranges(image) if status != "unallocated"]
        out[str(image.path)] = (oracle.own_guest_bytes(image), stored)
    raw = sparse_raw.read_bytes()
    out[str(sparse_raw)] = (raw, [(0, len(raw))])
    return out


def expected(views: dict[str, tuple[bytes, list[tuple[int, int]]]], paths: list[str], size: int) -> dict[str, Any]:
    """The figures at one block size, from the oracle's bytes alone."""
    per_image = []
    refs: Counter[bytes] = Counter()
    holders: dict[bytes, set[int]] = defaultdict(set)
    for k, path in enumerate(paths):
        data, stored = views[path]
        num = zero = 0
        digests: Counter[bytes] = Counter()
        for ofs in range(0, len(data), size):
            if not any(s < ofs + size and ofs < s + n for s, n in stored):
                continue
            num += 1
            block = data[ofs:ofs + size].ljust(size, b"\0")
            if block.count(0) == size:
                zero += 1
                continue
            d = hashlib.sha256(block).digest()
            digests[d] += 1
            refs[d] += 1
            holders[d].add(k)
        per_image.append((path, num, zero, digests))
    nonzero = sum(refs.values())
    rows: Counter[int] = Counter()
    referenced: Counter[int] = Counter()
    for n in refs.values():
        k = (n - 1).bit_length()
        rows[k] += 1
        referenced[k] += n
    labels = ["1", "2"] + [f"{(1 << (k - 1)) + 1}-{1 << k}" for k in range(2, 64)]
    histogram = [{"refcount": labels[k], "num_distinct": rows[k], "len_distinct": rows[k] * size,
                  "num_referenced": referenced[k], "len_referenced": referenced[k] * size}
                 for k in range(max(rows) + 1)] if rows else []
    imgs = []
    for k, (path, num, zero, digests) in enumerate(per_image):
        excl = sum(n for d, n in digests.items() if holders[d] == {k})
        imgs.append({"path": path, "num_blocks": num, "num_zero": zero, "num_distinct": len(digests),
                     "len_exclusive": excl * size, "len_shared": (sum(digests.values()) - excl) * size})
    return {"block_size": size, "num_blocks": sum(i["num_blocks"] for i in imgs), "num_zero": sum(i["num_zero"] for i in imgs),
            "num_distinct": len(refs), "num_duplicate": nonzero - len(refs), "len_saved": (nonzero - len(refs)) * size,
            "dedup_ratio": nonzero / len(refs) if refs else 1.0, "histogram": histogram, "images": imgs}


def expected_duplicates(views: dict[str, tuple[bytes, list[tuple[int, int]]]], paths: list[str], size: int) -> list[tuple[str, list[tuple[str, int]]]]:
    groups: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for k, path in enumerate(paths):
        data, stored = views[path]
        for ofs in range(0, len(data), size):
            block = data[ofs:ofs + size].ljust(size, b"\0")
            if block.count(0) != size and any(s < ofs + size and ofs < s + n for s, n in stored):
                groups[hashlib.sha256(block).digest()].append((k, ofs))
    dups = sorted(((d, b) for d, b in groups.items() if len(b) > 1), key=lambda x: (-len(x[1]), x[0]))
    return [(d.hex(), [(paths[k], o) for k, o in sorted(b)]) for d, b in dups]


@pytest.mark.parametrize("name", NAMES)
def test_one_image_at_sizes_below_at_and_above_its_clusters(name: str, images: dict[str, qi.Image], views: dict[str, tuple[bytes, list[tuple[int, int]]]]) -> None:
    path = str(images[name].path)
    sizes = [512, 4096, 65536, 262144]
    with analyze([path], block_sizes=sizes, jobs=2) as a:
        got = a.to_dict()
    assert got["block_sizes"] == [expected(views, [path], b) for b in sizes]


def test_images_sharing_content_with_a_sparse_raw_file(images: dict[str, qi.Image], views: dict[str, tuple[bytes, list[tuple[int, int]]]], sparse_raw: Path) -> None:
    paths = [str(images[n].path) for n in NAMES] + [str(sparse_raw)]
    sizes = [512, 4096, 16384, 65536, 2 << 20]
    with analyze(paths, block_sizes=sizes, list_duplicates=True) as a:
        got = json.loads(json.dumps(a.to_dict()))
        listed = {b: [(d.digest.hex(), d.blocks) for d in a.duplicates(b)] for b in (4096, 65536)}
    want = [expected(views, paths, b) for b in sizes]
    assert got["block_sizes"] == want
    assert any(i["len_shared"] for i in want[1]["images"]) and want[1]["num_duplicate"] > want[3]["num_duplicate"] > 0
    assert got["not_read"][NAMES.index("g_snap_backing")] == {
        "path": paths[NAMES.index("g_snap_backing")], "backing_file": "idx_base.qcow2", "num_snapshots": 1,
        "snapshot_names": ["before"], "is_dirty": False}
    for b in (4096, 65536):
        assert listed[b] == [(d, [tuple(x) for x in blocks]) for d, blocks in expected_duplicates(views, paths, b)]


def qjournal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qjournal", *args], capture_output=True, text=True, env=SUBPROCESS_ENV,
                          timeout=300, check=False)


def label(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size >> 10} KiB" if size < 1 << 20 else f"{size >> 20} MiB"


def test_the_command_prints_the_figures_and_what_was_not_read(images: dict[str, qi.Image], views: dict[str, tuple[bytes, list[tuple[int, int]]]], sparse_raw: Path) -> None:
    paths = [str(images[n].path) for n in NAMES] + [str(sparse_raw)]
    sizes = [4096, 16384, 65536]
    proc = qjournal("analyze", *paths, "--block-size", "4K,16K,64K", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["block_sizes"] == [expected(views, paths, b) for b in sizes]
    proc = qjournal("analyze", *paths, "--block-size", "4K,16K,64K")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = proc.stdout.splitlines()
    want = [expected(views, paths, b) for b in sizes]
    for w in want:
        nonzero = w["num_blocks"] - w["num_zero"]
        assert f"block size {label(w['block_size'])}: {w['num_blocks']} blocks stored ({w['num_zero']} zero, {nonzero} non-zero), " \
               f"{w['num_distinct']} distinct digests" in text
        assert any(t.startswith(f"  (the rows partition the non-zero blocks: their referenced blocks add up to {nonzero},") for t in text)
        assert any(t.startswith(f"at {label(w['block_size'])}: ") and t.endswith(f" saved, ratio {w['dedup_ratio']:.2f}") for t in text)
        rows = [t.split() for t in text if t.split() and t.split()[0] in {h["refcount"] for h in w["histogram"]} | {"Total"}]
        assert rows  # the zdb-style rows are printed
    best = max(want, key=lambda w: (w["len_saved"], -w["block_size"]))
    assert text[-2].startswith(f"most saved at {label(best['block_size'])}: ") and text[-2].endswith(f"({best['len_saved']} bytes)")
    assert text[-1] == f"not read: {paths[NAMES.index('g_snap_backing')]}: the backing file 'idx_base.qcow2' and 1 internal snapshot ('before')"


def test_the_command_lists_duplicates_as_json_lines(images: dict[str, qi.Image], views: dict[str, tuple[bytes, list[tuple[int, int]]]]) -> None:
    paths = [str(images["g_repeats_c64k"].path), str(images["g_shared_c4k"].path)]
    proc = qjournal("analyze", *paths, "--block-size", "64K", "--output", "json", "--list-duplicates")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["block_sizes"] == [expected(views, paths, 65536)]
    assert [(d["digest"], [(b["path"], b["offset"]) for b in d["blocks"]]) for d in lines[1:]] == expected_duplicates(views, paths, 65536)
    assert all(d["num_refs"] == len(d["blocks"]) and d["len_referenced"] == 65536 * len(d["blocks"]) for d in lines[1:])
    text = qjournal("analyze", *paths, "--block-size", "64K", "--list-duplicates").stdout.splitlines()
    i = text.index("duplicates at 64 KiB, most bytes first:")
    assert len(text) - i - 1 == len(lines) - 1 and f"{paths[0]}@0x" in text[i + 1]


def test_the_command_refuses_bad_block_sizes_and_images_in_one_line(images: dict[str, qi.Image], tmp_path: Path) -> None:
    path = str(images["g_repeats_c64k"].path)
    for bad in ("3K", "4M", "256", "4K,x"):
        proc = qjournal("analyze", path, "--block-size", bad)
        assert proc.returncode == 1 and proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    missing = tmp_path / "missing.qcow2"
    proc = qjournal("analyze", path, str(missing))
    assert proc.returncode == 1 and proc.stderr == f"qjournal: {missing}: no such file\n"
    assert "Definitions. The guest disk of each image is cut into blocks of B bytes" in " ".join(qjournal("analyze", "--help").stdout.split())


def test_spilled_counts_are_the_counts(images: dict[str, qi.Image], views: dict[str, tuple[bytes, list[tuple[int, int]]]], sparse_raw: Path) -> None:
    """A memory limit of a few digests: the counts go to SQLite, and every figure is the same."""
    paths = [str(images[n].path) for n in NAMES] + [str(sparse_raw)]
    sizes = [512, 4096, 65536]
    with analyze(paths, block_sizes=sizes, memory_limit=2000, list_duplicates=True, jobs=1) as a:
        assert a._store is not None and a._store.spilled == set(sizes)
        assert a.to_dict()["block_sizes"] == [expected(views, paths, b) for b in sizes]
        assert [(d.digest.hex(), d.blocks) for d in a.duplicates(512)] == expected_duplicates(views, paths, 512)


def test_the_default_block_size_is_the_first_images_cluster_size_and_progress_reaches_the_end(images: dict[str, qi.Image]) -> None:
    paths = [images["g_shared_c4k"].path, images["g_repeats_c64k"].path]
    seen: list[int] = []
    a = analyze(paths, progress=seen.append)
    assert [b.block_size for b in a.block_sizes] == [4096]
    assert seen == sorted(seen) and seen[-1] == (1 << 20) + (2 << 20)
    with pytest.raises(JournalArgumentError):
        a.duplicates(4096)
    for bad in ([1000], [4 << 20], [256]):
        with pytest.raises(JournalArgumentError):
            analyze(paths, block_sizes=bad)
    with pytest.raises(JournalArgumentError):
        analyze([])


def test_a_real_ext4_file_system_with_duplicate_files(tmp_path: Path) -> None:
    """The README's analysis: an ext4 made by mkfs.ext4 -d from a folder holding two copies of the same files, as a
    qcow2 image of 64 KiB clusters: every figure against the oracle, and the story the README tells (4 KiB blocks
    find the copies, 16 KiB and 64 KiB blocks do not)."""
    import random
    import shutil as sh

    qi.require_qemu()
    mkfs = sh.which("mkfs.ext4") or ("/usr/sbin/mkfs.ext4" if Path("/usr/sbin/mkfs.ext4").exists() else None)
    if mkfs is None:
        from ksy_toolchain import unavailable

        unavailable("mkfs.ext4", "mkfs.ext4 not installed (Debian: apt-get install e2fsprogs)")
    rnd = random.Random(2026)
    photos = tmp_path / "tree" / "photos"
    photos.mkdir(parents=True)
    for name, size in (("a.jpg", 700_000), ("b.jpg", 1_300_000), ("c.jpg", 90_000), ("d.jpg", 2_000_000)):
        (photos / name).write_bytes(rnd.randbytes(size))
    sh.copytree(photos, tmp_path / "tree" / "backup")
    raw = tmp_path / "fs.raw"
    subprocess.run([mkfs, "-q", "-b", "4096", "-d", str(tmp_path / "tree"), str(raw), "32M"], check=True, capture_output=True)
    image = qi.Image(tmp_path / "fs.qcow2", qi.ImageSpec("fs"))
    qi.run_qemu(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(image.path)])
    stored = [(s, n) for s, n, status, _ in oracle.own_ranges(image) if status != "unallocated"]
    views = {str(image.path): (oracle.own_guest_bytes(image), stored)}
    proc = qjournal("analyze", str(image.path), "--block-size", "4K,16K,64K", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["block_sizes"]
    assert got == [expected(views, [str(image.path)], b) for b in (4096, 16384, 65536)]
    at_4k, at_16k, at_64k = got
    copied = sum(-(-size // 4096) for size in (700_000, 1_300_000, 90_000, 2_000_000))
    assert at_4k["num_duplicate"] >= copied and 1.9 < at_4k["dedup_ratio"] < 2.1
    assert at_16k["len_saved"] < 16384 * 4 and at_64k["len_saved"] < 65536 * 2
