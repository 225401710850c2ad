"""The autogenerate comparator that rewrites risky operations into lock-safe plans.

It runs on the ``"autogenerate"`` target at priority LAST, after Alembic's own comparators have
filled ``upgrade_ops`` and before Alembic derives the downgrade from each operation's
``reverse()``: replacing an operation here with a :class:`~alembic_plugin.ops.LockSafePlanOp`
gives a lock-safe downgrade for free.

The plan follows the server autogenerate compared against (its version, whether each table has
rows, which indexes exist), read with plain ``SELECT`` statements only.  Operations on tables
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

from helios_migrate.changes import (
    Change,
    CreateIndex,
    CreateTable,
    DropColumn,
    DropIndex,
    QualifiedName,
)
from helios_migrate.plan import Phase, Plan, TransactionMode
from helios_migrate.planner import LiveFacts, PlannerFacts, PlanPolicy, plan_changes
from helios_migrate.versions import PgVersion

from .changes_from_ops import changes_from_op
from .lock_report import server_version
from .ops import AS_WRITTEN, CommentOp, LockSafePlanOp

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import MigrateOperation, OpContainer, UpgradeOps
    from alembic.util import PriorityDispatchResult

    from helios_migrate.knowledge import SchemaLookup

log = logging.getLogger("alembic.helios")

DISABLE_VAR = "HELIOS_PLAN"
"""``HELIOS_PLAN=0`` leaves autogenerate's operations as Alembic wrote them (lock report only)."""


class _Planning:
    """What one autogenerate run plans with: version, live lookups, policy, new tables."""

    def __init__(
        self,
        version: PgVersion,
        catalog: SchemaLookup | None,
        facts: PlannerFacts | None,
        policy: PlanPolicy,
        new_tables: set[QualifiedName],
        new_indexes: list[CreateIndex],
    ) -> None:
        self.version = version
        self.catalog = catalog
        self.facts = facts
        self.policy = policy
        self.new_tables = new_tables
        self.new_indexes = new_indexes
        self.guards: dict[int, tuple[str, list[str]]] = {}
        """Drops that may be half of a rename, by ``id`` of the operation: (guard, comment)."""

    def plan(self, op: MigrateOperation, changes: list[Change]) -> Plan:
        recreate: dict[Change, list[Change]] = {}
        for change in changes:
            if isinstance(change, (DropIndex, DropColumn)):
                # Without a reverse (no _reverse kept), the drop stays irreversible.
                with contextlib.suppress(Exception):
                    recreate[change] = changes_from_op(op.reverse())
        return plan_changes(
            changes,
            self.version,
            catalog=self.catalog,
            facts=self.facts,
            policy=self.policy,
            recreate=recreate,
            new_tables=self.new_tables,
            new_indexes=self.new_indexes,
        )


_current: _Planning | None = None


def replan(op: MigrateOperation) -> LockSafePlanOp | None:
    """A plan for ``op`` with the settings of the autogenerate run in progress (used by
    ``reverse()`` of operations kept as written)."""
    if _current is None:
        return None
    return _plan_op(op, _current)


def _config() -> Any:
    from helios_migrate.config import Config, ConfigError, load_config

    try:
        return load_config()
    except ConfigError as exc:
        log.warning("helios: %s; planning with the default policy", exc)
        return Config()


def _policy() -> PlanPolicy:
    return PlanPolicy.from_config(_config())


def autogenerate_settings() -> Mapping[str, Any]:
    """``[tool.helios-migrate.autogenerate]`` as read (empty when absent)."""
    return getattr(_config(), "sections", {}).get("autogenerate", {})


def _lookups(autogen_context: AutogenContext) -> tuple[SchemaLookup | None, PlannerFacts | None]:
    conn = autogen_context.connection
    if conn is None:
        return None, None
    driver = getattr(getattr(conn, "connection", None), "driver_connection", None)
    try:
        import psycopg

        if isinstance(driver, psycopg.Connection):
            from helios_migrate.catalog import LiveCatalog

            return LiveCatalog(driver), LiveFacts(driver)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return None, None


