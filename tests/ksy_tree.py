"""Dump the whole Kaitai parse of a file as JSON, with the Python parser.

The Python counterpart of tests/js/dump_tree.mjs: the same walk, driven by a
.ksy (the journal's, formats/qcow2_journal.ksy, unless told otherwise), over
generated/<meta id>.py (the compiler's Python output), giving the same JSON
(see the format described at the top of dump_tree.mjs):

    {"ok": true, "tree": {"_type": "qcow2_journal", "clusters": [...], ...}}
    {"ok": false, "error": {"kind": "ValidationExprError",
                            "src_path": "/types/entry/seq/1", "pos": 2,
                            "io_size": 4096, "root_pos": 4096, "actual": 3}}

Command line (one JSON line per file, like dump_tree.mjs):

    python tests/ksy_tree.py [--ksy formats/qcow2.ksy] [--skip TYPE.INSTANCE]... FILE...

--skip leaves an instance unevaluated (dumped as {"_skipped": true}), as
dump_tree.mjs does: for lazy instances too large to dump (the L2 tables of an
image with 2 MiB clusters, say).

--each TYPE=COUNT also dumps, beside the tree, objects of a parameterised
type that no field creates (qcow2's lookups guest_cluster and host_cluster):
one per index 0 to COUNT - 1, each made on the root's stream with the root as
parent and root, under "each": {TYPE: [...]}. COUNT is a dotted path from the
root (header.num_guest_clusters), or A/B for A divided by B rounded up
(_io.size/header.cluster_size).

The parser is imported as ``qjournal.generated.<meta id>`` when the package
import works, else loaded from generated/<meta id>.py by path.
The .ksy is parsed by js-yaml with CORE_SCHEMA through node (as the Web IDE
and formats/ksc.mjs parse it), or by PyYAML when node or formats/node_modules
is missing.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kaitaistruct
from kaitaistruct import KaitaiStream, KaitaiStruct
from ksy_toolchain import load_ksy

ROOT = Path(__file__).resolve().parent.parent
KSY = ROOT / "formats" / "qcow2_journal.ksy"
GENERATED = ROOT / "generated" / "qcow2_journal.py"

# The value arguments of each validation error, as dump_tree.mjs names them.
VALUE_ARGS = {
    "ValidationNotEqualError": ("expected", "actual"),
    "ValidationLessThanError": ("min", "actual"),
    "ValidationGreaterThanError": ("max", "actual"),
    "ValidationNotAnyOfError": ("actual",),
    "ValidationNotInEnumError": ("actual",),
    "ValidationExprError": ("actual",),
}


def upper_camel(ksy_id: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in ksy_id.split("_"))


def generated_path(ksy_id: str = "qcow2_journal") -> Path:
    """generated/<meta id>.py, the compiler's Python output for that .ksy."""
    return ROOT / "generated" / f"{ksy_id}.py"


def load_parser_module(ksy_id: str = "qcow2_journal") -> tuple[ModuleType, str]:
    """The generated parser module of a .ksy (by meta id), and where it came from."""
    name = f"qjournal.generated.{ksy_id}"
    try:
        module = importlib.import_module(name)
        return module, name
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location(f"_ksy_tree_{ksy_id}", generated_path(ksy_id))
    assert spec is not None and spec.loader is not None, generated_path(ksy_id)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, str(generated_path(ksy_id))


