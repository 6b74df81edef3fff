"""The edges of the write path: offsets off the grid, doors the lock does not close, new files, sync failures, spills.

Each test reproduces a way the write side once lost data or told less than the truth, and fails on the code before
its fix: an offset one entry off, a second writer through another descriptor or a loop device, pack onto a loop
device over its own source, a journal that appears under its name before it is complete, a mode that ignores the
umask, a dangling link, /dev/null, a committed batch reported as a plain failure, a full spill folder, debris.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import as_hash
from test_cli import call, one_error_line

import qjournal
from qjournal import durable, live
from qjournal import indexing as index_mod
from qjournal.area import Area
from qjournal.entries import encode_hash
from qjournal.errors import JournalArgumentError, JournalIOError, JournalLockedError
from qjournal.writer import JournalWriter

CLUSTER = 4096
MIB = 1 << 20


def digest(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


def make_journal(path: Path, n: int, clusters: int = 16, offset: int = 0) -> None:
    """A journal of ``n`` HASH entries at ``offset`` of ``path`` (the file ends at the offset before)."""
    with qjournal.create(path, clusters, offset=offset) as w:
        w.append_many([qjournal.HashEntry(digest(i), i, i) for i in range(n)])


# -- an offset one entry off -----------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path) -> Path:
    """1 MiB of other data, then a 64 KiB journal of 3 entries at 1 MiB (as in the attack)."""
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(MIB))
    make_journal(path, 3, clusters=16, offset=MIB)
    return path


def test_an_offset_off_the_512_grid_is_refused_and_the_journal_below_named(embedded: Path) -> None:
    before = embedded.read_bytes()
    with pytest.raises(JournalArgumentError) as info:
        qjournal.open_for_append(embedded, MIB + 50, 64 * 1024 - 4096)
    text = str(info.value)
    assert "not a multiple of 512" in text and "the likely offset is 0x100000" in text
    assert "unaligned_offset=True" in text
    for call_write in (
        lambda: qjournal.create(embedded, offset=MIB + 50, length=CLUSTER, force=True),
        lambda: qjournal.reset(embedded, MIB + 50, CLUSTER),
        lambda: qjournal.pack(embedded, embedded, source_offset=MIB, source_length=64 * 1024, target_offset=50,
                              target_length=CLUSTER, force=True),
    ):
        with pytest.raises(JournalArgumentError, match="not a multiple of 512"):
            call_write()
    assert embedded.read_bytes() == before


def test_an_aligned_offset_that_cuts_a_journals_cluster_grid_is_refused(embedded: Path) -> None:
    before = embedded.read_bytes()
    with pytest.raises(JournalArgumentError, match="cut its cluster grid: the likely offset is 0x100000"):
        qjournal.create(embedded, offset=MIB + 1024, length=CLUSTER, force=True)
    assert embedded.read_bytes() == before
    with qjournal.open_for_append(embedded, MIB, 64 * 1024) as w:  # entries into the journal's second cluster
        while w.ofs_tail < CLUSTER + 200:
            w.append_hash(digest(w.ofs_tail), 1, 1)
    before = embedded.read_bytes()
    with pytest.raises(JournalArgumentError, match="likely offset is 0x101000"):  # a cluster of it, on its grid
        qjournal.create(embedded, offset=MIB + CLUSTER + 512, length=CLUSTER, force=True)
    assert embedded.read_bytes() == before


def test_unaligned_offset_is_the_users_explicit_leave(tmp_path: Path) -> None:
    path = tmp_path / "odd"
    path.write_bytes(b"\x00" * 1000)
    with qjournal.create(path, 1, offset=1000, unaligned_offset=True) as w:
        w.append_hash(digest(1), 1, 1)
    with qjournal.open_for_append(path, 1000, unaligned_offset=True) as w:
        assert w.state().num_entries == 1


def test_the_cli_refuses_an_unaligned_offset_unless_told(capsys: pytest.CaptureFixture[str], embedded: Path) -> None:
    before = embedded.read_bytes()
    code, _, err = call(capsys, "append", str(embedded), "--offset", str(MIB + 50), "--length", "60K",
                        "--hash", "ab" * 32, "--physical", "1", "--logical", "1")
    assert code == 1 and "the likely offset is 0x100000" in one_error_line(err) and "--unaligned-offset" in err
    assert embedded.read_bytes() == before
    for argv in (["reset", str(embedded), "--offset", str(MIB + 50), "--length", "4K", "--yes"],
                 ["create", str(embedded), "--offset", str(MIB + 50), "--length", "4K", "--force"]):
        code, _, err = call(capsys, *argv)
        assert code == 1 and "not a multiple of 512" in err, err
    code, _, err = call(capsys, "create", str(tmp := embedded.with_name("odd")), "--clusters", "1")
    assert code == 0, err
    with tmp.open("r+b") as f:
        f.truncate(100)
    code, _, err = call(capsys, "create", str(tmp), "--offset", "100", "--clusters", "1", "--unaligned-offset")
    assert code == 0, err


# -- doors the lock does not close ------------------------------------------------------------------


def test_a_writer_through_another_descriptor_is_caught_before_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "j"
    make_journal(path, 2)
    with qjournal.open_for_append(path) as w:
        tail = w.ofs_tail
        foreign = encode_hash(digest(99), 9, 9)
        fd = os.open(path, os.O_WRONLY)  # a writer that takes no lock (or writes through a loop device)
        try:
            os.pwrite(fd, foreign, tail)
        finally:
            os.close(fd)
        with pytest.raises(JournalLockedError, match="another writer appended to this journal meanwhile"):
            w.append_hash(digest(3), 3, 3)
    assert path.read_bytes()[tail : tail + len(foreign)] == foreign  # the other writer's entry is never erased
    assert [as_hash(e).digest for e in qjournal.read(path).replay()][-1] == digest(99)


@contextlib.contextmanager
def loop_device(path: Path) -> Iterator[str]:
    if shutil.which("losetup") is None:
        pytest.skip("no losetup")
    proc = subprocess.run(["losetup", "-f", "--show", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"losetup does not work here: {proc.stderr.strip()}")
    dev = proc.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_a_loop_device_and_its_backing_file_are_one_door(tmp_path: Path) -> None:
    path = tmp_path / "j"
    make_journal(path, 2)
    with loop_device(path) as dev:
        with qjournal.open_for_append(path), pytest.raises(JournalLockedError):
            qjournal.open_for_append(dev)
        with qjournal.open_for_append(dev), pytest.raises(JournalLockedError, match=r"backing file|another writer"):
            qjournal.open_for_append(path)
        with qjournal.open_for_append(dev) as w:  # and the lock goes with the writer
            w.append_hash(digest(7), 7, 7)
    assert len(list(qjournal.read(path).replay())) == 3


def test_pack_onto_a_loop_device_over_its_source_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "j"
    make_journal(path, 5)
    before = path.read_bytes()
    with loop_device(path) as dev:
        code, _, err = call(capsys, "pack", str(path), dev, "--force")
        assert code == 1 and "overlaps the source area" in err, err
    assert path.read_bytes() == before


def test_one_file_is_told_through_links_and_loop_devices(tmp_path: Path) -> None:
    from qjournal.area import is_same_file

    path, other = tmp_path / "j", tmp_path / "other"
    make_journal(path, 2)
    make_journal(other, 2)
    (tmp_path / "sym").symlink_to(path)
    os.link(path, tmp_path / "hard")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert is_same_file(path, fd) and is_same_file(tmp_path / "sym", fd) and is_same_file(tmp_path / "hard", fd)
        assert not is_same_file(other, fd) and not is_same_file(tmp_path / "missing", fd)
        with loop_device(path) as dev:
            assert is_same_file(dev, fd)  # the loop device is resolved to its backing file
    finally:
        os.close(fd)


# -- new files: whole or nothing, the umask's mode, no dangling link, no /dev/null -----------------


def test_pack_names_its_new_target_only_when_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_journal(src, 50)
    real = JournalWriter.append_stream
    seen: list[bool] = []

    def append_stream(self: JournalWriter, entries: Any) -> int:
        seen.append(dst.exists())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JournalWriter, "append_stream", append_stream)
    with pytest.raises(OSError):
        qjournal.pack(src, dst)
    assert seen == [False] and not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    monkeypatch.setattr(JournalWriter, "append_stream", real)
    assert qjournal.pack(src, dst).num_live == 50


def raw_image(path: Path, blocks: int) -> Path:
    path.write_bytes(b"".join(bytes([i + 1]) * 65536 for i in range(blocks)))
    return path


def test_index_names_its_new_journal_only_when_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img, journal = raw_image(tmp_path / "disk.raw", 4), tmp_path / "disk.qjournal"

    def append_encoded(self: JournalWriter, entries: Any) -> Any:
        assert not journal.exists()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JournalWriter, "append_encoded", append_encoded)
    with pytest.raises(OSError):
        index_mod.index(img, journal)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw"]  # no journal, no debris
    monkeypatch.undo()
    assert index_mod.index(img, journal).num_unique == 4 and len(list(qjournal.read(journal).replay())) == 1 + 4  # the metadata entry (D30), the HASH entries


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_files_honour_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        with qjournal.create(tmp_path / "c", 1):
            pass
        qjournal.pack(tmp_path / "c", tmp_path / "p")
        index_mod.index(raw_image(tmp_path / "disk.raw", 1), tmp_path / "i")
    finally:
        os.umask(old)
    for name in ("c", "p", "i"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


def test_a_new_file_is_unnamed_until_linked(tmp_path: Path) -> None:
    """Written unnamed (O_TMPFILE where the file system has it): a kill before the link leaves nothing."""
    made = durable.NewFile(tmp_path / "j", "j")
    try:
        made.file.write(b"\xff" * CLUSTER)
        if made.tmp is None:
            assert list(tmp_path.iterdir()) == []
        made.link()
        assert [p.name for p in tmp_path.iterdir()] == ["j"] and (tmp_path / "j").stat().st_size == CLUSTER
    finally:
        made.file.close()
        made.discard()


def test_creating_through_a_dangling_link_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "j"
    link.symlink_to(tmp_path / "elsewhere" / "j")
    with pytest.raises(JournalArgumentError, match="dangling link"):
        qjournal.create(link, 1)
    assert not (tmp_path / "elsewhere").exists() and link.is_symlink()


def test_a_failed_directory_sync_after_linking_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(JournalIOError, match=r"its directory .* could not be synced"):
        qjournal.create(tmp_path / "j", 1)


def test_dev_null_is_refused_as_a_journal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(JournalArgumentError, match="character device"):
        qjournal.create("/dev/null", 1)
    with pytest.raises(JournalArgumentError, match="character device"):
        index_mod.index(raw_image(tmp_path / "disk.raw", 1), "/dev/null")
    code, _, err = call(capsys, "index", str(tmp_path / "disk.raw"), "/dev/null")
    assert code == 1 and "character device" in err and "already exists" not in err, err


def test_index_refuses_a_journal_it_cannot_write_before_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def scan(*a: Any, **k: Any) -> Any:
        raise AssertionError("the image was hashed before the journal's path was checked")

    monkeypatch.setattr(index_mod, "_scan", scan)
    with pytest.raises(JournalIOError, match="does not exist"):
        index_mod.index(raw_image(tmp_path / "disk.raw", 1), tmp_path / "missing" / "j")


def test_index_force_beside_an_append_is_refused_as_locked(tmp_path: Path) -> None:
    journal = tmp_path / "j"
    make_journal(journal, 2)
    with qjournal.open_for_append(journal), pytest.raises(JournalLockedError):
        index_mod.index(raw_image(tmp_path / "disk.raw", 1), journal, force=True)


# -- pack beside an append ------------------------------------------------------------------------


def test_pack_holds_the_sources_lock_while_it_reads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_journal(src, 5)
    with qjournal.open_for_append(src), pytest.raises(JournalLockedError):
        qjournal.pack(src, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()
    with qjournal.open_for_append(src) as w:  # the lock goes with pack
        pass
    assert qjournal.pack(src, tmp_path / "dst").num_live == 5 and w.name


def test_pack_into_another_area_of_its_own_file_still_works(tmp_path: Path) -> None:
    path = tmp_path / "j"
    make_journal(path, 5, clusters=2)
    with path.open("ab") as f:
        f.write(b"\xff" * 2 * CLUSTER)
    report = qjournal.pack(path, path, source_length=2 * CLUSTER, target_offset=2 * CLUSTER, target_length=2 * CLUSTER)
    assert report.num_live == 5


# -- committed, not durable -----------------------------------------------------------------------


def failing_sync(monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    """Area.sync fails at its ``fail_at``-th call from now (1: the first)."""
    calls = [0]
    real = Area.sync

    def sync(self: Area) -> None:
        calls[0] += 1
        if calls[0] == fail_at:
            raise OSError(5, "Input/output error")
        real(self)

    monkeypatch.setattr(Area, "sync", sync)


def test_a_failed_sync_after_the_commit_byte_says_the_batch_is_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j"
    make_journal(path, 1)
    with qjournal.open_for_append(path) as w:
        failing_sync(monkeypatch, 3)  # anchor, rest, commit byte: the third barrier follows the commit byte
        with pytest.raises(JournalIOError) as info:
            w.append_many([qjournal.HashEntry(digest(5), 5, 5), qjournal.HashEntry(digest(6), 6, 6)])
        assert "the batch is committed (replay reads it) but not known to be durable" in str(info.value)
        assert "do not append it again" in str(info.value)
        assert w.state().num_entries == 3
    assert len(list(qjournal.read(path).replay())) == 3


def test_a_failed_sync_at_close_says_what_was_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j"
    make_journal(path, 1)
    w = qjournal.open_for_append(path, durable=False)
    w.append_hash(digest(5), 5, 5)
    failing_sync(monkeypatch, 1)
    with pytest.raises(JournalIOError, match="at close: every batch appended was committed"):
        w.close()
    assert len(list(qjournal.read(path).replay())) == 2


# -- the spill folder -----------------------------------------------------------------------------


def test_a_spilled_live_index_leaves_nothing_in_its_folder(tmp_path: Path) -> None:
    path, spill = tmp_path / "j", tmp_path / "spill"
    spill.mkdir()
    make_journal(path, 300)
    with qjournal.read(path) as r, live.LiveIndex(r.area, r.replay(), memory_limit=1, spill_dir=spill) as index:
        assert index.is_spilled and len(index) == 300
        assert list(spill.iterdir()) == []  # unlinked once open: a killed process leaves no folder behind
        assert sum(1 for _ in index.values()) == 300


def test_a_full_spill_folder_names_the_folder_and_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, spill = tmp_path / "j", tmp_path / "spill"
    spill.mkdir()
    make_journal(path, 300)
    real = sqlite3.connect

    def connect(*a: Any, **k: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = real(*a, **k)
        db.execute("PRAGMA max_page_count = 2")  # SQLite's own "database or disk is full"
        return db

    monkeypatch.setattr("qjournal.live.sqlite3.connect", connect)
    with pytest.raises(JournalIOError) as info:
        qjournal.pack(path, tmp_path / "dst", memory_limit=1, spill_dir=spill)
    text = str(info.value)
    assert str(spill) in text and "full" in text and "TMPDIR" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j", "spill"] and list(spill.iterdir()) == []


# -- a reader beside a reset ----------------------------------------------------------------------


def test_a_check_across_a_reset_says_the_journal_changed(tmp_path: Path) -> None:
    path = tmp_path / "j"
    make_journal(path, 200, clusters=8)  # entries in three clusters
    reset_once: list[int] = []

    def progress(done: int) -> None:  # the reader has read cluster 0: a reset runs now, in full
        if done >= CLUSTER and not reset_once:
            reset_once.append(done)
            qjournal.reset(path, 0, 8 * CLUSTER)

    with qjournal.read(path) as r, pytest.raises(JournalIOError, match="the journal changed while it was read"):
        r.check(progress, jobs=1)
    assert reset_once


def test_a_replay_across_a_reset_says_the_journal_changed(tmp_path: Path) -> None:
    path = tmp_path / "j"
    make_journal(path, 200, clusters=8)
    with qjournal.read(path) as r, pytest.raises(JournalIOError, match="the journal changed while it was read"):
        for i, _ in enumerate(r.replay()):
            if i == 10:
                qjournal.reset(path, 0, 8 * CLUSTER)
    assert list(qjournal.read(path).replay()) == []


# -- a full stdout after the work is done -----------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_failed_summary_names_stdout_and_what_was_done(tmp_path: Path) -> None:
    path = tmp_path / "j"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "qjournal", "create", str(path), "--clusters", "1"], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, check=False, timeout=60)
        assert proc.returncode == 1 and f"<stdout>: the journal was created in {path}" in proc.stderr, proc.stderr
        proc = subprocess.run([sys.executable, "-m", "qjournal", "append", str(path), "--hash", "ab" * 32,
                               "--physical", "1", "--logical", "1"], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=env, check=False, timeout=60)
    assert "the batch of 1 entry was committed" in proc.stderr and "standard output" in proc.stderr, proc.stderr
    assert len(list(qjournal.read(path).replay())) == 1


def test_stale_temporaries_of_a_killed_create_are_cleaned(tmp_path: Path) -> None:
    old, fresh, held, other = (tmp_path / n for n in (".qjournal-old.tmp", ".qjournal-new.tmp", ".qjournal-held.tmp",
                                                        "qjournal-old.tmp"))
    for p in (old, fresh, held, other):
        p.write_bytes(b"\xff" * 10)
    for p in (old, held, other):
        os.utime(p, (1, 1))
    with held.open("rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # a create still at work
        with qjournal.create(tmp_path / "j", 1):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, held.name, other.name, "j"])


def test_a_cluster_aligned_offset_that_cuts_a_journal_at_a_sector_offset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(b"\x00" * (MIB + 512))
    make_journal(path, 3, clusters=4, offset=MIB + 512)
    before = path.read_bytes()
    with pytest.raises(JournalArgumentError, match="the likely offset is 0x100200"):
        qjournal.open_for_append(path, MIB + CLUSTER, 3 * CLUSTER)
    assert path.read_bytes() == before
    with qjournal.open_for_append(path, MIB + 512, 4 * CLUSTER) as w:  # the journal itself, at its offset
        assert w.state().num_entries == 3


def test_two_journals_side_by_side_are_not_taken_for_a_cut_grid(tmp_path: Path) -> None:
    """The first journal's last cluster, read 512 bytes before the second, parses: it is on its own grid, not a cut."""
    path = tmp_path / "container"
    for start in (0, 512):
        path.write_bytes(b"\x00" * start)
        with qjournal.create(path, 4, offset=start) as w:
            target = 3 * CLUSTER + CLUSTER - 512  # an entry starts 512 bytes before the next area
            while target - w.ofs_tail > 255:
                w.append_hash(digest(w.ofs_tail), 1, 1)
            w.append_raw(3, b"\x00" * (target - w.ofs_tail - 2))
            for i in range(3):
                w.append_hash(digest(i), 1, 1)
        with qjournal.create(path, 2, offset=start + 4 * CLUSTER) as w:
            w.append_hash(digest(1), 1, 1)
        with qjournal.open_for_append(path, start + 4 * CLUSTER, 2 * CLUSTER) as w:
            assert w.state().num_entries == 1


