"""Hosts sized like their instance types (gearlift.twin.sizing)."""

from __future__ import annotations

from typing import Any

import pytest

from gearlift.twin import sizing
from gearlift.twin.errors import TwinError
from gearlift.twin.sizing import InstanceSizes, Size


def test_a_t3_small_under_a_quarter_gets_half_a_cpu_and_its_memory() -> None:
    assert sizing.run_limits(Size(2, 2048), 0.25) == ["--cpus", "0.5", "--memory", "2048m"]


def test_unsized_hosts_get_no_limits() -> None:
    assert sizing.run_limits(Size(2, 2048), 0.0) == []
    assert sizing.run_limits(None, 0.5) == []


def test_a_tiny_share_keeps_a_positive_quota() -> None:
    assert sizing.run_limits(Size(1, 512), 0.001)[:2] == ["--cpus", "0.01"]


@pytest.mark.parametrize("raw", ["-0.5", "1.5", "two"])
def test_a_bad_cpu_factor_is_refused_with_its_name(raw: str) -> None:
    with pytest.raises(TwinError, match=sizing.CPU_FACTOR_ENV):
        sizing.cpu_factor({sizing.CPU_FACTOR_ENV: raw})


def test_cpu_factor_defaults_to_unsized_and_reads_the_environment() -> None:
    assert sizing.cpu_factor({}) == 0.0
    assert sizing.cpu_factor({sizing.CPU_FACTOR_ENV: "0.25"}) == 0.25


@pytest.mark.parametrize("raw", ["0.5", "61", "x"])
def test_a_bad_time_scale_is_refused_with_its_name(raw: str) -> None:
    with pytest.raises(TwinError, match=sizing.TIME_SCALE_ENV):
        sizing.time_scale({sizing.TIME_SCALE_ENV: raw})


def test_time_scale_defaults_to_aws_clock() -> None:
    assert sizing.time_scale({}) == 1.0
    assert sizing.time_scale({sizing.TIME_SCALE_ENV: "10"}) == 10.0


class FakeEc2:
    def __init__(self) -> None:
        self.calls = 0

    def describe_instance_types(self, InstanceTypes: list[str]) -> dict[str, Any]:
        self.calls += 1
        known = {
            "t3.small": {"InstanceType": "t3.small", "VCpuInfo": {"DefaultVCpus": 2}, "MemoryInfo": {"SizeInMiB": 2048}}
        }
        return {"InstanceTypes": [known[t] for t in InstanceTypes if t in known]}


def test_sizes_come_from_describe_instance_types_once_per_type() -> None:
    ec2 = FakeEc2()
    sizes = InstanceSizes(lambda: ec2)
    assert sizes("t3.small") == Size(2, 2048)
    assert sizes("t3.small") == Size(2, 2048)
    assert ec2.calls == 1
    with pytest.raises(TwinError, match=r"m9\.huge"):
        sizes("m9.huge")


def test_moto_knows_the_rehearsal_types() -> None:
    """The emulator's catalogue (moto's snapshot of DescribeInstanceTypes) has the figures the twin reads."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    for name, vcpus, mib in (("t3.small", 2, 2048), ("t3.medium", 2, 4096)):
        assert sizing.size_from_description(INSTANCE_TYPES[name]) == Size(vcpus, mib)


def test_todays_sizes_come_from_the_rehearsal_inventory() -> None:
    from gearlift.twin.twin import ONPREM_SIZES

    size = sizing.onprem_size(ONPREM_SIZES)
    assert size.vcpus >= 1 and size.memory_mib >= 512


def test_a_missing_size_names_the_variable(tmp_path: Any) -> None:
    path = tmp_path / "onprem.yml"
    path.write_text(f"{sizing.ONPREM_VCPUS}: 4\n")
    with pytest.raises(TwinError, match=sizing.ONPREM_MEMORY):
        sizing.onprem_size(path)
