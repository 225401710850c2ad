"""Project configuration: the ``[tool.helios-migrate]`` table of ``pyproject.toml``.

Example::

    [tool.helios-migrate]
    pg_version = "15"             # assumed offline when no database is given
    fail_on = "error"             # lowest severity that makes `check` fail: error, warning or info
    lock_timeout = "2s"           # used by generated migrations and runtime helpers
    statement_timeout = "30s"
    lock_retries = 5
    backfill_batch_size = 10000
    backfill_pause_ms = 50
    rename_strategy = "expand-contract"   # or "rename-with-view": how autogenerate plans renames

    [tool.helios-migrate.rules]
    select = ["ALL"]              # codes or prefixes ("HM1", "HM203"); "ALL" is every rule
    ignore = ["HM503"]
    severity = { HM102 = "error", HM401 = "info" }

    [tool.helios-migrate.tables]
    small = ["countries", "public.feature_flags"]   # exempt from the locking and rewrite rules
    hot = ["orders"]                                 # blocking findings on them are one level more severe

    [tool.helios-migrate.autogenerate]               # how the Alembic plugin plans (AutogenerateSettings)
    impact_header = true
    split_contract = false
    renames = { "users.email" = "email_address" }
    impact_calibration = "cached"                    # or "measure", "default"
    impact_write_sample_s = 0
    index_on_fk = true
    small_table_rows = 10000

    [tool.helios-migrate.autogenerate.tables.orders]  # per-table planning overrides
    lock_timeout = "500ms"

    [tool.helios-migrate.review]                     # `helios-migrate review` (ReviewSettings)
    models = "app.models:Base.metadata"              # the models to review without a database
    ignore = ["HM601:audit_log", "HM603:orders.customer_id", "HM605"]
    key_range_percent = 50                           # report keys and sequences this full

    [tool.helios-migrate.diff]                       # `helios-migrate diff` (DiffSettings)
    ignore = ["public.spatial_ref_sys", "index:*_hypo*"]

Keys this module does not know inside the tables it owns are errors (a typo must not silently
switch a check off), and so is a sub-table (``[tool.helios-migrate.<section>]``) of an unknown
name.  The sections of :data:`COMMAND_SECTIONS` are kept in :attr:`Config.sections` for the
commands that own them, which check their keys the same way (``[tool.helios-migrate.llm]``:
:func:`helios_migrate.llm.config.load_llm_config`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from .changes import QualifiedName
from .findings import Severity
from .rules import registered_rules
from .versions import PgVersion, VersionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

TOOL_KEY = "helios-migrate"
_CODE_RE = re.compile(r"^[A-Z]{2,5}\d{0,3}$")
_D = TypeVar("_D")
_DURATION_RE = re.compile(r"^\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*$")


class ConfigError(ValueError):
    """The configuration is invalid.  ``str()`` names the file and the key."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(source, key, message)
        self.source = source
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return f"{self.source}: [tool.{TOOL_KEY}] {self.key}: {self.message}"


@dataclass(frozen=True)
class RuleSelection:
    """Which rules run and at what severity."""

    select: tuple[str, ...] = ("ALL",)
    """Codes or code prefixes (``HM1`` selects every locking rule); ``ALL`` selects every rule."""
    ignore: tuple[str, ...] = ()
    """Codes or prefixes switched off; ignore wins over select when both match."""
    severity: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))
    """Per-code severity replacing the rule's default."""

    def enabled(self, code: str) -> bool:
        return _matches(self.select, code) and not _matches(self.ignore, code)


def _matches(patterns: tuple[str, ...], code: str) -> bool:
    return any(p == "ALL" or code.startswith(p) for p in patterns)


def _table_matches(pattern: str, table: QualifiedName) -> bool:
    # "orders" matches orders in any schema; "public.orders" only that one (or an unqualified
    # reference in the SQL, whose schema the search_path decides).
    target = QualifiedName.parse(pattern.lower())
    if target.name != table.name.lower():
        return False
    return target.schema is None or table.schema is None or target.schema == table.schema.lower()


@dataclass(frozen=True)
class TableLists:
    small: tuple[str, ...] = ()
    """Tables small enough that a lock or rewrite on them is harmless."""
    hot: tuple[str, ...] = ()
    """Busy tables: findings about blocking locks on them are raised one severity level."""

    def is_small(self, table: QualifiedName) -> bool:
        return any(_table_matches(p, table) for p in self.small)

    def is_hot(self, table: QualifiedName) -> bool:
        return any(_table_matches(p, table) for p in self.hot)


