"""A concurrent application-like load on a live table: writers and readers that time every operation.

Used by the test-suite, the demo, the benchmarks and ``helios-migrate verify --load`` to measure what
a migration does to the application: how long a write or a read had to wait while it ran.

    with Workload(url, "orders", writers=2, readers=1, max_duration_s=120) as load:
        t0 = time.monotonic()
        run_the_migration()
        t1 = time.monotonic()
        window = load.stalls_between(t0, t1)
    print(load.longest_write_stall_s, load.longest_read_stall_s, load.counts, load.errors)

What each thread does, in a loop, until :meth:`Workload.stop` (or the ``with`` block ends), the
duration limit or the operation limit:

* a **writer** runs, at random, a single-row ``INSERT`` (``insert_fraction`` of its operations, when
  the table allows inserts) or a single-row ``UPDATE ... SET col = col WHERE key = $1`` on a random key;
* a **reader** runs ``SELECT * FROM table WHERE key = $1`` on a random key.

Every operation is one statement on an autocommit connection, so it is its own short transaction and
no lock is held between operations. Each is timed on the client with :func:`time.monotonic`; that is
the clock of :attr:`OpRecord.start`/:attr:`OpRecord.end` and of :meth:`Workload.stalls_between`.

Defaults come from the catalog: the key is the table's single-column primary key; the updated column
is the first other column that is neither generated nor an identity column. The update writes each
value back unchanged (a real row version, triggers fire, no value is lost). The default ``INSERT``
copies an existing row -- ``INSERT INTO t (cols) SELECT cols FROM t WHERE key = $1`` -- so that NOT
NULL columns, foreign keys, CHECK constraints and enums are satisfied by construction; the key is left
to its default or identity (or given a fresh integer), and other columns under a unique index get a
random value. Pass ``insert_sql`` (one ``%s``-free statement) or ``update_sql`` (one ``%s`` for the key)
to use your own statements instead.

Errors do not stop the load: an operation that fails (a column dropped by the migration, a lock
timeout, a lost connection) is recorded with its error and the thread carries on -- re-reading the
catalog when the table's shape changed, reconnecting when the connection was lost. An operation still
waiting when the load stops is cancelled and recorded with the time it had waited: a write blocked
for the whole run shows up as a stall of the whole run, not as nothing.

Sessions are named ``application_name = 'helios-workload'`` so lock tracers can tell them apart.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import psycopg
from psycopg import sql

APPLICATION_NAME = "helios-workload"

OpKind = Literal["insert", "update", "select"]
WRITE_KINDS: frozenset[str] = frozenset({"insert", "update"})

_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
_MAX_SAMPLED_KEYS = 20_000
_REFRESH_INTERVAL_S = 0.2
_ERROR_BACKOFF_S = 0.02
_RECONNECT_BACKOFF_S = 0.2
# SQLSTATE classes after which the table's shape is read again (42: undefined column/table, wrong type;
# 0A000: "cached plan must not change result type").
_RESHAPE_SQLSTATES = ("42", "0A000")


def now() -> float:
    """The workload's clock (:func:`time.monotonic`): use it for the ``t0``/``t1`` of a window."""
    return time.monotonic()


