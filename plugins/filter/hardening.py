# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hardening role's control catalog and its audit engine.

The catalog is data (roles/hardening/vars/catalog/section_<N>.yml, one file per CIS section plus
the PCI DSS-only controls); these filters flatten and validate it, resolve the toggles, list the
controls that will not be applied on a host, and judge the output of the read-only audit commands
(roles/hardening/tasks/audit.yml) against each control's check.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

DOCUMENTATION = r"""
name: hardening_controls
short_description: Flatten and validate the hardening catalog (one mapping per CIS section)
version_added: 0.1.0
description:
  - Input is the merge of roles/hardening/vars/catalog/*.yml (C(__hardening_catalog_section_<N>) -> title, toggle,
    controls).
  - Returns the controls in section order, each with C(section), C(section_toggle), C(toggle) (a list;
    C(hardening_rule_<id with dots and dashes as underscores>) unless the entry names its own) and C(level).
  - Companion filters (same file) C(hardening_toggle_names), C(hardening_enabled), C(hardening_plan),
    C(hardening_audit_reads) and C(hardening_audit) take the returned list; C(hardening_missing_packages) gives,
    per key of the role's package lists, the packages not installed (so an install task calls apt only for those).
  - "Fields of a control: id (CIS Ubuntu 24.04 v1.0.0 id, or pci-<req>-<what>), cis, cis_2204 (the 22.04 v2.0.0
    id where it differs), pci, title, level (1 or 2, CIS controls), toggle (optional), default (the toggle's value
    when the inventory does not set it; true), container (false: not applicable in a container) with
    container_reason, requires ({package} or {path}: skipped when missing), skip_reason, check, or instead of
    check manual ({reason, verify}: why it is not automated and what a person checks; reported as skipped)."
  - "Check types: sshd (key, value, op), sysctl (key, value, optional), stat (path, mode, owner, group,
    optional), package (name, state), unit (name, enabled, active), mount (target, options, fstype),
    content (path, regex, absent, op, value), output (command, regex, absent, op, value), audit_key (key),
    all / any (checks). op is eq (default), le, ge, lt, gt, set (comma list) or words (blank separated)."
options:
  _input:
    description: The merged catalog files.
    type: dict
    required: true
"""

SECTION_ORDER = ("1", "2", "3", "4", "5", "6", "7", "pci")
# The one top-level key of vars/catalog/section_<N>.yml: __hardening_catalog_section_<N>.
CATALOG_KEY = "__hardening_catalog_section_"
CHECK_FIELDS: dict[str, tuple[str, ...]] = {
    "all": ("checks",),
    "any": ("checks",),
    "sshd": ("key", "value"),
    "sysctl": ("key", "value"),
    "stat": ("path",),
    "package": ("name",),
    "unit": ("name",),
    "mount": ("target",),
    "content": ("path", "regex"),
    "output": ("command", "regex"),
    "audit_key": ("key",),
}
OPS = ("eq", "le", "ge", "lt", "gt", "set", "words")
ENABLED_STATES = ("enabled", "static", "alias", "indirect", "generated")
ACTIVE_STATES = ("active", "activating", "reloading")
CONTROL_FIELDS = frozenset(
    (
        "id",
        "cis",
        "cis_2204",
        "pci",
        "title",
        "level",
        "toggle",
        "default",
        "container",
        "container_reason",
        "requires",
        "skip_reason",
        "manual",
        "check",
    )
)


