"""formats/qcow2.ksy against QEMU: the generated Python parser reads real images
made by qemu-img and qemu-io (tests/qemu_images.py, TEST_IMAGES) and says what
QEMU says about them.

The oracle is QEMU's own output, never an expected value written here:

- the header and extensions vs ``qemu-img info --output=json``;
- every guest cluster (every subcluster with extended L2 entries), looked up
  through the parser's ``guest_cluster(i).l2_entry`` down the backing chain,
  vs ``qemu-img map --output=json`` (depth, present/zero/data, host
  offset);
- the guest data read through that mapping, from the parser's own ``data``
  and ``compressed_data`` (compressed clusters inflated here with zlib: the
  .ksy leaves them raw; zeros past the end of the file, as QEMU reads) vs ``qemu-img convert -O raw``, for the
  active disk and for every internal snapshot (through the snapshot's L1
  table);
- the refcounts, read one by one through ``host_cluster(j).refcount``, vs
  ``qemu-img check --output=json`` (image end, allocated and compressed
  clusters) and QEMU's invariant that the COPIED flag means refcount 1;
- broken images (each rule the .ksy checks with `valid`) fail with the Kaitai
  validation error at the field that breaks it, and QEMU refuses them too,
  except where this definition is stricter than QEMU (said case by case).
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kaitaistruct
import ksy_tree
import pytest
import qemu_images as qi
from helpers import load_script, printed
from ksy_toolchain import load_ksy

qcow2_module, _ = ksy_tree.load_parser_module("qcow2")
Qcow2 = qcow2_module.Qcow2
CT = Qcow2.ClusterType

IMAGE_NAMES = [spec.name for spec in qi.TEST_IMAGES]
SPECS = {spec.name: spec for spec in qi.TEST_IMAGES}
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
K = TypeVar("K")
V = TypeVar("V")


# ---------------------------------------------------------------------------
# Fixtures: the images, parsed once, and what QEMU says about them, asked once


class _Lazy(dict[K, V]):
    def __init__(self, make: Callable[[K], V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: K) -> V:
        value = self[key] = self._make(key)
        return value


@pytest.fixture(scope="module")
def qcow2_ksy() -> dict[str, Any]:
    """formats/qcow2.ksy, read as the Web IDE reads it (once)."""
    return load_ksy(ksy_tree.ROOT / "formats" / "qcow2.ksy")


@pytest.fixture(scope="module")
def images(qemu_test_images: dict[str, qi.Image]) -> dict[str, qi.Image]:
    return qemu_test_images


@pytest.fixture(scope="module")
def parsed(images: dict[str, qi.Image]) -> _Lazy[str, Any]:
    """name -> the Qcow2 parse of that image (from its bytes)."""
    return _Lazy(lambda name: Qcow2.from_bytes(images[name].path.read_bytes()))


@pytest.fixture(scope="module")
def qemu(images: dict[str, qi.Image]) -> _Lazy[str, _Lazy[str, Any]]:
    """name -> {"info", "map", "check", "guest"} as QEMU reports them (asked lazily)."""
    def facts(name: str) -> _Lazy[str, Any]:
        image = images[name]
        asks: dict[str, Callable[[], Any]] = {"info": image.info, "map": image.map, "check": image.check, "guest": image.guest_bytes}
        return _Lazy(lambda what: asks[what]())
    return _Lazy(facts)


# ---------------------------------------------------------------------------
# The lookup of the spec's "Cluster mapping", through the parser


def guest_cluster(img: Any, idx: int) -> Any:
    """The .ksy's ``guest_cluster(idx)`` lookup, made as its doc says: on the root's stream, the root as parent and root."""
    return Qcow2.GuestCluster(idx, img._io, img, img)


def host_cluster(img: Any, idx: int) -> Any:
    """The .ksy's ``host_cluster(idx)`` lookup, made the same way."""
    return Qcow2.HostCluster(idx, img._io, img, img)


def guest_clusters(img: Any) -> Iterator[Any]:
    """Every guest cluster's lookup, one at a time."""
    return (guest_cluster(img, i) for i in range(img.header.num_guest_clusters))


