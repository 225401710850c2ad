"""Each way a plan step runs names a function of :mod:`helios_migrate.runtime` (or ``op.execute``),
and the ones the revision passes its ``policy`` accept it."""

from __future__ import annotations

import inspect

import pytest

from alembic_plugin.ops import RuntimeCall
from helios_migrate import runtime


@pytest.mark.parametrize("call", [c for c in RuntimeCall if c is not RuntimeCall.EXECUTE], ids=str)
def test_each_call_is_a_runtime_function(call: RuntimeCall) -> None:
    function = getattr(runtime, call.value)
    assert callable(function)
    assert next(iter(inspect.signature(function).parameters)) == "op"
    if call.takes_policy:  # runtime's decorator adds the keyword around the function it wraps
        assert "policy" in inspect.signature(function, follow_wrapped=False).parameters
