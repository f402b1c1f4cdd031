"""The audit engine of the hardening role (templates/audit/catalog.json.j2) judges host output right.

The role's audit reads the host with read-only commands and renders this template to compare
the output with each control's check. Here the template is rendered by the real
``ansible-playbook`` (local, no facts) with synthetic command output, so pass, fail and the
skip reasons can be checked for hosts that are hardened, not hardened or containers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
TEMPLATE = REPO / "roles" / "hardening" / "templates" / "audit" / "catalog.json.j2"

CONTROLS: list[dict[str, Any]] = [
    {
        "id": "5.1.20",
        "cis": "5.1.20",
        "pci": "8.2.2",
        "title": "root login",
        "toggle": "t_on",
        "requires": {"package": "openssh-server"},
        "check": {"type": "sshd", "key": "permitrootlogin", "value": "no"},
    },
    {
        "id": "5.1.16",
        "cis": "5.1.16",
        "title": "auth tries",
        "toggle": "t_on",
        "check": {"type": "sshd", "key": "maxauthtries", "value": "4", "op": "le"},
    },
    {
        "id": "5.1.6",
        "cis": "5.1.6",
        "title": "ciphers",
        "toggle": "t_on",
        "check": {"type": "sshd", "key": "ciphers", "value": ["aes256-ctr", "aes128-ctr"], "op": "set"},
    },
    {
        "id": "7.1.5",
        "cis": "7.1.5",
        "title": "shadow",
        "toggle": "t_on",
        "check": {"type": "stat", "path": "/etc/shadow", "mode": "0640", "owner": "root", "group": ["root", "shadow"]},
    },
    {
        "id": "5.3.3.2.2",
        "cis": "5.3.3.2.2",
        "title": "minlen",
        "toggle": "t_on",
        "check": {
            "type": "content",
            "path": "/etc/security/pwquality.conf.d",
            "regex": "^\\s*minlen\\s*=\\s*(\\d+)",
            "op": "ge",
            "value": 12,
        },
    },
    {
        "id": "3.3.1",
        "cis": "3.3.1",
        "title": "forwarding",
        "toggle": "t_on",
        "container": False,
        "container_reason": "sysctl is read-only",
        "check": {"type": "sysctl", "key": "net.ipv4.ip_forward", "value": 0},
    },
    {
        "id": "6.3.2",
        "cis": "6.3.2",
        "cis_2204": "6.1.2",
        "title": "aide timer",
        "toggle": "t_on",
        "check": {"type": "unit", "name": "aide.timer", "enabled": True, "active": True},
    },
    {
        "id": "1.1.2.1.4",
        "cis": "1.1.2.1.4",
        "title": "noexec /tmp",
        "toggle": "t_on",
        "check": {"type": "mount", "target": "/tmp", "options": ["noexec"]},
    },
    {
        "id": "6.2.3.8",
        "cis": "6.2.3.8",
        "title": "identity",
        "toggle": "t_on",
        "check": {"type": "audit_key", "key": "identity"},
    },
    {
        "id": "1.6.2",
        "cis": "1.6.2",
        "title": "banner",
        "toggle": "t_on",
        "check": {
            "type": "all",
            "checks": [
                {"type": "content", "path": "/etc/issue", "regex": "\\S"},
                {"type": "content", "path": "/etc/issue", "regex": "(Debian|\\\\[mrsv])", "absent": True},
            ],
        },
    },
    {
        "id": "pci-5.3.1",
        "pci": "5.3.1",
        "title": "freshclam",
        "toggle": ["t_on", "t_off"],
        "check": {"type": "unit", "name": "aide.timer", "enabled": True},
    },
]
UNITS = ["aide.timer"]
HARDENED = {
    "sshd": "permitrootlogin no\nmaxauthtries 3\nciphers aes128-ctr,aes256-ctr\n",
    "stat": "/etc/shadow|640|root|shadow\n",
    "content": "/etc/security/pwquality.conf.d/50-x.conf:minlen = 14\n/etc/issue:Authorised access only.\n",
    "sysctl": "net.ipv4.ip_forward = 0\n",
    "units": "Id=aide.timer\nUnitFileState=enabled\nActiveState=active\n",
    "mounts": "/tmp tmpfs rw,nosuid,nodev,noexec,relatime\n",
    "auditctl": "-w /etc/passwd -p wa -k identity\n",
    "packages": "openssh-server ii \n",
}
WEAK = {
    "sshd": "permitrootlogin yes\nmaxauthtries 6\nciphers aes128-cbc,aes256-ctr\n",
    "stat": "/etc/shadow|644|root|shadow\n",
    "content": "/etc/security/pwquality.conf.d/50-x.conf:minlen = 8\n/etc/issue:Debian GNU/Linux 12 \\n \\l\n",
    "sysctl": "net.ipv4.ip_forward = 1\n",
    "units": "Id=aide.timer\nUnitFileState=disabled\nActiveState=inactive\n",
    "mounts": "/tmp tmpfs rw,nosuid,nodev,relatime\n",
    "auditctl": "No rules\n",
    "packages": "openssh-server ii \n",
}
PLAYBOOK = """\
- name: render the audit engine
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Render
      ansible.builtin.copy:
        content: "{{ lookup('ansible.builtin.template', template_path) }}"
        dest: "{{ result_path }}"
        mode: "0600"
