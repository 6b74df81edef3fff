"""The entries replay yields and the writer appends, and their encoding and decoding, side by side.

Strategy (msgpack's Packer and Unpacker as mirror images): one module knows an
entry's bytes both ways. :func:`encode` turns a :class:`HashEntry` or
:class:`RawEntry` into the bytes the .ksy describes, checking every rule a
caller's value can break (the ``check_*`` functions, which the CLI calls too);
:func:`decode` turns an entry the generated parser read into the same types.
The vocabulary is the .ksy's: ``type_code`` is the type byte as a number,
``entry_type`` the same byte resolved to the enum (an unassigned type stays a
number, as the .ksy's ``entry_type`` instance does); ``len_entry``, ``digest``,
``physical_sector``, ``first_logical_sector``, ``body``. ``ofs`` is the entry's
byte offset in the area: set on what the reader yields and the writer returns,
None on an entry a caller builds to append.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, ClassVar, NamedTuple

from qjournal.errors import JournalArgumentError
from qjournal.format import (
    LEN_HASH_OVERHEAD,
    LEN_HASH_SECTORS,
    LEN_HEADER,
    MAX_LEN_BODY,
    MAX_LEN_DIGEST,
    MAX_LEN_REGULAR,
    MAX_SECTOR,
    MIN_LEN_HASH,
    TYPE_END,
    TYPE_HASH,
    TYPE_NONE,
    EntryType,
    entry_type_json,
)
from qjournal.generated.qcow2_journal import Qcow2Journal
from qjournal.wording import JSON_ENCODER


class _Hash(NamedTuple):
    digest: bytes
    physical_sector: int
    first_logical_sector: int
    ofs: int | None = None


class HashEntry(_Hash):
    """A HASH entry: digest, then the two sectors as u64 big-endian (D8).

    ``HashEntry(digest, physical_sector, first_logical_sector, ofs=None)``.
    """

    __slots__ = ()

    type_code: ClassVar[int] = TYPE_HASH
    """The type byte (D4), the same for every HASH entry."""
    entry_type: ClassVar[EntryType] = EntryType.hash
    """The type byte as the .ksy's enum."""

    @property
    def len_body(self) -> int:
        """Payload length n: the digest plus 16 bytes of sectors."""
        return len(self.digest) + LEN_HASH_SECTORS

    @property
    def len_entry(self) -> int:
        """Whole entry size, header included (the size byte, D3)."""
        return len(self.digest) + LEN_HASH_OVERHEAD

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes as lowercase hex), the schema of ``dump --output jsonl``.

        ``entry_type`` is the type's enum name, ``"hash"``, as for an unassigned
        type it is the number: the .ksy's ``entry_type``, written out.
        """
        return {
            "ofs": self.ofs,
            "entry_type": entry_type_json(self.entry_type),
            "len_entry": self.len_entry,
            "digest": self.digest.hex(),
            "physical_sector": self.physical_sector,
            "first_logical_sector": self.first_logical_sector,
        }


class _Raw(NamedTuple):
    type_code: int
    body: bytes
    ofs: int | None = None


class RawEntry(_Raw):
    """An entry of an unassigned type (0x00, 0x03-0xFE), its body kept raw (D4).

    ``RawEntry(type_code, body, ofs=None)``. Before 0.2 the first field was
    named ``entry_type``: ``RawEntry(entry_type=0x03, body=...)`` and the
    attribute ``entry_type`` still work (for an unassigned type the .ksy's
    ``entry_type`` is the number itself).
    """

    __slots__ = ()

    def __new__(
        cls, type_code: int | None = None, body: bytes = b"", ofs: int | None = None, *, entry_type: int | None = None
    ) -> RawEntry:
        if entry_type is not None:
            if type_code is not None:
                raise TypeError("RawEntry takes type_code or its old name entry_type, not both")
            type_code = entry_type
        if type_code is None:
            raise TypeError("RawEntry needs a type_code")
        return tuple.__new__(cls, (type_code, body, ofs))

    @property
    def entry_type(self) -> int:
        """The type byte as the .ksy's ``entry_type``: for an unassigned type, the number (the old field name)."""
        return self.type_code

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
            "entry_type": entry_type_json(self.type_code),
            "len_entry": self.len_entry,
            "body": self.body.hex(),
        }


