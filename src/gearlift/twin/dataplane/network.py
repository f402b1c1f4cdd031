"""The twin's network enforcement: each host's security groups and routes, in its own namespace.

Every round the reconciler reads the network from the emulator (security
groups, subnets, route tables, VPCs, interface endpoints, instances, DB
instances, load balancers), builds each host's ruleset with
gearlift.twin.netpolicy and loads it with ``iptables-restore`` into the host's
network namespace (``nsenter --net``), only when it changed. Containers run
without CAP_NET_ADMIN, so a host cannot change its own rules, as an instance
cannot change its security groups from inside.

An EC2 host's namespace also sends the instance metadata address (169.254.169.254:80) to the
twin's IMDS server (gearlift.twin.dataplane.imds), which security groups do not filter.

A host's container is sealed right after it starts (loopback, replies, DNS and
the controller only), before the first full ruleset: no host ever runs open.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gearlift.twin import podman
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.errors import TwinError
from gearlift.twin.netpolicy import Node, Plane, Policy, Topology, VpnPath, ruleset6

Log = Callable[[str], None]
# An on-prem host's address at its site (what AWS sees through the VPN), set by gearlift.twin.onprem.
ONPREM_ADDRESS_LABEL = "gearlift.onprem-address"


@dataclass(frozen=True)
class Running:
    name: str
    kind: str
    labels: dict[str, str]
    pid: int
    ip: str


def _default_group(topology: Topology, vpc_id: str) -> tuple[str, ...]:
    """No security group given: AWS uses the VPC's default group (instances, load balancers, DB instances)."""
    return tuple(
        gid
        for gid, g in topology.security_groups.items()
        if g.get("GroupName") == "default" and g.get("VpcId") == vpc_id
    )


def _default_subnet_group(topology: Topology) -> dict[str, Any]:
    """No DB subnet group given: RDS places the instance in the default VPC's subnets."""
    vpc = next((v for v in topology.vpcs.values() if v.get("IsDefault")), {})
    subnets = [s for s in topology.subnets.values() if vpc and s.get("VpcId") == vpc.get("VpcId")]
    return {"VpcId": vpc.get("VpcId", ""), "Subnets": [{"SubnetIdentifier": s["SubnetId"]} for s in subnets]}


def running_hosts(label: str, network: str) -> list[Running]:
    """The twin's running containers with their PID and address, in one podman call."""
    names = [c.name for c in podman.list_containers(label) if c.state == "running" and c.labels.get("gearlift.kind")]
    if not names:
        return []
    proc = podman.run("inspect", "--type", "container", *names, check=False)
    if proc.returncode != 0:  # one went away meanwhile: take the others next round
        return []
    out = []
    for info in json.loads(proc.stdout or "[]"):
        labels = info.get("Config", {}).get("Labels") or {}
        pid = int(info.get("State", {}).get("Pid") or 0)
        ip = ((info.get("NetworkSettings", {}).get("Networks") or {}).get(network) or {}).get("IPAddress") or ""
        if pid > 0 and ip:
            out.append(Running(info["Name"].lstrip("/"), labels.get("gearlift.kind", ""), labels, pid, ip))
    return out


