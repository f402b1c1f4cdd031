"""The design inputs: the inventory's gearlift_* settings over the documented defaults, typed.

Defaults come from the repository's guards logic (plugins/module_utils/guards.py, kept equal to
roles/guards/defaults/main.yml by a unit test). Values the report cannot do without raise a
ReportError naming the variable; values only known at run time are kept as RuntimeValue.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gearlift.report.errors import ReportError
from gearlift.report.inventory import Inventory, RuntimeValue
from gearlift.report.schedule import ScheduledAction


@dataclass(frozen=True)
class DesignInputs:
    """Everything the report computes from; ``dataclasses.replace`` makes the sensitivity variants."""

    inventory: str
    environment: str
    project: str
    region: str
    az_count: int
    vpc_cidr: str
    subnets: dict[str, list[str]]
    nat_mode: str
    nat_count: int
    interface_endpoints: tuple[str, ...]
    flow_logs: bool
    alb_ingress_cidrs: tuple[str, ...]
    app_port: int
    ssh_ingress_cidrs: tuple[str, ...]
    db_extra_ingress_cidrs: tuple[str, ...]
    certificate: str
    alb_ssl_policy: str
    waf_rate_limit: int
    waf_associate: bool
    instance_type: str
    architecture: str
    asg_min: int
    asg_desired: int
    asg_max: int
    schedule: tuple[ScheduledAction, ...]
    warm_pool: bool
    root_volume_gb: int
    health_check_interval: int
    healthy_threshold: int
    unhealthy_threshold: int
    grace_period: int
    requests_per_target: float
    cpu_target: float
    db_instance_class: str
    db_engine_version: str
    db_storage_gb: int
    db_multi_az: bool
    db_backup_retention_days: int
    db_deletion_protection: bool
    log_retention_days: int
    backup_copy_region: str
    backup_monthly_retention_days: int
    alarm_email: str
    secret_rotation_days: int
    security_hub_standards: tuple[str, ...]
    effective: dict[str, Any] = field(default_factory=dict, compare=False)
    guard_errors: tuple[str, ...] = ()
    guard_warnings: tuple[str, ...] = ()
    # Where carts live: "sticky" (each host's memory, the ALB's stickiness) or "redis" (ElastiCache).
    session_store: str = "sticky"
    tg_stickiness: bool = True
    session_store_replicas: int = 1


def _need(settings: dict[str, Any], name: str, inventory: Inventory) -> Any:
    value = settings.get(name)
    if isinstance(value, RuntimeValue):
        raise ReportError(
            f"{name} is only known at run time in {inventory.path} ({value.expression}); "
            f"the report needs it: pass --set {name}=VALUE"
        )
    return value


def _int(settings: dict[str, Any], name: str, inventory: Inventory, low: int | None = None) -> int:
    value = _need(settings, name, inventory)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ReportError(f"{name} must be a whole number, got {value!r} (in {inventory.path})")
    try:
        number = int(value)
    except ValueError as exc:
        raise ReportError(f"{name} must be a whole number, got {value!r} (in {inventory.path})") from exc
    if low is not None and number < low:
        raise ReportError(f"{name} must be at least {low}, got {number} (in {inventory.path})")
    return number


def _float(settings: dict[str, Any], name: str, inventory: Inventory) -> float:
    value = _need(settings, name, inventory)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"{name} must be a number, got {value!r} (in {inventory.path})") from exc


def _bool(settings: dict[str, Any], name: str, inventory: Inventory) -> bool:
    value = settings.get(name)
    if isinstance(value, RuntimeValue):
        return True  # decided at run time; the matrix shows it as such
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "yes", "on", "1", "false", "no", "off", "0"}:
        return value.lower() in {"true", "yes", "on", "1"}
    raise ReportError(f"{name} must be true or false, got {value!r} (in {inventory.path})")


def _text(settings: dict[str, Any], name: str) -> str:
    value = settings.get(name)
    if value is None:
        return ""
    return str(value)


def _strings(settings: dict[str, Any], name: str, inventory: Inventory) -> tuple[str, ...]:
    value = settings.get(name)
    if value is None:
        return ()
    if isinstance(value, RuntimeValue):
        return (str(value),)
    if not isinstance(value, list):
        raise ReportError(f"{name} must be a list, got {value!r} (in {inventory.path})")
    return tuple(str(item) for item in value)


def _schedule(settings: dict[str, Any], inventory: Inventory) -> tuple[ScheduledAction, ...]:
    raw = _need(settings, "gearlift_asg_peak_schedule", inventory) or []
    if not isinstance(raw, list):
        raise ReportError(f"gearlift_asg_peak_schedule must be a list of actions (in {inventory.path})")
    actions: list[ScheduledAction] = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or "recurrence" not in item or "desired_capacity" not in item:
            raise ReportError(
                f"gearlift_asg_peak_schedule item {position} needs at least recurrence and desired_capacity "
                f"(in {inventory.path})"
            )
        recurrence = item["recurrence"]
        if isinstance(recurrence, RuntimeValue):
            raise ReportError(f"gearlift_asg_peak_schedule item {position}: recurrence is only known at run time")
        try:
            desired = int(item["desired_capacity"])
        except (TypeError, ValueError) as exc:
            raise ReportError(f"gearlift_asg_peak_schedule item {position}: desired_capacity is not a number") from exc
        actions.append(ScheduledAction(str(item.get("name", f"action {position}")), str(recurrence), desired))
    return tuple(actions)


def _subnets(guards: ModuleType, effective: dict[str, Any], az_count: int) -> dict[str, list[str]]:
    given = {tier: effective.get(f"gearlift_{tier}_subnet_cidrs") or [] for tier in ("public", "app", "db")}
    derived: dict[str, list[str]] = {}
    vpc = effective.get("gearlift_vpc_cidr")
    if isinstance(vpc, str):
        try:
            derived = guards.derive_subnets(ipaddress.IPv4Network(vpc), az_count)
        except ValueError:
            derived = {}
    out: dict[str, list[str]] = {}
    for tier in ("public", "app", "db"):
        values = given[tier] if isinstance(given[tier], list) and given[tier] else derived.get(tier, [])
        out[tier] = [str(v) for v in values] or ["(derived at run time)"] * az_count
    return out


def design_inputs(inventory: Inventory, guards: ModuleType) -> DesignInputs:
    """Type and check the settings the report needs; a ReportError names the first bad one."""
    settings = inventory.settings
    region = settings.get("gearlift_region")
    if region is None or (isinstance(region, str) and not region.strip()):
        raise ReportError(
            f"gearlift_region is not set for the '{inventory.host}' host of {inventory.path} (group controller): "
            "the report prices one region; set it in group_vars/all/main.yml"
        )
    effective: dict[str, Any] = {**guards.DEFAULTS, **settings}
    region_text = str(_need(effective, "gearlift_region", inventory))
    environment = str(_need(effective, "gearlift_environment", inventory) or "(not set)")
    az_count = _int(effective, "gearlift_az_count", inventory, low=1)
    if az_count not in (2, 3):
        raise ReportError(f"gearlift_az_count must be 2 or 3, got {az_count} (in {inventory.path})")
    nat_mode = str(_need(effective, "gearlift_nat_mode", inventory))
    if nat_mode == "auto":
        nat_mode = "per_az" if environment == "production" else "single"
    if nat_mode not in ("single", "per_az"):
        raise ReportError(f"gearlift_nat_mode must be auto, single or per_az, got {nat_mode!r}")
    instance_type = _need(effective, "gearlift_instance_type", inventory)
    db_class = _need(effective, "gearlift_db_instance_class", inventory)
    if not isinstance(instance_type, str) or not instance_type:
        raise ReportError(f"gearlift_instance_type must be an EC2 instance type, got {instance_type!r}")
    if not isinstance(db_class, str) or not db_class:
        raise ReportError(f"gearlift_db_instance_class must be an RDS class, got {db_class!r}")

    # The guards' own verdict, minus what only run time decides (a template is not a bad value).
    runtime = set(inventory.runtime_settings())
    plain = {k: v for k, v in settings.items() if k not in runtime}
    verdict = guards.validate(plain)
    errors = tuple(e for e in verdict.errors if not any(e.startswith(f"{name}:") for name in runtime))

    return DesignInputs(
        inventory=inventory.name,
        environment=environment,
        project=str(_need(effective, "gearlift_project", inventory) or "(not set)"),
        region=region_text,
        az_count=az_count,
        vpc_cidr=_text(effective, "gearlift_vpc_cidr"),
        subnets=_subnets(guards, effective, az_count),
        nat_mode=nat_mode,
        nat_count=az_count if nat_mode == "per_az" else 1,
        interface_endpoints=_strings(effective, "gearlift_interface_endpoints", inventory),
        flow_logs=_bool(effective, "gearlift_flow_logs", inventory),
        alb_ingress_cidrs=_strings(effective, "gearlift_alb_ingress_cidrs", inventory),
        app_port=_int(effective, "gearlift_app_port", inventory, low=1),
        ssh_ingress_cidrs=_strings(effective, "gearlift_ssh_ingress_cidrs", inventory),
        db_extra_ingress_cidrs=_strings(effective, "gearlift_db_extra_ingress_cidrs", inventory),
        certificate=_text(effective, "gearlift_certificate_arn"),
        alb_ssl_policy=_text(effective, "gearlift_alb_ssl_policy"),
        waf_rate_limit=_int(effective, "gearlift_waf_rate_limit", inventory),
        waf_associate=_bool(effective, "gearlift_waf_associate", inventory),
        instance_type=instance_type,
        architecture=_text(effective, "gearlift_architecture"),
        asg_min=_int(effective, "gearlift_asg_min_size", inventory, low=0),
        asg_desired=_int(effective, "gearlift_asg_desired_capacity", inventory, low=0),
        asg_max=_int(effective, "gearlift_asg_max_size", inventory, low=0),
        schedule=_schedule(effective, inventory),
        warm_pool=_bool(effective, "gearlift_warm_pool", inventory),
        root_volume_gb=_int(effective, "gearlift_root_volume_gb", inventory, low=1),
        health_check_interval=_int(effective, "gearlift_health_check_interval", inventory, low=1),
        healthy_threshold=_int(effective, "gearlift_healthy_threshold", inventory, low=1),
        unhealthy_threshold=_int(effective, "gearlift_unhealthy_threshold", inventory, low=1),
        grace_period=_int(effective, "gearlift_health_check_grace_period", inventory, low=0),
        requests_per_target=_float(effective, "gearlift_requests_per_target", inventory),
        cpu_target=_float(effective, "gearlift_cpu_target", inventory),
        db_instance_class=db_class,
        db_engine_version=_text(effective, "gearlift_db_engine_version"),
        db_storage_gb=_int(effective, "gearlift_db_allocated_storage", inventory, low=1),
        db_multi_az=_bool(effective, "gearlift_db_multi_az", inventory),
        db_backup_retention_days=_int(effective, "gearlift_db_backup_retention_days", inventory, low=0),
        db_deletion_protection=_bool(effective, "gearlift_db_deletion_protection", inventory),
        log_retention_days=_int(effective, "gearlift_log_retention_days", inventory, low=1),
        backup_copy_region=_text(effective, "gearlift_backup_copy_region"),
        backup_monthly_retention_days=_int(effective, "gearlift_backup_monthly_retention_days", inventory, low=1),
        alarm_email=_text(effective, "gearlift_alarm_email"),
        secret_rotation_days=_int(effective, "gearlift_app_secret_rotation_days", inventory, low=1),
        security_hub_standards=_strings(effective, "gearlift_security_hub_standards", inventory),
        effective=effective,
        guard_errors=errors,
        guard_warnings=tuple(verdict.warnings),
        session_store=_text(effective, "gearlift_session_store") or "sticky",
        tg_stickiness=_bool(effective, "gearlift_tg_stickiness", inventory),
        session_store_replicas=_int(effective, "gearlift_session_store_replicas", inventory, low=0),
    )
