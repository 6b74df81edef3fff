"""The README's and the documentation's promises that a test can hold them to.

The README is the front page (set-up, a short tour, links); the user guide (docs/guide.md)
holds the rest. In both, every console session is run command by command and must print
what the page shows, line for line, and every ```python example runs and prints what it says.
"""

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
PAGES = ("README.md", "docs/guide.md")
"""The pages whose sessions and examples are run."""


def _sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def test_ci_runs_the_readme_test_command() -> None:
    test_cmd = next(line for block in _sh_blocks() for line in block.splitlines() if "pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd.strip() in [line.strip() for line in ci]


def test_the_setup_commands_work_on_a_fresh_python() -> None:
    """Both set-up commands make their own virtual environment first: on Debian's own Python,
    ``pip install .`` outside one fails with externally-managed-environment."""
    main, tests = _sh_blocks()[:2]
    for block in (main, tests):
        assert block.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install "), block


def test_main_job_sample_exists() -> None:
    main_cmd = _sh_blocks()[0]
    paths = re.findall(r"\S+\.qjournal", main_cmd)
    assert paths
    for path in paths:
        assert (ROOT / path).is_file(), path


def _blocks(lang: str) -> list[tuple[str, int, str]]:
    """(page, number of the block on its page, text) of every ```LANG block of the pages."""
    out = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        out += [(page, i, block) for i, block in enumerate(re.findall(rf"```{lang}\n(.*?)```", text, re.S))]
    return out


def _session(block: str) -> list[tuple[str, list[str]]]:
    """A console session: (command, the lines it printed)."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_readme_and_the_guide_show_real_sessions() -> None:
    """The README tours the tool with a session; the guide keeps the long one (not a few lines left checked)."""
    sessions: dict[str, int] = {}
    for page, _, block in _blocks("console"):
        sessions[page] = max(sessions.get(page, 0), len(_session(block)))
    assert sessions.get("README.md", 0) >= 6 and sessions.get("docs/guide.md", 0) >= 15, sessions


@pytest.mark.parametrize(("page", "number", "block"), _blocks("console"), ids=lambda v: str(v)[:20])
def test_the_console_session_is_what_the_tool_prints(page: str, number: int, block: str, tmp_path: Path) -> None:
    """Every command of a session, run in order in a new folder: the same output, line for line."""
    steps = _session(block)
    if any(command.startswith(("qemu-img ", "qemu-io ")) for command, _ in steps):
        import qemu_images

        qemu_images.require_qemu()  # the tour of index and verify makes its image with QEMU
    env = {**os.environ, "COLUMNS": "100"}
    for command, expected in steps:
        run = re.sub(r"\s+# .*$", "", command)  # a trailing shell comment explains, it does not run
        proc = subprocess.run(["bash", "-c", f"{{ {run}; }} 2>&1"], check=False, cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.stdout.splitlines() == expected, f"{page}, session {number}: $ {command}\n{proc.stdout}"


@pytest.mark.parametrize(("page", "number", "block"), _blocks("python"), ids=lambda v: str(v)[:20])
def test_the_python_examples_run_and_print_what_they_say(page: str, number: int, block: str, tmp_path: Path) -> None:
    """Run as from the repository's root (the samples at formats/samples/), with the installed package,
    in a new folder so that the files an example writes land there."""
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "samples").symlink_to(ROOT / "formats" / "samples")
    proc = subprocess.run([sys.executable, "-c", block], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = printed(block)
    assert expected, f"{page}: the example says nothing it prints"
    for text in expected:
        assert text in lines, f"{page} says {text!r}; the example printed:\n{proc.stdout}"
