"""qjournal.dedup against QEMU's tools: deduplicated images that QEMU reads, checks and writes.

Every source is made by qemu-img/qemu-io (tests/qemu_images.py) or, for raw
sources, written here. For each: the source is byte-identical afterwards;
``qemu-img check`` of the target exits 0 with no leak; ``qemu-img compare
SOURCE TARGET`` exits 0; the distinct host data clusters of ``qemu-img map``
of the target are as many as the distinct non-zero contents QEMU reads from
the clusters the source stores; the target's size is at most those clusters
and its metadata; the journal is what ``qjournal index TARGET`` writes and
``qjournal verify`` finds it good; a guest write into a shared cluster leaves
the target equal to the same write on a copy of the source, and ``qemu-img
check -r all`` then leaves it clean. Crash: SIGKILL at random moments never
leaves a TARGET under its name (QJOURNAL_DEDUP_CRASH_RUNS runs, default 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi
from helpers import stderr_on_a_terminal
from qemu_images import Bitmap, Compress, ImageSpec, KiB, MiB, Snapshot, Write, Zero

from qjournal.deduplicating import DedupReport, dedup
from qjournal.errors import JournalArgumentError, UnsupportedImageError
from qjournal.generated.qcow2 import Qcow2
from qjournal.qemulock import ImageInUseError

CRASH_RUNS = int(os.environ.get("QJOURNAL_DEDUP_CRASH_RUNS", "3"))


def _repeats(cs: int, unit: int) -> tuple[Write | Zero, ...]:
    """Repeated contents at ``unit`` granularity, zero clusters, all-zero data, unallocated gaps, in clusters of ``cs``."""
    return (
        Write(0, 4 * cs, 0xAA), Write(4 * cs, unit, 0xBB), Write(6 * cs, 2 * cs, 0xAA), Write(9 * cs, unit, 0xBB),
        Write(10 * cs, cs, 0x00), Zero(12 * cs, 2 * cs), Write(15 * cs, unit, 0xCC), Write(15 * cs + unit, unit, 0xAA),
    )


_BASE = ImageSpec("dd_base", cluster_size=64 * KiB, size=2 * MiB, steps=(Write(0, 2 * MiB, 0x11), Write(256 * KiB, 64 * KiB, 0xAA)))
_EXT_STEPS = (
    Write(0, 4 * KiB, 0xAA), Write(256 * KiB, 4 * KiB, 0xAA), Write(64 * KiB, 64 * KiB, 0xAA), Write(128 * KiB + 2 * KiB, 2 * KiB, 0xBB),
    Zero(192 * KiB + 4 * KiB, 8 * KiB), Write(192 * KiB + 32 * KiB, 4 * KiB, 0xCC), Write(512 * KiB, 64 * KiB, 0xAA),
)
"""Subclusters (2 KiB) allocated one by one, zero subclusters, and clusters whose contents repeat."""
SPECS: dict[str, ImageSpec] = {s.name: s for s in (
    ImageSpec("dd_v3_64k", cluster_size=64 * KiB, size=2 * MiB, steps=_repeats(64 * KiB, 64 * KiB)),
    ImageSpec("dd_v2_64k", cluster_size=64 * KiB, compat="0.10", size=2 * MiB,
              steps=tuple(s for s in _repeats(64 * KiB, 64 * KiB) if isinstance(s, Write))),
    ImageSpec("dd_v3_4k", cluster_size=4 * KiB, size=256 * KiB, steps=_repeats(4 * KiB, 4 * KiB)),
    ImageSpec("dd_v3_2m", cluster_size=2 * MiB, size=40 * MiB, steps=_repeats(2 * MiB, 2 * MiB)),
    ImageSpec("dd_sub_4k", cluster_size=64 * KiB, size=2 * MiB, steps=_repeats(64 * KiB, 4 * KiB)),
    ImageSpec("dd_all_zero", cluster_size=64 * KiB, size=1 * MiB, steps=(Write(0, 1 * MiB, 0x00),)),
    ImageSpec("dd_backing", cluster_size=64 * KiB, size=2 * MiB, backing=_BASE,
              steps=(Write(0, 128 * KiB, 0xAA), Zero(512 * KiB, 128 * KiB), Write(1 * MiB, 64 * KiB, 0xAA),
                     Write(1536 * KiB, 64 * KiB, 0x00))),
    ImageSpec("dd_zlib", cluster_size=64 * KiB, size=2 * MiB, steps=(*_repeats(64 * KiB, 64 * KiB), Compress())),
    ImageSpec("dd_zstd", cluster_size=64 * KiB, size=2 * MiB, options=(("compression_type", "zstd"),),
              steps=(*_repeats(64 * KiB, 64 * KiB), Compress(), Write(20 * 64 * KiB, 64 * KiB, 0xAA))),
    ImageSpec("dd_ext_l2", cluster_size=64 * KiB, size=2 * MiB, options=(("extended_l2", "on"),), steps=_EXT_STEPS),
    ImageSpec("dd_ext_l2_backing", cluster_size=64 * KiB, size=2 * MiB, options=(("extended_l2", "on"),), backing=_BASE,
              steps=_EXT_STEPS),
    ImageSpec("dd_snapshot", size=1 * MiB, steps=(Write(0, 64 * KiB, 1), Snapshot("s1"))),
    ImageSpec("dd_bitmap", size=1 * MiB, steps=(Write(0, 128 * KiB, 1), Bitmap("b0"))),
    ImageSpec("dd_luks", size=1 * MiB, luks_passphrase="secret", steps=(Write(0, 64 * KiB, 1),)),
    ImageSpec("dd_data_file", size=1 * MiB, options=(("data_file", "dd_data_file.data"),), steps=(Write(0, 64 * KiB, 1),)),
)}
"""Sources: repeated clusters, zero clusters, all-zero data, v2 and v3, 4 KiB / 64 KiB / 2 MiB clusters, a backing file."""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, qi.Image]:
    qi.require_qemu()
    return qi.build_all(SPECS.values(), tmp_path_factory.mktemp("dedup_sources"))


def run(args: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, cwd=cwd, timeout=300)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def qemu_map(path: Path, fmt: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(run(["qemu-img", "map", "--output=json", "-f", fmt, str(path)], cwd=path.parent).stdout)
    return out


def guest_disk(path: Path, fmt: str, tmp: Path) -> bytes:
    out = tmp / f"{path.name}.guest.raw"
    run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(path), str(out)], cwd=path.parent)
    data = out.read_bytes()
    out.unlink()
    return data


def distinct_stored_contents(source: Path, fmt: str, cs: int, tmp: Path) -> int:
    """The oracle: distinct non-zero contents of the target-sized clusters holding bytes the source itself stores as data."""
    disk = guest_disk(source, fmt, tmp)
    size = len(disk)
    stored: set[int] = set()
    for e in qemu_map(source, fmt):
        if e["depth"] == 0 and e["data"]:
            stored.update(range(e["start"] // cs, -(-(e["start"] + e["length"]) // cs)))
    contents = {disk[c * cs : (c + 1) * cs].ljust(cs, b"\0") for c in stored if c * cs < size}
    contents.discard(bytes(cs))
    return len(contents)


def host_data_clusters(target: Path, cs: int) -> set[int]:
    size = os.path.getsize(target)
    units = qi.map_units(qemu_map(target, "qcow2"), cs, int(json.loads(run(
        ["qemu-img", "info", "--output=json", str(target)], cwd=target.parent).stdout)["virtual-size"]))
    assert size >= 0
    return {u["offset"] for u in units if u["data"] and u["depth"] == 0}


def metadata_clusters(target: Path) -> int:
    """Header, L1, refcount table and blocks, and one L2 table per allocated L1 entry, read by the generated parser."""
    q = Qcow2.from_file(str(target))
    try:
        h = q.header
        cs = h.cluster_size
        l1 = -(-8 * h.num_l1_entries // cs)
        blocks = sum(1 for e in q.refcount_table.entries if e.ofs_refcount_block)
        l2 = sum(1 for e in q.l1_table.entries if e.is_allocated)
        return int(1 + l1 + h.num_refcount_table_clusters + blocks + l2)
    finally:
        q.close()


def qemu_check_clean(target: Path) -> dict[str, Any]:
    proc = run(["qemu-img", "check", "--output=json", str(target)], cwd=target.parent, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report["check-errors"] == 0 and not report.get("leaks") and not report.get("corruptions"), report
    return report


def check_target(source: Path, fmt: str, target: Path, report: DedupReport, tmp: Path) -> None:
    """Every oracle of the module's note but the write."""
    cs = report.cluster_size
    qemu_check_clean(target)
    run(["qemu-img", "compare", "-f", fmt, "-F", "qcow2", str(source), str(target)], cwd=source.parent)
    hosts = host_data_clusters(target, cs)
    want = distinct_stored_contents(source, fmt, cs, tmp)
    assert want == report.num_distinct
    extra = report.num_data // 65535  # copies beyond the first of a content shared more than 16-bit refcounts hold
    assert report.num_distinct <= len(hosts) == report.num_stored <= report.num_distinct + extra
    assert os.path.getsize(target) <= (len(hosts) + metadata_clusters(target)) * cs
    assert os.path.getsize(target) == report.len_target
    journal = Path(f"{target}.qjournal")
    verify = run([sys.executable, "-m", "qjournal", "verify", str(journal), str(target)], check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = tmp / f"{target.name}.indexed"
    run([sys.executable, "-m", "qjournal", "index", str(target), str(again)])
    assert again.read_bytes() == journal.read_bytes()
    again.unlink()


def write_into_shared_cluster(source: Path, fmt: str, target: Path, report: DedupReport, tmp: Path) -> None:
    """The same guest write into a shared cluster of the target and into a copy of the source: equal afterwards, and repairable."""
    cs = report.cluster_size
    units = qi.map_units(qemu_map(target, "qcow2"), cs, report.len_virtual_disk)
    users: dict[int, list[int]] = {}
    for u in units:
        if u["data"] and u["depth"] == 0:
            users.setdefault(u["offset"], []).append(u["start"])
    shared_by = sorted((len(g), g[-1]) for g in users.values() if len(g) > 1)
    assert shared_by, "the image has no shared cluster to write into"
    shared = shared_by[0][1]  # fewest users: with two, the write leaves one at refcount 1 without COPIED, which -r all repairs
    copy = tmp / f"copy-of-{source.name}"
    shutil.copy(source, copy)
    for path, f in ((copy, fmt), (target, "qcow2")):
        run(["qemu-io", "-f", f, "-c", f"write -P 0x5c {shared + min(512, cs // 2)} 512", str(path)], cwd=source.parent)
    run(["qemu-img", "compare", "-f", fmt, "-F", "qcow2", str(copy), str(target)], cwd=source.parent)
    if shared_by[0][0] == 2:  # what the README says QEMU leaves: the other user at refcount 1, COPIED clear
        before = run(["qemu-img", "check", str(target)], cwd=target.parent, check=False)
        assert before.returncode == 2 and "ERROR OFLAG_COPIED data cluster" in before.stdout + before.stderr
    run(["qemu-img", "check", "-r", "all", str(target)], cwd=target.parent, check=False)
    qemu_check_clean(target)
    run(["qemu-img", "compare", "-f", fmt, "-F", "qcow2", str(copy), str(target)], cwd=source.parent)
    copy.unlink()


def dedup_and_check(source: Path, fmt: str, tmp: Path, *, cluster_size: int | None = None, write: bool = True,
                    drop_bitmaps: bool = False) -> DedupReport:
    before = file_digest(source)
    target = tmp / f"{source.name}.{cluster_size or 'same'}.dedup.qcow2"
    if source.parent != tmp and fmt == "qcow2":  # a backing file's relative name resolves beside the target too
        for f in source.parent.iterdir():
            if f.suffix in (".qcow2", ".raw") and f != source and not (tmp / f.name).exists():
                shutil.copy(f, tmp / f.name)
    report = dedup(source, target, cluster_size=cluster_size, drop_bitmaps=drop_bitmaps)
    assert file_digest(source) == before
    check_target(source, fmt, target, report, tmp)
    if write and report.num_shared:
        write_into_shared_cluster(source, fmt, target, report, tmp)
    assert file_digest(source) == before
    return report


@pytest.mark.parametrize("name", ["dd_v3_64k", "dd_v2_64k", "dd_v3_4k", "dd_v3_2m", "dd_all_zero", "dd_backing", "dd_zlib",
                                  "dd_zstd", "dd_ext_l2"])
def test_dedup_of_qemu_images(images: dict[str, qi.Image], tmp_path: Path, name: str) -> None:
    report = dedup_and_check(images[name].path, "qcow2", tmp_path)
    cs = SPECS[name].cluster_size
    assert report.cluster_size == cs
    if name == "dd_all_zero":
        assert (report.num_data, report.num_stored, report.len_target) == (0, 0, report.len_target)
    elif name == "dd_backing":
        assert report.backing_file_name == "dd_base.qcow2" and report.backing_format == "qcow2"
        info = json.loads(run(["qemu-img", "info", "--output=json", str(report.target)], cwd=tmp_path).stdout)
        assert (info["backing-filename"], info["backing-filename-format"]) == ("dd_base.qcow2", "qcow2")
        # the zero cluster over the backing file's data stays a zero cluster, unallocated stays unallocated
        units = qi.map_units(qemu_map(Path(report.target), "qcow2"), cs, SPECS[name].size)
        assert [u["zero"] and u["depth"] == 0 for u in units[8:10]] == [True, True]
        assert all(u["depth"] == 1 for u in units[2:8])
        assert report.num_unallocated == 32 - 6
    else:
        assert report.num_shared >= 2 and report.num_duplicate >= 1 and report.dedup_ratio > 1


@pytest.mark.parametrize(("name", "cs"), [("dd_sub_4k", 4 * KiB), ("dd_v3_4k", 64 * KiB), ("dd_v3_64k", 512),
                                         ("dd_zstd", 4 * KiB), ("dd_ext_l2_backing", 2 * KiB), ("dd_ext_l2", 128 * KiB)])
def test_change_of_cluster_size(images: dict[str, qi.Image], tmp_path: Path, name: str, cs: int) -> None:
    report = dedup_and_check(images[name].path, "qcow2", tmp_path, cluster_size=cs)
    assert (report.cluster_size, report.source_cluster_size) == (cs, SPECS[name].cluster_size)


def test_smaller_clusters_find_more_duplicates(images: dict[str, qi.Image], tmp_path: Path) -> None:
    big = dedup(images["dd_sub_4k"].path, tmp_path / "64k.qcow2", journal=False)
    small = dedup(images["dd_sub_4k"].path, tmp_path / "4k.qcow2", cluster_size=4 * KiB, journal=False)
    assert small.num_stored * small.cluster_size < big.num_stored * big.cluster_size


def raw_source(path: Path, cs: int, num: int, seed: int) -> Path:
    """A raw file of ``num`` clusters: repeated contents, zeros, a hole, and a last partial cluster."""
    rng = random.Random(seed)
    pool = [rng.randbytes(cs) for _ in range(5)] + [bytes(cs)]
    with open(path, "wb") as f:
        for i in range(num):
            if i % 7 == 3:
                f.seek(cs, os.SEEK_CUR)  # a hole
            else:
                f.write(rng.choice(pool))
        f.write(pool[0][: cs // 2 + 512])
    return path


def test_raw_source(tmp_path: Path) -> None:
    qi.require_qemu()
    src = raw_source(tmp_path / "disk.raw", 64 * KiB, 40, 1)
    report = dedup_and_check(src, "raw", tmp_path)
    assert report.format == "raw" and report.cluster_size == 64 * KiB and report.len_virtual_disk == os.path.getsize(src)
    assert report.num_stored <= 6


def test_empty_disks(tmp_path: Path) -> None:
    qi.require_qemu()
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "empty.qcow2"), "0"])
    (tmp_path / "empty.raw").write_bytes(b"")
    for name, fmt in (("empty.qcow2", "qcow2"), ("empty.raw", "raw")):
        report = dedup_and_check(tmp_path / name, fmt, tmp_path, write=False)
        assert (report.len_virtual_disk, report.num_guest_clusters, report.num_stored) == (0, 0, 0)


