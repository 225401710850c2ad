"""Alembic operations read as changes, for the plugin's comparators and hooks.

An operation the change model cannot read -- a user's or a third-party operation, column type or
expression -- is reported and left as written; it never fails ``alembic revision --autogenerate``.
"""

from __future__ import annotations

import logging

from alembic.operations import MigrateOperation

from helios_migrate.alembic_ops import changes_from_op
from helios_migrate.changes import Change

__all__ = ["read_changes", "reverse_of"]

log = logging.getLogger("alembic.helios")


def read_changes(op: MigrateOperation, consequence: str) -> list[Change] | None:
    """The changes of ``op``; ``None``, with a warning that names ``consequence``, when the change
    model cannot read it."""
    try:
        return changes_from_op(op)
    except Exception as exc:  # broad: a user's or a third-party operation, type or expression,
        # compiled by SQLAlchemy and parsed by pglast, each of which raises many kinds
        log.warning("helios: %s: %s (%s: %s)", type(op).__name__, consequence, type(exc).__name__, exc)
        return None


def reverse_of(op: MigrateOperation) -> MigrateOperation | None:
    """Alembic's inverse of ``op``; ``None`` when it has none (``op.execute``, or a drop for which
    autogenerate kept no copy of what is dropped)."""
    try:
        return op.reverse()
    except (NotImplementedError, ValueError):
        return None
