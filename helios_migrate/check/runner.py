"""One ``check`` run: inputs -> offline SQL per revision -> rule engine -> a report."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast

from ..codes import RuleCode
from ..findings import Finding, Location, Severity
from ..versions import PgVersion, VersionError, default_version
from . import engine, parallel
from .cache import FindingCache, code_fingerprint
from .fallback import mentions_get_bind, read_from_source
from .history import (
    HistoryStatement,
    edited_revisions,
    enum_values_without_position,
    foreign_keys_without_index,
    multiple_heads,
    write_sum,
)
from .inputs import ProjectTarget, collect
from .live import LiveFacts, connect
from .offline_schema import HistorySchema
from .problems import (
    REVISION_NOT_RENDERED,
    CheckUsageError,
    revision_not_rendered,
    revision_syntax_error,
)
from .project import RevisionFile, add_prepend_sys_path
from .render import EmittedStatement, Rendered, RevisionRenderer, function_span
from .report import REPOSITORY_DOCS_URL, CheckReport, RenderState, RevisionState, sort_key

_MARKERS = {"BEGIN;", "COMMIT;"}


@dataclass(frozen=True)
class CheckOptions:
    paths: tuple[str, ...] = ()
    revision_range: str | None = None
    since: str | None = None
    downgrade: bool = False
    pg_version: str | None = None
    database_url: str | None = None
    fail_on: str | None = None
    cwd: Path | None = None
    show_info: bool = False
    quiet: bool = False
    docs_base_url: str | None = None
    cache: bool = False
    """Read and write .helios-cache/ (the command line turns it on unless --no-cache)."""
    write_sum: bool = False
    """Record every revision's hash in helios.sum after checking (``--write-sum``)."""
    jobs: int | None = None
    """Processes that check a project's revisions: ``None`` for :func:`.parallel.available_cores`,
    1 for this process alone.  Always 1 with ``database_url`` (its connection is not shared)."""


@dataclass
class _Run:
    config: Any
    version: PgVersion
    catalog: Any
    facts: Any
    cwd: Path
    sources: dict[str, str]
    findings: list[Finding]
    statements: int = 0
    states: list[RevisionState] = field(default_factory=list)
    cache: FindingCache | None = None
    salt: str = ""
    history: list[HistoryStatement] = field(default_factory=list)
    """The upgrade() statements of the project being checked, in upgrade order."""
    jobs: int = 1
    """Processes that check a project's revisions (see :mod:`.parallel`)."""

    def display(self, path: Path) -> str:
        """Paths relative to where check runs, with forward slashes, as CI tools expect."""
        try:
            return path.relative_to(self.cwd).as_posix()
        except ValueError:
            rel = os.path.relpath(path, self.cwd)
            return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()


