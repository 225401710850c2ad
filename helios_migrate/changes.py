"""The change model: one frozen dataclass per kind of schema change helios-migrate reasons about.

Two front ends build these values -- :mod:`helios_migrate.alembic_ops` from Alembic
operations and :mod:`helios_migrate.sql_parse` from SQL parsed by pglast -- and the same DDL must
give an equal value from both.  Everything downstream (the lock knowledge base, the safety rules,
planning, impact) consumes only these values, never SQL text or Alembic objects.

Conventions that make the two front ends agree:

* identifiers are stored unquoted, exactly as PostgreSQL would store them (folded to lower case
  unless they were quoted);
* types are stored in the canonical spelling of :func:`helios_migrate.normalize.normalize_type`
  (``integer``, ``bigint``, ``varchar(100)``, ``timestamptz``, ...);
* expressions (defaults, CHECK bodies, index predicates, USING clauses) are stored as the
  canonical SQL text of :func:`helios_migrate.normalize.normalize_expr`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class QualifiedName:
    """A schema-qualified object name; ``schema`` is ``None`` when the SQL did not name one."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @classmethod
    def parse(cls, dotted: str) -> QualifiedName:
        """``"public.orders"`` -> ``QualifiedName("orders", "public")``; no quoting rules applied."""
        schema, _, name = dotted.rpartition(".")
        return cls(name, schema or None)


class IdentityKind(str, enum.Enum):
    ALWAYS = "always"
    BY_DEFAULT = "by default"


class GeneratedKind(str, enum.Enum):
    STORED = "stored"
    VIRTUAL = "virtual"


@dataclass(frozen=True)
class ColumnDef:
    """A column as it is added or created."""

    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    identity: IdentityKind | None = None
    generated: str | None = None
    """Expression of a ``GENERATED ALWAYS AS (...)`` column."""
    generated_kind: GeneratedKind | None = None
    """``None`` when the SQL did not say: the server default applies (STORED before 18, VIRTUAL from 18)."""
    primary_key: bool = False
    unique: bool = False
    references: ForeignKeyTarget | None = None
    check: str | None = None
    collation: str | None = None


@dataclass(frozen=True)
class ForeignKeyTarget:
    table: QualifiedName
    columns: tuple[str, ...] = ()


class ConstraintKind(str, enum.Enum):
    CHECK = "check"
    FOREIGN_KEY = "foreign key"
    UNIQUE = "unique"
    PRIMARY_KEY = "primary key"
    EXCLUDE = "exclude"
    NOT_NULL = "not null"

    @property
    def name_label(self) -> str:
        """How PostgreSQL ends the name of a constraint of this kind created without one
        (``orders_pkey``, ``orders_email_key``, ``orders_customer_id_fkey``...)."""
        return _NAME_LABELS[self]


_NAME_LABELS = {
    ConstraintKind.CHECK: "check",
    ConstraintKind.FOREIGN_KEY: "fkey",
    ConstraintKind.UNIQUE: "key",
    ConstraintKind.PRIMARY_KEY: "pkey",
    ConstraintKind.EXCLUDE: "excl",
    ConstraintKind.NOT_NULL: "not_null",
}


@dataclass(frozen=True)
class Constraint:
    """A table constraint as written in ``ADD CONSTRAINT``.

    ``not_valid`` means the constraint is added without checking existing rows (CHECK, FOREIGN KEY
    and, from PostgreSQL 18, NOT NULL).  ``using_index`` names an existing unique index that a
    UNIQUE or PRIMARY KEY constraint adopts instead of building its own.
    """

    kind: ConstraintKind
    name: str | None = None
    columns: tuple[str, ...] = ()
    expression: str | None = None
    references: ForeignKeyTarget | None = None
    on_delete: str | None = None
    on_update: str | None = None
    not_valid: bool = False
    using_index: str | None = None
    deferrable: bool = False
    enforced: bool = True
    """False for PostgreSQL 18's ``NOT ENFORCED`` CHECK and FOREIGN KEY: never checked, never validated."""


