"""The command line imports what a command needs when it needs it: a short start-up for every command.

The time is measured by benchmarks/bench.py (start-up rows); here, what a command line imports: nothing
of the image code, the spill store, the worker pool, the progress bar or the package metadata before a
command that uses them runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import qjournal

HEAVY = ("qjournal.generated.qcow2", "qjournal.image", "qjournal.index", "qjournal.verify", "qjournal.hashing",
         "qjournal.writer", "qjournal.making", "qjournal.packing", "sqlite3", "multiprocessing", "tqdm",
         "importlib.metadata", "hashlib", "concurrent.futures", "dataclasses")


def _imported(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_importing_the_package_and_the_command_line_imports_no_command() -> None:
    modules = _imported("import qjournal, qjournal.cli")
    assert not modules & set(HEAVY), modules & set(HEAVY)
    assert "qjournal.reader" not in modules and "qjournal.generated.qcow2_journal" not in modules


def test_version_imports_only_what_it_prints() -> None:
    modules = _imported("from qjournal.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass")
    assert not modules & (set(HEAVY) - {"importlib.metadata"}), modules & set(HEAVY)


@pytest.mark.parametrize("command", ["info", "check", "dump"])
def test_reading_a_small_journal_imports_no_image_code(command: str, tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 1) as w:
        w.append_hash(bytes(32), 8, 0)
    modules = _imported(f"from qjournal.cli import main\nmain([{command!r}, {str(path)!r}])")
    unwanted = {"qjournal.generated.qcow2", "qjournal.image", "qjournal.writer", "multiprocessing", "tqdm",
                "importlib.metadata", "hashlib", "concurrent.futures"}
    assert not modules & unwanted, modules & unwanted


def test_the_lazy_package_names_every_public_name() -> None:
    for name in qjournal.__all__:
        assert getattr(qjournal, name) is not None
    assert qjournal.errors.JournalError is qjournal.JournalError  # submodules as attributes, as before
    with pytest.raises(AttributeError):
        qjournal.no_such_name  # noqa: B018
