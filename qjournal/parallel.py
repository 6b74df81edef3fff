"""Worker processes for the checks of large areas: how many, how they start, results in order.

Strategy: journal clusters are independent for validation (D5: no entry spans
two), so a check of a large area splits it into ranges of clusters, each
checked by a worker process that opens the file itself; the parent merges the
ranges' results in order (:mod:`qjournal.reader`). This module knows nothing
of the format: it resolves ``jobs``, picks a start method that is safe in the
calling process, and maps a function over arguments with the results in order,
stopping the workers once the caller has what it needs. Workers are forked
(:func:`can_fork`); any failure to start or run them is the caller's cue to
do the work serially.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from qjournal.errors import JournalArgumentError

__all__ = ["PARALLEL_MIN_BYTES", "can_fork", "default_jobs", "ordered_map", "resolve_jobs"]

T = TypeVar("T")

PARALLEL_MIN_BYTES = 16 << 20
"""Areas at least this large are checked by worker processes (when ``jobs`` > 1 and the area is a
regular file opened by path). Measured on 2 cores: starting two workers and merging costs about
30 ms; a serial check of 16 MiB takes about 0.3 s with the compiled stream, so below this size the
gain is small and the risk of paying more than it saves is not."""

def default_jobs() -> int:
    """The number of cores this process may run on: ``os.process_cpu_count()``, else the affinity mask."""
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        n = count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count()
    return max(1, n or 1)


def resolve_jobs(jobs: object) -> int:
    """``jobs`` as a number of processes: None is :func:`default_jobs`, else an integer >= 1."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise JournalArgumentError(f"jobs must be an integer >= 1 (1: no worker processes), not {jobs!r}")
    return jobs


def _threads() -> int:
    """Threads of this process: the kernel's count (C libraries' threads too) where there is one."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def can_fork() -> bool:
    """True when worker processes can be forked safely: ``fork`` exists and this process runs one thread.

    Workers are forked, never spawned: a spawned worker (``spawn``,
    ``forkserver``) imports the caller's main module again, which runs a
    script that lacks an ``if __name__ == "__main__"`` guard once per worker;
    and forking a process that runs other threads can copy a lock one of them
    holds. With other threads running, a check stays in this process.
    """
    return "fork" in multiprocessing.get_all_start_methods() and _threads() == 1


def ordered_map(fn: Callable[..., T], args: Sequence[tuple[Any, ...]], jobs: int) -> Generator[T, None, None]:
    """``fn(*a)`` for each ``a`` of ``args`` in ``jobs`` worker processes, yielded in order.

    The workers are stopped when the caller stops iterating (closes the
    generator), done or not. ``fn`` must be importable by name (a module-level
    function). A worker's exception is raised here when its result's turn comes.
    """
    pool = multiprocessing.get_context("fork").Pool(min(jobs, len(args)))
    try:
        yield from pool.imap(_star, [(fn, a) for a in args], chunksize=1)
    finally:
        pool.terminate()
        pool.join()


def _star(job: tuple[Callable[..., T], tuple[Any, ...]]) -> T:
    fn, a = job
    return fn(*a)
