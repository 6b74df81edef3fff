"""One error hierarchy for the whole package.

Every error raised through the public API is a :class:`Error`: a
:class:`JournalError` (about a journal) or an :class:`ImageError` (about a disk
image); each names what is wrong and where (a byte offset in the area, and in
the file when the area sits inside a larger one). No Kaitai exception,
``IndexError`` or ``struct.error`` escapes the public API. A problem with a
stable code carries it as ``code``, one of :data:`qjournal.codes.CODES`, which
names the rule it comes from (the old attribute names ``rule``/``feature``
still read, with a ``DeprecationWarning``, for one release).

An :class:`ImageError` is not about a journal, so it is not a
:class:`JournalError` (0.2 made it one): code that caught image errors with
``except JournalError`` catches :class:`Error` (everything) or
:class:`ImageError` now. No warning can be given on an ``except`` clause, so the
change is made at once, and said in the docs (format.md section 9).
"""

from __future__ import annotations

import warnings
from string import Template
from typing import ClassVar

from qjournal.codes import CODES, family

OPTION_SPELLINGS: dict[str, tuple[str, str]] = {
    "force": ("force=True", "--force"),
    "offset": ("offset=", "--offset"),
    "length": ("length=", "--length"),
    "erase_foreign_data": ("erase_foreign_data=True", "--erase-foreign-data"),
    "num_clusters": ("num_clusters", "--clusters"),
    "size": ("length", "--size"),
    "target_offset": ("target_offset=", "--target-offset"),
    "target_length": ("target_length=", "--target-length"),
    "append_hash": ("append_hash", "--hash"),
    "block_size": ("block_size=", "--block-size"),
    "hash_name": ("hash_name=", "--hash-name"),
    "format_raw": ('format="raw"', "--format raw"),
    "unaligned_offset": ("unaligned_offset=True", "--unaligned-offset"),
}
"""How a message names an option: ``${force}`` reads ``force=True`` from the library, ``--force`` from the CLI."""


def spell(text: str, *, cli: bool = False) -> str:
    """``text`` with every ``${option}`` of :data:`OPTION_SPELLINGS` spelt for the library or the command line."""
    if "$" not in text:
        return text
    return Template(text).safe_substitute({k: v[1 if cli else 0] for k, v in OPTION_SPELLINGS.items()})


def at_offset(offset: int, area_offset: int = 0) -> str:
    """Where a byte is, as every message says it: ``offset 0x1a (26)``, and ``of the area, file offset 0x10001a``
    when the area does not start its file (``offset`` is an area offset)."""
    text = f"offset {offset:#x} ({offset})"
    if area_offset:
        text += f" of the area, file offset {area_offset + offset:#x}"
    return text


class Error(Exception):
    """Base class of every qjournal error: something about a journal or an image, at an optional byte offset.

    ``offset`` is relative to the start of the area; ``area_offset`` is where the
    area starts in its file (0 for a standalone journal), so ``file_offset`` is
    the absolute position. ``hint``, when set, is one more line on what to check
    or do. ``reason`` and ``hint`` name options as ``${name}`` (see
    :data:`OPTION_SPELLINGS`); :meth:`message` spells them for the library
    (``str(error)``) or for the command line.
    """

    def __init__(
        self,
        reason: str,
        offset: int | None = None,
        *,
        area_offset: int = 0,
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.offset = offset
        self.area_offset = area_offset
        self.source = source
        self.hint = hint
        super().__init__(self.__str__())

    @property
    def file_offset(self) -> int | None:
        """Absolute byte offset in the file, or None when the error has no offset."""
        return None if self.offset is None else self.area_offset + self.offset

    def message(self, *, cli: bool = False) -> str:
        """The one-line message: the file, the offset, the reason (options spelt for ``cli`` or not)."""
        where = []
        if self.source:
            where.append(self.source)
        if self.offset is not None:
            where.append(at_offset(self.offset, self.area_offset))
        reason = spell(self.reason, cli=cli)
        return f"{': '.join(where)}: {reason}" if where else reason

    def to_dict(self, *, cli: bool = False) -> dict[str, object]:
        """A JSON-ready dict: ``ofs`` (area offset), ``file_ofs``, ``reason`` (options spelt for ``cli`` or not)."""
        return {"ofs": self.offset, "file_ofs": self.file_offset, "reason": spell(self.reason, cli=cli)}

    def hint_text(self, *, cli: bool = False) -> str | None:
        """The hint line, options spelt for ``cli`` or not; None when there is none."""
        return None if self.hint is None else spell(self.hint, cli=cli)

    def __str__(self) -> str:
        hint = self.hint_text()
        return self.message() + (f"\nhint: {hint}" if hint else "")

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled by its attributes, whatever the subclass's ``__init__`` takes: an error crosses processes whole."""
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[Error], args: tuple[object, ...], state: dict[str, object]) -> Error:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class JournalError(Error):
    """Something about a journal (see :class:`Error`)."""


def deprecated_name(old: str, owner: object) -> None:
    """Warn that ``owner``'s attribute ``old`` is the deprecated name of ``code`` (kept one release)."""
    warnings.warn(f"{type(owner).__name__}.{old} is deprecated: read .code (the same value)", DeprecationWarning, stacklevel=3)


