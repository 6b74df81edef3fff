"""The file primitives every write path shares: the lock, the barrier, the erase (D22), the licence to erase (D24).

Strategy. The writer (:mod:`qjournal.writer`) and the makers of journals
(:mod:`qjournal.making`, and through them pack and index) write nothing but
through these: one exclusive lock per journal file (:func:`lock`), one barrier
between the steps of a commit (:func:`barrier_of`: fsync, or a flush when
``durable=False``, D19), one crash-safe erase (:func:`erase`, D22), one rule for
when an area addressed without a length may be erased (:func:`check_whole_rest`,
D24), and one way for a new file to appear under its name only when complete
(:class:`NewFile`: unnamed, O_TMPFILE where the file system has it, until
:meth:`NewFile.link`; created with the umask's mode, as any new file; the
directory synced, and a failed sync an error). A lock on a block device also
locks the file a loop device reads (:func:`backing_file`), so that the file and
its loop device are one door, and two handles on them compare equal
(:func:`file_identity`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable
from typing import BinaryIO

from qjournal.area import CHUNK, Area, backing_file, file_identity
from qjournal.errors import CorruptJournalError, JournalIOError, JournalLockedError
from qjournal.format import RESET_BYTE, first_not_reset, last_not_reset
from qjournal.reader import JournalReader

__all__ = [
    "NewFile", "backing_file", "barrier_of", "check_whole_rest", "erase", "file_identity", "link_into_place", "lock",
    "sync_dir", "unlock",
]

_FF = bytes((RESET_BYTE,))
_FF_CHUNK = _FF * CHUNK


_backing_locks: dict[int, int] = {}
"""fd of a locked block device -> fd of the backing file locked with it (closed by :func:`unlock`)."""


def _flock(fd: int, name: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalLockedError(
            "another writer holds this journal's file (an exclusive lock): a journal has one writer at a time",
            source=name,
        ) from None
    except OSError as exc:
        raise JournalIOError(f"cannot lock the file for writing: {exc.strerror or exc}", source=name) from None


def lock(fd: int | None, name: str) -> int | None:
    """Take a writer's exclusive, non-blocking advisory lock on the file ``fd``; return ``fd`` (None in memory).

    A loop device's backing file is locked too: a writer through the file and one
    through the device exclude each other.
    """
    if fd is None:
        return None
    _flock(fd, name)
    backing = backing_file(fd)
    if backing is not None:
        try:
            bfd = os.open(backing[0], os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return fd  # a backing file deleted or out of reach: the tail re-read before each commit still guards
        try:
            _flock(bfd, f"{name} (the loop device's backing file {backing[0]})")
        except BaseException:
            os.close(bfd)
            unlock(fd)
            raise
        _backing_locks[fd] = bfd
    return fd


def unlock(fd: int | None) -> None:
    """Release a lock taken by :func:`lock` (and the backing file's, for a loop device)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        bfd = _backing_locks.pop(fd, None)
        if bfd is not None:
            with contextlib.suppress(OSError):
                os.close(bfd)


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


def sync_dir(path: str | os.PathLike[str], name: str | None = None) -> None:
    """Make a new directory entry durable: a failure is an error (the file is there, its name may not survive a crash).

    ``name`` is the file's, for the message (default: ``path``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    name = os.fsdecode(path) if name is None else name
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a file system that cannot sync a directory (no such barrier to give)
            return
        raise JournalIOError(
            f"the file was written and named, but its directory {folder} could not be synced ({exc.strerror or exc}): "
            "after a crash of the machine the name may be gone",
            source=name,
        ) from None


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it (else set and put back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


STALE_PREFIX, STALE_SUFFIX = ".qjournal-", ".tmp"
"""The name of a new file's hidden temporary, where the file system has no O_TMPFILE (and where 0.1 wrote them)."""
STALE_AGE = 600
"""Seconds since its last change after which an unlocked temporary is a killed create's debris."""


def clean_stale(folder: str) -> None:
    """Remove what a killed create left in ``folder``: hidden temporaries no process holds, untouched for a while."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(STALE_PREFIX) and n.endswith(STALE_SUFFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or time.time() - st.st_mtime < STALE_AGE:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a create at work holds it
            unlink_quietly(path)
        except OSError:
            continue
        finally:
            os.close(fd)


class NewFile:
    """A new file that appears under its name only when complete: unnamed until :meth:`link`.

    Made with ``O_TMPFILE`` where the file system has it (a kill leaves nothing),
    else as a hidden ``.qjournal-*.tmp`` beside the target; its mode is
    ``0o666`` less the umask, as for any new file. ``file`` is the open file
    (unbuffered); :meth:`link` names it (never replacing a file that appeared
    meanwhile) and syncs the directory; :meth:`discard` removes a temporary
    file that was never linked (the caller closes ``file``).
    """

    def __init__(self, path: str | os.PathLike[str], name: str) -> None:
        self.path, self.name = path, name
        folder = os.path.dirname(os.path.abspath(path))
        self.tmp: str | None = None
        clean_stale(folder)
        try:
            fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
        except AttributeError:  # pragma: no cover - not Linux
            fd = -1
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise JournalIOError(f"cannot create a file in {folder}: {exc.strerror or exc}", source=name) from None
            fd = -1
        if fd < 0:
            try:
                fd, self.tmp = tempfile.mkstemp(prefix=STALE_PREFIX, suffix=STALE_SUFFIX, dir=folder)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while it is written: not stale
                os.fchmod(fd, 0o666 & ~umask())
            except OSError as exc:
                if self.tmp is not None:
                    os.close(fd)
                    unlink_quietly(self.tmp)
                raise JournalIOError(f"cannot create a file in {folder}: {exc.strerror or exc}", source=name) from None
        self.file: BinaryIO = os.fdopen(fd, "r+b", buffering=0)

    def link(self, durable: bool = True) -> None:
        """Give the finished file its name (it must be still open), then sync the directory when ``durable``."""
        if self.tmp is not None:
            link_into_place(self.tmp, self.path, self.name)
            self.tmp = None
        else:
            try:
                # linkat(AT_SYMLINK_FOLLOW) through /proc: a dir fd makes Python call linkat, not link
                folder = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.link(f"/proc/self/fd/{self.file.fileno()}", os.path.basename(self.path), dst_dir_fd=folder,
                            follow_symlinks=True)
                finally:
                    os.close(folder)
            except FileExistsError:
                raise JournalIOError("the file appeared while it was being written; nothing was replaced", source=self.name) from None
            except OSError as exc:
                raise JournalIOError(f"cannot name the new file: {exc.strerror or exc}", source=self.name) from None
        if durable:
            sync_dir(self.path, self.name)

    def discard(self) -> None:
        """Remove the temporary file if it was never linked (an unnamed file goes when closed)."""
        if self.tmp is not None:
            unlink_quietly(self.tmp)
            self.tmp = None


def unlink_quietly(path: str) -> None:
    """Remove a temporary file, if it is still there."""
    with contextlib.suppress(OSError):
        os.unlink(path)
