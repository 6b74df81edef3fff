"""qjournal: the QCOW2 deduplication metadata journal, read and written.

The byte layout lives in ``formats/qcow2_journal.ksy``; the reader parses with
the Kaitai-generated :mod:`qjournal.generated.qcow2_journal`; the writer writes
what that parser reads.
"""

from qjournal.entries import Entry, HashEntry, RawEntry, entry_from_dict
from qjournal.errors import (
    CORRUPTION_RULES,
    CorruptJournalError,
    ForeignDataError,
    JournalArgumentError,
    JournalError,
    JournalFullError,
    JournalIOError,
    JournalLockedError,
)
from qjournal.format import EntryType
from qjournal.reader import ANOMALY_KINDS, CheckReport, JournalReader, JournalState, Problem, read
from qjournal.writer import (
    JournalWriter,
    PackReport,
    create,
    live_entries,
    num_clusters_needed,
    open_for_append,
    pack,
    reset,
)

__all__ = [
    "ANOMALY_KINDS",
    "CORRUPTION_RULES",
    "CheckReport",
    "CorruptJournalError",
    "Entry",
    "EntryType",
    "ForeignDataError",
    "HashEntry",
    "JournalArgumentError",
    "JournalError",
    "JournalFullError",
    "JournalIOError",
    "JournalLockedError",
    "JournalReader",
    "JournalState",
    "JournalWriter",
    "PackReport",
    "Problem",
    "RawEntry",
    "create",
    "entry_from_dict",
    "live_entries",
    "num_clusters_needed",
    "open_for_append",
    "pack",
    "read",
    "reset",
]
