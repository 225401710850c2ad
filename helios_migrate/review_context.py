"""What a review rule sees: a whole schema, and what it reports about it.

Statement rules (:mod:`helios_migrate.rule_context`) judge one change; review rules judge a
schema as it stands, from the models or from a live database.  A rule module becomes a review rule
by defining ``review(ctx: ReviewContext) -> Iterable[SchemaViolation]`` (see
:mod:`helios_migrate.rules`).  A violation names the table (and column) it is about, so findings
can be suppressed per table or column, and carries its fix as changes of the change model: the
review engine turns them into a lock-safe plan with the planner, never into SQL of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .changes import Change, QualifiedName
from .findings import Severity
from .schema_model import Schema, SchemaSource
from .versions import PgVersion

if TYPE_CHECKING:
    from .config import Config


@dataclass(frozen=True)
class SchemaViolation:
    """What a review rule reports about one table, column, index or sequence."""

    message: str
    """One line, specific: name the table, column or index and the consequence on a live system."""
    table: QualifiedName
    column: str | None = None
    help: str = ""
    """What to do, in words (the engine appends the plan of ``fix``)."""
    fix: tuple[Change, ...] = ()
    """The schema change that resolves it; planned lock-safe by the engine."""
    recreate: tuple[Change, ...] = ()
    """For a fix that drops something: the changes that re-create it (the plan's downgrade)."""
    severity: Severity | None = None
    """Replaces the rule's default severity (configuration still wins)."""


TOOL_TABLES = frozenset({
    "alembic_version", "spatial_ref_sys", "schema_migrations", "ar_internal_metadata",
    "flyway_schema_history", "databasechangelog", "databasechangeloglock", "django_migrations",
})
"""Tables a tool owns (Alembic's version table, PostGIS's reference table, other migration tools'
history): their design follows the tool, so the design and column-type rules leave them alone."""

ValueSampler = Callable[[QualifiedName, str], "Sequence[str] | None"]
"""``(table, column) -> a bounded sample of the column's non-NULL values as text`` (live only):
read-only, a few hundred rows at most, ``None`` when the column could not be sampled."""


@dataclass(frozen=True)
class ReviewContext:
    """Everything a review rule may read."""

    schema: Schema
    version: PgVersion
    config: Config
    enum_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Enum types by name as columns spell them (``order_status``, ``public.order_status``):
    their labels in order."""
    sampler: ValueSampler | None = None
    """Samples column values on a live review; ``None`` on the models (nothing to sample)."""

    def sample(self, table: QualifiedName, column: str) -> Sequence[str] | None:
        """A bounded sample of ``table.column``'s non-NULL values, or ``None`` (models, or it failed)."""
        return self.sampler(table, column) if self.sampler is not None else None

    def enum_labels(self, type_name: str) -> tuple[str, ...] | None:
        """The labels of the enum type a column is declared with, or ``None`` if it is no enum."""
        # format_type quotes a mixed-case name ("Mood") and the catalog reader folds types to lower case
        bare = type_name.replace('"', "").lower()
        folded = {name.lower(): labels for name, labels in self.enum_types.items()}
        return folded.get(bare) or folded.get(bare.rpartition(".")[2])

    @property
    def live(self) -> bool:
        """Read from a database (statistics, validity and sequence positions are known)?"""
        return self.schema.source is SchemaSource.DATABASE

    @property
    def key_range_percent(self) -> float:
        """How full a key's range may get before review reports it."""
        return self.config.review.key_range_percent


ReviewFunction = Callable[[ReviewContext], Iterable[SchemaViolation]]

__all__ = ["TOOL_TABLES", "ReviewContext", "ReviewFunction", "SchemaViolation", "ValueSampler"]
