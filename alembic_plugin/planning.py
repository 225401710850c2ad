"""The autogenerate comparator that rewrites risky operations into lock-safe plans.

It runs on the ``"autogenerate"`` target at priority LAST, after Alembic's own comparators have
filled ``upgrade_ops`` and before Alembic derives the downgrade from each operation's
``reverse()``: replacing an operation here with a :class:`~alembic_plugin.ops.LockSafePlanOp`
gives a lock-safe downgrade for free.

The plan follows the server autogenerate compared against (its version, whether each table has
rows, which indexes exist), read with plain ``SELECT`` statements only.

What one run plans with (version, configuration, live lookups, new tables) is a
:class:`Planning` kept in the options of that run's migration context (:func:`planning_of`), and
each plan operation carries its run's :meth:`Planning.replan` for its ``reverse()``: two
autogenerate runs in one process never see each other's state.  Operations on tables
created in the same revision are left as Alembic wrote them: those tables are empty and invisible
until the migration commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from alembic.autogenerate.render import renderers
from alembic.operations import ops
from alembic.util import CommandError, PriorityDispatchResult, rev_id

from helios_migrate import calibration
from helios_migrate.alembic_ops import changes_from_op, render_sql
from helios_migrate.catalog import LiveCatalog
from helios_migrate.changes import (
    AddColumn,
    Change,
    ColumnDef,
    CreateIndex,
    CreateTable,
    DropColumn,
    DropIndex,
    QualifiedName,
)
from helios_migrate.config import AutogenerateSettings, Config, ConfigError, load_config
from helios_migrate.facts import collect_facts
from helios_migrate.impact import estimate_plan, render_revision_header, tables_of_plan
from helios_migrate.llm import LlmClient, LlmConfigError, load_llm_config
from helios_migrate.llm.rename import judge_rename, rename_candidates
from helios_migrate.plan import (
    Acknowledgement,
    Direction,
    Origin,
    Phase,
    Plan,
    RetryPolicy,
    Step,
    TransactionMode,
)
from helios_migrate.planner import (
    LiveFacts,
    PlannerFacts,
    PlanPolicy,
    UnrenderableChange,
    llm_proposer,
    plan_changes,
    plan_column_rename,
    plan_table_rename,
    plan_with_proposer,
    unplannable,
)
from helios_migrate.versions import PgVersion, Target, VersionError, default_version, target_version

from .compare_enums import compare_enums
from .fk_indexes import keep_fk_support_indexes
from .guards import GuardsOp, guard_downgrades, render_guards_op
from .lock_report import report_locks, server_version
from .new_tables import LockTimeoutOp, deliberate_findings, guard_new_tables, render_lock_timeout_op
from .ops import (
    CommentOp,
    LockSafePlanOp,
    PolicyOp,
    render_comment_op,
    render_plan_op,
    render_policy_op,
)
from .reading import read_changes, reverse_of
from .rerunnable import make_rerunnable

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import MigrateOperation, OpContainer, UpgradeOps

    from helios_migrate.knowledge import SchemaLookup

log = logging.getLogger("alembic.helios")

DISABLE_VAR = "HELIOS_PLAN"
"""``HELIOS_PLAN=0`` leaves autogenerate's operations as Alembic wrote them (lock report only)."""


_UNSET = object()


PLANNING_OPTION = "helios_planning"
"""Key of the run's :class:`Planning` in the ``opts`` of its migration context."""


