"""The qjournal command line: each command as a real subprocess, breadth in-process.

Journals are built here byte by byte from docs/format.md (D3-D8), so these
tests do not depend on the writer or on the golden vectors (used when present).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import hash_bytes, stderr_on_a_terminal

from qjournal import cli, hexview
from qjournal.cli import read
from qjournal.errors import CorruptJournalError
from qjournal.reader import JournalReader, parse_cluster

CLUSTER = 4096
FF = 0xFF
VECTORS = Path(__file__).resolve().parent / "vectors"
SUBPROCESS_ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "100"}


# -- journals, byte by byte ----------------------------------------------------


def raw_bytes(entry_type: int, body: bytes) -> bytes:
    """An entry of any type with a raw body (D3)."""
    return bytes([2 + len(body), entry_type]) + body


def digest_of(i: int, n: int = 32) -> bytes:
    return bytes((i * 7 + k * 13) % 256 for k in range(n))


def build(entries: list[bytes], num_clusters: int) -> bytearray:
    """A reset area holding ``entries`` placed as the writer places them (D6)."""
    data = bytearray([FF]) * (CLUSTER * num_clusters)
    pos = 0
    for e in entries:
        o = pos % CLUSTER
        if o + len(e) + 2 > CLUSTER:
            data[pos : pos + 2] = bytes([CLUSTER - o, 1])
            pos += CLUSTER - o
            assert pos < len(data), "the journal is full"
        data[pos : pos + len(e)] = e
        pos += len(e)
    return data


def hashes(n: int, start: int = 0) -> list[bytes]:
    return [hash_bytes(digest_of(i), 1000 + i, 8 * i) for i in range(start, start + n)]


D10 = hash_bytes(bytes(range(32)), 0x10, 0x20)


def write(path: Path, data: bytes | bytearray) -> str:
    path.write_bytes(bytes(data))
    return str(path)


class Ran(subprocess.CompletedProcess[bytes]):
    """A finished ``python -m qjournal`` run, with its output also decoded: ``out`` and ``err``."""

    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        super().__init__(proc.args, proc.returncode, proc.stdout, proc.stderr)
        self.out: str = proc.stdout.decode()
        self.err: str = proc.stderr.decode()


def run(*args: str, stdin: bytes | None = None, check_no_traceback: bool = True) -> Ran:
    """``python -m qjournal ARGS`` as a real subprocess."""
    proc = Ran(subprocess.run(
        [sys.executable, "-m", "qjournal", *args],
        check=False,
        input=stdin,
        capture_output=True,
        env=SUBPROCESS_ENV,
        timeout=60,
    ))
    if check_no_traceback:
        assert "Traceback" not in proc.err, proc.err
    return proc


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``qjournal.cli.main(ARGS)`` in-process."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def one_error_line(err: str) -> str:
    """The one error line on stderr (a hint may follow it, on a line of its own)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("qjournal: hint: ")), err
    assert lines[0].startswith("qjournal: "), err
    return lines[0]


@pytest.fixture
def small(tmp_path: Path) -> str:
    """Four clusters: D10's entry, a 7-byte entry of type 0x07, a 24-byte HASH; tail at 0x50."""
    data = build([D10, raw_bytes(0x07, b"\x01\x02\x03\x04\x05"), hash_bytes(b"\xab\xcd\xef\x01\x02\x03\x04\x05", 7, 9)], 4)
    return write(tmp_path / "small.bin", data)


@pytest.fixture
def multi(tmp_path: Path) -> str:
    """Three clusters: 81 HASH entries and an END of 46 bytes, then 3 more entries."""
    return write(tmp_path / "multi.bin", build(hashes(84), 3))


# -- info ------------------------------------------------------------------------


