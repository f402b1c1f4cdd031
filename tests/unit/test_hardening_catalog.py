"""The hardening role's catalog is the single source: its toggles, tags, tasks and audit checks agree.

The catalog is data, one file per CIS section (roles/hardening/vars/catalog/section_<N>.yml).
A control needs: a task named ``CIS <id> | PCI <req> | <what>`` (``PCI <req> | <what>`` for PCI
DSS-only controls) gated by ``__hardening_on['<id>']`` and tagged with its level, rule id, section
and PCI requirement, plus an audit check (or, for a manual control, the reason and what a person
checks). Section toggles live in defaults and the argument spec; per-control toggles take their
default from the catalog, so adding a control touches the catalog and a task file only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.gearlift.platform.plugins.filter.hardening import (
    SECTION_ORDER,
    hardening_controls,
    hardening_enabled,
)

ROLE = Path(__file__).resolve().parents[2] / "roles" / "hardening"
CONTROL_TASK = re.compile(r"^(?:CIS (?P<cis>\S+) \| )?PCI (?P<pci>[^|]+?) \| (?P<what>[^|]+)$")
GATE = re.compile(r"__hardening_on\['([^']+)'\]")


def _load(relative: str) -> Any:
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def _raw_catalog() -> dict[str, Any]:
    catalog: dict[str, Any] = {}
    for path in sorted((ROLE / "vars" / "catalog").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        key = f"__hardening_catalog_{path.stem}"
        assert isinstance(data, dict) and list(data) == [key], f"{path.name}: one key, {key}"
        catalog.update(data)
    return catalog


def _untemplated(value: Any) -> Any:
    """The catalog with check lists that Ansible builds from the role's variables stubbed out."""
    if isinstance(value, dict):
        out = {key: _untemplated(item) for key, item in value.items()}
        if isinstance(out.get("checks"), str) and "{{" in out["checks"]:
            out["checks"] = [{"type": "package", "name": "templated"}]
        return out
    if isinstance(value, list):
        return [_untemplated(item) for item in value]
    return value


def _controls() -> list[dict[str, Any]]:
    return hardening_controls(_untemplated(_raw_catalog()))


