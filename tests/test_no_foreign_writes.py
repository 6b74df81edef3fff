"""No write destroys a byte that the writer did not write (issue 10).

Each case starts from a file of random bytes (an "image") or a journal followed by other data, runs a
write command the way a user slips (no ``--length``, an offset one cluster off, a journal with data
after it), and compares every byte of the file before and after: a refusal writes nothing, a write
changes only the bytes it was asked to. Then the faults that fault injection found, each reproduced:
an acknowledged append lost by the old tail search, a file opened in append mode, a file truncated
while written, a buffer resized under a reader, a NUL byte in a path, a text-mode file object, short
writes and an interrupted create, a free-space check through a symbolic link, JSON nested too deep.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_cli import SUBPROCESS_ENV, Ran

import qjournal
from qjournal import (
    CorruptJournalError,
    ForeignDataError,
    HashEntry,
    JournalArgumentError,
    JournalIOError,
    RawEntry,
)
from qjournal import making as making_mod
from qjournal.area import write_all as area_write_all

CLUSTER = 4096
MIB = 1 << 20
DIGEST = "ab" * 32
DEADLINE = 20


def run(*args: str, stdin: bytes | None = None) -> Ran:
    """``python -m qjournal ARGS``: a real process, as a user runs it."""
    proc = Ran(subprocess.run(
        [sys.executable, "-m", "qjournal", *args], input=stdin, check=False, capture_output=True, env=SUBPROCESS_ENV, timeout=60
    ))
    assert "Traceback" not in proc.err and "internal error" not in proc.err, proc.err
    return proc


def error_line(proc: Ran, *, hint: bool = False) -> str:
    """The one error line (and, when ``hint``, the hint line after it); nothing on stdout."""
    lines = proc.err.splitlines()
    assert proc.out == "" and lines and lines[0].startswith("qjournal: "), proc.err
    assert len(lines) == (2 if hint else 1), proc.err
    if hint:
        assert lines[1].startswith("qjournal: hint: "), proc.err
    return "\n".join(lines)


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, bytes]:
    """A 4 MiB image of random bytes with a journal of 16 clusters (64 KiB) at 1 MiB holding one entry."""
    path = tmp_path / "img.bin"
    path.write_bytes(random.Random(1).randbytes(4 * MIB))
    assert run("create", str(path), "--offset", "1M", "--length", "64K", "--force").returncode == 0
    proc = run("append", str(path), "--offset", "1M", "--length", "64K", "--hash", DIGEST, "--physical", "1",
               "--logical", "2")
    assert proc.returncode == 0, proc.err
    return path, path.read_bytes()


def changed(before: bytes, after: bytes) -> list[int]:
    assert len(before) == len(after)
    return [i for i in range(len(before)) if before[i] != after[i]]


# -- the slips of the issue, through the command line ---------------------------------------------


def test_append_without_length_inside_an_image_is_refused(image: tuple[Path, bytes]) -> None:
    path, before = image
    proc = run("append", str(path), "--offset", "1M", "--hash", DIGEST, "--physical", "3", "--logical", "4")
    assert proc.returncode == 1
    line = error_line(proc)
    assert "offset (0x100000) but no length" in line and "--length" in line and "nothing was written" in line
    assert path.read_bytes() == before
    batch = json.dumps(HashEntry(bytes(32), 5, 6).to_dict()) + "\n"
    proc = run("append", str(path), "--offset", "1M", stdin=batch.encode())  # the batch append too
    assert proc.returncode == 1 and "--length" in error_line(proc)
    assert path.read_bytes() == before
    # given the length, the append writes the entry's 50 bytes and nothing else
    proc = run("append", str(path), "--offset", "1M", "--length", "64K", "--hash", DIGEST, "--physical", "3",
               "--logical", "4")
    assert proc.returncode == 0, proc.err
    diff = changed(before, path.read_bytes())
    assert diff and diff[0] >= MIB + 50 and diff[-1] < MIB + 100


def test_reset_without_length_inside_an_image_is_refused(image: tuple[Path, bytes]) -> None:
    path, before = image
    proc = run("reset", str(path), "--offset", "1M", "--yes")
    assert proc.returncode == 1
    line = error_line(proc)
    assert "without a length would erase every byte from offset 0x100000 to the end of the file" in line
    assert "--length" in line and "nothing was written" in line
    assert path.read_bytes() == before
    proc = run("reset", str(path), "--offset", "1M", "--length", "64K", "--yes")
    assert proc.returncode == 0, proc.err
    assert proc.out == f"{path}: reset: the area of 65536 bytes at file offsets 0x100000-0x10ffff is all 0xFF (an empty journal)\n"
    after = path.read_bytes()
    assert after[:MIB] == before[:MIB] and after[MIB + 64 * 1024 :] == before[MIB + 64 * 1024 :]
    assert after[MIB : MIB + 64 * 1024] == b"\xff" * (64 * 1024)


def test_reset_of_a_whole_image_by_a_forgotten_offset_is_refused(image: tuple[Path, bytes]) -> None:
    path, before = image
    proc = run("reset", str(path), "--yes")  # --offset forgotten: the area would be the whole image
    assert proc.returncode == 1
    assert "without a length would erase the whole file" in error_line(proc) and "holds no journal" in proc.err
    assert path.read_bytes() == before
    proc = run("create", str(path), "--force")
    assert proc.returncode == 1 and "--force without a length" in error_line(proc)
    assert path.read_bytes() == before


def test_an_offset_one_cluster_off(image: tuple[Path, bytes]) -> None:
    path, before = image
    # one cluster too far: the area's last cluster is the image's data after the journal
    proc = run("append", str(path), "--offset", str(MIB + CLUSTER), "--length", "64K", "--hash", DIGEST,
               "--physical", "3", "--logical", "4")
    assert proc.returncode == 1
    line = error_line(proc)
    assert "not what an interrupted append leaves" in line and "--erase-foreign-data" in line
    assert "offset 0xf000 (61440) of the area, file offset 0x110000" in line and "past the tail at 0x0 (0xf000 to 0xffff, in 1 cluster)" in line
    assert path.read_bytes() == before
    # one cluster too near: the area starts with the image's data, which is no journal
    proc = run("append", str(path), "--offset", str(MIB - CLUSTER), "--length", "64K", "--hash", DIGEST,
               "--physical", "3", "--logical", "4")
    assert proc.returncode == 2
    text = error_line(proc, hint=True)
    assert "does not look like a journal" in text and "--offset, --length; both in bytes" in text
    assert path.read_bytes() == before
    proc = run("check", str(path), "--offset", str(MIB - CLUSTER), "--length", "64K")
    assert proc.returncode == 2 and "does not look like a journal" in proc.out


def test_a_journal_followed_by_other_data(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    assert run("create", str(path), "--clusters", "4").returncode == 0
    assert run("append", str(path), "--hash", DIGEST, "--physical", "1", "--logical", "2").returncode == 0
    with open(path, "ab") as f:
        f.write(random.Random(2).randbytes(MIB))
    before = path.read_bytes()
    proc = run("append", str(path), "--hash", DIGEST, "--physical", "3", "--logical", "4")
    assert proc.returncode == 1
    line = error_line(proc)
    assert f"{MIB} bytes" not in line  # a random MiB holds some 0xFF bytes: the count is of the others
    assert "past the tail at 0x32" in line and "in 256 clusters" in line and "nothing was written" in line
    assert path.read_bytes() == before
    proc = run("append", str(path), stdin=(json.dumps(HashEntry(bytes(32), 5, 6).to_dict()) + "\n").encode())
    assert proc.returncode == 1 and "not what an interrupted append leaves" in error_line(proc)
    for argv in (["reset", str(path), "--yes"], ["create", str(path), "--force"]):
        proc = run(*argv)
        assert proc.returncode == 1 and "past its journal's tail at 0x32" in error_line(proc), argv
    assert path.read_bytes() == before
    # for the user who has looked: the opt-in erases what lies past the tail, and only there
    proc = run("append", str(path), "--hash", DIGEST, "--physical", "3", "--logical", "4", "--erase-foreign-data")
    assert proc.returncode == 0, proc.err
    after = path.read_bytes()
    assert after[:0x32] == before[:0x32] and after[0x64:] == b"\xff" * (len(after) - 0x64)


def test_pack_into_an_area_without_its_length(image: tuple[Path, bytes], tmp_path: Path) -> None:
    path, before = image
    src = tmp_path / "src.qjournal"
    assert run("create", str(src), "--clusters", "1").returncode == 0
    proc = run("pack", str(src), str(path), "--dst-offset", "1M", "--force")
    assert proc.returncode == 1 and "--length" in error_line(proc)
    assert path.read_bytes() == before


# -- the library does the same ------------------------------------------------------------------------


def test_library_open_at_an_offset_without_length(tmp_path: Path) -> None:
    path = tmp_path / "img"
    head = random.Random(3).randbytes(3 * CLUSTER)
    area = bytearray(b"\xff" * (2 * CLUSTER))
    path.write_bytes(head + area)
    with qjournal.create(path, offset=len(head), length=2 * CLUSTER) as w:
        w.append_hash(bytes(32), 1, 2)
    with qjournal.open_for_append(path, len(head)) as w:  # the rest of the file is the journal: fine
        w.append_hash(bytes(32), 3, 4)
    with open(path, "ab") as f:
        f.write(b"\x00" * CLUSTER)  # now other data follows the journal
    before = path.read_bytes()
    with pytest.raises(JournalArgumentError) as info:
        qjournal.open_for_append(path, len(head))
    assert "but no length" in str(info.value) and "length=" in str(info.value)
    with pytest.raises(JournalArgumentError, match="without a length"):
        qjournal.reset(path, len(head))
    with pytest.raises(JournalArgumentError, match="without a length"):
        qjournal.create(path, offset=len(head), force=True)
    assert path.read_bytes() == before
    with qjournal.open_for_append(path, len(head), 2 * CLUSTER) as w:
        assert w.state().num_entries == 2


# -- the faults found by fault injection ------------------------------------------------------------------


def test_an_acknowledged_append_survives_a_batch_interrupted_across_many_clusters() -> None:
    """The old tail search, after a batch over more than its window was cut before its commit byte, placed the
    next append after the uncommitted clusters: acknowledged, then erased. The open now always replays."""
    base = bytearray()
    with qjournal.create(base, 12) as w:
        w.append_hash(b"\x01" * 32, 1, 1)
    full = bytearray(base)
    with qjournal.open_for_append(full) as w:
        w.append_many([RawEntry(0x03, bytes([i % 256]) * 252) for i in range(16 * 6)])  # six clusters and more
    crashed = bytearray(full)
    crashed[0x32 + 1] = 0xFF  # every byte of the batch landed but its commit byte
    with pytest.warns(DeprecationWarning):
        w = qjournal.open_for_append(crashed, validate=False)
    with w:
        assert w.ofs_tail == 0x32
        acknowledged = w.append_hash(b"\x02" * 32, 2, 2)
    with qjournal.open_for_append(crashed) as w:
        assert w.ofs_tail == 0x64
    assert list(qjournal.read(bytes(crashed))) == [HashEntry(b"\x01" * 32, 1, 1, 0), acknowledged]


@pytest.mark.parametrize("mode", ["a+b", "ab"])
def test_a_file_object_in_append_mode_is_refused(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 1):
        pass
    before = path.read_bytes()
    with open(path, mode) as f:
        with pytest.raises(JournalArgumentError, match="append mode"):
            qjournal.open_for_append(f)  # type: ignore[arg-type]  # open() with a mode of type str: IO[Any], not BinaryIO
        with pytest.raises(JournalArgumentError, match="append mode"):
            qjournal.create(f, force=True)  # type: ignore[arg-type]  # (the same)
        with pytest.raises(JournalArgumentError, match="append mode"):
            qjournal.reset(f)  # type: ignore[arg-type]  # (the same)
    assert path.read_bytes() == before
    fd = os.open(path, os.O_RDWR | os.O_APPEND)  # append mode set on the descriptor, under a mode string "rb+"
    with open(fd, "r+b", buffering=0) as f, pytest.raises(JournalArgumentError, match="append mode"):
        qjournal.open_for_append(f)
    assert path.read_bytes() == before


def test_a_text_mode_file_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 1):
        pass
    with open(path, "r+", encoding="latin-1") as f:
        for call in (lambda: qjournal.read(f), lambda: qjournal.create(f, force=True),  # type: ignore[arg-type]  # text mode, on purpose
                     lambda: qjournal.open_for_append(f)):  # type: ignore[arg-type]  # (the same)
            with pytest.raises(JournalArgumentError, match="text mode"):
                call()
    assert path.read_bytes() == b"\xff" * CLUSTER


class TruncatedWhileWritten(io.FileIO):
    """A file that another process truncates between the writer's size check and its write."""

    cut_to: int | None = None

    def write(self, b: Any) -> int:
        if self.cut_to is not None:
            os.truncate(self.name, self.cut_to)
            self.cut_to = None
        return super().write(b)