def _plain(value: Any) -> Any:
    """A plain copy (dicts, lists, scalars): reading each item resolves Ansible's lazy templates."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _section_of(key: str) -> str:
    return key[len(CATALOG_KEY) :] if key.startswith(CATALOG_KEY) else ""


def _section_rank(section: str) -> int:
    return SECTION_ORDER.index(section) if section in SECTION_ORDER else len(SECTION_ORDER)


def default_toggle(control_id: str) -> str:
    """hardening_rule_<id>: dots and dashes become underscores (1.1.1.1 -> hardening_rule_1_1_1_1)."""
    return "hardening_rule_" + re.sub(r"[.-]", "_", control_id)


def _leaves(check: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if check.get("type") in ("all", "any"):
        return [leaf for sub in check.get("checks") or [] for leaf in _leaves(sub)]
    return [check]


def _check_problems(where: str, check: Any) -> list[str]:
    if not isinstance(check, Mapping):
        return [f"{where}: check is not a mapping"]
    kind = check.get("type")
    if kind not in CHECK_FIELDS:
        return [f"{where}: unknown check type {kind!r}"]
    problems = [f"{where}: {kind} check lacks {name}" for name in CHECK_FIELDS[kind] if name not in check]
    if "op" in check and check["op"] not in OPS:
        problems.append(f"{where}: unknown op {check['op']!r}")
    if "argv" in check:
        argv = check["argv"]
        if kind != "output":
            problems.append(f"{where}: argv is for output checks")
        elif not isinstance(argv, list) or not argv or not all(isinstance(a, (str, int)) for a in argv):
            problems.append(f"{where}: argv must be a list of strings")
        elif not str(argv[0]).startswith("/"):
            problems.append(f"{where}: argv[0] must be an absolute path (got {argv[0]!r})")
    if kind in ("all", "any"):
        subs = check.get("checks")
        if not isinstance(subs, list) or not subs:
            problems.append(f"{where}: {kind} needs a non-empty list of checks")
        else:
            for index, sub in enumerate(subs):
                problems += _check_problems(f"{where}.checks[{index}]", sub)
    return problems


def hardening_controls(catalog: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The catalog's controls in section order, normalised; AnsibleFilterError lists every problem."""
    if not isinstance(catalog, Mapping):
        raise AnsibleFilterError("hardening_controls: the catalog must be a mapping of section_<N> entries")
    problems: list[str] = []
    controls: list[dict[str, Any]] = []
    seen: set[str] = set()
    defaults: dict[str, bool] = {}
    keys = sorted(catalog, key=lambda key: (_section_rank(_section_of(key)), key))
    for key in keys:
        section = _section_of(key)
        if section not in SECTION_ORDER:
            problems.append(f"{key}: not a section ({CATALOG_KEY}1 .. {CATALOG_KEY}7, {CATALOG_KEY}pci)")
            continue
        body = _plain(catalog[key])
        if not isinstance(body, dict) or not isinstance(body.get("controls"), list):
            problems.append(f"{key}: needs title, toggle and a list of controls")
            continue
        section_toggle = str(body.get("toggle") or "")
        if section_toggle != f"hardening_section_{section}":
            problems.append(f"{key}: toggle must be hardening_section_{section} (got {section_toggle!r})")
        for index, raw in enumerate(body["controls"]):
            where = f"{key}[{index}]"
            if not isinstance(raw, dict) or not raw.get("id"):
                problems.append(f"{where}: a control needs an id")
                continue
            control = dict(raw)
            control_id = str(control["id"])
            where = f"{key} {control_id}"
            unknown = sorted(set(control) - CONTROL_FIELDS)
            if unknown:
                problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
            if control_id in seen:
                problems.append(f"{where}: duplicate id")
            seen.add(control_id)
            for name in ("id", "cis", "cis_2204", "pci"):
                if name in control:
                    control[name] = str(control[name])
            if not control.get("title"):
                problems.append(f"{where}: no title")
            if not control.get("cis") and not control.get("pci"):
                problems.append(f"{where}: needs cis or pci")
            if control.get("cis"):
                if control["cis"].split(".")[0] != section:
                    problems.append(f"{where}: CIS {control['cis']} is not in section {section}")
                if control.get("level") not in (1, 2):
                    problems.append(f"{where}: level must be 1 or 2")
            elif "level" in control:
                problems.append(f"{where}: level is for CIS controls")
            if control.get("container") is False and not control.get("container_reason"):
                problems.append(f"{where}: container: false needs container_reason")
            requires = control.get("requires")
            if requires is not None and (not isinstance(requires, dict) or not set(requires) & {"package", "path"}):
                problems.append(f"{where}: requires needs package or path")
            manual = control.get("manual")
            if manual is not None:
                if not isinstance(manual, dict) or not manual.get("reason") or not manual.get("verify"):
                    problems.append(
                        f"{where}: manual needs reason (why not automated) and verify (what a person checks)"
                    )
                if "check" in control:
                    problems.append(f"{where}: a manual control has no check")
            else:
                problems += _check_problems(where, control.get("check"))
            toggle = control.get("toggle") or default_toggle(control_id)
            control["toggle"] = [str(name) for name in ([toggle] if isinstance(toggle, str) else toggle)]
            default = control.get("default", True)
            if not isinstance(default, bool):
                problems.append(f"{where}: default must be true or false")
            else:
                for name in control["toggle"]:
                    if defaults.setdefault(name, default) != default:
                        problems.append(f"{where}: toggle {name} has different defaults in the catalog")
            control["default"] = default
            control["section"] = section
            control["section_toggle"] = section_toggle
            control.setdefault("level", None)
            controls.append(control)
    commands: dict[str, Any] = {}
    for control in controls:
        for leaf in _leaves(control.get("check") or {}):
            if "argv" in leaf and commands.setdefault(str(leaf["command"]), leaf["argv"]) != leaf["argv"]:
                problems.append(f"{control['id']}: command {leaf['command']} has different argv in the catalog")
    if problems:
        raise AnsibleFilterError("hardening catalog: " + "; ".join(problems))
    return controls


