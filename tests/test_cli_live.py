"""The live view at the command line, --jobs and --version (issues 12 and 13).

``qjournal get``, ``dump --live`` and the live counts of ``info`` must say what
the library's :meth:`JournalReader.live` says (the last HASH entry per digest,
D9); ``--jobs`` must change nothing but the number of processes; ``--version``
names the stream in use.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_cli import call

import qjournal
from qjournal import HashEntry, RawEntry, parallel, stream
from qjournal.cli import console
from qjournal.dumping import format_item

CLUSTER = 4096


def journal_with_repeats(path: Path, seed: int = 1, num_clusters: int = 4, n: int = 200) -> list[HashEntry | RawEntry]:
    """A journal whose digests repeat (many superseded), with raw entries among them; the entries appended."""
    rng = random.Random(seed)
    digests = [rng.randbytes(rng.choice([20, 32, 32, 64])) for _ in range(n // 5)]
    entries: list[HashEntry | RawEntry] = []
    for i in range(n):
        if rng.random() < 0.1:
            entries.append(RawEntry(0x03, rng.randbytes(rng.randrange(0, 40))))
        else:
            entries.append(HashEntry(rng.choice(digests), rng.randrange(2**40), i))
    with qjournal.create(path, num_clusters) as w:
        w.append_many(entries)
    return entries


def library_live(path: Path) -> list[HashEntry]:
    with qjournal.JournalReader(path) as r, r.live() as live:
        return list(live.values())


def test_get_prints_the_last_entry_of_a_digest_as_dump_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    journal_with_repeats(path)
    live = library_live(path)
    # a digest that occurs more than once: its last entry is the one printed
    with qjournal.JournalReader(path) as r:
        replayed = [e for e in r.replay() if isinstance(e, HashEntry)]
    repeated = next(e for e in live if sum(x.digest == e.digest for x in replayed) > 1)
    code, out, err = call(capsys, "get", str(path), repeated.digest.hex())
    assert (code, err) == (0, "")
    assert out == format_item(repeated) + "\n"
    code, out, _ = call(capsys, "get", str(path), repeated.digest.hex(), live[0].digest.hex(), "--output", "json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [repeated.to_dict(), live[0].to_dict()]


def test_get_of_a_digest_with_no_entry_says_so_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    journal_with_repeats(path)
    present = library_live(path)[-1]
    absent = b"\x5a" * 32
    code, out, err = call(capsys, "get", str(path), absent.hex(), present.digest.hex())
    assert code == 1
    assert out == format_item(present) + "\n"  # the digests that have an entry are still printed
    assert err == f"qjournal: {path}: no live entry with digest {absent.hex()} (no HASH entry replay yields has it)\n"


def test_get_does_not_take_a_raw_entrys_body_for_a_digest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """D9 keeps only HASH entries: a raw entry whose body looks like a digest is never live."""
    path = tmp_path / "j.bin"
    with qjournal.create(path, 1) as w:
        w.append_raw(0x03, b"\x11" * 32)
    code, _, err = call(capsys, "get", str(path), "11" * 32)
    assert code == 1 and "no live entry" in err


def test_get_of_a_corrupt_journal_exits_2_with_the_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 2) as w:
        w.append_hash(b"\x01" * 32, 1, 1)
    data = bytearray(path.read_bytes())
    data[0] = 3  # the size byte: a HASH entry of 3 bytes, shorter than its fields
    path.write_bytes(bytes(data))
    code, out, err = call(capsys, "get", str(path), "01" * 32)
    assert (code, out) == (2, "")
    assert "offset 0x0" in err


def test_get_refuses_a_digest_that_is_not_hex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    journal_with_repeats(path)
    code, _, err = call(capsys, "get", str(path), "xyz0")
    assert code == 1
    assert err.startswith("qjournal: argument DIGEST: not a hex string: 'xyz0'")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dump_live_is_the_librarys_live_view(seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    journal_with_repeats(path, seed)
    live = library_live(path)
    assert 0 < len(live) < sum(1 for _ in qjournal.JournalReader(path).replay())  # something was superseded
    code, out, _ = call(capsys, "dump", str(path), "--live")
    assert code == 0
    assert out.splitlines() == [format_item(e) for e in live]
    code, out, _ = call(capsys, "dump", str(path), "--live", "--output", "jsonl")
    assert [json.loads(line) for line in out.splitlines()] == [e.to_dict() for e in live]
    code, out, _ = call(capsys, "dump", str(path), "--live", "--output", "json")
    assert json.loads(out)["entries"] == [e.to_dict() for e in live]


def test_dump_live_of_a_journal_with_more_live_entries_than_a_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The live entries are printed in runs: every run, in order, nothing lost at the joins."""
    path = tmp_path / "j.bin"
    entries = [HashEntry(i.to_bytes(20, "big"), i, i) for i in range(2500)]
    with qjournal.create(path, 40) as w:
        w.append_many(entries)
    code, out, _ = call(capsys, "dump", str(path), "--live", "--output", "jsonl")
    assert code == 0
    assert [json.loads(line)["physical_sector"] for line in out.splitlines()] == list(range(2500))


