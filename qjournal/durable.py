"""The file primitives every write path shares: the lock, the barrier, the erase (D22), the licence to erase (D24).

Strategy. The writer (:mod:`qjournal.writer`) and the makers of journals
(:mod:`qjournal.making`, and through them pack and index) write nothing but
through these: one exclusive lock per journal file (:func:`lock`), one barrier
between the steps of a commit (:func:`barrier_of`: fsync, or a flush when
``durable=False``, D19), one crash-safe erase (:func:`erase`, D22), one rule for
when an area addressed without a length may be erased (:func:`check_whole_rest`,
D24), and one way for a new file to appear under its name only when complete
(:func:`link_into_place`, :func:`sync_dir`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable

from qjournal.area import CHUNK, Area
from qjournal.errors import CorruptJournalError, JournalIOError, JournalLockedError
from qjournal.format import RESET_BYTE, first_not_reset, last_not_reset
from qjournal.reader import JournalReader

__all__ = ["barrier_of", "check_whole_rest", "erase", "link_into_place", "lock", "sync_dir", "unlock"]

_FF = bytes((RESET_BYTE,))
_FF_CHUNK = _FF * CHUNK


def lock(fd: int | None, name: str) -> int | None:
    """Take a writer's exclusive, non-blocking advisory lock on the file ``fd``; return ``fd`` (None in memory)."""
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLockedError(
                "another writer holds this journal's file (an exclusive lock): a journal has one writer at a time",
                source=name,
            ) from None
        except OSError as exc:
            raise JournalIOError(f"cannot lock the file for writing: {exc.strerror or exc}", source=name) from None
    return fd


def unlock(fd: int | None) -> None:
    """Release a lock taken by :func:`lock`."""
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def barrier_of(area: Area, durable: bool) -> Callable[[], None]:
    """The barrier between the steps of a commit: fsync when ``durable``, else a flush (docs/format.md D19)."""

    def sync() -> None:
        try:
            area.sync()
        except OSError as exc:
            raise JournalIOError(f"cannot sync: {exc.strerror or exc}", source=area.name) from exc

    def flush() -> None:
        try:
            area.flush()
        except OSError as exc:
            raise JournalIOError(f"cannot flush: {exc.strerror or exc}", source=area.name) from exc

    return sync if durable else flush


def erase(area: Area, start: int, end: int, barrier: Callable[[], None]) -> None:
    """Write 0xFF over every byte other than 0xFF in ``[start, end)``, in three barriers (docs/format.md D22).

    First the type byte at ``start + 1``: ``start`` is where replay stops (the
    tail, or 0 for a reset), so from then on replay stops there. Then every other
    such byte but the first (the anchor), then the first. A crash at any point
    leaves bytes that are still provably leftovers: a subset of them, anchor included.
    """
    if start + 1 < end and area.read(start + 1, 1) != _FF:
        area.write(start + 1, _FF)
        barrier()
    anchor = None
    wrote = False
    for pos, chunk in area.chunks(start, end):
        lo = first_not_reset(chunk)
        if lo == len(chunk):
            continue
        hi = last_not_reset(chunk) + 1
        if anchor is None:
            anchor = pos + lo
            lo += 1
        if lo < hi:
            area.write(pos + lo, _FF_CHUNK[: hi - lo])
            wrote = True
    if wrote:
        barrier()
    if anchor is not None:
        area.write(anchor, _FF)
        barrier()


def check_whole_rest(area: Area, refusal: Callable[[str], Exception], tail: int | None = None) -> None:
    """Refuse to erase in an area addressed without a length unless it holds a journal and only 0xFF past its tail (D24).

    Without a length the area runs to the end of the file: a forgotten offset or
    length must not cost the data that follows a journal, or that was never one.
    ``tail`` is the journal's, when the caller has replayed it already (else the
    area is replayed here); ``refusal(why)`` is the error to raise, in the
    caller's words, ``why`` saying what the area holds. An area given its length
    passes.
    """
    if area.length_given:
        return
    why = None
    if tail is None:
        try:
            tail = JournalReader.over(area).state().ofs_tail
        except CorruptJournalError as exc:
            why = f"it holds no journal ({exc.code} at {exc.offset or 0:#x})"
    if tail is not None:
        dirty = area.first_not_reset(tail)
        if dirty is not None:
            why = f"past its journal's tail at {tail:#x} it holds bytes other than 0xFF (the first at {dirty:#x})"
    if why is not None:
        raise refusal(why)


def link_into_place(tmp: str, target: str | os.PathLike[str], name: str) -> None:
    """Give the finished temporary file its name, never replacing a file that appeared meanwhile."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise JournalIOError("the file appeared while the journal was being created; nothing written", source=name) from None
    except OSError:  # a file system without hard links: rename, after checking (a narrow race, documented)
        if os.path.lexists(target):
            raise JournalIOError("the file appeared while the journal was being created; nothing written", source=name) from None
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise JournalIOError(f"cannot create: {exc.strerror or exc}", source=name) from None
        return
    unlink_quietly(tmp)


def sync_dir(path: str | os.PathLike[str]) -> None:
    """Make a new directory entry durable (best effort)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove a temporary file, if it is still there."""
    with contextlib.suppress(OSError):
        os.unlink(path)
