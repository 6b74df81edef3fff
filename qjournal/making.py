"""Making journals: create (D1, D2) and reset (D2), each writing only the area it was given.

Strategy. A :class:`Destination` resolves, checks and locks where a journal
will be made before a byte is written: a new file (written as a temporary
file beside it and linked into place whole, so a create cut short leaves no
journal), a file that ends at the offset (grown by the area), a bytearray that
ends at the offset (grown in memory), or an area of an existing file or buffer
(refused unless it is all 0xFF, or ``force``). An area addressed without a
length runs to the end of the file; an erase of it (``force``, or a reset) is
refused unless it holds a journal and nothing but 0xFF past its tail
(docs/format.md D24), so that a forgotten offset or length never costs the
data that follows a journal, or that was never one
(:func:`qjournal.durable.check_whole_rest`). Erasing itself is
:func:`qjournal.durable.erase`, in the crash-safe order of D22.
"""

from __future__ import annotations

import contextlib
import enum
import os
import stat
import tempfile
from collections.abc import Callable
from typing import Any, NamedTuple

from qjournal.area import CHUNK, Area, Source, check_path, describe, identity, write_all
from qjournal.durable import barrier_of, check_whole_rest, erase, link_into_place, lock, sync_dir, unlink_quietly, unlock
from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.format import LEN_CLUSTER, RESET_BYTE
from qjournal.writer import JournalWriter

__all__ = ["Destination", "ResetReport", "create", "reset"]

_FF_CHUNK = bytes((RESET_BYTE,)) * CHUNK


class Mode(enum.Enum):
    """How a :class:`Destination` makes its area."""

    NEW_FILE = "a file that does not exist yet"
    GROW_FILE = "a file that ends at the offset, grown by the area"
    GROW_MEMORY = "a bytearray that ends at the offset, grown by the area"
    EXISTING = "an area inside an existing file or buffer"


def len_area_of(num_clusters: object, length: object) -> int | None:
    """The area length asked for by ``num_clusters`` and/or ``length`` (None: neither given) (D1)."""
    n = None
    if num_clusters is not None:
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
            raise JournalArgumentError(f"${{num_clusters}} must be an integer >= 1 (at least 1 cluster), not {num_clusters!r} (D1)")
        n = num_clusters * LEN_CLUSTER
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1 or length % LEN_CLUSTER:
            raise JournalArgumentError(f"length must be a non-zero multiple of {LEN_CLUSTER}, not {length!r} (D1)")
        if n is not None and n != length:
            raise JournalArgumentError(f"num_clusters {num_clusters} ({n} bytes) and length {length} disagree")
        n = length
    return n


def whole_rest_refusal(area: Area, what: str) -> Callable[[str], JournalArgumentError]:
    """The refusal of ``what`` (an erase) in an area addressed without a length that may hold more than a journal (D24)."""
    span = "the whole file" if not area.area_offset else f"every byte from offset {area.area_offset:#x} to the end of the file"
    return lambda why: JournalArgumentError(
        f"{what} without a length would erase {span} ({area.len_area} bytes), and {why}: they may be another "
        f"file's data, so nothing was written; give the area's length (${{length}}) to erase exactly that area",
        source=area.name,
    )


