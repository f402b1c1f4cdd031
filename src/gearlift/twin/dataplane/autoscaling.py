"""Auto Scaling: the service's health and replacement loop, which moto lacks.

An instance that was terminated, or that its load balancer reports unhealthy past the grace
period when the group uses ELB health checks, is replaced through the Auto Scaling API, and
the group's in-service instances are kept registered in its target groups.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round

Log = Callable[[str], None]


class AsgController:
    """Plays the Auto Scaling service's health/replacement loop that moto lacks."""

    def __init__(self, clients: Clients, log: Log) -> None:
        self.clients = clients
        self.log = log

    def groups(self) -> list[dict[str, Any]]:
        return paginate(self.clients("autoscaling"), "describe_auto_scaling_groups", "AutoScalingGroups")

    def reconcile(self, round_: Round) -> None:
        self.replace_and_register(round_.instances, round_.unhealthy, round_.launched_at)

    def replace_and_register(
        self,
        instances: dict[str, dict[str, Any]],
        unhealthy_targets: set[str],
        launched_at: dict[str, float],
    ) -> None:
        asg = self.clients("autoscaling")
        for group in self.groups():
            grace = float(group.get("HealthCheckGracePeriod", 0) or 0)
            elb_checks = group.get("HealthCheckType") == "ELB"
            for member in group.get("Instances", []):
                iid = member["InstanceId"]
                if iid not in instances:
                    continue  # launched after the EC2 listing this round saw: judged next round
                state = instances[iid].get("State", {}).get("Name", "terminated")
                reason = None
                if state in ("terminated", "shutting-down", "stopped", "stopping"):
                    reason = f"EC2 state {state}"
                elif elb_checks and iid in unhealthy_targets and time.monotonic() - launched_at.get(iid, 0.0) > grace:
                    reason = "ELB health check failed"
                if reason is None:
                    continue
                self.log(f"autoscaling: {group['AutoScalingGroupName']}: replacing {iid} ({reason})")
                asg.set_instance_health(InstanceId=iid, HealthStatus="Unhealthy")
                asg.terminate_instance_in_auto_scaling_group(InstanceId=iid, ShouldDecrementDesiredCapacity=False)
            self._sync_target_groups(group["AutoScalingGroupName"])

    def _sync_target_groups(self, name: str) -> None:
        asg = self.clients("autoscaling")
        elbv2 = self.clients("elbv2")
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        # The group registers instances in service; Standby ones stay out (patching, troubleshooting).
        members = {m["InstanceId"] for m in group.get("Instances", []) if m.get("LifecycleState") == "InService"}
        standby = {m["InstanceId"] for m in group.get("Instances", []) if m.get("LifecycleState") != "InService"}
        for tg_arn in group.get("TargetGroupARNs", []):
            tg = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
            registered = {
                d["Target"]["Id"]
                for d in elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
                if d.get("TargetHealth", {}).get("State") != "draining"
            }
            add = sorted(members - registered)
            # Targets that left the group; Standby ones were deregistered by the group itself.
            gone = sorted(registered - members - standby)
            if add:
                elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": i, "Port": tg["Port"]} for i in add])
            if gone:
                elbv2.deregister_targets(TargetGroupArn=tg_arn, Targets=[{"Id": i} for i in gone])
