"""A check keeps the first problems and counts the rest; on an area that is no journal it stops after a few.

Memory stays bounded by the cap (not by the area: a 100 GiB sparse file used to
end in MemoryError), a non-journal does not flood the terminal with one line per
cluster, and a state (info, a writer's validation) stops at the first corruption.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

import qjournal
from qjournal import checking, cli, parallel
from qjournal.cluster import parse_cluster
from qjournal.format import LEN_CLUSTER


def _damaged_journal(path: Path, num_bad: int, *, seed: int = 1) -> None:
    """A journal whose cluster 0 is closed (81 entries, an END) and whose next ``num_bad`` clusters are corrupt."""
    with qjournal.create(path, num_bad + 2) as w:
        w.append_many([qjournal.HashEntry(i.to_bytes(32, "big"), 8, i) for i in range(82)])
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    for k in range(1, num_bad + 1):
        data[k * LEN_CLUSTER:(k + 1) * LEN_CLUSTER] = b"\0\0" + rng.randbytes(LEN_CLUSTER - 2)  # an entry of size 0
    path.write_bytes(bytes(data))


def _not_a_journal(path: Path, num_clusters: int) -> None:
    path.write_bytes(random.Random(2).randbytes(num_clusters * LEN_CLUSTER))


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_first_problems_are_kept_and_the_rest_counted(jobs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(checking, "MIN_RANGE_CLUSTERS", 7)
    path = tmp_path / "j.bin"
    _damaged_journal(path, 300)
    with qjournal.read(path) as r:
        everything = r.check(jobs=1, max_problems=10**6)
        capped = r.check(jobs=jobs, max_problems=checking.DEFAULT_MAX_PROBLEMS)
        assert r.check(jobs=jobs).problems == everything.problems  # the library keeps every one by default
        small = r.check(jobs=jobs, max_problems=3)
    assert everything.num_not_kept == 0 and everything.num_corruptions >= 300 and everything.hint is None
    assert len(capped.problems) == checking.DEFAULT_MAX_PROBLEMS
    assert capped.problems == everything.problems[: checking.DEFAULT_MAX_PROBLEMS]
    assert (capped.num_corruptions, capped.num_anomalies) == (everything.num_corruptions, everything.num_anomalies)
    assert capped.num_not_kept == len(everything.problems) - checking.DEFAULT_MAX_PROBLEMS
    assert small.problems == everything.problems[:3] and small.stopped_at is None and small.state is None


def test_the_tail_anomalies_and_the_first_corruption_are_kept_past_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 2) as w:
        w.append_many([qjournal.RawEntry(0x33, b"") for _ in range(30)])
    data = bytearray(path.read_bytes())
    data[LEN_CLUSTER + 100] = 0  # a dirty tail after 30 anomalies
    path.write_bytes(bytes(data))
    with qjournal.read(path) as r:
        report = r.check(max_problems=5)
        state = r.state()
    assert [p.code for p in report.problems] == ["unassigned_type"] * 5 + ["dirty_tail"]
    assert report.num_anomalies == 31 and report.state is not None and report.state.num_anomalies == 31
    assert state.anomalies[-1].code == "dirty_tail"  # a writer erases past the tail on it: never dropped
    data[LEN_CLUSTER + 100] = 0xFF
    data[60:62] = b"\x00\x00"  # at the tail, after the 30 entries of 2 bytes: a corruption after the anomalies
    path.write_bytes(bytes(data))
    with qjournal.read(path) as r:
        report = r.check(max_problems=5)
        assert report.problems[-1].is_corruption and report.num_corruptions == 1
        with pytest.raises(qjournal.CorruptJournalError):
            r.state()


def test_a_state_stops_at_the_first_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.bin"
    _damaged_journal(path, 50)
    parsed: list[bytes] = []
    real = parse_cluster  # the function checking calls (imported from qjournal.cluster)

    def spy(buf: bytes) -> Any:
        parsed.append(buf)
        return real(buf)

    monkeypatch.setattr(checking, "parse_cluster", spy)
    with qjournal.read(path) as r, pytest.raises(qjournal.CorruptJournalError) as caught:
        r.state(jobs=1)
    assert caught.value.offset is not None and caught.value.offset >= LEN_CLUSTER
    assert len(parsed) == 2  # cluster 0, then the corrupt cluster 1: no further


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_check_of_a_file_that_is_no_journal_stops_after_a_few_problems(jobs: str, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "disk.img"
    _not_a_journal(path, 2500)  # 10 MiB: workers with --jobs 2
    assert cli.main(["check", str(path), "--jobs", jobs]) == 2
    out = capsys.readouterr().out.splitlines()
    problems = [line for line in out if "corruption [" in line]
    assert len(problems) == checking.NOT_A_JOURNAL_PROBLEMS
    assert f"stopped after 5 problems in the first {len(problems)} clusters of 2500" in out[-2]
    assert "does not look like a journal" in out[-1]
    data = bytearray(path.read_bytes())
    for k in range(2500):
        data[k * LEN_CLUSTER: k * LEN_CLUSTER + 2] = b"\0\0"  # one corruption a cluster
    path.write_bytes(bytes(data))
    assert cli.main(["check", str(path), "--jobs", jobs, "--max-problems", "12", "--output", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["problems"]) == 12 and doc["stopped_at"] == 12 * LEN_CLUSTER and doc["state"] is None
    assert doc["hint"] and doc["num_corruptions"] == 12


def test_check_lists_the_first_problems_and_counts_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    _damaged_journal(path, 150)
    assert cli.main(["check", str(path), "--max-problems", "10"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if "corruption [" in line]) == 10
    with qjournal.read(path) as r:
        total = r.check(max_problems=10**6).num_corruptions
    assert out[-2].endswith("the journal is corrupt.") and f"{total} corruptions" in out[-2]
    assert out[-1].endswith(f"{total - 10} more problems not listed (--max-problems N lists more).")


@pytest.mark.parametrize("bad", ["0", "-3", "x"])
def test_max_problems_is_at_least_one(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tmp_path / "j.bin"), "--max-problems", bad]) == 1
    assert "--max-problems" in capsys.readouterr().err
    with pytest.raises(qjournal.JournalArgumentError):
        qjournal.read(b"\xff" * 4096).check(max_problems=0)
    with pytest.raises(qjournal.JournalArgumentError):
        qjournal.read(b"\xff" * 4096).check(give_up_after=-1)


@pytest.mark.parametrize("command", ["info", "check", "dump", "get", "verify", "index"])
def test_an_error_under_output_json_is_one_json_object_on_stdout(command: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.bin")
    argv = {"get": ["get", missing, "00" * 32], "verify": ["verify", missing, missing],
            "index": ["index", missing, str(tmp_path / "new.qjournal")]}.get(command, [command, missing])
    code = cli.main([*argv, "--output", "json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1 and doc["exit_code"] == 1 and doc["error"]["message"] in captured.err
    assert doc["error"]["code"] in ("journal_io", "io", "image") or doc["error"]["code"].endswith("_io"), doc


def test_a_corruption_under_output_json_has_its_rule_and_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.bin"
    _damaged_journal(path, 3)
    assert cli.main(["info", str(path), "--output", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 2 and doc["filename"] == str(path)
    assert doc["error"]["code"] == doc["error"]["rule"] == "size_too_small"
    assert doc["error"]["ofs"] == doc["error"]["file_ofs"] == LEN_CLUSTER
    assert cli.main(["dump", str(path), "--output", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)  # one document: the error inside it, not a second object after it
    assert doc["error"]["rule"] == "size_too_small" and len(doc["entries"]) == 81
