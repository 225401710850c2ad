"""The contract phase of a revision moved into a revision of its own that follows it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import ops
from alembic.util import rev_id

from helios_migrate.plan import Phase

from .containers import drop_empty, leaves, parents
from .ops import CommentOp, LockSafePlanOp
from .reverse import reverse_ops

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation


def contract_after_deploy(script: Any) -> bool:
    """Does a plan of ``script`` have a contract phase that must wait for the new code (a rename)?"""
    return any(
        isinstance(op, LockSafePlanOp) and op.contract_after_deploy
        and any(step.phase is Phase.CONTRACT for step in op.steps)
        for upgrade in script.upgrade_ops_list for op in leaves(upgrade)
    )


def split_contract(script: Any) -> Any:
    """Move every CONTRACT step of ``script`` into a new revision right after it; ``None`` when
    there is nothing to split (no contract step, or nothing else)."""

    upgrade = script.upgrade_ops_list[-1]
    moved: list[MigrateOperation] = []
    kept_any = False
    for parent, op in list(parents(upgrade)):
        if not isinstance(op, LockSafePlanOp):
            kept_any = kept_any or not isinstance(op, CommentOp)
            continue
        contract = [s for s in op.steps if s.phase is Phase.CONTRACT]
        rest = [s for s in op.steps if s.phase is not Phase.CONTRACT]
        if not contract:
            kept_any = True
            continue
        moved.append(LockSafePlanOp(op.original, contract, title=f"{op.title} (contract phase)", notes=op.notes,
                                    replan=op.replan))
        if rest:
            kept_any = True
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(
                op.original, rest, title=f"{op.title} (expand phase)", notes=op.notes, replan=op.replan
            )
        else:
            parent.ops.remove(op)
    if not moved:
        return None
    if not kept_any:  # only contract steps: nothing to split from; put them back
        upgrade.ops.extend(moved)
        drop_empty(upgrade)
        script.downgrade_ops = [reverse_ops(u) for u in script.upgrade_ops_list]
        return None
    drop_empty(upgrade)
    later_id = rev_id()
    why = [
        f"# CONTRACT phase of revision {script.rev_id}, split into this revision:",
        "# these steps remove what the code running before that revision still uses. Upgrade to",
        f"# {script.rev_id} first, deploy code that no longer uses what is removed here, then upgrade",
        "# to this revision.",
    ]
    upgrade.ops.insert(0, CommentOp([
        f"# The CONTRACT phase of this change is in revision {later_id}: upgrade to it after the code",
        "# that no longer uses what it removes is deployed.",
    ]))
    script.downgrade_ops = [reverse_ops(u) for u in script.upgrade_ops_list]
    later_up = ops.UpgradeOps(ops=[CommentOp(why), *moved], upgrade_token=upgrade.upgrade_token)
    later_down = reverse_ops(later_up)
    later_down.downgrade_token = script.downgrade_ops_list[-1].downgrade_token
    later = ops.MigrationScript(
        rev_id=later_id,
        message=f"{script.message or 'change'} (contract phase)",
        upgrade_ops=later_up,
        downgrade_ops=later_down,
        head=script.rev_id,
        splice=False,
        branch_label=None,
        version_path=script.version_path,
        depends_on=None,
    )
    later._needs_render = True
    return later
