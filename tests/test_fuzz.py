"""Fuzzing the public reader, ``check`` and open-for-append (issue 5).

Every input, mutated golden vectors and random areas, goes through the same
examination (:func:`examine`):

- only the project's documented errors (:class:`qjournal.JournalError` and its
  subclasses) escape; the CLI never reports an "internal error";
- every input answers within a deadline (``QJOURNAL_FUZZ_DEADLINE`` seconds,
  SIGALRM): a hang fails the test instead of hanging it;
- a read never changes its input: the buffer's bytes, and for a file its bytes
  and its mtime;
- consistency: ``check()`` finds corruption iff ``replay()`` and ``state()`` raise
  :class:`CorruptJournalError` (at the same rule and offset), and ``replay()``
  yields exactly the entries ``state()`` counts;
- the reader agrees with :func:`model_scan`, a second reading of
  docs/format.md D3-D8 written here from the text alone: same entries, same
  corruption rules and offsets, same anomalies, same state;
- ``qjournal check`` exits 0, 2 or 3 as that report says, and ``info``/``dump``
  exit 0, 1 or 2;
- opening a copy for append either refuses with a JournalError, changing
  nothing (a corrupt area; or bytes past the tail that no interrupted append
  leaves, exactly when :func:`model_leftovers`, a second reading of the
  leftovers rule, says so), or accepts, and then an append keeps every
  replayed entry and adds the new one at the end.

Run length: ``QJOURNAL_FUZZ_EXAMPLES`` (default 200 inputs for the in-memory
test, a quarter of that for the file test). Every input that ever failed is kept
in ``tests/vectors/regressions/`` and replayed by :func:`test_regression_vector`;
a failing input of a fuzz run is written to ``QJOURNAL_FUZZ_FAILURES`` (default
``tests/vectors/regressions/new/``) so it can be added there.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qjournal
from qjournal import CorruptJournalError, HashEntry, JournalError, RawEntry
from qjournal.errors import NotAJournalError
from qjournal.magic import LEN_SNIFF, identify

HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors"
REGRESSIONS = VECTORS / "regressions"
GOLDEN = sorted(p for p in VECTORS.glob("*.bin"))
GOLDEN_BYTES = [p.read_bytes() for p in GOLDEN]

EXAMPLES = int(os.environ.get("QJOURNAL_FUZZ_EXAMPLES", "200"))
DEADLINE = float(os.environ.get("QJOURNAL_FUZZ_DEADLINE", "10"))
FAILURES = Path(os.environ.get("QJOURNAL_FUZZ_FAILURES", str(REGRESSIONS / "new")))

CLUSTER = 4096
END, HASH, NONE = 0x01, 0x02, 0xFF


# -- a second reading of the format, from docs/format.md alone ----------------


@dataclass
class Model:
    """What docs/format.md says a reader must make of an area."""

    entries: list[EntryKey] = field(default_factory=list)
    """Replayed entries as (ofs, entry_type, body) up to the first corruption."""
    corruptions: list[tuple[str, int]] = field(default_factory=list)
    """(rule, offset) of each corrupt cluster a check visits, in order."""
    anomalies: list[tuple[str, int]] = field(default_factory=list)
    """(kind, offset), in area order; meaningful when there is no corruption."""
    state: dict[str, Any] | None = None
    headers: list[int] = field(default_factory=list)
    """Offsets of every entry header a check visits (regular, END, NONE): mutation targets."""
    is_image: bool = False
    """A disk image by D26 (an image's magic, and a first cluster that is no journal cluster): no journal is read."""


def model_is_image(data: bytes | bytearray) -> bool:
    """D26: the data starts with a disk image's magic and its first cluster (padded with 0xFF) does not replay cleanly."""
    if identify(bytes(data[:LEN_SNIFF])) is None:
        return False
    first = bytes(data[:CLUSTER]).ljust(CLUSTER, b"\xff")
    return bool(model_scan(first).corruptions)


def _first_not_ff(data: bytes | bytearray, start: int, stop: int) -> int | None:
    for i in range(start, stop):
        if data[i] != 0xFF:
            return i
    return None


def _rule(size: int, typ: int, room: int) -> str | None:
    """The D3/D5/D8 rule an entry header at ``room`` bytes before the boundary breaks."""
    if size < 2:
        return "size_too_small"
    if typ == NONE:
        return None
    if typ == END:
        return None if size == room else "end_misaligned"
    if size > 254:
        return "regular_too_long"
    if size > room:
        return "crosses_boundary"
    if size == room:
        return "no_end"
    if size == room - 1:
        return "no_room_for_header"
    if typ == HASH and size < 19:
        return "hash_too_short"
    return None


def model_scan(data: bytes | bytearray) -> Model:
    """Replay and check ``data`` as D1-D8 describe, independently of qjournal.reader."""
    m = Model()
    n = len(data)
    if n == 0 or n % CLUSTER:
        m.corruptions.append(("area_length", 0))
        return m
    num_clusters = n // CLUSTER
    counts: Counter[str] = Counter()
    used = 0
    ofs_tail, stop_index = n, num_clusters
    replaying = True
    for index in range(num_clusters):
        base = index * CLUSTER
        o = 0
        pending: list[EntryKey] = []
        pending_anomalies: list[tuple[str, int]] = []
        regular = 0
        closed = False
        while True:
            size, typ = data[base + o], data[base + o + 1]
            m.headers.append(base + o)
            bad = _rule(size, typ, CLUSTER - o)
            if bad:
                m.corruptions.append((bad, base + o))
                used += 1
                if replaying:
                    m.entries.extend(pending)
                    replaying = False
                closed = True
                pending_anomalies = []
                regular = -1
                break
            if typ == NONE:
                break
            if typ == END:
                first = _first_not_ff(data, base + o + 2, base + CLUSTER)
                if first is not None:
                    pending_anomalies.append(("dirty_padding", first))
                closed = True
                break
            regular += 1
            if typ != HASH:
                pending_anomalies.append(("unassigned_type", base + o))
            counts["hash" if typ == HASH else f"{typ:#04x}"] += 1
            pending.append((base + o, typ, bytes(data[base + o + 2 : base + o + size])))
            o += size
        if regular == -1:
            continue  # a corrupt cluster: a check goes on as if it were closed
        m.anomalies.extend(pending_anomalies)
        if replaying:
            m.entries.extend(pending)
        if regular or closed:
            used += 1
        if closed:
            continue
        replaying = False
        ofs_tail, stop_index = base + o, index
        if data[base + o] != 0xFF:
            m.anomalies.append(("torn_write", base + o))
        first = _first_not_ff(data, base + o + 2, n)
        if first is not None:
            m.anomalies.append(("dirty_tail", first))
        break
    if m.corruptions:
        return m
    in_cluster = ofs_tail % CLUSTER
    m.state = {
        "len_area": n,
        "num_clusters": num_clusters,
        "num_clusters_used": used,
        "ofs_tail": ofs_tail,
        "len_free": n - ofs_tail,
        "is_full": ofs_tail >= n or (stop_index == num_clusters - 1 and in_cluster + 4 > CLUSTER),
        "num_entries": sum(counts.values()),
        "entries_by_type": dict(counts),
    }
    return m


EntryKey = tuple[int | None, int, bytes]
"""An entry as (ofs, entry_type, body bytes)."""


def entry_key(e: qjournal.Entry) -> EntryKey:
    """An entry as (ofs, entry_type, body bytes), comparable with the model's."""
    if isinstance(e, HashEntry):
        body = e.digest + e.physical_sector.to_bytes(8, "big") + e.first_logical_sector.to_bytes(8, "big")
        return (e.ofs, HASH, body)
    assert isinstance(e, RawEntry), f"replay yielded {type(e).__name__}"
    return (e.ofs, e.entry_type, e.body)


# -- the deadline ---------------------------------------------------------------


class _Overrun(BaseException):
    """Raised by SIGALRM; a BaseException so no ``except Exception`` under test swallows it."""


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Fail (AssertionError) when the block runs longer than ``seconds``: a hang is a failure."""

    def on_alarm(signum: int, frame: object) -> None:
        raise _Overrun

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Overrun:
        raise AssertionError(f"{what}: no answer within {seconds} s (a hang?)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- one input, examined ----------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``qjournal ARGV`` in this process: (exit code, stdout, stderr)."""
    from qjournal import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def examine_reader(data: bytes) -> Model:
    """Replay, check and state over ``data`` in memory; compare with each other and the model."""
    model = model_scan(data)
    model.is_image = model_is_image(data)
    buf = bytearray(data)
    try:
        reader = qjournal.read(buf)
    except NotAJournalError:
        assert model.is_image and bytes(buf) == data
        return model
    except CorruptJournalError as exc:
        assert (exc.code, exc.offset) == ("area_length", 0) and model.corruptions == [("area_length", 0)]
        assert bytes(buf) == data
        return model
    got: list[qjournal.Entry] = []
    replay_error: CorruptJournalError | None = None
    try:
        for e in reader.replay():
            got.append(e)
    except CorruptJournalError as exc:
        replay_error = exc
    report = reader.check(give_up_after=sys.maxsize)  # every problem, as the model lists them
    default = reader.check()  # gives up after a few problems on an area that does not start like a journal
    assert default.problems == report.problems[: len(default.problems)]
    assert default.stopped_at is None or default.hint is not None, "stopped early on an area that starts like a journal"
    assert default.stopped_at is not None or default.problems == report.problems
    state_error: CorruptJournalError | None = None
    try:
        state = reader.state()
    except CorruptJournalError as exc:
        state_error, state = exc, None
    assert bytes(buf) == data, "a read changed its input"

    # consistency of the three views
    corrupt = [(p.code, p.ofs) for p in report.problems if p.is_corruption]
    assert report.is_corrupt == bool(corrupt) == (replay_error is not None) == (state_error is not None)
    assert (report.state is None) == report.is_corrupt
    if corrupt:
        assert replay_error is not None and state_error is not None
        assert (replay_error.code, replay_error.offset) == corrupt[0] == (state_error.code, state_error.offset)
    else:
        assert state is not None and state == report.state
        assert state.num_entries == len(got)
        assert state.entries_by_type == dict(Counter(qjournal.reader.type_name(e.entry_type) for e in got))
        assert all(e.ofs is not None and e.ofs + e.len_entry <= state.ofs_tail for e in got)

    # agreement with the model
    assert [entry_key(e) for e in got] == model.entries
    assert corrupt == model.corruptions
    if not corrupt:
        anomalies = [(p.code, p.ofs) for p in report.problems]
        assert anomalies == model.anomalies
        assert state is not None
        got_state = {k: getattr(state, k) for k in model.state or {}}
        assert got_state == model.state
        assert tuple(state.anomalies) == report.problems
    return model


def examine_file(data: bytes, tmp: Path, model: Model) -> None:
    """The same input as a file: the reader, the CLI's check/info/dump; content and mtime unchanged."""
    path = tmp / f"fuzz-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path.write_bytes(data)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = path.stat()
    try:
        if model.is_image:
            with pytest.raises(NotAJournalError):
                qjournal.read(path)
            for argv in (["check", str(path)], ["info", str(path)], ["dump", str(path)]):
                code, out, err = run_cli(argv)
                assert code == 1 and "not a journal" in err, (argv, code, err)
            assert path.read_bytes() == data and path.stat().st_mtime_ns == before.st_mtime_ns
            examine_append(data, model, path)
            return
        try:
            with qjournal.read(path) as reader:
                got: list[EntryKey] = []
                with contextlib.suppress(CorruptJournalError):
                    got.extend(entry_key(e) for e in reader)
                reader.check()
            assert got == model.entries
        except CorruptJournalError as exc:
            assert exc.code == "area_length"
        code, out, err = run_cli(["check", str(path)])
        assert "internal error" not in err, err
        want = 2 if model.corruptions else 3 if model.anomalies else 0
        assert code == want, f"check exited {code}, want {want}\n{out}{err}"
        for argv in (["info", str(path)], ["dump", str(path)], ["dump", "--all", "--hex", str(path)]):
            code, out, err = run_cli(argv)
            assert "internal error" not in err, err
            assert code in (0, 1, 2), (argv, code, err)
            lines = err.splitlines()
            one_line = len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("qjournal: hint: "))
            assert code == 0 or one_line, f"{argv}: not a one-line error (and its hint): {err!r}"
        after = path.stat()
        assert path.read_bytes() == data, "a read changed the file"
        assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size), "a read touched the file"
        examine_append(data, model, path)
    finally:
        path.unlink()


