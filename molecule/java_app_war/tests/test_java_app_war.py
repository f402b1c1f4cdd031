"""Behaviour of gearlift.platform.java_app with java_app_artifact_type: war (Debian's Tomcat 10).

The same concerns as molecule/java_app (the jar): the service and its sandbox, the database through
the boot-time secret, the password kept off the disk and out of the journal, the shop's carts and
design uploads (shared checks in molecule/java_app/tests/shop_checks.py), a graceful stop; plus
Tomcat's hardening (no shutdown port, no AJP, no Server header, no manager or default application,
a webapps directory Tomcat cannot write).

Every testinfra command is one Ansible-free ``podman exec`` here, but still costs time: checks are
batched and every assertion names what failed.
"""

import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "java_app" / "tests"))
import shop_checks

SERVICE = "tomcat10.service"
SECRET_UNIT = "gearlift-db-secret.service"
WEBAPPS = "/var/lib/tomcat10/webapps"
SECRETS_DATA = "/var/lib/secretsmanager-standin/secrets.json"
TEST_DIR = "/run/gearlift-test"
PW_FILE = f"{TEST_DIR}/pw"
SEEDED = {"TSHIRT-BLK-M", "TSHIRT-BLK-L", "TSHIRT-WHT-M", "HOODIE-GRY-M", "HOODIE-GRY-L", "HOODIE-NVY-XL"}
SEARCHED = "/etc /opt /var /usr/local /home /root"
EXCLUDED = "--exclude-dir=mysql --exclude-dir=secretsmanager-standin"
SANDBOX = {
    "User": "tomcat",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "Restart": "on-failure",
    "UMask": "0027",
}


