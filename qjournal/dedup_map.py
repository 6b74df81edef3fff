"""A digest -> int map in bounded memory: dedup's digest -> data cluster, index's digest -> (entry, references).

Strategy. A dict while it is small; past ``memory_limit`` (counted as
:data:`qjournal.live.BYTES_PER_DIGEST` per digest, measured for the live
index's dict of the same shape) it is appended, sorted by digest, to an
SQLite table (the standard library's ``sqlite3``) in a temporary folder,
deleted on :meth:`DigestMap.close` (or at exit), and the dict starts empty
again. A lookup asks the dict first, where the newest mappings are; the
caller asks SQLite once per window of digests (:meth:`DigestMap.prefetch`),
not once per digest.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

from qjournal.live import BYTES_PER_DIGEST, SQLITE_CACHE_KIB
from qjournal.spill import Spill

__all__ = ["DigestMap"]

_MAX_PARAMS = 500
"""Digests per ``IN (...)`` query."""


class DigestMap:
    """``digest -> int``: :meth:`get` and :meth:`put` on the newest mappings, :meth:`prefetch` from the spilled ones."""

    def __init__(self, *, memory_limit: int, spill_dir: str | os.PathLike[str] | None = None, source: str = "dedup") -> None:
        self._mem: dict[bytes, int] = {}
        self._limit = max(1, int(memory_limit) // BYTES_PER_DIGEST)
        self._spill = Spill("the digest map", source, spill_dir, SQLITE_CACHE_KIB // 2)
        self._db: sqlite3.Connection | None = None
        self.num_spilled = 0
        """Mappings written to SQLite so far (a digest mapped again is counted again)."""

    @property
    def is_spilled(self) -> bool:
        """True once the map went to disk."""
        return self._db is not None

    @property
    def mapping(self) -> dict[bytes, int]:
        """The newest mappings, in memory: a hot loop may read and write it directly, then call :meth:`spill_if_full`."""
        return self._mem

    def spill_if_full(self) -> None:
        """Spill the in-memory mappings past the memory limit (what :meth:`put` does by itself)."""
        if len(self._mem) > self._limit:
            self._flush()

    def items(self) -> Iterator[tuple[bytes, int]]:
        """Every digest and its newest value, once each (the in-memory ones, then the spilled ones not in memory)."""
        mem = self._mem
        yield from mem.items()
        if self._db is not None:
            with self._spill.errors():
                for digest, value in self._db.execute("SELECT digest, value FROM map"):
                    if digest not in mem:
                        yield digest, value

    def get(self, digest: bytes) -> int | None:
        """The newest mapping of ``digest`` held in memory (spilled ones come from :meth:`prefetch`)."""
        return self._mem.get(digest)

    def put(self, digest: bytes, value: int) -> None:
        """Map ``digest`` to ``value`` (replacing an older mapping)."""
        mem = self._mem
        mem[digest] = value
        if len(mem) > self._limit:
            self._flush()

    def prefetch(self, digests: list[bytes]) -> dict[bytes, int]:
        """The spilled mappings of those of ``digests`` not in memory (empty while nothing is spilled)."""
        if self._db is None:
            return {}
        mem = self._mem
        wanted = list({d for d in digests if d not in mem})
        out: dict[bytes, int] = {}
        for i in range(0, len(wanted), _MAX_PARAMS):
            chunk = wanted[i : i + _MAX_PARAMS]
            rows = self._db.execute(f"SELECT digest, value FROM map WHERE digest IN ({','.join('?' * len(chunk))})", chunk)
            out.update(rows)
        return out

    def _flush(self) -> None:
        with self._spill.errors():
            if self._db is None:
                self._db = self._spill.open("CREATE TABLE map (digest BLOB PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
            db = self._db
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO map (digest, value) VALUES (?, ?)", sorted(self._mem.items()))
            db.execute("COMMIT")
        self.num_spilled += len(self._mem)
        self._mem = {}

    def close(self) -> None:
        """Release the map: the on-disk part is deleted."""
        if self._db is not None:
            self._spill.close()
            self._db = None
        self._mem = {}
