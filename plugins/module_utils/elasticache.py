# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic of gearlift.platform.elasticache_replication_group: what a Redis / Valkey replication
group (cluster mode disabled) should look like, and what differs from what exists.

No AWS call here: the module reads, this file decides, the module writes. Unit-tested in
tests/unit/test_elasticache_replication_group.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ENGINES = ("redis", "valkey")
#: A primary and at most 5 replicas (cluster mode disabled).
MAX_REPLICAS = 5
#: ElastiCache's AUTH token rules: 16-128 printable ASCII characters, none of space, " / @.
_TOKEN = re.compile(r"[!#-.0-?A-~]{16,128}")
_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_NODE_TYPE = re.compile(r"cache\.[a-z][a-z0-9-]*\.[a-z0-9]+")


class CacheSpecError(ValueError):
    """A wanted setting that ElastiCache cannot take, or a change it cannot make in place."""


def token_problem(token: str) -> str | None:
    """Why ElastiCache would refuse ``token`` as an AUTH token (never echoes it), or None."""
    if not _TOKEN.fullmatch(token):
        return "the AUTH token must be 16-128 printable ASCII characters without spaces, '\"', '/' or '@'"
    return None


@dataclass(frozen=True)
class GroupSpec:
    """The wanted replication group."""

    group_id: str
    description: str
    engine: str
    engine_version: str
    node_type: str
    replicas: int
    port: int
    subnet_group: str
    security_groups: tuple[str, ...]
    transit_encryption: bool
    at_rest_encryption: bool
    kms_key_arn: str | None
    auth: bool
    snapshot_retention_days: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (1 <= len(self.group_id) <= 40 and _ID.fullmatch(self.group_id)):
            raise CacheSpecError(
                f"replication_group_id {self.group_id!r}: 1-40 lowercase letters, digits and single hyphens, "
                "starting with a letter"
            )
        if self.engine not in ENGINES:
            raise CacheSpecError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if not _NODE_TYPE.fullmatch(self.node_type):
            raise CacheSpecError(f"node_type {self.node_type!r} is not an ElastiCache node type (cache.t4g.small)")
        if not 0 <= self.replicas <= MAX_REPLICAS:
            raise CacheSpecError(f"replicas {self.replicas} is outside 0..{MAX_REPLICAS}")
        if not 1 <= self.port <= 65535:
            raise CacheSpecError(f"port {self.port} is outside 1..65535")
        if not self.security_groups:
            raise CacheSpecError("security_group_ids is empty: the nodes would get the VPC's default group")
        if self.auth and not self.transit_encryption:
            raise CacheSpecError("an AUTH token needs transit_encryption (ElastiCache refuses it without TLS)")
        if self.kms_key_arn and not self.at_rest_encryption:
            raise CacheSpecError("kms_key_id needs at_rest_encryption")
        if not 0 <= self.snapshot_retention_days <= 35:
            raise CacheSpecError(f"snapshot_retention_days {self.snapshot_retention_days} is outside 0..35")

    @property
    def multi_az(self) -> bool:
        """Multi-AZ with automatic failover whenever there is a replica to fail over to."""
        return self.replicas > 0

    def create_params(self) -> dict[str, Any]:
        """CreateReplicationGroup's parameters, without the AUTH token (the module adds it, never logged)."""
        params: dict[str, Any] = {
            "ReplicationGroupId": self.group_id,
            "ReplicationGroupDescription": self.description,
            "Engine": self.engine,
            "EngineVersion": self.engine_version,
            "CacheNodeType": self.node_type,
            "NumCacheClusters": self.replicas + 1,
            "AutomaticFailoverEnabled": self.multi_az,
            "MultiAZEnabled": self.multi_az,
            "Port": self.port,
            "CacheSubnetGroupName": self.subnet_group,
            "SecurityGroupIds": list(self.security_groups),
            "TransitEncryptionEnabled": self.transit_encryption,
            "AtRestEncryptionEnabled": self.at_rest_encryption,
            "SnapshotRetentionLimit": self.snapshot_retention_days,
            "AutoMinorVersionUpgrade": True,
        }
        if self.kms_key_arn:
            params["KmsKeyId"] = self.kms_key_arn
        if self.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())]
        return params

    def wanted_state(self) -> dict[str, Any]:
        """The comparable settings, as :func:`current_state` reads them (for the diff)."""
        return {
            "engine": self.engine,
            "node_type": self.node_type,
            "nodes": self.replicas + 1,
            "multi_az": self.multi_az,
            "port": self.port,
            "subnet_group": self.subnet_group,
            "security_groups": sorted(self.security_groups),
            "transit_encryption": self.transit_encryption,
            "at_rest_encryption": self.at_rest_encryption,
            "kms_key": self.kms_key_arn or "",
            "auth": self.auth,
            "description": self.description,
            "snapshot_retention_days": self.snapshot_retention_days,
        }

    def drift(self, current: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(ModifyReplicationGroup parameters, the differences it cannot make in place)."""
        wanted = self.wanted_state()
        modify: dict[str, Any] = {}
        fixed: list[str] = []
        for key in ("engine", "port", "subnet_group", "transit_encryption", "at_rest_encryption", "kms_key", "auth"):
            if current.get(key) != wanted[key]:
                fixed.append(f"{key} is {current.get(key)!r}, wanted {wanted[key]!r}")
        if current.get("nodes") != wanted["nodes"]:
            fixed.append(
                f"nodes is {current.get('nodes')!r}, wanted {wanted['nodes']!r} (IncreaseReplicaCount / "
                "DecreaseReplicaCount: not done by this module)"
            )
        if current.get("security_groups") != wanted["security_groups"]:
            modify["SecurityGroupIds"] = list(self.security_groups)
        if current.get("description") != wanted["description"]:
            modify["ReplicationGroupDescription"] = self.description
        if current.get("node_type") != wanted["node_type"]:
            modify["CacheNodeType"] = self.node_type
        if current.get("multi_az") != wanted["multi_az"]:
            modify["AutomaticFailoverEnabled"] = self.multi_az
            modify["MultiAZEnabled"] = self.multi_az
        if current.get("snapshot_retention_days") != wanted["snapshot_retention_days"]:
            modify["SnapshotRetentionLimit"] = self.snapshot_retention_days
        return modify, fixed


def current_state(group: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The comparable settings of a described group and its member cache clusters.

    DescribeReplicationGroups names neither the security groups nor the subnet group: they are read
    from the member clusters (DescribeCacheClusters).
    """
    groups = sorted({g["SecurityGroupId"] for m in members for g in m.get("SecurityGroups", [])})
    subnet_groups = {m.get("CacheSubnetGroupName", "") for m in members}
    node_groups = group.get("NodeGroups") or [{}]
    return {
        "engine": group.get("Engine", "redis"),
        "node_type": group.get("CacheNodeType", ""),
        "nodes": len(group.get("MemberClusters", [])),
        "multi_az": group.get("MultiAZ") == "enabled" and group.get("AutomaticFailover") == "enabled",
        "port": (node_groups[0].get("PrimaryEndpoint") or {}).get("Port"),
        "subnet_group": subnet_groups.pop() if len(subnet_groups) == 1 else "",
        "security_groups": groups,
        "transit_encryption": bool(group.get("TransitEncryptionEnabled")),
        "at_rest_encryption": bool(group.get("AtRestEncryptionEnabled")),
        "kms_key": group.get("KmsKeyId") or "",
        "auth": bool(group.get("AuthTokenEnabled")),
        "description": group.get("Description", ""),
        "snapshot_retention_days": int(group.get("SnapshotRetentionLimit") or 0),
    }


def primary_endpoint(group: Mapping[str, Any]) -> tuple[str, int]:
    """The primary endpoint (address, port) of a cluster-mode-disabled group ('' before it has one)."""
    node_groups = group.get("NodeGroups") or [{}]
    endpoint = node_groups[0].get("PrimaryEndpoint") or {}
    return str(endpoint.get("Address", "")), int(endpoint.get("Port") or 0)


def tag_changes(current: Mapping[str, str], wanted: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(tags to add or change, tag keys to remove)."""
    add = {k: v for k, v in wanted.items() if current.get(k) != v}
    remove = sorted(set(current) - set(wanted))
    return add, remove
