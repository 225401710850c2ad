"""Finishing the revisions of a run (a ``process_revision_directives`` step): the contract phase
split off when it must wait for new code, the impact header, the policy declared once, the
downgrade's data-loss guards."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alembic.operations import ops

from helios_migrate.plan import RetryPolicy

from .containers import leaves
from .contract_split import contract_after_deploy, split_contract
from .guards import guard_downgrades
from .impact_header import HEADER_MARK, with_header
from .ops import CommentOp, LockSafePlanOp, PolicyOp
from .run_state import planning_of
from .settings import SPLIT_VAR, autogenerate_settings

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import OpContainer


def finish_revisions(context: Any, revision: Any, directives: Sequence[Any]) -> None:
    """After planning (a ``process_revision_directives`` step): split the contract phase into a
    revision of its own when configured, and always when a plan's contract must wait for the new
    code (a rename); then put the impact header at the top of each upgrade.  ``context`` is the
    migration context of the run: its :class:`Planning`, when it planned, gives the settings."""

    planning = planning_of(context)
    settings = planning.config.autogenerate if planning is not None else autogenerate_settings()
    split = settings.split_contract or os.environ.get(SPLIT_VAR, "") == "1"
    for script in list(directives):
        if not isinstance(script, ops.MigrationScript) or getattr(script, "_helios_finished", False):
            continue
        script._helios_finished = True  # type: ignore[attr-defined]
        later = split_contract(script) if split or contract_after_deploy(script) else None
        for upgrade in script.upgrade_ops_list:
            with_header(context, upgrade, settings, planning)
            declare_policy(upgrade)
        for downgrade in script.downgrade_ops_list:
            declare_policy(downgrade)
        guard_downgrades(script)
        if later is not None:
            later._helios_finished = True
            with_header(context, later.upgrade_ops, settings, planning)
            declare_policy(later.upgrade_ops)
            declare_policy(later.downgrade_ops)
            directives.insert(directives.index(script) + 1, later)  # type: ignore[attr-defined]


def declare_policy(container: OpContainer) -> None:
    """Set the policy once for a whole ``upgrade()`` or ``downgrade()``: the timeouts and retries
    most of its steps use become ``policy = runtime.Policy(...)`` after the impact header, and each
    call passes ``policy=policy`` (naming only what differs)."""
    plans = [op for op in leaves(container) if isinstance(op, LockSafePlanOp)]
    counts: dict[RetryPolicy, int] = {}
    for plan in plans:
        for step in plan.steps:
            if step.retry is not None and step.retry.statement_timeout_ms is not None:
                counts[step.retry] = counts.get(step.retry, 0) + 1
    if not counts or any(isinstance(op, PolicyOp) for op in container.ops):
        return
    policy = max(counts, key=lambda retry: counts[retry])
    for plan in plans:
        plan.policy = policy
    at = 1 if container.ops and isinstance(container.ops[0], CommentOp) and container.ops[0].lines \
        and HEADER_MARK in container.ops[0].lines[0] else 0
    container.ops.insert(at, PolicyOp(policy))


def install_finisher(autogen_context: AutogenContext) -> None:
    """Chain :func:`finish_revisions` after the ``process_revision_directives`` of env.py: Alembic
    reads it from the context's options after the comparators ran."""
    mc = getattr(autogen_context, "migration_context", None)
    opts = getattr(mc, "opts", None)
    if not isinstance(opts, dict):
        return
    existing = opts.get("process_revision_directives")
    if getattr(existing, "_helios_finisher", False):
        return

    def hook(context: Any, revision: Any, directives: Sequence[Any]) -> None:
        if existing is not None:
            existing(context, revision, directives)
        finish_revisions(context, revision, directives)

    hook._helios_finisher = True  # type: ignore[attr-defined]
    opts["process_revision_directives"] = hook
