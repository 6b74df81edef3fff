"""``qjournal dump`` by worker processes prints the serial dump, byte for byte (issue 13).

A large area that is a regular file opened by path is cut into runs of
clusters that forked workers format (:mod:`qjournal.dumping`); the parent
prints them in order and stops at the run where replay ends. Here the threshold
is lowered to nothing and a run to one cluster, so every golden vector, every
fuzz input and built journals with corruption or the end of replay in the
middle go through the workers in every output form, with and without the END
and NONE markers. The serial dump is the reference: every run's text, count,
end flag and corruption (rule, offsets, reason, hint, file name). A worker
that cannot do its run (the file replaced, the worker killed) hands the rest
back to the parent, which prints the same thing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import qjournal
from qjournal import dumping, parallel

HERE = Path(__file__).resolve().parent
VECTORS = sorted((HERE / "vectors").glob("*.bin")) + sorted((HERE / "vectors" / "regressions").glob("*.bin"))

import test_fuzz  # noqa: E402 - the fuzz suite's input generator and settings

EXAMPLES = max(10, test_fuzz.EXAMPLES // 4)
FORMS = [(output, markers) for output in dumping.OUTPUTS for markers in (False, True)]


@pytest.fixture
def tiny_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every area is dumped by workers, one cluster per run."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(dumping, "RUN_CLUSTERS", 1)


class Spy:
    """Wraps ``parallel.ordered_map``: counts the runs the workers delivered (so a fallback is seen)."""

    def __init__(self, mp: pytest.MonkeyPatch, *, in_process: bool = False) -> None:
        self.delivered = 0
        self.calls = 0
        real = parallel.ordered_map

        def spy(fn: Any, args: Any, jobs: int) -> Iterator[Any]:
            self.calls += 1
            source = (fn(*a) for a in args) if in_process else real(fn, args, jobs)
            try:
                for value in source:
                    self.delivered += 1
                    yield value
            finally:
                source.close()

        mp.setattr(parallel, "ordered_map", spy)


def error_key(exc: BaseException | None) -> tuple[Any, ...] | None:
    """Everything a corruption says, for comparison (exceptions do not compare by value)."""
    if exc is None:
        return None
    assert isinstance(exc, qjournal.CorruptJournalError)
    return (type(exc).__name__, exc.code, exc.offset, exc.file_offset, exc.reason, exc.hint, exc.source, str(exc))


def dumped(path: Path, output: str, markers: bool, jobs: int, **kw: Any) -> list[tuple[Any, ...]] | tuple[str, ...]:
    """Every run :func:`dumping.runs` yields for the journal at ``path``, in a comparable form."""
    try:
        r = qjournal.read(path, **kw)
    except qjournal.JournalError as exc:
        return ("open error", type(exc).__name__, str(exc))
    with r:
        return [(run.text, run.num_items, error_key(run.error), run.is_last)
                for run in dumping.runs(r.area, output, markers=markers, jobs=jobs)]


def assert_same(path: Path, *, in_process: bool = False, forms: list[tuple[str, bool]] = FORMS, **kw: Any) -> None:
    """Each form of the dump is the same for 1, 2 and 3 jobs, and the workers (not a fallback) gave it."""
    for output, markers in forms:
        serial = dumped(path, output, markers, 1, **kw)
        if isinstance(serial, list):
            assert serial and serial[-1][3], "the last run says replay ended there"
            assert not any(run[3] for run in serial[:-1]), "no run after the one where replay ended"
        for jobs in (2, 3):
            with pytest.MonkeyPatch.context() as mp:
                spy = Spy(mp, in_process=in_process)
                assert dumped(path, output, markers, jobs, **kw) == serial, (path, output, markers, jobs)
            if isinstance(serial, list):
                assert spy.calls == 1 and spy.delivered == len(serial), "every run came from a worker"


@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.name)
def test_golden_and_regression_vectors_through_forked_workers(vector: Path, tmp_path: Path, tiny_runs: None) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(vector.read_bytes())
    assert_same(path)


def assert_fuzz_input_same(data: bytes, tmp_path_factory: pytest.TempPathFactory, **kw: Any) -> None:
    """One fuzz input as a file, dumped one cluster per run by 1, 2 and 3 jobs (:func:`assert_same`)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
        mp.setattr(dumping, "RUN_CLUSTERS", 1)
        path = tmp_path_factory.mktemp("fuzz") / "j.bin"
        path.write_bytes(data)
        assert_same(path, **kw)


