"""Enum types: what Alembic's autogenerate does not compare.

Alembic compares tables and columns, not the labels of a PostgreSQL enum type: a label added to a
model's ``sa.Enum`` gives an empty revision, and a column switched to a new enum type gets no
``CREATE TYPE``.  This module compares the models' named native enums with ``pg_enum`` and puts,
first in the revision: ``CREATE TYPE`` for a type no table of the revision creates, and ``ALTER
TYPE ... ADD VALUE`` (outside the migration transaction, where the server needs it, placed
``BEFORE``/``AFTER`` its neighbours so the order matches the model).  A label gone from the model
cannot be dropped by PostgreSQL: the revision says so instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from helios_migrate.changes import AddEnumValue, QualifiedName
from helios_migrate.plan import Phase, Step, TransactionMode
from helios_migrate.planner import PlanPolicy, plan_changes
from helios_migrate.sqltext import quote_literal, quote_qualified
from helios_migrate.versions import PgVersion

from .ops import CommentOp, LockSafePlanOp


def model_enums(metadata: Any) -> dict[QualifiedName, tuple[str, ...]]:
    """Named native enum types of the models, with their labels in order."""
    found: dict[QualifiedName, tuple[str, ...]] = {}
    for md in metadata if isinstance(metadata, list | tuple) else [metadata]:
        if md is None:
            continue
        for table in md.tables.values():
            for column in table.columns:
                kind = column.type
                if isinstance(kind, sa.Enum) and kind.native_enum and kind.name:
                    found[QualifiedName(kind.name, kind.schema or table.schema)] = tuple(kind.enums)
    return found


def database_enums(connection: Any) -> dict[QualifiedName, tuple[str, ...]]:
    rows = connection.exec_driver_sql(
        "SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] "
        "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace "
        "GROUP BY 1, 2"
    ).fetchall()
    out: dict[QualifiedName, tuple[str, ...]] = {}
    for schema, name, labels in rows:
        out[QualifiedName(str(name), None if schema == "public" else str(schema))] = tuple(labels)
    return out


def _leaves(container: Any) -> Iterator[Any]:
    for op in getattr(container, "ops", ()):
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def _created_by_tables(upgrade_ops: Any) -> set[str]:
    """Enum types a ``create_table`` of the revision creates itself."""
    names = set()
    for op in _leaves(upgrade_ops):
        if isinstance(op, ops.CreateTableOp):
            for column in op.columns:
                kind = getattr(column, "type", None)
                if isinstance(kind, sa.Enum) and kind.name:
                    names.add(kind.name)
    return names


def _placed(labels: tuple[str, ...], existing: Iterable[str]) -> list[AddEnumValue]:
    """The labels missing from ``existing``, each placed next to a neighbour that exists."""
    present = list(existing)
    changes = []
    for i, label in enumerate(labels):
        if label in present:
            continue
        after = next((x for x in reversed(labels[:i]) if x in present), None)
        before = None if after is not None else next((x for x in labels[i + 1 :] if x in present), None)
        changes.append(AddEnumValue(name=QualifiedName(""), value=label, before=before, after=after))
        present.append(label)
    return changes


def compare_enums(
    autogen_context: Any, upgrade_ops: Any, version: PgVersion, policy: PlanPolicy | None = None
) -> None:
    """Put the enum changes the models need first in ``upgrade_ops`` (planned with the run's
    ``policy``: its lock timeout and retries)."""
    connection = getattr(autogen_context, "connection", None)
    if connection is None:
        return
    wanted = model_enums(getattr(autogen_context, "metadata", None))
    if not wanted:
        return
    have = database_enums(connection)
    by_table = _created_by_tables(upgrade_ops)
    new_ops: list[Any] = []
    for name, labels in sorted(wanted.items(), key=lambda kv: str(kv[0])):
        current = have.get(name)
        if current is None:
            if name.name in by_table:
                continue
            new_ops.append(_create_type(name, labels))
            continue
        adds = [
            AddEnumValue(name=name, value=c.value, before=c.before, after=c.after)
            for c in _placed(labels, current)
        ]
        if adds:
            plan = plan_changes(adds, version, policy=policy)
            title = f"add value(s) {', '.join(repr(a.value) for a in adds)} to enum {name}"
            new_ops.append(LockSafePlanOp(None, plan.steps, title=title, notes=plan.notes))
        gone = [label for label in current if label not in labels]
        if gone:
            new_ops.append(CommentOp([
                f"helios: enum {name} still has {', '.join(map(repr, gone))} in the database, no longer "
                "in the model. PostgreSQL cannot drop an enum value: if it was renamed, write "
                f"op.execute(\"ALTER TYPE {quote_qualified(name.schema, name.name)} RENAME VALUE 'old' TO 'new'\"); "
                "if it is unused, leave it or recreate the type in a maintenance window.",
            ]))
    upgrade_ops.ops[:0] = new_ops


def _create_type(name: QualifiedName, labels: tuple[str, ...]) -> LockSafePlanOp:
    qualified = quote_qualified(name.schema, name.name)
    values = ", ".join(quote_literal(label) for label in labels)
    exists = (
        "SELECT EXISTS (SELECT 1 FROM pg_type WHERE oid = to_regtype("
        f"{quote_literal(qualified)}))"
    )
    step = Step(
        description=f"create enum type {name}",
        phase=Phase.EXPAND,
        sql=(f"CREATE TYPE {qualified} AS ENUM ({values})",),
        transaction=TransactionMode.OWN,
        inverse=(f"DROP TYPE IF EXISTS {qualified}",),
        inverse_transaction=TransactionMode.OWN,
        done_when=exists,
        reason="a column of the models uses it and no table of this revision creates it",
    )
    return LockSafePlanOp(None, [step], title=f"create enum type {name}")
