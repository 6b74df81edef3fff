"""Where a large in-memory table goes when it outgrows its limit: an SQLite database on disk.

Strategy: one home for the spill rule that the live view (:mod:`qjournal.live`),
the analysis (:mod:`qjournal.analysis`) and the deduplicator's digest map
(:mod:`qjournal.dedup_map`) share. :meth:`Spill.open` makes a new folder in
``spill_dir`` (default: the system's temporary folder, ``TMPDIR``), opens a
database there with no journal of its own (``journal_mode = OFF``, nothing to
recover: the data is rebuilt by a new run), creates its tables, and unlinks the
folder at once: the open database lives on, and a killed process leaves nothing
behind. :meth:`Spill.errors` turns an SQLite or file error into a
:class:`~qjournal.errors.JournalIOError` that names the folder, says when its
file system is full, and says how to put the spill elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qjournal.errors import JournalIOError

if TYPE_CHECKING:
    import sqlite3

SQLITE_PRAGMAS = ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE")
"""A spill database is scratch space: no rollback journal, no syncs; SQLite's sorts go to files too."""


class Spill:
    """One spill database for ``what`` (words for messages: "the live index"), on behalf of ``source``."""

    def __init__(self, what: str, source: str, spill_dir: str | os.PathLike[str] | None, cache_kib: int) -> None:
        self.what = what
        self.source = source
        self.spill_dir = spill_dir
        self.cache_kib = cache_kib
        self.db: sqlite3.Connection | None = None
        self.folder: str | None = None
        """Where the database was made (it is unlinked once open)."""

    def open(self, *schema: str) -> sqlite3.Connection:
        """Make the database, run the ``schema`` statements, then unlink it: it goes when closed or killed."""
        import shutil  # noqa: PLC0415 - imported when a spill happens, not by every command that might spill
        import sqlite3  # noqa: PLC0415
        import tempfile  # noqa: PLC0415

        with self.errors():
            folder = tempfile.mkdtemp(prefix="qjournal-spill-", dir=self.spill_dir)
            self.folder = folder
            try:
                db = sqlite3.connect(os.path.join(folder, "spill.sqlite3"), isolation_level=None, check_same_thread=False)
                for pragma in (*SQLITE_PRAGMAS, f"cache_size = -{self.cache_kib}"):
                    db.execute(f"PRAGMA {pragma}")
                for statement in schema:
                    db.execute(statement)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            self.db = db
            return db

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """An SQLite or file error of the spill as a :class:`JournalIOError` naming its folder and the way out."""
        try:
            yield
        except Exception as exc:
            sqlite3 = sys.modules.get("sqlite3")  # not imported: no SQLite error can have happened
            if not isinstance(exc, OSError) and (sqlite3 is None or not isinstance(exc, sqlite3.Error)):
                raise
            import tempfile  # noqa: PLC0415

            folder = os.path.dirname(self.folder) if self.folder else os.fsdecode(self.spill_dir or tempfile.gettempdir())
            full = "full" in str(exc) or getattr(exc, "errno", None) == errno.ENOSPC
            raise JournalIOError(
                f"{self.what} spilled to disk in {folder} and failed there: {exc}" + ("; that file system is full" if full else ""),
                source=self.source,
                hint="free space there, or give the spill folder another place: spill_dir=, or the TMPDIR "
                f"environment variable (now {os.environ.get('TMPDIR', 'unset')})",
            ) from None

    def close(self) -> None:
        """Close the database; its file, already unlinked, goes with it."""
        if self.db is not None:
            self.db.close()
            self.db = None
