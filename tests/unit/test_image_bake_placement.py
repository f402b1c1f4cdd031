"""gearlift.platform.image_bake: the builder never runs in the fleet's placement (PCI DSS 6.5.3 / 6.5.4) - the launch
step refuses it before any AWS call, naming the override (check mode on localhost)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .role_harness import run_check

PLAYBOOK = """\
- name: image_bake launch check
  hosts: all
  gather_facts: false
  become: false
  tasks:
    - name: Launch
      ansible.builtin.include_role:
        name: gearlift.platform.image_bake
        tasks_from: launch
"""
PLACEMENT = "PCI 6.5.3 / 6.5.4 | Refuse a builder in the fleet's subnet, security group or role"
SETTINGS = "Image bake | Refuse bad settings before anything is launched"
GOOD: dict[str, object] = {
    "image_bake_region": "eu-west-1",
    "image_bake_kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/abc",
    "image_bake_parameter": "/gearlift/shop/production/golden-ami-id",
    "image_bake_boot_test_user_data": "#cloud-config\n",
    "image_bake_subnet_id": "subnet-0b0b",
    "image_bake_security_group_ids": ["sg-0b0b"],
    "image_bake_instance_profile": "shop-production-bake",
    "image_bake_boot_test_subnet_id": "subnet-0a99",
    "image_bake_boot_test_security_group_ids": ["sg-0a99"],
    "image_bake_boot_test_instance_profile": "shop-production-app",
}


def _tasks(stdout: str) -> list[str]:
    """The task names run, without the role's prefix."""
    return [t.split(" : ", 1)[-1] for t in re.findall(r"^TASK \[(.*?)\]", stdout, flags=re.M)]


@pytest.mark.parametrize(
    ("changes", "task", "words"),
    [
        pytest.param(
            {"image_bake_instance_profile": "shop-production-app"},
            PLACEMENT,
            'instance profile "shop-production-app" vs "shop-production-app"',
            id="the-fleets-role",
        ),
        pytest.param(
            {"image_bake_security_group_ids": ["sg-0b0b", "sg-0a99"]}, PLACEMENT, "sg-0b0b,sg-0a99", id="its-group"
        ),
        pytest.param({"image_bake_subnet_id": "subnet-0a99"}, PLACEMENT, "subnet subnet-0a99 vs", id="its-subnet"),
        pytest.param(
            {"image_bake_boot_test_subnet_id": ""},
            SETTINGS,
            "image_bake_boot_test_subnet_id (a subnet id",
            id="no-boot",
        ),
    ],
)
def test_the_builder_in_the_fleets_placement_is_refused(
    tmp_path: Path, changes: dict[str, object], task: str, words: str
) -> None:
    result = run_check(tmp_path, PLAYBOOK, {**GOOD, **changes})
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert task in _tasks(result.stdout)[-1], out
    assert words in " ".join(out.split()), out
    if task == PLACEMENT:
        assert "image_bake_allow_production_placement: true" in " ".join(out.split()), out


def test_the_override_passes_the_placement_guard(tmp_path: Path) -> None:
    """With image_bake_allow_production_placement the guard is skipped and the launch goes on (here to the AWS
    lookups, which fail without an account: the point is that the guard did not stop it)."""
    variables = {
        **GOOD,
        "image_bake_instance_profile": "shop-production-app",
        "image_bake_allow_production_placement": True,
    }
    result = run_check(tmp_path, PLAYBOOK, variables)
    tasks = _tasks(result.stdout)
    assert any(PLACEMENT in t for t in tasks[:-1]), result.stdout  # the guard ran, and a later task after it
    assert "skipping" in result.stdout.split(PLACEMENT)[1].split("TASK [")[0], result.stdout
