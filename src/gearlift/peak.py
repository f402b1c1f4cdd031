"""scripts/bench-peak: today's estate and the target under the same peak ramp, side by side.

One run, on the twin (the heavy lock, like every run that starts containers):

1. the twin starts with hosts sized like their instance types (``--cpu-factor``, gearlift.twin.sizing)
   and the scaling service's clock compressed (``--time-scale``);
2. today's estate comes up (the story's phase ``estate``, without its customers) and takes the ramp:
   steps of ``--multiples`` x today's peak (``rehearsal_onprem_peak_rps`` of the rehearsal inventory),
   ``--step-seconds`` each, the load model of gearlift.peakload;
3. the story's provision, bake, deploy, move and cutover build the target and move the shop onto it;
4. the target takes the same ramp through the ALB, then a cool-down at the first step's load for
   ``--cooldown-seconds`` while the group scales back in (its failed requests are
   ``scale_in_failed_requests``); with ``--schedule`` (default) the ramp runs once more after a
   scheduled action raised the group's capacity ahead of it, to show what the schedule adds to
   target tracking alone.

It prints both side by side per step (throughput, p50/p95/p99, error rate, hosts in service, cost
per hour) and the time from the load's rise to new capacity in service, and writes
``reports/peak/summary.json`` and ``reports/peak/peak.svg`` (the design report includes both).
A measurement, not a test: nothing here passes or fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gearlift.peakload import Designs, Mix, StepResult, run_step
from gearlift.story.traffic import Target
from gearlift.twin import sizing
from gearlift.twin.errors import TwinError
from gearlift.twin.twin import REPO_ROOT, Twin, TwinConfig

INVENTORY = REPO_ROOT / "inventories" / "rehearsal"
PEAK_RPS = "rehearsal_onprem_peak_rps"
ONPREM_COST = "rehearsal_onprem_cost_per_hour"
CPU_AT_PEAK = "rehearsal_onprem_cpu_at_peak_percent"
#: build.sh's setting of the CPU each customer request costs (gearlift.shopstandin.Work).
WORK_ENV = "SHOP_WORK_CPU_US"
STANDIN_JAR = REPO_ROOT / "app" / "shop-standin" / "build" / "shop-standin.jar"
OUT = REPO_ROOT / "reports" / "peak"
GROUP = "shop-rehearsal"


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass
class Ramp:
    """One ramp against one front door: its steps, and what the group did meanwhile."""

    name: str
    steps: list[StepResult] = field(default_factory=list)
    cooldown: StepResult | None = None
    hosts_at_start: int | None = None
    scale_out_seconds: float | None = None
    scale_in_seconds: float | None = None
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds since the ramp began, hosts)

    def series(self, key: str) -> list[Any]:
        return [s.summary()[key] for s in self.steps]


def settings(inventory: Path = INVENTORY) -> dict[str, Any]:
    """The rehearsal inventory's values the bench reads (group_vars of all and onprem_app)."""
    merged: dict[str, Any] = {}
    for part in (inventory / "group_vars" / "all" / "main.yml", inventory / "group_vars" / "onprem_app.yml"):
        merged.update(yaml.safe_load(part.read_text(encoding="utf-8")) or {})
    return merged


def peak_rps(values: dict[str, Any]) -> float:
    value = values.get(PEAK_RPS)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise TwinError(
            f"{PEAK_RPS} (today's busiest-hour requests per second) must be a positive number, got {value!r}"
        )
    return float(value)


