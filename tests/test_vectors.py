"""The golden vectors: what the reader makes of each, against its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from format_doc import section

import qjournal
from qjournal import CorruptJournalError

VECTORS = Path(__file__).resolve().parent / "vectors"
NAMES = sorted(p.stem for p in VECTORS.glob("*.json"))


def load(name: str) -> tuple[bytes, dict[str, Any]]:
    return (VECTORS / f"{name}.bin").read_bytes(), json.loads((VECTORS / f"{name}.json").read_text())


def test_vectors_present() -> None:
    # every class the issue names has a vector
    must = {"d10_example", "empty", "multi_cluster", "end_size_2", "end_size_255", "full",
            "unassigned_types", "torn_write", "dirty_tail"}
    assert must <= set(NAMES)
    rules = {load(n)[1]["error"]["rule"] for n in NAMES if "error" in load(n)[1]}
    assert rules == set(qjournal.CORRUPTION_RULES), "one vector per corruption class"


def test_vectors_match_their_builder() -> None:
    build = VECTORS / "build_vectors.py"
    run = subprocess.run([sys.executable, str(build), "--check"], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("name", NAMES)
def test_replay(name: str) -> None:
    data, expect = load(name)
    got = []
    if expect.get("error", {}).get("rule") == "area_length":  # refused at open, before any entry
        with pytest.raises(CorruptJournalError, match="not a non-zero multiple of 4096"):
            qjournal.read(data)
        return
    with qjournal.read(data) as j:
        if "error" in expect:
            with pytest.raises(CorruptJournalError) as info:
                for e in j.replay():
                    got.append(e.to_dict())
            assert info.value.code == expect["error"]["rule"]
            assert info.value.offset == expect["error"]["offset"]
            assert f"{expect['error']['offset']:#x}" in str(info.value)
        else:
            got = [e.to_dict() for e in j.replay()]
    assert got == expect["replay"]


@pytest.mark.parametrize("name", NAMES)
def test_state_and_check(name: str) -> None:
    data, expect = load(name)
    if "error" in expect and expect["error"]["rule"] == "area_length":
        with pytest.raises(CorruptJournalError) as info:
            qjournal.read(data)
        assert (info.value.code, info.value.offset) == ("area_length", 0)
        return
    with qjournal.read(data) as j:
        report = j.check()
        if "error" in expect:
            first = next(p for p in report.problems if p.is_corruption)
            assert (first.code, first.ofs) == (expect["error"]["rule"], expect["error"]["offset"])
            assert report.state is None and report.is_corrupt
            with pytest.raises(CorruptJournalError):
                j.state()
            return
        state = j.state()
    assert not report.is_corrupt
    for key, value in expect["state"].items():
        assert getattr(state, key) == value, key
    assert [{"kind": p.code, "ofs": p.ofs} for p in state.anomalies] == expect["anomalies"]
    assert report.has_anomalies == bool(expect["anomalies"])


def test_d10_vector_is_the_documented_hex() -> None:
    """The D10 vector equals the hex dump printed in docs/format.md."""
    block = section("D10")
    rows = re.findall(r"^\s+([0-9a-f]{4}): ((?:[0-9a-f]{2} ?)+)", block, re.M)
    shown = bytes.fromhex("".join(r[1] for r in rows))
    assert [int(r[0], 16) for r in rows] == list(range(0, len(shown), 16))
    assert re.search(r"ff to offset 0fff", block)
    expected = shown + b"\xff" * (0x1000 - len(shown))
    assert load("d10_example")[0] == expected
