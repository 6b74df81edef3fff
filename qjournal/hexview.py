"""An annotated hex view of a journal: every byte labelled by the field it belongs to.

Used by ``qjournal dump --hex``. Each replayed cluster is cut into :class:`Span`
s that tile it exactly (no byte unlabelled, none labelled twice), named after the
.ksy fields: ``len_entry``, ``entry_type``, ``digest``, ``physical_sector``,
``first_logical_sector``, ``body``, ``padding`` (an END's bytes up to the
boundary), ``none`` (the NONE header where replay stops), ``tail`` (the bytes
after it) and ``unparsed`` (from a corrupt entry to the boundary). Spans are
printed one field per line, 16 bytes a row, with long runs of 0xFF folded into
one line. The clusters replay never reaches are summarised, not printed.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

from qjournal.errors import CorruptJournalError
from qjournal.format import LEN_CLUSTER, LEN_HASH_SECTORS, LEN_HEADER, RESET_BYTE, EntryType
from qjournal.reader import type_name

ROW = 16
"""Bytes per hex row."""
MIN_FOLD = ROW
"""Runs of 0xFF at least this long (in padding, tail, body, unparsed) print as one line."""
_FOLDABLE = frozenset({"padding", "tail", "body", "unparsed"})
_SCAN_CHUNK = 1 << 20

LEGEND = {
    "len_entry": "size byte: the whole entry's length, header included (D3)",
    "entry_type": "type byte: end, hash, none or an unassigned code (D4)",
    "digest": "HASH payload: the digest (D8)",
    "physical_sector": "HASH payload: u64 big-endian (D8)",
    "first_logical_sector": "HASH payload: u64 big-endian (D8)",
    "body": "payload of an entry of an unassigned type, raw (D4)",
    "padding": "END bytes up to the cluster boundary, 0xff as the writer leaves them (D6)",
    "none": "NONE header (size, type) where replay stops (D5, D7)",
    "tail": "bytes after the NONE header to the boundary: 0xff unless dirty (D5)",
    "unparsed": "bytes from a corrupt entry to the cluster boundary",
}
"""Every label the view uses, with what it means."""


class Span(NamedTuple):
    """``length`` bytes at area offset ``ofs`` that belong to field ``label``."""

    ofs: int
    length: int
    label: str
    note: str = ""


def _entry_spans(buf: bytes, o: int, base: int) -> tuple[list[Span], int, bool]:
    """Spans of the entry at cluster offset ``o``; its end offset; True if it ends the cluster."""
    len_entry, code = buf[o], buf[o + 1]
    at = base + o
    if code == EntryType.none:
        note = "replay stops here"
        if len_entry != RESET_BYTE:
            note = f"torn write: size byte {len_entry:#04x} under type NONE; replay stops here"
        spans = [Span(at, LEN_HEADER, "none", note)]
        rest = LEN_CLUSTER - o - LEN_HEADER
        if rest:
            tail = buf[o + LEN_HEADER :]
            dirty = sum(1 for b in tail if b != RESET_BYTE)
            spans.append(Span(at + LEN_HEADER, rest, "tail", f"{_n(dirty, 'byte', 'bytes')} other than 0xff: dirty tail" if dirty else "all 0xff"))
        return spans, LEN_CLUSTER, True
    spans = [
        Span(at, 1, "len_entry", str(len_entry)),
        Span(at + 1, 1, "entry_type", type_name(code)),
    ]
    n = len_entry - LEN_HEADER
    p = at + LEN_HEADER
    if code == EntryType.end:
        spans[1] = spans[1]._replace(note=f"end: closes the cluster, replay goes on at {base + LEN_CLUSTER:#x}")
        if n:
            pad = buf[o + LEN_HEADER : o + len_entry]
            dirty = sum(1 for b in pad if b != RESET_BYTE)
            spans.append(Span(p, n, "padding", f"{_n(dirty, 'byte', 'bytes')} other than 0xff: dirty padding" if dirty else "all 0xff"))
        return spans, o + len_entry, True
    if code == EntryType.hash:
        h = n - LEN_HASH_SECTORS
        q = o + LEN_HEADER + h
        physical = int.from_bytes(buf[q : q + 8], "big")
        logical = int.from_bytes(buf[q + 8 : q + 16], "big")
        spans += [
            Span(p, h, "digest", f"{h} bytes"),
            Span(p + h, 8, "physical_sector", f"{physical} ({physical:#x})"),
            Span(p + h + 8, 8, "first_logical_sector", f"{logical} ({logical:#x})"),
        ]
    else:
        spans[1] = spans[1]._replace(note=f"{type_name(code)}: unassigned type (D4)")
        if n:
            spans.append(Span(p, n, "body", f"{n} bytes"))
    return spans, o + len_entry, False


def cluster_spans(buf: bytes, base: int, error: CorruptJournalError | None = None) -> list[Span]:
    """Spans tiling the 4096-byte cluster ``buf`` at area offset ``base``.

    ``error`` is the corruption the parser found in this cluster (its ``offset``
    an area offset): the entries before it are walked, the rest is ``unparsed``.
    Without it the cluster must be one the generated parser accepted.
    """
    stop = LEN_CLUSTER if error is None else (error.offset or base) - base
    spans: list[Span] = []
    o = 0
    while o < stop:
        if o + LEN_HEADER > LEN_CLUSTER or (error is not None and o + buf[o] > stop):
            break  # only on a corrupt cluster: label the rest unparsed
        entry, o, last = _entry_spans(buf, o, base)
        spans += entry
        if last:
            break
    if o < LEN_CLUSTER:
        note = f"corrupt at {base + o:#x}: {error.rule}" if error is not None else ""
        spans.append(Span(base + o, LEN_CLUSTER - o, "unparsed", note))
    return spans


def _rows(data: bytes, ofs: int, fold: bool) -> Iterator[tuple[int, str]]:
    """(offset, hex text) rows of ``data``; runs of 0xFF folded when ``fold``."""
    i = 0
    while i < len(data):
        if fold and data[i] == RESET_BYTE:
            j = i
            while j < len(data) and data[j] == RESET_BYTE:
                j += 1
            if j - i >= MIN_FOLD:
                yield ofs + i, f"ff * {j - i} bytes"
                i = j
                continue
        end = min(i + ROW, len(data))
        if fold:  # stop a row where a foldable run of 0xFF begins
            k = data.find(b"\xff" * MIN_FOLD, i, len(data))
            if i < k < end:
                end = k
        yield ofs + i, " ".join(f"{b:02x}" for b in data[i:end])
        i = end


def render_spans(spans: list[Span], buf: bytes, base: int) -> Iterator[str]:
    """Lines ``OFFSET  HEX  LABEL  NOTE``: one or more rows per span, label on each row."""
    for span in spans:
        data = buf[span.ofs - base : span.ofs - base + span.length]
        if span.label == "len_entry":
            yield f"  -- entry at {span.ofs:#x}: {type_name(buf[span.ofs - base + 1])}, {data[0]} bytes"
        first = True
        for ofs, text in _rows(data, span.ofs, span.label in _FOLDABLE):
            note = span.note if first else ""
            yield f"{ofs:08x}  {text:<{3 * ROW - 1}}  {span.label:<20} {note}".rstrip()
            first = False


def cluster_header(index: int, base: int, spans: list[Span]) -> str:
    """One line naming the cluster and how it ends."""
    entries = sum(1 for s in spans if s.label == "entry_type" and "end:" not in s.note)
    last = next((s for s in reversed(spans) if s.label in ("none", "entry_type", "unparsed")), None)
    if last is not None and last.label == "unparsed":
        how = last.note
    elif last is not None and last.label == "none":
        how = "empty" if last.ofs == base else f"open, tail at {last.ofs:#x}"
    else:
        how = "closed by END"
    return f"== cluster {index} at {base:#x}-{base + LEN_CLUSTER - 1:#x}: {_n(entries, 'entry', 'entries')}, {how}"


def legend_lines() -> Iterator[str]:
    """The legend printed before the view."""
    yield "legend (offsets are area offsets):"
    for label, meaning in LEGEND.items():
        yield f"  {label:<20} {meaning}"


def rest_summary(area: object, first_cluster: int) -> str | None:
    """One line on the clusters after the last replayed one: all 0xFF or dirty (D5).

    ``area`` is an :class:`qjournal.area.Area`; it is scanned in 1 MiB chunks.
    """
    num_clusters = area.num_clusters  # type: ignore[attr-defined]
    if first_cluster >= num_clusters:
        return None
    start = first_cluster * LEN_CLUSTER
    end = area.len_area  # type: ignore[attr-defined]
    dirty = 0
    first_dirty: int | None = None
    pos = start
    while pos < end:
        chunk = area.read(pos, min(_SCAN_CHUNK, end - pos))  # type: ignore[attr-defined]
        stripped = chunk.replace(b"\xff", b"")
        if stripped:
            dirty += len(stripped)
            if first_dirty is None:
                first_dirty = pos + len(chunk) - len(chunk.lstrip(b"\xff"))
        pos += len(chunk)
    which = f"cluster {first_cluster}" if first_cluster == num_clusters - 1 else f"clusters {first_cluster}-{num_clusters - 1}"
    what = (
        "all 0xff"
        if first_dirty is None
        else f"{_n(dirty, 'byte', 'bytes')} other than 0xff (dirty tail), the first at {first_dirty:#x}"
    )
    return f"== {which} at {start:#x}-{end - 1:#x} ({end - start} bytes), not replayed: {what}"


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
