"""Safety rules: the built-in rule package, one module per rule, each with a stable ``HM`` code.

A rule module defines ``CODE`` (``HM`` + 3 digits: 1xx locking, 2xx rewrite/scan, 3xx destructive
and compatibility, 4xx transactions and timeouts, 5xx schema design, 6xx schema review, 9xx tool problems), ``NAME``
(kebab-case), ``SEVERITY`` (the default), ``KIND`` (how table lists apply, see
:class:`~helios_migrate.rule_context.RuleKind`) and ``check(ctx) -> Iterable[Violation]``; a 6xx
rule (schema review, ``helios-migrate review``) defines ``review(ctx) -> Iterable[SchemaViolation]``
instead, judging a whole schema (:mod:`helios_migrate.review_context`).  Its
docstring, with the sections "What it does", "Why is this bad?", "Example" and "Use instead", is
the rule's documentation page.

:data:`RULE_MODULES` lists every rule once, in order.  The core finds this package through the
``helios_migrate.rules`` entry point ``helios`` (see :mod:`helios_migrate.rules`); it never imports
it by name.  Codes never change meaning once released: a snapshot test pins codes, names and
default severities.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    add_check_without_not_valid,
    add_column_not_null_without_default,
    add_column_rewrites_table,
    add_column_volatile_default,
    add_exclusion_constraint,
    add_foreign_key_without_not_valid,
    add_primary_key_without_index,
    add_unique_constraint_without_index,
    alter_table_set_rewrites,
    attach_partition_without_check,
    backfill_in_ddl_transaction,
    bloat,
    change_column_type_rebuilds_indexes,
    change_column_type_rewrite,
    concurrent_index_not_rerunnable,
    concurrent_index_pg14_corruption,
    concurrently_in_transaction,
    create_index_non_concurrently,
    detach_partition_non_concurrently,
    drop_column,
    drop_default_of_not_null_column,
    drop_foreign_key_or_unique,
    drop_index_non_concurrently,
    drop_not_null,
    drop_table,
    duplicate_index,
    enum_value_used_in_same_transaction,
    foreign_key_on_delete_undecided,
    foreign_key_type_mismatch,
    foreign_key_without_index,
    identifier_too_long,
    invalid_index,
    key_range_exhaustion,
    lock_held_across_statements,
    missing_lock_timeout,
    missing_statement_timeout,
    money_as_float,
    multiple_heads,
    nullable_never_null,
    prefer_bigint_primary_key,
    prefer_identity,
    prefer_jsonb,
    prefer_text_over_char,
    prefer_text_over_varchar,
    prefer_timestamptz,
    primary_key_using_index_on_nullable_column,
    redundant_index,
    refresh_materialized_view_non_concurrently,
    reindex_non_concurrently,
    rename_column,
    rename_enum_value,
    rename_table,
    revision_edited,
    revision_not_rendered,
    set_not_null_with_scan,
    syntax_error,
    table_rewrite_maintenance,
    table_without_primary_key,
    transaction_nesting,
    trigger_on_existing_table,
    truncate_table,
    unanalysed_statement,
    unbatched_backfill,
    unindexed_foreign_key,
    unsupported_on_server_version,
    unused_index,
    unused_suppression,
    validate_in_same_transaction,
)

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
    primary_key_using_index_on_nullable_column,
    # 2xx rewrite / scan
    add_column_volatile_default,
    add_column_not_null_without_default,
    add_column_rewrites_table,
    change_column_type_rewrite,
    table_rewrite_maintenance,
    unbatched_backfill,
    refresh_materialized_view_non_concurrently,
    alter_table_set_rewrites,
    change_column_type_rebuilds_indexes,
    # 3xx destructive / compatibility
    rename_column,
    rename_table,
    drop_column,
    drop_table,
    drop_not_null,
    rename_enum_value,
    truncate_table,
    unsupported_on_server_version,
    drop_foreign_key_or_unique,
    identifier_too_long,
    drop_default_of_not_null_column,
    multiple_heads,
    revision_edited,
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
    foreign_key_without_index,
    # 6xx schema review (helios-migrate review)
    table_without_primary_key,
    key_range_exhaustion,
    unindexed_foreign_key,
    foreign_key_type_mismatch,
    duplicate_index,
    redundant_index,
    invalid_index,
    unused_index,
    nullable_never_null,
    money_as_float,
    foreign_key_on_delete_undecided,
    bloat,
    # 9xx tool problems
    syntax_error,
    unused_suppression,
    unanalysed_statement,
    revision_not_rendered,
)
