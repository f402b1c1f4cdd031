"""Supply chain: what the controller, the tests and the execution environment install is pinned and verified.

* requirements.yml pins each collection to exactly the version the pinned `ansible` package bundles
  (the one installed here);
* every Python dependency of pyproject.toml is pinned (the type stubs too);
* the execution environment's Session Manager plugin download: a given version (never "latest"),
  checked against a given SHA-256 before it is installed; without both the build refuses. The
  step's own shell runs here with curl and rpm replaced by recorders (no network).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.unit.module_harness import REPO

# The collections the `ansible` PyPI package installed (site-packages/ansible_collections).
BUNDLE = Path(str(importlib.metadata.distribution("ansible").locate_file("ansible_collections")))


def test_requirements_pin_exactly_the_collections_the_ansible_package_bundles() -> None:
    wanted = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    assert wanted, "requirements.yml lists no collection"
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        manifest = BUNDLE / namespace / name / "MANIFEST.json"
        assert manifest.is_file(), f"{entry['name']} is not in the installed ansible package ({BUNDLE})"
        bundled = json.loads(manifest.read_text())["collection_info"]["version"]
        assert str(entry["version"]) == f"=={bundled}", f"{entry['name']}: pinned {entry['version']}, bundled {bundled}"


def test_every_python_dependency_is_pinned() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"]) + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    loose = [r for r in requirements if not re.fullmatch(r"[A-Za-z0-9_.-]+(\[[a-z0-9,_-]+\])?==[0-9][0-9A-Za-z.]*", r)]
    assert not loose, f"not pinned with ==: {loose}"
    assert any(r.startswith("boto3-stubs[") for r in requirements)
    ee = (REPO / "execution-environment" / "requirements.txt").read_text().splitlines()
    loose_ee = [r for r in ee if r.strip() and not r.startswith("#") and "==" not in r]
    assert not loose_ee, f"execution-environment/requirements.txt not pinned: {loose_ee}"


def _plugin_step() -> str:
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    steps = [s for s in ee["additional_build_steps"]["append_final"] if "session-manager-plugin" in s]
    assert len(steps) == 1, steps
    assert "latest" not in steps[0], "the plugin must be downloaded by version, not latest"
    return str(steps[0]).removeprefix("RUN ")


@pytest.fixture
def rig(tmp_path: Path) -> dict[str, Path]:
    """curl and rpm replaced by recorders; the 'download' is a local file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    rpm = tmp_path / "plugin.rpm"
    rpm.write_bytes(b"not really an rpm, but the bytes whose checksum is checked\n")
    (bindir / "curl").write_text(
        f'#!/bin/sh\nfor a; do last="$a"; done\necho "$last" >> {tmp_path}/urls\n'
        f'out=""; prev=""; for a; do [ "$prev" = "-fsSLo" ] && out="$a"; prev="$a"; done\ncp {rpm} "$out"\n'
    )
    (bindir / "rpm").write_text(f'#!/bin/sh\necho "rpm $*" >> {tmp_path}/installed\n')
    (bindir / "session-manager-plugin").write_text("#!/bin/sh\necho 1.2.3.4\n")
    for tool in bindir.iterdir():
        tool.chmod(0o755)
    return {"bin": bindir, "rpm": rpm, "dir": tmp_path}


def _build_step(rig: dict[str, Path], version: str, sha256: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{rig['bin']}{os.pathsep}/usr/bin:/bin",
        "SESSION_MANAGER_PLUGIN_VERSION": version,
        "SESSION_MANAGER_PLUGIN_SHA256": sha256,
    }
    script = _plugin_step().replace("/tmp/session-manager-plugin.rpm", str(rig["dir"] / "download.rpm"))
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_ee_build_refuses_the_plugin_without_version_and_checksum(rig: dict[str, Path]) -> None:
    for version, sha in (("", ""), ("1.2.3.4", ""), ("latest", "0" * 64), ("1.2.3.4", "ABC")):
        done = _build_step(rig, version, sha)
        assert done.returncode != 0 and "refused: pass --build-arg SESSION_MANAGER_PLUGIN_VERSION" in done.stderr
    assert not (rig["dir"] / "urls").exists(), "nothing may be downloaded before the pins are checked"


def test_the_ee_build_refuses_a_download_that_does_not_match(rig: dict[str, Path]) -> None:
    done = _build_step(rig, "1.2.3.4", "0" * 64)
    assert done.returncode != 0
    assert not (rig["dir"] / "installed").exists(), "a download that does not match must not be installed"


def test_the_ee_build_installs_the_verified_version(rig: dict[str, Path]) -> None:
    sha = hashlib.sha256(rig["rpm"].read_bytes()).hexdigest()
    done = _build_step(rig, "1.2.3.4", sha)
    assert done.returncode == 0, done.stderr
    urls = (rig["dir"] / "urls").read_text().split()
    assert urls == [
        "https://s3.amazonaws.com/session-manager-downloads/plugin/1.2.3.4/linux_64bit/session-manager-plugin.rpm"
    ]
    assert (rig["dir"] / "installed").read_text().startswith("rpm -i ")