IMPACT_CALIBRATIONS = ("cached", "measure", "default")


@dataclass(frozen=True)
class TableOverride:
    """``[tool.helios-migrate.autogenerate.tables.NAME]``: planning settings for one table
    (``None``: the project-wide value)."""

    lock_timeout: str | None = None
    statement_timeout: str | None = None
    lock_retries: int | None = None
    backfill_batch_size: int | None = None
    backfill_pause_ms: int | None = None
    index_on_fk: bool | None = None


@dataclass(frozen=True)
class AutogenerateSettings:
    """``[tool.helios-migrate.autogenerate]``: how the Alembic plugin plans and writes revisions."""

    impact_header: bool = True
    """Put the impact estimate at the top of every autogenerated revision."""
    split_contract: bool = False
    """Write the contract phase as a second revision after the first."""
    renames: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Confirmed renames: ``"table.old_column" = "new_column"`` or ``"old_table" = "new_table"``."""
    impact_calibration: str = "cached"
    """Throughput for the impact estimate: ``cached`` (measured once per server, the default),
    ``measure`` (every run) or ``default`` (the documented figures)."""
    impact_write_sample_s: float = 0.0
    """Seconds of write-rate sampling on the live database for the estimate (0: none)."""
    index_on_fk: bool = True
    """Build an index on a new foreign key's referencing columns when none covers them."""
    small_table_rows: int | None = None
    """Tables estimated below this many rows get the plain (locking) forms; ``None``: off."""
    tables: Mapping[str, TableOverride] = field(default_factory=lambda: MappingProxyType({}))
    """Per-table overrides by ``"orders"`` or ``"public.orders"``."""


@dataclass(frozen=True)
class ReviewIgnore:
    """One ``[tool.helios-migrate.review] ignore`` entry: ``"HM601"``, ``"HM601:audit_log"``,
    ``"HM603:orders.customer_id"`` or ``"HM603:public.orders.customer_id"``."""

    code: str
    """A rule code or a code prefix (``HM6``)."""
    target: str | None = None
    """A table, ``table.column`` or ``schema.table[.column]``; ``None``: everywhere."""

    def __str__(self) -> str:
        return f"{self.code}:{self.target}" if self.target else self.code

    def covers(self, code: str, table: QualifiedName, column: str | None) -> bool:
        """Does this entry suppress a finding of ``code`` about ``table`` (and ``column``)?"""
        if not code.startswith(self.code):
            return False
        if self.target is None:
            return True
        parts = self.target.lower().split(".")
        name, schema = table.name.lower(), (table.schema or "").lower()
        col = (column or "").lower()
        candidates: list[tuple[str | None, str, str | None]] = []
        if len(parts) == 1:
            candidates.append((None, parts[0], None))
        elif len(parts) == 2:
            candidates += [(parts[0], parts[1], None), (None, parts[0], parts[1])]
        else:
            candidates.append((parts[-3], parts[-2], parts[-1]))
        return any(
            t == name and (s is None or not schema or s == schema) and (c is None or c == col)
            for s, t, c in candidates
        )


@dataclass(frozen=True)
class ReviewSettings:
    """``[tool.helios-migrate.review]``: what ``helios-migrate review`` reads and reports."""

    models: str | None = None
    """``module:attribute`` of the project's ``MetaData`` (``target_metadata``), e.g.
    ``app.models:Base.metadata``; ``--models`` overrides it."""
    ignore: tuple[ReviewIgnore, ...] = ()
    """Findings suppressed everywhere (a code) or on one table or column (``code:target``)."""
    key_range_percent: float = 50.0
    """A key (sequence or integer column) this full is reported; from 90% it is an error."""

    def ignored(self, code: str, table: QualifiedName, column: str | None) -> ReviewIgnore | None:
        return next((i for i in self.ignore if i.covers(code, table, column)), None)


@dataclass(frozen=True)
class DiffSettings:
    """``[tool.helios-migrate.diff]``: what ``helios-migrate diff`` leaves out."""

    ignore: tuple[str, ...] = ()
    """Glob patterns, ``[kind:]name`` (``"public.spatial_ref_sys"``, ``"index:*_hypo*"``)."""


