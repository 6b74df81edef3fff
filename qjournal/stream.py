"""The stream the generated parser reads one journal cluster from.

Strategy: the Kaitai runtime's ``KaitaiStream`` reads through an
``io.BytesIO`` and measures its size with three seeks; replay parses every
entry of every cluster, and the stream calls are a large share of its time.
:class:`ClusterStream` answers exactly the calls the generated
``Qcow2Journal.Cluster`` and ``Qcow2Journal.Entry`` make (``size``, ``pos``,
``is_eof``, ``read_u1``, ``read_u8be``, ``read_bytes``, ``read_bytes_full``)
over bytes in memory, with the runtime's semantics: a read past the end raises
``EndOfStreamError``, a negative length ``InvalidArgumentError``. It knows no
format rule. ``tests/test_stream.py`` pins the calls the generated code makes.

Two implementations, one behaviour (msgpack's way): :class:`PureClusterStream`
here, and the same class compiled with Cython, ``qjournal._cstream``, an
optional extension built at install time when a C compiler is there. The
compiled one is used when it was built; the pure one otherwise, or when the
environment variable ``QJOURNAL_PURE_STREAM`` is set (to anything but ``0``).
:data:`IMPLEMENTATION` says which (``"compiled"`` or ``"pure"``),
:func:`implementation` says it in words, for ``qjournal --version``.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from kaitaistruct import EndOfStreamError, InvalidArgumentError

_U8BE = struct.Struct(">Q").unpack_from


__all__ = ["IMPLEMENTATION", "PURE_STREAM_ENV", "ClusterStream", "PureClusterStream", "implementation"]

PURE_STREAM_ENV = "QJOURNAL_PURE_STREAM"
"""Set to anything but ``0`` (or empty) to use the pure-Python stream even when the compiled one is built."""


class PureClusterStream:
    """A read-only stream over ``buf`` (one 4096-byte cluster), for the generated parser (pure Python)."""

    __slots__ = ("_buf", "_pos", "_size")

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._pos = 0
        self._size = len(buf)

    def size(self) -> int:
        """Length of the buffer."""
        return self._size

    def pos(self) -> int:
        """Current position."""
        return self._pos

    def is_eof(self) -> bool:
        """True at or past the end."""
        return self._pos >= self._size

    def read_u1(self) -> int:
        """One unsigned byte."""
        p = self._pos
        try:
            b = self._buf[p]
        except IndexError:
            raise EndOfStreamError("requested 1 bytes, but only 0 bytes available", 1, 0) from None
        self._pos = p + 1
        return b

    def read_u8be(self) -> int:
        """An unsigned 64-bit big-endian integer."""
        p = self._pos
        try:
            v: int = _U8BE(self._buf, p)[0]
        except struct.error:
            left = max(0, self._size - p)
            raise EndOfStreamError(f"requested 8 bytes, but only {left} bytes available", 8, left) from None
        self._pos = p + 8
        return v

    def read_bytes(self, n: int) -> bytes:
        """Exactly ``n`` bytes."""
        p = self._pos
        q = p + n
        if q > self._size or n < 0:
            if n < 0:
                raise InvalidArgumentError(f"requested invalid {n} amount of bytes")
            left = max(0, self._size - p)
            raise EndOfStreamError(f"requested {n} bytes, but only {left} bytes available", n, left)
        self._pos = q
        return self._buf[p:q]

    def read_bytes_full(self) -> bytes:
        """Every byte from here to the end."""
        p = self._pos
        self._pos = max(p, self._size)
        return self._buf[p:]


def _select() -> tuple[type[PureClusterStream], str, str]:
    """The stream class to use, its name (``compiled`` or ``pure``) and why."""
    if os.environ.get(PURE_STREAM_ENV, "") not in ("", "0"):
        return PureClusterStream, "pure", f"{PURE_STREAM_ENV} is set"
    try:
        from qjournal._cstream import ClusterStream as Compiled  # noqa: PLC0415 - optional, built at install time
    except ImportError:
        return PureClusterStream, "pure", "the compiled stream (qjournal._cstream) is not built"
    return Compiled, "compiled", "qjournal._cstream, built with Cython"  # type: ignore[return-value]


if TYPE_CHECKING:
    ClusterStream = PureClusterStream
    IMPLEMENTATION: str
    _WHY: str
else:
    ClusterStream, IMPLEMENTATION, _WHY = _select()
"""``ClusterStream(buf)``: the stream the reader uses, compiled or pure (:data:`IMPLEMENTATION`)."""


def implementation() -> str:
    """Which stream is in use, and why, in words: ``compiled stream (qjournal._cstream, built with Cython)``."""
    return f"{IMPLEMENTATION} stream ({_WHY})"
