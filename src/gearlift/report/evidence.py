"""Evidence files: the audit results of playbooks/audit.yml and the rehearsal's drill figures.

The reader is tolerant: playbooks/audit.yml writes, per host, ``{"summary": {...}, "controls":
[{"id", "cis", "pci", "title", "toggle", "status", "detail"}, ...]}``; a bare list of controls,
``{"host": ..., "controls"|"results": [...]}`` or ``{"hosts": {name: [...]}}`` are read too, and
``reason`` / ``message`` stand in for ``detail``. A file that cannot be read is listed as a problem
in the report instead of stopping it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.report.errors import ReportError

_PASS = {"pass", "passed", "ok", "success", "compliant", "true"}
_FAIL = {"fail", "failed", "failure", "error", "non-compliant", "noncompliant", "false"}
_SKIP = {"skip", "skipped", "n/a", "na", "not_applicable", "not applicable", "notapplicable"}


def normalise_status(value: Any) -> str:
    text = str(value).strip().lower()
    if text in _PASS:
        return "pass"
    if text in _FAIL:
        return "fail"
    if text in _SKIP:
        return "skipped"
    return "unknown"


def split_ids(value: Any) -> tuple[str, ...]:
    """ "10.2.1.1, 10.2.1.4" / ["8.3.4"] / "PCI 1.3.1" -> requirement ids."""
    parts = [str(v) for v in value] if isinstance(value, list) else re.split(r"[,;/\s]+", str(value or ""))
    return tuple(p for p in (part.strip().removeprefix("PCI").strip() for part in parts) if re.match(r"^\d", p))


def matches_requirement(requirement_id: str, prefix: str) -> bool:
    """8.3.4 matches 8.3 and 8.3.4, not 8.3.40."""
    return requirement_id == prefix or requirement_id.startswith(prefix + ".")


@dataclass(frozen=True)
class AuditControl:
    host: str
    id: str
    cis: str
    pci: tuple[str, ...]
    title: str
    status: str
    detail: str


@dataclass
class HostAudit:
    host: str
    source: str
    os: str = ""
    benchmark: str = ""
    container: bool | None = None
    controls: list[AuditControl] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for c in self.controls if c.status == status)


@dataclass
class AuditSet:
    hosts: list[HostAudit] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    searched: str = ""

    @property
    def controls(self) -> list[AuditControl]:
        return [c for h in self.hosts for c in h.controls]

    def for_requirement(self, prefixes: list[str]) -> list[AuditControl]:
        return [c for c in self.controls if any(matches_requirement(r, p) for r in c.pci for p in prefixes)]


def _control(host: str, raw: Any, position: int) -> AuditControl | None:
    if not isinstance(raw, dict):
        return None
    ident = raw.get("id", raw.get("control", raw.get("rule", f"#{position}")))
    detail = raw.get("detail", raw.get("reason", raw.get("message", "")))
    return AuditControl(
        host=host,
        id=str(ident),
        cis=str(raw.get("cis", "") or ""),
        pci=split_ids(raw.get("pci", "")),
        title=str(raw.get("title", raw.get("name", "")) or ""),
        status=normalise_status(raw.get("status", "")),
        detail=str(detail or ""),
    )


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return None


def _host_audit(host: str, source: str, body: Any, problems: list[str]) -> HostAudit | None:
    summary: dict[str, Any] = {}
    controls: Any = body
    if isinstance(body, dict):
        found = body.get("summary")
        summary = found if isinstance(found, dict) else {}
        controls = body.get("controls", body.get("results"))
        host = str(summary.get("host") or body.get("host") or host)
    if not isinstance(controls, list):
        problems.append(f"{source}: no list of controls (expected 'controls': [...])")
        return None
    parsed = [c for i, raw in enumerate(controls, 1) if (c := _control(host, raw, i)) is not None]
    if len(parsed) != len(controls):
        problems.append(f"{source}: {len(controls) - len(parsed)} control entries are not objects; ignored")
    unknown = sum(1 for c in parsed if c.status == "unknown")
    if unknown:
        problems.append(f"{source}: {unknown} control(s) with a status other than pass/fail/skipped")
    return HostAudit(
        host=host,
        source=source,
        os=str(summary.get("os", "")),
        benchmark=str(summary.get("benchmark", "")),
        container=_as_bool(summary.get("container")),
        controls=parsed,
    )


def read_audit_file(path: Path, audit: AuditSet) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        audit.problems.append(f"{path.name}: not readable as JSON ({exc})")
        return
    if isinstance(data, dict) and isinstance(data.get("hosts"), dict):
        for host, body in data["hosts"].items():
            found = _host_audit(str(host), f"{path.name}:{host}", body, audit.problems)
            if found:
                audit.hosts.append(found)
        return
    found = _host_audit(path.stem, path.name, data, audit.problems)
    if found:
        audit.hosts.append(found)


def load_audit(location: Path | None) -> AuditSet:
    """Every *.json under ``location`` (a directory or one file); missing directory = no evidence."""
    audit = AuditSet(searched=str(location) if location else "")
    if location is None or not location.exists():
        return audit
    files = sorted(location.glob("*.json")) if location.is_dir() else [location]
    for path in files:
        read_audit_file(path, audit)
    audit.hosts.sort(key=lambda h: h.host)
    return audit


# --------------------------------------------------------------------------- drills

#: failure scenario keys the availability table knows, and words that name them
DRILL_KINDS = {
    "instance": ("instance", "host", "ec2"),
    "az": ("az", "zone", "availability"),
    "db": ("db", "database", "rds", "failover"),
    "region": ("region",),
    "deletion": ("deletion", "ransomware", "restore", "delete"),
}


@dataclass(frozen=True)
class Drill:
    kind: str
    name: str
    rto_seconds: float | None
    rpo_seconds: float | None
    date: str
    note: str


@dataclass
class DrillSet:
    drills: list[Drill] = field(default_factory=list)
    migration: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def for_kind(self, kind: str) -> list[Drill]:
        return [d for d in self.drills if d.kind == kind]


def _kind(name: str) -> str:
    lowered = name.lower()
    for kind, words in DRILL_KINDS.items():
        if any(re.search(rf"\b{w}", lowered) for w in words):
            return kind
    return "other"


def _number(raw: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        if key in raw and raw[key] is not None:
            try:
                return float(raw[key])
            except (TypeError, ValueError):
                return None
    return None


def load_drills(location: Path | None) -> DrillSet:
    """Drill / migration figures: {"drills": [{"failure", "rto_seconds", "rpo_seconds", "date", "note"}],
    "migration": {...}} in one file or every *.json of a directory."""
    out = DrillSet()
    if location is None or not location.exists():
        return out
    files = sorted(location.glob("*.json")) if location.is_dir() else [location]
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.problems.append(f"{path.name}: not readable as JSON ({exc})")
            continue
        items = data.get("drills", []) if isinstance(data, dict) else data
        if isinstance(data, dict) and isinstance(data.get("migration"), dict):
            out.migration.update(data["migration"])
        if not isinstance(items, list):
            out.problems.append(f"{path.name}: 'drills' is not a list")
            continue
        for raw in items:
            if not isinstance(raw, dict):
                continue
            name = str(raw.get("failure", raw.get("scenario", raw.get("name", "drill"))))
            out.drills.append(
                Drill(
                    kind=str(raw.get("kind") or _kind(name)),
                    name=name,
                    rto_seconds=_number(raw, "rto_seconds", "measured_rto_s", "rto_s"),
                    rpo_seconds=_number(raw, "rpo_seconds", "measured_rpo_s", "rpo_s"),
                    date=str(raw.get("date", "")),
                    note=str(raw.get("note", raw.get("source", ""))),
                )
            )
    return out


def require_exists(path: Path | None, what: str) -> None:
    """An explicitly given evidence path must exist (a default one may be absent)."""
    if path is not None and not path.exists():
        raise ReportError(f"{what} {path} does not exist")


@dataclass
class PeakSet:
    """scripts/bench-peak's figures (reports/peak/summary.json) and its plot, when a bench ran."""

    summary: dict[str, Any] = field(default_factory=dict)
    svg: str | None = None
    problems: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One row per load step: each side's req/s, p95, error %, hosts."""
        out = []
        sides = [k for k in ("today", "target", "target_scheduled") if isinstance(self.summary.get(k), dict)]
        for i, multiple in enumerate(self.summary.get("load_multiple", [])):
            row: dict[str, Any] = {"multiple": multiple}
            for side in sides:
                data = self.summary[side]
                for key in ("rps", "p95_ms", "error_rate", "hosts_in_service"):
                    values = data.get(key) or []
                    row[f"{side}.{key}"] = values[i] if i < len(values) else None
            out.append(row)
        return out


def load_peak(location: Path | None) -> PeakSet:
    """reports/peak/summary.json and peak.svg beside it; an empty set when no bench ran."""
    out = PeakSet()
    if location is None or not location.exists():
        return out
    try:
        data = json.loads(location.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.problems.append(f"{location.name}: not readable as JSON ({exc})")
        return out
    if not isinstance(data, dict) or not isinstance(data.get("load_multiple"), list):
        out.problems.append(f"{location.name}: no load_multiple list (not a bench-peak summary)")
        return out
    out.summary = data
    plot = location.parent / "peak.svg"
    if plot.is_file():
        text = plot.read_text(encoding="utf-8")
        if text.lstrip().startswith("<svg"):
            out.svg = text
    return out
