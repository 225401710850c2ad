"""Every :class:`~helios_migrate.codes.RuleCode` names a registered rule, with that rule's name."""

from __future__ import annotations

import json

import pytest

from helios_migrate.codes import RuleCode
from helios_migrate.plan import Acknowledgement
from helios_migrate.rules import rule_by_code


@pytest.mark.parametrize("code", list(RuleCode), ids=[c.value for c in RuleCode])
def test_each_code_is_the_registered_rule_of_that_name(code: RuleCode) -> None:
    rule = rule_by_code(code)
    assert (rule.code, rule.name) == (code.value, code.rule_name)


def test_a_code_reads_and_serialises_as_its_text() -> None:
    code = RuleCode.UNANALYSED_STATEMENT
    assert code == "HM903" and str(code) == "HM903" and f"{code}" == "HM903"
    assert json.dumps([code]) == '["HM903"]'
    assert {"HM903": 1}[code] == 1 and {code: 1}["HM903"] == 1
    ack = Acknowledgement((code, RuleCode.LOCK_HELD_ACROSS_STATEMENTS), "on purpose")
    assert ack.comment == "# helios: ignore[HM903, HM403] -- on purpose"
