"""Style of every formats/*.ksy (the journal's and qcow2.ksy) for readers of the
Kaitai Web IDE; each test that applies to a definition runs for each.

The Web IDE (https://ide.kaitai.io/, stable: compiler 0.11.0, YAML read by
js-yaml with CORE_SCHEMA) shows a node by its type's `-webide-representation`
and the `doc` of what is selected. So:

- every type but the root has a `-webide-representation`, and each `{name}`
  in it names a seq field, instance or param of that type;
- the root, every type, every seq field, every instance and every param has a
  `doc`;
- the root and every type has a `doc-ref` (where in the spec or
  docs/format.md the thing is stated); a field may add its own;
- formats/qcow2.ksy, written for the Kaitai format gallery: its doc-refs are
  URLs (QEMU's published specification, with a section anchor below the root),
  it has an `xref` and no zero-length field;
- `meta` has a license, and its keys in the order of the Kaitai style guide;
- every enum value has a `doc` (the long form `0x01: {id: end, doc: ...}`).

The .ksy is read by js-yaml 4.1.0 with CORE_SCHEMA through node, as the Web
IDE and formats/ksc.mjs read it; without node, by PyYAML when installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ksy_toolchain as tc
import pytest

# {name} or {name:format} in a -webide-representation
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?::[a-z]+)?\}")


def _has_doc(spec: object) -> bool:
    return isinstance(spec, dict) and isinstance(spec.get("doc"), str) and spec["doc"].strip() != ""


def _has_ref(spec: object) -> bool:
    if not isinstance(spec, dict):
        return False
    ref = spec.get("doc-ref")
    refs = ref if isinstance(ref, list) else [ref]
    return bool(refs) and all(isinstance(r, str) and r.strip() for r in refs)


META_ORDER = ("id", "title", "application", "file-extension", "xref", "tags", "license", "ks-version",
              "ks-debug", "ks-opaque-types", "imports", "encoding", "endian", "bit-endian")
"""The meta keys in the order the Kaitai Struct style guide gives them."""


def _meta_gaps(meta: dict[str, Any]) -> list[str]:
    gaps = []
    if not meta.get("license"):
        gaps.append("/meta: no license")
    keys = list(meta)
    unknown = [k for k in keys if k not in META_ORDER]
    if unknown:
        gaps.append(f"/meta: keys the style guide does not list: {unknown}")
    known = [k for k in keys if k in META_ORDER]
    if known != sorted(known, key=META_ORDER.index):
        gaps.append(f"/meta: keys not in the style guide's order: {known}")
    return gaps


def _types(ksy: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """(path, name, spec, is_root) for the root and every type, nested ones included."""
    yield "/", ksy["meta"]["id"], ksy, True

    def walk(prefix: str, spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
        for name, sub in (spec.get("types") or {}).items():
            path = f"{prefix}types/{name}/"
            yield path, name, sub, False
            yield from walk(path, sub)
    yield from walk("/", ksy)


def _enums(ksy: dict[str, Any]) -> Iterator[tuple[str, dict[Any, Any]]]:
    """(path, enum spec) for every enum, the ones nested in types included."""
    for path, _, spec, _ in _types(ksy):
        for name, values in (spec.get("enums") or {}).items():
            yield f"{path}enums/{name}", values


def lint(ksy: dict[str, Any]) -> list[str]:
    """Every style gap of the .ksy, as 'path: problem'."""
    gaps: list[str] = _meta_gaps(ksy.get("meta") or {})
    for path, name, spec, is_root in _types(ksy):
        if not _has_doc(spec):
            gaps.append(f"{path}: no doc on {'the root' if is_root else 'type ' + name}")
        if not _has_ref(spec):
            gaps.append(f"{path}: no doc-ref on {'the root' if is_root else 'type ' + name}")
        seq_ids = [attr.get("id") for attr in spec.get("seq") or []]
        instances = spec.get("instances") or {}
        params = [param.get("id") for param in spec.get("params") or []]
        for i, param in enumerate(spec.get("params") or []):
            if not _has_doc(param):
                gaps.append(f"{path}params/{i} ({param.get('id', 'unnamed')}): no doc")
        for i, attr in enumerate(spec.get("seq") or []):
            if not _has_doc(attr):
                gaps.append(f"{path}seq/{i} ({attr.get('id', 'unnamed')}): no doc")
        for inst_id, inst in instances.items():
            if not _has_doc(inst):
                gaps.append(f"{path}instances/{inst_id}: no doc")
        if is_root:
            continue
        rep = spec.get("-webide-representation")
        if not isinstance(rep, str) or not rep.strip():
            gaps.append(f"{path}: no -webide-representation on type {name}")
            continue
        known = set(seq_ids) | set(instances) | set(params)
        for ref in PLACEHOLDER.findall(rep):
            if ref not in known:
                gaps.append(f"{path}-webide-representation: {{{ref}}} is not a field or instance of {name}")
    for path, values in _enums(ksy):
        for value, spec in values.items():
            if not _has_doc(spec):
                gaps.append(f"{path}/{value}: enum value without doc"
                            + (f" (short form '{spec}')" if isinstance(spec, str) else ""))
    return gaps


QEMU_SPEC = "https://www.qemu.org/docs/master/interop/qcow2.html"
"""QEMU's qcow2 specification (docs/interop/qcow2.rst), as qemu.org publishes it."""
LUKS_SPEC = "https://gitlab.com/cryptsetup/cryptsetup/-/wikis/LUKS-standard/on-disk-format.pdf"


