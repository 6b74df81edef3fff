"""One error hierarchy for the whole package.

Every error raised through the public API is a :class:`JournalError`; each names
what is wrong and where (a byte offset in the area, and in the file when the area
sits inside a larger one). No Kaitai exception, ``IndexError`` or ``struct.error``
escapes the public API.
"""

from __future__ import annotations


class JournalError(Exception):
    """Base class: something about a journal, at an optional byte offset.

    ``offset`` is relative to the start of the area; ``area_offset`` is where the
    area starts in its file (0 for a standalone journal), so ``file_offset`` is
    the absolute position.
    """

    def __init__(
        self,
        reason: str,
        offset: int | None = None,
        *,
        area_offset: int = 0,
        source: str | None = None,
    ) -> None:
        self.reason = reason
        self.offset = offset
        self.area_offset = area_offset
        self.source = source
        super().__init__(self.__str__())

    @property
    def file_offset(self) -> int | None:
        """Absolute byte offset in the file, or None when the error has no offset."""
        return None if self.offset is None else self.area_offset + self.offset

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.offset is not None:
            at = f"offset {self.offset:#x} ({self.offset})"
            if self.area_offset:
                at += f" of the area, file offset {self.file_offset:#x}"
            where.append(at)
        return f"{': '.join(where)}: {self.reason}" if where else self.reason


class CorruptJournalError(JournalError):
    """The area breaks a rule of FORMAT-DECISIONS.md D1-D5, D8 at ``offset``.

    ``rule`` is a stable code naming the rule, one of :data:`CORRUPTION_RULES`.
    """

    def __init__(self, rule: str, reason: str, offset: int | None = None, **kw: object) -> None:
        if rule not in CORRUPTION_RULES:
            raise ValueError(f"unknown corruption rule {rule!r}")
        self.rule = rule
        super().__init__(reason, offset, **kw)  # type: ignore[arg-type]


class JournalArgumentError(JournalError, ValueError):
    """A caller's argument is out of range (offset, length, digest, sector, type...)."""


class JournalFullError(JournalError):
    """No cluster is left for the entry: the journal is full and nothing was written (D6)."""


class JournalIOError(JournalError, OSError):
    """The file cannot be read or written as asked: missing, a directory, too short..."""


class JournalLockedError(JournalError):
    """Another writer holds the journal's file (an exclusive advisory lock)."""


CORRUPTION_RULES: dict[str, str] = {
    "area_length": "the area length is not a non-zero multiple of 4096 (D1)",
    "size_too_small": "an entry size byte of 0 or 1 (D3)",
    "regular_too_long": "a regular entry larger than 254 bytes, i.e. size byte 0xFF under a regular type (D3, D5)",
    "crosses_boundary": "a regular entry crossing the cluster boundary (D5)",
    "no_end": "a cluster whose last entry ends on the boundary with no END (D5)",
    "no_room_for_header": "fewer than 2 bytes left for the next entry's header (D5)",
    "end_misaligned": "an END that does not end exactly at the cluster boundary, size byte 0xFF included (D5, D6)",
    "hash_too_short": "a HASH entry whose payload is shorter than 17 bytes (D8)",
}
"""Every corruption class, by rule code, with the rule it breaks."""
