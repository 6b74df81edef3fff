"""Hostile sizes and paths (issue 5): a clear JournalError, one line and exit 1 from the CLI, no hang.

Each case is run through the library (``qjournal.read`` then replay/check/state),
through ``qjournal check``, ``info`` and ``dump`` in this process, and the FIFO
and a huge ``--length`` also through a real ``python -m qjournal`` process. A
file that exists is never changed (bytes and mtime). The writer's side of these
cases (create / open-for-append must fail before writing) is at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import known
from test_fuzz import DEADLINE, build_journal, deadline, run_cli

import qjournal
from qjournal import CorruptJournalError, JournalError, JournalIOError, writer
from qjournal.cli.console import open_reader
from qjournal.durable import lock as durable_lock

OLD_NS = 1_000_000_000_000_000_000
CLI_COMMANDS = ("check", "info", "dump")


def _journal(tmp_path: Path, num_clusters: int = 2, name: str = "j.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(build_journal(7, num_clusters, 0.6))
    os.utime(path, ns=(OLD_NS, OLD_NS))
    return path


def _fingerprint(path: Path) -> tuple[bytes, int] | None:
    if not path.is_file():
        return None
    return path.read_bytes(), path.stat().st_mtime_ns


# Each case: (path, offset, length) from a tmp dir; the library error; a fragment of its message;
# the CLI exit code (1: I/O or argument error; 2: the area itself is invalid, D1).
Setup = Callable[[Path], tuple[Path, int, int | None]]


def _huge_length(t: Path) -> tuple[Path, int, int | None]:
    return _journal(t), 0, 1 << 60


def _length_past_eof(t: Path) -> tuple[Path, int, int | None]:
    return _journal(t), 4096, 8192


def _huge_offset(t: Path) -> tuple[Path, int, int | None]:
    return _journal(t), 1 << 62, None


def _offset_past_eof(t: Path) -> tuple[Path, int, int | None]:
    return _journal(t), 8193, 4096


def _offset_at_eof(t: Path) -> tuple[Path, int, int | None]:
    return _journal(t), 8192, None


def _directory(t: Path) -> tuple[Path, int, int | None]:
    (t / "dir").mkdir()
    return t / "dir", 0, None


def _symlink_to_directory(t: Path) -> tuple[Path, int, int | None]:
    (t / "dir").mkdir()
    (t / "link").symlink_to(t / "dir")
    return t / "link", 0, None


def _fifo(t: Path) -> tuple[Path, int, int | None]:
    os.mkfifo(t / "fifo")
    return t / "fifo", 0, None


def _dev_zero(t: Path) -> tuple[Path, int, int | None]:
    return Path("/dev/zero"), 0, 4096


def _symlink_loop(t: Path) -> tuple[Path, int, int | None]:
    (t / "loop").symlink_to(t / "loop")
    return t / "loop", 0, None


def _missing(t: Path) -> tuple[Path, int, int | None]:
    return t / "missing.bin", 0, None


def _empty(t: Path) -> tuple[Path, int, int | None]:
    (t / "empty.bin").write_bytes(b"")
    return t / "empty.bin", 0, None


def _odd_size(t: Path) -> tuple[Path, int, int | None]:
    path = _journal(t)
    with open(path, "ab") as f:
        f.write(b"\xff" * 100)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    return path, 0, None


CASES: dict[str, tuple[Setup, type[JournalError], str, int]] = {
    "huge --length": (_huge_length, JournalIOError, "shorter than offset + length", 1),
    "--length past the end": (_length_past_eof, JournalIOError, "shorter than offset + length", 1),
    "huge --offset": (_huge_offset, JournalIOError, "past the end of the file", 1),
    "--offset past the end": (_offset_past_eof, JournalIOError, "past the end of the file", 1),
    "--offset at the end": (_offset_at_eof, CorruptJournalError, "not a non-zero multiple of 4096", 2),
    "a directory": (_directory, JournalIOError, "is a directory", 1),
    "a symlink to a directory": (_symlink_to_directory, JournalIOError, "is a directory", 1),
    "a FIFO": (_fifo, JournalIOError, "not a regular file", 1),
    "/dev/zero": (_dev_zero, JournalIOError, "not a regular file", 1),
    "a missing file": (_missing, JournalIOError, "no such file", 1),
    "a symlink loop": (_symlink_loop, JournalIOError, "cannot stat", 1),
    "an empty file": (_empty, CorruptJournalError, "not a non-zero multiple of 4096", 2),
    "a file of 8292 bytes": (_odd_size, CorruptJournalError, "not a non-zero multiple of 4096", 2),
}


def _error_lines(err: str, *, hint: bool) -> str:
    """The one error line on stderr, checked; the hint line after it when ``hint`` (and none otherwise)."""
    lines = err.splitlines()
    assert err.endswith("\n") and lines[0].startswith("qjournal: "), err
    if hint:
        assert len(lines) == 2 and lines[1].startswith("qjournal: hint: ") and "--length" in lines[1], err
    else:
        assert len(lines) == 1, err
    return lines[0]


def _wants_hint(error: type[JournalError], length: int | None) -> bool:
    """An area length error when no length was given says how to address the area."""
    return error is CorruptJournalError and length is None


def _cli_args(path: Path, offset: int, length: int | None) -> list[str]:
    args = [str(path), "--offset", str(offset)]
    return args + (["--length", str(length)] if length is not None else [])


@pytest.mark.parametrize("case", list(CASES))
def test_library_refuses_with_a_journal_error(case: str, tmp_path: Path) -> None:
    setup, error, text, _ = CASES[case]
    path, offset, length = setup(tmp_path)
    before = _fingerprint(path)
    with deadline(DEADLINE, case), pytest.raises(error, match=re.escape(text)) as info:
        with qjournal.read(path, offset, length) as j:
            list(j)
    assert os.fsdecode(path) in str(info.value), "the error names the file"
    assert _fingerprint(path) == before, "refusing to read changed the file"


@pytest.mark.parametrize("command", CLI_COMMANDS)
@pytest.mark.parametrize("case", list(CASES))
def test_cli_one_line_and_exit_code(case: str, command: str, tmp_path: Path) -> None:
    setup, error, text, want = CASES[case]
    path, offset, length = setup(tmp_path)
    before = _fingerprint(path)
    with deadline(DEADLINE, f"qjournal {command} on {case}"):
        code, out, err = run_cli([command, *_cli_args(path, offset, length)])
    assert code == want, (out, err)
    assert _fingerprint(path) == before
    if command == "check" and want == 2:
        # check reports an invalid area as its finding, on stdout, exit 2
        assert "area_length" in out and os.fsdecode(path) in out and not err
        return
    assert out == "", (out, err)
    line = _error_lines(err, hint=_wants_hint(error, length))
    assert os.fsdecode(path) in line and text in line and "Traceback" not in err


@pytest.mark.parametrize("case", ["a FIFO", "huge --length", "a directory"])
def test_cli_process_does_not_hang(case: str, tmp_path: Path) -> None:
    """The real console entry point, as a process with a timeout: a FIFO must not block the open."""
    setup, _, text, want = CASES[case]
    path, offset, length = setup(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "qjournal", "check", *_cli_args(path, offset, length)],
        check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == want and run.stderr.count("\n") == 1 and text in run.stderr, run


def test_cli_rejects_a_length_that_is_not_an_area(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    for bad in ("5000", "0", "-4096", "1Q", "0x"):
        code, out, err = run_cli(["check", str(path), "--length", bad])
        assert code == 1 and out == "" and err.count("\n") == 1, (bad, out, err)


# -- a file that shrinks between open and read -----------------------------------


SHRINK_TO = [0, 100, 4096, 4097, 8192 + 4096]


@pytest.mark.parametrize("size", SHRINK_TO)
@pytest.mark.parametrize("op", ["replay", "check", "state"])
def test_file_shrinks_after_open(size: int, op: str, tmp_path: Path) -> None:
    """Truncated after the reader opened it and before it read: JournalIOError, never a wrong answer.

    Replay streams: when the file keeps every cluster replay visits (here the
    first three of four), it yields the same entries as before the shrink.
    """
    path = _journal(tmp_path, num_clusters=4)
    want = list(qjournal.read(path.read_bytes()))
    assert known(want[-1].ofs) > 8192, "replay must visit the third cluster"
    with deadline(DEADLINE, "shrunk file"), qjournal.read(path) as j:
        os.truncate(path, size)
        if op == "replay" and size >= 3 * 4096:
            assert list(j) == want
            return
        with pytest.raises(JournalIOError, match="short read") as info:
            if op == "replay":
                list(j)
            else:
                getattr(j, op)()
    e = info.value
    assert os.fsdecode(path) in str(e) and e.offset is not None and e.offset >= size
    assert path.stat().st_size == size, "the reader must not write the file back"


def test_shrinks_during_the_tail_scan(tmp_path: Path) -> None:
    """A long empty tail shrinking under the check: the 0xFF scan stops with a short read."""
    path = tmp_path / "big.bin"
    path.write_bytes(build_journal(1, 1, 0.5) + b"\xff" * (600 * 4096))
    with qjournal.read(path) as j:
        os.truncate(path, 300 * 4096 + 7)
        with pytest.raises(JournalIOError, match="short read"):
            j.check()


def test_file_object_shrinks_after_open() -> None:
    import io

    f = io.BytesIO(build_journal(3, 3, 0.9))
    with qjournal.read(f) as j:
        f.truncate(5000)
        with pytest.raises(JournalIOError, match="short read"):
            list(j)


@pytest.mark.parametrize("command", CLI_COMMANDS)
def test_cli_file_shrinks_after_open(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qjournal.cli import read

    path = _journal(tmp_path, num_clusters=3)
    real_open = open_reader  # the function read calls (imported from qjournal.cli.console)

    def open_then_shrink(args: object) -> qjournal.JournalReader:
        reader = real_open(args)  # type: ignore[arg-type]
        os.truncate(path, 4096 + 10)
        return reader

    monkeypatch.setattr(read, "open_reader", open_then_shrink)
    code, out, err = run_cli([command, str(path)])
    assert code == 1 and err.count("\n") == 1 and "short read" in err and str(path) in err, (out, err)


def test_in_memory_sizes() -> None:
    data = build_journal(5, 2, 0.5)
    with pytest.raises(JournalIOError, match="past the end"):
        qjournal.read(data, offset=len(data) + 1)
    with pytest.raises(JournalIOError, match="shorter than offset"):
        qjournal.read(data, length=1 << 62)
    with pytest.raises(CorruptJournalError, match="not a non-zero multiple"):
        qjournal.read(data, offset=len(data))


# -- the writer on the same hostile targets: refuse before writing anything --------


@pytest.mark.parametrize("case", list(CASES))
def test_writer_refuses_before_writing(case: str, tmp_path: Path) -> None:
    """open_for_append and create (force or not) on each hostile target: a JournalError, the file unchanged."""
    setup, _, _, _ = CASES[case]
    path, offset, length = setup(tmp_path)
    before = _fingerprint(path)
    existed = os.path.lexists(path)
    calls: dict[str, Callable[[], Any]] = {
        "open_for_append": lambda: writer.open_for_append(path, offset, length),
        "create": lambda: qjournal.create(path, offset=offset, length=length),
        "create(force=True)": lambda: qjournal.create(path, offset=offset, length=length, force=True),
        "reset": lambda: qjournal.reset(path, offset, length),
    }
    for name, call in calls.items():
        with deadline(DEADLINE, f"{name} on {case}"), pytest.raises(JournalError) as info:
            call().close()
        assert os.fsdecode(path) in str(info.value), (name, str(info.value))
        assert _fingerprint(path) == before, f"{name} on {case} changed the file"
        assert os.path.lexists(path) == existed, f"{name} on {case} created the file"


@pytest.mark.parametrize("case", list(CASES))
def test_cli_writes_refuse_before_writing(case: str, tmp_path: Path) -> None:
    setup, error, _, want = CASES[case]
    path, offset, length = setup(tmp_path)
    before = _fingerprint(path)
    argvs = [["append", *_cli_args(path, offset, length), "--hash", "11" * 32, "--physical", "1", "--logical", "2"]]
    if length is not None:
        argvs.append(["create", str(path), "--offset", str(offset), "--size", str(length), "--force"])
    argvs.append(["reset", *_cli_args(path, offset, length), "--yes"])
    for argv in argvs:
        with deadline(DEADLINE, f"qjournal {argv[0]} on {case}"):
            code, out, err = run_cli(argv)
        assert code == want and out == "", (argv, code, out, err)
        assert os.fsdecode(path) in _error_lines(err, hint=_wants_hint(error, length)), (argv, err)
        assert _fingerprint(path) == before, f"qjournal {argv[0]} on {case} changed the file"


def test_writer_file_shrinks_while_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Truncated after the writer opened (and locked) the file, before it read: JournalIOError, nothing written."""
    path = _journal(tmp_path, num_clusters=3)
    real_lock = durable_lock  # the function writer calls (imported from qjournal.durable)

    def lock_then_shrink(fd: Any, name: Any) -> Any:
        got = real_lock(fd, name)
        os.truncate(path, 4096 + 10)
        return got

    monkeypatch.setattr(writer, "lock", lock_then_shrink)
    with pytest.raises(JournalIOError, match="short read"):
        writer.open_for_append(path)
    assert path.stat().st_size == 4096 + 10


