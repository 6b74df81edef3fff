"""qjournal.image against QEMU: every guest cluster where ``qemu-img map`` says it is, and the refusals.

Images are made by QEMU's tools (tests/qemu_images.py: TEST_IMAGES and
image_oracle.INDEX_IMAGES); the oracle is ``qemu-img map --output=json`` and
``qemu-img info``, never a value written here. Refusals are held to their exact
one-line messages, on images QEMU made (LUKS, external data files, extended L2
entries, VMDK, VHD, VHDX, VDI, QED, Parallels) or on bytes changed here where
QEMU cannot make the case (the corrupt bit, unknown feature bits, broken
entries).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import image_oracle as oracle
import pytest
import qemu_images as qi
from ksy_toolchain import load_ksy

from qjournal import image as image_module
from qjournal.errors import CorruptImageError, JournalArgumentError, JournalIOError, UnsupportedImageError
from qjournal.image import Kind, Qcow2Image, RawImage, check_block_size, open_image

SUPPORTED = [s.name for s in qi.TEST_IMAGES if s.name not in oracle.UNSUPPORTED and s.name not in oracle.SUBCLUSTERED]
ALL = SUPPORTED + [s.name for s in oracle.INDEX_IMAGES]
SPECS = {s.name: s for s in (*qi.TEST_IMAGES, *oracle.INDEX_IMAGES)}


@pytest.fixture(scope="module")
def images(qemu_test_images: dict[str, qi.Image], index_images: dict[str, qi.Image]) -> dict[str, qi.Image]:
    return {**qemu_test_images, **index_images}


def copy_image(image: qi.Image, tmp_path: Path) -> Path:
    """A copy of the image (and its backing files) to change."""
    for link in image.chain():
        shutil.copy(link.path, tmp_path / link.path.name)
    return tmp_path / image.path.name


def u64(data: bytes | bytearray, ofs: int) -> int:
    value: int = struct.unpack_from(">Q", data, ofs)[0]
    return value


def first_l2_table(data: bytes | bytearray) -> int:
    """The offset of the L2 table under L1 entry 0 (the spec's bits 9-55), read here from the bytes."""
    return u64(data, u64(data, 40)) & 0x00FF_FFFF_FFFF_FE00


# -- the mapping -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_guest_clusters_agree_with_qemu_img_map(name: str, images: dict[str, qi.Image]) -> None:
    image = images[name]
    with open_image(image.path) as img:
        assert isinstance(img, Qcow2Image)
        units = oracle.qemu_clusters(image, img.cluster_size, img.len_virtual_disk)
        got = [(g.ofs_guest, g.kind.value, None if g.kind is Kind.COMPRESSED else g.ofs_host) for g in img.guest_clusters()]
        assert got == [(u.ofs_guest, u.kind, u.ofs_host) for u in units]
        for g in img.guest_clusters():
            want = {"data": img.cluster_size, "compressed": g.len_host, "zero": img.cluster_size if g.ofs_host else 0,
                    "unallocated": 0}[g.kind]
            assert g.len_host == want and (g.kind is not Kind.COMPRESSED or 0 < g.len_host <= img.cluster_size + 512)


@pytest.mark.parametrize("name", [n for n in ALL if SPECS[n].backing is None])
def test_extents_are_the_ranges_of_qemu_img_map(name: str, images: dict[str, qi.Image]) -> None:
    """Without a backing file, qemu-img map's ranges are exactly the extents (kind, start, length, host offset)."""
    image = images[name]
    with open_image(image.path) as img:
        got = [(e.ofs_guest, e.length, e.kind.value, e.ofs_host) for e in img.extents()]
    want = []
    for r in image.map():
        kind = "unallocated" if not r["present"] else "zero" if r["zero"] else "data" if "offset" in r else "compressed"
        want.append((r["start"], r["length"], kind, r.get("offset")))
    assert got == want


@pytest.mark.parametrize("name", ALL)
def test_extents_and_guest_clusters_say_the_same(name: str, images: dict[str, qi.Image]) -> None:
    with open_image(images[name].path) as img:
        cs = img.cluster_size
        expanded = []
        for e in img.extents():
            assert e.len_host == (-(-e.length // cs) * cs if e.ofs_host is not None else 0)
            for k in range(-(-e.length // cs)):
                expanded.append((e.ofs_guest + k * cs, e.kind, None if e.ofs_host is None else e.ofs_host + k * cs))
        walked = [(g.ofs_guest, g.kind, None if g.kind is Kind.COMPRESSED else g.ofs_host) for g in img.guest_clusters()]
        assert expanded == walked
        assert sum(e.length for e in img.extents()) == img.len_virtual_disk


@pytest.mark.parametrize("name", [n for n in ALL if SPECS[n].size // SPECS[n].cluster_size <= 1024])
def test_map_looks_up_one_cluster_as_the_walk_finds_it(name: str, images: dict[str, qi.Image]) -> None:
    """map(x), the .ksy's guest_cluster lookup, agrees with the table walk at the start, middle and end of each cluster."""
    with open_image(images[name].path) as img:
        for g in img.guest_clusters():
            for x in {g.ofs_guest, g.ofs_guest + img.cluster_size // 2,
                      min(g.ofs_guest + img.cluster_size, img.len_virtual_disk) - 1}:
                assert img.map(x) == g, hex(x)


@pytest.mark.parametrize("name", ["v3_c4k", "v2_c64k", "chain_top", "snapshots_c64k", "idx_v3_c2m"])
def test_header_facts_agree_with_qemu_img_info(name: str, images: dict[str, qi.Image]) -> None:
    info = images[name].info()
    with open_image(images[name].path) as img:
        assert isinstance(img, Qcow2Image)
        assert (img.format, img.cluster_size, img.len_virtual_disk) == ("qcow2", info["cluster-size"], info["virtual-size"])
        assert img.version == {"0.10": 2, "1.1": 3}[info["format-specific"]["data"]["compat"]]
        assert img.backing_file_name == info.get("backing-filename")
        assert img.len_file == images[name].path.stat().st_size
        assert img.num_guest_clusters == -(-info["virtual-size"] // info["cluster-size"])


def test_map_refuses_offsets_outside_the_virtual_disk(images: dict[str, qi.Image]) -> None:
    with open_image(images["v3_c4k"].path) as img:
        for x in (-1, img.len_virtual_disk, True, 1.5):
            with pytest.raises(JournalArgumentError) as info:
                img.map(x)  # type: ignore[arg-type]
            assert str(info.value) == (f"{img.name}: guest offset {x!r} is outside the virtual disk "
                                       f"(0 to {img.len_virtual_disk - 1})")


def test_read_gives_the_files_bytes_and_refuses_past_its_end(images: dict[str, qi.Image]) -> None:
    path = images["v3_c4k"].path
    data = path.read_bytes()
    with open_image(path) as img:
        assert img.read(4096, 8192) == data[4096:12288]
        assert img.read(len(data) - 3, 3) == data[-3:]
        with pytest.raises(JournalIOError) as info:
            img.read(len(data) - 3, 4)
        assert str(info.value) == (f"{path}: offset {len(data):#x} ({len(data)}): short read: 3 of 4 bytes at "
                                   f"{len(data) - 3:#x}: the file ends at {len(data):#x}")


def test_an_image_is_only_read(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """Opened read-only; walking, looking up and reading leave the bytes and the modification time as they were."""
    path = copy_image(images["idx_snapshot"], tmp_path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.read_bytes()
    with open_image(path) as img:
        assert fcntl.fcntl(img.fileno(), fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        list(img.guest_clusters())
        list(img.extents())
        img.map(0)
        img.read(0, img.len_file)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == 1_000_000_000


# -- raw images -------------------------------------------------------------------------------------------


def test_a_raw_image_is_its_file_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(3 * 4096 + 100))
    with open_image(path, block_size=4096) as img:
        assert isinstance(img, RawImage) and (img.format, img.cluster_size, img.len_virtual_disk) == ("raw", 4096, 12388)
        assert [tuple(g) for g in img.guest_clusters()] == [
            (0, Kind.DATA, 0, 4096), (4096, Kind.DATA, 4096, 4096), (8192, Kind.DATA, 8192, 4096), (12288, Kind.DATA, 12288, 100)]
        assert [tuple(e) for e in img.extents()] == [(0, 12388, Kind.DATA, 0, 12388)]
        assert img.map(12387) == (12288, Kind.DATA, 12288, 100)
    with open_image(path) as img:
        assert img.cluster_size == 65536 and [tuple(e) for e in img.extents()] == [(0, 12388, Kind.DATA, 0, 12388)]
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    with open_image(empty) as img:
        assert list(img.guest_clusters()) == [] and list(img.extents()) == []


def test_format_forces_raw_or_qcow2(images: dict[str, qi.Image], tmp_path: Path) -> None:
    qcow2 = images["v3_c4k"].path
    with open_image(qcow2, format="raw", block_size=512) as img:
        assert img.format == "raw" and img.len_virtual_disk == qcow2.stat().st_size
    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(4096))
    with pytest.raises(CorruptImageError) as info:
        open_image(raw, format="qcow2")
    assert str(info.value) == f"{raw}: offset 0x0 (0): not a qcow2 image: it does not start with the magic b'QFI\\xfb'"
    with pytest.raises(JournalArgumentError) as bad_format:
        open_image(raw, format="vmdk")
    assert str(bad_format.value) == "format must be \"qcow2\", \"raw\" or None (from the file), not 'vmdk'"


@pytest.mark.parametrize("block_size", [0, 256, 1000, 3 * 512, 4 << 20, True, "4096"])
def test_block_sizes_are_powers_of_two_from_512_bytes_to_2_mib(block_size: int, tmp_path: Path) -> None:
    with pytest.raises(JournalArgumentError) as info:
        check_block_size(block_size)
    assert str(info.value) == (f"block_size= must be a power of two from 512 bytes to 2097152 (2 MiB), as a qcow2 "
                               f"cluster size is, not {block_size!r}")
    assert info.value.message(cli=True).startswith("--block-size must be")
    assert [check_block_size(1 << k) for k in range(9, 22)] == [1 << k for k in range(9, 22)]


def test_files_that_are_no_image_are_refused_naming_them(tmp_path: Path) -> None:
    missing, folder, fifo = tmp_path / "missing", tmp_path / "folder", tmp_path / "fifo"
    folder.mkdir()
    os.mkfifo(fifo)
    cases = {missing: "no such file", folder: "is a directory, not a disk image",
             fifo: "not a regular file or block device (a FIFO, socket or character device?)"}
    for path, reason in cases.items():
        with pytest.raises(JournalIOError) as info:
            open_image(path)
        assert str(info.value) == f"{path}: {reason}"


# -- refusals ---------------------------------------------------------------------------------------------

REFUSALS = {
    "encryption": "offset 0x20 (32): unsupported qcow2 image: encrypted (crypt_method luks): its clusters hold "
                  "ciphertext, whose hashes say nothing of the guest's data",
    "external_data_file": "offset 0x48 (72): unsupported qcow2 image: an external data file holds its clusters "
                          "(incompatible feature bit 2), so host offsets are not offsets in this file",
}


@pytest.mark.parametrize("name", oracle.SUBCLUSTERED)
def test_a_partly_allocated_cluster_is_refused_by_the_cluster_walks(name: str, images: dict[str, qi.Image]) -> None:
    """Extended L2 entries are opened; a cluster whose subclusters differ is refused where a whole cluster is asked for."""
    image = images[name]
    with open_image(image.path) as img:
        assert isinstance(img, Qcow2Image)
        assert img.has_extended_l2 and img.len_subcluster * 32 == img.cluster_size == image.info()["cluster-size"]
        with pytest.raises(UnsupportedImageError) as info:
            list(img.guest_clusters())
        assert info.value.code == "extended_l2"
        assert "is partly allocated (extended L2 entries: allocation bitmap 0x" in str(info.value)
        partial = next(run.idx for run in img._runs() if run.sub is not None)
        with pytest.raises(UnsupportedImageError):
            img.map(partial * img.cluster_size)


@pytest.mark.parametrize("name", list(oracle.UNSUPPORTED))
def test_unsupported_features_are_refused_in_one_line(name: str, images: dict[str, qi.Image]) -> None:
    """LUKS, external data files (raw or not) and extended L2 entries, on images QEMU made."""
    feature = oracle.UNSUPPORTED[name]
    path = images[name].path
    with pytest.raises(UnsupportedImageError) as info:
        open_image(path)
    assert info.value.code == feature
    assert str(info.value) == f"{path}: {REFUSALS[feature]}"
    assert "\n" not in str(info.value)


Mutation = Callable[[bytearray], None]
"""A change to an image's bytes."""


def _mutated(images: dict[str, qi.Image], tmp_path: Path, name: str, mutate: Mutation) -> Path:
    path = copy_image(images[name], tmp_path)
    data = bytearray(path.read_bytes())
    mutate(data)
    path.write_bytes(data)
    return path


def _or(ofs: int, bits: int) -> Mutation:
    def mutate(data: bytearray) -> None:
        data[ofs] |= bits
    return mutate


def _put_u4(ofs: int, value: int) -> Mutation:
    def mutate(data: bytearray) -> None:
        data[ofs:ofs + 4] = struct.pack(">I", value)
    return mutate


HEADER_CASES: dict[str, tuple[str, Mutation, type[UnsupportedImageError | CorruptImageError], str, str | None]] = {
    # case: (image, mutation, error, code, message after "file: ")
    "corrupt_bit": ("v3_c4k", _or(79, 0x02), UnsupportedImageError, "corrupt_bit",
                    "offset 0x48 (72): unsupported qcow2 image: the corrupt bit is set (incompatible feature bit 1): QEMU "
                    "found its metadata inconsistent, so its mapping cannot be trusted; 'qemu-img check -r' repairs it"),
    "unknown_bit": ("v3_c4k", _or(79, 0x20), UnsupportedImageError, "unknown_incompatible_feature",
                    "offset 0x48 (72): unsupported qcow2 image: an incompatible feature bit that formats/qcow2.ksy does not "
                    "know (bits 5-63) is set: the image would be misread"),
    "aes": ("v3_c4k", _put_u4(32, 1), UnsupportedImageError, "encryption",
            "offset 0x20 (32): unsupported qcow2 image: encrypted (crypt_method aes): its clusters hold ciphertext, whose "
            "hashes say nothing of the guest's data"),
    "crypt_method_7": ("v2_c4k", _put_u4(32, 7), UnsupportedImageError, "encryption",
                       "offset 0x20 (32): unsupported qcow2 image: encrypted (crypt_method 7 (unknown)): its clusters hold "
                       "ciphertext, whose hashes say nothing of the guest's data"),
    "version_4": ("v3_c4k", _put_u4(4, 4), UnsupportedImageError, "version",
                  "offset 0x4 (4): unsupported qcow2 image: qcow2 version 4: only versions 2 and 3 exist"),
    "version_1": ("v2_c4k", _put_u4(4, 1), UnsupportedImageError, "version",
                  "offset 0x4 (4): unsupported image: an image of QEMU's original qcow format (version 1), not qcow2; "
                  "convert it to qcow2 first (qemu-img convert -f qcow -O qcow2 IMAGE NEW.qcow2)"),
    "cluster_bits_22": ("v3_c4k", _put_u4(20, 22), UnsupportedImageError, "cluster_size",
                        "offset 0x14 (20): unsupported qcow2 image: cluster_bits 22: clusters are 512 bytes to 2 MiB (9 to 21)"),
    "l1_unaligned": ("v3_c4k", lambda d: d.__setitem__(slice(40, 48), struct.pack(">Q", u64(d, 40) + 512)),
                     CorruptImageError, "header", None),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_header_refusals_name_the_feature_and_the_field(case: str, images: dict[str, qi.Image], tmp_path: Path) -> None:
    name, mutate, error, code, message = HEADER_CASES[case]
    path = _mutated(images, tmp_path, name, mutate)
    with pytest.raises(error) as info:
        open_image(path)
    assert info.value.code == code
    if message is None:  # the offset is the image's own: the field at 40 holds it
        ofs = u64(path.read_bytes(), 40)
        message = f"offset 0x28 (40): the L1 table offset {ofs:#x} is not cluster-aligned"
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize("fmt, what, magic, ofs", [
    ("vmdk", "a VMDK sparse extent", b"KDMV", 0),
    ("vpc", "a dynamic or differencing VHD image", b"conectix", 0),
    ("vhdx", "a VHDX image", b"vhdxfile", 0),
    ("vdi", "a VDI image", b"\x7f\x10\xda\xbe", 64),
    ("qed", "a QED image", b"QED\x00", 0),
    ("parallels", "a Parallels image", b"WithouFreSpacExt", 0),
])
def test_images_of_other_formats_are_refused_unless_read_as_raw(fmt: str, what: str, magic: bytes, ofs: int, tmp_path: Path) -> None:
    qi.require_qemu()
    path = tmp_path / f"disk.{fmt}"
    qi.run_qemu(["qemu-img", "create", "-q", "-f", fmt, str(path), "1M"])
    with pytest.raises(UnsupportedImageError) as info:
        open_image(path)
    assert str(info.value) == (
        f"{path}: offset {ofs:#x} ({ofs}): unsupported image: it starts like {what} (magic {magic!r}), whose blocks are "
        f'not where its guest sees them; convert it (qemu-img convert -O qcow2), or read the file as it is (format="raw")')
    assert info.value.message(cli=True).endswith("(--format raw)")
    with open_image(path, format="raw") as img:
        assert img.format == "raw"


def test_a_broken_l2_entry_is_reported_at_its_offset(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """An L2 entry whose host offset is not cluster-aligned (the .ksy's alignment_rule): the walk and a lookup say where."""
    path = _mutated(images, tmp_path, "v3_c4k", lambda d: d.__setitem__(
        slice(first_l2_table(d), first_l2_table(d) + 8), struct.pack(">Q", u64(d, first_l2_table(d)) + 512)))
    l2 = first_l2_table(path.read_bytes())
    message = (f"{path}: offset {l2:#x} ({l2}): the L2 entry of guest offset 0x0 breaks the rule /types/l2_entry/seq/4 of "
               f"formats/qcow2.ksy (its host offset must be cluster-aligned, a compressed offset in range)")
    with open_image(path) as img:
        for walk in (lambda: list(img.guest_clusters()), lambda: img.map(0)):
            with pytest.raises(CorruptImageError) as info:
                walk()
            assert (info.value.code, str(info.value)) == ("l2_entry", message)
        assert img.map(4096).kind is Kind.DATA  # the next entry is fine


def test_a_broken_l1_entry_is_reported_at_its_offset(images: dict[str, qi.Image], tmp_path: Path) -> None:
    path = _mutated(images, tmp_path, "v3_c4k", lambda d: d.__setitem__(
        slice(u64(d, 40), u64(d, 40) + 8), struct.pack(">Q", u64(d, u64(d, 40)) + 512)))
    l1 = u64(path.read_bytes(), 40)
    message = (f"{path}: offset {l1:#x} ({l1}): the L1 entry 0 of guest offsets 0x0-0x1fffff breaks the rule "
               f"/types/l1_entry/seq/3 of formats/qcow2.ksy (its L2 table offset must be cluster-aligned)")
    with open_image(path) as img:
        for walk in (lambda: list(img.extents()), lambda: img.map(8192)):
            with pytest.raises(CorruptImageError) as info:
                walk()
            assert (info.value.code, str(info.value)) == ("l1_entry", message)


@pytest.mark.parametrize("bit", [0, 8, 56, 62])
def test_reserved_bits_of_an_l1_entry_are_corruption_as_qemu_img_check_says(bit: int, images: dict[str, qi.Image],
                                                                            tmp_path: Path) -> None:
    """Bits 0-8 and 56-62 of an L1 entry are reserved (zero by the spec): ``qemu-img check`` counts an entry with
    one set as corruption ("ERROR found L1 entry with reserved bits set", exit code 2), and the walk and a lookup
    refuse it: the entry's offset, its index, the rule of formats/qcow2.ksy."""
    qi.require_qemu()
    path = _mutated(images, tmp_path, "v3_c4k", lambda d: struct.pack_into(">Q", d, u64(d, 40), u64(d, u64(d, 40)) | 1 << bit))
    data = path.read_bytes()
    l1 = u64(data, 40)
    check = qi.run_qemu(["qemu-img", "check", "-f", "qcow2", str(path)], check=False)
    assert check.returncode == 2, check.stdout + check.stderr  # 2: corruptions found
    assert f"ERROR found L1 entry with reserved bits set: {u64(data, l1):x}" in check.stdout + check.stderr
    src_path, bits = ("/types/l1_entry/seq/1", "56-62") if bit >= 56 else ("/types/l1_entry/seq/4", "0-8")
    message = (f"{path}: offset {l1:#x} ({l1}): the L1 entry 0 of guest offsets 0x0-0x1fffff breaks the rule "
               f"{src_path} of formats/qcow2.ksy (its reserved bits {bits} must be zero)")
    with open_image(path) as img:
        for walk in (lambda: list(img.extents()), lambda: img.map(8192), lambda: list(img.guest_clusters())):
            with pytest.raises(CorruptImageError) as info:
                walk()
            assert (info.value.code, str(info.value)) == ("l1_entry", message)


def test_each_rule_of_an_l1_entry_has_its_words() -> None:
    """image.py says what each `valid` of formats/qcow2.ksy's l1_entry asks, and no other."""
    seq = load_ksy(Path(__file__).resolve().parents[1] / "formats" / "qcow2.ksy")["types"]["l1_entry"]["seq"]
    assert set(image_module._L1_RULES) == {f"/types/l1_entry/seq/{i}" for i, attr in enumerate(seq) if "valid" in attr}


def test_a_zero_flag_in_a_version_2_image_is_corruption(images: dict[str, qi.Image], tmp_path: Path) -> None:
    """Version 2 has no zero clusters; QEMU calls the flag corruption, and so does the walk."""
    path = _mutated(images, tmp_path, "v2_c4k", lambda d: d.__setitem__(
        slice(first_l2_table(d), first_l2_table(d) + 8), struct.pack(">Q", u64(d, first_l2_table(d)) | 1)))
    l2 = first_l2_table(path.read_bytes())
    with open_image(path) as img:
        with pytest.raises(CorruptImageError) as info:
            list(img.guest_clusters())
    assert info.value.code == "zero_in_v2"
    assert str(info.value) == (f"{path}: offset {l2:#x} ({l2}): the L2 entry of guest offset 0x0 has the zero flag, which "
                               f"a version 2 image does not have (QEMU calls it corruption)")
    proc = qi.run_qemu(["qemu-io", "-r", "-f", "qcow2", "-c", "read 0 4096", str(path)], check=False)
    assert "Zero cluster entry found in pre-v3 image" in proc.stdout + proc.stderr, proc


def test_truncated_images_are_reported_where_they_end(images: dict[str, qi.Image], tmp_path: Path) -> None:
    name = "v3_c4k"
    data = images[name].path.read_bytes()
    l2 = first_l2_table(data)
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(data[:l2 + 100])
    with open_image(cut) as img:
        with pytest.raises(CorruptImageError) as info:
            list(img.guest_clusters())
    assert (info.value.code, str(info.value)) == ("truncated", (
        f"{cut}: offset {l2:#x} ({l2}): the L2 table of guest offsets 0x0 on (4096 bytes at {l2:#x}) runs past the end "
        f"of the file ({l2 + 100} bytes)"))
    short = tmp_path / "short.qcow2"
    short.write_bytes(data[:50])
    with pytest.raises(CorruptImageError) as info:
        open_image(short)
    assert (info.value.code, str(info.value)) == (
        "truncated", f"{short}: offset 0x32 (50): the file (50 bytes) ends inside the qcow2 header or its extensions")
