"""Emulator fidelity for the image lifecycle: images, Auto Scaling launches, target health.

Like gearlift.twin.emulator.fidelity, each patch names the AWS behaviour it
restores, and only the emulator process (gearlift.twin.emulator.server) is changed.
The twin's data plane (gearlift.twin.dataplane) tells the emulator what only
it can know, through the functions at the end of this module (served on the
emulator's private ``/_gearlift/`` path, never used by playbooks):

* an image created from an instance is ``pending`` until the data plane has
  committed the instance's container into a local image, then ``available``;
* the load balancer's health checks (the data plane's checker) decide what
  ``DescribeTargetHealth`` reports.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

CANONICAL_OWNER = "099720109477"

# Canonical's current Ubuntu LTS images as AWS lists them (DescribeImages,
# owner 099720109477): name pattern, architecture, root device. moto's stock
# list stops at 16.04; the bake looks images up by these names.
UBUNTU_IMAGES: list[dict[str, str]] = [
    {"name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260612", "arch": "x86_64"},
    {"name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261014", "arch": "x86_64"},
    {"name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20261014", "arch": "arm64"},
    {"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260620", "arch": "x86_64"},
    {"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261021", "arch": "x86_64"},
    {"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20261021", "arch": "arm64"},
]

# Target health reasons and descriptions as the ELB API words them.
_REASONS: dict[str, tuple[str | None, str | None]] = {
    "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
    "unhealthy": ("Target.FailedHealthChecks", "Health checks failed"),
    "draining": ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
}


def _ubuntu_image_id(name: str) -> str:
    return "ami-0" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _ec2_ubuntu_lts_images() -> None:
    """EC2: Canonical's Ubuntu 22.04 and 24.04 images (amd64 and arm64) are listed, as on AWS.

    The bake finds its source image by owner, name and architecture filters.
    """
    from moto.ec2.models import amis

    load = amis.AmiBackend._load_amis

    def load_with_lts(self: Any) -> None:
        load(self)
        for image in UBUNTU_IMAGES:
            ami_id = _ubuntu_image_id(image["name"])
            date = image["name"].rsplit("-", 1)[-1]
            self.amis[ami_id] = amis.Ami(
                self,
                ami_id,
                name=image["name"],
                description=f"Canonical, Ubuntu, {image['name'].split('/')[-1]}",
                owner_id=CANONICAL_OWNER,
                owner_alias="amazon",
                public=True,
                virtualization_type="hvm",
                architecture=image["arch"],
                root_device_type="ebs",
                root_device_name="/dev/sda1",
                creation_date=datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC),
                hypervisor="xen",
            )

    setattr(amis.AmiBackend, "_load_amis", load_with_lts)  # noqa: B010


def _ec2_create_image_from_instance() -> None:
    """EC2: CreateImage snapshots the instance's own root volume and is ``pending`` until done.

    On AWS the image's snapshot is the instance's root volume (so an encrypted
    volume gives an encrypted snapshot under the same KMS key), the image is
    ``pending`` until the snapshot completes, snapshots can be tagged in the
    same call, and the root device type is ``ebs``. moto makes a fresh 15 GiB
    unencrypted snapshot, is ``available`` at once and refuses snapshot tags.
    The data plane turns the image ``available`` once it has committed the
    instance's container (``mark_image_available``).
    """
    from moto.ec2.exceptions import InvalidTaggableResourceType
    from moto.ec2.models import amis
    from moto.ec2.utils import random_ami_id

    def create_image(
        self: Any,
        instance_id: str,
        name: str,
        description: str,
        tag_specifications: list[dict[str, Any]],
    ) -> Any:
        instance = self.get_instance(instance_id)
        image_tags: list[dict[str, str]] = []
        snapshot_tags: list[dict[str, str]] = []
        for spec in tag_specifications:
            kind = spec["ResourceType"]
            if kind == "image":
                image_tags += spec.get("Tags", [])
            elif kind == "snapshot":
                snapshot_tags += spec.get("Tags", [])
            else:
                raise InvalidTaggableResourceType(kind)
        ami_id = random_ami_id()
        ami = amis.Ami(
            self,
            ami_id,
            instance=instance,
            name=name,
            description=description,
            root_device_type="ebs",
            root_device_name=instance.root_device_name,
            snapshot_description=f"Created by CreateImage({instance_id}) for {ami_id}",
        )
        root = instance.block_device_mapping.get(instance.root_device_name)
        if root is not None:
            volume = self.get_volume(root.volume_id)
            # The auto-created snapshot is replaced by one of the root volume.
            self.snapshots.pop(ami.ebs_snapshot.id, None)
            snapshot = self.create_snapshot(
                volume.id, f"Created by CreateImage({instance_id}) for {ami_id}", from_ami=ami_id
            )
            snapshot.kms_key_id = volume.kms_key_id
            ami.ebs_snapshot = snapshot
            setattr(ami, "_gl_volume", {"size": volume.size, "type": volume.volume_type})  # noqa: B010
        ami.state = "pending"
        ami.ebs_snapshot.status = "pending"
        for tag in image_tags:
            ami.add_tag(tag["Key"], tag["Value"])
        for tag in snapshot_tags:
            ami.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        self.amis[ami_id] = ami
        return ami

    def block_device_mappings(self: Any) -> list[dict[str, Any]]:
        volume = getattr(self, "_gl_volume", None)
        if volume is None:
            return mappings(self)  # type: ignore[no-any-return]
        ebs: dict[str, Any] = {
            "SnapshotId": self.ebs_snapshot.id,
            "VolumeSize": volume["size"],
            "DeleteOnTermination": True,
            "VolumeType": volume["type"],
            "Encrypted": bool(self.ebs_snapshot.encrypted),
        }
        if self.ebs_snapshot.kms_key_id:
            ebs["KmsKeyId"] = self.ebs_snapshot.kms_key_id
        return [{"DeviceName": self.root_device_name, "Ebs": ebs}]

    mappings = amis.Ami.block_device_mappings.fget  # type: ignore[attr-defined]
    setattr(amis.AmiBackend, "create_image", create_image)  # noqa: B010
    setattr(amis.Ami, "block_device_mappings", property(block_device_mappings))  # noqa: B010


def _instance_zone(instance: Any) -> str:
    placement = getattr(instance, "_placement", None)
    return str(getattr(placement, "zone", "") or "")


@contextmanager
def launching_with(group: Any, spec: dict[str, Any] | None) -> Iterator[None]:
    """Launch a group's instances from another launch template version (instance refresh)."""
    if spec is None:
        yield
        return
    saved = (group.ec2_launch_template, group.launch_template_version, group.provided_launch_template_version)
    template = group.ec2_backend.get_launch_template(spec["LaunchTemplateId"])
    group.ec2_launch_template = template
    group.launch_template_version = str(spec["Version"])
    group.provided_launch_template_version = str(spec["Version"])
    try:
        yield
    finally:
        group.ec2_launch_template, group.launch_template_version, group.provided_launch_template_version = saved


