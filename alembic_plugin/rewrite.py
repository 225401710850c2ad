"""Rewriting operations into lock-safe plans: one operation (:func:`plan_op`), or every operation
of a container in place (:func:`rewrite`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from alembic.operations import ops

from helios_migrate.config import Config
from helios_migrate.plan import Acknowledgement, Origin, Phase, Plan, Step, TransactionMode
from helios_migrate.planner import UnrenderableChange
from helios_migrate.versions import PgVersion

from .new_tables import deliberate_findings
from .ops import CommentOp, LockSafePlanOp
from .reading import read_changes
from .settings import project_config

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation, OpContainer

    from .run_state import Planning

log = logging.getLogger("alembic.helios")


def plan_op(op: MigrateOperation, planning: Planning) -> LockSafePlanOp | None:
    if isinstance(op, (LockSafePlanOp, CommentOp)):
        return None  # planned already (a rename)
    changes = read_changes(op, "left as written")
    if not changes or any(ch.table in planning.new_tables for ch in changes):
        return None
    try:
        plan = planning.plan(op, changes)
    except UnrenderableChange as exc:  # a data migration: Alembic's own operation carries its SQL
        log.warning("helios: %s left as written: %s", type(op).__name__, exc)
        return None
    guard = planning.guards.get(id(op))
    if guard is not None:
        reason, comment = guard
        plan = Plan(
            steps=tuple(
                dataclasses.replace(s, guard=reason) if s.phase is Phase.CONTRACT else s for s in plan.steps
            ),
            source=plan.source,
            notes=(*comment, *plan.notes),
        )
    kept = all(
        s.transaction is TransactionMode.MIGRATION and s.origin is Origin.AS_WRITTEN
        for s in plan.steps
    )
    if kept:
        return None
    plan = dataclasses.replace(
        plan, steps=tuple(model_choices(s, planning.version, planning.config) for s in plan.steps)
    )
    title = "; ".join(ch.title for ch in changes)
    if any(s.origin is Origin.LLM for s in plan.steps):
        title = f"LLM-proposed plan (validated by helios rules; review it) for {title}"
    return LockSafePlanOp(
        op, plan.steps,
        title=f"{title} -- lock-safe plan for PostgreSQL {planning.version}"
        + (f" ({planning.target_source})" if planning.target_source else ""),
        notes=plan.notes,
        replan=planning.replan,
    )


def model_choices(step: Step, version: PgVersion, config: Config | None = None) -> Step:
    """``step`` acknowledging, in each direction, the schema-design findings its SQL meets: the
    revision carries out the model as declared, and says so beside the call with the rule's
    advice (the reviewer reads it; ``check`` passes the revision).  ``config``: the run's
    configuration (default: the project's)."""
    config = config if config is not None else project_config()

    def acks(sql: Sequence[str] | None) -> tuple[Acknowledgement, ...]:
        if not sql:
            return ()
        found = deliberate_findings(";\n".join(sql) + ";\n", config, version)
        return tuple(Acknowledgement((code,), reason) for code, reason in found.items())

    up, down = acks(step.sql), acks(step.inverse)
    if not up and not down:
        return step
    return dataclasses.replace(
        step,
        acknowledged=(*step.acknowledged, *up),
        inverse_acknowledged=(*step.inverse_acknowledged, *down),
    )


def rewrite(container: OpContainer, planning: Planning) -> None:
    new_ops: list[MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            rewrite(op, planning)
            new_ops.append(op)
            continue
        planned = plan_op(op, planning)
        new_ops.append(op if planned is None else planned)
        if planned is not None:
            log.info("helios: planned lock-safe: %s", planned.title)
            for note in planned.notes:
                log.warning("helios: %s", note)
    container.ops = new_ops
