"""Enum types: what Alembic's autogenerate does not compare.

Alembic compares tables and columns, not the labels of a PostgreSQL enum type: a label added to a
model's ``sa.Enum`` gives an empty revision, and a column switched to a new enum type gets no
``CREATE TYPE``.  This module compares the models' named native enums with ``pg_enum`` and puts,
first in the revision:

* ``CREATE TYPE`` for a type no table of the revision creates;
* ``ALTER TYPE ... RENAME VALUE`` for a rename confirmed in ``[tool.helios-migrate.autogenerate]
  renames = { "order_state.pending" = "awaiting" }`` (never guessed: a label gone and a label added
  at the same place may as well be a removal and an addition);
* ``ALTER TYPE ... ADD VALUE`` (outside the migration transaction, where the server needs it,
  placed ``BEFORE``/``AFTER`` its neighbours so the order matches the model);
* for labels gone from the model: when no column uses the type, the type created again with the
  model's labels (one short transaction, its downgrade restoring the old labels); when columns use
  it and no row holds the labels, a new type and each column converted to it by the expand/contract
  type change, then the old type dropped and the new one renamed; otherwise (rows hold them, or a
  label added beside them may be an unconfirmed rename) a plain refusal in the revision that says
  which columns, whether rows hold the labels (read with a short statement timeout) and what to do.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from helios_migrate.changes import AddEnumValue, AlterColumnType, QualifiedName
from helios_migrate.plan import Direction, Phase, Step, TransactionMode
from helios_migrate.planner import PlanPolicy, plan_changes
from helios_migrate.sqltext import quote_ident, quote_literal, quote_qualified
from helios_migrate.versions import PgVersion

from .ops import CommentOp, LockSafePlanOp
from .run_state import live_lookups
from .settings import project_config

log = logging.getLogger("alembic.helios")

IN_USE_TIMEOUT_MS = 2000
"""How long autogenerate may look for rows holding a label gone from the model, per column."""


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


def confirmed_renames(renames: Mapping[str, str], name: QualifiedName) -> dict[str, str]:
    """``old label -> new label`` of the type ``name`` from ``renames`` (``"[schema.]type.old" =
    "new"``, the form of a column rename)."""
    out: dict[str, str] = {}
    for key, new in renames.items():
        *qualifier, old = key.split(".")
        if not qualifier:
            continue
        if qualifier[-1] == name.name and (len(qualifier) == 1 or qualifier[0] == (name.schema or "public")):
            out[old] = new
    return out


def enum_columns(connection: Any, name: QualifiedName) -> list[tuple[str, str, str]]:
    """``(schema, table, column)`` of the columns of type ``name``."""
    rows = connection.exec_driver_sql(
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.atttypid = to_regtype(%(t)s) AND a.attnum > 0 AND NOT a.attisdropped "
        "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1, 2, 3",
        {"t": quote_qualified(name.schema, name.name)},
    ).fetchall()
    return [(str(s), str(t), str(c)) for s, t, c in rows]


def rows_holding(connection: Any, column: tuple[str, str, str], labels: list[str]) -> int | None:
    """How many rows of ``column`` hold one of ``labels`` (up to 1000), or None when it could not
    tell within :data:`IN_USE_TIMEOUT_MS` (a savepoint keeps the run's transaction usable)."""
    schema, table, name = column
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM {quote_ident(schema)}.{quote_ident(table)} "
        f"WHERE {quote_ident(name)}::text = ANY(%(labels)s) LIMIT 1000) found"
    )
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {IN_USE_TIMEOUT_MS}")
            count = connection.exec_driver_sql(sql, {"labels": labels}).scalar()
            connection.exec_driver_sql("SET LOCAL statement_timeout = DEFAULT")
    except sa.exc.DBAPIError as exc:
        log.warning("helios: could not tell whether %s.%s.%s holds %s: %s", schema, table, name, labels, exc.orig)
        return None
    return int(count)


def _rename_values(name: QualifiedName, renames: dict[str, str], policy: PlanPolicy | None) -> LockSafePlanOp:
    qualified = quote_qualified(name.schema, name.name)
    up = [f"ALTER TYPE {qualified} RENAME VALUE {quote_literal(o)} TO {quote_literal(n)}" for o, n in renames.items()]
    down = [f"ALTER TYPE {qualified} RENAME VALUE {quote_literal(n)} TO {quote_literal(o)}" for o, n in renames.items()]
    step = Step(
        description=f"rename value(s) of enum {name}: " + ", ".join(f"{o!r} to {n!r}" for o, n in renames.items()),
        phase=Phase.EXPAND,
        sql=tuple(up),
        transaction=TransactionMode.OWN,
        retry=(policy or PlanPolicy()).retry(),
        inverse=tuple(reversed(down)),
        inverse_transaction=TransactionMode.OWN,
        reason="confirmed in [tool.helios-migrate.autogenerate] renames: rows keep their value under the new "
        "label (a catalog change; the type is locked briefly, no table is)",
    )
    return LockSafePlanOp(None, [step], title=f"rename value(s) of enum {name}")


