"""qjournal.guest against QEMU: what each image stores (``qemu-img map``) and what its guest reads (``qemu-img convert``).

Images are made by QEMU's tools (tests/qemu_images.py, image_oracle.GUEST_IMAGES
and the supported TEST_IMAGES); a sparse raw file is made here. Every status
and host offset is checked at the granularity QEMU reports (subclusters with
extended L2 entries), every byte against ``convert`` where the image stores it
and zeros where it does not, at block sizes below, at and above the cluster
size; the bulk L2 decode is checked against the generated parser's entries.
"""

from __future__ import annotations

import itertools
import os
import random
import struct
from io import BytesIO
from pathlib import Path

import image_oracle as oracle
import pytest
import qemu_images as qi
from helpers import known
from hypothesis import given, settings
from hypothesis import strategies as st
from kaitaistruct import KaitaiStream, KaitaiStructError

from qjournal.errors import CorruptImageError, JournalArgumentError
from qjournal.generated.qcow2 import Qcow2
from qjournal.guest import STORED, GuestReader, Span, Status, open_guest
from qjournal.image import Qcow2Image, open_image

SPECS = {s.name: s for s in (*oracle.GUEST_IMAGES, *qi.TEST_IMAGES) if s.name not in oracle.UNSUPPORTED}
BLOCK_SIZES = (512, 4096, 16384, 65536, 262144, 2 << 20)
_STATUS = {"data": Status.DATA, "zero": Status.ZERO, "compressed": Status.COMPRESSED, "unallocated": Status.UNALLOCATED}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, qi.Image]:
    qi.require_qemu()
    return qi.build_all(SPECS.values(), tmp_path_factory.mktemp("guest-images"))


@pytest.fixture(scope="module")
def oracles(images: dict[str, qi.Image]) -> dict[str, tuple[list[tuple[int, int, str, int | None]], bytes]]:
    """name -> (qemu-img map's ranges of the image alone, the guest's bytes of the image alone)."""
    return {name: (oracle.own_ranges(image), oracle.own_guest_bytes(image)) for name, image in images.items()}


def units(ranges: list[tuple[int, int, str, int | None]], unit: int) -> list[tuple[Status, int | None]]:
    """(status, host offset) per ``unit`` bytes of the disk, from map ranges (the last unit may be partial)."""
    out: list[tuple[Status, int | None]] = []
    k = 0
    end = ranges[-1][0] + ranges[-1][1]
    for pos in range(0, end, unit):
        while ranges[k][0] + ranges[k][1] <= pos:
            k += 1
        start, _, status, host = ranges[k]
        out.append((_STATUS[status], None if host is None or status != "data" else host + pos - start))
    return out


def span_units(spans: list[Span], unit: int) -> list[tuple[Status, int | None]]:
    out = []
    for s in spans:
        assert s.ofs_guest % unit == 0 and (s.length % unit == 0 or s.end == spans[-1].end)
        for pos in range(s.ofs_guest, s.end, unit):
            host = known(s.ofs_host) + pos - s.ofs_guest if s.status is Status.DATA else None
            out.append((s.status, host))
    return out


@pytest.mark.parametrize("name", list(SPECS))
def test_spans_are_what_qemu_img_map_says_the_image_stores(name: str, images: dict[str, qi.Image], oracles: dict[str, tuple[list[tuple[int, int, str, int | None]], bytes]]) -> None:
    ranges, _ = oracles[name]
    with open_guest(images[name].path) as g:
        spans = list(g.spans())
        unit = g.len_subcluster
    assert spans[0].ofs_guest == 0 and spans[-1].end == SPECS[name].size
    assert all(a.end == b.ofs_guest for a, b in itertools.pairwise(spans))
    assert all(s.status is Status.COMPRESSED or a.status is not s.status or (s.status is Status.DATA and known(a.ofs_host) + a.length != s.ofs_host)
               for a, s in itertools.pairwise(spans)), "spans are maximal"
    assert span_units(spans, unit) == units(ranges, unit)


