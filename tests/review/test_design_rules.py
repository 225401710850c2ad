"""The design rules of review (HM613-HM619), and the column-type rules (HM5xx) on a whole schema:
on the models, on a live database (PostgreSQL 15 and 18), and no finding of theirs on examples/shop."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
import sqlalchemy as sa

from helios_migrate.config import Config, config_from_mapping
from helios_migrate.review.engine import ReviewResult, review_schema
from helios_migrate.review.live_facts import (
    MAX_SAMPLED_COLUMNS,
    SAMPLE_ROWS,
    ColumnSampler,
    read_enum_types,
)
from helios_migrate.review.model_facts import enum_types_of_metadata
from helios_migrate.schema_catalog import read_schema
from helios_migrate.schema_model import schema_from_metadata
from helios_migrate.versions import PgVersion
from safety_rules.comma_separated_list import judge, list_items
from safety_rules.repeated_column_group import groups

PG16 = PgVersion.parse("16")
DESIGN = {f"HM6{i}" for i in range(13, 20)}
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def _models(metadata: sa.MetaData, config: Config | None = None) -> ReviewResult:
    return review_schema(schema_from_metadata(metadata), config or Config(), PG16,
                         enum_types=enum_types_of_metadata(metadata))


def _live(url: str, config: Config | None = None) -> ReviewResult:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.read_only = True
        schema = read_schema(conn, label="test")
        return review_schema(
            schema, config or Config(), PgVersion.parse(schema.server_version_num or 0),
            enum_types=read_enum_types(conn), sampler=ColumnSampler(conn, schema),
        )


def _found(result: ReviewResult) -> set[tuple[str, str]]:
    return {(rf.finding.code, rf.finding.location.path) for rf in result.findings}


def _design(result: ReviewResult) -> set[tuple[str, str]]:
    return {(code, path) for code, path in _found(result) if code in DESIGN}


def _id(name: str = "id") -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, sa.Identity(), primary_key=True)


# --- the pieces -------------------------------------------------------------------------------


def test_repeated_groups_are_runs_of_numbers_after_a_real_word() -> None:
    assert groups(["phone1", "phone2", "phone3", "name"]) == [["phone1", "phone2", "phone3"]]
    assert groups(["address_line_1", "address_line_2"]) == [["address_line_1", "address_line_2"]]
    assert groups(["item1_price", "item2_price", "item1_qty"]) == [["item1_price", "item2_price"]]
    # not groups: a number that is part of the name, single letters, gaps, a lone member
    assert groups(["ipv4", "ipv6", "sha1", "sha256", "x1", "x2", "md5", "level1", "level3", "utf8"]) == []


def test_comma_lists_are_told_from_prose_and_numbers() -> None:
    assert list_items("red,green,blue") == 3
    assert list_items("12, 40, 7") == 3
    assert list_items("a@x.org,b@y.org") == 2
    for not_a_list in ["1,000", "1,234,567.50", "3,5", "Leave it at the door, please", "hello", "a,,b", "x, "]:
        assert list_items(not_a_list) == 0, not_a_list
    assert judge(["a,b"] * 5 + ["plain"] * 5) == (5, 10, 2)
    assert judge(["a,b"] * 4) is None  # too few
    assert judge(["a,b"] * 5 + ["plain"] * 6) is None  # under half


# --- models -----------------------------------------------------------------------------------


def test_design_rules_on_the_models() -> None:
    m = sa.MetaData()
    sa.Table("customers", m, _id(), sa.Column("email", sa.Text, nullable=False), sa.Column("name", sa.Text))
    sa.Table("products", m, _id(), sa.Column("sku", sa.Text, nullable=False, unique=True))
    sa.Table(
        "orders", m, _id(),
        sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("email", sa.Text),  # a copy of customers.email
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.Enum("new", "paid", name="order_status"), nullable=False),
        sa.Column("phone1", sa.Text), sa.Column("phone2", sa.Text),
        sa.Column("product_ids", sa.Text),
        sa.Column("Placed At", sa.DateTime(timezone=True)),
        sa.Column("client", sa.BigInteger, sa.ForeignKey("products.id"), index=True),
    )
    sa.Table("invoice", m, _id())
    found = _design(_models(m))
    assert found == {
        ("HM613", "orders.status"),
        ("HM614", "orders.phone1"),
        ("HM615", "orders.product_ids"),
        ("HM616", "orders.email"),
        ("HM617", "invoice"),
        ("HM618", "orders.Placed At"),
        ("HM619", "orders.client"),
    }, found
    by_code = {rf.finding.code: rf for rf in _models(m).findings}
    assert "phone1, phone2" in by_code["HM614"].finding.message and "order_phones" in by_code["HM614"].finding.help
    assert str(by_code["HM615"].finding.severity) == "info"  # a name, not values
    assert "new, paid" in by_code["HM613"].finding.message
    assert "customer_id" not in by_code["HM616"].finding.message.split("through")[0]


def test_role_names_self_references_and_bookkeeping_columns_are_not_reported() -> None:
    m = sa.MetaData()
    sa.Table("users", m, _id(), sa.Column("name", sa.Text), sa.Column("created_at", sa.DateTime(timezone=True)),
             sa.Column("active", sa.Boolean), sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id")))
    sa.Table("tenants", m, _id(), sa.Column("name", sa.Text))
    sa.Table(
        "transfers", m, _id(),
        sa.Column("sender_id", sa.BigInteger, sa.ForeignKey("users.id"), index=True),
        sa.Column("receiver_id", sa.BigInteger, sa.ForeignKey("users.id"), index=True),
        sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("active", sa.Boolean),
        sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), index=True),
    )
    sa.Table("categories", m, _id(), sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("categories.id"), index=True),
             sa.Column("name", sa.Text))
    sa.Table("user_profiles", m, sa.Column("id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True),
             sa.Column("billing_user_id", sa.BigInteger, sa.ForeignKey("users.id"), index=True))
    sa.Table("audit_log", m, _id(), sa.Column("message", sa.Text))
    sa.Table("schema_migrations", m, _id())
    assert _design(_models(m)) == set()


def test_design_findings_are_suppressible_per_table_and_column() -> None:
    m = sa.MetaData()
    sa.Table("contacts", m, _id(), sa.Column("phone1", sa.Text), sa.Column("phone2", sa.Text),
             sa.Column("Email", sa.Text))
    config = config_from_mapping({"review": {"ignore": ["HM614:contacts", "HM618:contacts.Email"]}})
    result = _models(m, config)
    assert _design(result) == set()
    assert {str(entry) for _, entry in result.suppressed} == {"HM614:contacts", "HM618:contacts.Email"}
    config = config_from_mapping({"review": {"ignore": ["HM614:contacts.phone1"]}})
    assert _design(_models(m, config)) == {("HM618", "contacts.Email")}


def _shop(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"shop_{name}", SHOP / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["models", "models_v2"])
def test_no_design_finding_on_the_shop_models_but_the_enum_note(name: str) -> None:
    metadata = _shop(name).metadata
    assert _design(_models(metadata)) == {("HM613", "orders.status")}


# --- live ---------------------------------------------------------------------------------------

LIVE_SQL = """
CREATE TYPE ticket_status AS ENUM ('open', 'pending', 'closed');
CREATE SCHEMA crm;
CREATE TYPE crm."Tier" AS ENUM ('gold', 'silver');
CREATE TABLE crm.accounts (id bigint PRIMARY KEY, tier crm."Tier");
CREATE TABLE customers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email text NOT NULL,
                        nick varchar(30), seen_at timestamp, prefs json);
