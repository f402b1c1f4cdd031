# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.asg_fleet``.

Nothing in here talks to AWS: the functions take plain dicts (module params,
boto3 request/response shapes) and return plain values, so they can be unit
tested without moto or stubs.

Sections:

* guards        -- ``check_guards`` refuses insecure or inconsistent input
* launch template -- ``build_launch_template_data`` (request shape) and
  ``summarize_launch_template_data`` (canonical form used for diffing both the
  desired request and the ``DescribeLaunchTemplateVersions`` response)
* auto scaling group -- ``summarize_group``, ``desired_group_summary``,
  ``group_update_request``, ``tag_changes``, ``target_group_changes``
* instance refresh -- status classes, ``build_refresh_request``,
  ``wait_for_refresh`` (bounded polling loop with injectable clock/sleep) and
  ``plan_rollback``
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------

#: Hard AWS limit for EC2 user data before base64 encoding.
USER_DATA_MAX_BYTES = 16384

#: IMDS settings that are always applied (only HttpTokens is overridable).
IMDS_HOP_LIMIT = 1
IMDS_ENDPOINT = "enabled"

#: Top-level LaunchTemplateData keys this module writes.  Anything else found
#: in the current default version counts as drift (e.g. a KeyName added by
#: hand) and causes a new version.
MANAGED_LT_KEYS = frozenset(
    {
        "ImageId",
        "InstanceType",
        "IamInstanceProfile",
        "UserData",
        "NetworkInterfaces",
        "MetadataOptions",
        "Monitoring",
        "BlockDeviceMappings",
        "TagSpecifications",
    }
)

#: Resource types the ``tags`` option is written to inside the launch template.
LT_TAGGED_RESOURCES = ("instance", "volume")

REFRESH_RUNNING = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
REFRESH_SUCCEEDED = frozenset({"Successful"})
REFRESH_FAILED = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"


# --------------------------------------------------------------------------
# guards
# --------------------------------------------------------------------------


