"""The twin's AWS control plane: a moto server process of its own.

Started on a chosen free port, bound only to loopback and to the twin
network's gateway address, with IAM's managed policies loaded; health-checked,
reset between runs and stopped by its own PID (never by name or port).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gearlift.twin.errors import TwinError
from gearlift.twin.netutil import require_free, wait_http

STATE_DIR_ENV = "GEARLIFT_TWIN_STATE_DIR"


class MotoControlPlane:
    """The emulator on ``port`` on loopback; ``hosts`` are the other addresses it binds, on ``host_port``
    when given (the twin's hosts see one fixed endpoint, as AWS's regional endpoints are fixed, so a
    golden image baked in one rehearsal reaches the APIs of the next), else on ``port``."""

    def __init__(self, state_dir: Path, hosts: list[str], port: int, host_port: int | None = None) -> None:
        self.state_dir = state_dir
        self.hosts = hosts
        self.port = port
        self.host_port = host_port
        self.pidfile = state_dir / "moto.pid"
        self.logfile = state_dir / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def port_for(self, host: str) -> int:
        return self.port if host == "127.0.0.1" or self.host_port is None else self.host_port

    def url_for(self, host: str) -> str:
        return f"http://{host}:{self.port_for(host)}"

    def start(self) -> None:
        for host in self.hosts:
            require_free(self.port_for(host), "AWS emulator (moto)", host)
        env = dict(os.environ)
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        # Names the twin this emulator belongs to (several twins may run on one machine).
        env[STATE_DIR_ENV] = str(self.state_dir.resolve())
        # Keep the emulator's behaviour deterministic and local.
        env.pop("AWS_ENDPOINT_URL", None)
        with self.logfile.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gearlift.twin.emulator.server", "--port", str(self.port)]
                + [arg for host in self.hosts for arg in ("--host", f"{host}:{self.port_for(host)}")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.pidfile.write_text(str(self.proc.pid), encoding="utf-8")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.logfile.read_text(encoding="utf-8", errors="replace")[-800:]
                self.pidfile.unlink(missing_ok=True)
                raise TwinError(f"the AWS emulator exited at start (code {self.proc.returncode}):\n{tail}")
            try:
                wait_http(f"{self.url}/moto-api/", timeout=1.0)
                return
            except TwinError:
                continue
        self.stop()
        raise TwinError(f"the AWS emulator did not answer on {self.url} within 60 s")

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            if resp.status != 200:
                raise TwinError(f"resetting the emulator failed: HTTP {resp.status}")

    def stop(self) -> None:
        pid = self.proc.pid if self.proc else None
        if pid is None and self.pidfile.exists():
            pid = int(self.pidfile.read_text().strip() or 0) or None
        if pid is not None:
            _terminate(pid, self.proc)
        self.pidfile.unlink(missing_ok=True)
        self.proc = None


def _terminate(pid: int, proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait(timeout=5)
