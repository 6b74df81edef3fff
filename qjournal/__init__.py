"""qjournal: the QCOW2 deduplication metadata journal, read and written.

The byte layout lives in ``formats/qcow2_journal.ksy`` (shipped in the package:
:func:`ksy_path`); the reader parses with the Kaitai-generated
:mod:`qjournal.generated.qcow2_journal`; the writer writes what that parser
reads. The format reference is ``docs/format.md``. Images: :func:`index`
(``qjournal.index("disk.qcow2", "j")``, from :mod:`qjournal.indexing`) makes a
journal of an image's clusters and :func:`verify` (:mod:`qjournal.verifying`)
checks one against its image (and :func:`analyze` and :func:`dedup`, from
:mod:`qjournal.analysis` and :mod:`qjournal.deduplicating`), all through :func:`open_image` (qcow2 through
:mod:`qjournal.generated.qcow2`, or raw). Every stable code a problem carries is
in :data:`CODES` (:mod:`qjournal.codes`); every error is a :class:`Error`.
"""

from typing import TYPE_CHECKING

from qjournal.codes import CODES, Code
from qjournal.entries import Entry, HashEntry, RawEntry, entry_from_dict
from qjournal.errors import (
    CORRUPTION_RULES,
    IMAGE_CORRUPTION_RULES,
    UNSUPPORTED_FEATURES,
    CorruptImageError,
    CorruptJournalError,
    Error,
    ForeignDataError,
    ImageError,
    JournalArgumentError,
    JournalError,
    JournalFullError,
    JournalIOError,
    JournalLockedError,
    UnsupportedImageError,
)
from qjournal.format import EntryType
from qjournal.image import Image, Kind, open_image
from qjournal.indexing import IndexReport
from qjournal.live import LiveIndex
from qjournal.making import ResetReport, create, reset
from qjournal.packing import PackReport, live_entries, num_clusters_needed, pack
from qjournal.reader import ANOMALY_KINDS, CheckReport, JournalReader, JournalState, Problem, read
from qjournal.resources import format_reference_path, ksy_path
from qjournal.verifying import VERIFY_PROBLEMS, Mismatch, VerifyReport
from qjournal.writer import JournalWriter, open_for_append

if TYPE_CHECKING:
    from qjournal.analysis import analyze
    from qjournal.deduplicating import dedup
    from qjournal.indexing import index
    from qjournal.verifying import verify
else:  # the old module names, callable as the functions (one release: qjournal/_renamed.py)
    from qjournal import dedup, index, verify

    def __getattr__(name: str) -> object:
        """``analyze`` on first use: it imports what only images need."""
        if name == "analyze":
            from qjournal.analysis import analyze  # noqa: PLC0415

            return analyze
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ANOMALY_KINDS",
    "CODES",
    "CORRUPTION_RULES",
    "IMAGE_CORRUPTION_RULES",
    "UNSUPPORTED_FEATURES",
    "VERIFY_PROBLEMS",
    "CheckReport",
    "Code",
    "CorruptImageError",
    "CorruptJournalError",
    "Entry",
    "EntryType",
    "Error",
    "ForeignDataError",
    "HashEntry",
    "Image",
    "ImageError",
    "IndexReport",
    "JournalArgumentError",
    "JournalError",
    "JournalFullError",
    "JournalIOError",
    "JournalLockedError",
    "JournalReader",
    "JournalState",
    "JournalWriter",
    "Kind",
    "LiveIndex",
    "Mismatch",
    "PackReport",
    "Problem",
    "RawEntry",
    "ResetReport",
    "UnsupportedImageError",
    "VerifyReport",
    "analyze",
    "create",
    "dedup",
    "entry_from_dict",
    "format_reference_path",
    "index",
    "ksy_path",
    "live_entries",
    "num_clusters_needed",
    "open_for_append",
    "open_image",
    "pack",
    "read",
    "reset",
    "verify",
]
