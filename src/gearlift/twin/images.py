"""Local container images for the twin's hosts, built once and cached.

No registry is reachable, so the base test-host image (Debian 12 + systemd) is
built with debootstrap and imported into podman; derived images add packages
with apt inside a throw-away container and `podman commit`. An image is rebuilt
only when it is missing: bump the tag to force a rebuild after a change here.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gearlift.twin import podman
from gearlift.twin.errors import TwinError

BASE_IMAGE = "localhost/gearlift-base:bookworm-3"
MARIADB_IMAGE = "localhost/gearlift-mariadb:bookworm-3"
APPHOST_IMAGE = "localhost/gearlift-apphost:bookworm-3"
REDIS_IMAGE = "localhost/gearlift-redis:bookworm-3"
# A systemd host image boots /sbin/init and stops as systemd asks (podman import/commit --change).
SYSTEMD_IMAGE_CHANGES = ("--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL SIGRTMIN+3")

BASE_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "ca-certificates",
    "procps",
    "curl",
    "gnupg",
]
MARIADB_PACKAGES = ["mariadb-server", "mariadb-client", "openssl"]
# ElastiCache's stand-in (gearlift.twin.dataplane.elasticache): Debian's redis-server 7.0 is built with TLS.
REDIS_PACKAGES = ["redis-server", "redis-tools"]
# What a golden image's Java tier needs, so tests of the twin do not install a
# JRE in every container: the roles still install these themselves.
APPHOST_PACKAGES = ["openjdk-17-jre-headless", "libmariadb-java", "mariadb-client", "awscli"]

CACHE_DIR = Path(os.environ.get("GEARLIFT_CACHE", Path.home() / ".cache" / "gearlift"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"

Log = Callable[[str], None]


def _noop(_: str) -> None:
    return None


@contextmanager
def _build_lock(name: str) -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    lock_path = CACHE_DIR / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".lock")
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def host_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources")) -> str:
    """The Debian mirror the host itself uses (deb822 or one-line format)."""
    candidates = [sources, Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^URIs:\s*(\S+)", text, re.MULTILINE):
            if "security" not in match.group(1):
                return match.group(1)
        for match in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.MULTILINE):
            if "security" not in match.group(1):
                return match.group(1)
    return DEFAULT_MIRROR


def _security_mirror(mirror: str) -> str:
    if mirror.rstrip("/").endswith("/debian"):
        return mirror.rstrip("/") + "-security"
    return "http://deb.debian.org/debian-security"


def ensure_base_image(log: Log = _noop, name: str = BASE_IMAGE) -> str:
    """Build the Debian 12 + systemd base image with debootstrap, once."""
    podman.podman_path()
    if podman.image_exists(name):
        return name
    with _build_lock(name):
        if podman.image_exists(name):
            return name
        if shutil.which("debootstrap") is None:
            raise TwinError(
                "debootstrap is not installed; it builds the base test-host image. "
                "Run ./scripts/bootstrap (or `apt-get install debootstrap`)."
            )
        mirror = host_mirror()
        log(f"building base image {name} with debootstrap from {mirror} (once, ~2 min)")
        with tempfile.TemporaryDirectory(prefix="gearlift-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            proc = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(BASE_PACKAGES),
                    "bookworm",
                    str(rootfs),
                    mirror,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=1800,
            )
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
                raise TwinError("debootstrap failed:\n" + "\n".join(tail))
            (rootfs / "etc/apt/sources.list").write_text(
                f"deb {mirror} bookworm main\n"
                f"deb {mirror} bookworm-updates main\n"
                f"deb {_security_mirror(mirror)} bookworm-security main\n",
                encoding="utf-8",
            )
            # A machine-id is created per container at boot, never baked.
            (rootfs / "etc/machine-id").write_text("", encoding="utf-8")
            subprocess.run(["chroot", str(rootfs), "apt-get", "clean"], check=True)
            for stale in (rootfs / "var/lib/apt/lists").glob("*_*"):
                stale.unlink()
            # The lists are gone: no stamp may claim a fresh cache (apt's
            # cache_valid_time would then skip the update and find nothing).
            (rootfs / "var/lib/apt/periodic/update-success-stamp").unlink(missing_ok=True)
            os.utime(rootfs / "var/lib/apt/lists", (0, 0))
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imp = subprocess.run(
                [
                    podman.podman_path(),
                    "import",
                    *SYSTEMD_IMAGE_CHANGES,
                    "-",
                    name,
                ],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            tar.wait()
            if imp.returncode != 0 or tar.returncode != 0:
                raise TwinError(f"podman import of {name} failed: {imp.stderr.strip()}")
        log(f"base image {name} ready")
    return name


def ensure_derived_image(name: str, packages: list[str], log: Log = _noop, base: str = BASE_IMAGE) -> str:
    """Base image plus Debian packages, installed once and committed."""
    if podman.image_exists(name):
        return name
    ensure_base_image(log)
    with _build_lock(name):
        if podman.image_exists(name):
            return name
        log(f"building image {name} (+ {', '.join(packages)})")
        builder = "gearlift-imagebuild-" + re.sub(r"[^a-z0-9]", "-", name.split("/")[-1])
        podman.remove(builder)
        script = (
            "set -e; printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; "
            "chmod +x /usr/sbin/policy-rc.d; export DEBIAN_FRONTEND=noninteractive; "
            "apt-get update -q; apt-get install -y -q --no-install-recommends "
            + " ".join(packages)
            + "; apt-get clean; rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d "
            "/var/lib/apt/periodic/update-success-stamp; touch -d @0 /var/lib/apt/lists; "
            ": > /etc/machine-id"
        )
        try:
            podman.run(*(["run", "--name", builder, *podman.RUN_FIX_ARGS, base, "bash", "-c", script]), timeout=1800)
            podman.run(
                "commit",
                *SYSTEMD_IMAGE_CHANGES,
                builder,
                name,
                timeout=600,
            )
        finally:
            podman.remove(builder)
        log(f"image {name} ready")
    return name


def ensure_mariadb_image(log: Log = _noop) -> str:
    return ensure_derived_image(MARIADB_IMAGE, MARIADB_PACKAGES, log)


def ensure_apphost_image(log: Log = _noop) -> str:
    return ensure_derived_image(APPHOST_IMAGE, APPHOST_PACKAGES, log)


def ensure_redis_image(log: Log = _noop) -> str:
    return ensure_derived_image(REDIS_IMAGE, REDIS_PACKAGES, log)
