"""``diff --plan``: the lock-safe plan that turns TARGET into SOURCE.

Each difference the planner can express becomes the SQL a person would write for it (``CREATE
INDEX``, ``ADD COLUMN``, ``SET DEFAULT``, ``ADD CONSTRAINT``, ``ALTER TYPE ... ADD VALUE`` ...),
read back by the SQL front end (:func:`helios_migrate.sql_parse.changes_from_sql`) and planned by
the same planner as autogenerate (:func:`helios_migrate.planner.plan_changes`): a missing index is
a concurrent build, a missing CHECK or foreign key is ``NOT VALID`` then ``VALIDATE``, and so on.
What it cannot express yet (a missing table, a changed view, an index whose definition changed,
enum values removed or reordered, sequences) is listed, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..changes import DropIndex, QualifiedName
from ..plan import Plan
from ..planner import PlanPolicy, UnrenderableChange, plan_changes
from ..review.revision import Fix, RevisionError, WrittenRevision, write_revision
from ..sql_parse import SqlSyntaxError, changes_from_sql
from ..sqltext import quote_ident, quote_literal
from ..versions import PgVersion
from .catalog import SchemaObject
from .compare import Difference, DiffResult, Status


@dataclass(frozen=True)
class Convergence:
    statements: tuple[tuple[Difference, str], ...]
    """Each expressible difference with the SQL that removes it (as written, before planning)."""
    unplanned: tuple[tuple[Difference, str], ...]
    """Each other difference with the reason."""
    plan: Plan | None


def _table(obj: SchemaObject) -> str:
    return f"{quote_ident(obj.parts[0])}.{quote_ident(obj.parts[1])}"


def _column_sql(obj: SchemaObject) -> str:
    text = f"{quote_ident(obj.parts[2])} {obj.attribute('type')}"
    if obj.attribute("identity"):
        text += f" GENERATED {obj.attribute('identity').upper()} AS IDENTITY"
    elif obj.attribute("default") is not None:
        text += f" DEFAULT {obj.attribute('default')}"
    return text + ("" if obj.attribute("nullable") else " NOT NULL")


def _enum_additions(source: tuple[str, ...], target: tuple[str, ...], type_sql: str) -> list[str] | None:
    """``ADD VALUE`` statements turning ``target`` into ``source``, or None when values were removed
    or reordered (a new type and a column swap: not planned here)."""
    if [v for v in source if v in target] != list(target):
        return None
    have = list(target)
    out = []
    for i, value in enumerate(source):
        if value in have:
            continue
        place = f" AFTER {quote_literal(source[i - 1])}" if i > 0 else (
            f" BEFORE {quote_literal(have[0])}" if have else "")
        out.append(f"ALTER TYPE {type_sql} ADD VALUE IF NOT EXISTS {quote_literal(value)}{place}")
        have.insert(i, value)
    return out


def _statements(d: Difference) -> list[str] | str:
    """SQL for ``d``, or the reason it is not planned."""
    mine, theirs = d.source, d.target
    if d.kind == "index" and d.status is Status.MISSING and mine is not None:
        return [_create_index_sql(mine)]
    if d.kind == "index" and d.status is Status.EXTRA and theirs is not None:
        return [f"DROP INDEX {quote_ident(theirs.parts[0])}.{quote_ident(theirs.parts[2])}"]
    if d.kind == "column" and d.status is Status.MISSING and mine is not None:
        if mine.attribute("generated"):
            return "a generated column is not planned by diff yet"
        return [f"ALTER TABLE {_table(mine)} ADD COLUMN {_column_sql(mine)}"]
    if d.kind == "column" and d.status is Status.EXTRA and theirs is not None:
        return [f"ALTER TABLE {_table(theirs)} DROP COLUMN {quote_ident(theirs.parts[2])}"]
    if d.kind == "column" and d.status is Status.DIFFERENT and mine is not None:
        alter = f"ALTER TABLE {_table(mine)} ALTER COLUMN {quote_ident(mine.parts[2])}"
        out: list[str] = []
        for change in d.changes:
            if change.attribute == "type":
                out.append(f"{alter} TYPE {change.source}")
            elif change.attribute == "default":
                out.append(f"{alter} DROP DEFAULT" if change.source is None else f"{alter} SET DEFAULT {change.source}")
            elif change.attribute == "nullable":
                out.append(f"{alter} DROP NOT NULL" if change.source else f"{alter} SET NOT NULL")
            else:
                return f"a change of {change.attribute} is not planned by diff yet"
        return out
    if d.kind == "constraint" and mine is not None and d.status is not Status.EXTRA:
        if mine.attribute("type") == "primary key" and d.status is Status.DIFFERENT:
            return "a changed primary key is not planned by diff yet"
        add = f"ALTER TABLE {_table(mine)} ADD CONSTRAINT {quote_ident(mine.parts[2])} {mine.attribute('definition')}"
        if d.status is Status.MISSING:
            return [add]
        return [f"ALTER TABLE {_table(mine)} DROP CONSTRAINT {quote_ident(mine.parts[2])}", add]
    if d.kind == "constraint" and d.status is Status.EXTRA and theirs is not None:
        return [f"ALTER TABLE {_table(theirs)} DROP CONSTRAINT {quote_ident(theirs.parts[2])}"]
    if d.kind == "enum" and mine is not None and d.status is Status.MISSING:
        values = ", ".join(quote_literal(v) for v in mine.attribute("values"))
        return [f"CREATE TYPE {_table(mine)} AS ENUM ({values})"]
    if d.kind == "enum" and mine is not None and theirs is not None:
        added = _enum_additions(tuple(mine.attribute("values")), tuple(theirs.attribute("values")), _table(mine))
        if added is None:
            return "enum values removed or reordered (a new type and a column swap) are not planned by diff yet"
        return added
    return f"{d.status.value} {d.kind} is not planned by diff yet"


def converge(result: DiffResult, version: PgVersion, policy: PlanPolicy | None = None) -> Convergence:
    """The plan turning TARGET into SOURCE, for the differences it can express."""
    statements: list[tuple[Difference, str]] = []
    unplanned: list[tuple[Difference, str]] = []
    for d in result.differences:
        sql = _statements(d)
        if isinstance(sql, str):
            unplanned.append((d, sql))
        else:
            statements += [(d, s) for s in sql]
    # what is added first, what is removed last (a new constraint may need a new column)
    statements.sort(key=lambda item: item[0].status is Status.EXTRA)
    if not statements:
        return Convergence((), tuple(unplanned), None)
    try:
        changes = changes_from_sql(";\n".join(s for _, s in statements) + ";")
        plan = plan_changes(changes, version, policy=policy)
    except (SqlSyntaxError, UnrenderableChange) as exc:
        raise ValueError(f"the converging plan cannot be built: {exc}") from None
    return Convergence(tuple(statements), tuple(unplanned), plan)


def render_plan(convergence: Convergence) -> str:
    """The plan as commented SQL, step by step, then what was not planned."""
    lines = [
        "-- plan turning TARGET into SOURCE, step by step as the planner wrote it: an 'own transaction'",
        "-- step runs alone with lock_timeout and retries, an 'autocommit' step outside any transaction",
    ]
    plan = convergence.plan
    if plan is not None:
        for number, step in enumerate(plan.steps, 1):
            lines.append(f"-- step {number} [{step.phase.value}, {step.transaction.value}]: {step.description}")
            if step.guard:
                lines.append(f"-- guarded (destroys data): {step.guard}")
            lines += [f"{sql.rstrip().rstrip(';')};" for sql in step.sql]
        lines += [f"-- note: {note}" for note in plan.notes]
    else:
        lines.append("-- nothing to plan")
    for d, reason in convergence.unplanned:
        lines.append(f"-- not planned: {d.kind} {d.name} ({d.status.value}): {reason}")
    return "\n".join(lines) + "\n"


def unplanned_names(convergence: Convergence) -> Sequence[str]:
    return [d.name for d, _ in convergence.unplanned]


def _create_index_sql(obj: SchemaObject) -> str:
    definition = str(obj.attribute("definition"))
    unique, _, rest = definition.partition("ON ") if definition.startswith("UNIQUE ") else ("", "", definition[3:])
    return f"CREATE {unique}INDEX {quote_ident(obj.parts[2])} ON {rest}"


def revision_fixes(result: DiffResult) -> tuple[list[Fix], list[tuple[Difference, str]]]:
    """The differences a converging revision holds (indexes: built or dropped, the drop's
    downgrade re-creating the index as TARGET has it), and the others with the reason."""
    fixes: list[Fix] = []
    others: list[tuple[Difference, str]] = []
    for d in result.differences:
        if d.kind == "index" and d.status is Status.MISSING and d.source is not None:
            fixes.append(Fix(f"{d.name} (missing)", tuple(changes_from_sql(_create_index_sql(d.source)))))
        elif d.kind == "index" and d.status is Status.EXTRA and d.target is not None:
            schema, table, name = d.target.parts
            drop = DropIndex(QualifiedName(name, schema), on=QualifiedName(table, schema))
            fixes.append(Fix(f"{d.name} (extra)", (drop,), tuple(changes_from_sql(_create_index_sql(d.target)))))
        else:
            others.append((d, f"{d.status.value} {d.kind}: --write writes indexes only; see --plan"))
    return fixes, others


def write_converging_revision(
    result: DiffResult, *, target_url: str, alembic_ini: Path, message: str
) -> tuple[WrittenRevision, list[tuple[Difference, str]]]:
    """Write the revision that builds the indexes TARGET lacks and drops those it has in excess,
    planned by the helios Alembic plugin against TARGET (as ``review --write-revision`` does)."""
    fixes, others = revision_fixes(result)
    if not fixes:
        raise RevisionError("no difference a revision can hold yet (indexes): nothing written")
    return write_revision(fixes, database_url=target_url, alembic_ini=alembic_ini, message=message), others
