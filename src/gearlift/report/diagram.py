"""The architecture diagram: graphviz ``dot`` source built from the design inputs, rendered to SVG."""

from __future__ import annotations

import re
import shutil
import subprocess

from gearlift.report.inputs import DesignInputs


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(*lines: str) -> str:
    return _q("\n".join(lines)).replace("\n", "\\n")


def _node(name: str, lines: list[str], **attrs: str) -> str:
    extra = "".join(f", {key}={value}" for key, value in attrs.items())
    return f"  {name} [label={_label(*lines)}{extra}];"


def _edge(tail: str, head: str, label: str, **attrs: str) -> str:
    extra = "".join(f", {key}={value}" for key, value in attrs.items())
    return f"  {tail} -> {head} [label={_q(label)}{extra}];".replace("\n", "\\n")


_SOFT = '"#eef2f7"'
_GREY = '"#6e7781"'


def dot_source(inputs: DesignInputs, waf_rules: int = 5) -> str:
    """Tiers (public / app / db) across the AZs, security groups and the flows they allow."""
    azs = [f"{inputs.region}{chr(ord('a') + i)}" for i in range(inputs.az_count)]
    world = ", ".join(inputs.alb_ingress_cidrs) or "(none)"
    vpc = f"VPC {inputs.vpc_cidr}  ({inputs.region}, {inputs.az_count} AZs)"
    lines = [
        "digraph gearlift {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, compound=true, nodesep=0.35, ranksep=0.55];',
        '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=9];',
        _node("internet", ["Internet", "customers"], shape="ellipse", fillcolor=_SOFT),
        _node(
            "waf",
            ["AWS WAF", f"{waf_rules - 1} AWS managed rule groups", f"rate limit {inputs.waf_rate_limit} / 5 min / IP"],
            fillcolor='"#fdf2e9"',
        ),
        _node("admin", ["Operators", "SSM Session Manager", "no SSH, no port 22"], shape="ellipse", fillcolor=_SOFT),
        f'  subgraph cluster_vpc {{ label={_q(vpc)}; style="rounded"; color="#5b6b7f";',
    ]
    tiers = (
        ("public", f"Public subnets - ALB SG: 443 + 80 (redirect) from {world}", "#eaf4ff"),
        ("app", f"Private app subnets - app SG: {inputs.app_port}/tcp only from the ALB SG", "#eefaf0"),
        ("db", "Isolated DB subnets (no internet route) - DB SG: 3306/tcp only from the app SG", "#fff6e6"),
    )
    for tier, title, colour in tiers:
        lines.append(
            f'    subgraph cluster_{tier} {{ label={_q(title)}; style="rounded,filled"; fillcolor="{colour}"; '
            'color="#9aa7b5";'
        )
        previous = ""
        for i, az in enumerate(azs):
            cidr = inputs.subnets.get(tier, ["?"] * inputs.az_count)[i]
            if tier == "public":
                nat = inputs.nat_mode == "per_az" or i == 0
                text = [az, cidr, "ALB node"] + (["NAT gateway"] if nat else [])
            elif tier == "app":
                text = [az, cidr, f"{inputs.instance_type} hosts (ASG)", "Apache + Java app"]
            else:
                standby = inputs.db_multi_az and i == 1
                text = [az, cidr, "RDS primary" if i == 0 else ("RDS standby" if standby else "(spare subnet)")]
            lines.append("  " + _node(f"{tier}{i}", text))
            if previous:  # keep the AZs in order, left to right
                lines.append(f"      {previous} -> {tier}{i} [style=invis];")
            previous = f"{tier}{i}"
        lines.append(f"      {{ rank=same; {'; '.join(f'{tier}{i}' for i in range(inputs.az_count))}; }}")
        lines.append("    }")
    peak = ", peak schedule" if inputs.schedule else ""
    asg = f"Auto Scaling group {inputs.asg_min}-{inputs.asg_max} (desired {inputs.asg_desired}{peak})"
    lines.append("  " + _node("asg", [asg, "IMDSv2, encrypted gp3, no public IP"], shape="note", fillcolor='"#f7f7f7"'))
    if inputs.interface_endpoints:
        endpoints = ", ".join(inputs.interface_endpoints)
        lines.append("  " + _node("endpoints", ["Interface endpoints", endpoints], shape="component"))
    lines.append("  " + _node("s3gw", ["S3 gateway endpoint"], shape="component"))
    lines.append("  }")
    backup = "AWS Backup" + (f" -> {inputs.backup_copy_region}" if inputs.backup_copy_region else "")
    services = [
        "Regional services",
        f"Secrets Manager, KMS, CloudWatch (logs {inputs.log_retention_days} d)",
        "CloudTrail, Config, GuardDuty, Security Hub, Inspector",
        backup,
    ]
    lines.append(_node("services", services, shape="folder", fillcolor='"#f4f0fb"'))
    mid = min(1, inputs.az_count - 1)
    last = inputs.az_count - 1
    blue, green, orange = '"#1f6feb"', '"#1a7f37"', '"#b35900"'
    lines += [
        _edge("internet", "waf", "443 / 80", color=blue, penwidth="1.6"),
        _edge(
            "waf",
            f"public{mid}",
            "HTTPS 443 (TLS 1.2+)\n80 -> 301 to 443",
            color=blue,
            penwidth="1.6",
            lhead="cluster_public",
        ),
        _edge(
            f"public{mid}",
            f"app{mid}",
            f"{inputs.app_port}/tcp\nfrom ALB SG only",
            color=green,
            penwidth="1.6",
            ltail="cluster_public",
            lhead="cluster_app",
        ),
        _edge(
            f"app{mid}",
            "db0",
            "3306/tcp, TLS required\nfrom app SG only",
            color=orange,
            penwidth="1.6",
            ltail="cluster_app",
            lhead="cluster_db",
        ),
        _edge("app0", "public0", "egress via NAT", style="dashed", color=_GREY, constraint="false"),
        _edge("admin", "asg", "SSM (443 outbound from hosts)", style="dotted", color=_GREY),
        _edge(f"app{last}", "services", "IAM role, HTTPS", style="dashed", color=_GREY, ltail="cluster_app"),
    ]
    if inputs.db_multi_az and inputs.az_count > 1:
        lines.append(_edge("db0", "db1", "sync replication", style="dashed", color=orange, dir="both"))
    engine = f"RDS MySQL {inputs.db_engine_version} {inputs.db_instance_class}"
    engine += " Multi-AZ" if inputs.db_multi_az else " single-AZ"
    lines.append(f"  label={_q(engine + '; no SSH ingress anywhere')};")
    lines.append('  labelloc="b";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(source: str) -> tuple[str | None, str]:
    """SVG text (prolog and doctype removed, for inline use) or None with the reason."""
    binary = shutil.which("dot")
    if binary is None:
        return None, "graphviz 'dot' is not installed (apt-get install graphviz); the diagram source is shown instead"
    try:
        proc = subprocess.run([binary, "-Tsvg"], input=source, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"dot failed: {exc}"
    if proc.returncode != 0:
        return None, f"dot failed: {proc.stderr.strip()[:300]}"
    svg = proc.stdout
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)
    return svg.strip(), ""
