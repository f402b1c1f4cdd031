"""`python -m gearlift.emulator start` after a killed run: a stale record never stands for an emulator."""

from __future__ import annotations

import json
from pathlib import Path

from gearlift import emulator
from gearlift.twin.netutil import free_port, wait_http


def test_a_record_of_an_emulator_that_is_gone_is_replaced_by_a_new_one(tmp_path: Path) -> None:
    dead = free_port()
    (tmp_path / emulator.STATE_FILE).write_text(
        json.dumps({"port": dead, "url": f"http://127.0.0.1:{dead}", "urls": {}, "pid": 999999}), encoding="utf-8"
    )
    (tmp_path / "moto.pid").write_text("999999", encoding="utf-8")
    info = emulator.start(tmp_path, ["127.0.0.1"], None)
    try:
        assert info["url"] != f"http://127.0.0.1:{dead}"
        wait_http(f"{info['url']}/moto-api/", timeout=5.0)
        again = emulator.start(tmp_path, ["127.0.0.1"], None)  # a live record is reused
        assert again["url"] == info["url"]
    finally:
        assert emulator.stop(tmp_path)
