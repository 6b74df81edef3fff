"""Files the package ships beside its code: the Kaitai Struct definitions, for the Web IDE and other compilers."""

from __future__ import annotations

from pathlib import Path

_FORMATS = Path(__file__).resolve().parent / "formats"


def ksy_path(name: str = "qcow2_journal") -> Path:
    """The path of the shipped ``.ksy`` named ``name`` (``qcow2_journal``; ``qcow2`` too once it ships).

    Load it into the Kaitai Web IDE (https://ide.kaitai.io/) or give it to
    ``kaitai-struct-compiler`` for another language. Raises ``FileNotFoundError``
    for a name the package does not ship.
    """
    path = _FORMATS / f"{name}.ksy"
    if not path.is_file():
        shipped = sorted(p.stem for p in _FORMATS.glob("*.ksy"))
        raise FileNotFoundError(f"no {name}.ksy in the package; it ships: {', '.join(shipped) or 'none'}")
    return path


def format_reference_path() -> Path:
    """The path of ``docs/format.md``, the format reference whose rules (D1, D2, ...) messages and docs cite."""
    return Path(__file__).resolve().parent / "docs" / "format.md"