def _writer() -> Any:
    try:
        from qjournal import writer
    except ImportError:
        return None
    return writer


NEW_ENTRIES = [
    HashEntry(bytes(range(32)), 0x10, 0x20),
    RawEntry(0x7E, b"appended"),
    HashEntry(b"\xaa" * 200, 2**64 - 1, 0),
]


def model_leftovers(data: bytes | bytearray, tail: int) -> bool:
    """True when the bytes past ``tail`` are what one interrupted append can leave (docs/format.md), by a
    search written here from the text alone, independently of qjournal.leftovers.

    The writer's batch: regular entries (HASH 19..254 bytes, other types 2..254) placed from the tail by D6,
    an END only where the next entry does not fit and never in the last cluster, its commit byte (the type
    byte at the tail) 0xFF. A crash keeps any subset of its bytes but the anchor, its first byte that is not
    0xFF, which lands first. So every byte other than 0xFF past the tail must be the batch's byte there, the
    anchor must be there, and what the batch does not write (END padding, what follows it) stays 0xFF.
    A state is (position, what may start there): "first" (the tail), "free", "entered" (a cluster start after
    an END: an entry longer than the room the END took) or "need254" (after an END of 255 at the tail: the
    254-byte entry whose size byte is the anchor).
    """
    n = len(data)
    dirty = [i for i in range(tail, n) if data[i] != NONE]
    if not dirty:
        return True
    last = dirty[-1]
    stack: list[tuple[int, str, int]] = [(tail, "first", 0)]
    seen: set[tuple[int, str, int]] = set()
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        pos, kind, min_size = state
        if pos > last and kind != "need254":
            return True  # the batch ends here, or goes on with bytes that never landed
        o, cluster = pos % CLUSTER, pos // CLUSTER
        size_b, type_b = data[pos], data[pos + 1]
        if kind in ("first", "free"):  # an END that closes this cluster
            room = CLUSTER - o
            padding_clean = all(data[i] == NONE for i in range(pos + 2, (cluster + 1) * CLUSTER))
            if room <= 255 and (cluster + 1) * CLUSTER < n and padding_clean:
                # (first, room 255: the size byte is 0xFF itself)
                ok = size_b == room if kind == "first" else size_b in (room, NONE) and type_b in (END, NONE)
                if ok:
                    nxt = "need254" if kind == "first" and room == 255 else "entered"
                    stack.append(((cluster + 1) * CLUSTER, nxt, CLUSTER - 2 - o + 1))
        for size in range(2, 255):  # a regular entry
            if o + size + 2 > CLUSTER:
                break
            if kind in ("entered", "need254") and size < min_size:
                continue
            if kind == "need254" and not (size == 254 and size_b == 254):
                continue
            if kind == "first" and size_b != size:
                continue  # the anchor: the size byte at the tail landed
            if size_b not in (size, NONE) or type_b == END or (type_b == HASH and size < 19):
                continue
            stack.append((pos + size, "free", 0))
    return False


