"""Benchmark: ``helios-migrate check`` on the migrations real projects ship, without installing them.

For each project below, the wheel is fetched with ``pip download --no-deps`` into
``bench/.cache/wheels`` (never committed), its migrations folder is copied into a generic Alembic
project (``bench/.cache/projects/<name>``: an ``alembic.ini``, an offline ``env.py`` and the
revision files, nothing else of the package), and then, per project:

* ``helios-migrate check --format json`` (one process, ``--no-cache`` unless ``--cache``): how many
  revisions were rendered, rendered with placeholders for modules that are not installed, or read
  from the source; of the rendered ones, how many ran something that could not be checked
  (``unchk``: a helper of the application, a loop over its data, a plugin's operation, each
  reported as HM904); findings by severity; wall and CPU time;
* the pipeline teams build today: Alembic's offline rendering of each revision (one process that
  loads every revision file on its own and runs its ``upgrade()`` against an offline
  ``MigrationContext``, as ``alembic upgrade --sql`` does, but without letting one failing import
  stop the rest; ``alembic upgrade --sql`` itself stops at the first revision whose import fails)
  writing one SQL file per revision, then ``squawk`` over those files: revisions Alembic rendered,
  squawk's findings, wall and CPU time.

Then, beside the per-project table: every project in one ``check`` call (how several projects
are checked at once, and how the corpus was first measured), and ``check`` on only the revisions
Alembic rendered, one call per project (the same revisions on both sides).

Usage::

    python bench/check_real.py                       # every project
    python bench/check_real.py --only mlflow airflow
    python bench/check_real.py --sample 40 --seed 7  # also print a random sample of findings

``squawk`` comes from ``pip install squawk-cli`` (not a dependency of helios-migrate); without it
that column says so.  The numbers are a benchmark, not a test: CI has no wheel cache.

helios-migrate's own modules are byte-compiled first (``compileall``, as ``pip install`` does for
an installed package; Alembic and SQLAlchemy in site-packages already are): an editable checkout
run with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile ~150 modules from source in every
process.  ``--no-compile`` skips that step.  ``--repeat N`` runs each side N times, alternating,
and keeps each project's fastest CPU (and wall) time: on a shared machine the minimum is the figure
least disturbed by other work.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
WHEELS = CACHE / "wheels"
PROJECTS_DIR = CACHE / "projects"


@dataclass(frozen=True)
class Project:
    name: str
    requirement: str
    versions: str
    """The revision folder inside the wheel."""


PROJECTS: tuple[Project, ...] = (
    Project("mlflow", "mlflow==3.18.0", "mlflow/store/db_migrations/versions"),
    Project("airflow", "apache-airflow-core==3.3.2", "airflow/migrations/versions"),
    Project("superset", "apache-superset==6.1.0", "superset/migrations/versions"),
    Project("prefect", "prefect==3.9.1", "prefect/server/database/_migrations/versions/postgresql"),
    Project("dagster", "dagster==1.13.29", "dagster/_core/storage/alembic/versions"),
    Project("ckan", "ckan==2.12.0", "ckan/migration/versions"),
    Project("indico", "indico==3.2.9", "indico/migrations/versions"),
    Project("lemur", "lemur==1.9.3", "lemur/migrations/versions"),
    Project("zou", "zou==1.0.97", "zou/migrations/versions"),
)

ALEMBIC_INI = "[alembic]\nscript_location = %(here)s/migrations\n"
ENV_PY = '''\
from alembic import context

context.configure(url="postgresql://bench@localhost/bench", literal_binds=True)
with context.begin_transaction():
    context.run_migrations()
'''

# Alembic's offline rendering, one revision at a time, in one process.
ALEMBIC_DRIVER = r'''
import importlib.util, io, sys, warnings, contextlib
from pathlib import Path
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
warnings.simplefilter("ignore")
versions, out = Path(sys.argv[1]), Path(sys.argv[2])
rendered = failed = 0
for n, path in enumerate(sorted(versions.glob("*.py"))):
    buf = io.StringIO()
    ctx = MigrationContext.configure(dialect_name="postgresql", opts={
        "as_sql": True, "output_buffer": buf, "transactional_ddl": True, "literal_binds": True})
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            spec = importlib.util.spec_from_file_location(f"_rev{n}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            with Operations.context(ctx):
                ctx.impl.emit_begin()
                module.upgrade()
                ctx.impl.emit_commit()
    except BaseException:
        failed += 1
        continue
    rendered += 1
    (out / (path.stem + ".sql")).write_text(buf.getvalue())
print(rendered, failed)
'''


def ensure_wheel(project: Project) -> Path:
    dist = project.requirement.split("==")[0].replace("-", "_").lower()
    version = project.requirement.split("==")[1]
    WHEELS.mkdir(parents=True, exist_ok=True)
    for wheel in WHEELS.glob("*.whl"):
        if wheel.name.lower().startswith(f"{dist}-{version}-"):
            return wheel
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(WHEELS), project.requirement],
        check=True,
    )
    return ensure_wheel(project)


def build_project(project: Project) -> Path:
    """The generic Alembic project holding the wheel's revision files (rebuilt every run; its
    ``.helios-cache/`` is kept, so ``--cache`` measures a re-check)."""
    root = PROJECTS_DIR / project.name
    for child in (root.iterdir() if root.is_dir() else ()):
        if child.name != ".helios-cache":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI, encoding="utf-8")
    (root / "migrations" / "env.py").write_text(ENV_PY, encoding="utf-8")
    prefix = project.versions.rstrip("/") + "/"
    with zipfile.ZipFile(ensure_wheel(project)) as wheel:
        for name in wheel.namelist():
            rest = name[len(prefix):]
            if name.startswith(prefix) and rest.endswith(".py") and "/" not in rest:
                (versions / rest).write_bytes(wheel.read(name))
    return root


def _timed(cmd: list[str], **kw: object) -> tuple[subprocess.CompletedProcess[str], float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu


def compile_package() -> None:
    """Byte-compile helios-migrate and its rules, as an installed wheel would be."""
    repo = HERE.parent
    for package in ("helios_migrate", "safety_rules", "alembic_plugin"):
        compileall.compile_dir(str(repo / package), quiet=1)


def run_helios(
    root: Path, *, cache: bool, jobs: int | None = None, paths: list[str] | None = None,
) -> tuple[dict[str, object], float, float]:
    """One ``check`` process over ``paths`` (default: the project at ``root``), run in ``root``."""
    cmd = [sys.executable, "-m", "helios_migrate.cli", "check", *(paths or [str(root)]), "--format", "json",
           "--pg-version", "16", "--show-info"]
    if not cache:
        cmd.append("--no-cache")
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    done, wall, cpu = _timed(cmd, cwd=root)
    if done.returncode not in (0, 1):
        raise SystemExit(f"helios-migrate check {root} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout), wall, cpu


def alembic_rendered(root: Path) -> list[str]:
    """The revision files Alembic's offline rendering rendered (by the last pipeline run)."""
    versions = root / "migrations" / "versions"
    return sorted(str(versions / (sql.stem + ".py")) for sql in (root / "alembic_sql").glob("*.sql"))