def test_writer_file_shrinks_after_open(tmp_path: Path) -> None:
    """Truncated under an open writer: the next append fails with a JournalError instead of writing past the new end.

    (It used to extend the file with a hole of zeros and report success: fixed in Area.write.)
    """
    path = _journal(tmp_path, num_clusters=4)
    with writer.open_for_append(path, durable=False) as w:
        os.truncate(path, 4096 + 10)
        with pytest.raises(JournalIOError, match="shrank"):
            for i in range(100):
                w.append_hash(bytes(32), i, i)
    assert path.stat().st_size == 4096 + 10, "the writer wrote past the end of the shrunk file"


def test_a_short_write_is_completed() -> None:
    """A raw file object that writes fewer bytes than asked: Area.write loops until every byte is written."""
    import io

    class Stingy(io.BytesIO):
        def write(self, b: Any) -> int:  # at most 7 bytes per call, like an interrupted write(2)
            return super().write(bytes(b[:7]))

    f = Stingy(b"\xff" * 8192)
    with writer.open_for_append(f) as w:
        w.append_many([qjournal.HashEntry(bytes(range(32)), 1, 2), qjournal.RawEntry(0x42, b"x" * 100)])
    assert [e.ofs for e in qjournal.read(f.getvalue())] == [0, 50]
    assert qjournal.read(f.getvalue()).check().problems[0].code == "unassigned_type"


