"""The host firewall's task order keeps the play's own connection alive on a live host.

Connection tracking starts when ufw first loads its rules: the SSH connection running the play is
unknown to it until its next packet passes. With a default deny outgoing already in place at that
first enable, that packet (the enable task's reply, server to controller) is a NEW outgoing packet
and is dropped, again and again: the play hangs (seen on the qemu VM lane, ``[UFW BLOCK] ... OUT
... SPT=22``). So: allow rules, then enable with outgoing allowed, then the deny policies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SECTION_4 = Path(__file__).resolve().parents[2] / "roles" / "hardening" / "tasks" / "section_4.yml"


def _ufw_tasks() -> list[dict[str, Any]]:
    """The community.general.ufw tasks of section 4, in the order they run."""
    found: list[dict[str, Any]] = []

    def walk(tasks: object) -> None:
        for task in tasks if isinstance(tasks, list) else []:
            if isinstance(task, dict):
                if "community.general.ufw" in task:
                    found.append(task)
                walk(task.get("block"))

    walk(yaml.safe_load(SECTION_4.read_text(encoding="utf-8")))
    return found


def _position(tasks: list[dict[str, Any]], predicate: Any) -> list[int]:
    return [index for index, task in enumerate(tasks) if predicate(task["community.general.ufw"])]


def test_rules_then_enable_then_the_deny_policies() -> None:
    tasks = _ufw_tasks()
    enable = _position(tasks, lambda args: args.get("state") == "enabled")
    rules = _position(tasks, lambda args: "rule" in args)
    deny = _position(tasks, lambda args: "default" in args and args.get("default") != "allow")
    assert len(enable) == 1, f"one task enables ufw, found {len(enable)}"
    assert rules and deny, "section 4 adds allow rules and sets the deny policies"
    assert max(rules) < enable[0], "every allow rule is in place before ufw is enabled"
    assert min(deny) > enable[0], "the default deny policies are set only after the first enable"


def test_a_host_still_inactive_is_enabled_with_outgoing_allowed() -> None:
    tasks = _ufw_tasks()
    enable = _position(tasks, lambda args: args.get("state") == "enabled")[0]
    allow_out = _position(tasks, lambda args: args.get("default") == "allow" and args.get("direction") == "outgoing")
    assert len(allow_out) == 1 and allow_out[0] < enable
    when = tasks[allow_out[0]]["when"]
    assert any("Status: inactive" in str(condition) for condition in when), (
        "outgoing allow is set only while ufw is inactive (the host filters nothing yet): never a loosening"
    )
