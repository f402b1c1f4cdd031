"""The audit engine of the hardening role (plugins/filter/hardening.py) judges host output right.

The role's audit reads the host with read-only commands (roles/hardening/tasks/audit.yml) and the
gearlift.platform.hardening_audit filter compares the output with each control's check. Here the
filter runs on synthetic command output, so pass, fail and the skip reasons can be checked for
hosts that are hardened, not hardened or containers; a last test runs the role's real audit
entry point (ansible-playbook, local) to prove the catalog resolves and is judged end to end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.gearlift.platform.plugins.filter.hardening import (
    compare,
    hardening_audit,
    hardening_audit_reads,
    hardening_controls,
    hardening_egress_checks,
    hardening_egress_rules,
    hardening_ingress_checks,
    hardening_plan,
    mode_ok,
)

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"

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
TOGGLES = {"t_on": True, "t_off": False}


def _catalog(controls: list[dict[str, Any]]) -> dict[str, Any]:
    """The controls as catalog files (section_<N> from the CIS id; PCI DSS-only ones in section_pci)."""
    catalog: dict[str, Any] = {}
    for control in controls:
        section = str(control["cis"]).split(".")[0] if control.get("cis") else "pci"
        entry = {**control, "level": 1} if control.get("cis") else dict(control)
        body = catalog.setdefault(
            f"__hardening_catalog_section_{section}", {"title": "t", "toggle": f"hardening_section_{section}"}
        )
        body.setdefault("controls", []).append(entry)
    return catalog


def _render(
    tmp_path: Path,
    outputs: dict[str, str],
    in_container: bool,
    mode: str = "audit",
    controls: list[dict[str, Any]] | None = None,
    toggles: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The audit (or the plan) of the controls for a host whose commands printed outputs."""
    normalised = hardening_controls(_catalog(CONTROLS if controls is None else controls))
    values = TOGGLES if toggles is None else toggles
    if mode == "plan":
        items = hardening_plan(normalised, values, in_container, "cis_2204")
    else:
        registered = {name: {"rc": 0, "stdout": text} for name, text in outputs.items()}
        items = hardening_audit(normalised, values, in_container, "cis_2204", registered, UNITS)
    json.dumps(items)  # plain data, as set_fact stores it
    return {item["id"]: item for item in items}


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
    catalog = yaml.safe_load(
        (REPO / "roles" / "hardening" / "vars" / "catalog" / "section_7.yml").read_text(encoding="utf-8")
    )
    control = {
        **next(c for c in catalog["__hardening_catalog_section_7"]["controls"] if c["id"] == "7.2.9"),
        "toggle": "t_on",
    }

    def judge(lines: str) -> dict[str, Any]:
        outputs = {**HARDENED, "interactive_homes": lines}
        return _render(tmp_path, outputs, in_container=False, controls=[control])["7.2.9"]

    assert judge("/home/ops|750|ops|ops\n/home/dev|700|dev|dev\n/srv/app|2750|app|app\n")["status"] == "pass"
    assert judge("")["status"] == "pass"  # no local interactive user with a home directory
    for bad in ("/home/ops|755|ops|ops", "/home/ops|770|ops|ops", "/home/ops|751|ops|ops", "/home/ops|700|root|ops"):
        result = judge(f"/home/dev|700|dev|dev\n{bad}\n")
        assert result["status"] == "fail" and bad in result["detail"], (bad, result)


def test_mode_and_value_comparisons() -> None:
    assert mode_ok("640", "0644") and mode_ok("600", "0640") and mode_ok("2750", "2750")
    assert not mode_ok("644", "0640") and not mode_ok("4755", "0755") and not mode_ok("x", "0644")
    assert compare("3", "le", 4) and not compare("5", "le", 4) and not compare("n/a", "ge", 1)
    assert compare("aes256-ctr, AES128-ctr", "set", ["aes128-ctr", "aes256-ctr"])
    assert not compare("aes256-ctr", "set", ["aes128-ctr", "aes256-ctr"])
    assert compare("sudo  wheel", "words", ["wheel", "sudo"]) and compare(" No ", "eq", "no")


MANUAL = {
    "id": "1.2.1.1",
    "cis": "1.2.1.1",
    "pci": "6.3.2",
    "title": "GPG keys are configured",
    "toggle": "t_on",
    "manual": {
        "reason": "which keys to trust is a site decision",
        "verify": "apt-key list shows only the vendor's keys",
    },
}


def test_manual_controls_and_section_toggles_are_skipped_with_reasons(tmp_path: Path) -> None:
    results = _render(tmp_path, HARDENED, in_container=False, controls=[*CONTROLS, MANUAL])
    assert results["1.2.1.1"] == {
        "id": "1.2.1.1",
        "cis": "1.2.1.1",
        "pci": "6.3.2",
        "title": "GPG keys are configured",
        "toggle": "t_on",
        "section": "1",
        "level": 1,
        "status": "skipped",
        "detail": "manual: which keys to trust is a site decision",
    }
    off = _render(tmp_path, HARDENED, in_container=False, toggles={**TOGGLES, "hardening_section_5": False})
    assert off["5.1.20"]["detail"] == "section off: hardening_section_5"
    assert off["7.1.5"]["status"] == "pass"
    plan = _render(
        tmp_path, HARDENED, in_container=False, mode="plan", toggles={**TOGGLES, "hardening_section_5": "no"}
    )
    assert {"5.1.20", "5.1.16", "5.1.6", "5.3.3.2.2", "pci-5.3.1"} <= set(plan)


