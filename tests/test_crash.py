"""Crash simulation (issue 5): every crash image replays a prefix of the committed batches.

A seeded workload (open or create --force over an old journal, atomic batches
of 1 to 120 entries, single appends, batches that do not fit, close and
reopen, ``qjournal append --from`` batches, pack into the area, reset) runs
against a real file holding an embedded area between guard bytes, under
:class:`crash_sim.Recorder`.
Then every crash image of its writes (``crash_sim.crash_images``: prefixes,
writes torn at each 512-byte sector boundary, and subsets of the writes since
the last fsync) is checked:

- the guard bytes before and after the area are untouched;
- the reader replays exactly the entries of the operations that had returned,
  or of those plus the one in flight: never part of a batch, never an entry
  that was not appended; it never finds corruption, only the anomalies a crash
  leaves (torn write, dirty tail);
- opening for append (a copy, in memory; a sample through a file) succeeds,
  erases what the crash left, and after one append the area is byte for byte
  what D6 says: the bytes before the tail kept, the new entry (after an END
  when it does not fit), 0xFF everywhere else.

``QJOURNAL_CRASH_IMAGES`` (default 10000) is how many distinct crash images the
main test checks at least: it runs workload after workload (seeds 0, 1, ...)
until it has. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from crash_sim import SECTOR, Barrier, Crash, Event, Mark, Recorder, Write, crash_images
from test_fuzz import REGRESSIONS, EntryKey, build_journal, entry_key, run_cli

import qjournal
from qjournal import CorruptJournalError, HashEntry, JournalFullError, RawEntry
from qjournal import writer as writer_mod

Replay = tuple[EntryKey, ...]
"""The entries a replay gives, as :func:`test_fuzz.entry_key` tuples."""

CLUSTER = 4096
TARGET = int(os.environ.get("QJOURNAL_CRASH_IMAGES", "10000"))
CRASH_ANOMALIES = {"torn_write", "dirty_tail"}
PROBE = HashEntry(bytes(range(100, 132)), 0xABC, 0xDEF)
PROBE_BYTES = bytes([50, 0x02]) + PROBE.digest + (0xABC).to_bytes(8, "big") + (0xDEF).to_bytes(8, "big")
APPENDS = ("batch", "big batch", "single")
LAYOUTS = [  # (bytes before the area, clusters): aligned, and not aligned to a sector
    (8192, 3),
    (3000, 2),
    (512 * 5 + 100, 4),
    (0, 2),
]


def _random_entry(rng: random.Random) -> qjournal.Entry:
    r = rng.random()
    if r < 0.7:
        return HashEntry(rng.randbytes(32), rng.randrange(2**64), rng.randrange(2**64))
    if r < 0.85:
        return HashEntry(rng.randbytes(rng.randint(1, 236)), rng.randrange(2**40), 7)
    return RawEntry(rng.choice([0x00, 0x03, 0x42, 0xFE]), rng.randbytes(rng.randint(0, 252)))


@dataclass
class Run:
    """A recorded workload: the file's starting bytes, the log, and the replay after each operation."""

    path: Path
    area_offset: int
    len_area: int
    start: bytes
    events: list[Event]
    before: list[Replay] = field(default_factory=list)
    """before[op]: the entries (as entry_key tuples) replayed before operation ``op``."""
    after: list[Replay] = field(default_factory=list)
    """after[op]: the entries replayed once operation ``op`` returned."""
    ops: list[str] = field(default_factory=list)
    middle: dict[int, list[Replay]] = field(default_factory=dict)
    """Replays an operation of two steps may show between them (pack: the emptied target)."""

    def acceptable(self, crash: Crash) -> list[Replay]:
        """The replays a crash at this point may show: every op that returned, plus perhaps the one in flight."""
        if crash.in_flight is not None:
            op = crash.in_flight
            return [self.before[op], *self.middle.get(op, []), self.after[op]]
        if crash.done:
            return [self.after[crash.done[-1]]]
        return [self.before[0]] if self.before else []