def test_info_human_subprocess(multi: str) -> None:
    proc = run("info", multi)
    assert proc.returncode == 0, proc.err
    assert proc.err == ""
    lines = dict(line.split(": ", 1) for line in proc.out.splitlines())
    assert lines["area size"] == "12 KiB (12288 bytes)"
    assert lines["clusters used"] == "2 of 3 (4096 bytes each)"
    # 81 entries of 50 bytes fill 4050 bytes of cluster 0; 3 more in cluster 1
    assert lines["tail"] == f"{0x1000 + 150:#x} ({0x1000 + 150})"
    assert lines["free"].endswith(f"({12288 - 0x1000 - 150} bytes)")
    assert lines["full"] == "no"
    # the tail is at 150 of cluster 1: (4094 - 150) // 50 = 78 more there, then 81 in cluster 2
    assert lines["room"] == "the next entry can be up to 254 bytes; 159 more SHA-256 entries fit (50 bytes each, with the END each cluster needs)"
    assert lines["entries"] == "84 (hash: 84)"
    assert lines["anomalies"] == "none"


def test_info_json_schema(tmp_path: Path) -> None:
    data = build([D10, raw_bytes(0x33, b"xy")], 2)
    data[0x1000 + 10] = 0x00  # a stray byte in the empty cluster: a dirty tail
    path = write(tmp_path / "j.bin", data)
    proc = run("info", path, "--output", "json")
    assert proc.returncode == 0, proc.err
    doc = json.loads(proc.out)
    assert doc == {
        "filename": path,
        "area_offset": 0,
        "len_area": 8192,
        "num_clusters": 2,
        "num_clusters_used": 1,
        "ofs_tail": 54,
        "len_free": 8192 - 54,
        "is_full": False,
        "num_entries": 2,
        "entries_by_type": {"hash": 1, "0x33": 1},
        "anomalies": [
            {"code": "unassigned_type", "kind": "unassigned_type", "ofs": 50, "file_ofs": 50, "is_corruption": False, "reason": doc["anomalies"][0]["reason"]},
            {"code": "dirty_tail", "kind": "dirty_tail", "ofs": 0x100A, "file_ofs": 0x100A, "is_corruption": False, "reason": doc["anomalies"][1]["reason"]},
        ],
        "num_anomalies": 2,
        "max_len_entry": 254,  # a cluster follows the tail's: an entry that does not fit opens it
        "num_sha256_entries_fit": (4094 - 54) // 50 + 81,  # the rest of cluster 0, then 81 in cluster 1
        "num_live": 1,
        "num_superseded": 0,
        "metadata": None,  # no metadata entry (D30) first
        "metadata_note": None,
    }
    assert "0x33" in doc["anomalies"][0]["reason"]


