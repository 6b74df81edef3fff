"""Deprecated old name of :mod:`qjournal.verifying` (one release): ``qjournal.verify(...)`` calls
:func:`qjournal.verifying.verify`; any other name read here warns and comes from :mod:`qjournal.verifying`."""

from qjournal._renamed import rename

rename(__name__, "qjournal.verifying", "verify")

del rename