def _keys(entries: list[qjournal.Entry]) -> Replay:
    return tuple(entry_key(e) for e in entries)


def record_workload(
    tmp: Path,
    seed: int,
    *,
    durable: bool = True,
    start_area: bytes | None = None,
    layout: tuple[int, int] | None = None,
    num_ops: int = 14,
) -> Run:
    """Run a seeded workload on a fresh file (or one whose area is ``start_area``), recording it."""
    rng = random.Random(seed)
    guard_len, num_clusters = layout or LAYOUTS[seed % len(LAYOUTS)]
    len_area = CLUSTER * num_clusters
    recreate = start_area is None and seed % 5 == 2
    if recreate:  # an old journal in the area, formatted again by create(force=True)
        start_area = build_journal(seed, num_clusters, 0.4)
    if start_area is not None:
        len_area = len(start_area)
    area = start_area if start_area is not None else b"\xff" * len_area
    path = tmp / f"image-{seed}.qcow2"
    guard_before = rng.randbytes(guard_len)
    guard_after = rng.randbytes(rng.randint(1, 2 * SECTOR))
    start = guard_before + area + guard_after
    path.write_bytes(start)
    initial = _keys(list(qjournal.read(area)))
    run = Run(path, guard_len, len_area, start, [])
    content = initial
    writer: Any = None

    def op(name: str, fn: Callable[[], Replay]) -> None:
        nonlocal content
        index = len(run.ops)
        run.ops.append(name)
        run.before.append(content)
        rec.mark("begin", index)
        content = fn()
        rec.mark("end", index)
        run.after.append(content)

    def do_open() -> Replay:
        nonlocal writer
        writer = writer_mod.open_for_append(path, guard_len, len_area, durable=durable, unaligned_offset=True)
        return content

    def do_close() -> Replay:
        writer.close()
        return content

    def do_batch(batch: list[qjournal.Entry]) -> Callable[[], Replay]:
        def fn() -> Replay:
            try:
                placed = writer.append_many(batch)
            except JournalFullError:
                return content
            return content + _keys(placed)

        return fn

    def do_single(entry: qjournal.Entry) -> Callable[[], Replay]:
        def fn() -> Replay:
            try:
                placed = writer.append(entry)
            except JournalFullError:
                return content
            return content + _keys([placed])

        return fn

    def do_reset() -> Replay:
        writer.reset()
        return ()

    def do_create() -> Replay:
        nonlocal writer
        writer = qjournal.create(path, offset=guard_len, length=len_area, force=True, durable=durable, unaligned_offset=True)
        return ()

    def do_cli_batch(batch: list[qjournal.Entry]) -> Callable[[], Replay]:
        """``qjournal append --from FILE``: the CLI's batch append, one atomic append_many."""

        def fn() -> Replay:
            lines = tmp / f"batch-{seed}.jsonl"
            lines.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in batch))
            code, _, err = run_cli(["append", str(path), "--offset", str(guard_len), "--length", str(len_area), "--from", str(lines),
                                    "--unaligned-offset"])
            if code == 1 and "full" in err:
                return content
            assert code == 0, err
            got = _keys(list(qjournal.read(path, guard_len, len_area)))
            assert got[: len(content)] == content
            assert [k[1:] for k in got[len(content) :]] == [entry_key(e)[1:] for e in batch]
            return got

        return fn

    def do_pack() -> Replay:
        """pack another journal into this area: create(force=True), then one batch of its live entries."""
        source = tmp / f"source-{seed}.qjournal"
        source.write_bytes(build_journal(seed + 1, 2, rng.random() * 0.6))
        try:
            qjournal.pack(source, path, target_offset=guard_len, target_length=len_area, force=True, durable=durable,
                          unaligned_offset=True)
        except JournalFullError:
            return content
        run.middle[len(run.ops) - 1] = [()]
        got = _keys(list(qjournal.read(path, guard_len, len_area)))
        with qjournal.read(source) as reader, reader.live() as index:
            live = list(index.values())
        assert [k[1:] for k in got] == [entry_key(e)[1:] for e in live]
        return got

    with Recorder(path) as rec:
        op("create --force" if recreate else "open", do_create if recreate else do_open)
        for _ in range(num_ops):
            r = rng.random()
            if r < 0.45:
                op("batch", do_batch([_random_entry(rng) for _ in range(rng.randint(1, 8))]))
            elif r < 0.6:
                op("big batch", do_batch([_random_entry(rng) for _ in range(rng.randint(20, 120))]))
            elif r < 0.8:
                op("single", do_single(_random_entry(rng)))
            elif r < 0.9:
                op("close", do_close)
                r2 = rng.random()
                if r2 < 0.3:
                    op("cli batch", do_cli_batch([_random_entry(rng) for _ in range(rng.randint(1, 30))]))
                elif r2 < 0.45:
                    op("pack", do_pack)
                op("open", do_open)
            elif r < 0.94 and seed % 2 == 0:
                op("reset", do_reset)
            else:
                op("batch", do_batch([_random_entry(rng) for _ in range(rng.randint(2, 4))]))
        op("close", do_close)
    run.events = rec.events
    return run


