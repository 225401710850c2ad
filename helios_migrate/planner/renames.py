"""Renames without breaking running code: a column by expand/contract (a two-way sync trigger, a
batched backfill, the way back planned too) or in place, a table by a rename and an updatable view
under the old name."""

from __future__ import annotations

import dataclasses

from ..changes import ColumnDef, QualifiedName
from ..codes import RuleCode
from ..knowledge import SchemaLookup
from ..plan import Backfill, Phase, Plan, Step, SyncTrigger, TransactionMode, acknowledge
from ..sqltext import quote_ident, quote_literal
from ..versions import PgVersion
from .columns import OWN_TRIGGER, added_dropped, batch_key, not_null_steps
from .context import flipped, new_context
from .facts import PlannerFacts
from .policy import PlanPolicy
from .sqlgen import column_exists, column_sql, sql_name, truncate
from .triggers import drop_sync_trigger_statements, sync_trigger_statements

RENAME_STRATEGIES = ("expand-contract", "rename-with-view")


def plan_column_rename(
    table: QualifiedName,
    old: ColumnDef,
    new: ColumnDef,
    version: PgVersion,
    *,
    strategy: str = "expand-contract",
    catalog: SchemaLookup | None = None,
    facts: PlannerFacts | None = None,
    policy: PlanPolicy | None = None,
) -> Plan:
    """A column renamed from ``old`` to ``new`` without losing a value.

    ``expand-contract``: add ``new``, a trigger keeping both columns equal on every write (old code
    writing ``old``, new code writing ``new``), a batched backfill, NOT NULL through the lock-safe
    path when the model asks for it; the contract phase drops the trigger and ``old``.  Downgrade
    re-creates ``old`` and copies the values back in batches (nothing is lost).

    ``rename-with-view``: ``RENAME COLUMN`` in a short transaction, as a contract step (code using
    the old name breaks at once).  A compatibility view cannot stand in for a column of a table
    that keeps its name, so no view is made for a column.
    """
    if strategy not in RENAME_STRATEGIES:
        raise ValueError(f"unknown rename strategy {strategy!r}")
    ctx = new_context(version, catalog, facts, policy)
    t, o, n = sql_name(table), quote_ident(old.name), quote_ident(new.name)
    what = f"{table}.{old.name} renamed to {new.name}"
    if strategy == "rename-with-view":
        steps = [
            ctx.own(
                f"rename column {table}.{old.name} to {new.name}",
                [f"ALTER TABLE {t} RENAME COLUMN {o} TO {n}"],
                phase=Phase.CONTRACT,
                inverse=[f"ALTER TABLE {t} RENAME COLUMN {n} TO {o}"],
                acknowledged=acknowledge(RuleCode.RENAME_COLUMN, reason=f"contract phase: deploy code that uses {new.name} with it"),
                inverse_acknowledged=acknowledge(RuleCode.RENAME_COLUMN, reason=f"undo: {old.name} gets its name back"),
                done_when=f"SELECT {column_exists(table, new.name)[7:]}",
                reason="catalog-only, ACCESS EXCLUSIVE for a moment; code using the old name breaks "
                "at once (a column has no compatibility view): deploy code using the new name with it",
            )
        ]
        ctx.notes.append(f"{what}: rename in place (rename_strategy = \"rename-with-view\")")
        return Plan(steps=tuple(steps), notes=tuple(ctx.notes))
    trigger = SyncTrigger(table, truncate(f"{table.name}_{old.name}_{new.name}_sync"), old.name, new.name)
    sync, unsync = list(sync_trigger_statements(trigger)), list(drop_sync_trigger_statements(trigger))
    new_plain = dataclasses.replace(new, nullable=True, default=None)
    fill = dict(key=batch_key(table, ctx), batch_size=ctx.policy.batch_size, pause_ms=ctx.policy.pause_ms)
    steps = [
        ctx.own(
            f"add column {table}.{new.name} (renamed from {old.name})",
            [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(new_plain)}"],
            inverse=[f"ALTER TABLE {t} DROP COLUMN IF EXISTS {n}"],
            inverse_acknowledged=added_dropped(table, new.name),
            reason=f"{what}: expand/contract keeps every value and lets old and new code run side by side",
        ),
        ctx.own(
            f"keep {table}.{old.name} and {new.name} equal on every write",
            sync,
            sync_trigger=trigger,
            inverse=unsync,
            inverse_acknowledged=acknowledge(RuleCode.UNANALYSED_STATEMENT, reason=f"undo: {OWN_TRIGGER}"),
            reason="old code writes the old name, new code the new one; the trigger copies each way",
        ),
        Step(
            description=f"backfill {table}.{new.name} from {old.name} in batches",
            phase=Phase.BACKFILL,
            transaction=TransactionMode.AUTOCOMMIT,
            retry=ctx.policy.retry(),
            backfill=Backfill(table, new.name, o, where=f"{n} IS DISTINCT FROM {o}", **fill),  # type: ignore[arg-type]
            inverse_transaction=TransactionMode.AUTOCOMMIT,
            reason="batches sized by time, each its own transaction: row locks on one batch at a time",
        ),
    ]
    if not new.nullable:
        steps.extend(not_null_steps(table, new.name, ctx, "the model says NOT NULL"))
    contract = [*unsync, f"ALTER TABLE {t} DROP COLUMN IF EXISTS {o}"]
    restore = [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(dataclasses.replace(old, nullable=True, default=None))}"]
    if old.default is not None:
        restore.append(f"ALTER TABLE {t} ALTER COLUMN {o} SET DEFAULT {old.default}")
    if new.default is not None:
        contract.append(f"ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {new.default}")
        restore.append(f"ALTER TABLE {t} ALTER COLUMN {n} DROP DEFAULT")
    # The way back, in the contract phase (a split contract revision undoes alone): after the old
    # column is re-created nullable with the sync trigger, its values are copied back in batches,
    # then its NOT NULL comes back through NOT VALID + VALIDATE.
    back = [Step(
        description=f"copy {table}.{new.name} back into {old.name} in batches",
        phase=Phase.CONTRACT, transaction=TransactionMode.AUTOCOMMIT, retry=ctx.policy.retry(),
        backfill=Backfill(table, old.name, n, where=f"{o} IS DISTINCT FROM {n}", **fill),  # type: ignore[arg-type]
    )]
    if not old.nullable:
        back += not_null_steps(table, old.name, ctx, f"{old.name} was NOT NULL")
    steps += [flipped(s, f"{table}.{old.name} back: {s.description}") for s in reversed(back)]
    steps.append(
        ctx.own(
            f"drop the sync trigger and the old column {table}.{old.name}",
            contract,
            phase=Phase.CONTRACT,
            inverse=[*restore, *sync],
            inverse_sync_trigger=trigger,
            acknowledged=(
                *acknowledge(RuleCode.DROP_COLUMN, reason=f"contract phase: deploy code that no longer reads {old.name} first"),
                *acknowledge(RuleCode.UNANALYSED_STATEMENT, reason=f"contract phase: {OWN_TRIGGER} with the old column"),
            ),
            reason="contract: deploy code that uses the new name first; downgrade re-creates the old "
            "column (nullable), copies the values back in batches and restores its NOT NULL",
        )
    )
    return Plan(steps=tuple(steps), notes=tuple(ctx.notes))


