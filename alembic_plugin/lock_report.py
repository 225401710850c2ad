"""Report, during autogenerate, what each generated operation will lock on the live server."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from alembic.operations import ops
from alembic.util import PriorityDispatchResult

from helios_migrate.changes import CreateTable, QualifiedName
from helios_migrate.effects import WorkClass
from helios_migrate.knowledge import effect_of
from helios_migrate.versions import PgVersion, default_version

from .ops import LockSafePlanOp
from .reading import read_changes

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import MigrateOperation, OpContainer, UpgradeOps

log = logging.getLogger("alembic.helios")


def server_version(autogen_context: AutogenContext) -> tuple[PgVersion, bool]:
    """The version of the database autogenerate compared against (``False``: assumed)."""
    conn = autogen_context.connection
    info = getattr(conn.dialect, "server_version_info", None) if conn is not None else None
    if info:
        major = int(info[0])
        minor = int(info[1]) if len(info) > 1 else 0
        return PgVersion(major, minor), True
    return default_version(), False


def _unplanned(container: OpContainer) -> list[MigrateOperation]:
    """Leaf operations not already replaced by a lock-safe plan."""
    out: list[MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            out.extend(_unplanned(op))
        elif not isinstance(op, LockSafePlanOp):
            out.append(op)
    return out


def report_locks(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> PriorityDispatchResult:
    """Log one line per generated change that blocks reads or writes for more than a moment
    (operations already rewritten into lock-safe plans are not reported)."""
    if autogen_context.dialect is None or autogen_context.dialect.name != "postgresql":
        return PriorityDispatchResult.CONTINUE
    version, known = server_version(autogen_context)
    new_tables: set[QualifiedName] = set()
    changes = [
        change
        for op in _unplanned(upgrade_ops)
        for change in read_changes(op, "its locks are not reported") or ()
    ]
    for change in changes:
        if isinstance(change, CreateTable):
            new_tables.add(change.on)
            continue
        if change.table in new_tables:
            continue  # a table created by this revision is empty and invisible until commit
        eff = effect_of(change, version)
        lock = eff.table_lock
        if lock is None:
            continue
        # Catalog-only changes hold their lock for milliseconds; report long holds and refusals.
        long_hold = eff.work is not WorkClass.METADATA and (eff.blocks_reads or eff.blocks_writes)
        if not (long_hold or eff.unsupported):
            continue
        what = "rewrites" if eff.rewrites_table else eff.work.value
        message = (
            f"helios: {change.kind} on {lock.relation}: {lock.mode.sql_name} "
            f"(blocks {lock.mode.blocked_summary()}) during {what}"
            f" on PostgreSQL {version}{'' if known else ' (assumed)'}"
        )
        if eff.unsupported:
            message += f"; {eff.unsupported}"
        if eff.safer_alternative:
            message += f"; safer: {eff.safer_alternative}"
        log.warning(message)
    return PriorityDispatchResult.CONTINUE
