"""Where a journal's bytes are: a bytes buffer, or a region of a file (D1).

An :class:`Area` is a window ``[area_offset, area_offset + len_area)`` over a
source. It checks the window once, up front, and then reads (and, for a writer,
writes) only inside it, so bytes outside the area are never touched.
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO, Union

from qjournal.errors import CorruptJournalError, JournalArgumentError, JournalIOError
from qjournal.format import LEN_CLUSTER

Source = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]
"""What a journal can be opened from: bytes, a path, or a binary file object."""


def describe(source: object) -> str:
    """A short name for a source, for error messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    return "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else "<stream>"


class Area:
    """A journal area over a source, opened for reading or for reading and writing."""

    def __init__(
        self,
        source: Source,
        offset: int = 0,
        length: int | None = None,
        *,
        writable: bool = False,
    ) -> None:
        self.name = describe(source)
        self.writable = writable
        self._owned: BinaryIO | None = None
        self._buf: bytearray | memoryview | bytes | None = None
        self._file: BinaryIO | None = None
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise JournalArgumentError(f"offset must be a non-negative integer, not {offset!r}", source=self.name)
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
            raise JournalArgumentError(f"length must be a non-negative integer, not {length!r}", source=self.name)
        if isinstance(source, (bytes, bytearray, memoryview)):
            if writable and not isinstance(source, bytearray):
                raise JournalArgumentError("an in-memory journal opened for writing must be a bytearray", source=self.name)
            self._buf = source
            size = len(source)
        elif isinstance(source, (str, os.PathLike)):
            self._file = self._owned = _open_path(source, writable, self.name)
            size = _size_of(self._file, self.name)
        elif hasattr(source, "read") and hasattr(source, "seek"):
            self._file = source  # type: ignore[assignment]
            size = _size_of(self._file, self.name)
        else:
            self.close()
            raise JournalArgumentError(f"cannot open a journal from {type(source).__name__}", source=self.name)
        self.area_offset = offset
        self.len_file = size
        try:
            if offset > size:
                raise JournalIOError(
                    f"offset {offset:#x} is past the end of the file ({size} bytes)", source=self.name
                )
            self.len_area = size - offset if length is None else length
            if offset + self.len_area > size:
                raise JournalIOError(
                    f"the file is {size} bytes, shorter than offset + length = {offset + self.len_area}",
                    source=self.name,
                )
            if self.len_area == 0 or self.len_area % LEN_CLUSTER:
                raise CorruptJournalError(
                    "area_length",
                    f"the area is {self.len_area} bytes, not a non-zero multiple of {LEN_CLUSTER} (D1)",
                    0,
                    area_offset=offset,
                    source=self.name,
                )
        except BaseException:
            self.close()
            raise

    @property
    def num_clusters(self) -> int:
        """Number of 4096-byte journal clusters in the area."""
        return self.len_area // LEN_CLUSTER

    def read(self, pos: int, n: int) -> bytes:
        """Read exactly ``n`` bytes at area offset ``pos`` (clipped to the area)."""
        n = max(0, min(n, self.len_area - pos))
        if self._buf is not None:
            return bytes(self._buf[self.area_offset + pos : self.area_offset + pos + n])
        assert self._file is not None
        try:
            self._file.seek(self.area_offset + pos)
            data = self._file.read(n)
        except OSError as exc:
            raise JournalIOError(f"cannot read: {exc.strerror or exc}", pos, area_offset=self.area_offset, source=self.name) from exc
        if data is None or len(data) != n:
            got = 0 if data is None else len(data)
            raise JournalIOError(
                f"short read: {got} of {n} bytes (the file shrank while open?)",
                pos + got,
                area_offset=self.area_offset,
                source=self.name,
            )
        return data

    def read_cluster(self, index: int) -> bytes:
        """The 4096 bytes of journal cluster ``index``."""
        return self.read(index * LEN_CLUSTER, LEN_CLUSTER)

    def write(self, pos: int, data: bytes) -> None:
        """Write ``data`` at area offset ``pos``; refuses to write outside the area."""
        if not self.writable:
            raise JournalArgumentError("the journal is open read-only", source=self.name)
        if pos < 0 or pos + len(data) > self.len_area:
            raise JournalArgumentError(
                f"write of {len(data)} bytes at {pos:#x} would leave the area ({self.len_area} bytes)",
                pos,
                area_offset=self.area_offset,
                source=self.name,
            )
        if self._buf is not None:
            start = self.area_offset + pos
            self._buf[start : start + len(data)] = data  # type: ignore[index]
            return
        assert self._file is not None
        try:
            end = self._file.seek(0, os.SEEK_END)
        except (OSError, ValueError) as exc:
            raise JournalIOError(f"cannot seek: {exc}", pos, area_offset=self.area_offset, source=self.name) from exc
        if end < self.area_offset + self.len_area:
            # the file shrank under us: writing would extend it with a hole of zeros
            raise JournalIOError(
                f"the file shrank to {end} bytes while open and no longer holds the area "
                f"(it ends at {self.area_offset + self.len_area}); nothing written",
                pos,
                area_offset=self.area_offset,
                source=self.name,
            )
        view = memoryview(data)
        try:
            self._file.seek(self.area_offset + pos)
            while view:  # a raw file may write fewer bytes than asked
                n = self._file.write(view)
                if n is None or n >= len(view):
                    break
                if n <= 0:
                    raise OSError(f"wrote {len(data) - len(view)} of {len(data)} bytes")
                view = view[n:]
        except OSError as exc:
            raise JournalIOError(f"cannot write: {exc.strerror or exc}", pos, area_offset=self.area_offset, source=self.name) from exc

    def flush(self) -> None:
        """Hand buffered writes to the operating system."""
        if self._file is not None:
            self._file.flush()

    def sync(self) -> None:
        """Make written bytes durable: flush, then fsync when the source is a real file."""
        if self._file is None:
            return
        self._file.flush()
        try:
            fd = self._file.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return
        os.fsync(fd)

    def fileno(self) -> int | None:
        """The file descriptor, or None for an in-memory area."""
        if self._file is None:
            return None
        try:
            return self._file.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None

    def close(self) -> None:
        """Close the file if this area opened it (a caller's file object stays open)."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        self._file = None
        self._buf = None


def _open_path(path: str | os.PathLike, writable: bool, name: str) -> BinaryIO:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise JournalIOError("no such file", source=name) from None
    except OSError as exc:
        raise JournalIOError(f"cannot stat: {exc.strerror or exc}", source=name) from None
    if stat.S_ISDIR(st.st_mode):
        raise JournalIOError("is a directory, not a journal file", source=name)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise JournalIOError("not a regular file or block device (a FIFO, socket or character device?)", source=name)
    try:
        return open(path, "r+b" if writable else "rb", buffering=0 if writable else -1)  # noqa: SIM115
    except OSError as exc:
        raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=name) from None


def _size_of(f: BinaryIO, name: str) -> int:
    try:
        return f.seek(0, os.SEEK_END)
    except (OSError, ValueError) as exc:
        raise JournalIOError(f"cannot seek: {exc}", source=name) from None
