"""The twin serves EFS to its hosts: a shared file system, behind security groups, as AWS does.

One VPC with two app subnets in two AZs; a file system with a mount target in each (its own
security group, NFS 2049 from the app group only), an access point (uid/gid 2750, /designs) and
the TLS-only policy playbooks/storage.yml writes; three hosts from the twin's seeded image. The
hosts mount with the same command the golden image's gearlift-efs-mount runs (mount -t efs, the
twin's stand-in helper). A file written on one host is read byte-identical on the other; a host
whose group has no egress, a file system whose group admits nobody, and a mount without TLS
are refused.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from gearlift.twin import images, podman
from gearlift.twin.twin import Twin

pytestmark = pytest.mark.slow

MOUNT = "/var/lib/shop/designs"
UID = 2750


def _exec_reconciled(twin: Twin, host: str, *cmd: str) -> Any:
    """Run ``cmd`` in ``host`` while the twin reconciles (the tests run no reconcile loop; a mount
    waits for the twin to answer its request)."""
    result: list[Any] = []
    worker = threading.Thread(
        target=lambda: result.append(podman.exec_(host, *cmd, check=False, timeout=150)), daemon=True
    )
    worker.start()
    twin.wait_for(lambda: not worker.is_alive(), 160, f"{' '.join(cmd[:3])} in {host}")
    return result[0]


def _mount(twin: Twin, host: str, fs: str, ap: str, options: str = "tls,iam", target: str = MOUNT) -> Any:
    podman.exec_(host, "mkdir", "-p", target)
    return _exec_reconciled(twin, host, "mount", "-t", "efs", "-o", f"{options},accesspoint={ap}", f"{fs}:/", target)


def _policy(fs_arn: str, ap_arn: str, role_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [role_arn]},
                    "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                    "Resource": fs_arn,
                    "Condition": {
                        "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
                        "StringEquals": {"elasticfilesystem:AccessPointArn": ap_arn},
                    },
                },
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "*",
                    "Resource": fs_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


@pytest.fixture(scope="module")
def estate(twin: Twin) -> dict[str, Any]:
    images.ensure_apphost_image()
    ec2, efs, iam = twin.clients("ec2"), twin.clients("efs"), twin.clients("iam")
    vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    app = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.41.{10 + i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]

    def group(name: str) -> str:
        gid: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        return gid

    app_sg, closed_sg, efs_sg, shut_sg = group("efs-app"), group("efs-closed"), group("efs-efs"), group("efs-shut")
    ec2.authorize_security_group_ingress(
        GroupId=efs_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": app_sg}]}
        ],
    )
    # A host of this group has no egress at all (its 2049 to the mount targets is missing).
    ec2.revoke_security_group_egress(
        GroupId=closed_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    role = iam.create_role(RoleName="efs-app", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iam.create_instance_profile(InstanceProfileName="efs-app")
    iam.add_role_to_instance_profile(InstanceProfileName="efs-app", RoleName="efs-app")

    def file_system(token: str, sg: str) -> dict[str, str]:
        fs = efs.create_file_system(CreationToken=token, Encrypted=True, ThroughputMode="elastic")
        owner = {"OwnerUid": UID, "OwnerGid": UID, "Permissions": "750"}
        for sid in app:
            efs.create_mount_target(FileSystemId=fs["FileSystemId"], SubnetId=sid, SecurityGroups=[sg])
        ap = efs.create_access_point(
            ClientToken=f"{token}-app",
            FileSystemId=fs["FileSystemId"],
            PosixUser={"Uid": UID, "Gid": UID},
            RootDirectory={"Path": "/designs", "CreationInfo": owner},
        )
        efs.put_file_system_policy(
            FileSystemId=fs["FileSystemId"], Policy=_policy(fs["FileSystemArn"], ap["AccessPointArn"], role)
        )
        return {"id": fs["FileSystemId"], "ap": ap["AccessPointId"]}

    shared, shut = file_system("efs-shared", efs_sg), file_system("efs-shut", shut_sg)
    ami = twin.seeded["GEARLIFT_AMI_ID"]

    def host(subnet: str, sg: str) -> str:
        iid: str = ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=subnet,
            SecurityGroupIds=[sg],
            IamInstanceProfile={"Name": "efs-app"},
        )["Instances"][0]["InstanceId"]
        return iid

    hosts = [host(app[0], app_sg), host(app[1], app_sg)]
    closed = host(app[0], closed_sg)
    twin.wait_for(lambda: {*hosts, closed} <= set(twin.addresses()), 180, "the hosts")
    twin.wait_for(lambda: len(twin.efs.targets if twin.efs else {}) == 4, 60, "the mount targets")
    time.sleep(3)  # a reconcile round gives the new mount target servers their full rules
    return {"hosts": hosts, "closed": closed, "shared": shared, "shut": shut}


def test_two_hosts_share_one_file_system_byte_for_byte(twin: Twin, estate: dict[str, Any]) -> None:
    first, second = estate["hosts"]
    fs, ap = estate["shared"]["id"], estate["shared"]["ap"]
    for host in (first, second):
        result = _mount(twin, host, fs, ap)
        assert result.returncode == 0, (host, result.stdout, result.stderr)
        assert podman.exec_(host, "mountpoint", "-q", MOUNT, check=False).returncode == 0
    write = podman.exec_(
        first,
        "setpriv",
        f"--reuid={UID}",
        f"--regid={UID}",
        "--clear-groups",
        "sh",
        "-c",
        f"head -c 300000 /dev/urandom > {MOUNT}/design-1.png && sha256sum {MOUNT}/design-1.png",
    )
    read = podman.exec_(second, "sha256sum", f"{MOUNT}/design-1.png")
    assert write.stdout.split()[0] == read.stdout.split()[0]
    owner = podman.exec_(second, "stat", "-c", "%u:%g %a", MOUNT).stdout.split()
    assert owner == [f"{UID}:{UID}", "750"]
    # Idempotent: a second mount of a mounted directory is not stacked (the boot script checks first).
    assert podman.exec_(first, "sh", "-c", f"grep -c ' {MOUNT} ' /proc/self/mountinfo").stdout.strip() == "1"


def test_a_host_without_nfs_egress_cannot_mount(twin: Twin, estate: dict[str, Any]) -> None:
    result = _mount(twin, estate["closed"], estate["shared"]["id"], estate["shared"]["ap"])
    assert result.returncode == 32
    assert "Connection to the mount target failed" in result.stderr
    assert podman.exec_(estate["closed"], "mountpoint", "-q", MOUNT, check=False).returncode != 0


def test_a_file_system_whose_group_admits_no_app_host_cannot_be_mounted(twin: Twin, estate: dict[str, Any]) -> None:
    result = _mount(twin, estate["hosts"][0], estate["shut"]["id"], estate["shut"]["ap"], options="tls,iam,ro")
    assert result.returncode == 32
    assert "Connection to the mount target failed" in result.stderr


def test_the_policy_refuses_a_mount_without_tls(twin: Twin, estate: dict[str, Any]) -> None:
    shared = estate["shared"]
    result = _mount(twin, estate["hosts"][1], shared["id"], shared["ap"], options="iam", target="/mnt/plain")
    assert result.returncode == 32
    assert "denies mounts without TLS" in result.stderr
