"""The work of ``helios-migrate indexes``: read the workload and the schema, advise, render, write."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import psycopg
import typer

from .. import __version__
from ..db import DatabaseUnreachable, connect_read_only, first_line
from ..planner import plan_changes
from ..review.engine import SchemaFacts, render_fix
from ..review.revision import Fix, RevisionError, write_revision
from ..rule_context import format_bytes, format_count
from ..schema_catalog import read_schema
from ..versions import PgVersion
from . import copy_judge
from .candidates import ColumnStats, Suggestion, advise
from .command import IndexesFormat, IndexesUsageError, Judge
from .verify import MIN_SAVING, Verdict, hypopg_installed, verify
from .workload import WorkloadError, from_file, from_pg_stat_statements


def _no_table(reason: str) -> bool:
    """A statement not worth listing one by one in text: no table of the database, or not a query."""
    return reason.startswith("reads no table") or reason.endswith("no index advice")


VERIFIED = (
    "Verified with HypoPG: each suggestion's queries were planned (not run) without it and with it "
    "as a hypothetical index; kept when the planner uses it and its estimated cost drops by {saving} "
    "or more."
)

VERIFIED_ON_COPY = (
    "Verified on a throwaway copy of the schema and statistics ({where}): each suggestion's queries "
    "were planned (not run) without it and with it, built on the copy's empty tables sized as the "
    "real ones; kept when the planner uses it and its estimated cost drops by {saving} or more. "
    "Nothing was written to this database."
)

UNVERIFIED = (
    "Not verified: suggestions are ranked by the time of the queries each serves (calls x mean "
    "time), not by the planner's cost with and without the index. {hypopg}"
)


def run(
    database_url: str, queries_file: Path | None, limit: int, *,
    judge: Judge | None = None, scratch_url: str | None = None,
) -> dict[str, Any]:
    """The advice; ``judge`` None picks HypoPG when installed, else the copy when a throwaway
    server is available, else none."""


    try:
        conn = connect_read_only(database_url)
    except DatabaseUnreachable as exc:
        raise IndexesUsageError(str(exc)) from None
    try:
        try:
            workload = from_file(queries_file) if queries_file else from_pg_stat_statements(conn)
        except WorkloadError as exc:
            raise IndexesUsageError(str(exc)) from None
        schema = read_schema(conn, label=f"{conn.info.dbname}")
        stats = _column_stats(conn)
        writes = _writes(conn)
        hypopg = conn.execute(
            "SELECT installed_version IS NOT NULL FROM pg_available_extensions WHERE name = 'hypopg'"
        ).fetchone()
        advice = advise(workload, schema, stats)
        installed = hypopg_installed(conn)
        chosen = judge is not None
        if judge is None:
            judge = Judge.HYPOPG if installed else Judge.COPY if copy_judge.available(scratch_url) else Judge.NONE
        verdicts: dict[str, Verdict] | None = None
        where = ""
        copy_problem = ""
        if judge is Judge.HYPOPG:
            if not installed:
                raise IndexesUsageError(
                    "--judge hypopg: the hypopg extension is not installed in this database "
                    "(use --judge copy to judge on a throwaway copy of the schema and statistics)"
                )
            verdicts = verify(conn, advice.suggestions[: limit * 2])
        elif judge is Judge.COPY:
            try:
                verdicts, where = copy_judge.judge_on_copy(
                    conn, database_url, advice.suggestions[: limit * 2], stats, scratch_url=scratch_url
                )
            except copy_judge.CopyUnavailable as exc:
                if chosen:
                    raise IndexesUsageError(f"--judge copy: {exc}") from None
                copy_problem = f"The throwaway copy could not be used: {exc}."
    except psycopg.Error as exc:
        raise IndexesUsageError(f"reading the database failed: {first_line(exc)}") from None
    finally:
        conn.close()
    if verdicts is not None:
        kept = tuple(s for s in advice.suggestions if s.name in verdicts and _kept(s, verdicts[s.name]))
        rejected = tuple(s for s in advice.suggestions if s.name in verdicts and not _kept(s, verdicts[s.name]))
        advice = dataclasses.replace(advice, suggestions=kept)
    else:
        rejected = ()
    version = PgVersion.parse(schema.server_version_num or 0)
    window = None
    if schema.stats_since is not None and schema.observed_at is not None:
        window = (schema.observed_at - schema.stats_since).total_seconds()
    hypopg_note = (
        "HypoPG is available on this server: CREATE EXTENSION hypopg in this database lets indexes "
        "test each candidate with the planner, without building it." if hypopg else
        "HypoPG (hypothetical indexes) is not available on this server."
    )
    if verdicts is None:
        note = UNVERIFIED.format(hypopg=" ".join(x for x in (copy_problem, hypopg_note) if x))
    elif judge is Judge.COPY:
        note = VERIFIED_ON_COPY.format(where=where, saving=f"{MIN_SAVING:.0%}")
    else:
        note = VERIFIED.format(saving=f"{MIN_SAVING:.0%}")
    judged_by = {Judge.HYPOPG: "HypoPG", Judge.COPY: "copy"}.get(judge) if verdicts is not None else None
    return {
        "advice": advice, "schema": schema, "version": version, "stats": stats, "writes": writes,
        "window": window, "source": str(queries_file) if queries_file else "pg_stat_statements",
        "workload": workload, "limit": limit, "note": note, "verdicts": verdicts, "rejected": rejected,
        "judged_by": judged_by, "judged_where": where,
    }


def _kept(suggestion: Suggestion, verdict: Verdict) -> bool:
    """Kept by the planner, or covering and not judged: when the planner chose no index-only scan
    on the hypothetical index (it plans one only where VACUUM has marked most of the table's pages
    all-visible), an index whose point is one is kept, unverified, rather than rejected for the
    heap fetches it exists to avoid."""
    return verdict.kept or _unjudged(suggestion, verdict)


def _unjudged(suggestion: Suggestion, verdict: Verdict) -> bool:
    return bool(suggestion.include) and verdict.index_only == 0 and not verdict.kept


def _column_stats(conn: Any) -> dict[tuple[str, str], ColumnStats]:
    rows = conn.execute(
        "SELECT schemaname || '.' || tablename, attname, n_distinct, avg_width, null_frac, "
        "       most_common_vals::text::text[], most_common_freqs FROM pg_stats "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND NOT inherited"
    ).fetchall()
    return {
        (table, column): ColumnStats(
            float(n or 0), int(width or 0), float(null or 0),
            tuple(zip(values or (), (float(f) for f in freqs or ()), strict=False)),
        )
        for table, column, n, width, null, values, freqs in rows
    }


def _writes(conn: Any) -> dict[str, int]:
    rows = conn.execute(
        "SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
    ).fetchall()
    return {table: int(n or 0) for table, n in rows}


def _estimated_size(report: dict[str, Any], suggestion: Any) -> int | None:
    """A B-tree's size from the rows and the columns' average widths (8-byte tuple header,
    alignment to 8, 4-byte line pointer, pages 90% full)."""
    rows = suggestion.table.row_estimate
    stats = report["stats"]
    found = [stats.get((str(suggestion.table.name), c)) for c in (*map(_column_of, suggestion.columns),
                                                                    *suggestion.include)]
    widths: list[int] = [st.avg_width for st in found if st is not None and st.avg_width is not None]
    if not rows or len(widths) < len(found):
        return None
    if suggestion.where is not None:
        if suggestion.fraction is None:
            return None
        rows = int(rows * suggestion.fraction)
    tuple_bytes = 8 + -(-sum(widths) // 8) * 8 + 4
    return int(rows * tuple_bytes / 0.9)


def _column_of(element: str) -> str:
    """The column an element reads: itself, or the argument of ``lower(col)``."""
    return element.split("(", 1)[1].rstrip(")").strip('"') if "(" in element else element


def _model_line(suggestion: Suggestion) -> str:
    """The ``sa.Index(...)`` of the suggestion, as it goes into the models."""
    parts = [f'"{suggestion.name}"']
    parts += [f'"{c}"' if suggestion.table.column(c) is not None else f'sa.text("{c}")' for c in suggestion.columns]
    if suggestion.include:
        parts.append("postgresql_include=[" + ", ".join(f'"{c}"' for c in suggestion.include) + "]")
    if suggestion.where is not None:
        parts.append(f"postgresql_where=sa.text({suggestion.where!r})")
    return "sa.Index(" + ", ".join(parts) + ")"


def _fix_text(report: dict[str, Any], suggestion: Any, *, as_sql: bool = False) -> str:

    plan = plan_changes([suggestion.change()], report["version"], facts=SchemaFacts(report["schema"]))
    return render_fix(plan, as_sql=as_sql)


def _per_second(report: dict[str, Any], suggestion: Any) -> float | None:
    window = report["window"]
    writes = report["writes"].get(str(suggestion.table.name))
    return writes / window if window and writes is not None else None


def _entry(report: dict[str, Any], suggestion: Any) -> dict[str, Any]:
    plan_sql = _fix_text(report, suggestion, as_sql=True)
    return {
        "table": str(suggestion.table.name),
        "columns": list(suggestion.columns),
        "include": list(suggestion.include),
        "where": suggestion.where,
        "rows_fraction": None if suggestion.where is None or suggestion.fraction is None else round(suggestion.fraction, 4),
        "name": suggestion.name,
        "create_index": next(
            line.rstrip(";") for line in plan_sql.splitlines() if line.startswith("CREATE INDEX")
        ),
        "queries": [
            {"query": q.text, "calls": q.calls, "total_ms": round(q.total_ms, 3), "source": q.source}
            for q in suggestion.queries
        ],
        "calls": suggestion.calls,
        "total_ms": round(suggestion.weight_ms, 3),
        "table_rows": suggestion.table.row_estimate,
        "estimated_bytes": _estimated_size(report, suggestion),
        "writes_per_second": _per_second(report, suggestion),
        "replaces": [ix.name for ix in suggestion.replaces],
        "model": _model_line(suggestion),
        "plan": plan_sql,
        **_verdict_fields(report, suggestion),
    }


def _verdict_fields(report: dict[str, Any], suggestion: Any) -> dict[str, Any]:
    verdict = (report["verdicts"] or {}).get(suggestion.name)
    if verdict is None:
        return {"verified": False}
    return {
        "verified": not _unjudged(suggestion, verdict),
        "planner_cost_before": round(verdict.cost_before, 2),
        "planner_cost_after": round(verdict.cost_after, 2),
        "queries_using_it": verdict.used_by,
        "queries_planned": verdict.explained,
        "index_only_scans": verdict.index_only,
        # an INCLUDE list the planner never used for an index-only scan is not verified
        "include_verified": bool(suggestion.include) and verdict.index_only > 0,
    }


def _shape(columns: Any, include: Any = (), where: Any = None) -> str:
    """``(a, b) INCLUDE (c) WHERE p``: an index's key, covering columns and predicate."""
    text = f"({', '.join(columns)})"
    if include:
        text += f" INCLUDE ({', '.join(include)})"
    return text + (f" WHERE {where}" if where else "")


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [_entry(report, s) for s in report["advice"].suggestions[: report["limit"]]]


