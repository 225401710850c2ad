"""How plans are built: timeouts, retries, batch sizes and which tables keep the plain forms."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..changes import QualifiedName
from ..config import Config, TableOverride
from ..plan import RetryPolicy
from ..sqltext import duration_ms as _ms


@dataclass(frozen=True)
class PlanPolicy:
    """How plans are built; read from ``[tool.helios-migrate]`` by :meth:`from_config`."""

    lock_timeout: str = "2s"
    statement_timeout: str | None = "30s"
    """For short steps; scans (VALIDATE) and index builds run without one."""
    attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    batch_size: int = 10_000
    pause_ms: int = 50
    index_on_fk: bool = True
    """Build an index on a new foreign key's referencing columns when none covers them."""
    small_tables: tuple[str, ...] = ()
    """Tables exempt from the lock-safe forms (plain DDL in the migration transaction)."""
    small_table_rows: int | None = None
    """Tables estimated below this many rows get the plain forms too (default: off)."""
    table_overrides: Mapping[str, TableOverride] = field(default_factory=dict)
    """Per table (``"orders"`` or ``"public.orders"``), validated by :mod:`helios_migrate.config`."""

    @classmethod
    def from_config(cls, config: Config) -> PlanPolicy:
        """From the configuration: the project-wide timeouts, retries and batches, and the
        planning settings of ``[tool.helios-migrate.autogenerate]``."""
        settings = config.autogenerate
        return cls(
            lock_timeout=config.lock_timeout,
            statement_timeout=config.statement_timeout,
            attempts=max(1, config.lock_retries),
            batch_size=config.backfill_batch_size,
            pause_ms=config.backfill_pause_ms,
            index_on_fk=settings.index_on_fk,
            small_tables=config.tables.small,
            small_table_rows=settings.small_table_rows,
            table_overrides=settings.tables,
        )

    def for_table(self, table: QualifiedName) -> PlanPolicy:
        """This policy with the overrides configured for ``table`` applied."""
        override = self.table_overrides.get(str(table)) or self.table_overrides.get(table.name)
        if override is None:
            return self
        fields: dict[str, Any] = {
            "lock_timeout": override.lock_timeout,
            "statement_timeout": override.statement_timeout,
            "attempts": None if override.lock_retries is None else max(1, override.lock_retries),
            "batch_size": override.backfill_batch_size,
            "pause_ms": override.backfill_pause_ms,
            "index_on_fk": override.index_on_fk,
        }
        return dataclasses.replace(self, **{k: v for k, v in fields.items() if v is not None})

    def retry(self, *, statement_timeout: bool = True) -> RetryPolicy:
        return RetryPolicy(
            lock_timeout_ms=_ms(self.lock_timeout),
            statement_timeout_ms=_ms(self.statement_timeout)
            if statement_timeout and self.statement_timeout
            else None,
            attempts=self.attempts,
            backoff_initial_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
        )

    def is_small(self, table: QualifiedName) -> bool:
        return any(
            QualifiedName.parse(p).name == table.name
            and (QualifiedName.parse(p).schema in (None, table.schema))
            for p in self.small_tables
        )
