"""The PCI DSS v4.0.1 matrix: requirement -> implementing controls -> evidence status.

data/pci_matrix.json names the controls: ``{"tag": T}`` (a tag on a task in roles/*/tasks) or
``{"task": R}`` (a playbook task named "PCI R | ..."). Every reference is looked up in the
repository; the evidence status comes from the audit results whose ``pci`` field falls under the
row's requirement prefixes: fail if any fails, else pass if any passes, else skipped, else
"no evidence". Out-of-scope rows say why instead. ``readback`` names the checks that read a control
back from what was provisioned (``path::test_function``, for example the provisioning checker
tests/integration/test_provision.py reading the rehearsal account); ``missing_readbacks`` reports
the ones that do not exist.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gearlift.report.errors import ReportError
from gearlift.report.evidence import AuditControl, AuditSet
from gearlift.report.inventory import RuntimeValue
from gearlift.report.repo import ControlIndex

SCOPES = ("toolkit", "shared", "out_of_scope")


@dataclass(frozen=True)
class ControlRef:
    kind: str  # "tag" | "task"
    value: str
    exists: bool
    where: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"tag {self.value}" if self.kind == "tag" else f"playbook task 'PCI {self.value}'"


@dataclass(frozen=True)
class SettingCheck:
    var: str
    expect: str
    actual: str
    ok: bool | None  # None: only known at run time


@dataclass
class MatrixRow:
    req: str
    title: str
    scope: str
    note: str
    controls: list[ControlRef]
    aws: list[str]
    settings: list[SettingCheck]
    evidence: list[AuditControl] = field(default_factory=list)
    readback: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.scope == "out_of_scope":
            return "out of scope"
        statuses = {c.status for c in self.evidence}
        for status in ("fail", "pass", "skipped"):
            if status in statuses:
                return status
        return "no evidence"

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skipped": 0}
        for control in self.evidence:
            if control.status in out:
                out[control.status] += 1
        return out


def load_matrix(path: Path | None = None) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files("gearlift.report").joinpath("data/pci_matrix.json").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ReportError(f"PCI matrix unreadable: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ReportError("PCI matrix: expected {'rows': [...]}")
    return data


def resolve_ref(raw: dict[str, Any], index: ControlIndex) -> ControlRef:
    if "tag" in raw:
        tag = str(raw["tag"])
        return ControlRef("tag", tag, index.has_tag(tag), tuple(sorted(index.tags.get(tag, set()))))
    if "task" in raw:
        req = str(raw["task"])
        found = index.pci_tasks.get(req, [])
        return ControlRef("task", req, bool(found), tuple(sorted({f"{path}: {name}" for path, name in found})))
    raise ReportError(f"PCI matrix: control reference {raw!r} is neither a tag nor a task")


def missing_references(matrix: dict[str, Any], index: ControlIndex) -> list[str]:
    """Every reference in the matrix that the repository does not have, as 'req: label'."""
    missing: list[str] = []
    for row in matrix["rows"]:
        for raw in row.get("controls", []):
            ref = resolve_ref(raw, index)
            if not ref.exists:
                missing.append(f"{row['req']}: {ref.label}")
    return missing


def unlinked_rows(matrix: dict[str, Any]) -> list[str]:
    """Rows that neither name a control nor say they are out of scope (with a reason)."""
    bad: list[str] = []
    for row in matrix["rows"]:
        scope = row.get("scope")
        if scope not in SCOPES:
            bad.append(f"{row.get('req')}: scope {scope!r} is not one of {', '.join(SCOPES)}")
        elif scope == "out_of_scope" and not str(row.get("note", "")).strip():
            bad.append(f"{row['req']}: out of scope without saying why")
        elif scope != "out_of_scope" and not row.get("controls"):
            bad.append(f"{row['req']}: no implementing control")
    return bad


def _test_functions(path: Path) -> set[str]:
    """Names of the module-level (async) functions of a Python test file; empty when unreadable."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def missing_readbacks(matrix: dict[str, Any], root: Path) -> list[str]:
    """Every readback check ('path::function') in the matrix that the repository at root does not have."""
    missing: list[str] = []
    found: dict[str, set[str]] = {}
    for row in matrix["rows"]:
        for ref in row.get("readback", []):
            path, sep, function = str(ref).partition("::")
            if not sep or not function or path.startswith("/") or ".." in Path(path).parts:
                missing.append(f"{row['req']}: readback {ref!r} is not 'relative/path.py::test_function'")
                continue
            if path not in found:
                found[path] = _test_functions(root / path)
            if function not in found[path]:
                missing.append(f"{row['req']}: readback {ref}")
    return missing


def _check(raw: dict[str, Any], effective: dict[str, Any]) -> SettingCheck:
    var, op = str(raw["var"]), str(raw.get("op", "eq"))
    value = effective.get(var)
    expected = raw.get("value")
    if isinstance(value, RuntimeValue):
        return SettingCheck(var, op, str(value), None)
    text = "(not set)" if value is None or value == "" else json.dumps(value)
    ok: bool
    if op == "empty":
        ok, expect = not value, "empty"
    elif op == "set":
        ok, expect = bool(value), "set"
    elif op in ("ge", "le"):
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        limit = float(expected) if isinstance(expected, int | float) else 0.0
        expect = f"{'>=' if op == 'ge' else '<='} {expected}"
        ok = number is not None and (number >= limit if op == "ge" else number <= limit)
    else:
        ok, expect = value == expected, json.dumps(expected)
    return SettingCheck(var, expect, text, ok)


def build_matrix(
    matrix: dict[str, Any], index: ControlIndex, audit: AuditSet, effective: dict[str, Any]
) -> list[MatrixRow]:
    rows: list[MatrixRow] = []
    for raw in matrix["rows"]:
        prefixes = [str(p) for p in raw.get("evidence", [])]
        rows.append(
            MatrixRow(
                req=str(raw["req"]),
                title=str(raw.get("title", "")),
                scope=str(raw.get("scope", "toolkit")),
                note=str(raw.get("note", "")),
                controls=[resolve_ref(ref, index) for ref in raw.get("controls", [])],
                aws=[str(a) for a in raw.get("aws", [])],
                settings=[_check(s, effective) for s in raw.get("settings", [])],
                evidence=audit.for_requirement(prefixes) if prefixes else [],
                readback=[str(r) for r in raw.get("readback", [])],
            )
        )
    return rows