def test_requires_path_and_missing_command_output(tmp_path: Path) -> None:
    control = {
        "id": "6.2.4.1",
        "cis": "6.2.4.1",
        "pci": "10.3.2",
        "title": "audit log files mode",
        "toggle": "t_on",
        "requires": {"path": "/var/log/audit"},
        "check": {"type": "output", "command": "audit_files", "regex": "x", "absent": True},
    }
    skipped = _render(tmp_path, HARDENED, in_container=False, controls=[control])["6.2.4.1"]
    assert skipped["status"] == "skipped" and skipped["detail"] == "/var/log/audit absent"
    present = {**HARDENED, "stat": HARDENED["stat"] + "/var/log/audit|750|root|adm\n"}
    failed = _render(tmp_path, present, in_container=False, controls=[control])["6.2.4.1"]
    assert failed["status"] == "fail" and failed["detail"] == "audit_files: command not available"


def test_audit_reads_what_the_checks_need() -> None:
    controls = hardening_controls(_catalog(CONTROLS))
    reads = hardening_audit_reads(controls, [{"name": "sshd", "binary": "/usr/sbin/sshd"}])
    assert reads == {
        "commands": [],
        "stat_paths": ["/etc/shadow", "/usr/sbin/sshd"],
        "content_paths": ["/etc/issue", "/etc/security/pwquality.conf.d"],
        "units": ["aide.timer"],
    }


PLAYBOOK = """\
- name: the role's audit entry point on this machine (read-only)
  hosts: localhost
  gather_facts: true
  tasks:
    - name: Audit
      ansible.builtin.include_role:
        name: gearlift.platform.hardening
        tasks_from: audit
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ {'results': hardening_audit_results, 'plan_controls': __hardening_controls | length} | to_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the audit reads root-only files")
def test_real_catalog_resolves_and_is_judged_end_to_end(tmp_path: Path) -> None:
    """The role's catalog files, their templates and toggles resolve in Ansible and every control gets a verdict."""
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
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
            f"result_path={tmp_path / 'out.json'}",
            "-e",
            "hardening_rule_5_1_20=false",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    results = {item["id"]: item for item in data["results"]}
    sections = sorted(REPO.joinpath("roles", "hardening", "vars", "catalog").glob("section_*.yml"))
    catalogued = [
        c["id"]
        for path in sections
        for c in yaml.safe_load(path.read_text(encoding="utf-8"))[f"__hardening_catalog_{path.stem}"]["controls"]
    ]
    assert sorted(results) == sorted(catalogued) and data["plan_controls"] == len(catalogued)
    assert all(item["status"] in ("pass", "fail", "skipped") for item in results.values())
    assert not [item for item in results.values() if "unknown check type" in item["detail"]]
    assert (
        results["5.1.20"]["status"] == "skipped" and results["5.1.20"]["detail"] == "toggle off: hardening_rule_5_1_20"
    )
    assert results["pci-6.3.3-apt-listbugs"]["detail"] == "toggle off: hardening_rule_pci_6_3_3_apt_listbugs"


APP_TIER = {
    "https_cidrs": ["0.0.0.0/0"],
    "db_port": 3306,
    "db_cidrs": ["10.20.0.0/16"],
    "efs_cidrs": ["10.20.0.0/16"],
    "dns_servers": ["169.254.169.253"],
    "ntp_servers": ["169.254.169.123"],
    "imds": True,
    "extra": [{"port": 80, "cidr": "0.0.0.0/0", "description": "OS package mirrors"}],
}


def test_egress_allow_list_mirrors_the_app_security_group() -> None:
    resolv = "# stub\nnameserver 127.0.0.53\nnameserver 10.20.0.2\nnameserver ::1\n"
    rules = {(r["to"], r["port"], r["proto"]) for r in hardening_egress_rules(APP_TIER, resolv)}
    assert rules == {
        ("any", 443, "tcp"),  # the app group's 443 out
        ("10.20.0.0/16", 3306, "tcp"),  # the DB
        ("10.20.0.0/16", 2049, "tcp"),  # EFS
        ("any", 80, "tcp"),  # gearlift_app_egress_extra
        ("169.254.169.253", 53, "udp"),
        ("169.254.169.253", 53, "tcp"),
        ("10.20.0.2", 53, "udp"),  # the VPC resolver from resolv.conf; the loopback stubs are not rules
        ("10.20.0.2", 53, "tcp"),
        ("169.254.169.123", 123, "udp"),  # Amazon Time Sync
        ("169.254.169.254", 80, "tcp"),  # IMDS
    }
    no_imds = hardening_egress_rules({**APP_TIER, "imds": False, "ntp_servers": ["ntp.example.org"]})
    assert ("169.254.169.254", 80, "tcp") not in {(r["to"], r["port"], r["proto"]) for r in no_imds}
    assert ("any", 123, "udp") in {(r["to"], r["port"], r["proto"]) for r in no_imds}  # a server by name


