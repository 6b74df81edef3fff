"""Crash simulation for the tests (test_crash.py, test_writer.py): record a writer's writes, then build crash images.

:class:`Recorder` wraps :class:`qjournal.area.Area` (the one place the writer
writes through) for the duration of a ``with`` block and logs, for the areas
over one file, every ``write`` (file position and bytes), every ``sync`` and
every ``flush``, interleaved with the driver's own marks (an operation begins,
an operation ends). Nothing else changes: the writes still go to the real file.
:class:`RecordingFile` is the same log for a file object in memory handed to
the writer: its writes, and its ``flush`` (it has no file descriptor to fsync).

:func:`crash_images` then replays the log over the file's starting bytes and
yields every image a crash could leave, under three models of the medium:

- ``prefix``: writes land whole and in order; a crash after any of them. This
  is also the whole model of a process crash (``durable=False``) or of an
  in-memory area.
- ``torn``: a prefix of writes, then the next write torn at each 512-byte sector
  boundary it spans: the bytes before the boundary landed, the rest did not.
- ``reorder``: what fsync really promises. Every write issued before the last
  completed barrier has landed; of the writes issued since, any subset of their
  512-byte sector pieces may have landed (later pieces overwrite earlier ones
  where they overlap). Every subset is tried when there are at most
  ``2**max_exhaustive`` of them, else a seeded sample plus every prefix and
  every "all but one".

Single bytes are atomic in every model (a 1-byte write never tears), and a
barrier is a ``sync`` (``durable=True``); a ``flush`` is no barrier for a crash
of the machine.
"""

from __future__ import annotations

import io
import itertools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple, cast

from qjournal.area import Area

SECTOR = 512


class Write(NamedTuple):
    """``data`` written at absolute file position ``pos``."""

    pos: int
    data: bytes


class Barrier(NamedTuple):
    """``Area.sync`` ("sync") or ``Area.flush`` ("flush") returned."""

    kind: str


class Mark(NamedTuple):
    """The driver's note: operation ``op`` (an index into the driver's list) began or ended."""

    what: str  # "begin" or "end"
    op: int


Event = Write | Barrier | Mark


