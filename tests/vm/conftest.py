"""The qemu VM test host lane: one image per session, one VM per test module.

Run with ``flock /tmp/gearlift-heavy.lock pytest -m vm tests/vm -s`` (heavy: TCG only).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearlift.vm import VM, VMImage, build_image

from .helpers import say


def _cannot_run(reason: str) -> None:
    """Skip, or fail under ``scripts/test vm`` (GEARLIFT_VM_REQUIRED=1): a lane that ran nothing must not pass."""
    if os.environ.get("GEARLIFT_VM_REQUIRED") == "1":
        pytest.fail(f"the VM lane cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def vm_image() -> VMImage:
    for tool in ("qemu-system-x86_64", "debootstrap", "ssh"):
        if shutil.which(tool) is None:
            _cannot_run(f"{tool} is not installed (apt-get install qemu-system-x86 debootstrap openssh-client)")
    if os.geteuid() != 0:
        _cannot_run("the VM lane builds its image as root (debootstrap, chroot)")
    t0 = time.monotonic()
    image = build_image(log=say)
    say(f"image ready in {time.monotonic() - t0:.0f} s (0 when cached): {image.image}")
    return image


@pytest.fixture(scope="module")
def vm(vm_image: VMImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    machine = VM(vm_image, tmp_path_factory.mktemp("vm-run"), log=say)
    machine.start()
    say(f"boot to SSH: {machine.boot_seconds:.0f} s")
    pid = machine.pid
    try:
        yield machine
    finally:
        machine.stop()
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists() or b"qemu" not in Path(f"/proc/{pid}/cmdline").read_bytes(), (
            f"qemu pid {pid} is still running"
        )
