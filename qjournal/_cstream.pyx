# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The compiled :class:`ClusterStream`: the same seven calls as :mod:`qjournal.stream`'s, in C.

Strategy (msgpack's: an optional extension, a pure-Python twin of the same
behaviour): a ``cdef class`` over one ``bytes`` object, reading bytes and
big-endian integers from its buffer with no Python-level frame per call. It
knows no format rule. A read past the end raises ``EndOfStreamError`` and a
negative length ``InvalidArgumentError``, with the runtime's messages, exactly
as the pure stream does; ``tests/test_stream.py`` holds both to the stock
Kaitai stream and to each other.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from kaitaistruct import EndOfStreamError, InvalidArgumentError


@cython.final
@cython.auto_pickle(False)
cdef class ClusterStream:
    """A read-only stream over ``buf`` (one 4096-byte cluster), for the generated parser."""

    cdef bytes _buf
    cdef const unsigned char* _data
    cdef Py_ssize_t _pos
    cdef Py_ssize_t _size

    def __cinit__(self, bytes buf not None):
        self._buf = buf
        self._data = <const unsigned char*> PyBytes_AS_STRING(buf)
        self._pos = 0
        self._size = PyBytes_GET_SIZE(buf)

    def size(self):
        """Length of the buffer."""
        return self._size

    def pos(self):
        """Current position."""
        return self._pos

    def is_eof(self):
        """True at or past the end."""
        return self._pos >= self._size

    def read_u1(self):
        """One unsigned byte."""
        cdef Py_ssize_t p = self._pos
        if p >= self._size:
            raise EndOfStreamError("requested 1 bytes, but only 0 bytes available", 1, 0)
        self._pos = p + 1
        return self._data[p]

    def read_u8be(self):
        """An unsigned 64-bit big-endian integer."""
        cdef Py_ssize_t p = self._pos
        cdef Py_ssize_t left
        cdef const unsigned char* d
        cdef unsigned long long v
        if p + 8 > self._size:
            left = self._size - p
            if left < 0:
                left = 0
            raise EndOfStreamError(f"requested 8 bytes, but only {left} bytes available", 8, left)
        d = self._data + p
        v = ((<unsigned long long> d[0] << 56) | (<unsigned long long> d[1] << 48)
             | (<unsigned long long> d[2] << 40) | (<unsigned long long> d[3] << 32)
             | (<unsigned long long> d[4] << 24) | (<unsigned long long> d[5] << 16)
             | (<unsigned long long> d[6] << 8) | <unsigned long long> d[7])
        self._pos = p + 8
        return v

    def read_bytes(self, n):
        """Exactly ``n`` bytes."""
        cdef Py_ssize_t p = self._pos
        cdef Py_ssize_t k
        cdef Py_ssize_t left = self._size - p
        if left < 0:
            left = 0
        try:
            k = n
        except OverflowError:  # beyond any buffer: the pure stream's answers, from Python integers
            if n < 0:
                raise InvalidArgumentError(f"requested invalid {n} amount of bytes") from None
            raise EndOfStreamError(f"requested {n} bytes, but only {left} bytes available", n, left) from None
        if k < 0:
            raise InvalidArgumentError(f"requested invalid {n} amount of bytes")
        if k > self._size - p:
            raise EndOfStreamError(f"requested {n} bytes, but only {left} bytes available", n, left)
        self._pos = p + k
        return PyBytes_FromStringAndSize(<const char*> self._data + p, k)

    def read_bytes_full(self):
        """Every byte from here to the end."""
        cdef Py_ssize_t p = self._pos
        if p >= self._size:
            return b""
        self._pos = self._size
        return PyBytes_FromStringAndSize(<const char*> self._data + p, self._size - p)
