"""Plans: the lock-safe, ordered steps that carry out a schema change on a live database.

A :class:`Step` is at once the data, the thing that renders, and the thing that reverses (as an
Alembic operation is): it knows its SQL, how it must run (inside the migration's transaction, in a
short transaction of its own with ``lock_timeout`` and retries, or in autocommit), the changes it
makes in the change model (so the knowledge base and the safety rules judge it exactly as they
judge a hand-written revision), its phase, and its inverse -- or why there is none.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .changes import Change, QualifiedName
from .effects import Effect
from .knowledge import SchemaLookup, effect_of
from .versions import PgVersion


class Phase(str, enum.Enum):
    EXPAND = "expand"
    """Additive and compatible with the code running now."""
    BACKFILL = "backfill"
    """Data movement in small batches; no long locks."""
    CONTRACT = "contract"
    """Removes or renames what old code may still use: deploy the new code first."""


class TransactionMode(str, enum.Enum):
    MIGRATION = "migration transaction"
    """Runs in Alembic's own transaction (only for steps that lock nobody out for long)."""
    OWN = "own transaction"
    """Commits what came before, then runs in a short transaction of its own with lock_timeout
    and retries; the next step starts after it commits."""
    AUTOCOMMIT = "autocommit"
    """Outside any transaction block (CONCURRENTLY, ADD VALUE before 12, batched backfills)."""


class Origin(str, enum.Enum):
    """Who made a step."""

    PLANNER = "planner"
    """The deterministic planner (the rules' own plan)."""
    LLM = "llm"
    """Proposed by a language model, then judged by pglast, the knowledge base and the rules."""
    AS_WRITTEN = "as written"
    """The change as the user (or Alembic) wrote it; its inverse is Alembic's own operation."""


class Direction(str, enum.Enum):
    """Which function of a revision a step runs in."""

    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"

    def flipped(self) -> Direction:
        return Direction.DOWNGRADE if self is Direction.UPGRADE else Direction.UPGRADE


_RULE_CODE = re.compile(r"^[A-Z]{2,}[0-9]{3}$")


@dataclass(frozen=True)
class Acknowledgement:
    """Findings of ``helios-migrate check`` a step meets on purpose, and why.

    Rendered above the step's call in the revision as ``# helios: ignore[HM303] -- <reason>``: the
    reviewer reads the reason, and ``check`` suppresses exactly these codes on exactly that call
    (an acknowledgement that suppresses nothing is reported, HM902).
    """

    codes: tuple[str, ...]
    reason: str

    def __post_init__(self) -> None:
        bad = [code for code in self.codes if not _RULE_CODE.match(code)]
        if not self.codes or bad:
            raise ValueError(f"acknowledgement needs rule codes like HM303, got {self.codes!r}")
        if not self.reason.strip() or "\n" in self.reason:
            raise ValueError("acknowledgement needs a one-line reason")

    @property
    def comment(self) -> str:
        return f"# helios: ignore[{', '.join(self.codes)}] -- {self.reason}"


def acknowledge(*codes: str, reason: str) -> tuple[Acknowledgement, ...]:
    """``(Acknowledgement(codes, reason),)``: the value of a step's ``acknowledged`` field."""
    return (Acknowledgement(tuple(codes), reason),)


@dataclass(frozen=True)
class RetryPolicy:
    """How a step that needs a strong lock waits for it without queueing the application behind it."""

    lock_timeout_ms: int = 2000
    statement_timeout_ms: int | None = None
    attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0


@dataclass(frozen=True)
class Backfill:
    """A batched keyset backfill: ``UPDATE table SET column = expression`` by primary key."""

    table: QualifiedName
    column: str
    expression: str
    key: tuple[str, ...] = ("id",)
    where: str | None = None
    """Which rows still need it; defaults to ``<column> IS NULL``."""
    batch_size: int = 10_000
    pause_ms: int = 50


@dataclass(frozen=True)
class ConversionCheck:
    """Before a type change touches anything: every existing value of ``column`` converts to
    ``to_type`` with the semantics of the backfill (never a silent truncation)."""

    table: QualifiedName
    column: str
    to_type: str
    key: tuple[str, ...] = ("id",)


@dataclass(frozen=True)
class SyncTrigger:
    """A row trigger keeping ``target`` in step with ``source`` on every insert and update of
    ``table`` while both columns exist: ``target`` gets ``expression`` (SQL over ``NEW``), or, with
    no expression, each column the other's value when only one was written (a rename).  Its
    statements come from :mod:`helios_migrate.planner.triggers`; a revision creates it with
    ``runtime.sync_column_trigger`` rather than inline plpgsql."""

    table: QualifiedName
    name: str
    """The trigger's name and its function's (in the table's schema)."""
    source: str
    target: str
    expression: str | None = None


