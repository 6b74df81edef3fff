"""Write generated/NAME.pyi, the type stubs of each generated parser generated/NAME.py.

    python3 formats/tools/pystubs.py [--out DIR]      (formats/regen.sh runs it after ksc.mjs)

The compiler's Python output starts with ``# type: ignore`` and has no annotations, so a
user's ``mypy --strict`` sees nothing in it. This script reads that output (the Python AST,
standard library only) and infers the type of every attribute: a seq field from what its
``_read`` assigns (``read_u4be()``: int, ``read_bytes()``: bytes, ``.decode()``: str, a
nested class, ``resolve_enum``: the enum or an unknown int (the enum alone under `valid: in-enum`), a
list of those), an instance
from what its property computes (comparisons and boolean operators: bool, arithmetic: int,
``self.x``: the type of x, ...), ``| None`` when the property may return None (its ``if``).
A seq field with an ``if`` is typed as its value: it is absent, not None, when the
condition is false. Parameters are ints (every parameter of formats/*.ksy is an integer;
another type is an error here, so a new one is noticed). What cannot be inferred is
``Any``. The stubs do not subclass the runtime's classes: ``kaitaistruct`` ships no types.
tests/test_regen.py checks the stubs are fresh and that a user's ``mypy --strict`` passes.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # formats/
ROOT = HERE.parent
INT_READS = ("read_u", "read_s", "read_bits_int")
BYTES_CALLS = ("read_bytes", "read_bytes_full", "read_bytes_term", "bytes_terminate", "bytes_strip", "process_")


class Module:
    """The classes of one generated module: fields, properties, params, enums."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes: dict[str, ast.ClassDef] = {}
        self.root = ""
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.root = node.name
                self._collect(node, node.name)
        self.memo: dict[tuple[str, str], set[str]] = {}

    def _collect(self, cls: ast.ClassDef, dotted: str) -> None:
        self.classes[dotted] = cls
        for node in cls.body:
            if isinstance(node, ast.ClassDef):
                self._collect(node, f"{dotted}.{node.name}")

    @staticmethod
    def is_enum(node: ast.ClassDef) -> bool:
        return any(isinstance(b, ast.Name) and b.id == "IntEnum" for b in node.bases)

    def enum_values(self, name: str) -> set[int]:
        cls = self.classes.get(name)
        body = cls.body if cls else []
        return {n.value.value for n in body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                and type(n.value.value) is int}

    def structs(self) -> list[str]:
        return [n for n, c in self.classes.items() if not self.is_enum(c)]

    def params(self, name: str) -> list[str]:
        init = next(f for f in self.classes[name].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
        args = [a.arg for a in init.args.args[1:]]
        return args[: args.index("_io")]

    def method(self, name: str, meth: str) -> ast.FunctionDef | None:
        return next((f for f in self.classes[name].body if isinstance(f, ast.FunctionDef) and f.name == meth), None)

    def fields(self, name: str) -> list[str]:
        """The seq fields, in the order _read assigns them first."""
        read = self.method(name, "_read")
        out: list[str] = []
        for node in ast.walk(read) if read else []:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and _self_attr(t) and not t.attr.startswith("_") and t.attr not in out:
                        out.append(t.attr)
        return sorted(out, key=lambda a: _first_line(read, a))

    def properties(self, name: str) -> list[str]:
        return [f.name for f in self.classes[name].body if isinstance(f, ast.FunctionDef)
                and any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list)]

    # -- inference -------------------------------------------------------------------------
    def attr_type(self, cls: str, attr: str) -> set[str]:
        key = (cls, attr)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {"Any"}  # a cycle reads as Any
        if attr in self.params(cls):
            out = {"int"}
        elif attr in self.properties(cls):
            out = self._assigned(cls, self.method(cls, attr), f"_m_{attr}")
            func = self.method(cls, attr)
            if func and not any(_assigns(s, f"_m_{attr}") for s in func.body):
                out |= {"None"}
        elif attr in self.fields(cls):
            read = self.method(cls, "_read")
            out = self._assigned(cls, read, attr)
            checked = _in_enum_check(read, attr)  # `valid: in-enum`: an unknown value fails the parse
            if checked:
                out = {checked}
        else:
            out = {"Any"}
        self.memo[key] = out
        return out

    def _assigned(self, cls: str, func: ast.FunctionDef | None, attr: str) -> set[str]:
        out: set[str] = set()
        items: set[str] = set()
        is_list = False
        for node in ast.walk(func) if func else []:
            if isinstance(node, ast.Assign) and any(_self_attr(t, attr) for t in node.targets):
                if isinstance(node.value, ast.List) and not node.value.elts:
                    is_list = True
                else:
                    out |= self.expr(cls, node.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                  and _self_attr(node.func.value, attr)):
                items |= self.expr(cls, _latest_value(func, node.args[0], node.lineno))
        if is_list:
            out.add(f"list[{_union(items or {'Any'})}]")
        return out or {"Any"}

    def expr(self, cls: str, e: ast.expr) -> set[str]:
        if isinstance(e, ast.Constant):
            return {"None" if e.value is None else type(e.value).__name__}
        if isinstance(e, (ast.Compare, ast.BoolOp)) or (isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not)):
            return {"bool"}
        if isinstance(e, ast.UnaryOp):
            return self.expr(cls, e.operand)
        if isinstance(e, ast.BinOp):
            kinds = self.expr(cls, e.left) | self.expr(cls, e.right)
            for t in ("str", "bytes", "float"):
                if t in kinds:
                    return {t}
            return {"int"}
        if isinstance(e, ast.IfExp):
            return self.expr(cls, e.body) | self.expr(cls, e.orelse)
        if isinstance(e, ast.Call):
            return self.call(cls, e)
        if isinstance(e, ast.Subscript):
            inner = self.expr(cls, e.value)
            if isinstance(e.slice, ast.Slice):
                return inner
            return {t[5:-1] for t in inner if t.startswith("list[")} or ({"int"} if inner <= {"bytes"} else {"Any"})
        if isinstance(e, ast.Attribute):
            return self.attribute(cls, e)
        return {"Any"}

    def owner(self, cls: str, e: ast.expr) -> str | None:
        """The generated class that ``e`` (self, self._root, self.x, ...) is an object of."""
        if isinstance(e, ast.Name) and e.id == "self":
            return cls
        if isinstance(e, ast.Subscript):
            items = self.expr(cls, e) - {"None"}
            return next(iter(items)) if len(items) == 1 and next(iter(items)) in self.classes else None
        if isinstance(e, ast.Attribute):
            if e.attr == "_root":
                return self.root
            base = self.owner(cls, e.value)
            if base is None or e.attr == "_parent":
                return None
            types = self.attr_type(base, e.attr) - {"None"}
            if len(types) == 1 and (t := next(iter(types))) in self.classes:
                return t
        return None

    def attribute(self, cls: str, e: ast.Attribute) -> set[str]:
        if e.attr == "value":  # an enum's integer (KS `.to_i`)
            return {"int"}
        base = self.owner(cls, e.value)
        if base is not None:
            return self.attr_type(base, e.attr)
        if isinstance(e.value, ast.Attribute) and e.value.attr == "_parent":
            # the parent's class is not written down: the attribute's type where every class agrees
            found = {frozenset(self.attr_type(c, e.attr)) for c in self.structs()
                     if e.attr in self.fields(c) or e.attr in self.properties(c)}
            return set(next(iter(found))) if len(found) == 1 else {"Any"}
        if isinstance(e.value, ast.Name) and e.value.id in ("Qcow2", self.root):
            return {f"{self.root}.{e.attr}"}
        return {"Any"}

    def call(self, cls: str, e: ast.Call) -> set[str]:
        f = e.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name.startswith(INT_READS) or name in ("len", "int", "pos", "size", "mod", "byte_array_min",
                                                     "byte_array_max"):
            return {"int"}
        if name.startswith("read_f"):
            return {"float"}
        if name.startswith(BYTES_CALLS):
            return {"bytes"}
        if name == "decode":
            return {"str"}
        if name in ("is_eof",):
            return {"bool"}
        if name == "resolve_enum":
            enum = _dotted(e.args[0])
            if _int_leaves(e.args[1]) <= self.enum_values(enum):  # every value it can take is a member
                return {enum}
            return {f"{enum} | int"}
        dotted = _dotted(f)
        if dotted in self.classes:
            return {dotted}
        return {"Any"}


