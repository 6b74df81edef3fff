"""``python benchmarks/bench_dedup.py``: ``qjournal.dedup`` against ``qemu-img convert -O qcow2``, and its peak memory.

Run from the repository, as bench_index.py. Two measures:

- Speed. An image of random clusters, a share of which repeat (bench_index's
  generator, made a qcow2 image by ``qemu-img convert``), page cache warm;
  the median of ``--repeat`` runs in turns of: ``python -m qjournal dedup IMAGE
  TARGET`` (the whole command as a user meets it: a fresh process, the
  package's bytecode compiled first as an install has it, both passes, the
  metadata, the journal, every fsync);
  ``qemu-img convert -O qcow2 IMAGE COPY`` (a plain copy of the same image);
  ``openssl dgst -sha256 IMAGE`` (one SHA-256 pass, the floor of hashing).
  Rates are the image file's size over the time. Target: dedup >= 0.5x
  convert. dedup fsyncs the target and its journal before they get their
  names (``qemu-img convert`` syncs only while it creates its image, not the data it copies: its output
  cache mode defaults to ``unsafe``); the library's
  ``dedup(..., durable=False)`` in this process (no start-up, no fsync) is
  timed too, the mean of the runs, to show what those cost. The target's size, the copy's and the source's are shown; dedup's
  answer is checked against the generator's counts before it is timed.
- Memory. A raw image of ``--rss-clusters`` distinct 512-byte clusters
  (default 1,048,576) deduplicated in a child process; its peak RSS
  (``ru_maxrss``). Target: under 200 MiB.

``--json FILE`` writes the figures; :func:`run` is what a test calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import _openssl_version, _size, make_image
from whole import compile_package, medians, qjournal_command, time_turns

from qjournal.deduplicating import dedup

MIB = 1 << 20
TARGET_SPEED = 0.5
"""dedup must run at no less than this fraction of qemu-img convert's rate."""
TARGET_RSS_MIB = 200
"""dedup of an image of 1,048,576 distinct clusters must peak under this RSS."""

_CHILD = """
import json, re, resource, sys
from qjournal.deduplicating import dedup
r = dedup(sys.argv[1], sys.argv[2], cluster_size=512, journal=False)
try:  # this process's own peak: ru_maxrss keeps the parent's across fork and exec on Linux
    kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
except (OSError, AttributeError):
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"num_distinct": r.num_distinct, "maxrss_kib": kib}))
"""


def speed(*, size: int, cluster_size: int, repeat_share: float, repeat: int, jobs: int | None, directory: Path | None) -> dict[str, Any]:
    """Time dedup, qemu-img convert and openssl on one image; check dedup's counts first."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        work = Path(tmp)
        image, num_unique, num_duplicate = make_image(work, size=size, cluster_size=cluster_size, repeat_share=repeat_share,
                                                      fmt="qcow2")
        len_file = image.stat().st_size
        image.read_bytes()  # page cache warm for every contender
        target, copy = work / "dedup.qcow2", work / "copy.qcow2"
        outputs = (target, Path(f"{target}.qjournal"), copy)
        for p in outputs:
            p.unlink(missing_ok=True)
        report = dedup(image, target, jobs=jobs, durable=False)  # the answer, checked below; the library without fsyncs
        t = time.perf_counter()
        for _ in range(repeat):
            for p in outputs:
                p.unlink(missing_ok=True)
            dedup(image, target, jobs=jobs, durable=False)
        no_fsync = (time.perf_counter() - t) / repeat
        compile_package()
        commands = {  # as a user meets them: whole commands, a fresh process, start-up and fsyncs included
            "dedup": qjournal_command("dedup", str(image), str(target), *(["--jobs", str(jobs)] if jobs else [])),
            "convert": ["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", str(image), str(copy)],
        }
        if shutil.which("openssl"):
            commands["openssl"] = ["openssl", "dgst", "-sha256", str(image)]
        def clean(name: str) -> None:  # each command's own output, from its last run
            for p in {"dedup": outputs[:2], "convert": outputs[2:]}.get(name, ()):
                p.unlink(missing_ok=True)

        times = time_turns(commands, repeat, before=clean)
        times["dedup_no_fsync"] = [no_fsync]
        len_copy = copy.stat().st_size
        assert report is not None
        if (report.num_distinct, report.num_duplicate) != (num_unique, num_duplicate):
            raise AssertionError(f"dedup found {report.num_distinct} distinct and {report.num_duplicate} duplicate clusters; "
                                 f"the image holds {num_unique} and {num_duplicate}")
        check = subprocess.run(["qemu-img", "check", str(target)], check=False, capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"qemu-img check of the target failed: {check.stdout}{check.stderr}")
    best = medians(times)
    rates = {k: len_file / v / MIB for k, v in best.items()}
    return {
        "size": size, "cluster_size": cluster_size, "len_source": len_file, "len_target": report.len_target,
        "len_convert": len_copy, "num_distinct": num_unique, "num_duplicate": num_duplicate, "repeat": repeat, "jobs": jobs,
        "seconds": times, "median_seconds": best, "rate_mib_s": rates,
        "ratio_convert": rates["dedup"] / rates["convert"], "ratio_convert_no_fsync": rates["dedup_no_fsync"] / rates["convert"], "ratio_openssl": rates["dedup"] / rates["openssl"] if "openssl" in rates else None,
        "target": TARGET_SPEED, "met": rates["dedup"] / rates["convert"] >= TARGET_SPEED,
    }


def peak_rss(*, num_clusters: int, directory: Path | None) -> dict[str, Any]:
    """Peak RSS of a dedup of ``num_clusters`` distinct 512-byte clusters, in a child process."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        raw = Path(tmp) / "distinct.raw"
        with open(raw, "wb") as f:
            pad = bytes(504)
            for i in range(0, num_clusters, 4096):
                f.write(b"".join((k + 1).to_bytes(8, "little") + pad for k in range(i, min(i + 4096, num_clusters))))
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(raw), str(Path(tmp) / "t.qcow2")], check=True, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - t
        child = json.loads(proc.stdout)
        if child["num_distinct"] != num_clusters:
            raise AssertionError(f"dedup found {child['num_distinct']} distinct clusters of {num_clusters}")
    rss = child["maxrss_kib"] / 1024
    return {"num_clusters": num_clusters, "seconds": seconds, "peak_rss_mib": rss, "target_mib": TARGET_RSS_MIB,
            "met": rss < TARGET_RSS_MIB}


