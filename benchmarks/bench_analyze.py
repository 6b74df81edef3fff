"""``python benchmarks/bench_analyze.py``: how fast ``qjournal.analysis.analyze`` reads and hashes, and its peak memory.

Run it from the repository. It builds a qcow2 image of random 64 KiB clusters
(a share of them repeated) with ``qemu-img convert``, checks that the analysis
at the cluster size finds exactly the distinct and duplicate clusters written,
then times, in turns, the page cache warm, the median of ``--repeat`` runs of
each whole command as a user meets it (a fresh process, start-up included, the
package's bytecode compiled first as an install has it; ``--in-process``: the
library call, best of the runs):

- ``qjournal analyze`` at B = the cluster size, and at 4 KiB blocks (the same image);
- ``openssl dgst -sha256 IMAGE``: one SHA-256 pass over the same file.

Rates are the image file's size over the time. Targets: >= 0.8x openssl at the
cluster size, >= 0.5x at 4 KiB. Then the peak RSS of a process that analyses
a raw image of ``--distinct`` distinct blocks (512-byte blocks of random
bytes, 1,048,576 by default: a 512 MiB file), and the same with the counts
spilled to disk past the default memory limit. ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import _openssl_seconds, make_image
from whole import compile_package, medians, qjournal_command, time_turns

from qjournal.analysis import analyze

MIB = 1 << 20
TARGETS = {"cluster": 0.8, "4k": 0.5}


def _analyze(path: Path, block_size: int, jobs: int | None) -> float:
    t = time.perf_counter()
    analyze([path], block_sizes=[block_size], jobs=jobs).close()
    return time.perf_counter() - t


def peak_rss(path: Path, block_size: int, memory_limit: int | None) -> dict[str, Any]:
    """Peak RSS (KiB) of a fresh process that analyses ``path`` at ``block_size``, and what it found."""
    code = (
        "import json, resource, sys\n"
        "from qjournal.analysis import analyze, DEFAULT_MEMORY_LIMIT\n"
        f"a = analyze([{str(path)!r}], block_sizes=[{block_size}], memory_limit={memory_limit or 'DEFAULT_MEMORY_LIMIT'})\n"
        "b = a.block_sizes[0]\n"
        "print(json.dumps({'num_distinct': b.num_distinct, 'num_blocks': b.num_blocks, "
        "'peak_rss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
        " 'peak_worker_rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    figures: dict[str, Any] = json.loads(out)
    figures["seconds"] = round(time.perf_counter() - t, 2)
    figures["memory_limit"] = memory_limit
    return figures


def run(*, size: int, cluster_size: int, repeat: int, jobs: int | None, distinct: int, whole: bool = True) -> dict[str, Any]:
    if shutil.which("qemu-img") is None or shutil.which("openssl") is None:
        raise SystemExit("bench_analyze needs qemu-img and openssl")
    out: dict[str, Any] = {"size": size, "cluster_size": cluster_size, "cpus": os.cpu_count(),
                           "load_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="bench-analyze-") as tmp:
        image, n_distinct, n_dup = make_image(Path(tmp), size=size, cluster_size=cluster_size, repeat_share=0.25, fmt="qcow2", seed=21)
        with analyze([image], block_sizes=[cluster_size]) as a:
            b = a.block_sizes[0]
            assert (b.num_distinct, b.num_duplicate) == (n_distinct, n_dup), (b, n_distinct, n_dup)
        len_file = image.stat().st_size
        if whole:  # as a user meets it: a fresh process per run, start-up included; the median of the runs
            compile_package()
            jobs_args = ["--jobs", str(jobs)] if jobs else []
            best = medians(time_turns({
                "openssl": ["openssl", "dgst", "-sha256", str(image)],
                "cluster": qjournal_command("analyze", str(image), "--block-size", str(cluster_size), *jobs_args),
                "4k": qjournal_command("analyze", str(image), "--block-size", "4096", *jobs_args),
            }, repeat))
        else:
            best = {"openssl": float("inf"), "cluster": float("inf"), "4k": float("inf")}
            for _ in range(repeat):
                best["openssl"] = min(best["openssl"], _openssl_seconds(image))
                best["cluster"] = min(best["cluster"], _analyze(image, cluster_size, jobs))
                best["4k"] = min(best["4k"], _analyze(image, 4096, jobs))
        out["whole_command"] = whole
        for key, seconds in best.items():
            out[f"{key}_mib_s"] = round(len_file / seconds / MIB, 1)
        for key, target in TARGETS.items():
            out[f"{key}_ratio"] = round(best["openssl"] / best[key], 2)
            out[f"{key}_target"] = target
        image.unlink()
        raw = Path(tmp) / "distinct.raw"
        rnd = random.Random(5)
        with open(raw, "wb") as f:
            for _ in range(distinct // 2048):
                f.write(rnd.randbytes(2048 * 512))
        out["rss_distinct_blocks"] = distinct
        out["rss_in_memory"] = peak_rss(raw, 512, 1 << 30)
        out["rss_default_limit"] = peak_rss(raw, 512, None)
        out["rss_spilled_16mib"] = peak_rss(raw, 512, 16 << 20)
    out["load_after"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="image size in MiB (default 256)")
    p.add_argument("--cluster-size", type=int, default=65536)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--distinct", type=int, default=1 << 20, help="distinct 512-byte blocks of the memory test (default 1048576)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--in-process", action="store_true",
                   help="time the library call, best of the runs, instead of whole 'python -m qjournal analyze' commands")
    args = p.parse_args()
    figures = run(size=args.size * MIB, cluster_size=args.cluster_size, repeat=args.repeat, jobs=args.jobs,
                  distinct=args.distinct, whole=not args.in_process)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["bench_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    print(f"image: {args.size} MiB qcow2, {args.cluster_size // 1024} KiB clusters, {figures['cpus']} cores; "
          + (f"whole commands, median of {args.repeat} runs" if figures["whole_command"] else f"best of {args.repeat} runs"))
    print(f"openssl dgst -sha256:   {figures['openssl_mib_s']:>8} MiB/s")
    for key, label in (("cluster", f"analyze at {args.cluster_size // 1024} KiB:"), ("4k", "analyze at 4 KiB:")):
        verdict = "meets" if figures[f"{key}_ratio"] >= figures[f"{key}_target"] else "misses"
        print(f"{label:<23} {figures[f'{key}_mib_s']:>8} MiB/s = {figures[f'{key}_ratio']}x openssl "
              f"({verdict} the {figures[f'{key}_target']}x target)")
    for key in ("rss_in_memory", "rss_default_limit", "rss_spilled_16mib"):
        r = figures[key]
        print(f"peak RSS, {r['num_distinct']:,} distinct 512-byte blocks, memory limit "
              f"{(r['memory_limit'] or 256 << 20) >> 20} MiB: {r['peak_rss_kib'] // 1024} MiB, its largest worker "
              f"process {r['peak_worker_rss_kib'] // 1024} MiB ({r['seconds']} s)")
    print(f"load average (1 min) before {figures['load_before']}, after {figures['load_after']}: the rates need free cores")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