def _limited_file_size() -> None:
    """preexec_fn: files of at most 16 MiB, EFBIG instead of SIGXFSZ, so a regression cannot fill the disk."""
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 24, 1 << 24))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


HUGE_CREATE = textwrap.dedent(
    """
    import os, sys
    import qjournal
    from qjournal import JournalError
    path, offset = sys.argv[1], int(sys.argv[2])
    try:
        qjournal.create(path, 2**40, offset=offset).close()
        print("created")
    except JournalError as exc:
        print(type(exc).__name__, exc)
    """
)


@pytest.mark.parametrize("offset", [0, 4096])
def test_create_a_huge_area_refuses_before_writing(offset: int, tmp_path: Path) -> None:
    """2**40 clusters (4 PiB): refused up front for want of space, not written until the disk is full.

    Run in a process limited to 16 MiB files, so that a regression fails fast instead of filling the disk.
    """
    path = tmp_path / "huge.qjournal"
    if offset:
        path.write_bytes(b"\x00" * offset)  # an image that ends where the area would start
    run = subprocess.run(
        [sys.executable, "-c", HUGE_CREATE, str(path), str(offset)],
        check=False, capture_output=True, text=True, timeout=60, preexec_fn=_limited_file_size,
    )
    assert run.stdout.startswith("JournalIOError") and "nothing written" in run.stdout and str(path) in run.stdout, run
    assert os.path.exists(path) == bool(offset) and (not offset or path.read_bytes() == b"\x00" * offset)


def test_cli_create_a_huge_area(tmp_path: Path) -> None:
    path = tmp_path / "huge.qjournal"
    run = subprocess.run(
        [sys.executable, "-m", "qjournal", "create", str(path), "--size", "1E"],
        check=False, capture_output=True, text=True, timeout=60, preexec_fn=_limited_file_size, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "nothing written" in run.stderr, run
    assert not path.exists()


def test_create_a_huge_area_in_memory() -> None:
    buf = bytearray(b"header")
    for n in (2**40, 2**60):
        with pytest.raises(qjournal.JournalArgumentError, match="does not fit in memory"):
            qjournal.create(buf, n, offset=len(buf), unaligned_offset=True)
    assert buf == b"header"