@pytest.mark.parametrize("name", list(SPECS))
def test_the_guest_reads_what_qemu_img_convert_reads_of_the_image_alone(name: str, images: dict[str, qi.Image], oracles: dict[str, tuple[list[tuple[int, int, str, int | None]], bytes]]) -> None:
    _, want = oracles[name]
    with open_guest(images[name].path) as g:
        assert g.read(0, len(want)) == want
        rng = random.Random(name)
        for _ in range(20):
            a = rng.randrange(len(want))
            b = rng.randrange(a, min(len(want), a + 300_000) + 1)
            assert g.read(a, b - a) == want[a:b], (a, b)


@pytest.mark.parametrize("name", [s.name for s in oracle.GUEST_IMAGES])
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_blocks_at_any_size(name: str, block_size: int, images: dict[str, qi.Image], oracles: dict[str, tuple[list[tuple[int, int, str, int | None]], bytes]]) -> None:
    """Every block: its status is the OR of what it overlaps, its host offset where it is wholly DATA and contiguous,
    its bytes the guest's; runs of unallocated blocks left out, nothing else."""
    ranges, want = oracles[name]
    with open_guest(images[name].path) as g:
        unit = g.len_subcluster
        per_unit = units(ranges, unit)
        seen = []
        for b in g.blocks(block_size, len_batch=3 * block_size if block_size < 65536 else 1 << 20):
            assert b.ofs_guest % block_size == 0 and len(known(b.data)) == b.num_blocks * block_size
            for i, ofs in enumerate(b.offsets()):
                seen.append(ofs)
                inside = per_unit[ofs // unit : -(-(ofs + block_size) // unit)]
                status = 0
                for s, _ in inside:
                    status |= s
                assert b.status[i] == status, (ofs, b.status[i], status)
                assert bytes(b.block(i)) == want[ofs : ofs + block_size].ljust(block_size, b"\0")
                hosts = [h for _, h in inside]
                contiguous = status == Status.DATA and all(h == known(hosts[0]) + k * unit for k, h in enumerate(hosts))
                host = known(hosts[0]) + ofs % unit if contiguous else -1
                assert b.ofs_host[i] == host, ofs
                if contiguous:
                    with open(images[name].path, "rb") as f:
                        assert os.pread(f.fileno(), block_size, host) == bytes(b.block(i))
            for small in (512, 4096):
                if small < block_size:
                    r = b.refine(small)
                    end = min(b.ofs_guest + b.num_blocks * block_size, len(want))  # no small block wholly past the disk
                    assert r.num_blocks == -(-(end - b.ofs_guest) // small) and bytes(known(r.data)) == bytes(known(b.data))[: r.num_blocks * small]
                    direct = list(g.blocks(small, start=b.ofs_guest, stop=end, data=False, skip=Status(0)))
                    assert bytes(r.status) == b"".join(bytes(d.status) for d in direct)
    stored = [ofs for ofs in range(0, len(want), block_size)
              if any(s & STORED for s, _ in per_unit[ofs // unit : -(-(ofs + block_size) // unit)])]
    assert set(stored) <= set(seen)
    assert len(seen) == len(set(seen)) and seen == sorted(seen)


def test_an_empty_terabyte_disk_yields_no_block_and_reads_one_l1_table(tmp_path: Path) -> None:
    qi.require_qemu()
    path = tmp_path / "empty.qcow2"
    qi.run_qemu(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1T"])
    with open_guest(path) as g:
        assert list(g.blocks(512)) == []
        assert list(g.spans()) == [Span(0, 1 << 40, Status.UNALLOCATED, None, 0)]
        zeros = list(g.blocks(2 << 20, data=False, skip=Status(0), len_batch=1 << 30))
        assert sum(b.num_blocks for b in zeros) == (1 << 40) // (2 << 20) and all(set(b.status) == {8} for b in zeros)


def test_a_sparse_raw_file_reads_its_holes_as_zeros_without_reading_them(tmp_path: Path) -> None:
    path = tmp_path / "sparse.raw"
    with open(path, "wb") as f:
        f.truncate(64 << 20)
        f.seek(1 << 20)
        f.write(b"\x11" * (64 << 10))
        f.seek(40 << 20)
        f.write(b"\x22" * 4096 + b"\x33" * 4096)
    raw = path.read_bytes()
    with open_guest(path, block_size=4096) as g:
        spans = list(g.spans())
        if len(spans) == 1:
            pytest.skip("this file system reports no holes (SEEK_HOLE)")
        assert [(s.ofs_guest, s.length, s.status) for s in spans] == [
            (0, 1 << 20, Status.ZERO), (1 << 20, 64 << 10, Status.DATA), ((1 << 20) + (64 << 10), (39 << 20) - (64 << 10), Status.ZERO),
            (40 << 20, 8192, Status.DATA), ((40 << 20) + 8192, (24 << 20) - 8192, Status.ZERO)]
        qi_map = qi.run_qemu(["qemu-img", "map", "--output=json", "-f", "raw", str(path)]).stdout if not qi.missing_qemu() else None
        read: list[tuple[int, int]] = []
        real = g.image.readinto

        def recording(ofs: int, buf: memoryview) -> int:
            read.append((ofs, len(buf)))
            return real(ofs, buf)

        g.image.readinto = recording  # type: ignore[method-assign]  # a spy on this one image's reads
        got = bytearray()
        for b in g.blocks(65536):
            assert set(b.status) <= {Status.DATA, Status.ZERO, Status.DATA | Status.ZERO}
            got += known(b.data)
        assert bytes(got) == raw
        assert read == [(1 << 20, 64 << 10), (40 << 20, 8192)]
    if qi_map is not None:
        import json
        ranges = [(r["start"], r["length"], r["data"]) for r in json.loads(qi_map)]
        assert [(s.ofs_guest, s.length, s.status is Status.DATA) for s in spans] == ranges


def test_what_is_not_read_is_named(images: dict[str, qi.Image]) -> None:
    with open_guest(images["g_snap_backing"].path) as g:
        assert g.not_read.backing_file == "idx_base.qcow2"
        assert (g.not_read.num_snapshots, g.not_read.snapshot_names) == (1, ("before",))
        assert g.not_read.describe() == "the backing file 'idx_base.qcow2' and 1 internal snapshot ('before')"
    with open_guest(images["g_repeats_c64k"].path) as g:
        assert g.not_read.describe() is None


# -- the bulk L2 decode against the generated parser --------------------------------------------------------


def _parser_entries(img: Qcow2Image) -> list[tuple[int, str, int | None, tuple[int, int] | None, bytes | None]]:
    """(guest cluster, kind, host, len_host, bitmaps) of every guest cluster, each entry parsed by the generated L2Entry."""
    root, h = img.qcow2, img.header
    n2, len_entry = int(h.num_l2_entries), img.cluster_size // int(h.num_l2_entries)
    out: list[tuple[int, str, int | None, tuple[int, int] | None, bytes | None]] = []
    for idx in range(img.num_guest_clusters):
        gc = Qcow2.GuestCluster(idx, root._io, root, root)
        e = gc.l2_entry
        if e is None:
            out.append((idx, "unallocated", None, None, None))
            continue
        raw = img.read(int(known(gc.l1_entry).ofs_l2_table) + (idx % n2) * len_entry, len_entry)
        out.append((idx, e.cluster_type.name, int(e.ofs_host_cluster) or int(e.ofs_compressed_data) or None,
                    (int(e.alloc_bitmap), int(e.zero_bitmap)) if img.has_extended_l2 else None, raw))
    return out


@pytest.mark.parametrize("name", list(SPECS))
def test_the_bulk_decode_agrees_with_the_generated_parser(name: str, images: dict[str, qi.Image]) -> None:
    with open_image(images[name].path) as img:
        assert isinstance(img, Qcow2Image)
        layout = img._layout
        for idx, ctype, host, bitmaps, raw in _parser_entries(img):
            if raw is None:
                continue
            words = struct.unpack(f">{len(raw) // 8}Q", raw)
            got = layout.decode(words[0], words[1] if len(words) > 1 else 0)
            assert got is not None
            kind, ofs, _, sub = got
            if bitmaps is None:
                want = {"normal": "data", "zero_plain": "zero", "zero_allocated": "zero", "compressed": "compressed",
                        "unallocated": "unallocated"}[ctype]
                assert (kind, ofs) == (want, host), idx
            else:
                alloc, zero = bitmaps
                assert sub == (None if (alloc in (0, 0xFFFFFFFF) and zero in (0, 0xFFFFFFFF)) or (alloc == 0 and zero == 0) else (alloc, zero))


def _parse(img: Qcow2Image, word: int, bitmap: int = 0) -> Qcow2.L2Entry:
    raw = word.to_bytes(8, "big") + (bitmap.to_bytes(8, "big") if img.has_extended_l2 else b"")
    return Qcow2.L2Entry(KaitaiStream(BytesIO(raw)), img.qcow2, img.qcow2)


@pytest.mark.parametrize("name", ["v3_c4k", "compressed_c512", "compressed_c2m", "zstd_c64k", "extended_l2_c16k"])
@settings(max_examples=300, deadline=None)
@given(word=st.integers(0, (1 << 64) - 1), bitmap=st.integers(0, (1 << 64) - 1), flags=st.sampled_from([0, 1 << 62, 1, 1 << 63]))
def test_any_entry_decodes_as_the_generated_parser_reads_it(name: str, word: int, bitmap: int, flags: int, images: dict[str, qi.Image]) -> None:
    """Random words (with the compressed, zero and copied bits often set): the fast decode says what the parser
    says, or hands the entry to the parser; it never decodes an entry the parser refuses."""
    with open_image(images[name].path) as img:
        assert isinstance(img, Qcow2Image)
        word |= flags
        if random.Random(word).random() < 0.5:  # aligned offsets are the common case
            word &= ~((img.cluster_size - 1) & ~1)
        got = img._layout.decode(word, bitmap)
        try:
            e = _parse(img, word, bitmap)
            ctype = e.cluster_type.name
            want = (int(e.ofs_compressed_data), int(e.len_compressed_data)) if ctype == "compressed" else int(e.ofs_host_cluster)
            bitmaps = (int(e.alloc_bitmap), int(e.zero_bitmap)) if img.has_extended_l2 else None
        except KaitaiStructError:
            assert got is None
            return
        if got is None:
            return
        kind, ofs, len_host, sub = got
        if ctype == "compressed":
            assert (kind, (ofs, len_host)) == ("compressed", want)
        elif bitmaps is None:
            assert kind == {"normal": "data", "zero_plain": "zero", "zero_allocated": "zero", "unallocated": "unallocated"}[ctype]
            assert (ofs or 0) == want
        else:
            alloc, zero = bitmaps
            full = 0xFFFFFFFF
            want_kind = "data" if alloc == full else "zero" if zero == full else "unallocated" if not alloc | zero else (
                "data" if alloc else "zero")
            assert kind == want_kind and (sub is None) == ((alloc in (0, full) and zero in (0, full)) or not alloc | zero)


# -- errors --------------------------------------------------------------------------------------------------


def test_a_broken_compressed_cluster_is_reported_at_its_offset(images: dict[str, qi.Image], tmp_path: Path) -> None:
    src = images["g_zlib_c64k"].path
    path = tmp_path / "broken.qcow2"
    data = bytearray(src.read_bytes())
    with open_guest(src) as g:
        span = next(s for s in g.spans() if s.status is Status.COMPRESSED)
    data[known(span.ofs_host) : known(span.ofs_host) + 16] = b"\xff" * 16
    path.write_bytes(data)
    with open_guest(path) as g, pytest.raises(CorruptImageError) as info:
        g.read(0, 65536)
    assert info.value.code == "compressed" and info.value.offset == span.ofs_host
    assert f"the compressed cluster of guest offset 0x0 ({span.len_host} bytes at {span.ofs_host:#x})" in str(info.value)


def test_block_sizes_and_ranges_are_checked(images: dict[str, qi.Image]) -> None:
    with GuestReader(images["g_repeats_c64k"].path) as g:
        for bad in (1000, 256, 4 << 20, True):
            with pytest.raises(JournalArgumentError):
                next(g.blocks(bad))
        with pytest.raises(JournalArgumentError):
            next(g.blocks(4096, start=512))
        with pytest.raises(JournalArgumentError):
            g.read(g.len_virtual_disk - 1, 2)
