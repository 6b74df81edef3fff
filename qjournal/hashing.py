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

:func:`map_batches` is the one walk of a guest disk that analyze and index
share: a function over every :class:`~qjournal.guest.Blocks` batch, results in
guest order. Blocks of 64 KiB and more go to threads as above; smaller ones
to forked worker processes, each walking its own chunks of the disk: with
threads, a hash of a few KiB releases and takes back the GIL for every block,
and two threads then run slower than one.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.image import Image
from qjournal.parallel import can_fork, ordered_map, ordered_threads, resolve_jobs

if TYPE_CHECKING:
    from qjournal.guest import Blocks, GuestReader

__all__ = [
    "DEFAULT_HASH", "FORK_BELOW", "HASH_NAMES", "LEN_CHUNK", "LEN_RUN", "block_digests", "check_hash_name", "hash_name_for",
    "hash_ranges", "map_batches",
]

T = TypeVar("T")
R = TypeVar("R")

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

    yield from ordered_threads(workers, ((tag, functools.partial(work, ranges)) for tag, ranges in tasks),
                               name="qjournal-hash")


FORK_BELOW = 64 << 10
"""Block sizes below this are hashed in forked worker processes, not threads (see the strategy note)."""
LEN_CHUNK = 32 << 20
"""Stored guest bytes per chunk a forked worker walks (a chunk ends on a block boundary)."""


def map_batches(reader: GuestReader, block_size: int, fn: Callable[[Blocks], R], *,
                jobs: int | None = None, once: bool = False) -> Generator[tuple[int, R], None, None]:
    """``(end, fn(batch))`` for every batch of ``reader.blocks(block_size, data=False)``, in guest order.

    ``end`` is the guest offset just past the batch. ``fn`` reads what it needs
    (``reader.fill``) and runs on ``jobs`` threads (default: one per core); for
    blocks under :data:`FORK_BELOW`, in ``jobs`` forked processes instead when
    this process may fork (:func:`qjournal.parallel.can_fork`) and the disk
    has more than one chunk to share: ``fn``'s results then come back pickled.
    At most about ``2 x jobs`` batches are in flight: memory does not grow with
    the disk. ``once``: a data cluster that several guest clusters use is read
    at its first use only (``reader.blocks(..., once=True)``, D31): ``fn``
    weighs the blocks by :attr:`~qjournal.guest.Blocks.weights`.
    """
    workers = resolve_jobs(jobs, "hashing threads")
    once = once and reader.reads_once(block_size)  # the sharing found before any fork: the workers inherit it
    if workers > 1 and block_size < FORK_BELOW and can_fork():
        chunks = _chunks(reader, reader.cluster_size if once else block_size, once)
        if len(chunks) > 1:

            def walk(start: int, stop: int) -> list[tuple[int, R]]:
                return [(b.ofs_guest + b.num_blocks * block_size, fn(b))
                        for b in reader.blocks(block_size, start=start, stop=stop, data=False, once=once)]

            for results in ordered_map(walk, chunks, workers, keep=(reader.image.fileno(),)):
                yield from results
            return
    batches = reader.blocks(block_size, data=False, once=once)  # read where hashed: reads run on every core too
    yield from ordered_threads(workers, ((b.ofs_guest + b.num_blocks * block_size, functools.partial(fn, b))
                                         for b in batches), name="qjournal-hash")


def _chunks(reader: GuestReader, block_size: int, once: bool = False) -> list[tuple[int, int]]:
    """The disk cut on ``block_size`` boundaries (the blocks', or with ``once`` the clusters') into guest ranges of
    about :data:`LEN_CHUNK` stored bytes each (one walk of the tables; an unallocated stretch adds nothing, so a
    sparse terabyte is a few chunks)."""
    from qjournal.guest import Status  # noqa: PLC0415 - guest builds on image, as this module does

    disk = reader.len_virtual_disk
    out: list[tuple[int, int]] = []
    start = stored = 0
    for s, left_out in reader.stored_spans(once=once):  # (with once, a later use of a shared cluster is not read)
        if left_out or s.status is Status.UNALLOCATED:
            continue
        lo = max(s.ofs_guest, start)
        while lo < s.end:
            if s.end - lo < LEN_CHUNK - stored:
                stored += s.end - lo
                break
            cut = min(disk, -(-(lo + LEN_CHUNK - stored) // block_size) * block_size)
            out.append((start, cut))
            start, stored, lo = cut, 0, cut
    if start < disk:
        out.append((start, disk))
    return out
