#!/usr/bin/python3
"""Test fixture: just enough of AWS Secrets Manager (GetSecretValue) on loopback.

POST / with `X-Amz-Target: secretsmanager.GetSecretValue` and a JSON body
{"SecretId": name-or-ARN} answers {"ARN", "Name", "SecretString", ...} from a JSON
file {name: {"ARN": ..., "Name": ..., "SecretString": ...}}. Signatures are not
checked (the client signs with dummy credentials). Request lines are logged,
bodies and answers never.
"""

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONTENT_TYPE = "application/x-amz-json-1.1"


def make_handler(data_file: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "secretsmanager-standin"

        def _answer(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int, code: str, message: str) -> None:
            self._answer(status, {"__type": code, "message": message, "Message": message})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            target = self.headers.get("X-Amz-Target", "")
            if target != "secretsmanager.GetSecretValue":
                self._error(400, "UnknownOperationException", f"not implemented: {target}")
                return
            try:
                secret_id = json.loads(raw)["SecretId"]
            except (ValueError, KeyError, TypeError):
                self._error(400, "InvalidRequestException", "SecretId missing")
                return
            secrets = json.loads(data_file.read_text(encoding="utf-8"))
            for entry in secrets.values():
                if secret_id in (entry["Name"], entry["ARN"]):
                    self._answer(
                        200,
                        {
                            "ARN": entry["ARN"],
                            "Name": entry["Name"],
                            "SecretString": entry["SecretString"],
                            "VersionId": "00000000-0000-0000-0000-000000000001",
                            "VersionStages": ["AWSCURRENT"],
                            "CreatedDate": time.time(),
                        },
                    )
                    return
            self._error(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer((args.bind, args.port), make_handler(args.data)).serve_forever()


if __name__ == "__main__":
    main()
