"""``python benchmarks/bench.py``: the figures of the README's performance table.

It lives outside the installed package, as msgpack's and h11's benchmarks do, and
imports it (run it from the repository after ``pip install -e '.[bench]'``). It
builds journals of SHA-256 HASH entries, areas filled to 90%, and measures, each
figure the median of up to ``--repeat`` runs taken in turns:

- replay: the public API with the compiled and the pure stream, the bare generated
  parser on the stock Kaitai stream, construct (the ``bench`` extra), and a
  hand-written ``struct`` decoder that checks the same rules (the pure-Python ceiling);
- append: single, batches of 100 and a minimal hand-written packer, in memory and to
  a file with and without fsync; opening a full and a 90% full journal for append;
- memory: the peak RSS of replaying the largest area and of ``pack`` of journals of
  unique digests (``--pack-size``), each in a fresh process;
- the command line as fresh processes: start-up against ``python -c pass``, then
  ``check`` and ``dump --output jsonl`` of the largest area;
- the JSON-lines formatting alone against the ``json`` encoder, and ``check`` with 1
  and 2 worker processes.

Every decoder's answer is compared before anything is timed (a benchmark of a wrong
answer fails); then each target is printed, met or not, with its figure.
``--json FILE`` writes it all.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import qjournal
from qjournal import cli, parallel, stream
from qjournal.entries import json_join
from qjournal.format import LEN_CLUSTER, LEN_SHA256_ENTRY

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, or loaded by its path
from contenders import (
    CONSTRUCT,
    FILL,
    DecodeError,
    Fields,
    MinimalPacker,
    build_journal,
    compiled_stream,
    digest_of,
    hash_entries,
    make_replay_construct,
    replay_generated,
    replay_public,
    replay_public_with,
    replay_struct,
)

__all__ = ["DecodeError", "MinimalPacker", "hash_entries", "replay_generated"]  # used by tests/test_bench.py

MIB = 1 << 20
DEFAULT_SIZES = (1 * MIB, 16 * MIB, 256 * MIB)
DEFAULT_PACK_SIZES = (64 * MIB, 1024 * MIB)
BATCH = 100


# -- measuring -----------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    group: str
    name: str
    area: str
    count: int
    unit: str
    seconds: float
    runs: int
    rate: float
    mib_per_s: float | None = None
    ratio: float | None = None
    ratio_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Run = Callable[[], "int | tuple[int, float]"]
"""One timed run: returns the count it processed, or (count, seconds) when it
times itself to leave its set-up out (creating a file, say)."""


def timed_interleaved(fns: dict[str, Run], repeat: int, budget: float) -> dict[str, tuple[float, int, int]]:
    """{name: (median seconds, count, runs)} over up to ``repeat`` runs taken in turns (a, b, c, a, b, c, ...).

    Figures compared as ratios are measured in turns, so that a slow phase of the
    machine falls on all of them alike. A run that has spent ``budget`` seconds is
    not repeated (each runs at least once).
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    counts: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            if times[name] and sum(times[name]) > budget:
                continue
            t0 = time.perf_counter()
            result = fn()
            dt = time.perf_counter() - t0
            counts[name], seconds = result if isinstance(result, tuple) else (result, dt)
            times[name].append(seconds)
    return {name: (statistics.median(t), counts[name], len(t)) for name, t in times.items()}


def consume(it: Iterable[Any]) -> int:
    """Count what an iterator yields (every decoder yields materialised fields)."""
    n = 0
    for _ in it:
        n += 1
    return n


def checksum(it: Iterable[Fields]) -> tuple[int, int, int]:
    """(count, sum of offsets, digest of every field): what two decoders must agree on."""
    h = hashlib.sha256()
    n = total = 0
    for t in it:
        n += 1
        total += t[-1]
        for v in t[:-1]:
            h.update(v if isinstance(v, bytes) else int(v).to_bytes(8, "big"))
    return n, total, int.from_bytes(h.digest()[:8], "big")


def size_label(n: int) -> str:
    """1 MiB, 64 KiB, ..."""
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // 1024} KiB"


