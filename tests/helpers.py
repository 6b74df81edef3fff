"""Helpers that several test modules share, written once here.

Test modules import it by name (pytest puts tests/ on ``sys.path``, as for
crash_sim, qemu_images and the other helper modules beside it). Scripts that
live outside tests/ (the benchmarks, formats/samples/make_qcow2_samples.py)
are loaded by path with :func:`load_script`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import qjournal

ROOT = Path(__file__).resolve().parent.parent


HYPOTHESIS_EXAMPLES_ENV = "QJOURNAL_HYPOTHESIS_EXAMPLES"


def long_run_examples() -> int | None:
    """The long run's example count (``QJOURNAL_HYPOTHESIS_EXAMPLES``), or None for the tests' short defaults."""
    import pytest

    raw = os.environ.get(HYPOTHESIS_EXAMPLES_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"{HYPOTHESIS_EXAMPLES_ENV} must be a positive integer, not {raw!r}")
    return n


def examples(default: int) -> int:
    """A property test's example count: its short default, or the long run's."""
    return long_run_examples() or default


def load_script(path: Path, name: str | None = None) -> ModuleType:
    """The Python script at ``path`` (outside any package) as a module, registered as ``name`` (once)."""
    name = name or f"qjournal_script_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def hash_bytes(digest: bytes, physical: int, logical: int) -> bytes:
    """A HASH entry written out by hand (D3, D8): size, type 2, digest, two u64 big-endian sectors."""
    return bytes([2 + len(digest) + 16, 0x02]) + digest + physical.to_bytes(8, "big") + logical.to_bytes(8, "big")


def replay(source: Any, *args: Any, **kw: Any) -> list[qjournal.Entry]:
    """The entries a reader replays (the reader closed afterwards)."""
    with qjournal.read(source, *args, **kw) as r:
        return list(r.replay())


def rstate(source: Any, *args: Any, **kw: Any) -> qjournal.JournalState:
    """A reader's state (the reader closed afterwards)."""
    with qjournal.read(source, *args, **kw) as r:
        return r.state()


def rcheck(source: Any, *args: Any, **kw: Any) -> qjournal.CheckReport:
    """A reader's check report (the reader closed afterwards)."""
    with qjournal.read(source, *args, **kw) as r:
        return r.check()


def stderr_on_a_terminal(args: list[str], *, env: dict[str, str] | None = None,
                         timeout: float = 120) -> tuple[int, str, str]:
    """``python -m qjournal ARGS`` with stderr on an 80x24 pseudo-terminal: (exit code, stdout, what the terminal got)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "qjournal", *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=timeout)
    reader.join(timeout=60)
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


def printed(block: str) -> list[str]:
    """What a documented Python block says it prints: the comment of a print line, and comment lines right after one."""
    out: list[str] = []
    after_print = False
    for line in block.splitlines():
        code, _, comment = line.partition("# ")
        if "print(" in code:
            after_print = True
            if comment:
                out.append(comment.strip())
        elif not code.strip() and comment and after_print:
            out.append(comment.strip())
        else:
            after_print = False
    return out


T = TypeVar("T")


def known(value: T | None) -> T:
    """``value``, which the test expects to be there: an AssertionError where it is None."""
    assert value is not None
    return value


def as_hash(entry: qjournal.Entry) -> qjournal.HashEntry:
    """``entry``, which the test expects to be a HASH entry: an AssertionError where it is not."""
    assert isinstance(entry, qjournal.HashEntry), entry
    return entry