def test_info_full_and_anomalies_human(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # 81 entries of 50 bytes use 4050 bytes; a 44-byte entry brings the tail to 4094, where
    # not even a 2-byte entry and the END header after it fit: the one-cluster journal is full.
    data = build(hashes(81) + [raw_bytes(0x09, b"z" * 42)], 1)
    path = write(tmp_path / "full.bin", data)
    code, out, _ = call(capsys, "info", path)
    assert code == 0
    assert "full: yes" in out
    assert "anomalies: 1" in out and "unassigned_type" in out


def test_info_corrupt_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = build([D10], 1)
    data[50:52] = bytes([10, 1])  # an END that does not reach the boundary
    path = write(tmp_path / "bad.bin", data)
    code, out, err = call(capsys, "info", path)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert path in line and "offset 0x32 (50)" in line and "end_misaligned" in line


# -- dump ------------------------------------------------------------------------


def test_dump_human_lines(small: str) -> None:
    proc = run("dump", small)
    assert proc.returncode == 0, proc.err
    assert proc.out.splitlines() == [
        "0x00000000  hash   50  digest=" + bytes(range(32)).hex() + " physical_sector=16 first_logical_sector=32",
        "0x00000032  0x07    7  body=0102030405",
        "0x00000039  hash   26  digest=abcdef0102030405 physical_sector=7 first_logical_sector=9",
    ]


def test_dump_all_shows_end_and_none(capsys: pytest.CaptureFixture[str], multi: str) -> None:
    code, out, _ = call(capsys, "dump", multi, "--all")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 84 + 2
    assert lines[81] == "0x00000fd2  end    46  closes the cluster; replay goes on at 0x1000"
    assert lines[-1] == "0x00001096  none  255  replay stops here"
    code, out, _ = call(capsys, "dump", multi)
    assert len(out.splitlines()) == 84 and " end " not in out


def test_dump_all_torn_write(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = build([D10], 1)
    data[50] = 0x20  # size byte written, type byte not: a torn write
    path = write(tmp_path / "torn.bin", data)
    code, out, _ = call(capsys, "dump", path, "--all", "--output", "jsonl")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[-1] == {"ofs": 50, "entry_type": "none", "len_entry": 0x20, "is_torn": True}
    code, out, _ = call(capsys, "dump", path, "--all")
    assert "torn write (size byte 0x20 under type NONE)" in out.splitlines()[-1]


def test_dump_jsonl_and_json_schema(small: str) -> None:
    proc = run("dump", small, "--output", "jsonl")
    assert proc.returncode == 0, proc.err
    records = [json.loads(line) for line in proc.out.splitlines()]
    with JournalReader(small) as reader:
        assert records == [e.to_dict() for e in reader.replay()]
    assert records[1] == {"ofs": 50, "entry_type": 7, "len_entry": 7, "body": "0102030405"}
    proc = run("dump", small, "--output", "json")
    assert proc.returncode == 0, proc.err
    doc = json.loads(proc.out)
    assert doc == {"filename": small, "area_offset": 0, "len_area": 4 * CLUSTER, "num_clusters": 4, "entries": records}


def test_dump_json_empty_journal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "e.bin", build([], 1))
    code, out, _ = call(capsys, "dump", path, "--output", "json")
    assert code == 0 and json.loads(out)["entries"] == []
    code, out, _ = call(capsys, "dump", path)
    assert code == 0 and out == ""


def test_dump_corrupt_prints_prefix_then_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = build(hashes(84), 3)
    data[0x1032] = 0  # size 0 in the second cluster
    path = write(tmp_path / "c.bin", data)
    code, out, err = call(capsys, "dump", path)
    assert code == 2
    assert len(out.splitlines()) == 82  # 81 + the first entry of cluster 1
    line = one_error_line(err)
    assert "offset 0x1032 (4146)" in line and "size_too_small" in line
    code, out, err = call(capsys, "dump", path, "--output", "json")
    assert code == 2
    doc = json.loads(out)
    assert len(doc["entries"]) == 82
    assert doc["error"]["rule"] == "size_too_small" and doc["error"]["ofs"] == 0x1032


def test_dump_hex_labels_every_byte(tmp_path: Path) -> None:
    data = build([D10, raw_bytes(0x07, b"\x01\x02")] + hashes(81), 3)
    data[0x2000 + 100] = 0x42  # dirty byte in the unreplayed cluster
    path = write(tmp_path / "h.bin", data)
    proc = run("dump", path, "--hex")
    assert proc.returncode == 0, proc.err
    out = proc.out
    assert "00000000  32                                               len_entry            50" in out
    assert "00000001  02                                               entry_type           hash" in out
    assert "00000002  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  digest" in out
    assert "00000022  00 00 00 00 00 00 00 10                          physical_sector      16 (0x10)" in out
    assert "0000002a  00 00 00 00 00 00 00 20                          first_logical_sector 32 (0x20)" in out
    assert "00000034  01 02                                            body" in out
    assert "padding              all 0xff" in out
    assert "== cluster 0 at 0x0-0xfff: 82 entries, closed by END" in out
    assert "00000fd6  2a                                               len_entry            42" in out
    assert "== cluster 1 at 0x1000-0x1fff: 1 entry, open, tail at 0x1032" in out
    assert "none                 replay stops here" in out
    assert "== cluster 2 at 0x2000-0x2fff (4096 bytes), not replayed: 1 byte other than 0xff (dirty tail), the first at 0x2064" in out
    for label in hexview.LEGEND:
        assert f"  {label} " in out  # the legend names every label


def _covered(lines: list[str]) -> dict[int, str]:
    """Byte offset -> label, from rendered hex view lines (folded runs included)."""
    labels: dict[int, str] = {}
    for line in lines:
        if not line[:8].strip() or line.startswith(("  ", "==")):
            continue
        ofs = int(line[:8], 16)
        text, label = line[10:57].strip(), line[59:79].strip()
        n = int(text.split()[2]) if "*" in text else len(text.split())
        for k in range(ofs, ofs + n):
            assert k not in labels, f"byte {k:#x} labelled twice"
            labels[k] = label
    return labels


@pytest.mark.parametrize(
    "case",
    ["clean", "torn", "dirty_tail", "dirty_padding", "corrupt", "end_255", "empty"],
)
def test_hexview_spans_tile_each_cluster(case: str) -> None:
    entries = [D10, raw_bytes(0x07, b"")] + hashes(3)
    data = build(entries, 1)
    error: CorruptJournalError | None = None
    if case == "torn":
        data[0x32 + 2 + 150] = 0x31
    elif case == "dirty_tail":
        data[3000:3004] = b"\0\0\0\0"
    elif case == "dirty_padding":
        data = build(hashes(81) + [D10], 2)
        data[0xFD2 + 5] = 0
    elif case == "corrupt":
        data[0x34] = 0x01
    elif case == "end_255":  # a 254-byte entry that meets exactly 255 free bytes (D6)
        data = build([raw_bytes(0x05, b"a" * 252)] * 15 + [raw_bytes(0x05, b"b" * 29)] + [raw_bytes(0x05, b"c" * 252)], 2)
    elif case == "empty":
        data = build([], 1)
    buf = bytes(data[:CLUSTER])
    try:
        parse_cluster(buf)
    except CorruptJournalError as exc:  # the corrupt case
        error = exc  # cluster 0: its offsets are area offsets
    spans = hexview.cluster_spans(buf, 0, error)
    assert spans[0].ofs == 0 and sum(s.length for s in spans) == CLUSTER
    for a, b in itertools.pairwise(spans):
        assert a.ofs + a.length == b.ofs
    assert {s.label for s in spans} <= set(hexview.LEGEND)
    labels = _covered(list(hexview.render_spans(spans, buf, 0)))
    assert sorted(labels) == list(range(CLUSTER))
    if case == "corrupt":
        assert labels[0x32] == "len_entry" and labels[0x34] == "unparsed"
    if case == "end_255":
        end = next(s for s in spans if s.label == "entry_type" and s.note.startswith("end"))
        assert CLUSTER - (end.ofs - 1) == 255
    if case == "dirty_padding":
        assert any(s.label == "padding" and "dirty padding" in s.note for s in spans)
    if case == "dirty_tail":
        assert any(s.label == "tail" and "dirty tail" in s.note for s in spans)
    if case == "torn":
        assert any(s.label == "none" and s.note.startswith("torn write") for s in spans)


def test_dump_hex_corrupt_cluster(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = build([D10], 1)
    data[50:52] = bytes([10, 1])
    path = write(tmp_path / "c.bin", data)
    code, out, err = call(capsys, "dump", path, "--hex")
    assert code == 2
    assert "corrupt at 0x32: end_misaligned" in out
    assert "00000032  0a 01                                            unparsed" in out
    assert "end_misaligned" in one_error_line(err)


def test_dump_hex_refuses_json(capsys: pytest.CaptureFixture[str], small: str) -> None:
    code, out, err = call(capsys, "dump", small, "--hex", "--output", "json")
    assert code == 1 and out == ""
    assert "--hex" in one_error_line(err)


def test_dump_broken_pipe_is_quiet(tmp_path: Path) -> None:
    path = write(tmp_path / "big.bin", build(hashes(81 * 40), 41))  # ~500 KB of lines
    proc = subprocess.Popen(
        [sys.executable, "-m", "qjournal", "dump", path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=SUBPROCESS_ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert first.startswith(b"0x00000000  hash")
    assert err == ""


# -- check -----------------------------------------------------------------------


def test_check_clean_subprocess(multi: str) -> None:
    proc = run("check", multi)
    assert proc.returncode == 0, proc.err
    assert proc.out == (
        f"{multi}: no problems found; 84 entries, 2 of 3 clusters used, tail at 0x1096, {12288 - 0x1096} bytes free.\n"
    )


def _anomalous(kind: str) -> bytearray:
    data = build([D10, D10], 2)
    if kind == "torn_write":
        data[100] = 0x32
    elif kind == "dirty_tail":
        data[0x1800] = 0x00
    elif kind == "unassigned_type":
        data = build([D10, raw_bytes(0xFE, b"\x00")], 2)
    elif kind == "dirty_padding":
        data = build(hashes(82), 2)
        data[0xFD2 + 3] = 0x00
    return data


@pytest.mark.parametrize("kind", ["torn_write", "dirty_tail", "unassigned_type", "dirty_padding"])
def test_check_anomalies_exit_3_strict_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / f"{kind}.bin", _anomalous(kind))
    code, out, _ = call(capsys, "check", path)
    assert code == 3, out
    assert f"anomaly [{kind}]" in out
    assert "no corruption" in out.splitlines()[-1]
    code, out, _ = call(capsys, "check", path, "--strict")
    assert code == 2
    assert f"anomaly, an error under --strict [{kind}]" in out
    assert "--strict counts anomalies as corruption: the check fails." in out.splitlines()[-1]
    code, out, _ = call(capsys, "check", path, "--output", "json")
    doc = json.loads(out)
    assert code == 3 and doc["status"] == "anomalies" and doc["exit_code"] == 3
    assert doc["problems"][0]["kind"] == kind
    assert doc["state"]["anomalies"] == doc["problems"]


def test_check_subprocess_exit_codes_anomalous_and_strict(tmp_path: Path) -> None:
    path = write(tmp_path / "torn.bin", _anomalous("torn_write"))
    proc = run("check", path)
    assert proc.returncode == 3, proc.out + proc.err
    assert f"{path}: offset 0x64 (100): anomaly [torn_write]" in proc.out
    proc = run("check", path, "--strict", "--output", "json")
    assert proc.returncode == 2
    doc = json.loads(proc.out)
    assert doc["status"] == "corrupt" and doc["strict"] is True and doc["num_anomalies"] == 1


def test_check_reports_every_corruption_with_offset(tmp_path: Path) -> None:
    data = build(hashes(81) + [D10], 3)  # cluster 0 closed, cluster 1 open with one entry
    data[0xFD2:0xFD4] = bytes([0x30, 1])  # END too short in cluster 0
    data[0x1032:0x1034] = bytes([18, 2])  # HASH with a 16-byte payload in cluster 1
    path = write(tmp_path / "bad.bin", data)
    proc = run("check", path, "--output", "json")
    assert proc.returncode == 2
    doc = json.loads(proc.out)
    assert doc["status"] == "corrupt" and doc["state"] is None
    assert [(p["kind"], p["ofs"]) for p in doc["problems"]] == [("end_misaligned", 0xFD2), ("hash_too_short", 0x1032)]
    proc = run("check", path)
    assert proc.returncode == 2
    lines = proc.out.splitlines()
    assert lines[0].startswith(f"{path}: offset 0xfd2 (4050): corruption [end_misaligned]: ")
    assert lines[1].startswith(f"{path}: offset 0x1032 (4146): corruption [hash_too_short]: ")
    assert lines[2] == f"{path}: 2 corruptions, 0 anomalies: the journal is corrupt."


@pytest.mark.parametrize(
    "patch, rule",
    [
        (bytes([0, 0]), "size_too_small"),
        (bytes([0xFF, 2]), "regular_too_long"),
        (bytes([0xFF, 0x03]), "regular_too_long"),
        (bytes([40, 1]), "end_misaligned"),
        (bytes([0xFF, 1]), "end_misaligned"),
        (bytes([18, 2]), "hash_too_short"),
    ],
)
def test_check_corrupt_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path, patch: bytes, rule: str) -> None:
    data = build([D10], 1)
    data[50:52] = patch
    path = write(tmp_path / "c.bin", data)
    code, out, _ = call(capsys, "check", path)
    assert code == 2
    assert f"offset 0x32 (50): corruption [{rule}]" in out


def test_check_area_length_is_a_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "short.bin", b"\xff" * 5000)
    code, out, _ = call(capsys, "check", path, "--output", "json")
    assert code == 2
    doc = json.loads(out)
    assert doc["problems"][0]["kind"] == "area_length" and doc["state"] is None
    path = write(tmp_path / "zero.bin", b"")
    code, out, _ = call(capsys, "check", path)
    assert code == 2 and "[area_length]" in out


def test_never_reset_area_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "zeros.bin", bytes(CLUSTER))
    code, _, err = call(capsys, "info", path)
    assert code == 2 and "never reset" in one_error_line(err)


