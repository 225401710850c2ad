"""``helios-migrate review``: critique a schema, from the models or from a live database."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ..findings import Severity
from ..versions import PgVersion, VersionError, default_version
from .env_models import (
    EnvModelsError,
    ModelsReferenceError,
    find_env_py,
    load_metadata,
    models_of_env,
)
from .output_format import ReviewFormat


class ReviewUsageError(Exception):
    """A problem the user can fix (what to review, configuration, connection); exit code 2."""


def review_command(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="HELIOS_DATABASE_URL",
            help="Review this live database (read-only catalog queries; SQLAlchemy URLs accepted).",
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Review the models instead: module:attribute of the project's MetaData (target_metadata) "
            "or declarative base, e.g. app.models:Base.metadata (default: models in "
            "[tool.helios-migrate.review]).",
        ),
    ] = None,
    pg_version: Annotated[
        str | None,
        typer.Option("--pg-version", help="PostgreSQL version the fixes are planned for when reviewing models (13-18)."),
    ] = None,
    output_format: Annotated[ReviewFormat, typer.Option("--format", help="Output format.")] = ReviewFormat.TEXT,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit with code 1 when a finding is at or above this severity: error, warning or info "
            "(default: fail_on in pyproject.toml, else error).",
        ),
    ] = None,
    show_info: Annotated[bool, typer.Option("--show-info", help="List info findings in text and Markdown too.")] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="pyproject.toml to read (default: found from the current directory).")
    ] = None,
    write_revision: Annotated[
        bool,
        typer.Option(
            "--write-revision",
            help="Write the fixes --fix names, of a live review (--database-url), as one Alembic "
            "revision in the project of --alembic-ini (default ./alembic.ini), planned by the helios "
            "plugin as autogenerate plans it.",
        ),
    ] = False,
    fix: Annotated[
        list[str] | None,
        typer.Option(
            "--fix",
            help="With --write-revision (required there): the findings whose fixes to write, as HM603, "
            "HM6, HM603:orders or HM603:orders.customer_id (repeatable). Nothing is written unasked: "
            "some fixes drop indexes.",
        ),
    ] = None,
    message: Annotated[
        str, typer.Option("--message", "-m", help="With --write-revision: the revision's message.")
    ] = "helios review fixes",
    no_sample: Annotated[
        bool,
        typer.Option(
            "--no-sample",
            help="Live review: read no column values (HM615 then judges text columns by their names, as on "
            "the models). By default a bounded, read-only sample of each text column is read.",
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Add a plain-English paragraph per finding written by the configured LLM "
            "([tool.helios-migrate.llm]); it is shown as text and changes no finding. Without an LLM, "
            "or when its answer fails, the report is printed without it (a note says why).",
        ),
    ] = False,
    llm_log: Annotated[
        Path | None,
        typer.Option("--llm-log", help="With --explain: append every LLM request and answer to this file (JSON lines)."),
    ] = None,
    alembic_ini: Annotated[
        Path | None,
        typer.Option(
            "--alembic-ini",
            help="The Alembic project whose env.py names the models (target_metadata) when neither "
            "--models nor models in [tool.helios-migrate.review] is given (default: ./alembic.ini).",
        ),
    ] = None,
) -> None:
    """Critique a schema: keys, foreign keys, indexes and column types, each fix a lock-safe plan.

    Reviews a live database (--database-url) or the models (--models, models in
    [tool.helios-migrate.review], else the target_metadata of the project's env.py, read without
    running it), never both.  Exit codes: 0 no finding at or above --fail-on,
    1 such findings, 2 usage, configuration or connection errors.
    """
    from ..rules import RuleLoadError  # lazy: pglast, kept off --help
    from .report import RENDERERS  # lazy: pglast, kept off --help

    try:
        if write_revision and not database_url:
            raise ReviewUsageError(
                "--write-revision writes the fixes of a live review: give --database-url (for the models, "
                "change them as each finding says and run alembic revision --autogenerate)"
            )
        if fix and not write_revision:
            raise ReviewUsageError("--fix chooses what --write-revision writes: give --write-revision too")
        if write_revision and not fix:
            raise ReviewUsageError(
                "--write-revision: name the fixes to write with --fix (HM603, HM6, HM608:orders, ...): "
                "some fixes drop indexes, so none is written unasked"
            )
        report = _run(
            database_url, models, pg_version, fail_on, show_info, config_file, alembic_ini, sample=not no_sample
        )
        if write_revision:
            assert database_url is not None
            _write(report, database_url, fix or [], message, alembic_ini)
        if explain:
            report = _explain(report, config_file, llm_log, output_format)
    except (ReviewUsageError, RuleLoadError) as exc:
        typer.echo(f"helios-migrate review: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(RENDERERS[output_format](report))
    sys.stdout.flush()
    raise typer.Exit(report.exit_code)


def _explain(report: Any, config_file: Path | None, llm_log: Path | None, output_format: ReviewFormat) -> Any:
    """The report with the LLM's paragraphs; notes (why some or all are missing) go to stderr and
    into the report's notes.  Nothing but the paragraphs is taken from the answer."""
    from ..llm.client import LlmClient, LlmLog  # lazy: --explain only (openai)
    from ..llm.config import (  # lazy: --explain only
        LlmConfigError,
        LlmNotConfigured,
        load_llm_config,
    )
    from .explain import explain_findings  # lazy: --explain only

    try:
        llm_config = load_llm_config(config_file)
    except LlmConfigError as exc:
        raise ReviewUsageError(f"--explain: {exc}") from None
    notes: list[str] = []
    explained: dict[int, str] = {}
    model = llm_config.model or ""
    if output_format is ReviewFormat.SARIF:
        notes.append("--explain: SARIF results carry no explanations (use --format text, json or markdown); none asked for")
    elif not llm_config.enabled:
        notes.append(
            "--explain: no LLM configured (set base_url and model in [tool.helios-migrate.llm], or "
            "HELIOS_LLM_BASE_URL and HELIOS_LLM_MODEL); the report has no explanations"
        )
    else:
        try:
            client = LlmClient(llm_config, log=LlmLog(llm_log) if llm_log else None)
        except LlmNotConfigured as exc:
            notes.append(f"--explain: {exc}; the report has no explanations")
        else:
            findings = report.result.findings
            wanted = set(map(id, findings if output_format is ReviewFormat.JSON else report.shown()))
            indexes = [i for i, rf in enumerate(findings) if id(rf) in wanted]
            if indexes:
                result = explain_findings([findings[i] for i in indexes], client)
                explained = {indexes[i]: text for i, text in result.paragraphs.items()}
                notes += [f"--explain: {note}; those findings have no explanation" for note in result.notes]
    for note in notes:
        typer.echo(f"helios-migrate review: note: {note}", err=True)
    return replace(
        report, explained=True, explanations=explained, explain_model=model,
        extra_notes=(*report.extra_notes, *notes),
    )


