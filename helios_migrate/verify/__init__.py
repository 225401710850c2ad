"""``helios-migrate verify``: run revisions on a throwaway PostgreSQL and check what they really do.

A linter predicts; verify measures.  See ``docs/verify.md`` for the user documentation.

* :mod:`.runner` -- the scratch database, the Alembic project, the stairway per revision;
* :mod:`.trace` -- statement-level tracing: locks from ``pg_locks``, rewrites from ``relfilenode``;
* :mod:`.compare` -- prediction (the lock knowledge base) against observation;
* :mod:`.synth` -- synthetic rows; :mod:`.schema` -- normalised schema and data snapshots;
* :mod:`.load` -- ``--load``; :mod:`.report` -- text, JSON and Markdown.
"""

from __future__ import annotations

from .compare import Finding, Severity, compare_statement
from .runner import VerifyOptions, VerifyReport, VerifyUsageError, run_verify

__all__ = [
    "Finding",
    "Severity",
    "VerifyOptions",
    "VerifyReport",
    "VerifyUsageError",
    "compare_statement",
    "run_verify",
]
