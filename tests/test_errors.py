"""The error hierarchy crosses processes whole: every class pickles with all its fields (worker processes send them)."""

from __future__ import annotations

import pickle
from typing import TypedDict

import pytest

from qjournal import errors


class Where(TypedDict):
    """The keywords every error takes: where it is and what to do."""

    area_offset: int
    source: str
    hint: str


KW: Where = {"area_offset": 0x200, "source": "j.bin", "hint": "check the ${offset}"}
ERRORS = [
    errors.JournalError("a reason", 5, **KW),
    errors.CorruptJournalError("end_misaligned", "END of size 5", 0x1004, **KW),
    errors.JournalArgumentError("offset must be >= 0", None),
    errors.NotAJournalError("qcow2", "a qcow2 image, not a journal", source="d.qcow2", hint="give the journal"),
    errors.JournalFullError("journal full", 0xFD0, len_entry=50, max_len_entry=44, entry_index=3, num_clusters=2, **KW),
    errors.JournalIOError("cannot read: Input/output error", 0x2000, **KW),
    errors.JournalLockedError("locked by another writer", source="j.bin"),
    errors.ForeignDataError("bytes past the tail", 0x1800, ofs_tail=0x40, ofs_last=0x1900, num_bytes=9, num_clusters=1),
    errors.UnsupportedImageError("encryption", "encrypted clusters", 72, source="d.qcow2"),
    errors.CorruptImageError("l2_entry", "an unaligned L2 entry", 0x30008, source="d.qcow2"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_fields(error: errors.JournalError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert vars(back) == vars(error)
    assert (str(back), back.args, back.message(cli=True), back.file_offset) == (
        str(error), error.args, error.message(cli=True), error.file_offset,
    )


def test_the_list_covers_every_error_class() -> None:
    classes = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.Error)}
    classes -= {errors.Error, errors.ImageError}  # abstract: only their subclasses are raised
    assert classes == {type(e) for e in ERRORS}


def test_one_offset_formatter_for_messages_and_the_cli() -> None:
    assert errors.at_offset(0x1A) == "offset 0x1a (26)"
    assert errors.at_offset(0x1A, 0x10000) == "offset 0x1a (26) of the area, file offset 0x1001a"
    e = errors.CorruptJournalError("size_too_small", "size byte 0", 0x1A, area_offset=0x10000, source="img")
    assert e.message() == f"img: {errors.at_offset(0x1A, 0x10000)}: size byte 0"


def test_an_error_as_json_names_its_rule_offsets_and_reason() -> None:
    e = errors.CorruptJournalError("end_misaligned", "END of size 5 (${force})", 0x1004, area_offset=0x200)
    assert e.to_dict() == {"code": "end_misaligned", "rule": "end_misaligned", "ofs": 0x1004, "file_ofs": 0x1204, "reason": "END of size 5 (force=True)"}
    assert e.to_dict(cli=True)["reason"] == "END of size 5 (--force)"
    assert list(e.to_dict()) == ["code", "rule", "ofs", "file_ofs", "reason"]
    assert errors.JournalIOError("cannot read").to_dict() == {"ofs": None, "file_ofs": None, "reason": "cannot read"}
