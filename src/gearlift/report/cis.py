"""CIS coverage per benchmark section: the hardening catalog's plan, and the audit's outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gearlift.report.evidence import AuditSet

SECTIONS = {
    "1": "Initial setup",
    "2": "Services",
    "3": "Network",
    "4": "Host based firewall",
    "5": "Access control",
    "6": "Logging and auditing",
    "7": "System maintenance",
    "PCI": "PCI DSS-only host controls",
}
BENCHMARKS = {"CIS Ubuntu 24.04 v1.0.0": 232, "CIS Ubuntu 22.04 v2.0.0": 244}


def section_of(cis: str) -> str:
    head = cis.strip().split(".", 1)[0]
    return head if head in SECTIONS else "PCI"


@dataclass
class SectionCoverage:
    section: str
    name: str
    catalogued: int = 0
    planned_on: int = 0
    planned_off: list[str] = field(default_factory=list)
    host_kernel_only: int = 0
    audit: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "on", "1"}
    return bool(value)


def coverage(
    catalog: list[dict[str, Any]], defaults: dict[str, Any], overrides: dict[str, Any], audit: AuditSet
) -> list[SectionCoverage]:
    """Per section: controls in the catalog, how many the inventory's toggles switch on, and the
    audit's pass / fail / skipped counts with the skip reasons."""
    toggles = {**defaults, **overrides}
    out = {key: SectionCoverage(key, name) for key, name in SECTIONS.items()}
    for control in catalog:
        cov = out[section_of(str(control.get("cis", "")))]
        cov.catalogued += 1
        names = control.get("toggle", [])
        names = [names] if isinstance(names, str) else list(names or [])
        off = [n for n in names if not _truthy(toggles.get(n, True))]
        if off:
            cov.planned_off.append(f"{control.get('id')}: toggle off ({', '.join(off)})")
        else:
            cov.planned_on += 1
        if control.get("container") is False:
            cov.host_kernel_only += 1
    for item in audit.controls:
        cov = out[section_of(item.cis)]
        cov.audit[item.status] += 1
        if item.status == "skipped" and item.detail:
            cov.skip_reasons[item.detail] += 1
    return [cov for cov in out.values() if cov.catalogued or cov.audit]
