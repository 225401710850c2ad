"""The small API that lock-safe revision files call; the rest of a revision is stock Alembic.

Every function takes Alembic's ``op`` and works both online and offline
(``alembic upgrade --sql``): offline it emits the equivalent SQL, with the transaction structure
(``COMMIT;`` / ``BEGIN;``) a reader and ``helios-migrate check`` can follow.

What they share:

* A step that takes a lock blocking reads or writes runs in a short transaction of its own, with
  ``SET LOCAL lock_timeout`` (and ``statement_timeout``): if the lock is not granted quickly the
  step gives up instead of queueing the application behind it, and is retried after a pause
  (SQLSTATE ``55P03`` lock_not_available, ``40P01`` deadlock_detected).
* The migration transaction is committed before such a step
  (``op.get_context().autocommit_block()``); Alembic stamps ``alembic_version`` only at the end,
  so every step is safe to run again: a re-run after an interrupted upgrade skips what is already
  done (``done_when``), drops the INVALID leftover of a failed ``CREATE INDEX CONCURRENTLY`` and
  backfills only rows still missing a value.
* A downgrade step that cannot be undone, or only by losing data, raises
  :class:`IrreversibleStep` naming the step, unless ``HELIOS_ALLOW_DATA_LOSS=1`` is set.

Example revision body::

    from helios_migrate import runtime

    def upgrade():
        runtime.run_in_own_transaction(op, ["ALTER TABLE items ADD COLUMN IF NOT EXISTS flag boolean"])
        runtime.backfill(op, "items", "flag", "false", batch_size=10000, pause_ms=50)
        runtime.create_index_concurrently(op, "items_flag_idx",
                                          "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_flag_idx ON items (flag)")
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast

import psycopg
import sqlalchemy as sa
from alembic.util import CommandError

from .changes import QualifiedName
from .config import ConfigError, load_config
from .facts import row_estimate_sql
from .lockguard import long_transactions_on, requested_locks, wait_for_lock_queue
from .plan import SyncTrigger
from .planner.triggers import drop_sync_trigger_statements, sync_trigger_statements
from .sqltext import (
    base_type,
    dollar_quote,
    duration_ms,
    quote_ident,
    quote_literal,
    quote_qualified,
    sql_comment,
)
from .throttle import BatchSizer, StopRequested, Throttle, ThrottleStop, stop_between_batches
from .versions import PgVersion

__all__ = [
    "ALLOW_DATA_LOSS_VAR",
    "IrreversibleStep",
    "Policy",
    "StepFailed",
    "add_constraint_if_missing",
    "backfill",
    "check_convertible",
    "confirm_data_loss",
    "create_index_concurrently",
    "data_losing_step",
    "drop_index_concurrently",
    "irreversible",
    "run_autocommit",
    "run_in_own_transaction",
    "table_argument",
]

log = logging.getLogger("alembic.helios.runtime")

ALLOW_DATA_LOSS_VAR = "HELIOS_ALLOW_DATA_LOSS"
"""Set to ``1`` to let a downgrade run steps that lose data (or skip those it cannot undo)."""

_RETRYABLE = {"55P03", "40P01"}  # lock_not_available, deadlock_detected


class IrreversibleStep(CommandError):
    """A downgrade reached a step that cannot be undone (or only by losing data)."""


class StepFailed(CommandError):
    """A step could not finish: its lock was not granted after every attempt, the data does not
    allow it (the message names the rows), or it failed and what it had done was undone."""


_DATA_PROBLEM_CLASSES = ("22", "23")
"""SQLSTATE classes of failures the data causes (conversion, NOT NULL, CHECK, FK, UNIQUE): the
step is undone (``undo_on_failure``) rather than retried."""


@dataclass(frozen=True)
class Policy:
    """How the steps of a revision wait for their locks, set once at the top of ``upgrade()`` and
    ``downgrade()`` and passed to each call as ``policy=policy``.

    A keyword given to a call next to ``policy`` wins over it (a ``VALIDATE`` scan runs with
    ``statement_timeout=None``); a call ignores what it has no use for (``run_autocommit`` has no
    ``statement_timeout``).  Revisions written before there was a policy pass the same keywords
    one by one, which keeps working.
    """

    lock_timeout: str | None = "2s"
    statement_timeout: str | None = None
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 10.0


_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


def _takes_policy(fn: _F) -> _F:
    """Let ``fn`` take ``policy=Policy(...)`` in place of its timeout and retry keywords."""
    accepted = {f.name for f in fields(Policy)} & set(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def with_policy(*args: Any, policy: Policy | None = None, **kwargs: Any) -> Any:
        if policy is not None:
            for name in accepted:
                kwargs.setdefault(name, getattr(policy, name))
        return fn(*args, **kwargs)

    return cast(_F, with_policy)


# --- helpers ------------------------------------------------------------------------------------


def _offline(op: Any) -> bool:
    return bool(op.get_context().as_sql)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return None if state is None else str(state)


_literal = quote_literal


def _qualified(name: str) -> str:
    """A table or index argument as SQL text: ``"items"``, ``"public.items"`` (each part a name,
    quoted as needed) or SQL text whose parts are already quoted (``'public."a.b"'``, see
    :func:`table_argument`), which is kept as written."""
    return ".".join(p if p.startswith('"') else quote_ident(p) for p in _split_dotted(name))


def _split_dotted(name: str) -> list[str]:
    return re.findall(r'"(?:[^"]|"")*"|[^.]+', name)


def table_argument(schema: str | None, name: str) -> str:
    """How a revision file names a table or an index to these functions: ``"orders"`` or
    ``"public.orders"`` when the parts hold no dot or double quote, else the quoted SQL name
    (``'"a.b"'``), which reads back unambiguously."""
    parts = [name] if schema is None else [schema, name]
    if any("." in p or '"' in p for p in parts):
        return quote_qualified(schema, name)
    return ".".join(parts)


def _scalar(op: Any, sql: str) -> Any:
    return op.get_bind().execute(sa.text(sql)).scalar()


def _rows(op: Any, sql: str) -> list[Any]:
    return list(op.get_bind().exec_driver_sql(sql).fetchall())


_SETTINGS: dict[str, Any] = {}


def settings() -> Any:
    """The :class:`~helios_migrate.config.RuntimeSettings` of the project alembic runs in (the
    ``pyproject.toml`` of the current directory or a parent), read once per directory."""
    here = os.getcwd()
    if here not in _SETTINGS:
        try:
            _SETTINGS[here] = load_config(start=here).runtime
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
    return _SETTINGS[here]


def _server_version(op: Any) -> Any:
    return PgVersion.parse(int(_scalar(op, "SELECT current_setting('server_version_num')::int")))


def _guard(op: Any, statements: Sequence[str], what: str) -> None:
    """Wait while another session is in the way of the locks ``statements`` request
    (:mod:`helios_migrate.lockguard`)."""
    config = settings()
    if not config.lock_guard:
        return
    wait_for_lock_queue(functools.partial(_rows, op), statements, _server_version(op), config, what)


def _exec(op: Any, sql: str) -> None:
    # Colons would read as bind parameters (``:name``) in a text() construct.
    op.execute(sa.text(sql.replace(":", r"\:")))


def _timeouts(lock_timeout: str | None, statement_timeout: str | None) -> list[str]:
    out = []
    if lock_timeout is not None:
        out.append(f"SET LOCAL lock_timeout = {_literal(lock_timeout)}")
    if statement_timeout is not None:
        out.append(f"SET LOCAL statement_timeout = {_literal(statement_timeout)}")
    return out


@contextmanager
def _outside_migration_transaction(op: Any) -> Iterator[None]:
    """Commit the migration transaction and run what follows in autocommit mode."""
    with op.get_context().autocommit_block():
        yield


def _retrying(
    op: Any,
    description: str,
    attempts: int,
    backoff: float,
    max_backoff: float,
    body: Any,
) -> None:
    delay = backoff
    for attempt in range(1, max(1, attempts) + 1):
        try:
            body()
            return
        except sa.exc.DBAPIError as exc:
            state = _sqlstate(exc)
            _rollback(op)
            if state not in _RETRYABLE:
                raise
            if attempt >= attempts:
                raise StepFailed(
                    f"{description}: the lock was not granted in {attempts} attempts "
                    f"(SQLSTATE {state}); a long transaction may hold it (see pg_stat_activity). "
                    "Run the upgrade again later: completed steps are skipped."
                ) from exc
            log.warning(
                "helios: %s: lock not granted (attempt %d of %d), retrying in %.1fs",
                description, attempt, attempts, delay,
            )
            time.sleep(delay)
            delay = min(max_backoff, delay * 2)


def _rollback(op: Any) -> None:
    with contextlib.suppress(sa.exc.DBAPIError):
        op.get_bind().exec_driver_sql("ROLLBACK")


def _server_in_transaction(op: Any) -> bool:
    """Whether the server holds a transaction open (or failed) on the migration's connection."""
    driver = op.get_bind().connection.dbapi_connection
    status = getattr(getattr(driver, "info", None), "transaction_status", None)
    return status is None or status != psycopg.pq.TransactionStatus.IDLE