class Planning:
    """What one autogenerate run plans with: version, configuration, live lookups, policy, new
    tables.  Kept on the run's migration context (:func:`planning_of`), never in this module."""

    def __init__(
        self,
        version: PgVersion,
        config: Config,
        catalog: SchemaLookup | None,
        facts: PlannerFacts | None,
        policy: PlanPolicy,
        new_tables: set[QualifiedName],
        new_indexes: list[CreateIndex],
    ) -> None:
        self.version = version
        self.config = config
        self.catalog = catalog
        self.facts = facts
        self.policy = policy
        self.new_tables = new_tables
        self.new_indexes = new_indexes
        self.proposer: Any = _UNSET
        self.target_source = ""
        """Where the target version came from, when it is not the database's own."""
        self.guards: dict[int, tuple[str, list[str]]] = {}
        """Drops that may be half of a rename, by ``id`` of the operation: (guard, comment)."""

    def plan(self, op: MigrateOperation, changes: list[Change]) -> Plan:
        recreate: dict[Change, list[Change]] = {}
        if any(isinstance(change, (DropIndex, DropColumn)) for change in changes):
            # Without a readable reverse (Alembic kept no copy of what is dropped), the drop
            # stays irreversible, and its plan says so.
            inverse = reverse_of(op)
            again = read_changes(inverse, "its inverse is not re-created") if inverse is not None else None
            if again is not None:
                recreate |= {ch: again for ch in changes if isinstance(ch, (DropIndex, DropColumn))}
        kwargs: dict[str, Any] = dict(
            catalog=self.catalog,
            facts=self.facts,
            policy=self.policy,
            recreate=recreate,
            new_tables=self.new_tables,
            new_indexes=self.new_indexes,
        )
        if not any(unplannable(ch) for ch in changes):
            return plan_changes(changes, self.version, **kwargs)
        if self.proposer is _UNSET:
            self.proposer = llm_proposer(self.version, catalog=self.catalog, config=self.config,
                                         where="an operation in an autogenerated revision",
                                         facts=self.facts)
        try:
            sql = render_sql(op)
        except Exception as exc:  # broad: any operation, any type; SQLAlchemy raises many kinds
            log.warning("helios: %s cannot be rendered offline (%s); proposed from its changes only",
                        type(op).__name__, exc)
            sql = ""
        return plan_with_proposer(changes, sql, self.version, self._reported(self.proposer), **kwargs)

    @staticmethod
    def _reported(proposer: Any) -> Any:
        """``proposer``, logging the outcome of each proposal (accepted, or why not)."""
        if proposer is None:
            return None

        def propose(sql: str) -> Any:
            result = proposer(sql)
            log.warning("helios: %s", getattr(result, "message", result))
            return result

        return propose


    def replan(self, op: MigrateOperation) -> LockSafePlanOp | None:
        """A plan for ``op`` with the settings of this run (``reverse()`` of an operation kept as
        written plans Alembic's inverse the same careful way)."""
        return _plan_op(op, self)

    def keep_on(self, autogen_context: Any) -> None:
        """Keep this planning in the options of ``autogen_context``'s migration context, where
        :func:`planning_of` finds it for the rest of the run."""
        for holder in (getattr(autogen_context, "migration_context", None), autogen_context):
            opts = getattr(holder, "opts", None)
            if isinstance(opts, dict):
                opts[PLANNING_OPTION] = self
                return


def planning_of(context: Any) -> Planning | None:
    """The :class:`Planning` of the autogenerate run of ``context`` (an ``AutogenContext`` or the
    ``MigrationContext`` that ``process_revision_directives`` receives); ``None`` when it planned
    nothing."""
    for holder in (context, getattr(context, "migration_context", None)):
        opts = getattr(holder, "opts", None)
        found = opts.get(PLANNING_OPTION) if isinstance(opts, dict) else None
        if isinstance(found, Planning):
            return found
    return None


def _config() -> Config:
    """``[tool.helios-migrate]`` of the project; a wrong key or value stops autogenerate with a
    message naming it (planning with the defaults instead could plan for the wrong server)."""
    try:
        return load_config()
    except ConfigError as exc:
        raise CommandError(f"helios: {exc}") from None


def autogenerate_settings() -> AutogenerateSettings:
    """``[tool.helios-migrate.autogenerate]``, validated (the defaults when absent)."""
    return _config().autogenerate


def _lookups(autogen_context: AutogenContext) -> tuple[SchemaLookup | None, PlannerFacts | None]:
    conn = autogen_context.connection
    if conn is None:
        return None, None
    driver = getattr(getattr(conn, "connection", None), "driver_connection", None)
    if isinstance(driver, psycopg.Connection):
        return LiveCatalog(driver), LiveFacts(driver)
    return None, None