@dataclass
class Tally:
    generated: int = 0
    checked: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    seen: dict[bytes, Replay | str] = field(default_factory=dict)
    save: bool = True
    """Keep the first violating images under tests/vectors/regressions/new/ (not for the mutants)."""


def check_image(run: Run, crash: Crash, tally: Tally) -> None:
    """Check one crash image; record a violation instead of raising."""
    tally.generated += 1
    img = crash.image
    key = hashlib.blake2b(img, digest_size=16).digest()
    result = tally.seen.get(key)
    if result is None:
        tally.checked += 1
        tally.by_model[crash.model] = tally.by_model.get(crash.model, 0) + 1
        try:
            n = tally.checked
            result = _examine(run, img, use_file=False, deep=n % 16 == 0)
        except AssertionError as exc:
            result = f"{exc}"
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
        tally.seen[key] = result
    want = run.acceptable(crash)
    if isinstance(result, str):
        problem = result
    elif result not in want:
        problem = (
            f"replayed {len(result)} entries, expected one of {[len(w) for w in want]} "
            f"(ops done {len(crash.done)}, in flight {crash.in_flight} {run.ops[crash.in_flight] if crash.in_flight is not None else ''})"
        )
    else:
        return
    message = f"{crash.model} crash at event {crash.point} of {len(run.events)} ({run.path.name}): {problem}"
    if tally.save and len(tally.violations) < 5:
        _save(crash.image[run.area_offset : run.area_offset + run.len_area], message)
    tally.violations.append(message)


def _save(area: bytes, message: str) -> None:
    new = REGRESSIONS / "new"
    new.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(area).hexdigest()[:16]
    (new / f"crash-{name}.bin").write_bytes(area)
    (new / f"crash-{name}.txt").write_text(message + "\n")


def expected_after_probe(area: bytes, ofs_tail: int) -> tuple[bytes, bool]:
    """The area after open-for-append and one PROBE append, by D6 alone: the bytes before the
    tail kept, 0xFF after it, the PROBE placed (after an END when it does not fit); and whether it fits."""
    n = len(area)
    want = bytearray(area[:ofs_tail]) + b"\xff" * (n - ofs_tail)
    o = ofs_tail % CLUSTER
    if ofs_tail < n and o + len(PROBE_BYTES) + 2 <= CLUSTER:
        want[ofs_tail : ofs_tail + len(PROBE_BYTES)] = PROBE_BYTES
        return bytes(want), True
    at = ofs_tail - o + CLUSTER
    if ofs_tail >= n or at >= n:
        return bytes(want), False
    want[ofs_tail : ofs_tail + 2] = bytes([CLUSTER - o, 0x01])
    want[at : at + len(PROBE_BYTES)] = PROBE_BYTES
    return bytes(want), True


