"""Parallel readers beside a writer show the journal before a batch or after it, never part of one.

A subprocess appends batches of 200 HASH entries while this process checks and
dumps the journal with two workers, ranges of a few clusters each (thresholds
lowered, as in test_parallel.py), again and again: every answer holds a whole
number of batches. QJOURNAL_APPEND_RUNS sets how many rounds (journals filled).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import qjournal
from qjournal import checking, dumping, parallel

BATCH = 200
ROUNDS = int(os.environ.get("QJOURNAL_APPEND_RUNS", "2"))

APPENDER = """
import random, sys, time, qjournal
path, batch = sys.argv[1], int(sys.argv[2])
with qjournal.open_for_append(path, durable=False, jobs=1) as w:
    print("ready", flush=True)
    k = 0
    while True:
        entries = [qjournal.HashEntry((k * batch + i).to_bytes(32, "big"), k, i) for i in range(batch)]
        try:
            w.append_many(entries)
        except qjournal.JournalFullError:
            break
        k += 1
        time.sleep(random.uniform(0, 0.006))  # readers come at every moment of a batch's life
print(k, flush=True)
"""


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(checking, "MIN_RANGE_CLUSTERS", 3)
    monkeypatch.setattr(dumping, "RUN_CLUSTERS", 3)


def _read_beside_an_appender(path: Path) -> tuple[list[int], list[int], int]:
    """Check and dump ``path`` with two workers until the appender has filled it: the entries each one saw."""
    with qjournal.create(path, 768):
        pass
    proc = subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(BATCH)], stdout=subprocess.PIPE, text=True)
    checked: list[int] = []
    dumped: list[int] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        while proc.poll() is None:
            with qjournal.read(path) as r:
                report = r.check(jobs=2)
                assert report.state is not None, report.problems
                checked.append(report.state.num_entries)
                text = "".join(run.text + "\n" for run in dumping.runs(r.area, "jsonl", jobs=2) if run.num_items)
                dumped.append(text.count("\n"))
        batches = int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    return checked, dumped, batches


def test_check_and_dump_beside_an_appender_never_show_part_of_a_batch(tmp_path: Path, small_ranges: None) -> None:
    for k in range(ROUNDS):
        path = tmp_path / f"j{k}.bin"
        checked, dumped, batches = _read_beside_an_appender(path)
        assert batches > 100 and len(checked) >= 5
        assert [n for n in checked if n % BATCH] == [], "check saw part of a batch"
        assert [n for n in dumped if n % BATCH] == [], "dump printed part of a batch"
        with qjournal.read(path) as r:
            assert r.check(jobs=2).state.num_entries == batches * BATCH  # type: ignore[union-attr]