def hardening_toggle_names(controls: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every variable that switches a control: the controls' toggles and the section toggles."""
    names = {str(name) for control in controls for name in control["toggle"]}
    names |= {str(control["section_toggle"]) for control in controls}
    return sorted(names)


def _truth(name: str, value: Any) -> bool:
    try:
        return bool(boolean(value, strict=True))
    except TypeError as exc:
        raise AnsibleFilterError(f"{name} must be true or false (got {value!r})") from exc


def _toggle_reason(control: Mapping[str, Any], toggles: Mapping[str, Any]) -> str:
    section = str(control["section_toggle"])
    if not _truth(section, toggles.get(section, True)):
        return f"section off: {section}"
    off = [name for name in control["toggle"] if not _truth(name, toggles.get(name, control["default"]))]
    return f"toggle off: {', '.join(off)}" if off else ""


def hardening_enabled(controls: Sequence[Mapping[str, Any]], toggles: Mapping[str, Any]) -> dict[str, bool]:
    """Control id -> applied (its section toggle and all its toggles true; unset toggles take the catalog default)."""
    return {str(control["id"]): not _toggle_reason(control, toggles) for control in controls}


def hardening_remediation(
    enabled: Mapping[str, Any], results: Sequence[Mapping[str, Any]], apply_compliant: bool = False
) -> dict[str, bool]:
    """Control id -> apply it now: enabled, and (unless ``apply_compliant``) not passing in the audit before.

    ``results``: the audit of the host before the controls (hardening_audit). A control the audit did not
    judge (skipped, or absent from the results) is applied when enabled: only a pass spares its task. One
    task applies the controls that share its toggle (5.3.2.1's pam_unix task also removes nullok, 5.3.3.4.1),
    so a pass spares a control only when none of the controls sharing its toggle fails.
    """
    if not isinstance(enabled, Mapping):
        raise AnsibleFilterError("hardening_remediation: expects the control id -> enabled mapping")
    if apply_compliant:
        return {str(cid): bool(on) for cid, on in enabled.items()}
    failing_toggles = {str(r.get("toggle") or "") for r in results if r.get("status") == "fail"} - {""}
    spared = {
        str(r["id"])
        for r in results
        if r.get("status") == "pass" and (not r.get("toggle") or str(r["toggle"]) not in failing_toggles)
    }
    return {str(cid): bool(on) and str(cid) not in spared for cid, on in enabled.items()}


def _static_reason(control: Mapping[str, Any], toggles: Mapping[str, Any], in_container: bool) -> str:
    reason = _toggle_reason(control, toggles)
    if reason:
        return reason
    if in_container and control.get("container") is False:
        return f"not applicable in a container: {control.get('container_reason') or 'needs the host kernel'}"
    if control.get("manual"):
        return f"manual: {control['manual']['reason']}"
    return str(control.get("skip_reason") or "")


def _base(control: Mapping[str, Any], cis_field: str) -> dict[str, Any]:
    return {
        "id": str(control["id"]),
        "cis": str(control.get(cis_field) or control.get("cis") or ""),
        "pci": str(control.get("pci") or ""),
        "title": str(control["title"]),
        "toggle": ", ".join(control["toggle"]),
        "section": str(control["section"]),
        "level": control.get("level"),
    }


def hardening_plan(
    controls: Sequence[Mapping[str, Any]], toggles: Mapping[str, Any], in_container: bool, cis_field: str = "cis"
) -> list[dict[str, Any]]:
    """The controls the remediation will not apply on this host, each with the reason."""
    plan = []
    for control in controls:
        reason = _static_reason(control, toggles, bool(in_container))
        if reason:
            plan.append({**_base(control, cis_field), "reason": reason})
    return plan


def hardening_audit_reads(
    controls: Sequence[Mapping[str, Any]], commands: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """What the audit reads: the catalog's own read-only commands (output checks with argv), paths to stat,
    configuration paths to read, systemd units."""
    leaves = [leaf for control in controls if "check" in control for leaf in _leaves(control["check"])]
    stat = {str(leaf["path"]) for leaf in leaves if leaf["type"] == "stat"}
    stat |= {
        str(c["requires"]["path"])
        for c in controls
        if isinstance(c.get("requires"), Mapping) and "path" in c["requires"]
    }
    catalog_commands: dict[str, dict[str, Any]] = {}
    for leaf in leaves:
        if leaf["type"] == "output" and "argv" in leaf:
            argv = [str(arg) for arg in leaf["argv"]]
            catalog_commands.setdefault(
                str(leaf["command"]), {"name": str(leaf["command"]), "binary": argv[0], "argv": argv}
            )
    stat |= {str(command["binary"]) for command in [*commands, *catalog_commands.values()]}
    return {
        "commands": [catalog_commands[name] for name in sorted(catalog_commands)],
        "stat_paths": sorted(stat),
        "content_paths": sorted({str(leaf["path"]) for leaf in leaves if leaf["type"] == "content"}),
        "units": sorted({str(leaf["name"]) for leaf in leaves if leaf["type"] == "unit"}),
    }


class _Host:
    """The output of the audit's read-only commands (registered results, by name)."""

    def __init__(self, outputs: Mapping[str, Any], units: Sequence[str]) -> None:
        self.outputs = outputs
        self.units = list(units)

    def text(self, name: str) -> str:
        result = self.outputs.get(name) or {}
        return str(result.get("stdout") or "") if isinstance(result, Mapping) else ""

    def available(self, name: str) -> bool:
        result = self.outputs.get(name)
        return isinstance(result, Mapping) and "rc" in result and not result.get("skipped", False)

    def package_installed(self, name: str) -> bool:
        return re.search("^" + re.escape(name) + " .i", self.text("packages"), re.M) is not None

    def path_exists(self, path: str) -> bool:
        return re.search("^" + re.escape(path) + r"\|", self.text("stat"), re.M) is not None


def _number(text: Any) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def compare(actual: Any, op: str, expected: Any) -> bool:
    """actual (text read on the host) against the catalog's expected value."""
    if op in ("le", "ge", "lt", "gt"):
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return {"le": a <= e, "ge": a >= e, "lt": a < e, "gt": a > e}[op]
    if op in ("set", "words"):
        items = expected.split(",") if isinstance(expected, str) else list(expected or [])
        want = sorted({str(item).strip().lower() for item in items if str(item).strip()})
        parts = str(actual).lower().split(",") if op == "set" else str(actual).lower().split()
        return sorted({part.strip() for part in parts if part.strip()}) == want
    return str(actual).strip().lower() == str(expected).strip().lower()


def mode_ok(actual: str, maximum: str) -> bool:
    """The octal mode actual sets no permission bit that maximum lacks (0640 <= 0644, 0600 <= 0640)."""
    try:
        return int(str(actual), 8) & ~int(str(maximum), 8) == 0
    except ValueError:
        return False


def _check(check: Mapping[str, Any], host: _Host) -> tuple[bool, str]:
    kind = check["type"]
    if kind in ("all", "any"):
        results = [_check(sub, host) for sub in check["checks"]]
        good = [detail for ok, detail in results if ok]
        bad = [detail for ok, detail in results if not ok]
        if kind == "all":
            return (False, "; ".join(bad)) if bad else (True, f"all {len(good)} sub-checks pass")
        return (True, good[0]) if good else (False, "; ".join(bad))
    if kind == "sshd":
        key = str(check["key"]).lower()
        if not host.available("sshd"):
            return False, "sshd -T did not run"
        match = re.search("^" + key + " (.*)$", host.text("sshd"), re.M)
        if not match:
            return False, f"sshd -T has no {key}"
        return compare(match[1], str(check.get("op", "eq")), check["value"]), f"sshd -T: {key} {match[1]}"
    if kind == "sysctl":
        key = str(check["key"])
        match = re.search("^" + re.escape(key) + " = (.*)$", host.text("sysctl"), re.M)
        if not match:
            if check.get("optional"):
                return True, f"{key} absent (optional)"
            return False, f"sysctl {key} not readable"
        return compare(match[1], "eq", check["value"]), f"{key} = {match[1]}"
    if kind == "stat":
        path = str(check["path"])
        match = re.search("^" + re.escape(path) + r"\|(\d+)\|([^|]*)\|(.*)$", host.text("stat"), re.M)
        if not match:
            return bool(check.get("optional")), f"{path} absent"
        groups = check.get("group", "root")
        groups = [groups] if isinstance(groups, str) else [str(group) for group in groups]
        mode, owner, group = match[1], match[2], match[3]
        ok = (
            mode_ok(mode, str(check.get("mode", "7777")))
            and owner == str(check.get("owner", "root"))
            and group in groups
        )
        return ok, f"{path} {mode} {owner}:{group}"
    if kind == "package":
        name = str(check["name"])
        present = host.package_installed(name)
        wanted = str(check.get("state", "present")) == "present"
        return present == wanted, f"{name} {'installed' if present else 'not installed'}"
    if kind == "unit":
        name = str(check["name"])
        blocks = host.text("units").strip().split("\n\n")
        index = host.units.index(name) if name in host.units else -1
        block = blocks[index] if 0 <= index < len(blocks) else ""
        enabled_m = re.search(r"^UnitFileState=(.*)$", block, re.M)
        active_m = re.search(r"^ActiveState=(.*)$", block, re.M)
        enabled = enabled_m[1] if enabled_m else ""
        active = active_m[1] if active_m else ""
        ok = ("enabled" not in check or (enabled in ENABLED_STATES) == bool(check["enabled"])) and (
            "active" not in check or (active in ACTIVE_STATES) == bool(check["active"])
        )
        return ok, f"{name}: {enabled or 'no unit file'}, {active or 'unknown'}"
    if kind == "mount":
        target = str(check["target"])
        match = re.search("^" + re.escape(target) + r" (\S+) (\S+)$", host.text("mounts"), re.M)
        if not match:
            return False, f"{target} is not a separate mount"
        fstype, options = match[1], match[2].split(",")
        missing = [option for option in check.get("options") or [] if option not in options]
        ok = not missing and (not check.get("fstype") or check["fstype"] == fstype)
        return ok, f"{target} {fstype} {match[2]}" + (f" (missing {','.join(missing)})" if missing else "")
    if kind in ("content", "output"):
        if kind == "content":
            where = str(check["path"])
            pattern = "^" + re.escape(where) + "(?:/[^:]*)?:(.*)$"
            body = "\n".join(re.findall(pattern, host.text("content"), re.M))
        else:
            where = str(check["command"])
            if not host.available(where):
                return False, f"{where}: command not available"
            body = host.text(where)
        regex = re.compile(str(check["regex"]), re.M)
        found = regex.search(body)
        if check.get("absent"):
            return (
                (False, f"{where}: found {json.dumps(found[0])}")
                if found
                else (True, f"{where}: no match, as required")
            )
        if not found:
            return False, f"{where}: no line matches {json.dumps(str(check['regex']))}"
        if "op" in check:
            actual = found[1] if regex.groups else found[0]
            return compare(actual, str(check["op"]), check["value"]), f"{where}: {found[0].strip()}"
        return True, f"{where}: {found[0].strip()}"
    if kind == "audit_key":
        if not host.available("auditctl"):
            return False, "auditctl -l did not run"
        present = re.search(r"(-k |key=)" + re.escape(str(check["key"])) + r"\b", host.text("auditctl")) is not None
        return present, f"loaded rules {'have' if present else 'lack'} key {check['key']}"
    return False, f"unknown check type {kind}"


def hardening_audit(
    controls: Sequence[Mapping[str, Any]],
    toggles: Mapping[str, Any],
    in_container: bool,
    cis_field: str,
    outputs: Mapping[str, Any],
    units: Iterable[str],
) -> list[dict[str, Any]]:
    """pass / fail / skipped (with the detail) for every control, from the audit commands' output."""
    host = _Host(outputs, list(units))
    results = []
    for control in controls:
        reason = _static_reason(control, toggles, bool(in_container))
        requires = control.get("requires") or {}
        if not reason and "package" in requires and not host.package_installed(str(requires["package"])):
            reason = f"{requires['package']} not installed"
        elif not reason and "path" in requires and not host.path_exists(str(requires["path"])):
            reason = f"{requires['path']} absent"
        if reason:
            results.append({**_base(control, cis_field), "status": "skipped", "detail": reason})
            continue
        try:
            ok, detail = _check(control["check"], host)
        except re.error as exc:
            raise AnsibleFilterError(
                f"hardening_audit: control {control['id']}: a regular expression of its check is invalid: {exc}"
                f" (pattern {exc.pattern!r})"
            ) from exc
        results.append({**_base(control, cis_field), "status": "pass" if ok else "fail", "detail": detail})
    return results


def hardening_verify(control: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """A control the role verifies instead of changing: its output check (argv) against the registered result
    of running that argv. True when the check passes."""
    check = control.get("check") or {}
    names = {str(leaf.get("command")) for leaf in _leaves(check) if leaf.get("type") == "output" and "argv" in leaf}
    if len(names) != 1 or any(leaf.get("type") != "output" for leaf in _leaves(check)):
        raise AnsibleFilterError(f"hardening_verify: {control.get('id')} needs output checks of one command with argv")
    return _check(check, _Host({names.pop(): result}, []))[0]


def hardening_argv(control: Mapping[str, Any]) -> list[str]:
    """The argv of a control's output check (the command a verify task runs, the same the audit runs)."""
    for leaf in _leaves(control.get("check") or {}):
        if leaf.get("type") == "output" and "argv" in leaf:
            return [str(arg) for arg in leaf["argv"]]
    raise AnsibleFilterError(f"hardening_argv: {control.get('id')} has no output check with argv")


ANY = ("0.0.0.0/0", "::/0", "any")


def _cidr(value: Any, name: str) -> str:
    text = str(value).strip()
    if text in ANY:
        return "any"
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise AnsibleFilterError(f"{name}: {text!r} is not an address or CIDR") from exc
    # ufw shows a single host without its prefix length
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def _port(value: Any, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise AnsibleFilterError(f"{name}: port must be 1..65535 (got {value!r})")
    return port


def resolvers(text: str) -> list[str]:
    """Non-loopback nameserver addresses of resolv.conf text (systemd-resolved's stub 127.0.0.53 is local)."""
    found = []
    for match in re.finditer(r"^\s*nameserver\s+(\S+)", text or "", re.M):
        try:
            address = ipaddress.ip_address(match[1].split("%")[0])
        except ValueError:
            continue
        if not address.is_loopback and str(address) not in found:
            found.append(str(address))
    return found


def hardening_egress_rules(settings: Mapping[str, Any], resolv_conf: str = "") -> list[dict[str, Any]]:
    """The host firewall's outbound allow-list (ufw: to, port, proto, comment), mirroring the app tier's
    security group (443 out, the DB port to the DB subnets, NFS to EFS, extra rules) plus the link-local
    AWS services a host needs: the DNS resolvers (configured and the host's own), the time servers, IMDS."""
    rules: list[dict[str, Any]] = []

    def add(to: Any, port: Any, proto: str, comment: str, name: str) -> None:
        if proto not in ("tcp", "udp"):
            raise AnsibleFilterError(f"{name}: proto must be tcp or udp (got {proto!r})")
        rule = {
            "to": _cidr(to, name),
            "port": _port(port, name),
            "proto": proto,
            "comment": f"gearlift egress: {comment}",
        }
        if all((rule["to"], rule["port"], rule["proto"]) != (r["to"], r["port"], r["proto"]) for r in rules):
            rules.append(rule)

    for cidr in settings.get("https_cidrs") or []:
        add(
            cidr,
            443,
            "tcp",
            "HTTPS (AWS APIs through the NAT or the endpoints)",
            "hardening_firewall_egress_https_cidrs",
        )
    db_port = settings.get("db_port", 3306)
    for cidr in settings.get("db_cidrs") or []:
        add(cidr, db_port, "tcp", "the database", "hardening_firewall_egress_db_cidrs")
    for cidr in settings.get("efs_cidrs") or []:
        add(cidr, 2049, "tcp", "NFS to EFS", "hardening_firewall_egress_efs_cidrs")
    for server in [*(settings.get("dns_servers") or []), *resolvers(resolv_conf)]:
        for proto in ("udp", "tcp"):
            add(server, 53, proto, "DNS", "hardening_firewall_egress_dns_servers")
    for server in settings.get("ntp_servers") or []:
        try:
            ipaddress.ip_address(str(server))
            target = str(server)
        except ValueError:
            target = "any"  # a time server by name: its addresses are not known here
        add(target, 123, "udp", "NTP", "hardening_chrony_servers")
    if settings.get("imds", True):
        add(
            "169.254.169.254",
            80,
            "tcp",
            "instance metadata (IMDSv2, the instance role credentials)",
            "hardening_firewall_egress_imds",
        )
    for index, extra in enumerate(settings.get("extra") or []):
        name = f"hardening_firewall_egress_extra[{index}]"
        if not isinstance(extra, Mapping) or "port" not in extra or "cidr" not in extra:
            raise AnsibleFilterError(f"{name}: needs port and cidr (proto tcp or udp, description optional)")
        add(
            extra["cidr"],
            extra["port"],
            str(extra.get("proto", "tcp")).lower(),
            str(extra.get("description", "extra")),
            name,
        )
    return rules


def hardening_egress_checks(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Audit checks: `ufw status verbose` shows an ALLOW OUT line for each rule ("<to> <port>/<proto>")."""
    checks = []
    for rule in rules:
        target = "" if rule["to"] == "any" else re.escape(str(rule["to"])) + " "
        regex = f"^{target}{rule['port']}/{rule['proto']}\\s+ALLOW OUT\\s"
        checks.append({"type": "output", "command": "ufw", "regex": regex})
    return checks


def hardening_ingress_checks(ports: Iterable[Any]) -> list[dict[str, Any]]:
    """Audit checks: `ufw status verbose` shows an ALLOW IN line for each allowed TCP port."""
    if isinstance(ports, (str, Mapping)) or not isinstance(ports, Iterable):
        raise AnsibleFilterError(f"hardening_ingress_checks: a list of TCP ports, not {ports!r}")
    checks = []
    for port in ports:
        text = str(port).strip()
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise AnsibleFilterError(f"hardening_ingress_checks: {port!r} is not a TCP port (1-65535)")
        checks.append({"type": "output", "command": "ufw", "regex": f"^{int(text)}/tcp +ALLOW IN "})
    return checks


def hardening_missing_packages(packages: Mapping[str, Any], installed: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per key of ``packages`` (name -> list of packages), those not in ``installed`` (package_facts'
    ``ansible_facts.packages``): apt loads its whole cache for every call, so each install task of the role
    runs only for what is missing (a no-change run calls it for none)."""
    if not isinstance(packages, Mapping) or not isinstance(installed, Mapping):
        raise AnsibleFilterError("hardening_missing_packages: a mapping of package lists and package_facts' packages")
    missing: dict[str, list[str]] = {}
    for key, names in packages.items():
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise AnsibleFilterError(f"hardening_missing_packages: {key} must be a list of packages, not {names!r}")
        missing[str(key)] = [str(name) for name in names if str(name) not in installed]
    return missing


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "hardening_controls": hardening_controls,
            "hardening_toggle_names": hardening_toggle_names,
            "hardening_enabled": hardening_enabled,
            "hardening_remediation": hardening_remediation,
            "hardening_plan": hardening_plan,
            "hardening_audit_reads": hardening_audit_reads,
            "hardening_audit": hardening_audit,
            "hardening_verify": hardening_verify,
            "hardening_argv": hardening_argv,
            "hardening_egress_rules": hardening_egress_rules,
            "hardening_egress_checks": hardening_egress_checks,
            "hardening_ingress_checks": hardening_ingress_checks,
            "hardening_missing_packages": hardening_missing_packages,
        }
