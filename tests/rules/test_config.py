"""``[tool.helios-migrate]`` configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from helios_migrate.changes import QualifiedName
from helios_migrate.config import Config, ConfigError, config_from_mapping, load_config
from helios_migrate.findings import Severity
from helios_migrate.versions import PgVersion


def _write(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "pyproject.toml"
    file.write_text(body, encoding="utf-8")
    return file


def test_defaults() -> None:
    config = Config()
    assert config.pg_version is None and config.fail_on is Severity.ERROR
    assert (config.lock_timeout, config.statement_timeout) == ("2s", "30s")
    assert (config.lock_retries, config.backfill_batch_size, config.backfill_pause_ms) == (5, 10000, 50)
    assert config.rule_enabled("HM101")


def test_full_configuration(tmp_path: Path) -> None:
    file = _write(tmp_path, """
[tool.helios-migrate]
pg_version = "14.2"
fail_on = "warning"
lock_timeout = "500ms"
backfill_batch_size = 5000

[tool.helios-migrate.rules]
select = ["HM1", "HM4"]
ignore = ["HM402"]
severity = { HM102 = "error" }

[tool.helios-migrate.tables]
small = ["countries", "public.flags"]
hot = ["orders"]

[tool.helios-migrate.llm]
model = "gpt-x"
""")
    config = load_config(file)
    assert config.pg_version == PgVersion(14, 2)
    assert config.fail_on is Severity.WARNING and config.fails(Severity.WARNING)
    assert config.lock_timeout == "500ms" and config.backfill_batch_size == 5000
    assert config.rule_enabled("HM101") and config.rule_enabled("HM401")
    assert not config.rule_enabled("HM402") and not config.rule_enabled("HM201")
    assert config.severity_for("HM102", Severity.WARNING) is Severity.ERROR
    assert config.tables.is_small(QualifiedName("countries", "public"))
    assert config.tables.is_small(QualifiedName("flags"))
    assert not config.tables.is_small(QualifiedName("flags", "other"))
    assert config.tables.is_hot(QualifiedName("orders"))
    assert config.sections["llm"]["model"] == "gpt-x"
    assert config.source == str(file)


def test_found_in_a_parent_directory(tmp_path: Path) -> None:
    _write(tmp_path, '[tool.helios-migrate]\npg_version = 15\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert load_config(start=nested).pg_version == PgVersion(15, 0, minor_known=False)


def test_no_table_gives_defaults(tmp_path: Path) -> None:
    _write(tmp_path, "[project]\nname = 'x'\n")
    assert load_config(start=tmp_path) == Config(source=str(tmp_path / "pyproject.toml"))


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('pg_version = "nine"', "pg_version"),
        ('pg_version = "12"', "pg_version"),
        ('fail_on = "fatal"', "fail_on"),
        ('lock_timeout = "soon"', "lock_timeout"),
        ("lock_retries = -1", "lock_retries"),
        ('colour = "red"', "colour"),
        ('[tool.helios-migrate.rules]\nselect = ["HM999"]', "rules.select"),
        ('[tool.helios-migrate.rules]\nselekt = ["HM1"]', "rules.selekt"),
        ('[tool.helios-migrate.rules]\nseverity = { HM101 = "loud" }', "rules.severity.HM101"),
        ('[tool.helios-migrate.tables]\nsmall = "orders"', "tables.small"),
        ('[tool.helios-migrate.tables]\nsmal = ["orders"]', "tables.smal"),
        ('[tool.helios-migrate.review]\nmodel = "app.models:metadata"', "review.model"),
        ('[tool.helios-migrate.autogenrate]\nimpact_header = false', "autogenrate"),
        ('[tool.helios-migrate.rule]\nignore = ["HM503"]', "rule"),
        ("llm = 3", "llm"),
    ],
)
def test_invalid_configuration_names_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    file = _write(tmp_path, "[tool.helios-migrate]\n" + body + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert info.value.key == key
    assert str(file) in str(info.value) and key in str(info.value)


def test_an_unknown_section_names_the_known_ones(tmp_path: Path) -> None:
    file = _write(tmp_path, "[tool.helios-migrate.autogenrate]\nimpact_header = false\n")
    with pytest.raises(ConfigError, match="unknown section") as info:
        load_config(file)
    assert "autogenerate" in str(info.value) and "llm" in str(info.value)


def test_the_llm_section_is_kept_for_its_command(tmp_path: Path) -> None:
    file = _write(tmp_path, '[tool.helios-migrate.llm]\nmodel = "m"\n')
    assert dict(load_config(file).sections["llm"]) == {"model": "m"}


def test_invalid_toml(tmp_path: Path) -> None:
    file = _write(tmp_path, "[tool.helios-migrate\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(file)


def test_mapping_entry_point() -> None:
    config = config_from_mapping({"rules": {"ignore": ["HM5"]}}, source="inline")
    assert not config.rule_enabled("HM503") and config.rule_enabled("HM101")


AUTOGEN = "[tool.helios-migrate.autogenerate]\n"
ORDERS = "[tool.helios-migrate.autogenerate.tables.orders]\n"


def test_autogenerate_settings(tmp_path: Path) -> None:
    file = _write(tmp_path, """
