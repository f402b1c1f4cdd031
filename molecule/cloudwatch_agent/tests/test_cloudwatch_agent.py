"""Behaviour of the gearlift.platform.cloudwatch_agent role on the shared test host.

The host has no route to AWS (and the tests send nothing off the machine), so the agent is
not installed here: these tests prove that the role says so and why, that the configuration
is rendered, valid and complete anyway, that rsyslog feeds the files the agent would ship,
and that the apt source and cloudwatch_agent_required behave. Grouped by concern: each
testinfra function costs ~6 s over the podman connection.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
PREFIX = "/gearlift/shop/molecule"
APP_LOG = "/var/log/gearlift-app.log"
CONVERGE_VARS = {
    "cloudwatch_agent_log_group_prefix": PREFIX,
    "cloudwatch_agent_package_url": "https://127.0.0.1:9/amazon-cloudwatch-agent.deb",
    "cloudwatch_agent_package_sha256": "0" * 64,
    "cloudwatch_agent_download_timeout": 5,
    "cloudwatch_agent_disk_mount_points": ["/", "/var"],
    "cloudwatch_agent_extra_log_files": [{"file_path": "/var/log/shop/gc.log", "log_group_suffix": "app-gc"}],
}
EXPECTED_STREAMS = {
    f"{PREFIX}/apache-access": "/var/log/apache2/access.json",
    f"{PREFIX}/apache-error": "/var/log/apache2/error.log",
    f"{PREFIX}/app": APP_LOG,
    f"{PREFIX}/auth": "/var/log/auth.log",
    f"{PREFIX}/audit": "/var/log/audit/audit.log",
    f"{PREFIX}/aide": "/var/log/aide/aide.log",
    f"{PREFIX}/payment-page": "/var/log/gearlift/payment-page.log",
    f"{PREFIX}/syslog": "/var/log/syslog",
    f"{PREFIX}/app-gc": "/var/log/shop/gc.log",
}


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
                    "roles": [{"role": "gearlift.platform.cloudwatch_agent", "vars": variables}],
                    "post_tasks": [
                        {
                            "name": "Show the facts the role set",
                            "ansible.builtin.debug": {
                                "msg": "FACTS installed={{ cloudwatch_agent_installed }}"
                                " reason={{ cloudwatch_agent_install_reason }}"
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


def test_configuration_rendered_valid_and_complete(host):
    config = host.file(CONFIG)
    assert config.exists, f"{CONFIG} was not rendered although the agent is not installed"
    assert (config.user, config.group, config.mode) == ("root", "root", 0o644), "config must be root:root 0644"
    assert host.run(f"python3 -m json.tool {CONFIG} >/dev/null").rc == 0, "config is not valid JSON on the host"
    data = json.loads(config.content_string)

    assert data["agent"]["metrics_collection_interval"] == 60, data["agent"]
    assert data["agent"]["run_as_user"] == "root", "root reads audit.log (0600) and auth.log"

    metrics = data["metrics"]
    assert metrics["namespace"] == "CWAgent"
    assert metrics["append_dimensions"] == {
        "AutoScalingGroupName": "${aws:AutoScalingGroupName}",
        "ImageId": "${aws:ImageId}",
        "InstanceId": "${aws:InstanceId}",
        "InstanceType": "${aws:InstanceType}",
    }, metrics["append_dimensions"]
    collected = metrics["metrics_collected"]
    assert collected["mem"]["measurement"] == ["mem_used_percent"]
    assert collected["disk"]["measurement"] == ["used_percent"]
    assert collected["disk"]["resources"] == ["/", "/var"], "disk mount points from the variable"
    assert collected["swap"]["measurement"] == ["swap_used_percent"]

    collect_list = data["logs"]["logs_collected"]["files"]["collect_list"]
    streams = {entry["log_group_name"]: entry["file_path"] for entry in collect_list}
    assert streams == EXPECTED_STREAMS, f"log groups/files differ: {streams}"
    assert len(collect_list) == len(EXPECTED_STREAMS), "a log group appears twice"
    assert {entry["log_stream_name"] for entry in collect_list} == {"{instance_id}"}
    # Retention belongs to the platform (365 days + KMS, playbooks/fleet.yml), never to the agent.
    assert "retention_in_days" not in config.content_string


def test_agent_not_installed_and_no_service(host):
    assert not host.file("/opt/aws/amazon-cloudwatch-agent/bin").exists, "agent binaries present: who installed them?"
    load_state = host.check_output("systemctl show -p LoadState --value amazon-cloudwatch-agent.service").strip()
    assert load_state == "not-found", f"a service exists without the agent: {load_state}"
    staging = host.file("/var/cache/gearlift/cloudwatch-agent")
    assert staging.is_directory and staging.mode == 0o700 and staging.user == "root", "staging area must be root-only"
    assert not host.file("/var/cache/gearlift/cloudwatch-agent/amazon-cloudwatch-agent.deb").exists, (
        "a failed download must not leave a package behind"
    )


def test_rsyslog_feeds_the_files_the_agent_ships(host):
    rsyslog = host.service("rsyslog")
    assert rsyslog.is_running and rsyslog.is_enabled, "rsyslog must run: the agent cannot read the journal"
    route = host.file("/etc/rsyslog.d/30-gearlift-app.conf")
    assert route.exists and route.mode == 0o644, "app routing drop-in missing"
    assert host.run("rsyslogd -N1").rc == 0, "the whole rsyslog configuration must validate"
    assert host.run("logrotate -d /etc/logrotate.d/gearlift-app").rc == 0, "app log rotation config invalid"

    # Matched as rsyslog writes them ("<tag>[pid]: <text>"): the commands themselves are logged to
    # the journal (and so to syslog) by Ansible, with the marker in their arguments.
    marker = f"gearlift-cw-test-{time.time_ns()}"
    app_line = f"java(\\[[0-9]+\\])?: app {marker}$"
    auth_line = f"sshd(\\[[0-9]+\\])?: auth {marker}$"
    host.check_output(f"echo 'app {marker}' | systemd-cat -t java")
    host.check_output(f"logger -p auth.info -t sshd 'auth {marker}'")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        app_hit = host.run(f"grep -qE '{app_line}' {APP_LOG}").rc == 0
        auth_hit = host.run(f"grep -qE '{auth_line}' /var/log/auth.log").rc == 0
        if app_hit and auth_hit:
            break
        time.sleep(1)
    assert app_hit, f"the app's journal output (identifier java) did not reach {APP_LOG}"
    assert auth_hit, "auth messages did not reach /var/log/auth.log"
    assert host.run(f"grep -qE '{app_line}' /var/log/syslog").rc == 1, "app lines must not be duplicated in syslog"
    app_log = host.file(APP_LOG)
    assert app_log.mode == 0o640, f"{APP_LOG} must not be world-readable"


def test_role_reports_not_installed_with_the_reason(host, tmp_path):
    """A third run of the converge settings: clear warning, the facts, nothing changed, no failure."""
    before = host.check_output(f"sha256sum {CONFIG}").split()[0]
    rc, out = _run_role(host, tmp_path, CONVERGE_VARS)
    assert rc == 0, f"a missing package must not fail the play when not required: {out}"
    assert "WARNING CloudWatch agent NOT INSTALLED" in out, out
    assert "could not be had from url https://127.0.0.1:9/amazon-cloudwatch-agent.deb" in out, out
    assert "Connection refused" in out, f"the reason (the download error) must be in the message: {out}"
    assert "The configuration is still rendered and validated" in out, out
    assert "FACTS installed=False reason=not installed:" in out, out
    assert "changed=0" in out and "failed=0" in out, out
    assert host.check_output(f"sha256sum {CONFIG}").split()[0] == before, "the rerun changed the configuration"


def test_apt_source_and_required_fail_with_the_reason(host, tmp_path):
    """apt source without an AWS repository + cloudwatch_agent_required: the play stops and says why."""
    before = host.check_output(f"sha256sum {CONFIG}").split()[0]
    variables = {
        **CONVERGE_VARS,
        "cloudwatch_agent_package_source": "apt",
        "cloudwatch_agent_required": True,
    }
    rc, out = _run_role(host, tmp_path, variables)
    assert rc == 2, f"cloudwatch_agent_required must fail the play: {out}"
    assert "cloudwatch_agent_required is true" in out, out
    assert "could not be had from apt package amazon-cloudwatch-agent" in out, out
    assert "No package matching 'amazon-cloudwatch-agent'" in out, f"apt's own reason must be reported: {out}"
    assert "set cloudwatch_agent_required: false" in out, "the message must name the override"
    assert host.check_output(f"sha256sum {CONFIG}").split()[0] == before
