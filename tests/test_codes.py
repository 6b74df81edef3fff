"""One vocabulary: every stable code in one registry with the rule it comes from, and rule citations that do not drift.

docs/format.md section 9 mirrors :data:`qjournal.CODES`; every "Dnn" the
package cites is a rule of docs/format.md (with its title where the citation
names one); the messages of the checks cite the rules the registry gives their
codes; the old attribute names and JSON keys still work, with a warning.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from format_doc import TEXT

import qjournal
from qjournal.checking import dirty_tail_problem, torn_write_problem, unassigned_problem
from qjournal.cluster import classify
from qjournal.codes import CODES, family
from qjournal.dedup_source import UnsupportedSourceError
from qjournal.format import EntryType, entry_type_json
from qjournal.qemulock import IMAGE_LOCK_CODES, ImageInUseError
from qjournal.verifying import Mismatch

PACKAGE = Path(qjournal.__file__).resolve().parent
CODES_TABLE_ROWS = re.findall(r"^\| `\w+` \| \w+ \| D", TEXT[TEXT.index("## 9. Codes"):], re.M)
RULE_TITLES = {int(n): title.strip() for n, title in re.findall(r"^###\s+D(\d+)\s+(.+)$", TEXT, re.M)}
CITED = re.compile(r"\bD(\d+)(?:\s*-\s*D(\d+))?(?:\s+(?:\(([A-Z][^)]*)\)|\"([^\"]+)\"))?")


def rules_of(text: str) -> set[int]:
    """The rule numbers ``text`` cites."""
    return {int(n) for n in re.findall(r"\bD(\d+)\b", text)}


def test_the_rules_of_the_document_are_numbered_once() -> None:
    numbers = re.findall(r"^###\s+D(\d+)\b", TEXT, re.M)
    assert len(numbers) == len(set(numbers)) and len(numbers) >= 28


def test_every_code_has_a_rule_and_every_rule_it_names_exists() -> None:
    assert len(CODES) == len(CODES_TABLE_ROWS) == 43, "a code is defined twice, or one is missing"
    for c in CODES.values():
        assert c.rules, f"{c.code} names no rule"
        assert set(c.rules) <= set(RULE_TITLES), f"{c.code} names a rule docs/format.md does not have: {c.rules}"
        assert c.meaning and "(D" not in c.meaning, c.code


def test_section_9_of_the_format_reference_mirrors_the_registry() -> None:
    section = TEXT[TEXT.index("## 9. Codes"):]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([D0-9, ]+) \| (.+) \|$", section, re.M)
    assert [(code, fam, rules_of(r), meaning) for code, fam, r, meaning in rows] == [
        (c.code, c.family, set(c.rules), c.meaning) for c in CODES.values()
    ]


def test_every_rule_cited_in_the_package_exists_with_the_title_it_gives() -> None:
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if "generated" not in p.parts] + sorted(PACKAGE.glob("*.pyx"))
    seen = 0
    for path in files:
        for m in CITED.finditer(path.read_text()):
            first, last, title = int(m.group(1)), m.group(2), m.group(3) or m.group(4)
            for n in (first, *([int(last)] if last else [])):
                assert n in RULE_TITLES, f"{path.name}: {m.group(0)!r} cites D{n}, which docs/format.md does not have"
            if title and title.split()[0].istitle() and not re.match(r"erratum|rule", title, re.I):
                assert RULE_TITLES[first].lower().startswith(title.lower()), (path.name, m.group(0), RULE_TITLES[first])
            seen += 1
    assert seen > 200, "the citations were not found"


def test_a_citation_with_a_wrong_number_or_title_is_caught() -> None:
    m = CITED.search('see D14 "A torn write and its dirty tail"')
    assert m and RULE_TITLES[int(m.group(1))].startswith(m.group(4))
    m = CITED.search('see D5 "A torn write"')
    assert m and not RULE_TITLES[int(m.group(1))].startswith(m.group(4))
    assert 99 not in RULE_TITLES


def test_the_old_registries_are_views_of_the_one() -> None:
    assert set(qjournal.CORRUPTION_RULES) == {c for c, v in CODES.items() if v.family == "corruption"}
    assert family("anomaly") == qjournal.ANOMALY_KINDS and list(qjournal.ANOMALY_KINDS) == [
        "torn_write", "dirty_tail", "unassigned_type", "dirty_padding"]
    assert family("unsupported") == qjournal.UNSUPPORTED_FEATURES
    assert family("image_corruption") == qjournal.IMAGE_CORRUPTION_RULES
    assert family("verify") == qjournal.VERIFY_PROBLEMS and family("image_lock") == IMAGE_LOCK_CODES
    assert UnsupportedSourceError.codes == {**qjournal.UNSUPPORTED_FEATURES, **family("dedup")}
    assert qjournal.ANOMALY_KINDS["torn_write"].endswith("(D14)")
    assert qjournal.ANOMALY_KINDS["dirty_padding"].endswith("(D15)")


def test_the_messages_of_a_check_cite_the_rules_of_their_codes() -> None:
    buf = bytearray(b"\xff" * 8192)
    w = qjournal.open_for_append(buf)
    for _ in range(17):  # 16 entries of 254 bytes, then an END at 0xfe0 closes cluster 0 before the 17th
        w.append_raw(3, bytes(252))
    buf[0xFE0 + 6] = 0  # a byte in the END's padding
    problems = [p for p in qjournal.read(bytes(buf)).check().problems if p.code == "dirty_padding"]
    problems += [torn_write_problem(0, 5), dirty_tail_problem(7), unassigned_problem(0, 3, 2)]
    assert [p.code for p in problems] == ["dirty_padding", "torn_write", "dirty_tail", "unassigned_type"]
    for p in problems:
        assert rules_of(p.reason) and rules_of(p.reason) <= set(CODES[p.code].rules), (p.code, p.reason, CODES[p.code].rules)


@pytest.mark.parametrize("header, code", [
    (bytes((1, 2)), "size_too_small"),
    (bytes((0xFF, 3)), "regular_too_long"),
    (bytes((5, 1)), "end_misaligned"),
    (bytes((10, 2)), "hash_too_short"),
])
def test_the_messages_of_a_corruption_cite_the_rules_of_its_code(header: bytes, code: str) -> None:
    buf = header + b"\xff" * (4096 - len(header))
    got, reason = classify(buf, 0)
    assert got == code and rules_of(reason) & set(CODES[code].rules), (code, reason)
    assert rules_of(reason) <= set(RULE_TITLES)


def test_every_problem_reads_code_and_its_old_name_warns() -> None:
    with pytest.raises(qjournal.CorruptJournalError) as info:
        list(qjournal.read(bytes(4096)))
    e = info.value
    assert e.code == "size_too_small" and isinstance(e, qjournal.Error)
    assert e.to_dict()["code"] == e.to_dict()["rule"] == "size_too_small"
    with pytest.warns(DeprecationWarning, match=r"\.rule is deprecated"):
        assert e.rule == "size_too_small"
    p = qjournal.read(bytes(4096)).check().problems[0]
    assert p.to_dict()["code"] == p.to_dict()["kind"] == p.code
    with pytest.warns(DeprecationWarning, match=r"\.kind is deprecated"):
        assert p.kind == p.code
    m = Mismatch(0, b"\x01", "data_changed", "r", 0, 0)
    assert m.to_dict()["code"] == m.to_dict()["problem"] == "data_changed" and "[data_changed]" in m.message()
    with pytest.warns(DeprecationWarning, match=r"\.problem is deprecated"):
        assert m.problem == "data_changed"
    u = qjournal.UnsupportedImageError("encryption", "r")
    with pytest.warns(DeprecationWarning, match=r"\.feature is deprecated"):
        assert u.feature == "encryption" == u.code
    assert u.to_dict()["code"] == "encryption"
    c = qjournal.CorruptImageError("truncated", "r")
    with pytest.warns(DeprecationWarning, match=r"\.rule is deprecated"):
        assert c.rule == "truncated" == c.code
    assert ImageInUseError("in_use", "r").code == "in_use"
    with pytest.raises(ValueError, match="unknown"):
        qjournal.CorruptImageError("encryption", "r")


def test_one_base_for_every_error_and_image_errors_still_journal_errors_this_release() -> None:
    assert issubclass(qjournal.JournalError, qjournal.Error) and issubclass(qjournal.ImageError, qjournal.Error)
    assert not issubclass(qjournal.ImageError, qjournal.JournalError)  # an image is no journal (docs/format.md section 9)
    assert not issubclass(qjournal.Error, qjournal.JournalError)


def test_index_and_verify_are_callable_from_the_package_and_the_old_modules_warn(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\x01" * 65536 + bytes(65536))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        report = qjournal.index(str(image), str(tmp_path / "j"))
        assert isinstance(report, qjournal.IndexReport) and report.num_entries == 1
        assert qjournal.verify(str(tmp_path / "j"), str(image)).mismatches == ()
    import qjournal.index as old_index
    import qjournal.verify as old_verify

    assert vars(qjournal)["index"] is old_index and callable(old_verify)  # whichever the attribute holds, it calls
    with pytest.warns(DeprecationWarning, match=r"qjournal\.index\.index is deprecated.*qjournal\.indexing"):
        assert old_index.index is qjournal.indexing.index
    with pytest.warns(DeprecationWarning, match=r"qjournal\.verify\.VerifyReport is deprecated"):
        from qjournal.verify import VerifyReport  # type: ignore[attr-defined]
    assert VerifyReport is qjournal.VerifyReport
    assert qjournal.analyze is qjournal.analysis.analyze and callable(qjournal.dedup)
    with pytest.warns(DeprecationWarning, match=r"qjournal\.dedup\.DedupReport is deprecated.*qjournal\.deduplicating"):
        assert qjournal.dedup.DedupReport is qjournal.deduplicating.DedupReport  # type: ignore[attr-defined]


def test_entry_type_has_one_type_and_its_json_stays() -> None:
    buf = bytearray(b"\xff" * 8192)
    w = qjournal.open_for_append(buf)
    w.append_hash(b"\x01" * 32, 0, 0)
    w.append_raw(3, b"")
    entries = list(qjournal.read(bytes(buf)))
    assert [e.entry_type for e in entries] == [EntryType.hash, 3]
    assert [e.to_dict()["entry_type"] for e in entries] == ["hash", 3]
    assert [entry_type_json(t) for t in (EntryType.end, EntryType.none, EntryType.hash, 0)] == ["end", "none", "hash", 0]
