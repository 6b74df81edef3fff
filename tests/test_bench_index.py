"""The index benchmark (issue 12): a tiny run works, checks index's answer, and prints a sane ratio.

No timing is asserted: the figures are the benchmark's to print.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi
from helpers import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_index.py"


bench = load_script(BENCH)


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_a_tiny_run_gives_sane_figures(fmt: str, tmp_path: Path) -> None:
    if fmt == "qcow2":
        qi.require_qemu()
    figures = bench.run(size=2 << 20, cluster_size=4096, fmt=fmt, repeat=1, directory=tmp_path)
    assert figures["format"] == fmt and figures["num_unique"] + figures["num_duplicate"] == 512
    assert figures["num_duplicate"] > 0 and figures["rate_mib_s"]["index"] > 0
    if shutil.which("openssl"):
        assert figures["ratio"] == figures["rate_mib_s"]["index"] / figures["rate_mib_s"]["openssl"] > 0
    json.dumps(figures)
    assert list(tmp_path.iterdir()) == []  # the image and journal are cleaned up


def test_whole_commands_are_timed_as_a_user_runs_them_and_the_median_counts(tmp_path: Path) -> None:
    figures = bench.run(size=1 << 20, cluster_size=4096, fmt="raw", repeat=3, directory=tmp_path, whole=True)
    assert figures["whole_command"] is True and len(figures["seconds"]["index"]) == 3
    assert figures["median_seconds"]["index"] == sorted(figures["seconds"]["index"])[1]
    assert figures["rate_mib_s"]["index"] == figures["len_file"] / figures["median_seconds"]["index"] / (1 << 20)
    assert figures["median_seconds"]["index"] > 0.02  # a fresh Python process: more than the library call of 1 MiB


def test_a_wrong_answer_fails_the_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator's counts are the oracle: an index that miscounts is not timed as if right."""
    real = bench.make_image

    def lying(*args: Any, **kwargs: Any) -> tuple[Path, int, int]:
        path, unique, duplicate = real(*args, **kwargs)
        return path, unique + 1, duplicate

    monkeypatch.setattr(bench, "make_image", lying)
    with pytest.raises(AssertionError, match="index found"):
        bench.run(size=1 << 20, cluster_size=4096, fmt="raw", repeat=1, directory=tmp_path)


def test_the_command_prints_the_ratio_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--size", "1M", "--cluster-size", "4K", "--format", "raw",
                           "--repeat", "1", "--json", str(out)], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(BENCH.parents[1])})  # this checkout's package
    assert proc.returncode == 0, proc.stderr
    assert "qjournal index" in proc.stdout and "qjournal verify --all" in proc.stdout and "load average" in proc.stdout
    assert ("ratio index/openssl" in proc.stdout) == bool(shutil.which("openssl"))
    assert json.loads(out.read_text())["size"] == 1 << 20