def _ec2_launch_template_version_user_data() -> None:
    """EC2: CreateLaunchTemplateVersion takes user data like CreateLaunchTemplate (base64), as on AWS.

    moto keeps a new version's user data as a plain string, and every launch
    from that version (an Auto Scaling group on the new image) then fails.
    """
    from moto.core.types import Base64EncodedString
    from moto.ec2.models import launch_templates
    from moto.ec2.utils import parse_user_data

    create_version = launch_templates.LaunchTemplate.create_version

    def create_version_as_aws(self: Any, data: dict[str, Any], description: str) -> Any:
        user_data = data.get("UserData")
        if user_data is not None and not isinstance(user_data, Base64EncodedString):
            data = dict(data, UserData=parse_user_data(user_data))
        return create_version(self, data, description)

    setattr(launch_templates.LaunchTemplate, "create_version", create_version_as_aws)  # noqa: B010


def _autoscaling_balanced_launches() -> None:
    """Auto Scaling: instances spread over the group's subnets and remember their template version.

    AWS launches into the Availability Zone with the fewest instances of the
    group, and DescribeAutoScalingGroups reports the launch template version
    each instance was launched from. moto puts every instance in the first
    subnet (a random AZ label) and reports the template's current default.
    """
    from moto.autoscaling import models
    from moto.autoscaling.models import ASG_NAME_TAG
    from moto.moto_api._internal import mock_random as random

    def replace_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        propagated_tags = dict(propagated_tags)
        propagated_tags[ASG_NAME_TAG] = self.name
        propagated_tags.update(self.instance_tags)
        subnet_ids = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
        subnets = [self.ec2_backend.get_subnet(s) for s in subnet_ids]
        associate_public_ip = self.launch_config.associate_public_ip_address if self.launch_config else None
        launch_template = None
        recorded: dict[str, str] | None = None
        if self.ec2_launch_template:
            launch_template = {"LaunchTemplateId": self.ec2_launch_template.id}
            version = self.provided_launch_template_version or str(self.ec2_launch_template.default_version_number)
            recorded = {
                "LaunchTemplateId": self.ec2_launch_template.id,
                "LaunchTemplateName": self.ec2_launch_template.name,
                "Version": str(version),
            }
        for _ in range(count_needed):
            per_zone = Counter(_instance_zone(s.instance) for s in self.instance_states)
            subnet = (
                min(subnets, key=lambda s: (per_zone[s.availability_zone], subnet_ids.index(s.id))) if subnets else None
            )
            zone = subnet.availability_zone if subnet is not None else random.choice(self.availability_zones)
            reservation = self.autoscaling_backend.ec2_backend.run_instances(
                self.image_id,
                1,
                self.user_data,
                self.security_groups,
                instance_type=self.instance_type,
                tags={"instance": dict(propagated_tags)},
                placement=zone,
                launch_config=self.launch_config,
                launch_template=launch_template,
                is_instance_type_default=False,
                associate_public_ip=associate_public_ip,
                subnet_id=subnet.id if subnet is not None else None,
            )
            for instance in reservation.instances:
                instance.autoscaling_group = self
                state = models.InstanceState(
                    instance, protected_from_scale_in=self.new_instances_protected_from_scale_in
                )
                setattr(state, "_gl_template", dict(recorded) if recorded else None)  # noqa: B010
                self.instance_states.append(state)

    original_template = models.InstanceState.launch_template.fget  # type: ignore[attr-defined]

    def instance_template(self: Any) -> dict[str, Any] | None:
        recorded = getattr(self, "_gl_template", None)
        if recorded is not None:
            return dict(recorded)
        return original_template(self)  # type: ignore[no-any-return]

    setattr(models.FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_instances)  # noqa: B010
    setattr(models.InstanceState, "launch_template", property(instance_template))  # noqa: B010


