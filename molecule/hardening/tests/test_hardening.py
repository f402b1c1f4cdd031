"""Behaviour of the gearlift.platform.hardening role on the Debian 12 test host.

Grouped into few functions: every testinfra call goes through Ansible (~6 s per function).
The golden_image scenario runs this file too, against its image host, with
GEARLIFT_HARDENED_HOSTS and GEARLIFT_AUDIT_DIR set in its verifier env.
"""

import json
import os
from pathlib import Path

import pytest

ADMIN_KEY_USER = "gearlift-admin"
PAM_TEST_USER = "gearlift-pamtest"
PAM_TEST_PASSWORD = "Gl-test-Passw0rd-4711"  # throw-away password of a user in the disposable container
HASH_TEST_PASSWORD = "w7Kq2mZp9xLr4Tvb"  # passes pwquality; set on a throw-away account only
HASH_TEST_PASSWORD_2 = "Rb4nT8wq2ZxPk7Lm"  # a second one (the history refuses reusing the first)
# Which hosts are hardened (the golden_image scenario also has a DB host that is not).
testinfra_hosts = os.environ.get("GEARLIFT_HARDENED_HOSTS", "ansible://all").split(",")


def _sshd_t(host):
    pairs = {}
    for line in host.check_output("/usr/sbin/sshd -T").splitlines():
        key, _, value = line.partition(" ")
        pairs.setdefault(key, value)
    return pairs


def _audit_report():
    base = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if os.environ.get("GEARLIFT_AUDIT_DIR"):
        reports = sorted(Path(os.environ["GEARLIFT_AUDIT_DIR"]).glob("*.json"))
    elif base:
        reports = sorted((Path(base) / "audit").glob("*.json"))
    else:
        reports = sorted(Path("~/.ansible/tmp").expanduser().glob("molecule.*.hardening/audit/*.json"))
    assert reports, f"no audit report under {base or '~/.ansible/tmp'} (converge imports playbooks/audit.yml)"
    return json.loads(reports[0].read_text(encoding="utf-8"))


def test_sshd_hardened(host):
    assert host.run("/usr/sbin/sshd -t").rc == 0
    config = _sshd_t(host)
    assert config["permitrootlogin"] == "no"
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["maxauthtries"] == "3"
    assert config["maxsessions"] == "2"
    assert config["loglevel"] == "VERBOSE"
    assert config["allowgroups"] == "sudo"
    assert config["banner"] == "/etc/issue.net"
    assert (config["clientaliveinterval"], config["clientalivecountmax"]) == ("300", "2")
    assert config["permitemptypasswords"] == "no"
    # Forwarding off one by one (besides DisableForwarding), no TCP keepalive or compression.
    for key in ("allowtcpforwarding", "allowagentforwarding", "x11forwarding", "tcpkeepalive", "compression"):
        assert config[key] == "no", (key, config[key])
    assert not [c for c in config["ciphers"].split(",") if "cbc" in c or "3des" in c or "arcfour" in c]
    assert not [m for m in config["macs"].split(",") if "md5" in m or "sha1" in m]
    assert "sha1" not in config["kexalgorithms"]
    dropin = host.file("/etc/ssh/sshd_config.d/00-gearlift-hardening.conf")
    assert dropin.mode == 0o600 and dropin.user == "root"
    # Socket activation (prepare.yml, as on Ubuntu 24.04): ssh.socket listens, ssh.service is not
    # enabled; the role validated every change although /run/sshd did not exist before it ran.
    socket = host.service("ssh.socket")
    assert socket.is_enabled and socket.is_running
    assert not host.service("ssh.service").is_enabled
    assert host.file("/etc/tmpfiles.d/gearlift-sshd.conf").contains("^d /run/sshd 0755 root root")
    # The daemon the socket starts offers public keys only, shows the banner and refuses weak ciphers.
    attempt = host.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=password,keyboard-interactive root@127.0.0.1 true"
    )
    assert attempt.rc != 0
    assert "Permission denied (publickey)" in attempt.stderr
    assert "Authorised access only" in attempt.stderr
    weak = host.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o Ciphers=aes128-cbc root@127.0.0.1 true"
    )
    assert weak.rc != 0 and "no matching cipher" in weak.stderr, weak.stderr
    assert host.service("ssh").is_running  # started by ssh.socket on the first connection


