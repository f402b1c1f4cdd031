"""Bad input to the gearlift.platform.cloudwatch_agent and ssm_agent roles fails early, with a clear message.

Each case runs the real ``ansible-playbook`` (check mode, local connection) on a throw-away playbook that
applies the role to this machine, and checks that the run stops in the argument validation or in the
role's first validation task: nothing installed, downloaded or changed. One more case checks, in check
mode and limited to the role's validation and reporting tasks, that the default package URL is AWS's
official one for the region, the OS and the architecture.
"""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .role_harness import run_check

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
SPEC_TASK = "Validating arguments against arg spec 'main'"
CW_TASK = "CloudWatch agent | Validate the settings"
SSM_TASK = "SSM agent | Validate the settings"
SSM_DERIVED_TASK = "SSM agent | The derived source needs a checksum too"
SHA = "a" * 64
CW_GOOD: dict[str, object] = {
    "cloudwatch_agent_log_group_prefix": "/gearlift/shop/test",
    "cloudwatch_agent_package_sha256": SHA,
}
SSM_GOOD: dict[str, object] = {"ssm_agent_package_sha256": SHA}
PLAYBOOK = """\
- name: agent role check
  hosts: all
  gather_facts: true
  become: false
  roles:
    - role: gearlift.platform.{role}
"""


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


