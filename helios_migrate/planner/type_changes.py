"""Type changes: catalog-only in place; otherwise expand/contract (a converted copy of the column
kept in sync by a trigger, backfilled in batches, its constraints and indexes carried over, then a
short swap), with the way back planned the same way; in place with the lock stated plainly when
keys, identity, sequences, referencing keys, views or partitioning forbid a copy.  Enum values."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import changes as c
from ..codes import RuleCode
from ..effects import WorkClass
from ..knowledge import effect_of
from ..plan import ConversionCheck, Phase, Step, SyncTrigger, TransactionMode, acknowledge
from ..sqltext import base_type, quote_ident, quote_literal
from .columns import (
    OWN_TRIGGER,
    added_dropped,
    backfill_step,
    batch_key,
    not_null_steps,
    trigger_dropped_with,
)
from .context import PlanningContext, flipped, plans
from .facts import ColumnDependents, ColumnDetails
from .sqlgen import changes_of, column_exists, constraint_exists, index_qname, sql_name, truncate
from .triggers import drop_sync_trigger_statements, row_expression, sync_trigger_statements


def _dependents(ch: c.AlterColumnType, ctx: PlanningContext) -> ColumnDependents:
    return ctx.facts.column_dependents(ch.on, ch.column) if ctx.facts is not None else ColumnDependents()


@plans(c.AlterColumnType)
def _alter_type(ch: c.AlterColumnType, ctx: PlanningContext) -> list[Step]:
    eff = effect_of(ch, ctx.version, ctx.catalog)
    t, col = sql_name(ch.on), quote_ident(ch.column)
    old = ch.old_type or (ctx.catalog.column_type(ch.on, ch.column) if ctx.catalog else None)
    collate = f" COLLATE {quote_ident(ch.collation)}" if ch.collation else ""
    using = f" USING {ch.using}" if ch.using else ""
    if not eff.rewrites_table and eff.work is WorkClass.METADATA:
        deps = _dependents(ch, ctx)
        if deps.view_definitions:
            # Catalog-only, but PostgreSQL refuses to change a column that views use: the views are
            # dropped and re-created around it, in the same short transaction.
            return _in_place_type(ch, old, ctx, deps, rewrites=False)
        in_place = ctx.own(
            f"type of {ch.on}.{ch.column} to {ch.new_type}",
            [f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {ch.new_type}{collate}{using}"],
            inverse=None if old is None else [f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {old}"],
            irreversible_reason=None if old is not None else "the old type is unknown",
            reason=f"{eff.notes[0] if eff.notes else 'no rewrite'}: catalog-only, a moment of ACCESS EXCLUSIVE",
            acknowledged=acknowledge(RuleCode.CHANGE_COLUMN_TYPE_REWRITE, reason=f"{old} to {ch.new_type} is catalog-only: no rewrite"),
            inverse_acknowledged=acknowledge(
                RuleCode.CHANGE_COLUMN_TYPE_REWRITE, reason=f"undo: back to {old}; a narrower type scans or rewrites {ch.on}"
            ),
        )
        if old is not None and _rewrites_back(ch, old, ctx):
            return _in_place_with_way_back(ch, old, in_place, deps, ctx)
        return [in_place]
    return _expand_contract_type(ch, old, ctx)


def _rewrites_back(ch: c.AlterColumnType, old: str, ctx: PlanningContext) -> bool:
    """Does converting the column back to ``old`` rewrite or scan the table?"""
    back = c.AlterColumnType(on=ch.on, column=ch.column, new_type=old, old_type=ch.new_type)
    effect = effect_of(back, ctx.version, ctx.catalog)
    return effect.rewrites_table or effect.work is not WorkClass.METADATA


def _in_place_with_way_back(
    ch: c.AlterColumnType, old: str, in_place: Step, deps: ColumnDependents, ctx: PlanningContext
) -> list[Step]:
    """A catalog-only type change whose reverse rewrites the table (``numeric(10,2)`` widened to
    ``numeric(14,2)``): in place going up, and a reverse expand/contract going down -- the old
    type re-created beside the column, synced, backfilled in batches, swapped back in a short
    transaction, then the converted column dropped.  Only with the column's facts known (its NOT
    NULL, default, indexes and constraints come back with it) and nothing that forbids a copy;
    otherwise the in-place undo stays, with a note saying what it costs."""
    details = ctx.facts.column_details(ch.on, ch.column) if ctx.facts is not None else ColumnDetails()
    if not details.known or deps.blockers or deps.format_type is None:
        why = "; ".join(deps.blockers) or "the column's constraints and indexes are not known here"
        ctx.notes.append(
            f"{ch.on}.{ch.column}: going back to {old} rewrites the table under ACCESS EXCLUSIVE, in place, "
            f"because {why}: run the downgrade when the table is quiet"
        )
        return [in_place]
    t = sql_name(ch.on)
    new_name, old_name = truncate(f"{ch.column}__new"), truncate(f"{ch.column}__old")
    # Done once the swap back happened: the converted column is named <column>__new, or it is
    # gone and the column has its old type again (a re-run after the downgrade finished).
    done = (
        f"SELECT ({column_exists(ch.on, new_name)}) OR (NOT ({column_exists(ch.on, old_name)}) AND EXISTS "
        f"(SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass({quote_literal(sql_name(ch.on))}) "
        f"AND attname = {quote_literal(ch.column)} AND NOT attisdropped "
        f"AND format_type(atttypid, atttypmod) = {quote_literal(deps.format_type)}))"
    )
    way_back = _way_back(
        ch, old, ctx, key=batch_key(ch.on, ctx), not_null=details.not_null, default=details.default,
        indexes=details.indexes, deps=deps, done=done,
    )
    drop_converted = ctx.own(
        f"drop {ch.on}.{new_name}, the {ch.new_type} column the way back replaced",
        [f"ALTER TABLE {t} DROP COLUMN IF EXISTS {quote_ident(new_name)}"],
        acknowledged=acknowledge(RuleCode.DROP_COLUMN, reason=f"undo: {new_name} holds the same values as {ch.column}, "
                                 f"which has its old type {old} again"),
    )
    swap_back = dataclasses.replace(
        in_place,
        inverse=way_back.swap,
        inverse_done_when=way_back.done,
        inverse_acknowledged=(
            *acknowledge(RuleCode.RENAME_COLUMN, reason=f"swap back: {ch.column} takes its old type back by renames"),
            *trigger_dropped_with(way_back.swap, f"swap back: {OWN_TRIGGER} with the renames"),
        ),
        reason=f"{in_place.reason}; the downgrade converts back by expand/contract ({old} rewrites the "
        f"table), never in place under ACCESS EXCLUSIVE",
    )
    return [
        flipped(drop_converted, f"{ch.on}.{ch.column} back to {old}: {drop_converted.description}"),
        swap_back,
        *way_back.steps,
    ]


def _expand_contract_type(ch: c.AlterColumnType, old: str | None, ctx: PlanningContext) -> list[Step]:
    """New column + sync trigger + backfill now; the swap in a later contract phase."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    new_name = truncate(f"{ch.column}__new")
    new = quote_ident(new_name)
    convert = row_expression(ch.using, ch.column) if ch.using else f"NEW.{col}"
    expr = ch.using or col
    deps = _dependents(ch, ctx)
    if deps.blockers:
        return _in_place_type(ch, old, ctx, deps)
    # An explicit cast to the type without its modifier, then assignment to the column: a value
    # too long for varchar(n) is an error (as in a plain ALTER COLUMN TYPE), never truncated.
    base = base_type(ch.new_type)
    sync = SyncTrigger(ch.on, truncate(f"{ch.on.name}_{ch.column}_sync"), ch.column, new_name, f"({convert})::{base}")
    trig, unsync = quote_ident(sync.name), drop_sync_trigger_statements(sync)
    details = ctx.facts.column_details(ch.on, ch.column) if ctx.facts is not None else ColumnDetails()
    not_null, default, indexes = details.not_null, details.default, details.indexes
    key = batch_key(ch.on, ctx)
    rebuilt: list[Step] = []
    swap_extra: list[str] = []
    for name, definition in indexes:
        new_ix = truncate(f"{name}__new")
        sql = _index_on_copy(definition, new_ix, col, new)
        rebuilt.append(Step(
            description=f"build index {new_ix} on {ch.on}.{new_name} concurrently (replaces {name})",
            phase=Phase.EXPAND, sql=(sql,), changes=changes_of([sql]), transaction=TransactionMode.AUTOCOMMIT,
            inverse=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(index_qname(ch.on, new_ix))}",),
            inverse_transaction=TransactionMode.AUTOCOMMIT, index=index_qname(ch.on, new_ix),
            inverse_retry=ctx.policy.retry(statement_timeout=False),
            reason=f"the converted column needs the index {name} has on {ch.column} before the swap",
        ))
        swap_extra.append(f"ALTER INDEX IF EXISTS {sql_name(index_qname(ch.on, new_ix))} RENAME TO {quote_ident(name)}")
    if not_null:
        rebuilt[:0] = not_null_steps(ch.on, new_name, ctx, f"{ch.column} is NOT NULL")
    if default is not None:
        swap_extra.append(f"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT {default}")
    carried = _carry_constraints(ch, deps, new, ctx)
    rebuilt += carried.steps
    swap_extra += carried.swap
    check = [] if _always_converts(old, ch.new_type) or ch.using else [Step(
        description=f"check that every value of {ch.on}.{ch.column} converts to {ch.new_type}",
        phase=Phase.EXPAND,
        transaction=TransactionMode.AUTOCOMMIT,
        conversion_check=ConversionCheck(ch.on, ch.column, ch.new_type, tuple(key)),
        reason="reads only; refuses before anything changes, naming the rows that do not fit",
    )]
    undo_expand = (*unsync, f"ALTER TABLE {t} DROP COLUMN IF EXISTS {new}")
    way_back = None if old is None else _way_back(
        ch, old, ctx, key=tuple(key), not_null=not_null, default=default, indexes=indexes, deps=deps
    )
    backfill = dataclasses.replace(
        backfill_step(ch.on, new_name, f"({expr})::{base}", ctx, where=f"{new} IS DISTINCT FROM ({expr})::{base}"),
        on_failure=undo_expand,
        on_failure_description=f"dropped the sync trigger {trig} on {ch.on}, its function and the new column "
        f"{new_name}",
    )
    ctx.notes.append(
        f"{ch.on}.{ch.column} moves to the end of the table's columns with the swap: code that inserts "
        f"without a column list (INSERT INTO {ch.on.name} VALUES (...)) or reads SELECT * by position "
        "must name its columns first"
    )
    swap_statements = [
        *unsync,
        f"ALTER TABLE {t} DROP COLUMN {col}",
        f"ALTER TABLE {t} RENAME COLUMN {new} TO {col}",
        *swap_extra,
    ]
    steps = [
        *check,
        ctx.own(
            f"add column {ch.on}.{new_name} of type {ch.new_type}",
            [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {new} {ch.new_type}"],
            inverse=[f"ALTER TABLE {t} DROP COLUMN IF EXISTS {new}"],
            inverse_acknowledged=added_dropped(ch.on, new_name),
            reason=f"changing the type in place rewrites the table under ACCESS EXCLUSIVE ({ch.column}: "
            f"{old or '?'} -> {ch.new_type}): expand/contract instead",
        ),
        ctx.own(
            f"keep {ch.on}.{new_name} in sync with {ch.column} on every write",
            sync_trigger_statements(sync),
            sync_trigger=sync,
            inverse=unsync,
            inverse_acknowledged=acknowledge(RuleCode.UNANALYSED_STATEMENT, reason=f"undo: {OWN_TRIGGER}"),
            reason="writes by running code reach the new column while the backfill runs",
        ),
        backfill,
        *rebuilt,
        ctx.own(
            f"swap {ch.on}.{ch.column} for the converted column",
            swap_statements,
            phase=Phase.CONTRACT,
            done_when=f"SELECT NOT ({column_exists(ch.on, new_name)[7:]})",
            inverse=None if way_back is None else way_back.swap,
            inverse_done_when=None if way_back is None else way_back.done,
            acknowledged=(
                *acknowledge(RuleCode.RENAME_COLUMN, RuleCode.DROP_COLUMN, reason=f"swap: {new_name}, this plan's converted copy, "
                             f"takes the name {ch.column}; deploy code that works with the new type first"),
                *trigger_dropped_with(swap_statements, f"swap: {OWN_TRIGGER} with the renames"),
            ),
            inverse_acknowledged=() if way_back is None else (
                *acknowledge(RuleCode.RENAME_COLUMN, reason=f"swap back: {ch.column} takes its old type back by renames"),
                *trigger_dropped_with(way_back.swap, f"swap back: {OWN_TRIGGER} with the renames"),
            ),
            irreversible_reason=None if way_back is not None else "the old type is unknown",
            reason="contract: indexes, defaults and NOT NULL of the old column must be re-created "
            "for the new one; deploy code that works with the new type first",
        ),
        *(way_back.steps if way_back is not None else ()),
    ]
    if deps.format_type is None:
        return steps
    # Once the swap is done, a re-run (after a later step of the revision failed) must not start
    # the expand phase again on the swapped column.
    swapped = (
        f"SELECT NOT ({column_exists(ch.on, new_name)[7:]}) AND EXISTS (SELECT 1 FROM pg_attribute "
        f"WHERE attrelid = to_regclass({quote_literal(sql_name(ch.on))}) AND attname = {quote_literal(ch.column)} "
        f"AND NOT attisdropped AND format_type(atttypid, atttypmod) <> {quote_literal(deps.format_type)})"
    )
    return [
        s if s.phase is Phase.CONTRACT else dataclasses.replace(s, done_when=_either(swapped, s.done_when))
        for s in steps
    ]


def _index_on_copy(definition: str, name: str, column: str, copy: str) -> str:
    """``CREATE INDEX CONCURRENTLY IF NOT EXISTS name`` as ``definition`` (``pg_get_indexdef``), on
    the column's copy ``copy`` instead of ``column`` (both SQL text)."""
    head, _, tail = definition.partition(" USING ")
    unique = "UNIQUE " if head.startswith("CREATE UNIQUE ") else ""
    sql = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON ",
                 f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(name)} ON ", head)
    # pg_get_indexdef() spells the column as quote_ident() does.
    return sql + " USING " + _renamed(tail, column, copy)