def test_a_killed_pack_leaves_no_target_and_no_debris(tmp_path: Path) -> None:
    """A real SIGKILL while pack writes its entries: no file under the target's name, nothing else in the folder."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_journal(src, 300, clusters=8)
    code = (
        "import sys, time, qjournal, qjournal.writer as w\n"
        "real = w.JournalWriter._write\n"
        "def slow(self, pos, data):\n"
        "    real(self, pos, data); print('wrote', flush=True); time.sleep(30)\n"
        "w.JournalWriter._write = slow\n"
        f"qjournal.pack({str(src)!r}, {str(dst)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"wrote\n", proc.stderr.read() if proc.stderr else ""
    proc.kill()
    proc.wait(timeout=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_index_into_an_area_at_an_unaligned_offset_needs_leave(tmp_path: Path) -> None:
    img, journal = raw_image(tmp_path / "disk.raw", 2), tmp_path / "container"
    journal.write_bytes(b"\x00" * 100)
    with pytest.raises(JournalArgumentError, match="not a multiple of 512"):
        index_mod.index(img, journal, journal_offset=100)
    assert journal.read_bytes() == b"\x00" * 100
    assert index_mod.index(img, journal, journal_offset=100, unaligned_offset=True).num_unique == 2


def test_random_bytes_below_an_aligned_offset_are_no_journal() -> None:
    """Random data that happens to parse as a journal cluster is not taken for one (it never ends clean), so a write
    at an aligned offset in random data is not refused as cutting a journal's grid (it was, about 1 time in 100)."""
    from qjournal.area import holds_journal_cluster

    rng = random.Random(2026)
    for _ in range(5000):
        buf = bytearray(rng.randbytes(4096))
        buf[1] = 0x02  # a HASH type byte where a journal's first entry has it: the only clusters looked at further
        assert not holds_journal_cluster(bytes(buf))