Entry = HashEntry | RawEntry
"""Any entry replay yields or the writer appends."""

_new = tuple.__new__  # an entry without its class's Python-level __new__ (the hot paths build many)


# -- the rules a caller's value can break: one check each, named for the field -----------------


def check_digest(digest: object) -> bytes:
    """A HASH entry's digest as bytes: 1 to 236 bytes (D8)."""
    if type(digest) is not bytes:
        if not isinstance(digest, (bytes, bytearray, memoryview)):
            raise JournalArgumentError(f"digest must be bytes, not {type(digest).__name__}")
        digest = bytes(digest)
    n = len(digest)
    if not 0 < n <= MAX_LEN_DIGEST:
        if n == 0:
            raise JournalArgumentError("digest is empty: a HASH entry needs a digest of at least 1 byte (D8)")
        raise JournalArgumentError(
            f"digest of {n} bytes is too long: at most {MAX_LEN_DIGEST} bytes fit in a HASH entry "
            f"(a regular entry is at most 254 bytes, 18 of them header and sectors) (D3, D8)"
        )
    return digest


def check_sector(name: str, value: object) -> int:
    """A sector number (``physical_sector``, ``first_logical_sector``): an integer 0 to 2**64-1 (D8)."""
    if type(value) is int and 0 <= value <= MAX_SECTOR:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise JournalArgumentError(f"{name} must be an integer, not {value!r}")
    if not 0 <= value <= MAX_SECTOR:
        raise JournalArgumentError(f"{name} {value} is out of range: a sector is an unsigned 64-bit integer, 0 to 2**64-1")
    return int(value)


def check_type_code(type_code: object) -> int:
    """The type code of an entry appended raw: an unassigned type, 0x00 or 0x03-0xFE (D4)."""
    unassigned = "an entry appended raw has an unassigned type, 0x00 or 0x03-0xfe"
    if isinstance(type_code, bool) or not isinstance(type_code, int):
        raise JournalArgumentError(f"entry_type must be an integer type code, not {type_code!r}: {unassigned} (D4)")
    t = int(type_code)
    if t == TYPE_END:
        raise JournalArgumentError(
            f"entry_type 0x01 (END) cannot be appended: the writer writes an END itself when an entry does not fit; "
            f"{unassigned} (D4, D6)"
        )
    if t == TYPE_NONE:
        raise JournalArgumentError(
            f"entry_type 0xff (NONE) cannot be appended: it marks the unwritten bytes of a reset area; {unassigned} (D4)"
        )
    if t == TYPE_HASH:
        raise JournalArgumentError(
            f"entry_type 0x02 (HASH) is appended with ${{append_hash}}, its payload has a layout (D8); {unassigned} (D4)"
        )
    if not 0 <= t <= 0xFF:
        raise JournalArgumentError(f"entry_type {t} is out of range: a type code is one byte; {unassigned} (D4)")
    return t


def check_body(body: object) -> bytes:
    """The body of an entry appended raw: at most 252 bytes (D3)."""
    if type(body) is not bytes:
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise JournalArgumentError(f"body must be bytes, not {type(body).__name__}")
        body = bytes(body)
    if len(body) > MAX_LEN_BODY:
        raise JournalArgumentError(
            f"body of {len(body)} bytes is too long: at most {MAX_LEN_BODY} (a regular entry is at most 254 bytes) (D3)"
        )
    return body


# -- encoding (the writer's side) and decoding (the reader's side) ------------------------------------

_HASH_PACK: list[Any] = [None] * LEN_HASH_OVERHEAD + [
    struct.Struct(f">BB{n - LEN_HASH_OVERHEAD}sQQ").pack for n in range(LEN_HASH_OVERHEAD, MAX_LEN_REGULAR + 1)
]
"""``_HASH_PACK[len_entry](len_entry, TYPE_HASH, digest, physical_sector, first_logical_sector)``: a whole HASH entry."""


def encode_hash(digest: bytes, physical_sector: int, first_logical_sector: int) -> bytes:
    """The bytes of a HASH entry whose fields are already checked (D3, D8): size, type, digest, two u64be."""
    len_entry = len(digest) + LEN_HASH_OVERHEAD
    return _HASH_PACK[len_entry](len_entry, TYPE_HASH, digest, physical_sector, first_logical_sector)  # type: ignore[no-any-return]


