"""Every data-loss guard of a downgrade, checked before the downgrade changes anything.

Each lock-safe step of a downgrade runs in a transaction of its own, so a guard met half-way (a
step that cannot be undone, or only by losing data) would leave the earlier undo steps committed
while ``alembic_version`` still says the revision is applied.  :class:`GuardsOp` goes first in
``downgrade()`` and asks about all of them at once: either the user allowed data loss
(``HELIOS_ALLOW_DATA_LOSS=1``) or nothing runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from alembic.operations import MigrateOperation, Operations

from helios_migrate import runtime

from .ops import LockSafePlanOp, data_loss_guards


class GuardsOp(MigrateOperation):
    """``runtime.confirm_data_loss(op, [...])`` at the top of a downgrade."""

    def __init__(self, guards: Sequence[tuple[str, str]]) -> None:
        self.guards = tuple(guards)

    def reverse(self) -> GuardsOp:
        return GuardsOp(())

    def to_diff_tuple(self) -> Any:
        return ()


@Operations.implementation_for(GuardsOp)
def _run_guards(operations: Operations, operation: GuardsOp) -> None:
    runtime.confirm_data_loss(operations, operation.guards)


def render_guards_op(autogen_context: Any, op: GuardsOp) -> list[str]:
    if not op.guards:
        return []
    autogen_context.imports.add("from helios_migrate import runtime")
    # Continuation lines inside the call's brackets: indenting them is layout, not a block.
    lines = [
        "# Every step below that cannot be undone, or only by losing data: checked before any runs.",
        "runtime.confirm_data_loss(",
        "    op,",
        "    [",
    ]
    lines += [f"        ({step!r}, {reason!r})," for step, reason in op.guards]
    return [*lines, "    ],", ")"]


def _plans(container: Any) -> Iterator[LockSafePlanOp]:
    for op in getattr(container, "ops", ()):
        if isinstance(op, LockSafePlanOp):
            yield op
        else:
            yield from _plans(op)


def guard_downgrades(script: Any) -> None:
    """Put a :class:`GuardsOp` first in each downgrade of ``script`` that has guarded steps."""
    for downgrade in getattr(script, "downgrade_ops_list", ()):
        guards = [g for plan in _plans(downgrade) for step in plan.steps for g in data_loss_guards(step)]
        if guards and not any(isinstance(op, GuardsOp) for op in downgrade.ops):
            downgrade.ops.insert(0, GuardsOp(guards))
