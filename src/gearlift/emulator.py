"""Start and stop a standalone AWS emulator (the twin's moto control plane) for test scenarios.

Molecule scenarios that need AWS APIs (the golden image fetching its DB secret from Secrets
Manager) run one of these next to their test hosts: bound to loopback and to the scenario
network's gateway only, never 0.0.0.0, and stopped by its PID.

    python -m gearlift.emulator start --state-dir DIR --host 127.0.0.1 --host 10.89.79.1
    python -m gearlift.emulator stop --state-dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.errors import TwinError
from gearlift.twin.netutil import free_port, wait_http

STATE_FILE = "emulator.json"


def start(state_dir: Path, hosts: list[str], port: int | None) -> dict[str, object]:
    """Start the emulator (a no-op when this state dir's emulator already answers)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state = state_dir / STATE_FILE
    if state.exists():
        recorded = json.loads(state.read_text(encoding="utf-8"))
        if (state_dir / "moto.pid").exists():
            try:
                wait_http(f"{recorded['url']}/moto-api/", timeout=2.0)
                return dict(recorded)
            except (TwinError, KeyError, TypeError):
                pass  # a record of an emulator that is gone (a killed run): start a new one
        # Its pid may belong to another process by now: the record goes, nothing is signalled.
        (state_dir / "moto.pid").unlink(missing_ok=True)
        state.unlink(missing_ok=True)
    chosen = port if port is not None else free_port()
    plane = MotoControlPlane(state_dir, hosts, chosen)
    plane.start()
    info: dict[str, object] = {
        "port": chosen,
        "url": plane.url,
        "urls": {host: plane.url_for(host) for host in hosts},
        "pid": int((state_dir / "moto.pid").read_text(encoding="utf-8")),
    }
    state.write_text(json.dumps(info), encoding="utf-8")
    return info


def stop(state_dir: Path) -> bool:
    """Stop the emulator this state dir recorded; False when none was running."""
    pidfile = state_dir / "moto.pid"
    running = pidfile.exists()
    MotoControlPlane(state_dir, [], 0).stop()
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gearlift.emulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("start", help="start an emulator and print its endpoints as JSON")
    up.add_argument("--state-dir", type=Path, required=True)
    up.add_argument("--host", action="append", required=True, help="address to bind (repeatable; never 0.0.0.0)")
    up.add_argument("--port", type=int, default=None)
    down = sub.add_parser("stop", help="stop the emulator of a state dir")
    down.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if any(h in ("0.0.0.0", "::", "") for h in args.host):  # noqa: S104 - refused, not bound
                print("error: the emulator binds only to named local addresses, not 0.0.0.0/::", file=sys.stderr)
                return 2
            print(json.dumps(start(args.state_dir, args.host, args.port)))
        else:
            print("stopped" if stop(args.state_dir) else "no emulator running")
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
