"""Drive an Ansible module's main() in-process and capture exit_json / fail_json.

Shared by the unit tests of gearlift's AWS modules.
"""

from __future__ import annotations

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