def _leaves(container: OpContainer) -> Iterator[MigrateOperation]:
    from alembic.operations import ops

    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def _plan_op(op: MigrateOperation, planning: _Planning) -> LockSafePlanOp | None:
    if isinstance(op, (LockSafePlanOp, CommentOp)):
        return None  # planned already (a rename)
    try:
        changes = changes_from_op(op)
    except Exception as exc:  # an operation the change model cannot read stays as written
        log.warning("helios: %s left as written: %s", type(op).__name__, exc)
        return None
    if not changes or any(ch.table in planning.new_tables for ch in changes):
        return None
    plan = planning.plan(op, changes)
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
        s.transaction is TransactionMode.MIGRATION and s.irreversible_reason == AS_WRITTEN
        for s in plan.steps
    )
    if kept:
        return None
    title = "; ".join(f"{ch.kind.replace('_', ' ')} on {ch.table}" for ch in changes)
    return LockSafePlanOp(
        op, plan.steps, title=f"{title} -- lock-safe plan for PostgreSQL {planning.version}",
        notes=plan.notes,
    )


def _rewrite(container: OpContainer, planning: _Planning) -> None:
    from alembic.operations import ops

    new_ops: list[MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.OpContainer):
            _rewrite(op, planning)
            new_ops.append(op)
            continue
        planned = _plan_op(op, planning)
        new_ops.append(op if planned is None else planned)
        if planned is not None:
            log.warning("helios: rewritten into a lock-safe plan: %s", planned.title)
            for note in planned.notes:
                log.warning("helios: %s", note)
    container.ops = new_ops


