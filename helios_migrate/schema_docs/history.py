"""The Alembic history of a project: what each revision did to which table, in words.

Each revision's ``upgrade()`` is rendered to offline SQL by ``check``'s renderer
(:class:`helios_migrate.check.render.RevisionRenderer`, with its source fallback when a revision
cannot run offline) and every statement read by the SQL front end
(:func:`helios_migrate.sql_parse.changes_from_sql`), so the tables a revision touches are the
ones its statements name -- the same reading ``check`` lints.  A table renamed later keeps the
history it had under its old name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import changes as ch
from ..check.fallback import read_from_source
from ..check.problems import CheckUsageError
from ..check.project import (
    AlembicProject,
    RevisionFile,
    add_prepend_sys_path,
    load_project,
    upgrade_order,
)
from ..check.render import EmittedStatement, RevisionRenderer
from ..sql_parse import SqlSyntaxError, changes_from_sql

IMPACT_HEADER_MARK = "helios impact estimate"
"""The first line of the impact header the Alembic plugin writes at the top of ``upgrade()``
(``alembic_plugin.impact_header.HEADER_MARK``; a test holds the two equal)."""


class HistoryError(Exception):
    """The project's history cannot be read (exit code 2)."""


@dataclass(frozen=True)
class TableEvent:
    """What one revision did to one table."""

    table: str
    """The table's name today (or when it was last seen, for a table dropped since)."""
    created: bool
    what: tuple[str, ...]
    named: str = ""
    """The table's name when the revision ran, when it differs (renamed since)."""


@dataclass(frozen=True)
class RevisionRecord:
    revision: str
    down_revisions: tuple[str, ...]
    date: str
    message: str
    path: str
    """Relative to the project's root, with forward slashes."""
    events: tuple[TableEvent, ...]
    """Per table, by the table's name today (a table renamed later is listed under its new name)."""
    other: tuple[str, ...]
    """Changes not on a table (enums, views, functions), in words."""
    impact: tuple[str, ...]
    """The impact header's lines, without their ``# `` (empty when the revision has none)."""
    note: str = ""
    """Why the revision was read from its source rather than run (empty when it rendered)."""


@dataclass
class History:
    revisions: list[RevisionRecord] = field(default_factory=list)
    """In upgrade order (oldest first)."""

    def of_table(self, table: str) -> list[tuple[RevisionRecord, TableEvent]]:
        return [(r, e) for r in self.revisions for e in r.events if e.table == table]


# --- reading the revision files -------------------------------------------------------------------


_CREATE_DATE = re.compile(r"^\s*Create Date:\s*(.+?)\s*$", re.MULTILINE)


def _docstring(rev: RevisionFile) -> str:
    return (ast.get_docstring(rev.tree) or "") if rev.tree is not None else ""


def revision_date(rev: RevisionFile) -> str:
    m = _CREATE_DATE.search(_docstring(rev))
    return m.group(1) if m else ""


def revision_message(rev: RevisionFile) -> str:
    for line in _docstring(rev).splitlines():
        if line.strip():
            return line.strip()
    return ""


def impact_header(rev: RevisionFile) -> tuple[str, ...]:
    """The impact header's lines (between ``# -- helios impact estimate ... --`` and ``# --``)."""
    lines = rev.source.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("#") and IMPACT_HEADER_MARK in line:
            out = []
            for text in lines[i + 1:]:
                text = text.strip()
                if not text.startswith("#") or text == "# --":
                    break
                out.append(text[2:] if text.startswith("# ") else text[1:])
            return tuple(out)
    return ()


# --- changes in words -----------------------------------------------------------------------------


def _q(name: object) -> str:
    return f"`{name}`"


def _column_words(c: ch.ColumnDef) -> str:
    words = f"{_q(c.name)} {c.type}"
    if not c.nullable:
        words += " NOT NULL"
    if c.default is not None:
        words += f" DEFAULT {c.default}"
    return words


def _constraint_words(k: ch.Constraint) -> str:
    name = f" {_q(k.name)}" if k.name else ""
    if k.kind is ch.ConstraintKind.FOREIGN_KEY and k.references is not None:
        body = f"foreign key{name} ({', '.join(k.columns)}) → {k.references.table}"
    elif k.kind is ch.ConstraintKind.CHECK:
        body = f"check{name} ({k.expression})" if k.expression else f"check{name}"
    elif k.columns:
        body = f"{k.kind.value}{name} ({', '.join(k.columns)})"
    else:
        body = f"{k.kind.value}{name}"
    return body + (" NOT VALID" if k.not_valid else "")


def _index_words(c: ch.CreateIndex) -> str:
    kind = "unique index" if c.unique else "index"
    words = f"adds {kind} {_q(c.name or '?')} ({', '.join(c.columns)})"
    if c.include:
        words += f" INCLUDE ({', '.join(c.include)})"
    if c.where:
        words += f" WHERE {c.where}"
    return words + (" concurrently" if c.concurrently else "")


