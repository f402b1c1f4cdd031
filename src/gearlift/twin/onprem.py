"""The shop's estate as it runs today, for rehearsing the database move.

Two systemd containers on the twin network, labelled like the rest of the twin (so
``clean()`` removes them):

* ``onprem-db``: MariaDB standing in for the shop's MySQL server - binlog ROW, server_id 1,
  TLS from the twin's throw-away CA, the shop schema with a history of orders and the app's
  login (as today: a password in the app server's config file, nothing gearlift keeps);
* ``onprem-app``: the stand-in shop on a JRE, configured the legacy way - an env file with the
  DB host and login - and published on 127.0.0.1 only, for the test's order loop.

``inventory`` is an Ansible inventory of both (group ``onprem`` with ``onprem_db`` and
``onprem_app``), using the podman connection, as a real inventory would list them over SSH.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from gearlift.twin import podman
from gearlift.twin.dataplane.network import ONPREM_ADDRESS_LABEL
from gearlift.twin.errors import TwinError
from gearlift.twin.netutil import free_port, http_get

ONPREM_DB_HOST = "onprem-db"
ONPREM_APP_HOST = "onprem-app"
APP_ENV_FILE = "/etc/shop/db.env"
APP_SERVICE = "shop.service"
APP_JAR = "/opt/shop/shop.jar"
DB_NAME = "shop"
# The site's own network, as AWS sees it through the Site-to-Site VPN (the rehearsal inventory's
# gearlift_onprem_cidrs); each host's address there. On the twin the hosts share the twin network
# and the firewall tells them apart by these addresses (gearlift.twin.netpolicy).
SITE_CIDR = "192.168.50.0/24"
SITE_ADDRESSES = {ONPREM_DB_HOST: "192.168.50.10", ONPREM_APP_HOST: "192.168.50.20"}
APP_USER = "shopapp"
#: Customers' uploaded designs, on the app server's local disk as today (the stand-in's default).
ONPREM_UPLOAD_DIR = "/var/lib/shop/designs"
#: The app's account has the uid/gid of the uploads' EFS access point (gearlift_efs_uid/gid): the twin's
#: EFS is a bind mount that does not map a client's identity to the access point's as EFS does
#: (docs/twin-fidelity.md), so a site user with another uid would be refused where AWS accepts it.
ONPREM_APP_UID = 2750

ONPREM_CNF = """[mysqld]
# Written by the gearlift twin: the shop's on-premises MySQL server as it runs today.
bind-address = 0.0.0.0
server_id = 1
{log_bin}binlog_format = {binlog_format}
character_set_server = utf8mb4
collation_server = utf8mb4_unicode_ci
ssl_cert = /etc/mysql/onprem-tls/server.crt
ssl_key = /etc/mysql/onprem-tls/server.key
ssl_ca = /etc/mysql/onprem-tls/ca.crt
"""

APP_UNIT = f"""[Unit]
Description=The shop (legacy on-premises deployment)
After=network-online.target

[Service]
User=shop
Environment=APP_BIND=0.0.0.0 APP_PORT=8080 SHOP_ENV_FILE={APP_ENV_FILE} SHOP_UPLOAD_DIR={ONPREM_UPLOAD_DIR}
ExecStart=/usr/bin/java -jar {APP_JAR}
SuccessExitStatus=143
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

SKUS = ("TSHIRT-BLK-M", "TSHIRT-BLK-L", "TSHIRT-WHT-M", "HOODIE-GRY-M", "HOODIE-GRY-L", "HOODIE-NVY-XL")

Log = Callable[[str], None]


