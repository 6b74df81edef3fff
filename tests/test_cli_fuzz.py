"""Hostile bytes through the read commands, in-process: never an internal error.

Areas are built from plausible pieces (entries of every kind, bad sizes, stray
bytes) so the generated parser's rules, the hex view's walk over a corrupt
cluster and the anomalies are all reached. QJOURNAL_HYPOTHESIS_EXAMPLES (see
conftest.py) makes a long run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import CLUSTER, _covered

from qjournal import cli, hexview
from qjournal.errors import CorruptJournalError
from qjournal.reader import JournalReader, parse_cluster

_piece = st.one_of(
    st.builds(lambda d, p, lg: bytes([2 + len(d) + 16, 2]) + d + p.to_bytes(8, "big") + lg.to_bytes(8, "big"),
              st.binary(min_size=1, max_size=40), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    st.builds(lambda t, b: bytes([2 + len(b), t]) + b, st.integers(0, 255), st.binary(max_size=60)),
    st.binary(min_size=1, max_size=4),  # stray bytes: bad sizes, torn headers
    st.integers(1, 300).map(lambda n: b"\xff" * n),
)


@st.composite
def areas(draw: st.DrawFn) -> bytes:
    num_clusters = draw(st.integers(1, 3))
    data = bytearray(b"\xff" * (CLUSTER * num_clusters))
    pos = 0
    for piece in draw(st.lists(_piece, max_size=40)):
        if draw(st.booleans()) and pos % CLUSTER > CLUSTER - 300:  # close the cluster with an END, sometimes
            room = CLUSTER - pos % CLUSTER
            data[pos : pos + 2] = bytes([room & 0xFF, 1])
            pos += room
        if pos + len(piece) > len(data):
            break
        data[pos : pos + len(piece)] = piece
        pos += len(piece)
    for _ in range(draw(st.integers(0, 3))):  # a few flipped bytes anywhere
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=areas())
def test_read_commands_never_fail_internally(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    with JournalReader(data) as reader:
        report = reader.check()
    expected = 2 if report.is_corrupt else 3 if report.has_anomalies else 0
    for argv in (["check"], ["check", "--output", "json"], ["info", "--output", "json"], ["dump", "--all"], ["dump", "--output", "json"], ["dump", "--hex"]):
        code = cli.main([argv[0], str(path), *argv[1:]])
        out, err = capsys.readouterr()
        assert "internal error" not in err and "Traceback" not in err, (argv, err)
        if argv[0] == "check":
            assert code == expected, (argv, out)
        elif argv[0] == "dump" and argv[1:] == ["--output", "json"]:
            doc = json.loads(out)  # a complete document even when replay meets a corruption
            assert ("error" in doc) == (code == 2)
        else:
            assert code in (0, 2), (argv, err)
            if code == 2:  # one error line, and a hint line when the area does not start like a journal
                lines = err.strip().splitlines()
                assert err.startswith("qjournal: ") and (len(lines) == 1 or lines[1].startswith("qjournal: hint: "))


@settings(max_examples=60)
@given(data=areas())
def test_hex_view_labels_every_byte_of_any_cluster(data: bytes) -> None:
    for index in range(len(data) // CLUSTER):
        buf = data[index * CLUSTER : (index + 1) * CLUSTER]
        base = index * CLUSTER
        try:
            parse_cluster(buf)
            error = None
        except CorruptJournalError as exc:
            error = CorruptJournalError(exc.code, exc.reason, base + (exc.offset or 0))
        spans = hexview.cluster_spans(buf, base, error)
        labels = _covered(list(hexview.render_spans(spans, buf, base)))
        assert sorted(labels) == list(range(base, base + CLUSTER))