[tool.helios-migrate.autogenerate]
impact_header = false
split_contract = true
renames = { "users.email" = "email_address", "customers" = "clients" }
impact_calibration = "measure"
impact_write_sample_s = 2.5
index_on_fk = false
small_table_rows = 1000

[tool.helios-migrate.autogenerate.tables.orders]
lock_timeout = "500ms"
lock_retries = 9
index_on_fk = true
""")
    settings = load_config(file).autogenerate
    assert (settings.impact_header, settings.split_contract, settings.index_on_fk) == (False, True, False)
    assert dict(settings.renames) == {"users.email": "email_address", "customers": "clients"}
    assert (settings.impact_calibration, settings.impact_write_sample_s) == ("measure", 2.5)
    assert settings.small_table_rows == 1000
    orders = settings.tables["orders"]
    assert (orders.lock_timeout, orders.lock_retries, orders.index_on_fk) == ("500ms", 9, True)
    assert orders.statement_timeout is None and orders.backfill_batch_size is None
    assert "autogenerate" not in load_config(file).sections


def test_autogenerate_defaults() -> None:
    settings = Config().autogenerate
    assert (settings.impact_header, settings.split_contract, settings.index_on_fk) == (True, False, True)
    assert (settings.impact_calibration, settings.impact_write_sample_s) == ("cached", 0.0)
    assert settings.small_table_rows is None and not settings.renames and not settings.tables


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (AUTOGEN + "impact_heder = true", "autogenerate.impact_heder"),
        (AUTOGEN + 'impact_header = "yes"', "autogenerate.impact_header"),
        (AUTOGEN + "split_contract = 1", "autogenerate.split_contract"),
        (AUTOGEN + 'renames = ["users.email"]', "autogenerate.renames"),
        (AUTOGEN + 'renames = { "users.email" = 3 }', "autogenerate.renames.users.email"),
        (AUTOGEN + 'renames = { "users.email" = "accounts.email" }', "autogenerate.renames.users.email"),
        (AUTOGEN + 'impact_calibration = "always"', "autogenerate.impact_calibration"),
        (AUTOGEN + "impact_write_sample_s = -1", "autogenerate.impact_write_sample_s"),
        (AUTOGEN + 'impact_write_sample_s = "5s"', "autogenerate.impact_write_sample_s"),
        (AUTOGEN + 'index_on_fk = "no"', "autogenerate.index_on_fk"),
        (AUTOGEN + "small_table_rows = -1", "autogenerate.small_table_rows"),
        (AUTOGEN + "small_table_rows = 1.5", "autogenerate.small_table_rows"),
        (AUTOGEN + 'tables = "orders"', "autogenerate.tables"),
        (AUTOGEN + 'tables = { orders = "1s" }', "autogenerate.tables.orders"),
        (ORDERS + 'lock_timeot = "1s"', "autogenerate.tables.orders.lock_timeot"),
        (ORDERS + 'lock_timeout = "soon"', "autogenerate.tables.orders.lock_timeout"),
        (ORDERS + 'statement_timeout = "later"', "autogenerate.tables.orders.statement_timeout"),
        (ORDERS + "lock_retries = -2", "autogenerate.tables.orders.lock_retries"),
        (ORDERS + "backfill_batch_size = 0", "autogenerate.tables.orders.backfill_batch_size"),
        (ORDERS + 'backfill_pause_ms = "50"', "autogenerate.tables.orders.backfill_pause_ms"),
        (ORDERS + "index_on_fk = 1", "autogenerate.tables.orders.index_on_fk"),
    ],
)
def test_invalid_autogenerate_setting_names_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    file = _write(tmp_path, body + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert info.value.key == key
    assert str(file) in str(info.value) and key in str(info.value)
