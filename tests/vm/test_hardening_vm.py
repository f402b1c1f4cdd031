"""gearlift.platform.hardening on a real kernel (qemu VM): what the molecule container cannot show.

(a) the role applies, (b) a second run changes nothing, (c) auditd/sysctl//tmp/AIDE/AppArmor, the
kernel parameters outside CIS 3.3, blocked kernel modules, core dumps, process accounting, pam_tmpdir
and home directory modes work as controls on the VM, (d) Lynis' hardening index and warnings, (e) the
post-hardening audit (playbooks/audit.yml) passes every control, those a container skips included.
The roles applied are the golden image's (playbooks/bake.yml: ssm_agent, hardening, apache, java_app,
cloudwatch_agent, as the bake applies them), so Lynis judges the image as it ships.
GEARLIFT_VM_HARDEN_VARS=/path/vars.yml adds variables (``-e @file``).
Slow under TCG: ``flock /tmp/gearlift-heavy.lock pytest -m vm tests/vm/test_hardening_vm.py -s``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from gearlift.vm import VM

from .helpers import PLAYBOOKS, REPO, PlaybookRun, root, run_playbook, say

pytestmark = pytest.mark.vm

if not (REPO / "roles" / "hardening" / "tasks" / "main.yml").exists():
    pytest.skip("roles/hardening/tasks/main.yml does not exist yet", allow_module_level=True)

# Bounds (seconds); raise them by environment on a slower machine.
ROLE_TIMEOUT = float(os.environ.get("GEARLIFT_VM_ROLE_TIMEOUT", "3600"))
AIDE_DB_WAIT = float(os.environ.get("GEARLIFT_VM_AIDE_WAIT", "2400"))
# Issue 20: Lynis on the golden image stays at 90 or more, with no warning.
LYNIS_MIN_INDEX = int(os.environ.get("GEARLIFT_VM_LYNIS_MIN_INDEX", "90"))

# Audit watches the test knows how to trigger, best first: (watched path, shell action, name in the record).
AUDIT_TRIGGERS = [
    (
        "/etc/sudoers.d",
        "printf '# gearlift vm test\\n' > /etc/sudoers.d/zz-gearlift-vmtest; rm -f /etc/sudoers.d/zz-gearlift-vmtest",
        "zz-gearlift-vmtest",
    ),
    ("/etc/sudoers", "touch /etc/sudoers", "/etc/sudoers"),
    ("/etc/group", "groupadd glvmtest && groupdel glvmtest", "/etc/group"),
    ("/etc/passwd", "useradd -M -s /usr/sbin/nologin glvmtest && userdel glvmtest", "/etc/passwd"),
    ("/etc/shadow", "useradd -M -s /usr/sbin/nologin glvmtest && userdel glvmtest", "/etc/shadow"),
]


def _extra_vars() -> list[str]:
    extra = os.environ.get("GEARLIFT_VM_HARDEN_VARS")
    return ["-e", f"@{extra}"] if extra else []


@pytest.fixture(scope="module")
def first_run(vm: VM) -> PlaybookRun:
    return run_playbook(vm, PLAYBOOKS / "bake.yml", *_extra_vars(), name="harden-1", timeout=ROLE_TIMEOUT)


def test_a_role_applies(first_run: PlaybookRun, record_property: Callable[[str, Any], None]) -> None:
    record_property("role_seconds", round(first_run.seconds))
    print(f"[vm] role run 1: {first_run.recap} in {first_run.seconds:.0f} s (log {first_run.log})")
    assert first_run.rc == 0 and first_run.recap.get("failed") == 0, (
        "\n".join(first_run.failures()) or (first_run.output[-4000:])
    )
    assert first_run.recap.get("unreachable") == 0


def test_b_second_run_changes_nothing(
    vm: VM, first_run: PlaybookRun, record_property: Callable[[str, Any], None]
) -> None:
    second = run_playbook(vm, PLAYBOOKS / "bake.yml", *_extra_vars(), name="harden-2", timeout=ROLE_TIMEOUT)
    record_property("role_second_run_seconds", round(second.seconds))
    print(f"[vm] role run 2: {second.recap} in {second.seconds:.0f} s; changed tasks: {second.changed_tasks()}")
    assert second.rc == 0 and second.recap.get("failed") == 0, "\n".join(second.failures()) or second.output[-4000:]
    if first_run.rc != 0:
        # The second run finished what the first could not (so (c)/(d) see a hardened host);
        # it cannot also judge idempotence.
        pytest.skip(f"first run failed; the second finished the role ({second.recap}): idempotence not judged")
    assert second.recap.get("changed") == 0, f"not idempotent: {second.changed_tasks()}"


def _watches(rules: str) -> dict[str, str]:
    """Watched path -> key from `auditctl -l` (both -w and -F path=/dir= forms)."""
    found: dict[str, str] = {}
    for line in rules.splitlines():
        watch = re.match(r"^-w (\S+) -p \S+ -k (\S+)", line)
        if watch:
            found.setdefault(watch.group(1).rstrip("/"), watch.group(2))
            continue
        path = re.search(r"-F (?:path|dir)=(\S+)", line)
        key = re.search(r"-F key=(\S+)", line) or re.search(r" -k (\S+)", line)
        if path and key and "perm=" in line:
            found.setdefault(path.group(1).rstrip("/"), key.group(1))
    return found


def _keyed_event_names(lines: list[str], key: str, name: str) -> bool:
    """True when an audit event carrying ``key`` has a record naming ``name`` (records share msg=audit(id))."""
    event = re.compile(r"msg=audit\(([^)]+)\)")
    keyed = {m.group(1) for line in lines if f'key="{key}"' in line and (m := event.search(line))}
    return any(name in line for line in lines if (m := event.search(line)) and m.group(1) in keyed)


def test_c_auditd_rules_loaded_and_keyed_records(vm: VM, first_run: PlaybookRun) -> None:
    assert root(vm, "systemctl is-active auditd").stdout.strip() == "active"
    rules = root(vm, "auditctl -l").stdout
    print(f"[vm] auditctl -l ({len(rules.splitlines())} rules):\n{rules}")
    keyed = [line for line in rules.splitlines() if re.search(r"(-k|key=)\s*\S+", line)]
    assert keyed, f"no keyed audit rules loaded: {rules!r}"

    watches = _watches(rules)
    trigger = next(((p, a, n) for p, a, n in AUDIT_TRIGGERS if p in watches), None)
    assert trigger, f"none of {[t[0] for t in AUDIT_TRIGGERS]} is watched; watches: {watches}"
    path, action, name = trigger
    key = watches[path]
    lines_before = int(root(vm, "wc -l < /var/log/audit/audit.log").stdout.strip() or 0)
    done = root(vm, action)
    assert done.returncode == 0, done
    new: list[str] = []
    for _ in range(10):  # auditd writes asynchronously; bounded wait
        time.sleep(1)
        new = root(vm, f"tail -n +{lines_before + 1} /var/log/audit/audit.log").stdout.splitlines()
        if _keyed_event_names(new, key, name):
            break
    else:
        pytest.fail(
            f"no record with key={key!r} naming {name!r} after `{action}`; new log lines:\n" + "\n".join(new[-30:])
        )
    print(f"[vm] audit: watch {path} key={key}: `{action}` produced a keyed record")


def test_c_sysctl_tmp_apparmor(vm: VM, first_run: PlaybookRun) -> None:
    expected = {
        "net.ipv4.ip_forward": "0",
        "kernel.randomize_va_space": "2",
        # CIS 3.3.x values that differ from the kernel defaults, so they show the role's work.
        "net.ipv4.conf.all.send_redirects": "0",
        "net.ipv4.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.log_martians": "1",
    }
    live = {name: root(vm, f"sysctl -n {name}").stdout.strip() for name in expected}
    persisted = root(vm, "cat /etc/sysctl.conf /etc/sysctl.d/*.conf 2>/dev/null").stdout
    missing = [n for n in expected if not re.search(rf"^\s*{re.escape(n)}\s*=\s*{expected[n]}\s*$", persisted, re.M)]
    tmp = root(vm, "findmnt -no FSTYPE,OPTIONS /tmp").stdout.split()
    fstab = root(vm, "grep -v '^#' /etc/fstab; systemctl is-enabled tmp.mount 2>&1 || true").stdout
    print(f"[vm] sysctl live {live}; not persisted: {missing}; /tmp {tmp}")
    problems = []
    if live != expected:
        problems.append(f"live sysctl {live} != {expected}")
    if missing:
        problems.append(f"not persisted in /etc/sysctl.conf or /etc/sysctl.d: {missing}")
    if not tmp or not {"nodev", "nosuid", "noexec"} <= set(tmp[1].split(",")):
        problems.append(f"/tmp is not mounted nodev,nosuid,noexec: {tmp}; fstab/tmp.mount:\n{fstab}")
    if root(vm, "cat /sys/module/apparmor/parameters/enabled").stdout.strip() != "Y":
        problems.append("AppArmor is not enabled in the kernel")
    if root(vm, "aa-enabled").stdout.strip() != "Yes":
        problems.append("aa-enabled does not say Yes")
    assert not problems, "\n".join(problems)


# Kernel parameters outside CIS 3.3 / 1.5.1-1.5.2 (PCI DSS 2.2.6) and the IPv6 keys of CIS 3.3.1,
# 3.3.5 and 3.3.8, with the values the role sets on Debian 12 (Debian's kernel: perf_event_paranoid 3).
KERNEL_PARAMETERS = {
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.sysrq": "0",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "kernel.perf_event_paranoid": "3",
    "dev.tty.ldisc_autoload": "0",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "fs.suid_dumpable": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
}
BLOCKED_MODULES = ["dccp", "tipc", "rds", "sctp", "firewire-core", "firewire-ohci"]


def _boot_values(cat_config: str) -> dict[str, str]:
    """What systemd-sysctl applies at boot: the last assignment of each key in its files, in its order."""
    values: dict[str, str] = {}
    for line in cat_config.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().lstrip("-").replace("/", ".")] = value.strip()
    return values


def test_c_kernel_parameters_modules_core_dumps(vm: VM, first_run: PlaybookRun) -> None:
    names = " ".join(KERNEL_PARAMETERS)
    live = dict(line.split(" = ", 1) for line in root(vm, f"sysctl {names}").stdout.splitlines() if " = " in line)
    boot = _boot_values(root(vm, "/usr/lib/systemd/systemd-sysctl --cat-config").stdout)
    print(f"[vm] kernel parameters live {live}")
    problems = [f"{k}: live {live.get(k)!r}, want {v}" for k, v in KERNEL_PARAMETERS.items() if live.get(k) != v]
    problems += [f"{k}: at boot {boot.get(k)!r}, want {v}" for k, v in KERNEL_PARAMETERS.items() if boot.get(k) != v]
    # What the parameters do, seen by the unprivileged admin user (no sudo): kernel addresses
    # are hidden, the kernel log is closed.
    kallsyms = vm.ssh("head -n 3 /proc/kallsyms").stdout.split()
    if not kallsyms or set(kallsyms[0::3]) != {"0000000000000000"}:
        problems.append(f"/proc/kallsyms shows addresses to gladmin: {kallsyms[:6]}")
    dmesg = vm.ssh("dmesg")
    if dmesg.returncode == 0 or "Operation not permitted" not in dmesg.stderr:
        problems.append(f"dmesg works for gladmin: rc={dmesg.returncode} {dmesg.stderr.strip()!r}")
    # Uncommon network protocols and FireWire cannot be loaded.
    for module in BLOCKED_MODULES:
        dry = root(vm, f"modprobe -n -v {module}")
        if "install /bin/false" not in dry.stdout:
            problems.append(f"modprobe -n -v {module}: {dry.stdout.strip()!r} {dry.stderr.strip()!r}")
    load = root(vm, "modprobe dccp; echo rc=$?; grep -c '^dccp ' /proc/modules || true")
    if "rc=0" in load.stdout or not load.stdout.strip().endswith("0"):
        problems.append(f"dccp loaded: {load.stdout!r} {load.stderr!r}")
    # Core dumps: hard limit 0 in an SSH session (pam_limits), 0 in login shells, systemd-coredump off.
    limits = vm.ssh("ulimit -Hc; bash -lc 'ulimit -Sc'; ulimit -c unlimited; echo raise-rc=$?")
    if limits.stdout.split()[:3] != ["0", "0", "raise-rc=1"]:
        problems.append(
            f"core limits (hard, login-shell soft, raise): {limits.stdout.split()} {limits.stderr.strip()!r}"
        )
    coredump = root(vm, "cat /etc/systemd/coredump.conf.d/*.conf").stdout
    if not re.search(r"^Storage=none$", coredump, re.M) or not re.search(r"^ProcessSizeMax=0$", coredump, re.M):
        problems.append(f"systemd-coredump drop-in: {coredump!r}")
    assert not problems, "\n".join(problems)


def test_c_accounting_sessions_home_directories(vm: VM, first_run: PlaybookRun) -> None:
    problems = []
    # Process accounting (acct): a command run now shows up in lastcomm.
    probe = root(
        vm,
        "systemctl is-active acct.service; install -m 0755 /bin/true /usr/local/bin/glacctprobe; "
        "/usr/local/bin/glacctprobe; sleep 1; lastcomm glacctprobe | head -n 1; rm -f /usr/local/bin/glacctprobe",
    )
    print(f"[vm] acct: {probe.stdout.strip()!r}")
    if not probe.stdout.startswith("active") or "glacctprobe" not in probe.stdout.split("\n", 1)[-1]:
        problems.append(f"process accounting: {probe.stdout!r} {probe.stderr!r}")
    # pam_tmpdir: the SSH session of gladmin gets its own TMPDIR (0700) on the /tmp tmpfs.
    session = vm.ssh('id -u; echo "$TMPDIR"; stat -c "%a %U" "$TMPDIR"').stdout.split()
    if len(session) != 4 or session[1:] != [f"/tmp/user/{session[0]}", "700", "gladmin"]:
        problems.append(f"pam_tmpdir session: {session}")
    # CIS 7.2.9: other users cannot read gladmin's home directory.
    home = root(vm, "stat -c '%a %U' /home/gladmin; runuser -u nobody -- ls /home/gladmin; echo rc=$?")
    if not re.match(r"^7[0-5]0 gladmin\n", home.stdout) or "rc=0" in home.stdout:
        problems.append(f"/home/gladmin: {home.stdout!r} {home.stderr!r}")
    assert not problems, "\n".join(problems)


def _aide_database(vm: VM) -> str:
    conf = root(vm, "cat /etc/aide/aide.conf /etc/aide/aide.conf.d/* 2>/dev/null").stdout
    defines = dict(re.findall(r"^@@define\s+(\S+)\s+(\S+)", conf, re.M))
    match = re.search(r"^database_in\s*=\s*file:(\S+)", conf, re.M)
    path = match.group(1) if match else "/var/lib/aide/aide.db"
    return re.sub(r"@@\{(\w+)\}", lambda m: defines.get(m.group(1), m.group(0)), path)


def test_c_aide_detects_a_change(vm: VM, first_run: PlaybookRun, record_property: Callable[[str, Any], None]) -> None:
    database = _aide_database(vm)
    t0 = time.monotonic()
    while root(vm, f"test -s {database}").returncode != 0:
        if time.monotonic() - t0 > AIDE_DB_WAIT:
            ps = root(vm, "ps -eo pid,etime,args | grep -i [a]ide").stdout
            pytest.fail(f"AIDE database {database} not there after {AIDE_DB_WAIT:.0f} s; aide processes:\n{ps}")
        time.sleep(15)
    waited = time.monotonic() - t0
    record_property("aide_db_wait_seconds", round(waited))
    print(f"[vm] AIDE database {database} present (waited {waited:.0f} s after the role)")

    watched = "/etc/hosts"
    assert root(vm, f"printf '# gearlift vm test: AIDE must see this\\n' >> {watched}").returncode == 0
    t1 = time.monotonic()
    check = root(vm, f"aide --config /etc/aide/aide.conf --check --limit '^{watched}$'", timeout=1800)
    if "unrecognized option" in check.stderr or "invalid option" in check.stderr:
        check = root(vm, "aide --config /etc/aide/aide.conf --check", timeout=3600)
    record_property("aide_check_seconds", round(time.monotonic() - t1))
    print(f"[vm] aide --check rc={check.returncode} in {time.monotonic() - t1:.0f} s:\n{check.stdout[-2500:]}")
    # AIDE's exit code is a bit mask: 1 added, 2 removed, 4 changed (>= 14 are errors).
    assert check.returncode < 14 and check.returncode & 4, check.stdout[-2000:] + check.stderr[-1000:]
    # The baseline holds SHA-512 and no weak hash (Checksums = sha512 instead of Debian's H).
    spec = root(vm, f"zcat -f {database} | grep -m 1 '^@@db_spec'").stdout.split()
    print(f"[vm] AIDE database columns: {spec}")
    assert "sha512" in spec and not {"md5", "sha1", "rmd160", "crc32"} & set(spec), spec
    assert re.search(rf"^\S*\s*{re.escape(watched)}\b", check.stdout, re.M) or watched in check.stdout, check.stdout


def test_d_lynis(vm: VM, first_run: PlaybookRun, record_property: Callable[[str, Any], None]) -> None:
    t0 = time.monotonic()
    run = root(
        vm,
        "lynis audit system --quick --no-colors --logfile /var/log/lynis.log --report-file /var/log/lynis-report.dat",
        timeout=3600,
    )
    seconds = time.monotonic() - t0
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = root(vm, "cat /var/log/lynis-report.dat").stdout
    index_match = re.search(r"^hardening_index=(\d+)$", report, re.M)
    assert index_match, "no hardening_index in /var/log/lynis-report.dat"
    index = int(index_match.group(1))
    warnings = re.findall(r"^warning\[\]=(.*)$", report, re.M)
    suggestions = re.findall(r"^suggestion\[\]=(.*)$", report, re.M)
    version = re.search(r"^lynis_version=(.*)$", report, re.M)
    print(f"\n[vm] Lynis {version.group(1) if version else '?'} ({seconds:.0f} s): hardening_index={index}")
    print(f"[vm] Lynis warnings ({len(warnings)}):")
    for line in warnings:
        print(f"[vm]   warning[]={line}")
    print(f"[vm] Lynis suggestions ({len(suggestions)}):")
    for line in suggestions:
        print(f"[vm]   suggestion[]={line}")
    say(f"Lynis report kept on the VM only; output above (run dir {vm.run_dir})")
    (vm.run_dir / "lynis-report.dat").write_text(report, encoding="utf-8")
    record_property("lynis_hardening_index", index)
    record_property("lynis_warnings", warnings)
    record_property("lynis_suggestions", suggestions)
    assert index >= LYNIS_MIN_INDEX and not warnings, (
        f"Lynis hardening_index={index} (want >= {LYNIS_MIN_INDEX}), warnings={warnings}"
    )


# Host-kernel controls the VM cannot show, with the audit's exact reason: the VM boots its kernel
# directly (qemu -kernel, gearlift.vm), so it has no bootloader and no grub.cfg to check (CIS 1.4.2);
# an EC2 instance boots through GRUB.
VM_ENVIRONMENT_SKIPS = {"1.4.2": "/boot/grub/grub.cfg absent"}


def _host_kernel_controls() -> set[str]:
    """Ids of the catalog's controls a container skips (``container: false``): kernel, mounts, auditd, AIDE..."""
    ids = set()
    for path in sorted((REPO / "roles" / "hardening" / "vars" / "catalog").glob("section_*.yml")):
        for section in yaml.safe_load(path.read_text(encoding="utf-8")).values():
            ids |= {str(c["id"]) for c in section.get("controls") or [] if c.get("container") is False}
    return ids


