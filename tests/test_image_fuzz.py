"""Hostile qcow2 images through analyze, index and verify, in-process: a clear refusal or a right answer, never more.

Each example is a real image made by qemu-img and qemu-io (or dedup's output of one,
which shares clusters), mutated where a hostile or broken file differs: an L2 entry
copied over others (sharing, with or without the refcounts that allow it), L1
entries copied, refcounts set at random, bits flipped in the metadata, the file cut
short. For each:

- every call either succeeds or raises an image error with its code (corrupt or
  unsupported); nothing else, and within a deadline (the work is bounded by
  the file, D31);
- analyze reads a shared cluster once (its default) and gives exactly the figures of
  reading every use (``list_duplicates``), or the same refusal;
- a journal that index wrote is found good by ``verify --all`` on the same image.

``QJOURNAL_HYPOTHESIS_EXAMPLES`` sets the examples per base image (default 12).
"""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import examples
from test_image_edges import _OFS, _u64, needs_qemu, qemu_img, qemu_io

import qjournal
from qjournal.errors import ImageError

DEADLINE = float(os.environ.get("QJOURNAL_FUZZ_DEADLINE", "10"))


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Images to mutate: 4 KiB and 64 KiB clusters with repeats and zeros, extended L2, and a deduplicated one."""
    d = tmp_path_factory.mktemp("fuzzbase")
    out: dict[str, Path] = {}
    for name, opts, size, writes in (
        ("c4k", "cluster_size=4096", "4M", ["write -P 0x11 0 16k", "write -P 0x22 1M 8k", "write -P 0x11 2M 16k",
                                            "write -z 3M 8k", "write -P 0x33 3200k 4k"]),
        ("c64k", "cluster_size=65536", "8M", ["write -P 0x44 0 192k", "write -P 0x44 4M 64k", "write -z 6M 64k"]),
        ("ext_l2", "cluster_size=65536,extended_l2=on", "4M", ["write -P 0x55 0 4k", "write -P 0x55 64k 64k",
                                                                  "write -P 0x66 1M 2k"]),
    ):
        path = d / f"{name}.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-o", opts, path, size)
        qemu_io(path, *writes)
        out[name] = path
    shared = d / "dedup.qcow2"
    qjournal.dedup(out["c4k"], shared, journal=False)
    out["dedup"] = shared
    return out


class _Layout:
    """Where a qcow2 file's tables are: its L1 entries, L2 entries and refcounts (16-bit, the first block)."""

    def __init__(self, b: bytes) -> None:
        self.len_entry = 16 if _u64(b, 72) & 16 and struct.unpack_from(">I", b, 100)[0] >= 104 else 8  # extended L2
        self.cs = 1 << struct.unpack_from(">I", b, 20)[0]
        ofs_l1, n1 = _u64(b, 40), struct.unpack_from(">I", b, 36)[0]
        self.l1 = [ofs_l1 + 8 * i for i in range(n1) if ofs_l1 + 8 * i + 8 <= len(b)]
        self.l2: list[int] = []
        for at in self.l1:
            ofs = _u64(b, at) & _OFS
            if ofs and ofs + self.cs <= len(b):
                self.l2 += range(ofs, ofs + self.cs, self.len_entry)
        rt = _u64(b, 48)
        self.refblock = _u64(b, rt) & _OFS if rt + 8 <= len(b) else 0


