# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic of gearlift.platform.efs_share: what an EFS file system, its mount targets, its
access point and its file system policy should look like, and what differs from what exists.

No AWS call here: the module reads, this file decides, the module writes. Unit-tested in
tests/unit/test_efs_share.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The module's performance_mode choices -> the API's PerformanceMode.
PERFORMANCE_MODES = {"general_purpose": "generalPurpose", "max_io": "maxIO"}
#: The API's ThroughputMode values.
THROUGHPUT_MODES = ("bursting", "elastic", "provisioned")
#: Days after the last access a file moves to Infrequent Access (the API's TransitionToIA rules).
TRANSITION_TO_IA_DAYS = (1, 7, 14, 30, 60, 90, 180, 270, 365)
#: The only TransitionToPrimaryStorageClass rule: back to Standard on the first access.
TRANSITION_TO_PRIMARY = "AFTER_1_ACCESS"
#: Provisioned throughput range of the API (MiB/s).
PROVISIONED_MIBPS = (1.0, 3414.0)

#: The client actions the app's instance role needs (read and write; never root).
CLIENT_ACTIONS = ("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite")


class EfsSpecError(ValueError):
    """A wanted setting that EFS cannot take, or a change EFS cannot make in place."""


def transition_rule(days: int) -> str:
    """The TransitionToIA rule name of ``days`` (1 -> AFTER_1_DAY, 30 -> AFTER_30_DAYS)."""
    if days not in TRANSITION_TO_IA_DAYS:
        raise EfsSpecError(
            f"transition_to_ia_days {days} is not one EFS offers; use one of "
            f"{', '.join(str(d) for d in TRANSITION_TO_IA_DAYS)} (or 0 for none)."
        )
    return "AFTER_1_DAY" if days == 1 else f"AFTER_{days}_DAYS"


def lifecycle_policies(ia_days: int, back_on_access: bool) -> list[dict[str, str]]:
    """The LifecyclePolicies list of PutLifecycleConfiguration (one rule per item, as the API wants)."""
    policies: list[dict[str, str]] = []
    if ia_days:
        policies.append({"TransitionToIA": transition_rule(ia_days)})
    if back_on_access:
        if not ia_days:
            raise EfsSpecError("transition_to_primary_on_access needs transition_to_ia_days (nothing moves to IA).")
        policies.append({"TransitionToPrimaryStorageClass": TRANSITION_TO_PRIMARY})
    return policies


def lifecycle_equal(current: Sequence[Mapping[str, str]], wanted: Sequence[Mapping[str, str]]) -> bool:
    """Whether two LifecyclePolicies lists hold the same rules (order and grouping do not matter)."""

    def rules(items: Sequence[Mapping[str, str]]) -> set[tuple[str, str]]:
        return {(key, value) for item in items for key, value in item.items()}

    return rules(current) == rules(wanted)