def test_e_the_audit_passes_every_control_a_container_skips(
    vm: VM, first_run: PlaybookRun, record_property: Callable[[str, Any], None]
) -> None:
    assert first_run.rc == 0, f"the bake failed ({first_run.recap}); log {first_run.log}"
    report_dir = vm.run_dir / "audit"
    run = run_playbook(
        vm,
        REPO / "playbooks" / "audit.yml",
        "-e",
        "audit_hosts=vm",
        "-e",
        f"audit_report_dir={report_dir}",
        "-e",
        f"@{PLAYBOOKS / 'golden_vars.yml'}",
        *_extra_vars(),
        name="audit",
        timeout=ROLE_TIMEOUT,
    )
    assert run.rc == 0, run.failures() or run.output[-2000:]
    report = json.loads((report_dir / "gearlift-vm.json").read_text(encoding="utf-8"))
    summary, controls = report["summary"], report["controls"]
    print(f"\n[vm] audit: {summary['pass']} pass, {summary['fail']} fail, {summary['skipped']} skipped")
    record_property("vm_audit", {key: summary[key] for key in ("pass", "fail", "skipped")})
    assert summary["container"] in (False, "False", "false"), f"the VM was taken for a container: {summary}"
    failed = [f"{c['id']}: {c.get('detail')}" for c in controls if c["status"] == "fail"]
    assert not failed, f"controls failing on the VM after the bake: {failed}"
    kernel = _host_kernel_controls()
    assert kernel, "the catalog marks no control as needing the host kernel"
    not_passed = {c["id"]: f"{c['status']}: {c.get('detail')}" for c in controls if c["id"] in kernel}
    not_passed = {cid: why for cid, why in not_passed.items() if not why.startswith("pass")}
    print(f"[vm] audit: {len(kernel) - len(not_passed)} of {len(kernel)} host-kernel controls pass")
    for cid, why in sorted(not_passed.items()):
        print(f"[vm]   {cid}: {why}")
    # A control the settings switch off is reported, not judged; so is what this VM lacks by construction
    # (VM_ENVIRONMENT_SKIPS). Any other skip is a gap of the real-kernel audit.
    gaps = {
        cid: why
        for cid, why in not_passed.items()
        if not why.startswith(("skipped: toggle off", "skipped: section off"))
        and why != f"skipped: {VM_ENVIRONMENT_SKIPS.get(cid)}"
    }
    assert not gaps, f"host-kernel controls the VM audit did not pass: {gaps}"