@pytest.mark.parametrize("other", ["--hex", "--all"])
def test_dump_live_does_not_combine_with_the_views_of_every_entry(
    other: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.bin"
    journal_with_repeats(path)
    code, out, err = call(capsys, "dump", str(path), "--live", other)
    assert (code, out) == (1, "")
    assert "does not combine with --hex or --all" in err


def test_info_counts_live_and_superseded_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    entries = journal_with_repeats(path)
    hashes = [e for e in entries if isinstance(e, HashEntry)]
    num_live = len({e.digest for e in hashes})
    code, out, _ = call(capsys, "info", str(path))
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines["live"] == (
        f"{num_live} digests with a live HASH entry; "
        f"{len(hashes) - num_live} HASH entries superseded by a later one with the same digest"
    )
    code, out, _ = call(capsys, "info", str(path), "--output", "json")
    doc = json.loads(out)
    assert (doc["num_live"], doc["num_superseded"]) == (num_live, len(hashes) - num_live)


def test_info_of_one_entry_says_it_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 1) as w:
        w.append_many([HashEntry(b"\x01" * 32, 1, 1), HashEntry(b"\x01" * 32, 2, 1)])
    _, out, _ = call(capsys, "info", str(path))
    assert "live: 1 digest with a live HASH entry; 1 HASH entry superseded by a later one with the same digest\n" in out


@pytest.fixture
def large_journal(tmp_path: Path) -> Path:
    """An area past the size at which checks go to worker processes, entries in its first clusters and dirt far on."""
    path = tmp_path / "large.bin"
    num_clusters = parallel.PARALLEL_MIN_BYTES // CLUSTER + 64
    with qjournal.create(path, num_clusters) as w:
        w.append_many([HashEntry(i.to_bytes(32, "big"), i, i) for i in range(500)])
    with open(path, "r+b") as f:
        f.seek((num_clusters - 3) * CLUSTER + 17)
        f.write(b"\x00stray")
    return path


@pytest.mark.parametrize("command", ["check", "info"])
def test_jobs_changes_nothing_but_the_processes(
    command: str, large_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {jobs: call(capsys, command, str(large_journal), "--output", "json", "--jobs", jobs) for jobs in ("1", "2")}
    assert results["1"] == results["2"]
    code, out, _ = results["1"]
    assert code == (3 if command == "check" else 0)
    assert json.loads(out)["filename"] == str(large_journal)


def test_append_takes_jobs_for_its_validation(large_journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(
        capsys, "append", str(large_journal), "--hash", "ab" * 32, "--physical", "1", "--logical", "2", "--jobs", "2",
        "--erase-foreign-data",
    )
    assert code == 0, out
    last = library_live(large_journal)[-1]
    assert (last.digest, last.physical_sector, last.first_logical_sector) == (b"\xab" * 32, 1, 2)


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_integer(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    journal_with_repeats(path)
    code, _, err = call(capsys, "check", str(path), "--jobs", bad)
    assert code == 1
    assert err.startswith("qjournal: argument --jobs:") and "(see 'qjournal check --help')" in err


def test_a_progress_bar_leaves_the_check_free_to_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm's monitor thread would make this process multi-threaded, and a check then stays serial."""
    monkeypatch.setattr(console, "isatty", lambda stream: True)
    with console.Progress(1 << 30, "check") as progress:
        assert progress.bar is not None
        assert parallel.can_fork()


def test_version_names_the_stream_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "--version")
    assert code == 0
    assert out.startswith("qjournal ") and out.rstrip().endswith(stream.implementation())