def test_egress_checks_match_ufw_status_lines() -> None:
    checks = hardening_egress_checks(hardening_egress_rules(APP_TIER))
    status = (
        "Status: active\nDefault: deny (incoming), deny (outgoing), deny (routed)\n\n"
        "To                         Action      From\n--                         ------      ----\n"
        "443/tcp                    ALLOW OUT   Anywhere                   # gearlift egress: HTTPS\n"
        "10.20.0.0/16 3306/tcp      ALLOW OUT   Anywhere                   # gearlift egress: the database\n"
        "10.20.0.0/16 2049/tcp      ALLOW OUT   Anywhere\n80/tcp                     ALLOW OUT   Anywhere\n"
        "169.254.169.253 53/udp     ALLOW OUT   Anywhere\n169.254.169.253 53/tcp     ALLOW OUT   Anywhere\n"
        "169.254.169.123 123/udp    ALLOW OUT   Anywhere\n169.254.169.254 80/tcp     ALLOW OUT   Anywhere\n"
    )
    control = {"id": "4.2.5", "cis": "4.2.5", "pci": "1.3.2", "title": "egress", "toggle": "t_on"}
    control["check"] = {"type": "all", "checks": checks}
    judge = hardening_controls(_catalog([control]))
    outputs = {"ufw": {"rc": 0, "stdout": status}}
    assert hardening_audit(judge, TOGGLES, False, "cis", outputs, [])[0]["status"] == "pass"
    missing_db = {"ufw": {"rc": 0, "stdout": status.replace("10.20.0.0/16 3306/tcp", "10.99.0.0/16 3306/tcp")}}
    result = hardening_audit(judge, TOGGLES, False, "cis", missing_db, [])[0]
    assert result["status"] == "fail" and "3306" in result["detail"], result


def test_pam_checks_of_the_catalog_read_pam_auth_update_stacks(tmp_path: Path) -> None:
    """The 5.3 PAM checks as the catalog writes them, against stacks as pam-auth-update writes them."""
    path = REPO / "roles" / "hardening" / "vars" / "catalog" / "section_5.yml"
    section = yaml.safe_load(path.read_text(encoding="utf-8"))["__hardening_catalog_section_5"]["controls"]
    ids = ("5.3.2.1", "5.3.3.4.1", "5.3.3.4.3", "5.3.3.4.4", "5.3.2.4", "5.3.3.3.1", "5.3.3.3.2", "5.3.3.3.3")
    controls = [{**c, "toggle": "t_on", "requires": {"package": "openssh-server"}} for c in section if c["id"] in ids]
    hardened = (
        "/etc/pam.d/common-auth:auth\t[success=2 default=ignore]\tpam_unix.so try_first_pass\n"
        "/etc/pam.d/common-account:account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so \n"
        "/etc/pam.d/common-session:session\trequired\tpam_unix.so \n"
        "/etc/pam.d/common-password:password\trequisite\t\t\tpam_pwquality.so retry=3\n"
        "/etc/pam.d/common-password:password\trequisite\tpam_pwhistory.so remember=24 enforce_for_root try_first_pass"
        " use_authtok\n"
        "/etc/pam.d/common-password:password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok"
        " try_first_pass yescrypt\n"
    )
    results = _render(tmp_path, {**HARDENED, "content": hardened}, in_container=False, controls=controls)
    assert {i: r["status"] for i, r in results.items()} == dict.fromkeys(ids, "pass"), results
    debian = hardened.replace("pam_unix.so try_first_pass", "pam_unix.so nullok try_first_pass").replace(
        "remember=24 enforce_for_root", "remember=5"
    )
    weak = _render(tmp_path, {**HARDENED, "content": debian}, in_container=False, controls=controls)
    assert weak["5.3.3.4.1"]["status"] == "fail" and "nullok" in weak["5.3.3.4.1"]["detail"]
    assert weak["5.3.3.3.1"]["status"] == "fail" and weak["5.3.3.3.2"]["status"] == "fail"
    assert weak["5.3.2.1"]["status"] == "pass"


def test_ingress_checks_match_ufw_status_lines_and_refuse_what_is_not_a_port() -> None:
    checks = hardening_ingress_checks([22, "443"])
    assert [c["regex"] for c in checks] == ["^22/tcp +ALLOW IN ", "^443/tcp +ALLOW IN "]
    assert all(c["type"] == "output" and c["command"] == "ufw" for c in checks)
    status = "To                         Action      From\n22/tcp                     ALLOW IN    Anywhere\n"
    assert re.search(checks[0]["regex"], status, re.M) and not re.search(checks[1]["regex"], status, re.M)
    for bad in (["ssh"], [0], [70000], "22", {"22": 1}):
        with pytest.raises(AnsibleFilterError, match="hardening_ingress_checks"):
            hardening_ingress_checks(bad)
