"""The Web IDE samples: made by the writer, reproducible, and each showing what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import qjournal

SAMPLES = Path(__file__).resolve().parents[1] / "formats" / "samples"


def test_samples_match_their_script() -> None:
    run = subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), "--check"], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_healthy() -> None:
    state = qjournal.read(SAMPLES / "healthy.qjournal").state()
    assert (state.num_entries, state.ofs_tail, state.num_clusters) == (12, 12 * 50, 2)
    assert state.is_clean


def test_end_255() -> None:
    data = (SAMPLES / "end_255.qjournal").read_bytes()
    assert data[3841:3843] == b"\xff\x01"
    entries = list(qjournal.read(data))
    assert entries[16].ofs == 4096 and entries[16].len_entry == 254
    assert qjournal.read(data).state().is_clean


def test_torn() -> None:
    state = qjournal.read(SAMPLES / "torn.qjournal").state()
    assert [p.code for p in state.anomalies] == ["torn_write", "dirty_tail"]
    assert state.num_entries == 12, "the uncommitted batch is not replayed"


def test_corrupt() -> None:
    with pytest.raises(qjournal.CorruptJournalError) as info:
        qjournal.read(SAMPLES / "corrupt.qjournal").state()
    assert (info.value.code, info.value.offset) == ("size_too_small", 150)
