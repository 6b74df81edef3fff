"""How the package writes for people and machines: one home for how a count and its noun are written, and
for how a JSON object is encoded (one line, or an indented document).
"""

from __future__ import annotations

import json
from typing import Any

JSON_ENCODER = json.JSONEncoder(separators=(", ", ": "))
"""The one encoder of a JSON line: ``dump --output jsonl``'s lines, ``get --output json``'s objects, dump's document."""

_DOCUMENT_ENCODER = json.JSONEncoder(indent=2)


def count(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun, singular or plural: ``count(1, "byte")`` is "1 byte", ``count(3, "entry", "entries")`` "3 entries"."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON, no newline (``, `` and ``: `` between items)."""
    return JSON_ENCODER.encode(obj)


def json_document(obj: Any) -> str:
    """``obj`` as a JSON document indented by two spaces, no newline (info, check, index, verify ``--output json``)."""
    return _DOCUMENT_ENCODER.encode(obj)


def histogram_label(num_refs: int) -> str:
    """The ``zdb -S`` row a digest shared by ``num_refs`` blocks falls in: ``1``, ``2``, ``3-4``, ``5-8``, ``9-16``..."""
    k = (num_refs - 1).bit_length()
    return str(num_refs) if k <= 1 else f"{(1 << (k - 1)) + 1}-{1 << k}"
