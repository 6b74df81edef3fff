"""The analyze benchmark: a tiny run works, checks analyze's answer, and prints figures.

No timing is asserted: the figures are the benchmark's to print.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi
from helpers import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_analyze.py"


def test_a_tiny_run_gives_figures() -> None:
    qi.require_qemu()
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    figures = load_script(BENCH).run(size=2 << 20, cluster_size=65536, repeat=1, jobs=None, distinct=4096)
    assert figures["cluster_mib_s"] > 0 and figures["4k_mib_s"] > 0 and figures["openssl_mib_s"] > 0
    for key in ("rss_in_memory", "rss_default_limit", "rss_spilled_16mib"):
        assert figures[key]["num_distinct"] == 4096 == figures[key]["num_blocks"] and figures[key]["peak_rss_kib"] > 0
    json.dumps(figures)


def test_a_wrong_answer_fails_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator's counts are the oracle: an analysis that miscounts is not timed as if right."""
    qi.require_qemu()
    bench = load_script(BENCH)
    real = bench.make_image

    def lying(*args: Any, **kwargs: Any) -> tuple[Path, int, int]:
        path, distinct, duplicate = real(*args, **kwargs)
        return path, distinct + 1, duplicate

    monkeypatch.setattr(bench, "make_image", lying)
    with pytest.raises(AssertionError):
        bench.run(size=1 << 20, cluster_size=65536, repeat=1, jobs=None, distinct=2048)