@settings(test_fuzz.FUZZ_SETTINGS, max_examples=EXAMPLES)
@given(data=test_fuzz.INPUTS)
def test_fuzz_inputs_dump_as_the_serial_dump(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert_fuzz_input_same(data, tmp_path_factory, in_process=True)


@settings(test_fuzz.FUZZ_SETTINGS, max_examples=max(5, EXAMPLES // 10))
@given(data=test_fuzz.INPUTS)
def test_fuzz_inputs_through_forked_workers(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert_fuzz_input_same(data, tmp_path_factory, forms=[("jsonl", False), ("human", True)])


@pytest.mark.parametrize("seed", range(6))
def test_built_journals_with_corruption_or_an_early_end(seed: int, tmp_path: Path, tiny_runs: None) -> None:
    """Replay ends in the middle of the area (an open cluster, or a corrupt one); the area is also embedded."""
    data = bytearray(test_fuzz.build_journal(seed, 12, 0.3 + 0.12 * seed))
    if seed % 2:
        at = 4096 * (2 + seed) + 3
        data[at : at + 2] = b"\x01\x02"  # an entry of size 1: corrupt (size_too_small) mid-area
    path = tmp_path / "j.bin"
    path.write_bytes(data)
    assert_same(path)
    guard = b"\x00guard\x00" * 700
    path.write_bytes(guard + data + guard)
    assert_same(path, offset=len(guard), length=len(data))


def test_a_corruption_from_a_worker_keeps_everything_it_says(tmp_path: Path, tiny_runs: None) -> None:
    data = bytearray(test_fuzz.build_journal(11, 6, 0.95))
    data[4096 * 4 : 4096 * 4 + 2] = b"\x01\x02"
    guard = b"\x00" * 8192
    path = tmp_path / "img.bin"
    path.write_bytes(guard + data + guard)
    with qjournal.read(path, offset=len(guard), length=len(data)) as r:
        last = list(dumping.runs(r.area, "jsonl", jobs=2))[-1]
    err = last.error
    assert isinstance(err, qjournal.CorruptJournalError)
    assert (err.code, err.offset, err.file_offset, err.source) == ("size_too_small", 4096 * 4, len(guard) + 4096 * 4,
                                                                   str(path))
    assert last.is_last


def test_a_file_replaced_under_its_name_is_dumped_by_this_process(tmp_path: Path, tiny_runs: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers open the path again; when it names another file now, the parent formats what it opened."""
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(5, 6, 0.9))
    spy = Spy(monkeypatch)
    with qjournal.read(path) as r:
        want = [run.text for run in dumping.runs(r.area, "human", jobs=1)]
        os.replace(path, tmp_path / "old.bin")
        path.write_bytes(b"\x00" * 6 * 4096)  # corrupt from its first byte: a worker reading it would say so
        got = [run.text for run in dumping.runs(r.area, "human", jobs=2)]
    assert got == want
    assert spy.calls == 1 and spy.delivered == 0, "the workers refused the other file; this process did it all"


def test_a_worker_that_dies_hands_the_rest_back(tmp_path: Path, tiny_runs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(8, 10, 0.97))
    real = parallel.run_range

    def fragile(job: parallel.RangeJob) -> dumping.Run:
        if job.start >= 4:
            os._exit(3)  # killed in the middle of its work: no result down the pipe
        return real(job)  # type: ignore[no-any-return]

    monkeypatch.setattr(parallel, "run_range", fragile)
    spy = Spy(monkeypatch)
    with qjournal.read(path) as r:
        want = list(dumping.runs(r.area, "jsonl", jobs=1))
        got = list(dumping.runs(r.area, "jsonl", jobs=2))
    assert got == want and len(want) == 10
    assert spy.delivered == 4, "runs 0-3 came from the workers, the rest from this process"


def test_what_the_caller_raises_is_not_swallowed_and_stops_the_workers(tmp_path: Path, tiny_runs: None) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(9, 8, 0.97))
    with qjournal.read(path) as r:
        g = dumping.runs(r.area, "human", jobs=2)
        assert isinstance(g, Generator)
        next(g)
        with pytest.raises(BrokenPipeError):
            g.throw(BrokenPipeError(32, "Broken pipe"))
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every worker was reaped (this test process has no other child)


def test_buffers_file_objects_and_one_job_stay_in_this_process(tmp_path: Path, tiny_runs: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object) -> None:
        raise AssertionError("no worker for this source")

    monkeypatch.setattr(parallel, "ordered_map", refuse)
    data = test_fuzz.build_journal(3, 4, 0.8)
    path = tmp_path / "j.bin"
    path.write_bytes(data)
    want = [run.text for run in dumping.runs(qjournal.read(path).area, "jsonl", jobs=1)]
    for source in (data, bytearray(data), memoryview(data)):
        assert [run.text for run in dumping.runs(qjournal.read(source).area, "jsonl", jobs=4)] == want
    with open(path, "rb") as f:
        assert [run.text for run in dumping.runs(qjournal.read(f).area, "jsonl", jobs=4)] == want


def test_below_the_threshold_the_dump_stays_in_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object) -> None:
        raise AssertionError("forked for a small area")

    monkeypatch.setattr(parallel, "ordered_map", refuse)
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(4, 8, 0.8))
    with qjournal.read(path) as r:
        assert r.len_area < parallel.PARALLEL_MIN_BYTES
        assert list(dumping.runs(r.area, "human", jobs=2))


def test_progress_rises_to_where_replay_ends(tmp_path: Path, tiny_runs: None) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(6, 8, 0.99))
    with qjournal.read(path) as r:
        for jobs in (1, 2):
            seen: list[int] = []
            list(dumping.runs(r.area, "jsonl", progress=seen.append, jobs=jobs))
            assert seen == sorted(seen) and seen[-1] == r.len_area, jobs


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    area = qjournal.read(test_fuzz.build_journal(1, 2, 0.5)).area
    with pytest.raises(ValueError, match="output must be one of"):
        next(dumping.runs(area, "xml"))
    with pytest.raises(qjournal.JournalArgumentError, match="jobs must be an integer >= 1"):
        next(dumping.runs(area, "human", jobs=0))


def test_the_command_line_dump_of_a_large_journal_is_the_same_for_any_jobs(tmp_path: Path) -> None:
    """At the real threshold and run size, through the command line: a journal past 8 MiB, corrupt near its end."""
    n = parallel.PARALLEL_MIN_BYTES // 4096 + 3 * dumping.RUN_CLUSTERS // 2
    data = bytearray(test_fuzz.build_journal(7, n, 0.97))
    at = 4096 * (n - n // 20)  # near the end, before the 3% left empty
    data[at : at + 2] = b"\x01\x02"
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    outs = {}
    for form in (["--output", "jsonl"], ["--output", "json", "--all"], ["--all"]):
        for jobs in ("1", "2"):
            p = subprocess.run([sys.executable, "-m", "qjournal", "dump", str(path), *form, "--jobs", jobs],
                               capture_output=True, text=True, check=False)
            assert p.returncode == 2, p.stderr  # the corruption: exit 2, after everything before it was printed
            assert "size_too_small" in p.stderr and "Traceback" not in p.stderr
            outs[(tuple(form), jobs)] = (p.stdout, p.stderr)
        assert outs[(tuple(form), "1")] == outs[(tuple(form), "2")], form
    assert outs[(("--output", "jsonl"), "1")][0].count("\n") > 90_000


def test_a_parallel_dump_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    n = parallel.PARALLEL_MIN_BYTES // 4096 + 8
    path = tmp_path / "big.bin"
    path.write_bytes(test_fuzz.build_journal(2, n, 0.97))
    p = subprocess.run(f"{sys.executable} -m qjournal dump {path} --output jsonl --jobs 2 | head -n 1",
                       shell=True, capture_output=True, text=True, check=False)
    assert p.stdout.count("\n") == 1 and p.stdout.startswith('{"ofs": 0')
    assert "Traceback" not in p.stderr and "Error" not in p.stderr, p.stderr


@pytest.mark.parametrize("seed", range(6))
def test_json_straight_from_the_parsed_entries_is_json_join_of_the_entries(seed: int) -> None:
    """dump's hot path formats the parsed entries directly: the same bytes as the entries built, then joined."""
    from qjournal.cluster import parse_cluster
    from qjournal.entries import json_join, json_join_parsed

    data = bytes(test_fuzz.build_journal(seed, 4, 0.8))
    for index in range(4):
        base = index * 4096
        entries = parse_cluster(data[base : base + 4096]).entries
        items = dumping.cluster_items(entries, base, False)
        for sep in ("\n", ",\n"):
            assert json_join_parsed(entries, base, sep) == (json_join(items, sep), len(items))