def work_cpu_us(values: dict[str, Any], factor: float, peak: float) -> int:
    """CPU microseconds each customer request costs the stand-in (gearlift.shopstandin.Work on the twin).

    From today's figures: its app server (``rehearsal_onprem_server_vcpus``) runs at
    ``rehearsal_onprem_cpu_at_peak_percent`` CPU serving ``rehearsal_onprem_peak_rps``, so a request
    costs ``percent/100 x vCPUs / rps`` of a vCPU-second there; on the twin every vCPU is ``factor``
    of a core (gearlift.twin.sizing), so the request costs that share of it too. Both estates then
    serve as many requests per second as their real servers would, and today's saturates where the
    real one does.
    """
    if factor <= 0:
        raise TwinError("the bench sizes hosts like their instance types: --cpu-factor must be more than 0")
    percent = values.get(CPU_AT_PEAK)
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not 0 < percent <= 100:
        raise TwinError(
            f"{CPU_AT_PEAK} (today's app server's CPU at the busiest hour, in percent) must be a number "
            f"in (0, 100], got {percent!r}"
        )
    vcpus = values.get(sizing.ONPREM_VCPUS)
    if not isinstance(vcpus, int) or isinstance(vcpus, bool) or vcpus <= 0:
        raise TwinError(f"{sizing.ONPREM_VCPUS} must be a positive integer, got {vcpus!r}")
    micros = round(percent / 100 * vcpus * factor * 1_000_000 / peak)
    if not 1 <= micros <= 1_000_000:
        raise TwinError(
            f"{CPU_AT_PEAK}={percent:g}, {sizing.ONPREM_VCPUS}={vcpus}, --cpu-factor {factor:g} and "
            f"{PEAK_RPS}={peak:g} give {micros} us of CPU per request: outside 1..1000000"
        )
    return micros


def artifact_work_cpu_us(jar: Path) -> int | None:
    """The CPU per request built into the stand-in's jar (0 without; None when the jar is unreadable)."""
    try:
        with zipfile.ZipFile(jar) as archive:
            try:
                text = archive.read("gearlift/shopstandin/work.properties").decode()
            except KeyError:
                return 0
    except (OSError, zipfile.BadZipFile):
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "work.cpu.us" and value.strip().isdigit():
            return int(value.strip())
    return None


def hourly_cost(values: dict[str, Any], hosts: int | None, prices: dict[str, Any]) -> float | None:
    """The target's hourly price with ``hosts`` app hosts: EC2 on-demand plus the database (data/prices.json)."""
    if hosts is None:
        return None
    ec2 = prices["ec2_hourly"].get(values.get("gearlift_instance_type", ""), {}).get("usd")
    rds = prices["rds_mysql_hourly"].get(values.get("gearlift_db_instance_class", ""), {})
    db = rds.get("multi_az" if values.get("gearlift_db_multi_az", True) else "single_az")
    if ec2 is None or db is None:
        return None
    return round(hosts * float(ec2) + float(db), 4)


def parse_multiples(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--multiples: numbers separated by commas, not {text!r}") from None
    if not values or any(v <= 0 for v in values) or values != sorted(values):
        raise argparse.ArgumentTypeError(f"--multiples: positive, rising numbers (e.g. 0.5,1,2,3), not {text!r}")
    return values


class Group:
    """The Auto Scaling group through the emulator's API: hosts serving (healthy in its target group)."""

    def __init__(self, clients: Callable[[str], Any], name: str = GROUP) -> None:
        self.clients = clients
        self.name = name

    def describe(self) -> dict[str, Any]:
        groups = self.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])
        found = groups["AutoScalingGroups"]
        if not found:
            raise TwinError(f"no Auto Scaling group {self.name}")
        return dict(found[0])

    def serving(self) -> int | None:
        try:
            group = self.describe()
            tgs = group.get("TargetGroupARNs") or []
            if not tgs:
                return sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService")
            health = self.clients("elbv2").describe_target_health(TargetGroupArn=tgs[0])["TargetHealthDescriptions"]
            return sum(1 for h in health if h.get("TargetHealth", {}).get("State") == "healthy")
        except Exception:  # a sample missed, not a failed bench
            return None


