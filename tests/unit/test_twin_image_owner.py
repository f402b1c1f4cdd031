"""Images committed by one checkout's twin are removed only by that checkout's twin.

Two checkouts (or a test twin and the story) may share a prefix; before images carried their state
dir's label, one twin's teardown removed the other's cached golden image.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import podman
from gearlift.twin import twin as twin_mod
from gearlift.twin.layout import OWNER_LABEL, TwinLayout
from gearlift.twin.twin import TwinConfig

PREFIX = "glowner"


def _layout(state: Path) -> TwinLayout:
    return TwinConfig(prefix=PREFIX, state_dir=state).layout()


def test_each_state_dir_has_its_own_owner_label(tmp_path: Path) -> None:
    mine, theirs = _layout(tmp_path / "a"), _layout(tmp_path / "b")
    assert mine.label == theirs.label  # the prefix is shared ...
    assert mine.owner_label != theirs.owner_label  # ... the owner is not
    assert mine.owner_label == f"{OWNER_LABEL}={mine.state_id}"
    assert mine.owns({OWNER_LABEL: mine.state_id})
    assert not mine.owns({OWNER_LABEL: theirs.state_id})
    assert mine.owns({}) and mine.owns(None)  # committed before the label existed: the prefix's


class FakePodman:
    """Answers `podman images` with a fixed listing and records every `rmi`."""

    def __init__(self, images: list[dict[str, Any]]) -> None:
        self.images = images
        self.removed: list[str] = []

    def run(self, *args: str, check: bool = True, **_: Any) -> subprocess.CompletedProcess[str]:
        if args[0] == "images":
            return subprocess.CompletedProcess(list(args), 0, json.dumps(self.images), "")
        if args[0] == "rmi":
            self.removed.append(args[-1])
            return subprocess.CompletedProcess(list(args), 0, "", "")
        return subprocess.CompletedProcess(list(args), 0, "", "")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakePodman:
    mine, theirs = _layout(tmp_path / "a"), _layout(tmp_path / "b")
    fake = FakePodman(
        [
            {"Id": "a" * 64, "Names": ["localhost/gearlift-ami:ami-mine"], "Labels": {OWNER_LABEL: mine.state_id}},
            {"Id": "b" * 64, "Names": ["localhost/gearlift-ami:ami-theirs"], "Labels": {OWNER_LABEL: theirs.state_id}},
            {"Id": "c" * 64, "Names": ["localhost/gearlift-ami:ami-legacy"], "Labels": {}},
        ]
    )
    monkeypatch.setattr(podman, "podman_path", lambda: "/usr/bin/podman")
    monkeypatch.setattr(podman, "list_containers", lambda label: [])
    monkeypatch.setattr(podman, "container_exists", lambda name: False)
    monkeypatch.setattr(podman, "network_exists", lambda name: False)
    monkeypatch.setattr(podman, "run", fake.run)
    return fake


def test_clean_removes_its_own_images_and_never_another_checkouts(fake: FakePodman, tmp_path: Path) -> None:
    removed = twin_mod.clean(TwinConfig(prefix=PREFIX, state_dir=tmp_path / "a"), account_images=True)
    assert fake.removed == ["a" * 64, "c" * 64]
    assert f"image {'b' * 12}" not in removed


def test_the_other_checkout_cleans_only_its_own(fake: FakePodman, tmp_path: Path) -> None:
    twin_mod.clean(TwinConfig(prefix=PREFIX, state_dir=tmp_path / "b"), account_images=True)
    assert fake.removed == ["b" * 64, "c" * 64]
