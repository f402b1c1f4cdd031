"""The private channel between the twin's data plane and its emulator process, defined once.

The data plane knows things the AWS APIs cannot be told (an image's container is committed,
what the load balancer's health checks saw), and asks what only EC2 itself hands out (an
instance's role credentials, served to the instance by IMDS); it POSTs them as JSON to ``PATH + <report>`` on
the emulator. Playbooks and modules never use it: it is not an AWS API. The emulator side
(gearlift.twin.emulator.server) dispatches on the same names.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Final

PATH: Final = "/_gearlift/"
# An image's container was committed into a local image: the AMI becomes available.
IMAGE_AVAILABLE: Final = "image-available"
# The target health the data plane's checks saw: {target group ARN: {target id: state}}.
TARGET_HEALTH: Final = "target-health"
# An image the account kept from an earlier rehearsal (gearlift.twin.dataplane.amis): register it again.
IMAGE_RESTORE: Final = "image-restore"
# Advance instance refreshes now (the emulator also ticks by itself every second).
TICK: Final = "tick"
# Temporary credentials of an instance's profile role, for the IMDS server: {"instance_id": ...}.
ROLE_CREDENTIALS: Final = "role-credentials"
# The secret rotations to run now (RotateSecret, the schedule), with each rotation function's code,
# configuration and role credentials, for the data plane's Lambda stand-in: {"region": ...}.
ROTATIONS: Final = "rotations"
REPORTS: Final = frozenset({IMAGE_AVAILABLE, IMAGE_RESTORE, TARGET_HEALTH, TICK, ROLE_CREDENTIALS, ROTATIONS})


def send(endpoint: str, report: str, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """POST one report to the emulator at ``endpoint``; its JSON answer."""
    if report not in REPORTS:
        raise ValueError(f"unknown report {report!r} (one of {sorted(REPORTS)})")
    request = urllib.request.Request(  # noqa: S310 - the twin's own emulator on loopback
        f"{endpoint}{PATH}{report}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
        answer: dict[str, Any] = json.loads(resp.read() or b"{}")
    return answer
