"""Run an Alembic project's revisions on a scratch PostgreSQL and check what they really do.

For every revision in range (oldest first): fill the empty tables with synthetic rows, take the schema
and data, then the stairway -- ``upgrade`` (traced), ``downgrade`` (traced), ``upgrade`` again --
comparing the schema after the downgrade with the schema before, the data after the downgrade with
the data before, and the schema after the second upgrade with the schema after the first.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from psycopg.conninfo import conninfo_to_dict

from .. import pgserver
from ..runtime import IrreversibleStep
from ..versions import PgVersion
from .compare import Finding, Severity, compare_statement
from .load import TableLoad
from .schema import (
    SchemaSnapshot,
    TableData,
    TableInfo,
    app_tables,
    compare_data,
    snapshot_data,
    snapshot_schema,
)
from .synth import FillResult, fill_tables
from .trace import (
    TRACER_APPLICATION_NAME,
    ScratchDatabaseMismatch,
    TracedStatement,
    Tracer,
    install_settle,
    remove_settle,
)

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


class VerifyUsageError(Exception):
    """The run cannot start: no Alembic project, no database, bad options (exit code 2)."""


@dataclass
class VerifyOptions:
    config_file: Path | None = None
    revision_range: str | None = None
    database_url: str | None = None
    allow_nonempty: bool = False
    pg: str | None = None
    """``"18"`` (embedded), ``"15"`` (Debian binaries) ..., or None for the embedded server."""
    rows: int = 10_000
    load: bool = False
    stairway: bool = True
    workdir: Path | None = None
    sample_interval_s: float = 0.003
    settle_s: float = 0.02
    """Each DDL command pauses this long at its end (locks held) so the sampler sees its last locks."""


@dataclass
class RevisionResult:
    revision: str
    message: str
    parent: str | None
    steps: dict[str, str] = field(default_factory=dict)
    """``upgrade`` / ``downgrade`` / ``re-upgrade`` -> ``ok``, ``failed`` or ``skipped``."""
    statements: list[TracedStatement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    fills: list[FillResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(v != "failed" for v in self.steps.values()) and not any(
            f.severity is Severity.ERROR for f in self.findings
        )


@dataclass
class VerifyReport:
    server: str = ""
    version: str = ""
    rows: int = 0
    project: str = ""
    revisions: list[RevisionResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    """Findings not tied to one revision."""
    duration_s: float = 0.0
    load: bool = False

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(f for r in self.revisions for f in r.findings)]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.all_findings() if f.severity is Severity.ERROR)

    @property
    def exit_code(self) -> int:
        failed = any(v == "failed" for r in self.revisions for v in r.steps.values())
        return 1 if failed or self.errors else 0


# --- the Alembic project -----------------------------------------------------------------------


def _sqlalchemy_url(url: str) -> str:
    """A SQLAlchemy URL (psycopg 3 driver) for a libpq URL or keyword conninfo string."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]


    params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    dbname = params.pop("dbname", "")
    query = urlencode(params, safe="/")
    return f"postgresql+psycopg:///{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def load_alembic(config_file: Path | None) -> tuple[Any, Any]:
    """The Alembic ``Config`` and ``ScriptDirectory`` of the project."""
    path = config_file or Path.cwd() / "alembic.ini"
    if not path.is_file():
        raise VerifyUsageError(
            f"no Alembic project: {path} does not exist (run from the directory holding alembic.ini, "
            "or pass -c PATH)"
        )
    cfg = AlembicConfig(str(path), stdout=io.StringIO())
    try:
        script = ScriptDirectory.from_config(cfg)
    except Exception as exc:
        raise VerifyUsageError(f"cannot read the Alembic project {path}: {exc}") from None
    return cfg, script


