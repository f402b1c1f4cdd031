"""Run a playbook through ansible-runner with one readable progress line per play."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Log = Callable[[str], None]


@dataclass
class RunResult:
    status: str
    rc: int
    seconds: float
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    changed_tasks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.status == "successful"

    def totals(self) -> dict[str, int]:
        keys = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
        return {k: sum(self.stats.get(k, {}).values()) for k in keys}

    def hosts(self) -> list[str]:
        names: set[str] = set()
        for per_host in self.stats.values():
            names.update(per_host)
        return sorted(names)


def run_playbook(
    repo: Path,
    playbook: str,
    inventory: list[str],
    private_dir: Path,
    env: dict[str, str],
    log: Log,
    extravars: dict[str, Any] | None = None,
    cancel: threading.Event | None = None,
    tags: str | None = None,
) -> RunResult:
    import ansible_runner

    t0 = time.monotonic()
    result = RunResult(status="unstarted", rc=-1, seconds=0.0)
    venv_bin = str(Path(sys.executable).parent)
    run_id = uuid.uuid4().hex
    envvars = {
        **env,
        "GEARLIFT_RUN_ID": run_id,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_CONFIG": str(repo / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
    }

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        stamp = f"[{time.monotonic() - t0:7.1f}s]"
        if kind == "playbook_on_play_start":
            log(f"{stamp} PLAY {data.get('play', '')}")
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            res = data.get("res", {})
            msg = str(res.get("msg") or res.get("stderr") or res.get("reason") or "")[:600]
            line = f"{data.get('host')} | {data.get('task')} | {msg}"
            result.failures.append(line)
            log(f"{stamp} FAILED {line}")
        elif kind == "runner_on_ok" and data.get("res", {}).get("changed"):
            result.changed_tasks.append(f"{data.get('host')} | {data.get('task')}")
        elif kind == "playbook_on_stats":
            result.stats = {
                k: dict(data.get(k) or {})
                for k in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
            }
        return True

    # ansible-runner keeps env/ files from earlier runs and prefers them:
    # start every run from a clean private dir (artifacts live beside it).
    shutil.rmtree(private_dir, ignore_errors=True)
    private_dir.mkdir(parents=True)
    runner = ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=str(repo),
        playbook=str(repo / playbook),
        inventory=[str(repo / inv) for inv in inventory],
        envvars=envvars,
        extravars=extravars or {},
        tags=tags,
        quiet=True,
        event_handler=on_event,
        cancel_callback=(lambda: cancel.is_set()) if cancel is not None else None,
        artifact_dir=str(private_dir.parent / "artifacts"),
        rotate_artifacts=5,
    )
    if runner.status in ("canceled", "timeout"):
        # ansible-runner kills the process group of ansible-playbook, but its
        # workers run in sessions of their own: stop whatever carries our mark.
        _kill_marked(run_id)
    result.status = str(runner.status)
    result.rc = int(runner.rc if runner.rc is not None else -1)
    result.seconds = time.monotonic() - t0
    return result


def _kill_marked(run_id: str) -> list[int]:
    """SIGKILL every process whose environment carries GEARLIFT_RUN_ID=<run_id>."""
    marker = f"GEARLIFT_RUN_ID={run_id}".encode()
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    return killed
