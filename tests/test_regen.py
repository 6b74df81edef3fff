"""generated/ is exactly what the pinned compiler makes of formats/*.ksy (and
formats/tools/pystubs.py of the compiler's Python: the .pyi stubs), every
generated module (one per .ksy) ships in the package, and a user's
``mypy --strict`` sees its types."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ksy_toolchain import require_node

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "generated"
# One generated module per definition: formats/NAME.ksy -> generated/NAME.py
# (the meta id is the file name), installed as qjournal.generated.NAME.
KSY_IDS = sorted(p.stem for p in (ROOT / "formats").glob("*.ksy"))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_regenerating_gives_the_committed_bytes(tmp_path: Path) -> None:
    require_node()
    run = subprocess.run(["node", str(ROOT / "formats" / "ksc.mjs"), "--out", str(tmp_path)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    stubs = subprocess.run([sys.executable, str(ROOT / "formats" / "tools" / "pystubs.py"), "--out", str(tmp_path)],
                           capture_output=True, text=True, check=False)
    assert stubs.returncode == 0, stubs.stderr
    fresh, committed = _files(tmp_path), _files(GENERATED)
    assert sorted(fresh) == sorted(committed), "generated/ holds other files than the compiler writes"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"generated/ is stale, run `bash formats/regen.sh`: {stale}"
    assert {f"{k}.pyi" for k in KSY_IDS} <= set(fresh)


def test_compiler_is_pinned() -> None:
    lock = (ROOT / "formats" / "package-lock.json").read_text()
    assert '"node_modules/kaitai-struct-compiler": {\n      "version": "0.11.0"' in lock
    assert '"kaitai-struct-compiler": "0.11.0"' in (ROOT / "formats" / "package.json").read_text()


def test_generated_is_part_of_the_package() -> None:
    import qjournal.generated.qcow2_journal as mod

    assert Path(mod.__file__).resolve().parent == GENERATED.resolve()
    assert "generated" not in [Path(p).name for p in sys.path]


def test_every_definition_has_its_module_in_the_package() -> None:
    import importlib

    assert KSY_IDS == ["qcow2", "qcow2_journal"], KSY_IDS
    for ksy_id in KSY_IDS:
        mod = importlib.import_module(f"qjournal.generated.{ksy_id}")
        assert mod.__file__ is not None and Path(mod.__file__).resolve() == (GENERATED / f"{ksy_id}.py").resolve()
        root_class = "".join(part.capitalize() for part in ksy_id.split("_"))
        assert hasattr(mod, root_class), f"qjournal.generated.{ksy_id} has no class {root_class}"


def _clean_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (tracked, and untracked but not ignored), links kept as links:
    what a clone builds from, without a developer's stale build/ directory."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        src, dst = ROOT / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    return dest


def test_wheel_contains_the_generated_module(tmp_path: Path) -> None:
    source = _clean_copy(tmp_path / "src")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("qjournal-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "qjournal/generated/qcow2_journal.py" in names
    # what a user of the wheel needs beside the code: the .ksy for the Web IDE, the format
    # reference the messages cite, the marker of a typed package, the license
    assert {"qjournal/formats/qcow2_journal.ksy", "qjournal/formats/qcow2.ksy", "qjournal/docs/format.md",
            "qjournal/py.typed"} <= set(names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith("qjournal/formats/") and not n.endswith(".ksy")], names
    assert not [n for n in names if n.startswith("qjournal/docs/") and n != "qjournal/docs/format.md"], names
    assert "qjournal/tail.py" not in names and "qjournal/bench.py" not in names
    assert "qjournal/generated/__init__.py" in names
    assert "qjournal/reader.py" in names
    assert "qjournal/cli/__init__.py" in names and "qjournal/cli/parser.py" in names  # the command line is a package
    assert "qjournal/generated/qcow2.py" in names
    for ksy_id in KSY_IDS:
        assert f"qjournal/generated/{ksy_id}.py" in names, f"the wheel lacks the parser of formats/{ksy_id}.ksy"
        assert f"qjournal/generated/{ksy_id}.pyi" in names, f"the wheel lacks the stubs of formats/{ksy_id}.ksy"
    _users_mypy_strict_sees_the_types(wheel, tmp_path)


USER_CODE = """\
from qjournal.generated.qcow2 import Qcow2
from qjournal.generated.qcow2_journal import Qcow2Journal


