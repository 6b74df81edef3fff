"""Reading a journal: replay (D7), its state, and a full check (D5).

The byte layout is the generated parser's (``Qcow2Journal.Cluster`` from the
.ksy); this module feeds it one 4096-byte cluster at a time, so memory does not
grow with the area, turns its validation failures into :class:`CorruptJournalError`
with the rule and offset, and gathers the anomalies the .ksy exposes (torn
write, dirty tail, unassigned types, dirty END padding). Reading never writes.

Speed (issue 6): the generated parser reads each cluster from a
:class:`ClusterStream`, a read-only Kaitai stream over the cluster's bytes that
answers the generated code's calls without an ``io.BytesIO`` under it; the
.ksy keeps the type byte a plain integer (``type_code``) and reads the HASH
record's fields in the entry itself (no object per record); replay touches no instance and breaks each cluster's
parent/child cycles as soon as its entries are out, so they are freed at once
rather than by the cyclic garbage collector.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

from kaitaistruct import (
    EndOfStreamError,
    InvalidArgumentError,
    KaitaiStream,
    KaitaiStructError,
    NoTerminatorFoundError,
)

from qjournal.area import ADDRESS_HINT, Area, Source
from qjournal.entries import Entry, HashEntry, RawEntry
from qjournal.errors import CorruptJournalError
from qjournal.format import (
    LEN_CLUSTER,
    LEN_HEADER,
    MAX_LEN_END,
    MAX_LEN_REGULAR,
    MIN_LEN_ENTRY,
    MIN_LEN_HASH_BODY,
    RESET_BYTE,
    EntryType,
    first_not_reset,
    fits,
)
from qjournal.generated.qcow2_journal import Qcow2Journal

# Plain ints: the generated parser's ``type_code`` is an int, and comparing two
# ints is cheaper than an int with an IntEnum member looked up on its class.
_END = int(EntryType.end)
_HASH = int(EntryType.hash)
_NONE = int(EntryType.none)
_U8BE = struct.Struct(">Q").unpack_from
_new_tuple = tuple.__new__  # HashEntry(...) without the NamedTuple's Python-level __new__

ANOMALY_KINDS: dict[str, str] = {
    "torn_write": "a size byte other than 0xFF under a NONE type: an interrupted write (D5)",
    "dirty_tail": "a byte other than 0xFF after the point where replay ends (D5)",
    "unassigned_type": "an entry of a type the spec does not assign (D4)",
    "dirty_padding": "a byte other than 0xFF in an END's padding, which the writer never writes (D6)",
}
"""Every anomaly: it parses and replays, but a check reports it (and ``--strict`` fails it)."""


class Problem(NamedTuple):
    """One finding of a check: a corruption (``rule`` of CORRUPTION_RULES) or an anomaly."""

    kind: str
    ofs: int
    reason: str
    is_corruption: bool


@dataclass(frozen=True)
class JournalState:
    """Where a journal stands after replay.

    ``ofs_tail`` is the offset of the NONE where replay stopped (``len_area`` when
    every cluster is closed); ``len_free`` the bytes from there to the end of the
    area; ``num_clusters_used`` the clusters replay visited that hold an entry or
    an END (the tail cluster counts once it holds one).
    """

    len_area: int
    num_clusters: int
    num_clusters_used: int
    ofs_tail: int
    len_free: int
    is_full: bool
    num_entries: int
    entries_by_type: dict[str, int]
    anomalies: tuple[Problem, ...] = field(default=())

    @property
    def is_clean(self) -> bool:
        """True when replay met no anomaly."""
        return not self.anomalies


@dataclass(frozen=True)
class CheckReport:
    """Everything a check found. ``state`` is None when the area is corrupt.

    ``hint`` is set when the area does not start like a journal (a corruption in
    cluster 0 with no well-formed HASH entry before it): a wrong offset or
    length is then likelier than a corrupt journal.
    """

    problems: tuple[Problem, ...]
    state: JournalState | None
    hint: str | None = None

    @property
    def is_corrupt(self) -> bool:
        """True when at least one problem is corruption."""
        return any(p.is_corruption for p in self.problems)

    @property
    def has_anomalies(self) -> bool:
        """True when at least one problem is an anomaly."""
        return any(not p.is_corruption for p in self.problems)


def type_name(entry_type: int) -> str:
    """The .ksy enum name of a type code (``end``, ``hash``, ``none``), else ``0xNN``."""
    try:
        return EntryType(entry_type).name
    except ValueError:
        return f"{entry_type:#04x}"


def classify(buf: bytes, ofs: int) -> tuple[str, str]:
    """Name the corruption rule that the entry at ``ofs`` of cluster ``buf`` breaks.

    Called only after the generated parser rejected that entry; it looks at the
    entry's two header bytes and its room to the boundary, nothing else.
    """
    len_entry = buf[ofs] if ofs < len(buf) else RESET_BYTE
    entry_type = buf[ofs + 1] if ofs + 1 < len(buf) else RESET_BYTE
    room = LEN_CLUSTER - ofs
    name = type_name(entry_type)
    if len_entry < MIN_LEN_ENTRY:
        hint = ""
        if len_entry == 0 and entry_type == 0:
            hint = "; bytes of 0x00 where 0xFF was expected: this area was never reset (D2)"
        return "size_too_small", f"entry size {len_entry} under type {name}: a size is at least 2 (D3){hint}"
    if entry_type == _END:
        ff = " (size byte 0xFF is valid only for an END 255 bytes before the boundary, D6)" if len_entry == MAX_LEN_END else ""
        return "end_misaligned", (
            f"END of size {len_entry} ends at {ofs + len_entry} of its cluster, not at the boundary "
            f"{LEN_CLUSTER}: its size must be {room} (D5){ff}"
        )
    if len_entry > MAX_LEN_REGULAR:
        return "regular_too_long", (
            f"{name} entry of size {len_entry}: a regular entry is at most 254 bytes; "
            f"size byte 0xFF belongs to NONE (D3, D5)"
        )
    if len_entry > room:
        return "crosses_boundary", (
            f"{name} entry of size {len_entry} crosses the cluster boundary ({room} bytes left) (D5)"
        )
    if len_entry == room:
        return "no_end", f"{name} entry of size {len_entry} ends on the cluster boundary with no END (D5)"
    if len_entry == room - 1:
        return "no_room_for_header", (
            f"{name} entry of size {len_entry} leaves 1 byte before the boundary, "
            f"fewer than 2 for the next entry's header (D5)"
        )
    if entry_type == _HASH and len_entry - LEN_HEADER < MIN_LEN_HASH_BODY:
        return "hash_too_short", (
            f"HASH entry of size {len_entry}: its payload of {len_entry - LEN_HEADER} bytes "
            f"is shorter than 17 (a digest of at least 1 byte and two 8-byte sectors) (D8)"
        )
    raise AssertionError(f"the parser rejected an entry no rule rejects: {buf[ofs:ofs + 2].hex()} at {ofs}")


class ClusterStream(KaitaiStream):
    """A read-only Kaitai stream over bytes in memory (one cluster), for the generated parser.

    The runtime's :class:`KaitaiStream` reads through an ``io.BytesIO`` (and
    measures its size with three seeks); replay calls it five times per entry.
    This one keeps the bytes, their length and a position, and implements the
    runtime's byte-aligned reading methods over them with the runtime's
    semantics: a read past the end raises ``EndOfStreamError``, a negative
    length or position ``InvalidArgumentError``. The runtime's other integer and
    float readers go through :meth:`read_bytes` and work unchanged. Bit fields
    and writing are not supported (the .ksy has neither): they raise
    ``NotImplementedError``.
    """

    def __init__(self, buf: bytes) -> None:  # no KaitaiStream.__init__: there is no io under it
        self._buf = buf
        self._pos = 0
        self._size = len(buf)
        self._io = None
        self.bits_left = 0
        self.bits = 0
        self.bits_le = False
        self.bits_write_mode = False
        self.write_back_handler = None
        self.child_streams = []

    def close(self) -> None:
        """Nothing to close."""

    def size(self) -> int:
        """Length of the buffer."""
        return self._size

    def pos(self) -> int:
        """Current position."""
        return self._pos

    def is_eof(self) -> bool:
        """True at or past the end."""
        return self._pos >= self._size

    def seek(self, n: int) -> None:
        """Move to ``n`` (past the end is allowed, as with ``io.BytesIO``)."""
        if n < 0:
            raise InvalidArgumentError(f"cannot seek to invalid position {n}")
        self._pos = n

    def read_u1(self) -> int:
        """One unsigned byte."""
        p = self._pos
        try:
            b = self._buf[p]
        except IndexError:
            raise EndOfStreamError("requested 1 bytes, but only 0 bytes available", 1, 0) from None
        self._pos = p + 1
        return b

    def read_u8be(self) -> int:
        """An unsigned 64-bit big-endian integer."""
        p = self._pos
        try:
            v = _U8BE(self._buf, p)[0]
        except struct.error:
            left = max(0, self._size - p)
            raise EndOfStreamError(f"requested 8 bytes, but only {left} bytes available", 8, left) from None
        self._pos = p + 8
        return v

    def read_bytes(self, n: int) -> bytes:
        """Exactly ``n`` bytes."""
        p = self._pos
        q = p + n
        if q > self._size or n < 0:
            if n < 0:
                raise InvalidArgumentError(f"requested invalid {n} amount of bytes")
            left = max(0, self._size - p)
            raise EndOfStreamError(f"requested {n} bytes, but only {left} bytes available", n, left)
        self._pos = q
        return self._buf[p:q]

    _read_bytes_not_aligned = read_bytes

    def read_bytes_full(self) -> bytes:
        """Every byte from here to the end."""
        p = self._pos
        self._pos = max(p, self._size)
        return self._buf[p:]

    def read_bytes_term(self, term: int, include_term: bool, consume_term: bool, eos_error: bool) -> bytes:
        """Bytes up to the byte ``term`` (``strz`` and ``terminator``), as the runtime reads them."""
        p = self._pos
        i = self._buf.find(bytes((term,)), p)
        if i < 0:
            if eos_error:
                raise NoTerminatorFoundError(bytes((term,)), 0)
            self._pos = max(p, self._size)
            return self._buf[p:]
        self._pos = i + 1 if consume_term else i
        return self._buf[p : i + 1 if include_term else i]

    def read_bytes_term_multi(self, term: bytes, include_term: bool, consume_term: bool, eos_error: bool) -> bytes:
        """Bytes up to the terminator ``term`` at a multiple of its width, as the runtime reads them."""
        p = i = self._pos
        unit = len(term)
        while True:
            chunk = self._buf[i : i + unit]
            if len(chunk) < unit:
                if eos_error:
                    raise NoTerminatorFoundError(term, len(chunk))
                self._pos = max(p, self._size)
                return self._buf[p:]
            if chunk == term:
                self._pos = i + unit if consume_term else i
                return self._buf[p : i + unit if include_term else i]
            i += unit

    def _unsupported(self, *args: object) -> None:
        raise NotImplementedError("ClusterStream reads whole bytes only: no bit fields, no writing")

    read_bits_int_be = read_bits_int_le = read_bits_int = _unsupported
    _write_bytes_not_aligned = write_bits_int_be = write_bits_int_le = _unsupported


def parse_cluster(buf: bytes) -> Qcow2Journal.Cluster:
    """Parse one 4096-byte cluster with the generated parser; raise on corruption.

    The raised :class:`CorruptJournalError` carries the offset *in the cluster*;
    :class:`JournalReader` rebases it to the area.
    """
    if type(buf) is not bytes:  # fields must come out as bytes, not slices of a bytearray
        buf = bytes(buf)
    try:
        return Qcow2Journal.Cluster(ClusterStream(buf))
    except KaitaiStructError as exc:
        io = getattr(exc, "io", None)
        pos = io.pos() if io is not None else 0
        # len_entry is checked after 1 byte of the entry, type_code after 2.
        ofs = pos - 1 if exc.src_path.endswith("/seq/0") else pos - LEN_HEADER
        rule, reason = classify(buf, ofs)
        raise CorruptJournalError(rule, reason, ofs) from None
    except EOFError as exc:  # pragma: no cover - the valid rules keep reads inside the cluster
        raise CorruptJournalError("crosses_boundary", f"an entry runs past the cluster: {exc}", 0) from None


def valid_prefix(buf: bytes, stop: int) -> list[Qcow2Journal.Entry]:
    """The well-formed entries of cluster ``buf`` before the corruption the parser found at ``stop``."""
    io = ClusterStream(bytes(buf))
    entries = []
    while io.pos() < stop:
        entries.append(Qcow2Journal.Entry(io))
    return entries


def start_hint(index: int, buf: bytes, stop: int) -> str | None:
    """The hint for a corruption at ``stop`` of cluster ``index``: set when the area does not start like a journal.

    That is a corruption in cluster 0 with no well-formed HASH entry before it.
    """
    if index != 0 or any(e.type_code == _HASH for e in valid_prefix(buf, stop)):
        return None
    return ADDRESS_HINT


def to_entry(e: Qcow2Journal.Entry, ofs: int) -> Entry:
    """The public entry for a parsed regular entry at area offset ``ofs``: HashEntry or RawEntry."""
    if e.type_code == _HASH:
        return HashEntry(e.digest, e.physical_sector, e.first_logical_sector, ofs)
    return RawEntry(e.type_code, e.body, ofs)


class JournalReader:
    """A journal opened for reading: bytes, a path or a binary file, at an offset (D1).

    ``replay()`` streams the entries; ``state()`` and ``check()`` walk the whole
    area. Use as a context manager to close a file it opened.
    """

    def __init__(self, source: Source, offset: int = 0, length: int | None = None) -> None:
        self.area = Area(source, offset, length)

    # -- the area ---------------------------------------------------------
    @property
    def name(self) -> str:
        """The source's name, for messages."""
        return self.area.name

    @property
    def len_area(self) -> int:
        """Area length in bytes."""
        return self.area.len_area

    @property
    def num_clusters(self) -> int:
        """Number of journal clusters in the area."""
        return self.area.num_clusters

    def close(self) -> None:
        """Close the file if the reader opened it."""
        self.area.close()

    def __enter__(self) -> "JournalReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _corrupt(self, exc: CorruptJournalError, base: int, hint: str | None = None) -> CorruptJournalError:
        return CorruptJournalError(
            exc.rule, exc.reason, base + (exc.offset or 0), area_offset=self.area.area_offset, source=self.name, hint=hint
        )

    # -- replay -----------------------------------------------------------
    def replay(self) -> Iterator[Entry]:
        """Yield the replayed entries in order (D7), each with its offset in the area.

        Entries before a corruption are yielded; then :class:`CorruptJournalError`
        is raised at the offending byte.
        """
        area = self.area
        for index in range(area.num_clusters):
            ofs = index * LEN_CLUSTER
            buf = area.read_cluster(index)
            try:
                cluster = parse_cluster(buf)
            except CorruptJournalError as exc:
                # Yield the good entries before the bad one, then fail there.
                stop = exc.offset or 0
                for e in valid_prefix(buf, stop):
                    yield to_entry(e, ofs)
                    ofs += e.len_entry
                raise self._corrupt(exc, index * LEN_CLUSTER, start_hint(index, buf, stop)) from None
            # The hot loop (issue 6): no instance, no enum, no call per entry but
            # the tuple's; HashEntry built as the NamedTuple's own __new__ builds it.
            entries = cluster.entries
            last = entries.pop()  # the END or NONE that ends the cluster
            for e in entries:
                if e.type_code == _HASH:
                    yield _new_tuple(HashEntry, (e.digest, e.physical_sector, e.first_logical_sector, ofs))
                else:
                    yield RawEntry(e.type_code, e.body, ofs)
                ofs += e.len_entry
            # Entry <-> cluster are reference cycles (``_parent``): emptying the list
            # lets reference counting free the entries now, not the cyclic GC later.
            entries.clear()
            if last.type_code != _END:
                return

    __iter__ = replay

    # -- the whole area ---------------------------------------------------
    def check(self, progress: Callable[[int], None] | None = None) -> CheckReport:
        """Validate the whole area against FORMAT-DECISIONS; report every problem.

        After a corrupt cluster the check goes on with the next one, as if the
        corrupt one were closed, so one report lists every problem found. The
        ``state`` of the report is None when any corruption was found.
        ``progress``, if given, is called with the number of area bytes examined
        so far, after each cluster and each chunk of the tail scan (for a progress bar).
        """
        problems: list[Problem] = []
        hint: str | None = None
        codes: Counter[int] = Counter()
        num_clusters = self.area.num_clusters
        ofs_tail = self.len_area
        clusters_used = 0
        stop_index = num_clusters
        for index in range(num_clusters):
            base = index * LEN_CLUSTER
            if progress is not None and index:
                progress(base)
            buf = self.area.read_cluster(index)
            try:
                cluster = parse_cluster(buf)
            except CorruptJournalError as exc:
                e = self._corrupt(exc, base)
                problems.append(Problem(e.rule, e.offset or base, e.reason, True))
                if index == 0:
                    hint = start_hint(index, buf, exc.offset or 0)
                clusters_used += 1
                continue
            ofs = base
            for e in cluster.entries:
                code = e.type_code
                if code == _NONE:
                    break
                if code == _END:
                    if e.has_dirty_padding:
                        first = first_not_reset(e.body)
                        problems.append(Problem("dirty_padding", ofs + LEN_HEADER + first, "END padding holds a byte other than 0xFF (D6)", False))
                else:
                    codes[code] += 1
                    if code != _HASH:  # every other regular type is unassigned (D4)
                        problems.append(Problem("unassigned_type", ofs, f"entry of unassigned type {code:#04x}, size {e.len_entry} (D4)", False))
                ofs += e.len_entry
            if cluster.num_regular or cluster.is_closed:
                clusters_used += 1
            if not cluster.is_closed:
                ofs_tail = ofs
                stop_index = index
                term = cluster.terminator
                if term.is_torn:
                    problems.append(Problem("torn_write", ofs, f"size byte {term.len_entry:#04x} under type NONE: an entry write was interrupted before its type byte; replay stops here (D5)", False))
                if cluster.has_dirty_tail:
                    first = first_not_reset(cluster.tail)
                    problems.append(Problem("dirty_tail", ofs + LEN_HEADER + first, "byte other than 0xFF after the point where replay ends (D5)", False))
                    break
                dirty = self._first_dirty_from((index + 1) * LEN_CLUSTER, progress)
                if dirty is not None:
                    problems.append(Problem("dirty_tail", dirty, "byte other than 0xFF after the point where replay ends (D5)", False))
                break
        if progress is not None:
            progress(self.len_area)
        if any(p.is_corruption for p in problems):
            return CheckReport(tuple(problems), None, hint)
        counts = {type_name(code): n for code, n in codes.items()}
        in_cluster = ofs_tail % LEN_CLUSTER
        is_full = ofs_tail >= self.len_area or (
            stop_index == num_clusters - 1 and not fits(in_cluster, MIN_LEN_ENTRY)
        )
        state = JournalState(
            len_area=self.len_area,
            num_clusters=num_clusters,
            num_clusters_used=clusters_used,
            ofs_tail=ofs_tail,
            len_free=self.len_area - ofs_tail,
            is_full=is_full,
            num_entries=sum(counts.values()),
            entries_by_type=counts,
            anomalies=tuple(problems),
        )
        return CheckReport(tuple(problems), state)

    def state(self) -> JournalState:
        """The journal's state (tail, free bytes, full, counts, anomalies).

        Raises :class:`CorruptJournalError` at the first corruption.
        """
        report = self.check()
        if report.state is None:
            first = next(p for p in report.problems if p.is_corruption)
            raise CorruptJournalError(
                first.kind, first.reason, first.ofs, area_offset=self.area.area_offset, source=self.name, hint=report.hint
            )
        return report.state

    def _first_dirty_from(self, pos: int, progress: Callable[[int], None] | None = None) -> int | None:
        """Offset of the first byte other than 0xFF at or after ``pos``, or None."""
        for pos, chunk in self.area.chunks(pos):
            first = first_not_reset(chunk)
            if first < len(chunk):
                return pos + first
            if progress is not None:
                progress(pos + len(chunk))
        return None


def read(source: Source, offset: int = 0, length: int | None = None) -> JournalReader:
    """Open a journal for reading: ``with qjournal.read("j.bin") as j: for e in j: ...``."""
    return JournalReader(source, offset, length)
