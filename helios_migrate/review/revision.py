"""``review --write-revision``: the chosen fixes as an Alembic revision, planned and rendered by the
helios Alembic plugin exactly as ``alembic revision --autogenerate`` would.

Each fix is a list of changes of the change model; here they become Alembic's own operations
(``CreateIndexOp``, ``DropIndexOp`` with the index it re-creates, ``AlterColumnOp``), and Alembic's
plugin machinery runs the ``helios`` plugin's autogenerate comparators on them -- found by its
plugin name, as Alembic finds it from ``autogenerate_plugins`` in env.py, never imported here.  The
plugin rewrites them into lock-safe plans against the live database (version, sizes, partitions),
puts its impact header, policy and acknowledgements on the revision, and Alembic renders the file
into the project's versions directory with ``down_revision`` = the current head.  ``env.py`` is not
run, and the database is only read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..changes import Change, CreateIndex, DropIndex, Reindex, SetNotNull
from ..config import ReviewIgnore
from ..db import DatabaseUnreachable, connect_read_only
from ..planner import index_name
from ..sqltext import index_element_name, quote_ident
from .engine import ReviewFinding

PLUGIN = "helios"
"""The Alembic plugin name of the adapter (``autogenerate_plugins=[..., "helios"]``)."""

_SELECTOR = re.compile(r"^HM\d{1,3}$")


class RevisionError(Exception):
    """The revision cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class Fix:
    """Changes to write into a revision: a review finding's fix, or a suggested index."""

    label: str
    """What it fixes, for messages (``public.orders.customer_id HM603``)."""
    changes: tuple[Change, ...]
    recreate: tuple[Change, ...] = ()
    """For a fix that drops something: what re-creates it (the downgrade)."""

    @classmethod
    def of(cls, rf: ReviewFinding) -> Fix:
        return cls(f"{rf.finding.location.path} {rf.finding.code}", rf.changes, rf.recreate)


@dataclass(frozen=True)
class WrittenRevision:
    path: Path
    revision: str
    down_revision: str | None
    written: tuple[Fix, ...]
    skipped: tuple[tuple[Fix, str], ...]
    """Chosen fixes that cannot go into a revision, and why."""


def parse_selector(text: str) -> ReviewIgnore:
    """``HM603``, ``HM6``, ``HM603:orders`` or ``HM603:orders.customer_id`` (the form of
    ``[tool.helios-migrate.review] ignore``)."""
    code, _, target = text.strip().partition(":")
    if not _SELECTOR.match(code.upper()):
        raise RevisionError(f"--fix {text!r}: expected a code (HM603), a prefix (HM6) or code:table[.column]")
    return ReviewIgnore(code.upper(), target or None)


def chosen(findings: Iterable[ReviewFinding], selectors: Sequence[ReviewIgnore]) -> list[ReviewFinding]:
    """The findings with a fix that ``selectors`` pick (all of them without selectors)."""
    return [
        rf for rf in findings
        if rf.changes and (not selectors or any(s.covers(rf.finding.code, rf.table, rf.column) for s in selectors))
    ]


# --- changes -> Alembic operations ----------------------------------------------------------------


def _index_columns(change: CreateIndex) -> list[Any]:
    import sqlalchemy as sa  # lazy: only to write a revision

    out: list[Any] = []
    for element in change.columns:
        name = index_element_name(element)
        plain = name is not None and element.strip() in (name, quote_ident(name))
        out.append(name if plain else sa.text(element))
    return out


def _create_index_op(change: CreateIndex, name: str) -> Any:
    import sqlalchemy as sa  # lazy: only to write a revision
    from alembic.operations import ops  # lazy: only to write a revision

    kw: dict[str, Any] = {}
    if change.where:
        kw["postgresql_where"] = sa.text(change.where)
    if change.include:
        kw["postgresql_include"] = list(change.include)
    if change.method != "btree":
        kw["postgresql_using"] = change.method
    return ops.CreateIndexOp(
        name, change.on.name, _index_columns(change), schema=change.on.schema, unique=change.unique, **kw
    )


def _index_name(change: CreateIndex) -> str:
    if change.name:
        return change.name
    names = [index_element_name(e) or "expr" for e in change.columns]
    return index_name(change.on, names)


def alembic_operations(rf: Fix) -> list[Any]:
    """The Alembic operations that make the fix ``rf``; raises :class:`RevisionError` for a change
    kind a revision of fixes does not write."""
    from alembic.operations import ops  # lazy: only to write a revision

    out: list[Any] = []
    recreate = [ch for ch in rf.recreate if isinstance(ch, CreateIndex)]
    for change in rf.changes:
        if isinstance(change, CreateIndex):
            out.append(_create_index_op(change, _index_name(change)))
        elif isinstance(change, DropIndex):
            table = change.on
            if table is None:
                raise RevisionError(f"DROP INDEX {change.index} names no table")
            again = next((ch for ch in recreate if ch.name == change.index.name), None)
            if again is None:  # an invalid index dropped and built again: the rebuild is its undo
                again = next(
                    (ch for ch in rf.changes if isinstance(ch, CreateIndex) and ch.name == change.index.name), None
                )
            reverse = _create_index_op(again, change.index.name) if again is not None else None
            out.append(ops.DropIndexOp(
                change.index.name, table_name=table.name, schema=change.index.schema or table.schema,
                _reverse=reverse,
            ))
        elif isinstance(change, SetNotNull):
            out.append(ops.AlterColumnOp(
                change.on.name, change.column, schema=change.on.schema, modify_nullable=False,
                existing_nullable=True,
            ))
        elif isinstance(change, Reindex):
            # A one-off repair of bloat: it changes no schema, so it has no place in the history.
            raise RevisionError(
                "REINDEX is not written into a revision (a one-off repair that changes no schema): "
                "run the statement the finding prints, outside a transaction"
            )
        else:
            raise RevisionError(f"{change.kind.replace('_', ' ')} is not written by --write-revision")
    return out


