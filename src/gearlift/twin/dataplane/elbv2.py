"""ELBv2: every application load balancer is an HAProxy on loopback, with ELB's health checks.

One frontend per listener, forwarding to the healthy container hosts of its target group;
the twin's own checks (gearlift.twin.healthcheck) decide health as ELB does and report it
to the emulator. Each load balancer's traffic and checks come from its own address on the
twin network, so the targets' security groups see it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gearlift.twin import channel, podman
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.errors import TwinError
from gearlift.twin.healthcheck import CheckSpec, TargetHealthChecker
from gearlift.twin.layout import Endpoints, TwinLayout
from gearlift.twin.logsink import LineSink
from gearlift.twin.netutil import free_port

Log = Callable[[str], None]


def _backend_id(arn: str) -> str:
    return "tg_" + hashlib.sha256(arn.encode()).hexdigest()[:10]


def _expand_codes(matcher: str) -> list[str]:
    """ALB matcher ("200", "200,302", "200-299") -> explicit status codes."""
    codes: list[str] = []
    for part in matcher.replace(" ", "").split(","):
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            codes.extend(str(c) for c in range(lo, hi + 1))
        elif part:
            codes.append(part)
    return codes or ["200"]


#: The cookie an ALB sets for duration-based stickiness (lb_cookie); AWSALBAPP for app_cookie.
ALB_COOKIES = {"lb_cookie": "AWSALB", "app_cookie": "AWSALBAPP"}


def _cookie_value(target_id: str) -> str:
    """The stickiness cookie's value for a target: opaque, like the ALB's, and stable across reloads."""
    return hashlib.sha256(target_id.encode()).hexdigest()[:16]


def stickiness(attributes: list[dict[str, str]]) -> str | None:
    """The HAProxy ``cookie`` line for a target group's stickiness attributes, or None when off.

    lb_cookie: the load balancer inserts its own cookie (AWSALB), valid for
    stickiness.lb_cookie.duration_seconds; app_cookie is approximated by the same inserted cookie
    (AWSALBAPP, stickiness.app_cookie.duration_seconds), without following the app's own cookie.
    """
    attrs = {a["Key"]: a["Value"] for a in attributes}
    if attrs.get("stickiness.enabled", "false").lower() != "true":
        return None
    kind = attrs.get("stickiness.type", "lb_cookie")
    prefix = "app" if kind == "app_cookie" else "lb"
    seconds = int(attrs.get(f"stickiness.{prefix}_cookie.duration_seconds", "86400"))
    return f'    cookie {ALB_COOKIES.get(kind, "AWSALB")} insert indirect nocache httponly attr "Max-Age={seconds}"'


HAPROXY_HEAD = """# Written by the gearlift twin: this HAProxy stands in for ALB {name}.
global
    # Each request's line (client, target, timers, termination state), as an ALB's access log has
    # it: to the twin's sink on loopback, which writes .twin/alb-<name>.log (gearlift.twin.logsink).
    log {log} len 4096 format raw local0 info
    # expose-fd: a reload (-x) takes over the listening sockets, so no connection is refused.
    stats socket {sock} mode 600 level admin expose-fd listeners
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    log global
    option httplog
    option http-server-close
    option forwardfor
    retries 2
    option redispatch
    # The load balancer's own address on the twin network: the hosts' security groups see it.
    source {source}
"""


def check_config(name: str, cfg: Path) -> None:
    """`haproxy -c`; a refusal carries HAProxy's own reason (`-q` would hide it)."""
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        reason = "\n".join(part.strip() for part in (check.stderr, check.stdout) if part.strip())
        raise TwinError(
            f"alb: HAProxy config for {name} ({cfg}) is invalid:\n"
            f"{reason or f'haproxy -c exited {check.returncode} without a message'}"
        )


