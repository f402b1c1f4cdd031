"""Drive an Ansible module's main() in-process and capture exit_json / fail_json.

Shared by the unit tests of gearlift's AWS modules. Also reads a task of a playbook or a role's
task file and renders its module arguments the way Ansible does (``task_args``), so a test runs a
module with exactly what the task would send, and hands a module's result back as the task's
registered variable (``registered``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
from ansible.module_utils.testing import patch_module_args
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

REPO = Path(__file__).resolve().parents[2]
# Collection modules without metadata (amazon.aws, community.aws, gearlift.platform) use this one.
_PROFILE = "legacy"


class ModuleExit(Exception):
    pass


class ModuleFail(Exception):
    pass


@dataclass
class Result:
    failed: bool
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def _exit_json(self: Any, **kwargs: Any) -> None:
    raise ModuleExit(kwargs)


def _fail_json(self: Any, msg: str = "", **kwargs: Any) -> None:
    raise ModuleFail({"msg": msg, **kwargs})


def run_main(main: Callable[[], None], args: dict[str, Any], check_mode: bool = False, diff: bool = False) -> Result:
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json),
    ):
        try:
            main()
        except ModuleExit as e:
            return Result(False, e.args[0])
        except ModuleFail as e:
            return Result(True, e.args[0])
    raise AssertionError("module returned without exit_json/fail_json")


def dummy_aws_env(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Dummy credentials and region; nothing from the caller's AWS profile leaks in."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_URL", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)


class CallLog:
    """Ordered log of (operation, params) across every boto3 client it is attached to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def attach(self, client: Any) -> Any:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append((model.name, copy.deepcopy(params)))

        client.meta.events.register("before-parameter-build.*.*", record)
        return client

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def params(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]


# ------------------------------------------------------------------ tasks of playbooks and roles

_LOADER = DataLoader()
_BLOCK_PARTS = ("block", "rescue", "always")
_PLAY_PARTS = ("pre_tasks", "tasks", "post_tasks")


def _walk(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        if any(part in task for part in _BLOCK_PARTS):
            for part in _BLOCK_PARTS:
                yield from _walk(task.get(part) or [])
        else:
            yield task


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """Every task of a playbook or task file (blocks flattened), loaded as Ansible loads it."""
    data = _LOADER.load_from_file(str(path), trusted_as_template=True)
    if data and all("hosts" in item or "import_playbook" in item for item in data):
        data = [t for play in data for part in _PLAY_PARTS for t in play.get(part) or []]
    return list(_walk(data))


def find_task(path: Path, name_start: str) -> dict[str, Any]:
    """The one task of ``path`` whose name starts with ``name_start``."""
    found = [t for t in load_tasks(path) if str(t.get("name", "")).startswith(name_start)]
    assert len(found) == 1, f"{path.name}: {len(found)} tasks named {name_start!r}..."
    return found[0]


def module_of(task: Mapping[str, Any]) -> str:
    """The task's module (its fully qualified key; task keywords have no dots)."""
    [module] = [k for k in task if "." in k]
    return module


def templar(variables: Mapping[str, Any]) -> Templar:
    return Templar(loader=_LOADER, variables=dict(variables))


def role_defaults(role: str) -> dict[str, Any]:
    return dict(_LOADER.load_from_file(str(REPO / "roles" / role / "defaults" / "main.yml"), trusted_as_template=True))


def condition(expression: Any, variables: Mapping[str, Any]) -> bool:
    """A when/until/that of a task (a string or a list, all must hold), evaluated as Ansible does."""
    tm = templar(variables)
    items = expression if isinstance(expression, list) else [expression]
    return all(tm.evaluate_conditional(item) for item in items)


def as_module_gets(value: Any) -> Any:
    """Templated task data as a module receives it (controller-to-module JSON, no tags)."""
    encoder = get_module_encoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
    decoder = get_module_decoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
    return json.loads(json.dumps(value, cls=encoder), cls=decoder)


def registered(result: Result) -> dict[str, Any]:
    """A module's result as the task's registered variable holds it (module-to-controller JSON:
    datetimes become ISO 8601 strings)."""
    encoder = get_module_encoder(_PROFILE, Direction.MODULE_TO_CONTROLLER)
    decoder = get_module_decoder(_PROFILE, Direction.MODULE_TO_CONTROLLER)
    data = json.loads(json.dumps(result.data, cls=encoder), cls=decoder)
    return {**data, "failed": result.failed, "changed": data.get("changed", False)}


def task_args(path: Path, name_start: str, variables: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The module and its arguments of one task of ``path``, templated with ``variables`` (plus the
    task's own vars) as the module would receive them; fails if the task's ``when`` would skip it."""
    task = find_task(path, name_start)
    context = {**variables, **(task.get("vars") or {})}
    if "when" in task:
        assert condition(task["when"], context), f"{name_start}: the task would be skipped"
    module = module_of(task)
    return module, as_module_gets(templar(context).template(task[module]))
