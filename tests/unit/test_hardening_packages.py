"""The hardening role calls apt only for packages that are missing: the filter, and every install task of the role."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.gearlift.platform.plugins.filter.hardening import hardening_missing_packages

ROLE = Path(__file__).resolve().parents[2] / "roles" / "hardening"
MISSING = re.compile(r"^\{\{ __hardening_packages_missing\.(\w+) \}\}$")


def test_only_the_packages_not_installed_are_left() -> None:
    packages = {"aide": ["aide", "aide-common"], "sudo": ["sudo"], "none": []}
    installed = {"aide-common": [{"version": "0.18"}], "sudo": [{"version": "1.9"}]}
    assert hardening_missing_packages(packages, installed) == {"aide": ["aide"], "sudo": [], "none": []}
    assert hardening_missing_packages(packages, {}) == {"aide": ["aide", "aide-common"], "sudo": ["sudo"], "none": []}


@pytest.mark.parametrize(
    ("packages", "installed"),
    [({"sudo": "sudo"}, {}), ({"sudo": 3}, {}), (["sudo"], {}), ({"sudo": ["sudo"]}, ["sudo"])],
)
def test_bad_input_is_refused(packages: Any, installed: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="hardening_missing_packages"):
        hardening_missing_packages(packages, installed)


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        out.append(item)
        for key in ("block", "rescue", "always"):
            out += _tasks(item.get(key) or [])
    return out


def install_tasks() -> list[dict[str, Any]]:
    tasks = []
    for path in sorted((ROLE / "tasks").glob("*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            apt = task.get("ansible.builtin.apt")
            if isinstance(apt, dict) and apt.get("state", "present") == "present" and "name" in apt:
                tasks.append(task)
    return tasks


def test_every_install_task_installs_only_what_is_missing_and_is_skipped_without() -> None:
    tasks = install_tasks()
    assert len(tasks) >= 16
    keys = set()
    for task in tasks:
        match = MISSING.match(str(task["ansible.builtin.apt"]["name"]))
        name = task["ansible.builtin.apt"]["name"]
        assert match, f"{task['name']}: installs {name}, not __hardening_packages_missing.<key>"
        key = match.group(1)
        keys.add(key)
        when = task.get("when")
        conditions = when if isinstance(when, list) else [when]
        assert f"__hardening_packages_missing.{key} | length > 0" in conditions, task["name"]
    for vars_file in sorted((ROLE / "vars").glob("*-*.yml")):
        listed = yaml.safe_load(vars_file.read_text())["__hardening_packages"]
        assert keys <= set(listed), f"{vars_file.name} lacks {sorted(keys - set(listed))}"


def test_an_install_tasks_condition_as_ansible_evaluates_it() -> None:
    """The AIDE task's when, with the role's variable as the filter computes it: the task runs while a package is
    missing, is skipped once both are installed, and runs when no package facts were read (the variable reads
    ``ansible_facts.packages | default({})``)."""
    from .module_harness import condition, find_task

    expression = str(yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__hardening_packages_missing"])
    expected = (
        "__hardening_packages | gearlift.platform.hardening_missing_packages(ansible_facts.packages | default({}))"
    )
    assert " ".join(expression.split()) == "{{ " + expected + " }}"
    packages = yaml.safe_load((ROLE / "vars" / "Debian-12.yml").read_text())["__hardening_packages"]
    task = find_task(ROLE / "tasks" / "section_6.yml", "CIS 6.3.1 | PCI 11.5.2 | AIDE is installed")

    def runs(installed: dict[str, Any]) -> bool:
        missing = hardening_missing_packages(packages, installed)
        return condition(task["when"], {"__hardening_packages_missing": missing, "__hardening_on": {"6.3.1": True}})

    assert runs({"aide-common": [{"version": "0.18"}]})
    assert not runs({"aide": [{}], "aide-common": [{}]})
    assert runs({})
