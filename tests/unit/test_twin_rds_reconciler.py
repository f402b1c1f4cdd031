"""The RDS stand-ins' reconciler: a deleted DB instance takes its MariaDB and its server config with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import podman
from gearlift.twin.dataplane import rds
from gearlift.twin.layout import TwinLayout


class _Pages:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def paginate(self, **_kwargs: Any) -> list[dict[str, Any]]:
        return [{"DBInstances": self.items}]


class _Rds:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def get_paginator(self, op: str) -> _Pages:
        assert op == "describe_db_instances"
        return _Pages(self.items)


def test_a_deleted_instance_loses_its_container_and_its_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = TwinLayout("gltest", tmp_path, "gltest", "10.89.78.0/24", "10.89.78.1", "us-east-1")
    drill = "shop-rehearsal-drill-20261205161459"
    cnf = tmp_path / f"rds-{drill}.cnf"
    cnf.write_text("[mysqld]\n", encoding="utf-8")
    kept = tmp_path / "rds-shop-rehearsal.cnf"
    kept.write_text("[mysqld]\n", encoding="utf-8")
    removed: list[str] = []
    containers = [
        podman.Container(f"gltest-rds-{drill}", "running", {"gearlift.kind": "rds", "gearlift.db-id": drill}, "x")
    ]
    monkeypatch.setattr(podman, "list_containers", lambda label: containers)
    monkeypatch.setattr(podman, "remove", lambda name, stop_timeout=5: removed.append(name))
    logs: list[str] = []
    reconciler = rds.RdsReconciler(layout, lambda service: _Rds([]), logs.append, "image", tmp_path / "tls-db")
    assert reconciler.sync() == {}
    assert removed == [f"gltest-rds-{drill}"]
    assert not cnf.exists(), "the deleted instance's server config stays behind in the state dir"
    assert kept.exists()
    assert any("deleted -> removing" in line for line in logs)
