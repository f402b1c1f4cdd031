"""Monthly cost from the design inputs and the price table (data/prices.json).

Every line keeps its formula with the numbers put in, the prices' basis ("brief §6" or
"assumption") and their sources, so the customer can check each figure. A month is the price
table's ``hours_per_month`` (730, AWS's convention).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gearlift.report.errors import ReportError
from gearlift.report.inputs import DesignInputs
from gearlift.report.schedule import CapacityProfile, capacity_profile

SIZE_LADDER = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge")


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    unit: str
    basis: str
    source: str
    date: str


@dataclass
class PriceTable:
    """data/prices.json: prices with their basis, source and date; usage assumptions."""

    path: str
    currency: str
    region: str
    hours_per_month: float
    savings_plan_discount: float
    savings_plan: dict[str, Any]
    ec2: dict[str, Price]
    ec2_arch: dict[str, str]
    rds: dict[str, tuple[Price, Price]]
    units: dict[str, Price]
    assumptions: dict[str, dict[str, Any]]
    free_data_out_gb: float = 100.0

    def instance(self, instance_type: str) -> Price:
        if instance_type not in self.ec2:
            raise ReportError(
                f"gearlift_instance_type {instance_type!r} is not in the price table ({self.path}); known: "
                f"{', '.join(sorted(self.ec2))}. Add it there with its source and date, or pass --prices FILE"
            )
        return self.ec2[instance_type]

    def database(self, db_class: str, multi_az: bool) -> Price:
        if db_class not in self.rds:
            raise ReportError(
                f"gearlift_db_instance_class {db_class!r} is not in the price table ({self.path}); known: "
                f"{', '.join(sorted(self.rds))}. Add it there with its source and date, or pass --prices FILE"
            )
        single, multi = self.rds[db_class]
        return multi if multi_az else single

    def unit(self, key: str) -> Price:
        return self.units[key]

    def usage(self, key: str) -> float:
        return float(self.assumptions[key]["value"])

    def with_assumptions(self, overrides: dict[str, Any]) -> PriceTable:
        merged = {key: dict(value) for key, value in self.assumptions.items()}
        for key, value in overrides.items():
            if key not in merged:
                raise ReportError(f"unknown usage assumption {key!r}; known: {', '.join(sorted(merged))}")
            try:
                merged[key]["value"] = float(value)
            except (TypeError, ValueError) as exc:
                raise ReportError(f"usage assumption {key} must be a number, got {value!r}") from exc
            merged[key]["why"] = "set with --assumptions"
        return dataclasses.replace(self, assumptions=merged)


def _price(key: str, entry: dict[str, Any], usd: float, unit: str) -> Price:
    return Price(key, float(usd), unit, str(entry["basis"]), str(entry["source"]), str(entry["date"]))


def load_prices(path: Path | None = None) -> PriceTable:
    """Read the price table (the packaged one unless ``path``); a malformed one is a ReportError."""
    try:
        if path is None:
            text = resources.files("gearlift.report").joinpath("data/prices.json").read_text(encoding="utf-8")
            origin = "src/gearlift/report/data/prices.json"
        else:
            text = path.read_text(encoding="utf-8")
            origin = str(path)
        data = json.loads(text)
        ec2 = {k: _price(k, v, v["usd"], "instance-hour") for k, v in data["ec2_hourly"].items()}
        arch = {k: str(v.get("arch", "")) for k, v in data["ec2_hourly"].items()}
        rds = {
            k: (_price(k, v, v["single_az"], "hour, single-AZ"), _price(k, v, v["multi_az"], "hour, Multi-AZ"))
            for k, v in data["rds_mysql_hourly"].items()
        }
        units = {k: _price(k, v, v["usd"], str(v["unit"])) for k, v in data["unit_prices"].items()}
        sp = dict(data["savings_plan"])
        return PriceTable(
            path=origin,
            currency=str(data["currency"]),
            region=str(data["region"]),
            hours_per_month=float(data["hours_per_month"]),
            savings_plan_discount=float(sp["discount"]),
            savings_plan=sp,
            ec2=ec2,
            ec2_arch=arch,
            rds=rds,
            units=units,
            assumptions={k: dict(v) for k, v in data["usage_assumptions"].items()},
            free_data_out_gb=float(data["unit_prices"]["data_out_gb"].get("free_gb", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"price table {path or 'data/prices.json'} is unreadable or incomplete: {exc}") from exc


@dataclass(frozen=True)
class CostLine:
    item: str
    group: str
    quantity: str
    formula: str
    usd: float
    prices: tuple[Price, ...]
    assumptions: tuple[str, ...] = ()

    @property
    def basis(self) -> str:
        """Where the line's prices come from, and whether its usage is assumed."""
        kinds = sorted({p.basis for p in self.prices})
        text = "price: " + " + ".join(kinds)
        return text + ("; usage: assumption" if self.assumptions else "")


