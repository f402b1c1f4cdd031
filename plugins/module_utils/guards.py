# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.target_guard`` and the ``gearlift.platform.guards`` role.

``validate(config)`` takes the inventory's top-level ``gearlift_*`` variables (a plain dict,
as the guards role collects them) and returns a :class:`GuardResult`:

* ``errors``   -- every insecure or inconsistent setting, one message each. A message names the
  setting and, where one exists, the ``gearlift_allow_*`` variable that overrides the guard.
* ``warnings`` -- accepted but noteworthy settings (overrides in effect, unknown names, cost or
  resilience trade-offs).
* ``derived``  -- values the provisioning playbooks use: subnet CIDRs per tier, AZ count, NAT
  gateway count, whether the target is production.

Nothing here talks to AWS or touches the file system; the function only reads its argument.

Subnet derivation (used for a tier whose ``gearlift_<tier>_subnet_cidrs`` is empty), for a VPC of
prefix length ``p`` (16..20), AZ index ``i`` (0..az_count-1):

* the VPC is cut into four quarters (prefix ``p+2``);
* quarter 0 is cut into small blocks of prefix ``max(p+5, 24)`` (a /24, or a /25 in a /20 VPC):
  public subnet ``i`` is small block ``i``, DB subnet ``i`` is small block ``4+i``
  (blocks 3 and 7 onwards stay free);
* app subnet ``i`` is the first block of prefix ``max(p+2, 20)`` of quarter ``i+1``
  (a /20 in a /16-/18 VPC, /21 in a /19, /22 in a /20), so the fleet tier gets the room.

Example, 10.20.0.0/16 over 3 AZs: public 10.20.0.0/24, 10.20.1.0/24, 10.20.2.0/24;
db 10.20.4.0/24, 10.20.5.0/24, 10.20.6.0/24; app 10.20.64.0/20, 10.20.128.0/20, 10.20.192.0/20.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# --------------------------------------------------------------------------
# reference data
# --------------------------------------------------------------------------

ENVIRONMENTS = ("production", "staging", "rehearsal", "development")
TIERS = ("public", "app", "db")
NAT_MODES = ("auto", "single", "per_az")
ARCHITECTURES = ("x86_64", "arm64")

#: Interface endpoints the network playbook knows how to create (service name suffixes).
INTERFACE_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages", "secretsmanager", "logs", "monitoring", "kms", "sts")
#: Session Manager without a NAT needs all three.
SSM_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages")

#: Short names ``gearlift.platform.account_baseline`` accepts.
SECURITY_HUB_STANDARDS = (
    "pci-dss-v4.0.1",
    "aws-foundational-security-best-practices-v1.0.0",
    "cis-aws-foundations-benchmark-v3.0.0",
)

#: Retention values CloudWatch Logs accepts (botocore logs model, shape ``Days``).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: PCI DSS 10.5.1: audit log history kept at least 12 months.
MIN_LOG_RETENTION_DAYS = 365

RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)

# ELB security policies for Application Load Balancers.
# Source: AWS Elastic Load Balancing user guide, "Security policies for your Application Load
# Balancer" (docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html),
# protocol table, read 2026; cross-checked with moto 5.2.1 ``moto/elbv2/ssl_policies.py`` and the
# classic ELB predefined policies. A name that is in neither list is judged by AWS's naming scheme
# (``TLS13-1-2``, ``TLS-1-2``, ``FS-1-2`` = minimum TLS 1.2); anything else is refused as unknown.

#: Policies that still negotiate TLS 1.0 and/or 1.1 (refused unless gearlift_allow_legacy_tls).
TLS_LEGACY_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-2015-05",
        "ELBSecurityPolicy-TLS-1-0-2015-04",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-FS-1-1-2019-08",
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
        "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
        # classic load balancer predefined policies (TLS 1.0 and older)
        "ELBSecurityPolicy-2011-08",
        "ELBSecurityPolicy-2014-01",
        "ELBSecurityPolicy-2014-10",
        "ELBSecurityPolicy-2015-02",
        "ELBSecurityPolicy-2015-03",
    }
)

#: Policies whose minimum protocol is TLS 1.2 or 1.3 (PCI DSS 4.2.1 "strong cryptography").
TLS_MODERN_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS-1-2-2017-01",
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-FS-1-2-2019-08",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    }
)
_TLS_LEGACY_NAME = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[01]|TLS-1-[01]|FS-1-1)-")
_TLS_MODERN_NAME = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)-")

#: The whole WAF rate-based rule range this collection accepts (the edge playbook's filter needs >= 100).
WAF_RATE_LIMIT_RANGE = (100, 2_000_000_000)

#: The app tier's target group is named "<project>-<environment>-app"; AWS allows 32 characters.
TARGET_GROUP_NAME_MAX = 32

