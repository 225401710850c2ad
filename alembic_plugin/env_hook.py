"""Fallback for projects that cannot list plugins: plan from ``process_revision_directives``.

In ``env.py``::

    from alembic_plugin.env_hook import process_revision_directives

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        process_revision_directives=process_revision_directives,
    )

or, to keep a hook of your own (it runs first, then the plans are made)::

    from alembic_plugin.env_hook import chain

    context.configure(..., process_revision_directives=chain(my_hook))

``process_revision_directives`` runs after Alembic built the downgrade, so the downgrade is built
again here from the rewritten upgrade operations.  Do not use both this hook and the
``autogenerate_plugins`` line: the operations would be planned once by the plugin already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from alembic.operations import ops

from .finishing import finish_revisions
from .ops import LockSafePlanOp
from .planning import plan_upgrade_ops
from .renderers import register_renderer
from .reverse import reverse_ops

Hook = Callable[[Any, Any, Sequence[Any]], None]


def process_revision_directives(context: Any, revision: Any, directives: Sequence[Any]) -> None:
    """Rewrite every risky operation of the revision being generated into a lock-safe plan."""
    register_renderer()
    if context.dialect is None or context.dialect.name != "postgresql":
        return
    # An autogenerate context in miniature; the run's planning is kept on ``context`` (the
    # migration context), where finish_revisions finds it.
    shim = SimpleNamespace(
        connection=context.connection, dialect=context.dialect,
        metadata=context.opts.get("target_metadata"), migration_context=context,
    )
    for script in directives:
        if not isinstance(script, ops.MigrationScript):
            continue
        planned = False
        for upgrade in script.upgrade_ops_list:
            if _has_plan(upgrade, LockSafePlanOp):
                continue  # planned already by the plugin
            plan_upgrade_ops(shim, upgrade)  # type: ignore[arg-type]
            planned = True
        if planned:
            script.downgrade_ops = [reverse_ops(u) for u in script.upgrade_ops_list]
    finish_revisions(context, revision, directives)


def _has_plan(container: Any, kind: type) -> bool:
    return any(
        isinstance(op, kind) or (hasattr(op, "ops") and _has_plan(op, kind))
        for op in container.ops
    )


def chain(*hooks: Hook) -> Hook:
    """A ``process_revision_directives`` running ``hooks`` in order, then the planning."""

    def run(context: Any, revision: Any, directives: Sequence[Any]) -> None:
        for hook in hooks:
            hook(context, revision, directives)
        process_revision_directives(context, revision, directives)

    return run