def _in_enum_check(func: ast.FunctionDef | None, attr: str) -> str | None:
    """The enum of an ``if not isinstance(self.attr, E): raise ...`` in ``func`` (a `valid: in-enum`), or None."""
    for node in ast.walk(func) if func else []:
        test = node.test if isinstance(node, ast.If) else None
        if (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(test.operand, ast.Call)
                and _dotted(test.operand.func) == "isinstance" and _self_attr(test.operand.args[0], attr)
                and any(isinstance(n, ast.Raise) for n in node.body)):  # type: ignore[attr-defined]
            return _dotted(test.operand.args[1])
    return None


def _latest_value(func: ast.FunctionDef | None, e: ast.expr, line: int) -> ast.expr:
    """For a local name (a repeat-until item, ``_``): the value last assigned to it before ``line``."""
    if not isinstance(e, ast.Name):
        return e
    found = [n for n in ast.walk(func) if isinstance(n, ast.Assign) and n.lineno < line
             and any(isinstance(t, ast.Name) and t.id == e.id for t in n.targets)] if func else []
    return max(found, key=lambda n: n.lineno).value if found else e


def _int_leaves(e: ast.expr) -> set[int]:
    """The values of a tree of conditional expressions whose leaves are integer literals, else {-1} (unknown)."""
    if isinstance(e, ast.IfExp):
        return _int_leaves(e.body) | _int_leaves(e.orelse)
    if isinstance(e, ast.Constant) and type(e.value) is int:
        return {e.value}
    return {-1}