def test_password_quality_and_lockout(host):
    dropin = host.file("/etc/security/pwquality.conf.d/50-gearlift-hardening.conf").content_string
    assert "minlen = 12" in dropin
    assert "dcredit = -1" in dropin and "lcredit = -1" in dropin
    too_short = host.run("echo 'Xq7short' | pwscore")
    assert too_short.rc != 0 and "shorter than 12" in too_short.stdout + too_short.stderr
    no_digit = host.run("echo 'Xqzmwvtrplkjhgf' | pwscore")
    assert no_digit.rc != 0 and "digit" in no_digit.stdout + no_digit.stderr
    assert host.run("echo 'w7Kq2mZp9xLr4Tvb' | pwscore").rc == 0
    faillock = host.file("/etc/security/faillock.conf").content_string
    assert "\ndeny = 5" in "\n" + faillock
    assert "\nunlock_time = 1800" in "\n" + faillock
    common_auth = host.file("/etc/pam.d/common-auth").content_string
    assert "pam_faillock.so preauth" in common_auth and "pam_faillock.so authfail" in common_auth
    assert "PASS_MAX_DAYS\t90" in host.file("/etc/login.defs").content_string
    # Real PAM stack: 5 wrong passwords lock the account, then the right one is refused too.
    host.run(f"faillock --user {PAM_TEST_USER} --reset")
    assert host.run(f"echo '{PAM_TEST_PASSWORD}' | pamtester sudo {PAM_TEST_USER} authenticate").rc == 0
    for _ in range(5):
        assert host.run(f"echo wrong-password | pamtester sudo {PAM_TEST_USER} authenticate").rc != 0
    locked = host.run(f"echo '{PAM_TEST_PASSWORD}' | pamtester sudo {PAM_TEST_USER} authenticate")
    tally = host.check_output(f"faillock --user {PAM_TEST_USER}")
    host.run(f"faillock --user {PAM_TEST_USER} --reset")
    assert locked.rc != 0, "the account was not locked after 5 failures"
    assert tally.count(" V") + tally.count(" I") >= 5


def test_password_ageing_and_hashing_cost(host):
    """New accounts get PASS_MIN_DAYS / PASS_MAX_DAYS; SHA-crypt hashes carry the configured rounds."""
    user = "gl-hashtest"
    host.run(f"userdel {user}")
    assert host.run(f"useradd -M -s /bin/bash {user}").rc == 0
    try:
        ageing = host.check_output(f"chage -l {user}")
        shadow_sha = host.run(f"echo '{user}:{HASH_TEST_PASSWORD}' | chpasswd -c SHA512 && getent shadow {user}")
        # A new password (pam_pwhistory, CIS 5.3.3.3.x, refuses the one just used), then the first one again.
        shadow_default = host.run(f"echo '{user}:{HASH_TEST_PASSWORD_2}' | chpasswd && getent shadow {user}")
        reused = host.run(f"echo '{user}:{HASH_TEST_PASSWORD}' | chpasswd")
    finally:
        host.run(f"userdel {user}")
    assert "Minimum number of days between password change\t\t: 1" in ageing, ageing
    assert "Maximum number of days between password change\t\t: 90" in ageing, ageing
    assert shadow_sha.rc == 0 and shadow_sha.stdout.split(":")[1].startswith("$6$rounds=65536$"), shadow_sha
    assert shadow_default.rc == 0 and shadow_default.stdout.split(":")[1].startswith("$y$"), shadow_default
    assert reused.rc != 0, "a password from the history was accepted again"


def test_home_directories_and_session_tmpdir(host):
    """Another user cannot read the admin's home (CIS 7.2.9); a PAM session gets its own TMPDIR (pam_tmpdir)."""
    home = host.file(f"/home/{ADMIN_KEY_USER}")
    assert home.user == ADMIN_KEY_USER and home.mode & 0o027 == 0, oct(home.mode)
    peek = host.run(f"runuser -u {PAM_TEST_USER} -- ls /home/{ADMIN_KEY_USER}")
    assert peek.rc != 0 and "Permission denied" in peek.stderr
    session = host.run(f'su - {ADMIN_KEY_USER} -c \'echo "$TMPDIR"; stat -c "%a %U" "$TMPDIR"\'')
    assert session.rc == 0, session.stderr
    assert session.stdout.split() == [f"/tmp/user/{host.user(ADMIN_KEY_USER).uid}", "700", ADMIN_KEY_USER]