class CorruptJournalError(JournalError):
    """The area breaks a rule of docs/format.md (D1, D3, D5, D8, D11-D13) at ``offset``.

    ``code`` is a stable code naming the rule, one of :data:`CORRUPTION_RULES`
    (``rule``, its old name, is deprecated).
    """

    def __init__(self, rule: str, reason: str, offset: int | None = None, **kw: object) -> None:
        if rule not in CORRUPTION_RULES:
            raise ValueError(f"unknown corruption rule {rule!r}")
        self.code = rule
        super().__init__(reason, offset, **kw)  # type: ignore[arg-type]

    @property
    def rule(self) -> str:
        """Deprecated name of ``code``."""
        deprecated_name("rule", self)
        return self.code

    def to_dict(self, *, cli: bool = False) -> dict[str, object]:
        """A JSON-ready dict: ``code`` and ``rule`` (its old key, the same value, for one release) first, then
        :meth:`Error.to_dict`'s fields."""
        return {"code": self.code, "rule": self.code, **super().to_dict(cli=cli)}


class JournalArgumentError(JournalError, ValueError):
    """A caller's argument is out of range (offset, length, digest, sector, type...)."""


class NotAJournalError(JournalArgumentError):
    """A journal command was given a disk image (``format``: :attr:`qjournal.magic.Magic.format`), or asked to write in one."""

    def __init__(self, format: str, reason: str, offset: int | None = None, **kw: object) -> None:
        self.format = format
        super().__init__(reason, offset, **kw)  # type: ignore[arg-type]


class JournalFullError(JournalError):
    """No cluster is left for the entry: the journal is full and nothing was written (D6, docs/format.md D16).

    ``len_entry`` is the size of the entry that did not fit, ``max_len_entry``
    the largest that still fits (0 when none does), ``entry_index`` its index in
    the batch (from 0; None for a single append), ``num_clusters`` the
    journal's: what a caller needs to say how to go on (pack into a larger one).
    """

    def __init__(
        self, reason: str, offset: int | None = None, *, len_entry: int = 0, max_len_entry: int = 0,
        entry_index: int | None = None, num_clusters: int = 0, **kw: object,
    ) -> None:
        self.len_entry = len_entry
        self.max_len_entry = max_len_entry
        self.entry_index = entry_index
        self.num_clusters = num_clusters
        super().__init__(reason, offset, **kw)  # type: ignore[arg-type]


class JournalIOError(JournalError, OSError):
    """The file cannot be read or written as asked: missing, a directory, too short..."""


class JournalLockedError(JournalError):
    """Another writer holds the journal's file (an exclusive advisory lock)."""


class ForeignDataError(JournalError):
    """Bytes past the tail that no interrupted append of this writer leaves: someone else's data.

    Raised by an open for append before it writes anything. ``offset`` is the
    first such byte; ``ofs_last`` the last; ``num_bytes`` how many bytes other
    than 0xFF lie past the tail, in ``num_clusters`` clusters; ``ofs_tail`` the
    journal's tail.
    """

    def __init__(
        self, reason: str, offset: int, *, ofs_tail: int, ofs_last: int, num_bytes: int, num_clusters: int, **kw: object
    ) -> None:
        self.ofs_tail = ofs_tail
        self.ofs_last = ofs_last
        self.num_bytes = num_bytes
        self.num_clusters = num_clusters
        super().__init__(reason, offset, **kw)  # type: ignore[arg-type]


CORRUPTION_RULES: dict[str, str] = family("corruption")
"""Every corruption class, by rule code, with the rule it breaks (a view of :data:`qjournal.codes.CODES`)."""

UNSUPPORTED_FEATURES: dict[str, str] = family("unsupported")
"""Every refusal of :func:`qjournal.image.open_image`, by feature code (stable; a view of :data:`qjournal.codes.CODES`)."""

IMAGE_CORRUPTION_RULES: dict[str, str] = family("image_corruption")
"""Every corruption of an image that :mod:`qjournal.image` reports, by rule code (stable; a view of
:data:`qjournal.codes.CODES`)."""


class ImageError(Error):
    """A disk image that :mod:`qjournal.image` cannot map; ``offset`` is a byte offset in the image file.

    ``code`` is stable: one of :data:`UNSUPPORTED_FEATURES` for an
    :class:`UnsupportedImageError`, of :data:`IMAGE_CORRUPTION_RULES` for a
    :class:`CorruptImageError`.
    """

    codes: ClassVar[dict[str, str]] = {}

    def __init__(self, code: str, reason: str, offset: int | None = None, **kw: object) -> None:
        if code not in self.codes:
            raise ValueError(f"unknown {type(self).__name__} code {code!r}")
        assert code in CODES, code
        self.code = code
        super().__init__(reason, offset, **kw)  # type: ignore[arg-type]

    def to_dict(self, *, cli: bool = False) -> dict[str, object]:
        """A JSON-ready dict: ``code`` first, then :meth:`Error.to_dict`'s fields."""
        return {"code": self.code, **super().to_dict(cli=cli)}


class UnsupportedImageError(ImageError):
    """The image uses a feature under which its clusters cannot be mapped honestly; refused before any cluster is read.

    ``feature`` (= ``code``) is one of :data:`UNSUPPORTED_FEATURES`.
    """

    codes: ClassVar[dict[str, str]] = UNSUPPORTED_FEATURES

    @property
    def feature(self) -> str:
        """Deprecated name of ``code``."""
        deprecated_name("feature", self)
        return self.code


class CorruptImageError(ImageError):
    """The image breaks a rule of the qcow2 format where it was read; ``rule`` (= ``code``) is one of
    :data:`IMAGE_CORRUPTION_RULES`."""

    codes: ClassVar[dict[str, str]] = IMAGE_CORRUPTION_RULES

    @property
    def rule(self) -> str:
        """Deprecated name of ``code``."""
        deprecated_name("rule", self)
        return self.code