def run(*, size: int = 256 * MIB, cluster_size: int = 65536, repeat_share: float = 0.25, repeat: int = 3, jobs: int | None = None,
        rss_clusters: int = 1 << 20, directory: Path | None = None) -> dict[str, Any]:
    """Both measures, as a dict."""
    load_before = os.getloadavg()
    figures: dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "openssl": _openssl_version(),
        "qemu_img": subprocess.run(["qemu-img", "--version"], check=True, capture_output=True, text=True).stdout.splitlines()[0],
        "speed": speed(size=size, cluster_size=cluster_size, repeat_share=repeat_share, repeat=repeat, jobs=jobs, directory=directory),
        "memory": peak_rss(num_clusters=rss_clusters, directory=directory) if rss_clusters else None,
    }
    figures["loadavg"] = (load_before, os.getloadavg())
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=_size, default=256 * MIB, help="image size (suffixes K, M, G; default 256M)")
    parser.add_argument("--cluster-size", type=_size, default=65536, help="cluster size (default 64K)")
    parser.add_argument("--repeat-share", type=float, default=0.25, help="share of clusters that repeat an earlier one (0.25)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median counts (3)")
    parser.add_argument("--jobs", type=int, help="dedup's threads (default: one per core)")
    parser.add_argument("--rss-clusters", type=int, default=1 << 20, help="distinct clusters of the memory run (1048576; 0: skip)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    f = run(size=args.size, cluster_size=args.cluster_size, repeat_share=args.repeat_share, repeat=args.repeat, jobs=args.jobs,
            rss_clusters=args.rss_clusters)
    s = f["speed"]
    print(f"qjournal dedup benchmark: Python {f['python']} ({f['machine']}, {f['cpus']} CPUs), {f['qemu_img']}, "
          f"{f['openssl'] or 'no openssl'}")
    print(f"image: qcow2, {s['len_source'] / MIB:.1f} MiB file, {s['cluster_size']}-byte clusters, {s['num_distinct']} distinct "
          f"and {s['num_duplicate']} duplicate clusters; page cache warm; median of {s['repeat']} runs")
    for name, label in (("dedup", "qjournal dedup"), ("dedup_no_fsync", "  (library, no fsync)"), ("convert", "qemu-img convert"),
                        ("openssl", "openssl dgst -sha256")):
        if name in s["rate_mib_s"]:
            print(f"{label:<22} {s['median_seconds'][name]:8.3f} s  {s['rate_mib_s'][name]:8.1f} MiB/s")
    print(f"ratio dedup/convert: {s['ratio_convert']:.2f}x (target >= {TARGET_SPEED}x: {'met' if s['met'] else 'NOT met'}); "
          f"without the fsyncs {s['ratio_convert_no_fsync']:.2f}x"
          + (f"; dedup/openssl: {s['ratio_openssl']:.2f}x" if s["ratio_openssl"] is not None else ""))
    print(f"sizes: source {s['len_source'] / MIB:.1f} MiB, dedup target {s['len_target'] / MIB:.1f} MiB, "
          f"qemu-img convert copy {s['len_convert'] / MIB:.1f} MiB")
    m = f["memory"]
    if m is not None:
        print(f"memory: {m['num_clusters']} distinct 512-byte clusters deduplicated in {m['seconds']:.1f} s, peak RSS "
              f"{m['peak_rss_mib']:.1f} MiB (target < {TARGET_RSS_MIB} MiB: {'met' if m['met'] else 'NOT met'})")
    print(f"load average before {f['loadavg'][0][0]:.2f}, after {f['loadavg'][1][0]:.2f} (1 min; {f['cpus']} CPUs)")
    if args.json is not None:
        args.json.write_text(json.dumps(f, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