def _write(report: Any, database_url: str, selectors: list[str], message: str, alembic_ini: Path | None) -> None:
    """Write the chosen fixes as a revision; what was written goes to stderr (stdout is the report)."""
    from .revision import (  # lazy: --write-revision only (psycopg, the planner)
        Fix,
        RevisionError,
        chosen,
        parse_selector,
        write_revision,
    )

    ini = alembic_ini or Path("alembic.ini")
    if not ini.is_file():
        raise ReviewUsageError(f"--write-revision: no Alembic project: {ini} not found (give --alembic-ini)")
    try:
        picked = chosen(report.result.findings, [parse_selector(s) for s in selectors])
        if not picked:
            raise RevisionError("no finding with a fix matches: nothing written")
        written = write_revision(
            [Fix.of(rf) for rf in picked], database_url=database_url, alembic_ini=ini.resolve(), message=message
        )
    except RevisionError as exc:
        raise ReviewUsageError(f"--write-revision: {exc}") from None
    for rf, why in written.skipped:
        typer.echo(f"helios-migrate review: not written: {rf.label}: {why}", err=True)
    typer.echo(
        f"Wrote {written.path} (revision {written.revision}, down_revision {written.down_revision}): "
        f"{len(written.written)} fix(es). Change the models to match (each finding says how), or the next "
        "autogenerate undoes them.",
        err=True,
    )


def _run(
    database_url: str | None,
    models: str | None,
    pg_version: str | None,
    fail_on: str | None,
    show_info: bool,
    config_file: Path | None,
    alembic_ini: Path | None = None,
    *,
    sample: bool = True,
) -> Any:
    from ..config import ConfigError, load_config  # lazy: pglast, kept off --help
    from .engine import review_schema  # lazy: pglast, kept off --help
    from .report import ReviewReport  # lazy: pglast, kept off --help

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        raise ReviewUsageError(str(exc)) from None
    try:
        threshold = Severity.parse(fail_on) if fail_on is not None else config.fail_on
    except ValueError as exc:
        raise ReviewUsageError(f"--fail-on: {exc}") from None
    models = models or (None if database_url else config.review.models)
    if database_url and models:
        raise ReviewUsageError("give either --database-url or --models, not both")
    if not database_url and not models:
        models = _env_models(alembic_ini, config.source)
    if database_url:
        return _review_live(database_url, config, threshold, show_info, sample=sample)
    if models:
        schema, enums = _model_schema(models, config.source)
        if pg_version is not None:
            try:
                version, source = PgVersion.parse(pg_version), "--pg-version"
            except VersionError as exc:
                raise ReviewUsageError(f"--pg-version: {exc}") from None
            if not version.supported:
                raise ReviewUsageError(f"--pg-version: PostgreSQL {version} is not supported (13 to 18 are)")
        elif config.pg_version is not None:
            version, source = config.pg_version, "pyproject.toml"
        else:
            version, source = default_version(), "default"
    else:
        raise ReviewUsageError(
            "nothing to review: give --database-url URL (a live database), or --models module:attribute "
            "(e.g. app.models:Base.metadata), or set models in [tool.helios-migrate.review], or run it "
            "in an Alembic project (alembic.ini here, or --alembic-ini)"
        )
    result = review_schema(schema, config, version, enum_types=enums)
    return ReviewReport(
        result=result, schema=schema, pg_version=version, pg_version_source=source, fail_on=threshold,
        show_info=show_info,
    )


