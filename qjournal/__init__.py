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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qjournal.analysis import analyze
    from qjournal.codes import CODES, Code
    from qjournal.deduplicating import dedup
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
    from qjournal.indexing import IndexReport, index
    from qjournal.live import LiveIndex
    from qjournal.making import ResetReport, create, reset
    from qjournal.packing import PackReport, live_entries, num_clusters_needed, pack
    from qjournal.reader import ANOMALY_KINDS, CheckReport, JournalReader, JournalState, Problem, read
    from qjournal.resources import format_reference_path, ksy_path
    from qjournal.verifying import VERIFY_PROBLEMS, Mismatch, VerifyReport, verify
    from qjournal.writer import JournalWriter, open_for_append

_LAZY = {
    "Entry": "qjournal.entries",
    "HashEntry": "qjournal.entries",
    "RawEntry": "qjournal.entries",
    "entry_from_dict": "qjournal.entries",
    "CORRUPTION_RULES": "qjournal.errors",
    "CorruptImageError": "qjournal.errors",
    "CorruptJournalError": "qjournal.errors",
    "Error": "qjournal.errors",
    "CODES": "qjournal.codes",
    "Code": "qjournal.codes",
    "analyze": "qjournal.analysis",
    "ForeignDataError": "qjournal.errors",
    "IMAGE_CORRUPTION_RULES": "qjournal.errors",
    "ImageError": "qjournal.errors",
    "JournalArgumentError": "qjournal.errors",
    "JournalError": "qjournal.errors",
    "JournalFullError": "qjournal.errors",
    "JournalIOError": "qjournal.errors",
    "JournalLockedError": "qjournal.errors",
    "UNSUPPORTED_FEATURES": "qjournal.errors",
    "UnsupportedImageError": "qjournal.errors",
    "EntryType": "qjournal.format",
    "Image": "qjournal.image",
    "Kind": "qjournal.image",
    "open_image": "qjournal.image",
    "IndexReport": "qjournal.indexing",
    "LiveIndex": "qjournal.live",
    "ResetReport": "qjournal.making",
    "create": "qjournal.making",
    "reset": "qjournal.making",
    "PackReport": "qjournal.packing",
    "live_entries": "qjournal.packing",
    "num_clusters_needed": "qjournal.packing",
    "pack": "qjournal.packing",
    "ANOMALY_KINDS": "qjournal.reader",
    "CheckReport": "qjournal.reader",
    "JournalReader": "qjournal.reader",
    "JournalState": "qjournal.reader",
    "Problem": "qjournal.reader",
    "read": "qjournal.reader",
    "format_reference_path": "qjournal.resources",
    "ksy_path": "qjournal.resources",
    "Mismatch": "qjournal.verifying",
    "VERIFY_PROBLEMS": "qjournal.verifying",
    "VerifyReport": "qjournal.verifying",
    "JournalWriter": "qjournal.writer",
    "open_for_append": "qjournal.writer",
}
"""Where each public name lives: imported on first use (PEP 562), so that ``import qjournal`` (and the
command line, which starts by importing it) costs nothing it does not use."""


def __getattr__(name: str) -> Any:
    """A public name on first use; a submodule too (``qjournal.errors``), as the package's eager imports gave.

    ``index``, ``verify`` and ``dedup`` are submodules of that kind: the old module names, which call as the functions
    (:mod:`qjournal._renamed`, one release)."""
    import importlib  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
