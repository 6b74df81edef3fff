"""Reading JSON lines (entries.read_json_lines): what dump writes reads back, and nothing loose is taken."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qjournal import EntryType, HashEntry, JournalArgumentError, RawEntry
from qjournal.dumping import Marker
from qjournal.entries import MAX_LEN_JSON_LINE, json_line, read_json_lines

DIGEST = bytes(range(32))


def read(text: str | bytes) -> list[tuple[int, object]]:
    data = text.encode() if isinstance(text, str) else text
    return list(read_json_lines(io.BytesIO(data)))


def refused(text: str | bytes) -> str:
    with pytest.raises(JournalArgumentError) as err:
        read(text)
    return err.value.reason


@given(
    st.lists(
        st.one_of(
            st.builds(HashEntry, st.binary(min_size=1, max_size=64), st.integers(0, 2**40), st.integers(0, 2**40), st.none()),
            st.builds(RawEntry, st.sampled_from([0, *range(3, 255)]), st.binary(max_size=252), st.none()),
        ),
        max_size=20,
    )
)
def test_what_dump_writes_reads_back(entries: list[HashEntry | RawEntry]) -> None:
    text = "".join(json_line(e) + "\n" for e in entries)
    assert [e for _, e in read(text)] == entries


def test_line_numbers_count_blank_lines_and_markers() -> None:
    end = Marker(EntryType.end, 2, 40).to_dict()
    none = Marker(EntryType.none, 255, 42).to_dict()
    text = "\n" + json.dumps(end) + "\n" + json.dumps(none) + "\n" + json_line(HashEntry(DIGEST, 1, 2)) + "\n"
    assert read(text) == [(4, HashEntry(DIGEST, 1, 2))]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"entry_type": "hash", "digest": "00", "digest": "01", "physical_sector": 1, "first_logical_sector": 2}',
         "the key 'digest' appears twice"),
        ('{"entry_type": "hash", "digest": "00 01", "physical_sector": 1, "first_logical_sector": 2}', "not valid hex"),
        ('{"entry_type": "hash", "digest": "0x01", "physical_sector": 1, "first_logical_sector": 2}', "not valid hex"),
        ('{"entry_type": 2.0, "digest": "0001", "physical_sector": 1, "first_logical_sector": 2}',
         'entry_type must be "hash" or an integer type code, not 2.0'),
        ('{"entry_type": true, "body": ""}', 'entry_type must be "hash" or an integer type code, not True'),
        ('{"entry_type": "none", "ofs": 4, "len_entry": 255, "is_torn": false, "digest": "00"}',
         "a NONE record of 'dump --all' has no field 'digest'"),
        ('{"entry_type": "end", "ofs": 4, "len_entry": 2, "body": "00"}', "an END record of 'dump --all' has no field 'body'"),
        ('{"entry_type": "hash", "digest": "00", "physical_sector": NaN, "first_logical_sector": 2}',
         "NaN is not a number an entry can hold"),
        ('{"entry_type": "hash", "digest": "00", "physical_sector": 1.0, "first_logical_sector": 2}',
         "physical_sector must be an integer, not 1.0"),
    ],
)
def test_loose_json_is_refused_naming_the_line(line: str, why: str) -> None:
    reason = refused(json_line(HashEntry(DIGEST, 1, 2)) + "\n" + line + "\n")
    assert reason.startswith("line 2: ") and why in reason


def test_a_long_line_is_refused_without_reading_it_whole() -> None:
    class Endless(io.RawIOBase):
        """An endless line: a reader that reads it whole never returns."""

        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            n = len(b)
            b[:n] = b"x" * n
            self.served += n
            return n

    raw = Endless()
    with pytest.raises(JournalArgumentError) as err:
        list(read_json_lines(io.BufferedReader(raw)))  # type: ignore[type-var]  # typeshed wants name and mode too; reads use readinto
    assert err.value.reason.startswith(f"line 1: longer than {MAX_LEN_JSON_LINE} bytes")
    assert raw.served < 64 * 1024


def test_the_longest_entry_line_fits() -> None:
    longest = RawEntry(254, b"\xff" * 252)
    hash_longest = HashEntry(b"\xff" * 64, 2**56 - 1, 2**56 - 1)
    for e in (longest, hash_longest):
        assert len(json_line(e)) + 1 < MAX_LEN_JSON_LINE
        assert read(json_line(e) + "\n") == [(1, e)]


def test_errors_stop_at_the_bad_line() -> None:
    seen: list[int] = []
    text = json_line(HashEntry(DIGEST, 1, 2)) + "\nnot json\n" + json_line(HashEntry(DIGEST, 3, 4)) + "\n"
    with pytest.raises(JournalArgumentError) as err:
        for number, _ in read_json_lines(io.BytesIO(text.encode())):
            seen.append(number)
    assert seen == [1]
    assert err.value.reason.startswith("line 2: not a JSON value")


def test_not_utf8() -> None:
    assert refused(b'{"entry_type": "\xff"}\n') == "line 1: not UTF-8 text (invalid start byte at byte 16)"
