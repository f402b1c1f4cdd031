"""The execution environment the way AWX uses it: built with ansible-builder, a playbook run inside it.

No registry is reachable here (neither Red Hat's for the UBI base image nor Galaxy), so the image is
built from a test-only definition generated from execution-environment.yml. It keeps the definition's
ansible-core / ansible-runner pins, Python requirements, collection pins, build steps and the Session
Manager plugin's checked download, and changes only what this machine forces:

* the base image is the project's local Debian image (gearlift.twin.images.BASE_IMAGE) with apt-get
  instead of UBI and dnf; prepend steps refresh apt's lists, add python3.11-venv (ansible-builder's
  scripts make a venv) and install pip from the wheel Debian ships for ensurepip, since Debian's
  ensurepip refuses the system Python (`skip_pip_install` then leaves out the builder's ensurepip
  step), and pip in the build is given the CA bundle of this machine's pip (PIP_CERT): the package
  index is reached through a TLS-intercepting proxy here, which the base image's trust store does not
  know (the one build run so far stopped at the first `pip install` with CERTIFICATE_VERIFY_FAILED,
  "self-signed certificate in certificate chain"). The definition's system packages are all
  `[platform:rpm]`, so bindep installs none on Debian;
* the collections of requirements.yml, at the same pinned versions (`==`), are installed from the
  copies the pinned `ansible` package bundles (`type: dir`) instead of Galaxy;
* the plugin's AWS download is a stand-in file: `curl` and `rpm` are replaced, for that one step only,
  by stand-ins that hand over the file and install a stub; the step itself runs unchanged, with the
  stand-in's SHA-256 as its build argument, so its version and checksum checks run in the build.

Then `ansible-navigator run --mode stdout --ee true --ce podman --pp never` from the project checkout,
as an AWX job runs from its project: the gearlift.platform collection comes from the checkout
(ansible.cfg's collections_path), the other collections and ansible-core from the image.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gearlift.twin.images import BASE_IMAGE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUNDLE = Path(str(importlib.metadata.distribution("ansible").locate_file("ansible_collections")))
IMAGE = "localhost/gearlift-ee-test:latest"
PLUGIN_VERSION = "0.0.0.1"  # a stand-in's version: no AWS release has it
# The CA bundle this machine's pip uses (pip.conf / PIP_CERT): the package index may be reached
# through a TLS-intercepting proxy, whose CA the base image does not know.
HOST_CA_BUNDLE = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")

STANDIN_CURL = """#!/bin/sh
# Stand-in for curl in the plugin step only: hands over the recorded file for the one URL expected.
set -eu
out=""; prev=""; url=""
for a; do [ "$prev" = "-fsSLo" ] && out="$a"; prev="$a"; url="$a"; done
want="https://s3.amazonaws.com/session-manager-downloads/plugin/{version}/linux_64bit/session-manager-plugin.rpm"
[ "$url" = "$want" ] || {{ echo "stand-in curl: unexpected URL $url" >&2; exit 22; }}
cp /tmp/standin/session-manager-plugin.rpm "$out"
"""
STANDIN_RPM = """#!/bin/sh
# Stand-in for rpm -i in the plugin step only: installs a stub that reports the stand-in's version.
set -eu
[ "$1" = "-i" ] && cmp -s "$2" /tmp/standin/session-manager-plugin.rpm \\
  || {{ echo "stand-in rpm: not the file handed over" >&2; exit 1; }}