def check_guards(params: Mapping[str, Any]) -> list[str]:
    """Return every reason to refuse ``params``; empty list means acceptable.

    Runs before any AWS call.  Each message names the offending setting and,
    where one exists, the option that overrides the guard.
    """
    p = params
    errors: list[str] = []

    # --- security guards (overridable) -----------------------------------
    if p.get("http_tokens") == "optional" and not p.get("allow_imdsv1"):
        errors.append(
            "http_tokens=optional enables IMDSv1 (metadata without session tokens); set allow_imdsv1=true to override"
        )
    if p.get("associate_public_ip_address") and not p.get("allow_public_ip"):
        errors.append(
            "associate_public_ip_address=true gives instances a public IPv4 address; "
            "set allow_public_ip=true to override"
        )
    if p.get("volume_encrypted") is False and not p.get("allow_unencrypted_volumes"):
        errors.append(
            "volume_encrypted=false leaves the root EBS volume unencrypted; "
            "set allow_unencrypted_volumes=true to override"
        )
    min_size = p.get("min_size")
    if (
        p.get("environment") == "production"
        and min_size is not None
        and min_size < 2
        and not p.get("allow_single_instance")
    ):
        errors.append(
            f"min_size={min_size} in environment=production leaves no redundancy; "
            "use min_size >= 2 or set allow_single_instance=true to override"
        )

    # --- consistency (not overridable) -----------------------------------
    if p.get("kms_key_id") and p.get("volume_encrypted") is False:
        errors.append("kms_key_id is set but volume_encrypted=false; drop one of them")

    max_size = p.get("max_size")
    desired = p.get("desired_capacity")
    if min_size is not None and min_size < 0:
        errors.append(f"min_size={min_size} must be >= 0")
    if min_size is not None and max_size is not None:
        if min_size > max_size:
            errors.append(f"min_size={min_size} is greater than max_size={max_size}")
        if desired is not None and not min_size <= desired <= max_size:
            errors.append(f"desired_capacity={desired} must be between min_size={min_size} and max_size={max_size}")

    subnets = p.get("subnets")
    if subnets is not None and (not subnets or any(not str(s).strip() for s in subnets)):
        errors.append("subnets must list at least one non-empty subnet id")
    sgs = p.get("security_group_ids")
    if sgs is not None and (not sgs or any(not str(s).strip() for s in sgs)):
        errors.append(
            "security_group_ids must list at least one security group "
            "(the VPC default group is not an acceptable fallback)"
        )

    mhp = p.get("min_healthy_percentage")
    if mhp is not None and not 0 <= mhp <= 100:
        errors.append(f"min_healthy_percentage={mhp} must be between 0 and 100")
    xhp = p.get("max_healthy_percentage")
    if xhp is not None:
        if not 100 <= xhp <= 200:
            errors.append(f"max_healthy_percentage={xhp} must be between 100 and 200")
        elif mhp is not None and xhp - mhp > 100:
            errors.append(f"max_healthy_percentage={xhp} minus min_healthy_percentage={mhp} must not exceed 100")
    if mhp == 100 and (xhp is None or xhp <= 100):
        errors.append("min_healthy_percentage=100 needs max_healthy_percentage > 100 (launch before terminate)")

    for name in ("refresh_timeout", "poll_interval"):
        value = p.get(name)
        if value is not None and value <= 0:
            errors.append(f"{name}={value} must be > 0")
    for name in ("health_check_grace_period", "default_instance_warmup", "instance_warmup"):
        value = p.get(name)
        if value is not None and value < 0:
            errors.append(f"{name}={value} must be >= 0")

    vtype = p.get("volume_type")
    if p.get("volume_throughput") is not None and vtype != "gp3":
        errors.append(f"volume_throughput is only valid with volume_type=gp3, not {vtype}")
    if p.get("volume_iops") is not None and vtype not in ("gp3", "io1", "io2"):
        errors.append(f"volume_iops is only valid with volume_type gp3, io1 or io2, not {vtype}")

    size = p.get("volume_size")
    if size is not None and not 1 <= size <= 65536:
        errors.append(f"volume_size={size} must be between 1 and 65536 GiB")

    pool = p.get("warm_pool") or {}
    if pool.get("state", "present") == "present" and pool:
        pool_min = pool.get("min_size") or 0
        prepared = pool.get("max_group_prepared_capacity")
        if pool_min < 0:
            errors.append(f"warm_pool.min_size={pool_min} must be >= 0")
        if prepared is not None and prepared != -1:
            if prepared < 0:
                errors.append(f"warm_pool.max_group_prepared_capacity={prepared} must be >= 0 (or -1: max_size)")
            elif max_size is not None and prepared > max_size:
                errors.append(f"warm_pool.max_group_prepared_capacity={prepared} is greater than max_size={max_size}")

    user_data = p.get("user_data")
    if user_data is not None and len(user_data.encode("utf-8")) > USER_DATA_MAX_BYTES:
        errors.append(
            f"user_data is {len(user_data.encode('utf-8'))} bytes; "
            f"EC2 accepts at most {USER_DATA_MAX_BYTES} bytes before base64"
        )
    return errors


# --------------------------------------------------------------------------
# launch template
# --------------------------------------------------------------------------


