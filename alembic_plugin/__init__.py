"""The helios-migrate Alembic plugin (entry point ``alembic.plugins: helios``).

Enable it in ``env.py``::

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        autogenerate_plugins=["alembic.autogenerate.*", "helios"],
    )

Today the plugin reports, while ``alembic revision --autogenerate`` runs, the lock each generated
operation will take on the server it compared against, what that blocks and the work done under it
(see :mod:`alembic_plugin.lock_report`).

Nothing from ``alembic.autogenerate`` is imported at module import time: Alembic imports plugins
while ``alembic.autogenerate`` itself is being imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.runtime.plugins import Plugin


def setup(plugin: Plugin) -> None:
    """Called by Alembic with this plugin's :class:`~alembic.runtime.plugins.Plugin`."""
    from alembic.util import DispatchPriority

    from .lock_report import report_locks

    # LAST: runs after Alembic's own comparators have filled upgrade_ops.
    plugin.add_autogenerate_comparator(report_locks, "autogenerate", priority=DispatchPriority.LAST)
