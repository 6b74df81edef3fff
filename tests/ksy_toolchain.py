"""The pinned Kaitai Struct toolchain (node + formats/node_modules) for tests.

Tests that need node call ``require_node()``: without node or without
``npm ci --prefix formats`` they are skipped, with the reason, unless the
environment variable CI is set (CI=true, as CI services set it): there a
missing toolchain is a failure, never a silent skip.

``KSY`` is the journal's definition (the first this project had); ``KSY_FILES``
is every ``formats/*.ksy``, which tests that apply to any definition
parametrise over (``ksy_id(path)`` names a parameter).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ROOT / "formats"
KSC = FORMATS / "ksc.mjs"
KSY = FORMATS / "qcow2_journal.ksy"
KSY_FILES = tuple(sorted(FORMATS.glob("*.ksy")))
NODE_MODULES = FORMATS / "node_modules"
PINNED_PACKAGES = ("kaitai-struct-compiler", "kaitai-struct", "js-yaml")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip the calling test, ``what`` being missing (``reason`` says how to get it); under CI fail it instead:
    CI never passes by skipping."""
    if in_ci():
        pytest.fail(f"CI is set but {what} is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def missing_toolchain() -> str | None:
    """Why the pinned toolchain cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    missing = [p for p in PINNED_PACKAGES if not (NODE_MODULES / p / "package.json").is_file()]
    if missing:
        return f"formats/node_modules lacks {', '.join(missing)}: run `npm ci --prefix formats`"
    return None


def require_node() -> str:
    """The node executable; skip (or, under CI, fail) when the toolchain is missing."""
    reason = missing_toolchain()
    if reason is not None:
        unavailable("the Kaitai toolchain", reason)
    node = shutil.which("node")
    assert node is not None, "missing_toolchain() found node"
    return node


def run_node(args: list[str], *, input: str | None = None, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    node = require_node()
    proc = subprocess.run(
        [node, *args], cwd=ROOT, input=input, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"node {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def ksc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run formats/ksc.mjs (the pinned compiler) with ``args``."""
    return run_node([str(KSC), *args], check=check)


def ksy_id(path: Path) -> str:
    """The test id of a .ksy: its file name without the extension (its meta id)."""
    return Path(path).stem


def load_ksy(path: Path = KSY) -> dict[str, Any]:
    """A .ksy (the journal's by default) parsed by js-yaml 4.1.0 with CORE_SCHEMA, as the Web IDE does;
    by PyYAML (the ``test`` extra) where node or ``npm ci --prefix formats`` is missing."""
    import json

    if missing_toolchain() is not None:
        import yaml

        loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return loaded
    script = (
        "const yaml = require(process.argv[1]);"
        "const fs = require('fs');"
        "process.stdout.write(JSON.stringify(yaml.load(fs.readFileSync(process.argv[2], 'utf8'),"
        " {schema: yaml.CORE_SCHEMA, filename: process.argv[2]})));"
    )
    out = run_node(["-e", script, str(NODE_MODULES / "js-yaml"), str(path)]).stdout
    parsed: dict[str, Any] = json.loads(out)
    return parsed
