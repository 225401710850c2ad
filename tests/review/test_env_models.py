"""``review`` without --models: the models env.py gives Alembic (target_metadata), read without
running env.py, on a project made by ``alembic init``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helios_migrate.review.env_models import EnvModelsError, models_of_env

MODELS = '''
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
'''

MARKER = "env_py_ran.txt"


def _alembic_project(root: Path, env_edit: tuple[str, str]) -> Path:
    """``alembic init migrations`` in ``root``, the models in the package ``app``, env.py edited."""
    subprocess.run([sys.executable, "-m", "alembic", "init", "migrations"], cwd=root, check=True,
                   capture_output=True, timeout=60)
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("", encoding="utf-8")
    (root / "app" / "models.py").write_text(MODELS, encoding="utf-8")
    env = root / "migrations" / "env.py"
    source = env.read_text(encoding="utf-8")
    assert env_edit[0] in source
    # Running env.py would leave this file behind: review must only read it.
    source = f"open({MARKER!r}, 'w').close()\n" + source.replace(*env_edit)
    env.write_text(source, encoding="utf-8")
    return root


def _review(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", "review", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )


def test_review_reads_target_metadata_from_env_py(tmp_path: Path) -> None:
    root = _alembic_project(
        tmp_path, ("target_metadata = None", "from app.models import Base\ntarget_metadata = Base.metadata")
    )
    out = _review(root, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"] == "models" and doc["reviewed"] == "app.models:Base.metadata"
    assert ("HM603", "orders") in {(f["code"], f["table"]) for f in doc["findings"]}
    assert not (root / MARKER).exists(), "env.py was run"


def test_alembic_ini_elsewhere_and_module_import_form(tmp_path: Path) -> None:
    root = _alembic_project(
        tmp_path, ("target_metadata = None", "import app.models\ntarget_metadata = app.models.Base.metadata")
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # prepend_sys_path = . is relative to the working directory (as for alembic itself): run from
    # the project, name the ini explicitly.
    out = _review(root, "--alembic-ini", str(root / "alembic.ini"), "--fail-on", "warning")
    assert out.returncode == 1, out.stderr  # the HM603 warning
    assert "orders.customer_id: HM603 [warning]" in out.stdout and "app:models.Base.metadata" in out.stdout
    missing = _review(elsewhere, "--alembic-ini", str(elsewhere / "alembic.ini"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_models_option_wins_over_env_py(tmp_path: Path) -> None:
    root = _alembic_project(tmp_path, ("target_metadata = None", "target_metadata = build()"))
    (root / "other.py").write_text("import sqlalchemy as sa\nmetadata = sa.MetaData()\n", encoding="utf-8")
    out = _review(root, "--models", "other:metadata")
    assert out.returncode == 0, out.stderr and "No findings in 0 table(s) of other:metadata" in out.stdout


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("target_metadata = None", "target_metadata is None"),
        ("target_metadata = build_metadata()", "target_metadata is computed (build_metadata())"),
        ("import sqlalchemy as sa\nmeta = sa.MetaData()\ntarget_metadata = meta", "defined inside env.py"),
    ],
)
def test_unreadable_target_metadata_is_a_usage_error(tmp_path: Path, replacement: str, message: str) -> None:
    root = _alembic_project(tmp_path, ("target_metadata = None", replacement))
    out = _review(root)
    assert out.returncode == 2, out.stdout
    assert message in out.stderr and "env.py:" in out.stderr and "Traceback" not in out.stderr
    assert not (root / MARKER).exists()


def test_forms_of_target_metadata(tmp_path: Path) -> None:
    env = tmp_path / "env.py"
    cases = {
        "from app import models as m\nt = m.Base\ntarget_metadata = t.metadata": ("app:models.Base.metadata",),
        "from app.db import a, b\ntarget_metadata = [a.metadata, b]": ("app.db:a.metadata", "app.db:b"),
        "import app.models as am\ndef run():\n    context.configure(target_metadata=am.metadata)\n":
            ("app.models:metadata",),
    }
    for source, expected in cases.items():
        env.write_text(source, encoding="utf-8")
        assert models_of_env(env).references == expected, source
    env.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(EnvModelsError, match="no target_metadata"):
        models_of_env(env)
