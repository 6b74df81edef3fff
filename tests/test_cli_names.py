"""A file name is printed escaped wherever the CLI prints it: no name forges a line of output or drives the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qjournal import cli
from qjournal.cli.console import shown

FORGED = "x\nj.bin: no problems found; 0 entries\x1b[2K"


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_shown_names() -> None:
    assert shown("disk.qjournal") == "disk.qjournal"
    assert shown("a b/c.bin") == "a b/c.bin"
    assert shown("a\nb") == "'a\\nb'"
    assert shown("e\x1b[31m") == "'e\\x1b[31m'"
    assert shown("bad\udcff") == "'bad\\xff'"  # a byte that is not UTF-8
    assert shown("it's\t") == "'it\\'s\\t'"


@pytest.mark.parametrize("command", [["check"], ["info"], ["dump"], ["get", "00" * 32], ["reset"]])
def test_read_commands_escape_the_name(command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / FORGED)
    assert cli.main(["create", path, "--clusters", "1"]) == 0
    created = capsys.readouterr()
    assert len(_lines(created.out)) == 1 and "\x1b" not in created.out and "x\\nj.bin" in created.out
    cli.main([command[0], path, *command[1:]])
    result = capsys.readouterr()
    for text in (result.out, result.err):
        assert "\x1b" not in text
        assert not any(line.startswith("j.bin: no problems found") for line in _lines(text)), text
    assert "x\\nj.bin" in result.out + result.err


def test_append_and_errors_escape_the_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / FORGED)
    cli.main(["create", path, "--clusters", "1"])
    cli.main(["append", path, "--hash", "ab" * 32, "--physical", "1", "--logical", "2"])
    cli.main(["check", path + "\nmissing"])
    result = capsys.readouterr()
    assert "\x1b" not in result.out + result.err
    assert len(_lines(result.out)) == 2 and len(_lines(result.err)) == 1, result


def test_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    """The console script with a name whose bytes are not UTF-8: printed escaped, no UnicodeEncodeError."""
    name = os.fsencode(tmp_path) + b"/j\xff.bin"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    made = subprocess.run([sys.executable, "-m", "qjournal", "create", name, "--clusters", "1"], capture_output=True, env=env, check=False)
    assert made.returncode == 0, made.stderr
    done = subprocess.run([sys.executable, "-m", "qjournal", "check", name], capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert b"j\\xff.bin': no problems found" in done.stdout
