"""The one spill store (qjournal.spill): nothing left on disk once open, errors that name the folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qjournal.analysis import _Store
from qjournal.dedup_map import DigestMap
from qjournal.errors import JournalIOError
from qjournal.spill import Spill


def test_the_database_is_unlinked_once_open(tmp_path: Path) -> None:
    spill = Spill("the test table", "src", tmp_path, 1024)
    db = spill.open("CREATE TABLE t (k BLOB, v INTEGER)")
    assert os.listdir(tmp_path) == []  # a killed process leaves nothing
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i.to_bytes(2, "big"), i) for i in range(1000)])
    assert db.execute("SELECT sum(v) FROM t").fetchone() == (499500,)
    spill.close()
    assert spill.db is None


def test_a_missing_folder_is_named_with_the_way_out(tmp_path: Path) -> None:
    spill = Spill("the test table", "src", tmp_path / "nowhere", 1024)
    with pytest.raises(JournalIOError) as err:
        spill.open()
    text = str(err.value)
    assert text.startswith("src: the test table spilled to disk in ") and str(tmp_path / "nowhere") in text
    assert "spill_dir=" in text and "TMPDIR" in text


@pytest.mark.parametrize("user", ["digest map", "analysis"])
def test_every_user_leaves_nothing_in_the_spill_folder(tmp_path: Path, user: str) -> None:
    if user == "digest map":
        m = DigestMap(memory_limit=1, spill_dir=tmp_path)
        for i in range(100):
            m.put(i.to_bytes(32, "big"), i)
        assert m.is_spilled
        m.close()
    else:
        store = _Store([4096], ["a"], limit=1, listing=True, spill_dir=tmp_path)
        store.add(4096, 0, [i.to_bytes(32, "big") for i in range(100)], list(range(100)))
        assert store.spilled
        store.close()
    assert os.listdir(tmp_path) == []
