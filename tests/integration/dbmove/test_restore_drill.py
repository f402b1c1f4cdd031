"""The restore drill, rehearsed: a recovery point of the twin's RDS stand-in restored to a new instance.

The package's twin (conftest.py) has provisioned production; the shop's data is loaded into it as
after the move; onprem-db is the DB tools host (group db_tools). The rehearsal
inventory's db_migration_drill_from is ``dump``: recovery points are recovery-point dumps, the
drill instance a new RDS instance of the twin (a MariaDB container) that the dump is loaded into.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import podman
from gearlift.twin.onprem import OnPremEstate
from gearlift.twin.runner import RunResult, run_playbook
from gearlift.twin.twin import Twin

from ..conftest import REPO
from .conftest import NAME, Estate

pytestmark = pytest.mark.slow
ORDERS = 2000
POINT_DIR = "/var/backups/gearlift-recovery-points"


@dataclass
class DrillRig:
    twin: Twin
    tools: OnPremEstate
    tmp: Path
    runs: int = 0

    def drill(self, expect_ok: bool = True, **extra: Any) -> tuple[RunResult, list[str]]:
        self.runs += 1
        lines: list[str] = []
        result = run_playbook(
            REPO,
            "playbooks/restore_drill.yml",
            ["inventories/rehearsal", str(self.tools.inventory)],
            self.tmp / f"drill-{self.runs}",
            self.twin.aws_env,
            lines.append,
            extravars={"db_migration_drill_report_dir": str(self.tmp / "reports"), **extra},
        )
        if expect_ok:
            assert result.ok, "\n".join(lines[-40:] + result.failures)
        return result, lines

    def production_sql(self, sql: str) -> str:
        container = self.twin.rds.container_name(NAME)  # type: ignore[union-attr]
        return podman.run("exec", "-i", container, "mariadb", "-N", "-B", input_bytes=sql.encode()).stdout

    def rds_ids(self) -> set[str]:
        assert self.twin.clients is not None
        return {d["DBInstanceIdentifier"] for d in self.twin.clients("rds").describe_db_instances()["DBInstances"]}

    def drill_containers(self) -> list[str]:
        return [c.name for c in podman.list_containers(self.twin.layout.label) if "-drill-" in c.name]

    def points(self) -> list[str]:
        out = podman.exec_(self.tools.db_container, "sh", "-c", f"ls {POINT_DIR}/*.json 2>/dev/null", check=False)
        return sorted(out.stdout.split())

    def reports(self) -> list[Path]:
        return sorted((self.tmp / "reports").glob("restore-drill-*.json"))


@pytest.fixture(scope="module")
def rig(estate: Estate) -> Iterator[DrillRig]:
    # onprem-db is the DB tools host (group db_tools); production is loaded as after the move.
    drill = DrillRig(twin=estate.twin, tools=estate.onprem, tmp=estate.tmp / "drill")
    drill.tmp.mkdir()
    created = drill.production_sql("SHOW CREATE DATABASE shop").split("\t", 1)[1].strip()
    schema = (REPO / "app" / "shop-standin" / "schema.sql").read_text("utf-8")
    drill.production_sql(
        f"DROP DATABASE shop; {created}; USE shop;\n{schema}\n"
        "INSERT INTO orders (order_ref, sku, qty, created_at) "
        "SELECT CONCAT('moved-', LPAD(seq, 6, '0')), 'TSHIRT-BLK-M', 1 + seq % 3, "
        f"TIMESTAMP('2025-01-01') + INTERVAL seq HOUR FROM seq_1_to_{ORDERS};"
    )
    try:
        yield drill
    finally:
        # Production's shop database empty again, as the move's preflight wants its target.
        drill.production_sql(f"DROP DATABASE shop; {created};")
        podman.exec_(estate.onprem.db_container, "sh", "-c", f"rm -rf {POINT_DIR}")


def _wait_gone(rig: DrillRig, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and rig.drill_containers():
        time.sleep(2)


def test_restore_drill_restores_the_point_verifies_reports_rpo_rto_and_removes_the_instance(rig, capsys):
    # A recovery point (what the backup job does), then production moves on.
    rig.drill(db_migration_drill_new_point=True, db_migration_drill_restore=False)
    assert len(rig.points()) == 1, rig.points()
    assert rig.rds_ids() == {NAME}, "taking a recovery point must not create an instance"
    time.sleep(2)
    rig.production_sql(
        "USE shop; INSERT INTO orders (order_ref, sku, qty) "
        "SELECT CONCAT('late-', seq), 'HOODIE-GRY-M', 1 FROM seq_1_to_25"
    )

    rig.drill()
    [report_path] = rig.reports()
    report = json.loads(report_path.read_text())
    with capsys.disabled():
        print(
            f"\nrestore drill: RPO achieved {report['rpo_seconds']} s, RTO achieved {report['rto_seconds']} s, "
            f"point {report['recovery_point']}, report {report_path.name}"
        )
    assert report["equal"] is True, report
    orders = next(t for t in report["tables"] if t["table"] == "shop.orders")
    assert orders["point_rows"] == orders["restored_rows"] == ORDERS, orders
    assert float(report["rpo_seconds"]) >= 2, "the point is older than the late orders"
    assert float(report["rto_seconds"]) > 0
    assert rig.production_sql("SELECT COUNT(*) FROM shop.orders").strip() == str(ORDERS + 25)
    assert rig.rds_ids() == {NAME}, "the drill instance must be removed"
    _wait_gone(rig)
    assert not rig.drill_containers()


def test_a_restore_that_differs_from_production_fails_the_drill_and_still_removes_the_instance(rig):
    # The point's record says production had one more order than its dump holds.
    [point] = rig.points()[-1:]
    podman.exec_(
        rig.tools.db_container,
        "python3",
        "-c",
        "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['tables']['shop.orders']['rows'] += 1; "
        "json.dump(d, open(p, 'w'))",
        point,
    )
    result, _ = rig.drill(expect_ok=False)
    assert not result.ok
    assert any("differ from production as of" in f for f in result.failures), result.failures
    assert rig.rds_ids() == {NAME}, "the drill instance must be removed after a failed drill too"
    _wait_gone(rig)
    assert not rig.drill_containers()


def test_the_drill_refuses_when_there_is_no_recovery_point(rig):
    podman.exec_(rig.tools.db_container, "sh", "-c", f"rm -f {POINT_DIR}/*")
    result, _ = rig.drill(expect_ok=False)
    assert any("no recovery point" in f for f in result.failures), result.failures
    assert rig.rds_ids() == {NAME}
