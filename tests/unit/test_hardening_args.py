"""Bad input to the gearlift.platform.hardening role fails early, with a clear message.

Each case runs the real ``ansible-playbook`` (check mode, local connection, no facts) on a
throw-away playbook that applies only the role's validation entry point
(``tasks_from: validate``, with its own argument spec) to this machine, and checks that the
run stops in the argument-spec check or in the named validation task with a message that
names the variable (and the override, where there is one). A last case proves the defaults
pass, so the failures come from the bad values and not from the harness.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .role_harness import run_check

SPEC_TASK = "Validating arguments against arg spec 'validate'"
PASSWORD_TASK = "Hardening | Validate the password policy"
HASH_TASK = "Hardening | Validate the password hashing cost"
LOCKOUT_TASK = "Hardening | Validate the lock-out policy"
TIMEOUT_TASK = "Hardening | Validate the idle session timeout"
CRYPTO_TASK = "Hardening | Refuse weak SSH algorithms"
ROOT_TASK = "Hardening | Refuse root and weak SSH logins"
ADMIN_TASK = "Hardening | Validate the admin path"
MISC_TASK = "Hardening | Validate the firewall, time and audit settings"
EGRESS_TASK = "Hardening | Validate the outbound firewall policy"
PLAYBOOK = """\
- name: hardening bad-input check
  hosts: all
  gather_facts: false
  become: false
  tasks:
    - name: Validation entry point only
      ansible.builtin.import_role:
        name: gearlift.platform.hardening
        tasks_from: validate
