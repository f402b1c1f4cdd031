"""With the session store on, the fleet's churn under load loses no cart and no design (issue 15, acceptance 2).

The story up to the cutover with ``gearlift_session_store: redis`` (site.yml builds ElastiCache, the
golden image keeps carts there), customers shopping through the shop's name; then, with carts in flight
on the fleet: an instance refresh (deploy.yml onto a new launch template version), a patch run
(patch.yml) and a scale-out followed by a scale-in (the capacity a scaling policy would set). Every
host that held sessions is replaced, rebooted or drained, and no customer loses a cart line or a design.
The same churn with stickiness alone loses the carts of each replaced host (the story's own figure).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gearlift.story import runner
from gearlift.story.phases import select
from gearlift.story.runner import NAME, Story, execute
from gearlift.twin.twin import Twin

from .conftest import REPO, running_twin

# A whole story to the cutover (with a bake of its own: the session store is an input of the image),
# then the churn: the on-demand lifecycle lane.
pytestmark = pytest.mark.lifecycle

SESSIONS = {"gearlift_session_store": "redis"}
#: The churn's phases, as the shoppers count carts lost in them.
CHURN = ("refresh", "patch", "scale_out", "scale_in")
#: Room for the designs uploaded during the churn too (the story's loop stops uploading at 64 MiB).
UPLOAD_BYTES = 192 * 1024 * 1024


@pytest.fixture
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    with running_twin(tmp_path_factory.mktemp("sessions") / "state") as twin:
        yield twin


def wait(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(3)


def group(story: Story) -> dict[str, Any]:
    found: dict[str, Any] = story.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])[
        "AutoScalingGroups"
    ][0]
    return found


def in_service(story: Story) -> set[str]:
    return {i["InstanceId"] for i in group(story)["Instances"] if i["LifecycleState"] == "InService"}


def healthy_targets(story: Story) -> set[str]:
    elbv2 = story.clients("elbv2")
    out: set[str] = set()
    for arn in group(story)["TargetGroupARNs"]:
        for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
            if d["TargetHealth"]["State"] == "healthy":
                out.add(d["Target"]["Id"])
    return out


def test_with_the_session_store_a_refresh_a_patch_run_and_a_scale_in_lose_no_cart_and_no_design(
    twin: Twin, standin_jar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "EXTRA", SESSIONS)
    seen: dict[str, Any] = {}

    def estate_with_room_for_uploads(story: Story) -> None:
        runner.estate(story)
        assert story.shoppers is not None
        story.shoppers.max_upload_bytes = UPLOAD_BYTES

    def cutover_then_churn(story: Story) -> None:
        runner.cutover(story)
        loops = [loop for loop in (story.orders, story.shoppers) if loop is not None]
        assert story.shoppers is not None and story.shoppers.running, "no shoppers after the cutover"

        def phase(name: str) -> None:
            for loop in loops:
                loop.phase = name

        def settle(steps: int = 30) -> None:
            """Enough shopper steps that each shopper's next cart update shows whether its cart survived."""
            assert story.shoppers is not None
            before = sum(t.sent for t in story.shoppers.by_phase.values())
            wait(
                "the shoppers to go on",
                lambda: sum(t.sent for t in story.shoppers.by_phase.values()) >= before + steps,
                180,
            )

        settle()
        hosts = in_service(story)
        # 1. An instance refresh: a new launch template version (another instance type) replaces every host.
        phase("refresh")
        story.play("playbooks/deploy.yml", gearlift_instance_type="t3.medium")
        settle()
        after = in_service(story)
        seen["refresh_replaced_all"] = not (hosts & after)
        # 2. A patch run: each host in turn leaves service (Standby or surge), is patched and comes back.
        phase("patch")
        story.play("playbooks/patch.yml", fleet_patch_run=f"sessions-{story.stamp}")
        settle()
        # 3. A scale-out, then the scale-in that follows a peak (the capacity a scaling policy sets).
        autoscaling = story.clients("autoscaling")
        base = int(group(story)["DesiredCapacity"])
        phase("scale_out")
        autoscaling.set_desired_capacity(AutoScalingGroupName=NAME, DesiredCapacity=base + 1, HonorCooldown=False)
        wait(f"{base + 1} healthy hosts", lambda: len(in_service(story) & healthy_targets(story)) == base + 1, 600)
        settle()
        before_in = in_service(story)
        phase("scale_in")
        autoscaling.set_desired_capacity(AutoScalingGroupName=NAME, DesiredCapacity=base, HonorCooldown=False)
        wait(f"the group back at {base} hosts", lambda: len(group(story)["Instances"]) == base, 600)
        seen["scaled_in"] = sorted(before_in - in_service(story))
        settle(60)
        assert story.shoppers is not None
        seen["carts_lost"] = {p: story.shoppers.carts_lost.get(p, 0) for p in CHURN}
        seen["requests"] = {p: story.shoppers.by_phase[p].sent for p in CHURN if p in story.shoppers.by_phase}
        seen["uploads_during_churn"] = len(story.shoppers.uploads)
        seen["failures"] = [f for f in story.shoppers.failures if f.split(" ")[1] in CHURN][:10]
        phase("cutover")

    steps = {**runner.STEPS, "estate": estate_with_room_for_uploads, "cutover": cutover_then_churn}
    story = Story(twin=twin, repo=REPO, plan=select(until="cutover"), log=print, work=tmp_path / "work")
    summary = execute(story, steps=steps, summary_path=tmp_path / "summary.json")
    cutover = next(p for p in summary["phases"] if p["name"] == "cutover")
    assert cutover["status"] == "passed", cutover.get("error")
    assert seen["refresh_replaced_all"], seen
    assert len(seen["scaled_in"]) == 1, seen
    assert all(seen["requests"].get(p, 0) > 0 for p in CHURN), f"no shopping in some churn phase: {seen}"
    assert seen["carts_lost"] == dict.fromkeys(CHURN, 0), seen
    # The cutover itself moves customers off the legacy shop's in-memory sessions: those carts are
    # counted apart (carts_left_at_switch); with the session store the new platform loses none.
    carts = summary["detail"].get("carts", {})
    print(
        f"carts lost by phase: {carts.get('lost_by_phase')}; left at the switch: "
        f"{carts.get('left_at_switch_by_phase')}; churn: {seen}"
    )
    assert summary["carts_lost"] == 0, carts
    assert summary["uploads_lost"] == 0 and summary["uploads_confirmed"] > 0, summary["detail"].get("uploads")
    assert summary["orders_lost"] == 0, summary["detail"].get("orders")
