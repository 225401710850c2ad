"""Problems ``check`` reports about its own inputs: usage errors (exit 2) and tool findings."""

from __future__ import annotations

from ..codes import RuleCode
from ..findings import Finding, Location, Severity


class CheckUsageError(Exception):
    """Bad arguments, configuration or environment: one clear message, exit code 2."""


REVISION_NOT_RENDERED = (RuleCode.REVISION_NOT_RENDERED, RuleCode.REVISION_NOT_RENDERED.rule_name)
"""A revision could not be rendered to SQL offline and was checked from its Python source."""

REVISION_NOT_PARSED = (RuleCode.SYNTAX_ERROR, RuleCode.SYNTAX_ERROR.rule_name)
"""A revision file is not valid Python (or a SQL file is not valid SQL)."""


def revision_not_rendered(location: Location, revision: str | None, reason: str) -> Finding:
    code, rule = REVISION_NOT_RENDERED
    return Finding(
        code=code,
        rule=rule,
        severity=Severity.WARNING,
        message=(
            f"revision {revision or '?'} could not be rendered to SQL offline ({reason}); "
            "its op.* calls were checked from the source instead, which can miss statements"
        ),
        location=location,
        help=(
            "Make upgrade() renderable with `alembic upgrade --sql`: avoid op.get_bind() and "
            "database reads in schema revisions (move data changes to their own revision), and "
            "make every import resolvable from the project root."
        ),
        revision=revision,
    )


def revision_syntax_error(location: Location, revision: str | None, error: SyntaxError) -> Finding:
    code, rule = REVISION_NOT_PARSED
    return Finding(
        code=code,
        rule=rule,
        severity=Severity.ERROR,
        message=f"revision file is not valid Python: {error.msg}",
        location=location,
        help="Fix the syntax error; Alembic cannot load this revision either.",
        revision=revision,
    )
