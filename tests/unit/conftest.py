"""Shared unit-test setup: make the gearlift.platform collection importable.

The repository root is the collection; ``.collections/ansible_collections/gearlift/platform``
links back to it, so putting ``.collections`` on ``sys.path`` lets tests import
``ansible_collections.gearlift.platform.plugins...`` next to the bundled collections
(``ansible_collections`` is a namespace package).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearlift.twin.controlplane import MotoControlPlane

_COLLECTIONS = str(Path(__file__).resolve().parents[2] / ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)


@pytest.fixture(autouse=True)
def _twin_runtime_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests keep the twin's sockets and pid files under pytest's temp dir, not /run."""
    from gearlift.twin import layout

    monkeypatch.setattr(layout, "RUNTIME_ROOT", tmp_path_factory.getbasetemp() / "run")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoControlPlane]:
    """One real emulator process per test module (gearlift.twin.emulator.server, as the twin starts it,
    with every fidelity rule), on loopback; tests reset it as they need."""
    from gearlift.twin.netutil import free_port

    plane = MotoControlPlane(tmp_path_factory.mktemp("emulator"), ["127.0.0.1"], free_port())
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
