"""qjournal: the QCOW2 deduplication metadata journal, read and written.

The byte layout lives in ``formats/qcow2_journal.ksy`` (shipped in the package:
:func:`ksy_path`); the reader parses with the Kaitai-generated
:mod:`qjournal.generated.qcow2_journal`; the writer writes what that parser
reads. The format reference is ``docs/format.md``.
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
from qjournal.live import LiveIndex
from qjournal.making import ResetReport, create, reset
from qjournal.packing import PackReport, live_entries, num_clusters_needed, pack
from qjournal.reader import ANOMALY_KINDS, CheckReport, JournalReader, JournalState, Problem, read
from qjournal.resources import format_reference_path, ksy_path
from qjournal.writer import JournalWriter, open_for_append

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
    "LiveIndex",
    "PackReport",
    "Problem",
    "RawEntry",
    "ResetReport",
    "create",
    "entry_from_dict",
    "format_reference_path",
    "ksy_path",
    "live_entries",
    "num_clusters_needed",
    "open_for_append",
    "pack",
    "read",
    "reset",
]