def _autoscaling_target_registration() -> None:
    """Auto Scaling: only in-service instances are registered; standby deregisters, exit re-registers.

    On AWS the group registers an instance with its target groups when it is
    put in service, deregisters it (the target drains) when it enters
    Standby and registers it again when it leaves Standby. moto registers
    every instance of the group, Standby ones included, and never deregisters.
    """
    from moto.autoscaling import models

    def update_attached_target_groups(self: Any, group_name: str) -> None:
        group = self.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        in_service = [s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"]
        for tg in self.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        ):
            missing = [{"Id": i, "Port": tg.port} for i in in_service if i not in tg.targets]
            if missing:
                self.elbv2_backend.register_targets(tg.arn, missing)

    enter = models.AutoScalingBackend.enter_standby_instances

    def enter_standby(self: Any, group_name: str, instance_ids: list[str], should_decrement: bool) -> Any:
        activities = enter(self, group_name, instance_ids, should_decrement)
        deregister_from_target_groups(self.elbv2_backend, self.autoscaling_groups[group_name], instance_ids)
        return activities

    setattr(models.AutoScalingBackend, "update_attached_target_groups", update_attached_target_groups)  # noqa: B010
    setattr(models.AutoScalingBackend, "enter_standby_instances", enter_standby)  # noqa: B010


def deregister_from_target_groups(elbv2: Any, group: Any, instance_ids: Any) -> float:
    """Deregister a group's instances from its target groups (they drain); the longest deregistration delay.

    What the group does when an instance leaves service: Standby, scale-in, an instance refresh.
    """
    delay = 0.0
    for arn in group.target_group_arns:
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            continue
        registered = [{"Id": i} for i in instance_ids if i in tg.targets]
        if registered:
            elbv2.deregister_targets(arn, registered)
            delay = max(delay, _deregistration_delay(tg))
    return delay


def _deregistration_delay(tg: Any) -> float:
    try:
        return float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
    except (TypeError, ValueError):
        return 300.0