def host_clusters(img: Any) -> Iterator[Any]:
    """Every host cluster's lookup (the last may be partial), one at a time."""
    size = img.header.cluster_size
    return (host_cluster(img, j) for j in range(-(-img._io.size() // size)))


def extension(img: Any, ext_type: int) -> Any:
    """The data of the header extension of that type, or None."""
    for ext in img.header_extension_area.extensions or []:
        if ext.extension_type == ext_type:
            return ext.data
    return None


def l2_entry_for(img: Any, guest_offset: int, l1_entries: list[Any] | None = None) -> Any:
    """The L2 entry of the guest cluster holding ``guest_offset``: through the lazy
    ``guest_cluster`` type for the active table, through a snapshot's parsed L1
    table when ``l1_entries`` is given. None when unallocated at L1 level."""
    h = img.header
    idx = guest_offset // h.cluster_size
    if l1_entries is None:
        return guest_cluster(img, idx).l2_entry
    l1_index, l2_index = divmod(idx, h.num_l2_entries)
    if l1_index >= len(l1_entries) or not l1_entries[l1_index].is_allocated:
        return None
    return l1_entries[l1_index].l2_table.entries[l2_index]


def layer_status(img: Any, guest_offset: int, l1_entries: list[Any] | None = None) -> tuple[str, int | None, Any]:
    """What one image says of the byte at ``guest_offset``: (kind, host offset
    or None, the L2 entry) with kind "data", "compressed", "zero" or
    "unallocated" (for extended L2 entries, the subcluster's status)."""
    h = img.header
    entry = l2_entry_for(img, guest_offset, l1_entries)
    within = guest_offset % h.cluster_size
    if entry is None:
        return "unallocated", None, None
    if entry.is_compressed:
        return "compressed", None, entry
    host = entry.ofs_host_cluster + within if entry.is_allocated else None
    if h.has_extended_l2:
        sub = within // h.len_subcluster
        if entry.alloc_bitmap >> sub & 1:
            return "data", host, entry
        if entry.zero_bitmap >> sub & 1:
            return "zero", host, entry
        return "unallocated", host, entry
    kind = {CT.normal: "data", CT.zero_plain: "zero", CT.zero_allocated: "zero",
            CT.unallocated: "unallocated"}[entry.cluster_type]
    return kind, host, entry


def expected_map_entry(chain: list[Any], guest_offset: int, encrypted: bool) -> dict[str, Any]:
    """What ``qemu-img map`` must say of the unit at ``guest_offset``, from the
    parses of the chain (top image first)."""
    for depth, img in enumerate(chain):
        kind, host, _ = layer_status(img, guest_offset)
        if kind == "unallocated":
            if host is not None:  # extended L2: a host cluster, but this subcluster unallocated
                assert len(chain) == 1, "extended L2 entries over a backing file are not in TEST_IMAGES"
                return {"depth": depth, "present": False, "zero": True, "data": False, "offset": host}
            continue
        out: dict[str, Any] = {"depth": depth, "present": True, "zero": kind == "zero", "data": kind in ("data", "compressed")}
        if host is not None and not (encrypted and kind == "data"):
            out["offset"] = host
        if kind == "compressed":
            out["compressed"] = True
        return out
    return {"depth": len(chain) - 1, "present": False, "zero": True, "data": False}


def map_unit(img: Any) -> int:
    """The unit qemu-img map's status changes at: the subcluster with extended L2."""
    return int(img.header.len_subcluster)


def chain_of(name: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any]) -> list[Any]:
    return [parsed[image.spec.name] for image in images[name].chain()]


# ---------------------------------------------------------------------------
# Header and extensions vs qemu-img info


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_header_agrees_with_qemu_img_info(name: str, parsed: _Lazy[str, Any], qemu: _Lazy[str, _Lazy[str, Any]], images: dict[str, qi.Image]) -> None:
    assert_header_agrees(parsed[name], qemu[name]["info"], SPECS[name], images[name].path)


def assert_header_agrees(img: Any, info: dict[str, Any], spec: qi.ImageSpec, path: Path) -> None:
    """The parse of an image says what ``qemu-img info`` says of it."""
    h = img.header
    fs = info["format-specific"]["data"]
    assert info["format-specific"]["type"] == "qcow2"
    assert h.cluster_size == info["cluster-size"]
    assert h.len_virtual_disk == info["virtual-size"]
    assert h.version == {"0.10": 2, "1.1": 3}[fs["compat"]] == spec.version
    assert h.refcount_bits == fs["refcount-bits"]
    assert h.compression.name == fs["compression-type"]
    assert h.is_dirty == info["dirty-flag"]
    assert h.num_guest_clusters * h.cluster_size >= h.len_virtual_disk
    if h.version >= 3:
        assert h.compatible_features.has_lazy_refcounts == fs["lazy-refcounts"]
        assert h.is_corrupt == fs["corrupt"]
        assert h.has_extended_l2 == fs.get("extended-l2", False)
        assert h.incompatible_features.has_compression_type == (fs["compression-type"] != "zlib")
    else:
        assert h.ofs_header_extensions == 72 and not h.has_extended_l2
    # backing file: name (a lazy instance) and format (a header extension)
    assert img.backing_file_name == info.get("backing-filename")
    fmt = extension(img, Qcow2.HeaderExtensionType.backing_file_format)
    assert (fmt.value if fmt else None) == info.get("backing-filename-format")
    # external data file
    data_file = extension(img, Qcow2.HeaderExtensionType.external_data_file)
    assert (data_file.value if data_file else None) == fs.get("data-file")
    assert h.has_external_data_file == ("data-file" in fs)
    if h.version >= 3:
        assert h.autoclear_features.has_raw_external_data == fs.get("data-file-raw", False)
    # encryption
    encrypted = info.get("encrypted", False)
    assert (h.crypt_method != Qcow2.CryptMethod.none) == encrypted
    fde = extension(img, Qcow2.HeaderExtensionType.full_disk_encryption)
    if encrypted:
        assert h.crypt_method.name == fs["encrypt"]["format"]
        assert fde is not None
        luks, want = fde.encryption_header, fs["encrypt"]
        assert (luks.version, luks.uuid, luks.hash_spec, luks.ofs_payload * 512) == (
            1, want["uuid"], want["hash-alg"], want["payload-offset"])
        assert f"{luks.cipher_name}-{luks.len_key * 8 // 2}" == want["cipher-alg"]  # XTS: two keys
        assert luks.cipher_mode == f"{want['cipher-mode']}-{want['ivgen-alg']}"
        assert [(k.state == Qcow2.LuksKeySlotState.enabled, k.ofs_key_material * 512) for k in luks.key_slots] == [
            (slot["active"], slot["key-offset"]) for slot in want["slots"]]
        assert fde.len_encryption_header <= path.stat().st_size - fde.ofs_encryption_header
    else:
        assert fde is None
    # snapshots
    snapshots = info.get("snapshots", [])
    assert h.num_snapshots == len(snapshots) == len(spec.snapshots)
    for snap, want in zip(img.snapshots, snapshots, strict=True):
        assert (snap.id_str, snap.name) == (want["id"], want["name"])
        assert (snap.date_sec, snap.date_nsec) == (want["date-sec"], want["date-nsec"])
        assert snap.vm_clock_nsec == want["vm-clock-sec"] * 10**9 + want["vm-clock-nsec"]
        assert snap.len_vm_state == want["vm-state-size"]
        if "icount" in want:
            assert snap.extra_data.icount == want["icount"]
        assert snap.extra_data.len_virtual_disk == info["virtual-size"]
    # bitmaps
    bitmaps_ext = extension(img, Qcow2.HeaderExtensionType.bitmaps)
    want_bitmaps = fs.get("bitmaps", [])
    got_bitmaps = []
    if bitmaps_ext is not None:
        assert h.autoclear_features.has_bitmaps
        for entry in bitmaps_ext.bitmap_directory.entries:
            flags = [f for f, on in (("in-use", entry.flags.is_in_use), ("auto", entry.flags.is_auto)) if on]
            got_bitmaps.append({"name": entry.name, "granularity": 1 << entry.granularity_bits, "flags": flags})
    assert sorted(got_bitmaps, key=lambda b: b["name"]) == sorted(want_bitmaps, key=lambda b: b["name"])


def test_feature_name_table_names_every_feature_bit_of_the_definition(parsed: _Lazy[str, Any], qcow2_ksy: dict[str, Any]) -> None:
    """QEMU writes a feature name table into some version 3 images: every bit it
    names is a bit this definition names (the same bit of the same bitmap)."""
    named = {}
    for name in IMAGE_NAMES:
        table = extension(parsed[name], Qcow2.HeaderExtensionType.feature_name_table)
        for entry in table.entries if table else []:
            named[(entry.feature_type.name, entry.bit_number)] = entry.name
    assert named, "no image of TEST_IMAGES has a feature name table"
    ours = {
        ("incompatible", 0): "is_dirty", ("incompatible", 1): "is_corrupt",
        ("incompatible", 2): "has_external_data_file", ("incompatible", 3): "has_compression_type",
        ("incompatible", 4): "has_extended_l2", ("compatible", 0): "has_lazy_refcounts",
        ("autoclear", 0): "has_bitmaps", ("autoclear", 1): "has_raw_external_data",
    }
    assert set(named) == set(ours), named
    ksy = qcow2_ksy
    for (bitmap, bit), field in ours.items():
        seq = [attr for attr in ksy["types"][f"{bitmap}_features"]["seq"] if _bit_width(attr)]
        ids = [attr["id"] for attr in seq]
        widths = [_bit_width(attr) for attr in seq]
        # bit fields are read bit 63 first: the field's bit number is what follows it
        assert sum(widths) == 64
        assert sum(widths[ids.index(field) + 1:]) == bit, (bitmap, bit, field, named[(bitmap, bit)])


# ---------------------------------------------------------------------------
# Guest clusters vs qemu-img map


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_every_guest_cluster_agrees_with_qemu_img_map(name: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any], qemu: _Lazy[str, _Lazy[str, Any]]) -> None:
    assert_map_agrees(chain_of(name, images, parsed), qemu[name]["map"])


def assert_map_agrees(chain: list[Any], qemu_map: list[dict[str, Any]]) -> None:
    """Every unit of the guest disk, looked up through the parses of the chain,
    is what ``qemu-img map`` says of it."""
    img = chain[0]
    encrypted = img.header.crypt_method != Qcow2.CryptMethod.none
    unit = map_unit(img)
    units = qi.map_units(qemu_map, unit, img.header.len_virtual_disk)
    assert len(units) == -(-img.header.len_virtual_disk // unit)
    wrong = []
    for got in units:
        want = expected_map_entry(chain, got["start"], encrypted)
        qemu_says = {k: v for k, v in got.items() if k in ("depth", "present", "zero", "data", "offset", "compressed")}
        if "compressed" not in got:  # QEMU 7.2's map has no such key
            want.pop("compressed", None)
        if "present" not in got:
            want.pop("present", None)
        if want != qemu_says:
            wrong.append(f"guest {got['start']:#x}: parser {want} != qemu-img map {qemu_says}")
    assert not wrong, f"{len(wrong)} of {len(units)} units differ:\n" + "\n".join(wrong[:10])


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_every_l2_entry_status_says_what_qemu_img_map_says(name: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any], qemu: _Lazy[str, _Lazy[str, Any]]) -> None:
    """`status`, the summary the Web IDE shows for an L2 entry, is what ``qemu-img
    map`` says of the cluster's units (subclusters included) in this image:
    all data, all zero, none present here (unallocated), compressed, or mixed."""
    img = parsed[name]
    h = img.header
    units = qi.map_units(qemu[name]["map"], map_unit(img), h.len_virtual_disk)
    per_cluster = h.cluster_size // map_unit(img)
    CS = Qcow2.ClusterStatus
    for gc in guest_clusters(img):
        entry = gc.l2_entry
        mine = units[gc.idx * per_cluster:(gc.idx + 1) * per_cluster]
        kinds = {"data" if u["data"] else "zero" if u["zero"] else "unallocated" for u in mine
                 if u.get("present", True) and u["depth"] == 0}
        kinds |= {"unallocated" for u in mine if u["depth"] > 0 or not u.get("present", True)}
        if entry is None:
            assert kinds == {"unallocated"}, (name, gc.idx)
            continue
        if entry.status == CS.compressed:
            assert entry.is_compressed and kinds == {"data"}, (name, gc.idx)
        elif entry.status == CS.mixed:
            assert len(kinds) > 1, (name, gc.idx, kinds)
        else:
            assert kinds == {entry.status.name}, (name, gc.idx, entry.status, kinds)


def test_the_images_cover_every_kind_of_entry(parsed: _Lazy[str, Any]) -> None:
    """TEST_IMAGES exercise every cluster type, subclusters, both L1/L2 COPIED
    states, and compressed clusters that span two host sectors or more."""
    types, statuses, subcluster_states, copied, multi_sector = set(), set(), set(), set(), False
    for name in IMAGE_NAMES:
        img = parsed[name]
        for gc in guest_clusters(img):
            entry = gc.l2_entry
            if entry is None:
                continue
            types.add(entry.cluster_type)
            statuses.add(entry.status)
            copied.add(entry.is_copied)
            multi_sector |= entry.is_compressed and entry.num_additional_sectors > 0
            if img.header.has_extended_l2 and not entry.is_compressed:
                subcluster_states.add((entry.alloc_bitmap != 0, entry.zero_bitmap != 0,
                                       entry.alloc_bitmap | entry.zero_bitmap == 0xFFFFFFFF))
    assert types == set(CT), types
    assert statuses == set(Qcow2.ClusterStatus), statuses
    assert copied == {True, False}
    assert multi_sector
    assert {(True, False, False), (True, True, False), (False, True, True)} <= subcluster_states, subcluster_states


@pytest.mark.parametrize("name", [n for n in IMAGE_NAMES if SPECS[n].cluster_size <= 64 * qi.KiB])
def test_guest_cluster_lookup_equals_the_whole_tables(name: str, parsed: _Lazy[str, Any]) -> None:
    """guest_cluster(i).l1_entry / .l2_entry (two entries read in place) are the
    entries of the parsed L1 table and L2 tables, for every guest cluster.
    (Images with 2 MiB clusters are left out: a whole 262144-entry L2 table
    takes seconds to parse in Python; test_js_agreement covers their lookups.)"""
    img = parsed[name]
    h = img.header
    l1 = img.l1_table.entries
    assert len(l1) == h.num_l1_entries
    fields = ("is_copied", "is_compressed", "cluster_type", "ofs_host_cluster", "is_zero", "is_allocated",
              "ofs_compressed_data", "len_compressed_data", "num_additional_sectors")
    for gc in guest_clusters(img):
        assert (gc.l1_index, gc.l2_index) == divmod(gc.idx, h.num_l2_entries)
        assert gc.ofs_guest == gc.idx * h.cluster_size
        l1_entry = l1[gc.l1_index] if gc.l1_index < len(l1) else None
        assert (gc.l1_entry is None) == (l1_entry is None)
        if l1_entry is None:
            continue
        assert (gc.l1_entry.ofs_l2_table, gc.l1_entry.is_copied) == (l1_entry.ofs_l2_table, l1_entry.is_copied)
        if not l1_entry.is_allocated:
            assert gc.l2_entry is None
            continue
        table_entry = l1_entry.l2_table.entries[gc.l2_index]
        assert [getattr(gc.l2_entry, f) for f in fields] == [getattr(table_entry, f) for f in fields]
        if h.has_extended_l2:
            assert (gc.l2_entry.alloc_bitmap, gc.l2_entry.zero_bitmap) == (table_entry.alloc_bitmap,
                                                                         table_entry.zero_bitmap)


# ---------------------------------------------------------------------------
# Guest data vs qemu-img convert


def read_through_parser(chain: list[Any], images_chain: list[qi.Image], size: int,
                        l1_entries: list[Any] | None = None) -> list[tuple[int, bytes | None]]:
    """The guest disk as read through the parser's mapping, one unit at a time:
    a list of (guest offset, bytes or None); None where this test cannot read
    the data itself (encrypted data, zstd payloads)."""
    top = chain[0]
    unit = map_unit(top)
    files = [image.path.read_bytes() for image in images_chain]
    out: list[tuple[int, bytes | None]] = []
    for start in range(0, size, unit):
        length = min(unit, size - start)
        data: bytes | None = bytes(length)  # unallocated down the whole chain: zeros
        for depth, img in enumerate(chain):
            kind, host, entry = layer_status(img, start, l1_entries if depth == 0 else None)
            if kind == "unallocated":
                continue
            h = img.header
            if kind == "zero":
                data = bytes(length)
            elif kind == "compressed":
                payload = entry.compressed_data
                in_file = len(files[depth]) - entry.ofs_compressed_data
                assert len(payload) == entry.len_data_in_file == min(entry.len_compressed_data, in_file)
                assert entry.ofs_compressed_data % 512 + entry.len_compressed_data == (entry.num_additional_sectors + 1) * 512
                if h.compression == Qcow2.CompressionType.zstd:
                    assert payload[:4] == ZSTD_FRAME_MAGIC, "no zstd frame at the compressed offset"
                    data = None
                else:
                    cluster = zlib.decompressobj(-15).decompress(payload, h.cluster_size)
                    assert len(cluster) == h.cluster_size
                    within = start % h.cluster_size
                    data = cluster[within:within + length]
            elif h.crypt_method != Qcow2.CryptMethod.none:
                data = None
            elif h.has_external_data_file:  # no `data` instance: the bytes are in the other file
                name = extension(img, Qcow2.HeaderExtensionType.external_data_file).value
                assert host is not None
                data = (images_chain[depth].directory / name).read_bytes()[host:host + length]
                assert len(data) == length, f"host offset {host:#x} is past the end of the data file"
            else:  # the parser's own `data`: what the file holds, zeros after its end (as QEMU reads)
                cluster = entry.data
                assert len(cluster) == entry.len_data_in_file == min(h.cluster_size, len(files[depth]) - entry.ofs_host_cluster)
                within = start % h.cluster_size
                data = cluster[within:within + length].ljust(length, b"\0")
            break
        out.append((start, data))
    return out


def _compare(units: list[tuple[int, bytes | None]], guest: bytes, what: str) -> int:
    compared = [(start, data) for start, data in units if data is not None]
    wrong = [f"guest {start:#x}" for start, data in compared if guest[start:start + len(data)] != data]
    assert not wrong, f"{what}: the parser's mapping reads other bytes than QEMU at {wrong[:10]}"
    return len(compared)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_guest_data_agrees_with_qemu_img_convert(name: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any], qemu: _Lazy[str, _Lazy[str, Any]]) -> None:
    assert_data_agrees(chain_of(name, images, parsed), images[name], qemu[name]["guest"])


