#!/usr/bin/env python3
"""A local stand-in for Google Cloud Secret Manager's REST API (v1), for ramlet's tests.

It follows the published API (https://cloud.google.com/secret-manager/docs/reference/rest) for
the calls ramlet and its tests make, with Google's behaviour where it matters:
- names in answers carry the project *number*, whichever of ID or number the caller used;
- a version is named by its number, `latest` (the most recently created version, whatever its
  state) or one of the secret's `versionAliases`;
- disabled and destroyed versions answer FAILED_PRECONDITION ("... is in DISABLED state.");
- payloads carry `dataCrc32c` (CRC32C, an int64 written as a JSON string), and `addVersion`
  checks the one it is given;
- errors use Google's JSON shape: {"error": {"code", "message", "status"}};
- `$alt=json;enum-encoding=int` (what the Rust client sends) writes enums as numbers.

Calls: POST /v1/projects/P/secrets?secretId=S, GET|PATCH|DELETE /v1/projects/P/secrets/S,
POST /v1/projects/P/secrets/S:addVersion, GET /v1/projects/P/secrets/S/versions/V,
GET .../versions/V:access, POST .../versions/V:enable|:disable|:destroy.

Test controls live outside /v1 and never touch secrets: POST /fake/hang?seconds=N makes every
later API call wait N seconds (0 ends it); POST /fake/deny?secret=S answers PERMISSION_DENIED
for S ("" ends it); POST /fake/corrupt?secret=S flips a bit of S's payloads on the way out, with
the checksum of the real data, as a corruption in transit would ("" ends it). Every API call is
logged to --log as one line "METHOD PATH", with " authorization=SCHEME" when the request carried
credentials (the scheme, never the credential; no bodies), so tests count calls at the wire.
--tls CERT KEY serves HTTPS instead of HTTP.

    gcp_secret_manager.py --port 8085 --project acme-prod=123456789012 --log calls.log
"""

import argparse
import ssl
import base64
import json
import re
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

STATES = {"ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}
CODES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
}


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or CODES.get(code, "UNKNOWN")


class Store:
    """Secrets by (project number, secret ID)."""

    def __init__(self, projects):
        self.numbers = dict(projects)  # project ID -> number
        self.secrets = {}
        self.lock = threading.Lock()
        self.hang = 0.0
        self.denied = set()
        self.corrupt = set()

    def project(self, project):
        if project.isdigit():
            return project
        if project not in self.numbers:
            raise ApiError(403, f"Permission denied on resource project {project}.",
                           "PERMISSION_DENIED")
        return self.numbers[project]

    def secret(self, project, secret_id):
        number = self.project(project)
        secret = self.secrets.get((number, secret_id))
        if secret is None:
            raise ApiError(404, f"Secret [projects/{number}/secrets/{secret_id}] not found.")
        return number, secret

    def version(self, project, secret_id, version):
        number, secret = self.secret(project, secret_id)
        versions = secret["versions"]
        if version == "latest":
            if not versions:
                raise ApiError(
                    404, f"Secret [projects/{number}/secrets/{secret_id}] not found or has no versions.")
            return secret, versions[-1]
        if version in secret["aliases"]:
            version = str(secret["aliases"][version])
        if version.isdigit() and 0 < int(version) <= len(versions):
            return secret, versions[int(version) - 1]
        raise ApiError(404, f"Secret Version [projects/{number}/secrets/{secret_id}/versions/{version}] not found.")


def secret_json(secret):
    body = {
        "name": secret["name"],
        "createTime": secret["createTime"],
        "replication": {"automatic": {}},
        "etag": f'"{secret["etag"]}"',
    }
    if secret["aliases"]:
        body["versionAliases"] = {k: str(v) for k, v in secret["aliases"].items()}
    return body


def version_json(version, int_enums):
    body = {
        "name": version["name"],
        "createTime": version["createTime"],
        "state": STATES[version["state"]] if int_enums else version["state"],
        "replicationStatus": {"automatic": {}},
        "etag": f'"{version["etag"]}"',
        "clientSpecifiedPayloadChecksum": version["clientChecksum"],
    }
    if version["state"] == "DESTROYED":
        body["destroyTime"] = version["destroyTime"]
    return body


SECRETS = re.compile(r"^/v1/projects/([^/]+)/secrets$")
SECRET = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/:]+)(?::(addVersion))?$")
VERSION = re.compile(
    r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+)(?::(access|enable|disable|destroy))?$")