BACKFILL_PAUSES = ("proportional", "fixed")


@dataclass(frozen=True)
class RuntimeSettings:
    """How a running migration paces itself (``[tool.helios-migrate]``, read when the revision
    runs, not when it is written): batch sizing by time, throttling, the lock-queue guard, and the
    ANALYZE after large changes."""

    backfill_target_ms: int = 15
    """Time one backfill batch should take: its row locks are held that long.  Each batch is
    sized from the rows/s of the batches before it, up to ``backfill_batch_size`` rows (0: fixed
    batches of ``backfill_batch_size``)."""
    backfill_max_batch_ms: int | None = None
    """The longest a backfill batch may hold its row locks: a batch still running then (it waits
    for a row an application holds, or the server is overloaded) is cancelled, its row locks
    released, and its range tried again smaller -- the longest a writer waits behind a batch.
    ``None``: 1.5 x ``backfill_target_ms``, at least 25 ms; 0: no limit.  Above
    ``backfill_target_ms``."""
    backfill_max_cancelled: int = 20
    """Batches cancelled in a row (by ``backfill_max_batch_ms``) before the backfill stops,
    resumable."""
    backfill_cancel_wait_max: str = "1s"
    """After a cancelled batch the backfill waits, holding no row lock, before trying the range
    again: ``backfill_max_batch_ms``, doubling with each cancellation in a row, at most this."""
    backfill_max_growth: float = 2.0
    """The most a batch grows over the one before (a slow batch shrinks the next at once)."""
    backfill_min_batch: int = 100
    """The first batch, and the fewest rows a batch shrinks to."""
    backfill_pause: str = "proportional"
    """``proportional``: after each batch, pause ``backfill_nice_ratio`` times the time it took
    (gh-ost's nice ratio); ``fixed``: pause ``backfill_pause_ms``."""
    backfill_nice_ratio: float = 0.0
    """The pause after a batch, as a multiple of its time (``proportional``).  0 (gh-ost's and
    pt-online-schema-change's default): none -- a writer waits behind a batch at most
    ``backfill_max_batch_ms`` whatever the pause, and the replica-lag and load throttles pause the
    backfill when the server needs it; 0.1 leaves the server a tenth of the backfill's time."""
    backfill_min_pause_ms: int = 10
    """The shortest sleep between batches: shorter pauses owed are added up until they reach it."""
    max_replica_lag: str | None = "10s"
    """Pause the backfill while a replica's replay lag (``pg_stat_replication``, or
    ``replica_lag_sql``) is above this; ``None`` switches the check off."""
    replica_lag_sql: str | None = None
    """A ``SELECT`` returning the replica lag in seconds, instead of ``pg_stat_replication``."""
    max_load: float | None = None
    """Pause while the load (active sessions, or ``load_sql``) is above this; ``None``: off."""
    critical_load: float | None = None
    """Stop the step cleanly (it resumes where it stopped) when the load is above this."""
    load_sql: str | None = None
    """A ``SELECT`` returning a number (the load), instead of counting active sessions."""
    throttle_max_wait: str = "1h"
    """The longest a backfill stays paused (throttled or by the pause file) before it stops."""
    throttle_interval: str = "1s"
    """How long a replica-lag or load measurement that let a batch run is trusted before it is
    taken again (``0s``: before every batch).  While throttled, it is taken on every check."""
    throttle_poll_min: str = "200ms"
    throttle_poll_max: str = "2s"
    """While throttled, the first wait between checks, growing 1.5x a check up to the second."""
    pause_file: str = ".helios-migrate.pause"
    """While this file exists (relative to the directory alembic runs in), backfills pause."""
    lock_guard: bool = True
    """Before a step that takes a lock blocking reads or writes, wait while another session holds
    or waits for a conflicting lock on its table in a transaction older than
    ``lock_guard_min_age``, instead of queueing the application behind it."""
    lock_guard_min_age: str = "200ms"
    lock_guard_max_wait: str = "60s"
    """How long the guard waits before the step requests its lock anyway (``lock_timeout`` and
    the retries still bound that wait)."""
    lock_guard_poll_min: str = "50ms"
    lock_guard_poll_max: str = "1s"
    """While the guard waits, the first wait between looks, growing 1.5x a look up to the second."""
    auto_analyze: bool = True
    """ANALYZE the table after a backfill that changed at least ``auto_analyze_min_rows`` rows and
    10% of the table, and after an expression index is built."""
    auto_analyze_min_rows: int = 1000
    undo_attempts: int = 10
    undo_lock_timeout: str = "5s"
    """When a step fails on the data (a value that does not convert, a duplicate), its undo (each
    compensating statement in a short transaction of its own) waits at most ``undo_lock_timeout``
    for its lock, up to ``undo_attempts`` times with backoff, before it stops and names the
    statements left to run by hand."""