def examine_append(data: bytes, model: Model, source: Any = None) -> None:
    """Open for append: refuse (CorruptJournalError, exactly when the area is corrupt; ForeignDataError,
    exactly when the bytes past the tail are no interrupted append's) changing nothing, or accept, erase
    what replay ignores, and append after the replayed entries (after foreign bytes, only on request)."""
    writer = _writer()
    if writer is None:
        return
    buf = bytearray(data) if source is None else source
    if model.is_image:
        with pytest.raises(NotAJournalError):
            writer.open_for_append(buf)
        assert _content(buf) == data, "a refused open for append changed the image"
        return
    leftovers = None if model.corruptions or model.state is None else model_leftovers(data, model.state["ofs_tail"])
    try:
        w = writer.open_for_append(buf)
    except qjournal.ForeignDataError as exc:
        assert not model.corruptions and leftovers is False, f"refused crash leftovers as foreign: {exc}"
        assert _content(buf) == data, "a refused open for append changed the area"
        w = writer.open_for_append(buf, erase_foreign_data=True)
    except JournalError as exc:
        assert isinstance(exc, CorruptJournalError), f"refused a journal that is not corrupt: {exc}"
        assert model.corruptions, f"refused a journal with no corruption: {exc}"
        assert _content(buf) == data, "a refused open for append changed the area"
        return
    else:
        assert leftovers is not False, "erased bytes past the tail that no interrupted append leaves"
    assert not model.corruptions, "opened a corrupt journal for append"
    assert model.state is not None
    tail = model.state["ofs_tail"]
    with w:
        assert w.ofs_tail == tail
        placed: list[qjournal.Entry] = []
        for batch in ([NEW_ENTRIES[0]], NEW_ENTRIES):
            try:
                placed += w.append_many(batch)
            except qjournal.JournalFullError:
                assert w.is_full or w.len_free < 2 * 256 * len(batch), "refused a batch that fits"
                break
    after = _content(buf)
    assert after[:tail] == data[:tail], "open for append changed the bytes before the tail"
    again = model_scan(after)
    assert not again.corruptions, again.corruptions
    assert again.entries == model.entries + [entry_key(e) for e in placed]
    assert {k for k, _ in again.anomalies} <= {"unassigned_type", "dirty_padding"}, again.anomalies
    kept = [a for a in model.anomalies if a[0] in ("unassigned_type", "dirty_padding")]
    assert again.anomalies[: len(kept)] == kept