@dataclass(frozen=True)
class FileSystemSpec:
    """The file system's wanted settings."""

    encrypted: bool
    kms_key_arn: str | None
    performance_mode: str
    throughput_mode: str
    provisioned_mibps: float | None

    def __post_init__(self) -> None:
        if self.performance_mode not in PERFORMANCE_MODES.values():
            raise EfsSpecError(f"performance mode {self.performance_mode!r} is not one of {sorted(PERFORMANCE_MODES)}.")
        if self.throughput_mode not in THROUGHPUT_MODES:
            raise EfsSpecError(f"throughput_mode {self.throughput_mode!r} is not one of {', '.join(THROUGHPUT_MODES)}.")
        if self.throughput_mode == "provisioned":
            low, high = PROVISIONED_MIBPS
            if self.provisioned_mibps is None or not low <= self.provisioned_mibps <= high:
                raise EfsSpecError(
                    f"throughput_mode provisioned needs provisioned_throughput_mibps in {low:g}-{high:g}."
                )
        elif self.provisioned_mibps is not None:
            raise EfsSpecError("provisioned_throughput_mibps is only for throughput_mode provisioned.")
        if self.throughput_mode == "elastic" and self.performance_mode == "maxIO":
            raise EfsSpecError("throughput_mode elastic needs performance_mode general_purpose (EFS refuses maxIO).")
        if self.kms_key_arn and not self.encrypted:
            raise EfsSpecError("a KMS key is given but encrypted is false.")

    def create_params(self, token: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "CreationToken": token,
            "PerformanceMode": self.performance_mode,
            "Encrypted": self.encrypted,
            "ThroughputMode": self.throughput_mode,
        }
        if self.kms_key_arn:
            params["KmsKeyId"] = self.kms_key_arn
        if self.provisioned_mibps is not None:
            params["ProvisionedThroughputInMibps"] = self.provisioned_mibps
        return params

    def drift(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """The UpdateFileSystem parameters that bring ``current`` (DescribeFileSystems item) to this spec;
        raises EfsSpecError for what EFS cannot change in place (encryption, key, performance mode)."""
        fixed: list[str] = []
        if bool(current.get("Encrypted")) != self.encrypted:
            fixed.append(f"encrypted is {bool(current.get('Encrypted'))}, wanted {self.encrypted}")
        if self.kms_key_arn and current.get("KmsKeyId") and current["KmsKeyId"] != self.kms_key_arn:
            fixed.append(f"KMS key is {current['KmsKeyId']}, wanted {self.kms_key_arn}")
        if current.get("PerformanceMode") != self.performance_mode:
            fixed.append(f"performance mode is {current.get('PerformanceMode')}, wanted {self.performance_mode}")
        if fixed:
            raise EfsSpecError(
                f"file system {current.get('FileSystemId')}: "
                + "; ".join(fixed)
                + ". EFS cannot change these after creation: create a new file system and copy the data "
                "(or set the values back)."
            )
        update: dict[str, Any] = {}
        if current.get("ThroughputMode") != self.throughput_mode:
            update["ThroughputMode"] = self.throughput_mode
        if (
            self.throughput_mode == "provisioned"
            and current.get("ProvisionedThroughputInMibps") != self.provisioned_mibps
        ):
            update["ProvisionedThroughputInMibps"] = self.provisioned_mibps
        return update


@dataclass
class MountTargetPlan:
    """Mount targets to create (subnet -> security groups), delete (ids) and regroup (id -> groups)."""

    create: dict[str, list[str]] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    regroup: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.create or self.delete or self.regroup)


def mount_target_plan(
    current: Sequence[Mapping[str, Any]],
    groups_of: Mapping[str, Sequence[str]],
    wanted: Mapping[str, Sequence[str]],
) -> MountTargetPlan:
    """Plan the mount targets: ``current`` are DescribeMountTargets items, ``groups_of`` maps their ids to
    their security groups, ``wanted`` maps subnet ids to security groups. One mount target per subnet;
    those in subnets no longer wanted are deleted, groups are set in place (no re-creation)."""
    plan = MountTargetPlan()
    by_subnet = {str(mt["SubnetId"]): mt for mt in current if mt.get("LifeCycleState") not in ("deleting", "deleted")}
    for subnet, groups in wanted.items():
        if not groups:
            raise EfsSpecError(f"mount target in {subnet}: give at least one security group (its own EFS group).")
        if len(groups) > 5:
            raise EfsSpecError(f"mount target in {subnet}: at most 5 security groups, got {len(groups)}.")
        existing = by_subnet.get(subnet)
        if existing is None:
            plan.create[subnet] = sorted(groups)
        elif sorted(groups_of.get(str(existing["MountTargetId"]), [])) != sorted(groups):
            plan.regroup[str(existing["MountTargetId"])] = sorted(groups)
    plan.delete = sorted(str(mt["MountTargetId"]) for subnet, mt in by_subnet.items() if subnet not in wanted)
    return plan