printf '#!/bin/sh\\necho {version}\\n' > /usr/local/bin/session-manager-plugin
chmod 0755 /usr/local/bin/session-manager-plugin
"""

PLAYBOOK = """
- name: gearlift inside its execution environment
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    pins: @PINS@
  tasks:
    - name: The image's ansible-core is the pinned one
      ansible.builtin.assert:
        that: ansible_version.full == '@CORE@'

    - name: The collections the image carries
      ansible.builtin.command: ansible-galaxy collection list --format json -p /usr/share/ansible/collections
      register: listed
      changed_when: false

    - name: Each collection of requirements.yml at its pinned version, from the image
      vars:
        found: "{{ listed.stdout | from_json | dict2items | map(attribute='value') | combine }}"
      ansible.builtin.assert:
        that: found[item.key].version == item.value
        fail_msg: "{{ item.key }}: {{ found[item.key] | default('missing') }}, pinned {{ item.value }}"
      loop: "{{ pins | dict2items }}"

    - name: A filter of the checkout's gearlift.platform
      ansible.builtin.assert:
        that: >-
          '192.0.2.30' | gearlift.platform.vpn_path([], [], [])
          == ['no route table for the subnets that need the path (run playbooks/network.yml)']

    - name: A module of the checkout's gearlift.platform (with its module_utils and boto3) refuses before any AWS call
      gearlift.platform.ssm_patching:
        baseline:
          name: ee-test
          approval_rules:
            - patch_filters: {PRIORITY: [Required]}
        patch_group: ee-test
        window:
          name: ee-test
          schedule: cron(0 3 ? * SUN *)
          max_concurrency: "100%"
        region: eu-west-1
      register: window
      ignore_errors: true

    - name: The refusal names the reason
      ansible.builtin.assert:
        that:
          - window is failed
          - "'patches more than one host at a time' in window.msg"

    - name: The Session Manager plugin step ran in the build
      ansible.builtin.command: session-manager-plugin --version
      register: plugin
      changed_when: false
      failed_when: plugin.stdout != '@PLUGIN@'
"""


def _run(argv: list[str], cwd: Path, timeout: float, log: Path, env: dict[str, str] | None = None) -> str:
    """Run a command, its whole output kept in `log`; fail with the output's tail."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    out = done.stdout + done.stderr
    log.write_text(out)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode} (all of it: {log}):\n{out[-6000:]}"
    return out