# -- areas inside a larger file --------------------------------------------------


def test_area_at_offset(tmp_path: Path) -> None:
    journal = build([D10], 2)
    journal[0x1010] = 0x00  # a dirty byte in the area's second cluster
    blob = os.urandom(65536) + bytes(journal) + os.urandom(4096)
    path = write(tmp_path / "image.bin", blob)
    proc = run("check", path, "--offset", "64K", "--length", "8K")
    assert proc.returncode == 3, proc.out + proc.err
    assert "offset 0x1010 (4112) of the area, file offset 0x11010" in proc.out
    proc = run("info", path, "--offset", "0x10000", "--length", "8192", "--output", "json")
    doc = json.loads(proc.out)
    assert doc["area_offset"] == 65536 and doc["num_entries"] == 1
    assert doc["anomalies"][0]["file_ofs"] == 0x11010


# -- bad input: never a traceback, one line, exit 1 ------------------------------


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["info"], "PATH"),
        (["frobnicate", "x"], "invalid choice"),
        (["info", "X", "--offset", "12Q"], "invalid size '12Q'"),
        (["info", "X", "--offset", "-1"], "invalid size '-1'"),
        (["info", "X", "--length", "1000"], "multiple of 4096"),
        (["info", "X", "--length", "0"], "multiple of 4096"),
        (["dump", "X", "--output", "yaml"], "invalid choice"),
        (["check", "X", "--bogus"], "unrecognized arguments"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    code, out, err = call(capsys, *argv)
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert needle in line and "--help" in line


def test_usage_error_subprocess() -> None:
    proc = run("dump", "x", "--length", "64Q")
    assert proc.returncode == 1 and proc.out == ""
    assert one_error_line(proc.err).startswith("qjournal: argument --length: invalid size '64Q'")


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys)
    assert code == 1 and "COMMAND is required" in err


