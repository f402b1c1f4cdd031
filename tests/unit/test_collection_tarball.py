"""The collection as users get it: built into a tarball, installed into a clean path, used from there.

`ansible-galaxy collection build` from the repository, `ansible-galaxy collection install` of the
tarball into a temporary path (no Galaxy: the collection declares no dependencies; the ones it uses
come from the `ansible` package), then a playbook outside the repository, with no ansible.cfg of
the project, uses a filter, a module with its module_utils and a role's argument specs of the
installed copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from tests.unit.module_harness import REPO

BIN = Path(sys.executable).parent

PLAYBOOK = """
- name: The installed gearlift.platform, used from outside the repository
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: A filter of the installed copy
      ansible.builtin.assert:
        that: >-
          '192.0.2.30' | gearlift.platform.vpn_path([], [], [])
          == ['no route table for the subnets that need the path (run playbooks/network.yml)']

    - name: A module and its module_utils of the installed copy refuse an unsafe window before any AWS call
      gearlift.platform.ssm_patching:
        baseline:
          name: tarball-test
          approval_rules:
            - patch_filters: {PRIORITY: [Required]}
        patch_group: tarball-test
        window:
          name: tarball-test
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

    - name: A role of the installed copy validates its argument specs
      block:
        - name: The role with a port that is not a number
          ansible.builtin.include_role:
            name: gearlift.platform.db_migration
            tasks_from: preflight
          vars:
            db_migration_databases: [shop]
            db_migration_target_host: db.example.invalid
            db_migration_target_user: admin
            db_migration_target_password: not-used-here
            db_migration_target_port: not-a-port
      rescue:
        - name: Refused by the installed role's argument specs, naming the variable
          ansible.builtin.assert:
            that:
              - "'db_migration_target_port' in ansible_failed_result.msg"
              - "'preflight' in ansible_failed_task.name"
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_built_tarball_installs_and_runs_from_a_clean_path(tmp_path: Path) -> None:
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    # A clean environment: no project ansible.cfg, collections only from the install path and the
    # `ansible` package (sys.path), nothing from the repository's .collections link.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_HOME=str(tmp_path / "home"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )

    built = _run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(REPO)], REPO, env
    )
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = tmp_path / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    assert manifest["collection_info"]["namespace"] == "gearlift"
    assert manifest["collection_info"]["dependencies"] == {}
    top = {n.split("/")[0] for n in names}
    assert {"plugins", "roles", "playbooks", "meta"} <= top, top
    assert not top & {"tests", ".venv", ".collections", ".mypy_cache", ".ruff_cache", ".twin", "reports"}, top

    installed = _run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--no-deps",
            "-p",
            str(tmp_path / "collections"),
            str(tarball),
        ],
        tmp_path,
        env,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    root = tmp_path / "collections" / "ansible_collections" / "gearlift" / "platform"
    assert (root / "MANIFEST.json").is_file()

    doc = _run([str(BIN / "ansible-doc"), "--json", "gearlift.platform.ssm_patching"], tmp_path, env)
    assert doc.returncode == 0, doc.stderr
    filename = json.loads(doc.stdout)["gearlift.platform.ssm_patching"]["doc"]["filename"]
    assert Path(filename).is_relative_to(root), f"the module came from {filename}, not the installed copy"

    (tmp_path / "play.yml").write_text(PLAYBOOK)
    played = _run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "play.yml"],
        tmp_path,
        env,
    )
    out = played.stdout + played.stderr
    assert played.returncode == 0, out
    assert "failed=0" in out and "rescued=1" in out and "ignored=1" in out, out
