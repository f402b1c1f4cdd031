"""Behaviour of the gearlift.platform.ssm_agent role on the shared test host.

The host has no route to AWS (and the tests send nothing off the machine), so the agent is
not installed here: these tests prove that the role says so and why without failing when
ssm_agent_required is false, that it fails with the reason when the agent is required, and
that nothing half-installed is left. Grouped: each testinfra function costs ~6 s.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

CONVERGE_VARS = {
    "ssm_agent_required": False,
    "ssm_agent_package_url": "https://127.0.0.1:9/amazon-ssm-agent.deb",
    "ssm_agent_package_sha256": "0" * 64,
    "ssm_agent_download_timeout": 5,
}
UNITS = ("amazon-ssm-agent.service", "snap.amazon-ssm-agent.amazon-ssm-agent.service")


def _run_role(host, tmp_path, variables):
    """Apply the role again with these variables; print its facts; return (rc, one-line output)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Role run from the verifier",
                    "hosts": "all",
                    "become": True,
                    "roles": [{"role": "gearlift.platform.ssm_agent", "vars": variables}],
                    "post_tasks": [
                        {
                            "name": "Show the facts the role set",
                            "ansible.builtin.debug": {
                                "msg": "FACTS installed={{ ssm_agent_installed }} unit={{ ssm_agent_unit }}"
                                " reason={{ ssm_agent_install_reason }}"
                            },
                        }
                    ],
                }
            ]
        )
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(playbook),
        ],
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_nothing_half_installed(host):
    for unit in UNITS:
        state = host.check_output(f"systemctl show -p LoadState --value {unit}").strip()
        assert state == "not-found", f"{unit} exists ({state}) although the agent could not be installed"
    assert not host.exists("amazon-ssm-agent"), "agent binary on PATH without a package"
    assert host.run("dpkg-query -W amazon-ssm-agent").rc != 0, "amazon-ssm-agent package registered"
    staging = host.file("/var/cache/gearlift/ssm-agent")
    assert staging.is_directory and staging.mode == 0o700 and staging.user == "root", "staging area must be root-only"
    assert not host.file("/var/cache/gearlift/ssm-agent/amazon-ssm-agent.deb").exists, (
        "a failed download must not leave a package behind"
    )


def test_not_required_reports_not_installed_with_the_reason(host, tmp_path):
    rc, out = _run_role(host, tmp_path, CONVERGE_VARS)
    assert rc == 0, f"ssm_agent_required false: a missing agent must not fail the play: {out}"
    assert "WARNING SSM agent NOT INSTALLED, Session Manager cannot reach this host" in out, out
    assert "could not be had from url https://127.0.0.1:9/amazon-ssm-agent.deb" in out, out
    assert "Connection refused" in out, f"the reason (the download error) must be in the message: {out}"
    assert "FACTS installed=False unit= reason=not installed:" in out, out
    assert "changed=0" in out and "failed=0" in out, out


def test_required_fails_with_the_reason_and_the_override(host, tmp_path):
    """The production default (ssm_agent_required: true) with the apt source: the play stops and says why."""
    variables = {**CONVERGE_VARS, "ssm_agent_required": True, "ssm_agent_package_source": "apt"}
    rc, out = _run_role(host, tmp_path, variables)
    assert rc == 2, f"ssm_agent_required must fail the play: {out}"
    assert "ssm_agent_required is true" in out, out
    assert "could not be had from apt package amazon-ssm-agent" in out, out
    assert "No package matching 'amazon-ssm-agent'" in out, f"apt's own reason must be reported: {out}"
    assert "set ssm_agent_required: false" in out, "the message must name the override"