def plan_table_rename(
    old: QualifiedName,
    new: QualifiedName,
    version: PgVersion,
    *,
    policy: PlanPolicy | None = None,
) -> Plan:
    """A table renamed from ``old`` to ``new``: rename plus a view under the old name (simple views
    are updatable, so old code keeps reading and writing); the contract phase drops the view.

    Used for both rename strategies: copying a whole table under writes is neither safer nor
    cheaper than a catalog-only rename that a view bridges.
    """
    ctx = new_context(version, None, None, policy)
    o, n = sql_name(old), sql_name(new)
    view = f"CREATE OR REPLACE VIEW {o} AS SELECT * FROM {n}"
    steps = [
        ctx.own(
            f"rename table {old} to {new.name}, with a view under the old name",
            [f"ALTER TABLE {o} RENAME TO {quote_ident(new.name)}", view],
            inverse=[f"DROP VIEW IF EXISTS {o}", f"ALTER TABLE {n} RENAME TO {quote_ident(old.name)}"],
            acknowledged=acknowledge(RuleCode.RENAME_TABLE, reason=f"a view named {old.name} keeps old code working"),
            inverse_acknowledged=acknowledge(RuleCode.RENAME_TABLE, reason=f"undo: {old.name} gets its name back"),
            done_when=f"SELECT to_regclass({quote_literal(n)}) IS NOT NULL",
            reason="catalog-only, ACCESS EXCLUSIVE for a moment; the updatable view keeps old code working",
        ),
        ctx.own(
            f"drop the compatibility view {old}",
            [f"DROP VIEW IF EXISTS {o}"],
            phase=Phase.CONTRACT,
            inverse=[view],
            reason="contract: deploy code that uses the new table name first",
        ),
    ]
    return Plan(steps=tuple(steps))
