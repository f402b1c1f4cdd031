"""Read an inventory's gearlift_* settings for the controller group, without contacting AWS.

``ansible-inventory --list`` (the virtualenv's binary) resolves group_vars / host_vars the way a
playbook run does. Only static sources are passed to it (YAML / INI files; a dynamic plugin
config such as ``fleet.aws.yml`` is left out) and only the ``yaml`` and ``ini`` inventory plugins
are enabled, so nothing queries an account. Without the binary the YAML files are read directly.

Values that are Jinja templates (``{{ lookup('env', ...) }}``) are only known at run time: they
become :class:`RuntimeValue` and print as "(set at run time)".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gearlift.report.errors import ReportError
from gearlift.report.repo import load_yaml

RUNTIME_TEXT = "(set at run time)"
CONTROLLER_GROUP = "controller"
_STATIC_SUFFIXES = {".yml", ".yaml", ".ini", ".json", ""}


@dataclass(frozen=True)
class RuntimeValue:
    """An inventory value that is a template, resolved only when a playbook runs."""

    expression: str

    def __str__(self) -> str:
        return RUNTIME_TEXT


@dataclass
class Inventory:
    """The controller host's gearlift_* settings (and hardening_* ones, for the CIS section)."""

    path: Path
    host: str
    settings: dict[str, Any]
    hardening: dict[str, Any]
    loader: str
    sources: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name if self.path.is_dir() else self.path.parent.name

    def runtime_settings(self) -> dict[str, RuntimeValue]:
        return {key: value for key, value in self.settings.items() if isinstance(value, RuntimeValue)}


def mark_runtime(value: Any) -> Any:
    """Replace templated strings (recursively) by RuntimeValue."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return RuntimeValue(value)
    if isinstance(value, list):
        return [mark_runtime(item) for item in value]
    if isinstance(value, dict):
        return {key: mark_runtime(item) for key, item in value.items()}
    return value


def _unwrap(value: Any) -> Any:
    """ansible-inventory marks unsafe strings as {"__ansible_unsafe": "..."}; take the string."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    return value


def _is_plugin_config(path: Path) -> bool:
    if path.suffix not in {".yml", ".yaml"}:
        return False
    data = load_yaml(path)
    return isinstance(data, dict) and "plugin" in data


def static_sources(path: Path) -> list[Path]:
    """The static inventory files of ``path`` (a directory or one file); plugin configs left out."""
    if not path.exists():
        raise ReportError(f"inventory {path} does not exist")
    if path.is_file():
        if _is_plugin_config(path):
            raise ReportError(
                f"{path} is a dynamic inventory plugin config (it would query AWS); pass the inventory "
                "directory or its static hosts file"
            )
        return [path]
    files = [
        item
        for item in sorted(path.iterdir())
        if item.is_file()
        and item.suffix in _STATIC_SUFFIXES
        and not item.name.startswith(".")
        and not item.name.endswith((".md", ".txt"))
        and not _is_plugin_config(item)
    ]
    if not files:
        raise ReportError(f"inventory {path} has no static hosts file (hosts.yml) next to its group_vars")
    return files


def _ansible_inventory_binary() -> str | None:
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ansible-inventory")


