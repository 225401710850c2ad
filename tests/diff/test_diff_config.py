"""``[tool.helios-migrate.diff]`` is validated like the other sections; ignore patterns match by
kind, qualified name, name without ``public`` and owning table."""

from __future__ import annotations

import pytest

from helios_migrate.config import ConfigError, config_from_mapping
from helios_migrate.diff.catalog import SchemaObject
from helios_migrate.diff.compare import matches


def test_ignore_is_read() -> None:
    config = config_from_mapping({"diff": {"ignore": ["public.spatial_ref_sys", "index:*_hypo*"]}})
    assert config.diff.ignore == ("public.spatial_ref_sys", "index:*_hypo*")
    assert config_from_mapping({}).diff.ignore == ()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"ignore": "public.x"}, "expected a list of glob patterns"),
        ({"ignore": [""]}, "expected a list of glob patterns"),
        ({"ignore": ["idx:*"]}, "'idx' is not an object kind"),
        ({"ignore": ["index:"]}, "a name pattern follows the kind"),
        ({"ignored": ["x"]}, "ignored"),
    ],
)
def test_bad_ignore_is_an_error(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="diff") as info:
        config_from_mapping({"diff": section})
    assert message in str(info.value)


def test_patterns() -> None:
    index = SchemaObject("index", "public.orders_hypo_1", (), "public.orders", ("public", "orders", "orders_hypo_1"))
    column = SchemaObject("column", "app.orders.legacy_code", (), "app.orders", ("app", "orders", "legacy_code"))
    assert matches("index:*_hypo*", index)
    assert not matches("column:*_hypo*", index)
    assert matches("orders_hypo_1", index)            # public names match without the schema
    assert matches("public.orders", index)            # the table an index belongs to
    assert not matches("orders.legacy_*", column)     # outside public the schema is part of the name
    assert matches("app.orders.legacy_*", column)
    assert matches("app.orders", column)


def test_every_object_kind_can_be_named() -> None:
    """The configuration accepts exactly the kinds diff compares."""
    from helios_migrate.diff.compare import KINDS

    patterns = [f"{kind}:*" for kind in KINDS]
    assert config_from_mapping({"diff": {"ignore": patterns}}).diff.ignore == tuple(patterns)
    grant = SchemaObject("grant", "table public.orders to app_ro", (), "public.orders", ("public", "orders"),
                         on="table")
    function = SchemaObject("function", "public.f(a integer)", (), None, ("public", "f", "a integer"))
    assert matches("grant:*to app_ro", grant)
    assert matches("public.orders", grant)            # the table a grant is on
    assert matches("function:f(*)", function)
    assert not matches("trigger:*", function)