@dataclass(frozen=True)
class Config:
    """Everything ``[tool.helios-migrate]`` can say; every field has a working default."""

    pg_version: PgVersion | None = None
    """The server version assumed offline; ``None`` leaves the choice to the command."""
    fail_on: Severity = Severity.ERROR
    rules: RuleSelection = field(default_factory=RuleSelection)
    tables: TableLists = field(default_factory=TableLists)
    lock_timeout: str = "2s"
    statement_timeout: str = "30s"
    lock_retries: int = 5
    backfill_batch_size: int = 10000
    backfill_pause_ms: int = 50
    rename_strategy: str = "expand-contract"
    """How autogenerate plans a rename: ``expand-contract`` (new column, sync trigger, backfill,
    old column dropped in the contract phase) or ``rename-with-view`` (rename; a table keeps a
    compatibility view under its old name until the contract phase)."""
    version_table: str = "alembic_version"
    """Alembic's bookkeeping table: statements on it are never findings."""
    autogenerate: AutogenerateSettings = field(default_factory=AutogenerateSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    diff: DiffSettings = field(default_factory=DiffSettings)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    """Sub-tables owned by other commands, as read."""
    source: str | None = None
    """The file the configuration came from (``None`` for defaults)."""

    def rule_enabled(self, code: str) -> bool:
        return self.rules.enabled(code)

    def severity_for(self, code: str, default: Severity) -> Severity:
        return self.rules.severity.get(code, default)

    def fails(self, severity: Severity) -> bool:
        """Does a finding of ``severity`` make ``check`` fail?"""
        return severity >= self.fail_on


_OWNED_SECTIONS = {"rules", "tables", "autogenerate", "review", "diff"}
COMMAND_SECTIONS = frozenset({"llm"})
"""Sub-tables read by the commands that own them (kept in :attr:`Config.sections`)."""


def load_config(path: str | Path | None = None, *, start: str | Path | None = None) -> Config:
    """Read the configuration.

    With ``path``, read that ``pyproject.toml`` (a missing file is an error).  Otherwise look for
    ``pyproject.toml`` in ``start`` (default: the current directory) and its parents, and return
    the defaults when none has a ``[tool.helios-migrate]`` table.
    """
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(str(file), "-", "file not found")
        return _read(file)
    here = Path(start) if start is not None else Path.cwd()
    for directory in (here, *here.resolve().parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return _read(candidate)
    return Config()


def _read(file: Path) -> Config:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), "-", f"cannot read the file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "-", f"not valid TOML: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get(TOOL_KEY, {}) if isinstance(tool, dict) else {}
    return config_from_mapping(table, source=str(file))


def config_from_mapping(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build a :class:`Config` from the contents of the ``[tool.helios-migrate]`` table."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, "-", "must be a table")
    reader = _Reader(source)
    known_scalars = {
        "pg_version", "fail_on", "lock_timeout", "statement_timeout", "lock_retries",
        "backfill_batch_size", "backfill_pause_ms", "version_table", "rename_strategy",
        *_RUNTIME_KEYS,
    }
    sections: dict[str, Mapping[str, Any]] = {}
    for key, value in data.items():
        if key in known_scalars or key in _OWNED_SECTIONS:
            continue
        if key in COMMAND_SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(source, key, "must be a table")
            sections[key] = MappingProxyType(dict(value))
            continue
        if isinstance(value, Mapping):
            known_sections = ", ".join(sorted(_OWNED_SECTIONS | COMMAND_SECTIONS))
            raise ConfigError(source, key, f"unknown section (known sections: {known_sections})")
        raise ConfigError(source, key, f"unknown key (known keys: {', '.join(sorted(known_scalars | _OWNED_SECTIONS))})")

    defaults = Config()
    pg_version = None
    if "pg_version" in data:
        raw = data["pg_version"]
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise ConfigError(source, "pg_version", "expected a version such as \"15\" or \"14.2\"")
        try:
            pg_version = PgVersion.parse(raw)
        except VersionError as exc:
            raise ConfigError(source, "pg_version", str(exc)) from None
        if not pg_version.supported:
            raise ConfigError(source, "pg_version", f"PostgreSQL {pg_version} is not supported (13-18)")

    return Config(
        pg_version=pg_version,
        fail_on=reader.severity(data, "fail_on", defaults.fail_on),
        rules=_rules(reader, data.get("rules", {})),
        tables=_tables(reader, data.get("tables", {})),
        lock_timeout=reader.duration(data, "lock_timeout", defaults.lock_timeout),
        statement_timeout=reader.duration(data, "statement_timeout", defaults.statement_timeout),
        lock_retries=reader.integer(data, "lock_retries", defaults.lock_retries, minimum=0),
        backfill_batch_size=reader.integer(data, "backfill_batch_size", defaults.backfill_batch_size, minimum=1),
        backfill_pause_ms=reader.integer(data, "backfill_pause_ms", defaults.backfill_pause_ms, minimum=0),
        version_table=reader.string(data, "version_table", defaults.version_table),
        rename_strategy=_rename_strategy(source, data.get("rename_strategy", defaults.rename_strategy)),
        autogenerate=_autogenerate(reader, data.get("autogenerate", {})),
        runtime=_runtime(reader, data),
        review=_review(reader, data.get("review", {})),
        diff=_diff(reader, data.get("diff", {})),
        sections=MappingProxyType(sections),
        source=source,
    )


_RUNTIME_KEYS = (
    "backfill_target_ms", "backfill_min_batch", "backfill_pause", "backfill_nice_ratio",
    "backfill_max_batch_ms", "backfill_max_cancelled", "backfill_max_growth", "backfill_min_pause_ms",
    "backfill_cancel_wait_max",
    "throttle_poll_min", "throttle_poll_max", "lock_guard_poll_min", "lock_guard_poll_max",
    "max_replica_lag", "replica_lag_sql", "max_load", "critical_load", "load_sql",
    "throttle_max_wait", "throttle_interval", "pause_file", "lock_guard", "lock_guard_min_age", "lock_guard_max_wait",
    "auto_analyze", "auto_analyze_min_rows", "undo_attempts", "undo_lock_timeout",
)


def _runtime(reader: _Reader, data: Mapping[str, Any]) -> RuntimeSettings:
    d = RuntimeSettings()
    pause = data.get("backfill_pause", d.backfill_pause)
    if pause not in BACKFILL_PAUSES:
        raise ConfigError(reader.source, "backfill_pause", f"expected one of {', '.join(BACKFILL_PAUSES)}")
    max_load = reader.number(data, "max_load", d.max_load)
    critical = reader.number(data, "critical_load", d.critical_load)
    if max_load is not None and critical is not None and critical < max_load:
        raise ConfigError(reader.source, "critical_load", "must not be below max_load")
    lag: str | None = d.max_replica_lag
    if data.get("max_replica_lag") is False:
        lag = None
    else:
        lag = reader.duration(data, "max_replica_lag", d.max_replica_lag)
    target = reader.integer(data, "backfill_target_ms", d.backfill_target_ms, minimum=0)
    cap = reader.integer(data, "backfill_max_batch_ms", d.backfill_max_batch_ms, minimum=0)
    if cap and target and cap <= target:
        raise ConfigError(reader.source, "backfill_max_batch_ms", f"must be above backfill_target_ms ({target}), or 0 for no limit")
    growth = reader.number(data, "backfill_max_growth", d.backfill_max_growth)
    if growth < 1:
        raise ConfigError(reader.source, "backfill_max_growth", "expected a number >= 1")
    return RuntimeSettings(
        backfill_target_ms=target,
        backfill_max_batch_ms=cap,
        backfill_max_cancelled=reader.integer(data, "backfill_max_cancelled", d.backfill_max_cancelled, minimum=1),
        backfill_cancel_wait_max=reader.duration(data, "backfill_cancel_wait_max", d.backfill_cancel_wait_max),
        backfill_max_growth=growth,
        backfill_min_pause_ms=reader.integer(data, "backfill_min_pause_ms", d.backfill_min_pause_ms, minimum=0),
        backfill_min_batch=reader.integer(data, "backfill_min_batch", d.backfill_min_batch, minimum=1),
        backfill_pause=str(pause),
        backfill_nice_ratio=reader.number(data, "backfill_nice_ratio", d.backfill_nice_ratio) or 0.0,
        max_replica_lag=lag,
        replica_lag_sql=reader.optional_string(data, "replica_lag_sql"),
        max_load=max_load,
        critical_load=critical,
        load_sql=reader.optional_string(data, "load_sql"),
        throttle_max_wait=reader.duration(data, "throttle_max_wait", d.throttle_max_wait),
        throttle_interval=reader.duration(data, "throttle_interval", d.throttle_interval),
        throttle_poll_min=reader.duration(data, "throttle_poll_min", d.throttle_poll_min),
        throttle_poll_max=reader.duration(data, "throttle_poll_max", d.throttle_poll_max),
        pause_file=reader.string(data, "pause_file", d.pause_file),
        lock_guard=reader.boolean(data, "lock_guard", d.lock_guard),
        lock_guard_min_age=reader.duration(data, "lock_guard_min_age", d.lock_guard_min_age),
        lock_guard_max_wait=reader.duration(data, "lock_guard_max_wait", d.lock_guard_max_wait),
        lock_guard_poll_min=reader.duration(data, "lock_guard_poll_min", d.lock_guard_poll_min),
        lock_guard_poll_max=reader.duration(data, "lock_guard_poll_max", d.lock_guard_poll_max),
        auto_analyze=reader.boolean(data, "auto_analyze", d.auto_analyze),
        auto_analyze_min_rows=reader.integer(data, "auto_analyze_min_rows", d.auto_analyze_min_rows, minimum=0),
        undo_attempts=reader.integer(data, "undo_attempts", d.undo_attempts, minimum=1),
        undo_lock_timeout=reader.duration(data, "undo_lock_timeout", d.undo_lock_timeout),
    )


_REVIEW_KEYS = {"models", "ignore", "key_range_percent"}
_MODELS_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_IGNORE_TARGET_RE = re.compile(r"^[^.:\s]+(\.[^.:\s]+){0,2}$")


def _review(reader: _Reader, data: Any) -> ReviewSettings:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "review", "must be a table")
    reader.only(data, "review", _REVIEW_KEYS)
    defaults = ReviewSettings()
    models = data.get("models")
    if models is not None and (not isinstance(models, str) or not _MODELS_RE.match(models)):
        raise ConfigError(
            reader.source, "review.models", "expected \"module:attribute\", e.g. \"app.models:Base.metadata\""
        )
    raw = data.get("ignore", [])
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ConfigError(
            reader.source, "review.ignore",
            "expected a list such as [\"HM601:audit_log\", \"HM603:orders.customer_id\", \"HM605\"]",
        )
    entries = []
    for entry in raw:
        code, sep, target = entry.strip().partition(":")
        reader.check_code("review.ignore", code, prefix_allowed=True)
        if sep and not _IGNORE_TARGET_RE.match(target):
            raise ConfigError(
                reader.source, "review.ignore",
                f"{entry!r}: after the code comes a table, table.column or schema.table.column",
            )
        entries.append(ReviewIgnore(code, target or None))
    percent = data.get("key_range_percent", defaults.key_range_percent)
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
        raise ConfigError(reader.source, "review.key_range_percent", "expected a percentage above 0, at most 100")
    return ReviewSettings(models=models, ignore=tuple(entries), key_range_percent=float(percent))


_DIFF_KINDS = (
    "table", "column", "constraint", "index", "sequence", "enum", "view", "function", "trigger",
    "extension", "comment", "rls", "policy", "grant", "owner",
)


def _diff(reader: _Reader, data: Any) -> DiffSettings:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "diff", "must be a table")
    reader.only(data, "diff", {"ignore"})
    raw = data.get("ignore", [])
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        raise ConfigError(
            reader.source, "diff.ignore",
            "expected a list of glob patterns such as [\"public.spatial_ref_sys\", \"index:*_hypo*\"]",
        )
    for entry in raw:
        kind, sep, rest = entry.partition(":")
        if sep and kind not in _DIFF_KINDS:
            raise ConfigError(
                reader.source, "diff.ignore",
                f"{entry!r}: {kind!r} is not an object kind (one of {', '.join(_DIFF_KINDS)})",
            )
        if sep and not rest:
            raise ConfigError(reader.source, "diff.ignore", f"{entry!r}: a name pattern follows the kind")
    return DiffSettings(ignore=tuple(v.strip() for v in raw))


