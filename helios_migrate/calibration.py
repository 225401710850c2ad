"""Per-server throughput for the duration model, measured by a short read-only scan.

The duration model (:mod:`helios_migrate.impact`, documented in ``docs/impact.md``) needs one number
per server: how many bytes of heap a sequential scan gets through per second.  Everything else
(rewrites, index builds, batched updates) is expressed as a documented ratio of it.

:func:`calibrate` measures it with a timed ``SELECT count(*)`` over a bounded range of a real
table's pages (a TID range scan from PostgreSQL 14, ``TABLESAMPLE SYSTEM`` before), or over
``pg_attribute`` when no user table is big enough, within about one second; and how long a
statement's round trip takes and how fast the server sorts each kind of index key (integers, text
under the database's collation, bytewise text), by sorting generated values (no table is read).
The result is cached
per server identity (``system_identifier`` from ``pg_control_system()``, version, host and port)
under the user cache directory, so the next run does not scan again.  Read-only: no DDL, no writes.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
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

SORT_SAMPLE_ROWS = 100_000
"""Rows of generated keys each sort calibration sorts (a few tens of milliseconds each)."""


class KeyKind(str, enum.Enum):
    """What an index key costs to sort: comparisons differ by an order of magnitude between kinds."""

    FIXED = "fixed"
    """Fixed-width, compared by value or memcmp: integers, timestamps, dates, uuid, numeric."""
    TEXT = "text"
    """text / varchar / char under a linguistic collation (strcoll, abbreviated keys)."""
    TEXT_BYTEWISE = "text bytewise"
    """text under the "C" or "POSIX" collation: compared as bytes."""


DEFAULT_SORT_ROW_S: dict[KeyKind, float] = {
    KeyKind.FIXED: 0.17e-6,
    KeyKind.TEXT: 0.8e-6,
    KeyKind.TEXT_BYTEWISE: 0.55e-6,
}
"""Seconds per row to sort SORT_SAMPLE_ROWS keys of each kind (32-byte text keys), without
calibration: measured on a two-core test machine (PostgreSQL 15 and 18)."""
SORT_TEXT_WIDTH = 33
"""Average width (bytes, ``pg_stats.avg_width``) of the text keys the sort calibration sorts."""
DEFAULT_STATEMENT_S = 0.002
"""Round trip, parse and commit of one statement without calibration."""


@dataclass(frozen=True)
class ModelConstants:
    """The duration model's ratios and fixed costs (see docs/impact.md); tuned by
    ``bench/impact_accuracy.py`` on PostgreSQL 15 and 18."""

    metadata_s: float = 0.005
    """Fixed cost of a catalog-only statement."""
    step_fixed_s: float = 0.001
    """Fixed cost added to every statement that does work (catalog, commit), on top of the
    calibrated round trip (:attr:`Throughput.statement_s`)."""
    validate_ratio: float = 0.75
    """Scan that evaluates a CHECK expression or NOT NULL per row, relative to count(*)."""
    fk_row_sorts: float = 0.25
    """A foreign key validation's hash probe per row of both tables, in units of the calibrated
    per-row sort of a fixed key (its heaps are read at ``validate_ratio``)."""
    rewrite_ratio: float = 0.025
    """ALTER TABLE's copy of the heap into a new relfilenode (every row deformed, evaluated and
    formed again), per heap byte."""
    copy_ratio: float = 0.09
    """VACUUM FULL / CLUSTER's copy of the heap (tuples copied as they are), per heap byte."""
    toast_copy_ratio: float = 0.025
    """Every rewrite re-inserts each out-of-line value into the new TOAST table (also when the
    changed column is not TOASTed: the new heap needs its own TOAST relation), per TOAST byte."""
    index_scan_ratio: float = 0.8
    """Heap scan feeding an index build, per heap byte."""
    index_write_ratio: float = 0.055
    """Writing the built index, per byte of index, relative to scan throughput."""
    index_row_sorts: float = 0.75
    """Forming and inserting one index tuple, in units of the calibrated per-row sort of a fixed
    key (a CPU-speed measure)."""
    extra_key_factor: float = 0.25
    """Each key column after the first adds this share to the sort (compared on ties only)."""
    detoast_ratio: float = 0.4
    """Reading out-of-line (TOAST) values to evaluate an expression key, per TOAST byte."""
    concurrent_index_factor: float = 1.0
    """CREATE INDEX CONCURRENTLY relative to a plain build (its second scan and validation sort
    measure about as fast as the plain build's single pass with a larger sort)."""
    concurrent_fixed_s: float = 0.03
    """CREATE INDEX CONCURRENTLY's three transactions and waits on an idle server."""
    update_ratio: float = 0.0053
    """UPDATE of existing rows (find, lock, write the new version and its WAL), per byte of rows
    written."""
    index_insert_sorts: float = 20.0
    """Inserting one entry into one index for a non-HOT update (descent, page lock, WAL), in units
    of the calibrated per-row sort of a fixed key."""
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
    statement_s: float = DEFAULT_STATEMENT_S
    """One statement's round trip (``SELECT 1``), the floor of every step's duration."""
    sort_row_s: dict[str, float] = field(default_factory=lambda: {k.value: v for k, v in DEFAULT_SORT_ROW_S.items()})
    """Seconds per row to sort :data:`SORT_SAMPLE_ROWS` keys, by :class:`KeyKind` value."""

    @property
    def describe(self) -> str:
        rate = f"{self.scan_bps / 1e6:.0f} MB/s sequential scan"
        if self.source == "default":
            return f"{rate} (default; calibration not run)"
        return f"{rate} ({self.source}{': ' + self.detail if self.detail else ''})"

    def sort_s(self, kind: KeyKind, rows: float, *, width: float | None = None) -> float:
        """Seconds to sort ``rows`` keys of ``kind``: the calibrated cost per row, scaled by
        ``log(rows)`` (comparisons per row of a merge sort) and, for text, by the key width to the
        power 0.4 (a longer key compares further only when its prefix ties)."""
        if rows <= 1:
            return 0.0
        per_row = self.sort_row_s.get(kind.value, DEFAULT_SORT_ROW_S[kind])
        scale = math.log2(max(rows, 2)) / math.log2(SORT_SAMPLE_ROWS)
        if kind is not KeyKind.FIXED and width:
            scale *= (max(width, 1.0) / SORT_TEXT_WIDTH) ** 0.4
        return rows * per_row * scale