CREATE TABLE tickets (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status ticket_status NOT NULL DEFAULT 'open',
    email text,
    tags text,
    note text,
    amount_total text,
    phone1 text, phone2 text
);
CREATE INDEX tickets_customer_id_idx ON tickets (customer_id);
INSERT INTO customers (email) SELECT 'c' || g || '@example.org' FROM generate_series(1, 50) g;
INSERT INTO tickets (customer_id, tags, note, amount_total)
SELECT 1 + g % 50,
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'billing,urgent,vip' END,
       'Call back tomorrow, after ' || g || ' pm',
       '1,' || lpad((g % 1000)::text, 3, '0')
  FROM generate_series(1, 300) g;
"""


def test_live_design_and_type_rules(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(LIVE_SQL)
    result = _live(fresh_db)
    found = _found(result)
    assert _design(result) == {
        ("HM613", "public.tickets.status"),
        ("HM613", "crm.accounts.tier"),  # a quoted type name in another schema
        ("HM614", "public.tickets.phone1"),
        ("HM615", "public.tickets.tags"),
        ("HM616", "public.tickets.email"),
    }, _design(result)
    # the column-type rules of check, asked of every live column
    assert {("HM503", "public.customers.nick"), ("HM504", "public.customers.seen_at"),
            ("HM506", "public.customers.prefs")} <= found
    tags = next(rf for rf in result.findings if rf.finding.code == "HM615")
    assert str(tags.finding.severity) == "warning"
    assert f"of {SAMPLE_ROWS} sampled values (up to 3 items)" in tags.finding.message
    assert "billing" not in tags.finding.message  # no value is printed
    status = next(rf for rf in result.findings if rf.finding.location.path == "public.tickets.status")
    assert "open, pending, closed" in status.finding.message


def test_sampling_is_read_only_bounded_and_survives_a_refused_read(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE big (id bigint PRIMARY KEY, tags text);
            INSERT INTO big SELECT g, 'a,b' FROM generate_series(1, 20000) g;
            ANALYZE big;
            CREATE TABLE secret (id bigint PRIMARY KEY, tags text);
            INSERT INTO secret SELECT g, 'a,b' FROM generate_series(1, 10) g;
        """)
        role = f"reviewer_{conn.info.dbname}"
        conn.execute(f"CREATE ROLE {role}; GRANT SELECT ON big TO {role}")
        schema = read_schema(conn)
        conn.execute("SET default_transaction_read_only = on")
        sampler = ColumnSampler(conn, schema)
        big = next(t.name for t in schema.tables if t.name.name == "big")
        values = sampler(big, "tags")
        assert values is not None and 0 < len(values) <= SAMPLE_ROWS
        conn.execute(f"SET ROLE {role}")
        secret = next(t.name for t in schema.tables if t.name.name == "secret")
        assert sampler(secret, "tags") is None
        assert len(sampler.failed) == 1 and "permission denied" in sampler.failed[0]
        conn.execute("RESET ROLE")
        sampler._taken = MAX_SAMPLED_COLUMNS
        assert sampler(big, "tags") is None and sampler.skipped == 1
        conn.execute("RESET default_transaction_read_only")
        conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_live_shop_schema_has_no_design_finding_but_the_enum_note(fresh_db: str) -> None:
    """The shop's schema on a server, with notes written as people write them (commas included)."""
    metadata = _shop("models_v2").metadata
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(sa.text("""
            INSERT INTO customers (email, name) SELECT 'c' || g || '@example.org', 'Customer ' || g
              FROM generate_series(1, 100) g;
            INSERT INTO products (sku, name, price) SELECT 'SKU-' || g, 'Product ' || g, 9.99
              FROM generate_series(1, 100) g;
            INSERT INTO orders (customer_id, total, note)
            SELECT 1 + g % 100, 10, CASE g % 3 WHEN 0 THEN 'leave at the door, ring twice'
                                              WHEN 1 THEN 'gift, wrap it' ELSE NULL END
              FROM generate_series(1, 500) g;
        """))
    engine.dispose()
    assert _design(_live(fresh_db)) == {("HM613", "public.orders.status")}


