#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: efs_share
short_description: An EFS file system shared by the fleet - KMS, mount targets, access point, TLS-only policy
version_added: 0.1.0
description:
  - Creates or converges one Amazon EFS file system, found by its creation token C(name) - encrypted with a
    KMS key, its performance and throughput modes, a lifecycle to Infrequent Access, tags (the AWS Backup
    selection tag among them), one mount target per given subnet with the given security groups, one access
    point that makes every client the app's uid/gid under its own root directory, and a file system policy
    that admits the app's principals only through a mount target and that access point and denies every
    request without TLS.
  - Settings EFS cannot change in place (encryption, KMS key, performance mode; an access point's user and
    root directory) are reported as an error naming the difference, before any write.
  - Idempotent; check mode makes read calls only. C(community.aws.efs) covers neither access points nor file
    system policies, has no check mode and waits without a bound.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  name:
    description: Creation token of the file system, also its C(Name) tag (for example C(shop-production-designs)).
    type: str
    required: true
  encrypted:
    description: Encrypt the file system at rest. Cannot change after creation.
    type: bool
    default: true
  kms_key_id:
    description:
      - The KMS key (key id, key ARN, alias name or alias ARN); resolved to its key ARN before use.
        Required when I(encrypted=true).
    type: str
  performance_mode:
    description: Cannot change after creation.
    type: str
    choices: [general_purpose, max_io]
    default: general_purpose
  throughput_mode:
    description: The file system's throughput mode (C(elastic) scales with the load, billed per use).
    type: str
    choices: [bursting, elastic, provisioned]
    default: elastic
  provisioned_throughput_mibps:
    description: With I(throughput_mode=provisioned) only.
    type: float
  transition_to_ia_days:
    description: Days without access before a file moves to Infrequent Access; C(0) for none.
    type: int
    default: 30
  transition_to_primary_on_access:
    description: Move a file back to Standard on its first access.
    type: bool
    default: true
  tags:
    description: Tags of the file system and of its access point (purged to these plus C(Name)).
    type: dict
    default: {}
  subnet_ids:
    description: One mount target in each of these subnets (one per AZ); mount targets in other subnets are deleted.
    type: list
    elements: str
    required: true
  security_groups:
    description: The security groups of every mount target (its own EFS group), at most 5.
    type: list
    elements: str
    required: true
  access_point:
    description: The app's access point (immutable - a different one is reported, not replaced).
    type: dict
    required: true
    suboptions:
      name:
        description: The access point's C(Name) tag (how it is found again).
        type: str
        required: true
      uid:
        description: The POSIX user id every request through the access point runs as (the app's user).
        type: int
        required: true
      gid:
        description: The POSIX group id every request through the access point runs as (the app's group).
        type: int
        required: true
      path:
        description: The directory the access point exposes as the root, created on first use.
        type: str
        required: true
      permissions:
        description: Octal mode of that directory when EFS creates it.
        type: str
        default: "0750"
  require_tls:
    description: Deny every request without TLS (a Deny on C(aws:SecureTransport=false)).
    type: bool
    default: true
  deny_anonymous:
    description: Allow only I(principals) to mount (through a mount target and the access point).
    type: bool
    default: true
  principals:
    description: IAM principal ARNs allowed to mount and write (the instance role).
    type: list
    elements: str
    default: []
  wait_timeout:
    description: Seconds to wait for the file system and its mount targets to become available.
    type: int
    default: 600
notes:
  - IAM permissions - C(elasticfilesystem:Describe*), C(CreateFileSystem), C(UpdateFileSystem),
    C(CreateMountTarget), C(DeleteMountTarget), C(ModifyMountTargetSecurityGroups), C(CreateAccessPoint),
    C(PutLifecycleConfiguration), C(PutFileSystemPolicy), C(TagResource), C(UntagResource),
    C(ListTagsForResource), C(kms:DescribeKey) and the EC2 network interface calls a mount target needs.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The shop's shared uploads
  gearlift.platform.efs_share:
    name: shop-production-designs
    kms_key_id: alias/shop-production-data
    tags: {"gearlift:backup": "true"}
    subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]
    security_groups: [sg-0123456789abcdef0]
    access_point: {name: shop-production-designs-app, uid: 990, gid: 990, path: /designs}
    principals: [arn:aws:iam::123456789012:role/shop-production-app]
"""

RETURN = r"""
file_system_id:
  description: The file system's id (empty in check mode before it exists).
  returned: always
  type: str
  sample: fs-0123456789abcdef0
file_system_arn:
  description: The file system's ARN (empty in check mode before it exists).
  returned: always
  type: str
access_point_id:
  description: The access point's id (empty in check mode before it exists).
  returned: always
  type: str
  sample: fsap-0123456789abcdef0
access_point_arn:
  description: The access point's ARN.
  returned: always
  type: str
mount_targets:
  description: The mount targets after the run.
  returned: always
  type: list
  elements: dict
  sample: [{"mount_target_id": "fsmt-0123", "subnet_id": "subnet-0123", "ip_address": "10.20.64.10",
            "availability_zone_name": "eu-west-1a", "security_groups": ["sg-0123"]}]
"""

import json
import time
from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils import efs

_POLL_SECONDS = 5


def _aws_errors() -> tuple[type[Exception], ...]:
    return (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


class Share:
    def __init__(self, module: AnsibleAWSModule) -> None:
        self.module = module
        self.efs = module.client("efs", retry_decorator=AWSRetry.jittered_backoff())
        self.check = module.check_mode
        self.changed = False
        self.deadline = time.monotonic() + max(0, module.params["wait_timeout"])

    def fail(self, error: Exception, msg: str) -> None:
        self.module.fail_json_aws(error, msg=msg)

    # --- reads ----------------------------------------------------------------

    def key_arn(self, key: str) -> str:
        kms = self.module.client("kms", retry_decorator=AWSRetry.jittered_backoff())
        try:
            return str(kms.describe_key(aws_retry=True, KeyId=key)["KeyMetadata"]["Arn"])
        except _aws_errors() as e:
            self.fail(e, f"Could not find the KMS key {key}")
        raise AssertionError  # fail_json_aws does not return

    def file_system(self, token: str) -> dict[str, Any] | None:
        try:
            found = self.efs.describe_file_systems(aws_retry=True, CreationToken=token)["FileSystems"]
        except _aws_errors() as e:
            self.fail(e, f"Could not read the file system {token}")
        live = [fs for fs in found if fs.get("LifeCycleState") not in ("deleting", "deleted")]
        return live[0] if live else None

    def mount_targets(self, fs_id: str) -> list[dict[str, Any]]:
        try:
            targets = self.efs.describe_mount_targets(aws_retry=True, FileSystemId=fs_id)["MountTargets"]
        except _aws_errors() as e:
            self.fail(e, f"Could not read the mount targets of {fs_id}")
        return list(targets)

    def groups_of(self, mount_target_id: str) -> list[str]:
        try:
            return list(
                self.efs.describe_mount_target_security_groups(aws_retry=True, MountTargetId=mount_target_id)[
                    "SecurityGroups"
                ]
            )
        except _aws_errors() as e:
            self.fail(e, f"Could not read the security groups of {mount_target_id}")
        raise AssertionError

    def wait(self, what: str, ready: Any) -> None:
        """Poll ``ready()`` until true, bounded by wait_timeout."""
        while not ready():
            if time.monotonic() >= self.deadline:
                self.module.fail_json(
                    msg=f"efs_share: {what} not ready after {self.module.params['wait_timeout']} s (wait_timeout)"
                )
            time.sleep(_POLL_SECONDS)

    # --- converge ---------------------------------------------------------------

    def converge_file_system(self, token: str, spec: efs.FileSystemSpec) -> dict[str, Any] | None:
        current = self.file_system(token)
        if current is None:
            self.changed = True
            if self.check:
                return None
            try:
                current = self.efs.create_file_system(aws_retry=True, **spec.create_params(token))
            except _aws_errors() as e:
                self.fail(e, f"Could not create the file system {token}")
            self.wait(
                f"file system {token}", lambda: (self.file_system(token) or {}).get("LifeCycleState") == "available"
            )
            return self.file_system(token)
        try:
            update = spec.drift(current)
        except efs.EfsSpecError as e:
            self.module.fail_json(msg=f"efs_share: {e}")
        if update:
            self.changed = True
            if not self.check:
                try:
                    self.efs.update_file_system(aws_retry=True, FileSystemId=current["FileSystemId"], **update)
                except _aws_errors() as e:
                    self.fail(e, f"Could not update the throughput of {current['FileSystemId']}")
        return current

    def converge_tags(self, resource_id: str, wanted: dict[str, str]) -> None:
        try:
            tags = self.efs.list_tags_for_resource(aws_retry=True, ResourceId=resource_id)["Tags"]
        except _aws_errors() as e:
            self.fail(e, f"Could not read the tags of {resource_id}")
        current = {t["Key"]: t["Value"] for t in tags}
        if current == wanted:
            return
        self.changed = True
        if self.check:
            return
        stale = sorted(set(current) - set(wanted))
        try:
            if stale:
                self.efs.untag_resource(aws_retry=True, ResourceId=resource_id, TagKeys=stale)
            missing = {k: v for k, v in wanted.items() if current.get(k) != v}
            if missing:
                self.efs.tag_resource(
                    aws_retry=True, ResourceId=resource_id, Tags=[{"Key": k, "Value": v} for k, v in missing.items()]
                )
        except _aws_errors() as e:
            self.fail(e, f"Could not tag {resource_id}")

    def converge_lifecycle(self, fs_id: str, wanted: list[dict[str, str]]) -> None:
        try:
            current = self.efs.describe_lifecycle_configuration(aws_retry=True, FileSystemId=fs_id)["LifecyclePolicies"]
        except _aws_errors() as e:
            self.fail(e, f"Could not read the lifecycle of {fs_id}")
        if efs.lifecycle_equal(current, wanted):
            return
        self.changed = True
        if not self.check:
            try:
                self.efs.put_lifecycle_configuration(aws_retry=True, FileSystemId=fs_id, LifecyclePolicies=wanted)
            except _aws_errors() as e:
                self.fail(e, f"Could not set the lifecycle of {fs_id}")

    def converge_mount_targets(self, fs_id: str, wanted: dict[str, list[str]]) -> list[dict[str, Any]]:
        current = self.mount_targets(fs_id)
        groups = {str(mt["MountTargetId"]): self.groups_of(str(mt["MountTargetId"])) for mt in current}
        try:
            plan = efs.mount_target_plan(current, groups, wanted)
        except efs.EfsSpecError as e:
            self.module.fail_json(msg=f"efs_share: {e}")
        if plan.empty:
            return [dict(mt, SecurityGroups=groups[str(mt["MountTargetId"])]) for mt in current]
        self.changed = True
        if self.check:
            return [dict(mt, SecurityGroups=groups[str(mt["MountTargetId"])]) for mt in current]
        try:
            for mount_target_id in plan.delete:
                self.efs.delete_mount_target(aws_retry=True, MountTargetId=mount_target_id)
            for mount_target_id, new_groups in plan.regroup.items():
                self.efs.modify_mount_target_security_groups(
                    aws_retry=True, MountTargetId=mount_target_id, SecurityGroups=new_groups
                )
            for subnet_id, new_groups in plan.create.items():
                self.efs.create_mount_target(
                    aws_retry=True, FileSystemId=fs_id, SubnetId=subnet_id, SecurityGroups=new_groups
                )
        except _aws_errors() as e:
            self.fail(e, f"Could not converge the mount targets of {fs_id}")
        self.wait(
            f"mount targets of {fs_id}",
            lambda: all(mt.get("LifeCycleState") == "available" for mt in self.mount_targets(fs_id)),
        )
        final = self.mount_targets(fs_id)
        return [dict(mt, SecurityGroups=self.groups_of(str(mt["MountTargetId"]))) for mt in final]

    def converge_access_point(self, fs_id: str, spec: efs.AccessPointSpec, tags: dict[str, str]) -> dict[str, Any]:
        try:
            points = self.efs.describe_access_points(aws_retry=True, FileSystemId=fs_id)["AccessPoints"]
        except _aws_errors() as e:
            self.fail(e, f"Could not read the access points of {fs_id}")
        mine = [p for p in points if p.get("Name") == spec.name or p.get("ClientToken") == spec.name]
        if len(mine) > 1:
            self.module.fail_json(msg=f"efs_share: {len(mine)} access points named {spec.name} on {fs_id}; keep one")
        if mine:
            differences = spec.differences(mine[0])
            if differences:
                self.module.fail_json(
                    msg=f"efs_share: access point {mine[0]['AccessPointId']} ({spec.name}) has "
                    + "; ".join(differences)
                    + ". Access points cannot change: delete it (hosts mount it by id) and run again."
                )
            self.converge_tags(str(mine[0]["AccessPointId"]), {**tags, "Name": spec.name})
            return dict(mine[0])
        self.changed = True
        if self.check:
            return {}
        try:
            created = self.efs.create_access_point(aws_retry=True, **spec.create_params(fs_id, tags))
        except _aws_errors() as e:
            self.fail(e, f"Could not create the access point {spec.name}")
        self.wait(
            f"access point {spec.name}",
            lambda: (
                self.efs.describe_access_points(aws_retry=True, AccessPointId=created["AccessPointId"])["AccessPoints"][
                    0
                ].get("LifeCycleState", "available")
                == "available"
            ),
        )
        return dict(created)

    def converge_policy(self, fs_id: str, wanted: dict[str, Any]) -> None:
        try:
            current: str | None = self.efs.describe_file_system_policy(aws_retry=True, FileSystemId=fs_id)["Policy"]
        except self.efs.exceptions.PolicyNotFound:
            current = None
        except _aws_errors() as e:
            self.fail(e, f"Could not read the file system policy of {fs_id}")
        if efs.policies_equal(current, wanted):
            return
        self.changed = True
        if not self.check:
            try:
                self.efs.put_file_system_policy(aws_retry=True, FileSystemId=fs_id, Policy=json.dumps(wanted))
            except _aws_errors() as e:
                self.fail(e, f"Could not set the file system policy of {fs_id}")


def _mount_target_result(mt: dict[str, Any]) -> dict[str, Any]:
    return {
        "mount_target_id": mt.get("MountTargetId", ""),
        "subnet_id": mt.get("SubnetId", ""),
        "ip_address": mt.get("IpAddress", ""),
        "availability_zone_name": mt.get("AvailabilityZoneName", ""),
        "security_groups": sorted(mt.get("SecurityGroups", [])),
    }


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            encrypted=dict(type="bool", default=True),
            kms_key_id=dict(type="str", no_log=False),
            performance_mode=dict(type="str", choices=sorted(efs.PERFORMANCE_MODES), default="general_purpose"),
            throughput_mode=dict(type="str", choices=list(efs.THROUGHPUT_MODES), default="elastic"),
            provisioned_throughput_mibps=dict(type="float"),
            transition_to_ia_days=dict(type="int", default=30),
            transition_to_primary_on_access=dict(type="bool", default=True),
            tags=dict(type="dict", default={}),
            subnet_ids=dict(type="list", elements="str", required=True),
            security_groups=dict(type="list", elements="str", required=True),
            access_point=dict(
                type="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    uid=dict(type="int", required=True),
                    gid=dict(type="int", required=True),
                    path=dict(type="str", required=True),
                    permissions=dict(type="str", default="0750"),
                ),
            ),
            require_tls=dict(type="bool", default=True),
            deny_anonymous=dict(type="bool", default=True),
            principals=dict(type="list", elements="str", default=[]),
            wait_timeout=dict(type="int", default=600),
        ),
        required_if=[("encrypted", True, ("kms_key_id",))],
        supports_check_mode=True,
    )
    p = module.params
    name: str = p["name"]
    tags = {str(k): str(v) for k, v in p["tags"].items()}
    wanted_targets: dict[str, list[str]] = {}
    for subnet_id in p["subnet_ids"]:
        if subnet_id in wanted_targets:
            module.fail_json(msg=f"efs_share: subnet {subnet_id} is listed twice in subnet_ids")
        wanted_targets[subnet_id] = list(p["security_groups"])
    try:
        lifecycle = efs.lifecycle_policies(p["transition_to_ia_days"], p["transition_to_primary_on_access"])
        point = efs.AccessPointSpec(
            name=p["access_point"]["name"],
            uid=p["access_point"]["uid"],
            gid=p["access_point"]["gid"],
            path=p["access_point"]["path"],
            permissions=p["access_point"]["permissions"],
        )
        if p["deny_anonymous"] and not p["principals"]:
            raise efs.EfsSpecError("deny_anonymous needs the principals (the instance role ARN) that may mount.")
        share = Share(module)
        spec = efs.FileSystemSpec(
            encrypted=p["encrypted"],
            kms_key_arn=share.key_arn(p["kms_key_id"]) if p["encrypted"] and p["kms_key_id"] else None,
            performance_mode=efs.PERFORMANCE_MODES[p["performance_mode"]],
            throughput_mode=p["throughput_mode"],
            provisioned_mibps=p["provisioned_throughput_mibps"],
        )
    except efs.EfsSpecError as e:
        module.fail_json(msg=f"efs_share: {e}")

    current = share.converge_file_system(name, spec)
    if current is None:  # check mode, nothing exists yet
        module.exit_json(
            changed=True,
            file_system_id="",
            file_system_arn="",
            access_point_id="",
            access_point_arn="",
            mount_targets=[{"subnet_id": s, "security_groups": sorted(g)} for s, g in wanted_targets.items()],
        )
    fs_id = str(current["FileSystemId"])
    fs_arn = str(current.get("FileSystemArn", ""))
    share.converge_tags(fs_id, {**tags, "Name": name})
    share.converge_lifecycle(fs_id, lifecycle)
    targets = share.converge_mount_targets(fs_id, wanted_targets)
    access_point = share.converge_access_point(fs_id, point, tags)
    ap_arn = str(access_point.get("AccessPointArn", ""))
    if ap_arn or not module.check_mode:
        try:
            policy = efs.file_system_policy(fs_arn, ap_arn, p["principals"], p["require_tls"], p["deny_anonymous"])
        except efs.EfsSpecError as e:
            module.fail_json(msg=f"efs_share: {e}")
        share.converge_policy(fs_id, policy)
    elif module.check_mode:
        share.changed = True
    module.exit_json(
        changed=share.changed,
        file_system_id=fs_id,
        file_system_arn=fs_arn,
        access_point_id=str(access_point.get("AccessPointId", "")),
        access_point_arn=ap_arn,
        mount_targets=[_mount_target_result(mt) for mt in targets],
    )


if __name__ == "__main__":
    main()
