"""The qjournal command line, writing side: create, append, pack, reset.

Each command runs at least once as a real subprocess; breadth in-process.
Journals to start from are built byte by byte (see test_cli.build).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import hash_bytes
from test_cli import (
    CLUSTER,
    D10,
    SUBPROCESS_ENV,
    build,
    call,
    digest_of,
    hashes,
    one_error_line,
    raw_bytes,
    run,
    write,
)

from qjournal.reader import JournalReader


def replay(path: str | Path, offset: int = 0, length: int | None = None) -> list[dict[str, Any]]:
    with JournalReader(str(path), offset, length) as reader:
        return [e.to_dict() for e in reader.replay()]


def jsonl(*records: dict[str, Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def hash_record(i: int, n: int = 32) -> dict[str, Any]:
    return {"entry_type": "hash", "digest": digest_of(i, n).hex(), "physical_sector": 1000 + i, "first_logical_sector": 8 * i}


# -- create ----------------------------------------------------------------------


def test_create_new_file_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    proc = run("create", str(path), "--clusters", "3")
    assert proc.returncode == 0, proc.err
    assert proc.out == f"{path}: created an empty journal of 3 clusters (12288 bytes) at offset 0x0\n"
    assert path.read_bytes() == b"\xff" * (3 * CLUSTER)


def test_create_size_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    code, out, _ = call(capsys, "create", str(path), "--size", "64K")
    assert code == 0 and "16 clusters (65536 bytes)" in out
    assert path.read_bytes() == b"\xff" * 65536


def test_create_inside_larger_file_leaves_the_rest_identical(tmp_path: Path) -> None:
    before = os.urandom(1 << 20)
    path = write(tmp_path / "image.bin", before)
    proc = run("create", path, "--offset", "256K", "--length", "64K")
    assert proc.returncode == 1  # random bytes there: not a reset area
    assert "--force" in one_error_line(proc.err) and "offset" in proc.err
    assert Path(path).read_bytes() == before
    proc = run("create", path, "--offset", "256K", "--length", "64K", "--force")
    assert proc.returncode == 0, proc.err
    after = Path(path).read_bytes()
    lo, hi = 256 << 10, (256 + 64) << 10
    assert after[:lo] == before[:lo] and after[hi:] == before[hi:]
    assert after[lo:hi] == b"\xff" * (hi - lo)
    proc = run("info", path, "--offset", "256K", "--length", "64K", "--output", "json")
    assert json.loads(proc.out)["num_clusters"] == 16


def test_create_appends_an_area_to_a_file_ending_at_offset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    head = os.urandom(5000)
    path = write(tmp_path / "image.bin", head)
    code, _out, err = call(capsys, "create", path, "--offset", "5000", "--clusters", "2", "--unaligned-offset")
    assert code == 0, err
    data = Path(path).read_bytes()
    assert data[:5000] == head and data[5000:] == b"\xff" * 8192


def test_create_refuses_a_journal_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    original = bytes(build([D10], 2))
    path = write(tmp_path / "j.bin", original)
    code, _, err = call(capsys, "create", path, "--clusters", "2")
    line = one_error_line(err)
    assert code == 1 and "not reset" in line and "--force" in line and "force=True" not in line
    assert Path(path).read_bytes() == original
    code, _, _ = call(capsys, "create", path, "--clusters", "2", "--force")
    assert code == 0 and Path(path).read_bytes() == b"\xff" * 8192


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--clusters", "2", "--size", "8K"], "not allowed with"),
        (["--clusters", "0"], "at least 1"),
        (["--size", "5000"], "multiple of 4096"),
        ([], "--clusters (or --size) is needed to create a new journal file"),
    ],
)
def test_create_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str) -> None:
    path = tmp_path / "new.bin"
    code, _, err = call(capsys, "create", str(path), *argv)
    assert code == 1 and needle in one_error_line(err)
    assert not path.exists()


def test_create_in_a_directory_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = call(capsys, "create", str(tmp_path / "no" / "j.bin"), "--clusters", "1")
    assert code == 1 and "does not exist; nothing written" in one_error_line(err)


# -- append: one entry -----------------------------------------------------------


def test_append_one_hash_subprocess(tmp_path: Path) -> None:
    path = write(tmp_path / "j.bin", build([], 1))
    digest = bytes(range(32)).hex()
    proc = run("append", path, "--hash", digest, "--physical", "16", "--logical", "0x20")
    assert proc.returncode == 0, proc.err
    assert proc.out == f"{path}: appended a hash entry of 50 bytes at 0x0; tail at 0x32\n"
    assert Path(path).read_bytes() == bytes(build([D10], 1))  # D10's worked example, byte for byte


def test_append_one_raw_entry(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "j.bin", build([D10], 1))
    code, out, _ = call(capsys, "append", path, "--type", "0x07", "--body", "0a0b")
    assert code == 0 and "type 0x07 entry of 4 bytes at 0x32" in out
    assert replay(path)[-1] == {"ofs": 50, "entry_type": 7, "len_entry": 4, "body": "0a0b"}
    code, _, _ = call(capsys, "append", path, "--type", "9")
    assert code == 0 and replay(path)[-1]["body"] == ""


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--hash", "00"], "needs --hash, --physical and --logical"),
        (["--hash", "zz", "--physical", "1", "--logical", "2"], "not a hex string"),
        (["--hash", "", "--physical", "1", "--logical", "2"], "digest is empty"),
        (["--hash", "00" * 237, "--physical", "1", "--logical", "2"], "digest of 237 bytes"),
        (["--hash", "00", "--physical", str(1 << 64), "--logical", "2"], "out of range"),
        (["--hash", "00", "--physical", "-1", "--logical", "2"], "out of range"),
        (["--hash", "00", "--physical", "1", "--logical", "2", "--type", "7"], "does not combine"),
        (["--type", "1"], "unassigned type"),
        (["--type", "2"], "unassigned type"),
        (["--type", "255"], "unassigned type"),
        (["--type", "256"], "unassigned type"),
        (["--body", "00"], "--body needs --type"),
        (["--type", "7", "--body", "00" * 253], "body of 253 bytes"),
    ],
)
def test_append_bad_entry_options(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str) -> None:
    original = bytes(build([D10], 1))
    path = write(tmp_path / "j.bin", original)
    code, out, err = call(capsys, "append", path, *argv)
    assert code == 1 and out == ""
    assert needle in one_error_line(err)
    assert Path(path).read_bytes() == original


def test_append_to_a_full_journal_changes_nothing(tmp_path: Path) -> None:
    original = bytes(build(hashes(81), 1))  # 4050 bytes: a 50-byte entry does not fit
    path = write(tmp_path / "j.bin", original)
    proc = run("append", path, "--hash", "11" * 32, "--physical", "1", "--logical", "2")
    assert proc.returncode == 1
    line = one_error_line(proc.err)
    assert "journal full" in line and path in line and "nothing was written" in line
    assert Path(path).read_bytes() == original


def test_append_to_a_corrupt_journal_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = build([D10], 1)
    data[50:52] = bytes([10, 1])
    path = write(tmp_path / "j.bin", data)
    code, _, err = call(capsys, "append", path, "--type", "7")
    assert code == 2 and "end_misaligned" in one_error_line(err)
    assert Path(path).read_bytes() == bytes(data)


def test_append_to_a_locked_journal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    original = bytes(build([D10], 1))
    path = write(tmp_path / "j.bin", original)
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run("append", path, "--type", "7")
    assert proc.returncode == 1 and path in one_error_line(proc.err)
    assert Path(path).read_bytes() == original


def test_append_missing_file_and_window(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = call(capsys, "append", str(tmp_path / "nope.bin"), "--type", "7")
    assert code == 1 and one_error_line(err) == f"qjournal: {tmp_path / 'nope.bin'}: no such file"
    path = write(tmp_path / "j.bin", build([], 1))
    code, _, err = call(capsys, "append", path, "--type", "7", "--offset", "4K", "--length", "4K")
    assert code == 1 and "shorter than offset + length" in one_error_line(err)


# -- append: a batch of JSON lines -----------------------------------------------


def test_dump_jsonl_pipe_append_round_trip(tmp_path: Path) -> None:
    """`qjournal dump A --output jsonl | qjournal append B`, a real pipe between two processes."""
    src = write(tmp_path / "a.bin", build([D10, raw_bytes(0x33, b"xyz")] + hashes(100) + [hash_bytes(b"\x01", 5, 6)], 3))
    dst = write(tmp_path / "b.bin", build([], 3))
    dump = subprocess.Popen(
        [sys.executable, "-m", "qjournal", "dump", src, "--output", "jsonl"], stdout=subprocess.PIPE, env=SUBPROCESS_ENV
    )
    append = subprocess.run(
        [sys.executable, "-m", "qjournal", "append", dst], stdin=dump.stdout, check=False, capture_output=True, env=SUBPROCESS_ENV, timeout=60
    )
    assert dump.stdout is not None
    dump.stdout.close()
    assert dump.wait(timeout=60) == 0
    assert append.returncode == 0, append.stderr
    assert append.stdout.decode().startswith(f"{dst}: appended 103 entries at 0x0-")
    assert Path(dst).read_bytes() == Path(src).read_bytes()  # same entries, same placement (D6)


def test_batch_skips_blank_lines_and_markers_of_dump_all(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "a.bin", build(hashes(84), 3))
    code, out, _ = call(capsys, "dump", src, "--all", "--output", "jsonl")
    assert '"entry_type": "end"' in out and '"entry_type": "none"' in out
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n" + out.replace("\n", "\n\n"))
    dst = write(tmp_path / "b.bin", build([], 3))
    code, out, err = call(capsys, "append", dst, "--from", str(batch))
    assert code == 0, err
    assert Path(dst).read_bytes() == Path(src).read_bytes()


@pytest.mark.parametrize(
    "line, needle",
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "must be a JSON object"),
        ('{"entry_type": "hash", "digest": "00", "physical_sector": 1}', "first_logical_sector"),
        ('{"entry_type": "hash", "digest": "0g", "physical_sector": 1, "first_logical_sector": 2}', "not valid hex"),
        ('{"entry_type": "hash", "digest": "", "physical_sector": 1, "first_logical_sector": 2}', "digest is empty"),
        ('{"entry_type": "hash", "digest": "00", "physical_sector": -1, "first_logical_sector": 2}', "out of range"),
        ('{"entry_type": "hash", "digest": "00", "physical_sector": 1.5, "first_logical_sector": 2}', "must be an integer"),
        ('{"entry_type": "blob", "body": ""}', "entry_type must be"),
        ('{"entry_type": 1, "body": ""}', "entry_type 0x01 (END) cannot be appended"),
        ('{"entry_type": 300, "body": ""}', "entry_type 300"),
        ('{"entry_type": 7, "body": "' + "00" * 253 + '"}', "body of 253 bytes"),
    ],
)
def test_batch_bad_line_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, needle: str) -> None:
    original = bytes(build([D10], 2))
    path = write(tmp_path / "j.bin", original)
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(jsonl(hash_record(1), hash_record(2)) + b"\n" + line.encode() + b"\n" + jsonl(hash_record(3)))
    code, out, err = call(capsys, "append", path, "--from", str(batch))
    assert code == 1 and out == ""
    msg = one_error_line(err)
    assert f"{batch}: line 4: " in msg and needle in msg and "nothing was written" in msg
    assert Path(path).read_bytes() == original


def test_batch_bad_line_subprocess_stdin(tmp_path: Path) -> None:
    original = bytes(build([], 1))
    path = write(tmp_path / "j.bin", original)
    proc = run("append", path, stdin=jsonl(hash_record(1)) + b'{"entry_type": "hash"}\n')
    assert proc.returncode == 1
    assert one_error_line(proc.err) == "qjournal: <stdin>: line 2: entry is missing the field 'digest'; nothing was written"
    assert Path(path).read_bytes() == original
    proc = run("append", path, stdin=b"\xff\xfe\n")
    assert proc.returncode == 1 and "not UTF-8" in one_error_line(proc.err)


def test_batch_that_does_not_fit_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    original = bytes(build(hashes(40), 1))
    path = write(tmp_path / "j.bin", original)
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(jsonl(*(hash_record(i) for i in range(42))))  # 40 fit, 42 do not
    code, _, err = call(capsys, "append", path, "--from", str(batch))
    assert code == 1 and "journal full" in one_error_line(err)
    assert Path(path).read_bytes() == original
    batch.write_bytes(jsonl(*(hash_record(i) for i in range(41))))
    code, out, _ = call(capsys, "append", path, "--from", str(batch))
    assert code == 0 and "appended 41 entries" in out
    assert len(replay(path)) == 81


def test_batch_empty_input_and_missing_from_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    original = bytes(build([D10], 1))
    path = write(tmp_path / "j.bin", original)
    (tmp_path / "empty.jsonl").write_text("\n")
    code, out, _ = call(capsys, "append", path, "--from", str(tmp_path / "empty.jsonl"))
    assert code == 0 and "nothing to append; tail at 0x32" in out
    assert Path(path).read_bytes() == original
    code, _, err = call(capsys, "append", path, "--from", str(tmp_path / "none.jsonl"))
    assert code == 1 and "none.jsonl: cannot open" in one_error_line(err)


def test_append_into_an_area_inside_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    before = os.urandom(8192) + bytes(build([], 2)) + os.urandom(100)
    path = write(tmp_path / "image.bin", before)
    batch = tmp_path / "b.jsonl"
    batch.write_bytes(jsonl(*(hash_record(i) for i in range(90))))
    code, _, err = call(capsys, "append", path, "--offset", "8K", "--length", "8K", "--from", str(batch))
    assert code == 0, err
    after = Path(path).read_bytes()
    assert after[:8192] == before[:8192] and after[16384:] == before[16384:]
    assert len(replay(path, 8192, 8192)) == 90


# -- pack ------------------------------------------------------------------------


def test_pack_subprocess(tmp_path: Path) -> None:
    entries = hashes(50) + [raw_bytes(0x07, b"x")] + hashes(10)  # digests 0-9 twice: the later ones live
    entries[-1] = hash_bytes(digest_of(9), 77, 78)
    src = write(tmp_path / "a.bin", build(entries, 2))
    before = Path(src).read_bytes()
    dst = tmp_path / "p.bin"
    proc = run("pack", src, str(dst))
    assert proc.returncode == 0, proc.err
    assert proc.out.splitlines()[0] == f"{src}: 61 entries read (60 hash), 50 live written, 11 dropped (1 of unassigned types)"
    assert Path(src).read_bytes() == before
    packed = replay(dst)
    assert len(packed) == 50 and len(dst.read_bytes()) == 2 * CLUSTER
    assert packed[-1]["physical_sector"] == 77  # the last entry per digest wins (D9)
    assert [r["digest"] for r in packed] == [digest_of(i).hex() for i in list(range(10, 50)) + list(range(10))]


def test_pack_refuses_a_non_reset_target_and_when_it_does_not_fit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "a.bin", build(hashes(100), 2))
    occupied = bytes(build([D10], 2))
    dst = write(tmp_path / "b.bin", occupied)
    code, _, err = call(capsys, "pack", src, dst)
    assert code == 1 and "--force" in one_error_line(err)
    assert Path(dst).read_bytes() == occupied
    small = tmp_path / "small.bin"
    code, _, err = call(capsys, "pack", src, str(small), "--clusters", "1")
    assert code == 1 and "journal full" in one_error_line(err) and not small.exists()
    code, _out, _ = call(capsys, "pack", src, dst, "--force")
    assert code == 0 and len(replay(dst)) == 100


def test_pack_into_an_area_of_the_same_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = bytes(build(hashes(30), 1)) + bytes(build([], 1)) + b"tail"
    path = write(tmp_path / "image.bin", image)
    code, _, err = call(capsys, "pack", path, path, "--length", "4K", "--dst-offset", "4K", "--dst-length", "4K")
    assert code == 0, err
    data = Path(path).read_bytes()
    assert data[:4096] == image[:4096] and data[-4:] == b"tail"
    assert replay(path, 4096, 4096) == replay(path, 0, 4096)  # 30 distinct digests: all live, same places
    code, _, err = call(capsys, "pack", path, path, "--length", "4K", "--dst-offset", "0", "--dst-length", "4K", "--force")
    assert code == 1 and "overlaps" in one_error_line(err)


def test_pack_corrupt_source_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = build([D10], 1)
    data[0] = 1
    src = write(tmp_path / "a.bin", data)
    code, _, err = call(capsys, "pack", src, str(tmp_path / "b.bin"))
    assert code == 2 and "size_too_small" in one_error_line(err)
    assert not (tmp_path / "b.bin").exists()


# -- reset -----------------------------------------------------------------------


def test_reset_needs_yes_subprocess(tmp_path: Path) -> None:
    original = bytes(build([D10], 2))
    path = write(tmp_path / "j.bin", original)
    proc = run("reset", path)
    assert proc.returncode == 1
    line = one_error_line(proc.err)
    assert "--yes" in line and "the area of 8192 bytes at file offsets 0x0-0x1fff would become 0xFF" in line
    assert Path(path).read_bytes() == original
    proc = run("reset", path, "--yes")
    assert proc.returncode == 0, proc.err
    assert proc.out == f"{path}: reset: the area of 8192 bytes at file offsets 0x0-0x1fff is all 0xFF (an empty journal)\n"
    assert Path(path).read_bytes() == b"\xff" * 8192


def test_reset_inside_a_file_and_a_corrupt_area(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    journal = build([D10], 1)
    journal[0] = 0  # corrupt: reset works anyway
    before = os.urandom(4096) + bytes(journal) + os.urandom(4096)
    path = write(tmp_path / "image.bin", before)
    code, _, err = call(capsys, "reset", path, "--offset", "4K", "--length", "4K", "--yes")
    assert code == 0, err
    after = Path(path).read_bytes()
    assert after[:4096] == before[:4096] and after[8192:] == before[8192:] and after[4096:8192] == b"\xff" * 4096


def test_reset_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = call(capsys, "reset", str(tmp_path / "nope.bin"), "--yes")
    assert code == 1 and "no such file" in one_error_line(err)
