"""Per-server throughput for the duration model, measured by a short read-only scan.

The duration model (:mod:`helios_migrate.impact`, documented in ``docs/impact.md``) needs one number
per server: how many bytes of heap a sequential scan gets through per second.  Everything else
(rewrites, index builds, batched updates) is expressed as a documented ratio of it.

:func:`calibrate` measures it with a timed ``SELECT count(*)`` over a bounded range of a real
table's pages (a TID range scan from PostgreSQL 14, ``TABLESAMPLE SYSTEM`` before), or over
``pg_attribute`` when no user table is big enough, within about one second.  The result is cached
per server identity (``system_identifier`` from ``pg_control_system()``, version, host and port)
under the user cache directory, so the next run does not scan again.  Read-only: no DDL, no writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .facts import Query, ServerFacts, query_function, read_server
from .sqltext import quote_qualified

CACHE_ENV = "HELIOS_MIGRATE_CACHE_DIR"
CACHE_FILE = "calibration.json"
CACHE_MAX_AGE_S = 7 * 24 * 3600.0

DEFAULT_SCAN_BPS = 300e6
"""Sequential scan throughput assumed without calibration: 300 MB/s, a cached scan on a modest
cloud instance.  Calibration on our test machines measures 0.6-1.5 GB/s for cached data; a cold
network disk can be below 100 MB/s, which the high end of each duration range allows for."""

MIN_SCAN_BPS = 20e6
MAX_CALIBRATION_PAGES = 16384
"""At most 128 MB (with 8 kB blocks) per calibration scan."""
MAX_SCAN_BPS = 5e9


@dataclass(frozen=True)
class ModelConstants:
    """The duration model's ratios and fixed costs (see docs/impact.md); tuned by
    ``bench/impact_accuracy.py`` on PostgreSQL 15 and 18."""

    metadata_s: float = 0.005
    """Fixed cost of a catalog-only statement."""
    step_fixed_s: float = 0.005
    """Fixed cost added to every statement that does work (planning, catalog, commit)."""
    validate_ratio: float = 0.75
    """Scan that evaluates a CHECK expression or NOT NULL per row, relative to count(*)."""
    fk_validate_ratio: float = 0.28
    """Anti-join of a foreign key validation (both tables read), per byte of both heaps."""
    rewrite_ratio: float = 0.025
    """Copy of the heap into a new relfilenode (read, evaluate, write), per heap byte."""
    index_scan_ratio: float = 0.8
    """Heap scan feeding an index build, per heap byte."""
    index_sort_bps_ratio: float = 0.035
    """Sorting and writing the index, per byte of the new index, relative to scan throughput."""
    detoast_ratio: float = 0.4
    """Reading out-of-line (TOAST) values to evaluate an expression key, per TOAST byte."""
    collated_sort_factor: float = 1.5
    """Sorting text keys under a collation costs this much more than fixed-width keys."""
    concurrent_index_factor: float = 1.0
    """CREATE INDEX CONCURRENTLY relative to a plain build (its second scan and validation sort
    measure about as fast as the plain build's single pass with a larger sort)."""
    concurrent_fixed_s: float = 0.03
    """CREATE INDEX CONCURRENTLY's three transactions and waits on an idle server."""
    update_ratio: float = 0.007
    """UPDATE of existing rows (new tuple versions, index entries, WAL), per byte of rows written."""
    update_index_factor: float = 0.25
    """Each index on the table adds this share to an UPDATE's cost (non-HOT updates)."""
    batch_overhead_s: float = 0.01
    """Per batch of a batched backfill (planning, commit), added to its pause."""
    low_factor: float = 0.5
    high_factor: float = 2.5
    """Duration range around the expected value; wider on the high side (cold cache, I/O)."""


MODEL = ModelConstants()


@dataclass(frozen=True)
class Throughput:
    scan_bps: float
    source: str
    """``calibrated``, ``cached`` or ``default``."""
    measured_at: float | None = None
    identity: str | None = None
    detail: str = ""

    @property
    def describe(self) -> str:
        rate = f"{self.scan_bps / 1e6:.0f} MB/s sequential scan"
        if self.source == "default":
            return f"{rate} (default; calibration not run)"
        return f"{rate} ({self.source}{': ' + self.detail if self.detail else ''})"


def default_throughput() -> Throughput:
    return Throughput(DEFAULT_SCAN_BPS, "default")


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("helios-migrate"))
    except ImportError:
        pass
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "helios-migrate"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "helios-migrate"


def server_identity(server: ServerFacts) -> str:
    return f"{server.system_identifier or 'unknown'}|{server.version.num}|{server.host}"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_throughput(identity: str, *, directory: Path | None = None) -> Throughput | None:
    entry = _read_cache((directory or cache_dir()) / CACHE_FILE).get(identity)
    if not isinstance(entry, dict):
        return None
    try:
        at = float(entry["measured_at"])
        bps = float(entry["scan_bps"])
    except (KeyError, TypeError, ValueError):
        return None
    if time.time() - at > CACHE_MAX_AGE_S:
        return None
    return Throughput(bps, "cached", at, identity, str(entry.get("detail", "")))


