"""``python benchmarks/bench_index.py``: how fast ``qjournal.index`` hashes an image, against ``openssl dgst -sha256``.

The benchmark lives outside the installed package, as bench.py does; run it
from the repository. It builds an image of random clusters, a share of which
repeat (written as a raw file, then made a qcow2 image by ``qemu-img convert``
when QEMU's tools are installed), checks that ``index`` finds exactly the
unique and duplicate clusters that were written, then times, best of
``--repeat`` runs each, interleaved, with the page cache warm:

- ``index(image, journal)``: the whole job, the journal written and synced
  (with ``--whole-command``: ``python -m qjournal index`` in a fresh process,
  the package's bytecode compiled first as an install has it, median of the runs);
- ``verify(journal, image, all_blocks=True)`` (``verify --all``) of the journal the
  checked run wrote: every data block hashed again and looked up (no target: shown
  beside index);
- ``openssl dgst -sha256 IMAGE``: one pass of one SHA-256 over the same file.

Both rates are the image file's size over the time. The target is index >=
0.8x openssl. ``--json FILE`` writes the figures; :func:`run` is what a
larger benchmark calls.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole import compile_package, qjournal_command, time_turns

from qjournal.indexing import index
from qjournal.verifying import verify

MIB = 1 << 20
TARGET = 0.8
"""index must hash at no less than this fraction of openssl's rate, at 64 KiB clusters and more..."""
TARGET_SMALL = 0.5
"""... and this fraction at smaller clusters (4 KiB: a HASH entry and a hash per 4 KiB)."""


def target_for(cluster_size: int) -> float:
    """The ratio to openssl that index must reach at ``cluster_size``."""
    return TARGET if cluster_size >= 65536 else TARGET_SMALL


def make_image(directory: Path, *, size: int, cluster_size: int, repeat_share: float, fmt: str, seed: int = 12) -> tuple[Path, int, int]:
    """An image of ``size`` bytes of random clusters, ``repeat_share`` of them copies of earlier ones.

    Returns the image's path and how many unique and duplicate clusters it holds.
    """
    rnd = random.Random(seed)
    raw = directory / "bench.raw"
    recent: collections.deque[bytes] = collections.deque(maxlen=64)  # what a repeat copies: one of the last 64 new ones
    num_unique = num_duplicate = 0
    with open(raw, "wb") as f:
        for _ in range(size // cluster_size):
            if recent and rnd.random() < repeat_share:
                f.write(rnd.choice(recent))
                num_duplicate += 1
            else:
                block = rnd.randbytes(cluster_size)
                recent.append(block)
                num_unique += 1
                f.write(block)
    if fmt == "raw":
        return raw, num_unique, num_duplicate
    image = directory / "bench.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", f"cluster_size={cluster_size}", str(raw), str(image)],
                   check=True, capture_output=True)
    raw.unlink()
    return image, num_unique, num_duplicate


def _openssl_seconds(path: Path) -> float:
    openssl = shutil.which("openssl")
    assert openssl is not None
    t = time.perf_counter()
    subprocess.run([openssl, "dgst", "-sha256", str(path)], check=True, capture_output=True)
    return time.perf_counter() - t


