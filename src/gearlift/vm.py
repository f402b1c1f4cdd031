"""The qemu VM test host: controls a container cannot show (auditd, sysctl, mounts, AIDE, AppArmor).

A podman container shares the host's kernel, so auditd, sysctl writes, mount
options and AIDE's capabilities cannot be tested in one. This module builds a
Debian 12 (bookworm) disk image with debootstrap — the packages the hardening
role configures are pre-installed, because installing them under TCG takes
minutes — and boots it with qemu (TCG: KVM does not work on these machines)
with ``-snapshot``, so every boot starts from the same image. Ansible reaches
the guest over SSH on a loopback port (user ``gladmin``, key, sudo).

The image is rebuilt only when it is missing or its recipe (packages, files,
mirror, key) changed. Heavy: wrap boots in ``flock /tmp/gearlift-heavy.lock``
(this module does not take that lock itself, so a caller holding it does not
deadlock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

Log = Callable[[str], None]

SUITE = "bookworm"
RECIPE_VERSION = 1
IMAGE_SIZE = "5G"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
HOSTNAME = "gearlift-vm"
ADMIN_USER = "gladmin"
INVENTORY_HOST = "gearlift-vm"
INVENTORY_GROUP = "vm"
SSH_WAIT_SECONDS = 240.0
SSH_POLL_SECONDS = 2.0

# debootstrap's default variant already brings apt, cron, logrotate, udev,
# kmod, ifupdown and isc-dhcp-client; these go in with it.
BASE_PACKAGES = ["systemd-sysv", "dbus", "python3", "sudo", "iproute2", "ca-certificates", "procps"]
# Installed in the chroot (no recommends, so the list is the contract).
PACKAGES = [
    "linux-image-amd64",
    "initramfs-tools",
    "openssh-server",
    "openssh-sftp-server",
    "python3-apt",
    # What the hardening role configures; slow or very slow to install under TCG.
    "auditd",
    "audispd-plugins",
    "aide",
    "aide-common",
    "chrony",
    "apparmor",
    "apparmor-utils",
    "lynis",
    "libpam-pwquality",
    "unattended-upgrades",
    "apt-listchanges",
    "nftables",
    "ufw",
    "clamav",
    "clamav-freshclam",
]

# Runs inside the chroot after the files below are in place. Services must
# not start in the chroot: policy-rc.d answers "not allowed" until the end.
CHROOT_SCRIPT = r"""
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
apt-get update -q
apt-get dist-upgrade -y -q
apt-get install -y -q --no-install-recommends @PACKAGES@
systemctl enable systemd-networkd.service ssh.service auditd.service apparmor.service chrony.service
# The VM talks to the Debian mirror only: no signature downloads, no NTP pool.
systemctl disable clamav-freshclam.service
sed -i -E 's/^(pool|server) /#&/' /etc/chrony/chrony.conf
useradd --create-home --shell /bin/bash --groups sudo --password '*' @ADMIN@
install -d -m 0700 -o root -g root /root/.ssh
install -m 0600 -o root -g root /root/gearlift-vm.pub /root/.ssh/authorized_keys
install -d -m 0700 -o @ADMIN@ -g @ADMIN@ /home/@ADMIN@/.ssh
install -m 0600 -o @ADMIN@ -g @ADMIN@ /root/gearlift-vm.pub /home/@ADMIN@/.ssh/authorized_keys
rm -f /root/gearlift-vm.pub
chmod 0440 /etc/sudoers.d/90-@ADMIN@
visudo -cf /etc/sudoers.d/90-@ADMIN@
if [ ! -s /etc/machine-id ]; then systemd-machine-id-setup; fi
apt-get clean
rm -f /usr/sbin/policy-rc.d
"""


class VMError(RuntimeError):
    """A VM test-host problem; the message says what happened and where to look."""


def _noop(_: str) -> None:
    return None


def default_cache_dir() -> Path:
    """``$GEARLIFT_VM_CACHE`` or ``~/.cache/gearlift/vm``."""
    override = os.environ.get("GEARLIFT_VM_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "gearlift" / "vm"


def host_mirrors(
    sources_dir: Path = Path("/etc/apt/sources.list.d"), sources_list: Path = Path("/etc/apt/sources.list")
) -> tuple[str, str]:
    """(Debian mirror, security mirror) the host's apt uses, deb822 or one-line format."""
    texts: list[str] = []
    if sources_list.exists():
        texts.append(sources_list.read_text(encoding="utf-8"))
    if sources_dir.is_dir():
        texts += [p.read_text(encoding="utf-8") for p in sorted(sources_dir.glob("*.sources"))]
        texts += [p.read_text(encoding="utf-8") for p in sorted(sources_dir.glob("*.list"))]
    uris: list[str] = []
    for text in texts:
        uris += re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
        uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.MULTILINE)
    debian = [u.rstrip("/") for u in uris if "/debian" in u and "security" not in u]
    security = [u.rstrip("/") for u in uris if "security" in u]
    mirror = debian[0] if debian else DEFAULT_MIRROR
    if security:
        sec = security[0]
    elif mirror.endswith("/debian"):
        sec = mirror + "-security"
    else:
        sec = DEFAULT_SECURITY_MIRROR
    return mirror, sec


