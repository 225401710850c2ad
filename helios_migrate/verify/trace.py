"""Statement-level tracing of a migration running through SQLAlchemy.

:class:`Tracer` hooks SQLAlchemy's ``before_cursor_execute`` / ``after_cursor_execute`` on every
engine (``env.py`` creates its own), so every statement a revision executes -- through ``op.*``,
``op.execute``, ``op.get_bind()``, inside or outside ``autocommit_block()`` -- is seen with its
duration and the rows it touched.  Around each statement, on the migration's own connection:

* the lock knowledge base's prediction is made (:func:`helios_migrate.knowledge.effect_of` with a
  :class:`~helios_migrate.catalog.LiveCatalog` that sees the migration's uncommitted changes, read in
  a savepoint so nothing it does can disturb the migration);
* every application relation's ``relfilenode`` is read before and after.  This has to happen on the
  migration connection: a second connection does not see the new ``relfilenode`` of a table
  rewritten by a transaction that has not committed yet.

From a second connection, a sampler thread reads ``pg_locks`` every few milliseconds for every
backend of the scratch database except our own and the load's (so statements that runtime helpers
run on connections of their own are seen too).  Each lock is an *episode* ``(pid, relation, mode)``
from the first sample that saw it to the last; an episode belongs to the statement that was executing
when it was first seen.  At the end of each statement the locks are read once more, synchronously,
so a lock a statement takes inside the migration transaction is always attributed to it, however
short the statement was.

``CREATE INDEX CONCURRENTLY`` and ``REINDEX ... CONCURRENTLY`` on synthetic tables run in a few
milliseconds and release their lock when they return, so on a busy machine the sampler can miss them
entirely.  Both wait, lock held, for every transaction whose snapshot is older than theirs, as they
would on any production server: just before such a statement the tracer opens a *witness*, a
``REPEATABLE READ`` transaction holding a snapshot and no lock, and ends it as soon as the sampler has
seen the statement's lock on its table.  The server itself ends the witness after a bound
(``idle_in_transaction_session_timeout``: at most 300 ms, and under half the statement's own
``lock_timeout``), so the statement is never made to time out by it.

The tracer refuses to let a statement run on any database other than the scratch database it was
given: an ``env.py`` that ignores ``sqlalchemy.url`` is stopped before it changes anything.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .. import knowledge
from ..catalog import LiveCatalog
from ..changes import CreateIndex, Reindex
from ..effects import Effect
from ..locks import LockMode
from ..sql_parse import SqlSyntaxError, changes_from_sql
from ..versions import PgVersion

TRACER_APPLICATION_NAME = "helios-verify"
_IGNORED_APPLICATIONS = ("helios-verify%", "helios-workload%")
_IGNORED_RELATIONS = frozenset({"alembic_version"})
_SYSTEM_SCHEMAS = ("pg_catalog", "pg_toast", "information_schema")

_LOCKS_SQL = """
SELECT l.pid, l.relation::bigint, c.relname, c.relkind::text, l.mode, l.granted, t.relname
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE l.locktype = 'relation'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation >= 16384
  AND n.nspname <> ALL(%(system)s) AND n.nspname NOT LIKE 'pg_temp%%'
  AND n.nspname <> 'helios_verify'
  AND l.pid <> pg_backend_pid()
  AND (l.pid = ANY(%(pids)s) OR l.pid IN (
        SELECT a.pid FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.backend_type = 'client backend'
          AND NOT (coalesce(a.application_name, '') LIKE ANY(%(ignored)s))
          AND NOT (a.pid = ANY(%(excluded)s))))
"""

_WITNESS_MAX_S = 0.3
_TABLE_KINDS = frozenset("rpm")

_FILENODES_SQL = """
SELECT c.oid::bigint, c.relname, c.relkind::text, pg_relation_filenode(c.oid)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'i', 'I', 'p')
  AND n.nspname <> ALL(%(system)s) AND n.nspname NOT LIKE 'pg_temp%%'
