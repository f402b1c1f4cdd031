"""EFS: each mount target is a server on the twin network; a mount is a bind mount into the host.

This machine's kernel has no NFS client or server, so the twin plays the mount itself:

- Every available mount target of an available file system is a small container (kind ``efs``)
  on the twin network, answering TCP 2049, reachable by the names the EFS mount helper uses
  (``<fs-id>.efs.<region>.amazonaws.com`` and ``<az>.<fs-id>.efs.<region>.amazonaws.com``,
  network aliases). The firewall reconciler gives it the mount target's security groups and
  subnet, so a host reaches it only when both sides' groups and the routes allow NFS, as on AWS.
- Every instance container gets, at creation, the stand-in mount helper ``/sbin/mount.efs``
  (written here) and an empty per-instance staging directory with slave propagation.
  ``mount -t efs -o tls,accesspoint=...,iam fs-id:/ DIR`` runs the stand-in, which sends the
  request to a mount target over the twin network and waits for the answer.
- The mount target hands the request (with the address it came from) to the twin through a
  spool directory. Each round, :class:`EfsReconciler` checks it against the emulator with
  :func:`decide` (the file system, the mount target, the access point, the file system
  policy: TLS, anonymous access, the access point condition) and, when it is allowed, bind-mounts
  the file system's directory (one per file system under the twin's state dir; the access
  point's root directory, created with its owner and permissions) into the host's mount
  namespace at DIR, through the staging directory (mounted on the controller, propagated into
  the host, bound at DIR from inside with nsenter, then unmounted from the staging directory).
  A refused request fails the mount helper (exit 32) with the reason, as a real mount fails.

Approximations (docs/twin-fidelity.md): no NFS protocol, no TLS tunnel (``tls`` is a flag of
the request, checked against the policy), IAM not evaluated (``iam`` marks a signed mount; the
emulator does not carry a launch template's instance profile to Auto Scaling instances, so the
twin cannot even check that one exists), no throughput, lifecycle or Infrequent Access behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.twin import podman
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.errors import TwinError
from gearlift.twin.layout import TwinLayout
from gearlift.twin.netpolicy import Node

Log = Callable[[str], None]

NFS_PORT = 2049
#: Where each instance sees its staging directory (empty but for a mount in progress).
STAGING_IN_HOST = "/run/gearlift-twin-efs"
#: The stand-in mount helper's path in every instance.
HELPER_IN_HOST = "/sbin/mount.efs"
#: Seconds the mount target waits for the twin's answer (a few reconcile rounds).
ANSWER_TIMEOUT = 90
_MOUNT_ACTIONS = ("elasticfilesystem:ClientMount", "elasticfilesystem:*", "*")
_WRITE_ACTIONS = ("elasticfilesystem:ClientWrite", "elasticfilesystem:*", "*")


@dataclass(frozen=True)
class MountRequest:
    """What the stand-in mount helper asked, and where it came from."""

    file_system_id: str
    access_point_id: str
    path: str
    target: str
    tls: bool
    iam: bool
    read_only: bool
    peer: str
    mount_target_id: str

    @classmethod
    def from_spool(cls, body: Mapping[str, Any]) -> MountRequest:
        request = body.get("request") or {}
        if not isinstance(request, Mapping):
            raise ValueError("the request is not a JSON object")
        return cls(
            file_system_id=str(request.get("file_system_id", "")),
            access_point_id=str(request.get("access_point_id", "")),
            path=str(request.get("path", "/")) or "/",
            target=str(request.get("target", "")),
            tls=bool(request.get("tls")),
            iam=bool(request.get("iam")),
            read_only=bool(request.get("read_only")),
            peer=str(body.get("peer", "")),
            mount_target_id=str(body.get("mount_target_id", "")),
        )


@dataclass(frozen=True)
class Decision:
    """Allowed or not (``error`` says why); where in the file system and how to create it."""

    error: str = ""
    root: str = "/"
    owner: tuple[int, int, int] | None = None  # uid, gid, mode for a root directory EFS creates
    read_only: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _principal_is_anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in _listed(principal.get("AWS"))


def _statements(policy: str | None) -> list[Mapping[str, Any]]:
    if not policy:
        return []
    data = json.loads(policy)
    return [s for s in _listed(data.get("Statement") or []) if isinstance(s, Mapping)]


def _conditions_hold(statement: Mapping[str, Any], access_point_arn: str, tls: bool) -> bool:
    """The condition keys EFS mounts carry; an unknown key does not match (the statement does not apply)."""
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            values = [str(v).lower() for v in _listed(wanted)]
            if key == "aws:SecureTransport" and operator == "Bool":
                actual = "true" if tls else "false"
            elif key == "elasticfilesystem:AccessedViaMountTarget" and operator == "Bool":
                actual = "true"
            elif key == "elasticfilesystem:AccessPointArn" and operator in ("StringEquals", "ArnEquals"):
                actual = access_point_arn.lower()
            else:
                return False
            if actual not in values:
                return False
    return True


def _action_in(statement: Mapping[str, Any], actions: tuple[str, ...]) -> bool:
    return any(a in actions for a in _listed(statement.get("Action") or []))


def evaluate_policy(policy: str | None, access_point_arn: str, tls: bool, signed: bool) -> tuple[bool, bool, str]:
    """(may mount, may write, why not) under a file system policy, for an anonymous or IAM-signed client.

    No policy is EFS's default: every client of a mount target may mount and write. An explicit
    Deny that applies wins; otherwise an Allow must apply - one for anyone, or, for a signed
    mount (``iam``), one naming a principal (the twin does not evaluate which)."""
    statements = _statements(policy)
    if not statements:
        return True, True, ""
    for statement in statements:
        if (
            statement.get("Effect") == "Deny"
            and _action_in(statement, _MOUNT_ACTIONS + _WRITE_ACTIONS)
            and _conditions_hold(statement, access_point_arn, tls)
        ):
            if not tls and "aws:SecureTransport" in (statement.get("Condition") or {}).get("Bool", {}):
                return False, False, "the file system policy denies mounts without TLS (mount with -o tls)"
            return False, False, f"the file system policy denies this mount (statement {statement.get('Sid', '?')})"
    mount = write = False
    for statement in statements:
        if statement.get("Effect") != "Allow" or not _conditions_hold(statement, access_point_arn, tls):
            continue
        if not (_principal_is_anyone(statement.get("Principal")) or signed):
            continue
        mount = mount or _action_in(statement, _MOUNT_ACTIONS)
        write = write or _action_in(statement, _WRITE_ACTIONS)
    if not mount:
        how = "an IAM-signed mount (-o iam) through the allowed access point" if not signed else "its access point"
        return False, False, f"access denied by the file system policy: it allows only {how}"
    return True, write, ""


def decide(
    request: MountRequest,
    instance: Mapping[str, Any] | None,
    file_system: Mapping[str, Any] | None,
    mount_target: Mapping[str, Any] | None,
    access_point: Mapping[str, Any] | None,
    policy: str | None,
) -> Decision:
    """Is this mount allowed, as EFS would answer it (the network path was already checked by the
    firewall: the request reached the mount target)."""
    if instance is None:
        return Decision(error=f"{request.peer} is neither an instance of this account nor a host of the site")
    if file_system is None or file_system.get("LifeCycleState") != "available":
        return Decision(error=f"file system {request.file_system_id} not found (or not available)")
    if (
        mount_target is None
        or mount_target.get("FileSystemId") != request.file_system_id
        or mount_target.get("LifeCycleState") != "available"
    ):
        return Decision(error=f"mount target {request.mount_target_id} does not serve {request.file_system_id}")
    # A host of the site (``{"Site": name}``) reaches the mount target through the VPN, as an on-premises
    # client mounts EFS over Direct Connect or a VPN; the firewall already checked that path.
    if not instance.get("Site") and mount_target.get("VpcId") and mount_target.get("VpcId") != instance.get("VpcId"):
        return Decision(error=f"mount target {request.mount_target_id} is in another VPC than the instance")
    if not request.target.startswith("/") or request.target == "/":
        return Decision(error=f"mount point {request.target!r} must be an absolute directory other than /")
    if not request.path.startswith("/") or ".." in request.path.split("/"):
        return Decision(error=f"path {request.path!r} must be absolute, without '..'")
    root, owner = "/", None
    ap_arn = ""
    if request.access_point_id:
        if access_point is None or access_point.get("FileSystemId") != request.file_system_id:
            return Decision(error=f"access point {request.access_point_id} not found on {request.file_system_id}")
        if access_point.get("LifeCycleState", "available") != "available":
            return Decision(error=f"access point {request.access_point_id} is not available")
        ap_arn = str(access_point.get("AccessPointArn", ""))
        directory = access_point.get("RootDirectory") or {}
        root = str(directory.get("Path") or "/")
        info = directory.get("CreationInfo")
        if info:
            owner = (int(info["OwnerUid"]), int(info["OwnerGid"]), int(str(info["Permissions"]), 8))
    may_mount, may_write, why = evaluate_policy(policy, ap_arn, request.tls, request.iam)
    if not may_mount:
        return Decision(error=why)
    joined = "/" + "/".join(p for p in (root + "/" + request.path).split("/") if p)
    return Decision(root=joined, owner=owner, read_only=request.read_only or not may_write)


# ----------------------------------------------------------------------------- the data plane

MOUNT_TARGET_SERVER = r'''"""gearlift twin: an EFS mount target; hands each request to the twin (spool) and answers."""
import json
import os
import socketserver
import time
import uuid

MOUNT_TARGET = os.environ["GEARLIFT_MOUNT_TARGET_ID"]
SPOOL = "/spool"
TIMEOUT = float(os.environ.get("GEARLIFT_ANSWER_TIMEOUT", "90"))


class Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def answer(self, body):
        self.wfile.write(json.dumps(body).encode() + b"\n")

    def handle(self):
        try:
            request = json.loads(self.rfile.readline(65536) or b"null")
        except ValueError:
            return self.answer({"ok": False, "message": "not a mount request"})
        rid = uuid.uuid4().hex
        base = os.path.join(SPOOL, rid)
        with open(base + ".tmp", "w") as out:
            json.dump({"request": request, "peer": self.client_address[0], "mount_target_id": MOUNT_TARGET}, out)
        os.rename(base + ".tmp", base + ".req")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                with open(base + ".res") as result:
                    body = json.load(result)
            except (OSError, ValueError):
                time.sleep(0.2)
                continue
            os.unlink(base + ".res")
            return self.answer(body)
        try:
            os.unlink(base + ".req")
        except OSError:
            pass
        self.answer({"ok": False, "message": "the mount target did not answer in time"})


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("0.0.0.0", 2049), Handler).serve_forever()
'''

MOUNT_HELPER = r'''#!/usr/bin/python3 -I
"""gearlift twin: stand-in for amazon-efs-utils' mount helper (mount -t efs). Sends the mount
request to the file system's mount target over the network (NFS port 2049, so security groups
and routes apply) and exits as mount(8) expects: 0 mounted, 32 mount failure."""
import json
import os
import socket
import sys

REGION = "@REGION@"


def main(argv):
    positional, options = [], []
    args = iter(argv[1:])
    for arg in args:
        if arg == "-o":
            options += next(args, "").split(",")
        elif arg.startswith("-o"):
            options += arg[2:].split(",")
        elif not arg.startswith("-"):
            positional.append(arg)
    if len(positional) < 2:
        print("usage: mount.efs FS_ID:/PATH DIR [-o OPTIONS]", file=sys.stderr)
        return 1
    spec, target = positional[0], positional[1]
    fs_id, _, path = spec.partition(":")
    flags = {o.split("=", 1)[0]: (o.split("=", 1) + [""])[1] for o in options if o}
    request = {
        "file_system_id": fs_id,
        "path": path or "/",
        "access_point_id": flags.get("accesspoint", ""),
        "tls": "tls" in flags,
        "iam": "iam" in flags,
        "read_only": "ro" in flags,
        "target": os.path.realpath(target),
    }
    name = f"{fs_id}.efs.{REGION}.amazonaws.com"
    try:
        addresses = sorted({a[4][0] for a in socket.getaddrinfo(name, 2049, socket.AF_INET, socket.SOCK_STREAM)})
    except socket.gaierror:
        print(f'mount.efs: Failed to resolve "{name}" - check that the file system ID is correct and that the '
              "VPC has an EFS mount target for it.", file=sys.stderr)
        return 32
    last = ""
    for address in addresses:
        try:
            with socket.create_connection((address, 2049), timeout=10) as conn:
                conn.settimeout(120)
                conn.sendall(json.dumps(request).encode() + b"\n")
                answer = json.loads(conn.makefile().readline() or "null") or {}
        except (OSError, ValueError) as exc:
            last = f"{address}:2049: {exc}"
            continue
        if answer.get("ok"):
            return 0
        print(f"mount.efs: {answer.get('message', 'refused')}", file=sys.stderr)
        return 32
    print(f"mount.efs: Connection to the mount target failed ({last}); check that the security groups of the "
          "mount target and of this instance allow NFS (TCP 2049).", file=sys.stderr)
    return 32


sys.exit(main(sys.argv))
'''


@dataclass
class _Target:
    mount_target: dict[str, Any]
    groups: tuple[str, ...]
    names: tuple[str, ...]


@dataclass
class EfsReconciler:
    """Mount targets as servers on the twin network, mount requests as bind mounts (see the module doc)."""

    layout: TwinLayout
    clients: Clients
    log: Log
    image: str
    on_start: Callable[[str], None] | None = None
    targets: dict[str, _Target] = field(default_factory=dict)  # mount target id -> what the firewall needs
    _serial: int = 0

    def __post_init__(self) -> None:
        root = self.layout.state_dir / "efs"
        self.data = root / "data"
        self.spool = root / "spool"
        self.staging = root / "staging"
        self.bin = root / "bin"
        for path in (self.data, self.spool, self.staging, self.bin):
            path.mkdir(parents=True, exist_ok=True)
        self.spool.chmod(0o1733)
        (self.bin / "mount-target.py").write_text(MOUNT_TARGET_SERVER, encoding="utf-8")
        helper = self.bin / "mount.efs"
        helper.write_text(MOUNT_HELPER.replace("@REGION@", self.layout.region), encoding="utf-8")
        helper.chmod(0o755)
        # The staging tree is a shared mount, so what the twin mounts under an instance's staging
        # directory appears in that instance (its volume has slave propagation).
        if subprocess.run(["mountpoint", "-q", str(self.staging)], check=False).returncode != 0:
            _host("mount", "--bind", str(self.staging), str(self.staging))
        _host("mount", "--make-rshared", str(self.staging))

    # ----------------------------------------------------------------- instances
    def run_args(self, instance_id: str) -> list[str]:
        """podman run arguments every instance (and the site's app server) gets: the stand-in helper and
        its staging directory, named by the container."""
        own = self.staging / instance_id
        own.mkdir(exist_ok=True)
        own.chmod(0o700)
        return [
            "-v",
            f"{self.bin / 'mount.efs'}:{HELPER_IN_HOST}:ro",
            "-v",
            f"{own}:{STAGING_IN_HOST}:rslave",
        ]

    def mount_points(self) -> list[str]:
        return [HELPER_IN_HOST, STAGING_IN_HOST]

    def site_hosts(self) -> dict[str, str]:
        """The site's hosts (kind ``onprem``) started with the staging directory: container -> twin address."""
        out: dict[str, str] = {}
        for container in podman.list_containers(self.layout.label):
            if container.labels.get("gearlift.kind") != "onprem" or not (self.staging / container.name).is_dir():
                continue
            address = podman.container_ip(container.name, self.layout.network)
            if address:
                out[container.name] = address
        return out

    # ------------------------------------------------------------- mount targets
    def containers(self) -> dict[str, podman.Container]:
        return {
            c.labels.get("gearlift.mount-target-id", c.name): c
            for c in podman.list_containers(self.layout.label)
            if c.labels.get("gearlift.kind") == "efs"
        }

    def read_targets(self) -> dict[str, _Target]:
        efs = self.clients("efs")
        out: dict[str, _Target] = {}
        for fs in paginate(efs, "describe_file_systems", "FileSystems"):
            if fs.get("LifeCycleState") != "available":
                continue
            fs_id = fs["FileSystemId"]
            for mt in efs.describe_mount_targets(FileSystemId=fs_id).get("MountTargets", []):
                if mt.get("LifeCycleState") != "available":
                    continue
                groups = efs.describe_mount_target_security_groups(MountTargetId=mt["MountTargetId"])
                base = f"{fs_id}.efs.{self.layout.region}.amazonaws.com"
                names = (base, f"{mt.get('AvailabilityZoneName', '')}.{base}")
                out[mt["MountTargetId"]] = _Target(mt, tuple(groups.get("SecurityGroups", [])), names)
        return out

    def sync(self) -> None:
        self.targets = self.read_targets()
        containers = self.containers()
        for mt_id, container in containers.items():
            if mt_id not in self.targets:
                self.log(f"efs: mount target {mt_id} deleted -> removing its server")
                podman.remove(container.name)
            elif container.state != "running":
                podman.run("start", container.name, check=False)
        for mt_id, target in self.targets.items():
            if mt_id not in containers:
                self.start(mt_id, target)

    def start(self, mt_id: str, target: _Target) -> None:
        name = f"{self.layout.prefix}-{mt_id}"
        aliases = [arg for n in target.names for arg in ("--network-alias", n)]
        podman.run(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            self.layout.network,
            *aliases,
            "--label",
            self.layout.label,
            "--label",
            "gearlift.kind=efs",
            "--label",
            f"gearlift.mount-target-id={mt_id}",
            *podman.RUN_FIX_ARGS,
            "-e",
            f"GEARLIFT_MOUNT_TARGET_ID={mt_id}",
            "-e",
            f"GEARLIFT_ANSWER_TIMEOUT={ANSWER_TIMEOUT}",
            "-v",
            f"{self.spool}:/spool",
            "-v",
            f"{self.bin / 'mount-target.py'}:/srv/mount-target.py:ro",
            self.image,
            "python3",
            "-I",
            "/srv/mount-target.py",
        )
        if self.on_start is not None:
            self.on_start(name)
        self.log(
            f"efs: mount target {mt_id} of {target.mount_target['FileSystemId']} serving NFS 2049 as {target.names[0]}"
        )

    def node(self, container_labels: Mapping[str, str], twin_ip: str) -> Node | None:
        """The firewall's view of a mount target's server: its subnet, address and security groups."""
        target = self.targets.get(container_labels.get("gearlift.mount-target-id", ""))
        if target is None:
            return None
        mt = target.mount_target
        return Node(
            key=f"efs:{mt['MountTargetId']}",
            kind="efs",
            twin_ip=twin_ip,
            vpc_id=str(mt.get("VpcId", "")),
            subnet_ids=(str(mt.get("SubnetId", "")),),
            addresses=(f"{mt['IpAddress']}/32",) if mt.get("IpAddress") else (),
            groups=target.groups,
        )

    # ------------------------------------------------------------------ requests
    def reconcile(self, round_: Round) -> None:
        self.sync()
        requests = sorted(self.spool.glob("*.req"))
        if not requests:
            return
        by_ip = {ip: iid for iid, ip in round_.addresses.items()}
        hosts: dict[str, Mapping[str, Any]] = dict(round_.instances)
        for name, address in self.site_hosts().items():
            by_ip.setdefault(address, name)
            hosts.setdefault(name, {"Site": name})
        for path in requests:
            answer = self.serve(path, by_ip, hosts)
            result = path.with_suffix(".tmp-res")
            result.write_text(json.dumps(answer), encoding="utf-8")
            result.replace(path.with_suffix(".res"))
            path.unlink(missing_ok=True)

    def serve(self, path: Path, by_ip: Mapping[str, str], instances: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        try:
            request = MountRequest.from_spool(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            return {"ok": False, "message": f"unreadable mount request: {exc}"}
        iid = by_ip.get(request.peer, "")
        decision = decide(request, instances.get(iid), *self.lookup(request))
        if decision.ok:
            try:
                self.mount(iid, request, decision)
            except TwinError as exc:
                decision = Decision(error=str(exc))
        verdict = "mounted" if decision.ok else f"refused: {decision.error}"
        self.log(f"efs: {iid or request.peer} {request.file_system_id} at {request.target} {verdict}")
        return {"ok": decision.ok, "message": decision.error}

    def lookup(
        self, request: MountRequest
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None, str | None]:
        efs = self.clients("efs")
        found = [
            fs
            for fs in paginate(efs, "describe_file_systems", "FileSystems")
            if fs["FileSystemId"] == request.file_system_id
        ]
        file_system = found[0] if found else None
        target = self.targets.get(request.mount_target_id)
        mount_target = target.mount_target if target else None
        access_point = None
        if request.access_point_id and file_system is not None:
            points = efs.describe_access_points(FileSystemId=request.file_system_id).get("AccessPoints", [])
            access_point = next((p for p in points if p["AccessPointId"] == request.access_point_id), None)
        policy = None
        if file_system is not None:
            try:
                policy = efs.describe_file_system_policy(FileSystemId=request.file_system_id).get("Policy")
            except efs.exceptions.PolicyNotFound:
                policy = None
        return file_system, mount_target, access_point, policy

    def mount(self, iid: str, request: MountRequest, decision: Decision) -> None:
        """Bind the file system's directory at the request's target inside the instance."""
        source = self.data / request.file_system_id / decision.root.lstrip("/")
        if not source.is_dir():
            if decision.owner is None:
                raise TwinError(f"the directory {decision.root} does not exist on {request.file_system_id}")
            uid, gid, mode = decision.owner
            source.mkdir(parents=True)
            os.chown(source, uid, gid)
            source.chmod(mode)
        if not (self.staging / iid).is_dir():
            raise TwinError(f"{iid} was started without the EFS staging directory (before this twin's EFS plane)")
        pid = podman.run("inspect", "--type", "container", "--format", "{{.State.Pid}}", iid).stdout.strip()
        self._serial += 1
        staged = self.staging / iid / f"m{self._serial}"
        staged.mkdir()
        try:
            _host("mount", "--bind", str(source), str(staged))
            inner = f"{STAGING_IN_HOST}/{staged.name}"
            options = "bind,ro" if decision.read_only else "bind"
            script = 'mkdir -p "$1" && mount -o "$3" "$2" "$1"'
            if decision.read_only:
                script += ' && mount -o remount,bind,ro "$1"'
            _host("nsenter", "-t", pid, "-m", "--", "/bin/sh", "-c", script, "sh", request.target, inner, options)
        finally:
            subprocess.run(["umount", str(staged)], capture_output=True, check=False, timeout=30)
            if not os.path.ismount(staged):
                staged.rmdir()

    def close(self) -> None:
        """Unmount the staging tree (after the instances are gone)."""
        subprocess.run(["umount", "-R", str(self.staging)], capture_output=True, check=False, timeout=30)


def _host(*cmd: str) -> None:
    started = time.monotonic()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise TwinError(
            f"efs: {' '.join(cmd[:3])} failed after {time.monotonic() - started:.1f} s: {proc.stderr.strip()}"
        )
