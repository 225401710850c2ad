"""A revision that commits in steps must be re-runnable from the start.

Alembic stamps ``alembic_version`` at the end of a revision, and each lock-safe step commits on
its own.  When a later step fails, a re-run starts again at the top: a plain ``op.create_table``
that already committed would fail with "relation already exists" on every retry.  So when a
revision commits in steps, the plain operations around the plan are written idempotently
(``if_not_exists`` / ``if_exists``, which Alembic renders as ``IF [NOT] EXISTS``), and the revision
says so.  An ``op.execute`` cannot be made idempotent here: the revision says that too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alembic.operations import ops

from helios_migrate.plan import TransactionMode

from .ops import CommentOp, LockSafePlanOp

_IF_NOT_EXISTS = (ops.CreateTableOp, ops.CreateIndexOp, ops.AddColumnOp)
_IF_EXISTS = (ops.DropTableOp, ops.DropIndexOp, ops.DropColumnOp)


def _leaves(container: Any) -> Iterator[Any]:
    for op in getattr(container, "ops", ()):
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def commits_in_steps(upgrade_ops: Any) -> bool:
    """Does a step of the revision commit before the end (a step in its own transaction)?"""
    return any(
        step.transaction is not TransactionMode.MIGRATION
        for op in _leaves(upgrade_ops)
        if isinstance(op, LockSafePlanOp)
        for step in op.steps
    )


def make_rerunnable(upgrade_ops: Any) -> None:
    """Write the plain operations of ``upgrade_ops`` idempotently when the revision commits in
    steps, and say so at the top of the upgrade."""
    if not commits_in_steps(upgrade_ops):
        return
    executes = 0
    for op in _leaves(upgrade_ops):
        if isinstance(op, _IF_NOT_EXISTS):
            op.if_not_exists = True
        elif isinstance(op, _IF_EXISTS):
            op.if_exists = True
        elif isinstance(op, ops.ExecuteSQLOp):
            executes += 1
    lines = [
        "helios: this revision commits in steps (each lock-safe step in a transaction of its own);",
        "a re-run after a failure starts at the top and skips what is done, so plain operations are",
        "written IF [NOT] EXISTS.",
    ]
    if executes:
        lines.append(
            f"{executes} op.execute() call(s) run again on a re-run: make them idempotent."
        )
    upgrade_ops.ops.insert(0, CommentOp(lines))