def _examine(run: Run, img: bytes, *, use_file: bool, deep: bool = False) -> Replay:
    """Guards, replay, check, reopen and append for one image; the replayed entries.

    After the reopen and one append the area must be exactly :func:`expected_after_probe`
    (so the crash's leftovers are erased and nothing else moved); ``deep`` also replays it.
    """
    lo, hi = run.area_offset, run.area_offset + run.len_area
    assert img[:lo] == run.start[:lo] and img[hi:] == run.start[hi:], "a write touched the guard bytes"
    area = img[lo:hi]
    reader = qjournal.read(area)
    try:
        got = _keys(list(reader))
    except CorruptJournalError as exc:
        raise AssertionError(f"replay found corruption: {exc}") from None
    report = reader.check()
    assert report.state is not None, f"check found corruption: {report.problems}"
    kinds = {p.code for p in report.problems}
    assert kinds <= CRASH_ANOMALIES | {"unassigned_type"}, f"unexpected anomalies {kinds}"
    tail = report.state.ofs_tail
    want, fits = expected_after_probe(area, tail)

    # reopen (a copy) and append one entry
    buf = bytearray(img)
    target: Any = buf
    if use_file:
        path = run.path.with_suffix(".reopen")
        path.write_bytes(img)
        target = path
    with writer_mod.open_for_append(target, lo, run.len_area, durable=False, unaligned_offset=True) as w:
        assert w.ofs_tail == tail, f"the writer found the tail at {w.ofs_tail:#x}, the reader at {tail:#x}"
        try:
            placed = [w.append(PROBE)]
            assert fits, f"appended at {placed[0].ofs:#x} where D6 says the journal is full"
        except JournalFullError:
            assert not fits, f"refused an append that fits at {tail:#x}"
            placed = []
    if use_file:
        buf = bytearray(target.read_bytes())
        target.unlink()
    assert buf[:lo] == run.start[:lo] and buf[hi:] == run.start[hi:], "reopen/append touched the guard bytes"
    if buf[lo:hi] != want:
        diff = next(i for i in range(run.len_area) if buf[lo + i] != want[i])
        raise AssertionError(f"after reopen and append the area differs from D6 at {diff:#x} (tail was {tail:#x})")
    if deep:
        assert _keys(list(qjournal.read(bytes(buf[lo:hi])))) == got + _keys(placed)
    return got


def run_and_check(run: Run, tally: Tally, models: tuple[str, ...] = ("prefix", "torn", "reorder")) -> None:
    """Check that every write stays in the area, then every crash image of ``run``."""
    lo, hi = run.area_offset, run.area_offset + run.len_area
    for w in run.events:
        if isinstance(w, Write) and not (lo <= w.pos and w.pos + len(w.data) <= hi):
            tally.violations.append(f"a write of {len(w.data)} bytes at file offset {w.pos:#x} leaves the area [{lo:#x}, {hi:#x})")
    for crash in crash_images(run.start, run.events, models, seed=len(run.events)):
        check_image(run, crash, tally)


def _report(tally: Tally, what: str, elapsed: float) -> None:
    print(
        f"\n{what}: {tally.checked} distinct crash images checked ({tally.generated} generated; "
        f"by model {dict(sorted(tally.by_model.items()))}) in {elapsed:.1f} s; {len(tally.violations)} violations"
    )


def _assert_none(tally: Tally) -> None:
    assert not tally.violations, f"{len(tally.violations)} violations, the first: " + "\n".join(tally.violations[:5])


# -- the tests ---------------------------------------------------------------------


def test_crash_images(tmp_path: Path) -> None:
    """At least QJOURNAL_CRASH_IMAGES distinct crash images (default 10000), all three models."""
    t0 = time.monotonic()
    tally = Tally()
    seed = 0
    runs = 0
    while tally.checked < TARGET:
        run = record_workload(tmp_path, seed)
        run_and_check(run, tally)
        seed += 1
        runs += 1
        assert runs < 10 * TARGET, "the workloads stopped producing new images"
    _report(tally, f"{runs} workloads", time.monotonic() - t0)
    _assert_none(tally)
    assert tally.checked >= TARGET and all(tally.by_model.get(m, 0) > 0 for m in ("prefix", "torn", "reorder"))


