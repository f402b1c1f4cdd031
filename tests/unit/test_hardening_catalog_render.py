"""Every check of the hardening catalog, rendered by Ansible's own templating, is a check the engine can run.

Some checks are Jinja over the role's variables (the firewall's ports, the egress allow-list, the packages to
remove). Containers skip the firewall and kernel controls, so the twin and the molecule scenarios never
evaluate those checks: a template that renders to a broken regular expression only fails on a real host (4.2.6
rendered ``^\\1/tcp +ALLOW IN ``: Ansible 2.19 kept the backslash of ``regex_replace``'s group reference, and
the audit failed on the qemu VM with "invalid group reference"). Rendered in a subprocess: the collection
loader it installs stays out of the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RENDER = r"""
import glob, json, os, re, sys
import ansible, yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

site = os.path.dirname(os.path.dirname(ansible.__file__))
_AnsibleCollectionFinder(paths=[os.path.abspath(".collections"), site])._install()
role = "roles/hardening"
catalog = sorted(glob.glob(role + "/vars/catalog/*.yml"))


def trust(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: trust(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trust(v) for v in value]
    return value


variables = {}
for path in [role + "/defaults/main.yml", role + "/vars/main.yml", role + "/vars/Debian-12.yml", *catalog]:
    variables.update(yaml.safe_load(open(path, encoding="utf-8")))
variables = trust(variables)
variables.update(json.loads(sys.argv[1]))
templar = Templar(loader=DataLoader(), variables=variables)


def leaves(check):
    if check.get("type") in ("all", "any"):
        for sub in check["checks"]:
            yield from leaves(sub)
    else:
        yield check


out = {"leaves": 0, "templated": [], "problems": []}
for path in catalog:
    for section in yaml.safe_load(open(path, encoding="utf-8")).values():
        for control in section["controls"]:
            if "check" not in control:
                continue
            if "{{" in json.dumps(control["check"]):
                out["templated"].append(str(control["id"]))
            try:
                check = templar.template(trust(control["check"]))
            except Exception as exc:  # noqa: BLE001 - reported with the control
                out["problems"].append([str(control["id"]), "does not render: " + str(exc)[:300]])
                continue
            for leaf in leaves(check):
                out["leaves"] += 1
                if "regex" in leaf:
                    try:
                        re.compile(str(leaf["regex"]))
                    except re.error as exc:
                        out["problems"].append([str(control["id"]), f"regex {leaf['regex']!r}: {exc}"])
print(json.dumps(out))
"""


def _render(settings: dict[str, object], home: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", RENDER, json.dumps(settings)],
        cwd=REPO,
        env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return data


def test_every_templated_check_renders_to_checks_whose_expressions_compile(tmp_path: Path) -> None:
    data = _render(
        {
            "hardening_ssh_enabled": True,
            "hardening_firewall_allowed_tcp_ports": [443, 8443],
            "ansible_facts": {},
            "inventory_hostname": "host",
        },
        tmp_path,
    )
    assert data["problems"] == []
    assert "4.2.6" in data["templated"] and "4.2.5" in data["templated"], data["templated"]
    assert isinstance(data["leaves"], int) and data["leaves"] > 300