def assert_data_agrees(chain: list[Any], image: qi.Image, guest: bytes) -> None:
    """The guest disk read through the parser's mapping is ``guest`` (what
    ``qemu-img convert`` reads), wherever this test can read it itself."""
    h = chain[0].header
    name = image.spec.name
    assert len(guest) == h.len_virtual_disk
    units = read_through_parser(chain, image.chain(), h.len_virtual_disk)
    compared = _compare(units, guest, name)
    unread = [start for start, data in units if data is None]
    if h.crypt_method != Qcow2.CryptMethod.none:
        assert unread, "an encrypted image with writes has encrypted clusters"
        for start in unread:  # what is stored is not the plaintext
            _, host, _ = layer_status(chain[0], start)
            assert host is not None
            stored = image.path.read_bytes()[host:host + map_unit(chain[0])]
            assert stored != guest[start:start + len(stored)]
    elif h.compression != Qcow2.CompressionType.zstd:
        assert not unread
    assert compared > 0


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_qemu_images_hold_what_their_steps_write(name: str, images: dict[str, qi.Image], qemu: _Lazy[str, _Lazy[str, Any]]) -> None:
    """tests/qemu_images.py's check of itself (and of QEMU): each image's guest
    disk, and each snapshot's, is what simulate_guest computes from the steps."""
    spec = SPECS[name]
    assert qemu[name]["guest"] == qi.simulate_guest(spec)
    for snapshot in spec.snapshots:
        assert images[name].guest_bytes(snapshot=snapshot) == qi.simulate_guest(spec, snapshot=snapshot)