def test_crash_during_recovery(tmp_path: Path) -> None:
    """Start from crash images that left a torn batch or a dirty tail: the erase on open must survive a crash too."""
    tally = Tally()
    starts = 0
    for seed in range(200, 222):
        first = record_workload(tmp_path, seed, num_ops=6)
        lo, hi = first.area_offset, first.area_offset + first.len_area
        dirty = [c for c in crash_images(first.start, first.events, ("torn",)) if c.in_flight is not None]
        random.Random(seed).shuffle(dirty)
        for crash in dirty[:1]:
            area = crash.image[lo:hi]
            kinds = {p.code for p in qjournal.read(area).check().problems}
            if not kinds & CRASH_ANOMALIES:
                continue
            starts += 1
            run = record_workload(tmp_path, seed * 7 + starts, start_area=area, num_ops=3)
            run_and_check(run, tally)
    _report(tally, f"recovery from {starts} dirty starts", 0)
    _assert_none(tally)
    assert starts >= 15


def test_process_crash_without_fsync(tmp_path: Path) -> None:
    """durable=False (flush, no fsync): safe against a crash of the process, i.e. whole writes in order."""
    tally = Tally()
    for seed in range(300, 320):
        run = record_workload(tmp_path, seed, durable=False)
        in_flight = None
        for e in run.events:
            if isinstance(e, Mark):
                in_flight = e.op if e.what == "begin" else None
            elif e == Barrier("sync"):
                assert in_flight is not None, "a sync outside any operation"
                assert run.ops[in_flight] not in APPENDS + ("open", "reset"), f"durable=False fsynced in {run.ops[in_flight]}"
        run_and_check(run, tally, ("prefix",))
    _report(tally, "durable=False, prefix model", 0)
    _assert_none(tally)
    assert tally.checked > 200


def test_reopen_through_the_file_path(tmp_path: Path) -> None:
    """A sample of crash images reopened through a real file rather than a bytearray."""
    tally = Tally()
    sample = []
    for seed in (5, 6, 7):
        run = record_workload(tmp_path, seed)
        crashes = list(crash_images(run.start, run.events, ("torn", "reorder")))
        sample += [(run, c) for c in random.Random(seed).sample(crashes, min(50, len(crashes)))]
    for run, crash in sample:
        tally.generated += 1
        tally.checked += 1
        try:
            got = _examine(run, crash.image, use_file=True, deep=True)
            assert got in run.acceptable(crash)
        except AssertionError as exc:
            tally.violations.append(str(exc))
    _assert_none(tally)
    assert tally.checked >= 100


def test_commit_protocol_in_the_log(tmp_path: Path) -> None:
    """Each append, as recorded: its anchor alone, fsync; its bytes with the commit byte 0xFF, fsync; that byte, fsync."""
    run = record_workload(tmp_path, 11, num_ops=30)
    spans: dict[int, list[Event]] = {}
    current: int | None = None
    for e in run.events:
        if isinstance(e, Mark):
            current = e.op if e.what == "begin" else None
            continue
        if current is not None:
            spans.setdefault(current, []).append(e)
    checked = anchored_next = 0
    for index, name in enumerate(run.ops):
        if name not in ("batch", "big batch", "single") or run.after[index] == run.before[index]:
            continue
        log = spans[index]
        writes = [e for e in log if isinstance(e, Write)]
        anchor, commit = writes[0], log[-2]
        assert log[1] == Barrier("sync"), f"op {index}: the anchor is not made durable before the rest: {log[:2]}"
        assert len(anchor.data) == 1 and anchor.data != b"\xff", f"op {index}: the first write is not one anchor byte"
        assert log[-3] == Barrier("sync") and log[-1] == Barrier("sync"), f"op {index}: {log[-3:]}"
        assert isinstance(commit, Write) and len(commit.data) == 1 and commit.data != b"\xff", (
            f"op {index}: the last write is not the one commit byte: {commit}"
        )
        tail = commit.pos - 1 - run.area_offset  # the commit byte is the type byte at the tail
        if (tail % CLUSTER) == CLUSTER - 255 and anchor.pos - run.area_offset == tail - tail % CLUSTER + CLUSTER:
            anchored_next += 1  # the batch opens with an END of 255, whose size byte is 0xFF
        else:
            assert anchor.pos - run.area_offset == tail, f"op {index}: the anchor is not the size byte at the tail"
        rest = writes[1:-1]
        changed = [w.pos + i for w in rest for i, b in enumerate(w.data) if b != 0xFF]
        assert all(pos > anchor.pos for pos in changed), f"op {index}: a byte before the anchor changed"
        assert all(
            not (w.pos <= commit.pos < w.pos + len(w.data)) or w.data[commit.pos - w.pos] == 0xFF for w in rest
        ), f"op {index}: the commit byte was written before the fsync"
        checked += 1
    assert checked >= 10


