"""JSON output: a stable, versioned document of findings and a summary.

Schema (``schema_version`` 1; fields are only ever added):

``{"schema_version": 1, "tool": {"name", "version"}, "pg_version", "pg_version_source",
"findings": [{"code", "rule", "severity", "message", "path", "line", "column", "end_line",
"end_column", "revision", "statement", "help", "doc_url"}], "summary": {"findings", "error",
"warning", "info", "revisions", "sql_files", "statements", "fail_on", "failed"}}``
"""

from __future__ import annotations

import json
from typing import Any

from ... import __version__
from ...findings import Finding, Severity
from ..report import CheckReport

SCHEMA_VERSION = 1


def finding_to_json(f: Finding) -> dict[str, Any]:
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
        "doc_url": f.doc_url,
    }


def report_to_json(report: CheckReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "helios-migrate", "version": __version__},
        "pg_version": str(report.pg_version),
        "pg_version_source": report.pg_version_source,
        "findings": [finding_to_json(f) for f in report.findings],
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
        },
    }


def render_json(report: CheckReport) -> str:
    return json.dumps(report_to_json(report), indent=2) + "\n"
