"""``diff --plan``: the lock-safe plan that turns TARGET into SOURCE.

Each difference the planner can express becomes the SQL a person would write for it (``CREATE
INDEX``, ``ADD COLUMN``, ``ADD CONSTRAINT``, ``ALTER TYPE ... ADD VALUE``, ``CREATE OR REPLACE
FUNCTION`` as ``pg_get_functiondef`` prints it, ``CREATE TRIGGER`` as ``pg_get_triggerdef`` prints
it, ``CREATE EXTENSION``, ``COMMENT ON``, ``GRANT``/``REVOKE``, ``ENABLE ROW LEVEL SECURITY``,
``CREATE``/``ALTER``/``DROP POLICY``, ``OWNER TO`` ...), read back by the SQL front end
(:func:`helios_migrate.sql_parse.changes_from_sql`) and planned by the same planner as
autogenerate (:func:`helios_migrate.planner.plan_changes`), with TARGET's table facts when TARGET
is a live database: a missing index is a concurrent build, a missing CHECK or foreign key is ``NOT
VALID`` then ``VALIDATE``, a trigger (SHARE ROW EXCLUSIVE) or a policy (ACCESS EXCLUSIVE) goes into
a short transaction of its own under ``lock_timeout`` with retries.

The inverse of a difference is the difference seen from the other side (missing <-> extra), so
every step's undo is planned the same way, or named as what cannot be undone.  A missing table is
created from SOURCE's catalog (its constraints and indexes then built as written: it is new and
empty), views and sequences are created, replaced or altered, and an index whose definition
changed is built concurrently under a temporary name before the old one is dropped.  What cannot
be expressed (an extra table without the data-loss opt-in, a changed materialized view, enum
values removed or reordered, ...) is listed, never silently skipped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pglast
from alembic.operations import ops

from ..changes import CreateIndex, DropIndex, QualifiedName
from ..facts import DatabaseFacts
from ..plan import Origin, Plan, Step, TransactionMode
from ..planner import PlannerFacts, PlanPolicy, UnrenderableChange, plan_changes
from ..review.revision import Fix, RevisionError, WrittenRevision, write_revision
from ..runtime import ALLOW_DATA_LOSS_VAR
from ..sql_parse import SqlSyntaxError, changes_from_sql, constraint_from_definition
from ..sqltext import quote_ident, quote_literal
from ..versions import PgVersion
from .catalog import SchemaObject
from .compare import KINDS, AttributeChange, Difference, DiffResult, Status


@dataclass(frozen=True)
class PlannedDifference:
    """One difference, the SQL that removes it, its planned steps and how it is undone."""

    difference: Difference
    statements: tuple[str, ...]
    steps: tuple[Step, ...]
    undo: tuple[str, ...] | None
    """The SQL that brings TARGET's state back (the difference seen from the other side)."""
    undo_refused: str = ""
    """Why it cannot be undone, when ``undo`` is None."""


@dataclass(frozen=True)
class Convergence:
    statements: tuple[tuple[Difference, str], ...]
    """Each expressible difference with the SQL that removes it (as written, before planning)."""
    unplanned: tuple[tuple[Difference, str], ...]
    """Each other difference with the reason."""
    plan: Plan | None
    planned: tuple[PlannedDifference, ...] = ()
    """The same plan, difference by difference (what ``--write`` writes)."""


def _table(obj: SchemaObject) -> str:
    return f"{quote_ident(obj.parts[0])}.{quote_ident(obj.parts[1])}"


def _column_sql(obj: SchemaObject) -> str:
    text = f"{quote_ident(obj.parts[2])} {obj.attribute('type')}"
    if obj.attribute("generated"):
        text += f" GENERATED ALWAYS AS ({obj.attribute('default')}) {str(obj.attribute('generated')).upper()}"
    elif obj.attribute("identity"):
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


def _statements(d: Difference, version: PgVersion | None = None, _plain_index: bool = False) -> list[str] | str:
    """SQL for ``d``, or the reason it is not planned."""
    mine, theirs = d.source, d.target
    if d.kind == "index" and d.status is Status.DIFFERENT and not _plain_index:
        return _changed_index(d, version)
    more = _MORE.get(d.kind)
    if more is not None:
        found: list[str] | str = more(d, version)
        return found
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


# --- functions, triggers, extensions, comments, RLS, policies, grants, owners -------------------


