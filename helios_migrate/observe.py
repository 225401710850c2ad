"""Watch what one SQL statement really does on a live PostgreSQL server.

:func:`observe_statement` runs a statement on one connection and, from other connections, reads
the locks it holds (``pg_locks``), probes whether a concurrent read and a concurrent write of the
observed tables are blocked, and compares each relation's ``relfilenode`` before and after to tell
whether the table or its indexes were rewritten.  It is what ``helios-migrate verify`` and the
knowledge-base proof use to compare a prediction with reality.

Two modes:

* ``in_transaction=True`` (most DDL): connection A runs ``BEGIN; <sql>`` and keeps the transaction
  open; the locks it holds are read once, the read and write probes run against the held locks
  (each with ``lock_timeout`` so a blocked probe fails fast), then A commits.
* ``in_transaction=False`` (``CONCURRENTLY``, ``VACUUM``, ...): A runs the statement in autocommit
  on a worker thread while ``pg_locks`` is sampled every few milliseconds and the probes run in a
  loop; the strongest lock seen per relation and any probe that was seen waiting on A are kept.
  The statement must run long enough to be sampled: give it a table with some rows.

Only ever point this at a throwaway server: it executes the statement for real.  Every wait is
bounded (``connect_timeout``, ``statement_timeout``, ``lock_timeout``, thread joins).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pglast import split
from psycopg import sql as pgsql

from .locks import LockMode

__all__ = ["Observation", "ObserveError", "RelationState", "observe_statement", "split_statements"]

_CONNECT_TIMEOUT_S = 10
_SYSTEM_SCHEMAS = ("pg_catalog", "pg_toast", "information_schema")
_READABLE_KINDS = frozenset("rpmv")
_WRITABLE_KINDS = frozenset("rp")
_TABLE_KINDS = frozenset("rpmt")


class ObserveError(RuntimeError):
    """The observation itself could not be made (bad relation name, connection failure, ...)."""


@dataclass(frozen=True)
class RelationState:
    """One relation as seen in ``pg_class`` before or after the statement."""

    oid: int
    name: str
    schema: str
    kind: str
    """``pg_class.relkind``: ``r`` table, ``p`` partitioned table, ``i``/``I`` index, ``v`` view ..."""
    filenode: int | None
    """``pg_relation_filenode()``; ``None`` for relations without storage (partitioned tables, views)."""
    table: str | None = None
    """For an index, the name of the table it belongs to."""

    @property
    def is_index(self) -> bool:
        return self.kind in ("i", "I")


@dataclass(frozen=True)
class Observation:
    """What one statement did.  Relation names are unqualified ``pg_class.relname`` values."""

    sql: str
    in_transaction: bool
    locks: dict[str, LockMode]
    """Strongest table-level lock taken by the statement per relation (system catalogs excluded),
    keyed by the name the relation had when the lock was seen (a relation dropped by the statement
    keeps its name from before)."""
    object_locks: dict[str, LockMode]
    """Locks on types, e.g. ``{"type mood": LockMode.EXCLUSIVE}``."""
    read_blocked: bool
    """A concurrent ``SELECT`` on one of the observed tables had to wait for the statement."""
    write_blocked: bool
    """A concurrent ``UPDATE`` on one of the observed tables had to wait for the statement."""
    table_rewritten: bool
    """An observed table (not index) got a new ``relfilenode``."""
    rewritten_indexes: frozenset[str]
    """Indexes (of the observed tables, or observed themselves) that got a new ``relfilenode``."""
    duration_s: float
    error: str | None = None
    """``"<SQLSTATE>: <message>"`` when the statement failed; nothing else is then meaningful."""
    error_sqlstate: str | None = None
    rewritten_relations: frozenset[str] = frozenset()
    """Every observed relation with a new ``relfilenode`` (tables and indexes)."""
    dropped_relations: frozenset[str] = frozenset()
    reads_blocked_on: frozenset[str] = frozenset()
    writes_blocked_on: frozenset[str] = frozenset()
    samples: int = 0
    """How many times ``pg_locks`` was read while the statement ran."""
    waited_on: frozenset[str] = frozenset()
    """Relations whose lock the statement had to wait for (seen not yet granted)."""
    new_relation_locks: dict[str, LockMode] = field(default_factory=dict)
    """Locks on relations the statement created and nobody else can see yet (``"oid:<n>"``)."""
    before: tuple[RelationState, ...] = ()
    after: tuple[RelationState, ...] = ()
    probe_errors: tuple[str, ...] = field(default=())
    """Probes that failed for a reason other than waiting on the statement (for diagnosis)."""

    @property
    def indexes_rewritten(self) -> frozenset[str]:
        return self.rewritten_indexes

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def strongest(self) -> LockMode | None:
        return max(self.locks.values(), default=None)

    def lock_on(self, relation: str) -> LockMode | None:
        """The lock held on ``relation`` (``"items"`` or ``"public.items"``), if any."""
        return self.locks.get(relation.rpartition(".")[2])

    def summary(self) -> str:
        if self.error:
            return f"error {self.error}"
        locks = ", ".join(f"{k}={v.sql_name}" for k, v in sorted(self.locks.items())) or "none"
        objs = ", ".join(f"{k}={v.sql_name}" for k, v in sorted(self.object_locks.items()))
        parts = [
            f"locks: {locks}",
            *([f"object locks: {objs}"] if objs else []),
            f"read blocked: {self.read_blocked}",
            f"write blocked: {self.write_blocked}",
            f"table rewritten: {self.table_rewritten}",
            f"indexes rewritten: {sorted(self.rewritten_indexes) or 'none'}",
            f"{self.duration_s * 1000:.0f} ms",
        ]
        if not self.in_transaction:
            parts.append(f"{self.samples} lock samples")
        return "; ".join(parts)


# --- SQL helpers ------------------------------------------------------------------------------


def split_statements(sql: str) -> list[str]:
    """Split a script into statements with PostgreSQL's own grammar (pglast)."""
    try:
        return [s for s in split(sql) if s.strip()]
    except Exception:  # not parseable: let the server report the error
        return [sql]


