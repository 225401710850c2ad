"""What a rule sees: one change, its effect from the knowledge base, and where it runs.

This is the interface rule packages are written against (the built-in :mod:`safety_rules` and any
package registered under the ``helios_migrate.rules`` entry-point group, see
:mod:`helios_migrate.rules`).  The engine (:mod:`helios_migrate.lint`) builds a
:class:`RuleContext` for every change of every statement and calls each rule's ``check(ctx)``.  A rule yields :class:`Violation` values; the engine
turns them into :class:`~helios_migrate.findings.Finding` values (code, name, severity, location,
suppressions, configuration).  Rules never derive locks themselves: ``ctx.effect`` is the lock
knowledge base's answer for ``ctx.change`` on ``ctx.version``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .changes import Change, QualifiedName
from .effects import Effect, RelationLock, RelationRole
from .findings import Location, Severity
from .versions import PgVersion

if TYPE_CHECKING:
    from .config import Config
    from .knowledge import SchemaLookup


class RuleKind(str, enum.Enum):
    """How the engine treats a rule's violations with respect to tables."""

    LOCKING = "locking"
    """About a lock or rewrite on a table: tables created earlier in the same input and tables
    configured ``small`` are exempt; on ``hot`` tables the severity is raised one level."""
    TRANSACTION = "transaction"
    """About transactions and timeouts: ``hot`` tables raise the severity; nothing is exempt."""
    OTHER = "other"
    """Compatibility, design and tool findings: table lists do not apply."""


@dataclass(frozen=True)
class Violation:
    """What a rule reports for one change."""

    message: str
    """One line, specific: name the table, column or index, the lock and what it blocks."""
    help: str = ""
    """What to do instead."""
    severity: Severity | None = None
    """Replaces the rule's default severity for this violation (configuration still wins)."""
    table: QualifiedName | None = None
    """The table the violation is about, when not ``ctx.change.table``."""


@dataclass(frozen=True)
class TableSize:
    size_bytes: int | None = None
    rows: int | None = None
    """The planner's row estimate (``pg_class.reltuples``)."""


class TableFacts(Protocol):
    """Size facts about existing tables; the check command fills it from a live database."""

    def table_size(self, table: QualifiedName) -> TableSize | None: ...


@dataclass(frozen=True)
class StaticTableFacts:
    """:class:`TableFacts` from a fixed mapping; keys are ``"orders"`` or ``"public.orders"``."""

    tables: Mapping[str, TableSize] = field(default_factory=dict)

    def table_size(self, table: QualifiedName) -> TableSize | None:
        qualified = self.tables.get(str(table))
        if qualified is not None:
            return qualified
        if table.schema is None:
            for key, size in self.tables.items():
                if QualifiedName.parse(key).name == table.name:
                    return size
            return None
        return self.tables.get(table.name)


def same_relation(a: QualifiedName, b: QualifiedName) -> bool:
    """Equal names, and equal schemas where both are given (an unqualified name may be either)."""
    return a.name == b.name and (a.schema is None or b.schema is None or a.schema == b.schema)


@dataclass(frozen=True)
class TransactionInfo:
    """The transaction a statement runs in, and the settings in effect when it starts."""

    in_block: bool
    """Inside an explicit transaction block (``BEGIN`` ... ``COMMIT``, or the migration's own
    transaction).  Outside a block every statement commits on its own."""
    number: int
    """Statements with the same number share one transaction."""
    lock_timeout: str | None = None
    """The ``lock_timeout`` in effect; ``None`` when unset or ``0`` (wait forever)."""
    statement_timeout: str | None = None


