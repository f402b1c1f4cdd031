"""Behaviour of the gearlift.platform.java_app role on the shared test host.

The DB password is never put on a command line (testinfra's commands are Ansible
module calls, logged to the host's journal): a fixture copies it from the
Secrets Manager stand-in's data into a tmpfs file and grep reads it with -f.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _show(host, unit, prop):
    return host.check_output(f"systemctl show -p {prop} --value {unit}").strip()


def _main_pid(host):
    pid = int(_show(host, SERVICE, "MainPID"))
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
    host.check_output(f"install -d -m 0700 {TEST_DIR}")
    host.check_output(
        'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); '
        "print(json.loads(d['shop/db']['SecretString'])['password'])\" "
        f"{SECRETS_DATA} > {PW_FILE}"
    )
    assert int(host.check_output(f"wc -l < {PW_FILE}").strip()) == 1
    assert int(host.check_output(f"wc -c < {PW_FILE}").strip()) > 20
    return PW_FILE


def test_units_active_and_enabled(host):
    app = host.service(SERVICE)
    assert app.is_running
    assert app.is_enabled
    assert host.check_output(f"systemctl is-active {SECRET_UNIT}").strip() == "active"
    assert host.service(SECRET_UNIT).is_enabled
    assert _show(host, SECRET_UNIT, "Type") == "oneshot"
    assert _show(host, SECRET_UNIT, "RemainAfterExit") == "yes"
    assert SECRET_UNIT in _show(host, SERVICE, "Requires").split()
    assert SECRET_UNIT in _show(host, SERVICE, "After").split()


def test_runs_as_the_app_user_not_root(host):
    pid = _main_pid(host)
    assert host.check_output(f"ps -o user= -p {pid}").strip() == "shop"
    assert host.check_output(f"ps -o uid= -p {pid}").strip() != "0"
    user = host.user("shop")
    assert user.shell == "/usr/sbin/nologin"
    assert user.group == "shop"
    assert not host.file(user.home).exists  # /nonexistent: no home content


def test_catalog_from_mariadb(host):
    products = _wait_for_catalog(host)
    assert {p["sku"] for p in products} == SEEDED


def test_env_file_on_tmpfs_root_shop_0640(host):
    env = host.file(ENV_FILE)
    assert env.exists
    assert env.user == "root"
    assert env.group == "shop"
    assert env.mode == 0o640
    assert host.check_output("stat -f -c %T /run/gearlift").strip() == "tmpfs"
    directory = host.file("/run/gearlift")
    assert (directory.user, directory.group, directory.mode) == ("root", "shop", 0o750)
    # Single keys are checked with grep so the password never leaves the host.
    for line in ("DB_USER=shopapp", "DB_HOST=127.0.0.1", "DB_PORT=3306", "DB_NAME=shop", "DB_TLS=disabled"):
        assert host.run(f"grep -qxF {line} {ENV_FILE}").rc == 0, line
    assert host.run(f"grep -q '^DB_PASSWORD=\"' {ENV_FILE}").rc == 0  # quoted: it has special characters
    assert host.run(f"grep -q '^DB_TLS_CA=' {ENV_FILE}").rc == 1  # not written with TLS disabled


def test_password_not_on_disk(host, password_file):
    found = host.run(f"grep -rlsF -f {password_file} {EXCLUDED} {SEARCHED}")
    assert found.stdout.strip() == "", f"password found in: {found.stdout}"
    assert found.rc in (1, 2)  # 1: no match (2: also an unreadable or missing path)


def test_password_not_in_journal(host, password_file):
    hits = host.run(f"journalctl --no-pager -o verbose | grep -cF -f {password_file}")
    assert hits.stdout.strip() == "0"


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("User", "shop"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("CapabilityBoundingSet", ""),
        ("Restart", "on-failure"),
    ],
)
def test_sandbox(host, prop, value):
    assert _show(host, SERVICE, prop) == value


def test_sandbox_paths_and_environment(host):
    assert _show(host, SERVICE, "ReadWritePaths").split() == ["/var/lib/shop", "/var/log/shop"]
    assert set(_show(host, SERVICE, "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    environment = _show(host, SERVICE, "Environment").split()
    assert {"APP_BIND=127.0.0.1", "APP_PORT=8080", "SHOP_ENV_FILE=/run/gearlift/db.env"} <= set(environment)
    assert "143" in _show(host, SERVICE, "SuccessExitStatus")


def test_jvm_options(host):
    args = host.check_output(f"tr '\\0' '\\n' < /proc/{_main_pid(host)}/cmdline").splitlines()
    ttl = [a for a in args if a.startswith("-Dnetworkaddress.cache.ttl=")]
    assert len(ttl) == 1
    assert 0 <= int(ttl[0].split("=", 1)[1]) <= 60
    assert "-XX:MaxRAMPercentage=60.0" in args
    props = [a for a in args if a.startswith("-Djava.security.properties=")]
    assert props == ["-Djava.security.properties=/etc/gearlift/shop/java.security"]
    security = host.file("/etc/gearlift/shop/java.security")
    assert security.user == "root" and security.group == "shop" and security.mode == 0o640
    assert "networkaddress.cache.ttl=30" in security.content_string.splitlines()
    assert args[0] == "/usr/lib/jvm/java-17-openjdk-amd64/bin/java" or args[0].endswith("/bin/java")
    assert args[-2:] == ["-jar", "/opt/gearlift/shop/shop.jar"]


def test_artifact_root_owned_and_not_writable_by_the_app(host):
    jar = host.file("/opt/gearlift/shop/shop.jar")
    assert (jar.user, jar.group, jar.mode) == ("root", "shop", 0o640)
    assert host.file("/opt/gearlift/shop/.staging").mode == 0o700


def test_fetcher_gives_up_after_bounded_retries(host, password_file):
    out = f"{TEST_DIR}/unreachable.log"
    result = host.run(f"{_fetch_cmd('http://127.0.0.1:4599', f'{TEST_DIR}/never.env', 3, 1)} > {out} 2>&1")
    assert result.rc == 1
    log = host.file(out).content_string
    assert "attempt 1/3 failed" in log
    assert "not reachable after 3 attempts" in log
    assert not host.file(f"{TEST_DIR}/never.env").exists
    assert host.run(f"grep -qF -f {password_file} {out}").rc == 1


def test_fetcher_waits_for_a_late_endpoint(host):
    """The endpoint comes up while the fetcher is retrying: it succeeds, root:shop 0640."""
    output = f"{TEST_DIR}/late.env"
    host.check_output("systemctl stop secretsmanager-standin.service")
    try:
        result = host.run(
            "(sleep 3; systemctl start secretsmanager-standin.service) >/dev/null 2>&1 & "
            f"{_fetch_cmd('http://127.0.0.1:4566', output)}"
        )
    finally:
        host.run("systemctl start secretsmanager-standin.service")
    assert result.rc == 0, result.stderr
    assert "retrying" in result.stderr
    late = host.file(output)
    assert (late.user, late.group, late.mode) == ("root", "shop", 0o640)
    assert host.run(f"grep -qxF DB_USER=shopapp {output}").rc == 0


def test_unknown_secret_fails_without_retrying(host):
    result = host.run(
        f"{FETCHER} --secret-id shop/missing --region us-east-1 --endpoint-url http://127.0.0.1:4566"
        f" --group shop --output {TEST_DIR}/missing.env"
    )
    assert result.rc == 3
    assert "ResourceNotFoundException" in result.stderr
    assert "retrying" not in result.stderr


def test_fetcher_takes_the_secret_id_from_instance_env(host):
    """Empty arguments: GEARLIFT_DB_SECRET_ID / GEARLIFT_REGION (the launch template's user data)."""
    output = f"{TEST_DIR}/instance-env.env"
    result = host.run(
        f"GEARLIFT_DB_SECRET_ID=shop/db GEARLIFT_REGION=us-east-1 {FETCHER} --secret-id '' --region ''"
        f" --endpoint-url http://127.0.0.1:4566 --tls disabled --group shop --output {output}"
    )
    assert result.rc == 0, result.stderr
    assert host.run(f"grep -qxF DB_USER=shopapp {output}").rc == 0
    assert "/etc/gearlift/instance.env" in _show(host, SECRET_UNIT, "EnvironmentFiles")


def test_secret_unit_sandbox(host):
    assert _show(host, SECRET_UNIT, "ProtectSystem") == "strict"
    assert _show(host, SECRET_UNIT, "NoNewPrivileges") == "yes"
    assert _show(host, SECRET_UNIT, "CapabilityBoundingSet") == "cap_chown"
    assert _show(host, SECRET_UNIT, "ReadWritePaths") == "/run/gearlift"


def test_sha256_mismatch_is_refused_and_nothing_deployed(host, tmp_path):
    """The role run with another file than the one the sha256 names: clear failure, jar unchanged."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    expected = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "shop-standin.sha256").read_text().strip()
    jar = "/opt/gearlift/shop/shop.jar"
    assert host.check_output(f"sha256sum {jar}").split()[0] == expected
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
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", host.backend.ansible_inventory, str(playbook)],
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
    assert host.check_output(f"sha256sum {jar}").split()[0] == expected
    assert not host.file("/opt/gearlift/shop/.staging/shop.jar").exists
    assert host.service(SERVICE).is_running


def test_stop_is_graceful(host):
    """SIGTERM → JVM exit 143 → SuccessExitStatus: inactive, not failed. Then started again."""
    host.check_output(f"systemctl stop {SERVICE}")
    try:
        assert host.run(f"systemctl is-failed {SERVICE}").stdout.strip() == "inactive"
        assert _show(host, SERVICE, "Result") == "success"
        assert _show(host, SERVICE, "ExecMainStatus") == "143"
    finally:
        host.check_output(f"systemctl start {SERVICE}")
    _wait_for_catalog(host)