def _dotted(e: ast.expr) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return f"{_dotted(e.value)}.{e.attr}"
    return ""


def _self_attr(t: ast.expr, attr: str | None = None) -> bool:
    return (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
            and (attr is None or t.attr == attr))


def _assigns(stmt: ast.stmt, attr: str) -> bool:
    return isinstance(stmt, ast.Assign) and any(_self_attr(t, attr) for t in stmt.targets)


def _first_line(func: ast.FunctionDef | None, attr: str) -> int:
    for node in ast.walk(func) if func else []:
        if isinstance(node, ast.Assign) and any(_self_attr(t, attr) for t in node.targets):
            return node.lineno
    return 0


def _union(types: set[str]) -> str:
    """One annotation: Any absorbs the rest, None goes last."""
    if "Any" in types:
        return "Any"
    parts = sorted({p.strip() for t in types for p in t.split(" | ")} - {"None"},
                   key=lambda p: (p == "int", p))
    return " | ".join(parts + (["None"] if "None" in types else []))


def stub(source: str, origin: str) -> str:
    """The .pyi text for one generated module."""
    mod = Module(ast.parse(source))
    lines = [f"# Type stubs of {origin}, written by formats/tools/pystubs.py (formats/regen.sh): never edit by hand.",
             "from enum import IntEnum", "from typing import Any", ""]

    def emit(name: str, depth: int) -> None:
        pad = "    " * depth
        cls = mod.classes[name]
        short = name.rsplit(".", 1)[-1]
        if mod.is_enum(cls):
            lines.append(f"{pad}class {short}(IntEnum):")
            for node in cls.body:
                if isinstance(node, ast.Assign):
                    lines.append(f"{pad}    {node.targets[0].id} = {ast.unparse(node.value)}")  # type: ignore[attr-defined]
            return
        lines.append(f"{pad}class {short}:")
        inner = pad + "    "
        for node in cls.body:
            if isinstance(node, ast.ClassDef):
                emit(f"{name}.{node.name}", depth + 1)
        params = "".join(f"{p}: int, " for p in mod.params(name))
        lines.append(f"{inner}def __init__(self, {params}_io: Any, _parent: Any = None, _root: Any = None) -> None: ...")
        if name == mod.root:
            for meth, arg in (("from_file", "filename: str"), ("from_bytes", "buf: bytes"), ("from_io", "io: Any")):
                lines.extend([f"{inner}@classmethod", f"{inner}def {meth}(cls, {arg}) -> {mod.root}: ..."])
            lines.extend([f"{inner}def close(self) -> None: ...", f"{inner}def __enter__(self) -> {mod.root}: ...",
                      f"{inner}def __exit__(self, *args: object) -> None: ..."])
        lines.extend([f"{inner}_io: Any", f"{inner}_parent: Any", f"{inner}_root: {mod.root}"])
        for p in mod.params(name):
            lines.append(f"{inner}{p}: int")
        for field in mod.fields(name):
            lines.append(f"{inner}{field}: {_union(mod.attr_type(name, field) - {'None'})}")
        for prop in mod.properties(name):
            lines.extend([f"{inner}@property", f"{inner}def {prop}(self) -> {_union(mod.attr_type(name, prop))}: ..."])

    emit(mod.root, 0)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else ROOT / "generated"
    for ksy in sorted(HERE.glob("*.ksy")):
        source = out / f"{ksy.stem}.py"
        (out / f"{ksy.stem}.pyi").write_text(stub(source.read_text(encoding="utf-8"), f"generated/{ksy.stem}.py"),
                                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
