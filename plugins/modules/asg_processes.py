#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_processes
short_description: Suspend an Auto Scaling group's scaling processes for an operation, and resume exactly those
version_added: 0.1.0
description:
  - O(state=suspended) suspends the O(processes) that are not suspended yet and records them on the group as the tag
    C(gearlift:suspended-processes) (compact JSON, not propagated to instances). The record is written before the
    processes are suspended, so a run that fails later leaves them known.
  - O(state=resumed) resumes exactly the recorded processes and removes the tag. A process suspended before the
    operation (not in the record) stays suspended. Without a record nothing changes.
  - Used by the rolling patch of C(gearlift.platform.fleet_patch), so that the group's own scaling (a target-tracking
    scale-in invoked once a minute while its low alarm is in ALARM, a scheduled action, AZ rebalancing) does not
    undo its surge or replace hosts while a batch is in Standby.
  - In check mode nothing is changed; the result and the diff show what would change.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  group_name:
    description: Name of the Auto Scaling group.
    type: str
    required: true
  state:
    description: C(suspended) suspends and records, C(resumed) resumes what was recorded.
    type: str
    choices: [suspended, resumed]
    default: suspended
  processes:
    description:
      - Process names to suspend with O(state=suspended).
      - C(Launch), C(Terminate), C(HealthCheck) and C(ReplaceUnhealthy) are refused unless O(allow_unsafe_processes).
    type: list
    elements: str
    default: [AlarmNotification, ScheduledActions, AZRebalance]
  allow_unsafe_processes:
    description: Allow suspending the processes that launch and replace hosts.
    type: bool
    default: false
  run:
    description: Id of the operation (recorded in the tag, for people).
    type: str
    default: ""
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: No scaling of its own while the fleet is patched
  gearlift.platform.asg_processes:
    group_name: shop-production
    run: "20261205-101500"
    region: eu-west-1

- name: The group scales again
  gearlift.platform.asg_processes:
    group_name: shop-production
    state: resumed
    region: eu-west-1
"""

RETURN = r"""
suspended:
  description: The processes suspended by this call (or that would be, in check mode).
  returned: always
  type: list
  elements: str
resumed:
  description: The processes resumed by this call (or that would be, in check mode).
  returned: always
  type: list
  elements: str
suspended_processes:
  description: Every process of the group suspended at the end (the planned set in check mode).
  returned: always
  type: list
  elements: str
record:
  description: The record on the group at the end (null without one).
  returned: always
  type: dict
  sample: {"processes": ["AZRebalance", "AlarmNotification", "ScheduledActions"], "run": "20261205-101500"}
diff:
  description: Suspended processes and record before and after.
  returned: in check mode or diff mode
  type: dict
"""

import contextlib
import json
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils import asg_processes as ap


def _aws_errors() -> tuple[type[BaseException], ...]:
    return (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


class ProcessesModule:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.p = module.params
        self.name = self.p["group_name"]
        self.client = module.client("autoscaling", retry_decorator=AWSRetry.jittered_backoff(retries=10))

    def describe(self) -> dict[str, Any]:
        try:
            found = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name], aws_retry=True)
        except _aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Could not describe the Auto Scaling group {self.name}")
        groups = found.get("AutoScalingGroups") or []
        if not groups:
            self.module.fail_json(msg=f"Auto Scaling group {self.name} not found: check group_name and region")
        group: dict[str, Any] = groups[0]
        return group

    def tag(self, record: ap.Record | None) -> None:
        ref = {"ResourceId": self.name, "ResourceType": "auto-scaling-group", "Key": ap.TAG_KEY}
        try:
            if record is None:
                self.client.delete_tags(Tags=[ref], aws_retry=True)
            else:
                self.client.create_or_update_tags(
                    Tags=[{**ref, "Value": record.encode(), "PropagateAtLaunch": False}], aws_retry=True
                )
        except _aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Could not write the record {ap.TAG_KEY} on {self.name}")

    def run(self) -> dict[str, Any]:
        group = self.describe()
        current = ap.suspended(group)
        try:
            record = ap.recorded(group)
        except ap.RecordError as e:
            self.module.fail_json(msg=f"{e}: check the tag on {self.name} and remove it by hand if no operation runs")
        if self.p["state"] == "suspended":
            plan = ap.plan_suspend(current, self.p["processes"], record, self.p["run"])
        else:
            plan = ap.plan_resume(current, record)
        after = (current | set(plan.suspend)) - set(plan.resume)
        result: dict[str, Any] = {
            "changed": plan.changed or (record is not None and plan.record is None and self.p["state"] == "resumed"),
            "suspended": list(plan.suspend),
            "resumed": list(plan.resume),
            "suspended_processes": sorted(after),
            "record": json.loads(plan.record.encode()) if plan.record else None,
        }
        if self.module._diff or self.module.check_mode:
            result["diff"] = {
                "before": {"suspended_processes": sorted(current), "record": record.encode() if record else None},
                "after": {
                    "suspended_processes": sorted(after),
                    "record": plan.record.encode() if plan.record else None,
                },
            }
        if self.module.check_mode or not result["changed"]:
            return result
        if self.p["state"] == "suspended":
            self.tag(plan.record)  # recorded first: a failure from here on leaves the suspension known
            try:
                self.client.suspend_processes(
                    AutoScalingGroupName=self.name, ScalingProcesses=list(plan.suspend), aws_retry=True
                )
            except _aws_errors() as e:
                self.module.fail_json_aws(e, msg=f"Could not suspend {', '.join(plan.suspend)} on {self.name}")
        else:
            if plan.resume:
                try:
                    self.client.resume_processes(
                        AutoScalingGroupName=self.name, ScalingProcesses=list(plan.resume), aws_retry=True
                    )
                except _aws_errors() as e:
                    self.module.fail_json_aws(
                        e, msg=f"Could not resume {', '.join(plan.resume)} on {self.name}; the record stays"
                    )
            self.tag(None)
        return result


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            group_name=dict(type="str", required=True),
            state=dict(type="str", choices=["suspended", "resumed"], default="suspended"),
            processes=dict(
                type="list", elements="str", default=["AlarmNotification", "ScheduledActions", "AZRebalance"]
            ),
            allow_unsafe_processes=dict(type="bool", default=False),
            run=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["group_name"].strip():
        module.fail_json(msg="group_name must not be empty")
    if p["state"] == "suspended":
        if not p["processes"]:
            module.fail_json(msg="processes must name at least one process to suspend")
        reasons = ap.check_names(p["processes"], p["allow_unsafe_processes"])
        if reasons:
            module.fail_json(msg=f"Refusing to suspend processes on {p['group_name']}: " + "; ".join(reasons))
    module.exit_json(**ProcessesModule(module).run())


if __name__ == "__main__":
    main()
