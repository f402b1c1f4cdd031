"""The whole migration rehearsed against the twin, phase by phase, ending with the customer's scoreboard.

Each phase is one function below (``STEPS`` maps the names of ``phases.PHASES`` to them). The
runner only sequences the playbooks a user runs against a real account - with the rehearsal
inventory (plus the twin's on-premises inventory where the phase works on the estate) - and reads
what they leave: the twin's AWS API, the RDS stand-in, the reports the playbooks write. Nothing in
a playbook knows it runs here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.story.phases import PHASES, Plan
from gearlift.story.scoreboard import (
    FAILED_REQUEST_PHASES,
    PhaseRecord,
    PlaybookRun,
    Scoreboard,
    build,
    render,
    write,
)
from gearlift.story.shoppers import ShopperLoop
from gearlift.story.traffic import OrderLoop, Probe, Target
from gearlift.twin import podman
from gearlift.twin.errors import TwinError
from gearlift.twin.onprem import OnPremEstate
from gearlift.twin.runner import RunResult, run_playbook
from gearlift.twin.twin import Twin

Log = Callable[[str], None]

NAME = "shop-rehearsal"  # gearlift_project-gearlift_environment of inventories/rehearsal
ENVIRONMENT = "rehearsal"  # the fleet inventory's env_<gearlift:environment> group
INVENTORY = "inventories/rehearsal"
GOLDEN_PARAMETER = "/gearlift/shop/rehearsal/golden-ami-id"
#: Extra vars for every playbook: none - the story runs the rehearsal inventory's settings as they are.
EXTRA: dict[str, Any] = {}
LEGACY_ORDERS = 500
ORDER_PREFIX = "story"
MIGRATION_STATE = "/var/lib/gearlift-migration"
#: The files move's records on the site's app server (roles/files_migration, files_migration_state_dir).
FILES_COPY_RECORD = f"{MIGRATION_STATE}/files-copy.json"
FILES_CUTOVER_RECORD = f"{MIGRATION_STATE}/files-cutover.json"


class PhaseFailed(Exception):
    """A phase did not reach its goal: the message says what the customer would see."""


@dataclass
class Story:
    twin: Twin
    repo: Path
    plan: Plan
    log: Log
    cancel: threading.Event = field(default_factory=threading.Event)
    work: Path = field(default_factory=lambda: Path(".twin") / "story")
    board: Scoreboard = field(default_factory=Scoreboard)
    records: list[PhaseRecord] = field(default_factory=list)
    onprem: OnPremEstate | None = None
    orders: OrderLoop | None = None
    shoppers: ShopperLoop | None = None
    cut_over: bool = False
    finished: bool = False
    runs: int = 0
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S", time.gmtime()))

    # ------------------------------------------------------------ helpers
    @property
    def current(self) -> PhaseRecord:
        return self.records[-1]

    def play(self, playbook: str, tags: str | None = None, onprem: bool = False, **extra: Any) -> RunResult:
        """Run one playbook of the current phase; its totals go on the phase's record; PhaseFailed if not ok."""
        self.runs += 1
        inventories = [INVENTORY]
        if onprem:
            if self.onprem is None:
                raise PhaseFailed(f"{playbook} needs the on-premises estate (phase estate)")
            inventories.append(str(self.onprem.inventory))
        result = run_playbook(
            self.repo,
            playbook,
            inventories,
            self.work / f"runner-{self.runs}",
            self.twin.aws_env,
            self.log,
            extravars={**EXTRA, **extra},
            tags=tags,
            cancel=self.cancel,
        )
        totals = result.totals()
        self.current.playbooks.append(
            PlaybookRun(
                playbook=playbook,
                tags=tags,
                status=result.status,
                seconds=round(result.seconds, 1),
                ok=totals.get("ok", 0),
                changed=totals.get("changed", 0),
                failed=totals.get("failures", 0),
                unreachable=totals.get("dark", 0),
                skipped=totals.get("skipped", 0),
            )
        )
        if result.status == "canceled" or self.cancel.is_set():
            raise KeyboardInterrupt
        if not result.ok:
            # The last failure stopped the run (earlier ones may have been rescued by a block).
            last = result.failures[-1] if result.failures else f"rc={result.rc}"
            raise PhaseFailed(f"{playbook}{' --tags ' + tags if tags else ''} failed ({result.status}): {last}")
        return result

    def clients(self, service: str) -> Any:
        if self.twin.clients is None:
            raise PhaseFailed("the twin is not up")
        return self.twin.clients(service)

    def onprem_record(self, path: str, host: str = "app") -> dict[str, Any]:
        """A JSON record the move left on the site's app (or db) server; {"missing": why} when there is none."""
        assert self.onprem is not None
        container = self.onprem.db_container if host == "db" else self.onprem.app_container
        read = podman.exec_(container, "cat", path, check=False)
        if read.returncode != 0:
            return {"missing": f"{path} on {container}: {read.stderr.strip()}"}
        data = json.loads(read.stdout)
        return data if isinstance(data, dict) else {"unexpected": data}

    def alb(self) -> Target | None:
        """The ALB's HTTPS listener on loopback, from the twin's endpoints.json (None: no ALB yet)."""
        path = self.twin.layout.endpoints_file
        if not path.exists():
            return None
        balancers: dict[str, dict[str, int]] = json.loads(path.read_text(encoding="utf-8")).get("load_balancers", {})
        ports = balancers.get(NAME) or (next(iter(balancers.values())) if len(balancers) == 1 else None)
        if not ports or "443" not in ports:
            return None
        cafile = str(self.twin.layout.state_dir / "tls-alb" / "ca.crt")
        return Target(f"https://127.0.0.1:{ports['443']}", cafile=cafile)

    def alb_answer(self) -> str | None:
        """The ALB's answer to GET /health: a status code, an exception name (no answer), None (no ALB)."""
        target = self.alb()
        if target is None:
            return None
        status, _ = target.request("GET", "/health", timeout=10)
        return status

    def alb_status(self) -> int | None:
        answer = self.alb_answer()
        return int(answer) if answer is not None and answer.isdigit() else None

    def wait_alb_200(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: int | None = None
        while time.monotonic() < deadline and not self.cancel.is_set():
            last = self.alb_status()
            if last == 200:
                return
            time.sleep(2)
        raise PhaseFailed(
            f"the shop does not answer 200 on /health through the ALB after {timeout:.0f} s (last {last})"
        )

    def target_sql(self, sql: str) -> str:
        assert self.twin.rds is not None
        container = self.twin.rds.container_name(NAME)
        return podman.run("exec", "-i", container, "mariadb", "-N", "-B", input_bytes=sql.encode()).stdout

    def wait_databases(self, timeout: float = 240) -> None:
        """Every RDS instance of the control plane accepts logins (as `gearlift rehearse` waits)."""
        ids = {d["DBInstanceIdentifier"] for d in self.clients("rds").describe_db_instances()["DBInstances"]}
        self.twin.wait_for(
            lambda: ids <= set(self.twin.endpoints.databases), timeout, f"database(s) {sorted(ids)} to accept logins"
        )

    def failed_requests(self, phase: str, probe: Probe | None) -> None:
        """failed_requests.<phase>: the customer's orders that failed in it, plus the ALB probe's failures."""
        counts = [loop.failed(phase) for loop in (self.orders, self.shoppers) if loop is not None]
        from_orders = None if all(c is None for c in counts) else sum(c or 0 for c in counts)
        if from_orders is None and probe is None:
            self.board.missing(f"failed_requests.{phase}", "no traffic ran during the phase")
            return
        total = (from_orders or 0) + (probe.failed if probe is not None else 0)
        self.board.measure(f"failed_requests.{phase}", total)
        detail: dict[str, Any] = {"orders_failed": from_orders}
        if self.orders is not None and phase in self.orders.by_phase:
            detail["orders_statuses"] = dict(self.orders.by_phase[phase].statuses)
        if self.shoppers is not None and phase in self.shoppers.by_phase:
            detail["shoppers_statuses"] = dict(self.shoppers.by_phase[phase].statuses)
        if probe is not None:
            detail["alb_probe"] = {
                "sent": probe.sent,
                "failed_after_first_200": probe.failed,
                "not_serving_yet": probe.before_first_ok,
                "statuses": dict(probe.statuses),
                "failures": probe.failures[:10],
            }
        self.board.detail.setdefault("failed_requests", {})[phase] = detail

    # ------------------------------------------------------- the end
    def finish(self) -> None:
        """Stop the orders, count what was lost, ask the ALB, price the design (once)."""
        if self.finished:
            return
        self.finished = True
        if self.shoppers is not None:
            self.shoppers.stop()
        self._count_orders()
        self._count_uploads_and_carts()
        answer = self.alb_answer()
        if answer is None:
            self.board.missing("shop_status_through_alb", "no ALB with an HTTPS listener (provision did not run)")
        elif not answer.isdigit():
            self.board.missing("shop_status_through_alb", f"the ALB's HTTPS listener gave no HTTP answer ({answer})")
        else:
            self.board.measure("shop_status_through_alb", int(answer))
        self._cost()
        for phase in FAILED_REQUEST_PHASES:
            if f"failed_requests.{phase}" not in self.board.values:
                self.board.why_not.setdefault(f"failed_requests.{phase}", f"phase {phase} did not run to its end")

    def _count_orders(self) -> None:
        if self.orders is None:
            for key in ("orders_confirmed", "orders_lost"):
                self.board.missing(key, "no order loop ran (phase estate not in this run)")
            return
        self.orders.stop()
        confirmed = set(self.orders.confirmed) | set(self.shoppers.orders if self.shoppers is not None else ())
        self.board.measure("orders_confirmed", len(confirmed))
        query = f"SELECT order_ref FROM shop.orders WHERE order_ref LIKE '{ORDER_PREFIX}-%'"  # noqa: S608 - constant
        try:
            if self.cut_over:
                where, rows = "target (RDS stand-in)", self.target_sql(query)
            else:
                assert self.onprem is not None
                where, rows = "source (on-premises; no cutover in this run)", self.onprem.sql(query)
        except (TwinError, OSError, AssertionError) as exc:
            self.board.missing("orders_lost", f"the database could not be read: {exc}")
            return
        stored = [line.strip() for line in rows.splitlines() if line.strip()]
        missing = sorted(confirmed - set(stored))
        self.board.measure("orders_lost", len(missing))
        self.board.detail["orders"] = {
            "checked_in": where,
            "confirmed": len(confirmed),
            "confirmed_with_id": sum(1 for v in self.orders.confirmed.values() if v is not None),
            "from_cart_checkouts": len(self.shoppers.orders) if self.shoppers is not None else 0,
            "stored": len(stored),
            "stored_twice": len(stored) - len(set(stored)),
            "never_confirmed": len(self.orders.unconfirmed),
            "lost_refs": missing[:20],
            "loop_seconds": round(self.orders.seconds, 1),
            "first_failures": self.orders.failures[:20],
        }

    def _count_uploads_and_carts(self) -> None:
        """Every design the shop confirmed must be served byte-identical by the front door of the end."""
        if self.shoppers is None:
            for key in ("uploads_confirmed", "uploads_lost", "carts_lost", "carts_left_at_switch"):
                self.board.missing(key, "no shoppers ran (phase estate not in this run)")
            return
        shoppers = self.shoppers
        self.board.measure("uploads_confirmed", len(shoppers.uploads))
        self.board.measure("carts_lost", sum(shoppers.carts_lost.values()))
        self.board.measure("carts_left_at_switch", sum(shoppers.carts_left_at_switch.values()))
        door = shoppers.target
        missing = shoppers.missing_uploads(door)
        self.board.measure("uploads_lost", len(missing))
        self.board.detail["uploads"] = {
            "checked_through": "the ALB" if self.cut_over else "the legacy shop (no cutover in this run)",
            "confirmed": len(shoppers.uploads),
            "confirmed_bytes": shoppers.upload_bytes,
            "lost_ids": missing[:20],
        }
        self.board.detail["carts"] = {
            "lost_by_phase": dict(shoppers.carts_lost),
            "left_at_switch_by_phase": dict(shoppers.carts_left_at_switch),
            "checkouts_confirmed_rows": len(shoppers.orders),
            "first_failures": shoppers.failures[:20],
            "loop_seconds": round(shoppers.seconds, 1),
        }

    def _cost(self) -> None:
        try:
            from gearlift.report import cost, inputs, inventory, repo

            inv = inventory.load_inventory(self.repo / INVENTORY, self.repo)
            estimate = cost.estimate(
                inputs.design_inputs(inv, repo.load_guards(self.repo)),
                cost.load_prices(None),
                repo.waf_rule_count(self.repo),
            )
        except Exception as exc:  # the report's own errors, named
            self.board.missing("monthly_cost_usd", f"the report's cost model failed: {exc}")
            return
        self.board.measure("monthly_cost_usd", round(estimate.total_on_demand, 2))


# ---------------------------------------------------------------------------- the phases


def estate(s: Story) -> None:
    """Today's estate up and serving; the customer's order loop starts and keeps running."""
    s.onprem = s.twin.onprem_up(orders=LEGACY_ORDERS)
    s.orders = OrderLoop(Target(s.onprem.app_url), prefix=ORDER_PREFIX).start()
    s.shoppers = ShopperLoop(Target(s.onprem.app_url), prefix=f"{ORDER_PREFIX}-cart").start()
    deadline = time.monotonic() + 60
    while len(s.orders.confirmed) < 5 and time.monotonic() < deadline and s.orders.running:
        time.sleep(0.5)
    if len(s.orders.confirmed) < 5:
        raise PhaseFailed(
            f"the legacy shop confirmed {len(s.orders.confirmed)} order(s) in 60 s: {s.orders.failures[:3]}"
        )


def shop_domain(repo: Path) -> str:
    """The shop's name in the rehearsal inventory (``gearlift_shop_domain``; '' without one)."""
    import yaml

    settings = yaml.safe_load((repo / INVENTORY / "group_vars" / "all" / "main.yml").read_text(encoding="utf-8"))
    return str((settings or {}).get("gearlift_shop_domain") or "")


def follow_the_name(s: Story) -> None:
    """From now on the customers reach the shop by its name (the twin answers Route 53's zones)."""
    domain = shop_domain(s.repo)
    if not domain:
        return
    resolver = s.twin.name_resolver()
    cafile = str(s.twin.layout.state_dir / "tls-alb" / "ca.crt")

    def door() -> Target:
        url = resolver.url(domain)
        return Target(url, cafile=cafile if url.startswith("https:") else None)

    door()  # the name leads to a front door now, or the phase fails here
    for loop in (s.orders, s.shoppers):
        if loop is not None:
            loop.follow(door)
    s.log(f"the customers reach the shop by its name {domain} (Route 53, answered by the twin)")


def provision(s: Story) -> None:
    s.play("site.yml")
    s.wait_databases()
    if s.orders is not None:
        try:
            follow_the_name(s)
        except (LookupError, OSError, ValueError) as exc:
            raise PhaseFailed(f"after site.yml the shop's name leads nowhere the customers can reach: {exc}") from exc


def bake(s: Story) -> None:
    s.play("playbooks/bake_ami.yml")
    ami = s.clients("ssm").get_parameter(Name=GOLDEN_PARAMETER)["Parameter"]["Value"]
    image = s.clients("ec2").describe_images(ImageIds=[ami])["Images"][0]
    text = {t["Key"]: t["Value"] for t in image.get("Tags", [])}.get("gearlift:audit", "")
    found = {k: int(v) for k, v in re.findall(r"\b(pass|fail|skipped)=(\d+)", text)}
    s.board.detail["golden_image"] = {"id": ami, "audit": text}
    for key in ("pass", "fail", "skipped"):
        if key in found:
            s.board.measure(f"audit.{key}", found[key])
        else:
            s.board.missing(f"audit.{key}", f"the golden image {ami} carries no audit figure ({text!r})")


def deploy(s: Story) -> None:
    target = s.alb()
    if target is None:
        raise PhaseFailed("no ALB with an HTTPS listener in the twin's endpoints.json")
    with Probe(target) as probe:
        s.play("playbooks/deploy.yml")
        s.wait_alb_200(300)
    s.failed_requests("deploy", probe)


def move(s: Story) -> None:
    if shop_domain(s.repo):
        # Ahead of the move: customers' resolvers keep the legacy answer only briefly from now on.
        s.play("playbooks/dns.yml", tags="lower_ttl")
    s.play("playbooks/migrate_db.yml", onprem=True)
    # The designs on the app server's disk: first copy and delta passes onto EFS while the shop runs.
    s.play("playbooks/migrate_files.yml", onprem=True)
    s.board.detail["files_copy"] = s.onprem_record(FILES_COPY_RECORD)


def cutover(s: Story) -> None:
    s.play("playbooks/migrate_db.yml", tags="cutover", onprem=True)
    # The upload directory becomes a link to EFS (final delta, every file verified) before the name moves,
    # so customers still on the legacy front door write where the fleet reads.
    s.play("playbooks/migrate_files.yml", tags="cutover", onprem=True)
    files = s.board.detail["files_cutover"] = s.onprem_record(FILES_CUTOVER_RECORD)
    if files.get("status") != "done":
        raise PhaseFailed(f"the designs' cutover is not recorded done on the site's app server: {files}")
    s.cut_over = True
    data = s.onprem_record(f"{MIGRATION_STATE}/cutover.json", host="db")
    if "read_only_seconds" in data:
        s.board.measure("read_only_window_s", round(float(data["read_only_seconds"]), 2))
        s.board.detail["cutover"] = data
    else:
        s.board.missing("read_only_window_s", f"no read-only window recorded: {data}")
    alb = s.alb()
    if s.orders is not None and alb is not None and s.alb_status() == 200:
        before = len(s.orders.confirmed)
        if shop_domain(s.repo):
            s.play("playbooks/dns.yml", tags="cutover")  # the name now leads to the ALB
            s.log("cutover: the shop's name leads to the ALB; customers follow it")
        else:
            for loop in (s.orders, s.shoppers):
                if loop is not None:
                    loop.switch(alb)
            s.log("cutover: no name in the inventory: the customers are sent to the ALB directly")
        deadline = time.monotonic() + 90
        while len(s.orders.confirmed) < before + 10 and time.monotonic() < deadline and s.orders.running:
            time.sleep(0.5)
        through_alb = len(s.orders.confirmed) - before
        s.board.detail["orders_through_alb_after_switch"] = through_alb
        if through_alb < 10:
            raise PhaseFailed(
                f"after the switch to the ALB the shop confirmed {through_alb} order(s) in 90 s: "
                f"{s.orders.failures[-3:]}"
            )
    elif s.orders is not None:
        s.log("cutover: the ALB does not serve the shop (deploy not in this run): orders stay on the legacy front door")
    if s.orders is not None:
        s.failed_requests("cutover", None)


def patch(s: Story) -> None:
    target = s.alb()
    if target is None:
        raise PhaseFailed("no ALB with an HTTPS listener in the twin's endpoints.json")
    with Probe(target) as probe:
        s.play("playbooks/patch.yml", fleet_patch_run=f"story-{s.stamp}")
    s.failed_requests("patch", probe)


def restore_drill(s: Story) -> None:
    started = time.time()
    # A recovery point first (what the nightly backup job does), then the drill from it.
    s.play(
        "playbooks/restore_drill.yml", onprem=True, db_migration_drill_new_point=True, db_migration_drill_restore=False
    )
    s.play("playbooks/restore_drill.yml", onprem=True)
    reports = sorted(
        (p for p in (s.repo / "reports").glob("restore-drill-*.json") if p.stat().st_mtime >= started - 1),
        key=lambda p: p.stat().st_mtime,
    )
    if not reports:
        raise PhaseFailed("the drill wrote no reports/restore-drill-*.json")
    data = json.loads(reports[-1].read_text(encoding="utf-8"))
    s.board.measure("rpo_s", float(data["rpo_seconds"]))
    s.board.measure("rto_s", float(data["rto_seconds"]))
    s.board.detail["restore_drill"] = {"report": str(reports[-1].relative_to(s.repo)), "equal": data.get("equal")}


def fleet_audit(s: Story) -> Path:
    """playbooks/audit.yml on the running fleet (read-only), one JSON per host for the design report.

    After a deploy the fleet runs the golden image, so a failing control fails the phase; a story
    without one audits site.yml's seed hosts, whose figures are evidence, not a verdict.
    """
    out = s.repo / "reports" / "rehearsal" / "audit"
    if out.is_dir():
        for old in [*out.glob("*.json"), *out.glob("*.md")]:
            old.unlink()  # an earlier rehearsal's hosts are not this fleet
    s.play("playbooks/audit.yml", audit_hosts=f"env_{ENVIRONMENT}", audit_report_dir=str(out))
    from gearlift.report.evidence import load_audit  # the design report's own reader of these files

    audit = load_audit(out)
    if audit.problems or not audit.hosts:
        why = "; ".join(audit.problems) or f"no host in env_{ENVIRONMENT}"
        raise PhaseFailed(f"playbooks/audit.yml wrote no readable report under {out}: {why}")
    figures = {h.host: {k: h.count(k) for k in ("pass", "fail", "skipped")} for h in audit.hosts}
    s.board.detail["fleet_audit"] = figures
    for host, counts in figures.items():
        s.log(f"fleet audit: {host} pass={counts['pass']} fail={counts['fail']} skipped={counts['skipped']}")
    failing = sorted(h for h, counts in figures.items() if counts["fail"])
    if failing and any(r.name == "deploy" and r.status == "passed" for r in s.records):
        raise PhaseFailed(f"controls fail on the fleet after the deploy: {', '.join(failing)} (see {out})")
    return out


def report(s: Story) -> None:
    """The design report with this rehearsal's measured figures (reports/rehearsal/drills.json) and the
    fleet's audit (reports/rehearsal/audit), dated."""
    s.finish()
    audit = fleet_audit(s)
    values = s.board.values
    figures = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "drills": [],
        "migration": {"rehearsed_on": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        | {
            k: values.get(k)
            for k in (
                "read_only_window_s",
                "orders_confirmed",
                "orders_lost",
                "uploads_confirmed",
                "uploads_lost",
                "carts_lost",
                "carts_left_at_switch",
                "shop_status_through_alb",
                "monthly_cost_usd",
            )
        }
        | {"failed_requests": {p: values.get(f"failed_requests.{p}") for p in FAILED_REQUEST_PHASES}}
        | {"audit": {k: values.get(f"audit.{k}") for k in ("pass", "fail", "skipped")}},
    }
    if "rto_s" in values:
        figures["drills"] = [
            {
                "failure": "database restore drill (recovery point -> new instance)",
                "rto_seconds": values["rto_s"],
                "rpo_seconds": values["rpo_s"],
                "date": figures["date"],
                "note": "gearlift rehearse (twin)",
            }
        ]
    drills = s.repo / "reports" / "rehearsal" / "drills.json"
    drills.parent.mkdir(parents=True, exist_ok=True)
    drills.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    from gearlift.report.__main__ import build_parser
    from gearlift.report.__main__ import run as run_report
    from gearlift.report.errors import ReportError

    args = build_parser().parse_args(
        [
            "--inventory",
            INVENTORY,
            "--drills",
            str(drills),
            "--audit",
            str(audit),
            "--out",
            str(s.repo / "reports" / "design"),
            "--repo",
            str(s.repo),
        ]
    )
    try:
        code = run_report(args)
    except ReportError as exc:
        raise PhaseFailed(f"gearlift report: {exc}") from exc
    if code != 0:
        raise PhaseFailed(f"gearlift report exited {code}")


STEPS: dict[str, Callable[[Story], None]] = {
    "estate": estate,
    "provision": provision,
    "bake": bake,
    "deploy": deploy,
    "move": move,
    "cutover": cutover,
    "patch": patch,
    "restore_drill": restore_drill,
    "report": report,
}
assert tuple(STEPS) == PHASES, "STEPS must follow phases.PHASES"


# ---------------------------------------------------------------------------- the run


def execute(
    story: Story,
    steps: dict[str, Callable[[Story], None]] | None = None,
    summary_path: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run the plan's phases in order; after a failure the rest are skipped; the scoreboard is always written.

    ``steps`` replaces the phase functions (unit tests); ``finish`` is skipped when the story's
    twin never came up (no clients).
    """
    steps = steps or STEPS
    t0 = clock()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    failed = False
    interrupted = False
    for name in PHASES:
        if name not in story.plan.phases:
            continue
        record = PhaseRecord(name=name, prerequisite=name in story.plan.prerequisites)
        story.records.append(record)
        if story.cancel.is_set() and not (failed or interrupted):
            record.status, record.error, interrupted = "interrupted", "interrupted before the phase started", True
            continue
        if failed or interrupted:
            record.status = "skipped"
            continue
        story.log(f"== phase {name}{' (prerequisite)' if record.prerequisite else ''} ==")
        begin = clock()
        for loop in (story.orders, story.shoppers):
            if loop is not None:
                loop.phase = name
        try:
            steps[name](story)
            record.status = "passed"
        except KeyboardInterrupt:
            record.status = "interrupted"
            record.error = "interrupted"
            interrupted = True
        except (PhaseFailed, TwinError) as exc:
            record.status = "failed"
            record.error = str(exc)
            failed = True
        except Exception as exc:  # a defect of the runner or the twin: named, and the scoreboard still written
            record.status = "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            failed = True
        record.seconds = clock() - begin
        story.log(
            f"== phase {name}: {record.status} in {record.seconds:.1f} s"
            + (f" ({record.error})" if record.error else "")
        )
        for run in record.playbooks:
            story.log(f"   {run.line()}")
    try:
        story.finish()
    except Exception as exc:  # measuring must not hide the scoreboard
        story.log(f"measuring at the end failed: {type(exc).__name__}: {exc}")
    summary = build(
        story.board, story.records, clock() - t0, alb_required="deploy" in story.plan.phases, started_at=started_at
    )
    summary["interrupted"] = interrupted
    if summary_path is not None:
        write(summary, summary_path)
    for line in render(summary):
        story.log(line)
    if summary_path is not None:
        story.log(f"scoreboard: {summary_path}")
    return summary