class Change:
    """Base class of every change.  Subclasses are frozen dataclasses.

    ``table`` is the relation whose lock matters most (``None`` for changes not on a table).
    """

    @property
    def table(self) -> QualifiedName | None:
        return None

    @property
    def kind(self) -> str:
        """A short stable name for the change kind, e.g. ``add_column``."""
        return _snake(type(self).__name__)

    @property
    def title(self) -> str:
        """The change in a few words for plans and headers: ``add column on public.orders``, or
        the kind alone for a change on no table."""
        words = self.kind.replace("_", " ")
        return f"{words} on {self.table}" if self.table is not None else words


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@dataclass(frozen=True)
class _OnTable(Change):
    on: QualifiedName

    @property
    def table(self) -> QualifiedName | None:
        return self.on


# --- tables -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTable(_OnTable):
    columns: tuple[ColumnDef, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    if_not_exists: bool = False
    partition_of: QualifiedName | None = None
    partition_bound: str | None = None
    partition_by: str | None = None


@dataclass(frozen=True)
class DropTable(_OnTable):
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class RenameTable(_OnTable):
    new_name: str = ""


@dataclass(frozen=True)
class TruncateTable(_OnTable):
    """``TRUNCATE`` of one table; a multi-table TRUNCATE gives one change per table."""

    cascade: bool = False
    restart_identity: bool = False


@dataclass(frozen=True)
class VacuumFull(_OnTable):
    pass


@dataclass(frozen=True)
class Cluster(_OnTable):
    index: str | None = None


# --- columns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddColumn(_OnTable):
    column: ColumnDef = field(default_factory=lambda: ColumnDef("", ""))
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropColumn(_OnTable):
    column: str = ""
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class RenameColumn(_OnTable):
    column: str = ""
    new_name: str = ""


@dataclass(frozen=True)
class AlterColumnType(_OnTable):
    """``ALTER COLUMN ... TYPE``.  ``old_type`` is known when the front end knows it (Alembic's
    ``existing_type``, or the live catalog); without it the knowledge base stays conservative."""

    column: str = ""
    new_type: str = ""
    using: str | None = None
    collation: str | None = None
    old_type: str | None = None


@dataclass(frozen=True)
class SetNotNull(_OnTable):
    column: str = ""


@dataclass(frozen=True)
class DropNotNull(_OnTable):
    column: str = ""


@dataclass(frozen=True)
class SetDefault(_OnTable):
    column: str = ""
    default: str = ""


@dataclass(frozen=True)
class DropDefault(_OnTable):
    column: str = ""


# --- constraints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddConstraint(_OnTable):
    constraint: Constraint = field(default_factory=lambda: Constraint(ConstraintKind.CHECK))


@dataclass(frozen=True)
class DropConstraint(_OnTable):
    name: str = ""
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class ValidateConstraint(_OnTable):
    name: str = ""


# --- indexes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateIndex(_OnTable):
    name: str | None = None
    columns: tuple[str, ...] = ()
    """Column names or canonical expression text, in index order."""
    unique: bool = False
    concurrently: bool = False
    if_not_exists: bool = False
    where: str | None = None
    method: str = "btree"
    include: tuple[str, ...] = ()
    only: bool = False
    """``ON ONLY parent``: an invalid index on a partitioned parent alone, the first step of
    building a partitioned index without locking every partition at once."""


@dataclass(frozen=True)
class DropIndex(Change):
    index: QualifiedName
    concurrently: bool = False
    if_exists: bool = False
    cascade: bool = False
    on: QualifiedName | None = None
    """The indexed table, when the front end knows it (Alembic does; ``DROP INDEX`` SQL does not)."""

    @property
    def table(self) -> QualifiedName | None:
        return self.on


class ReindexTarget(str, enum.Enum):
    INDEX = "index"
    TABLE = "table"


@dataclass(frozen=True)
class Reindex(Change):
    target: ReindexTarget
    name: QualifiedName
    concurrently: bool = False

    @property
    def table(self) -> QualifiedName | None:
        return self.name if self.target is ReindexTarget.TABLE else None

    @property
    def title(self) -> str:
        return f"reindex {self.target.value} {self.name}"


# --- types ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateEnum(Change):
    name: QualifiedName
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class DropEnum(Change):
    name: QualifiedName
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class AddEnumValue(Change):
    name: QualifiedName
    value: str = ""
    before: str | None = None
    after: str | None = None
    if_not_exists: bool = False


@dataclass(frozen=True)
class RenameEnumValue(Change):
    name: QualifiedName
    old_value: str = ""
    new_value: str = ""


# --- triggers, views, partitions --------------------------------------------------------------


@dataclass(frozen=True)
class CreateTrigger(_OnTable):
    name: str = ""
    function: str = ""
    timing: str = "before"
    events: tuple[str, ...] = ()
    for_each_row: bool = True
    or_replace: bool = False
    written: str = field(default="", compare=False)
    """The statement as written, when it says more than the fields above (``UPDATE OF`` columns,
    ``WHEN``, arguments, transition tables, a constraint trigger): rendered as is."""


@dataclass(frozen=True)
class DropTrigger(_OnTable):
    name: str = ""
    if_exists: bool = False


@dataclass(frozen=True)
class CreateView(Change):
    name: QualifiedName
    definition: str = ""
    or_replace: bool = False
    materialized: bool = False
    reads: tuple[QualifiedName, ...] = ()
    """Relations the definition reads, in order of first mention."""


@dataclass(frozen=True)
class DropView(Change):
    name: QualifiedName
    materialized: bool = False
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class RefreshMaterializedView(Change):
    name: QualifiedName
    concurrently: bool = False


@dataclass(frozen=True)
class AttachPartition(_OnTable):
    """``ALTER TABLE parent ATTACH PARTITION partition FOR VALUES ...``; ``on`` is the parent."""

    partition: QualifiedName = field(default_factory=lambda: QualifiedName(""))
    bound: str = ""


@dataclass(frozen=True)
class DetachPartition(_OnTable):
    partition: QualifiedName = field(default_factory=lambda: QualifiedName(""))
    concurrently: bool = False
    finalize: bool = False


# --- data, session and transaction statements -------------------------------------------------


class DataOperation(str, enum.Enum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class ModifyRows(_OnTable):
    """A data migration statement (``UPDATE``/``DELETE``/``INSERT``) on one table."""

    operation: DataOperation = DataOperation.UPDATE
    has_where: bool = False
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetSetting(Change):
    """``SET [LOCAL] name = value`` (or ``RESET``, with ``value`` ``None``)."""

    name: str
    value: str | None = None
    local: bool = False


class TransactionAction(str, enum.Enum):
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class TransactionControl(Change):
    action: TransactionAction


@dataclass(frozen=True)
class RawStatement(Change):
    """A statement helios-migrate does not model.  The knowledge base treats it conservatively."""

    sql: str
    statement_type: str = ""
    """The parser's node name (``CreateFunctionStmt``), or ``""`` when the SQL did not parse."""
    relations: tuple[QualifiedName, ...] = ()

    @property
    def table(self) -> QualifiedName | None:
        return self.relations[0] if self.relations else None

    @property
    def title(self) -> str:
        first = " ".join(self.sql.split())
        shown = first if len(first) <= 60 else first[:57] + "..."
        where = f" on {self.table}" if self.table is not None else ""
        return f"statement{where}: {shown}" if shown else f"statement{where}"


CHANGE_TYPES: tuple[type[Change], ...] = (
    CreateTable,
    DropTable,
    RenameTable,
    TruncateTable,
    VacuumFull,
    Cluster,
    AddColumn,
    DropColumn,
    RenameColumn,
    AlterColumnType,
    SetNotNull,
    DropNotNull,
    SetDefault,
    DropDefault,
    AddConstraint,
    DropConstraint,
    ValidateConstraint,
    CreateIndex,
    DropIndex,
    Reindex,
    CreateEnum,
    DropEnum,
    AddEnumValue,
    RenameEnumValue,
    CreateTrigger,
    DropTrigger,
    CreateView,
    DropView,
    RefreshMaterializedView,
    AttachPartition,
    DetachPartition,
    ModifyRows,
    SetSetting,
    TransactionControl,
    RawStatement,
)
"""Every concrete change class, in a stable order (used for documentation and exhaustiveness tests)."""