def _test_definition(tmp: Path) -> tuple[Path, dict[str, str]]:
    """The test-only definition (see the module's docstring) and the build arguments it needs."""
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    test = copy.deepcopy(ee)
    test["images"]["base_image"]["name"] = BASE_IMAGE
    test["options"]["package_manager_path"] = "/usr/bin/apt-get"
    test["options"].pop("tags", None)
    deps = test["dependencies"]
    deps["python"] = str(REPO / ee["dependencies"]["python"])

    # The pinned collections, from the bundle's copies (same versions) instead of Galaxy.
    wanted = yaml.safe_load((REPO / ee["dependencies"]["galaxy"]).read_text())["collections"]
    files = tmp / "files"
    local = []
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        shutil.copytree(
            BUNDLE / namespace / name,
            files / "collections" / namespace / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        local.append({"name": f"collections/{namespace}/{name}", "type": "dir", "version": entry["version"]})
    (tmp / "requirements.yml").write_text(yaml.safe_dump({"collections": local}))
    deps["galaxy"] = str(tmp / "requirements.yml")

    # The plugin step unchanged, between stand-ins for its download and its install.
    standin = files / "standin"
    standin.mkdir()
    rpm = standin / "session-manager-plugin.rpm"
    rpm.write_bytes(b"stand-in for AWS's session-manager-plugin.rpm, not reachable from this machine\n")
    (standin / "curl").write_text(STANDIN_CURL.format(version=PLUGIN_VERSION))
    (standin / "rpm").write_text(STANDIN_RPM.format(version=PLUGIN_VERSION))
    (files / "ca").mkdir()
    shutil.copyfile(HOST_CA_BUNDLE, files / "ca" / "ca-bundle.crt")
    test["additional_build_files"] = [
        {"src": str(files / "collections"), "dest": "collections"},
        {"src": str(standin), "dest": "standin"},
        {"src": str(files / "ca"), "dest": "ca"},
    ]
    steps = test["additional_build_steps"]
    # pip: ansible-builder's own step runs ensurepip, which Debian disables for the system Python; the
    # same pip wheel ensurepip would use (Debian's python3-pip-whl, a dependency of python3.11-venv)
    # is installed from itself instead, and skip_pip_install leaves out the builder's step.
    test["options"]["skip_pip_install"] = True
    steps["prepend_base"] = [
        # pip in the build trusts the CAs this machine's pip trusts (a TLS-intercepting proxy's too)
        "COPY _build/ca/ca-bundle.crt /etc/ssl/certs/gearlift-build-ca-bundle.crt",
        "ENV PIP_CERT=/etc/ssl/certs/gearlift-build-ca-bundle.crt",
        "RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3.11-venv",
        'RUN whl="$(ls /usr/share/python-wheels/pip-*.whl)" && python3.11 "$whl/pip" install --no-index "$whl"',
    ]
    plugin = [s for s in steps["append_final"] if "session-manager-downloads" in s]
    assert len(plugin) == 1, plugin
    at = steps["append_final"].index(plugin[0])
    steps["append_final"][at:at] = [
        "COPY _build/standin/ /tmp/standin/",
        "RUN install -m 0755 /tmp/standin/curl /tmp/standin/rpm /usr/local/bin/",
    ]
    steps["append_final"].insert(at + 3, "RUN rm -rf /tmp/standin /usr/local/bin/curl /usr/local/bin/rpm")

    # Nothing else differs from the real definition.
    for key in ("version", "build_arg_defaults"):
        assert test.get(key) == ee.get(key)
    for key in ("python_interpreter", "ansible_core", "ansible_runner", "system"):
        assert deps[key] == ee["dependencies"][key]

    definition = tmp / "execution-environment.yml"
    definition.write_text(yaml.safe_dump(test, sort_keys=False))
    build_args = {
        "SESSION_MANAGER_PLUGIN_VERSION": PLUGIN_VERSION,
        "SESSION_MANAGER_PLUGIN_SHA256": hashlib.sha256(rpm.read_bytes()).hexdigest(),
    }
    return definition, build_args


@pytest.fixture(scope="module")
def ee_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (run ./scripts/bootstrap)")
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode != 0:
        pytest.fail(f"{BASE_IMAGE} is missing: `gearlift twin images` builds it")
    tmp = tmp_path_factory.mktemp("ee")
    definition, build_args = _test_definition(tmp)
    argv = [str(BIN / "ansible-builder"), "build", "-f", str(definition), "-c", str(tmp / "context")]
    argv += ["-t", IMAGE, "--container-runtime", "podman", "-v", "3"]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    _run(argv, tmp, timeout=3600, log=tmp / "build.log")
    try:
        yield IMAGE
    finally:
        if not os.environ.get("GEARLIFT_TEST_KEEP_EE_IMAGE"):
            subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, check=False)


def test_a_playbook_of_the_collection_runs_inside_the_built_ee(ee_image: str, tmp_path: Path) -> None:
    pins = {
        c["name"]: str(c["version"]).removeprefix("==")
        for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    }
    core = importlib.metadata.version("ansible-core")
    playbook = tmp_path / "ee_smoke.yml"
    playbook.write_text(
        PLAYBOOK.replace("@PINS@", json.dumps(pins)).replace("@CORE@", core).replace("@PLUGIN@", PLUGIN_VERSION)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # From the project checkout, as an AWX job runs from its project (ansible.cfg, .collections);
    # navigator mounts the checkout and the playbook's directory, and runs podman as --user=root.
    argv = [str(BIN / "ansible-navigator"), "run", str(playbook), "--mode", "stdout"]
    argv += ["--ee", "true", "--ce", "podman", "--eei", ee_image, "--pp", "never"]
    argv += ["--pae", "false", "--lf", str(tmp_path / "navigator.log"), "-i", "localhost,"]
    out = _run(argv, REPO, timeout=600, log=tmp_path / "run.log", env=env)
    recap = [line for line in out.splitlines() if line.startswith("localhost ") and "ok=" in line]
    assert recap and "failed=0" in recap[-1] and "ignored=1" in recap[-1], out[-4000:]
    assert "The refusal names the reason" in out and "The Session Manager plugin step ran in the build" in out
