"""Integration test for the stand-in shop (app/shop-standin).

Builds the jar with build.sh, starts a throwaway MariaDB server from the Debian packages
(real users and passwords, TLS with a throwaway CA when openssl is present, loopback only),
applies schema.sql, runs `java -jar` against it (DB_TLS=disabled by default) and checks the
HTTP behaviour, the env-file reload, the DB_TLS modes, read-only handling and log hygiene; the
cart in the HTTP session, checkout, and design uploads (multipart, atomic writes, types, limits,
path traversal). When Debian's Tomcat 10 (tomcat10) is installed, the WAR is deployed into a
throw-away Tomcat (CATALINA_BASE in a temporary directory, the role's server.xml, loopback, a free
port) and passes the same cart and upload checks; with the session store (java_app_session_store
redis: the role's context.xml, RedisSessionManager in Tomcat's lib) two such Tomcats share carts
through a throw-away TLS + AUTH RESP server (resp_server.py) and the second keeps serving them
after the first stops. The slow test does the same against a real Redis: the twin's Redis image with
the redis.conf the twin writes for an ElastiCache group with TLS and AUTH, published on loopback.
Everything started here is stopped and removed in fixture teardown.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from .mariadb_server import (
    LOOPBACK,
    MARIADBD,
    MariaDB,
    free_port,
    make_tls,
    start_mariadb,
    stop,
    wait_for,
    which,
)
from .resp_server import RespServer, start_resp_server

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app" / "shop-standin"
BUILD_SH = APP_DIR / "build.sh"
SCHEMA = APP_DIR / "schema.sql"
CONNECTOR_JAR = "/usr/share/java/mariadb-java-client.jar"
DB_NAME = "shop"
DB_USER = "shopapp"
DB_TLS_USER = "shoptls"  # created with REQUIRE SSL
UPLOAD_MAX = 4 * 1024 * 1024  # SHOP_UPLOAD_MAX_BYTES of the apps under test
TOMCAT_HOME = Path("/usr/share/tomcat10")
SERVER_XML_TEMPLATE = REPO / "roles" / "java_app" / "templates" / "tomcat-server.xml.j2"
CONTEXT_XML_TEMPLATE = REPO / "roles" / "java_app" / "templates" / "tomcat-context.xml.j2"
SESSIONS_JAR = APP_DIR / "build" / "gearlift-tomcat-sessions.jar"


JAVAC = which("javac")
JAVA = which("java")
if JAVAC is None or JAVA is None or MARIADBD is None:
    pytest.skip(
        f"needs a JDK 17 (javac) and the MariaDB server package (mariadbd); javac={JAVAC}, mariadbd={MARIADBD}",
        allow_module_level=True,
    )


# --------------------------------------------------------------------------- helpers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: object


def http(port: int, method: str, path: str, body: bytes | str | None = None, timeout: float = 10.0) -> Reply:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, headers, raw = resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        status, headers, raw = err.code, dict(err.headers.items()), err.read()
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert lower.get("content-type", "").startswith("application/json"), (path, headers)
    return Reply(status, lower, json.loads(raw))


def order_body(ref: str, sku: str = "TSHIRT-BLK-M", qty: int = 1) -> str:
    return json.dumps({"order_ref": ref, "sku": sku, "qty": qty})


@dataclass
class ShopApp:
    port: int
    env_file: Path
    stdout: Path
    stderr: Path
    proc: subprocess.Popen[bytes]

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def write_env(
    path: Path,
    db: MariaDB,
    password: str,
    tls: str = "disabled",
    user: str = DB_USER,
    ca: Path | None = None,
) -> None:
    """Write the DB env file the way a deploy would (comments, quoting)."""
    path.write_text(
        "# gearlift shop database settings (test)\n"
        "\n"
        f"DB_HOST={LOOPBACK}\n"
        f"DB_PORT={db.port}\n"
        f"DB_NAME='{DB_NAME}'\n"
        f"DB_USER={user}\n"
        f'DB_PASSWORD="{password}"\n'
        f"DB_TLS={tls}\n" + (f"DB_TLS_CA={ca}\n" if ca else "")
    )


def replace_env(
    path: Path,
    db: MariaDB,
    password: str,
    tls: str = "disabled",
    user: str = DB_USER,
    ca: Path | None = None,
) -> None:
    """Atomic rewrite (temp file + rename), as a cutover tool would do it."""
    tmp = path.with_name(path.name + ".new")
    write_env(tmp, db, password, tls=tls, user=user, ca=ca)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def jar() -> Path:
    out = subprocess.run([str(BUILD_SH)], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    path = Path(lines["jar"])
    assert path == APP_DIR / "build" / "shop-standin.jar"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Short path under /tmp: the unix socket path must stay below ~100 bytes.
    d = Path(tempfile.mkdtemp(prefix="gl-shop-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def mariadb(workdir: Path) -> Iterator[MariaDB]:
    with start_mariadb(workdir) as db:
        # Real accounts only: root over the socket, a password-protected app user over TCP
        # with no SUPER / READ ONLY ADMIN (so read_only applies to it), and a second one the
        # server only lets in over TLS.
        db.sql(
            "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';\n"
            "FLUSH PRIVILEGES;\n"
            f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4;\n"
            f"CREATE USER '{DB_USER}'@'{LOOPBACK}' IDENTIFIED BY '{db.password}';\n"
            f"GRANT SELECT, INSERT ON {DB_NAME}.* TO '{DB_USER}'@'{LOOPBACK}';\n"
            f"CREATE USER '{DB_TLS_USER}'@'{LOOPBACK}' IDENTIFIED BY '{db.password}' REQUIRE SSL;\n"
            f"GRANT SELECT ON {DB_NAME}.* TO '{DB_TLS_USER}'@'{LOOPBACK}';\n"
        )
        schema = SCHEMA.read_text()
        db.sql(schema, DB_NAME)
        db.sql(schema, DB_NAME)  # applying twice must be harmless
        yield db


@pytest.fixture(scope="module")
def app(jar: Path, mariadb: MariaDB, workdir: Path) -> Iterator[ShopApp]:
    env_file = workdir / "db.env"
    write_env(env_file, mariadb, mariadb.password)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "APP_", "SHOP_", "JAVA_TOOL", "JDK_JAVA"))}
    env |= {
        "SHOP_ENV_FILE": str(env_file),
        "APP_PORT": str(port),
        "APP_BIND": LOOPBACK,
        "SHOP_UPLOAD_DIR": str(workdir / "designs"),
        "SHOP_UPLOAD_MAX_BYTES": str(UPLOAD_MAX),
        "SHOP_SESSION_TIMEOUT": "600",
    }
    out_path, err_path = workdir / "app.out", workdir / "app.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [JAVA, "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-jar", str(jar)],
            env=env,
            stdout=out,
            stderr=err,
            cwd=workdir,
        )
    shop = ShopApp(port=port, env_file=env_file, stdout=out_path, stderr=err_path, proc=proc)
    try:

        def serving() -> bool:
            assert proc.poll() is None, shop.logs()
            with contextlib.suppress(OSError):
                return http(port, "GET", "/health", timeout=2).status == 200
            return False

        wait_for("the shop to serve /health", serving, timeout=60, interval=0.3)
        yield shop
    finally:
        stop(proc)


# --------------------------------------------------------------------------- tests


SESSION_CODEC_CHECK = """
package gearlift.shopstandin;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;

