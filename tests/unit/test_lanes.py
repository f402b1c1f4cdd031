"""Every molecule scenario runs in a lane of scripts/test (none silently left out of the README's lanes)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _lane(script: str, name: str) -> str:
    match = re.search(rf"^{name}\(\) {{\n(.*?)^}}", script, re.S | re.M)
    assert match, f"scripts/test has no {name}() lane"
    return match.group(1)


def test_every_scenario_is_in_exactly_one_lane() -> None:
    script = (REPO / "scripts" / "test").read_text()
    scenarios = {p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml")}
    slow = set(re.findall(r"molecule test -s (\w+)", _lane(script, "slow")))
    roles_loop = re.search(r"for scenario in ([\w ]+); do", _lane(script, "roles"))
    assert roles_loop, "the roles lane lists no scenario"
    roles = set(roles_loop.group(1).split())
    assert slow == {"golden_image"}
    assert not slow & roles, f"in both lanes: {slow & roles}"
    missing, unknown = scenarios - slow - roles, (slow | roles) - scenarios
    assert not missing and not unknown, f"not in a lane: {missing}; no such scenario: {unknown}"
