"""qjournal.qcow2_writer against the generated parser and QEMU.

Every image written here is read back through the generated parser
(qjournal.generated.qcow2): the header's fields, every L1 and L2 entry and the
refcount of every host cluster are compared with what the test meant the
writer to write. QEMU is the second oracle: ``qemu-img check`` (exit 0, no
leak, no corruption) and ``qemu-img compare`` against the guest disk the test
expects, as a raw file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi
from helpers import known
from hypothesis import given, settings
from hypothesis import strategies as st

from qjournal.errors import JournalArgumentError
from qjournal.generated.qcow2 import Qcow2
from qjournal.qcow2_writer import (
    L2_ENTRY_UNALLOCATED,
    L2_ENTRY_ZERO,
    LEN_HEADER,
    MAX_REFCOUNT,
    REFCOUNT_ORDER,
    Layout,
    Qcow2Writer,
    is_copied,
    l1_entry,
    l2_entry,
)


def qemu_check(path: Path) -> dict[str, Any]:
    """``qemu-img check --output=json``, asserting exit 0 and neither leak nor corruption."""
    proc = subprocess.run(["qemu-img", "check", "--output=json", str(path)], capture_output=True, text=True, check=False,
                          cwd=path.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report["check-errors"] == 0
    assert not report.get("leaks") and not report.get("corruptions"), report
    return report


def read_back(path: Path) -> dict[str, Any]:
    """What the generated parser reads: header fields, extensions, L1 and L2 entries, every cluster's refcount."""
    q = Qcow2.from_file(str(path))
    try:
        h = q.header
        cs = h.cluster_size
        exts = [(int(e.extension_type.value if hasattr(e.extension_type, "value") else e.extension_type),
                 getattr(e.data, "value", e.data)) for e in q.header_extension_area.extensions or []]
        l1 = [(e.ofs_l2_table, e.is_copied) for e in q.l1_table.entries]
        l2: dict[int, list[tuple[Any, int, bool]]] = {}
        for i, e in enumerate(q.l1_table.entries):
            if e.is_allocated:
                l2[i] = [(x.cluster_type, x.ofs_host_cluster, x.is_copied) for x in known(e.l2_table).entries]
        num_host = -(-os.path.getsize(path) // cs)
        per_block = h.num_refcount_block_entries
        refcounts = []
        for n in range(num_host):
            t = q.refcount_table.entries[n // per_block]
            refcounts.append(known(t.refcount_block).refcounts[n % per_block] if t.ofs_refcount_block else 0)
        return {
            "version": h.version, "cluster_size": cs, "len_virtual_disk": h.len_virtual_disk,
            "num_l1_entries": h.num_l1_entries, "ofs_l1_table": h.ofs_l1_table, "refcount_order": h.refcount_order,
            "len_header": h.len_header, "num_snapshots": h.num_snapshots, "crypt_method": h.crypt_method,
            "ofs_refcount_table": h.ofs_refcount_table, "num_refcount_table_clusters": h.num_refcount_table_clusters,
            "backing_file_name": q.backing_file_name, "extensions": exts, "l1": l1, "l2": l2, "refcounts": refcounts,
        }
    finally:
        q.close()


def write_image(path: Path, cs: int, vsize: int, plan: dict[int, list[int | str | None]], refcounts: list[int], *,
                backing: tuple[str, str] | None = None) -> tuple[Layout, dict[int, list[int]]]:
    """Write an image: ``plan`` maps an L1 index to its L2 entries (a data cluster number, "zero", or None)."""
    lay = Layout(cs, vsize, len(plan), len(refcounts))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        w = Qcow2Writer(fd, lay, str(path))
        for i in range(len(refcounts)):
            w.write_data(i, bytes([i % 251 + 1]) * cs)
        l1 = [-1] * lay.num_l1_entries
        meant: dict[int, list[int]] = {}
        for k, (i, entries) in enumerate(sorted(plan.items())):
            raw = [L2_ENTRY_ZERO if e == "zero" else L2_ENTRY_UNALLOCATED if e is None
                   else l2_entry(lay.ofs_data_cluster(int(e)), refcounts[int(e)]) for e in entries]
            w.write_l2_table(k, raw)
            meant[i] = raw
            l1[i] = k
        w.write_refcounts(refcounts)
        w.write_l1_table(l1)
        w.write_header(*(backing or (None, None)))
    finally:
        os.close(fd)
    return lay, meant


def write_expected_guest(path: Path, lay: Layout, plan: dict[int, list[int | str | None]], base: dict[int, bytes]) -> None:
    """The guest disk the plan should give, as a sparse raw file: the backing file's ``base`` (guest offset -> bytes)
    where an entry is unallocated, zeros where it is a zero cluster, the data clusters' bytes."""
    cs, n2 = lay.cluster_size, lay.num_l2_entries
    with open(path, "wb") as f:
        f.truncate(lay.len_virtual_disk)
        for ofs, data in base.items():
            f.seek(ofs)
            f.write(data)
        for i, entries in plan.items():
            for j, e in enumerate(entries):
                ofs = (i * n2 + j) * cs
                if e is not None:
                    f.seek(ofs)
                    f.write((bytes(cs) if e == "zero" else bytes([int(e) % 251 + 1]) * cs)[: lay.len_virtual_disk - ofs])


@pytest.mark.parametrize("cs", [512, 4096, 65536, 2 << 20])
def test_written_image_reads_back_field_for_field(tmp_path: Path, cs: int) -> None:
    qi.require_qemu()
    n2 = cs // 8
    num_l1 = 4 if cs <= 65536 else 1
    vsize = ((num_l1 - 1) * n2 + 8) * cs + 5 * 512  # the last cluster partial
    plan: dict[int, list[int | str | None]] = {0: [0, 0, "zero", 1, None, 2]}
    if num_l1 > 1:
        plan[num_l1 - 1] = [1, 3]
    refcounts = [2, 2, 1, 1] if num_l1 > 1 else [2, 1, 1, 0]
    refcounts = [r for r in refcounts if r]
    base = {2 * cs: b"\x77" * cs, 4 * cs: bytes(range(256)) * (cs // 256)}  # under the zero and the unallocated entries
    with open(tmp_path / "base.raw", "wb") as f:
        f.truncate(vsize)
        for ofs, data in base.items():
            f.seek(ofs)
            f.write(data)
    path = tmp_path / "t.qcow2"
    lay, meant = write_image(path, cs, vsize, plan, refcounts, backing=("base.raw", "raw"))
    got = read_back(path)
    assert (got["version"], got["cluster_size"], got["len_virtual_disk"]) == (3, cs, vsize)
    assert (got["refcount_order"], got["len_header"], got["num_snapshots"]) == (REFCOUNT_ORDER, LEN_HEADER, 0)
    assert got["crypt_method"] == Qcow2.CryptMethod.none
    assert (got["num_l1_entries"], got["ofs_l1_table"]) == (lay.num_l1_entries, lay.ofs_l1_table) == (num_l1, cs)
    assert (got["ofs_refcount_table"], got["num_refcount_table_clusters"]) == (lay.ofs_refcount_table, lay.num_refcount_table_clusters)
    assert got["backing_file_name"] == "base.raw"
    assert got["extensions"] == [(Qcow2.HeaderExtensionType.backing_file_format.value, "raw"), (0, b"")]
    want_l1 = [(0, False)] * num_l1
    for k, i in enumerate(sorted(plan)):
        want_l1[i] = (lay.ofs_l2_table(k), True)
    assert got["l1"] == want_l1
    types = {L2_ENTRY_ZERO: Qcow2.ClusterType.zero_plain, L2_ENTRY_UNALLOCATED: Qcow2.ClusterType.unallocated}
    for i, raw in meant.items():
        want = [(types.get(e, Qcow2.ClusterType.normal), e & ((1 << 56) - 512), bool(e >> 63)) for e in raw]
        assert got["l2"][i] == want + [(Qcow2.ClusterType.unallocated, 0, False)] * (n2 - len(raw))
    # COPIED exactly where the refcount is 1
    assert [c for _, _, c in got["l2"][0][:6]] == [isinstance(e, int) and refcounts[e] == 1 for e in plan[0]]
    assert [c for _, _, c in got["l2"][0][:2]] == [False, False]  # the shared cluster
    assert got["refcounts"] == [1] * lay.num_metadata_clusters + refcounts
    assert os.path.getsize(path) == lay.len_file
    qemu_check(path)
    write_expected_guest(tmp_path / "want.raw", lay, plan, {4 * cs: base[4 * cs]})
    subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", str(path), str(tmp_path / "want.raw")], check=True,
                   cwd=tmp_path, capture_output=True)


def test_refcount_structures_of_many_clusters(tmp_path: Path) -> None:
    """512-byte clusters, 20,000 data clusters: several refcount table clusters, every refcount where it belongs."""
    qi.require_qemu()
    cs, n = 512, 20000
    n2 = cs // 8
    refcounts = [1 + (i % 3 == 0) for i in range(n)]
    uses = [i for i in range(n) for _ in range(refcounts[i])]
    plan: dict[int, list[int | str | None]] = {i // n2: [] for i in range(0, len(uses), n2)}
    for g, d in enumerate(uses):
        plan[g // n2].append(d)
    lay, _ = write_image(tmp_path / "t.qcow2", cs, len(uses) * cs, plan, refcounts)
    assert lay.num_refcount_table_clusters > 1
    got = read_back(tmp_path / "t.qcow2")
    assert got["refcounts"] == [1] * lay.num_metadata_clusters + refcounts
    report = qemu_check(tmp_path / "t.qcow2")
    assert report["allocated-clusters"] == len(uses)


def test_empty_disk(tmp_path: Path) -> None:
    """A virtual disk of 0 bytes: no L1 entry, ``ofs_l1_table`` 0 (as qemu-img create writes it), no cluster leaked."""
    qi.require_qemu()
    lay, _ = write_image(tmp_path / "t.qcow2", 65536, 0, {}, [])
    got = read_back(tmp_path / "t.qcow2")
    assert (got["num_l1_entries"], got["ofs_l1_table"], got["l1"]) == (0, 0, [])
    assert got["refcounts"] == [1] * lay.num_metadata_clusters == [1, 1, 1]
    qemu_check(tmp_path / "t.qcow2")


def test_largest_refcount(tmp_path: Path) -> None:
    qi.require_qemu()
    cs, n2 = 4096, 512
    plan: dict[int, list[int | str | None]] = {i: [0] * n2 for i in range(MAX_REFCOUNT // n2)}
    plan[len(plan)] = [0] * (MAX_REFCOUNT % n2)
    write_image(tmp_path / "t.qcow2", cs, len(plan) * n2 * cs, plan, [MAX_REFCOUNT])
    assert read_back(tmp_path / "t.qcow2")["refcounts"][-1] == MAX_REFCOUNT
    qemu_check(tmp_path / "t.qcow2")


def test_the_rules() -> None:
    assert is_copied(1) and not is_copied(2) and not is_copied(MAX_REFCOUNT)
    assert l1_entry(0x10000) == 0x10000 | 1 << 63
    assert l2_entry(0x20000, 1) == 0x20000 | 1 << 63 and l2_entry(0x20000, 2) == 0x20000
    for bad in (0, MAX_REFCOUNT + 1):
        with pytest.raises(JournalArgumentError, match="refcount"):
            l2_entry(0x20000, bad)
    for cs in (256, 3000, 4 << 20):
        with pytest.raises(JournalArgumentError, match="cluster size"):
            Layout(cs, 1 << 20, 0, 0)


def test_a_header_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    lay = Layout(512, 1 << 20, 0, 0)
    fd = os.open(tmp_path / "t", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with pytest.raises(JournalArgumentError, match="more than one 512-byte cluster"):
            Qcow2Writer(fd, lay, "t").write_header("b" * 500, "qcow2")
    finally:
        os.close(fd)
    assert os.path.getsize(tmp_path / "t") == 0


@settings(max_examples=300, deadline=None)
@given(cb=st.integers(9, 21), vsize=st.integers(0, 1 << 44), frac=st.floats(0, 1), data=st.integers(0, 1 << 24))
def test_layout_covers_every_cluster_with_the_fewest_refcount_blocks(cb: int, vsize: int, frac: float, data: int) -> None:
    cs = 1 << cb
    probe = Layout(cs, vsize, 0, 0)
    lay = Layout(cs, vsize, int(probe.num_l1_entries * frac), data)
    per = lay.num_refcount_block_entries
    assert lay.num_refcount_blocks * per >= lay.num_clusters > (lay.num_refcount_blocks - 1) * per
    assert lay.num_refcount_table_clusters * cs // 8 >= lay.num_refcount_blocks
    assert lay.ofs_l1_table == (cs if lay.num_l1_entries else 0) and lay.ofs_data == lay.num_metadata_clusters * cs
    assert lay.num_l1_clusters * cs >= 8 * lay.num_l1_entries