RENAME_STRATEGIES = ("expand-contract", "rename-with-view")


def _rename_strategy(source: str, value: Any) -> str:
    if value not in RENAME_STRATEGIES:
        raise ConfigError(source, "rename_strategy", f"expected one of {', '.join(RENAME_STRATEGIES)}")
    return str(value)


def _rules(reader: _Reader, data: Any) -> RuleSelection:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "rules", "must be a table")
    reader.only(data, "rules", {"select", "ignore", "severity"})
    select = reader.codes(data, "rules.select", "select", ("ALL",))
    ignore = reader.codes(data, "rules.ignore", "ignore", ())
    severity_table = data.get("severity", {})
    if not isinstance(severity_table, Mapping):
        raise ConfigError(reader.source, "rules.severity", "must be a table of code = \"error\"|\"warning\"|\"info\"")
    severities: dict[str, Severity] = {}
    for code in severity_table:
        key = f"rules.severity.{code}"
        reader.check_code(key, str(code), prefix_allowed=False)
        severities[str(code)] = reader.severity(severity_table, str(code), Severity.ERROR, key=key)
    return RuleSelection(select=select, ignore=ignore, severity=MappingProxyType(severities))


def _tables(reader: _Reader, data: Any) -> TableLists:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "tables", "must be a table")
    reader.only(data, "tables", {"small", "hot"})
    return TableLists(
        small=reader.strings(data, "tables.small", "small"),
        hot=reader.strings(data, "tables.hot", "hot"),
    )


