"""Entry point of the twin's AWS control plane process: one moto app, several listeners.

moto keeps its state in-process, so serving the same WSGI app on loopback and
on the twin network's gateway address gives the controller and the container
hosts one account. Nothing else is bound: no 0.0.0.0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from werkzeug.serving import BaseWSGIServer, make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", action="append", required=True, help="address to bind (repeatable)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from gearlift.twin.moto_fidelity import apply as apply_fidelity_patches

    apply_fidelity_patches()
    app = DomainDispatcherApplication(create_backend_app)
    servers: list[BaseWSGIServer] = []
    try:
        for host in args.host:
            servers.append(make_server(host, args.port, app, threaded=True))
    except OSError as exc:
        for server in servers:
            server.server_close()
        print(f"cannot bind {args.port}: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    print(f"moto listening on {', '.join(args.host)} port {args.port}", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