def _run_ansible_inventory(binary: str, sources: list[Path], repo: Path) -> dict[str, Any]:
    env = dict(os.environ)
    config = repo / "ansible.cfg"
    if config.is_file():
        env["ANSIBLE_CONFIG"] = str(config)
    env.update(
        {
            # static sources only: nothing here may call an AWS API
            "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml,ansible.builtin.ini",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
            # no cached facts in the listing
            "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    argv = [binary, "--list"]
    for source in sources:
        argv += ["-i", str(source)]
    try:
        proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=180, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReportError(f"ansible-inventory failed to run: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ReportError(f"ansible-inventory could not read {', '.join(map(str, sources))}:\n{tail}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ReportError(f"ansible-inventory printed no JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReportError("ansible-inventory printed an unexpected document")
    return data


def _controller_host(listing: dict[str, Any], origin: str) -> str:
    group = listing.get(CONTROLLER_GROUP)
    hosts = group.get("hosts") if isinstance(group, dict) else None
    if not hosts:
        raise ReportError(
            f"{origin}: no host in group '{CONTROLLER_GROUP}' - the gearlift_* settings are read from the "
            "controller group (see inventories/production-example/hosts.yml)"
        )
    return str(hosts[0])


def _merge(base: dict[str, Any], extra: Any, origin: Path) -> None:
    if extra is None:
        return
    if not isinstance(extra, dict):
        raise ReportError(f"{origin}: expected a mapping of variables")
    base.update(extra)


def _vars_from(directory: Path, name: str) -> list[Path]:
    """group_vars/<name>.yml, group_vars/<name>.yaml, group_vars/<name>/*.yml in Ansible's order."""
    found: list[Path] = []
    for suffix in ("", ".yml", ".yaml", ".json"):
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            found.append(candidate)
    folder = directory / name
    if folder.is_dir():
        found += sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in {".yml", ".yaml", ".json"})
    return found


def _groups_of(node: Any, group: str, parents: list[str], out: dict[str, tuple[list[str], dict[str, Any]]]) -> None:
    """Walk a YAML hosts file: host -> (its groups, outermost first; its inline vars)."""
    if not isinstance(node, dict):
        return
    chain = [*parents, group]
    hosts = node.get("hosts")
    if isinstance(hosts, dict):
        for host, host_vars in hosts.items():
            groups, inline = out.setdefault(str(host), ([], {}))
            groups.extend(g for g in chain if g not in groups)
            if isinstance(host_vars, dict):
                inline.update(host_vars)
    children = node.get("children")
    if isinstance(children, dict):
        for child, child_node in children.items():
            _groups_of(child_node or {}, str(child), chain, out)


def _read_yaml_inventory(sources: list[Path]) -> tuple[str, dict[str, Any]]:
    """Fallback without ansible-inventory: YAML hosts files + group_vars + host_vars of the directory."""
    hosts: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for source in sources:
        if source.suffix not in {".yml", ".yaml"}:
            continue
        data = load_yaml(source) or {}
        if isinstance(data, dict):
            for group, node in data.items():
                _groups_of(node or {}, str(group), [], hosts)
    controller = [host for host, (groups, _) in hosts.items() if CONTROLLER_GROUP in groups]
    if not controller:
        raise ReportError(f"{sources[0]}: no host in group '{CONTROLLER_GROUP}'")
    host = controller[0]
    groups, inline = hosts[host]
    base = sources[0].parent
    merged: dict[str, Any] = {}
    order = ["all"] + [g for g in groups if g != "all"]
    for group in order:
        for path in _vars_from(base / "group_vars", group):
            _merge(merged, load_yaml(path), path)
    for path in _vars_from(base / "host_vars", host):
        _merge(merged, load_yaml(path), path)
    merged.update(inline)
    return host, merged


def parse_override(text: str) -> tuple[str, Any]:
    """``--set KEY=VALUE`` (the value is read as YAML: numbers, booleans, lists)."""
    if "=" not in text:
        raise ReportError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as exc:
        raise ReportError(f"--set {key}: {exc}") from exc
    return key.strip(), value


def load_inventory(path: Path, repo: Path, loader: str = "auto", overrides: dict[str, Any] | None = None) -> Inventory:
    """Read the controller host's variables of the inventory at ``path``."""
    sources = static_sources(path)
    notes: list[str] = []
    binary = _ansible_inventory_binary() if loader in {"auto", "ansible"} else None
    if loader == "ansible" and binary is None:
        raise ReportError("ansible-inventory not found (activate the virtualenv, or use --loader yaml)")
    if binary is not None:
        listing = _unwrap(_run_ansible_inventory(binary, sources, repo))
        host = _controller_host(listing, str(path))
        hostvars = listing.get("_meta", {}).get("hostvars", {}).get(host, {})
        used = "ansible-inventory --list (static sources only)"
    else:
        host, hostvars = _read_yaml_inventory(sources)
        used = "the YAML files directly (group_vars, host_vars)"
        if loader == "auto":
            notes.append("ansible-inventory was not found: variables were read from the YAML files directly")
    variables = {str(k): mark_runtime(v) for k, v in dict(hostvars).items()}
    settings = {k: v for k, v in variables.items() if k.startswith("gearlift_")}
    hardening = {k: v for k, v in variables.items() if k.startswith("hardening_")}
    for key, value in (overrides or {}).items():
        target = hardening if key.startswith("hardening_") else settings
        target[key] = mark_runtime(value)
        notes.append(f"{key} set on the command line (--set)")
    return Inventory(
        path=path, host=host, settings=settings, hardening=hardening, loader=used, sources=sources, notes=notes
    )
