"""Crash leftovers: which bytes past the tail one interrupted append can leave (docs/format.md).

Strategy. Opening a journal for append must erase what an interrupted append
left past the tail, and nothing else: a byte there that the writer cannot have
written belongs to someone else (an image's data after an area addressed
without its length, a second journal, a wrong offset). This module decides,
from the bytes alone, whether they are leftovers. It reads nothing itself: the
caller hands it the bytes cluster by cluster.

The writer commits a batch in three barriers (see :mod:`qjournal.writer`):
first the *anchor*, the first byte of the batch that is not 0xFF (the size byte
at the tail, or, when the batch opens with an END of size 255, the size byte at
the start of the next cluster); then every other byte of the batch but the
*commit byte* (the type byte at ``ofs_tail + 1``); then the commit byte. The
medium is assumed to write one byte atomically and nothing more: of the bytes
written since the last barrier any subset may be lost, in any order.

So the bytes past the tail are leftovers exactly when they are all 0xFF, or
when some batch B that the writer could write -- regular entries it appends
(HASH of 19 to 254 bytes, unassigned types of 2 to 254 bytes) placed from the
tail by D6, an END only where the next entry does not fit and never in the
area's last cluster, its commit byte 0xFF -- explains them: every byte that is
not 0xFF is the byte B writes there (END padding and everything after B stay
0xFF), and B's anchor is present. A 0xFF byte is consistent with anything: B
wrote 0xFF there, or the byte never landed.

The search is a dynamic programme over the positions where an item of B may
begin, one cluster at a time: a size byte that landed fixes the item, a 0xFF
one (lost) admits every size that fits. An END at the end of a cluster carries
one number into the next: the first entry there must be too large for the room
the END took (D6: a cluster is closed only when the entry does not fit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from qjournal.format import (
    LEN_CLUSTER,
    LEN_HEADER,
    MAX_LEN_END,
    MAX_LEN_REGULAR,
    MIN_LEN_ENTRY,
    MIN_LEN_HASH,
    RESET_BYTE,
    ROOM,
    TYPE_END,
    TYPE_HASH,
    first_not_reset,
    last_not_reset,
)

_OFS_END_255 = LEN_CLUSTER - MAX_LEN_END
"""The one offset where an END's size byte is 0xFF (D6 erratum): its entry, 254 bytes, opens the next cluster."""


class Survey(NamedTuple):
    """The bytes other than 0xFF past the tail: where they start and end, how many, in how many clusters."""

    ofs_first: int | None
    ofs_last: int | None
    num_bytes: int
    num_clusters: int

    @property
    def is_clean(self) -> bool:
        """True when every byte past the tail is 0xFF."""
        return self.ofs_first is None


class Verdict(NamedTuple):
    """Whether the bytes past the tail are what one interrupted append leaves.

    ``anchor`` is the area offset of the anchor byte (the first byte past the
    tail that is not 0xFF) when they are; ``reason`` says why not when they
    are not; ``ofs_reached`` is how far the search could follow entries from
    the tail (an area offset).
    """

    is_leftover: bool
    anchor: int | None
    reason: str
    ofs_reached: int


