"""Auto Scaling instance refresh in the twin's emulator (moto has no such API).

StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh and
RollbackInstanceRefresh answer with AWS's request and response shapes and
errors (InstanceRefreshInProgress, ActiveInstanceRefreshNotFound,
IrreversibleInstanceRefresh, ValidationError). The refresh itself runs as
AWS's Rolling strategy does, driven by ``tick_all`` (the emulator process
calls it every second):

* the instances that do not match the desired configuration (all of them
  without SkipMatching; Standby instances are left alone) are replaced in
  batches sized by MinHealthyPercentage / MaxHealthyPercentage: above 100 %
  the replacements are launched first, otherwise the old instances are taken
  out first;
* with SkipMatching the refresh ends only when every in-service instance
  matches: one the group launched meanwhile from its own configuration (a
  health-check replacement) is replaced as well;
* an old instance is deregistered from the group's target groups, drains for
  the target group's deregistration delay and is then terminated;
* a new instance counts once it is healthy (ELB health from the data plane's
  checks when the group uses ELB health checks) and its warmup has passed;
  one that is unhealthy after the health check grace period, leaves the
  group, or is not healthy within the grace period plus ``SETTLE_SECONDS``
  fails the refresh (AWS keeps retrying for a while first; the twin fails at
  the first replacement that does not come up);
* a failed refresh with AutoRollback rolls the replaced instances back to the
  group's configuration from before the refresh (RollbackInProgress, then
  RollbackSuccessful or RollbackFailed); without it, it ends Failed;
* on success the group takes the desired configuration (its launch template
  reference), as AWS applies it;
* CheckpointPercentages / CheckpointDelay pause the refresh, BakeTime keeps it
  ``Baking`` before Successful.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import ServiceException

from gearlift.twin.emulator.lifecycle import deregister_from_target_groups, launching_with, min_healthy, target_states

RUNNING = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
# How long after its grace period a new instance may stay short of healthy.
SETTLE_SECONDS = 120.0


class InstanceRefreshInProgress(ServiceException):
    code = "InstanceRefreshInProgress"
    message = "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."


class ActiveInstanceRefreshNotFound(ServiceException):
    code = "ActiveInstanceRefreshNotFound"
    message = "No in progress or pending Instance Refresh found for Auto Scaling group"


class IrreversibleInstanceRefresh(ServiceException):
    code = "IrreversibleInstanceRefresh"


class RefreshValidationError(ServiceException):
    code = "ValidationError"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Batch:
    olds: list[str]
    launch_first: bool
    phase: str  # launch (new ones first) | drain | wait (for the replacements)
    news: list[str] = field(default_factory=list)
    drain_until: float = 0.0


@dataclass
class Refresh:
    refresh_id: str
    group_name: str
    strategy: str
    preferences: dict[str, Any]
    desired: dict[str, Any] | None
    previous: dict[str, Any] | None
    pending: list[str]
    total: int
    status: str = "Pending"
    status_reason: str | None = None
    start: datetime = field(default_factory=_now)
    end: datetime | None = None
    done: int = 0
    batch: Batch | None = None
    launched: dict[str, float] = field(default_factory=dict)
    healthy_at: dict[str, float] = field(default_factory=dict)
    rollback: dict[str, Any] | None = None
    checkpoint_until: float = 0.0
    checkpoints_passed: set[int] = field(default_factory=set)
    bake_until: float = 0.0

    # ------------------------------------------------------------- describe
    @property
    def percentage(self) -> int:
        return 100 if self.total == 0 else int(self.done * 100 / self.total)

    @property
    def to_update(self) -> int:
        return max(self.total - self.done, 0)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "InstanceRefreshId": self.refresh_id,
            "AutoScalingGroupName": self.group_name,
            "Status": self.status,
            "StartTime": self.start,
            "Strategy": self.strategy,
            "Preferences": dict(self.preferences),
        }
        if self.status_reason:
            out["StatusReason"] = self.status_reason
        if self.end is not None:
            out["EndTime"] = self.end
        if self.desired is not None:
            out["DesiredConfiguration"] = {"LaunchTemplate": dict(self.desired)}
        if self.rollback is None:
            out["PercentageComplete"] = self.percentage
            out["InstancesToUpdate"] = self.to_update
            out["ProgressDetails"] = {
                "LivePoolProgress": {"PercentageComplete": self.percentage, "InstancesToUpdate": self.to_update}
            }
        else:
            out["PercentageComplete"] = self.rollback["PercentageCompleteOnRollback"]
            out["InstancesToUpdate"] = self.rollback["InstancesToUpdateOnRollback"]
            details = dict(self.rollback)
            details["PercentageCompleteOnRollback"] = self.percentage
            details["InstancesToUpdateOnRollback"] = self.to_update
            details["ProgressDetailsOnRollback"] = {
                "LivePoolProgress": {"PercentageComplete": self.percentage, "InstancesToUpdate": self.to_update}
            }
            out["RollbackDetails"] = details
        return out


# ------------------------------------------------------------------ helpers


def _refreshes(backend: Any) -> dict[str, list[Refresh]]:
    if not hasattr(backend, "_gl_refreshes"):
        backend._gl_refreshes = {}
    return backend._gl_refreshes  # type: ignore[no-any-return]


def _active(backend: Any, group_name: str) -> Refresh | None:
    return next((r for r in _refreshes(backend).get(group_name, []) if r.status in RUNNING), None)


def _resolve(group: Any, spec: dict[str, Any]) -> tuple[str, str]:
    """(template id, explicit version number) of a launch template reference."""
    ec2 = group.ec2_backend
    if spec.get("LaunchTemplateId"):
        template = ec2.get_launch_template(spec["LaunchTemplateId"])
    else:
        template = ec2.get_launch_template_by_name(spec["LaunchTemplateName"])
    version = str(spec.get("Version") or "$Default")
    return template.id, str(template.get_version(version).number)


def _instance_spec(state: Any) -> dict[str, Any] | None:
    template = state.launch_template
    return dict(template) if template else None


def _matches(group: Any, state: Any, spec: dict[str, Any] | None) -> bool:
    if spec is None:
        return False
    mine = _instance_spec(state)
    if not mine:
        return False
    try:
        return _resolve(group, mine) == _resolve(group, spec)
    except Exception:  # a deleted template or version: not a match
        return False


def _members(group: Any) -> dict[str, Any]:
    return {s.instance.id: s for s in group.instance_states}


def _warmup(group: Any, prefs: dict[str, Any]) -> float:
    for value in (prefs.get("InstanceWarmup"), getattr(group, "default_instance_warmup", None)):
        if value is not None:
            return float(value)
    return float(group.health_check_grace_period or 0)


class Engine:
    """One backend's refreshes; the methods run under the emulator's request lock."""

    def __init__(self, backend: Any, clock: Any = time.monotonic) -> None:
        self.backend = backend
        self.clock = clock

    @property
    def elbv2(self) -> Any:
        return self.backend.elbv2_backend

    # ----------------------------------------------------------------- API
    def start(
        self,
        group_name: str,
        strategy: str | None,
        desired: dict[str, Any] | None,
        preferences: dict[str, Any] | None,
    ) -> Refresh:
        group = self.backend.autoscaling_groups.get(group_name)
        if group is None:
            raise RefreshValidationError(f"AutoScalingGroup name not found - {group_name}")
        if _active(self.backend, group_name) is not None:
            raise InstanceRefreshInProgress()
        strategy = strategy or "Rolling"
        if strategy != "Rolling":
            raise RefreshValidationError(f"Strategy {strategy} is not supported by the twin (only Rolling).")
        prefs = dict(preferences or {})
        low = int(prefs.get("MinHealthyPercentage", 90))
        high = int(prefs.get("MaxHealthyPercentage", 100))
        if not 0 <= low <= 100:
            raise RefreshValidationError("MinHealthyPercentage must be between 0 and 100.")
        if not 100 <= high <= 200 or high - low > 100:
            raise RefreshValidationError(
                "MaxHealthyPercentage must be between 100 and 200 and at most 100 above MinHealthyPercentage."
            )
        if low == 100 and high == 100:
            raise RefreshValidationError(
                "MaxHealthyPercentage must be greater than 100 when MinHealthyPercentage is 100."
            )
        prefs.setdefault("MinHealthyPercentage", low)
        prefs.setdefault("SkipMatching", False)
        prefs.setdefault("AutoRollback", False)
        prefs.setdefault("StandbyInstances", "Ignore")
        prefs.setdefault("ScaleInProtectedInstances", "Ignore")
        spec = None
        if desired:
            template = desired.get("LaunchTemplate")
            if not template:
                raise RefreshValidationError("The twin supports DesiredConfiguration.LaunchTemplate only.")
            try:
                _resolve(group, template)
            except Exception as exc:
                raise RefreshValidationError(f"DesiredConfiguration.LaunchTemplate is invalid: {exc}") from exc
            spec = dict(template)
            spec["Version"] = str(spec.get("Version") or "$Default")
        if prefs.get("AutoRollback") and spec is None:
            raise RefreshValidationError("AutoRollback requires a DesiredConfiguration.")
        previous = group.launch_template
        if previous is not None and previous.get("Version") is None:
            previous = dict(previous, Version="$Default")
        target = spec or previous
        skip = bool(prefs.get("SkipMatching"))
        pending = [
            iid
            for iid, state in _members(group).items()
            if state.lifecycle_state == "InService" and not (skip and _matches(group, state, target))
        ]
        refresh = Refresh(
            refresh_id=str(uuid.uuid4()),
            group_name=group_name,
            strategy=strategy,
            preferences=prefs,
            desired=spec,
            previous=previous,
            pending=pending,
            total=len(pending),
        )
        _refreshes(self.backend).setdefault(group_name, []).insert(0, refresh)
        return refresh

    def describe(self, group_name: str, ids: list[str] | None) -> list[Refresh]:
        found = list(_refreshes(self.backend).get(group_name, []))
        if ids:
            found = [r for r in found if r.refresh_id in ids]
        return found

    def cancel(self, group_name: str) -> Refresh:
        refresh = _active(self.backend, group_name)
        if refresh is None or refresh.status in ("Cancelling", "RollbackInProgress"):
            raise ActiveInstanceRefreshNotFound()
        refresh.status = "Cancelling"
        refresh.status_reason = "Cancelling: CancelInstanceRefresh was called."
        return refresh

    def rollback_request(self, group_name: str) -> Refresh:
        refresh = _active(self.backend, group_name)
        if refresh is None or refresh.status not in ("Pending", "InProgress", "Baking"):
            raise ActiveInstanceRefreshNotFound()
        if refresh.desired is None or refresh.previous is None:
            raise IrreversibleInstanceRefresh(
                "The instance refresh cannot be rolled back: it has no desired configuration "
                "or the group had no launch template before it."
            )
        group = self.backend.autoscaling_groups[group_name]
        self._enter_rollback(refresh, group, "Rollback requested with RollbackInstanceRefresh.")
        return refresh

    # ---------------------------------------------------------------- ticks
    def tick(self) -> None:
        for name, refreshes in list(_refreshes(self.backend).items()):
            for refresh in refreshes:
                if refresh.status in RUNNING:
                    self._advance(refresh, name)

    def _advance(self, refresh: Refresh, name: str) -> None:
        group = self.backend.autoscaling_groups.get(name)
        now = self.clock()
        if group is None:
            self._finish(refresh, "Failed", f"The Auto Scaling group {name} was deleted.")
            return
        if refresh.status == "Pending":
            refresh.status = "InProgress"
        if refresh.status == "Baking":
            if now >= refresh.bake_until:
                self._succeed(refresh, group)
            return
        if refresh.status == "Cancelling":
            batch = refresh.batch
            if batch is not None and batch.phase == "drain":
                self._drain(refresh, group, batch, now)
                if batch.phase == "drain":
                    return
            refresh.batch = None
            self._finish(refresh, "Cancelled", "Instance refresh was cancelled.")
            return
        if now < refresh.checkpoint_until:
            return
        if refresh.batch is not None:
            self._step_batch(refresh, group, now)
        if refresh.status not in ("InProgress", "RollbackInProgress") or refresh.batch is not None:
            return
        members = _members(group)
        refresh.pending = [i for i in refresh.pending if i in members]
        if refresh.done + len(refresh.pending) < refresh.total:
            # Instances that left the group by other means need no replacement.
            refresh.total = refresh.done + len(refresh.pending)
        if not refresh.pending and bool(refresh.preferences.get("SkipMatching")):
            # With skip matching the refresh ends when every instance matches: one the group launched
            # meanwhile from its own (old) configuration, e.g. a health-check replacement, is replaced too.
            target = self._target(refresh)
            late = [
                s.instance.id
                for s in group.instance_states
                if s.lifecycle_state == "InService" and not _matches(group, s, target)
            ]
            refresh.pending, refresh.total = late, refresh.total + len(late)
        self._checkpoint(refresh, now)
        if now < refresh.checkpoint_until:
            return
        if not refresh.pending:
            if refresh.status == "RollbackInProgress":
                self._finish(refresh, "RollbackSuccessful", refresh.status_reason)
            elif int(refresh.preferences.get("BakeTime") or 0) > 0:
                refresh.status = "Baking"
                refresh.bake_until = now + float(refresh.preferences["BakeTime"])
            else:
                self._succeed(refresh, group)
            return
        self._start_batch(refresh, group, now)

    def _checkpoint(self, refresh: Refresh, now: float) -> None:
        points = [int(p) for p in refresh.preferences.get("CheckpointPercentages") or []]
        for point in points:
            if point < 100 and refresh.percentage >= point and point not in refresh.checkpoints_passed:
                refresh.checkpoints_passed.add(point)
                delay = float(refresh.preferences.get("CheckpointDelay", 3600))
                refresh.checkpoint_until = now + delay
                refresh.status_reason = f"Waiting for checkpoint ({point}%) delay of {delay:g} seconds."
                return

    def _target(self, refresh: Refresh) -> dict[str, Any] | None:
        return refresh.previous if refresh.status == "RollbackInProgress" else refresh.desired

    def _start_batch(self, refresh: Refresh, group: Any, now: float) -> None:
        prefs = refresh.preferences
        capacity = int(group.desired_capacity or 0)
        low = int(prefs.get("MinHealthyPercentage", 90))
        high = int(prefs.get("MaxHealthyPercentage", 100))
        in_service = [s for s in group.instance_states if s.lifecycle_state == "InService"]
        if high > 100:
            room = math.floor(capacity * high / 100) - len(in_service)
            count = max(1, min(len(refresh.pending), room))
            olds = refresh.pending[:count]
            batch = Batch(olds=olds, launch_first=True, phase="launch")
            batch.news = self._launch(refresh, group, len(olds), now)
        else:
            healthy = sum(1 for s in in_service if self._health(group, s.instance.id, now, None)[0] == "healthy")
            count = max(1, healthy - min_healthy(capacity, low))
            olds = refresh.pending[: min(count, len(refresh.pending))]
            batch = Batch(olds=olds, launch_first=False, phase="drain")
            self._deregister(group, batch, now)
        refresh.pending = [i for i in refresh.pending if i not in batch.olds]
        refresh.batch = batch
        refresh.status_reason = None if refresh.status == "InProgress" else refresh.status_reason

    def _step_batch(self, refresh: Refresh, group: Any, now: float) -> None:
        batch = refresh.batch
        assert batch is not None
        if batch.phase == "launch":
            if not self._news_ready(refresh, group, batch, now):
                return
            batch.phase = "drain"
            self._deregister(group, batch, now)
        if batch.phase == "drain":
            self._drain(refresh, group, batch, now)
            if batch.phase == "drain":
                return
        if batch.phase == "wait" and not self._news_ready(refresh, group, batch, now):
            return
        refresh.done += len(batch.olds)
        refresh.batch = None

    def _drain(self, refresh: Refresh, group: Any, batch: Batch, now: float) -> None:
        if now < batch.drain_until:
            return
        members = _members(group)
        gone = [i for i in batch.olds if i in members]
        group.instance_states = [s for s in group.instance_states if s.instance.id not in gone]
        if gone:
            group.ec2_backend.terminate_instances(gone)
        if batch.launch_first:
            batch.phase = "done"
        else:
            batch.news = self._launch(refresh, group, len(batch.olds), now)
            batch.phase = "wait"

    def _deregister(self, group: Any, batch: Batch, now: float) -> None:
        """Old instances go Terminating: out of the target groups, draining for the deregistration delay."""
        for state in group.instance_states:
            if state.instance.id in batch.olds:
                state.lifecycle_state = "Terminating"
        batch.drain_until = now + deregister_from_target_groups(self.elbv2, group, batch.olds)

    def _reregister(self, group: Any, ids: list[str]) -> None:
        members = _members(group)
        for iid in ids:
            if iid in members and members[iid].lifecycle_state == "Terminating":
                members[iid].lifecycle_state = "InService"
        for arn in group.target_group_arns:
            tg = self.elbv2.target_groups.get(arn)
            if tg is None:
                continue
            back = [{"Id": i, "Port": tg.port} for i in ids if i in members and i not in tg.targets]
            if back:
                self.elbv2.register_targets(arn, back)

    def _launch(self, refresh: Refresh, group: Any, count: int, now: float) -> list[str]:
        before = set(_members(group))
        with launching_with(group, self._target(refresh)):
            group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
        news = [i for i in _members(group) if i not in before]
        self.backend.update_attached_target_groups(group.name)
        for iid in news:
            refresh.launched[iid] = now
        return news

    def _health(self, group: Any, iid: str, now: float, launched: float | None) -> tuple[str, str]:
        """(healthy | pending | failed, reason) of one instance, as the group's health checks see it."""
        state = _members(group).get(iid)
        if state is None:
            return "failed", f"instance {iid} is no longer in the group"
        ec2_state = state.instance.state
        if ec2_state in ("terminated", "shutting-down", "stopping", "stopped"):
            return "failed", f"instance {iid} is {ec2_state}"
        grace = float(group.health_check_grace_period or 0)
        elb = group.health_check_type == "ELB" and bool(group.target_group_arns)
        if elb:
            states = [target_states(self.elbv2, arn).get(iid, "unused") for arn in group.target_group_arns]
            if all(s == "healthy" for s in states):
                return "healthy", ""
            if launched is not None and now - launched >= grace and "unhealthy" in states:
                return "failed", f"instance {iid} failed its ELB health checks after the {grace:g} s grace period"
        elif ec2_state == "running":
            return "healthy", ""
        if launched is not None and now - launched >= grace + SETTLE_SECONDS:
            return "failed", f"instance {iid} did not become healthy within {grace + SETTLE_SECONDS:g} s"
        return "pending", ""

    def _news_ready(self, refresh: Refresh, group: Any, batch: Batch, now: float) -> bool:
        warmup = _warmup(group, refresh.preferences)
        ready = True
        for iid in batch.news:
            verdict, reason = self._health(group, iid, now, refresh.launched.get(iid, now))
            if verdict == "failed":
                self._fail(refresh, group, f"Instance refresh failed: {reason}.")
                return False
            if verdict != "healthy":
                ready = False
                continue
            since = refresh.healthy_at.setdefault(iid, now)
            if now - since < warmup:
                ready = False
        return ready

    # -------------------------------------------------------------- outcome
    def _fail(self, refresh: Refresh, group: Any, reason: str) -> None:
        batch = refresh.batch
        if batch is not None and batch.phase in ("launch", "drain"):
            self._reregister(group, batch.olds)  # the old ones were not replaced: back in service
        refresh.batch = None
        if refresh.status == "RollbackInProgress":
            self._finish(refresh, "RollbackFailed", reason)
        elif refresh.preferences.get("AutoRollback") and refresh.previous is not None:
            self._enter_rollback(refresh, group, reason)
        else:
            self._finish(refresh, "Failed", reason)

    def _enter_rollback(self, refresh: Refresh, group: Any, reason: str) -> None:
        batch = refresh.batch
        if batch is not None and batch.phase in ("launch", "drain"):
            self._reregister(group, batch.olds)
        refresh.batch = None
        refresh.rollback = {
            "RollbackReason": reason,
            "RollbackStartTime": _now(),
            "PercentageCompleteOnRollback": refresh.percentage,
            "InstancesToUpdateOnRollback": refresh.to_update,
        }
        refresh.status = "RollbackInProgress"
        refresh.status_reason = reason
        back = [
            iid
            for iid, state in _members(group).items()
            if state.lifecycle_state == "InService" and _matches(group, state, refresh.desired)
        ]
        refresh.pending = back
        refresh.total = len(back)
        refresh.done = 0
        refresh.checkpoint_until = 0.0

    def _succeed(self, refresh: Refresh, group: Any) -> None:
        if refresh.desired is not None:
            group._set_launch_configuration(None, dict(refresh.desired), None)
        refresh.done = refresh.total
        self._finish(refresh, "Successful", None)

    def _finish(self, refresh: Refresh, status: str, reason: str | None) -> None:
        refresh.status = status
        refresh.status_reason = reason
        refresh.end = _now()


