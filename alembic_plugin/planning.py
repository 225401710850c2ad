"""The autogenerate comparator that rewrites risky operations into lock-safe plans.

It runs on the ``"autogenerate"`` target at priority LAST, after Alembic's own comparators have
filled ``upgrade_ops`` and before Alembic derives the downgrade from each operation's
``reverse()``: replacing an operation here with a :class:`~alembic_plugin.ops.LockSafePlanOp`
gives a lock-safe downgrade for free.

The plan follows the server autogenerate compared against (its version, whether each table has
rows, which indexes exist), read with plain ``SELECT`` statements only.  Operations on tables
created in the same revision are left as Alembic wrote them: those tables are empty and invisible
until the migration commits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from helios_migrate.changes import (
    Change,
    CreateIndex,
    CreateTable,
    DropColumn,
    DropIndex,
    QualifiedName,
)
from helios_migrate.plan import Plan, TransactionMode
from helios_migrate.planner import LiveFacts, PlannerFacts, PlanPolicy, plan_changes
from helios_migrate.versions import PgVersion

from .changes_from_ops import changes_from_op
from .lock_report import server_version
from .ops import AS_WRITTEN, LockSafePlanOp

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import MigrateOperation, OpContainer, UpgradeOps
    from alembic.util import PriorityDispatchResult

    from helios_migrate.knowledge import SchemaLookup

log = logging.getLogger("alembic.helios")

DISABLE_VAR = "HELIOS_PLAN"
"""``HELIOS_PLAN=0`` leaves autogenerate's operations as Alembic wrote them (lock report only)."""


class _Planning:
    """What one autogenerate run plans with: version, live lookups, policy, new tables."""

    def __init__(
        self,
        version: PgVersion,
        catalog: SchemaLookup | None,
        facts: PlannerFacts | None,
        policy: PlanPolicy,
        new_tables: set[QualifiedName],
        new_indexes: list[CreateIndex],
    ) -> None:
        self.version = version
        self.catalog = catalog
        self.facts = facts
        self.policy = policy
        self.new_tables = new_tables
        self.new_indexes = new_indexes

    def plan(self, op: MigrateOperation, changes: list[Change]) -> Plan:
        recreate: dict[Change, list[Change]] = {}
        for change in changes:
            if isinstance(change, (DropIndex, DropColumn)):
                # Without a reverse (no _reverse kept), the drop stays irreversible.
                with contextlib.suppress(Exception):
                    recreate[change] = changes_from_op(op.reverse())
        return plan_changes(
            changes,
            self.version,
            catalog=self.catalog,
            facts=self.facts,
            policy=self.policy,
            recreate=recreate,
            new_tables=self.new_tables,
            new_indexes=self.new_indexes,
        )


_current: _Planning | None = None


def replan(op: MigrateOperation) -> LockSafePlanOp | None:
    """A plan for ``op`` with the settings of the autogenerate run in progress (used by
    ``reverse()`` of operations kept as written)."""
    if _current is None:
        return None
    return _plan_op(op, _current)


def _policy() -> PlanPolicy:
    from helios_migrate.config import ConfigError, load_config

    try:
        return PlanPolicy.from_config(load_config())
    except ConfigError as exc:
        log.warning("helios: %s; planning with the default policy", exc)
        return PlanPolicy()


def _lookups(autogen_context: AutogenContext) -> tuple[SchemaLookup | None, PlannerFacts | None]:
    conn = autogen_context.connection
    if conn is None:
        return None, None
    driver = getattr(getattr(conn, "connection", None), "driver_connection", None)
    try:
        import psycopg

        if isinstance(driver, psycopg.Connection):
            from helios_migrate.catalog import LiveCatalog

            return LiveCatalog(driver), LiveFacts(driver)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return None, None


def _leaves(container: OpContainer) -> Iterator[MigrateOperation]:
    from alembic.operations import ops

    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def _plan_op(op: MigrateOperation, planning: _Planning) -> LockSafePlanOp | None:
    try:
        changes = changes_from_op(op)
    except Exception as exc:  # an operation the change model cannot read stays as written
        log.warning("helios: %s left as written: %s", type(op).__name__, exc)
        return None
    if not changes or any(ch.table in planning.new_tables for ch in changes):
        return None
    plan = planning.plan(op, changes)
    kept = all(
        s.transaction is TransactionMode.MIGRATION and s.irreversible_reason == AS_WRITTEN
        for s in plan.steps
    )
    if kept:
        return None
    title = "; ".join(f"{ch.kind.replace('_', ' ')} on {ch.table}" for ch in changes)
    return LockSafePlanOp(
        op, plan.steps, title=f"{title} -- lock-safe plan for PostgreSQL {planning.version}",
        notes=plan.notes,
    )


def _rewrite(container: OpContainer, planning: _Planning) -> None:
    from alembic.operations import ops

    new_ops: list[MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            _rewrite(op, planning)
            new_ops.append(op)
            continue
        planned = _plan_op(op, planning)
        new_ops.append(op if planned is None else planned)
        if planned is not None:
            log.warning("helios: rewritten into a lock-safe plan: %s", planned.title)
            for note in planned.notes:
                log.warning("helios: %s", note)
    container.ops = new_ops


def plan_upgrade_ops(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> None:
    """Replace every risky operation of ``upgrade_ops`` with its lock-safe plan, in place."""
    global _current
    version, _known = server_version(autogen_context)
    catalog, facts = _lookups(autogen_context)
    everything: list[Change] = []
    for op in _leaves(upgrade_ops):
        with contextlib.suppress(Exception):
            everything.extend(changes_from_op(op))
    new_tables = {ch.on for ch in everything if isinstance(ch, CreateTable)}
    new_indexes = [ch for ch in everything if isinstance(ch, CreateIndex)]
    planning = _Planning(version, catalog, facts, _policy(), new_tables, new_indexes)
    _current = planning
    _rewrite(upgrade_ops, planning)


def plan_revision(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> PriorityDispatchResult:
    """The comparator: report the locks of the operations Alembic generated (what a plain
    revision would take), then rewrite the risky ones into lock-safe plans."""
    import os

    from alembic.util import PriorityDispatchResult

    from .lock_report import report_locks

    register_renderer()
    report_locks(autogen_context, upgrade_ops)
    dialect = autogen_context.dialect
    if dialect is not None and dialect.name == "postgresql" and os.environ.get(DISABLE_VAR, "1") != "0":
        plan_upgrade_ops(autogen_context, upgrade_ops)
    return PriorityDispatchResult.CONTINUE


def _render(autogen_context: AutogenContext, op: LockSafePlanOp) -> Any:
    from .ops import render_plan_op

    return render_plan_op(autogen_context, op)


_registered = False


def register_renderer() -> None:
    """Register the renderer of :class:`LockSafePlanOp` (once; Alembic's renderer registry is
    importable only after ``alembic.autogenerate`` finished importing, so this runs from the
    comparator and from :mod:`alembic_plugin.env_hook`)."""
    global _registered
    if _registered:
        return
    from alembic.autogenerate.render import renderers

    renderers.dispatch_for(LockSafePlanOp)(_render)
    _registered = True