def revision_chain(script: Any, spec: str | None) -> list[tuple[str, str | None, str]]:
    """``(revision, parent, message)`` oldest first, limited to ``spec`` (``A:B``, ``A:``, ``:B``)."""
    try:
        revs = list(reversed(list(script.walk_revisions("base", "heads"))))
    except Exception as exc:
        raise VerifyUsageError(f"cannot read the revision history: {exc}") from None
    chain: list[tuple[str, str | None, str]] = []
    for rev in revs:
        down = rev.down_revision
        if isinstance(down, (tuple, list)):
            down = down[0] if len(down) == 1 else ",".join(down)
        chain.append((rev.revision, down, (rev.doc or "").strip().splitlines()[0] if rev.doc else ""))
    if not spec:
        return chain
    start, sep, end = spec.partition(":")
    if not sep:
        start, end = spec, spec
    ids = [r for r, _, _ in chain]

    def find(prefix: str, default: int) -> int:
        if not prefix:
            return default
        if prefix in ("head", "heads"):
            return len(ids) - 1
        if prefix == "base":
            return 0
        matches = [i for i, r in enumerate(ids) if r.startswith(prefix)]
        if len(matches) != 1:
            raise VerifyUsageError(
                f"--range: {'no' if not matches else 'more than one'} revision matches {prefix!r}"
            )
        return matches[0]

    a, b = find(start, 0), find(end, len(ids) - 1)
    if a > b:
        raise VerifyUsageError(f"--range {spec}: {start} comes after {end}")
    return chain[a : b + 1]


# --- the database ------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(options: VerifyOptions, echo: Echo) -> Iterator[tuple[str, str, PgVersion]]:
    """``(url, description, version)`` of the scratch database for the run."""
    if options.database_url:
        url = options.database_url
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                version = PgVersion.parse(str(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
                nonempty = _tables_with_rows(conn)
        except psycopg.Error as exc:
            raise VerifyUsageError(
                f"cannot connect to {pgserver.redact_url(url)}: {str(exc).strip()}"
            ) from None
        if nonempty and not options.allow_nonempty:
            shown = ", ".join(nonempty[:5]) + (" ..." if len(nonempty) > 5 else "")
            raise VerifyUsageError(
                f"{pgserver.redact_url(url)} is not a scratch database: {shown} hold rows "
                "(verify runs migrations for real, up and down; pass --allow-nonempty if this "
                "database is disposable)"
            )
        yield url, pgserver.redact_url(url), version
        return
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="helios-verify-"))
    owned_dir = options.workdir is None
    server = None
    try:
        major = options.pg
        try:
            if major is None or str(major) == str(pgserver.embedded_major() or 18):
                echo(f"starting an embedded PostgreSQL in {workdir}")
                server = pgserver.start_embedded(workdir / "pg")
            else:
                bindir = f"/usr/lib/postgresql/{major}/bin"
                if pgserver.binaries_major(bindir) is None:
                    raise VerifyUsageError(
                        f"--pg {major}: no PostgreSQL {major} here (embedded: "
                        f"{pgserver.embedded_major() or 18}; {bindir} not found); "
                        "use --database-url for another version"
                    )
                echo(f"starting PostgreSQL {major} from {bindir} in {workdir}")
                server = pgserver.start_debian(workdir / "pg", bindir=bindir)
        except pgserver.ServerStartError as exc:
            raise VerifyUsageError(f"cannot start a scratch PostgreSQL: {exc}") from None
        url = pgserver.create_database(server, f"helios_verify_{uuid.uuid4().hex[:8]}", "template0")
        yield url, f"{server.name} (temporary)", server.version
    finally:
        if server is not None:
            server.stop()
        if owned_dir:
            shutil.rmtree(workdir, ignore_errors=True)


def _tables_with_rows(conn: psycopg.Connection[Any]) -> list[str]:
    out: list[str] = []
    for t in app_tables(conn):
        row = conn.execute(
            psycopg.sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
                psycopg.sql.Identifier(t.schema, t.name)
            )
        ).fetchone()
        if row and row[0]:
            out.append(t.qualified)
    return out


