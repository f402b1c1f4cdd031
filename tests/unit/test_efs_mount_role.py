"""gearlift.platform.efs_mount: bad input stops at the validation (check mode on localhost); the unit it renders."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from .role_harness import run_check

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "efs_mount"
PLAYBOOK = """\
- name: efs_mount role check
  hosts: all
  gather_facts: false
  become: false
  roles:
    - role: gearlift.platform.efs_mount
"""
VALIDATE = "EFS mount | Validate the settings"


def _stopped_at(result: subprocess.CompletedProcess[str], task: str, words: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    tasks = re.findall(r"^TASK \[(.*?)\]", result.stdout, flags=re.M)
    assert tasks and task in tasks[-1], out
    assert words in " ".join(out.split()), out
    for later in ("Install amazon-efs-utils", "The boot-time mount script", "Enable the unit"):
        assert later not in result.stdout, out


@pytest.mark.parametrize(
    ("variables", "task", "words"),
    [
        pytest.param({}, "Validating arguments against arg spec 'main'", "efs_mount_path", id="path-missing"),
        pytest.param({"efs_mount_path": "/"}, VALIDATE, "efs_mount_path must be an absolute directory", id="root"),
        pytest.param({"efs_mount_path": "/var/lib/shop/designs/"}, VALIDATE, "without a trailing /", id="slash"),
        pytest.param({"efs_mount_path": "/srv/d", "efs_mount_attempts": 0}, VALIDATE, "are 1..60", id="attempts"),
        pytest.param(
            {"efs_mount_path": "/srv/d", "efs_mount_package_path": "/srv/amazon-efs-utils.deb"},
            VALIDATE,
            "goes with its 64-hex-digit efs_mount_package_sha256",
            id="deb-without-sha256",
        ),
    ],
)
def test_bad_input_stops_at_the_validation(tmp_path: Path, variables: dict[str, object], task: str, words: str) -> None:
    _stopped_at(run_check(tmp_path, PLAYBOOK, variables), task, words)


def test_the_unit_mounts_before_the_app_and_is_skipped_without_a_file_system() -> None:
    variables = {
        **DataLoader().load_from_file(str(ROLE / "defaults" / "main.yml")),
        **DataLoader().load_from_file(str(ROLE / "vars" / "main.yml")),
        "efs_mount_path": "/var/lib/shop/designs",
        "ansible_managed": "managed",
    }
    source = (ROLE / "templates" / "gearlift-efs-mount.service.j2").read_text()
    unit = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source))
    lines = unit.splitlines()
    assert "Before=remote-fs.target" in lines
    assert "EnvironmentFile=-/etc/gearlift/instance.env" in lines
    assert "ExecCondition=/bin/sh -c 'test -n \"$${GEARLIFT_EFS_FILE_SYSTEM_ID:-}\"'" in lines
    assert 'ExecStart=/usr/local/sbin/gearlift-efs-mount mount "/var/lib/shop/designs" 10 6 1' in lines
    assert "TimeoutStartSec=390" in lines
    assert "WantedBy=multi-user.target" in lines