def store_throughput(result: Throughput, *, directory: Path | None = None) -> None:
    if result.identity is None:
        return
    folder = directory or cache_dir()
    path = folder / CACHE_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        entry = asdict(result)
        entry["source"] = "calibrated"
        data[result.identity] = entry
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only home directory only costs a calibration next time


def _timed(q: Query, sql: str) -> float:
    began = time.perf_counter()
    q(sql, ())
    return time.perf_counter() - began


def measure_scan(q: Query, server: ServerFacts, *, budget_s: float = 1.0) -> tuple[float, str]:
    """Time bounded scans and return ``(bytes per second, what was scanned)``."""
    block = server.block_size
    rows = q(
        "SELECT n.nspname, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'm') AND n.nspname <> ALL(%s) "
        "AND n.nspname NOT LIKE %s AND has_table_privilege(c.oid, 'SELECT') "
        "ORDER BY c.relpages DESC, c.oid LIMIT 1",
        (["pg_catalog", "information_schema"], "pg\\_toast%"),
    )
    overhead = min(_timed(q, "SELECT 1") for _ in range(3))
    deadline = time.perf_counter() + budget_s
    if rows and int(rows[0][2]) >= 256:
        schema, name, pages = str(rows[0][0]), str(rows[0][1]), int(rows[0][2])
        table = quote_qualified(schema, name)
        # Grow the range until one scan takes ~1/8 of the budget (capped at MAX_CALIBRATION_PAGES),
        # then repeat that range and keep the median: robust to a busy machine's outliers.
        n = min(128, pages)
        timings: list[float] = []

        def scan_sql(n: int) -> str:
            if server.version.major >= 14:
                return f"SELECT count(*) FROM {table} WHERE ctid < '({n},0)'::tid"
            pct = min(100.0, 100.0 * n / pages)
            return f"SELECT count(*) FROM {table} TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE (1)"

        while True:
            elapsed = max(_timed(q, scan_sql(n)) - overhead, 1e-6)
            if n >= min(pages, MAX_CALIBRATION_PAGES) or elapsed > budget_s / 8:
                timings.append(elapsed)
                break
            if deadline - time.perf_counter() < elapsed * 8:
                timings.append(elapsed)
                break
            n = min(pages, MAX_CALIBRATION_PAGES, n * 4)
        while len(timings) < 3 and deadline - time.perf_counter() > timings[-1] * 1.5:
            timings.append(max(_timed(q, scan_sql(n)) - overhead, 1e-6))
        timings.sort()
        best = n * block / timings[len(timings) // 2]
        scanned = n
        return best, f"{scanned:,} pages of {schema}.{name}"
    # No user table worth scanning: repeated scans of pg_attribute.
    size = int(q("SELECT pg_relation_size('pg_catalog.pg_attribute')", ())[0][0])
    total_bytes = 0
    total_s = 0.0
    loops = 0
    while time.perf_counter() < deadline - 0.05 and loops < 200 and total_s < budget_s / 3:
        total_s += max(_timed(q, "SELECT count(*) FROM pg_catalog.pg_attribute") - overhead, 1e-6)
        total_bytes += size
        loops += 1
    return (total_bytes / total_s if total_s else DEFAULT_SCAN_BPS), f"pg_attribute x{loops}"


def calibrate(
    conn: Any,
    *,
    budget_s: float = 1.0,
    use_cache: bool = True,
    directory: Path | None = None,
    server: ServerFacts | None = None,
) -> Throughput:
    """Throughput of the server behind ``conn``: from the cache when fresh, else measured (about
    ``budget_s`` seconds of read-only scanning) and cached."""
    q = query_function(conn)
    server = server or read_server(q)
    identity = server_identity(server)
    if use_cache:
        cached = cached_throughput(identity, directory=directory)
        if cached is not None:
            return cached
    previous = q("SELECT current_setting('statement_timeout')", ())[0][0]
    q("SELECT set_config('statement_timeout', %s, false)", (f"{int(max(budget_s, 0.1) * 2000)}ms",))
    try:
        bps, detail = measure_scan(q, server, budget_s=budget_s)
    except Exception as exc:  # a cancelled or refused scan: fall back, say why
        return Throughput(DEFAULT_SCAN_BPS, "default", detail=f"calibration failed: {type(exc).__name__}")
    finally:
        # When the failed scan aborted the transaction there is nothing to restore.
        with contextlib.suppress(Exception):
            q("SELECT set_config('statement_timeout', %s, false)", (str(previous),))
    bps = min(max(bps, MIN_SCAN_BPS), MAX_SCAN_BPS)
    result = Throughput(bps, "calibrated", time.time(), identity, detail)
    if use_cache:
        store_throughput(result, directory=directory)
    return result