def _current_revision(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT string_agg(version_num, ',') FROM alembic_version").fetchone()
    return None if row is None or row[0] is None else str(row[0])


# --- the run -----------------------------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error) or (
        getattr(exc, "orig", None) is not None and isinstance(exc.orig, psycopg.Error)  # type: ignore[attr-defined]
    ):
        orig = exc if isinstance(exc, psycopg.Error) else exc.orig  # type: ignore[attr-defined]
        state = orig.sqlstate
        msg = (orig.diag.message_primary or str(orig)).strip()
        return f"{state}: {msg}" if state else msg
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_verify(options: VerifyOptions, echo: Echo | None = None, progress: Any = None) -> VerifyReport:
    """Run the verification; raises :class:`VerifyUsageError` when it cannot start."""
    say: Echo = echo or (lambda _msg: None)
    began = time.monotonic()
    cfg, script = load_alembic(options.config_file)
    chain = revision_chain(script, options.revision_range)
    if not chain:
        raise VerifyUsageError("the Alembic project has no revisions")
    report = VerifyReport(rows=options.rows, project=str(cfg.config_file_name), load=options.load)
    with scratch_database(options, say) as (url, description, version):
        report.server, report.version = description, str(version)
        cfg.set_main_option("sqlalchemy.url", _sqlalchemy_url(url).replace("%", "%%"))
        _run(report, options, cfg, script, chain, url, version, say, progress)
    report.duration_s = time.monotonic() - began
    return report


def _alembic(fn: Callable[..., Any], cfg: Any, target: str) -> None:
    fn(cfg, target)


def _run(
    report: VerifyReport,
    options: VerifyOptions,
    cfg: Any,
    script: Any,
    chain: list[tuple[str, str | None, str]],
    url: str,
    version: PgVersion,
    say: Echo,
    progress: Any,
) -> None:
    first_parent = chain[0][1]
    if first_parent and "," in first_parent:
        raise VerifyUsageError(f"the first revision under test, {chain[0][0]}, is a merge point")
    start_at = _current_revision(url)
    try:
        if start_at != first_parent:
            target = first_parent or "base"
            say(f"migrating the scratch database to {target}")
            order = [r for r, _, _ in revision_chain(script, None)]
            ahead = start_at is not None and (
                first_parent is None
                or (start_at in order and first_parent in order
                    and order.index(start_at) > order.index(first_parent))
            )
            (alembic_command.downgrade if ahead else alembic_command.upgrade)(cfg, target)
    except Exception as exc:
        report.findings.append(Finding(
            Severity.ERROR, "setup-failed",
            f"migrating to {first_parent}, the parent of the first revision under test, failed: "
            f"{_error_text(exc)}",
        ))
        return
    conn = psycopg.connect(url, autocommit=True, application_name=f"{TRACER_APPLICATION_NAME}-checks")
    tracer = Tracer(url, version, sample_interval_s=options.sample_interval_s)
    settle = install_settle(conn, options.settle_s)
    try:
        tracer.start()
        for rev, parent, message in chain:
            result = RevisionResult(rev, message, parent)
            report.revisions.append(result)
            began = time.monotonic()
            try:
                cont = _one_revision(result, options, cfg, conn, tracer, url, say, progress)
            finally:
                result.duration_s = time.monotonic() - began
            if not cont:
                break
    finally:
        tracer.stop()
        if settle:
            remove_settle(conn)
        conn.close()
    for result in report.revisions:
        for st in result.statements:
            result.findings.extend(compare_statement(st))


@contextlib.contextmanager
def _load(options: VerifyOptions, url: str, conn: psycopg.Connection[Any], result: RevisionResult) -> Iterator[Any]:
    if not options.load:
        yield None
        return

    with TableLoad(url, conn) as load:
        yield load
        load.note_problems(result)