def encode(entry: object) -> tuple[bytes, Entry]:
    """The bytes of one entry, header included, and the entry as the writer appends it (checked, no ``ofs``).

    Raises :class:`JournalArgumentError` naming the field and the rule it breaks.
    """
    if isinstance(entry, HashEntry):
        digest = check_digest(entry.digest)
        ps = check_sector("physical_sector", entry.physical_sector)
        fls = check_sector("first_logical_sector", entry.first_logical_sector)
        return encode_hash(digest, ps, fls), _new(HashEntry, (digest, ps, fls, None))
    if isinstance(entry, RawEntry):
        t = check_type_code(entry.type_code)
        body = check_body(entry.body)
        return bytes((len(body) + LEN_HEADER, t)) + body, _new(RawEntry, (t, body, None))
    raise JournalArgumentError(f"an entry to append must be a HashEntry or a RawEntry, not {type(entry).__name__}")


def check_entry(entry: Entry) -> Entry:
    """Check an entry against the writer's rules (D3, D4, D8) without writing it; return it as it would be appended."""
    return encode(entry)[1]


_HASH_UNPACK: list[Any] = [None] * LEN_HASH_OVERHEAD + [
    struct.Struct(f">BB{n - LEN_HASH_OVERHEAD}sQQ").unpack_from for n in range(LEN_HASH_OVERHEAD, MAX_LEN_REGULAR + 1)
]
"""``_HASH_UNPACK[len_entry](data, i)``: the mirror of ``_HASH_PACK``, (len_entry, type_code, digest, two sectors)."""


def decode_hash(data: bytes, i: int, ofs: int) -> HashEntry | None:
    """The HASH entry whose bytes start at ``data[i]`` (area offset ``ofs``): :func:`encode_hash`'s mirror (D3, D8).

    None when they are not a whole HASH entry there (the type byte, a size of
    19 to 254, room for it). For reading back an entry whose offset replay found
    (the live view keeps offsets); replay itself reads through the generated parser.
    """
    if i + LEN_HEADER > len(data) or data[i + 1] != TYPE_HASH:
        return None
    len_entry = data[i]
    if not MIN_LEN_HASH <= len_entry <= MAX_LEN_REGULAR or i + len_entry > len(data):
        return None
    _, _, digest, physical_sector, first_logical_sector = _HASH_UNPACK[len_entry](data, i)
    entry: HashEntry = _new(HashEntry, (digest, physical_sector, first_logical_sector, ofs))
    return entry


def decode(e: Qcow2Journal.Entry, ofs: int) -> Entry:
    """The entry for a regular entry the generated parser read at area offset ``ofs``: HashEntry or RawEntry."""
    if e.type_code == TYPE_HASH:
        return _new(HashEntry, (e.digest, e.physical_sector, e.first_logical_sector, ofs))
    return _new(RawEntry, (e.type_code, e.body, ofs))


# -- the JSON-lines schema ------------------------------------------------------------------------------------


def entry_from_dict(d: dict[str, Any]) -> Entry:
    """Build an entry from :meth:`HashEntry.to_dict` / :meth:`RawEntry.to_dict` output.

    ``ofs`` and ``len_entry`` are ignored (the writer decides where an entry goes);
    every other field is checked for its type, not its range (the writer checks that).
    """
    if not isinstance(d, dict):
        raise JournalArgumentError(f"an entry must be a JSON object, not {type(d).__name__}")
    if "entry_type" not in d:
        raise JournalArgumentError("entry is missing the field 'entry_type' (\"hash\", or an integer type code)")
    kind = d["entry_type"]
    if kind == "hash" or (type(kind) is int and kind == TYPE_HASH):
        fields = _HASH_FIELDS
    elif type(kind) is int:
        fields = _RAW_FIELDS
    else:
        raise JournalArgumentError(f'entry_type must be "hash" or an integer type code, not {kind!r}')
    unknown = sorted(set(d) - fields - _IGNORED_FIELDS)
    if unknown:
        raise JournalArgumentError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
            f"an entry of this type has {', '.join(sorted(fields | _IGNORED_FIELDS))}"
        )
    missing = sorted(fields - set(d))
    if missing:
        raise JournalArgumentError(f"entry is missing the field {missing[0]!r}")
    if fields is _HASH_FIELDS:
        return HashEntry(_hex(d, "digest"), _int(d, "physical_sector"), _int(d, "first_logical_sector"))
    return RawEntry(kind, _hex(d, "body"))


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
"""Hex as ``bytes.hex()`` writes it (either case): ``bytes.fromhex`` alone would also take spaces."""

