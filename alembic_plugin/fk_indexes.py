"""Foreign-key support indexes the plan built are kept by later autogenerate runs.

When a new foreign key has no index leading with its columns, the plan builds one (concurrently)
under the name PostgreSQL would give it, ``<table>_<columns>_idx``
(:func:`helios_migrate.planner.index_name`).  The models do not declare that index, so Alembic's
index comparison would propose dropping it on the next autogenerate, and ``alembic check`` would
fail right after the upgrade.

Before planning, :func:`keep_fk_support_indexes` removes from the revision the ``drop_index`` of
a database index that is such an index:

* its name is the one the planner gives the support index of a foreign key the models declare,
  and its columns are that key's columns, in order (not unique, no expression);
* the models declare no index, primary key or unique constraint leading with those columns (when
  they do, the support index is redundant and dropping it is right);
* ``index_on_fk`` is on for the table.

Declaring it in the models under the same name (``sa.Index("audit_events_actor_id_idx",
"actor_id")``) is equivalent: then the models and the database agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from helios_migrate.changes import QualifiedName
from helios_migrate.planner import PlanPolicy, index_name

__all__ = ["fk_support_indexes", "keep_fk_support_indexes"]


def _tables(metadata: Any) -> Iterator[sa.Table]:
    for md in metadata if isinstance(metadata, list | tuple) else [metadata]:
        if md is not None:
            yield from md.tables.values()


def _leading_column_sets(table: sa.Table) -> list[tuple[str, ...]]:
    """The column lists of every index, primary key and unique constraint the model declares."""
    found: list[tuple[str, ...]] = []
    for index in table.indexes:
        found.append(tuple(getattr(x, "name", None) or str(x) for x in index.expressions))
    for constraint in table.constraints:
        if isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint):
            found.append(tuple(col.name for col in constraint.columns))
    return found


def fk_support_indexes(metadata: Any, policy: PlanPolicy) -> dict[tuple[str | None, str, str], tuple[str, ...]]:
    """``(schema, table, index name) -> columns`` of every support index the plan builds (or
    built) for a foreign key of the models that no declared index covers."""
    wanted: dict[tuple[str | None, str, str], tuple[str, ...]] = {}
    for table in _tables(metadata):
        qname = QualifiedName(table.name, table.schema)
        if not policy.for_table(qname).index_on_fk:
            continue
        declared = _leading_column_sets(table)
        for constraint in table.constraints:
            if not isinstance(constraint, sa.ForeignKeyConstraint):
                continue
            cols = tuple(constraint.column_keys)
            if not cols or any(found[: len(cols)] == cols for found in declared):
                continue
            wanted[(table.schema, table.name, index_name(qname, cols))] = cols
    return wanted


def _is_support_index(op: ops.DropIndexOp, wanted: dict[tuple[str | None, str, str], tuple[str, ...]]) -> bool:
    cols = wanted.get((op.schema, op.table_name or "", op.index_name or ""))
    reverse = op._reverse
    if cols is None or reverse is None or reverse.unique:
        return False
    if reverse.kw.get("postgresql_where") is not None:
        return False
    names = tuple(x if isinstance(x, str) else getattr(x, "name", None) for x in reverse.columns)
    return names == cols


def keep_fk_support_indexes(metadata: Any, upgrade_ops: ops.OpContainer, policy: PlanPolicy) -> list[str]:
    """Remove, in place, the ``drop_index`` operations of foreign-key support indexes the plan
    builds (see the module); return the names of the indexes kept."""
    wanted = fk_support_indexes(metadata, policy)
    kept: list[str] = []
    if not wanted:
        return kept

    def prune(container: ops.OpContainer) -> None:
        remaining: list[ops.MigrateOperation] = []
        for op in container.ops:
            if isinstance(op, ops.OpContainer):
                prune(op)
                if not op.ops:
                    continue
            elif isinstance(op, ops.DropIndexOp) and _is_support_index(op, wanted):
                kept.append(op.index_name or "")
                continue
            remaining.append(op)
        container.ops = remaining

    prune(upgrade_ops)
    return kept