_AUTOGENERATE_KEYS = {
    "impact_header", "split_contract", "renames", "impact_calibration", "impact_write_sample_s",
    "index_on_fk", "small_table_rows", "tables",
}
_OVERRIDE_KEYS = {
    "lock_timeout", "statement_timeout", "lock_retries", "backfill_batch_size", "backfill_pause_ms",
    "index_on_fk",
}


def _autogenerate(reader: _Reader, data: Any) -> AutogenerateSettings:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "autogenerate", "must be a table")
    reader.only(data, "autogenerate", _AUTOGENERATE_KEYS)
    defaults = AutogenerateSettings()
    key = "autogenerate."
    sample = data.get("impact_write_sample_s", defaults.impact_write_sample_s)
    if isinstance(sample, bool) or not isinstance(sample, (int, float)) or sample < 0:
        raise ConfigError(reader.source, key + "impact_write_sample_s", "expected a number of seconds >= 0")
    calibration = data.get("impact_calibration", defaults.impact_calibration)
    if calibration not in IMPACT_CALIBRATIONS:
        raise ConfigError(reader.source, key + "impact_calibration", f"expected one of {', '.join(IMPACT_CALIBRATIONS)}")
    small_rows = data.get("small_table_rows")
    if small_rows is not None and (isinstance(small_rows, bool) or not isinstance(small_rows, int) or small_rows < 0):
        raise ConfigError(reader.source, key + "small_table_rows", "expected a whole number of rows >= 0")
    return AutogenerateSettings(
        impact_header=reader.boolean(data, "impact_header", defaults.impact_header, key=key + "impact_header"),
        split_contract=reader.boolean(data, "split_contract", defaults.split_contract, key=key + "split_contract"),
        renames=_renames(reader, data.get("renames", {})),
        impact_calibration=str(calibration),
        impact_write_sample_s=float(sample),
        index_on_fk=reader.boolean(data, "index_on_fk", defaults.index_on_fk, key=key + "index_on_fk"),
        small_table_rows=small_rows,
        tables=_table_overrides(reader, data.get("tables", {})),
    )


