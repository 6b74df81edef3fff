"""What a file is, by its first bytes: the disk-image formats qjournal recognises.

Strategy: one table, :data:`MAGICS`, of the magic numbers of disk images (and of
LUKS, whose volumes hold images), each with the offset it sits at and the words
a message uses for it. :func:`identify` reads them against the first
:data:`LEN_SNIFF` bytes of a file. Users: the image reader (an image that is
not qcow2 must not be taken for raw), and the journal's area (a journal is
never written inside an image, and a journal command given an image says what
it was given). A qcow2 or qcow header is only taken as one when its version
field holds a version that format has, so the bytes of a journal that happen to
begin with ``QFI\\xfb`` are not mistaken for an image.
"""

from __future__ import annotations

from typing import NamedTuple


class Magic(NamedTuple):
    """A format's magic number and how messages name the format."""

    format: str
    """A short stable name: ``qcow2``, ``qcow``, ``luks``, ``vmdk``, ..."""
    ofs: int
    """Where the magic sits in the file."""
    magic: bytes
    what: str
    """The format in a sentence: "a qcow2 image"."""


QCOW2 = Magic("qcow2", 0, b"QFI\xfb", "a qcow2 image")
"""The header's ``magic`` (formats/qcow2.ksy), versions 2 and 3."""

QCOW = Magic("qcow", 0, b"QFI\xfb", "an image of QEMU's original qcow format (version 1), not qcow2")
"""The same magic with version 1: QEMU's first qcow format, which qcow2 replaced."""

LUKS = Magic("luks", 0, b"LUKS\xba\xbe", "a LUKS encrypted volume")

OTHER_FORMATS: tuple[Magic, ...] = (
    Magic("vmdk", 0, b"KDMV", "a VMDK sparse extent"),
    Magic("vmdk", 0, b"COWD", "a VMDK ESX sparse extent"),
    Magic("vmdk", 0, b"# Disk DescriptorFile", "a VMDK descriptor"),
    Magic("vhdx", 0, b"vhdxfile", "a VHDX image"),
    Magic("vpc", 0, b"conectix", "a dynamic or differencing VHD image"),
    Magic("qed", 0, b"QED\x00", "a QED image"),
    Magic("parallels", 0, b"WithoutFreeSpace", "a Parallels image"),
    Magic("parallels", 0, b"WithouFreSpacExt", "a Parallels image"),
    Magic("vdi", 64, b"\x7f\x10\xda\xbe", "a VDI image"),
)
"""Formats whose blocks are not where the guest sees them: taken for raw they would be mapped wrongly."""

MAGICS: tuple[Magic, ...] = (QCOW2, QCOW, LUKS, *OTHER_FORMATS)
"""Every format :func:`identify` knows."""

LEN_SNIFF = 72
"""Bytes of a file's start that :func:`identify` needs (the VDI magic ends at 68, a qcow2 version at 8)."""

_QCOW_VERSIONS = {QCOW: (1,), QCOW2: (2, 3)}


def identify(head: bytes, formats: tuple[Magic, ...] = MAGICS) -> Magic | None:
    """The format whose magic ``head`` (a file's first bytes) starts with, or None."""
    for m in formats:
        if head[m.ofs : m.ofs + len(m.magic)] != m.magic:
            continue
        versions = _QCOW_VERSIONS.get(m)
        if versions is not None and int.from_bytes(head[4:8], "big") not in versions:
            continue
        return m
    return None
