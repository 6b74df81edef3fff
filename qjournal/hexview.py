"""An annotated hex view of a journal: every byte labelled by the field it belongs to.

Strategy: used by ``qjournal dump --hex``. Each replayed cluster is parsed by
the generated parser (:mod:`qjournal.cluster`; for a corrupt cluster, the
well-formed entries before the corruption), and its entries are cut into
:class:`Span` s that tile the cluster exactly (no byte unlabelled, none
labelled twice), named after the .ksy fields: ``len_entry``, ``entry_type``,
``digest``, ``physical_sector``, ``first_logical_sector``, ``body``,
``padding`` (an END's bytes up to the boundary), ``none`` (the NONE header
where replay stops), ``tail`` (the bytes after it) and ``unparsed`` (from a
corrupt entry to the boundary). Spans are printed one field per line, 16 bytes
a row, with long runs of 0xFF folded into one line. The clusters replay never
reaches are summarised, not printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from qjournal import leftovers
from qjournal.area import Area
from qjournal.cluster import parse_cluster, valid_prefix
from qjournal.errors import CorruptJournalError
from qjournal.format import LEN_CLUSTER, LEN_HEADER, RESET_BYTE, TYPE_END, TYPE_HASH, TYPE_NONE, type_name
from qjournal.wording import count

ROW = 16
"""Bytes per hex row."""
MIN_FOLD = ROW
"""Runs of 0xFF at least this long (in padding, tail, body, unparsed) print as one line."""
_FOLDABLE = frozenset({"padding", "tail", "body", "unparsed"})

LEGEND = {
    "len_entry": "size byte: the whole entry's length, header included (D3)",
    "entry_type": "type byte: end, hash, none or an unassigned code (D4)",
    "digest": "HASH payload: the digest (D8)",
    "physical_sector": "HASH payload: u64 big-endian (D8)",
    "first_logical_sector": "HASH payload: u64 big-endian (D8)",
    "body": "payload of an entry of an unassigned type, raw (D4)",
    "padding": "END bytes up to the cluster boundary, 0xff as the writer leaves them (D6, D15)",
    "none": "NONE header (size, type) where replay stops (D5, D7)",
    "tail": "bytes after the NONE header to the boundary: 0xff unless dirty (D14)",
    "unparsed": "bytes from a corrupt entry to the cluster boundary",
}
"""Every label the view uses, with what it means."""


class Span(NamedTuple):
    """``length`` bytes at area offset ``ofs`` that belong to field ``label``."""

    ofs: int
    length: int
    label: str
    note: str = ""


class ClusterView(NamedTuple):
    """A cluster cut into spans, with what its header line says: its regular entries and how it ends."""

    spans: list[Span]
    num_entries: int
    ending: str


def _dirty(data: bytes) -> str:
    n = len(data) - data.count(RESET_BYTE)
    return f"{count(n, 'byte')} other than 0xff" if n else "all 0xff"


def _entry_spans(e: object, at: int, base: int) -> list[Span]:
    """The spans of one parsed entry (a generated ``Qcow2Journal.Entry``) at area offset ``at``."""
    code, len_entry = e.type_code, e.len_entry  # type: ignore[attr-defined]
    if code == TYPE_NONE:
        note = "replay stops here"
        if len_entry != RESET_BYTE:
            note = f"torn write: size byte {len_entry:#04x} under type NONE; replay stops here"
        return [Span(at, LEN_HEADER, "none", note)]
    head = Span(at, 1, "len_entry", str(len_entry))
    p = at + LEN_HEADER
    if code == TYPE_END:
        spans = [head, Span(at + 1, 1, "entry_type", f"end: closes the cluster, replay goes on at {base + LEN_CLUSTER:#x}")]
        if len_entry > LEN_HEADER:
            padding = e.body  # type: ignore[attr-defined]
            spans.append(Span(p, len(padding), "padding", _dirty(padding) + (": dirty padding" if e.has_dirty_padding else "")))  # type: ignore[attr-defined]
        return spans
    if code == TYPE_HASH:
        h = len(e.digest)  # type: ignore[attr-defined]
        physical, logical = e.physical_sector, e.first_logical_sector  # type: ignore[attr-defined]
        return [
            head,
            Span(at + 1, 1, "entry_type", "hash"),
            Span(p, h, "digest", f"{h} bytes"),
            Span(p + h, 8, "physical_sector", f"{physical} ({physical:#x})"),
            Span(p + h + 8, 8, "first_logical_sector", f"{logical} ({logical:#x})"),
        ]
    spans = [head, Span(at + 1, 1, "entry_type", f"{type_name(code)}: unassigned type (D4)")]
    if len_entry > LEN_HEADER:
        spans.append(Span(p, len_entry - LEN_HEADER, "body", f"{len_entry - LEN_HEADER} bytes"))
    return spans


def cluster_view(
    buf: bytes, base: int, error: CorruptJournalError | None = None, cluster: Any = None, entries: list[Any] | None = None
) -> ClusterView:
    """The spans tiling the 4096-byte cluster ``buf`` at area offset ``base``, from its parsed entries.

    ``error`` is the corruption the parser found in this cluster (its ``offset``
    an area offset): the entries before it are shown, the rest is ``unparsed``.
    ``cluster`` (the parsed cluster) or ``entries`` (the well-formed entries
    before ``error``), when the caller has them, spare a second parse.
    """
    spans: list[Span] = []
    if error is not None:
        stop = (error.offset or base) - base
        entries = valid_prefix(buf, stop) if entries is None else entries
        ending = f"corrupt at {base + stop:#x}: {error.code}"
    else:
        cluster = parse_cluster(buf) if cluster is None else cluster
        entries = cluster.entries
        stop = LEN_CLUSTER
        ending = "closed by END" if cluster.is_closed else (
            "empty" if not cluster.num_regular else f"open, tail at {base + cluster.ofs_tail:#x}"
        )
    o = 0
    num_entries = 0
    for e in entries:
        spans += _entry_spans(e, base + o, base)
        if e.type_code not in (TYPE_END, TYPE_NONE):
            num_entries += 1
        o += e.len_entry if e.type_code != TYPE_NONE else LEN_HEADER
    if error is None and o < LEN_CLUSTER:  # the bytes after the NONE header
        spans.append(Span(base + o, LEN_CLUSTER - o, "tail", _dirty(cluster.tail) + (": dirty tail" if cluster.has_dirty_tail else "")))
    elif error is not None:
        spans.append(Span(base + stop, LEN_CLUSTER - stop, "unparsed", ending))
    return ClusterView(spans, num_entries, ending)


def cluster_spans(buf: bytes, base: int, error: CorruptJournalError | None = None) -> list[Span]:
    """The spans of :func:`cluster_view`."""
    return cluster_view(buf, base, error).spans


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


def cluster_header(index: int, base: int, view: ClusterView) -> str:
    """One line naming the cluster, its regular entries and how it ends."""
    return (
        f"== cluster {index} at {base:#x}-{base + LEN_CLUSTER - 1:#x}: "
        f"{count(view.num_entries, 'entry', 'entries')}, {view.ending}"
    )


def legend_lines() -> Iterator[str]:
    """The legend printed before the view."""
    yield "legend (offsets are area offsets):"
    for label, meaning in LEGEND.items():
        yield f"  {label:<20} {meaning}"


def rest_summary(area: Area, first_cluster: int) -> str | None:
    """One line on the clusters after the last replayed one: all 0xFF or dirty (D14)."""
    if first_cluster >= area.num_clusters:
        return None
    start, end = first_cluster * LEN_CLUSTER, area.len_area
    found = leftovers.survey(area.chunks(start))
    last = area.num_clusters - 1
    which = f"cluster {first_cluster}" if first_cluster == last else f"clusters {first_cluster}-{last}"
    what = (
        "all 0xff"
        if found.is_clean
        else f"{count(found.num_bytes, 'byte')} other than 0xff (dirty tail), the first at {found.ofs_first:#x}"
    )
    return f"== {which} at {start:#x}-{end - 1:#x} ({end - start} bytes), not replayed: {what}"