def _elbv2_target_health() -> None:
    """ELBv2: target health comes from health checks; deregistered targets drain first.

    AWS reports a new target ``initial`` until it passed the health checks,
    then ``healthy`` or ``unhealthy``; a deregistered target is ``draining``
    for the target group's deregistration delay and listed as such. moto calls
    every registered target ``healthy`` and forgets a target at once. Once the
    data plane has reported a target group (``report_target_health``), its
    targets' health is what the data plane's checks saw.
    """
    from moto.elbv2 import models

    register = models.FakeTargetGroup.register
    deregister = models.FakeTargetGroup.deregister
    health_for = models.FakeTargetGroup.health_for

    def _draining(self: Any) -> dict[str, tuple[dict[str, Any], float]]:
        if not hasattr(self, "_gl_draining"):
            self._gl_draining = {}
        return self._gl_draining  # type: ignore[no-any-return]

    def register_as_aws(self: Any, targets: list[dict[str, Any]]) -> None:
        new = [t["Id"] for t in targets if t["Id"] not in self.targets]
        register(self, targets)
        reports = getattr(self, "_gl_reports", None)
        for target_id in new:
            _draining(self).pop(target_id, None)
            if reports is not None:
                reports.pop(target_id, None)  # a (re-)registered target starts over: initial

    def deregister_as_aws(self: Any, targets: list[dict[str, Any]]) -> None:
        kept = {t["Id"]: dict(self.targets[t["Id"]]) for t in targets if t["Id"] in self.targets}
        deregister(self, targets)
        until = time.monotonic() + _deregistration_delay(self)
        for target_id, target in kept.items():
            _draining(self)[target_id] = (target, until)

    def health_as_aws(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        target_id = target["Id"]
        now = time.monotonic()
        if target_id not in self.targets:
            drained = _draining(self).get(target_id)
            if drained is not None and drained[1] > now:
                reason, text = _REASONS["draining"]
                return models.FakeHealthStatus(
                    target_id, drained[0].get("Port", self.port), self.health_check_port, "draining", reason, text
                )
            return health_for(self, target, ec2_backend)
        answer = health_for(self, target, ec2_backend)
        reports = getattr(self, "_gl_reports", None)
        if reports is None or answer.status != "healthy":
            return answer
        state = reports.get(target_id, "initial")
        reason, text = _REASONS.get(state, (None, None))
        return models.FakeHealthStatus(
            target_id, self.targets[target_id]["Port"], self.health_check_port, state, reason, text
        )

    describe = models.ELBv2Backend.describe_target_health

    def describe_with_draining(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        if targets:
            return describe(self, target_group_arn, targets)
        found = describe(self, target_group_arn, targets)
        tg = self.target_groups[target_group_arn]
        now = time.monotonic()
        for target_id, (target, until) in list(_draining(tg).items()):
            if until <= now:
                _draining(tg).pop(target_id, None)
            elif target_id not in tg.targets:
                found.append(tg.health_for(target, self.ec2_backend))
        return found

    setattr(models.FakeTargetGroup, "register", register_as_aws)  # noqa: B010
    setattr(models.FakeTargetGroup, "deregister", deregister_as_aws)  # noqa: B010
    setattr(models.FakeTargetGroup, "health_for", health_as_aws)  # noqa: B010
    setattr(models.ELBv2Backend, "describe_target_health", describe_with_draining)  # noqa: B010


# Fields of GetPatchBaseline / UpdatePatchBaseline and the model attributes behind them.
_BASELINE_FIELDS = {
    "Name": "name",
    "GlobalFilters": "global_filters",
    "ApprovalRules": "approval_rules",
    "ApprovedPatches": "approved_patches",
    "ApprovedPatchesComplianceLevel": "approved_patches_compliance_level",
    "ApprovedPatchesEnableNonSecurity": "approved_patches_enable_non_security",
    "RejectedPatches": "rejected_patches",
    "RejectedPatchesAction": "rejected_patches_action",
    "Description": "description",
    "Sources": "sources",
}
_WINDOW_FIELDS = {
    "Name": "name",
    "Description": "description",
    "Schedule": "schedule",
    "ScheduleTimezone": "schedule_timezone",
    "ScheduleOffset": "schedule_offset",
    "Duration": "duration",
    "Cutoff": "cutoff",
    "StartDate": "start_date",
    "EndDate": "end_date",
}


def _ssm_patch_baselines_and_windows() -> None:
    """SSM: GetPatchBaseline, UpdatePatchBaseline, UpdateMaintenanceWindow, GetMaintenanceWindowTask exist, as on AWS.

    A patch baseline or maintenance window is converged by reading it and
    updating what differs; moto can create, list and delete them only. Patch
    baselines take tags, as on AWS (moto refuses them).
    """
    from moto.core.responses import ActionResult
    from moto.ssm.exceptions import DoesNotExistException
    from moto.ssm.responses import SimpleSystemManagerResponse

    def _baseline(self: Any) -> Any:
        baseline_id = self._get_param("BaselineId")
        baseline = self.ssm_backend.baselines.get(baseline_id)
        if baseline is None:
            raise DoesNotExistException(baseline_id)
        return baseline

    def _baseline_answer(self: Any, baseline: Any) -> dict[str, Any]:
        answer = {key: getattr(baseline, attr) for key, attr in _BASELINE_FIELDS.items()}
        answer["BaselineId"] = baseline.id
        answer["OperatingSystem"] = baseline.operating_system
        answer["PatchGroups"] = sorted(
            name for name, group in self.ssm_backend.patch_groups.items() if baseline.id in group.associations.values()
        )
        return {k: v for k, v in answer.items() if v not in (None, {}, [])}

    def get_patch_baseline(self: Any) -> ActionResult:
        return ActionResult(_baseline_answer(self, _baseline(self)))

    def update_patch_baseline(self: Any) -> ActionResult:
        baseline = _baseline(self)
        replace = bool(self._get_param("Replace"))
        for key, attr in _BASELINE_FIELDS.items():
            value = self._get_param(key)
            if value is not None or replace:
                setattr(baseline, attr, value)
        return ActionResult(_baseline_answer(self, baseline))

    def update_maintenance_window(self: Any) -> ActionResult:
        window = self.ssm_backend.get_maintenance_window(self._get_param("WindowId"))
        for key, attr in _WINDOW_FIELDS.items():
            value = self._get_param(key)
            if value is not None:
                setattr(window, attr, value)
        answer = {k: v for k, v in window.to_json().items() if v is not None}
        return ActionResult(answer)

    def get_maintenance_window_task(self: Any) -> ActionResult:
        window = self.ssm_backend.get_maintenance_window(self._get_param("WindowId"))
        task_id = self._get_param("WindowTaskId")
        task = window.tasks.get(task_id)
        if task is None:
            raise DoesNotExistException(task_id)
        return ActionResult({k: v for k, v in task.to_json().items() if v is not None})

    for func in (get_patch_baseline, update_patch_baseline, update_maintenance_window, get_maintenance_window_task):
        setattr(SimpleSystemManagerResponse, func.__name__, func)

    # Tags on a patch baseline (CreatePatchBaseline Tags, AddTagsToResource): moto refuses every baseline id.
    from moto.ssm import models
    from moto.ssm.exceptions import InvalidResourceId

    validate = models.SimpleSystemManagerBackend._validate_resource_type_and_id

    def validate_baselines(self: Any, resource_type: str, resource_id: str) -> str:
        if resource_type == "PatchBaseline":
            if resource_id not in self.baselines:
                raise InvalidResourceId()
            return resource_id
        return validate(self, resource_type, resource_id)

    setattr(models.SimpleSystemManagerBackend, "_validate_resource_type_and_id", validate_baselines)  # noqa: B010


def apply() -> None:
    _ssm_patch_baselines_and_windows()
    _ec2_ubuntu_lts_images()
    _ec2_create_image_from_instance()
    _ec2_launch_template_version_user_data()
    _autoscaling_balanced_launches()
    _autoscaling_target_registration()
    _elbv2_target_health()


# ------------------------------------------------------------ data plane side


def _backend(kind: str, account: str, region: str) -> Any:
    if kind == "ec2":
        from moto.ec2.models import ec2_backends

        return ec2_backends[account][region]
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[account][region]


def mark_image_available(account: str, region: str, image_id: str) -> bool:
    """The data plane committed the image's container: the image and its snapshot are done."""
    ec2 = _backend("ec2", account, region)
    ami = ec2.amis.get(image_id)
    if ami is None:
        return False
    ami.state = "available"
    ami.ebs_snapshot.status = "completed"
    return True


def report_target_health(account: str, region: str, groups: dict[str, dict[str, str]]) -> int:
    """Health the data plane's checks saw: {target group ARN: {target id: initial|healthy|unhealthy}}."""
    elbv2 = _backend("elbv2", account, region)
    count = 0
    for arn, states in groups.items():
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            continue
        tg._gl_reports = {k: v for k, v in states.items() if v in ("initial", "healthy", "unhealthy")}
        count += len(tg._gl_reports)
    return count


def target_states(elbv2: Any, arn: str) -> dict[str, str]:
    """Target id -> state as DescribeTargetHealth reports it (registered and draining targets)."""
    return {h.instance_id: h.status for h in elbv2.describe_target_health(arn, [])}


def min_healthy(capacity: int, percentage: int) -> int:
    """Instances that must stay healthy: a percentage of capacity, rounded up (as Auto Scaling does)."""
    return math.ceil(capacity * percentage / 100)
