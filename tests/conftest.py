"""Shared pytest configuration.

Hypothesis: the profile ``qjournal`` is loaded for every test. It drops the
per-example deadline (the suite runs on a busy 2-core machine, where a timing
limit only makes tests flaky; speed is measured by benchmarks, never by unit
tests). Long property runs: set ``QJOURNAL_HYPOTHESIS_EXAMPLES`` (e.g. 5000);
it becomes every property test's example count, where a test's own short
default is otherwise used.

qcow2 images: the session fixture ``qemu_test_images`` builds
``tests/qemu_images.py``'s ``TEST_IMAGES`` once, with QEMU's tools, for every
test that compares the qcow2 parser with QEMU (it skips without qemu-img and
qemu-io, or fails under CI=true); ``index_images`` builds
``tests/image_oracle.py``'s ``INDEX_IMAGES`` once, for the tests of
qjournal.image, qjournal.index and qjournal.verify (the same rule). Tests copy
an image before they change it.
"""

from __future__ import annotations

import image_oracle
import pytest
import qemu_images as qi
from helpers import long_run_examples
from hypothesis import settings

_EXAMPLES = long_run_examples()
if _EXAMPLES:
    settings.register_profile("qjournal", deadline=None, max_examples=_EXAMPLES)
else:
    settings.register_profile("qjournal", deadline=None)
settings.load_profile("qjournal")


@pytest.fixture(scope="session")
def qemu_test_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, qi.Image]:
    """name -> qemu_images.Image for every spec of qemu_images.TEST_IMAGES."""
    qi.require_qemu()
    return qi.build_all(qi.TEST_IMAGES, tmp_path_factory.mktemp("qemu-images"))


@pytest.fixture(scope="session")
def index_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, qi.Image]:
    """name -> qemu_images.Image for every spec of image_oracle.INDEX_IMAGES."""
    qi.require_qemu()
    return qi.build_all(image_oracle.INDEX_IMAGES, tmp_path_factory.mktemp("index-images"))
