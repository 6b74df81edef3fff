"""Build the golden vectors: tests/vectors/NAME.bin and NAME.json.

    python tests/vectors/build_vectors.py          # rewrite the vectors
    python tests/vectors/build_vectors.py --check  # exit 1 if they differ

Each vector is laid out byte by byte here, from docs/format.md alone: this
script imports nothing from qjournal, so the vectors judge the reader and the
writer rather than repeat them. Its JSON states what a reader must make of the
bytes: the replayed entries (offset, type, size, fields), the state, the
anomalies, or the corruption rule and byte offset of the error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLUSTER = 4096
FF = 0xFF
END, HASH, NONE = 0x01, 0x02, 0xFF


class Area:
    """A reset area that records what it holds, cluster by cluster."""

    def __init__(self, num_clusters: int) -> None:
        self.data = bytearray([FF]) * (CLUSTER * num_clusters)
        self.pos = 0
        self.entries: list[dict[str, Any]] = []

    def put(self, raw: bytes) -> int:
        ofs = self.pos
        self.data[ofs : ofs + len(raw)] = raw
        self.pos += len(raw)
        return ofs

    def hash(self, digest: bytes, physical: int, logical: int) -> None:
        size = 2 + len(digest) + 16
        ofs = self.put(bytes([size, HASH]) + digest + physical.to_bytes(8, "big") + logical.to_bytes(8, "big"))
        self.entries.append(
            {"ofs": ofs, "entry_type": "hash", "len_entry": size, "digest": digest.hex(),
             "physical_sector": physical, "first_logical_sector": logical}
        )

    def raw(self, entry_type: int, body: bytes) -> None:
        size = 2 + len(body)
        ofs = self.put(bytes([size, entry_type]) + body)
        self.entries.append({"ofs": ofs, "entry_type": entry_type, "len_entry": size, "body": body.hex()})

    def end(self) -> None:
        """Close the cluster: an END header whose size reaches the boundary (padding stays 0xFF)."""
        size = CLUSTER - self.pos % CLUSTER
        assert 2 <= size <= 255, f"an END of size {size} is impossible"
        self.data[self.pos : self.pos + 2] = bytes([size, END])
        self.pos += size


def digest(seed: int, n: int = 32) -> bytes:
    return bytes((seed * 7 + i * 13) & 0xFF for i in range(n))


def state(area: Area, *, used: int, tail: int, full: bool, by_type: dict[str, int]) -> dict[str, Any]:
    return {
        "len_area": len(area.data), "num_clusters": len(area.data) // CLUSTER,
        "num_clusters_used": used, "ofs_tail": tail, "len_free": len(area.data) - tail,
        "is_full": full, "num_entries": sum(by_type.values()), "entries_by_type": by_type,
    }


def vectors() -> dict[str, tuple[bytes, dict[str, Any]]]:
    out: dict[str, tuple[bytes, dict[str, Any]]] = {}

    def ok(name: str, area: Area, doc: str, st: dict[str, Any], anomalies: list[dict[str, Any]] | None = None) -> None:
        out[name] = (bytes(area.data), {"doc": doc, "replay": area.entries, "state": st, "anomalies": anomalies or []})

    def bad(name: str, data: bytes | bytearray, doc: str, rule: str, offset: int, *, replay: list[dict[str, Any]] | None = None) -> None:
        out[name] = (bytes(data), {"doc": doc, "replay": replay or [], "error": {"rule": rule, "offset": offset}})

    # D10, byte for byte.
    a = Area(1)
    a.hash(bytes(range(32)), 0x10, 0x20)
    ok("d10_example", a, "docs/format.md D10: one SHA-256 HASH entry, NONE at 0x32",
       state(a, used=1, tail=0x32, full=False, by_type={"hash": 1}))

    a = Area(1)
    ok("empty", a, "A reset one-cluster area: every byte 0xFF, nothing to replay",
       state(a, used=0, tail=0, full=False, by_type={}))

    # Several clusters: cluster 0 closed by an END, cluster 1 open, cluster 2 empty.
    a = Area(3)
    for i in range(81):  # 81 * 50 = 4050; a 50-byte entry at 4050 would need 4102 > 4096
        a.hash(digest(i), 1000 + i, 8 * i)
    a.end()
    for i in range(81, 84):
        a.hash(digest(i), 1000 + i, 8 * i)
    ok("multi_cluster", a, "Three clusters: 81 HASH entries and an END of size 46, then 3 entries, then an empty cluster",
       state(a, used=2, tail=CLUSTER + 150, full=False, by_type={"hash": 84}))

    # An END of size 2: entries reach 4094 exactly.
    a = Area(2)
    for i in range(16):
        a.hash(digest(i, 236), i, i)  # 16 * 254 = 4064
    a.hash(digest(99, 12), 99, 99)  # size 30: 4064 + 30 = 4094, and 4094 + 2 <= 4096
    a.end()
    a.hash(digest(100, 1), 1, 2)  # the smallest HASH entry, size 19
    ok("end_size_2", a, "A cluster whose entries reach 4094: closed by an END of size 2",
       state(a, used=2, tail=CLUSTER + 19, full=False, by_type={"hash": 18}))

    # The D6 erratum: 3841 bytes used, then a 254-byte entry needs 3841 + 254 + 2 = 4097.
    a = Area(2)
    for i in range(15):
        a.raw(0x03, digest(i, 252))  # 15 * 254 = 3810
    a.hash(digest(15, 13), 5, 6)  # size 31: 3841
    a.end()  # END of size 255: size byte 0xFF under type END
    a.raw(0x03, digest(16, 252))
    ok("end_size_255", a, "D6 erratum: an END of size 255 (size byte 0xFF) at 3841, then a 254-byte entry in the next cluster",
       state(a, used=2, tail=CLUSTER + 254, full=False, by_type={"0x03": 16, "hash": 1}),
       [{"kind": "unassigned_type", "ofs": e["ofs"]} for e in a.entries if e["entry_type"] == 3])

    # Exactly full: both clusters closed.
    a = Area(2)
    for c in range(2):
        for i in range(81):
            a.hash(digest(c * 81 + i), c, i)
        a.end()
    ok("full", a, "Two clusters, both closed by an END: replay ends after the last cluster",
       state(a, used=2, tail=2 * CLUSTER, full=True, by_type={"hash": 162}))

    a = Area(1)
    a.raw(0x00, b"")
    a.raw(0x03, b"\x01\x02\x03")
    a.hash(digest(1), 7, 8)
    a.raw(0xFE, bytes(252))
    ok("unassigned_types", a, "Entries of unassigned types 0x00, 0x03 and 0xFE around a HASH: replayed raw, reported as anomalies",
       state(a, used=1, tail=a.pos, full=False, by_type={"0x00": 1, "0x03": 1, "hash": 1, "0xfe": 1}),
       [{"kind": "unassigned_type", "ofs": e["ofs"]} for e in a.entries if e["entry_type"] != "hash"])

    # A torn write: the writer wrote size and payload of a second entry, not its type byte.
    a = Area(1)
    a.hash(bytes(range(32)), 0x10, 0x20)
    torn = bytes([0x32, NONE]) + digest(2) + (1).to_bytes(8, "big") + (2).to_bytes(8, "big")
    a.data[0x32 : 0x32 + len(torn)] = torn
    ok("torn_write", a, "D10's entry, then a torn write at 0x32: size byte 0x32 under type NONE",
       state(a, used=1, tail=0x32, full=False, by_type={"hash": 1}),
       [{"kind": "torn_write", "ofs": 0x32}, {"kind": "dirty_tail", "ofs": 0x34}])

    a = Area(2)
    a.hash(bytes(range(32)), 0x10, 0x20)
    a.data[CLUSTER + 100] = 0x00
    ok("dirty_tail", a, "D10's entry, then a stray 0x00 byte in the second (unreplayed) cluster",
       state(a, used=1, tail=0x32, full=False, by_type={"hash": 1}),
       [{"kind": "dirty_tail", "ofs": CLUSTER + 100}])

    a = Area(2)
    for i in range(81):
        a.hash(digest(i), i, i)
    end_ofs = a.pos
    a.end()
    a.data[end_ofs + 10] = 0x42
    ok("dirty_padding", a, "A closed cluster whose END padding holds a stray 0x42",
       state(a, used=1, tail=CLUSTER, full=False, by_type={"hash": 81}),
       [{"kind": "dirty_padding", "ofs": end_ofs + 10}])

    # Corruption, one vector per class of D5 (and D1, D8).
    bad("corrupt_never_reset", bytes(CLUSTER), "An area of 0x00 bytes: never reset (size 0 at offset 0)",
        "size_too_small", 0)

    a = Area(1)
    a.hash(bytes(range(32)), 0x10, 0x20)
    a.data[0x32:0x34] = bytes([1, HASH])
    bad("corrupt_size_one", a.data, "Size byte 1 after a good entry", "size_too_small", 0x32, replay=a.entries)

    a = Area(1)
    a.data[0:2] = bytes([0xFF, 0x03])
    bad("corrupt_regular_too_long", a.data, "Size byte 0xFF (255) under the unassigned type 0x03",
        "regular_too_long", 0)

    a = Area(2)
    for i in range(81):
        a.hash(digest(i), i, i)
    a.end()
    for i in range(80):
        a.hash(digest(i), i, i)  # 4000
    a.data[a.pos : a.pos + 2] = bytes([200, 0x03])
    bad("corrupt_crosses_boundary", a.data, "In the second cluster, a 200-byte entry at 4000 of 4096",
        "crosses_boundary", a.pos, replay=a.entries)

    a = Area(1)
    for i in range(80):
        a.hash(digest(i), i, i)
    a.data[a.pos : a.pos + 2] = bytes([96, 0x03])
    bad("corrupt_no_end", a.data, "A 96-byte entry at 4000 that ends exactly on the boundary, with no END",
        "no_end", a.pos, replay=a.entries)

    a = Area(1)
    for i in range(80):
        a.hash(digest(i), i, i)
    a.data[a.pos : a.pos + 2] = bytes([95, 0x03])
    bad("corrupt_no_room_for_header", a.data, "A 95-byte entry at 4000 that leaves one byte before the boundary",
        "no_room_for_header", a.pos, replay=a.entries)

    a = Area(2)
    a.hash(bytes(range(32)), 0x10, 0x20)
    a.data[0x32:0x34] = bytes([10, END])
    bad("corrupt_end_misaligned", a.data, "An END of size 10 at 0x32, far from the boundary",
        "end_misaligned", 0x32, replay=a.entries)

    a = Area(1)
    a.data[0:2] = bytes([0xFF, END])
    bad("corrupt_end_size_ff", a.data, "Size byte 0xFF under END at offset 0 (valid only 255 bytes before the boundary)",
        "end_misaligned", 0)

    a = Area(1)
    a.data[0:18] = bytes([18, HASH]) + bytes(16)
    bad("corrupt_hash_too_short", a.data, "A HASH entry of size 18: payload of 16 bytes, no room for a digest",
        "hash_too_short", 0)

    bad("corrupt_area_length", b"\xff" * 5000, "A 5000-byte area: not a multiple of 4096 (D1)", "area_length", 0)
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    differ = []
    for name, (data, expect) in vectors().items():
        text = json.dumps(expect, indent=1, sort_keys=True) + "\n"
        for path, content in ((HERE / f"{name}.bin", data), (HERE / f"{name}.json", text.encode())):
            if check:
                if not path.exists() or path.read_bytes() != content:
                    differ.append(path.name)
            else:
                path.write_bytes(content)
    if differ:
        print("vectors differ from build_vectors.py: " + ", ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