def _recreate_type(
    name: QualifiedName, labels: tuple[str, ...], current: tuple[str, ...], policy: PlanPolicy | None
) -> LockSafePlanOp:
    qualified = quote_qualified(name.schema, name.name)

    def create(values: tuple[str, ...]) -> str:
        return f"CREATE TYPE {qualified} AS ENUM ({', '.join(quote_literal(v) for v in values)})"

    step = Step(
        description=f"create enum type {name} again without {', '.join(repr(v) for v in current if v not in labels)}",
        phase=Phase.CONTRACT,
        sql=(f"DROP TYPE {qualified}", create(labels)),
        transaction=TransactionMode.OWN,
        retry=(policy or PlanPolicy()).retry(),
        inverse=(f"DROP TYPE {qualified}", create(current)),
        inverse_transaction=TransactionMode.OWN,
        reason="PostgreSQL cannot drop an enum value; no column uses the type, so it is dropped and created "
        "again in one transaction (a function or view that uses it makes DROP TYPE fail: nothing changes)",
    )
    return LockSafePlanOp(None, [step], title=f"remove value(s) from enum {name}")


def _refusal(name: QualifiedName, gone: list[str], columns: list[tuple[str, str, str]], connection: Any) -> CommentOp:
    qualified = quote_qualified(name.schema, name.name)
    lines = [
        f"helios: NOT DONE: enum {name} still has {', '.join(map(repr, gone))} in the database, no longer in "
        "the model. PostgreSQL cannot drop an enum value, and converting its columns to a new type "
        "rewrites each table under ACCESS EXCLUSIVE, so this revision does not remove it.",
    ]
    for column in columns:
        held = rows_holding(connection, column, gone)
        where = ".".join(column)
        if held is None:
            lines.append(f"helios: {where} uses the type; whether rows hold these labels could not be told quickly.")
        elif held:
            more = "at least " if held >= 1000 else ""
            lines.append(f"helios: {where} uses the type and {more}{held} row(s) hold these labels: move them to "
                         "another label first (a data migration), or they would be lost.")
        else:
            lines.append(f"helios: {where} uses the type; no row holds these labels.")
    lines += [
        "helios: if the label was renamed, confirm it: [tool.helios-migrate.autogenerate] renames = "
        f"{{ \"{name.name}.{gone[0]}\" = \"new_label\" }} (ALTER TYPE {qualified} RENAME VALUE). "
        "To remove it, once no row holds it: create a new type without it, convert each column in a "
        "maintenance window (ALTER COLUMN ... TYPE new USING col::text::new), drop the old type and "
        "rename the new one; or leave the label in place.",
    ]
    return CommentOp(lines)


class _Renamed:
    """The live facts as the downgrade will find them: the column's type then carries the new
    type's temporary name (its re-run check compares with it)."""

    def __init__(self, facts: Any, type_text: str) -> None:
        self._facts = facts
        self._type = type_text

    def column_dependents(self, table: QualifiedName, column: str) -> Any:
        return dataclasses.replace(self._facts.column_dependents(table, column), format_type=self._type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facts, name)


class _DefaultOnNewType:
    """The live facts with the column's default cast to the new type (``'new'::order_state``
    becomes ``'new'::order_state__new``: the converted copy's default must be of its type; once
    the new type takes the old name, the default reads as before)."""

    def __init__(self, facts: Any, old: str, new: str) -> None:
        self._facts = facts
        self._old = re.compile(rf"::{re.escape(old)}\b(?!__)")
        self._new = f"::{new}"

    def column_details(self, table: QualifiedName, column: str) -> Any:
        details = self._facts.column_details(table, column)
        if details.default is None:
            return details
        return dataclasses.replace(details, default=self._old.sub(lambda _: self._new, details.default))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facts, name)


class _Conversion(LockSafePlanOp):
    """A column converted between two enum types: its downgrade is the conversion planned the other
    way (``USING col::text::old``), not the steps' inverses (which would cast one enum type to the
    other directly: PostgreSQL has no such cast)."""

    def __init__(self, steps: Sequence[Step], back: Sequence[Step], *, title: str, notes: Sequence[str]) -> None:
        super().__init__(None, steps, title=title, notes=notes)
        self.back = tuple(back)

    def reverse(self) -> LockSafePlanOp:
        steps = [dataclasses.replace(s, direction=Direction.DOWNGRADE) for s in self.back]
        return LockSafePlanOp(None, steps, title=f"undo: {self.title}", downgrade=True)


