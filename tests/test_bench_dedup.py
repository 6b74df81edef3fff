"""The dedup benchmark: a tiny run works, checks dedup's answer, and prints sane figures (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi
from helpers import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dedup.py"


bench = load_script(BENCH)


def test_a_tiny_run_gives_sane_figures(tmp_path: Path) -> None:
    qi.require_qemu()
    f = bench.run(size=2 << 20, cluster_size=4096, repeat=1, rss_clusters=2048, directory=tmp_path)
    s, m = f["speed"], f["memory"]
    assert s["num_distinct"] + s["num_duplicate"] == 512 and s["num_duplicate"] > 0
    assert s["len_target"] < s["len_convert"] and s["rate_mib_s"]["dedup"] > 0
    assert s["ratio_convert"] == s["rate_mib_s"]["dedup"] / s["rate_mib_s"]["convert"]
    assert m["num_clusters"] == 2048 and m["peak_rss_mib"] > 0
    json.dumps(f)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_answer_fails_the_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qi.require_qemu()
    real = bench.make_image

    def lying(*args: Any, **kwargs: Any) -> Any:
        path, unique, duplicate = real(*args, **kwargs)
        return path, unique + 1, duplicate

    monkeypatch.setattr(bench, "make_image", lying)
    with pytest.raises(AssertionError, match="dedup found"):
        bench.run(size=1 << 20, cluster_size=4096, repeat=1, rss_clusters=0, directory=tmp_path)