def test_package_integrity_and_patch_tools(host):
    """debsums' timer unit passes on the hardened host and fails, naming the file, once a package file changes."""
    timer = host.service("gearlift-debsums.timer")
    assert timer.is_enabled and timer.is_running
    assert host.run("systemctl start gearlift-debsums.service").rc == 0
    tampered = "/usr/share/doc/debsums/copyright"
    assert host.run(f"cp -p {tampered} /root/gl-debsums-backup && echo tampered >> {tampered}").rc == 0
    try:
        failed = host.run("systemctl start gearlift-debsums.service")
        result = host.check_output("systemctl show -p Result --value gearlift-debsums.service")
        journal = host.check_output("journalctl -u gearlift-debsums.service -n 20 --no-pager")
    finally:
        host.run(f"cp -p /root/gl-debsums-backup {tampered} && rm -f /root/gl-debsums-backup")
    assert failed.rc != 0 and result == "exit-code", (failed, result)
    assert tampered in journal, journal
    assert host.run("systemctl start gearlift-debsums.service").rc == 0
    # needrestart lists (batch mode) and restarts nothing; its dpkg hook is in place for apt runs.
    listing = host.run("timeout 300 needrestart -b")
    assert listing.rc == 0 and "NEEDRESTART-VER:" in listing.stdout, listing
    assert "needrestart" in host.file("/etc/apt/apt.conf.d/99needrestart").content_string
    assert host.package("apt-show-versions").is_installed and host.package("apt-listchanges").is_installed
    assert not host.package("apt-listbugs").is_installed  # off by default: it aborts unattended apt runs
    # AIDE accepts its configuration with strong checksums only.
    assert host.run("aide --config /etc/aide/aide.conf --config-check").rc == 0


def test_idle_session_timeout(host):
    assert host.check_output("bash -lc 'echo $TMOUT'") == "900"
    change = host.run("bash -lc 'TMOUT=5'")
    assert change.rc != 0 and "readonly" in change.stderr
    nested = host.run("bash -lc \"bash -lc 'echo nested-ok'\"")
    assert nested.stdout.strip() == "nested-ok" and "readonly" not in nested.stderr


