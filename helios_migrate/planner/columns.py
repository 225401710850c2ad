"""Columns and tables: NOT NULL without a long lock, adding a column (nullable first, a default
for new rows, a batched backfill, then NOT NULL), dropping a column or a table in the contract
phase, and the backfill step the type changes and renames share."""

from __future__ import annotations

from collections.abc import Sequence

from .. import changes as c
from ..changes import QualifiedName
from ..codes import RuleCode
from ..effects import WorkClass
from ..knowledge import effect_of
from ..plan import Acknowledgement, Backfill, Phase, Step, TransactionMode, acknowledge
from ..sqltext import default_object_name, quote_ident, quote_literal
from .context import PlanningContext, as_written, plans, refusal
from .facts import ColumnDetails
from .sqlgen import column_sql, constraint_exists, sql_name


def not_null_steps(table: QualifiedName, column: str, ctx: PlanningContext, why: str) -> list[Step]:
    """NOT NULL on an existing column without holding ACCESS EXCLUSIVE during the scan."""
    t, col = sql_name(table), quote_ident(column)
    name = default_object_name(table.name, [column], "not_null")
    qn = quote_ident(name)
    if ctx.version.major >= 18:
        return [
            ctx.own(
                f"NOT NULL on {table}.{column}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} NOT NULL {col} NOT VALID"],
                inverse=[f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL"],
                inverse_acknowledged=nullable_again(table, column),
                done_when=constraint_exists(table, name),
                reason=f"{why}; NOT VALID takes ACCESS EXCLUSIVE for a moment only (PostgreSQL 18)",
            ),
            ctx.own(
                f"validate NOT NULL on {table}.{column}",
                [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
                scan=True,
                reason="VALIDATE scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on",
                on_failure=(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}",),
                on_failure_description=f"dropped the NOT VALID constraint {name} (rows with NULL in "
                f"{table}.{column} exist; the column stays nullable)",
            ),
        ]
    return [
        ctx.own(
            f"CHECK ({column} IS NOT NULL) on {table}, not yet checked for existing rows",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qn} CHECK ({col} IS NOT NULL) NOT VALID"],
            inverse=[f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}"],
            done_when=constraint_exists(table, name),
            reason=f"{why}; NOT VALID takes ACCESS EXCLUSIVE for a moment only",
        ),
        ctx.own(
            f"validate CHECK ({column} IS NOT NULL) on {table}",
            [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
            scan=True,
            reason="VALIDATE scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on",
            on_failure=(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}",),
            on_failure_description=f"dropped the NOT VALID constraint {name} (rows with NULL in "
            f"{table}.{column} exist; the column stays nullable)",
        ),
        ctx.own(
            f"SET NOT NULL on {table}.{column} (proved by the CHECK: no scan), drop the CHECK",
            [
                f"ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL",
                f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}",
            ],
            inverse=[f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL"],
            inverse_acknowledged=nullable_again(table, column),
            reason="a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan (PostgreSQL 12+)",
        ),
    ]


def nullable_again(table: QualifiedName, column: str) -> tuple[Acknowledgement, ...]:
    return acknowledge(RuleCode.DROP_NOT_NULL, reason=f"undo: {table}.{column} was nullable before this revision")


def added_dropped(table: QualifiedName, column: str) -> tuple[Acknowledgement, ...]:
    return acknowledge(RuleCode.DROP_COLUMN, reason=f"undo: drops {table}.{column}, which this revision added")


OWN_TRIGGER = "the plan's own sync trigger and its function, dropped in one short transaction"


def trigger_dropped_with(statements: Sequence[str], reason: str) -> tuple[Acknowledgement, ...]:
    """What a step that drops the plan's sync trigger meets on purpose: the function's drop is a
    statement ``check`` does not analyse (HM903); renaming or adopting an index in the same short
    transaction locks the index while the table's lock is held (HM403)."""
    other = any(s.startswith("ALTER INDEX") or " USING INDEX " in s for s in statements)
    codes = (RuleCode.LOCK_HELD_ACROSS_STATEMENTS,) if other else ()
    return acknowledge(*codes, RuleCode.UNANALYSED_STATEMENT, reason=reason)


@plans(c.SetNotNull)
def _set_not_null(ch: c.SetNotNull, ctx: PlanningContext) -> list[Step]:
    return not_null_steps(ch.on, ch.column, ctx, "SET NOT NULL alone would scan every row under ACCESS EXCLUSIVE")


# --- columns ------------------------------------------------------------------------------------


@plans(c.AddColumn)
def _add_column(ch: c.AddColumn, ctx: PlanningContext) -> list[Step]:
    col = ch.column
    t = sql_name(ch.on)
    eff = effect_of(ch, ctx.version, ctx.catalog)
    drop = f"ALTER TABLE {t} DROP COLUMN IF EXISTS {quote_ident(col.name)}"
    has_rows = ctx.has_rows(ch.on)
    plain = eff.work is WorkClass.METADATA and not eff.rewrites_table
    if plain or (not has_rows and not eff.rewrites_table and col.nullable):
        return [
            ctx.own(
                f"add column {ch.on}.{col.name}",
                [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(col)}"],
                inverse=[drop],
                inverse_acknowledged=added_dropped(ch.on, col.name),
                reason="catalog-only change: ACCESS EXCLUSIVE for a moment, in a short transaction",
            )
        ]
    if col.identity is not None or col.generated is not None or col.type in {"serial", "bigserial", "smallserial"}:
        ctx.notes.append(
            f"{ch.on}.{col.name}: identity, serial and generated columns are added as written "
            "(they fill every row): consider a plain column with a sequence default and a backfill"
        )
        return [as_written(ch, ctx)]
    steps = [
        ctx.own(
            f"add column {ch.on}.{col.name} as nullable, without a default",
            [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(col, nullable=True, default=False)}"],
            inverse=[drop],
            inverse_acknowledged=added_dropped(ch.on, col.name),
            reason=(
                "adding it "
                + ("with a volatile default rewrites the table" if eff.rewrites_table else "NOT NULL scans the table")
                + " under ACCESS EXCLUSIVE; a nullable column without a default is catalog-only"
            ),
        )
    ]
    if col.default is not None:
        steps.append(
            ctx.own(
                f"default {col.default} for new rows of {ch.on}",
                [f"ALTER TABLE {t} ALTER COLUMN {quote_ident(col.name)} SET DEFAULT {col.default}"],
                reason="new rows get the default from now on; existing rows are backfilled next",
            )
        )
    if has_rows:
        steps.append(backfill_step(ch.on, col.name, col.default, ctx))
    if not col.nullable:
        steps.extend(not_null_steps(ch.on, col.name, ctx, "the model says NOT NULL"))
    return steps


def backfill_step(
    table: QualifiedName, column: str, expression: str | None, ctx: PlanningContext, *, where: str | None = None
) -> Step:
    fill = Backfill(
        table=table,
        column=column,
        expression=expression or "",
        key=batch_key(table, ctx),
        where=where,
        batch_size=ctx.policy.batch_size,
        pause_ms=ctx.policy.pause_ms,
    )
    if expression is None:
        ctx.notes.append(
            f"{table}.{column}: NOT NULL without a server_default: existing rows need a value; "
            "fill in the backfill expression in the revision"
        )
    return Step(
        description=f"backfill {table}.{column} in batches",
        phase=Phase.BACKFILL,
        transaction=TransactionMode.AUTOCOMMIT,
        retry=ctx.policy.retry(),
        backfill=fill,
        reason=(
            f"batches of {ctx.policy.batch_size} rows by primary key, each its own transaction, "
            f"{ctx.policy.pause_ms} ms apart: row locks on one batch at a time, never a table lock"
        ),
    )


@plans(c.DropColumn)
def _drop_column(ch: c.DropColumn, ctx: PlanningContext) -> list[Step]:
    t = sql_name(ch.on)
    restore = [r for r in ctx.recreate.get(ch, ()) if isinstance(r, c.AddColumn)]
    inverse: tuple[str, ...] | None = None
    if restore:
        col = restore[0].column
        inverse = (f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {column_sql(col, nullable=True)}",)
    details = ctx.facts.column_details(ch.on, ch.column) if ctx.facts is not None else ColumnDetails()
    expand: list[Step] = []
    if details.not_null and details.default is None:
        # Code deployed before the contract no longer writes the column: while it still exists,
        # NOT NULL without a default would refuse every insert of that code.
        expand.append(ctx.own(
            f"let {ch.on}.{ch.column} be NULL until it is dropped",
            [f"ALTER TABLE {t} ALTER COLUMN {quote_ident(ch.column)} DROP NOT NULL"],
            inverse=(),
            # Done once the column is nullable -- or gone: a re-run after the drop skips it.
            done_when=(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = "
                f"to_regclass({quote_literal(sql_name(ch.on))}) AND attname = {quote_literal(ch.column)} "
                "AND NOT attisdropped AND attnotnull)"
            ),
            reason="expand: code that no longer writes the column can insert before the contract drops it",
            acknowledged=acknowledge(
                RuleCode.DROP_NOT_NULL, reason=f"the column is dropped in the contract phase; inserts without {ch.column} must work until then"
            ),
        ))
    return [
        *expand,
        ctx.own(
            f"drop column {ch.on}.{ch.column}",
            [f"ALTER TABLE {t} DROP COLUMN IF EXISTS {quote_ident(ch.column)}"],
            phase=Phase.CONTRACT,
            inverse=inverse,
            irreversible_reason=f"the values of {ch.on}.{ch.column} are gone; downgrade re-creates the column empty"
            + ("" if restore else " (its definition is unknown here)"),
            inverse_loses_data=inverse is not None,
            reason="contract: deploy code that no longer reads or writes the column first",
            acknowledged=acknowledge(
                RuleCode.DROP_COLUMN, reason=f"contract phase: deploy code that no longer reads {ch.column} first"
            ),
        )
    ]


@plans(c.DropTable)
def _drop_table(ch: c.DropTable, ctx: PlanningContext) -> list[Step]:
    return [
        ctx.own(
            f"drop table {ch.on}",
            [f"DROP TABLE IF EXISTS {sql_name(ch.on)}"],
            phase=Phase.CONTRACT,
            inverse=None,
            irreversible_reason=f"the rows of {ch.on} are gone",
            reason="contract: deploy code that no longer uses the table first",
        )
    ]


def batch_key(table: QualifiedName, ctx: PlanningContext) -> tuple[str, ...]:
    """The columns a batched backfill of ``table`` walks: its primary key, else a unique index on
    NOT NULL columns.  A table known to have neither is refused: batches cannot be bounded."""
    if ctx.facts is None:
        return ("id",)
    key = ctx.facts.batch_key(table)
    if key:
        return tuple(key)
    if key is not None:
        raise refusal(
            f"{table} has no primary key and no unique index on NOT NULL columns, so its rows "
            "cannot be updated in bounded batches. Add one first, in a revision of its own: a "
            f"UNIQUE index built concurrently on NOT NULL columns (CREATE UNIQUE INDEX CONCURRENTLY "
            f"... ON {table} (...)) or a primary key; then run autogenerate again"
        )
    ctx.notes.append(f"{table}: no primary key known; the backfill assumes a key column id")
    return ("id",)
