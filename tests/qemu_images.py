"""Real qcow2 images, made by QEMU's own tools (qemu-img, qemu-io), for tests.

The qcow2 tests check the generated parser against QEMU: an image is described
by an ``ImageSpec``, made by ``build()`` in a directory, and QEMU is then asked
what it holds (``Image.info()``, ``.map()``, ``.check()``, ``.guest_bytes()``).
Anything that needs real images (the qcow2 .ksy tests, the Web IDE samples, a
later index/verify feature) uses this one API::

    from qemu_images import Image, ImageSpec, Snapshot, Write, Zero, build

    spec = ImageSpec("demo", cluster_size=4096, size=1 << 20,
                     steps=(Write(0, 8192, 0xAA), Zero(16384, 4096), Snapshot("s1")))
    image = build(spec, tmp_path)          # Image(path=tmp_path / "demo.qcow2", spec=spec)
    image.info()["cluster-size"]           # qemu-img info --output=json
    image.map()                            # qemu-img map --output=json
    image.guest_bytes()                    # the guest disk, by qemu-img convert -O raw
    image.guest_bytes(snapshot="s1")       # ... as snapshot s1 holds it
    simulate_guest(spec)                   # what the steps should give, without QEMU

An image is created with ``qemu-img create -f qcow2 -o cluster_size=...,compat=...``
(compat "0.10" is version 2, "1.1" version 3), then its steps are applied in
order:

===================================  =============================================
step                                 QEMU command
===================================  =============================================
``Write(offset, length, pattern)``   ``qemu-io -f qcow2 -c 'write -P <pattern> <offset> <length>'``
                                     (``compressed=True``: ``write -c -P ...``)
``Zero(offset, length)``             ``qemu-io -f qcow2 -c 'write -z <offset> <length>'``
``Discard(offset, length)``          ``qemu-io -f qcow2 -c 'discard <offset> <length>'`` (frees
                                     the host clusters)
``Snapshot(name)``                   ``qemu-img snapshot -c <name>``
``Bitmap(name, granularity, ...)``   ``qemu-img bitmap --add [--granularity G] [--disable]``
``Compress()``                       ``qemu-img convert -c -O qcow2`` with the image's own
                                     options: what is allocated so far is stored
                                     compressed (later writes are not)
===================================  =============================================

Consecutive writes go to one qemu-io process. ``ImageSpec.backing`` names the
base image's spec: it is built first, in the same directory, and this image is
created on top of it with ``qemu-img create -f qcow2 -b <base> -F qcow2`` (the
base's file name, relative, is what the image records). ``options`` adds
``-o`` creation options (``extended_l2=on``, ``compression_type=zstd``,
``refcount_bits=1``, ``data_file=...``, ``lazy_refcounts=on``...);
``luks_passphrase`` makes a LUKS-encrypted image (QEMU is then given the key
for every command that reads or writes guest data).

QEMU missing: ``require_qemu()`` skips the calling test with the reason, or,
under ``CI=true``, fails it (the rule of ``ksy_toolchain.require_node()``).
``build()`` and the ``Image`` methods raise ``QemuError`` (with QEMU's
stderr) when a command fails; tests that expect QEMU to refuse an image call
``run_qemu(..., check=False)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KiB = 1024
MiB = 1024 * KiB

QEMU_TOOLS = ("qemu-img", "qemu-io")
LUKS_SECRET_ID = "qemu_images_sec0"


def missing_qemu() -> str | None:
    """Why the QEMU tools cannot run here, or None when they can."""
    missing = [tool for tool in QEMU_TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (Debian/Ubuntu: apt-get install qemu-utils): "
                "the qcow2 tests compare the parser with QEMU's own tools")
    return None


def require_qemu() -> None:
    """Skip the calling test when qemu-img or qemu-io is missing; fail it under CI."""
    from ksy_toolchain import unavailable

    reason = missing_qemu()
    if reason is not None:
        unavailable("QEMU", reason)


def qemu_version() -> str:
    """The first line of ``qemu-img --version``, e.g. 'qemu-img version 7.2.22 (...)'."""
    return run_qemu(["qemu-img", "--version"]).stdout.splitlines()[0]


CALIBRATION_FLAKE = "Unable to get accurate CPU usage"
"""What qemu-img says when its PBKDF calibration measured 0 ms (crypto/pbkdf.c): a timing flake, not a bad command."""
CALIBRATION_RETRIES = 5


class QemuError(RuntimeError):
    """A QEMU command failed; the message has the command and its stderr."""


def run_qemu(args: list[str], *, cwd: Path | None = None, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a QEMU tool (``args[0]`` is qemu-img or qemu-io).

    QEMU's PBKDF calibration can measure no CPU time at all and fail a LUKS create
    (:data:`CALIBRATION_FLAKE`); that failure, and only that one, is retried.
    """
    for _ in range(CALIBRATION_RETRIES):
        proc = subprocess.run(args, check=False, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0 or CALIBRATION_FLAKE not in proc.stderr:
            break
    if check and proc.returncode != 0:
        raise QemuError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stderr.strip()}")
    return proc