def test_a_file_truncated_while_written_is_reported_truthfully(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 2) as w:
        w.append_hash(bytes(32), 1, 2)
    f = TruncatedWhileWritten(path, "r+b")
    try:
        with qjournal.open_for_append(f) as w:
            f.cut_to = 10
            with pytest.raises(JournalIOError) as info:
                w.append_hash(b"\x07" * 32, 3, 4)
    finally:
        f.close()
    text = str(info.value)
    assert "truncated while it was written" in text and "now ends at" in text and "bytes were written at file offset" in text
    assert "nothing" not in text  # something was written, and the message does not say otherwise


def test_a_buffer_cannot_be_resized_under_a_reader() -> None:
    b = bytearray(b"\xff" * (3 * CLUSTER))
    r = qjournal.read(b)
    with pytest.raises(BufferError):
        del b[CLUSTER:]
    with pytest.raises(BufferError):
        b.clear()
    t0 = time.monotonic()
    assert r.check().state is not None and time.monotonic() - t0 < DEADLINE
    r.close()
    del b[CLUSTER:]  # released on close
    mv = memoryview(bytearray(b"\xff" * CLUSTER))
    with qjournal.read(mv) as r2:
        assert r2.state().ofs_tail == 0
    qjournal.read(b).check()  # without ``with``: the reader lets go when it is collected
    b.clear()