# -- the harness must be able to fail --------------------------------------------------


def _mutant_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutate: Callable[[], None]) -> Tally:
    mutate()
    tally = Tally(save=False)
    for seed in (1000, 1001, 1003):  # seeds without a reset: the mutants must fail on crashes alone
        run = record_workload(tmp_path, seed, num_ops=10)
        run_and_check(run, tally)
    monkeypatch.undo()
    return tally


def test_harness_catches_a_commit_in_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that writes the batch with its type byte in one go: a torn write shows part of a batch."""

    def one_write(self: Any, runs: Any) -> None:
        for pos, data in runs:
            self._write(pos, data)
        self._barrier()

    tally = _mutant_run(tmp_path, monkeypatch, lambda: monkeypatch.setattr(writer_mod.JournalWriter, "_commit", one_write))
    assert tally.violations, "the harness missed a non-atomic commit"


def _drop_barrier(which: int) -> Callable[[Any, Any], None]:
    """``JournalWriter._commit`` with its barrier number ``which`` (0: after the anchor, 1: before the commit byte) gone."""
    real = writer_mod.JournalWriter._commit

    def commit(self: Any, runs: Any) -> None:
        barrier = self._barrier
        calls: list[int] = []

        def counted() -> None:
            calls.append(1)
            if len(calls) - 1 != which:
                barrier()

        self._barrier = counted
        try:
            real(self, runs)
        finally:
            self._barrier = barrier

    return commit


def test_harness_catches_a_missing_barrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer with no fsync between the batch and its commit byte: reordering shows a commit without its entry."""
    mutant = _drop_barrier(1)
    tally = _mutant_run(tmp_path, monkeypatch, lambda: monkeypatch.setattr(writer_mod.JournalWriter, "_commit", mutant))
    assert tally.violations, "the harness missed a missing barrier"


def test_harness_catches_an_anchor_that_is_not_durable_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer with no fsync after the anchor: a crash can leave a batch's bytes without it, which no open may
    erase (they cannot be told from foreign data), so the reopen of such an image is refused."""
    mutant = _drop_barrier(0)
    tally = _mutant_run(tmp_path, monkeypatch, lambda: monkeypatch.setattr(writer_mod.JournalWriter, "_commit", mutant))
    assert any("ForeignDataError" in v or "not what an interrupted append leaves" in v for v in tally.violations), (
        "the harness missed an anchor written with the rest of the batch"
    )


def test_harness_catches_a_reopen_without_erase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that appends after a crash without erasing: the stale bytes of the torn batch come back."""
    tally = _mutant_run(tmp_path, monkeypatch, lambda: monkeypatch.setattr(writer_mod, "erase", lambda *a, **k: None))
    assert tally.violations, "the harness missed a missing erase"


def test_harness_catches_a_write_outside_the_area(tmp_path: Path) -> None:
    run = record_workload(tmp_path, 3, num_ops=2)
    run.events.append(Write(run.area_offset - 1, b"\x00"))
    tally = Tally(save=False)
    run_and_check(run, tally, ("prefix",))
    assert any("leaves the area" in v for v in tally.violations)
    assert any("guard" in v for v in tally.violations)