def run_ramp(
    name: str,
    target: Target,
    multiples: Sequence[float],
    peak: float,
    step_seconds: float,
    *,
    hosts: Callable[[], int | None],
    cooldown_seconds: float = 0,
    prefix: str,
    stop: threading.Event,
    log: Callable[[str], None] = _say,
) -> Ramp:
    """The ramp's steps in order (then the cool-down), with the hosts serving sampled throughout."""
    ramp = Ramp(name)
    ramp.hosts_at_start = hosts()
    began = time.monotonic()
    rise: float | None = None
    designs = Designs()
    offset = 0

    def sampled() -> int | None:
        count = hosts()
        if count is not None:
            ramp.timeline.append((round(time.monotonic() - began, 1), count))
        return count

    for multiple in multiples:
        if stop.is_set():
            break
        if rise is None and multiple > 1:
            rise = time.monotonic() - began
        rate = peak * multiple
        log(f"peak: {name}: {multiple:g}x today's peak = {rate:.1f} requests/s for {step_seconds:.0f} s")
        step = run_step(
            target,
            multiple,
            rate,
            step_seconds,
            designs=designs,
            prefix=prefix,
            offset=offset,
            hosts=sampled,
            stop=stop,
        )
        offset += step.sent + 1
        ramp.steps.append(step)
        log(f"peak: {name}: {_line(step.summary())}")
    if cooldown_seconds > 0 and not stop.is_set():
        rate = peak * multiples[0]
        log(f"peak: {name}: cool-down at {rate:.1f} requests/s for {cooldown_seconds:.0f} s (scale-in)")
        ramp.cooldown = run_step(
            target,
            multiples[0],
            rate,
            cooldown_seconds,
            designs=designs,
            prefix=prefix,
            offset=offset,
            hosts=sampled,
            stop=stop,
        )
        log(f"peak: {name}: cool-down: {_line(ramp.cooldown.summary())}")
    start = ramp.hosts_at_start
    if start is not None and rise is not None:
        more = next((t for t, n in ramp.timeline if t >= rise and n > start), None)
        ramp.scale_out_seconds = None if more is None else round(more - rise, 1)
        if more is not None:
            peak_hosts = max(n for _, n in ramp.timeline)
            back = next((t for t, n in ramp.timeline if t > more and n < peak_hosts), None)
            ramp.scale_in_seconds = None if back is None else round(back - more, 1)
    return ramp


def _line(s: dict[str, Any]) -> str:
    return (
        f"{s['rps']:.1f} req/s ok, p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms, "
        f"errors {s['errors']}/{s['sent'] + s.get('unsent', 0)} ({s['error_rate'] * 100:.2f} %; {s.get('unsent', 0)} "
        f"never sent), hosts {s['hosts_in_service']}"
    )


def summarize(
    multiples: Sequence[float],
    peak: float,
    today: Ramp,
    target: Ramp,
    scheduled: Ramp | None,
    values: dict[str, Any],
    prices: dict[str, Any],
    config: dict[str, Any],
) -> dict[str, Any]:
    """reports/peak/summary.json."""

    def side(ramp: Ramp, cost: Callable[[int | None], float | None]) -> dict[str, Any]:
        steps = [s.summary() for s in ramp.steps]
        return {
            "rps": [s["rps"] for s in steps],
            "p50_ms": [s["p50_ms"] for s in steps],
            "p95_ms": [s["p95_ms"] for s in steps],
            "p99_ms": [s["p99_ms"] for s in steps],
            "error_rate": [s["error_rate"] for s in steps],
            "hosts_in_service": [s["hosts_in_service"] for s in steps],
            "cost_per_hour_usd": [cost(s["hosts_in_service"]) for s in steps],
            "hosts_at_start": ramp.hosts_at_start,
            "scale_out_seconds": ramp.scale_out_seconds,
            "scale_in_seconds": ramp.scale_in_seconds,
            "cooldown": ramp.cooldown.summary() if ramp.cooldown is not None else None,
            "timeline": ramp.timeline,
            "steps": steps,
        }

    onprem_cost = values.get(ONPREM_COST)
    today_side = side(today, lambda _: float(onprem_cost) if isinstance(onprem_cost, int | float) else None)
    target_side = side(target, lambda n: hourly_cost(values, n, prices))
    summary: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_multiple": list(multiples),
        "peak_rps": peak,
        "today": today_side,
        "target": target_side,
        "scale_out_seconds": target.scale_out_seconds,
        "scale_in_failed_requests": target.cooldown.errors if target.cooldown is not None else None,
        "config": config,
    }
    if onprem_cost is None:
        summary["today"]["cost_note"] = f"{ONPREM_COST} is not in the rehearsal inventory"
    if scheduled is not None:
        summary["target_scheduled"] = side(scheduled, lambda n: hourly_cost(values, n, prices))
    summary["verdict"] = verdict(summary)
    return summary


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """Issue 19's acceptance read from the figures (printed, never asserted): each check and its numbers."""
    multiples = summary["load_multiple"]
    out: dict[str, Any] = {}
    if 3 in multiples:
        i = multiples.index(3)
        today, target = summary["today"]["p95_ms"][i], summary["target"]["p95_ms"][i]
        err = summary["target"]["error_rate"][i]
        out["p95_at_3x_at_most_half_of_today"] = (
            None if today is None or target is None else {"ok": target <= today / 2, "today": today, "target": target}
        )
        out["error_rate_at_3x_at_most_0.1_percent"] = {"ok": err <= 0.001, "target": err}
    failed = summary["scale_in_failed_requests"]
    out["scale_in_with_0_failed_requests"] = None if failed is None else {"ok": failed == 0, "failed": failed}
    scheduled = summary.get("target_scheduled")
    if scheduled is not None:
        out["schedule_raises_capacity_before_the_ramp"] = {
            "ok": (scheduled["hosts_at_start"] or 0) > (summary["target"]["hosts_at_start"] or 0),
            "hosts_at_start_scheduled": scheduled["hosts_at_start"],
            "hosts_at_start_tracking_only": summary["target"]["hosts_at_start"],
        }
    return out


