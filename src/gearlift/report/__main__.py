"""``python -m gearlift.report``: write the solution design / PCI evidence report of an inventory.

Exit codes: 0 written; 2 bad input (inventory, price table, paths), with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gearlift.report import cost, evidence, inventory, model, render, repo
from gearlift.report.errors import ReportError


def build_parser(prog: str = "python -m gearlift.report") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options (also used by the ``gearlift report`` subcommand)."""
    add = parser.add_argument
    add("--inventory", default="inventories/rehearsal", help="inventory directory (default %(default)s)")
    add("--out", default="reports/design", help="output directory (default %(default)s)")
    add(
        "--audit",
        default=None,
        help="audit results of playbooks/audit.yml: a directory of *.json or one file "
        "(default reports/audit when present)",
    )
    add("--drills", default=None, help="drill / migration figures, a JSON file or directory (default reports/drills)")
    add(
        "--peak",
        default=None,
        help="scripts/bench-peak's summary.json (default reports/peak/summary.json when present)",
    )
    add("--prices", default=None, help="another price table (same shape as data/prices.json)")
    add(
        "--assumptions",
        default=None,
        help='JSON object or file overriding usage assumptions, e.g. {"requests_million_per_month": 30}',
    )
    add("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override an inventory value")
    add("--loader", choices=["auto", "ansible", "yaml"], default="auto", help="how to read the inventory")
    add("--repo", default=None, help="repository root (default: this checkout)")


def _path(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() / path if (Path.cwd() / path).exists() else root / path)


def _assumptions(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    text = Path(value).read_text(encoding="utf-8") if Path(value).is_file() else value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"--assumptions: not a JSON object or file: {exc}") from exc
    if not isinstance(data, dict):
        raise ReportError("--assumptions: expected a JSON object")
    return data


def run(args: argparse.Namespace) -> int:
    """Build and write the report; ReportError propagates (the callers print it, exit 2)."""
    root = repo.check_repo(Path(args.repo) if args.repo else repo.REPO_ROOT)
    inventory_path = _path(root, args.inventory)
    overrides = dict(inventory.parse_override(item) for item in args.overrides)
    inv = inventory.load_inventory(inventory_path, root, loader=args.loader, overrides=overrides)
    if args.audit is not None:
        audit_path: Path | None = _path(root, args.audit)
        evidence.require_exists(audit_path, "--audit")
    else:
        audit_path = root / "reports" / "audit"
    if args.drills is not None:
        drills_path: Path | None = _path(root, args.drills)
        evidence.require_exists(drills_path, "--drills")
    else:
        drills_path = root / "reports" / "drills"
    if args.peak is not None:
        peak_path = _path(root, args.peak)
        evidence.require_exists(peak_path, "--peak")
    else:
        peak_path = root / "reports" / "peak" / "summary.json"
    prices = cost.load_prices(_path(root, args.prices) if args.prices else None)
    prices = prices.with_assumptions(_assumptions(args.assumptions))
    report = model.build_report(
        inv,
        args.inventory,
        root,
        evidence.load_audit(audit_path),
        evidence.load_drills(drills_path),
        prices,
        evidence.load_peak(peak_path),
    )
    out = Path(args.out)
    out = out if out.is_absolute() else Path.cwd() / out
    written = render.write(report, out)
    for path in (written.html, written.markdown, written.svg):
        if path is not None:
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    e = report.estimate
    print(
        f"monthly: {render.money(e.total_on_demand)} on-demand, {render.money(e.total_savings_plan)} with a "
        f"Savings Plan; composite SLA {report.composite:.3f} %; PCI rows {len(report.matrix)}; "
        f"audited hosts {len(report.audit.hosts)}"
    )
    for problem in report.matrix_problems:
        print(f"warning: PCI matrix: {problem}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