@pytest.mark.parametrize(("sector", "refused"), [(1 << 63 | 12345, False), (2048, True)])
def test_bytes_that_run_into_an_erased_area_above_need_a_journals_sectors(
    tmp_path: Path, sector: int, refused: bool
) -> None:
    """A chain of entries at 0x1400 whose last one ends at 0x2000, where an erased area starts, parses and ends clean
    (CI drew such random bytes once): its HASH entry's sectors decide whether it is a journal whose grid 0x2000
    would cut (refused, the likely offset named) or random data (the append goes on)."""
    head = encode_hash(bytes(range(32)), sector, sector)
    filler = b"".join(bytes([254, 0x07]) + bytes(252) for _ in range(11))  # unassigned type 0x07: stepped over
    last = 0x2000 - 0x1400 - len(head) - len(filler)
    chain = head + filler + bytes([last, 0x07]) + bytes(last - 2)
    path = tmp_path / "image.bin"
    path.write_bytes(os.urandom(0x1400) + chain + b"\xff" * 8192)
    before = path.read_bytes()
    assert len(chain) == 0x2000 - 0x1400
    code, err = None, ""
    try:
        with JournalWriter(str(path), offset=0x2000, length=8192) as w:
            w.append_hash(bytes(32), 1, 2)
        code = 0
    except JournalArgumentError as exc:
        code, err = 1, str(exc)
    if refused:
        assert code == 1 and "the likely offset is 0x1400" in err
        assert path.read_bytes() == before
    else:
        assert code == 0, err
        assert path.read_bytes()[:0x2000] == before[:0x2000]
