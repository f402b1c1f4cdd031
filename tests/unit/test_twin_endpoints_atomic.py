"""endpoints.json is rewritten every twin round while the story reads it: a reader never sees a torn file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from gearlift.twin.layout import Endpoints, write_atomic


def test_readers_never_see_a_partial_endpoints_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    Endpoints(moto="http://127.0.0.1:1").save(path)
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            text = path.read_text(encoding="utf-8")
            try:
                json.loads(text)
            except json.JSONDecodeError:
                bad.append(text)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(2000):
            Endpoints(moto=f"http://127.0.0.1:{i}", load_balancers={"shop": {"443": i}}).save(path)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == []
    assert json.loads(path.read_text(encoding="utf-8"))["load_balancers"] == {"shop": {"443": 1999}}


def test_write_atomic_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    write_atomic(path, "one")
    write_atomic(path, "two")
    assert path.read_text(encoding="utf-8") == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
