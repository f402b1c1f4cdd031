"""ElastiCache: every replication group is a real Redis server in a container on the twin network.

- Each available replication group of the emulator (Redis OSS or Valkey; cluster mode disabled) is
  one ``redis-server`` (Debian 12's 7.0, built with TLS) in a container of kind ``elasticache``,
  reachable by the group's endpoint names (primary, reader, each node's), network aliases as
  ElastiCache's DNS names are.
- With in-transit encryption the server listens only with TLS on the group's port (``port 0``,
  ``tls-port``), with a certificate the twin's CA issues for those names (the CA the hosts already
  trust for the RDS stand-ins; on AWS the nodes' certificates chain to Amazon's public roots).
- With an AUTH token the server requires it (``requirepass``). ElastiCache keeps the token and never
  returns it, and the emulator drops it, so the twin takes it from the Secrets Manager secret that
  names the group's primary endpoint (``host``) and holds an ``auth_token`` - the secret the hosts
  read at boot (playbooks/session_store.yml). Until such a secret exists the group waits, as an RDS
  stand-in waits for its managed master secret.
- The firewall reconciler gives the server the security groups of the group's nodes
  (DescribeCacheClusters) and the subnets of its cache subnet group, so a host reaches 6379 only
  when both sides' groups, the tier ACLs and the routes allow it, as on AWS.

Approximations (docs/twin-fidelity.md): one server stands for the primary and its replicas (no
replication, no failover), no snapshots, no engine other than Redis 7.0 (Valkey answers the same
protocol), the token's match with what ElastiCache holds is not checked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gearlift.twin import podman, tls
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.errors import TwinError
from gearlift.twin.layout import TwinLayout
from gearlift.twin.netpolicy import Node

Log = Callable[[str], None]

KIND = "elasticache"
#: Where the server finds its configuration and TLS material in the container.
CONF_IN_CONTAINER = "/etc/redis/gearlift-twin.conf"
TLS_IN_CONTAINER = "/etc/redis/twin-tls"


@dataclass(frozen=True)
class CacheGroup:
    """What the twin needs of one replication group."""

    group_id: str
    names: tuple[str, ...]  # primary endpoint first
    port: int
    tls: bool
    auth: bool
    subnet_group: str
    security_groups: tuple[str, ...]


def read_group(group: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> CacheGroup | None:
    """The twin's view of a described group and its member clusters; None when not (yet) servable."""
    if group.get("Status") != "available" or group.get("ClusterEnabled"):
        return None
    node_groups = group.get("NodeGroups") or []
    if not node_groups or not (node_groups[0].get("PrimaryEndpoint") or {}).get("Address"):
        return None
    primary = node_groups[0]["PrimaryEndpoint"]
    names = [str(primary["Address"])]
    reader = (node_groups[0].get("ReaderEndpoint") or {}).get("Address")
    if reader:
        names.append(str(reader))
    for member in node_groups[0].get("NodeGroupMembers", []):
        address = (member.get("ReadEndpoint") or {}).get("Address")
        if address and address not in names:
            names.append(str(address))
    subnet_groups = sorted({str(m.get("CacheSubnetGroupName", "")) for m in members})
    return CacheGroup(
        group_id=str(group["ReplicationGroupId"]),
        names=tuple(names),
        port=int(primary.get("Port") or 6379),
        tls=bool(group.get("TransitEncryptionEnabled")),
        auth=bool(group.get("AuthTokenEnabled")),
        subnet_group=subnet_groups[0] if len(subnet_groups) == 1 else "",
        security_groups=tuple(sorted({g["SecurityGroupId"] for m in members for g in m.get("SecurityGroups", [])})),
    )


def find_token(secrets: Sequence[Mapping[str, Any]], endpoint: str) -> str | None:
    """The ``auth_token`` of the first secret (JSON) whose ``host`` is ``endpoint``, or None."""
    for value in secrets:
        if value.get("host") == endpoint and isinstance(value.get("auth_token"), str) and value["auth_token"]:
            return str(value["auth_token"])
    return None


def server_config(port: int, tls: bool, token: str | None) -> str:
    """redis.conf of the stand-in: TLS only when the group has in-transit encryption, AUTH when it has a token.

    The token is a Redis config string: ElastiCache's tokens have no space, quote or backslash issue
    (16-128 printable characters without space, '"', '/', '@'), but it is quoted anyway.
    """
    lines = [
        "# Written by the gearlift twin: this server stands in for an ElastiCache replication group.",
        "bind 0.0.0.0",
        "protected-mode no",
        'save ""',
        "appendonly no",
        "maxmemory-policy volatile-lru",
        "daemonize no",
        'logfile ""',
    ]
    if tls:
        lines += [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {TLS_IN_CONTAINER}/server.crt",
            f"tls-key-file {TLS_IN_CONTAINER}/server.key",
            f"tls-ca-cert-file {TLS_IN_CONTAINER}/ca.crt",
            "tls-auth-clients no",
            'tls-protocols "TLSv1.2 TLSv1.3"',
        ]
    else:
        lines.append(f"port {port}")
    if token is not None:
        escaped = token.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'requirepass "{escaped}"')
    return "\n".join(lines) + "\n"