@dataclass(frozen=True)
class CostEstimate:
    lines: tuple[CostLine, ...]
    capacity: CapacityProfile
    instance_hours: float
    baseline_hours: float
    ec2_on_demand: float
    ec2_savings_plan: float
    total_on_demand: float
    total_savings_plan: float
    notes: tuple[str, ...] = field(default=())


def estimate(inputs: DesignInputs, table: PriceTable, waf_rules: int = 5) -> CostEstimate:
    """The monthly bill of the design, line by line."""
    hpm = table.hours_per_month
    lines: list[CostLine] = []
    notes: list[str] = []

    def add(
        item: str,
        group: str,
        quantity: str,
        formula: str,
        usd: float,
        prices: list[Price],
        uses: Sequence[str] = (),
    ) -> None:
        lines.append(CostLine(item, group, quantity, formula, round(usd, 6), tuple(prices), tuple(uses)))

    # --- compute: instances over the year's schedule, their root volumes
    ec2 = table.instance(inputs.instance_type)
    capacity = capacity_profile(inputs.asg_desired, list(inputs.schedule))
    hours = capacity.instance_hours(hpm)
    baseline_hours = capacity.baseline * hpm
    add(
        f"EC2 {inputs.instance_type} app instances",
        "compute",
        f"{hours:,.2f} instance-hours (average {capacity.average:.4f} instances)",
        f"{hours:,.2f} h x ${ec2.usd}/h",
        hours * ec2.usd,
        [ec2],
    )
    ebs = table.unit("ebs_gp3_gb_month")
    volume_gb_months = capacity.average * inputs.root_volume_gb
    add(
        "EBS gp3 root volumes",
        "compute",
        f"{inputs.root_volume_gb} GB x {capacity.average:.4f} instances",
        f"{volume_gb_months:,.2f} GB-month x ${ebs.usd}",
        volume_gb_months * ebs.usd,
        [ebs],
    )
    if inputs.warm_pool:
        pooled = max(inputs.asg_max - capacity.baseline, 0)
        add(
            "Warm pool (stopped instances: EBS only)",
            "compute",
            f"{pooled} stopped instances x {inputs.root_volume_gb} GB",
            f"{pooled * inputs.root_volume_gb} GB-month x ${ebs.usd}",
            pooled * inputs.root_volume_gb * ebs.usd,
            [ebs],
            ["warm pool holds max size - baseline instances"],
        )

    # --- data: RDS instance, storage, backups
    rds = table.database(inputs.db_instance_class, inputs.db_multi_az)
    az_text = "Multi-AZ" if inputs.db_multi_az else "single-AZ"
    add(
        f"RDS MySQL {inputs.db_instance_class} {az_text}",
        "data",
        f"{hpm:g} h",
        f"{hpm:g} h x ${rds.usd}/h",
        hpm * rds.usd,
        [rds],
    )
    storage = table.unit("rds_gp3_gb_month_multi_az" if inputs.db_multi_az else "rds_gp3_gb_month_single_az")
    add(
        f"RDS gp3 storage ({az_text})",
        "data",
        f"{inputs.db_storage_gb} GB",
        f"{inputs.db_storage_gb} GB x ${storage.usd}",
        inputs.db_storage_gb * storage.usd,
        [storage],
    )
    backup = table.unit("backup_gb_month")
    factor = table.usage("backup_storage_factor")
    copies = 2 if inputs.backup_copy_region else 1
    backup_gb = inputs.db_storage_gb * factor * copies
    where = f"{inputs.region} + {inputs.backup_copy_region}" if copies == 2 else inputs.region
    add(
        f"AWS Backup storage ({where})",
        "data",
        f"{inputs.db_storage_gb} GB x {factor:g} x {copies} region(s)",
        f"{backup_gb:,.2f} GB-month x ${backup.usd}",
        backup_gb * backup.usd,
        [backup],
        ["backup_storage_factor"],
    )
    secrets = table.usage("secrets_count")
    secret = table.unit("secret_month")
    add(
        "Secrets Manager secrets",
        "data",
        f"{secrets:g} secrets",
        f"{secrets:g} x ${secret.usd}",
        secrets * secret.usd,
        [secret],
        ["secrets_count"],
    )
    keys = table.usage("kms_keys") + (1 if inputs.backup_copy_region else 0)
    kms = table.unit("kms_key_month")
    add("KMS customer managed keys", "data", f"{keys:g} keys", f"{keys:g} x ${kms.usd}", keys * kms.usd, [kms])

    # --- network: NAT, public IPv4, interface endpoints, data out
    nat_h, nat_gb = table.unit("nat_hour"), table.unit("nat_gb")
    nat_traffic = table.usage("nat_gb_per_month")
    add(
        f"NAT gateways ({inputs.nat_mode})",
        "network",
        f"{inputs.nat_count} x {hpm:g} h + {nat_traffic:g} GB",
        f"{inputs.nat_count} x {hpm:g} h x ${nat_h.usd} + {nat_traffic:g} GB x ${nat_gb.usd}",
        inputs.nat_count * hpm * nat_h.usd + nat_traffic * nat_gb.usd,
        [nat_h, nat_gb],
        ["nat_gb_per_month"],
    )
    ipv4 = table.unit("public_ipv4_hour")
    alb_ips = int(table.usage("alb_public_ipv4_per_az")) * inputs.az_count
    addresses = inputs.nat_count + alb_ips
    add(
        "Public IPv4 addresses (NAT + ALB)",
        "network",
        f"{inputs.nat_count} NAT + {alb_ips} ALB",
        f"{addresses} x {hpm:g} h x ${ipv4.usd}",
        addresses * hpm * ipv4.usd,
        [ipv4],
        ["alb_public_ipv4_per_az"],
    )
    if inputs.interface_endpoints:
        ep_h, ep_gb = table.unit("endpoint_az_hour"), table.unit("endpoint_gb")
        count = len(inputs.interface_endpoints)
        ep_traffic = table.usage("endpoint_gb_per_month")
        add(
            "Interface VPC endpoints",
            "network",
            f"{count} endpoints x {inputs.az_count} AZs + {ep_traffic:g} GB",
            f"{count} x {inputs.az_count} x {hpm:g} h x ${ep_h.usd} + {ep_traffic:g} GB x ${ep_gb.usd}",
            count * inputs.az_count * hpm * ep_h.usd + ep_traffic * ep_gb.usd,
            [ep_h, ep_gb],
            ["endpoint_gb_per_month"],
        )
    out = table.unit("data_out_gb")
    out_gb = table.usage("data_out_gb_per_month")
    billable = max(out_gb - table.free_data_out_gb, 0.0)
    add(
        "Data transfer out to the internet",
        "network",
        f"{out_gb:g} GB (first {table.free_data_out_gb:g} GB free)",
        f"{billable:g} GB x ${out.usd}",
        billable * out.usd,
        [out],
        ["data_out_gb_per_month"],
    )

    # --- edge: ALB, WAF
    alb_h, lcu_h = table.unit("alb_hour"), table.unit("alb_lcu_hour")
    lcu = table.usage("alb_average_lcu")
    add(
        "Application Load Balancer",
        "edge",
        f"{hpm:g} h + {lcu:g} LCU average",
        f"{hpm:g} h x ${alb_h.usd} + {lcu:g} x {hpm:g} h x ${lcu_h.usd}",
        hpm * alb_h.usd + lcu * hpm * lcu_h.usd,
        [alb_h, lcu_h],
        ["alb_average_lcu"],
    )
    acl, rule, req = table.unit("waf_acl_month"), table.unit("waf_rule_month"), table.unit("waf_million_requests")
    rules = waf_rules
    requests = table.usage("requests_million_per_month")
    add(
        "AWS WAF web ACL",
        "edge",
        f"1 ACL + {rules} rules + {requests:g} M requests",
        f"${acl.usd} + {rules} x ${rule.usd} + {requests:g} x ${req.usd}",
        acl.usd + rules * rule.usd + requests * req.usd,
        [acl, rule, req],
        ["requests_million_per_month"],
    )

    # --- observability: CloudWatch Logs ingestion and storage
    ingest, store = table.unit("logs_ingest_gb"), table.unit("logs_store_gb_month")
    host_logs = table.usage("logs_gb_per_instance_month") * capacity.average
    flow = table.usage("flow_logs_gb_per_month") if inputs.flow_logs else 0.0
    waf_logs = table.usage("waf_logs_gb_per_million_requests") * requests
    monthly_gb = host_logs + flow + waf_logs
    add(
        "CloudWatch Logs ingestion",
        "observability",
        f"{host_logs:,.2f} GB hosts + {flow:g} GB flow logs + {waf_logs:g} GB WAF",
        f"{monthly_gb:,.2f} GB x ${ingest.usd}",
        monthly_gb * ingest.usd,
        [ingest],
        ["logs_gb_per_instance_month", "flow_logs_gb_per_month", "waf_logs_gb_per_million_requests"],
    )
    months_kept = inputs.log_retention_days * 12 / 365
    stored = monthly_gb * months_kept
    add(
        "CloudWatch Logs storage (steady state)",
        "observability",
        f"{monthly_gb:,.2f} GB/month kept {inputs.log_retention_days} days ({months_kept:.2f} months)",
        f"{stored:,.2f} GB-month x ${store.usd}",
        stored * store.usd,
        [store],
        ["no compression credit: an upper bound"],
    )

    total = sum(line.usd for line in lines)
    ec2_on_demand = hours * ec2.usd
    discount = table.savings_plan_discount
    ec2_sp = baseline_hours * ec2.usd * (1 - discount) + (hours - baseline_hours) * ec2.usd
    if inputs.region != table.region:
        notes.append(
            f"Prices are {table.region} figures; {inputs.region} differs (often by a few percent): "
            "check the region's prices before quoting."
        )
    return CostEstimate(
        lines=tuple(lines),
        capacity=capacity,
        instance_hours=hours,
        baseline_hours=baseline_hours,
        ec2_on_demand=ec2_on_demand,
        ec2_savings_plan=ec2_sp,
        total_on_demand=total,
        total_savings_plan=total - ec2_on_demand + ec2_sp,
        notes=tuple(notes),
    )