def _leaves(container: OpContainer) -> Iterator[MigrateOperation]:
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def _plan_op(op: MigrateOperation, planning: Planning) -> LockSafePlanOp | None:
    if isinstance(op, (LockSafePlanOp, CommentOp)):
        return None  # planned already (a rename)
    changes = read_changes(op, "left as written")
    if not changes or any(ch.table in planning.new_tables for ch in changes):
        return None
    try:
        plan = planning.plan(op, changes)
    except UnrenderableChange as exc:  # a data migration: Alembic's own operation carries its SQL
        log.warning("helios: %s left as written: %s", type(op).__name__, exc)
        return None
    guard = planning.guards.get(id(op))
    if guard is not None:
        reason, comment = guard
        plan = Plan(
            steps=tuple(
                dataclasses.replace(s, guard=reason) if s.phase is Phase.CONTRACT else s for s in plan.steps
            ),
            source=plan.source,
            notes=(*comment, *plan.notes),
        )
    kept = all(
        s.transaction is TransactionMode.MIGRATION and s.origin is Origin.AS_WRITTEN
        for s in plan.steps
    )
    if kept:
        return None
    plan = dataclasses.replace(
        plan, steps=tuple(model_choices(s, planning.version, planning.config) for s in plan.steps)
    )
    title = "; ".join(f"{ch.kind.replace('_', ' ')} on {ch.table}" for ch in changes)
    if any(s.origin is Origin.LLM for s in plan.steps):
        title = f"LLM-proposed plan (validated by helios rules; review it) for {title}"
    return LockSafePlanOp(
        op, plan.steps,
        title=f"{title} -- lock-safe plan for PostgreSQL {planning.version}"
        + (f" ({planning.target_source})" if planning.target_source else ""),
        notes=plan.notes,
        replan=planning.replan,
    )


def model_choices(step: Step, version: PgVersion, config: Config | None = None) -> Step:
    """``step`` acknowledging, in each direction, the schema-design findings its SQL meets: the
    revision carries out the model as declared, and says so beside the call with the rule's
    advice (the reviewer reads it; ``check`` passes the revision).  ``config``: the run's
    configuration (default: the project's)."""
    config = config if config is not None else _config()

    def acks(sql: Sequence[str] | None) -> tuple[Acknowledgement, ...]:
        if not sql:
            return ()
        found = deliberate_findings(";\n".join(sql) + ";\n", config, version)
        return tuple(Acknowledgement((code,), reason) for code, reason in found.items())

    up, down = acks(step.sql), acks(step.inverse)
    if not up and not down:
        return step
    return dataclasses.replace(
        step,
        acknowledged=(*step.acknowledged, *up),
        inverse_acknowledged=(*step.inverse_acknowledged, *down),
    )