def survey(chunks: Iterable[tuple[int, bytes]]) -> Survey:
    """Count the bytes other than 0xFF in ``chunks``: (area offset, bytes) pairs, in order."""
    first = last = None
    count = 0
    clusters = 0
    counted = -1  # the last cluster counted: a cluster may straddle two chunks
    for pos, data in chunks:
        if first_not_reset(data) == len(data):
            continue
        count += len(data) - data.count(RESET_BYTE)
        # cut the chunk at cluster boundaries to count the clusters holding such a byte
        cut = pos
        while cut < pos + len(data):
            stop = min(pos + len(data), (cut // LEN_CLUSTER + 1) * LEN_CLUSTER)
            piece = data[cut - pos : stop - pos]
            lead = first_not_reset(piece)
            if lead < len(piece):
                if cut // LEN_CLUSTER != counted:
                    clusters += 1
                    counted = cut // LEN_CLUSTER
                if first is None:
                    first = cut + lead
                last = cut + last_not_reset(piece)
            cut = stop
    return Survey(first, last, count, clusters)


def explain(ofs_tail: int, len_area: int, ofs_last: int, cluster: Callable[[int], bytes]) -> Verdict:
    """Decide whether the bytes past ``ofs_tail`` (the last not 0xFF at ``ofs_last``) are crash leftovers.

    ``cluster(index)`` returns the 4096 bytes of journal cluster ``index``; it
    is called for the clusters from the tail's to the one holding ``ofs_last``
    (and at most one after it), each once, in order.
    """
    num_clusters = len_area // LEN_CLUSTER
    index = ofs_tail // LEN_CLUSTER
    start = ofs_tail % LEN_CLUSTER
    buf = cluster(index)
    first_byte = buf[start]
    anchor = index * LEN_CLUSTER + start
    if first_byte == RESET_BYTE:
        if start != _OFS_END_255:
            return Verdict(
                False, None,
                f"the byte at the tail ({ofs_tail:#x}) is 0xFF, so no append was in flight there "
                f"(an append writes its first size byte there before anything else)",
                ofs_tail,
            )
        anchor += LEN_CLUSTER - start  # an END of 255 first: the anchor opens the next cluster
    threshold = -1  # entering a cluster after an END: its first entry is longer than this (D6)
    need_anchor = False  # entering after the END of 255 that opened the batch: the entry is 254 bytes, landed
    reached = ofs_tail
    while True:
        base = index * LEN_CLUSTER
        last_dirty = last_not_reset(buf)  # in-cluster offset of the last byte not 0xFF (-1: none)
        has_next = index + 1 < num_clusters
        reach = bytearray(LEN_CLUSTER)
        reach[start] = 1
        end_at = -1  # the largest offset of a valid END in this cluster
        end_255_first = False
        p = start
        while p >= 0:
            at = base + p
            reached = max(reached, at)
            entered = index > ofs_tail // LEN_CLUSTER and p == 0
            if at > ofs_last and not (entered and need_anchor):
                return Verdict(True, anchor, "", at)  # B ends here (or goes on unlanded): 0xFF from here on
            first = at == ofs_tail
            size, code = buf[p], buf[p + 1]
            # An END closing the cluster at p (never as the entry a previous END made room for).
            room = LEN_CLUSTER - p
            if not entered and room <= MAX_LEN_END and has_next and last_dirty < p + LEN_HEADER:
                if first:
                    if size == room:  # the commit byte is the END's type byte, 0xFF at the tail
                        end_at = p
                        end_255_first = room == MAX_LEN_END
                elif size in (room, RESET_BYTE) and code in (TYPE_END, RESET_BYTE):
                    end_at = p
            # A regular entry at p.
            if code != TYPE_END:
                lo, hi = MIN_LEN_ENTRY, min(MAX_LEN_REGULAR, ROOM - p)
                if entered:
                    lo = max(lo, threshold + 1)
                if code == TYPE_HASH:
                    lo = max(lo, MIN_LEN_HASH)
                if size != RESET_BYTE:
                    if lo <= size <= hi and not (entered and need_anchor and size != MAX_LEN_REGULAR):
                        reach[p + size] = 1
                elif not first and not (entered and need_anchor) and lo <= hi:
                    reach[p + lo : p + hi + 1] = b"\x01" * (hi - lo + 1)
            p = reach.find(1, p + 1)
        if end_at < 0:
            return Verdict(
                False, None,
                f"no append of this writer leaves them: its entries cannot be followed from the tail "
                f"past {reached:#x}, and nothing closes cluster {index} as D6 would",
                reached,
            )
        threshold = ROOM - end_at
        need_anchor = end_255_first
        index += 1
        start = 0
        buf = cluster(index)

