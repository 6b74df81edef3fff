"""Worker processes for large areas: how many, how they start, results in order, and the range runner.

Strategy: journal clusters are independent (D5: no entry spans two), so a
check or a dump of a large area splits it into ranges of clusters, each read
by a worker process that opens the file itself; the parent merges the ranges'
results in order (:mod:`qjournal.checking`, :mod:`qjournal.dumping`). This
module knows nothing of the format but that an area is a row of clusters:
:func:`plan` is the one gate (enough jobs, a large enough area, a regular file
opened by path, a process that may fork), :func:`run_ranges` the one runner
(each worker opens the file by path and checks it is the parent's before it
works; the first failure hands its range, and the rest, back to this process,
and says why in the ``qjournal.parallel`` log, which ``--debug`` shows), and
:func:`ordered_map` maps a function over arguments in forked workers with the
results in order, stopping them once the caller has what it needs;
:func:`tail_moved` tells whether a writer committed while the ranges were read
(the caller then reads again in this process: never part of a batch). Workers
are forked (:func:`can_fork`) with :func:`os.fork`, each with a pipe back to
the parent, and close every other descriptor they inherited at once (a
writer's lock among them).
"""

from __future__ import annotations

import collections
import contextlib
import os
import struct
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TypeVar

from qjournal.area import Area
from qjournal.errors import JournalArgumentError, JournalError
from qjournal.format import LEN_CLUSTER

__all__ = [
    "MAX_JOBS",
    "PARALLEL_MIN_BYTES",
    "NotTheSameFile",
    "RangeJob",
    "WorkerDied",
    "Workers",
    "can_fork",
    "default_jobs",
    "ordered_map",
    "ordered_threads",
    "plan",
    "resolve_jobs",
    "run_ranges",
    "tail_moved",
]

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    """The ``qjournal.parallel`` log: why a run fell back to this process (``qjournal --debug`` prints it).

    :mod:`logging` (and :mod:`pickle`, :mod:`signal`, :mod:`traceback`) are imported when a run uses
    workers, not when a small journal is read: the command line starts faster without them.
    """
    import logging  # noqa: PLC0415

    return logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

PARALLEL_MIN_BYTES = 8 << 20
"""Areas at least this large are checked (and dumped) by worker processes (when ``jobs`` > 1 and the
area is a regular file opened by path). Measured on this project's 2-core machine: forking the workers and
merging their results costs about 5 ms; a serial check takes about 30 ms per MiB (compiled stream),
so 8 MiB (about 250 ms serially) gains about 100 ms on two idle cores, and a machine whose other
core is busy loses at most those few milliseconds. Below it the gain is too small to be worth a fork.
"""


MAX_JOBS = 256
"""The most worker processes (or threads) a ``jobs`` may ask for: more than any machine this runs on has cores
to give one each, and few enough that a slip (``--jobs 1000``) cannot fork a thousand processes."""


def default_jobs() -> int:
    """The number of cores this process may run on (``os.process_cpu_count()``, else the affinity mask), at most
    :data:`MAX_JOBS`."""
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        n = count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count()
    return min(MAX_JOBS, max(1, n or 1))


def resolve_jobs(jobs: object, meaning: str = "1: no worker processes") -> int:
    """``jobs`` as a number of processes (or threads): None is :func:`default_jobs`, else an integer from 1 to
    :data:`MAX_JOBS`.

    ``meaning`` is what the error says the number counts.
    """
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise JournalArgumentError(f"jobs must be an integer >= 1 ({meaning}), not {jobs!r}")
    if jobs > MAX_JOBS:
        raise JournalArgumentError(f"jobs must be at most {MAX_JOBS} ({meaning}), not {jobs!r}")
    return jobs


