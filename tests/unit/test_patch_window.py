"""The maintenance window's own guard (plugins/module_utils/patch_window.py) and the role's defaults through it.

The SSM window cannot drain a host or add capacity before it patches: a reboot of in-service hosts
and more than one host at a time are refused unless their named override is set; malformed values
are refused whatever the overrides say. The module's refusal before any AWS call is covered in
test_twin_emulator_lifecycle.py (test_patching_refuses_bad_settings_before_any_call).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ansible_collections.gearlift.platform.plugins.module_utils.patch_window import window_errors

from tests.unit.module_harness import REPO, role_defaults, task_args

ROLE = REPO / "roles" / "fleet_patch"


def window(**change: Any) -> dict[str, Any]:
    return {"max_concurrency": "1", "max_errors": "0", "reboot_option": "NoReboot", **change}


def test_one_host_at_a_time_without_a_reboot_is_accepted() -> None:
    assert window_errors(window()) == []


@pytest.mark.parametrize("value", ["100%", "50%", "1%", "2", "10"])
def test_more_than_one_host_at_a_time_is_refused_naming_the_override(value: str) -> None:
    errors = window_errors(window(max_concurrency=value))
    assert len(errors) == 1 and "allow_unsafe_concurrency" in errors[0] and repr(value) in errors[0]
    assert window_errors(window(max_concurrency=value, allow_unsafe_concurrency=True)) == []


@pytest.mark.parametrize("value", ["0", "0%", "101%", "-1", "1.5", "", "all", "1 %"])
def test_malformed_concurrency_is_refused_even_with_the_override(value: str) -> None:
    errors = window_errors(window(max_concurrency=value, allow_unsafe_concurrency=True))
    assert len(errors) == 1 and "must be a positive number or a percentage of 1-100%" in errors[0]


@pytest.mark.parametrize(("value", "ok"), [("0", True), ("1", True), ("10%", True), ("100%", True), ("x", False)])
def test_max_errors_format(value: str, ok: bool) -> None:
    assert (window_errors(window(max_errors=value)) == []) is ok


def test_a_reboot_of_hosts_in_service_is_refused_unless_accepted() -> None:
    errors = window_errors(window(reboot_option="RebootIfNeeded"))
    assert len(errors) == 1 and "without a drain" in errors[0] and "playbooks/patch.yml" in errors[0]
    assert "allow_undrained_reboot" in errors[0]
    assert window_errors(window(reboot_option="RebootIfNeeded", allow_undrained_reboot=True)) == []


def _managed_window(**overrides: Any) -> dict[str, Any]:
    variables = {
        **role_defaults("fleet_patch"),
        "fleet_patch_region": "eu-west-1",
        "fleet_patch_baseline_name": "shop-ubuntu",
        "fleet_patch_patch_group": "shop",
        "fleet_patch_window_name": "shop-patching",
        **overrides,
    }
    module, args = task_args(ROLE / "tasks" / "managed.yml", "PCI 6.3.3 | Patch baseline", variables)
    assert module == "gearlift.platform.ssm_patching"
    return dict(args["window"])


def test_the_roles_window_defaults_pass_the_guard_and_do_not_reboot() -> None:
    sent = _managed_window()
    assert sent["reboot_option"] == "NoReboot" and sent["max_concurrency"] == "1"
    assert window_errors(sent) == []


def test_the_roles_overrides_reach_the_guard() -> None:
    refused = _managed_window(fleet_patch_window_max_concurrency="100%")
    assert any("allow_unsafe_concurrency" in e for e in window_errors(refused))
    accepted = _managed_window(
        fleet_patch_window_max_concurrency="100%",
        fleet_patch_window_allow_unsafe_concurrency=True,
        fleet_patch_window_reboot_option="RebootIfNeeded",
        fleet_patch_window_allow_undrained_reboot=True,
    )
    assert window_errors(accepted) == []


def test_argument_specs_and_defaults_agree_on_the_window_settings() -> None:
    defaults = role_defaults("fleet_patch")
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["managed"]["options"]
    for name in (
        "fleet_patch_window_max_concurrency",
        "fleet_patch_window_allow_unsafe_concurrency",
        "fleet_patch_window_reboot_option",
        "fleet_patch_window_allow_undrained_reboot",
    ):
        assert spec[name]["default"] == defaults[name], name
