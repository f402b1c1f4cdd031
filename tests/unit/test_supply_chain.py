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


def _ee() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "execution-environment.yml").read_text())


def test_the_ee_base_image_is_referenced_by_digest_and_the_docs_say_where_it_comes_from() -> None:
    name = _ee()["images"]["base_image"]["name"]
    match = re.fullmatch(r"(?P<repo>[a-z0-9.-]+(?:/[a-z0-9._-]+)+)@sha256:(?P<digest>[0-9a-f]{64})", name)
    assert match, f"the base image must be name@sha256:<64 hex>, not a tag: {name}"
    docs = (REPO / "docs" / "awx.md").read_text()
    # the docs record the digest's origin and how to update it, for this very digest
    assert name in docs, "docs/awx.md does not show the pinned base image's digest"
    section = docs.split("### The base image's digest", 1)[1].split("\n### ", 1)[0]
    assert "To update it" in section and "skopeo inspect" in section


# A command that fetches something over the network into a file, in a build step.
_DOWNLOAD = re.compile(r"^(?P<tool>curl|wget)\b")
_OUTPUT = re.compile(r"(?:\s-[A-Za-z]*o\s+|\s--output[= ]|\s-O\s+|\s--output-document[= ])(?P<file>\S+)")


def _commands(step: str) -> list[str]:
    """A build step's shell commands in order (a pipeline stays one command)."""
    step = re.sub(r"^\s*RUN\s+", "", step)
    return [c.strip() for c in re.split(r";|&&|\|\||\n", step) if c.strip()]


def _downloads(steps: list[str]) -> list[tuple[str, str]]:
    """(step, downloaded file) of every download in the definition's build steps."""
    found = []
    for step in steps:
        if re.match(r"^\s*ADD\s", step) and "://" in step:
            assert "--checksum=sha256:" in step, f"ADD of a URL without --checksum: {step}"
            found.append((step, "<ADD>"))
            continue
        for command in _commands(step):
            if _DOWNLOAD.match(command):
                out = _OUTPUT.search(f" {command}")
                assert out, f"a download that is not written to a file cannot be verified: {command}"
                found.append((step, out.group("file").strip("'\"")))
    return found


def test_every_download_in_the_ee_definition_is_verified_by_checksum_before_use() -> None:
    steps = [str(s) for stage in _ee().get("additional_build_steps", {}).values() for s in stage]
    downloads = _downloads(steps)
    assert downloads, "the definition downloads the Session Manager plugin; none found"
    for step, path in downloads:
        if path == "<ADD>":
            continue
        commands = _commands(step)
        fetched = next(i for i, c in enumerate(commands) if _DOWNLOAD.match(c) and path in c)
        assert "latest" not in commands[fetched], commands[fetched]
        checks = [i for i, c in enumerate(commands) if i > fetched and "sha256sum -c" in c and path in c]
        assert checks, f"{path} is never checked with sha256sum -c"
        check = commands[checks[0]]
        # every later use of the file comes after the check (the download itself and the check aside)
        used = [i for i, c in enumerate(commands) if i > fetched and path in c and not c.startswith("rm ")]
        assert used[0] == checks[0], f"{path} is used before its checksum is checked: {commands[used[0]]}"
        # the expected digest is a literal, or a build argument refused unless it is 64 hex digits,
        # checked before anything is downloaded
        literal = re.search(r"\b[0-9a-f]{64}\b", check)
        variable = re.search(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", check)
        assert literal or variable, f"no expected digest in {check}"
        if not literal:
            assert variable
            name = variable.group(1)
            guard = next((i for i, c in enumerate(commands) if f'"${name}"' in c and "^[0-9a-f]{64}$" in c), None)
            assert guard is not None and guard < fetched, f"${name} is not refused unless it is a SHA-256"
            assert any(s.strip().startswith(f"ARG {name}") for s in steps), f"${name} is not a build argument"
