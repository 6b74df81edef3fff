"""Build the optional compiled stream, ``qjournal._cstream`` (msgpack's way); everything else is in pyproject.toml.

The extension is optional: without Cython, or without a working C compiler, the
build prints a one-line notice and installs the package with the pure-Python
stream (``qjournal.stream.IMPLEMENTATION`` says which one is in use). Set
``QJOURNAL_NO_EXTENSION=1`` to skip it on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PYX = Path("qjournal") / "_cstream.pyx"
C_SOURCE = PYX.with_suffix(".c")


def notice(why: str) -> None:
    """The one line a build without the extension prints."""
    print(f"qjournal: not building the compiled stream ({why}); the pure-Python stream will be used", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a failed compile leaves the pure stream in place."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # the platform has no compiler, or a broken one
            notice(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            notice(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}")


def extensions() -> list[Extension]:
    if os.environ.get("QJOURNAL_NO_EXTENSION", "") not in ("", "0"):
        notice("QJOURNAL_NO_EXTENSION is set")
        return []
    try:
        from Cython.Build import cythonize  # noqa: PLC0415 - optional at build time
    except ImportError:
        if (HERE / C_SOURCE).is_file():  # an sdist ships the generated C
            return [Extension("qjournal._cstream", [str(C_SOURCE)], optional=True)]
        notice("Cython is not installed")
        return []
    ext = Extension("qjournal._cstream", [str(PYX)], optional=True)
    return list(cythonize([ext], compiler_directives={"language_level": "3"}, quiet=True))


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
