"""ClusterStream answers exactly the calls the generated parser makes, with the runtime's semantics.

The stream (qjournal.stream) implements only what ``Qcow2Journal.Cluster`` and
``Qcow2Journal.Entry`` call on their ``_io``; this test reads those calls out of
the generated module, so a regenerated parser that needs another call fails
here rather than at a user's replay.
"""

from __future__ import annotations

import ast
import inspect

import pytest
from kaitaistruct import EndOfStreamError, InvalidArgumentError, KaitaiStream

from qjournal.generated import qcow2_journal
from qjournal.stream import ClusterStream

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


def test_the_stream_has_every_call_the_cluster_parser_makes() -> None:
    needed = _io_calls("Cluster") | _io_calls("Entry")
    assert needed == {"pos", "read_bytes", "read_bytes_full", "read_u1", "read_u8be", "size"}, needed
    public = {n for n in vars(ClusterStream) if not n.startswith("_")}
    assert needed <= public
    assert public - needed == {"is_eof"}, "the stream keeps no call the parser does not make (is_eof: the root's)"


@pytest.mark.parametrize("buf", [b"", b"\x01", bytes(range(20))])
def test_the_stream_reads_as_the_runtime_stream_does(buf: bytes) -> None:
    ours, theirs = ClusterStream(buf), KaitaiStream.__new__(KaitaiStream)
    import io

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
        ClusterStream(buf).read_bytes(-1)
