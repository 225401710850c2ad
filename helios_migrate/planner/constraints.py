"""Constraints without a long lock: CHECK and FOREIGN KEY as NOT VALID + VALIDATE (with an index
on a new foreign key's columns), UNIQUE and PRIMARY KEY adopting an index built concurrently; the
one-step forms partitioned tables force, with the lock stated."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from .. import changes as c
from ..changes import ConstraintKind, QualifiedName
from ..codes import RuleCode
from ..plan import Acknowledgement, Step, acknowledge
from ..sqltext import index_element_name, quote_ident
from .columns import not_null_steps
from .context import PlanningContext, plans
from .facts import ColumnDetails
from .indexes import create_index_step, index_steps, partitions_of
from .sqlgen import constraint_body, constraint_exists, constraint_name, index_name, sql_name


@plans(c.AddConstraint)
def _add_constraint(ch: c.AddConstraint, ctx: PlanningContext) -> list[Step]:
    k = ch.constraint
    name = constraint_name(ch.on, k)
    t, qn = sql_name(ch.on), quote_ident(name)
    drop = f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}"
    undone = acknowledge(RuleCode.DROP_FOREIGN_KEY_OR_UNIQUE, reason=f"undo: drops {name}, which this revision added") \
        if k.kind in (ConstraintKind.FOREIGN_KEY, ConstraintKind.UNIQUE) else ()
    partitioned = bool(partitions_of(ch.on, ctx))
    plain_reason = ""
    if partitioned and k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        plain_reason = (
            "a UNIQUE or PRIMARY KEY constraint cannot adopt an index built concurrently on a "
            "partitioned table (USING INDEX is refused there)"
        )
    elif partitioned and k.kind is ConstraintKind.FOREIGN_KEY and ctx.version.major < 18:
        plain_reason = f"PostgreSQL {ctx.version} cannot add a NOT VALID foreign key to a partitioned table (18 can)"
    if plain_reason:
        ctx.notes.append(
            f"{ch.on}.{name}: added in one step because {plain_reason}: it checks every row while "
            "it holds a lock that blocks writes (SHARE ROW EXCLUSIVE for a foreign key, SHARE for a "
            "unique index build); run it when the table is quiet"
        )
        support = _fk_index(ch, ctx) if k.kind is ConstraintKind.FOREIGN_KEY and ctx.policy.index_on_fk else []
        return [*support, ctx.own(
            f"{k.kind.value} {name} on the partitioned table {ch.on}",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(dataclasses.replace(k, name=name))}"],
            inverse=[drop], done_when=constraint_exists(ch.on, name), scan=True, inverse_acknowledged=undone,
            reason=f"in one step: {plain_reason}",
        )]
    if k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY) and k.using_index:
        return _adopt_index(ch, name, k.using_index, ctx, undone)
    if k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        ix = c.CreateIndex(
            on=ch.on, name=name, columns=tuple(quote_ident(x) for x in k.columns), unique=True,
            concurrently=True,
        )
        kind = "PRIMARY KEY" if k.kind is ConstraintKind.PRIMARY_KEY else "UNIQUE"
        return [
            create_index_step(ix, name, ctx, reason=f"the {kind} constraint adopts this index next, "
                               "so its build does not hold a lock that blocks writes"),
            *(_key_not_null(ch, name, k.columns, ctx) if k.kind is ConstraintKind.PRIMARY_KEY else ()),
            ctx.own(
                f"{kind} constraint {name} on {ch.on} using the index",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {kind} USING INDEX {qn}"
                 + (" DEFERRABLE" if k.deferrable else "")],
                inverse=[drop],
                inverse_acknowledged=undone,
                done_when=constraint_exists(ch.on, name),
                reason="USING INDEX adopts the built index: ACCESS EXCLUSIVE for a moment only",
            ),
        ]
    if k.kind in (ConstraintKind.FOREIGN_KEY, ConstraintKind.CHECK) and not k.not_valid and k.enforced:
        steps: list[Step] = []
        if k.kind is ConstraintKind.FOREIGN_KEY and ctx.policy.index_on_fk:
            steps.extend(_fk_index(ch, ctx))
        body = constraint_body(dataclasses.replace(k, name=name))
        steps += [
            ctx.own(
                f"{k.kind.value} {name} on {ch.on}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {body} NOT VALID"],
                inverse=[drop],
                inverse_acknowledged=undone,
                done_when=constraint_exists(ch.on, name),
                reason="NOT VALID skips the check of existing rows, so the lock is held for a moment"
                + (" (on both tables)" if k.kind is ConstraintKind.FOREIGN_KEY else ""),
            ),
            ctx.own(
                f"validate {name} on {ch.on}",
                [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
                scan=True,
                reason="in its own transaction: VALIDATE takes SHARE UPDATE EXCLUSIVE, reads and writes go on",
                on_failure=(drop,),
                on_failure_description=f"dropped the NOT VALID constraint {name} (existing rows violate it)",
            ),
        ]
        return steps
    step = ctx.own(
        f"{k.kind.value} {name} on {ch.on}",
        [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(k)}" + (" NOT VALID" if k.not_valid else "")],
        inverse=[drop],
        done_when=constraint_exists(ch.on, name),
    )
    return [step]


def _adopt_index(
    ch: c.AddConstraint, name: str, index: str, ctx: PlanningContext, undone: tuple[Acknowledgement, ...]
) -> list[Step]:
    """A UNIQUE or PRIMARY KEY constraint adopting an index that exists (built concurrently
    beforehand): a moment of ACCESS EXCLUSIVE -- after the key's columns were made NOT NULL
    without a long lock, since a PRIMARY KEY would otherwise check them under that lock."""
    k = ch.constraint
    kind = "PRIMARY KEY" if k.kind is ConstraintKind.PRIMARY_KEY else "UNIQUE"
    t, qn = sql_name(ch.on), quote_ident(name)
    steps: list[Step] = []
    if k.kind is ConstraintKind.PRIMARY_KEY:
        columns = _index_columns(ch.on, index, ctx)
        if columns is None:
            ctx.notes.append(
                f"{ch.on}.{name}: the columns of the index {index} are not known here; a PRIMARY KEY makes "
                "them NOT NULL, checking every row under ACCESS EXCLUSIVE when one is nullable: make them "
                "NOT NULL first (a lock-safe SET NOT NULL)"
            )
        else:
            steps += _key_not_null(ch, name, columns, ctx)
    steps.append(ctx.own(
        f"{kind} constraint {name} on {ch.on} using the index {index}",
        [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(dataclasses.replace(k, name=name))}"],
        inverse=[f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}"],
        inverse_acknowledged=undone,
        done_when=constraint_exists(ch.on, name),
        reason=f"USING INDEX adopts {index} (renamed {name}): ACCESS EXCLUSIVE for a moment only; "
        "the undo drops the constraint and the index with it",
    ))
    return steps


def _index_columns(table: QualifiedName, index: str, ctx: PlanningContext) -> tuple[str, ...] | None:
    """The key columns of ``index``: built earlier in this revision, or read from the facts."""
    for ix in ctx.new_indexes:
        if ix.on == table and ix.name == index:
            named = tuple(index_element_name(x) for x in ix.columns)
            return None if any(n is None for n in named) else tuple(str(n) for n in named)
    return ctx.facts.index_columns(QualifiedName(index, table.schema)) if ctx.facts is not None else None


def _key_not_null(ch: c.AddConstraint, name: str, columns: Sequence[str], ctx: PlanningContext) -> list[Step]:
    """NOT NULL, without a long lock, on each column of a new primary key known to be nullable."""
    steps: list[Step] = []
    for column in columns:
        details = ctx.facts.column_details(ch.on, column) if ctx.facts is not None else ColumnDetails()
        if details.known and not details.not_null:
            steps += not_null_steps(
                ch.on, column, ctx, f"the primary key {name} makes {column} NOT NULL, which alone would "
                "check every row under ACCESS EXCLUSIVE",
            )
    return steps


def _fk_index(ch: c.AddConstraint, ctx: PlanningContext) -> list[Step]:
    cols = ch.constraint.columns
    for ix in ctx.new_indexes:
        named = tuple(index_element_name(x) for x in ix.columns[: len(cols)])
        if ix.on == ch.on and named == tuple(cols):
            return []
    if ctx.facts is not None and ctx.facts.covering_index(ch.on, cols) is not None:
        return []
    name = index_name(ch.on, cols)
    ctx.notes.append(
        f"{ch.on}: index {name} supports the new foreign key (deletes and updates on the referenced "
        "table would otherwise scan it); autogenerate keeps it while the models declare no index on "
        f"({', '.join(cols)}); to declare it, keep its name:\n{_model_index_code(name, cols)}"
    )
    ix = c.CreateIndex(on=ch.on, name=name, columns=tuple(quote_ident(x) for x in cols), concurrently=True)
    return index_steps(ix, name, ctx, reason="no index covers the foreign key's columns")


def _model_index_code(name: str, columns: Sequence[str]) -> str:
    """The SQLAlchemy model line that declares index ``name`` on ``columns``."""
    return "sa.Index(" + ", ".join(json.dumps(x) for x in (name, *columns)) + ")"
