"""Checks over a project's whole history rather than one revision.

* HM507 ``foreign-key-without-index``: a foreign key added by a revision whose referencing columns
  no index leads with, in that revision or any later one checked (``CREATE INDEX``, a primary key
  or a unique constraint) nor, with ``--database-url``, in the database, so every delete or key
  update on the referenced table scans the referencing one.
* HM314 ``enum-value-without-position``: ``ALTER TYPE ... ADD VALUE`` without ``BEFORE``/``AFTER``
  (appended last), a warning when the enum's values as the history built them read as an ordered
  scale, otherwise an info saying why the order was not judged.
* HM312 ``multiple-heads``: the history has several heads, so ``alembic upgrade head`` refuses.
* HM313 ``revision-edited``: with a ``helios.sum`` file beside the Alembic configuration (opt-in,
  written by ``--write-sum``), a revision whose content no longer matches the hash recorded when
  it was merged: the databases that already ran it will never run the edit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..changes import (
    AddConstraint,
    AddEnumValue,
    ConstraintKind,
    CreateEnum,
    CreateIndex,
    CreateTable,
    DropEnum,
    QualifiedName,
    RenameEnumValue,
)
from ..codes import RuleCode
from ..findings import Finding, Location, Severity
from ..sql_parse import SqlSyntaxError, parse_statements
from .project import AlembicProject, RevisionFile, history_graph

SUM_FILE = "helios.sum"
FK_WITHOUT_INDEX = (RuleCode.FOREIGN_KEY_WITHOUT_INDEX, RuleCode.FOREIGN_KEY_WITHOUT_INDEX.rule_name)
MULTIPLE_HEADS = (RuleCode.MULTIPLE_HEADS, RuleCode.MULTIPLE_HEADS.rule_name)
REVISION_EDITED = (RuleCode.REVISION_EDITED, RuleCode.REVISION_EDITED.rule_name)
ENUM_VALUE_WITHOUT_POSITION = (
    RuleCode.ENUM_VALUE_WITHOUT_POSITION, RuleCode.ENUM_VALUE_WITHOUT_POSITION.rule_name
)


@dataclass(frozen=True)
class HistoryStatement:
    """A statement a revision emitted, where it points, as the history pass needs it."""

    sql: str
    location: Location
    revision: str | None


_RELEVANT = ("REFERENCES", "INDEX", "PRIMARY KEY", "UNIQUE")
"""A statement without any of these words adds no foreign key and no index."""


@dataclass
class _ForeignKey:
    table: str
    columns: tuple[str, ...]
    target: str
    statement: HistoryStatement


@dataclass
class ForeignKeyIndexes:
    """Foreign keys and the column lists indexes lead with, in upgrade order."""

    foreign_keys: list[_ForeignKey] = field(default_factory=list)
    indexed: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def add(self, statements: Iterable[HistoryStatement]) -> None:
        for st in statements:
            text = st.sql.strip()
            upper = text.upper()
            if not text or not any(word in upper for word in _RELEVANT):
                continue  # cannot add a foreign key or an index: not worth parsing again
            try:
                parsed = parse_statements(text, st.location.path)
            except SqlSyntaxError:
                continue
            for p in parsed:
                for ch in p.changes:
                    self._change(ch, st)

    def _index(self, table: str, columns: Sequence[str]) -> None:
        if columns:
            self.indexed.setdefault(table, []).append(tuple(columns))

    def _change(self, ch: object, st: HistoryStatement) -> None:
        if isinstance(ch, CreateIndex):
            self._index(ch.on.name, ch.columns)
        elif isinstance(ch, CreateTable):
            for col in ch.columns:
                if col.primary_key or col.unique:
                    self._index(ch.on.name, (col.name,))
                if col.references is not None:
                    self.foreign_keys.append(_ForeignKey(ch.on.name, (col.name,), str(col.references.table), st))
            for k in ch.constraints:
                self._constraint(ch.on.name, k, st)
        elif isinstance(ch, AddConstraint):
            self._constraint(ch.on.name, ch.constraint, st)

    def _constraint(self, table: str, k: object, st: HistoryStatement) -> None:
        kind = getattr(k, "kind", None)
        columns = tuple(getattr(k, "columns", ()))
        if kind in (ConstraintKind.PRIMARY_KEY, ConstraintKind.UNIQUE):
            self._index(table, columns)
        elif kind is ConstraintKind.FOREIGN_KEY and columns:
            references = getattr(k, "references", None)
            target = str(references.table) if references is not None else "?"
            self.foreign_keys.append(_ForeignKey(table, columns, target, st))

    def unindexed(self) -> list[_ForeignKey]:
        return [fk for fk in self.foreign_keys if not _leads(fk.columns, self.indexed.get(fk.table, []))]


class IndexLookup(Protocol):
    """The live catalog's answers HM507 needs (:class:`helios_migrate.catalog.LiveCatalog`)."""

    def table_indexes(self, table: QualifiedName) -> tuple[QualifiedName, ...]: ...

    def index_columns(self, index: QualifiedName) -> tuple[str, ...] | None: ...


