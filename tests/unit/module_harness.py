"""Drive an Ansible module's main() in-process and capture exit_json / fail_json.

Shared by the unit tests of gearlift's AWS modules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


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