def _content(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    return Path(source).read_bytes()


def examine(data: bytes, tmp: Path | None = None) -> None:
    """Every property of one input, under the deadline."""
    try:
        with deadline(DEADLINE, f"input of {len(data)} bytes"):
            model = examine_reader(data)
            if tmp is not None:
                examine_file(data, tmp, model)
            examine_append(data, model)
    except BaseException:
        save_failure(data)
        raise


def save_failure(data: bytes) -> None:
    """Keep a failing input for tests/vectors/regressions/ (best effort)."""
    try:
        FAILURES.mkdir(parents=True, exist_ok=True)
        path = FAILURES / f"{hashlib.sha256(data).hexdigest()[:16]}.bin"
        path.write_bytes(data)
        print(f"failing input saved to {path}", file=sys.stderr)
    except OSError:
        pass


# -- inputs -----------------------------------------------------------------------


def build_journal(seed: int, num_clusters: int, fill: float) -> bytes:
    """A valid journal laid out by D6 from a seed, independently of the writer.

    Mostly SHA-256 HASH entries, some of other digest lengths and unassigned
    types, and some sized to leave exactly 2, 3, 4, 254 or 255 bytes before the
    boundary (END of size 2 and 255, a tail that makes the journal full).
    """
    rng = random.Random(seed)
    data = bytearray(b"\xff") * (CLUSTER * num_clusters)
    pos, budget = 0, int(fill * len(data))
    while pos < budget:
        o = pos % CLUSTER
        r = rng.random()
        if r < 0.55:
            typ, body = HASH, rng.randbytes(48)
        elif r < 0.7:
            typ, body = HASH, rng.randbytes(rng.randint(17, 252))
        elif r < 0.85:
            typ = rng.choice([0x00, 0x03, 0x7F, 0xFE, rng.randint(3, 0xFE)])
            body = rng.randbytes(rng.randint(0, 252))
        else:
            leave = rng.choice([2, 3, 4, 254, 255, 256])
            size = CLUSTER - o - leave
            if CLUSTER - o == 255:
                size = 254  # does not fit: the END that closes the cluster has size 255 (D6)
            elif not 2 <= size <= 254:
                size = rng.randint(2, 254)
            typ, body = rng.choice([0x00, 0x03, 0xFE]), rng.randbytes(size - 2)
        size = len(body) + 2
        if o + size + 2 > CLUSTER:
            if pos // CLUSTER == num_clusters - 1:
                break
            data[pos : pos + 2] = bytes([CLUSTER - o, END])
            pos += CLUSTER - o
        data[pos : pos + size] = bytes([size, typ]) + body
        pos += size
    return bytes(data)


_POS = st.integers(0, 2**20)
_BYTE = st.one_of(st.sampled_from([0x00, 0x01, 0x02, 0xFF]), st.integers(0, 255))
MUTATION = st.one_of(
    st.tuples(st.just("flip"), _POS, st.integers(0, 7)),
    st.tuples(st.just("set"), _POS, _BYTE),
    st.tuples(st.just("header"), _POS, st.integers(0, 1), _BYTE),
    st.tuples(st.just("truncate"), _POS),
    st.tuples(st.just("extend"), st.integers(1, 2 * CLUSTER), st.sampled_from([0xFF, 0x00]), st.booleans()),
    st.tuples(st.just("splice"), st.integers(0, len(GOLDEN) - 1), _POS, _POS),
    st.tuples(st.just("run"), _POS, st.sampled_from([1, 2, 17, 512, 4096]), _BYTE),
    st.tuples(st.just("copy"), _POS, _POS, st.integers(1, 600)),
)


def mutate(data: bytes, ops: list[tuple[Any, ...]], fix_length: int = 0) -> bytes:
    """Apply mutation ops in order; positions are taken modulo the current length.

    Unless ``fix_length`` is 0, the result is then cut or padded with 0xFF to a
    multiple of 4096, so most inputs get past the area-length rule (D1).
    """
    b = bytearray(data)
    for op in ops:
        kind = op[0]
        if kind == "extend":
            _, n, fill, random_fill = op
            b += random.Random(n).randbytes(n) if random_fill else bytes([fill]) * n
            continue
        if kind == "splice":
            other = GOLDEN_BYTES[op[1]]
            b = b[: op[2] % (len(b) + 1)] + other[op[3] % (len(other) + 1) :]
            continue
        if not b:
            continue
        if kind == "flip":
            b[op[1] % len(b)] ^= 1 << op[2]
        elif kind == "set":
            b[op[1] % len(b)] = op[2]
        elif kind == "header":
            heads = model_scan(b).headers or [0]
            at = heads[op[1] % len(heads)] + op[2]
            if at < len(b):
                b[at] = op[3]
        elif kind == "truncate":
            b = b[: op[1] % (len(b) + 1)]
        elif kind == "run":
            at = op[1] % len(b)
            b[at : at + op[2]] = bytes([op[3]]) * len(b[at : at + op[2]])
        elif kind == "copy":
            src, dst = op[1] % len(b), op[2] % len(b)
            chunk = b[src : src + op[3]]
            b[dst : dst + len(chunk)] = chunk[: len(b) - dst]
    if fix_length and len(b) % CLUSTER:
        cut = len(b) - len(b) % CLUSTER
        b = b[:cut] if fix_length % 2 and cut else b + b"\xff" * (CLUSTER - len(b) % CLUSTER)
    return bytes(b)


BASE = st.one_of(
    st.sampled_from(GOLDEN_BYTES),
    st.builds(build_journal, st.integers(0, 2**32), st.integers(1, 4), st.floats(0, 1.3)),
    st.builds(lambda n, fill: bytes([fill]) * (CLUSTER * n), st.integers(1, 3), _BYTE),
    st.binary(min_size=0, max_size=3 * CLUSTER),
)
INPUTS = st.builds(mutate, BASE, st.lists(MUTATION, min_size=0, max_size=6), st.integers(0, 6))

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)