def _threads() -> int:
    """Threads of this process: the kernel's count (C libraries' threads too) where there is one."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading  # noqa: PLC0415

        return threading.active_count()


def can_fork() -> bool:
    """True when worker processes can be forked safely: ``fork`` exists and this process runs one thread.

    Workers are forked, never spawned: a spawned worker (``spawn``,
    ``forkserver``) imports the caller's main module again, which runs a
    script that lacks an ``if __name__ == "__main__"`` guard once per worker;
    and forking a process that runs other threads can copy a lock one of them
    holds. With other threads running, a check stays in this process.
    """
    import multiprocessing  # noqa: PLC0415 - only when an area is large enough for workers
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    for _ in range(50):  # a thread Python has joined leaves the kernel's list a moment later: wait for it, briefly
        if _threads() == 1:
            return True
        if threading.active_count() > 1:
            return False
        time.sleep(0.001)
    return False


def ordered_map(fn: Callable[..., T], args: Sequence[tuple[Any, ...]], jobs: int, *,
                keep: Sequence[int] = ()) -> Generator[T, None, None]:
    """``fn(*a)`` for each ``a`` of ``args`` in ``jobs`` forked worker processes, yielded in order.

    Worker ``i`` computes ``args[i]``, ``args[i + jobs]``, ... in turn and
    sends each result down its own pipe (pickled, length first); the parent
    reads them back in the order of ``args``. A worker's exception is raised
    here when its result's turn comes. The workers are killed when the caller
    stops iterating (closes the generator), done or not. Forking costs about 2
    ms a worker here, against some 20 ms for a ``multiprocessing.Pool``.
    A worker closes every inherited descriptor at once but its pipe and
    ``keep`` (read-only ones it reads with positioned reads, an image's).
    """
    import pickle  # noqa: PLC0415, F401 - see _log; imported before the fork, so that no worker imports it again
    import signal  # noqa: PLC0415
    import traceback  # noqa: PLC0415, F401

    n = max(1, min(jobs, len(args)))
    workers: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    try:
        for i in range(n):
            r, w = os.pipe()
            _widen(w)
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                _close_inherited(keep=(w, *keep))
                _work(fn, args[i::n], w)
            os.close(w)
            workers.append((pid, r))
        for k in range(len(args)):
            ok, value = _receive(workers[k % n][1])
            if not ok:
                raise value
            yield value
    finally:
        for pid, r in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(r)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


_LEN = struct.Struct("<Q")


PIPE_BYTES = 1 << 20
"""The pipe buffer asked for (Linux: ``F_SETPIPE_SZ``; the default is 64 KiB): a run of a dump is some 3.5 MiB,
which then crosses in a few wake-ups instead of some fifty."""


def _widen(fd: int) -> None:
    """Ask for a pipe buffer of :data:`PIPE_BYTES` (where the system allows it; the default is kept otherwise)."""
    import fcntl  # noqa: PLC0415

    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _close_inherited(keep: Sequence[int]) -> None:
    """In a forked worker, at once: close every descriptor but stdin, stdout, stderr and ``keep`` (its pipe...).

    A worker shares its parent's open files; one of them may hold a writer's
    lock (an ``flock`` belongs to the open file, so it lasts while any process
    holds it open): a writer killed while its workers validate the journal
    would otherwise leave them holding its lock. A worker opens what it reads
    itself (:func:`run_range`).
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every descriptor number this process may have
        fds = list(range(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _work(fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], fd: int) -> NoReturn:
    """In a forked worker: each job's (ok, result or exception) down ``fd``, then exit without cleaning up."""
    import pickle  # noqa: PLC0415 - see _log
    import traceback  # noqa: PLC0415

    code = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for a in jobs:
                try:
                    item: tuple[bool, Any] = (True, fn(*a))
                except Exception as exc:  # sent to the parent, raised there in turn, with where it came from
                    exc.add_note("in a worker process:\n" + "".join(traceback.format_tb(exc.__traceback__)).rstrip())
                    item = (False, exc)
                try:
                    data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # an exception that does not pickle
                    data = pickle.dumps((False, RuntimeError(f"worker: {type(exc).__name__}: {exc}")))
                out.write(_LEN.pack(len(data)))
                out.write(data)
                out.flush()
    except BaseException:  # the parent went away (a broken pipe), or Ctrl-C
        code = 1
    os._exit(code)  # no atexit handlers, no flush of buffers copied from the parent


def _receive(fd: int) -> tuple[bool, Any]:
    import pickle  # noqa: PLC0415 - see _log

    head = _read_exactly(fd, _LEN.size)
    result: tuple[bool, Any] = pickle.loads(_read_exactly(fd, _LEN.unpack(head)[0]))
    return result


def _read_exactly(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise WorkerDied("a worker process ended before it sent its result")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class WorkerDied(RuntimeError):
    """A worker process exited (killed, out of memory) before sending a result: the caller works serially."""


# -- the range runner -------------------------------------------------------------


FileSpec = tuple[str, int, int]
"""A file as :meth:`qjournal.area.Area.regular_file` names it: (path, st_dev, st_ino)."""

Progress = Callable[[int], None]


class Workers(NamedTuple):
    """What :func:`plan` decided: the file the workers open, and how many workers."""

    spec: FileSpec
    num_workers: int


def plan(area: Area, jobs: object) -> Workers | None:
    """The worker gate: workers for ``area``, or None when it is to be done in this process.

    Workers when ``jobs`` (:func:`resolve_jobs`; checked even when no worker
    would run) is more than 1, the area at least :data:`PARALLEL_MIN_BYTES`,
    the process one that may fork (:func:`can_fork`) and the area a regular
    file opened by path (a buffer or a caller's file object cannot be opened
    again by another process).
    """
    n = resolve_jobs(jobs)
    if n < 2 or area.len_area < PARALLEL_MIN_BYTES or not can_fork():
        return None
    spec = area.regular_file()
    return None if spec is None else Workers(spec, n)


class NotTheSameFile(Exception):
    """A worker could not open the parent's file by its path, or opened another file now under that name."""


class RangeJob(NamedTuple):
    """One range of clusters for a worker: the function, the file, the area in it, the clusters [start, stop)."""

    work: Callable[[Area, int, int, Progress | None], Any]
    spec: FileSpec
    area_offset: int
    len_area: int
    start: int
    stop: int


def run_range(job: RangeJob) -> Any:
    """In a worker process: open the parent's file by path, make sure it is the same file, do the range's work."""
    path = job.spec[0]
    try:
        area = Area(path, job.area_offset, job.len_area)
    except JournalError as exc:
        raise NotTheSameFile(f"a worker cannot open {path}: {exc.message()}") from None
    try:
        if area.regular_file() != job.spec:
            raise NotTheSameFile(f"{path} is no longer the file this process opened")
        return job.work(area, job.start, job.stop, None)
    finally:
        area.close()


def run_ranges(
    area: Area,
    work: Callable[[Area, int, int, Progress | None], T],
    bounds: Sequence[tuple[int, int]],
    workers: Workers | None,
    progress: Progress | None = None,
) -> Generator[T, None, None]:
    """``work(area, start, stop, progress)`` for each range of clusters of ``bounds``, yielded in order.

    With ``workers`` (:func:`plan`), forked workers do the ranges, each on
    the area opened again by path (:func:`run_range`), and ``progress`` is
    called with the end of each range they deliver; without, or from the first
    range a worker fails (it could not open the same file, it died, it
    raised), this process does that range and the rest itself, passing
    ``progress`` to ``work``: the results are the same, and an error is raised
    here the way this process meets it. Why a run fell back is logged to
    ``qjournal.parallel`` at DEBUG, an unexpected exception with its traceback
    (the worker's included). Closing the generator stops the workers.
    """
    done = 0
    if workers is not None:
        jobs = [(RangeJob(work, workers.spec, area.area_offset, area.len_area, lo, hi),) for lo, hi in bounds]
        results = ordered_map(run_range, jobs, workers.num_workers)
        try:
            while done < len(bounds):
                try:
                    result = next(results)
                except (NotTheSameFile, WorkerDied, JournalError, OSError) as exc:
                    _log().debug("%s: this process goes on from cluster %d", exc, bounds[done][0])
                    break
                except Exception:  # a bug in a worker, a result that does not pickle: not hidden, but not fatal either
                    _log().debug("a worker failed unexpectedly: this process goes on from cluster %d", bounds[done][0],
                              exc_info=True)
                    break
                done += 1
                if progress is not None:
                    progress(bounds[done - 1][1] * LEN_CLUSTER)
                yield result  # outside the try above: what the caller raises here is the caller's
        finally:
            results.close()
    for lo, hi in bounds[done:]:
        yield work(area, lo, hi, progress)


Seen = tuple[int, bytes]
"""A cluster as a range's reader saw it: its index in the area, its bytes."""


def tail_moved(area: Area, seen: Seen | None) -> bool:
    """Whether the cluster where replay ended has changed since a worker read it: the journal changed under the run.

    Ranges are read at different times, so a run beside a writer could see
    the start of a batch in one range (read after its commit) and not its end
    in the next (read before). Every commit writes into the cluster holding
    the tail (its anchor at the tail, its commit byte just after: D19), so
    when that cluster, read again once every range is in, is still the bytes
    the range that found the tail saw, no batch was committed since, and the
    ranges together show the journal as it was at one moment: the serial
    reader's consistency. Otherwise the caller reads again in this process.
    """
    if seen is None:
        return False
    index, buf = seen
    moved = area.read_cluster(index) != buf
    if moved:
        _log().debug("the journal changed while workers read it (cluster %d): this process reads it again", index)
    return moved


def ordered_threads(jobs: int, items: Iterable[tuple[T, Callable[[], R]]], *,
                    name: str = "qjournal") -> Generator[tuple[T, R], None, None]:
    """``(tag, work())`` for each ``(tag, work)`` of ``items``, in their order, each ``work`` run on one of ``jobs``
    threads; at most ``2 x jobs`` in flight, so memory does not grow with the input. Stopping early (closing the
    generator) cancels what has not started."""
    from concurrent.futures import Future, ThreadPoolExecutor  # noqa: PLC0415 - not every command runs threads

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=name)
    pending: collections.deque[tuple[T, Future[R]]] = collections.deque()
    try:
        for tag, work in items:
            pending.append((tag, pool.submit(work)))
            while len(pending) > 2 * jobs:
                t, fut = pending.popleft()
                yield t, fut.result()
        while pending:
            t, fut = pending.popleft()
            yield t, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