def _renames(reader: _Reader, data: Any) -> Mapping[str, str]:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "autogenerate.renames", "must be a table of \"table.old_column\" = \"new_column\" or \"old_table\" = \"new_table\"")
    for old, new in data.items():
        if not old or not isinstance(new, str) or not new or "." in new:
            raise ConfigError(
                reader.source, f"autogenerate.renames.{old}",
                "expected the new name: \"table.old_column\" = \"new_column\" or \"old_table\" = \"new_table\"",
            )
    return MappingProxyType({str(k): str(v) for k, v in data.items()})


def _table_overrides(reader: _Reader, data: Any) -> Mapping[str, TableOverride]:
    if not isinstance(data, Mapping):
        raise ConfigError(reader.source, "autogenerate.tables", "must be a table of tables, one per table name")
    out: dict[str, TableOverride] = {}
    for table, settings in data.items():
        key = f"autogenerate.tables.{table}"
        if not isinstance(settings, Mapping):
            raise ConfigError(reader.source, key, "must be a table")
        reader.only(settings, key, _OVERRIDE_KEYS)
        out[str(table)] = TableOverride(
            lock_timeout=reader.duration(settings, "lock_timeout", None, key=f"{key}.lock_timeout"),
            statement_timeout=reader.duration(settings, "statement_timeout", None, key=f"{key}.statement_timeout"),
            lock_retries=reader.integer(settings, "lock_retries", None, minimum=0, key=f"{key}.lock_retries"),
            backfill_batch_size=reader.integer(
                settings, "backfill_batch_size", None, minimum=1, key=f"{key}.backfill_batch_size"
            ),
            backfill_pause_ms=reader.integer(
                settings, "backfill_pause_ms", None, minimum=0, key=f"{key}.backfill_pause_ms"
            ),
            index_on_fk=reader.boolean(settings, "index_on_fk", None, key=f"{key}.index_on_fk"),
        )
    return MappingProxyType(out)