@pytest.mark.parametrize("call", ["read", "open_for_append", "reset", "create", "pack source", "pack target"])
def test_a_nul_byte_in_a_path(call: str, tmp_path: Path) -> None:
    bad = str(tmp_path / "a\x00b")
    good = tmp_path / "ok.qjournal"
    with qjournal.create(good, 1):
        pass
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: qjournal.read(bad),
        "open_for_append": lambda: qjournal.open_for_append(bad),
        "reset": lambda: qjournal.reset(bad),
        "create": lambda: qjournal.create(bad, 1),
        "pack source": lambda: qjournal.pack(bad, tmp_path / "out.qjournal"),
        "pack target": lambda: qjournal.pack(good, bad),
    }
    with pytest.raises(JournalArgumentError, match="NUL byte"):
        calls[call]()


def test_a_nul_byte_in_a_path_on_the_command_line(tmp_path: Path) -> None:
    from test_fuzz import run_cli

    code, out, err = run_cli(["info", str(tmp_path / "a\x00b")])
    assert code == 1 and out == "" and "NUL byte" in err and err.count("\n") == 1


class ShortWrites(io.FileIO):
    """A file that writes at most 1000 bytes per call, as a raw file may."""

    def write(self, b: Any) -> int:
        return super().write(memoryview(b)[:1000])


