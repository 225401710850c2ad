"""The plan's own sync triggers: what keeps a column and its copy in step while both exist (the
expand phase of a type change, its way back, a column rename).  One recipe for the planner (its
steps hold these statements, so the rules judge them) and for ``runtime.sync_column_trigger``,
which revisions call instead of spelling plpgsql out."""

from __future__ import annotations

import re

import pglast
from pglast import ast, visitors
from pglast.stream import RawStream

from ..plan import SyncTrigger
from ..sqltext import dollar_quote, quote_ident, quote_qualified
from .sqlgen import sql_name


class _OnNewRow(visitors.Visitor):
    """Every column reference read from the row being written (``NEW.<column>``)."""

    def visit_ColumnRef(self, _ancestors: object, node: ast.ColumnRef) -> ast.ColumnRef | None:
        fields = node.fields or ()
        if not fields or not isinstance(fields[-1], ast.String) or len(fields) > 2:
            return None
        return ast.ColumnRef(fields=(ast.String(sval="new"), fields[-1]))


def row_expression(using: str, column: str) -> str:
    """A type change's ``USING`` expression as the sync trigger evaluates it, on ``NEW``.

    ``USING`` reads only the table's own row (PostgreSQL refuses subqueries there), so each column
    reference -- the changed column and any other -- becomes ``NEW.<column>``; the expression is
    parsed, so a type or a string that contains the column's name is left as it is.  Text that
    does not parse keeps its own wording with the column (as a whole identifier) read from ``NEW``,
    and the server reports the error when the trigger is created."""
    try:
        statements = pglast.parse_sql(f"SELECT ({using})")
    except pglast.parser.ParseError:
        statements = ()
    select = statements[0].stmt if len(statements) == 1 else None
    if isinstance(select, ast.SelectStmt) and select.targetList and len(select.targetList) == 1:
        target = select.targetList[0]
        _OnNewRow()(target)
        return str(RawStream()(target.val))
    quoted = quote_ident(column)
    return re.sub(rf'(?<![\w"$.]){re.escape(quoted)}(?![\w"$])', lambda _: f"NEW.{quoted}", using)


def _body(trigger: SyncTrigger) -> str:
    target, source = quote_ident(trigger.target), quote_ident(trigger.source)
    if trigger.expression is not None:
        return f"BEGIN NEW.{target} := {trigger.expression}; RETURN NEW; END"
    n, o = target, source
    return (
        "BEGIN "
        f"IF TG_OP = 'INSERT' THEN "
        f"IF NEW.{n} IS NULL THEN NEW.{n} := NEW.{o}; ELSIF NEW.{o} IS NULL THEN NEW.{o} := NEW.{n}; END IF; "
        f"ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} THEN NEW.{o} := NEW.{n}; "
        f"ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} THEN NEW.{n} := NEW.{o}; "
        # Neither written: fill whichever side the backfill has not reached yet (the new column
        # on upgrade, the re-created old one on downgrade).
        f"ELSIF NEW.{n} IS NULL THEN NEW.{n} := NEW.{o}; "
        f"ELSIF NEW.{o} IS NULL THEN NEW.{o} := NEW.{n}; END IF; RETURN NEW; END"
    )


def sync_trigger_statements(trigger: SyncTrigger) -> tuple[str, ...]:
    """The function and the ``BEFORE INSERT OR UPDATE`` row trigger, re-runnable."""
    fn = quote_qualified(trigger.table.schema, trigger.name)
    trig, table = quote_ident(trigger.name), sql_name(trigger.table)
    return (
        f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS " + dollar_quote(_body(trigger)),
        f"DROP TRIGGER IF EXISTS {trig} ON {table}",
        f"CREATE TRIGGER {trig} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}()",
    )


def drop_sync_trigger_statements(trigger: SyncTrigger) -> tuple[str, ...]:
    """The trigger and its function dropped, re-runnable."""
    fn = quote_qualified(trigger.table.schema, trigger.name)
    return (f"DROP TRIGGER IF EXISTS {quote_ident(trigger.name)} ON {sql_name(trigger.table)}",
            f"DROP FUNCTION IF EXISTS {fn}()")