def _swap_type(
    name: QualifiedName, labels: tuple[str, ...], current: tuple[str, ...], columns: list[tuple[str, str, str]],
    version: PgVersion, policy: PlanPolicy | None, lookups: tuple[Any, Any],
) -> list[LockSafePlanOp]:
    """Labels gone from a type columns use, no row holding them: a new type with the model's
    labels, each column converted to it by the expand/contract type change (a copy column kept in
    sync by a trigger, batched backfill, a short swap: ``USING col::text::new``), then the old type
    dropped and the new one renamed to it."""
    qualified = quote_qualified(name.schema, name.name)
    temp = f"{name.name}__new"
    new = quote_qualified(name.schema, temp)

    def create(type_name: str, values: tuple[str, ...]) -> str:
        return f"CREATE TYPE {type_name} AS ENUM ({', '.join(quote_literal(v) for v in values)})"

    gone = ", ".join(repr(v) for v in current if v not in labels)
    retry = (policy or PlanPolicy()).retry()
    out = [LockSafePlanOp(None, [Step(
        description=f"create enum type {temp} with the model's labels (without {gone})",
        phase=Phase.EXPAND, sql=(f"DROP TYPE IF EXISTS {new}", create(new, labels)),
        transaction=TransactionMode.OWN, retry=retry,
        inverse=(f"DROP TYPE IF EXISTS {new}",), inverse_transaction=TransactionMode.OWN,
        reason="PostgreSQL cannot drop an enum value: the columns move to a new type without it",
    )], title=f"new enum type for {name}")]
    catalog, facts = lookups
    for schema, table, column in columns:
        col = quote_ident(column)
        change = AlterColumnType(
            on=QualifiedName(table, None if schema == "public" else schema), column=column, new_type=new,
            using=f"{col}::text::{new}", old_type=qualified,
        )
        forward = _DefaultOnNewType(facts, qualified, new) if facts else None
        plan = plan_changes([change], version, policy=policy, facts=forward, catalog=catalog)
        # back: the same change the other way (no cast joins two enum types: through text too)
        back = AlterColumnType(
            on=change.on, column=column, new_type=qualified, using=f"{col}::text::{qualified}", old_type=new,
        )
        undo = plan_changes([back], version, policy=policy, facts=_Renamed(facts, temp) if facts else None,
                            catalog=catalog)
        out.append(_Conversion(
            plan.steps, undo.steps, title=f"convert {schema}.{table}.{column} to {temp}", notes=plan.notes,
        ))
    out.append(LockSafePlanOp(None, [Step(
        description=f"drop the old enum type {name} and give {temp} its name",
        phase=Phase.CONTRACT, sql=(f"DROP TYPE {qualified}", f"ALTER TYPE {new} RENAME TO {quote_ident(name.name)}"),
        transaction=TransactionMode.OWN, retry=retry,
        inverse=(f"ALTER TYPE {qualified} RENAME TO {quote_ident(temp)}", create(qualified, current)),
        inverse_transaction=TransactionMode.OWN,
        reason="no column uses the old type any more (a function or view that does makes DROP TYPE fail: "
        "nothing changes)",
    )], title=f"rename enum type {temp} to {name}"))
    return out


def compare_enums(
    autogen_context: Any, upgrade_ops: Any, version: PgVersion, policy: PlanPolicy | None = None,
    renames: Mapping[str, str] | None = None,
) -> None:
    """Put the enum changes the models need first in ``upgrade_ops`` (planned with the run's
    ``policy``: its lock timeout and retries); ``renames``: the confirmed renames (default: the
    project's ``[tool.helios-migrate.autogenerate] renames``)."""
    connection = getattr(autogen_context, "connection", None)
    if connection is None:
        return
    wanted = model_enums(getattr(autogen_context, "metadata", None))
    if not wanted:
        return
    if renames is None:
        renames = project_config().autogenerate.renames
    have = database_enums(connection)
    by_table = _created_by_tables(upgrade_ops)
    new_ops: list[Any] = []

    def renames_of(name: QualifiedName) -> dict[str, str]:
        return confirmed_renames(renames or {}, name)

    for name, labels in sorted(wanted.items(), key=lambda kv: str(kv[0])):
        current = have.get(name)
        if current is None:
            if name.name in by_table:
                continue
            new_ops.append(_create_type(name, labels))
            continue
        unconfirmed = [label for label in current if label not in labels and label not in renames_of(name)]
        columns = enum_columns(connection, name) if unconfirmed else []
        if unconfirmed and not columns:  # no column uses it: the type made again with the model's labels
            new_ops.append(_recreate_type(name, labels, current, policy))
            continue
        renamed = {
            old: new for old, new in renames_of(name).items()
            if old in current and new in labels and new not in current and old not in labels
        }
        if renamed:
            new_ops.append(_rename_values(name, renamed, policy))
            current = tuple(renamed.get(label, label) for label in current)
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
            columns = columns or enum_columns(connection, name)
            # a label added too may be an unconfirmed rename: the refusal says how to confirm it
            if columns and not adds and all(rows_holding(connection, c, gone) == 0 for c in columns):
                new_ops += _swap_type(name, labels, current, columns, version, policy, live_lookups(autogen_context))
            else:
                new_ops.append(_refusal(name, gone, columns, connection))
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