class Destination:
    """Where :func:`create` (and :func:`qjournal.pack`) will make a journal: resolved, checked and locked, nothing written yet."""

    def __init__(
        self, target: Source, *, num_clusters: int | None, offset: int, length: int | None, force: bool, durable: bool,
        what: str = "create", refusal: Callable[[str], Exception] | None = None,
    ) -> None:
        self.target = target
        self.path = target  # where a new file goes: a dangling symbolic link's target
        self.name = describe(target)
        self.offset = offset
        self.force = force
        self.durable = durable
        self.mode = Mode.EXISTING
        self.area: Area | None = None  # an existing area, opened and locked
        self.lock_fd: int | None = None
        self.file: Any = None  # a file being grown, opened and locked (a BinaryIO)
        self.len_file = offset  # where the bytes written start: the end of a file being grown, 0 for a new one
        len_area = len_area_of(num_clusters, length)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise JournalArgumentError(f"offset must be a non-negative integer, not {offset!r}", source=self.name)
        if isinstance(target, (str, os.PathLike)):
            check_path(target, self.name)
            try:
                st = os.stat(target)
            except FileNotFoundError:
                st = None
            except OSError as exc:
                raise JournalIOError(f"cannot stat: {exc.strerror or exc}", source=self.name) from None
            if st is None:
                if os.path.islink(target):
                    self.path = os.path.realpath(target)
                if len_area is None:
                    raise JournalArgumentError(
                        f"${{num_clusters}} (or ${{size}}) is needed to {what}{'' if what == 'create' else ' into'} a new journal file",
                        source=self.name,
                    )
                if offset:
                    raise JournalArgumentError(f"offset {offset:#x} for a new file: a new journal file starts at 0", source=self.name)
                self.mode, self.len_file = Mode.NEW_FILE, 0
            elif stat.S_ISREG(st.st_mode) and st.st_size == offset and len_area is not None:
                self._open_end_of_file()
        elif isinstance(target, bytearray) and len(target) == offset and len_area is not None:
            self.mode = Mode.GROW_MEMORY
        if self.mode is not Mode.EXISTING:
            assert len_area is not None
            self.len_area = len_area
            self._check_room()
            return
        area = self.area = Area(target, offset, len_area, writable=True)
        try:
            self.lock_fd = lock(area.fileno(), area.name)
            if force and not area.length_given:
                check_whole_rest(area, refusal or whole_rest_refusal(area, f"{what} with ${{force}}"))
            if not force:
                dirty = area.first_not_reset()
                if dirty is not None:
                    implicit = "" if area.length_given or not offset else (
                        f"; the area was given an offset but no length, so it runs to the end of the file "
                        f"({area.len_file} bytes): give the area's length (${{length}})"
                    )
                    byte = area.read(dirty, 1)[0]
                    raise JournalArgumentError(
                        f"the area is not reset: byte {byte:#04x} where 0xFF was expected; it may hold a journal "
                        f"or other data, and {what} does not overwrite it without ${{force}} (D2){implicit}",
                        dirty,
                        area_offset=offset,
                        source=self.name,
                    )
        except BaseException:
            self.abandon()
            raise
        self.len_area = area.len_area

    def _check_room(self) -> None:
        """Refuse, before writing anything, an area the file system (or memory) cannot hold."""
        if self.mode is Mode.GROW_MEMORY:
            return  # make() turns MemoryError into a JournalArgumentError
        try:
            # the file system that will hold the bytes: the directory of the real file, links followed
            st = os.statvfs(os.path.dirname(os.path.realpath(self.path)))  # type: ignore[arg-type]
        except (OSError, AttributeError):
            return
        free = st.f_bavail * st.f_frsize
        needed = self.offset + self.len_area - self.len_file
        if needed > free:
            self.abandon()
            raise JournalIOError(
                f"the area needs {needed} more bytes and the file system has {free} bytes free; nothing written",
                source=self.name,
            )

    def _open_end_of_file(self) -> None:
        """Open and lock a file that ends at the offset: the area grows it, only bytes past its end are written."""
        try:
            f = open(self.target, "r+b", buffering=0)  # type: ignore[arg-type]  # noqa: SIM115
        except OSError as exc:
            raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=self.name) from None
        try:
            self.lock_fd = lock(f.fileno(), self.name)
            if os.fstat(f.fileno()).st_size != self.offset:
                raise JournalIOError(f"the file changed size: it no longer ends at offset {self.offset:#x}", source=self.name)
        except BaseException:
            f.close()
            raise
        self.file = f
        self.mode = Mode.GROW_FILE

    def identity(self) -> object:
        """Something equal for two handles on the same file or buffer (see :func:`qjournal.area.identity`)."""
        if self.area is not None:
            return identity(self.target, self.area)
        if self.file is not None:
            st = os.fstat(self.file.fileno())
            return ("file", st.st_dev, st.st_ino)
        return ("mem", id(self.target)) if self.mode is Mode.GROW_MEMORY else None

    def abandon(self) -> None:
        """Give up before writing: unlock and close."""
        unlock(self.lock_fd)
        self.lock_fd = None
        if self.area is not None:
            self.area.close()
        if self.file is not None:
            self.file.close()

    def make(self) -> JournalWriter:
        """Write the reset area (D2) and return a writer on it, at its empty tail."""
        memory = self.target if isinstance(self.target, bytearray) else None
        if self.area is not None:
            try:
                if self.force:
                    erase(self.area, 0, self.area.len_area, barrier_of(self.area, self.durable))
            except BaseException:
                self.abandon()
                raise
            return JournalWriter.on_reset_area(self.area, memory=memory, durable=self.durable, lock_fd=self.lock_fd)
        if self.mode is Mode.GROW_MEMORY:
            assert memory is not None
            try:
                memory.extend(bytes((RESET_BYTE,)) * self.len_area)
            except (MemoryError, OverflowError):
                raise JournalArgumentError(
                    f"an in-memory area of {self.len_area} bytes does not fit in memory; nothing written", source=self.name
                ) from None
            except BufferError:
                raise JournalArgumentError(
                    "cannot grow the bytearray: it is in use (a memoryview, a reader or an open writer holds it)",
                    source=self.name,
                ) from None
            area = Area(memory, self.offset, self.len_area, writable=True)
            return JournalWriter.on_reset_area(area, memory=memory, durable=self.durable, lock_fd=None)
        return self._write_file()

    def _write_file(self) -> JournalWriter:
        """Write the reset area: a new file all or nothing (a temporary file linked into place), or a file grown."""
        new = self.mode is Mode.NEW_FILE
        f = self.file
        tmp = None
        if new:
            folder = os.path.dirname(os.path.abspath(self.path))  # type: ignore[arg-type]
            try:
                fd, tmp = tempfile.mkstemp(prefix=".qjournal-", suffix=".tmp", dir=folder)
            except OSError as exc:
                raise JournalIOError(f"cannot create: {exc.strerror or exc}", source=self.name) from None
            f = os.fdopen(fd, "r+b", buffering=0)
        assert f is not None
        try:
            if new:
                self.lock_fd = lock(f.fileno(), self.name)
            try:
                f.seek(self.len_file)
                end = self.offset + self.len_area
                for pos in range(self.len_file, end, CHUNK):
                    write_all(f, _FF_CHUNK[: min(CHUNK, end - pos)])
                if self.durable:
                    os.fsync(f.fileno())
            except OSError as exc:
                raise JournalIOError(
                    f"cannot write the reset area: {exc.strerror or exc}; nothing was left behind", source=self.name
                ) from None
            if tmp is not None:
                link_into_place(tmp, self.path, self.name)  # type: ignore[arg-type]
                tmp = None
                if self.durable:
                    sync_dir(self.path)  # type: ignore[arg-type]
            area = Area(f, self.offset, self.len_area, writable=True)
            area.name = self.name
            return JournalWriter.on_reset_area(area, memory=None, durable=self.durable, lock_fd=self.lock_fd, owned=f)
        except BaseException:
            f.close()
            if tmp is not None:
                unlink_quietly(tmp)
            elif not new:
                _truncate(self.target, self.len_file)  # type: ignore[arg-type]
            raise


