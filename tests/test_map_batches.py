"""qjournal.hashing.map_batches: the one walk analyze and index share, on threads or in forked processes.

Blocks under 64 KiB are hashed in forked workers that each walk chunks of the
disk. The images here are small, so the chunk size is made small too
(``LEN_CHUNK`` patched) to force several chunks; every answer is compared with
the same walk on one thread: the same blocks, statuses, host offsets and
digests in the same order, the same analysis and index reports, and a worker's
error raised here as the same error, with its code and offset.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest
import qemu_images as qi

import qjournal
from qjournal import hashing, parallel
from qjournal.errors import CorruptImageError
from qjournal.guest import Blocks, GuestReader, Status

NAMES = ("g_repeats_c64k", "g_zlib_c64k", "g_ext_l2_c64k", "v3_c4k", "compressed_eof_c4k", "refcount1_c4k")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    qi.require_qemu()
    specs = [s for s in qi.TEST_IMAGES if s.name in NAMES]
    import image_oracle as oracle

    specs += [s for s in oracle.GUEST_IMAGES if s.name in NAMES]
    built = qi.build_all(specs, tmp_path_factory.mktemp("map-batches"))
    return {name: Path(image.path) for name, image in built.items()}


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small chunks, and a record of each forked map (its number of chunks): the fork path is taken, not assumed."""
    monkeypatch.setattr(hashing, "LEN_CHUNK", 8 << 10)
    calls: list[int] = []
    real = parallel.ordered_map

    def spy(fn: Any, args: Any, jobs: int, **kw: Any) -> Any:
        calls.append(len(args))
        return real(fn, args, jobs, **kw)

    monkeypatch.setattr(hashing, "ordered_map", spy)
    return calls


def per_block(fill: Any, batch: Blocks) -> list[tuple[int, int, int, bytes]]:
    """(guest offset, status, host offset, SHA-256 of the guest's bytes) of each block of a batch."""
    batch = fill(batch)
    assert batch.data is not None
    size = batch.block_size
    return [(batch.ofs_guest + i * size, batch.status[i], batch.ofs_host[i],
             hashlib.sha256(batch.data[i * size : (i + 1) * size]).digest()) for i in range(batch.num_blocks)]


def walk(path: Path, size: int, jobs: int) -> list[tuple[int, int, int, bytes]]:
    with GuestReader(path) as reader:
        out: list[tuple[int, int, int, bytes]] = []
        ends = []
        for end, rows in hashing.map_batches(reader, size, lambda b: per_block(reader.fill, b), jobs=jobs):
            assert rows and end == rows[-1][0] + size
            ends.append(end)
            out += rows
        assert ends == sorted(ends)
        return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [512, 4096, 16384])
def test_forked_workers_walk_the_disk_as_one_thread_does(images: dict[str, Path], forked: list[int], name: str,
                                                         size: int) -> None:
    alone = walk(images[name], size, jobs=1)
    assert forked == []
    shared = walk(images[name], size, jobs=2)
    assert forked and forked[0] > 1, "the fork path was taken, with several chunks"
    assert shared == alone


def test_blocks_of_64k_and_more_stay_on_threads(images: dict[str, Path], forked: list[int]) -> None:
    assert walk(images["g_repeats_c64k"], 65536, jobs=2) == walk(images["g_repeats_c64k"], 65536, jobs=1)
    assert forked == []


@pytest.mark.parametrize("name", ["g_repeats_c64k", "g_zlib_c64k", "v3_c4k"])
def test_analysis_and_index_answer_the_same_forked(images: dict[str, Path], forked: list[int], name: str,
                                                   tmp_path: Path) -> None:
    def analysis(jobs: int) -> list[Any]:
        with qjournal.analyze([images[name]], block_sizes=[512, 4096], jobs=jobs, list_duplicates=True) as a:
            dups = [(d.block_size, d.digest, d.blocks) for size in (512, 4096) for d in a.duplicates(size)]
            return [a.to_dict(), {"duplicates": dups}]

    assert analysis(2) == analysis(1)
    one, two = tmp_path / "one.qjournal", tmp_path / "two.qjournal"
    r1 = qjournal.index(images[name], one, block_size=4096, jobs=1)
    r2 = qjournal.index(images[name], two, block_size=4096, jobs=2)
    assert forked
    assert r1.to_dict() | {"journal": None} == r2.to_dict() | {"journal": None}
    assert one.read_bytes() == two.read_bytes()


def test_chunks_cover_the_disk_on_block_boundaries(images: dict[str, Path], forked: list[int]) -> None:
    for name in NAMES:
        with GuestReader(images[name]) as reader:
            for size in (512, 4096):
                chunks = hashing._chunks(reader, size)
                assert chunks[0][0] == 0 and chunks[-1][1] == reader.len_virtual_disk
                assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
                assert all(lo < hi and lo % size == 0 for lo, hi in chunks)
                stored = sum(s.length for s in reader.spans() if s.status is not Status.UNALLOCATED)
                assert len(chunks) <= stored // hashing.LEN_CHUNK + 2


def test_a_workers_error_is_raised_here_with_its_code_and_offset(images: dict[str, Path], forked: list[int],
                                                                 tmp_path: Path) -> None:
    src = images["g_zlib_c64k"]
    with GuestReader(src) as g:
        spans = [s for s in g.spans() if s.status is Status.COMPRESSED]
    last = spans[-1]  # in the last chunk: a worker other than the first meets it
    data = bytearray(src.read_bytes())
    assert last.ofs_host is not None
    data[last.ofs_host : last.ofs_host + 16] = b"\xff" * 16
    broken = tmp_path / "broken.qcow2"
    broken.write_bytes(data)
    with pytest.raises(CorruptImageError) as alone:
        walk(broken, 4096, jobs=1)
    with pytest.raises(CorruptImageError) as shared:
        walk(broken, 4096, jobs=2)
    assert forked
    assert (shared.value.code, shared.value.offset, str(shared.value)) == (alone.value.code, alone.value.offset,
                                                                            str(alone.value))