_WORDS: dict[type, Callable[[Any], str]] = {
    ch.CreateTable: lambda c: "creates the table" + (
        f" ({', '.join(col.name for col in c.columns)})" if c.columns else ""
    ),
    ch.DropTable: lambda c: "drops the table",
    ch.RenameTable: lambda c: f"renames {_q(c.on.name)} to {_q(c.new_name)}",
    ch.TruncateTable: lambda c: "truncates the table",
    ch.AddColumn: lambda c: f"adds column {_column_words(c.column)}",
    ch.DropColumn: lambda c: f"drops column {_q(c.column)}",
    ch.RenameColumn: lambda c: f"renames column {_q(c.column)} to {_q(c.new_name)}",
    ch.AlterColumnType: lambda c: f"changes the type of {_q(c.column)} to {c.new_type}"
    + (f" (was {c.old_type})" if c.old_type else ""),
    ch.SetNotNull: lambda c: f"makes {_q(c.column)} NOT NULL",
    ch.DropNotNull: lambda c: f"makes {_q(c.column)} nullable",
    ch.SetDefault: lambda c: f"sets the default of {_q(c.column)} to {c.default}",
    ch.DropDefault: lambda c: f"drops the default of {_q(c.column)}",
    ch.AddConstraint: lambda c: f"adds {_constraint_words(c.constraint)}",
    ch.DropConstraint: lambda c: f"drops constraint {_q(c.name)}",
    ch.ValidateConstraint: lambda c: f"validates constraint {_q(c.name)}",
    ch.CreateIndex: _index_words,
    ch.DropIndex: lambda c: f"drops index {_q(c.index.name)}" + (" concurrently" if c.concurrently else ""),
    ch.Reindex: lambda c: f"rebuilds index {_q(c.name.name)}" if c.target is ch.ReindexTarget.INDEX
    else "rebuilds the table's indexes",
    ch.CreateTrigger: lambda c: f"creates trigger {_q(c.name)}",
    ch.DropTrigger: lambda c: f"drops trigger {_q(c.name)}",
    ch.AttachPartition: lambda c: f"attaches partition {_q(c.partition)}",
    ch.DetachPartition: lambda c: f"detaches partition {_q(c.partition)}",
    ch.ModifyRows: lambda c: f"{c.operation.value}s rows" + (
        f" ({', '.join(c.columns)})" if c.columns else ""
    ),
    ch.VacuumFull: lambda c: "rewrites the table (VACUUM FULL)",
    ch.Cluster: lambda c: "rewrites the table (CLUSTER)",
    ch.CreateEnum: lambda c: f"creates enum {_q(c.name)} ({', '.join(c.values)})",
    ch.DropEnum: lambda c: f"drops enum {_q(c.name)}",
    ch.AddEnumValue: lambda c: f"adds value {c.value!r} to enum {_q(c.name)}",
    ch.RenameEnumValue: lambda c: f"renames value {c.old_value!r} of enum {_q(c.name)} to {c.new_value!r}",
    ch.CreateView: lambda c: f"creates {'materialized ' if c.materialized else ''}view {_q(c.name)}",
    ch.DropView: lambda c: f"drops {'materialized ' if c.materialized else ''}view {_q(c.name)}",
    ch.RefreshMaterializedView: lambda c: f"refreshes materialized view {_q(c.name)}",
}

_RAW_WORDS = {
    "CommentStmt": "sets a comment",
    "GrantStmt": "grants or revokes privileges",
    "CreateFunctionStmt": "creates a function",
    "CreateSeqStmt": "creates a sequence",
    "AlterSeqStmt": "alters a sequence",
    "CreateExtensionStmt": "creates an extension",
    "CreatePolicyStmt": "creates a row security policy",
    "DoStmt": "runs a DO block",
}
"""Statements the change model keeps as written, by the parser's node name."""

_SILENT = (ch.SetSetting, ch.TransactionControl)
"""Session and transaction statements: how a step runs, not what it changes."""


def describe(change: ch.Change) -> str | None:
    """``change`` in words; ``None`` for statements that change nothing in the schema."""
    if isinstance(change, _SILENT):
        return None
    words = _WORDS.get(type(change))
    if words is not None:
        return words(change)
    if isinstance(change, ch.RawStatement):
        if not change.statement_type:
            return "runs a statement that did not parse"
        known = _RAW_WORDS.get(change.statement_type)
        if known:
            return known
        kind = re.sub(r"(?<!^)(?=[A-Z])", " ", re.sub(r"Stmt$", "", change.statement_type)).lower()
        return f"runs a {kind} statement"
    return change.kind.replace("_", " ")


def _qualified(name: ch.QualifiedName) -> str:
    return f"{name.schema or 'public'}.{name.name}"


# --- the history ----------------------------------------------------------------------------------


