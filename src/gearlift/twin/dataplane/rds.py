"""RDS: every DB instance is a MariaDB server in a container.

Its RDS endpoint name resolves on the twin network (a network alias); the master user and
database come from what the control plane holds (the master login from the RDS-managed secret),
with RDS's privilege set and replication procedures, TLS from the twin's CA and
`require_secure_transport` from the parameter group.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gearlift.twin import podman
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.errors import TwinError
from gearlift.twin.layout import TwinLayout

Log = Callable[[str], None]


MARIADB_CNF = """[mysqld]
# Written by the gearlift twin: this container stands in for an RDS instance.
bind-address = 0.0.0.0
server_id = {server_id}
log_bin = mysql-bin
binlog_format = ROW
character_set_server = utf8mb4
collation_server = utf8mb4_unicode_ci
ssl_cert = /etc/mysql/twin-tls/server.crt
ssl_key = /etc/mysql/twin-tls/server.key
ssl_ca = /etc/mysql/twin-tls/ca.crt
{extra}
"""


# RDS for MySQL's master user privileges (the MySQL names; in MariaDB 10.11
# REPLICATION CLIENT is BINLOG MONITOR, and SHOW SLAVE STATUS needs SLAVE MONITOR,
# which MySQL's REPLICATION CLIENT covers).
RDS_MASTER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
    "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
    "REPLICATION CLIENT, SLAVE MONITOR, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, "
    "CREATE USER, EVENT, TRIGGER"
)

# RDS's replication procedures (same names, arguments and effect), created by root
# with SQL SECURITY DEFINER so the master user needs no SUPER, as on RDS.
RDS_PROCEDURES = [
    "CREATE TABLE IF NOT EXISTS mysql.rds_configuration "
    "(name VARCHAR(100) PRIMARY KEY, value VARCHAR(100), description VARCHAR(300)) ENGINE=InnoDB;",
    "INSERT IGNORE INTO mysql.rds_configuration VALUES "
    "('binlog retention hours', NULL, 'binlog retention hours specifies the duration in hours');",
    "DROP PROCEDURE IF EXISTS mysql.rds_set_external_master;",
    """CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_set_external_master(
  IN host_name VARCHAR(255), IN host_port INT, IN replication_user_name VARCHAR(255),
  IN replication_user_password VARCHAR(255), IN mysql_binary_log_file_name VARCHAR(255),
  IN mysql_binary_log_file_location BIGINT, IN ssl_encryption INT)
SQL SECURITY DEFINER
BEGIN
  SET @gl_stmt = CONCAT('CHANGE MASTER TO MASTER_HOST=', QUOTE(host_name), ', MASTER_PORT=', host_port,
    ', MASTER_USER=', QUOTE(replication_user_name), ', MASTER_PASSWORD=', QUOTE(replication_user_password),
    ', MASTER_LOG_FILE=', QUOTE(mysql_binary_log_file_name), ', MASTER_LOG_POS=', mysql_binary_log_file_location,
    ', MASTER_SSL=', IF(ssl_encryption = 1, 1, 0), ', MASTER_USE_GTID=no');
  PREPARE gl_st FROM @gl_stmt; EXECUTE gl_st; DEALLOCATE PREPARE gl_st;
  SET @gl_stmt = NULL;