"""


@dataclass
class HeldLock:
    """One lock a statement took: the strongest mode on one relation, and how long it was held."""

    relation: str
    mode: LockMode
    kind: str
    """``pg_class.relkind`` of the relation (``r`` table, ``i`` index, ...)."""
    table: str | None
    """For an index, its table."""
    first_seen: float
    last_seen: float
    waited: bool = False
    """Seen not granted: the statement had to wait for it."""

    @property
    def held_s(self) -> float:
        return max(0.0, self.last_seen - self.first_seen)


@dataclass
class TracedStatement:
    """One statement a revision executed, with what was predicted and what was observed."""

    index: int
    sql: str
    revision: str
    phase: str
    """``upgrade`` or ``downgrade``."""
    started: float = 0.0
    ended: float = 0.0
    rowcount: int | None = None
    error: str | None = None
    effects: list[Effect] = field(default_factory=list)
    prediction_error: str | None = None
    locks: dict[str, HeldLock] = field(default_factory=dict)
    rewritten: list[str] = field(default_factory=list)
    """Existing tables and indexes that got a new ``relfilenode``."""
    rewritten_kinds: dict[str, str] = field(default_factory=dict)
    in_transaction: bool = True
    already_held: dict[str, LockMode] = field(default_factory=dict)
    """Locks the migration's session already held when the statement began (taken by earlier
    statements of the same transaction): the statement needed no new lock on those relations."""
    write_stall_s: float | None = None
    read_stall_s: float | None = None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def relevant(self) -> bool:
        """Does it touch the application schema (not only Alembic's bookkeeping or catalog reads)?"""
        if self.locks or self.rewritten or self.error:
            return True
        for eff in self.effects:
            if eff.locks and all(lk.relation.name in _IGNORED_RELATIONS for lk in eff.locks):
                continue
            kind = eff.change.kind
            if kind in ("raw_statement", "set_setting", "transaction_control"):
                continue
            return True
        return False


SETTLE_SCHEMA = "helios_verify"


def install_settle(conn: psycopg.Connection[Any], seconds: float) -> bool:
    """Make every DDL command of the migration pause ``seconds`` at its end, locks still held.

    A fast statement outside a transaction block (``DROP INDEX CONCURRENTLY`` on a small table)
    would otherwise release its last locks before the sampler sees them.  A ``ddl_command_end``
    event trigger that sleeps for sessions other than ours; needs a superuser (returns False
    without one; the sampler alone is then used).
    """
    if seconds <= 0:
        return False
    try:
        with conn.transaction():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SETTLE_SCHEMA}")
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {SETTLE_SCHEMA}.settle() RETURNS event_trigger "
                "LANGUAGE plpgsql AS $f$ BEGIN "
                "IF coalesce(current_setting('application_name', true), '') NOT LIKE 'helios-%' THEN "
                f"PERFORM pg_sleep({float(seconds)!r}); END IF; END $f$"
            )
            conn.execute(f"DROP EVENT TRIGGER IF EXISTS {SETTLE_SCHEMA}_settle")
            conn.execute(
                f"CREATE EVENT TRIGGER {SETTLE_SCHEMA}_settle ON ddl_command_end "
                f"EXECUTE FUNCTION {SETTLE_SCHEMA}.settle()"
            )
    except psycopg.Error:
        return False
    return True