@dataclass
class _Identities:
    """Tables by their name at this point of the history -> a stable key (renames keep it)."""

    current: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def of(self, name: str, *, created: bool = False) -> str:
        if created or name not in self.current:
            self.counter += 1
            self.current[name] = f"{self.counter}:{name}"
        return self.current[name]

    def rename(self, old: str, new: str) -> None:
        key = self.of(old)
        del self.current[old]
        self.current[new] = key

    def final_names(self) -> dict[str, str]:
        return {key: name for name, key in self.current.items()}


def _statements(rev: RevisionFile, renderer: RevisionRenderer) -> tuple[list[EmittedStatement], str]:
    if rev.tree is None:
        return [], "not valid Python"
    rendered = renderer.render(rev, "upgrade")
    if rendered.failure is None:
        return list(rendered.statements), ""
    fallback = read_from_source(rev, "upgrade", renderer)
    return list(fallback.statements), f"read from its source: {rendered.failure.reason}"


def project_root(ini: Path) -> Path:
    return ini.resolve().parent


def _ancestors(project: AlembicProject, upto: str) -> set[str] | None:
    """Revision ids ``upto`` stands on (itself included); ``None`` for head(s)."""
    if upto in ("head", "heads"):
        return None
    ids = {r.revision: r for r in project.revisions if r.revision}
    matches = [rid for rid in ids if rid == upto] or [rid for rid in ids if rid.startswith(upto)]
    if len(matches) != 1:
        raise HistoryError(f"{upto}: no such revision in {project.root}")
    out: set[str] = set()
    todo = [matches[0]]
    while todo:
        rid = todo.pop()
        if rid in out or rid not in ids:
            continue
        out.add(rid)
        todo.extend((*ids[rid].down_revisions, *ids[rid].dependencies))
    return out


def read_history(ini: Path, *, upto: str = "heads") -> History:
    """The history of the project whose configuration is ``ini``, up to ``upto``."""
    root = project_root(ini)
    try:
        project = load_project(root)
    except CheckUsageError as exc:
        raise HistoryError(str(exc)) from None
    ordered, _problem = upgrade_order(project)
    keep = _ancestors(project, upto)
    ordered = [r for r in ordered if keep is None or r.revision in keep]
    add_prepend_sys_path(project)
    identities = _Identities()
    raw: list[tuple[RevisionFile, list[tuple[str, bool, str, str]], list[str], str]] = []
    with RevisionRenderer(project) as renderer:
        for rev in ordered:
            statements, note = _statements(rev, renderer)
            on_tables: list[tuple[str, bool, str, str]] = []
            other: list[str] = []
            for st in statements:
                _read_statement(st, identities, on_tables, other)
            raw.append((rev, on_tables, other, note))
    final = identities.final_names()
    history = History()
    for rev, on_tables, other, note in raw:
        grouped: dict[str, tuple[bool, list[str], str]] = {}
        for key, created, words, named in on_tables:
            name = final.get(key) or key.split(":", 1)[1]
            was_created, what, first_named = grouped.setdefault(name, (False, [], named))
            if words not in what:
                what.append(words)
            grouped[name] = (was_created or created, what, first_named)
        try:
            path = rev.path.relative_to(root).as_posix()
        except ValueError:
            path = rev.path.as_posix()
        history.revisions.append(RevisionRecord(
            revision=rev.revision or rev.path.stem,
            down_revisions=rev.down_revisions,
            date=revision_date(rev),
            message=revision_message(rev),
            path=path,
            events=tuple(
                TableEvent(t, created, tuple(what), named if named != t else "")
                for t, (created, what, named) in grouped.items()
            ),
            other=tuple(dict.fromkeys(other)),
            impact=impact_header(rev),
            note=note,
        ))
    return history


def _read_statement(
    st: EmittedStatement, identities: _Identities, on_tables: list[tuple[str, bool, str, str]], other: list[str]
) -> None:
    for created in st.created_tables:
        name = _qualified(ch.QualifiedName.parse(created))
        on_tables.append((identities.of(name, created=True), True, "creates the table", name))
    if not st.sql.strip():
        return
    try:
        found = changes_from_sql(st.sql)
    except SqlSyntaxError:
        other.append("runs a statement that did not parse")
        return
    index_tables = dict(st.index_tables)
    for change in found:
        words = describe(change)
        if words is None:
            continue
        table = change.table
        if isinstance(change, ch.DropIndex) and table is None and change.index.name in index_tables:
            table = ch.QualifiedName.parse(index_tables[change.index.name])
        if table is None:
            other.append(words)
            continue
        name = _qualified(table)
        if isinstance(change, ch.CreateTable):
            on_tables.append((identities.of(name, created=True), True, words, name))
        elif isinstance(change, ch.RenameTable):
            key = identities.of(name)
            identities.rename(name, _qualified(ch.QualifiedName(change.new_name, table.schema)))
            on_tables.append((key, False, words, name))
        else:
            on_tables.append((identities.of(name), False, words, name))