def _review_live(database_url: str, config: Any, threshold: Severity, show_info: bool, *, sample: bool = True) -> Any:
    """Review a live database: the catalog, its enum types, and bounded samples of text columns,
    all read on one read-only connection."""
    import psycopg  # lazy: --database-url only

    from ..db import DatabaseUnreachable, connect_read_only, first_line  # lazy: psycopg
    from ..schema_catalog import read_schema  # lazy: --database-url only
    from .engine import review_schema  # lazy: pglast, kept off --help
    from .live_facts import MAX_SAMPLED_COLUMNS, ColumnSampler, read_enum_types  # lazy: psycopg
    from .report import ReviewReport  # lazy: pglast, kept off --help

    try:
        conn = connect_read_only(database_url)
    except DatabaseUnreachable as exc:
        raise ReviewUsageError(str(exc)) from None
    try:
        label = f"{conn.info.dbname} on {conn.info.host}:{conn.info.port}"
        schema = read_schema(conn, label=label)
        enums = read_enum_types(conn)
        assert schema.server_version_num is not None
        version = PgVersion.parse(schema.server_version_num)
        sampler = ColumnSampler(conn, schema)
        result = review_schema(schema, config, version, enum_types=enums, sampler=sampler if sample else None)
    except psycopg.Error as exc:
        raise ReviewUsageError(f"reading the catalog failed: {first_line(exc)}") from None
    finally:
        conn.close()
    notes = [f"value sample not read ({why}): rules that read samples skipped it" for why in sampler.failed[:5]]
    if len(sampler.failed) > 5:
        notes.append(f"{len(sampler.failed) - 5} more value sample(s) not read")
    if sampler.skipped:
        notes.append(f"{sampler.skipped} text column(s) not sampled (at most {MAX_SAMPLED_COLUMNS} per review)")
    return ReviewReport(
        result=result, schema=schema, pg_version=version, pg_version_source="server", fail_on=threshold,
        show_info=show_info, extra_notes=tuple(notes),
    )


def _env_models(alembic_ini: Path | None, config_source: str | None) -> str | None:
    """``target_metadata`` of the project's env.py as ``module:attribute`` (several joined by
    ``,``), or ``None`` when there is no Alembic project here and none was named."""
    ini = alembic_ini
    if ini is None:
        places = [Path.cwd(), *([Path(config_source).parent] if config_source else [])]
        ini = next((d / "alembic.ini" for d in places if (d / "alembic.ini").is_file()), None)
        if ini is None:
            return None
    elif not ini.is_file():
        raise ReviewUsageError(f"--alembic-ini {ini}: no such file")
    try:
        found = models_of_env(find_env_py(ini.resolve()))
    except EnvModelsError as exc:
        raise ReviewUsageError(str(exc)) from None
    return ",".join(found.references)


def _model_schema(reference: str, config_source: str | None) -> tuple[Any, dict[str, tuple[str, ...]]]:
    """The schema of the models ``reference`` names (``module:attribute``; several joined by ``,``
    are reviewed as one schema, as Alembic compares a list of ``MetaData``), and their enum types."""
    parts = [_one_model_schema(part.strip(), config_source) for part in reference.split(",")]
    schemas = [schema for schema, _ in parts]
    enums = {name: labels for _, found in parts for name, labels in found.items()}
    return replace(schemas[0], tables=tuple(t for s in schemas for t in s.tables), label=reference), enums


def _one_model_schema(reference: str, config_source: str | None) -> tuple[Any, dict[str, tuple[str, ...]]]:
    from ..schema_model import schema_from_metadata  # lazy: pglast, kept off --help
    from .model_facts import enum_types_of_metadata  # lazy: SQLAlchemy, kept off --help

    places = {Path.cwd(), *([Path(config_source).parent] if config_source else [])}
    try:
        metadata = load_metadata(reference, places)
    except ModelsReferenceError as exc:
        raise ReviewUsageError(str(exc)) from None
    return schema_from_metadata(metadata, label=reference), enum_types_of_metadata(metadata)
