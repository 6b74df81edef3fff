"""verify says what it checked, and verify --all hashes every data block of the image (through the command line).

Images are made by qemu-img and written by qemu-io; the expected digests are hashlib's of the bytes qemu-io
wrote, the expected host offsets ``qemu-img map``'s.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import qemu_images as qi
from helpers import stderr_on_a_terminal
from test_cli import SUBPROCESS_ENV, run

from qjournal.verifying import MAX_LISTED, verify

pytestmark = pytest.mark.skipif(qi.missing_qemu() is not None, reason=str(qi.missing_qemu()))

CS = 4096


def qemu_io(image: Path, *commands: str) -> None:
    qi.run_qemu(["qemu-io", "-f", "qcow2", *(a for c in commands for a in ("-c", c)), str(image)])


def host_of(image: Path, guest: int) -> int:
    """The host offset qemu-img map gives the guest cluster at ``guest``."""
    out = qi.run_qemu(["qemu-img", "map", "--output", "json", str(image)]).stdout
    for m in json.loads(out):
        if m["data"] and m["start"] <= guest < m["start"] + m["length"]:
            return int(m["offset"]) + guest - int(m["start"])
    raise AssertionError(f"guest offset {guest:#x} is not data")


def digest(pattern: int) -> str:
    return hashlib.sha256(bytes([pattern]) * CS).hexdigest()


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, Path]:
    """A 1 MiB qcow2 image of 4 KiB clusters: four copies of one cluster at 0-16k, another at 64k; its journal."""
    image = tmp_path / "d.qcow2"
    qi.run_qemu(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={CS}", str(image), "1M"])
    qemu_io(image, "write -P 1 0 16k", "write -P 2 64k 4k")
    journal = tmp_path / "d.qjournal"
    assert run("index", str(image), str(journal)).returncode == 0
    return image, journal


def test_verify_says_what_it_read_and_what_it_did_not(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    proc = run("verify", str(journal), str(image))
    assert proc.returncode == 0
    assert proc.out.splitlines()[-2:] == [
        f"{journal}: 2 blocks of 4 KiB read and hashed, one per live entry, of the 5 data blocks the image stores; not "
        f"checked: the other 3 (duplicates of journaled blocks, or data written since the index; --all hashes them all)",
        f"{journal}: 2 live HASH entries checked against {image}: every one matches",
    ]
    doc = json.loads(run("verify", str(journal), str(image), "--output", "json").out)
    assert (doc["num_checked"], doc["num_blocks_read"], doc["num_data_blocks"], doc["all_blocks"]) == (2, 2, 5, None)


def test_all_is_clean_on_the_index(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    proc = run("verify", str(journal), str(image), "--all")
    assert proc.returncode == 0, proc.out
    assert (f"{journal}: --all: 5 data blocks of 4 KiB read and hashed (sha256); not looked up: 0 that read as zeros, "
            f"0 compressed or partly allocated (index journals none of them)") in proc.out.splitlines()
    assert (f"{journal}: --all: 0 blocks whose digest the journal does not know, 0 live entries that no block matches "
            f"any more") in proc.out.splitlines()


def test_all_finds_a_damaged_duplicate_that_verify_does_not_read(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    qemu_io(image, "write -P 9 8k 4k")  # the third copy: no entry names its cluster
    assert run("verify", str(journal), str(image)).returncode == 0  # one block per entry: not read
    proc = run("verify", str(journal), str(image), "--all")
    assert proc.returncode == 2
    lines = proc.out.splitlines()
    assert (f"{journal}: --all: block at guest offset 0x2000 (host {host_of(image, 0x2000):#x}) hashes to {digest(9)}, "
            f"which no live entry has (changed since the index, or new)") in lines
    assert f"{journal}: --all: 1 block whose digest the journal does not know, 0 live entries that no block matches any more" in lines
    assert lines[-1] == f"{journal}: 2 live HASH entries checked against {image}: every one matches"


def test_all_finds_new_data_and_entries_no_block_matches(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    qemu_io(image, "write -P 7 64k 4k", "write -P 5 256k 4k", "write -P 0 128k 4k", "write -c -P 3 192k 4k")
    proc = run("verify", str(journal), str(image), "--all", "--output", "json")
    assert proc.returncode == 2
    doc = json.loads(proc.out)
    scan = doc["all_blocks"]
    assert (scan["num_hashed"], scan["num_zero"], scan["num_not_journaled"]) == (6, 1, 1)
    assert (scan["num_unknown"], scan["num_unmatched"], scan["is_clean"], doc["is_clean"]) == (2, 1, False, False)
    assert scan["unknown"] == [
        {"ofs_guest": 0x10000, "ofs_host": host_of(image, 0x10000), "digest": digest(7)},
        {"ofs_guest": 0x40000, "ofs_host": host_of(image, 0x40000), "digest": digest(5)},
    ]
    (entry,) = scan["unmatched"]
    assert entry["digest"] == digest(2) and entry["first_logical_sector"] == 0x10000 // 512
    assert [m["code"] for m in doc["mismatches"]] == ["data_changed"]
    text = run("verify", str(journal), str(image), "--all").out.splitlines()
    assert (f"{journal}: --all: entry at offset {entry['ofs']:#x} ({entry['ofs']}): no block of the image hashes to its "
            f"digest {digest(2)}") in text


def test_all_lists_a_few_and_counts_them_all(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    n = MAX_LISTED + 5
    qemu_io(image, *(f"write -P {10 + i} {(512 + 4 * i) * 1024} 4k" for i in range(n)))
    proc = run("verify", str(journal), str(image), "--all")
    lines = proc.out.splitlines()
    assert sum("which no live entry has" in line for line in lines) == MAX_LISTED
    assert f"{journal}: --all: ... and 5 more such blocks" in lines
    assert f"{journal}: --all: {n} blocks whose digest the journal does not know, 0 live entries that no block matches any more" in lines


def test_all_on_a_raw_image_hashes_its_short_last_block_as_index_does(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"\x01" * CS + b"\x02" * CS + b"\x03" * 1000)
    journal = tmp_path / "d.qjournal"
    assert run("index", str(raw), str(journal), "--block-size", "4K").returncode == 0
    proc = run("verify", str(journal), str(raw), "--all", "--output", "json")
    scan = json.loads(proc.out)["all_blocks"]
    assert proc.returncode == 0 and (scan["num_hashed"], scan["len_read"], scan["num_unknown"]) == (3, 2 * CS + 1000, 0)


def test_all_reports_its_progress(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    seen: list[int] = []
    report = verify(journal, image, all_blocks=True, progress=seen.append)
    assert report.scan is not None and report.scan.is_clean
    assert seen and seen == sorted(seen) and seen[-1] == 1 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty behaviour")
def test_all_draws_a_bar_on_a_terminal_only(indexed: tuple[Path, Path]) -> None:
    image, journal = indexed
    code, out, err = stderr_on_a_terminal(["verify", str(journal), str(image), "--all"], env=SUBPROCESS_ENV, timeout=60)
    assert code == 0 and "every one matches" in out and "verify --all:" in err and "%|" in err
    code, _, err = stderr_on_a_terminal(["verify", str(journal), str(image)], env=SUBPROCESS_ENV, timeout=60)
    assert code == 0 and err == ""

