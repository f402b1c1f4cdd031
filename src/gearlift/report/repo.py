"""What the repository holds: control tags and PCI task names, the guards logic, the CIS catalog."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from gearlift.report.errors import ReportError

#: The repository root (src/gearlift/report/repo.py -> parents[3]).
REPO_ROOT = Path(__file__).resolve().parents[3]

#: "PCI 1.3.1 | ..." or "CIS 4.2.6 | PCI 1.3.1 | ..." or "PCI 10.7.1 / 11.5.1 | ...".
_PCI_TASK = re.compile(r"^(?:CIS [0-9.]+ \| )?PCI ([0-9.]+(?:\s*/\s*[0-9.]+)*)\s*\|")
_TASK_LISTS = ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that reads unknown tags (!vault, !unsafe) as plain values instead of failing."""


def _unknown_tag(loader: _Loader, suffix: str, node: Any) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _unknown_tag)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file; a syntax error becomes a ReportError naming the file."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise ReportError(f"cannot read {path}: {exc}") from exc


def check_repo(repo: Path) -> Path:
    """The repository root, or a ReportError when ``repo`` is not a gearlift checkout."""
    repo = repo.resolve()
    if not (repo / "galaxy.yml").is_file() or not (repo / "roles").is_dir():
        raise ReportError(f"{repo} is not a gearlift repository (no galaxy.yml / roles/); pass --repo")
    return repo


def _walk_tasks(node: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk_tasks(item, visit)
    elif isinstance(node, dict):
        visit(node)
        for key in _TASK_LISTS:
            if key in node:
                _walk_tasks(node[key], visit)


def pci_ids_of_task(name: str) -> list[str]:
    """PCI requirement ids a task name starts with ("PCI 10.7.1 / 11.5.1 | ..." -> both)."""
    match = _PCI_TASK.match(name)
    if not match:
        return []
    return [part.strip() for part in match.group(1).split("/") if part.strip()]


@dataclass
class ControlIndex:
    """Tags on role tasks and PCI-numbered playbook tasks, with the files they are in."""

    tags: dict[str, set[str]] = field(default_factory=dict)
    pci_tasks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def has_tag(self, tag: str) -> bool:
        return tag in self.tags

    def has_task(self, req: str) -> bool:
        return req in self.pci_tasks


def _yaml_files(*patterns: tuple[Path, str]) -> Iterator[Path]:
    for base, pattern in patterns:
        yield from sorted(base.glob(pattern))


def scan_controls(repo: Path) -> ControlIndex:
    """Read roles/*/tasks/*.yml (tags) and playbooks/**/*.yml (task names "PCI x.y.z | ...")."""
    index = ControlIndex()

    def tags_of(path: Path) -> Callable[[dict[str, Any]], None]:
        def visit(task: dict[str, Any]) -> None:
            tags = task.get("tags")
            if isinstance(tags, str):
                tags = [part.strip() for part in tags.split(",")]
            if isinstance(tags, list):
                for tag in tags:
                    index.tags.setdefault(str(tag), set()).add(str(path.relative_to(repo)))

        return visit

    def tasks_of(path: Path) -> Callable[[dict[str, Any]], None]:
        def visit(task: dict[str, Any]) -> None:
            name = task.get("name")
            if isinstance(name, str) and "hosts" not in task:
                for req in pci_ids_of_task(name):
                    index.pci_tasks.setdefault(req, []).append((str(path.relative_to(repo)), name))

        return visit

    for path in _yaml_files((repo / "roles", "*/tasks/*.yml"), (repo / "roles", "*/tasks/*.yaml")):
        _walk_tasks(load_yaml(path), tags_of(path))
    for path in _yaml_files((repo / "playbooks", "**/*.yml"), (repo, "site.yml")):
        _walk_tasks(load_yaml(path), tasks_of(path))
    return index


def load_guards(repo: Path) -> ModuleType:
    """plugins/module_utils/guards.py (pure Python: defaults, validation, subnet derivation)."""
    path = repo / "plugins" / "module_utils" / "guards.py"
    name = "gearlift_report_guards"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ReportError(f"cannot load {path}: the report needs the repository's guards logic")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # pragma: no cover - a broken checkout
        del sys.modules[name]
        raise ReportError(f"cannot load {path}: {exc}") from exc
    return module


def playbook_exists(repo: Path, relative: str) -> bool:
    return (repo / relative).is_file()


def hardening_catalog(repo: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The hardening role's control catalog (vars/catalog/section_*.yml, in section order) and its
    toggles: the role's defaults plus each control's toggle at its catalog default; empty when absent."""
    catalog_dir = repo / "roles" / "hardening" / "vars" / "catalog"
    defaults_file = repo / "roles" / "hardening" / "defaults" / "main.yml"
    catalog: list[dict[str, Any]] = []
    defaults: dict[str, Any] = {}
    if defaults_file.is_file():
        data = load_yaml(defaults_file) or {}
        if isinstance(data, dict):
            defaults = data
    order = ["1", "2", "3", "4", "5", "6", "7", "pci"]
    files = sorted(catalog_dir.glob("section_*.yml")) if catalog_dir.is_dir() else []
    files.sort(key=lambda path: order.index(path.stem[8:]) if path.stem[8:] in order else len(order))
    toggles: dict[str, Any] = {}
    for path in files:
        data = load_yaml(path) or {}
        section = data.get(f"__hardening_catalog_{path.stem}") if isinstance(data, dict) else None
        raw = section.get("controls") if isinstance(section, dict) else None
        if not isinstance(raw, list):
            continue
        for item in raw:
            if not isinstance(item, dict):
                continue
            control = dict(item)
            toggle = control.get("toggle") or "hardening_rule_" + re.sub(r"[.-]", "_", str(control.get("id", "")))
            control["toggle"] = toggle
            for name in [toggle] if isinstance(toggle, str) else list(toggle):
                toggles.setdefault(str(name), control.get("default", True))
            catalog.append(control)
    return catalog, {**toggles, **defaults}


def waf_rule_count(repo: Path) -> int:
    """Rules of the web ACL: the AWS managed groups listed in playbooks/edge.yml, plus the rate limit."""
    edge = repo / "playbooks" / "edge.yml"
    groups: list[Any] = []
    if edge.is_file():

        def visit(task: dict[str, Any]) -> None:
            found = (task.get("vars") or {}).get("edge_managed_groups")
            if isinstance(found, list):
                groups.extend(found)

        _walk_tasks(load_yaml(edge), visit)
    return (len(groups) or 4) + 1