@dataclass(frozen=True)
class AccessPointSpec:
    """The app's access point: every request as uid/gid, rooted at ``path`` created with these perms."""

    name: str
    uid: int
    gid: int
    path: str
    permissions: str

    def __post_init__(self) -> None:
        for what, value in (("uid", self.uid), ("gid", self.gid)):
            if not 0 <= value <= 4294967295:
                raise EfsSpecError(f"access point {what} {value} is outside 0-4294967295.")
        if self.uid == 0 or self.gid == 0:
            raise EfsSpecError("access point uid/gid 0 would make every client root on the share; use the app's user.")
        if not self.path.startswith("/") or "//" in self.path or len(self.path) > 100:
            raise EfsSpecError(
                f"access point path {self.path!r} must be absolute, without '//', at most 100 characters."
            )
        if len(self.permissions) not in (3, 4) or any(c not in "01234567" for c in self.permissions):
            raise EfsSpecError(f"access point permissions {self.permissions!r} must be octal like 0750.")
        if int(self.permissions, 8) & 0o007:
            raise EfsSpecError(
                f"access point permissions {self.permissions} give other users access to the uploads; "
                "use 0750 or stricter."
            )

    def create_params(self, file_system_id: str, tags: Mapping[str, str]) -> dict[str, Any]:
        return {
            "ClientToken": self.name,
            "FileSystemId": file_system_id,
            "PosixUser": {"Uid": self.uid, "Gid": self.gid},
            "RootDirectory": {
                "Path": self.path,
                "CreationInfo": {"OwnerUid": self.uid, "OwnerGid": self.gid, "Permissions": self.permissions},
            },
            "Tags": [{"Key": k, "Value": str(v)} for k, v in {**tags, "Name": self.name}.items()],
        }

    def differences(self, current: Mapping[str, Any]) -> list[str]:
        """What an existing access point (DescribeAccessPoints item) has otherwise; access points are immutable."""
        found: list[str] = []
        posix = current.get("PosixUser") or {}
        if (posix.get("Uid"), posix.get("Gid")) != (self.uid, self.gid):
            found.append(f"uid/gid {posix.get('Uid')}/{posix.get('Gid')}, wanted {self.uid}/{self.gid}")
        root = current.get("RootDirectory") or {}
        if root.get("Path") != self.path:
            found.append(f"path {root.get('Path')}, wanted {self.path}")
        info = root.get("CreationInfo") or {}
        wanted_info = (self.uid, self.gid, self.permissions.zfill(4))
        if (info.get("OwnerUid"), info.get("OwnerGid"), str(info.get("Permissions", "")).zfill(4)) != wanted_info:
            found.append("root directory owner/permissions differ")
        return found


def file_system_policy(
    file_system_arn: str,
    access_point_arn: str,
    principals: Sequence[str],
    require_tls: bool,
    deny_anonymous: bool,
) -> dict[str, Any]:
    """The file system policy: the app's principals may mount and write, through a mount target and the
    access point only; with ``deny_anonymous`` nobody else (no anonymous client) is allowed; with
    ``require_tls`` every request without TLS is denied."""
    condition: dict[str, Any] = {
        "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
        "StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn},
    }
    statements: list[dict[str, Any]] = []
    if deny_anonymous:
        if not principals:
            raise EfsSpecError("deny_anonymous needs the principals (the instance role ARN) that may mount.")
        statements.append(
            {
                "Sid": "AppMountsThroughItsAccessPoint",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(principals)},
                "Action": list(CLIENT_ACTIONS),
                "Resource": file_system_arn,
                "Condition": condition,
            }
        )
    else:
        statements.append(
            {
                "Sid": "AnyClientOfAMountTarget",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": list(CLIENT_ACTIONS),
                "Resource": file_system_arn,
                "Condition": condition,
            }
        )
    if require_tls:
        statements.append(
            {
                "Sid": "DenyWithoutTls",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                "Resource": file_system_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )
    return {"Version": "2012-10-17", "Id": "gearlift-efs", "Statement": statements}


def _normal(value: Any) -> Any:
    """A policy value in a comparable form: one-item lists as the item, lists sorted, "*" principal as AWS "*"."""
    if isinstance(value, Mapping):
        return {str(k): _normal({"AWS": "*"} if k == "Principal" and v == "*" else v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def policies_equal(current: str | Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether a stored policy (JSON text as DescribeFileSystemPolicy returns it) equals ``wanted``."""
    if current is None:
        return False
    if isinstance(current, str):
        try:
            current = json.loads(current)
        except ValueError:
            return False
    return _normal(current) == _normal(wanted)


def policy_requires_tls(policy: str | Mapping[str, Any] | None) -> bool:
    """Whether a file system policy denies requests without TLS (a Deny on aws:SecureTransport false)."""
    if not policy:
        return False
    data = json.loads(policy) if isinstance(policy, str) else policy
    statements = data.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in statements:
        if statement.get("Effect") != "Deny":
            continue
        flag = ((statement.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
        if str(flag).lower() == "false":
            return True
    return False