def table(summary: dict[str, Any]) -> list[str]:
    """The side-by-side table printed at the end."""
    sides = [("today", summary["today"]), ("target", summary["target"])]
    if "target_scheduled" in summary:
        sides.append(("target+schedule", summary["target_scheduled"]))
    lines = [f"peak = {summary['peak_rps']:g} requests/s (today's busiest hour)"]
    head = f"{'load':>6} | " + " | ".join(f"{n:^44}" for n, _ in sides)
    sub = f"{'':>6} | " + " | ".join(
        f"{'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'err %':>6} {'hosts':>5} {'$/h':>6}" for _ in sides
    )
    lines += [head, sub]
    for i, m in enumerate(summary["load_multiple"]):
        cells = []
        for _, s in sides:
            cost = s["cost_per_hour_usd"][i]
            cells.append(
                f"{s['rps'][i]:>7.1f} {_ms(s['p50_ms'][i])} {_ms(s['p95_ms'][i])} {_ms(s['p99_ms'][i])} "
                f"{s['error_rate'][i] * 100:>6.2f} {s['hosts_in_service'][i] or '-':>5} "
                f"{'-' if cost is None else f'{cost:.3f}':>6}"
            )
        lines.append(f"{m:>5g}x | " + " | ".join(cells))
    lines.append(f"scale-out: {summary['scale_out_seconds']} s from the load's rise to a new host serving")
    lines.append(f"scale-in: {summary['scale_in_failed_requests']} failed request(s) during the cool-down")
    for name, check in summary["verdict"].items():
        lines.append(f"check {name}: {check}")
    return lines


def _ms(value: float | None) -> str:
    return f"{'-' if value is None else f'{value:.0f}':>6}"