def remove_settle(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute(f"DROP EVENT TRIGGER IF EXISTS {SETTLE_SCHEMA}_settle")
        conn.execute(f"DROP SCHEMA IF EXISTS {SETTLE_SCHEMA} CASCADE")
    except psycopg.Error:
        pass


class ScratchDatabaseMismatch(RuntimeError):
    """A migration tried to run a statement on a database other than the scratch database."""


@dataclass
class _Episode:
    statement: int | None
    relation: str
    kind: str
    table: str | None
    mode: LockMode
    first: float
    last: float
    waited: bool


def _waits_for_old_snapshots(traced: TracedStatement) -> bool:
    """A concurrent index build or reindex: it waits for every older snapshot, lock held."""
    return any(
        isinstance(e.change, CreateIndex | Reindex) and e.change.concurrently for e in traced.effects
    )


def _placeholders_free(conn: Any, statement: str, parameters: Any) -> str:
    """The statement as the server will see it, for parsing (parameters inlined)."""
    if not parameters:
        return statement
    try:
        return psycopg.ClientCursor(conn).mogrify(statement, parameters)
    except Exception:
        return re.sub(r"%\(\w+\)s|%s", "NULL", statement)


class Tracer:
    """Traces every statement executed through SQLAlchemy while :meth:`tracing` is active."""

    def __init__(
        self,
        dsn: str,
        version: PgVersion,
        *,
        sample_interval_s: float = 0.003,
        excluded_pids: Sequence[int] = (),
    ) -> None:
        self.dsn = dsn
        self.version = version
        self.sample_interval_s = sample_interval_s
        self.statements: list[TracedStatement] = []
        self.excluded_pids: set[int] = set(excluded_pids)
        self._pids: set[int] = set()
        self._current: int | None = None
        self._revision = ""
        self._phase = ""
        self._episodes: dict[tuple[int, int, LockMode], _Episode] = {}
        self._closed: list[_Episode] = []
        self._monitor_lock = threading.Lock()
        self._monitor: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._filenodes: dict[int, tuple[str, str, int | None]] = {}
        self._target: tuple[str, str, str] | None = None
        self._fast = False
        self._witness: psycopg.Connection[Any] | None = None
        self._witnessed_pid: int | None = None
        self.sampler_errors: list[str] = []
        self.samples = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._monitor = psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=10,
            application_name=f"{TRACER_APPLICATION_NAME}-sampler",
        )
        info = self._monitor.info
        self._target = (info.dbname, info.host, str(info.port))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="helios-verify-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        if self._monitor is not None:
            with self._monitor_lock:
                with suppress(psycopg.Error):
                    self._sample(final=True)
                self._monitor.close()
            self._monitor = None
        self._finish_episodes()

    @contextmanager
    def tracing(self, revision: str, phase: str) -> Iterator[None]:
        """Trace the statements executed inside the block as ``revision``'s ``phase``."""
        self._revision, self._phase = revision, phase
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        event.listen(Engine, "handle_error", self._error)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self._before)
            event.remove(Engine, "after_cursor_execute", self._after)
            event.remove(Engine, "handle_error", self._error)
            if self._current is not None:
                self._end_statement(None)
            # Locks held until the migration's final commit are seen released here.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and any(
                e.statement is not None for e in self._episodes.values()
            ):
                time.sleep(self.sample_interval_s)
            self._finish_episodes()

    # -- SQLAlchemy hooks -------------------------------------------------------------------------

    def _check_target(self, dbapi_conn: Any) -> None:
        info = getattr(dbapi_conn, "info", None)
        if info is None or not hasattr(info, "dbname") or not hasattr(info, "backend_pid"):
            raise ScratchDatabaseMismatch(
                f"the migration uses the {type(dbapi_conn).__module__} driver, whose connection "
                "cannot be traced: env.py must use the URL from sqlalchemy.url as given "
                "(postgresql+psycopg)"
            )
        target = (info.dbname, info.host, str(info.port))
        if self._target is not None and target != self._target:
            raise ScratchDatabaseMismatch(
                f"the migration connected to database {info.dbname!r} on {info.host}:{info.port}, "
                f"not to the scratch database {self._target[0]!r}: env.py must take its URL from "
                "sqlalchemy.url (or config.attributes['connection'])"
            )

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        dbapi_conn = cursor.connection
        self._check_target(dbapi_conn)
        pid = int(dbapi_conn.info.backend_pid)
        self._pids.add(pid)
        sql = _placeholders_free(dbapi_conn, statement, parameters)
        index = len(self.statements)
        traced = TracedStatement(index, sql, self._revision, self._phase)
        traced.in_transaction = not dbapi_conn.autocommit
        self._predict(dbapi_conn, traced)
        self._filenodes = self._read_filenodes(dbapi_conn)
        with self._monitor_lock:
            for (ep_pid, _oid, mode), ep in self._episodes.items():
                if ep_pid == pid and ep.kind not in ("i", "I", "S"):
                    held = traced.already_held.get(ep.relation)
                    if held is None or mode > held:
                        traced.already_held[ep.relation] = mode
        if not traced.in_transaction and _waits_for_old_snapshots(traced):
            self._open_witness(dbapi_conn, pid)
        self.statements.append(traced)
        traced.started = time.monotonic()
        self._current = index
        # Outside a transaction block the statement's locks go with it: sample without pause.
        self._fast = not traced.in_transaction

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if self._current is None:
            return
        traced = self.statements[self._current]
        traced.ended = time.monotonic()
        try:
            rc = cursor.rowcount
            traced.rowcount = None if rc is None or rc < 0 else int(rc)
        except Exception:
            traced.rowcount = None
        after = self._read_filenodes(cursor.connection)
        for oid, (name, kind, node) in self._filenodes.items():
            new = after.get(oid)
            if new is None or name in _IGNORED_RELATIONS:
                continue
            if node is not None and new[2] is not None and node != new[2]:
                traced.rewritten.append(name)
                traced.rewritten_kinds[name] = kind
        self._end_statement(None)

    def _error(self, context: Any) -> None:
        if self._current is None:
            return
        traced = self.statements[self._current]
        traced.ended = time.monotonic()
        exc = getattr(context, "original_exception", None)
        traced.error = _error_text(exc)
        self._end_statement(traced.error)

    def _end_statement(self, error: str | None) -> None:
        with self._monitor_lock:
            if self._monitor is not None:
                try:
                    self._sample(final=False)
                except psycopg.Error as exc:
                    self._note(exc)
            self._current = None
            self._fast = False
            self._close_witness()

    # -- the witness transaction ------------------------------------------------------------------

    def _open_witness(self, dbapi_conn: Any, pid: int) -> None:
        """Hold a snapshot (and no lock) so the coming concurrent build waits where it is seen."""
        bound_s = _WITNESS_MAX_S
        try:
            row = dbapi_conn.execute(
                "SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'"
            ).fetchone()
        except psycopg.Error:
            return
        lock_timeout_ms = int(row[0]) if row else 0
        if lock_timeout_ms > 0:
            bound_s = min(bound_s, lock_timeout_ms / 1000 / 2)
        if bound_s < 0.005:
            return
        try:
            witness = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=10,
                application_name=f"{TRACER_APPLICATION_NAME}-witness",
            )
        except psycopg.Error as exc:
            self._note(exc)
            return
        try:
            witness.execute(
                f"SET idle_in_transaction_session_timeout = {max(1, int(bound_s * 1000))}"
            )
            witness.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            witness.execute("SELECT 1")  # takes the snapshot
        except psycopg.Error as exc:
            self._note(exc)
            witness.close()
            return
        with self._monitor_lock:
            self._witness, self._witnessed_pid = witness, pid

    def _close_witness(self) -> None:
        """Called with ``_monitor_lock`` held."""
        witness, self._witness, self._witnessed_pid = self._witness, None, None
        if witness is not None:
            witness.close()

    # -- prediction and relfilenodes --------------------------------------------------------------

    def _predict(self, dbapi_conn: Any, traced: TracedStatement) -> None:
        try:
            changes = changes_from_sql(traced.sql)
        except SqlSyntaxError as exc:
            traced.prediction_error = f"the statement does not parse: {exc.message}"
            return
        except Exception as exc:  # the parser's own limits
            traced.prediction_error = f"the statement could not be analysed: {exc}"
            return
        try:
            with dbapi_conn.transaction():  # a savepoint inside the migration's transaction
                catalog = LiveCatalog(dbapi_conn)
                traced.effects = [knowledge.effect_of(ch, self.version, catalog) for ch in changes]
        except Exception as exc:
            traced.effects = []
            traced.prediction_error = f"no prediction: {exc}"

    def _read_filenodes(self, dbapi_conn: Any) -> dict[int, tuple[str, str, int | None]]:
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute(_FILENODES_SQL, {"system": list(_SYSTEM_SCHEMAS)})
                rows = cur.fetchall()
        except Exception:
            return {}
        return {int(r[0]): (str(r[1]), str(r[2]), None if r[3] is None else int(r[3])) for r in rows}

    # -- the sampler ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._monitor_lock:
                if self._monitor is None:
                    return
                try:
                    self._sample(final=False)
                except psycopg.Error as exc:
                    self._note(exc)
                    if self._monitor.closed:
                        return
            if self._fast:
                time.sleep(0)  # let the migration's thread run; no pause between samples
            else:
                self._stop.wait(self.sample_interval_s)

    def _note(self, exc: BaseException) -> None:
        if len(self.sampler_errors) < 10:
            self.sampler_errors.append(str(exc).strip().splitlines()[0] if str(exc) else repr(exc))

    def _sample(self, *, final: bool) -> None:
        assert self._monitor is not None
        before = self._current
        rows = self._monitor.execute(
            _LOCKS_SQL,
            {
                "system": list(_SYSTEM_SCHEMAS),
                "pids": sorted(self._pids),
                "ignored": list(_IGNORED_APPLICATIONS),
                "excluded": sorted(self.excluded_pids),
            },
        ).fetchall()
        now = time.monotonic()
        # A statement that began or ended while the sample was read cannot be told apart from its
        # neighbour: open no new episode from such a sample.
        stable = before == self._current
        self.samples += 1
        seen: set[tuple[int, int, LockMode]] = set()
        for pid, rel, relname, relkind, mode_text, granted, table in rows:
            if relname in _IGNORED_RELATIONS or table in _IGNORED_RELATIONS:
                continue
            try:
                mode = LockMode.from_pg_locks(str(mode_text))
            except ValueError:
                continue
            key = (int(pid), int(rel), mode)
            seen.add(key)
            ep = self._episodes.get(key)
            if ep is not None:
                ep.last = now
                ep.waited = ep.waited or not granted
                continue
            if not stable:
                continue
            self._episodes[key] = _Episode(
                before, str(relname), str(relkind), None if table is None else str(table), mode,
                now, now, not granted,
            )
        if self._witness is not None and stable and any(
            pid == self._witnessed_pid and granted and str(relkind) in _TABLE_KINDS
            for pid, _rel, _name, relkind, _mode, granted, _table in rows
        ):
            self._close_witness()  # the statement's lock is on record: let it go on
        for key in [k for k in self._episodes if k not in seen]:
            self._closed.append(self._episodes.pop(key))
        if final:
            self._closed.extend(self._episodes.values())
            self._episodes.clear()

    def _finish_episodes(self) -> None:
        with self._monitor_lock:
            closed, self._closed = self._closed, []
        for ep in closed:
            self._attribute(ep)
        for ep in self._episodes.values():
            if ep.statement is not None and ep.statement < len(self.statements):
                self._attribute(ep)

    def _attribute(self, ep: _Episode) -> None:
        if ep.statement is None or ep.statement >= len(self.statements):
            return
        traced = self.statements[ep.statement]
        held = traced.locks.get(ep.relation)
        if held is None or ep.mode > held.mode:
            traced.locks[ep.relation] = HeldLock(
                ep.relation, ep.mode, ep.kind, ep.table, ep.first, ep.last, ep.waited
            )
        elif ep.mode == held.mode:
            held.first_seen = min(held.first_seen, ep.first)
            held.last_seen = max(held.last_seen, ep.last)
            held.waited = held.waited or ep.waited


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return "the statement failed"
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        msg = (exc.diag.message_primary or str(exc)).strip()
        return f"{state}: {msg}" if state else msg
    return f"{type(exc).__name__}: {exc}"