def _refs(spec: dict[str, Any]) -> list[str]:
    ref = spec.get("doc-ref")
    return [] if ref is None else ref if isinstance(ref, list) else [ref]


def gallery_gaps(ksy: dict[str, Any]) -> list[str]:
    """What formats/qcow2.ksy's gallery conventions require beyond lint(): URL doc-refs
    (the spec's URL at the root, a section anchor of it, or the LUKS spec, below it),
    meta xref and file extension, no zero-length field."""
    meta = ksy["meta"]
    gaps = [f"/meta: no {k}" for k in ("xref", "file-extension", "title") if not meta.get(k)]
    if _refs(ksy) != [QEMU_SPEC]:
        gaps.append(f"/: doc-ref is {_refs(ksy)}, not QEMU's published spec")
    for path, _, spec, _ in _types(ksy):
        places = [(path, spec)] + [(f"{path}seq/{i}", a) for i, a in enumerate(spec.get("seq") or [])]
        places += [(f"{path}instances/{k}", v) for k, v in (spec.get("instances") or {}).items()]
        for where, item in places:
            for ref in _refs(item) if item is not ksy else []:
                if not (ref.startswith(QEMU_SPEC + "#") or ref == LUKS_SPEC):
                    gaps.append(f"{where}: doc-ref {ref!r} is not a URL of a section of the spec")
        for i, attr in enumerate(spec.get("seq") or []):
            if attr.get("size") in (0, "0"):
                gaps.append(f"{path}seq/{i} ({attr.get('id')}): a zero-length field")
    return gaps


@pytest.fixture(scope="module")
def ksy() -> dict[str, Any]:
    """The journal's .ksy (the tests below that are about it in particular)."""
    return tc.load_ksy(tc.KSY)


