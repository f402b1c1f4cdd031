"""Composite availability from the AWS SLAs (brief §5) and RPO / RTO per failure."""

from __future__ import annotations

from dataclasses import dataclass

from gearlift.report.evidence import DrillSet
from gearlift.report.inputs import DesignInputs


@dataclass(frozen=True)
class Sla:
    component: str
    percent: float
    basis: str


@dataclass(frozen=True)
class FailureRow:
    kind: str
    failure: str
    rpo: str
    rto: str
    how: str
    measured: str


#: brief §5 figures; single-AZ RDS is not in the brief (AWS RDS SLA, assumption).
SLA_ALB = Sla("Application Load Balancer (multi-AZ)", 99.99, "brief §5")
SLA_EC2 = Sla("EC2 across 2+ AZs", 99.99, "brief §5")
SLA_RDS_MULTI = Sla("RDS MySQL Multi-AZ", 99.95, "brief §5")
SLA_RDS_SINGLE = Sla("RDS MySQL single-AZ", 99.5, "assumption: AWS RDS SLA, https://aws.amazon.com/rds/sla/")


def components(inputs: DesignInputs) -> list[Sla]:
    return [SLA_ALB, SLA_EC2, SLA_RDS_MULTI if inputs.db_multi_az else SLA_RDS_SINGLE]


def composite(slas: list[Sla]) -> float:
    """Serial chain: every component must be up, so the availabilities multiply (percent)."""
    value = 1.0
    for sla in slas:
        value *= sla.percent / 100
    return value * 100


def downtime_minutes_per_month(percent: float, hours_per_month: float = 730) -> float:
    return (1 - percent / 100) * hours_per_month * 60


def _measured(drills: DrillSet, kind: str) -> str:
    found = drills.for_kind(kind)
    if not found:
        return "not drilled yet"
    parts = []
    for drill in found:
        rto = f"RTO {drill.rto_seconds:g} s" if drill.rto_seconds is not None else "RTO -"
        rpo = f"RPO {drill.rpo_seconds:g} s" if drill.rpo_seconds is not None else "RPO -"
        parts.append(f"{drill.name}: {rto}, {rpo}" + (f" ({drill.date})" if drill.date else ""))
    return "; ".join(parts)


def session_mode(inputs: DesignInputs) -> str:
    """Which session mode is on, and what losing an app host costs in carts."""
    if inputs.session_store == "redis":
        nodes = inputs.session_store_replicas + 1
        return (
            "Sessions: redis - carts live in the ElastiCache session store (TLS, AUTH, "
            f"{nodes} node{'s' if nodes != 1 else ''}{', Multi-AZ' if nodes > 1 else ''}); losing an app host loses "
            "no cart (the next request, on another host, finds it)."
        )
    stuck = (
        "the ALB's stickiness cookie keeps each customer on one host"
        if inputs.tg_stickiness
        else ("stickiness is OFF, so customers move between hosts and carts come and go")
    )
    return (
        f"Sessions: sticky - carts live in each app host's memory ({stuck}); losing a host loses the carts of "
        "every session on it. gearlift_session_store=redis removes that loss."
    )


def failure_table(inputs: DesignInputs, drills: DrillSet) -> list[FailureRow]:
    detect = inputs.health_check_interval * inputs.unhealthy_threshold
    remaining = inputs.az_count - 1
    nat_note = (
        " One NAT gateway per AZ: egress continues."
        if inputs.nat_mode == "per_az"
        else " The single NAT gateway: if its AZ fails, app egress (patches, AWS APIs without an endpoint) "
        "stops until the network playbook re-runs."
    )
    if inputs.db_multi_az:
        db = FailureRow(
            "db",
            "Database instance / its host",
            "0 (synchronous standby)",
            "60-120 s (RDS Multi-AZ failover)",
            "RDS promotes the standby; the app follows the DNS change (JVM networkaddress.cache.ttl <= 60 s).",
            _measured(drills, "db"),
        )
    else:
        db = FailureRow(
            "db",
            "Database instance / its host",
            "<= 5 min (point-in-time restore)",
            "hours (restore a new instance, repoint the app)",
            "Single-AZ: no standby. gearlift_db_multi_az=true removes this.",
            _measured(drills, "db"),
        )
    copy = inputs.backup_copy_region
    region = FailureRow(
        "region",
        f"Region ({inputs.region})",
        f"up to 24 h (daily AWS Backup copy to {copy})" if copy else "no cross-region copy: not recoverable",
        "hours: site.yml with gearlift_region={copy}, restore the copied snapshot (not rehearsed)" if copy else "n/a",
        "Cross-region copies of every recovery point (gearlift_backup_copy_region)."
        if copy
        else "Set gearlift_backup_copy_region to get cross-region copies.",
        _measured(drills, "region"),
    )
    return [
        FailureRow(
            "instance",
            "App instance",
            "0 (hosts are stateless; the data lives in RDS)",
            f"no outage while another host is healthy; out of the pool after <= {detect} s; replaced after "
            f"the {inputs.grace_period} s grace period",
            f"ALB health check every {inputs.health_check_interval} s, unhealthy after {inputs.unhealthy_threshold} "
            "failures; the Auto Scaling group (ELB health checks) replaces the host.",
            _measured(drills, "instance"),
        ),
        FailureRow(
            "sessions",
            "App instance: the carts in its sessions",
            "0 carts (session store)" if inputs.session_store == "redis" else "the carts of every session on that host",
            "none: the next request lands on another host"
            if inputs.session_store == "redis"
            else "not recoverable: those customers start a new cart",
            session_mode(inputs),
            _measured(drills, "sessions"),
        ),
        FailureRow(
            "az",
            "Availability Zone",
            "0 (Multi-AZ database)" if inputs.db_multi_az else "<= 5 min (single-AZ database: restore)",
            "60-120 s when the DB primary was in that AZ; the fleet carries on in the other "
            f"{remaining} AZ{'s' if remaining != 1 else ''}",
            f"The group rebalances into the remaining AZs (min {inputs.asg_min}, max {inputs.asg_max})." + nat_note,
            _measured(drills, "az"),
        ),
        db,
        region,
        FailureRow(
            "deletion",
            "Deletion / ransomware / bad change",
            f"<= 5 min inside {inputs.db_backup_retention_days} days (point-in-time restore); daily / monthly "
            "AWS Backup recovery points",
            f"restore time of {inputs.db_storage_gb} GB (tens of minutes) + repointing the app",
            ("Deletion protection on the DB. " if inputs.db_deletion_protection else "Deletion protection OFF. ")
            + "Backup vault encrypted with its own KMS key; vault lock is not configured by playbooks/data.yml yet.",
            _measured(drills, "deletion"),
        ),
    ]