def _name(obj: SchemaObject, on: str | None = None) -> str:
    """The object's name as ``COMMENT ON`` / ``GRANT ... ON`` / ``ALTER ... OWNER`` spell it."""
    on = on or obj.on or obj.kind
    parts = obj.parts
    if on in ("function", "procedure"):
        return f"{quote_ident(parts[0])}.{quote_ident(parts[1])}({parts[2]})"
    if on in ("constraint", "trigger", "policy"):
        return f"{quote_ident(parts[2])} ON {quote_ident(parts[0])}.{quote_ident(parts[1])}"
    return ".".join(quote_ident(p) for p in parts)


def _function(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine, theirs = d.source, d.target
    if d.status is Status.EXTRA and theirs is not None:
        return [f"DROP {str(theirs.attribute('kind')).upper()} IF EXISTS {_name(theirs, 'function')}"]
    if mine is None or not mine.sql:
        return "no definition was read for it"
    if d.status is Status.DIFFERENT and any(c.attribute in ("returns", "kind") for c in d.changes):
        # CREATE OR REPLACE cannot change the result type: dropped and created in one transaction
        # (no CASCADE: a trigger, view or default that uses it stops the drop, nothing changes)
        theirs = d.target
        assert theirs is not None
        return [f"DROP {str(theirs.attribute('kind')).upper()} {_name(theirs, 'function')}",
                mine.sql.strip().rstrip(";")]
    return [mine.sql.strip().rstrip(";")]


_ENABLE = {
    "enabled": "ENABLE TRIGGER", "disabled": "DISABLE TRIGGER", "replica": "ENABLE REPLICA TRIGGER",
    "always": "ENABLE ALWAYS TRIGGER",
}


def _trigger(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine, theirs = d.source, d.target
    if d.status is Status.EXTRA and theirs is not None:
        return [f"DROP TRIGGER IF EXISTS {_name(theirs)}"]
    if mine is None or not mine.sql:
        return "no definition was read for it"
    table = _table(mine)
    enable = f"ALTER TABLE {table} {_ENABLE[str(mine.attribute('enabled'))]} {quote_ident(mine.parts[2])}"
    out: list[str] = []
    redefine = d.status is Status.MISSING or any(c.attribute == "definition" for c in d.changes)
    if redefine:
        definition = mine.sql.strip()
        if d.status is Status.DIFFERENT:
            if "CONSTRAINT TRIGGER" in definition.split(" ON ", 1)[0]:
                return "a changed constraint trigger is dropped and created again by hand"
            if version is not None and version.major < 14:
                # no CREATE OR REPLACE TRIGGER before 14: dropped and created in one transaction
                out.append(f"DROP TRIGGER {_name(mine)}")
            else:
                definition = definition.replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", 1)
        out.append(definition)
    if mine.attribute("enabled") != "enabled" or (not redefine and d.status is Status.DIFFERENT):
        out.append(enable)
    return out


def _extension(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine, theirs = d.source, d.target
    if d.status is Status.EXTRA and theirs is not None:
        return [f"DROP EXTENSION IF EXISTS {quote_ident(theirs.parts[0])}"]
    assert mine is not None
    name = quote_ident(mine.parts[0])
    if d.status is Status.MISSING:
        return [f"CREATE EXTENSION IF NOT EXISTS {name} WITH SCHEMA {quote_ident(str(mine.attribute('schema')))} "
                f"VERSION {quote_literal(str(mine.attribute('version')))}"]
    out = []
    for change in d.changes:
        if change.attribute == "version":
            out.append(f"ALTER EXTENSION {name} UPDATE TO {quote_literal(str(change.source))}")
        elif change.attribute == "schema":
            out.append(f"ALTER EXTENSION {name} SET SCHEMA {quote_ident(str(change.source))}")
    return out


def _comment(d: Difference, version: PgVersion | None) -> list[str] | str:
    obj = d.source or d.target
    assert obj is not None
    on = str(obj.on).upper()
    text = "NULL" if d.source is None else quote_literal(str(d.source.attribute("text")))
    return [f"COMMENT ON {on} {_name(obj)} IS {text}"]


def _rls(d: Difference, version: PgVersion | None) -> list[str] | str:
    obj = d.source or d.target
    assert obj is not None
    want = d.source.attributes if d.source is not None else (("enabled", False), ("forced", False))
    have = d.target.attributes if d.target is not None else (("enabled", False), ("forced", False))
    wanted, had = dict(want), dict(have)
    out = []
    if wanted["enabled"] != had["enabled"]:
        out.append(f"ALTER TABLE {_table(obj)} {'ENABLE' if wanted['enabled'] else 'DISABLE'} ROW LEVEL SECURITY")
    if wanted["forced"] != had["forced"]:
        out.append(f"ALTER TABLE {_table(obj)} {'' if wanted['forced'] else 'NO '}FORCE ROW LEVEL SECURITY")
    return out


def _roles(roles: Sequence[str]) -> str:
    return ", ".join(r if r == "PUBLIC" else quote_ident(r) for r in roles)


def _create_policy(obj: SchemaObject) -> str:
    text = (f"CREATE POLICY {_name(obj)} AS {str(obj.attribute('as')).upper()} FOR {obj.attribute('command')} "
            f"TO {_roles(obj.attribute('roles') or ('PUBLIC',))}")
    if obj.attribute("using") is not None:
        text += f" USING ({obj.attribute('using')})"
    if obj.attribute("with_check") is not None:
        text += f" WITH CHECK ({obj.attribute('with_check')})"
    return text


def _policy(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine, theirs = d.source, d.target
    if d.status is Status.EXTRA and theirs is not None:
        return [f"DROP POLICY IF EXISTS {_name(theirs)}"]
    assert mine is not None
    if d.status is Status.MISSING:
        return [_create_policy(mine)]
    changed = {c.attribute for c in d.changes}
    if changed & {"as", "command"} or any(
        c.attribute in ("using", "with_check") and c.source is None for c in d.changes
    ):  # ALTER POLICY cannot change these: drop and create, in one transaction (one step)
        return [f"DROP POLICY {_name(mine)}", _create_policy(mine)]
    text = f"ALTER POLICY {_name(mine)}"
    if "roles" in changed:
        text += f" TO {_roles(mine.attribute('roles') or ('PUBLIC',))}"
    if "using" in changed:
        text += f" USING ({mine.attribute('using')})"
    if "with_check" in changed:
        text += f" WITH CHECK ({mine.attribute('with_check')})"
    return [text]


def _grant_target(obj: SchemaObject) -> str:
    on = str(obj.on)
    word = {"sequence": "SEQUENCE", "function": "FUNCTION", "procedure": "PROCEDURE"}.get(on, "TABLE")
    return f"{word} {_name(obj)}"


def _split(privileges: Sequence[str]) -> tuple[list[str], list[str]]:
    plain = [p for p in privileges if not p.endswith(" WITH GRANT OPTION")]
    return plain, [p.removesuffix(" WITH GRANT OPTION") for p in privileges if p not in plain]


def _grant(d: Difference, version: PgVersion | None) -> list[str] | str:
    """What TARGET lacks is granted and what it has in excess revoked, privilege by privilege (a
    role never loses, in between, a privilege it keeps)."""
    obj = d.source or d.target
    assert obj is not None
    grantee = _roles([str(obj.attribute("grantee"))])
    want = [str(p) for p in (d.source.attribute("privileges") if d.source else ()) or ()]
    have = [str(p) for p in (d.target.attribute("privileges") if d.target else ()) or ()]
    on = _grant_target(obj)
    out = []
    plain_want, option_want = _split(want)
    plain_have, option_have = _split(have)
    gone = [p for p in plain_have if p not in plain_want and p not in option_want]
    gone_option = [p for p in option_have if p not in option_want]
    if gone:
        out.append(f"REVOKE {', '.join(gone)} ON {on} FROM {grantee}")
    if gone_option:
        revoke = "GRANT OPTION FOR " if any(p in plain_want for p in gone_option) else ""
        out.append(f"REVOKE {revoke}{', '.join(gone_option)} ON {on} FROM {grantee}")
    new = [p for p in plain_want if p not in plain_have]
    new_option = [p for p in option_want if p not in option_have]
    if new:
        out.append(f"GRANT {', '.join(new)} ON {on} TO {grantee}")
    if new_option:
        out.append(f"GRANT {', '.join(new_option)} ON {on} TO {grantee} WITH GRANT OPTION")
    return out


def _owner(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine = d.source
    if mine is None:
        return []  # the object itself is extra: dropping it removes its owner
    on = str(mine.on).upper()
    return [f"ALTER {on} {_name(mine)} OWNER TO {_roles([str(mine.attribute('owner'))])}"]


# --- tables, views, sequences, changed indexes ------------------------------------------------


def _allow_data_loss() -> bool:
    return os.environ.get(ALLOW_DATA_LOSS_VAR, "").strip().lower() in {"1", "true", "yes"}


def _create_table(table: SchemaObject, members: Sequence[SchemaObject]) -> list[str] | str:
    """``CREATE TABLE`` with the columns as the catalog describes them, then its constraints and
    indexes (a table created in the same revision is empty: they are built as written, in the
    migration transaction, no concurrent build needed)."""
    if table.attribute("kind") == "partitioned":
        return "a partitioned table (its partition key and partitions are not read by diff): create it by hand"
    columns = [m for m in members if m.kind == "column"]
    if not columns:
        return "no column was read for it"
    out = [f"CREATE TABLE {_table(table)} ({', '.join(_column_sql(c) for c in columns)})"]
    constraints = [m for m in members if m.kind == "constraint"]
    # keys first: a foreign key of the table onto itself needs its key
    constraints.sort(key=lambda m: m.attribute("type") not in ("primary key", "unique"))
    out += [f"ALTER TABLE {_table(table)} ADD CONSTRAINT {quote_ident(m.parts[2])} {m.attribute('definition')}"
            for m in constraints]
    out += [_create_index_sql(m) for m in members if m.kind == "index"]
    return out


def _table_kind(d: Difference, version: PgVersion | None, *, undo: bool = False) -> list[str] | str:
    mine, theirs = d.source, d.target
    if d.status is Status.MISSING and mine is not None:
        return _create_table(mine, d.members)
    if d.status is Status.EXTRA and theirs is not None:
        if not (undo or _allow_data_loss()):
            return (f"dropping it loses its rows: set {ALLOW_DATA_LOSS_VAR}=1 to plan DROP TABLE "
                    "(after the code that used it is gone)")
        return [f"DROP TABLE IF EXISTS {_table(theirs)}"]
    return f"{d.status.value} table is not planned by diff yet"


def _view_columns(definition: str) -> list[str] | None:
    """The output column names of a view's query as ``pg_get_viewdef`` prints it (None: unknown)."""
    try:
        tree = pglast.parse_sql(definition)
    except pglast.parser.ParseError:
        return None
    stmt = tree[0].stmt if tree else None
    if not isinstance(stmt, pglast.ast.SelectStmt) or not stmt.targetList:
        return None
    names = []
    for target in stmt.targetList:
        if target.name:
            names.append(str(target.name))
        elif isinstance(target.val, pglast.ast.ColumnRef) and isinstance(
            last := (target.val.fields or (None,))[-1], pglast.ast.String
        ):
            names.append(str(last.sval))
        else:
            return None  # a star or an unnamed expression
    return names


def _view(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine, theirs = d.source, d.target
    obj = mine or theirs
    assert obj is not None
    materialized = obj.attribute("kind") == "materialized"
    word = "MATERIALIZED VIEW" if materialized else "VIEW"
    if d.status is Status.EXTRA and theirs is not None:
        # no CASCADE: a view or function that depends on it stops the drop (nothing else goes)
        return [f"DROP {word} IF EXISTS {_table(theirs)}"]
    assert mine is not None
    query = str(mine.attribute("definition")).strip().rstrip(";").strip()
    if d.status is Status.MISSING:
        if materialized:
            # filled by the creating statement: one run of its query, as WITH NO DATA then REFRESH
            # would cost, with nothing reading the new view meanwhile
            return [f"CREATE MATERIALIZED VIEW {_table(mine)} AS {query}"]
        return [f"CREATE OR REPLACE VIEW {_table(mine)} AS {query}"]
    if theirs is not None and (materialized or theirs.attribute("kind") == "materialized"):
        return ("a changed materialized view is rebuilt by hand: dropping it loses its rows and indexes "
                "until it is created and refreshed again")
    before = _view_columns(str(theirs.attribute("definition")).strip().rstrip(";")) if theirs else None
    after = _view_columns(query)
    if before is not None and after is not None and after[:len(before)] == before:
        # same columns first, in order (new ones at the end): CREATE OR REPLACE keeps dependants
        return [f"CREATE OR REPLACE VIEW {_table(mine)} AS {query}"]
    return [f"DROP VIEW {_table(mine)}", f"CREATE VIEW {_table(mine)} AS {query}"]


def _sequence_options(obj: SchemaObject, changed: set[str] | None = None) -> str:
    def wanted(attribute: str) -> bool:
        return changed is None or attribute in changed

    parts = []
    if wanted("type"):
        parts.append(f"AS {obj.attribute('type')}")
    if wanted("increment"):
        parts.append(f"INCREMENT BY {int(obj.attribute('increment'))}")
    if wanted("min"):
        parts.append(f"MINVALUE {int(obj.attribute('min'))}")
    if wanted("max"):
        parts.append(f"MAXVALUE {int(obj.attribute('max'))}")
    if wanted("start"):
        # START WITH records the start value only; it never moves a live sequence (no RESTART)
        parts.append(f"START WITH {int(obj.attribute('start'))}")
    if wanted("cycle"):
        parts.append("CYCLE" if obj.attribute("cycle") else "NO CYCLE")
    return " ".join(parts)


def _owned_by(obj: SchemaObject) -> str:
    owner = obj.attribute("owned_by")
    if not owner:
        return f"ALTER SEQUENCE {_table(obj)} OWNED BY NONE"
    schema, table, column = str(owner).split(".", 2)
    return f"ALTER SEQUENCE {_table(obj)} OWNED BY {quote_ident(schema)}.{quote_ident(table)}.{quote_ident(column)}"


def _sequence(d: Difference, version: PgVersion | None) -> list[str] | str:
    mine, theirs = d.source, d.target
    if d.status is Status.EXTRA and theirs is not None:
        # no CASCADE: a column default that still calls nextval() stops the drop
        return [f"DROP SEQUENCE IF EXISTS {_table(theirs)}"]
    assert mine is not None
    if d.status is Status.MISSING:
        out = [f"CREATE SEQUENCE IF NOT EXISTS {_table(mine)} {_sequence_options(mine)}"]
        return out + ([_owned_by(mine)] if mine.attribute("owned_by") else [])
    changed = {c.attribute for c in d.changes}
    out = []
    options = changed - {"owned_by"}
    if options:
        out.append(f"ALTER SEQUENCE {_table(mine)} {_sequence_options(mine, options)}")
    if "owned_by" in changed:
        out.append(_owned_by(mine))
    return out


def _changed_index(d: Difference, version: PgVersion | None = None) -> list[str] | str:
    """The new definition built concurrently under a temporary name, the old index dropped
    concurrently, the new one renamed (the same build/drop steps as a missing and an extra index)."""
    mine, theirs = d.source, d.target
    if d.status is not Status.DIFFERENT or mine is None or theirs is None:
        return _statements(d, version, _plain_index=True)
    if {c.attribute for c in d.changes} == {"valid"}:
        return "an INVALID index (a failed concurrent build): drop it and build it again"
    schema, _, name = mine.parts
    temp = _rebuilt_name(name)
    build = _create_index_sql(dataclasses.replace(mine, parts=(schema, mine.parts[1], temp)))
    return [
        build,
        f"DROP INDEX {quote_ident(schema)}.{quote_ident(name)}",
        f"ALTER INDEX IF EXISTS {quote_ident(schema)}.{quote_ident(temp)} RENAME TO {quote_ident(name)}",
    ]


def _rebuilt_name(name: str) -> str:
    """The temporary name a changed index is built under (63 bytes at most, as PostgreSQL keeps)."""
    return f"{name}__new".encode()[:63].decode(errors="ignore")


_MORE: dict[str, Callable[[Difference, PgVersion | None], list[str] | str]] = {
    "function": _function, "trigger": _trigger, "extension": _extension, "comment": _comment,
    "rls": _rls, "policy": _policy, "grant": _grant, "owner": _owner,
    "table": _table_kind, "view": _view, "sequence": _sequence,
}

_ONE_STEP = {"trigger", "policy", "grant", "view", "function"}
"""Kinds whose statements run as one step (one transaction): a trigger or policy dropped and
created again, privileges revoked and granted again, are never missing in between."""


def swapped(d: Difference) -> Difference:
    """The difference seen from the other side: what undoes the convergence of ``d``."""
    status = {Status.MISSING: Status.EXTRA, Status.EXTRA: Status.MISSING}.get(d.status, d.status)
    return Difference(
        status, d.kind, d.name, d.target, d.source,
        tuple(AttributeChange(c.attribute, c.target, c.source) for c in d.changes), d.members,
    )


def _undo_statements(d: Difference, version: PgVersion | None) -> list[str] | str:
    """The SQL that brings TARGET's state back: a table the upgrade created is dropped (it holds
    only the rows written since), without the opt-in a drift's drop needs."""
    back = swapped(d)
    if back.kind == "table":
        return _table_kind(back, version, undo=True)
    return _statements(back, version)


def _order(d: Difference) -> tuple[int, float]:
    """What is added first, in dependency order (an extension before the function using it, a
    column before its constraint, a function before its trigger); what is removed last, in the
    opposite order (a trigger before its function, a view before its column)."""
    # a sequence comes before the tables whose defaults call it (and is dropped after them)
    index = KINDS.index("table") - 0.5 if d.kind == "sequence" else (
        KINDS.index(d.kind) if d.kind in KINDS else len(KINDS))
    return (1, -index) if d.status is Status.EXTRA else (0, index)


def _referenced(d: Difference) -> set[str]:
    """The tables a missing table's foreign keys reference (``schema.table``; unqualified names
    are in ``public``, as ``pg_get_constraintdef`` prints them on the default search path)."""
    out = set()
    for member in d.members:
        if member.kind != "constraint" or member.attribute("type") != "foreign key":
            continue
        constraint = constraint_from_definition(str(member.attribute("definition")))
        if constraint is None or constraint.references is None:
            continue
        table = constraint.references.table
        out.add(f"{table.schema or 'public'}.{table.name}")
    return out


def _tables_in_dependency_order(differences: list[Difference]) -> list[Difference]:
    """Indexes of missing materialized views moved after the views; missing tables moved after the missing tables their foreign keys reference (a cycle keeps
    the name order: its first step fails and rolls back, saying which table is missing)."""
    views = {d.name for d in differences if d.kind == "view" and d.status is Status.MISSING}
    on_views = [d for d in differences if d.kind == "index" and d.source is not None and d.source.table in views]
    if on_views:  # an index of a missing materialized view: built once the view exists
        differences = [d for d in differences if d not in on_views]
        last = max(i for i, d in enumerate(differences) if d.kind == "view" and d.name in views)
        differences[last + 1:last + 1] = on_views
    missing = {d.name: d for d in differences if d.kind == "table" and d.status is Status.MISSING}
    if len(missing) < 2:
        return differences
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return
        visiting.add(name)
        for other in sorted(_referenced(missing[name]) & set(missing)):
            if other != name:
                visit(other)
        visiting.discard(name)
        ordered.append(name)

    for name in missing:
        visit(name)
    queue = iter(ordered)
    return [missing[next(queue)] if d.name in missing and d.kind == "table" and d.status is Status.MISSING else d
            for d in differences]


def _owned_by_created_tables(per_difference: list[tuple[Difference, list[str]]]) -> None:
    """A missing sequence owned by a column of a missing table: ``OWNED BY`` moves after the
    table's creation (the sequence is created first: the table's default calls it)."""
    created = {d.name: sql for d, sql in per_difference if d.kind == "table" and d.status is Status.MISSING}
    for d, sql in per_difference:
        if d.kind != "sequence" or d.status is not Status.MISSING or d.source is None:
            continue
        owner = str(d.source.attribute("owned_by") or "")
        table = owner.rsplit(".", 1)[0]
        if table in created:
            created[table].append(sql.pop())


def _tables(statements: Sequence[str]) -> list[QualifiedName]:
    out: list[QualifiedName] = []
    for ch in changes_from_sql(";\n".join(statements) + ";"):
        if ch.table is not None:
            out.append(ch.table)
    return list(dict.fromkeys(out))


def tables_of(result: DiffResult, version: PgVersion | None = None) -> list[QualifiedName]:
    """The tables the converging plan touches (whose facts the plan wants)."""
    planned = (_statements(d, version) for d in result.differences)
    statements = [s for sql in planned if isinstance(sql, list) for s in sql]
    try:
        return _tables(statements) if statements else []
    except SqlSyntaxError:
        return []


_VERB = {Status.MISSING: "create", Status.EXTRA: "drop", Status.DIFFERENT: "change"}


def _described(step: Step, d: Difference) -> Step:
    """A step kept as written, described by the difference it removes."""
    if step.origin is not Origin.AS_WRITTEN:
        return step
    verb = "set" if d.kind in ("comment", "owner", "grant", "rls") else _VERB[d.status]
    return dataclasses.replace(step, description=f"{verb} {d.kind} {d.name}")


def _one_step(steps: Sequence[Step], policy: PlanPolicy) -> tuple[Step, ...]:
    """Steps kept as written merged into one step in a transaction of its own."""
    if len(steps) < 2 or any(s.transaction is TransactionMode.AUTOCOMMIT or s.backfill or s.index for s in steps):
        return tuple(steps)
    if all(s.transaction is TransactionMode.MIGRATION for s in steps):
        return tuple(steps)  # one transaction already
    first = steps[0]
    return (dataclasses.replace(
        first,
        description="; ".join(dict.fromkeys(s.description for s in steps)),
        sql=tuple(sql for s in steps for sql in s.sql),
        changes=tuple(ch for s in steps for ch in s.changes),
        transaction=TransactionMode.OWN,
        retry=first.retry or policy.retry(),
        reason="one transaction, so the object is never missing in between"
        + (f"; {first.reason}" if first.reason else ""),
    ),)


def converge(
    result: DiffResult,
    version: PgVersion,
    policy: PlanPolicy | None = None,
    facts: PlannerFacts | DatabaseFacts | None = None,
) -> Convergence:
    """The plan turning TARGET into SOURCE, for the differences it can express; ``facts`` are
    TARGET's (row counts, sizes, indexes) when it is a live database, else rows are assumed."""
    policy = policy or PlanPolicy()
    unplanned: list[tuple[Difference, str]] = []
    per_difference: list[tuple[Difference, list[str]]] = []
    for d in _tables_in_dependency_order(sorted(result.differences, key=_order)):
        sql = _statements(d, version)
        if isinstance(sql, str):
            unplanned.append((d, sql))
        elif sql:
            per_difference.append((d, sql))
    _owned_by_created_tables(per_difference)
    statements = [(d, s) for d, sql in per_difference for s in sql]
    if not statements:
        return Convergence((), tuple(unplanned), None)
    try:
        every = changes_from_sql(";\n".join(s for _, s in statements) + ";")
        new_indexes = [ch for ch in every if isinstance(ch, CreateIndex)]
        planned: list[PlannedDifference] = []
        notes: dict[str, None] = {}
        for d, sql in per_difference:
            changes = changes_from_sql(";\n".join(sql) + ";")
            plan = plan_changes(changes, version, policy=policy, facts=facts, new_indexes=new_indexes)
            steps = tuple(_described(s, d) for s in plan.steps)
            if d.kind in _ONE_STEP:
                steps = _one_step(steps, policy)
            notes.update(dict.fromkeys(plan.notes))
            if d.kind == "view" and d.status is Status.MISSING and sql[0].startswith("CREATE MATERIALIZED"):
                notes[f"the materialized view {d.name} is filled as it is created: its query runs once in full "
                      "(its cost is the query's: a scan of what it reads, under ACCESS SHARE, which blocks no "
                      "write); nothing reads the new view meanwhile"] = None
            if d.kind == "view" and len(sql) == 2 and sql[0].startswith("DROP VIEW"):
                notes[f"{d.name}: its columns changed, so it is dropped and created in one transaction "
                      "(ACCESS EXCLUSIVE for a moment, under lock_timeout); a view or function that depends "
                      "on it stops the drop: change those by hand"] = None
            undo = _undo_statements(d, version)
            planned.append(PlannedDifference(
                d, tuple(sql), tuple(steps),
                None if isinstance(undo, str) else tuple(undo),
                undo if isinstance(undo, str) else "",
            ))
    except (SqlSyntaxError, UnrenderableChange) as exc:
        raise ValueError(f"the converging plan cannot be built: {exc}") from None
    steps = tuple(step for p in planned for step in p.steps)
    plan = Plan(steps=steps, source=tuple(every), notes=tuple(notes))
    return Convergence(tuple(statements), tuple(unplanned), plan, tuple(planned))


def render_plan(convergence: Convergence, live_facts: bool = False) -> str:
    """The plan as commented SQL, step by step (with why it runs as it does), then what was not
    planned; ``live_facts``: the plan was made with TARGET's row counts and sizes."""
    lines = [
        "-- plan turning TARGET into SOURCE, step by step as the planner wrote it: an 'own transaction'",
        "-- step runs alone with lock_timeout and retries, an 'autocommit' step outside any transaction",
        "-- table facts: " + ("TARGET's row estimates and sizes (a small table's change runs as written)"
                              if live_facts else "none read (every table is assumed to hold rows)"),
    ]
    plan = convergence.plan
    if plan is not None:
        for number, step in enumerate(plan.steps, 1):
            lines.append(f"-- step {number} [{step.phase.value}, {step.transaction.value}]: {step.description}")
            if step.reason:
                lines.append(f"--   {step.reason}")
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


class ConvergingSQLOp(ops.ExecuteSQLOp):
    """``op.execute(...)`` of the SQL that removes one difference, which knows its inverse (the
    difference seen from the other side), so Alembic and the helios plugin derive the downgrade
    from it.  What cannot be undone reverses to a statement that stops the downgrade, saying why."""

    def __init__(self, sqltext: str, undo: str, *, label: str = "") -> None:
        super().__init__(sqltext)
        self.undo = undo
        self.label = label

    def reverse(self) -> ops.ExecuteSQLOp:
        return ConvergingSQLOp(self.undo, str(self.sqltext), label=f"undo: {self.label}")


def _refusal(label: str, why: str) -> str:
    message = f"helios-migrate diff: {label} cannot be undone: {why}".replace("%", "%%")
    return f"DO $$BEGIN RAISE EXCEPTION {quote_literal(message)}; END$$"


def converging_operations(convergence: Convergence) -> tuple[list[Any], list[Any], list[tuple[Difference, str]]]:
    """The Alembic operations of every planned difference but the indexes (which go through
    :func:`revision_fixes`): those that add or change (before the indexes), those that remove
    (after them), and the differences no operation holds, with the reason."""
    before: list[Any] = []
    after: list[Any] = []
    for p in convergence.planned:
        d = p.difference
        if d.kind == "index":
            continue
        label = f"{d.status.value} {d.kind} {d.name}"
        undo = ";\n".join(p.undo) if p.undo else _refusal(label, p.undo_refused or "nothing to undo it")
        if p.undo == ():
            undo = "SELECT 1 /* nothing to undo */"
        op = ConvergingSQLOp(";\n".join(p.statements), undo, label=label)
        (after if d.status is Status.EXTRA else before).append(op)
    return before, after, [(d, why) for d, why in convergence.unplanned if d.kind != "index"]


def revision_fixes(result: DiffResult) -> tuple[list[Fix], list[tuple[Difference, str]]]:
    """The index differences a converging revision holds (built or dropped, the drop's downgrade
    re-creating the index as TARGET has it), and the others with the reason."""
    fixes: list[Fix] = []
    others: list[tuple[Difference, str]] = []
    for d in result.differences:
        if d.kind == "index" and d.status is Status.MISSING and d.source is not None:
            fixes.append(Fix(f"{d.name} (missing)", tuple(changes_from_sql(_create_index_sql(d.source)))))
        elif d.kind == "index" and d.status is Status.EXTRA and d.target is not None:
            schema, table, name = d.target.parts
            drop = DropIndex(QualifiedName(name, schema), on=QualifiedName(table, schema))
            fixes.append(Fix(f"{d.name} (extra)", (drop,), tuple(changes_from_sql(_create_index_sql(d.target)))))
        elif d.kind == "index" and d.status is Status.DIFFERENT and d.source is not None and d.target is not None:
            changed = _changed_index(d)
            if isinstance(changed, str):
                others.append((d, changed))
                continue
            build, _, _ = changed
            schema, table, name = d.target.parts
            drop = DropIndex(QualifiedName(name, schema), on=QualifiedName(table, schema))
            fixes.append(Fix(f"{d.name} (changed)", (*changes_from_sql(build), drop),
                             tuple(changes_from_sql(_create_index_sql(d.target)))))
    return fixes, others


def index_renames(result: DiffResult) -> list[Any]:
    """For each changed index, the operation that gives the rebuilt index (built under a temporary
    name, see :func:`revision_fixes`) its name, once the old one is dropped; its inverse gives the
    temporary name back, so the downgrade can build the old index under its own name."""
    out: list[Any] = []
    for d in result.differences:
        if d.kind != "index" or d.status is not Status.DIFFERENT or d.source is None:
            continue
        changed = _changed_index(d)
        if isinstance(changed, str):
            continue
        schema, _, name = d.source.parts
        temp = _rebuilt_name(name)
        back = f"ALTER INDEX IF EXISTS {quote_ident(schema)}.{quote_ident(name)} RENAME TO {quote_ident(temp)}"
        out.append(ConvergingSQLOp(changed[2], back, label=f"rename the rebuilt index {d.name}"))
    return out


def write_converging_revision(
    result: DiffResult, *, target_url: str, alembic_ini: Path, message: str,
    version: PgVersion | None = None, policy: PlanPolicy | None = None,
) -> tuple[WrittenRevision, list[tuple[Difference, str]]]:
    """Write the revision that turns TARGET into SOURCE: every difference ``--plan`` plans, as
    Alembic operations planned by the helios Alembic plugin against TARGET (as ``review
    --write-revision`` does), each with its downgrade or a downgrade step that says why it cannot
    be undone; the differences it cannot hold are returned with the reason."""
    num = result.target_version_num
    version = version or (PgVersion.parse(str(num)) if num else PgVersion(18))
    fixes, others = revision_fixes(result)
    try:
        convergence = converge(result, version, policy)
    except ValueError as exc:
        raise RevisionError(str(exc)) from None
    before, after, unplanned = converging_operations(convergence)
    after = [*index_renames(result), *after]
    others += unplanned
    if not fixes and not before and not after:
        raise RevisionError("no difference a revision can hold: nothing written")
    written = write_revision(
        fixes, database_url=target_url, alembic_ini=alembic_ini, message=message, before=before, after=after,
    )
    return written, others