def run_check(options: CheckOptions) -> CheckReport:
    """Run ``check``; :class:`CheckUsageError` for problems that mean exit code 2."""
    cwd = (options.cwd or Path.cwd()).resolve()
    if options.revision_range is not None and not options.revision_range.strip():
        raise CheckUsageError("--range needs a value such as base:head or REV1:REV2")
    fail_on_text = options.fail_on
    targets = collect(
        options.paths, cwd=cwd, revision_range=options.revision_range, since=options.since,
        cache=options.cache and not options.database_url,
    )
    if not any(t.revisions for t in targets.projects) and not targets.sql_files and not options.since:
        raise CheckUsageError(
            "nothing to check: the paths given hold no revision and no .sql file"
            + (f" ({'; '.join(targets.notes)})" if targets.notes else "")
        )
    config_start = targets.projects[0].project.root if targets.projects else cwd
    config = engine.read_config(config_start)
    if fail_on_text is not None:
        try:
            fail_on = Severity.parse(fail_on_text)
        except ValueError as exc:
            raise CheckUsageError(f"--fail-on: {exc}") from None
    else:
        fail_on = engine.config_fail_on(config)

    with _facts(options.database_url) as live:
        version, version_source = _version(options.pg_version, config, live)
        run = _Run(
            config=config,
            version=version,
            catalog=live.catalog if live else None,
            facts=engine.table_facts(live.tables) if live else None,
            cwd=cwd,
            sources={},
            findings=[],
            jobs=1 if live is not None else (options.jobs or parallel.available_cores()),
        )
        if options.cache and live is None:
            run.salt = "|".join(
                (code_fingerprint(tuple(r.module for r in engine.registered_rules())), repr(config),
                 str(version), str(options.downgrade))
            )
        revisions = 0
        for target in targets.projects:
            revisions += len(target.revisions)
            _check_project(run, target, downgrade=options.downgrade)
        for sql_file in targets.sql_files:
            _check_sql_file(run, sql_file)
        if options.write_sum:
            for target in targets.projects:
                if not target.project.standalone:
                    targets.notes.append(f"wrote {write_sum(target.project)}")

    findings = tuple(sorted(run.findings, key=sort_key))
    return CheckReport(
        revision_states=tuple(run.states),
        notes=tuple(targets.notes),
        show_info=options.show_info,
        quiet=options.quiet,
        docs_base_url=_docs_base_url(options.docs_base_url),
        findings=findings,
        pg_version=version,
        pg_version_source=version_source,
        fail_on=fail_on,
        revisions=revisions,
        sql_files=len(targets.sql_files),
        statements=run.statements,
        sources=run.sources,
        rules=engine.rule_infos(),
    )


@contextlib.contextmanager
def _facts(database_url: str | None) -> Iterator[LiveFacts | None]:
    if not database_url:
        yield None
        return
    with connect(database_url) as live:
        yield live


def _docs_base_url(given: str | None) -> str:
    """``--docs-url``, else ``HELIOS_DOCS_URL``, else the repository's ``docs/rules/``."""
    value = given if given is not None else os.environ.get("HELIOS_DOCS_URL", "")
    return value.strip() or REPOSITORY_DOCS_URL


def _version(pg_version: str | None, config: Any, live: LiveFacts | None) -> tuple[PgVersion, str]:
    if live is not None:
        return live.version, "read from the database"
    if pg_version is not None:
        try:
            version = PgVersion.parse(pg_version)
        except VersionError as exc:
            raise CheckUsageError(f"--pg-version: {exc}") from None
        if not version.supported:
            raise CheckUsageError(f"--pg-version: PostgreSQL {version} is not supported (13 to 18 are)")
        return version, "--pg-version"
    configured = engine.config_pg_version(config)
    if configured is not None:
        return configured, "pg_version in pyproject.toml"
    return default_version(), "assumed; pass --pg-version or --database-url"


# -- revisions -----------------------------------------------------------------------------------


def _check_project(run: _Run, target: ProjectTarget, *, downgrade: bool) -> None:
    run.history = []
    _check_revisions(run, target, downgrade=downgrade)
    project = target.project
    display = {rev.path: run.display(rev.path) for rev in target.revisions}
    found = foreign_keys_without_index(run.history, run.catalog)
    found += enum_values_without_position(run.history)
    if not project.standalone:
        found += multiple_heads(project, target.revisions, display)
        found += edited_revisions(project, target.revisions, display)
    by_path = {display[rev.path]: rev for rev in target.revisions}
    for finding in found:
        configured = engine.configure_finding(run.config, finding)
        rev = by_path.get(finding.location.path)
        if configured is None or rev is None or _suppressed(configured, rev, run):
            continue
        run.findings.append(configured)


def _suppressed(finding: Finding, rev: RevisionFile, run: _Run) -> bool:
    line = finding.location.line
    return any(
        s.covers(finding.code) and (s.file_level or (line and s.applies_to_lines(line, line)))
        for s in engine.python_suppressions(rev.source, finding.location.path, None)
    )