@pytest.mark.parametrize("command", ["info", "dump", "check"])
def test_missing_file_directory_short_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    missing = str(tmp_path / "nope.bin")
    code, _, err = call(capsys, command, missing)
    assert code == 1 and one_error_line(err) == f"qjournal: {missing}: no such file"
    code, _, err = call(capsys, command, str(tmp_path))
    assert code == 1 and "is a directory" in one_error_line(err)
    path = write(tmp_path / "j.bin", build([], 2))
    code, _, err = call(capsys, command, path, "--offset", "4K", "--length", "8K")
    line = one_error_line(err)
    assert code == 1 and path in line and "shorter than offset + length = 12288" in line
    code, _, err = call(capsys, command, path, "--offset", "1M")
    assert code == 1 and "past the end of the file" in one_error_line(err)


def test_missing_file_subprocess(tmp_path: Path) -> None:
    proc = run("check", str(tmp_path / "nope.bin"))
    assert proc.returncode == 1 and proc.out == ""
    assert one_error_line(proc.err) == f"qjournal: {tmp_path / 'nope.bin'}: no such file"
    proc = run("dump", str(tmp_path))
    assert proc.returncode == 1 and "is a directory" in one_error_line(proc.err)
    path = write(tmp_path / "j.bin", build([D10], 1))
    proc = run("info", path, "--offset", "1", "--length", "4K")
    assert proc.returncode == 1 and proc.out == ""
    assert one_error_line(proc.err) == f"qjournal: {path}: the file is 4096 bytes, shorter than offset + length = 4097"


