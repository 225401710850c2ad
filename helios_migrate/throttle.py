"""Pacing a running migration: batches sized by time, throttling on replica lag and load, an
operator's pause file, and Ctrl-C that stops between batches.

* :class:`BatchSizer` sizes each backfill batch so that it takes about ``target_ms`` (its row locks
  are held that long), from the rows/s the batches before it achieved, the way
  pt-online-schema-change's ``--chunk-time`` does.  The first batch is small; a batch grows at
  most ``growth``-fold (``backfill_max_growth``) over the one before, and shrinks at once when a
  batch was slow.
* :class:`Throttle` is asked before each batch whether the batch may run: it pauses while the
  pause file exists, while a replica lags more than ``max_replica_lag``, or while the load is above
  ``max_load``, and stops the step cleanly (it resumes where it stopped) above ``critical_load`` or
  after ``throttle_max_wait``.
* :func:`stop_between_batches` turns the first Ctrl-C (SIGINT) into a request the batch loop
  honours after the batch that is running commits; a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .config import RuntimeSettings
from .sqltext import duration_ms

__all__ = ["BatchSizer", "StopRequested", "Throttle", "ThrottleStop", "stop_between_batches"]

log = logging.getLogger("alembic.helios.runtime")

ACTIVE_SESSIONS_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend'"
)
"""The default load: sessions running a statement right now (ours excluded)."""

REPLICA_LAG_SQL = (
    "SELECT COALESCE(EXTRACT(EPOCH FROM max(replay_lag)), 0) FROM pg_stat_replication"
)
"""The default replica lag, in seconds, as the primary sees it (0 without replicas)."""


@dataclass
class BatchSizer:
    """The size of the next batch, from the time the previous ones took."""

    target_ms: int
    """0: fixed batches of ``ceiling`` rows."""
    floor: int = 100
    ceiling: int = 10_000
    growth: float = 2.0
    """The most a batch grows over the one before."""
    size: int = field(init=False)
    rate: float | None = field(default=None, init=False)
    """Rows per second, a moving average over the batches so far."""

    def __post_init__(self) -> None:
        self.floor = max(1, min(self.floor, self.ceiling))
        self.size = self.ceiling if self.target_ms <= 0 else self.floor

    def record(self, rows: int, seconds: float) -> None:
        """A batch of ``size`` rows updated ``rows`` rows in ``seconds``: size the next one."""
        if self.target_ms <= 0 or rows <= 0:
            return
        rate = rows / max(seconds, 1e-4)
        self.rate = rate if self.rate is None else 0.5 * self.rate + 0.5 * rate
        want = self.rate * self.target_ms / 1000
        if seconds * 1000 > 2 * self.target_ms:
            # A slow batch (a lock wait, a burst of load): trust it alone, not the average.
            want = min(want, rate * self.target_ms / 1000)
        self.size = int(max(self.floor, min(self.ceiling, want, max(1.0, self.growth) * max(self.size, rows))))


class ThrottleStop(Exception):
    """The step stopped cleanly before its next batch (critical load, paused too long, Ctrl-C)."""


class StopRequested(ThrottleStop):
    """Ctrl-C: stop after the batch that is running."""


@dataclass
class Throttle:
    """Asked before each batch: may it run now?  ``scalar`` runs a ``SELECT`` on the migration's
    connection and returns its value."""

    settings: RuntimeSettings
    scalar: Callable[[str], Any]
    what: str
    sleep: Callable[[float], None] = time.sleep
    stop: threading.Event | None = None
    measure_every: float | None = None
    """Seconds a measurement (replica lag, load) that allowed a batch is trusted before it is
    taken again (None: the ``throttle_interval`` setting): batches of a few ms each would
    otherwise spend a query on each check.  While the throttle waits, it measures on every
    check.  The pause file is looked at every time."""
    clock: Callable[[], float] = time.monotonic
    _unavailable: set[str] = field(default_factory=set)
    _clear_until: float = field(default=float("-inf"))

    def reasons(self, *, fresh: bool = True) -> tuple[list[str], str | None]:
        """Why the next batch should wait (empty: it may run), and why it must stop (or None).
        ``fresh=False`` reuses measurements that allowed a batch less than ``measure_every`` ago."""
        s = self.settings
        waits: list[str] = []
        if s.pause_file and Path(s.pause_file).exists():
            waits.append(f"paused by the operator (remove {os.path.abspath(s.pause_file)} to resume)")
        if not fresh and self.clock() < self._clear_until:
            return waits, None
        measured = len(waits)
        if s.max_replica_lag is not None:
            lag = self._measure("replica lag", s.replica_lag_sql or REPLICA_LAG_SQL)
            limit = duration_ms(s.max_replica_lag) / 1000
            if lag is not None and lag > limit:
                waits.append(f"replica lag {lag:.1f}s above max_replica_lag {s.max_replica_lag}")
        if s.max_load is not None or s.critical_load is not None:
            load = self._measure("load", s.load_sql or ACTIVE_SESSIONS_SQL)
            if load is not None and s.critical_load is not None and load > s.critical_load:
                return waits, f"load {load:g} above critical_load {s.critical_load:g}"
            if load is not None and s.max_load is not None and load > s.max_load:
                waits.append(f"load {load:g} above max_load {s.max_load:g}")
        every = (
            self.measure_every if self.measure_every is not None
            else duration_ms(s.throttle_interval) / 1000
        )
        self._clear_until = self.clock() + every if len(waits) == measured else float("-inf")
        return waits, None

    def _measure(self, name: str, sql: str) -> float | None:
        try:
            value = self.scalar(sql)
        except Exception as exc:  # a user's query that fails must not stop the migration
            if name not in self._unavailable:
                self._unavailable.add(name)
                log.warning("helios: %s: cannot measure %s (%s); not throttling on it", self.what, name, exc)
            return None
        return None if value is None else float(value)

    def wait_until_clear(self) -> float:
        """Block while the next batch should wait; return the seconds waited.  Raises
        :class:`ThrottleStop` when the step must stop."""
        waited = 0.0
        limit = duration_ms(self.settings.throttle_max_wait) / 1000
        said: list[str] = []
        delay = max(0.01, duration_ms(self.settings.throttle_poll_min) / 1000)
        longest = max(delay, duration_ms(self.settings.throttle_poll_max) / 1000)
        while True:
            if self.stop is not None and self.stop.is_set():
                raise StopRequested("stopped by Ctrl-C")
            waits, stop = self.reasons(fresh=bool(said))
            if stop:
                raise ThrottleStop(stop)
            if not waits:
                if said:
                    log.info("helios: %s: resuming after %.1fs", self.what, waited)
                return waited
            if waits != said:
                log.warning("helios: %s: waiting: %s", self.what, "; ".join(waits))
                said = waits
            if waited >= limit:
                raise ThrottleStop(
                    f"paused for {waited:.0f}s (throttle_max_wait {self.settings.throttle_max_wait}): "
                    + "; ".join(waits)
                )
            self.sleep(delay)
            waited += delay
            delay = min(longest, delay * 1.5)


@contextlib.contextmanager
def stop_between_batches() -> Iterator[threading.Event]:
    """While the block runs, the first SIGINT sets the event it yields (the loop stops after the
    current batch); the second raises :class:`KeyboardInterrupt` as usual.  Outside the main thread
    signals cannot be caught: the event is never set."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        log.warning("helios: Ctrl-C: stopping after the current batch (press again to stop at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)
