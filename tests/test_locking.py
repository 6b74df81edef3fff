"""Exclusive access (issue 5): one writer per file, readers need no lock, a read never writes.

Opening a journal for writing takes an exclusive, non-blocking advisory lock
(``flock``) on the file for the writer's lifetime. A second writer, in this
process or another, fails at once with :class:`JournalLockedError` naming the
file; the lock goes with ``close()``, the end of a ``with`` block (an exception
included), a refused open, and the death of the process that held it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import as_hash
from test_fuzz import DEADLINE, GOLDEN, deadline, run_cli

import qjournal
from qjournal import CorruptJournalError, HashEntry, JournalLockedError, writer

OLD_NS = 1_000_000_000_000_000_000
DIGEST = bytes(range(32))


def _journal(tmp_path: Path, name: str = "j.qjournal", num_clusters: int = 2) -> Path:
    path = tmp_path / name
    with qjournal.create(path, num_clusters, durable=False) as w:
        w.append_hash(DIGEST, 1, 2)
    return path


SECOND_WRITERS: dict[str, Callable[[Path, Path], Any]] = {
    "open_for_append": lambda p, t: writer.open_for_append(p),
    "JournalWriter": lambda p, t: writer.JournalWriter(p, durable=False),
    "create(force=True)": lambda p, t: qjournal.create(p, force=True),
    "reset": lambda p, t: qjournal.reset(p),
    "pack into it": lambda p, t: qjournal.pack(_journal(t, "src.qjournal"), p, force=True),
}


@pytest.mark.parametrize("second", list(SECOND_WRITERS))
def test_second_writer_fails_at_once(second: str, tmp_path: Path) -> None:
    path = _journal(tmp_path)
    with writer.open_for_append(path) as w:
        before = path.read_bytes()
        with deadline(DEADLINE, f"a second writer ({second})"), pytest.raises(JournalLockedError) as info:
            SECOND_WRITERS[second](path, tmp_path)
        assert os.fsdecode(path) in str(info.value) and "another writer" in str(info.value)
        assert path.read_bytes() == before, "the refused writer wrote"
        w.append_hash(DIGEST, 3, 4)  # the first writer is unharmed
    assert [as_hash(e).physical_sector for e in qjournal.read(path)] == [1, 3]


def test_the_lock_is_a_real_exclusive_flock(tmp_path: Path) -> None:
    """Other tools that take a shared or exclusive flock see the writer's lock."""
    path = _journal(tmp_path)
    with open(path, "rb") as other:
        with writer.open_for_append(path):
            for mode in (fcntl.LOCK_SH, fcntl.LOCK_EX):
                with pytest.raises(BlockingIOError):
                    fcntl.flock(other.fileno(), mode | fcntl.LOCK_NB)
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: free again
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)