def test_info_gives_the_hint_dump_and_check_give(tmp_path: Path) -> None:
    """An area that does not look like a journal (zeros): info says so as dump and check do, the library's hint whole."""
    path = write(tmp_path / "zeros.bin", bytes(2 * CLUSTER))
    hint = "the area at this offset does not look like a journal"
    info, dump, check = run("info", path), run("dump", path), run("check", path)
    assert info.returncode == dump.returncode == check.returncode == 2
    assert info.out == dump.out == ""
    assert info.err == dump.err, (info.err, dump.err)
    assert one_error_line(info.err).endswith("[size_too_small]")
    assert info.err.splitlines()[1].startswith(f"qjournal: hint: {hint}")
    assert f"{path}: hint: {hint}" in check.out
    as_json = run("info", path, "--output", "json")
    assert (as_json.returncode, as_json.err) == (2, info.err)
    error = json.loads(as_json.out)["error"]  # and the error as JSON on stdout, for jq
    assert (error["rule"], error["ofs"]) == ("size_too_small", 0) and error["hint"].startswith(hint)


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = run("--debug", "info", str(tmp_path / "nope.bin"), check_no_traceback=False)
    assert proc.returncode == 1 and "Traceback" in proc.err and "JournalIOError" in proc.err
    assert proc.err.strip().splitlines()[-1] == f"qjournal: {tmp_path / 'nope.bin'}: no such file"
    proc = run("info", str(tmp_path / "nope.bin"), "--debug", check_no_traceback=False)
    assert "Traceback" in proc.err