class ElastiCacheReconciler:
    """A Redis server for every available replication group of the emulator."""

    def __init__(
        self,
        layout: TwinLayout,
        clients: Clients,
        log: Log,
        image: Callable[[], str],
        ca_dir: Path,
        on_start: Callable[[str], None] | None = None,
    ) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        # Built (once, cached) when the first group needs a server: a twin without one pays nothing.
        self.image = image
        self.ca_dir = ca_dir
        self.on_start = on_start
        self.groups: dict[str, CacheGroup] = {}
        self.subnets: dict[str, dict[str, Any]] = {}  # cache subnet group name -> described group
        self._waiting: set[str] = set()

    def container_name(self, group_id: str) -> str:
        return f"{self.layout.prefix}-cache-{group_id}"

    def read(self) -> dict[str, CacheGroup]:
        ec = self.clients("elasticache")
        out: dict[str, CacheGroup] = {}
        clusters = paginate(ec, "describe_cache_clusters", "CacheClusters")
        for group in paginate(ec, "describe_replication_groups", "ReplicationGroups"):
            members = [c for c in clusters if c.get("ReplicationGroupId") == group.get("ReplicationGroupId")]
            found = read_group(group, members)
            if found is not None:
                out[found.group_id] = found
        self.subnets = {
            g["CacheSubnetGroupName"]: g for g in paginate(ec, "describe_cache_subnet_groups", "CacheSubnetGroups")
        }
        return out

    def secrets(self) -> list[dict[str, Any]]:
        sm = self.clients("secretsmanager")
        values = []
        for entry in paginate(sm, "list_secrets", "SecretList"):
            try:
                value = json.loads(sm.get_secret_value(SecretId=entry["ARN"])["SecretString"])
            except (KeyError, ValueError, sm.exceptions.ResourceNotFoundException):
                continue
            if isinstance(value, dict):
                values.append(value)
        return values

    def reconcile(self, round_: Round) -> None:
        self.sync()

    def sync(self) -> None:
        self.groups = self.read()
        containers = {
            c.labels.get("gearlift.cache-id", ""): c
            for c in podman.list_containers(self.layout.label)
            if c.labels.get("gearlift.kind") == KIND
        }
        for group_id, container in containers.items():
            if group_id not in self.groups:
                self.log(f"elasticache: {group_id} deleted -> removing its Redis")
                podman.remove(container.name)
            elif container.state != "running":
                podman.run("start", container.name, check=False)
        secrets: list[dict[str, Any]] | None = None
        for group_id, group in self.groups.items():
            if group_id in containers:
                continue
            token = None
            if group.auth:
                secrets = self.secrets() if secrets is None else secrets
                token = find_token(secrets, group.names[0])
                if token is None:
                    if group_id not in self._waiting:
                        self._waiting.add(group_id)
                        self.log(f"elasticache: {group_id} waits for a secret naming {group.names[0]} and its token")
                    continue
            self.start(group, token)

    def start(self, group: CacheGroup, token: str | None) -> None:
        name = self.container_name(group.group_id)
        if podman.container_exists(name):
            raise TwinError(
                f"a container named {name} already exists but is not part of this twin: "
                f"remove it (`podman rm -f {name}`) and run again."
            )
        root = self.layout.state_dir / "elasticache" / group.group_id
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tls_dir = root / "tls"
        if group.tls:
            tls.issue_certificate(self.ca_dir, tls_dir, "server", group.names[0], [f"DNS:{n}" for n in group.names])
        conf = root / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(server_config(group.port, group.tls, token))
        aliases = [arg for n in group.names for arg in ("--network-alias", n)]
        mounts = ["-v", f"{conf}:{CONF_IN_CONTAINER}:ro"]
        if group.tls:
            mounts += ["-v", f"{tls_dir}:{TLS_IN_CONTAINER}:ro"]
        podman.run(
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            f"cache-{group.group_id}"[:63],
            "--network",
            self.layout.network,
            *aliases,
            "--label",
            self.layout.label,
            "--label",
            f"gearlift.kind={KIND}",
            "--label",
            f"gearlift.cache-id={group.group_id}",
            *podman.RUN_FIX_ARGS,
            *mounts,
            self.image(),
            "redis-server",
            CONF_IN_CONTAINER,
        )
        if self.on_start is not None:
            self.on_start(name)
        self._waiting.discard(group.group_id)
        self.log(
            f"elasticache: {group.group_id} running as Redis, {group.names[0]}:{group.port} "
            f"(TLS {'on' if group.tls else 'off'}, AUTH {'on' if token else 'off'})"
        )

    def node(self, container_labels: Mapping[str, str], twin_ip: str) -> Node | None:
        """The firewall's view of a group's server: its subnet group's subnets and its nodes' security groups."""
        group = self.groups.get(container_labels.get("gearlift.cache-id", ""))
        if group is None:
            return None
        subnet_group = self.subnets.get(group.subnet_group) or {}
        subnet_ids = tuple(str(s["SubnetIdentifier"]) for s in subnet_group.get("Subnets", []))
        cidrs = self._cidrs(subnet_ids)
        return Node(
            key=f"elasticache:{group.group_id}",
            kind=KIND,
            twin_ip=twin_ip,
            vpc_id=str(subnet_group.get("VpcId", "")),
            subnet_ids=subnet_ids,
            addresses=cidrs,
            groups=group.security_groups,
        )

    def _cidrs(self, subnet_ids: tuple[str, ...]) -> tuple[str, ...]:
        if not subnet_ids:
            return ()
        subnets = self.clients("ec2").describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
        return tuple(s["CidrBlock"] for s in subnets)
