"""The plan's own sync triggers: what keeps a column and its copy in step while both exist (the
expand phase of a type change, its way back, a column rename).  One recipe for the planner (its
steps hold these statements, so the rules judge them) and for ``runtime.sync_column_trigger``,
which revisions call instead of spelling plpgsql out."""

from __future__ import annotations

from ..plan import SyncTrigger
from ..sqltext import dollar_quote, quote_ident, quote_qualified
from .sqlgen import sql_name


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