def _one_revision(
    result: RevisionResult,
    options: VerifyOptions,
    cfg: Any,
    conn: psycopg.Connection[Any],
    tracer: Tracer,
    url: str,
    say: Echo,
    progress: Any,
) -> bool:
    """The stairway for one revision; False when the run cannot go on."""
    rev, parent = result.revision, result.parent
    down_target = parent if parent and "," not in parent else ("base" if not parent else None)
    result.fills = fill_tables(conn, options.rows, progress=progress)
    for fill in result.fills:
        if fill.problem:
            sev = Severity.WARNING if fill.rows == 0 else Severity.INFO
            result.findings.append(Finding(
                sev, "fill", f"{fill.table}: {fill.rows} of {fill.wanted} rows: {fill.problem}", rev))
    schema_before = snapshot_schema(conn)
    data_before = snapshot_data(conn)

    say(f"{rev}: upgrade")
    if not _step(result, "upgrade", tracer, options, url, conn, lambda: alembic_command.upgrade(cfg, rev)):
        return False
    if _current_revision(url) != rev:
        result.steps["upgrade"] = "failed"
        result.findings.append(Finding(
            Severity.ERROR, "not-migrated",
            f"after upgrade the scratch database is at {_current_revision(url)!r}, not {rev}: env.py "
            "must take its URL from sqlalchemy.url", rev))
        return False
    if not options.stairway:
        return True
    if down_target is None:
        result.steps["downgrade"] = "skipped"
        result.findings.append(Finding(Severity.INFO, "merge", f"{rev} is a merge point: no stairway", rev))
        return True
    schema_up = snapshot_schema(conn)
    data_up = snapshot_data(conn)

    say(f"{rev}: downgrade to {down_target}")
    declared = False
    ok = _step(result, "downgrade", tracer, options, url, conn, lambda: alembic_command.downgrade(cfg, down_target))
    if not ok and result.steps.get("downgrade") == "irreversible":
        if snapshot_schema(conn).diff(schema_up):
            # Steps before the irreversible one ran and committed: nothing left to compare.
            return _recover_after_irreversible(result, cfg, down_target)
        # Nothing ran: accept the declared data loss and check the rest of the downgrade.
        say(f"{rev}: downgrade to {down_target} with {_ALLOW_DATA_LOSS}=1")
        declared = True
        with _env(_ALLOW_DATA_LOSS, "1"):
            ok = _step(result, "downgrade", tracer, options, url, conn,
                       lambda: alembic_command.downgrade(cfg, down_target))
    if not ok:
        return False
    schema_down = snapshot_schema(conn)
    _compare_down(result, schema_before, schema_down, data_before, data_up, conn, declared=declared)

    say(f"{rev}: upgrade again")
    try:
        alembic_command.upgrade(cfg, rev)
    except Exception as exc:
        result.steps["re-upgrade"] = "failed"
        result.findings.append(Finding(
            Severity.ERROR, "re-upgrade-failed",
            f"upgrade after downgrade failed: {_error_text(exc)}", rev))
        return False
    result.steps["re-upgrade"] = "ok"
    diff = schema_up.diff(snapshot_schema(conn))
    if diff:
        result.findings.append(Finding(
            Severity.ERROR, "re-upgrade-mismatch",
            "the second upgrade gives a different schema than the first:\n" + "\n".join(diff), rev))
    return True