# ------------------------------------------------------------ API and ticks

_LOCK = threading.RLock()


def lock() -> threading.RLock:
    """The emulator's request lock: requests and refresh ticks never interleave."""
    return _LOCK


def tick_all() -> None:
    from moto.autoscaling.models import autoscaling_backends

    from gearlift.twin.emulator import scalein

    with _LOCK:
        for _account, regions in list(autoscaling_backends.items()):
            for _region, backend in list(regions.items()):
                if getattr(backend, "_gl_refreshes", None):
                    Engine(backend).tick()
                if getattr(backend, "_gl_scale_in", None):
                    scalein.tick(backend)


def install() -> None:
    """Add the four instance refresh actions to moto's Auto Scaling API."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    def start_instance_refresh(self: Any) -> ActionResult:
        refresh = Engine(self.autoscaling_backend).start(
            self._get_param("AutoScalingGroupName"),
            self._get_param("Strategy"),
            self._get_param("DesiredConfiguration"),
            self._get_param("Preferences"),
        )
        return ActionResult({"InstanceRefreshId": refresh.refresh_id})

    def describe_instance_refreshes(self: Any) -> ActionResult:
        found = Engine(self.autoscaling_backend).describe(
            self._get_param("AutoScalingGroupName"), self._get_param("InstanceRefreshIds", [])
        )
        size = int(self._get_param("MaxRecords") or 50)
        start = int(self._get_param("NextToken") or 0)
        page = found[start : start + size]
        result: dict[str, Any] = {"InstanceRefreshes": [r.describe() for r in page]}
        if start + size < len(found):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    def cancel_instance_refresh(self: Any) -> ActionResult:
        refresh = Engine(self.autoscaling_backend).cancel(self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": refresh.refresh_id})

    def rollback_instance_refresh(self: Any) -> ActionResult:
        refresh = Engine(self.autoscaling_backend).rollback_request(self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": refresh.refresh_id})

    for func in (
        start_instance_refresh,
        describe_instance_refreshes,
        cancel_instance_refresh,
        rollback_instance_refresh,
    ):
        setattr(AutoScalingResponse, func.__name__, func)
