#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_surge
short_description: Add a recorded surge of capacity to an Auto Scaling group, and settle it
version_added: 0.1.0
description:
  - O(state=present) raises the group's desired capacity by O(count) above its current value, waits until the
    O(count) new instances are C(InService) and records the surge on the group as the tag C(gearlift:surge), not
    propagated to instances. The tag holds compact JSON with the desired capacity before the surge (C(baseline)),
    C(count), the new C(instances) and the O(run). The record is written before the desired capacity changes and
    completed after, so a run that fails later leaves the surge known.
  - A recorded surge whose instances are all still in the group is not repeated (C(changed=false)).
  - O(state=absent) settles exactly the recorded instances. They are drained first - EnterStandby with
    C(ShouldDecrementDesiredCapacity=true), which takes the desired capacity back to the baseline and makes the
    group deregister them from its target groups; the module waits until the targets are gone - then terminated with
    TerminateInstanceInAutoScalingGroup (C(ShouldDecrementDesiredCapacity=false), a host in Standby no longer counts
    in the desired capacity). It waits until they have left the group, checks that the desired capacity is back at
    the recorded baseline and removes the tag. Without a record nothing changes.
  - Used by the rolling patch of C(gearlift.platform.fleet_patch) so that a group at its minimum size keeps at least
    its minimum in service while a batch of hosts is in Standby.
  - In check mode nothing is changed; the result and the diff show what would change.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  group_name:
    description: Name of the Auto Scaling group.
    type: str
    required: true
  state:
    description: C(present) adds (or keeps) the surge, C(absent) settles it.
    type: str
    choices: [present, absent]
    default: present
  count:
    description:
      - Instances to add above the current desired capacity (at least 1). Required with O(state=present).
      - Refused before any change when the desired capacity plus O(count) passes the group's max size.
    type: int
  run:
    description: Id of the operation the surge is for (recorded in the tag, for the report and for people).
    type: str
    default: ""
  wait_timeout:
    description:
      - Seconds to wait until the new instances are C(InService) (O(state=present)) or have left the group
        (O(state=absent)).
    type: int
    default: 600
notes:
  - The tag value is limited to 256 characters by AWS; a surge that cannot be recorded in it is refused before any
    change.
  - O(state=absent) needs C(elasticloadbalancing:DescribeTargetHealth) besides the Auto Scaling permissions, to wait
    for the drain.
  - O(state=absent) refuses, before any change, a settle that would leave fewer instances in service than the group's
    minimum (hosts still in Standby, a replacement not yet in service); return them to service first.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: One more host in service for the length of the patch run
  gearlift.platform.asg_surge:
    group_name: shop-production
    count: 1
    run: "20261204-221500"
    wait_timeout: 600
    region: eu-west-1
  register: surge

- name: Settle the surge (its instances are terminated, the desired capacity is back at the baseline)
  gearlift.platform.asg_surge:
    group_name: shop-production
    state: absent
    region: eu-west-1
"""

RETURN = r"""
surge:
  description: The surge recorded on the group (after the change; the one settled with O(state=absent)); null if none.
  returned: always
  type: dict
  sample: {"baseline": 2, "count": 1, "instances": ["i-0123456789abcdef0"], "run": "20261204-221500"}
desired_capacity:
  description: The group's desired capacity at the end (the planned one in check mode).
  returned: always
  type: int
  sample: 3
min_size:
  description: The group's minimum size.
  returned: always
  type: int
max_size:
  description: The group's maximum size.
  returned: always
  type: int
in_service:
  description: Ids of the group's C(InService) instances at the end.
  returned: always
  type: list
  elements: str
terminated:
  description: The surge instances terminated (or that would be, in check mode) by O(state=absent).
  returned: always
  type: list
  elements: str
diff:
  description: Desired capacity and surge record before and after.
  returned: in check mode or diff mode
  type: dict
