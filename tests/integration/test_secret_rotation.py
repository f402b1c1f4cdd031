"""Issue 18 item 3's acceptance on the twin: a rotation forced while the shop takes orders.

The story runs up to the cutover (the app's login exists on RDS, the fleet behind the ALB takes
the customers' orders), then the app secret is rotated through the toolkit's own rotation function
(deployed by playbooks/data.yml, run by the twin's Lambda stand-in against the MariaDB of RDS).
Expected: the secret names the other login of the pair, every host moves its new connections to it
(the re-fetch timer, no reboot, no restart), 0 orders fail meanwhile, and no host was replaced or
restarted.

Needs a twin, the stand-in jar and PyMySQL in the venv (vendored into the function's package).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from gearlift.story import runner
from gearlift.story.phases import select
from gearlift.story.runner import Story, execute
from gearlift.twin import podman
from gearlift.twin.twin import Twin

from .conftest import REPO, running_twin

# A whole story up to the cutover, then a rotation and the hosts' re-fetch (up to the timer's period):
# the on-demand lifecycle lane, like the story's own tests.
pytestmark = pytest.mark.lifecycle

SECRET = "gearlift/shop-rehearsal/app-db"
# The app: the jar's unit (java_app_service_name) or, for the WAR, Tomcat.
APP_UNITS = ("shop.service", "tomcat10.service")
# java_app_secret_refresh_interval (300 s) + its randomised delay (60 s) + slack.
PICKUP_SECONDS = 480


@pytest.fixture
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    with running_twin(tmp_path_factory.mktemp("rotation") / "state") as twin:
        yield twin


def hosts(twin: Twin) -> dict[str, str]:
    """{instance id: container} of the running EC2 hosts."""
    return {
        c.labels["gearlift.instance-id"]: c.name
        for c in podman.list_containers(twin.layout.label)
        if c.labels.get("gearlift.kind") == "ec2" and c.labels.get("gearlift.instance-id")
    }


def app_started(container: str) -> tuple[str, str]:
    """(boot id, the app's main PID and start time): a reboot or a restart changes it."""
    boot = podman.exec_(container, "cat", "/proc/sys/kernel/random/boot_id").stdout.strip()
    unit = podman.exec_(
        container, "systemctl", "show", "-p", "ExecMainPID", "-p", "ExecMainStartTimestampMonotonic", *APP_UNITS
    ).stdout.strip()
    return boot, unit


def current(twin: Twin) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(twin.clients("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"])
    return value


def logins_in_use(story: Story, twin: Twin) -> dict[str, set[str]]:
    """{fleet instance id: the logins its connections to the shop's database use}.

    Only the fleet's hosts: the site's app server was pointed at RDS by the cutover with the login of
    that moment and never re-fetches (it is retired after the cutover; with alternating logins its
    login stays valid until the rotation after next). A client shows as its address or, when the
    server resolved it, as its name (the container, named by its instance id)."""
    fleet = twin.addresses()
    by_client = {ip: iid for iid, ip in fleet.items()} | {iid: iid for iid in fleet}
    out = story.target_sql("SELECT user, host FROM information_schema.processlist WHERE db = 'shop'")
    seen: dict[str, set[str]] = {iid: set() for iid in fleet}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        client = parts[1].rsplit(":", 1)[0]
        iid = by_client.get(client) or by_client.get(client.split(".", 1)[0])
        if iid:
            seen[iid].add(parts[0])
    return seen


def test_a_rotation_while_the_shop_takes_orders_fails_no_order_and_restarts_no_host(
    twin: Twin, standin_jar: Path, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def cutover_then_rotate(story: Story) -> None:
        runner.cutover(story)
        assert story.orders is not None and story.orders.running, "no orders flowing after the cutover"
        before_hosts = hosts(twin)
        before_apps = {iid: app_started(c) for iid, c in before_hosts.items()}
        old = current(twin)
        seen["old_user"] = old["username"]
        story.orders.phase = "rotation"
        sm = twin.clients("secretsmanager")
        assert sm.describe_secret(SecretId=SECRET).get("RotationEnabled"), "data.yml did not turn rotation on"
        try:
            sm.rotate_secret(SecretId=SECRET)
        except botocore.exceptions.ClientError as exc:
            # The rotation data.yml started before the cutover created the app's login failed at setSecret;
            # Secrets Manager reattempts it now (the same four steps, the same version).
            assert "isn't complete" in str(exc), exc
        deadline = time.monotonic() + 180
        while current(twin)["username"] == old["username"] and time.monotonic() < deadline:
            time.sleep(2)
        new = current(twin)
        assert new["username"] != old["username"], "the rotation did not finish in 180 s (see the twin's log)"
        assert {old["username"], new["username"]} == {
            old["username"].removesuffix("_clone"),
            old["username"].removesuffix("_clone") + "_clone",
        }
        seen["new_user"] = new["username"]
        # Every host moves to the new login without a restart: the re-fetch timer rewrites the env file.
        deadline = time.monotonic() + PICKUP_SECONDS
        while time.monotonic() < deadline:
            in_use = logins_in_use(story, twin)
            if all(logins == {new["username"]} for logins in in_use.values()):
                break
            time.sleep(5)
        seen["in_use"] = logins_in_use(story, twin)
        # More orders on the new login only.
        confirmed = len(story.orders.confirmed)
        deadline = time.monotonic() + 60
        while len(story.orders.confirmed) < confirmed + 20 and time.monotonic() < deadline:
            time.sleep(0.5)
        seen["orders_after"] = len(story.orders.confirmed) - confirmed
        seen["failed"] = story.orders.failed("rotation")
        seen["failures"] = story.orders.failures[-5:]
        seen["hosts_same"] = hosts(twin) == before_hosts
        seen["apps_same"] = {iid: app_started(c) for iid, c in before_hosts.items()} == before_apps
        story.orders.phase = "cutover"

    steps = {**runner.STEPS, "cutover": cutover_then_rotate}
    story = Story(twin=twin, repo=REPO, plan=select(until="cutover"), log=print, work=tmp_path / "work")
    summary = execute(story, steps=steps, summary_path=tmp_path / "summary.json")
    cutover = next(p for p in summary["phases"] if p["name"] == "cutover")
    assert cutover["status"] == "passed", cutover.get("error")
    assert seen["in_use"], "no fleet host has a connection to the database"
    assert all(logins == {seen["new_user"]} for logins in seen["in_use"].values()), (
        f"after {PICKUP_SECONDS} s the fleet's logins are {seen['in_use']}: {seen}"
    )
    assert seen["orders_after"] >= 20, seen
    assert seen["failed"] == 0, seen["failures"]
    assert seen["hosts_same"], "a host was replaced during the rotation"
    assert seen["apps_same"], "a host rebooted or its app restarted during the rotation"
    assert summary["orders_lost"] == 0, summary