@dataclass(frozen=True)
class VMImage:
    """A built image and what is needed to boot it and log in."""

    cache_dir: Path
    image: Path
    kernel: Path
    initrd: Path
    key: Path
    recipe_hash: str

    @property
    def public_key(self) -> Path:
        return self.key.with_suffix(".pub")


def _paths(cache_dir: Path) -> dict[str, Path]:
    return {
        "image": cache_dir / "image.raw",
        "kernel": cache_dir / "vmlinuz",
        "initrd": cache_dir / "initrd.img",
        "key": cache_dir / "id_ed25519",
        "stamp": cache_dir / "image.json",
        "lock": cache_dir / "build.lock",
    }


def _ensure_key(key: Path) -> str:
    """A fresh ed25519 key pair per cache (private key 0600); returns the public key line."""
    pub = key.with_suffix(".pub")
    if not key.exists() or not pub.exists():
        key.unlink(missing_ok=True)
        pub.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gearlift-vm-test", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    key.chmod(0o600)
    return pub.read_text(encoding="utf-8").strip()


def _image_files(mirror: str, security: str, public_key: str) -> dict[str, tuple[str, int]]:
    """Files written into the rootfs before the chroot script: path -> (content, mode)."""
    return {
        "etc/apt/sources.list": (
            f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n",
            0o644,
        ),
        "etc/hostname": (f"{HOSTNAME}\n", 0o644),
        "etc/hosts": (
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
            0o644,
        ),
        "etc/fstab": (
            "# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/vda / ext4 errors=remount-ro 0 1\n",
            0o644,
        ),
        "etc/systemd/network/10-gearlift-dhcp.network": ("[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n", 0o644),
        f"etc/sudoers.d/90-{ADMIN_USER}": (f"{ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440),
        "root/gearlift-vm.pub": (public_key + "\n", 0o600),
    }


def _recipe(mirror: str, security: str, public_key: str) -> tuple[str, str, dict[str, tuple[str, int]]]:
    script = CHROOT_SCRIPT.replace("@PACKAGES@", " ".join(PACKAGES)).replace("@ADMIN@", ADMIN_USER)
    files = _image_files(mirror, security, public_key)
    blob = json.dumps(
        {
            "version": RECIPE_VERSION,
            "suite": SUITE,
            "size": IMAGE_SIZE,
            "mirror": mirror,
            "security": security,
            "base": BASE_PACKAGES,
            "script": script,
            "files": files,
            "resolv": "nameserver 10.0.2.3",
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest(), script, files


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


@contextlib.contextmanager
def _chroot_mounts(rootfs: Path) -> Iterator[None]:
    """proc and sys for the chroot's package scripts; gone again before mkfs copies the tree."""
    mounted: list[Path] = []
    try:
        for fstype, target in (("proc", rootfs / "proc"), ("sysfs", rootfs / "sys")):
            subprocess.run(["mount", "-t", fstype, fstype, str(target)], check=True, capture_output=True)
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            if subprocess.run(["umount", str(target)], check=False, capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
        left = _mounts_under(rootfs)
        if left:
            raise VMError(f"could not unmount {left} in the image build tree; unmount them by hand")


def _run(cmd: list[str], what: str, timeout: float, log: Log) -> None:
    log(f"  {what}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise VMError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def image_is_current(cache_dir: Path | None = None) -> bool:
    """True when the cached image exists and matches today's recipe (no build)."""
    cache = cache_dir or default_cache_dir()
    p = _paths(cache)
    if not (p["key"].exists() and p["stamp"].exists()):
        return False
    mirror, security = host_mirrors()
    recipe_hash, _, _ = _recipe(mirror, security, p["key"].with_suffix(".pub").read_text(encoding="utf-8").strip())
    return _stamp_matches(p, recipe_hash)


def _stamp_matches(p: dict[str, Path], recipe_hash: str) -> bool:
    if not all(p[k].exists() for k in ("image", "kernel", "initrd", "stamp")):
        return False
    try:
        stamp = json.loads(p["stamp"].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(stamp.get("recipe_hash") == recipe_hash)


def build_image(cache_dir: Path | None = None, log: Log = _noop, force: bool = False) -> VMImage:
    """Build the bookworm VM image once (or when its recipe changed) and return its paths."""
    cache = (cache_dir or default_cache_dir()).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o700)
    p = _paths(cache)
    with _file_lock(p["lock"]):
        public_key = _ensure_key(p["key"])
        mirror, security = host_mirrors()
        recipe_hash, script, files = _recipe(mirror, security, public_key)
        image = VMImage(cache, p["image"], p["kernel"], p["initrd"], p["key"], recipe_hash)
        if not force and _stamp_matches(p, recipe_hash):
            return image
        for tool in ("debootstrap", "mkfs.ext4", "chroot", "ssh-keygen"):
            if shutil.which(tool) is None:
                raise VMError(f"{tool} is not installed; `apt-get install debootstrap e2fsprogs openssh-client`")
        if os.geteuid() != 0:
            raise VMError("building the VM image needs root (debootstrap, chroot, mount)")
        t0 = time.monotonic()
        log(f"building the VM image in {cache} from {mirror} (once; several minutes)")
        p["stamp"].unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as tmp:
            rootfs = Path(tmp) / "rootfs"
            _run(
                ["debootstrap", "--include=" + ",".join(BASE_PACKAGES), SUITE, str(rootfs), mirror],
                f"debootstrap {SUITE}",
                1800,
                log,
            )
            for rel, (content, mode) in files.items():
                target = rootfs / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
                target.chmod(mode)
            with _chroot_mounts(rootfs):
                _run(["chroot", str(rootfs), "/bin/bash", "-c", script], "packages and users in the chroot", 3600, log)
            # The build used the host's resolver; the guest uses slirp's.
            resolv = rootfs / "etc/resolv.conf"
            resolv.unlink(missing_ok=True)
            resolv.write_text("nameserver 10.0.2.3\n", encoding="utf-8")
            kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
            initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
            if len(kernels) != 1 or len(initrds) != 1:
                raise VMError(f"expected one kernel and one initrd in /boot, found {kernels} {initrds}")
            kernel_version = kernels[0].name.removeprefix("vmlinuz-")
            tmp_image = Path(tmp) / "image.raw"
            _run(
                ["mkfs.ext4", "-q", "-F", "-L", "gearlift-root", "-d", str(rootfs), str(tmp_image), IMAGE_SIZE],
                f"mkfs.ext4 -d ({IMAGE_SIZE})",
                1800,
                log,
            )
            shutil.copyfile(kernels[0], p["kernel"])
            shutil.copyfile(initrds[0], p["initrd"])
            tmp_image.replace(p["image"])
        seconds = time.monotonic() - t0
        p["stamp"].write_text(
            json.dumps(
                {
                    "recipe_hash": recipe_hash,
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "build_seconds": round(seconds, 1),
                    "kernel": kernel_version,
                    "mirror": mirror,
                    "security_mirror": security,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        log(f"VM image ready in {seconds:.0f} s ({kernel_version})")
        return image


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return b"qemu-system" in cmdline and state != "Z"


def _wait_gone(pid: int, seconds: float, proc: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return True
        elif not _is_qemu(pid):
            return True
        time.sleep(0.2)
    return False


def stop_qemu(pid: int, monitor: Path | None = None, proc: subprocess.Popen[bytes] | None = None) -> str:
    """Stop a qemu: monitor ``quit``, then SIGTERM, then SIGKILL; each step bounded. Returns the step that did it."""
    if proc is None and not _is_qemu(pid):
        return "not running"
    if proc is not None and proc.poll() is not None:
        return "not running"
    if monitor is not None and monitor.exists():
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(monitor))
            sock.recv(4096)  # the banner: the monitor is ready to read a command
            sock.sendall(b"quit\n")
            # Read the echo until qemu closes the socket: hanging up early can drop the command.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sock.recv(4096):
                pass
        if _wait_gone(pid, 10, proc):
            return "monitor quit"
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_gone(pid, wait, proc):
            return sig.name
    raise VMError(f"qemu (pid {pid}) did not stop after SIGKILL")


class VM:
    """One booted VM (``-snapshot``: the image is never written). Use as a context manager."""

    def __init__(
        self,
        image: VMImage,
        run_dir: Path,
        *,
        memory_mb: int = 1536,
        cpus: int = 2,
        ssh_wait: float = SSH_WAIT_SECONDS,
        extra_append: str = "",
        log: Log = _noop,
    ) -> None:
        if not 1024 <= memory_mb <= 4096:
            raise VMError(f"memory_mb={memory_mb}: use 1024-4096 (qemu needs about 0.9 GB more than the guest)")
        self.image = image
        self.run_dir = run_dir
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.ssh_wait = ssh_wait
        self.extra_append = extra_append
        self.log = log
        self.port = 0
        self.boot_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    # Paths in the run dir.
    @property
    def serial_log(self) -> Path:
        return self.run_dir / "serial.log"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "qemu.pid"

    @property
    def monitor(self) -> Path:
        return self.run_dir / "monitor.sock"

    @property
    def inventory(self) -> Path:
        return self.run_dir / "inventory.ini"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def qemu_command(self, port: int) -> list[str]:
        append = f"root=/dev/vda rw console=ttyS0 {self.extra_append}".strip()
        return [
            "qemu-system-x86_64",
            "-name", "gearlift-vm",
            "-accel", "tcg,thread=multi",
            "-m", str(self.memory_mb),
            "-smp", str(self.cpus),
            "-display", "none",
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initrd),
            "-append", append,
            "-drive", f"file={self.image.image},format=raw,if=virtio",
            "-snapshot",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=n0",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{self.serial_log}",
            "-monitor", f"unix:{self.monitor},server=on,wait=off",
            "-pidfile", str(self.pid_file),
        ]  # fmt: skip

    def start(self) -> None:
        """Boot and wait (bounded) until SSH as the admin user works; write the inventory."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        last_error = ""
        for _ in range(3):
            self.port = _free_port()
            for stale in (self.serial_log, self.monitor, self.pid_file):
                stale.unlink(missing_ok=True)
            stderr = (self.run_dir / "qemu.stderr").open("wb")
            self._proc = subprocess.Popen(
                self.qemu_command(self.port),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # Ctrl-C reaches us, not qemu: we stop it in order
            )
            stderr.close()
            time.sleep(1.0)
            if self._proc.poll() is None:
                break
            last_error = (self.run_dir / "qemu.stderr").read_text(encoding="utf-8", errors="replace").strip()
            if "hostfwd" not in last_error and "forwarding" not in last_error:
                break
        if self._proc is None or self._proc.poll() is not None:
            self._proc = None
            raise VMError(f"qemu did not start: {last_error}")
        self.log(f"qemu pid {self._proc.pid}, SSH on 127.0.0.1:{self.port}, serial log {self.serial_log}")
        try:
            self._wait_ssh()
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - t0
        self.write_inventory()
        self.log(f"VM up in {self.boot_seconds:.0f} s; inventory {self.inventory}")

    def _wait_ssh(self) -> None:
        deadline = time.monotonic() + self.ssh_wait
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise VMError(f"qemu exited while booting; serial log tail:\n{self.serial_tail()}")
            try:
                proc = self.ssh("true", timeout=30, connect_timeout=5)
            except subprocess.TimeoutExpired:
                last = "ssh timed out"
            else:
                if proc.returncode == 0:
                    return
                last = proc.stderr.strip()
            time.sleep(SSH_POLL_SECONDS)
        raise VMError(
            f"SSH on 127.0.0.1:{self.port} did not answer within {self.ssh_wait:.0f} s (last: {last}); "
            f"serial log tail:\n{self.serial_tail()}"
        )

    def serial_tail(self, lines: int = 30) -> str:
        if not self.serial_log.exists():
            return "(no serial log)"
        return "\n".join(self.serial_log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def ssh_options(self, connect_timeout: int = 20) -> list[str]:
        return [
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", f"ConnectTimeout={connect_timeout}",
            "-i", str(self.image.key),
            "-p", str(self.port),
        ]  # fmt: skip

    def ssh(
        self, command: str, *, user: str = ADMIN_USER, timeout: float = 300, connect_timeout: int = 20
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the guest as ``user``; never raises on a non-zero exit."""
        return subprocess.run(
            ["ssh", *self.ssh_options(connect_timeout), f"{user}@127.0.0.1", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def sudo(self, command: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the guest as root through the admin user's sudo."""
        return self.ssh(f"sudo -n sh -c {shlex.quote(command)}", timeout=timeout)

    def write_inventory(self) -> Path:
        args = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
        self.inventory.write_text(
            f"# gearlift VM test host (qemu pid {self.pid}); valid while the VM runs\n"
            f"[{INVENTORY_GROUP}]\n"
            f"{INVENTORY_HOST} ansible_host=127.0.0.1 ansible_port={self.port} ansible_user={ADMIN_USER} "
            f"ansible_ssh_private_key_file={self.image.key} ansible_become=true "
            f"ansible_python_interpreter=/usr/bin/python3 ansible_timeout=60 "
            f"ansible_ssh_common_args='{args}'\n",
            encoding="utf-8",
        )
        return self.inventory

    def stop(self) -> None:
        """Stop qemu (bounded); afterwards no qemu process of this VM is left."""
        if self._proc is None:
            return
        t0 = time.monotonic()
        how = stop_qemu(self._proc.pid, self.monitor, self._proc)
        self.log(f"qemu pid {self._proc.pid} stopped ({how}) in {time.monotonic() - t0:.1f} s")
        self._proc = None
        for stale in (self.monitor, self.pid_file):
            stale.unlink(missing_ok=True)

    def __enter__(self) -> VM:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def stop_recorded(run_dir: Path) -> bool:
    """Stop the VM whose qemu PID is recorded in ``run_dir`` (``gearlift vm down``); True if one ran."""
    pid_file = run_dir / "qemu.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except ValueError:
        pid_file.unlink(missing_ok=True)
        return False
    running = _is_qemu(pid)
    if running:
        stop_qemu(pid, run_dir / "monitor.sock")
    for stale in (pid_file, run_dir / "monitor.sock"):
        stale.unlink(missing_ok=True)
    return running
