# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.ssm_patching``'s maintenance window: what it may do to the fleet.

The window runs ``AWS-RunPatchBaseline`` on the instances of a patch group. Unlike
``playbooks/patch.yml`` it cannot take a host out of service first: it neither puts the host in
Standby nor deregisters it from the target group, and it cannot add capacity (no surge). Two
settings are therefore refused unless a named override says the risk is accepted:

* ``reboot_option: RebootIfNeeded`` - the window would reboot in-service hosts with no drain:
  requests in flight fail, the load balancer still sends new ones, and if the reboot outlasts the
  health check grace the ELB health check marks the host unhealthy and Auto Scaling replaces it
  by a host from the launch template's (unpatched) image. The window installs without a reboot
  (``NoReboot``); a kernel or library update that needs one reaches the fleet through
  ``playbooks/patch.yml`` (Standby, drain, reboot) or a new golden image.
* ``max_concurrency`` other than ``1`` - the window knows neither the group's size nor its
  minimum: two hosts at once are the whole of a group at its minimum of two, and a percentage
  (``100%``) is every host at once.

Malformed values (AWS's own format: a positive number, or 1-100 followed by ``%``) are refused
whatever the overrides say. Nothing in here talks to AWS.
"""

from __future__ import annotations

import re
from typing import Any

CONCURRENCY = re.compile(r"^(?:[1-9][0-9]*|[1-9][0-9]?%|100%)$")
ERRORS = re.compile(r"^(?:0|[1-9][0-9]*|[0-9]%|[1-9][0-9]%|100%)$")
SAFE_CONCURRENCY = "1"


def window_errors(window: dict[str, Any]) -> list[str]:
    """Why the window's settings are refused (empty: accepted)."""
    errors: list[str] = []
    concurrency = str(window.get("max_concurrency", ""))
    max_errors = str(window.get("max_errors", ""))
    if not CONCURRENCY.match(concurrency):
        errors.append(
            f"window.max_concurrency must be a positive number or a percentage of 1-100%, got {concurrency!r}"
        )
    elif concurrency != SAFE_CONCURRENCY and not window.get("allow_unsafe_concurrency"):
        errors.append(
            f"window.max_concurrency {concurrency!r} patches more than one host at a time: the window knows neither "
            "the group's size nor its minimum and cannot add capacity first, so it can take every host of a small "
            "group down at once. Use '1' (playbooks/patch.yml patches whole batches with a surge), or set "
            "window.allow_unsafe_concurrency (fleet_patch_window_allow_unsafe_concurrency) to accept that"
        )
    if not ERRORS.match(max_errors):
        errors.append(f"window.max_errors must be a number or a percentage of 0-100%, got {max_errors!r}")
    if window.get("reboot_option") == "RebootIfNeeded" and not window.get("allow_undrained_reboot"):
        errors.append(
            "window.reboot_option RebootIfNeeded reboots in-service hosts without a drain (no Standby, no "
            "deregistration): requests fail, and a host still rebooting after the health check grace is replaced by "
            "one from the unpatched image. Keep NoReboot (updates that need a reboot go through playbooks/patch.yml, "
            "which drains each host through Standby, or a new golden image), or set window.allow_undrained_reboot "
            "(fleet_patch_window_allow_undrained_reboot) to accept that"
        )
    return errors
