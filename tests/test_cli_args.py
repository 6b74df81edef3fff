"""get takes a digest prefix as git takes an object name's; image commands name their arguments JOURNAL and IMAGE."""

from __future__ import annotations

from pathlib import Path

import pytest

import qjournal
from qjournal import cli


@pytest.fixture
def journal(tmp_path: Path) -> str:
    path = tmp_path / "j.bin"
    with qjournal.create(path, 4) as w:
        w.append_many([
            qjournal.HashEntry(bytes.fromhex("abcd01" + "00" * 29), 8, 0),
            qjournal.HashEntry(bytes.fromhex("abcd02" + "00" * 29), 16, 8),
            qjournal.HashEntry(bytes.fromhex("12345f" + "00" * 29), 24, 16),
            qjournal.HashEntry(bytes.fromhex("abcd"), 32, 24),  # a 2-byte digest: its whole name is a prefix of others
        ])
    return str(path)


def test_an_unambiguous_prefix_finds_the_entry(journal: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", journal, "12345F" + "00" * 29]) == 0
    whole = capsys.readouterr().out
    for prefix in ("1234", "12345", "12345f00"):
        assert cli.main(["get", journal, prefix]) == 0
        assert capsys.readouterr().out == whole
    assert cli.main(["get", journal, "abcd01", "--output", "json"]) == 0
    assert '"physical_sector": 8' in capsys.readouterr().out


def test_a_whole_digest_comes_before_a_prefix(journal: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", journal, "abcd"]) == 0
    assert "physical_sector=32" in capsys.readouterr().out


def test_an_ambiguous_prefix_names_the_candidates(journal: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", journal, "abcd0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "digest prefix abcd0 is ambiguous: 2 live digests start with it: abcd01" in captured.err
    assert "abcd02" in captured.err


def test_a_short_or_unknown_prefix_is_missing(journal: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", journal, "123"]) == 1
    assert "no live entry with digest 123... (no HASH entry replay yields has it) (a prefix needs at least 4 hex digits)" \
        in capsys.readouterr().err
    assert cli.main(["get", journal, "9999", "1234"]) == 1
    captured = capsys.readouterr()
    assert "no live entry with digest 9999" in captured.err and "physical_sector=24" in captured.out


@pytest.mark.parametrize("bad", ["12 34", "xyz", ""])
def test_a_prefix_is_hex(bad: str, journal: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", journal, bad]) == 1
    assert "not a hex string" in capsys.readouterr().err


def test_image_commands_name_their_arguments_journal_and_image(capsys: pytest.CaptureFixture[str]) -> None:
    for command, order in (("verify", "JOURNAL IMAGE"), ("index", "IMAGE JOURNAL")):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([command, "--help"])
        usage = " ".join(capsys.readouterr().out.split("\n\n")[0].split())
        assert usage.endswith(order) and "PATH" not in usage, usage