def test_readers_need_no_lock(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    with writer.open_for_append(path) as w:
        w.append_many([HashEntry(DIGEST, 5, 6), HashEntry(DIGEST[::-1], 7, 8)])
        with qjournal.read(path) as r:
            assert [as_hash(e).physical_sector for e in r] == [1, 5, 7]
            assert r.check().problems == () and r.state().num_entries == 3
        for command in ("check", "info", "dump"):
            code, out, err = run_cli([command, str(path)])
            assert code == 0 and not err, (command, out, err)
        w.append_hash(DIGEST, 9, 10)
    # and a writer can open while a reader holds the file open
    with qjournal.read(path) as r, writer.open_for_append(path) as w:
        w.append_hash(DIGEST, 11, 12)
        assert [as_hash(e).physical_sector for e in r] == [1, 5, 7, 9, 11]


def test_released_on_close_and_on_with_exit(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    w = writer.open_for_append(path)
    w.close()
    w.close()  # twice is harmless
    with writer.open_for_append(path):
        pass
    with pytest.raises(ZeroDivisionError):
        with writer.open_for_append(path):
            1 / 0  # noqa: B018
    with writer.open_for_append(path) as w:
        w.append_hash(DIGEST, 2, 2)
    assert len(list(qjournal.read(path))) == 2


def test_a_refused_open_releases_the_lock(tmp_path: Path) -> None:
    """A corrupt journal is refused with CorruptJournalError; the next writer is refused the same way, not locked out."""
    path = _journal(tmp_path)
    data = bytearray(path.read_bytes())
    data[50:52] = b"\x00\x00"
    path.write_bytes(data)
    for _ in range(2):
        with pytest.raises(CorruptJournalError):
            writer.open_for_append(path)
    with qjournal.create(path, length=len(data), force=True):  # and create --force can take it, given its length
        pass


def test_a_callers_file_object(tmp_path: Path) -> None:
    """A writer on a caller's file locks that file; on close the lock goes and the caller's file stays open."""
    path = _journal(tmp_path)
    with open(path, "r+b") as f:
        w = writer.open_for_append(f)
        with pytest.raises(JournalLockedError):
            writer.open_for_append(path)
        w.close()
        assert not f.closed
        with writer.open_for_append(path) as w2:
            w2.append_hash(DIGEST, 4, 4)


def test_the_lock_is_on_the_whole_file(tmp_path: Path) -> None:
    """Two areas of one image: the lock is the file's, so their writers take turns."""
    path = tmp_path / "image.bin"
    path.write_bytes(b"\xff" * (4 * 4096))
    with writer.open_for_append(path, 0, 8192):
        with pytest.raises(JournalLockedError):
            writer.open_for_append(path, 8192, 8192)
    with writer.open_for_append(path, 8192, 8192) as w:
        w.append_hash(DIGEST, 1, 1)


def test_cli_write_commands_on_a_locked_file(tmp_path: Path) -> None:
    if run_cli(["append", "--help"])[0] != 0:
        pytest.skip("the CLI has no write commands yet")
    path = _journal(tmp_path)
    argvs = [
        ["append", str(path), "--hash", DIGEST.hex(), "--physical", "1", "--logical", "2"],
        ["reset", str(path), "--yes"],
        ["create", str(path), "--clusters", "2", "--force"],
    ]
    with writer.open_for_append(path):
        before = path.read_bytes()
        for argv in argvs:
            with deadline(DEADLINE, " ".join(argv[:1])):
                code, out, err = run_cli(argv)
            assert code == 1 and err.count("\n") == 1 and str(path) in err and "another writer" in err, (argv, out, err)
        assert path.read_bytes() == before


# -- across processes ----------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys
    from qjournal import writer
    w = writer.open_for_append(sys.argv[1])
    w.append_hash(bytes(32), 42, 43)
    print("locked", flush=True)
    if sys.stdin.readline().strip() == "close":
        w.close()
        print("closed", flush=True)
        sys.stdin.readline()
    """
)


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "locked\n", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def test_lock_across_processes(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    proc = _holder(path)
    try:
        with deadline(DEADLINE, "a writer in another process"), pytest.raises(JournalLockedError, match="another writer"):
            writer.open_for_append(path)
        # a reader sees what the other process appended
        assert [as_hash(e).physical_sector for e in qjournal.read(path)] == [1, 42]
        assert proc.stdin and proc.stdout
        proc.stdin.write("close\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "closed\n"
        with writer.open_for_append(path) as w:  # released by close, while the process lives on
            w.append_hash(DIGEST, 7, 7)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_lock_released_when_the_holder_dies(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    proc = _holder(path)
    try:
        with pytest.raises(JournalLockedError):
            writer.open_for_append(path)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    with writer.open_for_append(path) as w:
        w.append_hash(DIGEST, 8, 8)
    assert [as_hash(e).physical_sector for e in qjournal.read(path)] == [1, 42, 8]


def test_cli_append_from_another_process_while_locked(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    with writer.open_for_append(path):
        run = subprocess.run(
            [sys.executable, "-m", "qjournal", "append", str(path), "--hash", DIGEST.hex(), "--physical", "1", "--logical", "2"],
            check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    if "invalid choice" in run.stderr:
        pytest.skip("the CLI has no append command yet")
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "another writer" in run.stderr, run


# -- reading never writes ------------------------------------------------------------


@pytest.mark.parametrize("vector", GOLDEN, ids=lambda p: p.stem)
def test_opening_read_only_never_modifies(vector: Path, tmp_path: Path) -> None:
    """Every golden vector, torn writes and dirty tails included: bytes and mtime unchanged by any read."""
    path = tmp_path / vector.name
    path.write_bytes(vector.read_bytes())
    os.utime(path, ns=(OLD_NS, OLD_NS))
    os.chmod(path, 0o444)  # a writable open would still work as root, so compare bytes too
    try:
        with qjournal.read(path) as r:
            try:
                list(r)
                r.state()
            except CorruptJournalError:
                pass
            r.check()
    except CorruptJournalError:
        pass
    for command in ("check", "info", "dump", "check --strict", "dump --all --hex"):
        run_cli([*command.split(), str(path)])
    st = path.stat()
    assert path.read_bytes() == vector.read_bytes()
    assert (st.st_mtime_ns, st.st_size) == (OLD_NS, vector.stat().st_size)