def _check_revisions(run: _Run, target: ProjectTarget, *, downgrade: bool) -> None:
    add_prepend_sys_path(target.project)
    run.cache = FindingCache(target.project.root if not target.project.standalone else run.cwd, run.salt) if run.salt else None
    pending = []
    cached: dict[str, list[HistoryStatement]] = {}
    for rev in target.revisions:
        history_before = len(run.history)
        if not _from_cache(run, rev):
            pending.append(rev)
        else:
            cached[run.display(rev.path)] = run.history[history_before:]
    if not pending:
        return
    functions = ("upgrade", "downgrade") if downgrade else ("upgrade",)
    waiting = {rev.path for rev in pending}
    with RevisionRenderer(target.project) as renderer:
        # sa.inspect(op.get_bind()) answers from what the revisions before built, in upgrade order,
        # when every revision before the ones checked is checked too (not with --since/--range).
        schema = HistorySchema()
        checked_ids = {rev.revision for rev in target.revisions}
        if all(down in checked_ids for rev in target.revisions for down in rev.down_revisions):
            renderer.history_schema = schema

        def compute(rev: RevisionFile) -> _RevisionResult:
            return _check_revision(run, rev, renderer, functions)

        workers = parallel.start(pending, run.jobs, compute)
        try:
            for rev in target.revisions:
                path = run.display(rev.path)
                if rev.path not in waiting:
                    schema.add(h.sql for h in cached.get(path, ()))
                    continue
                result = workers.result(rev.path)
                if result is None or result.needs_history:  # not a worker's, or it needs the order
                    result = compute(rev)
                _add(run, path, rev.source, result)
                schema.add(h.sql for h in result.history)
                if run.cache is not None:
                    run.cache.put(
                        run.cache.key(path, rev.source), result.findings, result.state,
                        result.statements, result.history,
                    )
        finally:
            workers.close()
    # Cached revisions were replayed first: put the history back in upgrade order.
    order = {run.display(rev.path): i for i, rev in enumerate(target.revisions)}
    run.history.sort(key=lambda h: order.get(h.location.path, 0))


def _from_cache(run: _Run, rev: RevisionFile) -> bool:
    if run.cache is None:
        return False
    path = run.display(rev.path)
    hit = run.cache.get(run.cache.key(path, rev.source))
    if hit is None:
        return False
    _add(run, path, rev.source, _RevisionResult(*hit))
    return True


def _add(run: _Run, path: str, source: str, result: _RevisionResult) -> None:
    run.sources[path] = source
    run.findings += result.findings
    run.states.append(result.state)
    run.statements += result.statements
    run.history += result.history


@dataclass(frozen=True)
class _RevisionResult:
    """What checking one revision adds to the run (the same fields as a cache entry)."""

    findings: list[Finding]
    state: RevisionState
    statements: int
    history: list[HistoryStatement]
    needs_history: bool = False
    """Its rendering asked for the schema the revisions before it built (``sa.inspect``)."""


def _check_revision(
    run: _Run, rev: RevisionFile, renderer: RevisionRenderer, functions: Sequence[str]
) -> _RevisionResult:
    path = run.display(rev.path)
    if rev.syntax_error is not None or rev.tree is None:
        state = RevisionState(path, rev.revision, RenderState.NOT_PARSED, "not valid Python")
        err = rev.syntax_error or SyntaxError("cannot parse")
        location = Location(path, err.lineno or 0, err.offset or 0)
        finding = engine.configure_finding(
            run.config, revision_syntax_error(location, rev.revision, err)
        )
        return _RevisionResult([finding] if finding is not None else [], state, 0, [])
    renderer.history_consulted = False
    per_function: list[tuple[tuple[int, int] | None, list[Finding]]] = []
    outcomes: list[_Outcome] = []
    history: list[HistoryStatement] = []
    count = 0
    for function in functions:
        span = function_span(rev.tree, function)
        statements, problem, outcome = _statements_of(rev, function, renderer, path)
        outcomes.append(outcome)
        if function == "upgrade":
            history += [HistoryStatement(s.sql, s.location, s.revision) for s in statements]
        count += count_statements(statements)
        suppressions = engine.python_suppressions(rev.source, path, span)
        found = engine.lint_statements(
            path,
            statements,
            suppressions,
            config=run.config,
            version=run.version,
            catalog=run.catalog,
            facts=run.facts,
        )
        if problem is not None:
            configured = engine.configure_finding(run.config, problem)
            if configured is not None:
                found.append(configured)
        per_function.append((span, found))
    worst = max(outcomes, key=lambda o: _STATE_ORDER.index(o.state))
    state = RevisionState(
        path, rev.revision, worst.state, worst.detail, sum(o.through_connection for o in outcomes)
    )
    return _RevisionResult(
        _merge_functions(per_function), state, count, history, renderer.history_consulted
    )


