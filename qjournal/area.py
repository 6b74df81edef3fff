"""Where a journal's bytes are: a bytes buffer, or a region of a file (D1).

An :class:`Area` is a window ``[area_offset, area_offset + len_area)`` over a
source. It checks the window once, up front, and then reads (and, for a writer,
writes) only inside it, so bytes outside the area are never touched. An
in-memory source is held through a memoryview for the area's lifetime, so a
bytearray cannot be resized under a reader or a writer (Python refuses with
``BufferError``); a file that changes size under it is noticed and reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO

from qjournal.errors import CorruptJournalError, JournalArgumentError, JournalIOError, NotAJournalError
from qjournal.format import LEN_CLUSTER, first_not_reset
from qjournal.magic import LEN_SNIFF, identify

ALIGNMENT = 512
"""A write's offset is a multiple of this unless the user says otherwise: a sector, where areas start."""

CHUNK = 1 << 20
"""Bytes per read when an area is scanned (for bytes other than 0xFF, or to erase)."""

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO
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
        unaligned_offset: bool = False,
    ) -> None:
        self.name = describe(source)
        self.writable = writable
        self.path: str | None = None
        """The path the area was opened from (None for a buffer or a caller's file object)."""
        self._owned: BinaryIO | None = None
        self._buf: memoryview | None = None
        self._file: BinaryIO | None = None
        self.length_given = length is not None
        """False when the area runs to the end of the file because no length was given."""
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise JournalArgumentError(f"offset must be a non-negative integer, not {offset!r}", source=self.name)
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
            raise JournalArgumentError(f"length must be a non-negative integer, not {length!r}", source=self.name)
        if isinstance(source, (bytes, bytearray, memoryview)):
            if writable and not isinstance(source, bytearray):
                raise JournalArgumentError("an in-memory journal opened for writing must be a bytearray", source=self.name)
            try:
                self._buf = memoryview(source).cast("B")  # an export: the bytearray cannot be resized while held
            except TypeError:
                raise JournalArgumentError("a memoryview source must be contiguous memory", source=self.name) from None
            size = len(self._buf)
        elif isinstance(source, (str, os.PathLike)):
            self._file = self._owned = _open_path(source, writable, self.name)
            self.path = os.fsdecode(source)
            size = _size_of(self._file, self.name)
        elif hasattr(source, "read") and hasattr(source, "seek"):
            check_file_object(source, writable, self.name)
            self._file = source
            size = _size_of(self._file, self.name)
        else:
            raise JournalArgumentError(f"cannot open a journal from {type(source).__name__}", source=self.name)
        self.area_offset = offset
        self.len_file = size
        try:
            self._refuse_image(offset)
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
                what = "" if length is not None else f" (the rest of the {size}-byte file from offset {offset:#x})"
                raise CorruptJournalError(
                    "area_length",
                    f"the area is {self.len_area} bytes{what}, not a non-zero multiple of {LEN_CLUSTER} (D1)",
                    0,
                    area_offset=offset,
                    source=self.name,
                    hint=None if length is not None else LENGTH_HINT,
                )
            if writable and not unaligned_offset:
                check_offset(offset, self.name, self._read_file)
        except BaseException:
            self.close()
            raise

    def _refuse_image(self, offset: int) -> None:
        """A disk image is no journal (read at its start), and no place to write one (anywhere in it)."""
        if not self.writable and offset:
            return
        refuse_image(self._head, self.name, self.writable)

    def _read_file(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at file offset ``pos`` (outside the area too: only to look, never to write)."""
        if self._buf is not None:
            return bytes(self._buf[pos : pos + n])
        assert self._file is not None
        try:
            return os.pread(self._file.fileno(), n, pos)
        except (OSError, AttributeError, io.UnsupportedOperation):
            return b""

    def _head(self, n: int) -> bytes:
        """The first ``n`` bytes of the source (of the file, not of the area)."""
        if self._buf is not None:
            return bytes(self._buf[:n])
        assert self._file is not None
        try:
            try:
                fd = self._file.fileno()
            except (OSError, AttributeError, io.UnsupportedOperation):
                self._file.seek(0)
                return self._file.read(n) or b""
            return os.pread(fd, n, 0)  # not through the file object's buffer, which a later read would trust
        except OSError as exc:
            raise JournalIOError(f"cannot read: {exc.strerror or exc}", 0, source=self.name) from exc

    @property
    def num_clusters(self) -> int:
        """Number of 4096-byte journal clusters in the area."""
        return self.len_area // LEN_CLUSTER

    def read(self, pos: int, n: int) -> bytes:
        """Read exactly ``n`` bytes at area offset ``pos`` (clipped to the area)."""
        n = max(0, min(n, self.len_area - pos))
        if self._buf is not None:
            return bytes(self._buf[self.area_offset + pos : self.area_offset + pos + n])
        if self._file is None:
            raise JournalArgumentError("the journal is closed", source=self.name)
        try:
            self._file.seek(self.area_offset + pos)
            data = self._file.read(n)
        except OSError as exc:
            raise JournalIOError(
                f"cannot read: {exc.strerror or exc}", pos, area_offset=self.area_offset, source=self.name
            ) from exc
        if data is None or len(data) != n:
            got = 0 if data is None else len(data)
            raise JournalIOError(
                f"short read: {got} of {n} bytes (the file shrank while open?)",
                pos + got,
                area_offset=self.area_offset,
                source=self.name,
            )
        return data

    def clusters(self, start: int, stop: int) -> Iterator[bytes]:
        """The 4096 bytes of each journal cluster ``start`` to ``stop - 1``, in order.

        A file is read up to 1 MiB at a time; a short read yields the clusters it
        holds whole, then fails as :meth:`read_cluster` of the next one would.
        """
        if self._file is None:
            for index in range(start, stop):
                yield self.read_cluster(index)
            return
        index = start
        per_chunk = CHUNK // LEN_CLUSTER
        while index < stop:
            n = min(per_chunk, stop - index)
            if n == 1:
                yield self.read_cluster(index)
                index += 1
                continue
            pos = index * LEN_CLUSTER
            try:
                self._file.seek(self.area_offset + pos)
                data = self._file.read(n * LEN_CLUSTER) or b""
            except OSError:
                data = b""  # read_cluster below raises the error with its offset
            whole = len(data) // LEN_CLUSTER
            for k in range(whole):
                yield data[k * LEN_CLUSTER : (k + 1) * LEN_CLUSTER]
            index += whole
            if whole < n:  # short: the next cluster says why, or was read after all (the file grew back)
                yield self.read_cluster(index)
                index += 1

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """The area's bytes from ``start`` to ``end`` (default: the end), as (area offset, bytes) of up to 1 MiB."""
        end = self.len_area if end is None else min(end, self.len_area)
        pos = start
        while pos < end:
            data = self.read(pos, min(CHUNK, end - pos))
            yield pos, data
            pos += len(data)

    def first_not_reset(
        self, start: int = 0, progress: Callable[[int], None] | None = None, end: int | None = None
    ) -> int | None:
        """Area offset of the first byte other than 0xFF in ``[start, end)`` (default: to the end), or None (D2).

        ``progress``, if given, is called with the area offset reached after each chunk.
        """
        for pos, chunk in self.chunks(start, end):
            first = first_not_reset(chunk)
            if first < len(chunk):
                return pos + first
            if progress is not None:
                progress(pos + len(chunk))
        return None

    def check_unchanged(self, first: bytes) -> None:
        """Refuse an answer read while the area changed under the reader: its first entry's header is no longer ``first``.

        A reset (D22) writes 0xFF over that header's type byte first and its size
        byte last, and nothing else rewrites it: a reader that saw it at its start
        and sees it changed at its end read part of the journal before a reset
        and part after, a state that never existed.
        """
        now = self.read(0, len(first))
        if now != first:
            raise JournalIOError(
                f"the journal changed while it was read: its first entry's header went from {first.hex()} to "
                f"{now.hex()} (a reset, or another write at its start, meanwhile); what was read describes no state "
                "the journal ever had, so nothing is reported",
                0,
                area_offset=self.area_offset,
                source=self.name,
                hint="read it again once the writer is done",
            )

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
            self._buf[start : start + len(data)] = data
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
        try:
            self._file.seek(self.area_offset + pos)
            write_all(self._file, data)
        except OSError as exc:
            raise JournalIOError(
                f"cannot write: {exc.strerror or exc}", pos, area_offset=self.area_offset, source=self.name
            ) from exc
        try:
            after = self._file.seek(0, os.SEEK_END)
        except (OSError, ValueError):  # pragma: no cover - it could seek a moment ago
            return
        if after < self.area_offset + self.len_area:
            # Truncated between the check above and the write: advisory locks cannot stop that.
            start = self.area_offset + pos
            raise JournalIOError(
                f"the file was truncated while it was written: it now ends at {after} ({after:#x}), before the "
                f"area's end at {self.area_offset + self.len_area:#x}; {len(data)} bytes were written at file offset "
                f"{start:#x}, so the file holds zeros from its new end up to them if they lie past it; "
                f"the area is no longer whole and its journal is not to be trusted",
                pos,
                area_offset=self.area_offset,
                source=self.name,
            )

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

    def regular_file(self) -> tuple[str, int, int] | None:
        """(path, st_dev, st_ino) when the area is a regular file opened from a path, else None.

        What another process needs to open the same file and check that it did
        (worker processes of a parallel check); a buffer or a caller's file
        object has no such name.
        """
        fd = self.fileno()
        if self.path is None or fd is None:
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            return None
        return (self.path, st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None

    def fileno(self) -> int | None:
        """The file descriptor, or None for an in-memory area."""
        if self._file is None:
            return None
        try:
            return self._file.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None

    def close(self) -> None:
        """Close the file if this area opened it (a caller's file object stays open); release a buffer."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        self._file = None
        if self._buf is not None:
            self._buf.release()
            self._buf = None

    def __del__(self) -> None:
        if getattr(self, "_owned", None) is not None or getattr(self, "_buf", None) is not None:
            self.close()


ADDRESS_HINT = (
    "the area at this offset does not look like a journal: check the offset and the length "
    "(${offset}, ${length}; both in bytes)"
)
"""The hint of an error that a wrong offset or length is likelier to cause than a corrupt journal."""
NOT_A_JOURNAL_HINT = (
    "give the journal file (qjournal index IMAGE JOURNAL writes one beside the image), or the offset of a journal inside this file"
)

LENGTH_HINT = (
    "no length was given, so the area runs from the offset to the end of the file: check the offset "
    "and give the area's length (${offset}, ${length}; both in bytes)"
)
"""The hint of an area length error when the length was not given."""


def backing_file(fd: int) -> tuple[str, int] | None:
    """(path, offset) of the file a loop device ``fd`` reads and writes (from /sys/dev/block), else None."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    base = f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}/loop"
    try:
        with open(f"{base}/backing_file", encoding="utf-8", errors="surrogateescape") as f:
            path = f.read().rstrip("\n")
        with open(f"{base}/offset", encoding="ascii") as f:
            offset = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return (path, offset) if path else None


def file_identity(fd: int) -> tuple[str, int, int, int] | None:
    """("file", st_dev, st_ino, shift): equal for two handles on one file, a loop device resolved to its backing file.

    ``shift`` is where the handle's byte 0 lies in that file (a loop device's offset, else 0).
    """
    backing = backing_file(fd)
    try:
        if backing is not None:
            try:
                st = os.stat(backing[0])
                return ("file", st.st_dev, st.st_ino, backing[1])
            except OSError:
                pass
        st = os.fstat(fd)
    except OSError:
        return None
    return ("file", st.st_dev, st.st_ino, 0)


def is_same_file(path: str | os.PathLike[str], fd: int) -> bool:
    """True when ``path`` (through symbolic links; a loop device resolved to its backing file) names ``fd``'s file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    mine: tuple[str, int, int, int] | None = ("file", st.st_dev, st.st_ino, 0)
    if stat.S_ISBLK(st.st_mode):  # a loop device: its backing file (opening a block device does not block)
        with contextlib.suppress(OSError):
            other = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                mine = file_identity(other)
            finally:
                os.close(other)
    theirs = file_identity(fd)
    return mine is not None and theirs is not None and mine[:3] == theirs[:3]


def refuse_image(head: Callable[[int], bytes], name: str, writable: bool) -> None:
    """Refuse a disk image (``head(n)``: its first ``n`` bytes): no journal, and no place to write one."""
    if identify(head(LEN_SNIFF)) is None:  # the common case costs one short read
        return
    from qjournal.cluster import image_at_start  # noqa: PLC0415 - cluster builds on area

    found = image_at_start(head(LEN_CLUSTER))
    if found is None:
        return
    what = f"{found.what} (it starts with the magic {found.magic!r} at byte {found.ofs})"
    if not writable:
        raise NotAJournalError(found.format, f"{what}, not a journal", source=name, hint=NOT_A_JOURNAL_HINT)
    raise NotAJournalError(
        found.format,
        f"{what}: a journal is never written inside an image, whose format gives the space it does not "
        "reference to new clusters (QEMU would write over the journal, and the journal over the guest's data)",
        source=name,
        hint="keep the journal in a file of its own beside the image (as qjournal index IMAGE JOURNAL writes one), "
        "or in a raw container or a partition",
    )


def check_offset(offset: int, name: str, read: Callable[[int, int], bytes] | None = None) -> None:
    """Refuse a write at an offset off the 512-byte grid, or one that cuts the cluster grid of a journal just below.

    ``read(pos, n)`` reads the file (None: nothing to look at). A journal's
    cluster found at a 512-aligned offset less than a cluster below ``offset``
    (one that parses and holds a HASH entry) is named as the likely offset.
    ``unaligned_offset`` (the callers' keyword) skips this check.
    """
    below = _journal_just_below(offset, read) if read is not None and offset else None
    likely = "" if below is None else (
        f"; a journal's cluster starts at {below:#x}, {offset - below} bytes below, and an area at {offset:#x} "
        f"would cut its cluster grid: the likely offset is {below:#x}"
    )
    if offset % ALIGNMENT:
        raise JournalArgumentError(
            f"offset {offset:#x} ({offset}) is not a multiple of {ALIGNMENT}{likely}; nothing was written",
            source=name,
            hint="check the offset; an area that really starts there needs ${unaligned_offset}",
        )
    if below is not None:
        raise JournalArgumentError(
            f"offset {offset:#x} ({offset}):{likely[1:]}; nothing was written",
            source=name,
            hint="check the offset; an area that really starts there needs ${unaligned_offset}",
        )


def _journal_just_below(offset: int, read: Callable[[int, int], bytes]) -> int | None:
    """The highest 512-aligned offset less than a cluster below ``offset``, off its grid, where a journal cluster starts.

    Not when a journal cluster also starts a cluster below ``offset``, on its
    grid: then the area follows a journal that ends where it starts (two areas
    side by side), and what parses off the grid is that journal's last cluster
    read across the boundary.
    """
    pos = (offset - 1) // ALIGNMENT * ALIGNMENT
    while pos >= 0 and offset - pos < LEN_CLUSTER:
        if holds_journal_cluster(read(pos, LEN_CLUSTER)):
            if offset >= LEN_CLUSTER and holds_journal_cluster(read(offset - LEN_CLUSTER, LEN_CLUSTER)):
                return None
            return pos
        pos -= ALIGNMENT
    return None


_SECTOR_LIMIT = 1 << 55
"""Sectors of 512 bytes at or past this would address bytes past 2**64: no disk's (D8, D25)."""


def holds_journal_cluster(buf: bytes) -> bool:
    """True when ``buf`` is a whole journal cluster as a writer leaves one: it starts with a HASH entry or index's
    metadata entry (D30), parses, holds a HASH entry, each HASH
    entry's sectors address bytes of a disk (below 2**55 sectors, 2**64 bytes), and what follows its last entry is
    clean (an END's padding, or the bytes past a tail, all 0xFF).

    Random bytes parse as a cluster about 1 time in 400 (entries of unassigned types, 2 to 254 bytes, link up), and
    when the chain runs into an erased journal just above, its end is clean too; their HASH entry's random sectors
    (9 high bits zero twice: 1 in 262,144) are what tells them from a journal's.
    """
    from qjournal.cluster import parse_cluster  # noqa: PLC0415 - cluster builds on area
    from qjournal.format import TYPE_END, TYPE_HASH  # noqa: PLC0415
    from qjournal.metadata import TYPE_METADATA  # noqa: PLC0415 - metadata builds on area

    if len(buf) != LEN_CLUSTER or buf[1] not in (TYPE_HASH, TYPE_METADATA):  # a journal's first entry, or index's (D30)
        return False
    try:
        cluster = parse_cluster(buf)
    except CorruptJournalError:
        return False
    entries = cluster.entries
    hashes = [e for e in entries if e.type_code == TYPE_HASH]
    if not hashes or any(max(e.physical_sector, e.first_logical_sector) >= _SECTOR_LIMIT for e in hashes):
        return False
    if cluster.is_closed:
        return not any(e.type_code == TYPE_END and e.has_dirty_padding for e in entries)
    return not cluster.terminator.is_torn and not cluster.has_dirty_tail


def identity(source: object, area: Area) -> tuple[object, ...] | None:
    """Something equal for two handles on the same file or buffer (None when unknown): see :func:`file_identity`.

    Its last item is where the handle's byte 0 lies in what it names (a loop device's offset in its backing file).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return ("mem", id(source), 0)
    fd = area.fileno()
    if fd is None:
        return ("obj", id(source), 0)
    return file_identity(fd)


def write_all(f: BinaryIO, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` at ``f``'s position: a raw file may write fewer bytes than asked."""
    view = memoryview(data)
    total = len(view)
    while view:
        n = f.write(view)
        if n is None or n >= len(view):
            return
        if n <= 0:
            raise OSError(f"wrote {total - len(view)} of {total} bytes")
        view = view[n:]


def check_path(path: str | os.PathLike[str], name: str) -> None:
    """Refuse a path the operating system cannot take (a NUL byte in it)."""
    if b"\0" in os.fsencode(path):
        raise JournalArgumentError("the path contains a NUL byte, which no file name can hold", source=name)


def check_openable(path: str | os.PathLike[str], name: str, what: str) -> None:
    """Refuse a path that is not a regular file or a block device (``what`` it should be: "a journal file")."""
    check_path(path, name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise JournalIOError("no such file", source=name) from None
    except OSError as exc:
        raise JournalIOError(f"cannot stat: {exc.strerror or exc}", source=name) from None
    if stat.S_ISDIR(st.st_mode):
        raise JournalIOError(f"is a directory, not {what}", source=name)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise JournalIOError("not a regular file or block device (a FIFO, socket or character device?)", source=name)


def check_file_object(f: object, writable: bool, name: str) -> None:
    """Refuse a file object the area cannot use: text mode, or append mode for writing."""
    mode = getattr(f, "mode", "")
    if isinstance(f, io.TextIOBase) or (isinstance(mode, str) and mode and "b" not in mode):
        raise JournalArgumentError(
            "the file object is in text mode; a journal is bytes: open it in binary mode ('rb', or 'r+b' to write)",
            source=name,
        )
    if not writable:
        return
    appending = isinstance(mode, str) and "a" in mode
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        appending = appending or bool(fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & os.O_APPEND)  # type: ignore[attr-defined]
    if appending:
        raise JournalArgumentError(
            "the file object is open in append mode: every write would go to the end of the file, "
            "outside the area, whatever the offset; open it with 'r+b'",
            source=name,
        )


def _open_path(path: str | os.PathLike[str], writable: bool, name: str) -> BinaryIO:
    check_openable(path, name, "a journal file")
    try:
        return open(path, "r+b" if writable else "rb", buffering=0 if writable else -1)
    except OSError as exc:
        raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=name) from None


def _size_of(f: BinaryIO, name: str) -> int:
    try:
        return f.seek(0, os.SEEK_END)
    except (OSError, ValueError) as exc:
        raise JournalIOError(f"cannot seek: {exc}", source=name) from None
