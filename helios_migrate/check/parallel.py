"""A project's revisions checked on several cores.

Rendering a revision means executing its module and its ``upgrade()`` in this interpreter, so the
work is split between processes, not threads: once the process has imported Alembic, SQLAlchemy
and the rules, :func:`start` forks one worker per extra core and gives each a contiguous share of
the later revisions, while the checking process goes on with the first share itself.  A worker
inherits everything already imported (nothing is loaded twice) and sends back, per revision, exactly
what the checking process would have computed: findings, render state, statement count, the upgrade
statements.  The checking process then takes the results in upgrade order.

One thing cannot be computed out of order: ``sa.inspect(op.get_bind())`` answers from the schema
the revisions *before* built, which a worker does not have.  A worker marks each revision whose
rendering consulted that schema, and the checking process renders those again, in order, with the
real one; so the report is the same as with ``--jobs 1``, only sooner.  A worker that fails in any
way (killed, out of memory, a result that does not unpickle) costs nothing but time: its revisions
are checked in the checking process.

Workers are forked (``os.fork``), which only Linux does safely with the libraries loaded here;
elsewhere, and when live database facts are read (one connection, not to be shared), the check runs
in one process.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

MIN_SHARE = 12
"""No worker is started for fewer revisions than this: a fork and a result's round trip cost
about as much as checking a dozen small revisions."""


class _Item(Protocol):
    path: Path
    source: str


Item = TypeVar("Item", bound=_Item)
Result = TypeVar("Result")


MAX_DEFAULT_JOBS = 8
"""The default ``--jobs`` never exceeds this: every worker pays its own first renders, and a large
machine's cores are better left to other jobs than spent on a few hundred revisions."""

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cores() -> int:
    """The CPUs this process may run on (its affinity), fewer when a container's CPU quota says
    so, at most :data:`MAX_DEFAULT_JOBS`: the default number of processes of a check."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(CGROUP_ROOT)
    if quota is not None:
        cores = min(cores, quota)
    return max(1, min(cores, MAX_DEFAULT_JOBS))


def cgroup_cpu_quota(root: Path) -> int | None:
    """Whole CPUs a cgroup CPU quota allows (rounded up), ``None`` without a quota: cgroup v2's
    ``cpu.max`` (``"200000 100000"``, or ``"max 100000"`` for none), else v1's
    ``cpu/cpu.cfs_quota_us`` over ``cpu/cpu.cfs_period_us`` (-1 for none).  A container sees its
    own cgroup at the root; a 2-CPU job on a 64-core host must not start 64 processes."""
    try:
        quota, period = (root / "cpu.max").read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None


def can_fork() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


@dataclass
class _Worker(Generic[Result]):
    pid: int
    fd: int
    paths: frozenset[Path]
    results: dict[Path, Result] | None = None
    done: bool = False


class Workers(Generic[Result]):
    """The workers of one project; :meth:`result` waits for the worker that has ``path``."""

    def __init__(self, workers: list[_Worker[Result]]) -> None:
        self._workers = workers

    def result(self, path: Path) -> Result | None:
        """The worker's result for ``path``; None when no worker had it or its worker failed."""
        for worker in self._workers:
            if path in worker.paths:
                if not worker.done:
                    _collect(worker)
                return (worker.results or {}).get(path)
        return None

    def close(self) -> None:
        """Stop the workers whose results were not asked for (the check ended early, with an
        error), so that none is left behind."""
        for worker in self._workers:
            if not worker.done:
                worker.done = True
                with contextlib.suppress(OSError):
                    os.kill(worker.pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.close(worker.fd)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(worker.pid, 0)


def shares(items: Sequence[Item], jobs: int) -> list[list[Item]]:
    """``items`` cut into at most ``jobs`` contiguous shares of about the same amount of source
    (the first, the checking process's, a little less)."""
    jobs = max(1, min(jobs, len(items) // MIN_SHARE))
    if jobs == 1:
        return [list(items)]
    total = sum(len(item.source) for item in items) or 1
    # The checking process's own share is a little smaller: it also takes the workers' results.
    bounds = [total * (n - 0.15) / (jobs - 0.15) for n in range(1, jobs)]
    out: list[list[Item]] = [[]]
    done = 0
    for item in items:
        if len(out) < jobs and done >= bounds[len(out) - 1] and out[-1]:
            out.append([])
        out[-1].append(item)
        done += len(item.source)
    return out


def start(items: Sequence[Item], jobs: int, compute: Callable[[Item], Result]) -> Workers[Result]:
    """Fork a worker running ``compute`` for each share of ``items`` but the first, which the
    checking process does itself (with whatever no worker could be started for)."""
    parts = shares(items, jobs) if jobs > 1 and can_fork() else [list(items)]
    workers: list[_Worker[Result]] = []
    for part in parts[1:]:
        worker = _fork(part, compute)
        if worker is None:  # no fork (out of processes): the checking process does the rest
            break
        workers.append(worker)
    return Workers(workers)


def _fork(part: list[Item], compute: Callable[[Item], Result]) -> _Worker[Result] | None:
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the worker: compute, send, and leave without running the parent's clean-up
        code = 1
        try:
            os.close(read_fd)
            results = {item.path: compute(item) for item in part}
            payload = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
            code = 0
        except BaseException:  # noqa: BLE001 - any failure: the checking process redoes the share
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return _Worker(pid, read_fd, frozenset(item.path for item in part))


def _collect(worker: _Worker[Result]) -> None:
    worker.done = True
    try:
        with os.fdopen(worker.fd, "rb") as source:
            payload = source.read()
    except OSError:
        payload = b""
    _, status = os.waitpid(worker.pid, 0)
    if not payload or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return
    try:
        results = pickle.loads(payload)  # noqa: S301 - written by this process's own fork
    except Exception:  # a result that does not unpickle: the checking process redoes the share
        return
    worker.results = results if isinstance(results, dict) else None
