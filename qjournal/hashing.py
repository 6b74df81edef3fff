"""Hashing an image's host bytes on every core: the one hot path of index and verify.

Strategy. The caller's thread plans the reads (it walks the image's tables,
which only one thread may parse); a pool of threads does them. A task is a
list of host ranges, at most :data:`LEN_RUN` bytes in all; a worker reads each
range with positioned reads into a buffer it keeps, then hashes it block by
block with :mod:`hashlib`, which releases the GIL for buffers this large, so
reading and hashing run on every core while the caller parses the next L2
entries. Results come back in the order the tasks went in, with a bounded
number in flight (memory: about ``jobs`` x :data:`LEN_RUN`). A block whose
bytes are all zero can be told apart with one memcmp and not hashed.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.image import Image
from qjournal.parallel import resolve_jobs

__all__ = ["DEFAULT_HASH", "HASH_NAMES", "LEN_RUN", "block_digests", "check_hash_name", "hash_name_for", "hash_ranges"]

T = TypeVar("T")

LEN_RUN = 4 << 20
"""Bytes one task reads and hashes (or one block, if larger)."""
DEFAULT_HASH = "sha256"
"""What index writes: SHA-256, the journal's default digest (D8, D25)."""
HASH_NAMES: dict[int, str] = {20: "sha1", 32: "sha256", 64: "sha512"}
"""The algorithm a digest's length names (D25)."""
ZERO = b""
"""What :func:`hash_ranges` gives, with ``detect_zero``, for a block whose bytes are all zero (it is not hashed)."""


def hash_name_for(len_digest: int) -> str | None:
    """The algorithm whose digests are ``len_digest`` bytes long (SHA-1, SHA-256, SHA-512), or None."""
    return HASH_NAMES.get(len_digest)


def check_hash_name(hash_name: object) -> str:
    """A :mod:`hashlib` algorithm name with a fixed digest length (``sha256``, ``sha1``, ``blake2b``...)."""
    if not isinstance(hash_name, str) or hash_name.lower() not in hashlib.algorithms_available:
        raise JournalArgumentError(f"${{hash_name}} {hash_name!r} is not a hash algorithm hashlib offers")
    name = hash_name.lower()
    if hashlib.new(name).digest_size == 0:  # shake_128, shake_256: no fixed length
        raise JournalArgumentError(f"${{hash_name}} {hash_name!r} has no fixed digest length")
    return name


def block_digests(view: memoryview, starts: Iterable[int], size: int, hash_name: str = DEFAULT_HASH) -> list[bytes]:
    """The digest of ``view[s : s + size]`` for each ``s`` of ``starts``, in order (the last may be shorter).

    Each block is hashed by a copy of one fresh hash object, not a new one:
    OpenSSL 3 looks the algorithm up again for every new object, which at
    4 KiB blocks costs about a third of the hashing (copying skips it).
    """
    copy = hashlib.new(hash_name).copy
    out = []
    for start in starts:
        h = copy()
        h.update(view[start : start + size])
        out.append(h.digest())
    return out


def hash_ranges(
    image: Image,
    tasks: Iterable[tuple[T, Sequence[tuple[int, int]]]],
    *,
    len_block: int,
    hash_name: str = DEFAULT_HASH,
    jobs: int | None = None,
    detect_zero: bool = False,
) -> Generator[tuple[T, list[bytes]], None, None]:
    """Read and hash host ranges on ``jobs`` threads; yield ``(tag, digests)`` per task, in the tasks' order.

    A task is ``(tag, [(ofs_host, length), ...])``. Each range is hashed in
    blocks of ``len_block`` bytes (the last block of a range may be shorter):
    the digests of all blocks of all ranges, in order. With ``detect_zero``, a
    block whose bytes are all zero gives :data:`ZERO` (``b""``) and is not
    hashed. A range past the end of the file raises :class:`JournalIOError`
    naming the offset. Stopping early (closing the iterator) cancels what is
    not yet running.
    """
    workers = resolve_jobs(jobs, "hashing threads")
    new_hash: Callable[..., Any] = getattr(hashlib, hash_name, None) or (lambda data: hashlib.new(hash_name, data))
    local = threading.local()
    zeros = bytes(len_block)

    size = -(-LEN_RUN // len_block) * len_block  # whole blocks: a long range is read in pieces on block boundaries

    def work(ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        buf: bytearray | None = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = bytearray(size)
        view = memoryview(buf)
        out: list[bytes] = []
        for ofs, length in ranges:
            pos = 0
            while pos < length:  # a range longer than the buffer: in buffer-sized pieces, on block boundaries
                n = min(length - pos, size)
                got = image.readinto(ofs + pos, view[:n])
                if got != n:
                    raise JournalIOError(
                        f"short read: {got} of {n} bytes at {ofs + pos:#x}: the file ends at {image.len_file:#x} "
                        f"(it shrank while open?)",
                        ofs + pos + got, source=image.name,
                    )
                whole = n - n % len_block
                starts = range(0, whole, len_block)
                if detect_zero:
                    is_zero = buf.startswith
                    nonzero = [s for s in starts if not is_zero(zeros, s)]
                    digests = iter(block_digests(view, nonzero, len_block, hash_name))
                    out += [next(digests) if not is_zero(zeros, s) else ZERO for s in starts]
                else:
                    out += block_digests(view, starts, len_block, hash_name)
                if whole < n:  # a last, shorter block
                    tail = n - whole
                    out.append(ZERO if detect_zero and buf.startswith(zeros[:tail], whole) else new_hash(view[whole:n]).digest())
                pos += n
        return out

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qjournal-hash")
    pending: collections.deque[tuple[T, Future[list[bytes]]]] = collections.deque()
    try:
        for tag, ranges in tasks:
            pending.append((tag, pool.submit(work, ranges)))
            while len(pending) > 2 * workers:
                t, fut = pending.popleft()
                yield t, fut.result()
        while pending:
            t, fut = pending.popleft()
            yield t, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
