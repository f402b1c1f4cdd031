#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_fleet
short_description: Converge a hardened launch template and its Auto Scaling group, with a guarded instance refresh
version_added: 0.1.0
description:
  - Converges one EC2 launch template and one EC2 Auto Scaling group that uses it.
  - The launch template data is built from the options below. A few settings are always applied
    and cannot be turned off - IMDS tokens hop limit C(1) with the endpoint enabled, one network
    interface carrying the security groups and deleted on termination, and a root EBS volume
    deleted on termination.
  - Insecure settings (IMDSv1, public IPv4 address, unencrypted root volume, a single instance in
    production) are refused before any AWS call unless the matching C(allow_*) option is set.
  - A new launch template version is created only when the desired data differs from the current
    default version; the new version then becomes the default.
  - The Auto Scaling group always references the launch template by explicit version number,
    never C($Latest) or C($Default).
  - When the group already exists, has instances and the launch template version changes, an
    instance refresh (rolling, skip matching, auto rollback) is started towards the new version
    and the module waits for it. If it fails, is cancelled, is rolled back by AWS or times out
    (it is cancelled first), the module rolls back - the group keeps or gets back its previous
    launch template version, the launch template default version is reset and, when instances
    were already replaced, a refresh back to the previous version is started and awaited - and
    then fails with RV(rolled_back=true) in the result.
  - In check mode nothing is written; the result reports what would change, with a diff.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  name:
    description: Name of the Auto Scaling group.
    type: str
    required: true
  launch_template_name:
    description: Name of the launch template to converge.
    type: str
    required: true
  environment:
    description:
      - Environment the fleet belongs to. With V(production), O(min_size) below 2 is refused
        unless O(allow_single_instance=true).
    type: str
    choices: [production, staging, development, rehearsal, test]
    default: production
  image_id:
    description: AMI id for the instances.
    type: str
    required: true
  instance_type:
    description: EC2 instance type.
    type: str
    required: true
  iam_instance_profile:
    description: Instance profile, by name or by ARN (a value starting with C(arn:) is an ARN).
    type: str
  security_group_ids:
    description:
      - Security groups for the primary network interface. Must not be empty.
    type: list
    elements: str
    required: true
  user_data:
    description:
      - User data as plain text; the module base64-encodes it. At most 16384 bytes.
    type: str
  tags:
    description:
      - Tags for the Auto Scaling group (propagated to the instances at launch), for the launch
        template itself (when it is created) and for the root volumes (in the launch template data).
      - When omitted the group tags are left alone.
    type: dict
  purge_tags:
    description: Remove group tags that are not in O(tags). Ignored when O(tags) is omitted.
    type: bool
    default: true
  root_device_name:
    description: Device name of the root volume; it must match the AMI's root device.
    type: str
    default: /dev/xvda
  volume_size:
    description: Size of the root volume in GiB.
    type: int
    default: 20
  volume_type:
    description: EBS volume type of the root volume.
    type: str
    choices: [gp3, gp2, io1, io2]
    default: gp3
  volume_iops:
    description: Provisioned IOPS of the root volume (gp3, io1, io2). Required for io1 and io2.
    type: int
  volume_throughput:
    description: Throughput of a gp3 root volume in MiB/s.
    type: int
  volume_encrypted:
    description:
      - Encrypt the root volume. V(false) is refused unless O(allow_unencrypted_volumes=true).
    type: bool
    default: true
  kms_key_id:
    description: KMS key (id, ARN or alias ARN) for the root volume; the account default key when omitted.
    type: str
  http_tokens:
    description:
      - Instance metadata token mode. V(optional) allows IMDSv1 and is refused unless
        O(allow_imdsv1=true).
    type: str
    choices: [required, optional]
    default: required
  associate_public_ip_address:
    description:
      - Give instances a public IPv4 address. Refused unless O(allow_public_ip=true).
    type: bool
    default: false
  detailed_monitoring:
    description:
      - Detailed (1-minute) CloudWatch monitoring of the instances (launch template C(Monitoring)).
        A launch template version without it counts as a change.
    type: bool
    default: true
  allow_imdsv1:
    description: Override the guard against O(http_tokens=optional).
    type: bool
    default: false
  allow_public_ip:
    description: Override the guard against O(associate_public_ip_address=true).
    type: bool
    default: false
  allow_unencrypted_volumes:
    description: Override the guard against O(volume_encrypted=false).
    type: bool
    default: false
  allow_single_instance:
    description: Override the guard against O(min_size) below 2 in O(environment=production).
    type: bool
    default: false
  subnets:
    description: Subnet ids the group launches into (the group's C(VPCZoneIdentifier)). Must not be empty.
    type: list
    elements: str
    required: true
    aliases: [vpc_zone_identifier]
  min_size:
    description: Minimum size of the group.
    type: int
    required: true
  max_size:
    description: Maximum size of the group.
    type: int
    required: true
  desired_capacity:
    description:
      - Desired capacity. When the group exists and this is omitted, the current desired
        capacity is kept (scaling policies own it); a new group starts at O(min_size).
    type: int
  target_group_arns:
    description:
      - Target groups the group registers its instances with. Target groups not listed are
        detached. When omitted, attachments are left alone.
    type: list
    elements: str
  health_check_type:
    description: Health check type of the group.
    type: str
    choices: [ELB, EC2, VPC_LATTICE]
    default: ELB
  health_check_grace_period:
    description: Seconds before the first health check of a new instance.
    type: int
    default: 300
  default_instance_warmup:
    description: Default instance warmup of the group, in seconds. Left alone when omitted.
    type: int
  termination_policies:
    description: Termination policies, in order. Left alone when omitted (AWS default C(Default)).
    type: list
    elements: str
    choices:
      - Default
      - AllocationStrategy
      - OldestLaunchTemplate
      - OldestLaunchConfiguration
      - ClosestToNextInstanceHour
      - NewestInstance
      - OldestInstance
  capacity_rebalance:
    description: Enable capacity rebalancing. Left alone when omitted.
    type: bool
  metrics_collection:
    description:
      - V(true) enables group metrics collection (1 minute granularity), V(false) disables it.
        Left alone when omitted.
    type: bool
  metrics_list:
    description:
      - Group metrics to collect when O(metrics_collection=true); all metrics when omitted.
        Metrics not listed are disabled.
    type: list
    elements: str
  warm_pool:
    description:
      - A warm pool of pre-initialised instances the group draws from when it scales out - for an
        application that starts slowly (a JVM warming up), scale-out then takes seconds instead of minutes.
      - Omitted, the group's warm pool is left alone. With O(warm_pool.state=absent) it is deleted.
      - Written only when a field differs from C(DescribeWarmPool).
    type: dict
    suboptions:
      state:
        description: Whether the group has a warm pool.
        type: str
        choices: [present, absent]
        default: present
      min_size:
        description: Instances kept in the pool at all times.
        type: int
        default: 0
      max_group_prepared_capacity:
        description:
          - Upper bound of instances in the group plus the pool; omitted (or -1), the group's maximum size.
        type: int
      pool_state:
        description: State of the instances in the pool (stopped ones cost only their EBS volumes).
        type: str
        choices: [Stopped, Running, Hibernated]
        default: Stopped
      reuse_on_scale_in:
        description: Return instances to the pool on scale-in instead of terminating them.
        type: bool
        default: false
  refresh:
    description:
      - Start an instance refresh when the group exists, has instances and its launch template
        version changes. With V(false) the group is just pointed at the new version; running
        instances keep the old one.
    type: bool
    default: true
  wait:
    description:
      - Wait for the instance refresh to finish (and roll back if it does not succeed).
        With V(false) the module returns right after starting it.
    type: bool
    default: true
  auto_rollback:
    description:
      - Ask AWS to roll the refresh back by itself when it fails (C(AutoRollback)). Only sent when
        the API supports it and the group's previous launch template version is explicit.
    type: bool
    default: true
  min_healthy_percentage:
    description: Share of the group that must stay healthy during the refresh (0-100).
    type: int
    default: 90
  max_healthy_percentage:
    description:
      - Upper capacity bound during the refresh (100-200), at most 100 above
        O(min_healthy_percentage). Required above 100 when O(min_healthy_percentage=100).
    type: int
  instance_warmup:
    description:
      - Instance warmup for the refresh, in seconds. Defaults to O(default_instance_warmup),
        else O(health_check_grace_period).
    type: int
  refresh_timeout:
    description: Seconds to wait for an instance refresh (each one, including a refresh back) before giving up.
    type: float
    default: 3600
  poll_interval:
    description: Seconds between two C(DescribeInstanceRefreshes) calls while waiting.
    type: float
    default: 15
notes:
  - Tags are only written to the launch template resource when it is created; later tag changes
    reach the instances through the group tags and the volumes through a new launch template version.
  - Only one instance refresh can be active per group. If a refresh towards the same version is
    already running (for example started with O(wait=false)), the module follows it instead of
    starting another; a refresh towards anything else makes the module fail.
  - Check mode makes only C(Describe*) calls.
  - O(tags) are part of the launch template data (volume and instance tags), so changing them
    creates a new launch template version and, for a group with instances, an instance refresh.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Converge the storefront fleet (rolls instances on a new AMI)
  gearlift.platform.asg_fleet:
    name: shop-web
    launch_template_name: shop-web
    environment: production
    image_id: ami-0123456789abcdef0
    instance_type: m7g.large
    iam_instance_profile: shop-web
    security_group_ids: [sg-0aaa1111bbbb2222c]
    user_data: |
      #!/bin/bash
      systemctl enable --now shop
    subnets: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]
    min_size: 2
    max_size: 6
    target_group_arns:
      - arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/shop-web/0123456789abcdef
    default_instance_warmup: 120
    tags:
      app: shop
      tier: web
  register: fleet

