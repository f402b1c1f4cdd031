"""EC2 Auto Scaling's scale-in as AWS does it: which instances go, and they drain before they terminate.

moto lowers a group's capacity by terminating the first unprotected instances of its list at once -
Standby ones included, whatever their Availability Zone, with no deregistration delay - so every
request in flight on them fails. AWS (https://docs.aws.amazon.com/autoscaling/ec2/userguide/
ec2-auto-scaling-termination-policies.html, the ``Default`` policy; and the lifecycle
https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html):

- only instances that count toward the capacity (InService, Pending) are candidates, and not those
  protected from scale in;
- the Availability Zone with the most of them loses one first (zones stay balanced);
- within it, the instance of the oldest launch template (or configuration) version goes first, then
  the one closest to the next billing hour (approximated: the oldest launch, then the id);
- a chosen instance is ``Terminating``: deregistered from the group's target groups (the target
  drains for the deregistration delay, in-flight requests finish), then terminated.

Pure choice in ``choose``; ``install`` patches moto's SetDesiredCapacity path, and ``tick``
(called with the instance refresh ticks) terminates the drained instances.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

COUNTING = ("InService", "Pending")


@dataclass(frozen=True)
class Candidate:
    instance_id: str
    zone: str
    template_version: int  # 0 when unknown
    launched: float  # epoch seconds
    protected: bool = False


def choose(candidates: Sequence[Candidate], count: int) -> list[str]:
    """The ``count`` instances the Default termination policy removes, in order."""
    pool = [c for c in candidates if not c.protected]
    chosen: list[str] = []
    for _ in range(min(count, len(pool))):
        per_zone = Counter(c.zone for c in pool)
        top = max(per_zone.values())
        zone = sorted(z for z, n in per_zone.items() if n == top)[0]
        victim = min((c for c in pool if c.zone == zone), key=lambda c: (c.template_version, c.launched, c.instance_id))
        chosen.append(victim.instance_id)
        pool.remove(victim)
    return chosen


def _version(state: Any) -> int:
    template = None
    try:
        template = state.launch_template
    except Exception:  # moto raises on instances without one
        template = None
    try:
        return int((template or {}).get("Version") or 0)
    except (TypeError, ValueError):
        return 0


def _launched(instance: Any) -> float:
    value = getattr(instance, "launch_time", None)
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _pending(backend: Any) -> dict[str, tuple[str, float]]:
    """instance id -> (group name, time.monotonic() when it has drained) of the instances scaling in."""
    if not hasattr(backend, "_gl_scale_in"):
        backend._gl_scale_in = {}
    return backend._gl_scale_in  # type: ignore[no-any-return]


def install() -> None:
    from moto.autoscaling import models

    from gearlift.twin.emulator.lifecycle import deregister_from_target_groups

    original = models.FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        target = self.min_size if new_capacity is None else new_capacity
        counting = [s for s in self.instance_states if s.lifecycle_state in COUNTING]
        excess = len(counting) - int(target or 0)
        if excess <= 0 or self.mixed_instances_policy:
            original(self, new_capacity)
            return
        self.desired_capacity = target
        candidates = [
            Candidate(
                s.instance.id,
                str(getattr(s.instance, "availability_zone", "") or ""),
                _version(s),
                _launched(s.instance),
                bool(getattr(s, "protected_from_scale_in", False)),
            )
            for s in counting
        ]
        victims = set(choose(candidates, excess))
        backend = self.autoscaling_backend
        until = time.monotonic() + deregister_from_target_groups(backend.elbv2_backend, self, victims)
        for state in self.instance_states:
            if state.instance.id in victims:
                state.lifecycle_state = "Terminating"
                _pending(backend)[state.instance.id] = (self.name, until)

    setattr(models.FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity)  # noqa: B010


def tick(backend: Any, now: float | None = None) -> list[str]:
    """Terminate the scaling-in instances that have drained; their ids."""
    pending = _pending(backend)
    now = time.monotonic() if now is None else now
    done = [iid for iid, (_, until) in pending.items() if until <= now]
    for iid in done:
        name, _ = pending.pop(iid)
        group = backend.autoscaling_groups.get(name)
        if group is not None:
            group.instance_states = [s for s in group.instance_states if s.instance.id != iid]
        backend.ec2_backend.terminate_instances([iid])
    return done
