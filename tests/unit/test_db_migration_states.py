"""The cutover's recorded states (roles/db_migration: cutover.json) and what a rollback does from each.

The role's own conditions, evaluated as Ansible does: which records allow a cutover, where a
rollback starts from, which of its steps run, how it ends. The slow lane injects the faults for real
(tests/integration/dbmove/test_migration.py); this keeps the state machine itself in the fast lane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader

from tests.unit.module_harness import REPO, condition, find_task, templar

TASKS = REPO / "roles" / "db_migration" / "tasks"
CUTOVER_STATES = ["read_only", "switching", "apps", "done"]


def _block(path: Path, name_start: str) -> dict[str, Any]:
    def walk(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for t in tasks or []:
            out.append(t)
            for part in ("block", "rescue", "always"):
                out.extend(walk(t.get(part) or []))
        return out

    loaded = DataLoader().load_from_file(str(path), trusted_as_template=True)
    found = [t for t in walk(loaded) if str(t.get("name", "")).startswith(name_start)]
    assert len(found) == 1, name_start
    return found[0]


@pytest.mark.parametrize(
    ("record", "allowed"),
    [
        ({}, True),
        ({"status": "aborted"}, True),
        ({"status": "done"}, True),
        *[({"status": s}, False) for s in ["read_only", "switching", "apps", "rolling_back", "source_caught_up"]],
        ({"status": "rolled_back"}, False),
    ],
)
def test_a_cutover_runs_only_from_no_record_an_aborted_one_or_skips_a_done_one(
    record: dict[str, Any], allowed: bool
) -> None:
    task = find_task(TASKS / "cutover.yml", "DB migration | No cutover half-way")
    variables = {"__db_migration_cutover_state": record, "db_migration_state_dir": "/var/lib/gearlift-migration"}
    assert condition(task["ansible.builtin.assert"]["that"], variables) is allowed
    # ansible-core renders the message whether or not the assertion holds: it must render for every record.
    message = templar(variables).template(task["ansible.builtin.assert"]["fail_msg"])
    assert "cutover.json records status" in message
    if record.get("status") == "rolled_back":
        assert "a new cutover needs a new copy" in message
    elif not allowed:
        assert "complete it with --tags rollback" in message
    include = _block(TASKS / "cutover.yml", "DB migration | The cutover (not repeated once done)")
    assert condition(include["when"], {"__db_migration_cutover_state": record}) is (record.get("status") != "done")


def _start(record: dict[str, Any]) -> tuple[str, bool]:
    task = find_task(TASKS / "rollback_steps.yml", "DB migration | Where the rollback starts from")
    values = templar({"__db_migration_cutover_state": record, "db_migration_app_hosts": []}).template(
        task["ansible.builtin.set_fact"]
    )
    return str(values["__db_migration_rb_from"]).strip(), bool(values["__db_migration_rb_caught_up"])


@pytest.mark.parametrize(
    ("record", "start", "caught_up"),
    [
        *[({"status": s}, s, False) for s in CUTOVER_STATES],
        ({"status": "rolling_back", "rollback_from": "done"}, "done", False),
        ({"status": "source_caught_up", "rollback_from": "apps"}, "apps", True),
        ({}, "read_only", False),  # a cutover that failed while writing its first record
    ],
)
def test_a_rollback_starts_where_the_record_says(record: dict[str, Any], start: str, caught_up: bool) -> None:
    assert _start(record) == (start, caught_up)


@pytest.mark.parametrize(
    ("start", "caught_up", "waits", "ends"),
    [
        ("read_only", False, False, "aborted"),  # the target never stopped following: the cutover can run again
        ("switching", False, False, "rolled_back"),  # no app wrote to the target yet: nothing to wait for
        ("apps", False, True, "rolled_back"),  # app hosts may have written to the target: the source catches up
        ("done", False, True, "rolled_back"),
        ("done", True, False, "rolled_back"),  # a re-run after the catch-up was recorded does not wait again
    ],
)
def test_the_source_waits_for_the_targets_writes_only_when_an_app_may_have_written_there(
    start: str, caught_up: bool, waits: bool, ends: str
) -> None:
    variables = {"__db_migration_rb_from": start, "__db_migration_rb_caught_up": caught_up}
    catch_up = _block(TASKS / "rollback_steps.yml", "DB migration | The source applies every write the target took")
    assert condition(catch_up["when"], variables) is waits
    end = find_task(TASKS / "rollback_steps.yml", "DB migration | Record the end of the rollback")
    status = templar(variables).template(end["vars"]["__db_migration_cutover_update"]["status"])
    assert status == ends


@pytest.mark.parametrize(
    ("start", "reverse", "allowed"),
    [("read_only", False, True), ("switching", False, True), ("apps", False, False), ("done", False, False)]
    + [(s, True, True) for s in CUTOVER_STATES],
)
def test_no_rollback_that_would_lose_the_targets_writes(start: str, reverse: bool, allowed: bool) -> None:
    task = find_task(TASKS / "rollback_steps.yml", "DB migration | The target took no writes")
    variables = {"__db_migration_rb_from": start, "__db_migration_cutover_state": {"reverse_replication": reverse}}
    assert condition(task["ansible.builtin.assert"]["that"], variables) is allowed


@pytest.mark.parametrize(
    ("status", "runs"), [("aborted", False), ("rolled_back", False)] + [(s, True) for s in CUTOVER_STATES]
)
def test_a_finished_rollback_is_not_repeated(status: str, runs: bool) -> None:
    include = find_task(TASKS / "rollback.yml", "DB migration | Roll back (not repeated once done)")
    assert condition(include["when"], {"__db_migration_cutover_state": {"status": status}}) is runs


def test_every_switch_step_is_recorded_before_it_runs() -> None:
    """In cutover_steps.yml the record of each status precedes the step it announces."""
    names = [str(t.get("name", "")) for t in yaml.safe_load((TASKS / "cutover_steps.yml").read_text())[-2]["block"]]
    order = [
        "DB migration | Record before the source turns read-only",
        "DB migration | Source read-only",
        "DB migration | Record before replication from the source stops",
        "DB migration | Stop replication from the source (RDS procedure)",
        "DB migration | Reverse replication before any app writes",
        "DB migration | Record before the first app host is switched",
        "DB migration | Switch each app host to the target",
        "DB migration | Record the cutover",
    ]
    positions = [next(i for i, n in enumerate(names) if n.startswith(step)) for step in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
