"""Make the sample journals of formats/samples/, with the qjournal writer.

    python formats/samples/make_samples.py          # (re)write the samples
    python formats/samples/make_samples.py --check  # exit 1 if a sample differs

Each is a journal worth opening in the Kaitai Web IDE beside qcow2_journal.ksy
(see the README). Digests are SHA-256 of fixed strings, so the output is the
same on every run. The torn and corrupt samples show what a crash or a stray
write leaves: the writer makes a healthy journal, then this script reproduces
the damage on a copy, as stated for each.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import qjournal
from qjournal.format import LEN_CLUSTER

HERE = Path(__file__).resolve().parent


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def healthy() -> bytearray:
    """Two clusters, twelve SHA-256 HASH entries in the first: what a fresh image's journal looks like."""
    buf = bytearray()
    with qjournal.create(buf, 2) as w:
        for i in range(12):
            w.append_hash(sha(f"cluster {i}"), physical_sector=0x800 + 128 * i, first_logical_sector=128 * i)
    return buf


def end_255() -> bytearray:
    """Three clusters; the first is closed by an END of size 255 (the D6 erratum)."""
    buf = bytearray()
    with qjournal.create(buf, 3) as w:
        for i in range(15):  # 15 HASH entries of 254 bytes (236-byte digests): 3810 bytes
            w.append_hash(sha(f"wide {i}") * 7 + sha(f"tail {i}")[:12], 0x10000 + i, 0x100 * i)
        w.append_hash(sha("short")[:13], 0x20000, 0x200)  # 31 bytes: the tail is at 3841
        # 3841 + 254 + 2 > 4096: the writer closes the cluster with an END of size 255
        w.append_hash(sha("next") * 7 + sha("next tail")[:12], 0x30000, 0x300)
        for i in range(30):  # the second cluster fills and closes with an ordinary END
            w.append_hash(sha(f"more {i}") * 4, 0x40000 + i, 0x400 + i)
        for i in range(5):
            w.append_hash(sha(f"last {i}"), 0x50000 + i, 0x500 + i)
    assert buf[3841:3843] == b"\xff\x01", "the END of size 255 is where the sample says"
    return buf


def torn() -> bytearray:
    """The healthy journal, then a batch of two entries whose commit byte never reached the disk.

    The writer writes a batch's bytes, syncs, then writes the type byte of its
    first entry. This is the image a crash between the two leaves: the batch
    reads as NONE (a torn write, size byte 0x32 under type 0xFF).
    """
    before = healthy()
    tail = qjournal.read(bytes(before)).state().ofs_tail
    after = bytearray(before)
    with qjournal.open_for_append(after) as w:
        w.append_many([qjournal.HashEntry(sha("lost 1"), 0x9000, 0x900), qjournal.HashEntry(sha("lost 2"), 0x9080, 0x980)])
    after[tail + 1] = 0xFF  # the commit byte, never written
    return after


def corrupt() -> bytearray:
    """The healthy journal with the size byte of its fourth entry overwritten by 0x00 (a stray write)."""
    buf = healthy()
    buf[3 * 0x32] = 0x00
    return buf


SAMPLES = {
    "healthy.qjournal": healthy,
    "end_255.qjournal": end_255,
    "torn.qjournal": torn,
    "corrupt.qjournal": corrupt,
}


def main(argv: list[str]) -> int:
    differ = []
    for name, make in SAMPLES.items():
        data = bytes(make())
        assert len(data) % LEN_CLUSTER == 0
        path = HERE / name
        if "--check" in argv:
            if not path.exists() or path.read_bytes() != data:
                differ.append(name)
        else:
            path.write_bytes(data)
    if differ:
        print("samples differ from make_samples.py: " + ", ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