@dataclass(frozen=True)
class StatementInfo:
    """One parsed statement of the input, with the knowledge base's effect for each change."""

    index: int
    sql: str
    location: Location
    node_type: str
    changes: tuple[Change, ...]
    effects: tuple[Effect, ...]
    transaction: TransactionInfo
    revision: str | None = None

    @property
    def verb(self) -> str:
        """The statement's leading keywords for messages (``ALTER TABLE``, ``CREATE INDEX``)."""
        words = self.sql.split()
        if not words:
            return "statement"
        first = words[0].upper()
        if first in {"CREATE", "ALTER", "DROP", "REFRESH"} and len(words) > 1:
            second = words[1].upper()
            if second in {"UNIQUE", "OR", "MATERIALIZED"} and len(words) > 2:
                return f"{first} {second} {words[2].upper()}"
            return f"{first} {second}"
        return first

    @property
    def where(self) -> str:
        return f"line {self.location.line}" if self.location.line else "earlier"


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may read about one change."""

    change: Change
    effect: Effect
    change_index: int
    """Position of ``change`` among ``statement.changes`` (statement-level rules act on 0)."""
    statement: StatementInfo
    earlier: tuple[StatementInfo, ...]
    """Earlier statements of the same transaction block, in order (empty outside a block)."""
    later: tuple[StatementInfo, ...]
    """Later statements of the same transaction block, in order (empty outside a block)."""
    version: PgVersion
    config: Config
    all_statements: tuple[StatementInfo, ...] = ()
    """Every statement of the input, in order (``position`` is this one's place in it)."""
    position: int = 0
    catalog: SchemaLookup | None = None
    facts: TableFacts | None = None
    created_tables: tuple[QualifiedName, ...] = ()
    """Tables created earlier in the same input (empty until their creation commits or not)."""
    not_valid_constraints: Mapping[tuple[str, str], StatementInfo] = field(default_factory=dict)
    """Constraints added ``NOT VALID`` earlier in the input, by (table name, constraint name)."""
    proven_not_null: frozenset[tuple[str, str]] = frozenset()
    """(table name, column) pairs proven free of NULLs earlier in the input: a validated
    ``CHECK (col IS NOT NULL)`` or (PostgreSQL 18) a validated ``NOT NULL`` constraint."""
    checked_tables: frozenset[str] = frozenset()
    """Names of tables given a valid CHECK constraint earlier in the input (added valid, or added
    ``NOT VALID`` and validated): ATTACH PARTITION can skip its scan."""
    held_locks: tuple[RelationLock, ...] = ()
    """The strongest lock per relation already held by this transaction when the statement starts."""

    # --- questions rules ask ------------------------------------------------------------------

    @property
    def preceding(self) -> tuple[StatementInfo, ...]:
        """Every earlier statement of the input, in order, whatever its transaction."""
        return self.all_statements[: self.position]

    @property
    def following(self) -> tuple[StatementInfo, ...]:
        """Every later statement of the input, in order, whatever its transaction."""
        return self.all_statements[self.position + 1 :]

    @property
    def in_transaction(self) -> bool:
        return self.statement.transaction.in_block

    def is_new(self, table: QualifiedName | None) -> bool:
        """Was ``table`` created earlier in this input (so it is empty and nobody else uses it)?"""
        return table is not None and any(same_relation(table, t) for t in self.created_tables)

    def is_small(self, table: QualifiedName | None) -> bool:
        return table is not None and self.config.tables.is_small(table)

    def is_hot(self, table: QualifiedName | None) -> bool:
        return table is not None and self.config.tables.is_hot(table)

    def size(self, table: QualifiedName | None) -> TableSize | None:
        if table is None or self.facts is None:
            return None
        return self.facts.table_size(table)

    def describe_table(self, table: QualifiedName | None) -> str:
        """``orders (48 GB, ~310M rows)`` with table facts, ``orders`` without."""
        if table is None:
            return "the table"
        size = self.size(table)
        if size is None:
            return str(table)
        parts = []
        if size.size_bytes is not None:
            parts.append(format_bytes(size.size_bytes))
        if size.rows is not None:
            parts.append(f"~{format_count(size.rows)} rows")
        return f"{table} ({', '.join(parts)})" if parts else str(table)

    def lock_phrase(self, lock: RelationLock | None = None) -> str:
        """``ACCESS EXCLUSIVE on orders (blocks reads and writes)``."""
        lk = lock or self.effect.table_lock
        if lk is None:
            return "no table lock"
        return f"{lk.mode.sql_name} on {self.describe_table(lk.relation)} (blocks {lk.mode.blocked_summary()})"

    def blocking_locks(self) -> tuple[RelationLock, ...]:
        """Locks of this change that block reads or writes on tables that exist before this input."""
        return tuple(
            lk for lk in self.effect.locks
            if lk.role is not RelationRole.TYPE
            and (lk.mode.blocks_reads or lk.mode.blocks_writes)
            and not self.is_new(lk.relation)
        )


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def format_count(count: int) -> str:
    for threshold, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if count >= threshold:
            value = count / threshold
            return f"{value:.0f}{suffix}" if value >= 10 else f"{value:.1f}{suffix}"
    return str(count)