public final class SessionCodecCheck {
    public static void main(String[] args) {
        Cart cart = new Cart();
        cart.add("TSHIRT-BLK-M", 2);
        cart.add("HOODIE-GRY-L", 1);
        HashMap<String, Serializable> values = new HashMap<>();
        values.put(Cart.ATTRIBUTE, cart);
        values.put("visits", 3);
        HashMap<String, Serializable> back = RedisSessions.decode(RedisSessions.encode(values));
        System.out.println("cart=" + (back == null ? "null" : ((Cart) back.get(Cart.ATTRIBUTE)).snapshot()));
        System.out.println("visits=" + (back == null ? "null" : back.get("visits")));
        HashMap<String, Serializable> foreign = new HashMap<>();
        foreign.put("list", new ArrayList<>(java.util.List.of("x")));
        System.out.println("foreign=" + RedisSessions.decode(RedisSessions.encode(foreign)));
    }
}
"""


CODEC_KEYS = {"cart", "visits", "foreign"}


def test_session_store_codec_round_trips_a_cart_and_rejects_other_classes(jar: Path, tmp_path: Path) -> None:
    """What one host writes to the session store another reads back (the bytes go through the
    deserialisation filter); a class the shop never stores is refused, not instantiated."""
    src = tmp_path / "src" / "gearlift" / "shopstandin"
    src.mkdir(parents=True)
    (src / "SessionCodecCheck.java").write_text(SESSION_CODEC_CHECK, encoding="utf-8")
    classes = tmp_path / "classes"
    subprocess.run(
        ["javac", "-cp", str(jar), "-d", str(classes), str(src / "SessionCodecCheck.java")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = subprocess.run(
        ["java", "-cp", f"{classes}{os.pathsep}{jar}", "gearlift.shopstandin.SessionCodecCheck"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.split("=")[0] in CODEC_KEYS)
    assert lines["cart"] == "{TSHIRT-BLK-M=2, HOODIE-GRY-L=1}", out.stdout + out.stderr
    assert lines["visits"] == "3"
    assert lines["foreign"] == "null"
    assert "a stored session could not be read (InvalidClassException)" in out.stdout + out.stderr


def test_build_is_idempotent_and_manifest_points_at_debian_connector(jar: Path) -> None:
    first = jar.read_bytes()
    out = subprocess.run([str(BUILD_SH)], capture_output=True, text=True, timeout=300, check=True)
    assert f"jar: {jar}" in out.stdout
    assert "sha256: " in out.stdout
    assert jar.read_bytes() == first, "rebuilding the same sources must give the same jar"
    manifest = subprocess.run(
        ["unzip", "-p", str(jar), "META-INF/MANIFEST.MF"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "Main-Class: gearlift.shopstandin.Main" in manifest
    assert f"Class-Path: file:{CONNECTOR_JAR}" in manifest


def test_health_is_shallow_and_reports_db(app: ShopApp) -> None:
    # "db" is the last ping's verdict, refreshed in the background: "ok" once a ping has ended
    wait_for("/health to report the database", lambda: http(app.port, "GET", "/health").body["db"] == "ok", 10, 0.2)
    r = http(app.port, "GET", "/health")
    assert r.status == 200
    assert isinstance(r.body, dict)
    sessions = r.body.pop("sessions")
    assert r.body == {"status": "ok", "host": socket.gethostname(), "db": "ok"}
    assert isinstance(sessions, int) and sessions >= 0


def test_health_answers_at_once_while_the_database_does_not(jar: Path, workdir: Path) -> None:
    """A database that accepts the connection and never speaks (as a stalled name lookup or connect does
    to the pool): /health answers every request within a client timeout shorter than the pool's socket
    timeout (15 s), "db" down, while /ready, the readiness probe, waits for the database. Before, every
    /health waited behind one ping holding a lock: the load balancer's checks and the customers timed out
    on a host that served HTTP (the image lifecycle test's 10 s stalls)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind((LOOPBACK, 0))
    silent.listen(16)  # the kernel accepts; nothing ever answers the MariaDB handshake
    env_file = workdir / "db-silent.env"
    env_file.write_text(
        f"DB_HOST={LOOPBACK}\nDB_PORT={silent.getsockname()[1]}\nDB_NAME={DB_NAME}\nDB_USER={DB_USER}\n"
        "DB_PASSWORD=not-used-here-0123456789\nDB_TLS=disabled\n"
    )
    port = free_port()
    proc, log = start_jar(jar, workdir, env_file, port, "silent-db", {})
    try:

        def listening() -> bool:
            assert proc.poll() is None, log.read_text()
            with socket.socket() as probe:
                return probe.connect_ex((LOOPBACK, port)) == 0

        wait_for("the shop to listen", listening, timeout=60, interval=0.3)
        for _ in range(10):
            r = http(port, "GET", "/health", timeout=2)
            assert r.status == 200 and isinstance(r.body, dict), r
            assert (r.body["status"], r.body["db"]) == ("ok", "down"), r.body
            time.sleep(0.3)
        try:  # readiness does depend on the database: it waits for it, or answers 503
            ready: Reply | None = http(port, "GET", "/ready", timeout=2)
        except OSError:
            ready = None
        assert ready is None or ready.status == 503, ready
    finally:
        stop(proc)
        silent.close()


def test_ready(app: ShopApp) -> None:
    r = http(app.port, "GET", "/ready")
    assert r.status == 200
    assert r.body == {"status": "ready"}


def test_catalog_equals_seeded_products(app: ShopApp, mariadb: MariaDB) -> None:
    rows = mariadb.sql("SELECT sku, name, price_cents FROM products ORDER BY sku", DB_NAME)
    expected = [{"sku": s, "name": n, "price_cents": int(p)} for s, n, p in rows]
    assert len(expected) >= 4
    assert any("T-shirt" in p["name"] for p in expected)
    assert any("Hoodie" in p["name"] for p in expected)
    r = http(app.port, "GET", "/catalog")
    assert r.status == 200
    assert r.body == expected


def test_order_lifecycle(app: ShopApp) -> None:
    before = http(app.port, "GET", "/orders/count")
    assert before.status == 200
    count = before.body["count"]
    ref = f"it-{secrets.token_hex(6)}"

    created = http(app.port, "POST", "/orders", order_body(ref, "HOODIE-GRY-M", 2))
    assert created.status == 201, created.body
    assert created.body["order_ref"] == ref
    assert isinstance(created.body["id"], int)
    assert created.headers.get("location") == f"/orders/{ref}"
    assert http(app.port, "GET", "/orders/count").body == {"count": count + 1}

    got = http(app.port, "GET", f"/orders/{ref}")
    assert got.status == 200
    assert got.body["id"] == created.body["id"]
    assert (got.body["order_ref"], got.body["sku"], got.body["qty"]) == (ref, "HOODIE-GRY-M", 2)
    assert got.body["created_at"].endswith("Z")

    dup = http(app.port, "POST", "/orders", order_body(ref, "TSHIRT-BLK-M", 1))
    assert dup.status == 409, dup.body
    unknown = http(app.port, "POST", "/orders", order_body(f"{ref}-x", "NO-SUCH-SKU", 1))
    assert unknown.status == 422, unknown.body
    assert http(app.port, "GET", "/orders/count").body == {"count": count + 1}

    assert http(app.port, "GET", f"/orders/{ref}-missing").status == 404


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1} trailing',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1,}',
        b'[{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1}]',
        b'{"order_ref":"a1","order_ref":"a2","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M"}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1,"price":0}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":"1"}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1.5}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":1e0}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":0}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":-3}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":99999999999}',
        b'{"order_ref":1,"sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"a/b","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"count","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"' + b"r" * 65 + b'","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"a1","sku":"T SHIRT","qty":1}',
        b'{"order_ref":"a\\ud800","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"a1\xff","sku":"TSHIRT-BLK-M","qty":1}',
        b'{"order_ref":"a1","sku":"TSHIRT-BLK-M","qty":01}',
        b"{" * 100,
        b" " * 20000,
    ],
)
def test_bad_order_input_is_400(app: ShopApp, body: bytes) -> None:
    before = http(app.port, "GET", "/orders/count").body
    r = http(app.port, "POST", "/orders", body)
    assert r.status == 400, r.body
    assert isinstance(r.body["error"], str)
    assert http(app.port, "GET", "/orders/count").body == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/health/"),
        ("POST", "/catalog"),
        ("GET", "/orders"),
        ("DELETE", "/orders/x1"),
        ("GET", "/orders/a%2Fb"),
    ],
)
def test_unknown_routes_are_404_json(app: ShopApp, method: str, path: str) -> None:
    r = http(app.port, method, path)
    assert r.status == 404
    assert "error" in r.body


