"""The check by worker processes gives the serial check's answer, problem for problem (issue 13).

A large area that is a regular file opened by path is split into ranges of
clusters, each checked by a forked worker, and the parent merges the results in
order. Here the threshold and the range size are lowered to one cluster, so
every golden vector, every regression vector and every fuzz input (the fuzz
suite's own generator) goes through the merge with ranges of every kind: corrupt,
closed, open with a torn write, a dirty tail inside the cluster or in a later
range, all 0xFF. The serial report is the reference: problems (kind, offset,
reason, order), state, hint, and the error ``state()`` raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import qjournal
from qjournal import CorruptJournalError, checking, cli, parallel

HERE = Path(__file__).resolve().parent
VECTORS = sorted((HERE / "vectors").glob("*.bin")) + sorted((HERE / "vectors" / "regressions").glob("*.bin"))

import test_fuzz  # noqa: E402 - the fuzz suite's input generator and settings

EXAMPLES = max(10, test_fuzz.EXAMPLES // 2)


@pytest.fixture
def tiny_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every area is checked in parallel, one cluster per range."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(checking, "MIN_RANGE_CLUSTERS", 1)


def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the workers' function in this process (the merge logic, without the cost of forking per input)."""
    monkeypatch.setattr(parallel, "ordered_map", lambda fn, args, jobs: (fn(*a) for a in args))


def answer(path: Path, jobs: int, **kw: object) -> tuple[object, ...]:
    """Everything a check and a state say of the journal at ``path``."""
    try:
        with qjournal.read(path, **kw) as r:  # type: ignore[arg-type]
            report = r.check(jobs=jobs)
            try:
                state: object = r.state(jobs=jobs)
            except CorruptJournalError as exc:
                state = ("error", exc.code, exc.offset, exc.reason, exc.hint, str(exc))
    except qjournal.JournalError as exc:
        return ("open error", type(exc).__name__, str(exc))
    return report.problems, report.state, report.hint, state


class Fallbacks(logging.Handler):
    """The runner's log while it is attached: every record says why a run fell back to this process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Watch:
    """Counts the runs that went to workers (``parallel.ordered_map`` calls) and the fallbacks the runner logged."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fallbacks = Fallbacks()
        real = parallel.ordered_map

        def spy(fn: Any, args: Any, jobs: int) -> Iterator[Any]:
            self.calls += 1
            return real(fn, args, jobs)

        mp.setattr(parallel, "ordered_map", spy)
        logger = logging.getLogger("qjournal.parallel")
        mp.setattr(logger, "level", logging.DEBUG)
        logger.addHandler(self.fallbacks)

    def close(self) -> None:
        logging.getLogger("qjournal.parallel").removeHandler(self.fallbacks)


def assert_same(path: Path, **kw: object) -> None:
    serial = answer(path, 1, **kw)
    with pytest.MonkeyPatch.context() as mp:
        watch = Watch(mp)
        try:
            for jobs in (2, 3):
                assert answer(path, jobs, **kw) == serial, (path, jobs)
        finally:
            watch.close()
    if serial[0] != "open error":
        assert watch.calls and not watch.fallbacks.records, "the workers gave the answer, not a fallback to this process"


@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.name)
def test_golden_and_regression_vectors_through_forked_workers(vector: Path, tmp_path: Path, tiny_ranges: None) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(vector.read_bytes())
    assert_same(path)