def _connect(dsn: str, *, application_name: str) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=_CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise ObserveError(f"cannot connect for observation: {exc}") from exc
    return conn


def _set(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _error_text(exc: psycopg.Error) -> tuple[str, str | None]:
    state = exc.sqlstate
    msg = (exc.diag.message_primary or str(exc)).strip()
    return (f"{state}: {msg}" if state else msg), state


_STATE_SQL = """
SELECT c.oid::bigint, c.relname, n.nspname, c.relkind::text, pg_relation_filenode(c.oid)::bigint,
       t.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE c.oid = ANY(%(oids)s::oid[])
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%(oids)s::oid[]))
"""


def _row_state(row: Sequence[Any]) -> RelationState:
    return RelationState(
        oid=int(row[0]),
        name=str(row[1]),
        schema=str(row[2]),
        kind=str(row[3]),
        filenode=None if row[4] is None else int(row[4]),
        table=None if row[5] is None else str(row[5]),
    )


def _resolve(conn: psycopg.Connection[Any], relations: Sequence[str]) -> list[int]:
    oids: list[int] = []
    for rel in relations:
        row = conn.execute("SELECT to_regclass(%s)::oid::bigint", (rel,)).fetchone()
        if row is None or row[0] is None:
            raise ObserveError(f"relation {rel!r} does not exist")
        oids.append(int(row[0]))
    return oids


def _states(conn: psycopg.Connection[Any], oids: Sequence[int]) -> dict[int, RelationState]:
    rows = conn.execute(_STATE_SQL, {"oids": list(oids)}).fetchall()
    return {int(r[0]): _row_state(r) for r in rows}


def _state_by_name(conn: psycopg.Connection[Any], schema: str, name: str) -> RelationState | None:
    row = conn.execute(
        "SELECT c.oid::bigint, c.relname, n.nspname, c.relkind::text, "
        "pg_relation_filenode(c.oid)::bigint, NULL::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    return None if row is None else _row_state(row)


def _write_column(conn: psycopg.Connection[Any], oid: int) -> str | None:
    """A column a probe can set to itself: not generated, not GENERATED ALWAYS AS IDENTITY."""
    row = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum LIMIT 1",
        (oid,),
    ).fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class _Probe:
    relation: str
    statement: pgsql.Composed


def _probes(
    conn: psycopg.Connection[Any], oids: Sequence[int], states: Mapping[int, RelationState]
) -> tuple[list[_Probe], list[_Probe]]:
    reads: list[_Probe] = []
    writes: list[_Probe] = []
    for oid in oids:
        st = states.get(oid)
        if st is None:
            continue
        ident = pgsql.Identifier(st.schema, st.name)
        if st.kind in _READABLE_KINDS:
            reads.append(_Probe(st.name, pgsql.SQL("SELECT 1 FROM {} LIMIT 1").format(ident)))
        if st.kind in _WRITABLE_KINDS:
            col = _write_column(conn, oid)
            if col is None:
                stmt = pgsql.SQL("DELETE FROM {} WHERE false").format(ident)
            else:
                c = pgsql.Identifier(col)
                stmt = pgsql.SQL(
                    "UPDATE {t} SET {c} = {c} WHERE ctid = (SELECT ctid FROM {t} LIMIT 1)"
                ).format(t=ident, c=c)
            writes.append(_Probe(st.name, stmt))
    return reads, writes


_LOCKS_SQL = """
SELECT l.locktype, l.relation::bigint, c.relname, l.mode, ty.typname, l.granted
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_type ty ON l.locktype = 'object' AND l.classid = 'pg_type'::regclass AND ty.oid = l.objid
WHERE l.pid = %(pid)s
  AND (l.locktype = 'relation' OR ty.typname IS NOT NULL)
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (n.nspname IS NULL OR n.nspname <> ALL(%(system)s))
  AND (l.locktype <> 'relation' OR l.relation >= 16384)
"""


class _LockLog:
    """Strongest lock per relation name over every read of ``pg_locks``.

    A lock the statement is still waiting for counts as taken: it will hold it once granted.
    Relations nobody else can see yet (created by the statement, e.g. the new heap of a rewrite)
    are kept apart in ``unnamed``.
    """

    def __init__(self, names: Mapping[int, str]) -> None:
        self._names = dict(names)
        self.locks: dict[str, LockMode] = {}
        self.objects: dict[str, LockMode] = {}
        self.unnamed: dict[str, LockMode] = {}
        self.waited: set[str] = set()

    def _keep(self, into: dict[str, LockMode], key: str, mode_text: str) -> None:
        try:
            mode = LockMode.from_pg_locks(mode_text)
        except ValueError:
            return
        if key not in into or mode > into[key]:
            into[key] = mode

    def read(self, conn: psycopg.Connection[Any], pid: int) -> None:
        rows = conn.execute(_LOCKS_SQL, {"pid": pid, "system": list(_SYSTEM_SCHEMAS)}).fetchall()
        for locktype, rel_oid, relname, mode, typname, granted in rows:
            if locktype == "relation":
                oid = int(rel_oid)
                # The name the relation has when the lock is seen: REINDEX CONCURRENTLY renames
                # the old index to <name>_ccold before it takes ACCESS EXCLUSIVE on it to drop it,
                # and that lock is not a lock on the index now called <name>.
                if relname is not None:
                    self._names[oid] = str(relname)
                name = self._names.get(oid)
                if name is None:
                    self._keep(self.unnamed, f"oid:{oid}", str(mode))
                    continue
                self._keep(self.locks, name, str(mode))
                if not granted:
                    self.waited.add(name)
            else:
                self._keep(self.objects, f"type {typname}", str(mode))


def _blocked_by(conn: psycopg.Connection[Any], pid: int, probe_pids: Sequence[int]) -> list[bool]:
    if not probe_pids:
        return []
    row = conn.execute(
        "SELECT array_agg(%s = ANY(pg_blocking_pids(p)) ORDER BY ord) "
        "FROM unnest(%s::int[]) WITH ORDINALITY AS u(p, ord)",
        (pid, list(probe_pids)),
    ).fetchone()
    if row is None or row[0] is None:
        return [False] * len(probe_pids)
    return [bool(x) for x in row[0]]


class _ProbeRunner:
    """Runs read or write probes on its own connection; one probe at a time, each rolled back."""

    def __init__(self, dsn: str, probes: Sequence[_Probe], timeout_s: float, label: str) -> None:
        self.probes = list(probes)
        self.label = label
        self.conn = _connect(dsn, application_name=f"helios-observe-{label}")
        self.pid = self.conn.info.backend_pid
        _set(self.conn, "lock_timeout", _ms(timeout_s))
        _set(self.conn, "statement_timeout", _ms(timeout_s * 4 + 2))
        self.current: str | None = None
        self.blocked: set[str] = set()
        self.errors: list[str] = []
        self.runs = 0

    def run_once(self) -> None:
        for probe in self.probes:
            self.current = probe.relation
            try:
                with self.conn.transaction(force_rollback=True):
                    self.conn.execute(probe.statement)
            except psycopg.errors.LockNotAvailable:
                self.blocked.add(probe.relation)
            except psycopg.errors.QueryCanceled:
                self.blocked.add(probe.relation)
            except psycopg.Error as exc:
                msg, _ = _error_text(exc)
                if len(self.errors) < 10:
                    self.errors.append(f"{probe.relation}: {msg}")
            finally:
                self.current = None
        self.runs += 1

    def loop(self, done: threading.Event, min_pause_s: float) -> None:
        while not done.is_set():
            self.run_once()
            done.wait(min_pause_s)

    def close(self) -> None:
        self.conn.close()


def _runners(
    dsn: str, reads: Sequence[_Probe], writes: Sequence[_Probe], timeout_s: float
) -> list[_ProbeRunner]:
    runners: list[_ProbeRunner] = []
    try:
        for probes, label in ((reads, "read"), (writes, "write")):
            if probes:
                runners.append(_ProbeRunner(dsn, probes, timeout_s, label))
    except BaseException:
        for runner in runners:
            runner.close()
        raise
    return runners


def _note_blocked(conn: psycopg.Connection[Any], pid: int, runners: Sequence[_ProbeRunner]) -> None:
    """Mark the relation each probe is on as blocked when the probe waits for ``pid``."""
    currents = [r.current for r in runners]
    flags = _blocked_by(conn, pid, [r.pid for r in runners])
    for runner, current, flag in zip(runners, currents, flags, strict=True):
        if flag and current is not None and current == runner.current:
            runner.blocked.add(current)


def _collect(result: _RunResult, runners: Sequence[_ProbeRunner]) -> None:
    for runner in runners:
        target = result.reads_blocked if runner.label == "read" else result.writes_blocked
        target.update(runner.blocked)
        result.probe_errors.extend(runner.errors)


def _start(target: Callable[[], None], name: str) -> threading.Thread:
    th = threading.Thread(target=target, name=name, daemon=True)
    th.start()
    return th


# --- the observer -----------------------------------------------------------------------------


@contextlib.contextmanager
def _no_gc_pause() -> Iterator[None]:
    """No cyclic garbage collection while the statement is watched: a full collection in a process
    holding many objects stops every thread (the sampler and the probes) for hundreds of ms, and a
    statement that ran meanwhile would be seen taking no lock and blocking nobody."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def observe_statement(
    dsn: str,
    sql: str,
    *,
    relations: Sequence[str],
    in_transaction: bool = True,
    probe_timeout_s: float = 0.5,
    settings: Mapping[str, str] | None = None,
    sample_interval_s: float = 0.002,
    statement_timeout_s: float = 120.0,
    pause_at_end_s: float = 0.0,
) -> Observation:
    """Run ``sql`` on the server at ``dsn`` and observe its locks, blocking and rewrites.

    ``relations`` names the tables (and optionally indexes) to watch, as ``to_regclass`` accepts
    them; the indexes of every listed table are watched for rewrites too.  ``settings`` are applied
    to the statement's session first (e.g. ``{"TimeZone": "Europe/Paris"}``).  ``sql`` may hold
    several statements; they run one after the other (inside one transaction block when
    ``in_transaction``).

    ``pause_at_end_s`` (autocommit mode only, needs a superuser) makes each DDL command pause that
    long at its end, while it still holds its final locks, so that a short last phase -- the
    ACCESS EXCLUSIVE lock that ``DETACH PARTITION ... CONCURRENTLY`` takes on the partition in its
    second transaction -- is seen by the sampler.  It installs a ``ddl_command_end`` event trigger
    that only fires for the observed session and removes it afterwards.
    """
    statements = split_statements(sql)
    monitor = _connect(dsn, application_name="helios-observe-monitor")
    pause = None
    try:
        if pause_at_end_s > 0 and not in_transaction:
            pause = _install_pause(monitor)
            settings = {**(settings or {}), _PAUSE_SETTING: str(pause_at_end_s)}
        oids = _resolve(monitor, relations)
        before = _states(monitor, oids)
        reads, writes = _probes(monitor, oids, before)
        names = {oid: st.name for oid, st in before.items()}
        runner = _run_in_transaction if in_transaction else _run_autocommit
        with _no_gc_pause():
            result = runner(
                dsn,
                statements,
                monitor=monitor,
                names=names,
                reads=reads,
                writes=writes,
                probe_timeout_s=probe_timeout_s,
                settings=settings or {},
                sample_interval_s=sample_interval_s,
                statement_timeout_s=statement_timeout_s,
            )
        after = _states(monitor, list(before))
        rewritten, dropped = _compare(monitor, set(oids), before, after)
    finally:
        try:
            if pause is not None:
                _remove_pause(monitor, pause)
        finally:
            monitor.close()

    watched_tables = {
        before[o].name for o in oids if o in before and before[o].kind in _TABLE_KINDS
    }
    return Observation(
        sql=sql,
        in_transaction=in_transaction,
        locks=result.log.locks,
        object_locks=result.log.objects,
        read_blocked=bool(result.reads_blocked),
        write_blocked=bool(result.writes_blocked),
        table_rewritten=bool(rewritten & watched_tables),
        rewritten_indexes=frozenset(
            st.name for st in before.values() if st.is_index and st.name in rewritten
        ),
        duration_s=result.duration_s,
        error=result.error,
        error_sqlstate=result.error_sqlstate,
        rewritten_relations=frozenset(rewritten),
        dropped_relations=frozenset(dropped),
        reads_blocked_on=frozenset(result.reads_blocked),
        writes_blocked_on=frozenset(result.writes_blocked),
        samples=result.samples,
        waited_on=frozenset(result.log.waited),
        new_relation_locks=result.log.unnamed,
        before=tuple(sorted(before.values(), key=lambda s: s.oid)),
        after=tuple(sorted(after.values(), key=lambda s: s.oid)),
        probe_errors=tuple(result.probe_errors),
    )


_PAUSE_SETTING = "helios_observe.pause_s"


def _install_pause(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if row is None or not row[0]:
        raise ObserveError("pause_at_end_s needs a superuser (it installs an event trigger)")
    name = f"helios_observe_pause_{conn.info.backend_pid}"
    fn = pgsql.Identifier("public", name)
    conn.execute(
        pgsql.SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS event_trigger LANGUAGE plpgsql AS $f$ "
            "BEGIN PERFORM pg_sleep(coalesce(nullif(current_setting({}, true), ''), '0')::float8); "
            "END $f$"
        ).format(fn, pgsql.Literal(_PAUSE_SETTING))
    )
    conn.execute(
        pgsql.SQL("CREATE EVENT TRIGGER {} ON ddl_command_end EXECUTE FUNCTION {}()").format(
            pgsql.Identifier(name), fn
        )
    )
    return name


def _remove_pause(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(pgsql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(pgsql.Identifier(name)))
    conn.execute(pgsql.SQL("DROP FUNCTION IF EXISTS {}()").format(pgsql.Identifier("public", name)))


def _compare(
    conn: psycopg.Connection[Any],
    listed: set[int],
    before: Mapping[int, RelationState],
    after: Mapping[int, RelationState],
) -> tuple[set[str], set[str]]:
    rewritten: set[str] = set()
    dropped: set[str] = set()
    for oid, old in before.items():
        new = after.get(oid)
        if new is None and old.is_index:
            # REINDEX CONCURRENTLY builds a new index and gives it the old name.
            new = _state_by_name(conn, old.schema, old.name)
        if new is None:
            dropped.add(old.name)
            continue
        if old.filenode is not None and new.filenode is not None and old.filenode != new.filenode:
            rewritten.add(old.name)
    return rewritten, dropped


@dataclass
class _RunResult:
    log: _LockLog
    duration_s: float = 0.0
    error: str | None = None
    error_sqlstate: str | None = None
    reads_blocked: set[str] = field(default_factory=set)
    writes_blocked: set[str] = field(default_factory=set)
    samples: int = 0
    probe_errors: list[str] = field(default_factory=list)


def _statement_conn(
    dsn: str, settings: Mapping[str, str], statement_timeout_s: float
) -> psycopg.Connection[Any]:
    conn = _connect(dsn, application_name="helios-observe-statement")
    _set(conn, "statement_timeout", _ms(statement_timeout_s))
    for name, value in settings.items():
        _set(conn, name, value)
    return conn


def _run_in_transaction(
    dsn: str,
    statements: Sequence[str],
    *,
    monitor: psycopg.Connection[Any],
    names: Mapping[int, str],
    reads: Sequence[_Probe],
    writes: Sequence[_Probe],
    probe_timeout_s: float,
    settings: Mapping[str, str],
    sample_interval_s: float,
    statement_timeout_s: float,
) -> _RunResult:
    result = _RunResult(_LockLog(names))
    conn = _statement_conn(dsn, settings, statement_timeout_s)
    try:
        pid = conn.info.backend_pid
        conn.execute("BEGIN")
        start = time.monotonic()
        try:
            for stmt in statements:
                conn.execute(stmt)
        except psycopg.Error as exc:
            result.duration_s = time.monotonic() - start
            result.error, result.error_sqlstate = _error_text(exc)
            conn.execute("ROLLBACK")
            return result
        result.duration_s = time.monotonic() - start

        result.log.read(monitor, pid)
        result.samples = 1
        runners = _runners(dsn, reads, writes, probe_timeout_s)
        try:
            threads = [_start(r.run_once, f"observe-probe-{r.label}") for r in runners]
            deadline = time.monotonic() + (probe_timeout_s * 4 + 2) * (len(reads) + len(writes)) + 5
            # While the probes wait, confirm that it is this statement they are waiting for.
            while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
                _note_blocked(monitor, pid, runners)
                time.sleep(max(sample_interval_s, 0.005))
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            if any(t.is_alive() for t in threads):
                raise ObserveError("a concurrent probe did not finish in time")
        finally:
            for runner in runners:
                runner.close()
        _collect(result, runners)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return result


def _run_autocommit(
    dsn: str,
    statements: Sequence[str],
    *,
    monitor: psycopg.Connection[Any],
    names: Mapping[int, str],
    reads: Sequence[_Probe],
    writes: Sequence[_Probe],
    probe_timeout_s: float,
    settings: Mapping[str, str],
    sample_interval_s: float,
    statement_timeout_s: float,
) -> _RunResult:
    result = _RunResult(_LockLog(names))
    conn = _statement_conn(dsn, settings, statement_timeout_s)
    done = threading.Event()
    failure: list[psycopg.Error] = []
    timing: list[float] = []

    def work() -> None:
        start = time.monotonic()
        try:
            for stmt in statements:
                conn.execute(stmt)
        except psycopg.Error as exc:
            failure.append(exc)
        finally:
            timing.append(time.monotonic() - start)
            done.set()

    runners = _runners(dsn, reads, writes, probe_timeout_s)
    try:
        pid = conn.info.backend_pid
        worker = _start(work, "observe-statement")
        probe_threads = [
            _start(functools.partial(r.loop, done, sample_interval_s), f"observe-probe-{r.label}")
            for r in runners
        ]
        deadline = time.monotonic() + statement_timeout_s + 10
        while not done.is_set() and time.monotonic() < deadline:
            result.log.read(monitor, pid)
            _note_blocked(monitor, pid, runners)
            result.samples += 1
            done.wait(sample_interval_s)
        done.set()
        worker.join(timeout=max(1.0, deadline - time.monotonic()))
        probe_deadline = time.monotonic() + probe_timeout_s * 4 + 5
        for th in probe_threads:
            th.join(timeout=max(0.0, probe_deadline - time.monotonic()))
        if worker.is_alive() or any(th.is_alive() for th in probe_threads):
            raise ObserveError("the observed statement or a probe did not finish in time")
    finally:
        for runner in runners:
            runner.close()
        conn.close()
    result.duration_s = timing[0] if timing else 0.0
    if failure:
        result.error, result.error_sqlstate = _error_text(failure[0])
    _collect(result, runners)
    return result
