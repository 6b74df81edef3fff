"""What benchmarks/bench.py times against each other: its journals, the replay decoders and the append baseline.

Each decoder yields, for a HASH entry, (digest, physical_sector, first_logical_sector, ofs) and for any
other replayed entry (type_code, body, ofs): the same fields, so that their answers can be compared
before anything is timed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import qjournal
from qjournal import cluster
from qjournal.entries import HashEntry
from qjournal.format import LEN_CLUSTER, LEN_HASH_SECTORS, LEN_HEADER, TYPE_END, TYPE_HASH, TYPE_NONE, place
from qjournal.generated.qcow2_journal import Qcow2Journal

FILL = 0.9
"""Areas are filled to 90% of their bytes."""
_U8U8 = struct.Struct(">QQ").unpack_from
Fields = tuple[Any, ...]
"""What a decoder yields per entry: (digest, physical_sector, first_logical_sector, ofs) or (type_code, body, ofs)."""


# -- the journals --------------------------------------------------------------


def digest_of(i: int) -> bytes:
    """A SHA-256 digest, distinct per index (the shape of a real journal's digests)."""
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def hash_entries(count: int, start: int = 0) -> list[HashEntry]:
    """``count`` SHA-256 HASH entries: cluster i at physical sector 8*i, logical sectors scattered."""
    return [HashEntry(digest_of(i), 8 * i, (i * 2654435761 % (1 << 32)) * 8) for i in range(start, start + count)]


def build_journal(len_area: int, fill: float = FILL) -> bytearray:
    """An in-memory journal of ``len_area`` bytes, appended to until ``fill`` of it is used.

    ``fill=1`` appends until the journal refuses a SHA-256 entry (full for that size).
    """
    buf = bytearray()
    with qjournal.create(buf, len_area // LEN_CLUSTER) as w:
        i = 0
        goal = int(len_area * fill)
        while w.ofs_tail < goal:
            try:
                w.append_hash(digest_of(i), 8 * i, i)
            except qjournal.JournalFullError:
                break
            i += 1
    return buf


# -- the decoders ----------------------------------------------------------------


def replay_public(data: bytes) -> Iterator[Fields]:
    """The public API: ``qjournal.read(data)`` (HashEntry and RawEntry are tuples), with the stream in use."""
    return iter(qjournal.read(data))


def compiled_stream() -> type | None:
    """The compiled stream class (qjournal._cstream), or None when it was not built."""
    try:
        from qjournal._cstream import ClusterStream
    except ImportError:
        return None
    return ClusterStream


def replay_public_with(stream_class: type) -> Callable[[bytes], Iterator[Fields]]:
    """The public API with the given stream class (compiled or pure) in place of the one in use."""

    def replay(data: bytes) -> Iterator[Fields]:
        saved = cluster.ClusterStream  # type: ignore[attr-defined]
        setattr(cluster, "ClusterStream", stream_class)  # noqa: B010 - a swap the type checker need not follow
        try:
            yield from qjournal.read(data)
        finally:
            setattr(cluster, "ClusterStream", saved)  # noqa: B010

    return replay


def replay_generated(data: bytes) -> Iterator[Fields]:
    """The bare generated parser, as its own docs use it: ``Cluster.from_bytes``, stock runtime stream."""
    from_bytes = Qcow2Journal.Cluster.from_bytes  # type: ignore[attr-defined]  # KaitaiStruct's class method; the generated .pyi leaves it out
    for base in range(0, len(data), LEN_CLUSTER):
        if not (yield from cluster_fields(from_bytes(data[base : base + LEN_CLUSTER]).entries, base)):
            return


def cluster_fields(entries: Iterable[Any], ofs: int) -> Generator[Fields, None, bool]:
    """Yield the fields of one cluster's parsed entries (objects with the .ksy's field names).

    Returns True when an END closed the cluster (replay goes on), False at NONE.
    """
    for e in entries:
        code = e.type_code
        if code == TYPE_HASH:
            yield (e.digest, e.physical_sector, e.first_logical_sector, ofs)
        elif code == TYPE_END:
            return True
        elif code == TYPE_NONE:
            return False
        else:
            yield (code, e.body, ofs)
        ofs += e.len_entry
    return False


class DecodeError(ValueError):
    """The hand-written decoder met an entry that breaks D3/D5/D8."""


def replay_struct(data: bytes) -> Iterator[Fields]:
    """A hand-written decoder: D7 replay with the .ksy's checks (D3, D5, D8), ``struct`` for the sectors."""
    for base in range(0, len(data), LEN_CLUSTER):
        c = data[base : base + LEN_CLUSTER]
        o = 0
        while True:
            size = c[o]
            code = c[o + 1]
            room = LEN_CLUSTER - o
            if size < 2:
                raise DecodeError(f"size {size} at {base + o}")
            if code == TYPE_HASH:
                if not 19 <= size <= 254 or size > room - 2:
                    raise DecodeError(f"HASH of size {size} at {base + o}")
                end = o + size
                phys, logical = _U8U8(c, end - 16)
                yield (c[o + 2 : end - 16], phys, logical, base + o)
            elif code == TYPE_END:
                if size != room:
                    raise DecodeError(f"END of size {size} at {base + o}")
                break
            elif code == TYPE_NONE:
                return
            else:
                if size > 254 or size > room - 2:
                    raise DecodeError(f"entry of size {size} at {base + o}")
                yield (code, c[o + 2 : o + size], base + o)
            o += size


CONSTRUCT = "construct 2.10"
"""The construct decoder's name in the table."""


def construct_cluster() -> Any:
    """The format in construct (2.10): an entry list per cluster, with the .ksy's checks."""
    from construct import Bytes, Check, If, Int8ub, Int64ub, RepeatUntil, Struct, Tell, this  # type: ignore[import-untyped]

    def valid(c: Any) -> bool:
        size, code, room = int(c.len_entry), int(c.type_code), LEN_CLUSTER - int(c.pos) + 2
        if code == TYPE_HASH:
            return 19 <= size <= 254 and size <= room - 2
        if code == TYPE_NONE:
            return True
        if code == TYPE_END:
            return size == room
        return size <= 254 and size <= room - 2

    entry = Struct(
        "len_entry" / Int8ub,
        Check(this.len_entry >= 2),
        "type_code" / Int8ub,
        "pos" / Tell,
        Check(valid),
        "digest" / If(this.type_code == TYPE_HASH, Bytes(this.len_entry - 18)),
        "physical_sector" / If(this.type_code == TYPE_HASH, Int64ub),
        "first_logical_sector" / If(this.type_code == TYPE_HASH, Int64ub),
        "body" / If(lambda c: c.type_code not in (TYPE_HASH, TYPE_NONE), Bytes(this.len_entry - 2)),
    )
    return RepeatUntil(lambda obj, lst, ctx: obj.type_code in (TYPE_END, TYPE_NONE), entry)


def make_replay_construct() -> Callable[[bytes], Iterator[Fields]] | None:
    """The construct decoder, or None when construct is not installed."""
    try:
        cluster = construct_cluster()
    except ImportError:
        return None
    parse = cluster.parse

    def replay_construct(data: bytes) -> Iterator[Fields]:
        for base in range(0, len(data), LEN_CLUSTER):
            if not (yield from cluster_fields(parse(data[base : base + LEN_CLUSTER]), base)):
                return

    return replay_construct


# -- the append baselines ------------------------------------------------------


class MinimalPacker:
    """The least a writer can do: pack each HASH entry at the tail, END when it does not fit (D6).

    No argument checks, no write order, no lock: the baseline the writer is measured against.
    It writes into a bytearray, or with one ``pwrite`` per entry (two with an END) into the
    file ``fd``, and fsyncs after each entry when ``sync``.
    """

    def __init__(self, buf: bytearray | None = None, fd: int | None = None, sync: bool = False) -> None:
        self.buf, self.fd, self.sync = buf, fd, sync
        self.pos = 0

    def _write(self, pos: int, data: bytes) -> None:
        if self.buf is not None:
            self.buf[pos : pos + len(data)] = data
        else:
            os.pwrite(self.fd, data, pos)  # type: ignore[arg-type]

    def append_hash(self, digest: bytes, physical_sector: int, first_logical_sector: int) -> int:
        size = len(digest) + LEN_HASH_SECTORS + LEN_HEADER
        pos = self.pos
        at = place(pos, size)
        if at != pos:
            self._write(pos, bytes((at - pos, TYPE_END)))
        self._write(at, struct.pack(f">BB{len(digest)}sQQ", size, TYPE_HASH, digest, physical_sector, first_logical_sector))
        if self.sync:
            os.fsync(self.fd)  # type: ignore[arg-type]
        self.pos = at + size
        return at
