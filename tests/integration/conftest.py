"""Fixtures for tests that run the twin for real (podman, moto, MariaDB, HAProxy)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gearlift.twin import podman
from gearlift.twin.controlplane import STATE_DIR_ENV
from gearlift.twin.twin import Twin, TwinConfig

REPO = Path(__file__).resolve().parents[2]
# Another prefix and subnet let a lane run beside a CI run on the same machine (two twins apart).
TEST_PREFIX = os.environ.get("GEARLIFT_TEST_TWIN_PREFIX", "gltest")
TEST_SUBNET = os.environ.get("GEARLIFT_TEST_TWIN_SUBNET", "10.89.78.0/24")


def _podman_ready() -> str | None:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman/runc are not installed (run ./scripts/bootstrap)"
    return None


def _environ(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
    except OSError:  # gone meanwhile, or not ours to read
        return ""


def twin_processes(state_dir: Path) -> list[str]:
    """Processes of the twin with this state dir on the controller: its emulator and HAProxies.

    Other twins and emulators may run on the machine at the same time (a molecule scenario's
    emulator, a parallel lane): the emulator carries its twin's state dir in its environment
    (controlplane.STATE_DIR_ENV), each HAProxy its config file under the state dir.
    """
    marker = str(state_dir.resolve())
    ps = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True).stdout
    found = []
    for line in ps.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "gearlift.twin.emulator.server" in args:
            if f"{STATE_DIR_ENV}={marker}\n" in _environ(pid) + "\n":
                found.append(line.strip())
        elif "haproxy" in args and marker in args:
            found.append(line.strip())
    return found


def leftovers(prefix: str, state_dir: Path) -> list[str]:
    """Anything of the twin with this prefix and state dir that is still there."""
    found = [f"container {c.name}" for c in podman.list_containers(f"{podman.LABEL}={prefix}")]
    if podman.container_exists(f"{prefix}-anchor"):
        found.append(f"container {prefix}-anchor")
    if podman.network_exists(prefix):
        found.append(f"network {prefix}")
    found += [f"process {p}" for p in twin_processes(state_dir)]
    return found


@contextmanager
def running_twin(state: Path) -> Iterator[Twin]:
    """A test twin on ``state`` with its reconcile loop running; down and checked for leftovers after.

    The story-based lifecycle tests each use one (their own account, so their own golden image)."""
    reason = _podman_ready()
    if reason:
        pytest.skip(reason)
    twin = Twin(TwinConfig(prefix=TEST_PREFIX, subnet=TEST_SUBNET, state_dir=state, interval=1.0))
    twin.up()
    try:
        twin.start_loop()
        yield twin
    finally:
        twin.down()
        assert not leftovers(TEST_PREFIX, state)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    reason = _podman_ready()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp(f"{TEST_PREFIX}-state")
    config = TwinConfig(prefix=TEST_PREFIX, subnet=TEST_SUBNET, state_dir=state, interval=1.0)
    instance = Twin(config)
    instance.up()
    try:
        yield instance
    finally:
        instance.down()
        left = leftovers(TEST_PREFIX, state)
        assert not left, f"twin left things behind: {left}"


@pytest.fixture(scope="session")
def standin_jar() -> Path:
    if shutil.which("javac") is None:
        pytest.skip("javac is not installed (run ./scripts/bootstrap)")
    subprocess.run(["bash", str(REPO / "app/shop-standin/build.sh")], check=True, capture_output=True)
    jar = REPO / "app/shop-standin/build/shop-standin.jar"
    assert jar.exists()
    return jar


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    import sys

    return Path(sys.executable).parent


def ansible_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    import sys

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.update(extra or {})
    return env


def http_target_group_behind_alb(twin: Twin, name: str, vpc: str, subnets: list[str]) -> str:
    """A target group checking /health on 8080 (5 s, 2/2) behind an ALB named <name>-alb listening on 80."""
    elbv2 = twin.clients("elbv2")
    tg: str = elbv2.create_target_group(
        Name=f"{name}-tg",
        Protocol="HTTP",
        Port=8080,
        VpcId=vpc,
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, Type="application")["LoadBalancers"][0]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    return tg
