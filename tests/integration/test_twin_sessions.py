"""The twin serves ElastiCache as a real Redis, and the shop keeps its carts there (gearlift_session_store redis).

One VPC: two app subnets and two DB subnets; an RDS instance (the twin's MariaDB) and a replication group
(TLS, AUTH token, its own security group: 6379 from the app group only) in the DB subnets; the token and
endpoint in a Secrets Manager secret, as playbooks/session_store.yml writes it. Two app hosts run the
stand-in jar with SESSION_STORE=redis (the keys the java_app role's secret unit writes), and a third host
outside the app group. A cart put in on one host survives that host being stopped: the next request,
with the same cookie, lands on the other host and finds the cart intact. The outsider cannot even open
6379; an app host can, and only over TLS with the token.

The requests go to the hosts' addresses from the controller (the ALB's choice of host is played by the
test: the stickiness would keep the customer on the stopped host until its health check fails).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import images, podman
from gearlift.twin.twin import Twin

pytestmark = pytest.mark.slow

TOKEN = "Tw1nSessionStoreAuthToken0123456789abcdefABCDEF"
APP_PORT = 8080


def _request(url: str, method: str = "GET", body: dict[str, Any] | None = None, cookie: str = "") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if cookie:
        req.add_header("Cookie", cookie)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers.get("Set-Cookie", ""), json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def estate(twin: Twin, standin_jar: Path) -> dict[str, Any]:
    images.ensure_apphost_image()
    ec2, rds, ec = twin.clients("ec2"), twin.clients("rds"), twin.clients("elasticache")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    app = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{10 + i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]
    db = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{20 + i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]

    def group(name: str) -> str:
        gid: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        return gid

    app_sg, db_sg, cache_sg, other_sg = group("s-app"), group("s-db"), group("s-cache"), group("s-other")
    for target, port in ((db_sg, 3306), (cache_sg, 6379)):
        ec2.authorize_security_group_ingress(
            GroupId=target,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": app_sg}]}
            ],
        )
    rds.create_db_subnet_group(DBSubnetGroupName="s-db", DBSubnetGroupDescription="db", SubnetIds=db)
    instance = rds.create_db_instance(
        DBInstanceIdentifier="sessiondb",
        DBInstanceClass="db.t3.micro",
        Engine="mysql",
        MasterUsername="shopadmin",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
        DBName="shop",
        DBSubnetGroupName="s-db",
        VpcSecurityGroupIds=[db_sg],
    )["DBInstance"]
    ec.create_cache_subnet_group(CacheSubnetGroupName="s-cache", CacheSubnetGroupDescription="db", SubnetIds=db)
    group_desc = ec.create_replication_group(
        ReplicationGroupId="s-sessions",
        ReplicationGroupDescription="sessions",
        Engine="redis",
        EngineVersion="7.1",
        CacheNodeType="cache.t4g.small",
        NumCacheClusters=2,
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
        CacheSubnetGroupName="s-cache",
        SecurityGroupIds=[cache_sg],
        TransitEncryptionEnabled=True,
        AtRestEncryptionEnabled=True,
        AuthToken=TOKEN,
    )["ReplicationGroup"]
    endpoint = group_desc["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    twin.clients("secretsmanager").create_secret(
        Name="gearlift/s/session-store",
        SecretString=json.dumps({"host": endpoint, "port": 6379, "tls": True, "auth_token": TOKEN}),
    )
    ami = twin.seeded["GEARLIFT_AMI_ID"]

    def host(subnet: str, sg: str) -> str:
        iid: str = ec2.run_instances(
            ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet, SecurityGroupIds=[sg]
        )["Instances"][0]["InstanceId"]
        return iid

    hosts = [host(app[0], app_sg), host(app[1], app_sg)]
    outsider = host(app[0], other_sg)
    twin.wait_for(lambda: {*hosts, outsider} <= set(twin.addresses()), 180, "the hosts")
    twin.wait_for(lambda: "sessiondb" in twin.endpoints.databases, 180, "MariaDB for sessiondb")
    twin.wait_for(
        lambda: any(
            c.labels.get("gearlift.cache-id") == "s-sessions" for c in podman.list_containers(twin.layout.label)
        ),
        300,
        "the Redis of s-sessions",
    )
    time.sleep(3)  # a reconcile round gives the new servers their full rules

    master = json.loads(
        twin.clients("secretsmanager").get_secret_value(SecretId=instance["MasterUserSecret"]["SecretArn"])[
            "SecretString"
        ]
    )
    db_endpoint = instance["Endpoint"]["Address"]
    ca = twin.layout.state_dir / "tls-db" / "ca.crt"
    schema = (Path(__file__).resolve().parents[2] / "app/shop-standin/schema.sql").read_bytes()
    loaded = podman.run(
        "exec",
        "-i",
        "-e",
        f"MYSQL_PWD={master['password']}",
        hosts[0],
        "mariadb",
        "-h",
        db_endpoint,
        "-u",
        master["username"],
        "shop",
        input_bytes=schema,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    env = "\n".join(
        [
            f"DB_HOST={db_endpoint}",
            "DB_PORT=3306",
            "DB_NAME=shop",
            f"DB_USER={master['username']}",
            f"DB_PASSWORD={json.dumps(master['password'])}",
            "DB_TLS=required",
            "DB_TLS_CA=/etc/gearlift/ca.crt",
            "SESSION_STORE=redis",
            f"SESSION_REDIS_HOST={endpoint}",
            "SESSION_REDIS_PORT=6379",
            "SESSION_REDIS_TLS=required",
            "SESSION_REDIS_TLS_CA=/etc/gearlift/ca.crt",
            f"SESSION_REDIS_TOKEN={TOKEN}",
            "",
        ]
    )
    urls = []
    for iid in hosts:
        podman.exec_(iid, "mkdir", "-p", "/etc/gearlift", "/run/gearlift", "/var/lib/shop/designs")
        podman.run("cp", str(standin_jar), f"{iid}:/opt/shop-standin.jar")
        podman.run("cp", str(ca), f"{iid}:/etc/gearlift/ca.crt")
        podman.run("exec", "-i", iid, "sh", "-c", "umask 077; cat > /run/gearlift/db.env", input_bytes=env.encode())
        podman.exec_(
            iid,
            "systemd-run",
            "--unit=shop",
            "-E",
            "APP_BIND=0.0.0.0",
            "-E",
            f"APP_PORT={APP_PORT}",
            "java",
            "-jar",
            "/opt/shop-standin.jar",
        )
        urls.append(f"http://{twin.addresses()[iid]}:{APP_PORT}")

    def up(url: str) -> bool:
        try:
            return bool(_request(url + "/health")[0] == 200)
        except OSError:
            return False

    twin.wait_for(lambda: all(up(u) for u in urls), 120, "the shop on both hosts")
    return {"hosts": hosts, "urls": urls, "outsider": outsider, "endpoint": endpoint}


def test_a_cart_survives_its_host_being_stopped(twin: Twin, estate: dict[str, Any]) -> None:
    first, second = estate["urls"]
    status, set_cookie, cart = _request(first + "/cart/items", "POST", {"sku": "TSHIRT-BLK-M", "qty": 2})
    assert status == 200, cart
    cookie = set_cookie.split(";", 1)[0]
    assert cookie.startswith("JSESSIONID=")
    _request(first + "/cart/items", "POST", {"sku": "HOODIE-GRY-L", "qty": 1}, cookie)
    podman.run("stop", "-t", "5", estate["hosts"][0])
    status, _, cart = _request(second + "/cart", cookie=cookie)
    assert status == 200
    log = podman.exec_(estate["hosts"][1], "journalctl", "-u", "shop", "--no-pager", "-n", "40", check=False).stdout
    assert {(i["sku"], i["qty"]) for i in cart["items"]} == {("TSHIRT-BLK-M", 2), ("HOODIE-GRY-L", 1)}, log
    status, _, order = _request(second + "/cart/checkout", "POST", {"order_ref": "sess-1"}, cookie)
    assert status == 201 and len(order["orders"]) == 2
    assert _request(second + "/cart", cookie=cookie)[2]["items"] == []


def test_only_the_app_group_opens_6379_and_only_with_tls_and_the_token(twin: Twin, estate: dict[str, Any]) -> None:
    endpoint = estate["endpoint"]
    probe = f"timeout 5 bash -c '</dev/tcp/{endpoint}/6379' && echo open || echo closed"
    outsider = podman.exec_(estate["outsider"], "bash", "-c", probe, check=False)
    assert outsider.stdout.strip() == "closed", outsider.stdout + outsider.stderr
    app = estate["hosts"][1]
    assert podman.exec_(app, "bash", "-c", probe, check=False).stdout.strip() == "open"
    # Plain RESP on the TLS port gets no PONG; TLS without the token is refused.
    plain = podman.exec_(
        app,
        "bash",
        "-c",
        f"printf 'PING\\r\\n' | timeout 5 openssl s_client -quiet -connect {endpoint}:6379 "
        f"-CAfile /etc/gearlift/ca.crt -verify_hostname {endpoint} -verify_return_error 2>/dev/null",
        check=False,
    )
    assert "NOAUTH" in plain.stdout, plain.stdout + plain.stderr