def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], small: str) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(read.INFO, "run", interrupted)
    code, _, err = call(capsys, "info", small)
    assert code == 130 and one_error_line(err) == "qjournal: interrupted"


def test_internal_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], small: str) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(read.CHECK, "run", broken)
    code, _, err = call(capsys, "check", small)
    assert code == 1 and "internal error: RuntimeError: boom" in one_error_line(err)


@pytest.mark.parametrize("text, value", [("4096", 4096), ("64K", 65536), ("64k", 65536), ("1M", 1 << 20), ("1MiB", 1 << 20), ("2G", 2 << 30), ("0x1000", 4096), ("512B", 512)])
def test_parse_size(text: str, value: int) -> None:
    assert cli.parse_size(text) == value


# -- help ------------------------------------------------------------------------


def test_help_subprocess() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("info", "dump", "check"):
        assert command in proc.out
    assert "exit codes:" in proc.out


def test_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"info", "dump", "get", "check", "create", "append", "pack", "reset", "index", "verify"} <= set(commands)
    for command in commands:
        code, out, _ = call(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: qjournal {command}"), command
        assert "--debug" in out


def test_every_command_module_is_in_the_table_once() -> None:
    """A command is a module's ``Command`` plus one line in ``parser.COMMANDS``: a module whose command is not in
    the table (or is twice) is caught here, and each help lists that command's own exit codes, then 130."""
    import importlib
    import pkgutil

    from qjournal.cli import parser
    from qjournal.cli.base import Command

    defined = []
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"qjournal.cli.{info.name}")
        defined += [v for v in vars(module).values() if isinstance(v, Command) and v.run.__module__ == module.__name__]
    names = [c.name for c in parser.COMMANDS]
    assert len(names) == len(set(names)) and sorted(names) == sorted(c.name for c in defined)
    for command in parser.COMMANDS:
        codes = [code for code, _ in command.codes]
        assert codes == sorted(set(codes)) and 130 not in codes, command.name
        epilog = parser.exit_codes(command.codes)
        assert [int(line.split()[0]) for line in epilog.splitlines()[1:]] == [*codes, 130]


