"""The renderers of the plugin's operations, registered with Alembic once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.autogenerate.render import renderers

from .guards import GuardsOp, render_guards_op
from .new_tables import LockTimeoutOp, render_lock_timeout_op
from .ops import (
    CommentOp,
    LockSafePlanOp,
    PolicyOp,
    render_comment_op,
    render_plan_op,
    render_policy_op,
)

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext


def _render(autogen_context: AutogenContext, op: LockSafePlanOp) -> Any:
    return render_plan_op(autogen_context, op)


_registered = False


def register_renderer() -> None:
    """Register the renderers of the plugin's operations with Alembic (once; called from the
    comparator and from :mod:`alembic_plugin.env_hook`)."""
    global _registered
    if _registered:
        return
    renderers.dispatch_for(LockSafePlanOp)(_render)
    renderers.dispatch_for(CommentOp)(render_comment_op)
    renderers.dispatch_for(PolicyOp)(render_policy_op)
    renderers.dispatch_for(GuardsOp)(render_guards_op)
    renderers.dispatch_for(LockTimeoutOp)(render_lock_timeout_op)
    _registered = True
