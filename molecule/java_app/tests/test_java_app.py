"""Behaviour of the gearlift.platform.java_app role on the shared test host.

The DB password is never put on a command line (testinfra's commands are Ansible
module calls, logged to the host's journal): a fixture copies it from the
Secrets Manager stand-in's data into a tmpfs file and grep reads it with -f.

Every testinfra command is one Ansible run over the podman connection (~3 s), so
the checks are grouped by concern and batched (one ``stat`` for many files, one
``systemctl show`` for many properties, one shell script for many greps); every
assertion still names what failed.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shop_checks

SERVICE = "shop.service"
SECRET_UNIT = "gearlift-db-secret.service"
ENV_FILE = "/run/gearlift/db.env"
FETCHER = "/usr/local/libexec/gearlift/fetch-db-secret"
SECRETS_DATA = "/var/lib/secretsmanager-standin/secrets.json"
TEST_DIR = "/run/gearlift-test"
PW_FILE = f"{TEST_DIR}/pw"
SEEDED = {"TSHIRT-BLK-M", "TSHIRT-BLK-L", "TSHIRT-WHT-M", "HOODIE-GRY-M", "HOODIE-GRY-L", "HOODIE-NVY-XL"}
# Searched for the password: everything persistent except the MariaDB datadir
# (/var/lib/mysql) and the stand-in's own data (/var/lib/secretsmanager-standin).
SEARCHED = "/etc /opt /var /usr/local /home /root"
EXCLUDED = "--exclude-dir=mysql --exclude-dir=secretsmanager-standin"
# Separates the parts of one batched command's output.
SEP = "::gearlift-test-separator::"
# shop.service's sandbox as systemd reports it (property → value).
SANDBOX = {
    "User": "shop",
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
    "Restart": "on-failure",
}


def _show(host, unit, *props):
    """systemctl show for several properties in one command: {property: value}."""
    out = host.check_output(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    missing = set(props) - set(values)
    assert not missing, f"systemctl show {unit} did not report {sorted(missing)}"
    return values


def _stat(host, *paths):
    """Owner, group and mode of several paths in one command: {path: (user, group, mode)}; absent paths left out."""
    out = host.run("stat -c '%U %G %a %n' " + " ".join(shlex.quote(p) for p in paths)).stdout
    result = {}
    for line in out.splitlines():
        user, group, mode, name = line.split(" ", 3)
        result[name] = (user, group, int(mode, 8))
    return result


def _checks(host, checks):
    """Run several shell tests in one command; return the labels of those that failed."""
    script = "; ".join(f"if {test}; then :; else echo {shlex.quote(label)}; fi" for label, test in checks)
    return [line for line in host.check_output(script).splitlines() if line]


def _main_pid(host):
    pid = int(_show(host, SERVICE, "MainPID")["MainPID"])
    assert pid > 0, "shop.service has no main process"
    return pid


def _fetch_cmd(endpoint, output, attempts=10, max_delay=2):
    return (
        f"{FETCHER} --secret-id shop/db --region us-east-1 --endpoint-url {endpoint} --tls disabled"
        f" --group shop --output {output} --attempts {attempts} --max-delay {max_delay}"
    )


def _wait_for_catalog(host, timeout=90):
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


def test_units_account_and_artifact(host):
    """Units active and enabled, the JVM runs as the nologin app user, the artifact is root-owned."""
    app = _show(host, SERVICE, "ActiveState", "SubState", "UnitFileState", "Requires", "After", "MainPID")
    assert (app["ActiveState"], app["SubState"]) == ("active", "running"), f"{SERVICE} is not running: {app}"
    assert app["UnitFileState"] == "enabled", f"{SERVICE} is not enabled ({app['UnitFileState']})"
    secret = _show(host, SECRET_UNIT, "ActiveState", "UnitFileState", "Type", "RemainAfterExit")
    assert secret["ActiveState"] == "active", f"{SECRET_UNIT} not active ({secret['ActiveState']})"
    assert secret["UnitFileState"] == "enabled", f"{SECRET_UNIT} not enabled ({secret['UnitFileState']})"
    assert secret["Type"] == "oneshot", f"{SECRET_UNIT} Type is {secret['Type']}"
    assert secret["RemainAfterExit"] == "yes", f"{SECRET_UNIT} RemainAfterExit is {secret['RemainAfterExit']}"
    assert SECRET_UNIT in app["Requires"].split(), f"{SERVICE} does not Require {SECRET_UNIT}: {app['Requires']}"
    assert SECRET_UNIT in app["After"].split(), f"{SERVICE} is not After {SECRET_UNIT}: {app['After']}"

    pid = int(app["MainPID"])
    assert pid > 0, "shop.service has no main process"
    # One command: the process owner, the account (passwd + group name) and whether its home exists.
    out = host.check_output(
        f"ps -o user=,uid= -p {pid}; getent passwd shop; id -gn shop; "
        'home=$(getent passwd shop | cut -d: -f6); if [ -e "$home" ]; then echo home-exists; else echo home-absent; fi'
    ).splitlines()
    proc_user, proc_uid = out[0].split()
    passwd = out[1].split(":")
    assert proc_user == "shop", f"the JVM runs as {proc_user}, not shop"
    assert proc_uid != "0", "the JVM runs as uid 0"
    assert passwd[6] == "/usr/sbin/nologin", f"shop's shell is {passwd[6]}"
    assert out[2] == "shop", f"shop's group is {out[2]}"
    assert out[3] == "home-absent", f"shop's home {passwd[5]} exists (expected /nonexistent)"

    files = _stat(host, "/opt/gearlift/shop/shop.jar", "/opt/gearlift/shop/.staging")
    assert files.get("/opt/gearlift/shop/shop.jar") == ("root", "shop", 0o640), (
        f"shop.jar is {files.get('/opt/gearlift/shop/shop.jar')}, expected root:shop 0640 (not writable by the app)"
    )
    staging = files.get("/opt/gearlift/shop/.staging")
    assert staging is not None and staging[2] == 0o700, f".staging is {staging}, expected mode 0700"


def test_catalog_env_file_and_password_handling(host, password_file):
    """The app reads MariaDB with the fetched login; db.env is private, on tmpfs; the password stays in /run."""
    products = _wait_for_catalog(host)
    assert {p["sku"] for p in products} == SEEDED, f"/catalog returned {products}"

    files = _stat(host, ENV_FILE, "/run/gearlift")
    assert ENV_FILE in files, f"{ENV_FILE} missing"
    assert files[ENV_FILE] == ("root", "shop", 0o640), f"{ENV_FILE} is {files[ENV_FILE]}, expected root:shop 0640"
    assert files.get("/run/gearlift") == ("root", "shop", 0o750), (
        f"/run/gearlift is {files.get('/run/gearlift')}, expected root:shop 0750"
    )
    # Single keys are checked with grep so the password never leaves the host.
    failed = _checks(
        host,
        [
            ("/run/gearlift is not tmpfs", '[ "$(stat -f -c %T /run/gearlift)" = tmpfs ]'),
            *(
                (f"{ENV_FILE} lacks the line {line}", f"grep -qxF {line} {ENV_FILE}")
                for line in ("DB_USER=shopapp", "DB_HOST=127.0.0.1", "DB_PORT=3306", "DB_NAME=shop", "DB_TLS=disabled")
            ),
            ("DB_PASSWORD is not quoted (special characters)", f"grep -q '^DB_PASSWORD=\"' {ENV_FILE}"),
            ("DB_TLS_CA written although TLS is disabled", f"! grep -q '^DB_TLS_CA=' {ENV_FILE}"),
        ],
    )
    assert not failed, f"env file checks failed: {failed}"

    found = host.run(f"grep -rlsF -f {password_file} {EXCLUDED} {SEARCHED}")
    assert found.stdout.strip() == "", f"password found on disk in: {found.stdout}"
    assert found.rc in (1, 2), f"grep for the password failed unexpectedly (rc {found.rc})"  # 1: no match
    hits = host.run(f"journalctl --no-pager -o verbose | grep -cF -f {password_file}")
    assert hits.stdout.strip() == "0", f"password found {hits.stdout.strip()} times in the journal"


def test_sandbox_jvm_options_and_secret_unit(host):
    """The app's and the secret unit's sandbox as systemd reports it, and the JVM's command line."""
    props = _show(
        host,
        SERVICE,
        *SANDBOX,
        "ReadWritePaths",
        "RestrictAddressFamilies",
        "Environment",
        "SuccessExitStatus",
        "MainPID",
    )
    wrong = {p: props[p] for p, value in SANDBOX.items() if props[p] != value}
    assert not wrong, f"{SERVICE} sandbox differs (property: actual): {wrong}; expected {SANDBOX}"
    assert props["ReadWritePaths"].split() == ["/var/lib/shop", "/var/log/shop", "/var/lib/shop/designs"], (
        f"ReadWritePaths is {props['ReadWritePaths']}"
    )
    assert set(props["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}, (
        f"RestrictAddressFamilies is {props['RestrictAddressFamilies']}"
    )
    environment = set(props["Environment"].split())
    expected_env = {
        "APP_BIND=127.0.0.1",
        "APP_PORT=8080",
        "SHOP_ENV_FILE=/run/gearlift/db.env",
        "SHOP_UPLOAD_DIR=/var/lib/shop/designs",
        "SHOP_UPLOAD_MAX_BYTES=10485760",
        "SHOP_SESSION_TIMEOUT=1800",
    }
    assert expected_env <= environment, f"Environment lacks {expected_env - environment}"
    assert "143" in props["SuccessExitStatus"], f"SuccessExitStatus is {props['SuccessExitStatus']}"

    pid = int(props["MainPID"])
    assert pid > 0, "shop.service has no main process"
    # One command: the JVM's arguments, a separator, java.security's owner/mode, a separator, its content.
    out = host.check_output(
        f"tr '\\0' '\\n' < /proc/{pid}/cmdline; echo {SEP}; stat -c '%U %G %a' /etc/gearlift/shop/java.security;"
        f" echo {SEP}; cat /etc/gearlift/shop/java.security"
    )
    args_text, security_stat, security_text = out.split(SEP, 2)
    args = args_text.splitlines()
    ttl = [a for a in args if a.startswith("-Dnetworkaddress.cache.ttl=")]
    assert len(ttl) == 1, f"expected one -Dnetworkaddress.cache.ttl=, got {ttl}"
    assert 0 <= int(ttl[0].split("=", 1)[1]) <= 60, f"DNS TTL out of 0..60: {ttl[0]}"
    assert "-XX:MaxRAMPercentage=60.0" in args, f"no -XX:MaxRAMPercentage=60.0 in {args}"
    security_props = [a for a in args if a.startswith("-Djava.security.properties=")]
    assert security_props == ["-Djava.security.properties=/etc/gearlift/shop/java.security"], security_props
    assert security_stat.split() == ["root", "shop", "640"], (
        f"java.security is {security_stat.strip()}, expected root shop 640"
    )
    assert "networkaddress.cache.ttl=30" in security_text.splitlines(), "java.security lacks the TTL 30"
    assert args[0] == "/usr/lib/jvm/java-17-openjdk-amd64/bin/java" or args[0].endswith("/bin/java"), args[0]
    assert args[-2:] == ["-jar", "/opt/gearlift/shop/shop.jar"], f"command line ends with {args[-2:]}"

    secret = _show(
        host,
        SECRET_UNIT,
        "ProtectSystem",
        "NoNewPrivileges",
        "CapabilityBoundingSet",
        "ReadWritePaths",
        "EnvironmentFiles",
    )
    assert secret["ProtectSystem"] == "strict", f"{SECRET_UNIT} ProtectSystem is {secret['ProtectSystem']}"
    assert secret["NoNewPrivileges"] == "yes", f"{SECRET_UNIT} NoNewPrivileges is {secret['NoNewPrivileges']}"
    assert secret["CapabilityBoundingSet"] == "cap_chown", (
        f"{SECRET_UNIT} CapabilityBoundingSet is {secret['CapabilityBoundingSet']}"
    )
    assert secret["ReadWritePaths"] == "/run/gearlift", f"{SECRET_UNIT} ReadWritePaths is {secret['ReadWritePaths']}"
    assert "/etc/gearlift/instance.env" in secret["EnvironmentFiles"], (
        f"{SECRET_UNIT} does not load /etc/gearlift/instance.env"
    )


def test_cart_checkout_and_design_uploads(host):
    """Cart across two requests (cookie), one order per checkout, upload/download byte-identical, refusals."""
    _wait_for_catalog(host)
    files = _stat(host, shop_checks.UPLOAD_DIR)
    assert files.get(shop_checks.UPLOAD_DIR) == ("shop", "shop", 0o750), f"upload dir is {files}"
    shop_checks.check(host, run_user="shop")


def test_fetcher_retries_errors_and_instance_env(host, password_file):
    """Bounded retries, a late endpoint, an unknown secret, and the ids from instance.env."""
    # Unreachable endpoint: gives up after 3 attempts, writes nothing, never prints the password.
    out = f"{TEST_DIR}/unreachable.log"
    result = host.run(
        f"{_fetch_cmd('http://127.0.0.1:4599', f'{TEST_DIR}/never.env', 3, 1)} > {out} 2>&1; rc=$?;"
        f" cat {out}; echo {SEP}; test -e {TEST_DIR}/never.env && echo env-written;"
        f" grep -qF -f {password_file} {out} && echo password-printed; exit $rc"
    )
    log, _, extra = result.stdout.partition(SEP)
    assert result.rc == 1, f"unreachable endpoint: exit {result.rc}, expected 1"
    assert "attempt 1/3 failed" in log, f"unreachable endpoint: no retry message in {log!r}"
    assert "not reachable after 3 attempts" in log, f"unreachable endpoint: no give-up message in {log!r}"
    assert "env-written" not in extra, "unreachable endpoint: an env file was written"
    assert "password-printed" not in extra, "the password appears in the fetcher's output"

    # The endpoint comes up while the fetcher is retrying: it succeeds, root:shop 0640.
    output = f"{TEST_DIR}/late.env"
    host.check_output("systemctl stop secretsmanager-standin.service")
    try:
        result = host.run(
            "(sleep 3; systemctl start secretsmanager-standin.service) >/dev/null 2>&1 & "
            f"{_fetch_cmd('http://127.0.0.1:4566', output)}"
        )
    finally:
        host.run("systemctl start secretsmanager-standin.service")
    assert result.rc == 0, f"late endpoint: exit {result.rc}: {result.stderr}"
    assert "retrying" in result.stderr, f"late endpoint: no retry before success: {result.stderr}"

    # An unknown secret is a permanent error: exit 3 at once, no retries.
    unknown = host.run(
        f"{FETCHER} --secret-id shop/missing --region us-east-1 --endpoint-url http://127.0.0.1:4566"
        f" --group shop --output {TEST_DIR}/missing.env"
    )
    assert unknown.rc == 3, f"unknown secret: exit {unknown.rc}, expected 3"
    assert "ResourceNotFoundException" in unknown.stderr, f"unknown secret: {unknown.stderr}"
    assert "retrying" not in unknown.stderr, "unknown secret: the fetcher retried a permanent error"

    # Empty arguments: GEARLIFT_DB_SECRET_ID / GEARLIFT_REGION (the launch template's user data).
    instance_env = f"{TEST_DIR}/instance-env.env"
    result = host.run(
        f"GEARLIFT_DB_SECRET_ID=shop/db GEARLIFT_REGION=us-east-1 {FETCHER} --secret-id '' --region ''"
        f" --endpoint-url http://127.0.0.1:4566 --tls disabled --group shop --output {instance_env}"
    )
    assert result.rc == 0, f"instance.env ids: exit {result.rc}: {result.stderr}"

    late = _stat(host, output).get(output)
    assert late == ("root", "shop", 0o640), f"late endpoint: env file is {late}, expected root:shop 0640"
    failed = _checks(
        host,
        [
            ("late endpoint: DB_USER missing", f"grep -qxF DB_USER=shopapp {output}"),
            ("instance.env ids: DB_USER missing", f"grep -qxF DB_USER=shopapp {instance_env}"),
        ],
    )
    assert not failed, failed


def test_sha256_mismatch_is_refused_and_nothing_deployed(host, tmp_path):
    """The role run with another file than the one the sha256 names: clear failure, jar unchanged."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    expected = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "shop-standin.sha256").read_text().strip()
    jar = "/opt/gearlift/shop/shop.jar"
    assert host.check_output(f"sha256sum {jar}").split()[0] == expected, "deployed jar differs before the test"
    playbook = tmp_path / "mismatch.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Mismatch",
                    "hosts": "all",
                    "become": True,
                    "roles": [
                        {
                            "role": "gearlift.platform.java_app",
                            "vars": {
                                "java_app_artifact_src": str(project / "app/shop-standin/schema.sql"),
                                "java_app_artifact_sha256": expected,
                                "java_app_extra_packages": ["libmariadb-java"],
                                "java_app_secrets_endpoint_url": "http://127.0.0.1:4566",
                                "java_app_db_secret_id": "shop/db",
                                "java_app_aws_region": "us-east-1",
                                "java_app_db_tls": "disabled",
                                "java_app_fetch_secret_now": True,
                            },
                        }
                    ],
                }
            ]
        )
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(playbook),
        ],
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, out
    assert "was NOT deployed" in out, out
    assert f"expected java_app_artifact_sha256 {expected}" in out, out
    failed = _checks(
        host,
        [
            ("the deployed jar changed", f'[ "$(sha256sum {jar} | cut -d" " -f1)" = {expected} ]'),
            ("the rejected file stayed in .staging", "[ ! -e /opt/gearlift/shop/.staging/shop.jar ]"),
            (f"{SERVICE} stopped after the rejected deployment", f"systemctl is-active --quiet {SERVICE}"),
        ],
    )
    assert not failed, failed


def test_stop_is_graceful(host):
    """SIGTERM → JVM exit 143 → SuccessExitStatus: inactive, not failed. Then started again."""
    try:
        state = host.run(f"systemctl stop {SERVICE}; systemctl is-failed {SERVICE}").stdout.strip()
        assert state == "inactive", f"{SERVICE} is {state} after stop, expected inactive"
        stopped = _show(host, SERVICE, "Result", "ExecMainStatus")
        assert stopped["Result"] == "success", f"{SERVICE} Result is {stopped['Result']}"
        assert stopped["ExecMainStatus"] == "143", f"JVM exit status is {stopped['ExecMainStatus']}, expected 143"
    finally:
        host.check_output(f"systemctl start {SERVICE}")
    _wait_for_catalog(host)
