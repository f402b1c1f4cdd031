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
    match = re.search(rf'^{variable}="([\w ]*)"$', SCRIPT, re.M)
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


#: Scenarios whose ground the story covers: CI runs the story instead (scripts/test explains why).
FOLDED_INTO_THE_STORY = {"golden_image"}


def test_ci_runs_the_story_every_lane_but_the_vm_and_every_other_scenario_once() -> None:
    assert "./scripts/test all" in (REPO / ".ci" / "run").read_text()
    body = _function("all")
    for step in ("lint", "stream_a"):
        assert re.search(rf"^\s+{step}\b", body, re.M), f"`all` does not run {step}"
    assert "stream_b >" in body, "`all` does not run stream B"
    # the fast lane runs first in stream B, beside the story (it needs no twin images)
    assert _function("stream_b").lstrip().startswith("fast\n")
    # the README's main command, exactly as the README states it, first in stream A
    readme = (REPO / "README.md").read_text()
    assert "./scripts/rehearse      # the main job" in readme
    assert _function("stream_a").lstrip().startswith("story\n")
    story = _function("story")
    # run without arguments (as the README states it), its exit status decides the lane, and a failure's
    # last lines are repeated in the lanes' summary (VERDICTS keeps the "story tail| " lines)
    assert '  ./scripts/rehearse 2>&1 | tee "$story_log" || rc=$?' in story
    assert re.search(r'if \[ "\$rc" -ne 0 \]; then\n\s+status=1\n', story), story
    assert "sed 's/^/story tail| /'" in story and "|story tail\\| .*|" in SCRIPT
    assert "scenarios $CI_STREAM_A" in _function("stream_a")
    assert "scenarios $CI_STREAM_B" in _function("stream_b")
    a, b = _listed("CI_STREAM_A"), _listed("CI_STREAM_B")
    assert not a & b, f"run twice in CI: {a & b}"
    assert a | b == SCENARIOS - FOLDED_INTO_THE_STORY, f"not run in CI: {SCENARIOS - a - b - FOLDED_INTO_THE_STORY}"
    assert not (a | b) & FOLDED_INTO_THE_STORY, "a scenario the story covers runs twice"
    # the slow tests: stream A runs its paths, stream B all others (--ignore each of A's), so each runs once
    paths = re.search(r'^CI_SLOW_A="([\w ./-]+)"$', SCRIPT, re.M)
    assert paths, "scripts/test does not set CI_SLOW_A"
    slow_a = paths.group(1).split()
    assert "env $CI_SLOW_A_TWIN pytest -m slow $CI_SLOW_A" in _function("stream_a")
    # the two streams' test twins never share a prefix or a subnet
    own = re.search(
        r'^CI_SLOW_A_TWIN="GEARLIFT_TEST_TWIN_PREFIX=(\w+) GEARLIFT_TEST_TWIN_SUBNET=([\d./]+)"$', SCRIPT, re.M
    )
    assert own, "stream A's slow tests need a twin prefix and subnet of their own"
    conftest = (REPO / "tests" / "integration" / "conftest.py").read_text()
    assert f'"{own.group(1)}"' not in conftest and f'"{own.group(2)}"' not in conftest
    assert "pytest -m slow tests" in _function("stream_b") and '--ignore "$path"' in _function("stream_b")
    assert all((REPO / path).exists() for path in slow_a), slow_a
    assert "vm" not in body and "lifecycle" not in body
    assert 'pytest -m "not slow and not vm and not lifecycle" tests' in _function("fast")
    assert "pytest -m lifecycle" in _function("lifecycle")