def _show(host, unit, *props):
    out = host.check_output(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    missing = set(props) - set(values)
    assert not missing, f"systemctl show {unit} did not report {sorted(missing)}"
    return values


def _stat(host, *paths):
    out = host.run("stat -c '%U %G %a %n' " + " ".join(shlex.quote(p) for p in paths)).stdout
    result = {}
    for line in out.splitlines():
        user, group, mode, name = line.split(" ", 3)
        result[name] = (user, group, int(mode, 8))
    return result


def _wait_for_catalog(host, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = host.run("curl -s --max-time 5 http://127.0.0.1:8080/catalog")
        if result.rc == 0 and result.stdout.startswith("["):
            return json.loads(result.stdout)
        time.sleep(2)
    pytest.fail(f"/catalog did not answer within {timeout}s")


@pytest.fixture(scope="module")
def password_file(host):
    lines, size = host.check_output(
        f"install -d -m 0700 {TEST_DIR} && "
        'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); '
        "print(json.loads(d['shop/db']['SecretString'])['password'])\" "
        f"{SECRETS_DATA} > {PW_FILE} && echo $(wc -l < {PW_FILE}) $(wc -c < {PW_FILE})"
    ).split()
    assert int(lines) == 1, "password fixture: not exactly one line"
    assert int(size) > 20, "password fixture: too short"
    return PW_FILE


def test_tomcat_runs_the_war_with_the_secret_unit_and_sandbox(host):
    """tomcat10 active and enabled as tomcat, after the secret unit, sandboxed, with the shop's environment."""
    props = _show(
        host,
        SERVICE,
        *SANDBOX,
        "ActiveState",
        "SubState",
        "UnitFileState",
        "Requires",
        "After",
        "SupplementaryGroups",
        "Environment",
        "ReadWritePaths",
        "SuccessExitStatus",
        "MainPID",
        "DropInPaths",
    )
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    assert props["UnitFileState"] == "enabled", props["UnitFileState"]
    assert "/etc/systemd/system/tomcat10.service.d/gearlift.conf" in props["DropInPaths"], props["DropInPaths"]
    wrong = {p: props[p] for p, value in SANDBOX.items() if props[p] != value}
    assert not wrong, f"{SERVICE} sandbox differs (property: actual): {wrong}"
    assert SECRET_UNIT in props["Requires"].split() and SECRET_UNIT in props["After"].split(), props["Requires"]
    assert props["SupplementaryGroups"] == "shop", props["SupplementaryGroups"]
    env = set(props["Environment"].split())
    expected = {
        "SHOP_ENV_FILE=/run/gearlift/db.env",
        "SHOP_UPLOAD_DIR=/var/lib/shop/designs",
        "SHOP_UPLOAD_MAX_BYTES=10485760",
        "SHOP_SESSION_TIMEOUT=1800",
        "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64",
    }
    assert expected <= env, f"Environment lacks {expected - env}"
    rw = props["ReadWritePaths"].split()
    assert {"/var/lib/shop", "/var/log/shop", "/var/lib/shop/designs"} <= set(rw), rw
    assert "143" in props["SuccessExitStatus"], props["SuccessExitStatus"]

    pid = int(props["MainPID"])
    assert pid > 0, "tomcat10 has no main process"
    out = host.check_output(
        f"ps -o user= -p {pid}; tr '\\0' '\\n' < /proc/{pid}/cmdline | grep -c -e '^-XX:MaxRAMPercentage=60.0$'"
        " -e '^-Djava.security.properties=/etc/gearlift/shop/java.security$' -e '^-Dnetworkaddress.cache.ttl=30$'"
    ).split()
    assert out[0] == "tomcat", f"Tomcat runs as {out[0]}"
    assert out[1] == "3", "the JVM lacks the role's heap, java.security or DNS TTL options"

    sha = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "shop-standin.sha256").read_text().strip()
    deployed = host.check_output(f"sha256sum {WEBAPPS}/ROOT.war").split()[0]
    assert deployed == sha, "the deployed WAR is not the verified artifact"


def test_catalog_from_mariadb_and_password_handling(host, password_file):
    """The WAR reads MariaDB with the fetched login; the password stays in /run (not on disk, not in the journal)."""
    products = _wait_for_catalog(host)
    assert {p["sku"] for p in products} == SEEDED, products
    found = host.run(f"grep -rlsF -f {password_file} {EXCLUDED} {SEARCHED}")
    assert found.stdout.strip() == "", f"password found on disk in: {found.stdout}"
    assert found.rc in (1, 2), f"grep for the password failed unexpectedly (rc {found.rc})"
    hits = host.run(f"journalctl --no-pager -o verbose | grep -cF -f {password_file}")
    assert hits.stdout.strip() == "0", f"password found {hits.stdout.strip()} times in the journal"


def test_tomcat_is_hardened(host):
    """No shutdown port, no AJP, loopback only, no Server header, no manager/default apps, read-only webapps."""
    _wait_for_catalog(host)
    # Listening TCP sockets from /proc (no iproute2 needed): "address:port" with IPv4/IPv6 wildcards.
    listening = host.check_output(
        'python3 -c "import socket, struct\n'
        "for f, fam in (('/proc/net/tcp', 4), ('/proc/net/tcp6', 6)):\n"
        "    for line in open(f).read().splitlines()[1:]:\n"
        "        local, state = line.split()[1], line.split()[3]\n"
        "        if state != '0A': continue\n"
        "        addr, port = local.split(':')\n"
        "        raw = bytes.fromhex(addr)\n"
        "        ip = socket.inet_ntop(socket.AF_INET, raw[::-1]) if fam == 4 else "
        "socket.inet_ntop(socket.AF_INET6, b''.join(raw[i:i+4][::-1] for i in range(0, 16, 4)))\n"
        "        print(ip + ':' + str(int(port, 16)))\""
    ).split()
    # The JVM listens on an IPv6 socket: 127.0.0.1 shows as the IPv4-mapped ::ffff:127.0.0.1.
    listening = [a.removeprefix("::ffff:") for a in listening]
    tomcat_ports = sorted(a for a in listening if a.rsplit(":", 1)[1] in ("8005", "8009", "8080", "8443"))
    assert tomcat_ports == ["127.0.0.1:8080"], f"Tomcat's ports: {tomcat_ports}, expected only 127.0.0.1:8080"
    headers = host.check_output("curl -s -D - -o /dev/null http://127.0.0.1:8080/health").lower()
    assert "\nserver:" not in headers, f"Server header sent: {headers}"
    assert "x-powered-by" not in headers, headers
    manager = host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/manager/html").stdout
    assert manager == "404", f"/manager/html answered {manager}"
    trace = host.run("curl -s -o /dev/null -w '%{http_code}' -X TRACE http://127.0.0.1:8080/").stdout
    assert trace in ("404", "405"), f"TRACE answered {trace}"
    pkgs = host.run("dpkg-query -W -f '${Package} ${Status}\\n' tomcat10-admin tomcat10-examples tomcat10-docs")
    assert "install ok installed" not in pkgs.stdout, pkgs.stdout
    server_xml = host.check_output("cat /etc/tomcat10/server.xml")
    assert '<Server port="-1"' in server_xml, "shutdown port not off"
    assert "AJP" not in server_xml.split("-->", 1)[1], "an AJP connector is configured"
    listing = host.check_output(f"ls -A {WEBAPPS}").split()
    assert listing == ["ROOT.war"], f"webapps holds {listing}"
    files = _stat(host, WEBAPPS, f"{WEBAPPS}/ROOT.war", "/etc/tomcat10/server.xml")
    assert files[WEBAPPS] == ("root", "tomcat", 0o750), files
    assert files[f"{WEBAPPS}/ROOT.war"] == ("root", "tomcat", 0o640), files
    assert files["/etc/tomcat10/server.xml"] == ("root", "tomcat", 0o640), files
    # A path Tomcat itself rejects (400 before the WAR sees it): its error page must not name the version.
    error = host.run("curl -s --path-as-is -w '\\n%{http_code}' http://127.0.0.1:8080/designs/../../x").stdout
    assert error.rsplit("\n", 1)[-1] in ("400", "404"), error[-300:]
    assert "Tomcat/" not in error and "Exception" not in error, f"error page leaks details: {error[:300]}"


def test_cart_checkout_and_design_uploads(host):
    """The same shop checks as the jar: the cart in Tomcat's session, one order per checkout, uploads."""
    _wait_for_catalog(host)
    files = _stat(host, shop_checks.UPLOAD_DIR)
    assert files.get(shop_checks.UPLOAD_DIR) == ("tomcat", "shop", 0o750), f"upload dir is {files}"
    shop_checks.check(host, run_user="tomcat")


def test_stop_is_graceful(host):
    """SIGTERM → exit 143 → SuccessExitStatus: inactive, not failed. Then started again."""
    try:
        state = host.run(f"systemctl stop {SERVICE}; systemctl is-failed {SERVICE}").stdout.strip()
        assert state == "inactive", f"{SERVICE} is {state} after stop, expected inactive"
        stopped = _show(host, SERVICE, "Result")
        assert stopped["Result"] == "success", f"{SERVICE} Result is {stopped['Result']}"
    finally:
        host.check_output(f"systemctl start {SERVICE}")
    _wait_for_catalog(host)
