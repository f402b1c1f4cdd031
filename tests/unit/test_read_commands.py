"""gearlift.platform.read_commands: real commands run through the module's main(), and the hardening
audit's task feeding the module's result to the audit engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.gearlift.platform.plugins.filter.hardening import hardening_audit, hardening_controls
from ansible_collections.gearlift.platform.plugins.modules import read_commands

from .module_harness import REPO, registered, run_main, task_args

AUDIT_TASKS = REPO / "roles" / "hardening" / "tasks" / "audit_read.yml"


def run(commands: list[dict[str, Any]], check_mode: bool = False) -> Any:
    return run_main(read_commands.main, {"commands": commands}, check_mode=check_mode)


def test_each_command_runs_and_its_output_is_returned_by_name() -> None:
    result = run(
        [
            {"name": "hello", "argv": ["/bin/echo", "hello", "world"]},
            {"name": "lines", "argv": ["/usr/bin/printf", "a\\nb\\n\\n"]},
            {"name": "fails", "argv": ["/bin/sh", "-c", "echo oops >&2; exit 3"]},
        ]
    )
    assert not result.failed
    assert result["changed"] is False
    out = result["outputs"]
    assert out["hello"] == {"cmd": ["/bin/echo", "hello", "world"], "rc": 0, "stdout": "hello world", "stderr": ""}
    assert out["lines"]["stdout"] == "a\nb", "trailing newlines are stripped, as ansible.builtin.command does"
    assert (out["fails"]["rc"], out["fails"]["stderr"]) == (3, "oops"), "a failing command does not fail the task"


def test_a_command_whose_binary_is_missing_is_skipped_with_the_reason(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run(
        [
            {"name": "gone", "argv": ["/nonexistent/tool", "-l"]},
            {"name": "guarded", "binary": str(tmp_path / "absent"), "argv": ["/usr/bin/touch", str(marker)]},
            {"name": "present", "binary": str(tmp_path), "argv": ["/bin/echo", "ok"]},
        ]
    )
    assert result["outputs"]["gone"] == {"skipped": True, "skip_reason": "/nonexistent/tool is not on this host"}
    assert result["outputs"]["guarded"]["skipped"] is True
    assert not marker.exists(), "a command whose binary is missing must not run"
    assert result["outputs"]["present"]["stdout"] == "ok"


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ([{"name": "a", "argv": ["/bin/true"]}, {"name": "a", "argv": ["/bin/false"]}], "'a' is used twice"),
        ([{"name": "empty", "argv": []}], "argv needs at least the command"),
        ([{"name": "", "argv": ["/bin/true"]}], "has no name"),
    ],
)
def test_bad_commands_are_refused_before_any_runs(tmp_path: Path, commands: list[dict[str, Any]], message: str) -> None:
    marker = tmp_path / "ran"
    result = run([{"name": "first", "argv": ["/usr/bin/touch", str(marker)]}, *commands])
    assert result.failed
    assert message in result["msg"]
    assert not marker.exists()


def test_check_mode_reads_too_and_changes_nothing() -> None:
    result = run([{"name": "hello", "argv": ["/bin/echo", "hi"]}], check_mode=True)
    assert not result.failed
    assert result["changed"] is False
    assert result["outputs"]["hello"]["stdout"] == "hi"


def test_the_audit_task_hands_the_engine_what_it_reads(tmp_path: Path) -> None:
    """The role's task as Ansible renders it, run for real, its registered result judged by the engine:
    a command that ran is available, one whose binary is missing is 'command not available'."""
    reads = {
        "commands": [
            {"name": "greeting", "binary": "/bin/echo", "argv": ["/bin/echo", "PermitRootLogin no"]},
            {"name": "missing", "binary": "/nonexistent/auditctl", "argv": ["/nonexistent/auditctl", "-l"]},
        ]
    }
    module, args = task_args(
        AUDIT_TASKS,
        "Hardening audit | Run the read-only audit commands",
        {"__hardening_audit_commands": [], "__hardening_audit_reads": reads},
    )
    assert module == "gearlift.platform.read_commands"
    read = registered(run_main(read_commands.main, args))
    controls = hardening_controls(
        {
            "__hardening_catalog_section_5": {
                "title": "t",
                "toggle": "hardening_section_5",
                "controls": [
                    {
                        "id": f"5.9.{n}",
                        "cis": f"5.9.{n}",
                        "level": 1,
                        "pci": "2.2.1",
                        "title": name,
                        "toggle": "t_on",
                        "check": {"type": "output", "command": name, "regex": "^PermitRootLogin no$"},
                    }
                    for n, name in enumerate(["greeting", "missing"], start=1)
                ],
            }
        }
    )
    outputs = {**read["outputs"], "stat": {"rc": 0, "stdout": ""}, "content": {"rc": 0, "stdout": ""}}
    judged = {r["title"]: r for r in hardening_audit(controls, {"t_on": True}, False, "cis_2204", outputs, [])}
    assert judged["greeting"]["status"] == "pass", judged["greeting"]
    assert judged["missing"]["status"] == "fail"
    assert judged["missing"]["detail"] == "missing: command not available"
