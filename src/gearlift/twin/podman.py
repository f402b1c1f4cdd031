"""A thin, typed wrapper around the podman CLI (rootful, runc runtime)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gearlift.twin.errors import TwinError

LABEL = "gearlift.twin"
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
# The runtime fix from shared/test-hosts.md: the machines lack CAP_SYS_RESOURCE
# (default rlimits fail) and crun refuses the hybrid cgroup layout.
RUN_FIX_ARGS = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
]


@dataclass(frozen=True)
class Container:
    name: str
    state: str
    labels: dict[str, str]
    image: str


def podman_path() -> str:
    path = shutil.which("podman")
    if path is None:
        raise TwinError(
            "podman is not installed: the rehearsal runs hosts as podman systemd containers. "
            "Run ./scripts/bootstrap (or `apt-get install podman runc`) and try again."
        )
    return path


def run(
    *args: str,
    check: bool = True,
    input_bytes: bytes | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    cmd = [podman_path(), *args]
    try:
        proc = subprocess.run(
            cmd,
            input=input_bytes.decode() if input_bytes is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TwinError(f"podman {' '.join(args[:3])} did not finish in {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        raise TwinError(
            f"podman {' '.join(args[:4])} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def image_exists(name: str) -> bool:
    return run("image", "exists", name, check=False).returncode == 0


def container_exists(name: str) -> bool:
    return run("container", "exists", name, check=False).returncode == 0


def network_exists(name: str) -> bool:
    return run("network", "exists", name, check=False).returncode == 0


def list_containers(label: str = LABEL) -> list[Container]:
    proc = run("ps", "-a", "--filter", f"label={label}", "--format", "json")
    data: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    out = []
    for item in data:
        names = item.get("Names") or [""]
        out.append(
            Container(
                name=str(names[0]),
                state=str(item.get("State", "")),
                labels=dict(item.get("Labels") or {}),
                image=str(item.get("Image", "")),
            )
        )
    return out


def network_inspect(name: str, *, check: bool = True) -> dict[str, Any]:
    """``podman network inspect`` of one network; ``{}`` when it is absent or unreadable and not ``check``."""
    proc = run("network", "inspect", name, check=check)
    try:
        data = json.loads(proc.stdout)
        return dict(data[0])
    except (ValueError, LookupError, TypeError):
        if check:
            raise TwinError(f"podman network inspect {name}: unreadable answer {proc.stdout[:200]!r}") from None
        return {}


def network_interface(name: str) -> str:
    """The host's bridge interface of a podman network (e.g. podman1)."""
    return str(network_inspect(name)["network_interface"])


def network_gateway(name: str) -> str:
    """The gateway address of a podman network's first subnet; ``""`` when the network is absent."""
    try:
        return str(network_inspect(name, check=False)["subnets"][0]["gateway"])
    except (LookupError, TypeError):
        return ""


def bridge_mac(network: str) -> str:
    """A fixed, locally administered unicast MAC for the bridge of ``network`` (derived from its name)."""
    digest = hashlib.sha256(network.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def pin_bridge_mac(network: str) -> str:
    """Give the bridge of ``network`` a MAC of its own; returns the bridge's name.

    A Linux bridge without an address set by hand takes the lowest MAC of its ports, so when the
    container holding that port stops, the bridge's MAC changes and every other container keeps
    sending to the old one (its ARP entry stays reachable for up to ~45 s): their packets to the
    addresses on the bridge (the gateway, the twin's DNS resolver, the load balancers) are lost
    until then. A VPC's router never changes its MAC; once set, the kernel keeps it
    (addr_assign_type 3, "set").
    """
    bridge = network_interface(network)
    mac = bridge_mac(network)
    proc = subprocess.run(
        ["ip", "link", "set", "dev", bridge, "address", mac], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise TwinError(f"cannot set the MAC of {bridge} (network {network}) to {mac}: {proc.stderr.strip()}")
    return bridge


def inspect(name: str) -> dict[str, Any]:
    proc = run("inspect", "--type", "container", name)
    data: list[dict[str, Any]] = json.loads(proc.stdout)
    return data[0]


def container_ip(name: str, network: str) -> str | None:
    info = inspect(name)
    nets = info.get("NetworkSettings", {}).get("Networks", {}) or {}
    net = nets.get(network) or {}
    ip = net.get("IPAddress")
    return str(ip) if ip else None


def exec_(name: str, *cmd: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run("exec", name, *cmd, check=check, timeout=timeout)


def remove(name: str, stop_timeout: int = 5) -> None:
    run("rm", "-f", "-t", str(stop_timeout), name, check=False)


def check_runtime_config() -> None:
    """Refuse to start when the runc/rlimit fix is neither configured nor passed."""
    podman_path()
    if shutil.which("runc") is None:
        raise TwinError(
            "runc is not installed: crun refuses this machine's hybrid cgroup layout. "
            "Run ./scripts/bootstrap (or `apt-get install runc`)."
        )
