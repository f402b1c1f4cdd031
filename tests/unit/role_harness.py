"""Run a role's validation in check mode against localhost, for the roles' bad-input tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"


def run_check(
    tmp_path: Path, playbook_text: str, variables: dict[str, object], extra_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook --check of playbook_text on localhost with variables as extra vars."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(playbook_text, encoding="utf-8")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables), encoding="utf-8")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        # No fact cache file, no retry files, plain output.
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # The modules run with this interpreter (no discovery of whatever python3 is on PATH).
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", "--check", *extra_args, str(playbook), "-e"]
    cmd.append(f"@{extra}")
    return subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
