"""Deprecated old name of :mod:`qjournal.indexing` (one release): ``qjournal.index(...)`` calls
:func:`qjournal.indexing.index`; any other name read here warns and comes from :mod:`qjournal.indexing`."""

from qjournal._renamed import rename

rename(__name__, "qjournal.indexing", "index")

del rename