@pytest.fixture(scope="module", params=tc.KSY_FILES, ids=tc.ksy_id)
def any_ksy(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """Each formats/*.ksy, and its parse."""
    return request.param, tc.load_ksy(request.param)


def test_there_are_two_definitions() -> None:
    assert [p.name for p in tc.KSY_FILES] == ["qcow2.ksy", "qcow2_journal.ksy"]


def test_ksy_has_no_style_gap(any_ksy: tuple[Path, dict[str, Any]]) -> None:
    path, spec = any_ksy
    gaps = lint(spec)
    assert not gaps, f"formats/{path.name} style gaps:\n" + "\n".join(gaps)


def test_lint_covers_every_type_field_instance_and_enum(ksy: dict[str, Any]) -> None:
    """The lint sees the whole .ksy: its two types, every field, every enum value."""
    names = [name for _, name, _, is_root in _types(ksy) if not is_root]
    assert sorted(names) == ["cluster", "entry"]
    # integer keys: strings once through JSON (node), ints from PyYAML
    values = {path: sorted(int(k) for k in v) for path, v in _enums(ksy)}
    assert values == {"/enums/entry_type": [1, 2, 255]}, values


def test_lint_covers_every_qcow2_type_and_enum() -> None:
    """The same for formats/qcow2.ksy: the lint walks all its types (none is
    nested) and every value of each enum the spec defines."""
    spec = tc.load_ksy(tc.FORMATS / "qcow2.ksy")
    names = sorted(name for _, name, _, is_root in _types(spec) if not is_root)
    assert names == sorted([
        "header", "incompatible_features", "compatible_features", "autoclear_features",
        "header_extension_area", "header_extension", "string_extension", "feature_name_table",
        "feature_name", "bitmaps_extension", "bitmap_directory", "bitmap_directory_entry",
        "bitmap_flags", "bitmap_table_entry", "full_disk_encryption_header_pointer", "luks_header",
        "luks_key_slot", "l1_table", "l1_entry", "l2_table", "l2_entry", "subcluster", "guest_cluster",
        "host_cluster", "refcount_table", "refcount_table_entry", "refcount_block", "snapshot",
        "snapshot_extra_data"]), names
    values = {path: sorted(int(k) for k in v) for path, v in _enums(spec)}
    assert values == {
        "/enums/crypt_method": [0, 1, 2],
        "/enums/compression_type": [0, 1],
        "/enums/header_extension_type": sorted([0, 0xE2792ACA, 0x6803F857, 0x23852875, 0x0537BE77, 0x44415441]),
        "/enums/feature_type": [0, 1, 2],
        "/enums/bitmap_type": [1],
        "/enums/cluster_type": [0, 1, 2, 3, 4],
        "/enums/cluster_status": [0, 1, 2, 3, 4],
        "/enums/subcluster_status": [0, 1, 2],
        "/enums/luks_key_slot_state": [0xDEAD, 0xAC71F3],
    }, values


def test_qcow2_ksy_follows_the_gallery_conventions() -> None:
    spec = tc.load_ksy(tc.FORMATS / "qcow2.ksy")
    gaps = gallery_gaps(spec)
    assert not gaps, "formats/qcow2.ksy:\n" + "\n".join(gaps)
    # the type-level references name sections: each type has one, and they are not all the same
    anchors = {_refs(t)[0] for _, _, t, is_root in _types(spec) if not is_root}
    assert len(anchors) >= 12, anchors


def test_qcow2_ksy_stands_alone() -> None:
    """The definition is ready to be copied into the gallery: no import, and no
    word in it points at this repository."""
    spec = tc.load_ksy(tc.FORMATS / "qcow2.ksy")
    assert "imports" not in spec["meta"]
    text = (tc.FORMATS / "qcow2.ksy").read_text(encoding="utf-8").lower()
    for word in ("qjournal", "journal", "docs/format.md", "tests/", "formats/", "qcow2.txt"):
        assert word not in text, word


def test_gallery_gaps_finds_each_kind_of_gap() -> None:
    bad = {"meta": {"id": "t"}, "doc-ref": "QEMU docs/interop/qcow2.txt",
           "types": {"a": {"doc-ref": QEMU_SPEC + "#header",
                           "seq": [{"id": "r", "size": 0, "doc-ref": "qcow2.txt \"== Header ==\""}]}}}
    assert gallery_gaps(bad) == [
        "/meta: no xref", "/meta: no file-extension", "/meta: no title",
        "/: doc-ref is ['QEMU docs/interop/qcow2.txt'], not QEMU's published spec",
        "/types/a/seq/0: doc-ref 'qcow2.txt \"== Header ==\"' is not a URL of a section of the spec",
        "/types/a/seq/0 (r): a zero-length field",
    ]


def test_lint_finds_each_kind_of_gap() -> None:
    bad = {
        "meta": {"id": "t"},
        "seq": [{"id": "a", "type": "u1"}],
        "instances": {"i": {"value": 1, "doc": " "}},
        "types": {
            "no_rep": {"doc": "d", "seq": [{"id": "x", "type": "u1", "doc": "d"}]},
            "bad_ref": {"doc": "d", "-webide-representation": "{x:dec} {nope}",
                        "seq": [{"id": "x", "type": "u1", "doc": "d"}],
                        "types": {"inner": {"-webide-representation": "{y}",
                                            "seq": [{"id": "y", "type": "u1"}]}}},
        },
        "enums": {"e": {1: "short", 2: {"id": "long"}, 3: {"id": "ok", "doc": "d"}}},
    }
    assert lint(bad) == [
        "/meta: no license",
        "/: no doc on the root",
        "/: no doc-ref on the root",
        "/seq/0 (a): no doc",
        "/instances/i: no doc",
        "/types/no_rep/: no doc-ref on type no_rep",
        "/types/no_rep/: no -webide-representation on type no_rep",
        "/types/bad_ref/: no doc-ref on type bad_ref",
        "/types/bad_ref/-webide-representation: {nope} is not a field or instance of bad_ref",
        "/types/bad_ref/types/inner/: no doc on type inner",
        "/types/bad_ref/types/inner/: no doc-ref on type inner",
        "/types/bad_ref/types/inner/seq/0 (y): no doc",
        "/enums/e/1: enum value without doc (short form 'short')",
        "/enums/e/2: enum value without doc",
    ]


def test_lint_checks_params() -> None:
    """A param needs a doc, and may be named in the type's -webide-representation."""
    spec: dict[str, Any] = {
        "meta": {"id": "t", "license": "CC0-1.0"}, "doc": "d", "doc-ref": "r",
        "types": {
            "table": {"doc": "d", "doc-ref": "r", "-webide-representation": "{num_entries:dec} {other}",
                      "params": [{"id": "num_entries", "type": "u4", "doc": "d"}, {"id": "other", "type": "u1"}]},
        },
    }
    assert lint(spec) == ["/types/table/params/1 (other): no doc"]
    spec["types"]["table"]["-webide-representation"] = "{nope}"
    assert lint(spec)[-1] == "/types/table/-webide-representation: {nope} is not a field or instance of table"


def test_lint_checks_the_meta_keys() -> None:
    assert _meta_gaps({"id": "x", "title": "t", "license": "CC0-1.0", "endian": "be"}) == []
    assert _meta_gaps({"id": "x", "license": "MIT", "endian": "le", "title": "t"}) == [
        "/meta: keys not in the style guide's order: ['id', 'license', 'endian', 'title']"]
    assert _meta_gaps({"id": "x", "license": "MIT", "foo": 1}) == ["/meta: keys the style guide does not list: ['foo']"]