def _renamed(text: str, column: str, copy: str) -> str:
    """``text`` with the column ``column`` (as SQL text) replaced by ``copy``."""
    return re.sub(rf'(?<![\w"$]){re.escape(column)}(?![\w"$])', lambda _: copy, text)


def _either(first: str, second: str | None) -> str:
    """A ``done_when`` true when either ``SELECT`` is."""
    return first if second is None else f"SELECT ({first}) OR ({second})"


@dataclass(frozen=True)
class _WayBack:
    """The downgrade of a type change's swap: an expand/contract in reverse."""

    steps: tuple[Step, ...]
    """No SQL going up; their inverses (run in reverse order, before the swap's inverse) re-create
    the old column beside the converted one: check, add, sync trigger, backfill, constraints and
    indexes."""
    swap: tuple[str, ...]
    """The swap back: catalog-only statements in one short transaction."""
    done: str
    """True once the swap back is done (the converted column is named ``<column>__new`` again)."""


def _way_back(
    ch: c.AlterColumnType,
    old: str,
    ctx: PlanningContext,
    *,
    key: tuple[str, ...],
    not_null: bool,
    default: str | None,
    indexes: Sequence[tuple[str, str]],
    deps: ColumnDependents,
    done: str | None = None,
) -> _WayBack:
    """The reverse expand/contract of a type change: values that do not convert back are refused
    first (naming the rows); then the old column is re-added nullable beside the converted one,
    kept in sync by a trigger, backfilled in time-bounded batches, given its NOT NULL, CHECK and
    FOREIGN KEY constraints (NOT VALID + VALIDATE) and indexes (concurrently), and the swap back
    is catalog-only.  Nothing is lost, so no opt-in is needed; no table-wide UPDATE runs under a
    table lock."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    new_name = truncate(f"{ch.column}__new")
    new = quote_ident(new_name)
    old_name = truncate(f"{ch.column}__old")
    oq = quote_ident(old_name)
    old_base = base_type(old)
    sync = SyncTrigger(ch.on, truncate(f"{ch.on.name}_{ch.column}_back"), ch.column, old_name, f"(NEW.{col})::{old_base}")
    unsync = drop_sync_trigger_statements(sync)
    done = done or f"SELECT {column_exists(ch.on, new_name)[7:]}"

    def once(step: Step) -> Step:
        own = step.done_when
        return dataclasses.replace(step, done_when=done if own is None else f"SELECT ({done}) OR ({own})")

    back = f"({col})::{old_base}"
    undo = (*unsync, f"ALTER TABLE {t} DROP COLUMN IF EXISTS {oq}")
    down: list[Step] = []
    if not _always_converts(ch.new_type, old):
        down.append(Step(
            description=f"check that every value of {ch.on}.{ch.column} converts back to {old}",
            phase=Phase.CONTRACT, transaction=TransactionMode.AUTOCOMMIT,
            conversion_check=ConversionCheck(ch.on, ch.column, old, key),
        ))
    down += [
        ctx.own(f"add column {ch.on}.{old_name} of type {old}", [f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {oq} {old}"]),
        ctx.own(
            f"keep {ch.on}.{old_name} in sync with {ch.column} on every write",
            sync_trigger_statements(sync),
            sync_trigger=sync,
        ),
        dataclasses.replace(
            backfill_step(ch.on, old_name, back, ctx, where=f"{oq} IS DISTINCT FROM {back}"),
            on_failure=undo,
            on_failure_description=f"dropped the sync trigger {sync.name} on {ch.on}, its function and the "
            f"column {old_name}",
        ),
    ]
    if not_null:
        down += not_null_steps(ch.on, old_name, ctx, f"{ch.column} was NOT NULL")
    swap: list[str] = [*unsync]
    renames: list[str] = []
    for name, definition in indexes:
        temp = truncate(f"{name}__old")
        sql = _index_on_copy(definition, temp, col, oq)
        down.append(Step(
            description=f"build index {temp} on {ch.on}.{old_name} concurrently (for {name})",
            phase=Phase.CONTRACT, sql=(sql,), transaction=TransactionMode.AUTOCOMMIT,
            index=index_qname(ch.on, temp),
        ))
        renames += [
            f"ALTER INDEX IF EXISTS {sql_name(index_qname(ch.on, name))} RENAME TO {quote_ident(truncate(f'{name}__new'))}",
            f"ALTER INDEX IF EXISTS {sql_name(index_qname(ch.on, temp))} RENAME TO {quote_ident(name)}",
        ]

    def on_old(text: str) -> str:
        return _renamed(text, col, oq)

    for name, definition in (*deps.checks, *deps.foreign_keys):
        temp = truncate(f"{name}__old")
        body = definition.removesuffix(" NOT VALID")
        head, sep, tail = body.partition(" REFERENCES ")
        qt = quote_ident(temp)
        down += [
            ctx.own(
                f"constraint {temp} on {ch.on}.{old_name}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qt} {on_old(head) + sep + tail} NOT VALID"],
                done_when=constraint_exists(ch.on, temp),
            ),
            ctx.own(
                f"validate {temp} on {ch.on}", [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qt}"], scan=True,
                on_failure=(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qt}",),
                on_failure_description=f"dropped the NOT VALID constraint {temp} (rows violate it)",
            ),
        ]
        renames += [
            f"ALTER TABLE {t} RENAME CONSTRAINT {quote_ident(name)} TO {quote_ident(truncate(f'{name}__new'))}",
            f"ALTER TABLE {t} RENAME CONSTRAINT {qt} TO {quote_ident(name)}",
        ]
    for name, columns in deps.uniques:
        temp = truncate(f"{name}__old")
        cols = ", ".join(oq if c_ == ch.column else quote_ident(c_) for c_ in columns)
        down.append(Step(
            description=f"build unique index {temp} on {ch.on}.{old_name} concurrently (for {name})",
            phase=Phase.CONTRACT, transaction=TransactionMode.AUTOCOMMIT, index=index_qname(ch.on, temp),
            sql=(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(temp)} ON {t} ({cols})",),
        ))
        swap.append(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {quote_ident(name)}")
        renames.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} UNIQUE USING INDEX {quote_ident(temp)}")
    swap += [f"ALTER TABLE {t} RENAME COLUMN {col} TO {new}", f"ALTER TABLE {t} RENAME COLUMN {oq} TO {col}"]
    if default is not None:
        swap += [f"ALTER TABLE {t} ALTER COLUMN {new} DROP DEFAULT", f"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT {default}"]
    if not_null:
        # Code of the old version inserts without the converted column: it must accept NULL.
        swap.append(f"ALTER TABLE {t} ALTER COLUMN {new} DROP NOT NULL")
    swap += renames
    steps = [flipped(once(s), f"{ch.on}.{ch.column} back to {old}: {s.description}") for s in down]
    return _WayBack(steps=tuple(reversed(steps)), swap=tuple(swap), done=done)


_WIDENINGS = {
    ("smallint", "integer"), ("smallint", "bigint"), ("integer", "bigint"),
    ("real", "double precision"), ("date", "timestamp with time zone"),
}


def _always_converts(old: str | None, new: str) -> bool:
    """Conversions no value can fail (the check's scan is skipped for them)."""
    if old is None:
        return False
    aliases = {"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint",
               "float8": "double precision", "float4": "real", "timestamptz": "timestamp with time zone"}
    a, b = (aliases.get(x.strip().lower(), x.strip().lower()) for x in (old, new))
    return (a, b) in _WIDENINGS or b == "text" or a == b


def _in_place_type(
    ch: c.AlterColumnType, old: str | None, ctx: PlanningContext, deps: ColumnDependents, *, rewrites: bool = True
) -> list[Step]:
    """A type change that a converted copy cannot take over: in place, the lock stated plainly."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    using = f" USING {ch.using}" if ch.using else ""
    why = "; ".join(deps.blockers)
    # PostgreSQL refuses to change the type of a column a view uses: the views are dropped and
    # re-created, with their options and grants, in the same short transaction.
    views = deps.view_definitions
    drops = [v.drop for v in reversed(views)]
    creates = [statement for v in views for statement in v.create]
    sql = [*drops, f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {ch.new_type}{using}", *creates]
    if deps.owned_sequence and base_type(ch.new_type).lower() in ("bigint", "int8") and deps.sequence_type != "bigint":
        # A serial's sequence stays AS integer when its column is widened: it would still end at 2^31.
        sql.append(f"ALTER SEQUENCE {deps.owned_sequence} AS bigint")
    if any(v.materialized for v in views):
        ctx.notes.append(
            f"{ch.on}.{ch.column}: the materialized view(s) "
            f"{', '.join(v.name for v in views if v.materialized)} are re-created and filled again in the "
            "same transaction, under the same lock"
        )
    if rewrites:
        ctx.notes.append(
            f"{ch.on}.{ch.column}: the type change runs in place -- it rewrites the table under ACCESS "
            f"EXCLUSIVE, blocking reads and writes while it runs -- because {why}: a converted copy "
            "could not take over keys, sequences, referencing keys or views without dropping them. Run "
            "it when the table is quiet, or raise statement_timeout for this step on a large table."
        )
    else:
        ctx.notes.append(
            f"{ch.on}.{ch.column}: catalog-only type change; {why}, so they are dropped and re-created "
            "around it in the same short transaction (a moment of ACCESS EXCLUSIVE)"
        )
    return [
        ctx.own(
            f"type of {ch.on}.{ch.column} to {ch.new_type}, in place",
            sql,
            # USING: going back may need an explicit cast (text -> integer has no automatic one).
            inverse=None if old is None else [
                *drops, f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {old} USING {col}::{old}", *creates
            ],
            irreversible_reason=None if old is not None else "the old type is unknown",
            reason=f"in place because {why}" + (" (rewrites the table under ACCESS EXCLUSIVE)" if rewrites else " (catalog-only)"),
        )
    ]


@dataclass(frozen=True)
class _Carried:
    steps: list[Step]
    swap: list[str]
    unswap: list[str]
    restore: list[str]


def _carry_constraints(ch: c.AlterColumnType, deps: ColumnDependents, new: str, ctx: PlanningContext) -> _Carried:
    """CHECK, UNIQUE and FOREIGN KEY constraints of the old column, built on the converted one
    (NOT VALID + VALIDATE, or a unique index built concurrently) and renamed by the swap."""
    t, col = sql_name(ch.on), quote_ident(ch.column)
    steps: list[Step] = []
    swap: list[str] = []
    unswap: list[str] = []
    restore: list[str] = []

    def on_new(text: str) -> str:
        return _renamed(text, col, new)

    def validated(name: str, definition: str, what: str) -> None:
        temp = truncate(f"{name}__new")
        qt, drop = quote_ident(temp), f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {quote_ident(temp)}"
        steps.append(ctx.own(
            f"{what} {temp} on {ch.on}.{new}, not yet checked for existing rows",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qt} {definition} NOT VALID"],
            inverse=[drop], done_when=constraint_exists(ch.on, temp),
            reason=f"the converted column keeps {name}; NOT VALID holds the lock for a moment only",
        ))
        steps.append(ctx.own(
            f"validate {temp} on {ch.on}", [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qt}"], scan=True,
            reason="VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on",
            on_failure=(drop,),
            on_failure_description=f"dropped the NOT VALID constraint {temp} (existing rows violate it)",
        ))
        swap.append(f"ALTER TABLE {t} RENAME CONSTRAINT {qt} TO {quote_ident(name)}")
        unswap.append(f"ALTER TABLE {t} RENAME CONSTRAINT {quote_ident(name)} TO {qt}")

    for name, definition in deps.checks:
        body = definition.removesuffix(" NOT VALID")
        validated(name, on_new(body), "CHECK")
        restore.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} {body}")
    for name, definition in deps.foreign_keys:
        body = definition.removesuffix(" NOT VALID")
        head, sep, tail = body.partition(" REFERENCES ")
        validated(name, on_new(head) + sep + tail, "FOREIGN KEY")
        restore.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} {body}")
    for name, columns in deps.uniques:
        temp = truncate(f"{name}__new")
        cols = ", ".join(new if c_ == ch.column else quote_ident(c_) for c_ in columns)
        index = index_qname(ch.on, temp)
        sql = f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(temp)} ON {t} ({cols})"
        steps.append(Step(
            description=f"build unique index {temp} on {ch.on}.{new} concurrently (for {name})",
            phase=Phase.EXPAND, sql=(sql,), changes=changes_of([sql]), transaction=TransactionMode.AUTOCOMMIT,
            inverse=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(index)}",),
            inverse_transaction=TransactionMode.AUTOCOMMIT, index=index,
            reason=f"the converted column keeps the UNIQUE constraint {name}; the swap adopts this index",
        ))
        swap.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} UNIQUE USING INDEX {quote_ident(temp)}")
        unswap.append(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {quote_ident(name)}")
        original = ", ".join(quote_ident(c_) for c_ in columns)
        restore.append(f"ALTER TABLE {t} ADD CONSTRAINT {quote_ident(name)} UNIQUE ({original})")
    return _Carried(steps, swap, unswap, restore)


@plans(c.AddEnumValue)
def _add_enum_value(ch: c.AddEnumValue, ctx: PlanningContext) -> list[Step]:
    where = ""
    if ch.before:
        where = f" BEFORE {quote_literal(ch.before)}"
    elif ch.after:
        where = f" AFTER {quote_literal(ch.after)}"
    sql = f"ALTER TYPE {sql_name(ch.name)} ADD VALUE IF NOT EXISTS {quote_literal(ch.value)}{where}"
    return [
        Step(
            description=f"add value {ch.value!r} to enum {ch.name}",
            phase=Phase.EXPAND,
            sql=(sql,),
            changes=changes_of([sql]),
            transaction=TransactionMode.AUTOCOMMIT,
            retry=ctx.policy.retry(),
            inverse=None,
            irreversible_reason="PostgreSQL cannot remove a value from an enum type",
            reason="a new enum value cannot be used in the transaction that adds it: committed on its own",
        )
    ]