# ---------------------------------------------------------------------------
# What an image is made of


@dataclass(frozen=True)
class Write:
    """Guest write of ``length`` bytes of the byte ``pattern`` at ``offset``;
    ``compressed``: QEMU stores each cluster compressed (``write -c``, whole
    clusters only), writing only the compressed bytes, so the last such
    cluster of a file usually ends inside a sector."""
    offset: int
    length: int
    pattern: int
    compressed: bool = False

    def qemu_io_command(self) -> str:
        return f"write{' -c' * self.compressed} -P {self.pattern} {self.offset} {self.length}"


@dataclass(frozen=True)
class Zero:
    """Guest write of zeros (``write -z``): v3 images mark clusters as zeros."""
    offset: int
    length: int

    def qemu_io_command(self) -> str:
        return f"write -z {self.offset} {self.length}"


@dataclass(frozen=True)
class Discard:
    """Guest discard (``discard``): the host clusters are freed."""
    offset: int
    length: int

    def qemu_io_command(self) -> str:
        return f"discard {self.offset} {self.length}"


@dataclass(frozen=True)
class Snapshot:
    """An internal snapshot of the image as it is at this step."""
    name: str


@dataclass(frozen=True)
class Bitmap:
    """A persistent dirty bitmap; enabled (``auto``) unless ``disabled``."""
    name: str
    granularity: int | None = None
    disabled: bool = False


@dataclass(frozen=True)
class Compress:
    """Rewrite the image with ``qemu-img convert -c``: every cluster allocated so
    far becomes a compressed cluster."""


Step = Write | Zero | Discard | Snapshot | Bitmap | Compress


@dataclass(frozen=True)
class ImageSpec:
    """How to make one qcow2 image (see the module doc)."""
    name: str
    cluster_size: int = 64 * KiB
    compat: str = "1.1"
    size: int = 1 * MiB
    steps: tuple[Step, ...] = ()
    backing: ImageSpec | None = None
    options: tuple[tuple[str, str], ...] = ()
    luks_passphrase: str | None = None
    doc: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.compat not in ("0.10", "1.1"):
            raise ValueError(f"{self.name}: compat is '0.10' (version 2) or '1.1' (version 3), not {self.compat!r}")
        if any(isinstance(s, Compress) for s in self.steps):
            before = self.steps[:[isinstance(s, Compress) for s in self.steps].index(True)]
            if self.backing is not None or self.luks_passphrase is not None or self.data_file is not None:
                raise ValueError(f"{self.name}: Compress() needs an image without backing file, "
                                 "encryption or external data file")
            if any(isinstance(s, (Snapshot, Bitmap)) for s in before):
                raise ValueError(f"{self.name}: Compress() would drop the snapshots and bitmaps before it")

    @property
    def file_name(self) -> str:
        return f"{self.name}.qcow2"

    @property
    def version(self) -> int:
        """The qcow2 version QEMU writes for this compat level."""
        return 2 if self.compat == "0.10" else 3

    @property
    def data_file(self) -> str | None:
        """The external data file's name, if the image has one."""
        return dict(self.options).get("data_file")

    @property
    def snapshots(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps if isinstance(s, Snapshot))

    def chain(self) -> list[ImageSpec]:
        """This spec, then its backing spec, and so on."""
        out: list[ImageSpec] = []
        spec: ImageSpec | None = self
        while spec is not None:
            out.append(spec)
            spec = spec.backing
        return out

    def create_options(self) -> str:
        """The ``-o`` argument of ``qemu-img create`` (and of Compress's convert)."""
        opts = [("cluster_size", str(self.cluster_size)), ("compat", self.compat), *self.options]
        if self.luks_passphrase is not None:
            # QEMU calibrates the PBKDF by timing 32768 iterations in thread CPU time; with SHA-256 on a
            # fast CPU that can measure 0 ms, and qemu-img fails with "Unable to get accurate CPU usage"
            # (10 of 30 creates on this machine). SHA-512 takes long enough (0 of 30); run_qemu also retries.
            opts += [("encrypt.format", "luks"), ("encrypt.key-secret", LUKS_SECRET_ID),
                     ("encrypt.iter-time", "10"), ("encrypt.hash-alg", "sha512")]
        return ",".join(f"{k}={v}" for k, v in opts)