def _rewrite(container: OpContainer, planning: Planning) -> None:
    new_ops: list[MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            _rewrite(op, planning)
            new_ops.append(op)
            continue
        planned = _plan_op(op, planning)
        new_ops.append(op if planned is None else planned)
        if planned is not None:
            log.info("helios: planned lock-safe: %s", planned.title)
            for note in planned.notes:
                log.warning("helios: %s", note)
    container.ops = new_ops


def _target(autogen_context: AutogenContext, config: Config) -> Target:
    """The version to plan for: ``HELIOS_PG_VERSION`` or ``pg_version`` in the configuration (the
    production server) before the version of the database autogenerate compared against."""

    database, known = server_version(autogen_context)
    try:
        return target_version(configured=config.pg_version, database=database if known else None)
    except VersionError as exc:
        raise CommandError(f"helios: {exc}") from None


def plan_upgrade_ops(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> None:
    """Replace every risky operation of ``upgrade_ops`` with its lock-safe plan, in place; the
    run's :class:`Planning` is kept on ``autogen_context`` (:func:`planning_of`)."""
    config = _config()
    target = _target(autogen_context, config)
    version = target.version
    if target.note:
        log.warning("helios: %s", target.note)
    policy = PlanPolicy.from_config(config)
    for name in keep_fk_support_indexes(getattr(autogen_context, "metadata", None), upgrade_ops, policy):
        log.info("helios: kept %s: it supports a foreign key of the models no declared index covers", name)
    catalog, facts = _lookups(autogen_context)
    guards = plan_renames(upgrade_ops, version, facts, catalog, config=config)
    everything: list[Change] = []
    for op in _leaves(upgrade_ops):
        if isinstance(op, (LockSafePlanOp, CommentOp)):
            continue
        # What cannot be read here is reported, and left as written, when it is planned below.
        with contextlib.suppress(Exception):  # broad: as in read_changes, which warns later
            everything.extend(changes_from_op(op))
    new_tables = {ch.on for ch in everything if isinstance(ch, CreateTable)}
    new_indexes = [ch for ch in everything if isinstance(ch, CreateIndex)]
    planning = Planning(version, config, catalog, facts, policy, new_tables, new_indexes)
    planning.guards = guards
    planning.target_source = target.source if target.database != target.version else ""
    planning.keep_on(autogen_context)
    _rewrite(upgrade_ops, planning)
    compare_enums(autogen_context, upgrade_ops, version, policy)
    guard_new_tables(upgrade_ops, config, version)
    make_rerunnable(upgrade_ops)


# --- renames ------------------------------------------------------------------------------------


def _hint(info: Any) -> str | None:
    helios = (info or {}).get("helios") if isinstance(info, Mapping) else None
    value = helios.get("renamed_from") if isinstance(helios, Mapping) else None
    return str(value) if value else None


def _parents(container: OpContainer) -> Iterator[tuple[OpContainer, MigrateOperation]]:
    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            yield from _parents(op)
        else:
            yield container, op


def _column_def(op: MigrateOperation, consequence: str) -> ColumnDef | None:
    """The column an ``add_column`` operation adds; ``None`` (reported) when it cannot be read."""
    changes = read_changes(op, consequence)
    return next((ch.column for ch in changes or () if isinstance(ch, AddColumn)), None)


def _dropped_column(drop_op: MigrateOperation) -> ColumnDef | None:
    """The definition of the column ``drop_op`` drops, when Alembic kept a copy of it."""
    inverse = reverse_of(drop_op)
    return _column_def(inverse, "the dropped column is not read") if inverse is not None else None


def _configured_renames(settings: AutogenerateSettings) -> dict[str, str]:
    return dict(settings.renames)


def _llm_client() -> Any:
    """A client when ``[tool.helios-migrate.llm]`` (or the environment) configures one, else None."""
    try:
        config = load_llm_config()
    except LlmConfigError as exc:
        log.warning("helios: LLM not used: %s", exc)
        return None
    return LlmClient(config) if config.enabled else None


def plan_renames(
    upgrade_ops: OpContainer, version: PgVersion, facts: PlannerFacts | None, catalog: SchemaLookup | None,
    *, config: Config | None = None,
) -> dict[int, tuple[str, list[str]]]:
    """Turn confirmed renames (a ``renamed_from`` hint in the model's ``info``, or
    ``[tool.helios-migrate.autogenerate] renames``) into lock-safe rename plans, in place.

    A drop + add pair that only looks like a rename is never renamed on a guess: it is reported
    (with an LLM's judgement when one is configured), and its drop refuses to run until the user
    confirms.  Returns those guards by ``id`` of the drop operation.
    """

    config = config if config is not None else _config()
    settings = config.autogenerate
    strategy = config.rename_strategy
    policy = PlanPolicy.from_config(config)
    confirmed = _configured_renames(settings)
    pairs = list(_parents(upgrade_ops))

    def key(table: str, schema: str | None) -> QualifiedName:
        return QualifiedName(table, schema)

    drops = {
        (key(op.table_name, op.schema), op.column_name): (parent, op)
        for parent, op in pairs if isinstance(op, ops.DropColumnOp)
    }
    dropped_tables = {key(op.table_name, op.schema): (parent, op) for parent, op in pairs if isinstance(op, ops.DropTableOp)}

    def wanted_old(table: QualifiedName, new: str, hint: str | None) -> str | None:
        if hint:
            return hint
        for k, v in confirmed.items():
            parts = k.split(".")
            if v == new and len(parts) >= 2 and parts[-2] == table.name and (
                len(parts) == 2 or parts[0] == table.schema
            ):
                return parts[-1]
        return None

    for parent, op in pairs:
        if isinstance(op, ops.AddColumnOp):
            table = key(op.table_name, op.schema)
            old_name = wanted_old(table, op.column.name, _hint(op.column.info))
            if old_name is None:
                continue
            found = drops.pop((table, old_name), None)
            if found is None:
                log.warning("helios: %s.%s says renamed_from %r, but autogenerate drops no such column; "
                            "planned as a new column", table, op.column.name, old_name)
                continue
            drop_parent, drop_op = found
            new_col = _column_def(op, "not planned as a rename")
            if new_col is None:
                drops[(table, old_name)] = found
                continue
            old_col = _dropped_column(drop_op)
            if old_col is None:
                log.warning("helios: the type of %s.%s before the rename is unknown; taken as %s",
                            table, old_name, new_col.type)
                old_col = ColumnDef(old_name, new_col.type)
            plan = plan_column_rename(table, old_col, new_col, version, strategy=strategy,
                                      catalog=catalog, facts=facts, policy=policy)
            title = f"rename column {table}.{old_name} to {new_col.name} ({strategy})"
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(
                op, plan.steps, title=title, notes=plan.notes, contract_after_deploy=True
            )
            drop_parent.ops.remove(drop_op)
            log.warning("helios: %s", title)
        elif isinstance(op, ops.CreateTableOp):
            new_table = key(op.table_name, op.schema)
            old_name = _hint(getattr(op, "info", None))
            if old_name is None:
                old_name = next((k for k, v in confirmed.items() if v == op.table_name and "." not in k), None)
            if old_name is None:
                continue
            old_table = QualifiedName.parse(old_name) if "." in old_name else key(old_name, op.schema)
            found_table = dropped_tables.pop(old_table, None)
            if found_table is None:
                log.warning("helios: table %s says renamed_from %r, but autogenerate drops no such table; "
                            "planned as a new table", new_table, old_name)
                continue
            plan = plan_table_rename(old_table, new_table, version, policy=policy)
            title = f"rename table {old_table} to {new_table.name} (with a compatibility view)"
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(
                op, plan.steps, title=title, notes=plan.notes, contract_after_deploy=True
            )
            found_table[0].ops.remove(found_table[1])
            # Indexes of the new table exist already: they came with the rename.
            for other_parent, other in pairs:
                if isinstance(other, ops.CreateIndexOp) and key(other.table_name, other.schema) == new_table:
                    with contextlib.suppress(ValueError):
                        other_parent.ops.remove(other)
            log.warning("helios: %s", title)
    for parent, _op in pairs:
        if isinstance(parent, ops.ModifyTableOps) and not parent.ops:
            with contextlib.suppress(ValueError):
                upgrade_ops.ops.remove(parent)
    return _unconfirmed(pairs, drops, version)


def _unconfirmed(pairs: list[Any], drops: dict[Any, Any], version: PgVersion) -> dict[int, tuple[str, list[str]]]:
    changes: list[Change] = []
    old_types: dict[tuple[str, str], str] = {}
    for (table, column), (_parent, drop_op) in drops.items():
        changes.append(DropColumn(on=table, column=column))
        old = _dropped_column(drop_op)
        if old is not None:
            old_types[(table.name, column)] = old.type
    for _parent, op in pairs:
        if isinstance(op, ops.AddColumnOp):
            col = _column_def(op, "not compared with the dropped columns")
            if col is not None:
                changes.append(AddColumn(on=QualifiedName(op.table_name, op.schema), column=col))
    candidates = rename_candidates(changes, old_types)
    if not candidates:
        return {}
    client = _llm_client()
    guards: dict[int, tuple[str, list[str]]] = {}
    for cand in candidates:
        found = drops.get((cand.table, cand.old_column))
        if found is None or id(found[1]) in guards:
            continue
        hint = judge_rename(cand, client)
        verdict = (
            f"LLM judgement ({hint.confidence}): {'a rename' if hint.is_rename else 'not a rename'} -- {hint.reason}"
            if hint.source == "llm" and hint.is_rename is not None
            else f"heuristic ({hint.confidence}): {hint.reason}"
        )
        confirm = (
            f'confirm a rename with info={{"helios": {{"renamed_from": "{cand.old_column}"}}}} on the column '
            f'{cand.new_column} (or [tool.helios-migrate.autogenerate] renames = '
            f'{{"{cand.table.name}.{cand.old_column}" = "{cand.new_column}"}}) and autogenerate again'
        )
        reason = (
            f"{cand.table}.{cand.old_column} is dropped while {cand.new_column} is added: this may be a "
            f"rename, and dropping loses its values. {confirm}; if they are unrelated, set "
            "HELIOS_ALLOW_DATA_LOSS=1 or delete this guard"
        )
        comment = [
            f"POSSIBLE RENAME: {cand.table}.{cand.old_column} -> {cand.new_column} "
            f"(same table and type, names {cand.similarity:.0%} similar). {verdict}.",
            f"Not renamed automatically: {confirm}. The drop below refuses to run until then.",
        ]
        log.warning("helios: possible rename %s.%s -> %s (%s); %s", cand.table, cand.old_column,
                    cand.new_column, verdict, confirm)
        guards[id(found[1])] = (reason, comment)
    return guards


def _version_of(context: Any, planning: Planning | None) -> PgVersion:
    if planning is not None:
        return planning.version
    info = getattr(getattr(context, "dialect", None), "server_version_info", None)
    if info:
        return PgVersion(int(info[0]), int(info[1]) if len(info) > 1 else 0)

    return default_version()


def _steps_of(container: OpContainer, version: PgVersion, planning: Planning | None) -> list[Any]:
    """Every step the revision runs, in order: a plan's steps, or an operation kept as written."""
    steps: list[Any] = []
    for op in _leaves(container):
        if isinstance(op, LockSafePlanOp):
            steps.extend(op.steps)
            continue
        if isinstance(op, CommentOp | LockTimeoutOp):
            continue  # no work: comments, and the lock_timeout set for plain operations
        changes = read_changes(op, "not in the impact estimate")
        if not changes:
            continue
        policy = planning.policy if planning is not None else None
        new_tables = (planning.new_tables if planning is not None else set()) | _tables(changes)
        try:
            steps.extend(plan_changes(changes, version, policy=policy, new_tables=new_tables).steps)
        except UnrenderableChange as exc:  # a data migration kept as written: its SQL is Alembic's
            log.warning("helios: %s: not in the impact estimate (%s)", type(op).__name__, exc)
    return steps


def _tables(changes: Sequence[Change]) -> set[QualifiedName]:
    """Tables of operations kept as written: estimated as written, in the migration transaction."""
    return {ch.table for ch in changes if ch.table is not None}


HEADER_MARK = "helios impact estimate"


def impact_header(connection: Any, container: OpContainer, version: PgVersion,
                  settings: AutogenerateSettings, planning: Planning | None = None) -> CommentOp | None:
    """The impact estimate of the revision's steps as a comment block (``planning``: the run that
    made the plans, whose policy and live lookups the estimate uses).

    With a connection, facts are read for the tables involved (read-only catalog queries, a write
    sample of ``impact_write_sample_s`` seconds, default 0: none); throughput from the calibration
    cache (``impact_calibration = "cached"``, the default), measured (``"measure"``) or the
    documented default (``"default"``).  Without one: locks and work classes only.
    """

    steps = _steps_of(container, version, planning)
    if not steps:
        return None
    plan = Plan(steps=tuple(steps))
    facts = None
    throughput = None
    if connection is not None:
        sample = settings.impact_write_sample_s
        mode = settings.impact_calibration
        try:
            facts = collect_facts(connection, tables_of_plan(plan), write_sample_s=sample or None)
            if mode == "measure":
                throughput = calibration.calibrate(connection, server=facts.server)
            elif mode == "cached":
                throughput = calibration.cached_throughput(calibration.server_identity(facts.server))
        except Exception as exc:  # facts are a bonus: the header falls back to locks only
            log.warning("helios: impact facts not read (%s: %s); header shows locks only",
                        type(exc).__name__, exc)
            facts = None
    # The same live lookups the plan was made with: a catalog-only change is not shown as a rewrite.
    catalog = planning.catalog if planning is not None else None
    impact = estimate_plan(plan, facts, version, throughput=throughput, catalog=catalog)
    text = render_revision_header(impact, prefix="", width=HEADER_STEP_WIDTH)
    lines = [f"# -- {HEADER_MARK} (helios-migrate; see docs/impact.md) --"]
    lines += ["# " + line if line else "#" for line in text.rstrip("\n").split("\n")]
    cut = [s for s in impact.steps if len(s.description) > HEADER_STEP_WIDTH]
    if cut:
        lines.append("# steps in full:")
        for s in cut:
            lines += _wrapped(f"{s.number}  {s.description}", indent=" " * (len(str(s.number)) + 2))
    lines.append("# --")
    return CommentOp(lines)


HEADER_STEP_WIDTH = 44
"""Step names longer than this are cut in the impact table and listed in full below it."""


def _wrapped(text: str, *, indent: str) -> list[str]:
    """``# text`` wrapped at 96 columns, continuation lines indented by ``indent``."""
    out: list[str] = []
    line = "#"
    for word in text.split():
        if len(line) + 1 + len(word) > 96 and line != "#":
            out.append(line)
            line = "# " + indent[:-1]
        line += " " + word
    out.append(line)
    return out


def _with_header(
    context: Any, container: OpContainer, settings: AutogenerateSettings, planning: Planning | None
) -> None:
    if container.is_empty() or not settings.impact_header:
        return
    if any(isinstance(op, CommentOp) and op.lines and HEADER_MARK in op.lines[0] for op in container.ops):
        return
    header = impact_header(getattr(context, "connection", None), container, _version_of(context, planning),
                           settings, planning)
    if header is not None:
        container.ops.insert(0, header)


def finish_revisions(context: Any, revision: Any, directives: Sequence[Any]) -> None:
    """After planning (a ``process_revision_directives`` step): split the contract phase into a
    revision of its own when configured, and always when a plan's contract must wait for the new
    code (a rename); then put the impact header at the top of each upgrade.  ``context`` is the
    migration context of the run: its :class:`Planning`, when it planned, gives the settings."""

    planning = planning_of(context)
    settings = planning.config.autogenerate if planning is not None else autogenerate_settings()
    split = settings.split_contract or os.environ.get(SPLIT_VAR, "") == "1"
    for script in list(directives):
        if not isinstance(script, ops.MigrationScript) or getattr(script, "_helios_finished", False):
            continue
        script._helios_finished = True  # type: ignore[attr-defined]
        later = _split_contract(script) if split or _contract_after_deploy(script) else None
        for upgrade in script.upgrade_ops_list:
            _with_header(context, upgrade, settings, planning)
            declare_policy(upgrade)
        for downgrade in script.downgrade_ops_list:
            declare_policy(downgrade)
        guard_downgrades(script)
        if later is not None:
            later._helios_finished = True
            _with_header(context, later.upgrade_ops, settings, planning)
            declare_policy(later.upgrade_ops)
            declare_policy(later.downgrade_ops)
            directives.insert(directives.index(script) + 1, later)  # type: ignore[attr-defined]


def _contract_after_deploy(script: Any) -> bool:
    """Does a plan of ``script`` have a contract phase that must wait for the new code (a rename)?"""
    return any(
        isinstance(op, LockSafePlanOp) and op.contract_after_deploy
        and any(step.phase is Phase.CONTRACT for step in op.steps)
        for upgrade in script.upgrade_ops_list for op in _leaves(upgrade)
    )


def declare_policy(container: OpContainer) -> None:
    """Set the policy once for a whole ``upgrade()`` or ``downgrade()``: the timeouts and retries
    most of its steps use become ``policy = runtime.Policy(...)`` after the impact header, and each
    call passes ``policy=policy`` (naming only what differs)."""
    plans = [op for op in _leaves(container) if isinstance(op, LockSafePlanOp)]
    counts: dict[RetryPolicy, int] = {}
    for plan in plans:
        for step in plan.steps:
            if step.retry is not None and step.retry.statement_timeout_ms is not None:
                counts[step.retry] = counts.get(step.retry, 0) + 1
    if not counts or any(isinstance(op, PolicyOp) for op in container.ops):
        return
    policy = max(counts, key=lambda retry: counts[retry])
    for plan in plans:
        plan.policy = policy
    at = 1 if container.ops and isinstance(container.ops[0], CommentOp) and container.ops[0].lines \
        and HEADER_MARK in container.ops[0].lines[0] else 0
    container.ops.insert(at, PolicyOp(policy))


SPLIT_VAR = "HELIOS_SPLIT_CONTRACT"
"""``HELIOS_SPLIT_CONTRACT=1`` (or ``split_contract = true`` in ``[tool.helios-migrate.autogenerate]``)
moves the contract phase of an autogenerated revision into a second revision that follows it."""


def _split_contract(script: Any) -> Any:
    """Move every CONTRACT step of ``script`` into a new revision right after it; ``None`` when
    there is nothing to split (no contract step, or nothing else)."""

    upgrade = script.upgrade_ops_list[-1]
    moved: list[MigrateOperation] = []
    kept_any = False
    for parent, op in list(_parents(upgrade)):
        if not isinstance(op, LockSafePlanOp):
            kept_any = kept_any or not isinstance(op, CommentOp)
            continue
        contract = [s for s in op.steps if s.phase is Phase.CONTRACT]
        rest = [s for s in op.steps if s.phase is not Phase.CONTRACT]
        if not contract:
            kept_any = True
            continue
        moved.append(LockSafePlanOp(op.original, contract, title=f"{op.title} (contract phase)", notes=op.notes,
                                    replan=op.replan))
        if rest:
            kept_any = True
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(
                op.original, rest, title=f"{op.title} (expand phase)", notes=op.notes, replan=op.replan
            )
        else:
            parent.ops.remove(op)
    if not moved:
        return None
    if not kept_any:  # only contract steps: nothing to split from; put them back
        upgrade.ops.extend(moved)
        _drop_empty(upgrade)
        script.downgrade_ops = [reverse_ops(u) for u in script.upgrade_ops_list]
        return None
    _drop_empty(upgrade)
    later_id = rev_id()
    why = [
        f"# CONTRACT phase of revision {script.rev_id}, split into this revision:",
        "# these steps remove what the code running before that revision still uses. Upgrade to",
        f"# {script.rev_id} first, deploy code that no longer uses what is removed here, then upgrade",
        "# to this revision.",
    ]
    upgrade.ops.insert(0, CommentOp([
        f"# The CONTRACT phase of this change is in revision {later_id}: upgrade to it after the code",
        "# that no longer uses what it removes is deployed.",
    ]))
    script.downgrade_ops = [reverse_ops(u) for u in script.upgrade_ops_list]
    later_up = ops.UpgradeOps(ops=[CommentOp(why), *moved], upgrade_token=upgrade.upgrade_token)
    later_down = reverse_ops(later_up)
    later_down.downgrade_token = script.downgrade_ops_list[-1].downgrade_token
    later = ops.MigrationScript(
        rev_id=later_id,
        message=f"{script.message or 'change'} (contract phase)",
        upgrade_ops=later_up,
        downgrade_ops=later_down,
        head=script.rev_id,
        splice=False,
        branch_label=None,
        version_path=script.version_path,
        depends_on=None,
    )
    later._needs_render = True
    return later


def reverse_ops(container: Any) -> Any:
    """``container.reverse()``, except that an operation without an inverse (``op.execute``)
    becomes a downgrade step that refuses to run, naming it, instead of failing the revision."""

    def one(op: Any) -> Any:
        if isinstance(op, ops.ModifyTableOps):
            return ops.ModifyTableOps(op.table_name, [one(o) for o in reversed(op.ops)], schema=op.schema)
        try:
            return op.reverse()
        except NotImplementedError:
            what = type(op).__name__
            sql = getattr(op, "sqltext", None)
            if isinstance(sql, str):
                what = f"op.execute({sql[:80]!r})"
            step = Step(
                description=f"undo: {what}", phase=Phase.EXPAND, inverse=None, direction=Direction.DOWNGRADE,
                irreversible_reason="Alembic knows no inverse for it: write this part of the downgrade by hand",
            )
            return LockSafePlanOp(None, [step], title=f"undo: {what}", downgrade=True)

    return ops.DowngradeOps(ops=[one(op) for op in reversed(container.ops)],
                            downgrade_token=getattr(container, "upgrade_token", "upgrades").replace("upgrade", "downgrade"))


def _drop_empty(container: OpContainer) -> None:
    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            _drop_empty(op)
            if not op.ops:
                container.ops.remove(op)


def _install_finisher(autogen_context: AutogenContext) -> None:
    """Chain :func:`finish_revisions` after the ``process_revision_directives`` of env.py: Alembic
    reads it from the context's options after the comparators ran."""
    mc = getattr(autogen_context, "migration_context", None)
    opts = getattr(mc, "opts", None)
    if not isinstance(opts, dict):
        return
    existing = opts.get("process_revision_directives")
    if getattr(existing, "_helios_finisher", False):
        return

    def hook(context: Any, revision: Any, directives: Sequence[Any]) -> None:
        if existing is not None:
            existing(context, revision, directives)
        finish_revisions(context, revision, directives)

    hook._helios_finisher = True  # type: ignore[attr-defined]
    opts["process_revision_directives"] = hook


def plan_revision(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> PriorityDispatchResult:
    """The comparator: rewrite the risky operations Alembic generated into lock-safe plans (each
    logged as "planned lock-safe"), then report the locks of what is left as written."""
    register_renderer()
    dialect = autogen_context.dialect
    if dialect is not None and dialect.name == "postgresql" and os.environ.get(DISABLE_VAR, "1") != "0":
        plan_upgrade_ops(autogen_context, upgrade_ops)
        _install_finisher(autogen_context)
    report_locks(autogen_context, upgrade_ops)
    return PriorityDispatchResult.CONTINUE


def _render(autogen_context: AutogenContext, op: LockSafePlanOp) -> Any:
    return render_plan_op(autogen_context, op)


_registered = False


def register_renderer() -> None:
    """Register the renderers of the plugin's operations with Alembic (once; called from the
    comparator and from :mod:`alembic_plugin.env_hook`)."""
    global _registered
    if _registered:
        return
    renderers.dispatch_for(LockSafePlanOp)(_render)
    renderers.dispatch_for(CommentOp)(render_comment_op)
    renderers.dispatch_for(PolicyOp)(render_policy_op)
    renderers.dispatch_for(GuardsOp)(render_guards_op)
    renderers.dispatch_for(LockTimeoutOp)(render_lock_timeout_op)
    _registered = True
