"""The image commands' summaries tell small truths: rows that look like a partition add up to their total, the
rest is set apart; a digest's first block is "distinct"; a raw file's short last block is counted as the bytes it
holds; one cluster is "1 guest cluster". Through the command line, on files and qemu-img images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import qemu_images as qi
from test_cli import run

from qjournal.cli.console import human_size

ROW = re.compile(r"^    (\w+):\s+(\d+)  \((.+?)\)")


def groups(text: str) -> dict[str, dict[str, tuple[int, str]]]:
    """The summary's groups of rows: title -> label -> (count, size as printed)."""
    out: dict[str, dict[str, tuple[int, str]]] = {}
    title = ""
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("   ") and line.endswith(":"):
            title = line.strip()
            out[title] = {}
        elif (m := ROW.match(line)) and title:
            out[title][m.group(1)] = (int(m.group(2)), m.group(3))
    return out


def test_a_raw_files_short_last_block_counts_the_bytes_it_holds(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"\x01" * 4096 + b"\x01" * 4096 + b"\x02" * 1000)  # a duplicate, then a short last block
    proc = run("index", str(raw), str(tmp_path / "j"), "--block-size", "4K")
    assert proc.returncode == 0
    g = groups(proc.out)
    once = g["every block counted once, in one of:"]
    assert once["distinct"] == (2, human_size(4096 + 1000)) and once["duplicate"] == (1, human_size(4096))
    assert once["total"] == (3, human_size(9192)) and sum(n for k, (n, _) in once.items() if k != "total") == 3
    assert g["besides, not part of the total:"]["allocated"] == (3, human_size(9192))
    doc = json.loads(run("index", str(raw), str(tmp_path / "k"), "--block-size", "4K", "--output", "json").out)
    assert (doc["len_short"], doc["short_row"], doc["len_saved"]) == (4096 - 1000, "unique", 4096)
    zeros = tmp_path / "z.raw"
    zeros.write_bytes(b"\x01" * 4096 + bytes(100))
    doc = json.loads(run("index", str(zeros), str(tmp_path / "z"), "--block-size", "4K", "--output", "json").out)
    assert (doc["num_zero"], doc["short_row"], doc["len_short"]) == (1, "zero", 4096 - 100)
    whole = tmp_path / "w.raw"
    whole.write_bytes(b"\x01" * 8192)
    doc = json.loads(run("index", str(whole), str(tmp_path / "w"), "--block-size", "4K", "--output", "json").out)
    assert (doc["len_short"], doc["short_row"]) == (0, None)


@pytest.mark.skipif(qi.missing_qemu() is not None, reason=str(qi.missing_qemu()))
def test_index_and_dedup_rows_add_up_and_say_distinct(tmp_path: Path) -> None:
    image = tmp_path / "d.qcow2"
    qi.run_qemu(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", str(image), "1M"])
    qi.run_qemu(["qemu-io", "-f", "qcow2", "-c", "write -P 1 0 16k", "-c", "write -P 2 64k 4k", "-c", "write -z 128k 4k",
                 str(image)])
    index = groups(run("index", str(image), str(tmp_path / "j")).out)
    once = index["every block counted once, in one of:"]
    assert list(once) == ["unallocated", "zero", "distinct", "duplicate", "shared", "total"]
    assert sum(n for k, (n, _) in once.items() if k != "total") == once["total"][0] == 256
    assert (once["distinct"][0], once["duplicate"][0]) == (2, 3)
    assert list(index["besides, not part of the total:"]) == ["allocated", "compressed", "partial"]
    proc = run("dedup", str(image), str(tmp_path / "t.qcow2"))
    assert proc.returncode == 0 and proc.out.startswith(f"{image}: qcow2, 256 guest clusters of 4 KiB (1 MiB virtual disk)\n")
    dedup = groups(proc.out)
    once = dedup["every guest cluster counted once, in one of:"]
    assert list(once) == ["unallocated", "zero", "data", "total"]
    assert sum(n for k, (n, _) in once.items() if k != "total") == once["total"][0] == 256
    again = dedup["the data clusters, once more:"]
    assert again["distinct"][0] + again["duplicate"][0] == once["data"][0] == 5
    assert list(dedup["in the target:"]) == ["stored", "shared"]
    one = tmp_path / "one.qcow2"
    qi.run_qemu(["qemu-img", "create", "-q", "-f", "qcow2", str(one), "64k"])
    out = run("dedup", str(one), str(tmp_path / "one-t.qcow2")).out
    assert out.startswith(f"{one}: qcow2, 1 guest cluster of 64 KiB (64 KiB virtual disk)\n")