@pytest.mark.parametrize("name", [n for n in IMAGE_NAMES if SPECS[n].snapshots])
def test_snapshot_data_agrees_with_qemu_img_convert(name: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any]) -> None:
    """Each internal snapshot, read through its own L1 table (snapshot.l1_table
    and the L2 tables under it), is what ``qemu-img convert -l
    snapshot.name=...`` reads."""
    img = parsed[name]
    assert [s.name for s in img.snapshots] == list(SPECS[name].snapshots)
    for snap in img.snapshots:
        l1 = snap.l1_table.entries
        assert len(l1) == snap.num_l1_entries
        guest = images[name].guest_bytes(snapshot=snap.name)
        units = read_through_parser([img], images[name].chain(), snap.extra_data.len_virtual_disk, l1_entries=l1)
        assert _compare(units, guest, f"{name}, snapshot {snap.name!r}") == len(units)
    # a snapshot followed by a write differs from the active disk (the COW was seen)
    steps = SPECS[name].steps
    active = images[name].guest_bytes()
    for i, step in enumerate(steps):
        if isinstance(step, qi.Snapshot):
            written_after = any(isinstance(later, (qi.Write, qi.Zero)) for later in steps[i + 1:])
            assert (images[name].guest_bytes(snapshot=step.name) != active) == written_after, step.name


# ---------------------------------------------------------------------------
# Refcounts vs qemu-img check