_PROJECT = re.compile(r"^[a-z][a-z0-9-]*$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_ACM_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$")
_LAMBDA_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:lambda:(?P<region>[a-z0-9-]+):\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
)
_INSTANCE_TYPE = re.compile(r"^(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9]+)$")
_FAMILY = re.compile(r"^(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z]*)(-[a-z0-9]+)?$")
_DB_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_DB_ENGINE_VERSION = re.compile(r"^8\.0(\.\d+)?$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_DB_MASTER_USER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
_DB_APP_USER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_AMI = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

_TRUE = frozenset({"true", "yes", "on", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "off", "n", "f", "0"})

# --------------------------------------------------------------------------
# the settings: defaults (identical to roles/guards/defaults/main.yml and
# meta/argument_specs.yml -- a unit test keeps the three in step)
# --------------------------------------------------------------------------

#: Settings without a default that must be set.
REQUIRED = ("gearlift_environment", "gearlift_project", "gearlift_region", "gearlift_vpc_cidr")

#: Every gearlift_allow_* override (all default to false).
OVERRIDES = (
    "gearlift_allow_http_only",
    "gearlift_allow_legacy_tls",
    "gearlift_allow_ssh",
    "gearlift_allow_ssh_from_world",
    "gearlift_allow_db_outside_vpc",
    "gearlift_allow_world_db",
    "gearlift_allow_public_ip",
    "gearlift_allow_imdsv1",
    "gearlift_allow_unencrypted_storage",
    "gearlift_allow_single_instance",
    "gearlift_allow_single_az_db",
    "gearlift_allow_public_db",
    "gearlift_allow_short_backups",
    "gearlift_allow_db_deletion",
    "gearlift_allow_short_log_retention",
    "gearlift_allow_disabled_controls",
)

#: Default of gearlift_golden_ami_parameter; the role's defaults template it the same way.
GOLDEN_AMI_PARAMETER = "/gearlift/{project}/{environment}/golden-ami-id"

DEFAULTS: dict[str, Any] = {
    # network
    "gearlift_az_count": 2,
    "gearlift_public_subnet_cidrs": [],
    "gearlift_app_subnet_cidrs": [],
    "gearlift_db_subnet_cidrs": [],
    "gearlift_nat_mode": "auto",
    "gearlift_interface_endpoints": [],
    "gearlift_flow_logs": True,
    "gearlift_onprem_cidrs": [],
    "gearlift_onprem_vpn_peer_ip": "",
    "gearlift_onprem_bgp_asn": 65000,
    # edge
    "gearlift_alb_ingress_cidrs": ["0.0.0.0/0"],
    "gearlift_app_port": 80,
    "gearlift_health_path": "/health",
    "gearlift_health_check_interval": 10,
    "gearlift_healthy_threshold": 3,
    "gearlift_unhealthy_threshold": 2,
    "gearlift_deregistration_delay": 30,
    "gearlift_certificate_arn": "",
    "gearlift_alb_ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "gearlift_alb_deletion_protection": True,
    "gearlift_waf_rate_limit": 2000,
    "gearlift_waf_associate": True,
    # administrative access
    "gearlift_ssh_ingress_cidrs": [],
    "gearlift_db_extra_ingress_cidrs": [],
    # fleet
    "gearlift_instance_type": "t3.medium",
    "gearlift_architecture": "x86_64",
    "gearlift_ami_id": "",
    "gearlift_golden_ami_parameter": "/gearlift/{{ gearlift_project }}/{{ gearlift_environment }}/golden-ami-id",
    "gearlift_asg_min_size": 2,
    "gearlift_asg_max_size": 6,
    "gearlift_asg_desired_capacity": 2,
    "gearlift_asg_peak_schedule": [],
    "gearlift_warm_pool": False,
    "gearlift_associate_public_ip": False,
    "gearlift_imds_http_tokens": "required",
    "gearlift_ebs_encrypted": True,
    "gearlift_root_volume_gb": 20,
    "gearlift_health_check_grace_period": 300,
    "gearlift_instance_warmup": 300,
    "gearlift_refresh_min_healthy_percentage": 90,
    "gearlift_refresh_timeout": 3600,
    "gearlift_requests_per_target": 1000,
    "gearlift_cpu_target": 60,
    # data
    "gearlift_db_instance_class": "db.t3.medium",
    "gearlift_db_engine_version": "8.0",
    "gearlift_db_allocated_storage": 20,
    "gearlift_db_multi_az": True,
    "gearlift_db_storage_encrypted": True,
    "gearlift_db_publicly_accessible": False,
    "gearlift_db_backup_retention_days": 35,
    "gearlift_db_deletion_protection": True,
    "gearlift_db_name": "shop",
    "gearlift_db_master_username": "dbadmin",
    "gearlift_db_app_username": "shop_app",
    "gearlift_app_secret_rotation_days": 30,
    "gearlift_app_secret_rotation_lambda_arn": "",
    "gearlift_wait_for_rds": True,
    # observability and backup
    "gearlift_log_retention_days": 365,
    "gearlift_alarm_email": "",
    "gearlift_alarm_5xx_per_minute": 10,
    "gearlift_alarm_latency_seconds": 2.0,
    "gearlift_alarm_db_connections": 150,
    "gearlift_backup_copy_region": "",
    "gearlift_backup_monthly_retention_days": 365,
    "gearlift_backup_selection": True,
    # account baseline
    "gearlift_guardduty": True,
    "gearlift_security_hub": True,
    "gearlift_security_hub_standards": ["pci-dss-v4.0.1", "aws-foundational-security-best-practices-v1.0.0"],
    "gearlift_inspector": True,
    "gearlift_config_recorder": True,
    "gearlift_config_conformance_pack": {},
    # overrides
    **dict.fromkeys(OVERRIDES, False),
}

#: Documented settings that have no default (undefined means "derive it").
OPTIONAL = ("gearlift_trail_bucket", "gearlift_onprem_address")

#: gearlift_* names the playbooks define themselves (playbooks/vars/naming.yml, the role's own
#: output); not inventory settings, so neither checked nor reported as unknown.
INTERNAL = ("gearlift_derived", "gearlift_name", "gearlift_tags", "gearlift_log_group_prefix", "gearlift_key_arns")

#: Not a VPN device's outside address (RFC 1918, loopback, link-local, "this network").
_NOT_PUBLIC = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8")

KNOWN = frozenset(DEFAULTS) | frozenset(REQUIRED) | frozenset(OPTIONAL)

_SCHEDULE_KEYS = ("name", "recurrence", "min_size", "max_size", "desired_capacity", "time_zone")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_CRON_FIELDS: tuple[tuple[str, int, int, Sequence[str], int], ...] = (
    ("minute", 0, 59, (), 0),
    ("hour", 0, 23, (), 0),
    ("day of month", 1, 31, (), 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _DAYS, 0),
)


@dataclass
class GuardResult:
    """What :func:`validate` found."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------
# small pure helpers (public: the tests and the docs use them)
# --------------------------------------------------------------------------


def derive_subnets(vpc: ipaddress.IPv4Network, az_count: int) -> dict[str, list[str]]:
    """Subnet CIDRs per tier for ``az_count`` AZs (see the module docstring for the layout)."""
    if not 16 <= vpc.prefixlen <= 20:
        raise ValueError(f"VPC prefix /{vpc.prefixlen} is outside /16../20")
    if not 1 <= az_count <= 3:
        raise ValueError(f"az_count {az_count} is outside 1..3")
    quarters = list(vpc.subnets(prefixlen_diff=2))
    small = list(quarters[0].subnets(new_prefix=max(vpc.prefixlen + 5, 24)))
    app_prefix = max(vpc.prefixlen + 2, 20)
    return {
        "public": [str(small[i]) for i in range(az_count)],
        "app": [str(next(quarters[i + 1].subnets(new_prefix=app_prefix))) for i in range(az_count)],
        "db": [str(small[4 + i]) for i in range(az_count)],
    }


def instance_architecture(instance_type: str) -> str | None:
    """``arm64`` for Graviton (and Apple silicon mac) types, ``x86_64`` for the others, None if unparsable.

    AWS marks Graviton families with a ``g`` in the attribute letters after the generation
    (m7g, c7gn, t4g, r8gd, im4gn, is4gen, g5g, hpc7g ...); ``a1`` is the first Graviton.
    """
    match = _INSTANCE_TYPE.match(instance_type)
    if not match:
        return None
    family = match.group("family")
    if family == "a1" or family.startswith("mac2"):
        return "arm64"
    parts = _FAMILY.match(family)
    if not parts:
        return None
    return "arm64" if "g" in parts.group("attributes") else "x86_64"


def tls_policy_is_legacy(policy: str) -> bool | None:
    """True if ``policy`` allows TLS below 1.2, False if its minimum is TLS 1.2+, None if unknown."""
    if policy in TLS_LEGACY_POLICIES:
        return True
    if policy in TLS_MODERN_POLICIES:
        return False
    if _TLS_LEGACY_NAME.match(policy):
        return True
    if _TLS_MODERN_NAME.match(policy):
        return False
    return None


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a 5-field Unix cron expression (as Auto Scaling wants), or None."""
    fields = expression.split()
    if len(fields) != 5:
        return f"has {len(fields)} fields; Auto Scaling wants 5 (minute hour day-of-month month day-of-week)"
    for text, (label, low, high, names, first) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            base, slash, step = part.partition("/")
            if slash and not (step.isdigit() and int(step) > 0):
                return f"{label} field '{text}' has a bad step '{step}'"
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(bounds):
                return f"{label} field '{text}' is not a value, range or list"
            for bound in bounds:
                value = _cron_value(bound, names, first)
                if value is None or not low <= value <= high:
                    return f"{label} field '{text}': '{bound}' is outside {low}-{high}"
    return None


def _cron_value(text: str, names: Sequence[str], first: int) -> int | None:
    if text.isdigit():
        return int(text)
    if text.upper() in names:
        return names.index(text.upper()) + first
    return None


def is_world(network: IPNetwork) -> bool:
    """The internet, or a block so large it is the internet in all but name (bigger than a /8, or ::/16)."""
    return network.prefixlen < (8 if network.version == 4 else 16)


# --------------------------------------------------------------------------
# the checker
# --------------------------------------------------------------------------


def _override_text(overrides: Sequence[str]) -> str:
    if not overrides:
        return " No override exists: change the value."
    return " Override: " + " and ".join(f"{name}: true" for name in overrides) + "."


class _Checker:
    """Collects errors and warnings while reading one config; values are typed once, on first use."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.derived: dict[str, Any] = {}
        self._typed: dict[str, Any] = {}
        self._bad: set[str] = set()

    # --- reporting ---------------------------------------------------------

    def refuse(self, setting: str, problem: str, *overrides: str) -> None:
        self.errors.append(f"{setting}: {problem}{_override_text(overrides)}")

    def warn(self, setting: str, text: str) -> None:
        self.warnings.append(f"{setting}: {text}")

    def overridden(self, flag: str, what: str) -> None:
        self.warnings.append(f"{flag}: override in effect, {what}")

    def guard(self, setting: str, problem: str, *overrides: str) -> None:
        """Refuse unless every override flag is true; record the override when it is."""
        if overrides and all(self.flag(name) for name in overrides):
            self.overridden(overrides[-1], f"accepted {setting} ({problem.rstrip('.')})")
        else:
            self.refuse(setting, problem, *overrides)

    # --- typed access --------------------------------------------------------

    def _raw(self, name: str) -> Any:
        if name in self.config and self.config[name] is not None:
            return self.config[name]
        if name == "gearlift_golden_ami_parameter":
            project, environment = self.text("gearlift_project"), self.text("gearlift_environment")
            return GOLDEN_AMI_PARAMETER.format(project=project, environment=environment)
        return DEFAULTS.get(name)

    def _typed_value(self, name: str, convert: Any, kind: str) -> Any:
        if name in self._typed:
            return self._typed[name]
        if name in self._bad:
            return None
        raw = self._raw(name)
        if raw is None:
            self._bad.add(name)
            if name in REQUIRED:
                self.refuse(name, "is required and not set.")
            return None
        try:
            value = convert(raw)
        except (TypeError, ValueError):
            self._bad.add(name)
            self.refuse(name, f"must be {kind}, got {raw!r} ({type(raw).__name__}).")
            return None
        self._typed[name] = value
        return value

    def text(self, name: str) -> str | None:
        return self._typed_value(name, _to_str, "a string")

    def integer(self, name: str, low: int | None = None, high: int | None = None) -> int | None:
        value = self._typed_value(name, _to_int, "an integer")
        if value is None:
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self._bad.add(name)
            del self._typed[name]
            self.refuse(name, f"{value} is outside {_range_text(low, high)}.")
            return None
        return value

    def number(self, name: str, low: float = 0.0) -> float | None:
        value = self._typed_value(name, _to_float, "a number")
        if value is not None and value <= low:
            self._bad.add(name)
            del self._typed[name]
            self.refuse(name, f"{value} must be greater than {low:g}.")
            return None
        return value

    def flag(self, name: str) -> bool:
        value = self._typed_value(name, _to_bool, "a boolean (true/false)")
        if value is None:  # a bad value: fall back to the secure default
            return bool(DEFAULTS.get(name, False))
        return value

    def strings(self, name: str) -> list[str] | None:
        return self._typed_value(name, _to_str_list, "a list of strings")

    def networks(self, name: str) -> list[IPNetwork] | None:
        items = self.strings(name)
        if items is None:
            return None
        result: list[IPNetwork] = []
        for item in items:
            try:
                result.append(ipaddress.ip_network(item.strip(), strict=True))
            except ValueError as exc:
                self.refuse(name, f"'{item}' is not a CIDR block ({exc}).")
                return None
        return result

    # --- the checks ------------------------------------------------------------

    def run(self) -> None:
        environment = self.check_identity()
        production = environment == "production"
        self.derived["environment"] = environment
        self.derived["production"] = production
        vpc, subnets = self.check_network(production)
        self.check_edge(production)
        self.check_admin_access(vpc, subnets)
        self.check_fleet(production)
        self.check_schedule(production)
        self.check_data(production)
        self.check_observability()
        self.check_baseline(production)
        self.check_names()

    def check_identity(self) -> str | None:
        environment = self.text("gearlift_environment")
        if environment is not None and environment not in ENVIRONMENTS:
            self.refuse("gearlift_environment", f"'{environment}' is not one of {', '.join(ENVIRONMENTS)}.")
            environment = None
        project = self.text("gearlift_project")
        if project is not None:
            if not _PROJECT.match(project) or project.endswith("-") or "--" in project or len(project) > 20:
                self.refuse(
                    "gearlift_project",
                    f"'{project}' must be 1-20 lowercase letters, digits and single hyphens, starting with a letter "
                    "(it becomes part of AWS resource names).",
                )
            elif environment:
                target_group = f"{project}-{environment}-app"
                if len(target_group) > TARGET_GROUP_NAME_MAX:
                    self.refuse(
                        "gearlift_project",
                        f"'{project}' with gearlift_environment '{environment}' makes the target group name "
                        f"'{target_group}' {len(target_group)} characters long; AWS allows {TARGET_GROUP_NAME_MAX}.",
                    )
        region = self.text("gearlift_region")
        if region is not None and not _REGION.match(region):
            self.refuse("gearlift_region", f"'{region}' is not an AWS region name (like eu-west-1).")
        return environment

    def check_network(self, production: bool) -> tuple[ipaddress.IPv4Network | None, list[IPNetwork]]:
        az_count = self.integer("gearlift_az_count")
        if az_count is not None and az_count not in (2, 3):
            self.refuse(
                "gearlift_az_count",
                f"{az_count}: use 2 or 3 Availability Zones (one AZ has no redundancy; the plan has room for 3).",
            )
            az_count = None
        self.derived["az_count"] = az_count

        vpc = self._vpc()
        chosen: list[tuple[str, IPNetwork, bool]] = []  # (setting, subnet, derived?)
        for tier in TIERS:
            name = f"gearlift_{tier}_subnet_cidrs"
            given = self.networks(name)
            if given is None:
                continue
            if not given:
                if vpc is not None and az_count is not None:
                    cidrs = derive_subnets(vpc, az_count)[tier]
                    self.derived[f"{tier}_subnet_cidrs"] = cidrs
                    chosen.extend((name, ipaddress.ip_network(c), True) for c in cidrs)
                continue
            if self._check_given_subnets(name, tier, given, vpc, az_count):
                self.derived[f"{tier}_subnet_cidrs"] = [str(n) for n in given]
                chosen.extend((name, n, False) for n in given)
        self._check_overlaps(chosen)

        nat_mode = self.text("gearlift_nat_mode")
        if nat_mode is not None and nat_mode not in NAT_MODES:
            self.refuse("gearlift_nat_mode", f"'{nat_mode}' is not one of {', '.join(NAT_MODES)}.")
            nat_mode = None
        if nat_mode == "auto":
            nat_mode = "per_az" if production else "single"
        self.derived["nat_mode"] = nat_mode
        if nat_mode is not None and az_count is not None:
            self.derived["nat_gateway_count"] = az_count if nat_mode == "per_az" else 1
            if production and nat_mode == "single":
                self.warn(
                    "gearlift_nat_mode",
                    "single NAT gateway in production: the app tier loses outbound access (patches, AWS APIs "
                    "without endpoints) when its AZ fails; per_az costs ~$33/month per extra gateway plus data.",
                )

        endpoints = self.strings("gearlift_interface_endpoints")
        if endpoints is not None:
            unknown = [e for e in endpoints if e not in INTERFACE_ENDPOINTS]
            if unknown:
                self.refuse(
                    "gearlift_interface_endpoints",
                    f"unknown endpoint name(s) {', '.join(unknown)}; known: {', '.join(INTERFACE_ENDPOINTS)}.",
                )
            duplicates = sorted({e for e in endpoints if endpoints.count(e) > 1})
            if duplicates:
                self.refuse("gearlift_interface_endpoints", f"lists {', '.join(duplicates)} more than once.")
            partial = [e for e in SSM_ENDPOINTS if e not in endpoints]
            if any(e in endpoints for e in SSM_ENDPOINTS) and partial:
                self.warn(
                    "gearlift_interface_endpoints",
                    "Session Manager without a NAT needs ssm, ssmmessages and ec2messages; "
                    f"missing {', '.join(partial)}.",
                )

        self.check_onprem(vpc)

        if not self.flag("gearlift_flow_logs"):
            self._control_off(
                production,
                "gearlift_flow_logs",
                "false turns off VPC flow logs (PCI DSS 10.2.1, Security Hub EC2.6).",
            )
        return vpc, [net for _, net, _ in chosen]

    def check_onprem(self, vpc: ipaddress.IPv4Network | None) -> None:
        """The site-to-site VPN: the site's networks, its VPN device, the ASN."""
        nets = self.networks("gearlift_onprem_cidrs") or []
        for net in nets:
            if net.version != 4:
                self.refuse("gearlift_onprem_cidrs", f"{net} is not IPv4 (the VPN's static routes are IPv4 here).")
            elif net.prefixlen == 0:
                self.refuse(
                    "gearlift_onprem_cidrs", "0.0.0.0/0 would send all traffic (the internet too) to the site."
                )
            elif vpc is not None and net.overlaps(vpc):
                self.refuse("gearlift_onprem_cidrs", f"{net} overlaps gearlift_vpc_cidr {vpc}: pick distinct ranges.")
        peer = self.text("gearlift_onprem_vpn_peer_ip") or ""
        if nets and not peer:
            self.refuse(
                "gearlift_onprem_vpn_peer_ip", "is required with gearlift_onprem_cidrs: the site VPN device."
            )
        elif peer:
            try:
                address = ipaddress.IPv4Address(peer)
            except ValueError:
                self.refuse("gearlift_onprem_vpn_peer_ip", f"'{peer}' is not an IPv4 address.")
            else:
                if any(address in ipaddress.IPv4Network(n) for n in _NOT_PUBLIC):
                    self.refuse(
                        "gearlift_onprem_vpn_peer_ip",
                        f"{address} is not a public address: the customer gateway is the VPN device's outside address.",
                    )
        self.integer("gearlift_onprem_bgp_asn", 1, 4294967294)

    def _vpc(self) -> ipaddress.IPv4Network | None:
        text = self.text("gearlift_vpc_cidr")
        if text is None:
            return None
        try:
            vpc = ipaddress.IPv4Network(text.strip(), strict=True)
        except ValueError as exc:
            self.refuse("gearlift_vpc_cidr", f"'{text}' is not an IPv4 network CIDR ({exc}).")
            return None
        if not any(vpc.subnet_of(block) for block in RFC1918):
            self.refuse(
                "gearlift_vpc_cidr", f"{vpc} is not inside an RFC 1918 private range (10/8, 172.16/12, 192.168/16)."
            )
            return None
        if not 16 <= vpc.prefixlen <= 20:
            self.refuse(
                "gearlift_vpc_cidr",
                f"{vpc} is a /{vpc.prefixlen}; use a /16 to /20 (room for public, app and DB subnets in 3 AZs).",
            )
            return None
        return vpc

    def _check_given_subnets(
        self,
        name: str,
        tier: str,
        given: list[IPNetwork],
        vpc: ipaddress.IPv4Network | None,
        az_count: int | None,
    ) -> bool:
        ok = True
        if az_count is not None and len(given) != az_count:
            self.refuse(
                name, f"lists {len(given)} subnets; gearlift_az_count is {az_count} (one per AZ, or [] to derive)."
            )
            ok = False
        for net in given:
            if net.version != 4:
                self.refuse(name, f"{net} is not IPv4 (the VPC is IPv4).")
                ok = False
            elif vpc is not None and not net.subnet_of(vpc):
                self.refuse(name, f"{net} is not inside gearlift_vpc_cidr {vpc}.")
                ok = False
            elif not 16 <= net.prefixlen <= 28:
                self.refuse(name, f"{net}: AWS subnets are /16 to /28.")
                ok = False
            elif tier == "public" and net.prefixlen > 27:
                self.refuse(name, f"{net}: a load balancer subnet needs at least a /27.")
                ok = False
        return ok

    def _check_overlaps(self, subnets: list[tuple[str, IPNetwork, bool]]) -> None:
        """One message per setting to blame: a given list rather than a derived one, else the later tier."""
        clashes: dict[str, list[str]] = {}
        for i, (first_name, first, first_derived) in enumerate(subnets):
            for second_name, second, second_derived in subnets[i + 1 :]:
                if not first.overlaps(second):
                    continue
                if second_derived and not first_derived:
                    blamed, own, other, other_name, derived = first_name, first, second, second_name, second_derived
                else:
                    blamed, own, other, other_name, derived = second_name, second, first, first_name, first_derived
                origin = "derived" if derived else "given"
                where = "same list" if other_name == blamed else f"{other_name}, {origin}"
                clashes.setdefault(blamed, []).append(f"{own} overlaps {other} ({where})")
        for setting, items in clashes.items():
            self.refuse(setting, f"{'; '.join(items)}; every subnet needs its own range.")

    def check_edge(self, production: bool) -> None:
        alb_cidrs = self.networks("gearlift_alb_ingress_cidrs")
        if alb_cidrs is not None and not alb_cidrs:
            self.refuse(
                "gearlift_alb_ingress_cidrs", "is empty: nobody could reach the shop (use 0.0.0.0/0 for the public)."
            )
        self.integer("gearlift_app_port", 1, 65535)
        path = self.text("gearlift_health_path")
        if path is not None and (not path.startswith("/") or len(path) > 1024 or " " in path):
            self.refuse("gearlift_health_path", f"'{path}' must be a URL path starting with / (no spaces).")
        interval = self.integer("gearlift_health_check_interval", 5, 300)
        if interval is not None and interval <= 5:
            self.warn(
                "gearlift_health_check_interval",
                f"{interval} s: AWS wants the interval above the health-check timeout (5 s in playbooks/edge.yml).",
            )
        self.integer("gearlift_healthy_threshold", 2, 10)
        self.integer("gearlift_unhealthy_threshold", 2, 10)
        self.integer("gearlift_deregistration_delay", 0, 3600)
        self.integer("gearlift_waf_rate_limit", *WAF_RATE_LIMIT_RANGE)

        arn = self.text("gearlift_certificate_arn")
        region = self.text("gearlift_region")
        if arn is not None:
            if not arn:
                self.guard(
                    "gearlift_certificate_arn",
                    "is empty: without a certificate the ALB serves plain HTTP and card-holder pages travel "
                    "unencrypted (PCI DSS 4.2.1, Security Hub ELB.1).",
                    "gearlift_allow_http_only",
                )
            else:
                match = _ACM_ARN.match(arn)
                if not match:
                    self.refuse("gearlift_certificate_arn", f"'{arn}' is not an ACM certificate ARN.")
                elif region and match.group("region") != region:
                    self.refuse(
                        "gearlift_certificate_arn",
                        f"the certificate is in {match.group('region')}; the ALB in gearlift_region {region} needs one "
                        "from its own region.",
                    )

        policy = self.text("gearlift_alb_ssl_policy")
        if policy is not None:
            legacy = tls_policy_is_legacy(policy)
            if legacy is None:
                self.guard(
                    "gearlift_alb_ssl_policy",
                    f"'{policy}' is not a known ELB security policy, so TLS 1.2+ cannot be confirmed (PCI DSS 4.2.1).",
                    "gearlift_allow_legacy_tls",
                )
            elif legacy:
                self.guard(
                    "gearlift_alb_ssl_policy",
                    f"'{policy}' still accepts TLS 1.0/1.1 (PCI DSS 4.2.1, Security Hub ELB.17 wants TLS 1.2+); "
                    "use ELBSecurityPolicy-TLS13-1-2-2021-06.",
                    "gearlift_allow_legacy_tls",
                )

        if not self.flag("gearlift_alb_deletion_protection") and production:
            self.warn(
                "gearlift_alb_deletion_protection",
                "false in production: one API call can delete the shop's front door.",
            )
        if not self.flag("gearlift_waf_associate"):
            self._control_off(
                production,
                "gearlift_waf_associate",
                "false leaves the ALB without the WAF web ACL (PCI DSS 6.4.2, Security Hub ELB.16).",
            )

    def check_admin_access(self, vpc: ipaddress.IPv4Network | None, subnets: list[IPNetwork]) -> None:
        ssh = self.networks("gearlift_ssh_ingress_cidrs")
        if ssh:
            listed = ", ".join(str(n) for n in ssh)
            self.guard(
                "gearlift_ssh_ingress_cidrs",
                f"opens port 22 on the app hosts to {listed}; hosts are reached through SSM Session Manager "
                "(PCI DSS 1.3.1 / 2.2.7, Security Hub EC2.13).",
                "gearlift_allow_ssh",
            )
            world = [str(n) for n in ssh if is_world(n)]
            if world:
                self.guard(
                    "gearlift_ssh_ingress_cidrs",
                    f"{', '.join(world)} opens SSH to the whole internet (Security Hub EC2.13 / EC2.53 / EC2.54).",
                    "gearlift_allow_ssh",
                    "gearlift_allow_ssh_from_world",
                )

        extra = self.networks("gearlift_db_extra_ingress_cidrs")
        if not extra:
            return
        public = [n for n in subnets if str(n) in (self.derived.get("public_subnet_cidrs") or [])]
        world, outside = [], []
        for net in extra:
            if is_world(net):
                world.append(str(net))
            elif vpc is None or net.version != 4 or not net.subnet_of(vpc):
                outside.append(str(net))
            elif any(net.overlaps(p) for p in public):
                self.warn("gearlift_db_extra_ingress_cidrs", f"{net} includes public subnets (ALB, NAT) of the VPC.")
        if world:
            self.guard(
                "gearlift_db_extra_ingress_cidrs",
                f"{', '.join(world)} opens MySQL 3306 to the whole internet (PCI DSS 1.3.1 / 1.4.1).",
                "gearlift_allow_world_db",
            )
        if outside:
            self.guard(
                "gearlift_db_extra_ingress_cidrs",
                f"{', '.join(outside)} is outside the VPC ({vpc}); the database takes connections from the app "
                "tier only (PCI DSS 1.3.1).",
                "gearlift_allow_db_outside_vpc",
            )

    def check_fleet(self, production: bool) -> None:
        instance_type = self.text("gearlift_instance_type")
        architecture = self.text("gearlift_architecture")
        if architecture is not None and architecture not in ARCHITECTURES:
            self.refuse("gearlift_architecture", f"'{architecture}' is not one of {', '.join(ARCHITECTURES)}.")
            architecture = None
        if instance_type is not None:
            inferred = instance_architecture(instance_type)
            if not _INSTANCE_TYPE.match(instance_type):
                self.refuse(
                    "gearlift_instance_type", f"'{instance_type}' is not an EC2 instance type (like t3.medium)."
                )
            elif inferred and architecture and inferred != architecture:
                self.refuse(
                    "gearlift_architecture",
                    f"is {architecture} but gearlift_instance_type {instance_type} is an {inferred} type; the golden "
                    f"image would not boot. Set gearlift_architecture: {inferred} or pick a matching type.",
                )
        self.derived["architecture"] = architecture

        ami = self.text("gearlift_ami_id")
        if ami and not _AMI.match(ami):
            self.refuse(
                "gearlift_ami_id",
                f"'{ami}' is not an AMI id (ami-<8 or 17 hex digits>); leave it empty to use the golden image.",
            )
        if not ami:
            parameter = self.text("gearlift_golden_ami_parameter")
            if parameter is not None and not parameter.strip():
                self.refuse(
                    "gearlift_golden_ami_parameter", "is empty and gearlift_ami_id is empty: no image to launch."
                )

        low = self.integer("gearlift_asg_min_size", 0)
        high = self.integer("gearlift_asg_max_size", 1)
        desired = self.integer("gearlift_asg_desired_capacity", 0)
        if low is not None and high is not None and desired is not None and not low <= desired <= high:
            self.refuse(
                "gearlift_asg_desired_capacity",
                f"min {low} <= desired {desired} <= max {high} does not hold "
                "(gearlift_asg_min_size / gearlift_asg_desired_capacity / gearlift_asg_max_size).",
            )
        elif low is not None and high is not None and low > high:
            self.refuse("gearlift_asg_min_size", f"{low} is above gearlift_asg_max_size {high}.")
        if low is not None and production and low < 2:
            self.guard(
                "gearlift_asg_min_size",
                f"{low} in production: one instance failure takes the shop down (no redundancy across AZs).",
                "gearlift_allow_single_instance",
            )

        self.flag("gearlift_warm_pool")
        if self.flag("gearlift_associate_public_ip"):
            self.guard(
                "gearlift_associate_public_ip",
                "true gives every app host a public IPv4 address (PCI DSS 1.4.4, Security Hub AutoScaling.5 / EC2.9).",
                "gearlift_allow_public_ip",
            )
        tokens = self.text("gearlift_imds_http_tokens")
        if tokens is not None and tokens not in ("required", "optional"):
            self.refuse("gearlift_imds_http_tokens", f"'{tokens}' is not required or optional.")
        elif tokens == "optional":
            self.guard(
                "gearlift_imds_http_tokens",
                "optional allows IMDSv1, whose credentials an SSRF bug can read "
                "(Security Hub AutoScaling.3 / EC2.8 / EC2.170).",
                "gearlift_allow_imdsv1",
            )
        if not self.flag("gearlift_ebs_encrypted"):
            self.guard(
                "gearlift_ebs_encrypted",
                "false leaves the hosts' EBS volumes unencrypted (PCI DSS 3.5.1, Security Hub EC2.7).",
                "gearlift_allow_unencrypted_storage",
            )
        self.integer("gearlift_root_volume_gb", 8, 200)
        self.integer("gearlift_health_check_grace_period", 0, 7200)
        self.integer("gearlift_instance_warmup", 0, 3600)
        self.integer("gearlift_refresh_min_healthy_percentage", 0, 100)
        self.number("gearlift_refresh_timeout")
        self.number("gearlift_requests_per_target")
        cpu = self.number("gearlift_cpu_target")
        if cpu is not None and cpu > 100:
            self.refuse("gearlift_cpu_target", f"{cpu:g} is a percentage; use 1..100.")

    def check_schedule(self, production: bool) -> None:
        raw = self._raw("gearlift_asg_peak_schedule")
        if not isinstance(raw, list):
            self.refuse("gearlift_asg_peak_schedule", f"must be a list of scheduled actions, got {type(raw).__name__}.")
            return
        group_max = self._typed.get("gearlift_asg_max_size")
        names: list[str] = []
        for index, action in enumerate(raw):
            where = f"gearlift_asg_peak_schedule[{index}]"
            if not isinstance(action, Mapping):
                self.refuse(where, "must be a dict with name, recurrence, min_size, max_size, desired_capacity.")
                continue
            unknown = sorted(set(action) - set(_SCHEDULE_KEYS))
            missing = [k for k in _SCHEDULE_KEYS[:5] if action.get(k) in (None, "")]
            if unknown:
                self.refuse(
                    where, f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(_SCHEDULE_KEYS)}."
                )
            if missing:
                self.refuse(where, f"missing {', '.join(missing)}.")
                continue
            name = str(action["name"])
            names.append(name)
            problem = cron_problem(str(action["recurrence"]))
            if problem:
                self.refuse(where, f"recurrence '{action['recurrence']}' {problem}.")
            try:
                low, high, desired = (_to_int(action[k]) for k in ("min_size", "max_size", "desired_capacity"))
            except (TypeError, ValueError):
                self.refuse(where, "min_size, max_size and desired_capacity must be integers.")
                continue
            if not 0 <= low <= desired <= high:
                self.refuse(where, f"({name}) min {low} <= desired {desired} <= max {high} does not hold.")
            elif group_max is not None and high > group_max:
                self.refuse(
                    where,
                    f"({name}) max_size {high} is above gearlift_asg_max_size {group_max}, the group's ceiling "
                    "(the fleet playbook would reset it on every run).",
                )
            if production and low < 2:
                self.guard(
                    where,
                    f"({name}) min_size {low} in production leaves no redundancy.",
                    "gearlift_allow_single_instance",
                )
            zone = action.get("time_zone")
            if zone not in (None, "") and not _known_time_zone(str(zone)):
                self.refuse(where, f"({name}) time_zone '{zone}' is not an IANA time zone (like Europe/London).")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.refuse("gearlift_asg_peak_schedule", f"action name(s) {', '.join(duplicates)} used more than once.")

    def check_data(self, production: bool) -> None:
        db_class = self.text("gearlift_db_instance_class")
        if db_class is not None and not _DB_CLASS.match(db_class):
            self.refuse("gearlift_db_instance_class", f"'{db_class}' is not an RDS instance class (like db.t3.medium).")
        version = self.text("gearlift_db_engine_version")
        if version is not None and not _DB_ENGINE_VERSION.match(version):
            self.refuse(
                "gearlift_db_engine_version",
                f"'{version}' is not MySQL 8.0.x; the data playbook's parameter group is family mysql8.0 "
                '(quote the value: "8.0").',
            )
        self.integer("gearlift_db_allocated_storage", 20, 65536)

        if not self.flag("gearlift_db_multi_az") and production:
            self.guard(
                "gearlift_db_multi_az",
                "false in production: the single database is lost for the length of an AZ outage "
                "(Security Hub RDS.5, brief: 60-120 s Multi-AZ failover instead).",
                "gearlift_allow_single_az_db",
            )
        if not self.flag("gearlift_db_storage_encrypted"):
            self.guard(
                "gearlift_db_storage_encrypted",
                "false leaves the database and its snapshots unencrypted (PCI DSS 3.5.1, Security Hub RDS.3 / RDS.4).",
                "gearlift_allow_unencrypted_storage",
            )
        if self.flag("gearlift_db_publicly_accessible"):
            self.guard(
                "gearlift_db_publicly_accessible",
                "true gives the database a public endpoint (PCI DSS 1.4.4, Security Hub RDS.2).",
                "gearlift_allow_public_db",
            )
        retention = self.integer("gearlift_db_backup_retention_days", 1, 35)
        if retention is not None and retention < 7 and production:
            self.guard(
                "gearlift_db_backup_retention_days",
                f"{retention} days in production: a problem found after a week cannot be restored "
                "(Security Hub RDS.11 wants 7+).",
                "gearlift_allow_short_backups",
            )
        if not self.flag("gearlift_db_deletion_protection") and production:
            self.guard(
                "gearlift_db_deletion_protection",
                "false in production: one API call deletes the shop's database (Security Hub RDS.8).",
                "gearlift_allow_db_deletion",
            )
        for setting, pattern, what in (
            ("gearlift_db_name", _DB_NAME, "1-64 letters, digits or _, starting with a letter"),
            ("gearlift_db_master_username", _DB_MASTER_USER, "1-16 letters, digits or _, starting with a letter"),
            ("gearlift_db_app_username", _DB_APP_USER, "1-32 letters, digits or _, starting with a letter"),
        ):
            value = self.text(setting)
            if value is not None and not pattern.match(value):
                self.refuse(setting, f"'{value}' must be {what}.")
        master, app = self._typed.get("gearlift_db_master_username"), self._typed.get("gearlift_db_app_username")
        if master and app and master == app:
            self.refuse(
                "gearlift_db_app_username",
                "is the master user; the app gets its own least-privilege login (PCI DSS 7.2.2).",
            )

        days = self.integer("gearlift_app_secret_rotation_days", 1, 365)
        if days is not None and days > 90:
            self.warn(
                "gearlift_app_secret_rotation_days",
                f"{days} days: PCI DSS 8.3.9 / 8.6.3 expect passwords changed at least every 90 days.",
            )
        rotation = self.text("gearlift_app_secret_rotation_lambda_arn")
        region = self._typed.get("gearlift_region")
        if rotation:
            match = _LAMBDA_ARN.match(rotation)
            if not match:
                self.refuse("gearlift_app_secret_rotation_lambda_arn", f"'{rotation}' is not a Lambda function ARN.")
            elif region and match.group("region") != region:
                self.refuse(
                    "gearlift_app_secret_rotation_lambda_arn",
                    f"the function is in {match.group('region')}; Secrets Manager in {region} "
                    "needs one in its own region.",
                )
        elif rotation is not None and production:
            self.warn(
                "gearlift_app_secret_rotation_lambda_arn",
                "empty: the app's DB secret is not rotated (Security Hub SecretsManager.1 / .4).",
            )
        self.flag("gearlift_wait_for_rds")

    def check_observability(self) -> None:
        days = self.integer("gearlift_log_retention_days")
        if days is not None:
            if days not in LOG_RETENTION_DAYS:
                self.refuse(
                    "gearlift_log_retention_days",
                    f"{days} is not a CloudWatch Logs retention value ({', '.join(map(str, LOG_RETENTION_DAYS))}).",
                )
            elif days < MIN_LOG_RETENTION_DAYS:
                self.guard(
                    "gearlift_log_retention_days",
                    f"{days} days: PCI DSS 10.5.1 keeps audit logs 12 months (365 days).",
                    "gearlift_allow_short_log_retention",
                )
        email = self.text("gearlift_alarm_email")
        if email and not _EMAIL.match(email):
            self.refuse("gearlift_alarm_email", f"'{email}' is not an e-mail address.")
        elif email == "":
            self.warn("gearlift_alarm_email", "empty: alarms reach the SNS topic but nobody is subscribed.")
        self.integer("gearlift_alarm_5xx_per_minute", 0)
        self.number("gearlift_alarm_latency_seconds")
        self.number("gearlift_alarm_db_connections")

        copy_region = self.text("gearlift_backup_copy_region")
        region = self._typed.get("gearlift_region")
        if copy_region:
            if not _REGION.match(copy_region):
                self.refuse("gearlift_backup_copy_region", f"'{copy_region}' is not an AWS region name.")
            elif copy_region == region:
                self.refuse(
                    "gearlift_backup_copy_region",
                    f"is gearlift_region {region} itself; a copy must survive the loss of the region "
                    "(or leave it empty).",
                )
        elif copy_region == "" and self.derived.get("production"):
            self.warn(
                "gearlift_backup_copy_region", "empty: backups stay in one region (the brief's target copies them)."
            )
        monthly = self.integer("gearlift_backup_monthly_retention_days", 1, 36500)
        daily = self._typed.get("gearlift_db_backup_retention_days")
        if monthly is not None and daily is not None and monthly < daily:
            self.refuse(
                "gearlift_backup_monthly_retention_days",
                f"{monthly} days keeps monthly backups shorter than the daily ones "
                f"(gearlift_db_backup_retention_days {daily}).",
            )
        if not self.flag("gearlift_backup_selection"):
            self._control_off(
                bool(self.derived.get("production")),
                "gearlift_backup_selection",
                "false: AWS Backup has a plan but nothing assigned to it (the tape replacement backs up nothing).",
            )
        bucket = self.config.get("gearlift_trail_bucket")
        if "gearlift_trail_bucket" in self.config and not (isinstance(bucket, str) and _S3_BUCKET.match(bucket)):
            self.refuse(
                "gearlift_trail_bucket",
                f"{bucket!r} is not an S3 bucket name; leave it undefined for <name>-trail-<account>.",
            )

    def check_baseline(self, production: bool) -> None:
        for setting, control in (
            ("gearlift_guardduty", "GuardDuty threat detection (PCI DSS 11.5.1, Security Hub GuardDuty.1)"),
            ("gearlift_security_hub", "Security Hub, the PCI DSS v4.0.1 control findings (the evidence)"),
            ("gearlift_inspector", "Inspector vulnerability scanning (PCI DSS 6.3 / 11.3, Security Hub Inspector.1)"),
            ("gearlift_config_recorder", "AWS Config recording (PCI DSS 10.2 / 11.5, Security Hub Config.1)"),
        ):
            if not self.flag(setting):
                self._control_off(production, setting, f"false leaves {control} unmanaged.")
        standards = self.strings("gearlift_security_hub_standards")
        if standards is not None:
            unknown = [s for s in standards if s not in SECURITY_HUB_STANDARDS]
            if unknown:
                self.refuse(
                    "gearlift_security_hub_standards",
                    f"unknown standard(s) {', '.join(unknown)}; known: {', '.join(SECURITY_HUB_STANDARDS)}.",
                )
            elif "pci-dss-v4.0.1" not in standards and self.flag("gearlift_security_hub"):
                self._control_off(
                    production,
                    "gearlift_security_hub_standards",
                    "does not include pci-dss-v4.0.1 (no PCI DSS control findings).",
                )
        pack = self._raw("gearlift_config_conformance_pack")
        if not isinstance(pack, Mapping):
            self.refuse("gearlift_config_conformance_pack", f"must be a dict, got {type(pack).__name__}.")
        elif not pack and production:
            self.warn("gearlift_config_conformance_pack", "empty: no AWS Config PCI DSS conformance pack is deployed.")
        elif pack and not self.flag("gearlift_config_recorder"):
            self.refuse(
                "gearlift_config_conformance_pack",
                "needs AWS Config recording, but gearlift_config_recorder is false; turn it on (or drop the pack).",
            )

    def check_names(self) -> None:
        for flag in OVERRIDES:
            self.flag(flag)
        for name in sorted(self.config):
            if not isinstance(name, str) or not name.startswith("gearlift_"):
                self.warn(str(name), "is not a gearlift_* setting; ignored.")
            elif name not in KNOWN and name not in INTERNAL:
                close = difflib.get_close_matches(name, sorted(KNOWN), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.warn(name, f"is not a known setting{hint}; it is ignored.")

    def _control_off(self, production: bool, setting: str, problem: str) -> None:
        if production:
            self.guard(setting, f"{problem} Refused in production.", "gearlift_allow_disabled_controls")
        else:
            self.warn(setting, problem)


# --------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return str(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise ValueError(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


def _to_str_list(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise TypeError(value)
    return [_to_str(item) for item in value]


def _range_text(low: int | None, high: int | None) -> str:
    if high is None:
        return f"the allowed range (>= {low})"
    if low is None:
        return f"the allowed range (<= {high})"
    return f"the allowed range {low}..{high}"


def _known_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # Without a time zone database on the controller nothing can be judged: accept.
        return not zoneinfo.available_timezones()
    return True


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------


def validate(config: Mapping[str, Any]) -> GuardResult:
    """Check the inventory's ``gearlift_*`` settings; missing optional ones take their defaults.

    Never raises for bad input: every problem is a message in ``errors``.
    """
    checker = _Checker(config)
    checker.run()
    return GuardResult(errors=checker.errors, warnings=checker.warnings, derived=checker.derived)
