"""Python and JavaScript parse every journal, and every qcow2 image, the same
way, field by field.

The .ksy is compiled to JavaScript with the pinned compiler (into a temporary
folder), and tests/js/dump_tree.mjs, on the pinned `kaitai-struct` runtime,
dumps the whole parse of every input as JSON (every seq field and every
instance of every type; for a failed parse, the error class, the .ksy path and
the stream positions); tests/ksy_tree.py dumps the same from
generated/qcow2_journal.py. The two must be equal for every input: the
test-vector and sample files that exist (tests/vectors/*.bin,
formats/samples/*.bin and *.qjournal) and the inputs built below, which cover
the D10 example, the healthy shapes and anomalies, and every corruption class
of docs/format.md D5. One node process dumps all inputs.

The built inputs also carry what the parse must give (an error at a given
place, or given instance values), so they cannot silently stop exercising what
they are named after.

formats/qcow2.ksy gets the same comparison (the tests named test_qcow2_*, at
the end) on real images made by QEMU (tests/qemu_images.py, TEST_IMAGES), the
Web IDE samples formats/samples/*.qcow2, and the broken images of
tests/test_qcow2_ksy.py, lazy instances included: the L1 and L2 tables, the
lookups of every guest and host cluster (made by both dumpers with --each),
snapshots, refcounts, bitmaps, the LUKS header, and the cluster data that the
end of the file cuts short.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import ksy_toolchain as tc
import ksy_tree
import pytest
import qemu_images as qi

ROOT = tc.ROOT
DUMP_TREE = ROOT / "tests" / "js" / "dump_tree.mjs"
C = 4096  # journal cluster size (D1)

END, HASH, NONE = 0x01, 0x02, 0xFF

# ---------------------------------------------------------------------------
# A tiny raw-bytes builder (the writer is not used: these bytes are hand-made)


def entry(etype: int, payload: bytes = b"", size: int | None = None) -> bytes:
    """One entry: size byte (2 + payload unless given), type byte, payload."""
    return bytes([2 + len(payload) if size is None else size, etype]) + payload


def hash_entry(phys: int = 0x10, logical: int = 0x20, digest: bytes = bytes(range(32))) -> bytes:
    return entry(HASH, digest + struct.pack(">QQ", phys, logical))


def filler(n: int, etype: int = 0x03) -> bytes:
    """An unassigned entry of exactly n bytes (2 <= n <= 254)."""
    return entry(etype, b"\xa5" * (n - 2))


def hashes(count: int) -> bytes:
    return b"".join(hash_entry(phys=i, logical=1000 + i) for i in range(count))


def closed(*entries: bytes, padding: bytes | None = None) -> bytes:
    """A cluster: the entries, then an END reaching the boundary (0xFF padding)."""
    body = b"".join(entries)
    size = C - len(body)
    assert 2 <= size <= 255, size
    pad = b"\xff" * (size - 2) if padding is None else padding
    assert len(pad) == size - 2
    out = body + bytes([size, END]) + pad
    assert len(out) == C
    return out


def open_(*entries: bytes, tail: bytes = b"") -> bytes:
    """A cluster: the entries, then the rest 0xFF (NONE), `tail` bytes overwritten after."""
    body = b"".join(entries) + tail
    assert len(body) <= C
    return body + b"\xff" * (C - len(body))


def raw(body: bytes) -> bytes:
    """One cluster of `body` bytes, padded with 0xFF."""
    return open_(body)


def area(*clusters: bytes, total: int | None = None) -> bytes:
    out = b"".join(clusters)
    if total is not None:
        out += b"\xff" * (total * C - len(out))
    return out


D10 = bytes.fromhex(
    "3202000102030405060708090a0b0c0d"
    "0e0f101112131415161718191a1b1c1d"
    "1e1f0000000000000010000000000000"
    "0020"
) + b"\xff" * (C - 0x32)

# ---------------------------------------------------------------------------
# Built inputs and what the parse must give


def ok(**root: Any) -> Callable[[dict[str, Any]], None]:
    """The parse succeeds and the root's fields/instances have these values."""
    def check(result: dict[str, Any]) -> None:
        assert result["ok"], result.get("error")
        tree = result["tree"]
        for key, want in root.items():
            assert tree[key] == want, f"{key}: {tree[key]!r} != {want!r}"
    return check


def entries_of(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for c in tree["clusters"] for e in c["entries"]]


def ok_entries(pred: Callable[[list[dict[str, Any]]], bool], **root: Any) -> Callable[[dict[str, Any]], None]:
    base = ok(**root)

    def check(result: dict[str, Any]) -> None:
        base(result)
        assert pred(entries_of(result["tree"])), entries_of(result["tree"])
    return check


def fails(kind: str, src_path: str, pos: int, root_pos: int, **extra: Any) -> Callable[[dict[str, Any]], None]:
    """The parse fails with this error, `pos` in the failing stream."""
    def check(result: dict[str, Any]) -> None:
        assert not result["ok"], "parse succeeded"
        err = result["error"]
        want = {"kind": kind, "src_path": src_path, "pos": pos, "root_pos": root_pos, **extra}
        got = {k: err.get(k) for k in want}
        assert got == want
    return check


LESS = "ValidationLessThanError"
EXPR = "ValidationExprError"
ENTRY_SIZE = "/types/entry/seq/0"
ENTRY_TYPE = "/types/entry/seq/1"


