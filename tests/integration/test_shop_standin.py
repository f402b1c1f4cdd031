"""Integration test for the stand-in shop (app/shop-standin).

Builds the jar with build.sh, starts a throwaway MariaDB server from the Debian packages
(real users and passwords, TLS with a throwaway CA when openssl is present, loopback only),
applies schema.sql, runs `java -jar` against it (DB_TLS=disabled by default) and checks the
HTTP behaviour, the env-file reload, the DB_TLS modes, read-only handling and log hygiene.
Everything started here is stopped and removed in fixture teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .mariadb_server import (
    LOOPBACK,
    MARIADBD,
    MariaDB,
    free_port,
    start_mariadb,
    stop,
    wait_for,
    which,
)

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app" / "shop-standin"
BUILD_SH = APP_DIR / "build.sh"
SCHEMA = APP_DIR / "schema.sql"
CONNECTOR_JAR = "/usr/share/java/mariadb-java-client.jar"
DB_NAME = "shop"
DB_USER = "shopapp"
DB_TLS_USER = "shoptls"  # created with REQUIRE SSL


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
    env |= {"SHOP_ENV_FILE": str(env_file), "APP_PORT": str(port), "APP_BIND": LOOPBACK}
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
    r = http(app.port, "GET", "/health")
    assert r.status == 200
    assert r.body == {"status": "ok", "host": socket.gethostname(), "db": "ok"}


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
