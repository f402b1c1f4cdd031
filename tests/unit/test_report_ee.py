"""execution-environment.yml: the ansible-builder v3 structure, and what the image must carry."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EE = yaml.safe_load((ROOT / "execution-environment.yml").read_text())

# ansible-builder 3.x definition schema (docs.ansible.com/projects/builder/en/latest/definition/)
TOP_LEVEL = {
    "version",
    "images",
    "dependencies",
    "options",
    "additional_build_steps",
    "additional_build_files",
    "build_arg_defaults",
}
DEPENDENCIES = {"python", "system", "galaxy", "python_interpreter", "ansible_core", "ansible_runner", "exclude"}
BUILD_STEPS = {f"{when}_{stage}" for when in ("prepend", "append") for stage in ("base", "galaxy", "builder", "final")}
OPTIONS = {
    "container_init",
    "package_manager_path",
    "relax_passwd_permissions",
    "skip_ansible_check",
    "skip_pip_install",
    "tags",
    "workdir",
    "user",
}


def test_v3_structure():
    assert EE["version"] == 3
    assert set(EE) <= TOP_LEVEL
    assert isinstance(EE["images"]["base_image"]["name"], str) and "/" in EE["images"]["base_image"]["name"]
    deps = EE["dependencies"]
    assert set(deps) <= DEPENDENCIES
    assert set(EE.get("additional_build_steps", {})) <= BUILD_STEPS
    assert set(EE.get("options", {})) <= OPTIONS
    # files the definition names exist, relative to the definition
    assert (ROOT / deps["galaxy"]).is_file()
    assert (ROOT / deps["python"]).is_file()
    assert isinstance(deps["system"], list) and all("[platform:rpm]" in line for line in deps["system"])
    assert "openssh-clients [platform:rpm]" in deps["system"]
    # Python >= 3.11 for ansible-core 2.19
    assert deps["python_interpreter"]["python_path"].endswith("python3.11")
    steps = " ".join(EE["additional_build_steps"]["append_final"])
    assert "session-manager-plugin" in steps


def test_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(re.match(r"^([A-Za-z0-9_.-]+(?:\[[^\]]+\])?)==(.+)$", d).groups() for d in project if "==" in d)
    ee_pins = dict(
        line.split("==", 1)
        for line in (ROOT / EE["dependencies"]["python"]).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for name in ("boto3", "botocore", "netaddr"):
        assert ee_pins[name] == pins[name], name
    assert EE["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={pins['ansible-core']}"
    assert EE["dependencies"]["ansible_runner"]["package_pip"] == f"ansible-runner=={pins['ansible-runner']}"


def test_requirements_cover_the_collections_in_use():
    listed = {c["name"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    used: set[str] = set()
    for path in [*ROOT.glob("playbooks/**/*.yml"), *ROOT.glob("roles/*/tasks/*.yml"), ROOT / "site.yml"]:
        used |= set(re.findall(r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_0-9]+:", path.read_text(), re.MULTILINE))
    used -= {"ansible.builtin", "gearlift.platform"}
    missing = used - listed
    assert not missing, f"add to requirements.yml: {sorted(missing)}"


def test_ansible_builder_schema_when_installed():
    schema = pytest.importorskip("ansible_builder.ee_schema", reason="ansible-builder is not installed (optional)")
    schema.validate_schema(EE)  # raises DefinitionError when the file breaks the v3 schema