def render_text(report: dict[str, Any]) -> str:

    entries = _entries(report)
    out = [f"Index advice for {report['schema'].label} from {report['source']} "
           f"({len(report['workload'])} queries read), PostgreSQL {report['version']}.", ""]
    for number, e in enumerate(entries, 1):
        time = f", {e['total_ms'] / 1000:.1f} s total" if e["total_ms"] else ""
        out.append(f"{number}. {e['table']} {_shape(e['columns'], e['include'], e['where'])}: serves {len(e['queries'])} "
                   f"query(ies), {format_count(e['calls'])} call(s){time}")
        facts = [f"~{format_count(e['table_rows'])} rows" if e["table_rows"] else None,
                 f"index ~{format_bytes(e['estimated_bytes'])}" if e["estimated_bytes"] else None,
                 f"{e['writes_per_second']:.1f} writes/s to maintain it (over {_span(report['window'])})"
                 if e["writes_per_second"] is not None else None,
                 f"partial: ~{e['rows_fraction']:.1%} of the rows" if e["rows_fraction"] is not None else None]
        out.append("   " + ", ".join(f for f in facts if f))
        if "planner_cost_before" in e and not e["verified"]:
            out.append(f"   not verified: the planner chose no index-only scan on it, and without one it would "
                       f"{'not use it' if not e['queries_using_it'] else 'save too little'} (estimated cost "
                       f"{e['planner_cost_before']:,.0f} -> {e['planner_cost_after']:,.0f}); kept for the "
                       f"index-only scan INCLUDE ({', '.join(e['include'])}) allows -- check it with EXPLAIN once built")
        if e["verified"]:
            out.append(f"   {'on ' if report.get('judged_by') == 'copy' else ''}{_judge_label(report)}: the planner uses it for {e['queries_using_it']} of {e['queries_planned']} "
                       f"query(ies); estimated cost {e['planner_cost_before']:,.0f} -> "
                       f"{e['planner_cost_after']:,.0f} (calls x cost)")
            if e["include"] and not e["include_verified"]:
                out.append(f"   INCLUDE ({', '.join(e['include'])}) not verified: the planner chose no index-only "
                           "scan on the hypothetical index (it plans one only where VACUUM has marked most of the "
                           "table all-visible); the key is verified")
        elif e["include"]:
            out.append(f"   INCLUDE ({', '.join(e['include'])}): its queries read only these columns beyond the key, "
                       "so an index-only scan skips the heap (needs a vacuumed table)")
        if e["replaces"]:
            out.append(f"   makes redundant: {', '.join(e['replaces'])} (drop it once this exists)")
        for q in e["queries"][:5]:
            text = " ".join(q["query"].split())
            out.append(f"   - {text[:110]}{'...' if len(text) > 110 else ''}  [{q['source']}]")
        out += [f"   {line}" for line in e["plan"].splitlines()]
        out.append(f"   In the models: {e['model']} (or the next autogenerate drops it)")
        out.append("")
    advice = report["advice"]
    if not entries:
        out += ["No index to suggest.", ""]
    for rejected in report["rejected"]:
        verdict = report["verdicts"][rejected.name]
        why = "the planner would not use it" if not verdict.used_by else f"saves only {verdict.saving:.0%}"
        out.append(f"rejected {'on' if report.get('judged_by') == 'copy' else 'by'} {_judge_label(report)}: "
                   f"{rejected.table.name} "
                   f"{_shape(rejected.columns, rejected.include, rejected.where)}: {why}")
    if advice.served:
        out.append(f"{len(advice.served)} query(ies) already served by an existing index.")
    about_tables = [s for s in advice.skipped if not _no_table(s.reason)]
    if len(about_tables) < len(advice.skipped):
        out.append(f"{len(advice.skipped) - len(about_tables)} statement(s) read no table of this database "
                   "(catalog queries, utility statements).")
    for skipped in about_tables[:10]:
        text = " ".join(skipped.query.text.split())[:80]
        out.append(f"not advised: {text} -- {skipped.reason}")
    out += ["", report["note"], ""]
    return "\n".join(out)