# --- the revision -----------------------------------------------------------------------------


def write_revision(
    findings: Sequence[Fix], *, database_url: str, alembic_ini: Path, message: str,
    before: Sequence[Any] = (), after: Sequence[Any] = (),
) -> WrittenRevision:
    """Write one revision holding the fixes ``findings`` into the project of ``alembic_ini``;
    ``before`` and ``after``: Alembic operations to put before and after them (planned the same way)."""
    from alembic.config import Config  # lazy: only to write a revision
    from alembic.script import ScriptDirectory  # lazy: only to write a revision
    from alembic.util import CommandError  # lazy: only to write a revision

    operations: list[Any] = []
    written: list[Fix] = []
    skipped: list[tuple[Fix, str]] = []
    for rf in findings:
        try:
            ops_ = alembic_operations(rf)
        except RevisionError as exc:
            skipped.append((rf, str(exc)))
            continue
        operations += ops_
        written.append(rf)
    operations = [*before, *operations, *after]
    if not operations:
        reasons = "".join(f"\n  {rf.label}: {why}" for rf, why in skipped)
        raise RevisionError(f"no chosen finding has a fix a revision can hold: nothing written{reasons}")
    cfg = Config(str(alembic_ini))
    try:
        script = ScriptDirectory.from_config(cfg)
        heads = script.get_heads()
    except CommandError as exc:
        raise RevisionError(f"{alembic_ini}: {exc}") from None
    if len(heads) > 1:
        raise RevisionError(
            f"{alembic_ini}: the project has {len(heads)} heads ({', '.join(heads)}): merge them first "
            "(alembic merge heads)"
        )
    head = heads[0] if heads else None
    path, rev_id = _render(cfg, script, operations, database_url, message)
    return WrittenRevision(path, rev_id, head, tuple(written), tuple(skipped))


def _render(cfg: Any, script: Any, operations: list[Any], database_url: str, message: str) -> tuple[Path, str]:
    import sqlalchemy as sa  # lazy: only to write a revision
    from alembic.autogenerate import render  # lazy: only to write a revision
    from alembic.autogenerate.api import AutogenContext  # lazy: only to write a revision
    from alembic.operations import ops  # lazy: only to write a revision
    from alembic.runtime.migration import MigrationContext  # lazy: only to write a revision
    from alembic.util import CommandError, rev_id  # lazy: only to write a revision
    from sqlalchemy.pool import NullPool  # lazy: only to write a revision

    def connect() -> Any:
        return connect_read_only(database_url)

    try:
        engine = sa.create_engine("postgresql+psycopg://", creator=connect, poolclass=NullPool)
        connection = engine.connect()
    except (DatabaseUnreachable, sa.exc.OperationalError) as exc:
        raise RevisionError(str(getattr(exc, "orig", None) or exc)) from None
    try:
        metadata = sa.MetaData()
        context = MigrationContext.configure(
            connection, opts={
                "autogenerate_plugins": [PLUGIN], "target_metadata": metadata,
                # as env.py's context.configure() sets them, for operations Alembic renders itself
                "alembic_module_prefix": "op.", "sqlalchemy_module_prefix": "sa.", "user_module_prefix": None,
            }
        )
        try:
            autogen = AutogenContext(context, metadata=metadata)
        except CommandError as exc:
            raise RevisionError(f"the {PLUGIN} Alembic plugin is not installed: {exc}") from None
        upgrade = ops.UpgradeOps(ops=operations)
        autogen.comparators.dispatch("autogenerate", qualifier="postgresql")(autogen, upgrade)
        new_id = rev_id()
        migration = ops.MigrationScript(
            rev_id=new_id, upgrade_ops=upgrade, downgrade_ops=upgrade.reverse(), message=message, head="head",
        )
        directives: list[Any] = [migration]
        finish = context.opts.get("process_revision_directives")
        if finish is not None:  # the plugin's finisher: impact header, policy, downgrade guards
            finish(context, (new_id,), directives)
        if len(directives) != 1:
            raise RevisionError("the fixes would need a contract revision of their own: write them one by one")
        template_args: dict[str, Any] = {"config": cfg}
        render._render_python_into_templatevars(autogen, migration, template_args)
    finally:
        connection.close()
        engine.dispose()
    written = script.generate_revision(new_id, message, head="head", refresh=True, **template_args)
    return Path(written.path), new_id
