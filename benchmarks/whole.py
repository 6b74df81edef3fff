"""Timing commands as a user meets them: a fresh process each run, start-up included, in turns with a yardstick.

Two things make a whole-command figure honest. The commands run in turns (A B
A B ...), so that a drift of the machine's speed touches both, and the figure
is the median of the runs. And the package's bytecode is compiled first, as
pip compiles it when it installs a package: a checkout run under
``PYTHONDONTWRITEBYTECODE`` (as CI and some shells set it) compiles every module
it imports at every start, some 60 ms no installed copy pays.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import qjournal.generated


def compile_package() -> None:
    """Write the bytecode of every module of the package (the generated parsers too), as an install does.

    The generated parsers are a symbolic link in a checkout: compiled where they really are.
    """
    for folder in {os.path.realpath(p) for p in (*qjournal.__path__, *qjournal.generated.__path__)}:
        compileall.compile_dir(folder, quiet=1)


def qjournal_command(*args: str) -> list[str]:
    """``python -m qjournal ARGS``, with this interpreter."""
    return [sys.executable, "-m", "qjournal", *args]


def time_turns(commands: Mapping[str, Sequence[str]], repeat: int,
               before: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Wall seconds of each run of each command, ``repeat`` runs each, in turns; ``before(name)`` ahead of each run
    (untimed: removing the last run's output). A command that fails raises, with what it printed."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            if before is not None:
                before(name)
            t = time.perf_counter()
            proc = subprocess.run(list(argv), check=False, capture_output=True, text=True)
            times[name].append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return times


def medians(times: Mapping[str, list[float]]) -> dict[str, float]:
    """The median of each command's runs."""
    return {name: statistics.median(runs) for name, runs in times.items() if runs}


def file_size(path: Path) -> int:
    """The size of a file, in bytes."""
    return path.stat().st_size