def default_throughput() -> Throughput:
    return Throughput(DEFAULT_SCAN_BPS, "default")


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    try:
        import platformdirs  # lazy: optional; without it the cache falls back below

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
    sorts = entry.get("sort_row_s")
    if not isinstance(sorts, dict) or set(sorts) != {k.value for k in KeyKind}:
        return None  # written by a version without key-kind calibration: measure again
    try:
        statement_s = float(entry["statement_s"])
        sort_row_s = {str(k): float(v) for k, v in sorts.items()}
    except (KeyError, TypeError, ValueError):
        return None
    return Throughput(bps, "cached", at, identity, str(entry.get("detail", "")), statement_s, sort_row_s)


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
    overhead = measure_statement(q)

    def net(elapsed: float) -> float:
        # A round trip that stalled on a busy machine must not eat the scan it is subtracted
        # from (that once reported a 31 MB scan at the 5 GB/s cap): at most a fifth of it.
        return max(elapsed - min(overhead, elapsed * 0.2), 1e-6)

    deadline = time.perf_counter() + budget_s
    if rows and int(rows[0][2]) >= 256:
        schema, name, pages = str(rows[0][0]), str(rows[0][1]), int(rows[0][2])
        table = quote_qualified(schema, name)
        # Grow the range until one scan takes ~1/8 of the budget (capped at MAX_CALIBRATION_PAGES),
        # then repeat that range.
        n = min(128, pages)
        timings: list[float] = []

        def scan_sql(n: int) -> str:
            if server.version.major >= 14:
                return f"SELECT count(*) FROM {table} WHERE ctid < '({n},0)'::tid"
            pct = min(100.0, 100.0 * n / pages)
            return f"SELECT count(*) FROM {table} TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE (1)"

        while True:
            elapsed = net(_timed(q, scan_sql(n)))
            if n >= min(pages, MAX_CALIBRATION_PAGES) or elapsed > budget_s / 8:
                timings.append(elapsed)
                break
            if deadline - time.perf_counter() < elapsed * 8:
                timings.append(elapsed)
                break
            n = min(pages, MAX_CALIBRATION_PAGES, n * 4)
        # The median of several repetitions: the throughput under the server's present load
        # (a step runs under that load too), robust to one outlier either way.
        while len(timings) < 7 and deadline - time.perf_counter() > timings[-1] * 1.5:
            timings.append(net(_timed(q, scan_sql(n))))
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
        total_s += net(_timed(q, "SELECT count(*) FROM pg_catalog.pg_attribute"))
        total_bytes += size
        loops += 1
    return (total_bytes / total_s if total_s else DEFAULT_SCAN_BPS), f"pg_attribute x{loops}"


