"""A module renamed in 0.3, kept one release under its old name: the old name is also the package's function.

Strategy: ``qjournal.index`` and ``qjournal.verify`` were modules whose main
function had the module's name, so ``qjournal.index("disk.qcow2", "j")``
raised "'module' object is not callable". The modules are now
:mod:`qjournal.indexing` and :mod:`qjournal.verifying`; the old module names
stay importable for one release as :class:`RenamedModule` objects: calling one
calls the function (the new API, no warning), and reading any other name
through it (``qjournal.index.index``, ``from qjournal.verify import
VerifyReport``) gives the new module's attribute with a ``DeprecationWarning``.
Whichever of the two the package attribute holds (the lazy loader's or an
``import qjournal.index``), both spellings work.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any


class RenamedModule(types.ModuleType):
    """The old module: callable as its function, every other attribute the new module's, with a warning."""

    _new: str
    _function: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self._new), self._function)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        warnings.warn(
            f"{self.__name__}.{name} is deprecated: the module {self.__name__} is now {self._new} "
            f"({self.__name__} itself is the function {self._new}.{self._function})",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(self._new), name)


def rename(old: str, new: str, function: str) -> None:
    """Turn the module ``old`` (being imported) into a :class:`RenamedModule` for ``new`` and its ``function``."""
    module = sys.modules[old]
    module.__class__ = RenamedModule
    module._new = new  # type: ignore[attr-defined]
    module._function = function  # type: ignore[attr-defined]