# -- tests -----------------------------------------------------------------------


def test_model_agrees_with_the_golden_vectors() -> None:
    """The model judges the reader, so first it must read every golden vector as its JSON says."""
    for path in GOLDEN:
        want = json.loads(path.with_suffix(".json").read_text())
        m = model_scan(path.read_bytes())
        assert [e[0] for e in m.entries] == [e["ofs"] for e in want["replay"]], path.name
        if "error" in want:
            assert m.corruptions[0] == (want["error"]["rule"], want["error"]["offset"]), path.name
        else:
            assert not m.corruptions and m.state == want["state"], path.name
            assert m.anomalies == [(a["kind"], a["ofs"]) for a in want["anomalies"]], path.name


def test_builder_makes_valid_journals_with_the_edge_cases() -> None:
    """The random-journal builder covers END sizes 2 and 255 and full journals, all valid."""
    end_sizes: set[int] = set()
    full = 0
    for seed in range(300):
        data = build_journal(seed, 1 + seed % 4, 1.3)
        m = model_scan(data)
        assert not m.corruptions and not [a for a in m.anomalies if a[0] != "unassigned_type"], seed
        full += bool(m.state and m.state["is_full"])
        end_sizes.update(data[h] for h in m.headers if data[h + 1] == END)
    assert {2, 255} <= end_sizes and full > 20