def next_size(name: str, prefix: str = "") -> str | None:
    """t3.medium -> t3.large, db.m6g.large -> db.m6g.xlarge; None past the ladder."""
    body = name[len(prefix) :] if prefix and name.startswith(prefix) else name
    family, _, size = body.rpartition(".")
    if not family or size not in SIZE_LADDER or size == SIZE_LADDER[-1]:
        return None
    return f"{prefix}{family}.{SIZE_LADDER[SIZE_LADDER.index(size) + 1]}"


@dataclass(frozen=True)
class Sensitivity:
    driver: str
    change: str
    delta_usd: float | None
    note: str = ""


def sensitivities(inputs: DesignInputs, table: PriceTable, waf_rules: int = 5) -> list[Sensitivity]:
    """What one change of each main driver does to the monthly on-demand total."""
    base = estimate(inputs, table, waf_rules).total_on_demand
    out: list[Sensitivity] = []

    def delta(driver: str, change: str, variant: DesignInputs, note: str = "") -> None:
        try:
            out.append(Sensitivity(driver, change, estimate(variant, table, waf_rules).total_on_demand - base, note))
        except ReportError as exc:
            out.append(Sensitivity(driver, change, None, str(exc).split(";")[0]))

    bumped = tuple(dataclasses.replace(a, desired_capacity=a.desired_capacity + 1) for a in inputs.schedule)
    delta(
        "instance count",
        "+1 instance all month",
        dataclasses.replace(inputs, asg_desired=inputs.asg_desired + 1, schedule=bumped),
        "instance, its root volume and its logs",
    )
    bigger = next_size(inputs.instance_type)
    if bigger:
        delta("instance size", f"{inputs.instance_type} -> {bigger}", dataclasses.replace(inputs, instance_type=bigger))
    if inputs.schedule:
        delta(
            "peak schedule",
            "without the peak schedule",
            dataclasses.replace(inputs, schedule=()),
            "what the scheduled peak capacity costs",
        )
    bigger_db = next_size(inputs.db_instance_class, "db.")
    if bigger_db:
        delta(
            "database class",
            f"{inputs.db_instance_class} -> {bigger_db}",
            dataclasses.replace(inputs, db_instance_class=bigger_db),
        )
    delta(
        "database availability",
        "single-AZ instead of Multi-AZ" if inputs.db_multi_az else "Multi-AZ instead of single-AZ",
        dataclasses.replace(inputs, db_multi_az=not inputs.db_multi_az),
        "single-AZ is refused in production (gearlift_allow_single_az_db)" if inputs.db_multi_az else "",
    )
    if inputs.nat_mode == "per_az":
        delta(
            "NAT gateways",
            "one shared NAT instead of one per AZ",
            dataclasses.replace(inputs, nat_mode="single", nat_count=1),
            "egress then depends on one AZ",
        )
    else:
        delta(
            "NAT gateways",
            f"one NAT per AZ ({inputs.az_count}) instead of one shared",
            dataclasses.replace(inputs, nat_mode="per_az", nat_count=inputs.az_count),
            "keeps egress when an AZ fails",
        )
    delta(
        "database storage",
        f"+100 GB ({inputs.db_storage_gb} -> {inputs.db_storage_gb + 100} GB)",
        dataclasses.replace(inputs, db_storage_gb=inputs.db_storage_gb + 100),
        "storage and its backups",
    )
    return out
