"""The application load balancer's target health checks, as the twin's data plane plays them.

Each registered target of a target group is checked on the twin network with
the target group's settings (path, port, matcher, interval, timeout) and moves
through ELB's states: ``initial`` until it passed ``HealthyThresholdCount``
checks in a row, then ``healthy``; ``unhealthy`` after
``UnhealthyThresholdCount`` failures in a row (also from ``initial``), and
``healthy`` again after ``HealthyThresholdCount`` passes. A target that is
deregistered and registered again starts over. The results go to the
emulator (DescribeTargetHealth answers with them) and decide which targets
HAProxy sends traffic to: like an ALB, only healthy ones.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Log = Callable[[str], None]
MAX_PARALLEL_CHECKS = 8


@dataclass
class TargetHealth:
    state: str = "initial"
    passes: int = 0
    failures: int = 0
    last_check: float = float("-inf")
    detail: str = ""


@dataclass(frozen=True)
class CheckSpec:
    path: str
    port: str
    codes: frozenset[str]
    interval: float
    timeout: float
    healthy_threshold: int
    unhealthy_threshold: int
    # The load balancer's own address the checks come from ("" = any).
    source: str = ""

    @classmethod
    def from_target_group(cls, tg: dict[str, Any], expand: Callable[[str], list[str]]) -> CheckSpec:
        return cls(
            path=str(tg.get("HealthCheckPath") or "/"),
            port=str(tg.get("HealthCheckPort") or "traffic-port"),
            codes=frozenset(expand(str(tg.get("Matcher", {}).get("HttpCode", "200")))),
            interval=float(tg.get("HealthCheckIntervalSeconds", 30)),
            timeout=float(tg.get("HealthCheckTimeoutSeconds", 5)),
            healthy_threshold=int(tg.get("HealthyThresholdCount", 5)),
            unhealthy_threshold=int(tg.get("UnhealthyThresholdCount", 2)),
        )


def http_check(
    address: str, port: int, path: str, timeout: float, codes: frozenset[str], source: str = ""
) -> tuple[bool, str]:
    """One HTTP health check (GET, no redirects followed) from ``source``; (passed, what happened)."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout, source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers={"User-Agent": "ELB-HealthChecker/2.0", "Connection": "close"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    return str(status) in codes, f"HTTP {status}"


Checker = Callable[[str, int, str, float, frozenset[str], str], tuple[bool, str]]


class TargetHealthChecker:
    """Health of every (target group, target) the twin's load balancers serve."""

    def __init__(self, log: Log, check: Checker = http_check, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.check = check
        self.clock = clock
        self.health: dict[tuple[str, str], TargetHealth] = {}

    def run(
        self,
        targets: dict[str, tuple[CheckSpec, dict[str, int]]],
        addresses: dict[str, str],
    ) -> dict[str, dict[str, str]]:
        """Check what is due; {target group ARN: {target id: state}} for every registered target.

        ``targets`` maps a target group ARN to its check settings and its
        registered targets (id -> traffic port); ``addresses`` maps target ids
        to their address on the twin network (no address: the check fails).
        """
        now = self.clock()
        live = {(arn, tid) for arn, (_, ports) in targets.items() for tid in ports}
        for key in [k for k in self.health if k not in live]:
            del self.health[key]  # deregistered: a later registration starts over
        due: list[tuple[str, str, CheckSpec, int]] = []
        for arn, (spec, ports) in targets.items():
            for tid, traffic_port in ports.items():
                health = self.health.setdefault((arn, tid), TargetHealth())
                if now - health.last_check >= spec.interval:
                    port = traffic_port if spec.port == "traffic-port" else int(spec.port)
                    due.append((arn, tid, spec, port))
        if due:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHECKS, len(due))) as pool:
                results = list(
                    pool.map(
                        lambda item: self._probe(item[1], item[2], item[3], addresses),
                        due,
                    )
                )
            for (arn, tid, spec, _), (passed, detail) in zip(due, results, strict=True):
                self._record(arn, tid, spec, passed, detail, now)
        return {arn: {tid: self.health[(arn, tid)].state for tid in ports} for arn, (_, ports) in targets.items()}

    def _probe(self, tid: str, spec: CheckSpec, port: int, addresses: dict[str, str]) -> tuple[bool, str]:
        address = addresses.get(tid)
        if address is None:
            return False, "no address on the twin network (not running)"
        return self.check(address, port, spec.path, spec.timeout, spec.codes, spec.source)

    def _record(self, arn: str, tid: str, spec: CheckSpec, passed: bool, detail: str, now: float) -> None:
        health = self.health[(arn, tid)]
        health.last_check = now
        health.detail = detail
        before = health.state
        if passed:
            health.passes += 1
            health.failures = 0
            if health.state != "healthy" and health.passes >= spec.healthy_threshold:
                health.state = "healthy"
        else:
            health.failures += 1
            health.passes = 0
            if health.state != "unhealthy" and health.failures >= spec.unhealthy_threshold:
                health.state = "unhealthy"
        if health.state != before:
            self.log(f"alb: target {tid} {before} -> {health.state} ({detail})")

    def states(self, state: str) -> set[str]:
        return {tid for (_, tid), health in self.health.items() if health.state == state}
