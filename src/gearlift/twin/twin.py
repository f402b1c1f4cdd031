"""The rehearsal twin's lifecycle: preflight, up, reconcile loop, down.

Everything the twin starts carries its prefix (container label
`gearlift.twin=<prefix>`, network name, state directory) so teardown and the
stale-state checks find exactly what belongs to it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.twin import images, podman, sizing, tls
from gearlift.twin.awsclients import DUMMY_KEY_ID, DUMMY_SECRET, Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.dataplane import Reconciler, Round
from gearlift.twin.dataplane.amis import LOCAL_IMAGE_TAG, AccountImages, kept_local_images, store_dir
from gearlift.twin.dataplane.autoscaling import AsgController
from gearlift.twin.dataplane.ec2 import Ec2Reconciler
from gearlift.twin.dataplane.efs import EfsReconciler
from gearlift.twin.dataplane.elasticache import ElastiCacheReconciler
from gearlift.twin.dataplane.elbv2 import AlbReconciler, TargetHealthReconciler
from gearlift.twin.dataplane.imds import ImdsReconciler, ImdsServer
from gearlift.twin.dataplane.lambdas import LambdaRuntime
from gearlift.twin.dataplane.network import FirewallReconciler
from gearlift.twin.dataplane.rds import RdsReconciler
from gearlift.twin.dataplane.route53 import NameResolver, Route53Reconciler, front_doors
from gearlift.twin.dataplane.scaling import ScalingReconciler
from gearlift.twin.errors import TwinError
from gearlift.twin.healthcheck import TargetHealthChecker
from gearlift.twin.layout import Endpoints, TwinLayout
from gearlift.twin.netpolicy import Plane
from gearlift.twin.netutil import free_port
from gearlift.twin.onprem import ONPREM_APP_HOST, ONPREM_DB_HOST, SITE_ADDRESSES, OnPremEstate

REPO_ROOT = Path(__file__).resolve().parents[3]
ONPREM_SIZES = REPO_ROOT / "inventories" / "rehearsal" / "group_vars" / "onprem_app.yml"
# Canonical's account: the twin makes the emulator's stock Ubuntu AMIs boot
# the local Debian 12 stand-in image (Ubuntu's archive is not reachable here).
CANONICAL_OWNER = "099720109477"
# The AWS APIs as the twin's hosts see them: one fixed port on the twin network's gateway (as AWS's
# regional endpoints are fixed), whatever loopback port the controller's side got.
HOSTS_API_PORT = 4566

Log = Callable[[str], None]


@dataclass
class TwinConfig:
    prefix: str = "gearlift-twin"
    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".twin")
    subnet: str = "10.89.77.0/24"
    region: str = "us-east-1"
    moto_port: int | None = None
    interval: float = 2.0
    # Hosts sized like their instance types, and the scaling service's clock (gearlift.twin.sizing).
    cpu_factor: float = field(default_factory=sizing.cpu_factor)
    time_scale: float = field(default_factory=sizing.time_scale)
    # Today's servers (the on-premises estate), sized by the same factor; None: the rehearsal
    # inventory's figures (ONPREM_SIZES).
    onprem_size: sizing.Size | None = None

    def layout(self) -> TwinLayout:
        net = ipaddress.ip_network(self.subnet)
        gateway = str(next(net.hosts()))
        return TwinLayout(
            prefix=self.prefix,
            state_dir=self.state_dir,
            network=self.prefix,
            subnet=self.subnet,
            gateway=gateway,
            region=self.region,
        )


class Twin:
    def __init__(self, config: TwinConfig | None = None, log: Log | None = None) -> None:
        self.config = config or TwinConfig()
        self.layout = self.config.layout()
        self._t0 = time.monotonic()
        self._log = log
        self.endpoints = Endpoints()
        self.moto: MotoControlPlane | None = None
        self.clients: Clients | None = None
        self.ec2: Ec2Reconciler | None = None
        self.asg: AsgController | None = None
        self.rds: RdsReconciler | None = None
        self.alb: AlbReconciler | None = None
        self.firewall: FirewallReconciler | None = None
        self.imds: ImdsServer | None = None
        self.route53: Route53Reconciler | None = None
        self.efs: EfsReconciler | None = None
        self.cache: ElastiCacheReconciler | None = None
        self.scaling: ScalingReconciler | None = None
        self.lambdas: LambdaRuntime | None = None
        # The data plane, in the order one round runs it (gearlift.twin.dataplane).
        self.reconcilers: tuple[Reconciler, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.anchor = f"{self.config.prefix}-anchor"
        self.seeded: dict[str, str] = {}
        self.onprem: OnPremEstate | None = None
        self.checker = TargetHealthChecker(self.log)
        self.owned = False

    # ------------------------------------------------------------------ utils
    def log(self, message: str) -> None:
        line = f"[{time.monotonic() - self._t0:7.1f}s] twin: {message}"
        if self._log is not None:
            self._log(line)
        else:
            print(line, flush=True)

    @property
    def aws_env(self) -> dict[str, str]:
        """What the controller's Ansible run gets: the standard AWS SDK settings."""
        assert self.moto is not None
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
            "AWS_REGION": self.config.region,
            "AWS_DEFAULT_REGION": self.config.region,
            "GEARLIFT_HOSTS_AWS_ENDPOINT_URL": self.endpoints.moto_internal,
            **self.seeded,
        }

    # -------------------------------------------------------------- preflight
    def preflight(self) -> None:
        """Refuse to start on bad ground, before anything is created."""
        podman.check_runtime_config()
        for tool, package in (("haproxy", "haproxy"), ("openssl", "openssl")):
            if shutil.which(tool) is None:
                raise TwinError(f"{tool} is not installed: run ./scripts/bootstrap (or `apt-get install {package}`).")
        stale = podman.list_containers(self.layout.label)
        if stale:
            names = ", ".join(sorted(c.name for c in stale))
            raise TwinError(
                f"containers of an earlier twin '{self.config.prefix}' are still there ({names}). "
                "Run `gearlift twin clean` to remove them, then try again."
            )
        for name in (self.anchor,):
            if podman.container_exists(name):
                raise TwinError(f"a container named {name} already exists: remove it (`podman rm -f {name}`).")
        if podman.network_exists(self.layout.network):
            raise TwinError(
                f"a podman network named {self.layout.network} already exists (left by an earlier run?). "
                f"Run `gearlift twin clean` or `podman network rm {self.layout.network}`."
            )
        pidfile = self.layout.state_dir / "moto.pid"
        if pidfile.exists():
            try:
                pid = int(pidfile.read_text().strip())
                os.kill(pid, 0)
            except (ValueError, OSError):
                pidfile.unlink(missing_ok=True)
            else:
                raise TwinError(
                    f"the AWS emulator of an earlier twin still runs (pid {pid}); run `gearlift twin clean`."
                )
        if self.config.moto_port is not None:
            from gearlift.twin.netutil import require_free

            require_free(self.config.moto_port, "AWS emulator (moto)")

    # --------------------------------------------------------------------- up
    def up(self) -> None:
        self.preflight()
        # From here on the twin's name is ours: down() removes what carries it. A refused
        # preflight (another twin of this name is running) leaves the other twin alone.
        self.owned = True
        try:
            self._up()
        except BaseException:
            self.down()
            raise

    def _up(self) -> None:
        layout = self.layout
        layout.state_dir.mkdir(parents=True, exist_ok=True)
        base = images.ensure_base_image(self.log)
        mariadb_image = images.ensure_mariadb_image(self.log)
        self._tls_material()
        podman.run(
            "network",
            "create",
            "--subnet",
            layout.subnet,
            "--gateway",
            layout.gateway,
            "--label",
            layout.label,
            layout.network,
        )
        # The bridge and its gateway address exist only while a container is
        # attached: an idle anchor keeps them up for the emulator to bind.
        podman.run(
            "run",
            "-d",
            "--name",
            self.anchor,
            "--network",
            layout.network,
            "--label",
            layout.label,
            *podman.RUN_FIX_ARGS,
            base,
            "sleep",
            "infinity",
        )
        podman.pin_bridge_mac(layout.network)
        port = self.config.moto_port or free_port()
        self.moto = MotoControlPlane(layout.state_dir, ["127.0.0.1", layout.gateway], port, HOSTS_API_PORT)
        self.moto.start()
        self.moto.reset()
        self.endpoints.moto = self.moto.url
        self.endpoints.moto_internal = self.moto.url_for(layout.gateway)
        pid = self.moto.proc.pid if self.moto.proc else "?"
        self.log(f"AWS emulator up on {self.moto.url} and {self.endpoints.moto_internal} (pid {pid})")
        self._write_host_aws_config()
        self.clients = Clients(self.moto.url, self.config.region)
        self._map_stock_amis(base)
        self._seed_account(images.ensure_apphost_image(self.log))
        self.ec2 = Ec2Reconciler(layout, self.clients, self.log)
        self.imds = ImdsServer(layout.gateway, self.log)
        self.imds.start()
        self.asg = AsgController(self.clients, self.log)
        self.rds = RdsReconciler(layout, self.clients, self.log, mariadb_image, layout.state_dir / "tls-db")
        self.alb = AlbReconciler(
            layout, self.clients, self.log, layout.state_dir / "tls-alb" / "alb.pem", self.endpoints
        )
        self.firewall = FirewallReconciler(
            self.clients,
            layout.label,
            layout.network,
            Plane(layout.gateway, layout.subnet, HOSTS_API_PORT, self.imds.port, layout.resolver),
            self.log,
        )
        self.firewall.alb_sources = self.alb.sources
        self.ec2.on_start = self.firewall.seal
        self.rds.on_start = self.firewall.seal
        self.route53 = Route53Reconciler(
            layout.resolver, layout.network, layout.gateway, self.clients, self.log, self.alb.sources
        )
        self.route53.start()  # before the first host boots: it is their name server
        self.efs = EfsReconciler(layout, self.clients, self.log, base, on_start=self.firewall.seal)
        self.cache = ElastiCacheReconciler(
            layout,
            self.clients,
            self.log,
            lambda: images.ensure_redis_image(self.log),
            layout.state_dir / "tls-ca",
            on_start=self.firewall.seal,
        )
        self.firewall.extra_nodes = {"efs": self.efs.node, "elasticache": self.cache.node}
        self.ec2.extra_mounts = self.efs.run_args
        self.ec2.extra_mount_points = self.efs.mount_points()
        self.ec2.cpu_factor = self.config.cpu_factor
        # After rds in the round: the rotation functions reach the databases it lists.
        self.lambdas = LambdaRuntime(
            self.endpoints.moto, self.config.region, layout.network, layout.state_dir / "lambda", self.log
        )
        self.scaling = ScalingReconciler.for_twin(self.clients, self.log, self.alb, self.config.time_scale)
        self.reconcilers = (
            AccountImages(layout, self.clients, self.log),
            self.ec2,
            ImdsReconciler(self.imds, self.clients, self.config.region, self.log),
            self.firewall,
            TargetHealthReconciler(self.checker, self.alb, self.clients, self.config.region),
            self.asg,
            self.rds,
            self.lambdas,
            self.alb,
            self.route53,
            self.efs,
            self.cache,
            self.scaling,
        )
        self.endpoints.resolver = layout.resolver
        self.endpoints.save(layout.endpoints_file)

    def _tls_material(self) -> None:
        """The twin's CA (RDS's CA bundle, the ALB's and on-prem certificates) and this run's server certs.

        The CA outlives a run, as RDS's CA bundle does on AWS: a golden image baked in an earlier
        rehearsal ships it and must still verify the databases of a later one (the account keeps
        its images, gearlift.twin.dataplane.amis). It is made anew when missing or expiring within
        a week; server certificates are issued every run.
        """
        root = self.layout.state_dir
        # The CA's key stays in a directory of its own that no container mounts.
        ca_dir = root / "tls-ca"
        tls.ensure_ca(ca_dir)
        for name, cn, sub in (
            # moto names every instance endpoint <id>.aaaaaaaaaa.<region>.rds.amazonaws.com
            ("server", f"*.aaaaaaaaaa.{self.config.region}.rds.amazonaws.com", "tls-db"),
            ("alb", "localhost", "tls-alb"),
            ("server", ONPREM_DB_HOST, "tls-onprem"),
        ):
            tls.issue_certificate(ca_dir, root / sub, name, cn, [f"DNS:{cn}", "DNS:localhost", "IP:127.0.0.1"])
        # HAProxy (run by the twin, as root) reads certificate and key from one file: the key's mode.
        (root / "tls-alb" / "alb.pem").unlink(missing_ok=True)  # one an earlier run left 0644
        pem = os.open(root / "tls-alb" / "alb.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(pem, "wb") as handle:
            handle.write((root / "tls-alb" / "alb.crt").read_bytes() + (root / "tls-alb" / "alb.key").read_bytes())
        # MariaDB (uid mysql in the container) must read its key.
        for sub in ("tls-db", "tls-onprem"):
            for path in (root / sub).iterdir():
                path.chmod(0o644 if path.suffix != ".key" or path.name == "server.key" else 0o600)

    def _write_host_aws_config(self) -> None:
        """The emulator's endpoint and the region for the container hosts, as a standard SDK file.

        Mounted read-only at /root/.aws and /etc/gearlift-twin/aws, and named in a systemd
        DefaultEnvironment drop-in so every service finds it. No credentials: a host gets its
        instance role's from IMDS (gearlift.twin.dataplane.imds), as on EC2, and the emulator
        refuses any other (gearlift.twin.emulator.iam). The same code runs unchanged on EC2.
        """
        assert self.moto is not None
        aws = self.layout.aws_dir
        aws.mkdir(parents=True, exist_ok=True)
        internal = self.moto.url_for(self.layout.gateway)
        (aws / "config").write_text(
            f"[default]\nregion = {self.config.region}\nendpoint_url = {internal}\n", encoding="utf-8"
        )
        (aws / "credentials").unlink(missing_ok=True)
        self.layout.dropin.write_text(
            "[Manager]\nDefaultEnvironment="
            "AWS_CONFIG_FILE=/etc/gearlift-twin/aws/config "
            f"AWS_REGION={self.config.region} AWS_DEFAULT_REGION={self.config.region}\n",
            encoding="utf-8",
        )

    def _seed_account(self, apphost_image: str) -> None:
        """What a real account would bring: the ALB's certificate in ACM, and a first image.

        The certificate is the one HAProxy serves for HTTPS listeners; the
        image is the twin's app-host image registered as an AMI. Both reach
        the playbooks as inventory inputs (GEARLIFT_CERTIFICATE_ARN,
        GEARLIFT_AMI_ID), like a real account's certificate and image ids.
        """
        assert self.clients is not None
        alb_tls = self.layout.state_dir / "tls-alb"
        cert = self.clients("acm").import_certificate(
            Certificate=(alb_tls / "alb.crt").read_bytes(),
            PrivateKey=(alb_tls / "alb.key").read_bytes(),
            CertificateChain=(alb_tls / "ca.crt").read_bytes(),
        )
        self.seeded["GEARLIFT_CERTIFICATE_ARN"] = cert["CertificateArn"]
        ec2 = self.clients("ec2")
        ami = ec2.register_image(
            Name="gearlift-twin-apphost",
            RootDeviceName="/dev/sda1",
            Architecture="x86_64",
            Description="the twin's app-host image (Debian 12, JRE 17)",
        )["ImageId"]
        ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": apphost_image}])
        self.seeded["GEARLIFT_AMI_ID"] = ami
        # The CA the RDS stand-ins' certificates chain to (the RDS global bundle on AWS).
        self.seeded["GEARLIFT_DB_CA_BUNDLE"] = str(self.layout.state_dir / "tls-db" / "ca.crt")
        self.log(f"seeded ACM certificate {cert['CertificateArn'].split('/')[-1]} and image {ami}")

    def _map_stock_amis(self, base_image: str) -> None:
        assert self.clients is not None
        ec2 = self.clients("ec2")
        stock = ec2.describe_images(
            Owners=[CANONICAL_OWNER], Filters=[{"Name": "name", "Values": ["ubuntu/images/*"]}]
        )["Images"]
        ids = [img["ImageId"] for img in stock]
        if ids:
            ec2.create_tags(Resources=ids, Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": base_image}])
        self.log(f"{len(ids)} stock Ubuntu AMIs boot the local image {base_image}")

    def onprem_up(self, orders: int = 200, app: bool = True) -> OnPremEstate:
        """Start the shop's estate as it runs today (for the database move); see onprem.py."""
        if app:
            subprocess.run([str(REPO_ROOT / "app" / "shop-standin" / "build.sh")], check=True, capture_output=True)
        estate = OnPremEstate(
            prefix=self.config.prefix,
            network=self.layout.network,
            label=self.layout.label,
            state_dir=self.layout.state_dir,
            mariadb_image=images.ensure_mariadb_image(self.log),
            apphost_image=images.ensure_apphost_image(self.log),
            jar=REPO_ROOT / "app" / "shop-standin" / "build" / "shop-standin.jar",
            log=self.log,
        )
        if self.efs is not None:
            estate.app_extra_args = self.efs.run_args
        if self.config.cpu_factor:
            size = self.config.onprem_size or sizing.onprem_size(ONPREM_SIZES)
            estate.limits = sizing.run_limits(size, self.config.cpu_factor)
            self.log(f"on-prem servers sized {size.vcpus} vCPU / {size.memory_mib} MiB x {self.config.cpu_factor:g}")
        estate.up(orders=orders, app=app)
        self.onprem = estate
        return estate

    # -------------------------------------------------------------- reconcile
    def reconcile_once(self) -> None:
        """One round of the data plane: every reconciler in order."""
        assert self.reconcilers, "the twin is not up"
        with self._lock:
            round_ = Round()
            for reconciler in self.reconcilers:
                reconciler.reconcile(round_)
            self.endpoints.databases = round_.databases
            self.endpoints.save(self.layout.endpoints_file)

    def addresses(self) -> dict[str, str]:
        assert self.ec2 is not None
        return self.ec2.addresses()

    def start_loop(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.reconcile_once()
                except TwinError as exc:
                    self.error = exc
                    self.log(f"reconcile stopped: {exc}")
                    return
                except Exception as exc:  # keep the loop alive through API hiccups
                    self.log(f"reconcile error (retrying): {exc!r}")
                self._stop.wait(self.config.interval)

        self._thread = threading.Thread(target=loop, name="twin-reconcile", daemon=True)
        self._thread.start()

    def stop_loop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None
        self._stop = threading.Event()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Reconcile until predicate() holds; bounded in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._thread is None:
                self.reconcile_once()
            if predicate():
                return
            time.sleep(0.5)
        raise TwinError(f"timed out after {timeout:.0f} s waiting for {what}")

    # ------------------------------------------------------------------- down
    def name_resolver(self) -> NameResolver:
        """Customers' name resolution: the twin's DNS, its answers mapped to loopback front doors
        (each ALB's listener, and the on-prem shop's site address to its published port)."""
        extra = []
        if self.onprem is not None and self.onprem.app_port:
            extra.append((SITE_ADDRESSES[ONPREM_APP_HOST], self.onprem.app_url))
        doors = front_doors(self.alb.sources if self.alb else {}, self.endpoints.load_balancers, extra)
        return NameResolver(self.layout.resolver, doors)

    def down(self) -> None:
        """Tear down what up() built; nothing when up() never got past its preflight."""
        if not self.owned:
            return
        self.stop_loop()
        if self.route53 is not None:
            self.route53.stop()
        if self.alb is not None:
            self.alb.stop_all()
        if self.imds is not None:
            self.imds.stop()
            self.imds = None
        clean(self.config, self.log)
        if self.efs is not None:
            self.efs.close()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> Twin:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.layout.endpoints_file.read_text(encoding="utf-8"))
        return data


def clean(config: TwinConfig, log: Log | None = None, account_images: bool = False) -> list[str]:
    """Remove everything a twin with this prefix left: containers, network, processes.

    The images the account keeps for later rehearsals (gearlift.twin.dataplane.amis) stay, unless
    ``account_images``: then they and their records go too.
    """
    layout = config.layout()
    removed: list[str] = []
    try:
        podman.podman_path()
    except TwinError:
        return removed  # nothing of a twin can exist without podman
    for container in podman.list_containers(layout.label):
        podman.remove(container.name, stop_timeout=0 if container.name.endswith("-anchor") else 5)
        removed.append(f"container {container.name}")
    if podman.container_exists(f"{config.prefix}-anchor"):
        podman.remove(f"{config.prefix}-anchor", stop_timeout=0)
        removed.append(f"container {config.prefix}-anchor")
    gateway = ""  # read from this prefix's own network only: the configured subnet may be another twin's
    if podman.network_exists(layout.network):
        gateway = podman.network_gateway(layout.network)
        podman.run("network", "rm", "-f", layout.network, check=False)
        removed.append(f"network {layout.network}")
    # Images committed from this twin's instances (another checkout's twin may share the prefix: its
    # images carry its own state dir's label), but those the account keeps for later rehearsals.
    kept = set() if account_images else kept_local_images(layout.state_dir)
    listing = podman.run("images", "--filter", f"label={layout.label}", "--format", "json", check=False)
    for item in json.loads(listing.stdout or "[]") if listing.returncode == 0 else []:
        if kept & set(item.get("Names") or []) or not layout.owns(item.get("Labels")):
            continue
        if podman.run("rmi", "-f", item["Id"], check=False).returncode == 0:
            removed.append(f"image {item['Id'][:12]}")
    if account_images and store_dir(layout.state_dir).is_dir():
        shutil.rmtree(store_dir(layout.state_dir))
        removed.append("the account's image records")
    # The EFS stand-in's staging tree (gearlift.twin.dataplane.efs), a bind mount on the controller.
    staging = layout.state_dir / "efs" / "staging"
    if os.path.ismount(staging):
        subprocess.run(["umount", "-R", str(staging)], capture_output=True, check=False, timeout=30)
        removed.append(f"mount {staging}")
    pid_dirs = [d for d in (layout.state_dir, layout.runtime_dir) if d.exists()]
    if pid_dirs:
        from gearlift.twin.controlplane import _terminate

        for pidfile in sorted(p for d in pid_dirs for p in d.glob("*.pid")):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (ValueError, IndexError):
                pid = 0
            if pid > 0 and _alive(pid):
                _terminate(pid, None)
                removed.append(f"process {pid} ({pidfile.stem})")
            pidfile.unlink(missing_ok=True)
    # An emulator whose pid file is elsewhere (a test twin's state dir under pytest's tmp, its run killed):
    # found by the network gateway it serves on, an address only this twin's network has.
    from gearlift.twin.controlplane import _terminate

    for pid in emulators_bound_to(gateway):
        _terminate(pid, None)
        removed.append(f"process {pid} (emulator on {gateway})")
    shutil.rmtree(layout.runtime_dir, ignore_errors=True)
    if log is not None:
        for item in removed:
            log(f"removed {item}")
    return removed


def emulators_bound_to(address: str, proc_root: Path = Path("/proc")) -> list[int]:
    """PIDs of running AWS emulators (gearlift.twin.emulator.server) serving on ``address``."""
    found = []
    for entry in proc_root.iterdir() if address else ():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args]
        if "gearlift.twin.emulator.server" not in text:
            continue
        hosts = [text[i + 1] for i, a in enumerate(text[:-1]) if a == "--host"]
        if any(h.rsplit(":", 1)[0] == address for h in hosts):
            found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
