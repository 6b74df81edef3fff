"""What dedup reads: the guest view of a source image, as pieces of guest disk and their bytes.

Strategy. Dedup needs three things of its source: the guest disk in guest
order as :class:`Piece` runs (DATA: the image stores bytes the guest reads;
ZERO: it says they read as zeros; UNALLOCATED: it stores nothing, the guest
reads the backing file or zeros), the bytes of a DATA piece (read from any
thread), and the header facts the target keeps or refuses (backing file name
and format, snapshots, bitmaps). :class:`ImageSource` gives them for what
:mod:`qjournal.image` maps: raw images and qcow2 images of versions 2 and 3,
their data clusters read where they lie. Compressed clusters are refused here,
by name, until the guest-view reader decodes them; the refusals of
:func:`qjournal.image.open_image` (encryption, an external data file) apply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar, NamedTuple, Protocol

from qjournal.errors import UNSUPPORTED_FEATURES, JournalIOError, UnsupportedImageError
from qjournal.generated.qcow2 import Qcow2
from qjournal.image import DEFAULT_BLOCK_SIZE, Image, Kind, Qcow2Image, open_image

__all__ = ["ImageSource", "Piece", "Source", "UnsupportedSourceError", "open_source"]

_OFS_NUM_SNAPSHOTS = 60
_OFS_AUTOCLEAR_FEATURES = 88
"""Where the header fields a refusal names start (QEMU docs/interop/qcow2.txt "== Header ==")."""


class UnsupportedSourceError(UnsupportedImageError):
    """A source dedup cannot turn into a target without losing something: the image refusals and dedup's own."""

    codes: ClassVar[dict[str, str]] = {
        **UNSUPPORTED_FEATURES,
        "snapshots": "internal snapshots: the target holds the active disk only",
        "bitmaps": "persistent dirty bitmaps: the target cannot keep them (drop_bitmaps=True, --drop-bitmaps, drops them)",
        "compressed": "compressed clusters, which this reader does not decode",
        "partly_unallocated": "a target cluster that would mix bytes of the backing file with the image's own",
    }


class Piece(NamedTuple):
    """``length`` guest bytes from ``ofs_guest``, of one ``kind`` (DATA, ZERO or UNALLOCATED); ``token`` is the source's, for reading."""

    ofs_guest: int
    length: int
    kind: Kind
    token: int | None


class Source(Protocol):
    """The guest view dedup reads (see the module's note)."""

    name: str
    format: str
    cluster_size: int
    len_virtual_disk: int
    len_file: int
    backing_file_name: str | None
    backing_format: str | None
    bitmap_names: tuple[str, ...]
    """Persistent bitmaps the source holds (the target cannot keep them)."""

    def pieces(self) -> Iterator[Piece]:
        """The guest disk in guest order, without gaps, from 0 to ``len_virtual_disk``."""
        ...

    def read_piece(self, piece: Piece, start: int, view: memoryview) -> None:
        """Fill ``view`` with the guest bytes of DATA ``piece`` from ``start`` bytes into it; safe from any thread."""
        ...

    def close(self) -> None:
        """Close the source's file."""
        ...


class ImageSource:
    """A :class:`Source` over a :class:`qjournal.image.Image` (raw, or qcow2 without compressed clusters)."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.name = image.name
        self.format = image.format
        self.cluster_size = image.cluster_size
        self.len_virtual_disk = image.len_virtual_disk
        self.len_file = image.len_file
        self.backing_file_name: str | None = None
        self.backing_format: str | None = None
        self.bitmap_names: tuple[str, ...] = ()
        self.num_snapshots = 0
        if isinstance(image, Qcow2Image):
            self.backing_file_name = image.backing_file_name
            self.num_snapshots = int(image.header.num_snapshots)
            names: list[str] = []
            has_bitmaps = image.version >= 3 and bool(image.header.autoclear_features.has_bitmaps)
            for e in image.qcow2.header_extension_area.extensions or []:
                if e.extension_type == Qcow2.HeaderExtensionType.backing_file_format:
                    self.backing_format = str(e.data.value)
                elif e.extension_type == Qcow2.HeaderExtensionType.bitmaps:
                    has_bitmaps = True
                    try:
                        names += [str(b.name) for b in e.data.bitmap_directory.entries]
                    except Exception:  # a bitmap directory it cannot read still counts as bitmaps
                        names.append("(unreadable bitmap directory)")
            if has_bitmaps and not names:
                names.append("(unnamed)")
            self.bitmap_names = tuple(names)

    def refuse_snapshots(self) -> None:
        """Refuse a source with internal snapshots: the target holds the active disk only."""
        if self.num_snapshots:
            raise UnsupportedSourceError(
                "snapshots",
                f"the image has {self.num_snapshots} internal snapshot(s); dedup writes the active disk only and "
                f"would lose them: extract the one you want first (qemu-img convert -l snapshot.name=NAME -O qcow2), "
                f"or delete them (qemu-img snapshot -d)",
                _OFS_NUM_SNAPSHOTS, source=self.name,
            )

    def refuse_bitmaps(self) -> None:
        """Refuse a source with persistent bitmaps: the target does not keep them."""
        if self.bitmap_names:
            raise UnsupportedSourceError(
                "bitmaps",
                f"the image has persistent dirty bitmaps ({', '.join(self.bitmap_names)}), which the target cannot "
                f"keep (its clusters move): drop_bitmaps=True (--drop-bitmaps) writes the target without them (an incremental backup "
                f"based on them must then start with a full one)",
                _OFS_AUTOCLEAR_FEATURES, source=self.name,
            )

    def pieces(self) -> Iterator[Piece]:
        for ext in self.image.extents():
            if ext.kind is Kind.COMPRESSED:
                raise UnsupportedSourceError(
                    "compressed",
                    f"the cluster at guest offset {ext.ofs_guest:#x} is compressed, which this reader does not decode: "
                    f"uncompress the image first (qemu-img convert -O qcow2)",
                    source=self.name,
                )
            yield Piece(ext.ofs_guest, ext.length, ext.kind, ext.ofs_host if ext.kind is Kind.DATA else None)

    def read_piece(self, piece: Piece, start: int, view: memoryview) -> None:
        assert piece.token is not None
        ofs = piece.token + start
        n = len(view)
        got = self.image.readinto(ofs, view)
        if got != n:  # the last cluster of a raw image is shorter; anything else is a truncated image
            if self.format == "raw" and ofs + got == self.len_file:
                view[got:] = bytes(n - got)
                return
            raise JournalIOError(f"short read: {got} of {n} bytes at {ofs:#x}: the file ends at {self.len_file:#x}", ofs + got,
                                 source=self.name)

    def close(self) -> None:
        self.image.close()


def open_source(path: str | os.PathLike[str], *, block_size: int = DEFAULT_BLOCK_SIZE) -> ImageSource:
    """Open ``path`` read-only as a dedup source (a raw image is seen in blocks of ``block_size``)."""
    return ImageSource(open_image(path, block_size=block_size))