"""

import contextlib
import time
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils import surge as sg

POLL_SECONDS = 5


class SurgeModule:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.p = module.params
        self.name = self.p["group_name"]
        self.client = module.client("autoscaling", retry_decorator=AWSRetry.jittered_backoff(retries=10))

    # ------------------------------------------------------------------ AWS
    def describe(self) -> dict[str, Any]:
        try:
            found = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name], aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Could not describe the Auto Scaling group {self.name}")
        groups = found.get("AutoScalingGroups") or []
        if not groups:
            self.module.fail_json(msg=f"Auto Scaling group {self.name} not found: check group_name and region")
        group: dict[str, Any] = groups[0]
        return group

    def write_record(self, record: sg.Surge, **failure: Any) -> None:
        try:
            self.client.create_or_update_tags(
                Tags=[
                    {
                        "ResourceId": self.name,
                        "ResourceType": "auto-scaling-group",
                        "Key": sg.TAG_KEY,
                        "Value": record.encode(),
                        "PropagateAtLaunch": False,
                    }
                ],
                aws_retry=True,
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Could not record the surge on {self.name} ({sg.TAG_KEY})", **failure)

    def delete_record(self, **failure: Any) -> None:
        try:
            self.client.delete_tags(
                Tags=[{"ResourceId": self.name, "ResourceType": "auto-scaling-group", "Key": sg.TAG_KEY}],
                aws_retry=True,
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(
                e, msg=f"Could not remove the surge record {sg.TAG_KEY} from {self.name}", **failure
            )

    def wait(self, done: Any) -> sg.Waited:
        return sg.wait_until(
            self.describe,
            done,
            timeout=self.p["wait_timeout"],
            interval=POLL_SECONDS,
            clock=time.monotonic,
            sleep=time.sleep,
        )

    def wait_drained(self, target_groups: list[str], instance_ids: list[str]) -> bool:
        """Bounded wait until none of the instances is registered (or draining) in the group's target groups."""
        if not target_groups:
            return True
        elbv2 = self.module.client("elbv2", retry_decorator=AWSRetry.jittered_backoff(retries=10))

        def registered() -> dict[str, Any]:
            found: dict[str, str] = {}
            for arn in target_groups:
                try:
                    health = elbv2.describe_target_health(TargetGroupArn=arn, aws_retry=True)
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    self.module.fail_json_aws(e, msg=f"Could not read the targets of {arn}", changed=True)
                for d in health.get("TargetHealthDescriptions") or []:
                    found[d["Target"]["Id"]] = d.get("TargetHealth", {}).get("State", "")
            return found

        waited = sg.wait_until(
            registered,
            sg.drained(instance_ids),
            timeout=self.p["wait_timeout"],
            interval=POLL_SECONDS,
            clock=time.monotonic,
            sleep=time.sleep,
        )
        return waited.done

    def record_of(self, group: dict[str, Any]) -> sg.Surge | None:
        try:
            return sg.recorded(group)
        except sg.RecordError as e:
            self.module.fail_json(msg=f"{e}: check the tag on {self.name} and remove it by hand if no surge is running")
        return None  # not reached

    # ------------------------------------------------------------------ result
    def result(
        self, changed: bool, group: dict[str, Any], record: sg.Surge | None, before: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        desired = extra.pop("desired_capacity", group["DesiredCapacity"])
        after = {
            "desired_capacity": desired,
            "surge": record.as_dict() if record and self.p["state"] == "present" else None,
        }
        out: dict[str, Any] = {
            "changed": changed,
            "surge": record.as_dict() if record else None,
            "desired_capacity": desired,
            "min_size": group["MinSize"],
            "max_size": group["MaxSize"],
            "in_service": sg.in_service(group),
            "terminated": [],
            **extra,
        }
        if self.module._diff or self.module.check_mode:
            out["diff"] = {"before": before, "after": after}
        return out

    # ------------------------------------------------------------------ present
    def present(self) -> dict[str, Any]:
        count, run = self.p["count"], self.p["run"]
        group = self.describe()
        existing = self.record_of(group)
        before = {"desired_capacity": group["DesiredCapacity"], "surge": existing.as_dict() if existing else None}
        if existing is not None:
            keep, reason = sg.reuse(existing, group, count)
            if not keep:
                self.module.fail_json(msg=reason, surge=existing.as_dict())
            return self.result(False, group, existing, before)
        desired, max_size = group["DesiredCapacity"], group["MaxSize"]
        reasons = sg.check_request(count, run, desired, max_size)
        if reasons:
            self.module.fail_json(msg=f"Refusing the surge on {self.name}: " + "; ".join(reasons))
        record = sg.Surge(baseline=desired, instances=[], run=run, count=count)
        if self.module.check_mode:
            return self.result(True, group, record, before, desired_capacity=desired + count)
        existing_ids = [i["InstanceId"] for i in group.get("Instances") or []]
        # Recorded before the capacity changes: a failure from here on leaves a known surge.
        self.write_record(record)
        try:
            self.client.set_desired_capacity(
                AutoScalingGroupName=self.name, DesiredCapacity=desired + count, HonorCooldown=False, aws_retry=True
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.delete_record()
            self.module.fail_json_aws(
                e, msg=f"Could not raise the desired capacity of {self.name} to {desired + count}"
            )
        waited = self.wait(sg.surge_in_service(existing_ids, count))
        record.instances = sg.new_instances(existing_ids, waited.group, count)
        self.write_record(record, changed=True, surge=record.as_dict())
        if not waited.done:
            states = sg.members(waited.group)
            self.module.fail_json(
                msg=(
                    f"The surge of {count} on {self.name} is not in service after {self.p['wait_timeout']} s "
                    f"(new instances: {', '.join(f'{i} {states.get(i)}' for i in record.instances) or 'none yet'}). "
                    "It is recorded on the group; settle it with gearlift.platform.asg_surge state=absent."
                ),
                changed=True,
                surge=record.as_dict(),
            )
        return self.result(True, waited.group, record, before)

    # ------------------------------------------------------------------ absent
    def absent(self) -> dict[str, Any]:
        group = self.describe()
        existing = self.record_of(group)
        before = {"desired_capacity": group["DesiredCapacity"], "surge": existing.as_dict() if existing else None}
        if existing is None:
            return self.result(False, group, None, before)
        victims = sg.to_settle(existing, group)
        states = sg.members(group)
        to_standby = [i for i in victims if states.get(i) == sg.IN_SERVICE]
        desired, min_size = group["DesiredCapacity"], group["MinSize"]
        desired_after = desired - len(to_standby)
        staying = [i for i in sg.in_service(group) if i not in victims]
        if victims and (desired_after < min_size or len(staying) < min_size):
            self.module.fail_json(
                msg=(
                    f"Refusing to settle the surge on {self.name}: removing {', '.join(victims)} would leave "
                    f"{len(staying)} instance(s) in service and a desired capacity of {desired_after}, "
                    f"below the group's minimum {min_size}. Return the hosts in Standby to service (or wait for "
                    "their replacements to be in service) and settle again."
                ),
                surge=existing.as_dict(),
            )
        if self.module.check_mode:
            return self.result(True, group, existing, before, desired_capacity=desired_after, terminated=victims)
        failure = {"changed": True, "surge": existing.as_dict()}
        # Drained first: Standby with a decrement takes the desired capacity back to the baseline and the group
        # deregisters the hosts from its target groups (in-flight requests finish); then they are terminated
        # without a second decrement (a host in Standby no longer counts in the desired capacity).
        if to_standby:
            try:
                self.client.enter_standby(
                    AutoScalingGroupName=self.name,
                    InstanceIds=to_standby,
                    ShouldDecrementDesiredCapacity=True,
                    aws_retry=True,
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.module.fail_json_aws(
                    e, msg=f"Could not take the surge {', '.join(to_standby)} out of service", **failure
                )
            drained = self.wait_drained(group.get("TargetGroupARNs") or [], victims)
            if not drained:
                self.module.fail_json(
                    msg=(
                        f"The surge instances {', '.join(victims)} have not finished draining from the target groups "
                        f"of {self.name} after {self.p['wait_timeout']} s; they are in Standby and the surge stays "
                        "recorded: settle again."
                    ),
                    **failure,
                )
        for iid in victims:
            try:
                self.client.terminate_instance_in_auto_scaling_group(
                    InstanceId=iid, ShouldDecrementDesiredCapacity=False, aws_retry=True
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.module.fail_json_aws(
                    e,
                    msg=f"Could not terminate the surge instance {iid}; the surge stays recorded on {self.name}",
                    **failure,
                )
        waited = self.wait(sg.gone(victims))
        if not waited.done:
            self.module.fail_json(
                msg=(
                    f"The surge instances {', '.join(victims)} have not left {self.name} after "
                    f"{self.p['wait_timeout']} s; the surge stays recorded, settle again."
                ),
                changed=True,
                surge=existing.as_dict(),
            )
        final = waited.group
        if final["DesiredCapacity"] != existing.baseline:
            # Taken back to the baseline by the decrement, so only something else (a scaling policy, a person) moved it.
            self.module.warn(
                f"{self.name}: the desired capacity is {final['DesiredCapacity']} after the surge was settled, not "
                f"the baseline {existing.baseline} recorded before it (a scaling policy or a manual change moved it)."
            )
        self.delete_record(changed=True, surge=existing.as_dict())
        return self.result(
            True,
            final,
            existing,
            before,
            terminated=victims,
            baseline_restored=final["DesiredCapacity"] == existing.baseline,
        )


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            group_name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            count=dict(type="int"),
            run=dict(type="str", default=""),
            wait_timeout=dict(type="int", default=600),
        ),
        required_if=[("state", "present", ["count"])],
        supports_check_mode=True,
    )
    p = module.params
    if not p["group_name"].strip():
        module.fail_json(msg="group_name must not be empty")
    if p["state"] == "present" and p["count"] < 1:
        module.fail_json(msg=f"count must be at least 1 (got {p['count']}): a surge adds instances")
    if p["wait_timeout"] < 1:
        module.fail_json(msg=f"wait_timeout must be at least 1 second (got {p['wait_timeout']})")
    runner = SurgeModule(module)
    result = runner.present() if p["state"] == "present" else runner.absent()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