def test_refcount_overflow_makes_a_second_copy(tmp_path: Path) -> None:
    """More than 65,535 references to one content: a second host cluster (16-bit refcounts)."""
    qi.require_qemu()
    src = tmp_path / "same.raw"
    src.write_bytes(b"\x42" * 512 * 70000)
    report = dedup_and_check(src, "raw", tmp_path, cluster_size=512, write=False)
    assert (report.num_distinct, report.num_stored, report.num_shared) == (1, 2, 70000)


def test_spilled_map_writes_the_same_image(tmp_path: Path) -> None:
    qi.require_qemu()
    src = raw_source(tmp_path / "disk.raw", 4 * KiB, 3000, 2)  # several batches, holes among data: reused buffers
    a = dedup_and_check(src, "raw", tmp_path, cluster_size=4096, write=False)
    shutil.copy(a.target, tmp_path / "a.qcow2")
    shutil.copy(f"{a.target}.qjournal", tmp_path / "a.qcow2.qjournal")
    b = dedup(src, tmp_path / "b.qcow2", cluster_size=4096, memory_limit=150 * 3, jobs=1)
    assert (tmp_path / "a.qcow2").read_bytes() == (tmp_path / "b.qcow2").read_bytes()
    assert (tmp_path / "a.qcow2.qjournal").read_bytes() == (tmp_path / "b.qcow2.qjournal").read_bytes()
    assert b.num_stored > 3  # the map did spill
    assert (a.num_stored, a.num_shared) == (b.num_stored, b.num_shared)


