"""The planning context and the registry: one planner per change kind (``@plans``), the changes
no planner handles kept as written, and :func:`plan_changes`, which turns changes into a plan.

A planner module registers its functions when the package is imported
(:mod:`helios_migrate.planner` imports every one of them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import changes as c
from ..changes import Change, QualifiedName
from ..effects import TransactionUse, WorkClass
from ..facts import DatabaseFacts
from ..knowledge import SchemaLookup, effect_of
from ..plan import Origin, Phase, Plan, Step, TransactionMode
from ..versions import PgVersion
from .facts import PlannerFacts, planner_facts
from .policy import PlanPolicy
from .sqlgen import change_sql, changes_of


@dataclass
class PlanningContext:
    """What every planner of one plan shares: the server, the facts, the policy, and the notes
    it adds for the revision."""

    version: PgVersion
    catalog: SchemaLookup | None
    facts: PlannerFacts | None
    policy: PlanPolicy
    new_tables: set[QualifiedName]
    new_indexes: list[c.CreateIndex]
    recreate: Mapping[Change, Sequence[Change]]
    notes: list[str]

    def own(
        self,
        description: str,
        sql: Sequence[str],
        *,
        phase: Phase = Phase.EXPAND,
        inverse: Sequence[str] | None = (),
        reason: str = "",
        done_when: str | None = None,
        scan: bool = False,
        **extra: Any,
    ) -> Step:
        """A step in a short transaction of its own, with lock_timeout and retries."""
        return Step(
            description=description,
            phase=phase,
            sql=tuple(sql),
            changes=changes_of(sql),
            transaction=TransactionMode.OWN,
            retry=self.policy.retry(statement_timeout=not scan),
            inverse=None if inverse is None else tuple(inverse),
            inverse_transaction=TransactionMode.OWN,
            reason=reason,
            done_when=done_when,
            **extra,
        )

    def has_rows(self, table: QualifiedName) -> bool:
        if self.facts is None:
            return True
        known = self.facts.has_rows(table)
        return True if known is None else known


Planner = Callable[[Any, PlanningContext], list[Step]]
PLANNERS: dict[type[Change], Planner] = {}


def plans(*kinds: type[Change]) -> Callable[[Planner], Planner]:
    """Register the decorated function as the planner of ``kinds``."""
    def register(fn: Planner) -> Planner:
        for kind in kinds:
            PLANNERS[kind] = fn
        return fn

    return register


def plan_changes(
    changes: Sequence[Change],
    version: PgVersion,
    *,
    catalog: SchemaLookup | None = None,
    facts: PlannerFacts | DatabaseFacts | None = None,
    policy: PlanPolicy | None = None,
    recreate: Mapping[Change, Sequence[Change]] | None = None,
    new_tables: Iterable[QualifiedName] = (),
    new_indexes: Iterable[c.CreateIndex] = (),
) -> Plan:
    """The lock-safe plan for ``changes`` on a server of ``version``.

    ``facts`` says whether tables have rows and which indexes exist (unknown: assume rows and no
    index).  ``recreate`` maps a drop (``DropIndex``, ``DropColumn``, ``DropTable``) to the
    changes that re-create what it drops, for the downgrade.  ``new_tables`` are created earlier
    in the same revision (tables created by ``changes`` are added automatically), and
    ``new_indexes`` indexes built elsewhere in it (they can support a new foreign key).
    """
    ctx = PlanningContext(
        version=version,
        catalog=catalog,
        facts=planner_facts(facts),
        policy=policy or PlanPolicy(),
        new_tables=set(new_tables) | {ch.on for ch in changes if isinstance(ch, c.CreateTable)},
        new_indexes=[*new_indexes, *(ch for ch in changes if isinstance(ch, c.CreateIndex))],
        recreate=recreate or {},
        notes=[],
    )
    steps: list[Step] = []
    for change in changes:
        steps.extend(plan_one(change, ctx))
    return Plan(steps=tuple(steps), source=tuple(changes), notes=tuple(ctx.notes))


def plan_one(change: Change, ctx: PlanningContext) -> list[Step]:
    """The steps for one change: its planner's, or the change as written."""
    table = change.table
    if table is not None:
        ctx = dataclasses.replace(ctx, policy=ctx.policy.for_table(table))
    if table is not None and (
        table in ctx.new_tables or ctx.policy.is_small(table) or below_threshold(table, ctx)
    ):
        return [as_written(change, ctx, in_migration=True)]
    planner = PLANNERS.get(type(change))
    if planner is None:
        return [as_written(change, ctx)]
    return planner(change, ctx)