@pytest.mark.parametrize("ops", [[], [("flip", 4200, 3)], [("header", 83, 1, 0xFF)], [("truncate", 8192)], [("run", 4300, 512, 0)]])
def test_the_examination_catches_a_lying_reader(ops: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    """examine() must fail when the reader drops an entry: the fuzz tests can fail."""
    data = mutate(GOLDEN_BYTES[[p.name for p in GOLDEN].index("multi_cluster.bin")], ops)
    examine_reader(data)  # the real reader passes
    real = qjournal.JournalReader.replay

    def lossy(self: qjournal.JournalReader) -> Iterator[qjournal.Entry]:
        for i, e in enumerate(real(self)):
            if i != 5:
                yield e

    monkeypatch.setattr(qjournal.JournalReader, "replay", lossy)
    with pytest.raises(AssertionError):
        examine_reader(data)


def test_the_deadline_fails_a_hang() -> None:
    with pytest.raises(AssertionError, match="no answer within"):
        with deadline(0.2, "a sleeper"):
            import time

            time.sleep(5)


@FUZZ_SETTINGS
@given(data=INPUTS)
def test_fuzz_in_memory(data: bytes) -> None:
    examine(data)


@settings(FUZZ_SETTINGS, max_examples=max(1, EXAMPLES // 4))
@given(data=INPUTS)
def test_fuzz_files_and_cli(data: bytes, tmp_path: Path) -> None:
    examine(data, tmp_path)


@settings(FUZZ_SETTINGS, max_examples=max(1, EXAMPLES // 4))
@given(prefix=st.binary(max_size=5000), data=INPUTS, suffix=st.binary(max_size=5000),
       offset_delta=st.integers(-4097, 4097), length=st.one_of(st.none(), st.integers(0, 5 * CLUSTER)))
def test_fuzz_embedded_areas(prefix: bytes, data: bytes, suffix: bytes, offset_delta: int, length: int | None) -> None:
    """An area inside a larger buffer, at a good or wrong offset and length: JournalError or the area's answer."""
    whole = prefix + data + suffix
    offset = len(prefix) + offset_delta
    with deadline(DEADLINE, "embedded area"):
        try:
            reader = qjournal.read(whole, offset=offset, length=length)
        except JournalError:
            return
        try:
            entries = [entry_key(e) for e in reader]
        except CorruptJournalError:
            entries = None
        report = reader.check(give_up_after=sys.maxsize)  # every problem, as the model lists them
    window = whole[offset : offset + reader.len_area]
    model = model_scan(window)
    assert [(p.code, p.ofs) for p in report.problems if p.is_corruption] == model.corruptions
    if entries is not None:
        assert entries == model.entries


def _regressions() -> list[Path]:
    return sorted(REGRESSIONS.glob("*.bin")) if REGRESSIONS.is_dir() else []


def _regression_params() -> list[Any]:
    found = _regressions()
    if found:
        return [pytest.param(p, id=p.name) for p in found]
    return [pytest.param(None, id="none-yet", marks=pytest.mark.skip(
        reason="tests/vectors/regressions/ holds no input: no fuzz or crash run has kept a failing one"))]


@pytest.mark.parametrize("path", _regression_params())
def test_regression_vector(path: Path, tmp_path: Path) -> None:
    """Every input that ever failed a fuzz or crash run, examined again."""
    examine(path.read_bytes(), tmp_path)


def test_every_regression_vector_says_what_it_found() -> None:
    index = REGRESSIONS / "index.json"
    found = json.loads(index.read_text()) if index.exists() else {}
    names = {p.name for p in _regressions()}
    assert names == set(found), "tests/vectors/regressions/index.json must have one line per .bin"
    assert all(isinstance(v, str) and v for v in found.values())