def _truncate(path: str | os.PathLike[str], size: int) -> None:
    """Undo a failed growth of an existing file (it ended at ``size``)."""
    with contextlib.suppress(OSError):
        os.truncate(path, size)


def create(
    target: Source,
    num_clusters: int | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    force: bool = False,
    durable: bool = True,
) -> JournalWriter:
    """Create a journal (D1, D2) and return a writer on it, at its empty tail.

    ``target`` is a path, a bytearray or a binary file. A path that does not
    exist is created with ``num_clusters`` clusters, whole or not at all (a
    temporary file beside it, linked into place once written; through a
    dangling symbolic link, at the link's target). An existing file or
    bytearray exactly ``offset`` bytes long is extended by the area; otherwise
    the area (``offset``, and ``length`` or ``num_clusters``, else the rest of the
    file) must lie inside it, and is refused if it holds a byte other than
    0xFF unless ``force=True``, which resets it. With ``force=True`` and no size
    the area runs to the end of the file: it is reset only when it holds a
    journal and nothing but 0xFF past its tail. Bytes outside the area are never
    touched.
    """
    return Destination(target, num_clusters=num_clusters, offset=offset, length=length, force=force, durable=durable).make()


class ResetReport(NamedTuple):
    """What :func:`reset` erased: ``len_area`` bytes at ``area_offset`` of the file, now all 0xFF."""

    area_offset: int
    len_area: int


def reset(target: Source, offset: int = 0, length: int | None = None, *, durable: bool = True) -> ResetReport:
    """Reset an existing area (D2): every byte back to 0xFF. A corrupt area can be reset too, given its length.

    An area addressed without ``length`` runs to the end of the file: it is reset
    only when it holds a journal and nothing but 0xFF past its tail (else
    refused, nothing written: give ``length``). Crash-safe (docs/format.md D22):
    the type byte of the first entry goes first, so from then on the area
    replays as empty; the first byte other than 0xFF goes last, so a crash in
    between leaves leftovers that the next open for append proves and erases.
    """
    area = Area(target, offset, length, writable=True)
    fd = None
    try:
        fd = lock(area.fileno(), area.name)
        if not area.length_given:
            check_whole_rest(area, whole_rest_refusal(area, "reset"))
        erase(area, 0, area.len_area, barrier_of(area, durable))
        if area.fileno() is not None:
            barrier_of(area, True)()
        return ResetReport(area.area_offset, area.len_area)
    finally:
        unlock(fd)
        area.close()
