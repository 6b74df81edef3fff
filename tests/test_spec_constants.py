"""The spec's literal constants, stated here by hand and checked against the spec
text (as docs/format.md quotes it), the library's constants and the generated parser's enum."""

from __future__ import annotations

import re

from format_doc import spec_text

import qjournal.format as fmt
from qjournal.generated.qcow2_journal import Qcow2Journal

SPEC = spec_text()

TYPE_NONE, TYPE_END, TYPE_HASH = 0xFF, 1, 2
MAX_REGULAR, NONE_SIZE, CLUSTER = 254, 255, 4096


def test_the_spec_says_so() -> None:
    assert re.search(r"TYPE_NONE = 0xFF", SPEC)
    assert re.search(r"TYPE_END = 1\b", SPEC)
    assert re.search(r"TYPE_HASH = 2\b", SPEC)
    assert "size = 2 + n with size <= 254" in SPEC
    assert "none entries where size = 255" in SPEC
    assert "The journal cluster size is 4096 bytes." in SPEC
    assert re.search(r"mimimal size is two\s+bytes", SPEC)  # sic: the spec spells it so


def test_library_constants() -> None:
    assert (fmt.RESET_BYTE, fmt.MAX_LEN_REGULAR, fmt.MAX_LEN_END, fmt.LEN_CLUSTER) == (0xFF, 254, 255, 4096)
    assert fmt.MIN_LEN_ENTRY == fmt.LEN_HEADER == 2
    assert fmt.LEN_SHA256_DIGEST + fmt.LEN_HASH_SECTORS + fmt.LEN_HEADER == 0x32  # D8, D10


def test_generated_enum() -> None:
    assert int(Qcow2Journal.EntryType.none) == TYPE_NONE
    assert int(Qcow2Journal.EntryType.end) == TYPE_END
    assert int(Qcow2Journal.EntryType.hash) == TYPE_HASH
    assert fmt.EntryType is Qcow2Journal.EntryType


def test_place_is_d6() -> None:
    # an entry of s bytes stays at cluster offset o when o + s + 2 <= 4096, else it goes to the next cluster
    assert fmt.place(0, MAX_REGULAR) == 0
    assert fmt.place(CLUSTER - MAX_REGULAR - 2, MAX_REGULAR) == CLUSTER - MAX_REGULAR - 2
    assert fmt.place(CLUSTER - MAX_REGULAR - 1, MAX_REGULAR) == CLUSTER
    assert fmt.place(CLUSTER - 4, 2) == CLUSTER - 4 and fmt.place(CLUSTER - 3, 2) == CLUSTER
