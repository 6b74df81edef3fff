"""The JSON-lines fast path: byte for byte the encoder's output, hostile values included (issue 13).

``qjournal.entries.json_line`` formats an entry's line directly, and
``json_join`` many at once; the reference is what ``dump --output jsonl``
wrote before: ``json.JSONEncoder(separators=(", ", ": ")).encode(entry.to_dict())``.
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import qjournal
from qjournal import Entry, HashEntry, RawEntry
from qjournal.entries import json_join, json_line

VECTORS = Path(__file__).resolve().parent / "vectors"
ENCODER = json.JSONEncoder(separators=(", ", ": "))


def reference(entry: object) -> str:
    return ENCODER.encode(entry.to_dict())  # type: ignore[attr-defined]


def assert_identical(entries: Sequence[object]) -> None:
    want = [reference(e) for e in entries]
    assert [json_line(e) for e in entries] == want
    for sep in ("\n", ",\n", ""):
        assert json_join(entries, sep) == sep.join(want)
    assert json_join(iter(entries)) == "\n".join(want)


class Code(enum.IntEnum):
    three = 3


class Sector(int):
    pass


SECTORS = [0, 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1]


def test_every_golden_vector() -> None:
    entries = []
    for path in sorted(VECTORS.glob("*.bin")):
        with contextlib.suppress(qjournal.JournalError):
            entries += list(qjournal.read(path.read_bytes()))
    assert len(entries) > 100
    assert_identical(entries)


def test_every_digest_length_big_sectors_and_offsets() -> None:
    entries = [HashEntry(bytes(range(n % 256)) * 1 if n < 256 else b"", ps, fls, ofs)
               for n in range(1, 237) for ps, fls, ofs in ((SECTORS[n % 7], SECTORS[(n * 3) % 7], n * 4096 + n),)]
    entries += [HashEntry(b"\xff" * 32, 2**64 - 1, 2**64 - 1, 2**40), HashEntry(b"\x00", 0, 0, 0)]
    assert_identical(entries)


def test_raw_entries_of_every_type_and_empty_bodies() -> None:
    entries = [RawEntry(code, bytes([code]) * (code % 253), code * 7) for code in range(256)]
    entries += [RawEntry(0x03, b"", 0), RawEntry(0xFE, b"\xff" * 252, 1 << 33)]
    assert_identical(entries)


def test_hostile_values_fall_back_to_the_encoder() -> None:
    """What a caller can put in an entry that replay never yields: the encoder's answer, whatever it is."""
    entries = [
        HashEntry(b"\x01" * 32, 1, 2),  # ofs None: null
        RawEntry(0x05, b"ab"),
        HashEntry(b"\x01" * 32, True, False, 3),  # bools: true/false
        HashEntry(b"\x01", Sector(5), 6, Sector(7)),
        RawEntry(Code.three, b"", 4),
        HashEntry(bytearray(b"\x02\x03"), 1, 2, 3),  # type: ignore[arg-type]  # any bytes-like, on purpose
        HashEntry(memoryview(b"\x04"), 1, 2, 3),  # type: ignore[arg-type]  # (the same)
        RawEntry(0x07, bytearray(b"\x00\xff"), 9),  # type: ignore[arg-type]  # (the same)
        HashEntry(b"\x01", 2**80, -1, -5),  # out of range: no check here, the encoder's digits
        HashEntry(b"\x01", 1.5, float("inf"), 0),  # type: ignore[arg-type]
    ]
    assert_identical(entries)


def test_other_objects_with_to_dict_go_through_the_encoder() -> None:
    class Marker:
        def to_dict(self) -> dict[str, Any]:
            return {"ofs": 4094, "entry_type": "end", "len_entry": 2, "note": "é\n\""}

    class MyHash(HashEntry):
        def to_dict(self) -> dict[str, Any]:
            return {"mine": True}

    assert_identical([Marker(), MyHash(b"\x01", 1, 2, 3), HashEntry(b"\x09" * 20, 1, 2, 3)])


def test_an_object_without_to_dict_fails_as_before() -> None:
    with pytest.raises(AttributeError):
        json_line(object())
    with pytest.raises(AttributeError):
        json_join([object()])


@given(st.lists(st.one_of(
    st.builds(HashEntry, st.binary(min_size=1, max_size=236), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
              st.one_of(st.none(), st.integers(0, 2**40))),
    st.builds(RawEntry, st.integers(0, 255), st.binary(max_size=252), st.one_of(st.none(), st.integers(0, 2**40))),
), max_size=50))
def test_random_entries(entries: list[Entry]) -> None:
    assert_identical(entries)
