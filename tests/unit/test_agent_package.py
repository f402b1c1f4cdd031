"""The install path the agent roles share (gearlift.platform.agent_package) refuses a package it cannot verify.

The real ``ansible-playbook`` (local connection) stages a fake package from a path into a staging
directory under pytest's temp dir; with a wrong sha256 the run stops before apt, naming the calling
role's variable, and nothing is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
PLAYBOOK = """\
- name: agent_package
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Shared install path
      ansible.builtin.include_role:
        name: gearlift.platform.agent_package
"""


def _run(tmp_path: Path, sha256: str, source: str = "path") -> subprocess.CompletedProcess[str]:
    package = tmp_path / "agent.deb"
    package.write_bytes(b"not really a package\n")
    variables = {
        "agent_package_label": "SSM agent",
        "agent_package_var_prefix": "ssm_agent",
        "agent_package_source": source,
        "agent_package_path": str(package),
        "agent_package_path_on": "host",
        "agent_package_file_name": "amazon-ssm-agent.deb",
        "agent_package_staging_dir": str(tmp_path / "staging"),
        "agent_package_sha256": sha256,
    }
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "vars.json").write_text(json.dumps(variables), encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(tmp_path / "play.yml"),
            "-e",
            f"@{tmp_path / 'vars.json'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_wrong_sha256_stops_before_apt(tmp_path: Path) -> None:
    result = _run(tmp_path, "b" * 64)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert (
        "TASK [gearlift.platform.agent_package : Agent package | Refuse a package whose sha256 does not match]" in out
    )
    flat = " ".join(out.split())
    assert f"expected ssm_agent_package_sha256 {'b' * 64}: not installed" in flat, out
    assert "Install the staged package" not in out
    staged = tmp_path / "staging" / "amazon-ssm-agent.deb"
    assert staged.is_file() and oct(staged.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "staging").stat().st_mode & 0o777) == "0o700"


def test_source_outside_the_shared_choices_is_refused(tmp_path: Path) -> None:
    """The snap stays in the SSM agent role: the shared path takes apt, path, url and s3 only."""
    result = _run(tmp_path, "b" * 64, source="snap")
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, out
    assert "Validating arguments against arg spec 'main'" in out
    assert "agent_package_source" in out and "apt, path, url, s3" in out, out
    assert not (tmp_path / "staging").exists()
