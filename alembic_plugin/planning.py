"""The autogenerate comparator that rewrites risky operations into lock-safe plans.

It runs on the ``"autogenerate"`` target at priority LAST, after Alembic's own comparators have
filled ``upgrade_ops`` and before Alembic derives the downgrade from each operation's
``reverse()``: replacing an operation here with a :class:`~alembic_plugin.ops.LockSafePlanOp`
gives a lock-safe downgrade for free.

The plan follows the server autogenerate compared against (its version, whether each table has
rows, which indexes exist), read with plain ``SELECT`` statements only.

The work is split the way Alembic's ``autogenerate/compare`` is: :mod:`.run_state` (what one run
plans with, kept on its migration context: :class:`Planning`, :func:`planning_of`),
:mod:`.renames`, :mod:`.rewrite` (an operation into its plan), and, once the revision is built,
:mod:`.finishing` (:mod:`.contract_split`, :mod:`.impact_header`, the policy declared once),
:mod:`.reverse` and :mod:`.renderers`.  Operations on tables created in the same revision are left
as Alembic wrote them: those tables are empty and invisible until the migration commits.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING

from alembic.util import CommandError, PriorityDispatchResult

from helios_migrate.alembic_ops import changes_from_op
from helios_migrate.changes import Change, CreateIndex, CreateTable
from helios_migrate.config import Config
from helios_migrate.planner import PlanPolicy
from helios_migrate.versions import Target, VersionError, target_version

from .compare_enums import compare_enums
from .containers import leaves
from .finishing import install_finisher
from .fk_indexes import keep_fk_support_indexes
from .lock_report import report_locks, server_version
from .new_tables import guard_new_tables
from .ops import CommentOp, LockSafePlanOp
from .renames import plan_renames
from .renderers import register_renderer
from .rerunnable import make_rerunnable
from .rewrite import rewrite
from .run_state import Planning, live_lookups, planning_of
from .settings import DISABLE_VAR, project_config

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import UpgradeOps

__all__ = ["Planning", "plan_revision", "plan_upgrade_ops", "planning_of"]

log = logging.getLogger("alembic.helios")


def _target(autogen_context: AutogenContext, config: Config) -> Target:
    """The version to plan for: ``HELIOS_PG_VERSION`` or ``pg_version`` in the configuration (the
    production server) before the version of the database autogenerate compared against."""

    database, known = server_version(autogen_context)
    try:
        return target_version(configured=config.pg_version, database=database if known else None)
    except VersionError as exc:
        raise CommandError(f"helios: {exc}") from None


def plan_upgrade_ops(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> None:
    """Replace every risky operation of ``upgrade_ops`` with its lock-safe plan, in place; the
    run's :class:`Planning` is kept on ``autogen_context`` (:func:`planning_of`)."""
    config = project_config()
    target = _target(autogen_context, config)
    version = target.version
    if target.note:
        log.warning("helios: %s", target.note)
    policy = PlanPolicy.from_config(config)
    for name in keep_fk_support_indexes(getattr(autogen_context, "metadata", None), upgrade_ops, policy):
        log.info("helios: kept %s: it supports a foreign key of the models no declared index covers", name)
    catalog, facts = live_lookups(autogen_context)
    guards = plan_renames(upgrade_ops, version, facts, catalog, config=config)
    everything: list[Change] = []
    for op in leaves(upgrade_ops):
        if isinstance(op, (LockSafePlanOp, CommentOp)):
            continue
        # What cannot be read here is reported, and left as written, when it is planned below.
        with contextlib.suppress(Exception):  # broad: as in read_changes, which warns later
            everything.extend(changes_from_op(op))
    new_tables = {ch.on for ch in everything if isinstance(ch, CreateTable)}
    new_indexes = [ch for ch in everything if isinstance(ch, CreateIndex)]
    planning = Planning(version, config, catalog, facts, policy, new_tables, new_indexes)
    planning.guards = guards
    planning.target_source = target.source if target.database != target.version else ""
    planning.keep_on(autogen_context)
    rewrite(upgrade_ops, planning)
    compare_enums(autogen_context, upgrade_ops, version, policy)
    guard_new_tables(upgrade_ops, config, version)
    make_rerunnable(upgrade_ops)


def plan_revision(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> PriorityDispatchResult:
    """The comparator: rewrite the risky operations Alembic generated into lock-safe plans (each
    logged as "planned lock-safe"), then report the locks of what is left as written."""
    register_renderer()
    dialect = autogen_context.dialect
    if dialect is not None and dialect.name == "postgresql" and os.environ.get(DISABLE_VAR, "1") != "0":
        plan_upgrade_ops(autogen_context, upgrade_ops)
        install_finisher(autogen_context)
    report_locks(autogen_context, upgrade_ops)
    return PriorityDispatchResult.CONTINUE