def end_sizes(es: list[dict[str, Any]]) -> list[int]:
    return [e["len_entry"] for e in es if e["entry_type"]["value"] == END]


BUILT: dict[str, tuple[bytes, Callable[[dict[str, Any]], None]]] = {
    # --- healthy shapes
    "d10_example": (D10, ok_entries(
        lambda es: es[0]["physical_sector"] == 0x10
        and es[0]["first_logical_sector"] == 0x20
        and es[0]["digest"] == bytes(range(32)).hex()
        and es[1]["entry_type"] == {"value": NONE, "name": "none"},
        ofs_tail=0x32, num_clusters=1, is_full=False, is_torn=False, has_dirty_tail=False)),
    "reset_1_cluster": (b"\xff" * C, ok(num_clusters=1, num_clusters_replayed=1, ofs_tail=0,
                                        unreplayed="", is_full=False)),
    "reset_3_clusters": (b"\xff" * 3 * C, ok(num_clusters=3, num_clusters_replayed=1, ofs_tail=0,
                                             unreplayed="ff" * 2 * C, has_dirty_tail=False)),
    "multi_cluster_end_2_255": (
        area(
            closed(hashes(81), filler(44)),        # 4050 + 44 = 4094: END of size 2
            closed(hashes(76), filler(41)),        # 3800 + 41 = 3841: END of size 255 (D6)
            closed(hashes(79), filler(46)),        # 3950 + 46 = 3996: END of size 100
            open_(hashes(2)),                      # the tail, at 100
            total=5),
        ok_entries(lambda es: end_sizes(es) == [2, 255, 100],
                   num_clusters=5, num_clusters_replayed=4, ofs_tail=3 * C + 100,
                   is_full=False, has_dirty_tail=False)),
    "full_all_closed": (area(closed(hashes(81), filler(44)), closed(hashes(76), filler(41))),
                        ok(num_clusters=2, num_clusters_replayed=2, ofs_tail=2 * C, is_full=True,
                           unreplayed="")),
    "full_3_bytes_left": (area(open_(hashes(81), filler(43))),   # NONE at 4093
                          ok(ofs_tail=4093, is_full=True, is_torn=False)),
    "hash_digest_sizes": (
        area(open_(entry(HASH, b"\x07" + struct.pack(">QQ", 2**53 - 1, 0)),   # n = 17, size 19
                   entry(HASH, b"\x09" * 236 + struct.pack(">QQ", 1, 2)))),    # size 254
        ok_entries(lambda es: [len(e["digest"]) // 2 for e in es[:2]] == [1, 236]
                   and es[0]["physical_sector"] == 2**53 - 1, ofs_tail=19 + 254)),
    "unassigned_types": (
        area(open_(entry(0x00, b"\x01\x02"), entry(0x03), entry(0x7F, b"\x00" * 100),
                   entry(0xFE, b"\xff" * 252), hash_entry())),
        ok_entries(lambda es: [e["is_unassigned"] for e in es] == [True] * 4 + [False, False]
                   and [e["entry_type"]["name"] for e in es] == [None] * 4 + ["hash", "none"],
                   ofs_tail=4 + 2 + 102 + 254 + 50)),
    # --- anomalies that parse (D5): reported by a check, not by the parser
    "torn_write": (area(open_(hash_entry(), tail=bytes([0x32]))),       # size 0x32 under NONE
                   ok(is_torn=True, ofs_tail=50, has_dirty_tail=False)),
    "torn_write_with_payload": (area(open_(hash_entry(), tail=bytes([0x32, 0xFF]) + bytes(range(48)))),
                                ok(is_torn=True, has_dirty_tail=True)),
    "dirty_tail_in_cluster": (D10[:1000] + b"\x00" + D10[1001:],
                              ok(has_dirty_tail=True, is_torn=False, ofs_tail=0x32)),
    "dirty_tail_in_later_cluster": (area(D10, raw(b"\x32\x02"), total=3),
                                    ok(has_dirty_tail=True, num_clusters_replayed=1)),
    "dirty_end_padding": (area(closed(hashes(76), filler(41),            # END of size 255
                                      padding=b"\xff" * 100 + b"\x00" + b"\xff" * 152),
                               total=2),
                          ok_entries(lambda es: [e["has_dirty_padding"] for e in es] == [False] * 77 + [True, False],
                                     num_clusters_replayed=2, has_dirty_tail=False)),
    # --- corruption (D5): the parse fails at the bad entry
    "corrupt_size_0_never_reset": (bytes(C), fails(LESS, ENTRY_SIZE, 1, C, min=2, actual=0)),
    "corrupt_size_0_under_none": (raw(b"\x00\xff"), fails(LESS, ENTRY_SIZE, 1, C, actual=0)),
    "corrupt_size_1": (raw(hash_entry() + b"\x01\x02"), fails(LESS, ENTRY_SIZE, 51, C, actual=1)),
    "corrupt_size_1_in_cluster_1": (area(closed(hashes(81), filler(44)), raw(hashes(2) + b"\x01\x03")),
                                    fails(LESS, ENTRY_SIZE, 101, 2 * C, actual=1)),
    "corrupt_regular_over_254_hash": (raw(b"\xff\x02" + b"\x00" * 253), fails(EXPR, ENTRY_TYPE, 2, C, actual=HASH)),
    "corrupt_regular_over_254_unassigned": (raw(b"\xff\x03"), fails(EXPR, ENTRY_TYPE, 2, C, actual=3)),
    "corrupt_crosses_boundary": (raw(hashes(80) + entry(0x03, size=200)),    # 4000 + 200 > 4096
                                 fails(EXPR, ENTRY_TYPE, 4002, C, actual=3)),
    "corrupt_end_not_at_boundary": (raw(entry(END, size=10)), fails(EXPR, ENTRY_TYPE, 2, C, actual=END)),
    "corrupt_end_255_not_at_boundary": (raw(hash_entry() + b"\xff\x01"),    # only valid at 3841
                                        fails(EXPR, ENTRY_TYPE, 52, C, actual=END)),
    "corrupt_ends_on_boundary_without_end": (raw(hashes(80) + filler(46) + hash_entry()),  # 4046 + 50
                                             fails(EXPR, ENTRY_TYPE, 4048, C, actual=HASH)),
    "corrupt_leaves_1_byte": (raw(hashes(80) + filler(45) + hash_entry()),  # 4045 + 50 = 4095
                              fails(EXPR, ENTRY_TYPE, 4047, C, actual=HASH)),
    "corrupt_hash_payload_16": (raw(entry(HASH, b"\x00" * 16)), fails(EXPR, ENTRY_TYPE, 2, C, actual=HASH)),
    "corrupt_hash_payload_0": (raw(entry(HASH)), fails(EXPR, ENTRY_TYPE, 2, C, actual=HASH)),
    "corrupt_area_4095": (b"\xff" * (C - 1), fails(EXPR, "/seq/0", 0, 0, io_size=C - 1, actual="")),
    "corrupt_area_4097": (b"\xff" * (C + 1), fails(EXPR, "/seq/0", 0, 0, io_size=C + 1)),
    "corrupt_area_8191": (D10 + b"\xff" * (C - 1), fails(EXPR, "/seq/0", 0, 0, io_size=2 * C - 1)),
    "corrupt_empty_input": (b"", fails(EXPR, "/seq/0", 0, 0, io_size=0, actual="")),
}


def _files() -> list[Path]:
    found: list[Path] = []
    for folder, patterns in ((ROOT / "tests" / "vectors", ("*.bin",)),
                             (ROOT / "formats" / "samples", ("*.bin", "*.qjournal"))):
        for pattern in patterns:
            found.extend(sorted(folder.glob(pattern)))
    return found


FILES = _files()
INPUT_IDS = [f"built:{name}" for name in BUILT] + [
    f"file:{p.relative_to(ROOT).as_posix()}" for p in FILES]


# ---------------------------------------------------------------------------
# The dumps: one node process for every input, the Python dump in-process


@pytest.fixture(scope="module")
def js_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ksc-js")
    tc.ksc("--lang", "javascript", "--out", str(out))
    parser = out / "Qcow2Journal.js"
    assert parser.is_file(), sorted(p.name for p in out.iterdir())
    return parser


@pytest.fixture(scope="module")
def ksy() -> dict[str, Any]:
    tc.require_node()
    return tc.load_ksy()


@pytest.fixture(scope="module")
def input_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """input id -> file: the built inputs written out, and the existing files."""
    folder = tmp_path_factory.mktemp("built-inputs")
    paths: dict[str, Path] = {}
    for name, (data, _) in BUILT.items():
        path = folder / f"{name}.bin"
        path.write_bytes(data)
        paths[f"built:{name}"] = path
    for p in FILES:
        paths[f"file:{p.relative_to(ROOT).as_posix()}"] = p
    return paths


def js_dumps(parser: Path, paths: dict[str, Path], *extra: str, ksy: Path = tc.KSY) -> dict[str, dict[str, Any]]:
    """input id -> JavaScript result, from one node process (the journal's .ksy
    unless ``ksy`` names another)."""
    proc = tc.run_node([str(DUMP_TREE), "--parser", str(parser), "--ksy", str(ksy), *extra],
                       input="".join(f"{p}\n" for p in paths.values()))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(p) for p in paths.values()], (
        "dump_tree.mjs did not answer once per input, in order")
    return {input_id: line["result"] for input_id, line in zip(paths, lines, strict=True)}


