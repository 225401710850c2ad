"""Tables the revision creates: kept as Alembic writes them, made to pass the gate.

``op.create_table`` of a new table stays as written (it is empty: nothing to plan), but it is not
free of hazards: a foreign key to an existing table takes SHARE ROW EXCLUSIVE on that table, and
without ``lock_timeout`` the statement queues behind a long transaction while every writer queues
behind it.  So the migration transaction gets ``SET LOCAL lock_timeout`` before it (and the
downgrade before its drops).  What ``check`` then still reports is deliberate -- the model's own
type choices, dropping in the downgrade the table and indexes this revision created -- and is
acknowledged beside the operation with the reason (``# helios: ignore[HMxxx] -- ...``).
"""

from __future__ import annotations

import logging
from typing import Any

from alembic.operations import MigrateOperation, ops

from helios_migrate.alembic_ops import render_sql
from helios_migrate.codes import RuleCode
from helios_migrate.config import Config
from helios_migrate.lint import lint_sql
from helios_migrate.sqltext import quote_literal
from helios_migrate.versions import PgVersion

from .ops import CommentOp

log = logging.getLogger("alembic.helios")

_DESIGN = "HM5"
"""Schema-design rules (``HM5xx``): they judge the model's own choices (a ``varchar(n)``, a
``serial``), which a revision carries out as declared."""


class LockTimeoutOp(MigrateOperation):
    """``SET LOCAL lock_timeout`` in the migration transaction, in the directions it is set for."""

    def __init__(self, timeout: str, *, upgrade: bool = True, downgrade: bool = False) -> None:
        self.timeout = timeout
        self.upgrade = upgrade
        self.downgrade = downgrade

    def reverse(self) -> LockTimeoutOp:
        return LockTimeoutOp(self.timeout, upgrade=self.downgrade, downgrade=self.upgrade)

    def to_diff_tuple(self) -> Any:
        return ()


def render_lock_timeout_op(autogen_context: Any, op: LockTimeoutOp) -> list[str]:
    if not op.upgrade:
        return []
    sql = f"SET LOCAL lock_timeout = {quote_literal(op.timeout)}"
    return [
        "# helios: plain operations below wait at most this long for their locks",
        f"op.execute({sql!r})",
    ]


def deliberate_findings(
    sql: str, config: Config, version: PgVersion, *, reasons: dict[str, str] | None = None
) -> dict[str, str]:
    """Rule code -> reason for what ``check`` reports on ``sql`` on purpose: the schema-design
    findings on the model's own type choices, and the codes given in ``reasons``.  Linted after a
    ``SET lock_timeout``, which the revision sets."""
    script = f"SET lock_timeout = {quote_literal(config.lock_timeout or '2s')};\n{sql}"
    out: dict[str, str] = {}
    for finding in lint_sql(script, "<plan>", config=config, version=version):
        if finding.code in out:
            continue
        if finding.code.startswith(_DESIGN):
            out[finding.code] = f"as the model declares it ({finding.message})"
        elif reasons and finding.code in reasons:
            out[finding.code] = reasons[finding.code]
    return out


def _acks(sql: str, config: Config, version: PgVersion, *, reasons: dict[str, str]) -> list[str]:
    """``# helios: ignore[...]`` lines for what ``check`` reports on ``sql`` that is deliberate."""
    found = deliberate_findings(sql, config, version, reasons=reasons)
    return [f"helios: ignore[{code}] -- {reason}" for code, reason in found.items()]


def _sql(op: MigrateOperation) -> str:
    try:
        return render_sql(op)
    except Exception as exc:  # broad: any operation, any column type; SQLAlchemy raises many kinds
        log.warning("helios: %s cannot be rendered offline (%s); no acknowledgement is written for it, "
                    "helios-migrate check judges it", type(op).__name__, exc)
        return ""


def guard_new_tables(upgrade_ops: Any, config: Config, version: PgVersion) -> None:
    """Give the plain operations on new tables a lock timeout and their acknowledgements."""
    new_tables = {op.table_name for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)}
    if not new_tables:
        return
    upgrade_ops.ops = _acknowledged(upgrade_ops.ops, new_tables, config, version)
    timeout = config.lock_timeout or "2s"
    upgrade_ops.ops = [
        LockTimeoutOp(timeout), *upgrade_ops.ops, LockTimeoutOp(timeout, upgrade=False, downgrade=True)
    ]


def _acknowledged(
    operations: list[Any], new_tables: set[str], config: Config, version: PgVersion
) -> list[Any]:
    out: list[Any] = []
    for op in operations:
        table = getattr(op, "table_name", None)
        if isinstance(op, ops.ModifyTableOps) and table in new_tables:
            # Alembic groups a table's index operations in a container of their own.
            op.ops = _acknowledged(op.ops, new_tables, config, version)
            out.append(op)
            continue
        if not isinstance(op, ops.CreateTableOp | ops.CreateIndexOp) or table not in new_tables:
            out.append(op)
            continue
        up = _acks(_sql(op), config, version, reasons={})
        dropped_next = f"undo: {table}, which this revision created, is dropped next"
        down = _acks(_sql(op.reverse()), config, version, reasons={
            RuleCode.DROP_TABLE:
                f"undo: drops {table}, which this revision created (rows written since go with it)",
            RuleCode.DROP_INDEX_NON_CONCURRENTLY: dropped_next,
            RuleCode.CREATE_INDEX_NON_CONCURRENTLY: dropped_next,
        })
        if up:
            out.append(CommentOp(up))
        out.append(op)
        if down:
            # Reversed by Alembic into the lines right above the operation's undo in downgrade().
            out.append(CommentOp((), downgrade_lines=down))
    return out
