"""The hardening role's catalog, toggles, argument spec and task names agree.

One catalog (roles/hardening/vars/main.yml) drives the remediation and the audit: every
control's toggle must have a default and an argument-spec entry, every toggle a control, and
every CIS control a task whose name starts with its id.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "hardening"


def _load(relative: str) -> object:
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def _controls() -> list[dict[str, object]]:
    data = _load("vars/main.yml")
    assert isinstance(data, dict)
    return list(data["__hardening_controls"])


def _toggles(control: dict[str, object]) -> list[str]:
    toggle = control["toggle"]
    if isinstance(toggle, str):
        return [toggle]
    assert isinstance(toggle, list)
    return [str(name) for name in toggle]


def _task_names() -> str:
    names = []
    for path in (ROLE / "tasks").glob("*.yml"):
        names += re.findall(r'^\s*- name: "?(.*?)"?\s*(?:#.*)?$', path.read_text(encoding="utf-8"), flags=re.M)
    return "\n".join(names)


def test_ids_unique_and_fields_present() -> None:
    controls = _controls()
    ids = [str(control["id"]) for control in controls]
    assert len(ids) == len(set(ids))
    for control in controls:
        assert control.get("title") and control.get("check"), control["id"]
        assert control.get("cis") or control.get("pci"), control["id"]
        if control.get("container") is False:
            assert control.get("container_reason"), control["id"]


def test_toggles_have_defaults_and_specs() -> None:
    defaults = _load("defaults/main.yml")
    specs = _load("meta/argument_specs.yml")
    assert isinstance(defaults, dict) and isinstance(specs, dict)
    catalog_toggles = {name for control in _controls() for name in _toggles(control)}
    for entry in ("main", "validate", "audit"):
        options = specs["argument_specs"][entry]["options"]
        assert set(options) == set(defaults), f"{entry}: argument spec and defaults differ"
        for name, option in options.items():
            assert option["default"] == defaults[name], name
            assert option.get("description"), name
    assert catalog_toggles <= set(defaults)
    rule_toggles = {name for name in defaults if name.startswith("hardening_rule_")}
    assert rule_toggles <= catalog_toggles, rule_toggles - catalog_toggles


def test_every_cis_control_has_a_named_task() -> None:
    names = _task_names()
    for control in _controls():
        cis = control.get("cis")
        if not cis:
            continue
        covered = re.search(rf"CIS {re.escape(str(cis))}\b", names) or (
            # one task applies a group of sub-items (e.g. /tmp: 1.1.2.1.1-1.1.2.1.4)
            re.search(rf"\({re.escape(str(cis)[:-2])}\.\d+-{re.escape(str(cis)[:-2])}\.\d+\)", names)
        )
        assert covered, f"no task named after CIS {cis}"
