"""Make the qcow2 samples of formats/samples/, with QEMU's own tools.

    python formats/samples/make_qcow2_samples.py          # (re)write the samples
    python formats/samples/make_qcow2_samples.py --check  # exit 1 if a sample does not
                                                          # hold what its spec says

Each is an image worth opening in the Kaitai Web IDE beside qcow2.ksy (see the
README): 4 KiB clusters and a 64 KiB disk, so every table fits on a screen
and each file is a few tens of KB. They are made by qemu-img and qemu-io, as
tests/qemu_images.py makes the test images (the specs below use its API).

QEMU's output differs between QEMU versions, and a snapshot records when it was
taken, so --check does not compare bytes: it asks QEMU what each committed
file holds (cluster size, version, disk size, backing file, snapshots, and the
guest disk, and each snapshot's) and compares that with the spec.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


sys.path.insert(0, str(ROOT / "tests"))  # tests/qemu_images.py and the helpers it imports
import qemu_images as qi  # noqa: E402

KiB = qi.KiB

MIXED = qi.ImageSpec(
    "mixed_clusters", cluster_size=4 * KiB, size=64 * KiB,
    steps=(
        qi.Write(0, 16 * KiB, 0x11), qi.Write(32 * KiB, 8 * KiB, 0x22),
        qi.Compress(),                       # guest clusters 0-3, 8 and 9: compressed
        qi.Write(4 * KiB, 4 * KiB, 0x33),    # cluster 1 rewritten: a standard cluster
        qi.Write(48 * KiB, 4 * KiB, 0x44),   # cluster 12: a standard cluster
        qi.Zero(8 * KiB, 4 * KiB),           # cluster 2: was compressed, now all zeros
        qi.Write(52 * KiB, 4 * KiB, 0x55),
        qi.Zero(52 * KiB, 4 * KiB),          # cluster 13: all zeros, host cluster kept
    ),                                       # clusters 14 and 15: never written
    doc="version 3: every kind of L2 entry (standard, compressed, zero, preallocated zero, unallocated)",
)
BACKED = qi.ImageSpec(
    "backed_snapshot_v2", cluster_size=4 * KiB, compat="0.10", size=64 * KiB, backing=MIXED,
    steps=(
        qi.Write(0, 4 * KiB, 0x66),
        qi.Snapshot("before the second write"),
        qi.Write(16 * KiB, 4 * KiB, 0x77),
    ),
    doc="version 2 on top of mixed_clusters.qcow2 (backing file name and format), with an internal snapshot",
)
SAMPLES = (MIXED, BACKED)


def make() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        built = qi.build_all(SAMPLES, Path(tmp))
        for image in built.values():
            shutil.copyfile(image.path, HERE / image.spec.file_name)


def problems() -> list[str]:
    """What the committed samples hold that their specs do not say."""
    out = []
    for spec in SAMPLES:
        image = qi.Image(HERE / spec.file_name, spec)
        if not image.path.is_file():
            out.append(f"{spec.file_name} is missing")
            continue
        info = image.info()
        compat = info["format-specific"]["data"]["compat"]
        said = (info["cluster-size"], compat, info["virtual-size"], info.get("backing-filename"),
                [s["name"] for s in info.get("snapshots", [])])
        want = (spec.cluster_size, spec.compat, spec.size, spec.backing.file_name if spec.backing else None,
                list(spec.snapshots))
        if said != want:
            out.append(f"{spec.file_name}: qemu-img info says {said}, the spec {want}")
        if image.guest_bytes() != qi.simulate_guest(spec):
            out.append(f"{spec.file_name}: the guest disk is not what the spec's steps write")
        for name in spec.snapshots:
            if image.guest_bytes(snapshot=name) != qi.simulate_guest(spec, snapshot=name):
                out.append(f"{spec.file_name}: snapshot {name!r} is not what the spec's steps write")
    return out


def main(argv: list[str]) -> int:
    reason = qi.missing_qemu()
    if reason is not None:
        print(f"make_qcow2_samples: {reason}", file=sys.stderr)
        return 2
    if "--check" not in argv:
        make()
    found = problems()
    for problem in found:
        print(f"make_qcow2_samples: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
