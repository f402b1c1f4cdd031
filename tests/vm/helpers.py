"""Helpers of the VM lane: real ansible-playbook runs against the VM and root commands on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gearlift.vm import VM

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
VENV_BIN = (
    REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "ansible-playbook").exists() else Path(sys.executable).parent
)
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


def say(line: str) -> None:
    print(f"[vm] {line}", flush=True)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    seconds: float
    log: Path
    recap: dict[str, int] = field(default_factory=dict)

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported `changed` (from the default callback's output)."""
        names, current = [], ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                current = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed:"):
                names.append(current)
        return names

    def failures(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith(("fatal:", "failed:"))]


def run_playbook(vm: VM, playbook: Path, *extra: str, name: str, timeout: float = 3600) -> PlaybookRun:
    """A real ansible-playbook run against the VM's inventory; output kept in the run dir."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            # Facts of an earlier VM (same host name) must not come from the jsonfile cache.
            "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }
    )
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(vm.inventory), str(playbook), *extra]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - t0
    output = proc.stdout + proc.stderr
    log = vm.run_dir / f"{name}.log"
    log.write_text(output, encoding="utf-8")
    run = PlaybookRun(proc.returncode, output, seconds, log)
    for match in RECAP.finditer(proc.stdout):
        if match.group(1) == "localhost":  # a controller play (e.g. building the artifact) is not the VM
            continue
        keys = ("ok", "changed", "unreachable", "failed", "skipped")
        run.recap = {k: int(v) for k, v in zip(keys, match.groups()[1:], strict=True)}
    say(f"{playbook.name} ({name}): rc={run.rc} {run.recap} in {seconds:.0f} s, log {log}")
    return run


def root(vm: VM, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A root shell command on the VM (through gladmin's sudo)."""
    return vm.sudo(command, timeout=timeout)