def run_alembic_squawk(root: Path, squawk: str | None) -> dict[str, object]:
    out = root / "alembic_sql"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    done, wall, cpu = _timed([sys.executable, "-c", ALEMBIC_DRIVER, str(root / "migrations" / "versions"), str(out)])
    rendered, failed = (int(x) for x in done.stdout.split()[:2]) if done.returncode == 0 else (0, 0)
    result: dict[str, object] = {"rendered": rendered, "failed": failed, "wall": wall, "cpu": cpu}
    if squawk is None:
        return result
    files = sorted(str(p) for p in out.glob("*.sql"))
    sq, sq_wall, sq_cpu = _timed([squawk, "--reporter", "json", "--pg-version", "16.0", *files])
    try:
        findings = json.loads(sq.stdout or "[]")
    except json.JSONDecodeError:
        findings = []
    levels: dict[str, int] = {}
    for f in findings:
        level = str(f.get("level", "?")).lower()
        levels[level] = levels.get(level, 0) + 1
    result.update(wall=wall + sq_wall, cpu=cpu + sq_cpu, squawk=levels)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="project names (default: all)")
    parser.add_argument("--cache", action="store_true", help="let helios-migrate use .helios-cache/")
    parser.add_argument("--sample", type=int, default=0, help="print N random error/warning findings")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=1, help="run each side N times, keep the fastest")
    parser.add_argument("--no-compile", action="store_true", help="do not byte-compile helios-migrate first")
    parser.add_argument("--jobs", type=int, default=None,
                        help="helios-migrate check --jobs (default: its own, one process per CPU)")
    args = parser.parse_args(argv)
    if not args.no_compile:
        compile_package()
    squawk = shutil.which("squawk") or str(Path(sys.executable).with_name("squawk"))
    squawk_exe = squawk if Path(squawk).exists() else None

    header = (f"{'project':<10} {'revs':>5} {'rendered':>8} {'w/ph':>5} {'unchk':>5} {'source':>6} {'%rend':>6} "
              f"{'err':>4} {'warn':>5} {'info':>5} {'wall s':>7} {'cpu s':>6} | "
              f"{'alembic':>7} {'squawk findings':>16} {'wall s':>7} {'cpu s':>6}")
    print(header)
    print("-" * len(header))
    totals = dict(revs=0, rendered=0, ph=0, unchk=0, source=0, err=0, warn=0, info=0,
                  wall=0.0, cpu=0.0, a_rend=0, sq=0, a_wall=0.0, a_cpu=0.0)
    sample_pool: list[tuple[str, dict[str, object]]] = []
    roots: list[Path] = []
    for project in PROJECTS:
        if args.only and project.name not in args.only:
            continue
        root = build_project(project)
        roots.append(root)
        report, wall, cpu = run_helios(root, cache=args.cache, jobs=args.jobs)
        alembic = run_alembic_squawk(root, squawk_exe)
        for _ in range(args.repeat - 1):
            _, again_wall, again_cpu = run_helios(root, cache=args.cache, jobs=args.jobs)
            wall, cpu = min(wall, again_wall), min(cpu, again_cpu)
            again = run_alembic_squawk(root, squawk_exe)
            for key in ("wall", "cpu"):
                alembic[key] = min(float(alembic[key]), float(again[key]))  # type: ignore[arg-type]
        summary = report["summary"]
        assert isinstance(summary, dict)
        revs = int(summary["revisions"])
        states = summary.get("revision_states", {})
        assert isinstance(states, dict)
        rendered = int(states.get("rendered", 0))
        ph = int(states.get("rendered_with_placeholders", 0))
        source = int(states.get("read_from_source", 0))
        pct = 100.0 * (rendered + ph) / revs if revs else 0.0
        from_source = {str(r["path"]) for r in report["revisions"] if r["state"] == "read_from_source"}  # type: ignore[index,union-attr]
        unchk = len({str(f["path"]) for f in report["findings"]  # type: ignore[union-attr]
                     if f["code"] == "HM904" and str(f["path"]) not in from_source})
        sq = alembic.get("squawk")
        sq_total = sum(sq.values()) if isinstance(sq, dict) else None
        print(f"{project.name:<10} {revs:>5} {rendered:>8} {ph:>5} {unchk:>5} {source:>6} {pct:>5.1f}% "
              f"{summary['error']:>4} {summary['warning']:>5} {summary['info']:>5} {wall:>7.2f} {cpu:>6.2f} | "
              f"{alembic['rendered']:>7} {('n/a' if sq_total is None else sq_total):>16} "
              f"{alembic['wall']:>7.2f} {alembic['cpu']:>6.2f}")
        for key, value in (("revs", revs), ("rendered", rendered), ("ph", ph), ("unchk", unchk), ("source", source),
                           ("err", summary["error"]), ("warn", summary["warning"]), ("info", summary["info"]),
                           ("wall", wall), ("cpu", cpu), ("a_rend", alembic["rendered"]), ("sq", sq_total or 0),
                           ("a_wall", alembic["wall"]), ("a_cpu", alembic["cpu"])):
            totals[key] += value  # type: ignore[operator]
        findings = report["findings"]
        assert isinstance(findings, list)
        sample_pool += [(project.name, f) for f in findings if f["severity"] in ("error", "warning")]
    t = totals
    pct = 100.0 * (t["rendered"] + t["ph"]) / t["revs"] if t["revs"] else 0.0
    print("-" * len(header))
    print(f"{'total':<10} {t['revs']:>5} {t['rendered']:>8} {t['ph']:>5} {t['unchk']:>5} {t['source']:>6} {pct:>5.1f}% "
          f"{t['err']:>4} {t['warn']:>5} {t['info']:>5} {t['wall']:>7.2f} {t['cpu']:>6.2f} | "
          f"{t['a_rend']:>7} {t['sq']:>16} {t['a_wall']:>7.2f} {t['a_cpu']:>6.2f}")
    # helios renders the revisions Alembic cannot (placeholders for missing imports, the offline
    # bind): it executes more revision code than the pipeline, so its CPU per revision it rendered
    # is the like-for-like comparison next to the totals.
    done_helios = t["rendered"] + t["ph"]
    if done_helios and t["a_rend"]:
        print(f"CPU per rendered revision: helios {1000 * t['cpu'] / done_helios:.1f} ms "
              f"({done_helios} revisions), Alembic offline + squawk {1000 * t['a_cpu'] / t['a_rend']:.1f} ms "
              f"({t['a_rend']} revisions)")
    if roots:
        _whole_corpus(roots, args, t)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nCPUs: {os.cpu_count()}, load average {load} (1/5/15 min; on a shared machine compare runs made"
          f" in the same minutes, alternating); helios-migrate one process per project"
          f"{' (cache on)' if args.cache else ' (--no-cache)'}"
          f"{'' if args.no_compile else ', its modules byte-compiled first'}"
          f"{f', fastest of {args.repeat} runs per side' if args.repeat > 1 else ''};"
          " 'alembic' = revisions Alembic rendered offline.")
    if args.sample:
        rng = random.Random(args.seed)
        picked = rng.sample(sample_pool, min(args.sample, len(sample_pool)))
        print(f"\nRandom sample of {len(picked)} error/warning findings (seed {args.seed}):")
        for name, f in picked:
            print(f"- [{name}] {f['path']}:{f['line']} {f['code']} {f['severity']}: {f['message']}")
    return 0


