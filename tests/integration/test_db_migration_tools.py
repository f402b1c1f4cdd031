"""The database move's two workhorses against real MariaDB servers (loopback only).

``stream-copy`` (consistent dump streamed into the target, progress and binlog coordinates in
copy.json) and ``table-checksums`` (server-side row counts and content checksums), as the
gearlift.platform.db_migration role runs them on the migration host. A source with binary
logging and a target that only knows an RDS-like master user over TLS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .mariadb_server import LOOPBACK, MARIADB_CLI, MariaDB, start_mariadb

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "db_migration" / "files"
STREAM_COPY = FILES / "stream-copy"
CHECKSUMS = FILES / "table-checksums"
SCHEMA = REPO / "app" / "shop-standin" / "schema.sql"
ORDERS = 20000
MYSQLDUMP = "mariadb-dump"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="gl-mig-"))
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


@pytest.fixture(scope="module")
def source(workdir: Path) -> Iterator[MariaDB]:
    with start_mariadb(workdir / "src", "--server-id=1", "--log-bin=src-bin", "--binlog-format=ROW") as db:
        db.sql(
            "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
            f"USE shop;\n{SCHEMA.read_text()}\n"
            "INSERT INTO orders (order_ref, sku, qty, created_at) SELECT CONCAT('o-', seq), "
            "ELT(1 + seq % 3, 'TSHIRT-BLK-M', 'HOODIE-GRY-M', 'TSHIRT-WHT-M'), 1 + seq % 5, "
            f"TIMESTAMP('2025-01-01') + INTERVAL seq MINUTE FROM seq_1_to_{ORDERS};\n"
            "CREATE DEFINER=`dba`@`localhost` VIEW shop.order_totals AS "
            "SELECT sku, SUM(qty) AS qty FROM shop.orders GROUP BY sku;\n"
        )
        yield db


@pytest.fixture(scope="module")
def target(workdir: Path) -> Iterator[MariaDB]:
    with start_mariadb(workdir / "tgt", "--server-id=2", "--log-bin=tgt-bin", "--require-secure-transport=ON") as db:
        # The login an RDS master user has: no SUPER; TLS only.
        db.sql(
            f"CREATE USER 'admin'@'{LOOPBACK}' IDENTIFIED BY '{db.password}' REQUIRE SSL;\n"
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
            "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
            "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, "
            f"TRIGGER ON *.* TO 'admin'@'{LOOPBACK}' WITH GRANT OPTION;\n"
        )
        yield db


@pytest.fixture(scope="module")
def target_cnf(target: MariaDB, workdir: Path) -> Path:
    assert target.tls is not None
    cnf = workdir / "target.cnf"
    cnf.write_text(
        f'[client]\nhost={LOOPBACK}\nport={target.port}\nuser=admin\npassword="{target.password}"\n'
        f"ssl-ca={target.tls.ca}\nssl-verify-server-cert\n"
    )
    cnf.chmod(0o600)
    return cnf


def run_tool(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def checksums(*conn: str) -> dict[str, dict[str, object]]:
    out = run_tool(CHECKSUMS, *conn, "--database", "shop", "--mysql", str(MARIADB_CLI))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["tables"]


def copy_args(source: MariaDB, cnf: Path, state: Path, *extra: str) -> list[str]:
    return [
        "--socket",
        str(source.socket),
        "--target-defaults",
        str(cnf),
        "--database",
        "shop",
        "--state-dir",
        str(state),
        "--tables-total",
        "2",
        "--mysqldump",
        MYSQLDUMP,
        "--mysql",
        str(MARIADB_CLI),
        *extra,
    ]


def test_copy_is_consistent_with_its_coordinates_and_checksums_agree(source, target, target_cnf, workdir):
    [[binlog, position]] = [row[:2] for row in source.sql("SHOW MASTER STATUS")]
    out = run_tool(STREAM_COPY, *copy_args(source, target_cnf, workdir / "state1", "--strip-definers"))
    assert out.returncode == 0, out.stderr
    state = json.loads((workdir / "state1" / "copy.json").read_text())
    assert state["status"] == "done" and state["error"] is None
    assert (state["binlog_file"], state["binlog_pos"]) == (binlog, int(position)), "snapshot coordinates"
    assert state["tables_started"] == 2 and state["bytes"] > ORDERS * 40
    src = checksums("--socket", str(source.socket))
    tgt = checksums("--defaults-extra-file", str(target_cnf))
    assert src == tgt
    assert src["shop.orders"]["rows"] == ORDERS and src["shop.products"]["rows"] == 6
    assert "shop.order_totals" not in src, "views are not base tables"
    definer = target.sql("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'order_totals'")
    assert definer == [["admin@127.0.0.1"]], f"the definer was not stripped: {definer}"

    target.sql("UPDATE shop.orders SET qty = qty + 1 WHERE order_ref = 'o-77'")
    changed = checksums("--defaults-extra-file", str(target_cnf))
    assert changed["shop.orders"]["rows"] == ORDERS
    assert changed["shop.orders"]["checksum"] != src["shop.orders"]["checksum"], "a changed value must show"
    assert changed["shop.products"] == src["shop.products"]


def test_a_killed_copy_leaves_the_source_untouched_and_records_the_failure(source, target, target_cnf, workdir):
    before = checksums("--socket", str(source.socket))
    target.sql("DROP DATABASE IF EXISTS shop")
    state_dir = workdir / "state2"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(STREAM_COPY),
            *copy_args(source, target_cnf, state_dir, "--strip-definers", "--max-bytes-per-second", "200000"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    state: dict[str, object] = {}
    while time.monotonic() < deadline:
        if (state_dir / "copy.json").exists():
            state = json.loads((state_dir / "copy.json").read_text())
            if int(state["bytes"]) > 0:  # type: ignore[call-overload]
                break
        time.sleep(0.2)
    assert state.get("status") == "running", state
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 1
    state = json.loads((state_dir / "copy.json").read_text())
    assert state["status"] == "failed" and "signal" in str(state["error"])
    assert checksums("--socket", str(source.socket)) == before, "the source changed"
    assert source.sql("SELECT @@read_only") == [["0"]], "the source is not writable"

    target.sql("DROP DATABASE IF EXISTS shop")  # what the role does before starting over
    again = run_tool(STREAM_COPY, *copy_args(source, target_cnf, state_dir, "--strip-definers"))
    assert again.returncode == 0, again.stderr
    assert json.loads((state_dir / "copy.json").read_text())["status"] == "done"
    assert checksums("--defaults-extra-file", str(target_cnf)) == before


def test_a_target_that_refuses_the_login_fails_the_copy_with_the_reason(source, target_cnf, workdir):
    bad = workdir / "bad.cnf"
    bad.write_text(target_cnf.read_text().replace("user=admin", "user=nobody"))
    out = run_tool(STREAM_COPY, *copy_args(source, bad, workdir / "state3"))
    assert out.returncode == 1
    state = json.loads((workdir / "state3" / "copy.json").read_text())
    assert state["status"] == "failed"
    assert "Access denied" in str(state["error"]), state["error"]
