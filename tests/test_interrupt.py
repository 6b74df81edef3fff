"""An append interrupted at any point: the writer's next append is correct or refuses clearly, never wrong (D20-D22).

Every entry point of the writer (``append_hash``, ``append_raw``, ``append``,
``append_many`` (what ``qjournal append`` calls), ``append_stream``, and a
stream that fails part-way) is interrupted, one run per point, at every point
it reaches, on in-memory and file journals whose tails sit where a batch opens
with an entry, with an END, with the END of size 255, and where it does not fit:

- at every line the package executes during the call, by a ``KeyboardInterrupt``
  raised from a trace function (a Ctrl-C lands between two lines);
- on a file, before and after every write, flush and fsync, and in the middle of
  a write (half of it written), through a wrapped file object and a patched
  ``os.fsync``, with an ``OSError`` and with a ``KeyboardInterrupt``.

Then a new entry is appended, by the same writer and, in another run, by a
fresh one (on a file, one or the other, point by point). The journal must
replay exactly the acknowledged entries, the interrupted batch whole or not at
all, then the new entry; never a corruption, nothing past the tail but 0xFF
(a check finds no torn write, no dirty tail), and the writer's ``state()``
must be the reader's. The erase that an interruption leaves to the next append is then
interrupted in turn, and so is ``reset()``. ``QJOURNAL_INTERRUPT_STRIDE``
(default 1) tries every Nth point only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, cast

import pytest

import qjournal
from qjournal import Entry, HashEntry, JournalError, JournalWriter, RawEntry

CLUSTER = 4096
STRIDE = max(1, int(os.environ.get("QJOURNAL_INTERRUPT_STRIDE", "1")))
PACKAGE = os.path.dirname(qjournal.__file__) + os.sep
GENERATED = os.path.join(PACKAGE, "generated") + os.sep
NEW = HashEntry(bytes(range(200, 232)), 0x77, 0x99)
REAL_FSYNC = os.fsync


def hash_entry(len_entry: int, seed: int) -> HashEntry:
    return HashEntry(bytes((seed + i) % 256 for i in range(len_entry - 18)), seed, seed + 1)


def raw_entry(len_entry: int, seed: int) -> RawEntry:
    return RawEntry(0x03 + seed % 200, bytes((seed * 7 + i) % 256 for i in range(len_entry - 2)))


def fill(sizes: list[int]) -> list[Entry]:
    return [raw_entry(s, i) if i % 2 else hash_entry(max(19, s), i) for i, s in enumerate(sizes)]


@dataclass(frozen=True)
class Start:
    """A journal to interrupt an append of: ``num_clusters`` clusters holding ``entries``."""

    name: str
    num_clusters: int
    entries: list[Entry]

    def image(self) -> bytes:
        buf = bytearray()
        with qjournal.create(buf, self.num_clusters) as w:
            w.append_many(self.entries)
        return bytes(buf)


STARTS = [
    Start("empty", 2, []),
    Start("mid-cluster", 2, fill([50, 30])),  # the batch opens with an entry, at the tail
    Start("END", 3, fill([254] * 16)),  # tail at 4064: an END of 32 first
    Start("END 255", 3, fill([254] * 15 + [31])),  # tail at 3841: the END of size 255 before a 254-byte entry
    Start("full", 2, fill([254] * 16 + [254] * 15 + [40])),  # the batch does not fit
]


def batch_for(start: Start) -> list[Entry]:
    """Three entries whose first is 254 bytes (the END 255 case) and that cross a cluster boundary."""
    return [hash_entry(254, 101), RawEntry(0x05, b"batch"), hash_entry(50, 103)]


def _one(w: JournalWriter, b: list[Entry]) -> object:
    e = b[0]
    assert isinstance(e, HashEntry)
    return w.append_hash(e.digest, e.physical_sector, e.first_logical_sector)


def _raw(w: JournalWriter, b: list[Entry]) -> object:
    e = RawEntry(0x04, bytes(252))
    return w.append_raw(e.type_code, e.body)


def _bad_stream(w: JournalWriter, b: list[Entry]) -> object:
    return w.append_stream([*b, HashEntry(b"", 1, 2)])  # the last entry is refused part-way


ENTRY_POINTS: dict[str, tuple[Callable[[JournalWriter, list[Entry]], object], Callable[[list[Entry]], list[Entry]]]] = {
    # name: (the call, the entries it appends when it returns)
    "append_hash": (_one, lambda b: b[:1]),
    "append_raw": (_raw, lambda b: [RawEntry(0x04, bytes(252))]),
    "append": (lambda w, b: w.append(b[0]), lambda b: b[:1]),
    "append_many": (lambda w, b: w.append_many(b), lambda b: b),
    "append_stream": (lambda w, b: w.append_stream(iter(b)), lambda b: b),
    "append_stream, refused part-way": (_bad_stream, lambda b: []),
}


def key(e: Entry) -> tuple[Any, ...]:
    return tuple(e[:-1])


# -- the interruptions ------------------------------------------------------------------------------------------


class Stop:
    """Counts the points a call reaches and raises ``exc`` at point ``at`` (once); ``at`` None: only count."""

    def __init__(self, at: int | None, exc: BaseException) -> None:
        self.at = at
        self.exc = exc
        self.count = 0
        self.fired = False

    def point(self) -> None:
        if self.fired:
            return
        self.count += 1
        if self.count == self.at:
            self.fired = True
            raise self.exc


class LineStops:
    """A ``KeyboardInterrupt`` before a line of the package (not the generated parsers), through ``sys.settrace``."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop

    def _local(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.stop.point()
        return self._local

    def _global(self, frame: FrameType, event: str, arg: object) -> Any:
        name = frame.f_code.co_filename
        if name.startswith(PACKAGE) and not name.startswith(GENERATED) and frame.f_code.co_name != "__del__":
            return self._local  # (an exception in a finalizer is ignored: no point of the call's)
        return None

    def run(self, call: Callable[[], object]) -> object:
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            return call()
        finally:
            sys.settrace(previous)


class FaultyFile:
    """A binary file whose writes, flushes (and, patched, fsyncs) can fail: before, after, or half-way (a write)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.mode = "r+b"
        self.stop: Stop | None = None

    @property
    def file(self) -> BinaryIO:
        """This file, typed as the binary file object qjournal takes (it has every method qjournal calls)."""
        return cast(BinaryIO, self)

    def _point(self) -> None:
        if self.stop is not None:
            self.stop.point()

    def write(self, data: bytes) -> int:
        self._point()
        data = bytes(data)
        if len(data) > 1 and self.stop is not None and self.stop.count + 1 == self.stop.at:
            self._f.write(data[: len(data) // 2])  # a write cut in the middle
            self._point()
        n = self._f.write(data)
        self._point()
        return n or 0

    def flush(self) -> None:
        self._point()
        self._f.flush()
        self._point()

    def fsync(self) -> None:
        self._point()
        REAL_FSYNC(self._f.fileno())
        self._point()

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        self._f.close()


# -- one run -------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One journal, opened for append, with the entries it acknowledged."""

    image: bytes
    where: str  # "memory" or "file"
    tmp: Path
    durable: bool = True

    def __post_init__(self) -> None:
        self.buf = bytearray(self.image)
        self.faulty: FaultyFile | None = None
        if self.where == "file":
            self.path = self.tmp / "j.qjournal"
            self.path.write_bytes(self.image)
            self.faulty = FaultyFile(open(self.path, "r+b", buffering=0))  # noqa: SIM115 - closed in close()
        self.writer = qjournal.open_for_append(self.faulty.file if self.faulty else self.buf, durable=self.durable)
        self.acked = [key(e) for e in qjournal.read(self.image).replay()]

    def reopen(self) -> JournalWriter:
        return qjournal.open_for_append(self.path if self.where == "file" else self.buf, durable=self.durable)

    def current(self) -> bytes:
        return self.path.read_bytes() if self.where == "file" else bytes(self.buf)

    def close(self) -> None:
        self.writer.close()
        if self.faulty is not None:
            self.faulty.close()


def check_after(run: Run, batch: list[Entry], fresh: bool) -> None:
    """Append NEW (with the same writer or a fresh one); the journal must be acked + (batch or nothing) + NEW."""
    w = run.writer
    if fresh:
        run.close()
        w = run.reopen()
    try:
        placed = w.append_hash(NEW.digest, NEW.physical_sector, NEW.first_logical_sector)
        state = w.state()
    finally:
        w.close()
        run.close()
    data = run.current()
    report = qjournal.read(data).check()
    crash = [p for p in report.problems if p.code != "unassigned_type"]
    assert not crash, f"problems after the next append: {[(p.code, p.ofs, p.reason) for p in crash]}"
    got = [key(e) for e in qjournal.read(data).replay()]
    whole = run.acked + [key(e) for e in batch]
    assert got in (run.acked + [key(NEW)], [*whole, key(NEW)]), "not the acknowledged entries, the batch or not, then the new one"
    assert placed.ofs is not None and state == report.state, "the writer's state is not the reader's"


def interrupt_run(tmp: Path, start: Start, name: str, *, where: str, at: int | None, how: str, fresh: bool) -> int:
    """Run entry point ``name`` on ``start``, interrupted at point ``at``; check the next append. Return the points."""
    call, appended = ENTRY_POINTS[name]
    batch = batch_for(start)
    image = start.image()
    run = Run(image, where, tmp, durable=how not in ("flush", "line"))  # every line of a file run: flushes suffice
    exc: BaseException = KeyboardInterrupt() if how in ("line", "ctrl-c", "flush") else OSError(5, "Input/output error")
    stop = Stop(at, exc)
    returned = False
    try:
        if how == "line":
            LineStops(stop).run(lambda: call(run.writer, batch))
        else:
            assert run.faulty is not None
            faulty = run.faulty
            faulty.stop = stop
            os.fsync = lambda fd: faulty.fsync() if fd == faulty.fileno() else REAL_FSYNC(fd)
            try:
                call(run.writer, batch)
            finally:
                os.fsync = REAL_FSYNC
                faulty.stop = None
        returned = True
    except (KeyboardInterrupt, OSError, JournalError) as e:
        refused = isinstance(e, JournalError) and (name.endswith("part-way") or start.name == "full")
        if not stop.fired and not refused:
            raise
    if returned:  # its entries are acknowledged
        run.acked += [key(e) for e in appended(batch)]
    never = returned or name.endswith("part-way") or start.name == "full"  # the batch can never be in the journal
    check_after(run, [] if never else appended(batch), fresh)
    return stop.count


def points(tmp: Path, start: Start, name: str, where: str, how: str) -> int:
    """How many points the call reaches (uninterrupted, also checked)."""
    return interrupt_run(tmp, start, name, where=where, at=None, how=how, fresh=False)


CASES = [
    (where, how)
    for where, hows in (("memory", ("line",)), ("file", ("line", "ctrl-c", "oserror", "flush")))
    for how in hows
]


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.name)
@pytest.mark.parametrize("where,how", CASES)
def test_every_interruption_of_every_append(tmp_path: Path, start: Start, where: str, how: str) -> None:
    n_runs = 0
    for name in ENTRY_POINTS:
        n = points(tmp_path, start, name, where, how)
        for at in range(1, n + 1, STRIDE):
            # in memory every point twice (the same writer, a fresh one); on a file, alternately (the file costs more)
            for fresh in (False, True) if where == "memory" else (bool(at % 2),):
                interrupt_run(tmp_path, start, name, where=where, at=at, how=how, fresh=fresh)
                n_runs += 1
    assert n_runs > 0 or (start.name == "full" and how != "line")  # a refused batch writes nothing