def test_time_integrity_patching_antimalware(host):
    chrony = host.file("/etc/chrony/chrony.conf").content_string
    assert "server 169.254.169.123 " in chrony
    assert not [line for line in chrony.splitlines() if line.startswith("pool ")]
    for timer in ("gearlift-aide-check.timer", "gearlift-clamscan.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled, timer
        assert host.service(timer).is_running, timer
    assert host.package("aide").is_installed and host.package("clamav").is_installed
    assert host.package("unattended-upgrades").is_installed
    apt_config = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in apt_config
    assert 'APT::Periodic::Update-Package-Lists "1";' in apt_config
    # hardening_clamav_freshclam_enabled: false in this scenario: the daemon stays masked (no mirror traffic).
    assert host.run("systemctl is-enabled clamav-freshclam.service").stdout.strip() == "masked"
    # No AIDE baseline in a container (aideinit cannot run there); the VM lane covers it.
    assert not host.file("/var/lib/aide/aide.db").exists
    # The check's report goes where the CloudWatch agent ships it from (the aide log group's metric filter
    # alarms on "AIDE found differences"); aide-common creates the directory.
    check_unit = host.file("/etc/systemd/system/gearlift-aide-check.service").content_string
    assert "StandardOutput=append:/var/log/aide/aide.log" in check_unit
    assert host.file("/var/log/aide").is_directory
    shadow = host.file("/etc/shadow")
    assert shadow.mode == 0o640 and shadow.group == "shadow"
    assert host.file("/etc/crontab").mode == 0o600
    assert "Debian" not in host.file("/etc/issue.net").content_string
    assert "install cramfs /bin/false" in host.file("/etc/modprobe.d/gearlift-cramfs.conf").content_string


def test_post_hardening_audit_report():
    report = _audit_report()
    summary, controls = report["summary"], report["controls"]
    by_id = {control["id"]: control for control in controls}
    assert summary["container"] is True or summary["container"] == "True"
    assert int(summary["fail"]) == 0, [c for c in controls if c["status"] == "fail"]
    assert int(summary["pass"]) >= 60
    assert {c["status"] for c in controls} <= {"pass", "fail", "skipped"}
    for control_id in ("6.2.1.2", "6.2.3.8", "3.3.1", "1.5.1", "1.1.2.1.4", "4.2.7"):
        assert by_id[control_id]["status"] == "skipped"
        assert "not applicable in a container" in by_id[control_id]["detail"]
    for control_id in (
        "5.1.20",
        "5.1.16",
        "5.3.3.2.2",
        "5.3.3.1.1",
        "5.4.3.2",
        "2.3.3.1",
        "6.3.2",
        "pci-8.3.1-ssh-keys-only",
        "pci-2.2.4-ssh-forwarding",
        "pci-2.2.6-ssh-session",
        "pci-2.2.4-firewire",
        "3.2.1",
        "3.2.2",
        "3.2.3",
        "3.2.4",
        "5.4.1.2",
        "pci-8.3.2-hash-rounds",
        "pci-2.2.6-pam-tmpdir",
        "pci-11.5.2-aide-checksums",
        "pci-11.5.2-debsums",
        "7.2.9",
        "pci-6.3.3-apt-listchanges",
        "pci-6.3.3-apt-show-versions",
        "pci-6.3.3-needrestart",
    ):
        assert by_id[control_id]["status"] == "pass", by_id[control_id]
    for control_id in ("pci-2.2.6-kernel-pointers", "pci-2.2.6-bpf", "pci-2.2.6-protected-links", "pci-10.2.1-acct"):
        assert by_id[control_id]["status"] == "skipped"
        assert "not applicable in a container" in by_id[control_id]["detail"]
    # The Level 1 recommendations added from the per-section catalog: applied or verified here ...
    for control_id in (
        "1.5.4", "1.5.5", "2.1.1", "2.1.12", "2.1.13", "2.1.21", "2.2.4", "2.4.1.1", "2.4.1.8", "3.1.2", "3.1.3",
        "4.1.1", "5.2.5", "5.2.6", "5.4.1.3", "5.4.2.1", "5.4.2.2", "5.4.2.3", "5.4.2.4", "5.4.2.6", "5.4.2.7",
        "5.4.2.8", "5.4.3.1", "7.1.11", "7.1.12", "7.2.1", "7.2.2", "7.2.3", "7.2.4", "7.2.5", "7.2.6", "7.2.7",
        "7.2.8", "7.2.10", "5.3.2.1", "5.3.3.4.1", "5.3.3.4.2", "5.3.3.4.3", "5.3.3.4.4", "5.3.2.4", "5.3.3.3.1",
        "5.3.3.3.2", "5.3.3.3.3",
    ):  # fmt: skip
        assert by_id[control_id]["status"] == "pass", by_id[control_id]
    # ... skipped in a container with the reason (the VM lane applies them) ...
    for control_id in ("1.3.1.3", "1.4.2", "4.2.5", "6.2.4.1", "6.2.4.8"):
        assert by_id[control_id]["status"] == "skipped"
        assert "not applicable in a container" in by_id[control_id]["detail"], by_id[control_id]
    # ... or manual, with the reason a person checks them instead.
    for control_id in ("1.2.1.1", "1.4.1", "2.1.18", "3.1.1", "6.1.1.4", "7.1.13"):
        assert by_id[control_id]["status"] == "skipped" and by_id[control_id]["detail"].startswith("manual: ")
    assert by_id["5.2.4"]["detail"] == "toggle off: hardening_rule_5_2_4"
    assert by_id["pci-6.3.3-apt-listbugs"]["detail"] == "toggle off: hardening_rule_pci_6_3_3_apt_listbugs"
    assert by_id["pci-5.3.1-freshclam"]["status"] == "skipped"
    assert "hardening_clamav_freshclam_enabled" in by_id["pci-5.3.1-freshclam"]["detail"]


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/group", "/etc/shells"])
def test_account_files_world_readable_only(host, path):
    target = host.file(path)
    assert target.user == "root" and target.mode == 0o644
