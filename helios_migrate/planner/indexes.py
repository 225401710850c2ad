"""Indexes built and dropped without blocking writes: CONCURRENTLY in autocommit, and on a
partitioned table (where CONCURRENTLY is refused) partition by partition under an index ON ONLY
the parent."""

from __future__ import annotations

import dataclasses

from .. import changes as c
from ..changes import QualifiedName
from ..plan import Phase, Step, TransactionMode
from ..sqltext import quote_literal
from .context import PlanningContext, as_written, plans
from .sqlgen import (
    change_sql,
    changes_of,
    create_index_sql,
    index_name,
    index_qname,
    sql_name,
    truncate,
)


def create_index_step(ix: c.CreateIndex, name: str, ctx: PlanningContext, *, reason: str = "") -> Step:
    qname = index_qname(ix.on, name)
    sql = create_index_sql(ix, name, concurrently=True)
    return Step(
        description=f"build index {name} on {ix.on} concurrently",
        phase=Phase.EXPAND,
        sql=(sql,),
        changes=changes_of([sql]),
        transaction=TransactionMode.AUTOCOMMIT,
        inverse=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(qname)}",),
        inverse_transaction=TransactionMode.AUTOCOMMIT,
        index=qname,
        reason=reason or "CONCURRENTLY builds without blocking writes; it cannot run in a transaction",
        inverse_retry=ctx.policy.retry(statement_timeout=False),
    )


@plans(c.CreateIndex)
def _create_index(ch: c.CreateIndex, ctx: PlanningContext) -> list[Step]:
    name = ch.name or index_name(ch.on, ch.columns)
    return index_steps(ch, name, ctx)


def partitions_of(table: QualifiedName, ctx: PlanningContext) -> tuple[QualifiedName, ...] | None:
    """The partitions of ``table`` when it is partitioned (``None``: not partitioned, or unknown)."""
    return ctx.facts.partitions(table) if ctx.facts is not None else None


def index_steps(ix: c.CreateIndex, name: str, ctx: PlanningContext, *, reason: str = "") -> list[Step]:
    """The index built without blocking writes; on a partitioned table (where CONCURRENTLY is
    refused) as PostgreSQL documents it: an index ON ONLY the parent, each partition's index built
    concurrently, then attached -- the parent's index is valid once every partition has one."""
    partitions = partitions_of(ix.on, ctx)
    if not partitions:
        return [create_index_step(ix, name, ctx, reason=reason)]
    qname = index_qname(ix.on, name)
    parent = create_index_sql(ix, name, concurrently=False, only=True)
    valid = (
        "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = "
        f"to_regclass({quote_literal(sql_name(qname))}) AND indisvalid)"
    )
    steps = [
        ctx.own(
            f"index {name} on only the partitioned table {ix.on} (valid once every partition has one)",
            [parent],
            inverse=[f"DROP INDEX IF EXISTS {sql_name(qname)}"],
            done_when=valid,
            reason="ON ONLY builds nothing: the partitions' indexes are built concurrently next",
        )
    ]
    attach = []
    for number, part in enumerate(partitions, start=1):
        part_name = truncate(f"{name}_p{number}")
        part_ix = dataclasses.replace(ix, on=part, name=part_name)
        steps.append(dataclasses.replace(
            create_index_step(part_ix, part_name, ctx, reason=f"partition {part} of {ix.on}"),
            done_when=valid, inverse=(),
        ))
        attach.append(f"ALTER INDEX {sql_name(qname)} ATTACH PARTITION {sql_name(index_qname(part, part_name))}")
    steps.append(ctx.own(
        f"attach the partitions' indexes to {name}", attach, done_when=valid,
        reason="attaching takes a moment's lock on each index; the parent index becomes valid",
    ))
    ctx.notes.append(
        f"{ix.on} is partitioned: its index is built partition by partition "
        f"({len(partitions)} partition(s) known now; partitions added later get it automatically)"
    )
    return steps


@plans(c.DropIndex)
def _drop_index(ch: c.DropIndex, ctx: PlanningContext) -> list[Step]:
    restore = [r for r in ctx.recreate.get(ch, ()) if isinstance(r, c.CreateIndex)]
    inverse: tuple[str, ...] | None = None
    inverse_index = None
    if restore:
        ix = restore[0]
        name = ix.name or ch.index.name
        inverse = (create_index_sql(ix, name, concurrently=True),)
        inverse_index = index_qname(ix.on, name)
    table = restore[0].on if restore else (ctx.catalog.index_table(ch.index) if ctx.catalog is not None else None)
    if table is not None and partitions_of(table, ctx):
        # DROP INDEX CONCURRENTLY is refused on a partitioned index: a plain drop, in a short
        # transaction with lock_timeout (it takes ACCESS EXCLUSIVE on the parent and each partition
        # for the moment of the catalog change), rebuilt partition by partition on the way back.
        # The way back builds it again in one statement (it blocks writes while it builds).
        rebuild = [create_index_sql(restore[0], ch.index.name, concurrently=False)] if restore else None
        return [
            ctx.own(
                f"drop index {ch.index} of the partitioned table {table}",
                [f"DROP INDEX IF EXISTS {sql_name(ch.index)}"],
                phase=Phase.CONTRACT,
                inverse=rebuild,
                irreversible_reason=None if rebuild else "the index definition is unknown",
                reason="CONCURRENTLY is refused on a partitioned index: ACCESS EXCLUSIVE for a moment",
            )
        ]
    return [
        Step(
            description=f"drop index {ch.index} concurrently",
            phase=Phase.CONTRACT,
            sql=(f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(ch.index)}",),
            changes=changes_of([f"DROP INDEX CONCURRENTLY IF EXISTS {sql_name(ch.index)}"]),
            transaction=TransactionMode.AUTOCOMMIT,
            inverse=inverse,
            inverse_transaction=TransactionMode.AUTOCOMMIT,
            inverse_index=inverse_index,
            irreversible_reason=None if restore else "the index definition is unknown",
            reason="CONCURRENTLY waits for running queries instead of blocking them; its last "
            "moment takes ACCESS EXCLUSIVE on the index: lock_timeout and retries",
            retry=ctx.policy.retry(statement_timeout=False),
        )
    ]


@plans(c.Reindex)
def _reindex(ch: c.Reindex, ctx: PlanningContext) -> list[Step]:
    """``REINDEX`` without CONCURRENTLY blocks writes to the table (and reads that would use the
    index) for the whole rebuild: the same rebuild ``CONCURRENTLY`` (PostgreSQL 12+; on a
    partitioned table 14+), in autocommit with lock_timeout and retries.  Nothing to undo."""
    table = ch.table
    partitioned = table is not None and partitions_of(table, ctx) is not None
    if not ch.concurrently and partitioned and ctx.version.major < 14:
        return [as_written(ch, ctx)]
    safe = dataclasses.replace(ch, concurrently=True)
    sql = change_sql(safe)
    return [
        Step(
            description=f"{ch.title} concurrently" if not ch.concurrently else ch.title,
            phase=Phase.EXPAND,
            sql=sql,
            changes=(safe,),
            transaction=TransactionMode.AUTOCOMMIT,
            inverse=(),
            reason="CONCURRENTLY rebuilds without blocking writes (plain REINDEX blocks them for the "
            "whole rebuild); it cannot run in a transaction; its last moments take short locks: "
            "lock_timeout and retries",
            retry=ctx.policy.retry(statement_timeout=False),
        )
    ]
