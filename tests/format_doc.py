"""The project's format reference, docs/format.md, read by the tests that hold the code to it."""

from __future__ import annotations

import re
from pathlib import Path

FORMAT_MD = Path(__file__).resolve().parents[1] / "docs" / "format.md"
TEXT = FORMAT_MD.read_text()


def section(rule: str) -> str:
    """The text of rule ``rule`` (``"D10"``): from its heading to the next heading."""
    m = re.search(rf"^#+ {re.escape(rule)}\b.*?(?=^#)", TEXT + "\n#", re.M | re.S)
    assert m, f"docs/format.md has no section {rule}"
    return m.group(0)


def spec_text() -> str:
    """The spec text as docs/format.md quotes it: the first ```text block of its section "The spec text"."""
    start = TEXT.index("## 2. The spec text")
    m = re.search(r"```text\n(.*?)```", TEXT[start:], re.S)
    assert m, "docs/format.md quotes no spec text"
    return m.group(1)
