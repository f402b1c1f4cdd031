# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.asg_surge``.

A surge is extra capacity added to an Auto Scaling group for the length of an
operation that takes hosts out of service (a rolling patch): the desired
capacity is raised by ``count`` above its current value, the new instances are
recorded on the group as a tag, and the surge is settled afterwards by
terminating exactly those instances with a decrement, which brings the desired
capacity back to the recorded baseline.

Nothing in here talks to AWS: the functions take boto3 response shapes and
return plain values, so they can be unit tested on their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The group tag that records a surge (never propagated to instances).
TAG_KEY = "gearlift:surge"
#: AWS limit of an Auto Scaling group tag value.
TAG_VALUE_MAX = 256
#: The longest EC2 instance id (i- and 17 hex digits), for the size check before any change.
INSTANCE_ID_MAX = 19
#: Lifecycle states of an instance that is on its way out of the group.
LEAVING = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated", "Detaching", "Detached"})
IN_SERVICE = "InService"


@dataclass
class Surge:
    """A surge as recorded on the group."""

    baseline: int
    instances: list[str] = field(default_factory=list)
    run: str = ""
    count: int = 0

    def encode(self) -> str:
        """The tag value: compact JSON, keys in a fixed order."""
        return json.dumps(
            {"baseline": self.baseline, "count": self.count, "instances": self.instances, "run": self.run},
            separators=(",", ":"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "count": self.count, "instances": list(self.instances), "run": self.run}


class RecordError(ValueError):
    """The tag is there but does not hold a surge record."""


def decode(value: str) -> Surge:
    """A surge from its tag value; RecordError when the value is not a surge record."""
    try:
        data = json.loads(value)
    except ValueError as e:
        raise RecordError(f"the {TAG_KEY} tag is not JSON ({value!r})") from e
    if not isinstance(data, dict):
        raise RecordError(f"the {TAG_KEY} tag is not a JSON object ({value!r})")
    baseline = data.get("baseline")
    instances = data.get("instances", [])
    if not isinstance(baseline, int) or isinstance(baseline, bool) or baseline < 0:
        raise RecordError(f"the {TAG_KEY} tag has no valid baseline ({value!r})")
    if not isinstance(instances, list) or not all(isinstance(i, str) and i.startswith("i-") for i in instances):
        raise RecordError(f"the {TAG_KEY} tag has no valid instance list ({value!r})")
    count = data.get("count", len(instances))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise RecordError(f"the {TAG_KEY} tag has no valid count ({value!r})")
    return Surge(baseline=baseline, instances=list(instances), run=str(data.get("run", "")), count=count)


def recorded(group: Mapping[str, Any]) -> Surge | None:
    """The surge recorded on a DescribeAutoScalingGroups entry, or None."""
    for tag in group.get("Tags") or []:
        if tag.get("Key") == TAG_KEY:
            return decode(str(tag.get("Value", "")))
    return None


def members(group: Mapping[str, Any]) -> dict[str, str]:
    """Instance id -> lifecycle state of the group's instances that are not leaving it."""
    return {
        i["InstanceId"]: str(i.get("LifecycleState", ""))
        for i in group.get("Instances") or []
        if i.get("LifecycleState") not in LEAVING
    }


def in_service(group: Mapping[str, Any]) -> list[str]:
    return sorted(i for i, state in members(group).items() if state == IN_SERVICE)


def check_request(count: int, run: str, desired: int, max_size: int) -> list[str]:
    """Every reason to refuse a surge of ``count``; empty when it can be made."""
    reasons: list[str] = []
    if count < 1:
        reasons.append(f"count must be at least 1 (got {count})")
        return reasons
    if desired + count > max_size:
        reasons.append(
            f"a surge of {count} takes the desired capacity from {desired} to {desired + count}, above the group's "
            f"max size {max_size}: raise the group's max size or lower the batch"
        )
    worst = Surge(baseline=desired, instances=["i-" + "0" * (INSTANCE_ID_MAX - 2)] * count, run=run, count=count)
    if len(worst.encode()) > TAG_VALUE_MAX:
        reasons.append(
            f"a surge of {count} instances (run {run!r}) does not fit the {TAG_VALUE_MAX}-character {TAG_KEY} tag "
            "that records it: lower the batch or use a shorter run id"
        )
    return reasons


def reuse(existing: Surge, group: Mapping[str, Any], count: int) -> tuple[bool, str | None]:
    """Whether a recorded surge stands for the requested one: (reuse it, reason to refuse instead).

    A recorded surge whose instances are all still in the group is not repeated
    (the same run again, or a run after one that stopped before settling). One
    that lost instances, or is smaller than asked for, is refused with the fix.
    """
    present = members(group)
    missing = [i for i in existing.instances if i not in present]
    if missing or len(existing.instances) < existing.count:
        return False, (
            f"a surge of run {existing.run!r} is recorded on the group ({TAG_KEY}) but its instances "
            f"{', '.join(missing) or '(not all recorded)'} are no longer in it: settle it first "
            "(gearlift.platform.asg_surge state=absent) and check the group's desired capacity"
        )
    if len(existing.instances) < count:
        return False, (
            f"a surge of {len(existing.instances)} (run {existing.run!r}) is already recorded on the group, "
            f"smaller than the {count} asked for: settle it first (state=absent) or lower the batch"
        )
    return True, None


def new_instances(before: Iterable[str], group: Mapping[str, Any], count: int) -> list[str]:
    """The first ``count`` instances of the group that were not in it before the surge (group order)."""
    known = set(before)
    fresh = [i["InstanceId"] for i in group.get("Instances") or [] if i["InstanceId"] not in known]
    fresh = [i for i in fresh if members(group).get(i) is not None]
    return fresh[:count]


def to_settle(existing: Surge, group: Mapping[str, Any]) -> list[str]:
    """The recorded surge instances still in the group (to terminate), in record order."""
    present = members(group)
    return [i for i in existing.instances if i in present]


@dataclass
class Waited:
    done: bool
    polls: int
    group: Mapping[str, Any]


def wait_until(
    describe: Callable[[], Mapping[str, Any]],
    done: Callable[[Mapping[str, Any]], bool],
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
) -> Waited:
    """Poll ``describe`` until ``done`` holds or ``timeout`` seconds of ``clock`` pass (never sleeps past it)."""
    deadline = clock() + timeout
    polls = 0
    while True:
        group = describe()
        polls += 1
        if done(group):
            return Waited(True, polls, group)
        left = deadline - clock()
        if left <= 0:
            return Waited(False, polls, group)
        sleep(min(interval, left))


def surge_in_service(before: Iterable[str], count: int) -> Callable[[Mapping[str, Any]], bool]:
    """The wait condition of a surge: ``count`` new instances, each InService."""
    known = set(before)

    def done(group: Mapping[str, Any]) -> bool:
        fresh = new_instances(known, group, count)
        states = members(group)
        return len(fresh) == count and all(states[i] == IN_SERVICE for i in fresh)

    return done


def gone(instance_ids: Iterable[str]) -> Callable[[Mapping[str, Any]], bool]:
    """The wait condition of a settle: none of the instances is in the group any more."""
    ids = set(instance_ids)

    def done(group: Mapping[str, Any]) -> bool:
        return not ids & set(members(group))

    return done


def drained(instance_ids: Iterable[str]) -> Callable[[Mapping[str, Any]], bool]:
    """The wait condition of a drain: none of the instances is left in the group's target groups (target id -> state;
    a finished deregistration drops the target, "unused" is a target no longer in use)."""
    ids = set(instance_ids)

    def done(targets: Mapping[str, Any]) -> bool:
        return all(state == "unused" for iid, state in targets.items() if iid in ids)

    return done