def _judge_label(report: dict[str, Any]) -> str:
    if report.get("judged_by") == "copy":
        return f"the throwaway copy ({report['judged_where']})"
    return "HypoPG"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "the statistics window"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"the last {seconds / size:.0f} {unit}"
    return f"the last {seconds:.0f} seconds"


def render_sql(report: dict[str, Any]) -> str:
    return "".join(f"{e['create_index']};\n" for e in _entries(report))


def render_json(report: dict[str, Any]) -> str:

    advice = report["advice"]
    doc = {
        "schema_version": 1,
        "tool": {"name": "helios-migrate", "version": __version__},
        "command": "indexes",
        "database": report["schema"].label,
        "pg_version": str(report["version"]),
        "source": report["source"],
        "verified": report["verdicts"] is not None,
        "judged_by": report["judged_by"],
        "note": report["note"],
        "rejected": [
            {"table": str(r.table.name), "columns": list(r.columns), "include": list(r.include), "where": r.where,
             "queries_using_it": report["verdicts"][r.name].used_by,
             "saving": round(report["verdicts"][r.name].saving, 3)}
            for r in report["rejected"]
        ],
        "suggestions": _entries(report),
        "served": [{"query": q.text, "index": name} for q, name in advice.served],
        "not_advised": [{"query": s.query.text, "reason": s.reason} for s in advice.skipped],
    }
    return json.dumps(doc, indent=2) + "\n"


RENDERERS = {IndexesFormat.TEXT: render_text, IndexesFormat.SQL: render_sql, IndexesFormat.JSON: render_json}


def write(report: dict[str, Any], database_url: str, alembic_ini: Path, message: str) -> None:

    suggestions = report["advice"].suggestions[: report["limit"]]
    if not suggestions:
        raise IndexesUsageError("--write-revision: no index to suggest: nothing written")
    if not alembic_ini.is_file():
        raise IndexesUsageError(f"--write-revision: no Alembic project: {alembic_ini} not found (give --alembic-ini)")
    fixes = [Fix(f"{s.table.name} ({', '.join(s.columns)})", (s.change(),)) for s in suggestions]
    try:
        written = write_revision(fixes, database_url=database_url, alembic_ini=alembic_ini.resolve(), message=message)
    except RevisionError as exc:
        raise IndexesUsageError(f"--write-revision: {exc}") from None
    typer.echo(
        f"Wrote {written.path} (revision {written.revision}, down_revision {written.down_revision}): "
        f"{len(written.written)} index(es). Add them to the models too (each suggestion shows the line), "
        "or the next autogenerate drops them.",
        err=True,
    )
