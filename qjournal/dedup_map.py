"""The digest -> host data cluster map of a deduplication, in bounded memory.

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
import shutil
import sqlite3
import tempfile
import weakref
from typing import Any

from qjournal.live import BYTES_PER_DIGEST, SQLITE_CACHE_KIB

__all__ = ["DigestMap"]

_MAX_PARAMS = 500
"""Digests per ``IN (...)`` query."""


class DigestMap:
    """``digest -> int``: :meth:`get` and :meth:`put` on the newest mappings, :meth:`prefetch` from the spilled ones."""

    def __init__(self, *, memory_limit: int, spill_dir: str | os.PathLike[str] | None = None) -> None:
        self._mem: dict[bytes, int] = {}
        self._limit = max(1, int(memory_limit) // BYTES_PER_DIGEST)
        self._spill_dir = spill_dir
        self._db: sqlite3.Connection | None = None
        self._dir: str | None = None
        self._finalizer: Any = None
        self.num_spilled = 0
        """Mappings written to SQLite so far (a digest mapped again is counted again)."""

    @property
    def is_spilled(self) -> bool:
        """True once the map went to disk."""
        return self._db is not None

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
        if self._db is None:
            self._dir = tempfile.mkdtemp(prefix="qjournal-dedup-", dir=self._spill_dir)
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
            db = sqlite3.connect(os.path.join(self._dir, "map.sqlite3"), isolation_level=None, check_same_thread=False)
            self._db = db
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE", f"cache_size = -{SQLITE_CACHE_KIB // 2}"):
                db.execute(f"PRAGMA {pragma}")
            db.execute("CREATE TABLE map (digest BLOB PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
        db = self._db
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO map (digest, value) VALUES (?, ?)", sorted(self._mem.items()))
        db.execute("COMMIT")
        self.num_spilled += len(self._mem)
        self._mem = {}

    def close(self) -> None:
        """Release the map: the on-disk part is deleted."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._mem = {}
