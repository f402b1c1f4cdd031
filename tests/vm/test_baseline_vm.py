"""Baseline of the VM test host (no role applied): the kernel facilities hardening relies on work here.

These are exactly the things a podman container cannot show (see /work/shared/test-hosts.md).
"""

from __future__ import annotations

import re

import pytest

from gearlift.vm import VM

from .helpers import PLAYBOOKS, root, run_playbook

pytestmark = pytest.mark.vm


def test_real_kernel_audit_apparmor_and_virt(vm: VM) -> None:
    virt = vm.ssh("systemd-detect-virt")
    assert virt.stdout.strip() == "qemu", virt

    # auditd runs and the kernel's audit netlink answers.
    assert root(vm, "systemctl is-active auditd").stdout.strip() == "active"
    status = root(vm, "auditctl -s")
    assert status.returncode == 0 and re.search(r"^enabled [12]$", status.stdout, re.M), status
    listing = root(vm, "auditctl -l")
    assert listing.returncode == 0, listing

    # A watch loaded now produces a keyed record in the log file (not trusted to ausearch).
    key = "gl_vmtest_baseline"
    add = root(vm, f"auditctl -w /etc/hostname -p wa -k {key} && touch /etc/hostname && sleep 2")
    assert add.returncode == 0, add
    try:
        assert f"-w /etc/hostname -p wa -k {key}" in root(vm, "auditctl -l").stdout
        log = root(vm, f"grep -c 'key=\"{key}\"' /var/log/audit/audit.log")
        assert log.returncode == 0 and int(log.stdout.strip()) >= 1, log
    finally:
        root(vm, f"auditctl -W /etc/hostname -p wa -k {key}")

    # AppArmor is enabled in the kernel and userspace agrees.
    assert root(vm, "cat /sys/module/apparmor/parameters/enabled").stdout.strip() == "Y"
    enabled = root(vm, "aa-enabled")
    assert enabled.returncode == 0 and enabled.stdout.strip() == "Yes", enabled


def test_ansible_sysctl_and_noexec_tmpfs(vm: VM) -> None:
    before = root(vm, "sysctl -n vm.swappiness").stdout.strip()
    assert before and before != "13", f"vm.swappiness is already {before!r}: the test would prove nothing"

    run = run_playbook(vm, PLAYBOOKS / "baseline.yml", name="baseline")
    assert run.rc == 0 and run.recap.get("failed") == 0, run.failures() or run.output[-3000:]
    facts = re.search(r"gearlift-facts virt_type=(\S+) virt_role=(\S+?)\"?$", run.output, re.M)
    assert facts, run.output[-2000:]
    print(f"[vm] Ansible facts: virtualization_type={facts.group(1)} role={facts.group(2)}")
    assert facts.group(2) == "guest" and facts.group(1) in {"kvm", "qemu"}

    # The sysctl was written to the running kernel (a container's /proc/sys is read-only).
    assert root(vm, "sysctl -n vm.swappiness").stdout.strip() == "13"
    assert root(vm, "cat /etc/sysctl.d/90-gearlift-vmtest.conf").stdout.strip() == "vm.swappiness=13"

    # The tmpfs carries the options, and noexec blocks the script that runs elsewhere.
    opts = root(vm, "findmnt -no FSTYPE,OPTIONS /mnt/gearlift-noexec").stdout.split()
    assert opts[0] == "tmpfs" and {"nodev", "nosuid", "noexec"} <= set(opts[1].split(",")), opts
    control = root(vm, "/root/gearlift-probe.sh")
    assert control.returncode == 0 and control.stdout.strip() == "gearlift-exec-ok", control
    blocked = root(vm, "/mnt/gearlift-noexec/probe.sh")
    assert blocked.returncode == 126 and "Permission denied" in blocked.stderr, blocked