@pytest.fixture(scope="module")
def dumps(js_parser: Path, ksy: dict[str, Any], input_paths: dict[str, Path]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """input id -> (Python result, JavaScript result)."""
    js = js_dumps(js_parser, input_paths)
    dumper, _ = ksy_tree.make_dumper(ksy)
    return {
        input_id: (json.loads(json.dumps(dumper.dump(path.read_bytes()))), js[input_id])
        for input_id, path in input_paths.items()
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as readable paths (at most a few)."""
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return [f"{path or '/'}: python {a!r} != js {b!r}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'python' if k in a else 'js'}")
            else:
                out.extend(differences(a[k], b[k], f"{path}/{k}"))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: python has {len(a)} items, js {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=False)) for d in differences(x, y, f"{path}/{i}")]
    if a != b:
        note = ""
        if isinstance(a, int) and abs(a) > 2**53:
            note = (" (the JavaScript runtime reads u8 as a Number, exact only up to 2**53:"
                    " see test_u8_above_2_53_is_rounded_by_the_js_runtime)")
        return [f"{path}: python {a!r} != js {b!r}{note}"]
    return []


# ---------------------------------------------------------------------------


def test_there_are_inputs() -> None:
    assert len(BUILT) >= 30 and len(INPUT_IDS) == len(BUILT) + len(FILES)


@pytest.mark.parametrize("input_id", INPUT_IDS)
def test_python_and_javascript_trees_agree(input_id: str, dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    py, js = dumps[input_id]
    diff = differences(py, js)
    assert not diff, f"{input_id}: Python and JavaScript parses differ:\n" + "\n".join(diff[:20])


@pytest.mark.parametrize("name", list(BUILT))
def test_built_input_parses_as_intended(name: str, dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    _, check = BUILT[name]
    py, js = dumps[f"built:{name}"]
    check(py)
    check(js)


def test_every_entry_and_root_field_is_dumped(dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]], ksy: dict[str, Any]) -> None:
    """The dump really walks the whole tree: every seq field and instance of
    every type of the .ksy appears, the HASH record fields included."""
    py, _ = dumps["built:multi_cluster_end_2_255"]
    tree = py["tree"]
    types = ksy_tree.collect_types(ksy)
    seen: dict[str, set[str]] = {}

    def walk(v: Any) -> None:
        if isinstance(v, dict) and "_type" in v:
            seen.setdefault(v["_type"], set()).update(k for k in v if k != "_type")
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(tree)
    for name, spec in types.values():
        want = {a["id"] for a in spec.get("seq", [])} | set(spec.get("instances", {}))
        assert seen.get(name) == want, f"{name}: dumped {sorted(seen.get(name, ()))}, .ksy has {sorted(want)}"


def test_web_ide_debug_build_parses_the_same(dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]], input_paths: dict[str, Path], tmp_path: Path) -> None:
    """The Web IDE compiles with debug on (no _read() in the constructors,
    `_debug` offsets, partial trees on errors): that build, driven as the IDE
    drives it, gives the same dump for every input."""
    tc.ksc("--lang", "javascript", "--debug", "--out", str(tmp_path))
    parser = tmp_path / "Qcow2Journal.js"
    assert "this._debug = {};" in parser.read_text(), "not a debug build"
    debug = js_dumps(parser, input_paths, "--debug")
    differ = [i for i in input_paths if debug[i] != dumps[i][1]]
    assert not differ, f"the debug (Web IDE) build parses these differently: {differ}"


def test_python_parser_is_the_repository_file() -> None:
    """ksy_tree imports qjournal.generated when it can: it must be this checkout's
    generated/qcow2_journal.py, not a stale installed copy."""
    module, origin = ksy_tree.load_parser_module()
    assert module.__file__ is not None, origin
    assert Path(module.__file__).read_bytes() == ksy_tree.GENERATED.read_bytes(), (
        f"{origin} ({module.__file__}) is not generated/qcow2_journal.py: reinstall (pip install -e .)")


# ---------------------------------------------------------------------------
# Differences between the runtimes, pinned so that a runtime upgrade shows up


def test_u8_above_2_53_is_rounded_by_the_js_runtime(js_parser: Path, ksy: dict[str, Any], tmp_path: Path) -> None:
    """kaitai-struct 0.11.0 (JavaScript) reads a u8 as 0x100000000 * hi + lo,
    a Number: exact up to 2**53 only. Python's int is exact. A HASH record's
    sectors above 2**53 (512-byte sectors: beyond 4 EiB, so only in a corrupt or
    hostile journal) therefore differ, in the Web IDE as here; all else agrees."""
    phys, logical = 2**53 + 1, 2**64 - 1
    path = tmp_path / "big_sectors.bin"
    path.write_bytes(area(open_(hash_entry(phys, logical))))
    proc = tc.run_node([str(DUMP_TREE), "--parser", str(js_parser), str(path)])
    js = json.loads(proc.stdout)["result"]
    dumper, _ = ksy_tree.make_dumper(ksy)
    py = json.loads(json.dumps(dumper.dump(path.read_bytes())))
    entry0 = "/tree/clusters/0/entries/0"
    diff = differences(py, js)
    assert sorted(d.split(":")[0] for d in diff) == [
        f"{entry0}/first_logical_sector", f"{entry0}/physical_sector"], diff
    js_entry = js["tree"]["clusters"][0]["entries"][0]
    # JSON carries the Number's shortest decimal: the same double as float(x), not x
    for key, exact in (("physical_sector", phys), ("first_logical_sector", logical)):
        assert js_entry[key] != exact and float(js_entry[key]) == float(exact), (key, js_entry[key])
    assert py["tree"]["clusters"][0]["entries"][0]["physical_sector"] == phys


def test_js_runtime_drops_the_stream_and_path_of_validation_errors() -> None:
    """The generated JavaScript passes (actual, io, srcPath) to
    KaitaiStream.ValidationExprError, but the 0.11.0 runtime keeps only
    `actual`; the Python runtime keeps `io` and `src_path`. dump_tree.mjs
    wraps the constructors to keep them. If a runtime keeps them itself, this
    fails: then read them from the error and drop the wrapper."""
    script = (
        "const K = require(process.argv[1]);"
        "const io = new K(new ArrayBuffer(4)); io.readU2be();"
        "const e = new K.ValidationExprError(7, io, '/types/entry/seq/1');"
        "const vals = Object.values(e);"
        "process.stdout.write(JSON.stringify({"
        " keepsPath: vals.includes('/types/entry/seq/1'), keepsIo: vals.includes(io),"
        " actual: e.actual, name: e.name}));"
    )
    out = json.loads(tc.run_node(["-e", script, str(tc.NODE_MODULES / "kaitai-struct" / "KaitaiStream.js")]).stdout)
    assert out == {"keepsPath": False, "keepsIo": False, "actual": 7, "name": "ValidationExprError"}, out


# ---------------------------------------------------------------------------
# formats/qcow2.ksy on real images

QCOW2_KSY = tc.FORMATS / "qcow2.ksy"

# Instances the qcow2 dumps leave out (dumped as {"_skipped": true}) on both
# sides, so that a dump stays a few hundred KB:
# - guest_cluster.l1_entry: the same L1 entry the L1 table dumps, which would
#   dump its whole L2 table again under every guest cluster (the guest
#   cluster's l2_entry, read through it, is dumped);
# - host_cluster.refcount_table_entry: likewise the refcount table's own
#   entry, with its whole refcount block (each host cluster's refcount_word and
#   refcount, read through it, are dumped);
# From 64 KiB clusters up, also the whole L2 tables (8192 to 262144 entries)
# and the whole refcount table: the images with 512-byte to 16 KiB clusters
# compare those types in full, and every guest cluster's L2 entry and every
# host cluster's refcount are still dumped (QCOW2_EACH).
# With 2 MiB clusters, also the 2 MiB of data of each cluster.
QCOW2_SKIP = ("guest_cluster.l1_entry", "host_cluster.refcount_table_entry")
QCOW2_SKIP_64K = ("l1_entry.l2_table", "qcow2.refcount_table")
QCOW2_SKIP_2M = ("l2_entry.data",)
QCOW2_EACH = {"guest_cluster": "header.num_guest_clusters", "host_cluster": "_io.size/header.cluster_size"}
"""The lookups both dumpers make for every guest cluster and every host cluster of an image (--each)."""


def qcow2_skip(cluster_size: int) -> tuple[str, ...]:
    return (QCOW2_SKIP + (QCOW2_SKIP_64K if cluster_size >= 64 * qi.KiB else ())
            + (QCOW2_SKIP_2M if cluster_size >= 2 * qi.MiB else ()))


def _broken_cases() -> dict[str, tuple[Any, ...]]:
    """test_qcow2_ksy.BROKEN, imported the way pytest imports the module (so that
    its asserts are rewritten), or by path when the tests folder is not on
    sys.path (pytest's importlib import mode)."""
    import importlib

    try:
        broken: dict[str, tuple[Any, ...]] = importlib.import_module("test_qcow2_ksy").BROKEN
    except ModuleNotFoundError:
        import test_qcow2_ksy

        broken = test_qcow2_ksy.BROKEN
    return broken


@pytest.fixture(scope="module")
def qcow2_ksy() -> dict[str, Any]:
    tc.require_node()
    return tc.load_ksy(QCOW2_KSY)


@pytest.fixture(scope="module")
def qcow2_js_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ksc-js-qcow2")
    tc.ksc("--lang", "javascript", "--ksy", "qcow2.ksy", "--out", str(out))
    parser = out / "Qcow2.js"
    assert parser.is_file(), sorted(p.name for p in out.iterdir())
    return parser


@pytest.fixture(scope="module")
def qcow2_inputs(qemu_test_images: dict[str, qi.Image], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """input id -> (file, skipped instances): every TEST_IMAGES image, every
    qcow2 sample, and every broken image of test_qcow2_ksy.BROKEN."""
    from qjournal.generated.qcow2 import Qcow2

    out: dict[str, tuple[Path, tuple[str, ...]]] = {}
    for name, image in qemu_test_images.items():
        out[f"image:{name}"] = (image.path, qcow2_skip(image.spec.cluster_size))
    for path in sorted((ROOT / "formats" / "samples").glob("*.qcow2")):
        out[f"sample:{path.name}"] = (path, qcow2_skip(Qcow2.from_file(str(path)).header.cluster_size))
    folder = tmp_path_factory.mktemp("qcow2-broken")
    for case, (base, mutate, *_rest) in _broken_cases().items():
        image = qemu_test_images[base]
        data = bytearray(image.path.read_bytes())
        mutate(data, Qcow2.from_bytes(bytes(data)))
        path = folder / f"{case}.qcow2"
        path.write_bytes(data)
        out[f"broken:{case}"] = (path, qcow2_skip(image.spec.cluster_size))
    return out


def qcow2_js_dumps(parser: Path, inputs: dict[str, tuple[Path, tuple[str, ...]]], *extra: str,
                   each: dict[str, str] = QCOW2_EACH) -> dict[str, dict[str, Any]]:
    """input id -> JavaScript result: one node process per set of skipped instances."""
    groups: dict[tuple[str, ...], dict[str, Path]] = {}
    for input_id, (path, skip) in inputs.items():
        groups.setdefault(skip, {})[input_id] = path
    out: dict[str, dict[str, Any]] = {}
    for skip, paths in groups.items():
        args = [a for s in skip for a in ("--skip", s)] + [a for t, n in each.items() for a in ("--each", f"{t}={n}")]
        out.update(js_dumps(parser, paths, *args, *extra, ksy=QCOW2_KSY))
    return out


@pytest.fixture(scope="module")
def qcow2_dumps(qcow2_js_parser: Path, qcow2_ksy: dict[str, Any], qcow2_inputs: dict[str, tuple[Path, tuple[str, ...]]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """input id -> (Python result, JavaScript result)."""
    js = qcow2_js_dumps(qcow2_js_parser, qcow2_inputs)
    out = {}
    for input_id, (path, skip) in qcow2_inputs.items():
        dumper, _ = ksy_tree.make_dumper(qcow2_ksy, set(skip), QCOW2_EACH)
        out[input_id] = (json.loads(json.dumps(dumper.dump(path.read_bytes()))), js[input_id])
    return out


def _qcow2_input_ids() -> list[str]:
    ids = [f"image:{spec.name}" for spec in qi.TEST_IMAGES]
    ids += [f"sample:{p.name}" for p in sorted((ROOT / "formats" / "samples").glob("*.qcow2"))]
    return ids + [f"broken:{case}" for case in _broken_cases()]


def _eof_position_dropped(result: dict[str, Any]) -> dict[str, Any]:
    """The result without the root stream's position of an EOF error, which the
    runtimes leave in different places (see
    test_eof_leaves_the_streams_at_different_positions)."""
    if result.get("ok") is False and result["error"]["kind"] == "EOF":
        return {**result, "error": {k: v for k, v in result["error"].items() if k != "root_pos"}}
    return result


@pytest.mark.parametrize("input_id", _qcow2_input_ids())
def test_qcow2_python_and_javascript_trees_agree(input_id: str, qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    py, js = (_eof_position_dropped(r) for r in qcow2_dumps[input_id])
    diff = differences(py, js)
    assert not diff, f"{input_id}: Python and JavaScript parses differ:\n" + "\n".join(diff[:20])


def test_qcow2_inputs_parse_as_their_kind_says(qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Images and samples parse; broken images fail where test_qcow2_ksy says
    (at the header, or in the lazy L1/L2 entry of guest cluster 0, or the
    refcount table entry of host cluster 0)."""
    for input_id, (py, js) in qcow2_dumps.items():
        kind, name = input_id.split(":", 1)
        if kind in ("image", "sample"):
            assert py["ok"] and js["ok"], input_id
            continue
        _, _, error, src_path, _, _, lazy = _broken_cases()[name]
        if lazy is None:
            assert not py["ok"] and (py["error"]["kind"], py["error"]["src_path"]) == (error, src_path), input_id
        else:
            lookup, attr = lazy
            # the dumps skip these two entries: the instances read through them fail
            attr = {"l1_entry": "l2_entry", "refcount_table_entry": "has_refcount_block"}.get(attr, attr)
            assert py["ok"], input_id
            assert py["each"][lookup][0][attr] == {"_error": error}, input_id


def test_qcow2_dump_walks_every_type_field_and_instance(qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]], qcow2_ksy: dict[str, Any]) -> None:
    """Over all inputs, the dumps show every param, seq field and instance of
    every type of formats/qcow2.ksy (skipped instances included, as skipped),
    and a value (not null) for each somewhere."""
    seen: dict[str, set[str]] = {}
    valued: dict[str, set[str]] = {}

    def walk(v: Any) -> None:
        if isinstance(v, dict) and "_type" in v:
            seen.setdefault(v["_type"], set()).update(k for k in v if k != "_type")
            valued.setdefault(v["_type"], set()).update(k for k, x in v.items() if k != "_type" and x is not None)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    for py, _ in qcow2_dumps.values():
        if py["ok"]:
            walk(py["tree"])
            walk(list(py["each"].values()))
    for name, spec in ksy_tree.collect_types(qcow2_ksy).values():
        want = ({a["id"] for a in spec.get("seq", [])} | set(spec.get("instances", {}))
                | {p["id"] for p in spec.get("params", [])})
        assert seen.get(name) == want, f"{name}: dumped {sorted(seen.get(name, ()))}, .ksy has {sorted(want)}"
        assert valued.get(name) == want, f"{name}: never a value for {sorted(want - valued.get(name, set()))}"


def _lazy_failure(input_id: str) -> bool:
    kind, name = input_id.split(":", 1)
    return kind == "broken" and _broken_cases()[name][6] is not None


def _first_error(v: Any, path: str = "") -> str | None:
    """The path of the first {"_error": ...} of a dump, in dump order."""
    if isinstance(v, dict):
        if "_error" in v:
            return f"{path} {v['_error']}"
        items: Iterable[tuple[Any, Any]] = v.items()
    elif isinstance(v, list):
        items = enumerate(v)
    else:
        return None
    for k, x in items:
        found = _first_error(x, f"{path}/{k}")
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def qcow2_debug_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ksc-js-qcow2-debug")
    tc.ksc("--lang", "javascript", "--ksy", "qcow2.ksy", "--debug", "--out", str(out))
    parser = out / "Qcow2.js"
    assert "this._debug = {};" in parser.read_text(), "not a debug build"
    return parser


def test_qcow2_web_ide_debug_build_parses_the_same(qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]], qcow2_inputs: dict[str, tuple[Path, tuple[str, ...]]], qcow2_debug_parser: Path) -> None:
    """The Web IDE's debug build of formats/qcow2.ksy, driven as the IDE drives
    it, gives the same dump for every qcow2 input; for an image whose lazy
    entry breaks a rule, it fails first at the same place with the same error
    (after that, the debug build keeps the partly read entry: see
    test_qcow2_debug_build_keeps_a_failed_entry)."""
    debug = qcow2_js_dumps(qcow2_debug_parser, qcow2_inputs, "--debug")
    differ = [i for i in qcow2_inputs if not _lazy_failure(i) and debug[i] != qcow2_dumps[i][1]]
    assert not differ, f"the debug (Web IDE) build parses these differently: {differ}"
    lazy = [i for i in qcow2_inputs if _lazy_failure(i)]
    assert lazy
    for input_id in lazy:
        first = _first_error(debug[input_id])
        assert first is not None and first == _first_error(qcow2_dumps[input_id][1]), (input_id, first)


def test_qcow2_debug_build_keeps_a_failed_entry(qcow2_js_parser: Path, qcow2_debug_parser: Path, qemu_test_images: dict[str, qi.Image], tmp_path: Path) -> None:
    """How the two JavaScript builds differ on a lazy entry that breaks a rule
    (an L1 entry with an unaligned L2 table offset): the normal build throws at
    every access; the debug build, which the Web IDE uses, creates the object
    before reading it, so the first access throws and the next ones return the
    entry as far as it was read (the IDE shows it with the error)."""
    from qjournal.generated.qcow2 import Qcow2

    base, mutate, *_ = _broken_cases()["l1_entry_unaligned"]
    data = bytearray(qemu_test_images[base].path.read_bytes())
    mutate(data, Qcow2.from_bytes(bytes(data)))
    path = tmp_path / "l1_entry_unaligned.qcow2"
    path.write_bytes(data)
    script = (
        "const K = require(process.argv[1]);"
        "const m = { exports: {} };"
        "new Function('exports', 'require', 'module', require('fs').readFileSync(process.argv[2], 'utf8'))"
        "(m.exports, () => K, m);"
        "const b = require('fs').readFileSync(process.argv[3]);"
        "const q = new m.exports.Qcow2(new K(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));"
        "if (process.argv[4] === 'debug') q._read();"
        "const gc = new m.exports.Qcow2.GuestCluster(q._io, q, q, 0);"
        "if (process.argv[4] === 'debug') gc._read();"
        "const out = [];"
        "for (let i = 0; i < 2; i++) {"
        "  try { out.push(gc.l1Entry.ofsL2Table); } catch (e) { out.push(e.name); } }"
        "process.stdout.write(JSON.stringify(out));"
    )
    runtime = str(tc.NODE_MODULES / "kaitai-struct" / "KaitaiStream.js")
    normal = json.loads(tc.run_node(["-e", script, runtime, str(qcow2_js_parser), str(path), "normal"]).stdout)
    debug = json.loads(tc.run_node(["-e", script, runtime, str(qcow2_debug_parser), str(path), "debug"]).stdout)
    good = Qcow2.from_bytes(qemu_test_images[base].path.read_bytes()).l1_table.entries[0].ofs_l2_table
    assert normal == ["ValidationExprError", "ValidationExprError"]
    assert debug == ["ValidationExprError", good + 512]


def test_qcow2_values_fit_in_2_53(qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Every integer of every qcow2 dump is below 2**53, where the JavaScript
    runtime's doubles are exact: the agreement above is exact, not rounded."""
    def ints(v: Any) -> Iterator[int]:
        if isinstance(v, bool):
            return
        if isinstance(v, int):
            yield v
        elif isinstance(v, dict):
            for x in v.values():
                yield from ints(x)
        elif isinstance(v, list):
            for x in v:
                yield from ints(x)
    big = [x for py, _ in qcow2_dumps.values() for x in ints(py) if abs(x) >= 2**53]
    assert not big, big[:5]


def test_qcow2_u8_above_2_53_is_rounded_by_the_js_runtime(qcow2_js_parser: Path, qcow2_ksy: dict[str, Any], qemu_test_images: dict[str, qi.Image], tmp_path: Path) -> None:
    """A u8 header field above 2**53 (a virtual disk size of 8 PiB + 1, which
    QEMU would not create) is exact in Python and rounded to the nearest double
    in JavaScript, in the Web IDE as here; the other values agree. (Offsets in
    L1/L2 and refcount table entries are built from parts of at most 32 bits,
    so they stay exact up to 2**53 in JavaScript too.)"""
    size = 2**53 + 1
    data = bytearray(qemu_test_images["v3_c4k"].path.read_bytes())
    data[24:32] = size.to_bytes(8, "big")
    path = tmp_path / "huge_size.qcow2"
    path.write_bytes(data)
    skip = qcow2_skip(4096)
    js = qcow2_js_dumps(qcow2_js_parser, {"huge": (path, skip)}, each={})["huge"]  # 2**41 guest clusters: no --each
    dumper, _ = ksy_tree.make_dumper(qcow2_ksy, set(skip))
    py = json.loads(json.dumps(dumper.dump(bytes(data))))
    diff = differences(py, js)
    # num_guest_clusters, (size + 4095) / 4096, is the same integer from the
    # rounded double: only the field itself differs
    assert [d.split(":")[0] for d in diff] == ["/tree/header/len_virtual_disk"], diff
    assert py["tree"]["header"]["len_virtual_disk"] == size
    got = js["tree"]["header"]["len_virtual_disk"]
    assert got != size and float(got) == float(size)


def test_eof_leaves_the_streams_at_different_positions(qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]], qcow2_inputs: dict[str, tuple[Path, tuple[str, ...]]]) -> None:
    """A read past the end: the Python runtime has consumed the bytes that were
    there (its stream is at the end of the file), the JavaScript runtime checks
    first (its stream is still where the read began). Only this position
    differs between the two dumps of a truncated image."""
    py, js = qcow2_dumps["broken:truncated_header"]
    size = qcow2_inputs["broken:truncated_header"][0].stat().st_size
    assert py["error"]["kind"] == js["error"]["kind"] == "EOF"
    assert py["error"]["root_pos"] == size
    assert js["error"]["root_pos"] == 48, "the u8 at 48 (ofs_refcount_table) is the read that fails"
    assert differences(py, js) == [f"/error/root_pos: python {size} != js 48"]


def test_js_runtime_keeps_bits_across_seek(tmp_path: Path) -> None:
    """kaitai-struct 0.11.0 for JavaScript does not reset a half-read byte's bits
    on seek(); the Python runtime does (seek aligns to a byte). This is why
    formats/qcow2.ksy reads each lazy bit-field entry whose fields carry rules
    from its own substream (test_qcow2_ksy.test_no_zero_length_fields_and_entries_fail_in_their_own_substream).
    If a runtime changes this, this test fails: then those substreams are no longer needed."""
    import kaitaistruct

    script = (
        "const K = require(process.argv[1]);"
        "const io = new K(new Uint8Array([0xff, 0x00]).buffer); io.readBitsIntBe(3); io.seek(1);"
        "process.stdout.write(String(io.readBitsIntBe(8)));"
    )
    js = int(tc.run_node(["-e", script, str(tc.NODE_MODULES / "kaitai-struct" / "KaitaiStream.js")]).stdout)
    io = kaitaistruct.KaitaiStream(__import__("io").BytesIO(b"\xff\x00"))
    io.read_bits_int_be(3)
    io.seek(1)
    assert (io.read_bits_int_be(8), js) == (0x00, 0b11111000)


def test_qcow2_every_root_node_of_a_2_million_cluster_disk_opens_small_in_the_web_ide(qcow2_debug_parser: Path, qcow2_ksy: dict[str, Any],
                                                                                       tmp_path: Path) -> None:
    """The Web IDE's build (debug) opens a 1 GiB disk with 512-byte clusters
    (2,097,152 guest clusters) and every root-level node is touched
    (tests/js/open_root.mjs): the objects it creates are the L1 and refcount
    tables' entries and a few more, never one per cluster, and the heap grows by
    a few MB (one object per guest cluster, as the dropped root-level arrays
    made, was hundreds of MB and ran the IDE's worker out of memory)."""
    from qjournal.generated.qcow2 import Qcow2

    qi.require_qemu()
    image = qi.build(qi.LARGE_DISK, tmp_path)
    h = Qcow2.from_file(str(image.path)).header
    out = json.loads(tc.run_node([str(ROOT / "tests" / "js" / "open_root.mjs"), "--parser", str(qcow2_debug_parser),
                                  "--ksy", str(QCOW2_KSY), str(image.path)]).stdout)
    assert out["nodes"] == [a["id"] for a in qcow2_ksy["seq"]] + list(qcow2_ksy["instances"])
    assert h.num_guest_clusters == 2**21
    assert h.num_l1_entries < out["objects"] <= h.num_l1_entries + h.num_refcount_table_entries + 100, out
    assert out["heap_mb"] < 64, out
    print(f"open_root.mjs on a {h.num_guest_clusters}-cluster disk: {out}")


def test_qcow2_last_cluster_cut_short_reads_the_same_in_javascript(qcow2_dumps: dict[str, tuple[dict[str, Any], dict[str, Any]]], qcow2_inputs: dict[str, tuple[Path, tuple[str, ...]]]) -> None:
    """The images whose file ends inside their last cluster's data (compressed by
    `write -c`, or an extended-L2 cluster written in part): in JavaScript (normal
    build; the debug build is compared above) the parser's own `compressed_data` or
    `data` of that cluster holds the bytes up to the end of the file, as in Python."""
    eof = [i for i in qcow2_inputs if i.startswith("image:") and "_eof_" in i]
    assert len(eof) >= 5, eof
    for input_id in eof:
        py, js = qcow2_dumps[input_id]
        size = qcow2_inputs[input_id][0].stat().st_size
        cluster_size = js["tree"]["header"]["cluster_size"]
        last = []
        for gc in js["each"]["guest_cluster"]:
            e = gc["l2_entry"]
            if not e or not e["is_allocated"]:
                continue
            ofs, raw, full = ((e["ofs_compressed_data"], e["compressed_data"], e["len_compressed_data"]) if e["is_compressed"]
                              else (e["ofs_host_cluster"], e["data"], cluster_size))
            if ofs + full > size:
                last.append((ofs, raw, full, e["len_data_in_file"]))
        assert last, f"{input_id}: no cluster reaches past the end of the file"
        for ofs, raw, full, in_file in last:  # (with 4 KiB clusters, two compressed clusters share the last sector)
            assert len(raw) // 2 == in_file == size - ofs < full, input_id
        assert py["each"] == js["each"], input_id