@dataclass(frozen=True)
class Image:
    """A built image: its file and the spec it was made from. QEMU commands run
    in the image's directory, where relative backing and data file names
    resolve."""
    path: Path
    spec: ImageSpec

    @property
    def directory(self) -> Path:
        return self.path.parent

    def _secret(self) -> list[str]:
        if self.spec.luks_passphrase is None:
            return []
        return ["--object", f"secret,id={LUKS_SECRET_ID},data={self.spec.luks_passphrase}"]

    def open_args(self, *, with_format: bool = True) -> list[str]:
        """How QEMU commands name this image: ``-f qcow2 PATH`` (just ``PATH``
        for the commands without -f, such as ``qemu-img snapshot``), or for LUKS
        the key and ``--image-opts``."""
        if self.spec.luks_passphrase is None:
            return ["-f", "qcow2", str(self.path)] if with_format else [str(self.path)]
        return [*self._secret(), "--image-opts",
                f"driver=qcow2,file.filename={self.path},encrypt.key-secret={LUKS_SECRET_ID}"]

    def info(self) -> dict[str, Any]:
        """``qemu-img info --output=json`` (this image only, not its backing chain)."""
        info: dict[str, Any] = json.loads(run_qemu(["qemu-img", "info", "--output=json", "-f", "qcow2", str(self.path)],
                                                   cwd=self.directory).stdout)
        return info

    def map(self) -> list[dict[str, Any]]:
        """``qemu-img map --output=json``: ranges of the guest disk with their
        status ("depth" counts backing files; "offset" is in the file at that
        depth, or in the external data file)."""
        ranges: list[dict[str, Any]] = json.loads(run_qemu(["qemu-img", "map", "--output=json", *self.open_args()],
                                                           cwd=self.directory).stdout)
        return ranges

    def check(self) -> dict[str, Any]:
        """``qemu-img check --output=json`` (returned even when QEMU reports errors)."""
        proc = run_qemu(["qemu-img", "check", "--output=json", *self.open_args()], cwd=self.directory, check=False)
        try:
            report: dict[str, Any] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise QemuError(f"qemu-img check {self.path} printed no JSON\n{proc.stderr.strip()}") from None
        return report

    def guest_bytes(self, snapshot: str | None = None) -> bytes:
        """The whole guest disk as QEMU reads it (backing files, zero and compressed
        clusters, decryption included), or as the internal snapshot ``snapshot``
        holds it: ``qemu-img convert -O raw [-l snapshot.name=...]``."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "guest.raw"
            args = ["qemu-img", "convert"]
            if snapshot is not None:
                args += ["-l", f"snapshot.name={snapshot}"]
            run_qemu([*args, *self.open_args(), "-O", "raw", str(out)], cwd=self.directory)
            return out.read_bytes()

    def chain(self) -> list[Image]:
        """This image, then its backing image, and so on (what map's depth counts)."""
        return [Image(self.directory / spec.file_name, spec) for spec in self.spec.chain()]


def build(spec: ImageSpec, directory: Path, built: dict[str, Image] | None = None) -> Image:
    """Make the image of ``spec`` (its backing images first) in ``directory``.
    ``built`` (name -> Image) holds images already made there: a backing image
    found in it with the same spec is used as it is, not made again."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    built = {} if built is None else built
    if spec.name in built:
        if built[spec.name].spec != spec:
            raise ValueError(f"two different images named {spec.name}")
        return built[spec.name]
    if spec.backing is not None:
        build(spec.backing, directory, built)
    image = Image(directory / spec.file_name, spec)
    for stale in (image.path, *( [directory / spec.data_file] if spec.data_file else [])):
        stale.unlink(missing_ok=True)
    create = ["qemu-img", "create", "-q", "-f", "qcow2", *image._secret(), "-o", spec.create_options()]
    if spec.backing is not None:
        create += ["-b", spec.backing.file_name, "-F", "qcow2"]
    run_qemu([*create, spec.file_name, str(spec.size)], cwd=directory)
    pending: list[str] = []

    def flush() -> None:
        if pending:
            args = [c for cmd in pending for c in ("-c", cmd)]
            if spec.luks_passphrase is None:
                run_qemu(["qemu-io", "-f", "qcow2", *args, str(image.path)], cwd=directory)
            else:
                run_qemu(["qemu-io", *image._secret(), *args, "--image-opts", image.open_args()[-1]], cwd=directory)
            pending.clear()

    for step in spec.steps:
        if isinstance(step, (Write, Zero, Discard)):
            pending.append(step.qemu_io_command())
            continue
        flush()
        if isinstance(step, Snapshot):
            run_qemu(["qemu-img", "snapshot", "-c", step.name, *image.open_args(with_format=False)], cwd=directory)
        elif isinstance(step, Bitmap):
            args = ["qemu-img", "bitmap", "--add"]
            if step.granularity is not None:
                args += ["--granularity", str(step.granularity)]
            if step.disabled:
                args.append("--disable")
            run_qemu([*args, *image.open_args(), step.name], cwd=directory)
        elif isinstance(step, Compress):
            tmp = directory / f".{spec.file_name}.compressing"
            tmp.unlink(missing_ok=True)
            run_qemu(["qemu-img", "convert", "-c", "-f", "qcow2", "-O", "qcow2", "-o", spec.create_options(),
                      str(image.path), str(tmp)], cwd=directory)
            os.replace(tmp, image.path)
        else:  # pragma: no cover - the Step union is closed
            raise TypeError(f"unknown step {step!r}")
    flush()
    built[spec.name] = image
    return image


def build_all(specs: Iterable[ImageSpec], directory: Path) -> dict[str, Image]:
    """Build every spec in ``directory``: name -> Image, in the order of ``specs``
    (backing images are built once, before the images on top of them)."""
    built: dict[str, Image] = {}
    names = []
    for spec in specs:
        if spec.name in names:
            raise ValueError(f"two images named {spec.name}")
        names.append(spec.name)
        build(spec, directory, built)
    return {name: built[name] for name in names}


def simulate_guest(spec: ImageSpec, snapshot: str | None = None) -> bytes:
    """The guest disk the steps of ``spec`` should leave (or leave in snapshot
    ``snapshot``), computed without QEMU: the backing image's disk (or zeros),
    then each Write (its pattern), Zero (zeros) and Discard (zeros: QEMU reads a
    discarded cluster of a version 3 image as zeros, with or without a backing
    file). A check of ``build()`` and of QEMU itself."""
    if spec.backing is not None:
        base = simulate_guest(spec.backing)
        disk = bytearray(base[:spec.size].ljust(spec.size, b"\0"))
    else:
        disk = bytearray(spec.size)
    for step in spec.steps:
        if isinstance(step, Snapshot) and step.name == snapshot:
            return bytes(disk)
        if isinstance(step, Write):
            disk[step.offset:step.offset + step.length] = bytes([step.pattern]) * step.length
        elif isinstance(step, (Zero, Discard)):
            if isinstance(step, Discard) and spec.version < 3 and spec.backing is not None:
                raise ValueError(f"{spec.name}: a discard in a version 2 image reveals the backing file")
            disk[step.offset:step.offset + step.length] = bytes(step.length)
    if snapshot is not None:
        raise ValueError(f"{spec.name} has no snapshot {snapshot!r}")
    return bytes(disk)


def map_units(entries: list[dict[str, Any]], unit: int, size: int) -> list[dict[str, Any]]:
    """Split ``qemu-img map`` ranges into one entry per ``unit`` bytes of the guest
    disk (a cluster, or a subcluster with extended L2 entries), each with its own
    "start" and, where the range has one, its own "offset". The ranges must cover
    [0, size) without gaps; a range need not start on a unit boundary only at
    the end of the disk."""
    out: list[dict[str, Any]] = []
    pos = 0
    for entry in entries:
        if entry["start"] != pos:
            raise ValueError(f"qemu-img map has a gap or overlap at {pos} (next range starts at {entry['start']})")
        end = entry["start"] + entry["length"]
        while pos < end:
            if pos % unit:
                raise ValueError(f"map range boundary at {pos} is inside a {unit}-byte unit")
            unit_entry = {k: v for k, v in entry.items() if k not in ("start", "length")}
            unit_entry["start"] = pos
            unit_entry["length"] = min(unit, end - pos)
            if "offset" in entry:
                unit_entry["offset"] = entry["offset"] + (pos - entry["start"])
            out.append(unit_entry)
            pos += unit
        pos = end
    if pos != size:
        raise ValueError(f"qemu-img map covers {pos} bytes of a {size}-byte disk")
    return out


# ---------------------------------------------------------------------------
# The images the qcow2 tests run on: cluster sizes 512 B to 2 MiB, versions 2
# and 3, zero clusters (plain and preallocated), compressed clusters (deflate
# and zstd, 512 B to 2 MiB clusters), a three-image backing chain, internal
# snapshots, extended L2 entries, bitmaps, LUKS, external data files, refcount
# widths 1 to 64 bits. Guest disks are small, so building all takes seconds.

_BASIC_STEPS = (
    Write(0, 8 * KiB, 0xAA),             # two full clusters
    Zero(16 * KiB, 4 * KiB),             # v3: a zero cluster with no host cluster
    Write(32 * KiB, 4 * KiB, 0x5A),
    Zero(32 * KiB, 4 * KiB),             # v3: a zero cluster that keeps its host cluster
    Write(100 * KiB + 512, 1 * KiB, 0x11),   # part of a cluster (QEMU fills the rest)
    Write(2 * MiB + 512 * KiB, 4 * KiB, 0x22),  # under the second L1 entry (4 KiB clusters: 2 MiB per L2 table)
    Write(3 * MiB - 4 * KiB, 4 * KiB, 0x33),    # the last guest cluster
)

_BASE = ImageSpec("chain_base_v2", cluster_size=4 * KiB, compat="0.10", size=256 * KiB,
                  steps=(Write(0, 8 * KiB, 0x01), Write(64 * KiB, 4 * KiB, 0x02), Write(128 * KiB, 4 * KiB, 0x04)),
                  doc="bottom of the backing chain, version 2")
_MID = ImageSpec("chain_mid", cluster_size=4 * KiB, size=256 * KiB, backing=_BASE,
                 steps=(Write(128 * KiB, 4 * KiB, 0x08), Write(192 * KiB, 4 * KiB, 0x09)),
                 doc="middle of the backing chain")

TEST_IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("v3_c4k", cluster_size=4 * KiB, size=3 * MiB, steps=_BASIC_STEPS,
              doc="version 3, 4 KiB clusters, two L2 tables, plain and preallocated zero clusters"),
    ImageSpec("v2_c4k", cluster_size=4 * KiB, compat="0.10", size=3 * MiB, steps=_BASIC_STEPS,
              doc="version 2 (no zero flag: zero writes deallocate or write zeros)"),
    ImageSpec("v3_c64k", cluster_size=64 * KiB, size=4 * MiB, options=(("lazy_refcounts", "on"),),
              steps=(Write(60 * KiB, 8 * KiB, 0x61), Zero(1 * MiB, 128 * KiB), Write(3 * MiB, 64 * KiB, 0x62)),
              doc="version 3, 64 KiB clusters, a write across a cluster boundary, lazy refcounts"),
    ImageSpec("v2_c64k", cluster_size=64 * KiB, compat="0.10", size=2 * MiB,
              steps=(Write(0, 64 * KiB, 0x63), Write(200 * KiB, 10 * KiB, 0x64)),
              doc="version 2, 64 KiB clusters"),
    ImageSpec("v3_c2m", cluster_size=2 * MiB, size=8 * MiB,
              steps=(Write(0, 4 * KiB, 0x21), Write(5 * MiB, 1 * MiB, 0x22), Zero(2 * MiB, 2 * MiB)),
              doc="version 3, 2 MiB clusters (QEMU's largest), a zero cluster"),
    ImageSpec("v2_c2m", cluster_size=2 * MiB, compat="0.10", size=4 * MiB,
              steps=(Write(2 * MiB, 4 * KiB, 0x23),),
              doc="version 2, 2 MiB clusters"),
    ImageSpec("v3_c512", cluster_size=512, size=64 * KiB,
              steps=(Write(0, 2 * KiB, 0x51), Zero(4 * KiB, 512), Write(40 * KiB, 1 * KiB, 0x52)),
              doc="512-byte clusters (the smallest): 64 L2 entries per table, two L2 tables"),
    ImageSpec("compressed_c4k", cluster_size=4 * KiB, size=1 * MiB,
              steps=(Write(0, 64 * KiB, 0x33), Write(200 * KiB, 8 * KiB, 0x44), Compress(),
                     Write(8 * KiB, 4 * KiB, 0x55), Zero(12 * KiB, 4 * KiB)),
              doc="compressed clusters (x = 58), then a cluster rewritten and one zeroed"),
    ImageSpec("compressed_v2_c64k", cluster_size=64 * KiB, compat="0.10", size=2 * MiB,
              steps=(Write(0, 128 * KiB, 0x66), Write(1 * MiB, 4 * KiB, 0x67), Compress()),
              doc="version 2, compressed clusters (x = 54)"),
    ImageSpec("compressed_c2m", cluster_size=2 * MiB, size=4 * MiB,
              steps=(Write(0, 3 * MiB, 0x68), Compress()),
              doc="compressed 2 MiB clusters (x = 49)"),
    ImageSpec("compressed_c512", cluster_size=512, size=64 * KiB,
              steps=(Write(0, 8 * KiB, 0x69), Write(20 * KiB, 1 * KiB, 0x6A), Compress(), Write(512, 512, 0x6B)),
              doc="compressed 512-byte clusters (x = 61: offset bits 56-60 must be 0)"),
    ImageSpec("zstd_c64k", cluster_size=64 * KiB, size=1 * MiB, options=(("compression_type", "zstd"),),
              steps=(Write(0, 128 * KiB, 0x07), Compress(), Write(64 * KiB, 4 * KiB, 0x08)),
              doc="zstd compression: the compression type bit and header_length 112"),
    _BASE,
    _MID,
    ImageSpec("chain_top", cluster_size=4 * KiB, size=256 * KiB, backing=_MID,
              steps=(Write(4 * KiB, 4 * KiB, 0x03), Zero(64 * KiB, 4 * KiB), Write(200 * KiB, 4 * KiB, 0x05)),
              doc="top of a three-image backing chain (backing file name and format extension)"),
    ImageSpec("snapshots_c64k", cluster_size=64 * KiB, size=1 * MiB,
              steps=(Write(0, 64 * KiB, 0x71), Write(128 * KiB, 4 * KiB, 0x72), Snapshot("first"),
                     Write(0, 4 * KiB, 0x73), Zero(128 * KiB, 64 * KiB), Snapshot("second snapshot"),
                     Write(512 * KiB, 64 * KiB, 0x74)),
              doc="two internal snapshots, copy-on-write after each"),
    ImageSpec("snapshot_v2_c4k", cluster_size=4 * KiB, compat="0.10", size=256 * KiB,
              steps=(Write(0, 8 * KiB, 0x75), Snapshot("only"), Write(4 * KiB, 4 * KiB, 0x76)),
              doc="version 2 with an internal snapshot"),
    ImageSpec("extended_l2_c64k", cluster_size=64 * KiB, size=1 * MiB, options=(("extended_l2", "on"),),
              steps=(Write(0, 4 * KiB, 0x81), Zero(8 * KiB, 2 * KiB), Write(70 * KiB, 2 * KiB, 0x82),
                     Write(128 * KiB, 64 * KiB, 0x83), Zero(256 * KiB, 64 * KiB)),
              doc="extended L2 entries: 2 KiB subclusters, allocated and zero subclusters"),
    ImageSpec("extended_l2_c16k", cluster_size=16 * KiB, size=256 * KiB, options=(("extended_l2", "on"),),
              steps=(Write(0, 512, 0x84), Zero(1 * KiB, 512), Write(20 * KiB, 3 * KiB, 0x85)),
              doc="extended L2 entries with the smallest cluster size they allow (512-byte subclusters)"),
    ImageSpec("bitmaps_c4k", cluster_size=4 * KiB, size=1 * MiB,
              steps=(Bitmap("tracked", 64 * KiB), Bitmap("frozen", disabled=True),
                     Write(0, 4 * KiB, 0x91), Write(300 * KiB, 4 * KiB, 0x92)),
              doc="two persistent bitmaps, the enabled one tracking the writes"),
    ImageSpec("luks_c4k", cluster_size=4 * KiB, size=256 * KiB, luks_passphrase="qjournal-test",
              steps=(Write(0, 8 * KiB, 0xA1),),
              doc="LUKS encryption: crypt_method 2 and the encryption header pointer"),
    ImageSpec("data_file_raw_c4k", cluster_size=4 * KiB, size=256 * KiB,
              options=(("data_file", "data_file_raw_c4k.raw"), ("data_file_raw", "on")),
              steps=(Write(8 * KiB, 4 * KiB, 0xB1),),
              doc="raw external data file: host offset = guest offset, offset 0 with COPIED set"),
    ImageSpec("data_file_c64k", cluster_size=64 * KiB, size=1 * MiB,
              options=(("data_file", "data_file_c64k.raw"),),
              steps=(Write(64 * KiB, 4 * KiB, 0xB2), Zero(256 * KiB, 64 * KiB)),
              doc="external data file, not raw"),
    ImageSpec("refcount1_c4k", cluster_size=4 * KiB, size=256 * KiB, options=(("refcount_bits", "1"),),
              steps=(Write(0, 12 * KiB, 0xC1), Discard(4 * KiB, 4 * KiB)),
              doc="1-bit refcounts (packed, least significant bit first), a freed cluster between used ones"),
    ImageSpec("refcount4_c4k", cluster_size=4 * KiB, size=256 * KiB, options=(("refcount_bits", "4"),),
              steps=(Write(0, 12 * KiB, 0xC4), Snapshot("s"), Write(4 * KiB, 4 * KiB, 0xC5)),
              doc="4-bit refcounts: 2 where the snapshot shares a cluster, 1 next to them where a write copied one"),
    ImageSpec("compressed_eof_c4k", cluster_size=4 * KiB, size=256 * KiB,
              steps=(Write(0, 8 * KiB, 0xD1), Write(16 * KiB, 8 * KiB, 0xD2, compressed=True)),
              doc="compressed clusters written by the guest (write -c) last: the file ends inside a sector"),
    ImageSpec("compressed_eof_c64k_zstd", cluster_size=64 * KiB, size=1 * MiB,
              options=(("compression_type", "zstd"),),
              steps=(Write(0, 64 * KiB, 0xD3), Write(128 * KiB, 128 * KiB, 0xD4, compressed=True)),
              doc="zstd clusters written by write -c last: the file ends inside a sector"),
    ImageSpec("compressed_eof_c2m", cluster_size=2 * MiB, size=4 * MiB,
              steps=(Write(2 * MiB, 2 * MiB, 0xD5, compressed=True),),
              doc="a compressed 2 MiB cluster written by write -c last"),
    ImageSpec("compressed_eof_c2m_zstd", cluster_size=2 * MiB, size=4 * MiB,
              options=(("compression_type", "zstd"),),
              steps=(Write(0, 2 * MiB, 0xD6, compressed=True),),
              doc="a zstd 2 MiB cluster written by write -c last"),
    ImageSpec("extended_l2_eof_c64k", cluster_size=64 * KiB, size=1 * MiB, options=(("extended_l2", "on"),),
              steps=(Write(0, 64 * KiB, 0xD7, compressed=True), Write(128 * KiB, 6 * KiB, 0xD8)),
              doc="extended L2 entries: a compressed cluster, then a last data cluster of which only "
                  "3 subclusters (6 KiB) are written: the file ends 6 KiB into it"),
    ImageSpec("refcount64_c64k", cluster_size=64 * KiB, size=1 * MiB, options=(("refcount_bits", "64"),),
              steps=(Write(0, 64 * KiB, 0xC6), Snapshot("s")),
              doc="64-bit refcounts"),
)


LARGE_DISK = ImageSpec("large_disk_c512", cluster_size=512, size=1024 * MiB,
                       doc="1 GiB with 512-byte clusters, nothing written: 2,097,152 guest clusters, as many as "
                           "a 128 GiB disk with 64 KiB clusters, in a file of a few hundred KiB")
"""The image the 'every root-level node opens at once' tests open (not in TEST_IMAGES: nothing to compare)."""

