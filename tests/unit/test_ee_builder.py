"""`ansible-builder create` accepts execution-environment.yml, and its Containerfile is the one we mean.

ansible-builder (the pin of pyproject.toml's test extra) validates the definition against its v3
schema and writes the build context, without a container runtime or a network. The generated
Containerfile is then read as the build would run it: it starts from the pinned base image's digest,
and the final stage declares the plugin's version and checksum arguments before the step that
downloads the plugin, checks it with sha256sum and only then installs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.module_harness import REPO

BUILDER = Path(sys.executable).parent / "ansible-builder"


def _stages(containerfile: str) -> dict[str, list[str]]:
    """Instructions per build stage (`FROM ... AS name`); "" holds the global ARGs before the first FROM."""
    stages: dict[str, list[str]] = {"": []}
    current = ""
    for line in containerfile.splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\w+)", line, re.I)
        if match:
            current = match.group(1)
            stages[current] = []
        if line.strip() and not line.startswith("#"):
            stages[current].append(line)
    return stages


def test_ansible_builder_create_accepts_the_definition_and_pins_base_and_plugin(tmp_path: Path) -> None:
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    context = tmp_path / "context"
    done = subprocess.run(
        [str(BUILDER), "create", "-f", str(REPO / "execution-environment.yml"), "-c", str(context), "-v", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    containerfile = (context / "Containerfile").read_text()
    stages = _stages(containerfile)
    assert list(stages) == ["", "base", "galaxy", "builder", "final"], list(stages)

    # The base image: the definition's digest, as the default of the one ARG every stage starts from.
    base = ee["images"]["base_image"]["name"]
    assert re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", base), base
    assert stages[""].count(f'ARG EE_BASE_IMAGE="{base}"') == 1, stages[""]
    froms = [line for line in containerfile.splitlines() if line.startswith("FROM ")]
    assert froms[0] == "FROM $EE_BASE_IMAGE AS base", froms
    assert all(re.fullmatch(r"FROM (base|\$EE_BASE_IMAGE) AS \w+", line) for line in froms), froms

    # The build context carries the definition's pinned inputs unchanged.
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == yaml.safe_load(
        (REPO / ee["dependencies"]["galaxy"]).read_text()
    )
    assert (context / "_build" / "requirements.txt").read_text() == (REPO / ee["dependencies"]["python"]).read_text()
    assert f'ARG ANSIBLE_INSTALL_REFS="{ee["dependencies"]["ansible_core"]["package_pip"]} ' in containerfile

    # The plugin: its arguments reach the final stage, and the one RUN that downloads it checks the
    # SHA-256 before rpm -i.
    final = stages["final"]
    assert 'ARG SESSION_MANAGER_PLUGIN_VERSION=""' in final and 'ARG SESSION_MANAGER_PLUGIN_SHA256=""' in final
    runs = [line for line in final if "session-manager-downloads" in line]
    assert len(runs) == 1, runs
    run = runs[0]
    assert final.index('ARG SESSION_MANAGER_PLUGIN_SHA256=""') < final.index(run)
    fetch, check, install = (run.index(s) for s in ("curl -fsSLo", "sha256sum -c -", "rpm -i"))
    assert fetch < check < install, run
    assert "latest" not in run
    # No other stage downloads anything outside the package managers and pip.
    others = [line for name, lines in stages.items() if name != "final" for line in lines]
    assert not [line for line in others if re.search(r"\b(curl|wget)\b|ADD\s+https?://", line)]
