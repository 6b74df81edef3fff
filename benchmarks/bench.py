"""``python benchmarks/bench.py``: replay, append and open-for-append figures in one table.

The benchmark lives outside the installed package, as msgpack's and h11's do; it
imports the package (run it from the repository, after ``pip install -e .``).

Builds journals of realistic shape (SHA-256 HASH entries, areas filled to 90%)
and measures, each figure the median of several runs:

- replay through the public API, through the bare generated parser (the stock
  Kaitai runtime stream, one cluster at a time), through a hand-written
  ``struct`` decoder that checks the same rules and yields the same fields (the
  pure-Python ceiling), and through a construct parser of the same format (a
  benchmark-only dependency: ``pip install 'qjournal[bench]'``);
- appends: single, atomic batches of 100, and a hand-written minimal packer,
  in memory and to a file with and without fsync;
- opening a full and a 90% full journal for append (validation by replay):
  time and bytes read;
- the peak RSS of replaying the largest area from a file, in a fresh process;
- (issue 13) replay with the compiled and the pure stream side by side; ``check``
  and ``dump --output jsonl`` through the command line (``python -m qjournal``,
  a subprocess) on the largest area; the JSON-lines formatting function against
  the encoder; ``check`` with 1 and 2 worker processes; the peak RSS of ``pack``
  of journals of unique digests (``--pack-size``, default 64 MiB and 1 GiB), in a
  fresh process;
- start-up: ``qjournal --version`` and ``qjournal info`` of a
  one-cluster journal against ``python -c pass`` in the same venv, and the
  time of ``dump --output jsonl`` over that of ``check`` of the same journal.

Every decoder's output is compared before anything is timed: a benchmark of a
wrong answer fails. ``--json FILE`` writes the figures for comparing runs.
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
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import qjournal
from qjournal import cli, cluster, parallel, stream
from qjournal.entries import HashEntry, json_join
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HASH_SECTORS,
    LEN_HEADER,
    LEN_SHA256_DIGEST,
    TYPE_END,
    TYPE_HASH,
    TYPE_NONE,
    place,
)
from qjournal.generated.qcow2_journal import Qcow2Journal

MIB = 1 << 20
FILL = 0.9
"""Areas are filled to 90% of their bytes, as the issue asks."""
DEFAULT_SIZES = (1 * MIB, 16 * MIB, 256 * MIB)
DEFAULT_PACK_SIZE = (64 * MIB, 1024 * MIB)
PACK_RSS_TARGETS = {64 * MIB: 160}
"""Peak RSS targets (MiB) of pack by journal size: 64 MiB of unique SHA-256 entries is about 1.2 million distinct
digests; any other size: < 512 MiB."""
ROOT = Path(__file__).resolve().parents[1]
BATCH = 100

LEN_SHA256_ENTRY = LEN_HEADER + LEN_SHA256_DIGEST + LEN_HASH_SECTORS
"""A SHA-256 HASH entry: 50 bytes (D8)."""
_U8U8 = struct.Struct(">QQ").unpack_from


# -- the journals --------------------------------------------------------------


def digest_of(i: int) -> bytes:
    """A SHA-256 digest, distinct per index (the shape of a real journal's digests)."""
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def hash_entries(count: int, start: int = 0) -> list[HashEntry]:
    """``count`` SHA-256 HASH entries: cluster i at physical sector 8*i, logical sectors scattered."""
    return [HashEntry(digest_of(i), 8 * i, (i * 2654435761 % (1 << 32)) * 8) for i in range(start, start + count)]


def build_journal(len_area: int, fill: float = FILL) -> bytearray:
    """An in-memory journal of ``len_area`` bytes, appended to until ``fill`` of it is used.

    ``fill=1`` appends until the journal refuses a SHA-256 entry (full for that size).
    """
    buf = bytearray()
    with qjournal.create(buf, len_area // LEN_CLUSTER) as w:
        i = 0
        goal = int(len_area * fill)
        while w.ofs_tail < goal:
            try:
                w.append_hash(digest_of(i), 8 * i, i)
            except qjournal.JournalFullError:
                break
            i += 1
    return buf


# -- the four decoders ---------------------------------------------------------
# Each yields, for a HASH entry, (digest, physical_sector, first_logical_sector, ofs)
# and for any other replayed entry (type_code, body, ofs): the same fields.


def replay_public(data: bytes) -> Iterator[tuple]:
    """The public API: ``qjournal.read(data)`` (HashEntry and RawEntry are tuples), with the stream in use."""
    return iter(qjournal.read(data))


def _compiled_stream() -> type | None:
    try:
        from qjournal._cstream import ClusterStream
    except ImportError:
        return None
    return ClusterStream


def replay_public_with(stream_class: type) -> Callable[[bytes], Iterator[tuple]]:
    """The public API with the given stream class (compiled or pure) in place of the one in use."""

    def replay(data: bytes) -> Iterator[tuple]:
        saved = cluster.ClusterStream
        cluster.ClusterStream = stream_class  # type: ignore[misc]
        try:
            yield from qjournal.read(data)
        finally:
            cluster.ClusterStream = saved  # type: ignore[misc]

    return replay


PUBLIC_COMPILED = "public API, compiled stream"
PUBLIC_PURE = "public API, pure stream"


def replay_generated(data: bytes) -> Iterator[tuple]:
    """The bare generated parser, as its own docs use it: ``Cluster.from_bytes``, stock runtime stream."""
    from_bytes = Qcow2Journal.Cluster.from_bytes
    for base in range(0, len(data), LEN_CLUSTER):
        if not (yield from cluster_fields(from_bytes(data[base : base + LEN_CLUSTER]).entries, base)):
            return


def cluster_fields(entries: Iterable[Any], ofs: int) -> Generator[tuple, None, bool]:
    """Yield the fields of one cluster's parsed entries (objects with the .ksy's field names).

    Returns True when an END closed the cluster (replay goes on), False at NONE.
    """
    for e in entries:
        code = e.type_code
        if code == TYPE_HASH:
            yield (e.digest, e.physical_sector, e.first_logical_sector, ofs)
        elif code == TYPE_END:
            return True
        elif code == TYPE_NONE:
            return False
        else:
            yield (code, e.body, ofs)
        ofs += e.len_entry
    return False


class DecodeError(ValueError):
    """The hand-written decoder met an entry that breaks D3/D5/D8."""


def replay_struct(data: bytes) -> Iterator[tuple]:
    """A hand-written decoder: D7 replay with the .ksy's checks (D3, D5, D8), ``struct`` for the sectors."""
    for base in range(0, len(data), LEN_CLUSTER):
        c = data[base : base + LEN_CLUSTER]
        o = 0
        while True:
            size = c[o]
            code = c[o + 1]
            room = LEN_CLUSTER - o
            if size < 2:
                raise DecodeError(f"size {size} at {base + o}")
            if code == TYPE_HASH:
                if not 19 <= size <= 254 or size > room - 2:
                    raise DecodeError(f"HASH of size {size} at {base + o}")
                end = o + size
                phys, logical = _U8U8(c, end - 16)
                yield (c[o + 2 : end - 16], phys, logical, base + o)
            elif code == TYPE_END:
                if size != room:
                    raise DecodeError(f"END of size {size} at {base + o}")
                break
            elif code == TYPE_NONE:
                return
            else:
                if size > 254 or size > room - 2:
                    raise DecodeError(f"entry of size {size} at {base + o}")
                yield (code, c[o + 2 : o + size], base + o)
            o += size


def construct_cluster() -> Any:
    """The format in construct (2.10): an entry list per cluster, with the .ksy's checks."""
    from construct import Bytes, Check, If, Int8ub, Int64ub, RepeatUntil, Struct, Tell, this

    def valid(c: Any) -> bool:
        size, code, room = c.len_entry, c.type_code, LEN_CLUSTER - c.pos + 2
        if code == TYPE_HASH:
            return 19 <= size <= 254 and size <= room - 2
        if code == TYPE_NONE:
            return True
        if code == TYPE_END:
            return size == room
        return size <= 254 and size <= room - 2

    entry = Struct(
        "len_entry" / Int8ub,
        Check(this.len_entry >= 2),
        "type_code" / Int8ub,
        "pos" / Tell,
        Check(valid),
        "digest" / If(this.type_code == TYPE_HASH, Bytes(this.len_entry - 18)),
        "physical_sector" / If(this.type_code == TYPE_HASH, Int64ub),
        "first_logical_sector" / If(this.type_code == TYPE_HASH, Int64ub),
        "body" / If(lambda c: c.type_code not in (TYPE_HASH, TYPE_NONE), Bytes(this.len_entry - 2)),
    )
    return RepeatUntil(lambda obj, lst, ctx: obj.type_code in (TYPE_END, TYPE_NONE), entry)


def make_replay_construct() -> Callable[[bytes], Iterator[tuple]] | None:
    """The construct decoder, or None when construct is not installed."""
    try:
        cluster = construct_cluster()
    except ImportError:
        return None
    parse = cluster.parse

    def replay_construct(data: bytes) -> Iterator[tuple]:
        for base in range(0, len(data), LEN_CLUSTER):
            if not (yield from cluster_fields(parse(data[base : base + LEN_CLUSTER]), base)):
                return

    return replay_construct


# -- the append baselines ------------------------------------------------------


class MinimalPacker:
    """The least a writer can do: pack each HASH entry at the tail, END when it does not fit (D6).

    No argument checks, no write order, no lock: the baseline the writer is measured against.
    It writes into a bytearray, or with one ``pwrite`` per entry (two with an END) into the
    file ``fd``, and fsyncs after each entry when ``sync``.
    """

    def __init__(self, buf: bytearray | None = None, fd: int | None = None, sync: bool = False) -> None:
        self.buf, self.fd, self.sync = buf, fd, sync
        self.pos = 0

    def _write(self, pos: int, data: bytes) -> None:
        if self.buf is not None:
            self.buf[pos : pos + len(data)] = data
        else:
            os.pwrite(self.fd, data, pos)  # type: ignore[arg-type]

    def append_hash(self, digest: bytes, physical_sector: int, first_logical_sector: int) -> int:
        size = len(digest) + LEN_HASH_SECTORS + LEN_HEADER
        pos = self.pos
        at = place(pos, size)
        if at != pos:
            self._write(pos, bytes((at - pos, TYPE_END)))
        self._write(at, struct.pack(f">BB{len(digest)}sQQ", size, TYPE_HASH, digest, physical_sector, first_logical_sector))
        if self.sync:
            os.fsync(self.fd)  # type: ignore[arg-type]
        self.pos = at + size
        return at


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
    """Median seconds of each run over up to ``repeat`` runs, run in turns (a, b, c, a, b, c, ...).

    A run stops being repeated once it has spent ``budget`` seconds (it runs at
    least once). Figures compared as ratios are measured in turns, so a slow
    phase of the machine (another process, a frequency change) falls on all of
    them alike. Returns {name: (median seconds, count, runs)}.
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


def timed(fn: Run, repeat: int, budget: float) -> tuple[float, int, int]:
    """:func:`timed_interleaved` for one run: (median seconds, count, runs)."""
    return timed_interleaved({"run": fn}, repeat, budget)["run"]


def consume(it: Iterable[Any]) -> int:
    """Count what an iterator yields (every decoder yields materialised fields)."""
    n = 0
    for _ in it:
        n += 1
    return n


def checksum(it: Iterable[tuple]) -> tuple[int, int, int]:
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
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    return f"{n // 1024} KiB"


def parse_size(text: str) -> int:
    """An area size as the command line reads one (``64K``, ``16M``, ``1G`` or bytes), a whole number of clusters."""
    n = cli.parse_size(text)
    if n <= 0 or n % LEN_CLUSTER:
        raise argparse.ArgumentTypeError(f"{text}: an area is a non-zero multiple of {LEN_CLUSTER} bytes")
    return n


def read_bytes_of_process() -> int | None:
    """Bytes this process has read through read(2) and friends (Linux /proc/self/io), or None."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Bench:
    """One benchmark run: builds the journals, measures, and collects :class:`Row`s."""

    def __init__(self, sizes: list[int], *, repeat: int, budget: float, sync_count: int, workdir: Path,
                 say: Callable[[str], None], pack_size: tuple[int, ...] = DEFAULT_PACK_SIZE) -> None:
        self.sizes = sizes
        self.pack_size = pack_size
        self.repeat = repeat
        self.budget = budget
        self.sync_count = sync_count
        self.workdir = workdir
        self.say = say
        self.rows: list[Row] = []
        self.notes: list[str] = []

    # -- replay
    def replay(self) -> None:
        construct_replay = make_replay_construct()
        compiled = _compiled_stream()
        decoders: list[tuple[str, Callable[[bytes], Iterator[tuple]] | None]] = [
            (PUBLIC_COMPILED, None if compiled is None else replay_public_with(compiled)),
            (PUBLIC_PURE, replay_public_with(stream.PureClusterStream)),
            ("generated parser, stock stream", replay_generated),
            ("hand-written struct decoder", replay_struct),
            ("construct 2.10", construct_replay),
        ]
        if construct_replay is None:
            self.notes.append("construct is not installed (pip install 'qjournal[bench]'): no construct row")
        if compiled is None:
            self.notes.append("the compiled stream is not built (no C compiler or no Cython at install): no compiled row")
        for len_area in self.sizes:
            label = size_label(len_area)
            self.say(f"building a {label} journal, {FILL:.0%} full")
            data = bytes(build_journal(len_area))
            # Every decoder must give the same answer before any is timed.
            self.say(f"replay {label}: checking that the decoders agree")
            reference = checksum(replay_struct(data))
            present = {name: fn for name, fn in decoders if fn is not None}
            for name, fn in present.items():
                got = checksum(fn(data))
                if got != reference:
                    raise AssertionError(f"{name} disagrees with the hand-written decoder on {label}: {got} != {reference}")
            self.say(f"replay {label}: timing {len(present)} decoders, in turns")
            figures = timed_interleaved({name: (lambda fn=fn, data=data: consume(fn(data))) for name, fn in present.items()},
                                        self.repeat, self.budget)
            figures["hand-written struct decoder"] = figures.pop("hand-written struct decoder")  # the baseline last
            self.rows += self._ratio_rows("replay", label, figures, "hand-written", mib=len_area * FILL / MIB)
            del data

    @staticmethod
    def _ratio_rows(group: str, label: str, figures: dict[str, tuple[float, int, int]], ratio_to: str,
                    mib: float | None = None) -> list[Row]:
        """Rows of entries/s (and MiB/s for ``mib`` MiB), each with its ratio to the last figure, the baseline."""
        base_sec, base_n, _ = list(figures.values())[-1]
        return [Row(group, name, label, n, "entries/s", sec, runs, n / sec, None if mib is None else mib / sec,
                    (n / sec) / (base_n / base_sec), ratio_to) for name, (sec, n, runs) in figures.items()]

    # -- append
    def append(self) -> None:
        len_area = min(self.sizes[-1], 16 * MIB)
        label = size_label(len_area)
        num_clusters = len_area // LEN_CLUSTER
        count = int(len_area * FILL) // LEN_SHA256_ENTRY
        entries = hash_entries(count)
        batches = [entries[i : i + BATCH] for i in range(0, count, BATCH)]

        def writer_single() -> int:
            with qjournal.create(bytearray(), num_clusters) as w:
                append = w.append_hash
                for e in entries:
                    append(e.digest, e.physical_sector, e.first_logical_sector)
            return count

        def writer_batches() -> int:
            with qjournal.create(bytearray(), num_clusters) as w:
                for b in batches:
                    w.append_many(b)
            return count

        def packer() -> int:
            p = MinimalPacker(buf=bytearray(b"\xff" * len_area))
            append = p.append_hash
            for e in entries:
                append(e.digest, e.physical_sector, e.first_logical_sector)
            return count

        self.say(f"append in memory, {label}")
        figures = timed_interleaved({"writer, single appends": writer_single, "writer, batches of 100": writer_batches,
                                     "minimal packer (baseline)": packer}, self.repeat, self.budget)
        self.rows += self._ratio_rows("append, in memory", label, figures, "packer")
        # The writer in memory writes the same bytes as the packer: check it once.
        mem = bytearray()
        with qjournal.create(mem, num_clusters) as w:
            for e in entries[:5000]:
                w.append(e)
            ours = bytes(mem[: w.ofs_tail])
        p = MinimalPacker(buf=bytearray(b"\xff" * len_area))
        for e in entries[:5000]:
            p.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
        if p.buf is None or ours != bytes(p.buf[: p.pos]):
            raise AssertionError("the writer and the minimal packer wrote different bytes")

        for sync in (False, True):
            n_single = self.sync_count if sync else min(count, 20000)
            n_batches = max(1, self.sync_count // 10) if sync else max(1, min(len(batches), 200))
            how = "with fsync" if sync else "no fsync"
            self.say(f"append to a file, {how}")
            path = self.workdir / f"append-{'sync' if sync else 'nosync'}.qjournal"

            # Each run creates a fresh area first, outside the time measured; closing
            # (the writer's last sync) is inside it, as a writer's user pays it.
            def file_single(path: Path = path, sync: bool = sync, n_single: int = n_single) -> tuple[int, float]:
                with qjournal.create(path, num_clusters, force=True, durable=sync) as w:
                    t0 = time.perf_counter()
                    for e in entries[:n_single]:
                        w.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
                return n_single, time.perf_counter() - t0

            def file_batches(path: Path = path, sync: bool = sync, n_batches: int = n_batches) -> tuple[int, float]:
                with qjournal.create(path, num_clusters, force=True, durable=sync) as w:
                    t0 = time.perf_counter()
                    for b in batches[:n_batches]:
                        w.append_many(b)
                return n_batches * BATCH, time.perf_counter() - t0

            def file_packer(path: Path = path, sync: bool = sync, n_single: int = n_single) -> tuple[int, float]:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
                try:
                    os.pwrite(fd, b"\xff" * len_area, 0)
                    os.fsync(fd)
                    p = MinimalPacker(fd=fd, sync=sync)
                    t0 = time.perf_counter()
                    for e in entries[:n_single]:
                        p.append_hash(e.digest, e.physical_sector, e.first_logical_sector)
                    if not sync:
                        os.fsync(fd)  # the writer's close syncs too
                    return n_single, time.perf_counter() - t0
                finally:
                    os.close(fd)

            figures = timed_interleaved({"writer, single appends": file_single, "writer, batches of 100": file_batches,
                                         "minimal packer (baseline)": file_packer}, self.repeat, self.budget)
            self.rows += self._ratio_rows(f"append to a file, {how}", label, figures, "packer")
            path.unlink()
        self.notes.append(
            "append to a file: each run creates the area first, outside the time measured; the time includes the "
            "final sync (the writer's close); with fsync the writer makes each batch durable three times (its commit "
            "order), the packer each entry once"
        )

    # -- open for append
    def open_for_append(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        for fill, what in ((1.0, "full"), (FILL, f"{FILL:.0%} full")):
            self.say(f"open a {what} {label} journal for append")
            path = self.workdir / f"open-{what.split()[0]}.qjournal"
            path.write_bytes(build_journal(len_area, fill))
            rchar: list[int] = []

            def run(path: Path = path, rchar: list[int] = rchar) -> int:
                before = read_bytes_of_process()
                with qjournal.open_for_append(path, durable=False) as w:
                    tail = w.ofs_tail
                after = read_bytes_of_process()
                if before is not None and after is not None:
                    rchar.append(after - before)
                return tail

            sec, _tail, runs = timed(run, self.repeat, self.budget)
            read = statistics.median(rchar) if rchar else None
            self.rows.append(Row(f"open for append, {what}", "validation by replay", label, 1, "opens/s",
                                 sec, runs, 1 / sec, extra={"bytes_read": read, "ms": sec * 1e3}))
            path.unlink()

    # -- the command line (issue 13)
    def _cli(self, args: list[str], stdout: Any = subprocess.DEVNULL) -> float:
        """Wall time of ``python -m qjournal ARGS`` in a fresh process, the qjournal this benchmark imports."""
        env = {**os.environ, "PYTHONPATH": str(Path(qjournal.__file__).resolve().parents[1])}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "qjournal", *args], stdout=stdout, stderr=subprocess.PIPE, env=env,
                              check=False)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise AssertionError(f"qjournal {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
        return dt

    def startup(self) -> None:
        """Start-up: ``qjournal --version`` and ``qjournal info`` of a one-cluster journal against ``python -c pass``."""
        self.say("start-up: qjournal --version and info of a one-cluster journal, against python -c pass")
        path = self.workdir / "one.qjournal"
        with qjournal.create(path, 1) as w:
            w.append_hash(digest_of(0), 8, 0)
        script = Path(sys.executable).with_name("qjournal")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "qjournal"]
        for args in (["--version"], ["info", str(path)]):  # each answers before it is timed
            done = subprocess.run([*command, *args], capture_output=True, text=True, check=True)
            if not (done.stdout.startswith("qjournal ") if args == ["--version"] else "entries: 1 (hash: 1)" in done.stdout):
                raise AssertionError(f"qjournal {' '.join(args)} said {done.stdout!r}")

        def run(argv: list[str]) -> Run:
            def go() -> int:
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                return 1
            return go

        figures = timed_interleaved({
            "qjournal --version": run([*command, "--version"]),
            "qjournal info, one cluster": run([*command, "info", str(path)]),
            "python -c pass (same venv)": run([sys.executable, "-c", "pass"]),
        }, max(self.repeat, 11), self.budget)
        base = figures["python -c pass (same venv)"][0]
        for name, (sec, n, runs) in figures.items():
            self.rows.append(Row(STARTUP_GROUP, name, "1 cluster", n, "runs/s", sec, runs, 1 / sec, None, sec / base,
                                 "python time", extra={"ms": sec * 1e3}))
        self.notes.append(f"start-up: wall time of a fresh process ({' '.join(Path(c).name for c in command)}), median of "
                          "the runs; ratio = its time over python -c pass's (lower is better)")
        path.unlink()

    def cli(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        self.say(f"check and dump --output jsonl of {label} through the command line")
        path = self.workdir / "cli.qjournal"
        path.write_bytes(build_journal(len_area))
        n = qjournal.read(path).state(jobs=1).num_entries
        figures = timed_interleaved({
            "qjournal check": lambda: (n, self._cli(["check", str(path)])),
            "qjournal dump --output jsonl": lambda: (n, self._cli(["dump", str(path), "--output", "jsonl"])),
        }, self.repeat, self.budget)
        check_sec = figures["qjournal check"][0]
        for name, (sec, count, runs) in figures.items():
            self.rows.append(Row(CLI_GROUP, name, label, count, "entries/s",
                                 sec, runs, count / sec, len_area * FILL / MIB / sec,
                                 sec / check_sec, "check time",
                                 extra={"ms": sec * 1e3, "entries_per_s": round(count / sec)}))
        self.notes.append(
            "command line: wall time of a fresh `python -m qjournal` process, start-up included; `check` uses the "
            "worker processes by default; `dump --output jsonl` formats each cluster's parsed entries with "
            "qjournal.entries.json_join_parsed, the same bytes as qjournal.entries.json_join (the formatting row below "
            "times json_join alone); ratio = its time over check's (lower is better)"
        )
        path.unlink()

    # -- JSON lines (issue 13)
    def json_lines(self) -> None:
        len_area = min(self.sizes[-1], 16 * MIB)
        label = size_label(len_area)
        self.say(f"JSON lines of the entries of {label}")
        entries = list(qjournal.read(bytes(build_journal(len_area))))
        encoder = json.JSONEncoder(separators=(", ", ": "))
        want = [encoder.encode(e.to_dict()) for e in entries]
        if json_join(entries) != "\n".join(want):
            raise AssertionError("json_join disagrees with the encoder")
        n = len(entries)
        # Both build the text of every line; per cluster (81 entries), as dump writes it.
        per = 81
        chunks = [entries[i : i + per] for i in range(0, n, per)]

        def today() -> int:
            for c in chunks:
                "\n".join([encoder.encode(e.to_dict()) for e in c])
            return n

        def fast() -> int:
            for c in chunks:
                json_join(c)
            return n

        figures = timed_interleaved({"entries.json_join, per cluster": fast,
                                     "JSONEncoder().encode(entry.to_dict()) (before)": today}, self.repeat, self.budget)
        self.rows += self._ratio_rows("JSON lines (formatting only)", label, figures, "encoder")

    # -- worker processes (issue 13)
    def jobs(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        self.say(f"check of {label} with 1 and 2 worker processes")
        path = self.workdir / "jobs.qjournal"
        path.write_bytes(build_journal(len_area))
        load_before = os.getloadavg()[0]

        def run(jobs: int) -> Run:
            def go() -> int:
                with qjournal.read(path) as r:
                    return r.check(jobs=jobs).state.num_entries  # type: ignore[union-attr]
            return go

        figures = timed_interleaved({"check, 2 worker processes": run(2), "check, 1 (no worker)": run(1)},
                                    self.repeat, self.budget)
        load_after = os.getloadavg()[0]
        self.rows += self._ratio_rows("check, worker processes", label, figures, "1 worker",
                                      mib=len_area * FILL / MIB)
        self.rows[-2].extra.update({"load_before": round(load_before, 2), "load_after": round(load_after, 2),
                                    "usable_cores": parallel.default_jobs(),
                                    "threshold_mib": parallel.PARALLEL_MIN_BYTES / MIB,
                                    "parallel": "yes" if len_area >= parallel.PARALLEL_MIN_BYTES else "no (under the threshold)"})
        if len_area < parallel.PARALLEL_MIN_BYTES:
            self.notes.append(f"check with workers: {label} is under the threshold "
                              f"({size_label(parallel.PARALLEL_MIN_BYTES)}), so both rows are serial")
        path.unlink()

    # -- pack memory (issue 13)
    def pack(self) -> None:
        for len_area in self.pack_size:
            self._pack(len_area)

    def _pack(self, len_area: int) -> None:
        label = size_label(len_area)
        self.say(f"building a {label} journal of unique digests for pack (this takes a while for 1 GiB)")
        path = self.workdir / "pack-src.qjournal"
        path.write_bytes(build_journal(len_area))
        out = self.workdir / "pack-out.qjournal"
        self.say(f"peak RSS of pack of {label}, in a fresh process")
        proc = subprocess.run([sys.executable, __file__, "--pack-child", str(path), str(out)],
                              capture_output=True, text=True, check=True)
        child = json.loads(proc.stdout)
        path.unlink()
        out.unlink()
        self.rows.append(Row("pack, memory", "pack from a file: peak RSS", label, child["live"], "MiB", child["seconds"], 1,
                             child["peak_kib"] / 1024,
                             extra={"baseline_mib": child["baseline_kib"] / 1024, "spilled": "yes" if child["spilled"] else "no",
                                    "seconds": round(child["seconds"], 1)}))

    # -- memory
    def memory(self) -> None:
        len_area = self.sizes[-1]
        label = size_label(len_area)
        self.say(f"peak RSS of replaying {label} from a file, in a fresh process")
        path = self.workdir / "rss.qjournal"
        path.write_bytes(build_journal(len_area))
        proc = subprocess.run([sys.executable, __file__, "--rss-child", str(path)],
                              capture_output=True, text=True, check=True)
        child = json.loads(proc.stdout)
        path.unlink()
        grow = (child["peak_kib"] - child["baseline_kib"]) / 1024
        self.rows.append(Row("memory", "replay from a file: peak RSS above baseline", label, child["entries"], "MiB",
                             child["seconds"], 1, grow,
                             extra={"baseline_mib": child["baseline_kib"] / 1024, "peak_mib": child["peak_kib"] / 1024}))


def peak_rss_kib() -> int:
    """This process's RSS high-water mark in KiB.

    ``VmHWM`` of /proc/self/status where there is one: it belongs to the process
    image, so it starts afresh at exec. (``ru_maxrss`` does not on Linux: a child
    inherits its parent's figure across fork and exec.) Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib // 1024 if sys.platform == "darwin" else kib  # bytes on macOS


def pack_child(src: str, out: str) -> None:
    """Run in a fresh interpreter: pack ``src`` into ``out``, print the RSS high-water marks (KiB) as JSON."""
    from qjournal import live

    spilled: list[bool] = []
    real = live.LiveIndex._build

    def build(self: Any, *a: Any) -> None:
        real(self, *a)
        spilled.append(self.is_spilled)

    live.LiveIndex._build = build  # type: ignore[method-assign]
    baseline = peak_rss_kib()
    t0 = time.perf_counter()
    report = qjournal.pack(src, out)
    seconds = time.perf_counter() - t0
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak_rss_kib(), "live": report.num_live,
                      "seconds": seconds, "spilled": bool(spilled and spilled[0])}))


def rss_child(path: str) -> None:
    """Run in a fresh interpreter: replay ``path`` and print the RSS high-water marks (KiB) as JSON."""
    with qjournal.read(path) as j:
        baseline = peak_rss_kib()  # the interpreter, qjournal and an open journal
        t0 = time.perf_counter()
        n = consume(j.replay())
        seconds = time.perf_counter() - t0
    peak = peak_rss_kib()
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "entries": n, "seconds": seconds}))


# -- the report ----------------------------------------------------------------

DUMP_JSONL_BEFORE = 170_000
"""Entries/s of ``qjournal dump --output jsonl`` of 256 MiB before issue 13 on this machine (28 s, the JSON
encoder dominating): the figure the issue's "2x today's rate" is measured against."""
CLI_GROUP = "command line (python -m qjournal, a fresh process)"
STARTUP_GROUP = "start-up (a fresh process)"
STARTUP_MAX = 5.0
"""Start-up target: ``qjournal --version`` and ``info`` of a one-cluster journal at most 5x ``python -c pass``."""
DUMP_OVER_CHECK_MAX = 1.8
"""Target: ``dump --output jsonl`` at most 1.8x the time of ``check`` of the same journal."""

TARGETS = (
    ("replay: public API, compiled stream >= 0.35x the hand-written decoder", "replay", PUBLIC_COMPILED, 0.35),
    ("replay: public API, pure stream >= 0.25x the hand-written decoder", "replay", PUBLIC_PURE, 0.25),
    ("append in memory: single appends >= 0.5x the minimal packer", "append, in memory", "writer, single appends", 0.5),
    ("JSON lines: json_join >= 2x the encoder of to_dict()", "JSON lines (formatting only)", "entries.json_join, per cluster", 2.0),
    ("check: 2 worker processes >= 1.6x 1", "check, worker processes", "check, 2 worker processes", 1.6),
)


def evaluate_targets(rows: list[Row]) -> list[dict[str, Any]]:
    """Each target of issues 6 and 13 with the figure that decides it, per area size where it applies."""
    out: list[dict[str, Any]] = []
    for text, group, name, want in TARGETS:
        for r in rows:
            if r.group == group and r.name == name and r.ratio is not None:
                t = {"target": text, "area": r.area, "value": round(r.ratio, 3), "met": r.ratio >= want}
                if "load_before" in r.extra:
                    t["note"] = f"load average {r.extra['load_before']} before, {r.extra['load_after']} after"
                    if r.extra.get("parallel") != "yes":
                        t["met"], t["note"] = None, "not applicable: the area is under the threshold, both rows are serial"
                out.append(t)
    by = {(r.group, r.name, r.area): r for r in rows}
    for r in rows:
        if r.group == "replay" and r.name in (PUBLIC_COMPILED, PUBLIC_PURE):
            c = by.get(("replay", "construct 2.10", r.area))
            if c is not None:
                v = r.rate / c.rate
                out.append({"target": f"replay: {r.name} >= 4x construct", "area": r.area, "value": round(v, 2), "met": v >= 4})
        if r.group == "memory":
            out.append({"target": "replay: peak RSS < 64 MiB above baseline", "area": r.area, "value": round(r.rate, 2),
                        "met": r.rate < 64})
        if r.group == STARTUP_GROUP and r.name.startswith("qjournal") and r.ratio is not None:
            out.append({"target": f"start-up: {r.name} <= {STARTUP_MAX:g}x python -c pass", "area": r.area,
                        "value": round(r.ratio, 2), "met": r.ratio <= STARTUP_MAX})
        if r.group == CLI_GROUP and r.name == "qjournal dump --output jsonl" and r.ratio is not None:
            out.append({"target": f"dump --output jsonl <= {DUMP_OVER_CHECK_MAX:g}x the time of check", "area": r.area,
                        "value": round(r.ratio, 2), "met": r.ratio <= DUMP_OVER_CHECK_MAX})
        if r.group == CLI_GROUP and r.name == "qjournal dump --output jsonl":
            v = r.rate / DUMP_JSONL_BEFORE
            out.append({"target": f"qjournal dump --output jsonl >= 2x the {DUMP_JSONL_BEFORE:,} entries/s before",
                        "area": r.area, "value": round(v, 2), "met": v >= 2})
        if r.group == "pack, memory":
            limit = next((v for k, v in PACK_RSS_TARGETS.items() if size_label(k) == r.area), 512)
            what = f"{r.count:,} distinct digests" if limit != 512 else "a large journal"
            out.append({"target": f"pack of {what}: peak RSS < {limit} MiB", "area": r.area, "value": round(r.rate, 1),
                        "met": r.rate < limit})
    return out


def fmt_rate(r: Row) -> str:
    if r.unit == "MiB":
        return f"{r.rate:,.2f} MiB"
    if r.unit == "opens/s" or "ms" in r.extra:
        return f"{r.seconds * 1e3:,.2f} ms"
    return f"{r.rate:,.0f}/s"


def render(rows: list[Row], targets: list[dict[str, Any]], header: str, notes: list[str]) -> str:
    """The table, then the targets."""
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
            shown = ", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}"
                              for k, v in extra.items())
            lines.append(f"{'':<4}{shown}")
    lines += ["", "== targets (issues 6 and 13)"]
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

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "kaitaistruct": ver("kaitaistruct"),
        "construct": ver("construct"),
        "qjournal": ver("qjournal"),
        "stream": stream.implementation(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def profile_replay(len_area: int, top: int) -> str:
    """cProfile of the public API replay of one journal: the hot path, by own time."""
    data = bytes(build_journal(len_area))
    prof = cProfile.Profile()
    prof.enable()
    consume(replay_public(data))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


PARTS = ("replay", "append", "open", "memory", "startup", "cli", "json", "jobs", "pack")
"""The parts of a run, in order."""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write JSON if asked."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=lambda s: [parse_size(x) for x in s.split(",")],
                    default=list(DEFAULT_SIZES), help="area sizes, comma-separated (default 1M,16M,256M)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is shown (default 5)")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds after which a figure takes no more runs (at least one; default 60)")
    ap.add_argument("--sync-count", type=int, default=200, help="single appends timed with fsync (default 200)")
    ap.add_argument("--pack-size", type=lambda s: tuple(parse_size(x) for x in s.split(",")), default=DEFAULT_PACK_SIZE,
                    help="the journals of unique digests whose pack's peak RSS is measured, comma-separated "
                    "(default 64M,1G; 64M is about 1.2 million distinct digests)")
    ap.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of the public API replay (16 MiB or the largest size below)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--rss-child", metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--pack-child", nargs=2, metavar=("SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    if args.pack_child:
        pack_child(*args.pack_child)
        return 0
    if args.repeat < 1 or args.sync_count < 1:
        ap.error("--repeat and --sync-count take a positive number")
    sizes = sorted(set(args.sizes))
    parts = args.only or list(PARTS)

    def say(text: str) -> None:
        if not args.quiet:
            print(f"bench: {text}", file=sys.stderr, flush=True)

    env = environment()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qjournal-bench-") as tmp:
        bench = Bench(sizes, repeat=args.repeat, budget=args.budget, sync_count=args.sync_count, workdir=Path(tmp), say=say,
                      pack_size=args.pack_size)
        for part in PARTS:
            if part in parts:
                getattr(bench, {"open": "open_for_append", "json": "json_lines"}.get(part, part))()
    rows = bench.rows
    targets = evaluate_targets(rows)
    header = (f"qjournal benchmark: Python {env['python']} ({env['machine']}, {env['cpus']} CPUs), "
              f"kaitaistruct {env['kaitaistruct']}, construct {env['construct']}; {env['stream']}; "
              f"load average at the start {env['load_average'][0]}, at the end {os.getloadavg()[0]:.2f}; "
              f"SHA-256 HASH entries, areas {FILL:.0%} full; medians of up to {args.repeat} runs "
              f"({time.perf_counter() - t0:.0f} s in all)")
    print(render(rows, targets, header, bench.notes))
    if args.profile:
        small = [s for s in sizes if s <= 16 * MIB] or sizes[:1]
        print(f"\n== cProfile of the public API replay, {size_label(small[-1])} (own time)")
        print(profile_replay(small[-1], 15))
    if args.json:
        doc = {"environment": env, "settings": {"sizes": sizes, "repeat": args.repeat, "budget": args.budget,
                                                "fill": FILL, "sync_count": args.sync_count},
               "rows": [asdict(r) for r in rows], "targets": targets}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