class Recorder:
    """Log the writes, syncs and flushes of every Area over ``name`` while active.

    With ``fsync=False`` a recorded ``sync`` only flushes: the simulation decides
    what a barrier guarantees, so the real fsync would only cost time.
    """

    def __init__(self, name: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.name = os.fsdecode(name)
        self.fsync = fsync
        self.events: list[Event] = []
        self._saved: dict[str, Any] = {}

    def mark(self, what: str, op: int) -> None:
        self.events.append(Mark(what, op))

    def writes(self) -> list[Write]:
        return [e for e in self.events if isinstance(e, Write)]

    def __enter__(self) -> Recorder:
        rec = self
        real_write, real_sync, real_flush = Area.write, Area.sync, Area.flush
        self._saved = {"write": real_write, "sync": real_sync, "flush": real_flush}

        def write(area: Area, pos: int, data: bytes) -> None:
            real_write(area, pos, data)
            if area.name == rec.name:
                rec.events.append(Write(area.area_offset + pos, bytes(data)))

        def sync(area: Area) -> None:
            if area.name == rec.name:
                (real_sync if rec.fsync else real_flush)(area)
                rec.events.append(Barrier("sync"))
            else:
                real_sync(area)

        def flush(area: Area) -> None:
            real_flush(area)
            if area.name == rec.name:
                rec.events.append(Barrier("flush"))

        Area.write, Area.sync, Area.flush = write, sync, flush  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        Area.write = self._saved["write"]  # type: ignore[method-assign]
        Area.sync = self._saved["sync"]  # type: ignore[method-assign]
        Area.flush = self._saved["flush"]  # type: ignore[method-assign]


class RecordingFile(io.RawIOBase):
    """A binary file in memory that logs each write (:class:`Write`) and each flush (``Barrier("flush")``) in ``log``."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.pos = 0
        self.log: list[Event] = []

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = {0: pos, 1: self.pos + pos, 2: len(self.data) + pos}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        end = len(self.data) if n is None or n < 0 else self.pos + n
        out = bytes(self.data[self.pos : end])
        self.pos += len(out)
        return out

    def write(self, b: Any) -> int:
        b = bytes(b)
        self.log.append(Write(self.pos, b))
        self.data[self.pos : self.pos + len(b)] = b
        self.pos += len(b)
        return len(b)

    def flush(self) -> None:  # Area.sync: flush, then fileno (unsupported here): the barrier
        if not self.closed:
            self.log.append(Barrier("flush"))

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no file descriptor")

    @property
    def file(self) -> BinaryIO:
        """This file, typed as the binary file object qjournal takes (it is one at run time; typing.BinaryIO is nominal)."""
        return cast(BinaryIO, self)


def sector_pieces(w: Write) -> list[Write]:
    """``w`` cut at the 512-byte sector boundaries it spans."""
    out = []
    pos, end = w.pos, w.pos + len(w.data)
    while pos < end:
        stop = min(end, (pos // SECTOR + 1) * SECTOR)
        out.append(Write(pos, w.data[pos - w.pos : stop - w.pos]))
        pos = stop
    return out


def apply(image: bytearray, writes: list[Write] | tuple[Write, ...]) -> bytearray:
    for w in writes:
        image[w.pos : w.pos + len(w.data)] = w.data
    return image


@dataclass(frozen=True)
class Crash:
    """One crash image: the bytes, the model that made it, and where in the log the crash fell.

    ``point`` is the number of events issued before the crash: the operations
    that had ended by then are durable, at most one more (``in_flight``) may or
    may not be.
    """

    image: bytes
    model: str
    point: int
    done: tuple[int, ...]
    in_flight: int | None


def _ops_at(events: list[Event], point: int) -> tuple[tuple[int, ...], int | None]:
    done: list[int] = []
    in_flight: int | None = None
    for e in events[:point]:
        if isinstance(e, Mark):
            if e.what == "begin":
                in_flight = e.op
            else:
                done.append(e.op)
                in_flight = None
    return tuple(done), in_flight


def crash_images(
    start: bytes,
    events: list[Event],
    models: tuple[str, ...] = ("prefix", "torn", "reorder"),
    *,
    barriers: frozenset[str] = frozenset({"sync"}),
    max_exhaustive: int = 8,
    samples: int = 64,
    seed: int = 0,
) -> Iterator[Crash]:
    """Every crash image of ``events`` over ``start``, under ``models`` (see the module doc)."""
    rng = random.Random(seed)
    image = bytearray(start)  # every write issued so far, landed
    durable = bytearray(start)  # every write before the last barrier
    pending: list[Write] = []
    n = len(events)

    def crash(img: bytes | bytearray, model: str, point: int) -> Crash:
        done, in_flight = _ops_at(events, point)
        return Crash(bytes(img), model, point, done, in_flight)

    # a reorder window ends at a write followed (marks aside) by a barrier, or by nothing
    ends_window = [False] * n
    next_is_write = False  # the end of the log ends a window too
    for i in range(n - 1, -1, -1):
        e = events[i]
        if isinstance(e, Write):
            ends_window[i] = not next_is_write
            next_is_write = True
        elif isinstance(e, Barrier) and e.kind in barriers:
            next_is_write = False
    if "prefix" in models:
        yield crash(image, "prefix", 0)
    for i, e in enumerate(events):
        point = i + 1
        if isinstance(e, Barrier):
            if e.kind in barriers:
                durable[:] = image
                pending.clear()
            continue
        if not isinstance(e, Write):
            continue
        if "torn" in models:
            for piece in sector_pieces(e)[:-1]:
                torn = bytearray(image)
                torn[e.pos : piece.pos + len(piece.data)] = e.data[: piece.pos + len(piece.data) - e.pos]
                yield crash(torn, "torn", point)
        apply(image, [e])
        pending.append(e)
        if "prefix" in models:
            yield crash(image, "prefix", point)
        if "reorder" in models and ends_window[i]:
            pieces = [p for w in pending for p in sector_pieces(w)]
            k = len(pieces)
            if k <= max_exhaustive:
                subsets: Any = itertools.product((False, True), repeat=k)
            else:
                chosen = {tuple(j < m for j in range(k)) for m in range(k + 1)}
                chosen |= {tuple(j != m for j in range(k)) for m in range(k)}
                while len(chosen) < samples + 2 * k + 1:
                    chosen.add(tuple(rng.random() < 0.5 for _ in range(k)))
                subsets = sorted(chosen)
            for mask in subsets:
                yield crash(apply(bytearray(durable), [p for p, keep in zip(pieces, mask, strict=True) if keep]), "reorder", point)
