"""The golden image, booted: behaviour across the roles, not files.

gl-golden carries every host role; at boot it fetched the DB login from the AWS
emulator's Secrets Manager and serves the shop through Apache from gl-golden-db
(MariaDB over TLS). The password is never put on a command line (a command line
is visible to every process on the host and may be logged): it is compared by
hash, and searched for with grep -f from a tmpfs file cut out of the env file.
testinfra runs its commands with `podman exec` (the podman backend).
"""

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import testinfra

testinfra_hosts = ["podman://gl-golden"]

ENV_FILE = "/run/gearlift/db.env"
TEST_DIR = "/run/gearlift-test"
PW_FILE = f"{TEST_DIR}/pw"
SEEDED = {"TSHIRT-BLK-M", "TSHIRT-BLK-L", "TSHIRT-WHT-M", "HOODIE-GRY-M", "HOODIE-GRY-L", "HOODIE-NVY-XL"}
STATE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "golden"
# Evidence kept after the scenario (reports/ is not committed): audits and Lynis, before and after.
EVIDENCE = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "/nonexistent")) / "reports" / "golden_image"
# Everything persistent in the image; /proc, /sys, /dev and the tmpfs /run are not the image.
SEARCH_EXCLUDES = "--exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=run"


def _emulator_secret():
    emulator = json.loads((STATE / "emulator" / "emulator.json").read_text())
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=emulator["url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return json.loads(client.get_secret_value(SecretId="gearlift/shop-golden/app-db")["SecretString"])


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host("podman://gl-golden-db")


@pytest.fixture(scope="module")
def password_file(host):
    host.check_output(f"install -d -m 0700 {TEST_DIR}")
    host.check_output(f"sed -n 's/^DB_PASSWORD=//p' {ENV_FILE} > {PW_FILE}")
    assert int(host.check_output(f"wc -c < {PW_FILE}").strip()) > 20, "no DB_PASSWORD in the env file"
    return PW_FILE


def _get(host, path, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = host.run(f"curl -s -i --max-time 5 http://127.0.0.1{path}")
        if result.rc == 0 and " 200 " in result.stdout.splitlines()[0]:
            head, _, body = result.stdout.partition("\r\n\r\n")
            return head, body
        time.sleep(2)
    pytest.fail(f"GET {path} through Apache did not answer 200 within {timeout}s")


def test_login_came_from_the_emulator_at_boot(host, password_file):
    """The boot unit wrote the emulator's secret (host, user, password) into the tmpfs env file."""
    secret = _emulator_secret()
    env = host.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "shop", 0o640), f"{ENV_FILE}: {env.user}:{env.group}"
    assert host.check_output(f"stat -f -c %T {ENV_FILE}").strip() == "tmpfs", f"{ENV_FILE} is not on tmpfs"
    assert host.check_output(f"sed -n 's/^DB_HOST=//p' {ENV_FILE}").strip() == "gl-golden-db"
    assert host.check_output(f"sed -n 's/^DB_USER=//p' {ENV_FILE}").strip() == secret["username"]
    on_host = host.check_output(f"tr -d '\\n' < {PW_FILE} | sha256sum").split()[0]
    assert on_host == hashlib.sha256(secret["password"].encode()).hexdigest(), "the password is not the emulator's"
    assert host.check_output(f"sed -n 's/^DB_TLS=//p' {ENV_FILE}").strip() == "required"
    unit = host.check_output("systemctl show -p ActiveState --value gearlift-db-secret.service").strip()
    assert unit == "active", f"gearlift-db-secret.service is {unit} after the boot"


def test_shop_through_apache_reads_and_writes_mariadb_over_tls(host, db):
    """Catalog from MariaDB, an order through Apache lands in MariaDB, over a TLS session."""
    head, body = _get(host, "/catalog")
    assert {p["sku"] for p in json.loads(body)} == SEEDED, f"/catalog through Apache returned {body[:300]}"
    assert "Strict-Transport-Security: max-age=" in head, f"no HSTS from Apache: {head}"
    assert "X-Content-Type-Options: nosniff" in head, f"no nosniff from Apache: {head}"
    assert "Server: Apache\r\n" in head, f"Server header reveals more than the product: {head}"

    ref = f"golden-{uuid.uuid4().hex[:12]}"
    order = json.dumps({"order_ref": ref, "sku": "HOODIE-GRY-M", "qty": 2})
    created = host.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Content-Type: application/json' -d '{order}' "
        "http://127.0.0.1/orders"
    )
    assert created.stdout.strip() == "201", f"POST /orders through Apache: {created.stdout} {created.stderr}"
    row = db.check_output(f"mariadb -N -B -e \"SELECT sku, qty FROM shop.orders WHERE order_ref='{ref}'\"")
    assert row.split() == ["HOODIE-GRY-M", "2"], f"the order is not in MariaDB: {row!r}"
    # The app's writes above succeeded; MariaDB accepts that login only over TLS.
    grants = db.check_output("mariadb -N -B -e \"SHOW CREATE USER 'shopapp'@'%'\"")
    assert "REQUIRE SSL" in grants, f"shopapp may log in without TLS: {grants}"
    secure = db.check_output('mariadb -N -B -e "SELECT @@require_secure_transport"').strip()
    assert secure == "1", "require_secure_transport is off on the DB"
    accepts = db.check_output("mariadb -N -B -e \"SHOW GLOBAL STATUS LIKE 'Ssl_accepts'\"").split()
    assert int(accepts[1]) > 0, "MariaDB accepted no TLS connection"