def _step(
    result: RevisionResult, step: str, tracer: Tracer, options: VerifyOptions, url: str,
    conn: psycopg.Connection[Any], run: Callable[[], None],
) -> bool:
    rev = result.revision
    first = len(tracer.statements)
    try:
        with _load(options, url, conn, result) as load, tracer.tracing(rev, step):
            try:
                run()
            finally:
                new = tracer.statements[first:]
                if load is not None:
                    load.attribute(new)
    except ScratchDatabaseMismatch as exc:
        result.steps[step] = "failed"
        result.findings.append(Finding(Severity.ERROR, "wrong-database", str(exc), rev))
        return False
    except Exception as exc:
        if step == "downgrade" and _is_irreversible(exc):
            result.steps[step] = "irreversible"
            result.findings.append(Finding(
                Severity.WARNING, "irreversible",
                f"the downgrade declares a step irreversible: {exc}", rev))
            return False
        result.steps[step] = "failed"
        failing = next((s for s in reversed(tracer.statements[first:]) if s.error), None)
        where = f" at statement {failing.index}: {failing.sql[:200]}" if failing else _raised_at(exc)
        result.findings.append(Finding(
            Severity.ERROR, f"{step}-failed", f"{step} of {rev} raised {_error_text(exc)}{where}", rev,
            failing.index if failing else None))
        return False
    finally:
        result.statements.extend(s for s in tracer.statements[first:] if s.relevant)
    result.steps[step] = "ok"
    return True


_ALLOW_DATA_LOSS = "HELIOS_ALLOW_DATA_LOSS"


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _recover_after_irreversible(result: RevisionResult, cfg: Any, down_target: str) -> bool:
    """Stamp the parent and upgrade again (the upgrade's steps are safe to re-run)."""
    try:
        alembic_command.stamp(cfg, down_target)
        alembic_command.upgrade(cfg, result.revision)
    except Exception as exc:
        result.steps["re-upgrade"] = "failed"
        result.findings.append(Finding(
            Severity.ERROR, "re-upgrade-failed",
            f"after the partial downgrade, upgrading again failed: {_error_text(exc)}", result.revision))
        return False
    result.steps["re-upgrade"] = "ok"
    return True


def _raised_at(exc: BaseException) -> str:
    """`` (at versions/abc.py:12)``: the innermost frame of the traceback in a revision file."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/versions/" in f.filename.replace("\\", "/")]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno})"


def _is_irreversible(exc: BaseException) -> bool:
    return isinstance(exc, IrreversibleStep)


def _compare_down(
    result: RevisionResult,
    schema_before: SchemaSnapshot,
    schema_down: SchemaSnapshot,
    data_before: dict[str, tuple[TableInfo, TableData]],
    data_up: dict[str, tuple[TableInfo, TableData]],
    conn: psycopg.Connection[Any],
    *,
    declared: bool = False,
) -> None:
    rev = result.revision
    diff = schema_before.diff(schema_down)
    if diff:
        result.findings.append(Finding(
            Severity.ERROR, "schema-mismatch",
            "after downgrade the schema differs from the schema before the upgrade "
            "(- before only, + after only):\n" + "\n".join(diff), rev))
    for d in compare_data(conn, data_before):
        code = "data-loss" if d.lost_columns else "data-mismatch"
        if declared:
            result.findings.append(Finding(
                Severity.WARNING, "declared-data-loss",
                f"after downgrade (data loss declared by the revision), {d.table}: {d.message}", rev))
        else:
            result.findings.append(Finding(
                Severity.ERROR, code, f"after downgrade, {d.table}: {d.message}", rev))
    # Columns and tables the upgrade added and filled, which the downgrade drops with their values.

    now = {t.qualified: t for t in app_tables(conn)}
    for name, (info, data) in sorted(data_up.items()):
        old = data_before.get(name)
        cur = now.get(name)
        if cur is None:
            if data.rows and old is None:
                result.findings.append(Finding(
                    Severity.WARNING, "downgrade-drops-data",
                    f"downgrade drops table {name} holding {data.rows} rows", rev))
            continue
        gone = [c for c in info.columns if c not in cur.columns and (old is None or c not in old[0].columns)]
        filled = [c for c in gone if data.non_null.get(c, 0) > 0]
        for c in filled:
            result.findings.append(Finding(
                Severity.WARNING, "downgrade-drops-data",
                f"downgrade drops column {name}.{c} holding {data.non_null[c]} values written by the upgrade",
                rev))