def _whole_corpus(roots: list[Path], args: argparse.Namespace, t: dict[str, float]) -> None:
    """The comparisons beside the per-project table: every project in one ``check`` call (how a
    user checks several projects, and how the corpus was first measured), and helios-migrate on
    only the revisions the pipeline rendered (the same revisions on both sides)."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        _, wall, cpu = run_helios(PROJECTS_DIR, cache=args.cache, jobs=args.jobs, paths=[str(r) for r in roots])
        same_wall = same_cpu = 0.0
        for root in roots:
            files = alembic_rendered(root)
            if files:
                _, w, c = run_helios(root, cache=args.cache, jobs=args.jobs, paths=files)
                same_wall, same_cpu = same_wall + w, same_cpu + c
        for key, (w, c) in (("one", (wall, cpu)), ("same", (same_wall, same_cpu))):
            old = best.get(key)
            best[key] = (w, c) if old is None else (min(old[0], w), min(old[1], c))
    print(f"one call over all {len(roots)} projects: helios {best['one'][0]:.2f} s wall {best['one'][1]:.2f} s CPU"
          f" | pipeline (one process per project) {t['a_wall']:.2f} s wall {t['a_cpu']:.2f} s CPU"
          f" | ratio helios/pipeline wall {best['one'][0] / t['a_wall']:.2f}" if t["a_wall"] else "")
    print(f"same revisions (only the {t['a_rend']} Alembic rendered, one call per project): helios"
          f" {best['same'][0]:.2f} s wall {best['same'][1]:.2f} s CPU | pipeline {t['a_wall']:.2f} s wall"
          f" {t['a_cpu']:.2f} s CPU | ratio wall {best['same'][0] / t['a_wall']:.2f}" if t["a_wall"] else "")


if __name__ == "__main__":
    sys.exit(main())
