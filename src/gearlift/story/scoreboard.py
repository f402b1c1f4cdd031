"""The story's scoreboard: what the customer got, as JSON (reports/rehearsal/summary.json) and on the terminal.

Pure code. A figure is either measured or null with an entry in ``not_measured`` saying why; the
verdict is the customer's outcome (nothing confirmed lost, every phase passed, the shop answering
200 through the ALB at the end), not "the playbook exited 0".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gearlift.story.phases import PHASES

FAILED_REQUEST_PHASES: tuple[str, ...] = ("deploy", "patch", "cutover")
AUDIT_KEYS: tuple[str, ...] = ("pass", "fail", "skipped")
#: The scalar figures, in the order the terminal shows them.
FIGURES: tuple[str, ...] = (
    "orders_confirmed",
    "orders_lost",
    "uploads_confirmed",
    "uploads_lost",
    "carts_lost",
    "carts_left_at_switch",
    "read_only_window_s",
    "rpo_s",
    "rto_s",
    "shop_status_through_alb",
    "monthly_cost_usd",
)
REQUIRED_KEYS: tuple[str, ...] = (
    *FIGURES,
    "failed_requests",
    "audit",
    "phase_seconds",
    "total_seconds",
    "result",
)
#: Objects of the summary and their keys.
OBJECTS: dict[str, tuple[str, ...]] = {
    "failed_requests": FAILED_REQUEST_PHASES,
    "audit": AUDIT_KEYS,
    "phase_seconds": PHASES,
}
#: A loss of any of these fails the run: what the shop confirmed to a customer (an order, a design).
#: ``carts_lost`` is counted and shown, not a verdict: a cart is not a sale, and with target-group
#: stickiness alone (the lift-and-shift default) a replaced host loses the carts it held by design
#: (issue 15: 0 only with an external session store). ``carts_left_at_switch`` are the carts the
#: legacy shop held in its own memory when the shop's name moved to the ALB: no target setting can
#: keep those, so they are shown apart from what the new platform lost.
LOSSES: tuple[str, ...] = ("orders_lost", "uploads_lost")


@dataclass
class PlaybookRun:
    """One ansible-playbook run of a phase, with its totals (ansible's recap summed over hosts)."""

    playbook: str
    tags: str | None
    status: str
    seconds: float
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0

    def line(self) -> str:
        tags = f" --tags {self.tags}" if self.tags else ""
        return (
            f"{self.playbook}{tags}: {self.status} in {self.seconds:.0f} s "
            f"(ok={self.ok} changed={self.changed} failed={self.failed} unreachable={self.unreachable} "
            f"skipped={self.skipped})"
        )


@dataclass
class PhaseRecord:
    name: str
    status: str = "not_run"  # passed | failed | interrupted | skipped (after a failure) | not_run
    seconds: float | None = None
    prerequisite: bool = False
    playbooks: list[PlaybookRun] = field(default_factory=list)
    error: str = ""


@dataclass
class Scoreboard:
    """Figures as they are measured; ``missing(key, why)`` for one that could not be."""

    values: dict[str, Any] = field(default_factory=dict)
    why_not: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def measure(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError(f"{key}: a measured value cannot be None (use missing())")
        self.values[key] = value
        self.why_not.pop(key, None)

    def missing(self, key: str, why: str) -> None:
        if not why.strip():
            raise ValueError(f"{key}: say why it is not measured")
        self.values.pop(key, None)
        self.why_not[key] = why


def _get(values: dict[str, Any], why_not: dict[str, str], key: str, default_why: str) -> Any:
    if key in values:
        return values[key]
    why_not.setdefault(key, default_why)
    return None


def build(
    board: Scoreboard,
    phases: list[PhaseRecord],
    total_seconds: float,
    alb_required: bool,
    started_at: str = "",
) -> dict[str, Any]:
    """The summary dict (the JSON's content), with its verdict."""
    why_not = dict(board.why_not)
    values = board.values
    summary: dict[str, Any] = {}
    for key in FIGURES:
        summary[key] = _get(values, why_not, key, "not measured in this run")
    for obj, keys in OBJECTS.items():
        if obj == "phase_seconds":
            continue
        summary[obj] = {k: _get(values, why_not, f"{obj}.{k}", "not measured in this run") for k in keys}
    by_name = {p.name: p for p in phases}
    seconds: dict[str, float | None] = {}
    for name in PHASES:
        record = by_name.get(name)
        if record is not None and record.seconds is not None:
            seconds[name] = round(record.seconds, 1)
        else:
            seconds[name] = None
            status = record.status if record is not None else "not_run"
            why_not[f"phase_seconds.{name}"] = (
                "not run: an earlier phase failed or was interrupted"
                if status == "skipped"
                else f"phase not in this run ({status})"
            )
    summary["phase_seconds"] = seconds
    summary["total_seconds"] = round(total_seconds, 1)
    result, reasons = verdict(summary, phases, alb_required)
    summary["result"] = result
    summary["verdict_reasons"] = reasons
    summary["not_measured"] = [{"key": k, "why": why_not[k]} for k in sorted(why_not) if _is_null(summary, k)]
    summary["phases"] = [asdict(p) for p in phases]
    summary["detail"] = board.detail
    summary["started_at"] = started_at
    return summary


def _is_null(summary: dict[str, Any], key: str) -> bool:
    head, _, tail = key.partition(".")
    if head not in summary:
        return False
    value = summary[head]
    if tail:
        return isinstance(value, dict) and tail in value and value[tail] is None
    return value is None


def verdict(summary: dict[str, Any], phases: list[PhaseRecord], alb_required: bool) -> tuple[str, list[str]]:
    """('passed' | 'failed', reasons): a loss, a failed phase, or no 200 through the ALB fails the run."""
    reasons: list[str] = []
    for key in LOSSES:
        lost = summary.get(key)
        if isinstance(lost, int | float) and lost > 0:
            reasons.append(f"{key} = {lost}: something the shop confirmed is missing")
    for record in phases:
        if record.status in ("failed", "interrupted"):
            reasons.append(f"phase {record.name} {record.status}" + (f": {record.error}" if record.error else ""))
    if any(p.name == "estate" and p.status == "passed" for p in phases) and summary.get("orders_lost") is None:
        reasons.append("orders_lost could not be measured: nothing says the confirmed orders are all there")
    status = summary.get("shop_status_through_alb")
    if alb_required and status != 200:
        reasons.append(f"the shop answers {status if status is not None else 'nothing'} on /health through the ALB")
    return ("failed" if reasons else "passed"), reasons


def schema_problems(summary: dict[str, Any]) -> list[str]:
    """What makes a summary invalid: a required key missing, or a null without a not_measured entry."""
    problems = [f"missing key {k}" for k in REQUIRED_KEYS if k not in summary]
    for obj, keys in OBJECTS.items():
        value = summary.get(obj)
        if not isinstance(value, dict):
            problems.append(f"{obj} is not an object")
            continue
        problems += [f"missing key {obj}.{k}" for k in keys if k not in value]
    if summary.get("result") not in ("passed", "failed"):
        problems.append(f"result is {summary.get('result')!r}, not 'passed' or 'failed'")
    entries = summary.get("not_measured")
    if not isinstance(entries, list):
        return [*problems, "not_measured is not a list"]
    explained = {e.get("key") for e in entries if isinstance(e, dict) and str(e.get("why", "")).strip()}
    nulls = [k for k in REQUIRED_KEYS if k in summary and summary[k] is None]
    for obj in OBJECTS:
        value = summary.get(obj)
        if isinstance(value, dict):
            nulls += [f"{obj}.{k}" for k, v in value.items() if v is None]
    problems += [f"{k} is null without a not_measured entry saying why" for k in nulls if k not in explained]
    return problems


def write(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _show(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return " ".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def render(summary: dict[str, Any]) -> list[str]:
    """The scoreboard as terminal lines."""
    lines = ["", "== rehearsal scoreboard =="]
    split = FIGURES.index("read_only_window_s") + 1
    for key in (*FIGURES[:split], "failed_requests", *FIGURES[split:], "audit"):
        lines.append(f"{key:<24}: {_show(summary.get(key))}")
    lines.append("phase_seconds           :")
    for name in PHASES:
        record = next((p for p in summary.get("phases", []) if p["name"] == name), None)
        status = record["status"] if record else "not_run"
        extra = " (prerequisite)" if record and record.get("prerequisite") else ""
        lines.append(f"  {name:<14} {_show(summary['phase_seconds'].get(name)):>12}  {status}{extra}")
        for run in record["playbooks"] if record else []:
            lines.append("      " + PlaybookRun(**run).line())
    lines.append(f"total_seconds           : {_show(summary.get('total_seconds'))}")
    if summary.get("not_measured"):
        lines.append("not measured:")
        lines += [f"  - {e['key']}: {e['why']}" for e in summary["not_measured"]]
    for reason in summary.get("verdict_reasons", []):
        lines.append(f"why failed: {reason}")
    lines.append(f"result                  : {str(summary.get('result', '')).upper()}")
    return lines
