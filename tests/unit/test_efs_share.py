"""gearlift.platform.efs_share: its pure logic (module_utils/efs.py) and the module against moto's EFS."""

from __future__ import annotations

import json

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils import efs
from ansible_collections.gearlift.platform.plugins.modules import efs_share
from moto import mock_aws

from .module_harness import REPO, CallLog, dummy_aws_env, role_defaults, run_main, task_args

REGION = "eu-west-1"
FS_ARN = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123"
AP_ARN = "arn:aws:elasticfilesystem:eu-west-1:123456789012:access-point/fsap-0123"
ROLE = "arn:aws:iam::123456789012:role/shop-rehearsal-app"

# ------------------------------------------------------------------ pure logic


def test_lifecycle_rules_and_their_comparison():
    assert efs.lifecycle_policies(30, True) == [
        {"TransitionToIA": "AFTER_30_DAYS"},
        {"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    assert efs.lifecycle_policies(1, False) == [{"TransitionToIA": "AFTER_1_DAY"}]
    assert efs.lifecycle_policies(0, False) == []
    with pytest.raises(efs.EfsSpecError, match="45 is not one EFS offers"):
        efs.lifecycle_policies(45, False)
    with pytest.raises(efs.EfsSpecError, match="needs transition_to_ia_days"):
        efs.lifecycle_policies(0, True)
    # The API may return both rules in one item; order does not matter.
    merged = [{"TransitionToPrimaryStorageClass": "AFTER_1_ACCESS", "TransitionToIA": "AFTER_30_DAYS"}]
    assert efs.lifecycle_equal(merged, efs.lifecycle_policies(30, True))
    assert not efs.lifecycle_equal(merged, efs.lifecycle_policies(7, True))


def spec(**overrides):
    values = dict(
        encrypted=True,
        kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k1",
        performance_mode="generalPurpose",
        throughput_mode="elastic",
        provisioned_mibps=None,
    )
    values.update(overrides)
    return efs.FileSystemSpec(**values)


def test_file_system_spec_refuses_what_efs_refuses():
    with pytest.raises(efs.EfsSpecError, match="needs provisioned_throughput_mibps"):
        spec(throughput_mode="provisioned")
    with pytest.raises(efs.EfsSpecError, match="only for throughput_mode provisioned"):
        spec(provisioned_mibps=10.0)
    with pytest.raises(efs.EfsSpecError, match="elastic needs performance_mode general_purpose"):
        spec(performance_mode="maxIO")
    with pytest.raises(efs.EfsSpecError, match="encrypted is false"):
        spec(encrypted=False)


def test_drift_updates_throughput_and_refuses_immutable_changes():
    current = {
        "FileSystemId": "fs-1",
        "Encrypted": True,
        "KmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k1",
        "PerformanceMode": "generalPurpose",
        "ThroughputMode": "bursting",
    }
    assert spec().drift(current) == {"ThroughputMode": "elastic"}
    assert spec(throughput_mode="bursting").drift(current) == {}
    assert spec(throughput_mode="provisioned", provisioned_mibps=64.0).drift(current) == {
        "ThroughputMode": "provisioned",
        "ProvisionedThroughputInMibps": 64.0,
    }
    with pytest.raises(efs.EfsSpecError, match=r"encrypted is False, wanted True.*cannot change"):
        spec().drift({**current, "Encrypted": False, "KmsKeyId": None})
    with pytest.raises(efs.EfsSpecError, match=r"KMS key is .*k1, wanted .*k2"):
        spec(kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k2").drift(current)
    with pytest.raises(efs.EfsSpecError, match="performance mode is generalPurpose, wanted maxIO"):
        spec(performance_mode="maxIO", throughput_mode="bursting").drift(current)


def test_mount_target_plan_creates_deletes_and_regroups():
    current = [
        {"MountTargetId": "fsmt-a", "SubnetId": "subnet-a", "LifeCycleState": "available"},
        {"MountTargetId": "fsmt-b", "SubnetId": "subnet-b", "LifeCycleState": "available"},
        {"MountTargetId": "fsmt-old", "SubnetId": "subnet-old", "LifeCycleState": "available"},
        {"MountTargetId": "fsmt-gone", "SubnetId": "subnet-c", "LifeCycleState": "deleting"},
    ]
    groups = {"fsmt-a": ["sg-efs"], "fsmt-b": ["sg-other"], "fsmt-old": ["sg-efs"], "fsmt-gone": ["sg-efs"]}
    plan = efs.mount_target_plan(
        current, groups, {"subnet-a": ["sg-efs"], "subnet-b": ["sg-efs"], "subnet-c": ["sg-efs"]}
    )
    assert plan.create == {"subnet-c": ["sg-efs"]}
    assert plan.delete == ["fsmt-old"]
    assert plan.regroup == {"fsmt-b": ["sg-efs"]}
    same = efs.mount_target_plan(current[:1], groups, {"subnet-a": ["sg-efs"]})
    assert same.empty
    with pytest.raises(efs.EfsSpecError, match="at least one security group"):
        efs.mount_target_plan([], {}, {"subnet-a": []})


def test_access_point_spec_refuses_root_world_access_and_reports_differences():
    point = efs.AccessPointSpec(name="designs", uid=990, gid=990, path="/designs", permissions="0750")
    params = point.create_params("fs-1", {"gearlift:project": "shop"})
    assert params["PosixUser"] == {"Uid": 990, "Gid": 990}
    assert params["RootDirectory"]["CreationInfo"] == {"OwnerUid": 990, "OwnerGid": 990, "Permissions": "0750"}
    assert {"Key": "Name", "Value": "designs"} in params["Tags"]
    existing = {"PosixUser": {"Uid": 990, "Gid": 990}, "RootDirectory": params["RootDirectory"]}
    assert point.differences(existing) == []
    other = {**existing, "PosixUser": {"Uid": 1000, "Gid": 990}}
    assert point.differences(other) == ["uid/gid 1000/990, wanted 990/990"]
    with pytest.raises(efs.EfsSpecError, match="uid/gid 0"):
        efs.AccessPointSpec(name="x", uid=0, gid=990, path="/d", permissions="0750")
    with pytest.raises(efs.EfsSpecError, match="give other users access"):
        efs.AccessPointSpec(name="x", uid=990, gid=990, path="/d", permissions="0755")
    with pytest.raises(efs.EfsSpecError, match="must be absolute"):
        efs.AccessPointSpec(name="x", uid=990, gid=990, path="designs", permissions="0750")


def test_policy_admits_only_the_role_through_the_access_point_and_denies_no_tls():
    policy = efs.file_system_policy(FS_ARN, AP_ARN, [ROLE], require_tls=True, deny_anonymous=True)
    allow, deny = policy["Statement"]
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"AWS": [ROLE]}
    assert "elasticfilesystem:ClientRootAccess" not in allow["Action"]
    assert allow["Condition"]["StringEquals"] == {"elasticfilesystem:AccessPointArn": AP_ARN}
    assert deny == {
        "Sid": "DenyWithoutTls",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "*",
        "Resource": FS_ARN,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert efs.policy_requires_tls(json.dumps(policy))
    open_policy = efs.file_system_policy(FS_ARN, AP_ARN, [], require_tls=False, deny_anonymous=False)
    assert open_policy["Statement"][0]["Principal"] == {"AWS": "*"}
    assert not efs.policy_requires_tls(open_policy)
    assert not efs.policy_requires_tls(None)
    with pytest.raises(efs.EfsSpecError, match="needs the principals"):
        efs.file_system_policy(FS_ARN, AP_ARN, [], require_tls=True, deny_anonymous=True)


def test_policies_compare_by_meaning_not_spelling():
    wanted = efs.file_system_policy(FS_ARN, AP_ARN, [ROLE], require_tls=True, deny_anonymous=True)
    stored = json.loads(json.dumps(wanted))
    stored["Statement"][0]["Principal"] = {"AWS": ROLE}  # AWS returns a one-item list as its item
    stored["Statement"][1]["Principal"] = "*"
    assert efs.policies_equal(json.dumps(stored), wanted)
    stored["Statement"][1]["Condition"]["Bool"]["aws:SecureTransport"] = "true"
    assert not efs.policies_equal(json.dumps(stored), wanted)
    assert not efs.policies_equal(None, wanted)
    assert not efs.policies_equal("not json", wanted)


# ------------------------------------------------------------------ the module against moto


@pytest.fixture
def account(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        clients = {name: log.attach(boto3.client(name, region_name=REGION)) for name in ("efs", "kms")}

        def make(self, service, retry_decorator=None, **kwargs):
            client = clients[service]
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
            for cidr, az in (("10.20.64.0/20", "eu-west-1a"), ("10.20.128.0/20", "eu-west-1b"))
        ]
        sg = ec2.create_security_group(GroupName="shop-efs", Description="efs", VpcId=vpc)["GroupId"]
        key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]
        boto3.client("kms", region_name=REGION).create_alias(AliasName="alias/shop-data", TargetKeyId=key["KeyId"])
        yield {"log": log, "subnets": subnets, "sg": sg, "key_arn": key["Arn"]}


def args(account, **overrides):
    values = {
        "name": "shop-rehearsal-designs",
        "kms_key_id": "alias/shop-data",
        "tags": {"gearlift:backup": "true"},
        "subnet_ids": account["subnets"],
        "security_groups": [account["sg"]],
        "access_point": {"name": "shop-rehearsal-designs-app", "uid": 990, "gid": 990, "path": "/designs"},
        "principals": [ROLE],
        "region": REGION,
    }
    values.update(overrides)
    return values


def test_module_creates_everything_then_changes_nothing(account):
    first = run_main(efs_share.main, args(account))
    assert not first.failed, first.data
    assert first["changed"] is True
    client = boto3.client("efs", region_name=REGION)
    [fs] = client.describe_file_systems(CreationToken="shop-rehearsal-designs")["FileSystems"]
    assert fs["Encrypted"] is True
    assert fs["KmsKeyId"] == account["key_arn"]
    assert fs["ThroughputMode"] == "elastic"
    assert first["file_system_id"] == fs["FileSystemId"]
    tags = {t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceId=fs["FileSystemId"])["Tags"]}
    assert tags == {"gearlift:backup": "true", "Name": "shop-rehearsal-designs"}
    assert sorted(mt["subnet_id"] for mt in first["mount_targets"]) == sorted(account["subnets"])
    assert all(mt["security_groups"] == [account["sg"]] and mt["ip_address"] for mt in first["mount_targets"])
    lifecycle = client.describe_lifecycle_configuration(FileSystemId=fs["FileSystemId"])["LifecyclePolicies"]
    assert efs.lifecycle_equal(lifecycle, efs.lifecycle_policies(30, True))
    [point] = client.describe_access_points(FileSystemId=fs["FileSystemId"])["AccessPoints"]
    assert point["AccessPointId"] == first["access_point_id"]
    assert point["PosixUser"] == {"Uid": 990, "Gid": 990}
    policy = client.describe_file_system_policy(FileSystemId=fs["FileSystemId"])["Policy"]
    assert efs.policy_requires_tls(policy)
    assert json.loads(policy)["Statement"][0]["Condition"]["StringEquals"] == {
        "elasticfilesystem:AccessPointArn": first["access_point_arn"]
    }

    account["log"].calls.clear()
    second = run_main(efs_share.main, args(account))
    assert not second.failed, second.data
    assert second["changed"] is False
    assert second["access_point_id"] == first["access_point_id"]
    writes = [n for n in account["log"].names if not n.startswith(("Describe", "List"))]
    assert writes == []


def test_check_mode_reads_only_and_reports_the_change(account):
    result = run_main(efs_share.main, args(account), check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["file_system_id"] == ""
    assert boto3.client("efs", region_name=REGION).describe_file_systems()["FileSystems"] == []
    assert all(n.startswith(("Describe", "List")) for n in account["log"].names)


def test_module_converges_drift_and_refuses_immutable_changes(account):
    assert not run_main(efs_share.main, args(account)).failed
    client = boto3.client("efs", region_name=REGION)
    [fs] = client.describe_file_systems()["FileSystems"]
    client.put_file_system_policy(FileSystemId=fs["FileSystemId"], Policy=json.dumps({"Statement": []}))
    client.put_lifecycle_configuration(FileSystemId=fs["FileSystemId"], LifecyclePolicies=[])
    fixed = run_main(efs_share.main, args(account))
    assert fixed["changed"] is True
    assert efs.policy_requires_tls(client.describe_file_system_policy(FileSystemId=fs["FileSystemId"])["Policy"])

    one_subnet = args(account, subnet_ids=account["subnets"][:1])
    shrunk = run_main(efs_share.main, one_subnet)
    assert shrunk["changed"] is True
    assert [mt["subnet_id"] for mt in shrunk["mount_targets"]] == [account["subnets"][0]]

    other_user = args(
        account, access_point={"name": "shop-rehearsal-designs-app", "uid": 1000, "gid": 990, "path": "/designs"}
    )
    refused = run_main(efs_share.main, other_user)
    assert refused.failed
    assert "uid/gid 990/990, wanted 1000/990" in refused["msg"]

    mode = run_main(efs_share.main, args(account, performance_mode="max_io", throughput_mode="bursting"))
    assert mode.failed
    assert "cannot change these after creation" in mode["msg"]


def test_bad_input_is_refused_before_any_call(account):
    result = run_main(efs_share.main, args(account, transition_to_ia_days=45))
    assert result.failed
    assert "45 is not one EFS offers" in result["msg"]
    no_role = run_main(efs_share.main, args(account, principals=[]))
    assert no_role.failed
    assert "deny_anonymous needs the principals" in no_role["msg"]
    twice = args(account, subnet_ids=account["subnets"] + account["subnets"][:1])
    assert "listed twice" in run_main(efs_share.main, twice)["msg"]
    assert account["log"].names == []


def test_the_storage_playbook_task_creates_the_share_it_promises(account):
    """playbooks/storage.yml's efs_share task, templated with the guards' defaults, against moto."""
    variables = {
        **role_defaults("guards"),
        "gearlift_project": "shop",
        "gearlift_environment": "rehearsal",
        "gearlift_name": "shop-rehearsal",
        "gearlift_region": REGION,
        "gearlift_tags": {"gearlift:project": "shop", "gearlift:environment": "rehearsal"},
        "gearlift_key_arns": {"data": account["key_arn"]},
        "storage_subnets": {"subnets": [{"subnet_id": s} for s in account["subnets"]]},
        "storage_efs_sg": {"group_id": account["sg"]},
        "storage_role": {"iam_roles": [{"arn": ROLE}]},
    }
    module, task = task_args(REPO / "playbooks" / "storage.yml", "PCI 3.5.1 | EFS file system", variables)
    assert module == "gearlift.platform.efs_share"
    task.pop("provisioned_throughput_mibps", None)  # omitted unless provisioned (templated as omit)
    result = run_main(efs_share.main, task)
    assert not result.failed, result.data
    client = boto3.client("efs", region_name=REGION)
    [fs] = client.describe_file_systems(CreationToken="shop-rehearsal-designs")["FileSystems"]
    assert fs["Encrypted"] and fs["KmsKeyId"] == account["key_arn"]
    tags = {t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceId=fs["FileSystemId"])["Tags"]}
    assert tags["gearlift:backup"] == "true"  # the AWS Backup plan's selection (playbooks/data.yml)
    [point] = client.describe_access_points(FileSystemId=fs["FileSystemId"])["AccessPoints"]
    assert point["PosixUser"] == {"Uid": 2750, "Gid": 2750}
    assert point["RootDirectory"]["Path"] == "/designs"
    policy = json.loads(client.describe_file_system_policy(FileSystemId=fs["FileSystemId"])["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": [ROLE]}
    assert efs.policy_requires_tls(policy)
    assert len(result["mount_targets"]) == len(account["subnets"])
