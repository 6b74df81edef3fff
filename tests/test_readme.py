"""The README's promises that a test can hold it to."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import printed

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


def _session() -> list[tuple[str, list[str]]]:
    """The README's console session: (command, the lines it printed)."""
    block = re.search(r"```console\n(.*?)```", README, re.S).group(1)
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_console_session_is_what_the_tool_prints(tmp_path: Path) -> None:
    """Every command of the README's session, run in order: the same output, line for line."""
    steps = _session()
    assert len(steps) >= 10
    env = {**os.environ, "COLUMNS": "100"}
    for command, expected in steps:
        run = re.sub(r"\s+# .*$", "", command)  # a trailing shell comment explains, it does not run
        proc = subprocess.run(["bash", "-c", f"{{ {run}; }} 2>&1"], cwd=tmp_path, check=False, capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.stdout.splitlines() == expected, f"$ {command}\n{proc.stdout}"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_the_python_examples_run_and_print_what_they_say(index: int, tmp_path: Path) -> None:
    block = _python_blocks()[index]
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "samples").symlink_to(ROOT / "formats" / "samples")
    proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = printed(block)
    assert expected, "the example says nothing it prints"
    for text in expected:
        assert text in lines, f"README says {text!r}; the example printed:\n{proc.stdout}"
