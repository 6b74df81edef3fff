"""QEMU's image locks, honoured the way ``qemu-img`` honours them.

Strategy: QEMU (block/file-posix.c) announces what it does with an image file by
holding open-file-description (OFD) byte-range read locks on the file itself:
byte ``100 + i`` while it holds permission *i*, byte ``200 + i`` while it refuses
to share permission *i* with anyone else. The permissions are bits of one word
(:data:`PERMISSIONS`: consistent read 0, write 1, write-unchanged 2, resize 3).
A process that wants to read an image consistently, as ``qemu-img info`` does
without ``-U``, first tests that nobody holds *write* or *resize* (an exclusive
test lock on bytes 101 and 103 would block), then itself holds byte 100
(consistent read) and bytes 201 and 203 (it does not share write or resize), so
that a QEMU started while it reads is refused in turn. With ``force_share``
(``qemu-img -U``) nothing is tested and only byte 100 is held.

Locks are state of the open file description, never bytes of the file: taking
them writes nothing, and they go when the descriptor is closed. A file system
without OFD lock support (``EINVAL``/``ENOLCK``/``EOPNOTSUPP``) is read as QEMU
reads it there: without locks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from typing import ClassVar

from qjournal.codes import family
from qjournal.errors import ImageError

LOCK_BASE_PERM = 100
"""Byte ``100 + i`` is held (read-locked) by a process that has permission *i*."""

LOCK_BASE_SHARED = 200
"""Byte ``200 + i`` is held by a process that does not share permission *i*."""

PERMISSIONS: dict[str, int] = {"consistent read": 0, "write": 1, "write unchanged": 2, "resize": 3}
"""QEMU's permission bits (BLK_PERM_*), by the names its messages use."""

READER_HOLDS = ("consistent read",)
"""What a reader of an image holds: a consistent view of it."""

READER_UNSHARES = ("write", "resize")
"""What a reader does not share while it reads: nobody may write or resize the image under it."""

_FLOCK = "@hhqqi4x"
"""``struct flock`` on Linux (l_type, l_whence, l_start, l_len, l_pid, padding)."""

_UNSUPPORTED = (errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP)

IMAGE_LOCK_CODES: dict[str, str] = family("image_lock")
"""The codes of :class:`ImageInUseError` (a view of :data:`qjournal.codes.CODES`)."""


class ImageInUseError(ImageError):
    """The image is held open for writing (or resizing) by another process, as QEMU's locks say."""

    codes: ClassVar[dict[str, str]] = IMAGE_LOCK_CODES


def _flock(kind: int, start: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, start, 1, 0)


def _holder(fd: int, start: int) -> bool | None:
    """Whether another open file description holds a lock on byte ``start`` (None: the file system has no OFD locks)."""
    try:
        out = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK, start))
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return None
        raise
    return bool(struct.unpack(_FLOCK, out)[0] != fcntl.F_UNLCK)


def holders(fd: int) -> list[str]:
    """The permissions (of :data:`READER_UNSHARES`) that another process holds on the open image ``fd``."""
    return [name for name in READER_UNSHARES if _holder(fd, LOCK_BASE_PERM + PERMISSIONS[name])]


def lock_for_reading(fd: int, *, path: str, force_share: bool = False) -> None:
    """Refuse an image that another process holds for writing, then hold QEMU's reader locks on ``fd``.

    Raises :class:`ImageInUseError` naming the permission and the way out
    (``--force-share``). With ``force_share`` nothing is refused and only the
    consistent-read byte is held, as ``qemu-img -U`` does.
    """
    held = [] if force_share else holders(fd)
    if held:
        raise ImageInUseError(
            "in_use",
            f"another process holds the image open for {' and '.join(held)} (QEMU's lock on byte "
            f"{LOCK_BASE_PERM + PERMISSIONS[held[0]]}): its clusters may change while they are read",
            source=path,
            hint="stop the virtual machine (or qemu-img/qemu-io) using it first, or read it anyway with --force-share (-U), "
            "as qemu-img does, knowing the answer may not match any state of the disk",
        )
    names = READER_HOLDS if force_share else READER_HOLDS + READER_UNSHARES
    for name in names:
        base = LOCK_BASE_PERM if name in READER_HOLDS else LOCK_BASE_SHARED
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_RDLCK, base + PERMISSIONS[name]))
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                return
            if exc.errno in (errno.EAGAIN, errno.EACCES):  # a writer took its lock between the test and ours
                raise ImageInUseError(
                    "in_use",
                    "another process took the image for writing while it was being opened",
                    source=path,
                    hint="try again once nothing else uses the image, or read it anyway with --force-share (-U)",
                ) from None
            raise