class OnPremEstate:
    def __init__(
        self,
        prefix: str,
        network: str,
        label: str,
        state_dir: Path,
        mariadb_image: str,
        apphost_image: str,
        jar: Path,
        log: Log,
    ) -> None:
        self.prefix = prefix
        self.network = network
        self.label = label
        self.state_dir = state_dir
        self.mariadb_image = mariadb_image
        self.apphost_image = apphost_image
        self.jar = jar
        self.log = log
        self.db_container = f"{prefix}-{ONPREM_DB_HOST}"
        self.app_container = f"{prefix}-{ONPREM_APP_HOST}"
        self.cnf = state_dir / "onprem-db.cnf"
        self.inventory = state_dir / "onprem.yml"
        self.app_port = 0
        self.with_app = True
        # More podman run arguments of the app server (the twin's EFS plane: the mount helper an
        # on-premises client installs, amazon-efs-utils, and its staging directory).
        self.app_extra_args: Callable[[str], list[str]] | None = None
        # podman run arguments sizing both servers (gearlift.twin.sizing; [] unsized).
        self.limits: list[str] = []

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    # ------------------------------------------------------------------ up
    def up(self, orders: int = 200, app: bool = True) -> None:
        """Start onprem-db (with ``orders`` orders) and, unless ``app`` is false, onprem-app."""
        if app and not self.jar.is_file():
            raise TwinError(f"the stand-in shop is not built: run app/shop-standin/build.sh ({self.jar} missing)")
        for name in (self.db_container, self.app_container):
            if podman.container_exists(name):
                raise TwinError(f"a container named {name} already exists: remove it (`podman rm -f {name}`)")
        self.write_cnf("ROW")
        self._run_container(
            self.db_container,
            ONPREM_DB_HOST,
            self.mariadb_image,
            "-v",
            f"{self.cnf}:/etc/mysql/mariadb.conf.d/99-onprem.cnf:ro",
            "-v",
            f"{self.state_dir / 'tls-onprem'}:/etc/mysql/onprem-tls:ro",
        )
        self.wait_db()
        password = secrets.token_urlsafe(24)
        self.sql(self._bootstrap_sql(password, orders))
        self.with_app = app
        if not app:
            self.write_inventory()
            self.log(f"on-prem estate up: {ONPREM_DB_HOST} (MariaDB, {orders} orders), no app host")
            return
        self.app_port = free_port()
        self._run_container(
            self.app_container,
            ONPREM_APP_HOST,
            self.apphost_image,
            "-p",
            f"127.0.0.1:{self.app_port}:8080",
            "-v",
            f"{self.jar}:{APP_JAR}:ro",
            "-v",
            f"{self.state_dir / 'tls-onprem' / 'ca.crt'}:/etc/shop/ca.crt:ro",
            *(self.app_extra_args(self.app_container) if self.app_extra_args else []),
        )
        env = (
            f"DB_HOST={ONPREM_DB_HOST}\nDB_PORT=3306\nDB_NAME={DB_NAME}\nDB_USER={APP_USER}\n"
            f"DB_PASSWORD={password}\nDB_TLS=required\nDB_TLS_CA=/etc/shop/ca.crt\n"
        )
        script = (
            f"set -e; getent group shop >/dev/null || groupadd --system --gid {ONPREM_APP_UID} shop; "
            f"id shop >/dev/null 2>&1 || useradd --system --uid {ONPREM_APP_UID} --gid shop --no-create-home "
            "--shell /usr/sbin/nologin shop; "
            "install -d -m 0750 -o root -g shop /etc/shop; "
            f"install -d -m 0750 -o shop -g shop {ONPREM_UPLOAD_DIR}; "
            f"cat > {APP_ENV_FILE}; chown root:shop {APP_ENV_FILE}; chmod 0640 {APP_ENV_FILE}"
        )
        podman.run("exec", "-i", self.app_container, "sh", "-c", script, input_bytes=env.encode())
        podman.run(
            "exec",
            "-i",
            self.app_container,
            "sh",
            "-c",
            f"cat > /etc/systemd/system/{APP_SERVICE}",
            input_bytes=APP_UNIT.encode(),
        )
        podman.exec_(self.app_container, "systemctl", "daemon-reload")
        podman.exec_(self.app_container, "systemctl", "enable", "--now", APP_SERVICE)
        self.wait_app()
        self.write_inventory()
        self.log(f"on-prem estate up: {ONPREM_DB_HOST} (MariaDB, {orders} orders), {ONPREM_APP_HOST} on {self.app_url}")

    def _run_container(self, name: str, hostname: str, image: str, *extra: str) -> None:
        podman.run(
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            hostname,
            "--network",
            self.network,
            "--network-alias",
            hostname,
            "--label",
            self.label,
            "--label",
            "gearlift.kind=onprem",
            "--label",
            f"{ONPREM_ADDRESS_LABEL}={SITE_ADDRESSES[hostname]}",
            *podman.RUN_FIX_ARGS,
            "--systemd",
            "always",
            *self.limits,
            *extra,
            image,
            "/sbin/init",
        )

    @staticmethod
    def _bootstrap_sql(password: str, orders: int) -> str:
        schema = (Path(__file__).resolve().parents[3] / "app" / "shop-standin" / "schema.sql").read_text("utf-8")
        esc = password.replace("\\", "\\\\").replace("'", "\\'")
        skus = ", ".join(f"'{s}'" for s in SKUS)
        return "\n".join(
            [
                f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
                f"USE {DB_NAME};",
                schema,
                f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{esc}';",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {DB_NAME}.* TO '{APP_USER}'@'%';",
                "INSERT IGNORE INTO orders (order_ref, sku, qty, created_at) "  # noqa: S608 - constants only
                f"SELECT CONCAT('legacy-', LPAD(seq, 6, '0')), ELT(1 + seq % {len(SKUS)}, {skus}), 1 + seq % 3, "
                f"TIMESTAMP('2025-01-01') + INTERVAL seq HOUR FROM seq_1_to_{max(orders, 1)};",
            ]
        )

    # -------------------------------------------------------------- helpers
    def write_cnf(self, binlog_format: str = "ROW", log_bin: bool = True) -> None:
        """The server's settings (applied by ``restart_db``); ``log_bin=False``: no binary log, as many servers run."""
        text = ONPREM_CNF.format(binlog_format=binlog_format, log_bin="log_bin = mysql-bin\n" if log_bin else "")
        self.cnf.write_text(text, encoding="utf-8")

    def sql(self, statements: str, timeout: float = 120) -> str:
        """Run SQL as root over the server's socket (as the on-prem DBA would); tab-separated output."""
        proc = podman.run(
            "exec",
            "-i",
            self.db_container,
            "mariadb",
            "--protocol=socket",
            "-N",
            "-B",
            input_bytes=statements.encode(),
            timeout=timeout,
        )
        return proc.stdout

    def wait_db(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ping = podman.exec_(
                self.db_container, "mariadb-admin", "--protocol=socket", "ping", check=False, timeout=20
            )
            if ping.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TwinError(f"on-prem MariaDB did not come up in {timeout:.0f} s: {ping.stderr.strip()}")
            time.sleep(1)

    def restart_db(self) -> None:
        podman.exec_(self.db_container, "systemctl", "restart", "mariadb.service", timeout=120)
        self.wait_db()

    def wait_app(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                status, body = http_get(f"{self.app_url}/ready", timeout=3)
                if status == 200:
                    return
                last = f"HTTP {status} {body[:200]}"
            except (OSError, TwinError) as exc:
                last = str(exc)
            time.sleep(1)
        journal = subprocess.run(
            ["podman", "exec", self.app_container, "journalctl", "-u", APP_SERVICE, "-n", "30", "--no-pager"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        raise TwinError(f"the on-prem shop did not become ready in {timeout:.0f} s ({last}):\n{journal}")

    def write_inventory(self) -> None:
        def host(container: str, name: str) -> dict[str, str]:
            return {
                "ansible_connection": "gearlift.platform.podman",
                "ansible_host": container,
                "ansible_python_interpreter": "/usr/bin/python3",
                # The address AWS sees through the VPN (security group rules, routes).
                "gearlift_onprem_address": SITE_ADDRESSES[name],
            }

        inventory = {
            "all": {
                "children": {
                    "onprem": {
                        "children": {
                            "onprem_db": {"hosts": {ONPREM_DB_HOST: host(self.db_container, ONPREM_DB_HOST)}},
                            "onprem_app": {
                                "hosts": {ONPREM_APP_HOST: host(self.app_container, ONPREM_APP_HOST)}
                                if self.with_app
                                else {}
                            },
                        }
                    },
                    # The host with the mysql client and a path to the DB tier (restore drills).
                    "db_tools": {"hosts": {ONPREM_DB_HOST: {}}},
                }
            }
        }
        self.inventory.write_text(
            "# Written by the gearlift twin: the on-premises estate (podman connection).\n"
            + yaml.safe_dump(inventory, sort_keys=False),
            encoding="utf-8",
        )
