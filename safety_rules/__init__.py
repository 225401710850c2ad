"""Safety rules: one module per rule, each with a stable ``HM`` code.

A rule module defines ``CODE`` (``HM`` + 3 digits: 1xx locking, 2xx rewrite/scan, 3xx destructive
and compatibility, 4xx transactions and timeouts, 5xx schema design, 9xx tool problems), ``NAME``
(kebab-case), ``SEVERITY`` (the default), ``KIND`` (how table lists apply, see
:class:`~safety_rules.context.RuleKind`) and ``check(ctx) -> Iterable[Violation]``.  Its docstring,
with the sections "What it does", "Why is this bad?", "Example" and "Use instead", is the rule's
documentation page.

:data:`RULES` lists every rule once, in order.  Codes never change meaning once released: a
snapshot test pins codes, names and default severities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from helios_migrate.findings import DOCS_BASE_URL, Severity

from . import (
    add_check_without_not_valid,
    add_column_not_null_without_default,
    add_column_rewrites_table,
    add_column_volatile_default,
    add_exclusion_constraint,
    add_foreign_key_without_not_valid,
    add_primary_key_without_index,
    add_unique_constraint_without_index,
    attach_partition_without_check,
    backfill_in_ddl_transaction,
    change_column_type_rewrite,
    concurrent_index_not_rerunnable,
    concurrent_index_pg14_corruption,
    concurrently_in_transaction,
    create_index_non_concurrently,
    detach_partition_non_concurrently,
    drop_column,
    drop_index_non_concurrently,
    drop_not_null,
    drop_table,
    enum_value_used_in_same_transaction,
    lock_held_across_statements,
    missing_lock_timeout,
    missing_statement_timeout,
    prefer_bigint_primary_key,
    prefer_identity,
    prefer_jsonb,
    prefer_text_over_char,
    prefer_text_over_varchar,
    prefer_timestamptz,
    refresh_materialized_view_non_concurrently,
    reindex_non_concurrently,
    rename_column,
    rename_enum_value,
    rename_table,
    revision_not_rendered,
    set_not_null_with_scan,
    syntax_error,
    table_rewrite_maintenance,
    transaction_nesting,
    trigger_on_existing_table,
    truncate_table,
    unanalysed_statement,
    unbatched_backfill,
    unsupported_on_server_version,
    unused_suppression,
    validate_in_same_transaction,
)
from .context import RuleContext, RuleKind, Violation

RULE_MODULES: tuple[ModuleType, ...] = (
    # 1xx locking
    create_index_non_concurrently,
    drop_index_non_concurrently,
    reindex_non_concurrently,
    add_unique_constraint_without_index,
    add_primary_key_without_index,
    add_exclusion_constraint,
    add_foreign_key_without_not_valid,
    add_check_without_not_valid,
    set_not_null_with_scan,
    detach_partition_non_concurrently,
    attach_partition_without_check,
    trigger_on_existing_table,
    concurrent_index_pg14_corruption,
    # 2xx rewrite / scan
    add_column_volatile_default,
    add_column_not_null_without_default,
    add_column_rewrites_table,
    change_column_type_rewrite,
    table_rewrite_maintenance,
    unbatched_backfill,
    refresh_materialized_view_non_concurrently,
    # 3xx destructive / compatibility
    rename_column,
    rename_table,
    drop_column,
    drop_table,
    drop_not_null,
    rename_enum_value,
    truncate_table,
    unsupported_on_server_version,
    # 4xx transactions and timeouts
    missing_lock_timeout,
    missing_statement_timeout,
    lock_held_across_statements,
    backfill_in_ddl_transaction,
    validate_in_same_transaction,
    concurrently_in_transaction,
    concurrent_index_not_rerunnable,
    enum_value_used_in_same_transaction,
    transaction_nesting,
    # 5xx schema design
    prefer_bigint_primary_key,
    prefer_identity,
    prefer_text_over_varchar,
    prefer_timestamptz,
    prefer_text_over_char,
    prefer_jsonb,
    # 9xx tool problems
    syntax_error,
    unused_suppression,
    unanalysed_statement,
    revision_not_rendered,
)

DOC_SECTIONS: tuple[str, ...] = ("What it does", "Why is this bad?", "Example", "Use instead")
_CODE_RE = re.compile(r"^HM[1-59]\d\d$")
_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

CheckFunction = Callable[[RuleContext], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: its identity, default severity, check function and documentation."""

    code: str
    name: str
    severity: Severity
    kind: RuleKind
    check: CheckFunction
    doc: str
    module: str
    revision_only: bool = False
    """Reported for Alembic revision files only; the documentation examples are revisions."""

    @classmethod
    def from_module(cls, module: ModuleType) -> Rule:
        code, name = module.CODE, module.NAME
        if not _CODE_RE.match(code) or not _NAME_RE.match(name):
            raise ValueError(f"{module.__name__}: bad CODE {code!r} or NAME {name!r}")
        return cls(
            code=code,
            name=name,
            severity=module.SEVERITY,
            kind=module.KIND,
            check=module.check,
            doc=module.__doc__ or "",
            module=module.__name__,
            revision_only=bool(getattr(module, "REVISION_ONLY", False)),
        )

    @property
    def summary(self) -> str:
        """The docstring's first line."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    @property
    def doc_url(self) -> str:
        return f"{DOCS_BASE_URL}{self.code.lower()}-{self.name}"

    def sections(self) -> dict[str, str]:
        """The docstring's ``## Section`` bodies by heading (the documentation page)."""
        out: dict[str, str] = {}
        current: str | None = None
        lines: list[str] = []
        for line in self.doc.splitlines():
            if line.startswith("## "):
                if current is not None:
                    out[current] = "\n".join(lines).strip()
                current, lines = line[3:].strip(), []
            elif current is not None:
                lines.append(line)
        if current is not None:
            out[current] = "\n".join(lines).strip()
        return out

    def markdown(self) -> str:
        """The rule's documentation page."""
        body = self.doc.strip().split("\n", 1)
        rest = body[1].strip() if len(body) > 1 else ""
        return (
            f"# {self.code} {self.name}\n\n{self.summary}\n\n"
            f"Default severity: **{self.severity}**\n\n{rest}\n"
        )


RULES: tuple[Rule, ...] = tuple(Rule.from_module(m) for m in RULE_MODULES)
_BY_CODE = {rule.code: rule for rule in RULES}
if len(_BY_CODE) != len(RULES):  # pragma: no cover - guarded by tests
    raise RuntimeError("duplicate rule codes in safety_rules.RULE_MODULES")


def rule_by_code(code: str) -> Rule:
    """The rule with ``code``; ``KeyError`` when there is none."""
    return _BY_CODE[code]