@dataclass(frozen=True)
class _Reader:
    source: str

    def only(self, data: Mapping[str, Any], section: str, known: set[str]) -> None:
        for key in data:
            if key not in known:
                raise ConfigError(self.source, f"{section}.{key}", f"unknown key (known: {', '.join(sorted(known))})")

    def severity(self, data: Mapping[str, Any], name: str, default: Severity, *, key: str | None = None) -> Severity:
        if name not in data:
            return default
        value = data[name]
        if not isinstance(value, str):
            raise ConfigError(self.source, key or name, "expected \"error\", \"warning\" or \"info\"")
        try:
            return Severity.parse(value)
        except ValueError as exc:
            raise ConfigError(self.source, key or name, str(exc)) from None

    def duration(self, data: Mapping[str, Any], name: str, default: _D, *, key: str | None = None) -> str | _D:
        if name not in data:
            return default
        value = data[name]
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}ms"
        if not isinstance(value, str) or not _DURATION_RE.match(value):
            raise ConfigError(self.source, key or name, "expected a PostgreSQL duration such as \"2s\", \"500ms\" or \"1min\"")
        return value.strip()

    def integer(
        self, data: Mapping[str, Any], name: str, default: _D, *, minimum: int, key: str | None = None
    ) -> int | _D:
        if name not in data:
            return default
        value = data[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(self.source, key or name, f"expected an integer >= {minimum}")
        return value

    def boolean(self, data: Mapping[str, Any], name: str, default: _D, *, key: str | None = None) -> bool | _D:
        if name not in data:
            return default
        value = data[name]
        if not isinstance(value, bool):
            raise ConfigError(self.source, key or name, "expected true or false")
        return value

    def number(self, data: Mapping[str, Any], name: str, default: _D) -> float | _D:
        if name not in data:
            return default
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(self.source, name, "expected a number >= 0")
        return float(value)

    def optional_string(self, data: Mapping[str, Any], name: str) -> str | None:
        if name not in data:
            return None
        return self.string(data, name, "")

    def string(self, data: Mapping[str, Any], name: str, default: str) -> str:
        if name not in data:
            return default
        value = data[name]
        if not isinstance(value, str) or not value:
            raise ConfigError(self.source, name, "expected a non-empty string")
        return value

    def strings(self, data: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(self.source, key, "expected a list of table names")
        return tuple(value)

    def codes(self, data: Mapping[str, Any], key: str, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if name not in data:
            return default
        value = data[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.source, key, "expected a list of rule codes such as [\"HM101\", \"HM2\"]")
        for code in value:
            if code != "ALL":
                self.check_code(key, code, prefix_allowed=True)
        return tuple(value)

    def check_code(self, key: str, code: str, *, prefix_allowed: bool) -> None:
        known = {rule.code for rule in registered_rules()}
        if prefix_allowed and _CODE_RE.match(code) and any(k.startswith(code) for k in known):
            return
        if code not in known:
            raise ConfigError(self.source, key, f"unknown rule code {code!r}")
