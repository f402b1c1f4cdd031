"""Names and paths of one twin, and what it serves where (shared by the twin and its reconcilers)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.twin import podman

# Where the twins keep their sockets and pid files (tmpfs, root's: the twin runs as root).
RUNTIME_ROOT = Path(os.environ.get("GEARLIFT_RUNTIME_DIR", "/run/gearlift"))
# The label naming the state dir an image was committed from (TwinLayout.owner_label).
OWNER_LABEL = "gearlift.state"


def write_atomic(path: Path, text: str) -> None:
    """Write text so that a reader sees the old file or the new one, never a truncated one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@dataclass
class TwinLayout:
    """Names and paths of one twin; tests use their own prefix and subnet."""

    prefix: str
    state_dir: Path
    network: str
    subnet: str
    gateway: str
    region: str

    @property
    def label(self) -> str:
        return f"{podman.LABEL}={self.prefix}"

    @property
    def state_id(self) -> str:
        """A short name for this state dir: twins sharing a prefix (two checkouts) still differ."""
        return hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:12]

    @property
    def owner_label(self) -> str:
        """Marks what only this state dir may remove (images committed from its instances)."""
        return f"{OWNER_LABEL}={self.state_id}"

    def owns(self, labels: dict[str, str] | None) -> bool:
        """Whether an image carrying ``labels`` (and this twin's prefix label) is this state dir's.

        Images committed before the owner label existed carry none: they count as the prefix's.
        """
        owner = (labels or {}).get(OWNER_LABEL)
        return owner is None or owner == self.state_id

    @property
    def aws_dir(self) -> Path:
        return self.state_dir / "aws"

    @property
    def dropin(self) -> Path:
        return self.state_dir / "systemd-aws-endpoint.conf"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "endpoints.json"

    @property
    def resolver(self) -> str:
        """The twin network's DNS resolver (the VPC's Amazon-provided resolver on AWS): the subnet's last
        host address, on the bridge (gearlift.twin.dataplane.route53); load balancers take the ones below."""
        net = ipaddress.ip_network(self.subnet)
        return str(net.broadcast_address - 1)

    @property
    def runtime_dir(self) -> Path:
        """Sockets and pid files: a short path whatever the state dir's length.

        A UNIX socket path has a hard limit (HAProxy's stats socket: 97 characters), so a
        clone in a long directory must not put its sockets under the state dir. The name is
        derived from the state dir, so two twins never share it.
        """
        return RUNTIME_ROOT / self.state_id


@dataclass
class Endpoints:
    """What the twin serves where: written to endpoints.json for tests and users."""

    moto: str = ""
    moto_internal: str = ""
    load_balancers: dict[str, dict[str, int]] = field(default_factory=dict)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolver: str = ""  # the DNS server answering the emulator's Route 53 zones (port 53)

    def save(self, path: Path) -> None:
        """Replace the file in one step: the twin rewrites it every round while the story and tests read it."""
        write_atomic(
            path,
            json.dumps(
                {
                    "moto": self.moto,
                    "moto_internal": self.moto_internal,
                    "load_balancers": self.load_balancers,
                    "databases": self.databases,
                    "resolver": self.resolver,
                },
                indent=2,
                sort_keys=True,
            ),
        )
