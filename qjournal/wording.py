"""Words for messages: one home for how a count and its noun are written."""

from __future__ import annotations


def count(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun, singular or plural: ``count(1, "byte")`` is "1 byte", ``count(3, "entry", "entries")`` "3 entries"."""
    return f"{n} {one if n == 1 else many or one + 's'}"