_IGNORED_FIELDS = frozenset({"ofs", "len_entry"})
"""Fields of the schema that the writer decides, not the caller: read and ignored."""
_HASH_FIELDS = frozenset({"entry_type", "digest", "physical_sector", "first_logical_sector"})
_RAW_FIELDS = frozenset({"entry_type", "body"})


def json_line(entry: Any) -> str:
    """The JSON line of an entry (no newline): byte for byte ``wording.JSON_ENCODER.encode(entry.to_dict())``.

    The schema is fixed, so a replayed :class:`HashEntry` or :class:`RawEntry`
    (plain ``int`` fields, ``bytes`` digest or body, ``ofs`` an ``int`` or
    None) is formatted directly, several times faster than building the dict
    and encoding it; anything else (a subclass, a bool or an ``IntEnum`` in a
    field, any object with ``to_dict()``) goes through the encoder itself, so
    the bytes are the same whatever the input.
    """
    t = type(entry)
    if t is HashEntry:
        digest, ps, fls, ofs = entry
        if type(digest) is bytes and type(ps) is int and type(fls) is int and (type(ofs) is int or ofs is None):
            return (
                f'{{"ofs": {"null" if ofs is None else ofs}, "entry_type": "hash", "len_entry": {len(digest) + LEN_HASH_OVERHEAD}, '
                f'"digest": "{digest.hex()}", "physical_sector": {ps}, "first_logical_sector": {fls}}}'
            )
    elif t is RawEntry:
        code, body, ofs = entry
        if type(code) is int and type(body) is bytes and (type(ofs) is int or ofs is None):
            return (
                f'{{"ofs": {"null" if ofs is None else ofs}, "entry_type": {code}, "len_entry": {len(body) + LEN_HEADER}, '
                f'"body": "{body.hex()}"}}'
            )
    return JSON_ENCODER.encode(entry.to_dict())


def json_join(entries: Iterable[Any], sep: str = "\n") -> str:
    """``sep.join(json_line(e) for e in entries)``, with the common case inlined: one string for many lines.

    ``dump --output jsonl`` writes ``json_join(entries) + "\n"`` per batch of
    entries (a cluster's, say); ``dump --output json`` its entry list with
    ``sep=",\n"``. Byte for byte what :func:`json_line` gives for each entry.
    """
    out: list[str] = []
    append = out.append
    hash_type, raw_type = HashEntry, RawEntry
    for e in entries:
        t = type(e)
        if t is hash_type:
            digest, ps, fls, ofs = e
            if type(ps) is int and type(fls) is int and type(ofs) is int and type(digest) is bytes:
                append(
                    f'{{"ofs": {ofs}, "entry_type": "hash", "len_entry": {len(digest) + LEN_HASH_OVERHEAD}, '
                    f'"digest": "{digest.hex()}", "physical_sector": {ps}, "first_logical_sector": {fls}}}'
                )
                continue
        elif t is raw_type:
            code, body, ofs = e
            if type(code) is int and type(body) is bytes and type(ofs) is int:
                append(f'{{"ofs": {ofs}, "entry_type": {code}, "len_entry": {len(body) + LEN_HEADER}, "body": "{body.hex()}"}}')
                continue
        append(json_line(e))
    return sep.join(out)



def json_join_parsed(entries: list[Any], base: int, sep: str = "\n") -> tuple[str, int]:
    """:func:`json_join` of the regular entries of a cluster as the generated parser read it, at area offset ``base``.

    Byte for byte ``json_join([decode(e, ofs) ...])`` (END and NONE skipped),
    without building the entries first: ``dump --output jsonl``'s hot loop.
    Returns the text and how many entries it holds.
    """
    out: list[str] = []
    append = out.append
    ofs = base
    for e in entries:
        code = e.type_code
        if code == TYPE_HASH:
            digest = e.digest
            append(
                f'{{"ofs": {ofs}, "entry_type": "hash", "len_entry": {len(digest) + LEN_HASH_OVERHEAD}, '
                f'"digest": "{digest.hex()}", "physical_sector": {e.physical_sector}, '
                f'"first_logical_sector": {e.first_logical_sector}}}'
            )
        elif code not in (TYPE_END, TYPE_NONE):
            body = e.body
            append(f'{{"ofs": {ofs}, "entry_type": {code}, "len_entry": {len(body) + LEN_HEADER}, "body": "{body.hex()}"}}')
        ofs += e.len_entry
    return sep.join(out), len(out)