_SORT_KEYS: dict[KeyKind, str] = {
    KeyKind.FIXED: "mod(g * 7919, {n})",
    KeyKind.TEXT: "md5(g::text)",
    KeyKind.TEXT_BYTEWISE: 'md5(g::text) COLLATE "C"',
}


def measure_statement(q: Query) -> float:
    """One statement's round trip: the fastest of a few ``SELECT 1``."""
    return min(_timed(q, "SELECT 1") for _ in range(5))


def measure_sorts(
    q: Query, *, rows: int = SORT_SAMPLE_ROWS, repeats: int = 5, max_repeats: int = 9, budget_s: float = 2.0
) -> dict[str, float]:
    """Seconds per row to sort ``rows`` generated keys of each :class:`KeyKind` under the
    database's default collation.  Read-only (``generate_series``), no table is touched.

    One round times, for every kind back to back, generating the keys unsorted and sorting them;
    a kind's cost is the difference.  Rounds repeat (at least ``repeats``, more while within
    ``budget_s``, at most ``max_repeats``).  The fixed-width cost is the median of its rounds; every
    other kind is the fixed-width cost times the median of its ratio to the fixed-width sort of
    the same round, so load that slows a whole round (a busy shared machine) cancels out."""
    kinds = list(_SORT_KEYS)
    rounds: list[dict[KeyKind, float]] = []
    began = time.perf_counter()
    while len(rounds) < max(repeats, 1) or (
        len(rounds) < max_repeats and time.perf_counter() - began < budget_s
    ):
        one: dict[KeyKind, float] = {}
        for kind in kinds:
            key = _SORT_KEYS[kind].format(n=rows)
            source = f"SELECT {key} AS k FROM generate_series(1, {int(rows)}) g"
            gen = _timed(q, f"SELECT count(*) FROM ({source} OFFSET 0) s")
            sort = _timed(q, f"SELECT count(*) FROM ({source} ORDER BY 1 OFFSET 0) s")
            # Generating can never be most of sorting the same keys: a slow first half of a
            # pair is load, not work.
            one[kind] = max(sort - gen, sort * 0.3)
        rounds.append(one)

    def median(values: list[float]) -> float:
        values = sorted(values)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    fixed = median([r[KeyKind.FIXED] for r in rounds])
    out = {KeyKind.FIXED.value: fixed / rows}
    for kind in kinds:
        if kind is not KeyKind.FIXED:
            out[kind.value] = fixed * median([r[kind] / r[KeyKind.FIXED] for r in rounds]) / rows
    return out


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
    # The calibration scan must be one plain, serial scan of heap pages: a parallel plan measures
    # worker start-up (4x too slow on a wide table), an index-only scan measures the index.
    session = {
        # Every query here is bounded (128 MB of pages, 100,000 generated keys); the timeout only
        # guards against a server far slower than expected.
        "statement_timeout": f"{int(max(budget_s * 2, 10.0) * 1000)}ms",
        "max_parallel_workers_per_gather": "0",
        "enable_indexonlyscan": "off",
        "enable_indexscan": "off",
        "enable_bitmapscan": "off",
    }
    previous = {name: q("SELECT current_setting(%s)", (name,))[0][0] for name in session}
    for name, value in session.items():
        q("SELECT set_config(%s, %s, false)", (name, value))
    try:
        try:
            bps, detail = measure_scan(q, server, budget_s=budget_s)
            statement_s = measure_statement(q)
        except Exception as exc:  # a cancelled or refused scan: fall back, say why
            return Throughput(DEFAULT_SCAN_BPS, "default", detail=f"calibration failed: {type(exc).__name__}")
        try:
            sort_row_s = measure_sorts(q)
        except Exception as exc:  # the scan stands; sorts keep their documented defaults
            sort_row_s = {k.value: v for k, v in DEFAULT_SORT_ROW_S.items()}
            detail += f"; sort costs default ({type(exc).__name__})"
    finally:
        # When a failed query aborted the transaction there is nothing to restore.
        with contextlib.suppress(Exception):
            for name, value in previous.items():
                q("SELECT set_config(%s, %s, false)", (name, str(value)))
    bps = min(max(bps, MIN_SCAN_BPS), MAX_SCAN_BPS)
    result = Throughput(bps, "calibrated", time.time(), identity, detail, statement_s, sort_row_s)
    if use_cache:
        store_throughput(result, directory=directory)
    return result