def test_no_secret_anywhere_in_the_image(host, password_file):
    """Nothing persistent on the image holds the DB password (the tmpfs env file is not the image)."""
    found = host.run(f"grep -rlF -f {PW_FILE} {SEARCH_EXCLUDES} / 2>/dev/null")
    assert found.stdout.strip() == "", f"the DB password is stored in: {found.stdout}"
    journal = host.run(f"journalctl --no-pager -o cat | grep -cF -f {PW_FILE}")
    assert journal.stdout.strip() == "0", "the DB password is in the journal"
    assert not host.file("/root/.mysql_history").exists, "a MySQL client history is in the image"


def _audit(which: str) -> dict:
    return json.loads((EVIDENCE / f"audit-{which}" / "gl-golden.json").read_text())


def test_audit_before_and_after_hardening():
    """The same read-only audit before and after the bake: no control fails after it, every skip says why."""
    before, after = _audit("before"), _audit("after")
    assert int(before["summary"]["fail"]) > 0, "the audit finds nothing to fix on the unhardened host"
    failed = [c["id"] for c in after["controls"] if c["status"] == "fail"]
    assert failed == [], f"controls fail on the golden image: {failed}"
    assert int(after["summary"]["pass"]) > int(before["summary"]["pass"])
    unexplained = [c["id"] for c in after["controls"] if c["status"] == "skipped" and not c["detail"].strip()]
    assert unexplained == [], f"skipped without a reason: {unexplained}"
    # Kernel, mount and firewall controls belong to the VM lane: reported as skipped here, with the reason.
    container_skips = [c for c in after["controls"] if c["status"] == "skipped" and "container" in c["detail"]]
    assert container_skips, "no control reported as skipped because of the container"


def _lynis(report: str) -> dict:
    values: dict = {"warnings": [], "suggestions": []}
    for line in report.splitlines():
        key, _, value = line.partition("=")
        if key == "hardening_index":
            values["hardening_index"] = int(value)
        elif key == "warning[]":
            values["warnings"].append(value)
        elif key == "suggestion[]":
            values["suggestions"].append(value)
    assert "hardening_index" in values, "Lynis wrote no hardening index"
    return values


# Lynis warnings a container shows because a control belongs to the host kernel; each maps to the audit
# control that reports it as skipped for that reason (the VM lane runs these controls for real).
CONTAINER_WARNINGS = {"FIRE-4512": "4.2.3", "FINT-4316": "pci-11.5.2-aide-baseline"}


def test_lynis_index_rises_and_is_recorded(host):
    """Lynis (Debian package) after the bake vs before it; both are kept in reports/golden_image/lynis.json."""
    host.check_output("lynis audit system --quick --no-colors --report-file /var/tmp/lynis-after.dat > /dev/null")
    after = _lynis(host.file("/var/tmp/lynis-after.dat").content_string)
    before = _lynis((EVIDENCE / "lynis-before.dat").read_text())
    (EVIDENCE / "lynis.json").write_text(json.dumps({"before": before, "after": after}, indent=2) + "\n")
    print(
        f"Lynis hardening index {before['hardening_index']} -> {after['hardening_index']}, "
        f"warnings {len(before['warnings'])} -> {len(after['warnings'])}: {after['warnings']}"
    )
    assert after["hardening_index"] > before["hardening_index"], (before["hardening_index"], after["hardening_index"])
    skipped = {c["id"]: c["detail"] for c in _audit("after")["controls"] if c["status"] == "skipped"}
    for warning in set(after["warnings"]) - set(before["warnings"]):
        code = warning.split("|", 1)[0]
        control = CONTAINER_WARNINGS.get(code)
        assert control is not None, f"hardening brought a new Lynis warning: {warning}"
        assert "container" in skipped.get(control, ""), f"{warning}: control {control} is not reported as skipped"


def test_sshd_refuses_root_and_passwords(host):
    """The effective sshd settings of the image (sshd -T), not the file."""
    effective = dict(
        line.split(" ", 1)
        for line in host.check_output("sshd -T -C user=root,host=localhost,addr=127.0.0.1").splitlines()
    )
    assert effective["permitrootlogin"] == "no", effective["permitrootlogin"]
    assert effective["passwordauthentication"] == "no", effective["passwordauthentication"]


def test_design_report_from_this_audit(tmp_path):
    """gearlift report renders from the rehearsal inventory and this image's real audit results (issue 7)."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gearlift.report",
            "--inventory",
            str(project / "inventories" / "rehearsal"),
            "--audit",
            str(EVIDENCE / "audit-after"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=project,
    )
    assert run.returncode == 0, run.stderr
    markdown = (tmp_path / "solution-design.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in markdown.splitlines() if line.startswith("| 8.")}
    # Host controls the image passes: lock-out, password quality, idle timeout.
    for requirement in ("8.3.4", "8.3.6 / 8.3.7", "8.2.8"):
        assert "**pass**" in rows[requirement], rows[requirement]
    assert "| gl-golden | Debian 12" in markdown, "the audited image is not in the report"
