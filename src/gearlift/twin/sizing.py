"""Hosts sized like their instance types, and the twin's clock for the scaling service.

On AWS a t3.small has 2 vCPUs and 2 GiB whatever else runs in the account; on the twin every
container shares the controller's cores. With a CPU factor ``f`` (``GEARLIFT_TWIN_CPU_FACTOR``),
each EC2 container gets ``vCPUs x f`` CPUs (``podman run --cpus``) and its type's memory
(``--memory``, unscaled: the controller's memory holds the peak fleet, its cores do not), the type's
figures read from the emulator's DescribeInstanceTypes (the catalogue moto ships). Today's servers
get the same factor on the sizes the rehearsal inventory gives them (``TwinConfig.onprem_size``).

Choosing ``f``: the controller's cores divided by the vCPUs of the peak fleet, so the peak fleet
can run at its quota at once; scripts/bench-peak uses ``0.25`` on a 2-core machine
(4 x t3.small = 8 vCPUs). ``0`` (the default) leaves hosts unsized: the story's speed goal
(docs/twin-fidelity.md says so).

``GEARLIFT_TWIN_TIME_SCALE`` (default 1: AWS's own clock) is how many AWS seconds of alarm
periods, cooldowns and warm-ups pass per clock second in gearlift.twin.dataplane.scaling.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gearlift.twin.errors import TwinError

CPU_FACTOR_ENV = "GEARLIFT_TWIN_CPU_FACTOR"
#: The rehearsal inventory's sizes of today's servers (one fact: the twin and the report read them).
ONPREM_VCPUS = "rehearsal_onprem_server_vcpus"
ONPREM_MEMORY = "rehearsal_onprem_server_memory_mib"
TIME_SCALE_ENV = "GEARLIFT_TWIN_TIME_SCALE"
#: Above this compression a round (about 2 s) spans several AWS minutes and alarms see gaps.
MAX_TIME_SCALE = 60.0


@dataclass(frozen=True)
class Size:
    vcpus: int
    memory_mib: int


def _float_env(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise TwinError(f"{name}={raw!r} is not a number") from None


def cpu_factor(env: Mapping[str, str] | None = None) -> float:
    """The CPU factor from the environment: 0 (unsized) or more than 0 and at most 1."""
    value = _float_env(os.environ if env is None else env, CPU_FACTOR_ENV, 0.0)
    if value != 0 and not 0 < value <= 1:
        raise TwinError(
            f"{CPU_FACTOR_ENV}={value:g}: use 0 (hosts unsized) or a factor in (0, 1], "
            "e.g. the controller's cores / the peak fleet's vCPUs"
        )
    return value


def time_scale(env: Mapping[str, str] | None = None) -> float:
    """AWS seconds per clock second from the environment: 1 (AWS's clock) up to MAX_TIME_SCALE."""
    value = _float_env(os.environ if env is None else env, TIME_SCALE_ENV, 1.0)
    if not 1 <= value <= MAX_TIME_SCALE:
        raise TwinError(f"{TIME_SCALE_ENV}={value:g}: use 1 (AWS's clock) to {MAX_TIME_SCALE:g}")
    return value


def run_limits(size: Size | None, factor: float) -> list[str]:
    """``podman run`` arguments for a host of ``size`` under ``factor`` ([] when unsized)."""
    if size is None or factor == 0:
        return []
    cpus = max(0.01, round(size.vcpus * factor, 2))
    return ["--cpus", f"{cpus:g}", "--memory", f"{size.memory_mib}m"]


def size_from_description(doc: Mapping[str, Any]) -> Size:
    """A Size from one DescribeInstanceTypes item."""
    try:
        return Size(int(doc["VCpuInfo"]["DefaultVCpus"]), int(doc["MemoryInfo"]["SizeInMiB"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise TwinError(f"instance type {doc.get('InstanceType', '?')}: no vCPU or memory figures ({exc})") from None


class InstanceSizes:
    """Instance type -> Size, read once per type from the emulator's EC2 API."""

    def __init__(self, ec2_client: Callable[[], Any]) -> None:
        self._ec2 = ec2_client
        self._known: dict[str, Size] = {}

    def __call__(self, instance_type: str) -> Size:
        if instance_type not in self._known:
            found = self._ec2().describe_instance_types(InstanceTypes=[instance_type]).get("InstanceTypes", [])
            if not found:
                raise TwinError(f"instance type {instance_type} is unknown to the emulator's EC2")
            self._known[instance_type] = size_from_description(found[0])
        return self._known[instance_type]


def onprem_size(group_vars: Path) -> Size:
    """Today's servers' size from an inventory's group_vars file (ONPREM_VCPUS, ONPREM_MEMORY)."""
    try:
        data = yaml.safe_load(group_vars.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TwinError(f"today's server sizes: cannot read {group_vars}: {exc}") from None
    values = []
    for key in (ONPREM_VCPUS, ONPREM_MEMORY):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TwinError(f"today's server sizes: {key} in {group_vars} must be a whole number >= 1 (got {value!r})")
        values.append(value)
    return Size(values[0], values[1])
