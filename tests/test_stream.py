"""ClusterStream answers exactly the calls the generated parser makes, with the runtime's semantics.

The stream (qjournal.stream) implements only what ``Qcow2Journal.Cluster`` and
``Qcow2Journal.Entry`` call on their ``_io``; this test reads those calls out of
the generated module, so a regenerated parser that needs another call fails
here rather than at a user's replay.

Both implementations are held to the same answers: the pure-Python
``PureClusterStream`` and, when it was built, the compiled
``qjournal._cstream.ClusterStream``. ``QJOURNAL_EXPECT_STREAM=compiled|pure``
(CI sets it) asserts which one the reader uses, so a build that silently lost
its extension fails rather than passes slower.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from kaitaistruct import EndOfStreamError, InvalidArgumentError, KaitaiStream

from qjournal import stream
from qjournal.generated import qcow2_journal
from qjournal.stream import ClusterStream, PureClusterStream

EXPECT_ENV = "QJOURNAL_EXPECT_STREAM"


def _compiled() -> type | None:
    try:
        return importlib.import_module("qjournal._cstream").ClusterStream  # type: ignore[no-any-return]
    except ImportError:
        return None


COMPILED = _compiled()
IMPLEMENTATIONS = [pytest.param(PureClusterStream, id="pure"),
                   pytest.param(COMPILED, id="compiled",
                                marks=pytest.mark.skipif(COMPILED is None and os.environ.get(EXPECT_ENV) != "compiled",
                                                         reason="the compiled stream is not built"))]

MODULE = ast.parse(inspect.getsource(qcow2_journal))


def _io_calls(class_name: str) -> set[str]:
    """Every ``self._io.NAME(...)`` the generated class ``class_name`` makes."""
    cls = next(n for n in ast.walk(MODULE) if isinstance(n, ast.ClassDef) and n.name == class_name)
    calls = set()
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "_io"
        ):
            calls.add(node.func.attr)
    return calls


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_the_stream_has_every_call_the_cluster_parser_makes(impl: type) -> None:
    needed = _io_calls("Cluster") | _io_calls("Entry")
    assert needed == {"pos", "read_bytes", "read_bytes_full", "read_u1", "read_u8be", "size"}, needed
    public = {n for n in vars(impl) if not n.startswith("_")}
    assert needed <= public
    assert public - needed == {"is_eof"}, "the stream keeps no call the parser does not make (is_eof: the root's)"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("buf", [b"", b"\x01", bytes(range(20))])
def test_the_stream_reads_as_the_runtime_stream_does(impl: type, buf: bytes) -> None:
    ours, theirs = impl(buf), KaitaiStream.__new__(KaitaiStream)
    KaitaiStream.__init__(theirs, io.BytesIO(buf))
    assert (ours.size(), ours.pos(), ours.is_eof()) == (theirs.size(), theirs.pos(), theirs.is_eof())
    for call, args in (("read_u1", ()), ("read_bytes", (3,)), ("read_u8be", ()), ("read_bytes", (0,)), ("read_bytes_full", ())):
        try:
            want = getattr(theirs, call)(*args)
        except EndOfStreamError:
            with pytest.raises(EndOfStreamError):
                getattr(ours, call)(*args)
            continue
        assert getattr(ours, call)(*args) == want, call
        assert ours.pos() == theirs.pos(), call
    with pytest.raises(InvalidArgumentError):
        impl(buf).read_bytes(-1)


def _outcome(stream: object, call: str, args: tuple[object, ...]) -> tuple[object, ...]:
    """What one call does: ("ok", value, pos) or (exception type, message, its args, pos)."""
    try:
        value = getattr(stream, call)(*args)
    except (EndOfStreamError, InvalidArgumentError) as exc:
        return (type(exc).__name__, str(exc), exc.args, stream.pos())  # type: ignore[attr-defined]
    return ("ok", value, type(value).__name__, stream.pos())  # type: ignore[attr-defined]


@pytest.mark.skipif(COMPILED is None, reason="the compiled stream is not built")
def test_the_compiled_stream_answers_every_call_as_the_pure_one_does() -> None:
    """Random buffers and call sequences, messages and exception arguments included."""
    rng = random.Random(13)
    lengths = [0, -1, -(2**70), 2**70, 2**63 - 1, 2**63, 1, 7, 8, 9, 4096]
    for _ in range(3000):
        buf = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 7, 8, 9, 17, 64])))
        pure, compiled = PureClusterStream(buf), COMPILED(buf)  # type: ignore[misc]
        for _ in range(rng.randrange(1, 12)):
            call = rng.choice(["size", "pos", "is_eof", "read_u1", "read_u8be", "read_bytes", "read_bytes_full"])
            args: tuple[object, ...] = ()
            if call == "read_bytes":
                args = (rng.choice([*lengths, rng.randrange(0, 20)]),)
            assert _outcome(compiled, call, args) == _outcome(pure, call, args), (buf.hex(), call, args)


@pytest.mark.skipif(COMPILED is None, reason="the compiled stream is not built")
def test_the_compiled_stream_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        COMPILED(bytearray(b"ab"))  # type: ignore[misc]
    assert COMPILED(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09").read_u8be() == 0x0102030405060708  # type: ignore[misc]
    assert COMPILED(b"\xff" * 8).read_u8be() == 2**64 - 1  # type: ignore[misc]


def test_the_stream_in_use_is_the_one_ci_expects() -> None:
    """Under QJOURNAL_EXPECT_STREAM, the reader uses that implementation (a lost extension fails CI here)."""
    assert stream.IMPLEMENTATION in ("compiled", "pure")
    assert stream.implementation().startswith(stream.IMPLEMENTATION + " stream (")
    assert (ClusterStream is PureClusterStream) == (stream.IMPLEMENTATION == "pure")
    expected = os.environ.get(EXPECT_ENV)
    if expected:
        assert expected in ("compiled", "pure"), f"{EXPECT_ENV} must be compiled or pure, not {expected!r}"
        assert expected == stream.IMPLEMENTATION, stream.implementation()
    from qjournal import cluster

    assert vars(cluster)["ClusterStream"] is ClusterStream


@pytest.mark.parametrize("value,expected", [("1", "pure"), ("yes", "pure"), ("0", None), ("", None)])
def test_the_environment_variable_forces_the_pure_stream(value: str, expected: str | None) -> None:
    # the qjournal under test (a source tree or an installed package), whatever the working directory holds
    package_parent = str(Path(stream.__file__).resolve().parents[1])
    env = {**os.environ, stream.PURE_STREAM_ENV: value, "PYTHONPATH": package_parent}
    proc = subprocess.run([sys.executable, "-c", "import qjournal.stream as s; print(s.IMPLEMENTATION)"],
                          cwd=Path(package_parent).parent, env=env, capture_output=True, text=True, check=True)
    default = "compiled" if COMPILED is not None else "pure"
    assert proc.stdout.strip() == (expected or default)
