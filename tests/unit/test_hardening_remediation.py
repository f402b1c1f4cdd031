"""The hardening role applies only the enabled controls its audit before the controls does not find passing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.gearlift.platform.plugins.filter.hardening import hardening_remediation

ROLE = Path(__file__).resolve().parents[2] / "roles" / "hardening"


def _results(**status: str) -> list[dict[str, Any]]:
    return [{"id": cid.replace("_", "."), "status": value} for cid, value in status.items()]


def test_a_passing_control_is_spared_and_a_failing_or_unjudged_one_applied() -> None:
    enabled = {"1.1": True, "1.2": True, "1.3": True, "1.4": False, "1.5": True}
    results = _results(**{"1_1": "pass", "1_2": "fail", "1_3": "skipped", "1_4": "pass"})
    assert hardening_remediation(enabled, results) == {
        "1.1": False,
        "1.2": True,
        "1.3": True,
        "1.4": False,
        "1.5": True,
    }


def test_a_pass_is_not_enough_when_a_control_sharing_its_toggle_fails() -> None:
    """One task applies the controls of one toggle: the pam_unix task (5.3.2.1) also removes nullok (5.3.3.4.1)."""
    enabled = {"5.3.2.1": True, "5.3.3.4.1": True, "5.2.2": True}
    results = [
        {"id": "5.3.2.1", "status": "pass", "toggle": "hardening_rule_5_3_2_1"},
        {"id": "5.3.3.4.1", "status": "fail", "toggle": "hardening_rule_5_3_2_1"},
        {"id": "5.2.2", "status": "pass", "toggle": "hardening_rule_5_2_2"},
    ]
    assert hardening_remediation(enabled, results) == {"5.3.2.1": True, "5.3.3.4.1": True, "5.2.2": False}


def test_every_gated_task_applies_only_controls_of_its_gates_toggle() -> None:
    """What the grouping by toggle relies on: a task gated by __hardening_on['X'] and tagged rule_Y (it applies Y
    too) is only ever tagged with controls that share X's toggles."""
    controls: dict[str, dict[str, Any]] = {}
    for path in (ROLE / "vars" / "catalog").glob("*.yml"):
        for section in yaml.safe_load(path.read_text()).values():
            for control in section["controls"]:
                controls[str(control["id"])] = control

    def toggles(cid: str) -> tuple[str, ...]:
        toggle = controls[cid].get("toggle") or []
        return tuple(sorted([toggle] if isinstance(toggle, str) else toggle))

    def walk(items: list[dict[str, Any]] | None) -> Any:
        for item in items or []:
            yield item
            for key in ("block", "rescue", "always"):
                yield from walk(item.get(key))

    checked = 0
    for path in (ROLE / "tasks").glob("*.yml"):
        for task in walk(yaml.safe_load(path.read_text())):
            when = task.get("when")
            text = " ".join(when) if isinstance(when, list) else str(when or "")
            gates = re.findall(r"__hardening_on\['([^']+)'\]", text)
            rules = [t[len("rule_") :] for t in task.get("tags") or [] if str(t).startswith("rule_")]
            for gate in gates:
                for rule in rules:
                    for cid, control in controls.items():
                        if rule in (cid, str(control.get("cis"))):
                            checked += 1
                            assert toggles(cid) == toggles(gate), (path.name, task.get("name"), gate, cid)
    assert checked > 100, checked


def test_apply_compliant_applies_every_enabled_control() -> None:
    enabled = {"1.1": True, "1.4": False}
    results = _results(**{"1_1": "pass", "1_4": "pass"})
    assert hardening_remediation(enabled, results, True) == {"1.1": True, "1.4": False}
    assert hardening_remediation(enabled, []) == enabled, "no audit (apply_compliant skipped it): the toggles decide"


def test_bad_input_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="hardening_remediation"):
        hardening_remediation(["1.1"], [])  # type: ignore[arg-type]


def test_the_role_audits_before_the_controls_and_gates_them_by_the_result() -> None:
    """main.yml: the audit's reads, then __hardening_on narrowed, then every section; the switch in defaults."""
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    names = [t["name"] for t in tasks]
    audit = next(
        i for i, t in enumerate(tasks) if (t.get("ansible.builtin.include_tasks") or {}).get("file") == "audit_read.yml"
    )
    gate = next(i for i, t in enumerate(tasks) if "hardening_remediation" in str(t.get("ansible.builtin.set_fact", "")))
    sections = [i for i, n in enumerate(names) if n.startswith("Hardening | Section")]
    assert audit < gate < min(sections), names
    assert tasks[audit]["when"] == "not hardening_apply_compliant_controls | bool"
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["hardening_apply_compliant_controls"] is True, "opt-in until the VM lane passes with it"
    # the audit entry point reads through the same file
    audit_tasks = yaml.safe_load((ROLE / "tasks" / "audit.yml").read_text())
    assert any(t.get("ansible.builtin.import_tasks") == "audit_read.yml" for t in audit_tasks)
