"""playbooks/migrate_files.yml against the twin, with customers uploading designs throughout.

The site's app server (onprem-app) mounts the uploads' EFS through the VPN path the strict twin
enforces (security group, app route tables, app ACL), copies while the shop takes uploads, then
switches in place at cutover. A cutover that meets a conflict on the file system rolls back; the
real cutover and a rollback lose no design the shop confirmed: every one is served by the legacy
front door and byte-identical on the file system (the fleet's side of the mount).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gearlift.story.shoppers import ShopperLoop
from gearlift.story.traffic import Target
from gearlift.twin import podman
from gearlift.twin.onprem import ONPREM_APP_HOST, ONPREM_UPLOAD_DIR
from gearlift.twin.runner import RunResult, run_playbook

from ..conftest import REPO
from .conftest import Estate

pytestmark = pytest.mark.slow

STATE = "/var/lib/gearlift-migration"
KEPT = ONPREM_UPLOAD_DIR + ".pre-gearlift"


class Move:
    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.runs = 0
        self.lines: list[str] = []

    def play(self, tags: str | None = None, expect_ok: bool = True) -> RunResult:
        self.runs += 1
        self.lines = []
        result = run_playbook(
            REPO,
            "playbooks/migrate_files.yml",
            ["inventories/rehearsal", str(self.estate.onprem.inventory)],
            self.estate.tmp / f"files-{self.runs}",
            self.estate.twin.aws_env,
            self.lines.append,
            tags=tags,
        )
        if expect_ok:
            assert result.ok, "\n".join(self.lines[-40:] + result.failures)
        return result

    def sh(self, script: str, check: bool = True) -> str:
        return podman.exec_(self.estate.onprem.app_container, "sh", "-c", script, check=check).stdout

    def record(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.sh(f"cat {STATE}/files-{name}.json"))
        return data

    def efs_dir(self) -> Path:
        assert self.estate.twin.clients is not None
        ssm = self.estate.twin.clients("ssm")
        name = "/gearlift/shop/rehearsal/efs/designs"
        ids = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        return self.estate.twin.layout.state_dir / "efs" / "data" / ids["file_system_id"] / "designs"


def _on_efs(efs: Path, uploads: dict[str, tuple[str, int]]) -> list[str]:
    """The confirmed designs that are not byte-identical on the file system."""
    bad = []
    for ident, (sha, _size) in uploads.items():
        data = [p for p in efs.glob(f"{ident}.*") if p.suffix != ".json"]
        if len(data) != 1 or hashlib.sha256(data[0].read_bytes()).hexdigest() != sha:
            bad.append(ident)
    return bad


def _wait_uploads(loop: ShopperLoop, more: int, seconds: float = 120) -> None:
    want = len(loop.uploads) + more
    deadline = time.monotonic() + seconds
    while len(loop.uploads) < want and time.monotonic() < deadline and loop.running:
        time.sleep(0.2)
    assert len(loop.uploads) >= want, (
        f"the shop confirmed {len(loop.uploads)} uploads, wanted {want}: {loop.failures[-3:]}"
    )


def test_designs_move_with_uploads_throughout_and_no_confirmed_design_is_lost(estate: Estate, capsys: Any) -> None:
    move = Move(estate)
    legacy = Target(estate.onprem.app_url)
    loop = ShopperLoop(
        legacy,
        prefix="files-move",
        shoppers=2,
        interval=0.1,
        upload_every=2,
        # carts but no check-outs: the package's other tests count the source's orders (conftest.LEGACY_ORDERS)
        checkout_every=1_000_000,
        max_steps=20000,
        max_seconds=900,
        max_upload_bytes=160 * 1024 * 1024,
    )
    efs = move.efs_dir()
    loop.start()
    try:
        _wait_uploads(loop, 20)

        # first copy and deltas, the shop writing
        move.play()
        copied = move.record("copy")
        assert copied["status"] == "done" and int(copied["passes"]) >= 1, copied
        _wait_uploads(loop, 10)

        # a cutover that meets a conflict (a directory on EFS where a design must go) rolls back
        move.sh(f"printf 'PNG' > {ONPREM_UPLOAD_DIR}/zz-conflict.bin")
        (efs / "zz-conflict.bin").mkdir()
        failed = move.play(tags="cutover", expect_ok=False)
        assert not failed.ok
        assert "Rolled back" in "\n".join(move.lines), move.lines[-20:]
        assert move.record("cutover")["status"] == "rolled_back"
        assert move.sh(f"test -d {ONPREM_UPLOAD_DIR} && ! test -L {ONPREM_UPLOAD_DIR} && echo dir").strip() == "dir"
        (efs / "zz-conflict.bin").rmdir()
        move.sh(f"rm -f {ONPREM_UPLOAD_DIR}/zz-conflict.bin")
        _wait_uploads(loop, 10)
        assert loop.missing_uploads(legacy) == [], "a rolled-back cutover lost designs"

        # the cutover: the legacy app writes onto EFS from now on, without a restart
        move.play(tags="cutover")
        record = move.record("cutover")
        assert record["status"] == "done" and int(record["mismatched"]) == 0, record
        assert move.sh(f"readlink {ONPREM_UPLOAD_DIR}").strip() == "/mnt/gearlift-uploads"
        _wait_uploads(loop, 20)
    finally:
        loop.stop()
    confirmed = dict(loop.uploads)
    assert loop.missing_uploads(legacy) == [], "designs the shop confirmed are not served after the cutover"
    assert _on_efs(efs, confirmed) == [], "designs the shop confirmed are not byte-identical on EFS"
    kept = int(move.sh(f"ls {KEPT} | wc -l"))
    assert kept > 0, "the local directory is kept"
    with capsys.disabled():
        print(
            f"\nfiles move: {len(confirmed)} designs confirmed ({loop.upload_bytes} bytes), 0 lost; final delta "
            f"{record['final_delta_copied']} file(s), {record['verified']} verified by sha256; {kept} local files kept"
        )

    # what the fleet writes after the cutover is on local disk again after a rollback
    fleet_design = efs / "f00dfeedf00dfeedf00dfeedf00dfeed.svg"
    fleet_design.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    move.play(tags="rollback")
    assert move.record("cutover")["status"] == "rolled_back"
    assert move.sh(f"test -d {ONPREM_UPLOAD_DIR} && ! test -L {ONPREM_UPLOAD_DIR} && echo dir").strip() == "dir"
    assert move.sh(f"cat {ONPREM_UPLOAD_DIR}/{fleet_design.name}") == fleet_design.read_text()
    assert loop.missing_uploads(legacy) == [], "a rollback lost designs"

    # re-runnable: nothing left to copy, nothing changed
    again = move.play()
    assert again.stats.get("changed", {}).get(ONPREM_APP_HOST, 0) == 0, again.changed_tasks
