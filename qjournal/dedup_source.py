"""What dedup reads: a source image's guest view, its bytes from any thread, and the header facts its target keeps or refuses.

Strategy. The guest view is :class:`qjournal.guest.GuestReader`'s (data,
zero, compressed clusters decompressed, extended L2 by subcluster, raw holes
by ``SEEK_HOLE``; refusals of :func:`qjournal.image.open_image`: encryption, an
external data file...). This module adds what dedup alone needs from the
header: the backing file's name and format (the target keeps both), and the
refusals of what a target cannot keep (internal snapshots, persistent
bitmaps), each naming the feature, the header byte offset and the way out,
and the reads dedup's threads make: DATA by positioned reads on the image's
descriptor (safe from any thread), COMPRESSED decompressed beforehand in the
reader's own thread (its cache is not shared), zeros between them, so that a
thread reuses one buffer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ClassVar

import kaitaistruct

from qjournal.codes import family
from qjournal.errors import CorruptImageError, UnsupportedImageError
from qjournal.generated.qcow2 import Qcow2
from qjournal.guest import LEN_BATCH, GuestReader, Span, Status
from qjournal.image import DEFAULT_BLOCK_SIZE, Qcow2Image

__all__ = ["SourceImage", "UnsupportedSourceError"]

_ZEROS = memoryview(bytes(LEN_BATCH))
_OFS_NUM_SNAPSHOTS = 60
_OFS_AUTOCLEAR_FEATURES = 88
"""Where the header fields a refusal names start (QEMU docs/interop/qcow2.txt "== Header ==")."""


class UnsupportedSourceError(UnsupportedImageError):
    """A source dedup cannot turn into a target without losing something: the image refusals and dedup's own."""

    codes: ClassVar[dict[str, str]] = family("unsupported", "dedup")
    """The image refusals and dedup's own (a view of :data:`qjournal.codes.CODES`)."""


class SourceImage:
    """A source opened read-only: ``reader`` (its guest view) and the header facts dedup needs."""

    def __init__(self, path: str | os.PathLike[str], *, block_size: int = DEFAULT_BLOCK_SIZE, force_share: bool = False) -> None:
        self.reader = GuestReader(path, block_size=block_size, force_share=force_share)
        img = self.reader.image
        self.name = img.name
        self.format = img.format
        self.cluster_size = img.cluster_size
        self.len_virtual_disk = img.len_virtual_disk
        self.len_file = img.len_file
        self.backing_file_name: str | None = self.reader.not_read.backing_file
        self.backing_format: str | None = None
        self.num_snapshots = self.reader.not_read.num_snapshots
        names: list[str] = []
        if isinstance(img, Qcow2Image):
            has_bitmaps = img.version >= 3 and bool(img.header.autoclear_features.has_bitmaps)
            for e in img.extensions:
                if e.extension_type == Qcow2.HeaderExtensionType.backing_file_format:
                    self.backing_format = str(e.data.value)
                elif e.extension_type == Qcow2.HeaderExtensionType.bitmaps:
                    has_bitmaps = True
                    try:
                        names += [str(b.name) for b in e.data.bitmap_directory.entries]
                    except (kaitaistruct.KaitaiStructError, EOFError, UnicodeDecodeError, ValueError):
                        names.append("(unreadable bitmap directory)")
            if has_bitmaps and not names:
                names.append("(unnamed)")
        self.bitmap_names = tuple(names)
        """The persistent bitmaps the source holds."""

    def fileno(self) -> int:
        return self.reader.image.fileno()

    def refuse_snapshots(self) -> None:
        """Refuse a source with internal snapshots: the target holds the active disk only."""
        if self.num_snapshots:
            names = ", ".join(repr(n) for n in self.reader.not_read.snapshot_names)
            raise UnsupportedSourceError(
                "snapshots",
                f"the image has {self.num_snapshots} internal snapshot(s) ({names or 'names unreadable'}); dedup writes the "
                f"active disk only and would lose them: extract the one you want first (qemu-img convert -l "
                f"snapshot.name=NAME -O qcow2), or delete them (qemu-img snapshot -d)",
                _OFS_NUM_SNAPSHOTS, source=self.name,
            )

    def refuse_bitmaps(self) -> None:
        """Refuse a source with persistent bitmaps: the target does not keep them."""
        if self.bitmap_names:
            raise UnsupportedSourceError(
                "bitmaps",
                f"the image has persistent dirty bitmaps ({', '.join(self.bitmap_names)}), which the target cannot keep "
                f"(its clusters move): drop_bitmaps=True (--drop-bitmaps) writes the target without them (an incremental "
                f"backup based on them must then start with a full one)",
                _OFS_AUTOCLEAR_FEATURES, source=self.name,
            )

    def filler(self, w0: int, spans: list[Span]) -> Callable[[memoryview], None]:
        """What fills a buffer with the guest bytes from ``w0`` that ``spans`` say, zeros elsewhere, from any thread.

        DATA is read there, by positioned reads; COMPRESSED clusters are
        decompressed now, by the reader (whose cache belongs to this thread).
        """
        image = self.reader.image
        data = [(s.ofs_guest - w0, s.ofs_host, s.length) for s in spans if s.status is Status.DATA]
        decoded = self.decoded(w0, spans)
        stored = sorted([(i, i + n) for i, _, n in data] + [(i, i + len(raw)) for i, raw in decoded])

        def fill(view: memoryview) -> None:
            pos = 0
            for a, b in [*stored, (len(view), len(view))]:  # zeros between what is read: the buffer is reused
                while pos < a:
                    n = min(a - pos, len(_ZEROS))
                    view[pos : pos + n] = _ZEROS[:n]
                    pos += n
                pos = max(pos, b)
            for i, ofs_host, length in data:
                assert ofs_host is not None
                got = image.readinto(ofs_host, view[i : i + length])
                if got != length:
                    raise CorruptImageError(
                        "truncated",
                        f"the data of guest offset {w0 + i + got:#x} lies at host offset {ofs_host + got:#x}, past the end of the "
                        f"file ({image.len_file} bytes)",
                        ofs_host + got, source=self.name,
                    )
            for i, raw in decoded:
                view[i : i + len(raw)] = raw

        return fill

    def decoded(self, w0: int, spans: list[Span]) -> list[tuple[int, bytes]]:
        """(offset from ``w0``, guest bytes) of the COMPRESSED ``spans``, decompressed by the reader (call from its thread)."""
        out = []
        for s in spans:
            if s.status is Status.COMPRESSED:
                k = s.ofs_guest % self.cluster_size
                out.append((s.ofs_guest - w0, self.reader.cluster(s)[k : k + s.length]))
        return out

    def close(self) -> None:
        self.reader.close()
