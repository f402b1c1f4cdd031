"""roles/fleet_patch: the surge the plan asks for, the concurrency guard, what a failed host ends as, the settle's
wait and the report, evaluated from the role's own task files as Ansible evaluates them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml
from ansible.template import trust_as_template

from tests.unit.module_harness import REPO, condition, find_task, role_defaults, task_args, templar

ROLE = REPO / "roles" / "fleet_patch"
PLAN = ROLE / "tasks" / "plan.yml"
HOST = ROLE / "tasks" / "host.yml"
SETTLE = ROLE / "tasks" / "settle.yml"


def _plan_vars(min_size: int, desired: int, max_size: int, batches: list[int]) -> dict[str, Any]:
    zones = [f"eu-west-1{chr(97 + i)}" for i in range(len(batches))]
    return {
        "fleet_patch_batches": batches,
        "fleet_patch_zones": zones,
        "fleet_patch_group_name": "shop",
        "fleet_patch_capacity": {"min": min_size, "max": max_size, "desired": desired, "recorded_surge": []},
    }


def _surge_count(variables: dict[str, Any]) -> int:
    _, args = task_args(PLAN, "Fleet patch | The surge the largest batch needs", variables)
    return int(args["fleet_patch_surge_count"])


def _guard_passes(variables: dict[str, Any]) -> bool:
    task = find_task(PLAN, "Fleet patch | Refuse a batch that cannot keep")
    return condition(task["ansible.builtin.assert"]["that"], variables)


def test_at_min_equals_desired_the_plan_surges_by_the_batch() -> None:
    variables = _plan_vars(2, 2, 4, [1, 1])  # both shipped inventories: min = desired = 2, max 4, two zones
    assert _guard_passes(variables) and _surge_count(variables) == 1


def test_room_below_desired_needs_no_surge() -> None:
    variables = _plan_vars(2, 4, 8, [2, 2])
    assert _guard_passes(variables) and _surge_count(variables) == 0


@pytest.mark.parametrize(("min_size", "desired", "max_size", "batch"), [(2, 2, 3, 2), (2, 2, 2, 1), (1, 3, 3, 3)])
def test_a_batch_above_max_minus_min_is_refused_with_the_fix(
    min_size: int, desired: int, max_size: int, batch: int
) -> None:
    variables = _plan_vars(min_size, desired, max_size, [batch])
    assert not _guard_passes(variables)
    task = find_task(PLAN, "Fleet patch | Refuse a batch that cannot keep")
    message = templar(variables).template(task["ansible.builtin.assert"]["fail_msg"])
    assert f"at most max - min = {max_size - min_size}" in message and "Raise the group's max size" in message
    assert "Nothing was changed" in message


def test_every_accepted_plan_keeps_the_minimum_in_service_and_stays_within_max() -> None:
    checked = 0
    for min_size, desired, max_size, batch in itertools.product(range(0, 5), range(1, 7), range(1, 9), range(1, 5)):
        if not min_size <= desired <= max_size:
            continue
        variables = _plan_vars(min_size, desired, max_size, [batch, 1])
        if not _guard_passes(variables):
            assert batch > max_size - min_size
            continue
        surge = _surge_count(variables)
        assert desired + surge <= max_size, (min_size, desired, max_size, batch, surge)
        assert desired + surge - batch >= min_size, (min_size, desired, max_size, batch, surge)
        # As much as the batch (the fleet keeps its desired capacity in service) when max leaves the room.
        if desired - batch < min_size:
            assert surge == min(batch, max_size - desired)
        else:
            assert surge == 0
        checked += 1
    assert checked > 100


def _action(answers: bool, lifecycle: str) -> str:
    variables = {
        "fleet_patch_health_url": "http://127.0.0.1/health",
        "fleet_patch_result": {"host": "i-1", "status": "failed"},
        "__fleet_patch_answers": answers,
        "__fleet_patch_lifecycle": lifecycle,
    }
    _, args = task_args(HOST, "Fleet patch | record what was done with the host", variables)
    return str(args["fleet_patch_result"]["action"])


def _runs(task_name: str, answers: bool, lifecycle: str) -> bool:
    task = find_task(HOST, task_name)
    return condition(task["when"], {"__fleet_patch_answers": answers, "__fleet_patch_lifecycle": lifecycle})


@pytest.mark.parametrize(
    ("answers", "lifecycle", "out_of_standby", "terminated", "words"),
    [
        (True, "Standby", True, False, "returned to service"),
        (False, "Standby", True, True, "the group replaces it"),
        (False, "InService", False, True, "the group replaces it"),
        (True, "InService", False, False, "left InService"),
        (False, "not in the group", False, False, "left not in the group, not answering"),
    ],
)
def test_a_failed_host_ends_in_service_or_replaced_never_in_standby(
    answers: bool, lifecycle: str, out_of_standby: bool, terminated: bool, words: str
) -> None:
    assert _runs("PCI 6.3.3 | Take the failed host out of Standby", answers, lifecycle) is out_of_standby
    assert _runs("PCI 6.3.3 | Terminate the failed host", answers, lifecycle) is terminated
    assert words in _action(answers, lifecycle)
    # Replaced, not shrunk: the group launches a new host from the image.
    task = find_task(HOST, "PCI 6.3.3 | Terminate the failed host")
    assert task["amazon.aws.autoscaling_instance"]["decrement_desired_capacity"] is False


def test_standby_decrements_only_under_the_plans_surge() -> None:
    """The rollout's Standby keeps its decrement (the group does not replace a host being patched); the plan's
    surge is what keeps the desired capacity at or above the minimum meanwhile."""
    task = find_task(HOST, "PCI 6.3.3 | Take the host out of service")
    assert task["amazon.aws.autoscaling_instance"]["decrement_desired_capacity"] is True
    rescue = [t.get("name", "") for t in yaml.safe_load(HOST.read_text())[0]["rescue"]]
    assert rescue.index("Fleet patch | settle the surge (the rollout stops here)") < rescue.index(
        "Fleet patch | write the report so far"
    )


def _settle_ready(healthy: list[str], record: dict[str, Any]) -> bool:
    task = find_task(SETTLE, "Fleet patch | wait until the fleet's own hosts are healthy targets")
    result = {
        "target_groups": [
            {
                "targets_health_description": [
                    {"target": {"id": i}, "target_health": {"state": "healthy"}} for i in healthy
                ]
            }
        ]
    }
    return condition(task["until"], {"__fleet_patch_settle_tg": result, "__fleet_patch_settle_record": record})


def test_the_surge_is_settled_only_when_the_fleets_own_hosts_hold_the_baseline() -> None:
    record = {"baseline": 2, "count": 1, "instances": ["i-s"], "run": "r"}
    assert not _settle_ready(["i-s", "i-a"], record), "the surge host does not count toward the baseline"
    assert not _settle_ready(["i-a"], record)
    assert _settle_ready(["i-a", "i-replacement", "i-s"], record)


def test_defaults_and_argument_specs_agree_on_the_new_settings() -> None:
    defaults = role_defaults("fleet_patch")
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for entry in ("plan", "host", "settle"):
        for name in ("fleet_patch_surge_timeout", "fleet_patch_target_timeout"):
            assert specs[entry]["options"][name]["default"] == defaults[name], (entry, name)
    readme = (ROLE / "README.md").read_text()
    assert "fleet_patch_surge_timeout" in readme and "gearlift:surge" in readme


def test_the_report_shows_the_surge_and_what_was_done_with_a_failed_host() -> None:
    source = trust_as_template((ROLE / "templates" / "report.md.j2").read_text())
    variables = {
        "fleet_patch_run": "r1",
        "__fleet_patch_planned": ["i-a", "i-b"],
        "__fleet_patch_capacity": {"min": 2, "desired": 2, "max": 4},
        "__fleet_patch_surge": {"count": 1, "instances": ["i-s"], "status": "settled", "terminated": ["i-s"]},
        "__fleet_patch_records": [
            {
                "host": "i-a",
                "availability_zone": "eu-west-1a",
                "status": "failed",
                "step": "health",
                "error": "the app answers: timed out",
                "packages": [],
                "rebooted": True,
                "seconds": 61.0,
                "action": "terminated, not answering http://127.0.0.1/health; the group replaces it",
            }
        ],
    }
    text = templar(variables).template(source)
    assert "min 2, desired 2," in text and "max 4" in text
    assert "Surge: 1 host(s) i-s" in text and "settled, terminated i-s" in text
    assert "| health: the app answers: timed out | terminated, not answering" in text
    assert "| i-b | | not touched | | | | | |" in text