"""


def _run(tmp_path: Path, variables: dict[str, object]) -> subprocess.CompletedProcess[str]:
    return run_check(tmp_path, PLAYBOOK, variables)


def _assert_stopped_at(result: subprocess.CompletedProcess[str], task: str, messages: list[str]) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    tasks = re.findall(r"^TASK \[(.*?)\]", result.stdout, flags=re.M)
    assert tasks, out
    assert task in tasks[-1], f"stopped at {tasks[-1]!r}, expected {task!r}\n{out}"
    flat = " ".join(out.split())
    for message in messages:
        assert message in flat, f"{message!r} not in output\n{out}"
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", result.stdout), out


@pytest.mark.parametrize(
    ("variables", "task", "messages"),
    [
        pytest.param(
            {"hardening_pwquality_minlen": 8},
            PASSWORD_TASK,
            ["hardening_pwquality_minlen must be >= 12 (got 8)", "hardening_allow_weak_password_policy: true"],
            id="minlen-8",
        ),
        pytest.param(
            {"hardening_pwquality_dcredit": 0},
            PASSWORD_TASK,
            ["so a password holds digits and letters (got 0 / -1)", "hardening_allow_weak_password_policy"],
            id="no-digit-required",
        ),
        pytest.param(
            {"hardening_pass_max_days": 365},
            PASSWORD_TASK,
            ["hardening_pass_max_days 1..90 (got 365)"],
            id="max-days-365",
        ),
        pytest.param(
            {"hardening_pass_min_days": 0},
            PASSWORD_TASK,
            ["hardening_pass_min_days 1..hardening_pass_max_days (got 0;", "hardening_allow_weak_password_policy"],
            id="min-days-0",
        ),
        pytest.param(
            {"hardening_pass_min_days": 120, "hardening_allow_weak_password_policy": True},
            PASSWORD_TASK,
            ["(got 120; above the maximum a password expires before it may be changed, no override)"],
            id="min-days-above-max-even-with-override",
        ),
        pytest.param(
            {"hardening_sha_crypt_rounds": 1000},
            HASH_TASK,
            ["hardening_sha_crypt_rounds must be 5000..999999999 (got 1000;", "(no override)"],
            id="sha-crypt-1000-rounds",
        ),
        pytest.param(
            {"hardening_yescrypt_cost_factor": 12},
            HASH_TASK,
            ["hardening_yescrypt_cost_factor 1..11 (got 12;"],
            id="yescrypt-cost-12",
        ),
        pytest.param(
            {"hardening_sha_crypt_rounds": "lots"},
            SPEC_TASK,
            ["hardening_sha_crypt_rounds", "cannot be converted to an int"],
            id="sha-crypt-rounds-not-a-number",
        ),
        pytest.param(
            {"hardening_aide_checksums": ["sha512", "md5"]},
            SPEC_TASK,
            ["hardening_aide_checksums must be one or more of: sha256, sha512. Got no match for: md5"],
            id="aide-md5",
        ),
        pytest.param(
            {"hardening_aide_checksums": []},
            MISC_TASK,
            ["hardening_aide_checksums must name at least one of sha256, sha512 (got [])"],
            id="aide-no-checksums",
        ),
        pytest.param(
            {"hardening_faillock_deny": 20},
            LOCKOUT_TASK,
            [
                "hardening_faillock_deny must be 1..10 failed attempts (got 20)",
                "hardening_allow_weak_lockout_policy: true",
            ],
            id="faillock-deny-20",
        ),
        pytest.param(
            {"hardening_faillock_unlock_time": 600},
            LOCKOUT_TASK,
            [
                "hardening_faillock_unlock_time at least 1800 seconds",
                "(got 600)",
                "hardening_allow_weak_lockout_policy",
            ],
            id="unlock-10-minutes",
        ),
        pytest.param(
            {"hardening_shell_timeout": 3600},
            TIMEOUT_TASK,
            [
                "hardening_shell_timeout (TMOUT) must be 1..900 seconds (got 3600)",
                "hardening_allow_long_session_timeout",
            ],
            id="tmout-1h",
        ),
        pytest.param(
            {"hardening_ssh_client_alive_interval": 600},
            TIMEOUT_TASK,
            ["(got 600 x 2)", "hardening_allow_long_session_timeout: true"],
            id="client-alive-30min",
        ),
        pytest.param(
            {"hardening_ssh_ciphers": ["aes256-ctr", "aes128-cbc", "3des-cbc"]},
            CRYPTO_TASK,
            ["hardening_ssh_ciphers ['aes128-cbc', '3des-cbc']", "no override"],
            id="cbc-ciphers",
        ),
        pytest.param(
            {"hardening_ssh_macs": ["hmac-sha2-256", "hmac-sha1"]},
            CRYPTO_TASK,
            ["hardening_ssh_macs ['hmac-sha1']"],
            id="sha1-mac",
        ),
        pytest.param(
            {"hardening_ssh_permit_root_login": "yes"},
            ROOT_TASK,
            ['hardening_ssh_permit_root_login "yes" is refused (got yes'],
            id="root-login-yes",
        ),
        pytest.param(
            {"hardening_ssh_max_auth_tries": 6},
            ROOT_TASK,
            ["hardening_ssh_max_auth_tries must be 1..4 (got 6)"],
            id="max-auth-tries-6",
        ),
        pytest.param(
            {"hardening_admin_path": "ssh", "hardening_ssh_enabled": True},
            ADMIN_TASK,
            ["set hardening_admin_user to the named sudo user", 'got ""'],
            id="ssh-admin-path-without-user",
        ),
        pytest.param(
            {"hardening_admin_path": "ssh", "hardening_admin_user": "ops"},
            ADMIN_TASK,
            ["hardening_ssh_enabled: true (got False)"],
            id="ssh-admin-path-ssh-closed",
        ),
        pytest.param(
            {"hardening_chrony_servers": []},
            MISC_TASK,
            ["hardening_chrony_servers must not be empty"],
            id="no-time-server",
        ),
        pytest.param(
            {"hardening_umask": "022"},
            MISC_TASK,
            ["hardening_umask must deny", "got 022"],
            id="umask-022",
        ),
        pytest.param(
            {"hardening_firewall_default_outgoing": "allow"},
            EGRESS_TASK,
            [
                "hardening_firewall_default_outgoing allow lets the host reach anywhere",
                "hardening_allow_unrestricted_egress: true",
            ],
            id="egress-allow-without-override",
        ),
        pytest.param(
            {"hardening_firewall_egress_db_cidrs": ["10.0.0.0/33"]},
            EGRESS_TASK,
            ["hardening_firewall_egress_db_cidrs: '10.0.0.0/33' is not an address or CIDR"],
            id="egress-bad-cidr",
        ),
        pytest.param(
            {"hardening_firewall_egress_extra": [{"port": 80}]},
            EGRESS_TASK,
            ["hardening_firewall_egress_extra[0]: needs port and cidr"],
            id="egress-extra-without-cidr",
        ),
        pytest.param(
            {"hardening_admin_path": "console"},
            SPEC_TASK,
            ["hardening_admin_path must be one of: ssm, ssh, got: console"],
            id="unknown-admin-path",
        ),
        pytest.param(
            {"hardening_auditd_max_log_file_action": "delete"},
            SPEC_TASK,
            ["hardening_auditd_max_log_file_action must be one of: keep_logs, rotate, got: delete"],
            id="auditd-delete-logs",
        ),
    ],
)
def test_bad_input_fails_early(tmp_path: Path, variables: dict[str, object], task: str, messages: list[str]) -> None:
    _assert_stopped_at(_run(tmp_path, variables), task, messages)


def test_overrides_accept_weaker_values(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        {
            "hardening_pwquality_minlen": 10,
            "hardening_allow_weak_password_policy": True,
            "hardening_faillock_deny": 15,
            "hardening_allow_weak_lockout_policy": True,
            "hardening_shell_timeout": 1800,
            "hardening_allow_long_session_timeout": True,
            "hardening_pass_min_days": 0,
            "hardening_firewall_default_outgoing": "allow",
            "hardening_allow_unrestricted_egress": True,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", result.stdout), result.stdout


def test_defaults_pass(tmp_path: Path) -> None:
    result = _run(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD_TASK in result.stdout
    assert MISC_TASK in result.stdout
    assert EGRESS_TASK in result.stdout
