"""The lock-queue guard: look before requesting a lock that blocks reads or writes.

A step that requests ACCESS EXCLUSIVE behind a long transaction queues every later reader and
writer of the table behind itself until ``lock_timeout`` gives up.  Before such a step the guard
looks at ``pg_locks``/``pg_stat_activity`` for other sessions that hold or wait for a conflicting
lock on the tables the step names, in a transaction older than ``lock_guard_min_age`` (a long
transaction, a session idle in transaction, a manual ``VACUUM``).  While there are, it waits with
backoff instead of joining the queue, and logs who is in the way.  After ``lock_guard_max_wait``
it lets the step request its lock anyway: ``lock_timeout`` and the retries remain the last line of
defence.  It never cancels or terminates another session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .changes import QualifiedName
from .config import RuntimeSettings
from .effects import RelationLock
from .knowledge import effects_for_sql
from .locks import LockMode, strongest_per_relation
from .sqltext import duration_ms, quote_literal, quote_qualified
from .versions import PgVersion

__all__ = ["Blocker", "find_blockers", "requested_locks", "wait_for_lock_queue"]

log = logging.getLogger("alembic.helios.runtime")

Query = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Blocker:
    """A session in the way of a lock the step is about to request."""

    pid: int
    application_name: str
    state: str
    transaction_age_s: float
    mode: LockMode
    granted: bool
    table: str
    query: str

    def describe(self) -> str:
        holds = "holds" if self.granted else "waits for"
        return (
            f"pid {self.pid} ({self.application_name or 'no application_name'}, {self.state}, "
            f"transaction {self.transaction_age_s:.1f}s old) {holds} {self.mode.sql_name} on "
            f"{self.table}: {self.query!r}"
        )


def requested_locks(statements: Sequence[str], version: PgVersion) -> dict[QualifiedName, LockMode]:
    """The tables ``statements`` lock in a mode that blocks reads or writes, with the strongest
    mode requested on each (what the knowledge base says, from PostgreSQL's parse tree)."""
    blocking: list[RelationLock] = []
    for sql in statements:
        try:
            effects = effects_for_sql(sql, version)
        except Exception:  # not parseable here (a DO block, a function body): nothing to guard
            continue
        blocking += [
            lock for effect in effects for lock in effect.locks
            if lock.blocking and (lock.mode.blocks_reads or lock.mode.blocks_writes)
        ]
    return {lock.relation: lock.mode for lock in strongest_per_relation(blocking).values()}


def _sessions_locking(query: Query, table: QualifiedName) -> list[Blocker]:
    """Every other session holding or waiting for a lock on ``table``, oldest transaction first."""
    regclass = quote_literal(quote_qualified(table.schema, table.name))
    rows = query(
        "SELECT l.pid, COALESCE(a.application_name, ''), COALESCE(a.state, a.backend_type, ''), "
        "COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - a.xact_start), 0), l.mode, l.granted, "
        "left(regexp_replace(COALESCE(a.query, ''), '\\s+', ' ', 'g'), 120) "
        "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE l.locktype = 'relation' AND l.relation = to_regclass({regclass}) "
        "AND l.pid <> pg_backend_pid() ORDER BY a.xact_start NULLS LAST"
    )
    found = []
    for pid, app, state, age, held_mode, granted, text in rows:
        try:
            mode = LockMode.from_pg_locks(str(held_mode))
        except ValueError:
            continue
        found.append(Blocker(int(pid), str(app), str(state), float(age), mode, bool(granted), str(table), str(text)))
    return found


def find_blockers(query: Query, wanted: dict[QualifiedName, LockMode], min_age_s: float) -> list[Blocker]:
    """Other sessions holding or waiting for a lock that conflicts with ``wanted``, in a
    transaction at least ``min_age_s`` old."""
    return [
        other
        for table, mode in wanted.items()
        for other in _sessions_locking(query, table)
        if mode.conflicts_with(other.mode) and other.transaction_age_s >= min_age_s
    ]


def long_transactions_on(query: Query, table: QualifiedName, min_age_s: float) -> list[Blocker]:
    """Other sessions whose transaction, at least ``min_age_s`` old, holds or waits for any lock
    on ``table``: a writer's transaction holds ROW EXCLUSIVE while it keeps the rows it changed
    locked, so these are the sessions a backfill batch may be waiting on."""
    return [other for other in _sessions_locking(query, table) if other.transaction_age_s >= min_age_s]


def wait_for_lock_queue(
    query: Query,
    statements: Sequence[str],
    version: PgVersion,
    settings: RuntimeSettings,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait (bounded, with backoff) while sessions are in the way of the locks ``statements``
    request; return the seconds waited.  Logs who is in the way; never cancels anyone."""
    if not settings.lock_guard:
        return 0.0
    wanted = requested_locks(statements, version)
    if not wanted:
        return 0.0
    min_age = duration_ms(settings.lock_guard_min_age) / 1000
    limit = duration_ms(settings.lock_guard_max_wait) / 1000
    waited, delay = 0.0, max(0.01, duration_ms(settings.lock_guard_poll_min) / 1000)
    longest = max(delay, duration_ms(settings.lock_guard_poll_max) / 1000)
    logged: set[int] = set()
    while True:
        blockers = find_blockers(query, wanted, min_age)
        if not blockers:
            if waited:
                log.info("helios: %s: the way is clear after %.1fs", what, waited)
            return waited
        for b in blockers:
            if b.pid not in logged:
                logged.add(b.pid)
                log.warning("helios: %s: waiting, not queueing behind: %s", what, b.describe())
        if waited >= limit:
            log.warning(
                "helios: %s: still in the way after %.0fs (lock_guard_max_wait); requesting the "
                "lock with lock_timeout", what, waited,
            )
            return waited
        step = min(delay, max(0.01, limit - waited))
        sleep(step)
        waited += step
        delay = min(longest, delay * 1.5)