- name: Show what a new AMI would change, without touching anything
  gearlift.platform.asg_fleet:
    name: shop-web
    launch_template_name: shop-web
    image_id: ami-0fedcba9876543210
    instance_type: m7g.large
    security_group_ids: [sg-0aaa1111bbbb2222c]
    subnets: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]
    min_size: 2
    max_size: 6
  check_mode: true
  diff: true

- name: A throw-away single-instance fleet outside production
  gearlift.platform.asg_fleet:
    name: shop-canary
    launch_template_name: shop-canary
    environment: staging
    image_id: ami-0fedcba9876543210
    instance_type: t4g.small
    security_group_ids: [sg-0aaa1111bbbb2222c]
    subnets: [subnet-0a1b2c3d4e5f60001]
    min_size: 1
    max_size: 1
    health_check_type: EC2
    wait: false
"""

RETURN = r"""
launch_template:
  description: The launch template after the run (in check mode, as it would be).
  returned: always
  type: dict
  contains:
    id:
      description: Launch template id (null in check mode when it would be created).
      type: str
      sample: lt-0123456789abcdef0
    name:
      description: Launch template name.
      type: str
      sample: shop-web
    default_version:
      description: Default version after the run; the group references this version.
      type: int
      sample: 4
    previous_version:
      description: Default version before the run (null when the template was created).
      type: int
      sample: 3
    version_created:
      description: Whether the run created (or would create) a new version.
      type: bool
      sample: true
