"""The twin's EFS request checks (gearlift.twin.dataplane.efs.decide / evaluate_policy), without containers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gearlift.twin import podman
from gearlift.twin.dataplane import Round
from gearlift.twin.dataplane import efs as efs_plane
from gearlift.twin.dataplane.efs import MountRequest, decide, evaluate_policy
from gearlift.twin.layout import TwinLayout

FS = "fs-0123456789abcdef0"
AP = "fsap-0123456789abcdef0"
REGION = "us-east-1"
AP_ARN = f"arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/{AP}"
FS_ARN = f"arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/{FS}"
ROLE = "arn:aws:iam::123456789012:role/shop-rehearsal-app"

# What playbooks/storage.yml writes (efs_share with require_tls and deny_anonymous).
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AppMountsThroughItsAccessPoint",
                "Effect": "Allow",
                "Principal": {"AWS": [ROLE]},
                "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                "Resource": FS_ARN,
                "Condition": {
                    "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
                    "StringEquals": {"elasticfilesystem:AccessPointArn": AP_ARN},
                },
            },
            {
                "Sid": "DenyWithoutTls",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                "Resource": FS_ARN,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
)

INSTANCE = {"InstanceId": "i-1", "VpcId": "vpc-1", "IamInstanceProfile": {"Arn": "arn:...:instance-profile/app"}}
FILE_SYSTEM = {"FileSystemId": FS, "LifeCycleState": "available"}
MOUNT_TARGET = {"MountTargetId": "fsmt-1", "FileSystemId": FS, "LifeCycleState": "available", "VpcId": "vpc-1"}
ACCESS_POINT = {
    "AccessPointId": AP,
    "AccessPointArn": AP_ARN,
    "FileSystemId": FS,
    "LifeCycleState": "available",
    "RootDirectory": {"Path": "/designs", "CreationInfo": {"OwnerUid": 2750, "OwnerGid": 2750, "Permissions": "0750"}},
}


def request(**changes: Any) -> MountRequest:
    values: dict[str, Any] = dict(
        file_system_id=FS,
        access_point_id=AP,
        path="/",
        target="/var/lib/shop/designs",
        tls=True,
        iam=True,
        read_only=False,
        peer="10.89.85.20",
        mount_target_id="fsmt-1",
    )
    values.update(changes)
    return MountRequest(**values)


def test_the_apps_mount_is_allowed_at_the_access_points_root_with_its_owner() -> None:
    decision = decide(request(), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY)
    assert decision.ok, decision.error
    assert decision.root == "/designs"
    assert decision.owner == (2750, 2750, 0o750)
    assert decision.read_only is False
    sub = decide(request(path="/2026"), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY)
    assert sub.root == "/designs/2026"


def test_the_policy_refuses_no_tls_anonymous_and_other_access_points() -> None:
    no_tls = decide(request(tls=False), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY)
    assert no_tls.error == "the file system policy denies mounts without TLS (mount with -o tls)"
    anonymous = decide(request(iam=False), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY)
    assert "allows only an IAM-signed mount" in anonymous.error
    root = decide(request(access_point_id=""), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, None, POLICY)
    assert "access denied by the file system policy" in root.error


def test_no_policy_is_efs_default_any_client_of_a_mount_target() -> None:
    decision = decide(
        request(tls=False, iam=False, access_point_id=""), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, None, None
    )
    assert decision.ok and decision.root == "/" and decision.owner is None
    assert evaluate_policy(None, "", tls=False, signed=False) == (True, True, "")


def test_read_only_when_the_policy_grants_no_write() -> None:
    policy = json.loads(POLICY)
    policy["Statement"][0]["Action"] = ["elasticfilesystem:ClientMount"]
    decision = decide(request(), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, json.dumps(policy))
    assert decision.ok and decision.read_only


def test_what_does_not_exist_or_does_not_match_is_refused() -> None:
    cases = [
        (decide(request(), None, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY), "is neither an instance"),
        (decide(request(), INSTANCE, None, MOUNT_TARGET, ACCESS_POINT, POLICY), "not found"),
        (
            decide(
                request(), INSTANCE, {**FILE_SYSTEM, "LifeCycleState": "creating"}, MOUNT_TARGET, ACCESS_POINT, None
            ),
            "not available",
        ),
        (
            decide(request(), INSTANCE, FILE_SYSTEM, {**MOUNT_TARGET, "FileSystemId": "fs-other"}, ACCESS_POINT, None),
            "does not serve",
        ),
        (
            decide(request(), INSTANCE, FILE_SYSTEM, {**MOUNT_TARGET, "VpcId": "vpc-2"}, ACCESS_POINT, None),
            "another VPC",
        ),
        (decide(request(), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, None, POLICY), f"access point {AP} not found"),
        (
            decide(request(), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, {**ACCESS_POINT, "FileSystemId": "fs-x"}, None),
            "not found",
        ),
        (decide(request(target="/"), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, None), "other than /"),
        (decide(request(path="/../x"), INSTANCE, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, None), "without '..'"),
    ]
    for decision, words in cases:
        assert not decision.ok
        assert words in decision.error, (words, decision.error)


def test_spooled_requests_are_read_defensively() -> None:
    body = {
        "request": {"file_system_id": FS, "access_point_id": AP, "tls": True, "target": "/mnt/x"},
        "peer": "10.89.85.21",
        "mount_target_id": "fsmt-9",
    }
    parsed = MountRequest.from_spool(body)
    assert (parsed.path, parsed.iam, parsed.peer, parsed.mount_target_id) == ("/", False, "10.89.85.21", "fsmt-9")
    try:
        MountRequest.from_spool({"request": ["not", "a", "dict"]})
    except ValueError as exc:
        assert "not a JSON object" in str(exc)
    else:
        raise AssertionError("a list request was accepted")


# ------------------------------------------------------------------ the reconciler, podman and mounts stubbed


class _Proc:
    def __init__(self, stdout: str = "", returncode: int = 0) -> None:
        self.stdout, self.returncode, self.stderr = stdout, returncode, ""


@pytest.fixture
def plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """An EfsReconciler on moto's EFS (in-process) with podman, mount and nsenter recorded, not run."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    host_calls: list[tuple[str, ...]] = []
    podman_calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(efs_plane, "_host", lambda *cmd: host_calls.append(cmd))
    monkeypatch.setattr(efs_plane.subprocess, "run", lambda *a, **k: _Proc(returncode=0))
    monkeypatch.setattr(efs_plane.os, "chown", lambda *a: None)
    monkeypatch.setattr(efs_plane.os.path, "ismount", lambda path: False)
    monkeypatch.setattr(efs_plane.podman, "list_containers", lambda label: [])
    monkeypatch.setattr(
        efs_plane.podman, "run", lambda *args, **kw: podman_calls.append(args) or _Proc(stdout="4242\n")
    )
    with mock_aws():
        ec2, efs_api = boto3.client("ec2", region_name=REGION), boto3.client("efs", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.41.10.0/24", AvailabilityZone="us-east-1a")["Subnet"]
        sg = ec2.create_security_group(GroupName="efs", Description="efs", VpcId=vpc)["GroupId"]
        fs = efs_api.create_file_system(CreationToken="designs", Encrypted=True)
        mt = efs_api.create_mount_target(
            FileSystemId=fs["FileSystemId"], SubnetId=subnet["SubnetId"], SecurityGroups=[sg]
        )
        ap = efs_api.create_access_point(
            ClientToken="app",
            FileSystemId=fs["FileSystemId"],
            PosixUser={"Uid": 2750, "Gid": 2750},
            RootDirectory={
                "Path": "/designs",
                "CreationInfo": {"OwnerUid": 2750, "OwnerGid": 2750, "Permissions": "750"},
            },
        )
        policy = json.loads(POLICY.replace(FS_ARN, fs["FileSystemArn"]).replace(AP_ARN, ap["AccessPointArn"]))
        efs_api.put_file_system_policy(FileSystemId=fs["FileSystemId"], Policy=json.dumps(policy))
        layout = TwinLayout(
            prefix="t", state_dir=tmp_path, network="t", subnet="10.89.85.0/24", gateway="10.89.85.1", region=REGION
        )
        reconciler = efs_plane.EfsReconciler(
            layout, lambda service: boto3.client(service, region_name=REGION), lambda line: None, "base"
        )
        mounts = reconciler.run_args("i-1")  # what the instance's container was started with
        assert mounts[1].endswith(f":{efs_plane.HELPER_IN_HOST}:ro") and mounts[3].endswith(":rslave")
        yield {
            "reconciler": reconciler,
            "host": host_calls,
            "podman": podman_calls,
            "fs": fs["FileSystemId"],
            "ap": ap["AccessPointId"],
            "mt": mt["MountTargetId"],
            "sg": sg,
            "round": Round(instances={"i-1": {"InstanceId": "i-1", "VpcId": vpc}}, addresses={"i-1": "10.89.85.20"}),
            "spool": tmp_path / "efs" / "spool",
        }


def _ask(plane: dict[str, Any], peer: str = "10.89.85.20", **request: Any) -> dict[str, Any]:
    body = {
        "request": {
            "file_system_id": plane["fs"],
            "access_point_id": plane["ap"],
            "tls": True,
            "iam": True,
            "target": "/var/lib/shop/designs",
            **request,
        },
        "peer": peer,
        "mount_target_id": plane["mt"],
    }
    (plane["spool"] / "r1.req").write_text(json.dumps(body))
    plane["reconciler"].reconcile(plane["round"])
    answer: dict[str, Any] = json.loads((plane["spool"] / "r1.res").read_text())
    (plane["spool"] / "r1.res").unlink()
    assert not (plane["spool"] / "r1.req").exists()
    return answer


def test_each_mount_target_gets_a_server_with_its_names_and_groups(plane: dict[str, Any]) -> None:
    plane["reconciler"].reconcile(plane["round"])
    [run] = [c for c in plane["podman"] if c[0] == "run"]
    assert f"{plane['fs']}.efs.{REGION}.amazonaws.com" in run
    assert f"us-east-1a.{plane['fs']}.efs.{REGION}.amazonaws.com" in run
    assert "gearlift.kind=efs" in run
    node = plane["reconciler"].node({"gearlift.mount-target-id": plane["mt"]}, "10.89.85.30")
    assert node is not None and node.kind == "efs" and node.groups == (plane["sg"],)
    assert node.addresses[0].startswith("10.41.10.")


def test_an_allowed_request_is_bound_into_the_host_through_its_staging_directory(plane: dict[str, Any]) -> None:
    answer = _ask(plane)
    assert answer == {"ok": True, "message": ""}
    root = plane["reconciler"].data / plane["fs"] / "designs"
    assert root.is_dir() and oct(root.stat().st_mode & 0o777) == "0o750"
    [bind, enter] = plane["host"][-2:]
    assert bind[:3] == ("mount", "--bind", str(root))
    assert bind[3].startswith(str(plane["reconciler"].staging / "i-1" / "m"))
    assert enter[:5] == ("nsenter", "-t", "4242", "-m", "--")
    assert enter[-3:] == ("/var/lib/shop/designs", f"{efs_plane.STAGING_IN_HOST}/{Path(bind[3]).name}", "bind")


def test_refused_requests_mount_nothing(plane: dict[str, Any]) -> None:
    plane["reconciler"].reconcile(plane["round"])
    before = len(plane["host"])
    assert "without TLS" in _ask(plane, tls=False)["message"]
    assert "is neither an instance of this account nor a host of the site" in _ask(plane, peer="10.89.85.99")["message"]
    assert "not found" in _ask(plane, access_point_id="fsap-00000000000000000")["message"]
    assert len(plane["host"]) == before
    plane["round"].instances["i-2"] = plane["round"].instances["i-1"]
    plane["round"].addresses["i-2"] = "10.89.85.21"
    assert "without the EFS staging directory" in _ask(plane, peer="10.89.85.21")["message"]


def test_a_site_host_through_the_vpn_mounts_without_the_vpc_check() -> None:
    """An on-premises client reaches the mount target through the VPN (the firewall checked that path); the
    policy still decides: TLS and a signed mount through the access point."""
    site = {"Site": "t-onprem-app"}
    allowed = decide(request(), site, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY)
    assert allowed.ok and allowed.root == "/designs", allowed.error
    assert "without TLS" in decide(request(tls=False), site, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY).error
    assert "IAM-signed" in decide(request(iam=False), site, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY).error


def test_the_sites_app_server_started_with_staging_is_bound_into(
    plane: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = "t-onprem-app"
    plane["reconciler"].run_args(site)  # the estate starts its app server with these
    monkeypatch.setattr(
        efs_plane.podman,
        "list_containers",
        lambda label: [
            podman.Container(site, "running", {"gearlift.kind": "onprem"}, "apphost"),
            podman.Container("t-onprem-db", "running", {"gearlift.kind": "onprem"}, "mariadb"),
        ],
    )
    addresses = {site: "10.89.85.40", "t-onprem-db": "10.89.85.41"}
    monkeypatch.setattr(efs_plane.podman, "container_ip", lambda name, network: addresses[name])
    assert plane["reconciler"].site_hosts() == {site: "10.89.85.40"}, "only hosts started with the staging directory"
    assert _ask(plane, peer="10.89.85.40") == {"ok": True, "message": ""}
    bind = plane["host"][-2]
    assert bind[3].startswith(str(plane["reconciler"].staging / site / "m"))
    assert "neither an instance" in _ask(plane, peer="10.89.85.41")["message"]