def tag_list(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> sorted ``[{"Key": "k", "Value": "v"}]``."""
    return [{"Key": str(k), "Value": str(v)} for k, v in sorted((tags or {}).items())]


def encode_user_data(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_user_data(value: str | None) -> str | None:
    """Decode LaunchTemplateData.UserData; undecodable values are returned as is."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return value


def instance_profile_spec(value: str) -> dict[str, str]:
    """An instance profile given by ARN or by name."""
    return {"Arn": value} if value.startswith("arn:") else {"Name": value}


def build_launch_template_data(params: Mapping[str, Any]) -> dict[str, Any]:
    """Build ``LaunchTemplateData`` (request shape) from module params.

    Always: IMDS token hop limit 1 and endpoint enabled, the root volume
    deleted on termination, one network interface (device 0) carrying the
    security groups and deleted on termination.  HttpTokens, public IP and
    encryption follow the (guarded) options; detailed (1-minute) monitoring
    follows ``detailed_monitoring`` (on unless switched off).
    """
    p = params
    ebs: dict[str, Any] = {
        "VolumeSize": p["volume_size"],
        "VolumeType": p["volume_type"],
        "Encrypted": bool(p["volume_encrypted"]),
        "DeleteOnTermination": True,
    }
    if p.get("kms_key_id"):
        ebs["KmsKeyId"] = p["kms_key_id"]
    if p.get("volume_iops") is not None:
        ebs["Iops"] = p["volume_iops"]
    if p.get("volume_throughput") is not None:
        ebs["Throughput"] = p["volume_throughput"]

    data: dict[str, Any] = {
        "ImageId": p["image_id"],
        "InstanceType": p["instance_type"],
        "MetadataOptions": {
            "HttpTokens": p["http_tokens"],
            "HttpPutResponseHopLimit": IMDS_HOP_LIMIT,
            "HttpEndpoint": IMDS_ENDPOINT,
        },
        "Monitoring": {"Enabled": bool(p.get("detailed_monitoring", True))},
        "BlockDeviceMappings": [{"DeviceName": p["root_device_name"], "Ebs": ebs}],
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "AssociatePublicIpAddress": bool(p["associate_public_ip_address"]),
                "DeleteOnTermination": True,
                "Groups": sorted(p["security_group_ids"]),
            }
        ],
    }
    if p.get("iam_instance_profile"):
        data["IamInstanceProfile"] = instance_profile_spec(p["iam_instance_profile"])
    if p.get("user_data") is not None:
        data["UserData"] = encode_user_data(p["user_data"])
    if p.get("tags"):
        data["TagSpecifications"] = [
            {"ResourceType": rtype, "Tags": tag_list(p["tags"])} for rtype in LT_TAGGED_RESOURCES
        ]
    return data


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def summarize_launch_template_data(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Canonical, order-independent view of LaunchTemplateData.

    Works on both the request shape built above and the response shape of
    DescribeLaunchTemplateVersions (which carries extra read-only members such
    as ``MetadataOptions.State``; those are ignored).  Two launch template
    versions are considered equal when their summaries are equal.
    """
    data = data or {}
    meta = data.get("MetadataOptions") or {}
    nics = list(data.get("NetworkInterfaces") or [])
    primary = next((n for n in nics if n.get("DeviceIndex", 0) == 0), {})
    iam = data.get("IamInstanceProfile") or {}
    block_devices = []
    for bdm in sorted(data.get("BlockDeviceMappings") or [], key=lambda b: b.get("DeviceName", "")):
        ebs = bdm.get("Ebs") or {}
        block_devices.append(
            {
                "device_name": bdm.get("DeviceName"),
                "volume_size": ebs.get("VolumeSize"),
                "volume_type": ebs.get("VolumeType"),
                "encrypted": ebs.get("Encrypted"),
                "kms_key_id": ebs.get("KmsKeyId"),
                "iops": ebs.get("Iops"),
                "throughput": ebs.get("Throughput"),
                "delete_on_termination": ebs.get("DeleteOnTermination"),
            }
        )
    # "launch-template" is not a valid resource type inside LaunchTemplateData;
    # some emulators echo the template's own tags there, so it is ignored.
    tags = {
        spec.get("ResourceType"): {t["Key"]: t["Value"] for t in spec.get("Tags") or []}
        for spec in data.get("TagSpecifications") or []
        if spec.get("ResourceType") != "launch-template"
    }
    return {
        "image_id": data.get("ImageId"),
        "instance_type": data.get("InstanceType"),
        "iam_instance_profile": iam.get("Arn") or iam.get("Name"),
        "user_data": decode_user_data(data.get("UserData")),
        "security_group_ids": sorted(primary.get("Groups") or data.get("SecurityGroupIds") or []),
        "associate_public_ip_address": primary.get("AssociatePublicIpAddress"),
        "network_interface_delete_on_termination": primary.get("DeleteOnTermination"),
        "network_interfaces": len(nics),
        "http_tokens": meta.get("HttpTokens"),
        "http_put_response_hop_limit": meta.get("HttpPutResponseHopLimit"),
        "http_endpoint": meta.get("HttpEndpoint"),
        "detailed_monitoring": bool((data.get("Monitoring") or {}).get("Enabled", False)),
        "block_devices": block_devices,
        "tags": tags,
        "unmanaged_fields": sorted(k for k, v in data.items() if k not in MANAGED_LT_KEYS and not _is_empty(v)),
    }


def launch_template_differs(desired: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """True when ``current`` (response shape, or None) does not match ``desired``."""
    if current is None:
        return True
    return summarize_launch_template_data(desired) != summarize_launch_template_data(current)


# --------------------------------------------------------------------------
# auto scaling group
# --------------------------------------------------------------------------


def group_template_spec(group: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The launch template reference of a group (plain or mixed-instances)."""
    if not group:
        return None
    spec = group.get("LaunchTemplate")
    if not spec:
        mip = group.get("MixedInstancesPolicy") or {}
        spec = (mip.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    if not spec:
        return None
    return {
        "LaunchTemplateId": spec.get("LaunchTemplateId"),
        "LaunchTemplateName": spec.get("LaunchTemplateName"),
        "Version": None if spec.get("Version") is None else str(spec.get("Version")),
    }


def same_template_ref(spec: Mapping[str, Any] | None, template_id: str | None, version: int | str | None) -> bool:
    """Does group template ``spec`` point at ``template_id`` / explicit ``version``?"""
    if not spec or version is None:
        return False
    return spec.get("LaunchTemplateId") == template_id and spec.get("Version") == str(version)


def is_explicit_version(version: str | int | None) -> bool:
    return version is not None and str(version).isdigit()


def summarize_group(group: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Canonical view of a DescribeAutoScalingGroups entry (settings only)."""
    if not group:
        return None
    subnets = [s for s in (group.get("VPCZoneIdentifier") or "").split(",") if s]
    spec = group_template_spec(group)
    return {
        "name": group.get("AutoScalingGroupName"),
        "min_size": group.get("MinSize"),
        "max_size": group.get("MaxSize"),
        "desired_capacity": group.get("DesiredCapacity"),
        "subnets": sorted(subnets),
        "target_group_arns": sorted(group.get("TargetGroupARNs") or []),
        "health_check_type": group.get("HealthCheckType"),
        "health_check_grace_period": group.get("HealthCheckGracePeriod"),
        "default_instance_warmup": group.get("DefaultInstanceWarmup"),
        "termination_policies": list(group.get("TerminationPolicies") or []),
        "capacity_rebalance": group.get("CapacityRebalance"),
        "launch_template": None
        if spec is None
        else {
            "id": spec["LaunchTemplateId"],
            "name": spec["LaunchTemplateName"],
            "version": spec["Version"],
        },
        "tags": {t["Key"]: t.get("Value", "") for t in group.get("Tags") or [] if t.get("PropagateAtLaunch", False)},
        "tags_not_propagated": sorted(
            t["Key"] for t in group.get("Tags") or [] if not t.get("PropagateAtLaunch", False)
        ),
        "enabled_metrics": sorted({m["Metric"] for m in group.get("EnabledMetrics") or []}),
    }


def desired_group_summary(
    params: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    template: Mapping[str, Any],
) -> dict[str, Any]:
    """What ``summarize_group`` should return once the group is converged.

    ``current`` is ``summarize_group`` of the existing group (None when it is
    to be created).  Options left unset (None) keep the current value.
    ``template`` is ``{"id", "name", "version"}``.
    """
    p = params
    cur = dict(current or {})
    min_size, max_size = p["min_size"], p["max_size"]
    if p.get("desired_capacity") is not None:
        desired = p["desired_capacity"]
    elif current is not None and cur.get("desired_capacity") is not None:
        # scaling policies own the desired capacity; AWS clamps it into range
        desired = min(max(cur["desired_capacity"], min_size), max_size)
    else:
        desired = min_size

    def keep(option: str, key: str, default: Any = None) -> Any:
        value = p.get(option)
        if value is None:
            return cur.get(key, default)
        return value

    tags = cur.get("tags", {})
    not_propagated = cur.get("tags_not_propagated", [])
    if p.get("tags") is not None:
        wanted = {str(k): str(v) for k, v in p["tags"].items()}
        if p.get("purge_tags", True):
            tags, not_propagated = wanted, []
        else:
            tags = {**tags, **wanted}
            not_propagated = [k for k in not_propagated if k not in wanted]

    metrics = cur.get("enabled_metrics", [])
    if p.get("metrics_collection") is False:
        metrics = []
    elif p.get("metrics_collection"):
        if p.get("metrics_list"):
            metrics = sorted(set(p["metrics_list"]))
        elif not metrics:
            metrics = ["(all)"]

    return {
        "name": p["name"],
        "min_size": min_size,
        "max_size": max_size,
        "desired_capacity": desired,
        "subnets": sorted(p["subnets"]),
        "target_group_arns": sorted(p["target_group_arns"])
        if p.get("target_group_arns") is not None
        else cur.get("target_group_arns", []),
        "health_check_type": p["health_check_type"],
        "health_check_grace_period": p["health_check_grace_period"],
        "default_instance_warmup": keep("default_instance_warmup", "default_instance_warmup"),
        "termination_policies": keep("termination_policies", "termination_policies", ["Default"]),
        "capacity_rebalance": keep("capacity_rebalance", "capacity_rebalance", False),
        "launch_template": dict(template),
        "tags": tags,
        "tags_not_propagated": sorted(not_propagated),
        "enabled_metrics": metrics,
    }


def group_update_request(
    params: Mapping[str, Any],
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    include_template: bool,
) -> dict[str, Any]:
    """UpdateAutoScalingGroup kwargs for the settings that differ (empty: none)."""
    req: dict[str, Any] = {}
    pairs = (
        ("min_size", "MinSize"),
        ("max_size", "MaxSize"),
        ("health_check_type", "HealthCheckType"),
        ("health_check_grace_period", "HealthCheckGracePeriod"),
        ("default_instance_warmup", "DefaultInstanceWarmup"),
        ("termination_policies", "TerminationPolicies"),
        ("capacity_rebalance", "CapacityRebalance"),
    )
    for key, api in pairs:
        if desired.get(key) is not None and desired.get(key) != current.get(key):
            req[api] = desired[key]
    if params.get("desired_capacity") is not None and desired["desired_capacity"] != current.get("desired_capacity"):
        req["DesiredCapacity"] = desired["desired_capacity"]
    if desired["subnets"] != current.get("subnets"):
        req["VPCZoneIdentifier"] = ",".join(params["subnets"])
    if include_template and desired["launch_template"] != current.get("launch_template"):
        req["LaunchTemplate"] = {
            "LaunchTemplateId": desired["launch_template"]["id"],
            "Version": str(desired["launch_template"]["version"]),
        }
    if req:
        req = {"AutoScalingGroupName": params["name"], **req}
    return req


def target_group_changes(current: list[str] | None, desired: list[str] | None) -> tuple[list[str], list[str]]:
    """(attach, detach) to go from ``current`` to ``desired``; None desired = unmanaged."""
    if desired is None:
        return [], []
    cur, want = set(current or []), set(desired)
    return sorted(want - cur), sorted(cur - want)


def tag_changes(
    group_name: str,
    current_tags: list[Mapping[str, Any]] | None,
    desired: Mapping[str, Any] | None,
    purge: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(create_or_update, delete) tag lists for the ASG tag APIs.

    Desired tags always propagate at launch.  None desired = unmanaged.
    """
    if desired is None:
        return [], []
    base = {"ResourceId": group_name, "ResourceType": "auto-scaling-group"}
    cur = {t["Key"]: t for t in current_tags or []}
    upsert = [
        {**base, "Key": str(k), "Value": str(v), "PropagateAtLaunch": True}
        for k, v in sorted(desired.items())
        if str(k) not in cur
        or cur[str(k)].get("Value", "") != str(v)
        or not cur[str(k)].get("PropagateAtLaunch", False)
    ]
    delete = []
    if purge:
        wanted = {str(k) for k in desired}
        delete = [{**base, "Key": k, "Value": cur[k].get("Value", "")} for k in sorted(cur) if k not in wanted]
    return upsert, delete


def metrics_changes(
    enabled: list[str], collection: bool | None, metrics: list[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    """(enable, disable) metric lists; ``[]`` in enable means "all metrics".

    Returns None for a side with nothing to do.
    """
    if collection is None:
        return None, None
    if collection is False:
        return None, (sorted(enabled) if enabled else None)
    if not metrics:
        return ([] if not enabled else None), None
    want, have = set(metrics), set(enabled)
    return (sorted(want - have) or None), (sorted(have - want) or None)


# --------------------------------------------------------------------------
# instance refresh
# --------------------------------------------------------------------------


def summarize_warm_pool(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The compared view of DescribeWarmPool's WarmPoolConfiguration (None: no pool, or being deleted)."""
    if not config or config.get("Status") == "PendingDelete":
        return None
    return {
        "min_size": config.get("MinSize", 0),
        "max_group_prepared_capacity": config.get("MaxGroupPreparedCapacity", -1),
        "pool_state": config.get("PoolState", "Stopped"),
        "reuse_on_scale_in": bool((config.get("InstanceReusePolicy") or {}).get("ReuseOnScaleIn", False)),
    }


def desired_warm_pool(opts: Mapping[str, Any]) -> dict[str, Any] | None:
    if opts.get("state", "present") == "absent":
        return None
    prepared = opts.get("max_group_prepared_capacity")
    return {
        "min_size": opts.get("min_size") or 0,
        "max_group_prepared_capacity": -1 if prepared is None else prepared,
        "pool_state": opts.get("pool_state") or "Stopped",
        "reuse_on_scale_in": bool(opts.get("reuse_on_scale_in")),
    }


def warm_pool_request(name: str, wanted: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": name,
        "MinSize": wanted["min_size"],
        "MaxGroupPreparedCapacity": wanted["max_group_prepared_capacity"],
        "PoolState": wanted["pool_state"],
        "InstanceReusePolicy": {"ReuseOnScaleIn": wanted["reuse_on_scale_in"]},
    }


def classify_refresh(status: str | None) -> str:
    """Map an instance refresh Status to RUNNING / SUCCEEDED / FAILED."""
    if status in REFRESH_RUNNING:
        return RUNNING
    if status in REFRESH_SUCCEEDED:
        return SUCCEEDED
    return FAILED


def build_refresh_request(
    group_name: str,
    template_id: str,
    version: int | str,
    *,
    min_healthy_percentage: int,
    max_healthy_percentage: int | None = None,
    instance_warmup: int | None = None,
    auto_rollback: bool = False,
) -> dict[str, Any]:
    """StartInstanceRefresh kwargs: rolling, skip matching, explicit version."""
    prefs: dict[str, Any] = {
        "MinHealthyPercentage": min_healthy_percentage,
        "SkipMatching": True,
    }
    if max_healthy_percentage is not None:
        prefs["MaxHealthyPercentage"] = max_healthy_percentage
    if instance_warmup is not None:
        prefs["InstanceWarmup"] = instance_warmup
    if auto_rollback:
        prefs["AutoRollback"] = True
    return {
        "AutoScalingGroupName": group_name,
        "Strategy": "Rolling",
        "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": str(version)}},
        "Preferences": prefs,
    }


def refresh_targets(refresh: Mapping[str, Any], template_id: str, version: int | str) -> bool:
    """Does an existing refresh's DesiredConfiguration aim at template/version?"""
    spec = (refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
    return spec.get("LaunchTemplateId") == template_id and str(spec.get("Version")) == str(version)


@dataclass
class RefreshOutcome:
    """Result of waiting for an instance refresh."""

    refresh_id: str
    status: str
    status_reason: str | None = None
    percentage: int | None = None
    timed_out: bool = False
    polls: int = 0
    history: list[int | None] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.timed_out:
            return FAILED
        return classify_refresh(self.status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.refresh_id,
            "status": self.status,
            "status_reason": self.status_reason,
            "percentage": self.percentage,
            "timed_out": self.timed_out,
            "percentage_history": list(self.history),
        }


def wait_for_refresh(
    describe: Callable[[], Mapping[str, Any] | None],
    refresh_id: str,
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
    on_poll: Callable[[Mapping[str, Any]], Any] | None = None,
) -> RefreshOutcome:
    """Poll ``describe`` until the refresh leaves the running states or time runs out.

    ``describe`` returns the refresh (DescribeInstanceRefreshes entry) or None
    when it cannot be found.  The loop is bounded by ``timeout`` seconds of
    ``clock``; it never sleeps past the deadline.
    """
    deadline = clock() + timeout
    outcome = RefreshOutcome(refresh_id=refresh_id, status="Unknown")
    while True:
        refresh = describe()
        outcome.polls += 1
        if refresh is None:
            outcome.status = "NotFound"
            outcome.status_reason = f"instance refresh {refresh_id} was not found"
            return outcome
        outcome.status = refresh.get("Status", "Unknown")
        outcome.status_reason = refresh.get("StatusReason")
        outcome.percentage = refresh.get("PercentageComplete")
        outcome.history.append(outcome.percentage)
        if on_poll is not None:
            on_poll(refresh)
        if classify_refresh(outcome.status) != RUNNING:
            return outcome
        remaining = deadline - clock()
        if remaining <= 0:
            outcome.timed_out = True
            return outcome
        sleep(min(interval, remaining))


@dataclass
class RollbackPlan:
    """What ``asg_fleet`` must do after a failed or timed-out refresh."""

    restore_group_template: dict[str, Any] | None
    reset_default_version: int | None
    refresh_back_to: dict[str, Any] | None
    reasons: list[str] = field(default_factory=list)


def plan_rollback(
    *,
    status: str,
    percentage: int | None,
    instances_on_new: int,
    group_template_now: Mapping[str, Any] | None,
    group_template_before: Mapping[str, Any] | None,
    default_now: int | None,
    default_before: int | None,
) -> RollbackPlan:
    """Decide the rollback steps.

    * point the group back at the template reference it had before the run
      (only if it moved);
    * reset the launch template default version if this run changed it;
    * start a refresh back to the previous reference when instances were
      already replaced -- unless AWS already rolled them back itself
      (``RollbackSuccessful``) or there is no previous reference.
    """
    reasons: list[str] = []
    restore = None
    before = dict(group_template_before) if group_template_before else None
    if before is not None and not _same_spec(group_template_now, before):
        restore = before
        reasons.append("group points at the new launch template version")
    reset = None
    if default_before is not None and default_now is not None and default_now != default_before:
        reset = default_before
        reasons.append(f"launch template default moved from {default_before} to {default_now}")
    refresh_back = None
    replaced = bool(percentage) or instances_on_new > 0
    if replaced and status != "RollbackSuccessful" and before is not None:
        refresh_back = before
        reasons.append(
            f"{instances_on_new} instance(s) already on the new version, {percentage or 0}% of the refresh done"
        )
    return RollbackPlan(
        restore_group_template=restore,
        reset_default_version=reset,
        refresh_back_to=refresh_back,
        reasons=reasons,
    )


def _same_spec(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    if not a or not b:
        return a == b
    return a.get("LaunchTemplateId") == b.get("LaunchTemplateId") and str(a.get("Version")) == str(b.get("Version"))
