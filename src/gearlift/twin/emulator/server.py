"""Entry point of the twin's AWS control plane process: one moto app, several listeners.

moto keeps its state in-process, so serving the same WSGI app on loopback and
on the twin network's gateway address gives the controller and the container
hosts one account. Nothing else is bound: no 0.0.0.0.

Requests are served one at a time (moto's models are not thread-safe, and the
instance refresh ticks every second change them too). The path ``/_gearlift/``
is the twin's own channel (gearlift.twin.channel), not an AWS API: the data plane reports there what
only it knows (an image's container is committed, what the load balancer's
health checks saw); playbooks never use it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from gearlift.twin import channel

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
TICK_SECONDS = 1.0


def data_plane_channel(environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Handle one report of the twin's data plane (JSON in, JSON out)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID

    from gearlift.twin.emulator import iam, lifecycle, refresh

    if environ.get("REQUEST_METHOD") != "POST":
        return 405, {"error": "POST only"}
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except ValueError:
        return 400, {"error": "the body is not JSON"}
    account = str(body.get("account") or DEFAULT_ACCOUNT_ID)
    region = str(body.get("region") or "us-east-1")
    what = str(environ.get("PATH_INFO", ""))[len(channel.PATH) :]
    if what == channel.IMAGE_AVAILABLE:
        return 200, {"updated": lifecycle.mark_image_available(account, region, str(body["image_id"]))}
    if what == channel.IMAGE_RESTORE:
        from gearlift.twin.emulator.account_images import restore_image

        return 200, restore_image(account, region, dict(body["image"]))
    if what == channel.TARGET_HEALTH:
        return 200, {"targets": lifecycle.report_target_health(account, region, dict(body["target_groups"]))}
    if what == channel.ROLE_CREDENTIALS:
        return 200, iam.role_credentials(account, region, str(body["instance_id"]))
    if what == channel.ROTATIONS:
        from gearlift.twin.emulator.rotation import take_rotations

        return 200, take_rotations(account, region)
    if what == channel.TICK:
        refresh.tick_all()
        return 200, {"ticked": True}
    return 404, {"error": f"unknown report {what!r}"}


def serialized(app: WsgiApp) -> WsgiApp:
    """One request at a time, under the lock the refresh ticks take too; plus the data plane's channel."""
    from gearlift.twin.emulator.iam import PEER
    from gearlift.twin.emulator.refresh import lock

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock():
            # Who is asking (the controller, or a host): gearlift.twin.emulator.iam.
            PEER["addr"] = str(environ.get("REMOTE_ADDR") or "")
            if str(environ.get("PATH_INFO", "")).startswith(channel.PATH):
                status, answer = data_plane_channel(environ)
                payload = json.dumps(answer).encode()
                start_response(
                    f"{status} {'OK' if status == 200 else 'Error'}",
                    [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
                )
                return [payload]
            return list(app(environ, start_response))

    return wrapper


def tick_forever(stop: threading.Event) -> None:
    """Advance instance refreshes, as the Auto Scaling service does, until the emulator stops."""
    from gearlift.twin.emulator.refresh import tick_all

    while not stop.wait(TICK_SECONDS):
        try:
            tick_all()
        except Exception as exc:  # keep the service loop alive; the emulator's log says why
            print(f"instance refresh tick failed: {exc!r}", file=sys.stderr, flush=True)


def listen_address(value: str, default_port: int) -> tuple[str, int]:
    """(host, port) of a --host value: HOST (the --port) or HOST:PORT (IPv4)."""
    host, _, port = value.partition(":")
    return host, int(port) if port else default_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--host", action="append", required=True, help="address to bind, HOST or HOST:PORT (repeatable)"
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from gearlift.twin.emulator import iam
    from gearlift.twin.emulator.fidelity import apply as apply_fidelity_patches

    apply_fidelity_patches()
    app = serialized(DomainDispatcherApplication(create_backend_app))
    servers: list[BaseWSGIServer] = []
    listens = [listen_address(host, args.port) for host in args.host]
    iam.install([host for host, _ in listens])
    try:
        for host, port in listens:
            servers.append(make_server(host, port, app, threaded=True))
    except OSError as exc:
        for server in servers:
            server.server_close()
        print(f"cannot bind {', '.join(f'{h}:{p}' for h, p in listens)}: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    threads.append(threading.Thread(target=tick_forever, args=(stop,), name="refresh-ticks", daemon=True))
    for thread in threads:
        thread.start()
    print(f"moto listening on {', '.join(f'{h}:{p}' for h, p in listens)}", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