def load(pid: int, rules: str, rules6: str) -> None:
    """Load both rulesets into the network namespace of ``pid`` (atomically per table: filter, nat)."""
    for tool, text in (("iptables-restore", rules), ("ip6tables-restore", rules6)):
        proc = subprocess.run(
            ["nsenter", f"--net=/proc/{pid}/ns/net", tool],
            input=text,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if proc.returncode != 0:
            raise TwinError(f"firewall: {tool} in the namespace of pid {pid} failed: {proc.stderr.strip()}")


class FirewallReconciler:
    """Security groups and routes, enforced on every host of the twin."""

    def __init__(self, clients: Clients, label: str, network: str, plane: Plane, log: Log) -> None:
        self.clients = clients
        self.label = label
        self.network = network
        self.plane = plane
        self.log = log
        self.alb_sources: dict[str, str] = {}  # load balancer name -> its source address here
        # Hosts of other kinds (EFS mount targets, ElastiCache servers): kind -> ((labels, address) -> node or None).
        self.extra_nodes: dict[str, Callable[[dict[str, str], str], Node | None]] = {}
        self._applied: dict[str, tuple[int, str]] = {}  # container -> (pid, digest)

    # ------------------------------------------------------------- snapshot
    def topology(self) -> Topology:
        ec2 = self.clients("ec2")
        endpoints = paginate(ec2, "describe_vpc_endpoints", "VpcEndpoints")
        return Topology(
            security_groups={g["GroupId"]: g for g in paginate(ec2, "describe_security_groups", "SecurityGroups")},
            subnets={s["SubnetId"]: s for s in paginate(ec2, "describe_subnets", "Subnets")},
            route_tables=paginate(ec2, "describe_route_tables", "RouteTables"),
            vpcs={v["VpcId"]: v for v in paginate(ec2, "describe_vpcs", "Vpcs")},
            interface_endpoint_vpcs=frozenset(
                e["VpcId"]
                for e in endpoints
                if e.get("VpcEndpointType") == "Interface" and e.get("State", "available").lower() == "available"
            ),
            vpn_paths=self.vpn_paths(),
            network_acls=paginate(ec2, "describe_network_acls", "NetworkAcls"),
        )

    def vpn_paths(self) -> tuple[VpnPath, ...]:
        """Available Site-to-Site VPN connections with static routes, on gateways attached to VPCs."""
        ec2 = self.clients("ec2")
        gateways = {
            g["VpnGatewayId"]: frozenset(
                a["VpcId"] for a in g.get("VpcAttachments", []) if a.get("State") == "attached"
            )
            for g in ec2.describe_vpn_gateways()["VpnGateways"]
            if g.get("State") == "available"
        }
        paths = []
        for conn in ec2.describe_vpn_connections()["VpnConnections"]:
            gateway = conn.get("VpnGatewayId", "")
            if conn.get("State") != "available" or gateway not in gateways:
                continue
            cidrs = tuple(r["DestinationCidrBlock"] for r in conn.get("Routes", []) if r.get("State") == "available")
            paths.append(VpnPath(gateway, gateways[gateway], cidrs))
        return tuple(paths)

    def nodes(
        self, hosts: list[Running], topology: Topology, instances: dict[str, dict[str, Any]] | None = None
    ) -> list[Node]:
        """The twin's hosts as the network sees them; ``instances``: this round's DescribeInstances, if read."""
        if instances is None:
            ec2 = self.clients("ec2")
            instances = {
                i["InstanceId"]: i for r in paginate(ec2, "describe_instances", "Reservations") for i in r["Instances"]
            }
        dbs = {
            d["DBInstanceIdentifier"]: d for d in paginate(self.clients("rds"), "describe_db_instances", "DBInstances")
        }
        out: list[Node] = []
        for host in hosts:
            if host.kind == "ec2":
                inst = instances.get(host.labels.get("gearlift.instance-id", ""))
                if inst is None:
                    continue
                out.append(
                    Node(
                        key=inst["InstanceId"],
                        kind="ec2",
                        twin_ip=host.ip,
                        vpc_id=inst.get("VpcId", ""),
                        subnet_ids=(inst.get("SubnetId", ""),),
                        addresses=(f"{inst['PrivateIpAddress']}/32",) if inst.get("PrivateIpAddress") else (),
                        groups=tuple(g["GroupId"] for g in inst.get("SecurityGroups", []))
                        or _default_group(topology, inst.get("VpcId", "")),
                    )
                )
            elif host.kind == "rds":
                db = dbs.get(host.labels.get("gearlift.db-id", ""))
                if db is None:
                    continue
                group = db.get("DBSubnetGroup") or _default_subnet_group(topology)
                subnet_ids = tuple(s["SubnetIdentifier"] for s in group.get("Subnets", []))
                out.append(
                    Node(
                        key=f"rds:{db['DBInstanceIdentifier']}",
                        kind="rds",
                        twin_ip=host.ip,
                        vpc_id=group.get("VpcId", ""),
                        subnet_ids=subnet_ids,
                        addresses=tuple(topology.subnets[s]["CidrBlock"] for s in subnet_ids if s in topology.subnets),
                        groups=tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", []))
                        or _default_group(topology, group.get("VpcId", "")),
                    )
                )
            elif host.kind in self.extra_nodes:
                node = self.extra_nodes[host.kind](host.labels, host.ip)
                if node is not None:
                    out.append(node)
            elif host.kind == "onprem":
                site = host.labels.get(ONPREM_ADDRESS_LABEL, "")
                out.append(
                    Node(
                        key=f"onprem:{host.name}",
                        kind="onprem",
                        twin_ip=host.ip,
                        addresses=(f"{site}/32",) if site else (),
                    )
                )
        for lb in paginate(self.clients("elbv2"), "describe_load_balancers", "LoadBalancers"):
            source = self.alb_sources.get(lb["LoadBalancerName"])
            if not source:
                continue
            subnet_ids = tuple(z["SubnetId"] for z in lb.get("AvailabilityZones", []) if z.get("SubnetId"))
            out.append(
                Node(
                    key=f"alb:{lb['LoadBalancerName']}",
                    kind="alb",
                    twin_ip=source,
                    vpc_id=lb.get("VpcId", ""),
                    subnet_ids=subnet_ids,
                    addresses=tuple(topology.subnets[s]["CidrBlock"] for s in subnet_ids if s in topology.subnets),
                    groups=tuple(lb.get("SecurityGroups", [])) or _default_group(topology, lb.get("VpcId", "")),
                )
            )
        return out

    # ----------------------------------------------------------------- apply
    def seal(self, container: str) -> None:
        """Right after a host starts: nothing but loopback, replies, DNS and the controller."""
        pid = int(podman.run("inspect", "--type", "container", "--format", "{{.State.Pid}}", container).stdout.strip())
        empty, node = Policy([], Topology(), self.plane), Node(key=container, kind="ec2", twin_ip="")
        load(pid, empty.ruleset(node) + empty.nat(node), ruleset6())
        self._applied[container] = (pid, "sealed")

    def reconcile(self, round_: Round) -> None:
        self.enforce(round_.instances or None)

    def enforce(self, instances: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
        """Bring every host's rules in line with the emulator; {container: ruleset} as applied."""
        hosts = running_hosts(self.label, self.network)
        topology = self.topology()
        nodes = self.nodes(hosts, topology, instances)
        policy = Policy(nodes, topology, self.plane)
        by_ip = {n.twin_ip: n for n in nodes}
        applied: dict[str, str] = {}
        rules6 = ruleset6()
        for host in hosts:
            node = by_ip.get(host.ip)
            if node is None:
                continue  # e.g. an instance the emulator no longer lists: removed next round
            rules = policy.ruleset(node) + policy.nat(node)
            digest = hashlib.sha256(rules.encode()).hexdigest()
            if self._applied.get(host.name) != (host.pid, digest):
                load(host.pid, rules, rules6)
                first = host.name not in self._applied or self._applied[host.name][1] == "sealed"
                self._applied[host.name] = (host.pid, digest)
                if first:
                    self.log(f"firewall: {node.key} enforces its security groups and routes")
            applied[host.name] = rules
        for name in [n for n in self._applied if n not in {h.name for h in hosts}]:
            del self._applied[name]
        return applied