def test_progress_and_journal_options(tmp_path: Path) -> None:
    qi.require_qemu()
    src = raw_source(tmp_path / "disk.raw", 4 * KiB, 300, 3)
    seen: list[int] = []
    r = dedup(src, tmp_path / "t.qcow2", journal=tmp_path / "elsewhere.qj", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 2 * r.len_virtual_disk
    assert (tmp_path / "elsewhere.qj").exists() and not (tmp_path / "t.qcow2.qjournal").exists()
    r = dedup(src, tmp_path / "u.qcow2", journal=False)
    assert r.journal is None and not (tmp_path / "u.qcow2.qjournal").exists()


@pytest.mark.parametrize(("name", "code", "words"), [
    ("dd_snapshot", "snapshots", "qemu-img convert -l"),
    ("dd_bitmap", "bitmaps", "--drop-bitmaps"),
    ("dd_luks", "encryption", "encrypted"),
    ("dd_data_file", "external_data_file", "external data file"),
])
def test_refusals_write_nothing(images: dict[str, qi.Image], tmp_path: Path, name: str, code: str, words: str) -> None:
    src = images[name].path
    before = file_digest(src)
    with pytest.raises(UnsupportedImageError, match=words) as exc:
        dedup(src, tmp_path / "t.qcow2")
    assert exc.value.code == code
    assert list(tmp_path.iterdir()) == [] and file_digest(src) == before


def test_drop_bitmaps(images: dict[str, qi.Image], tmp_path: Path) -> None:
    report = dedup_and_check(images["dd_bitmap"].path, "qcow2", tmp_path, drop_bitmaps=True)
    assert report.dropped_bitmaps == ("b0",)


def test_target_refusals(images: dict[str, qi.Image], tmp_path: Path) -> None:
    src = images["dd_v3_64k"].path
    (tmp_path / "exists.qcow2").write_bytes(b"keep")
    with pytest.raises(JournalArgumentError, match="exists"):
        dedup(src, tmp_path / "exists.qcow2")
    assert (tmp_path / "exists.qcow2").read_bytes() == b"keep"
    (tmp_path / "link.qcow2").symlink_to(src)
    with pytest.raises(JournalArgumentError, match="source image itself"):
        dedup(src, tmp_path / "link.qcow2")
    (tmp_path / "t.qcow2.qjournal").write_bytes(b"keep")
    with pytest.raises(JournalArgumentError, match="journal exists"):
        dedup(src, tmp_path / "t.qcow2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.qcow2", "link.qcow2", "t.qcow2.qjournal"]


@pytest.mark.parametrize(("name", "cs"), [("dd_backing", 128 * KiB), ("dd_ext_l2_backing", None), ("dd_ext_l2_backing", 4 * KiB)])
def test_backing_file_under_part_of_a_target_cluster_is_refused(images: dict[str, qi.Image], tmp_path: Path, name: str,
                                                                 cs: int | None) -> None:
    with pytest.raises(UnsupportedImageError, match="backing file") as exc:
        dedup(images[name].path, tmp_path / "t.qcow2", cluster_size=cs)
    assert exc.value.code == "partly_unallocated"
    assert list(tmp_path.iterdir()) == []


_CHILD = """
import sys
from qjournal.deduplicating import dedup
dedup(sys.argv[1], sys.argv[2], cluster_size=4096, jobs=1)
"""


def test_sigkill_never_leaves_a_target(tmp_path: Path) -> None:
    qi.require_qemu()
    src = raw_source(tmp_path / "disk.raw", 4 * KiB, 6000, 4)
    before = file_digest(src)
    t0 = time.monotonic()
    run([sys.executable, "-c", _CHILD, str(src), str(tmp_path / "timing.qcow2")])
    duration = time.monotonic() - t0
    rng = random.Random(5)
    for k in range(CRASH_RUNS):
        target = tmp_path / f"t{k}.qcow2"
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(src), str(target)])
        time.sleep(rng.uniform(0, duration))
        child.send_signal(signal.SIGKILL)
        child.wait()
        if target.exists():  # killed after the commit: whole
            qemu_check_clean(target)
            run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(src), str(target)])
        assert file_digest(src) == before