class Handler(BaseHTTPRequestHandler):
    server_version = "gcp-secret-manager-fake"
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            return json.loads(self.rfile.read(length))
        except ValueError as error:
            raise ApiError(400, f"Invalid JSON payload received. {error}") from error

    def _handle(self, method):
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query.replace(";", "&"), keep_blank_values=True)
        store = self.server.store
        if path.startswith("/fake/"):
            return self._control(path, query)
        # The authorization scheme only, never the credential: a test asserts where a token went.
        scheme = (self.headers.get("Authorization") or "").split(" ", 1)[0]
        with open(self.server.log, "a", encoding="utf-8") as log:
            log.write(f"{method} {path}" + (f" authorization={scheme}" if scheme else "") + "\n")
        if store.hang:
            time.sleep(store.hang)
        int_enums = "int" in query.get("enum-encoding", [])
        try:
            with store.lock:
                code, body = self._api(method, path, query, int_enums)
        except ApiError as error:
            code, body = error.code, {"error": {
                "code": error.code, "message": error.message, "status": error.status}}
        self._send(code, body)
        return None

    def _control(self, path, query):
        store = self.server.store
        if path == "/fake/hang":
            store.hang = float(query.get("seconds", ["0"])[0])
        elif path == "/fake/deny":
            secret = query.get("secret", [""])[0]
            store.denied = {secret} if secret else set()
        elif path == "/fake/corrupt":
            secret = query.get("secret", [""])[0]
            store.corrupt = {secret} if secret else set()
        else:
            return self._send(404, {"error": {"code": 404, "message": "no such control",
                                              "status": "NOT_FOUND"}})
        return self._send(200, {})

    def _api(self, method, path, query, int_enums):
        store = self.server.store
        if (m := SECRETS.match(path)) and method == "POST":
            number = store.project(m[1])
            secret_id = query.get("secretId", [""])[0]
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", secret_id):
                raise ApiError(400, f"Invalid secret ID [{secret_id}].")
            if (number, secret_id) in store.secrets:
                raise ApiError(409, f"Secret [projects/{number}/secrets/{secret_id}] already exists.")
            self._body()
            secret = {"name": f"projects/{number}/secrets/{secret_id}", "createTime": now(),
                      "versions": [], "aliases": {}, "etag": 1}
            store.secrets[(number, secret_id)] = secret
            return 200, secret_json(secret)
        if m := SECRET.match(path):
            number, secret = store.secret(m[1], m[2])
            if m[3] == "addVersion" and method == "POST":
                payload = self._body().get("payload", {})
                data = base64.b64decode(payload.get("data", ""))
                given = payload.get("dataCrc32c")
                if given is not None and int(given) != crc32c(data):
                    raise ApiError(400, "Checksum mismatch: the payload's dataCrc32c is wrong.")
                n = len(secret["versions"]) + 1
                version = {"name": f"{secret['name']}/versions/{n}", "createTime": now(),
                           "state": "ENABLED", "data": data, "etag": 1,
                           "clientChecksum": given is not None}
                secret["versions"].append(version)
                return 200, version_json(version, int_enums)
            if m[3] is None and method == "GET":
                return 200, secret_json(secret)
            if m[3] is None and method == "PATCH":
                mask = query.get("updateMask", [""])[0].split(",")
                body = self._body()
                if "versionAliases" in mask:
                    aliases = {k: int(v) for k, v in body.get("versionAliases", {}).items()}
                    for alias, n in aliases.items():
                        if alias == "latest" or not 0 < n <= len(secret["versions"]):
                            raise ApiError(400, f"Invalid version alias {alias}={n}.")
                    secret["aliases"] = aliases
                secret["etag"] += 1
                return 200, secret_json(secret)
            if m[3] is None and method == "DELETE":
                del store.secrets[(number, m[2])]
                return 200, {}
        if m := VERSION.match(path):
            secret, version = store.version(m[1], m[2], m[3])
            if m[4] == "access" and method == "GET":
                if m[2] in store.denied:
                    raise ApiError(403, f"Permission 'secretmanager.versions.access' denied for resource '{version['name']}' (or it may not exist).")
                if version["state"] != "ENABLED":
                    raise ApiError(400, f"Secret Version [{version['name']}] is in {version['state']} state.",
                                   "FAILED_PRECONDITION")
                data = version["data"]
                sent = bytes([data[0] ^ 1]) + data[1:] if m[2] in store.corrupt and data else data
                return 200, {"name": version["name"], "payload": {
                    "data": base64.b64encode(sent).decode(), "dataCrc32c": str(crc32c(data))}}
            if m[4] is None and method == "GET":
                return 200, version_json(version, int_enums)
            if m[4] in ("enable", "disable", "destroy") and method == "POST":
                self._body()
                if version["state"] == "DESTROYED":
                    raise ApiError(400, f"Secret Version [{version['name']}] is in DESTROYED state.",
                                   "FAILED_PRECONDITION")
                version["state"] = {"enable": "ENABLED", "disable": "DISABLED",
                                    "destroy": "DESTROYED"}[m[4]]
                if m[4] == "destroy":
                    version["data"] = b""
                    version["destroyTime"] = now()
                    secret["aliases"] = {a: n for a, n in secret["aliases"].items()
                                         if secret["versions"][n - 1] is not version}
                version["etag"] += 1
                return 200, version_json(version, int_enums)
        raise ApiError(404, f"Method {method} {path} not found.")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", action="append", default=[],
                        help="ID=NUMBER, a project the fake knows (repeatable)")
    parser.add_argument("--log", required=True, help="file that gets one line per API call")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                        help="serve HTTPS with this certificate chain and key (PEM)")
    args = parser.parse_args()
    projects = [p.split("=", 1) for p in args.project]
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.store = Store(projects)
    server.log = args.log
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    open(args.log, "a", encoding="utf-8").close()
    print(f"listening on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
