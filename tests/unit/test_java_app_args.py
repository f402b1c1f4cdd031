"""Bad input to the gearlift.platform.java_app role fails early, with a clear message.

Each case runs the real ``ansible-playbook`` (check mode, local connection) on a throw-away
playbook that applies the role to this machine with bad variables, and checks that the run
stops in the argument validation or in the role's first validation tasks: nothing installed,
nothing changed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .role_harness import run_check

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
SPEC_TASK = "Validating arguments against arg spec 'main'"
SETTINGS_TASK = "Java app | Validate the settings"
OS_TASK = "Java app | Refuse a Java version this OS does not ship"
GOOD = {
    "java_app_artifact_src": "/nonexistent/shop.jar",
    "java_app_artifact_sha256": "0" * 64,
}
PLAYBOOK = """\
- name: java_app bad-input check
  hosts: all
  gather_facts: true
  become: false
  roles:
    - role: gearlift.platform.java_app
"""


def _debian_12() -> bool:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return False
    return "ID=debian" in text.splitlines() and 'VERSION_ID="12"' in text.splitlines()


def _run(tmp_path: Path, variables: dict[str, object]) -> subprocess.CompletedProcess[str]:
    return run_check(tmp_path, PLAYBOOK, variables)


def _assert_stopped_at(result: subprocess.CompletedProcess[str], task: str, message: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    failed = re.findall(r"^TASK \[(.*?)\]", result.stdout, flags=re.M)
    assert failed, out
    assert task in failed[-1], f"stopped at {failed[-1]!r}, expected {task!r}\n{out}"
    assert message in out, out
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", result.stdout), out
    # Nothing after the validation ran: no package, user or file task.
    assert "Java app | Install" not in result.stdout
    assert "PCI 8.6.1" not in result.stdout


@pytest.mark.parametrize(
    ("variables", "task", "message"),
    [
        pytest.param(
            {**GOOD, "java_app_java_version": 11},
            SPEC_TASK,
            "java_app_java_version must be one of: 17, 21, got: 11",
            id="unknown-java-version",
        ),
        pytest.param(
            {"java_app_artifact_src": GOOD["java_app_artifact_src"]},
            SPEC_TASK,
            "missing required arguments: java_app_artifact_sha256",
            id="missing-sha256",
        ),
        pytest.param(
            {"java_app_artifact_sha256": GOOD["java_app_artifact_sha256"]},
            SPEC_TASK,
            "missing required arguments: java_app_artifact_src",
            id="missing-artifact-src",
        ),
        pytest.param(
            {**GOOD, "java_app_artifact_type": "foo"},
            SPEC_TASK,
            "java_app_artifact_type must be one of: jar, war, got: foo",
            id="artifact-type-foo",
        ),
        pytest.param(
            {**GOOD, "java_app_dns_ttl": 120},
            SETTINGS_TASK,
            "java_app_dns_ttl (got 120) and java_app_dns_negative_ttl are 0..60 seconds",
            id="dns-ttl-120",
        ),
        pytest.param(
            {**GOOD, "java_app_artifact_sha256": "abc123"},
            SETTINGS_TASK,
            "java_app_artifact_sha256 is 64 hex digits (got 6 characters)",
            id="short-sha256",
        ),
        pytest.param(
            {**GOOD, "java_app_artifact_src": "http://example.com/shop.jar"},
            SETTINGS_TASK,
            "plain http:// is refused",
            id="plain-http-url",
        ),
        pytest.param(
            {**GOOD, "java_app_upload_dir": "designs"},
            SETTINGS_TASK,
            "java_app_upload_dir is an absolute path other than / (got designs)",
            id="relative-upload-dir",
        ),
        pytest.param(
            {**GOOD, "java_app_upload_max_bytes": 0},
            SETTINGS_TASK,
            "java_app_upload_max_bytes is 1..1073741824",
            id="upload-max-0",
        ),
        pytest.param(
            {**GOOD, "java_app_session_timeout": 0},
            SETTINGS_TASK,
            "java_app_session_timeout is 1..604800 seconds",
            id="session-timeout-0",
        ),
        pytest.param(
            {**GOOD, "java_app_artifact_type": "war", "java_app_war_context_path": "/../etc"},
            SETTINGS_TASK,
            "java_app_war_context_path is / or /name (got /../etc)",
            id="war-context-traversal",
        ),
        pytest.param(
            {**GOOD, "java_app_artifact_type": "war", "java_app_port": 80},
            SETTINGS_TASK,
            "with java_app_artifact_type war, java_app_port is 1024..65535",
            id="war-privileged-port",
        ),
        pytest.param(
            {**GOOD, "java_app_artifact_type": "war", "java_app_session_store": "redis"},
            SETTINGS_TASK,
            "java_app_tomcat_session_jar_src is the controller path of gearlift-tomcat-sessions.jar",
            id="war-redis-without-session-manager-jar",
        ),
        pytest.param(
            {
                **GOOD,
                "java_app_artifact_type": "war",
                "java_app_session_store": "redis",
                "java_app_tomcat_session_jar_src": "/nonexistent/gearlift-tomcat-sessions.jar",
                "java_app_tomcat_session_jar_sha256": "abc",
            },
            SETTINGS_TASK,
            "java_app_tomcat_session_jar_sha256 its 64-hex sha256",
            id="war-redis-short-session-manager-sha256",
        ),
        pytest.param(
            {**GOOD, "java_app_db_tls": "off"},
            SPEC_TASK,
            "java_app_db_tls must be one of: required, preferred, disabled, got: off",
            id="db-tls-off",
        ),
    ],
)
def test_bad_input_fails_early(tmp_path: Path, variables: dict[str, object], task: str, message: str) -> None:
    _assert_stopped_at(_run(tmp_path, variables), task, message)


@pytest.mark.skipif(not _debian_12(), reason="the controller is not Debian 12")
def test_java_21_refused_on_debian_12(tmp_path: Path) -> None:
    _assert_stopped_at(
        _run(tmp_path, {**GOOD, "java_app_java_version": 21}),
        OS_TASK,
        "Debian 12 has only OpenJDK 17",
    )
