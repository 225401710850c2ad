"""The downgrade of a container of operations, for operations Alembic cannot reverse too."""

from __future__ import annotations

from typing import Any

from alembic.operations import ops

from helios_migrate.plan import Direction, Phase, Step

from .ops import LockSafePlanOp


def reverse_ops(container: Any) -> Any:
    """``container.reverse()``, except that an operation without an inverse (``op.execute``)
    becomes a downgrade step that refuses to run, naming it, instead of failing the revision."""

    def one(op: Any) -> Any:
        if isinstance(op, ops.ModifyTableOps):
            return ops.ModifyTableOps(op.table_name, [one(o) for o in reversed(op.ops)], schema=op.schema)
        try:
            return op.reverse()
        except NotImplementedError:
            what = type(op).__name__
            sql = getattr(op, "sqltext", None)
            if isinstance(sql, str):
                what = f"op.execute({sql[:80]!r})"
            step = Step(
                description=f"undo: {what}", phase=Phase.EXPAND, inverse=None, direction=Direction.DOWNGRADE,
                irreversible_reason="Alembic knows no inverse for it: write this part of the downgrade by hand",
            )
            return LockSafePlanOp(None, [step], title=f"undo: {what}", downgrade=True)

    return ops.DowngradeOps(ops=[one(op) for op in reversed(container.ops)],
                            downgrade_token=getattr(container, "upgrade_token", "upgrades").replace("upgrade", "downgrade"))
