# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.asg_processes``.

An operation that changes a group's capacity by hand (a rolling patch with a surge and hosts in
Standby) must not race the group's own scaling: a target-tracking policy whose low alarm is in
ALARM invokes scale-in once a minute and would take the surge back, a scheduled action would reset
the sizes, AZ rebalancing would replace hosts. The operation suspends those processes for its
length and resumes exactly the ones it suspended, recorded on the group as a tag, so a process a
person suspended before stays suspended, and a run that stopped half-way is resumed by the next.

Nothing in here talks to AWS: plain values in and out, unit tested on their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The group tag recording the processes an operation suspended (never propagated to instances).
TAG_KEY = "gearlift:suspended-processes"
#: EC2 Auto Scaling's process names (SuspendProcesses / ResumeProcesses).
PROCESSES = frozenset(
    {
        "Launch",
        "Terminate",
        "AddToLoadBalancer",
        "AlarmNotification",
        "AZRebalance",
        "HealthCheck",
        "InstanceRefresh",
        "ReplaceUnhealthy",
        "ScheduledActions",
    }
)
#: Suspending these takes away what keeps the fleet alive (no new host, no replacement of a dead one).
UNSAFE = frozenset({"Launch", "Terminate", "HealthCheck", "ReplaceUnhealthy"})


class RecordError(ValueError):
    """The tag is there but does not hold a record of suspended processes."""


@dataclass(frozen=True)
class Record:
    processes: tuple[str, ...]
    run: str = ""

    def encode(self) -> str:
        return json.dumps({"processes": sorted(self.processes), "run": self.run}, separators=(",", ":"))


def check_names(names: Iterable[str], allow_unsafe: bool) -> list[str]:
    """Why these process names are refused (empty: accepted)."""
    reasons = []
    unknown = sorted(set(names) - PROCESSES)
    if unknown:
        reasons.append(f"unknown process name(s) {', '.join(unknown)}; valid: {', '.join(sorted(PROCESSES))}")
    unsafe = sorted(set(names) & UNSAFE)
    if unsafe and not allow_unsafe:
        reasons.append(
            f"suspending {', '.join(unsafe)} stops the group from launching or replacing hosts; "
            "set allow_unsafe_processes=true if that is really meant"
        )
    return reasons


def suspended(group: Mapping[str, Any]) -> set[str]:
    """The processes a DescribeAutoScalingGroups entry has suspended."""
    return {str(p.get("ProcessName")) for p in group.get("SuspendedProcesses") or []}


def recorded(group: Mapping[str, Any]) -> Record | None:
    """The record on the group, None without one; RecordError when the tag holds something else."""
    for tag in group.get("Tags") or []:
        if tag.get("Key") != TAG_KEY:
            continue
        value = str(tag.get("Value", ""))
        try:
            data = json.loads(value)
        except ValueError as e:
            raise RecordError(f"the {TAG_KEY} tag is not JSON ({value!r})") from e
        procs = data.get("processes") if isinstance(data, dict) else None
        if not isinstance(procs, list) or not all(isinstance(p, str) and p in PROCESSES for p in procs):
            raise RecordError(f"the {TAG_KEY} tag has no valid process list ({value!r})")
        return Record(tuple(sorted(procs)), str(data.get("run", "")))
    return None


@dataclass(frozen=True)
class Plan:
    suspend: tuple[str, ...]
    resume: tuple[str, ...]
    record: Record | None  # what the tag holds afterwards (None: no tag)

    @property
    def changed(self) -> bool:
        return bool(self.suspend or self.resume)


def plan_suspend(current: set[str], requested: Iterable[str], record: Record | None, run: str) -> Plan:
    """Suspend what is asked and not suspended yet; the record keeps only what an operation suspended."""
    to_suspend = tuple(sorted(set(requested) - current))
    mine = set(record.processes) if record else set()
    mine |= set(to_suspend)
    new = Record(tuple(sorted(mine)), run or (record.run if record else "")) if mine else None
    return Plan(to_suspend, (), new)


def plan_resume(current: set[str], record: Record | None) -> Plan:
    """Resume exactly the recorded processes that are still suspended; the record goes."""
    if record is None:
        return Plan((), (), None)
    return Plan((), tuple(sorted(set(record.processes) & current)), None)
