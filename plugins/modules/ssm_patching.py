#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ssm_patching
short_description: Converge an SSM Patch Manager baseline, its patch group and a patching maintenance window
version_added: 0.1.0
description:
  - The managed patching path of the fleet. Converges, by name, one patch baseline (operating system, approval
    rules, global filters), registers it for a patch group, and one maintenance window (schedule, duration,
    cut-off) whose target is the instances tagged with that patch group and whose task runs
    C(AWS-RunPatchBaseline).
  - Each part is read first (C(GetPatchBaseline), C(GetPatchBaselineForPatchGroup), C(GetMaintenanceWindow),
    C(DescribeMaintenanceWindowTargets), C(DescribeMaintenanceWindowTasks)) and written only where it differs; a
    window target or task that differs is registered anew.
  - Refused before any AWS call, with the reason - an approval delay (O(baseline.approval_rules[].approve_after_days))
    for Ubuntu or Debian (Patch Manager approves their patches at once; the window's schedule bounds the time to
    install), a window schedule that is neither C(cron(...)) nor C(rate(...)), a rate of more than
    O(max_days_between_runs) days, a cut-off not shorter than the duration, a reboot of hosts in service
    (O(window.reboot_option=RebootIfNeeded)) or more than one host at a time (O(window.max_concurrency)) without
    their override, malformed concurrency or error thresholds.
  - In check mode only C(Get*)/C(Describe*) calls are made; the result says what would change.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  baseline:
    description: The patch baseline.
    type: dict
    required: true
    suboptions:
      name:
        description: Baseline name (unique in the account and region).
        type: str
        required: true
      operating_system:
        description: Operating system of the baseline.
        type: str
        default: UBUNTU
        choices: [UBUNTU, DEBIAN, AMAZON_LINUX_2, AMAZON_LINUX_2023, REDHAT_ENTERPRISE_LINUX]
      description:
        description: Baseline description.
        type: str
        default: ""
      approval_rules:
        description: Approval rules, in order.
        type: list
        elements: dict
        required: true
        suboptions:
          patch_filters:
            description: Filter key (C(PRIORITY), C(SECTION), C(PRODUCT), C(CLASSIFICATION), ...) to values.
            type: dict
            required: true
          compliance_level:
            description: Compliance severity of the patches the rule approves.
            type: str
            default: UNSPECIFIED
            choices: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNSPECIFIED]
          approve_after_days:
            description: Days after release before approval (not for Ubuntu or Debian).
            type: int
          enable_non_security:
            description: Also approve non-security updates of the repositories.
            type: bool
            default: false
      global_filters:
        description: Filter key to values applied before the rules.
        type: dict
        default: {}
  patch_group:
    description: Patch group the baseline is registered for; the window targets instances tagged C(Patch Group=<this>).
    type: str
    required: true
  window:
    description: The maintenance window that patches the patch group.
    type: dict
    required: true
    suboptions:
      name:
        description: Window name (unique in the account and region).
        type: str
        required: true
      description:
        description: Window description.
        type: str
        default: ""
      schedule:
        description: C(cron(...)) or C(rate(...)) expression.
        type: str
        required: true
      schedule_timezone:
        description: IANA time zone of the schedule.
        type: str
        default: UTC
      duration:
        description: Hours the window lasts (1-24).
        type: int
        default: 3
      cutoff:
        description: Hours before the end when no new task starts (shorter than the duration).
        type: int
        default: 1
      operation:
        description: C(Install) patches or only C(Scan) for compliance.
        type: str
        default: Install
        choices: [Install, Scan]
      reboot_option:
        description:
          - C(AWS-RunPatchBaseline)'s RebootOption.
          - C(RebootIfNeeded) is refused unless O(window.allow_undrained_reboot) is set - the window reboots
            in-service hosts without a drain (no Standby, no deregistration); reboots go through
            C(playbooks/patch.yml) (which drains each host) or a new golden image.
        type: str
        default: NoReboot
        choices: [RebootIfNeeded, NoReboot]
      allow_undrained_reboot:
        description: Accept C(RebootIfNeeded) although the window reboots hosts that are in service.
        type: bool
        default: false
      max_concurrency:
        description:
          - How many instances are patched at once (a number or a percentage).
          - Anything but C(1) is refused unless O(window.allow_unsafe_concurrency) is set - the window knows neither the
            group's size nor its minimum and cannot add capacity first.
        type: str
        default: "1"
      allow_unsafe_concurrency:
        description: Accept a O(window.max_concurrency) other than C(1).
        type: bool
        default: false
      max_errors:
        description: Errors after which the task stops (a number or a percentage).
        type: str
        default: "0"
  max_days_between_runs:
    description: The longest gap between two runs a C(rate(...)) schedule may have (the approval-to-install bound).
    type: int
    default: 7
  tags:
    description: Tags of the baseline and the window when they are created.
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Security updates for the Ubuntu fleet every Sunday night, one host at a time
  gearlift.platform.ssm_patching:
    baseline:
      name: shop-production-ubuntu
      operating_system: UBUNTU
      description: Security updates; critical ones flagged CRITICAL
      approval_rules:
        - patch_filters: {PRIORITY: [Required, Important], SECTION: ["*"]}
          compliance_level: CRITICAL
        - patch_filters: {PRIORITY: [Standard, Optional, Extra], SECTION: ["*"]}
          compliance_level: HIGH
    patch_group: shop-production
    window:
      name: shop-production-patching
      schedule: cron(0 3 ? * SUN *)
      duration: 3
      cutoff: 1
    region: eu-west-1
