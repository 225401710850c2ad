"""The helios-migrate Alembic plugin (entry point ``alembic.plugins: helios``).

Enable it in ``env.py``::

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        autogenerate_plugins=["alembic.autogenerate.*", "helios"],
    )

While ``alembic revision --autogenerate`` runs, the plugin rewrites every risky operation into a
lock-safe plan for the server it compared against (:mod:`alembic_plugin.planning`,
:mod:`alembic_plugin.ops`), and reports the lock of anything still risky
(:mod:`alembic_plugin.lock_report`).  ``HELIOS_PLAN=0`` turns the rewriting off.

When ``env.py`` cannot list plugins, :func:`alembic_plugin.env_hook.process_revision_directives`
does the same from ``process_revision_directives`` (chainable with your own).

Nothing from ``alembic.autogenerate`` is imported at module import time: Alembic imports plugins
while ``alembic.autogenerate`` itself is being imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import UpgradeOps
    from alembic.runtime.plugins import Plugin
    from alembic.util import PriorityDispatchResult


def setup(plugin: Plugin) -> None:
    """Called by Alembic with this plugin's :class:`~alembic.runtime.plugins.Plugin`.

    Alembic calls it while ``alembic`` itself is being imported -- possibly because one of this
    package's modules is importing ``alembic.operations`` -- so it registers the comparator and
    imports nothing of this package: :mod:`alembic_plugin.planning` is loaded on the first call.
    """
    from alembic.util import DispatchPriority  # lazy: Alembic loads this package mid-import

    # LAST: runs after Alembic's own comparators have filled upgrade_ops, and before Alembic
    # builds the downgrade from each operation's reverse().
    plugin.add_autogenerate_comparator(plan_revision, "autogenerate", priority=DispatchPriority.LAST)


def plan_revision(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> PriorityDispatchResult:
    """The comparator: :func:`alembic_plugin.planning.plan_revision`."""
    from . import planning  # lazy: as in setup(); loaded on the first autogenerate

    return planning.plan_revision(autogen_context, upgrade_ops)
