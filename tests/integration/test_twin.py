"""The twin's three reconcilers, for real: podman systemd hosts, MariaDB for RDS, HAProxy for the ALB."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import images, podman
from gearlift.twin.dataplane.amis import LOCAL_IMAGE_TAG
from gearlift.twin.netutil import http_get
from gearlift.twin.twin import Twin

from .conftest import REPO, ansible_env, http_target_group_behind_alb

pytestmark = pytest.mark.slow


def _default_subnets(twin: Twin) -> list[str]:
    ec2 = twin.clients("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return [s["SubnetId"] for s in sorted(subnets, key=lambda s: s["AvailabilityZone"])[:2]]


def _ami_for(twin: Twin, local_image: str, name: str) -> str:
    ec2 = twin.clients("ec2")
    ami = ec2.register_image(Name=name, RootDeviceName="/dev/sda1", Architecture="x86_64")["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": local_image}])
    return ami


def _asg(twin: Twin, name: str, ami: str, desired: int, profile: str = "", **extra: Any) -> None:
    ec2 = twin.clients("ec2")
    data: dict[str, Any] = {"ImageId": ami, "InstanceType": "t3.micro"}
    if profile:
        data["IamInstanceProfile"] = {"Name": profile}
    ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData=data)
    twin.clients("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        MinSize=desired,
        MaxSize=desired + 1,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(_default_subnets(twin)),
        **extra,
    )


def _instance_role(twin: Twin, name: str, secret_arn: str) -> None:
    """A role EC2 may assume that reads one secret, and its instance profile."""
    iam = twin.clients("iam")
    ec2_assumes = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [ec2_assumes]}
    reads = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}
    policy = {"Version": "2012-10-17", "Statement": [reads]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="read-db-secret", PolicyDocument=json.dumps(policy))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def _group_instances(twin: Twin, name: str) -> list[str]:
    group = twin.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return sorted(i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"])


def _running_containers(twin: Twin) -> set[str]:
    return {
        c.labels["gearlift.instance-id"]
        for c in podman.list_containers(twin.layout.label)
        if c.labels.get("gearlift.kind") == "ec2" and c.state == "running"
    }


def _ansible_ping(hosts: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ansible",
            "all",
            "-i",
            ",".join(hosts) + ",",
            "-c",
            "gearlift.platform.podman",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
            "-m",
            "ansible.builtin.ping",
        ],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_instance_becomes_reachable_systemd_container(twin: Twin) -> None:
    ec2 = twin.clients("ec2")
    stock = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=stock, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0][
        "InstanceId"
    ]
    twin.wait_for(lambda: iid in _running_containers(twin), 60, f"container for {iid}")
    state = podman.exec_(iid, "systemctl", "is-system-running", "--wait", check=False, timeout=90)
    assert state.stdout.strip() in ("running", "degraded"), state.stdout + state.stderr
    ping = _ansible_ping([iid])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "SUCCESS" in ping.stdout and "ping: pong" in ping.stdout
    # The host finds the emulator through the standard SDK files, not code.
    cfg = podman.exec_(iid, "cat", "/root/.aws/config").stdout
    assert f"endpoint_url = {twin.endpoints.moto_internal}" in cfg
    reach = podman.exec_(
        iid,
        "python3",
        "-c",
        "import urllib.request;"
        f"print(urllib.request.urlopen('{twin.endpoints.moto_internal}/moto-api/', timeout=20).status)",
        check=False,
    )
    assert reach.stdout.strip() == "200", reach.stderr
    ec2.terminate_instances(InstanceIds=[iid])
    twin.wait_for(lambda: not podman.container_exists(iid), 60, f"removal of {iid}")


def test_asg_instances_become_containers_and_replacement_appears(twin: Twin) -> None:
    ami = _ami_for(twin, images.BASE_IMAGE, "asg-test")
    _asg(twin, "web-asg", ami, desired=2)
    members = _group_instances(twin, "web-asg")
    assert len(members) == 2
    twin.wait_for(lambda: set(members) <= _running_containers(twin), 90, "ASG containers")
    victim = members[0]
    twin.clients("ec2").terminate_instances(InstanceIds=[victim])

    def replaced() -> bool:
        now = _group_instances(twin, "web-asg")
        return victim not in now and len(now) == 2 and set(now) <= _running_containers(twin)

    twin.wait_for(replaced, 90, "a replacement instance container")
    assert not podman.container_exists(victim)
    twin.clients("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="web-asg", ForceDelete=True)
    twin.wait_for(lambda: not (set(_group_instances_safe(twin, "web-asg")) & _running_containers(twin)), 60, "cleanup")


def _group_instances_safe(twin: Twin, name: str) -> list[str]:
    groups = twin.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    if not groups["AutoScalingGroups"]:
        # Deleted group: whatever instances it had are terminated in EC2.
        reservations = twin.clients("ec2").describe_instances(
            Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": [name]}]
        )["Reservations"]
        return [i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] == "running"]
    return [i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"]]


APP_PLAY = textwrap.dedent(
    r"""
    - name: Stand-in shop on the twin's hosts
      hosts: all
      gather_facts: false
      vars:
        ansible_python_interpreter: /usr/bin/python3
      tasks:
        - name: App directory
          ansible.builtin.file:
            path: /opt/shop
            state: directory
            mode: "0755"
        - name: App jar
          ansible.builtin.copy:
            src: "{{ jar }}"
            dest: /opt/shop/shop-standin.jar
            mode: "0644"
        - name: Secret-fetch script (what the java_app role's boot unit does)
          ansible.builtin.copy:
            dest: /usr/local/sbin/shop-secret
            mode: "0755"
            content: |
              #!/usr/bin/python3
              import json, os, subprocess
              raw = subprocess.check_output(["aws", "--endpoint-url", "{{ endpoint }}", "secretsmanager",
                  "get-secret-value", "--secret-id", "{{ secret_arn }}", "--query", "SecretString", "--output", "text"])
              s = json.loads(raw)
              os.makedirs("/run/gearlift", exist_ok=True)
              fd = os.open("/run/gearlift/db.env", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
              with os.fdopen(fd, "w") as f:
                  f.write("DB_HOST={{ db_host }}\nDB_NAME=shop\nDB_TLS=disabled\n")
                  f.write("DB_USER=%s\nDB_PASSWORD=%s\n" % (s["username"], s["password"]))
        - name: Secret-fetch unit
          ansible.builtin.copy:
            dest: /etc/systemd/system/shop-secret.service
            mode: "0644"
            content: |
              [Unit]
              Description=Fetch the DB secret into /run/gearlift
              [Service]
              Type=oneshot
              RemainAfterExit=true
              ExecStart=/usr/local/sbin/shop-secret
        - name: App unit
          ansible.builtin.copy:
            dest: /etc/systemd/system/shop.service
            mode: "0644"
            content: |
              [Unit]
              Requires=shop-secret.service
              After=shop-secret.service
              [Service]
              Environment=APP_BIND=0.0.0.0 APP_PORT=8080
              ExecStart=/usr/bin/java -jar /opt/shop/shop-standin.jar
        - name: Start the app
          ansible.builtin.systemd_service:
            name: shop.service
            state: started
            daemon_reload: true
    """
)


def test_rds_mariadb_and_alb_haproxy_serve_the_app(twin: Twin, standin_jar: Path, tmp_path: Path) -> None:
    images.ensure_apphost_image()
    rds = twin.clients("rds")
    db = rds.create_db_instance(
        DBInstanceIdentifier="shopdb",
        DBInstanceClass="db.t3.micro",
        Engine="mysql",
        MasterUsername="shopadmin",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
        DBName="shop",
    )["DBInstance"]
    endpoint = db["Endpoint"]["Address"]
    secret_arn = db["MasterUserSecret"]["SecretArn"]
    twin.wait_for(lambda: "shopdb" in twin.endpoints.databases, 180, "MariaDB for shopdb")

    ec2 = twin.clients("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    tg = http_target_group_behind_alb(twin, "shop", vpc, _default_subnets(twin))
    ami = _ami_for(twin, images.APPHOST_IMAGE, "apphost")
    # The hosts read the DB secret with their instance role's credentials (IMDS), as on EC2.
    _instance_role(twin, "shop-app", secret_arn)
    _asg(twin, "shop-asg", ami, desired=2, profile="shop-app", TargetGroupARNs=[tg], HealthCheckType="EC2")
    members = _group_instances(twin, "shop-asg")
    twin.wait_for(lambda: set(members) <= _running_containers(twin), 120, "app host containers")

    # The endpoint name of the RDS instance resolves on the hosts to the MariaDB container.
    resolved = podman.exec_(members[0], "getent", "hosts", endpoint, check=False)
    assert resolved.returncode == 0 and endpoint in resolved.stdout, resolved.stderr
    # Schema through the endpoint name with the master credentials from Secrets Manager.
    secret = json.loads(twin.clients("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    schema = (REPO / "app/shop-standin/schema.sql").read_bytes()
    loaded = podman.run(
        "exec",
        "-i",
        "-e",
        f"MYSQL_PWD={secret['password']}",
        members[0],
        "mariadb",
        "-h",
        endpoint,
        "-u",
        secret["username"],
        "shop",
        input_bytes=schema,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    # The RDS stand-in speaks TLS with the twin's CA (as RDS does with Amazon's).
    tls = podman.run(
        "exec",
        "-e",
        f"MYSQL_PWD={secret['password']}",
        members[0],
        "mariadb",
        "--ssl",
        "-h",
        endpoint,
        "-u",
        secret["username"],
        "-N",
        "-e",
        "SHOW SESSION STATUS LIKE 'Ssl_version'",
        check=False,
    )
    assert tls.returncode == 0, tls.stderr
    assert "TLSv1.3" in tls.stdout or "TLSv1.2" in tls.stdout, tls.stdout

    inventory = tmp_path / "inventory.ini"
    inventory.write_text("\n".join(members) + "\n", encoding="utf-8")
    play = tmp_path / "app.yml"
    play.write_text(APP_PLAY, encoding="utf-8")
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(inventory),
            "-c",
            "gearlift.platform.podman",
            str(play),
            "-e",
            json.dumps(
                {
                    "jar": str(standin_jar),
                    "endpoint": twin.endpoints.moto_internal,
                    "secret_arn": secret_arn,
                    "db_host": endpoint,
                }
            ),
        ],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    port = twin.endpoints.load_balancers["shop-alb"]["80"]

    def both_up() -> bool:
        states = twin.alb.server_states("shop-alb") if twin.alb else {}
        return sorted(states) == members and all(s.startswith("UP") for s in states.values())

    twin.wait_for(both_up, 120, "both app hosts UP behind HAProxy")
    seen: set[str] = set()
    for _ in range(10):
        status, body = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 200, body
        data = json.loads(body)
        assert data["db"] == "ok"
        seen.add(data["host"])
    assert len(seen) == 2, f"HAProxy should spread requests over both hosts, saw {seen}"
    status, body = http_get(f"http://127.0.0.1:{port}/catalog")
    assert status == 200
    skus = {p["sku"] for p in json.loads(body)}
    assert len(skus) >= 3, body

    # A host whose app stops is taken out by HAProxy's health checks.
    podman.exec_(members[0], "systemctl", "stop", "shop.service")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if twin.alb and twin.alb.server_states("shop-alb").get(members[0], "").startswith("DOWN"):
            break
        time.sleep(1)
    else:
        pytest.fail("HAProxy did not mark the stopped host DOWN")
    stopped_host = podman.exec_(members[0], "hostname").stdout.strip()
    for _ in range(6):
        status, body = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and json.loads(body)["host"] != stopped_host
