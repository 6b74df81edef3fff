"""``qjournal index`` and ``qjournal verify`` as a user runs them, on images QEMU made (issue 12).

The library is held to QEMU's map and the bytes in test_index.py and test_verify.py; here the
command line: the summary (human, and JSON with the issue's keys) agrees with the oracle, the
journal it writes holds the oracle's entries, verify exits 0 on it, 2 with exactly the damaged
entry after a data cluster is changed in place, and 1 with one line on what it cannot do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import image_oracle as oracle
import pytest
import qemu_images as qi
from test_cli import SUBPROCESS_ENV

import qjournal

KEYS = {"block_size", "num_allocated", "num_zero", "num_compressed", "num_unique", "num_duplicate", "len_saved",
        "dedup_ratio", "histogram"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "qjournal", *args], check=False, capture_output=True, text=True,
                          env=SUBPROCESS_ENV, timeout=120)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def images(index_images: dict[str, qi.Image]) -> dict[str, qi.Image]:
    return index_images


def _expected(image: qi.Image) -> oracle.Expected:
    spec = image.spec
    units = oracle.qemu_clusters(image, spec.cluster_size, spec.size)
    return oracle.expected_index(units, oracle.file_bytes(image.path), spec.cluster_size, guest=oracle.own_guest_bytes(image))


@pytest.mark.parametrize("name", ["idx_v3_c4k", "idx_v2_c64k", "idx_compressed", "idx_top", "idx_snapshot"])
def test_index_summary_and_journal_agree_with_qemu(name: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    image = images[name]
    want = _expected(image)
    journal = tmp_path / "j.qjournal"
    proc = run("index", str(image.path), str(journal), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= KEYS
    assert doc["block_size"] == image.spec.cluster_size
    for key in ("unique", "duplicate", "compressed", "zero", "allocated"):
        assert doc[f"num_{key}"] == want.counts[key], key
    assert doc["histogram"] == want.histogram
    assert doc["len_saved"] == want.counts["duplicate"] * image.spec.cluster_size
    assert [e[:3] for e in qjournal.read(journal) if isinstance(e, qjournal.HashEntry)] == want.entries
    # the human summary says the same
    again = tmp_path / "h.qjournal"
    text = run("index", str(image.path), str(again)).stdout
    lines = text.splitlines()
    assert lines[1] == "  every block counted once, in one of:" and lines[8] == "  besides, not part of the total:"
    rows = {line.split(":")[0].strip(): int(line.split(":")[1].split()[0]) for line in lines[2:8] + lines[9:12]}
    num_blocks = image.spec.size // image.spec.cluster_size
    assert rows == {k: want.counts[k] for k in ("allocated", "zero", "compressed", "duplicate", "shared")} | {
        "unallocated": num_blocks - sum(want.counts[k] for k in ("zero", "unique", "duplicate", "shared")), "partial": 0,
        "distinct": want.counts["unique"], "total": num_blocks}
    assert sum(rows[k] for k in ("unallocated", "zero", "distinct", "duplicate", "shared")) == rows["total"]
    assert f"{again}: {len(want.entries)} HASH entr" in text
    # verify: every live entry matches
    proc = run("verify", str(journal), str(image.path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.endswith("every one matches\n")


def test_verify_names_exactly_the_damaged_entry(images: dict[str, qi.Image], tmp_path: Path) -> None:
    source = images["idx_v2_c64k"]
    image = tmp_path / "damaged.qcow2"
    image.write_bytes(source.path.read_bytes())
    journal = tmp_path / "j.qjournal"
    assert run("index", str(image), str(journal)).returncode == 0
    entries = [e for e in qjournal.read(journal) if isinstance(e, qjournal.HashEntry)]
    victim = entries[len(entries) // 2]
    with open(image, "r+b") as f:  # one byte of that entry's data cluster, in place
        f.seek(victim.physical_sector * 512 + 100)
        byte = f.read(1)
        f.seek(victim.physical_sector * 512 + 100)
        f.write(bytes([byte[0] ^ 0xFF]))
    proc = run("verify", str(journal), str(image), "--output", "json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["num_checked"], doc["num_mismatched"]) == (len(entries), 1)
    assert [(m["ofs"], m["digest"], m["problem"]) for m in doc["mismatches"]] == [(victim.ofs, victim.digest.hex(), "data_changed")]
    human = run("verify", str(journal), str(image))
    assert human.returncode == 2
    assert human.stdout.splitlines()[0].startswith(f"{journal}: entry at offset {victim.ofs:#x} ({victim.ofs}): [data_changed] ")
    assert human.stdout.splitlines()[-1] == (
        f"{journal}: {len(entries)} live HASH entries checked against {image}: 1 with problems (1 problem)"
    )


def test_a_raw_image_in_blocks(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    blocks = [bytes([i % 3 + 1]) * 4096 for i in range(12)] + [bytes(4096)]
    raw.write_bytes(b"".join(blocks))
    journal = tmp_path / "j.qjournal"
    proc = run("index", str(raw), str(journal), "--block-size", "4K", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["block_size"], doc["num_unique"], doc["num_duplicate"], doc["num_zero"]) == (4096, 3, 9, 1)
    assert [(e.physical_sector, e.first_logical_sector) for e in qjournal.read(journal) if isinstance(e, qjournal.HashEntry)] == [(0, 0), (8, 8), (16, 16)]
    assert run("verify", str(journal), str(raw), "--block-size", "4K").returncode == 0


def test_what_index_and_verify_refuse(images: dict[str, qi.Image], tmp_path: Path) -> None:
    image = images["idx_v3_c4k"]
    journal = tmp_path / "j.qjournal"
    assert run("index", str(image.path), str(journal)).returncode == 0
    before = journal.read_bytes()
    proc = run("index", str(image.path), str(journal))  # the journal exists
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "--force" in proc.stderr
    assert journal.read_bytes() == before
    proc = run("index", str(image.path), str(image.path), "--force")  # the image as its own journal
    assert proc.returncode == 1 and "index never writes the image" in proc.stderr
    proc = run("verify", str(journal), str(tmp_path / "missing.qcow2"))
    assert proc.returncode == 1 and proc.stderr == f"qjournal: {tmp_path / 'missing.qcow2'}: no such file\n"
    assert run("verify", str(journal), str(image.path), "--hash", "md4x").returncode == 1


def test_an_encrypted_image_is_refused_in_one_line(qemu_test_images: dict[str, qi.Image], tmp_path: Path) -> None:
    image = qemu_test_images["luks_c4k"]
    proc = run("index", str(image.path), str(tmp_path / "j.qjournal"))
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "encrypt" in proc.stderr and str(image.path) in proc.stderr
    assert not (tmp_path / "j.qjournal").exists()


def test_index_and_verify_at_a_block_size_below_the_clusters_and_never_above(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """--block-size works for qcow2 up to the cluster size; a larger one is refused in one line, not ignored."""
    image = images["idx_v2_c64k"]
    journal = tmp_path / "j.qjournal"
    proc = run("index", str(image.path), str(journal), "--block-size", "4K", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["block_size"] == 4096 and doc["num_guest_clusters"] == image.spec.size // 4096
    assert run("verify", str(journal), str(image.path), "--block-size", "4K").returncode == 0
    small = images["idx_v3_c4k"]
    proc = run("index", str(small.path), str(tmp_path / "k.qjournal"), "--block-size", "64K")
    assert proc.returncode == 1 and proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert "a block of 65536 bytes is larger than the image's 4096-byte clusters" in proc.stderr
    assert "--block-size is at most the cluster size" in proc.stderr
    assert not (tmp_path / "k.qjournal").exists()
