"""SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

Each rule's documentation is written once, in ``tool.driver.rules`` (help text and page); a
result carries its message and refers to its rule by ``ruleId``/``ruleIndex``.  Only rules that
have results are listed, so a report is as large as what it found, not as the rule set.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ... import __version__
from ...findings import Finding, Severity
from ..report import CheckReport, RuleInfo

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://helios-migrate.dev"

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rules(report: CheckReport) -> list[RuleInfo]:
    """The rules that have results (a code the registry lacks described from its finding)."""
    by_code = {r.code: r for r in report.rules}
    used: dict[str, RuleInfo] = {}
    for f in report.findings:
        if f.code not in used:
            used[f.code] = by_code.get(f.code) or RuleInfo(
                f.code, f.rule, f.message.split(";")[0], f.help, f.severity
            )
    return sorted(used.values(), key=lambda r: r.code)


def _rule_to_sarif(rule: RuleInfo, report: CheckReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary or rule.name},
        "helpUri": report.doc_url(rule.code, rule.name, rule.url),
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
    }
    if rule.description:
        out["help"] = {"text": rule.summary or rule.name, "markdown": rule.description}
    return out


def _result(f: Finding, index: int) -> dict[str, Any]:
    text = f.message if not f.help else f"{f.message} Fix: {f.help.strip()}"
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": _uri(f.location.path), "uriBaseId": "%SRCROOT%"},
    }
    if f.location.line > 0:
        region: dict[str, Any] = {"startLine": f.location.line}
        if f.location.column > 0:
            region["startColumn"] = f.location.column
        if f.location.end_line >= f.location.line:
            region["endLine"] = f.location.end_line
            if f.location.end_column > 0:
                region["endColumn"] = f.location.end_column
        physical["region"] = region
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": index,
        "level": _LEVEL[f.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": physical}],
    }
    properties: dict[str, Any] = {"rule": f.rule, "severity": str(f.severity)}
    if f.revision:
        properties["revision"] = f.revision
    if f.statement:
        properties["statement"] = f.statement
    result["properties"] = properties
    return result


def _uri(path: str) -> str:
    return quote(path.replace("\\", "/"), safe="/:")


def report_to_sarif(report: CheckReport) -> dict[str, Any]:
    rules = _rules(report)
    index = {r.code: i for i, r in enumerate(rules)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "helios-migrate",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule_to_sarif(r, report) for r in rules],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The directory helios-migrate ran in."}}},
                "invocations": [{"executionSuccessful": True}],
                "results": [_result(f, index[f.code]) for f in report.findings],
                "properties": {
                    "pgVersion": str(report.pg_version),
                    "pgVersionSource": report.pg_version_source,
                },
            }
        ],
    }


def render_sarif(report: CheckReport) -> str:
    return json.dumps(report_to_sarif(report), indent=2) + "\n"
