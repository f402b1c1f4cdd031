"""gearlift.platform.guards: validate() directly, the schema files in step, and the role through ansible-playbook.

The bad-input cases each change one setting of a valid production config and assert the exact
guard that fires: the setting it names, the words of the reason and the override it offers
(or that none exists). The override cases check that each gearlift_allow_* flag really lets its
case through, and that the run log records it as a warning.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.gearlift.platform.plugins.module_utils import guards
from ansible_collections.gearlift.platform.plugins.module_utils.guards import validate

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "guards"
CERT = "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def production(**changes: Any) -> dict[str, Any]:
    """A complete, valid production config (no errors, no warnings), with ``changes`` applied."""
    config: dict[str, Any] = {
        "gearlift_environment": "production",
        "gearlift_project": "shop",
        "gearlift_region": "eu-west-1",
        "gearlift_az_count": 3,
        "gearlift_vpc_cidr": "10.20.0.0/16",
        "gearlift_nat_mode": "per_az",
        "gearlift_interface_endpoints": ["ssm", "ssmmessages", "ec2messages", "secretsmanager", "logs"],
        "gearlift_certificate_arn": CERT,
        "gearlift_instance_type": "m7g.large",
        "gearlift_architecture": "arm64",
        "gearlift_asg_min_size": 2,
        "gearlift_asg_desired_capacity": 2,
        "gearlift_asg_max_size": 8,
        "gearlift_asg_peak_schedule": [
            {
                "name": "weekday-evening-peak",
                "recurrence": "30 17 * * 1-5",
                "time_zone": "Europe/London",
                "min_size": 4,
                "max_size": 8,
                "desired_capacity": 4,
            },
            {
                "name": "weekday-evening-end",
                "recurrence": "30 22 * * MON-FRI",
                "min_size": 2,
                "max_size": 8,
                "desired_capacity": 2,
            },
        ],
        "gearlift_db_instance_class": "db.m6g.large",
        "gearlift_db_allocated_storage": 100,
        "gearlift_backup_copy_region": "eu-central-1",
        "gearlift_app_secret_rotation_lambda_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mysql-rotation",
        "gearlift_alarm_email": "ops@example.com",
        "gearlift_config_conformance_pack": {"name": "gearlift-pci", "template_s3_uri": "s3://templates/pci.yaml"},
    }
    config.update(changes)
    return config


# --------------------------------------------------------------------------
# a valid config
# --------------------------------------------------------------------------


def test_valid_production_config_passes_and_derives_non_overlapping_subnets() -> None:
    result = validate(production())

    assert result.ok, result.errors
    assert result.errors == []
    assert result.warnings == []
    derived = result.derived
    assert derived["production"] is True
    assert derived["environment"] == "production"
    assert derived["az_count"] == 3
    assert derived["nat_mode"] == "per_az"
    assert derived["nat_gateway_count"] == 3
    assert derived["architecture"] == "arm64"
    assert derived["public_subnet_cidrs"] == ["10.20.0.0/24", "10.20.1.0/24", "10.20.2.0/24"]
    assert derived["db_subnet_cidrs"] == ["10.20.4.0/24", "10.20.5.0/24", "10.20.6.0/24"]
    assert derived["app_subnet_cidrs"] == ["10.20.64.0/20", "10.20.128.0/20", "10.20.192.0/20"]
    assert derived["bake_subnet_cidr"] == "10.20.3.0/24"
    vpc = ipaddress.IPv4Network("10.20.0.0/16")
    subnets = [ipaddress.IPv4Network(c) for t in ("public", "app", "db") for c in derived[f"{t}_subnet_cidrs"]]
    subnets.append(ipaddress.IPv4Network(derived["bake_subnet_cidr"]))
    assert len(subnets) == 10
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not [(a, b) for i, a in enumerate(subnets) for b in subnets[i + 1 :] if a.overlaps(b)]


@pytest.mark.parametrize("prefix", [16, 17, 18, 19, 20])
@pytest.mark.parametrize("az_count", [2, 3])
def test_derived_subnets_fit_every_allowed_vpc_size(prefix: int, az_count: int) -> None:
    vpc = ipaddress.IPv4Network(f"172.16.0.0/{prefix}")
    plan = guards.derive_subnets(vpc, az_count)

    assert plan == guards.derive_subnets(vpc, az_count)  # deterministic
    nets = [ipaddress.IPv4Network(c) for tier in ("public", "app", "db", "bake") for c in plan[tier]]
    assert [len(plan[t]) for t in ("public", "app", "db")] == [az_count] * 3
    assert len(plan["bake"]) == 1  # the image builder's own subnet, one AZ
    assert all(n.subnet_of(vpc) for n in nets)
    assert not [(a, b) for i, a in enumerate(nets) for b in nets[i + 1 :] if a.overlaps(b)]
    assert all(ipaddress.IPv4Network(c).prefixlen <= 27 for c in plan["public"])  # room for an ALB
    # the app tier, where the fleet lives, gets the largest subnets
    assert min(ipaddress.IPv4Network(c).num_addresses for c in plan["app"]) > max(
        ipaddress.IPv4Network(c).num_addresses for c in plan["public"] + plan["db"]
    )


def test_a_given_bake_subnet_is_used_and_package_mirrors_need_no_override() -> None:
    result = validate(
        production(
            gearlift_bake_subnet_cidr="10.20.7.0/26",
            gearlift_bake_egress_extra=[{"port": 80, "cidr": "0.0.0.0/0", "description": "apt mirrors"}],
        )
    )
    assert result.ok, result.errors
    assert result.derived["bake_subnet_cidr"] == "10.20.7.0/26"


def test_non_production_defaults_to_a_single_nat_and_given_subnets_are_used() -> None:
    given = {
        "gearlift_public_subnet_cidrs": ["10.40.10.0/24", "10.40.11.0/24"],
        "gearlift_db_subnet_cidrs": ["10.40.20.0/24", "10.40.21.0/24"],
    }
    result = validate(
        production(
            gearlift_environment="staging",
            gearlift_az_count=2,
            gearlift_vpc_cidr="10.40.0.0/16",
            gearlift_nat_mode="auto",
            **given,
        )
    )

    assert result.ok, result.errors
    assert result.derived["production"] is False
    assert result.derived["nat_mode"] == "single"
    assert result.derived["nat_gateway_count"] == 1
    assert result.derived["public_subnet_cidrs"] == given["gearlift_public_subnet_cidrs"]
    assert result.derived["db_subnet_cidrs"] == given["gearlift_db_subnet_cidrs"]
    assert result.derived["app_subnet_cidrs"] == ["10.40.64.0/20", "10.40.128.0/20"]


def test_minimal_config_takes_the_secure_defaults() -> None:
    result = validate(
        {
            "gearlift_environment": "development",
            "gearlift_project": "shop",
            "gearlift_region": "eu-west-1",
            "gearlift_vpc_cidr": "192.168.0.0/20",
            "gearlift_certificate_arn": CERT,
        }
    )

    assert result.ok, result.errors
    assert result.derived["az_count"] == 2
    assert result.derived["public_subnet_cidrs"] == ["192.168.0.0/25", "192.168.0.128/25"]
    assert result.derived["app_subnet_cidrs"] == ["192.168.4.0/22", "192.168.8.0/22"]


# --------------------------------------------------------------------------
# bad input: one change each, the specific message and override
# --------------------------------------------------------------------------

NO_OVERRIDE = None
SCHEDULE_OK = {"name": "peak", "recurrence": "0 17 * * *", "min_size": 3, "max_size": 6, "desired_capacity": 3}

BAD_CASES: list[tuple[str, dict[str, Any], str, str, str | None]] = [
    # id, changes, setting named, words of the reason, override named
    ("vpc-public", {"gearlift_vpc_cidr": "8.8.0.0/16"}, "gearlift_vpc_cidr", "RFC 1918", NO_OVERRIDE),
    ("vpc-too-small", {"gearlift_vpc_cidr": "10.20.0.0/24"}, "gearlift_vpc_cidr", "use a /16 to /20", NO_OVERRIDE),
    ("vpc-too-big", {"gearlift_vpc_cidr": "10.16.0.0/12"}, "gearlift_vpc_cidr", "is a /12", NO_OVERRIDE),
    ("vpc-host-bits", {"gearlift_vpc_cidr": "10.20.0.1/16"}, "gearlift_vpc_cidr", "not an IPv4 network", NO_OVERRIDE),
    (
        "subnet-outside-vpc",
        {"gearlift_app_subnet_cidrs": ["10.99.0.0/20", "10.20.128.0/20", "10.20.192.0/20"]},
        "gearlift_app_subnet_cidrs",
        "10.99.0.0/20 is not inside gearlift_vpc_cidr",
        NO_OVERRIDE,
    ),
    (
        "subnets-overlap",
        {"gearlift_app_subnet_cidrs": ["10.20.0.0/20", "10.20.128.0/20", "10.20.192.0/20"]},
        "gearlift_app_subnet_cidrs",
        "overlaps",
        NO_OVERRIDE,
    ),
    (
        "subnet-count",
        {"gearlift_db_subnet_cidrs": ["10.20.4.0/24", "10.20.5.0/24"]},
        "gearlift_db_subnet_cidrs",
        "lists 2 subnets; gearlift_az_count is 3",
        NO_OVERRIDE,
    ),
    ("one-az", {"gearlift_az_count": 1}, "gearlift_az_count", "use 2 or 3", NO_OVERRIDE),
    (
        "no-certificate",
        {"gearlift_certificate_arn": ""},
        "gearlift_certificate_arn",
        "plain HTTP",
        "gearlift_allow_http_only",
    ),
    (
        "certificate-other-region",
        {"gearlift_certificate_arn": CERT.replace("eu-west-1", "us-east-1")},
        "gearlift_certificate_arn",
        "from its own region",
        NO_OVERRIDE,
    ),
    (
        "tls-2016-08",
        {"gearlift_alb_ssl_policy": "ELBSecurityPolicy-2016-08"},
        "gearlift_alb_ssl_policy",
        "accepts TLS 1.0/1.1",
        "gearlift_allow_legacy_tls",
    ),
    (
        "tls13-1-1",
        {"gearlift_alb_ssl_policy": "ELBSecurityPolicy-TLS13-1-1-2021-06"},
        "gearlift_alb_ssl_policy",
        "accepts TLS 1.0/1.1",
        "gearlift_allow_legacy_tls",
    ),
    (
        "tls-unknown",
        {"gearlift_alb_ssl_policy": "MyPolicy"},
        "gearlift_alb_ssl_policy",
        "is not an ALB security policy",
        NO_OVERRIDE,
    ),
    (
        "ssh-any",
        {"gearlift_ssh_ingress_cidrs": ["198.51.100.0/24"]},
        "gearlift_ssh_ingress_cidrs",
        "port 22",
        "gearlift_allow_ssh",
    ),
    (
        "ssh-world",
        {"gearlift_ssh_ingress_cidrs": ["0.0.0.0/0"], "gearlift_allow_ssh": True},
        "gearlift_ssh_ingress_cidrs",
        "whole internet",
        "gearlift_allow_ssh_from_world",
    ),
    (
        "ssh-world-v6",
        {"gearlift_ssh_ingress_cidrs": ["::/0"], "gearlift_allow_ssh": True},
        "gearlift_ssh_ingress_cidrs",
        "whole internet",
        "gearlift_allow_ssh_from_world",
    ),
    (
        "db-world",
        {"gearlift_db_extra_ingress_cidrs": ["0.0.0.0/0"]},
        "gearlift_db_extra_ingress_cidrs",
        "MySQL 3306 to the whole internet",
        "gearlift_allow_world_db",
    ),
    (
        "db-outside-vpc",
        {"gearlift_db_extra_ingress_cidrs": ["192.168.50.0/24"]},
        "gearlift_db_extra_ingress_cidrs",
        "outside the VPC",
        "gearlift_allow_db_outside_vpc",
    ),
    (
        "public-ip",
        {"gearlift_associate_public_ip": True},
        "gearlift_associate_public_ip",
        "public IPv4",
        "gearlift_allow_public_ip",
    ),
    (
        "imdsv1",
        {"gearlift_imds_http_tokens": "optional"},
        "gearlift_imds_http_tokens",
        "IMDSv1",
        "gearlift_allow_imdsv1",
    ),
    (
        "ebs-unencrypted",
        {"gearlift_ebs_encrypted": False},
        "gearlift_ebs_encrypted",
        "unencrypted",
        "gearlift_allow_unencrypted_storage",
    ),
    (
        "db-unencrypted",
        {"gearlift_db_storage_encrypted": False},
        "gearlift_db_storage_encrypted",
        "unencrypted",
        "gearlift_allow_unencrypted_storage",
    ),
    (
        "single-instance",
        {"gearlift_asg_min_size": 1},
        "gearlift_asg_min_size",
        "1 in production",
        "gearlift_allow_single_instance",
    ),
    (
        "sizes-inconsistent",
        {"gearlift_asg_min_size": 3, "gearlift_asg_desired_capacity": 2},
        "gearlift_asg_desired_capacity",
        "min 3 <= desired 2 <= max 8 does not hold",
        NO_OVERRIDE,
    ),
    (
        "db-single-az",
        {"gearlift_db_multi_az": False},
        "gearlift_db_multi_az",
        "AZ outage",
        "gearlift_allow_single_az_db",
    ),
    (
        "db-public",
        {"gearlift_db_publicly_accessible": True},
        "gearlift_db_publicly_accessible",
        "public endpoint",
        "gearlift_allow_public_db",
    ),
    (
        "db-short-backups",
        {"gearlift_db_backup_retention_days": 3},
        "gearlift_db_backup_retention_days",
        "3 days in production",
        "gearlift_allow_short_backups",
    ),
    (
        "db-deletable",
        {"gearlift_db_deletion_protection": False},
        "gearlift_db_deletion_protection",
        "deletes the shop's database",
        "gearlift_allow_db_deletion",
    ),
    (
        "logs-90-days",
        {"gearlift_log_retention_days": 90},
        "gearlift_log_retention_days",
        "PCI DSS 10.5.1",
        "gearlift_allow_short_log_retention",
    ),
    (
        "logs-not-a-cloudwatch-value",
        {"gearlift_log_retention_days": 100},
        "gearlift_log_retention_days",
        "not a CloudWatch Logs retention value",
        NO_OVERRIDE,
    ),
    (
        "backup-copy-same-region",
        {"gearlift_backup_copy_region": "eu-west-1"},
        "gearlift_backup_copy_region",
        "is gearlift_region eu-west-1 itself",
        NO_OVERRIDE,
    ),
    (
        "graviton-on-x86",
        {"gearlift_architecture": "x86_64"},
        "gearlift_architecture",
        "m7g.large is an arm64 type",
        NO_OVERRIDE,
    ),
    (
        "x86-on-arm",
        {"gearlift_instance_type": "t3.medium"},
        "gearlift_architecture",
        "t3.medium is an x86_64 type",
        NO_OVERRIDE,
    ),
    (
        "schedule-6-fields",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "recurrence": "0 0 17 * * *"}]},
        "gearlift_asg_peak_schedule[0]",
        "has 6 fields",
        NO_OVERRIDE,
    ),
    (
        "schedule-hour-25",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "recurrence": "0 25 * * *"}]},
        "gearlift_asg_peak_schedule[0]",
        "hour field '25'",
        NO_OVERRIDE,
    ),
    (
        "schedule-above-group-max",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "max_size": 12}]},
        "gearlift_asg_peak_schedule[0]",
        "above gearlift_asg_max_size 8",
        NO_OVERRIDE,
    ),
    (
        "schedule-desired-above-max",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "desired_capacity": 7}]},
        "gearlift_asg_peak_schedule[0]",
        "min 3 <= desired 7 <= max 6 does not hold",
        NO_OVERRIDE,
    ),
    (
        "schedule-unknown-key",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "desired": 3}]},
        "gearlift_asg_peak_schedule[0]",
        "unknown key(s) desired",
        NO_OVERRIDE,
    ),
    (
        "schedule-bad-time-zone",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "time_zone": "Europe/Nowhere"}]},
        "gearlift_asg_peak_schedule[0]",
        "not an IANA time zone",
        NO_OVERRIDE,
    ),
    (
        "schedule-single-instance",
        {"gearlift_asg_peak_schedule": [{**SCHEDULE_OK, "min_size": 1, "desired_capacity": 1}]},
        "gearlift_asg_peak_schedule[0]",
        "min_size 1 in production",
        "gearlift_allow_single_instance",
    ),
    (
        "endpoint-unknown",
        {"gearlift_interface_endpoints": ["ssm", "ssmmessages", "ec2messages", "s3"]},
        "gearlift_interface_endpoints",
        "unknown endpoint name(s) s3",
        NO_OVERRIDE,
    ),
    ("project-uppercase", {"gearlift_project": "Shop"}, "gearlift_project", "lowercase letters", NO_OVERRIDE),
    (
        "project-name-too-long-for-aws",
        {"gearlift_project": "shop-eu-frontend18"},
        "gearlift_project",
        "AWS allows 32",
        NO_OVERRIDE,
    ),
    ("az-count-type", {"gearlift_az_count": "three"}, "gearlift_az_count", "must be an integer", NO_OVERRIDE),
    (
        "waf-rate-limit",
        {"gearlift_waf_rate_limit": 50},
        "gearlift_waf_rate_limit",
        "outside the allowed range",
        NO_OVERRIDE,
    ),
    ("db-engine-8-4", {"gearlift_db_engine_version": "8.4"}, "gearlift_db_engine_version", "mysql8.0", NO_OVERRIDE),
    (
        "db-class",
        {"gearlift_db_instance_class": "t3.medium"},
        "gearlift_db_instance_class",
        "not an RDS instance",
        NO_OVERRIDE,
    ),
    (
        "monthly-shorter-than-daily",
        {"gearlift_backup_monthly_retention_days": 30},
        "gearlift_backup_monthly_retention_days",
        "shorter than the daily ones",
        NO_OVERRIDE,
    ),
    (
        "flow-logs-off",
        {"gearlift_flow_logs": False},
        "gearlift_flow_logs",
        "VPC flow logs",
        "gearlift_allow_disabled_controls",
    ),
    (
        "no-pci-standard",
        {"gearlift_security_hub_standards": ["aws-foundational-security-best-practices-v1.0.0"]},
        "gearlift_security_hub_standards",
        "pci-dss-v4.0.1",
        "gearlift_allow_disabled_controls",
    ),
    (
        "config-recorder-off",
        {"gearlift_config_recorder": False, "gearlift_config_conformance_pack": {}},
        "gearlift_config_recorder",
        "AWS Config recording",
        "gearlift_allow_disabled_controls",
    ),
    (
        "conformance-pack-without-recorder",
        {"gearlift_config_recorder": False, "gearlift_allow_disabled_controls": True},
        "gearlift_config_conformance_pack",
        "needs AWS Config recording",
        NO_OVERRIDE,
    ),
    (
        "efs-unencrypted",
        {"gearlift_efs_encrypted": False},
        "gearlift_efs_encrypted",
        "uploads unencrypted at rest",
        "gearlift_allow_unencrypted_storage",
    ),
    (
        "efs-without-tls",
        {"gearlift_efs_require_tls": False},
        "gearlift_efs_require_tls",
        "without TLS",
        "gearlift_allow_efs_without_tls",
    ),
    (
        "efs-anonymous",
        {"gearlift_efs_deny_anonymous": False},
        "gearlift_efs_deny_anonymous",
        "any client that reaches a mount target",
        "gearlift_allow_world_efs",
    ),
    (
        "efs-world-ingress",
        {"gearlift_efs_extra_ingress_cidrs": ["0.0.0.0/0"]},
        "gearlift_efs_extra_ingress_cidrs",
        "to the whole internet",
        "gearlift_allow_world_efs",
    ),
    (
        "efs-ingress-elsewhere",
        {"gearlift_efs_extra_ingress_cidrs": ["198.51.100.0/24"]},
        "gearlift_efs_extra_ingress_cidrs",
        "neither in the VPC",
        NO_OVERRIDE,
    ),
    (
        "efs-principal-anyone",
        {"gearlift_efs_extra_principals": ["*"]},
        "gearlift_efs_extra_principals",
        "not an IAM role or user ARN",
        NO_OVERRIDE,
    ),
    (
        "efs-elastic-max-io",
        {"gearlift_efs_performance_mode": "max_io"},
        "gearlift_efs_throughput_mode",
        "elastic needs gearlift_efs_performance_mode general_purpose",
        NO_OVERRIDE,
    ),
    (
        "efs-provisioned-without-mibps",
        {"gearlift_efs_throughput_mode": "provisioned"},
        "gearlift_efs_provisioned_throughput_mibps",
        "with gearlift_efs_throughput_mode provisioned",
        NO_OVERRIDE,
    ),
    (
        "efs-transition-days",
        {"gearlift_efs_transition_to_ia_days": 45},
        "gearlift_efs_transition_to_ia_days",
        "45 is not one EFS offers",
        NO_OVERRIDE,
    ),
    (
        "efs-root-uid",
        {"gearlift_efs_uid": 0},
        "gearlift_efs_uid",
        "outside the allowed range 1..4294967294",
        NO_OVERRIDE,
    ),
    (
        "session-store-unknown-mode",
        {"gearlift_session_store": "memcached"},
        "gearlift_session_store",
        "'memcached' is not one of sticky, redis",
        NO_OVERRIDE,
    ),
    (
        "session-store-without-tls",
        {
            "gearlift_session_store": "redis",
            "gearlift_session_store_tls": False,
            "gearlift_session_store_auth": False,
            "gearlift_allow_session_store_without_auth": True,
        },
        "gearlift_session_store_tls",
        "clear text",
        "gearlift_allow_session_store_without_tls",
    ),
    (
        "session-store-without-auth",
        {"gearlift_session_store": "redis", "gearlift_session_store_auth": False},
        "gearlift_session_store_auth",
        "read and change every session",
        "gearlift_allow_session_store_without_auth",
    ),
    (
        "session-store-unencrypted",
        {"gearlift_session_store": "redis", "gearlift_session_store_encrypted": False},
        "gearlift_session_store_encrypted",
        "unencrypted at rest",
        "gearlift_allow_unencrypted_storage",
    ),
    (
        "session-store-engine-version",
        {"gearlift_session_store": "redis", "gearlift_session_store_engine_version": "5.0.6"},
        "gearlift_session_store_engine_version",
        "'5.0.6' is not a redis version",
        NO_OVERRIDE,
    ),
    (
        "session-store-node-type",
        {"gearlift_session_store": "redis", "gearlift_session_store_node_type": "t4g.small"},
        "gearlift_session_store_node_type",
        "not an ElastiCache node type",
        NO_OVERRIDE,
    ),
    (
        "session-store-replicas",
        {"gearlift_session_store": "redis", "gearlift_session_store_replicas": 6},
        "gearlift_session_store_replicas",
        "outside",
        NO_OVERRIDE,
    ),
    ("trail-bucket-empty", {"gearlift_trail_bucket": ""}, "gearlift_trail_bucket", "leave it undefined", NO_OVERRIDE),
    (
        "environment-unknown",
        {"gearlift_environment": "prod"},
        "gearlift_environment",
        "'prod' is not one of",
        NO_OVERRIDE,
    ),
    (
        "log-lock-short",
        {"gearlift_log_object_lock_days": 30},
        "gearlift_log_object_lock_days",
        "30 days",
        "gearlift_allow_short_log_retention",
    ),
    (
        "log-expiry-before-lock",
        {"gearlift_log_bucket_expiration_days": 400, "gearlift_log_object_lock_days": 500},
        "gearlift_log_bucket_expiration_days",
        "expire while locked",
        NO_OVERRIDE,
    ),
    (
        "log-expiry-short",
        {"gearlift_log_bucket_expiration_days": 60},
        "gearlift_log_bucket_expiration_days",
        "60 is outside",
        NO_OVERRIDE,
    ),
    (
        "network-acls-off",
        {"gearlift_network_acls": False},
        "gearlift_network_acls",
        "allow-all default ACL",
        "gearlift_allow_disabled_controls",
    ),
    (
        "alb-access-logs-off",
        {"gearlift_alb_access_logs": False},
        "gearlift_alb_access_logs",
        "ELB.5",
        "gearlift_allow_disabled_controls",
    ),
    (
        "db-audit-table-events",
        {"gearlift_db_audit_events": ["CONNECT", "TABLE"]},
        "gearlift_db_audit_events",
        "TABLE: each must be one of",
        NO_OVERRIDE,
    ),
    (
        "db-audit-without-logins",
        {"gearlift_db_audit_events": ["QUERY_DDL"]},
        "gearlift_db_audit_events",
        "records no logins",
        "gearlift_allow_disabled_controls",
    ),
    (
        "kms-admin-not-an-arn",
        {"gearlift_kms_admin_arns": ["security-team"]},
        "gearlift_kms_admin_arns",
        "is not an IAM role or user ARN",
        NO_OVERRIDE,
    ),
    (
        "kms-admin-other-partition",
        {"gearlift_kms_admin_arns": ["arn:aws-cn:iam::111122223333:role/KeyAdmins"]},
        "gearlift_kms_admin_arns",
        "partition aws-cn",
        NO_OVERRIDE,
    ),
    (
        "endpoint-bucket-arn",
        {"gearlift_s3_endpoint_extra_buckets": ["arn:aws:s3:::vendor-repo"]},
        "gearlift_s3_endpoint_extra_buckets",
        "is not an S3 bucket name",
        NO_OVERRIDE,
    ),
    (
        "bake-subnet-outside-vpc",
        {"gearlift_bake_subnet_cidr": "10.99.3.0/24"},
        "gearlift_bake_subnet_cidr",
        "10.99.3.0/24 is not inside gearlift_vpc_cidr",
        NO_OVERRIDE,
    ),
    (
        "bake-subnet-in-the-app-tier",
        {"gearlift_bake_subnet_cidr": "10.20.64.0/24"},
        "gearlift_bake_subnet_cidr",
        "10.20.64.0/24 overlaps 10.20.64.0/20",
        NO_OVERRIDE,
    ),
    (
        "bake-subnet-not-a-cidr",
        {"gearlift_bake_subnet_cidr": "10.20.3.1/24"},
        "gearlift_bake_subnet_cidr",
        "is not a CIDR block",
        NO_OVERRIDE,
    ),
    (
        "bake-subnet-too-small",
        {"gearlift_bake_subnet_cidr": "10.20.3.0/29"},
        "gearlift_bake_subnet_cidr",
        "AWS subnets are /16 to /28",
        NO_OVERRIDE,
    ),
    (
        "bake-egress-world-ssh",
        {"gearlift_bake_egress_extra": [{"port": 22, "cidr": "0.0.0.0/0"}]},
        "gearlift_bake_egress_extra",
        "the image builder reaches the internet on 443 only",
        "gearlift_allow_open_egress",
    ),
    (
        "bake-egress-not-a-list",
        {"gearlift_bake_egress_extra": {"port": 80, "cidr": "0.0.0.0/0"}},
        "gearlift_bake_egress_extra",
        "must be a list",
        NO_OVERRIDE,
    ),
    (
        "standby-alarm-too-short",
        {"gearlift_standby_alarm_minutes": 1},
        "gearlift_standby_alarm_minutes",
        "1 is outside",
        NO_OVERRIDE,
    ),
    (
        "standby-alarm-longer-than-a-day",
        {"gearlift_standby_alarm_minutes": 1441},
        "gearlift_standby_alarm_minutes",
        "1441 is outside",
        NO_OVERRIDE,
    ),
    (
        "egress-world-smtp",
        {"gearlift_app_egress_extra": [{"port": 25, "cidr": "0.0.0.0/0", "description": "mail"}]},
        "gearlift_app_egress_extra",
        "tcp 25 to 0.0.0.0/0",
        "gearlift_allow_open_egress",
    ),
    (
        "egress-not-a-list",
        {"gearlift_app_egress_extra": "0.0.0.0/0"},
        "gearlift_app_egress_extra",
        "must be a list",
        NO_OVERRIDE,
    ),
    (
        "egress-icmp",
        {"gearlift_app_egress_extra": [{"port": 8, "cidr": "10.0.0.0/8", "proto": "icmp"}]},
        "gearlift_app_egress_extra",
        "proto must be tcp or udp",
        NO_OVERRIDE,
    ),
    (
        "egress-port-range",
        {"gearlift_app_egress_extra": [{"port": "1-65535", "cidr": "10.1.0.0/16"}]},
        "gearlift_app_egress_extra",
        "one port 1-65535",
        NO_OVERRIDE,
    ),
    (
        "egress-host-bits",
        {"gearlift_app_egress_extra": [{"port": 80, "cidr": "10.0.0.1/8"}]},
        "gearlift_app_egress_extra",
        "is not a CIDR block",
        NO_OVERRIDE,
    ),
    (
        "egress-no-cidr",
        {"gearlift_app_egress_extra": [{"port": 80}]},
        "gearlift_app_egress_extra",
        "at least port and cidr",
        NO_OVERRIDE,
    ),
    (
        "egress-unknown-key",
        {"gearlift_app_egress_extra": [{"port": 80, "cidr": "0.0.0.0/0", "to": "mirrors"}]},
        "gearlift_app_egress_extra",
        "unknown keys to",
        NO_OVERRIDE,
    ),
]


@pytest.mark.parametrize(
    ("changes", "setting", "reason", "override"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_setting_is_refused_naming_setting_and_override(
    changes: dict[str, Any], setting: str, reason: str, override: str | None
) -> None:
    result = validate(production(**changes))

    assert not result.ok
    matching = [e for e in result.errors if e.startswith(f"{setting}: ") and reason in e]
    assert len(matching) == 1, result.errors
    assert len(result.errors) == 1, result.errors
    message = matching[0]
    if override:
        assert re.search(rf"Override: (\w+: true and )?{override}: true\.$", message), message
    else:
        assert message.endswith("No override exists: change the value."), message


def test_app_egress_to_package_mirrors_and_private_blocks_is_accepted_without_override() -> None:
    result = validate(
        production(
            gearlift_app_egress_extra=[
                {"port": 80, "cidr": "0.0.0.0/0", "description": "apt mirrors (signed packages)"},
                {"port": 389, "cidr": "10.30.0.0/16", "proto": "udp"},
            ]
        )
    )

    assert result.ok, result.errors
    assert not result.warnings


def test_every_problem_is_reported_at_once() -> None:
    result = validate(
        production(
            gearlift_db_extra_ingress_cidrs=["0.0.0.0/0"],
            gearlift_imds_http_tokens="optional",
            gearlift_log_retention_days=30,
        )
    )

    assert [e.split(":")[0] for e in result.errors] == [
        "gearlift_db_extra_ingress_cidrs",
        "gearlift_imds_http_tokens",
        "gearlift_log_retention_days",
    ]


def test_missing_required_settings_are_named() -> None:
    result = validate({"gearlift_certificate_arn": CERT})

    for name in guards.REQUIRED:
        assert f"{name}: is required and not set. No override exists: change the value." in result.errors


# --------------------------------------------------------------------------
# each override lets its case pass (and is recorded as a warning)
# --------------------------------------------------------------------------

OVERRIDE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("gearlift_allow_http_only", {"gearlift_certificate_arn": ""}),
    ("gearlift_allow_legacy_tls", {"gearlift_alb_ssl_policy": "ELBSecurityPolicy-TLS-1-0-2015-04"}),
    ("gearlift_allow_ssh", {"gearlift_ssh_ingress_cidrs": ["198.51.100.0/24"]}),
    ("gearlift_allow_ssh_from_world", {"gearlift_ssh_ingress_cidrs": ["0.0.0.0/0"], "gearlift_allow_ssh": True}),
    ("gearlift_allow_db_outside_vpc", {"gearlift_db_extra_ingress_cidrs": ["192.168.50.0/24"]}),
    ("gearlift_allow_world_db", {"gearlift_db_extra_ingress_cidrs": ["0.0.0.0/0"]}),
    ("gearlift_allow_public_ip", {"gearlift_associate_public_ip": True}),
    ("gearlift_allow_imdsv1", {"gearlift_imds_http_tokens": "optional"}),
    (
        "gearlift_allow_unencrypted_storage",
        {"gearlift_ebs_encrypted": False, "gearlift_db_storage_encrypted": False, "gearlift_efs_encrypted": False},
    ),
    ("gearlift_allow_single_instance", {"gearlift_asg_min_size": 1, "gearlift_asg_desired_capacity": 1}),
    ("gearlift_allow_single_az_db", {"gearlift_db_multi_az": False}),
    ("gearlift_allow_public_db", {"gearlift_db_publicly_accessible": True}),
    ("gearlift_allow_short_backups", {"gearlift_db_backup_retention_days": 1}),
    ("gearlift_allow_db_deletion", {"gearlift_db_deletion_protection": False}),
    ("gearlift_allow_short_log_retention", {"gearlift_log_retention_days": 90}),
    ("gearlift_allow_open_egress", {"gearlift_app_egress_extra": [{"port": 8443, "cidr": "0.0.0.0/0"}]}),
    ("gearlift_allow_unusual_dns_ttl", {"gearlift_dns_ttl": 0, "gearlift_dns_cutover_ttl": 0}),
    (
        "gearlift_allow_disabled_controls",
        {
            "gearlift_flow_logs": False,
            "gearlift_waf_associate": False,
            "gearlift_guardduty": False,
            "gearlift_security_hub_standards": [],
        },
    ),
    ("gearlift_allow_efs_without_tls", {"gearlift_efs_require_tls": False}),
    (
        "gearlift_allow_world_efs",
        {"gearlift_efs_deny_anonymous": False, "gearlift_efs_extra_ingress_cidrs": ["0.0.0.0/0"]},
    ),
    (
        "gearlift_allow_session_store_without_tls",
        {
            "gearlift_session_store": "redis",
            "gearlift_session_store_tls": False,
            "gearlift_session_store_auth": False,
            "gearlift_allow_session_store_without_auth": True,
        },
    ),
    (
        "gearlift_allow_session_store_without_auth",
        {"gearlift_session_store": "redis", "gearlift_session_store_auth": False},
    ),
]


@pytest.mark.parametrize(("flag", "changes"), OVERRIDE_CASES, ids=[c[0] for c in OVERRIDE_CASES])
def test_override_lets_its_case_pass(flag: str, changes: dict[str, Any]) -> None:
    refused = validate(production(**changes))
    assert refused.errors and all(flag in e for e in refused.errors), refused.errors

    accepted = validate(production(**changes, **{flag: True}))

    assert accepted.ok, accepted.errors
    assert any(w.startswith(f"{flag}: override in effect") for w in accepted.warnings), accepted.warnings


def test_efs_choices_and_ranges_follow_the_argument_spec() -> None:
    spec = _spec()
    assert spec["gearlift_efs_performance_mode"]["choices"] == list(guards.EFS_PERFORMANCE_MODES)
    assert spec["gearlift_efs_throughput_mode"]["choices"] == list(guards.EFS_THROUGHPUT_MODES)
    assert spec["gearlift_efs_transition_to_ia_days"]["choices"] == list(guards.EFS_TRANSITION_DAYS)


def test_efs_settings_that_fit_together_pass_and_storage_off_is_warned() -> None:
    provisioned = validate(
        production(
            gearlift_efs_throughput_mode="provisioned",
            gearlift_efs_provisioned_throughput_mibps=128,
            gearlift_efs_performance_mode="max_io",
            gearlift_efs_transition_to_ia_days=0,
            gearlift_efs_extra_ingress_cidrs=["10.20.64.0/24"],
        )
    )
    assert provisioned.ok, provisioned.errors
    with_onprem = validate(
        production(
            gearlift_onprem_cidrs=["192.168.50.0/24"],
            gearlift_efs_extra_ingress_cidrs=["192.168.50.10/32"],
            gearlift_efs_extra_principals=["arn:aws:iam::123456789012:role/shop-uploads-copier"],
        )
    )
    assert not [e for e in with_onprem.errors if e.startswith("gearlift_efs")], with_onprem.errors
    off = validate(production(gearlift_efs=False, gearlift_efs_require_tls=False))
    assert off.ok, off.errors
    assert any(w.startswith("gearlift_efs: false: no shared storage") for w in off.warnings)


def test_session_store_settings() -> None:
    spec = _spec()
    assert spec["gearlift_session_store"]["choices"] == list(guards.SESSION_STORE_MODES)
    assert spec["gearlift_session_store_engine"]["choices"] == list(guards.SESSION_STORE_ENGINE_VERSIONS)
    valkey = validate(
        production(
            gearlift_session_store="redis",
            gearlift_session_store_engine="valkey",
            gearlift_session_store_engine_version="8.0",
            gearlift_session_store_node_type="cache.r7g.large",
        )
    )
    assert valkey.ok, valkey.errors
    # Insecure settings are ignored while the store is not in use (sticky).
    assert validate(production(gearlift_session_store_tls=False, gearlift_session_store_auth=False)).ok
    # AUTH needs TLS on ElastiCache: no override makes the pair valid.
    auth_without_tls = validate(
        production(
            gearlift_session_store="redis",
            gearlift_session_store_tls=False,
            gearlift_allow_session_store_without_tls=True,
        )
    )
    assert [e for e in auth_without_tls.errors if e.startswith("gearlift_session_store_auth: ")], (
        auth_without_tls.errors
    )
    single = validate(production(gearlift_session_store="redis", gearlift_session_store_replicas=0))
    assert single.ok, single.errors
    assert any(w.startswith("gearlift_session_store_replicas: 0 in production") for w in single.warnings)
    unstuck = validate(production(gearlift_tg_stickiness=False))
    assert any(
        w.startswith("gearlift_session_store: sticky with gearlift_tg_stickiness false") for w in unstuck.warnings
    )


def test_override_cases_cover_every_override() -> None:
    assert {flag for flag, _ in OVERRIDE_CASES} == set(guards.OVERRIDES)


def test_override_flags_accept_ansible_booleans_and_refuse_garbage() -> None:
    assert validate(production(gearlift_associate_public_ip="yes", gearlift_allow_public_ip="true")).ok
    result = validate(production(gearlift_allow_public_ip="maybe"))
    assert result.errors == [
        "gearlift_allow_public_ip: must be a boolean (true/false), got 'maybe' (str). "
        "No override exists: change the value."
    ]


def test_production_only_guards_do_not_apply_elsewhere() -> None:
    relaxed = {
        "gearlift_asg_min_size": 1,
        "gearlift_asg_desired_capacity": 1,
        "gearlift_db_multi_az": False,
        "gearlift_db_backup_retention_days": 1,
        "gearlift_db_deletion_protection": False,
        "gearlift_flow_logs": False,
        "gearlift_security_hub_standards": [],
    }
    result = validate(production(gearlift_environment="rehearsal", **relaxed))

    assert result.ok, result.errors
    assert any(w.startswith("gearlift_flow_logs:") for w in result.warnings)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [
        ("t3.medium", "x86_64"),
        ("m6i.large", "x86_64"),
        ("m7i-flex.large", "x86_64"),
        ("g4dn.xlarge", "x86_64"),
        ("m7g.large", "arm64"),
        ("t4g.small", "arm64"),
        ("c7gn.2xlarge", "arm64"),
        ("r8gd.large", "arm64"),
        ("im4gn.large", "arm64"),
        ("a1.medium", "arm64"),
        ("u-6tb1.metal", "x86_64"),
        ("p6e-gb200.36xlarge", "arm64"),
        ("mac1.metal", "x86_64"),
        ("mac2-m2.metal", "arm64"),
        ("no-such.type", None),
    ],
)
def test_instance_architecture(instance_type: str, architecture: str | None) -> None:
    assert guards.instance_architecture(instance_type) == architecture


@pytest.mark.parametrize(
    "policy",
    [
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS-1-0-2015-04",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-FS-1-1-2019-08",
        "ELBSecurityPolicy-2015-05",
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
    ],
)
def test_legacy_tls_policies(policy: str) -> None:
    assert guards.tls_policy_is_legacy(policy) is True


def test_modern_tls_policies_and_the_moto_list_agree() -> None:
    assert guards.tls_policy_is_legacy("ELBSecurityPolicy-TLS13-1-2-2021-06") is False
    assert guards.tls_policy_is_legacy("ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09") is False
    assert guards.tls_policy_is_legacy("ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04") is False
    assert guards.tls_policy_is_legacy("SomethingElse") is None
    ssl_policies = pytest.importorskip("moto.elbv2.ssl_policies")
    for name, policy in ssl_policies.SSL_POLICIES.items():
        old = bool({"TLSv1", "TLSv1.1"} & set(policy["ssl_protocols"]))
        assert guards.tls_policy_is_legacy(name) is old, name


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("30 17 * * 1-5", None),
        ("*/15 8-18 1,15 JAN-DEC SUN", None),
        ("0 0 * * 7", None),
        ("0 17 * *", "has 4 fields"),
        ("60 17 * * *", "minute field '60'"),
        ("0 17 32 * *", "day of month field '32'"),
        ("0 17 * 13 *", "month field '13'"),
        ("0 17 * * MON-XYZ", "day of week field 'MON-XYZ'"),
        ("*/0 17 * * *", "bad step"),
    ],
)
def test_cron_problem(expression: str, problem: str | None) -> None:
    found = guards.cron_problem(expression)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_unknown_settings_are_warned_with_a_suggestion() -> None:
    result = validate(production(gearlift_alow_ssh=True, gearlift_name="shop-production"))

    assert result.ok
    assert result.warnings == [
        "gearlift_alow_ssh: is not a known setting (did you mean gearlift_allow_ssh?); it is ignored."
    ]


# --------------------------------------------------------------------------
# the schema: argument_specs, defaults and the Python defaults in step
# --------------------------------------------------------------------------


def _spec() -> dict[str, Any]:
    data = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    return data["argument_specs"]["main"]["options"]


def test_argument_specs_defaults_and_python_agree() -> None:
    spec = _spec()
    spec_defaults = {name: option["default"] for name, option in spec.items() if "default" in option}
    role_defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

    assert role_defaults == spec_defaults
    assert spec_defaults == guards.DEFAULTS
    assert sorted(n for n, o in spec.items() if o.get("required")) == sorted(guards.REQUIRED)
    assert sorted(n for n, o in spec.items() if "default" not in o and not o.get("required")) == sorted(guards.OPTIONAL)
    assert set(spec) == guards.KNOWN
    assert sorted(n for n in spec if n.startswith("gearlift_allow_")) == sorted(guards.OVERRIDES)
    assert all(spec[n]["type"] == "bool" and spec[n]["default"] is False for n in guards.OVERRIDES)
    assert all(option.get("description") for option in spec.values())


def test_role_readme_covers_every_variable_and_override() -> None:
    readme = (ROLE / "README.md").read_text()
    assert not [name for name in _spec() if f"`{name}`" not in readme]
    overrides_section = readme.split("## Overrides", 1)[1].split("\n## ", 1)[0]
    assert not [flag for flag in guards.OVERRIDES if f"| `{flag}` |" not in overrides_section]


def test_every_gearlift_variable_the_playbooks_and_inventories_use_is_documented() -> None:
    used: set[str] = set()
    for folder in ("playbooks", "inventories"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
                used |= set(re.findall(r"\bgearlift_[a-z0-9_]+", path.read_text()))
    undocumented = used - guards.KNOWN - set(guards.INTERNAL)
    assert not undocumented, f"document these in roles/guards/meta/argument_specs.yml: {sorted(undocumented)}"


def test_the_example_inventories_pass() -> None:
    for inventory in ("production-example", "rehearsal"):
        config = yaml.safe_load((REPO / "inventories" / inventory / "group_vars" / "all" / "main.yml").read_text())
        # the rehearsal reads these from the twin's environment (lookups are not templated here)
        config = {k: v for k, v in config.items() if not (isinstance(v, str) and "{{" in v)}
        config.setdefault(
            "gearlift_certificate_arn", f"arn:aws:acm:{config['gearlift_region']}:123456789012:certificate/x"
        )
        result = validate(config)
        assert result.ok, (inventory, result.errors)
        assert not [w for w in result.warnings if "not a known setting" in w], result.warnings


# --------------------------------------------------------------------------
# the role through the real ansible-playbook
# --------------------------------------------------------------------------

PLAYBOOK = """\
- name: Guards only
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Run the guards
      ansible.builtin.import_role:
        name: gearlift.platform.guards
    - name: The plan after the guards
      ansible.builtin.debug:
        var: gearlift_derived