"""


def _render(
    tmp_path: Path,
    outputs: dict[str, str],
    in_container: bool,
    mode: str = "audit",
    controls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    variables = {
        "template_path": str(TEMPLATE),
        "result_path": str(tmp_path / "result.json"),
        "__hardening_controls": CONTROLS if controls is None else controls,
        "__hardening_toggles": {"t_on": True, "t_off": False},
        "__hardening_in_container": in_container,
        "__hardening_audit_outputs": {name: {"rc": 0, "stdout": text} for name, text in outputs.items()},
        "__hardening_audit_units": UNITS,
        "__hardening_cis_field": "cis_2204",
        "__hardening_catalog_mode": mode,
    }
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "vars.json").write_text(json.dumps(variables), encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(tmp_path / "play.yml"),
            "-e",
            f"@{tmp_path / 'vars.json'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {item["id"]: item for item in json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))}


def test_hardened_host_passes(tmp_path: Path) -> None:
    results = _render(tmp_path, HARDENED, in_container=False)
    failing = {key: value for key, value in results.items() if value["status"] == "fail"}
    assert not failing, failing
    assert results["6.3.2"]["cis"] == "6.1.2"  # the OS's id (cis_2204 here)
    assert results["pci-5.3.1"]["status"] == "skipped"
    assert results["pci-5.3.1"]["detail"] == "toggle off: t_off"
    assert results["7.1.5"]["detail"] == "/etc/shadow 640 root:shadow"


def test_weak_host_fails_every_check(tmp_path: Path) -> None:
    results = _render(tmp_path, WEAK, in_container=False)
    for control_id in (
        "5.1.20",
        "5.1.16",
        "5.1.6",
        "7.1.5",
        "5.3.3.2.2",
        "3.3.1",
        "6.3.2",
        "1.1.2.1.4",
        "6.2.3.8",
        "1.6.2",
    ):
        assert results[control_id]["status"] == "fail", results[control_id]
    assert "missing noexec" in results["1.1.2.1.4"]["detail"]
    assert "Debian" in results["1.6.2"]["detail"]


def test_container_and_missing_package_are_skipped_with_reasons(tmp_path: Path) -> None:
    outputs = {**HARDENED, "packages": ""}
    results = _render(tmp_path, outputs, in_container=True)
    assert results["3.3.1"]["status"] == "skipped"
    assert results["3.3.1"]["detail"] == "not applicable in a container: sysctl is read-only"
    assert results["5.1.20"]["status"] == "skipped"
    assert results["5.1.20"]["detail"] == "openssh-server not installed"
    plan = _render(tmp_path, outputs, in_container=True, mode="plan")
    assert set(plan) == {"3.3.1", "pci-5.3.1"}


OPTIONAL_SYSCTL = {
    "id": "3.3.5",
    "cis": "3.3.5",
    "title": "redirects",
    "toggle": "t_on",
    "check": {
        "type": "all",
        "checks": [
            {"type": "sysctl", "key": "net.ipv4.conf.all.accept_redirects", "value": 0},
            {"type": "sysctl", "key": "net.ipv6.conf.all.accept_redirects", "value": 0, "optional": True},
        ],
    },
}


def test_optional_sysctl_passes_when_absent_and_is_judged_when_present(tmp_path: Path) -> None:
    def judge(sysctl: str) -> dict[str, Any]:
        outputs = {**HARDENED, "sysctl": sysctl}
        return _render(tmp_path, outputs, in_container=False, controls=[OPTIONAL_SYSCTL])["3.3.5"]

    assert judge("net.ipv4.conf.all.accept_redirects = 0\n")["status"] == "pass"  # kernel without IPv6
    ipv6_on = judge("net.ipv4.conf.all.accept_redirects = 0\nnet.ipv6.conf.all.accept_redirects = 1\n")
    assert ipv6_on["status"] == "fail" and "net.ipv6.conf.all.accept_redirects = 1" in ipv6_on["detail"], ipv6_on
    ipv4_missing = judge("net.ipv6.conf.all.accept_redirects = 0\n")
    assert ipv4_missing["status"] == "fail", ipv4_missing  # only keys marked optional may be absent


def test_home_directory_check_of_the_catalog(tmp_path: Path) -> None:
    """CIS 7.2.9 as the role's catalog writes it: owner and mode 0750 or stricter, from the helper's output."""
    catalog = yaml.safe_load((REPO / "roles" / "hardening" / "vars" / "main.yml").read_text(encoding="utf-8"))
    control = {**next(c for c in catalog["__hardening_controls"] if c["id"] == "7.2.9"), "toggle": "t_on"}

    def judge(lines: str) -> dict[str, Any]:
        outputs = {**HARDENED, "interactive_homes": lines}
        return _render(tmp_path, outputs, in_container=False, controls=[control])["7.2.9"]

    assert judge("/home/ops|750|ops|ops\n/home/dev|700|dev|dev\n/srv/app|2750|app|app\n")["status"] == "pass"
    assert judge("")["status"] == "pass"  # no local interactive user with a home directory
    for bad in ("/home/ops|755|ops|ops", "/home/ops|770|ops|ops", "/home/ops|751|ops|ops", "/home/ops|700|root|ops"):
        result = judge(f"/home/dev|700|dev|dev\n{bad}\n")
        assert result["status"] == "fail" and bad in result["detail"], (bad, result)
