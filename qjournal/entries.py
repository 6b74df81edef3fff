"""The entries replay yields and the writer appends: one type per kind of entry.

A :class:`HashEntry` is one deduplication record (D8); a :class:`RawEntry` is an
entry of an unassigned type kept as raw bytes (D4). Field names are the .ksy's
(``digest``, ``physical_sector``, ``first_logical_sector``, ``body``,
``entry_type``, ``len_entry``). ``ofs`` is the entry's byte offset in the area:
set on what the reader yields and the writer returns, None on an entry a caller
builds to append.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

from qjournal.errors import JournalArgumentError
from qjournal.format import LEN_HASH_SECTORS, LEN_HEADER, EntryType


class HashEntry(NamedTuple):
    """A HASH entry: digest, then the two sectors as u64 big-endian (D8)."""

    digest: bytes
    physical_sector: int
    first_logical_sector: int
    ofs: int | None = None

    entry_type = EntryType.hash

    @property
    def len_body(self) -> int:
        """Payload length n: the digest plus 16 bytes of sectors."""
        return len(self.digest) + LEN_HASH_SECTORS

    @property
    def len_entry(self) -> int:
        """Whole entry size, header included (the size byte, D3)."""
        return LEN_HEADER + len(self.digest) + LEN_HASH_SECTORS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes as lowercase hex), the schema of ``dump --output jsonl``."""
        return {
            "ofs": self.ofs,
            "entry_type": "hash",
            "len_entry": self.len_entry,
            "digest": self.digest.hex(),
            "physical_sector": self.physical_sector,
            "first_logical_sector": self.first_logical_sector,
        }


class RawEntry(NamedTuple):
    """An entry of an unassigned type (0x00, 0x03-0xFE), its body kept raw (D4)."""

    entry_type: int
    body: bytes
    ofs: int | None = None

    @property
    def len_body(self) -> int:
        """Payload length n."""
        return len(self.body)

    @property
    def len_entry(self) -> int:
        """Whole entry size, header included (the size byte, D3)."""
        return LEN_HEADER + len(self.body)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes as lowercase hex), the schema of ``dump --output jsonl``."""
        return {
            "ofs": self.ofs,
            "entry_type": self.entry_type,
            "len_entry": self.len_entry,
            "body": self.body.hex(),
        }


Entry = Union[HashEntry, RawEntry]
"""Any entry replay yields or the writer appends."""


def entry_from_dict(d: dict[str, Any]) -> Entry:
    """Build an entry from :meth:`HashEntry.to_dict` / :meth:`RawEntry.to_dict` output.

    ``ofs`` and ``len_entry`` are ignored (the writer decides where an entry goes);
    every other field is checked for its type, not its range (the writer checks that).
    """
    if not isinstance(d, dict):
        raise JournalArgumentError(f"an entry must be a JSON object, not {type(d).__name__}")
    kind = d.get("entry_type")
    try:
        if kind in ("hash", int(EntryType.hash)):
            return HashEntry(
                _hex(d, "digest"), _int(d, "physical_sector"), _int(d, "first_logical_sector")
            )
        if isinstance(kind, int) and not isinstance(kind, bool):
            return RawEntry(kind, _hex(d, "body"))
    except KeyError as exc:
        raise JournalArgumentError(f"entry is missing the field {exc.args[0]!r}") from None
    raise JournalArgumentError(f'entry_type must be "hash" or an integer type code, not {kind!r}')


def _hex(d: dict[str, Any], key: str) -> bytes:
    value = d[key]
    if not isinstance(value, str):
        raise JournalArgumentError(f"{key} must be a hex string, not {type(value).__name__}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise JournalArgumentError(f"{key} is not valid hex: {value[:40]!r}") from None


def _int(d: dict[str, Any], key: str) -> int:
    value = d[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise JournalArgumentError(f"{key} must be an integer, not {value!r}")
    return value
