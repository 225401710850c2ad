"""Walking Alembic's operation containers (``UpgradeOps``, ``ModifyTableOps``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from alembic.operations import ops

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation, OpContainer


def leaves(container: OpContainer) -> Iterator[MigrateOperation]:
    """Every operation of ``container`` that is not itself a container, in order."""
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            yield from leaves(op)
        else:
            yield op


def parents(container: OpContainer) -> Iterator[tuple[OpContainer, MigrateOperation]]:
    """Every leaf operation of ``container`` with the container that holds it."""
    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            yield from parents(op)
        else:
            yield container, op


def drop_empty(container: OpContainer) -> None:
    """Remove the containers left empty inside ``container``."""
    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            drop_empty(op)
            if not op.ops:
                container.ops.remove(op)
