"""The twin's data plane: one reconciler per AWS service, each in its own module.

Every reconcile round, the twin runs its reconcilers in order (gearlift.twin.twin.Twin
lists them once); each reads what the emulator says exists and makes the twin's hosts,
databases, load balancers and network match it. A reconciler is a class with a
``reconcile(round)`` method (the ``Reconciler`` protocol); what one learns that later ones
need (the instances, their addresses, target health, the databases) travels in the
``Round``.

- ``ec2``: instances as systemd containers, images from instances;
- ``imds``: each instance's metadata service (IMDSv2, its role's credentials);
- ``network``: security groups and routes, enforced in every host's namespace;
- ``elbv2``: target health checks, and each load balancer as an HAProxy;
- ``autoscaling``: the group's replacement loop and target registration;
- ``rds``: DB instances as MariaDB servers;
- ``efs``: mount targets as servers, mounts as bind mounts;
- ``elasticache``: replication groups as Redis servers (TLS, AUTH).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Round:
    """What one reconcile round has learnt so far."""

    instances: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance id -> DescribeInstances item
    addresses: dict[str, str] = field(default_factory=dict)  # instance id -> address on the twin network
    launched_at: dict[str, float] = field(default_factory=dict)  # instance id -> monotonic start time
    health: dict[str, dict[str, str]] = field(default_factory=dict)  # target group ARN -> target -> state
    unhealthy: set[str] = field(default_factory=set)  # targets the health checks found unhealthy
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)  # DB instance id -> endpoint details


class Reconciler(Protocol):
    def reconcile(self, round_: Round) -> None: ...