def parse_size(text: str) -> int:
    """An area size as the command line reads one (``64K``, ``16M``, ``1G`` or bytes), a whole number of clusters."""
    n = cli.parse_size(text)
    if n <= 0 or n % LEN_CLUSTER:
        raise argparse.ArgumentTypeError(f"{text}: an area is a non-zero multiple of {LEN_CLUSTER} bytes")
    return n


def _proc_field(path: str, key: str) -> int | None:
    """The number after ``key`` in a /proc file of this process (Linux), or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib() -> int:
    """This process's RSS high-water mark in KiB: ``VmHWM``, which starts afresh at exec (a child
    inherits ``ru_maxrss`` across fork and exec on Linux); ``ru_maxrss`` where there is no /proc."""
    kib = _proc_field("/proc/self/status", "VmHWM:")
    if kib is not None:
        return kib
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib // 1024 if sys.platform == "darwin" else kib  # bytes on macOS


def child(kind: str, paths: list[str]) -> None:
    """In a fresh interpreter: replay ``paths[0]`` or pack it into ``paths[1]``; print the RSS marks (KiB) as JSON."""
    spilled: list[bool] = []
    if kind == "pack":
        from qjournal import live

        real = live.LiveIndex._build

        def build(self: Any, *a: Any) -> None:
            real(self, *a)
            spilled.append(self.is_spilled)

        live.LiveIndex._build = build  # type: ignore[method-assign,assignment]
        baseline = peak_rss_kib()
        t0 = time.perf_counter()
        count = qjournal.pack(paths[0], paths[1]).num_live
    else:
        with qjournal.read(paths[0]) as j:
            baseline = peak_rss_kib()  # the interpreter, qjournal and an open journal
            t0 = time.perf_counter()
            count = consume(j.replay())
    seconds = time.perf_counter() - t0
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak_rss_kib(), "count": count, "seconds": seconds,
                      "spilled": bool(spilled and spilled[0])}))


def in_child(kind: str, *paths: Path) -> dict[str, Any]:
    """:func:`child` run in a fresh interpreter: its figures."""
    proc = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, paths)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout))


PUBLIC_COMPILED = "public API, compiled stream"
PUBLIC_PURE = "public API, pure stream"
CLI_GROUP = "command line (python -m qjournal, a fresh process)"
STARTUP_GROUP = "start-up (a fresh process)"


class Bench:
    """One benchmark run: builds the journals, measures, and collects :class:`Row`s and notes."""

    def __init__(self, sizes: list[int], *, repeat: int, budget: float, sync_count: int, workdir: Path,
                 say: Callable[[str], None], pack_sizes: tuple[int, ...] = DEFAULT_PACK_SIZES) -> None:
        self.sizes, self.pack_sizes, self.repeat, self.budget = sizes, pack_sizes, repeat, budget
        self.sync_count, self.workdir, self.say = sync_count, workdir, say
        self.rows: list[Row] = []
        self.notes: list[str] = []

    def timed(self, fns: dict[str, Run], repeat: int | None = None) -> dict[str, tuple[float, int, int]]:
        return timed_interleaved(fns, repeat or self.repeat, self.budget)

    def journal_file(self, name: str, len_area: int, fill: float = FILL) -> Path:
        path = self.workdir / name
        path.write_bytes(build_journal(len_area, fill))
        return path

    def ratio_rows(self, group: str, label: str, figures: dict[str, tuple[float, int, int]], ratio_to: str,
                   mib: float | None = None) -> None:
        """Rows of entries/s (and MiB/s of ``mib`` MiB), each with its ratio to the last figure, the baseline."""
        base_sec, base_n, _ = list(figures.values())[-1]
        self.rows += [Row(group, name, label, n, "entries/s", sec, runs, n / sec, None if mib is None else mib / sec,
                          (n / sec) / (base_n / base_sec), ratio_to) for name, (sec, n, runs) in figures.items()]

    @staticmethod
    def counting(decode: Callable[[bytes], Iterator[Fields]], data: bytes) -> Run:
        return lambda: consume(decode(data))

    def replay(self) -> None:
        compiled, construct = compiled_stream(), make_replay_construct()
        decoders = {PUBLIC_COMPILED: None if compiled is None else replay_public_with(compiled),
                    PUBLIC_PURE: replay_public_with(stream.PureClusterStream),
                    "generated parser, stock stream": replay_generated, CONSTRUCT: construct,
                    "hand-written struct decoder": replay_struct}  # the baseline last
        if construct is None:
            self.notes.append("construct is not installed (pip install 'qjournal[bench]'): no construct row")
        if compiled is None:
            self.notes.append("the compiled stream is not built (no C compiler or no Cython at install): no compiled row")
        present = {name: fn for name, fn in decoders.items() if fn is not None}
        for len_area in self.sizes:
            label = size_label(len_area)
            self.say(f"replay of {label}: building the journal, checking that the decoders agree, timing them in turns")
            data = bytes(build_journal(len_area))
            reference = checksum(replay_struct(data))
            for name, fn in present.items():
                if (got := checksum(fn(data))) != reference:
                    raise AssertionError(f"{name} disagrees with the hand-written decoder on {label}: {got} != {reference}")
            figures = self.timed({name: self.counting(fn, data) for name, fn in present.items()})
            self.ratio_rows("replay", label, figures, "hand-written", mib=len_area * FILL / MIB)

    def append(self) -> None:
        len_area = min(self.sizes[-1], 16 * MIB)
        label, num_clusters = size_label(len_area), len_area // LEN_CLUSTER
        entries = hash_entries(int(len_area * FILL) // LEN_SHA256_ENTRY)
        batches = [entries[i : i + BATCH] for i in range(0, len(entries), BATCH)]
        mem, packed = bytearray(), MinimalPacker(buf=bytearray(b"\xff" * len_area))
        with qjournal.create(mem, num_clusters) as w:
            for e in entries[:5000]:
                w.append(e)
                packed.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
            if mem[: w.ofs_tail] != packed.buf[: packed.pos]:  # type: ignore[index]
                raise AssertionError("the writer and the minimal packer wrote different bytes")

        def runs(target: Path | None, sync: bool, n_single: int, n_batches: int) -> dict[str, Run]:
            """The writer (single, batches) and the packer on a fresh area (in memory, or the file ``target``),
            each timing itself from after the area's creation to after its final sync."""
            def writer(batched: bool) -> Run:
                def go() -> tuple[int, float]:
                    where = bytearray() if target is None else target
                    with qjournal.create(where, num_clusters, force=target is not None, durable=sync) as w:
                        t0 = time.perf_counter()
                        if batched:
                            for b in batches[:n_batches]:
                                w.append_many(b)
                        else:
                            for e in entries[:n_single]:
                                w.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
                    return (sum(map(len, batches[:n_batches])) if batched else n_single), time.perf_counter() - t0
                return go

            def packer() -> tuple[int, float]:
                fd = None if target is None else os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
                try:
                    if fd is not None:
                        os.pwrite(fd, b"\xff" * len_area, 0)
                        os.fsync(fd)
                    p = MinimalPacker(buf=bytearray(b"\xff" * len_area) if fd is None else None, fd=fd, sync=sync)
                    t0 = time.perf_counter()
                    for e in entries[:n_single]:
                        p.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
                    if fd is not None and not sync:
                        os.fsync(fd)  # the writer's close syncs too
                    return n_single, time.perf_counter() - t0
                finally:
                    if fd is not None:
                        os.close(fd)

            return {"writer, single appends": writer(False), "writer, batches of 100": writer(True),
                    "minimal packer (baseline)": packer}

        self.say(f"append in memory, {label}")
        self.ratio_rows("append, in memory", label, self.timed(runs(None, False, len(entries), len(batches))), "packer")
        for sync, how in ((False, "no fsync"), (True, "with fsync")):
            self.say(f"append to a file, {how}")
            path = self.workdir / "append.qjournal"
            n_single, n_batches = (self.sync_count, max(1, self.sync_count // 10)) if sync else (
                min(len(entries), 20000), max(1, min(len(batches), 200)))
            self.ratio_rows(f"append to a file, {how}", label, self.timed(runs(path, sync, n_single, n_batches)), "packer")
            path.unlink()
        self.notes.append(
            "append to a file: each run creates the area first, outside the time measured; the time includes the "
            "final sync (the writer's close); with fsync the writer makes each batch durable three times (its commit "
            "order), the packer each entry once"
        )

    def open_for_append(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        for fill, what in ((1.0, "full"), (FILL, f"{FILL:.0%} full")):
            self.say(f"open a {what} {label} journal for append")
            path = self.journal_file("open.qjournal", len_area, fill)
            read: list[int] = []

            def run(path: Path = path, read: list[int] = read) -> int:
                before = _proc_field("/proc/self/io", "rchar:")
                with qjournal.open_for_append(path, durable=False) as w:
                    tail = w.ofs_tail
                after = _proc_field("/proc/self/io", "rchar:")
                if before is not None and after is not None:
                    read.append(after - before)
                return tail

            sec, _, runs = self.timed({"open": run})["open"]
            self.rows.append(Row(f"open for append, {what}", "validation by replay", label, 1, "opens/s", sec, runs,
                                 1 / sec, extra={"bytes_read": statistics.median(read) if read else None, "ms": sec * 1e3}))
            path.unlink()

    def memory(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        self.say(f"peak RSS of replaying {label} from a file, in a fresh process")
        path = self.journal_file("rss.qjournal", len_area)
        got = in_child("replay", path)
        path.unlink()
        self.rows.append(Row("memory", "replay from a file: peak RSS above baseline", label, got["count"], "MiB",
                             got["seconds"], 1, (got["peak_kib"] - got["baseline_kib"]) / 1024,
                             extra={"baseline_mib": got["baseline_kib"] / 1024, "peak_mib": got["peak_kib"] / 1024}))

    def startup(self) -> None:
        self.say("start-up: qjournal --version and info of a one-cluster journal, against python -c pass")
        path = self.workdir / "one.qjournal"
        with qjournal.create(path, 1) as w:
            w.append_hash(digest_of(0), 8, 0)
        script = Path(sys.executable).with_name("qjournal")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "qjournal"]
        for args, says in ((["--version"], "qjournal "), (["info", str(path)], "entries: 1 (hash: 1)")):
            done = subprocess.run([*command, *args], capture_output=True, text=True, check=True)
            if says not in done.stdout:  # each answers right before it is timed
                raise AssertionError(f"qjournal {' '.join(args)} said {done.stdout!r}")

        def run(argv: list[str]) -> Run:
            def go() -> int:
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                return 1
            return go

        figures = self.timed({"qjournal --version": run([*command, "--version"]),
                              "qjournal info, one cluster": run([*command, "info", str(path)]),
                              "python -c pass (same venv)": run([sys.executable, "-c", "pass"])}, max(self.repeat, 11))
        base = figures["python -c pass (same venv)"][0]
        for name, (sec, n, runs) in figures.items():
            self.rows.append(Row(STARTUP_GROUP, name, "1 cluster", n, "runs/s", sec, runs, 1 / sec, None, sec / base,
                                 "python time", extra={"ms": sec * 1e3}))
        self.notes.append(f"start-up: wall time of a fresh process ({' '.join(Path(c).name for c in command)}), median "
                          "of the runs; ratio = its time over python -c pass's (lower is better)")
        path.unlink()

    def cli(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        self.say(f"check and dump --output jsonl of {label} through the command line")
        path = self.journal_file("cli.qjournal", len_area)
        n = qjournal.read(path).state(jobs=1).num_entries
        env = {**os.environ, "PYTHONPATH": str(Path(qjournal.__file__).resolve().parents[1])}  # this qjournal

        def run(*args: str) -> Run:
            def go() -> tuple[int, float]:
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "qjournal", *args], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, env=env, check=False)
                if proc.returncode != 0:
                    raise AssertionError(f"qjournal {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
                return n, time.perf_counter() - t0
            return go

        figures = self.timed({"qjournal check": run("check", str(path)),
                              "qjournal dump --output jsonl": run("dump", str(path), "--output", "jsonl")})
        check_sec = figures["qjournal check"][0]
        for name, (sec, count, runs) in figures.items():
            self.rows.append(Row(CLI_GROUP, name, label, count, "entries/s", sec, runs, count / sec,
                                 len_area * FILL / MIB / sec, sec / check_sec, "check time",
                                 extra={"ms": sec * 1e3, "entries_per_s": round(count / sec)}))
        self.notes.append(
            "command line: wall time of a fresh `python -m qjournal` process, start-up included; `check` uses the "
            "worker processes by default; `dump --output jsonl` formats each cluster's parsed entries with "
            "qjournal.entries.json_join_parsed, the same bytes as qjournal.entries.json_join (the formatting row below "
            "times json_join alone); ratio = its time over check's (lower is better)"
        )
        path.unlink()

    def json_lines(self) -> None:
        len_area = min(self.sizes[-1], 16 * MIB)
        label = size_label(len_area)
        self.say(f"JSON lines of the entries of {label}")
        entries = list(qjournal.read(bytes(build_journal(len_area))))
        encoder = json.JSONEncoder(separators=(", ", ": "))
        if json_join(entries) != "\n".join(encoder.encode(e.to_dict()) for e in entries):
            raise AssertionError("json_join disagrees with the encoder")
        per = LEN_CLUSTER // LEN_SHA256_ENTRY  # both build every line's text, a cluster at a time, as dump does
        chunks = [entries[i : i + per] for i in range(0, len(entries), per)]

        def joined() -> int:
            for c in chunks:
                json_join(c)
            return len(entries)

        def encoded() -> int:
            for c in chunks:
                "\n".join([encoder.encode(e.to_dict()) for e in c])
            return len(entries)

        figures = self.timed({"entries.json_join, per cluster": joined,
                              "JSONEncoder().encode(entry.to_dict()) (before)": encoded})
        self.ratio_rows("JSON lines (formatting only)", label, figures, "encoder")

    def jobs(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        self.say(f"check of {label} with 1 and 2 worker processes")
        path = self.journal_file("jobs.qjournal", len_area)
        load_before = os.getloadavg()[0]

        def run(jobs: int) -> Run:
            def go() -> int:
                with qjournal.read(path) as r:
                    return r.check(jobs=jobs).state.num_entries  # type: ignore[union-attr]
            return go

        figures = self.timed({"check, 2 worker processes": run(2), "check, 1 (no worker)": run(1)})
        parallel_ = len_area >= parallel.PARALLEL_MIN_BYTES
        self.ratio_rows("check, worker processes", label, figures, "1 worker", mib=len_area * FILL / MIB)
        self.rows[-2].extra.update({"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                                    "usable_cores": parallel.default_jobs(),
                                    "threshold_mib": parallel.PARALLEL_MIN_BYTES / MIB,
                                    "parallel": "yes" if parallel_ else "no (under the threshold)"})
        if not parallel_:
            self.notes.append(f"check with workers: {label} is under the threshold "
                              f"({size_label(parallel.PARALLEL_MIN_BYTES)}), so both rows are serial")
        path.unlink()

    def pack(self) -> None:
        for len_area in self.pack_sizes:
            label = size_label(len_area)
            self.say(f"peak RSS of pack of a {label} journal of unique digests, in a fresh process (1 GiB takes a while)")
            path, out = self.journal_file("pack-src.qjournal", len_area), self.workdir / "pack-out.qjournal"
            got = in_child("pack", path, out)
            path.unlink()
            out.unlink()
            self.rows.append(Row("pack, memory", "pack from a file: peak RSS", label, got["count"], "MiB", got["seconds"],
                                 1, got["peak_kib"] / 1024,
                                 extra={"baseline_mib": got["baseline_kib"] / 1024,
                                        "spilled": "yes" if got["spilled"] else "no", "seconds": round(got["seconds"], 1)}))


# -- the targets and the report -------------------------------------------------

AT_LEAST = (  # (target, group, row, least ratio to the group's baseline row)
    ("replay: public API, compiled stream >= 0.35x the hand-written decoder", "replay", PUBLIC_COMPILED, 0.35),
    ("replay: public API, pure stream >= 0.25x the hand-written decoder", "replay", PUBLIC_PURE, 0.25),
    ("append in memory: single appends >= 0.5x the minimal packer", "append, in memory", "writer, single appends", 0.5),
    ("JSON lines: json_join >= 2x the encoder of to_dict()", "JSON lines (formatting only)", "entries.json_join, per cluster", 2.0),
    ("check: 2 worker processes >= 1.6x 1", "check, worker processes", "check, 2 worker processes", 1.6),
)
STARTUP_MAX = 5.0
"""``qjournal --version`` and ``info`` of a one-cluster journal: at most 5x the time of ``python -c pass``."""
DUMP_OVER_CHECK_MAX = 1.8
"""``dump --output jsonl``: at most 1.8x the time of ``check`` of the same journal."""
PACK_RSS_MAX = {64 * MIB: 160}
"""Peak RSS (MiB) of pack by journal size (64 MiB of unique SHA-256 entries: about 1.2 million digests); else 512."""


def evaluate_targets(rows: list[Row]) -> list[dict[str, Any]]:
    """Each target with the figure that decides it, per area where it applies."""
    out: list[dict[str, Any]] = []

    def add(text: str, r: Row, value: float, met: bool | None, note: str | None = None) -> None:
        out.append({"target": text, "area": r.area, "value": round(value, 3), "met": met, **({"note": note} if note else {})})

    for text, group, name, least in AT_LEAST:
        for r in rows:
            if (r.group, r.name) == (group, name) and r.ratio is not None:
                if r.extra.get("parallel", "yes") != "yes":
                    add(text, r, r.ratio, None, "not applicable: the area is under the threshold, both rows are serial")
                else:
                    load = r.extra.get("load_before")
                    add(text, r, r.ratio, r.ratio >= least,
                        None if load is None else f"load average {load} before, {r.extra['load_after']} after")
    by = {(r.group, r.name, r.area): r for r in rows}
    for r in rows:
        c = by.get(("replay", CONSTRUCT, r.area))
        if r.group == "replay" and r.name in (PUBLIC_COMPILED, PUBLIC_PURE) and c is not None:
            add(f"replay: {r.name} >= 4x construct", r, r.rate / c.rate, r.rate / c.rate >= 4)
        if r.group == "memory":
            add("replay: peak RSS < 64 MiB above baseline", r, r.rate, r.rate < 64)
        if r.group == STARTUP_GROUP and r.name.startswith("qjournal") and r.ratio is not None:
            add(f"start-up: {r.name} <= {STARTUP_MAX:g}x python -c pass", r, r.ratio, r.ratio <= STARTUP_MAX)
        if r.group == CLI_GROUP and r.name == "qjournal dump --output jsonl" and r.ratio is not None:
            add(f"dump --output jsonl <= {DUMP_OVER_CHECK_MAX:g}x the time of check", r, r.ratio,
                r.ratio <= DUMP_OVER_CHECK_MAX)
        if r.group == "pack, memory":
            limit = next((v for k, v in PACK_RSS_MAX.items() if size_label(k) == r.area), 512)
            what = f"{r.count:,} distinct digests" if limit != 512 else "a large journal"
            add(f"pack of {what}: peak RSS < {limit} MiB", r, r.rate, r.rate < limit)
    return out


def fmt_rate(r: Row) -> str:
    if r.unit == "MiB":
        return f"{r.rate:,.2f} MiB"
    if r.unit == "opens/s" or "ms" in r.extra:
        return f"{r.seconds * 1e3:,.2f} ms"
    return f"{r.rate:,.0f}/s"


def render(rows: list[Row], targets: list[dict[str, Any]], header: str, notes: list[str]) -> str:
    """The table, then the targets, then the notes."""
    lines = [header, ""]
    cols = f"{'measurement':<44} {'area':>8} {'count':>10} {'rate / time':>14} {'MiB/s':>8} {'ratio':>18} {'runs':>4}"
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            lines += ["", f"== {group}", cols]
        ratio = f"{r.ratio:.2f}x {r.ratio_to}" if r.ratio is not None else ""
        mibs = f"{r.mib_per_s:,.1f}" if r.mib_per_s is not None else ""
        lines.append(f"{r.name:<44} {r.area:>8} {r.count:>10,} {fmt_rate(r):>14} {mibs:>8} {ratio:>18} {r.runs:>4}")
        extra = {k: v for k, v in r.extra.items() if v is not None and k != "ms"}
        if extra:
            lines.append("    " + ", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v:,}" if isinstance(v, int)
                                            else f"{k}={v}" for k, v in extra.items()))
    lines += ["", "== targets"]
    for t in targets:
        note = f" ({t['note']})" if t.get("note") else ""
        verdict = "n/a    " if t["met"] is None else "met    " if t["met"] else "NOT met"
        lines.append(f"{verdict} {t['target']:<70} {t['area']:>8}: {t['value']}{note}")
    if notes:
        lines += ["", "notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "kaitaistruct": ver("kaitaistruct"),
            "construct": ver("construct"), "qjournal": ver("qjournal"), "stream": stream.implementation(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def profile_replay(len_area: int, top: int) -> str:
    """cProfile of the public API replay of one journal: the hot path, by own time."""
    data = bytes(build_journal(len_area))
    prof = cProfile.Profile()
    prof.runcall(consume, replay_public(data))
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


PARTS = ("replay", "append", "open", "memory", "startup", "cli", "json", "jobs", "pack")
"""The parts of a run, in order."""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write JSON if asked."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.split("\n\n")[0])
    sizes_of = lambda s: [parse_size(x) for x in s.split(",")]  # noqa: E731
    ap.add_argument("--sizes", type=sizes_of, default=list(DEFAULT_SIZES), help="area sizes, comma-separated (default 1M,16M,256M)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is shown (default 5)")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds after which a figure takes no more runs (at least one; default 60)")
    ap.add_argument("--sync-count", type=int, default=200, help="single appends timed with fsync (default 200)")
    ap.add_argument("--pack-size", type=sizes_of, default=list(DEFAULT_PACK_SIZES),
                    help="the journals of unique digests whose pack's peak RSS is measured, comma-separated "
                    "(default 64M,1G; 64M is about 1.2 million distinct digests)")
    ap.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of the public API replay (16 MiB or the largest size below)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--child", nargs="+", metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1:])
        return 0
    if args.repeat < 1 or args.sync_count < 1:
        ap.error("--repeat and --sync-count take a positive number")
    sizes = sorted(set(args.sizes))

    def say(text: str) -> None:
        if not args.quiet:
            print(f"bench: {text}", file=sys.stderr, flush=True)

    env = environment()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qjournal-bench-") as tmp:
        bench = Bench(sizes, repeat=args.repeat, budget=args.budget, sync_count=args.sync_count, workdir=Path(tmp),
                      say=say, pack_sizes=tuple(args.pack_size))
        for part in PARTS:
            if part in (args.only or PARTS):
                getattr(bench, {"open": "open_for_append", "json": "json_lines"}.get(part, part))()
    targets = evaluate_targets(bench.rows)
    header = (f"qjournal benchmark: Python {env['python']} ({env['machine']}, {env['cpus']} CPUs), "
              f"kaitaistruct {env['kaitaistruct']}, construct {env['construct']}; {env['stream']}; "
              f"load average at the start {env['load_average'][0]}, at the end {os.getloadavg()[0]:.2f}; "
              f"SHA-256 HASH entries, areas {FILL:.0%} full; medians of up to {args.repeat} runs "
              f"({time.perf_counter() - t0:.0f} s in all)")
    print(render(bench.rows, targets, header, bench.notes))
    if args.profile:
        small = [s for s in sizes if s <= 16 * MIB] or sizes[:1]
        print(f"\n== cProfile of the public API replay, {size_label(small[-1])} (own time)")
        print(profile_replay(small[-1], 15))
    if args.json:
        doc = {"environment": env, "settings": {"sizes": sizes, "repeat": args.repeat, "budget": args.budget,
                                                "fill": FILL, "sync_count": args.sync_count},
               "rows": [asdict(r) for r in bench.rows], "targets": targets}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