auto_scaling_group:
  description: The Auto Scaling group after the run (in check mode, its current state).
  returned: always
  type: dict
  contains:
    name:
      description: Group name.
      type: str
      sample: shop-web
    arn:
      description: Group ARN.
      type: str
    min_size:
      description: Minimum size.
      type: int
      sample: 2
    max_size:
      description: Maximum size.
      type: int
      sample: 6
    desired_capacity:
      description: Desired capacity.
      type: int
      sample: 2
    launch_template:
      description: The launch template reference of the group (id, name, version).
      type: dict
    target_group_arns:
      description: Attached target groups.
      type: list
      elements: str
    instances:
      description: Instances of the group.
      type: list
      elements: dict
      sample:
        - instance_id: i-0123456789abcdef0
          availability_zone: eu-central-1a
          lifecycle_state: InService
          health_status: Healthy
          launch_template_version: "4"
warm_pool:
  description:
    - The warm pool after the run (as it would be, in check mode); null when the group has none or
      O(warm_pool) was omitted.
  returned: always
  type: dict
  sample:
    min_size: 1
    max_group_prepared_capacity: -1
    pool_state: Stopped
    reuse_on_scale_in: false
instance_refresh:
  description: The instance refresh this run started or followed; null when none was needed.
  returned: always
  type: dict
  contains:
    id:
      description: Instance refresh id (null in check mode).
      type: str
      sample: 08b91cf7-8fa6-48af-b6a6-d227f40f1b9b
    status:
      description: Last status seen (C(Successful), C(Failed), C(Cancelled), ...), C(Planned) in check mode.
      type: str
      sample: Successful
    status_reason:
      description: Status reason reported by AWS.
      type: str
    percentage:
      description: Last C(PercentageComplete) seen.
      type: int
      sample: 100
    percentage_history:
      description: C(PercentageComplete) of every poll.
      type: list
      elements: int
    timed_out:
      description: Whether O(refresh_timeout) ran out.
      type: bool
    rolled_back:
      description: Whether the module rolled back after the refresh did not succeed.
      type: bool
    rollback_actions:
      description: What the rollback did.
      type: list
      elements: str
    rollback_refresh:
      description: The refresh back to the previous version, when one was needed.
      type: dict
rolled_back:
  description: Whether the module rolled back (set on failures after a refresh).
  returned: when a refresh did not succeed
  type: bool
  sample: true
diff:
  description: Before/after of the launch template data and the group settings.
  returned: in check mode or diff mode
  type: dict
