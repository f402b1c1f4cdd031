"""Assemble the report: every section's data, from the inventory, the repository and the evidence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.report import availability, cis, cost, diagram, pci, repo
from gearlift.report.errors import ReportError
from gearlift.report.evidence import AuditSet, DrillSet, PeakSet
from gearlift.report.inputs import DesignInputs, design_inputs
from gearlift.report.inventory import Inventory
from gearlift.report.runbooks import Runbook, runbooks


@dataclass(frozen=True)
class BeforeAfter:
    area: str
    today: str
    pain: str
    target: str


@dataclass
class Report:
    generated: str
    inventory: Inventory
    inventory_arg: str
    inputs: DesignInputs
    dot: str
    svg: str | None
    diagram_note: str
    before_after: list[BeforeAfter]
    matrix: list[pci.MatrixRow]
    matrix_problems: list[str]
    cis: list[cis.SectionCoverage]
    audit: AuditSet
    drills: DrillSet
    prices: cost.PriceTable
    estimate: cost.CostEstimate
    sensitivities: list[cost.Sensitivity]
    slas: list[availability.Sla]
    composite: float
    downtime_minutes: float
    failures: list[availability.FailureRow]
    runbooks: list[Runbook]
    waf_rules: int
    notes: list[str] = field(default_factory=list)
    session_mode: str = ""
    peak: PeakSet = field(default_factory=PeakSet)

    def prices_used(self) -> list[cost.Price]:
        """Each price the estimate used, once, in the order of the lines."""
        seen: dict[str, cost.Price] = {}
        for line in self.estimate.lines:
            for price in line.prices:
                seen.setdefault(price.key + price.unit, price)
        return list(seen.values())

    def settings_rows(self) -> list[tuple[str, str]]:
        """The inventory's own gearlift_* values (not the defaults), as shown in the report."""
        return [(key, _show(value)) for key, value in sorted(self.inventory.settings.items())]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def before_after(inputs: DesignInputs) -> list[BeforeAfter]:
    """Brief §1 (today) against what this inventory builds."""
    peak = (
        "; ".join(f"{a.name}: {a.recurrence} -> {a.desired_capacity}" for a in inputs.schedule)
        or "no peak schedule set"
    )
    copy = f", cross-region copy to {inputs.backup_copy_region}" if inputs.backup_copy_region else ""
    return [
        BeforeAfter(
            "Web / app servers",
            "Two load-balanced servers in a public subnet, firewall open on 80/443",
            "Hosts directly reachable from the internet",
            f"Only the ALB is public; {inputs.instance_type} hosts in private subnets over {inputs.az_count} AZs, "
            "no public IPs, golden image hardened to CIS Level 1 + PCI DSS host controls",
        ),
        BeforeAfter(
            "Peak hours",
            "Fixed capacity of two servers",
            "Slow at peak hours",
            f"Auto Scaling group {inputs.asg_min}-{inputs.asg_max}, target tracking "
            f"({inputs.requests_per_target:g} requests / target / min, CPU {inputs.cpu_target:g} %), scheduled "
            f"scaling ({peak})",
        ),
        BeforeAfter(
            "Database",
            "One MySQL server, no redundancy; 3306 open to the app servers' hard-coded IPs",
            "Single point of failure; IP-based rules",
            f"RDS MySQL {inputs.db_engine_version} {inputs.db_instance_class} "
            f"{'Multi-AZ' if inputs.db_multi_az else 'single-AZ'}, KMS-encrypted, TLS required, 3306 only from "
            "the app security group",
        ),
        BeforeAfter(
            "Backups",
            "Weekly full + nightly incremental to tape",
            "RPO up to 24 h, restore never tested",
            f"Point-in-time restore for {inputs.db_backup_retention_days} days (RPO about 5 min), AWS Backup "
            f"daily + monthly{copy}; restore runbook and drills",
        ),
        BeforeAfter(
            "Card payments",
            "Card flow through the shop's own servers",
            "Not PCI DSS compliant",
            "Hosted payment fields / redirect from a PCI Level 1 processor (SAQ A scope), WAF, TLS 1.2+, "
            f"logs kept {inputs.log_retention_days} days, the PCI matrix below with audit evidence",
        ),
        BeforeAfter(
            "Operations",
            "Contractor-built, no in-house staff",
            "Nobody to patch, watch or rebuild it",
            "Everything as code (site.yml), no SSH (SSM), automatic security updates, alarms to "
            f"{inputs.alarm_email or '(no e-mail set)'}, this report regenerated from the inventory, AWX job templates",
        ),
    ]


def build_report(
    inventory: Inventory,
    inventory_arg: str,
    repo_root: Path,
    audit: AuditSet,
    drills: DrillSet,
    prices: cost.PriceTable,
    peak: PeakSet | None = None,
) -> Report:
    guards = repo.load_guards(repo_root)
    inputs = design_inputs(inventory, guards)
    # price lookups first: an unknown instance type / DB class is a clear error, not a half report
    prices.instance(inputs.instance_type)
    prices.database(inputs.db_instance_class, inputs.db_multi_az)
    notes = list(inventory.notes)
    if inputs.session_store == "redis":
        notes.append(
            f"the session store's {inputs.session_store_replicas + 1} ElastiCache node(s) are not in the price table "
            "yet: the monthly cost below leaves them out"
        )
    arch = prices.ec2_arch.get(inputs.instance_type, "")
    if arch and inputs.architecture and arch != inputs.architecture:
        notes.append(
            f"gearlift_instance_type {inputs.instance_type} is {arch} but gearlift_architecture is "
            f"{inputs.architecture}: the guards refuse this"
        )
    waf_rules = repo.waf_rule_count(repo_root)
    index = repo.scan_controls(repo_root)
    matrix_data = pci.load_matrix()
    problems = pci.unlinked_rows(matrix_data) + [
        f"{m} does not exist in the repository" for m in pci.missing_references(matrix_data, index)
    ]
    catalog, hardening_defaults = repo.hardening_catalog(repo_root)
    estimate = cost.estimate(inputs, prices, waf_rules)
    source = diagram.dot_source(inputs, waf_rules)
    svg, why = diagram.render_svg(source)
    slas = availability.components(inputs)
    composite = availability.composite(slas)
    if not matrix_data["rows"]:
        raise ReportError("PCI matrix has no rows")
    return Report(
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        inventory=inventory,
        inventory_arg=inventory_arg,
        inputs=inputs,
        dot=source,
        svg=svg,
        diagram_note=why,
        before_after=before_after(inputs),
        matrix=pci.build_matrix(matrix_data, index, audit, inputs.effective),
        matrix_problems=problems,
        cis=cis.coverage(catalog, hardening_defaults, inventory.hardening, audit),
        audit=audit,
        drills=drills,
        prices=prices,
        estimate=estimate,
        sensitivities=cost.sensitivities(inputs, prices, waf_rules),
        slas=slas,
        composite=composite,
        downtime_minutes=availability.downtime_minutes_per_month(composite, prices.hours_per_month),
        failures=availability.failure_table(inputs, drills),
        runbooks=runbooks(inputs, repo_root, inventory_arg),
        waf_rules=waf_rules,
        notes=notes + list(estimate.notes),
        session_mode=availability.session_mode(inputs),
        peak=peak or PeakSet(),
    )
