"""The hardening role's catalog, toggles, argument spec and task names agree.

One catalog (roles/hardening/vars/main.yml) drives the remediation and the audit: every
control's toggle must have a default and an argument-spec entry, every toggle a control, and
every CIS control a task whose name starts with its id.
"""

from __future__ import annotations

import json
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


def _walk(tasks: object, inherited: tuple[str, ...] = ()) -> list[tuple[dict[str, object], tuple[str, ...]]]:
    """Every task and block of a task list, with the tags it inherits from enclosing blocks."""
    found: list[tuple[dict[str, object], tuple[str, ...]]] = []
    if not isinstance(tasks, list):
        return found
    for task in tasks:
        if not isinstance(task, dict):
            continue
        tags = task.get("tags") or []
        own = tuple(str(tag) for tag in ([tags] if isinstance(tags, str) else tags))
        found.append((task, inherited))
        for key in ("block", "rescue", "always"):
            found += _walk(task.get(key), inherited + own)
    return found


def _role_tasks() -> list[tuple[dict[str, object], tuple[str, ...]]]:
    tasks = []
    for path in sorted((ROLE / "tasks").glob("*.yml")):
        tasks += _walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return tasks


CONTROL_TASK = re.compile(r"^(?:CIS (?P<cis>\S+) \| )?PCI (?P<pci>[^|]+?) \| (?P<what>[^|]+)$")


def test_every_control_task_applies_its_toggle() -> None:
    """A control's toggle gates a task named after the control (a toggle nothing reads is a dead switch)."""
    gated: dict[str, list[str]] = {}
    for task, _ in _role_tasks():
        when = task.get("when")
        if when is None or not str(task.get("name", "")).startswith(("CIS ", "PCI ")):
            continue
        for name in re.findall(r"\b(hardening_\w+)\b", json.dumps(when)):
            gated.setdefault(name, []).append(str(task["name"]))
    for control in _controls():
        names = [name for toggle in _toggles(control) for name in gated.get(toggle, [])]
        if control.get("cis"):
            prefix = f"CIS {control['cis']} |"
            group = str(control["cis"])[:-2]  # one task for a group of sub-items, e.g. 1.1.2.1.1-1.1.2.1.4
            grouped = re.compile(rf"\({re.escape(group)}\.\d+-{re.escape(group)}\.\d+\)")
            ok = any(n.startswith(prefix) or grouped.search(n) for n in names)
        else:
            ok = any(n.startswith(f"PCI {control['pci']} |") for n in names)
        assert ok, f"{control['id']}: no task named after it is gated by {_toggles(control)} (tasks: {names})"


def test_control_tasks_carry_the_role_tags() -> None:
    """hardening, pci, pci_<req> on every control task; rule_<id> and level1/level2 on the CIS ones."""
    for task, inherited in _role_tasks():
        match = CONTROL_TASK.match(str(task.get("name", "")))
        if not match:
            continue  # sub-tasks of a control block are named "<control> | <step>" and inherit its tags
        raw = task.get("tags") or []
        tags = set(inherited) | {str(tag) for tag in ([raw] if isinstance(raw, str) else raw)}
        expected = {"hardening", "pci"} | {f"pci_{req.strip()}" for req in match["pci"].split(",")}
        if match["cis"]:
            expected.add(f"rule_{match['cis']}")
            assert tags & {"level1", "level2"}, f"{task['name']}: no level tag in {sorted(tags)}"
        assert expected <= tags, f"{task['name']}: missing tags {sorted(expected - tags)}"


def _sysctl_checks(control: dict[str, object]) -> dict[str, tuple[str, bool]]:
    check = control["check"]
    assert isinstance(check, dict)
    leaves = check.get("checks") if check.get("type") in ("all", "any") else [check]
    assert isinstance(leaves, list)
    return {
        str(leaf["key"]): (str(leaf["value"]), bool(leaf.get("optional", False)))
        for leaf in leaves
        if leaf.get("type") == "sysctl"
    }


def test_sysctl_audit_checks_what_the_tasks_set() -> None:
    """The audit of a kernel-parameter control reads exactly the keys and values its task writes."""
    data = _load("vars/main.yml")
    assert isinstance(data, dict)
    by_id = {str(control["id"]): control for control in _controls()}
    tables = {**data["__hardening_network_sysctls"], **data["__hardening_kernel_sysctls"]}
    for control_id, expected in tables.items():
        checks = _sysctl_checks(by_id[str(control_id)])
        audited = {key: value for key, (value, _) in checks.items()}
        assert audited == {key: str(value) for key, value in expected.items()}, control_id
        requires_ipv6 = by_id[str(control_id)].get("requires") == {"path": "/proc/sys/net/ipv6"}
        for key, (_, optional) in checks.items():
            # IPv6 keys are only written where the kernel has IPv6, so the audit may not find them.
            assert optional == (key.startswith("net.ipv6.") and not requires_ipv6), (control_id, key)


def test_firewire_audit_covers_every_blacklisted_module() -> None:
    data = _load("vars/main.yml")
    assert isinstance(data, dict)
    control = next(c for c in _controls() if c["id"] == "pci-2.2.4-firewire")
    regexes = [str(leaf["regex"]) for leaf in control["check"]["checks"]]  # type: ignore[index]
    for module in data["__hardening_firewire_modules"]:
        pattern = re.escape(module).replace(r"\-", "-").replace("-", "[-_]")
        assert any(pattern in regex and "install" in regex for regex in regexes), module
        assert any(pattern in regex and "blacklist" in regex for regex in regexes), module
