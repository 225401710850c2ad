"""PostgreSQL server versions as the planner and the knowledge base see them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

SUPPORTED_MAJORS: tuple[int, ...] = (13, 14, 15, 16, 17, 18)
DEFAULT_MAJOR = 16
"""Assumed offline when neither ``--pg-version`` nor a database says otherwise: the oldest major
still receiving fixes from most hosted providers, so version-gated shortcuts are not over-promised."""


class VersionError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class PgVersion:
    major: int
    minor: int = 0
    minor_known: bool = True
    """False when only the major version was given (``--pg-version 14``): minor-specific facts,
    such as the 14.0-14.3 ``CREATE INDEX CONCURRENTLY`` bug, are then reported as possible."""

    @classmethod
    def parse(cls, value: str | int) -> PgVersion:
        """Accept ``"15"``, ``"14.2"``, ``150004`` (``server_version_num``) or ``"150004"``."""
        text = str(value).strip()
        if re.fullmatch(r"\d{5,6}", text):
            num = int(text)
            return cls(num // 10000, num % 10000)
        m = re.fullmatch(r"(\d{1,2})(?:\.(\d+))?", text)
        if not m:
            raise VersionError(
                f"not a PostgreSQL version: {value!r} (expected e.g. 15, 14.2 or 150004)"
            )
        major = int(m.group(1))
        if m.group(2) is None:
            return cls(major, 0, minor_known=False)
        return cls(major, int(m.group(2)))

    @property
    def num(self) -> int:
        """``server_version_num`` style integer."""
        return self.major * 10000 + self.minor

    @property
    def supported(self) -> bool:
        return self.major in SUPPORTED_MAJORS

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}" if self.minor_known else str(self.major)

    @property
    def concurrent_index_bug(self) -> bool | None:
        """PostgreSQL 14.0-14.3 can build corrupt indexes with CREATE/REINDEX CONCURRENTLY
        (14.4 release notes).  ``None``: a 14 whose minor version is unknown."""
        if self.major != 14:
            return False
        if not self.minor_known:
            return None
        return self.minor < 4


def default_version() -> PgVersion:
    return PgVersion(DEFAULT_MAJOR, 0, minor_known=False)


TARGET_ENV = "HELIOS_PG_VERSION"
"""The environment variable that names the PostgreSQL version plans are made for."""


@dataclass(frozen=True)
class Target:
    """The server version plans are made for, where that came from, and the version of the
    database facts were read from (when one was used)."""

    version: PgVersion
    source: str
    database: PgVersion | None = None

    @property
    def note(self) -> str | None:
        """What a reader must know when the database read differs from the target."""
        db = self.database
        if db is None or db.major == self.version.major:
            return None
        if db.major > self.version.major:
            return (
                f"planned for PostgreSQL {self.version} ({self.source}); the database read is "
                f"{db}: features newer than {self.version.major} are not used"
            )
        return (
            f"planned for PostgreSQL {self.version} ({self.source}); the database read is {db}, "
            f"older than the target: lock and rewrite facts observed on it may differ on "
            f"{self.version.major} (catalog-only changes and version-gated shortcuts were taken "
            "from the target's rules)"
        )


def target_version(
    *,
    explicit: str | None = None,
    configured: PgVersion | None = None,
    database: PgVersion | None = None,
    environ: Mapping[str, str] | None = None,
) -> Target:
    """The version to plan for: ``--pg-version``, else ``HELIOS_PG_VERSION``, else ``pg_version``
    in ``[tool.helios-migrate]``, else the database's own version, else the default.  Raises
    :class:`VersionError` naming where a bad value came from."""
    env = os.environ if environ is None else environ
    for raw, source in ((explicit, "--pg-version"), (env.get(TARGET_ENV) or None, TARGET_ENV)):
        if raw is None:
            continue
        try:
            version = PgVersion.parse(raw)
        except VersionError as exc:
            raise VersionError(f"{source}: {exc}") from None
        if not version.supported:
            raise VersionError(f"{source}: PostgreSQL {version} is not supported (13 to 18 are)")
        return Target(version, source, database)
    if configured is not None:
        return Target(configured, "pg_version in pyproject.toml", database)
    if database is not None:
        return Target(database, "read from the database", database)
    return Target(default_version(), "assumed; set pg_version or pass --pg-version")