def run(
    *,
    size: int = 256 * MIB,
    cluster_size: int = 65536,
    repeat_share: float = 0.25,
    fmt: str | None = None,
    repeat: int = 5,
    jobs: int | None = None,
    directory: Path | None = None,
    whole: bool = False,
) -> dict[str, Any]:
    """Build the image, check index's answer, time index and openssl; the figures as a dict.

    ``whole``: time ``python -m qjournal index`` as a user runs it (a fresh process, start-up included) and take the
    median of the runs, as the ratio a user sees; else the library call, best of the runs.
    """
    fmt = fmt or ("qcow2" if shutil.which("qemu-img") else "raw")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        work = Path(tmp)
        image, num_unique, num_duplicate = make_image(work, size=size, cluster_size=cluster_size, repeat_share=repeat_share,
                                                      fmt=fmt)
        len_file = image.stat().st_size
        image.read_bytes()  # warm the page cache: both contenders read from memory
        journal, kept = work / "bench.qjournal", work / "kept.qjournal"
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {"index": [], "verify": [], "openssl": []}
        has_openssl = shutil.which("openssl") is not None
        report = index(image, kept, block_size=cluster_size, jobs=jobs)  # the answers are checked before anything is timed
        if (report.num_unique, report.num_duplicate) != (num_unique, num_duplicate):
            raise AssertionError(f"index found {report.num_unique} unique and {report.num_duplicate} duplicate clusters; "
                                 f"the image holds {num_unique} and {num_duplicate}")
        checked = verify(kept, image, all_blocks=True, jobs=jobs)
        if not checked.is_clean or checked.scan is None or checked.scan.num_hashed != num_unique + num_duplicate:
            raise AssertionError(f"verify --all of the journal index wrote is not clean: {checked.to_dict()}")
        jobs_args = ["--jobs", str(jobs)] if jobs else []
        if whole:
            compile_package()
            commands = {"index": qjournal_command("index", str(image), str(journal), "--block-size", str(cluster_size), *jobs_args),
                        "verify": qjournal_command("verify", str(kept), str(image), "--all", *jobs_args)}
            if has_openssl:
                commands["openssl"] = ["openssl", "dgst", "-sha256", str(image)]
            times = time_turns(commands, repeat, before=lambda name: journal.unlink(missing_ok=True))
        else:
            for _ in range(repeat):
                journal.unlink(missing_ok=True)
                t = time.perf_counter()
                index(image, journal, block_size=cluster_size, jobs=jobs)
                times["index"].append(time.perf_counter() - t)
                t = time.perf_counter()
                verify(kept, image, all_blocks=True, jobs=jobs)
                times["verify"].append(time.perf_counter() - t)
                if has_openssl:
                    times["openssl"].append(_openssl_seconds(image))
        load_after = os.getloadavg()
    best = {k: min(v) for k, v in times.items() if v}
    median = {k: statistics.median(v) for k, v in times.items() if v}
    rates = {k: len_file / v / MIB for k, v in (median if whole else best).items()}
    ratio = rates["index"] / rates["openssl"] if "openssl" in rates else None
    target = target_for(cluster_size)
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "openssl": _openssl_version(),
        "format": fmt,
        "size": size,
        "len_file": len_file,
        "cluster_size": cluster_size,
        "num_unique": num_unique,
        "num_duplicate": num_duplicate,
        "jobs": jobs,
        "repeat": repeat,
        "seconds": times,
        "best_seconds": best,
        "median_seconds": median,
        "whole_command": whole,
        "rate_mib_s": rates,
        "ratio": ratio,
        "target": target,
        "met": None if ratio is None else ratio >= target,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }


def _openssl_version() -> str | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    return subprocess.run([openssl, "version"], check=False, capture_output=True, text=True).stdout.strip()


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=_size, default=256 * MIB, help="image size (suffixes K, M, G; default 256M)")
    parser.add_argument("--cluster-size", type=_size, default=65536, help="cluster size (default 64K)")
    parser.add_argument("--repeat-share", type=float, default=0.25, help="share of clusters that repeat an earlier one (0.25)")
    parser.add_argument("--format", choices=("qcow2", "raw"), help="image format (default qcow2 when qemu-img is installed)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts, the median with --whole-command (5)")
    parser.add_argument("--jobs", type=int, help="index's hashing threads (default: one per core)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--whole-command", action="store_true",
                        help="time 'python -m qjournal index' as a user runs it (start-up included), the median of the runs")
    args = parser.parse_args(argv)
    figures = run(size=args.size, cluster_size=args.cluster_size, repeat_share=args.repeat_share, fmt=args.format,
                  repeat=args.repeat, jobs=args.jobs, whole=args.whole_command)
    print(f"qjournal index benchmark: Python {figures['python']} ({figures['machine']}, {figures['cpus']} CPUs), "
          f"{figures['openssl'] or 'no openssl'}")
    print(f"image: {figures['format']}, {figures['len_file'] / MIB:.1f} MiB file, {figures['cluster_size']}-byte clusters, "
          f"{figures['num_unique']} unique and {figures['num_duplicate']} duplicate clusters; page cache warm; "
          + (f"whole commands, median of {figures['repeat']} runs" if figures["whole_command"]
             else f"best of {figures['repeat']} runs"))
    for name, label in (("index", "qjournal index"), ("verify", "qjournal verify --all"), ("openssl", "openssl dgst -sha256")):
        if name in figures["rate_mib_s"]:
            secs = figures["median_seconds" if figures["whole_command"] else "best_seconds"][name]
            print(f"{label:<22} {secs:8.3f} s  {figures['rate_mib_s'][name]:8.1f} MiB/s")
    if figures["ratio"] is None:
        print("openssl not found: no ratio")
    else:
        print(f"ratio index/openssl: {figures['ratio']:.2f}x (target >= {figures['target']}x: "
              f"{'met' if figures['met'] else 'NOT met'}); verify --all/openssl: "
              f"{figures['rate_mib_s']['verify'] / figures['rate_mib_s']['openssl']:.2f}x (no target)")
    print(f"load average before {figures['loadavg_before'][0]:.2f}, after {figures['loadavg_after'][0]:.2f} "
          f"(1 min; {figures['cpus']} CPUs)")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
