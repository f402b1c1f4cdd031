"""Every molecule scenario is in exactly one lane of scripts/test, and CI (`all`) runs them all."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = (REPO / "scripts" / "test").read_text()
SCENARIOS = {p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml")}


def _function(name: str) -> str:
    match = re.search(rf"^{name}\(\) {{\n(.*?)^}}", SCRIPT, re.S | re.M)
    assert match, f"scripts/test has no {name}() function"
    return match.group(1)


def _listed(variable: str) -> set[str]:
    match = re.search(rf'^{variable}="([\w ]+)"$', SCRIPT, re.M)
    assert match, f"scripts/test does not set {variable}"
    return set(match.group(1).split())


def test_every_scenario_is_in_exactly_one_lane() -> None:
    slow, roles = _listed("SLOW_SCENARIOS"), _listed("ROLE_SCENARIOS")
    assert "scenarios $SLOW_SCENARIOS" in _function("slow")
    assert "scenarios $ROLE_SCENARIOS" in _function("roles")
    assert slow == {"golden_image"}
    assert not slow & roles, f"in both lanes: {slow & roles}"
    missing, unknown = SCENARIOS - slow - roles, (slow | roles) - SCENARIOS
    assert not missing and not unknown, f"not in a lane: {missing}; no such scenario: {unknown}"


def test_ci_runs_every_lane_but_the_vm_and_every_scenario_once() -> None:
    assert "./scripts/test all" in (REPO / ".ci" / "run").read_text()
    body = _function("all")
    for step in ("lint", "fast", "stream_a"):
        assert re.search(rf"^\s+(\{{ )?({step}\b|.*; {step}\b)", body, re.M), f"`all` does not run {step}"
    assert "stream_b >" in body, "`all` does not run stream B"
    assert "pytest -m slow tests" in _function("stream_a")
    assert "scenarios $CI_STREAM_A" in _function("stream_a")
    assert "scenarios $CI_STREAM_B" in _function("stream_b")
    a, b = _listed("CI_STREAM_A"), _listed("CI_STREAM_B")
    assert not a & b, f"run twice in CI: {a & b}"
    assert a | b == SCENARIOS, f"not run in CI: {SCENARIOS - a - b}"
    assert "vm" not in body and "lifecycle" not in body
    assert 'pytest -m "not slow and not vm and not lifecycle" tests' in _function("fast")
    assert "pytest -m lifecycle" in _function("lifecycle")