END;""",
    "DROP PROCEDURE IF EXISTS mysql.rds_start_replication;",
    "CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_start_replication() SQL SECURITY DEFINER "
    "BEGIN START SLAVE; END;",
    "DROP PROCEDURE IF EXISTS mysql.rds_stop_replication;",
    "CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_stop_replication() SQL SECURITY DEFINER "
    "BEGIN STOP SLAVE; END;",
    "DROP PROCEDURE IF EXISTS mysql.rds_reset_external_master;",
    "CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_reset_external_master() SQL SECURITY DEFINER "
    "BEGIN STOP SLAVE; RESET SLAVE ALL; END;",
    "DROP PROCEDURE IF EXISTS mysql.rds_set_configuration;",
    "CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_set_configuration("
    "IN name VARCHAR(100), IN value VARCHAR(100)) SQL SECURITY DEFINER "
    "BEGIN UPDATE mysql.rds_configuration c SET c.value = value WHERE c.name = name; END;",
    "DROP PROCEDURE IF EXISTS mysql.rds_show_configuration;",
    "CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_show_configuration() SQL SECURITY DEFINER "
    "BEGIN SELECT name, value, description FROM mysql.rds_configuration; END;",
]


class RdsReconciler:
    def __init__(self, layout: TwinLayout, clients: Clients, log: Log, image: str, tls_dir: Path) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        self.image = image
        self.tls_dir = tls_dir
        self.ready: dict[str, dict[str, Any]] = {}
        self._waiting: set[str] = set()
        self.on_start: Callable[[str], None] | None = None

    def container_name(self, db_id: str) -> str:
        return f"{self.layout.prefix}-rds-{db_id}"

    def reconcile(self, round_: Round) -> None:
        round_.databases = dict(self.sync())

    def sync(self) -> dict[str, dict[str, Any]]:
        """A MariaDB for every DB instance the emulator lists; the ready ones' endpoints."""
        dbs = {
            d["DBInstanceIdentifier"]: d for d in paginate(self.clients("rds"), "describe_db_instances", "DBInstances")
        }
        containers = {
            c.labels.get("gearlift.db-id", ""): c
            for c in podman.list_containers(self.layout.label)
            if c.labels.get("gearlift.kind") == "rds"
        }
        for db_id, container in containers.items():
            if db_id not in dbs:
                self.log(f"rds: {db_id} deleted -> removing its MariaDB")
                podman.remove(container.name)
                (self.layout.state_dir / f"rds-{db_id}.cnf").unlink(missing_ok=True)
                self.ready.pop(db_id, None)
        for db_id, db in dbs.items():
            if db_id not in containers:
                self.start(db_id, db)
            if db_id in self.ready:
                continue
            if not db.get("MasterUserSecret", {}).get("SecretArn"):
                # Created with a one-off password; the managed secret follows
                # (ModifyDBInstance ManageMasterUserPassword). Until then the
                # MariaDB runs without a master login.
                if db_id not in self._waiting:
                    self._waiting.add(db_id)
                    self.log(f"rds: {db_id} waits for its RDS-managed master secret")
                continue
            self.bootstrap(db_id, db)
        return self.ready

    def _param_overrides(self, db: dict[str, Any]) -> str:
        lines = []
        rds = self.clients("rds")
        for group in db.get("DBParameterGroups", []):
            name = group["DBParameterGroupName"]
            if name.startswith("default."):
                continue
            params = paginate(rds, "describe_db_parameters", "Parameters", DBParameterGroupName=name)
            for p in params:
                if p.get("ParameterName") == "require_secure_transport" and p.get("ParameterValue"):
                    value = "ON" if str(p["ParameterValue"]).lower() in ("1", "on", "true") else "OFF"
                    lines.append(f"require_secure_transport = {value}")
        return "\n".join(lines)

    def start(self, db_id: str, db: dict[str, Any]) -> None:
        name = self.container_name(db_id)
        if podman.container_exists(name):
            raise TwinError(
                f"a container named {name} already exists but is not part of this twin: "
                f"remove it (`podman rm -f {name}`) and run again."
            )
        endpoint = db.get("Endpoint", {}).get("Address")
        if not endpoint:
            raise TwinError(f"rds: {db_id} has no endpoint address in the control plane")
        server_id = int(hashlib.sha256(db_id.encode()).hexdigest()[:6], 16) % 4000000 + 1
        cnf = self.layout.state_dir / f"rds-{db_id}.cnf"
        cnf.write_text(MARIADB_CNF.format(server_id=server_id, extra=self._param_overrides(db)), encoding="utf-8")
        podman.run(
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            f"rds-{db_id}",
            "--network",
            self.layout.network,
            "--network-alias",
            endpoint,
            "--label",
            self.layout.label,
            "--label",
            "gearlift.kind=rds",
            "--label",
            f"gearlift.db-id={db_id}",
            *podman.RUN_FIX_ARGS,
            "--systemd",
            "always",
            "-v",
            f"{cnf}:/etc/mysql/mariadb.conf.d/99-gearlift-twin.cnf:ro",
            "-v",
            f"{self.tls_dir}:/etc/mysql/twin-tls:ro",
            self.image,
            "/sbin/init",
        )
        if self.on_start is not None:
            self.on_start(name)
        self.log(f"rds: {db_id} running as MariaDB, reachable as {endpoint}:3306 on the twin network")

    def _master_login(self, db: dict[str, Any]) -> tuple[list[str], str]:
        """Master user name(s) and password from the RDS-managed secret."""
        secret = db.get("MasterUserSecret", {}).get("SecretArn")
        if secret:
            value = json.loads(self.clients("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])
            # The secret names the login; the emulator's may differ from MasterUsername: honour both.
            users = sorted({db.get("MasterUsername", "admin"), str(value.get("username", "admin"))})
            return users, str(value["password"])
        raise TwinError(
            f"rds: {db['DBInstanceIdentifier']} has no RDS-managed master secret "
            "(ManageMasterUserPassword). gearlift keeps the master password in Secrets Manager, "
            "never in the inventory, and the rehearsal can only set up MariaDB from that secret."
        )

    def bootstrap(self, db_id: str, db: dict[str, Any]) -> None:
        name = self.container_name(db_id)
        deadline = time.monotonic() + 120
        while True:
            ping = podman.exec_(name, "mariadb-admin", "--protocol=socket", "ping", check=False, timeout=20)
            if ping.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TwinError(f"rds: MariaDB for {db_id} did not come up in 120 s: {ping.stderr.strip()}")
            time.sleep(1)
        users, password = self._master_login(db)
        user = db.get("MasterUsername", users[0])
        dbname = db.get("DBName")
        esc_pw = password.replace("\\", "\\\\").replace("'", "\\'")
        sql = []
        for login in users:
            sql += [
                f"CREATE USER IF NOT EXISTS '{login}'@'%' IDENTIFIED BY '{esc_pw}';",
                f"ALTER USER '{login}'@'%' IDENTIFIED BY '{esc_pw}';",
                # What RDS gives its master user: no SUPER, no FILE, no SHUTDOWN.
                f"GRANT {RDS_MASTER_PRIVILEGES} ON *.* TO '{login}'@'%' WITH GRANT OPTION;",
            ]
        sql += RDS_PROCEDURES
        if dbname:
            sql.append(f"CREATE DATABASE IF NOT EXISTS `{dbname}` CHARACTER SET utf8mb4;")
        sql.append("FLUSH PRIVILEGES;")
        # Procedure bodies hold ';': every statement ends with the '//' delimiter instead.
        script = "DELIMITER //\n" + "\n".join(stmt.rstrip().rstrip(";") + " //" for stmt in sql) + "\nDELIMITER ;\n"
        podman.run("exec", "-i", name, "mariadb", "--protocol=socket", input_bytes=script.encode())
        self.ready[db_id] = {
            "endpoint": db["Endpoint"]["Address"],
            "port": 3306,
            "container": name,
            "master_username": user,
            "db_name": dbname,
        }
        self.log(f"rds: {db_id} accepts logins for {user}")