class AlbReconciler:
    def __init__(self, layout: TwinLayout, clients: Clients, log: Log, cert_pem: Path, endpoints: Endpoints) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        self.cert_pem = cert_pem
        self.endpoints = endpoints
        self._cfg_hash: dict[str, str] = {}
        # Each load balancer's source address on the twin network (its ENIs on AWS): the app
        # hosts' security groups admit it only when they admit the load balancer's group.
        self.sources: dict[str, str] = {}
        # Each load balancer's request log: HAProxy sends its lines here (it runs daemonised).
        self.sinks: dict[str, LineSink] = {}

    def access_log(self, lb_name: str) -> Path:
        """Where the load balancer's request log goes (a line per request, HAProxy's httplog format)."""
        return self.layout.state_dir / f"alb-{lb_name}.log"

    def _sink_for(self, lb_name: str) -> LineSink:
        if lb_name not in self.sinks:
            self.sinks[lb_name] = LineSink(self.access_log(lb_name)).start()
        return self.sinks[lb_name]

    def source_for(self, lb_name: str) -> str:
        """The load balancer's address: one per balancer, from the top of the twin subnet, on the bridge."""
        if lb_name in self.sources:
            return self.sources[lb_name]
        net = ipaddress.ip_network(self.layout.subnet)
        taken = set(self.sources.values()) | {self.layout.resolver}
        address = next(str(ip) for ip in reversed(list(net.hosts())) if str(ip) not in taken)
        bridge = podman.network_interface(self.layout.network)
        add = subprocess.run(
            ["ip", "addr", "add", f"{address}/32", "dev", bridge], capture_output=True, text=True, check=False
        )
        if add.returncode != 0 and "File exists" not in add.stderr:
            raise TwinError(f"alb: cannot give {lb_name} its address {address} on {bridge}: {add.stderr.strip()}")
        self.sources[lb_name] = address
        return address

    def _files(self, lb_name: str) -> tuple[Path, Path, Path]:
        """Config under the state dir; pid file and stats socket in the short runtime dir."""
        run = self.layout.runtime_dir
        run.mkdir(mode=0o700, parents=True, exist_ok=True)
        return (
            self.layout.state_dir / f"haproxy-{lb_name}.cfg",
            run / f"alb-{lb_name}.pid",
            run / f"alb-{hashlib.sha256(lb_name.encode()).hexdigest()[:8]}.sock",
        )

    def render(
        self, lb: dict[str, Any], addresses: dict[str, str], health: dict[str, dict[str, str]] | None = None
    ) -> str:
        """HAProxy config for one ALB. Draining targets are left out; like an ALB, only healthy
        targets get traffic (the others are listed with weight 0: HAProxy still checks them)."""
        elbv2 = self.clients("elbv2")
        health = health or {}
        name = lb["LoadBalancerName"]
        cfg, _, sock = self._files(name)
        ports = self.endpoints.load_balancers.setdefault(name, {})
        out = [
            HAPROXY_HEAD.format(name=name, sock=sock, source=self.source_for(name), log=self._sink_for(name).address)
        ]
        listeners = paginate(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=lb["LoadBalancerArn"])
        backends: dict[str, dict[str, Any]] = {}
        for listener in sorted(listeners, key=lambda x: x["Port"]):
            lport = str(listener["Port"])
            if lport not in ports:
                ports[lport] = free_port()
            bind = f"127.0.0.1:{ports[lport]}"
            if listener["Protocol"] == "HTTPS":
                bind += f" ssl crt {self.cert_pem}"
            out.append(f"frontend l{lport}\n    bind {bind}")
            out.append("    http-request set-header X-Forwarded-Proto " + listener["Protocol"].lower())
            out.append(f"    http-request set-header X-Forwarded-Port {lport}")
            for action in sorted(listener.get("DefaultActions", []), key=lambda a: a.get("Order", 0)):
                kind = action["Type"]
                if kind == "redirect":
                    cfgr = action.get("RedirectConfig", {})
                    scheme = cfgr.get("Protocol", "#{protocol}").lower()
                    code = cfgr.get("StatusCode", "HTTP_301").replace("HTTP_", "")
                    target_port = cfgr.get("Port", "#{port}")
                    local = ports.get(str(target_port)) if target_port.isdigit() else None
                    location = f"{scheme}://%[req.hdr(host),field(1,:)]" + (f":{local}" if local else "")
                    out.append(f"    http-request redirect location {location}%[capture.req.uri] code {code}")
                    break
                if kind == "fixed-response":
                    fixed = action.get("FixedResponseConfig", {})
                    out.append(f"    http-request return status {fixed.get('StatusCode', '503')}")
                    break
                if kind == "forward":
                    arns = (
                        [action["TargetGroupArn"]]
                        if action.get("TargetGroupArn")
                        else [t["TargetGroupArn"] for t in action.get("ForwardConfig", {}).get("TargetGroups", [])]
                    )
                    for arn in arns:
                        backends[arn] = {}
                    out.append(f"    default_backend {_backend_id(arns[0])}" if arns else "")
                    break
        for arn in backends:
            tg = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
            targets = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            path = tg.get("HealthCheckPath", "/")
            matcher = tg.get("Matcher", {}).get("HttpCode", "200")
            interval = int(tg.get("HealthCheckIntervalSeconds", 30))
            rise = int(tg.get("HealthyThresholdCount", 5))
            fall = int(tg.get("UnhealthyThresholdCount", 2))
            timeout = int(tg.get("HealthCheckTimeoutSeconds", 5))
            hc_port = tg.get("HealthCheckPort", "traffic-port")
            out.append(f"backend {_backend_id(arn)}\n    # {tg['TargetGroupName']}")
            out.append("    balance roundrobin")
            sticky = stickiness(elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"])
            if sticky is not None:
                out.append(sticky)
            out.append(f"    timeout check {timeout}s")
            out.append(f"    option httpchk GET {path}")
            out.append(f"    http-check expect rstatus ^({'|'.join(_expand_codes(matcher))})$")
            for desc in sorted(targets, key=lambda d: d["Target"]["Id"]):
                iid = desc["Target"]["Id"]
                if desc.get("TargetHealth", {}).get("State") == "draining":
                    continue  # deregistered: in-flight requests finish in the old HAProxy process
                port = desc["Target"].get("Port", tg["Port"])
                ip = addresses.get(iid)
                if ip is None:
                    continue
                check_port = "" if hc_port == "traffic-port" else f" port {hc_port}"
                # A target group the checker does not see has no verdicts: traffic flows. In one it
                # sees, a target registered after this round's checks is still `initial`: no traffic
                # (a new host booting behind Apache would answer 503).
                verdicts = health.get(arn)
                weight = 1 if verdicts is None or verdicts.get(iid) == "healthy" else 0
                # A sticky client of a target that is not healthy goes elsewhere, as on an ALB: only a
                # healthy server has a cookie value (HAProxy would honour a cookie for a weight-0 server).
                cookie = f" cookie {_cookie_value(iid)}" if sticky is not None and weight else ""
                out.append(
                    f"    server {iid} {ip}:{port} weight {weight}{cookie} check inter {interval}s rise {rise} "
                    f"fall {fall}{check_port}"
                )
        text = "\n".join(line for line in out if line) + "\n"
        cfg.write_text(text, encoding="utf-8")
        return text

    def _running_pid(self, pidfile: Path) -> int | None:
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def reconcile(self, round_: Round) -> None:
        self.serve(round_.addresses, round_.health)

    def serve(self, addresses: dict[str, str], health: dict[str, dict[str, str]] | None = None) -> None:
        """An HAProxy per application load balancer, reloaded when its config changes."""
        elbv2 = self.clients("elbv2")
        lbs = [
            lb for lb in paginate(elbv2, "describe_load_balancers", "LoadBalancers") if lb.get("Type") == "application"
        ]
        names = {lb["LoadBalancerName"] for lb in lbs}
        for name in list(self.endpoints.load_balancers):
            if name not in names:
                self.stop(name)
        for lb in lbs:
            name = lb["LoadBalancerName"]
            text = self.render(lb, addresses, health)
            digest = hashlib.sha256(text.encode()).hexdigest()
            cfg, pidfile, _ = self._files(name)
            pid = self._running_pid(pidfile)
            if pid is not None and self._cfg_hash.get(name) == digest:
                continue
            check_config(name, cfg)
            cmd = ["haproxy", "-D", "-p", str(pidfile), "-f", str(cfg)]
            _, _, sock = self._files(name)
            if pid is not None:
                cmd += (["-x", str(sock)] if sock.exists() else []) + ["-sf", str(pid)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise TwinError(f"alb: HAProxy for {name} failed to start: {proc.stderr.strip()}")
            self._cfg_hash[name] = digest
            ports = ", ".join(f"{k}->127.0.0.1:{v}" for k, v in sorted(self.endpoints.load_balancers[name].items()))
            self.log(f"alb: {name} {'reloaded' if pid else 'serving'} on {ports}")

    def checked_targets(self) -> dict[str, tuple[CheckSpec, dict[str, int]]]:
        """Target groups a load balancer forwards to, with their registered (not draining) targets."""
        elbv2 = self.clients("elbv2")
        out: dict[str, tuple[CheckSpec, dict[str, int]]] = {}
        for tg in paginate(elbv2, "describe_target_groups", "TargetGroups"):
            if not tg.get("LoadBalancerArns"):
                continue  # not in use: ELB does not check it
            arn = tg["TargetGroupArn"]
            ports = {
                d["Target"]["Id"]: int(d["Target"].get("Port", tg["Port"]))
                for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                if d.get("TargetHealth", {}).get("State") != "draining"
            }
            spec = CheckSpec.from_target_group(tg, _expand_codes)
            # ELB's health checks come from the load balancer's own addresses.
            sources = [self.sources[n] for n in self._lb_names(tg.get("LoadBalancerArns", [])) if n in self.sources]
            out[arn] = (dataclasses.replace(spec, source=sources[0] if sources else ""), ports)
        return out

    def _lb_names(self, arns: list[str]) -> list[str]:
        if not arns:
            return []
        found = self.clients("elbv2").describe_load_balancers(LoadBalancerArns=arns)["LoadBalancers"]
        return [lb["LoadBalancerName"] for lb in found]

    def stats_csv(self, lb_name: str) -> str | None:
        """HAProxy's ``show stat`` CSV for one load balancer (its stats socket), or None when it does not answer."""
        _, _, sock = self._files(lb_name)
        if not sock.exists():
            return None
        data = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(2)
                conn.connect(str(sock))
                conn.sendall(b"show stat\n")
                while chunk := conn.recv(65536):
                    data += chunk
        except OSError:
            return None
        return data.decode(errors="replace")

    def _show_stat(self, lb_name: str) -> dict[str, str]:
        """Server name -> status (UP, DOWN, ...) from HAProxy's stats socket."""
        states: dict[str, str] = {}
        text = self.stats_csv(lb_name)
        if text is None:
            return states
        for line in text.splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[1].startswith("i-"):
                states[fields[1]] = fields[17]
        return states

    def server_states(self, lb_name: str) -> dict[str, str]:
        return self._show_stat(lb_name)

    def unhealthy_targets(self) -> set[str]:
        """Targets HAProxy has marked DOWN (its health checks stand in for the ALB's)."""
        return {
            iid
            for name in self.endpoints.load_balancers
            for iid, status in self._show_stat(name).items()
            if status.startswith("DOWN")
        }

    def stop(self, name: str) -> None:
        _, pidfile, _ = self._files(name)
        pid = self._running_pid(pidfile)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self._running_pid(pidfile) is not None:
                time.sleep(0.1)
            if self._running_pid(pidfile) is not None:
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)
        self.endpoints.load_balancers.pop(name, None)
        address = self.sources.pop(name, None)
        if address is not None and podman.network_exists(self.layout.network):
            bridge = podman.network_interface(self.layout.network)
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", bridge], capture_output=True, check=False)
        self._cfg_hash.pop(name, None)
        sink = self.sinks.pop(name, None)
        if sink is not None:
            sink.stop()
        self.log(f"alb: {name} stopped")

    def stop_all(self) -> None:
        for name in list(self.endpoints.load_balancers):
            self.stop(name)
        for name in list(self.sinks):  # rendered, never served
            self.sinks.pop(name).stop()


class TargetHealthReconciler:
    """ELB's health checks: every target of a group behind a load balancer, checked from its address.

    The verdicts go to the emulator (DescribeTargetHealth answers with them) and into the round,
    where the load balancers' configs and the Auto Scaling loop read them.
    """

    def __init__(self, checker: TargetHealthChecker, alb: AlbReconciler, clients: Clients, region: str) -> None:
        self.checker = checker
        self.alb = alb
        self.clients = clients
        self.region = region

    def reconcile(self, round_: Round) -> None:
        round_.health = self.checker.run(self.alb.checked_targets(), round_.addresses)
        if round_.health:
            channel.send(
                self.clients.endpoint, channel.TARGET_HEALTH, {"region": self.region, "target_groups": round_.health}
            )
        round_.unhealthy = self.checker.states("unhealthy")