def below_threshold(table: QualifiedName, ctx: PlanningContext) -> bool:
    """Is the table known to hold fewer rows than ``small_table_rows``?"""
    limit = ctx.policy.small_table_rows
    if limit is None or ctx.facts is None:
        return False
    estimate = ctx.facts.row_estimate(table)
    return estimate is not None and estimate < limit


def new_context(
    version: PgVersion,
    catalog: SchemaLookup | None,
    facts: PlannerFacts | None,
    policy: PlanPolicy | None,
) -> PlanningContext:
    """A context for a plan made outside :func:`plan_changes` (renames)."""
    return PlanningContext(version, catalog, planner_facts(facts), policy or PlanPolicy(), set(), [], {}, [])


def as_written(change: Change, ctx: PlanningContext, *, in_migration: bool = False) -> Step:
    """The change as the user wrote it: in the migration transaction when it locks nothing that
    anyone uses, otherwise in a short transaction of its own (outside any when PostgreSQL refuses
    it in one).  :class:`~helios_migrate.planner.sqlgen.UnrenderableChange` when its SQL cannot be
    written from the change."""
    sql = change_sql(change)
    eff = effect_of(change, ctx.version, ctx.catalog)
    blocking = eff.blocks_reads or eff.blocks_writes
    if not in_migration and eff.transaction is TransactionUse.OUTSIDE_ONLY:
        return Step(
            description=change.title,
            phase=Phase.EXPAND,
            sql=sql,
            changes=(change,),
            transaction=TransactionMode.AUTOCOMMIT,
            retry=ctx.policy.retry(statement_timeout=False),
            inverse=None,
            irreversible_reason="kept as written; its inverse is Alembic's own",
            reason="PostgreSQL refuses it inside a transaction block: runs on its own, with lock_timeout",
            origin=Origin.AS_WRITTEN,
        )
    if in_migration or not blocking:
        return Step(
            description=change.title,
            phase=Phase.EXPAND,
            sql=sql,
            changes=(change,),
            transaction=TransactionMode.MIGRATION,
            inverse=None,
            irreversible_reason="kept as written; its inverse is Alembic's own",
            origin=Origin.AS_WRITTEN,
        )
    return dataclasses.replace(
        ctx.own(
            change.title,
            sql,
            scan=eff.work is not WorkClass.METADATA,
            inverse=None,
            reason=f"takes {eff.strongest.sql_name if eff.strongest else 'a'} lock: "
            "short transaction with lock_timeout",
        ),
        changes=(change,),
        irreversible_reason="kept as written; its inverse is Alembic's own",
        origin=Origin.AS_WRITTEN,
    )


def flipped(step: Step, description: str) -> Step:
    """A step with no SQL going up whose inverse is ``step``: a downgrade runs ``step``."""
    return Step(
        description=description,
        phase=Phase.CONTRACT,
        transaction=step.transaction,
        retry=step.retry,
        inverse=step.sql,
        inverse_transaction=step.transaction,
        inverse_backfill=step.backfill,
        inverse_index=step.index,
        inverse_conversion_check=step.conversion_check,
        inverse_on_failure=step.on_failure,
        inverse_on_failure_description=step.on_failure_description,
        inverse_done_when=step.done_when,
        inverse_acknowledged=step.acknowledged,
        inverse_sync_trigger=step.sync_trigger,
    )


class PlanRefused(ValueError):
    """No lock-safe plan exists for a change as the table stands; the message says what to add."""


def refusal(message: str) -> PlanRefused:
    """A :class:`PlanRefused` that Alembic's command line also reports without a traceback."""
    try:
        from alembic.util import CommandError  # lazy: the planner does not load Alembic otherwise
    except ImportError:  # pragma: no cover - alembic is a dependency
        return PlanRefused(message)

    class Refused(PlanRefused, CommandError):
        pass

    return Refused(message)