def _mutate(b: bytearray, rng: random.Random) -> str:
    """One hostile change of ``b``, in place; what it was, for the failure message."""
    if len(b) < 104:  # cut inside the header already: nothing more to aim at
        return "no change"
    lay = _Layout(bytes(b))
    used = [at for at in lay.l2 if _u64(b, at) & _OFS]
    kind = rng.choice(["share", "share_counted", "l1_copy", "refcount", "flip", "truncate"])
    if kind.startswith("share") and used:
        src = rng.choice(used)
        targets = rng.sample(lay.l2, min(len(lay.l2), rng.randint(1, 40)))
        entry = _u64(b, src) & ~(1 << 63)  # shared: COPIED clear
        for at in [src, *targets]:
            b[at : at + 8] = entry.to_bytes(8, "big")
            if lay.len_entry == 16:
                b[at + 8 : at + 16] = b[src + 8 : src + 16]
        if kind == "share_counted" and lay.refblock:
            k = (entry & _OFS) // lay.cs
            uses = sum(1 for at in lay.l2 if _u64(b, at) & _OFS == entry & _OFS)
            if lay.refblock + 2 * k + 2 <= len(b):
                struct.pack_into(">H", b, lay.refblock + 2 * k, min(uses, 0xFFFF))
        return f"{kind} {src:#x} -> {len(targets)} entries"
    if kind == "l1_copy" and len(lay.l1) > 1:
        a, c = rng.sample(lay.l1, 2)
        b[c : c + 8] = b[a : a + 8]
        return f"l1 entry {a:#x} copied to {c:#x}"
    if kind == "refcount" and lay.refblock:
        k = rng.randrange(max(1, len(b) // lay.cs))
        if lay.refblock + 2 * k + 2 <= len(b):
            struct.pack_into(">H", b, lay.refblock + 2 * k, rng.choice([0, 1, 2, 3, 0xFFFF]))
        return f"refcount of host cluster {k}"
    if kind == "truncate":
        n = rng.randrange(len(b))
        del b[n:]
        return f"cut at {n:#x}"
    meta = [0, *lay.l1, *(rng.sample(lay.l2, min(8, len(lay.l2))))]
    at = rng.choice(meta) + rng.randrange(8)
    if at < len(b):
        b[at] ^= 1 << rng.randrange(8)
    return f"bit flipped at {at:#x}"


def _outcome(fn: Any, *args: Any, **kw: Any) -> Any:
    """fn's result, or the code of the image error it raised; anything else fails (an I/O error too: the file does not
    change while it is read), and so does a hang."""
    def hang(*_: object) -> None:
        raise TimeoutError(f"no answer in {DEADLINE} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, DEADLINE)
    try:
        return fn(*args, **kw)
    except ImageError as exc:
        return ("refused", exc.code)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _figures(result: Any) -> Any:
    if isinstance(result, tuple):
        return result
    try:
        return [(f.block_size, f.num_blocks, f.num_zero, f.num_distinct, f.num_duplicate, f.histogram)
                for f in result.block_sizes]
    finally:
        result.close()


def _cases(bases: dict[str, Path], name: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    rng = random.Random(f"{name}-{os.environ.get('QJOURNAL_FUZZ_SEED', '1')}")
    base = bases[name].read_bytes()
    for k in range(examples(12)):
        b = bytearray(base)
        what = "; ".join(_mutate(b, rng) for _ in range(rng.randint(1, 3)))
        path = tmp_path / f"{name}-{k}.qcow2"
        path.write_bytes(bytes(b))
        yield path, what


@needs_qemu
@pytest.mark.parametrize("name", ["c4k", "c64k", "ext_l2", "dedup"])
def test_hostile_images_are_refused_or_read_right(bases: dict[str, Path], name: str, tmp_path: Path) -> None:
    seen: set[str] = set()
    for path, what in _cases(bases, name, tmp_path):
        cs = 1 << struct.unpack_from(">I", bases[name].read_bytes(), 20)[0]
        sizes = sorted({512, 4096, cs})
        jobs = 1 + len(seen) % 2  # threads or forked workers, by turns
        once = _figures(_outcome(qjournal.analyze, [path], block_sizes=sizes, jobs=jobs))
        every = _figures(_outcome(qjournal.analyze, [path], block_sizes=sizes, list_duplicates=True, jobs=jobs))
        assert once == every, f"{path.name} ({what}): read once {once} != every use {every}"
        journal = tmp_path / f"{path.name}.qjournal"
        report = _outcome(qjournal.index, path, journal, jobs=jobs, durable=False)
        if isinstance(report, tuple):
            assert not journal.exists(), f"{path.name} ({what}): refused, yet a journal was left"
            seen.add(str(report[1]))
            continue
        seen.add("indexed")
        checked = _outcome(qjournal.verify, journal, path, all_blocks=True, jobs=jobs)
        assert not isinstance(checked, tuple) and checked.is_clean, f"{path.name} ({what}): {checked}"
    assert seen, "no example ran"


@needs_qemu
def test_the_bases_are_what_qemu_reads(bases: dict[str, Path]) -> None:
    """The mutations start from images qemu-img check finds clean (the deduplicated one shares clusters)."""
    for path in bases.values():
        proc = subprocess.run(["qemu-img", "check", str(path)], check=False, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