def foreign_keys_without_index(
    statements: Iterable[HistoryStatement], catalog: IndexLookup | None = None
) -> list[Finding]:
    """HM507 over the revisions' statements; with ``catalog`` (``--database-url``), an index
    the database already has on the referencing table counts too (one created outside the
    migrations, or by a revision before those checked)."""
    history = ForeignKeyIndexes()
    history.add(statements)
    code, rule = FK_WITHOUT_INDEX
    live: dict[str, list[tuple[str, ...]]] = {}
    where = " in this or any later revision" + (" nor in the database" if catalog is not None else "")
    return [
        Finding(
            code, rule, Severity.WARNING,
            f"foreign key {fk.table} ({', '.join(fk.columns)}) -> {fk.target} has no index leading "
            f"with {', '.join(fk.columns)}{where}: each DELETE or key UPDATE "
            f"on {fk.target} scans {fk.table}, and holds its locks while it does",
            fk.statement.location,
            f"Create an index on {fk.table} ({', '.join(fk.columns)}) (CONCURRENTLY on an existing table).",
            fk.statement.sql,
            fk.statement.revision,
        )
        for fk in history.unindexed()
        if catalog is None or not _leads(fk.columns, _live_indexes(catalog, fk.table, live))
    ]


def _live_indexes(
    catalog: IndexLookup, table: str, known: dict[str, list[tuple[str, ...]]]
) -> list[tuple[str, ...]]:
    """Key columns of each index the database has on ``table`` (expression indexes left out)."""
    if table not in known:
        columns = (catalog.index_columns(ix) for ix in catalog.table_indexes(QualifiedName(table)))
        known[table] = [c for c in columns if c]
    return known[table]


def _leads(columns: tuple[str, ...], indexes: Iterable[tuple[str, ...]]) -> bool:
    """Does one of ``indexes`` lead with ``columns`` (in any order)?"""
    return any(set(cols[: len(columns)]) == set(columns) for cols in indexes)


# -- HM314: ADD VALUE without BEFORE/AFTER ------------------------------------------------------

