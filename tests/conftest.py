"""Shared pytest configuration.

Hypothesis: the profile ``qjournal`` is loaded for every test. It drops the
per-example deadline (the suite runs on a busy 2-core machine, where a timing
limit only makes tests flaky; speed is measured by benchmarks, never by unit
tests). Long property runs: set ``QJOURNAL_HYPOTHESIS_EXAMPLES`` (e.g. 5000);
it becomes every property test's example count, where a test's own short
default is otherwise used.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

HYPOTHESIS_EXAMPLES_ENV = "QJOURNAL_HYPOTHESIS_EXAMPLES"


def _long_run_examples() -> int | None:
    raw = os.environ.get(HYPOTHESIS_EXAMPLES_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"{HYPOTHESIS_EXAMPLES_ENV} must be a positive integer, not {raw!r}")
    return n


_EXAMPLES = _long_run_examples()
settings.register_profile("qjournal", deadline=None, **({"max_examples": _EXAMPLES} if _EXAMPLES else {}))
settings.load_profile("qjournal")