# -- progress bar ----------------------------------------------------------------



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty behaviour")
def test_progress_bar_only_on_a_terminal_and_large_areas(tmp_path: Path) -> None:
    big = write(tmp_path / "big.bin", build(hashes(100), cli.PROGRESS_MIN_CLUSTERS + 1))
    small_path = write(tmp_path / "small.bin", build(hashes(100), cli.PROGRESS_MIN_CLUSTERS))
    code, out, err = stderr_on_a_terminal(["check", big], env=SUBPROCESS_ENV, timeout=60)
    assert code == 0 and "no problems found" in out
    assert "check:" in err and "%|" in err  # tqdm drew its bar on the terminal
    code, out, err = stderr_on_a_terminal(["dump", big, "--output", "jsonl"], env=SUBPROCESS_ENV, timeout=60)
    assert code == 0 and len(out.splitlines()) == 100 and "dump:" in err and "%|" in err
    code, out, err = stderr_on_a_terminal(["pack", big, str(tmp_path / "packed.bin")], env=SUBPROCESS_ENV, timeout=60)
    assert code == 0 and "100 live written" in out and "pack:" in err and "%|" in err
    code, _, err = stderr_on_a_terminal(["check", small_path], env=SUBPROCESS_ENV, timeout=60)
    assert code == 0 and err == ""  # small area: no bar
    proc = run("check", big)  # stderr a pipe: no bar
    assert proc.returncode == 0 and proc.err == ""


def test_check_progress_callback_reaches_the_area_end(tmp_path: Path) -> None:
    data = build(hashes(100), 70)
    seen: list[int] = []
    with JournalReader(bytes(data)) as reader:
        reader.check(seen.append)
    assert seen == sorted(seen) and seen[-1] == len(data) and seen[0] > 0


# -- golden vectors (when present) -----------------------------------------------


def _vectors() -> list[Path]:
    return sorted(VECTORS.glob("*.json")) if VECTORS.is_dir() else []


@pytest.mark.parametrize("meta", _vectors(), ids=lambda p: p.stem)
def test_golden_vectors(capsys: pytest.CaptureFixture[str], meta: Path) -> None:
    expected = json.loads(meta.read_text())
    path = str(meta.with_suffix(".bin"))
    code, out, _ = call(capsys, "check", path, "--output", "json")
    doc = json.loads(out)
    if "error" in expected:
        assert code == 2
        assert (doc["problems"][0]["kind"], doc["problems"][0]["ofs"]) == (expected["error"]["rule"], expected["error"]["offset"])
        return
    anomalies = [(a["kind"], a["ofs"]) for a in expected.get("anomalies", [])]
    assert code == (3 if anomalies else 0)
    assert [(p["kind"], p["ofs"]) for p in doc["problems"]] == anomalies
    for key, value in expected.get("state", {}).items():
        assert doc["state"][key] == value, key
    code, out, _ = call(capsys, "dump", path, "--output", "jsonl")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == expected["replay"]