def test_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    qi.require_qemu()
    src = raw_source(tmp_path / "disk.raw", 4 * KiB, 6000, 6)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(src), str(tmp_path / "t.qcow2")], stderr=subprocess.PIPE)
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    child.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) in (["disk.raw"], ["disk.raw", "t.qcow2", "t.qcow2.qjournal"])


def qjournal(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "qjournal", *args], check=False)


def test_cli_json_report(images: dict[str, qi.Image], tmp_path: Path) -> None:
    src = images["dd_sub_4k"].path
    target = tmp_path / "t.qcow2"
    proc = qjournal("dedup", str(src), str(target), "--cluster-size", "4K", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["len_source"] == os.path.getsize(src) and r["len_target"] == os.path.getsize(target)
    assert r["len_saved"] == r["num_duplicate"] * 4096 > 0 and r["num_shared"] > r["num_duplicate"]
    assert r["num_distinct"] == distinct_stored_contents(src, "qcow2", 4096, tmp_path)
    assert r["journal"] == f"{target}.qjournal" and Path(r["journal"]).exists()
    human = qjournal("dedup", str(src), str(tmp_path / "u.qcow2"), "--no-journal")
    assert human.returncode == 0 and "dedup ratio" in human.stdout and "no journal" in human.stdout
    assert not (tmp_path / "u.qcow2.qjournal").exists()
    elsewhere = qjournal("dedup", str(src), str(tmp_path / "v.qcow2"), "--journal", str(tmp_path / "v.qj"))
    assert elsewhere.returncode == 0 and (tmp_path / "v.qj").exists()


@pytest.mark.parametrize(("name", "words"), [("dd_snapshot", "internal snapshot"), ("dd_bitmap", "--drop-bitmaps")])
def test_cli_refusal_is_one_line(images: dict[str, qi.Image], tmp_path: Path, name: str, words: str) -> None:
    proc = qjournal("dedup", str(images[name].path), str(tmp_path / "t.qcow2"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("qjournal: ") and words in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_image_qemu_writes_is_refused(images: dict[str, qi.Image], tmp_path: Path) -> None:
    src = tmp_path / "busy.qcow2"
    shutil.copy(images["dd_v3_64k"].path, src)
    holder = subprocess.Popen(["qemu-io", "-f", "qcow2", str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("write -P 0x11 0 512\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        holder.stdout.readline()  # type: ignore[union-attr]  # the write is done: qemu-io holds the image
        with pytest.raises(ImageInUseError, match="open for write"):
            dedup(src, tmp_path / "t.qcow2")
        assert not (tmp_path / "t.qcow2").exists()
        proc = qjournal("dedup", str(src), str(tmp_path / "t.qcow2"))
        assert proc.returncode == 1 and "--force-share" in proc.stderr
        assert dedup(src, tmp_path / "u.qcow2", force_share=True).num_data > 0
    finally:
        holder.communicate("quit\n", timeout=30)



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty behaviour")
def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    qi.require_qemu()
    src = raw_source(tmp_path / "disk.raw", 4 * KiB, 2000, 7)
    code, out, term = stderr_on_a_terminal(["dedup", str(src), str(tmp_path / "t.qcow2"), "--cluster-size", "4K"])
    assert code == 0 and "dedup ratio" in out
    assert "dedup" in term and "%" in term  # tqdm's bar, on the terminal
    piped = qjournal("dedup", str(src), str(tmp_path / "u.qcow2"), "--cluster-size", "4K")
    assert piped.returncode == 0 and piped.stderr == ""
