"""A re-check whose revisions are all in ``.helios-cache/`` reads neither Alembic nor a revision's
imports: the configuration's version locations and the history's order come from the cache, and
anything they depend on that changed is read again."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from check_helpers import REPO_ROOT, revision_source, write_project

from helios_migrate.check.project import history_graph, load_project, upgrade_order

INDEX = revision_source("0001", None, 'op.create_index("ix_users_email", "users", ["email"])')
BRANCH_A = revision_source("000a", "0001", 'op.add_column("users", sa.Column("a", sa.Text()))')
BRANCH_B = revision_source("000b", "0001", 'op.add_column("users", sa.Column("b", sa.Text()))')
MERGE = revision_source("0002", None, "pass").replace("down_revision = None", "down_revision = ('000a', '000b')")

_PROBE = """
import json, sys
from helios_migrate.check.formats import OutputFormat, render
from helios_migrate.check.runner import CheckOptions, run_check
report = run_check(CheckOptions(paths=(sys.argv[1],), cache=True, pg_version="16", show_info=True))
print(json.dumps({"alembic": "alembic" in sys.modules, "report": render(report, OutputFormat.JSON)}))
"""


def _probe(root: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(root)], cwd=root, capture_output=True, text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_warm_recheck_does_not_load_alembic_and_reports_the_same(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "proj",
        {"0001_index.py": INDEX, "000a_a.py": BRANCH_A, "000b_b.py": BRANCH_B, "0002_merge.py": MERGE},
    )
    cold = _probe(root)
    assert cold["alembic"] is True
    warm = _probe(root)
    assert warm["alembic"] is False
    assert warm["report"] == cold["report"]
    # A revision changed: it is rendered again (Alembic loaded), the others still replayed.
    path = root / "migrations" / "versions" / "000b_b.py"
    path.write_text(BRANCH_B.replace('"b"', '"bb"'), encoding="utf-8")
    changed = _probe(root)
    assert changed["alembic"] is True
    assert "ADD COLUMN bb" in str(changed["report"]) and "ADD COLUMN bb" not in str(cold["report"])


def test_the_cached_order_and_heads_are_alembics(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "proj",
        {"0001_index.py": INDEX, "000a_a.py": BRANCH_A, "000b_b.py": BRANCH_B, "0002_merge.py": MERGE},
    )
    plain = load_project(root)
    cold = load_project(root, cache=True)
    warm = load_project(root, cache=True)
    assert (root / ".helios-cache" / "layout").is_dir()
    assert plain.version_locations == cold.version_locations == warm.version_locations
    expected = [r.revision for r in upgrade_order(plain)[0]]
    assert [r.revision for r in upgrade_order(cold)[0]] == expected
    assert (root / ".helios-cache" / "history").is_dir()
    assert [r.revision for r in upgrade_order(warm)[0]] == expected
    assert expected[0] == "0001" and expected[-1] == "0002"
    assert history_graph(warm).heads == history_graph(plain).heads == ("0002",)
    # Identities came from the cache: no file was parsed to read them, and each tree is still
    # there when asked for.
    assert warm.revisions == plain.revisions
    assert all(r.parsed is None for r in warm.revisions)
    assert all(r.parsed is not None for r in cold.revisions)
    assert [ast.dump(r.tree) for r in warm.revisions if r.tree] == [ast.dump(r.tree) for r in plain.revisions if r.tree]


def test_a_changed_configuration_or_history_is_read_again(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"0001_index.py": INDEX, "000a_a.py": BRANCH_A})
    assert [r.revision for r in upgrade_order(load_project(root, cache=True))[0]] == ["0001", "000a"]
    # Two heads now: the cached single-head graph is not reused.
    (root / "migrations" / "versions" / "000b_b.py").write_text(BRANCH_B, encoding="utf-8")
    graph = history_graph(load_project(root, cache=True))
    assert sorted(graph.heads) == ["000a", "000b"]
    # The versions moved: the cached locations are not reused.
    (root / "migrations").rename(root / "db")
    (root / "alembic.ini").write_text(
        (root / "alembic.ini").read_text(encoding="utf-8").replace("migrations", "db"), encoding="utf-8"
    )
    moved = load_project(root, cache=True)
    assert moved.version_locations == ((root / "db" / "versions").resolve(),)
    assert len(moved.revisions) == 3