def _run(
    tmp_path: Path, role: str, variables: dict[str, object], extra_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return run_check(tmp_path, PLAYBOOK.format(role=role), variables, extra_args)


def _assert_stopped_at(result: subprocess.CompletedProcess[str], task: str, message: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    tasks = re.findall(r"^TASK \[(.*?)\]", result.stdout, flags=re.M)
    assert tasks, out
    assert task in tasks[-1], f"stopped at {tasks[-1]!r}, expected {task!r}\n{out}"
    # Messages are folded YAML: compare with whitespace collapsed.
    assert " ".join(message.split()) in " ".join(out.split()), out
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", result.stdout), out
    # Nothing after the validation ran: no install, download, package or file task.
    for later in ("Install", "Download", "rsyslog", "Configuration directory", "Agent configuration", "Which agent"):
        assert f"| {later}" not in result.stdout, f"{later!r} ran after a validation failure\n{out}"


@pytest.mark.parametrize(
    ("role", "variables", "task", "message"),
    [
        pytest.param(
            "cloudwatch_agent",
            {**CW_GOOD, "cloudwatch_agent_log_group_prefix": "gearlift/shop/test"},
            CW_TASK,
            "cloudwatch_agent_log_group_prefix must start with '/', not end with '/'",
            id="cw-prefix-without-slash",
        ),
        pytest.param(
            "cloudwatch_agent",
            {"cloudwatch_agent_package_sha256": SHA},
            SPEC_TASK,
            "missing required arguments: cloudwatch_agent_log_group_prefix",
            id="cw-missing-prefix",
        ),
        pytest.param(
            "cloudwatch_agent",
            {**CW_GOOD, "cloudwatch_agent_package_url": "http://mirror.example.com/amazon-cloudwatch-agent.deb"},
            CW_TASK,
            "cloudwatch_agent_package_url must be an https:// URL (got 'http://mirror.example.com/"
            "amazon-cloudwatch-agent.deb'): plain http:// lets anyone on the path swap the package. "
            "Set cloudwatch_agent_allow_insecure_source: true",
            id="cw-http-url-without-override",
        ),
        pytest.param(
            "cloudwatch_agent",
            {**CW_GOOD, "cloudwatch_agent_package_source": "ftp"},
            SPEC_TASK,
            "value of cloudwatch_agent_package_source must be one of: url, apt, s3, path, none, got: ftp",
            id="cw-unknown-source",
        ),
        pytest.param(
            "cloudwatch_agent",
            {"cloudwatch_agent_log_group_prefix": "/gearlift/shop/test"},
            CW_TASK,
            "cloudwatch_agent_package_sha256 must be 64 hex digits (got 0 characters), and it is required with "
            "cloudwatch_agent_package_source 'url'",
            id="cw-url-without-checksum",
        ),
        pytest.param(
            "cloudwatch_agent",
            {
                **CW_GOOD,
                "cloudwatch_agent_package_source": "path",
                "cloudwatch_agent_package_sha256": "",
                "cloudwatch_agent_package_path": "/srv/amazon-cloudwatch-agent.deb",
            },
            CW_TASK,
            "it is required with cloudwatch_agent_package_source 'path'",
            id="cw-path-without-checksum",
        ),
        pytest.param(
            "cloudwatch_agent",
            {**CW_GOOD, "cloudwatch_agent_metrics_collection_interval": 45},
            CW_TASK,
            "cloudwatch_agent_metrics_collection_interval must be one of 10, 30, 60, 120, 300 seconds (got 45)",
            id="cw-interval-45",
        ),
        pytest.param(
            "cloudwatch_agent",
            {**CW_GOOD, "cloudwatch_agent_gpg_fingerprint": "ABCD"},
            CW_TASK,
            "cloudwatch_agent_gpg_key_file and cloudwatch_agent_gpg_fingerprint go together",
            id="cw-fingerprint-without-key",
        ),
        pytest.param(
            "ssm_agent",
            {**SSM_GOOD, "ssm_agent_package_source": "yum"},
            SPEC_TASK,
            "value of ssm_agent_package_source must be one of: auto, snap, url, apt, s3, path, none, got: yum",
            id="ssm-unknown-source",
        ),
        pytest.param(
            "ssm_agent",
            {**SSM_GOOD, "ssm_agent_package_url": "http://mirror.example.com/amazon-ssm-agent.deb"},
            SSM_TASK,
            "ssm_agent_package_url must be an https:// URL (got 'http://mirror.example.com/amazon-ssm-agent.deb')",
            id="ssm-http-url-without-override",
        ),
        pytest.param(
            "ssm_agent",
            {"ssm_agent_package_source": "url"},
            SSM_TASK,
            "ssm_agent_package_sha256 must be 64 hex digits (got 0 characters), and it is required with "
            "ssm_agent_package_source 'url'",
            id="ssm-url-without-checksum",
        ),
        pytest.param(
            "ssm_agent",
            {**SSM_GOOD, "ssm_agent_package_source": "s3", "ssm_agent_s3_bucket": "Not_A_Bucket"},
            SSM_TASK,
            "ssm_agent_package_source s3 needs ssm_agent_s3_bucket (a bucket name) and ssm_agent_s3_key",
            id="ssm-s3-without-bucket-and-key",
        ),
    ],
)
def test_bad_input_fails_early(
    tmp_path: Path, role: str, variables: dict[str, object], task: str, message: str
) -> None:
    _assert_stopped_at(_run(tmp_path, role, variables), task, message)


@pytest.mark.skipif(_os_release().get("ID") != "debian", reason="the controller is not Debian")
def test_ssm_auto_means_url_on_debian_and_needs_a_checksum(tmp_path: Path) -> None:
    _assert_stopped_at(
        _run(tmp_path, "ssm_agent", {}),
        SSM_DERIVED_TASK,
        "ssm_agent_package_source auto means 'url' on Debian, which needs ssm_agent_package_sha256",
    )


@pytest.mark.skipif(
    _os_release().get("ID") not in ("debian", "ubuntu") or platform.machine() not in ("x86_64", "aarch64"),
    reason="the controller is not Debian/Ubuntu on x86_64/aarch64",
)
def test_cloudwatch_default_url_is_the_official_package(tmp_path: Path) -> None:
    """Check mode, validation and reporting tasks only: the default source names AWS's regional package."""
    result = _run(
        tmp_path,
        "cloudwatch_agent",
        {**CW_GOOD, "cloudwatch_agent_region": "eu-west-1"},
        ("--tags", "cloudwatch_agent_validate"),
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, out
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    url = (
        "https://amazoncloudwatch-agent-eu-west-1.s3.eu-west-1.amazonaws.com/"
        f"{_os_release()['ID']}/{arch}/latest/amazon-cloudwatch-agent.deb"
    )
    assert f"not installed yet: check mode, the install from url {url} was skipped" in out, out
    assert "WARNING CloudWatch agent NOT INSTALLED" in out, out
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", result.stdout), out


def test_the_agent_ships_to_exactly_the_log_groups_fleet_creates() -> None:
    """playbooks/fleet.yml creates naming_host_log_groups (KMS, retention) and the instance role may write only
    there; the agent may not create a group. Its streams are the same suffixes (the payment page's included)."""
    naming = yaml.safe_load((REPO / "playbooks" / "vars" / "naming.yml").read_text(encoding="utf-8"))
    agent = yaml.safe_load((REPO / "roles" / "cloudwatch_agent" / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert [s["suffix"] for s in agent["__cloudwatch_agent_log_streams"]] == naming["naming_host_log_groups"]
    filters = yaml.safe_load((REPO / "playbooks" / "vars" / "host_metric_filters.yml").read_text(encoding="utf-8"))
    assert {f["log_group"] for f in filters["fleet_host_metric_filters"]} <= set(naming["naming_host_log_groups"])