def svg(summary: dict[str, Any], width: int = 640, height: int = 320) -> str:
    """p95 latency per load step, today vs the target (and the schedule), hosts serving as labels."""
    sides = [("today", summary["today"], "#b03a2e"), ("target", summary["target"], "#1f618d")]
    if "target_scheduled" in summary:
        sides.append(("target+schedule", summary["target_scheduled"], "#117a65"))
    multiples = summary["load_multiple"]
    values = [v for _, s, _ in sides for v in s["p95_ms"] if v is not None]
    top = max(values) * 1.1 if values else 1.0
    left, right, upper, lower = 60, 20, 30, 40
    w, h = width - left - right, height - upper - lower

    def x(i: int) -> float:
        return left + (w * i / max(1, len(multiples) - 1))

    def y(v: float) -> float:
        return upper + h - h * v / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        ' font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16">p95 latency (ms) per load step, x today\'s peak'
        f" ({summary['peak_rps']:g} req/s)</text>",
        f'<line x1="{left}" y1="{upper + h}" x2="{left + w}" y2="{upper + h}" stroke="#444"/>',
        f'<line x1="{left}" y1="{upper}" x2="{left}" y2="{upper + h}" stroke="#444"/>',
        f'<text x="4" y="{upper + 4}">{top:.0f}</text><text x="4" y="{upper + h}">0</text>',
    ]
    for i, m in enumerate(multiples):
        parts.append(f'<text x="{x(i) - 8:.0f}" y="{upper + h + 16}">{m:g}x</text>')
    for n, (name, s, colour) in enumerate(sides):
        points = [(x(i), y(v)) for i, v in enumerate(s["p95_ms"]) if v is not None]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, v in enumerate(s["p95_ms"]):
            if v is not None and s["hosts_in_service"][i] is not None:
                parts.append(
                    f'<text x="{x(i) + 3:.0f}" y="{y(v) - 4:.0f}" fill="{colour}">{s["hosts_in_service"][i]}h</text>'
                )
        parts.append(f'<text x="{left + 10 + 140 * n}" y="{height - 6}" fill="{colour}">&#9632; {name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(summary: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    data, plot = out / "summary.json", out / "peak.svg"
    data.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot.write_text(svg(summary), encoding="utf-8")
    return data, plot


# ------------------------------------------------------------------------------ the run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench-peak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--multiples", type=parse_multiples, default=[0.5, 1.0, 2.0, 3.0], help="load steps, x today's peak")
    p.add_argument("--step-seconds", type=float, default=60.0, help="seconds per load step (default %(default)s)")
    p.add_argument(
        "--cooldown-seconds", type=float, default=240.0, help="seconds of the first step's load after the ramp"
    )
    p.add_argument("--cpu-factor", type=float, default=0.25, help="vCPU factor of every host (gearlift.twin.sizing)")
    p.add_argument("--time-scale", type=float, default=6.0, help="AWS seconds per clock second for the scaling service")
    p.add_argument("--no-schedule", dest="schedule", action="store_false", help="skip the scheduled-scaling ramp")
    p.add_argument("--out", type=Path, default=OUT)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gearlift.cli import _build_standin
    from gearlift.story.phases import select
    from gearlift.story.runner import STEPS, Story, execute

    values = settings()
    try:
        peak = peak_rps(values)
        factor = sizing.cpu_factor({sizing.CPU_FACTOR_ENV: str(args.cpu_factor)})
        scale = sizing.time_scale({sizing.TIME_SCALE_ENV: str(args.time_scale)})
        work = work_cpu_us(values, factor, peak)
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prices = json.loads((REPO_ROOT / "src" / "gearlift" / "report" / "data" / "prices.json").read_text())
    config = TwinConfig(cpu_factor=factor, time_scale=scale)
    twin = Twin(config, log=_say)
    stop = threading.Event()

    def interrupt(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    ramps: dict[str, Ramp] = {}
    started = time.monotonic()

    def estate(s: Story) -> None:
        """Today's estate, alone under the ramp (the story's customers stay home)."""
        s.onprem = s.twin.onprem_up(orders=200)
        ramps["today"] = run_ramp(
            "today",
            Target(s.onprem.app_url),
            args.multiples,
            peak,
            args.step_seconds,
            hosts=lambda: 1,
            prefix="peak-today",
            stop=stop,
        )

    _say(
        f"peak: each customer request costs the stand-in {work} us of CPU ({values[CPU_AT_PEAK]:g} % of "
        f"{values[sizing.ONPREM_VCPUS]} vCPUs at {peak:g} requests/s today, on hosts of {factor:g} core per vCPU)"
    )
    # Every build of the stand-in in this run (here, the on-prem estate's, the bake's) carries the cost.
    os.environ[WORK_ENV] = str(work)
    try:
        twin.up()
        twin.start_loop()
        built = artifact_work_cpu_us(STANDIN_JAR) if _build_standin(twin) else None
        if built != work:
            _say(f"peak: the stand-in shop was not built with its CPU cost ({built} us): no comparison")
            return 2
        story = Story(
            twin=twin,
            repo=REPO_ROOT,
            plan=select(None, None, "cutover"),
            log=_say,
            cancel=stop,
            work=config.state_dir / "peak",
        )
        execute(story, steps={**STEPS, "estate": estate})
        failed = [r.name for r in story.records if r.status != "passed"]
        _say("peak: the scoreboard above counts no customers (the bench runs its own load): only its phases matter")
        if failed or "today" not in ramps:
            _say(f"peak: the story did not reach the target ({', '.join(failed) or 'no ramp on today'}): no comparison")
            return 1
        alb = story.alb()
        if alb is None:
            _say("peak: no ALB front door after the cutover")
            return 1
        assert twin.clients is not None
        group = Group(twin.clients)
        ramps["target"] = run_ramp(
            "target",
            alb,
            args.multiples,
            peak,
            args.step_seconds,
            hosts=group.serving,
            cooldown_seconds=args.cooldown_seconds,
            prefix="peak-target",
            stop=stop,
        )
        scheduled = None
        if args.schedule and not stop.is_set():
            scheduled = scheduled_ramp(twin, group, alb, args, peak, stop)
        result = summarize(
            args.multiples,
            peak,
            ramps["today"],
            ramps["target"],
            scheduled,
            values,
            prices,
            {
                "cpu_factor": factor,
                "work_cpu_us": work,
                "cpu_at_peak_percent": values[CPU_AT_PEAK],
                "time_scale": scale,
                "step_seconds": args.step_seconds,
                "cooldown_seconds": args.cooldown_seconds,
                # the story's phases up to the cutover (its scoreboard counts no customers: the bench runs none)
                "story_phases": {r.name: r.status for r in story.records},
                "mix": Mix().weights(),
                "total_seconds": round(time.monotonic() - started, 1),
            },
        )
    except TwinError as exc:
        _say(f"error: {exc}")
        return 2
    finally:
        twin.down()
        # the artifact the next rehearsal bakes is the default one again (no CPU cost built in)
        os.environ.pop(WORK_ENV, None)
        _build_standin(twin)
    for line in table(result):
        _say(line)
    data, plot = write(result, args.out)
    _say(f"wrote {data} and {plot}")
    return 0


def scheduled_ramp(
    twin: Twin, group: Group, alb: Target, args: argparse.Namespace, peak: float, stop: threading.Event
) -> Ramp:
    """The ramp again, after a one-time scheduled action raised the group to its maximum ahead of it."""
    assert twin.clients is not None
    asg = twin.clients("autoscaling")
    described = group.describe()
    low, high = int(described["MinSize"]), int(described["MaxSize"])
    at = time.time() + 5
    asg.put_scheduled_update_group_action(
        AutoScalingGroupName=group.name,
        ScheduledActionName="bench-peak-ahead",
        StartTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
        MinSize=high,
        DesiredCapacity=high,
    )
    _say(f"peak: scheduled action: capacity {high} from {time.strftime('%H:%M:%S', time.gmtime(at))} UTC")
    deadline = time.monotonic() + 600
    while not stop.is_set() and time.monotonic() < deadline and (group.serving() or 0) < high:
        time.sleep(3)
    try:
        return run_ramp(
            "target+schedule",
            alb,
            args.multiples,
            peak,
            args.step_seconds,
            hosts=group.serving,
            prefix="peak-sched",
            stop=stop,
        )
    finally:
        asg.delete_scheduled_action(AutoScalingGroupName=group.name, ScheduledActionName="bench-peak-ahead")
        asg.update_auto_scaling_group(AutoScalingGroupName=group.name, MinSize=low)


if __name__ == "__main__":
    sys.exit(main())
