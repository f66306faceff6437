"""A test fixture: a small in-memory HTTP server that speaks the part of the Hub API huggingface_hub uses.

It serves repo creation, repo settings (visibility), preupload, commits (files inline, base64; a stale
``parentCommit`` is refused with 412 as the Hub does), repo info, the file tree, file resolution
(HEAD/GET) and whoami, on 127.0.0.1 only, so the real ``huggingface_hub`` client (and
``from_pretrained`` through ``HF_ENDPOINT``) can be exercised offline. Production code talks to the real Hub;
nothing in ``hf_tbc`` knows this server exists.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

TOKEN = "hf_test_token_not_a_secret"
USER = "tester"


def blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Repos in memory: ``repos[repo_id] = {"files": {path: bytes}, "commits": [sha, ...], "private": bool}``."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.requests: list[str] = []
        self.fail_commits = 0  # answer the next N commit requests with fail_status, as a flaky network would
        self.fail_status = 503
        self.drop_commits = 0  # apply the next N commits, then close the connection before answering
        self.drop_before_commit = 0  # close the connection of the next N commit requests without applying them
        self.down_after_commits = None  # after this many more commits, every commit request's connection drops
        self.token_role = "write"  # what whoami says of the token: read, write or fineGrained
        # a fine-grained token's scopes: [{"entity": {"type": "org", "name": ...}, "permissions": [...]}]
        self.scoped = []
        self.orgs = [{"name": "org", "roleInOrg": "write"}]
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def commit(self, repo_id: str, files: dict[str, bytes], deleted: list[str], message: str) -> str:
        repo = self.repos[repo_id]
        repo["files"].update(files)
        for path in deleted:
            repo["files"].pop(path, None)
        parent = repo["commits"][-1] if repo["commits"] else ""
        digest = hashlib.sha1(parent.encode() + message.encode())
        for path in sorted(repo["files"]):
            digest.update(path.encode() + blob_oid(repo["files"][path]).encode())
        repo["commits"].append(digest.hexdigest())
        repo["messages"].append(message)
        return repo["commits"][-1]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body=b"", headers=None, head=False):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if not isinstance(body, bytes):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def _authorized(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {TOKEN}"

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _repo(self, repo_id):
                return hub.repos.get(repo_id)

            def _not_found(self, code="RepoNotFound", head=False):
                self._send(404, {"error": code}, {"X-Error-Code": code}, head=head)

            def _drop(self):
                """The connection breaks: no answer at all."""
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)

            def do_PUT(self):
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"PUT {path}")
                body = self._body()
                if not self._authorized():
                    return self._send(401, {"error": "Invalid credentials in Authorization header"})
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/settings", path)
                if match and self._repo(match.group(1)) is not None:
                    settings = json.loads(body or b"{}")
                    if "private" in settings:  # huggingface_hub 0.x
                        self._repo(match.group(1))["private"] = bool(settings["private"])
                    if "visibility" in settings:  # huggingface_hub 1.x and later
                        self._repo(match.group(1))["private"] = settings["visibility"] != "public"
                    return self._send(200, {})
                self._not_found()

            def do_HEAD(self):
                self._get(head=True)

            def do_GET(self):
                self._get(head=False)

            def _get(self, head: bool):
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{self.command} {path}")
                if path == "/api/whoami-v2":
                    if not self._authorized():
                        return self._send(401, {"error": "Invalid credentials"})
                    token = {
                        "displayName": "test",
                        "role": hub.token_role,
                        **(
                            {"fineGrained": {"scoped": hub.scoped, "global": []}}
                            if hub.token_role == "fineGrained"
                            else {}
                        ),
                    }
                    return self._send(
                        200,
                        {
                            "name": USER,
                            "type": "user",
                            "orgs": hub.orgs,
                            "auth": {"type": "access_token", "accessToken": token},
                        },
                    )
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
                if match:
                    repo = self._repo(match.group(1))
                    if repo is None or (repo["private"] and not self._authorized()):
                        return self._not_found(head=head)
                    return self._send(
                        200,
                        {
                            "id": match.group(1),
                            "modelId": match.group(1),
                            "sha": repo["commits"][-1],
                            "private": repo["private"],
                            "tags": [],
                            "siblings": [{"rfilename": name} for name in sorted(repo["files"])],
                        },
                        head=head,
                    )
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
                if match:
                    repo = self._repo(match.group(1))
                    if repo is None:
                        return self._not_found(head=head)
                    return self._send(
                        200,
                        [
                            {"type": "file", "path": name, "oid": blob_oid(data), "size": len(data)}
                            for name, data in sorted(repo["files"].items())
                        ],
                        head=head,
                    )
                match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if match:
                    repo = self._repo(match.group(1))
                    if repo is None or (repo["private"] and not self._authorized()):
                        return self._not_found(head=head)
                    data = repo["files"].get(match.group(3))
                    if data is None:
                        return self._not_found("EntryNotFound", head=head)
                    headers = {"X-Repo-Commit": repo["commits"][-1], "ETag": f'"{blob_oid(data)}"'}
                    return self._send(200, data, headers, head=head)
                self._not_found(head=head)

            def do_POST(self):
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"POST {path}")
                body = self._body()
                if not self._authorized():
                    return self._send(401, {"error": "Invalid credentials in Authorization header"})
                if path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if path == "/api/repos/create":
                    request = json.loads(body)
                    if hub.token_role == "read":
                        return self._send(
                            403, {"error": "You don't have the rights to create a model under this namespace"}
                        )
                    repo_id = f"{request.get('organization') or USER}/{request['name']}"
                    with hub.lock:
                        if repo_id in hub.repos:
                            return self._send(
                                409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"}
                            )
                        hub.repos[repo_id] = {
                            "files": {},
                            "commits": [],
                            "messages": [],
                            "private": bool(request.get("private")),
                        }
                        hub.commit(
                            repo_id,
                            {".gitattributes": b"*.onnx filter=lfs diff=lfs merge=lfs -text\n"},
                            [],
                            "initial commit",
                        )
                    return self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path)
                if match:
                    if self._repo(match.group(1)) is None:
                        return self._not_found()
                    files, stored = json.loads(body)["files"], self._repo(match.group(1))["files"]
                    # as the Hub does: the oid of the file already at that path, so unchanged files are left out
                    return self._send(
                        200,
                        {
                            "files": [
                                {
                                    "path": f["path"],
                                    "uploadMode": "regular",
                                    "shouldIgnore": False,
                                    **({"oid": blob_oid(stored[f["path"]])} if f["path"] in stored else {}),
                                }
                                for f in files
                            ]
                        },
                    )
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path)
                if match:
                    if self._repo(match.group(1)) is None:
                        return self._not_found()
                    with hub.lock:
                        if hub.fail_commits > 0:
                            hub.fail_commits -= 1
                            return self._send(hub.fail_status, {"error": "Service temporarily unavailable"})
                        if hub.drop_before_commit > 0:
                            hub.drop_before_commit -= 1
                            return self._drop()
                        if hub.down_after_commits is not None:
                            if hub.down_after_commits <= 0:
                                return self._drop()  # the network is down from here on
                            hub.down_after_commits -= 1
                        files, deleted, message, parent = {}, [], "", None
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item["key"] == "header":
                                message = item["value"]["summary"]
                                parent = item["value"].get("parentCommit")
                            elif item["key"] == "file":
                                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                            elif item["key"] == "deletedFile":
                                deleted.append(item["value"]["path"])
                        if parent is not None and parent != self._repo(match.group(1))["commits"][-1]:
                            return self._send(
                                412, {"error": "A commit has happened since. Please refresh and try again."}
                            )
                        sha = hub.commit(match.group(1), files, deleted, message)
                        if hub.drop_commits > 0:
                            hub.drop_commits -= 1
                            return self._drop()
                    return self._send(
                        200,
                        {
                            "commitUrl": f"{hub.url}/{match.group(1)}/commit/{sha}",
                            "commitOid": sha,
                            "success": True,
                            "pullRequestUrl": None,
                        },
                    )
                self._not_found()

        return Handler
