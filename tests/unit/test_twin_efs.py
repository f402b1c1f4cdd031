"""The twin's EFS request checks (gearlift.twin.dataplane.efs.decide / evaluate_policy), without containers."""

from __future__ import annotations

import json
from typing import Any

from gearlift.twin.dataplane.efs import MountRequest, decide, evaluate_policy

FS = "fs-0123456789abcdef0"
AP = "fsap-0123456789abcdef0"
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
        (decide(request(), None, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, POLICY), "is not an instance"),
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