@contextmanager
def _undone_on_data_problem(
    op: Any, what: str, statements: Sequence[str], description: str
) -> Iterator[None]:
    """Run the compensating ``statements`` when the data makes the body fail, then raise."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if statements and _is_data_problem(exc):
            _rollback(op)
            _undo_and_raise(op, what, exc, statements, description or "; ".join(statements))
        raise


def _undo_and_raise(
    op: Any, what: str, exc: BaseException, statements: Sequence[str], description: str
) -> None:
    """Run the compensating ``statements`` of a failed step (each in a short transaction with a
    lock timeout, retried), then raise :class:`StepFailed` saying what failed and what was undone."""
    reason = _first_line(exc)
    config = settings()
    undone = []
    for sql in statements:
        try:
            # CONCURRENTLY cannot run in a transaction block: it runs on its own.
            runner = _outside_transaction if "CONCURRENTLY" in sql.upper() else _undo_in_transaction
            _retrying(
                op, f"undo after {what}", config.undo_attempts, 0.5, 10.0,
                functools.partial(runner, op, [sql], config.undo_lock_timeout),
            )
            undone.append(sql)
        except (sa.exc.DBAPIError, StepFailed) as undo_exc:
            raise StepFailed(
                f"{what} failed: {reason}\nundoing it failed too at `{sql}`: {_first_line(undo_exc)}; "
                f"run the remaining statements by hand: {'; '.join(statements[len(undone):])}"
            ) from exc
    raise StepFailed(
        f"{what} failed: {reason}\nundone: {description}, so the table works as before this step. "
        "Fix the data and run the upgrade again: completed steps are skipped."
    ) from exc


def _outside_transaction(op: Any, statements: Sequence[str], lock_timeout: str | None) -> None:
    """``statements`` outside any transaction block (``CONCURRENTLY``), under ``lock_timeout``."""
    bind = op.get_bind()
    if lock_timeout is not None:
        bind.exec_driver_sql(f"SET lock_timeout = {quote_literal(lock_timeout)}")
    try:
        for sql in statements:
            _exec(op, sql)
    finally:
        if lock_timeout is not None:
            bind.exec_driver_sql("RESET lock_timeout")


def _in_transaction(
    op: Any, statements: Sequence[str], lock_timeout: str | None, statement_timeout: str | None = None
) -> None:
    """``statements`` in one transaction with ``SET LOCAL`` timeouts, sent to the server as one
    message: a lock they take is held for the server's work only, not for a round trip per
    statement (on a busy client each one can take milliseconds while writers queue behind the
    lock).  A statement that fails aborts the rest (the message stops at the first error) and
    leaves the transaction to be rolled back, as before; a syntax error anywhere runs nothing."""
    # Each statement ends on a line of its own, so that a trailing ``-- comment`` cannot swallow
    # the semicolon (and the COMMIT after it).  Percent signs are doubled: the driver formats
    # the text with (no) parameters.
    script = "\n;\n".join(["BEGIN", *_timeouts(lock_timeout, statement_timeout), *statements, "COMMIT"])
    op.get_bind().exec_driver_sql(script.replace("%", "%%"))


def _undo_in_transaction(op: Any, statements: Sequence[str], lock_timeout: str | None) -> None:
    _guard(op, statements, "undo")
    _in_transaction(op, statements, lock_timeout)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(exc).__name__


def _is_data_problem(exc: BaseException) -> bool:
    state = _sqlstate(exc)
    return state is not None and state.startswith(_DATA_PROBLEM_CLASSES)


# --- steps --------------------------------------------------------------------------------------


@_takes_policy
def run_in_own_transaction(
    op: Any,
    statements: Sequence[str],
    *,
    lock_timeout: str | None = "2s",
    statement_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    done_when: str | None = None,
    description: str = "",
    undo_on_failure: Sequence[str] = (),
    undo_description: str = "",
) -> None:
    """Commit the migration transaction, then run ``statements`` in a short transaction of their
    own with ``SET LOCAL lock_timeout``/``statement_timeout``, retried with exponential backoff
    when the lock is not granted in time.

    ``done_when`` is a ``SELECT`` returning true when the statements already took effect (an
    interrupted earlier run): the step is then skipped.  Offline, ``done_when`` is emitted as a
    comment and the statements as ``BEGIN; SET LOCAL ...; ...; COMMIT;``.

    ``undo_on_failure`` are the compensating statements run when the data makes the step fail
    (a ``VALIDATE`` that finds a violating row: the ``NOT VALID`` constraint is dropped again, so
    the application's writes are not refused by a constraint the upgrade did not finish).
    """
    what = description or (statements[0] if statements else "step")
    with _outside_migration_transaction(op):
        if _offline(op):
            if done_when:
                _exec(op, sql_comment(f"skipped when already done: {done_when}"))
            for sql in ["BEGIN", *_timeouts(lock_timeout, statement_timeout), *statements, "COMMIT"]:
                _exec(op, sql)
            return
        if done_when and _scalar(op, done_when):
            log.info("helios: %s: already done, skipped", what)
            return

        held: list[float] = []
        step_began = time.monotonic()

        def body() -> None:
            _guard(op, statements, what)
            began = time.monotonic()
            _in_transaction(op, statements, lock_timeout, statement_timeout)
            held.append(time.monotonic() - began)

        try:
            _retrying(op, what, attempts, backoff, max_backoff, body)
            if held:
                log.info("helios: %s: done, its transaction (and its locks) held %.0f ms", what, held[-1] * 1000)
            _record_step(op, what, step_began, held[-1] if held and _blocks_reads_or_writes(op, statements) else None)
        except sa.exc.DBAPIError as exc:
            if undo_on_failure and _is_data_problem(exc):
                _undo_and_raise(op, what, exc, undo_on_failure, undo_description or "; ".join(undo_on_failure))
            raise


def add_constraint_if_missing(
    op: Any, table: str, name: str, sql: str, **options: Any
) -> None:
    """``ALTER TABLE ... ADD CONSTRAINT`` in its own transaction, skipped when ``pg_constraint``
    already has a constraint ``name`` on ``table`` (PostgreSQL has no ``IF NOT EXISTS`` here)."""
    done = constraint_exists_sql(table, name)
    run_in_own_transaction(op, [sql], done_when=done, **options)


def constraint_exists_sql(table: str, name: str) -> str:
    """A ``SELECT`` that is true when ``table`` has a constraint called ``name``."""
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
        f"to_regclass({_literal(_qualified(table))}) AND conname = {_literal(name)})"
    )


@_takes_policy
def run_autocommit(
    op: Any,
    statements: Sequence[str],
    *,
    lock_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    done_when: str | None = None,
    description: str = "",
) -> None:
    """Run ``statements`` outside any transaction block (``CONCURRENTLY``, enum ``ADD VALUE``)."""
    what = description or (statements[0] if statements else "step")
    with _outside_migration_transaction(op):
        if _offline(op):
            if done_when:
                _exec(op, sql_comment(f"skipped when already done: {done_when}"))
            if lock_timeout is not None:
                _exec(op, f"SET lock_timeout = {_literal(lock_timeout)}")
            for sql in statements:
                _exec(op, sql)
            if lock_timeout is not None:
                _exec(op, "RESET lock_timeout")
            return
        if done_when and _scalar(op, done_when):
            log.info("helios: %s: already done, skipped", what)
            return

        def body() -> None:
            _guard(op, statements, what)
            _outside_transaction(op, statements, lock_timeout)

        step_began = time.monotonic()
        _retrying(op, what, attempts, backoff, max_backoff, body)
        _record_step(op, what, step_began)


def _invalid_index_sql(name: str) -> str:
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = "
        f"to_regclass({_literal(_qualified(name))}) AND NOT indisvalid)"
    )


@_takes_policy
def create_index_concurrently(
    op: Any,
    name: str,
    sql: str,
    *,
    lock_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    done_when: str | None = None,
) -> None:
    """Build an index with ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` outside the transaction.

    An INVALID index of that name (left by a failed or interrupted earlier build) is dropped
    concurrently first; ``IF NOT EXISTS`` alone would keep the broken index.  ``done_when``: a
    ``SELECT`` that is true when the build is no longer needed (a later phase already finished).
    """
    drop = f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(name)}"
    with _outside_migration_transaction(op):
        if _offline(op):
            if done_when:
                _exec(op, sql_comment(f"skipped when already done: {done_when}"))
            _exec(op, sql_comment(f"an INVALID leftover of an earlier attempt is dropped first: {drop}"))
            _exec(op, sql)
            return
        if done_when and _scalar(op, done_when):
            log.info("helios: index %s: no longer needed, skipped", name)
            return

        def body() -> None:
            if _scalar(op, _invalid_index_sql(name)):
                log.warning("helios: dropping INVALID index %s left by an earlier attempt", name)
                _exec(op, drop)
            with _IndexProgress(op, name):
                _outside_transaction(op, [sql], lock_timeout)

        # A build the data fails (duplicates for a UNIQUE index) leaves an INVALID index that
        # still checks every new row: it is dropped again before the error is raised.
        with _undone_on_data_problem(
            op, f"building index {name}", [drop],
            f"dropped the INVALID index {name} the failed build left (it would still check new rows)",
        ):
            step_began = time.monotonic()
            _retrying(op, f"create index {name}", attempts, backoff, max_backoff, body)
            _record_step(op, f"create index {name} concurrently", step_began)


@_takes_policy
def drop_index_concurrently(
    op: Any,
    name: str,
    *,
    lock_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
) -> None:
    """``DROP INDEX CONCURRENTLY IF EXISTS`` outside the transaction."""
    run_autocommit(
        op,
        [f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(name)}"],
        lock_timeout=lock_timeout,
        attempts=attempts,
        backoff=backoff,
        max_backoff=max_backoff,
        description=f"drop index {name}",
    )


@_takes_policy
def backfill(
    op: Any,
    table: str,
    column: str,
    expression: str | None,
    *,
    key: Sequence[str] = ("id",),
    where: str | None = None,
    batch_size: int = 10_000,
    pause_ms: int = 50,
    progress: bool = True,
    lock_timeout: str | None = "2s",
    statement_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    undo_on_failure: Sequence[str] = (),
    undo_description: str = "",
    done_when: str | None = None,
) -> None:
    """``UPDATE table SET column = expression`` in batches of ``batch_size`` rows by primary key.

    Each batch is a short transaction of its own (row locks on at most ``batch_size`` rows, never a
    table lock that blocks anyone), followed by a pause of ``pause_ms``.  Only rows matching
    ``where`` (default ``column IS NULL``) are updated, so a re-run continues where an interrupted
    one stopped.  Progress (rows done, ETA) is logged.  ``expression`` ``None`` means the model
    gave no value for existing rows: the backfill fails, naming what to fill in, when such rows
    exist.

    When the data makes a batch fail (a value that does not convert, a constraint), the
    ``undo_on_failure`` statements run (drop the sync trigger and the new column of a type
    change) and :class:`StepFailed` says what failed and what was undone.

    Offline (``--sql``) the loop is a ``DO`` block that walks the key and commits after each batch
    until no row is left, so applying the script never leaves rows behind before a later step
    (run it outside an explicit transaction, as ``psql`` does by default).
    """
    tbl = _qualified(table)
    col = quote_ident(column)
    keys = [quote_ident(k) for k in key]
    pending = where or f"{col} IS NULL"
    key_list = ", ".join(keys)
    with _outside_migration_transaction(op):
        if done_when and not _offline(op) and _scalar(op, done_when):
            log.info("helios: backfill %s.%s: no longer needed, skipped", tbl, col)
            return
        if expression is None:
            missing = f"SELECT EXISTS (SELECT 1 FROM {tbl} WHERE {pending})"
            if _offline(op):
                _exec(op, sql_comment(f"backfill {tbl}.{col}: no value given for existing rows ({missing})"))
                return
            if _scalar(op, missing):
                raise StepFailed(
                    f"backfill of {tbl}.{col}: existing rows need a value and the model gives "
                    "none (no server_default): edit the revision and pass the expression to "
                    "runtime.backfill(), or give the column a server_default"
                )
            return
        ranges = _KeyRanges(tbl, col, expression, pending, tuple(keys))
        if _offline(op):
            config = settings()
            nice = config.backfill_nice_ratio if config.backfill_pause == "proportional" else None
            _exec(
                op,
                sql_comment(
                    f"backfill {tbl}.{col} in ranges of ({key_list}) sized to take "
                    f"{config.backfill_target_ms} ms (at most {batch_size} rows), each its own "
                    "transaction, then a pause of "
                    + (f"{nice:g} x its time" if nice is not None else f"{pause_ms} ms")
                    + ", until the last key"
                ),
            )
            if lock_timeout is not None:
                _exec(op, f"SET lock_timeout = {quote_literal(lock_timeout)}")
            _exec(op, _offline_backfill_loop(
                ranges, config.backfill_target_ms, config.backfill_min_batch, batch_size, pause_ms, nice,
                growth=config.backfill_max_growth,
            ))
            if lock_timeout is not None:
                _exec(op, "RESET lock_timeout")
            return
        with _undone_on_data_problem(op, f"backfill of {tbl}.{col}", undo_on_failure, undo_description):
            _backfill_online(
                op, ranges, lock_timeout, statement_timeout, progress,
                pause_ms, functools.partial(_retrying, op, f"backfill {tbl}.{col}", attempts, backoff, max_backoff),
                batch_size,
            )


@dataclass(frozen=True)
class _KeyRanges:
    """The statements of a backfill that walks the key in ranges.

    A batch is a range of the key: its upper end is the key ``n`` entries after the previous
    batch's end (an index-only scan of the key, outside the batch's transaction), and the batch is
    one ``UPDATE ... WHERE key > last AND key <= upper AND pending`` -- a range scan of the key
    index, which locks each row once, as it updates it.  (Selecting the next ``n`` keys ``FOR
    UPDATE`` and updating them by key locked every row twice and looked each up again: a third
    slower per row.)  Only rows still matching ``pending`` are updated, so a re-run skips what is
    done; a row the application changed meanwhile is checked again by PostgreSQL before it is
    updated (READ COMMITTED re-evaluates the WHERE on the newest version).
    """

    table: str
    column: str
    expression: str
    pending: str
    keys: tuple[str, ...]

    @property
    def key_list(self) -> str:
        return ", ".join(self.keys)

    def _params(self, prefix: str) -> str:
        # NUL cannot occur in SQL text: the markers become bind parameters after every colon of
        # the user's text (``x::int``, ``'a:b'``, a quoted name) is escaped.
        return ", ".join(f"\0{prefix}{i}\0" for i in range(len(self.keys)))

    def bound_sql(self, after: str | None, n: str, into: str = "") -> str:
        """The ``n``-th key after ``after`` (a row of parameters or values); ``None``: from the start."""
        where = f" WHERE ({self.key_list}) > ({after})" if after is not None else ""
        return (
            f"SELECT {self.key_list}{into} FROM {self.table}{where} ORDER BY {self.key_list} "
            f"OFFSET {n} - 1 LIMIT 1"
        )

    def update_sql(self, after: str | None, upto: str | None) -> str:
        conditions = [f"({self.pending})"]
        if after is not None:
            conditions.append(f"({self.key_list}) > ({after})")
        elif upto is not None:
            # The first range gets a lower end too (the first key): with only ``key <= upper``,
            # a bound the planner cannot see, it estimates a third of the table and may choose a
            # full scan; with both ends it estimates a small range and walks the key index.
            conditions.append(
                f"({self.key_list}) >= (SELECT {self.key_list} FROM {self.table} "
                f"ORDER BY {self.key_list} LIMIT 1)"
            )
        if upto is not None:
            conditions.append(f"({self.key_list}) <= ({upto})")
        return f"UPDATE {self.table} SET {self.column} = {self.expression} WHERE {' AND '.join(conditions)}"

    @property
    def _still_pending(self) -> str:
        # Evaluated by RETURNING on the row as updated: true when the expression left it still to
        # do (a NULL for ``col IS NULL``).  Counted per batch, so no scan of the whole table
        # afterwards is needed to say how many rows the expression gave no value.
        return f"RETURNING ({self.pending}) AS helios_still"

    def online_batch(self, after: bool) -> sa.TextClause:
        """One batch in one statement (one round trip, its own transaction in autocommit mode):
        the range's upper end, then the ``UPDATE`` up to it.  Returns the rows updated, how many
        of them still match ``pending``, and the upper end; past the last key the upper end is
        NULL and nothing is updated (the last, open-ended range is :meth:`online_rest`).
        Parameters ``:a0..``: the previous upper end; ``:n``: the batch's rows.  The text is the
        same for every batch of a backfill, so the driver prepares it on the server once and
        later batches skip parsing it."""
        after_sql = self._params("a") if after else None
        upto = f"SELECT {self.key_list} FROM helios_backfill_upto"
        rows = "CAST(\0n\0 AS bigint)"
        return _with_params(
            f"WITH helios_backfill_upto AS MATERIALIZED ({self.bound_sql(after_sql, rows)}), "
            f"helios_backfill_done AS ({self.update_sql(after_sql, upto)} {self._still_pending}) "
            "SELECT (SELECT count(*) FROM helios_backfill_done), "
            "(SELECT count(*) FROM helios_backfill_done WHERE helios_still), helios_backfill_upto.* "
            "FROM (VALUES (1)) AS helios_backfill_one LEFT JOIN helios_backfill_upto ON true"
        )

    def online_rest(self, after: bool) -> sa.TextClause:
        """The last range: every key after ``:a0..``; the rows updated and how many still match
        ``pending``."""
        update = self.update_sql(self._params("a") if after else None, None)
        return _with_params(
            f"WITH helios_backfill_done AS ({update} {self._still_pending}) "
            "SELECT count(*), count(*) FILTER (WHERE helios_still) FROM helios_backfill_done"
        )


def _with_params(sql: str) -> sa.TextClause:
    return sa.text(re.sub(r"\0(\w+)\0", r":\1", sql.replace(":", r"\:")))


_BATCH_COMMIT = "synchronous_commit"
"""A backfill batch commits with ``synchronous_commit = off``: it does not wait for its commit
record to reach the disk.  A crash of the server can lose the last few batches that committed
(at most ``wal_writer_delay`` x 3 of them), never part of one, and those rows still match the
backfill's ``pending`` condition, so the re-run after the crash (the migration fails with the
crash) updates them again.  Any later step that commits normally flushes the WAL of every batch
before it.  This saves a disk flush per batch."""


@contextmanager
def _session_settings(op: Any, values: dict[str, str]) -> Iterator[None]:
    """``values`` set for the session (each batch of a backfill is one autocommit statement, one
    round trip), then put back as they were, also when the body fails."""
    bind = op.get_bind()
    names = list(values)
    before = bind.execute(sa.text(
        "SELECT " + ", ".join(f"current_setting(:n{i})" for i in range(len(names)))
    ), {f"n{i}": n for i, n in enumerate(names)}).one()

    def set_all(settings: Sequence[str]) -> None:
        bind.execute(sa.text("SELECT " + ", ".join(
            f"set_config(:n{i}, :v{i}, false)" for i in range(len(names))
        )), {**{f"n{i}": n for i, n in enumerate(names)}, **{f"v{i}": str(v) for i, v in enumerate(settings)}})

    set_all([values[n] for n in names])
    try:
        yield
    finally:
        _rollback(op)
        with contextlib.suppress(sa.exc.DBAPIError):  # a lost connection takes the settings along
            set_all(list(before))


def _backfill_online(
    op: Any, ranges: _KeyRanges, lock_timeout: str | None, statement_timeout: str | None,
    progress: bool, pause_ms: int, retrying: Any, batch_size: int,
) -> None:
    """The key-range loop of :func:`backfill`, online: each batch one statement (its own
    transaction) sized to take ``backfill_target_ms`` (at most ``batch_size`` rows), retried
    when its lock is not granted, throttled before it runs
    (:class:`~helios_migrate.throttle.Throttle`), stopped cleanly between batches by Ctrl-C,
    with a progress line; ANALYZE afterwards when enough changed."""
    config = settings()
    bind = op.get_bind()
    step_began = time.monotonic()
    tbl, col, pending = ranges.table, ranges.column, ranges.pending
    what = f"backfill {tbl}.{col}"
    estimate = _row_estimate(op, tbl)
    total = estimate if estimate is not None else int(_scalar(op, f"SELECT count(*) FROM {tbl} WHERE {pending}") or 0)
    sizer = BatchSizer(
        config.backfill_target_ms, config.backfill_min_batch, max(1, int(batch_size)),
        growth=config.backfill_max_growth,
    )
    meter = _Progress(what, total, progress)
    session = {_BATCH_COMMIT: "off"}
    if lock_timeout is not None:
        session["lock_timeout"] = lock_timeout
    cap_ms = _batch_cap_ms(config, statement_timeout)
    min_pause_s = config.backfill_min_pause_ms / 1000
    if cap_ms is not None:
        session["statement_timeout"] = f"{cap_ms}ms"
    elif statement_timeout is not None:
        session["statement_timeout"] = statement_timeout
    last: tuple[Any, ...] | None = None
    results: list[tuple[Any, ...] | None] = []
    cancelled = 0
    left = 0  # rows the batches left still matching `pending` (the expression gave no value)
    owed = 0.0  # seconds of pause owed (see backfill_min_pause_ms)

    # Built once: each batch sends the same text with new parameters (no per-batch SQL building,
    # and the driver's server-side prepared statement is reused).
    batch_sql = {after: ranges.online_batch(after) for after in (False, True)}
    rest_sql = {after: ranges.online_rest(after) for after in (False, True)}

    def run_batch(after: tuple[Any, ...] | None, limit: int | None) -> None:
        params: dict[str, Any] = {f"a{i}": v for i, v in enumerate(after or ())}
        try:
            if limit is None:
                results.append(tuple(bind.execute(rest_sql[after is not None], params).one()))
            else:
                params["n"] = int(limit)
                results.append(tuple(bind.execute(batch_sql[after is not None], params).one()))
        except sa.exc.DBAPIError as exc:
            if cap_ms is None or _sqlstate(exc) != _QUERY_CANCELED:
                raise
            # The batch was its own autocommit transaction: the server is idle again.  A ROLLBACK
            # sent anyway would make the driver forget its prepared batch statement.
            if _server_in_transaction(op):
                _rollback(op)
            results.append(None)

    with stop_between_batches() as stop, _session_settings(op, session):
        throttle = Throttle(config, functools.partial(_scalar_without_timeout, op), what, stop=stop)
        try:
            limit: int | None = sizer.size
            while True:
                throttle.wait_until_clear()
                began = time.monotonic()
                retrying(functools.partial(run_batch, last, limit))
                took = time.monotonic() - began
                row = results.pop()
                if row is None:
                    # Slower than the cap (a row the application holds, a burst of load): the
                    # batch was cancelled, its row locks released and nothing of it kept; the
                    # same range is tried again, smaller.
                    cancelled += 1
                    if cancelled == _NAME_HOLDERS_AFTER or cancelled > config.backfill_max_cancelled:
                        holders = _holders(op, ranges.table, (cap_ms or 0) / 1000)
                        log.warning("helios: %s: %d batches in a row cancelled; %s", what, cancelled, holders)
                    if cancelled > config.backfill_max_cancelled:
                        raise StepFailed(
                            f"{what}: {cancelled} batches in a row ran past {cap_ms} ms and were "
                            f"cancelled, down to {sizer.size} rows (the last key done: {last}); "
                            f"{holders}. A long transaction may hold rows of the table, or the "
                            "server is overloaded. The rows done are kept: run the upgrade "
                            "again to resume, or raise backfill_max_batch_ms."
                        )
                    # Wait before trying again, holding no row lock: the cap, doubling with each
                    # cancellation in a row, at most backfill_cancel_wait_max -- an application
                    # transaction holding a row for seconds lets the backfill go on afterwards
                    # instead of using up its cancellations in a second.
                    wait_s = min(
                        (cap_ms or 0) / 1000 * 2 ** (cancelled - 1),
                        duration_ms(config.backfill_cancel_wait_max) / 1000,
                    )
                    log.info("helios: %s: a batch of %s rows ran past %d ms: cancelled (its row locks "
                             "released), trying the range again smaller in %.0f ms", what,
                             limit or "the last", cap_ms, wait_s * 1000)
                    sizer.record(limit or sizer.size, took)
                    limit = sizer.size
                    if wait_s > 0:
                        time.sleep(wait_s)
                    continue
                cancelled = 0
                rows = int(row[0] or 0)
                left += int(row[1] or 0)
                meter.batch(rows, took, limit or rows)
                if limit is None:
                    break  # the last, open-ended range: every row that matched was updated once
                if row[2] is None:
                    limit = None  # past the last key: one more batch for the keys after `last`
                    continue
                sizer.record(limit, took)
                last = tuple(row[2:])
                limit = sizer.size
                if stop.is_set():
                    raise StopRequested("stopped by Ctrl-C")
                owed += pause_ms / 1000 if config.backfill_pause == "fixed" else config.backfill_nice_ratio * took
                if owed >= min_pause_s:
                    # The pause owed so far, in one sleep of at least backfill_min_pause_ms: a sleep of a
                    # few ms on a busy machine lasts twice as long; what the sleep overran is
                    # taken off the next pauses, so the pauses add up to what was asked.
                    slept = time.monotonic()
                    time.sleep(owed)
                    slept = time.monotonic() - slept
                    meter.paused += slept
                    owed -= slept
        except ThrottleStop as exc:
            meter.finish()
            raise StepFailed(
                f"{what}: {exc} after {meter.done} rows (the last key done: {last}). The rows done "
                "are kept: run the upgrade again to resume (completed steps are skipped, the "
                "backfill continues with the rows still to do)."
            ) from None
    meter.finish()
    if left:
        log.warning(
            "helios: backfill %s.%s: %d rows still match %s (the expression gives them no "
            "value); a NOT NULL step after this one will say so",
            tbl, col, left, pending,
        )
    _analyze_if_large(op, tbl, meter.done, estimate, config)
    _record_step(op, what, step_began, meter.longest, meter.done)


_QUERY_CANCELED = "57014"

DEFAULT_BATCH_CAP_FACTOR = 1.5
DEFAULT_BATCH_CAP_MIN_MS = 25
"""``backfill_max_batch_ms`` unset: the cap is ``DEFAULT_BATCH_CAP_FACTOR`` x
``backfill_target_ms``, at least ``DEFAULT_BATCH_CAP_MIN_MS``."""


def _batch_cap_ms(config: Any, statement_timeout: str | None) -> int | None:
    """The longest a backfill batch may hold its row locks before it is cancelled and tried
    again smaller: ``backfill_max_batch_ms`` (unset: 1.5 x ``backfill_target_ms``, at least
    25 ms), never more than the step's own ``statement_timeout``.  It bounds how long a writer
    can wait behind a batch, also when the batch itself waits for a row an application
    transaction holds.  ``None`` without a cap: fixed batches (``backfill_target_ms = 0``) or
    ``backfill_max_batch_ms = 0``."""
    target_ms = int(config.backfill_target_ms)
    if target_ms <= 0 or config.backfill_max_batch_ms == 0:
        return None
    cap = config.backfill_max_batch_ms
    if cap is None:
        cap = max(DEFAULT_BATCH_CAP_MIN_MS, round(DEFAULT_BATCH_CAP_FACTOR * target_ms))
    step_ms = duration_ms(statement_timeout) if statement_timeout is not None else 0
    return min(int(cap), step_ms) if step_ms > 0 else int(cap)


def _without_timeout(read: Callable[[Any, str], _T], op: Any, sql: str) -> _T:
    """``read(op, sql)`` outside the backfill's per-batch ``statement_timeout`` (a throttle
    query, a look at who holds the table)."""
    bind = op.get_bind()
    bind.exec_driver_sql("BEGIN; SET LOCAL statement_timeout = 0")
    try:
        value = read(op, sql)
    except BaseException:
        _rollback(op)
        raise
    # COMMIT, not ROLLBACK, of this read: the driver forgets its prepared statements on a
    # ROLLBACK, and the next batches would be parsed and planned again.
    bind.exec_driver_sql("COMMIT")
    return value


_scalar_without_timeout = functools.partial(_without_timeout, _scalar)

_NAME_HOLDERS_AFTER = 3
"""Cancelled backfill batches in a row after which the log names the sessions holding the table."""


def _holders(op: Any, table: str, min_age_s: float) -> str:
    """The sessions whose transaction (older than ``min_age_s``) holds a lock on ``table``, in
    words: who a cancelled batch was most likely waiting on."""
    try:
        found = long_transactions_on(functools.partial(_without_timeout, _rows, op), _table_name(table), min_age_s)
    except sa.exc.DBAPIError as exc:
        return f"the sessions holding {table} could not be read ({_first_line(exc)})"
    if not found:
        return (f"no other session's transaction older than {min_age_s * 1000:.0f} ms holds "
                f"{table} now (the server may be overloaded)")
    return "sessions holding " + table + ": " + "; ".join(b.describe() for b in found[:5])


def _row_estimate(op: Any, tbl: str) -> int | None:
    """The planner's row estimate for ``tbl`` (:func:`helios_migrate.facts.row_estimate_sql`, the
    one formula), summed over the leaves of a partitioned table; ``None`` when there is no such
    table."""
    leaves = (
        f"SELECT coalesce(sum({row_estimate_sql('l')}), 0) FROM pg_partition_tree(c.oid) t "
        "JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf"
    )
    value = _scalar(
        op,
        f"SELECT CASE WHEN c.relkind = 'p' THEN ({leaves}) ELSE {row_estimate_sql('c')} END "
        f"FROM pg_class c WHERE c.oid = to_regclass({_literal(tbl)})",
    )
    return None if value is None else int(value)


def _analyze_if_large(op: Any, tbl: str, changed: int, estimate: int | None, config: Any) -> None:
    """ANALYZE ``tbl`` when ``changed`` rows can move the planner's statistics: at least
    ``auto_analyze_min_rows`` and 10% of the table (autovacuum's own default threshold)."""
    if not config.auto_analyze or changed < max(config.auto_analyze_min_rows, 0.1 * (estimate or 0)):
        return
    began = time.monotonic()
    _exec(op, f"ANALYZE {tbl}")
    log.info(
        "helios: ANALYZE %s after %d changed rows (%.1fs): the planner's statistics describe the "
        "new values", tbl, changed, time.monotonic() - began,
    )


PROGRESS_EVERY_S = 5.0
"""How often a progress line (backfill, index build) is logged when stderr is not a terminal."""


class _IndexProgress:
    """While ``CREATE INDEX CONCURRENTLY`` runs on the migration's connection, a second connection
    reads ``pg_stat_progress_create_index`` for that backend: the phase, blocks or tuples done of
    the total, and the time so far -- a live line on a terminal, a log line every
    :data:`PROGRESS_EVERY_S` otherwise.  Progress is only shown: when it cannot be read (no
    second connection, no privilege) the build goes on without it."""

    def __init__(self, op: Any, name: str) -> None:
        self.name = name
        self.engine = op.get_bind().engine
        self.pid = int(_scalar(op, "SELECT pg_backend_pid()"))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name=f"helios index {name}", daemon=True)
        self.live = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = False

    def __enter__(self) -> _IndexProgress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        if self.live and self.shown:
            sys.stderr.write("\n")

    def line(self, row: Sequence[Any]) -> str:
        phase, blocks_done, blocks_total, tuples_done, tuples_total = row
        if blocks_total:
            done = f"{100 * blocks_done / blocks_total:.0f}% ({blocks_done:,} of {blocks_total:,} blocks)"
        elif tuples_total:
            done = f"{100 * tuples_done / tuples_total:.0f}% ({tuples_done:,} of {tuples_total:,} tuples)"
        else:
            done = "-"
        return f"helios: index {self.name}: {phase}, {done}, {time.monotonic() - self.started:.0f}s"

    def _watch(self) -> None:
        sql = sa.text(
            "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total "
            "FROM pg_stat_progress_create_index WHERE pid = :pid"
        )
        logged = time.monotonic()
        if isinstance(self.engine.pool, (sa.pool.StaticPool, sa.pool.SingletonThreadPool)):
            return  # a second "connection" would be the migration's own
        try:
            with self.engine.connect() as conn:
                while not self.stop.wait(0.5 if self.live else min(1.0, PROGRESS_EVERY_S)):
                    row = conn.execute(sql, {"pid": self.pid}).first()
                    conn.rollback()
                    if row is None:
                        continue
                    if self.live:
                        sys.stderr.write("\r" + self.line(row)[:150].ljust(150))
                        sys.stderr.flush()
                        self.shown = True
                    elif time.monotonic() - logged >= PROGRESS_EVERY_S:
                        logged = time.monotonic()
                        log.info("%s", self.line(row))
        except Exception as exc:  # progress is a courtesy: the build goes on without it
            log.debug("helios: index %s: no progress (%s)", self.name, exc)


class _Progress:
    """Rows done, rows/s, the batch size now and an ETA: a live line on a terminal, a log line
    every few seconds otherwise."""

    def __init__(self, what: str, total: int, enabled: bool) -> None:
        self.what, self.total, self.enabled = what, total, enabled
        self.done = 0
        self.batches = 0
        self.longest = 0.0
        self.held: list[float] = []
        self.paused = 0.0
        """Seconds slept between batches (the configured pause, not throttling)."""
        self.started = time.monotonic()
        self.logged = self.started
        self.live = enabled and sys.stderr.isatty()

    def line(self, size: int) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = max(0, self.total - self.done)
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        return (
            f"helios: {self.what}: {self.done:,} of ~{self.total:,} rows, {rate:,.0f} rows/s, "
            f"batch {size:,} rows, ETA {eta}"
        )

    def batch(self, rows: int, took: float, size: int) -> None:
        self.done += rows
        self.batches += 1
        self.longest = max(self.longest, took)
        self.held.append(took)
        if not self.enabled:
            return
        if self.live:
            sys.stderr.write("\r" + self.line(size)[:150].ljust(150))
            sys.stderr.flush()
        elif time.monotonic() - self.logged >= PROGRESS_EVERY_S:
            self.logged = time.monotonic()
            log.info("%s", self.line(size))

    def finish(self) -> None:
        if self.live:
            sys.stderr.write("\n")
        elapsed = time.monotonic() - self.started
        held = sorted(self.held) or [0.0]
        log.info(
            "helios: %s: %d rows in %d batches, %.1fs (%.0f rows/s); the longest batch held its "
            "row locks %.0f ms (median %.0f ms, 95th percentile %.0f ms); paused %.1fs between "
            "batches", self.what, self.done,
            self.batches, elapsed, self.done / elapsed if elapsed > 0 else 0.0, self.longest * 1000,
            held[len(held) // 2] * 1000, held[min(len(held) - 1, int(0.95 * len(held)))] * 1000,
            self.paused,
        )


def _offline_backfill_loop(
    ranges: _KeyRanges, target_ms: int, min_batch: int, batch_size: int, pause_ms: int,
    nice_ratio: float | None = None, *, growth: float = 2.0,
) -> str:
    """A ``DO`` block that runs the key-range backfill to the end, committing after each batch.

    As online, each batch is sized from the time the one before took (``target_ms``; 0: fixed
    batches of ``batch_size``), starting at ``min_batch`` and growing at most ``growth``-fold, and commits
    without waiting for its WAL flush (see :data:`_BATCH_COMMIT`).  The pause after a batch is
    ``nice_ratio`` times its time, or ``pause_ms`` when ``nice_ratio`` is ``None``."""
    ceiling = max(1, int(batch_size))
    floor = max(1, min(int(min_batch), ceiling))
    first = floor if target_ms > 0 else ceiling
    last = ", ".join(f"helios_last.{k}" for k in ranges.keys)
    upto = ", ".join(f"helios_upto.{k}" for k in ranges.keys)

    def batch(after: str | None, indent: str) -> str:
        return (
            f"{indent}{ranges.bound_sql(after, 'helios_n', ' INTO helios_upto')};\n"
            f"{indent}helios_more := FOUND;\n"
            f"{indent}IF helios_more THEN\n"
            f"{indent}  {ranges.update_sql(after, upto)};\n"
            f"{indent}ELSE\n"
            f"{indent}  {ranges.update_sql(after, None)};\n"
            f"{indent}END IF;\n"
        )

    resize = (
        f"    helios_n := greatest({floor}, least({ceiling}, ({float(growth):g} * helios_n)::integer, "
        f"(helios_n * {int(target_ms)} / greatest(helios_ms, 1))::integer));\n"
        if target_ms > 0 else ""
    )
    if nice_ratio is not None:
        sleep = f"    PERFORM pg_sleep({float(nice_ratio):g} * helios_ms / 1000);\n" if nice_ratio > 0 else ""
    else:
        sleep = f"    PERFORM pg_sleep({pause_ms / 1000:g});\n" if pause_ms else ""
    body = (
        "\nDECLARE\n  helios_last record;\n  helios_upto record;\n  helios_more boolean;\n"
        f"  helios_first boolean := true;\n  helios_n integer := {first};\n"
        "  helios_t0 timestamptz;\n  helios_ms double precision;\nBEGIN\n"
        "  LOOP\n"
        "    helios_t0 := clock_timestamp();\n"
        "    PERFORM set_config('synchronous_commit', 'off', true);\n"
        "    IF helios_first THEN\n"
        f"{batch(None, '      ')}"
        "    ELSE\n"
        f"{batch(last, '      ')}"
        "    END IF;\n"
        "    COMMIT;\n"
        "    EXIT WHEN NOT helios_more;\n"
        "    helios_ms := 1000 * extract(epoch FROM clock_timestamp() - helios_t0);\n"
        f"{resize}"
        "    helios_last := helios_upto;\n"
        "    helios_first := false;\n"
        f"{sleep}"
        "  END LOOP;\nEND\n"
    )
    return f"DO {dollar_quote(body)}"


# --- the summary of a revision ----------------------------------------------------------------


@dataclass
class _StepRecord:
    what: str
    seconds: float
    held_s: float | None = None
    """How long the step's locks (or, for a backfill, the longest batch's row locks) were held."""
    rows: int = 0


@dataclass
class _RevisionSummary:
    steps: list[_StepRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


def _record_step(op: Any, what: str, began: float, held_s: float | None = None, rows: int = 0) -> None:
    """Note a finished step for the summary logged when its revision is applied.  Alembic calls
    ``on_version_apply`` callbacks after each revision; the first step of a run adds ours."""
    context = op.get_context()
    summary = getattr(context, "_helios_summary", None)
    if summary is None:
        summary = _RevisionSummary(started=began)
        context._helios_summary = summary
        callbacks = tuple(getattr(context, "on_version_apply_callbacks", ()) or ())
        if _log_revision_summary not in callbacks:
            context.on_version_apply_callbacks = (*callbacks, _log_revision_summary)
    summary.steps.append(_StepRecord(_short(what), time.monotonic() - began, held_s, rows))


def _blocks_reads_or_writes(op: Any, statements: Sequence[str]) -> bool:
    """Whether ``statements`` take a lock that blocks reads or writes (a ``VALIDATE`` scan under
    SHARE UPDATE EXCLUSIVE does not: its time is not a stall)."""
    try:
        return bool(requested_locks(statements, _server_version(op)))
    except Exception:  # unknown: count it as blocking
        return True


def _short(text: str, width: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _log_revision_summary(*, ctx: Any, step: Any, **_: Any) -> None:
    """After a revision: each step of it, its time and the longest lock it held; then totals."""
    summary = getattr(ctx, "_helios_summary", None)
    ctx._helios_summary = None
    if summary is None or not summary.steps:
        return
    revision = ", ".join(getattr(step, "destination_revision_ids", ()) or ()) or "base"
    direction = "upgrade" if getattr(step, "is_upgrade", True) else "downgrade"
    lines = [
        f"  {s.seconds:8.2f}s  {'-' if s.held_s is None else f'{s.held_s * 1000:.0f} ms':>9}  "
        f"{s.what}{f' ({s.rows:,} rows)' if s.rows else ''}"
        for s in summary.steps
    ]
    held = [s for s in summary.steps if s.held_s is not None]
    longest = max(held, key=lambda s: s.held_s or 0.0) if held else None
    log.info(
        "helios: %s to %s: %d steps in %.1fs, %s rows changed by backfills; the longest lock "
        "blocking reads or writes held: %s\n      time  lock held  step\n%s",
        direction, revision, len(summary.steps), time.monotonic() - summary.started,
        f"{sum(s.rows for s in summary.steps):,}",
        f"{(longest.held_s or 0) * 1000:.0f} ms ({longest.what})" if longest else "none",
        "\n".join(lines),
    )


_ONE_CORE = {"max_parallel_workers_per_gather": "0"}
"""The conversion check reads the whole table: without parallel workers it keeps to one core, and
the application keeps the others (on a 2-core server a parallel scan with two workers took both,
and writes stalled until it ended)."""


def check_convertible(
    op: Any,
    table: str,
    column: str,
    to_type: str,
    *,
    key: Sequence[str] = ("id",),
    sample: int = 5,
    done_when: str | None = None,
) -> None:
    """Refuse a type change before anything changes when existing values do not convert.

    Each non-NULL value of ``column`` is converted as the backfill will convert it (an explicit
    cast to the type without its modifier, then assignment to ``to_type``: a value too long for
    ``varchar(n)`` or out of range is an error, as in a plain ``ALTER COLUMN TYPE``, never a
    silent truncation).  When some do not convert, :class:`StepFailed` names how many and the
    key of the first ``sample`` of them.  Reads only (a scan under ACCESS SHARE).
    """
    tbl = _qualified(table)
    col = quote_ident(column)
    keys = [quote_ident(k) for k in key]
    key_list = ", ".join(keys)
    base = base_type(to_type)
    fits = (
        "CREATE OR REPLACE FUNCTION pg_temp.helios_fits(v anyelement) RETURNS boolean LANGUAGE plpgsql AS "
        + dollar_quote(
            f" DECLARE x {to_type}; BEGIN x := (v)::{base}; RETURN true; "
            "EXCEPTION WHEN data_exception THEN RETURN false; END "
        )
    )
    failing = f"{col} IS NOT NULL AND NOT pg_temp.helios_fits({col})"
    with _outside_migration_transaction(op):
        if done_when and not _offline(op) and _scalar(op, done_when):
            log.info("helios: %s.%s already converted, check skipped", table, column)
            return
        narrowing = None if _offline(op) else _integer_range(op, tbl, column, base)
        if narrowing is not None:
            # An integer narrowed to a smaller integer: a range test, no function call (and no
            # subtransaction) per row; the same rows fail as with the cast.
            failing = f"{col} NOT BETWEEN {narrowing[0]} AND {narrowing[1]}"
        else:
            _exec(op, fits)
        if _offline(op):
            one_core = "".join(
                f"PERFORM set_config({quote_literal(name)}, {quote_literal(value)}, true); "
                for name, value in _ONE_CORE.items()
            )
            _exec(
                op,
                "DO " + dollar_quote(
                    f" DECLARE n bigint; BEGIN {one_core}"
                    f"SELECT count(*) INTO n FROM {tbl} WHERE {failing}; "
                    f"IF n > 0 THEN RAISE EXCEPTION '% row(s) of % do not convert to %', n, "
                    f"{quote_literal(f'{table}.{column}')}, {quote_literal(to_type)}; END IF; END "
                ),
            )
            return
        began = time.monotonic()
        with _session_settings(op, _ONE_CORE):
            rows = op.get_bind().execute(sa.text(
                f"SELECT count(*) OVER (), {key_list}, left({col}::text, 40) FROM {tbl} "
                f"WHERE {failing} ORDER BY {key_list} LIMIT {int(sample)}".replace(":", r"\:")
            )).fetchall()
        if not rows:
            log.info("helios: every value of %s.%s converts to %s", table, column, to_type)
            _record_step(op, f"check that {table}.{column} converts to {to_type}", began)
            return
        shown = ", ".join(
            " ".join(f"{k}={v}" for k, v in zip(key, row[1:-1], strict=True)) + f" ({row[-1]!r})"
            for row in rows
        )
        raise StepFailed(
            f"{int(rows[0][0])} row(s) of {table}.{column} do not convert to {to_type} (too long, "
            f"out of range or not valid input), e.g. {shown}. Nothing was changed. Fix or clear "
            "those values (or write a USING expression into the revision), then run the upgrade again."
        )


_INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1), "int2": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1), "int": (-(2**31), 2**31 - 1), "int4": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1), "int8": (-(2**63), 2**63 - 1),
}


def _integer_range(op: Any, tbl: str, column: str, to_base: str) -> tuple[int, int] | None:
    """The range of ``to_base`` when the column is of an integer type and ``to_base`` is one too
    (``bigint`` back to ``integer``), else ``None``."""
    target = _INTEGER_RANGES.get(to_base.strip().lower())
    if target is None:
        return None
    current = _scalar(
        op,
        "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
        f"to_regclass({_literal(tbl)}) AND attname = {_literal(column)} AND NOT attisdropped",
    )
    return target if current is not None and str(current) in _INTEGER_RANGES else None


def _allowed() -> bool:
    return os.environ.get(ALLOW_DATA_LOSS_VAR, "").strip().lower() in {"1", "true", "yes"}


def irreversible(op: Any, step: str, reason: str) -> None:
    """A downgrade step with no inverse: raise :class:`IrreversibleStep` naming it, unless
    ``HELIOS_ALLOW_DATA_LOSS=1`` (then the step is skipped with a warning)."""
    if _offline(op):
        _exec(op, sql_comment(f"irreversible: {step}: {reason}"))
        return
    if _allowed():
        log.warning("helios: skipping irreversible step %s: %s", step, reason)
        return
    raise IrreversibleStep(
        f"cannot undo {step!r}: {reason}. Set {ALLOW_DATA_LOSS_VAR}=1 to skip it and continue."
    )


def confirm_data_loss(op: Any, guards: Sequence[tuple[str, str]]) -> None:
    """First in a downgrade: every step that cannot be undone, or only by losing data, at once.
    Without ``HELIOS_ALLOW_DATA_LOSS=1`` it raises :class:`IrreversibleStep` listing them all
    before any step runs, so a refused downgrade leaves the database exactly as it was."""
    if not guards:
        return
    listed = "\n".join(f"  - {step}: {reason}" for step, reason in guards)
    if _offline(op):
        _exec(op, sql_comment(f"this downgrade loses data or cannot undo {len(guards)} step(s)"))
        return
    if _allowed():
        log.warning("helios: %s=1: the downgrade runs %d step(s) that lose data:\n%s",
                    ALLOW_DATA_LOSS_VAR, len(guards), listed)
        return
    raise IrreversibleStep(
        f"this downgrade cannot undo {len(guards)} step(s) without losing data:\n{listed}\n"
        f"Nothing was changed. Set {ALLOW_DATA_LOSS_VAR}=1 to run it anyway, or write those parts "
        "of the downgrade by hand."
    )


def data_losing_step(op: Any, step: str, reason: str) -> None:
    """Guard before a downgrade step that loses data: raise unless ``HELIOS_ALLOW_DATA_LOSS=1``."""
    if _offline(op):
        _exec(op, sql_comment(f"loses data: {step}: {reason}"))
        return
    if _allowed():
        log.warning("helios: %s loses data: %s", step, reason)
        return
    raise IrreversibleStep(
        f"undoing {step!r} loses data: {reason}. Set {ALLOW_DATA_LOSS_VAR}=1 to run it anyway."
    )


# --- sync triggers ------------------------------------------------------------------------------
# The recipe is the planner's (one place for the plpgsql).


def _table_name(table: str) -> QualifiedName:
    """A table argument (see :func:`table_argument`) as a schema-qualified name."""
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p for p in _split_dotted(table)]
    return QualifiedName(parts[-1], parts[-2] if len(parts) > 1 else None)


@_takes_policy
def sync_column_trigger(
    op: Any,
    table: str,
    source: str,
    target: str,
    expression: str | None = None,
    *,
    name: str,
    before: Sequence[str] = (),
    lock_timeout: str | None = "2s",
    statement_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    done_when: str | None = None,
) -> None:
    """Keep column ``target`` of ``table`` in step with ``source`` on every insert and update, while
    both exist: ``target`` gets ``expression`` (SQL over ``NEW``, e.g. ``(NEW.qty)::bigint``), or,
    without one, each column the other's value when only one was written (a renamed column).

    The function and the trigger, both called ``name``, are created (or replaced) in a short
    transaction of its own, after ``before`` (statements that must commit with them), as
    :func:`run_in_own_transaction` runs them -- offline too, through ``op.execute``.
    """
    trigger = SyncTrigger(_table_name(table), name, source, target, expression)
    run_in_own_transaction(
        op, [*before, *sync_trigger_statements(trigger)], lock_timeout=lock_timeout,
        statement_timeout=statement_timeout, attempts=attempts, backoff=backoff, max_backoff=max_backoff,
        done_when=done_when, description=f"sync trigger {name} on {table}",
    )


@_takes_policy
def drop_sync_trigger(
    op: Any,
    table: str,
    name: str,
    *,
    lock_timeout: str | None = "2s",
    statement_timeout: str | None = None,
    attempts: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    done_when: str | None = None,
) -> None:
    """Drop the sync trigger ``name`` of ``table`` and its function (see
    :func:`sync_column_trigger`) in a short transaction of its own; nothing when they are gone."""
    trigger = SyncTrigger(_table_name(table), name, "", "")
    run_in_own_transaction(
        op, list(drop_sync_trigger_statements(trigger)), lock_timeout=lock_timeout,
        statement_timeout=statement_timeout, attempts=attempts, backoff=backoff, max_backoff=max_backoff,
        done_when=done_when, description=f"drop the sync trigger {name} on {table}",
    )