"""


def _run_role(tmp_path: Path, settings: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.yml").write_text(yaml.safe_dump(settings))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
    }
    return subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(tmp_path / "play.yml"),
            "-e",
            f"@{tmp_path / 'vars.yml'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_role_accepts_a_good_config_and_prints_the_derived_subnets(tmp_path: Path) -> None:
    run = _run_role(tmp_path, production())

    assert run.returncode == 0, run.stdout + run.stderr
    for cidr in ("10.20.0.0/24", "10.20.64.0/20", "10.20.192.0/20", "10.20.6.0/24"):
        assert cidr in run.stdout
    assert "nat_gateway_count: 3" in run.stdout
    assert "failed=0" in run.stdout


def test_role_refuses_a_database_open_to_the_world(tmp_path: Path) -> None:
    run = _run_role(tmp_path, production(gearlift_db_extra_ingress_cidrs=["0.0.0.0/0"]))

    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "gearlift guards refused 1 setting(s) before any AWS change" in output
    assert "1. gearlift_db_extra_ingress_cidrs: 0.0.0.0/0 opens MySQL 3306 to the whole internet" in output
    assert "Override: gearlift_allow_world_db: true." in output
    assert "The plan after the guards" not in output


def test_role_argument_specs_refuse_a_wrong_type_before_the_guard_runs(tmp_path: Path) -> None:
    run = _run_role(tmp_path, production(gearlift_az_count="three"))

    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "Validation of arguments failed" in output
    assert "gearlift_az_count" in output and "cannot be converted to an int" in output
    assert "Guards | Refuse insecure" not in output  # the module never started


def test_the_toolkits_rotation_is_the_default_and_turning_it_off_without_a_function_is_warned() -> None:
    own = validate(production(gearlift_app_secret_rotation_lambda_arn=""))
    assert own.ok, own.errors
    assert not [w for w in own.warnings if "not rotated" in w]
    off = validate(production(gearlift_app_secret_rotation_lambda_arn="", gearlift_app_secret_rotation=False))
    assert off.ok, off.errors
    assert any(w.startswith("gearlift_app_secret_rotation: false") for w in off.warnings)


def test_a_rotated_app_login_leaves_room_for_its_clone() -> None:
    long_login = validate(production(gearlift_db_app_username="a" * 27))
    assert any(e.startswith("gearlift_db_app_username") and "_clone" in e for e in long_login.errors)
    assert validate(production(gearlift_db_app_username="a" * 26)).ok
    unrotated = validate(
        production(
            gearlift_db_app_username="a" * 27,
            gearlift_app_secret_rotation_lambda_arn="",
            gearlift_app_secret_rotation=False,
        )
    )
    assert unrotated.ok, unrotated.errors


@pytest.mark.parametrize("bundle", ["global-bundle.pem", "http://example.com/ca.pem"])
def test_the_rotation_ca_bundle_is_an_https_url_or_an_absolute_path(bundle: str) -> None:
    result = validate(
        production(gearlift_app_secret_rotation_lambda_arn="", gearlift_app_secret_rotation_ca_bundle=bundle)
    )
    assert any(e.startswith("gearlift_app_secret_rotation_ca_bundle") for e in result.errors), result.errors
    assert validate(
        production(gearlift_app_secret_rotation_lambda_arn="", gearlift_app_secret_rotation_ca_bundle="/etc/ca.pem")
    ).ok