def test_alembic_version_table_is_the_tools_not_the_projects() -> None:
    m = sa.MetaData()
    sa.Table("alembic_version", m, sa.Column("version_num", sa.String(32), primary_key=True))
    sa.Table("spatial_ref_sys", m, sa.Column("srid", sa.Integer, primary_key=True), sa.Column("srtext", sa.String(2048)))
    sa.Table("version", m, _id(), sa.Column("label", sa.String(32)))
    assert {path for _, path in _found(_models(m))} == {"version.label"}  # HM503 on the project's own table


def test_live_review_command_samples_values_and_says_what_it_could_not_read(fresh_db: str) -> None:
    """``helios-migrate review --database-url`` end to end, as a role that may read one table of
    two: the readable column's lists are found, the other sample is named in a note, nothing fails."""
    import json
    import subprocess

    from psycopg.conninfo import make_conninfo

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        role = f"auditor_{conn.info.dbname}"
        conn.execute(f"""
            CREATE TYPE mood AS ENUM ('ok', 'meh');
            CREATE TABLE posts (id bigint PRIMARY KEY, tags text, feeling mood);
            INSERT INTO posts SELECT g, 'red,green', 'ok' FROM generate_series(1, 30) g;
            CREATE TABLE vault (id bigint PRIMARY KEY, codes text);
            INSERT INTO vault SELECT g, 'x,y' FROM generate_series(1, 30) g;
            CREATE ROLE {role} LOGIN;
            GRANT SELECT ON posts TO {role};
        """)
    try:
        url = make_conninfo(fresh_db, user=role)
        out = subprocess.run(
            [sys.executable, "-m", "helios_migrate", "review", "--database-url", url, "--format", "json"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        found = {(f["code"], f"{f['table']}.{f['column_name']}") for f in doc["findings"]}
        assert ("HM615", "public.posts.tags") in found and ("HM613", "public.posts.feeling") in found
        assert not any(code == "HM615" and "vault" in path for code, path in found)
        text = subprocess.run(
            [sys.executable, "-m", "helios_migrate", "review", "--database-url", url],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert "note: value sample not read (public.vault.codes: permission denied" in text.stdout
        # --no-sample reads no values: judged by the name only (info), and nothing to note
        unsampled = subprocess.run(
            [sys.executable, "-m", "helios_migrate", "review", "--database-url", url, "--no-sample", "--show-info"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert "public.posts.tags: HM615 [info]" in unsampled.stdout and "sampled values" not in unsampled.stdout
        assert "value sample not read" not in unsampled.stdout
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