def collect_types(ksy: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every type of the .ksy, the root included, by generated class name."""
    types: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(name: str, spec: dict[str, Any]) -> None:
        types[upper_camel(name)] = (name, spec)
        for sub, sub_spec in (spec.get("types") or {}).items():
            add(sub, sub_spec)

    add(ksy["meta"]["id"], ksy)
    return types


def error_kind(err: BaseException) -> str:
    if isinstance(err, EOFError):  # kaitaistruct.EndOfStreamError is one
        return "EOF"
    return type(err).__name__


_MISSING = object()


class Dumper:
    """Walks a parse by the .ksy: every param, seq field and instance of every
    type, except the instances named in ``skip`` ("type.instance", e.g.
    "l1_entry.l2_table"), which are not evaluated."""

    def __init__(self, ksy: dict[str, Any], root_cls: type, skip: frozenset[str] | set[str] = frozenset(),
                 each: dict[str, str] | None = None) -> None:
        self.ksy = ksy
        self.root_cls = root_cls
        self.types = collect_types(ksy)
        self.skip = frozenset(skip)
        self.each = dict(each or {})

    @staticmethod
    def count(root: KaitaiStruct, expr: str) -> int:
        """An --each COUNT: a dotted path from the root, or A/B (rounded up)."""
        def path(p: str) -> int:
            v: Any = root
            for part in p.split("."):
                v = v.size() if part == "size" and isinstance(v, KaitaiStream) else getattr(v, part)
            return int(v)
        a, _, b = expr.partition("/")
        return -(-path(a) // path(b)) if b else path(a)

    def value(self, v: Any, attr: dict[str, Any] | None = None) -> Any:
        if v is None or v is _MISSING:
            return None
        if isinstance(v, list):
            return [self.value(x, attr) for x in v]
        if attr and attr.get("enum") and isinstance(v, int) and not isinstance(v, bool):
            # resolve_enum gives an IntEnum member for a known value, the int otherwise
            name = v.name if isinstance(v, enum.Enum) else None
            return {"value": int(v), "name": name}
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return v
        if isinstance(v, (bytes, bytearray)):
            return bytes(v).hex()
        if isinstance(v, str):
            return {"str": v}
        if isinstance(v, KaitaiStruct):
            return self.struct(v)
        raise TypeError(f"cannot dump a value of type {type(v).__name__}")

    def struct(self, obj: KaitaiStruct) -> dict[str, Any]:
        cls_name = type(obj).__name__
        if cls_name not in self.types:
            raise TypeError(f"no .ksy type for class {cls_name}")
        name, spec = self.types[cls_name]
        out: dict[str, Any] = {"_type": name}
        for param in spec.get("params") or []:
            out[param["id"]] = self.value(getattr(obj, param["id"], _MISSING), param)
        for i, attr in enumerate(spec.get("seq") or []):
            ksy_id = attr.get("id", f"_unnamed{i}")
            out[ksy_id] = self.value(getattr(obj, ksy_id, _MISSING), attr)
        for ksy_id, inst in (spec.get("instances") or {}).items():
            if f"{name}.{ksy_id}" in self.skip:
                out[ksy_id] = {"_skipped": True}
                continue
            try:
                v = getattr(obj, ksy_id)
            except Exception as err:  # an instance whose evaluation fails
                out[ksy_id] = {"_error": error_kind(err)}
                continue
            out[ksy_id] = self.value(v, inst)
        return out

    def dump(self, data: bytes) -> dict[str, Any]:
        root_io = KaitaiStream(io.BytesIO(data))
        try:
            obj = self.root_cls(root_io)
        except Exception as err:
            return {"ok": False, "error": self.error(err, root_io)}
        out: dict[str, Any] = {"ok": True, "tree": self.struct(obj)}
        if self.each:
            each: dict[str, list[Any]] = {}
            out["each"] = each
            for name, expr in self.each.items():
                cls = getattr(self.root_cls, upper_camel(name))
                each[name] = [self.struct(cls(i, obj._io, obj, obj)) for i in range(self.count(obj, expr))]
        return out

    def error(self, err: BaseException, root_io: KaitaiStream) -> dict[str, Any]:
        kind = error_kind(err)
        out: dict[str, Any] = {
            "kind": kind, "src_path": None, "pos": None, "io_size": None,
            "root_pos": root_io.pos(),
        }
        if kind == "EOF":
            return out
        if kind not in VALUE_ARGS or not isinstance(err, kaitaistruct.ValidationFailedError):
            out["message"] = repr(err)
            return out
        out["src_path"] = err.src_path
        if err.io is not None:
            out["pos"] = err.io.pos()
            out["io_size"] = err.io.size()
        for k in VALUE_ARGS[kind]:
            out[k] = self.value(getattr(err, k))
        return out


def make_dumper(ksy: dict[str, Any] | None = None, skip: frozenset[str] | set[str] = frozenset(),
                each: dict[str, str] | None = None) -> tuple[Dumper, str]:
    """A Dumper over the generated Python parser of ``ksy`` (the journal's by
    default), and the parser's origin."""
    ksy = load_ksy() if ksy is None else ksy
    module, origin = load_parser_module(ksy["meta"]["id"])
    root_cls = getattr(module, upper_camel(ksy["meta"]["id"]))
    return Dumper(ksy, root_cls, skip, each), origin


def main(argv: list[str]) -> int:
    ksy_path, skip, each, files = KSY, set(), {}, []
    args = iter(argv)
    for arg in args:
        if arg == "--ksy":
            ksy_path = Path(next(args))
        elif arg == "--skip":
            skip.add(next(args))
        elif arg == "--each":
            name, _, expr = next(args).partition("=")
            each[name] = expr
        else:
            files.append(arg)
    if not files:
        print("usage: python tests/ksy_tree.py [--ksy KSY] [--skip TYPE.INSTANCE]... [--each TYPE=COUNT]... FILE...",
              file=sys.stderr)
        return 2
    dumper, _ = make_dumper(load_ksy(ksy_path), skip, each)
    for path in files:
        data = Path(path).read_bytes()
        print(json.dumps({"path": path, "result": dumper.dump(data)}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