def test_env_file_change_is_followed_without_restart(app: ShopApp, mariadb: MariaDB) -> None:
    def ready_is(status: int) -> Callable[[], bool]:
        return lambda: http(app.port, "GET", "/ready").status == status

    try:
        # In-place rewrite with a wrong password (different length, so size+mtime change).
        write_env(app.env_file, mariadb, "wrong-" + mariadb.password)
        wait_for("/ready to turn 503 after a bad password", ready_is(503), timeout=15)
        assert http(app.port, "GET", "/catalog").status == 503
        # Shallow health: still 200 for the load balancer, DB reported down.
        wait_for(
            "/health to report db down",
            lambda: http(app.port, "GET", "/health").body.get("db") == "down",
            timeout=10,
        )
        assert http(app.port, "GET", "/health").status == 200
    finally:
        replace_env(app.env_file, mariadb, mariadb.password)
    wait_for("/ready to recover after restoring the env file", ready_is(200), timeout=15)
    assert http(app.port, "GET", "/catalog").status == 200
    assert app.proc.poll() is None, "the app must follow the file without a restart"


def test_tls_modes(app: ShopApp, mariadb: MariaDB) -> None:
    """DB_TLS / DB_TLS_CA against a TLS-enabled server and a user that REQUIREs SSL."""
    if mariadb.tls is None:
        pytest.skip("openssl not available to make test certificates")
    tls = mariadb.tls

    def ready_is(status: int) -> Callable[[], bool]:
        return lambda: http(app.port, "GET", "/ready").status == status

    pw = mariadb.password
    try:
        # The REQUIRE SSL user is refused in plaintext ...
        replace_env(app.env_file, mariadb, pw, tls="disabled", user=DB_TLS_USER)
        wait_for("plaintext refused for a REQUIRE SSL user", ready_is(503), timeout=15)
        # ... and admitted with TLS verified against the right CA (chain + host name).
        replace_env(app.env_file, mariadb, pw, tls="required", user=DB_TLS_USER, ca=tls.ca)
        wait_for("TLS with the right CA", ready_is(200), timeout=15)
        assert http(app.port, "GET", "/catalog").status == 200
        # A CA that did not sign the server certificate must fail closed.
        replace_env(app.env_file, mariadb, pw, tls="required", user=DB_TLS_USER, ca=tls.other_ca)
        wait_for("TLS with the wrong CA refused", ready_is(503), timeout=15)
        # So must a certificate from the right CA that was issued for another address.
        good_cert = tls.cert.read_bytes()
        try:
            tls.cert.write_bytes(tls.wrong_host_cert.read_bytes())
            mariadb.sql("FLUSH SSL;")
            replace_env(app.env_file, mariadb, pw, tls="required", user=DB_TLS_USER, ca=tls.ca)
            wait_for("TLS with a certificate for another host refused", ready_is(503), timeout=15)
            assert "hostname verification failed" in app.logs()
        finally:
            tls.cert.write_bytes(good_cert)
            mariadb.sql("FLUSH SSL;")
        # preferred uses TLS when the server offers it (the user requires it).
        replace_env(app.env_file, mariadb, pw, tls="preferred", user=DB_TLS_USER, ca=tls.ca)
        wait_for("TLS with DB_TLS=preferred", ready_is(200), timeout=15)
        # Without a CA: encrypted but unverified, and the app says so once.
        before = app.logs().count("server certificate is NOT verified")
        replace_env(app.env_file, mariadb, pw, tls="required", user=DB_TLS_USER)
        wait_for("TLS without DB_TLS_CA", ready_is(200), timeout=15)
        assert app.logs().count("server certificate is NOT verified") == before + 1
        # An unknown DB_TLS value fails closed instead of silently meaning "off".
        replace_env(app.env_file, mariadb, pw, tls="off")
        wait_for("an invalid DB_TLS refused", ready_is(503), timeout=15)
        assert "DB_TLS must be one of required|preferred|disabled" in app.logs()
    finally:
        replace_env(app.env_file, mariadb, pw)
    wait_for("/ready after restoring DB_TLS=disabled", ready_is(200), timeout=15)


def test_read_only_database_gives_503_with_retry_after(app: ShopApp, mariadb: MariaDB) -> None:
    count = http(app.port, "GET", "/orders/count").body["count"]
    try:
        mariadb.sql("SET GLOBAL read_only = 1;")
        r = http(app.port, "POST", "/orders", order_body(f"ro-{secrets.token_hex(6)}"))
        assert r.status == 503, r.body
        assert r.headers.get("retry-after") == "1"
        # Reads keep working on a read-only server.
        assert http(app.port, "GET", "/orders/count").body == {"count": count}
    finally:
        mariadb.sql("SET GLOBAL read_only = 0;")
    r = http(app.port, "POST", "/orders", order_body(f"rw-{secrets.token_hex(6)}"))
    assert r.status == 201, r.body


def test_logs_have_request_lines_and_never_the_password(app: ShopApp, mariadb: MariaDB) -> None:
    http(app.port, "GET", "/health")
    logs = app.logs()
    assert "method=GET path=/health status=200 ms=" in logs
    assert mariadb.password not in logs
    secret_part = mariadb.password.removeprefix("gl#").removesuffix("$")
    assert secret_part not in logs


# --------------------------------------------------------------------------- cart, checkout, designs
# The same checks run against the jar (the `app` fixture) and the WAR under Tomcat (`test_war_*`).


@dataclass
class Raw:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    def json(self) -> dict[str, Any]:
        ctype = self.header("content-type") or ""
        assert ctype.startswith("application/json"), (self.status, ctype, self.body[:200])
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


def raw(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Raw:
    """One request with the path sent exactly as given (no client-side normalisation)."""
    conn = HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Raw(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, str]:
    """(name, filename, content type, data) parts → (body, Content-Type header)."""
    boundary = "gl-" + secrets.token_hex(12)
    out = bytearray(b"preamble is ignored\r\n")
    for name, filename, ctype, data in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if ctype is not None:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def png(size: int) -> bytes:
    head = b"\x89PNG\r\n\x1a\n"
    # Random bytes, with CR/LF and '--' sequences, so boundary-like data crosses buffer edges.
    filler = secrets.token_bytes(max(size - len(head), 0)).replace(b"Q", b"\r\n--")
    return (head + filler)[:size]


SVG = (
    b'<?xml version="1.0"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>\n'
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + secrets.token_bytes(2000) + b"\xff\xd9"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Target:
    """A running shop (jar or WAR) and where it stores designs."""

    port: int
    upload_dir: Path
    workdir: Path
    uploaded: list[str] = field(default_factory=list)

    def upload(self, data: bytes, ctype: str, filename: str = "design", name: str = "file") -> Raw:
        body, header = multipart([("note", None, None, b"front print"), (name, filename, ctype, data)])
        return raw(self.port, "POST", "/designs", body, {"Content-Type": header})

    def sessions(self) -> int:
        value = raw(self.port, "GET", "/health").json()["sessions"]
        assert isinstance(value, int)
        return value

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.upload_dir.iterdir() if p.name.startswith("."))


def session_cookie(reply: Raw) -> str:
    cookies = [c for c in reply.cookies() if c.startswith("JSESSIONID=")]
    assert len(cookies) == 1, reply.headers
    return cookies[0]


def cookie_attributes(set_cookie: str) -> set[str]:
    """Attributes after the name=value pair, lower-cased ("httponly", "samesite=lax", ...)."""
    return {a.strip().lower() for a in set_cookie.split(";")[1:]}


def check_cart_kept_with_cookie_and_lost_without(t: Target) -> None:
    live_before = t.sessions()
    # An unknown sku creates no session.
    bad = raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "NO-SUCH-SKU", "qty": 1}).encode(),
        {"Content-Type": "application/json"},
    )
    assert bad.status == 422, bad.body
    assert not bad.cookies(), bad.headers

    first = raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "TSHIRT-BLK-M", "qty": 2}).encode(),
        {"Content-Type": "application/json"},
    )
    assert first.status == 200, first.body
    set_cookie = session_cookie(first)
    attrs = cookie_attributes(set_cookie)
    assert {"httponly", "samesite=lax"} <= attrs, set_cookie
    assert "secure" not in attrs, f"plain HTTP request got a Secure cookie: {set_cookie}"
    cookie = {"Cookie": set_cookie.split(";", 1)[0]}
    assert t.sessions() == live_before + 1

    second = raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "TSHIRT-BLK-M", "qty": 1}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    assert second.status == 200, second.body
    assert not second.cookies(), "an existing session must not get a new cookie"
    raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "HOODIE-GRY-M", "qty": 1}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    cart = raw(t.port, "GET", "/cart", headers=cookie).json()
    assert cart["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 3}, {"sku": "HOODIE-GRY-M", "qty": 1}], cart
    assert (cart["lines"], cart["total_qty"]) == (2, 4)

    # Without the cookie, or with one the server never issued, there is no cart.
    assert raw(t.port, "GET", "/cart").json()["items"] == []
    forged = raw(t.port, "GET", "/cart", headers={"Cookie": "JSESSIONID=" + "A" * 43})
    assert forged.json()["items"] == [] and not forged.cookies()
    assert t.sessions() == live_before + 1

    removed = raw(t.port, "DELETE", "/cart/items/HOODIE-GRY-M", headers=cookie).json()
    assert removed["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 3}]
    assert raw(t.port, "DELETE", "/cart/items/HOODIE-GRY-M", headers=cookie).status == 404
    too_many = raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "TSHIRT-BLK-M", "qty": 998}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    assert too_many.status == 400, too_many.body
    assert raw(t.port, "DELETE", "/cart", headers=cookie).json()["items"] == []

    # Behind a TLS-terminating proxy the cookie is Secure.
    https = raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "TSHIRT-WHT-M", "qty": 1}).encode(),
        {"Content-Type": "application/json", "X-Forwarded-Proto": "https"},
    )
    assert https.status == 200, https.body
    assert "secure" in cookie_attributes(session_cookie(https))

    metrics = raw(t.port, "GET", "/metrics")
    assert metrics.status == 200
    assert (metrics.header("content-type") or "").startswith("text/plain")
    live = re.search(rb"^shop_sessions_live (\d+)$", metrics.body, re.MULTILINE)
    assert live is not None and int(live.group(1)) == t.sessions() == live_before + 2, metrics.body


