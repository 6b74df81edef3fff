"""The live view of a journal (D9): digest -> the last HASH entry with that digest, in bounded memory.

Strategy: a journal is a log store; the entry that counts for a digest is its
last occurrence, and the live entries, in the order of those last
occurrences, are what :func:`qjournal.pack` writes. :class:`LiveIndex`
replays the journal once and keeps, per digest, only the offset of its last
occurrence, never the entries: an entry is read back from the journal when it
is asked for, so memory is a small multiple of what the live digests
themselves take (about 150 bytes per digest in a dict). The order of last
occurrence is the order of those offsets. A journal whose live set would pass
``memory_limit`` spills to an on-disk index, an SQLite database (the standard
library's ``sqlite3``) in a temporary folder, unlinked as soon as it is open
(a killed process leaves nothing; the space goes with the last descriptor):
each time the dict is full it is appended to a table of occurrences, which,
once the replay is done, SQLite sorts into one row per digest with its last
offset (sequential work on disk, where inserting into a B-tree by digest would
rewrite its pages at every batch), indexed by offset for iteration.

The rule itself, the last occurrence wins and moves to the end, is written
once, in :func:`last_occurrences`; the index, :func:`qjournal.pack` (both its
branches) and :func:`qjournal.verifying.verify` all go through it.

The index is built from an area and its entries (a replay of it: ``LiveIndex(area,
reader.replay())``, or ``reader.live()``), is read-only, and reads the entries
back from that area, which must stay open while the index is used (``with
reader.live() as live: ...``). An entry read back is decoded by
:func:`qjournal.entries.decode_hash` and checked against its digest and size: a
journal changed under its index raises :class:`JournalIOError` instead of
answering with another entry.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import TYPE_CHECKING

from qjournal.area import CHUNK, Area
from qjournal.entries import Entry, HashEntry, decode_hash
from qjournal.errors import JournalArgumentError, JournalIOError
from qjournal.format import LEN_HASH_OVERHEAD
from qjournal.spill import Spill

if TYPE_CHECKING:
    from qjournal.reader import JournalReader

__all__ = ["BYTES_PER_DIGEST", "DEFAULT_MEMORY_LIMIT", "LiveIndex", "last_occurrences"]

DEFAULT_MEMORY_LIMIT = 64 << 20
"""Bytes the in-memory index may take before it spills to disk: about 450,000 live digests (a journal of
some 24 MB of SHA-256 entries). Spilled, it takes at most this, plus SQLite's page cache and sorter
(pack of 1.2 million distinct digests: a peak RSS of about 133 MiB, benchmarks/bench.py's pack row)."""
BYTES_PER_DIGEST = 150
"""What one live SHA-256 digest costs in the in-memory index (the digest, its offset, the dict's slot), measured."""
SQLITE_CACHE_KIB = 16 << 10
"""SQLite's page cache when spilled (16 MiB): part of the memory the index takes (more made it no faster)."""



def last_occurrences(
    pairs: Iterable[tuple[bytes, int]], limit: int | None = None, spill: Callable[[dict[bytes, int]], None] | None = None
) -> dict[bytes, int]:
    """D9, the one place it is written: digest -> the key (an offset) of its last occurrence, in the order of those.

    ``pairs`` are (digest, key) in replay order. When the dict passes ``limit``
    digests it is handed to ``spill`` (which keeps it elsewhere, in order) and a
    new one is started: the dict returned holds what came after the last spill.
    """
    mem: dict[bytes, int] = {}
    pop = mem.pop
    for digest, key in pairs:
        pop(digest, None)  # the last occurrence moves to the end (D9)
        mem[digest] = key
        if limit is not None and len(mem) > limit:
            assert spill is not None
            spill(mem)
            mem = {}
            pop = mem.pop
    return mem


class LiveIndex(Mapping[bytes, HashEntry]):
    """The live HASH entries of a journal (D9): ``digest -> HashEntry``, the last one per digest wins.

    Iteration (keys, ``values()``, ``items()``) is in the order of the last
    occurrences: the order :func:`qjournal.pack` writes them in.
    ``LiveIndex(area, entries)`` builds it from an area and its entries as
    replay yields them (each with its ``ofs``); ``LiveIndex(reader)`` and
    :meth:`qjournal.JournalReader.live` from a reader's area and replay. A
    corruption before the tail raises the reader's :class:`CorruptJournalError`
    while it is built, as replay does.

    Counts: ``num_entries`` (every entry replayed), ``num_hash``, ``num_raw``
    (entries of unassigned types, never live), ``len(index)`` (the live
    digests), ``num_superseded`` (HASH entries a later one with the same
    digest replaces). ``is_spilled`` says whether it went to disk.
    """

    def __init__(
        self,
        area: Area | JournalReader,
        entries: Iterable[Entry] | None = None,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        spill_dir: str | os.PathLike[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if entries is None:  # a reader: its area and its replay (what JournalReader.live passes)
            reader = area
            if isinstance(reader, Area) or not hasattr(reader, "replay"):
                raise JournalArgumentError("a live index is built from an area and its entries, or from a reader")
            area, entries = reader.area, reader.replay(progress)
        elif progress is not None:
            raise JournalArgumentError("progress is the replay's: give it to the replay that yields the entries")
        assert isinstance(area, Area)
        self._area = area
        self._mem: dict[bytes, int] | None = {}
        self._db: sqlite3.Connection | None = None
        self._spill = Spill("the live index", area.name, spill_dir, SQLITE_CACHE_KIB)
        self._window = b""
        self._window_start = 0
        self.num_entries = 0
        self.num_hash = 0
        self._len = 0
        try:
            self._build(entries, max(1, int(memory_limit) // BYTES_PER_DIGEST))
        except BaseException:
            self.close()
            raise

    # -- building ----------------------------------------------------------------------------------
    def _build(self, entries: Iterable[Entry], limit: int) -> None:
        mem = last_occurrences(self._hash_offsets(entries), limit, self._flush)
        if self._db is None:
            self._mem = mem
            self._len = len(mem)
            return
        self._flush(mem)
        with self._spill.errors():
            self._sort()

    def _sort(self) -> None:
        db = self._open_db()
        # One row per digest, its last offset (a sort, sequential on disk), then the order of last occurrence.
        db.execute("CREATE TABLE live (digest BLOB PRIMARY KEY, ofs INTEGER NOT NULL) WITHOUT ROWID")
        db.execute("INSERT INTO live (digest, ofs) SELECT digest, max(ofs) FROM occurrence GROUP BY digest")
        db.execute("DROP TABLE occurrence")
        db.execute("CREATE INDEX live_ofs ON live(ofs)")
        db.execute("COMMIT")
        self._len = db.execute("SELECT count(*) FROM live").fetchone()[0]

    def _hash_offsets(self, entries: Iterable[Entry]) -> Iterator[tuple[bytes, int]]:
        """(digest, offset) of every HASH entry, counting every entry (``num_entries``, ``num_hash``) on the way."""
        num_entries = num_hash = 0
        hash_type = HashEntry
        for e in entries:
            num_entries += 1
            if type(e) is hash_type:
                num_hash += 1
                yield e[0], e[3]  # type: ignore[misc] # a replayed entry has its offset
        self.num_entries, self.num_hash = num_entries, num_hash

    def _flush(self, mem: dict[bytes, int]) -> None:
        """Append a batch of (digest, last offset in the batch) to the on-disk index's table of occurrences."""
        with self._spill.errors():
            if self._db is None:
                self._db = self._spill.open("CREATE TABLE occurrence (digest BLOB NOT NULL, ofs INTEGER NOT NULL)")
                self._db.execute("BEGIN")
            self._mem = None
            self._db.executemany("INSERT INTO occurrence (digest, ofs) VALUES (?, ?)", mem.items())
            mem.clear()

    # -- the mapping -------------------------------------------------------------------------------
    @property
    def is_spilled(self) -> bool:
        """True when the index went to disk (its live set passed ``memory_limit``)."""
        return self._db is not None

    @property
    def num_raw(self) -> int:
        """Entries of unassigned types replayed: never live (D9 keeps only HASH entries)."""
        return self.num_entries - self.num_hash

    @property
    def num_live(self) -> int:
        """The live digests: ``len(index)``."""
        return self._len

    @property
    def num_superseded(self) -> int:
        """HASH entries replaced by a later entry with the same digest."""
        return self.num_hash - self._len

    def __len__(self) -> int:
        return self._len

    def _ofs(self, digest: object) -> int | None:
        if isinstance(digest, (bytearray, memoryview)):
            digest = bytes(digest)
        if type(digest) is not bytes:
            return None
        if self._mem is not None:
            return self._mem.get(digest)
        db = self._open_db()
        row = db.execute("SELECT ofs FROM live WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def __getitem__(self, digest: bytes) -> HashEntry:
        ofs = self._ofs(digest)
        if ofs is None:
            raise KeyError(digest)
        return self._entry(bytes(digest), ofs)

    def __contains__(self, digest: object) -> bool:
        return self._ofs(digest) is not None

    def ofs(self, digest: bytes) -> int | None:
        """The area offset of the live entry with this digest, or None: no read of the journal."""
        return self._ofs(digest)

    def _pairs(self) -> Iterator[tuple[bytes, int]]:
        """(digest, offset) of every live entry, in offset order (the order of last occurrence)."""
        if self._mem is not None:
            yield from self._mem.items()
            return
        yield from self._open_db().execute("SELECT digest, ofs FROM live ORDER BY ofs")

    def __iter__(self) -> Iterator[bytes]:
        for digest, _ in self._pairs():
            yield digest

    def len_entries(self) -> Iterator[int]:
        """``len_entry`` of every live entry, in order (for fitting them, D6): no read of the journal."""
        for digest, _ in self._pairs():
            yield len(digest) + LEN_HASH_OVERHEAD

    def values(self) -> ValuesView[HashEntry]:
        """The live entries in order, read from the journal in one forward pass (not one lookup each)."""
        return _Values(self)

    def items(self) -> ItemsView[bytes, HashEntry]:
        """(digest, entry) in order, read in one forward pass."""
        return _Items(self)

    def _entries(self) -> Iterator[HashEntry]:
        """Every live entry, in order, read from the journal in one forward pass."""
        for digest, ofs in self._pairs():
            yield self._entry(digest, ofs)

    # -- reading entries back ---------------------------------------------------------------------------
    def _entry(self, digest: bytes, ofs: int) -> HashEntry:
        len_entry = len(digest) + LEN_HASH_OVERHEAD
        start = self._window_start
        window = self._window
        if not start <= ofs or ofs + len_entry > start + len(window):
            window = self._area.read(ofs, max(CHUNK, len_entry))
            self._window, self._window_start, start = window, ofs, ofs
        entry = decode_hash(window, ofs - start, ofs)
        if entry is None or entry[0] != digest:
            raise JournalIOError(
                "the journal changed since its live index was built: the entry there is no longer the one indexed",
                ofs, area_offset=self._area.area_offset, source=self._area.name,
            )
        return entry

    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalIOError("the live index is closed", source=self._area.name)
        return self._db

    def close(self) -> None:
        """Release the index: the on-disk one is deleted. The area stays open (it is the caller's)."""
        if self._db is not None:
            self._spill.close()
            self._db = None
            self._mem = None
        self._window = b""

    def __enter__(self) -> LiveIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "on disk" if self.is_spilled else "in memory"
        return f"<LiveIndex {self._area.name}: {self._len} live of {self.num_hash} HASH entries, {where}>"


class _Values(ValuesView[HashEntry]):
    _mapping: LiveIndex

    def __iter__(self) -> Iterator[HashEntry]:
        return self._mapping._entries()


class _Items(ItemsView[bytes, HashEntry]):
    _mapping: LiveIndex

    def __iter__(self) -> Iterator[tuple[bytes, HashEntry]]:
        for e in self._mapping._entries():
            yield e.digest, e