def test_create_completes_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr("qjournal.making.os.fdopen", lambda fd, *a, **k: ShortWrites(fd, "r+b", closefd=True))
    path = tmp_path / "j.bin"
    with qjournal.create(path, 3) as w:
        w.append_hash(bytes(32), 1, 2)
    monkeypatch.setattr("qjournal.making.os.fdopen", real_fdopen)
    assert path.stat().st_size == 3 * CLUSTER
    assert qjournal.read(path).state().num_entries == 1


def test_create_is_all_or_nothing_when_cut_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.bin"
    calls = []
    real = area_write_all  # the function making calls (imported from qjournal.area)

    def failing(f: Any, data: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C, mid-way
        real(f, data)

    monkeypatch.setattr(making_mod, "write_all", failing)
    with pytest.raises(KeyboardInterrupt):
        qjournal.create(path, 1024)  # 4 MiB: four chunks
    monkeypatch.undo()
    assert not path.exists() and not list(tmp_path.iterdir()), "a cut-short create left a file behind"
    with qjournal.create(path, 1024):
        pass
    assert path.stat().st_size == 4 * MIB


def test_create_killed_leaves_no_journal(tmp_path: Path) -> None:
    """A real SIGKILL part-way: no file under the journal's name, no debris where O_TMPFILE works, and a re-run works."""
    path = tmp_path / "j.bin"
    code = (
        "import time, qjournal, qjournal.making as w\n"
        "real = w.write_all\n"
        "def slow(f, d):\n"
        "    real(f, d); print('wrote', flush=True); time.sleep(0.2)\n"
        "w.write_all = slow\n"
        f"qjournal.create({str(path)!r}, 4096)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=SUBPROCESS_ENV)
    assert proc.stdout is not None
    proc.stdout.readline()  # one chunk written
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not path.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(n.startswith(".qjournal-") and n.endswith(".tmp") for n in leftovers), leftovers
    try:
        os.close(os.open(tmp_path, os.O_TMPFILE | os.O_RDWR, 0o600))
    except OSError:  # a file system without unnamed files: the hidden temporary file may stay
        pass
    else:
        assert leftovers == [], "a killed create left debris though the file system has O_TMPFILE"
    with qjournal.create(path, 4):
        pass
    assert qjournal.read(path).state().len_area == 4 * CLUSTER


def test_free_space_is_checked_where_a_symlink_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_dir, link_dir = tmp_path / "big", tmp_path / "links"
    real_dir.mkdir()
    link_dir.symlink_to(real_dir)  # the journal's directory is a link: its file system is where the link points
    link = link_dir / "j.bin"
    asked: list[str] = []
    real_statvfs = os.statvfs

    def statvfs(p: Any) -> Any:
        asked.append(os.fspath(p))
        return real_statvfs(p)

    monkeypatch.setattr("qjournal.making.os.statvfs", statvfs)
    with qjournal.create(link, 2):
        pass
    assert asked == [str(real_dir)]
    assert (real_dir / "j.bin").stat().st_size == 2 * CLUSTER and link.resolve() == real_dir / "j.bin"


def test_create_refuses_more_than_the_target_file_system_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Full:
        f_bavail, f_frsize = 1, 4096

    monkeypatch.setattr("qjournal.making.os.statvfs", lambda p: Full())
    with pytest.raises(JournalIOError, match="file system has 4096 bytes free; nothing written"):
        qjournal.create(tmp_path / "j.bin", 2)
    assert not list(tmp_path.iterdir())


def test_json_nested_too_deep_is_a_line_error(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 1):
        pass
    proc = run("append", str(path), stdin=b"[" * 2000 + b"]" * 2000 + b"\n")
    assert proc.returncode == 1
    line = error_line(proc)
    assert "line 1:" in line and "nested too deeply" in line and "nothing was written" in line
    assert path.read_bytes() == b"\xff" * CLUSTER
    # deeper is longer than any entry's line: refused before it is parsed, or even read whole
    proc = run("append", str(path), stdin=b"[" * 100_000 + b"]" * 100_000 + b"\n")
    assert proc.returncode == 1
    assert "line 1: longer than 4096 bytes" in error_line(proc)
    assert path.read_bytes() == b"\xff" * CLUSTER


def test_deprecated_validate_false_still_validates(tmp_path: Path) -> None:
    data = bytearray((Path(__file__).parent / "vectors" / "corrupt_end_misaligned.bin").read_bytes())
    with pytest.raises(CorruptJournalError), pytest.warns(DeprecationWarning, match="validate=False is ignored"):
        qjournal.open_for_append(data, validate=False)
    with pytest.raises(ForeignDataError):  # nor does it erase what the full open refuses
        buf = bytearray(b"\xff" * 2 * CLUSTER)
        buf[CLUSTER] = 0
        with pytest.warns(DeprecationWarning, match="validate=False is ignored"):
            qjournal.open_for_append(buf, validate=False)


def test_index_force_judges_its_target_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """D24 has one home (qjournal.durable.check_whole_rest): index --force replays the journal it replaces once, not twice."""
    from qjournal.reader import JournalReader

    image = tmp_path / "disk.raw"
    image.write_bytes(random.Random(4).randbytes(8 * 4096))
    journal = tmp_path / "j.qjournal"
    qjournal.indexing.index(image, journal, block_size=4096)
    real = JournalReader.state
    calls: list[int] = []

    def counted(self: JournalReader, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(JournalReader, "state", counted)
    report = qjournal.indexing.index(image, journal, block_size=4096, force=True)
    assert len(calls) == 1 and report.num_unique == 8
    with open(journal, "r+b") as f:  # someone's bytes past the journal's tail: refused, judged once
        f.seek(3000)
        f.write(b"data")
    calls.clear()
    with pytest.raises(JournalArgumentError, match="past its journal's tail"):
        qjournal.indexing.index(image, journal, block_size=4096, force=True)
    assert len(calls) == 1