def check_checkout_creates_exactly_one_order(t: Target, mariadb: MariaDB) -> None:
    def count() -> int:
        return int(mariadb.sql("SELECT COUNT(*) FROM orders", DB_NAME)[0][0])

    ref = f"co{secrets.token_hex(6)}"
    added = raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "HOODIE-NVY-XL", "qty": 2}).encode(),
        {"Content-Type": "application/json"},
    )
    cookie = {"Cookie": session_cookie(added).split(";", 1)[0]}
    before = count()
    done = raw(
        t.port,
        "POST",
        "/cart/checkout",
        json.dumps({"order_ref": ref}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    assert done.status == 201, done.body
    body = done.json()
    assert body["order_ref"] == ref
    assert body["orders"] == [
        {"id": body["orders"][0]["id"], "order_ref": f"{ref}.1", "sku": "HOODIE-NVY-XL", "qty": 2}
    ]
    assert count() == before + 1
    rows = mariadb.sql(f"SELECT order_ref, sku, qty FROM orders WHERE order_ref LIKE '{ref}%'", DB_NAME)
    assert rows == [[f"{ref}.1", "HOODIE-NVY-XL", "2"]]
    assert raw(t.port, "GET", f"/orders/{ref}.1").json()["qty"] == 2
    assert raw(t.port, "GET", "/cart", headers=cookie).json()["items"] == [], "the cart must be empty after checkout"

    # A second submit orders nothing: the cart is empty ...
    again = raw(
        t.port,
        "POST",
        "/cart/checkout",
        json.dumps({"order_ref": ref}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    assert again.status == 409, again.body
    # ... and a retry with the same reference after refilling is a duplicate; the cart stays.
    raw(
        t.port,
        "POST",
        "/cart/items",
        json.dumps({"sku": "HOODIE-NVY-XL", "qty": 2}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    dup = raw(
        t.port,
        "POST",
        "/cart/checkout",
        json.dumps({"order_ref": ref}).encode(),
        {**cookie, "Content-Type": "application/json"},
    )
    assert dup.status == 409, dup.body
    assert raw(t.port, "GET", "/cart", headers=cookie).json()["total_qty"] == 2
    assert count() == before + 1
    # Without a session there is nothing to check out.
    assert raw(t.port, "POST", "/cart/checkout", b"").status == 409
    # A server-generated reference when the client sends none.
    generated = raw(t.port, "POST", "/cart/checkout", b"", cookie)
    assert generated.status == 201, generated.body
    assert count() == before + 2
    bad_ref = raw(t.port, "POST", "/cart/checkout", json.dumps({"order_ref": "a.b"}).encode(), cookie)
    assert bad_ref.status == 400


def check_upload_round_trip(t: Target) -> None:
    for data, ctype, ext in [
        (png(3 * 1024 * 1024 + 17), "image/png", "png"),
        (JPEG, "image/jpeg", "jpg"),
        (SVG, "image/svg+xml", "svg"),
        (PDF, "application/pdf", "pdf"),
        (png(UPLOAD_MAX), "image/png", "png"),  # exactly the limit is accepted
    ]:
        up = t.upload(data, ctype)
        assert up.status == 201, up.body[:300]
        meta = up.json()
        sha = hashlib.sha256(data).hexdigest()
        assert (meta["sha256"], meta["size"], meta["content_type"]) == (sha, len(data), ctype)
        design_id = meta["id"]
        assert isinstance(design_id, str) and re.fullmatch(r"[0-9a-f]{32}", design_id)
        assert up.header("etag") == f'"{sha}"'
        assert up.header("location") == f"/designs/{design_id}"
        got = raw(t.port, "GET", f"/designs/{design_id}")
        assert got.status == 200
        assert got.body == data, f"{ctype}: downloaded bytes differ"
        assert (got.header("content-type") or "").split(";")[0] == ctype
        assert got.header("etag") == f'"{sha}"'
        assert got.header("x-content-type-options") == "nosniff"
        assert "sandbox" in (got.header("content-security-policy") or "")
        assert raw(t.port, "GET", f"/designs/{design_id}", headers={"If-None-Match": f'"{sha}"'}).status == 304
        stored = t.upload_dir / f"{design_id}.{ext}"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
        t.uploaded.append(design_id)
    assert t.leftovers() == [], "temporary files left in the upload directory"


def check_upload_refusals(t: Target) -> None:
    before = sorted(p.name for p in t.upload_dir.iterdir())
    too_big = t.upload(png(UPLOAD_MAX + 1), "image/png")
    assert too_big.status == 413, too_big.body[:300]
    way_too_big = t.upload(png(UPLOAD_MAX + 256 * 1024), "image/png")  # refused on Content-Length
    assert way_too_big.status == 413, way_too_big.body[:300]
    for data, ctype in [
        (b"<html><script>alert(1)</script></html>", "text/html"),
        (b"GIF89a" + secrets.token_bytes(100), "image/gif"),
        (b"<html><script>alert(1)</script></html>", "image/png"),  # label does not match the bytes
        (b"MZ" + secrets.token_bytes(100), "application/pdf"),
        (b"<html><body>no svg here</body></html>", "image/svg+xml"),
    ]:
        refused = t.upload(data, ctype)
        assert refused.status == 415, (ctype, refused.status, refused.body[:300])
    not_multipart = raw(t.port, "POST", "/designs", png(100), {"Content-Type": "image/png"})
    assert not_multipart.status == 415
    no_file = t.upload(png(100), "image/png", name="other")
    assert no_file.status == 400
    body, header = multipart([("file", "x.png", "image/png", png(100))])
    truncated = raw(t.port, "POST", "/designs", body[: len(body) // 2], {"Content-Type": header})
    assert truncated.status == 400
    no_boundary_in_body = raw(t.port, "POST", "/designs", secrets.token_bytes(200_000), {"Content-Type": header})
    assert no_boundary_in_body.status == 400
    no_boundary_param = raw(t.port, "POST", "/designs", body, {"Content-Type": "multipart/form-data"})
    assert no_boundary_param.status == 400
    assert sorted(p.name for p in t.upload_dir.iterdir()) == before, "a refused upload left files behind"
    health = raw(t.port, "GET", "/health")
    assert health.status == 200, "the shop must keep serving after refused uploads"


def check_path_traversal_is_refused(t: Target) -> None:
    secret = t.workdir / "secret.txt"
    secret.write_text("TOPSECRET\n")
    assert t.uploaded, "needs an uploaded design"
    known = t.uploaded[0]
    for path in [
        "/designs/../secret.txt",
        "/designs/../../../../etc/passwd",
        "/designs/..%2fsecret.txt",
        "/designs/%2e%2e%2fsecret.txt",
        "/designs/%2e%2e/secret.txt",
        "/designs/..\\secret.txt",
        f"/designs/{known}/../../secret.txt",
        f"/designs/{known}.json",
        f"/designs/{known}.png",
        f"/designs/{known[:-1]}",
        "/designs/" + "0" * 32,
    ]:
        r = raw(t.port, "GET", path)
        assert r.status in (400, 404), (path, r.status)
        assert b"TOPSECRET" not in r.body and b"root:" not in r.body, path
    # A client-chosen file name never reaches the file system.
    up = t.upload(png(200), "image/png", filename="../../evil.png")
    assert up.status == 201, up.body
    design_id = up.json()["id"]
    assert (t.upload_dir / f"{design_id}.png").is_file()
    assert not list(t.workdir.rglob("evil*")), "the client's file name was used"
    t.uploaded.append(str(design_id))


def check_listing(t: Target) -> None:
    listing = raw(t.port, "GET", "/designs").json()
    designs = listing["designs"]
    assert isinstance(designs, list)
    on_disk = sorted(p.stem for p in t.upload_dir.glob("*.json"))
    assert [d["id"] for d in designs] == on_disk
    assert listing["count"] == len(on_disk) >= len(t.uploaded)
    assert set(t.uploaded) <= set(on_disk)
    total = 0
    for d in designs:
        data = next(p for p in t.upload_dir.glob(f"{d['id']}.*") if p.suffix != ".json")
        assert d["size"] == data.stat().st_size
        assert d["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
        total += d["size"]
    assert listing["total_bytes"] == total


def run_session_and_upload_checks(t: Target, mariadb: MariaDB) -> None:
    check_cart_kept_with_cookie_and_lost_without(t)
    check_checkout_creates_exactly_one_order(t, mariadb)
    check_upload_round_trip(t)
    check_upload_refusals(t)
    check_path_traversal_is_refused(t)
    check_listing(t)


@pytest.fixture(scope="module")
def jar_target(app: ShopApp, workdir: Path) -> Target:
    return Target(port=app.port, upload_dir=workdir / "designs", workdir=workdir)


def test_cart_kept_with_cookie_and_lost_without(jar_target: Target) -> None:
    check_cart_kept_with_cookie_and_lost_without(jar_target)


def test_checkout_creates_exactly_one_order(jar_target: Target, mariadb: MariaDB) -> None:
    check_checkout_creates_exactly_one_order(jar_target, mariadb)


def test_upload_round_trip_is_byte_identical(jar_target: Target) -> None:
    check_upload_round_trip(jar_target)


def test_upload_refusals_413_415_400(jar_target: Target) -> None:
    check_upload_refusals(jar_target)


def test_path_traversal_is_refused(jar_target: Target) -> None:
    if not jar_target.uploaded:
        check_upload_round_trip(jar_target)
    check_path_traversal_is_refused(jar_target)


def test_design_listing(jar_target: Target) -> None:
    check_listing(jar_target)


def start_jar(
    jar: Path, workdir: Path, env_file: Path, port: int, name: str, extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    """Another jar beside the module's app: its own port, upload dir (designs-NAME) and log (NAME.out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "APP_", "SHOP_", "JAVA_TOOL", "JDK_JAVA"))}
    env |= {
        "SHOP_ENV_FILE": str(env_file),
        "APP_PORT": str(port),
        "APP_BIND": LOOPBACK,
        "SHOP_UPLOAD_DIR": str(workdir / f"designs-{name}"),
        **extra,
    }
    log = workdir / f"{name}.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(JAVA), "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-jar", str(jar)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    return proc, log


def wait_jar_serving(proc: subprocess.Popen[bytes], log: Path, port: int, what: str) -> None:
    """Until a jar from start_jar answers /health (its log in the failure when it exits first)."""

    def serving() -> bool:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(OSError):
            return raw(port, "GET", "/health", timeout=2).status == 200
        return False

    wait_for(what, serving, timeout=60, interval=0.3)


def test_session_timeout_is_configurable(jar: Path, mariadb: MariaDB, workdir: Path) -> None:
    """A second jar with SHOP_SESSION_TIMEOUT=2: the cart is gone after the timeout, the count drops."""
    env_file = workdir / "db-timeout.env"
    write_env(env_file, mariadb, mariadb.password)
    port = free_port()
    proc, log = start_jar(jar, workdir, env_file, port, "timeout", {"SHOP_SESSION_TIMEOUT": "2"})
    try:
        wait_jar_serving(proc, log, port, "the second shop to serve /health")
        t = Target(port=port, upload_dir=workdir / "designs-timeout", workdir=workdir)
        added = raw(
            port,
            "POST",
            "/cart/items",
            json.dumps({"sku": "TSHIRT-BLK-M", "qty": 1}).encode(),
            {"Content-Type": "application/json"},
        )
        cookie = {"Cookie": session_cookie(added).split(";", 1)[0]}
        assert raw(port, "GET", "/cart", headers=cookie).json()["total_qty"] == 1
        assert t.sessions() == 1
        time.sleep(3.5)
        assert raw(port, "GET", "/cart", headers=cookie).json()["items"] == [], "the session outlived its timeout"
        wait_for("the expired session to leave the count", lambda: t.sessions() == 0, timeout=10, interval=0.5)
    finally:
        stop(proc)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_cpu_work_per_request_is_spent_on_customers_requests_not_on_probes(
    jar: Path, mariadb: MariaDB, workdir: Path
) -> None:
    """SHOP_WORK_CPU_US=40000: every customer's request costs the process at least 40 ms of CPU
    (so a host with less CPU answers later, as the real monolith does when busy); the load
    balancer's /health costs none of it. A lower bound on CPU accounting, not a timing."""
    env_file = workdir / "db-work.env"
    write_env(env_file, mariadb, mariadb.password)
    port = free_port()
    proc, log = start_jar(jar, workdir, env_file, port, "work", {"SHOP_WORK_CPU_US": "40000"})
    try:
        wait_jar_serving(proc, log, port, "the shop with CPU work to serve /health")
        assert "CPU work per request 40000 us" in log.read_text()
        requests = 20
        before = process_cpu_seconds(proc.pid)
        for _ in range(requests):
            assert raw(port, "GET", "/catalog", timeout=30).status == 200
        spent = process_cpu_seconds(proc.pid) - before
        assert spent >= requests * 0.040, f"{requests} catalog requests cost only {spent:.3f} s of CPU"
        before = process_cpu_seconds(proc.pid)
        for _ in range(requests):
            assert raw(port, "GET", "/health", timeout=30).status == 200
        probes = process_cpu_seconds(proc.pid) - before
        assert probes < requests * 0.040 / 2, f"{requests} health checks cost {probes:.3f} s of CPU"
    finally:
        stop(proc)


def test_cpu_work_built_into_the_jar(jar: Path, tmp_path: Path) -> None:
    """SHOP_WORK_CPU_US at build time goes into the jar (scripts/bench-peak builds one artifact for both
    estates); a bad value is refused before anything is built; the default jar has none. The variant is built
    in its own directory (SHOP_BUILD_DIR): the shared artifact, which a rehearsal may be baking, stays as is."""
    built = subprocess.run(
        [str(BUILD_SH)],
        env=os.environ | {"SHOP_WORK_CPU_US": "1234", "SHOP_BUILD_WAR": "no", "SHOP_BUILD_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "work_cpu_us: 1234" in built.stdout
    variant = tmp_path / "shop-standin.jar"
    inside = subprocess.run(
        ["unzip", "-p", str(variant), "gearlift/shopstandin/work.properties"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert inside.strip() == "work.cpu.us=1234"
    bad = subprocess.run(
        [str(BUILD_SH)],
        env=os.environ | {"SHOP_WORK_CPU_US": "2000000", "SHOP_BUILD_DIR": str(tmp_path / "bad")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 1
    assert "SHOP_WORK_CPU_US must be an integer 0..1000000" in bad.stderr
    assert not (tmp_path / "bad").exists()
    listing = subprocess.run(["unzip", "-Z1", str(jar)], capture_output=True, text=True, timeout=30, check=True)
    assert "gearlift/shopstandin/work.properties" not in listing.stdout.splitlines()


def test_a_refused_login_asks_for_a_re_fetch_and_the_new_password_is_used_without_restart(
    jar: Path, mariadb: MariaDB, workdir: Path
) -> None:
    """A rotated password the host has not fetched yet: the server refuses the pool's next login
    (1045), the app writes SHOP_DB_REFETCH_FILE (the java_app role's path unit re-runs the fetcher
    on it) and, once the env file has the new password, serves again: same process, no restart."""
    user = "shoprot"
    first, second = "Rot1-" + mariadb.password, "Rot2-" + mariadb.password
    mariadb.sql(
        f"CREATE USER '{user}'@'{LOOPBACK}' IDENTIFIED BY '{first}';\n"
        f"GRANT SELECT, INSERT ON {DB_NAME}.* TO '{user}'@'{LOOPBACK}';\n"
    )
    env_file, refetch = workdir / "db-rotation.env", workdir / "db-refetch-request"
    write_env(env_file, mariadb, first, user=user)
    port = free_port()
    proc, log = start_jar(jar, workdir, env_file, port, "rotation", {"SHOP_DB_REFETCH_FILE": str(refetch)})
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                return raw(port, "GET", "/ready", timeout=2).status == 200
            return False

        wait_for("the rotation shop to be ready", ready, timeout=60, interval=0.3)
        assert raw(port, "GET", "/catalog").status == 200
        assert not refetch.exists()
        # The rotation sets a new password and the server drops the app's sessions (a restart,
        # a failover or the pool's own recycling would do the same): the next login is refused.
        mariadb.sql(f"ALTER USER '{user}'@'{LOOPBACK}' IDENTIFIED BY '{second}';")
        for (conn_id,) in mariadb.sql(f"SELECT id FROM information_schema.processlist WHERE user = '{user}';"):
            mariadb.sql(f"KILL CONNECTION {conn_id};")
        refused = raw(port, "GET", "/catalog")
        assert refused.status == 503, refused.body
        wait_for("the re-fetch request file", refetch.exists, timeout=10, interval=0.2)
        text = log.read_text(errors="replace")
        assert "database refused the login" in text and "asked for a re-fetch of the secret" in text, text
        assert second not in text and first not in text, "a password reached the log"
        # The fetcher (here: the test) writes the new password; the app follows it.
        replace_env(env_file, mariadb, second, user=user)
        wait_for("the shop to serve with the new password", ready, timeout=20, interval=0.3)
        assert raw(port, "GET", "/catalog").status == 200
        assert proc.poll() is None, "the app must take the new password without a restart"
    finally:
        stop(proc)
        mariadb.sql(f"DROP USER IF EXISTS '{user}'@'{LOOPBACK}';")


def test_bad_settings_stop_the_jar_with_a_message(jar: Path, workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "APP_", "SHOP_"))}
    for key, value in [
        ("SHOP_UPLOAD_MAX_BYTES", "0"),
        ("SHOP_SESSION_TIMEOUT", "ten"),
        ("SHOP_UPLOAD_DIR", "rel/dir"),
        ("SHOP_WORK_CPU_US", "-1"),
    ]:
        out = subprocess.run(
            [str(JAVA), "-jar", str(jar)],
            env=env | {key: value, "APP_PORT": str(free_port())},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2, (key, out.stdout, out.stderr)
        assert key in out.stdout, out.stdout


# --------------------------------------------------------------------------- the WAR under Tomcat


def render_role_template(template: Path, **variables: object) -> str:
    """A java_app role template rendered the way the role renders it (no Ansible filters needed)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(template.read_text()).render(ansible_managed="test", **variables)


def role_defaults() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "roles" / "java_app" / "defaults" / "main.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@dataclass
class Tomcat:
    target: Target
    base: Path
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.base / "logs" / "console.out"

    def kill(self) -> None:
        """The host goes away: no shutdown, nothing flushed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def run_tomcat(workdir: Path, name: str, env_file: Path, session_store: str = "memory") -> Iterator[Tomcat]:
    """The WAR as ROOT in a throw-away Tomcat 10 (CATALINA_BASE workdir/<name>, 127.0.0.1, free port),
    with the java_app role's server.xml and context.xml (and, with the redis store, the session
    manager's jar in CATALINA_BASE/lib, as the role installs it)."""
    catalina = TOMCAT_HOME / "bin" / "catalina.sh"
    if not catalina.is_file():
        pytest.skip("Tomcat 10 is not installed (apt-get install tomcat10-common)")
    war = APP_DIR / "build" / "shop-standin.war"
    if not war.is_file():
        pytest.skip("build.sh did not build the WAR (no Jakarta Servlet API jar: install libtomcat10-java)")
    base = workdir / name
    shutil.rmtree(base, ignore_errors=True)
    for sub in ("conf", "webapps", "logs", "temp", "work", "lib"):
        (base / sub).mkdir(parents=True)
    port = free_port()
    (base / "conf" / "server.xml").write_text(
        render_role_template(
            SERVER_XML_TEMPLATE,
            java_app_bind_address=LOOPBACK,
            java_app_port=port,
            java_app_upload_max_bytes=UPLOAD_MAX,
        )
    )
    (base / "conf" / "context.xml").write_text(
        render_role_template(
            CONTEXT_XML_TEMPLATE,
            java_app_session_store=session_store,
            java_app_tomcat_session_class_filter=role_defaults()["java_app_tomcat_session_class_filter"],
            __java_app_db_env_file=str(env_file),
        )
    )
    if session_store == "redis":
        if not SESSIONS_JAR.is_file():
            pytest.skip("build.sh did not build gearlift-tomcat-sessions.jar (no Tomcat catalina.jar)")
        shutil.copy(SESSIONS_JAR, base / "lib" / SESSIONS_JAR.name)
    # Debian's defaults when the tomcat10 package is there (tomcat10-common alone has none: Tomcat's
    # built-in defaults then apply; the WAR maps "/" itself and needs no global web.xml).
    for conf in ("web.xml", "catalina.properties", "logging.properties"):
        if (TOMCAT_HOME / "etc" / conf).is_file():
            shutil.copy(TOMCAT_HOME / "etc" / conf, base / "conf" / conf)
    shutil.copy(war, base / "webapps" / "ROOT.war")
    upload_dir = workdir / f"designs-{name}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "APP_", "SHOP_", "SESSION_", "JAVA_TOOL", "JDK_JAVA", "CATALINA", "JAVA_OPTS"))
    }
    env |= {
        "CATALINA_HOME": str(TOMCAT_HOME),
        "CATALINA_BASE": str(base),
        "CATALINA_TMPDIR": str(base / "temp"),
        "CATALINA_PID": str(base / "tomcat.pid"),
        "JAVA_OPTS": "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true",
        "SHOP_ENV_FILE": str(env_file),
        "SHOP_UPLOAD_DIR": str(upload_dir),
        "SHOP_UPLOAD_MAX_BYTES": str(UPLOAD_MAX),
        "SHOP_SESSION_TIMEOUT": "600",
    }
    log = base / "logs" / "console.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["/bin/sh", str(catalina), "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=base,
            start_new_session=True,
        )
    tomcat = Tomcat(Target(port=port, upload_dir=upload_dir, workdir=workdir), base, proc)
    try:

        def serving() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            with contextlib.suppress(OSError):
                return raw(port, "GET", "/health", timeout=2).status == 200
            return False

        wait_for(f"Tomcat {name} to serve the WAR's /health", serving, timeout=120, interval=0.5)
        yield tomcat
    finally:
        tomcat.stop()
        with contextlib.suppress(OSError):
            log.with_name("console.saved").write_bytes(log.read_bytes())


@pytest.fixture
def tomcat(jar: Path, mariadb: MariaDB, workdir: Path) -> Iterator[Target]:
    """The WAR under Tomcat with in-memory sessions (the role's default)."""
    env_file = workdir / "db-war.env"
    write_env(env_file, mariadb, mariadb.password)
    with run_tomcat(workdir, "tomcat", env_file) as t:
        yield t.target


def test_war_under_tomcat_same_checks(tomcat: Target, mariadb: MariaDB) -> None:
    """The WAR as ROOT under Tomcat 10 with the role's server.xml: same routes, sessions, uploads."""
    wait_for("/health to report the database", lambda: raw(tomcat.port, "GET", "/health").json()["db"] == "ok", 10, 0.2)
    health = raw(tomcat.port, "GET", "/health")
    assert health.status == 200
    body = health.json()
    assert (body["status"], body["db"]) == ("ok", "ok"), body
    assert health.header("server") is None, "Tomcat must not send a Server header"
    catalog = raw(tomcat.port, "GET", "/catalog")
    assert catalog.status == 200 and len(json.loads(catalog.body)) >= 4
    assert raw(tomcat.port, "GET", "/nope").json() == {"error": "not found"}
    run_session_and_upload_checks(tomcat, mariadb)
    logs = (tomcat.upload_dir.parent / "tomcat" / "logs" / "console.out").read_text(errors="replace")
    assert mariadb.password not in logs
    assert "method=POST path=/designs status=201" in logs


# --------------------------------------------------------------------------- WAR sessions in the store


@pytest.fixture(scope="module")
def session_store(workdir: Path) -> Iterator[RespServer]:
    """The session store on loopback: TLS (the test CA) and an AUTH token. No redis-server package is
    needed: a small RESP stand-in (resp_server.py) serves the commands the session managers send."""
    tls = make_tls(workdir / "redis-tls")
    if tls is None:
        pytest.skip("openssl is needed for the session store's TLS")
    with start_resp_server(tls.cert, tls.key, tls.ca, token="tok-" + secrets.token_urlsafe(24)) as server:
        yield server


def write_store_env(path: Path, db: MariaDB, store: RespServer | TwinRedis) -> None:
    """The env file as the java_app role's secret unit writes it with java_app_session_store redis."""
    write_env(path, db, db.password)
    with path.open("a") as f:
        f.write(
            "SESSION_STORE=redis\n"
            f"SESSION_REDIS_HOST={LOOPBACK}\n"
            f"SESSION_REDIS_PORT={store.port}\n"
            "SESSION_REDIS_TLS=required\n"
            f"SESSION_REDIS_TLS_CA={store.ca}\n"
            f"SESSION_REDIS_TOKEN={store.token}\n"
        )
    path.chmod(0o640)


def add_item(port: int, sku: str, qty: int, cookie: dict[str, str] | None = None) -> Raw:
    return raw(
        port,
        "POST",
        "/cart/items",
        json.dumps({"sku": sku, "qty": qty}).encode(),
        {**(cookie or {}), "Content-Type": "application/json"},
    )


@contextlib.contextmanager
def two_tomcats_sharing_a_cart(
    workdir: Path, mariadb: MariaDB, store: RespServer | TwinRedis, names: tuple[str, str]
) -> Iterator[tuple[Tomcat, Tomcat, dict[str, str], bytes]]:
    """Two Tomcats on the session store (the role's context.xml for redis) and a first cart of 2 put in
    through the first: (first, second, the cart's cookie header, its store key)."""
    env_file = workdir / f"db-{names[0]}.env"
    write_store_env(env_file, mariadb, store)
    with run_tomcat(workdir, names[0], env_file, "redis") as a, run_tomcat(workdir, names[1], env_file, "redis") as b:
        first = add_item(a.target.port, "TSHIRT-BLK-M", 2)
        assert first.status == 200, (first.body, a.log.read_text(errors="replace")[-3000:])
        set_cookie = session_cookie(first)
        assert {"httponly", "samesite=lax"} <= cookie_attributes(set_cookie)
        cookie = {"Cookie": set_cookie.split(";", 1)[0]}
        yield a, b, cookie, b"gl:tsess:" + cookie["Cookie"].split("=", 1)[1].encode()


def test_war_sessions_in_the_store_survive_their_tomcat(
    jar: Path, mariadb: MariaDB, workdir: Path, session_store: RespServer
) -> None:
    """Two Tomcats with the role's context.xml for java_app_session_store redis (RedisSessionManager
    in Tomcat's lib): a cart put in through one is read and changed through the other with the same
    cookie, each sees the other's last write, and after the first Tomcat is killed no cart is lost. The
    token is in no configuration file and no log."""
    with two_tomcats_sharing_a_cart(workdir, mariadb, session_store, ("tomcat-a", "tomcat-b")) as (a, b, cookie, key):
        pa, pb = a.target.port, b.target.port
        assert session_store.keys(b"gl:tsess:") == [key]
        ttl = session_store.ttl(key)
        assert ttl is not None and 590 < ttl <= 600, f"the key's TTL is the idle timeout (600 s), got {ttl}"

        # The other Tomcat reads it, with the same cookie and no new one.
        on_b = raw(pb, "GET", "/cart", headers=cookie)
        assert on_b.json()["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 2}], on_b.body
        assert not on_b.cookies(), "a session from the store must not get a new cookie"
        # Changes go both ways: each Tomcat reads the other's last write (no stale local copy).
        assert add_item(pb, "HOODIE-GRY-M", 1, cookie).status == 200
        assert raw(pa, "GET", "/cart", headers=cookie).json()["items"] == [
            {"sku": "TSHIRT-BLK-M", "qty": 2},
            {"sku": "HOODIE-GRY-M", "qty": 1},
        ]
        assert add_item(pa, "TSHIRT-BLK-M", 1, cookie).status == 200
        assert raw(pb, "GET", "/cart", headers=cookie).json()["total_qty"] == 4

        # The first host goes away (killed: no shutdown hook, nothing flushed at the end): every change
        # was written through, so the second serves the whole cart.
        a.kill()
        after = raw(pb, "GET", "/cart", headers=cookie).json()
        assert after["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 3}, {"sku": "HOODIE-GRY-M", "qty": 1}], after
        assert add_item(pb, "TSHIRT-WHT-M", 1, cookie).status == 200
        assert raw(pb, "GET", "/cart", headers=cookie).json()["lines"] == 3

        # A cookie the store does not know gives no cart, and is not adopted.
        forged = raw(pb, "GET", "/cart", headers={"Cookie": "JSESSIONID=" + "A" * 32})
        assert forged.json()["items"] == [] and not forged.cookies()

        # A store that answers with errors: 503 + Retry-After, never a new empty session over the cookie.
        session_store.refuse = True
        try:
            for reply in (raw(pb, "GET", "/cart", headers=cookie), add_item(pb, "TSHIRT-BLK-M", 1, cookie)):
                assert reply.status == 503, (reply.body, b.log.read_text(errors="replace")[-3000:])
                assert reply.header("retry-after") == "1"
                assert not reply.cookies(), reply.headers
        finally:
            session_store.refuse = False
        assert raw(pb, "GET", "/cart", headers=cookie).json()["total_qty"] == 5

        # A stored session naming a class the filter does not admit is refused before the class is
        # looked up: no session (an empty cart), a warning, nothing instantiated.
        other = add_item(pb, "TSHIRT-BLK-M", 1)
        other_cookie = {"Cookie": session_cookie(other).split(";", 1)[0]}
        other_key = b"gl:tsess:" + other_cookie["Cookie"].split("=", 1)[1].encode()
        with session_store.lock:
            value, expiry = session_store.data[other_key]
            assert value.count(b"gearlift.shopstandin.Cart") == 1
            # Same length, so the serialised stream stays well-formed.
            session_store.data[other_key] = (
                value.replace(b"gearlift.shopstandin.Cart", b"java.util.IdentityHashMap"),
                expiry,
            )
        assert raw(pb, "GET", "/cart", headers=other_cookie).json()["items"] == []
        assert "a stored session could not be read (InvalidClassException)" in b.log.read_text(errors="replace")

        # The same cart, checkout and upload checks as the in-memory WAR, on the second Tomcat.
        run_session_and_upload_checks(b.target, mariadb)

        context_xml = (b.base / "conf" / "context.xml").read_text()
        assert "gearlift.shopstandin.RedisSessionManager" in context_xml
        assert session_store.token not in context_xml
        for t in (a, b):
            logs = t.log.read_text(errors="replace")
            assert "in the session store: redis 127.0.0.1" in logs, logs[-3000:]
            assert session_store.token not in logs, "the session store's token reached a log"
            assert mariadb.password not in logs
    assert "AUTH" in session_store.commands


# ------------------------------------------------------------- WAR sessions in the twin's real Redis


@dataclass
class TwinRedis:
    """The twin's ElastiCache stand-in run alone: Debian's redis-server from the twin's Redis image with
    the redis.conf the twin writes for a replication group with TLS and an AUTH token, on loopback."""

    port: int
    token: str
    ca: Path
    container: str

    def cli(self, *args: str) -> str:
        """One redis-cli command inside the container over TLS; the token goes by environment, never argv."""
        command = ["podman", "exec", "-e", "REDISCLI_AUTH", self.container, "redis-cli", "--tls"]
        command += ["--cacert", f"{TWIN_REDIS_TLS}/ca.crt", "-h", LOOPBACK, "-p", "6379", *args]
        out = subprocess.run(
            command,
            env={**os.environ, "REDISCLI_AUTH": self.token},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


TWIN_REDIS_TLS = "/etc/redis/twin-tls"


@pytest.fixture
def twin_redis(workdir: Path) -> Iterator[TwinRedis]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (run ./scripts/bootstrap)")
    from gearlift.twin import images, podman, tls
    from gearlift.twin.dataplane import elasticache

    image = images.ensure_redis_image()
    root = workdir / "twin-redis"
    tls.ensure_ca(root / "ca")
    tls.issue_certificate(root / "ca", root / "tls", "server", "localhost", ["DNS:localhost", f"IP:{LOOPBACK}"])
    conf = root / "redis.conf"
    conf.write_text(elasticache.server_config(6379, True, token := "tw-" + secrets.token_urlsafe(32)))
    conf.chmod(0o600)
    port, name = free_port(), f"gl-war-redis-{secrets.token_hex(4)}"
    podman.run(
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"{LOOPBACK}:{port}:6379",
        *podman.RUN_FIX_ARGS,
        "-v",
        f"{conf}:{elasticache.CONF_IN_CONTAINER}:ro",
        "-v",
        f"{root / 'tls'}:{TWIN_REDIS_TLS}:ro",
        image,
        "redis-server",
        elasticache.CONF_IN_CONTAINER,
    )
    store = TwinRedis(port=port, token=token, ca=root / "tls" / "ca.crt", container=name)
    try:

        def pong() -> bool:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                return store.cli("PING") == "PONG"
            return False

        wait_for("the twin's Redis to answer PING over TLS", pong, timeout=60, interval=0.5)
        yield store
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "2", name], capture_output=True, timeout=60, check=False)


@pytest.mark.slow
def test_war_sessions_in_the_twins_real_redis(
    jar: Path, mariadb: MariaDB, workdir: Path, twin_redis: TwinRedis
) -> None:
    """The WAR's RedisSessionManager against a real Redis (the server the twin runs for ElastiCache, TLS
    and AUTH as the twin configures a group): two Tomcats share a cart in both directions, the key
    carries the idle timeout as its TTL, a killed Tomcat loses no cart, a store that is gone answers
    503 with Retry-After and no new session, and the token reaches no file and no log."""
    with two_tomcats_sharing_a_cart(workdir, mariadb, twin_redis, ("tomcat-ra", "tomcat-rb")) as (
        a,
        b,
        cookie,
        raw_key,
    ):
        pa, pb = a.target.port, b.target.port
        key = raw_key.decode()
        assert twin_redis.cli("--scan", "--pattern", "gl:tsess:*").split() == [key]
        ttl = int(twin_redis.cli("TTL", key))
        assert 590 < ttl <= 600, f"the key's TTL is the idle timeout (600 s), got {ttl}"

        on_b = raw(pb, "GET", "/cart", headers=cookie)
        assert on_b.json()["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 2}], on_b.body
        assert not on_b.cookies(), "a session from the store must not get a new cookie"
        assert add_item(pb, "HOODIE-GRY-M", 1, cookie).status == 200
        assert raw(pa, "GET", "/cart", headers=cookie).json()["total_qty"] == 3

        a.kill()
        after = raw(pb, "GET", "/cart", headers=cookie).json()
        assert after["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 2}, {"sku": "HOODIE-GRY-M", "qty": 1}], after
        run_session_and_upload_checks(b.target, mariadb)

        subprocess.run(["podman", "stop", "-t", "2", twin_redis.container], capture_output=True, timeout=60, check=True)
        for reply in (raw(pb, "GET", "/cart", headers=cookie), add_item(pb, "TSHIRT-BLK-M", 1, cookie)):
            assert reply.status == 503, (reply.body, b.log.read_text(errors="replace")[-3000:])
            assert reply.header("retry-after") == "1"
            assert not reply.cookies(), reply.headers
        for t in (a, b):
            logs = t.log.read_text(errors="replace")
            assert "in the session store: redis 127.0.0.1" in logs, logs[-3000:]
            assert twin_redis.token not in logs, "the session store's token reached a log"
            assert twin_redis.token not in (t.base / "conf" / "context.xml").read_text()


def test_war_build_is_reproducible(jar: Path) -> None:
    war = APP_DIR / "build" / "shop-standin.war"
    if not war.is_file():
        pytest.skip("no Jakarta Servlet API jar: the WAR is not built")
    first = war.read_bytes()
    out = subprocess.run([str(BUILD_SH)], capture_output=True, text=True, timeout=300, check=True)
    assert f"war: {war}" in out.stdout
    assert war.read_bytes() == first
    names = subprocess.run(["unzip", "-Z1", str(war)], capture_output=True, text=True, timeout=30, check=True).stdout
    entries = set(names.split())
    assert {
        "WEB-INF/web.xml",
        "META-INF/context.xml",
        "WEB-INF/lib/mariadb-java-client.jar",
        "WEB-INF/classes/gearlift/shopstandin/ShopServlet.class",
        "WEB-INF/classes/gearlift/shopstandin/ShopHandler.class",
    } <= entries
    assert not any("servlet-api" in e for e in entries), "the container provides the servlet API"
    # The runnable jar has no servlet classes (no servlet API on its class path).
    jar_entries = subprocess.run(
        ["unzip", "-Z1", str(jar)], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "ShopServlet" not in jar_entries


def test_build_war_switch(jar: Path) -> None:
    skipped = subprocess.run(
        [str(BUILD_SH)],
        env=os.environ | {"SHOP_BUILD_WAR": "no"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "war: skipped (SHOP_BUILD_WAR=no)" in skipped.stdout
    missing = subprocess.run(
        [str(BUILD_SH)],
        env=os.environ | {"SHOP_SERVLET_API_JAR": "/nonexistent/servlet-api.jar"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert missing.returncode == 1
    assert "SHOP_SERVLET_API_JAR=/nonexistent/servlet-api.jar is not readable" in missing.stderr


def test_sigterm_stops_gracefully(app: ShopApp, mariadb: MariaDB) -> None:
    """Runs last: stops the shared app."""
    app.proc.send_signal(signal.SIGTERM)
    rc = app.proc.wait(timeout=20)
    assert rc in (0, 128 + signal.SIGTERM), rc
    logs = app.logs()
    assert "shutdown requested" in logs
    assert logs.rstrip().endswith("INFO stopped")
    assert mariadb.password not in logs
    # No connection left behind on the server.
    rows = mariadb.sql(f"SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{DB_USER}'")
    assert rows == [["0"]]