@dataclass(frozen=True)
class _Outcome:
    state: RenderState
    detail: str = ""
    through_connection: int = 0


_STATE_ORDER = (RenderState.RENDERED, RenderState.RENDERED_WITH_PLACEHOLDERS, RenderState.READ_FROM_SOURCE)


def _merge_functions(
    per_function: list[tuple[tuple[int, int] | None, list[Finding]]],
) -> list[Finding]:
    """Findings of upgrade() and, with --downgrade, downgrade().

    An ignore comment inside a function belongs to that function's run; one outside both (a
    file-level ignore) is reported unused only when neither function used it, and only once.
    """
    if len(per_function) == 1:
        return per_function[0][1]
    unused_sets = [
        {(f.location, f.message) for f in found if f.code == RuleCode.UNUSED_SUPPRESSION}
        for _, found in per_function
    ]
    unused_everywhere = set.intersection(*unused_sets)
    merged: list[Finding] = []
    reported: set[tuple[Location, str]] = set()
    not_rendered: set[Location] = set()
    for span, found in per_function:
        for f in found:
            if f.code == REVISION_NOT_RENDERED[0]:
                # An import failure stops both functions at the same line: say it once.
                if f.location in not_rendered:
                    continue
                not_rendered.add(f.location)
            if f.code == RuleCode.UNUSED_SUPPRESSION:
                inside = span is not None and span[0] - 1 <= f.location.line <= span[1]
                key = (f.location, f.message)
                if not inside and (key not in unused_everywhere or key in reported):
                    continue
                reported.add(key)
            merged.append(f)
    return merged


def _statements_of(
    rev: RevisionFile, function: str, renderer: RevisionRenderer, path: str
) -> tuple[list[Any], Finding | None, _Outcome]:
    rendered = renderer.render(rev, function)
    problem: Finding | None = None
    emitted: Sequence[EmittedStatement] = rendered.statements
    if rendered.failure is None and rendered.truth_tests:
        # A guard on something the application would answer: check the other path too, as the
        # statements after the first path's COMMIT (each path is its own transaction).
        other = renderer.render(rev, function, truth=True)
        if other.failure is None:
            emitted = [*rendered.statements, *other.statements]
        rendered = dataclasses.replace(rendered, truth_tests=rendered.truth_tests)
    outcome = _rendered_outcome(rendered)
    if rendered.unknown_operations:
        problem = unknown_operations(path, rev.revision, rendered)
    if rendered.failure is not None:
        failure = rendered.failure
        reason = failure.reason
        if mentions_get_bind(rev) and "get_bind" not in reason:
            reason += "; it also calls op.get_bind(), which needs a database"
        fallback = read_from_source(rev, function, renderer)
        emitted = fallback.statements
        if fallback.skipped_lines:
            lines = ", ".join(str(n) for n in fallback.skipped_lines[:10])
            reason += f"; op.* calls not read on line(s) {lines}"
        line = failure.line or (function_span(rev.tree, function) or (0, 0))[0] if rev.tree else 0
        problem = revision_not_rendered(Location(path, line, 1 if line else 0), rev.revision, reason)
        outcome = _Outcome(RenderState.READ_FROM_SOURCE, reason)
    statements = [
        engine.SourceStatement(
            s.sql,
            Location(path, s.line, s.column, s.end_line, s.end_column),
            rev.revision,
            s.column_types,
            s.index_tables,
            s.created_tables,
        )
        for s in emitted
    ]
    return statements, problem, outcome