def test_the_interruptions_fall_between_every_two_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace reaches the commit: across the runs, an interruption falls after each number of the batch's writes."""
    start = STARTS[1]
    writes: list[int] = []
    real = JournalWriter._write

    def counted(self: JournalWriter, pos: int, data: bytes) -> None:
        writes.append(pos)
        real(self, pos, data)

    monkeypatch.setattr(JournalWriter, "_write", counted)
    n = points(tmp_path, start, "append_many", "memory", "line")
    run = Run(start.image(), "memory", tmp_path)
    writes.clear()
    run.writer.append_many(batch_for(start))
    total = len(writes)
    run.close()
    seen = set()
    for at in range(1, n + 1):
        run = Run(start.image(), "memory", tmp_path)
        writes.clear()
        stop = Stop(at, KeyboardInterrupt())
        with contextlib.suppress(KeyboardInterrupt):
            LineStops(stop).run(lambda: run.writer.append_many(batch_for(start)))
        seen.add(len(writes))
        run.close()
    assert total >= 3 and seen == set(range(total + 1))  # anchor, body, commit byte


THIRD = HashEntry(bytes(range(50, 82)), 0x55, 0x66)


def test_the_append_after_an_interruption_interrupted_too(tmp_path: Path) -> None:
    """The erase an interruption leaves to the next append is itself interrupted, at every line: a third append holds."""
    start = STARTS[2]
    batch = batch_for(start)
    n = points(tmp_path, start, "append_many", "memory", "line")
    n_runs = 0
    for at in range(1, n + 1, 3 * STRIDE):
        # how many points the next append reaches after this interruption, then each of them
        for inner in range(1, 10**6):
            run = Run(start.image(), "memory", tmp_path)
            with contextlib.suppress(KeyboardInterrupt):
                LineStops(Stop(at, KeyboardInterrupt())).run(lambda: run.writer.append_many(batch))
            second = Stop(inner, KeyboardInterrupt())
            returned = False
            with contextlib.suppress(KeyboardInterrupt):
                LineStops(second).run(lambda: run.writer.append(NEW))
                returned = True
            run.writer.append(THIRD)
            state = run.writer.state()
            run.close()
            data = run.current()
            report = qjournal.read(data).check()
            assert not [p for p in report.problems if p.code != "unassigned_type"], (at, inner)
            got = [key(e) for e in qjournal.read(data).replay()]
            news = [[key(NEW)]] if returned else [[], [key(NEW)]]
            wanted = [run.acked + b + m + [key(THIRD)] for b in ([], [key(e) for e in batch]) for m in news]
            assert got in wanted, (at, inner)
            assert state == report.state, (at, inner)
            n_runs += 1
            if not second.fired:
                break
    assert n_runs > n


@pytest.mark.parametrize("where", ["memory", "file"])
def test_an_interrupted_reset_is_finished_by_the_next_append(tmp_path: Path, where: str) -> None:
    """reset() interrupted at any line: done whole or not at all once the next append returns (which finishes it)."""
    start = STARTS[3]
    at = 0
    while True:
        at += 1
        run = Run(start.image(), where, tmp_path, durable=False)
        stop = Stop(at, KeyboardInterrupt())
        with contextlib.suppress(KeyboardInterrupt):
            LineStops(stop).run(run.writer.reset)
        run.writer.append(NEW)
        state = run.writer.state()
        run.close()
        data = run.current()
        report = qjournal.read(data).check()
        assert not [p for p in report.problems if p.code != "unassigned_type"] and state == report.state, at
        assert [key(e) for e in qjournal.read(data).replay()] in ([key(NEW)], [*run.acked, key(NEW)]), at  # whole or not
        if not stop.fired:
            break
    assert at > 5