"""

import contextlib
import time
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.gearlift.platform.plugins.module_utils import fleet

VERSION_DESCRIPTION = "managed by gearlift.platform.asg_fleet"


def _clock() -> float:
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def argument_spec() -> dict[str, Any]:
    return dict(
        name=dict(type="str", required=True),
        launch_template_name=dict(type="str", required=True),
        environment=dict(
            type="str",
            default="production",
            choices=["production", "staging", "development", "rehearsal", "test"],
        ),
        image_id=dict(type="str", required=True),
        instance_type=dict(type="str", required=True),
        iam_instance_profile=dict(type="str"),
        security_group_ids=dict(type="list", elements="str", required=True),
        user_data=dict(type="str"),
        tags=dict(type="dict"),
        purge_tags=dict(type="bool", default=True),
        root_device_name=dict(type="str", default="/dev/xvda"),
        volume_size=dict(type="int", default=20),
        volume_type=dict(type="str", default="gp3", choices=["gp3", "gp2", "io1", "io2"]),
        volume_iops=dict(type="int"),
        volume_throughput=dict(type="int"),
        volume_encrypted=dict(type="bool", default=True),
        kms_key_id=dict(type="str"),
        http_tokens=dict(type="str", default="required", choices=["required", "optional"]),
        associate_public_ip_address=dict(type="bool", default=False),
        detailed_monitoring=dict(type="bool", default=True),
        allow_imdsv1=dict(type="bool", default=False),
        allow_public_ip=dict(type="bool", default=False),
        allow_unencrypted_volumes=dict(type="bool", default=False),
        allow_single_instance=dict(type="bool", default=False),
        subnets=dict(type="list", elements="str", required=True, aliases=["vpc_zone_identifier"]),
        min_size=dict(type="int", required=True),
        max_size=dict(type="int", required=True),
        desired_capacity=dict(type="int"),
        target_group_arns=dict(type="list", elements="str"),
        health_check_type=dict(type="str", default="ELB", choices=["ELB", "EC2", "VPC_LATTICE"]),
        health_check_grace_period=dict(type="int", default=300),
        default_instance_warmup=dict(type="int"),
        termination_policies=dict(
            type="list",
            elements="str",
            choices=[
                "Default",
                "AllocationStrategy",
                "OldestLaunchTemplate",
                "OldestLaunchConfiguration",
                "ClosestToNextInstanceHour",
                "NewestInstance",
                "OldestInstance",
            ],
        ),
        capacity_rebalance=dict(type="bool"),
        metrics_collection=dict(type="bool"),
        metrics_list=dict(type="list", elements="str"),
        warm_pool=dict(
            type="dict",
            options=dict(
                state=dict(type="str", choices=["present", "absent"], default="present"),
                min_size=dict(type="int", default=0),
                max_group_prepared_capacity=dict(type="int"),
                pool_state=dict(type="str", choices=["Stopped", "Running", "Hibernated"], default="Stopped"),
                reuse_on_scale_in=dict(type="bool", default=False),
            ),
        ),
        refresh=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        auto_rollback=dict(type="bool", default=True),
        min_healthy_percentage=dict(type="int", default=90),
        max_healthy_percentage=dict(type="int"),
        instance_warmup=dict(type="int"),
        refresh_timeout=dict(type="float", default=3600),
        poll_interval=dict(type="float", default=15),
    )


class RollbackFailure(Exception):
    """Raised inside the rollback to stop it; carries what was done so far."""


class FleetConverger:
    """Converges launch template, group and refresh for one module run."""

    def __init__(self, module: AnsibleAWSModule, ec2: Any, autoscaling: Any) -> None:
        self.module = module
        self.params = module.params
        self.ec2 = ec2
        self.asg = autoscaling
        self.check_mode = module.check_mode
        self.changed = False
        self.diff_before: dict[str, Any] = {}
        self.diff_after: dict[str, Any] = {}

    # ------------------------------------------------------------------ utils
    def fail_aws(self, exc: Exception, msg: str, **kwargs: Any) -> None:
        self.module.fail_json_aws(exc, msg=msg, **kwargs)

    # -------------------------------------------------------- launch template
    def describe_template(self) -> dict[str, Any] | None:
        name = self.params["launch_template_name"]
        try:
            found = self.ec2.describe_launch_templates(LaunchTemplateNames=[name], aws_retry=True)
        except is_boto3_error_code(["InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"]):
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self.fail_aws(e, f"Failed to describe launch template {name}")
        templates = found.get("LaunchTemplates") or []
        return templates[0] if templates else None

    def describe_template_version(self, template_id: str, version: int) -> dict[str, Any]:
        try:
            found = self.ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[str(version)], aws_retry=True
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to describe version {version} of launch template {template_id}")
        versions = found.get("LaunchTemplateVersions") or []
        return versions[0] if versions else {}

    def set_default_version(self, template_id: str, version: int) -> None:
        try:
            self.ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version), aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to set default version {version} of launch template {template_id}")

    def converge_template(self) -> dict[str, Any]:
        p = self.params
        name = p["launch_template_name"]
        desired = fleet.build_launch_template_data(p)
        template = self.describe_template()
        current_data = None
        if template is not None:
            previous = int(template["DefaultVersionNumber"])
            latest = int(template.get("LatestVersionNumber") or previous)
            current_data = self.describe_template_version(template["LaunchTemplateId"], previous).get(
                "LaunchTemplateData", {}
            )
        self.diff_before["launch_template"] = (
            None if current_data is None else fleet.summarize_launch_template_data(current_data)
        )
        self.diff_after["launch_template"] = fleet.summarize_launch_template_data(desired)

        differs = fleet.launch_template_differs(desired, current_data)
        result: dict[str, Any] = {
            "id": None if template is None else template["LaunchTemplateId"],
            "name": name,
            "previous_version": None if template is None else previous,
            "default_version": None if template is None else previous,
            "version_created": differs,
        }
        if not differs:
            return result
        self.changed = True
        if self.check_mode:
            result["default_version"] = 1 if template is None else latest + 1
            return result

        if template is None:
            kwargs: dict[str, Any] = dict(
                LaunchTemplateName=name,
                VersionDescription=VERSION_DESCRIPTION,
                LaunchTemplateData=desired,
            )
            if p.get("tags"):
                kwargs["TagSpecifications"] = [
                    {
                        "ResourceType": "launch-template",
                        "Tags": ansible_dict_to_boto3_tag_list(p["tags"]),
                    }
                ]
            try:
                created = self.ec2.create_launch_template(aws_retry=True, **kwargs)["LaunchTemplate"]
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.fail_aws(e, f"Failed to create launch template {name}")
            result["id"] = created["LaunchTemplateId"]
            result["default_version"] = int(created.get("DefaultVersionNumber") or 1)
            return result

        try:
            version = self.ec2.create_launch_template_version(
                LaunchTemplateId=template["LaunchTemplateId"],
                VersionDescription=VERSION_DESCRIPTION,
                LaunchTemplateData=desired,
                aws_retry=True,
            )["LaunchTemplateVersion"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to create a new version of launch template {name}")
        new_version = int(version["VersionNumber"])
        self.set_default_version(template["LaunchTemplateId"], new_version)
        result["default_version"] = new_version
        return result

    # ------------------------------------------------------------------ group
    def describe_group(self) -> dict[str, Any] | None:
        name = self.params["name"]
        try:
            groups = (
                self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name], aws_retry=True).get(
                    "AutoScalingGroups"
                )
                or []
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to describe Auto Scaling group {name}")
        return groups[0] if groups else None

    def create_group(self, template: dict[str, Any]) -> None:
        p = self.params
        kwargs: dict[str, Any] = dict(
            AutoScalingGroupName=p["name"],
            LaunchTemplate={
                "LaunchTemplateId": template["id"],
                "Version": str(template["default_version"]),
            },
            MinSize=p["min_size"],
            MaxSize=p["max_size"],
            DesiredCapacity=p["desired_capacity"] if p.get("desired_capacity") is not None else p["min_size"],
            VPCZoneIdentifier=",".join(p["subnets"]),
            HealthCheckType=p["health_check_type"],
            HealthCheckGracePeriod=p["health_check_grace_period"],
        )
        if p.get("target_group_arns"):
            kwargs["TargetGroupARNs"] = p["target_group_arns"]
        if p.get("default_instance_warmup") is not None:
            kwargs["DefaultInstanceWarmup"] = p["default_instance_warmup"]
        if p.get("termination_policies"):
            kwargs["TerminationPolicies"] = p["termination_policies"]
        if p.get("capacity_rebalance") is not None:
            kwargs["CapacityRebalance"] = p["capacity_rebalance"]
        if p.get("tags"):
            kwargs["Tags"] = fleet.tag_changes(p["name"], [], p["tags"], purge=False)[0]
        try:
            self.asg.create_auto_scaling_group(aws_retry=True, **kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to create Auto Scaling group {p['name']}")
        if p.get("metrics_collection"):
            self.apply_metrics([])

    def apply_metrics(self, enabled: list[str]) -> bool:
        p = self.params
        enable, disable = fleet.metrics_changes(enabled, p.get("metrics_collection"), p.get("metrics_list"))
        if enable is None and disable is None:
            return False
        if self.check_mode:
            return True
        try:
            if enable is not None:
                kwargs: dict[str, Any] = {"Granularity": "1Minute"}
                if enable:
                    kwargs["Metrics"] = enable
                self.asg.enable_metrics_collection(AutoScalingGroupName=p["name"], aws_retry=True, **kwargs)
            if disable is not None:
                self.asg.disable_metrics_collection(AutoScalingGroupName=p["name"], Metrics=disable, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to change metrics collection of {p['name']}")
        return True

    def update_group(self, group: dict[str, Any], template: dict[str, Any], include_template: bool) -> bool:
        """Converge everything but (optionally) the template reference; True if changed."""
        p = self.params
        current = fleet.summarize_group(group) or {}
        desired = fleet.desired_group_summary(p, current, self.template_ref(template))
        changed = False
        request = fleet.group_update_request(p, current, desired, include_template)
        if request:
            changed = True
            if not self.check_mode:
                try:
                    self.asg.update_auto_scaling_group(aws_retry=True, **request)
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    self.fail_aws(e, f"Failed to update Auto Scaling group {p['name']}")

        attach, detach = fleet.target_group_changes(group.get("TargetGroupARNs"), p.get("target_group_arns"))
        if attach or detach:
            changed = True
            if not self.check_mode:
                try:
                    if attach:
                        self.asg.attach_load_balancer_target_groups(
                            AutoScalingGroupName=p["name"], TargetGroupARNs=attach, aws_retry=True
                        )
                    if detach:
                        self.asg.detach_load_balancer_target_groups(
                            AutoScalingGroupName=p["name"], TargetGroupARNs=detach, aws_retry=True
                        )
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    self.fail_aws(e, f"Failed to converge target groups of {p['name']}")

        upsert, delete = fleet.tag_changes(p["name"], group.get("Tags"), p.get("tags"), p["purge_tags"])
        if upsert or delete:
            changed = True
            if not self.check_mode:
                try:
                    if delete:
                        self.asg.delete_tags(Tags=delete, aws_retry=True)
                    if upsert:
                        self.asg.create_or_update_tags(Tags=upsert, aws_retry=True)
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    self.fail_aws(e, f"Failed to converge tags of {p['name']}")

        if self.apply_metrics(current.get("enabled_metrics", [])):
            changed = True
        return changed

    @staticmethod
    def template_ref(template: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": template["id"],
            "name": template["name"],
            "version": None if template["default_version"] is None else str(template["default_version"]),
        }

    def point_group_at(self, spec: dict[str, Any]) -> None:
        kwargs = {"LaunchTemplateId": spec["LaunchTemplateId"], "Version": str(spec["Version"])}
        try:
            self.asg.update_auto_scaling_group(
                AutoScalingGroupName=self.params["name"], LaunchTemplate=kwargs, aws_retry=True
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise RollbackFailure(f"could not point the group at version {spec['Version']}: {e}") from e

    # ---------------------------------------------------------------- refresh
    def describe_refresh(self, refresh_id: str) -> dict[str, Any] | None:
        try:
            found = (
                self.asg.describe_instance_refreshes(
                    AutoScalingGroupName=self.params["name"],
                    InstanceRefreshIds=[refresh_id],
                    aws_retry=True,
                ).get("InstanceRefreshes")
                or []
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to describe instance refresh {refresh_id}")
        return found[0] if found else None

    def active_refresh(self) -> dict[str, Any] | None:
        try:
            found = (
                self.asg.describe_instance_refreshes(
                    AutoScalingGroupName=self.params["name"], MaxRecords=5, aws_retry=True
                ).get("InstanceRefreshes")
                or []
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to list instance refreshes of {self.params['name']}")
        return next((r for r in found if fleet.classify_refresh(r.get("Status")) == fleet.RUNNING), None)

    def supports_auto_rollback(self) -> bool:
        try:
            prefs = self.asg.meta.service_model.operation_model("StartInstanceRefresh").input_shape
            return "AutoRollback" in prefs.members["Preferences"].members
        except (AttributeError, KeyError):
            return False

    def start_refresh(self, request: dict[str, Any]) -> str:
        try:
            return self.asg.start_instance_refresh(aws_retry=True, **request)["InstanceRefreshId"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, f"Failed to start an instance refresh of {self.params['name']}")

    def wait(self, refresh_id: str) -> fleet.RefreshOutcome:
        p = self.params
        return fleet.wait_for_refresh(
            lambda: self.describe_refresh(refresh_id),
            refresh_id,
            timeout=p["refresh_timeout"],
            interval=p["poll_interval"],
            clock=_clock,
            sleep=_sleep,
            on_poll=lambda r: self.module.debug(
                f"instance refresh {refresh_id}: {r.get('Status')} {r.get('PercentageComplete')}%"
            ),
        )

    def warmup(self) -> int | None:
        p = self.params
        for key in ("instance_warmup", "default_instance_warmup", "health_check_grace_period"):
            if p.get(key) is not None:
                return p[key]
        return None

    # ---------------------------------------------------------------- rollback
    def cancel_and_settle(self, outcome: fleet.RefreshOutcome) -> fleet.RefreshOutcome:
        """Cancel a timed-out refresh and wait (bounded) until it stopped."""
        try:
            self.asg.cancel_instance_refresh(AutoScalingGroupName=self.params["name"], aws_retry=True)
        except is_boto3_error_code("ActiveInstanceRefreshNotFound"):
            pass  # it ended on its own in the meantime
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            raise RollbackFailure(f"could not cancel instance refresh {outcome.refresh_id}: {e}") from e
        return self.wait(outcome.refresh_id)

    def rollback(
        self,
        outcome: fleet.RefreshOutcome,
        template: dict[str, Any],
        group_template_before: dict[str, Any] | None,
    ) -> None:
        p = self.params
        actions: list[str] = []
        settled = outcome
        rollback_refresh: dict[str, Any] | None = None
        error = None
        try:
            if outcome.timed_out:
                settled = self.cancel_and_settle(outcome)
                actions.append(f"cancelled instance refresh {outcome.refresh_id} (now {settled.status})")
                if settled.timed_out:
                    raise RollbackFailure(
                        f"instance refresh {outcome.refresh_id} is still {settled.status} "
                        f"{p['refresh_timeout']:g}s after cancelling it"
                    )
            group = self.describe_group() or {}
            new_version = str(template["default_version"])
            instances_on_new = sum(
                1
                for i in group.get("Instances") or []
                if (i.get("LaunchTemplate") or {}).get("LaunchTemplateId") == template["id"]
                and str((i.get("LaunchTemplate") or {}).get("Version")) == new_version
            )
            plan = fleet.plan_rollback(
                status=settled.status,
                percentage=settled.percentage,
                instances_on_new=instances_on_new,
                group_template_now=fleet.group_template_spec(group),
                group_template_before=group_template_before,
                default_now=template["default_version"],
                default_before=template["previous_version"],
            )
            if plan.restore_group_template is not None:
                self.point_group_at(plan.restore_group_template)
                actions.append(
                    f"pointed the group back at launch template version {plan.restore_group_template['Version']}"
                )
            if plan.reset_default_version is not None:
                try:
                    self.ec2.modify_launch_template(
                        LaunchTemplateId=template["id"],
                        DefaultVersion=str(plan.reset_default_version),
                        aws_retry=True,
                    )
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    raise RollbackFailure(f"could not reset the default version: {e}") from e
                template["default_version"] = plan.reset_default_version
                actions.append(f"reset the launch template default version to {plan.reset_default_version}")
            if plan.refresh_back_to is not None:
                back = plan.refresh_back_to
                request = fleet.build_refresh_request(
                    p["name"],
                    back["LaunchTemplateId"],
                    back["Version"],
                    min_healthy_percentage=p["min_healthy_percentage"],
                    max_healthy_percentage=p.get("max_healthy_percentage"),
                    instance_warmup=self.warmup(),
                )
                try:
                    back_id = self.asg.start_instance_refresh(aws_retry=True, **request)["InstanceRefreshId"]
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    raise RollbackFailure(f"could not start a refresh back: {e}") from e
                back_outcome = self.wait(back_id)
                rollback_refresh = back_outcome.as_dict()
                actions.append(
                    f"refreshed instances back to version {back['Version']} "
                    f"(refresh {back_id}: {back_outcome.status}"
                    + (", timed out" if back_outcome.timed_out else "")
                    + ")"
                )
                if back_outcome.state != fleet.SUCCEEDED:
                    raise RollbackFailure(
                        f"the refresh back ({back_id}) ended {back_outcome.status}"
                        + (" after timing out" if back_outcome.timed_out else "")
                    )
            elif settled.status == "RollbackSuccessful":
                actions.append("AWS had already replaced the new instances (auto rollback)")
        except RollbackFailure as e:
            error = str(e)

        if outcome.timed_out:
            what = (
                f"did not finish within {p['refresh_timeout']:g}s "
                f"(last status {outcome.status}, {outcome.percentage or 0}% complete)"
            )
        else:
            reason = f": {settled.status_reason}" if settled.status_reason else ""
            what = f"ended with status {settled.status}{reason}"
        msg = f"Instance refresh {outcome.refresh_id} of Auto Scaling group {p['name']} {what}. "
        if error is None:
            msg += "Rolled back: " + ("; ".join(actions) or "nothing had changed yet") + "."
        else:
            msg += (
                "Rollback INCOMPLETE: "
                + error
                + (". Done before that: " + "; ".join(actions) if actions else "")
                + ". Check the group by hand."
            )
        refresh_info = settled.as_dict()
        refresh_info.update(
            id=outcome.refresh_id,
            timed_out=outcome.timed_out,
            rolled_back=error is None,
            rollback_actions=actions,
            rollback_refresh=rollback_refresh,
        )
        self.module.fail_json(
            msg=msg,
            changed=True,
            rolled_back=error is None,
            instance_refresh=refresh_info,
            launch_template=template,
            auto_scaling_group=self.group_result(self.describe_group()),
        )

    # ------------------------------------------------------------------- main
    @staticmethod
    def group_result(group: dict[str, Any] | None) -> dict[str, Any] | None:
        if not group:
            return None
        summary = fleet.summarize_group(group) or {}
        summary["arn"] = group.get("AutoScalingGroupARN")
        summary["instances"] = [
            {
                "instance_id": i.get("InstanceId"),
                "availability_zone": i.get("AvailabilityZone"),
                "lifecycle_state": i.get("LifecycleState"),
                "health_status": i.get("HealthStatus"),
                "launch_template_version": None
                if (i.get("LaunchTemplate") or {}).get("Version") is None
                else str(i["LaunchTemplate"]["Version"]),
            }
            for i in group.get("Instances") or []
        ]
        return summary

    def run(self) -> None:
        p = self.params
        template = self.converge_template()
        group = self.describe_group()
        current = fleet.summarize_group(group)
        self.diff_before["auto_scaling_group"] = current
        self.diff_after["auto_scaling_group"] = fleet.desired_group_summary(p, current, self.template_ref(template))
        refresh_result: dict[str, Any] | None = None

        if group is None:
            self.changed = True
            if not self.check_mode:
                self.create_group(template)
        else:
            before_spec = fleet.group_template_spec(group)
            version_moves = not fleet.same_template_ref(before_spec, template["id"], template["default_version"])
            do_refresh = version_moves and p["refresh"] and bool(group.get("Instances"))
            if self.update_group(group, template, include_template=version_moves and not do_refresh):
                self.changed = True
            if version_moves:
                self.changed = True
            if do_refresh:
                refresh_result = self.refresh(template, before_spec)
        warm_pool = self.converge_warm_pool(group is not None)

        final = self.describe_group() if not self.check_mode else group
        result: dict[str, Any] = dict(
            changed=self.changed,
            launch_template=template,
            auto_scaling_group=self.group_result(final),
            instance_refresh=refresh_result,
            warm_pool=warm_pool,
        )
        if self.module._diff or self.check_mode:
            result["diff"] = {"before": self.diff_before, "after": self.diff_after}
        self.module.exit_json(**result)

    def converge_warm_pool(self, group_exists: bool) -> dict[str, Any] | None:
        """Put, delete or leave the warm pool; returns it as it is (would be) after the run."""
        opts = self.params["warm_pool"]
        if opts is None:
            return None
        name = self.params["name"]
        current = None
        if group_exists:
            try:
                answer = self.asg.describe_warm_pool(aws_retry=True, AutoScalingGroupName=name)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.fail_aws(e, msg=f"Could not describe the warm pool of {name}", changed=self.changed)
            current = fleet.summarize_warm_pool(answer.get("WarmPoolConfiguration"))
        wanted = fleet.desired_warm_pool(opts)
        self.diff_before["warm_pool"] = current
        self.diff_after["warm_pool"] = wanted
        if current == wanted:
            return current
        self.changed = True
        if self.check_mode:
            return wanted
        try:
            if wanted is None:
                self.asg.delete_warm_pool(aws_retry=True, AutoScalingGroupName=name)
            else:
                self.asg.put_warm_pool(aws_retry=True, **fleet.warm_pool_request(name, wanted))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(e, msg=f"Could not write the warm pool of {name}", changed=self.changed)
        return wanted

    def refresh(self, template: dict[str, Any], before_spec: dict[str, Any] | None) -> dict[str, Any]:
        p = self.params
        if self.check_mode:
            return {"id": None, "status": "Planned", "percentage": None, "rolled_back": False}
        running = self.active_refresh()
        if running is not None:
            if not fleet.refresh_targets(running, template["id"], template["default_version"]):
                self.module.fail_json(
                    msg=(
                        f"Instance refresh {running.get('InstanceRefreshId')} of {p['name']} is "
                        f"{running.get('Status')} towards another configuration; wait for it to "
                        "end or cancel it, then run again. The group was left on launch template "
                        f"version {(before_spec or {}).get('Version')}; the template default is now "
                        f"version {template['default_version']}"
                    ),
                    changed=self.changed,
                    launch_template=template,
                )
            refresh_id = running["InstanceRefreshId"]
            status = running.get("Status")
        else:
            auto_rollback = (
                p["auto_rollback"]
                and self.supports_auto_rollback()
                and before_spec is not None
                and fleet.is_explicit_version(before_spec.get("Version"))
            )
            request = fleet.build_refresh_request(
                p["name"],
                template["id"],
                template["default_version"],
                min_healthy_percentage=p["min_healthy_percentage"],
                max_healthy_percentage=p.get("max_healthy_percentage"),
                instance_warmup=self.warmup(),
                auto_rollback=auto_rollback,
            )
            refresh_id = self.start_refresh(request)
            status = "Pending"
        if not p["wait"]:
            return {"id": refresh_id, "status": status, "percentage": None, "rolled_back": False}

        outcome = self.wait(refresh_id)
        if outcome.state == fleet.SUCCEEDED:
            # AWS applies the desired configuration to the group on success;
            # make sure it did (and repair it if something raced us).
            group = self.describe_group() or {}
            if not fleet.same_template_ref(
                fleet.group_template_spec(group), template["id"], template["default_version"]
            ):
                self.point_group_at_or_fail(template)
            info = outcome.as_dict()
            info["rolled_back"] = False
            return info
        self.rollback(outcome, template, before_spec)
        raise AssertionError("unreachable")  # rollback() always fails the module

    def point_group_at_or_fail(self, template: dict[str, Any]) -> None:
        try:
            self.point_group_at({"LaunchTemplateId": template["id"], "Version": str(template["default_version"])})
        except RollbackFailure as e:
            self.module.fail_json(msg=str(e), changed=True, launch_template=template)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[
            ("volume_type", "io1", ("volume_iops",)),
            ("volume_type", "io2", ("volume_iops",)),
        ],
        required_by={"metrics_list": ("metrics_collection",)},
    )
    errors = fleet.check_guards(module.params)
    if errors:
        module.fail_json(
            msg="asg_fleet refused the requested settings: " + "; ".join(errors),
            guard_errors=errors,
        )
    retry = AWSRetry.jittered_backoff(retries=10)
    ec2 = module.client("ec2", retry_decorator=retry)
    autoscaling = module.client("autoscaling", retry_decorator=retry)
    FleetConverger(module, ec2, autoscaling).run()


if __name__ == "__main__":
    main()