def refcounts(img: Any) -> list[int]:
    """Every host cluster's refcount, read one by one (host_cluster(j).refcount)."""
    return [hc.refcount for hc in host_clusters(img)]


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_refcounts_agree_with_qemu_img_check(name: str, parsed: _Lazy[str, Any], qemu: _Lazy[str, _Lazy[str, Any]]) -> None:
    img, check = parsed[name], qemu[name]["check"]
    h = img.header
    assert check["check-errors"] == 0 and not check.get("corruptions") and not check.get("leaks"), check
    refs = refcounts(img)
    used = [j for j, r in enumerate(refs) if r]
    assert (used[-1] + 1) * h.cluster_size == check["image-end-offset"]
    assert h.num_guest_clusters == check["total-clusters"]
    active = [gc.l2_entry for gc in guest_clusters(img) if gc.l2_entry is not None]
    types = [e.cluster_type for e in active]
    assert types.count(CT.compressed) == check.get("compressed-clusters", 0)
    assert sum(t in (CT.normal, CT.zero_allocated, CT.compressed) for t in types) == check["allocated-clusters"]
    # metadata and data clusters are referenced; COPIED (bit 63) means refcount 1
    assert refs[0] >= 1, "the header cluster"
    for l1_entry in img.l1_table.entries:
        if l1_entry.is_allocated:
            r = refs[l1_entry.ofs_l2_table // h.cluster_size]
            assert r >= 1 and (r == 1) == l1_entry.is_copied
    for entry in active:
        if entry.is_compressed:
            first = entry.ofs_compressed_data // h.cluster_size
            last = (entry.ofs_compressed_data + entry.len_compressed_data - 1) // h.cluster_size
            assert all(refs[j] >= 1 for j in range(first, min(last, len(refs) - 1) + 1))
        elif entry.is_allocated and not h.has_external_data_file:
            r = refs[entry.ofs_host_cluster // h.cluster_size]
            assert r >= 1 and (r == 1) == entry.is_copied, (entry.ofs_host_cluster, r, entry.is_copied)
    # the refcount blocks (found through the host clusters' refcount table
    # entries: the whole table of a 2 MiB-cluster image has 262144 entries)
    blocks = {hc.refcount_table_entry.ofs_refcount_block for hc in host_clusters(img) if hc.has_refcount_block}
    assert blocks and all(refs[ofs // h.cluster_size] >= 1 for ofs in blocks)


@pytest.mark.parametrize("name", [n for n in IMAGE_NAMES if SPECS[n].cluster_size <= 64 * qi.KiB])
def test_refcount_lookup_equals_the_whole_refcount_blocks(name: str, parsed: _Lazy[str, Any]) -> None:
    """host_cluster(j).refcount (one entry read in place) is entry j of the
    parsed refcount blocks; sub-byte widths are unpacked here by the spec's
    rule (bit 0 is the least significant bit)."""
    img = parsed[name]
    h = img.header
    assert len(img.refcount_table.entries) == h.num_refcount_table_entries
    refs = refcounts(img)
    flat: list[int] = []
    for rt_entry in img.refcount_table.entries:
        if len(flat) >= len(refs):
            break
        if not rt_entry.ofs_refcount_block:
            flat += [0] * h.num_refcount_block_entries
            continue
        block = rt_entry.refcount_block
        if h.refcount_bits >= 8:
            flat += list(block.refcounts)
        else:
            bits = h.refcount_bits
            flat += [(block.packed_refcounts[j * bits // 8] >> (j * bits % 8)) & ((1 << bits) - 1)
                     for j in range(h.num_refcount_block_entries)]
    assert refs == flat[:len(refs)]
    assert max(refs) >= 1


# ---------------------------------------------------------------------------
# Reading only what is asked for


class RecordingStream(io.BytesIO):
    """A BytesIO that records every byte range read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[tuple[int, int]] = []

    def read(self, n: int | None = -1) -> bytes:
        start = self.tell()
        out = super().read(n)
        if out:
            self.reads.append((start, start + len(out)))
        return out

    def take(self) -> list[tuple[int, int]]:
        reads, self.reads = self.reads, []
        return reads


@pytest.mark.parametrize("name", ["v3_c4k", "chain_top", "extended_l2_c64k", "v3_c2m"])
def test_opening_reads_the_first_cluster_only_and_a_lookup_two_entries(name: str, images: dict[str, qi.Image]) -> None:
    stream = RecordingStream(images[name].path.read_bytes())
    img = Qcow2(kaitaistruct.KaitaiStream(stream))
    h = img.header
    assert max(end for _, end in stream.take()) <= h.cluster_size
    fresh = Qcow2(kaitaistruct.KaitaiStream(io.BytesIO(images[name].path.read_bytes())))
    idx = next(gc.idx for gc in guest_clusters(fresh) if gc.l2_entry is not None and gc.l2_entry.cluster_type == CT.normal)
    gc = guest_cluster(img, idx)
    assert stream.take() == [], "making a guest_cluster read something before an entry was asked for"
    entry = gc.l2_entry
    l1_pos = h.ofs_l1_table + gc.l1_index * 8
    l2_pos = gc.l1_entry.ofs_l2_table + gc.l2_index * h.len_l2_entry
    # the bit fields of an entry are read a few bytes at a time: compare bytes
    read = {b for start, end in stream.take() for b in range(start, end)}
    assert read == set(range(l1_pos, l1_pos + 8)) | set(range(l2_pos, l2_pos + h.len_l2_entry)), sorted(read)
    assert entry.is_allocated
    hc = host_cluster(img, entry.ofs_host_cluster // h.cluster_size)
    assert hc.refcount >= 1
    rt_pos = h.ofs_refcount_table + hc.refcount_table_index * 8
    rc_pos = hc.refcount_table_entry.ofs_refcount_block + hc.refcount_block_index * h.refcount_bits // 8
    read = {b for start, end in stream.take() for b in range(start, end)}
    assert read == set(range(rt_pos, rt_pos + 8)) | set(range(rc_pos, rc_pos + h.refcount_bits // 8)), sorted(read)


# ---------------------------------------------------------------------------
# Broken images: the parse fails where the spec's rule is broken


Mutation = Callable[[bytearray, Any], None]
"""A change to an image's bytes, given them and their parse."""


def _u4(v: int) -> bytes:
    return struct.pack(">I", v)


def _u8(v: int) -> bytes:
    return struct.pack(">Q", v)


def _set(offset: int, raw: bytes) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        data[offset:offset + len(raw)] = raw
    return mutate


def _header_u8(offset: int, delta: int) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        value = struct.unpack_from(">Q", data, offset)[0]
        struct.pack_into(">Q", data, offset, value + delta)
    return mutate


def _or_byte(offset: int, bits: int) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        data[offset] |= bits
    return mutate


def _and_byte(offset: int, bits: int) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        data[offset] &= bits
    return mutate


def _first_l1_entry(delta: int) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        pos = img.header.ofs_l1_table
        struct.pack_into(">Q", data, pos, struct.unpack_from(">Q", data, pos)[0] + delta)
    return mutate


def _first_l2_entry(delta: int = 0, zero_bitmap_or: int = 0, bits_or: int = 0) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        pos = img.l1_table.entries[0].ofs_l2_table
        struct.pack_into(">Q", data, pos, (struct.unpack_from(">Q", data, pos)[0] + delta) | bits_or)
        if zero_bitmap_or:
            struct.pack_into(">I", data, pos + 8, struct.unpack_from(">I", data, pos + 8)[0] | zero_bitmap_or)
    return mutate


def _first_refcount_table_entry(delta: int) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        pos = img.header.ofs_refcount_table
        struct.pack_into(">Q", data, pos, struct.unpack_from(">Q", data, pos)[0] + delta)
    return mutate


def _truncate(length: int) -> Mutation:
    def mutate(data: bytearray, img: Any) -> None:
        del data[length:]
    return mutate


NE, ANY, LT, GT, EXPR, ENUM = ("ValidationNotEqualError", "ValidationNotAnyOfError", "ValidationLessThanError",
                               "ValidationGreaterThanError", "ValidationExprError", "ValidationNotInEnumError")

# The lazy entries of guest cluster 0 and host cluster 0 (each read from its own substream, where the
# position of a failure is counted from the entry's first byte).
GUEST_L1 = ("guest_cluster", "l1_entry")
GUEST_L2 = ("guest_cluster", "l2_entry")
HOST_RT = ("host_cluster", "refcount_table_entry")

# name: (image, mutation, error kind, .ksy path, stream position after the bad
# field (in the entry, for a lazy one), what QEMU does with the image:
# "refuses" (qemu-img info fails), "reports" (qemu-img check finds errors), or
# "accepts" (this definition is stricter than QEMU), and, for a lazy structure,
# (the lookup type, the attribute of its cluster 0 that fails)).
BROKEN = {
    "bad_magic": ("v3_c4k", _set(3, b"\xfa"), NE, "/types/header/seq/0", 4, "refuses", None),
    "version_1": ("v3_c4k", _set(4, _u4(1)), ANY, "/types/header/seq/1", 8, "refuses", None),
    "version_4": ("v3_c4k", _set(4, _u4(4)), ANY, "/types/header/seq/1", 8, "refuses", None),
    "cluster_bits_8": ("v3_c4k", _set(20, _u4(8)), LT, "/types/header/seq/4", 24, "refuses", None),
    "cluster_bits_22": ("v3_c4k", _set(20, _u4(22)), GT, "/types/header/seq/4", 24, "refuses", None),
    "backing_name_1024": ("chain_top", _set(16, _u4(1024)), EXPR, "/types/header/seq/3", 20, "refuses", None),
    "crypt_method_3": ("v3_c4k", _set(32, _u4(3)), ENUM, "/types/header/seq/6", 36, "refuses", None),
    "l1_table_unaligned": ("v3_c4k", _header_u8(40, 512), EXPR, "/types/header/seq/8", 48, "refuses", None),
    "refcount_table_unaligned": ("v3_c4k", _header_u8(48, 512), EXPR, "/types/header/seq/9", 56, "refuses", None),
    "snapshots_unaligned": ("snapshot_v2_c4k", _header_u8(64, 512), EXPR, "/types/header/seq/12", 72,
                            "refuses", None),
    "unknown_incompatible_bit": ("v3_c4k", _or_byte(79, 0x20), NE, "/types/incompatible_features/seq/1", 80,
                                 "refuses", None),
    "unknown_incompatible_bit_63": ("v3_c4k", _or_byte(72, 0x80), NE, "/types/incompatible_features/seq/0", 76,
                                    "refuses", None),
    "extended_l2_with_4k_clusters": ("v3_c4k", _or_byte(79, 0x10), EXPR, "/types/incompatible_features/seq/2",
                                     80, "refuses", None),
    "raw_data_without_data_file": ("v3_c4k", _or_byte(95, 0x02), EXPR, "/types/autoclear_features/seq/2", 96,
                                   "accepts", None),
    "refcount_order_7": ("v3_c4k", _set(96, _u4(7)), GT, "/types/header/seq/16", 100, "refuses", None),
    "header_length_96": ("v3_c4k", _set(100, _u4(96)), EXPR, "/types/header/seq/17", 104, "refuses", None),
    "header_length_not_multiple_of_8": ("v3_c4k", _set(100, _u4(108)), EXPR, "/types/header/seq/17", 104,
                                        "accepts", None),
    "compression_bit_without_type": ("v3_c4k", _or_byte(79, 0x08), EXPR, "/types/header/seq/18", 105,
                                     "refuses", None),
    "zstd_without_compression_bit": ("zstd_c64k", _and_byte(79, 0xF7), EXPR, "/types/header/seq/18", 105,
                                     "refuses", None),
    "truncated_header": ("v3_c4k", _truncate(50), "EOF", None, None, "refuses", None),
    "l1_entry_unaligned": ("v3_c4k", _first_l1_entry(512), EXPR, "/types/l1_entry/seq/3", 7, "reports", GUEST_L1),
    "l1_entry_reserved_bit_56": ("v3_c4k", _first_l1_entry(1 << 56), NE, "/types/l1_entry/seq/1", 1, "reports", GUEST_L1),
    "l1_entry_reserved_bit_0": ("v3_c4k", _first_l1_entry(1), NE, "/types/l1_entry/seq/4", 8, "reports", GUEST_L1),
    "l2_entry_unaligned": ("v3_c4k", _first_l2_entry(512), EXPR, "/types/l2_entry/seq/4", 7, "reports", GUEST_L2),
    "compressed_offset_bit_56": ("compressed_c512", _first_l2_entry(bits_or=1 << 56), EXPR,
                                 "/types/l2_entry/seq/7", 4, "reports", GUEST_L2),
    "compressed_with_zero_subclusters": ("extended_l2_eof_c64k", _first_l2_entry(zero_bitmap_or=1), EXPR,
                                         "/types/l2_entry/seq/9", 12, "reports", GUEST_L2),
    "subcluster_allocated_and_zero": ("extended_l2_c64k", _first_l2_entry(zero_bitmap_or=1), EXPR,
                                      "/types/l2_entry/seq/10", 16, "reports", GUEST_L2),
    "refcount_block_unaligned": ("v3_c4k", _first_refcount_table_entry(512), EXPR,
                                 "/types/refcount_table_entry/seq/1", 7, "reports", HOST_RT),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_image_fails_at_the_broken_rule(case: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any], qcow2_ksy: dict[str, Any], tmp_path: Path) -> None:
    base, mutate, kind, src_path, pos, qemu_verdict, lazy = BROKEN[case]
    image = images[base]
    data = bytearray(image.path.read_bytes())
    mutate(data, parsed[base])
    broken = tmp_path / image.path.name
    broken.write_bytes(data)
    for extra in image.directory.iterdir():  # backing and data files, for QEMU
        if extra.name != image.path.name and not (tmp_path / extra.name).exists():
            (tmp_path / extra.name).symlink_to(extra)
    if lazy is None:
        dumper, _ = ksy_tree.make_dumper(qcow2_ksy)
        result = dumper.dump(bytes(data))
        assert not result["ok"], "the broken image parsed"
        err = result["error"]
        assert (err["kind"], err["src_path"], err["pos"]) == (kind, src_path, pos), err
    else:
        lookup, attr = lazy
        img = Qcow2.from_bytes(bytes(data))  # the header is fine: opening succeeds
        make = guest_cluster if lookup == "guest_cluster" else host_cluster
        for _ in range(2):  # a second access fails the same way (nothing half read is kept)
            with pytest.raises(kaitaistruct.ValidationFailedError) as info:
                getattr(make(img, 0), attr)
            assert (type(info.value).__name__, info.value.src_path, info.value.io.pos()) == (
                kind, src_path, pos), info.value
    info_run = qi.run_qemu(["qemu-img", "info", "--output=json", "-f", "qcow2", str(broken)], cwd=tmp_path,
                           check=False)
    if qemu_verdict == "refuses":
        assert info_run.returncode != 0, f"QEMU opens the {case} image:\n{info_run.stdout}"
    elif qemu_verdict == "accepts":
        assert info_run.returncode == 0, info_run.stderr
    else:
        assert info_run.returncode == 0, info_run.stderr
        check = qi.Image(broken, image.spec).check()
        assert check["check-errors"] or check.get("corruptions"), check


def test_every_valid_rule_of_the_header_and_the_tables_is_exercised(qcow2_ksy: dict[str, Any]) -> None:
    """Each `valid` of the header, its feature bitmap and the L1, L2 and refcount
    table entries is broken by a case of BROKEN."""
    ksy = qcow2_ksy
    checked = {case[3] for case in BROKEN.values()}
    for tname in ("header", "incompatible_features", "autoclear_features", "l1_entry", "l2_entry",
                  "refcount_table_entry"):
        for i, attr in enumerate(ksy["types"][tname]["seq"]):
            if "valid" in attr or "contents" in attr:
                path = f"/types/{tname}/seq/{i}"
                assert path in checked, f"no broken image breaks {path} ({attr['id']})"


def _user_types_of(spec: dict[str, Any], ksy: dict[str, Any]) -> set[str]:
    """The user types ``spec`` (a field or an instance) parses, switch cases included."""
    t = spec.get("type")
    names = list(t.get("cases", {}).values()) if isinstance(t, dict) else [t] if isinstance(t, str) else []
    return {n.split("(")[0] for n in names if n.split("(")[0] in ksy["types"]}


def test_no_zero_length_fields_and_entries_fail_in_their_own_substream(qcow2_ksy: dict[str, Any]) -> None:
    """No field is a zero-length marker (every `valid` is on the field it checks),
    and each lazy instance that parses a type whose bit fields carry a rule, or
    holds such a type, reads it from its own substream (it has a `size`): a
    failed check then leaves no half-read byte in the image's stream (the
    JavaScript runtime keeps such bits across a seek, see
    test_js_agreement.test_js_runtime_keeps_bits_across_seek)."""
    ksy = qcow2_ksy
    for tname, spec in ksy["types"].items():
        for attr in spec.get("seq") or []:
            assert attr.get("size") not in (0, "0"), f"{tname}.{attr['id']} is a zero-length field"
    checked_bits = {t for t, spec in ksy["types"].items()
                    if any(_bit_width(a) and "valid" in a for a in spec.get("seq") or [])}
    assert {"l1_entry", "l2_entry", "refcount_table_entry", "bitmap_table_entry"} <= checked_bits, checked_bits
    holds = set(checked_bits)
    for _ in range(len(ksy["types"])):  # types that hold one, through their seq fields
        holds |= {t for t, spec in ksy["types"].items()
                  if any(_user_types_of(a, ksy) & holds for a in spec.get("seq") or [])}
    instances = [(t, i, inst) for t, spec in [("qcow2", ksy), *ksy["types"].items()]
                 for i, inst in (spec.get("instances") or {}).items()]
    lazy = [(t, i) for t, i, inst in instances if _user_types_of(inst, ksy) & holds]
    assert ("guest_cluster", "l2_entry") in lazy and ("qcow2", "l1_table") in lazy
    for t, i, inst in instances:
        if (t, i) in lazy:
            assert "size" in inst, f"{t}.{i} parses a checked bit-field entry in the image's own stream"


def _bit_width(attr: dict[str, Any]) -> int:
    """n for a bit field `bN`, else 0."""
    import re
    m = re.fullmatch(r"b(\d+)", str(attr.get("type", "")))
    return int(m.group(1)) if m else 0


def test_qemu_tools_are_found_or_the_reason_is_given() -> None:
    """require_qemu's rule: found here, or a reason naming the package."""
    reason = qi.missing_qemu()
    if reason is None:
        assert all(shutil.which(tool) for tool in qi.QEMU_TOOLS)
        assert qi.qemu_version().startswith("qemu-img version")
    else:
        assert "qemu-utils" in reason


# ---------------------------------------------------------------------------
# The Web IDE samples (formats/samples/*.qcow2, made by make_qcow2_samples.py)

SAMPLES_DIR = ksy_tree.ROOT / "formats" / "samples"
SAMPLE_SCRIPT = SAMPLES_DIR / "make_qcow2_samples.py"


SAMPLE_SPECS = {s.name: s for s in load_script(SAMPLE_SCRIPT).SAMPLES}


def test_every_qcow2_sample_has_a_spec() -> None:
    assert sorted(p.name for p in SAMPLES_DIR.glob("*.qcow2")) == sorted(s.file_name for s in SAMPLE_SPECS.values())


def test_samples_hold_what_their_script_says() -> None:
    """`make_qcow2_samples.py --check`: QEMU reads the committed samples as their specs say."""
    qi.require_qemu()
    run = subprocess.run([sys.executable, str(SAMPLE_SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("name", list(SAMPLE_SPECS))
def test_sample_parses_and_agrees_with_qemu(name: str) -> None:
    """Each sample is small, has 4 KiB clusters, and its parse agrees with
    qemu-img info, map and convert, as the test images do."""
    qi.require_qemu()
    spec = SAMPLE_SPECS[name]
    image = qi.Image(SAMPLES_DIR / spec.file_name, spec)
    assert image.path.stat().st_size <= 64 * qi.KiB
    chain_images = image.chain()
    chain = [Qcow2.from_bytes(i.path.read_bytes()) for i in chain_images]
    assert chain[0].header.cluster_size == 4 * qi.KiB
    assert_header_agrees(chain[0], image.info(), spec, image.path)
    assert_map_agrees(chain, image.map())
    assert_data_agrees(chain, image, image.guest_bytes())


def test_mixed_sample_shows_every_cluster_type() -> None:
    """The sample the README points Web IDE users to for L2 entries has one of each."""
    img = Qcow2.from_bytes((SAMPLES_DIR / "mixed_clusters.qcow2").read_bytes())
    types = {gc.l2_entry.cluster_type for gc in guest_clusters(img) if gc.l2_entry is not None}
    assert types == set(CT), types


# ---------------------------------------------------------------------------
# The user guide's qcow2 section (docs/guide.md) says what the parser gives


README = (ksy_tree.ROOT / "docs" / "guide.md").read_text(encoding="utf-8")


def _readme_py_blocks() -> list[str]:
    """The guide's ```py blocks: the qcow2 examples. (tests/test_readme.py runs
    the ```python blocks from a temporary folder, with the installed package;
    these run from the repository's root, whose source tree has the qcow2
    parser even when an older installed copy does not.)"""
    return re.findall(r"```py\n(.*?)```", README, re.S)



def test_readme_qcow2_example_prints_what_it_says() -> None:
    (block,) = _readme_py_blocks()
    proc = subprocess.run([sys.executable, "-c", block], cwd=ksy_tree.ROOT, capture_output=True, text=True, check=False,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = printed(block)
    assert len(expected) >= 6
    assert proc.stdout.splitlines() == expected


def _numbers(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.strip().partition(" to ")
        out += list(range(int(a), int(b or a) + 1))
    return out


def test_readme_sample_table_says_what_the_mixed_sample_holds() -> None:
    row = next(line for line in README.splitlines() if line.startswith("| `mixed_clusters.qcow2` |"))
    def listed(words: str) -> list[int]:
        found = re.search(words + r" \(([^)]*)\)", row)
        assert found, f"the README's row no longer says {words} (...): {row}"
        return _numbers(found.group(1))

    said = {
        "compressed": listed("compressed clusters"),
        "normal": listed("standard ones"),
        "zero_plain": listed("a zero cluster"),
        "zero_allocated": listed("a preallocated zero cluster"),
        "unallocated": listed("unallocated ones"),
    }
    img = Qcow2.from_bytes((SAMPLES_DIR / "mixed_clusters.qcow2").read_bytes())
    found: dict[str, list[int]] = {}
    for gc in guest_clusters(img):
        found.setdefault(gc.l2_entry.cluster_type.name, []).append(gc.idx)
    assert found == said
    row = next(line for line in README.splitlines() if line.startswith("| `backed_snapshot_v2.qcow2` |"))
    img = Qcow2.from_bytes((SAMPLES_DIR / "backed_snapshot_v2.qcow2").read_bytes())
    assert img.header.version == 2 and "version 2" in row
    assert img.backing_file_name == "mixed_clusters.qcow2" and "on top of `mixed_clusters.qcow2`" in row
    assert img.header.num_snapshots == 1 and "one internal snapshot" in row


# ---------------------------------------------------------------------------
# Every root-level node of a large disk opens at once


def reachable_structs(obj: Any) -> int:
    """Kaitai structs and lists reachable from ``obj`` (its fields and the lazy instances read so far)."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        v = stack.pop()
        if id(v) in seen or not isinstance(v, (kaitaistruct.KaitaiStruct, list)):
            continue
        seen.add(id(v))
        items = v if isinstance(v, list) else [x for k, x in vars(v).items() if k not in ("_parent", "_root", "_io")]
        stack.extend(items)
    return len(seen)


def root_nodes(ksy: dict[str, Any]) -> list[str]:
    """The root's seq fields and instances: the nodes the Web IDE shows at the top."""
    return [a["id"] for a in ksy["seq"]] + list(ksy["instances"])


def test_every_root_node_of_a_2_million_cluster_disk_opens_small(qcow2_ksy: dict[str, Any], tmp_path: Path) -> None:
    """A 1 GiB disk with 512-byte clusters (2,097,152 guest clusters): touching every
    root-level node creates objects for the L1 and refcount tables' entries only,
    never one per cluster (tests/js/open_root.mjs checks the same in the Web IDE's
    JavaScript build, in test_js_agreement)."""
    qi.require_qemu()
    image = qi.build(qi.LARGE_DISK, tmp_path)
    img = Qcow2.from_file(str(image.path))
    h = img.header
    assert h.num_guest_clusters == 2**21 and h.num_l1_entries == 2**21 // h.num_l2_entries
    for node in root_nodes(qcow2_ksy):
        getattr(img, node)
    bound = h.num_l1_entries + h.num_refcount_table_entries + 100
    objects = reachable_structs(img)
    assert h.num_l1_entries < objects <= bound, (objects, bound)
    assert image.path.stat().st_size < 1 * qi.MiB


# ---------------------------------------------------------------------------
# Clusters cut short by the end of the file


EOF_IMAGES = [n for n in IMAGE_NAMES if "_eof_" in n]


@pytest.mark.parametrize("name", EOF_IMAGES)
def test_last_cluster_cut_short_by_the_end_of_the_file_reads_what_the_file_holds(name: str, images: dict[str, qi.Image], parsed: _Lazy[str, Any]) -> None:
    """The last write of these images leaves the file ending inside the data of its last
    cluster (compressed: inside a sector; extended L2: after 3 of 32 subclusters): the
    parser's own `compressed_data` / `data` read up to the end of the file (QEMU reads
    zeros past it), and that is the whole compressed stream, or the written subclusters."""
    img, size = parsed[name], images[name].path.stat().st_size
    h = img.header
    last = max((gc.l2_entry for gc in guest_clusters(img) if gc.l2_entry is not None and gc.l2_entry.is_allocated),
               key=lambda e: e.ofs_compressed_data or e.ofs_host_cluster)
    if last.is_compressed:
        assert last.ofs_compressed_data + last.len_compressed_data > size, "the file does not end inside the sector"
        payload = last.compressed_data
        assert len(payload) == size - last.ofs_compressed_data == last.len_data_in_file
        if h.compression == Qcow2.CompressionType.zlib:
            assert len(zlib.decompressobj(-15).decompress(payload, h.cluster_size)) == h.cluster_size
        else:
            assert payload[:4] == ZSTD_FRAME_MAGIC
    else:
        assert h.has_extended_l2 and last.ofs_host_cluster + h.cluster_size > size
        written = sum(s.status == Qcow2.SubclusterStatus.allocated for s in last.subclusters)
        assert last.status == Qcow2.ClusterStatus.mixed
        assert len(last.data) == size - last.ofs_host_cluster == written * h.len_subcluster


def test_the_eof_images_cover_zlib_and_zstd_and_three_cluster_sizes() -> None:
    specs = [SPECS[n] for n in EOF_IMAGES]
    zstd = {s.cluster_size for s in specs if ("compression_type", "zstd") in s.options}
    zlib_ = {s.cluster_size for s in specs if s.luks_passphrase is None and ("compression_type", "zstd") not in s.options
             and ("extended_l2", "on") not in s.options}
    assert {4 * qi.KiB, 2 * qi.MiB} <= zlib_ and {64 * qi.KiB, 2 * qi.MiB} <= zstd
    assert any(("extended_l2", "on") in s.options for s in specs)


# ---------------------------------------------------------------------------
# Bitmap data, read from the bitmap table entries


def test_bitmap_data_read_from_the_table_marks_the_written_ranges(parsed: _Lazy[str, Any]) -> None:
    """The enabled bitmap of bitmaps_c4k, read through its table entries' `data` (bit
    k of the data covers guest bytes k * granularity onwards, least significant bit
    first), has a set bit exactly where the steps wrote; the disabled one has none
    (its one table entry is unallocated and reads as zeros)."""
    img, spec = parsed["bitmaps_c4k"], SPECS["bitmaps_c4k"]
    directory = extension(img, Qcow2.HeaderExtensionType.bitmaps).bitmap_directory
    bits: dict[str, set[int]] = {}
    for entry in directory.entries:
        found = set()
        for k, table_entry in enumerate(entry.bitmap_table):
            data = table_entry.data
            assert (data is None) == (table_entry.ofs_bitmap_data == 0)
            if data is None:
                assert not table_entry.is_all_ones
                continue
            assert len(data) == img.header.cluster_size
            base = k * len(data) * 8
            found |= {base + 8 * i + j for i, byte in enumerate(data) for j in range(8) if byte >> j & 1}
        bits[entry.name] = found
        granularity = 1 << entry.granularity_bits
        disk_bits = -(-img.header.len_virtual_disk // granularity)
        assert entry.num_bitmap_table_entries == -(-disk_bits // (8 * img.header.cluster_size))
    written = {off // (64 * qi.KiB) for step in spec.steps if isinstance(step, qi.Write)
               for off in range(step.offset, step.offset + step.length, 512)}
    assert bits == {"tracked": written, "frozen": set()}
