"""JSON output: a stable, versioned document of findings and a summary.

Schema (``schema_version`` 1; fields are only ever added):

``{"schema_version": 1, "tool": {"name", "version"}, "pg_version", "pg_version_source",
"findings": [{"code", "rule", "severity", "message", "path", "line", "column", "end_line",
"end_column", "revision", "statement", "help", "doc_url"}], "revisions": [{"path", "revision",
"state", "detail", "statements_through_connection"}], "notes": [...], "summary": {"findings",
"error", "warning", "info", "revisions", "sql_files", "statements", "fail_on", "failed",
"revision_states": {"rendered", "rendered_with_placeholders", "read_from_source", "not_parsed"}}}``

``state`` says how each revision was read: ``rendered`` (offline SQL, as ``alembic upgrade
--sql``), ``rendered_with_placeholders`` (rendered with inert stand-ins for modules that are not
installed, or with an Alembic plugin's operations noted as unknown), ``read_from_source`` (its
``op.*`` calls read from the Python source; an HM904 finding says why) or ``not_parsed``.  JSON
always lists every finding, info included.
"""

from __future__ import annotations

import json
from typing import Any

from ... import __version__
from ...findings import Finding, Severity
from ..report import CheckReport

SCHEMA_VERSION = 1


def finding_to_json(f: Finding, doc_url: str | None = None) -> dict[str, Any]:
    return {
        "code": f.code,
        "rule": f.rule,
        "severity": str(f.severity),
        "message": f.message,
        "path": f.location.path,
        "line": f.location.line,
        "column": f.location.column,
        "end_line": f.location.end_line,
        "end_column": f.location.end_column,
        "revision": f.revision,
        "statement": f.statement,
        "help": f.help,
        "doc_url": doc_url or f.doc_url,
    }


def report_to_json(report: CheckReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "helios-migrate", "version": __version__},
        "pg_version": str(report.pg_version),
        "pg_version_source": report.pg_version_source,
        "findings": [
            finding_to_json(f, report.finding_url(f)) for f in report.findings
        ],
        "revisions": [
            {
                "path": r.path,
                "revision": r.revision,
                "state": r.state.value,
                "detail": r.detail,
                "statements_through_connection": r.statements_through_connection,
            }
            for r in report.revision_states
        ],
        "notes": list(report.notes),
        "summary": {
            "findings": len(report.findings),
            "error": report.count(Severity.ERROR),
            "warning": report.count(Severity.WARNING),
            "info": report.count(Severity.INFO),
            "revisions": report.revisions,
            "sql_files": report.sql_files,
            "statements": report.statements,
            "fail_on": str(report.fail_on),
            "failed": report.exit_code != 0,
            "revision_states": report.state_counts(),
        },
    }


def render_json(report: CheckReport) -> str:
    return json.dumps(report_to_json(report), indent=2) + "\n"
