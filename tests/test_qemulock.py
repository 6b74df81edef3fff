"""QEMU's image locks against a real qemu-io holding the image, and qemu-img against qjournal's reader locks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qjournal import qemulock

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-io") is None and not os.environ.get("CI"), reason="qemu-io (Debian qemu-utils) is not installed"
)


@contextmanager
def qemu_io_holding(path: Path, *, read_only: bool) -> Iterator[subprocess.Popen[bytes]]:
    """A qemu-io that has ``path`` open (read-only or for writing) until the block ends."""
    args = ["qemu-io", *(["-r"] if read_only else []), "-f", "qcow2", str(path)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ino = path.stat().st_ino
        deadline = time.monotonic() + 20
        while f":{ino} " not in Path("/proc/locks").read_text():  # QEMU has taken its locks
            assert proc.poll() is None, "qemu-io exited"
            assert time.monotonic() < deadline, "qemu-io took no lock"
            time.sleep(0.02)
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=20)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return path


def test_an_image_open_for_writing_is_refused_naming_the_lock(image: Path) -> None:
    with qemu_io_holding(image, read_only=False), open(image, "rb") as f:
        assert qemulock.holders(f.fileno()) == ["write", "resize"]
        with pytest.raises(qemulock.ImageInUseError) as err:
            qemulock.lock_for_reading(f.fileno(), path=str(image))
    assert err.value.code == "in_use"
    text = str(err.value)
    assert str(image) in text and "write and resize" in text and "byte 101" in text and "--force-share" in text


def test_force_share_reads_an_image_open_for_writing(image: Path) -> None:
    with qemu_io_holding(image, read_only=False), open(image, "rb") as f:
        qemulock.lock_for_reading(f.fileno(), path=str(image), force_share=True)


def test_a_read_only_user_does_not_block_a_reader(image: Path) -> None:
    with qemu_io_holding(image, read_only=True), open(image, "rb") as f:
        assert qemulock.holders(f.fileno()) == []
        qemulock.lock_for_reading(f.fileno(), path=str(image))


def test_an_unused_image_is_free(image: Path) -> None:
    with open(image, "rb") as f:
        assert qemulock.holders(f.fileno()) == []


def test_qemu_cannot_start_writing_while_qjournal_reads(image: Path) -> None:
    """Our reader locks make a QEMU writer refuse, as qemu-img's own do; -U style reading does not."""
    with open(image, "rb") as f:
        qemulock.lock_for_reading(f.fileno(), path=str(image))
        proc = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write 0 512", str(image)], check=False, capture_output=True, text=True)
        assert proc.returncode != 0
        assert 'Failed to get "write" lock' in proc.stderr
        # reading alongside is still allowed
        ok = subprocess.run(["qemu-img", "info", str(image)], check=False, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
    # the locks went with the descriptor
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write 0 512", str(image)], check=True, capture_output=True)


def test_force_share_holds_no_unshare_lock(image: Path) -> None:
    with open(image, "rb") as f:
        qemulock.lock_for_reading(f.fileno(), path=str(image), force_share=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write 0 512", str(image)], check=True, capture_output=True)


def test_locking_writes_no_byte(image: Path) -> None:
    before = image.read_bytes()
    with open(image, "rb") as f:
        qemulock.lock_for_reading(f.fileno(), path=str(image))
    assert image.read_bytes() == before