def _walk(tasks: object, inherited: tuple[str, ...] = ()) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every task and block of a task list, with the tags it inherits from enclosing blocks."""
    found: list[tuple[dict[str, Any], tuple[str, ...]]] = []
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


def _import_tags() -> dict[str, tuple[str, ...]]:
    """Tags tasks/main.yml gives each task file it imports (import_tasks tags, include_tasks apply tags)."""
    tags: dict[str, tuple[str, ...]] = {}
    for task in _load("tasks/main.yml"):
        for key in ("ansible.builtin.import_tasks", "ansible.builtin.include_tasks"):
            target = task.get(key)
            if target is None:
                continue
            name = target if isinstance(target, str) else target["file"]
            if key.endswith("import_tasks"):  # an import's tags reach every imported task
                inherited = task.get("tags") or []
            else:  # an include's own tags stay on the include; apply.tags reach the tasks
                inherited = (target.get("apply") or {}).get("tags", []) if isinstance(target, dict) else []
            tags[Path(name).stem] = tuple(str(tag) for tag in inherited)
    return tags


def _role_tasks() -> list[tuple[str, dict[str, Any], set[str]]]:
    """(task file, task, all its tags: its own, its blocks' and the import's) for every task of the role."""
    imports = _import_tags()
    tasks = []
    for path in sorted((ROLE / "tasks").glob("*.yml")):
        for task, inherited in _walk(yaml.safe_load(path.read_text(encoding="utf-8"))):
            raw = task.get("tags") or []
            own = {str(tag) for tag in ([raw] if isinstance(raw, str) else raw)}
            tasks.append((path.stem, task, own | set(inherited) | set(imports.get(path.stem, ()))))
    return tasks


def _gates(task: dict[str, Any]) -> list[str]:
    return GATE.findall(json.dumps(task.get("when")))


def _pcis(text: str) -> set[str]:
    return {part.strip() for part in text.split(",")}


def test_catalog_is_valid_and_one_file_per_section() -> None:
    raw = _raw_catalog()
    assert sorted(raw) == sorted(f"__hardening_catalog_section_{key}" for key in SECTION_ORDER)
    controls = _controls()  # raises on any schema problem
    assert len(controls) >= 150
    assert [c["section"] for c in controls] == sorted((c["section"] for c in controls), key=SECTION_ORDER.index)


def test_catalog_validation_names_the_problems() -> None:
    bad = {
        "__hardening_catalog_section_1": {
            "title": "x",
            "toggle": "hardening_section_1",
            "controls": [
                {"id": "1.9.9", "cis": "1.9.9", "pci": "2.2.6", "title": "no level", "check": {"type": "bogus"}},
                {"id": "2.1.1", "cis": "2.1.1", "pci": "2.2.4", "title": "wrong file", "level": 1, "manual": {}},
                {"id": "pci-x", "pci": "1.1", "title": "kernel", "container": False, "check": {"type": "all"}},
            ],
        }
    }
    with pytest.raises(AnsibleFilterError) as info:
        hardening_controls(bad)
    message = str(info.value)
    for expected in (
        "1.9.9: level must be 1 or 2",
        "1.9.9: unknown check type 'bogus'",
        "2.1.1: CIS 2.1.1 is not in section 1",
        "2.1.1: manual needs reason",
        "pci-x: container: false needs container_reason",
        "pci-x: all check lacks checks",
    ):
        assert expected in message, (expected, message)


def test_section_toggles_in_defaults_and_specs_and_no_per_control_defaults() -> None:
    """Section toggles are role options; per-control toggles come from the catalog (no second copy)."""
    defaults = _load("defaults/main.yml")
    specs = _load("meta/argument_specs.yml")
    for entry in ("main", "validate", "audit"):
        options = specs["argument_specs"][entry]["options"]
        assert set(options) == set(defaults), f"{entry}: argument spec and defaults differ"
        for name, option in options.items():
            assert option["default"] == defaults[name], name
            assert option.get("description"), name
    sections = {f"hardening_section_{key}" for key in SECTION_ORDER}
    assert {name for name in defaults if name.startswith("hardening_section_")} == sections
    assert all(defaults[name] is True for name in sections)
    assert not [name for name in defaults if name.startswith("hardening_rule_")]
    # toggles a control shares with the role's options (ClamAV) are defined there
    toggles = {name for control in _controls() for name in control["toggle"]}
    assert {name for name in toggles if not name.startswith("hardening_rule_")} <= set(defaults)


def test_every_automated_control_has_a_gated_tagged_task() -> None:
    """A catalog entry without its task, gate or tags fails here."""
    controls = _controls()
    tasks = _role_tasks()
    by_gate: dict[str, list[tuple[str, dict[str, Any], set[str]]]] = {}
    for stem, task, tags in tasks:
        for control_id in _gates(task):
            by_gate.setdefault(control_id, []).append((stem, task, tags))
    ids = {c["id"]: c for c in controls}
    for control in controls:
        if control.get("manual"):
            assert control["id"] not in by_gate, f"{control['id']}: manual in the catalog but a task applies it"
            continue
        # The gate is the control's id, or the first id of a group sharing the same toggles (/tmp 1.1.2.1.x).
        group = [c["id"] for c in controls if c["toggle"] == control["toggle"]]
        candidates = [t for gate in group for t in by_gate.get(gate, [])]
        named = []
        for stem, task, tags in candidates:
            match = CONTROL_TASK.match(str(task.get("name", "")))
            if not match:
                continue
            if control.get("cis"):
                cis = str(control["cis"])
                parent = cis.rsplit(".", 1)[0]
                in_range = re.search(rf"\({re.escape(parent)}\.\d+-{re.escape(parent)}\.\d+\)", str(task["name"]))
                if match["cis"] != cis and not (in_range and match["cis"] in group and match["cis"] in ids):
                    continue
            elif match["cis"] or _pcis(match["pci"]) != _pcis(str(control["pci"])):
                continue
            named.append((stem, task, tags, match))
        assert named, f"{control['id']}: no task named after it is gated by __hardening_on['{group[0]}']"
        for _stem, task, tags, match in named:
            expected = {"hardening", f"section_{control['section']}", "pci"}
            expected |= {f"pci_{req}" for req in _pcis(str(control["pci"]))}
            if control.get("cis"):
                expected |= {f"rule_{control['cis']}", f"level{control['level']}"}
                other = "level2" if control["level"] == 1 else "level1"
                assert other not in tags, f"{task['name']}: tagged {other}, the catalog says level {control['level']}"
            assert expected <= tags, f"{task['name']}: missing tags {sorted(expected - tags)}"
            if match["cis"] == control.get("cis"):
                assert _pcis(match["pci"]) == _pcis(str(control["pci"])), (task["name"], control["pci"])


def test_every_task_names_a_catalogued_control() -> None:
    """A task that names or gates a control the catalog lacks fails here."""
    controls = _controls()
    ids = {c["id"] for c in controls}
    cis_ids = {str(c["cis"]) for c in controls if c.get("cis")}
    pci_only = {str(c["pci"]) for c in controls if not c.get("cis")}
    for _stem, task, _tags in _role_tasks():
        for control_id in _gates(task):
            assert control_id in ids, f"{task.get('name')}: gates on {control_id}, not in the catalog"
        name = str(task.get("name", ""))
        if name.startswith("CIS "):
            cis = name.split()[1]
            assert cis in cis_ids, f"{name}: CIS {cis} is not in the catalog"
        elif name.startswith("PCI "):
            req = name.split(" | ")[0][4:]
            assert req in pci_only or any(req == str(c["pci"]) for c in controls), (
                f"{name}: PCI {req} not in the catalog"
            )
        for toggle in re.findall(r"\bhardening_rule_\w+", json.dumps(task.get("when"))):
            pytest.fail(f"{name}: reads {toggle} directly; gate on __hardening_on[id] (the catalog resolves toggles)")


def test_toggles_resolve_from_catalog_defaults_sections_and_inventory() -> None:
    controls = _controls()
    on = hardening_enabled(controls, {})
    assert on["5.1.20"] is True
    assert on["pci-6.3.3-apt-listbugs"] is False  # default: false in the catalog
    on = hardening_enabled(controls, {"hardening_rule_5_1_20": "false", "hardening_section_3": False})
    assert on["5.1.20"] is False and on["5.1.19"] is True
    assert not any(on[c["id"]] for c in controls if c["section"] == "3")
    with pytest.raises(AnsibleFilterError, match="hardening_rule_5_1_20 must be true or false"):
        hardening_enabled(controls, {"hardening_rule_5_1_20": "maybe"})


def _sysctl_checks(control: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    check = control["check"]
    leaves = check.get("checks") if check.get("type") in ("all", "any") else [check]
    return {
        str(leaf["key"]): (str(leaf["value"]), bool(leaf.get("optional", False)))
        for leaf in leaves
        if leaf.get("type") == "sysctl"
    }


def test_sysctl_audit_checks_what_the_tasks_set() -> None:
    """The audit of a kernel-parameter control reads exactly the keys and values its task writes."""
    data = _load("vars/main.yml")
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
    control = next(c for c in _controls() if c["id"] == "pci-2.2.4-firewire")
    regexes = [str(leaf["regex"]) for leaf in control["check"]["checks"]]
    for module in data["__hardening_firewire_modules"]:
        pattern = re.escape(module).replace(r"\-", "-").replace("-", "[-_]")
        assert any(pattern in regex and "install" in regex for regex in regexes), module
        assert any(pattern in regex and "blacklist" in regex for regex in regexes), module


def test_verify_tasks_run_the_catalogs_command() -> None:
    """A task that runs a control's check (hardening_argv / hardening_verify) needs an output check with argv."""
    by_id = {c["id"]: c for c in _controls()}
    used = set()
    for _stem, task, _tags in _role_tasks():
        text = json.dumps(task.get("ansible.builtin.command") or {}) + json.dumps(task.get("failed_when") or "")
        used |= set(
            re.findall(r"__hardening_control\['([^']+)'\] \| gearlift\.platform\.hardening_(?:argv|verify)", text)
        )
    assert used, "no verify task found"
    for control_id in sorted(used):
        check = by_id[control_id]["check"]
        leaves = check["checks"] if check["type"] in ("all", "any") else [check]
        assert all(leaf["type"] == "output" and leaf.get("argv") for leaf in leaves), control_id


def test_no_file_of_the_role_reads_a_control_toggle_directly() -> None:
    """Templates, handlers and tasks gate on __hardening_on[id]: a hardening_rule_* name read directly is
    undefined unless the inventory sets it (the catalog holds the defaults)."""
    offenders = []
    for path in [*ROLE.glob("tasks/*.yml"), *ROLE.glob("handlers/*.yml"), *ROLE.rglob("templates/**/*.j2")]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"(?<![\w_])hardening_rule_[0-9a-z]", line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(ROLE)}:{number}: {line.strip()}")
    assert not offenders, offenders
