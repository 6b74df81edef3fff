"""The README's promises that a test can hold it to."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def test_ci_runs_the_readme_test_command() -> None:
    test_cmd = next(line for block in _sh_blocks() for line in block.splitlines() if "pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd.strip() in [line.strip() for line in ci]


def test_main_job_sample_exists() -> None:
    main_cmd = _sh_blocks()[0]
    for path in re.findall(r"\S+\.qjournal", main_cmd):
        assert (ROOT / path).is_file(), path