def plan_upgrade_ops(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> None:
    """Replace every risky operation of ``upgrade_ops`` with its lock-safe plan, in place."""
    global _current
    version, _known = server_version(autogen_context)
    catalog, facts = _lookups(autogen_context)
    guards = plan_renames(upgrade_ops, version, facts, catalog)
    everything: list[Change] = []
    for op in _leaves(upgrade_ops):
        if isinstance(op, (LockSafePlanOp, CommentOp)):
            continue
        with contextlib.suppress(Exception):
            everything.extend(changes_from_op(op))
    new_tables = {ch.on for ch in everything if isinstance(ch, CreateTable)}
    new_indexes = [ch for ch in everything if isinstance(ch, CreateIndex)]
    planning = _Planning(version, catalog, facts, _policy(), new_tables, new_indexes)
    planning.guards = guards
    _current = planning
    _rewrite(upgrade_ops, planning)


# --- renames ------------------------------------------------------------------------------------


def _hint(info: Any) -> str | None:
    helios = (info or {}).get("helios") if isinstance(info, Mapping) else None
    value = helios.get("renamed_from") if isinstance(helios, Mapping) else None
    return str(value) if value else None


def _parents(container: OpContainer) -> Iterator[tuple[OpContainer, MigrateOperation]]:
    from alembic.operations import ops

    for op in list(container.ops):
        if isinstance(op, ops.OpContainer):
            yield from _parents(op)
        else:
            yield container, op


def _column_def(op: MigrateOperation) -> Any:
    from helios_migrate.changes import AddColumn

    for ch in changes_from_op(op):
        if isinstance(ch, AddColumn):
            return ch.column
    return None


def _configured_renames(settings: Mapping[str, Any]) -> dict[str, str]:
    raw = settings.get("renames", {})
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _llm_client() -> Any:
    """A client when ``[tool.helios-migrate.llm]`` (or the environment) configures one, else None."""
    try:
        from helios_migrate.llm import LlmClient, load_llm_config

        config = load_llm_config()
        if not getattr(config, "enabled", False):
            return None
        return LlmClient(config)
    except Exception as exc:
        log.warning("helios: LLM not used: %s", exc)
        return None


def plan_renames(
    upgrade_ops: OpContainer, version: PgVersion, facts: PlannerFacts | None, catalog: SchemaLookup | None
) -> dict[int, tuple[str, list[str]]]:
    """Turn confirmed renames (a ``renamed_from`` hint in the model's ``info``, or
    ``[tool.helios-migrate.autogenerate] renames``) into lock-safe rename plans, in place.

    A drop + add pair that only looks like a rename is never renamed on a guess: it is reported
    (with an LLM's judgement when one is configured), and its drop refuses to run until the user
    confirms.  Returns those guards by ``id`` of the drop operation.
    """
    from alembic.operations import ops

    from helios_migrate.changes import ColumnDef
    from helios_migrate.planner import plan_column_rename, plan_table_rename

    settings = autogenerate_settings()
    config = _config()
    strategy = getattr(config, "rename_strategy", "expand-contract")
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
            new_col = _column_def(op)
            old_col = None
            with contextlib.suppress(Exception):
                old_col = _column_def(drop_op.reverse())
            old_col = old_col or ColumnDef(old_name, new_col.type)
            plan = plan_column_rename(table, old_col, new_col, version, strategy=strategy,
                                      catalog=catalog, facts=facts, policy=policy)
            title = f"rename column {table}.{old_name} to {new_col.name} ({strategy})"
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(op, plan.steps, title=title, notes=plan.notes)
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
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(op, plan.steps, title=title, notes=plan.notes)
            found_table[0].ops.remove(found_table[1])
            # Indexes of the new table exist already: they came with the rename.
            for other_parent, other in pairs:
                if isinstance(other, ops.CreateIndexOp) and key(other.table_name, other.schema) == new_table:
                    with contextlib.suppress(ValueError):
                        other_parent.ops.remove(other)
            log.warning("helios: %s", title)
    for parent, op in pairs:
        if isinstance(parent, ops.ModifyTableOps) and not parent.ops:
            with contextlib.suppress(ValueError):
                upgrade_ops.ops.remove(parent)
    return _unconfirmed(pairs, drops, version)


def _unconfirmed(pairs: list[Any], drops: dict[Any, Any], version: PgVersion) -> dict[int, tuple[str, list[str]]]:
    from alembic.operations import ops

    from helios_migrate.changes import AddColumn, DropColumn
    from helios_migrate.llm.rename import judge_rename, rename_candidates

    changes: list[Change] = []
    old_types: dict[tuple[str, str], str] = {}
    for (table, column), (_parent, drop_op) in drops.items():
        changes.append(DropColumn(on=table, column=column))
        with contextlib.suppress(Exception):
            old = _column_def(drop_op.reverse())
            if old is not None:
                old_types[(table.name, column)] = old.type
    for _parent, op in pairs:
        if isinstance(op, ops.AddColumnOp):
            col = _column_def(op)
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


def _version_of(context: Any) -> PgVersion:
    if _current is not None:
        return _current.version
    info = getattr(getattr(context, "dialect", None), "server_version_info", None)
    if info:
        return PgVersion(int(info[0]), int(info[1]) if len(info) > 1 else 0)
    from helios_migrate.versions import default_version

    return default_version()


def _steps_of(container: OpContainer, version: PgVersion) -> list[Any]:
    """Every step the revision runs, in order: a plan's steps, or an operation kept as written."""
    steps: list[Any] = []
    for op in _leaves(container):
        if isinstance(op, LockSafePlanOp):
            steps.extend(op.steps)
            continue
        if isinstance(op, CommentOp):
            continue
        try:
            changes = changes_from_op(op)
        except Exception:
            continue
        if not changes:
            continue
        if _current is not None:
            steps.extend(plan_changes(changes, version, policy=_current.policy,
                                      new_tables=_current.new_tables | {ch.on for ch in changes}).steps)
        else:
            steps.extend(plan_changes(changes, version, new_tables={ch.on for ch in changes}).steps)
    return steps


HEADER_MARK = "helios impact estimate"


def impact_header(connection: Any, container: OpContainer, version: PgVersion,
                  settings: Mapping[str, Any]) -> CommentOp | None:
    """The impact estimate of the revision's steps as a comment block.

    With a connection, facts are read for the tables involved (read-only catalog queries, a write
    sample of ``impact_write_sample_s`` seconds, default 0: none); throughput from the calibration
    cache (``impact_calibration = "cached"``, the default), measured (``"measure"``) or the
    documented default (``"default"``).  Without one: locks and work classes only.
    """
    from helios_migrate.impact import estimate_plan, render_revision_header, tables_of_plan

    steps = _steps_of(container, version)
    if not steps:
        return None
    plan = Plan(steps=tuple(steps))
    facts = None
    throughput = None
    if connection is not None:
        from helios_migrate import calibration
        from helios_migrate.facts import collect_facts

        sample = float(settings.get("impact_write_sample_s", 0) or 0)
        mode = str(settings.get("impact_calibration", "cached"))
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
    impact = estimate_plan(plan, facts, version, throughput=throughput)
    text = render_revision_header(impact, prefix="")
    lines = [f"# -- {HEADER_MARK} (helios-migrate; see docs/impact.md) --"]
    lines += ["# " + line if line else "#" for line in text.rstrip("\n").split("\n")]
    lines.append("# --")
    return CommentOp(lines)


def _with_header(context: Any, container: OpContainer, settings: Mapping[str, Any]) -> None:
    if container.is_empty() or not settings.get("impact_header", True):
        return
    if any(isinstance(op, CommentOp) and op.lines and HEADER_MARK in op.lines[0] for op in container.ops):
        return
    header = impact_header(getattr(context, "connection", None), container, _version_of(context), settings)
    if header is not None:
        container.ops.insert(0, header)


def finish_revisions(context: Any, revision: Any, directives: Sequence[Any]) -> None:
    """After planning (a ``process_revision_directives`` step): split the contract phase into a
    revision of its own when configured, then put the impact header at the top of each upgrade."""
    from alembic.operations import ops

    settings = autogenerate_settings()
    split = bool(settings.get("split_contract", False)) or os.environ.get(SPLIT_VAR, "") == "1"
    for script in list(directives):
        if not isinstance(script, ops.MigrationScript) or getattr(script, "_helios_finished", False):
            continue
        script._helios_finished = True
        later = _split_contract(script) if split else None
        for upgrade in script.upgrade_ops_list:
            _with_header(context, upgrade, settings)
        if later is not None:
            later._helios_finished = True
            _with_header(context, later.upgrade_ops, settings)
            directives.insert(directives.index(script) + 1, later)  # type: ignore[attr-defined]


SPLIT_VAR = "HELIOS_SPLIT_CONTRACT"
"""``HELIOS_SPLIT_CONTRACT=1`` (or ``split_contract = true`` in ``[tool.helios-migrate.autogenerate]``)
moves the contract phase of an autogenerated revision into a second revision that follows it."""


def _split_contract(script: Any) -> Any:
    """Move every CONTRACT step of ``script`` into a new revision right after it; ``None`` when
    there is nothing to split (no contract step, or nothing else)."""
    from alembic.operations import ops
    from alembic.util import rev_id

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
        moved.append(LockSafePlanOp(op.original, contract, title=f"{op.title} (contract phase)", notes=op.notes))
        if rest:
            kept_any = True
            parent.ops[parent.ops.index(op)] = LockSafePlanOp(
                op.original, rest, title=f"{op.title} (expand phase)", notes=op.notes
            )
        else:
            parent.ops.remove(op)
    if not moved:
        return None
    if not kept_any:  # only contract steps: nothing to split from; put them back
        upgrade.ops.extend(moved)
        _drop_empty(upgrade)
        script.downgrade_ops = [u.reverse() for u in script.upgrade_ops_list]
        return None
    _drop_empty(upgrade)
    later_id = rev_id()
    why = [
        f"# CONTRACT phase of revision {script.rev_id}, split into this revision (split_contract):",
        "# these steps remove what the code running before that revision still uses. Upgrade to",
        f"# {script.rev_id} first, deploy code that no longer uses what is removed here, then upgrade",
        "# to this revision.",
    ]
    upgrade.ops.insert(0, CommentOp([
        f"# The CONTRACT phase of this change is in revision {later_id} (split_contract): run it after",
        "# the code that no longer uses what it removes is deployed.",
    ]))
    script.downgrade_ops = [u.reverse() for u in script.upgrade_ops_list]
    later_up = ops.UpgradeOps(ops=[CommentOp(why), *moved], upgrade_token=upgrade.upgrade_token)
    later_down = later_up.reverse()
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


def _drop_empty(container: OpContainer) -> None:
    from alembic.operations import ops

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
    """The comparator: report the locks of the operations Alembic generated (what a plain
    revision would take), then rewrite the risky ones into lock-safe plans."""
    import os

    from alembic.util import PriorityDispatchResult

    from .lock_report import report_locks

    register_renderer()
    report_locks(autogen_context, upgrade_ops)
    dialect = autogen_context.dialect
    if dialect is not None and dialect.name == "postgresql" and os.environ.get(DISABLE_VAR, "1") != "0":
        plan_upgrade_ops(autogen_context, upgrade_ops)
        _install_finisher(autogen_context)
    return PriorityDispatchResult.CONTINUE


def _render(autogen_context: AutogenContext, op: LockSafePlanOp) -> Any:
    from .ops import render_plan_op

    return render_plan_op(autogen_context, op)


_registered = False


def register_renderer() -> None:
    """Register the renderer of :class:`LockSafePlanOp` (once; Alembic's renderer registry is
    importable only after ``alembic.autogenerate`` finished importing, so this runs from the
    comparator and from :mod:`alembic_plugin.env_hook`)."""
    global _registered
    if _registered:
        return
    from alembic.autogenerate.render import renderers

    from .ops import render_comment_op

    renderers.dispatch_for(LockSafePlanOp)(_render)
    renderers.dispatch_for(CommentOp)(render_comment_op)
    _registered = True