@settings(test_fuzz.FUZZ_SETTINGS, max_examples=EXAMPLES)
@given(data=test_fuzz.INPUTS)
def test_fuzz_inputs_merge_as_the_serial_check(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
        mp.setattr(checking, "MIN_RANGE_CLUSTERS", 1)
        _in_process(mp)
        path = tmp_path_factory.mktemp("fuzz") / "j.bin"
        path.write_bytes(data)
        assert_same(path)


@settings(test_fuzz.FUZZ_SETTINGS, max_examples=max(5, EXAMPLES // 10))
@given(data=test_fuzz.INPUTS)
def test_fuzz_inputs_through_forked_workers(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
        mp.setattr(checking, "MIN_RANGE_CLUSTERS", 1)
        path = tmp_path_factory.mktemp("fuzz") / "j.bin"
        path.write_bytes(data)
        assert_same(path)


@pytest.mark.parametrize("seed", range(6))
def test_built_journals_with_dirt_far_past_the_tail(seed: int, tmp_path: Path, tiny_ranges: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay ends early; the first byte other than 0xFF lies ranges later (or nowhere)."""
    _in_process(monkeypatch)
    data = bytearray(test_fuzz.build_journal(seed, 12, 0.2 + 0.1 * seed))
    if seed % 3:
        data[4096 * (6 + seed) + 77 * seed] = 0x00
    path = tmp_path / "j.bin"
    path.write_bytes(data)
    assert_same(path)
    guard = b"\x00guard\x00" * 700
    path.write_bytes(guard + data + guard)
    assert_same(path, offset=len(guard), length=len(data))


def test_a_large_area_is_checked_by_workers_and_agrees(tmp_path: Path) -> None:
    """At the real threshold and range size: a journal past PARALLEL_MIN_BYTES, with anomalies in several ranges."""
    n = parallel.PARALLEL_MIN_BYTES // 4096 + 8
    data = bytearray(test_fuzz.build_journal(7, n, 0.97))
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    calls = []
    real = parallel.ordered_map

    def spy(fn, args, jobs):  # type: ignore[no-untyped-def]
        calls.append(len(args))
        return real(fn, args, jobs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "ordered_map", spy)
        assert_same(path)
    assert calls and min(calls) >= 2, "the large area went through the workers"


def test_buffers_file_objects_and_one_job_stay_serial(tmp_path: Path, tiny_ranges: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object) -> None:
        raise AssertionError("no worker for this source")

    monkeypatch.setattr(parallel, "ordered_map", refuse)
    data = test_fuzz.build_journal(3, 4, 0.8)
    path = tmp_path / "j.bin"
    path.write_bytes(data)
    for source in (data, bytearray(data), memoryview(data)):
        qjournal.read(source).check(jobs=4)
    with open(path, "rb") as f:
        qjournal.read(f).check(jobs=4)
    qjournal.read(path).check(jobs=1)


def test_a_process_with_other_threads_checks_serially(tmp_path: Path, tiny_ranges: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers are forked, and forking beside another thread is not safe: such a process stays serial."""
    def refuse(*a: object) -> None:
        raise AssertionError("forked beside another thread")

    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(4, 4, 0.8))
    want = answer(path, 1)
    monkeypatch.setattr(parallel, "ordered_map", refuse)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not parallel.can_fork()
        assert answer(path, 2) == want
    finally:
        stop.set()
        t.join()


def test_a_file_replaced_under_its_name_is_checked_serially(tmp_path: Path, tiny_ranges: None,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The workers open the path again; when it names another file now, the parent checks what it opened."""
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(5, 4, 0.8))
    caplog.set_level(logging.DEBUG, logger="qjournal.parallel")
    with qjournal.read(path) as r:
        want = r.check(jobs=1)
        os.replace(path, tmp_path / "old.bin")
        path.write_bytes(b"\x00" * 4 * 4096)
        assert r.check(jobs=2) == want
    assert [rec.getMessage() for rec in caplog.records] == [
        f"{path} is no longer the file this process opened: this process goes on from cluster 0"
    ]


def test_progress_rises_to_the_area_length(tmp_path: Path, tiny_ranges: None) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(6, 8, 0.9))
    seen: list[int] = []
    with qjournal.read(path) as r:
        r.check(seen.append, jobs=2)
        assert seen == sorted(seen) and seen[-1] == r.len_area


def test_open_for_append_validates_through_the_workers(tmp_path: Path, tiny_ranges: None) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(8, 6, 0.7))
    want = qjournal.read(path).state(jobs=1)
    with qjournal.open_for_append(path, jobs=2) as w:
        assert w.state() == want
    corrupt = bytearray(path.read_bytes())
    corrupt[4096 * 3] = 0x01
    path.write_bytes(corrupt)
    with pytest.raises(CorruptJournalError) as serial:
        qjournal.read(path).state(jobs=1)
    with pytest.raises(CorruptJournalError) as par:
        qjournal.open_for_append(path, jobs=2)
    assert str(par.value) == str(serial.value) and par.value.offset == serial.value.offset


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2", parallel.MAX_JOBS + 1, 1000])
def test_jobs_must_be_a_positive_integer(jobs: object) -> None:
    with pytest.raises(qjournal.JournalArgumentError, match="jobs"):
        qjournal.read(bytes(b"\xff" * 4096)).check(jobs=jobs)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["check", "info", "dump", "append", "index", "verify"])
def test_jobs_has_a_bound_and_help_says_processes_or_threads(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = {"index": ["i.qcow2", "j.bin"], "verify": ["j.bin", "i.qcow2"]}.get(command, ["j.bin"])
    assert cli.main([command, *args, "--jobs", "1000"]) == 1
    assert f"from 1 to {parallel.MAX_JOBS}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    threads = command in ("index", "verify")
    assert ("threads, or forked processes for blocks under 64 KiB" if threads
            else "processes (forked workers, not threads)") in text
    assert f"at most {parallel.MAX_JOBS}" in text


def test_default_jobs_is_the_usable_cores() -> None:
    assert parallel.default_jobs() == len(os.sched_getaffinity(0))
    assert parallel.resolve_jobs(None) == parallel.default_jobs()


def _square_or_fail(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x * x


def test_ordered_map_yields_in_order_and_raises_a_workers_error_in_its_turn() -> None:
    got = []
    with pytest.raises(ValueError, match="seven"):
        for v in parallel.ordered_map(_square_or_fail, [(i,) for i in range(12)], 3):
            got.append(v)
    assert got == [i * i for i in range(7)]
    assert list(parallel.ordered_map(_square_or_fail, [(i,) for i in range(5)], 8)) == [0, 1, 4, 9, 16]


def test_ordered_map_stopped_early_leaves_no_worker() -> None:
    gen = parallel.ordered_map(_square_or_fail, [(i,) for i in range(6)], 2)
    assert next(gen) == 0
    gen.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every worker was reaped (this test process has no other child)


def test_a_worker_that_dies_is_reported() -> None:
    def die(x: int) -> int:
        os._exit(3)

    with pytest.raises(parallel.WorkerDied):
        list(parallel.ordered_map(die, [(1,)], 1))


@pytest.mark.parametrize("command", ["check", "dump"])
def test_a_worker_bug_falls_back_and_debug_says_why(command: str, tmp_path: Path, tiny_ranges: None,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An unexpected exception in a worker: the answer comes from this process, and --debug shows the worker's traceback."""
    monkeypatch.setattr(qjournal.dumping, "RUN_CLUSTERS", 1)
    path = tmp_path / "j.bin"
    path.write_bytes(test_fuzz.build_journal(5, 6, 0.9))
    parent = os.getpid()
    module, name = (checking, "_check_range") if command == "check" else (qjournal.dumping, "format_run")
    real = getattr(module, name)

    def buggy(area: Any, start: int, stop: int, *a: Any, **kw: Any) -> Any:
        if os.getpid() != parent and start >= 2:
            raise RuntimeError("a bug in a worker")
        return real(area, start, stop, *a, **kw)

    want_code = cli.main([command, str(path), "--jobs", "1"])
    want_said = capsys.readouterr()
    want: list[object] = [want_code, want_said]
    monkeypatch.setattr(module, name, buggy)
    quiet = [cli.main([command, str(path), "--jobs", "2"]), capsys.readouterr()]
    assert quiet == want  # the same answer, and without --debug not a word more
    code = cli.main([command, str(path), "--jobs", "2", "--debug"])
    out, err = capsys.readouterr()
    assert (code, out) == (want_code, want_said.out)
    assert err.startswith("qjournal: debug: a worker failed unexpectedly: this process goes on from cluster 2\n"), err
    assert "RuntimeError: a bug in a worker" in err and "in a worker process:" in err and "in run_range" in err
    assert not logging.getLogger("qjournal").handlers, "the --debug handler is removed when the command ends"


def _open_descriptors() -> list[int]:
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))


def test_workers_close_the_descriptors_they_inherit(tmp_path: Path) -> None:
    """A worker holds none of its parent's open files: not the one a writer's lock lives on."""
    path = tmp_path / "j.bin"
    path.write_bytes(b"\xff" * 4096)
    with open(path, "rb") as locked:
        fd = locked.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seen = list(parallel.ordered_map(_open_descriptors, [(), ()], 2))
    for fds in seen:
        assert fd not in fds
        assert len([fd for fd in fds if fd > 2]) <= 2  # its pipe (and the listing's own descriptor)


def test_a_writer_killed_while_its_workers_validate_leaves_no_lock_behind(tmp_path: Path) -> None:
    """The next writer is not refused because forked validation workers still hold the dead writer's lock."""
    path = tmp_path / "j.bin"
    with qjournal.create(path, 4096) as w:  # 16 MiB: validated by workers
        w.append_many([qjournal.HashEntry(i.to_bytes(32, "big"), i, i) for i in range(200_000)])
    script = (
        "import os, sys, qjournal\n"
        "from qjournal import checking\n"
        "real = checking._check_range\n"
        "def slow(area, start, stop, p, *a):\n"
        "    if os.getpid() != parent:\n"
        "        sys.stdout.write(f'{os.getpid()}\\n'); sys.stdout.flush(); import time; time.sleep(30)\n"
        "    return real(area, start, stop, p, *a)\n"
        "parent = os.getpid(); checking._check_range = slow\n"
        "qjournal.open_for_append(sys.argv[1], jobs=2)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        assert proc.stdout is not None
        workers = [int(proc.stdout.readline()) for _ in range(2)]
        proc.kill()
        proc.wait()
        time.sleep(0.1)
        with qjournal.open_for_append(path, jobs=1) as w:  # the workers still sleep: only their lock would refuse this
            assert w.state().num_entries == 200_000
    finally:
        proc.kill()
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