_SCALES: tuple[tuple[str, ...], ...] = (
    ("none", "lowest", "low", "normal", "medium", "high", "highest", "critical"),
    ("trivial", "minor", "moderate", "major", "critical", "blocker"),
    ("trace", "debug", "info", "notice", "warn", "warning", "error", "critical", "alert", "fatal", "emergency"),
    ("xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl"),
    ("tiny", "small", "medium", "large", "huge"),
    ("bronze", "silver", "gold", "platinum", "diamond"),
    ("free", "basic", "standard", "pro", "premium", "enterprise"),
    ("first", "second", "third", "fourth", "fifth"),
    ("hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "annually"),
    ("never", "rarely", "sometimes", "often", "always"),
    ("beginner", "intermediate", "advanced", "expert"),
    ("junior", "mid", "senior", "lead", "principal"),
)
"""Values whose order is their meaning (a value may sit in several scales)."""

_ORDERING_NAMES = re.compile(
    r"(priority|priorities|severity|severities|level|tier|stage|phase|grade|rank|rating|size|step"
    r"|urgency|risk)",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^(?P<stem>[a-z_\- ]*?)[_\- ]?(?P<n>\d+)$", re.IGNORECASE)


def _normal(label: str) -> str:
    return label.strip().lower()


def _scale_reading(name: str, labels: Sequence[str], new: str) -> tuple[str, str | None] | None:
    """``(why the enum reads as ordered, the value the new one belongs before)`` or ``None``."""
    known = [_normal(v) for v in labels]
    for scale in _SCALES:
        positions = [scale.index(v) for v in known if v in scale]
        if len(positions) >= 2 and positions == sorted(positions):
            in_scale = [v for v in labels if _normal(v) in scale]
            before = None
            if _normal(new) in scale:
                rank = scale.index(_normal(new))
                before = next((v for v in in_scale if scale.index(_normal(v)) > rank), None)
            return f"its values {', '.join(in_scale)} read as an ordered scale", before
    stems: dict[str, list[int]] = {}
    for v in known:
        m = _NUMBERED.match(v)
        if m:
            stems.setdefault(m.group("stem").rstrip("_- "), []).append(int(m.group("n")))
    for stem, numbers in stems.items():
        if len(numbers) >= 2:
            shown = [v for v in labels if (m := _NUMBERED.match(_normal(v))) and m.group("stem").rstrip("_- ") == stem]
            before = None
            m = _NUMBERED.match(_normal(new))
            if m and m.group("stem").rstrip("_- ") == stem:
                rank = int(m.group("n"))
                before = next(
                    (v for v in shown if (k := _NUMBERED.match(_normal(v))) and int(k.group("n")) > rank), None
                )
            return f"its values {', '.join(shown)} are numbered", before
    m = _ORDERING_NAMES.search(name)
    if m:
        return f"its name ({name}) is one of ordering", None
    return None


def enum_values_without_position(statements: Iterable[HistoryStatement]) -> list[Finding]:
    """HM314 over the revisions' statements, in upgrade order."""
    values: dict[str, list[str]] = {}
    code, rule = ENUM_VALUE_WITHOUT_POSITION
    found: list[Finding] = []
    for st in statements:
        upper = st.sql.upper()
        if "TYPE" not in upper:
            continue  # neither creates, changes nor drops an enum
        try:
            parsed = parse_statements(st.sql.strip(), st.location.path)
        except SqlSyntaxError:
            continue
        for ch in (c for p in parsed for c in p.changes):
            if isinstance(ch, CreateEnum):
                values[ch.name.name] = list(ch.values)
            elif isinstance(ch, DropEnum):
                values.pop(ch.name.name, None)
            elif isinstance(ch, RenameEnumValue):
                current = values.get(ch.name.name)
                if current is not None and ch.old_value in current:
                    current[current.index(ch.old_value)] = ch.new_value
            elif isinstance(ch, AddEnumValue):
                finding = _added(ch, values, st, code, rule)
                if finding is not None:
                    found.append(finding)
    return found


def _added(
    ch: AddEnumValue, values: dict[str, list[str]], st: HistoryStatement, code: str, rule: str
) -> Finding | None:
    current = values.get(ch.name.name)
    if current is not None and ch.value in current:
        return None  # IF NOT EXISTS on a value already there: nothing is added
    anchor = ch.before or ch.after
    if anchor is not None:
        if current is not None:
            at = current.index(anchor) if anchor in current else len(current)
            current.insert(at + (1 if ch.after is not None and anchor in current else 0), ch.value)
        return None
    name = str(ch.name)
    literal = "'" + ch.value.replace("'", "''") + "'"
    last = f" after '{current[-1]}'" if current else ""
    existing = list(current or ())
    reading = _scale_reading(ch.name.name, existing, ch.value)
    if current is not None:
        current.append(ch.value)
    if reading is not None:
        why, before = reading
        where = (
            f"; in that scale {literal} comes before '{before}'" if before is not None
            else ""
        )
        return Finding(
            code, rule, Severity.WARNING,
            f"ADD VALUE {literal} to {name} without BEFORE/AFTER appends it last{last}: {why}, and "
            f"ORDER BY, <, > and max() compare enum values by position{where}",
            st.location,
            f"Say where it goes: ALTER TYPE {name} ADD VALUE {literal} "
            + (f"BEFORE '{before}'" if before is not None else "BEFORE/AFTER '<value>'")
            + f" (if its order does not matter, mark the statement with helios: ignore[{code}]).",
            st.sql,
            st.revision,
        )
    known = (
        f"its values ({', '.join(existing)}) read as no ordered scale" if existing
        else "its values are not known from the revisions checked"
    )
    return Finding(
        code, rule, Severity.INFO,
        f"ADD VALUE {literal} to {name} without BEFORE/AFTER appends it last{last}; {known}, so "
        "whether code sorts or compares it by position was not judged",
        st.location,
        f"If queries order or compare {name}, add the value with BEFORE/AFTER.",
        st.sql,
        st.revision,
    )


def multiple_heads(project: AlembicProject, checked: Sequence[RevisionFile], display: dict[Path, str]) -> list[Finding]:
    graph = history_graph(project)
    if graph.problem is not None:
        return []
    heads = list(graph.heads)
    by_id = {r.revision: r for r in project.revisions if r.revision}
    if len(heads) < 2:
        return []
    listed = ", ".join(sorted(heads))
    checked_paths = {r.path for r in checked}
    code, rule = MULTIPLE_HEADS
    out = []
    for head in heads:
        rev = by_id.get(head)
        if rev is None or rev.path not in checked_paths:
            continue
        out.append(Finding(
            code, rule, Severity.ERROR,
            f"the history has {len(heads)} heads ({listed}): `alembic upgrade head` refuses, and "
            "the order the branches run in is undefined",
            Location(display[rev.path], _revision_line(rev), 1),
            "Rebase the revision on the current head (set down_revision), or join the branches "
            "with `alembic merge heads`.",
            "",
            rev.revision,
        ))
    return out


def _revision_line(rev: RevisionFile) -> int:
    for number, line in enumerate(rev.source.splitlines(), start=1):
        if line.lstrip().startswith("revision"):
            return number
    return 1


def file_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def read_sum(project: AlembicProject) -> dict[str, str] | None:
    """``helios.sum`` of the project (relative path -> hash), or ``None`` when there is none."""
    path = project.root / SUM_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        digest, _, name = line.partition("  ")
        out[name.strip()] = digest.strip()
    return out


def write_sum(project: AlembicProject) -> Path:
    """Record every revision's hash in ``helios.sum`` (commit it with the revisions)."""
    lines = ["# helios-migrate revision hashes: check reports a listed revision whose content changed"]
    for rev in sorted(project.revisions, key=lambda r: r.path):
        lines.append(f"{file_hash(rev.source)}  {rev.path.relative_to(project.root).as_posix()}")
    path = project.root / SUM_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def edited_revisions(
    project: AlembicProject, checked: Sequence[RevisionFile], display: dict[Path, str]
) -> list[Finding]:
    recorded = read_sum(project)
    if recorded is None:
        return []
    code, rule = REVISION_EDITED
    out = []
    for rev in checked:
        name = rev.path.relative_to(project.root).as_posix() if project.root in rev.path.parents else rev.path.name
        expected = recorded.get(name)
        if expected is None or expected == file_hash(rev.source):
            continue
        out.append(Finding(
            code, rule, Severity.ERROR,
            f"revision {rev.revision or '?'} changed after it was recorded in {SUM_FILE}: databases "
            "that already ran it will never run the edit",
            Location(display[rev.path], 1, 1),
            "Revert the edit and put the change in a new revision; if the edit is intended (a "
            "comment, a fix that changes no SQL), run `helios-migrate check --write-sum`.",
            "",
            rev.revision,
        ))
    return out
