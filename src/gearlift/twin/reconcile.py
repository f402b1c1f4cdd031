"""The twin's data plane, reconciled from what the AWS control plane (moto) says exists.

- EC2: every pending/running instance is a systemd container named by its
  instance id, booted from the local image its AMI is tagged with
  (`gearlift:local-image`); stopped instances are stopped containers, terminated
  ones are removed. The instance's user data runs as cloud-init would run it
  (gearlift.twin.cloudinit). An image created from an instance (CreateImage)
  is the instance's container committed into a local image (the twin's mount
  points removed first); the AMI is tagged with it and becomes available.
  When the image's snapshot is deleted, the local image goes too.
- Auto Scaling: moto launches instances for a group but runs no control loop,
  so the twin plays the service's part: an instance that was terminated, or
  that its load balancer reports unhealthy past the grace period when the group
  uses ELB health checks, is replaced through the Auto Scaling API, and the
  group's instances are kept registered in its target groups.
- RDS: every DB instance is a MariaDB server in a container whose RDS endpoint
  name resolves on the twin network (a network alias), with the master user
  and database created from what the control plane holds.
- ELBv2: every application load balancer is an HAProxy on loopback with one
  frontend per listener, forwarding to the healthy container hosts of its
  target group and health-checking them as the target group says.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gearlift.twin import cloudinit, images, podman
from gearlift.twin.awsclients import Clients
from gearlift.twin.errors import TwinError
from gearlift.twin.healthcheck import CheckSpec
from gearlift.twin.netutil import free_port

LOCAL_IMAGE_TAG = "gearlift:local-image"
# Where the twins keep their sockets and pid files (tmpfs, root's: the twin runs as root).
RUNTIME_ROOT = Path(os.environ.get("GEARLIFT_RUNTIME_DIR", "/run/gearlift"))
ASG_NAME_TAG = "aws:autoscaling:groupName"
# Local images committed from instances: named by AMI id, labelled with the twin and the snapshot.
AMI_IMAGE_REPO = "localhost/gearlift-ami"
SNAPSHOT_LABEL = "gearlift.snapshot"

Log = Callable[[str], None]


@dataclass
class TwinLayout:
    """Names and paths of one twin; tests use their own prefix and subnet."""

    prefix: str
    state_dir: Path
    network: str
    subnet: str
    gateway: str
    region: str

    @property
    def label(self) -> str:
        return f"{podman.LABEL}={self.prefix}"

    @property
    def aws_dir(self) -> Path:
        return self.state_dir / "aws"

    @property
    def dropin(self) -> Path:
        return self.state_dir / "systemd-aws-endpoint.conf"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "endpoints.json"

    @property
    def runtime_dir(self) -> Path:
        """Sockets and pid files: a short path whatever the state dir's length.

        A UNIX socket path has a hard limit (HAProxy's stats socket: 97 characters), so a
        clone in a long directory must not put its sockets under the state dir. The name is
        derived from the state dir, so two twins never share it.
        """
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:12]
        return RUNTIME_ROOT / digest


@dataclass
class Endpoints:
    """What the twin serves where: written to endpoints.json for tests and users."""

    moto: str = ""
    moto_internal: str = ""
    load_balancers: dict[str, dict[str, int]] = field(default_factory=dict)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {
                    "moto": self.moto,
                    "moto_internal": self.moto_internal,
                    "load_balancers": self.load_balancers,
                    "databases": self.databases,
                },
                indent=2,
                sort_keys=True,
            ),
            encoding="utf-8",
        )


def _backend_id(arn: str) -> str:
    return "tg_" + hashlib.sha256(arn.encode()).hexdigest()[:10]


def _expand_codes(matcher: str) -> list[str]:
    """ALB matcher ("200", "200,302", "200-299") -> explicit status codes."""
    codes: list[str] = []
    for part in matcher.replace(" ", "").split(","):
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            codes.extend(str(c) for c in range(lo, hi + 1))
        elif part:
            codes.append(part)
    return codes or ["200"]


def _paginate(client: Any, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(op).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out


class Ec2Reconciler:
    def __init__(self, layout: TwinLayout, clients: Clients, log: Log) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        self._warned: set[str] = set()
        self.launched_at: dict[str, float] = {}
        self.generator = cloudinit.write_generator(layout.state_dir / "cloud-init-generator")
        # Called with the container's name right after it starts (the firewall seals it).
        self.on_start: Callable[[str], None] | None = None

    def _instances(self) -> dict[str, dict[str, Any]]:
        reservations = _paginate(self.clients("ec2"), "describe_instances", "Reservations")
        return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}

    def local_image_for(self, ami_id: str) -> str | None:
        found = self.clients("ec2").describe_images(ImageIds=[ami_id]).get("Images", [])
        if not found:
            return None
        tags = {t["Key"]: t["Value"] for t in found[0].get("Tags", [])}
        return tags.get(LOCAL_IMAGE_TAG)

    def containers(self) -> dict[str, podman.Container]:
        return {
            c.labels.get("gearlift.instance-id", c.name): c
            for c in podman.list_containers(self.layout.label)
            if c.labels.get("gearlift.kind") == "ec2"
        }

    def reconcile(self) -> dict[str, dict[str, Any]]:
        instances = self._instances()
        containers = self.containers()
        for iid, container in containers.items():
            state = instances.get(iid, {}).get("State", {}).get("Name", "terminated")
            if state in ("terminated", "shutting-down"):
                self.log(f"ec2: {iid} {state} -> removing its container")
                podman.remove(container.name)
            elif state in ("stopping", "stopped") and container.state == "running":
                self.log(f"ec2: {iid} {state} -> stopping its container")
                podman.run("stop", "-t", "10", container.name, check=False)
            elif state in ("pending", "running") and container.state != "running":
                podman.run("start", container.name, check=False)
        for iid, inst in instances.items():
            if inst["State"]["Name"] not in ("pending", "running") or iid in containers:
                continue
            image = self.local_image_for(inst["ImageId"])
            if image is None or not podman.image_exists(image):
                if iid not in self._warned:
                    self._warned.add(iid)
                    self.log(
                        f"ec2: {iid} cannot boot: AMI {inst['ImageId']} has no usable "
                        f"'{LOCAL_IMAGE_TAG}' tag (got {image!r})"
                    )
                continue
            self.start_container(iid, inst, image)
        self.reconcile_images(instances)
        return instances

    # ----------------------------------------------------------------- images
    def _mount_points(self, iid: str) -> list[str]:
        """Where the twin mounts its own files into an instance (never part of an image)."""
        return [
            "/root/.aws",
            "/etc/gearlift-twin/aws",
            cloudinit.INSTANCE_DIR,
            "/etc/gearlift-twin",
            "/etc/systemd/system.conf.d/50-gearlift-twin-aws.conf",
            cloudinit.GENERATOR_PATH,
            "/etc/systemd/system-generators",
            "/etc/systemd/system.conf.d",
        ]

    def _remove_mount_points(self, container: str) -> None:
        """Drop the empty placeholders the runtime created for the twin's mounts, before a commit."""
        root = Path(podman.run("mount", container).stdout.strip())
        try:
            for point in self._mount_points(container):
                path = root / point.lstrip("/")
                if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        finally:
            podman.run("umount", container, check=False)

    def reconcile_images(self, instances: dict[str, dict[str, Any]]) -> None:
        ec2 = self.clients("ec2")
        pending = ec2.describe_images(Owners=["self"], Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]
        for image in pending:
            source = image.get("SourceInstanceId")
            if not source:
                continue
            ami = image["ImageId"]
            if not podman.container_exists(source):
                if ami not in self._warned:
                    self._warned.add(ami)
                    self.log(f"ec2: image {ami} waits for the container of {source}")
                continue
            snapshot = next((m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs")), "")
            local = f"{AMI_IMAGE_REPO}:{ami}"
            started = time.monotonic()
            self._remove_mount_points(source)
            podman.run(
                "commit",
                *images.SYSTEMD_IMAGE_CHANGES,
                "--change",
                f"LABEL {self.layout.label}",
                "--change",
                f"LABEL {SNAPSHOT_LABEL}={snapshot}",
                source,
                local,
                timeout=1800,
            )
            ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": local}])
            self.report("image-available", {"image_id": ami})
            self.log(f"ec2: image {ami} of {source} committed as {local} in {time.monotonic() - started:.0f} s")
        self._drop_deleted_images()

    def _drop_deleted_images(self) -> None:
        """A local image whose AMI and snapshot are both gone is removed (when no container uses it)."""
        listing = podman.run("images", "--filter", f"label={self.layout.label}", "--format", "json", check=False)
        if listing.returncode != 0:
            return
        ec2 = self.clients("ec2")
        for item in json.loads(listing.stdout or "[]"):
            names = [n for n in item.get("Names") or [] if n.startswith(AMI_IMAGE_REPO + ":")]
            if not names:
                continue
            ami = names[0].split(":", 1)[1]
            snapshot = (item.get("Labels") or {}).get(SNAPSHOT_LABEL, "")
            if ec2.describe_images(Filters=[{"Name": "image-id", "Values": [ami]}])["Images"]:
                continue
            if snapshot:
                found = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot]}])["Snapshots"]
                if found:
                    continue
            if podman.run("rmi", names[0], check=False).returncode == 0:
                self.log(f"ec2: image {ami} and its snapshot are deleted -> removed {names[0]}")

    def report(self, what: str, body: dict[str, Any]) -> None:
        """Tell the emulator what only the data plane knows (its private /_gearlift/ channel)."""
        payload = json.dumps({"region": self.layout.region, **body}).encode()
        request = urllib.request.Request(  # noqa: S310 - the twin's own emulator on loopback
            f"{self.clients.endpoint}/_gearlift/{what}", data=payload, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            resp.read()

    def _user_data(self, iid: str) -> bytes:
        answer = self.clients("ec2").describe_instance_attribute(InstanceId=iid, Attribute="userData")
        value = (answer.get("UserData") or {}).get("Value") or ""
        return base64.b64decode(value) if value else b""

    def _cloud_init_args(self, iid: str) -> list[str]:
        instance_dir = self.layout.state_dir / "instances" / iid
        try:
            if not cloudinit.prepare(instance_dir, iid, self._user_data(iid)):
                return []
        except (cloudinit.UserDataError, ValueError, yaml.YAMLError) as exc:
            self.log(f"ec2: {iid}: user data not run: {exc}")
            return []
        return [
            "-v",
            f"{instance_dir}:{cloudinit.INSTANCE_DIR}:ro",
            "-v",
            f"{self.generator}:{cloudinit.GENERATOR_PATH}:ro",
        ]

    def start_container(self, iid: str, inst: dict[str, Any], image: str) -> None:
        if podman.container_exists(iid):
            raise TwinError(
                f"a container named {iid} already exists but is not part of this twin: "
                f"remove it (`podman rm -f {iid}`) and run again."
            )
        hostname = (inst.get("PrivateDnsName") or iid).split(".")[0] or iid
        args = [
            "run",
            "-d",
            "--name",
            iid,
            "--hostname",
            hostname,
            "--network",
            self.layout.network,
            "--label",
            self.layout.label,
            "--label",
            "gearlift.kind=ec2",
            "--label",
            f"gearlift.instance-id={iid}",
            "--label",
            f"gearlift.ami={inst['ImageId']}",
            *podman.RUN_FIX_ARGS,
            "--systemd",
            "always",
            "-v",
            f"{self.layout.aws_dir}:/root/.aws:ro",
            "-v",
            f"{self.layout.aws_dir}:/etc/gearlift-twin/aws:ro",
            "-v",
            f"{self.layout.dropin}:/etc/systemd/system.conf.d/50-gearlift-twin-aws.conf:ro",
            *self._cloud_init_args(iid),
            image,
            "/sbin/init",
        ]
        podman.run(*args)
        if self.on_start is not None:
            self.on_start(iid)
        self.launched_at[iid] = time.monotonic()
        self.log(f"ec2: {iid} running as a container from {image}")


class AsgController:
    """Plays the Auto Scaling service's health/replacement loop that moto lacks."""

    def __init__(self, clients: Clients, log: Log) -> None:
        self.clients = clients
        self.log = log

    def groups(self) -> list[dict[str, Any]]:
        return _paginate(self.clients("autoscaling"), "describe_auto_scaling_groups", "AutoScalingGroups")

    def reconcile(
        self,
        instances: dict[str, dict[str, Any]],
        unhealthy_targets: set[str],
        launched_at: dict[str, float],
    ) -> None:
        asg = self.clients("autoscaling")
        for group in self.groups():
            grace = float(group.get("HealthCheckGracePeriod", 0) or 0)
            elb_checks = group.get("HealthCheckType") == "ELB"
            for member in group.get("Instances", []):
                iid = member["InstanceId"]
                if iid not in instances:
                    continue  # launched after the EC2 listing this round saw: judged next round
                state = instances[iid].get("State", {}).get("Name", "terminated")
                reason = None
                if state in ("terminated", "shutting-down", "stopped", "stopping"):
                    reason = f"EC2 state {state}"
                elif elb_checks and iid in unhealthy_targets and time.monotonic() - launched_at.get(iid, 0.0) > grace:
                    reason = "ELB health check failed"
                if reason is None:
                    continue
                self.log(f"autoscaling: {group['AutoScalingGroupName']}: replacing {iid} ({reason})")
                asg.set_instance_health(InstanceId=iid, HealthStatus="Unhealthy")
                asg.terminate_instance_in_auto_scaling_group(InstanceId=iid, ShouldDecrementDesiredCapacity=False)
            self._sync_target_groups(group["AutoScalingGroupName"])

    def _sync_target_groups(self, name: str) -> None:
        asg = self.clients("autoscaling")
        elbv2 = self.clients("elbv2")
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        # The group registers instances in service; Standby ones stay out (patching, troubleshooting).
        members = {m["InstanceId"] for m in group.get("Instances", []) if m.get("LifecycleState") == "InService"}
        standby = {m["InstanceId"] for m in group.get("Instances", []) if m.get("LifecycleState") != "InService"}
        for tg_arn in group.get("TargetGroupARNs", []):
            tg = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
            registered = {
                d["Target"]["Id"]
                for d in elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
                if d.get("TargetHealth", {}).get("State") != "draining"
            }
            add = sorted(members - registered)
            # Targets that left the group; Standby ones were deregistered by the group itself.
            gone = sorted(registered - members - standby)
            if add:
                elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": i, "Port": tg["Port"]} for i in add])
            if gone:
                elbv2.deregister_targets(TargetGroupArn=tg_arn, Targets=[{"Id": i} for i in gone])


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

    def reconcile(self) -> dict[str, dict[str, Any]]:
        dbs = {
            d["DBInstanceIdentifier"]: d for d in _paginate(self.clients("rds"), "describe_db_instances", "DBInstances")
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
            params = _paginate(rds, "describe_db_parameters", "Parameters", DBParameterGroupName=name)
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


HAPROXY_HEAD = """# Written by the gearlift twin: this HAProxy stands in for ALB {name}.
global
    log stdout format raw local0 warning
    # expose-fd: a reload (-x) takes over the listening sockets, so no connection is refused.
    stats socket {sock} mode 600 level admin expose-fd listeners
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    option http-server-close
    option forwardfor
    retries 2
    option redispatch
    # The load balancer's own address on the twin network: the hosts' security groups see it.
    source {source}
"""


def check_config(name: str, cfg: Path) -> None:
    """`haproxy -c`; a refusal carries HAProxy's own reason (`-q` would hide it)."""
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        reason = "\n".join(part.strip() for part in (check.stderr, check.stdout) if part.strip())
        raise TwinError(
            f"alb: HAProxy config for {name} ({cfg}) is invalid:\n"
            f"{reason or f'haproxy -c exited {check.returncode} without a message'}"
        )


class AlbReconciler:
    def __init__(self, layout: TwinLayout, clients: Clients, log: Log, cert_pem: Path, endpoints: Endpoints) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        self.cert_pem = cert_pem
        self.endpoints = endpoints
        self._cfg_hash: dict[str, str] = {}
        # Each load balancer's source address on the twin network (its ENIs on AWS): the app
        # hosts' security groups admit it only when they admit the load balancer's group.
        self.sources: dict[str, str] = {}

    def source_for(self, lb_name: str) -> str:
        """The load balancer's address: one per balancer, from the top of the twin subnet, on the bridge."""
        if lb_name in self.sources:
            return self.sources[lb_name]
        net = ipaddress.ip_network(self.layout.subnet)
        taken = set(self.sources.values())
        address = next(str(ip) for ip in reversed(list(net.hosts())) if str(ip) not in taken)
        bridge = podman.network_interface(self.layout.network)
        add = subprocess.run(
            ["ip", "addr", "add", f"{address}/32", "dev", bridge], capture_output=True, text=True, check=False
        )
        if add.returncode != 0 and "File exists" not in add.stderr:
            raise TwinError(f"alb: cannot give {lb_name} its address {address} on {bridge}: {add.stderr.strip()}")
        self.sources[lb_name] = address
        return address

    def _files(self, lb_name: str) -> tuple[Path, Path, Path]:
        """Config under the state dir; pid file and stats socket in the short runtime dir."""
        run = self.layout.runtime_dir
        run.mkdir(mode=0o700, parents=True, exist_ok=True)
        return (
            self.layout.state_dir / f"haproxy-{lb_name}.cfg",
            run / f"alb-{lb_name}.pid",
            run / f"alb-{hashlib.sha256(lb_name.encode()).hexdigest()[:8]}.sock",
        )

    def render(
        self, lb: dict[str, Any], addresses: dict[str, str], health: dict[str, dict[str, str]] | None = None
    ) -> str:
        """HAProxy config for one ALB. Draining targets are left out; like an ALB, only healthy
        targets get traffic (the others are listed with weight 0: HAProxy still checks them)."""
        elbv2 = self.clients("elbv2")
        health = health or {}
        name = lb["LoadBalancerName"]
        cfg, _, sock = self._files(name)
        ports = self.endpoints.load_balancers.setdefault(name, {})
        out = [HAPROXY_HEAD.format(name=name, sock=sock, source=self.source_for(name))]
        listeners = _paginate(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=lb["LoadBalancerArn"])
        backends: dict[str, dict[str, Any]] = {}
        for listener in sorted(listeners, key=lambda x: x["Port"]):
            lport = str(listener["Port"])
            if lport not in ports:
                ports[lport] = free_port()
            bind = f"127.0.0.1:{ports[lport]}"
            if listener["Protocol"] == "HTTPS":
                bind += f" ssl crt {self.cert_pem}"
            out.append(f"frontend l{lport}\n    bind {bind}")
            out.append("    http-request set-header X-Forwarded-Proto " + listener["Protocol"].lower())
            out.append(f"    http-request set-header X-Forwarded-Port {lport}")
            for action in sorted(listener.get("DefaultActions", []), key=lambda a: a.get("Order", 0)):
                kind = action["Type"]
                if kind == "redirect":
                    cfgr = action.get("RedirectConfig", {})
                    scheme = cfgr.get("Protocol", "#{protocol}").lower()
                    code = cfgr.get("StatusCode", "HTTP_301").replace("HTTP_", "")
                    target_port = cfgr.get("Port", "#{port}")
                    local = ports.get(str(target_port)) if target_port.isdigit() else None
                    location = f"{scheme}://%[req.hdr(host),field(1,:)]" + (f":{local}" if local else "")
                    out.append(f"    http-request redirect location {location}%[capture.req.uri] code {code}")
                    break
                if kind == "fixed-response":
                    fixed = action.get("FixedResponseConfig", {})
                    out.append(f"    http-request return status {fixed.get('StatusCode', '503')}")
                    break
                if kind == "forward":
                    arns = (
                        [action["TargetGroupArn"]]
                        if action.get("TargetGroupArn")
                        else [t["TargetGroupArn"] for t in action.get("ForwardConfig", {}).get("TargetGroups", [])]
                    )
                    for arn in arns:
                        backends[arn] = {}
                    out.append(f"    default_backend {_backend_id(arns[0])}" if arns else "")
                    break
        for arn in backends:
            tg = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
            targets = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            path = tg.get("HealthCheckPath", "/")
            matcher = tg.get("Matcher", {}).get("HttpCode", "200")
            interval = int(tg.get("HealthCheckIntervalSeconds", 30))
            rise = int(tg.get("HealthyThresholdCount", 5))
            fall = int(tg.get("UnhealthyThresholdCount", 2))
            timeout = int(tg.get("HealthCheckTimeoutSeconds", 5))
            hc_port = tg.get("HealthCheckPort", "traffic-port")
            out.append(f"backend {_backend_id(arn)}\n    # {tg['TargetGroupName']}")
            out.append("    balance roundrobin")
            out.append(f"    timeout check {timeout}s")
            out.append(f"    option httpchk GET {path}")
            out.append(f"    http-check expect rstatus ^({'|'.join(_expand_codes(matcher))})$")
            for desc in sorted(targets, key=lambda d: d["Target"]["Id"]):
                iid = desc["Target"]["Id"]
                if desc.get("TargetHealth", {}).get("State") == "draining":
                    continue  # deregistered: in-flight requests finish in the old HAProxy process
                port = desc["Target"].get("Port", tg["Port"])
                ip = addresses.get(iid)
                if ip is None:
                    continue
                check_port = "" if hc_port == "traffic-port" else f" port {hc_port}"
                # A target group the checker does not see has no verdicts: traffic flows. In one it
                # sees, a target registered after this round's checks is still `initial`: no traffic
                # (a new host booting behind Apache would answer 503).
                verdicts = health.get(arn)
                weight = 1 if verdicts is None or verdicts.get(iid) == "healthy" else 0
                out.append(
                    f"    server {iid} {ip}:{port} weight {weight} check inter {interval}s rise {rise} fall {fall}"
                    f"{check_port}"
                )
        text = "\n".join(line for line in out if line) + "\n"
        cfg.write_text(text, encoding="utf-8")
        return text

    def _running_pid(self, pidfile: Path) -> int | None:
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def reconcile(self, addresses: dict[str, str], health: dict[str, dict[str, str]] | None = None) -> None:
        elbv2 = self.clients("elbv2")
        lbs = [
            lb for lb in _paginate(elbv2, "describe_load_balancers", "LoadBalancers") if lb.get("Type") == "application"
        ]
        names = {lb["LoadBalancerName"] for lb in lbs}
        for name in list(self.endpoints.load_balancers):
            if name not in names:
                self.stop(name)
        for lb in lbs:
            name = lb["LoadBalancerName"]
            text = self.render(lb, addresses, health)
            digest = hashlib.sha256(text.encode()).hexdigest()
            cfg, pidfile, _ = self._files(name)
            pid = self._running_pid(pidfile)
            if pid is not None and self._cfg_hash.get(name) == digest:
                continue
            check_config(name, cfg)
            cmd = ["haproxy", "-D", "-p", str(pidfile), "-f", str(cfg)]
            _, _, sock = self._files(name)
            if pid is not None:
                cmd += (["-x", str(sock)] if sock.exists() else []) + ["-sf", str(pid)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise TwinError(f"alb: HAProxy for {name} failed to start: {proc.stderr.strip()}")
            self._cfg_hash[name] = digest
            ports = ", ".join(f"{k}->127.0.0.1:{v}" for k, v in sorted(self.endpoints.load_balancers[name].items()))
            self.log(f"alb: {name} {'reloaded' if pid else 'serving'} on {ports}")

    def checked_targets(self) -> dict[str, tuple[CheckSpec, dict[str, int]]]:
        """Target groups a load balancer forwards to, with their registered (not draining) targets."""
        elbv2 = self.clients("elbv2")
        out: dict[str, tuple[CheckSpec, dict[str, int]]] = {}
        for tg in _paginate(elbv2, "describe_target_groups", "TargetGroups"):
            if not tg.get("LoadBalancerArns"):
                continue  # not in use: ELB does not check it
            arn = tg["TargetGroupArn"]
            ports = {
                d["Target"]["Id"]: int(d["Target"].get("Port", tg["Port"]))
                for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                if d.get("TargetHealth", {}).get("State") != "draining"
            }
            spec = CheckSpec.from_target_group(tg, _expand_codes)
            # ELB's health checks come from the load balancer's own addresses.
            sources = [self.sources[n] for n in self._lb_names(tg.get("LoadBalancerArns", [])) if n in self.sources]
            out[arn] = (dataclasses.replace(spec, source=sources[0] if sources else ""), ports)
        return out

    def _lb_names(self, arns: list[str]) -> list[str]:
        if not arns:
            return []
        found = self.clients("elbv2").describe_load_balancers(LoadBalancerArns=arns)["LoadBalancers"]
        return [lb["LoadBalancerName"] for lb in found]

    def _show_stat(self, lb_name: str) -> dict[str, str]:
        """Server name -> status (UP, DOWN, ...) from HAProxy's stats socket."""
        _, _, sock = self._files(lb_name)
        states: dict[str, str] = {}
        if not sock.exists():
            return states
        data = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(2)
                conn.connect(str(sock))
                conn.sendall(b"show stat\n")
                while chunk := conn.recv(65536):
                    data += chunk
        except OSError:
            return states
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[1].startswith("i-"):
                states[fields[1]] = fields[17]
        return states

    def server_states(self, lb_name: str) -> dict[str, str]:
        return self._show_stat(lb_name)

    def unhealthy_targets(self) -> set[str]:
        """Targets HAProxy has marked DOWN (its health checks stand in for the ALB's)."""
        return {
            iid
            for name in self.endpoints.load_balancers
            for iid, status in self._show_stat(name).items()
            if status.startswith("DOWN")
        }

    def stop(self, name: str) -> None:
        _, pidfile, _ = self._files(name)
        pid = self._running_pid(pidfile)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self._running_pid(pidfile) is not None:
                time.sleep(0.1)
            if self._running_pid(pidfile) is not None:
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)
        self.endpoints.load_balancers.pop(name, None)
        address = self.sources.pop(name, None)
        if address is not None and podman.network_exists(self.layout.network):
            bridge = podman.network_interface(self.layout.network)
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", bridge], capture_output=True, check=False)
        self._cfg_hash.pop(name, None)
        self.log(f"alb: {name} stopped")

    def stop_all(self) -> None:
        for name in list(self.endpoints.load_balancers):
            self.stop(name)
