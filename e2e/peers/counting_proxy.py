#!/usr/bin/env python3
"""A plain HTTP proxy in front of moto's server that writes one line per call to a log:
the AWS operation (from the X-Amz-Target header, such as `secretsmanager.DescribeSecret`), so
tests count what ramlet really sent over the wire rather than what ramlet says it sent.
Bodies are forwarded untouched and never logged.

A test control outside AWS's API: POST /fake/throttle?target=T answers every later call of
operation T (`secretsmanager.BatchGetSecretValue`) as AWS does when a quota is spent (400,
`ThrottlingException`), without forwarding it; an empty T ends it. Throttled calls are logged
like the others.

    counting_proxy.py --port 5001 --to 5000 --log calls.log
"""

import argparse
import http.client
import json
import sys
from urllib.parse import parse_qs, urlsplit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def _answer(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        url = urlsplit(self.path)
        if url.path == "/fake/throttle":
            self.server.throttle = parse_qs(url.query).get("target", [""])[0]
            self._answer(200, b"{}", "application/json")
            return
        target = self.headers.get("X-Amz-Target", f"{self.command} {self.path}")
        with open(self.server.log, "a", encoding="utf-8") as log:
            log.write(target + "\n")
        if target == self.server.throttle:
            error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            self._answer(400, json.dumps(error).encode(), "application/x-amz-json-1.1")
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        except OSError as error:
            self.send_error(502, f"upstream: {error}")
            return
        finally:
            upstream.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", type=int, required=True, help="moto's port on 127.0.0.1")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.upstream = args.to
    server.throttle = ""
    server.log = args.log
    open(args.log, "a", encoding="utf-8").close()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
