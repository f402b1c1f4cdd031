"""A Lambda runtime stand-in: the twin runs secret rotation functions for real.

moto stores a function's zip but can only run it in docker (absent on the twin's machines); its
RotateSecret would invoke the function in-process. The emulator (gearlift.twin.emulator.rotation)
therefore queues each rotation (RotateSecret, or the schedule) and this reconciler takes the queue
every round (the ``rotations`` report) and runs the steps as Lambda would:

- the function's stored zip is unpacked once per code hash into the twin's state directory;
- each rotation runs in a fresh Python subprocess (this interpreter, which has botocore like
  Lambda's Python runtime) with the function's environment variables, ``AWS_REGION`` and the
  temporary credentials of its execution role (minted by the emulator, which checks that the
  role trusts ``lambda.amazonaws.com``);
- the steps run in order, one handler call each (``{"Step", "SecretId", "ClientRequestToken"}``),
  stopping at the first failure, as Secrets Manager does; a failed rotation stays unfinished and
  the next RotateSecret reattempts it;
- the function's network is the VPC's: Secrets Manager's regional name is the emulator
  (``SECRETS_MANAGER_ENDPOINT``, as a VPC interface endpoint with private DNS would make it) and
  the databases' endpoint names resolve to their MariaDB containers on the twin network.

Rotations run one at a time on a worker thread, so the reconcile rounds (health checks, scaling)
go on meanwhile. What differs from AWS is in docs/twin-fidelity.md: the subprocess runs on the
twin's host, so its calls reach the emulator from the controller's address (the role's policy is
not evaluated for them) and its security group is not enforced; Lambda's own retries and
concurrency limits are not modelled.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gearlift.twin import channel, podman
from gearlift.twin.dataplane import Round

Log = Callable[[str], None]


def unpack(code_b64: str, root: Path) -> Path:
    """The function's code unpacked under root/<sha256> (once per code); refuses paths leaving it."""
    data = base64.b64decode(code_b64)
    target = root / hashlib.sha256(data).hexdigest()
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            dest = (target / name).resolve()
            if not dest.is_relative_to(target.resolve()):
                raise ValueError(f"the function's zip holds a path outside its directory: {name!r}")
        zf.extractall(target)
    (target / ".complete").write_text("", encoding="utf-8")
    return target


def runtime_env(job: dict[str, Any], endpoint: str, hosts: dict[str, str]) -> dict[str, str]:
    """The subprocess's environment: what Lambda's runtime sets, the function's variables, its role's keys."""
    creds = job.get("credentials") or {}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_REGION": job["region"],
        "AWS_DEFAULT_REGION": job["region"],
        "AWS_LAMBDA_FUNCTION_NAME": job["function_arn"].rsplit(":", 1)[-1],
        "AWS_ACCESS_KEY_ID": creds.get("AccessKeyId", ""),
        "AWS_SECRET_ACCESS_KEY": creds.get("SecretAccessKey", ""),
        "AWS_SESSION_TOKEN": creds.get("SessionToken", ""),
        "GEARLIFT_TWIN_HOSTS": json.dumps(hosts),
    }
    env.update({str(k): str(v) for k, v in (job.get("environment") or {}).items()})
    env["SECRETS_MANAGER_ENDPOINT"] = endpoint
    return env


def events(job: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Step": step, "SecretId": job["secret_arn"], "ClientRequestToken": job["token"]} for step in job["steps"]]


class LambdaRuntime:
    """Runs the rotation functions the emulator queues (the ``Reconciler`` protocol)."""

    def __init__(self, clients_endpoint: str, region: str, network: str, work_dir: Path, log: Log) -> None:
        self.endpoint = clients_endpoint
        self.region = region
        self.network = network
        self.work_dir = work_dir
        self.log = log
        self.jobs: queue.Queue[tuple[dict[str, Any], dict[str, str]]] = queue.Queue()
        self.results: list[dict[str, Any]] = []  # what each rotation did (tests, the twin's log)
        self._worker: threading.Thread | None = None

    def reconcile(self, round_: Round) -> None:
        answer = channel.send(self.endpoint, channel.ROTATIONS, {"region": self.region})
        jobs = answer.get("rotations") or []
        if not jobs:
            return
        hosts = self.database_hosts(round_)
        for job in jobs:
            self.jobs.put((job, hosts))
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="lambda-runtime", daemon=True)
            self._worker.start()

    def database_hosts(self, round_: Round) -> dict[str, str]:
        """{RDS endpoint name: its MariaDB container's address on the twin network}."""
        hosts = {}
        for db in round_.databases.values():
            ip = podman.container_ip(db["container"], self.network)
            if ip:
                hosts[db["endpoint"]] = ip
        return hosts

    def _work(self) -> None:
        while True:
            try:
                job, hosts = self.jobs.get(timeout=5)
            except queue.Empty:
                return
            try:
                self.results.append(self.run(job, hosts))
            except Exception as exc:  # keep the worker alive; the twin's log says why
                self.log(f"lambda: rotation of {job.get('secret_arn')} failed to start: {exc!r}")

    def run(self, job: dict[str, Any], hosts: dict[str, str]) -> dict[str, Any]:
        name = job["function_arn"].rsplit(":", 1)[-1]
        if job.get("error"):
            self.log(f"lambda: {name} not run for {job['secret_arn']}: {job['error']}")
            return {"function": name, "secret": job["secret_arn"], "ok": False, "error": job["error"]}
        code = unpack(job["code_zip_b64"], self.work_dir / name)
        request = {"code_dir": str(code), "handler": job["handler"], "events": events(job)}
        timeout = int(job.get("timeout") or 3) * len(job["steps"]) + 30
        proc = subprocess.run(
            [sys.executable, "-I", "-c", BOOTSTRAP],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=code,
            env=runtime_env(job, self.endpoint, hosts),
            check=False,
        )
        ok = proc.returncode == 0
        for line in (proc.stdout + proc.stderr).splitlines()[-40:]:
            self.log(f"lambda: {name}: {line}")
        self.log(f"lambda: {name} rotation of {job['secret_arn']} {'done' if ok else 'FAILED'} ({job['token']})")
        return {"function": name, "secret": job["secret_arn"], "token": job["token"], "ok": ok}


# The subprocess: -I (isolated) keeps the user's site-packages out; the function's directory comes
# first on sys.path (its vendored packages win), then this interpreter's (botocore).
BOOTSTRAP = """
import json, logging, os, socket, sys, traceback
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
request = json.load(sys.stdin)
sys.path.insert(0, request["code_dir"])
hosts = json.loads(os.environ.pop("GEARLIFT_TWIN_HOSTS", "{}"))
_resolve = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    return _resolve(hosts.get(host, host), *args, **kwargs)
socket.getaddrinfo = getaddrinfo
module_name, _, function_name = request["handler"].rpartition(".")
handler = getattr(__import__(module_name), function_name)
class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
for event in request["events"]:
    try:
        print(json.dumps({"step": event["Step"], "result": handler(event, Context())}, default=str), flush=True)
    except Exception:
        print(f"{event['Step']} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""