def first_data_offset(path: str) -> int:
    img = Qcow2.from_file(path)
    table = img.l1_table.entries[0].l2_table
    if table is None:
        return -1
    entry = table.entries[0]
    kind: Qcow2.ClusterType = entry.cluster_type
    return entry.ofs_host_cluster if kind is Qcow2.ClusterType.normal else img.header.cluster_size


def lookup(img: Qcow2, idx: int) -> bool:
    l2 = Qcow2.GuestCluster(idx, img._io, img, img).l2_entry
    return l2 is not None and l2.is_zero


def first_entry_type(buf: bytes) -> int:
    return len(Qcow2Journal.from_bytes(buf).clusters)
"""


def _users_mypy_strict_sees_the_types(wheel: Path, tmp_path: Path) -> None:
    """The wheel installed (pip --target), a user's module that uses both parsers passes
    ``mypy --strict``: with the stubs, no 'has no attribute', and no 'Returning Any'
    (a value typed Any would be one); the same module fails without them."""
    pytest.importorskip("mypy")
    site, user = tmp_path / "site", tmp_path / "user"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    user.mkdir()
    (user / "use.py").write_text(USER_CODE)

    def mypy() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(site)}
        return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "use.py"], cwd=user, env=env,
                              capture_output=True, text=True, check=False)
    run = mypy()
    assert run.returncode == 0, run.stdout + run.stderr
    for stub in (site / "qjournal" / "generated").glob("*.pyi"):
        stub.unlink()
    run = mypy()
    assert run.returncode != 0 and 'has no attribute "Qcow2"' in run.stdout, run.stdout


def test_a_source_checkout_imports_without_being_installed() -> None:
    """From the repository's root, ``import qjournal`` finds the source tree before any
    installed copy; ``qjournal/generated`` (a link to ``generated/``) makes that tree
    whole, so the README's examples run there after a plain ``pip install .`` too.
    The subprocess drops every import hook (an editable install's included) and
    site-packages' qjournal, keeping only the source tree and the dependencies."""
    root = Path(__file__).resolve().parents[1]
    link = root / "qjournal" / "generated"
    assert link.is_symlink() and link.resolve() == (root / "generated").resolve()
    code = (
        "import sys; "
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__name__.lower() "
        "and 'editable' not in getattr(f, '__module__', '').lower()]; "
        "import qjournal, qjournal.generated.qcow2_journal as g, qjournal.generated.qcow2 as q; "
        "print(qjournal.__file__); print(g.__file__); print(q.__file__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    package, generated, qcow2 = proc.stdout.split()
    assert Path(package).parent == root / "qjournal"
    assert Path(generated).resolve() == (root / "generated" / "qcow2_journal.py").resolve()
    assert Path(qcow2).resolve() == (root / "generated" / "qcow2.py").resolve()


def test_stubs_type_every_field_and_instance() -> None:
    """formats/tools/pystubs.py infers a type for every field, parameter and instance
    of both parsers: ``Any`` is left only on the runtime's stream and parent."""
    for ksy_id in KSY_IDS:
        text = (GENERATED / f"{ksy_id}.pyi").read_text(encoding="utf-8")
        untyped = [line.strip() for line in text.splitlines()
                   if "Any" in line and not line.strip().startswith(("_io: Any", "_parent: Any", "from typing", "def __init__",
                                                                     "def from_io"))]
        assert not untyped, f"generated/{ksy_id}.pyi: {untyped}"
        assert "class Qcow2" in text
