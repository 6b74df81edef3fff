"""Making journals: create (D1, D2) and reset (D2), each writing only the area it was given.

Strategy. A :class:`Destination` resolves, checks and locks where a journal
will be made before a byte is written: a new file (written unnamed, a
:class:`qjournal.durable.NewFile`, and linked into place whole, so a create cut
short leaves no journal and no debris; pack and index link it only once their
entries are committed), a file that ends at the offset (grown by the area), a bytearray that
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
from collections.abc import Callable
from typing import Any, NamedTuple

from qjournal.area import (
    CHUNK,
    Area,
    Source,
    check_offset,
    check_path,
    describe,
    file_identity,
    identity,
    refuse_image,
    write_all,
)
from qjournal.durable import NewFile, barrier_of, check_whole_rest, erase, lock, unlock
from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.format import LEN_CLUSTER, RESET_BYTE
from qjournal.writer import JournalWriter

__all__ = ["Destination", "ResetReport", "check_target", "create", "reset"]

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


def check_target(target: str | os.PathLike[str], name: str) -> os.stat_result | None:
    """Refuse a path no journal can be made at, before any work: its stat, or None for a new file.

    A dangling symbolic link (where would the file go?), a missing directory, a
    directory, and a file that holds no bytes of its own (a character device such
    as /dev/null, a FIFO, a socket) are refused.
    """
    check_path(target, name)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if os.path.islink(target):
            raise JournalArgumentError(
                f"is a symbolic link to {os.readlink(target)!r}, which does not exist: a journal is not created "
                "through a dangling link; give the path of the file to create, or remove the link",
                source=name,
            ) from None
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder):
            raise JournalIOError(f"the directory {folder} does not exist; nothing written", source=name) from None
        return None
    except OSError as exc:
        raise JournalIOError(f"cannot stat: {exc.strerror or exc}", source=name) from None
    if stat.S_ISDIR(st.st_mode):
        raise JournalIOError("is a directory, not a journal file", source=name)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise JournalArgumentError(
            "is a character device, a FIFO or a socket (such as /dev/null), which keeps no bytes: a journal is a "
            "regular file or a block device",
            source=name,
        )
    return st


class Destination:
    """Where :func:`create` (and :func:`qjournal.pack`) will make a journal: resolved, checked and locked, nothing written yet."""

    def __init__(
        self, target: Source, *, num_clusters: int | None, offset: int, length: int | None, force: bool, durable: bool,
        what: str = "create", refusal: Callable[[str], Exception] | None = None, unaligned_offset: bool = False,
        publish_later: bool = False, held: tuple[object, ...] | None = None,
    ) -> None:
        self.target = target
        self.path = target  # where a new file goes
        self.name = describe(target)
        self.publish_later = publish_later
        self.held = held  # the identity of a file whose writer lock the caller holds already (pack's source)
        self.new_file: NewFile | None = None  # a new file, unnamed until published
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
            st = check_target(target, self.name)
            if st is None:
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
            try:
                if self.mode is not Mode.NEW_FILE:  # an image is refused before the offset is judged
                    refuse_image(lambda n: self._read_grown(0, n), self.name, True)
                if not unaligned_offset:
                    check_offset(offset, self.name, self._read_grown)
            except BaseException:
                self.abandon()
                raise
            self._check_room()
            return
        area = self.area = Area(target, offset, len_area, writable=True, unaligned_offset=unaligned_offset)
        try:
            self.lock_fd = self._lock(area.fileno())
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

    def _lock(self, fd: int | None) -> int | None:
        """The writer's lock on ``fd``, unless it is the file whose lock the caller holds (then None: nothing to release)."""
        if fd is not None and self.held is not None:
            mine = file_identity(fd)
            if mine is not None and mine[:-1] == self.held[:-1]:
                return None
        return lock(fd, self.name)

    def _read_grown(self, pos: int, n: int) -> bytes:
        """Bytes of the file or bytearray being grown, to look below the offset (nothing for a new file)."""
        if isinstance(self.target, bytearray) and self.mode is Mode.GROW_MEMORY:
            return bytes(self.target[pos : pos + n])
        if self.file is not None:
            with contextlib.suppress(OSError):
                return os.pread(self.file.fileno(), n, pos)
        return b""

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
            self.lock_fd = self._lock(f.fileno())
            if os.fstat(f.fileno()).st_size != self.offset:
                raise JournalIOError(f"the file changed size: it no longer ends at offset {self.offset:#x}", source=self.name)
        except BaseException:
            f.close()
            raise
        self.file = f
        self.mode = Mode.GROW_FILE

    def identity(self) -> tuple[object, ...] | None:
        """Something equal for two handles on the same file or buffer (see :func:`qjournal.area.identity`)."""
        if self.area is not None:
            return identity(self.target, self.area)
        if self.file is not None:
            return file_identity(self.file.fileno())
        return ("mem", id(self.target), 0) if self.mode is Mode.GROW_MEMORY else None

    def abandon(self) -> None:
        """Give up before writing: unlock and close."""
        unlock(self.lock_fd)
        self.lock_fd = None
        if self.area is not None:
            self.area.close()
        if self.file is not None:
            self.file.close()
        self.discard()

    def discard(self) -> None:
        """Remove a new file that was never published (an unnamed one goes with its descriptor)."""
        if self.new_file is not None:
            self.new_file.discard()
            self.new_file = None

    def publish(self) -> None:
        """Give a new file made with ``publish_later`` its name (once its entries are committed); else nothing."""
        if self.new_file is not None:
            new, self.new_file = self.new_file, None
            try:
                new.link(self.durable)
            finally:
                new.discard()

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
            area = Area(memory, self.offset, self.len_area, writable=True, unaligned_offset=True)  # checked
            return JournalWriter.on_reset_area(area, memory=memory, durable=self.durable, lock_fd=None)
        return self._write_file()

    def _write_file(self) -> JournalWriter:
        """Write the reset area: a new file all or nothing (a temporary file linked into place), or a file grown."""
        new = self.mode is Mode.NEW_FILE
        f = self.file
        if new:
            self.new_file = NewFile(self.path, self.name)  # type: ignore[arg-type]
            f = self.new_file.file
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
            if new and not self.publish_later:
                self.publish()
            area = Area(f, self.offset, self.len_area, writable=True, unaligned_offset=True)
            area.name = self.name
            return JournalWriter.on_reset_area(area, memory=None, durable=self.durable, lock_fd=self.lock_fd, owned=f)
        except BaseException:
            f.close()
            if new:
                self.discard()
            else:
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
    unaligned_offset: bool = False,
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
    touched. An ``offset`` off the 512-byte grid, or cutting the cluster grid of
    a journal just below it, is refused unless ``unaligned_offset=True``; a
    dangling symbolic link, a missing directory and a character device (such as
    /dev/null) are refused; a new file's mode is 0o666 less the umask.
    """
    return Destination(target, num_clusters=num_clusters, offset=offset, length=length, force=force, durable=durable,
                       unaligned_offset=unaligned_offset).make()


class ResetReport(NamedTuple):
    """What :func:`reset` erased: ``len_area`` bytes at ``area_offset`` of the file, now all 0xFF."""

    area_offset: int
    len_area: int


def reset(
    target: Source, offset: int = 0, length: int | None = None, *, durable: bool = True, unaligned_offset: bool = False
) -> ResetReport:
    """Reset an existing area (D2): every byte back to 0xFF. A corrupt area can be reset too, given its length.

    An area addressed without ``length`` runs to the end of the file: it is reset
    only when it holds a journal and nothing but 0xFF past its tail (else
    refused, nothing written: give ``length``). Crash-safe (docs/format.md D22):
    the type byte of the first entry goes first, so from then on the area
    replays as empty; the first byte other than 0xFF goes last, so a crash in
    between leaves leftovers that the next open for append proves and erases.
    """
    area = Area(target, offset, length, writable=True, unaligned_offset=unaligned_offset)
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