@dataclass(frozen=True)
class Step:
    description: str
    phase: Phase
    sql: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    transaction: TransactionMode = TransactionMode.MIGRATION
    retry: RetryPolicy | None = None
    backfill: Backfill | None = None
    inverse: tuple[str, ...] | None = ()
    """SQL that undoes the step, lock-safe; ``()`` when nothing needs undoing, ``None`` when it
    cannot be undone (see ``irreversible_reason``)."""
    inverse_transaction: TransactionMode = TransactionMode.MIGRATION
    irreversible_reason: str | None = None
    inverse_loses_data: bool = False
    """The inverse exists but destroys data (dropping a backfilled column): run only when the user
    opts in."""
    reason: str = ""
    """Why the step exists, for the comment above it in the revision file."""
    done_when: str | None = None
    """A ``SELECT`` returning true once the step has taken effect: a re-run after an interrupted
    upgrade skips it (PostgreSQL has no ``ADD CONSTRAINT IF NOT EXISTS``)."""
    index: QualifiedName | None = None
    """The index a ``CREATE INDEX CONCURRENTLY`` step builds: an INVALID leftover of a failed
    earlier attempt is dropped before it is built again."""
    inverse_index: QualifiedName | None = None
    """The same, for an inverse that rebuilds an index concurrently (undoing a dropped index)."""
    inverse_backfill: Backfill | None = None
    """A batched backfill that undoes this step (copying a renamed column's values back)."""
    guard: str | None = None
    """The step destroys data nobody confirmed losing (a drop that may be half of a rename): it
    refuses to run, naming this reason, unless ``HELIOS_ALLOW_DATA_LOSS=1``."""
    on_failure: tuple[str, ...] = ()
    """Compensating SQL run when the data makes the step fail (drop the NOT VALID constraint whose
    VALIDATE failed, the sync trigger and new column of a failed conversion)."""
    on_failure_description: str = ""
    """What ``on_failure`` undoes, in words, for the error message."""
    conversion_check: ConversionCheck | None = None
    """The step checks that existing values convert before a type change (reads only)."""
    inverse_conversion_check: ConversionCheck | None = None
    """The same check, run by the inverse (converting back on the way down)."""
    inverse_on_failure: tuple[str, ...] = ()
    """``on_failure`` of the inverse (undoing a failed reverse backfill)."""
    inverse_on_failure_description: str = ""
    inverse_done_when: str | None = None
    """``done_when`` of the inverse: a re-run of an interrupted downgrade skips what it did."""

    origin: Origin = Origin.PLANNER
    """Who made the step (the planner, a validated LLM proposal, or the change as written)."""
    direction: Direction = Direction.UPGRADE
    """``DOWNGRADE`` for a step made by :meth:`reversed` (it undoes an upgrade step)."""
    acknowledged: tuple[Acknowledgement, ...] = ()
    """Findings of ``check`` the step meets on purpose, with the reason shown next to its call."""
    inverse_acknowledged: tuple[Acknowledgement, ...] = ()
    """The same, for the inverse (the downgrade step)."""
    inverse_retry: RetryPolicy | None = None
    """How the inverse waits for its lock when it runs outside a transaction of its own (a
    ``DROP INDEX CONCURRENTLY`` with ``lock_timeout`` and retries)."""
    sync_trigger: SyncTrigger | None = None
    """The sync trigger the last statements of ``sql`` create (the revision calls
    ``runtime.sync_column_trigger``)."""
    inverse_sync_trigger: SyncTrigger | None = None
    """The same, for the inverse."""

    def effects(self, version: PgVersion, catalog: SchemaLookup | None = None) -> list[Effect]:
        """The knowledge base's view of every change this step makes."""
        return [effect_of(ch, version, catalog) for ch in self.changes]

    @property
    def reversible(self) -> bool:
        return self.inverse is not None and not self.inverse_loses_data

    def reversed(self) -> Step:
        """The step that undoes this one (a no-op step when nothing needs undoing).

        An irreversible step reverses to a step with no SQL whose ``irreversible_reason`` says
        why; a data-losing inverse keeps its SQL and ``inverse_loses_data``.  Runtime refuses both
        unless the user opts in.
        """
        return Step(
            description=f"undo: {self.description}",
            phase=self.phase,
            sql=self.inverse or (),
            transaction=self.inverse_transaction,
            retry=self.inverse_retry or (self.retry if self.inverse_transaction is TransactionMode.OWN else None),
            inverse=self.sql,
            inverse_transaction=self.transaction,
            irreversible_reason=self.irreversible_reason if self.inverse is None else None,
            inverse_loses_data=self.inverse_loses_data,
            reason=self.irreversible_reason or "",
            index=self.inverse_index,
            inverse_index=self.index,
            backfill=self.inverse_backfill,
            inverse_backfill=self.backfill,
            inverse_retry=self.retry if self.inverse_retry is not None else None,
            origin=self.origin,
            direction=self.direction.flipped(),
            acknowledged=self.inverse_acknowledged,
            inverse_acknowledged=self.acknowledged,
            conversion_check=self.inverse_conversion_check,
            inverse_conversion_check=self.conversion_check,
            on_failure=self.inverse_on_failure,
            on_failure_description=self.inverse_on_failure_description,
            inverse_on_failure=self.on_failure,
            inverse_on_failure_description=self.on_failure_description,
            done_when=self.inverse_done_when,
            inverse_done_when=self.done_when,
            sync_trigger=self.inverse_sync_trigger,
            inverse_sync_trigger=self.sync_trigger,
        )


@dataclass(frozen=True)
class Plan:
    """The steps for one or more changes, in execution order."""

    steps: tuple[Step, ...]
    source: tuple[Change, ...] = ()
    """The changes the user asked for (what Alembic would have emitted)."""
    notes: tuple[str, ...] = field(default=())

    def phase(self, phase: Phase) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.phase is phase)

    def downgrade_steps(self) -> Sequence[Step]:
        """Steps to undo, in reverse order."""
        return tuple(reversed(self.steps))