@dataclass(frozen=True)
class OpRecord:
    """One timed operation. ``start``/``end`` are :func:`time.monotonic` seconds."""

    kind: OpKind
    start: float
    end: float
    error: str | None = None
    """``SQLSTATE ClassName: message`` (first line) when the operation failed."""
    cancelled: bool = False
    """True when the operation was still waiting when the load stopped and was cancelled."""

    @property
    def latency_s(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_write(self) -> bool:
        return self.kind in WRITE_KINDS


@dataclass(frozen=True)
class Stalls:
    """The longest wait of writes and of reads over a window, with what ran in it."""

    write_s: float
    read_s: float
    writes: int
    reads: int
    errors: int
    longest_write: OpRecord | None = None
    longest_read: OpRecord | None = None


@dataclass(frozen=True)
class TableShape:
    """What the load needs to know about the table; read from the catalog (or given)."""

    qualified: sql.Composable
    key_column: str
    key_is_integer: bool
    update_column: str | None
    copy_columns: tuple[str, ...]
    """Columns an INSERT copies from an existing row."""
    fresh_columns: tuple[tuple[str, str], ...] = ()
    """(column, SQL expression) pairs an INSERT gives fresh values (unique columns, a key without default)."""


@dataclass
class _Worker:
    role: Literal["writer", "reader"]
    index: int
    thread: threading.Thread | None = None
    conn: psycopg.Connection[Any] | None = None
    op_started: float | None = None
    op_kind: OpKind | None = None
    cancelling: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class WorkloadError(RuntimeError):
    """The load cannot start (no such table, no usable key, cannot connect)."""


class Workload:
    """Writers and readers on one table, timing every operation (see the module documentation).

    Parameters:
        dsn: libpq URL or conninfo of the database.
        table: table name; ``schema`` qualifies it (default ``public``).
        key_column: column to find rows by (default: the single-column primary key).
        update_column: column the UPDATE writes back (default: first non-key, non-generated,
            non-identity column); ``None`` with no such column means writers only insert.
        writers, readers: number of threads of each kind.
        insert_fraction: share of writer operations that are INSERTs (when inserts are possible).
        inserts: ``True``/``False`` to force; ``None`` (default): when ``insert_sql`` is given or the
            table has a row to copy when the load starts.
        insert_sql: an INSERT of your own (no parameters).
        update_sql: an UPDATE of your own with one ``%s`` placeholder for the key.
        select_sql: a SELECT of your own with one ``%s`` placeholder for the key.
        max_duration_s: the load stops by itself after this long (waiting operations are cancelled).
        max_ops: the load stops by itself after this many operations (all threads together).
        pause_s: sleep between two operations of one thread (0 = as fast as the server answers).
        stop_grace_s: on stop, how long a waiting operation may still finish before it is cancelled.
        seed: seed of the random key choice (for repeatable runs).
        connect_timeout_s: libpq connect timeout.
    """

    def __init__(
        self,
        dsn: str,
        table: str,
        *,
        schema: str = "public",
        key_column: str | None = None,
        update_column: str | None = None,
        writers: int = 2,
        readers: int = 1,
        insert_fraction: float = 0.5,
        inserts: bool | None = None,
        insert_sql: str | None = None,
        update_sql: str | None = None,
        select_sql: str | None = None,
        max_duration_s: float = 300.0,
        max_ops: int = 2_000_000,
        pause_s: float = 0.001,
        stop_grace_s: float = 0.2,
        seed: int | None = None,
        connect_timeout_s: int = 10,
    ) -> None:
        if writers < 0 or readers < 0 or writers + readers == 0:
            raise ValueError("a workload needs at least one writer or reader")
        if not 0.0 <= insert_fraction <= 1.0:
            raise ValueError("insert_fraction must be between 0 and 1")
        if max_duration_s <= 0 or max_ops <= 0:
            raise ValueError("max_duration_s and max_ops must be positive")
        self.dsn = dsn
        self.table = table
        self.schema = schema
        self.writers = writers
        self.readers = readers
        self.insert_fraction = insert_fraction
        self.max_duration_s = max_duration_s
        self.max_ops = max_ops
        self.pause_s = pause_s
        self.stop_grace_s = stop_grace_s
        self.connect_timeout_s = connect_timeout_s
        self._given_key = key_column
        self._given_update = update_column
        self._auto_update = update_column is None
        self._inserts_wanted = inserts
        self._insert_sql = insert_sql
        self._update_sql = update_sql
        self._select_sql = select_sql
        self._rng_seed = seed
        self._seed_rng = random.Random(seed)

        self._lock = threading.Lock()
        self._records: list[OpRecord] = []
        self._ops_started = 0
        self._stop = threading.Event()
        self._workers: list[_Worker] = []
        self._watchdog: threading.Thread | None = None
        self._shape: TableShape | None = None
        self._shape_read_at = 0.0
        self._inserts_enabled = False
        self._key_lo = 0
        self._key_hi = 0
        self._keys: list[Any] = []
        self._next_key: Iterator[int] = itertools.count(1)
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.stop_reason: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Workload:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Read the table's shape, connect every thread, and start the load."""
        if self.started_at is not None:
            raise RuntimeError("a Workload runs once; create a new one")
        try:
            with psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s
            ) as conn:
                self._shape = self._read_shape(conn)
                self._shape_read_at = now()
                self._read_keys(conn)
        except psycopg.Error as exc:
            raise WorkloadError(f"cannot start the load on {self.table}: {exc}") from exc
        if self._inserts_wanted is None:
            self._inserts_enabled = self._insert_sql is not None or self._has_rows()
        else:
            self._inserts_enabled = self._inserts_wanted
        if (
            self.writers
            and not self._inserts_enabled
            and self._update_sql is None
            and self._shape.update_column is None
        ):
            raise WorkloadError(
                f"{self.table}: no column to update and no inserts: give update_column, "
                "update_sql or insert_sql"
            )
        workers = [_Worker("writer", i) for i in range(self.writers)]
        workers += [_Worker("reader", i) for i in range(self.readers)]
        try:
            for worker in workers:
                worker.conn = self._connect()
        except psycopg.Error as exc:
            for worker in workers:
                if worker.conn is not None:
                    worker.conn.close()
            raise WorkloadError(f"cannot connect the load's sessions: {exc}") from exc
        self._workers = workers
        self.started_at = now()
        for worker in workers:
            rng = random.Random(self._seed_rng.random())
            worker.thread = threading.Thread(
                target=self._run_worker,
                args=(worker, rng),
                name=f"helios-workload-{worker.role}-{worker.index}",
                daemon=True,
            )
            worker.thread.start()
        self._watchdog = threading.Thread(
            target=self._watch, name="helios-workload-watchdog", daemon=True
        )
        self._watchdog.start()

    def stop(self) -> None:
        """Stop the load: let running operations finish for ``stop_grace_s``, cancel the rest."""
        if self.started_at is None or self.stopped_at is not None:
            return
        self._request_stop("stopped")
        if self._watchdog is not None:
            self._watchdog.join()
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(timeout=self.stop_grace_s + 10.0)
        for worker in self._workers:
            if worker.conn is not None:
                with contextlib.suppress(Exception):
                    worker.conn.close()
        self.stopped_at = now()

    @property
    def running(self) -> bool:
        return self.started_at is not None and not self._stop.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the load stops by itself (duration or operation limit); True if it did."""
        return self._stop.wait(timeout_s)

    def _request_stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self._stop.set()

    def _watch(self) -> None:
        assert self.started_at is not None
        if not self._stop.wait(self.max_duration_s):
            self._request_stop(f"max_duration_s={self.max_duration_s:g} reached")
        deadline = now() + self.stop_grace_s
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(timeout=max(0.0, deadline - now()))
        # Whatever is still waiting on the server now is cancelled (and recorded as cancelled).
        for _ in range(100):
            busy = [w for w in self._workers if w.thread is not None and w.thread.is_alive()]
            if not busy:
                return
            for worker in busy:
                self._cancel(worker)
            for worker in busy:
                if worker.thread is not None:
                    worker.thread.join(timeout=0.1)

    def _cancel(self, worker: _Worker) -> None:
        with worker.lock:
            if worker.conn is None or worker.op_started is None:
                return
            worker.cancelling = True
            conn = worker.conn
        with contextlib.suppress(Exception):
            conn.cancel_safe(timeout=2.0)

    # -- the table -------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=self.connect_timeout_s,
            application_name=APPLICATION_NAME,
        )
        # No server-side prepared statements: their cached plans break when a migration changes the
        # table's shape, which real applications mostly avoid too.
        conn.prepare_threshold = None
        return conn

    def _read_shape(self, conn: psycopg.Connection[Any], *, starting: bool = True) -> TableShape:
        qualified = sql.Identifier(self.schema, self.table)
        regclass = qualified.as_string(conn)
        row = conn.execute("SELECT to_regclass(%s)::oid", (regclass,)).fetchone()
        if row is None or row[0] is None:
            raise WorkloadError(f"no table {self.schema}.{self.table}")
        oid = row[0]
        columns = conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity, a.attgenerated,
                   a.atthasdef, t.typcategory, t.typname
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            (oid,),
        ).fetchall()
        pk = conn.execute(
            """
            SELECT array_agg(a.attname ORDER BY a.attnum)
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s AND i.indisprimary
            """,
            (oid,),
        ).fetchone()
        unique_rows = conn.execute(
            """
            SELECT DISTINCT a.attname
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s AND i.indisunique AND NOT i.indisprimary
            """,
            (oid,),
        ).fetchall()
        by_name = {c[0]: c for c in columns}
        key = self._given_key
        if key is None:
            pk_cols: list[str] = list(pk[0]) if pk is not None and pk[0] is not None else []
            if len(pk_cols) != 1:
                raise WorkloadError(
                    f"{self.schema}.{self.table} has no single-column primary key: give key_column"
                )
            key = pk_cols[0]
        if key not in by_name:
            raise WorkloadError(f"{self.schema}.{self.table} has no column {key!r}")
        key_type = str(by_name[key][1])
        unique = {str(r[0]) for r in unique_rows}

        def writable(col: tuple[Any, ...]) -> bool:
            return not col[2] and not col[3]  # neither identity nor generated

        update_column = self._given_update
        if self._auto_update:
            update_column = next(
                (str(c[0]) for c in columns if c[0] != key and writable(c) and c[0] not in unique),
                None,
            )
        elif update_column not in by_name and starting:
            # Once running, a given column that disappears keeps its updates failing (recorded).
            raise WorkloadError(f"{self.schema}.{self.table} has no column {update_column!r}")

        copy: list[str] = []
        fresh: list[tuple[str, str]] = []
        for col in columns:
            name, type_sql, identity, generated, has_default, category, _ = col
            if generated or identity == "a":
                continue
            if name == key:
                if has_default or identity:
                    continue
                if key_type in _INTEGER_TYPES:
                    fresh.append((name, "%s"))  # a fresh key from the client's counter
                else:
                    fresh.append((name, _random_value(category, type_sql) or "%s"))
                continue
            if name in unique:
                expr = _random_value(category, type_sql)
                if expr is not None:
                    fresh.append((name, expr))
                    continue
            if identity == "d":
                continue
            copy.append(name)
        return TableShape(
            qualified=qualified,
            key_column=key,
            key_is_integer=key_type in _INTEGER_TYPES,
            update_column=update_column,
            copy_columns=tuple(copy),
            fresh_columns=tuple(fresh),
        )

    def _read_keys(self, conn: psycopg.Connection[Any]) -> None:
        shape = self._shape
        assert shape is not None
        key = sql.Identifier(shape.key_column)
        if shape.key_is_integer:
            row = conn.execute(
                sql.SQL("SELECT min({k}), max({k}) FROM {t}").format(k=key, t=shape.qualified)
            ).fetchone()
            lo, hi = (row[0], row[1]) if row is not None else (None, None)
            self._key_lo = int(lo) if lo is not None else 0
            self._key_hi = int(hi) if hi is not None else -1
            # Fresh keys for tables whose key has no default: far above every existing key.
            self._next_key = itertools.count(max(self._key_hi, 0) + 1_000_000_000)
        else:
            rows = conn.execute(
                sql.SQL("SELECT {k} FROM {t} ORDER BY random() LIMIT {n}").format(
                    k=key, t=shape.qualified, n=sql.Literal(_MAX_SAMPLED_KEYS)
                )
            ).fetchall()
            self._keys = [r[0] for r in rows]

    def _has_rows(self) -> bool:
        shape = self._shape
        if shape is None:
            return False
        return bool(self._keys) if not shape.key_is_integer else self._key_hi >= self._key_lo

    def _maybe_refresh_shape(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if now() - self._shape_read_at < _REFRESH_INTERVAL_S:
                return
            self._shape_read_at = now()
        try:
            shape = self._read_shape(conn, starting=False)
        except (psycopg.Error, WorkloadError):
            return
        with self._lock:
            self._shape = shape

    def _random_key(self, rng: random.Random) -> Any:
        shape = self._shape
        assert shape is not None
        if shape.key_is_integer:
            with self._lock:
                lo, hi = self._key_lo, self._key_hi
            return rng.randint(lo, hi) if hi >= lo else lo
        with self._lock:
            return rng.choice(self._keys) if self._keys else None

    def _remember_key(self, key: Any) -> None:
        shape = self._shape
        if key is None or shape is None:
            return
        with self._lock:
            if shape.key_is_integer and isinstance(key, int):
                if key > self._key_hi and key < self._key_hi + 1_000_000:
                    self._key_hi = key
            elif not shape.key_is_integer:
                if len(self._keys) < _MAX_SAMPLED_KEYS:
                    self._keys.append(key)
                else:
                    self._keys[random.randrange(len(self._keys))] = key

    # -- statements ------------------------------------------------------------------------------

    def _statement(
        self, kind: OpKind, rng: random.Random
    ) -> tuple[sql.SQL | sql.Composed, tuple[Any, ...]]:
        shape = self._shape
        assert shape is not None
        key = sql.Identifier(shape.key_column)
        if kind == "select":
            if self._select_sql is not None:
                return sql.SQL(self._select_sql), (self._random_key(rng),)
            return (
                sql.SQL("SELECT * FROM {t} WHERE {k} = %s").format(t=shape.qualified, k=key),
                (self._random_key(rng),),
            )
        if kind == "update":
            if self._update_sql is not None:
                return sql.SQL(self._update_sql), (self._random_key(rng),)
            assert shape.update_column is not None
            col = sql.Identifier(shape.update_column)
            return (
                sql.SQL("UPDATE {t} SET {c} = {c} WHERE {k} = %s").format(
                    t=shape.qualified, c=col, k=key
                ),
                (self._random_key(rng),),
            )
        if self._insert_sql is not None:
            return sql.SQL(self._insert_sql), ()
        params: list[Any] = []
        targets = [sql.Identifier(c) for c in shape.copy_columns]
        values: list[sql.Composable] = [sql.Identifier(c) for c in shape.copy_columns]
        for name, expr in shape.fresh_columns:
            targets.append(sql.Identifier(name))
            if expr == "%s":
                params.append(next(self._next_key) if shape.key_is_integer else None)
                values.append(sql.Placeholder())
            else:
                values.append(sql.SQL(expr))
        params.append(self._random_key(rng))
        statement = sql.SQL(
            "INSERT INTO {t} ({targets}) SELECT {values} FROM {t} WHERE {k} = %s RETURNING {k}"
        ).format(
            t=shape.qualified,
            targets=sql.SQL(", ").join(targets),
            values=sql.SQL(", ").join(values),
            k=key,
        )
        return statement, tuple(params)

    def _writer_kind(self, rng: random.Random) -> OpKind:
        shape = self._shape
        can_update = self._update_sql is not None or (
            shape is not None and shape.update_column is not None
        )
        if self._inserts_enabled and (not can_update or rng.random() < self.insert_fraction):
            return "insert"
        return "update"

    # -- the loop --------------------------------------------------------------------------------

    def _run_worker(self, worker: _Worker, rng: random.Random) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._ops_started >= self.max_ops:
                    break
                self._ops_started += 1
            kind: OpKind = "select" if worker.role == "reader" else self._writer_kind(rng)
            if (worker.conn is None or worker.conn.closed) and not self._reconnect(worker):
                continue
            conn = worker.conn
            assert conn is not None
            statement, params = self._statement(kind, rng)
            error: str | None = None
            sqlstate = ""
            returned: Any = None
            with worker.lock:
                worker.op_started = now()
                worker.op_kind = kind
                worker.cancelling = False
            start = worker.op_started
            try:
                cur = conn.execute(statement, params)
                if kind == "insert" and cur.description is not None:
                    row = cur.fetchone()
                    returned = row[0] if row is not None else None
                elif kind == "select":
                    cur.fetchall()
            except psycopg.Error as exc:
                sqlstate = exc.sqlstate or ""
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                error = f"{sqlstate or '-----'} {type(exc).__name__}: {message}"
            end = now()
            with worker.lock:
                cancelled = worker.cancelling and sqlstate == "57014"
                worker.op_started = None
                worker.op_kind = None
                worker.cancelling = False
            self._record(OpRecord(kind, start, end, error, cancelled))
            if error is None:
                self._remember_key(returned)
            else:
                if conn.closed or conn.broken:
                    worker.conn = None
                elif sqlstate.startswith(_RESHAPE_SQLSTATES):
                    self._maybe_refresh_shape(conn)
                self._stop.wait(_ERROR_BACKOFF_S)
            if self.pause_s > 0:
                self._stop.wait(self.pause_s)
        with self._lock:
            if self._ops_started >= self.max_ops:
                self.stop_reason = self.stop_reason or f"max_ops={self.max_ops} reached"
                self._stop.set()

    def _reconnect(self, worker: _Worker) -> bool:
        start = now()
        try:
            conn = self._connect()
        except psycopg.Error as exc:
            self._record(
                OpRecord(
                    "select" if worker.role == "reader" else "update",
                    start,
                    now(),
                    f"{exc.sqlstate or '08000'} {type(exc).__name__}: "
                    f"reconnecting: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                )
            )
            self._stop.wait(_RECONNECT_BACKOFF_S)
            return False
        with worker.lock:
            worker.conn = conn
        return True

    def _record(self, record: OpRecord) -> None:
        with self._lock:
            self._records.append(record)

    # -- results ---------------------------------------------------------------------------------

    @property
    def records(self) -> list[OpRecord]:
        """Every operation so far (a copy), in the order they finished."""
        with self._lock:
            return list(self._records)

    def _in_flight(self) -> list[OpRecord]:
        """Operations waiting right now, as records ending now (they have waited at least that long)."""
        t = now()
        out: list[OpRecord] = []
        for worker in self._workers:
            with worker.lock:
                if worker.op_started is not None and worker.op_kind is not None:
                    out.append(OpRecord(worker.op_kind, worker.op_started, t))
        return out

    def _all(self) -> list[OpRecord]:
        return self.records + self._in_flight()

    @property
    def longest_write_stall_s(self) -> float:
        """The longest time one INSERT or UPDATE took (an operation still waiting counts until now)."""
        return max((r.latency_s for r in self._all() if r.is_write), default=0.0)

    @property
    def longest_read_stall_s(self) -> float:
        """The longest time one SELECT took (an operation still waiting counts until now)."""
        return max((r.latency_s for r in self._all() if not r.is_write), default=0.0)

    @property
    def counts(self) -> dict[str, int]:
        """Operations by kind (``insert``, ``update``, ``select``), plus ``errors`` and ``cancelled``."""
        records = self.records
        counts: Counter[str] = Counter(r.kind for r in records)
        result = {kind: counts.get(kind, 0) for kind in ("insert", "update", "select")}
        result["errors"] = sum(1 for r in records if r.error is not None and not r.cancelled)
        result["cancelled"] = sum(1 for r in records if r.cancelled)
        return result

    @property
    def errors(self) -> list[OpRecord]:
        """Failed operations (cancellations at stop excluded), in the order they finished."""
        return [r for r in self.records if r.error is not None and not r.cancelled]

    def error_summary(self) -> dict[str, int]:
        """How many times each distinct error happened."""
        return dict(Counter(str(r.error) for r in self.errors))

    def stalls_between(self, t0: float, t1: float) -> Stalls:
        """The longest write and read among operations that overlapped ``[t0, t1]`` (monotonic clock).

        An operation overlaps when it started before ``t1`` and ended after ``t0``; its whole latency
        counts, including any part outside the window. Operations still waiting count until now.
        """
        window = [r for r in self._all() if r.start <= t1 and r.end >= t0]
        writes = [r for r in window if r.is_write]
        reads = [r for r in window if not r.is_write]
        longest_write = max(writes, key=lambda r: r.latency_s, default=None)
        longest_read = max(reads, key=lambda r: r.latency_s, default=None)
        return Stalls(
            write_s=longest_write.latency_s if longest_write else 0.0,
            read_s=longest_read.latency_s if longest_read else 0.0,
            writes=len(writes),
            reads=len(reads),
            errors=sum(1 for r in window if r.error is not None and not r.cancelled),
            longest_write=longest_write,
            longest_read=longest_read,
        )

    def latency_percentile(self, q: float, *, writes: bool = True) -> float:
        """The ``q``-quantile (0..1) of write (or read) latencies, successful or not."""
        values = sorted(r.latency_s for r in self.records if r.is_write == writes)
        if not values:
            return 0.0
        index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return values[index]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary of the run."""
        end = self.stopped_at if self.stopped_at is not None else now()
        return {
            "table": f"{self.schema}.{self.table}",
            "writers": self.writers,
            "readers": self.readers,
            "duration_s": round(end - self.started_at, 3) if self.started_at is not None else 0.0,
            "counts": self.counts,
            "longest_write_stall_s": round(self.longest_write_stall_s, 4),
            "longest_read_stall_s": round(self.longest_read_stall_s, 4),
            "p50_write_s": round(self.latency_percentile(0.5), 5),
            "p99_write_s": round(self.latency_percentile(0.99), 5),
            "errors": self.error_summary(),
            "stop_reason": self.stop_reason,
        }

    def describe(self) -> str:
        """One line for people: ops, longest stalls and errors."""
        c = self.counts
        text = (
            f"{c['insert']} inserts, {c['update']} updates, {c['select']} reads; "
            f"longest write stall {self.longest_write_stall_s:.3f} s, "
            f"longest read stall {self.longest_read_stall_s:.3f} s"
        )
        if c["errors"]:
            text += f"; {c['errors']} errors"
        return text


def _random_value(category: str, type_sql: str) -> str | None:
    """A SQL expression giving a random value of a column's type, for unique columns; None if unknown."""
    if category == "S":
        return f"(md5(random()::text) || md5(clock_timestamp()::text))::{type_sql}"
    if type_sql in _INTEGER_TYPES:
        top = {"smallint": 32_000, "integer": 2_000_000_000}.get(type_sql, 9_000_000_000_000_000)
        return f"floor(random() * {top})::{type_sql}"
    if category == "N":
        return f"(random() * 1000000)::{type_sql}"
    if type_sql == "uuid":
        return "gen_random_uuid()"
    return None


def longest(records: Sequence[OpRecord], *, writes: bool = True) -> float:
    """The longest latency among ``records`` of one side (writes or reads)."""
    return max((r.latency_s for r in records if r.is_write == writes), default=0.0)
