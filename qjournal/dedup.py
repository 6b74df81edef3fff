"""Deprecated old name of :mod:`qjournal.deduplicating` (one release): ``qjournal.dedup(...)`` calls
:func:`qjournal.deduplicating.dedup`; any other name read here warns and comes from :mod:`qjournal.deduplicating`."""

from qjournal._renamed import rename

rename(__name__, "qjournal.deduplicating", "dedup")

del rename