def _rendered_outcome(rendered: Rendered) -> _Outcome:
    through = sum(1 for s in rendered.statements if s.through_connection)
    parts = []
    if rendered.as_online:
        parts.append(
            "rendered as online: offline, it raised after asking context.is_offline_mode(); what it runs "
            "through op.get_bind() is checked, rows it reads are taken as none"
        )
    if rendered.placeholders:
        names = ", ".join(rendered.placeholders[:5]) + (" ..." if len(rendered.placeholders) > 5 else "")
        parts.append(f"placeholders for modules that are not installed: {names}")
    plugin_ops = sorted({u.shown for u in rendered.unknown_operations if not u.described})
    if plugin_ops:
        parts.append(f"operations of Alembic plugins that are not installed, not checked: {', '.join(plugin_ops)}")
    helpers = list(dict.fromkeys(u.shown for u in rendered.unknown_operations if u.described))
    if helpers:
        shown = ", ".join(helpers[:3]) + (" ..." if len(helpers) > 3 else "")
        parts.append(f"not checked (unknown offline): {shown}")
    if rendered.truth_tests:
        parts.append("rendered with both answers of " + ", ".join(rendered.truth_tests[:3]))
    if rendered.inspected:
        asked = ", ".join(rendered.inspected[:3]) + (" ..." if len(rendered.inspected) > 3 else "")
        parts.append(f"database inspection ({asked}) answered from the schema the earlier revisions built")
    if through:
        parts.append(f"{through} statement(s) run through op.get_bind()")
    assumed = rendered.placeholders or rendered.unknown_operations or rendered.inspected or rendered.as_online
    state = RenderState.RENDERED_WITH_PLACEHOLDERS if assumed else RenderState.RENDERED
    return _Outcome(state, "; ".join(parts), through)


def unknown_operations(path: str, revision: str | None, rendered: Rendered) -> Finding:
    """One HM904 for what a rendered revision ran that could not be checked: operations of
    Alembic plugins, helpers and loops of modules that are not installed."""
    unknown = list(dict.fromkeys(rendered.unknown_operations))
    first = unknown[0]
    listed = ", ".join(f"{u.shown} (line {u.line})" for u in unknown[:5]) + (
        f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    )
    plugins = all(not u.described for u in unknown)
    what = (
        "operations of an Alembic plugin that is not installed" if plugins
        else "unknown offline (a helper of a module that is not installed, a loop over the "
        "application's data that ran zero times, rows read as none)"
    )
    code, rule = REVISION_NOT_RENDERED
    return Finding(
        code=code,
        rule=rule,
        severity=Severity.WARNING,
        message=(
            f"revision {revision or '?'} runs {listed}: {what}, so what they run was not checked "
            "(the rest of the revision was)"
        ),
        location=Location(path, first.line, 1 if first.line else 0),
        help="Install the plugin or the application where check runs (check renders what it can "
        "import), or review these lines by hand.",
        revision=revision,
    )


# -- SQL files -----------------------------------------------------------------------------------


def _check_sql_file(run: _Run, file: Path) -> None:
    path = run.display(file)
    try:
        sql = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckUsageError(f"{path}: cannot read: {exc}") from None
    run.sources[path] = sql
    run.statements += _sql_statement_count(sql)
    statement = engine.SourceStatement(sql, Location(path, 1, 1))
    found = engine.lint_statements(
        path,
        [statement],
        engine.sql_suppressions(sql),
        config=run.config,
        version=run.version,
        catalog=run.catalog,
        facts=run.facts,
    )
    run.findings += found


def _sql_statement_count(sql: str) -> int:
    try:
        return sum(1 for s in pglast.split(sql) if s.strip().upper().rstrip(";") not in ("BEGIN", "COMMIT"))
    except Exception:
        return 0


def count_statements(statements: Sequence[Any]) -> int:
    return sum(1 for s in statements if s.sql.strip() and s.sql.strip() not in _MARKERS)