"""

RETURN = r"""
baseline_id:
  description: Id of the patch baseline (null in check mode when it would be created).
  returned: always
  type: str
window_id:
  description: Id of the maintenance window (null in check mode when it would be created).
  returned: always
  type: str
window_target_id:
  description: Id of the window's target.
  returned: always
  type: str
window_task_id:
  description: Id of the window's AWS-RunPatchBaseline task.
  returned: always
  type: str
changes:
  description: What changed (or would change in check mode).
  returned: always
  type: list
  elements: str
"""

import contextlib
import re
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils.patch_window import window_errors

TASK_DOCUMENT = "AWS-RunPatchBaseline"
NO_APPROVAL_DELAY = ("UBUNTU", "DEBIAN")


def guard_errors(params: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    baseline, window = params["baseline"], params["window"]
    if not baseline["approval_rules"]:
        errors.append("baseline.approval_rules must not be empty (a baseline that approves nothing patches nothing)")
    for index, rule in enumerate(baseline["approval_rules"]):
        if rule.get("approve_after_days") is not None and baseline["operating_system"] in NO_APPROVAL_DELAY:
            errors.append(
                f"baseline.approval_rules[{index}].approve_after_days is not supported for "
                f"{baseline['operating_system']} by Patch Manager (it approves at once); the window's schedule bounds "
                "how long an approved patch waits"
            )
        if not rule["patch_filters"]:
            errors.append(f"baseline.approval_rules[{index}].patch_filters must not be empty")
    schedule = window["schedule"].strip()
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", schedule)
    if not (schedule.startswith("cron(") and schedule.endswith(")")) and rate is None:
        errors.append(f"window.schedule must be cron(...) or rate(...), got {schedule!r}")
    if rate is not None and rate.group(2).startswith("day") and int(rate.group(1)) > params["max_days_between_runs"]:
        errors.append(
            f"window.schedule runs every {rate.group(1)} days, more than max_days_between_runs "
            f"({params['max_days_between_runs']}): approved patches would wait longer than that"
        )
    if not 1 <= window["duration"] <= 24:
        errors.append(f"window.duration must be 1-24 hours, got {window['duration']}")
    if not 0 <= window["cutoff"] < window["duration"]:
        errors.append(f"window.cutoff ({window['cutoff']}) must be at least 0 and shorter than the duration")
    errors.extend(window_errors(window))
    return errors


def _filters(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"Key": key, "Values": sorted(str(v) for v in (values if isinstance(values, list) else [values]))}
        for key, values in sorted(mapping.items())
    ]


def desired_baseline(baseline: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in baseline["approval_rules"]:
        wanted: dict[str, Any] = {
            "PatchFilterGroup": {"PatchFilters": _filters(rule["patch_filters"])},
            "ComplianceLevel": rule["compliance_level"],
            "EnableNonSecurity": bool(rule["enable_non_security"]),
        }
        if rule.get("approve_after_days") is not None:
            wanted["ApproveAfterDays"] = rule["approve_after_days"]
        rules.append(wanted)
    out: dict[str, Any] = {"ApprovalRules": {"PatchRules": rules}}
    if baseline["description"]:
        out["Description"] = baseline["description"]  # the API takes no empty description
    out["GlobalFilters"] = {"PatchFilters": _filters(baseline["global_filters"] or {})}
    return out


def normalized_baseline(current: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in (current.get("ApprovalRules") or {}).get("PatchRules") or []:
        filters = {f["Key"]: f["Values"] for f in (rule.get("PatchFilterGroup") or {}).get("PatchFilters") or []}
        got: dict[str, Any] = {
            "PatchFilterGroup": {"PatchFilters": _filters(filters)},
            "ComplianceLevel": rule.get("ComplianceLevel") or "UNSPECIFIED",
            "EnableNonSecurity": bool(rule.get("EnableNonSecurity")),
        }
        if rule.get("ApproveAfterDays") is not None:
            got["ApproveAfterDays"] = rule["ApproveAfterDays"]
        rules.append(got)
    globals_ = {f["Key"]: f["Values"] for f in (current.get("GlobalFilters") or {}).get("PatchFilters") or []}
    out: dict[str, Any] = {"ApprovalRules": {"PatchRules": rules}}
    if current.get("Description"):
        out["Description"] = current["Description"]
    out["GlobalFilters"] = {"PatchFilters": _filters(globals_)}
    return out


def desired_task(params: dict[str, Any], target_id: str | None) -> dict[str, Any]:
    window = params["window"]
    return {
        "TaskArn": TASK_DOCUMENT,
        "TaskType": "RUN_COMMAND",
        "MaxConcurrency": window["max_concurrency"],
        "MaxErrors": window["max_errors"],
        "Targets": [{"Key": "WindowTargetIds", "Values": [target_id or "(new)"]}],
        "Parameters": {"Operation": [window["operation"]], "RebootOption": [window["reboot_option"]]},
    }


class Patching:
    def __init__(self, module: AnsibleAWSModule) -> None:
        self.module = module
        self.p = module.params
        self.ssm = module.client("ssm", retry_decorator=AWSRetry.jittered_backoff(retries=10))
        self.check = module.check_mode
        self.changes: list[str] = []

    def fail(self, exc: Exception, msg: str) -> None:
        self.module.fail_json_aws(exc, msg=msg, changes=self.changes)

    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": str(k), "Value": str(v)} for k, v in sorted((self.p["tags"] or {}).items())]

    # --------------------------------------------------------------- baseline
    def baseline(self) -> str | None:
        b = self.p["baseline"]
        desired = desired_baseline(b)
        try:
            found = self.ssm.describe_patch_baselines(
                Filters=[{"Key": "NAME_PREFIX", "Values": [b["name"]]}], aws_retry=True
            ).get("BaselineIdentities", [])
            existing = next((x for x in found if x.get("BaselineName") == b["name"]), None)
            if existing is None:
                self.changes.append(f"create patch baseline {b['name']}")
                if self.check:
                    return None
                kwargs: dict[str, Any] = dict(Name=b["name"], OperatingSystem=b["operating_system"], **desired)
                if self.tag_list():
                    kwargs["Tags"] = self.tag_list()
                baseline_id: str = self.ssm.create_patch_baseline(aws_retry=True, **kwargs)["BaselineId"]
                return baseline_id
            baseline_id = existing["BaselineId"]
            current = self.ssm.get_patch_baseline(BaselineId=baseline_id, aws_retry=True)
            if current.get("OperatingSystem") != b["operating_system"]:
                self.module.fail_json(
                    msg=f"patch baseline {b['name']} exists for {current.get('OperatingSystem')}, not "
                    f"{b['operating_system']}: choose another name (a baseline's operating system cannot change)"
                )
            if normalized_baseline(current) != desired:
                self.changes.append(f"update patch baseline {b['name']}")
                if not self.check:
                    self.ssm.update_patch_baseline(BaselineId=baseline_id, aws_retry=True, **desired)
            return baseline_id
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not converge patch baseline {b['name']}")
        return None

    def patch_group(self, baseline_id: str | None) -> None:
        group, system = self.p["patch_group"], self.p["baseline"]["operating_system"]
        try:
            current = self.ssm.get_patch_baseline_for_patch_group(
                PatchGroup=group, OperatingSystem=system, aws_retry=True
            ).get("BaselineId")
            if baseline_id is not None and current == baseline_id:
                return
            registered = current in self._own_baselines()
            self.changes.append(f"register patch group {group} with the baseline")
            if self.check or baseline_id is None:
                return
            if registered:
                self.ssm.deregister_patch_baseline_for_patch_group(BaselineId=current, PatchGroup=group, aws_retry=True)
            self.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not register patch group {group}")

    def _own_baselines(self) -> set[str]:
        found = self.ssm.describe_patch_baselines(aws_retry=True).get("BaselineIdentities", [])
        return {x["BaselineId"] for x in found if not str(x["BaselineId"]).startswith("arn:")}

    # ----------------------------------------------------------------- window
    def window(self) -> str | None:
        w = self.p["window"]
        desired: dict[str, Any] = {
            "Schedule": w["schedule"],
            "ScheduleTimezone": w["schedule_timezone"],
            "Duration": w["duration"],
            "Cutoff": w["cutoff"],
        }
        if w["description"]:
            desired["Description"] = w["description"]  # the API takes no empty description
        try:
            found = self.ssm.describe_maintenance_windows(
                Filters=[{"Key": "Name", "Values": [w["name"]]}], aws_retry=True
            ).get("WindowIdentities", [])
            existing = next((x for x in found if x.get("Name") == w["name"]), None)
            if existing is None:
                self.changes.append(f"create maintenance window {w['name']}")
                if self.check:
                    return None
                kwargs: dict[str, Any] = dict(Name=w["name"], AllowUnassociatedTargets=False, **desired)
                if self.tag_list():
                    kwargs["Tags"] = self.tag_list()
                window_id: str = self.ssm.create_maintenance_window(aws_retry=True, **kwargs)["WindowId"]
                return window_id
            window_id = existing["WindowId"]
            current = self.ssm.get_maintenance_window(WindowId=window_id, aws_retry=True)
            got = {key: current.get(key) for key in desired}
            if got != desired:
                self.changes.append(f"update maintenance window {w['name']}")
                if not self.check:
                    self.ssm.update_maintenance_window(WindowId=window_id, aws_retry=True, **desired)
            return window_id
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not converge maintenance window {w['name']}")
        return None

    def target(self, window_id: str | None) -> str | None:
        name = f"{self.p['window']['name']}-targets"
        wanted = [{"Key": "tag:Patch Group", "Values": [self.p["patch_group"]]}]
        try:
            found = (
                self.ssm.describe_maintenance_window_targets(WindowId=window_id, aws_retry=True).get("Targets", [])
                if window_id
                else []
            )
            existing = next((t for t in found if t.get("Name") == name), None)
            if existing is not None and existing.get("Targets") == wanted:
                return str(existing["WindowTargetId"])
            self.changes.append(
                f"register the window target {name} (instances tagged Patch Group={self.p['patch_group']})"
            )
            if self.check or window_id is None:
                return None
            if existing is not None:
                self.ssm.deregister_target_from_maintenance_window(
                    WindowId=window_id, WindowTargetId=existing["WindowTargetId"], Safe=False, aws_retry=True
                )
            target_id: str = self.ssm.register_target_with_maintenance_window(
                WindowId=window_id, ResourceType="INSTANCE", Targets=wanted, Name=name, aws_retry=True
            )["WindowTargetId"]
            return target_id
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not register the window target {name}")
        return None

    def task(self, window_id: str | None, target_id: str | None) -> str | None:
        name = f"{self.p['window']['name']}-run-patch-baseline"
        wanted = desired_task(self.p, target_id)
        try:
            found = (
                self.ssm.describe_maintenance_window_tasks(WindowId=window_id, aws_retry=True).get("Tasks", [])
                if window_id
                else []
            )
            existing = next((t for t in found if t.get("Name") == name), None)
            if existing is not None:
                # DescribeMaintenanceWindowTasks leaves the invocation parameters out: read the task.
                task = self.ssm.get_maintenance_window_task(
                    WindowId=window_id, WindowTaskId=existing["WindowTaskId"], aws_retry=True
                )
                got = {
                    "TaskArn": task.get("TaskArn"),
                    "TaskType": task.get("TaskType"),
                    "MaxConcurrency": task.get("MaxConcurrency"),
                    "MaxErrors": task.get("MaxErrors"),
                    "Targets": task.get("Targets"),
                    "Parameters": ((task.get("TaskInvocationParameters") or {}).get("RunCommand") or {}).get(
                        "Parameters"
                    ),
                }
                if got == wanted:
                    return str(existing["WindowTaskId"])
            self.changes.append(f"register the window task {name} ({TASK_DOCUMENT} {self.p['window']['operation']})")
            if self.check or window_id is None or target_id is None:
                return None
            if existing is not None:
                self.ssm.deregister_task_from_maintenance_window(
                    WindowId=window_id, WindowTaskId=existing["WindowTaskId"], aws_retry=True
                )
            task_id: str = self.ssm.register_task_with_maintenance_window(
                WindowId=window_id,
                Name=name,
                TaskArn=TASK_DOCUMENT,
                TaskType="RUN_COMMAND",
                Targets=wanted["Targets"],
                MaxConcurrency=wanted["MaxConcurrency"],
                MaxErrors=wanted["MaxErrors"],
                Priority=1,
                TaskInvocationParameters={"RunCommand": {"Parameters": wanted["Parameters"]}},
                aws_retry=True,
            )["WindowTaskId"]
            return task_id
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not register the window task {name}")
        return None

    def run(self) -> None:
        baseline_id = self.baseline()
        self.patch_group(baseline_id)
        window_id = self.window()
        target_id = self.target(window_id)
        task_id = self.task(window_id, target_id)
        self.module.exit_json(
            changed=bool(self.changes),
            changes=self.changes,
            baseline_id=baseline_id,
            window_id=window_id,
            window_target_id=target_id,
            window_task_id=task_id,
        )


def argument_spec() -> dict[str, Any]:
    return dict(
        baseline=dict(
            type="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                operating_system=dict(
                    type="str",
                    default="UBUNTU",
                    choices=["UBUNTU", "DEBIAN", "AMAZON_LINUX_2", "AMAZON_LINUX_2023", "REDHAT_ENTERPRISE_LINUX"],
                ),
                description=dict(type="str", default=""),
                approval_rules=dict(
                    type="list",
                    elements="dict",
                    required=True,
                    options=dict(
                        patch_filters=dict(type="dict", required=True),
                        compliance_level=dict(
                            type="str",
                            default="UNSPECIFIED",
                            choices=["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"],
                        ),
                        approve_after_days=dict(type="int"),
                        enable_non_security=dict(type="bool", default=False),
                    ),
                ),
                global_filters=dict(type="dict", default={}),
            ),
        ),
        patch_group=dict(type="str", required=True),
        window=dict(
            type="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                description=dict(type="str", default=""),
                schedule=dict(type="str", required=True),
                schedule_timezone=dict(type="str", default="UTC"),
                duration=dict(type="int", default=3),
                cutoff=dict(type="int", default=1),
                operation=dict(type="str", default="Install", choices=["Install", "Scan"]),
                reboot_option=dict(type="str", default="NoReboot", choices=["RebootIfNeeded", "NoReboot"]),
                allow_undrained_reboot=dict(type="bool", default=False),
                max_concurrency=dict(type="str", default="1"),
                allow_unsafe_concurrency=dict(type="bool", default=False),
                max_errors=dict(type="str", default="0"),
            ),
        ),
        max_days_between_runs=dict(type="int", default=7),
        tags=dict(type="dict", default={}),
    )


def main() -> None:
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    errors = guard_errors(module.params)
    if errors:
        module.fail_json(msg="ssm_patching refused the settings: " + "; ".join(errors), guard_errors=errors)
    Patching(module).run()


if __name__ == "__main__":
    main()