def _hex(d: dict[str, Any], key: str) -> bytes:
    value = d[key]
    if not isinstance(value, str):
        raise JournalArgumentError(f"{key} must be a hex string, not {type(value).__name__}")
    if not _HEX.fullmatch(value):
        raise JournalArgumentError(f"{key} is not valid hex (pairs of 0-9, a-f, nothing between them): {value[:40]!r}")
    return bytes.fromhex(value)


def _int(d: dict[str, Any], key: str) -> int:
    value = d[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise JournalArgumentError(f"{key} must be an integer, not {value!r}")
    return value


MAX_LEN_JSON_LINE = 4096
"""The longest JSON line read (bytes, newline included): the longest entry's line is under 700 bytes."""

MARKER_FIELDS: dict[str, frozenset[str]] = {
    "end": frozenset({"ofs", "entry_type", "len_entry"}),
    "none": frozenset({"ofs", "entry_type", "len_entry", "is_torn"}),
}
"""The END and NONE records of ``dump --all`` (dumping.Marker.to_dict): read and skipped, the writer places its own."""

JSON_LINES_SCHEMA = "append reads JSON lines, one entry per line, as 'qjournal dump --output jsonl' writes them"


def read_json_lines(stream: BinaryIO, max_len_line: int = MAX_LEN_JSON_LINE) -> Iterator[tuple[int, Entry]]:
    """Each entry of a JSON-lines stream with its line number, judged as it is read.

    A line is refused (:class:`JournalArgumentError`, reason ``line N: ...``)
    when it is longer than ``max_len_line`` (found without reading the rest of
    it), not UTF-8, not one JSON object, repeats a key, holds a number JSON
    cannot round-trip (NaN, Infinity), breaks the schema
    (:func:`entry_from_dict`) or an entry rule (:func:`check_entry`). Blank
    lines and the END/NONE records of ``dump --all`` (with exactly their
    fields) are skipped.
    """
    number = 0
    while True:
        raw = stream.readline(max_len_line + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_len_line:
            raise JournalArgumentError(
                f"line {number}: longer than {max_len_line} bytes, which no entry's line is: {JSON_LINES_SCHEMA}"
            )
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JournalArgumentError(f"line {number}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            d = _json_object(line)
            if isinstance(d, dict) and d.get("entry_type") in MARKER_FIELDS:
                extra = sorted(set(d) - MARKER_FIELDS[d["entry_type"]])
                if extra:
                    record = "an END" if d["entry_type"] == "end" else "a NONE"
                    raise JournalArgumentError(
                        f"{record} record of 'dump --all' has no field {', '.join(map(repr, extra))}: "
                        "it would be skipped, and what it carries lost"
                    )
                continue
            entry = entry_from_dict(d)
            check_entry(entry)
        except RecursionError:
            raise JournalArgumentError(f"line {number}: JSON nested too deeply to be an entry") from None
        except (ValueError, JournalArgumentError) as exc:  # JSONDecodeError is a ValueError
            reason = exc.reason if isinstance(exc, JournalArgumentError) else str(exc)
            raise JournalArgumentError(f"line {number}: {reason}") from None
        yield number, entry


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {twice!r} appears twice in one object, and JSON does not say which one counts")
    return d


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an entry can hold")


def _json_object(line: str) -> Any:
    """One line of JSON; a line that is not a whole JSON value says what is read instead."""
    try:
        return json.loads(line.rstrip("\r\n"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        if line.lstrip().startswith("{") and '"entries": [' in line:
            raise ValueError(f"this is the start of 'qjournal dump --output json', a single document: {JSON_LINES_SCHEMA}") from None
        raise ValueError(f"not a JSON value ({exc.msg} at column {exc.colno}): {JSON_LINES_SCHEMA}") from None
